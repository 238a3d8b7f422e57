/* Conv and ConvTranspose over 1 to 3 spatial dims: plain C reference kernels, and a
 * oneDNN fast path for float32 that reads and writes activations plain or blocked
 * (op.h, GF_LAYOUT_*), as the session's layout pass says.
 *
 * FusedConv (domain ai.graft), which the session's rewrites make (runtime/fuse.c):
 *   FusedConv(X, W, B?, S?) -> Y = act(Conv(X, W, B) + S)
 * with Conv's attributes, S (optional) of Y's shape, and `activation` "" (none), "Relu"
 * or "LeakyRelu" (attribute alpha, 0.01). oneDNN runs it as one convolution with a binary
 * add post-op (S read as the outputs are stored) and an eltwise one, when S and Y are both
 * blocked; otherwise with the activation alone, or none, and S added after. Either way the
 * values are those of Conv, Add and the activation run one after the other, bit for bit:
 * the post-ops apply to the finished sums. (oneDNN's sum post-op would not do: it
 * accumulates into the output buffer across input-channel blocks, which rounds
 * differently.) Y must not be S's storage: the convolution stores partial sums in Y.
 * Attribute `algorithm` "winograd" (the session sets it for inference convolutions that
 * fit, fuse.c) asks for oneDNN's Winograd convolution, with a ReLU as a post-op and S or
 * a leaky slope (which oneDNN's Winograd kernels do not take) applied after; where
 * oneDNN has none, the direct one runs.
 * A Conv padded by a whole window or more (FCN's first layer pads 100) gets a padded copy
 * of X and no padding of its own: oneDNN's fast kernels take pads shorter than the
 * window only, and its reference loops are slower than a copy and the fast kernel. */
#include "conv_shape.h"
#include "dnnl_util.h"
#include "unary.h"

#include <stdlib.h>
#include <string.h>

/* ---- reference kernels (float32) ---- */

static void conv_reference(const gf_conv_shape *sh, const float *x, const float *w, const float *b, float *y)
{
    const gf_window *win = &sh->w;
    int64_t cg = sh->c / sh->group, mg = sh->m / sh->group;
    int64_t in_size = gf_window_size(win->in), out_size = gf_window_size(win->out), k_size = gf_window_size(win->kernel);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < sh->n; n++)
        for (int64_t m = 0; m < sh->m; m++) {
            const float *xg = x + (n * sh->c + m / mg * cg) * in_size; /* this group's input channels */
            const float *wm = w + m * cg * k_size;
            float *ym = y + (n * sh->m + m) * out_size;
            for (int64_t o = 0; o < out_size; o++) {
                int64_t op[3], kp[3], ip[3];
                gf_window_pos(o, win->out, op);
                double acc = b ? b[m] : 0.0;
                for (int64_t k = 0; k < k_size; k++) {
                    gf_window_pos(k, win->kernel, kp);
                    int inside = 1;
                    for (int d = 0; d < 3; d++) {
                        ip[d] = op[d] * win->stride[d] - win->pad_begin[d] + kp[d] * win->dilation[d];
                        inside &= ip[d] >= 0 && ip[d] < win->in[d];
                    }
                    if (!inside) continue;
                    int64_t i = (ip[0] * win->in[1] + ip[1]) * win->in[2] + ip[2];
                    for (int64_t c = 0; c < cg; c++) acc += (double)xg[c * in_size + i] * wm[c * k_size + k];
                }
                ym[o] = (float)acc;
            }
        }
}

/* Each output gathers the inputs whose strided position, plus a kernel tap, lands on
 * it: output o takes input i through tap k when o + pad_begin = i * stride + k * dilation. */
static void conv_transpose_reference(const gf_conv_shape *sh, const float *x, const float *w, const float *b, float *y)
{
    const gf_window *win = &sh->w;
    int64_t cg = sh->c / sh->group, mg = sh->m / sh->group;
    int64_t in_size = gf_window_size(win->in), out_size = gf_window_size(win->out), k_size = gf_window_size(win->kernel);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < sh->n; n++)
        for (int64_t m = 0; m < sh->m; m++) {
            int64_t g = m / mg, mo = m % mg;
            const float *xg = x + (n * sh->c + g * cg) * in_size;
            const float *wg = w + (g * cg * mg + mo) * k_size; /* W is C x M/group x kernel */
            float *ym = y + (n * sh->m + m) * out_size;
            for (int64_t o = 0; o < out_size; o++) {
                int64_t op[3], kp[3], ip[3];
                gf_window_pos(o, win->out, op);
                double acc = b ? b[m] : 0.0;
                for (int64_t k = 0; k < k_size; k++) {
                    gf_window_pos(k, win->kernel, kp);
                    int hit = 1;
                    for (int d = 0; d < 3; d++) {
                        int64_t t = op[d] + win->pad_begin[d] - kp[d] * win->dilation[d];
                        hit &= t >= 0 && t % win->stride[d] == 0 && t / win->stride[d] < win->in[d];
                        ip[d] = t / win->stride[d];
                    }
                    if (!hit) continue;
                    int64_t i = (ip[0] * win->in[1] + ip[1]) * win->in[2] + ip[2];
                    for (int64_t c = 0; c < cg; c++) acc += (double)xg[c * in_size + i] * wg[c * mg * k_size + k];
                }
                ym[o] = (float)acc;
            }
        }
}

static void reference_float(const gf_conv_shape *sh, const float *x, const float *w, const float *b, float *y)
{
    if (sh->transpose) conv_transpose_reference(sh, x, w, b, y);
    else conv_reference(sh, x, w, b, y);
}

static float *half_to_float_copy(const gf_tensor *t)
{
    int64_t n = gf_tensor_numel(t);
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    for (int64_t i = 0; f && i < n; i++) f[i] = gf_half_to_float(((const uint16_t *)t->data)[i]);
    return f;
}

/* float16 runs the float32 kernel on widened copies: the sums are more exact than
 * float16 arithmetic, and the result is rounded once. */
static gf_status run_reference(gf_op_ctx *ctx, const gf_conv_shape *sh)
{
    const gf_tensor *x = ctx->inputs[0], *w = ctx->inputs[1], *b = sh->has_bias ? ctx->inputs[2] : NULL;
    gf_tensor *y = ctx->outputs[0];
    if (x->dtype == GF_FLOAT) {
        reference_float(sh, x->data, w->data, b ? b->data : NULL, y->data);
        return GF_OK;
    }
    int64_t ny = gf_tensor_numel(y);
    float *fx = half_to_float_copy(x), *fw = half_to_float_copy(w), *fb = b ? half_to_float_copy(b) : NULL;
    float *fy = malloc((size_t)(ny ? ny : 1) * sizeof *fy);
    gf_status st = GF_OK;
    if (!fx || !fw || (b && !fb) || !fy) st = gf_fail(GF_ERR_NOMEM, "out of memory widening float16 tensors");
    if (!st) {
        reference_float(sh, fx, fw, fb, fy);
        for (int64_t i = 0; i < ny; i++) ((uint16_t *)y->data)[i] = gf_float_to_half(fy[i]);
    }
    free(fx);
    free(fw);
    free(fb);
    free(fy);
    return st;
}

/* ---- oneDNN fast path ---- */

/* Everything a plan depends on; all int64 so the key has no padding bytes. */
typedef struct conv_key {
    int64_t node;   /* each node's plan holds its own reordered weights */
    int64_t transpose, has_bias, nsp, n, c, m, group;
    int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
    int64_t src_layout, dst_layout, sum_post_op, act, alpha_bits, winograd;
    int64_t pad_copy;   /* X padded into a copy first; the primitive pads nothing */
} conv_key;

enum { ARG_SRC, ARG_WEIGHTS }; /* plan argument order: src, weights, [bias], dst */

static int fast_path_fits(const gf_op_ctx *ctx, const gf_conv_shape *sh)
{
    if (ctx->inputs[0]->dtype != GF_FLOAT) return 0;
    if (gf_tensor_numel(ctx->inputs[0]) == 0 || gf_tensor_numel(ctx->inputs[1]) == 0) return 0;
    return sh->n > 0 && sh->m > 0;
}

/* Whether X goes to oneDNN as a padded copy: a plain Conv with some pad as wide as its window. */
static int pads_by_copy(const gf_op_ctx *ctx, const gf_conv_shape *sh)
{
    if (sh->transpose || gf_in_layout(ctx, 0) != GF_LAYOUT_PLAIN) return 0;
    for (int d = 0; d < sh->w.nsp; d++) {
        int64_t extent = 1 + (sh->w.kernel[d] - 1) * sh->w.dilation[d];
        if (sh->w.pad_begin[d] >= extent || sh->w.pad_end[d] >= extent) return 1;
    }
    return 0;
}

/* X zero-padded by the window's pads: [n * c planes] of the padded spatial size. */
static gf_status padded_copy(const gf_conv_shape *sh, const float *x, float **out)
{
    const gf_window *w = &sh->w;
    int64_t in[3] = {1, 1, 1}, pad[3] = {0, 0, 0}, size[3] = {1, 1, 1};
    for (int d = 0; d < w->nsp; d++) {
        in[3 - w->nsp + d] = w->in[d];
        pad[3 - w->nsp + d] = w->pad_begin[d];
        size[3 - w->nsp + d] = w->in[d] + w->pad_begin[d] + w->pad_end[d];
    }
    int64_t planes = sh->n * sh->c, in_plane = in[0] * in[1] * in[2], plane = size[0] * size[1] * size[2];
    float *p = calloc((size_t)(planes * plane) + 1, sizeof *p);
    if (!p) return gf_fail(GF_ERR_NOMEM, "out of memory padding the convolution's input");
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i0 = 0; i0 < in[0]; i0++)
            for (int64_t i1 = 0; i1 < in[1]; i1++)
                memcpy(p + q * plane + ((i0 + pad[0]) * size[1] + i1 + pad[1]) * size[2] + pad[2],
                       x + q * in_plane + (i0 * in[1] + i1) * in[2], (size_t)in[2] * sizeof *p);
    *out = p;
    return GF_OK;
}

/* S goes in as a binary post-op when it and Y are blocked (then the primitive's Y is
 * the caller's, and S has its layout). */
static int sum_post_op(const gf_op_ctx *ctx, const gf_conv_fusion *f)
{
    return f->has_sum && !f->winograd && gf_out_layout(ctx, 0) == GF_LAYOUT_BLOCKED &&
           gf_in_layout(ctx, 3) == GF_LAYOUT_BLOCKED;
}

/* The activation follows the sum: a post-op only when the sum is one, or there is none;
 * and not a leaky one for Winograd, whose oneDNN kernels take plain ReLU only. */
static int act_post_op(const gf_conv_fusion *f, int sum_post_op, int winograd)
{
    return (!f->has_sum || sum_post_op) && !(winograd && f->act == GF_CONV_ACT_LEAKY);
}

static conv_key make_key(const gf_op_ctx *ctx, const gf_conv_shape *sh, const gf_conv_fusion *f)
{
    conv_key k;
    memset(&k, 0, sizeof k);
    k.node = (int64_t)(intptr_t)ctx->node;
    k.transpose = sh->transpose;
    k.has_bias = sh->has_bias;
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
    k.src_layout = gf_in_layout(ctx, 0);
    k.dst_layout = gf_out_layout(ctx, 0);
    k.sum_post_op = sum_post_op(ctx, f);
    k.winograd = f->winograd && !sh->transpose;
    k.act = act_post_op(f, k.sum_post_op, (int)k.winograd) ? f->act : GF_CONV_ACT_NONE;
    uint32_t bits;
    memcpy(&bits, &f->alpha, sizeof bits);
    k.alpha_bits = k.act == GF_CONV_ACT_LEAKY ? bits : 0;
    k.pad_copy = pads_by_copy(ctx, sh);
    return k;
}

/* graft's weights as oneDNN sees them: logical (group,) out, in, kernel... with the
 * strides of ONNX's layout (M x C/group x k for Conv, C x M/group x k for ConvTranspose). */
static int weight_dims(const conv_key *k, int64_t *dims, int64_t *strides)
{
    int nsp = (int)k->nsp, grouped = k->group > 1, r = 0;
    int64_t cg = k->c / k->group, mg = k->m / k->group, ksize = 1;
    for (int d = 0; d < nsp; d++) ksize *= k->kernel[d];
    if (grouped) {
        dims[r] = k->group;
        strides[r++] = cg * mg * ksize;
    }
    dims[r] = grouped ? mg : k->m;
    strides[r++] = k->transpose ? ksize : cg * ksize;
    dims[r] = cg;
    strides[r++] = k->transpose ? mg * ksize : ksize;
    for (int d = nsp - 1; d >= 0; d--) {
        dims[r + d] = k->kernel[d];
        strides[r + d] = d == nsp - 1 ? 1 : strides[r + d + 1] * k->kernel[d + 1];
    }
    return r + nsp;
}

/* The primitive's attributes: its scratch memory is the caller's (a session's arena,
 * see gf_dnnl_plan_run_scratch), and a FusedConv's post-ops: S added (binary, S in Y's
 * blocked layout), then the activation. */
static gf_status make_attr(const conv_key *k, const dnnl_memory_desc_t *dst, dnnl_primitive_attr_t *attr)
{
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success) {
        if (*attr) dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
        return gf_fail(GF_ERR_RUNTIME, "oneDNN failed setting up a primitive's attributes");
    }
    if (!k->sum_post_op && k->act == GF_CONV_ACT_NONE) return GF_OK;
    dnnl_post_ops_t ops = NULL;
    s = dnnl_post_ops_create(&ops);
    if (s == dnnl_success && k->sum_post_op) s = dnnl_post_ops_append_binary(ops, dnnl_binary_add, dst);
    if (s == dnnl_success && k->act != GF_CONV_ACT_NONE) {
        float alpha = 0;
        uint32_t bits = (uint32_t)k->alpha_bits;
        if (k->act == GF_CONV_ACT_LEAKY) memcpy(&alpha, &bits, sizeof alpha);
        s = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, alpha, 0.0f);
    }
    if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(*attr, ops);
    if (ops) dnnl_post_ops_destroy(ops);
    if (s == dnnl_success) return GF_OK;
    if (*attr) dnnl_primitive_attr_destroy(*attr);
    *attr = NULL;
    return gf_fail(GF_ERR_RUNTIME, "oneDNN failed setting up post-ops");
}

static gf_status build_conv_plan(gf_dnnl_plan *plan, const void *arg)
{
    const conv_key *k = arg;
    int nsp = (int)k->nsp, rank = nsp + 2;
    int64_t src_dims[5] = {k->n, k->c}, dst_dims[5] = {k->n, k->m}, w_dims[6], w_strides[6];
    dnnl_dims_t strides, dilates, pad_l, pad_r;
    for (int d = 0; d < nsp; d++) {
        src_dims[2 + d] = k->in[d];
        dst_dims[2 + d] = k->out[d];
        strides[d] = k->stride[d];
        dilates[d] = k->dilation[d] - 1; /* oneDNN counts the gaps */
        pad_l[d] = k->pad_begin[d];
        pad_r[d] = k->pad_end[d];
        if (k->pad_copy) {
            src_dims[2 + d] += pad_l[d] + pad_r[d];
            pad_l[d] = pad_r[d] = 0;
        }
    }
    int w_rank = weight_dims(k, w_dims, w_strides);
    gf_dnnl_arg_desc args[5];
    int n = 0;
    dnnl_memory_desc_t src_any, w_any, dst_any, bias;
    if (gf_dnnl_layout_md(&args[n].user, rank, src_dims, (int)k->src_layout) ||
        gf_dnnl_blocked_md(&src_any, rank, src_dims))
        return GF_OK;
    args[n++].arg = DNNL_ARG_SRC;
    if (gf_dnnl_md(&args[n].user, w_rank, w_dims, w_strides) || gf_dnnl_any_md(&w_any, w_rank, w_dims)) return GF_OK;
    args[n++].arg = DNNL_ARG_WEIGHTS;
    if (k->has_bias) {
        if (gf_dnnl_md(&bias, 1, &k->m, NULL)) return GF_OK;
        args[n].user = bias;
        args[n++].arg = DNNL_ARG_BIAS;
    }
    if (gf_dnnl_layout_md(&args[n].user, rank, dst_dims, (int)k->dst_layout) ||
        gf_dnnl_blocked_md(&dst_any, rank, dst_dims))
        return GF_OK;
    args[n++].arg = DNNL_ARG_DST;
    if (k->sum_post_op) {
        args[n].user = args[n - 1].user; /* blocked, as Y */
        args[n++].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;
    }
    for (int i = 0; i < n; i++) args[i].is_output = args[i].arg == DNNL_ARG_DST;

    const dnnl_memory_desc_t *b = k->has_bias ? &bias : NULL;
    dnnl_primitive_attr_t attr;
    gf_status st = make_attr(k, &dst_any, &attr);
    if (st) return st;
    if (k->transpose) {
        dnnl_deconvolution_desc_t desc;
        if (dnnl_dilated_deconvolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_deconvolution_direct,
                                                         &src_any, &w_any, b, &dst_any, strides, dilates, pad_l,
                                                         pad_r) == dnnl_success)
            st = gf_dnnl_plan_build_attr(plan, &desc, attr, n, args);
    } else {
        dnnl_convolution_desc_t desc;
        /* Winograd where oneDNN has it for this geometry; direct otherwise. */
        if (k->winograd &&
            dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_winograd,
                                                       &src_any, &w_any, b, &dst_any, strides, dilates, pad_l,
                                                       pad_r) == dnnl_success)
            st = gf_dnnl_plan_build_attr(plan, &desc, attr, n, args);
        if (!st && !plan->prim &&
            dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct,
                                                       &src_any, &w_any, b, &dst_any, strides, dilates, pad_l,
                                                       pad_r) == dnnl_success)
            st = gf_dnnl_plan_build_attr(plan, &desc, attr, n, args);
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st; /* no primitive for this geometry: plan->prim stays NULL */
}

static gf_status get_plan(const gf_op_ctx *ctx, const gf_conv_shape *sh, const gf_conv_fusion *f, gf_dnnl_plan **plan)
{
    conv_key key = make_key(ctx, sh, f);
    gf_status st = gf_dnnl_plan_get(&key, sizeof key, build_conv_plan, &key, plan);
    if (st) return st;
    if ((*plan)->prim) return GF_OK;
    gf_dnnl_plan_release(*plan);
    return gf_fail(GF_ERR_UNSUPPORTED, "oneDNN has no implementation for this convolution");
}

/* At plan time: build the plan now, and reorder W once when it is a constant. */
static gf_status prepare_fast(const gf_op_ctx *ctx, const gf_conv_shape *sh, const gf_conv_fusion *f)
{
    gf_dnnl_plan *plan;
    gf_status st = get_plan(ctx, sh, f, &plan);
    if (st == GF_ERR_UNSUPPORTED) {
        gf_clear_error();
        return GF_OK; /* the reference will run */
    }
    if (st) return st;
    if (ctx->scratch_need) *ctx->scratch_need = plan->scratch_bytes;
    const void *w = ctx->planning ? ctx->inputs[1]->data : NULL;
    st = gf_dnnl_plan_set_constant(plan, ARG_WEIGHTS, w);
    gf_dnnl_plan_hand_over(plan, ARG_WEIGHTS, st ? NULL : w, ctx->kept);
    return st;
}

static void finish_reference(const gf_conv_fusion *f, const float *sum, float *y, int64_t n);

/* Without the post-ops: Y = act(Y + S), S in Y's layout (a plain copy when it is not). */
static gf_status add_sum_after(gf_op_ctx *ctx, const gf_conv_fusion *f)
{
    const gf_tensor *sum = ctx->inputs[3];
    gf_tensor *y = ctx->outputs[0];
    int yl = gf_out_layout(ctx, 0), sl = gf_in_layout(ctx, 3);
    const float *s = sum->data;
    float *copy = NULL;
    if (sl != yl) {
        if (!(copy = malloc(gf_tensor_nbytes(y) + 1))) return gf_fail(GF_ERR_NOMEM, "out of memory");
        gf_status st = gf_layout_convert(y->rank, y->dims, sum->data, sl, copy, yl);
        if (st) {
            free(copy);
            return st;
        }
        s = copy;
    }
    finish_reference(f, s, y->data, gf_tensor_numel(y));
    free(copy);
    return GF_OK;
}

static gf_status run_fast(gf_op_ctx *ctx, const gf_conv_shape *sh, const gf_conv_fusion *f)
{
    gf_dnnl_plan *plan;
    if (f->has_sum && ctx->inputs[3]->data == ctx->outputs[0]->data)
        return gf_fail(GF_ERR_INVALID, "the output must not be the storage of the sum operand");
    gf_status st = get_plan(ctx, sh, f, &plan);
    if (st) return st;
    void *data[5];
    int n = 0;
    float *padded = NULL;
    if (pads_by_copy(ctx, sh) && (st = padded_copy(sh, ctx->inputs[0]->data, &padded))) {
        gf_dnnl_plan_release(plan);
        return st;
    }
    for (int i = 0; i < (sh->has_bias ? 3 : 2); i++) data[n++] = ctx->inputs[i]->data;
    if (padded) data[0] = padded;
    data[n++] = ctx->outputs[0]->data;
    if (sum_post_op(ctx, f)) data[n++] = ctx->inputs[3]->data;
    st = gf_dnnl_plan_run_scratch(plan, data, ctx->scratch);
    gf_dnnl_plan_release(plan);
    free(padded);
    if (!st && f->has_sum && !sum_post_op(ctx, f)) st = add_sum_after(ctx, f);
    else if (!st && !act_post_op(f, sum_post_op(ctx, f), f->winograd && !sh->transpose))
        finish_reference(f, NULL, ctx->outputs[0]->data, gf_tensor_numel(ctx->outputs[0]));
    return st;
}

/* ---- the ops ---- */

static int is_transpose(const gf_op_ctx *ctx) { return !strcmp(ctx->node->op_type, "ConvTranspose"); }
/* Y = act(Y + S) after the reference convolution, as Add and Relu/LeakyRelu compute them. */
static void finish_reference(const gf_conv_fusion *f, const float *sum, float *y, int64_t n)
{
    if (f->has_sum)
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = y[i] + sum[i];
    if (f->act != GF_CONV_ACT_NONE) gf_relu_f32(y, y, n, f->act == GF_CONV_ACT_LEAKY, f->alpha);
}

/* The reference on plain copies of whatever is blocked. */
static gf_status run_reference_any_layout(gf_op_ctx *ctx, gf_op_ctx *conv, const gf_conv_shape *sh, const gf_conv_fusion *f)
{
    const gf_tensor *x = ctx->inputs[0], *sum = f->has_sum ? ctx->inputs[3] : NULL;
    gf_tensor *y = ctx->outputs[0];
    int x_l = gf_in_layout(ctx, 0), y_l = gf_out_layout(ctx, 0), s_l = sum ? gf_in_layout(ctx, 3) : 0;
    int64_t ny = gf_tensor_numel(y);
    if (sum && sum->data == y->data)
        return gf_fail(GF_ERR_INVALID, "the output must not be the storage of the sum operand");
    if (!x_l && !y_l && !s_l && x->dtype == GF_FLOAT) {
        gf_status st = run_reference(conv, sh);
        if (!st) finish_reference(f, sum ? sum->data : NULL, y->data, ny);
        return st;
    }
    if (x->dtype != GF_FLOAT && (x_l || y_l || s_l))
        return gf_fail(GF_ERR_UNSUPPORTED, "blocked layouts are float32 only");
    if (x->dtype != GF_FLOAT) return run_reference(conv, sh);
    gf_tensor px = *x, py = *y;
    float *bx = x_l ? malloc(gf_tensor_nbytes(x) + 1) : NULL, *by = malloc(gf_tensor_nbytes(y) + 1);
    float *bs = sum ? malloc(gf_tensor_nbytes(y) + 1) : NULL;
    gf_status st = (x_l && !bx) || !by || (sum && !bs) ? gf_fail(GF_ERR_NOMEM, "out of memory") : GF_OK;
    if (!st && x_l) st = gf_layout_convert(x->rank, x->dims, x->data, x_l, bx, GF_LAYOUT_PLAIN);
    if (!st && sum) st = gf_layout_convert(y->rank, y->dims, sum->data, s_l, bs, GF_LAYOUT_PLAIN);
    if (!st) {
        const gf_tensor *ins[3] = {x_l ? &px : x, conv->inputs[1], conv->n_inputs > 2 ? conv->inputs[2] : NULL};
        gf_tensor *outs[1] = {&py};
        if (x_l) px.data = bx;
        py.data = by;
        gf_op_ctx plain = *conv;
        plain.inputs = ins;
        plain.outputs = outs;
        plain.in_layout = plain.out_layout = NULL;
        st = run_reference(&plain, sh);
    }
    if (!st) {
        finish_reference(f, bs, by, ny);
        st = gf_layout_convert(y->rank, y->dims, by, GF_LAYOUT_PLAIN, y->data, y_l);
    }
    free(bx);
    free(by);
    free(bs);
    return st;
}

static gf_status conv_infer(gf_op_ctx *ctx)
{
    gf_op_ctx conv;
    gf_conv_fusion f;
    gf_conv_shape sh;
    gf_status st = gf_conv_read_fusion(ctx, &conv, &f);
    if (!st) st = gf_conv_read_shape(&conv, is_transpose(ctx), &sh);
    if (st) return st;
    int64_t dims[GF_MAX_RANK] = {sh.n, sh.m};
    for (int d = 0; d < sh.w.nsp; d++) dims[2 + d] = sh.w.out[d];
    if ((st = gf_check_numel(sh.w.nsp + 2, dims))) return st;
    if (f.has_sum) {
        const gf_tensor *sum = ctx->inputs[3];
        int same = sum->dtype == ctx->inputs[0]->dtype && sum->rank == sh.w.nsp + 2;
        for (int d = 0; same && d < sum->rank; d++) same = sum->dims[d] == dims[d];
        if (!same) return gf_fail(GF_ERR_SHAPE, "input S must have the output's shape and type");
    }
    if (ctx->outputs[0]) gf_set_shape(ctx->outputs[0], ctx->inputs[0]->dtype, sh.w.nsp + 2, dims);
    if (!ctx->shapes_only && gf_fastpath_enabled() && fast_path_fits(ctx, &sh)) return prepare_fast(&conv, &sh, &f);
    return GF_OK;
}

/* X, Y and S may be blocked whenever the fast path runs (run_reference_any_layout covers
 * the rare geometry oneDNN lacks). */
static gf_status conv_layouts(gf_op_ctx *ctx)
{
    gf_op_ctx conv;
    gf_conv_fusion f;
    gf_conv_shape sh;
    gf_status st = gf_conv_read_fusion(ctx, &conv, &f);
    if (!st) st = gf_conv_read_shape(&conv, is_transpose(ctx), &sh);
    if (st || !gf_fastpath_enabled() || !fast_path_fits(ctx, &sh)) return st;
    ctx->in_layout[0] = ctx->out_layout[0] = GF_LAYOUT_CAN_BLOCK;
    if (f.has_sum) ctx->in_layout[3] = GF_LAYOUT_CAN_BLOCK;
    return GF_OK;
}

static gf_status conv_impl(gf_op_ctx *ctx, gf_impl impl)
{
    gf_op_ctx conv;
    gf_conv_fusion f;
    gf_conv_shape sh;
    gf_status st = gf_conv_read_fusion(ctx, &conv, &f);
    if (!st) st = gf_conv_read_shape(&conv, is_transpose(ctx), &sh);
    if (st || !ctx->outputs[0]) return st;
    /* The conv view carries the node (for the plan's key) and the layouts. */
    if (impl == GF_IMPL_AUTO && gf_fastpath_enabled() && fast_path_fits(ctx, &sh)) {
        st = run_fast(&conv, &sh, &f);
        if (st != GF_ERR_UNSUPPORTED) return st;
        gf_clear_error();
    }
    if (impl == GF_IMPL_FAST) {
        if (!fast_path_fits(ctx, &sh)) return gf_fail(GF_ERR_UNSUPPORTED, "the fast path does not take these inputs");
        return run_fast(&conv, &sh, &f);
    }
    if (gf_tensor_numel(ctx->outputs[0]) == 0) return GF_OK;
    return run_reference_any_layout(ctx, &conv, &sh, &f);
}

gf_status gf_conv_cpu_impl(gf_op_ctx *ctx, gf_impl impl) { return conv_impl(ctx, impl); }

static gf_status conv_cpu(gf_op_ctx *ctx) { return conv_impl(ctx, GF_IMPL_AUTO); }

const gf_op gf_ops_conv[] = {
    {"", "Conv", 1, 0, conv_infer, conv_cpu, 0, conv_layouts},
    {"", "ConvTranspose", 1, 0, conv_infer, conv_cpu, 0, conv_layouts},
    {"ai.graft", "FusedConv", 1, 0, conv_infer, conv_cpu, 0, conv_layouts},
    {0},
};
