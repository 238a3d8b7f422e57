/* Page-locked host buffers for a loader's batches, so that a GPU session copies them
 * to the device without the CPU (gf_session_stage). Pinning memory costs far more than
 * filling it, so each buffer is pinned once and used again by later batches. The pool
 * is reference counted: the loader holds one reference and every buffer out another,
 * so batches may outlive their loader. Thread-safe. */
#ifndef GF_DATA_HOST_POOL_H
#define GF_DATA_HOST_POOL_H

#include <stddef.h>

#include "graft.h"

typedef struct gf_host_pool gf_host_pool;

/* Where the buffers come from. */
typedef struct host_allocator {
    gf_status (*alloc)(size_t bytes, void **out);
    void (*free)(void *p);
} host_allocator;

/* a NULL: page-locked memory from the device layer. NULL when out of memory. */
gf_host_pool *host_pool_new(const host_allocator *a);
/* A buffer of at least `bytes`; NULL when memory cannot be pinned (no GPU, a CPU-only
 * build, the limit on locked memory): the caller uses ordinary memory. After one
 * failure the pool stops trying. */
void *host_pool_take(gf_host_pool *p, size_t bytes);
/* Gives back a buffer host_pool_take gave. */
void host_pool_give(gf_host_pool *p, void *buffer);
/* Drops the creator's reference. */
void host_pool_release(gf_host_pool *p);

#endif
