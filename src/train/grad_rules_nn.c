/* Gradient rules of convolution, pooling, normalisation, matrix products,
 * softmax and the losses. See grad_rules.c for the contract. */
#include "grad_rules.h"

#include <string.h>

#define IN(k) (c->fwd.n_inputs > (k) ? c->fwd.inputs[k] : -1)
#define OUT(k) (c->fwd.n_outputs > (k) ? c->fwd.outputs[k] : -1)
#define HINT c->fwd.name

/* An ai.graft op with the forward node's attributes (but `except`). */
static int graft_like(gf_grad_ctx *c, const char *op_type, int n_in, const int *in, const char *const *except)
{
    int out;
    int ni = gb_node(c->b, GF_DOMAIN, op_type, HINT, n_in, in, 1, &out);
    if (ni < 0 || gb_copy_attrs(c->b, ni, &c->fwd, except)) return -1;
    return out;
}

/* The bias gradient: dy summed over every axis but the channels. */
static int bias_grad(gf_grad_ctx *c, int rank)
{
    int64_t axes[GF_MAX_RANK];
    int n = 0;
    for (int d = 0; d < rank; d++)
        if (d != 1) axes[n++] = d;
    int out;
    int in[2] = {c->dy[0], gb_const_ints(c->b, HINT, axes, n)};
    int ni = gb_node(c->b, "", "ReduceSum", HINT, 2, in, 1, &out);
    if (ni < 0 || gb_attr_int(c->b, ni, "keepdims", 0)) return -1;
    return out;
}

static gf_status conv_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    int dy = c->dy[0], x = IN(0), w = IN(1);
    if (c->needs[0]) {
        int in[3] = {dy, w, gb_shape(b, x)};
        c->dx[0] = graft_like(c, "ConvGradInput", 3, in, NULL);
    }
    if (c->needs[1]) {
        int in[3] = {dy, x, gb_shape(b, w)};
        c->dx[1] = graft_like(c, "ConvGradWeight", 3, in, NULL);
    }
    if (c->fwd.n_inputs > 2 && c->needs[2]) c->dx[2] = bias_grad(c, gb_rank(b, x));
    return gr_done(c);
}

/* ConvTranspose is the adjoint of Conv: its input gradient is a Conv with the same
 * geometry, its weight gradient Conv's weight gradient with the roles of x and dy swapped. */
static gf_status conv_transpose_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    const char *auto_pad = gf_attr_string(&c->fwd, "auto_pad", "NOTSET");
    if (strcmp(auto_pad, "NOTSET") || gf_node_attr(&c->fwd, "output_shape"))
        return gf_fail(GF_ERR_UNSUPPORTED, "no gradient for ConvTranspose with auto_pad or output_shape; "
                                           "give explicit pads");
    static const char *const transpose_only[] = {"output_padding", "output_shape", NULL};
    int dy = c->dy[0], x = IN(0), w = IN(1);
    if (c->needs[0]) {
        int in[2] = {dy, w}, out;
        int ni = gb_node(b, "", "Conv", HINT, 2, in, 1, &out);
        c->dx[0] = ni < 0 || gb_copy_attrs(b, ni, &c->fwd, transpose_only) ? -1 : out;
    }
    if (c->needs[1]) {
        int in[3] = {x, dy, gb_shape(b, w)};
        c->dx[1] = graft_like(c, "ConvGradWeight", 3, in, transpose_only);
    }
    if (c->fwd.n_inputs > 2 && c->needs[2]) c->dx[2] = bias_grad(c, gb_rank(b, x));
    return gr_done(c);
}

static gf_status max_pool_grad(gf_grad_ctx *c)
{
    static const char *const unused[] = {"storage_order", NULL};
    int in[2] = {c->dy[0], IN(0)};
    c->dx[0] = graft_like(c, "MaxPoolGrad", 2, in, unused);
    return gr_done(c);
}

static gf_status average_pool_grad(gf_grad_ctx *c)
{
    int in[2] = {c->dy[0], gb_shape(c->b, IN(0))};
    c->dx[0] = graft_like(c, strcmp(c->fwd.op_type, "AveragePool") ? "GlobalAveragePoolGrad" : "AveragePoolGrad", 2,
                          in, NULL);
    return gr_done(c);
}

/* BatchNormTrain's inputs: X, scale, B, running mean and variance (no gradient). */
static gf_status batch_norm_grad(gf_grad_ctx *c)
{
    int in[5] = {c->dy[0], IN(0), IN(1), OUT(1), OUT(2)}, out[3];
    int ni = gb_node(c->b, GF_DOMAIN, "BatchNormGrad", HINT, 5, in, 3, out);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    for (int k = 0; k < 3; k++) {
        if (c->needs[k]) c->dx[k] = out[k];
        else c->b->g->nodes[ni].outputs[k] = -1; /* not computed */
    }
    for (int k = 3; k < 5; k++) c->dx[k] = GR_NO_GRAD;
    return gr_done(c);
}

/* y = alpha * op(A) op(B) + beta * C, op transposing when transA/transB is set. */
static gf_status gemm_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    float alpha = gf_attr_float(&c->fwd, "alpha", 1), beta = gf_attr_float(&c->fwd, "beta", 1);
    int ta = (int)gf_attr_int(&c->fwd, "transA", 0), tb = (int)gf_attr_int(&c->fwd, "transB", 0);
    int dy = c->dy[0], a = IN(0), bm = IN(1);
    for (int k = 0; k < 2; k++) {
        if (!c->needs[k]) continue;
        /* dA = alpha dy op(B)^T (or its transpose); dB = alpha op(A)^T dy (or its transpose). */
        int first, second, t_first, t_second;
        if (k == 0 && !ta) first = dy, second = bm, t_first = 0, t_second = !tb;
        else if (k == 0) first = bm, second = dy, t_first = tb, t_second = 1;
        else if (!tb) first = a, second = dy, t_first = !ta, t_second = 0;
        else first = dy, second = a, t_first = 1, t_second = ta;
        int in[2] = {first, second}, out;
        int ni = gb_node(b, "", "Gemm", HINT, 2, in, 1, &out);
        if (ni < 0 || gb_attr_float(b, ni, "alpha", alpha) || gb_attr_int(b, ni, "transA", t_first) ||
            gb_attr_int(b, ni, "transB", t_second))
            return GF_ERR_UNSUPPORTED;
        c->dx[k] = out;
    }
    if (c->fwd.n_inputs > 2 && c->needs[2]) {
        int g = dy;
        if (beta != 1) g = gb_op2(b, "Mul", HINT, dy, gb_const_float(b, HINT, beta));
        c->dx[2] = gr_reduce_to(b, g, IN(2), OUT(0), HINT);
    }
    return gr_done(c);
}

/* The last two axes of v swapped. */
static int swap_last_two(gf_builder *b, int v, int rank, const char *hint)
{
    int64_t perm[GF_MAX_RANK];
    for (int d = 0; d < rank; d++) perm[d] = d;
    perm[rank - 2] = rank - 1;
    perm[rank - 1] = rank - 2;
    int out;
    int ni = gb_node(b, "", "Transpose", hint, 1, &v, 1, &out);
    return ni < 0 || gb_attr_ints(b, ni, "perm", perm, rank) ? -1 : out;
}

static gf_status matmul_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    int a = IN(0), bm = IN(1), dy = c->dy[0];
    int ra = gb_rank(b, a), rb = gb_rank(b, bm);
    if (ra < 2 || rb < 2)
        return gf_fail(GF_ERR_UNSUPPORTED, "no gradient for MatMul with a 1-D operand (ranks %d and %d)", ra, rb);
    if (c->needs[0])
        c->dx[0] = gr_reduce_to(b, gb_op2(b, "MatMul", HINT, dy, swap_last_two(b, bm, rb, HINT)), a, -1, HINT);
    if (c->needs[1])
        c->dx[1] = gr_reduce_to(b, gb_op2(b, "MatMul", HINT, swap_last_two(b, a, ra, HINT), dy), bm, -1, HINT);
    return gr_done(c);
}

/* Before opset 13 Softmax flattened its input to 2-D at axis (default 1). */
static gf_status softmax_grad(gf_grad_ctx *c)
{
    int legacy = c->fwd.opset < 13;
    int in[2] = {c->dy[0], OUT(0)}, out;
    const char *op = strcmp(c->fwd.op_type, "Softmax") ? "LogSoftmaxGrad" : "SoftmaxGrad";
    int ni = gb_node(c->b, GF_DOMAIN, op, HINT, 2, in, 1, &out);
    if (ni < 0 || gb_attr_int(c->b, ni, "axis", gf_attr_int(&c->fwd, "axis", legacy ? 1 : -1)) ||
        gb_attr_int(c->b, ni, "legacy", legacy))
        return GF_ERR_UNSUPPORTED;
    c->dx[0] = out;
    return GF_OK;
}

/* ---- losses: every gradient op takes the loss's gradient first ---- */

/* CrossEntropyLoss(scores, target, [weight]) → (loss, log_prob). */
static gf_status cross_entropy_grad(gf_grad_ctx *c)
{
    int in[4] = {c->dy[0], OUT(1), IN(1), IN(2)};
    c->dx[0] = graft_like(c, "CrossEntropyLossGrad", IN(2) >= 0 ? 4 : 3, in, NULL);
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return gr_done(c);
}

/* Losses whose gradient op takes (dloss, the forward inputs...) and returns the first input's. */
static gf_status loss_grad(gf_grad_ctx *c, const char *grad_op)
{
    int in[6] = {c->dy[0]};
    int n = c->fwd.n_inputs < 5 ? c->fwd.n_inputs : 5;
    for (int k = 0; k < n; k++) in[k + 1] = IN(k);
    c->dx[0] = graft_like(c, grad_op, n + 1, in, NULL);
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return gr_done(c);
}

static gf_status nll_grad(gf_grad_ctx *c) { return loss_grad(c, "NLLLossGrad"); }
static gf_status mse_grad(gf_grad_ctx *c) { return loss_grad(c, "MSELossGrad"); }
static gf_status l1_grad(gf_grad_ctx *c) { return loss_grad(c, "L1LossGrad"); }
static gf_status bce_grad(gf_grad_ctx *c) { return loss_grad(c, "BCEWithLogitsLossGrad"); }

/* YoloV3Loss(targets, p_1, ..., p_L) -> loss: YoloV3LossGrad(dloss, targets, p_1, ..., p_L) -> dp_1, ..., dp_L. */
static gf_status yolo_grad(gf_grad_ctx *c)
{
    int heads = c->fwd.n_inputs - 1, in[1 + 1 + 8], out[8];
    if (heads < 1 || heads > 8) return gf_fail(GF_ERR_UNSUPPORTED, "a YOLOv3 loss over %d heads", heads);
    in[0] = c->dy[0];
    for (int k = 0; k <= heads; k++) in[1 + k] = IN(k);
    int ni = gb_node(c->b, GF_DOMAIN, "YoloV3LossGrad", HINT, heads + 2, in, heads, out);
    if (ni < 0 || gb_copy_attrs(c->b, ni, &c->fwd, NULL)) return GF_ERR_UNSUPPORTED;
    c->dx[0] = GR_NO_GRAD;
    for (int l = 0; l < heads; l++) c->dx[1 + l] = out[l];
    return gr_done(c);
}

const gf_grad_rule gf_grad_rules_nn[] = {
    {"", "Conv", conv_grad},
    {"", "ConvTranspose", conv_transpose_grad},
    {"", "MaxPool", max_pool_grad},
    {"", "AveragePool", average_pool_grad},
    {"", "GlobalAveragePool", average_pool_grad},
    {GF_DOMAIN, "BatchNormTrain", batch_norm_grad},
    {"", "Gemm", gemm_grad},
    {"", "MatMul", matmul_grad},
    {"", "Softmax", softmax_grad},
    {"", "LogSoftmax", softmax_grad},
    {GF_DOMAIN, "CrossEntropyLoss", cross_entropy_grad},
    {"", "NegativeLogLikelihoodLoss", nll_grad},
    {GF_DOMAIN, "MSELoss", mse_grad},
    {GF_DOMAIN, "L1Loss", l1_grad},
    {GF_DOMAIN, "BCEWithLogitsLoss", bce_grad},
    {GF_DOMAIN, "YoloV3Loss", yolo_grad},
    {NULL, NULL, NULL},
};
