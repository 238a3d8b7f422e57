/* Normalizations: BatchNormalization, InstanceNormalization, LayerNormalization,
 * LpNormalization, LRN and MeanVarianceNormalization. Float32 only; statistics
 * are accumulated in double. */
#include "norm.h"

#include <math.h>
#include <stdlib.h>

static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};

static gf_status check_float_inputs(const gf_op_ctx *ctx)
{
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (!ctx->inputs[i]) continue;
        gf_status st = gf_check_dtype(ctx, i, float_only);
        if (st) return st;
    }
    return GF_OK;
}

static int64_t product(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= dims[d];
    return p;
}

/* Mean and biased variance of n values `stride` apart. */
static void mean_var(const float *x, int64_t n, int64_t stride, double *mean, double *var)
{
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i * stride];
    double m = n ? sum / (double)n : 0;
    for (int64_t i = 0; i < n; i++) {
        double d = x[i * stride] - m;
        sq += d * d;
    }
    *mean = m;
    *var = n ? sq / (double)n : 0;
}

/* ---- BatchNormalization ---- */

gf_status gf_bn_view_of(const gf_op_ctx *ctx, gf_bn_view *v)
{
    const gf_node *node = ctx->node;
    const gf_tensor *x = ctx->inputs[0];
    if (x->rank < 2)
        return gf_fail(GF_ERR_SHAPE, "input X has rank %d; it needs [N, C, ...]", x->rank);
    v->n = x->dims[0];
    v->c = x->dims[1];
    v->inner = product(x->dims, 2, x->rank);
    if (node->opset < 9 && gf_attr_int(node, "spatial", 1) == 0) {
        v->c *= v->inner;
        v->inner = 1;
    }
    if (node->opset >= 14) {
        v->training = gf_attr_int(node, "training_mode", 0) != 0;
    } else if (node->opset < 7) {
        v->training = gf_attr_int(node, "is_test", 0) == 0;
    } else {
        /* From opset 7 to 13, asking for the statistics outputs means training. */
        v->training = 0;
        for (int i = 1; i < ctx->n_outputs; i++)
            if (ctx->outputs[i]) v->training = 1;
    }
    if (v->training && node->opset < 14)
        for (int i = 3; i < ctx->n_outputs; i++)
            if (ctx->outputs[i])
                return gf_fail(GF_ERR_UNSUPPORTED,
                               "the saved_mean/saved_var outputs of opset %d training mode are not supported",
                               node->opset);
    return GF_OK;
}

static gf_status bn_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 5, 5);
    if (st || (st = check_float_inputs(ctx))) return st;
    gf_bn_view v;
    if ((st = gf_bn_view_of(ctx, &v))) return st;
    static const char *const names[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++)
        if (gf_tensor_numel(ctx->inputs[i]) != v.c)
            return gf_fail(GF_ERR_SHAPE, "input %s has %lld elements, X has %lld channels", names[i],
                           (long long)gf_tensor_numel(ctx->inputs[i]), (long long)v.c);
    gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    for (int i = 1; i < ctx->n_outputs && i < 3; i++)
        if (ctx->outputs[i]) gf_set_like(ctx->outputs[i], ctx->inputs[i + 2]);
    return GF_OK;
}

/* y = x * a + b per channel, with a = scale / sqrt(var + eps), b = B - mean * a. */
static void bn_apply(const gf_bn_view *v, const float *x, float *y, const float *scale, const float *bias,
                     const float *mean, const float *var, float eps)
{
    #pragma omp parallel for schedule(static) if (v->n * v->c * v->inner > 32768)
    for (int64_t nc = 0; nc < v->n * v->c; nc++) {
        int64_t c = nc % v->c;
        float a = (float)(scale[c] / sqrt((double)var[c] + eps));
        float b = bias[c] - mean[c] * a;
        const float *xs = x + nc * v->inner;
        float *ys = y + nc * v->inner;
        for (int64_t i = 0; i < v->inner; i++) ys[i] = xs[i] * a + b;
    }
}

/* Batch statistics per channel over N and the spatial positions (biased variance). */
static void bn_batch_stats(const gf_bn_view *v, const float *x, float *mean, float *var)
{
    #pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < v->c; c++) {
        double sum = 0, sq = 0, count = (double)(v->n * v->inner);
        for (int64_t n = 0; n < v->n; n++)
            for (int64_t i = 0; i < v->inner; i++) sum += x[(n * v->c + c) * v->inner + i];
        double m = count ? sum / count : 0;
        for (int64_t n = 0; n < v->n; n++)
            for (int64_t i = 0; i < v->inner; i++) {
                double d = x[(n * v->c + c) * v->inner + i] - m;
                sq += d * d;
            }
        mean[c] = (float)m;
        var[c] = (float)(count ? sq / count : 0);
    }
}

static gf_status bn_cpu(gf_op_ctx *ctx)
{
    gf_bn_view v;
    gf_status st = gf_bn_view_of(ctx, &v);
    if (st) return st;
    const float *x = ctx->inputs[0]->data, *scale = ctx->inputs[1]->data, *bias = ctx->inputs[2]->data;
    const float *mean = ctx->inputs[3]->data, *var = ctx->inputs[4]->data;
    float eps = gf_attr_float(ctx->node, "epsilon", 1e-5f);
    if (!v.training) {
        bn_apply(&v, x, ctx->outputs[0]->data, scale, bias, mean, var, eps);
        return GF_OK;
    }
    float *batch = malloc(2 * (size_t)v.c * sizeof(float) + 1);
    if (!batch) return gf_fail(GF_ERR_NOMEM, "out of memory for batch statistics of %lld channels", (long long)v.c);
    float *batch_mean = batch, *batch_var = batch + v.c;
    bn_batch_stats(&v, x, batch_mean, batch_var);
    bn_apply(&v, x, ctx->outputs[0]->data, scale, bias, batch_mean, batch_var, eps);
    /* running = input * momentum + batch * (1 - momentum) */
    float momentum = gf_attr_float(ctx->node, "momentum", 0.9f);
    const float *inputs[2] = {mean, var}, *batches[2] = {batch_mean, batch_var};
    for (int k = 0; k < 2; k++) {
        if (ctx->n_outputs <= k + 1 || !ctx->outputs[k + 1]) continue;
        float *out = ctx->outputs[k + 1]->data;
        for (int64_t c = 0; c < v.c; c++) out[c] = inputs[k][c] * momentum + batches[k][c] * (1 - momentum);
    }
    free(batch);
    return GF_OK;
}

/* ---- InstanceNormalization ---- */

static gf_status instance_norm_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (st || (st = check_float_inputs(ctx))) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (x->rank < 3)
        return gf_fail(GF_ERR_SHAPE, "input has rank %d; it needs [N, C, D1, ...]", x->rank);
    for (int i = 1; i < 3; i++)
        if (gf_tensor_numel(ctx->inputs[i]) != x->dims[1])
            return gf_fail(GF_ERR_SHAPE, "input %s has %lld elements, input has %lld channels",
                           i == 1 ? "scale" : "B", (long long)gf_tensor_numel(ctx->inputs[i]),
                           (long long)x->dims[1]);
    gf_set_like(ctx->outputs[0], x);
    return GF_OK;
}

static gf_status instance_norm_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *xt = ctx->inputs[0];
    const float *x = xt->data, *scale = ctx->inputs[1]->data, *bias = ctx->inputs[2]->data;
    float *y = ctx->outputs[0]->data;
    int64_t c_count = xt->dims[1], lines = xt->dims[0] * c_count, inner = product(xt->dims, 2, xt->rank);
    double eps = gf_attr_float(ctx->node, "epsilon", 1e-5f);
    #pragma omp parallel for schedule(static) if (lines * inner > 32768)
    for (int64_t nc = 0; nc < lines; nc++) {
        int64_t c = nc % c_count;
        double mean, var;
        mean_var(x + nc * inner, inner, 1, &mean, &var);
        float a = (float)(scale[c] / sqrt(var + eps));
        float b = (float)(bias[c] - mean * a);
        for (int64_t i = 0; i < inner; i++) y[nc * inner + i] = x[nc * inner + i] * a + b;
    }
    return GF_OK;
}

/* ---- LayerNormalization ---- */

/* Scale and B broadcast to X's shape; graft takes those that vary only over the
 * normalized axes [axis, rank). `strides` are the tensor's strides over X's
 * dims (0 on broadcast axes); `dense` says the offset is simply the position in
 * the normalized block. */
typedef struct ln_param {
    const float *data;
    int64_t strides[GF_MAX_RANK];
    int dense;
} ln_param;

static gf_status ln_check_param(const gf_op_ctx *ctx, int i, int axis)
{
    const gf_tensor *x = ctx->inputs[0], *p = ctx->inputs[i];
    const char *name = i == 1 ? "Scale" : "B";
    if (p->rank > x->rank)
        return gf_fail(GF_ERR_SHAPE, "input %s has rank %d, more than X's %d", name, p->rank, x->rank);
    for (int d = 0; d < p->rank; d++) {
        int xd = d + x->rank - p->rank;
        if (p->dims[d] != 1 && p->dims[d] != x->dims[xd])
            return gf_fail(GF_ERR_SHAPE, "input %s (dim %d = %lld) does not broadcast to X (dim %d = %lld)",
                           name, d, (long long)p->dims[d], xd, (long long)x->dims[xd]);
        if (p->dims[d] != 1 && xd < axis)
            return gf_fail(GF_ERR_UNSUPPORTED, "input %s varies along axis %d, before the normalized axis %d",
                           name, xd, axis);
    }
    return GF_OK;
}

static gf_status ln_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 3);
    if (st || (st = check_float_inputs(ctx))) return st;
    const gf_tensor *x = ctx->inputs[0];
    int axis;
    if ((st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", -1), x->rank, &axis))) return st;
    for (int i = 1; i < ctx->n_inputs; i++)
        if (ctx->inputs[i] && (st = ln_check_param(ctx, i, axis))) return st;
    gf_set_like(ctx->outputs[0], x);
    int64_t stat_dims[GF_MAX_RANK];
    for (int d = 0; d < x->rank; d++) stat_dims[d] = d < axis ? x->dims[d] : 1;
    for (int i = 1; i < ctx->n_outputs && i < 3; i++)
        if (ctx->outputs[i]) gf_set_shape(ctx->outputs[i], GF_FLOAT, x->rank, stat_dims);
    return GF_OK;
}

static void ln_param_init(ln_param *p, const gf_tensor *t, const gf_tensor *x, int64_t inner)
{
    p->data = t ? t->data : NULL;
    if (!t) return;
    gf_broadcast_strides(t, x->rank, x->dims, p->strides);
    p->dense = gf_tensor_numel(t) == inner;
}

/* Offset in the parameter of position j of the normalized block [axis, rank). */
static int64_t ln_param_offset(const ln_param *p, const gf_tensor *x, int axis, int64_t j)
{
    if (p->dense) return j;
    int64_t off = 0;
    for (int d = x->rank - 1; d >= axis; d--) {
        off += (j % x->dims[d]) * p->strides[d];
        j /= x->dims[d];
    }
    return off;
}

static gf_status ln_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *xt = ctx->inputs[0];
    int axis;
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", -1), xt->rank, &axis);
    if (st) return st;
    int64_t outer = product(xt->dims, 0, axis), inner = product(xt->dims, axis, xt->rank);
    double eps = gf_attr_float(ctx->node, "epsilon", 1e-5f);
    ln_param scale, bias;
    ln_param_init(&scale, ctx->inputs[1], xt, inner);
    ln_param_init(&bias, ctx->n_inputs > 2 ? ctx->inputs[2] : NULL, xt, inner);
    float *mean_out = ctx->n_outputs > 1 && ctx->outputs[1] ? ctx->outputs[1]->data : NULL;
    float *inv_std_out = ctx->n_outputs > 2 && ctx->outputs[2] ? ctx->outputs[2]->data : NULL;
    const float *x = xt->data;
    float *y = ctx->outputs[0]->data;
    #pragma omp parallel for schedule(static) if (outer * inner > 32768)
    for (int64_t o = 0; o < outer; o++) {
        double mean, var;
        mean_var(x + o * inner, inner, 1, &mean, &var);
        double inv_std = 1.0 / sqrt(var + eps);
        for (int64_t j = 0; j < inner; j++) {
            double v = (x[o * inner + j] - mean) * inv_std * scale.data[ln_param_offset(&scale, xt, axis, j)];
            if (bias.data) v += bias.data[ln_param_offset(&bias, xt, axis, j)];
            y[o * inner + j] = (float)v;
        }
        if (mean_out) mean_out[o] = (float)mean;
        if (inv_std_out) inv_std_out[o] = (float)inv_std;
    }
    return GF_OK;
}

/* ---- LpNormalization ---- */

static gf_status lp_view(const gf_op_ctx *ctx, int64_t *outer, int64_t *n, int64_t *inner)
{
    const gf_tensor *x = ctx->inputs[0];
    int axis;
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", -1), x->rank, &axis);
    if (st) return st;
    int64_t p = gf_attr_int(ctx->node, "p", 2);
    if (p != 1 && p != 2) return gf_fail(GF_ERR_INVALID, "p is %lld; it must be 1 or 2", (long long)p);
    *outer = product(x->dims, 0, axis);
    *n = x->rank ? x->dims[axis] : 1;
    *inner = product(x->dims, axis + 1, x->rank);
    return GF_OK;
}

static gf_status lp_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st || (st = check_float_inputs(ctx))) return st;
    int64_t outer, n, inner;
    if ((st = lp_view(ctx, &outer, &n, &inner))) return st;
    gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return GF_OK;
}

static gf_status lp_cpu(gf_op_ctx *ctx)
{
    int64_t outer, n, inner;
    gf_status st = lp_view(ctx, &outer, &n, &inner);
    if (st) return st;
    int p = (int)gf_attr_int(ctx->node, "p", 2);
    const float *x = ctx->inputs[0]->data;
    float *y = ctx->outputs[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xs = x + o * n * inner + i;
            float *ys = y + o * n * inner + i;
            double norm = 0;
            for (int64_t j = 0; j < n; j++) norm += p == 1 ? fabs(xs[j * inner]) : (double)xs[j * inner] * xs[j * inner];
            if (p == 2) norm = sqrt(norm);
            for (int64_t j = 0; j < n; j++) ys[j * inner] = (float)(xs[j * inner] / norm);
        }
    return GF_OK;
}

/* ---- LRN ---- */

static gf_status lrn_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st || (st = check_float_inputs(ctx))) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (x->rank < 3) return gf_fail(GF_ERR_SHAPE, "input has rank %d; it needs [N, C, D1, ...]", x->rank);
    int64_t size = gf_attr_int(ctx->node, "size", 0);
    if (size < 1 || size > INT32_MAX) return gf_fail(GF_ERR_INVALID, "size is %lld; it must be positive", (long long)size);
    gf_set_like(ctx->outputs[0], x);
    return GF_OK;
}

/* y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta, the
 * window of channel c being [c - floor((size-1)/2), c + ceil((size-1)/2)]. */
static gf_status lrn_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *xt = ctx->inputs[0];
    const float *x = xt->data;
    float *y = ctx->outputs[0]->data;
    int64_t size = gf_attr_int(ctx->node, "size", 1);
    double alpha = gf_attr_float(ctx->node, "alpha", 1e-4f), beta = gf_attr_float(ctx->node, "beta", 0.75f);
    double bias = gf_attr_float(ctx->node, "bias", 1.0f);
    int64_t channels = xt->dims[1], inner = product(xt->dims, 2, xt->rank);
    int64_t before = (size - 1) / 2, after = size / 2;
    #pragma omp parallel for schedule(static) if (xt->dims[0] * channels * inner > 32768)
    for (int64_t nc = 0; nc < xt->dims[0] * channels; nc++) {
        int64_t n = nc / channels, c = nc % channels;
        int64_t lo = c - before < 0 ? 0 : c - before, hi = c + after >= channels ? channels - 1 : c + after;
        for (int64_t i = 0; i < inner; i++) {
            double sq = 0;
            for (int64_t k = lo; k <= hi; k++) {
                double v = x[(n * channels + k) * inner + i];
                sq += v * v;
            }
            y[nc * inner + i] = (float)(x[nc * inner + i] / pow(bias + alpha / (double)size * sq, beta));
        }
    }
    return GF_OK;
}

/* ---- MeanVarianceNormalization ---- */

/* Marks the reduced axes; fails on an axis out of range or repeated. */
static gf_status mvn_axes(const gf_op_ctx *ctx, int reduced[GF_MAX_RANK])
{
    static const int64_t default_axes[] = {0, 2, 3};
    int rank = ctx->inputs[0]->rank, count;
    const int64_t *axes = gf_attr_ints(ctx->node, "axes", &count);
    if (!axes) axes = default_axes, count = 3;
    for (int d = 0; d < GF_MAX_RANK; d++) reduced[d] = 0;
    for (int k = 0; k < count; k++) {
        int a;
        gf_status st = gf_axis(ctx, axes[k], rank, &a);
        if (st) return st;
        if (reduced[a]) return gf_fail(GF_ERR_INVALID, "axis %lld is repeated in axes", (long long)axes[k]);
        reduced[a] = 1;
    }
    return GF_OK;
}

static gf_status mvn_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st || (st = check_float_inputs(ctx))) return st;
    int reduced[GF_MAX_RANK];
    if ((st = mvn_axes(ctx, reduced))) return st;
    gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return GF_OK;
}

/* Index among the kept (not reduced) positions of the element at linear index e. */
static int64_t mvn_kept_index(const gf_tensor *x, const int *reduced, int64_t e)
{
    int64_t k = 0, stride = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        if (!reduced[d]) k += (e % x->dims[d]) * stride, stride *= x->dims[d];
        e /= x->dims[d];
    }
    return k;
}

/* y = (x - mean) / (sqrt(var) + 1e-9) over the reduced axes, as ONNX's function body. */
static gf_status mvn_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *xt = ctx->inputs[0];
    int reduced[GF_MAX_RANK];
    gf_status st = mvn_axes(ctx, reduced);
    if (st) return st;
    int64_t total = gf_tensor_numel(xt), kept = 1;
    for (int d = 0; d < xt->rank; d++)
        if (!reduced[d]) kept *= xt->dims[d];
    if (total == 0) return GF_OK;
    double *mean = calloc((size_t)kept * 2, sizeof(double));
    if (!mean) return gf_fail(GF_ERR_NOMEM, "out of memory for statistics of %lld groups", (long long)kept);
    double *divisor = mean + kept;   /* sum of squared deviations, then sqrt(var) + 1e-9 */
    double count = (double)(total / kept);
    const float *x = xt->data;
    float *y = ctx->outputs[0]->data;
    for (int64_t e = 0; e < total; e++) mean[mvn_kept_index(xt, reduced, e)] += x[e];
    for (int64_t k = 0; k < kept; k++) mean[k] /= count;
    for (int64_t e = 0; e < total; e++) {
        int64_t k = mvn_kept_index(xt, reduced, e);
        divisor[k] += (x[e] - mean[k]) * (x[e] - mean[k]);
    }
    for (int64_t k = 0; k < kept; k++) divisor[k] = sqrt(divisor[k] / count) + 1e-9;
    for (int64_t e = 0; e < total; e++) {
        int64_t k = mvn_kept_index(xt, reduced, e);
        y[e] = (float)((x[e] - mean[k]) / divisor[k]);
    }
    free(mean);
    return GF_OK;
}

const gf_op gf_ops_norm[] = {
    {"", "BatchNormalization", 6, 0, bn_infer, bn_cpu},
    {"", "InstanceNormalization", 6, 0, instance_norm_infer, instance_norm_cpu},
    {"", "LayerNormalization", 17, 0, ln_infer, ln_cpu},
    {"", "LpNormalization", 1, 0, lp_infer, lp_cpu},
    {"", "LRN", 1, 0, lrn_infer, lrn_cpu},
    {"", "MeanVarianceNormalization", 9, 0, mvn_infer, mvn_cpu},
    {0},
};
