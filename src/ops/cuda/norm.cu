/* BatchNormalization on the GPU (twin: ops/norm.c), float32.
 *
 * Inference (running statistics) goes to cuDNN's batch norm, which computes
 * (x - mean) / sqrt(var + eps) * scale + B; graft's direct kernel computes the
 * reference's y = x * a + b with a = scale / sqrt(var + eps) (in double, rounded to
 * float) and b = B - mean * a, bit for bit. Training mode (opset 14's training_mode, or
 * the statistics outputs of opsets 7-13) uses the batch statistics, as the reference's:
 * the mean, then the biased variance around it, each a per-channel sum in double, and
 * running = input * momentum + batch * (1 - momentum) in float. */
#include "cuda_util.cuh"

#include "../norm.h"

/* a = scale / sqrt(var + eps) (double, to float), b = B - mean * a (float). */
__global__ void bn_coef_kernel(const float *scale, const float *bias, const float *mean, const float *var, float eps,
                               int64_t c, float *a, float *b)
{
    GF_CUDA_LOOP(i, c) {
        float ai = (float)(scale[i] / sqrt((double)var[i] + eps));
        a[i] = ai;
        b[i] = bias[i] - mean[i] * ai;
    }
}

__global__ void bn_apply_kernel(const float *x, float *y, const float *a, const float *b, int64_t c, int64_t inner,
                                int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        int64_t ch = i / inner % c;
        y[i] = x[i] * a[ch] + b[ch];
    }
}

__global__ void bn_mean_kernel(const double *sum, double count, int64_t c, double *mean)
{
    GF_CUDA_LOOP(i, c) mean[i] = count ? sum[i] / count : 0;
}

/* From the batch mean (double) and the sum of squared deviations: the batch statistics
 * as floats, the map's coefficients, and the running statistics asked for. running_*
 * may share storage with the inputs: each channel reads them before writing. */
__global__ void bn_train_finish(const double *mean, const double *sq, double count, const float *scale,
                                const float *bias, const float *in_mean, const float *in_var, float eps,
                                float momentum, int64_t c, float *a, float *b, float *mean_out, float *var_out)
{
    GF_CUDA_LOOP(i, c) {
        float bm = (float)mean[i], bv = (float)(count ? sq[i] / count : 0);
        float ai = (float)(scale[i] / sqrt((double)bv + eps));
        a[i] = ai;
        b[i] = bias[i] - bm * ai;
        if (mean_out) mean_out[i] = in_mean[i] * momentum + bm * (1 - momentum);
        if (var_out) var_out[i] = in_var[i] * momentum + bv * (1 - momentum);
    }
}

static gf_status bn_cudnn(gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_bn_view *v, float eps)
{
    int dims[4] = {(int)v->n, (int)v->c, (int)v->inner, 1};
    cudnnTensorDescriptor_t xdesc = NULL, pdesc = NULL;
    const float one = 1.0f, zero = 0.0f;
    gf_status st;
    if (!(st = GF_CUDNN(ctx, cudnnCreateTensorDescriptor(&xdesc))) &&
        !(st = GF_CUDNN(ctx, cudnnCreateTensorDescriptor(&pdesc))) &&
        !(st = GF_CUDNN(ctx, cudnnSetTensor4dDescriptor(xdesc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, dims[0], dims[1],
                                                        dims[2], dims[3]))) &&
        !(st = GF_CUDNN(ctx, cudnnDeriveBNTensorDescriptor(pdesc, xdesc, CUDNN_BATCHNORM_SPATIAL))))
        st = GF_CUDNN(ctx, cudnnBatchNormalizationForwardInference(
                               cu->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xdesc, ctx->inputs[0]->data, xdesc,
                               ctx->outputs[0]->data, pdesc, ctx->inputs[1]->data, ctx->inputs[2]->data,
                               ctx->inputs[3]->data, ctx->inputs[4]->data, (double)eps));
    if (pdesc) cudnnDestroyTensorDescriptor(pdesc);
    if (xdesc) cudnnDestroyTensorDescriptor(xdesc);
    return st;
}

static gf_status bn_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_bn_view v = {0, 0, 0, 0};
    gf_status st = gf_check_inputs(ctx, 5, 5);
    if (!st) st = gf_bn_view_of(ctx, &v);
    if (st) return gf_cuda_node_context(ctx, st);
    const float *x = (const float *)ctx->inputs[0]->data, *scale = (const float *)ctx->inputs[1]->data;
    const float *bias = (const float *)ctx->inputs[2]->data, *mean = (const float *)ctx->inputs[3]->data;
    const float *var = (const float *)ctx->inputs[4]->data;
    float *y = ctx->outputs[0] ? (float *)ctx->outputs[0]->data : NULL;
    float eps = gf_attr_float(ctx->node, "epsilon", 1e-5f);
    int64_t total = v.n * v.c * v.inner;
    if (!v.training && y && total > 0 && !cu->opt.prefer_direct && v.n <= INT32_MAX && v.c <= INT32_MAX &&
        v.inner <= INT32_MAX && total <= INT32_MAX)
        return bn_cudnn(ctx, cu, &v, eps);
    if (v.c == 0) return GF_OK;
    float *coef = NULL;
    double *stats = NULL;
    if ((st = gf_cuda_scratch(ctx, cu, (size_t)(2 * v.c) * sizeof(float), (void **)&coef))) return st;
    float *a = coef, *b = coef + v.c;
    if (!v.training) {
        bn_coef_kernel<<<gf_cuda_blocks(v.c), GF_CUDA_THREADS, 0, cu->stream>>>(scale, bias, mean, var, eps, v.c, a, b);
        st = gf_cuda_launched(ctx, "bn_coef_kernel");
    } else {
        /* the mean, then the squared deviations around it (norm.c's bn_batch_stats) */
        double count = (double)(v.n * v.inner);
        float momentum = gf_attr_float(ctx->node, "momentum", 0.9f);
        st = gf_cuda_scratch(ctx, cu, (size_t)(4 * v.c) * sizeof(double), (void **)&stats);
        double *sum = stats, *unused = stats + v.c, *m = stats + 2 * v.c, *sq = stats + 3 * v.c;
        if (!st) st = gf_cuda_channel_sums(ctx, cu, x, NULL, NULL, v.n, v.c, v.inner, sum, unused);
        if (!st) {
            bn_mean_kernel<<<gf_cuda_blocks(v.c), GF_CUDA_THREADS, 0, cu->stream>>>(sum, count, v.c, m);
            st = gf_cuda_launched(ctx, "bn_mean_kernel");
        }
        if (!st) st = gf_cuda_channel_sums(ctx, cu, x, NULL, m, v.n, v.c, v.inner, unused, sq);
        float *mean_out = ctx->n_outputs > 1 && ctx->outputs[1] ? (float *)ctx->outputs[1]->data : NULL;
        float *var_out = ctx->n_outputs > 2 && ctx->outputs[2] ? (float *)ctx->outputs[2]->data : NULL;
        if (!st) {
            bn_train_finish<<<gf_cuda_blocks(v.c), GF_CUDA_THREADS, 0, cu->stream>>>(
                m, sq, count, scale, bias, mean, var, eps, momentum, v.c, a, b, mean_out, var_out);
            st = gf_cuda_launched(ctx, "bn_train_finish");
        }
    }
    if (!st && y && total > 0) {
        bn_apply_kernel<<<gf_cuda_blocks(total), GF_CUDA_THREADS, 0, cu->stream>>>(x, y, a, b, v.c, v.inner, total);
        st = gf_cuda_launched(ctx, "bn_apply_kernel");
    }
    gf_cuda_scratch_free(cu, coef);
    gf_cuda_scratch_free(cu, stats);
    return st;
}

extern "C" const gf_cuda_op gf_cuda_ops_norm[] = {
    {"", "BatchNormalization", 6, 0, bn_cuda, gf_cuda_check_all_float, 0},
    {0},
};
