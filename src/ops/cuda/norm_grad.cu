/* BatchNormTrain and BatchNormGrad (domain ai.graft) on the GPU (twin:
 * ops/norm_grad.c), float32. The same two passes: per-channel sums in double around a
 * shift (the channel's first value for BatchNormTrain, saved_mean for BatchNormGrad),
 * then the per-channel affine map written element by element in float, operation for
 * operation as the reference writes it. Only the order within a sum differs (a fixed
 * tree here, lanes there), in double. Omitted outputs are not computed; the running
 * statistics may share storage with their inputs. */
#include "cuda_util.cuh"

#include "../norm_grad.h"

#include <math.h>
#include <string.h>

static float *output_data(const gf_op_ctx *ctx, int i)
{
    return i < ctx->n_outputs && ctx->outputs[i] ? (float *)ctx->outputs[i]->data : NULL;
}

/* The per-channel map: shift, delta, slope, offset, dy_slope (float, c each). */
typedef struct channel_map {
    float *shift, *delta, *slope, *offset, *dy_slope;
} channel_map;

/* out = (x - shift - delta) * slope + offset + (dy ? dy * dy_slope : 0), as map_channels. */
__global__ void map_kernel(const float *x, const float *dy, channel_map f, float *out, int64_t c, int64_t inner,
                           int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        int64_t ch = i / inner % c;
        out[i] = (x[i] - f.shift[ch] - f.delta[ch]) * f.slope[ch] + f.offset[ch] + (dy ? dy[i] * f.dy_slope[ch] : 0.0f);
    }
}

/* shift[c] = x[c * inner]: the channel's first value (n = 0, position 0). */
__global__ void first_values_kernel(const float *x, int64_t inner, int64_t c, double *shift)
{
    GF_CUDA_LOOP(i, c) shift[i] = x[i * inner];
}

__global__ void widen_kernel(const float *v, int64_t c, double *out)
{
    GF_CUDA_LOOP(i, c) out[i] = v[i];
}

/* norm_grad.c's bn_train_finish, one thread per channel. */
__global__ void train_finish_kernel(const double *shift, const double *first, const double *second, double count,
                                    double eps, double momentum, const float *scale, const float *bias,
                                    const float *running_mean, const float *running_var, float *saved_mean,
                                    float *saved_invstd, float *mean_out, float *var_out, channel_map map, int64_t c)
{
    GF_CUDA_LOOP(i, c) {
        double shifted_mean = first[i] / count;
        double var = second[i] / count - shifted_mean * shifted_mean;
        if (var < 0) var = 0;
        double mean = shift[i] + shifted_mean, invstd = 1 / sqrt(var + eps);
        map.shift[i] = (float)shift[i];
        map.delta[i] = (float)shifted_mean;
        map.slope[i] = (float)(invstd * scale[i]);
        map.offset[i] = bias[i];
        map.dy_slope[i] = 0.0f;
        if (saved_mean) saved_mean[i] = (float)mean;
        if (saved_invstd) saved_invstd[i] = (float)invstd;
        if (mean_out) mean_out[i] = (float)(running_mean[i] * momentum + mean * (1 - momentum));
        if (var_out) var_out[i] = (float)(running_var[i] * momentum + var * count / (count - 1) * (1 - momentum));
    }
}

/* norm_grad.c's bn_grad_cpu per-channel part. */
__global__ void grad_finish_kernel(const double *first, const double *second, double count, const float *scale,
                                   const float *mean, const float *invstd, float *dscale, float *dbias, channel_map map,
                                   int64_t c)
{
    GF_CUDA_LOOP(i, c) {
        double sum_dy = first[i], sum_dy_xhat = second[i] * invstd[i];
        if (dbias) dbias[i] = (float)sum_dy;
        if (dscale) dscale[i] = (float)sum_dy_xhat;
        double a = (double)scale[i] * invstd[i];
        map.shift[i] = mean[i];
        map.delta[i] = 0;
        map.slope[i] = (float)(-a * invstd[i] * sum_dy_xhat / count);
        map.offset[i] = (float)(-a * sum_dy / count);
        map.dy_slope[i] = (float)a;
    }
}

/* Per-channel scratch: shift, first, second (double), then the map (float). */
typedef struct bn_scratch {
    void *block;
    double *shift, *first, *second;
    channel_map map;
} bn_scratch;

static gf_status scratch_new(const gf_op_ctx *ctx, gf_cuda_ctx *cu, int64_t c, bn_scratch *w)
{
    gf_status st = gf_cuda_scratch(ctx, cu, (size_t)c * (3 * sizeof(double) + 5 * sizeof(float)), &w->block);
    if (st) return st;
    double *d = (double *)w->block;
    float *f = (float *)(d + 3 * c);
    w->shift = d;
    w->first = d + c;
    w->second = d + 2 * c;
    channel_map m = {f, f + c, f + 2 * c, f + 3 * c, f + 4 * c};
    w->map = m;
    return GF_OK;
}

/* ---- BatchNormTrain ---- */

static gf_status bn_train_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_bn_shape s;
    gf_status st = gf_bn_read_shape(ctx, 0, &s);
    if (st) return gf_cuda_node_context(ctx, st);
    if (s.c == 0) return GF_OK;
    if (s.n * s.inner < 2)
        return gf_cuda_node_fail(ctx, GF_ERR_SHAPE,
                                 "X has %lld value(s) per channel (N x spatial size); training needs more than one",
                                 (long long)(s.n * s.inner));
    bn_scratch w;
    if ((st = scratch_new(ctx, cu, s.c, &w))) return st;
    const float *x = (const float *)ctx->inputs[0]->data;
    first_values_kernel<<<gf_cuda_blocks(s.c), GF_CUDA_THREADS, 0, cu->stream>>>(x, s.inner, s.c, w.shift);
    st = gf_cuda_launched(ctx, "first_values_kernel");
    if (!st) st = gf_cuda_channel_sums(ctx, cu, x, NULL, w.shift, s.n, s.c, s.inner, w.first, w.second);
    if (!st) {
        double eps = gf_attr_float(ctx->node, "epsilon", 1e-5f), momentum = gf_attr_float(ctx->node, "momentum", 0.9f);
        train_finish_kernel<<<gf_cuda_blocks(s.c), GF_CUDA_THREADS, 0, cu->stream>>>(
            w.shift, w.first, w.second, (double)(s.n * s.inner), eps, momentum, (const float *)ctx->inputs[1]->data,
            (const float *)ctx->inputs[2]->data, (const float *)ctx->inputs[3]->data,
            (const float *)ctx->inputs[4]->data, output_data(ctx, 1), output_data(ctx, 2), output_data(ctx, 3),
            output_data(ctx, 4), w.map, s.c);
        st = gf_cuda_launched(ctx, "train_finish_kernel");
    }
    int64_t total = s.n * s.c * s.inner;
    if (!st && output_data(ctx, 0)) {
        map_kernel<<<gf_cuda_blocks(total), GF_CUDA_THREADS, 0, cu->stream>>>(x, NULL, w.map, output_data(ctx, 0), s.c,
                                                                               s.inner, total);
        st = gf_cuda_launched(ctx, "map_kernel");
    }
    gf_cuda_scratch_free(cu, w.block);
    return st;
}

/* ---- BatchNormGrad ---- */

static gf_status bn_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_bn_shape s;
    gf_status st = gf_bn_read_shape(ctx, 1, &s);
    if (st) return gf_cuda_node_context(ctx, st);
    if (s.c == 0) return GF_OK;
    bn_scratch w;
    if ((st = scratch_new(ctx, cu, s.c, &w))) return st;
    const float *dy = (const float *)ctx->inputs[0]->data, *x = (const float *)ctx->inputs[1]->data;
    const float *mean = (const float *)ctx->inputs[3]->data;
    widen_kernel<<<gf_cuda_blocks(s.c), GF_CUDA_THREADS, 0, cu->stream>>>(mean, s.c, w.shift);
    st = gf_cuda_launched(ctx, "widen_kernel");
    if (!st) st = gf_cuda_channel_sums(ctx, cu, x, dy, w.shift, s.n, s.c, s.inner, w.first, w.second);
    if (!st) {
        grad_finish_kernel<<<gf_cuda_blocks(s.c), GF_CUDA_THREADS, 0, cu->stream>>>(
            w.first, w.second, (double)(s.n * s.inner), (const float *)ctx->inputs[2]->data, mean,
            (const float *)ctx->inputs[4]->data, output_data(ctx, 1), output_data(ctx, 2), w.map, s.c);
        st = gf_cuda_launched(ctx, "grad_finish_kernel");
    }
    int64_t total = s.n * s.c * s.inner;
    if (!st && output_data(ctx, 0) && total > 0) {
        map_kernel<<<gf_cuda_blocks(total), GF_CUDA_THREADS, 0, cu->stream>>>(x, dy, w.map, output_data(ctx, 0), s.c,
                                                                               s.inner, total);
        st = gf_cuda_launched(ctx, "map_kernel");
    }
    gf_cuda_scratch_free(cu, w.block);
    return st;
}

static gf_status all_float(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, ctx->n_inputs); }

extern "C" const gf_cuda_op gf_cuda_ops_norm_grad[] = {
    {"ai.graft", "BatchNormTrain", 1, 0, bn_train_cuda, all_float, 0},
    {"ai.graft", "BatchNormGrad", 1, 0, bn_grad_cuda, all_float, 0},
    {0},
};
