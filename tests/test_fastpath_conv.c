/* The oneDNN fast paths of Conv, ConvTranspose, MaxPool and AveragePool give the
 * reference kernels' answers on random shapes: strides, pads, dilations, groups
 * (depthwise too), auto_pad, ceil_mode, output_padding and output_shape.
 *
 *   test_fastpath_conv [--bench]   --bench also times a ResNet-like 3x3 conv */
#include "ops/dnnl_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ATTRS 8

typedef struct test_node {
    gf_node node;
    gf_attr attrs[MAX_ATTRS];
    int64_t ints[MAX_ATTRS][8];
} test_node;

static void node_init(test_node *t, const char *op_type)
{
    memset(t, 0, sizeof *t);
    t->node.name = (char *)"test";
    t->node.op_type = (char *)op_type;
    t->node.domain = (char *)"";
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
    t->attrs[i].name = (char *)name;
    t->attrs[i].type = GF_ATTR_INT;
    t->attrs[i].i = v;
}

static void set_string(test_node *t, const char *name, const char *s)
{
    int i = t->node.n_attrs++;
    t->attrs[i].name = (char *)name;
    t->attrs[i].type = GF_ATTR_STRING;
    t->attrs[i].s = (char *)s;
}

static int rnd(int lo, int hi) { return lo + rand() % (hi - lo + 1); }

static gf_tensor *random_tensor(int rank, const int64_t *dims)
{
    gf_tensor *t;
    if (gf_tensor_new(&t, GF_FLOAT, rank, dims)) return NULL;
    float *f = t->data;
    for (int64_t i = 0; i < gf_tensor_numel(t); i++) f[i] = (float)rand() / RAND_MAX * 2 - 1;
    return t;
}

typedef gf_status (*impl_fn)(gf_op_ctx *, gf_impl);

typedef struct outcome {
    int compared, fast_unsupported, failed;
} outcome;

/* Runs the reference and the fast path on ctx and compares them. */
static void run_and_compare(outcome *res, gf_op_ctx *ctx, impl_fn impl, const gf_tensor *out_shape, const char *what)
{
    gf_tensor *ref, *fast;
    gf_tensor_new(&ref, out_shape->dtype, out_shape->rank, out_shape->dims);
    gf_tensor_new(&fast, out_shape->dtype, out_shape->rank, out_shape->dims);
    ctx->outputs[0] = ref;
    gf_status st = impl(ctx, GF_IMPL_REFERENCE);
    ctx->outputs[0] = fast;
    gf_status fst = st ? st : impl(ctx, GF_IMPL_FAST);
    if (st) {
        printf("FAIL %s: reference: %s\n", what, gf_last_error());
        res->failed++;
    } else if (fst == GF_ERR_UNSUPPORTED) {
        printf("     %s: no fast path (%s)\n", what, gf_last_error());
        res->fast_unsupported++;
    } else if (fst) {
        printf("FAIL %s: fast path: %s\n", what, gf_last_error());
        res->failed++;
    } else {
        const float *a = ref->data, *b = fast->data;
        double worst = 0;
        int64_t at = 0, n = gf_tensor_numel(ref);
        for (int64_t i = 0; i < n; i++) {
            double err = fabs((double)a[i] - b[i]) / (1e-4 + 1e-4 * fabs(a[i]));
            if (!(err <= worst)) worst = err, at = i;
        }
        res->compared++;
        if (worst > 1) {
            printf("FAIL %s: element %lld: reference %g, fast %g\n", what, (long long)at, a[at], b[at]);
            res->failed++;
        } else {
            printf("ok   %s: %lld values, worst error %.2f of tolerance\n", what, (long long)n, worst);
        }
    }
    gf_tensor_free(ref);
    gf_tensor_free(fast);
}

/* Infers the output shape (weights constant or not), then runs the reference and the
 * fast path and compares them. Constant weights are reordered once, at inference; then
 * the same node runs on other weights in other storage, which the fast path must
 * reorder again (its plan dropped the first reorder's primitive). */
static void check_case(outcome *res, test_node *t, impl_fn impl, int n_in, gf_tensor **in, int weights_const,
                       const char *what)
{
    const gf_op *op = gf_op_find("", t->node.op_type, t->node.opset);
    t->node.n_inputs = n_in;
    t->node.n_outputs = 1;
    gf_tensor out_shape;
    memset(&out_shape, 0, sizeof out_shape);
    gf_tensor *outs[1] = {&out_shape};
    const gf_tensor *ins[3];
    gf_tensor shapes[3];
    for (int i = 0; i < n_in; i++) {
        shapes[i] = *in[i];
        if (i == 1 && !weights_const) shapes[i].data = NULL; /* an activation: no data at plan time */
        ins[i] = &shapes[i];
    }
    gf_op_ctx ctx = {&t->node, n_in, ins, 1, outs, 1};
    gf_status st = op->infer(&ctx);
    if (st) {
        printf("FAIL %s: infer: %s\n", what, gf_last_error());
        res->failed++;
        return;
    }
    for (int i = 0; i < n_in; i++) ins[i] = in[i];
    ctx.planning = 0;
    run_and_compare(res, &ctx, impl, &out_shape, what);
    if (!weights_const || n_in < 2) return;
    gf_tensor *other;
    gf_tensor_new(&other, in[1]->dtype, in[1]->rank, in[1]->dims);
    for (int64_t i = 0; i < gf_tensor_numel(other); i++) ((float *)other->data)[i] = -0.5f * ((float *)in[1]->data)[i];
    ins[1] = other;
    char again[300];
    snprintf(again, sizeof again, "%s, then other weights", what);
    run_and_compare(res, &ctx, impl, &out_shape, again);
    gf_tensor_free(other);
}

static void describe(char *buf, size_t len, const char *op, int nsp, const int64_t *xd, const int64_t *k,
                     const int64_t *s, const int64_t *d, const int64_t *p, int64_t g, const char *extra)
{
    int o = snprintf(buf, len, "%s x[", op);
    for (int i = 0; i < nsp + 2; i++) o += snprintf(buf + o, len - (size_t)o, "%s%lld", i ? "," : "", (long long)xd[i]);
    o += snprintf(buf + o, len - (size_t)o, "] k");
    for (int i = 0; i < nsp; i++) o += snprintf(buf + o, len - (size_t)o, "%s%lld", i ? "x" : "", (long long)k[i]);
    o += snprintf(buf + o, len - (size_t)o, " s");
    for (int i = 0; i < nsp; i++) o += snprintf(buf + o, len - (size_t)o, "%s%lld", i ? "," : "", (long long)s[i]);
    o += snprintf(buf + o, len - (size_t)o, " d");
    for (int i = 0; i < nsp; i++) o += snprintf(buf + o, len - (size_t)o, "%s%lld", i ? "," : "", (long long)d[i]);
    o += snprintf(buf + o, len - (size_t)o, " p");
    for (int i = 0; i < 2 * nsp; i++) o += snprintf(buf + o, len - (size_t)o, "%s%lld", i ? "," : "", (long long)p[i]);
    snprintf(buf + o, len - (size_t)o, " g%lld %s", (long long)g, extra);
}

static const char *const auto_pads[] = {"NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

static void conv_case(outcome *res, int transpose, int nsp)
{
    int64_t k[3], s[3], d[3], p[6], outpad[3], xd[5], wd[5], outshape[3];
    int64_t g = rand() % 3 == 0 ? rnd(2, 4) : 1;
    int depthwise = !transpose && rand() % 4 == 0;
    int64_t c = depthwise ? rnd(1, 8) * 8 : g * rnd(1, 6), m = depthwise ? c : g * rnd(1, 6);
    if (depthwise) g = c;
    const char *auto_pad = auto_pads[rand() % 6];
    int use_outshape = transpose && !strcmp(auto_pad, "NOTSET") && rand() % 3 == 0;
    xd[0] = rnd(1, 3);
    xd[1] = c;
    for (int i = 0; i < nsp; i++) {
        k[i] = rnd(1, nsp == 3 ? 3 : 5);
        s[i] = rnd(1, 3);
        d[i] = rand() % 3 == 0 ? 2 : 1;
        p[i] = rnd(0, 2);
        p[nsp + i] = rnd(0, 2);
        outpad[i] = transpose && rand() % 2 ? rnd(0, s[i] - 1) : 0;
        xd[2 + i] = rnd(5, nsp == 1 ? 40 : nsp == 2 ? 20 : 8) + (k[i] - 1) * d[i];
        outshape[i] = s[i] * (xd[2 + i] - 1) + (k[i] - 1) * d[i] + 1 + rnd(-1, 1);
    }
    wd[0] = transpose ? c : m;
    wd[1] = transpose ? m / g : c / g;
    for (int i = 0; i < nsp; i++) wd[2 + i] = k[i];
    int64_t bd[1] = {m};
    test_node t;
    node_init(&t, transpose ? "ConvTranspose" : "Conv");
    set_ints(&t, "strides", nsp, s);
    set_ints(&t, "dilations", nsp, d);
    set_int(&t, "group", g);
    set_string(&t, "auto_pad", auto_pad);
    if (!strcmp(auto_pad, "NOTSET")) set_ints(&t, "pads", 2 * nsp, p);
    if (transpose) set_ints(&t, "output_padding", nsp, outpad);
    if (use_outshape) set_ints(&t, "output_shape", nsp, outshape);
    gf_tensor *in[3] = {random_tensor(nsp + 2, xd), random_tensor(nsp + 2, wd), random_tensor(1, bd)};
    int n_in = rand() % 2 ? 3 : 2, weights_const = rand() % 2;
    char what[256], extra[64];
    snprintf(extra, sizeof extra, "%s%s%s%s", auto_pad, n_in == 3 ? " bias" : "", weights_const ? " constW" : "",
             use_outshape ? " output_shape" : "");
    describe(what, sizeof what, t.node.op_type, nsp, xd, k, s, d, p, g, extra);
    check_case(res, &t, gf_conv_cpu_impl, n_in, in, weights_const, what);
    for (int i = 0; i < 3; i++) gf_tensor_free(in[i]);
}

static void pool_case(outcome *res, int nsp)
{
    int64_t k[3], s[3], d[3], p[6], xd[5];
    int max = rand() % 2, ceil_mode = rand() % 2, include_pad = rand() % 2;
    const char *auto_pad = auto_pads[rand() % 6];
    xd[0] = rnd(1, 2);
    xd[1] = rnd(1, 20);
    for (int i = 0; i < nsp; i++) {
        k[i] = rnd(1, 4);
        s[i] = rnd(1, 3);
        d[i] = max && rand() % 3 == 0 ? 2 : 1;
        p[i] = rnd(0, k[i] - 1);
        p[nsp + i] = rnd(0, k[i] - 1);
        xd[2 + i] = rnd(4, nsp == 3 ? 8 : 24) + (k[i] - 1) * d[i];
    }
    test_node t;
    node_init(&t, max ? "MaxPool" : "AveragePool");
    set_ints(&t, "kernel_shape", nsp, k);
    set_ints(&t, "strides", nsp, s);
    set_ints(&t, "dilations", nsp, d);
    set_int(&t, "ceil_mode", ceil_mode);
    set_string(&t, "auto_pad", auto_pad);
    if (!strcmp(auto_pad, "NOTSET")) set_ints(&t, "pads", 2 * nsp, p);
    if (!max) set_int(&t, "count_include_pad", include_pad);
    gf_tensor *x = random_tensor(nsp + 2, xd);
    char what[256], extra[64];
    snprintf(extra, sizeof extra, "%s%s%s", auto_pad, ceil_mode ? " ceil" : "", !max && include_pad ? " include_pad" : "");
    describe(what, sizeof what, t.node.op_type, nsp, xd, k, s, d, p, 1, extra);
    check_case(res, &t, gf_pool_cpu_impl, 1, &x, 0, what);
    gf_tensor_free(x);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best-of-N time of a node run the way a session runs it: infer at plan time with
 * constant weights, then the AUTO kernel. */
static void bench_conv(int64_t batch, int64_t c, int64_t hw, int64_t m, int64_t kernel)
{
    int64_t xd[4] = {batch, c, hw, hw}, wd[4] = {m, c, kernel, kernel}, bd[1] = {m};
    int64_t pads[4] = {kernel / 2, kernel / 2, kernel / 2, kernel / 2};
    test_node t;
    node_init(&t, "Conv");
    set_ints(&t, "pads", 4, pads);
    t.node.n_inputs = 3;
    t.node.n_outputs = 1;
    gf_tensor *in[3] = {random_tensor(4, xd), random_tensor(4, wd), random_tensor(1, bd)};
    gf_tensor shape, *y;
    memset(&shape, 0, sizeof shape);
    gf_tensor *outs[1] = {&shape};
    gf_tensor x_shape = *in[0];
    x_shape.data = NULL;
    const gf_tensor *ins[3] = {&x_shape, in[1], in[2]};
    gf_op_ctx ctx = {&t.node, 3, ins, 1, outs, 1};
    double t_plan = now_s();
    if (gf_op_find("", "Conv", 17)->infer(&ctx)) {
        printf("bench: %s\n", gf_last_error());
        return;
    }
    t_plan = now_s() - t_plan;
    gf_tensor_new(&y, GF_FLOAT, shape.rank, shape.dims);
    ins[0] = in[0];
    outs[0] = y;
    ctx.planning = 0;
    double flops = 2.0 * batch * m * hw * hw * c * kernel * kernel;
    for (int mode = 0; mode < 2; mode++) {
        gf_impl impl = mode ? GF_IMPL_REFERENCE : GF_IMPL_AUTO;
        int reps = mode ? 1 : 200;
        double best = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            if (gf_conv_cpu_impl(&ctx, impl)) printf("bench: %s\n", gf_last_error());
            double dt = now_s() - t0;
            if (dt < best) best = dt;
        }
        printf("bench Conv %lldx%lldx%lldx%lld -> %lld, %lldx%lld: %s %.3f ms, %.1f GFLOP/s", (long long)batch,
               (long long)c, (long long)hw, (long long)hw, (long long)m, (long long)kernel, (long long)kernel,
               mode ? "reference" : "fast path", best * 1e3, flops / best * 1e-9);
        printf(mode ? "\n" : " (planning it took %.1f ms)\n", t_plan * 1e3);
    }
    gf_tensor_free(y);
    for (int i = 0; i < 3; i++) gf_tensor_free(in[i]);
}

/* ResNet's stem MaxPool: 3x3, stride 2, pad 1. */
static void bench_maxpool(int64_t batch, int64_t c, int64_t hw)
{
    int64_t xd[4] = {batch, c, hw, hw}, k[2] = {3, 3}, s[2] = {2, 2}, p[4] = {1, 1, 1, 1};
    test_node t;
    node_init(&t, "MaxPool");
    set_ints(&t, "kernel_shape", 2, k);
    set_ints(&t, "strides", 2, s);
    set_ints(&t, "pads", 4, p);
    t.node.n_inputs = t.node.n_outputs = 1;
    gf_tensor *x = random_tensor(4, xd), shape, *y;
    memset(&shape, 0, sizeof shape);
    gf_tensor *outs[1] = {&shape};
    const gf_tensor *ins[1] = {x};
    gf_op_ctx ctx = {&t.node, 1, ins, 1, outs, 1};
    if (gf_op_find("", "MaxPool", 17)->infer(&ctx)) {
        printf("bench: %s\n", gf_last_error());
        return;
    }
    gf_tensor_new(&y, GF_FLOAT, shape.rank, shape.dims);
    outs[0] = y;
    ctx.planning = 0;
    for (int mode = 0; mode < 2; mode++) {
        double best = 1e9;
        for (int r = 0; r < (mode ? 3 : 100); r++) {
            double t0 = now_s();
            if (gf_pool_cpu_impl(&ctx, mode ? GF_IMPL_REFERENCE : GF_IMPL_AUTO)) printf("bench: %s\n", gf_last_error());
            double dt = now_s() - t0;
            if (dt < best) best = dt;
        }
        printf("bench MaxPool %lldx%lldx%lldx%lld 3x3/2: %s %.3f ms\n", (long long)batch, (long long)c, (long long)hw,
               (long long)hw, mode ? "reference" : "fast path", best * 1e3);
    }
    gf_tensor_free(y);
    gf_tensor_free(x);
}

int main(int argc, char **argv)
{
    srand(7);
    outcome conv = {0}, pool = {0};
    for (int i = 0; i < 60; i++) conv_case(&conv, 0, 2);
    for (int i = 0; i < 40; i++) conv_case(&conv, 1, 2);
    for (int i = 0; i < 10; i++) conv_case(&conv, i % 2, 1);
    for (int i = 0; i < 10; i++) conv_case(&conv, i % 2, 3);
    for (int i = 0; i < 60; i++) pool_case(&pool, 2);
    for (int i = 0; i < 10; i++) pool_case(&pool, 1 + 2 * (i % 2));
    printf("conv: %d compared, %d without a fast path, %d failed\n", conv.compared, conv.fast_unsupported, conv.failed);
    printf("pool: %d compared, %d without a fast path, %d failed\n", pool.compared, pool.fast_unsupported, pool.failed);
    /* The fast paths must actually run, not just decline. */
    int failed = conv.failed + pool.failed;
    if (conv.compared < 100 || pool.compared < 50) {
        printf("FAIL the fast paths ran on too few cases\n");
        failed++;
    }
    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench_conv(1, 64, 56, 64, 3);
        bench_conv(8, 64, 56, 64, 3);
        bench_conv(1, 512, 14, 512, 3);
        bench_maxpool(1, 64, 112);
    }
    printf("%s: fast paths of conv and pool\n", failed ? "FAIL" : "PASS");
    return failed != 0;
}
