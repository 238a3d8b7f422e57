/* Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare and
 * ArgMax/ArgMin.
 *
 * One reducer serves them all. The input's axes split into kept axes (which
 * index the output) and reduced axes; each output element starts at a base
 * offset found from its kept coordinates and reads its reduced elements as
 * strided runs at a table of offsets from that base. This handles any set of
 * axes, contiguous or not, with one loop; each op only says how to start,
 * accumulate a block and finish. Floating types accumulate in double;
 * int32/int64 in 64-bit integers, wrapping like the stored type would. */
#include "reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum reduce_kind {
    R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOG_SUM, R_LOG_SUM_EXP, R_SUM_SQUARE,
} reduce_kind;

typedef struct reducer {
    const char *op_type;
    reduce_kind kind;
    int axes_input_since;   /* opset from which axes come as input 1 instead of an attribute */
    int integer_ok;         /* exact in integer arithmetic */
} reducer;

static const reducer reducers[] = {
    {"ReduceSum", R_SUM, 13, 1},
    {"ReduceMean", R_MEAN, 18, 1},
    {"ReduceMax", R_MAX, 18, 1},
    {"ReduceMin", R_MIN, 18, 1},
    {"ReduceProd", R_PROD, 18, 1},
    {"ReduceL1", R_L1, 18, 1},
    {"ReduceL2", R_L2, 18, 0},
    {"ReduceLogSum", R_LOG_SUM, 18, 0},
    {"ReduceLogSumExp", R_LOG_SUM_EXP, 18, 0},
    {"ReduceSumSquare", R_SUM_SQUARE, 18, 1},
};

static const reducer *find_reducer(const char *op_type)
{
    for (size_t i = 0; i < sizeof reducers / sizeof *reducers; i++)
        if (!strcmp(reducers[i].op_type, op_type)) return &reducers[i];
    return NULL;
}

static int is_floating(gf_dtype t) { return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16; }
static int is_integer(gf_dtype t) { return t == GF_INT32 || t == GF_INT64; }

/* ---- which axes, and the output shape ---- */

static gf_status mark_axis(const gf_op_ctx *ctx, int64_t axis, int rank, gf_reduce_axes *r)
{
    int a;
    gf_status st = gf_axis(ctx, axis, rank, &a);
    if (st) return st;
    if (r->reduced[a]) return gf_fail(GF_ERR_INVALID, "axis %lld is listed twice", (long long)axis);
    r->reduced[a] = 1;
    return GF_OK;
}

gf_status gf_reduce_read_axes(const gf_op_ctx *ctx, int axes_as_input, gf_reduce_axes *r, int *dynamic)
{
    const gf_tensor *x = ctx->inputs[0];
    memset(r, 0, sizeof *r);
    r->keepdims = gf_attr_int(ctx->node, "keepdims", 1) != 0;
    *dynamic = 0;
    int n_axes = 0;
    gf_status st = GF_OK;
    if (axes_as_input) {
        const gf_tensor *axes = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
        if (axes) {
            if (axes->dtype != GF_INT64)
                return gf_fail(GF_ERR_INVALID, "axes must be int64, not %s", gf_dtype_name(axes->dtype));
            if (axes->rank != 1) return gf_fail(GF_ERR_INVALID, "axes must be 1-D, has rank %d", axes->rank);
            n_axes = (int)(axes->dims[0] < 0 ? 0 : axes->dims[0]);
            if (n_axes > 0 && !axes->data) {
                *dynamic = 1;
                return GF_OK;
            }
            if (n_axes > x->rank)
                return gf_fail(GF_ERR_INVALID, "%d axes given for an input of rank %d", n_axes, x->rank);
            for (int i = 0; i < n_axes && !st; i++) st = mark_axis(ctx, gf_int_at(axes, i), x->rank, r);
        }
        /* Empty axes with noop_with_empty_axes reduce over no axis at all: each
         * output is its one input element, still through the op's abs/square/log. */
        if (n_axes == 0 && gf_attr_int(ctx->node, "noop_with_empty_axes", 0)) return GF_OK;
    } else {
        const int64_t *axes = gf_attr_ints(ctx->node, "axes", &n_axes);
        if (n_axes > x->rank)
            return gf_fail(GF_ERR_INVALID, "%d axes given for an input of rank %d", n_axes, x->rank);
        for (int i = 0; i < n_axes && !st; i++) st = mark_axis(ctx, axes[i], x->rank, r);
    }
    if (st) return st;
    if (n_axes == 0)
        for (int d = 0; d < x->rank; d++) r->reduced[d] = 1;
    return GF_OK;
}

static void reduced_shape(const gf_tensor *x, const gf_reduce_axes *r, int *rank, int64_t *dims)
{
    int n = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!r->reduced[d]) dims[n++] = x->dims[d];
        else if (r->keepdims) dims[n++] = 1;
    }
    *rank = n;
}

/* ---- the generic reducer ---- */

/* The reduced elements of one output are `n_runs` runs of `run_len` elements
 * `run_stride` apart (the innermost reduced axis), each run starting at
 * base + run_offsets[i]. Size-1 axes are dropped and neighbouring axes that are
 * both kept or both reduced are merged first, so reducing trailing axes is one
 * contiguous run per output. */
typedef struct reduce_geom {
    int n_kept;
    int64_t kept_dims[GF_MAX_RANK], kept_strides[GF_MAX_RANK];
    int64_t n_out, n_red;
    int64_t n_runs, run_len, run_stride;
    int64_t *run_offsets;
} reduce_geom;

static gf_status make_geom(const gf_tensor *x, const unsigned char *reduced, reduce_geom *g)
{
    int64_t strides[GF_MAX_RANK], s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= x->dims[d];
    }
    /* Coalesced axes: dims, strides and whether reduced. */
    int64_t cd[GF_MAX_RANK], cs[GF_MAX_RANK];
    unsigned char cr[GF_MAX_RANK];
    int n = 0;
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1) continue;
        if (n > 0 && cr[n - 1] == reduced[d]) {
            cd[n - 1] *= x->dims[d];
            cs[n - 1] = strides[d];
        } else {
            cd[n] = x->dims[d];
            cs[n] = strides[d];
            cr[n++] = reduced[d];
        }
    }
    int red_axes[GF_MAX_RANK], n_red_axes = 0;
    g->n_kept = 0;
    g->n_out = g->n_red = 1;
    for (int k = 0; k < n; k++) {
        if (cr[k]) {
            red_axes[n_red_axes++] = k;
            g->n_red *= cd[k];
        } else {
            g->kept_dims[g->n_kept] = cd[k];
            g->kept_strides[g->n_kept++] = cs[k];
            g->n_out *= cd[k];
        }
    }
    g->run_len = n_red_axes ? cd[red_axes[n_red_axes - 1]] : 1;
    g->run_stride = n_red_axes ? cs[red_axes[n_red_axes - 1]] : 1;
    g->n_runs = g->run_len ? g->n_red / g->run_len : 0;
    g->run_offsets = malloc((size_t)(g->n_runs ? g->n_runs : 1) * sizeof *g->run_offsets);
    if (!g->run_offsets) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld reduction offsets", (long long)g->n_runs);
    /* Row-major walk over the outer reduced axes: runs come out in axis order. */
    int64_t idx[GF_MAX_RANK] = {0}, off = 0;
    for (int64_t r = 0; r < g->n_runs; r++) {
        g->run_offsets[r] = off;
        for (int k = n_red_axes - 2; k >= 0; k--) {
            int d = red_axes[k];
            off += cs[d];
            if (++idx[k] < cd[d]) break;
            off -= idx[k] * cs[d];
            idx[k] = 0;
        }
    }
    return GF_OK;
}

static int64_t base_offset(const reduce_geom *g, int64_t o)
{
    int64_t off = 0;
    for (int k = g->n_kept - 1; k >= 0; k--) {
        off += (o % g->kept_dims[k]) * g->kept_strides[k];
        o /= g->kept_dims[k];
    }
    return off;
}

#define BLOCK 256

/* Loads n elements starting at `start`, `stride` apart, into buf. */
static void gather_f64(const gf_tensor *x, int64_t start, int64_t stride, int n, double *buf)
{
    switch (x->dtype) {
    case GF_FLOAT: {
        const float *p = (const float *)x->data + start;
        if (stride == 1)
            for (int i = 0; i < n; i++) buf[i] = p[i];
        else
            for (int i = 0; i < n; i++) buf[i] = p[i * stride];
        break;
    }
    case GF_DOUBLE: {
        const double *p = (const double *)x->data + start;
        for (int i = 0; i < n; i++) buf[i] = p[i * stride];
        break;
    }
    default: for (int i = 0; i < n; i++) buf[i] = gf_num_at(x, start + i * stride); break;
    }
}

static void gather_i64(const gf_tensor *x, int64_t start, int64_t stride, int n, int64_t *buf)
{
    if (x->dtype == GF_INT32)
        for (int i = 0; i < n; i++) buf[i] = ((const int32_t *)x->data)[start + i * stride];
    else
        for (int i = 0; i < n; i++) buf[i] = ((const int64_t *)x->data)[start + i * stride];
}

/* Walks the reduced elements of one output in blocks of at most BLOCK. */
typedef struct block_iter {
    int64_t run, pos;
} block_iter;

/* Sets *start to the next block's first element and returns its length; 0 at the end. */
static int next_block(const reduce_geom *g, block_iter *it, int64_t base, int64_t *start)
{
    if (it->pos >= g->run_len) {
        it->run++;
        it->pos = 0;
    }
    if (it->run >= g->n_runs || g->run_len == 0) return 0;
    int n = (int)(g->run_len - it->pos < BLOCK ? g->run_len - it->pos : BLOCK);
    *start = base + g->run_offsets[it->run] + it->pos * g->run_stride;
    it->pos += n;
    return n;
}

/* Running state of one floating reduction; `max` serves LogSumExp's scaling. */
typedef struct acc_f64 {
    double acc, max;
} acc_f64;

static acc_f64 start_f64(reduce_kind k)
{
    acc_f64 a = {0, -INFINITY};
    if (k == R_PROD) a.acc = 1;
    if (k == R_MAX) a.acc = -INFINITY;
    if (k == R_MIN) a.acc = INFINITY;
    return a;
}

/* Sum of f(v[i]) in four interleaved partial sums, so the adds do not wait on each other. */
#define PARTIAL_SUMS(s, v, n, f)                                                  \
    do {                                                                          \
        double p0 = 0, p1 = 0, p2 = 0, p3 = 0;                                    \
        int i = 0;                                                                \
        for (; i + 4 <= (n); i += 4) {                                            \
            p0 += f((v)[i]), p1 += f((v)[i + 1]), p2 += f((v)[i + 2]), p3 += f((v)[i + 3]); \
        }                                                                         \
        for (; i < (n); i++) p0 += f((v)[i]);                                     \
        (s) += (p0 + p1) + (p2 + p3);                                             \
    } while (0)
#define SAME(v) (v)
#define SQUARE(v) ((v) * (v))

static void step_f64(reduce_kind k, acc_f64 *a, const double *v, int n)
{
    double s = a->acc;
    switch (k) {
    case R_SUM: case R_MEAN: case R_LOG_SUM: PARTIAL_SUMS(s, v, n, SAME); break;
    case R_L1: PARTIAL_SUMS(s, v, n, fabs); break;
    case R_L2: case R_SUM_SQUARE: PARTIAL_SUMS(s, v, n, SQUARE); break;
    case R_PROD: for (int i = 0; i < n; i++) s *= v[i]; break;
    case R_MAX: for (int i = 0; i < n; i++) if (v[i] > s || v[i] != v[i]) s = v[i]; break;
    case R_MIN: for (int i = 0; i < n; i++) if (v[i] < s || v[i] != v[i]) s = v[i]; break;
    case R_LOG_SUM_EXP:
        /* Online log-sum-exp: s is the sum of exp(v - max) so far. */
        for (int i = 0; i < n; i++) {
            if (v[i] > a->max) {
                s = s * exp(a->max - v[i]) + 1;
                a->max = v[i];
            } else {
                s += exp(v[i] - a->max);
            }
        }
        break;
    }
    a->acc = s;
}

static double finish_f64(reduce_kind k, const acc_f64 *a, int64_t n)
{
    switch (k) {
    case R_MEAN: return a->acc / (double)n;
    case R_L2: return sqrt(a->acc);
    case R_LOG_SUM: return log(a->acc);
    case R_LOG_SUM_EXP: return isfinite(a->max) ? a->max + log(a->acc) : a->max;
    default: return a->acc;
    }
}

/* Integer reductions wrap (unsigned arithmetic) instead of overflowing. */
static int64_t reduce_i64(reduce_kind k, int64_t acc, const int64_t *v, int n)
{
    uint64_t u = (uint64_t)acc;
    switch (k) {
    case R_SUM: case R_MEAN: for (int i = 0; i < n; i++) u += (uint64_t)v[i]; break;
    case R_L1: for (int i = 0; i < n; i++) u += v[i] < 0 ? 0 - (uint64_t)v[i] : (uint64_t)v[i]; break;
    case R_SUM_SQUARE: for (int i = 0; i < n; i++) u += (uint64_t)v[i] * (uint64_t)v[i]; break;
    case R_PROD: for (int i = 0; i < n; i++) u *= (uint64_t)v[i]; break;
    case R_MAX: for (int i = 0; i < n; i++) if (v[i] > acc) acc = v[i]; return acc;
    case R_MIN: for (int i = 0; i < n; i++) if (v[i] < acc) acc = v[i]; return acc;
    default: break;
    }
    return (int64_t)u;
}

static int64_t start_i64(reduce_kind k, gf_dtype t)
{
    if (k == R_PROD) return 1;
    if (k == R_MAX) return t == GF_INT32 ? INT32_MIN : INT64_MIN;
    if (k == R_MIN) return t == GF_INT32 ? INT32_MAX : INT64_MAX;
    return 0;
}

static void store_i64(gf_tensor *y, int64_t i, int64_t v)
{
    if (y->dtype == GF_INT32) ((int32_t *)y->data)[i] = (int32_t)(uint32_t)(uint64_t)v;
    else ((int64_t *)y->data)[i] = v;
}

static void reduce_floating(const gf_tensor *x, gf_tensor *y, const reduce_geom *g, reduce_kind k)
{
#pragma omp parallel for schedule(static) if (g->n_out * g->n_red > 32768)
    for (int64_t o = 0; o < g->n_out; o++) {
        double buf[BLOCK];
        int64_t base = base_offset(g, o);
        acc_f64 a = start_f64(k);
        block_iter it = {0, 0};
        int64_t start;
        for (int n; (n = next_block(g, &it, base, &start));) {
            gather_f64(x, start, g->run_stride, n, buf);
            step_f64(k, &a, buf, n);
        }
        double v = finish_f64(k, &a, g->n_red);
        if (y->dtype == GF_FLOAT) ((float *)y->data)[o] = (float)v;
        else gf_num_set(y, o, v);
    }
}

static void reduce_integer(const gf_tensor *x, gf_tensor *y, const reduce_geom *g, reduce_kind k)
{
#pragma omp parallel for schedule(static) if (g->n_out * g->n_red > 32768)
    for (int64_t o = 0; o < g->n_out; o++) {
        int64_t buf[BLOCK];
        int64_t base = base_offset(g, o);
        int64_t acc = start_i64(k, x->dtype);
        block_iter it = {0, 0};
        int64_t start;
        for (int n; (n = next_block(g, &it, base, &start));) {
            gather_i64(x, start, g->run_stride, n, buf);
            acc = reduce_i64(k, acc, buf, n);
        }
        if (k == R_MEAN && g->n_red > 0) acc /= g->n_red;
        store_i64(y, o, acc);
    }
}

/* ---- ReduceX ---- */

static gf_status reduce_setup(gf_op_ctx *ctx, const reducer **red, gf_reduce_axes *axes, int *dynamic)
{
    *red = find_reducer(ctx->node->op_type);
    if (!*red) return gf_fail(GF_ERR_UNSUPPORTED, "no reducer for %s", ctx->node->op_type);
    int axes_as_input = ctx->node->opset >= (*red)->axes_input_since;
    gf_status st = gf_check_inputs(ctx, 1, axes_as_input ? 2 : 1);
    if (st) return st;
    gf_dtype t = ctx->inputs[0]->dtype;
    if (!is_floating(t) && !is_integer(t))
        return gf_fail(GF_ERR_UNSUPPORTED, "element type %s is not supported (float, double, float16, int32, int64)",
                       gf_dtype_name(t));
    if (is_integer(t) && !(*red)->integer_ok)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s on integer element type %s is not supported",
                       ctx->node->op_type, gf_dtype_name(t));
    return gf_reduce_read_axes(ctx, axes_as_input, axes, dynamic);
}

static gf_status reduce_infer(gf_op_ctx *ctx)
{
    const reducer *red;
    gf_reduce_axes axes;
    int dynamic;
    gf_status st = reduce_setup(ctx, &red, &axes, &dynamic);
    if (st) return st;
    if (dynamic) {
        ctx->outputs[0]->dtype = ctx->inputs[0]->dtype;
        ctx->outputs[0]->rank = GF_RANK_DYNAMIC;
        return GF_OK;
    }
    int rank;
    int64_t dims[GF_MAX_RANK];
    reduced_shape(ctx->inputs[0], &axes, &rank, dims);
    gf_set_shape(ctx->outputs[0], ctx->inputs[0]->dtype, rank, dims);
    return GF_OK;
}

static gf_status reduce_cpu(gf_op_ctx *ctx)
{
    const reducer *red;
    gf_reduce_axes axes;
    int dynamic;
    gf_status st = reduce_setup(ctx, &red, &axes, &dynamic);
    if (st) return st;
    if (dynamic) return gf_fail(GF_ERR_RUNTIME, "axes are not known when the kernel runs");
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    reduce_geom g;
    st = make_geom(x, axes.reduced, &g);
    if (st) return st;
    if (is_integer(x->dtype)) reduce_integer(x, y, &g, red->kind);
    else reduce_floating(x, y, &g, red->kind);
    free(g.run_offsets);
    return GF_OK;
}

/* ---- ArgMax / ArgMin ---- */

typedef struct arg_params {
    int axis, keepdims, last, is_max;
} arg_params;

static gf_status arg_setup(gf_op_ctx *ctx, arg_params *p)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (!is_floating(x->dtype) && !is_integer(x->dtype))
        return gf_fail(GF_ERR_UNSUPPORTED, "element type %s is not supported (float, double, float16, int32, int64)",
                       gf_dtype_name(x->dtype));
    if (x->rank < 1) return gf_fail(GF_ERR_INVALID, "input must have rank >= 1");
    st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), x->rank, &p->axis);
    p->keepdims = gf_attr_int(ctx->node, "keepdims", 1) != 0;
    p->last = gf_attr_int(ctx->node, "select_last_index", 0) != 0;
    p->is_max = !strcmp(ctx->node->op_type, "ArgMax");
    return st;
}

static gf_status arg_infer(gf_op_ctx *ctx)
{
    arg_params p;
    gf_status st = arg_setup(ctx, &p);
    if (st) return st;
    gf_reduce_axes axes = {0};
    axes.keepdims = p.keepdims;
    axes.reduced[p.axis] = 1;
    int rank;
    int64_t dims[GF_MAX_RANK];
    reduced_shape(ctx->inputs[0], &axes, &rank, dims);
    gf_set_shape(ctx->outputs[0], GF_INT64, rank, dims);
    return GF_OK;
}

/* Whether v should replace the best so far: ties go to the first index, or the
 * last with select_last_index. */
#define BETTER(v, best, p) ((p)->is_max ? ((p)->last ? (v) >= (best) : (v) > (best)) \
                                        : ((p)->last ? (v) <= (best) : (v) < (best)))

/* Index of the best element of one output's reduced row, scanned in blocks. */
static int64_t best_index(const gf_tensor *x, int64_t base, const reduce_geom *g, const arg_params *p)
{
    int64_t best_i = 0;
    if (is_integer(x->dtype)) {
        int64_t buf[BLOCK], best = 0;
        block_iter it = {0, 0};
        int64_t start, done = 0;
        for (int n; (n = next_block(g, &it, base, &start)); done += n) {
            gather_i64(x, start, g->run_stride, n, buf);
            for (int i = 0; i < n; i++)
                if (done + i == 0 || BETTER(buf[i], best, p)) best = buf[i], best_i = done + i;
        }
    } else {
        double buf[BLOCK], best = 0;
        block_iter it = {0, 0};
        int64_t start, done = 0;
        for (int n; (n = next_block(g, &it, base, &start)); done += n) {
            gather_f64(x, start, g->run_stride, n, buf);
            for (int i = 0; i < n; i++)
                if (done + i == 0 || BETTER(buf[i], best, p)) best = buf[i], best_i = done + i;
        }
    }
    return best_i;
}

static gf_status arg_cpu(gf_op_ctx *ctx)
{
    arg_params p;
    gf_status st = arg_setup(ctx, &p);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    int64_t *y = ctx->outputs[0]->data;
    if (x->dims[p.axis] == 0 && gf_tensor_numel(ctx->outputs[0]) > 0)
        return gf_fail(GF_ERR_INVALID, "cannot take %s over an empty axis", ctx->node->op_type);
    unsigned char reduced[GF_MAX_RANK] = {0};
    reduced[p.axis] = 1;
    reduce_geom g;
    st = make_geom(x, reduced, &g);
    if (st) return st;
#pragma omp parallel for schedule(static) if (g.n_out * g.n_red > 32768)
    for (int64_t o = 0; o < g.n_out; o++) y[o] = best_index(x, base_offset(&g, o), &g, &p);
    free(g.run_offsets);
    return GF_OK;
}

const gf_op gf_ops_reduce[] = {
    {"", "ReduceSum", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceMean", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceMax", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceMin", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceProd", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceL1", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceL2", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceLogSum", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceLogSumExp", 1, 0, reduce_infer, reduce_cpu},
    {"", "ReduceSumSquare", 1, 0, reduce_infer, reduce_cpu},
    {"", "ArgMax", 1, 0, arg_infer, arg_cpu},
    {"", "ArgMin", 1, 0, arg_infer, arg_cpu},
    {0},
};
