/* The rewrites a session applies to its steps once shapes are known (session_impl.h):
 *
 * 1. Fusions. Conv followed by BatchNormalization in inference form, with constant
 *    weights and statistics, becomes one Conv with the normalization folded into its
 *    weights and bias (in double, rounded once). A Conv (folded or not) whose output only
 *    feeds an Add of two same-shaped tensors, and/or a Relu or LeakyRelu, becomes one
 *    ai.graft FusedConv, which oneDNN runs with binary-add and eltwise post-ops: the Add's other
 *    operand is added as the outputs are stored (conv.c). Each folded-away value must have
 *    no other reader and not be an output.
 * 2. Layouts. Kernels whose op has a `layouts` hook say which tensors they take in the
 *    blocked layout (op.h). Walking the steps in order, an output is blocked when its
 *    kernel can write it so and some reader can take it; an element-wise (FOLLOW) kernel
 *    works blocked when all its FOLLOW inputs are; a blocked value read by a kernel that
 *    cannot take it gets one Reorder to plain, before its first such reader, shared by the
 *    others. Graph outputs, update sources and values of other kinds stay plain.
 * 3. In-place outputs. An element-wise kernel's output (FOLLOW) takes the storage of an
 *    input of its size and layout that dies at that step. */
#include "session_impl.h"

#include "../ops/op.h"
#include "error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- readers ---- */

typedef struct usage {
    int *readers;    /* per value: how many steps read it */
    int *last;       /* per value: the last step reading it, -1 for none */
    char *kept;      /* per value: read after the run (graph outputs, update sources) */
} usage;

static void usage_free(usage *u)
{
    free(u->readers);
    free(u->last);
    free(u->kept);
}

static gf_status usage_of(const gf_session *s, usage *u)
{
    size_t n = (size_t)s->n_vals + 1;
    u->readers = calloc(n, sizeof *u->readers);
    u->last = malloc(n * sizeof *u->last);
    u->kept = calloc(n, 1);
    if (!u->readers || !u->last || !u->kept) {
        usage_free(u);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    for (int v = 0; v < s->n_vals; v++) u->last[v] = -1;
    for (int step = 0; step < s->n_run; step++) {
        const gf_node *nd = s->run[step].node;
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v < 0) continue;
            u->readers[v]++;
            u->last[v] = step;
        }
    }
    const gf_graph *g = s->g;
    for (int v = 0; v < g->n_values; v++) u->kept[v] = (char)g->values[v].is_output;
    for (int i = 0; i < g->n_updates; i++) u->kept[g->updates[i].source] = u->kept[g->updates[i].state] = 1;
    return GF_OK;
}

/* The step reading v, when exactly one does and v is not kept; -1 otherwise. */
static int only_reader(const gf_session *s, const usage *u, int v)
{
    if (v < 0 || u->kept[v] || u->readers[v] != 1 || s->kind[v] != VALUE_ARENA) return -1;
    return u->last[v];
}

static int is_op(const gf_node *n, const char *domain, const char *op_type)
{
    return !strcmp(n->op_type, op_type) && !strcmp(n->domain, domain);
}

static int same_shape(const gf_tensor *a, const gf_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

/* ---- 1. fusions ---- */

/* BatchNormalization in inference form, reading v as X, with constant parameters. */
static int foldable_bn(const gf_session *s, const gf_node *bn, int v)
{
    if (!is_op(bn, "", "BatchNormalization") || bn->n_inputs != 5 || bn->inputs[0] != v) return 0;
    for (int k = 1; k < bn->n_outputs; k++)
        if (bn->outputs[k] >= 0) return 0;
    if (bn->opset >= 14 && gf_attr_int(bn, "training_mode", 0)) return 0;
    if (bn->opset < 7 && !gf_attr_int(bn, "is_test", 0)) return 0;
    if (bn->opset < 9 && !gf_attr_int(bn, "spatial", 1)) return 0;
    int64_t m = s->vals[v].dims[1];
    for (int k = 1; k < 5; k++) {
        int p = bn->inputs[k];
        if (p < 0 || s->kind[p] != VALUE_CONST || s->vals[p].dtype != GF_FLOAT || gf_tensor_numel(&s->vals[p]) != m ||
            !s->vals[p].data)
            return 0;
    }
    return 1;
}

/* A new constant value shaped like `like`, its data owned by the session. */
static int new_constant(gf_session *s, const gf_tensor *like_in, float **data)
{
    gf_tensor like = *like_in; /* it may point into s->vals, which adding a value may move */
    int v = gf_session_add_value(s, &like, VALUE_CONST);
    if (v < 0) return -1;
    if (gf_tensor_new(&s->folded[v], like.dtype, like.rank, like.dims)) return -1;
    s->vals[v].data = s->folded[v]->data;
    *data = s->folded[v]->data;
    return v;
}

/* W' = W * a and B' = (B - mean) * a + beta per output channel, a = scale / sqrt(var + eps). */
static gf_status fold_bn(gf_session *s, const gf_node *conv, const gf_node *bn, int *w_out, int *b_out)
{
    int w = conv->inputs[1], b = conv->n_inputs > 2 ? conv->inputs[2] : -1;
    const gf_tensor *wt = &s->vals[w];
    int64_t m = wt->dims[0], per = gf_tensor_numel(wt) / (m ? m : 1);
    gf_tensor bias_shape = {.dtype = GF_FLOAT, .rank = 1, .dims = {m}};
    float *nw, *nb;
    int wv = new_constant(s, wt, &nw);
    int bv = wv < 0 ? -1 : new_constant(s, &bias_shape, &nb);
    if (bv < 0) return gf_fail(GF_ERR_NOMEM, "out of memory folding a BatchNormalization");
    const float *ow = s->vals[w].data, *ob = b >= 0 ? s->vals[b].data : NULL;
    const float *scale = s->vals[bn->inputs[1]].data, *beta = s->vals[bn->inputs[2]].data;
    const float *mean = s->vals[bn->inputs[3]].data, *var = s->vals[bn->inputs[4]].data;
    double eps = gf_attr_float(bn, "epsilon", 1e-5f);
    for (int64_t o = 0; o < m; o++) {
        double a = (double)scale[o] / sqrt((double)var[o] + eps);
        for (int64_t i = 0; i < per; i++) nw[o * per + i] = (float)(ow[o * per + i] * a);
        nb[o] = (float)(((ob ? ob[o] : 0.0) - mean[o]) * a + beta[o]);
    }
    *w_out = wv;
    *b_out = bv;
    return GF_OK;
}

/* Which inference convolutions run as Winograd's (read once from GRAFT_CONV_ALGO):
 * those winograd_budget picks (unset), none ("direct") or every one that fits
 * ("winograd", which the tests use to reach its kernels on small graphs). */
typedef enum conv_algo { ALGO_AUTO, ALGO_DIRECT, ALGO_WINOGRAD } conv_algo;

static conv_algo conv_algo_wanted(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *v = getenv("GRAFT_CONV_ALGO");
        cached = v && !strcmp(v, "direct") ? ALGO_DIRECT : v && !strcmp(v, "winograd") ? ALGO_WINOGRAD : ALGO_AUTO;
    }
    return (conv_algo)cached;
}

/* Inference convolutions (constant weights) of 3x3 windows with unit strides and
 * dilations, one group and whole channel blocks may run as Winograd's minimal filtering
 * (oneDNN's F(2x2,3x3) and F(4x4,3x3)): two to three times fewer multiplications, a few
 * times the rounding error of the direct sums (about 1e-6 of the largest value per layer
 * against 2e-7). Training keeps the direct algorithm: its weights are state.
 * winograd_budget then picks which of these do. */
static int winograd_fits(const gf_session *s, const gf_node *conv)
{
    if (conv_algo_wanted() == ALGO_DIRECT || !is_op(conv, "", "Conv") || conv->n_inputs < 2 || conv->n_outputs != 1 ||
        conv->outputs[0] < 0 || s->vals[conv->inputs[0]].dtype != GF_FLOAT)
        return 0;
    int w = conv->inputs[1];
    const gf_tensor *wt = &s->vals[w], *y = &s->vals[conv->outputs[0]];
    if (s->kind[w] != VALUE_CONST || !wt->data || wt->rank != 4 || wt->dims[2] != 3 || wt->dims[3] != 3 ||
        y->rank != 4 || gf_attr_int(conv, "group", 1) != 1 || wt->dims[0] % gf_layout_block() ||
        wt->dims[1] % gf_layout_block())
        return 0;
    /* Maps under 8x8 (ResNet's last stage, 7x7) stay direct: the tile grid pads them to 8 and
     * the transformed weights (4x the 3x3 ones at batch 8) cost more memory than the few
     * multiplications saved: ResNet18 at batch 8 holds 219 MiB instead of 416, 4% slower. */
    if (y->dims[2] > 0 && y->dims[2] < 8 && y->dims[3] > 0 && y->dims[3] < 8) return 0;
    static const char *const unit[] = {"strides", "dilations"};
    for (int a = 0; a < 2; a++) {
        int count;
        const int64_t *v = gf_attr_ints(conv, unit[a], &count);
        for (int i = 0; v && i < count; i++)
            if (v[i] != 1) return 0;
    }
    return 1;
}

typedef struct winograd_candidate {
    int step;
    int64_t area;   /* output positions per image */
    size_t bytes;   /* of the 3x3 weights */
} winograd_candidate;

static int larger_map_first(const void *a, const void *b)
{
    const winograd_candidate *x = a, *y = b;
    if (x->area != y->area) return x->area < y->area ? 1 : -1;
    return x->step - y->step;
}

/* Marks the steps whose convolution runs as Winograd. Its transformed weights take 4x
 * the 3x3 ones (F(4x4,3x3)'s 6x6 tiles; measured on YOLOv3 at batch 8: 392 MiB more for
 * 132 MB of weights run direct), so together they may take as much again as the model's
 * weights, spent on the largest maps first, where each transformed weight saves the most
 * multiplications. ResNet18, ResNet50 and VGG16 fit whole; YOLOv3's 1024-channel layers
 * on 8x8 maps (at 256x256) stay direct: 3% slower at batch 1 and 8% at batch 8 than all
 * Winograd, and 107 and 394 MiB smaller (631 and 771 MiB: onnxruntime's take 735, 975). */
static gf_status winograd_budget(const gf_session *s, char *wino)
{
    winograd_candidate *c = malloc(((size_t)s->n_run + 1) * sizeof *c);
    if (!c) return gf_fail(GF_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int step = 0; step < s->n_run; step++) {
        const gf_node *conv = s->run[step].node;
        if (s->run[step].dynamic || !winograd_fits(s, conv)) continue;
        const gf_tensor *y = &s->vals[conv->outputs[0]];
        c[n++] = (winograd_candidate){step, y->dims[2] * y->dims[3], gf_tensor_nbytes(&s->vals[conv->inputs[1]])};
    }
    size_t budget = 0;
    for (int v = 0; v < s->g->n_values; v++)
        if (s->g->values[v].init) budget += gf_tensor_nbytes(s->g->values[v].init);
    if (conv_algo_wanted() == ALGO_WINOGRAD) budget = SIZE_MAX;
    qsort(c, (size_t)n, sizeof *c, larger_map_first);
    for (int i = 0; i < n; i++) {
        size_t extra = 3 * c[i].bytes;
        if (extra > budget) continue;
        budget -= extra;
        wino[c[i].step] = 1;
    }
    free(c);
    return GF_OK;
}

/* Follows one Conv step's chain of fusable readers and replaces it by one step. */
static gf_status fuse_conv(gf_session *s, const usage *u, int step, int wino, char *drop)
{
    const gf_node *conv = s->run[step].node;
    if (!is_op(conv, "", "Conv") || conv->n_inputs < 2 || conv->n_outputs != 1 || s->run[step].dynamic) return GF_OK;
    int x = conv->inputs[0], w = conv->inputs[1], b = conv->n_inputs > 2 ? conv->inputs[2] : -1, y = conv->outputs[0];
    if (y < 0 || s->vals[x].dtype != GF_FLOAT || s->vals[w].rank < 3) return GF_OK;
    int last = step, sum = -1, chain[3], n_chain = 0;
    const gf_node *act = NULL;
    int r = only_reader(s, u, y);
    int wc = s->kind[w] == VALUE_CONST && s->vals[w].data && (b < 0 || s->kind[b] == VALUE_CONST);
    if (r >= 0 && !drop[r] && !s->run[r].dynamic && wc && foldable_bn(s, s->run[r].node, y)) {
        gf_status st = fold_bn(s, conv, s->run[r].node, &w, &b);
        if (st) return st;
        chain[n_chain++] = r;
        last = r;
        y = s->run[r].node->outputs[0];
        r = only_reader(s, u, y);
    }
    if (r >= 0 && !drop[r] && !s->run[r].dynamic && is_op(s->run[r].node, "", "Add") &&
        s->run[r].node->n_inputs == 2) {
        const gf_node *add = s->run[r].node;
        int other = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
        if (other >= 0 && other != y && add->outputs[0] >= 0 && same_shape(&s->vals[other], &s->vals[y]) &&
            same_shape(&s->vals[add->outputs[0]], &s->vals[y])) {
            sum = other;
            chain[n_chain++] = r;
            last = r;
            y = add->outputs[0];
            r = only_reader(s, u, y);
        }
    }
    if (r >= 0 && !drop[r] && !s->run[r].dynamic &&
        (is_op(s->run[r].node, "", "Relu") || is_op(s->run[r].node, "", "LeakyRelu")) &&
        s->run[r].node->n_inputs == 1 && s->run[r].node->outputs[0] >= 0 &&
        same_shape(&s->vals[s->run[r].node->outputs[0]], &s->vals[y])) {
        act = s->run[r].node;
        chain[n_chain++] = r;
        last = r;
        y = act->outputs[0];
    }
    if (!n_chain && !wino) return GF_OK;
    /* The fused step runs where the chain's last node did: every input is ready there. */
    int ins[4] = {x, w, b, sum}, outs[1] = {y};
    gf_attr extra[3];
    int n_extra = 0;
    const char *kind = !act ? "" : is_op(act, "", "Relu") ? "Relu" : "LeakyRelu";
    extra[n_extra++] = (gf_attr){.name = "activation", .type = GF_ATTR_STRING, .s = (char *)kind};
    if (act && !strcmp(kind, "LeakyRelu"))
        extra[n_extra++] = (gf_attr){.name = "alpha", .type = GF_ATTR_FLOAT, .f = gf_attr_float(act, "alpha", 0.01f)};
    if (wino) extra[n_extra++] = (gf_attr){.name = "algorithm", .type = GF_ATTR_STRING, .s = "winograd"};
    gf_node *fused = gf_session_add_node(s, conv->name, "ai.graft", "FusedConv", 1, 4, ins, 1, outs, conv, n_extra, extra);
    if (!fused) return gf_fail(GF_ERR_NOMEM, "out of memory fusing '%s'", conv->name);
    drop[step] = 1;
    for (int i = 0; i < n_chain; i++) drop[chain[i]] = 1;
    drop[last] = 0;
    s->run[last].node = fused;
    s->run[last].dynamic = 0;
    return GF_OK;
}

static void compact_steps(gf_session *s, const char *drop)
{
    int n = 0;
    for (int step = 0; step < s->n_run; step++)
        if (!drop[step]) s->run[n++] = s->run[step];
    s->n_run = n;
}

static gf_status fuse(gf_session *s)
{
    usage u;
    gf_status st = usage_of(s, &u);
    if (st) return st;
    char *drop = calloc((size_t)s->n_run + 1, 1), *wino = calloc((size_t)s->n_run + 1, 1);
    if (!drop || !wino) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) st = winograd_budget(s, wino);
    for (int step = 0; step < s->n_run && !st; step++)
        if (!drop[step]) st = fuse_conv(s, &u, step, wino[step], drop);
    /* Values the fused steps no longer make. */
    if (!st) {
        compact_steps(s, drop);
        char *made = calloc((size_t)s->n_vals + 1, 1);
        if (!made) st = gf_fail(GF_ERR_NOMEM, "out of memory");
        for (int step = 0; !st && step < s->n_run; step++) {
            const gf_node *nd = s->run[step].node;
            for (int k = 0; k < nd->n_outputs; k++)
                if (nd->outputs[k] >= 0) made[nd->outputs[k]] = 1;
        }
        for (int v = 0; !st && v < s->n_vals; v++)
            if (s->kind[v] == VALUE_ARENA && !made[v]) s->kind[v] = VALUE_UNUSED;
        free(made);
    }
    free(drop);
    free(wino);
    usage_free(&u);
    return st;
}

/* ---- 2. layouts ---- */

/* What each step's kernel can take: n_inputs + n_outputs bytes per step. */
typedef struct caps_table {
    unsigned char **per_step;
} caps_table;

static gf_status caps_of(gf_session *s, const exec_node *e, unsigned char **out)
{
    const gf_node *n = e->node;
    *out = calloc((size_t)(n->n_inputs + n->n_outputs) + 1, 1);
    if (!*out) return gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!n->op->layouts || e->dynamic) return GF_OK;
    const gf_tensor *in_small[64];
    gf_tensor *out_small[64];
    if (n->n_inputs > 64 || n->n_outputs > 64) return GF_OK;
    for (int k = 0; k < n->n_inputs; k++) in_small[k] = n->inputs[k] >= 0 ? &s->vals[n->inputs[k]] : NULL;
    for (int k = 0; k < n->n_outputs; k++) out_small[k] = n->outputs[k] >= 0 ? &s->vals[n->outputs[k]] : NULL;
    gf_op_ctx ctx = {n, n->n_inputs, in_small, n->n_outputs, out_small, 1};
    ctx.in_layout = *out;
    ctx.out_layout = *out + n->n_inputs;
    if (n->op->layouts(&ctx)) {
        gf_clear_error();
        memset(*out, 0, (size_t)(n->n_inputs + n->n_outputs));
    }
    return GF_OK;
}

/* Values that may be kept blocked: float activations in the arena of rank 3 to 5, with
 * whole channel blocks and more than one position (with one, both layouts are the same
 * bytes, and plain is the one everybody reads). */
static int blockable(const gf_session *s, const usage *u, int v, int block)
{
    if (v < 0 || s->kind[v] != VALUE_ARENA || u->kept[v]) return 0;
    const gf_tensor *t = &s->vals[v];
    if (t->dtype != GF_FLOAT || t->rank < 3 || t->rank > 5 || t->dims[1] <= 0 || t->dims[1] % block) return 0;
    int64_t spatial = 1;
    for (int d = 2; d < t->rank; d++) spatial *= t->dims[d];
    return spatial > 1 && t->dims[0] > 0;
}

/* A copy of step e's node reading `with` where it read input k. */
static gf_status replace_input(gf_session *s, exec_node *e, int k, int with)
{
    const gf_node *n = e->node;
    int ins[64];
    if (n->n_inputs > 64) return gf_fail(GF_ERR_UNSUPPORTED, "too many inputs to rewrite");
    memcpy(ins, n->inputs, (size_t)n->n_inputs * sizeof *ins);
    ins[k] = with;
    int is_synth = 0;
    for (int i = 0; i < s->n_synth && !is_synth; i++) is_synth = s->synth[i] == n;
    if (is_synth) {
        ((gf_node *)n)->inputs[k] = with;
        return GF_OK;
    }
    gf_node *copy = gf_session_add_node(s, n->name, n->domain, n->op_type, n->opset, n->n_inputs, ins, n->n_outputs,
                                        n->outputs, n, 0, NULL);
    if (!copy) return gf_fail(GF_ERR_NOMEM, "out of memory");
    e->node = copy;
    return GF_OK;
}

static gf_status set_step_layout(exec_node *e, const unsigned char *in, const unsigned char *out)
{
    const gf_node *n = e->node;
    int any = 0;
    for (int k = 0; k < n->n_inputs; k++) any |= in[k];
    for (int k = 0; k < n->n_outputs; k++) any |= out[k];
    if (!any) return GF_OK;
    e->layout = malloc((size_t)(n->n_inputs + n->n_outputs));
    if (!e->layout) return gf_fail(GF_ERR_NOMEM, "out of memory");
    memcpy(e->layout, in, (size_t)n->n_inputs);
    memcpy(e->layout + n->n_inputs, out, (size_t)n->n_outputs);
    return GF_OK;
}

static gf_status layouts(gf_session *s)
{
    int block = gf_layout_block();
    usage u;
    gf_status st = usage_of(s, &u);
    if (st) return st;
    int n_old = s->n_run, n_vals = s->n_vals;
    exec_node *old = s->run;
    unsigned char **caps = calloc((size_t)n_old + 1, sizeof *caps);
    char *wanted = calloc((size_t)n_vals + 1, 1);          /* some reader takes it blocked */
    int *twin = malloc(((size_t)n_vals + 1) * sizeof *twin); /* its plain copy, -1: none yet */
    exec_node *run = malloc(((size_t)2 * n_old + 1) * sizeof *run);
    if (!caps || !wanted || !twin || !run) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int step = 0; step < n_old && !st; step++) st = caps_of(s, &old[step], &caps[step]);
    for (int v = 0; !st && v < n_vals; v++) twin[v] = -1;
    for (int step = 0; step < n_old && !st; step++) {
        const gf_node *n = old[step].node;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && caps[step][k]) wanted[n->inputs[k]] = 1;
    }
    int n_run = 0;
    for (int step = 0; step < n_old && !st; step++) {
        exec_node e = old[step];
        const unsigned char *c = caps[step];
        const gf_node *n = e.node;
        int n_in = n->n_inputs, n_out = n->n_outputs;
        unsigned char in_l[64] = {0}, out_l[64] = {0};
        if (n_in > 64 || n_out > 64) {
            run[n_run++] = e;
            continue;
        }
        int follow = 0, follow_blocked = 1;
        for (int k = 0; k < n_in; k++)
            if (c[k] == GF_LAYOUT_FOLLOW) {
                follow = 1;
                if (n->inputs[k] < 0 || s->layout[n->inputs[k]] != GF_LAYOUT_BLOCKED) follow_blocked = 0;
            }
        for (int k = 0; k < n_out; k++)
            if (c[n_in + k] == GF_LAYOUT_FOLLOW && !blockable(s, &u, n->outputs[k], block)) follow_blocked = 0;
        for (int k = 0; k < n_in && !st; k++) {
            int v = n->inputs[k];
            if (v < 0 || s->layout[v] != GF_LAYOUT_BLOCKED) continue;
            if (c[k] == GF_LAYOUT_CAN_BLOCK || (c[k] == GF_LAYOUT_FOLLOW && follow_blocked)) {
                in_l[k] = GF_LAYOUT_BLOCKED;
                continue;
            }
            if (twin[v] < 0) {
                /* The first reader that wants it plain: a Reorder just before it. */
                int p = gf_session_add_value(s, &s->vals[v], VALUE_ARENA);
                gf_node *r = p < 0 ? NULL
                                   : gf_session_add_node(s, "graft.reorder", "ai.graft", "Reorder", 1, 1, &v, 1, &p,
                                                         NULL, 0, NULL);
                exec_node re = {r, 0, -1, malloc(2)};
                if (!r || !re.layout) {
                    free(re.layout);
                    st = gf_fail(GF_ERR_NOMEM, "out of memory");
                    break;
                }
                re.layout[0] = GF_LAYOUT_BLOCKED;
                re.layout[1] = GF_LAYOUT_PLAIN;
                run[n_run++] = re;
                twin[v] = p;
            }
            st = replace_input(s, &e, k, twin[v]);
            n = e.node;
        }
        for (int k = 0; k < n_out && !st; k++) {
            int v = n->outputs[k];
            if (!blockable(s, &u, v, block)) continue;
            unsigned char ck = c[n_in + k];
            if ((ck == GF_LAYOUT_CAN_BLOCK && wanted[v]) || (ck == GF_LAYOUT_FOLLOW && follow && follow_blocked)) {
                out_l[k] = GF_LAYOUT_BLOCKED;
                s->layout[v] = GF_LAYOUT_BLOCKED;
            }
        }
        if (!st) st = set_step_layout(&e, in_l, out_l);
        run[n_run++] = e;
    }
    if (!st) {
        free(s->run);
        s->run = run;
        s->n_run = n_run;
        s->cap_run = 2 * n_old + 1;
        run = NULL;
    }
    for (int step = 0; caps && step < n_old; step++) free(caps[step]);
    free(caps);
    free(wanted);
    free(twin);
    free(run);
    usage_free(&u);
    return st;
}

/* ---- 3. in-place outputs ---- */

static gf_status in_place(gf_session *s)
{
    usage u;
    gf_status st = usage_of(s, &u);
    for (int step = 0; step < s->n_run && !st; step++) {
        exec_node *e = &s->run[step];
        const gf_node *n = e->node;
        if (e->dynamic || n->n_outputs < 1 || n->outputs[0] < 0 || s->kind[n->outputs[0]] != VALUE_ARENA) continue;
        int out = n->outputs[0], candidates[2], n_cand = 0;
        if (is_op(n, "ai.graft", "FusedConv")) {
            continue; /* the convolution stores partial sums in its output before reading S */
        } else {
            unsigned char *c;
            if ((st = caps_of(s, e, &c))) break;
            /* Element-wise kernels read each element before writing it; the variadic ones
             * (Sum of three, say) first copy input 0 into the output, so only two inputs. */
            int elementwise = c[n->n_inputs] == GF_LAYOUT_FOLLOW, n_follow = 0;
            for (int k = 0; k < n->n_inputs; k++) n_follow += c[k] == GF_LAYOUT_FOLLOW;
            if (elementwise && n_follow <= 2 && c[0] == GF_LAYOUT_FOLLOW) candidates[n_cand++] = 0;
            if (elementwise && n->n_inputs == 2 && c[1] == GF_LAYOUT_FOLLOW) candidates[n_cand++] = 1;
            free(c);
        }
        for (int i = 0; i < n_cand && e->in_place < 0; i++) {
            int j = candidates[i], v = j < n->n_inputs ? n->inputs[j] : -1;
            if (v < 0 || s->kind[v] != VALUE_ARENA || u.kept[v] || u.last[v] != step) continue;
            int read_twice = 0;
            for (int k = 0; k < n->n_inputs; k++) read_twice |= k != j && n->inputs[k] == v;
            if (read_twice || s->layout[v] != s->layout[out] || gf_tensor_nbytes(&s->vals[v]) != gf_tensor_nbytes(&s->vals[out]) ||
                s->vals[v].dtype != s->vals[out].dtype)
                continue;
            e->in_place = j;
        }
    }
    usage_free(&u);
    return st;
}

gf_status gf_session_rewrite(gf_session *s)
{
    if (!gf_fastpath_enabled()) return GF_OK;
    gf_status st = fuse(s);
    if (s->cuda) return st; /* blocked layouts and the in-place kernels are the CPU's */
    if (!st) st = layouts(s);
    if (!st) st = in_place(s);
    return st;
}
