/* Softmax and LogSoftmax on float32 on the GPU (twin: ops/softmax.c), over the
 * (outer, n, inner) view softmax.h defines (coerced to 2-D before opset 13, one axis
 * from 13). Per line, as the reference: the maximum (the first element unless a later
 * one is greater, so a NaN counts only when it comes first), e = expf(x - max) in
 * float, their sum in double, then y = e * (float)(1 / sum), or for LogSoftmax
 * y = x - (max + (float)log(sum)). Lines along the innermost axis are one warp each;
 * strided lines (inner > 1) one thread each, reading across threads contiguously. */
#include "cuda_util.cuh"

#include "../softmax.h"

#include <math.h>
#include <string.h>

/* A line of n values `stride` apart, by one thread. */
__device__ inline void softmax_line(int log, const float *x, float *y, int64_t n, int64_t stride)
{
    float max = x[0];
    for (int64_t j = 1; j < n; j++)
        if (x[j * stride] > max) max = x[j * stride];
    double sum = 0;
    for (int64_t j = 0; j < n; j++) {
        float e = expf(x[j * stride] - max);
        sum += e;
        if (!log) y[j * stride] = e;
    }
    if (!log) {
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < n; j++) y[j * stride] *= inv;
    } else {
        float shift = max + (float)::log(sum);
        for (int64_t j = 0; j < n; j++) y[j * stride] = x[j * stride] - shift;
    }
}

__global__ void softmax_strided_kernel(const float *x, float *y, int64_t n, int64_t inner, int64_t lines, int log)
{
    GF_CUDA_LOOP(l, lines) {
        int64_t start = l / inner * n * inner + l % inner;
        softmax_line(log, x + start, y + start, n, inner);
    }
}

/* One warp per contiguous line. The maximum as the reference's scan defines it: the
 * greatest of the non-NaN values, unless the first value is NaN. */
__global__ void softmax_warp_kernel(const float *x, float *y, int64_t n, int64_t lines, int log)
{
    int lane = threadIdx.x & 31;
    int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t l = warp; l < lines; l += warps) {
        const float *xl = x + l * n;
        float *yl = y + l * n;
        float m = -INFINITY;
        for (int64_t j = lane; j < n; j += 32) {
            float v = xl[j];
            if (v > m) m = v;
        }
        for (int o = 16; o > 0; o >>= 1) {
            float other = __shfl_xor_sync(0xffffffffu, m, o);
            if (other > m) m = other;
        }
        if (isnan(xl[0])) m = xl[0];
        double sum = 0;
        for (int64_t j = lane; j < n; j += 32) {
            float e = expf(xl[j] - m);
            sum += e;
            if (!log) yl[j] = e;
        }
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (!log) {
            float inv = (float)(1.0 / sum);
            for (int64_t j = lane; j < n; j += 32) yl[j] *= inv;
        } else {
            float shift = m + (float)::log(sum);
            for (int64_t j = lane; j < n; j += 32) yl[j] = xl[j] - shift;
        }
    }
}

static gf_status softmax_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_softmax_view v = {0, 0, 0};
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (!st) st = gf_softmax_view_of(ctx, &v);
    if (st) return gf_cuda_node_context(ctx, st);
    if (v.n == 0) return GF_OK;
    int log = !strcmp(ctx->node->op_type, "LogSoftmax");
    const float *x = (const float *)ctx->inputs[0]->data;
    float *y = (float *)ctx->outputs[0]->data;
    int64_t lines = v.outer * v.inner;
    if (lines == 0) return GF_OK;
    if (v.inner == 1) {
        int64_t threads = lines * 32;
        softmax_warp_kernel<<<gf_cuda_blocks(threads), GF_CUDA_THREADS, 0, cu->stream>>>(x, y, v.n, lines, log);
        return gf_cuda_launched(ctx, "softmax_warp_kernel");
    }
    softmax_strided_kernel<<<gf_cuda_blocks(lines), GF_CUDA_THREADS, 0, cu->stream>>>(x, y, v.n, v.inner, lines, log);
    return gf_cuda_launched(ctx, "softmax_strided_kernel");
}

extern "C" const gf_cuda_op gf_cuda_ops_softmax[] = {
    {"", "Softmax", 1, 0, softmax_cuda, gf_cuda_check_all_float, 0},
    {"", "LogSoftmax", 1, 0, softmax_cuda, gf_cuda_check_all_float, 0},
    {0},
};
