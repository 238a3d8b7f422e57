/* Every CUDA kernel (src/ops/cuda) against its CPU twin, through the two registries:
 * random shapes and attributes per op (broadcasting, odd sizes, asymmetric pads,
 * groups, ceil_mode, omitted outputs, in-place state), the same inputs to both, the
 * outputs compared (exactly for integers, bools and data movement; within a tolerance
 * for sums that cuDNN and cuBLAS order their own way). One line per case, then a total.
 *
 *   test_cuda_ops [--cpu-only] [--seed N] [--filter OP] [-v]
 *
 * Without a CUDA device it prints "no CUDA device: ..." and exits 77 (skipped).
 * --cpu-only runs just the CPU side of every case, to check the cases themselves on a
 * machine without a GPU. Cases whose attributes the CPU's infer refuses are drawn again,
 * so the generators may propose freely. */
#include "ops/cuda/cuda_ctx.h"
#include "ops/op.h"
#include "runtime/device.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRS 12
#define MAX_IO 12

/* ---- random numbers (xorshift64*, seeded) ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static int rnd(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }
static double rndf(double lo, double hi) { return lo + (hi - lo) * (double)(rng_next() >> 11) * 0x1p-53; }
static int coin(void) { return (int)(rng_next() >> 63); }

/* ---- cases ---- */

typedef struct tcase {
    gf_node node;
    gf_attr attrs[MAX_ATTRS];
    int64_t ints[MAX_ATTRS][16];
    float floats[MAX_ATTRS][16];
    char strs[MAX_ATTRS][40];
    gf_tensor *attr_tensor;     /* owned: Constant's or ConstantOfShape's value */
    char op[40], domain[16], label[480];
    int n_in, n_out;
    gf_tensor *in[MAX_IO];      /* host tensors, owned; NULL: omitted */
    int omit[MAX_IO];           /* output omitted */
    int inplace[MAX_IO];        /* k + 1: on the GPU, output o is written over input k */
    double rtol, atol, arel;    /* |gpu - cpu| <= atol + rtol |cpu| + arel max|cpu| */
    int expect_fail;            /* bad data: both devices must refuse it */
    int direct;                 /* run the GPU side with prefer_direct */
} tcase;

static void case_init(tcase *tc, const char *domain, const char *op, int opset)
{
    memset(tc, 0, sizeof *tc);
    snprintf(tc->op, sizeof tc->op, "%s", op);
    snprintf(tc->domain, sizeof tc->domain, "%s", domain);
    tc->node.name = tc->op;
    tc->node.op_type = tc->op;
    tc->node.domain = tc->domain;
    tc->node.opset = opset;
    tc->node.attrs = tc->attrs;
    tc->n_out = 1;
    tc->rtol = 1e-5;
    tc->atol = 1e-6;
}

static void case_free(tcase *tc)
{
    for (int i = 0; i < tc->n_in; i++) gf_tensor_free(tc->in[i]);
    gf_tensor_free(tc->attr_tensor);
}

/* "Conv-11 <what>  {pads=[1,0,2,1] strides=[2,2] auto_pad=SAME_UPPER}" */
static void label(tcase *tc, const char *fmt, ...)
{
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t at = (size_t)snprintf(tc->label, sizeof tc->label, "%s-%d %s", tc->op, tc->node.opset, buf);
    for (int a = 0; a < tc->node.n_attrs && at < sizeof tc->label; a++) {
        const gf_attr *x = &tc->attrs[a];
        size_t left = sizeof tc->label - at;
        at += (size_t)snprintf(tc->label + at, left, "%s%s=", a ? " " : "  {", x->name);
        if (at >= sizeof tc->label) break;
        left = sizeof tc->label - at;
        switch (x->type) {
        case GF_ATTR_INT: at += (size_t)snprintf(tc->label + at, left, "%lld", (long long)x->i); break;
        case GF_ATTR_FLOAT: at += (size_t)snprintf(tc->label + at, left, "%g", (double)x->f); break;
        case GF_ATTR_STRING: at += (size_t)snprintf(tc->label + at, left, "%s", x->s); break;
        case GF_ATTR_INTS:
            for (int k = 0; k < x->n && at < sizeof tc->label; k++)
                at += (size_t)snprintf(tc->label + at, sizeof tc->label - at, "%s%lld", k ? "," : "[",
                                       (long long)x->ints[k]);
            if (at < sizeof tc->label) at += (size_t)snprintf(tc->label + at, sizeof tc->label - at, "]");
            break;
        default: at += (size_t)snprintf(tc->label + at, left, "(%d)", x->type); break;
        }
    }
    if (tc->node.n_attrs && at < sizeof tc->label) snprintf(tc->label + at, sizeof tc->label - at, "}");
}

static gf_attr *new_attr(tcase *tc, const char *name, gf_attr_type type)
{
    int i = tc->node.n_attrs++;
    gf_attr *a = &tc->attrs[i];
    a->name = (char *)name;
    a->type = type;
    return a;
}

static void attr_int(tcase *tc, const char *name, int64_t v) { new_attr(tc, name, GF_ATTR_INT)->i = v; }
static void attr_float(tcase *tc, const char *name, float v) { new_attr(tc, name, GF_ATTR_FLOAT)->f = v; }

static void attr_ints(tcase *tc, const char *name, int n, const int64_t *v)
{
    int i = tc->node.n_attrs;
    gf_attr *a = new_attr(tc, name, GF_ATTR_INTS);
    memcpy(tc->ints[i], v, (size_t)n * sizeof *v);
    a->ints = tc->ints[i];
    a->n = n;
}

static void attr_floats(tcase *tc, const char *name, int n, const float *v)
{
    int i = tc->node.n_attrs;
    gf_attr *a = new_attr(tc, name, GF_ATTR_FLOATS);
    memcpy(tc->floats[i], v, (size_t)n * sizeof *v);
    a->floats = tc->floats[i];
    a->n = n;
}

static void attr_string(tcase *tc, const char *name, const char *s)
{
    int i = tc->node.n_attrs;
    gf_attr *a = new_attr(tc, name, GF_ATTR_STRING);
    snprintf(tc->strs[i], sizeof tc->strs[i], "%s", s);
    a->s = tc->strs[i];
}

static void attr_tensor(tcase *tc, const char *name, gf_tensor *t)
{
    new_attr(tc, name, GF_ATTR_TENSOR)->t = t;
    tc->attr_tensor = t;
}

/* ---- tensors ---- */

static gf_tensor *tensor(gf_dtype dt, int rank, const int64_t *dims)
{
    gf_tensor *t;
    if (gf_tensor_new(&t, dt, rank, dims)) {
        fprintf(stderr, "tensor: %s\n", gf_last_error());
        exit(2);
    }
    return t;
}

static gf_tensor *t_rand(int rank, const int64_t *dims, double lo, double hi)
{
    gf_tensor *t = tensor(GF_FLOAT, rank, dims);
    float *f = t->data;
    for (int64_t i = 0; i < gf_tensor_numel(t); i++) f[i] = (float)rndf(lo, hi);
    return t;
}

static gf_tensor *t_ints(gf_dtype dt, int n, const int64_t *v)
{
    int64_t d = n;
    gf_tensor *t = tensor(dt, 1, &d);
    for (int i = 0; i < n; i++) gf_int_set(t, i, v[i]);
    return t;
}

static gf_tensor *t_scalar_f(float v)
{
    gf_tensor *t = tensor(GF_FLOAT, 0, NULL);
    *(float *)t->data = v;
    return t;
}

static gf_tensor *t_scalar_i64(int64_t v)
{
    gf_tensor *t = tensor(GF_INT64, 0, NULL);
    *(int64_t *)t->data = v;
    return t;
}

static gf_tensor *t_shape_of(const gf_tensor *x) { return t_ints(GF_INT64, x->rank, x->dims); }

static void add_in(tcase *tc, gf_tensor *t) { tc->in[tc->n_in++] = t; }

static void random_dims(int rank, int lo, int hi, int64_t *dims)
{
    for (int d = 0; d < rank; d++) dims[d] = rnd(lo, hi);
}

static char *dims_text(int rank, const int64_t *dims, char *buf, size_t len)
{
    gf_tensor t;
    memset(&t, 0, sizeof t);
    t.rank = rank;
    memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    return gf_shape_str(&t, buf, len);
}

/* ---- running one case ---- */

static int cpu_only, verbose, force_direct;
static const char *filter;
static gf_cuda_ctx *cu;
static int n_run, n_failed;

/* The CPU infer on the case: 1 with shapes in outs, 0 when the case is not valid. */
static int cpu_infer(tcase *tc, const gf_op *op, gf_tensor *outs, gf_tensor **out_ptrs)
{
    memset(outs, 0, MAX_IO * sizeof *outs);
    for (int o = 0; o < tc->n_out; o++) out_ptrs[o] = tc->omit[o] ? NULL : &outs[o];
    tc->node.n_inputs = tc->n_in;
    tc->node.n_outputs = tc->n_out;
    gf_op_ctx ctx = {&tc->node, tc->n_in, (const gf_tensor **)tc->in, tc->n_out, out_ptrs, 1};
    gf_status st = op->infer(&ctx);
    if (st) {
        if (verbose) printf("     (redrawn: %s: %s)\n", tc->label, gf_last_error());
        return 0;
    }
    for (int o = 0; o < tc->n_out; o++)
        if (out_ptrs[o] && out_ptrs[o]->rank == GF_RANK_DYNAMIC) {
            if (verbose) printf("     (redrawn: %s: dynamic output)\n", tc->label);
            return 0;
        }
    return 1;
}

static int is_float_out(const gf_tensor *t) { return t->dtype == GF_FLOAT; }

/* Compares one output; returns 1 when it agrees. */
static int compare(const tcase *tc, int o, const gf_tensor *ref, const void *got, double *worst, char *why, size_t len)
{
    int64_t n = gf_tensor_numel(ref);
    if (!is_float_out(ref)) {
        if (gf_tensor_nbytes(ref) && memcmp(ref->data, got, gf_tensor_nbytes(ref))) {
            size_t e = gf_dtype_size(ref->dtype);
            for (int64_t i = 0; i < n; i++)
                if (memcmp((const char *)ref->data + i * e, (const char *)got + i * e, e)) {
                    gf_tensor g = *ref;
                    g.data = (void *)got;
                    snprintf(why, len, "output %d element %lld: cpu %g, gpu %g", o, (long long)i, gf_num_at(ref, i),
                             gf_num_at(&g, i));
                    break;
                }
            return 0;
        }
        return 1;
    }
    const float *c = ref->data, *g = got;
    double max_ref = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(c[i]) && fabs(c[i]) > max_ref) max_ref = fabs(c[i]);
    for (int64_t i = 0; i < n; i++) {
        if (isnan(c[i]) && isnan(g[i])) continue;
        if (isinf(c[i]) && c[i] == g[i]) continue;
        double err = fabs((double)g[i] - c[i]), tol = tc->atol + tc->rtol * fabs(c[i]) + tc->arel * max_ref;
        if (isnan(err) || err > tol) {
            snprintf(why, len, "output %d element %lld: cpu %.9g, gpu %.9g (|err| %.3g > tol %.3g)", o, (long long)i,
                     (double)c[i], (double)g[i], err, tol);
            return 0;
        }
        if (err > *worst) *worst = err;
    }
    return 1;
}

/* Runs the case on both devices (or the CPU only); 0 when the CPU's infer refuses it. */
static int attempt(tcase *tc)
{
    if (filter && strcmp(filter, tc->op)) {
        case_free(tc);
        return 1;
    }
    const gf_op *op = gf_op_find(tc->domain, tc->op, tc->node.opset);
    const gf_cuda_op *cop = gf_cuda_op_find(tc->domain, tc->op, tc->node.opset);
    if (!op || !cop) {
        printf("FAIL %s: %s has no %s kernel\n", tc->label, tc->op, op ? "CUDA" : "CPU");
        n_run++, n_failed++;
        case_free(tc);
        return 1;
    }
    gf_tensor outs[MAX_IO], *out_ptrs[MAX_IO];
    if (!cpu_infer(tc, op, outs, out_ptrs)) {
        case_free(tc);
        return 0;
    }
    n_run++;
    for (int o = 0; o < tc->n_out; o++)
        if (out_ptrs[o]) {
            outs[o].data = calloc(gf_tensor_nbytes(&outs[o]) + 1, 1);
            outs[o].owns_data = 1;
        }
    gf_op_ctx cctx = {&tc->node, tc->n_in, (const gf_tensor **)tc->in, tc->n_out, out_ptrs, 0};
    gf_status cst = op->cpu(&cctx);
    char cpu_msg[512];
    snprintf(cpu_msg, sizeof cpu_msg, "%s", cst ? gf_last_error() : "");
    int ok = 1;
    char why[600] = "";
    double worst = 0;
    if (cst && !tc->expect_fail) {
        snprintf(why, sizeof why, "the CPU kernel failed: %s", cpu_msg);
        ok = 0;
    }
    if (!cst && tc->expect_fail) {
        snprintf(why, sizeof why, "the CPU kernel accepted bad data");
        ok = 0;
    }
    if (ok && !cpu_only) {
        gf_op_ctx pctx = cctx;
        pctx.planning = 1;
        gf_status chk = cop->check ? cop->check(&pctx) : GF_OK;
        if (chk) {
            snprintf(why, sizeof why, "the CUDA check refused it: %s", gf_last_error());
            ok = 0;
        }
    }
    if (ok && !cpu_only) {
        gf_cuda_options opt = *gf_cuda_ctx_options(cu);
        opt.prefer_direct = tc->direct;
        gf_cuda_ctx_set_options(cu, &opt);
        gf_tensor gin[MAX_IO], gout[MAX_IO];
        const gf_tensor *gin_p[MAX_IO];
        gf_tensor *gout_p[MAX_IO];
        void *dev_in[MAX_IO] = {0}, *dev_out[MAX_IO] = {0};
        gf_status st = GF_OK;
        for (int i = 0; i < tc->n_in; i++) {
            gin_p[i] = NULL;
            if (!tc->in[i]) continue;
            gin[i] = *tc->in[i];
            gin[i].owns_data = 0;
            gin_p[i] = &gin[i];
            if (gf_cuda_input_on_host(cop, i)) continue;
            size_t bytes = gf_tensor_nbytes(tc->in[i]);
            if (!st) st = gf_cuda_alloc(cu, bytes, &dev_in[i]);
            if (!st) st = gf_cuda_to_device(cu, dev_in[i], tc->in[i]->data, bytes);
            gin[i].data = dev_in[i];
        }
        for (int o = 0; o < tc->n_out; o++) {
            gout_p[o] = NULL;
            if (!out_ptrs[o]) continue;
            gout[o] = outs[o];
            gout[o].owns_data = 0;
            gout_p[o] = &gout[o];
            if (tc->inplace[o]) {
                gout[o].data = dev_in[tc->inplace[o] - 1];
                continue;
            }
            size_t bytes = gf_tensor_nbytes(&outs[o]);
            if (!st) st = gf_cuda_alloc(cu, bytes, &dev_out[o]);
            if (!st) st = gf_cuda_memset(cu, dev_out[o], 0xff, bytes); /* NaN: unwritten elements show */
            gout[o].data = dev_out[o];
        }
        gf_status gst = st;
        if (!st) {
            gf_op_ctx gctx = {&tc->node, tc->n_in, gin_p, tc->n_out, gout_p, 0};
            gst = cop->run(&gctx, cu);
            if (!gst) gst = gf_cuda_after_kernel(cu, &gctx);
            gf_status sync = gf_cuda_sync(cu);
            if (!gst) gst = sync;
        }
        char gpu_msg[512];
        snprintf(gpu_msg, sizeof gpu_msg, "%s", gst ? gf_last_error() : "");
        if (st) {
            snprintf(why, sizeof why, "could not set the GPU side up: %s", gpu_msg);
            ok = 0;
        } else if (tc->expect_fail) {
            if (!gst) {
                snprintf(why, sizeof why, "the CUDA kernel accepted bad data (cpu: %s)", cpu_msg);
                ok = 0;
            } else if (verbose) {
                printf("     cpu: %s\n     gpu: %s\n", cpu_msg, gpu_msg);
            }
        } else if (gst) {
            snprintf(why, sizeof why, "the CUDA kernel failed: %s", gpu_msg);
            ok = 0;
        } else {
            for (int o = 0; o < tc->n_out && ok; o++) {
                if (!out_ptrs[o]) continue;
                size_t bytes = gf_tensor_nbytes(&outs[o]);
                void *host = malloc(bytes + 1);
                gf_status rs = gf_cuda_to_host(cu, host, gout[o].data, bytes);
                if (rs) {
                    snprintf(why, sizeof why, "reading output %d back: %s", o, gf_last_error());
                    ok = 0;
                } else {
                    ok = compare(tc, o, &outs[o], host, &worst, why, sizeof why);
                }
                free(host);
            }
        }
        for (int i = 0; i < MAX_IO; i++) {
            gf_cuda_free(cu, dev_in[i]);
            gf_cuda_free(cu, dev_out[i]);
        }
        gf_cuda_sync(cu);
    }
    if (!ok) n_failed++;
    if (!ok) printf("FAIL %s%s: %s\n", tc->label, tc->direct ? " (direct)" : "", why);
    else if (cpu_only) printf("cpu  %s%s\n", tc->label, tc->expect_fail ? " (refused, as it should)" : "");
    else
        printf("ok   %s%s%s  max|err| %.2g\n", tc->label, tc->direct ? " (direct)" : "",
               tc->expect_fail ? " (refused by both)" : "", worst);
    for (int o = 0; o < tc->n_out; o++)
        if (out_ptrs[o]) free(outs[o].data);
    case_free(tc);
    return 1;
}

/* Draws cases from gen until `count` have run. */
typedef void (*gen_fn)(tcase *tc, int i);

static void run_gen(const char *name, gen_fn gen, int count)
{
    int done = 0, tries = 0;
    while (done < count) {
        tcase tc;
        gen(&tc, done);
        if (attempt(&tc)) done++;
        else if (++tries > 400) {
            printf("FAIL %s: no valid case in 400 draws\n", name);
            n_run++, n_failed++;
            return;
        }
    }
}

/* The same case twice: cuDNN's path, then graft's direct kernel. */
static void run_gen_both(const char *name, gen_fn gen, int count)
{
    uint64_t saved = rng_state;
    run_gen(name, gen, count);
    uint64_t after = rng_state;
    rng_state = saved;
    force_direct = 1;
    run_gen(name, gen, count);
    force_direct = 0;
    rng_state = after;
}

/* ---- shapes of other ops, for the gradients' inputs ---- */

/* The output dims of (domain, op) on these inputs and attributes (tc's node), or 0. */
static int infer_dims(tcase *tc, int o, int *rank, int64_t *dims)
{
    const gf_op *op = gf_op_find(tc->domain, tc->op, tc->node.opset);
    gf_tensor outs[MAX_IO], *ptrs[MAX_IO];
    if (!op || !cpu_infer(tc, op, outs, ptrs) || !ptrs[o]) return 0;
    *rank = outs[o].rank;
    memcpy(dims, outs[o].dims, sizeof outs[o].dims);
    return 1;
}

/* ---- generators: convolutions ---- */

/* Random Conv / ConvTranspose attributes for nsp spatial dims into tc. */
static void conv_attrs(tcase *tc, int nsp, const int64_t *kernel, int transpose, int64_t *strides_out)
{
    int64_t strides[3], dil[3], pads[6];
    for (int d = 0; d < nsp; d++) {
        strides[d] = rnd(1, 3);
        dil[d] = rnd(1, 4) == 4 ? 2 : 1;
        pads[d] = rnd(0, 2);
        pads[nsp + d] = rnd(0, 2);
    }
    int pad_kind = rnd(0, 5);
    if (pad_kind == 0) attr_string(tc, "auto_pad", "SAME_UPPER");
    else if (pad_kind == 1) attr_string(tc, "auto_pad", "SAME_LOWER");
    else if (pad_kind == 2) attr_string(tc, "auto_pad", "VALID");
    else if (pad_kind >= 3) attr_ints(tc, "pads", 2 * nsp, pads);
    if (coin()) attr_ints(tc, "strides", nsp, strides);
    else for (int d = 0; d < nsp; d++) strides[d] = 1;
    if (coin() && !(transpose && pad_kind <= 1)) attr_ints(tc, "dilations", nsp, dil);
    if (coin()) attr_ints(tc, "kernel_shape", nsp, kernel);
    if (strides_out) memcpy(strides_out, strides, sizeof strides);
}

static void gen_conv(tcase *tc, int i)
{
    int transpose = i % 2;
    case_init(tc, "", transpose ? "ConvTranspose" : "Conv", 11);
    int nsp = i % 7 == 3 ? 1 : i % 7 == 5 ? 3 : 2;
    int group = rnd(0, 3) == 0 ? rnd(2, 3) : 1;
    int64_t n = rnd(1, 3), cg = rnd(1, 4), mg = rnd(1, 4), c = cg * group, m = mg * group;
    if (rnd(0, 5) == 0) { /* depthwise */
        group = (int)(c = rnd(2, 6));
        cg = 1;
        m = c * (mg = rnd(1, 2));
    }
    int64_t xd[5] = {n, c}, wd[5], kernel[3];
    for (int d = 0; d < nsp; d++) {
        kernel[d] = rnd(1, nsp == 3 ? 3 : 5);
        xd[2 + d] = rnd(nsp == 3 ? 3 : 4, nsp == 3 ? 7 : 17);
    }
    if (transpose) {
        wd[0] = c;
        wd[1] = mg;
    } else {
        wd[0] = m;
        wd[1] = cg;
    }
    memcpy(wd + 2, kernel, (size_t)nsp * sizeof *kernel);
    add_in(tc, t_rand(nsp + 2, xd, -1, 1));
    add_in(tc, t_rand(nsp + 2, wd, -1, 1));
    int bias = coin();
    if (bias) {
        int64_t b = transpose ? mg * group : m;
        add_in(tc, t_rand(1, &b, -1, 1));
    }
    if (group > 1) attr_int(tc, "group", group);
    int64_t strides[3];
    conv_attrs(tc, nsp, kernel, transpose, strides);
    if (transpose && coin()) {
        int64_t op[3];
        for (int d = 0; d < nsp; d++) op[d] = strides[d] > 1 ? rnd(0, (int)strides[d] - 1) : 0;
        if (coin()) attr_ints(tc, "output_padding", nsp, op);
        else {
            int64_t os[3];
            for (int d = 0; d < nsp; d++) os[d] = strides[d] * (xd[2 + d] - 1) + kernel[d] + rnd(-2, 1);
            attr_ints(tc, "output_shape", nsp, os);
        }
    }
    char xs[80], ws[80];
    label(tc, "X %s W %s%s", dims_text(nsp + 2, xd, xs, sizeof xs), dims_text(nsp + 2, wd, ws, sizeof ws),
          bias ? " bias" : "");
    tc->rtol = 1e-5;
    tc->atol = 1e-5;
    tc->arel = 1e-4;
}

/* FusedConv (the session's Conv + Add + Relu/LeakyRelu): a Conv, an S of its output's
 * shape (sometimes in the output's own storage on the GPU), an activation. */
static void gen_fused_conv(tcase *tc, int i)
{
    gen_conv(tc, 2 * i); /* a Conv */
    int rank;
    int64_t ydims[GF_MAX_RANK];
    if (!infer_dims(tc, 0, &rank, ydims)) return; /* the caller draws again */
    snprintf(tc->op, sizeof tc->op, "FusedConv");
    snprintf(tc->domain, sizeof tc->domain, "ai.graft");
    tc->node.opset = 1;
    int kind = i % 3;
    if (kind) attr_string(tc, "activation", kind == 1 ? "Relu" : "LeakyRelu");
    if (kind == 2 && coin()) attr_float(tc, "alpha", 0.2f);
    if (coin()) {
        while (tc->n_in < 3) add_in(tc, NULL);
        add_in(tc, t_rand(rank, ydims, -1, 1));
        if (coin()) tc->inplace[0] = 4; /* Y written over S */
    }
    char ys[80];
    label(tc, "Y %s%s%s", dims_text(rank, ydims, ys, sizeof ys), tc->n_in > 3 ? " + S" : "",
          tc->inplace[0] ? " (in S's storage)" : "");
}

/* ConvGradInput / ConvGradWeight: a Conv's geometry, dY of its output's shape. */
static void gen_conv_grad(tcase *tc, int i)
{
    tcase fwd;
    gen_conv(&fwd, 2 * (i / 2)); /* a Conv */
    int grad_input = i % 2 == 0;
    case_init(tc, "ai.graft", grad_input ? "ConvGradInput" : "ConvGradWeight", 1);
    tc->node.n_attrs = fwd.node.n_attrs;
    memcpy(tc->attrs, fwd.attrs, sizeof tc->attrs);
    memcpy(tc->ints, fwd.ints, sizeof tc->ints);
    memcpy(tc->strs, fwd.strs, sizeof tc->strs);
    for (int a = 0; a < tc->node.n_attrs; a++) {
        if (tc->attrs[a].type == GF_ATTR_INTS) tc->attrs[a].ints = tc->ints[a];
        if (tc->attrs[a].type == GF_ATTR_STRING) tc->attrs[a].s = tc->strs[a];
    }
    int rank;
    int64_t ydims[GF_MAX_RANK];
    if (fwd.n_in > 2) { /* the gradients take no bias */
        gf_tensor_free(fwd.in[2]);
        fwd.in[2] = NULL;
        fwd.n_in = 2;
    }
    if (!infer_dims(&fwd, 0, &rank, ydims)) {
        tc->n_in = 0; /* invalid: let the caller draw again */
        case_free(&fwd);
        add_in(tc, t_scalar_f(0));
        add_in(tc, t_scalar_f(0));
        add_in(tc, t_scalar_f(0));
        label(tc, "invalid draw");
        return;
    }
    add_in(tc, t_rand(rank, ydims, -1, 1));
    if (grad_input) {
        add_in(tc, fwd.in[1]);
        add_in(tc, t_shape_of(fwd.in[0]));
    } else {
        add_in(tc, fwd.in[0]);
        add_in(tc, t_shape_of(fwd.in[1]));
    }
    char xs[80], ys[80], ws[80];
    label(tc, "dY %s X %s W %s", dims_text(rank, ydims, ys, sizeof ys),
          gf_shape_str(grad_input ? fwd.in[0] : tc->in[1], xs, sizeof xs),
          gf_shape_str(grad_input ? tc->in[1] : fwd.in[1], ws, sizeof ws));
    gf_tensor_free(grad_input ? fwd.in[0] : fwd.in[1]);
    tc->rtol = 1e-5;
    tc->atol = 1e-5;
    tc->arel = 1e-4;
}

/* ---- pooling ---- */

static void gen_pool(tcase *tc, int i)
{
    const char *ops[] = {"MaxPool", "AveragePool"};
    case_init(tc, "", ops[i % 2], 12);
    tc->direct = force_direct;
    int nsp = i % 5 == 4 ? 1 : i % 5 == 3 ? 3 : 2;
    int64_t xd[5] = {rnd(1, 3), rnd(1, 5)}, kernel[3], strides[3], pads[6], dil[3];
    for (int d = 0; d < nsp; d++) {
        xd[2 + d] = rnd(nsp == 3 ? 3 : 4, nsp == 3 ? 8 : 15);
        kernel[d] = rnd(1, 4);
        strides[d] = rnd(1, 3);
        pads[d] = rnd(0, (int)kernel[d] - 1);
        pads[nsp + d] = coin() ? pads[d] : rnd(0, (int)kernel[d] - 1);
        dil[d] = rnd(0, 4) == 0 ? 2 : 1;
    }
    add_in(tc, t_rand(nsp + 2, xd, -2, 2));
    attr_ints(tc, "kernel_shape", nsp, kernel);
    if (coin()) attr_ints(tc, "strides", nsp, strides);
    int pad_kind = rnd(0, 4);
    if (pad_kind == 0) attr_string(tc, "auto_pad", "SAME_UPPER");
    else if (pad_kind >= 2) attr_ints(tc, "pads", 2 * nsp, pads);
    if (coin()) attr_int(tc, "ceil_mode", 1);
    if (i % 2 == 0 && rnd(0, 3) == 0) attr_ints(tc, "dilations", nsp, dil);
    if (i % 2 == 1) attr_int(tc, "count_include_pad", coin());
    if (i % 2 == 0 && rnd(0, 2) == 0) {
        tc->n_out = 2; /* Indices */
        attr_int(tc, "storage_order", coin());
    }
    char xs[80];
    label(tc, "X %s%s", dims_text(nsp + 2, xd, xs, sizeof xs), tc->n_out > 1 ? " + Indices" : "");
}

static void gen_global_pool(tcase *tc, int i)
{
    case_init(tc, "", "GlobalAveragePool", 1);
    int rank = 3 + i % 3;
    int64_t xd[5];
    random_dims(rank, 1, 9, xd);
    add_in(tc, t_rand(rank, xd, -2, 2));
    char xs[80];
    label(tc, "X %s", dims_text(rank, xd, xs, sizeof xs));
}

static void gen_pool_grad(tcase *tc, int i)
{
    tcase fwd;
    gen_pool(&fwd, i);
    fwd.n_out = 1;
    int max = i % 2 == 0;
    case_init(tc, "ai.graft", max ? "MaxPoolGrad" : "AveragePoolGrad", 1);
    tc->node.n_attrs = 0;
    for (int a = 0; a < fwd.node.n_attrs; a++) {
        const gf_attr *src = &fwd.attrs[a];
        if (!strcmp(src->name, "storage_order")) continue;
        if (src->type == GF_ATTR_INTS) attr_ints(tc, src->name, src->n, src->ints);
        else if (src->type == GF_ATTR_STRING) attr_string(tc, src->name, src->s);
        else attr_int(tc, src->name, src->i);
    }
    int rank;
    int64_t ydims[GF_MAX_RANK];
    if (!infer_dims(&fwd, 0, &rank, ydims)) {
        case_free(&fwd);
        add_in(tc, t_scalar_f(0));
        add_in(tc, t_scalar_f(0));
        label(tc, "invalid draw");
        return;
    }
    gf_tensor *dy = t_rand(rank, ydims, -1, 1);
    add_in(tc, dy);
    if (max) add_in(tc, fwd.in[0]);
    else {
        add_in(tc, t_shape_of(fwd.in[0]));
        gf_tensor_free(fwd.in[0]);
    }
    char ys[80];
    label(tc, "dY %s", dims_text(rank, ydims, ys, sizeof ys));
}

static void gen_global_pool_grad(tcase *tc, int i)
{
    case_init(tc, "ai.graft", "GlobalAveragePoolGrad", 1);
    int rank = 3 + i % 3;
    int64_t xd[5], yd[5];
    random_dims(rank, 1, 9, xd);
    for (int d = 0; d < rank; d++) yd[d] = d < 2 ? xd[d] : 1;
    add_in(tc, t_rand(rank, yd, -1, 1));
    add_in(tc, t_ints(GF_INT64, rank, xd));
    char xs[80];
    label(tc, "x_shape %s", dims_text(rank, xd, xs, sizeof xs));
}

/* ---- batch norm ---- */

static void gen_bn(tcase *tc, int i)
{
    int training = i % 3 == 2, spatial0 = i % 5 == 4 && !training;
    case_init(tc, "", "BatchNormalization", spatial0 ? 7 : 15);
    tc->direct = force_direct;
    int rank = 2 + i % 4;
    int64_t xd[5];
    random_dims(rank, 1, 7, xd);
    if (training && xd[0] * (rank > 2 ? xd[2] : 1) < 2) xd[0] = 2;
    add_in(tc, t_rand(rank, xd, -3, 5));
    int64_t c = xd[1];
    if (spatial0) {
        attr_int(tc, "spatial", 0);
        for (int d = 2; d < rank; d++) c *= xd[d];
    }
    add_in(tc, t_rand(1, &c, 0.5, 2));
    add_in(tc, t_rand(1, &c, -1, 1));
    add_in(tc, t_rand(1, &c, -1, 1));
    add_in(tc, t_rand(1, &c, 0.1, 2));
    if (coin()) attr_float(tc, "epsilon", (float)rndf(1e-5, 1e-2));
    if (training) {
        attr_int(tc, "training_mode", 1);
        attr_float(tc, "momentum", (float)rndf(0.5, 0.99));
        tc->n_out = 3;
        if (coin()) {
            tc->inplace[1] = 4; /* running statistics updated in place */
            tc->inplace[2] = 5;
        }
    }
    char xs[80];
    label(tc, "X %s%s%s", dims_text(rank, xd, xs, sizeof xs), training ? " training" : "", spatial0 ? " spatial=0" : "");
    tc->rtol = 1e-5;
    tc->atol = 1e-5;
}

static void gen_bn_train(tcase *tc, int i)
{
    case_init(tc, "ai.graft", "BatchNormTrain", 1);
    int rank = 2 + i % 4;
    int64_t xd[5];
    random_dims(rank, 1, 8, xd);
    if (xd[0] < 2) xd[0] = 2;
    add_in(tc, t_rand(rank, xd, 10, 14)); /* far from 0: the shift matters */
    int64_t c = xd[1];
    add_in(tc, t_rand(1, &c, 0.5, 2));
    add_in(tc, t_rand(1, &c, -1, 1));
    add_in(tc, t_rand(1, &c, -1, 1));
    add_in(tc, t_rand(1, &c, 0.1, 2));
    attr_float(tc, "momentum", 0.9f);
    tc->n_out = 5;
    if (i % 4 == 1) tc->omit[0] = 1;
    if (i % 4 == 2) tc->omit[1] = tc->omit[2] = 1;
    if (i % 4 == 3) {
        tc->inplace[3] = 4;
        tc->inplace[4] = 5;
    }
    char xs[80];
    label(tc, "X %s%s", dims_text(rank, xd, xs, sizeof xs),
          i % 4 == 1 ? " Y omitted" : i % 4 == 2 ? " saved omitted" : i % 4 == 3 ? " running in place" : "");
    tc->atol = 1e-5;
}

static void gen_bn_grad(tcase *tc, int i)
{
    case_init(tc, "ai.graft", "BatchNormGrad", 1);
    int rank = 2 + i % 4;
    int64_t xd[5];
    random_dims(rank, 1, 8, xd);
    int64_t c = xd[1];
    add_in(tc, t_rand(rank, xd, -1, 1));
    add_in(tc, t_rand(rank, xd, -2, 3));
    add_in(tc, t_rand(1, &c, 0.5, 2));
    add_in(tc, t_rand(1, &c, -0.5, 0.5));
    add_in(tc, t_rand(1, &c, 0.5, 2));
    tc->n_out = 3;
    if (i % 3 == 1) tc->omit[0] = 1;
    if (i % 3 == 2) tc->omit[1] = 1;
    char xs[80];
    label(tc, "X %s", dims_text(rank, xd, xs, sizeof xs));
    tc->atol = 1e-5;
    tc->rtol = 1e-4;
}

/* ---- Gemm, MatMul ---- */

static void gen_gemm(tcase *tc, int i)
{
    case_init(tc, "", "Gemm", 13);
    int64_t m = rnd(1, 40), k = rnd(1, 70), n = rnd(1, 40);
    int ta = coin(), tb = coin();
    int64_t ad[2] = {ta ? k : m, ta ? m : k}, bd[2] = {tb ? n : k, tb ? k : n};
    add_in(tc, t_rand(2, ad, -1, 1));
    add_in(tc, t_rand(2, bd, -1, 1));
    int c_kind = i % 6;
    int64_t cd[2];
    int c_rank = 0;
    if (c_kind == 1) c_rank = 1, cd[0] = n;
    else if (c_kind == 2) c_rank = 2, cd[0] = 1, cd[1] = n;
    else if (c_kind == 3) c_rank = 2, cd[0] = m, cd[1] = 1;
    else if (c_kind == 4) c_rank = 2, cd[0] = m, cd[1] = n;
    else if (c_kind == 5) c_rank = 0;
    if (c_kind) add_in(tc, t_rand(c_rank, cd, -1, 1));
    if (ta) attr_int(tc, "transA", 1);
    if (tb) attr_int(tc, "transB", 1);
    if (coin()) attr_float(tc, "alpha", (float)rndf(-2, 2));
    if (coin()) attr_float(tc, "beta", i % 4 == 0 ? 0.0f : (float)rndf(-2, 2));
    label(tc, "m %lld k %lld n %lld%s%s C kind %d", (long long)m, (long long)k, (long long)n, ta ? " A'" : "",
          tb ? " B'" : "", c_kind);
    tc->atol = 1e-5;
    tc->arel = 1e-5;
}

static void gen_matmul(tcase *tc, int i)
{
    case_init(tc, "", "MatMul", 13);
    int ra = rnd(1, 4), rb = rnd(1, 4);
    int64_t m = rnd(1, 20), k = rnd(1, 40), n = rnd(1, 20);
    int64_t ad[4], bd[4];
    int64_t bdims[2] = {rnd(1, 3), rnd(1, 4)}; /* the broadcast batch dims, right-aligned */
    for (int d = 0; d < ra - 2; d++) ad[d] = coin() ? 1 : bdims[2 - (ra - 2) + d];
    for (int d = 0; d < rb - 2; d++) bd[d] = coin() ? 1 : bdims[2 - (rb - 2) + d];
    if (ra >= 2) {
        ad[ra - 2] = m;
        ad[ra - 1] = k;
    } else {
        ad[0] = k;
    }
    if (rb >= 2) {
        bd[rb - 2] = k;
        bd[rb - 1] = n;
    } else {
        bd[0] = k;
    }
    add_in(tc, t_rand(ra, ad, -1, 1));
    add_in(tc, t_rand(rb, bd, -1, 1));
    char as[80], bs[80];
    label(tc, "A %s B %s", dims_text(ra, ad, as, sizeof as), dims_text(rb, bd, bs, sizeof bs));
    tc->atol = 1e-5;
    tc->arel = 1e-5;
    (void)i;
}

/* ---- element-wise ---- */

/* Two shapes that broadcast: y's dims, each operand a suffix with some dims 1. */
static void broadcast_pair(int *ra, int64_t *a, int *rb, int64_t *b)
{
    int r = rnd(0, 5);
    int64_t y[5];
    random_dims(r, 1, 7, y);
    *ra = rnd(0, r);
    *rb = r == 0 ? 0 : rnd(0, r);
    if (coin()) *ra = r;
    else *rb = r;
    for (int d = 0; d < *ra; d++) a[d] = rnd(0, 2) == 0 ? 1 : y[r - *ra + d];
    for (int d = 0; d < *rb; d++) b[d] = rnd(0, 2) == 0 ? 1 : y[r - *rb + d];
}

static gf_tensor *t_rand_typed(gf_dtype dt, int rank, const int64_t *dims, double lo, double hi)
{
    gf_tensor *t = tensor(dt, rank, dims);
    for (int64_t i = 0; i < gf_tensor_numel(t); i++) {
        if (dt == GF_FLOAT) ((float *)t->data)[i] = (float)rndf(lo, hi);
        else gf_int_set(t, i, (int64_t)floor(rndf(lo, hi)));
    }
    return t;
}

static void gen_binary(tcase *tc, int i)
{
    const char *ops[] = {"Add", "Sub", "Mul", "Div"};
    case_init(tc, "", ops[i % 4], 14);
    gf_dtype dt = i % 9 == 7 ? GF_INT32 : i % 9 == 8 ? GF_INT64 : GF_FLOAT;
    int ra, rb;
    int64_t a[5], b[5];
    broadcast_pair(&ra, a, &rb, b);
    double lo = dt == GF_FLOAT ? -4 : -20, hi = dt == GF_FLOAT ? 4 : 20;
    add_in(tc, t_rand_typed(dt, ra, a, lo, hi));
    add_in(tc, t_rand_typed(dt, rb, b, lo, hi)); /* integer divisors include 0 */
    char as[80], bs[80];
    label(tc, "%s %s %s", gf_dtype_name(dt), dims_text(ra, a, as, sizeof as), dims_text(rb, b, bs, sizeof bs));
}

static void gen_unary(tcase *tc, int i)
{
    const char *ops[] = {"Relu", "LeakyRelu", "Sigmoid", "Exp"};
    case_init(tc, "", ops[i % 4], 13);
    int rank = rnd(0, 4);
    int64_t d[4];
    random_dims(rank, 1, 33, d);
    gf_tensor *x = t_rand(rank, d, -30, 30);
    if (gf_tensor_numel(x) > 3) { /* the special values */
        float *f = x->data;
        f[0] = -0.0f;
        f[1] = INFINITY;
        f[2] = -INFINITY;
        if (gf_tensor_numel(x) > 4) f[3] = 100.0f;
        if (gf_tensor_numel(x) > 5) f[4] = -120.0f;
        if (gf_tensor_numel(x) > 6) f[5] = NAN;
    }
    add_in(tc, x);
    if (i % 4 == 1 && coin()) attr_float(tc, "alpha", (float)rndf(0, 0.5));
    char xs[80];
    label(tc, "X %s", dims_text(rank, d, xs, sizeof xs));
    tc->rtol = 0; /* the same operations: the same bits */
    tc->atol = 0;
}

static void gen_cast(tcase *tc, int i)
{
    static const gf_dtype types[] = {GF_FLOAT, GF_DOUBLE, GF_INT8, GF_UINT8, GF_INT16, GF_UINT16,
                                     GF_INT32, GF_UINT32, GF_INT64, GF_UINT64, GF_BOOL};
    case_init(tc, "", "Cast", 13);
    gf_dtype from = types[rnd(0, 10)], to = types[rnd(0, 10)];
    int64_t n = rnd(1, 300);
    gf_tensor *x = tensor(from, 1, &n);
    for (int64_t k = 0; k < n; k++) {
        double v = rnd(0, 3) == 0 ? rndf(-1e10, 1e10) : rndf(-300, 300);
        if (from == GF_FLOAT) ((float *)x->data)[k] = k == 0 ? NAN : (float)v;
        else if (from == GF_DOUBLE) ((double *)x->data)[k] = k == 0 ? INFINITY : v;
        else gf_int_set(x, k, (int64_t)v);
    }
    add_in(tc, x);
    attr_int(tc, "to", to);
    label(tc, "%s -> %s [%lld]", gf_dtype_name(from), gf_dtype_name(to), (long long)n);
    (void)i;
}

/* ---- shapes and data movement ---- */

static void gen_movement(tcase *tc, int i)
{
    int kind = i % 9;
    int rank = rnd(1, 5);
    int64_t d[5];
    random_dims(rank, 1, 6, d);
    char xs[80];
    dims_text(rank, d, xs, sizeof xs);
    switch (kind) {
    case 0:
        case_init(tc, "", "Flatten", 13);
        add_in(tc, t_rand(rank, d, -1, 1));
        attr_int(tc, "axis", rnd(-rank, rank));
        label(tc, "X %s", xs);
        break;
    case 1: {
        case_init(tc, "", "Reshape", 14);
        add_in(tc, t_rand(rank, d, -1, 1));
        int64_t flat[1] = {-1}, keep_first[2] = {0, -1}, split[3] = {d[0], -1, 1};
        int pick = rnd(0, 2);
        add_in(tc, pick == 0 ? t_ints(GF_INT64, 1, flat) : pick == 1 ? t_ints(GF_INT64, 2, keep_first)
                                                                     : t_ints(GF_INT64, 3, split));
        label(tc, "X %s", xs);
        break;
    }
    case 2:
        case_init(tc, "", "Transpose", 13);
        add_in(tc, t_rand(rank, d, -1, 1));
        if (coin()) {
            int64_t perm[5];
            for (int k = 0; k < rank; k++) perm[k] = k;
            for (int k = rank - 1; k > 0; k--) {
                int j = rnd(0, k);
                int64_t t = perm[k];
                perm[k] = perm[j];
                perm[j] = t;
            }
            attr_ints(tc, "perm", rank, perm);
        }
        label(tc, "X %s", xs);
        break;
    case 3: {
        case_init(tc, "", "Unsqueeze", 13);
        add_in(tc, t_rand(rank, d, -1, 1));
        int64_t axes[2] = {0, -1};
        add_in(tc, t_ints(GF_INT64, coin() ? 1 : 2, axes));
        label(tc, "X %s", xs);
        break;
    }
    case 4: {
        case_init(tc, "", "Squeeze", 13);
        d[0] = 1;
        add_in(tc, t_rand(rank, d, -1, 1));
        int64_t axes[1] = {0};
        if (coin()) add_in(tc, t_ints(GF_INT64, 1, axes));
        label(tc, "X %s", dims_text(rank, d, xs, sizeof xs));
        break;
    }
    case 5:
        case_init(tc, "", "Identity", 16);
        add_in(tc, t_rand(rank, d, -1, 1));
        label(tc, "X %s", xs);
        break;
    case 6:
        case_init(tc, "", "Shape", 15);
        add_in(tc, t_rand(rank, d, -1, 1));
        if (coin()) attr_int(tc, "start", rnd(-rank, rank));
        if (coin()) attr_int(tc, "end", rnd(-rank, rank));
        label(tc, "X %s", xs);
        break;
    case 7: {
        case_init(tc, "", "Dropout", 13);
        add_in(tc, t_rand(rank, d, -1, 1));
        tc->n_out = 2;
        label(tc, "X %s + mask", xs);
        break;
    }
    default: {
        case_init(tc, "", "ConstantOfShape", 20);
        add_in(tc, t_ints(GF_INT64, rank, d));
        if (coin()) {
            int64_t one = 1;
            gf_tensor *v = tensor(coin() ? GF_INT64 : GF_FLOAT, 1, &one);
            gf_num_set(v, 0, 7.25);
            attr_tensor(tc, "value", v);
        }
        label(tc, "shape %s", xs);
        break;
    }
    }
    tc->rtol = tc->atol = 0;
}

static void gen_constant(tcase *tc, int i)
{
    case_init(tc, "", "Constant", 13);
    if (i % 2) {
        float v[5] = {1.5f, -2, 3, 4, 5};
        attr_floats(tc, "value_floats", rnd(1, 5), v);
        label(tc, "value_floats");
    } else {
        int64_t d[3];
        random_dims(3, 1, 5, d);
        attr_tensor(tc, "value", t_rand(3, d, -1, 1));
        label(tc, "value tensor");
    }
    tc->rtol = tc->atol = 0;
}

static void gen_concat(tcase *tc, int i)
{
    case_init(tc, "", "Concat", 13);
    int rank = rnd(1, 4), axis = rnd(0, rank - 1), n = rnd(1, 4);
    int64_t d[4];
    random_dims(rank, 1, 6, d);
    for (int k = 0; k < n; k++) {
        d[axis] = rnd(0, 5);
        add_in(tc, t_rand(rank, d, -1, 1));
    }
    attr_int(tc, "axis", coin() ? axis : axis - rank);
    label(tc, "%d inputs of rank %d on axis %d", n, rank, axis);
    tc->rtol = tc->atol = 0;
    (void)i;
}

static void gen_split(tcase *tc, int i)
{
    int opset = i % 3 == 2 ? 18 : 13;
    case_init(tc, "", "Split", opset);
    int rank = rnd(1, 4), axis = rnd(0, rank - 1), n = rnd(1, 4);
    int64_t d[4];
    random_dims(rank, 1, 6, d);
    d[axis] = rnd(n, 12);
    add_in(tc, t_rand(rank, d, -1, 1));
    attr_int(tc, "axis", axis);
    tc->n_out = n;
    if (i % 3 == 0) {
        int64_t sizes[4], left = d[axis];
        for (int k = 0; k < n - 1; k++) {
            sizes[k] = rnd(0, (int)left);
            left -= sizes[k];
        }
        sizes[n - 1] = left;
        add_in(tc, t_ints(GF_INT64, n, sizes));
    } else if (opset == 18) {
        attr_int(tc, "num_outputs", n);
    } else {
        d[axis] = n * rnd(1, 3);
        gf_tensor_free(tc->in[0]);
        tc->in[0] = t_rand(rank, d, -1, 1);
    }
    if (n > 1 && coin()) tc->omit[rnd(0, n - 1)] = 1;
    char xs[80];
    label(tc, "X %s into %d on axis %d", dims_text(rank, d, xs, sizeof xs), n, axis);
    tc->rtol = tc->atol = 0;
}

static void gen_slice(tcase *tc, int i)
{
    case_init(tc, "", "Slice", 13);
    int rank = rnd(1, 4), n = rnd(1, rank);
    int64_t d[4], starts[4], ends[4], axes[4], steps[4];
    random_dims(rank, 1, 9, d);
    int used[4] = {0};
    for (int k = 0; k < n; k++) {
        int a;
        do a = rnd(0, rank - 1);
        while (used[a]);
        used[a] = 1;
        axes[k] = coin() ? a : a - rank;
        steps[k] = rnd(0, 3) == 0 ? -rnd(1, 3) : rnd(1, 3);
        starts[k] = rnd(-12, 12);
        ends[k] = rnd(0, 5) == 0 ? (steps[k] > 0 ? INT64_MAX : INT64_MIN) : rnd(-12, 12);
    }
    add_in(tc, t_rand(rank, d, -1, 1));
    add_in(tc, t_ints(GF_INT64, n, starts));
    add_in(tc, t_ints(GF_INT64, n, ends));
    add_in(tc, t_ints(GF_INT64, n, axes));
    add_in(tc, t_ints(GF_INT64, n, steps));
    char xs[80];
    label(tc, "X %s, %d axes", dims_text(rank, d, xs, sizeof xs), n);
    tc->rtol = tc->atol = 0;
    (void)i;
}

static void gen_gather(tcase *tc, int i)
{
    case_init(tc, "", "Gather", 13);
    int rank = rnd(1, 4), axis = rnd(0, rank - 1), ri = rnd(0, 2);
    int64_t d[4], id[2];
    random_dims(rank, 1, 7, d);
    random_dims(ri, 1, 5, id);
    add_in(tc, t_rand(rank, d, -1, 1));
    gf_tensor *idx = tensor(i % 2 ? GF_INT32 : GF_INT64, ri, id);
    for (int64_t k = 0; k < gf_tensor_numel(idx); k++) gf_int_set(idx, k, rnd((int)-d[axis], (int)d[axis] - 1));
    int bad = i % 7 == 6 && gf_tensor_numel(idx) > 0;
    if (bad) {
        gf_int_set(idx, gf_tensor_numel(idx) - 1, d[axis] + 2);
        tc->expect_fail = 1;
    }
    add_in(tc, idx);
    attr_int(tc, "axis", axis);
    char xs[80];
    label(tc, "X %s axis %d, %lld %s indices%s", dims_text(rank, d, xs, sizeof xs), axis,
          (long long)gf_tensor_numel(idx), gf_dtype_name(idx->dtype), bad ? ", one out of range" : "");
    tc->rtol = tc->atol = 0;
}

static void gen_pad(tcase *tc, int i)
{
    static const char *modes[] = {"constant", "reflect", "edge", "wrap"};
    case_init(tc, "", "Pad", 19);
    int rank = rnd(1, 4);
    int64_t d[4], pads[8];
    random_dims(rank, 1, 7, d);
    const char *mode = modes[i % 4];
    for (int k = 0; k < 2 * rank; k++) {
        int64_t dim = d[k % rank];
        pads[k] = rnd(0, 3) == 0 ? -rnd(0, (int)dim - 1) : rnd(0, i % 4 == 1 ? (int)dim - 1 : 3);
    }
    add_in(tc, t_rand(rank, d, -1, 1));
    add_in(tc, t_ints(GF_INT64, 2 * rank, pads));
    if (i % 4 == 0) add_in(tc, t_scalar_f(2.5f));
    attr_string(tc, "mode", mode);
    char xs[80];
    label(tc, "X %s %s", dims_text(rank, d, xs, sizeof xs), mode);
    tc->rtol = tc->atol = 0;
}

static void gen_resize(tcase *tc, int i)
{
    static const char *coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                   "tf_half_pixel_for_nearest", "tf_crop_and_resize"};
    static const char *nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    int upsample = i % 6 == 5;
    case_init(tc, "", upsample ? "Upsample" : "Resize", upsample ? 9 : 13);
    int rank = rnd(3, 4);
    int64_t d[4];
    random_dims(rank, 1, 9, d);
    add_in(tc, t_rand(rank, d, -1, 1));
    int linear = i % 3 == 1 || (i % 3 == 2 && !upsample);
    int cubic = !upsample && i % 7 == 3;
    attr_string(tc, "mode", cubic ? "cubic" : linear ? "linear" : "nearest");
    float scales[4];
    for (int k = 0; k < rank; k++) scales[k] = k < rank - 2 ? 1.0f : (float)(rnd(1, 8) * 0.5);
    int64_t one = rank;
    if (upsample) {
        gf_tensor *s = tensor(GF_FLOAT, 1, &one);
        memcpy(s->data, scales, (size_t)rank * sizeof(float));
        add_in(tc, s);
        label(tc, "X [rank %d] %s", rank, linear ? "linear" : "nearest");
        return;
    }
    const char *coord = coords[rnd(0, 5)];
    attr_string(tc, "coordinate_transformation_mode", coord);
    if (!linear && !cubic) attr_string(tc, "nearest_mode", nearest[rnd(0, 3)]);
    if (!strcmp(coord, "tf_crop_and_resize")) attr_float(tc, "extrapolation_value", -3.5f);
    if (cubic && coin()) attr_int(tc, "exclude_outside", 1);
    int64_t two = 2 * rank;
    gf_tensor *roi = tensor(GF_FLOAT, 1, &two);
    for (int k = 0; k < rank; k++) {
        ((float *)roi->data)[k] = k < rank - 2 ? 0.0f : (float)rndf(-0.2, 0.4);
        ((float *)roi->data)[rank + k] = k < rank - 2 ? 1.0f : (float)rndf(0.6, 1.2);
    }
    add_in(tc, roi);
    if (coin()) {
        gf_tensor *s = tensor(GF_FLOAT, 1, &one);
        memcpy(s->data, scales, (size_t)rank * sizeof(float));
        add_in(tc, s);
    } else {
        int64_t sizes[4];
        for (int k = 0; k < rank; k++) sizes[k] = k < rank - 2 ? d[k] : rnd(1, 20);
        add_in(tc, NULL);
        add_in(tc, t_ints(GF_INT64, rank, sizes));
    }
    char xs[80];
    label(tc, "X %s %s %s", dims_text(rank, d, xs, sizeof xs), cubic ? "cubic" : linear ? "linear" : "nearest", coord);
    tc->atol = 1e-6;
    tc->rtol = 1e-6;
}

/* ---- softmax, reductions ---- */

static void gen_softmax(tcase *tc, int i)
{
    int opset = i % 3 == 0 ? 11 : 13;
    case_init(tc, "", i % 2 ? "LogSoftmax" : "Softmax", opset);
    int rank = rnd(1, 4);
    int64_t d[4];
    random_dims(rank, 1, i % 4 == 3 ? 300 : 9, d);
    add_in(tc, t_rand(rank, d, -8, 8));
    attr_int(tc, "axis", rnd(-rank, rank - 1));
    char xs[80];
    label(tc, "X %s", dims_text(rank, d, xs, sizeof xs));
}

static void gen_reduce(tcase *tc, int i)
{
    int sum = i % 2 == 0, input_axes = i % 4 < 2;
    case_init(tc, "", sum ? "ReduceSum" : "ReduceMean", input_axes ? 18 : 13);
    if (sum && !input_axes) tc->node.opset = 11;
    int rank = rnd(1, 5);
    int64_t d[5], axes[5];
    random_dims(rank, 1, 9, d);
    if (i % 5 == 4) d[rnd(0, rank - 1)] = rnd(100, 600);
    add_in(tc, t_rand(rank, d, -1, 1));
    int n = rnd(0, rank), used[5] = {0};
    for (int k = 0; k < n; k++) {
        int a;
        do a = rnd(0, rank - 1);
        while (used[a]);
        used[a] = 1;
        axes[k] = coin() ? a : a - rank;
    }
    if (input_axes) {
        if (n || coin()) add_in(tc, t_ints(GF_INT64, n, axes));
        if (!n && coin()) attr_int(tc, "noop_with_empty_axes", 1);
    } else if (n) {
        attr_ints(tc, "axes", n, axes);
    }
    attr_int(tc, "keepdims", coin());
    char xs[80];
    label(tc, "X %s, %d axes", dims_text(rank, d, xs, sizeof xs), n);
    tc->rtol = 1e-5;
    tc->atol = 1e-6;
}

/* ---- activation gradients, dropout ---- */

static void gen_act_grad(tcase *tc, int i)
{
    static const char *ops[] = {"ReluGrad", "LeakyReluGrad", "SigmoidGrad", "SoftmaxGrad", "LogSoftmaxGrad"};
    int kind = i % 5;
    case_init(tc, "ai.graft", ops[kind], 1);
    int rank = rnd(1, 4);
    int64_t d[4];
    random_dims(rank, 1, 9, d);
    add_in(tc, t_rand(rank, d, -1, 1));
    gf_tensor *y = t_rand(rank, d, kind == 2 ? 0 : -1, 1);
    if (kind == 4)
        for (int64_t k = 0; k < gf_tensor_numel(y); k++) ((float *)y->data)[k] = (float)rndf(-6, 0);
    add_in(tc, y);
    if (kind == 1 && coin()) attr_float(tc, "alpha", 0.2f);
    if (kind >= 3) {
        if (coin()) attr_int(tc, "legacy", 1);
        attr_int(tc, "axis", rnd(0, rank - 1));
    }
    char xs[80];
    label(tc, "%s", dims_text(rank, d, xs, sizeof xs));
    tc->rtol = kind >= 3 ? 1e-5 : 0;
    tc->atol = kind >= 3 ? 1e-6 : 0;
}

static void gen_dropout(tcase *tc, int i)
{
    int grad = i % 2;
    case_init(tc, "ai.graft", grad ? "DropoutGrad" : "DropoutTrain", 1);
    int rank = rnd(1, 4);
    int64_t d[4];
    random_dims(rank, 1, 20, d);
    add_in(tc, t_rand(rank, d, -1, 1));
    float ratio = (float)rndf(0, 0.9);
    attr_float(tc, "ratio", ratio);
    if (grad) {
        gf_tensor *mask = tensor(GF_BOOL, rank, d);
        for (int64_t k = 0; k < gf_tensor_numel(mask); k++) ((uint8_t *)mask->data)[k] = (uint8_t)coin();
        add_in(tc, mask);
    } else {
        attr_int(tc, "seed", rnd(0, 1000));
        add_in(tc, t_scalar_i64(rnd(1, 100)));
        tc->n_out = 2;
        if (i % 4 == 2) tc->omit[1] = 1;
    }
    char xs[80];
    label(tc, "%s ratio %.2f", dims_text(rank, d, xs, sizeof xs), ratio);
    tc->rtol = tc->atol = 0;
}

/* ---- movement gradients ---- */

static void gen_reduce_sum_to(tcase *tc, int i)
{
    case_init(tc, "ai.graft", "ReduceSumTo", 1);
    int rank = rnd(1, 5), ry = rnd(0, rank);
    int64_t d[5], y[5];
    random_dims(rank, 1, 7, d);
    if (i % 4 == 3) d[0] = rnd(200, 900);
    for (int k = 0; k < ry; k++) y[k] = coin() ? 1 : d[rank - ry + k];
    add_in(tc, t_rand(rank, d, -1, 1));
    add_in(tc, t_ints(GF_INT64, ry, y));
    char xs[80], ys[80];
    label(tc, "X %s to %s", dims_text(rank, d, xs, sizeof xs), dims_text(ry, y, ys, sizeof ys));
    tc->rtol = 1e-5;
    tc->atol = 1e-6;
}

/* A group of one (no gf_data_parallel): the mean over the group is the input itself;
 * in place too, as the planner may give it. */
static void gen_all_reduce(tcase *tc, int i)
{
    case_init(tc, "ai.graft", "AllReduceMean", 1);
    int n = rnd(1, 4);
    for (int k = 0; k < n; k++) {
        int64_t d[4];
        int rank = rnd(1, 4);
        random_dims(rank, 1, 7, d);
        add_in(tc, t_rand(rank, d, -3, 3));
        if (i % 2) tc->inplace[k] = k + 1;
    }
    tc->n_out = n;
    label(tc, "%d tensors%s", n, i % 2 ? ", in place" : "");
    tc->rtol = tc->atol = 0;
}

static void gen_concat_grad(tcase *tc, int i)
{
    case_init(tc, "ai.graft", "ConcatGrad", 1);
    int rank = rnd(1, 4), axis = rnd(0, rank - 1), n = rnd(1, 4);
    int64_t d[4], parts[4], total = 0;
    random_dims(rank, 1, 6, d);
    for (int k = 0; k < n; k++) total += parts[k] = rnd(0, 4);
    d[axis] = total;
    add_in(tc, t_rand(rank, d, -1, 1));
    for (int k = 0; k < n; k++) {
        int64_t s[4];
        memcpy(s, d, sizeof s);
        s[axis] = parts[k];
        add_in(tc, t_ints(GF_INT64, rank, s));
    }
    attr_int(tc, "axis", axis);
    tc->n_out = n;
    if (n > 1 && coin()) tc->omit[rnd(0, n - 1)] = 1;
    label(tc, "%d parts of rank %d on axis %d", n, rank, axis);
    tc->rtol = tc->atol = 0;
    (void)i;
}

static void gen_slice_grad(tcase *tc, int i)
{
    tcase fwd;
    gen_slice(&fwd, i);
    int rank;
    int64_t yd[GF_MAX_RANK];
    case_init(tc, "ai.graft", "SliceGrad", 1);
    if (!infer_dims(&fwd, 0, &rank, yd)) {
        case_free(&fwd);
        for (int k = 0; k < 4; k++) add_in(tc, t_scalar_f(0));
        label(tc, "invalid draw");
        return;
    }
    add_in(tc, t_rand(rank, yd, -1, 1));
    add_in(tc, t_shape_of(fwd.in[0]));
    gf_tensor_free(fwd.in[0]);
    for (int k = 1; k < 5; k++) add_in(tc, fwd.in[k]);
    char ys[80];
    label(tc, "dY %s", dims_text(rank, yd, ys, sizeof ys));
    tc->rtol = tc->atol = 0;
}

static void gen_resize_grad(tcase *tc, int i)
{
    tcase fwd;
    do {
        gen_resize(&fwd, i);
        if (strcmp(fwd.op, "Resize") || !strcmp(fwd.attrs[0].s, "cubic")) {
            case_free(&fwd);
            i++;
            continue;
        }
        break;
    } while (1);
    int rank;
    int64_t yd[GF_MAX_RANK];
    case_init(tc, "ai.graft", "ResizeGrad", 1);
    if (!infer_dims(&fwd, 0, &rank, yd)) {
        case_free(&fwd);
        add_in(tc, t_scalar_f(0));
        add_in(tc, t_scalar_f(0));
        label(tc, "invalid draw");
        return;
    }
    for (int a = 0; a < fwd.node.n_attrs; a++) {
        const gf_attr *src = &fwd.attrs[a];
        if (src->type == GF_ATTR_STRING) attr_string(tc, src->name, src->s);
        else if (src->type == GF_ATTR_FLOAT) attr_float(tc, src->name, src->f);
        else attr_int(tc, src->name, src->i);
    }
    add_in(tc, t_rand(rank, yd, -1, 1));
    add_in(tc, t_shape_of(fwd.in[0]));
    gf_tensor_free(fwd.in[0]);
    for (int k = 1; k < fwd.n_in; k++) add_in(tc, fwd.in[k]);
    char ys[80];
    label(tc, "dY %s %s", dims_text(rank, yd, ys, sizeof ys), fwd.attrs[0].s);
    tc->rtol = 1e-6;
    tc->atol = 1e-6;
}

/* ---- losses ---- */

static void gen_ce(tcase *tc, int i)
{
    static const char *reductions[] = {"mean", "sum", "none"};
    int grad = i % 2;
    case_init(tc, "ai.graft", grad ? "CrossEntropyLossGrad" : "CrossEntropyLoss", 1);
    int rank = i % 3 == 2 ? 4 : 2;
    int64_t sd[4] = {rnd(1, 6), rnd(2, i % 5 == 4 ? 1000 : 12), rnd(1, 5), rnd(1, 5)}, td[3];
    td[0] = sd[0];
    for (int k = 2; k < rank; k++) td[k - 1] = sd[k];
    const char *reduction = reductions[rnd(0, 2)];
    attr_string(tc, "reduction", reduction);
    if (coin()) attr_float(tc, "label_smoothing", (float)rndf(0, 0.3));
    int64_t ignore = coin() ? -100 : 1;
    if (ignore != -100) attr_int(tc, "ignore_index", ignore);
    gf_tensor *scores = t_rand(rank, sd, -5, 5), *target = tensor(GF_INT64, rank - 1, td);
    for (int64_t k = 0; k < gf_tensor_numel(target); k++)
        ((int64_t *)target->data)[k] = rnd(0, 6) == 0 ? ignore : rnd(0, (int)sd[1] - 1);
    int bad = i % 11 == 10;
    if (bad) {
        ((int64_t *)target->data)[gf_tensor_numel(target) - 1] = sd[1] + 3;
        tc->expect_fail = 1;
    }
    if (grad) {
        int64_t none = 0;
        gf_tensor *dloss = !strcmp(reduction, "none") ? t_rand(rank - 1, td, -1, 1) : t_rand(0, &none, -1, 1);
        add_in(tc, dloss);
        /* log_prob: what the forward wrote */
        gf_tensor *lp = tensor(GF_FLOAT, rank, sd);
        int64_t c = sd[1], dd = gf_tensor_numel(scores) / (sd[0] * c);
        for (int64_t pos = 0; pos < sd[0] * dd; pos++) {
            const float *x = (const float *)scores->data + pos / dd * c * dd + pos % dd;
            float *l = (float *)lp->data + pos / dd * c * dd + pos % dd;
            double max = -INFINITY, s = 0;
            for (int64_t k = 0; k < c; k++) max = fmax(max, x[k * dd]);
            for (int64_t k = 0; k < c; k++) s += exp(x[k * dd] - max);
            for (int64_t k = 0; k < c; k++) l[k * dd] = (float)(x[k * dd] - max - log(s));
        }
        gf_tensor_free(scores);
        add_in(tc, lp);
    } else {
        add_in(tc, scores);
        tc->n_out = 2;
        if (i % 4 == 2) tc->omit[1] = 1;
    }
    add_in(tc, target);
    if (coin()) add_in(tc, t_rand(1, &sd[1], 0.2, 2));
    char ss[80];
    label(tc, "scores %s %s%s", dims_text(rank, sd, ss, sizeof ss), reduction, bad ? ", a label out of range" : "");
    tc->rtol = 1e-5;
    tc->atol = 1e-6;
}

static void gen_pointwise_loss(tcase *tc, int i)
{
    static const char *ops[] = {"MSELoss", "L1Loss", "BCEWithLogitsLoss"};
    static const char *reductions[] = {"mean", "sum", "none"};
    int kind = i % 3, grad = (i / 3) % 2;
    char op[40];
    snprintf(op, sizeof op, "%s%s", ops[kind], grad ? "Grad" : "");
    case_init(tc, "ai.graft", op, 1);
    int rank = rnd(1, 4);
    int64_t d[4];
    random_dims(rank, 1, 9, d);
    const char *reduction = reductions[rnd(0, 2)];
    attr_string(tc, "reduction", reduction);
    if (grad) {
        int64_t none = 0;
        add_in(tc, !strcmp(reduction, "none") ? t_rand(rank, d, -1, 1) : t_rand(0, &none, -1, 1));
    }
    add_in(tc, t_rand(rank, d, -4, 4));
    add_in(tc, t_rand(rank, d, kind == 2 ? 0 : -4, kind == 2 ? 1 : 4));
    if (kind == 2) {
        if (coin()) add_in(tc, t_rand(1, &d[rank - 1], 0.2, 2));
        else if (coin()) add_in(tc, NULL);
        if (coin()) add_in(tc, t_rand(1, &d[rank - 1], 0.5, 3));
    }
    char xs[80];
    label(tc, "X %s %s", dims_text(rank, d, xs, sizeof xs), reduction);
    tc->rtol = 1e-5;
    tc->atol = 1e-6;
}

/* ---- optimizers ---- */

static void gen_optimizer(tcase *tc, int i)
{
    static const char *ops[] = {"SGDStep", "AdamStep", "RMSpropStep"};
    int kind = i % 3;
    case_init(tc, "ai.graft", ops[kind], 1);
    int rank = rnd(1, 3);
    int64_t d[3];
    random_dims(rank, 1, 40, d);
    add_in(tc, t_rand(rank, d, -1, 1)); /* param */
    add_in(tc, t_rand(rank, d, -1, 1)); /* grad */
    int64_t step = coin() ? 1 : rnd(2, 50);
    int inplace = coin();
    if (kind == 0) {
        float momentum = coin() ? 0.0f : 0.9f;
        attr_float(tc, "momentum", momentum);
        if (coin()) attr_int(tc, "nesterov", momentum != 0);
        if (coin()) attr_float(tc, "dampening", 0.1f);
        if (coin()) attr_float(tc, "weight_decay", 5e-4f);
        add_in(tc, momentum != 0 || coin() ? t_rand(rank, d, -1, 1) : NULL);
        add_in(tc, t_scalar_f((float)rndf(1e-3, 0.1)));
        add_in(tc, t_scalar_i64(step));
        tc->n_out = tc->in[2] ? 2 : 1;
        if (inplace) {
            tc->inplace[0] = 1;
            if (tc->n_out > 1) tc->inplace[1] = 3;
        }
    } else if (kind == 1) {
        int amsgrad = coin();
        if (amsgrad) attr_int(tc, "amsgrad", 1);
        if (coin()) attr_int(tc, "decoupled", 1);
        if (coin()) attr_float(tc, "weight_decay", 1e-2f);
        if (coin()) attr_float(tc, "beta1", 0.8f);
        add_in(tc, t_rand(rank, d, -0.1, 0.1));
        add_in(tc, t_rand(rank, d, 0, 0.01));
        add_in(tc, t_scalar_f((float)rndf(1e-4, 1e-2)));
        add_in(tc, t_scalar_i64(step));
        if (amsgrad) add_in(tc, t_rand(rank, d, 0, 0.01));
        tc->n_out = amsgrad ? 4 : 3;
        if (inplace)
            for (int o = 0; o < tc->n_out; o++) tc->inplace[o] = o == 0 ? 1 : o == 3 ? 7 : o + 2;
    } else {
        int centered = coin(), momentum = coin();
        if (centered) attr_int(tc, "centered", 1);
        if (momentum) attr_float(tc, "momentum", 0.5f);
        if (coin()) attr_float(tc, "weight_decay", 1e-3f);
        add_in(tc, t_rand(rank, d, 0, 0.01));
        add_in(tc, t_scalar_f((float)rndf(1e-4, 1e-2)));
        add_in(tc, momentum ? t_rand(rank, d, -0.1, 0.1) : NULL);
        add_in(tc, centered ? t_rand(rank, d, -0.01, 0.01) : NULL);
        tc->n_out = 4;
        tc->omit[2] = !momentum;
        tc->omit[3] = !centered;
        if (inplace) {
            tc->inplace[0] = 1;
            tc->inplace[1] = 3;
            if (momentum) tc->inplace[2] = 5;
            if (centered) tc->inplace[3] = 6;
        }
    }
    char xs[80];
    label(tc, "param %s step %lld%s", dims_text(rank, d, xs, sizeof xs), (long long)step, inplace ? " in place" : "");
    tc->rtol = 0;
    tc->atol = 0;
}

static void gen_grad_norm(tcase *tc, int i)
{
    if (i % 3 == 2) {
        case_init(tc, "ai.graft", "ClipGradScale", 1);
        add_in(tc, t_scalar_f((float)rndf(0, 5)));
        attr_float(tc, "max_norm", (float)rndf(0.5, 3));
        label(tc, "norm");
        tc->rtol = tc->atol = 0;
        return;
    }
    case_init(tc, "ai.graft", "GradNorm", 1);
    int n = rnd(1, 6);
    for (int k = 0; k < n; k++) {
        int64_t d[2] = {rnd(1, 300), rnd(1, k == 0 && i % 3 == 1 ? 700 : 30)};
        add_in(tc, t_rand(2, d, -1, 1));
    }
    label(tc, "%d gradients", n);
    tc->rtol = 1e-6;
}

static void gen_check_finite(tcase *tc, int i)
{
    case_init(tc, "ai.graft", "CheckFinite", 1);
    int64_t d = rnd(1, 50);
    gf_tensor *x = t_rand(i % 2 ? 1 : 0, &d, -3, 3);
    if (i % 3 == 2) {
        ((float *)x->data)[gf_tensor_numel(x) - 1] = i % 2 ? INFINITY : NAN;
        tc->expect_fail = 1;
    }
    add_in(tc, x);
    label(tc, "%lld values%s", (long long)gf_tensor_numel(x), tc->expect_fail ? ", one not finite" : "");
    tc->rtol = tc->atol = 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    uint64_t seed = 20240607;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--cpu-only")) cpu_only = 1;
        else if (!strcmp(argv[a], "-v")) verbose = 1;
        else if (!strcmp(argv[a], "--seed") && a + 1 < argc) seed = strtoull(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "--filter") && a + 1 < argc) filter = argv[++a];
        else {
            fprintf(stderr, "usage: %s [--cpu-only] [--seed N] [--filter OP] [-v]\n", argv[0]);
            return 2;
        }
    }
    if (!cpu_only) {
        int count;
        if (gf_cuda_devices(&count)) {
            printf("%s\n", gf_last_error()); /* "no CUDA device: ..." */
            return 77;
        }
        gf_cuda_options opt;
        gf_cuda_options_default(&opt);
        opt.allow_tf32 = 0;
        if (gf_cuda_ctx_new(&opt, &cu)) {
            printf("FAIL cannot start cuda:0: %s\n", gf_last_error());
            return 1;
        }
    }
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    printf("seed %llu%s\n", (unsigned long long)seed, cpu_only ? " (CPU side only)" : "");

    run_gen("Conv/ConvTranspose", gen_conv, 40);
    run_gen("FusedConv", gen_fused_conv, 12);
    run_gen("ConvGradInput/ConvGradWeight", gen_conv_grad, 24);
    run_gen_both("MaxPool/AveragePool", gen_pool, 24);
    run_gen("GlobalAveragePool", gen_global_pool, 6);
    run_gen_both("BatchNormalization", gen_bn, 12);
    run_gen("BatchNormTrain", gen_bn_train, 8);
    run_gen("BatchNormGrad", gen_bn_grad, 8);
    run_gen("Gemm", gen_gemm, 12);
    run_gen("MatMul", gen_matmul, 12);
    run_gen("Add/Sub/Mul/Div", gen_binary, 36);
    run_gen("Relu/LeakyRelu/Sigmoid/Exp", gen_unary, 16);
    run_gen("Cast", gen_cast, 16);
    run_gen("shape ops", gen_movement, 36);
    run_gen("Constant", gen_constant, 4);
    run_gen("Concat", gen_concat, 8);
    run_gen("Split", gen_split, 9);
    run_gen("Slice", gen_slice, 10);
    run_gen("Gather", gen_gather, 14);
    run_gen("Pad", gen_pad, 12);
    run_gen("Resize/Upsample", gen_resize, 24);
    run_gen("Softmax/LogSoftmax", gen_softmax, 12);
    run_gen("ReduceSum/ReduceMean", gen_reduce, 16);
    run_gen("activation gradients", gen_act_grad, 20);
    run_gen("Dropout", gen_dropout, 8);
    run_gen("MaxPoolGrad/AveragePoolGrad", gen_pool_grad, 16);
    run_gen("GlobalAveragePoolGrad", gen_global_pool_grad, 4);
    run_gen("ReduceSumTo", gen_reduce_sum_to, 10);
    run_gen("ConcatGrad", gen_concat_grad, 6);
    run_gen("AllReduceMean (a group of one)", gen_all_reduce, 4);
    run_gen("SliceGrad", gen_slice_grad, 8);
    run_gen("ResizeGrad", gen_resize_grad, 10);
    run_gen("CrossEntropyLoss(Grad)", gen_ce, 22);
    run_gen("pointwise losses", gen_pointwise_loss, 18);
    run_gen("optimizer steps", gen_optimizer, 18);
    run_gen("GradNorm/ClipGradScale", gen_grad_norm, 9);
    run_gen("CheckFinite", gen_check_finite, 6);

    printf("%d cases, %d passed, %d failed%s\n", n_run, n_run - n_failed, n_failed,
           cpu_only ? " (CPU side only)" : "");
    if (cu) gf_cuda_ctx_free(cu);
    return n_failed ? 1 : 0;
}
