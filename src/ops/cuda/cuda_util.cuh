/* Device-side helpers the CUDA families share (C++, for .cu files only). */
#ifndef GF_CUDA_UTIL_CUH
#define GF_CUDA_UTIL_CUH

#include "cuda_ctx.h"

#include <stdint.h>

#define GF_CUDA_THREADS 256

/* Blocks for n elements at `threads` per block, capped: kernels loop grid-stride. */
static inline unsigned gf_cuda_blocks(int64_t n, int threads = GF_CUDA_THREADS)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65536) b = 65536;
    return (unsigned)b;
}

/* Grid-stride loop over [0, n) in 64-bit indices. */
#define GF_CUDA_LOOP(i, n)                                                              \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n); \
         i += (int64_t)blockDim.x * gridDim.x)

/* Dims with up to two sets of strides, passed by value. */
struct gf_cu_dims {
    int rank;
    int64_t dims[GF_MAX_RANK];
    int64_t a[GF_MAX_RANK];     /* strides (in elements) of the first operand */
    int64_t b[GF_MAX_RANK];     /* of the second */
};

/* The offsets of row-major index i over g's dims in both stride sets. */
__device__ inline void gf_cu_offsets(const gf_cu_dims &g, int64_t i, int64_t *oa, int64_t *ob)
{
    int64_t a = 0, b = 0;
    for (int d = g.rank - 1; d >= 0; d--) {
        int64_t c = i % g.dims[d];
        i /= g.dims[d];
        a += c * g.a[d];
        b += c * g.b[d];
    }
    *oa = a;
    *ob = b;
}

/* Sums over a block in double: every thread passes its part, thread 0 gets the total
 * (others get garbage). The order is fixed by the block size alone. blockDim.x must be
 * a multiple of 32, at most 1024. */
__device__ inline double gf_cu_block_sum(double v)
{
    __shared__ double warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* warp_sums may still be read by a previous call */
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    int n_warps = (blockDim.x + 31) >> 5;
    v = threadIdx.x < (unsigned)n_warps ? warp_sums[threadIdx.x] : 0.0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* Records a data error: the earliest site, then the lowest position, wins. Errors are
 * rare, so a lock (independent thread scheduling makes it safe on sm_70 and later)
 * keeps the record's fields together. */
__device__ inline void gf_cu_report(gf_cuda_error *e, int site, int code, long long pos, long long a, long long b)
{
    volatile gf_cuda_error *v = e;
    if (v->code && (v->site < site || (v->site == site && v->pos <= pos))) return; /* a better one is in */
    while (atomicCAS(&e->lock, 0, 1) != 0) {
    }
    __threadfence();
    if (!v->code || site < v->site || (site == v->site && pos < v->pos)) {
        v->site = site;
        v->pos = pos;
        v->a = a;
        v->b = b;
        v->code = code;
    }
    __threadfence();
    atomicExch(&e->lock, 0);
}

#endif
