/* Kernels that take the blocked layout (op.h, GF_LAYOUT_BLOCKED) give, on random shapes,
 * the values they give on plain tensors: bit for bit where they run the same arithmetic
 * (oneDNN's convolutions and pools, which compute in the blocked layout either way;
 * graft's own batch-norm, pooling-gradient and element-wise kernels, written to sum in
 * the plain kernels' order), and FusedConv gives what Conv, Add and Relu/LeakyRelu give
 * one after the other, bit for bit, with its tensors in either layout. The layout conversion itself is checked against the layout's definition.
 *
 *   test_layouts */
#include "ops/dnnl_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRS 8

typedef struct test_node {
    gf_node node;
    gf_attr attrs[MAX_ATTRS];
    int64_t ints[MAX_ATTRS][8];
} test_node;

static int failures, checks;

static void node_init(test_node *t, const char *domain, const char *op_type)
{
    memset(t, 0, sizeof *t);
    t->node.name = (char *)op_type;
    t->node.op_type = (char *)op_type;
    t->node.domain = (char *)domain;
    t->node.opset = 17;
    t->node.attrs = t->attrs;
}

static void set_ints(test_node *t, const char *name, int n, const int64_t *v)
{
    int i = t->node.n_attrs++;
    t->attrs[i].name = (char *)name;
    t->attrs[i].type = GF_ATTR_INTS;
    t->attrs[i].n = n;
    memcpy(t->ints[i], v, (size_t)n * sizeof *v);
    t->attrs[i].ints = t->ints[i];
}

static void set_int(test_node *t, const char *name, int64_t v)
{
    int i = t->node.n_attrs++;
    t->attrs[i] = (gf_attr){.name = (char *)name, .type = GF_ATTR_INT, .i = v};
}

static void set_float(test_node *t, const char *name, float v)
{
    int i = t->node.n_attrs++;
    t->attrs[i] = (gf_attr){.name = (char *)name, .type = GF_ATTR_FLOAT, .f = v};
}

static void set_string(test_node *t, const char *name, const char *s)
{
    int i = t->node.n_attrs++;
    t->attrs[i] = (gf_attr){.name = (char *)name, .type = GF_ATTR_STRING, .s = (char *)s};
}

static int rnd(int lo, int hi) { return lo + rand() % (hi - lo + 1); }

static gf_tensor *tensor(int rank, const int64_t *dims)
{
    gf_tensor *t;
    if (gf_tensor_new(&t, GF_FLOAT, rank, dims)) {
        printf("FAIL out of memory\n");
        exit(1);
    }
    return t;
}

static gf_tensor *random_tensor(int rank, const int64_t *dims)
{
    gf_tensor *t = tensor(rank, dims);
    float *f = t->data;
    for (int64_t i = 0; i < gf_tensor_numel(t); i++) f[i] = (float)rand() / RAND_MAX * 2 - 1;
    return t;
}

static gf_tensor *shape_tensor(const gf_tensor *like)
{
    int64_t n = like->rank;
    gf_tensor *t;
    gf_tensor_new(&t, GF_INT64, 1, &n);
    memcpy(t->data, like->dims, (size_t)n * sizeof(int64_t));
    return t;
}

static gf_tensor *copy_in_layout(const gf_tensor *t, int layout)
{
    gf_tensor *c = tensor(t->rank, t->dims);
    if (gf_layout_convert(t->rank, t->dims, t->data, GF_LAYOUT_PLAIN, c->data, layout)) {
        printf("FAIL converting: %s\n", gf_last_error());
        exit(1);
    }
    return c;
}

/* Runs a node through the registry: infer (inputs with data, as constants would be, when
 * const_mask has their bit), then the kernel; outputs allocated at the inferred shapes. */
static int run_node(test_node *t, int n_in, gf_tensor **in, int n_out, gf_tensor **out, const unsigned char *layout,
                    unsigned const_mask)
{
    const gf_op *op = gf_op_find(t->node.domain, t->node.op_type, t->node.opset);
    if (!op) {
        printf("FAIL %s is not registered\n", t->node.op_type);
        return 1;
    }
    t->node.n_inputs = n_in;
    t->node.n_outputs = n_out;
    const gf_tensor *ins[8];
    gf_tensor shapes[8], outs_shape[8];
    gf_tensor *outs[8];
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {
            ins[i] = NULL;
            continue;
        }
        shapes[i] = *in[i];
        if (!(const_mask >> i & 1) && in[i]->dtype == GF_FLOAT) shapes[i].data = NULL;
        ins[i] = &shapes[i];
    }
    for (int k = 0; k < n_out; k++) {
        memset(&outs_shape[k], 0, sizeof outs_shape[k]);
        outs[k] = &outs_shape[k];
    }
    unsigned char lay[16] = {0};
    if (layout) memcpy(lay, layout, (size_t)(n_in + n_out));
    gf_op_ctx ctx = {&t->node, n_in, ins, n_out, outs, 1};
    if (layout) {
        ctx.in_layout = lay;
        ctx.out_layout = lay + n_in;
    }
    if (op->infer(&ctx)) {
        printf("FAIL %s infer: %s\n", t->node.op_type, gf_last_error());
        return 1;
    }
    for (int k = 0; k < n_out; k++) {
        if (!out[k]) out[k] = tensor(outs_shape[k].rank, outs_shape[k].dims);
        outs[k] = out[k];
    }
    for (int i = 0; i < n_in; i++) ins[i] = in[i];
    ctx.planning = 0;
    if (op->cpu(&ctx)) {
        printf("FAIL %s: %s\n", t->node.op_type, gf_last_error());
        return 1;
    }
    return 0;
}

/* Compares want (plain) with got (in `layout`): bit for bit when tol is 0. */
static void compare(const char *what, const gf_tensor *want, const gf_tensor *got, int layout, double tol)
{
    checks++;
    gf_tensor *plain = tensor(got->rank, got->dims);
    gf_layout_convert(got->rank, got->dims, got->data, layout, plain->data, GF_LAYOUT_PLAIN);
    const float *a = want->data, *b = plain->data;
    double worst = 0, scale = 0;
    int64_t differ = 0;
    for (int64_t i = 0; i < gf_tensor_numel(want); i++) {
        double d = fabs((double)a[i] - b[i]);
        if (memcmp(&a[i], &b[i], sizeof a[i])) differ++;
        if (d > worst || d != d) worst = d;
        if (fabs(a[i]) > scale) scale = fabs(a[i]);
    }
    int ok = tol == 0 ? differ == 0 : worst <= tol * (scale > 1 ? scale : 1);
    if (!ok) {
        printf("FAIL %s: %lld of %lld values differ, worst by %g\n", what, (long long)differ,
               (long long)gf_tensor_numel(want), worst);
        failures++;
    }
    gf_tensor_free(plain);
}

static void free_all(gf_tensor **t, int n)
{
    for (int i = 0; i < n; i++) gf_tensor_free(t[i]);
}

/* ---- the layout itself ---- */

static void check_convert(void)
{
    int b = gf_layout_block();
    int64_t dims[4] = {2, 2 * b, 3, 5};
    gf_tensor *x = random_tensor(4, dims), *y = copy_in_layout(x, GF_LAYOUT_BLOCKED);
    const float *p = x->data, *q = y->data;
    int bad = 0;
    for (int64_t n = 0; n < dims[0]; n++)
        for (int64_t c = 0; c < dims[1]; c++)
            for (int64_t i = 0; i < 15; i++)
                bad |= p[(n * dims[1] + c) * 15 + i] != q[((n * (dims[1] / b) + c / b) * 15 + i) * b + c % b];
    checks++;
    if (bad) {
        printf("FAIL the blocked layout is not N x C/%d x spatial x %d\n", b, b);
        failures++;
    }
    gf_tensor_free(x);
    gf_tensor_free(y);
}

/* ---- convolutions ---- */

static void check_conv(int round)
{
    int b = gf_layout_block();
    int64_t c = b * rnd(1, 3), m = b * rnd(1, 3), n = rnd(1, 3), h = rnd(5, 12), w = rnd(5, 12);
    int64_t k = rnd(1, 3), s = rnd(1, 2), p = k / 2;
    int64_t xd[4] = {n, c, h, w}, wd[4] = {m, c, k, k}, bd[1] = {m};
    gf_tensor *x = random_tensor(4, xd), *wt = random_tensor(4, wd), *bias = random_tensor(1, bd);
    test_node t;
    node_init(&t, "", "Conv");
    int64_t strides[2] = {s, s}, pads[4] = {p, p, p, p};
    set_ints(&t, "strides", 2, strides);
    set_ints(&t, "pads", 4, pads);
    char what[160];
    /* plain, then each combination of blocked input and output */
    gf_tensor *ref[1] = {NULL};
    gf_tensor *in[3] = {x, wt, bias};
    if (run_node(&t, 3, in, 1, ref, NULL, 6)) {
        failures++;
        return;
    }
    for (int combo = 1; combo < 4; combo++) {
        unsigned char lay[4] = {(unsigned char)(combo & 1), 0, 0, (unsigned char)(combo >> 1 & 1)};
        gf_tensor *xb = copy_in_layout(x, lay[0]);
        gf_tensor *in2[3] = {xb, wt, bias}, *out[1] = {NULL};
        snprintf(what, sizeof what, "Conv %lldx%lldx%lldx%lld k%lld s%lld -> %lld, x %s, y %s", (long long)n,
                 (long long)c, (long long)h, (long long)w, (long long)k, (long long)s, (long long)m,
                 lay[0] ? "blocked" : "plain", lay[3] ? "blocked" : "plain");
        if (!run_node(&t, 3, in2, 1, out, lay, 6)) compare(what, ref[0], out[0], lay[3], 0);
        else failures++;
        gf_tensor_free(xb);
        gf_tensor_free(out[0]);
    }

    /* FusedConv(X, W, B, S) = act(Conv + S), against Conv, Add and the activation. */
    const char *acts[3] = {"", "Relu", "LeakyRelu"};
    const char *act = acts[round % 3];
    gf_tensor *sum = random_tensor(4, ref[0]->dims);
    gf_tensor *want = tensor(4, ref[0]->dims);
    {
        test_node add;
        node_init(&add, "", "Add");
        gf_tensor *ain[2] = {ref[0], sum}, *aout[1] = {want};
        if (run_node(&add, 2, ain, 1, aout, NULL, 0)) failures++;
        if (*act) {
            test_node a;
            node_init(&a, "", act);
            if (!strcmp(act, "LeakyRelu")) set_float(&a, "alpha", 0.1f);
            gf_tensor *rin[1] = {want}, *rout[1] = {want};
            if (run_node(&a, 1, rin, 1, rout, NULL, 0)) failures++;
        }
    }
    test_node f;
    node_init(&f, "ai.graft", "FusedConv");
    set_ints(&f, "strides", 2, strides);
    set_ints(&f, "pads", 4, pads);
    set_string(&f, "activation", act);
    if (!strcmp(act, "LeakyRelu")) set_float(&f, "alpha", 0.1f);
    for (int combo = 0; combo < 8; combo++) {
        int xl = combo & 1, yl = combo >> 1 & 1, sl = combo >> 2 & 1;
        unsigned char lay[5] = {(unsigned char)xl, 0, 0, (unsigned char)sl, (unsigned char)yl};
        gf_tensor *xb = copy_in_layout(x, xl), *sb = copy_in_layout(sum, sl);
        gf_tensor *fin[4] = {xb, wt, bias, sb}, *out[1] = {NULL};
        snprintf(what, sizeof what, "FusedConv (%s) x %s, y %s, sum %s", *act ? act : "no activation",
                 xl ? "blocked" : "plain", yl ? "blocked" : "plain", sl ? "blocked" : "plain");
        if (!run_node(&f, 4, fin, 1, out, lay, 6)) compare(what, want, out[0], yl, 0);
        else failures++;
        gf_tensor_free(out[0]);
        gf_tensor_free(xb);
        gf_tensor_free(sb);
    }
    /* without S: the activation alone as a post-op */
    if (*act) {
        gf_tensor *want_act = tensor(4, ref[0]->dims), *out[1] = {NULL};
        test_node a;
        node_init(&a, "", act);
        if (!strcmp(act, "LeakyRelu")) set_float(&a, "alpha", 0.1f);
        gf_tensor *rin[1] = {ref[0]}, *rout[1] = {want_act};
        if (run_node(&a, 1, rin, 1, rout, NULL, 0)) failures++;
        gf_tensor *fin[3] = {x, wt, bias};
        unsigned char lay[4] = {0, 0, 0, GF_LAYOUT_BLOCKED};
        snprintf(what, sizeof what, "FusedConv (%s) without S, y blocked", act);
        if (!run_node(&f, 3, fin, 1, out, lay, 6)) compare(what, want_act, out[0], GF_LAYOUT_BLOCKED, 0);
        else failures++;
        gf_tensor_free(out[0]);
        gf_tensor_free(want_act);
    }
    /* and the reference path of FusedConv (double sums: close, not equal) */
    {
        gf_tensor *fin[4] = {x, wt, bias, sum}, *out[1] = {NULL};
        const gf_op *op = gf_op_find("ai.graft", "FusedConv", 17);
        f.node.n_inputs = 4;
        f.node.n_outputs = 1;
        const gf_tensor *ins[4] = {x, wt, bias, sum};
        out[0] = tensor(4, ref[0]->dims);
        gf_op_ctx ctx = {&f.node, 4, ins, 1, out, 0};
        if (!op || gf_conv_cpu_impl(&ctx, GF_IMPL_REFERENCE)) {
            printf("FAIL FusedConv reference: %s\n", gf_last_error());
            failures++;
        } else {
            snprintf(what, sizeof what, "FusedConv (%s) reference against fast", *act ? act : "no activation");
            compare(what, want, out[0], GF_LAYOUT_PLAIN, 1e-5);
        }
        (void)fin;
        gf_tensor_free(out[0]);
    }
    gf_tensor_free(want);
    gf_tensor_free(sum);

    /* the gradients: dY and dX or X blocked */
    gf_tensor *dy = random_tensor(4, ref[0]->dims), *xs = shape_tensor(x), *ws = shape_tensor(wt);
    test_node gi, gw;
    node_init(&gi, "ai.graft", "ConvGradInput");
    node_init(&gw, "ai.graft", "ConvGradWeight");
    set_ints(&gi, "strides", 2, strides);
    set_ints(&gi, "pads", 4, pads);
    set_ints(&gw, "strides", 2, strides);
    set_ints(&gw, "pads", 4, pads);
    gf_tensor *gin[3] = {dy, wt, xs}, *win[3] = {dy, x, ws}, *dx_ref[1] = {NULL}, *dw_ref[1] = {NULL};
    if (run_node(&gi, 3, gin, 1, dx_ref, NULL, 6) || run_node(&gw, 3, win, 1, dw_ref, NULL, 4)) failures++;
    for (int combo = 1; combo < 4 && dx_ref[0] && dw_ref[0]; combo++) {
        int dyl = combo & 1, xl = combo >> 1 & 1;
        gf_tensor *dyb = copy_in_layout(dy, dyl), *xb = copy_in_layout(x, xl);
        gf_tensor *gin2[3] = {dyb, wt, xs}, *win2[3] = {dyb, xb, ws}, *dx[1] = {NULL}, *dw[1] = {NULL};
        unsigned char li[4] = {(unsigned char)dyl, 0, 0, (unsigned char)xl}, lw[4] = {(unsigned char)dyl,
                                                                                     (unsigned char)xl, 0, 0};
        snprintf(what, sizeof what, "ConvGradInput dY %s, dX %s", dyl ? "blocked" : "plain", xl ? "blocked" : "plain");
        if (!run_node(&gi, 3, gin2, 1, dx, li, 6)) compare(what, dx_ref[0], dx[0], xl, 0);
        else failures++;
        snprintf(what, sizeof what, "ConvGradWeight dY %s, X %s", dyl ? "blocked" : "plain", xl ? "blocked" : "plain");
        if (!run_node(&gw, 3, win2, 1, dw, lw, 4)) compare(what, dw_ref[0], dw[0], GF_LAYOUT_PLAIN, 0);
        else failures++;
        gf_tensor *f4[4] = {dyb, xb, dx[0], dw[0]};
        free_all(f4, 4);
    }
    gf_tensor *rest[9] = {x, wt, bias, ref[0], dy, xs, ws, dx_ref[0], dw_ref[0]};
    free_all(rest, 9);
}

/* ---- pools and their gradients ---- */

static void check_pools(void)
{
    int b = gf_layout_block();
    int64_t n = rnd(1, 3), c = b * rnd(1, 3), h = rnd(6, 14), w = rnd(6, 14);
    int64_t xd[4] = {n, c, h, w};
    gf_tensor *x = random_tensor(4, xd);
    char what[128];
    const char *kinds[3] = {"MaxPool", "AveragePool", "GlobalAveragePool"};
    for (int kind = 0; kind < 3; kind++) {
        test_node t;
        node_init(&t, "", kinds[kind]);
        int64_t k[2] = {3, 3}, s[2] = {2, 2}, p[4] = {1, 1, 1, 1};
        if (kind < 2) {
            set_ints(&t, "kernel_shape", 2, k);
            set_ints(&t, "strides", 2, s);
            set_ints(&t, "pads", 4, p);
            if (kind == 1) set_int(&t, "count_include_pad", rand() % 2);
        }
        gf_tensor *in[1] = {x}, *ref[1] = {NULL};
        if (run_node(&t, 1, in, 1, ref, NULL, 0)) {
            failures++;
            continue;
        }
        gf_tensor *xb = copy_in_layout(x, GF_LAYOUT_BLOCKED);
        for (int yl = 0; yl < (kind < 2 ? 2 : 1); yl++) {
            unsigned char lay[2] = {GF_LAYOUT_BLOCKED, (unsigned char)yl};
            gf_tensor *in2[1] = {xb}, *out[1] = {NULL};
            snprintf(what, sizeof what, "%s x blocked, y %s", kinds[kind], yl ? "blocked" : "plain");
            if (!run_node(&t, 1, in2, 1, out, lay, 0)) compare(what, ref[0], out[0], yl, 0);
            else failures++;
            gf_tensor_free(out[0]);
        }

        /* the gradient */
        const char *grads[3] = {"MaxPoolGrad", "AveragePoolGrad", "GlobalAveragePoolGrad"};
        test_node g;
        node_init(&g, "ai.graft", grads[kind]);
        memcpy(g.attrs, t.attrs, sizeof t.attrs);
        memcpy(g.ints, t.ints, sizeof t.ints);
        for (int i = 0; i < t.node.n_attrs; i++)
            if (g.attrs[i].type == GF_ATTR_INTS) g.attrs[i].ints = g.ints[i];
        g.node.n_attrs = t.node.n_attrs;
        gf_tensor *dy = random_tensor(4, ref[0]->dims), *xs = shape_tensor(x);
        gf_tensor *gin[2] = {dy, kind ? xs : x}, *dx_ref[1] = {NULL};
        if (run_node(&g, 2, gin, 1, dx_ref, NULL, kind ? 2 : 0)) {
            failures++;
        } else {
            for (int combo = 1; combo < 8; combo++) {
                int dyl = combo & 1, xl = combo >> 1 & 1, dxl = combo >> 2 & 1;
                if (kind == 2) dyl = 0; /* one position: the same bytes */
                if (kind) xl = 0;       /* x_shape */
                gf_tensor *dyb = copy_in_layout(dy, dyl), *xb2 = copy_in_layout(x, xl);
                gf_tensor *gin2[2] = {dyb, kind ? xs : xb2}, *dx[1] = {NULL};
                unsigned char lay[3] = {(unsigned char)dyl, (unsigned char)xl, (unsigned char)dxl};
                snprintf(what, sizeof what, "%s dY %s, X %s, dX %s", grads[kind], dyl ? "blocked" : "plain",
                         xl ? "blocked" : "plain", dxl ? "blocked" : "plain");
                if (!run_node(&g, 2, gin2, 1, dx, lay, kind ? 2 : 0)) compare(what, dx_ref[0], dx[0], dxl, 0);
                else failures++;
                gf_tensor *f3[3] = {dyb, xb2, dx[0]};
                free_all(f3, 3);
            }
        }
        gf_tensor *f4[4] = {xb, ref[0], dy, xs};
        free_all(f4, 4);
        gf_tensor_free(dx_ref[0]);
    }
    gf_tensor_free(x);
}

/* ---- batch normalization in training, its gradient, element-wise ops ---- */

static void check_batchnorm(void)
{
    int b = gf_layout_block();
    int64_t n = rnd(1, 4), c = b * rnd(1, 3), h = rnd(1, 9), w = rnd(2, 9);
    int64_t xd[4] = {n, c, h, w}, cd[1] = {c};
    gf_tensor *x = random_tensor(4, xd), *scale = random_tensor(1, cd), *bias = random_tensor(1, cd);
    gf_tensor *mean = random_tensor(1, cd), *var = random_tensor(1, cd);
    float *xf = x->data;
    for (int64_t i = 0; i < gf_tensor_numel(x); i++) xf[i] = xf[i] * 3 + 5; /* a mean far from 0 */
    for (int64_t i = 0; i < c; i++) ((float *)var->data)[i] += 2;
    test_node t;
    node_init(&t, "ai.graft", "BatchNormTrain");
    gf_tensor *in[5] = {x, scale, bias, mean, var}, *ref[5] = {NULL};
    char what[96];
    if (run_node(&t, 5, in, 5, ref, NULL, 0)) {
        failures++;
        return;
    }
    gf_tensor *xb = copy_in_layout(x, GF_LAYOUT_BLOCKED);
    gf_tensor *in2[5] = {xb, scale, bias, mean, var}, *out[5] = {NULL};
    unsigned char lay[10] = {GF_LAYOUT_BLOCKED, 0, 0, 0, 0, GF_LAYOUT_BLOCKED, 0, 0, 0, 0};
    if (!run_node(&t, 5, in2, 5, out, lay, 0)) {
        compare("BatchNormTrain Y blocked", ref[0], out[0], GF_LAYOUT_BLOCKED, 0);
        for (int k = 1; k < 5; k++) {
            snprintf(what, sizeof what, "BatchNormTrain output %d with X blocked", k);
            compare(what, ref[k], out[k], GF_LAYOUT_PLAIN, 0);
        }
    } else {
        failures++;
    }
    /* the gradient, from the statistics the forward saved */
    test_node g;
    node_init(&g, "ai.graft", "BatchNormGrad");
    gf_tensor *dy = random_tensor(4, xd);
    gf_tensor *gin[5] = {dy, x, scale, ref[1], ref[2]}, *gref[3] = {NULL};
    if (run_node(&g, 5, gin, 3, gref, NULL, 0)) {
        failures++;
    } else {
        gf_tensor *dyb = copy_in_layout(dy, GF_LAYOUT_BLOCKED);
        gf_tensor *gin2[5] = {dyb, xb, scale, ref[1], ref[2]}, *gout[3] = {NULL};
        unsigned char gl[8] = {GF_LAYOUT_BLOCKED, GF_LAYOUT_BLOCKED, 0, 0, 0, GF_LAYOUT_BLOCKED, 0, 0};
        if (!run_node(&g, 5, gin2, 3, gout, gl, 0)) {
            compare("BatchNormGrad dX blocked", gref[0], gout[0], GF_LAYOUT_BLOCKED, 0);
            compare("BatchNormGrad dScale with X blocked", gref[1], gout[1], GF_LAYOUT_PLAIN, 0);
            compare("BatchNormGrad dBias with X blocked", gref[2], gout[2], GF_LAYOUT_PLAIN, 0);
        } else {
            failures++;
        }
        /* in place: dX into dY's storage */
        gf_tensor *dyc = copy_in_layout(dy, GF_LAYOUT_BLOCKED);
        gf_tensor *gin3[5] = {dyc, xb, scale, ref[1], ref[2]}, *gout3[3] = {dyc, NULL, NULL};
        if (!run_node(&g, 5, gin3, 3, gout3, gl, 0)) compare("BatchNormGrad dX blocked, in place", gref[0], dyc,
                                                             GF_LAYOUT_BLOCKED, 0);
        else failures++;
        gf_tensor *f6[6] = {dyb, gout[0], gout[1], gout[2], dyc, gout3[1]};
        free_all(f6, 6);
        gf_tensor_free(gout3[2]);
    }
    /* ReluGrad and Add are element-wise: any layout, the same values */
    test_node rg;
    node_init(&rg, "ai.graft", "ReluGrad");
    gf_tensor *rin[2] = {dy, x}, *rref[1] = {NULL};
    if (!run_node(&rg, 2, rin, 1, rref, NULL, 0)) {
        gf_tensor *dyb = copy_in_layout(dy, GF_LAYOUT_BLOCKED), *rout[1] = {NULL};
        gf_tensor *rin2[2] = {dyb, xb};
        unsigned char rl[3] = {GF_LAYOUT_BLOCKED, GF_LAYOUT_BLOCKED, GF_LAYOUT_BLOCKED};
        if (!run_node(&rg, 2, rin2, 1, rout, rl, 0)) compare("ReluGrad blocked", rref[0], rout[0], GF_LAYOUT_BLOCKED, 0);
        else failures++;
        gf_tensor_free(dyb);
        gf_tensor_free(rout[0]);
        gf_tensor_free(rref[0]);
    } else {
        failures++;
    }
    gf_tensor *f[10] = {x, scale, bias, mean, var, xb, dy, gref[0], gref[1], gref[2]};
    free_all(f, 10);
    free_all(ref, 5);
    free_all(out, 5);
}

int main(void)
{
    srand(1234);
    if (!gf_fastpath_enabled()) {
        printf("SKIP fast paths are off (GRAFT_NO_FASTPATH=1)\n");
        return 77;
    }
    check_convert();
    for (int round = 0; round < 12; round++) {
        check_conv(round);
        check_pools();
        check_batchnorm();
    }
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
