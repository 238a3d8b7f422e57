/* Gradient rules of the element-wise ops, activations and data movement.
 *
 * Each rule reads the forward node (c->fwd), the gradients of its outputs (c->dy,
 * -1 where none flows back) and which inputs want one (c->needs), and adds nodes
 * computing those (c->dx). Shapes enter as Shape nodes that the session folds, so
 * the graph serves any batch size. */
#include "grad_rules.h"

#include <stdio.h>
#include <string.h>

#define IN(k) (c->fwd.n_inputs > (k) ? c->fwd.inputs[k] : -1)
#define OUT(k) (c->fwd.n_outputs > (k) ? c->fwd.outputs[k] : -1)
#define HINT c->fwd.name

gf_status gr_done(const gf_grad_ctx *c)
{
    for (int k = 0; k < c->fwd.n_inputs; k++)
        if (c->needs[k] && c->dx[k] < 0 && c->dx[k] != GR_NO_GRAD) return GF_ERR_NOMEM; /* the error is already set */
    for (int k = 0; k < c->fwd.n_inputs; k++)
        if (c->dx[k] == GR_NO_GRAD) c->dx[k] = -1;
    return GF_OK;
}

/* Whether forward values a and b had the same shape in the shape pass and neither is
 * an initializer (whose shape does not follow the batch): then no sum is needed. */
static int same_activation_shape(const gf_builder *b, int a, int v)
{
    if (a < 0 || v < 0 || a >= b->n_forward_values || v >= b->n_forward_values) return 0;
    if (b->g->values[a].init || b->g->values[v].init) return 0;
    const gf_tensor *ta = gf_session_value(b->shapes, a), *tv = gf_session_value(b->shapes, v);
    if (!ta || !tv || ta->rank != tv->rank) return 0;
    for (int d = 0; d < ta->rank; d++)
        if (ta->dims[d] != tv->dims[d]) return 0;
    return 1;
}

int gr_reduce_to(gf_builder *b, int grad, int like, int y, const char *hint)
{
    if (grad < 0) return -1;
    if (same_activation_shape(b, like, y)) return grad;
    int shape = gb_shape(b, like);
    if (shape < 0) return -1;
    int in[2] = {grad, shape};
    return gb_graft1(b, "ReduceSumTo", hint, 2, in);
}

/* ---- element-wise arithmetic ---- */

static gf_status add_sub_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    int dy = c->dy[0];
    if (c->needs[0]) c->dx[0] = gr_reduce_to(b, dy, IN(0), OUT(0), HINT);
    if (c->needs[1]) {
        int g = strcmp(c->fwd.op_type, "Sub") ? dy : gb_op1(b, "Neg", HINT, dy);
        c->dx[1] = gr_reduce_to(b, g, IN(1), OUT(0), HINT);
    }
    return gr_done(c);
}

static gf_status sum_grad(gf_grad_ctx *c)
{
    for (int k = 0; k < c->fwd.n_inputs; k++)
        if (c->needs[k]) c->dx[k] = gr_reduce_to(c->b, c->dy[0], IN(k), OUT(0), HINT);
    return gr_done(c);
}

static gf_status mul_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    for (int k = 0; k < 2; k++)
        if (c->needs[k]) c->dx[k] = gr_reduce_to(b, gb_op2(b, "Mul", HINT, c->dy[0], IN(1 - k)), IN(k), OUT(0), HINT);
    return gr_done(c);
}

/* y = a / b: da = dy / b, db = -dy * y / b. */
static gf_status div_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    int dy = c->dy[0];
    if (c->needs[0]) c->dx[0] = gr_reduce_to(b, gb_op2(b, "Div", HINT, dy, IN(1)), IN(0), OUT(0), HINT);
    if (c->needs[1]) {
        int t = gb_op2(b, "Div", HINT, gb_op2(b, "Mul", HINT, dy, OUT(0)), IN(1));
        c->dx[1] = gr_reduce_to(b, gb_op1(b, "Neg", HINT, t), IN(1), OUT(0), HINT);
    }
    return gr_done(c);
}

/* ---- activations ---- */

/* dx = Op(dy, v): v the forward output (Relu, Sigmoid) or input (LeakyRelu). */
static gf_status activation_grad(gf_grad_ctx *c, const char *grad_op, int v)
{
    int in[2] = {c->dy[0], v};
    int ni = gb_node(c->b, GF_DOMAIN, grad_op, HINT, 2, in, 1, &c->dx[0]);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    return gb_copy_attrs(c->b, ni, &c->fwd, NULL);
}

static gf_status relu_grad(gf_grad_ctx *c) { return activation_grad(c, "ReluGrad", OUT(0)); }
static gf_status sigmoid_grad(gf_grad_ctx *c) { return activation_grad(c, "SigmoidGrad", OUT(0)); }
static gf_status leaky_relu_grad(gf_grad_ctx *c) { return activation_grad(c, "LeakyReluGrad", IN(0)); }

/* Clip: the gradient passes where min < x < max, strictly, as in PyTorch's hardtanh and
 * ReLU6 (the usual sources of Clip in exported models); an absent bound is no bound.
 * Bounds are attributes before opset 11, optional inputs from then on. */
static gf_status clip_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    int x = IN(0), lo = IN(1), hi = IN(2), dy = c->dy[0];
    if (c->fwd.opset < 11) {
        const gf_attr *min = gf_node_attr(&c->fwd, "min"), *max = gf_node_attr(&c->fwd, "max");
        lo = min ? gb_const_float(b, HINT, min->f) : -1;
        hi = max ? gb_const_float(b, HINT, max->f) : -1;
    }
    int mask = lo >= 0 ? gb_op2(b, "Greater", HINT, x, lo) : -1;
    if (hi >= 0) {
        int below = gb_op2(b, "Less", HINT, x, hi);
        mask = mask >= 0 ? gb_op2(b, "And", HINT, mask, below) : below;
    }
    if (mask < 0) {
        c->dx[0] = dy;
    } else {
        int pass;
        int ni = gb_node(b, "", "Cast", HINT, 1, &mask, 1, &pass);
        if (ni < 0 || gb_attr_int(b, ni, "to", GF_FLOAT)) return GF_ERR_UNSUPPORTED;
        c->dx[0] = gb_op2(b, "Mul", HINT, dy, pass);
    }
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return gr_done(c);
}

static gf_status dropout_grad(gf_grad_ctx *c)
{
    int in[2] = {c->dy[0], OUT(1)};
    int ni = gb_node(c->b, GF_DOMAIN, "DropoutGrad", HINT, 2, in, 1, &c->dx[0]);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    return gb_attr_float(c->b, ni, "ratio", gf_attr_float(&c->fwd, "ratio", 0.5f));
}

/* ---- data movement ---- */

static gf_status identity_grad(gf_grad_ctx *c)
{
    c->dx[0] = c->dy[0];
    return GF_OK;
}

/* Flatten, Reshape, Squeeze, Unsqueeze: the gradient takes the input's shape back. */
static gf_status reshape_grad(gf_grad_ctx *c)
{
    c->dx[0] = gb_op2(c->b, "Reshape", HINT, c->dy[0], gb_shape(c->b, IN(0)));
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return gr_done(c);
}

static gf_status transpose_grad(gf_grad_ctx *c)
{
    int rank = gb_rank(c->b, IN(0)), n;
    if (rank < 0) return gf_fail(GF_ERR_UNSUPPORTED, "the input's rank is unknown");
    const int64_t *perm = gf_attr_ints(&c->fwd, "perm", &n);
    int64_t inverse[GF_MAX_RANK];
    for (int d = 0; d < rank; d++) {
        int64_t p = perm && n == rank ? perm[d] : rank - 1 - d;
        inverse[p] = d;
    }
    int ni = gb_node(c->b, "", "Transpose", HINT, 1, c->dy, 1, &c->dx[0]);
    return ni < 0 ? GF_ERR_UNSUPPORTED : gb_attr_ints(c->b, ni, "perm", inverse, rank);
}

static gf_status concat_grad(gf_grad_ctx *c)
{
    int n = c->fwd.n_inputs, in[65], out[64];
    in[0] = c->dy[0];
    for (int k = 0; k < n; k++)
        if ((in[k + 1] = gb_shape(c->b, IN(k))) < 0) return GF_ERR_NOMEM;
    int ni = gb_node(c->b, GF_DOMAIN, "ConcatGrad", HINT, n + 1, in, n, out);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    for (int k = 0; k < n; k++) c->dx[k] = c->needs[k] ? out[k] : GR_NO_GRAD;
    return gb_attr_int(c->b, ni, "axis", gf_attr_int(&c->fwd, "axis", 0));
}

/* The pieces' gradients concatenated; a piece nothing used contributes zeros. */
static gf_status split_grad(gf_grad_ctx *c)
{
    int n = c->fwd.n_outputs, parts[64];
    for (int k = 0; k < n; k++) {
        parts[k] = c->dy[k];
        if (parts[k] < 0 && (parts[k] = gb_op1(c->b, "ConstantOfShape", HINT, gb_shape(c->b, OUT(k)))) < 0)
            return GF_ERR_NOMEM;
    }
    int ni = gb_node(c->b, "", "Concat", HINT, n, parts, 1, &c->dx[0]);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return gb_attr_int(c->b, ni, "axis", gf_attr_int(&c->fwd, "axis", 0));
}

/* Slice before opset 10 had its bounds as attributes: made constant inputs here. */
static int slice_bound(gf_grad_ctx *c, int input, const char *attr)
{
    if (c->fwd.opset >= 10) return IN(input);
    int n;
    const int64_t *v = gf_attr_ints(&c->fwd, attr, &n);
    return v ? gb_const_ints(c->b, HINT, v, n) : -1;
}

static gf_status slice_grad(gf_grad_ctx *c)
{
    int in[6] = {c->dy[0], gb_shape(c->b, IN(0)), slice_bound(c, 1, "starts"), slice_bound(c, 2, "ends"),
                 slice_bound(c, 3, "axes"), c->fwd.opset >= 10 ? IN(4) : -1};
    int n = 6;
    while (n > 4 && in[n - 1] < 0) n--;
    c->dx[0] = gb_graft1(c->b, "SliceGrad", HINT, n, in);
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return gr_done(c);
}

/* Constant padding is undone by padding with the negated amounts (cropping). */
static gf_status pad_grad(gf_grad_ctx *c)
{
    const char *mode = gf_attr_string(&c->fwd, "mode", "constant");
    if (strcmp(mode, "constant"))
        return gf_fail(GF_ERR_UNSUPPORTED, "no gradient for Pad in mode '%s' (only constant)", mode);
    int pads;
    if (c->fwd.opset >= 11) {
        pads = gb_op1(c->b, "Neg", HINT, IN(1));
    } else {
        int n;
        const int64_t *p = gf_attr_ints(&c->fwd, "pads", &n);
        int64_t neg[2 * GF_MAX_RANK];
        for (int i = 0; i < n && i < 2 * GF_MAX_RANK; i++) neg[i] = -p[i];
        pads = gb_const_ints(c->b, HINT, neg, n);
    }
    int in[4] = {c->dy[0], pads, -1, c->fwd.opset >= 18 ? IN(3) : -1};
    int ni = gb_node(c->b, "", "Pad", HINT, in[3] >= 0 ? 4 : 2, in, 1, &c->dx[0]);
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return ni < 0 ? GF_ERR_UNSUPPORTED : gr_done(c);
}

/* Resize-10 and Upsample round nearest coordinates down where they enlarge and up where
 * they shrink: one nearest_mode serves a node only when all its resized axes agree. */
static gf_status legacy_nearest_mode(const gf_builder *b, int scales, const char **mode)
{
    const gf_tensor *t = scales >= 0 ? b->g->values[scales].init : NULL;
    if (!t) return gf_fail(GF_ERR_UNSUPPORTED, "the scales must be a constant to train");
    int grow = 0, shrink = 0;
    for (int64_t i = 0, n = gf_tensor_numel(t); i < n; i++) {
        double s = gf_num_at(t, i);
        grow |= s > 1;
        shrink |= s < 1;
    }
    if (grow && shrink)
        return gf_fail(GF_ERR_UNSUPPORTED, "no gradient for a nearest resize that enlarges some axes and shrinks others");
    *mode = shrink ? "ceil" : "floor";
    return GF_OK;
}

/* Resize from opset 11, and the older Resize/Upsample with their fixed coordinate rules. */
static gf_status resize_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    int legacy = !strcmp(c->fwd.op_type, "Upsample") || c->fwd.opset < 11;
    int in[5] = {c->dy[0], gb_shape(b, IN(0)), -1, -1, -1};
    if (!legacy) {
        in[2] = IN(1), in[3] = IN(2), in[4] = IN(3);
    } else if (c->fwd.n_inputs > 1) {
        in[3] = IN(1);
    } else {
        int n;
        const float *s = gf_attr_floats(&c->fwd, "scales", &n);
        if (!s) return gf_fail(GF_ERR_INVALID, "Upsample has no scales");
        int64_t dims[1] = {n};
        gf_tensor *t;
        int v = gb_new_value(b, HINT);
        if (v < 0 || gf_tensor_new(&t, GF_FLOAT, 1, dims)) return GF_ERR_NOMEM;
        memcpy(t->data, s, (size_t)n * sizeof *s);
        b->g->values[v].init = t;
        b->g->values[v].role = GF_ROLE_INITIALIZER;
        in[3] = v;
    }
    int n_in = 5;
    while (n_in > 2 && in[n_in - 1] < 0) n_in--;
    int ni = gb_node(b, GF_DOMAIN, "ResizeGrad", HINT, n_in, in, 1, &c->dx[0]);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    if (!legacy) return gb_copy_attrs(b, ni, &c->fwd, NULL);
    const char *mode = gf_attr_string(&c->fwd, "mode", "nearest");
    const char *nearest = "floor";
    if (!strcmp(mode, "nearest") && (legacy_nearest_mode(b, in[3], &nearest))) return GF_ERR_UNSUPPORTED;
    gf_status st = gb_attr_string(b, ni, "mode", mode);
    if (!st) st = gb_attr_string(b, ni, "coordinate_transformation_mode", "asymmetric");
    if (!st) st = gb_attr_string(b, ni, "nearest_mode", nearest);
    return st;
}

/* ---- reductions ---- */

/* The reduced axes, normalised and sorted: from the input (opset 13 ReduceSum, 18 the
 * others) or the attribute; none given means all (unless noop_with_empty_axes). */
static int reduced_axes(gf_grad_ctx *c, int rank, int64_t *axes)
{
    int n = 0;
    const int64_t *given = gf_attr_ints(&c->fwd, "axes", &n);
    if (IN(1) >= 0) {
        const gf_tensor *t = c->b->g->values[IN(1)].init;
        if (!t) return gf_fail(GF_ERR_UNSUPPORTED, "the reduced axes must be a constant to train"), -1;
        given = t->data;
        n = (int)gf_tensor_numel(t);
    }
    if (!n && gf_attr_int(&c->fwd, "noop_with_empty_axes", 0)) return 0;
    char reduced[GF_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) reduced[given[i] < 0 ? given[i] + rank : given[i]] = 1;
    int count = 0;
    for (int d = 0; d < rank; d++)
        if (!n || reduced[d]) axes[count++] = d;
    return count;
}

/* dx = dy, its reduced axes restored, expanded to x's shape (divided by the count for a mean). */
static gf_status reduce_grad(gf_grad_ctx *c)
{
    gf_builder *b = c->b;
    int rank = gb_rank(b, IN(0));
    int64_t axes[GF_MAX_RANK];
    int n = rank < 0 ? -1 : reduced_axes(c, rank, axes);
    if (n < 0) return rank < 0 ? gf_fail(GF_ERR_UNSUPPORTED, "the input's rank is unknown") : GF_ERR_UNSUPPORTED;
    int dy = c->dy[0];
    if (n && !gf_attr_int(&c->fwd, "keepdims", 1)) dy = gb_op2(b, "Unsqueeze", HINT, dy, gb_const_ints(b, HINT, axes, n));
    int dx = gb_op2(b, "Expand", HINT, dy, gb_shape(b, IN(0)));
    if (!strcmp(c->fwd.op_type, "ReduceMean")) {
        int count = gb_op2(b, "Div", HINT, gb_op1(b, "Size", HINT, IN(0)), gb_op1(b, "Size", HINT, OUT(0)));
        int ni = gb_node(b, "", "Cast", HINT, 1, &count, 1, &count);
        if (ni < 0 || gb_attr_int(b, ni, "to", GF_FLOAT)) return GF_ERR_UNSUPPORTED;
        dx = gb_op2(b, "Div", HINT, dx, count);
    }
    c->dx[0] = dx;
    for (int k = 1; k < c->fwd.n_inputs; k++) c->dx[k] = GR_NO_GRAD;
    return gr_done(c);
}

const gf_grad_rule gf_grad_rules_basic[] = {
    {"", "ReduceSum", reduce_grad},
    {"", "ReduceMean", reduce_grad},
    {"", "Add", add_sub_grad},
    {"", "Sub", add_sub_grad},
    {"", "Sum", sum_grad},
    {"", "Mul", mul_grad},
    {"", "Div", div_grad},
    {"", "Relu", relu_grad},
    {"", "LeakyRelu", leaky_relu_grad},
    {"", "Sigmoid", sigmoid_grad},
    {"", "Clip", clip_grad},
    {GF_DOMAIN, "DropoutTrain", dropout_grad},
    {"", "Identity", identity_grad},
    {"", "Flatten", reshape_grad},
    {"", "Reshape", reshape_grad},
    {"", "Squeeze", reshape_grad},
    {"", "Unsqueeze", reshape_grad},
    {"", "Transpose", transpose_grad},
    {"", "Concat", concat_grad},
    {"", "Split", split_grad},
    {"", "Slice", slice_grad},
    {"", "Pad", pad_grad},
    {"", "Resize", resize_grad},
    {"", "Upsample", resize_grad},
    {NULL, NULL, NULL},
};
