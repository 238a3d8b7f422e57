/* ReluGrad, LeakyReluGrad, SigmoidGrad, SoftmaxGrad, LogSoftmaxGrad, DropoutTrain and
 * DropoutGrad (domain ai.graft) on the GPU (twin: ops/activation_grad.c), float32, the
 * reference's expressions element for element. DropoutTrain's mask is the reference's
 * hash of (seed, step, element): the GPU draws the same mask as the CPU. The step is a
 * host input. Omitted outputs are not computed. */
#include "cuda_util.cuh"

#include "../activation_grad.h"

#include <math.h>
#include <string.h>

/* ---- Relu, LeakyRelu, Sigmoid ---- */

enum { G_RELU, G_LEAKY, G_SIGMOID };

template <int K>
__global__ void pair_kernel(const float *dy, const float *v, float *dx, float alpha, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        switch (K) {
        case G_RELU: dx[i] = v[i] > 0 ? dy[i] : 0.0f; break;
        case G_LEAKY: dx[i] = v[i] > 0 ? dy[i] : alpha * dy[i]; break;
        default: dx[i] = dy[i] * v[i] * (1.0f - v[i]); break;
        }
    }
}

static gf_status pair_check(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_cuda_check_float(ctx, 0, 2);
    if (!st && gf_tensor_numel(ctx->inputs[0]) != gf_tensor_numel(ctx->inputs[1]))
        st = gf_fail(GF_ERR_SHAPE, "dY and its partner must have one shape");
    return st;
}

static gf_status pair_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = pair_check(ctx);
    if (st) return gf_cuda_node_context(ctx, st);
    if (!ctx->outputs[0]) return GF_OK;
    const float *dy = (const float *)ctx->inputs[0]->data, *v = (const float *)ctx->inputs[1]->data;
    float *dx = (float *)ctx->outputs[0]->data;
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    if (n == 0) return GF_OK;
    unsigned blocks = gf_cuda_blocks(n);
    const char *op = ctx->node->op_type;
    if (!strcmp(op, "ReluGrad")) pair_kernel<G_RELU><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>(dy, v, dx, 0, n);
    else if (!strcmp(op, "LeakyReluGrad"))
        pair_kernel<G_LEAKY><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>(dy, v, dx,
                                                                         gf_attr_float(ctx->node, "alpha", 0.01f), n);
    else pair_kernel<G_SIGMOID><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>(dy, v, dx, 0, n);
    return gf_cuda_launched(ctx, "pair_kernel");
}

/* ---- SoftmaxGrad, LogSoftmaxGrad ---- */

/* One line per thread, as activation_grad.c's softmax_grad_line / log_softmax_grad_line. */
__global__ void softmax_grad_kernel(const float *dy, const float *y, float *dx, int64_t n, int64_t inner,
                                    int64_t lines, int log)
{
    GF_CUDA_LOOP(l, lines) {
        int64_t start = l / inner * n * inner + l % inner;
        const float *g = dy + start, *p = y + start;
        float *o = dx + start;
        double acc = 0;
        if (!log) {
            for (int64_t j = 0; j < n; j++) acc += (double)g[j * inner] * p[j * inner];
            float s = (float)acc;
            for (int64_t j = 0; j < n; j++) o[j * inner] = p[j * inner] * (g[j * inner] - s);
        } else {
            for (int64_t j = 0; j < n; j++) acc += g[j * inner];
            float s = (float)acc;
            for (int64_t j = 0; j < n; j++) o[j * inner] = g[j * inner] - expf(p[j * inner]) * s;
        }
    }
}

static gf_status softmax_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_softmax_view v = {0, 0, 0};
    gf_status st = pair_check(ctx);
    if (!st) st = gf_softmax_grad_view_of(ctx, &v);
    if (st) return gf_cuda_node_context(ctx, st);
    if (!ctx->outputs[0]) return GF_OK;
    int64_t lines = v.outer * v.inner;
    if (lines == 0 || v.n == 0) return GF_OK;
    softmax_grad_kernel<<<gf_cuda_blocks(lines), GF_CUDA_THREADS, 0, cu->stream>>>(
        (const float *)ctx->inputs[0]->data, (const float *)ctx->inputs[1]->data, (float *)ctx->outputs[0]->data, v.n,
        v.inner, lines, !strcmp(ctx->node->op_type, "LogSoftmaxGrad"));
    return gf_cuda_launched(ctx, "softmax_grad_kernel");
}

/* ---- Dropout ---- */

#define GOLDEN 0x9E3779B97F4A7C15ull

__host__ __device__ inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ inline double dropout_uniform(uint64_t key, int64_t i)
{
    return (double)(mix64(key + ((uint64_t)i + 1) * GOLDEN) >> 11) * 0x1p-53;
}

static gf_status dropout_ratio(const gf_op_ctx *ctx, float *ratio)
{
    *ratio = gf_attr_float(ctx->node, "ratio", 0.5f);
    if (!(*ratio >= 0 && *ratio < 1)) return gf_fail(GF_ERR_INVALID, "ratio is %g; it must be in [0, 1)", *ratio);
    return GF_OK;
}

__global__ void dropout_train_kernel(const float *x, float *y, uint8_t *mask, uint64_t key, float ratio, float scale,
                                     int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        int keep = dropout_uniform(key, i) >= ratio;
        if (mask) mask[i] = (uint8_t)keep;
        if (y) y[i] = x[i] * (keep ? scale : 0.0f);
    }
}

__global__ void dropout_grad_kernel(const float *dy, const uint8_t *mask, float *dx, float scale, int64_t n)
{
    GF_CUDA_LOOP(i, n) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
}

static gf_status dropout_train_check(gf_op_ctx *ctx)
{
    float ratio;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (!st) st = dropout_ratio(ctx, &ratio);
    if (!st && ctx->inputs[1]->dtype != GF_INT64 && ctx->inputs[1]->dtype != GF_INT32)
        st = gf_fail(GF_ERR_SHAPE, "step has element type %s; it must be int64 (or int32)",
                     gf_dtype_name(ctx->inputs[1]->dtype));
    if (!st && gf_tensor_numel(ctx->inputs[1]) != 1) st = gf_fail(GF_ERR_SHAPE, "step must be a scalar");
    return st;
}

static gf_status dropout_train_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    float ratio;
    gf_status st = dropout_train_check(ctx);
    if (!st) st = dropout_ratio(ctx, &ratio);
    if (st) return gf_cuda_node_context(ctx, st);
    float *y = ctx->outputs[0] ? (float *)ctx->outputs[0]->data : NULL;
    uint8_t *mask = ctx->n_outputs > 1 && ctx->outputs[1] ? (uint8_t *)ctx->outputs[1]->data : NULL;
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    if (n == 0 || (!y && !mask)) return GF_OK;
    float scale = 1.0f / (1.0f - ratio);
    uint64_t key = mix64(mix64((uint64_t)gf_attr_int(ctx->node, "seed", 0)) + (uint64_t)gf_int_at(ctx->inputs[1], 0));
    dropout_train_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>((const float *)ctx->inputs[0]->data, y,
                                                                                mask, key, ratio, scale, n);
    return gf_cuda_launched(ctx, "dropout_train_kernel");
}

static gf_status dropout_grad_check(gf_op_ctx *ctx)
{
    float ratio;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (!st && ctx->inputs[1]->dtype != GF_BOOL)
        st = gf_fail(GF_ERR_SHAPE, "mask has element type %s; it must be bool", gf_dtype_name(ctx->inputs[1]->dtype));
    if (!st) st = dropout_ratio(ctx, &ratio);
    return st;
}

static gf_status dropout_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    float ratio;
    gf_status st = dropout_grad_check(ctx);
    if (!st) st = dropout_ratio(ctx, &ratio);
    if (st) return gf_cuda_node_context(ctx, st);
    if (!ctx->outputs[0]) return GF_OK;
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    if (n == 0) return GF_OK;
    dropout_grad_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
        (const float *)ctx->inputs[0]->data, (const uint8_t *)ctx->inputs[1]->data, (float *)ctx->outputs[0]->data,
        1.0f / (1.0f - ratio), n);
    return gf_cuda_launched(ctx, "dropout_grad_kernel");
}

extern "C" const gf_cuda_op gf_cuda_ops_activation_grad[] = {
    {"ai.graft", "ReluGrad", 1, 0, pair_cuda, pair_check, 0},
    {"ai.graft", "LeakyReluGrad", 1, 0, pair_cuda, pair_check, 0},
    {"ai.graft", "SigmoidGrad", 1, 0, pair_cuda, pair_check, 0},
    {"ai.graft", "SoftmaxGrad", 1, 0, softmax_grad_cuda, pair_check, 0},
    {"ai.graft", "LogSoftmaxGrad", 1, 0, softmax_grad_cuda, pair_check, 0},
    {"ai.graft", "DropoutTrain", 1, 0, dropout_train_cuda, dropout_train_check, GF_CUDA_HOST(1)},
    {"ai.graft", "DropoutGrad", 1, 0, dropout_grad_cuda, dropout_grad_check, 0},
    {0},
};
