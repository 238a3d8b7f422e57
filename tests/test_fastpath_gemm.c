/* The oneDNN fast paths of Gemm and MatMul against the reference kernels, and
 * the reference kernels against a plain double-precision product, on random
 * shapes. Each node is hand-built, shaped by its op's infer (from gf_op_find)
 * and run by gf_gemm_cpu_impl with the implementation chosen.
 *
 *   test_fastpath_gemm            correctness; exits non-zero on a mismatch
 *   test_fastpath_gemm --bench    also times the classifier-sized Gemms (GFLOP/s)
 */
#include "ops/dnnl_util.h"
#include "test_node.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The fast path and the reference sum in different orders:
 * |fast - ref| <= TOL * max|ref| + 1e-5 (the model tests' bound). */
#define TOL 1e-4

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(void)   /* in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2 - 1;
}

static int64_t rand_dim(int64_t lo, int64_t hi) { return lo + (int64_t)((uniform() + 1) / 2 * (double)(hi - lo + 1)); }

static gf_tensor *random_tensor(int rank, const int64_t *dims)
{
    gf_tensor *t;
    if (gf_tensor_new(&t, GF_FLOAT, rank, dims)) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    float *d = t->data;
    for (int64_t i = 0; i < gf_tensor_numel(t); i++) d[i] = (float)uniform();
    return t;
}


/* Infers the output shape and runs the kernel with the implementation asked
 * for. Returns the output (caller frees) or NULL after printing why. */
static gf_tensor *run_op(const test_node *tn, int n_inputs, const gf_tensor **inputs, gf_impl impl)
{
    gf_op_ctx ctx;
    const gf_op *op;
    gf_tensor *outs[1], *out = test_prepare(tn, n_inputs, inputs, &ctx, outs, &op);
    if (out && gf_gemm_cpu_impl(&ctx, impl)) {
        printf("FAIL %s: %s\n", impl == GF_IMPL_FAST ? "fast path" : "reference", gf_last_error());
        gf_tensor_free(out);
        return NULL;
    }
    return out;
}

/* max|x - y| / (max|y|) and whether it is within TOL * max|y| + 1e-5. */
static int compare(const char *what, const gf_tensor *x, const gf_tensor *y, double *rel)
{
    const float *a = x->data, *b = y->data;
    double max_diff = 0, max_ref = 0;
    for (int64_t i = 0; i < gf_tensor_numel(y); i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= max_diff)) max_diff = d;   /* NaN-propagating */
        if (fabs(b[i]) > max_ref) max_ref = fabs(b[i]);
    }
    *rel = max_ref > 0 ? max_diff / max_ref : max_diff;
    int ok = max_diff <= TOL * max_ref + 1e-5;
    if (!ok) printf("  %s: max |diff| %.3g, max |ref| %.3g\n", what, max_diff, max_ref);
    return ok;
}

/* Y = alpha op(A) op(B) + beta C in double, C broadcast from [cr, cc] to [m, n]. */
static gf_tensor *naive_gemm(const gf_tensor *a, const gf_tensor *b, const gf_tensor *c, int ta, int tb,
                             double alpha, double beta)
{
    int64_t m = a->dims[ta], k = a->dims[!ta], n = b->dims[!tb];
    int64_t dims[2] = {m, n};
    gf_tensor *y;
    gf_tensor_new(&y, GF_FLOAT, 2, dims);
    const float *A = a->data, *B = b->data;
    int64_t cstr[2] = {0, 0};
    if (c) gf_broadcast_strides(c, 2, dims, cstr);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += (double)A[ta ? p * m + i : i * k + p] * B[tb ? j * k + p : p * n + j];
            double v = alpha * s;
            if (c) v += beta * ((const float *)c->data)[i * cstr[0] + j * cstr[1]];
            ((float *)y->data)[i * n + j] = (float)v;
        }
    return y;
}

/* One case: fast vs reference, and (when `naive` is given) reference vs naive.
 * Every case is big enough for the fast path, so it must run. */
static int check_case(const char *label, const test_node *tn, int n_inputs, const gf_tensor **inputs,
                      const gf_tensor *naive)
{
    gf_tensor *fast = run_op(tn, n_inputs, inputs, GF_IMPL_FAST);
    gf_tensor *ref = run_op(tn, n_inputs, inputs, GF_IMPL_REFERENCE);
    int ok = fast && ref;
    double rel_fast = 0, rel_ref = 0;
    if (ok) ok = compare("fast vs reference", fast, ref, &rel_fast);
    if (ok && naive) ok = compare("reference vs double", ref, naive, &rel_ref);
    char shape[128] = "?";
    if (ref) gf_shape_str(ref, shape, sizeof shape);
    printf("%s %-58s -> %-16s fast/ref %.1e", ok ? "ok  " : "FAIL", label, shape, rel_fast);
    if (naive) printf("  ref/double %.1e", rel_ref);
    printf("\n");
    gf_tensor_free(fast);
    gf_tensor_free(ref);
    return ok;
}

static int gemm_case(int64_t m, int64_t n, int64_t k, int ta, int tb, float alpha, float beta, int c_form)
{
    static const char *const c_names[] = {"none", "[]", "[N]", "[1,N]", "[M,1]", "[M,N]"};
    int64_t a_dims[2] = {ta ? k : m, ta ? m : k}, b_dims[2] = {tb ? n : k, tb ? k : n};
    int64_t c_dims[2][2] = {{0, 0}, {0, 0}};
    int c_rank = 0;
    switch (c_form) {
    case 2: c_rank = 1, c_dims[0][0] = n; break;
    case 3: c_rank = 2, c_dims[0][0] = 1, c_dims[0][1] = n; break;
    case 4: c_rank = 2, c_dims[0][0] = m, c_dims[0][1] = 1; break;
    case 5: c_rank = 2, c_dims[0][0] = m, c_dims[0][1] = n; break;
    default: break;
    }
    gf_tensor *a = random_tensor(2, a_dims), *b = random_tensor(2, b_dims);
    gf_tensor *c = c_form ? random_tensor(c_rank, c_dims[0]) : NULL;
    test_node tn;
    node_init(&tn, "Gemm", 13);
    add_int(&tn, "transA", ta);
    add_int(&tn, "transB", tb);
    add_float(&tn, "alpha", alpha);
    add_float(&tn, "beta", beta);
    const gf_tensor *inputs[3] = {a, b, c};
    gf_tensor *naive = naive_gemm(a, b, c, ta, tb, alpha, beta);
    char label[160];
    snprintf(label, sizeof label, "Gemm m=%lld n=%lld k=%lld tA=%d tB=%d a=%.2f b=%.2f C=%s", (long long)m,
             (long long)n, (long long)k, ta, tb, alpha, beta, c_names[c_form]);
    int ok = check_case(label, &tn, c ? 3 : 2, inputs, naive);
    gf_tensor_free(naive);
    gf_tensor_free(a);
    gf_tensor_free(b);
    gf_tensor_free(c);
    return ok;
}

static int matmul_case(int a_rank, const int64_t *a_dims, int b_rank, const int64_t *b_dims)
{
    gf_tensor *a = random_tensor(a_rank, a_dims), *b = random_tensor(b_rank, b_dims);
    test_node tn;
    node_init(&tn, "MatMul", 13);
    const gf_tensor *inputs[2] = {a, b};
    char sa[96], sb[96], label[200];
    snprintf(label, sizeof label, "MatMul %s x %s", gf_shape_str(a, sa, sizeof sa), gf_shape_str(b, sb, sizeof sb));
    int ok = check_case(label, &tn, 2, inputs, NULL);
    gf_tensor_free(a);
    gf_tensor_free(b);
    return ok;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* GFLOP/s of the fast path on a PyTorch-style Linear: Gemm(X, W[n,k], b[n], transB=1). */
static void bench_gemm(int64_t m, int64_t n, int64_t k)
{
    int64_t x_dims[2] = {m, k}, w_dims[2] = {n, k}, b_dims[1] = {n};
    gf_tensor *x = random_tensor(2, x_dims), *w = random_tensor(2, w_dims), *b = random_tensor(1, b_dims);
    test_node tn;
    node_init(&tn, "Gemm", 13);
    add_int(&tn, "transB", 1);
    const gf_tensor *inputs[3] = {x, w, b};
    gf_tensor *y = run_op(&tn, 3, inputs, GF_IMPL_FAST);   /* warm-up: primitive creation */
    if (!y) return;
    gf_op_ctx ctx = {&tn.node, 3, inputs, 1, &y, 0};
    /* The best run is the one least disturbed by whatever else the machine does. */
    int reps = 0;
    double start = now_s(), best = 1e30;
    do {
        double t = now_s();
        gf_gemm_cpu_impl(&ctx, GF_IMPL_FAST);
        t = now_s() - t;
        if (t < best) best = t;
        reps++;
    } while (now_s() - start < 1.0 || reps < 3);
    double mean = (now_s() - start) / reps;
    printf("bench Gemm %lldx%lldx%lld (transB, bias): best %.3f ms = %.1f GFLOP/s, mean %.3f ms (%d runs)\n",
           (long long)m, (long long)k, (long long)n, best * 1e3, 2.0 * m * n * k / best * 1e-9, mean * 1e3, reps);
    gf_tensor_free(y);
    gf_tensor_free(x);
    gf_tensor_free(w);
    gf_tensor_free(b);
}

int main(int argc, char **argv)
{
    int bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
    int failed = 0, total = 0;

    /* Every transpose and bias form; at least 32768 multiply-adds, where the fast path runs. */
    for (int c_form = 0; c_form < 6; c_form++)
        for (int t = 0; t < 4; t++) {
            int64_t m = rand_dim(1, 70), n = rand_dim(32, 300), k = rand_dim(1024 / m + 1, 1024 / m + 300);
            float alpha = t == 3 ? 0.75f : 1.0f, beta = c_form == 5 ? -0.5f : 1.0f;
            total++;
            failed += !gemm_case(m, n, k, t & 1, t >> 1, alpha, beta, c_form);
        }
    total += 6;
    failed += !gemm_case(8, 1000, 4096, 0, 1, 1.0f, 1.0f, 2);   /* a classifier head */
    /* fully connected layers at batch 1 to 4 (the dot-product path), k not a multiple of its
     * lanes, n not of the rows it streams at once */
    failed += !gemm_case(1, 1024, 9217, 0, 1, 1.0f, 1.0f, 2);
    failed += !gemm_case(2, 1027, 1031, 0, 1, 1.0f, 1.0f, 2);
    failed += !gemm_case(3, 1500, 1001, 0, 1, 0.5f, 2.0f, 5);
    failed += !gemm_case(1, 2048, 1024, 1, 1, 1.0f, 1.0f, 2);  /* transposed A: oneDNN's */
    failed += !gemm_case(64, 64, 64, 1, 1, 2.0f, 0.0f, 5);       /* beta 0 ignores C */

    /* numpy.matmul shapes: 1-D promotion and batch broadcasting. */
    struct { int ar; int64_t a[4]; int br; int64_t b[4]; } mm[] = {
        {2, {37, 129}, 2, {129, 65}},
        {1, {300}, 2, {300, 200}},
        {2, {200, 300}, 1, {300}},
        {3, {4, 33, 70}, 2, {70, 50}},          /* folds into one [132,70] product */
        {2, {33, 70}, 3, {4, 70, 50}},
        {4, {2, 1, 40, 60}, 3, {3, 60, 45}},
        {4, {1, 3, 64, 64}, 4, {2, 1, 64, 64}},
        {3, {5, 1, 512}, 3, {5, 512, 80}},
    };
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
        total++;
        failed += !matmul_case(mm[i].ar, mm[i].a, mm[i].br, mm[i].b);
    }
    printf("%d of %d cases passed\n", total - failed, total);

    if (bench) {
        bench_gemm(1, 4096, 25088);
        bench_gemm(8, 4096, 25088);
        bench_gemm(256, 1024, 1024);
    }
    return failed != 0;
}
