/* Gemm, MatMul, MatMulInteger and QLinearMatMul.
 *
 * Every op here reduces to 2-D products Y[m,n] = op(A)[m,k] op(B)[k,n], one
 * per batch; Gemm then applies Y = alpha * Y + beta * C in one pass. The
 * reference kernels are plain loops; float32 products large enough to pay for
 * the call go to oneDNN's matmul primitive (transposes expressed as strides),
 * but for a few rows against large transposed weights (a classifier's fully
 * connected layers at batch 1), which go to gemv below. */
#include "gemm.h"
#include "dnnl_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference kernels ----
 * Y += op(A) op(B): i-k-j order when B is not transposed (rows of B and Y
 * stream), dot products when it is. ACC is the arithmetic type: unsigned for
 * integers, so that overflow wraps as two's complement instead of being undefined. */
#define DEFINE_GEMM_REFERENCE(NAME, T, ACC)                                                      \
    static void NAME(const gf_gemm_shape *s, const T *a, const T *b, T *y)                       \
    {                                                                                            \
        _Pragma("omp parallel for schedule(static) if ((double)s->m * s->n * s->k > 65536)")    \
        for (int64_t i = 0; i < s->m; i++) {                                                     \
            T *yr = y + i * s->n;                                                                \
            if (!s->trans_b) {                                                                   \
                for (int64_t p = 0; p < s->k; p++) {                                             \
                    ACC av = (ACC)a[s->trans_a ? p * s->m + i : i * s->k + p];                   \
                    const T *br = b + p * s->n;                                                  \
                    for (int64_t j = 0; j < s->n; j++) yr[j] = (T)((ACC)yr[j] + av * (ACC)br[j]); \
                }                                                                                \
            } else {                                                                             \
                for (int64_t j = 0; j < s->n; j++) {                                             \
                    ACC acc = 0;                                                                 \
                    for (int64_t p = 0; p < s->k; p++)                                           \
                        acc += (ACC)a[s->trans_a ? p * s->m + i : i * s->k + p] * (ACC)b[j * s->k + p]; \
                    yr[j] = (T)((ACC)yr[j] + acc);                                               \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }

DEFINE_GEMM_REFERENCE(gemm_reference_f32, float, float)
DEFINE_GEMM_REFERENCE(gemm_reference_f64, double, double)
DEFINE_GEMM_REFERENCE(gemm_reference_i32, int32_t, uint32_t)
DEFINE_GEMM_REFERENCE(gemm_reference_i64, int64_t, uint64_t)

static void gemm_reference(gf_dtype dtype, const gf_gemm_shape *s, const void *a, const void *b, void *y)
{
    switch (dtype) {
    case GF_FLOAT: gemm_reference_f32(s, a, b, y); break;
    case GF_DOUBLE: gemm_reference_f64(s, a, b, y); break;
    case GF_INT32: gemm_reference_i32(s, a, b, y); break;
    case GF_INT64: gemm_reference_i64(s, a, b, y); break;
    default: break;   /* infer admits only the types above */
    }
}

/* ---- batches ---- */

static void batch_matrices(const gf_gemm_batches *p, int64_t i, int64_t *a_index, int64_t *b_index)
{
    *a_index = *b_index = 0;
    for (int d = p->rank - 1; d >= 0; d--) {
        int64_t coord = i % p->dims[d];
        i /= p->dims[d];
        *a_index += coord * p->a_strides[d];
        *b_index += coord * p->b_strides[d];
    }
}

static void batch_reference(gf_dtype dtype, const gf_gemm_batches *p, const void *a, const void *b, void *y)
{
    const gf_gemm_shape *s = &p->shape;
    size_t esize = gf_dtype_size(dtype);
    memset(y, 0, (size_t)(p->count * s->m * s->n) * esize);
    for (int64_t i = 0; i < p->count; i++) {
        int64_t ai, bi;
        batch_matrices(p, i, &ai, &bi);
        gemm_reference(dtype, s, (const char *)a + (size_t)(ai * s->m * s->k) * esize,
                       (const char *)b + (size_t)(bi * s->k * s->n) * esize,
                       (char *)y + (size_t)(i * s->m * s->n) * esize);
    }
}

/* ---- oneDNN fast path (float32) ---- */

/* Products smaller than this many multiply-adds stay on the reference loops,
 * where a call into oneDNN would cost more than it saves. */
#define FAST_MIN_MACS 32768.0

static int fast_path_fits(gf_dtype dtype, const gf_gemm_batches *p)
{
    const gf_gemm_shape *s = &p->shape;
    return dtype == GF_FLOAT && s->m > 0 && s->n > 0 && s->k > 0 && (double)s->m * s->n * s->k >= FAST_MIN_MACS;
}

/* A plan depends on the 2-D shape only; all int64 so the key has no padding.
 * `family` keeps it apart from other families' keys in the shared cache. */
typedef struct matmul_key {
    int64_t family, m, n, k, trans_a, trans_b;
} matmul_key;

#define MATMUL_FAMILY 0x6d61746d756cll   /* "matmul" */

static gf_status build_matmul_plan(gf_dnnl_plan *plan, const void *arg)
{
    const matmul_key *key = arg;
    int64_t a_dims[2] = {key->m, key->k}, b_dims[2] = {key->k, key->n}, y_dims[2] = {key->m, key->n};
    int64_t a_strides[2] = {key->trans_a ? 1 : key->k, key->trans_a ? key->m : 1};
    int64_t b_strides[2] = {key->trans_b ? 1 : key->n, key->trans_b ? key->k : 1};
    gf_dnnl_arg_desc args[3] = {{.arg = DNNL_ARG_SRC}, {.arg = DNNL_ARG_WEIGHTS}, {.arg = DNNL_ARG_DST, .is_output = 1}};
    dnnl_matmul_desc_t desc;
    if (gf_dnnl_md(&args[0].user, 2, a_dims, a_strides) != dnnl_success ||
        gf_dnnl_md(&args[1].user, 2, b_dims, b_strides) != dnnl_success ||
        gf_dnnl_md(&args[2].user, 2, y_dims, NULL) != dnnl_success ||
        dnnl_matmul_desc_init(&desc, &args[0].user, &args[1].user, NULL, &args[2].user) != dnnl_success)
        return GF_OK;   /* no primitive: the reference runs */
    return gf_dnnl_plan_build(plan, &desc, 3, args);
}

static matmul_key key_of(const gf_gemm_shape *s)
{
    return (matmul_key){MATMUL_FAMILY, s->m, s->n, s->k, s->trans_a, s->trans_b};
}

/* At plan time: creates the primitive now, so that the first run does not pay for it. */
static gf_status prepare_fast(gf_dtype dtype, const gf_gemm_batches *p)
{
    if (!fast_path_fits(dtype, p) || !gf_fastpath_enabled()) return GF_OK;
    matmul_key key = key_of(&p->shape);
    gf_dnnl_plan *plan;
    gf_status st = gf_dnnl_plan_get(&key, sizeof key, build_matmul_plan, &key, &plan);
    if (!st) gf_dnnl_plan_release(plan);
    return st;
}

/* ---- a few rows against large transposed weights (float32) ----
 * Y = A B with B stored [n, k] and A of 1 to GEMV_MAX_ROWS rows: the time is reading B
 * once, which dot products of contiguous rows do at the memory's pace (measured on the
 * 2-core machine: AlexNet's 9216 x 4096 fc6 at 26 GB/s, against oneDNN matmul's 18).
 * Each output is one thread's dot product in a fixed order, so the bits do not depend
 * on the thread count. */
#define GEMV_MAX_ROWS 4
#define GEMV_MIN_WEIGHTS (1 << 20)   /* elements of B: below, B sits in the caches */
#define GEMV_LANES 32                /* independent sums: enough to hide the add latency */
/* How far ahead in B to prefetch, in floats: the hardware prefetcher stops at each 4 KiB
 * page. With 4 rows streamed at once, prefetching 4 KiB ahead and the AVX-512 clone,
 * AlexNet's batch-1 Gemms went from 10.5 to 7.6 ms a run (2-core Xeon). */
#define GEMV_AHEAD 1024

static int gemv_fits(gf_dtype dtype, const gf_gemm_shape *s)
{
    return dtype == GF_FLOAT && s->trans_b && !s->trans_a && s->m >= 1 && s->m <= GEMV_MAX_ROWS &&
           (double)s->n * (double)s->k >= GEMV_MIN_WEIGHTS;
}

/* a . b[i] for GEMV_STREAMS rows of B at once: rows streamed side by side keep more
 * reads in flight. Each sum in the same order as a lone dot product would take. */
#define GEMV_STREAMS 4
__attribute__((target_clones("avx512f", "avx2", "default"))) static void dot_rows(const float *a,
                                                                                   const float *const *b, int64_t k,
                                                                                   float *y)
{
    float lane[GEMV_STREAMS][GEMV_LANES] = {{0}}, sum[GEMV_STREAMS] = {0};
    int64_t p = 0;
    for (; p + GEMV_LANES <= k; p += GEMV_LANES)
        for (int i = 0; i < GEMV_STREAMS; i++) {
            __builtin_prefetch(b[i] + p + GEMV_AHEAD); /* the two cache lines of the next 32 floats */
            __builtin_prefetch(b[i] + p + GEMV_AHEAD + 16);
            for (int l = 0; l < GEMV_LANES; l++) lane[i][l] += a[p + l] * b[i][p + l];
        }
    for (int i = 0; i < GEMV_STREAMS; i++) {
        for (int64_t q = p; q < k; q++) sum[i] += a[q] * b[i][q];
        for (int l = 0; l < GEMV_LANES; l++) sum[i] += lane[i][l];
        y[i] = sum[i];
    }
}

static void batch_gemv(const gf_gemm_batches *p, const float *a, const float *b, float *y)
{
    const gf_gemm_shape *s = &p->shape;
    for (int64_t i = 0; i < p->count; i++) {
        int64_t ai, bi;
        batch_matrices(p, i, &ai, &bi);
        const float *am = a + ai * s->m * s->k, *bm = b + bi * s->k * s->n;
        float *ym = y + i * s->m * s->n;
        int64_t groups = (s->n + GEMV_STREAMS - 1) / GEMV_STREAMS;
#pragma omp parallel for schedule(static)
        for (int64_t q = 0; q < groups; q++) {
            const float *rows[GEMV_STREAMS];
            int64_t j0 = q * GEMV_STREAMS, n = s->n - j0 < GEMV_STREAMS ? s->n - j0 : GEMV_STREAMS;
            for (int i = 0; i < GEMV_STREAMS; i++) rows[i] = bm + (j0 + (i < n ? i : 0)) * s->k; /* short group: repeats */
            for (int64_t r = 0; r < s->m; r++) {
                float out[GEMV_STREAMS];
                dot_rows(am + r * s->k, rows, s->k, out);
                memcpy(ym + r * s->n + j0, out, (size_t)n * sizeof *out);
            }
        }
    }
}

/* Every batch of the plan through one primitive; GF_ERR_UNSUPPORTED when
 * oneDNN has no implementation. */
static gf_status batch_fast(const gf_gemm_batches *p, const float *a, const float *b, float *y)
{
    const gf_gemm_shape *s = &p->shape;
    matmul_key key = key_of(s);
    gf_dnnl_plan *plan;
    gf_status st = gf_dnnl_plan_get(&key, sizeof key, build_matmul_plan, &key, &plan);
    if (st) return st;
    if (!plan->prim) st = gf_fail(GF_ERR_UNSUPPORTED, "oneDNN has no matmul for these shapes");
    for (int64_t i = 0; i < p->count && !st; i++) {
        int64_t ai, bi;
        batch_matrices(p, i, &ai, &bi);
        void *data[3] = {(void *)(a + ai * s->m * s->k), (void *)(b + bi * s->k * s->n), y + i * s->m * s->n};
        st = gf_dnnl_plan_run(plan, data);
    }
    gf_dnnl_plan_release(plan);
    return st;
}

/* Y = A B over the batches with the implementation asked for. */
static gf_status batch_run(gf_dtype dtype, const gf_gemm_batches *p, gf_impl impl, const void *a, const void *b, void *y)
{
    int fits = fast_path_fits(dtype, p);
    if (impl == GF_IMPL_FAST && !fits) return gf_fail(GF_ERR_UNSUPPORTED, "the fast path does not take these inputs");
    if (impl == GF_IMPL_FAST || (impl == GF_IMPL_AUTO && fits && gf_fastpath_enabled())) {
        if (gemv_fits(dtype, &p->shape)) {
            batch_gemv(p, a, b, y);
            return GF_OK;
        }
        gf_status st = batch_fast(p, a, b, y);
        if (st != GF_ERR_UNSUPPORTED || impl == GF_IMPL_FAST) return st;
    }
    batch_reference(dtype, p, a, b, y);
    return GF_OK;
}

/* ---- Gemm ---- */

gf_status gf_gemm_plan(const gf_op_ctx *ctx, gf_gemm_batches *p)
{
    const gf_tensor *a = ctx->inputs[0], *b = ctx->inputs[1];
    if (a->rank != 2 || b->rank != 2)
        return gf_fail(GF_ERR_SHAPE, "A and B must be matrices; they have ranks %d and %d", a->rank, b->rank);
    gf_gemm_shape *s = &p->shape;
    s->trans_a = gf_attr_int(ctx->node, "transA", 0) != 0;
    s->trans_b = gf_attr_int(ctx->node, "transB", 0) != 0;
    s->m = a->dims[s->trans_a];
    s->k = a->dims[!s->trans_a];
    s->n = b->dims[!s->trans_b];
    int64_t kb = b->dims[s->trans_b];
    if (kb != s->k)
        return gf_fail(GF_ERR_SHAPE, "A%s has %lld columns but B%s has %lld rows", s->trans_a ? "'" : "",
                       (long long)s->k, s->trans_b ? "'" : "", (long long)kb);
    p->count = 1;
    p->rank = 0;
    return GF_OK;
}

static gf_status gemm_infer(gf_op_ctx *ctx)
{
    /* C is required before opset 11. */
    gf_status st = gf_check_inputs(ctx, ctx->node->opset < 11 ? 3 : 2, 3);
    if (st) return st;
    static const gf_dtype allowed[] = {GF_FLOAT, GF_DOUBLE, GF_UNDEFINED};
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (!ctx->inputs[i]) continue;
        if ((st = gf_check_dtype(ctx, i, allowed))) return st;
        if (ctx->inputs[i]->dtype != ctx->inputs[0]->dtype)
            return gf_fail(GF_ERR_SHAPE, "input %d is %s but A is %s", i, gf_dtype_name(ctx->inputs[i]->dtype),
                           gf_dtype_name(ctx->inputs[0]->dtype));
    }
    gf_gemm_batches p;
    if ((st = gf_gemm_plan(ctx, &p))) return st;
    int64_t dims[2] = {p.shape.m, p.shape.n};
    const gf_tensor *c = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (c) {
        /* Before opset 7, C broadcasts only when the broadcast attribute says so. */
        int exact = ctx->node->opset < 7 && !gf_attr_int(ctx->node, "broadcast", 0);
        int ok = exact ? c->rank == 2 && c->dims[0] == dims[0] && c->dims[1] == dims[1] : c->rank <= 2;
        for (int d = 0; ok && d < c->rank; d++) {
            int64_t want = dims[d + 2 - c->rank];
            ok = c->dims[d] == 1 || c->dims[d] == want;
        }
        char buf[128];
        if (!ok)
            return gf_fail(GF_ERR_SHAPE, "C has shape %s, which does not %s [%lld,%lld]",
                           gf_shape_str(c, buf, sizeof buf), exact ? "equal (broadcast=0)" : "broadcast to",
                           (long long)dims[0], (long long)dims[1]);
    }
    gf_set_shape(ctx->outputs[0], ctx->inputs[0]->dtype, 2, dims);
    return prepare_fast(ctx->inputs[0]->dtype, &p);
}

/* Y = alpha * Y + beta * C, C broadcast to Y's shape. */
#define GEMM_EPILOGUE(T)                                                                      \
    do {                                                                                      \
        T *yd = y->data;                                                                      \
        const T *cd = c ? c->data : NULL;                                                     \
        _Pragma("omp parallel for schedule(static) if (y->dims[0] * y->dims[1] > 65536)")     \
        for (int64_t i = 0; i < y->dims[0]; i++)                                              \
            for (int64_t j = 0; j < y->dims[1]; j++) {                                        \
                T *v = &yd[i * y->dims[1] + j];                                               \
                *v = (T)(alpha * *v + (cd ? beta * cd[i * strides[0] + j * strides[1]] : 0)); \
            }                                                                                 \
    } while (0)

static void gemm_epilogue(gf_tensor *y, double alpha, const gf_tensor *c, double beta)
{
    if (beta == 0) c = NULL;   /* C does not contribute at all, not even its NaNs */
    if (alpha == 1 && !c) return;
    int64_t strides[2] = {0, 0};
    if (c) gf_broadcast_strides(c, 2, y->dims, strides);
    if (y->dtype == GF_FLOAT) GEMM_EPILOGUE(float);
    else GEMM_EPILOGUE(double);   /* infer admits only float and double */
}

/* ---- MatMul and its quantized forms ---- */

/* numpy.matmul's shapes: a 1-D A is a row [1, k], a 1-D B a column [k, 1]
 * (both dropped from the result); the dims before the last two broadcast. */
gf_status gf_matmul_plan(const gf_tensor *a, const gf_tensor *b, gf_gemm_batches *p, int *out_rank, int64_t *out_dims)
{
    *out_rank = 0;
    if (a->rank < 1 || b->rank < 1)
        return gf_fail(GF_ERR_SHAPE, "MatMul's inputs need at least one dim; they have ranks %d and %d", a->rank,
                       b->rank);
    gf_gemm_shape *s = &p->shape;
    s->trans_a = s->trans_b = 0;
    s->m = a->rank > 1 ? a->dims[a->rank - 2] : 1;
    s->k = a->dims[a->rank - 1];
    s->n = b->rank > 1 ? b->dims[b->rank - 1] : 1;
    int64_t kb = b->dims[b->rank > 1 ? b->rank - 2 : 0];
    if (kb != s->k) {
        char sa[128], sb[128];
        return gf_fail(GF_ERR_SHAPE, "A %s has %lld columns but B %s has %lld rows", gf_shape_str(a, sa, sizeof sa),
                       (long long)s->k, gf_shape_str(b, sb, sizeof sb), (long long)kb);
    }
    gf_tensor a_batch = {0}, b_batch = {0};
    a_batch.rank = a->rank > 2 ? a->rank - 2 : 0;
    b_batch.rank = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(a_batch.dims, a->dims, sizeof(int64_t) * a_batch.rank);
    memcpy(b_batch.dims, b->dims, sizeof(int64_t) * b_batch.rank);
    gf_status st = gf_broadcast_shape(&a_batch, &b_batch, &p->rank, p->dims);
    if (st) return st;
    gf_broadcast_strides(&a_batch, p->rank, p->dims, p->a_strides);
    gf_broadcast_strides(&b_batch, p->rank, p->dims, p->b_strides);
    p->count = 1;
    for (int d = 0; d < p->rank; d++) p->count *= p->dims[d];
    for (int d = 0; d < p->rank; d++) out_dims[(*out_rank)++] = p->dims[d];
    if (a->rank > 1) out_dims[(*out_rank)++] = s->m;
    if (b->rank > 1) out_dims[(*out_rank)++] = s->n;

    /* A stack of As against one B is a single taller product. */
    int b_shared = 1;
    for (int d = 0; d < p->rank; d++) b_shared &= p->b_strides[d] == 0;
    if (p->count > 1 && b_shared && gf_tensor_numel(&a_batch) == p->count) {
        s->m *= p->count;
        p->count = 1;
        p->rank = 0;
    }
    return GF_OK;
}

static gf_status matmul_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (st) return st;
    static const gf_dtype allowed[] = {GF_FLOAT, GF_DOUBLE, GF_INT32, GF_INT64, GF_UNDEFINED};
    if ((st = gf_check_dtype(ctx, 0, allowed))) return st;
    if (ctx->inputs[1]->dtype != ctx->inputs[0]->dtype)
        return gf_fail(GF_ERR_SHAPE, "A is %s but B is %s", gf_dtype_name(ctx->inputs[0]->dtype),
                       gf_dtype_name(ctx->inputs[1]->dtype));
    gf_gemm_batches p;
    int rank;
    int64_t dims[GF_MAX_RANK];
    if ((st = gf_matmul_plan(ctx->inputs[0], ctx->inputs[1], &p, &rank, dims))) return st;
    gf_set_shape(ctx->outputs[0], ctx->inputs[0]->dtype, rank, dims);
    return prepare_fast(ctx->inputs[0]->dtype, &p);
}

/* ---- the kernels with the implementation chosen (Gemm and MatMul) ---- */

gf_status gf_gemm_cpu_impl(gf_op_ctx *ctx, gf_impl impl)
{
    int is_gemm = !strcmp(ctx->node->op_type, "Gemm");
    gf_gemm_batches p;
    int rank;
    int64_t dims[GF_MAX_RANK];
    gf_status st = is_gemm ? gf_gemm_plan(ctx, &p) : gf_matmul_plan(ctx->inputs[0], ctx->inputs[1], &p, &rank, dims);
    gf_tensor *y = ctx->outputs[0];
    if (!st) st = batch_run(y->dtype, &p, impl, ctx->inputs[0]->data, ctx->inputs[1]->data, y->data);
    if (!st && is_gemm)
        gemm_epilogue(y, gf_attr_float(ctx->node, "alpha", 1.0f), ctx->n_inputs > 2 ? ctx->inputs[2] : NULL,
                      gf_attr_float(ctx->node, "beta", 1.0f));
    return st;
}

static gf_status gemm_matmul_cpu(gf_op_ctx *ctx) { return gf_gemm_cpu_impl(ctx, GF_IMPL_AUTO); }

/* A zero point is one value for the whole tensor, or (as a 1-D tensor) one per
 * row of A or per column of B: `groups` values, element e using
 * (e / group_stride) % groups. */
static gf_status check_zero_point(const gf_op_ctx *ctx, int q, int zp, int64_t groups)
{
    const gf_tensor *t = ctx->inputs[zp];
    if (!t) return GF_OK;
    if (t->dtype != ctx->inputs[q]->dtype)
        return gf_fail(GF_ERR_SHAPE, "zero point (input %d) is %s but its tensor is %s", zp,
                       gf_dtype_name(t->dtype), gf_dtype_name(ctx->inputs[q]->dtype));
    int64_t count = gf_tensor_numel(t);
    if (count != 1 && !(t->rank == 1 && count == groups))
        return gf_fail(GF_ERR_UNSUPPORTED, "zero point (input %d) has %lld values; graft takes 1 or %lld (one per %s)",
                       zp, (long long)count, (long long)groups, q == 0 ? "row of A" : "column of B");
    return GF_OK;
}

/* The quantized tensor as int32 less its zero point. */
static int32_t *dequantize_int(const gf_tensor *q, const gf_tensor *zp, int64_t group_stride, int64_t groups)
{
    int64_t n = gf_tensor_numel(q);
    int32_t *out = malloc((size_t)n * sizeof(int32_t) + 1);
    if (!out) return NULL;
    int per_group = zp && gf_tensor_numel(zp) > 1;
    for (int64_t e = 0; e < n; e++)
        out[e] = (int32_t)gf_int_at(q, e) - (zp ? (int32_t)gf_int_at(zp, per_group ? (e / group_stride) % groups : 0) : 0);
    return out;
}

/* The integer product of quantized A (input 0) and B (input b_input), zero
 * points a_zp and b_zp (-1 for none), into the int32 array y. */
static gf_status quantized_product(gf_op_ctx *ctx, int b_input, int a_zp, int b_zp, int32_t *y)
{
    const gf_tensor *a = ctx->inputs[0], *b = ctx->inputs[b_input];
    gf_gemm_batches p;
    int rank;
    int64_t dims[GF_MAX_RANK];
    gf_status st = gf_matmul_plan(a, b, &p, &rank, dims);
    if (st) return st;
    int64_t m = a->rank > 1 ? a->dims[a->rank - 2] : 1, k = a->dims[a->rank - 1], n = p.shape.n;
    int32_t *ai = dequantize_int(a, a_zp >= 0 ? ctx->inputs[a_zp] : NULL, k, m);
    int32_t *bi = dequantize_int(b, b_zp >= 0 ? ctx->inputs[b_zp] : NULL, 1, n);
    if (ai && bi) batch_reference(GF_INT32, &p, ai, bi, y);
    else st = gf_fail(GF_ERR_NOMEM, "out of memory widening the quantized inputs");
    free(ai);
    free(bi);
    return st;
}

static gf_status check_quantized(gf_op_ctx *ctx, int b_input, int a_zp, int b_zp, int *rank, int64_t *dims)
{
    static const gf_dtype eight_bit[] = {GF_UINT8, GF_INT8, GF_UNDEFINED};
    gf_status st;
    if ((st = gf_check_dtype(ctx, 0, eight_bit)) || (st = gf_check_dtype(ctx, b_input, eight_bit))) return st;
    const gf_tensor *a = ctx->inputs[0], *b = ctx->inputs[b_input];
    gf_gemm_batches p;
    if ((st = gf_matmul_plan(a, b, &p, rank, dims))) return st;
    int64_t m = a->rank > 1 ? a->dims[a->rank - 2] : 1, n = b->rank > 1 ? b->dims[b->rank - 1] : 1;
    if ((a_zp < ctx->n_inputs && (st = check_zero_point(ctx, 0, a_zp, m))) ||
        (b_zp < ctx->n_inputs && (st = check_zero_point(ctx, b_input, b_zp, n))))
        return st;
    return GF_OK;
}

/* MatMulInteger(A, B, a_zero_point?, b_zero_point?) -> int32 */
static gf_status matmul_integer_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 4);
    int rank;
    int64_t dims[GF_MAX_RANK];
    if (st || (st = check_quantized(ctx, 1, 2, 3, &rank, dims))) return st;
    gf_set_shape(ctx->outputs[0], GF_INT32, rank, dims);
    return GF_OK;
}

static gf_status matmul_integer_cpu(gf_op_ctx *ctx)
{
    return quantized_product(ctx, 1, ctx->n_inputs > 2 ? 2 : -1, ctx->n_inputs > 3 ? 3 : -1,
                             ctx->outputs[0]->data);
}

/* QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
 * y = saturate(rint((A - a_zp)(B - b_zp) * a_scale * b_scale / y_scale) + y_zp). */
static gf_status qlinear_matmul_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 8, 8);
    int rank;
    int64_t dims[GF_MAX_RANK];
    if (st || (st = check_quantized(ctx, 3, 2, 5, &rank, dims))) return st;
    static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};
    static const int scales[] = {1, 4, 6};
    for (int i = 0; i < 3; i++) {
        if ((st = gf_check_dtype(ctx, scales[i], float_only))) return st;
        if (gf_tensor_numel(ctx->inputs[scales[i]]) != 1)
            return gf_fail(GF_ERR_UNSUPPORTED, "scale (input %d) has %lld values; graft takes one per tensor",
                           scales[i], (long long)gf_tensor_numel(ctx->inputs[scales[i]]));
    }
    const gf_tensor *y_zp = ctx->inputs[7];
    if ((y_zp->dtype != GF_UINT8 && y_zp->dtype != GF_INT8) || gf_tensor_numel(y_zp) != 1)
        return gf_fail(GF_ERR_UNSUPPORTED, "y_zero_point must be one uint8 or int8 value");
    gf_set_shape(ctx->outputs[0], y_zp->dtype, rank, dims);
    return GF_OK;
}

static gf_status qlinear_matmul_cpu(gf_op_ctx *ctx)
{
    gf_tensor *y = ctx->outputs[0];
    int64_t n = gf_tensor_numel(y);
    int32_t *acc = malloc((size_t)n * sizeof(int32_t) + 1);
    if (!acc) return gf_fail(GF_ERR_NOMEM, "out of memory for the int32 product");
    gf_status st = quantized_product(ctx, 3, 2, 5, acc);
    if (!st) {
        const float *a_scale = ctx->inputs[1]->data, *b_scale = ctx->inputs[4]->data, *y_scale = ctx->inputs[6]->data;
        float factor = a_scale[0] * b_scale[0] / y_scale[0];
        double zero = (double)gf_int_at(ctx->inputs[7], 0);
        double lo = y->dtype == GF_UINT8 ? 0 : -128, hi = y->dtype == GF_UINT8 ? 255 : 127;
        for (int64_t e = 0; e < n; e++) {
            double v = rint(acc[e] * (double)factor + zero);
            gf_num_set(y, e, v < lo ? lo : v > hi ? hi : v);
        }
    }
    free(acc);
    return st;
}

const gf_op gf_ops_gemm[] = {
    {"", "Gemm", 6, 0, gemm_infer, gemm_matmul_cpu},
    {"", "MatMul", 1, 0, matmul_infer, gemm_matmul_cpu},
    {"", "MatMulInteger", 10, 0, matmul_integer_infer, matmul_integer_cpu},
    {"", "QLinearMatMul", 10, 0, qlinear_matmul_infer, qlinear_matmul_cpu},
    {0},
};
