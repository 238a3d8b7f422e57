/* ConvGradInput and ConvGradWeight (domain ai.graft): the gradients of a float32 Conv
 * Y = Conv(X, W) over 1 to 3 spatial dims with respect to X and to W. Both take that
 * Conv's attributes (auto_pad, dilations, group, kernel_shape, pads, strides):
 *
 *   ConvGradInput(dY, W, x_shape) -> dX, shaped x_shape:
 *     dX[n, c, i] = sum of dY[n, m, o] * W[m, c mod C/group, k] over the output channels m
 *                   of c's group and the taps k with o * stride - pad_begin + k * dilation = i
 *   ConvGradWeight(dY, X, w_shape) -> dW, shaped w_shape:
 *     dW[m, c, k] = sum of dY[n, m, o] * X[n, group(m) * C/group + c, o * stride - pad_begin + k * dilation]
 *                   over the batch and the output positions whose tap k lands inside X
 *
 * x_shape and w_shape are 1-D int64 (or int32) tensors. dY must be N x M x the output size
 * that Conv computes from X's size and the attributes. That is all ConvGradWeight asks of
 * dY, so it is also the weight gradient of ConvTranspose(x, W): ConvGradWeight(x, dy,
 * shape of W) with ConvTranspose's strides, pads, dilations and group.
 *
 * The reference kernels sum in double, each output element by one thread in a fixed
 * order, so results do not depend on the thread count. The fast paths are oneDNN's
 * backward-data and backward-weights convolutions, one plan per shape. */
#include "conv_shape.h"
#include "dnnl_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};

typedef enum grad_kind { GRAD_INPUT, GRAD_WEIGHT } grad_kind;

static const char *shape_input_name(grad_kind kind) { return kind == GRAD_INPUT ? "x_shape" : "w_shape"; }

/* Reads either op's inputs (dY, a float32 tensor, and a shape read into *shaped: the
 * output's shape) and the forward Conv's geometry. *dynamic is set, and nothing else
 * checked, when that shape is not known yet. */
static gf_status read_conv_grad(const gf_op_ctx *ctx, grad_kind kind, gf_conv_grad_shape *sh, gf_tensor *shaped,
                                int *dynamic)
{
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (!st) st = gf_check_dtype(ctx, 1, float_only);
    if (st) return st;
    *dynamic = !gf_values_known(ctx->inputs[2]);
    if (*dynamic) return GF_OK;
    if ((st = gf_shape_input(ctx->inputs[2], shape_input_name(kind), shaped))) return st;
    const gf_tensor *dy = ctx->inputs[0], *other = ctx->inputs[1];
    if (kind == GRAD_INPUT) return gf_conv_grad_geometry(ctx, dy, shaped, "X (x_shape)", other, "W", sh);
    return gf_conv_grad_geometry(ctx, dy, other, "X", shaped, "W (w_shape)", sh);
}

/* ---- reference kernels ---- */

/* Input position ip receives output position op through tap kp when
 * op * stride - pad_begin + kp * dilation = ip; false when no output lands there. */
static int output_of_tap(const gf_window *w, const int64_t *ip, const int64_t *kp, int64_t *op)
{
    for (int d = 0; d < 3; d++) {
        int64_t t = ip[d] + w->pad_begin[d] - kp[d] * w->dilation[d];
        if (t < 0 || t % w->stride[d] || t / w->stride[d] >= w->out[d]) return 0;
        op[d] = t / w->stride[d];
    }
    return 1;
}

/* The input position tap kp of output position op reads; false when it is padding. */
static int input_of_tap(const gf_window *w, const int64_t *op, const int64_t *kp, int64_t *ip)
{
    for (int d = 0; d < 3; d++) {
        ip[d] = op[d] * w->stride[d] - w->pad_begin[d] + kp[d] * w->dilation[d];
        if (ip[d] < 0 || ip[d] >= w->in[d]) return 0;
    }
    return 1;
}

static int64_t flat_index(const int64_t *pos, const int64_t *dims) { return (pos[0] * dims[1] + pos[1]) * dims[2] + pos[2]; }

static void grad_input_reference(const gf_conv_grad_shape *sh, const float *dy, const float *w, float *dx)
{
    const gf_window *win = &sh->w;
    int64_t cg = sh->c / sh->group, mg = sh->m / sh->group;
    int64_t in_size = gf_window_size(win->in), out_size = gf_window_size(win->out), k_size = gf_window_size(win->kernel);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < sh->n; n++)
        for (int64_t c = 0; c < sh->c; c++) {
            int64_t g = c / cg;
            const float *dyg = dy + (n * sh->m + g * mg) * out_size; /* this group's output channels */
            const float *wc = w + (g * mg * cg + c % cg) * k_size;   /* W[g * mg, c mod cg]; the next m is cg * k_size on */
            float *dxc = dx + (n * sh->c + c) * in_size;
            for (int64_t i = 0; i < in_size; i++) {
                int64_t ip[3], kp[3], op[3];
                gf_window_pos(i, win->in, ip);
                double acc = 0;
                for (int64_t k = 0; k < k_size; k++) {
                    gf_window_pos(k, win->kernel, kp);
                    if (!output_of_tap(win, ip, kp, op)) continue;
                    int64_t o = flat_index(op, win->out);
                    for (int64_t m = 0; m < mg; m++) acc += (double)dyg[m * out_size + o] * wc[m * cg * k_size + k];
                }
                dxc[i] = (float)acc;
            }
        }
}

static void grad_weight_reference(const gf_conv_grad_shape *sh, const float *dy, const float *x, float *dw)
{
    const gf_window *win = &sh->w;
    int64_t cg = sh->c / sh->group, mg = sh->m / sh->group;
    int64_t in_size = gf_window_size(win->in), out_size = gf_window_size(win->out), k_size = gf_window_size(win->kernel);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t m = 0; m < sh->m; m++)
        for (int64_t c = 0; c < cg; c++) {
            int64_t xc = m / mg * cg + c; /* the channel of X this weight reads */
            for (int64_t k = 0; k < k_size; k++) {
                int64_t kp[3], op[3], ip[3];
                gf_window_pos(k, win->kernel, kp);
                double acc = 0;
                for (int64_t n = 0; n < sh->n; n++) {
                    const float *dym = dy + (n * sh->m + m) * out_size, *xn = x + (n * sh->c + xc) * in_size;
                    for (int64_t o = 0; o < out_size; o++) {
                        gf_window_pos(o, win->out, op);
                        if (input_of_tap(win, op, kp, ip)) acc += (double)dym[o] * xn[flat_index(ip, win->in)];
                    }
                }
                dw[(m * cg + c) * k_size + k] = (float)acc;
            }
        }
}

static void run_reference(gf_op_ctx *ctx, grad_kind kind, const gf_conv_grad_shape *sh)
{
    const float *dy = ctx->inputs[0]->data, *other = ctx->inputs[1]->data;
    if (kind == GRAD_INPUT) grad_input_reference(sh, dy, other, ctx->outputs[0]->data);
    else grad_weight_reference(sh, dy, other, ctx->outputs[0]->data);
}

/* ---- oneDNN fast path ---- */

/* Everything a plan depends on; all int64 so the key has no padding bytes. Weights
 * change between training steps, so no plan keeps a reordered constant and plans are
 * shared by all nodes of one shape. */
typedef struct conv_grad_key {
    int64_t kind, nsp, n, c, m, group;
    int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
    int64_t dy_layout, x_layout; /* X's is dX's for ConvGradInput */
} conv_grad_key;

static conv_grad_key make_key(const gf_op_ctx *ctx, grad_kind kind, const gf_conv_grad_shape *sh)
{
    conv_grad_key k;
    memset(&k, 0, sizeof k);
    k.dy_layout = gf_in_layout(ctx, 0);
    k.x_layout = kind == GRAD_INPUT ? gf_out_layout(ctx, 0) : gf_in_layout(ctx, 1);
    k.kind = kind;
    k.nsp = sh->w.nsp;
    k.n = sh->n;
    k.c = sh->c;
    k.m = sh->m;
    k.group = sh->group;
    for (int d = 0; d < 3; d++) {
        k.in[d] = sh->w.in[d];
        k.out[d] = sh->w.out[d];
        k.kernel[d] = sh->w.kernel[d];
        k.stride[d] = sh->w.stride[d];
        k.dilation[d] = sh->w.dilation[d];
        k.pad_begin[d] = sh->w.pad_begin[d];
        k.pad_end[d] = sh->w.pad_end[d];
    }
    return k;
}

/* Plan arguments in the order of the op's tensors: dY, then W (ConvGradInput) or X
 * (ConvGradWeight), then the output. Each is in graft's layout to the caller (dense W and
 * dW, X, dX and dY plain or blocked as the session says); to the primitive, activations
 * are channel-blocked, as for the forward convolution (gf_dnnl_blocked_md), weights "any". */
static gf_status build_plan(gf_dnnl_plan *plan, const void *arg)
{
    const conv_grad_key *k = arg;
    int nsp = (int)k->nsp, rank = nsp + 2, grouped = k->group > 1, w_rank = rank + grouped;
    /* Dense M x C/group x kernel weights are (group,) M/group x C/group x kernel to oneDNN. */
    int64_t x_dims[5] = {k->n, k->c}, y_dims[5] = {k->n, k->m}, w_dims[6] = {k->group};
    w_dims[grouped] = k->m / k->group;
    w_dims[grouped + 1] = k->c / k->group;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
    for (int d = 0; d < nsp; d++) {
        x_dims[2 + d] = k->in[d];
        y_dims[2 + d] = k->out[d];
        w_dims[grouped + 2 + d] = k->kernel[d];
        strides[d] = k->stride[d];
        dilates[d] = k->dilation[d] - 1; /* oneDNN counts the gaps */
        pad_l[d] = k->pad_begin[d];
        pad_r[d] = k->pad_end[d];
    }
    dnnl_memory_desc_t x_user, w_user, y_user, x_any, w_any, y_any;
    if (gf_dnnl_layout_md(&x_user, rank, x_dims, (int)k->x_layout) || gf_dnnl_md(&w_user, w_rank, w_dims, NULL) ||
        gf_dnnl_layout_md(&y_user, rank, y_dims, (int)k->dy_layout) || gf_dnnl_blocked_md(&x_any, rank, x_dims) ||
        gf_dnnl_any_md(&w_any, w_rank, w_dims) || gf_dnnl_blocked_md(&y_any, rank, y_dims))
        return GF_OK; /* no fast path for these shapes */
    dnnl_convolution_desc_t fwd, bwd;
    if (dnnl_dilated_convolution_forward_desc_init(&fwd, dnnl_forward_training, dnnl_convolution_direct, &x_any,
                                                   &w_any, NULL, &y_any, strides, dilates, pad_l,
                                                   pad_r) != dnnl_success)
        return GF_OK;
    if (k->kind == GRAD_INPUT) {
        gf_dnnl_arg_desc args[3] = {{DNNL_ARG_DIFF_DST, y_user, 0}, {DNNL_ARG_WEIGHTS, w_user, 0},
                                    {DNNL_ARG_DIFF_SRC, x_user, 1}};
        if (dnnl_dilated_convolution_backward_data_desc_init(&bwd, dnnl_convolution_direct, &x_any, &w_any, &y_any,
                                                             strides, dilates, pad_l, pad_r) != dnnl_success)
            return GF_OK;
        return gf_dnnl_plan_build_backward(plan, &bwd, &fwd, 3, args);
    }
    gf_dnnl_arg_desc args[3] = {{DNNL_ARG_DIFF_DST, y_user, 0}, {DNNL_ARG_SRC, x_user, 0},
                                {DNNL_ARG_DIFF_WEIGHTS, w_user, 1}};
    if (dnnl_dilated_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &x_any, &w_any, NULL,
                                                            &y_any, strides, dilates, pad_l, pad_r) != dnnl_success)
        return GF_OK;
    return gf_dnnl_plan_build_backward(plan, &bwd, &fwd, 3, args);
}

static int fast_path_fits(const gf_op_ctx *ctx)
{
    return gf_fastpath_enabled() && gf_tensor_numel(ctx->inputs[0]) > 0 && gf_tensor_numel(ctx->inputs[1]) > 0 &&
           gf_tensor_numel(ctx->outputs[0]) > 0;
}

/* The plan for these shapes; GF_ERR_UNSUPPORTED when oneDNN has no implementation. */
static gf_status get_plan(const gf_op_ctx *ctx, grad_kind kind, const gf_conv_grad_shape *sh, gf_dnnl_plan **plan)
{
    conv_grad_key key = make_key(ctx, kind, sh);
    gf_status st = gf_dnnl_plan_get(&key, sizeof key, build_plan, &key, plan);
    if (st || (*plan)->prim) return st;
    gf_dnnl_plan_release(*plan);
    return gf_fail(GF_ERR_UNSUPPORTED, "oneDNN has no implementation for this convolution gradient");
}

static gf_status run_fast(gf_op_ctx *ctx, grad_kind kind, const gf_conv_grad_shape *sh)
{
    gf_dnnl_plan *plan;
    gf_status st = get_plan(ctx, kind, sh, &plan);
    if (st) return st;
    void *data[3] = {ctx->inputs[0]->data, ctx->inputs[1]->data, ctx->outputs[0]->data};
    st = gf_dnnl_plan_run(plan, data);
    gf_dnnl_plan_release(plan);
    return st;
}

/* ---- the ops ---- */

static grad_kind kind_of(const gf_op_ctx *ctx)
{
    return strcmp(ctx->node->op_type, "ConvGradInput") ? GRAD_WEIGHT : GRAD_INPUT;
}

/* Sets dX's or dW's shape, and builds the plan now so the first run finds it. */
static gf_status conv_grad_infer(gf_op_ctx *ctx)
{
    grad_kind kind = kind_of(ctx);
    gf_conv_grad_shape sh;
    gf_tensor shaped;
    int dynamic;
    gf_status st = read_conv_grad(ctx, kind, &sh, &shaped, &dynamic);
    if (st || !ctx->outputs[0]) return st;
    if (dynamic) {
        gf_set_dynamic(ctx->outputs[0], GF_FLOAT);
        return GF_OK;
    }
    gf_set_shape(ctx->outputs[0], GF_FLOAT, shaped.rank, shaped.dims);
    if (ctx->shapes_only || !fast_path_fits(ctx)) return GF_OK;
    gf_dnnl_plan *plan;
    st = get_plan(ctx, kind, &sh, &plan);
    if (st == GF_ERR_UNSUPPORTED) {
        gf_clear_error();
        return GF_OK; /* the reference will run */
    }
    if (!st) gf_dnnl_plan_release(plan);
    return st;
}

/* dY, X (ConvGradWeight) and dX (ConvGradInput) may be blocked: oneDNN takes them so
 * (the reference, for the geometries oneDNN lacks, runs on plain copies). */
static gf_status conv_grad_layouts(gf_op_ctx *ctx)
{
    grad_kind kind = kind_of(ctx);
    gf_conv_grad_shape sh;
    gf_tensor shaped;
    int dynamic;
    gf_status st = read_conv_grad(ctx, kind, &sh, &shaped, &dynamic);
    if (st || dynamic || !ctx->outputs[0] || !fast_path_fits(ctx)) return st;
    ctx->in_layout[0] = GF_LAYOUT_CAN_BLOCK;
    if (kind == GRAD_INPUT) ctx->out_layout[0] = GF_LAYOUT_CAN_BLOCK;
    else ctx->in_layout[1] = GF_LAYOUT_CAN_BLOCK;
    return GF_OK;
}

/* The reference on plain copies of blocked tensors. */
static gf_status reference_any_layout(gf_op_ctx *ctx, grad_kind kind, const gf_conv_grad_shape *sh)
{
    int dy_l = gf_in_layout(ctx, 0), x_l = kind == GRAD_INPUT ? gf_out_layout(ctx, 0) : gf_in_layout(ctx, 1);
    if (!dy_l && !x_l) {
        run_reference(ctx, kind, sh);
        return GF_OK;
    }
    const gf_tensor *dy = ctx->inputs[0], *other = ctx->inputs[1];
    gf_tensor *out = ctx->outputs[0];
    const gf_tensor *x = kind == GRAD_INPUT ? out : other;
    float *pdy = dy_l ? malloc(gf_tensor_nbytes(dy) + 1) : NULL, *px = x_l ? malloc(gf_tensor_nbytes(x) + 1) : NULL;
    gf_status st = (dy_l && !pdy) || (x_l && !px) ? gf_fail(GF_ERR_NOMEM, "out of memory") : GF_OK;
    if (!st && dy_l) st = gf_layout_convert(dy->rank, dy->dims, dy->data, dy_l, pdy, GF_LAYOUT_PLAIN);
    if (!st && x_l && kind == GRAD_WEIGHT) st = gf_layout_convert(x->rank, x->dims, x->data, x_l, px, GF_LAYOUT_PLAIN);
    if (!st) {
        const float *dyd = dy_l ? pdy : dy->data;
        if (kind == GRAD_INPUT) grad_input_reference(sh, dyd, other->data, x_l ? px : out->data);
        else grad_weight_reference(sh, dyd, x_l ? px : other->data, out->data);
        if (kind == GRAD_INPUT && x_l) st = gf_layout_convert(out->rank, out->dims, px, GF_LAYOUT_PLAIN, out->data, x_l);
    }
    free(pdy);
    free(px);
    return st;
}

static gf_status conv_grad_cpu(gf_op_ctx *ctx)
{
    grad_kind kind = kind_of(ctx);
    gf_conv_grad_shape sh;
    gf_tensor shaped;
    int dynamic;
    gf_status st = read_conv_grad(ctx, kind, &sh, &shaped, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "%s is still unknown while running", shape_input_name(kind));
    if (st || !ctx->outputs[0]) return st;
    if (fast_path_fits(ctx)) {
        st = run_fast(ctx, kind, &sh);
        if (st != GF_ERR_UNSUPPORTED) return st;
        gf_clear_error();
    }
    return reference_any_layout(ctx, kind, &sh);
}

const gf_op gf_ops_conv_grad[] = {
    {"ai.graft", "ConvGradInput", 1, 0, conv_grad_infer, conv_grad_cpu, 0, conv_grad_layouts},
    {"ai.graft", "ConvGradWeight", 1, 0, conv_grad_infer, conv_grad_cpu, 0, conv_grad_layouts},
    {0},
};
