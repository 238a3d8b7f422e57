/* Ops that select, combine or place elements by position or index: Concat,
 * Split, Slice, Gather, GatherElements, GatherND, ScatterElements, Scatter,
 * ScatterND, Pad, Tile, OneHot, NonZero, CumSum, TopK, Compress,
 * ReverseSequence, DepthToSpace, SpaceToDepth.
 *
 * Kernels move bytes (gf_dtype_size), so they take any element type; only
 * CumSum, the scatter reductions and TopK's ordering look at values. Every
 * index read from a tensor is checked against its axis before it is used: an
 * index out of range is an error, never a read or write outside a tensor.
 * Shapes that depend on input values follow shape.c: computed in infer when
 * the values are known, GF_RANK_DYNAMIC until then. */
#include "index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gf_dtype index_types[] = {GF_INT32, GF_INT64, GF_UNDEFINED};

/* Product of dims[lo..hi). */
static int64_t span(const int64_t *dims, int lo, int hi)
{
    int64_t n = 1;
    for (int d = lo; d < hi; d++) n *= dims[d];
    return n;
}

/* Row-major element strides of t. */
static void strides_of(const gf_tensor *t, int64_t *strides) { gf_broadcast_strides(t, t->rank, t->dims, strides); }

/* Normalises a possibly negative index against an axis of size dim. */
static gf_status index_in(int64_t v, int64_t dim, int64_t *out)
{
    *out = 0;
    if (v < -dim || v >= dim)
        return gf_fail(GF_ERR_INVALID, "index %lld is out of range for an axis of size %lld", (long long)v, (long long)dim);
    *out = v < 0 ? v + dim : v;
    return GF_OK;
}

/* Advances row-major coordinates c over dims by one element. */
static void next_coord(int64_t *c, const int64_t *dims, int rank)
{
    for (int d = rank - 1; d >= 0; d--) {
        if (++c[d] < dims[d]) return;
        c[d] = 0;
    }
}

/* Coordinates of element `at` of a row-major array of shape dims (every dim > 0). */
static void coord_of(int64_t at, const int64_t *dims, int rank, int64_t *c)
{
    for (int d = rank - 1; d >= 0; d--) {
        c[d] = at % dims[d];
        at /= dims[d];
    }
}

static void copy_bytes(void *dst, const void *src, int64_t bytes)
{
    if (bytes > 0) memcpy(dst, src, (size_t)bytes);
}

/* ---- Concat, Split ---- */

gf_status gf_concat_axis(const gf_op_ctx *ctx, int *axis)
{
    const gf_tensor *first = ctx->inputs[0];
    if (first->rank < 1) return gf_fail(GF_ERR_INVALID, "cannot concatenate scalars");
    /* Opset 1-3 defaults the axis to 1; from 4 it is required. */
    int64_t a = gf_attr_int(ctx->node, "axis", ctx->node->opset < 4 ? 1 : INT64_MIN);
    if (a == INT64_MIN) return gf_fail(GF_ERR_INVALID, "the axis attribute is required");
    return gf_axis(ctx, a, first->rank, axis);
}

static gf_status concat_infer(gf_op_ctx *ctx)
{
    if (ctx->n_inputs < 1) return gf_fail(GF_ERR_INVALID, "needs at least one input");
    for (int i = 0; i < ctx->n_inputs; i++)
        if (!ctx->inputs[i]) return gf_fail(GF_ERR_INVALID, "input %d is missing", i);
    int axis;
    gf_status st = gf_concat_axis(ctx, &axis);
    if (st) return st;
    const gf_tensor *first = ctx->inputs[0];
    int64_t dims[GF_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < ctx->n_inputs; i++) {
        const gf_tensor *t = ctx->inputs[i];
        char a[128], b[128];
        if (t->dtype != first->dtype)
            return gf_fail(GF_ERR_SHAPE, "input %d is %s, input 0 %s", i, gf_dtype_name(t->dtype), gf_dtype_name(first->dtype));
        int same = t->rank == first->rank;
        for (int d = 0; same && d < t->rank; d++) same = d == axis || t->dims[d] == first->dims[d];
        if (!same)
            return gf_fail(GF_ERR_SHAPE, "input %d has shape %s, input 0 %s: they may differ only on axis %d", i,
                           gf_shape_str(t, a, sizeof a), gf_shape_str(first, b, sizeof b), axis);
        if (__builtin_add_overflow(dims[axis], t->dims[axis], &dims[axis]))
            return gf_fail(GF_ERR_SHAPE, "the concatenated axis is too large");
    }
    gf_set_shape(ctx->outputs[0], first->dtype, first->rank, dims);
    return GF_OK;
}

static gf_status concat_cpu(gf_op_ctx *ctx)
{
    int axis;
    gf_status st = gf_concat_axis(ctx, &axis);
    if (st) return st;
    gf_tensor *y = ctx->outputs[0];
    int64_t e = (int64_t)gf_dtype_size(y->dtype);
    int64_t outer = span(y->dims, 0, axis), inner = span(y->dims, axis + 1, y->rank) * e;
    char *dst = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < ctx->n_inputs; i++) {
            int64_t chunk = ctx->inputs[i]->dims[axis] * inner;
            copy_bytes(dst, (const char *)ctx->inputs[i]->data + o * chunk, chunk);
            dst += chunk;
        }
    return GF_OK;
}

gf_status gf_split_sizes(const gf_op_ctx *ctx, int *axis, int64_t *sizes, int *dynamic)
{
    const gf_tensor *x = ctx->inputs[0];
    int n = ctx->n_outputs, count = 0;
    *dynamic = 0;
    if (x->rank < 1) return gf_fail(GF_ERR_INVALID, "cannot split a scalar");
    if (n < 1) return gf_fail(GF_ERR_INVALID, "needs at least one output");
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), x->rank, axis);
    if (st) return st;
    const gf_tensor *given = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
    if (given) {
        if (given->rank == 1 && given->dims[0] != n && given->dims[0] != 0)
            return gf_fail(GF_ERR_INVALID, "split has %lld sizes for %d outputs", (long long)given->dims[0], n);
        if (!gf_values_known(given)) {
            *dynamic = 1;
            return GF_OK;
        }
        if ((st = gf_read_ints(given, "split", sizes, n, &count))) return st;
    } else if (ctx->node->opset < 13) {
        const int64_t *attr = gf_attr_ints(ctx->node, "split", &count);
        if (count > n) return gf_fail(GF_ERR_INVALID, "split has %d sizes for %d outputs", count, n);
        if (count) memcpy(sizes, attr, (size_t)count * sizeof *sizes);
    }
    int64_t dim = x->dims[*axis];
    if (count == 0 && ctx->node->opset >= 18) {
        /* num_outputs parts of ceil(dim / n); the last takes what is left. */
        if (gf_attr_int(ctx->node, "num_outputs", -1) != n)
            return gf_fail(GF_ERR_INVALID, "without a split input, num_outputs must be given and equal the %d outputs", n);
        int64_t part = dim / n + (dim % n != 0);
        for (int k = 0; k < n; k++) sizes[k] = k < n - 1 ? part : dim - part * (n - 1);
        if (sizes[n - 1] < 0)
            return gf_fail(GF_ERR_SHAPE, "axis %d of size %lld does not split into %d parts of %lld", *axis, (long long)dim, n, (long long)part);
        return GF_OK;
    }
    if (count == 0) {
        if (dim % n)
            return gf_fail(GF_ERR_SHAPE, "axis %d of size %lld does not split into %d equal parts", *axis, (long long)dim, n);
        for (int k = 0; k < n; k++) sizes[k] = dim / n;
        return GF_OK;
    }
    if (count != n) return gf_fail(GF_ERR_INVALID, "split has %d sizes for %d outputs", count, n);
    int64_t sum = 0;
    for (int k = 0; k < n; k++) {
        if (sizes[k] < 0 || sizes[k] > dim - sum)
            return gf_fail(GF_ERR_SHAPE, "split sizes do not fit axis %d of size %lld (size %d is %lld)", *axis,
                           (long long)dim, k, (long long)sizes[k]);
        sum += sizes[k];
    }
    if (sum != dim)
        return gf_fail(GF_ERR_SHAPE, "split sizes add up to %lld, axis %d has %lld", (long long)sum, *axis, (long long)dim);
    return GF_OK;
}

static gf_status split_infer(gf_op_ctx *ctx)
{
    /* Opset 1 and 13+ take the sizes as an optional input; 2-12 only as an attribute. */
    int with_input = ctx->node->opset < 2 || ctx->node->opset >= 13;
    gf_status st = gf_check_inputs(ctx, 1, with_input ? 2 : 1);
    if (st) return st;
    int64_t *sizes = malloc((size_t)ctx->n_outputs * sizeof *sizes + 1);
    if (!sizes) return gf_fail(GF_ERR_NOMEM, "out of memory");
    int axis, dynamic;
    const gf_tensor *x = ctx->inputs[0];
    st = gf_split_sizes(ctx, &axis, sizes, &dynamic);
    for (int k = 0; !st && k < ctx->n_outputs; k++) {
        if (dynamic) {
            gf_set_dynamic(ctx->outputs[k], x->dtype);
        } else if (ctx->outputs[k]) {
            gf_set_like(ctx->outputs[k], x);
            ctx->outputs[k]->dims[axis] = sizes[k];
        }
    }
    free(sizes);
    return st;
}

static gf_status split_cpu(gf_op_ctx *ctx)
{
    int64_t *sizes = malloc((size_t)ctx->n_outputs * sizeof *sizes + 1);
    if (!sizes) return gf_fail(GF_ERR_NOMEM, "out of memory");
    int axis, dynamic;
    const gf_tensor *x = ctx->inputs[0];
    gf_status st = gf_split_sizes(ctx, &axis, sizes, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "split sizes are still unknown while running");
    if (!st) {
        int64_t e = (int64_t)gf_dtype_size(x->dtype);
        int64_t outer = span(x->dims, 0, axis), inner = span(x->dims, axis + 1, x->rank) * e, row = x->dims[axis] * inner;
        int64_t at = 0;
        for (int k = 0; k < ctx->n_outputs; k++) {
            int64_t chunk = sizes[k] * inner;
            if (ctx->outputs[k])
                for (int64_t o = 0; o < outer; o++)
                    copy_bytes((char *)ctx->outputs[k]->data + o * chunk, (const char *)x->data + o * row + at, chunk);
            at += chunk;
        }
    }
    free(sizes);
    return st;
}

/* ---- Slice ---- */

/* The bounds a Slice node gives: v[k] holds count[k] values, count -1 where omitted. */
enum { SL_STARTS, SL_ENDS, SL_AXES, SL_STEPS };
static const char *const slice_names[] = {"starts", "ends", "axes", "steps"};

typedef struct slice_bounds {
    int64_t v[4][GF_MAX_RANK];
    int count[4];
} slice_bounds;

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* One axis, clamped exactly as the ONNX spec says. */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first, int64_t *len)
{
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = clamp64(start, 0, dim);
        end = clamp64(end, 0, dim);
        *len = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        start = clamp64(start, 0, dim - 1);
        end = clamp64(end, -1, dim - 1);
        *len = dim > 0 && start > end ? (step == INT64_MIN ? 1 : (start - end - 1) / -step + 1) : 0;
    }
    *first = start;
}

/* Opsets 1-9 give starts, ends and axes as attributes (steps are always 1). */
static gf_status slice_bounds_from_attrs(const gf_op_ctx *ctx, slice_bounds *b)
{
    for (int k = 0; k < 4; k++) {
        const int64_t *attr = k == SL_STEPS ? NULL : gf_attr_ints(ctx->node, slice_names[k], &b->count[k]);
        if (!attr) b->count[k] = -1;
        else if (b->count[k] > GF_MAX_RANK)
            return gf_fail(GF_ERR_INVALID, "%s has %d values for rank %d", slice_names[k], b->count[k], ctx->inputs[0]->rank);
        else memcpy(b->v[k], attr, (size_t)b->count[k] * sizeof *b->v[k]);
    }
    return GF_OK;
}

/* Opset 10 on: from tensors (NULL where omitted). Sets *dynamic when a value is not known yet. */
static gf_status slice_bounds_from_tensors(const gf_tensor *const *t, slice_bounds *b, int *dynamic)
{
    *dynamic = 0;
    for (int k = 0; k < 4; k++) {
        b->count[k] = -1;
        if (t[k] && !gf_values_known(t[k])) *dynamic = 1;
        else if (t[k]) {
            gf_status st = gf_read_ints(t[k], slice_names[k], b->v[k], GF_MAX_RANK, &b->count[k]);
            if (st) return st;
        }
    }
    return GF_OK;
}

static gf_status slice_plan_from_bounds(const gf_op_ctx *ctx, int rank, const int64_t *dims, const slice_bounds *b,
                                        gf_slice_plan *p)
{
    const int *count = b->count;
    int n = count[SL_STARTS];
    if (n < 0 || count[SL_ENDS] < 0) return gf_fail(GF_ERR_INVALID, "starts and ends are required");
    if (count[SL_ENDS] != n || (count[SL_AXES] >= 0 && count[SL_AXES] != n) || (count[SL_STEPS] >= 0 && count[SL_STEPS] != n))
        return gf_fail(GF_ERR_INVALID, "starts, ends, axes and steps must have the same length (%d, %d, %d, %d)", n,
                       count[SL_ENDS], count[SL_AXES], count[SL_STEPS]);
    if (n > rank) return gf_fail(GF_ERR_INVALID, "%d axes sliced in an input of rank %d", n, rank);
    for (int d = 0; d < rank; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->dims[d] = dims[d];
    }
    unsigned char seen[GF_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int axis;
        gf_status st = gf_axis(ctx, count[SL_AXES] >= 0 ? b->v[SL_AXES][i] : i, rank, &axis);
        if (st) return st;
        if (seen[axis]) return gf_fail(GF_ERR_INVALID, "axis %d is sliced twice", axis);
        seen[axis] = 1;
        int64_t step = count[SL_STEPS] >= 0 ? b->v[SL_STEPS][i] : 1;
        if (step == 0) return gf_fail(GF_ERR_INVALID, "step on axis %d is 0", axis);
        slice_axis(dims[axis], b->v[SL_STARTS][i], b->v[SL_ENDS][i], step, &p->start[axis], &p->dims[axis]);
        p->step[axis] = step;
    }
    return GF_OK;
}

gf_status gf_slice_plan_of(const gf_op_ctx *ctx, int rank, const int64_t *dims, const gf_tensor *const *bounds,
                           gf_slice_plan *p, int *dynamic)
{
    slice_bounds b;
    gf_status st = slice_bounds_from_tensors(bounds, &b, dynamic);
    if (st || *dynamic) return st;
    return slice_plan_from_bounds(ctx, rank, dims, &b, p);
}

void gf_slice_view(const gf_slice_plan *p, int rank, const int64_t *dims, int64_t *first, int64_t *strides)
{
    int64_t s = 1;
    *first = 0;
    for (int d = rank - 1; d >= 0; d--) {
        *first += p->start[d] * s;
        strides[d] = p->step[d] * s;
        s *= dims[d];
    }
}

/* Plans a Slice node: bounds as attributes before opset 10, inputs 1-4 from it. */
static gf_status slice_plan_of(const gf_op_ctx *ctx, gf_slice_plan *p, int *dynamic)
{
    const gf_tensor *x = ctx->inputs[0];
    if (ctx->node->opset >= 10) {
        const gf_tensor *bounds[4];
        for (int k = 0; k < 4; k++) bounds[k] = ctx->n_inputs > k + 1 ? ctx->inputs[k + 1] : NULL;
        return gf_slice_plan_of(ctx, x->rank, x->dims, bounds, p, dynamic);
    }
    slice_bounds b;
    *dynamic = 0;
    gf_status st = slice_bounds_from_attrs(ctx, &b);
    return st ? st : slice_plan_from_bounds(ctx, x->rank, x->dims, &b, p);
}

static gf_status slice_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, ctx->node->opset < 10 ? 1 : 3, ctx->node->opset < 10 ? 1 : 5);
    if (st) return st;
    gf_slice_plan p;
    int dynamic;
    const gf_tensor *x = ctx->inputs[0];
    if ((st = slice_plan_of(ctx, &p, &dynamic))) return st;
    if (dynamic) gf_set_dynamic(ctx->outputs[0], x->dtype);
    else gf_set_shape(ctx->outputs[0], x->dtype, x->rank, p.dims);
    return GF_OK;
}

gf_status gf_slice_node_view(const gf_op_ctx *ctx, int64_t *first, int64_t *strides)
{
    gf_slice_plan p;
    int dynamic;
    const gf_tensor *x = ctx->inputs[0];
    gf_status st = slice_plan_of(ctx, &p, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "slice bounds are still unknown while running");
    if (!st) gf_slice_view(&p, x->rank, x->dims, first, strides);
    return st;
}

static gf_status slice_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t first, strides[GF_MAX_RANK];
    gf_status st = gf_slice_node_view(ctx, &first, strides);
    if (st || gf_tensor_numel(y) == 0) return st;
    size_t e = gf_dtype_size(x->dtype);
    gf_copy_strided(y->data, (const char *)x->data + first * (int64_t)e, e, y->rank, y->dims, strides);
    return GF_OK;
}

/* ---- Gather, GatherElements, GatherND ---- */

gf_status gf_gather_axis(const gf_op_ctx *ctx, int *axis)
{
    const gf_tensor *x = ctx->inputs[0];
    if (x->rank < 1) return gf_fail(GF_ERR_INVALID, "data must have rank 1 or more");
    return gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), x->rank, axis);
}

static gf_status gather_infer(gf_op_ctx *ctx)
{
    int axis;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 1, index_types);
    if (!st) st = gf_gather_axis(ctx, &axis);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    int rank = x->rank - 1 + idx->rank, r = 0;
    if (rank > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "the output would have rank %d; graft holds at most %d", rank, GF_MAX_RANK);
    int64_t dims[GF_MAX_RANK];
    for (int d = 0; d < axis; d++) dims[r++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++) dims[r++] = idx->dims[d];
    for (int d = axis + 1; d < x->rank; d++) dims[r++] = x->dims[d];
    gf_set_shape(ctx->outputs[0], x->dtype, rank, dims);
    return GF_OK;
}

static gf_status gather_cpu(gf_op_ctx *ctx)
{
    int axis;
    gf_status st = gf_gather_axis(ctx, &axis);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    gf_tensor *y = ctx->outputs[0];
    int64_t n = x->dims[axis], m = gf_tensor_numel(idx), k;
    for (int64_t i = 0; i < m; i++)
        if ((st = index_in(gf_int_at(idx, i), n, &k))) return st;
    if (gf_tensor_numel(y) == 0) return GF_OK;
    int64_t outer = span(x->dims, 0, axis), block = span(x->dims, axis + 1, x->rank) * (int64_t)gf_dtype_size(x->dtype);
    const char *src = x->data;
    char *dst = y->data;
#pragma omp parallel for if (outer * m * block > (1 << 18))
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < m; i++) {
            int64_t at = gf_int_at(idx, i);
            at = at < 0 ? at + n : at;
            memcpy(dst + (o * m + i) * block, src + (o * n + at) * block, (size_t)block);
        }
    return GF_OK;
}

static gf_status gather_elements_infer(gf_op_ctx *ctx)
{
    int axis;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 1, index_types);
    if (!st) st = gf_gather_axis(ctx, &axis);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    char a[128], b[128];
    int fits = idx->rank == x->rank;
    for (int d = 0; fits && d < x->rank; d++) fits = d == axis || idx->dims[d] <= x->dims[d];
    if (!fits)
        return gf_fail(GF_ERR_SHAPE, "indices %s do not fit data %s (same rank, no larger off axis %d)",
                       gf_shape_str(idx, a, sizeof a), gf_shape_str(x, b, sizeof b), axis);
    gf_set_shape(ctx->outputs[0], x->dtype, idx->rank, idx->dims);
    return GF_OK;
}

static gf_status gather_elements_cpu(gf_op_ctx *ctx)
{
    int axis;
    gf_status st = gf_gather_axis(ctx, &axis);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    int64_t xs[GF_MAX_RANK], c[GF_MAX_RANK] = {0}, m = gf_tensor_numel(idx), e = (int64_t)gf_dtype_size(x->dtype);
    strides_of(x, xs);
    for (int64_t i = 0; i < m; i++, next_coord(c, idx->dims, idx->rank)) {
        int64_t k, at = 0;
        if ((st = index_in(gf_int_at(idx, i), x->dims[axis], &k))) return st;
        for (int d = 0; d < x->rank; d++) at += (d == axis ? k : c[d]) * xs[d];
        memcpy((char *)ctx->outputs[0]->data + i * e, (const char *)x->data + at * e, (size_t)e);
    }
    return GF_OK;
}

/* Shared by GatherND and ScatterND: indices' last axis of length k addresses
 * the first k axes of data (after batch_dims for GatherND). */
static gf_status nd_index_axis(const gf_tensor *x, const gf_tensor *idx, int batch, int64_t *k)
{
    *k = 0;
    if (x->rank < 1 || idx->rank < 1) return gf_fail(GF_ERR_INVALID, "data and indices must have rank 1 or more");
    *k = idx->dims[idx->rank - 1];
    if (*k < 1 || *k > x->rank - batch)
        return gf_fail(GF_ERR_SHAPE, "indices' last dim is %lld; it must be in 1..%d", (long long)*k, x->rank - batch);
    return GF_OK;
}

/* Offset (in elements, from the start of a block) of the index tuple at idx[at..at+k). */
static gf_status nd_offset(const gf_tensor *idx, int64_t at, int64_t k, const int64_t *dims, const int64_t *strides, int64_t *off)
{
    *off = 0;
    for (int64_t j = 0; j < k; j++) {
        int64_t v;
        gf_status st = index_in(gf_int_at(idx, at + j), dims[j], &v);
        if (st) return st;
        *off += v * strides[j];
    }
    return GF_OK;
}

static gf_status gather_nd_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 1, index_types);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    int64_t b = gf_attr_int(ctx->node, "batch_dims", 0), k;
    if (b < 0 || b >= x->rank || b >= idx->rank)
        return gf_fail(GF_ERR_INVALID, "batch_dims %lld must be below both ranks (%d, %d)", (long long)b, x->rank, idx->rank);
    if ((st = nd_index_axis(x, idx, (int)b, &k))) return st;
    for (int d = 0; d < b; d++)
        if (idx->dims[d] != x->dims[d])
            return gf_fail(GF_ERR_SHAPE, "batch axis %d differs: data %lld, indices %lld", d, (long long)x->dims[d], (long long)idx->dims[d]);
    int rank = idx->rank - 1 + x->rank - (int)b - (int)k, r = 0;
    if (rank > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "the output would have rank %d; graft holds at most %d", rank, GF_MAX_RANK);
    int64_t dims[GF_MAX_RANK];
    for (int d = 0; d < idx->rank - 1; d++) dims[r++] = idx->dims[d];
    for (int d = (int)(b + k); d < x->rank; d++) dims[r++] = x->dims[d];
    gf_set_shape(ctx->outputs[0], x->dtype, rank, dims);
    return GF_OK;
}

static gf_status gather_nd_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    int b = (int)gf_attr_int(ctx->node, "batch_dims", 0);
    int64_t k, xs[GF_MAX_RANK];
    gf_status st = nd_index_axis(x, idx, b, &k);
    if (st) return st;
    strides_of(x, xs);
    int64_t e = (int64_t)gf_dtype_size(x->dtype), batches = span(x->dims, 0, b);
    int64_t tuples = span(idx->dims, b, idx->rank - 1), slice = span(x->dims, b + (int)k, x->rank) * e;
    int64_t block = b > 0 ? xs[b - 1] : gf_tensor_numel(x);
    char *dst = ctx->outputs[0]->data;
    for (int64_t bt = 0; bt < batches; bt++)
        for (int64_t t = 0; t < tuples; t++) {
            int64_t off, at = bt * tuples + t;
            if ((st = nd_offset(idx, at * k, k, x->dims + b, xs + b, &off))) return st;
            copy_bytes(dst + at * slice, (const char *)x->data + (bt * block + off) * e, slice);
        }
    return GF_OK;
}

/* ---- ScatterElements, Scatter, ScatterND ---- */

typedef enum reduction { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN } reduction;
static const char *const reduction_names[] = {"none", "add", "mul", "max", "min"};

static gf_status read_reduction(const gf_op_ctx *ctx, gf_dtype t, reduction *r)
{
    const char *s = gf_attr_string(ctx->node, "reduction", "none");
    int k = 0;
    while (k < 5 && strcmp(s, reduction_names[k])) k++;
    if (k == 5) return gf_fail(GF_ERR_INVALID, "unknown reduction '%s'", s);
    *r = (reduction)k;
    if (*r != RED_NONE && t != GF_FLOAT && t != GF_DOUBLE && t != GF_FLOAT16 && t != GF_BFLOAT16 && t != GF_INT32 && t != GF_INT64)
        return gf_fail(GF_ERR_UNSUPPORTED, "reduction '%s' on %s is not supported", s, gf_dtype_name(t));
    return GF_OK;
}

static double reduce_float(double a, double b, reduction r)
{
    switch (r) {
    case RED_ADD: return a + b;
    case RED_MUL: return a * b;
    case RED_MAX: return a > b ? a : b;
    case RED_MIN: return a < b ? a : b;
    default: return b;
    }
}

/* Integer reductions wrap like the narrow type (unsigned arithmetic, no UB). */
static int64_t reduce_int(int64_t a, int64_t b, reduction r)
{
    switch (r) {
    case RED_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case RED_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case RED_MAX: return a > b ? a : b;
    case RED_MIN: return a < b ? a : b;
    default: return b;
    }
}

/* dst = reduce(dst, src) for one element of type t (size e). */
static void scatter_one(char *dst, const char *src, gf_dtype t, size_t e, reduction r)
{
    if (r == RED_NONE) {
        memcpy(dst, src, e);
        return;
    }
    switch (t) {
    case GF_FLOAT: {
        float a, b;
        memcpy(&a, dst, 4), memcpy(&b, src, 4);
        a = (float)reduce_float(a, b, r);
        memcpy(dst, &a, 4);
        break;
    }
    case GF_DOUBLE: {
        double a, b;
        memcpy(&a, dst, 8), memcpy(&b, src, 8);
        a = reduce_float(a, b, r);
        memcpy(dst, &a, 8);
        break;
    }
    case GF_FLOAT16:
    case GF_BFLOAT16: {
        uint16_t a, b;
        memcpy(&a, dst, 2), memcpy(&b, src, 2);
        int half = t == GF_FLOAT16;
        float fa = half ? gf_half_to_float(a) : gf_bf16_to_float(a), fb = half ? gf_half_to_float(b) : gf_bf16_to_float(b);
        float v = (float)reduce_float(fa, fb, r);
        a = half ? gf_float_to_half(v) : gf_float_to_bf16(v);
        memcpy(dst, &a, 2);
        break;
    }
    case GF_INT32: {
        int32_t a, b;
        memcpy(&a, dst, 4), memcpy(&b, src, 4);
        a = (int32_t)(uint32_t)reduce_int(a, b, r);
        memcpy(dst, &a, 4);
        break;
    }
    default: { /* GF_INT64: read_reduction admits nothing else */
        int64_t a, b;
        memcpy(&a, dst, 8), memcpy(&b, src, 8);
        a = reduce_int(a, b, r);
        memcpy(dst, &a, 8);
        break;
    }
    }
}

static void copy_data_to_output(gf_op_ctx *ctx)
{
    copy_bytes(ctx->outputs[0]->data, ctx->inputs[0]->data, (int64_t)gf_tensor_nbytes(ctx->inputs[0]));
}

static gf_status scatter_elements_infer(gf_op_ctx *ctx)
{
    int axis;
    reduction r;
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (!st) st = gf_check_dtype(ctx, 1, index_types);
    if (!st) st = gf_gather_axis(ctx, &axis);
    if (!st) st = read_reduction(ctx, ctx->inputs[0]->dtype, &r);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1], *upd = ctx->inputs[2];
    char a[128], b[128];
    if (upd->dtype != x->dtype)
        return gf_fail(GF_ERR_SHAPE, "updates are %s, data %s", gf_dtype_name(upd->dtype), gf_dtype_name(x->dtype));
    int fits = idx->rank == x->rank && upd->rank == idx->rank;
    for (int d = 0; fits && d < x->rank; d++) fits = upd->dims[d] == idx->dims[d] && (d == axis || idx->dims[d] <= x->dims[d]);
    if (!fits)
        return gf_fail(GF_ERR_SHAPE, "indices %s and updates must have one shape that fits data %s off axis %d",
                       gf_shape_str(idx, a, sizeof a), gf_shape_str(x, b, sizeof b), axis);
    gf_set_like(ctx->outputs[0], x);
    return GF_OK;
}

static gf_status scatter_elements_cpu(gf_op_ctx *ctx)
{
    int axis;
    reduction r;
    gf_status st = gf_gather_axis(ctx, &axis);
    if (!st) st = read_reduction(ctx, ctx->inputs[0]->dtype, &r);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1], *upd = ctx->inputs[2];
    copy_data_to_output(ctx);
    size_t e = gf_dtype_size(x->dtype);
    int64_t xs[GF_MAX_RANK], c[GF_MAX_RANK] = {0}, m = gf_tensor_numel(idx);
    strides_of(x, xs);
    char *dst = ctx->outputs[0]->data;
    for (int64_t i = 0; i < m; i++, next_coord(c, idx->dims, idx->rank)) {
        int64_t k, at = 0;
        if ((st = index_in(gf_int_at(idx, i), x->dims[axis], &k))) return st;
        for (int d = 0; d < x->rank; d++) at += (d == axis ? k : c[d]) * xs[d];
        scatter_one(dst + at * (int64_t)e, (const char *)upd->data + i * (int64_t)e, x->dtype, e, r);
    }
    return GF_OK;
}

static gf_status scatter_nd_infer(gf_op_ctx *ctx)
{
    reduction r;
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (!st) st = gf_check_dtype(ctx, 1, index_types);
    if (!st) st = read_reduction(ctx, ctx->inputs[0]->dtype, &r);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1], *upd = ctx->inputs[2];
    int64_t k;
    if ((st = nd_index_axis(x, idx, 0, &k))) return st;
    if (upd->dtype != x->dtype)
        return gf_fail(GF_ERR_SHAPE, "updates are %s, data %s", gf_dtype_name(upd->dtype), gf_dtype_name(x->dtype));
    /* updates' shape is indices' shape without its last axis, then data's shape after k axes. */
    int fits = upd->rank == idx->rank - 1 + x->rank - (int)k;
    for (int d = 0; fits && d < upd->rank; d++)
        fits = upd->dims[d] == (d < idx->rank - 1 ? idx->dims[d] : x->dims[d - (idx->rank - 1) + k]);
    if (!fits) {
        char a[128], b[128], c[128];
        return gf_fail(GF_ERR_SHAPE, "updates %s do not match indices %s and data %s", gf_shape_str(upd, a, sizeof a),
                       gf_shape_str(idx, b, sizeof b), gf_shape_str(x, c, sizeof c));
    }
    gf_set_like(ctx->outputs[0], x);
    return GF_OK;
}

static gf_status scatter_nd_cpu(gf_op_ctx *ctx)
{
    reduction r;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1], *upd = ctx->inputs[2];
    int64_t k, xs[GF_MAX_RANK];
    gf_status st = read_reduction(ctx, x->dtype, &r);
    if (!st) st = nd_index_axis(x, idx, 0, &k);
    if (st) return st;
    copy_data_to_output(ctx);
    strides_of(x, xs);
    size_t e = gf_dtype_size(x->dtype);
    int64_t tuples = span(idx->dims, 0, idx->rank - 1), slice = span(x->dims, (int)k, x->rank);
    char *dst = ctx->outputs[0]->data;
    const char *src = upd->data;
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off;
        if ((st = nd_offset(idx, t * k, k, x->dims, xs, &off))) return st;
        for (int64_t s = 0; s < slice; s++)
            scatter_one(dst + (off + s) * (int64_t)e, src + (t * slice + s) * (int64_t)e, x->dtype, e, r);
    }
    return GF_OK;
}

/* ---- Pad ---- */

static gf_status pad_mode_of(const gf_op_ctx *ctx, gf_pad_mode *mode)
{
    const char *m = gf_attr_string(ctx->node, "mode", "constant");
    if (!strcmp(m, "constant")) *mode = GF_PAD_CONSTANT;
    else if (!strcmp(m, "reflect")) *mode = GF_PAD_REFLECT;
    else if (!strcmp(m, "edge")) *mode = GF_PAD_EDGE;
    else if (!strcmp(m, "wrap")) *mode = GF_PAD_WRAP;
    else return gf_fail(GF_ERR_INVALID, "unknown mode '%s'", m);
    return GF_OK;
}

/* Which axes the pads are for: all, or input 3 (opset 18). */
static gf_status pad_axes(const gf_op_ctx *ctx, int *axes, int *n_axes, int *dynamic)
{
    int rank = ctx->inputs[0]->rank;
    const gf_tensor *t = ctx->node->opset >= 18 && ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
    *n_axes = rank;
    for (int d = 0; d < rank; d++) axes[d] = d;
    if (!t) return GF_OK;
    if (!gf_values_known(t)) {
        *dynamic = 1;
        return GF_OK;
    }
    int64_t v[GF_MAX_RANK];
    unsigned char seen[GF_MAX_RANK] = {0};
    gf_status st = gf_read_ints(t, "axes", v, GF_MAX_RANK, n_axes);
    for (int i = 0; !st && i < *n_axes; i++) {
        st = gf_axis(ctx, v[i], rank, &axes[i]);
        if (!st && seen[axes[i]]) st = gf_fail(GF_ERR_INVALID, "axis %d is listed twice", axes[i]);
        if (!st) seen[axes[i]] = 1;
    }
    return st;
}

gf_status gf_pad_plan_of(const gf_op_ctx *ctx, gf_pad_plan *p, int *dynamic)
{
    const gf_tensor *x = ctx->inputs[0];
    int64_t pads[2 * GF_MAX_RANK];
    int n, axes[GF_MAX_RANK], n_axes;
    *dynamic = 0;
    gf_status st = pad_mode_of(ctx, &p->mode);
    if (!st) st = pad_axes(ctx, axes, &n_axes, dynamic);
    if (st || *dynamic) return st;
    if (ctx->node->opset < 11) {
        const int64_t *attr = gf_attr_ints(ctx->node, ctx->node->opset < 2 ? "paddings" : "pads", &n);
        if (!attr) return gf_fail(GF_ERR_INVALID, "the pads attribute is required");
        if (n > 2 * GF_MAX_RANK) return gf_fail(GF_ERR_INVALID, "pads has %d values for rank %d", n, x->rank);
        memcpy(pads, attr, (size_t)n * sizeof *pads);
    } else if (!gf_values_known(ctx->inputs[1])) {
        *dynamic = 1;
        return GF_OK;
    } else if ((st = gf_read_ints(ctx->inputs[1], "pads", pads, 2 * GF_MAX_RANK, &n))) {
        return st;
    }
    if (n != 2 * n_axes) return gf_fail(GF_ERR_INVALID, "pads has %d values; %d axes need %d", n, n_axes, 2 * n_axes);
    for (int d = 0; d < x->rank; d++) p->begin[d] = p->end[d] = 0;
    for (int i = 0; i < n_axes; i++) {
        p->begin[axes[i]] = pads[i];
        p->end[axes[i]] = pads[i + n_axes];
    }
    for (int d = 0; d < x->rank; d++) {
        int64_t dim = x->dims[d], b = p->begin[d], e = p->end[d];
        if (b < -dim || e < -dim || __builtin_add_overflow(dim, b, &p->dims[d]) || __builtin_add_overflow(p->dims[d], e, &p->dims[d]) ||
            p->dims[d] < 0)
            return gf_fail(GF_ERR_SHAPE, "pads (%lld, %lld) do not fit axis %d of size %lld", (long long)b, (long long)e, d, (long long)dim);
        /* Edge and reflect read only what cropping (negative pads) leaves, as onnxruntime does. */
        int64_t kept = dim + (b < 0 ? b : 0) + (e < 0 ? e : 0);
        if (p->mode != GF_PAD_CONSTANT && p->dims[d] > 0 && (b > 0 || e > 0)) {
            if (kept < 1) return gf_fail(GF_ERR_INVALID, "cannot extend axis %d by edge, reflect or wrap: nothing of it is left", d);
            if (p->mode == GF_PAD_REFLECT && (b > kept - 1 || e > kept - 1))
                return gf_fail(GF_ERR_INVALID, "reflect pads (%lld, %lld) on axis %d must be smaller than its length %lld",
                               (long long)b, (long long)e, d, (long long)kept);
        }
    }
    return GF_OK;
}

static gf_status pad_infer(gf_op_ctx *ctx)
{
    gf_status st = ctx->node->opset < 11 ? gf_check_inputs(ctx, 1, 1) : gf_check_inputs(ctx, 2, ctx->node->opset >= 18 ? 4 : 3);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *value = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (value && (value->dtype != x->dtype || gf_tensor_numel(value) > 1))
        return gf_fail(GF_ERR_INVALID, "constant_value must be one %s, is %s with %lld elements", gf_dtype_name(x->dtype),
                       gf_dtype_name(value->dtype), (long long)gf_tensor_numel(value));
    gf_pad_plan p;
    int dynamic;
    if ((st = gf_pad_plan_of(ctx, &p, &dynamic))) return st;
    if (dynamic) gf_set_dynamic(ctx->outputs[0], x->dtype);
    else gf_set_shape(ctx->outputs[0], x->dtype, x->rank, p.dims);
    return GF_OK;
}

void gf_pad_value(const gf_op_ctx *ctx, unsigned char *value)
{
    const gf_tensor *x = ctx->inputs[0], *given = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    memset(value, 0, 16);
    if (ctx->node->opset < 11) {
        gf_tensor v = {.dtype = x->dtype, .rank = 0, .data = value};
        gf_num_set(&v, 0, gf_attr_float(ctx->node, "value", 0));
    } else if (given && gf_tensor_numel(given) == 1) {
        memcpy(value, given->data, gf_dtype_size(x->dtype));
    }
}

int64_t gf_pad_source(int64_t o, int64_t begin, int64_t end, int64_t dim, gf_pad_mode mode)
{
    int64_t i = o - begin;
    if (i >= 0 && i < dim) return i;
    int64_t lo = begin < 0 ? -begin : 0, kept = dim + (begin < 0 ? begin : 0) + (end < 0 ? end : 0);
    switch (mode) {
    case GF_PAD_EDGE: return i < 0 ? 0 : dim - 1;
    case GF_PAD_REFLECT: return i < 0 ? -i : 2 * (dim - 1) - i;
    case GF_PAD_WRAP: return lo + ((i - lo) % kept + kept) % kept;
    default: return -1;
    }
}

static gf_status pad_cpu(gf_op_ctx *ctx)
{
    gf_pad_plan p;
    int dynamic;
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    gf_status st = gf_pad_plan_of(ctx, &p, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "pads are still unknown while running");
    int64_t numel = gf_tensor_numel(y), e = (int64_t)gf_dtype_size(x->dtype);
    if (st || numel == 0) return st;
    int r = y->rank;
    if (r == 0) {
        memcpy(y->data, x->data, (size_t)e);
        return GF_OK;
    }
    unsigned char value[16];
    gf_pad_value(ctx, value);
    /* map[d][o]: the input index that output index o of axis d reads, -1 for the constant. */
    int64_t total = 0, *map[GF_MAX_RANK], xs[GF_MAX_RANK];
    for (int d = 0; d < r; d++) total += y->dims[d];
    int64_t *maps = malloc((size_t)total * sizeof *maps);
    if (!maps) return gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int d = 0; d < r; d++) {
        map[d] = d ? map[d - 1] + y->dims[d - 1] : maps;
        for (int64_t o = 0; o < y->dims[d]; o++) map[d][o] = gf_pad_source(o, p.begin[d], p.end[d], x->dims[d], p.mode);
    }
    strides_of(x, xs);
    int64_t n = y->dims[r - 1], rows = numel / n;
    const int64_t *last = map[r - 1];
    const char *src = x->data;
#pragma omp parallel for if (numel > (1 << 16))
    for (int64_t row = 0; row < rows; row++) {
        int64_t c[GF_MAX_RANK], off = 0;
        int constant = 0;
        coord_of(row, y->dims, r - 1, c);
        for (int d = 0; d < r - 1; d++) {
            if (map[d][c[d]] < 0) constant = 1;
            else off += map[d][c[d]] * xs[d];
        }
        char *dst = (char *)y->data + row * n * e;
        for (int64_t o = 0; o < n;) {
            if (constant || last[o] < 0) {
                memcpy(dst + o * e, value, (size_t)e);
                o++;
                continue;
            }
            int64_t run = 1;
            while (o + run < n && last[o + run] == last[o] + run) run++;
            memcpy(dst + o * e, src + (off + last[o]) * e, (size_t)(run * e));
            o += run;
        }
    }
    free(maps);
    return GF_OK;
}

/* ---- Tile ---- */

static gf_status tile_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (!gf_values_known(ctx->inputs[1])) {
        gf_set_dynamic(ctx->outputs[0], x->dtype);
        return GF_OK;
    }
    int64_t reps[GF_MAX_RANK], dims[GF_MAX_RANK];
    int n;
    if ((st = gf_read_ints(ctx->inputs[1], "repeats", reps, GF_MAX_RANK, &n))) return st;
    if (n != x->rank) return gf_fail(GF_ERR_INVALID, "repeats has %d values for an input of rank %d", n, x->rank);
    for (int d = 0; d < n; d++)
        if (reps[d] < 0 || __builtin_mul_overflow(x->dims[d], reps[d], &dims[d]))
            return gf_fail(GF_ERR_INVALID, "repeats %lld on axis %d is negative or too large", (long long)reps[d], d);
    gf_set_shape(ctx->outputs[0], x->dtype, x->rank, dims);
    return GF_OK;
}

static gf_status tile_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t numel = gf_tensor_numel(y), e = (int64_t)gf_dtype_size(x->dtype);
    int r = y->rank;
    if (numel == 0) return GF_OK;
    if (r == 0) {
        memcpy(y->data, x->data, (size_t)e);
        return GF_OK;
    }
    int64_t xs[GF_MAX_RANK], n_in = x->dims[r - 1], n_out = y->dims[r - 1], rows = numel / n_out;
    strides_of(x, xs);
#pragma omp parallel for if (numel > (1 << 16))
    for (int64_t row = 0; row < rows; row++) {
        int64_t c[GF_MAX_RANK], off = 0;
        coord_of(row, y->dims, r - 1, c);
        for (int d = 0; d < r - 1; d++) off += c[d] % x->dims[d] * xs[d];
        char *dst = (char *)y->data + row * n_out * e;
        for (int64_t o = 0; o < n_out; o += n_in) memcpy(dst + o * e, (const char *)x->data + off * e, (size_t)(n_in * e));
    }
    return GF_OK;
}

/* ---- OneHot, NonZero, Compress ---- */

static int is_floating(gf_dtype t) { return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16 || t == GF_BFLOAT16; }

static gf_status one_hot_depth(const gf_tensor *depth, int64_t *out)
{
    *out = 0;
    double d = is_floating(depth->dtype) ? gf_num_at(depth, 0) : (double)gf_int_at(depth, 0);
    if (!(d >= 1 && d < 1e15)) return gf_fail(GF_ERR_INVALID, "depth must be a positive count, is %g", d);
    *out = (int64_t)d;
    return GF_OK;
}

static gf_status one_hot_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (st) return st;
    const gf_tensor *idx = ctx->inputs[0], *depth = ctx->inputs[1], *values = ctx->inputs[2];
    if (gf_tensor_numel(depth) != 1 || depth->rank > 1) return gf_fail(GF_ERR_INVALID, "depth must be a scalar");
    if (gf_tensor_numel(values) != 2 || values->rank != 1) return gf_fail(GF_ERR_INVALID, "values must be [off, on]");
    if (gf_dtype_size(idx->dtype) == 0 || gf_dtype_size(depth->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "indices and depth must be numbers");
    int rank = idx->rank + 1, axis;
    if (rank > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "the output would have rank %d; graft holds at most %d", rank, GF_MAX_RANK);
    if ((st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", -1), rank, &axis))) return st;
    if (!gf_values_known(depth)) {
        gf_set_dynamic(ctx->outputs[0], values->dtype);
        return GF_OK;
    }
    int64_t dims[GF_MAX_RANK], d;
    if ((st = one_hot_depth(depth, &d))) return st;
    for (int i = 0, from = 0; i < rank; i++) dims[i] = i == axis ? d : idx->dims[from++];
    gf_set_shape(ctx->outputs[0], values->dtype, rank, dims);
    return GF_OK;
}

/* The hot position of index i, or -1 when it is outside [-depth, depth) (all off). */
static int64_t one_hot_position(const gf_tensor *idx, int64_t i, int64_t depth)
{
    int64_t k;
    if (is_floating(idx->dtype)) {
        double v = trunc(gf_num_at(idx, i));
        if (!(v >= (double)-depth && v < (double)depth)) return -1;
        k = (int64_t)v;
    } else {
        k = gf_int_at(idx, i);
        if (k < -depth || k >= depth) return -1;
    }
    return k < 0 ? k + depth : k;
}

static gf_status one_hot_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *idx = ctx->inputs[0], *values = ctx->inputs[2];
    gf_tensor *y = ctx->outputs[0];
    int axis;
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", -1), y->rank, &axis);
    if (st) return st;
    int64_t depth = y->dims[axis], e = (int64_t)gf_dtype_size(y->dtype);
    int64_t outer = span(idx->dims, 0, axis), inner = span(idx->dims, axis, idx->rank);
    const char *off = values->data, *on = off + e;
    char *dst = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t hot = one_hot_position(idx, o * inner + i, depth);
            for (int64_t d = 0; d < depth; d++) memcpy(dst + ((o * depth + d) * inner + i) * e, d == hot ? on : off, (size_t)e);
        }
    return GF_OK;
}

static int is_nonzero(const gf_tensor *t, int64_t i, size_t e)
{
    switch (t->dtype) {
    case GF_FLOAT: return ((const float *)t->data)[i] != 0;
    case GF_DOUBLE: return ((const double *)t->data)[i] != 0;
    case GF_FLOAT16:
    case GF_BFLOAT16: return (((const uint16_t *)t->data)[i] & 0x7fff) != 0;  /* -0 is zero */
    default: {
        /* Integers and bool: zero is all bytes zero. */
        const unsigned char *b = (const unsigned char *)t->data + (size_t)i * e;
        for (size_t k = 0; k < e; k++)
            if (b[k]) return 1;
        return 0;
    }
    }
}

static int64_t count_nonzero(const gf_tensor *t)
{
    int64_t n = gf_tensor_numel(t), count = 0;
    size_t e = gf_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) count += is_nonzero(t, i, e);
    return count;
}

static gf_status non_zero_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (!gf_values_known(x)) {
        gf_set_dynamic(ctx->outputs[0], GF_INT64);
        return GF_OK;
    }
    /* A scalar counts as one element of a 1-D tensor, as onnxruntime does. */
    int64_t dims[2] = {x->rank > 0 ? x->rank : 1, count_nonzero(x)};
    gf_set_shape(ctx->outputs[0], GF_INT64, 2, dims);
    return GF_OK;
}

static gf_status non_zero_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t n = gf_tensor_numel(x), nnz = y->dims[1], j = 0, c[GF_MAX_RANK] = {0}, *out = y->data;
    size_t e = gf_dtype_size(x->dtype);
    for (int64_t i = 0; i < n; i++, next_coord(c, x->dims, x->rank)) {
        if (!is_nonzero(x, i, e)) continue;
        if (j == nnz) return gf_fail(GF_ERR_RUNTIME, "input changed after its non-zeros were counted");
        for (int d = 0; d < y->dims[0]; d++) out[d * nnz + j] = x->rank ? c[d] : 0;
        j++;
    }
    return GF_OK;
}

/* Compress's layout: the axis (or the flattened input), and the selected count. */
static gf_status compress_geometry(const gf_op_ctx *ctx, int *axis, int64_t *outer, int64_t *dim, int64_t *inner)
{
    const gf_tensor *x = ctx->inputs[0];
    *axis = -1;
    if (gf_node_attr(ctx->node, "axis")) {
        gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), x->rank, axis);
        if (st) return st;
        if (x->rank < 1) return gf_fail(GF_ERR_INVALID, "cannot compress a scalar along an axis");
    }
    *outer = *axis < 0 ? 1 : span(x->dims, 0, *axis);
    *dim = *axis < 0 ? gf_tensor_numel(x) : x->dims[*axis];
    *inner = *axis < 0 ? 1 : span(x->dims, *axis + 1, x->rank);
    return GF_OK;
}

static gf_status compress_count(const gf_tensor *cond, int64_t dim, int64_t *count)
{
    const unsigned char *c = cond->data;
    int64_t n = gf_tensor_numel(cond);
    *count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!c[i]) continue;
        if (i >= dim) return gf_fail(GF_ERR_INVALID, "condition selects index %lld of an axis of size %lld", (long long)i, (long long)dim);
        ++*count;
    }
    return GF_OK;
}

static gf_status compress_infer(gf_op_ctx *ctx)
{
    static const gf_dtype bool_only[] = {GF_BOOL, GF_UNDEFINED};
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 1, bool_only);
    if (!st && ctx->inputs[1]->rank != 1) st = gf_fail(GF_ERR_INVALID, "condition must be 1-D, has rank %d", ctx->inputs[1]->rank);
    int axis;
    int64_t outer, dim, inner, count;
    if (!st) st = compress_geometry(ctx, &axis, &outer, &dim, &inner);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (!gf_values_known(ctx->inputs[1])) {
        gf_set_dynamic(ctx->outputs[0], x->dtype);
        return GF_OK;
    }
    if ((st = compress_count(ctx->inputs[1], dim, &count))) return st;
    if (axis < 0) {
        gf_set_shape(ctx->outputs[0], x->dtype, 1, &count);
    } else {
        gf_set_like(ctx->outputs[0], x);
        ctx->outputs[0]->dims[axis] = count;
    }
    return GF_OK;
}

static gf_status compress_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0], *cond = ctx->inputs[1];
    int axis;
    int64_t outer, dim, inner, count;
    gf_status st = compress_geometry(ctx, &axis, &outer, &dim, &inner);
    if (!st) st = compress_count(cond, dim, &count);
    if (st) return st;
    int64_t block = inner * (int64_t)gf_dtype_size(x->dtype), n = gf_tensor_numel(cond);
    const unsigned char *c = cond->data;
    char *dst = ctx->outputs[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n && j < dim; j++)
            if (c[j]) {
                memcpy(dst, (const char *)x->data + (o * dim + j) * block, (size_t)block);
                dst += block;
            }
    return GF_OK;
}

/* ---- CumSum, TopK ---- */

/* y along the axis = running sum of x (exclusive: of the elements before;
 * reverse: from the end). Integers accumulate unsigned so overflow wraps. */
#define DEFINE_CUMSUM(NAME, T, ACC)                                                                      \
    static void NAME(const void *xv, void *yv, int64_t outer, int64_t n, int64_t inner, int exclusive,   \
                     int reverse)                                                                        \
    {                                                                                                    \
        const T *x = xv;                                                                                 \
        T *y = yv;                                                                                       \
        for (int64_t o = 0; o < outer; o++)                                                              \
            for (int64_t i = 0; i < inner; i++) {                                                        \
                ACC acc = 0;                                                                             \
                for (int64_t k = 0; k < n; k++) {                                                        \
                    int64_t at = (o * n + (reverse ? n - 1 - k : k)) * inner + i;                        \
                    ACC v = (ACC)x[at];                                                                  \
                    if (!exclusive) acc += v;                                                            \
                    y[at] = (T)acc;                                                                      \
                    if (exclusive) acc += v;                                                             \
                }                                                                                        \
            }                                                                                            \
    }
DEFINE_CUMSUM(cumsum_f32, float, float)
DEFINE_CUMSUM(cumsum_f64, double, double)
DEFINE_CUMSUM(cumsum_i32, int32_t, uint32_t)
DEFINE_CUMSUM(cumsum_i64, int64_t, uint64_t)
DEFINE_CUMSUM(cumsum_u32, uint32_t, uint32_t)
DEFINE_CUMSUM(cumsum_u64, uint64_t, uint64_t)

static gf_status cumsum_axis(const gf_op_ctx *ctx, int *axis)
{
    const gf_tensor *a = ctx->inputs[1];
    if (gf_tensor_numel(a) != 1 || a->rank > 1) return gf_fail(GF_ERR_INVALID, "axis must be a scalar");
    return gf_axis(ctx, gf_int_at(a, 0), ctx->inputs[0]->rank, axis);
}

static gf_status cumsum_infer(gf_op_ctx *ctx)
{
    static const gf_dtype types[] = {GF_FLOAT, GF_DOUBLE, GF_INT32, GF_INT64, GF_UINT32, GF_UINT64, GF_UNDEFINED};
    int axis;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, types);
    if (!st) st = gf_check_dtype(ctx, 1, index_types);
    if (!st && ctx->inputs[1]->data) st = cumsum_axis(ctx, &axis);
    if (!st) gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return st;
}

static gf_status cumsum_cpu(gf_op_ctx *ctx)
{
    int axis;
    gf_status st = cumsum_axis(ctx, &axis);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    int64_t outer = span(x->dims, 0, axis), n = x->dims[axis], inner = span(x->dims, axis + 1, x->rank);
    int exclusive = gf_attr_int(ctx->node, "exclusive", 0) != 0, reverse = gf_attr_int(ctx->node, "reverse", 0) != 0;
    void *y = ctx->outputs[0]->data;
    switch (x->dtype) {
    case GF_FLOAT: cumsum_f32(x->data, y, outer, n, inner, exclusive, reverse); break;
    case GF_DOUBLE: cumsum_f64(x->data, y, outer, n, inner, exclusive, reverse); break;
    case GF_INT32: cumsum_i32(x->data, y, outer, n, inner, exclusive, reverse); break;
    case GF_INT64: cumsum_i64(x->data, y, outer, n, inner, exclusive, reverse); break;
    case GF_UINT32: cumsum_u32(x->data, y, outer, n, inner, exclusive, reverse); break;
    default: cumsum_u64(x->data, y, outer, n, inner, exclusive, reverse); break;
    }
    return GF_OK;
}

/* TopK's k: the attribute before opset 10, input 1 from it. */
static gf_status topk_k(const gf_op_ctx *ctx, int64_t *k, int *dynamic)
{
    *dynamic = 0;
    if (ctx->node->opset < 10) {
        *k = gf_attr_int(ctx->node, "k", -1);
        if (*k < 0) return gf_fail(GF_ERR_INVALID, "the k attribute is required and must not be negative");
        return GF_OK;
    }
    const gf_tensor *t = ctx->inputs[1];
    if (gf_tensor_numel(t) != 1 || t->rank > 1) return gf_fail(GF_ERR_INVALID, "k must hold one value");
    if (!t->data) {
        *dynamic = 1;
        return GF_OK;
    }
    int n;
    return gf_read_ints(t, "k", k, 1, &n);
}

static gf_status topk_infer(gf_op_ctx *ctx)
{
    static const gf_dtype types[] = {GF_FLOAT, GF_DOUBLE, GF_FLOAT16, GF_BFLOAT16, GF_INT8, GF_INT16, GF_INT32, GF_INT64,
                                     GF_UINT8, GF_UINT16, GF_UINT32, GF_UINT64, GF_UNDEFINED};
    gf_status st = gf_check_inputs(ctx, ctx->node->opset < 10 ? 1 : 2, ctx->node->opset < 10 ? 1 : 2);
    if (!st) st = gf_check_dtype(ctx, 0, types);
    const gf_tensor *x = ctx->inputs[0];
    if (!st && x->rank < 1) st = gf_fail(GF_ERR_INVALID, "input must have rank 1 or more");
    int axis, dynamic;
    int64_t k;
    if (!st) st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", -1), x->rank, &axis);
    if (!st) st = topk_k(ctx, &k, &dynamic);
    if (st) return st;
    if (dynamic) {
        gf_set_dynamic(ctx->outputs[0], x->dtype);
        if (ctx->n_outputs > 1) gf_set_dynamic(ctx->outputs[1], GF_INT64);
        return GF_OK;
    }
    if (k < 0 || k > x->dims[axis])
        return gf_fail(GF_ERR_INVALID, "k = %lld does not fit axis %d of size %lld", (long long)k, axis, (long long)x->dims[axis]);
    for (int i = 0; i < ctx->n_outputs && i < 2; i++)
        if (ctx->outputs[i]) {
            gf_set_shape(ctx->outputs[i], i ? GF_INT64 : x->dtype, x->rank, x->dims);
            ctx->outputs[i]->dims[axis] = k;
        }
    return GF_OK;
}

typedef struct topk_key {
    uint64_t key;  /* ascending key order = the order wanted */
    int64_t index;
} topk_key;

/* An unsigned key ordered like the value: NaN above everything, -0 equal to 0. */
static uint64_t order_key(const gf_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case GF_INT8: case GF_INT16: case GF_INT32: case GF_INT64:
        return (uint64_t)gf_int_at(t, i) ^ (UINT64_C(1) << 63);
    case GF_UINT64: return ((const uint64_t *)t->data)[i];
    case GF_UINT8: case GF_UINT16: case GF_UINT32: return (uint64_t)gf_int_at(t, i);
    default: {
        double v = gf_num_at(t, i);
        if (isnan(v)) v = NAN;
        if (v == 0) v = 0;
        uint64_t b;
        memcpy(&b, &v, 8);
        return b >> 63 ? ~b : b | (UINT64_C(1) << 63);
    }
    }
}

static int by_key_then_index(const void *pa, const void *pb)
{
    const topk_key *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static gf_status topk_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *values = ctx->outputs[0], *indices = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    const gf_tensor *shaped = values ? values : indices;
    int axis;
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", -1), x->rank, &axis);
    if (st || !shaped) return st;
    /* Largest first by default; ties go to the lower index either way. The
     * output is always sorted, which also satisfies sorted = 0. */
    int largest = gf_attr_int(ctx->node, "largest", 1) != 0;
    int64_t n = x->dims[axis], k = shaped->dims[axis], e = (int64_t)gf_dtype_size(x->dtype);
    int64_t outer = span(x->dims, 0, axis), inner = span(x->dims, axis + 1, x->rank);
    topk_key *keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
    if (!keys) return gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t j = 0; j < n; j++) {
                uint64_t key = order_key(x, (o * n + j) * inner + i);
                keys[j] = (topk_key){largest ? ~key : key, j};
            }
            qsort(keys, (size_t)n, sizeof *keys, by_key_then_index);
            for (int64_t j = 0; j < k; j++) {
                int64_t to = (o * k + j) * inner + i, from = (o * n + keys[j].index) * inner + i;
                if (values) memcpy((char *)values->data + to * e, (const char *)x->data + from * e, (size_t)e);
                if (indices) ((int64_t *)indices->data)[to] = keys[j].index;
            }
        }
    free(keys);
    return GF_OK;
}

/* ---- ReverseSequence, DepthToSpace, SpaceToDepth ---- */

static gf_status reverse_sequence_axes(const gf_op_ctx *ctx, int *batch, int *time)
{
    int64_t b = gf_attr_int(ctx->node, "batch_axis", 1), t = gf_attr_int(ctx->node, "time_axis", 0);
    *batch = *time = 0;
    if ((b != 0 && b != 1) || (t != 0 && t != 1) || b == t)
        return gf_fail(GF_ERR_INVALID, "batch_axis (%lld) and time_axis (%lld) must be 0 and 1, in either order", (long long)b, (long long)t);
    *batch = (int)b;
    *time = (int)t;
    return GF_OK;
}

static gf_status reverse_sequence_infer(gf_op_ctx *ctx)
{
    int batch, time;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 1, index_types);
    if (!st) st = reverse_sequence_axes(ctx, &batch, &time);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *lens = ctx->inputs[1];
    if (x->rank < 2) return gf_fail(GF_ERR_INVALID, "input must have rank 2 or more, has %d", x->rank);
    if (lens->rank != 1 || lens->dims[0] != x->dims[batch])
        return gf_fail(GF_ERR_SHAPE, "sequence_lens must be 1-D with one length per batch entry (%lld)", (long long)x->dims[batch]);
    gf_set_like(ctx->outputs[0], x);
    return GF_OK;
}

static gf_status reverse_sequence_cpu(gf_op_ctx *ctx)
{
    int batch, time;
    gf_status st = reverse_sequence_axes(ctx, &batch, &time);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *lens = ctx->inputs[1];
    int64_t nb = x->dims[batch], nt = x->dims[time];
    int64_t block = span(x->dims, 2, x->rank) * (int64_t)gf_dtype_size(x->dtype);
    for (int64_t b = 0; b < nb; b++) {
        int64_t len = gf_int_at(lens, b);
        if (len < 0 || len > nt)
            return gf_fail(GF_ERR_INVALID, "sequence_lens[%lld] = %lld is outside 0..%lld", (long long)b, (long long)len, (long long)nt);
        for (int64_t t = 0; t < nt; t++) {
            int64_t from = t < len ? len - 1 - t : t;
            int64_t to_at = time == 0 ? t * nb + b : b * nt + t, from_at = time == 0 ? from * nb + b : b * nt + from;
            copy_bytes((char *)ctx->outputs[0]->data + to_at * block, (const char *)x->data + from_at * block, block);
        }
    }
    return GF_OK;
}

/* DepthToSpace and SpaceToDepth are a reshape to 6-D and a transpose; each
 * builds the output's 6-D view with the source strides of its elements. */
typedef struct block_view {
    int64_t dims[6], strides[6];
} block_view;

static gf_status block_size(const gf_op_ctx *ctx, int64_t *b)
{
    const gf_tensor *x = ctx->inputs[0];
    *b = gf_attr_int(ctx->node, "blocksize", 0);
    if (x->rank != 4) return gf_fail(GF_ERR_INVALID, "input must be 4-D (N, C, H, W), has rank %d", x->rank);
    if (*b < 1 || *b > INT32_MAX) return gf_fail(GF_ERR_INVALID, "blocksize must be in 1..%d, is %lld", INT32_MAX, (long long)*b);
    return GF_OK;
}

/* Whether channels are ordered depth-column-row (DCR, the default) or column-row-depth. */
static gf_status block_mode_crd(const gf_op_ctx *ctx, int *crd)
{
    const char *mode = gf_attr_string(ctx->node, "mode", "DCR");
    *crd = 0;
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD")) return gf_fail(GF_ERR_INVALID, "unknown mode '%s'", mode);
    *crd = !strcmp(mode, "CRD");
    return GF_OK;
}

static gf_status depth_to_space_infer(gf_op_ctx *ctx)
{
    int64_t b, dims[4];
    int crd;
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = block_size(ctx, &b);
    if (!st) st = block_mode_crd(ctx, &crd);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (x->rank != 4) return gf_fail(GF_ERR_SHAPE, "input has rank %d, expected 4 (NCHW)", x->rank);
    if (x->dims[1] % (b * b))
        return gf_fail(GF_ERR_SHAPE, "%lld channels do not divide by blocksize^2 = %lld", (long long)x->dims[1], (long long)(b * b));
    dims[0] = x->dims[0];
    dims[1] = x->dims[1] / (b * b);
    if (__builtin_mul_overflow(x->dims[2], b, &dims[2]) || __builtin_mul_overflow(x->dims[3], b, &dims[3]))
        return gf_fail(GF_ERR_SHAPE, "the output would be too large");
    gf_set_shape(ctx->outputs[0], x->dtype, 4, dims);
    return GF_OK;
}

static gf_status depth_to_space_cpu(gf_op_ctx *ctx)
{
    int64_t b;
    int crd;
    gf_status st = block_size(ctx, &b);
    if (!st) st = block_mode_crd(ctx, &crd);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    int64_t n = x->dims[0], c = x->dims[1] / (b * b), h = x->dims[2], w = x->dims[3], sc = h * w;
    /* Output viewed as [N, C', H, b(i), W, b(j)]: input channel (i*b + j)*C' + c' (DCR) or c'*b*b + i*b + j (CRD). */
    block_view v = {{n, c, h, b, w, b},
                    {x->dims[1] * sc, crd ? b * b * sc : sc, w, crd ? b * sc : b * c * sc, 1, crd ? sc : c * sc}};
    gf_copy_strided(ctx->outputs[0]->data, x->data, gf_dtype_size(x->dtype), 6, v.dims, v.strides);
    return GF_OK;
}

static gf_status space_to_depth_infer(gf_op_ctx *ctx)
{
    int64_t b, dims[4];
    int crd;
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = block_size(ctx, &b);
    if (!st) st = block_mode_crd(ctx, &crd);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (x->rank != 4) return gf_fail(GF_ERR_SHAPE, "input has rank %d, expected 4 (NCHW)", x->rank);
    if (x->dims[2] % b || x->dims[3] % b)
        return gf_fail(GF_ERR_SHAPE, "height %lld and width %lld must divide by blocksize %lld", (long long)x->dims[2],
                       (long long)x->dims[3], (long long)b);
    dims[0] = x->dims[0];
    if (__builtin_mul_overflow(x->dims[1], b * b, &dims[1])) return gf_fail(GF_ERR_SHAPE, "the output would be too large");
    dims[2] = x->dims[2] / b;
    dims[3] = x->dims[3] / b;
    gf_set_shape(ctx->outputs[0], x->dtype, 4, dims);
    return GF_OK;
}

static gf_status space_to_depth_cpu(gf_op_ctx *ctx)
{
    int64_t b;
    int crd;
    gf_status st = block_size(ctx, &b);
    if (!st) st = block_mode_crd(ctx, &crd);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    int64_t n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    /* Output viewed as [N, b(i), b(j), C, H/b, W/b] (DCR) or [N, C, b(i), b(j), H/b, W/b] (CRD),
     * reading input (n, c, h'*b + i, w'*b + j). */
    block_view v = crd ? (block_view){{n, c, b, b, h / b, w / b}, {c * h * w, h * w, w, 1, b * w, b}}
                       : (block_view){{n, b, b, c, h / b, w / b}, {c * h * w, w, 1, h * w, b * w, b}};
    gf_copy_strided(ctx->outputs[0]->data, x->data, gf_dtype_size(x->dtype), 6, v.dims, v.strides);
    return GF_OK;
}

const gf_op gf_ops_index[] = {
    {"", "Concat", 1, 0, concat_infer, concat_cpu},
    {"", "Split", 1, 0, split_infer, split_cpu},
    {"", "Slice", 1, 0, slice_infer, slice_cpu},
    {"", "Gather", 1, 0, gather_infer, gather_cpu},
    {"", "GatherElements", 11, 0, gather_elements_infer, gather_elements_cpu},
    {"", "GatherND", 11, 0, gather_nd_infer, gather_nd_cpu},
    {"", "ScatterElements", 11, 0, scatter_elements_infer, scatter_elements_cpu},
    {"", "Scatter", 9, 10, scatter_elements_infer, scatter_elements_cpu},
    {"", "ScatterND", 11, 0, scatter_nd_infer, scatter_nd_cpu},
    {"", "Pad", 1, 0, pad_infer, pad_cpu},
    {"", "Tile", 6, 0, tile_infer, tile_cpu},
    {"", "OneHot", 9, 0, one_hot_infer, one_hot_cpu},
    {"", "NonZero", 9, 0, non_zero_infer, non_zero_cpu},
    {"", "Compress", 9, 0, compress_infer, compress_cpu},
    {"", "CumSum", 11, 0, cumsum_infer, cumsum_cpu},
    {"", "TopK", 1, 0, topk_infer, topk_cpu},
    {"", "ReverseSequence", 10, 0, reverse_sequence_infer, reverse_sequence_cpu},
    {"", "DepthToSpace", 1, 0, depth_to_space_infer, depth_to_space_cpu},
    {"", "SpaceToDepth", 1, 0, space_to_depth_infer, space_to_depth_cpu},
    {0},
};
