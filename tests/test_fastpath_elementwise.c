/* The element-wise kernels against plain references:
 * - unary ops: the float32 fast path (vectorized loops, exp_f32) against the
 *   double reference kernel run on the same values, over a sweep of float bit
 *   patterns and the special values;
 * - broadcasting ops: the broadcast driver (axis merging, rows, chunks,
 *   threads) against a naive loop over output coordinates, on random shapes
 *   and a few large ones;
 * - the values Cast and Clip define exactly (saturation, wrapping, int64 bounds).
 * Nodes are hand-built and run through their registry entry (gf_op_find).
 *
 *   test_fastpath_elementwise            correctness; exits non-zero on a mismatch
 *   test_fastpath_elementwise --bench    also times the hot float32 ops
 */
#include "ops/op.h"
#include "test_node.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double uniform(double lo, double hi) { return lo + (double)(next_random() >> 11) / 9007199254740992.0 * (hi - lo); }

static gf_tensor *new_tensor(gf_dtype dtype, int rank, const int64_t *dims)
{
    gf_tensor *t;
    if (gf_tensor_new(&t, dtype, rank, dims)) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return t;
}

/* Infers the output and runs the kernel; returns the output (caller frees) or NULL after printing why. */
static gf_tensor *run_op(const test_node *tn, int n_inputs, const gf_tensor **inputs)
{
    gf_op_ctx ctx;
    const gf_op *op;
    gf_tensor *outs[1], *out = test_prepare(tn, n_inputs, inputs, &ctx, outs, &op);
    if (out && op->cpu(&ctx)) {
        printf("FAIL %s: %s\n", tn->node.op_type, gf_last_error());
        gf_tensor_free(out);
        return NULL;
    }
    return out;
}

/* ---- unary: float32 fast path against the double reference ---- */

/* Floats in an order where neighbours differ by one ulp (-0 and +0 coincide). */
static int64_t ordered(float f)
{
    int32_t i;
    memcpy(&i, &f, 4);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

typedef struct unary_case {
    const char *op_type;
    float alpha, beta;      /* attributes when has_attrs; Clip's bounds as inputs */
    int has_attrs;
    int64_t max_ulp;        /* against the double result rounded to float */
} unary_case;

static const unary_case unary_cases[] = {
    {"Relu", 0, 0, 0, 0}, {"LeakyRelu", 0.1f, 0, 1, 0}, {"LeakyRelu", 0, 0, 0, 0},
    {"Neg", 0, 0, 0, 0}, {"Abs", 0, 0, 0, 0},
    {"Clip", -1.5f, 6.0f, 0, 0}, {"Clip", 2.0f, -1.0f, 0, 0},   /* min > max: everything is max */
    {"Exp", 0, 0, 0, 2}, {"Sigmoid", 0, 0, 0, 3}, {"Tanh", 0, 0, 0, 3},
    {"HardSigmoid", 0.2f, 0.5f, 1, 1}, {"HardSigmoid", 0, 0, 0, 1}, {"HardSwish", 0, 0, 0, 1},
};

/* Every 997th float bit pattern, then the values where things change. */
static int64_t sweep_values(float *v)
{
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e-45f, -1e-45f, 1.17549435e-38f,
                                     3.4028235e38f, -3.4028235e38f, 88.72f, 88.73f, 89.0f, -87.33f, -103.97f, -104.0f,
                                     -110.0f, 0.625f, -0.625f, 0.6249999f, 7.9f, -9.0f, 1e-4f, -3.0f, 3.0f, 2.5f};
    int64_t n = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 997) {
        uint32_t bits = (uint32_t)u;
        memcpy(&v[n++], &bits, 4);
    }
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) v[n++] = specials[i];
    return n;
}

static int unary_check(const unary_case *c, gf_tensor *xf, gf_tensor *xd)
{
    test_node tn;
    node_init(&tn, c->op_type, 14);
    if (c->has_attrs) {
        add_float(&tn, "alpha", c->alpha);
        if (!strcmp(c->op_type, "HardSigmoid")) add_float(&tn, "beta", c->beta);
    }
    int is_clip = !strcmp(c->op_type, "Clip"), n_in = is_clip ? 3 : 1;
    int64_t scalar[1] = {1};
    gf_tensor *bounds[2][2];   /* [float, double][min, max] */
    for (int b = 0; b < 2; b++) {
        bounds[0][b] = new_tensor(GF_FLOAT, 0, scalar);
        bounds[1][b] = new_tensor(GF_DOUBLE, 0, scalar);
        *(float *)bounds[0][b]->data = b ? c->beta : c->alpha;
        *(double *)bounds[1][b]->data = b ? c->beta : c->alpha;
    }
    const gf_tensor *in_f[3] = {xf, bounds[0][0], bounds[0][1]}, *in_d[3] = {xd, bounds[1][0], bounds[1][1]};
    gf_tensor *yf = run_op(&tn, n_in, in_f), *yd = run_op(&tn, n_in, in_d);
    int ok = yf && yd;
    int64_t worst = 0, n = gf_tensor_numel(xf), where = 0;
    for (int64_t i = 0; ok && i < n; i++) {
        float f = ((float *)yf->data)[i], r = (float)((double *)yd->data)[i];
        int64_t d = isnan(f) || isnan(r) ? (isnan(f) && isnan(r) ? 0 : INT64_MAX) : llabs(ordered(f) - ordered(r));
        if (d > worst) worst = d, where = i;
    }
    ok = ok && worst <= c->max_ulp;
    printf("%s %-12s", ok ? "ok  " : "FAIL", c->op_type);
    if (is_clip || c->has_attrs) printf(" (%g, %g)", c->alpha, c->beta);
    if (yf && yd)
        printf("  max %lld ulp (allowed %lld) at x=%.9g: %.9g, reference %.9g", (long long)worst,
               (long long)c->max_ulp, ((float *)xf->data)[where], ((float *)yf->data)[where],
               ((double *)yd->data)[where]);
    printf("\n");
    gf_tensor_free(yf);
    gf_tensor_free(yd);
    for (int b = 0; b < 2; b++) gf_tensor_free(bounds[0][b]), gf_tensor_free(bounds[1][b]);
    return ok;
}

static int unary_tests(void)
{
    int64_t cap = (int64_t)(0x100000000ull / 997) + 64;
    gf_tensor *xf = new_tensor(GF_FLOAT, 1, &cap), *xd = new_tensor(GF_DOUBLE, 1, &cap);
    xf->dims[0] = xd->dims[0] = sweep_values(xf->data);
    for (int64_t i = 0; i < xf->dims[0]; i++) ((double *)xd->data)[i] = ((float *)xf->data)[i];
    int fails = 0;
    for (size_t i = 0; i < sizeof unary_cases / sizeof *unary_cases; i++) fails += !unary_check(&unary_cases[i], xf, xd);
    gf_tensor_free(xf);
    gf_tensor_free(xd);
    return fails;
}

/* Values the conversions define: float to integer saturates (NaN gives 0),
 * integer to integer wraps, Clip on int64 keeps its bounds exact. */
static int exact_checks(void)
{
    static const float floats[] = {NAN, 1e10f, -1e10f, 2.9f, -2.9f, 300.0f, -0.0f, INFINITY};
    static const int32_t as_int32[] = {0, INT32_MAX, INT32_MIN, 2, -2, 300, 0, INT32_MAX};
    static const uint8_t as_uint8[] = {0, 255, 0, 2, 0, 255, 0, 255};
    static const int64_t wide[] = {INT64_MAX, INT64_MIN, 257, -1, 9007199254740993LL};
    static const int8_t as_int8[] = {-1, 0, 1, -1, 1};
    int fails = 0;
    int64_t nf = 8, nw = 5;
    gf_tensor *f = new_tensor(GF_FLOAT, 1, &nf), *w = new_tensor(GF_INT64, 1, &nw);
    memcpy(f->data, floats, sizeof floats);
    memcpy(w->data, wide, sizeof wide);
    struct { const gf_tensor *x; gf_dtype to; const void *want; size_t size; } casts[] = {
        {f, GF_INT32, as_int32, sizeof as_int32}, {f, GF_UINT8, as_uint8, sizeof as_uint8},
        {w, GF_INT8, as_int8, sizeof as_int8},
    };
    for (size_t i = 0; i < sizeof casts / sizeof *casts; i++) {
        test_node tn;
        node_init(&tn, "Cast", 13);
        add_int(&tn, "to", casts[i].to);
        const gf_tensor *in[1] = {casts[i].x};
        gf_tensor *y = run_op(&tn, 1, in);
        int ok = y && !memcmp(y->data, casts[i].want, casts[i].size);
        printf("%s Cast %s to %s\n", ok ? "ok  " : "FAIL", gf_dtype_name(casts[i].x->dtype), gf_dtype_name(casts[i].to));
        fails += !ok;
        gf_tensor_free(y);
    }
    /* Clip(x, 2^53 + 1, INT64_MAX - 1) on int64: through double the bounds would move */
    int64_t one = 1;
    gf_tensor *lo = new_tensor(GF_INT64, 0, &one), *hi = new_tensor(GF_INT64, 0, &one);
    *(int64_t *)lo->data = 9007199254740993LL;
    *(int64_t *)hi->data = INT64_MAX - 1;
    test_node tn;
    node_init(&tn, "Clip", 13);
    const gf_tensor *in[3] = {w, lo, hi};
    gf_tensor *y = run_op(&tn, 3, in);
    static const int64_t clipped[] = {INT64_MAX - 1, 9007199254740993LL, 9007199254740993LL, 9007199254740993LL,
                                      9007199254740993LL};
    int ok = y && !memcmp(y->data, clipped, sizeof clipped);
    printf("%s Clip int64 with bounds beyond 2^53\n", ok ? "ok  " : "FAIL");
    fails += !ok;
    gf_tensor_free(y);
    gf_tensor_free(lo);
    gf_tensor_free(hi);
    gf_tensor_free(f);
    gf_tensor_free(w);
    return fails;
}

/* ---- broadcasting ops against a naive loop ---- */

typedef struct binary_case {
    const char *op_type;
    gf_dtype dtype;
    int n_inputs;
    int fmod;          /* Mod's attribute */
} binary_case;

static const binary_case binary_cases[] = {
    {"Add", GF_FLOAT, 2, 0}, {"Sub", GF_FLOAT, 2, 0}, {"Mul", GF_FLOAT, 2, 0}, {"Div", GF_FLOAT, 2, 0},
    {"Pow", GF_FLOAT, 2, 0}, {"Max", GF_FLOAT, 2, 0}, {"Min", GF_DOUBLE, 2, 0}, {"Add", GF_INT64, 2, 0},
    {"Div", GF_INT32, 2, 0}, {"Mod", GF_INT32, 2, 0}, {"Mod", GF_INT64, 2, 1}, {"Mod", GF_FLOAT, 2, 1},
    {"Sub", GF_UINT8, 2, 0}, {"Less", GF_FLOAT, 2, 0}, {"Equal", GF_INT32, 2, 0}, {"Sum", GF_FLOAT, 3, 0},
    {"Max", GF_INT32, 3, 0}, {"Where", GF_FLOAT, 3, 0},
};

static double value_at(const gf_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case GF_FLOAT: return ((float *)t->data)[i];
    case GF_DOUBLE: return ((double *)t->data)[i];
    case GF_INT32: return ((int32_t *)t->data)[i];
    case GF_INT64: return (double)((int64_t *)t->data)[i];
    default: return ((uint8_t *)t->data)[i];   /* uint8, bool */
    }
}

/* Operands are small integers (or have few bits) in every type, so each
 * result is exact in double and rounds once to the output type, as the kernel's does. */
static double expected(const char *op, int c_fmod, gf_dtype t, const double *v, int n)
{
    if (!strcmp(op, "Where")) return v[0] ? v[1] : v[2];
    double r = v[0];
    for (int k = 1; k < n; k++) {
        double b = v[k];
        if (!strcmp(op, "Add") || !strcmp(op, "Sum")) r += b;
        else if (!strcmp(op, "Sub")) r = t == GF_UINT8 ? (double)(uint8_t)(int)(r - b) : r - b;
        else if (!strcmp(op, "Mul")) r *= b;
        else if (!strcmp(op, "Div")) r = t == GF_FLOAT || t == GF_DOUBLE ? (t == GF_FLOAT ? (float)r / (float)b : r / b) : trunc(r / b);
        else if (!strcmp(op, "Pow")) r = (float)pow(r, b);
        else if (!strcmp(op, "Max")) r = r > b ? r : b;
        else if (!strcmp(op, "Min")) r = r < b ? r : b;
        else if (!strcmp(op, "Less")) r = r < b;
        else if (!strcmp(op, "Equal")) r = r == b;
        else if (!strcmp(op, "Mod")) {
            r = fmod(r, b);
            if (!c_fmod && r != 0 && (r < 0) != (b < 0)) r += b;   /* the sign of the divisor, as Python */
        }
    }
    return r;
}

static double random_operand(gf_dtype t, int k, const char *op)
{
    if (!strcmp(op, "Where") && k == 0) return next_random() & 1;
    if (t == GF_UINT8) return (double)(next_random() % 256);
    if (!strcmp(op, "Pow")) return k == 0 ? uniform(0.5, 2) : (double)(int)uniform(-3, 4);
    double v = (double)((int)uniform(-20, 21));
    if ((!strcmp(op, "Div") || !strcmp(op, "Mod")) && k > 0 && v == 0) v = 7;
    if (t == GF_FLOAT || t == GF_DOUBLE) v += (double)(next_random() % 4) / 4;   /* quarters: still exact */
    return v;
}

static void set_value(gf_tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case GF_FLOAT: ((float *)t->data)[i] = (float)v; break;
    case GF_DOUBLE: ((double *)t->data)[i] = v; break;
    case GF_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case GF_INT64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    default: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    }
}

/* Runs one op on inputs broadcast to out_dims and compares every element. */
static int binary_check(const binary_case *c, int rank, const int64_t *out_dims, int n_in, const int *in_rank,
                        int64_t in_dims[][GF_MAX_RANK])
{
    gf_tensor *in[3];
    for (int k = 0; k < n_in; k++) {
        gf_dtype t = !strcmp(c->op_type, "Where") && k == 0 ? GF_BOOL : c->dtype;
        in[k] = new_tensor(t, in_rank[k], in_dims[k]);
        for (int64_t i = 0; i < gf_tensor_numel(in[k]); i++) set_value(in[k], i, random_operand(c->dtype, k, c->op_type));
    }
    test_node tn;
    node_init(&tn, c->op_type, 13);
    if (!strcmp(c->op_type, "Mod")) add_int(&tn, "fmod", c->fmod);
    gf_tensor *y = run_op(&tn, n_in, (const gf_tensor **)in);
    int ok = y != NULL;
    int64_t numel = 1, bad = -1;
    for (int d = 0; d < rank; d++) numel *= out_dims[d];
    for (int64_t i = 0; ok && i < numel && bad < 0; i++) {
        double v[3] = {0, 0, 0};
        for (int k = 0; k < n_in; k++) {
            /* the input's element at the output's coordinates, size-1 axes pinned to 0 */
            int64_t off = 0, rem = i, stride = 1;
            for (int d = rank - 1, e = in_rank[k] - 1; d >= 0; d--, e--) {
                int64_t coord = rem % out_dims[d];
                rem /= out_dims[d];
                if (e < 0) continue;
                off += (in_dims[k][e] == 1 ? 0 : coord) * stride;
                stride *= in_dims[k][e];
            }
            v[k] = value_at(in[k], off);
        }
        double want = expected(c->op_type, c->fmod, c->dtype, v, n_in), got = value_at(y, i);
        if (y->dtype == GF_FLOAT) want = (float)want;
        if (y->dtype == GF_UINT8) want = (uint8_t)(int)want;
        if (got != want) {
            bad = i;
            printf("  element %lld: got %.9g, expected %.9g\n", (long long)i, got, want);
        }
    }
    if (ok) ok = bad < 0 && y->rank == rank && gf_tensor_numel(y) == numel;
    char shapes[256] = "", s[96];
    for (int k = 0; k < n_in; k++) {
        strcat(shapes, k ? " " : "");
        strcat(shapes, gf_shape_str(in[k], s, sizeof s));
    }
    printf("%s %-6s %-7s %s\n", ok ? "ok  " : "FAIL", c->op_type, gf_dtype_name(c->dtype), shapes);
    gf_tensor_free(y);
    for (int k = 0; k < n_in; k++) gf_tensor_free(in[k]);
    return ok;
}

/* Random shapes: each input takes a suffix of some axes, each of them full or
 * 1; the output is what they broadcast to. */
static int random_binary_case(const binary_case *c)
{
    int64_t dims[GF_MAX_RANK], out_dims[GF_MAX_RANK], in_dims[3][GF_MAX_RANK];
    int rank = 0, in_rank[3];
    for (int d = 0; d < 4; d++) dims[d] = 1 + (int64_t)(next_random() % 5);
    for (int k = 0; k < c->n_inputs; k++) {
        in_rank[k] = (int)(next_random() % 5);
        for (int e = 0; e < in_rank[k]; e++) in_dims[k][e] = next_random() % 3 ? dims[4 - in_rank[k] + e] : 1;
        if (in_rank[k] > rank) rank = in_rank[k];
    }
    for (int d = 0; d < rank; d++) {
        out_dims[d] = 1;
        for (int k = 0; k < c->n_inputs; k++) {
            int e = in_rank[k] - rank + d;
            if (e >= 0 && in_dims[k][e] > 1) out_dims[d] = in_dims[k][e];
        }
    }
    return binary_check(c, rank, out_dims, c->n_inputs, in_rank, in_dims);
}

/* Large enough for threads and chunked rows: [3,70000] + [70000], a bias [1,C,1,1], a scalar. */
static int large_binary_cases(void)
{
    static const binary_case add = {"Add", GF_FLOAT, 2, 0}, where = {"Where", GF_FLOAT, 3, 0};
    int fails = 0;
    {
        int64_t out[2] = {3, 70000}, in[2][GF_MAX_RANK] = {{3, 70000}, {70000}};
        int in_rank[2] = {2, 1};
        fails += !binary_check(&add, 2, out, 2, in_rank, in);
    }
    {
        int64_t out[4] = {2, 16, 60, 70}, in[2][GF_MAX_RANK] = {{2, 16, 60, 70}, {1, 16, 1, 1}};
        int in_rank[2] = {4, 4};
        fails += !binary_check(&add, 4, out, 2, in_rank, in);
    }
    {
        int64_t out[2] = {300, 500}, in[2][GF_MAX_RANK] = {{300, 500}, {0}};
        int in_rank[2] = {2, 0};
        fails += !binary_check(&add, 2, out, 2, in_rank, in);
    }
    {
        int64_t out[3] = {40, 50, 60}, in[3][GF_MAX_RANK] = {{40, 1, 60}, {40, 50, 60}, {50, 1}};
        int in_rank[3] = {3, 3, 2};
        fails += !binary_check(&where, 3, out, 3, in_rank, in);
    }
    return fails;
}

static int binary_tests(void)
{
    int fails = 0;
    for (size_t i = 0; i < sizeof binary_cases / sizeof *binary_cases; i++)
        for (int rep = 0; rep < 6; rep++) fails += !random_binary_case(&binary_cases[i]);
    return fails + large_binary_cases();
}

/* ---- timing ---- */

/* Best of `runs` kernel calls into one output allocated (and touched) beforehand. */
static double time_op(const test_node *tn, int n_in, const gf_tensor **in, int runs)
{
    gf_tensor *y = run_op(tn, n_in, in);
    if (!y) return NAN;
    gf_tensor *outs[1] = {y};
    gf_op_ctx ctx = {&tn->node, n_in, in, 1, outs, 0};
    const gf_op *op = gf_op_find("", tn->node.op_type, tn->node.opset);
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        op->cpu(&ctx);
        double t = omp_get_wtime() - t0;
        if (t < best) best = t;
    }
    gf_tensor_free(y);
    return best;
}

static void bench(void)
{
    int64_t dims[4] = {8, 64, 96, 96}, bias_dims[4] = {1, 64, 1, 1};
    gf_tensor *x = new_tensor(GF_FLOAT, 4, dims), *x2 = new_tensor(GF_FLOAT, 4, dims);
    gf_tensor *bias = new_tensor(GF_FLOAT, 4, bias_dims);
    int64_t n = gf_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) ((float *)x->data)[i] = (float)uniform(-8, 8), ((float *)x2->data)[i] = (float)uniform(-8, 8);
    for (int64_t i = 0; i < 64; i++) ((float *)bias->data)[i] = (float)uniform(-1, 1);
    static const char *const unary_ops[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Exp"};
    printf("\nbest of 10, %lld float32 elements %d threads\n", (long long)n,
           omp_get_max_threads());
    for (size_t i = 0; i < sizeof unary_ops / sizeof *unary_ops; i++) {
        test_node tn;
        node_init(&tn, unary_ops[i], 13);
        const gf_tensor *in[1] = {x};
        double t = time_op(&tn, 1, in, 10);
        printf("  %-10s %7.2f ms  %6.2f GB/s\n", unary_ops[i], t * 1e3, 8.0 * (double)n / t / 1e9);
    }
    static const char *const binary_ops[] = {"Add", "Mul"};
    for (size_t i = 0; i < 2; i++) {
        test_node tn;
        node_init(&tn, binary_ops[i], 13);
        const gf_tensor *same[2] = {x, x2}, *row[2] = {x, bias};
        double t = time_op(&tn, 2, same, 10), tb = time_op(&tn, 2, row, 10);
        printf("  %-10s %7.2f ms  %6.2f GB/s   with a [1,C,1,1] bias: %7.2f ms\n", binary_ops[i], t * 1e3,
               12.0 * (double)n / t / 1e9, tb * 1e3);
    }
    gf_tensor_free(x);
    gf_tensor_free(x2);
    gf_tensor_free(bias);
}

int main(int argc, char **argv)
{
    int fails = unary_tests() + exact_checks() + binary_tests();
    if (argc > 1 && !strcmp(argv[1], "--bench")) bench();
    printf("%s: %d failed\n", fails ? "FAIL" : "ok", fails);
    return fails != 0;
}
