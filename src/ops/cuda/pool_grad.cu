/* MaxPoolGrad, AveragePoolGrad and GlobalAveragePoolGrad (domain ai.graft) on the GPU
 * (twin: ops/pool_grad.c), float32.
 *
 * The reference scatters each output's gradient into dX plane by plane, in row-major
 * window order. Here each dX element gathers instead: it visits the windows that cover
 * it in that same order and adds their shares, so every element sums the same terms in
 * the same order as the reference, with no atomics, and the results are its bits.
 * MaxPoolGrad first finds each window's maximum as the reference does (taps in
 * row-major order, the first one on ties, padding never), then an element adds the
 * gradients of the windows whose maximum it is. */
#include "cuda_util.cuh"

extern "C" {
#include "../pool_grad.h"
}

#include <string.h>

/* ---- device helpers ---- */

__device__ inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
__device__ inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
__device__ inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* pool_grad.c's tap_span of window o along dim d. */
struct tap_span {
    int64_t first, count, step, in_pads;
};

__device__ inline tap_span span_of(const gf_window &w, int d, int64_t o)
{
    int64_t start = o * w.stride[d] - w.pad_begin[d], dil = w.dilation[d];
    int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
    int64_t hi = min64(w.kernel[d], (w.in[d] - start + dil - 1) / dil);
    int64_t in_pads = min64(w.kernel[d], (w.in[d] + w.pad_end[d] - start + dil - 1) / dil);
    tap_span s = {start + lo * dil, hi - lo, dil, in_pads};
    return s;
}

/* The windows along dim d whose span may hold input index i: [lo, hi]. */
__device__ inline void covering(const gf_window &w, int d, int64_t i, int64_t *lo, int64_t *hi)
{
    int64_t t = i + w.pad_begin[d];
    *lo = max64(0, ceil_div(t - (w.kernel[d] - 1) * w.dilation[d], w.stride[d]));
    *hi = min64(w.out[d] - 1, floor_div(t, w.stride[d]));
}

/* Whether input index i is a tap of window o along dim d. */
__device__ inline int is_tap(const gf_window &w, int d, int64_t o, int64_t i)
{
    int64_t t = i + w.pad_begin[d] - o * w.stride[d];
    return t >= 0 && t % w.dilation[d] == 0 && t / w.dilation[d] < w.kernel[d];
}

/* ---- MaxPoolGrad ---- */

/* argmax[nc * out_size + o]: the plane index of window o's maximum. */
__global__ void window_argmax_kernel(const float *x, int64_t *argmax, gf_window w, int64_t n)
{
    int64_t in_size = w.in[0] * w.in[1] * w.in[2], out_size = w.out[0] * w.out[1] * w.out[2];
    GF_CUDA_LOOP(j, n) {
        int64_t nc = j / out_size, o = j % out_size;
        int64_t o2 = o % w.out[2], o1 = o / w.out[2] % w.out[1], o0 = o / (w.out[2] * w.out[1]);
        tap_span s0 = span_of(w, 0, o0), s1 = span_of(w, 1, o1), s2 = span_of(w, 2, o2);
        const float *xp = x + nc * in_size;
        int64_t best_at = (s0.first * w.in[1] + s1.first) * w.in[2] + s2.first;
        float best = xp[best_at];
        for (int64_t a = 0, i0 = s0.first; a < s0.count; a++, i0 += s0.step)
            for (int64_t b = 0, i1 = s1.first; b < s1.count; b++, i1 += s1.step) {
                int64_t row = (i0 * w.in[1] + i1) * w.in[2];
                for (int64_t c = 0, i2 = s2.first; c < s2.count; c++, i2 += s2.step) {
                    float v = xp[row + i2];
                    if (v > best) {
                        best = v;
                        best_at = row + i2;
                    }
                }
            }
        argmax[j] = best_at;
    }
}

__global__ void max_pool_grad_kernel(const float *dy, const int64_t *argmax, float *dx, gf_window w, int64_t n)
{
    int64_t in_size = w.in[0] * w.in[1] * w.in[2], out_size = w.out[0] * w.out[1] * w.out[2];
    GF_CUDA_LOOP(j, n) {
        int64_t nc = j / in_size, i = j % in_size;
        int64_t i2 = i % w.in[2], i1 = i / w.in[2] % w.in[1], i0 = i / (w.in[2] * w.in[1]);
        int64_t lo0, hi0, lo1, hi1, lo2, hi2;
        covering(w, 0, i0, &lo0, &hi0);
        covering(w, 1, i1, &lo1, &hi1);
        covering(w, 2, i2, &lo2, &hi2);
        const int64_t *am = argmax + nc * out_size;
        const float *g = dy + nc * out_size;
        float acc = 0.0f;
        for (int64_t o0 = lo0; o0 <= hi0; o0++)
            for (int64_t o1 = lo1; o1 <= hi1; o1++)
                for (int64_t o2 = lo2; o2 <= hi2; o2++) {
                    int64_t o = (o0 * w.out[1] + o1) * w.out[2] + o2;
                    if (am[o] == i) acc += g[o];
                }
        dx[j] = acc;
    }
}

/* ---- AveragePoolGrad ---- */

__global__ void average_pool_grad_kernel(const float *dy, float *dx, gf_window w, int count_include_pad, int64_t n)
{
    int64_t in_size = w.in[0] * w.in[1] * w.in[2], out_size = w.out[0] * w.out[1] * w.out[2];
    GF_CUDA_LOOP(j, n) {
        int64_t nc = j / in_size, i = j % in_size;
        int64_t ip[3] = {i / (w.in[2] * w.in[1]), i / w.in[2] % w.in[1], i % w.in[2]};
        int64_t lo[3], hi[3];
        for (int d = 0; d < 3; d++) covering(w, d, ip[d], &lo[d], &hi[d]);
        const float *g = dy + nc * out_size;
        float acc = 0.0f;
        for (int64_t o0 = lo[0]; o0 <= hi[0]; o0++) {
            if (!is_tap(w, 0, o0, ip[0])) continue;
            tap_span s0 = span_of(w, 0, o0);
            for (int64_t o1 = lo[1]; o1 <= hi[1]; o1++) {
                if (!is_tap(w, 1, o1, ip[1])) continue;
                tap_span s1 = span_of(w, 1, o1);
                for (int64_t o2 = lo[2]; o2 <= hi[2]; o2++) {
                    if (!is_tap(w, 2, o2, ip[2])) continue;
                    tap_span s2 = span_of(w, 2, o2);
                    int64_t divisor = count_include_pad ? s0.in_pads * s1.in_pads * s2.in_pads
                                                        : s0.count * s1.count * s2.count;
                    acc += g[(o0 * w.out[1] + o1) * w.out[2] + o2] / (float)divisor;
                }
            }
        }
        dx[j] = acc;
    }
}

__global__ void global_average_pool_grad_kernel(const float *dy, float *dx, int64_t in_size, int64_t n)
{
    GF_CUDA_LOOP(j, n) dx[j] = dy[j / in_size] / (float)in_size;
}

/* ---- the ops ---- */

static gf_status max_pool_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_pool_grad_shape sh;
    gf_status st = gf_pool_grad_read_max(ctx, &sh);
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *dx = ctx->outputs[0];
    if (!dx || gf_tensor_numel(dx) == 0) return GF_OK;
    int64_t outs = gf_tensor_numel(ctx->inputs[0]), ins = gf_tensor_numel(dx);
    if (outs == 0) return gf_cuda_zero(ctx, cu, dx->data, gf_tensor_nbytes(dx));
    int64_t *argmax;
    if ((st = gf_cuda_scratch(ctx, cu, (size_t)outs * sizeof *argmax, (void **)&argmax))) return st;
    window_argmax_kernel<<<gf_cuda_blocks(outs), GF_CUDA_THREADS, 0, cu->stream>>>((const float *)ctx->inputs[1]->data,
                                                                                   argmax, sh.w, outs);
    st = gf_cuda_launched(ctx, "window_argmax_kernel");
    if (!st) {
        max_pool_grad_kernel<<<gf_cuda_blocks(ins), GF_CUDA_THREADS, 0, cu->stream>>>(
            (const float *)ctx->inputs[0]->data, argmax, (float *)dx->data, sh.w, ins);
        st = gf_cuda_launched(ctx, "max_pool_grad_kernel");
    }
    gf_cuda_scratch_free(cu, argmax);
    return st;
}

static gf_status average_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_pool_grad_shape sh;
    gf_tensor x;
    int global = !strcmp(ctx->node->op_type, "GlobalAveragePoolGrad"), dynamic;
    gf_status st = gf_pool_grad_read_average(ctx, &sh, &x, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "x_shape is still unknown while running");
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *dx = ctx->outputs[0];
    if (!dx) return GF_OK;
    int64_t n = gf_tensor_numel(dx), in_size = gf_window_size(sh.w.in);
    if (n == 0) return GF_OK;
    const float *dy = (const float *)ctx->inputs[0]->data;
    if (global) {
        global_average_pool_grad_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(dy, (float *)dx->data,
                                                                                               in_size, n);
        return gf_cuda_launched(ctx, "global_average_pool_grad_kernel");
    }
    average_pool_grad_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
        dy, (float *)dx->data, sh.w, (int)gf_attr_int(ctx->node, "count_include_pad", 0), n);
    return gf_cuda_launched(ctx, "average_pool_grad_kernel");
}

static gf_status pool_grad_check(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, 1); }

extern "C" const gf_cuda_op gf_cuda_ops_pool_grad[] = {
    {"ai.graft", "MaxPoolGrad", 1, 0, max_pool_grad_cuda, gf_cuda_check_all_float, 0},
    {"ai.graft", "AveragePoolGrad", 1, 0, average_grad_cuda, pool_grad_check, GF_CUDA_HOST(1)},
    {"ai.graft", "GlobalAveragePoolGrad", 1, 0, average_grad_cuda, pool_grad_check, GF_CUDA_HOST(1)},
    {0},
};
