/* The pool of page-locked batch buffers (host_pool.h): a short list, as there are only
 * as many buffers as batches alive at once (the loader's slots and the consumer's). */
#include "data/host_pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "runtime/device.h"

typedef struct pooled {
    void *data;
    size_t bytes;
    int out;                    /* taken and not given back */
} pooled;

struct gf_host_pool {
    host_allocator alloc;
    pthread_mutex_t lock;
    int refs;                   /* the creator's, and one per buffer out */
    int failed;
    pooled *buffers;
    int n, cap;
};

static gf_status pinned_alloc(size_t bytes, void **out) { return gf_cuda_host_alloc(bytes, out); }

gf_host_pool *host_pool_new(const host_allocator *a)
{
    gf_host_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->alloc = a ? *a : (host_allocator){pinned_alloc, gf_cuda_host_free};
    pthread_mutex_init(&p->lock, NULL);
    p->refs = 1;
    return p;
}

static void destroy(gf_host_pool *p)
{
    for (int k = 0; k < p->n; k++) p->alloc.free(p->buffers[k].data);
    free(p->buffers);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Drops a reference, under the lock (which it releases). */
static void unref(gf_host_pool *p)
{
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (last) destroy(p);
}

void *host_pool_take(gf_host_pool *p, size_t bytes)
{
    if (!bytes) bytes = 1;
    pthread_mutex_lock(&p->lock);
    pooled *best = NULL;
    for (int k = 0; k < p->n; k++) {
        pooled *b = &p->buffers[k];
        if (!b->out && b->bytes >= bytes && (!best || b->bytes < best->bytes)) best = b;
    }
    if (!best && !p->failed && p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 8;
        pooled *grown = realloc(p->buffers, (size_t)cap * sizeof *grown);
        if (grown) p->buffers = grown, p->cap = cap;
    }
    if (!best && !p->failed && p->n < p->cap) {
        void *data;
        if (p->alloc.alloc(bytes, &data) == GF_OK) {
            best = &p->buffers[p->n++];
            *best = (pooled){data, bytes, 0};
        } else p->failed = 1;
    }
    void *data = NULL;
    if (best) {
        best->out = 1;
        p->refs++;
        data = best->data;
    }
    pthread_mutex_unlock(&p->lock);
    return data;
}

void host_pool_give(gf_host_pool *p, void *buffer)
{
    pthread_mutex_lock(&p->lock);
    for (int k = 0; k < p->n; k++)
        if (p->buffers[k].data == buffer && p->buffers[k].out) {
            p->buffers[k].out = 0;
            unref(p);
            return;
        }
    pthread_mutex_unlock(&p->lock);
}

void host_pool_release(gf_host_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    unref(p);
}
