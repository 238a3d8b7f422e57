/* Linear quantization: QuantizeLinear, DequantizeLinear (opset 10, per-axis
 * from 13), DynamicQuantizeLinear (11), ConvInteger and QLinearConv (10).
 * MatMulInteger and QLinearMatMul live with MatMul in gemm.c.
 *
 *   quantize:    q = saturate(round(x / scale) + zero_point)
 *   dequantize:  x = (q - zero_point) * scale
 *
 * `round` is round-half-to-even (the default floating-point rounding mode,
 * via nearbyint), and saturate clamps to the range of the quantized type
 * (uint8 [0, 255] or int8 [-128, 127]). A float32 x is divided in float32, as
 * in the ONNX reference and onnxruntime, so ties land where theirs do.
 *
 * The integer convolutions are a plain loop: every output element sums
 * (x - x_zero_point) * (w - w_zero_point) over its window in 64-bit integers,
 * positions in the padding contributing nothing (the padding is a real zero,
 * as if x were padded with its zero point). */
#include "op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared pieces ---- */

static gf_status quantized_range(gf_dtype t, int32_t *lo, int32_t *hi)
{
    switch (t) {
    case GF_UINT8: *lo = 0, *hi = 255; return GF_OK;
    case GF_INT8: *lo = -128, *hi = 127; return GF_OK;
    default:
        *lo = *hi = 0;
        return gf_fail(GF_ERR_UNSUPPORTED, "quantized type %s is not supported; expected uint8 or int8", gf_dtype_name(t));
    }
}

/* round(v) + zero_point, half to even, clamped to [lo, hi]. NaN, which has no
 * quantized value, maps to the zero point (the quantized 0). */
static int32_t quantize_rounded(double v, int32_t zero_point, int32_t lo, int32_t hi)
{
    if (isnan(v)) return zero_point;
    double q = nearbyint(v) + zero_point;
    return q < lo ? lo : q > hi ? hi : (int32_t)q;
}

/* A scale or zero point: one value for the whole tensor (any shape holding
 * one element), or a 1-D tensor of one value per index of an axis. */
static int is_single_value(const gf_tensor *t) { return gf_tensor_numel(t) == 1 && t->rank <= 1; }

/* Checks a zero point against its scale (same number of values) and the type
 * it belongs with. */
static gf_status check_zero_point(const gf_tensor *zp, const char *name, const gf_tensor *scale, gf_dtype want)
{
    if (zp->dtype != want)
        return gf_fail(GF_ERR_INVALID, "%s is %s; expected %s", name, gf_dtype_name(zp->dtype), gf_dtype_name(want));
    if (gf_tensor_numel(zp) != gf_tensor_numel(scale) || zp->rank > 1)
        return gf_fail(GF_ERR_SHAPE, "%s has %lld values but its scale %lld", name,
                       (long long)gf_tensor_numel(zp), (long long)gf_tensor_numel(scale));
    return GF_OK;
}

/* ---- QuantizeLinear and DequantizeLinear ---- */

/* Which scale and zero point apply to element i of x: index (i / inner) % axis_dim
 * of per-axis parameters, index 0 of per-tensor ones. */
typedef struct quant_params {
    const gf_tensor *scale, *zero_point;   /* zero_point NULL when omitted */
    int per_axis;
    int64_t axis_dim, inner;
} quant_params;

static int64_t param_index(const quant_params *p, int64_t i)
{
    return p->per_axis ? (i / p->inner) % p->axis_dim : 0;
}

/* Reads x (input 0), scale (input 1) and the optional zero point (input 2),
 * whose type must be zp_type. */
static gf_status read_quant_params(const gf_op_ctx *ctx, gf_dtype zp_type, quant_params *p)
{
    const gf_tensor *x = ctx->inputs[0], *scale = ctx->inputs[1];
    memset(p, 0, sizeof *p);
    p->scale = scale;
    p->zero_point = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (scale->dtype != GF_FLOAT)
        return gf_fail(GF_ERR_UNSUPPORTED, "the scale is %s; expected float", gf_dtype_name(scale->dtype));
    if (!is_single_value(scale)) {
        if (ctx->node->opset < 13)
            return gf_fail(GF_ERR_INVALID, "the scale has %lld values; before opset 13 it must be a scalar",
                           (long long)gf_tensor_numel(scale));
        int axis;
        gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", 1), x->rank, &axis);
        if (st) return st;
        if (scale->rank != 1 || scale->dims[0] != x->dims[axis])
            return gf_fail(GF_ERR_SHAPE, "the scale has %lld values; expected one, or one per index of axis %d (%lld)",
                           (long long)gf_tensor_numel(scale), axis, (long long)x->dims[axis]);
        p->per_axis = 1;
        p->axis_dim = x->dims[axis];
        p->inner = 1;
        for (int d = axis + 1; d < x->rank; d++) p->inner *= x->dims[d];
    }
    if (p->zero_point) return check_zero_point(p->zero_point, "the zero point", scale, zp_type);
    return GF_OK;
}

static gf_status quantize_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 3);
    if (st) return st;
    static const gf_dtype inputs[] = {GF_FLOAT, GF_INT32, GF_FLOAT16, GF_DOUBLE, GF_UNDEFINED};
    if ((st = gf_check_dtype(ctx, 0, inputs))) return st;
    gf_dtype out = ctx->n_inputs > 2 && ctx->inputs[2] ? ctx->inputs[2]->dtype : GF_UINT8;
    int32_t lo, hi;
    quant_params p;
    if ((st = quantized_range(out, &lo, &hi)) || (st = read_quant_params(ctx, out, &p))) return st;
    const gf_tensor *x = ctx->inputs[0];
    gf_set_shape(ctx->outputs[0], out, x->rank, x->dims);
    return GF_OK;
}

static gf_status quantize_cpu(gf_op_ctx *ctx)
{
    gf_tensor *y = ctx->outputs[0];
    const gf_tensor *x = ctx->inputs[0];
    quant_params p;
    int32_t lo, hi;
    gf_status st = quantized_range(y->dtype, &lo, &hi);
    if (!st) st = read_quant_params(ctx, y->dtype, &p);
    if (st) return st;
    int64_t n = gf_tensor_numel(x);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        int64_t c = param_index(&p, i);
        float scale = ((const float *)p.scale->data)[c];
        int32_t zp = p.zero_point ? (int32_t)gf_int_at(p.zero_point, c) : 0;
        double v = x->dtype == GF_FLOAT ? (double)(((const float *)x->data)[i] / scale) : gf_num_at(x, i) / scale;
        gf_num_set(y, i, quantize_rounded(v, zp, lo, hi));
    }
    return GF_OK;
}

static gf_status dequantize_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 3);
    if (st) return st;
    static const gf_dtype inputs[] = {GF_UINT8, GF_INT8, GF_INT32, GF_UNDEFINED};
    if ((st = gf_check_dtype(ctx, 0, inputs))) return st;
    const gf_tensor *x = ctx->inputs[0];
    quant_params p;
    if ((st = read_quant_params(ctx, x->dtype, &p))) return st;
    /* An int32 x (a bias) has no zero point; a constant one must be 0. */
    if (x->dtype == GF_INT32 && p.zero_point && p.zero_point->data)
        for (int64_t c = 0; c < gf_tensor_numel(p.zero_point); c++)
            if (gf_int_at(p.zero_point, c) != 0)
                return gf_fail(GF_ERR_INVALID, "an int32 input must have zero point 0, not %lld",
                               (long long)gf_int_at(p.zero_point, c));
    gf_set_shape(ctx->outputs[0], GF_FLOAT, x->rank, x->dims);
    return GF_OK;
}

static gf_status dequantize_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    float *y = ctx->outputs[0]->data;
    quant_params p;
    gf_status st = read_quant_params(ctx, x->dtype, &p);
    if (st) return st;
    int64_t n = gf_tensor_numel(x);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        int64_t c = param_index(&p, i);
        int64_t zp = p.zero_point ? gf_int_at(p.zero_point, c) : 0;
        y[i] = (float)(gf_int_at(x, i) - zp) * ((const float *)p.scale->data)[c];
    }
    return GF_OK;
}

/* ---- DynamicQuantizeLinear ---- */

static gf_status dynamic_quantize_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    static const gf_dtype inputs[] = {GF_FLOAT, GF_UNDEFINED};
    if (st || (st = gf_check_dtype(ctx, 0, inputs))) return st;
    gf_set_shape(ctx->outputs[0], GF_UINT8, ctx->inputs[0]->rank, ctx->inputs[0]->dims);
    if (ctx->n_outputs > 1 && ctx->outputs[1]) gf_set_shape(ctx->outputs[1], GF_FLOAT, 0, NULL);
    if (ctx->n_outputs > 2 && ctx->outputs[2]) gf_set_shape(ctx->outputs[2], GF_UINT8, 0, NULL);
    return GF_OK;
}

/* uint8 quantization over the range of x widened to include 0:
 *   scale = (max - min) / 255, zero_point = saturate(round(-min / scale)).
 * When x is all zeros the range is empty and the scale is taken as 1 (as
 * onnxruntime does) rather than dividing by zero. */
static gf_status dynamic_quantize_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    const float *xd = x->data;
    int64_t n = gf_tensor_numel(x);
    float min = 0, max = 0;
    for (int64_t i = 0; i < n; i++) {
        if (xd[i] < min) min = xd[i];
        if (xd[i] > max) max = xd[i];
    }
    float scale = max == min ? 1.0f : (max - min) / 255.0f;
    int32_t zp = quantize_rounded((double)(-min / scale), 0, 0, 255);
    uint8_t *y = ctx->outputs[0]->data;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = (uint8_t)quantize_rounded((double)(xd[i] / scale), zp, 0, 255);
    if (ctx->n_outputs > 1 && ctx->outputs[1]) *(float *)ctx->outputs[1]->data = scale;
    if (ctx->n_outputs > 2 && ctx->outputs[2]) *(uint8_t *)ctx->outputs[2]->data = (uint8_t)zp;
    return GF_OK;
}

/* ---- ConvInteger and QLinearConv ---- */

/* A 2-D convolution's geometry: x [N, C, H, W], w [M, C/group, KH, KW], y [N, M, OH, OW]. */
typedef struct conv2d_geom {
    int64_t n, c, h, w, m, kh, kw, oh, ow, group;
    int64_t stride[2], dilation[2], pad_begin[2];
} conv2d_geom;

/* Reads a 2-element attribute list, `dflt` when absent; values must lie in [lo, 2^31). */
static gf_status pair_attr(const gf_op_ctx *ctx, const char *name, int64_t dflt, int64_t lo, int64_t *out)
{
    int count;
    const int64_t *v = gf_attr_ints(ctx->node, name, &count);
    if (!v) {
        out[0] = out[1] = dflt;
        return GF_OK;
    }
    if (count != 2) return gf_fail(GF_ERR_INVALID, "%s has %d values; a 2-D convolution needs 2", name, count);
    for (int i = 0; i < 2; i++) {
        if (v[i] < lo || v[i] > INT32_MAX)
            return gf_fail(GF_ERR_INVALID, "%s[%d] = %lld is out of range", name, i, (long long)v[i]);
        out[i] = v[i];
    }
    return GF_OK;
}

/* Output size and leading pad of one spatial axis. */
static gf_status conv_axis(const gf_op_ctx *ctx, int axis, int64_t in, int64_t k, const int64_t *pads,
                           conv2d_geom *g, int64_t *out)
{
    int64_t s = g->stride[axis], d = g->dilation[axis], span = (k - 1) * d + 1;
    const char *auto_pad = gf_attr_string(ctx->node, "auto_pad", "NOTSET");
    int64_t begin, end;
    if (!strcmp(auto_pad, "NOTSET")) {
        begin = pads[axis], end = pads[axis + 2];
    } else if (!strcmp(auto_pad, "VALID")) {
        begin = end = 0;
    } else if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
        int64_t want = (in + s - 1) / s, total = (want - 1) * s + span - in;
        if (total < 0) total = 0;
        begin = !strcmp(auto_pad, "SAME_UPPER") ? total / 2 : total - total / 2;
        end = total - begin;
    } else {
        return gf_fail(GF_ERR_INVALID, "auto_pad is '%s'; expected NOTSET, VALID, SAME_UPPER or SAME_LOWER", auto_pad);
    }
    if (in + begin + end < span)
        return gf_fail(GF_ERR_SHAPE, "spatial axis %d: the input (%lld, padded %lld+%lld) is smaller than the dilated kernel (%lld)",
                       axis, (long long)in, (long long)begin, (long long)end, (long long)span);
    g->pad_begin[axis] = begin;
    *out = (in + begin + end - span) / s + 1;
    return GF_OK;
}

/* Checks x (input xi) and w (input wi) and works out the geometry. */
static gf_status conv2d_geometry(const gf_op_ctx *ctx, int xi, int wi, conv2d_geom *g)
{
    const gf_tensor *x = ctx->inputs[xi], *w = ctx->inputs[wi];
    static const gf_dtype eight_bit[] = {GF_UINT8, GF_INT8, GF_UNDEFINED};
    gf_status st;
    if ((st = gf_check_dtype(ctx, xi, eight_bit)) || (st = gf_check_dtype(ctx, wi, eight_bit))) return st;
    if (x->rank != 4 || w->rank != 4)
        return gf_fail(GF_ERR_UNSUPPORTED, "x has rank %d and w rank %d; only 2-D convolutions (rank 4) are supported",
                       x->rank, w->rank);
    memset(g, 0, sizeof *g);
    g->n = x->dims[0], g->c = x->dims[1], g->h = x->dims[2], g->w = x->dims[3];
    g->m = w->dims[0], g->kh = w->dims[2], g->kw = w->dims[3];
    g->group = gf_attr_int(ctx->node, "group", 1);
    if (g->group < 1 || g->c % g->group || g->m % g->group)
        return gf_fail(GF_ERR_INVALID, "group %lld does not divide %lld input and %lld output channels",
                       (long long)g->group, (long long)g->c, (long long)g->m);
    if (w->dims[1] != g->c / g->group)
        return gf_fail(GF_ERR_SHAPE, "x has %lld channels in %lld groups, w expects %lld per group",
                       (long long)g->c, (long long)g->group, (long long)w->dims[1]);
    int count;
    const int64_t *kernel = gf_attr_ints(ctx->node, "kernel_shape", &count);
    if (kernel && (count != 2 || kernel[0] != g->kh || kernel[1] != g->kw))
        return gf_fail(GF_ERR_SHAPE, "kernel_shape does not match w's %lldx%lld kernel", (long long)g->kh, (long long)g->kw);
    int64_t pads[4] = {0, 0, 0, 0};
    const int64_t *p = gf_attr_ints(ctx->node, "pads", &count);
    if (p) {
        if (count != 4) return gf_fail(GF_ERR_INVALID, "pads has %d values; a 2-D convolution needs 4", count);
        for (int i = 0; i < 4; i++) {
            if (p[i] < 0 || p[i] > INT32_MAX)
                return gf_fail(GF_ERR_INVALID, "pads[%d] = %lld is out of range", i, (long long)p[i]);
            pads[i] = p[i];
        }
    }
    if ((st = pair_attr(ctx, "strides", 1, 1, g->stride)) || (st = pair_attr(ctx, "dilations", 1, 1, g->dilation)))
        return st;
    if ((st = conv_axis(ctx, 0, g->h, g->kh, pads, g, &g->oh)) || (st = conv_axis(ctx, 1, g->w, g->kw, pads, g, &g->ow)))
        return st;
    return GF_OK;
}

/* The zero point of a quantized tensor: one value, or one per output channel
 * when `per_channel` is the channel count (0: one value only). */
static gf_status check_conv_zero_point(const gf_op_ctx *ctx, int zi, int of, int64_t per_channel)
{
    const gf_tensor *zp = ctx->n_inputs > zi ? ctx->inputs[zi] : NULL;
    if (!zp) return GF_OK;
    const gf_tensor *t = ctx->inputs[of];
    if (zp->dtype != t->dtype)
        return gf_fail(GF_ERR_INVALID, "zero point (input %d) is %s but its tensor %s", zi,
                       gf_dtype_name(zp->dtype), gf_dtype_name(t->dtype));
    if (is_single_value(zp) || (per_channel && zp->rank == 1 && zp->dims[0] == per_channel)) return GF_OK;
    return gf_fail(GF_ERR_SHAPE, "zero point (input %d) has %lld values; expected 1%s", zi,
                   (long long)gf_tensor_numel(zp), per_channel ? " or one per output channel" : "");
}

static int32_t zero_point_at(const gf_tensor *zp, int64_t channel)
{
    if (!zp) return 0;
    return (int32_t)gf_int_at(zp, gf_tensor_numel(zp) == 1 ? 0 : channel);
}

/* acc[n, m, oh, ow] = sum over the window of (x - x_zp) * (w - w_zp[m]), in int64. */
static void conv2d_integer(const conv2d_geom *g, const gf_tensor *x, const gf_tensor *x_zp, const gf_tensor *w,
                           const gf_tensor *w_zp, int64_t *acc)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group, planes = g->n * g->m;
    int32_t xz = zero_point_at(x_zp, 0);
    #pragma omp parallel for schedule(static) if (planes * g->oh * g->ow * cg * g->kh * g->kw > 65536)
    for (int64_t plane = 0; plane < planes; plane++) {
        int64_t n = plane / g->m, m = plane % g->m, c0 = (m / mg) * cg;
        int32_t wz = zero_point_at(w_zp, m);
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t sum = 0;
                for (int64_t c = 0; c < cg; c++)
                    for (int64_t ky = 0; ky < g->kh; ky++) {
                        int64_t iy = oy * g->stride[0] - g->pad_begin[0] + ky * g->dilation[0];
                        if (iy < 0 || iy >= g->h) continue;
                        for (int64_t kx = 0; kx < g->kw; kx++) {
                            int64_t ix = ox * g->stride[1] - g->pad_begin[1] + kx * g->dilation[1];
                            if (ix < 0 || ix >= g->w) continue;
                            int64_t xv = gf_int_at(x, ((n * g->c + c0 + c) * g->h + iy) * g->w + ix) - xz;
                            int64_t wv = gf_int_at(w, ((m * cg + c) * g->kh + ky) * g->kw + kx) - wz;
                            sum += xv * wv;
                        }
                    }
                acc[(plane * g->oh + oy) * g->ow + ox] = sum;
            }
    }
}

/* ConvInteger(x, w, x_zero_point?, w_zero_point?) -> int32 */
static gf_status conv_integer_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 4);
    conv2d_geom g;
    if (st || (st = conv2d_geometry(ctx, 0, 1, &g))) return st;
    if ((st = check_conv_zero_point(ctx, 2, 0, 0)) || (st = check_conv_zero_point(ctx, 3, 1, g.m))) return st;
    int64_t dims[4] = {g.n, g.m, g.oh, g.ow};
    gf_set_shape(ctx->outputs[0], GF_INT32, 4, dims);
    return GF_OK;
}

static gf_status conv_integer_cpu(gf_op_ctx *ctx)
{
    conv2d_geom g;
    gf_status st = conv2d_geometry(ctx, 0, 1, &g);
    if (st) return st;
    int64_t n = gf_tensor_numel(ctx->outputs[0]);
    int64_t *acc = malloc((size_t)n * sizeof *acc + 1);
    if (!acc) return gf_fail(GF_ERR_NOMEM, "out of memory for the accumulators");
    conv2d_integer(&g, ctx->inputs[0], ctx->n_inputs > 2 ? ctx->inputs[2] : NULL, ctx->inputs[1],
                   ctx->n_inputs > 3 ? ctx->inputs[3] : NULL, acc);
    int32_t *y = ctx->outputs[0]->data;
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(uint32_t)(uint64_t)acc[i];   /* int32 wraps, like onnxruntime */
    free(acc);
    return GF_OK;
}

/* QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B?):
 *   y = saturate(round((acc + B[m]) * x_scale * w_scale[m] / y_scale) + y_zp)
 * with the scale factor formed in float as onnxruntime and QLinearMatMul do. */
static gf_status qlinear_conv_check(const gf_op_ctx *ctx, conv2d_geom *g)
{
    gf_status st = gf_check_inputs(ctx, 8, 9);
    if (st || (st = conv2d_geometry(ctx, 0, 3, g))) return st;
    if ((st = check_conv_zero_point(ctx, 2, 0, 0)) || (st = check_conv_zero_point(ctx, 5, 3, g->m))) return st;
    static const int scales[] = {1, 4, 6};
    for (int i = 0; i < 3; i++) {
        const gf_tensor *s = ctx->inputs[scales[i]];
        if (s->dtype != GF_FLOAT)
            return gf_fail(GF_ERR_INVALID, "scale (input %d) is %s; expected float", scales[i], gf_dtype_name(s->dtype));
        if (!is_single_value(s) && !(scales[i] == 4 && s->rank == 1 && s->dims[0] == g->m))
            return gf_fail(GF_ERR_SHAPE, "scale (input %d) has %lld values; expected 1%s", scales[i],
                           (long long)gf_tensor_numel(s), scales[i] == 4 ? " or one per output channel" : "");
    }
    const gf_tensor *y_zp = ctx->inputs[7];
    int32_t lo, hi;
    if ((st = quantized_range(y_zp->dtype, &lo, &hi))) return st;
    if (!is_single_value(y_zp)) return gf_fail(GF_ERR_SHAPE, "y_zero_point must be one value");
    const gf_tensor *b = ctx->n_inputs > 8 ? ctx->inputs[8] : NULL;
    if (b && (b->dtype != GF_INT32 || b->rank != 1 || b->dims[0] != g->m))
        return gf_fail(GF_ERR_SHAPE, "B must be int32 [%lld] (one per output channel)", (long long)g->m);
    return GF_OK;
}

static gf_status qlinear_conv_infer(gf_op_ctx *ctx)
{
    conv2d_geom g;
    gf_status st = qlinear_conv_check(ctx, &g);
    if (st) return st;
    int64_t dims[4] = {g.n, g.m, g.oh, g.ow};
    gf_set_shape(ctx->outputs[0], ctx->inputs[7]->dtype, 4, dims);
    return GF_OK;
}

static gf_status qlinear_conv_cpu(gf_op_ctx *ctx)
{
    conv2d_geom g;
    gf_status st = qlinear_conv_check(ctx, &g);
    if (st) return st;
    gf_tensor *y = ctx->outputs[0];
    int32_t lo, hi, y_zp = zero_point_at(ctx->inputs[7], 0);
    if ((st = quantized_range(y->dtype, &lo, &hi))) return st;
    int64_t n = gf_tensor_numel(y), plane = g.oh * g.ow;
    int64_t *acc = malloc((size_t)n * sizeof *acc + 1);
    if (!acc) return gf_fail(GF_ERR_NOMEM, "out of memory for the accumulators");
    conv2d_integer(&g, ctx->inputs[0], ctx->inputs[2], ctx->inputs[3], ctx->inputs[5], acc);
    const gf_tensor *w_scale = ctx->inputs[4], *b = ctx->n_inputs > 8 ? ctx->inputs[8] : NULL;
    float x_scale = *(const float *)ctx->inputs[1]->data, y_scale = *(const float *)ctx->inputs[6]->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t m = (i / plane) % g.m;
        float ws = ((const float *)w_scale->data)[gf_tensor_numel(w_scale) == 1 ? 0 : m];
        float factor = x_scale * ws / y_scale;
        int64_t total = acc[i] + (b ? ((const int32_t *)b->data)[m] : 0);
        gf_num_set(y, i, quantize_rounded((double)total * factor, y_zp, lo, hi));
    }
    free(acc);
    return GF_OK;
}

const gf_op gf_ops_quant[] = {
    {"", "QuantizeLinear", 10, 20, quantize_infer, quantize_cpu},
    {"", "DequantizeLinear", 10, 20, dequantize_infer, dequantize_cpu},
    {"", "DynamicQuantizeLinear", 11, 0, dynamic_quantize_infer, dynamic_quantize_cpu},
    {"", "ConvInteger", 10, 0, conv_integer_infer, conv_integer_cpu},
    {"", "QLinearConv", 10, 0, qlinear_conv_infer, qlinear_conv_cpu},
    {0},
};
