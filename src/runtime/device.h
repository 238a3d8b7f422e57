/* The device layer: CUDA devices, their memory, copies and streams, for the CUDA
 * backend (src/ops/cuda). Plain C, no CUDA header: every file may include it, and a
 * CPU-only build (no GF_HAVE_CUDA) gets the same names as inline functions that say
 * the backend is not built, so callers need no #ifdef.
 *
 * A gf_cuda_ctx is what one session holds on one device: a compute stream on which
 * every kernel runs in order, a copy stream for host-to-device transfers that overlap
 * compute (loader batches), the cuBLAS and cuDNN handles bound to the compute stream,
 * a grow-only workspace for cuDNN, the cache of chosen convolution algorithms, and the
 * error record kernels write when they meet bad data (an index out of range, a label
 * that is not a class). Device memory comes from the device's stream-ordered pool
 * (cudaMallocAsync), which caches freed blocks: allocation on the compute stream costs
 * about as much as a pointer bump once the pool is warm.
 *
 * Kernels are asynchronous: a call returns once the work is queued. Errors of the
 * launch itself are reported at once; errors found while running (bad data, a fault)
 * are reported by the next gf_cuda_sync, naming the node whose kernel found them.
 * With GRAFT_CUDA_SYNC=1 the layer synchronizes after every kernel, so that even a
 * fault names its node (slow; for debugging). */
#ifndef GF_DEVICE_H
#define GF_DEVICE_H

#include "error.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct gf_cuda_ctx gf_cuda_ctx;

typedef struct gf_cuda_options {
    int device;             /* N of cuda:N */
    int allow_tf32;         /* 1: cuBLAS and cuDNN may use TF32 tensor cores for float32 (10-bit mantissa
                               products); 0 (default): exact float32 FMA arithmetic */
    int deterministic;      /* 1 (default): only cuDNN algorithms that give the same bits every run */
    int find_algorithms;    /* 1: time cuDNN's convolution algorithms once per shape (cudnnFind*) and keep
                               the fastest; 0 (default): cuDNN's heuristics (cudnnGet*_v7), which choose
                               the same algorithm every run */
    int sync_each;          /* 1: synchronize after every kernel (GRAFT_CUDA_SYNC=1) */
    int prefer_direct;      /* 1: graft's own kernels where cuDNN would also serve (pooling, inference
                               batch norm): for tests that compare both */
    size_t workspace_limit; /* most bytes a cuDNN algorithm may ask for; 0: a quarter of the device */
    gf_data_parallel parallel;  /* the process group AllReduceMean averages over (world_size > 1) */
} gf_cuda_options;

/* Parses a device name: "cpu" (*index -1), "cuda" (device 0) or "cuda:N"; fails naming
 * the text. For --device on the command line, in every build. */
static inline gf_status gf_cuda_parse_device(const char *name, int *index)
{
    *index = -1;
    if (!strcmp(name, "cpu")) return GF_OK;
    if (!strcmp(name, "cuda")) {
        *index = 0;
        return GF_OK;
    }
    if (!strncmp(name, "cuda:", 5) && name[5] >= '0' && name[5] <= '9') {
        char *end;
        long v = strtol(name + 5, &end, 10);
        if (!*end && v >= 0 && v < 4096) {
            *index = (int)v;
            return GF_OK;
        }
    }
    return gf_fail(GF_ERR_INVALID, "device '%s': expected cpu, cuda or cuda:N", name);
}

#ifdef GF_HAVE_CUDA

/* Defaults, then the environment: GRAFT_CUDA_TF32=1, GRAFT_CUDA_DETERMINISTIC=0,
 * GRAFT_CUDNN_FIND=1, GRAFT_CUDA_SYNC=1. */
void gf_cuda_options_default(gf_cuda_options *o);

/* The number of CUDA devices. Fails with "no CUDA device: <the driver's message>"
 * when there is no driver, no device, or the driver is too old for this runtime. */
gf_status gf_cuda_devices(int *count);
/* The same as a number: 0 where gf_cuda_devices fails. */
int gf_cuda_device_count(void);

/* A context on device o->device (o NULL: defaults). Fails with "no CUDA device: ..."
 * as gf_cuda_devices does, or naming the device that does not exist or cannot start. */
gf_status gf_cuda_ctx_new(const gf_cuda_options *o, gf_cuda_ctx **out);
/* Waits for the context's work, then frees it and everything it allocated. */
void gf_cuda_ctx_free(gf_cuda_ctx *c);
const gf_cuda_options *gf_cuda_ctx_options(const gf_cuda_ctx *c);
void gf_cuda_ctx_set_options(gf_cuda_ctx *c, const gf_cuda_options *o); /* device must not change */

/* ---- device memory ---- */

/* From the device's caching pool, ordered on the compute stream: the memory may be
 * used by work queued on that stream from now on. */
gf_status gf_cuda_alloc(gf_cuda_ctx *c, size_t bytes, void **out);
/* Returns memory to the pool once the compute stream's queued work is done with it. */
void gf_cuda_free(gf_cuda_ctx *c, void *p);

/* ---- pinned host memory (page-locked: copies from it run asynchronously) ---- */

gf_status gf_cuda_host_alloc(size_t bytes, void **out);
void gf_cuda_host_free(void *p);

/* ---- copies ---- */

/* Host to device on the compute stream. src may be any host memory: it may be reused
 * as soon as the call returns (the driver stages pageable memory). */
gf_status gf_cuda_to_device(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes);
/* Device to host: waits for the compute stream's queued work, then copies. */
gf_status gf_cuda_to_host(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes);
/* Device to device on the compute stream. */
gf_status gf_cuda_copy(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes);
/* The end of a run of prefetches, for the compute stream to wait on. */
typedef struct gf_cuda_event gf_cuda_event;
/* Host to device on the copy stream, after the compute stream's work queued so far
 * (which may still read dst's last contents), overlapping what is queued after it;
 * then records *done (made here when NULL), which so marks the end of every prefetch
 * recorded with it. src must stay untouched until *done has passed. From page-locked
 * memory the copy runs without the CPU; from pageable memory the call returns once
 * the driver has staged it. */
gf_status gf_cuda_prefetch(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes, gf_cuda_event **done);
/* The compute stream's work queued from now on waits for done's prefetches. */
gf_status gf_cuda_wait_prefetch(gf_cuda_ctx *c, gf_cuda_event *done);
void gf_cuda_event_free(gf_cuda_event *e);
gf_status gf_cuda_memset(gf_cuda_ctx *c, void *dst, int value, size_t bytes);

/* ---- NCCL (data parallel), loaded on first use ---- */

/* A new ncclUniqueId (GF_NCCL_ID_BYTES bytes); fails where NCCL cannot be loaded. */
gf_status gf_cuda_nccl_unique_id(unsigned char *id);

/* Waits for the compute stream. Fails with the first data error a kernel recorded
 * since the last sync (naming its node), or with the CUDA error of a faulted kernel;
 * the record is cleared either way. */
gf_status gf_cuda_sync(gf_cuda_ctx *c);

#else /* a CPU-only build: the backend is not there */

static inline gf_status gf_cuda_no_backend_(void)
{
    return gf_fail(GF_ERR_UNSUPPORTED, "this build of graft has no CUDA backend (backends: %s)", gf_backends());
}
static inline void gf_cuda_options_default(gf_cuda_options *o) { memset(o, 0, sizeof *o); }
static inline gf_status gf_cuda_devices(int *count) { *count = 0; return gf_cuda_no_backend_(); }
static inline int gf_cuda_device_count(void) { return 0; }
static inline gf_status gf_cuda_ctx_new(const gf_cuda_options *o, gf_cuda_ctx **out)
{
    (void)o;
    *out = NULL;
    return gf_cuda_no_backend_();
}
static inline void gf_cuda_ctx_free(gf_cuda_ctx *c) { (void)c; }
static inline gf_status gf_cuda_host_alloc(size_t bytes, void **out)
{
    (void)bytes;
    *out = NULL;
    return gf_cuda_no_backend_();
}
static inline void gf_cuda_host_free(void *p) { (void)p; }
static inline gf_status gf_cuda_nccl_unique_id(unsigned char *id)
{
    (void)id;
    return gf_fail(GF_ERR_UNSUPPORTED, "data parallel training runs on CUDA devices over NCCL, and this build of "
                                       "graft has no CUDA backend (backends: %s)", gf_backends());
}

#endif

#endif
