/* The geometry of Conv, ConvTranspose and their gradients, and FusedConv's extras
 * (conv_shape.h). */
#include "conv_shape.h"

#include <stdio.h>
#include <string.h>


/* Floor division, for the negative total padding output_shape can ask for. */
static int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* ConvTranspose's output size and pads: from output_shape, from auto_pad (output =
 * input x stride), or from explicit pads and output_padding. */
static gf_status transpose_geometry(const gf_op_ctx *ctx, gf_conv_shape *sh)
{
    gf_window *w = &sh->w;
    int nsp = w->nsp, n_outpad, n_outshape;
    const int64_t *outpad = gf_attr_ints(ctx->node, "output_padding", &n_outpad);
    const int64_t *outshape = gf_attr_ints(ctx->node, "output_shape", &n_outshape);
    const char *auto_pad = gf_attr_string(ctx->node, "auto_pad", "NOTSET");
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    if (!same_upper && !same_lower && strcmp(auto_pad, "VALID") && strcmp(auto_pad, "NOTSET"))
        return gf_fail(GF_ERR_INVALID, "unknown auto_pad '%s'", auto_pad);
    if (outpad && n_outpad != nsp)
        return gf_fail(GF_ERR_INVALID, "output_padding has %d values, expected %d", n_outpad, nsp);
    if (outshape && n_outshape != nsp && n_outshape != nsp + 2)
        return gf_fail(GF_ERR_INVALID, "output_shape has %d values, expected %d", n_outshape, nsp);
    if (outshape) outshape += n_outshape - nsp; /* a full N, C, spatial... shape is allowed too */
    for (int d = 0; d < nsp; d++) {
        int64_t op = outpad ? outpad[d] : 0;
        if (op < 0 || op >= ((int64_t)1 << 31))
            return gf_fail(GF_ERR_INVALID, "output_padding[%d] = %lld is out of range", d, (long long)op);
        sh->outpad[d] = op;
        /* The output the kernels cover with no padding at all. */
        int64_t full = w->stride[d] * (w->in[d] - 1) + op + gf_window_extent(w, d);
        if (outshape || same_upper || same_lower) {
            int64_t target = outshape ? outshape[d] : w->in[d] * w->stride[d];
            if (target < 1 || target >= ((int64_t)1 << 31))
                return gf_fail(GF_ERR_INVALID, "output_shape[%d] = %lld is out of range", d, (long long)target);
            int64_t total = full - target;
            w->pad_begin[d] = same_upper ? floor_div2(total) : total - floor_div2(total);
            w->pad_end[d] = total - w->pad_begin[d];
        } else if (!strcmp(auto_pad, "VALID")) {
            w->pad_begin[d] = w->pad_end[d] = 0;
        }
        w->out[d] = full - w->pad_begin[d] - w->pad_end[d];
        w->pad_end[d] -= op;
        if (w->out[d] < 1)
            return gf_fail(GF_ERR_SHAPE, "spatial dim %d of the output would be %lld", d, (long long)w->out[d]);
    }
    return GF_OK;
}

gf_status gf_conv_read_shape(const gf_op_ctx *ctx, int transpose, gf_conv_shape *sh)
{
    gf_status st = gf_check_inputs(ctx, 2, 3);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *w = ctx->inputs[1], *b = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    static const gf_dtype types[] = {GF_FLOAT, GF_FLOAT16, GF_UNDEFINED};
    if ((st = gf_check_dtype(ctx, 0, types))) return st;
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return gf_fail(GF_ERR_SHAPE, "X is %s but W is %s%s%s", gf_dtype_name(x->dtype), gf_dtype_name(w->dtype),
                       b ? " and B is " : "", b ? gf_dtype_name(b->dtype) : "");
    if (x->rank < 3) return gf_fail(GF_ERR_SHAPE, "input X has rank %d, expected N x C x spatial dims", x->rank);
    if (w->rank != x->rank) return gf_fail(GF_ERR_SHAPE, "W has rank %d but X has rank %d", w->rank, x->rank);
    int64_t group = gf_attr_int(ctx->node, "group", 1);
    memset(sh, 0, sizeof *sh);
    sh->transpose = transpose;
    sh->n = x->dims[0];
    sh->c = x->dims[1];
    sh->group = group;
    if (group < 1 || group > sh->c || sh->c % group)
        return gf_fail(GF_ERR_INVALID, "group %lld does not divide the %lld input channels", (long long)group,
                       (long long)sh->c);
    if (transpose) {
        if (w->dims[0] != sh->c)
            return gf_fail(GF_ERR_SHAPE, "input X has %lld channels, W expects %lld", (long long)sh->c,
                           (long long)w->dims[0]);
        if (w->dims[1] > INT64_MAX / group) return gf_fail(GF_ERR_SHAPE, "W has too many output channels");
        sh->m = w->dims[1] * group;
    } else {
        if (w->dims[1] * group != sh->c)
            return gf_fail(GF_ERR_SHAPE, "input X has %lld channels, W expects %lld", (long long)sh->c,
                           (long long)(w->dims[1] * group));
        sh->m = w->dims[0];
        if (sh->m % group)
            return gf_fail(GF_ERR_SHAPE, "group %lld does not divide the %lld output channels", (long long)group,
                           (long long)sh->m);
    }
    if (b && (b->rank != 1 || b->dims[0] != sh->m))
        return gf_fail(GF_ERR_SHAPE, "B must hold one value for each of the %lld output channels", (long long)sh->m);
    sh->has_bias = b != NULL;

    int n_kernel;
    const int64_t *kernel_attr = gf_attr_ints(ctx->node, "kernel_shape", &n_kernel);
    if (kernel_attr && n_kernel != x->rank - 2)
        return gf_fail(GF_ERR_INVALID, "kernel_shape has %d values, expected %d", n_kernel, x->rank - 2);
    for (int d = 0; kernel_attr && d < n_kernel; d++)
        if (kernel_attr[d] != w->dims[2 + d])
            return gf_fail(GF_ERR_SHAPE, "kernel_shape[%d] = %lld but W's kernel is %lld", d,
                           (long long)kernel_attr[d], (long long)w->dims[2 + d]);
    if ((st = gf_window_read(ctx, x, w->dims + 2, &sh->w))) return st;
    return transpose ? transpose_geometry(ctx, sh) : gf_window_forward(ctx, 0, &sh->w);
}

gf_status gf_conv_grad_geometry(const gf_op_ctx *ctx, const gf_tensor *dy, const gf_tensor *x, const char *x_name,
                                const gf_tensor *w, const char *w_name, gf_conv_grad_shape *sh)
{
    if (x->rank < 3) return gf_fail(GF_ERR_SHAPE, "%s has rank %d, expected N x C x spatial dims", x_name, x->rank);
    if (w->rank != x->rank)
        return gf_fail(GF_ERR_SHAPE, "%s has rank %d but %s has rank %d", w_name, w->rank, x_name, x->rank);
    memset(sh, 0, sizeof *sh);
    sh->n = x->dims[0];
    sh->c = x->dims[1];
    sh->m = w->dims[0];
    sh->group = gf_attr_int(ctx->node, "group", 1);
    if (sh->group < 1 || sh->group > sh->c || sh->c % sh->group)
        return gf_fail(GF_ERR_INVALID, "group %lld does not divide the %lld channels of %s", (long long)sh->group,
                       (long long)sh->c, x_name);
    if (w->dims[1] != sh->c / sh->group)
        return gf_fail(GF_ERR_SHAPE, "%s has %lld channels in %lld groups, so %s's dim 1 must be %lld, is %lld", x_name,
                       (long long)sh->c, (long long)sh->group, w_name, (long long)(sh->c / sh->group),
                       (long long)w->dims[1]);
    if (sh->m % sh->group)
        return gf_fail(GF_ERR_SHAPE, "group %lld does not divide the %lld output channels of %s", (long long)sh->group,
                       (long long)sh->m, w_name);
    int n_kernel;
    const int64_t *kernel_attr = gf_attr_ints(ctx->node, "kernel_shape", &n_kernel);
    if (kernel_attr && n_kernel != x->rank - 2)
        return gf_fail(GF_ERR_INVALID, "kernel_shape has %d values, expected %d", n_kernel, x->rank - 2);
    for (int d = 0; kernel_attr && d < n_kernel; d++)
        if (kernel_attr[d] != w->dims[2 + d])
            return gf_fail(GF_ERR_SHAPE, "kernel_shape[%d] = %lld but %s's kernel is %lld", d,
                           (long long)kernel_attr[d], w_name, (long long)w->dims[2 + d]);
    gf_status st = gf_window_read(ctx, x, w->dims + 2, &sh->w);
    if (!st) st = gf_window_forward(ctx, 0, &sh->w);
    if (!st) st = gf_check_numel(x->rank, x->dims);
    if (!st) st = gf_check_numel(w->rank, w->dims);
    if (st) return st;
    char conv[96];
    snprintf(conv, sizeof conv, "the Conv of %s with %s", x_name, w_name);
    return gf_window_check_output(dy, "dY", sh->n, sh->m, &sh->w, conv);
}

gf_status gf_conv_read_fusion(const gf_op_ctx *ctx, gf_op_ctx *conv, gf_conv_fusion *f)
{
    *conv = *ctx;
    memset(f, 0, sizeof *f);
    if (strcmp(ctx->node->op_type, "FusedConv")) return GF_OK;
    if (ctx->n_inputs < 2 || ctx->n_inputs > 4)
        return gf_fail(GF_ERR_INVALID, "expects 2 to 4 inputs, has %d", ctx->n_inputs);
    conv->n_inputs = ctx->n_inputs < 3 ? ctx->n_inputs : 3;
    if (conv->n_inputs == 3 && !ctx->inputs[2]) conv->n_inputs = 2;
    f->has_sum = ctx->n_inputs > 3 && ctx->inputs[3];
    const char *act = gf_attr_string(ctx->node, "activation", "");
    if (!strcmp(act, "Relu")) f->act = GF_CONV_ACT_RELU;
    else if (!strcmp(act, "LeakyRelu")) f->act = GF_CONV_ACT_LEAKY;
    else if (*act) return gf_fail(GF_ERR_UNSUPPORTED, "unknown activation '%s'", act);
    f->alpha = f->act == GF_CONV_ACT_LEAKY ? gf_attr_float(ctx->node, "alpha", 0.01f) : 0.0f;
    const char *algo = gf_attr_string(ctx->node, "algorithm", "direct");
    if (!strcmp(algo, "winograd")) f->winograd = 1;
    else if (strcmp(algo, "direct")) return gf_fail(GF_ERR_UNSUPPORTED, "unknown algorithm '%s'", algo);
    return GF_OK;
}
