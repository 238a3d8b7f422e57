/* Ops that move or describe data without arithmetic: Shape, Size, Reshape,
 * Flatten, Squeeze, Unsqueeze, Transpose, Expand, Identity, Constant,
 * ConstantOfShape, Range, Dropout (inference), EyeLike, Trilu.
 *
 * Every kernel moves bytes (gf_dtype_size), so any element type works. Shapes
 * that come from an input's values are computed in infer when those values
 * are known (constants at plan time, every input when the session runs a
 * dynamic node); otherwise infer marks the output GF_RANK_DYNAMIC and the
 * session calls infer again once the values exist. */
#include "shape.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static gf_tensor *out0(gf_op_ctx *ctx) { return ctx->outputs[0]; }

/* "[2,-1,0]" into buf, for messages about shapes given as values. */
static const char *dims_text(const int64_t *v, int n, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && at < len; i++) at += (size_t)snprintf(buf + at, len - at, i ? ",%lld" : "%lld", (long long)v[i]);
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}

/* Reads a shape given as a 1-D int64 input; fails on negative dims unless
 * `allow_negative` (Reshape's -1). */
static gf_status read_shape(const gf_tensor *t, const char *what, int allow_negative, int64_t *dims, int *rank)
{
    if (t->dtype != GF_INT64) return gf_fail(GF_ERR_INVALID, "%s must be int64, not %s", what, gf_dtype_name(t->dtype));
    if (t->rank != 1) return gf_fail(GF_ERR_INVALID, "%s must be 1-D, has rank %d", what, t->rank);
    if (t->dims[0] > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s has %lld dims; graft holds at most %d", what, (long long)t->dims[0], GF_MAX_RANK);
    gf_status st = gf_read_ints(t, what, dims, GF_MAX_RANK, rank);
    for (int i = 0; !st && !allow_negative && i < *rank; i++)
        if (dims[i] < 0) st = gf_fail(GF_ERR_INVALID, "%s has a negative dim %lld", what, (long long)dims[i]);
    return st;
}

/* The kernel of every op whose output holds the input's bytes unchanged. */
static gf_status copy_input(gf_op_ctx *ctx)
{
    size_t bytes = gf_tensor_nbytes(ctx->inputs[0]);
    if (bytes != gf_tensor_nbytes(out0(ctx)))
        return gf_fail(GF_ERR_RUNTIME, "output holds %zu bytes, input %zu", gf_tensor_nbytes(out0(ctx)), bytes);
    if (bytes) memcpy(out0(ctx)->data, ctx->inputs[0]->data, bytes);
    return GF_OK;
}

/* Fills n elements of esize bytes with one value, doubling the copied run. */
static void fill_elements(void *dst, int64_t n, const void *value, size_t esize)
{
    if (n <= 0) return;
    char *d = dst;
    size_t total = (size_t)n * esize, done = esize;
    memcpy(d, value, esize);
    while (done < total) {
        size_t step = done < total - done ? done : total - done;
        memcpy(d + done, d, step);
        done += step;
    }
}

/* ---- Shape, Size ---- */

void gf_shape_range(const gf_op_ctx *ctx, int rank, int64_t *start, int64_t *end)
{
    int64_t s = gf_attr_int(ctx->node, "start", 0), e = gf_attr_int(ctx->node, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    *start = s < 0 ? 0 : s > rank ? rank : s;
    *end = e < 0 ? 0 : e > rank ? rank : e;
}

static gf_status shape_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    int64_t start, end;
    gf_shape_range(ctx, ctx->inputs[0]->rank, &start, &end);
    int64_t n = end > start ? end - start : 0;
    gf_set_shape(out0(ctx), GF_INT64, 1, &n);
    return GF_OK;
}

static gf_status shape_cpu(gf_op_ctx *ctx)
{
    int64_t start, end, *o = out0(ctx)->data;
    gf_shape_range(ctx, ctx->inputs[0]->rank, &start, &end);
    for (int64_t d = start; d < end; d++) o[d - start] = ctx->inputs[0]->dims[d];
    return GF_OK;
}

static gf_status size_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) gf_set_shape(out0(ctx), GF_INT64, 0, NULL);
    return st;
}

static gf_status size_cpu(gf_op_ctx *ctx)
{
    *(int64_t *)out0(ctx)->data = gf_tensor_numel(ctx->inputs[0]);
    return GF_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity ---- */

/* Resolves 0 (copy the input's dim, unless allowzero) and -1 (inferred). */
static gf_status reshape_dims(const gf_tensor *x, const int64_t *shape, int n, int allowzero, int64_t *dims)
{
    char want[256], have[128];
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        int64_t v = shape[i];
        if (v == -1) {
            if (infer_at >= 0) return gf_fail(GF_ERR_INVALID, "shape %s has more than one -1", dims_text(shape, n, want, sizeof want));
            infer_at = i;
            dims[i] = 1;
            continue;
        }
        if (v < -1) return gf_fail(GF_ERR_INVALID, "shape %s has a negative dim", dims_text(shape, n, want, sizeof want));
        if (v == 0 && !allowzero) {
            if (i >= x->rank)
                return gf_fail(GF_ERR_INVALID, "shape %s copies dim %d with 0, but the input %s has rank %d",
                               dims_text(shape, n, want, sizeof want), i, gf_shape_str(x, have, sizeof have), x->rank);
            v = x->dims[i];
        }
        dims[i] = v;
        if (__builtin_mul_overflow(known, v, &known))
            return gf_fail(GF_ERR_INVALID, "shape %s is too large", dims_text(shape, n, want, sizeof want));
    }
    int64_t total = gf_tensor_numel(x);
    if (infer_at >= 0) {
        if (known == 0 || total % known)
            return gf_fail(GF_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s", gf_shape_str(x, have, sizeof have),
                           (long long)total, dims_text(shape, n, want, sizeof want));
        dims[infer_at] = total / known;
    } else if (known != total) {
        return gf_fail(GF_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s (%lld elements)", gf_shape_str(x, have, sizeof have),
                       (long long)total, dims_text(shape, n, want, sizeof want), (long long)known);
    }
    return GF_OK;
}

static gf_status reshape_infer(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    int64_t shape[GF_MAX_RANK], dims[GF_MAX_RANK];
    int n = 0;
    gf_status st;
    if (ctx->node->opset < 5) {
        st = gf_check_inputs(ctx, 1, 1);
        const int64_t *attr = gf_attr_ints(ctx->node, "shape", &n);
        if (!st && !attr) st = gf_fail(GF_ERR_INVALID, "the shape attribute is required");
        if (!st && n > GF_MAX_RANK) st = gf_fail(GF_ERR_UNSUPPORTED, "shape has %d dims; graft holds at most %d", n, GF_MAX_RANK);
        if (!st) memcpy(shape, attr, (size_t)n * sizeof *shape);
    } else {
        st = gf_check_inputs(ctx, 2, 2);
        if (st) return st;
        if (!gf_values_known(ctx->inputs[1])) {
            gf_set_dynamic(out0(ctx), x->dtype);
            return GF_OK;
        }
        st = read_shape(ctx->inputs[1], "shape", 1, shape, &n);
    }
    if (!st) st = reshape_dims(x, shape, n, (int)gf_attr_int(ctx->node, "allowzero", 0), dims);
    if (!st) gf_set_shape(out0(ctx), x->dtype, n, dims);
    return st;
}

static gf_status flatten_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    int64_t axis = gf_attr_int(ctx->node, "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return gf_fail(GF_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)axis, x->rank);
    if (axis < 0) axis += x->rank;
    int64_t dims[2] = {1, 1};
    for (int d = 0; d < x->rank; d++) dims[d >= axis] *= x->dims[d];
    gf_set_shape(out0(ctx), x->dtype, 2, dims);
    return GF_OK;
}

/* Axes of Squeeze/Unsqueeze: an attribute before opset 13, input 1 from it.
 * Sets *dynamic when the input's values are not known yet. */
static gf_status read_axes(const gf_op_ctx *ctx, int64_t *axes, int *n, int *present, int *dynamic)
{
    *n = 0;
    *present = *dynamic = 0;
    if (ctx->node->opset < 13) {
        gf_status st = gf_check_inputs(ctx, 1, 1);
        const int64_t *attr = gf_attr_ints(ctx->node, "axes", n);
        if (st || !attr) return st;
        if (*n > GF_MAX_RANK) return gf_fail(GF_ERR_INVALID, "%d axes given; at most %d make sense", *n, GF_MAX_RANK);
        memcpy(axes, attr, (size_t)*n * sizeof *axes);
        *present = 1;
        return GF_OK;
    }
    gf_status st = gf_check_inputs(ctx, 1, 2);
    if (st || ctx->n_inputs < 2 || !ctx->inputs[1]) return st;
    *present = 1;
    if (!gf_values_known(ctx->inputs[1])) {
        *dynamic = 1;
        return GF_OK;
    }
    return gf_read_ints(ctx->inputs[1], "axes", axes, GF_MAX_RANK, n);
}

static gf_status squeeze_infer(gf_op_ctx *ctx)
{
    int64_t axes[GF_MAX_RANK], dims[GF_MAX_RANK];
    int n, present, dynamic;
    gf_status st = read_axes(ctx, axes, &n, &present, &dynamic);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (dynamic) {
        gf_set_dynamic(out0(ctx), x->dtype);
        return GF_OK;
    }
    unsigned char drop[GF_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int a;
        if ((st = gf_axis(ctx, axes[i], x->rank, &a))) return st;
        if (drop[a]) return gf_fail(GF_ERR_INVALID, "axis %lld is listed twice", (long long)axes[i]);
        if (x->dims[a] != 1)
            return gf_fail(GF_ERR_SHAPE, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
        drop[a] = 1;
    }
    int r = 0;
    for (int d = 0; d < x->rank; d++)
        if (n ? !drop[d] : x->dims[d] != 1) dims[r++] = x->dims[d];
    gf_set_shape(out0(ctx), x->dtype, r, dims);
    return GF_OK;
}

static gf_status unsqueeze_infer(gf_op_ctx *ctx)
{
    int64_t axes[GF_MAX_RANK], dims[GF_MAX_RANK];
    int n, present, dynamic;
    gf_status st = read_axes(ctx, axes, &n, &present, &dynamic);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (!present) return gf_fail(GF_ERR_INVALID, "axes are required");
    if (dynamic) {
        gf_set_dynamic(out0(ctx), x->dtype);
        return GF_OK;
    }
    int rank = x->rank + n;
    if (rank > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "the output would have rank %d; graft holds at most %d", rank, GF_MAX_RANK);
    unsigned char added[GF_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int a;
        if ((st = gf_axis(ctx, axes[i], rank, &a))) return st;
        if (added[a]) return gf_fail(GF_ERR_INVALID, "axis %lld is listed twice", (long long)axes[i]);
        added[a] = 1;
    }
    for (int d = 0, from = 0; d < rank; d++) dims[d] = added[d] ? 1 : x->dims[from++];
    gf_set_shape(out0(ctx), x->dtype, rank, dims);
    return GF_OK;
}

static gf_status identity_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) gf_set_like(out0(ctx), ctx->inputs[0]);
    return st;
}

/* ---- Transpose, Expand ---- */

gf_status gf_transpose_perm(const gf_op_ctx *ctx, int rank, int *perm)
{
    int n;
    const int64_t *attr = gf_attr_ints(ctx->node, "perm", &n);
    if (!attr) {
        for (int d = 0; d < rank; d++) perm[d] = rank - 1 - d;
        return GF_OK;
    }
    if (n != rank) return gf_fail(GF_ERR_INVALID, "perm has %d entries for an input of rank %d", n, rank);
    unsigned char seen[GF_MAX_RANK] = {0};
    for (int d = 0; d < rank; d++) {
        if (attr[d] < 0 || attr[d] >= rank || seen[attr[d]])
            return gf_fail(GF_ERR_INVALID, "perm is not a permutation of 0..%d (entry %d is %lld)", rank - 1, d, (long long)attr[d]);
        seen[attr[d]] = 1;
        perm[d] = (int)attr[d];
    }
    return GF_OK;
}

static gf_status transpose_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    const gf_tensor *x = ctx->inputs[0];
    int perm[GF_MAX_RANK];
    if (!st) st = gf_transpose_perm(ctx, x->rank, perm);
    if (st) return st;
    int64_t dims[GF_MAX_RANK];
    for (int d = 0; d < x->rank; d++) dims[d] = x->dims[perm[d]];
    gf_set_shape(out0(ctx), x->dtype, x->rank, dims);
    return GF_OK;
}

static gf_status transpose_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    int perm[GF_MAX_RANK];
    gf_status st = gf_transpose_perm(ctx, x->rank, perm);
    if (st) return st;
    int64_t in_strides[GF_MAX_RANK], strides[GF_MAX_RANK], s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        in_strides[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < x->rank; d++) strides[d] = in_strides[perm[d]];
    gf_copy_strided(out0(ctx)->data, x->data, gf_dtype_size(x->dtype), x->rank, out0(ctx)->dims, strides);
    return GF_OK;
}

static gf_status expand_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (!gf_values_known(ctx->inputs[1])) {
        gf_set_dynamic(out0(ctx), x->dtype);
        return GF_OK;
    }
    gf_tensor shape = {.dtype = x->dtype};
    int64_t dims[GF_MAX_RANK];
    int rank;
    if ((st = read_shape(ctx->inputs[1], "shape", 0, shape.dims, &shape.rank))) return st;
    if ((st = gf_broadcast_shape(x, &shape, &rank, dims))) return st;
    gf_set_shape(out0(ctx), x->dtype, rank, dims);
    return GF_OK;
}

static gf_status expand_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = out0(ctx);
    int64_t strides[GF_MAX_RANK];
    gf_broadcast_strides(x, y->rank, y->dims, strides);
    gf_copy_strided(y->data, x->data, gf_dtype_size(x->dtype), y->rank, y->dims, strides);
    return GF_OK;
}

/* ---- Constant, ConstantOfShape, Range, EyeLike ---- */

gf_status gf_constant_value(const gf_node *n, gf_tensor *v)
{
    memset(v, 0, sizeof *v);
    if (n->n_attrs != 1) return gf_fail(GF_ERR_INVALID, "needs exactly one value attribute, has %d", n->n_attrs);
    const gf_attr *a = &n->attrs[0];
    if (!strcmp(a->name, "value") && a->type == GF_ATTR_TENSOR && a->t) {
        *v = *a->t;
        v->owns_data = 0;
    } else if (!strcmp(a->name, "value_float") && a->type == GF_ATTR_FLOAT) {
        *v = (gf_tensor){.dtype = GF_FLOAT, .rank = 0, .data = (void *)&a->f};
    } else if (!strcmp(a->name, "value_floats") && a->type == GF_ATTR_FLOATS) {
        *v = (gf_tensor){.dtype = GF_FLOAT, .rank = 1, .dims = {a->n}, .data = a->floats};
    } else if (!strcmp(a->name, "value_int") && a->type == GF_ATTR_INT) {
        *v = (gf_tensor){.dtype = GF_INT64, .rank = 0, .data = (void *)&a->i};
    } else if (!strcmp(a->name, "value_ints") && a->type == GF_ATTR_INTS) {
        *v = (gf_tensor){.dtype = GF_INT64, .rank = 1, .dims = {a->n}, .data = a->ints};
    } else {
        return gf_fail(GF_ERR_UNSUPPORTED, "a Constant given by attribute '%s' (sparse or string values) is not supported", a->name);
    }
    if (gf_dtype_size(v->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "a Constant of element type %s is not supported", gf_dtype_name(v->dtype));
    return GF_OK;
}

static gf_status constant_infer(gf_op_ctx *ctx)
{
    gf_tensor v;
    gf_status st = gf_check_inputs(ctx, 0, 0);
    if (!st) st = gf_constant_value(ctx->node, &v);
    if (!st) gf_set_like(out0(ctx), &v);
    return st;
}

static gf_status constant_cpu(gf_op_ctx *ctx)
{
    gf_tensor v;
    gf_status st = gf_constant_value(ctx->node, &v);
    size_t bytes = gf_tensor_nbytes(&v);
    if (!st && bytes) memcpy(out0(ctx)->data, v.data, bytes);
    return st;
}

gf_status gf_constant_of_shape_value(const gf_node *n, gf_tensor *v)
{
    static const float zero = 0;
    const gf_attr *a = gf_node_attr(n, "value");
    if (!a) {
        *v = (gf_tensor){.dtype = GF_FLOAT, .rank = 0, .data = (void *)&zero};
        return GF_OK;
    }
    if (a->type != GF_ATTR_TENSOR || !a->t || gf_tensor_numel(a->t) != 1)
        return gf_fail(GF_ERR_INVALID, "value must be a tensor of one element");
    if (gf_dtype_size(a->t->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "value of element type %s is not supported", gf_dtype_name(a->t->dtype));
    *v = *a->t;
    return GF_OK;
}

static gf_status constant_of_shape_infer(gf_op_ctx *ctx)
{
    gf_tensor v;
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = gf_constant_of_shape_value(ctx->node, &v);
    if (st) return st;
    if (!gf_values_known(ctx->inputs[0])) {
        gf_set_dynamic(out0(ctx), v.dtype);
        return GF_OK;
    }
    int64_t dims[GF_MAX_RANK];
    int rank;
    if ((st = read_shape(ctx->inputs[0], "shape", 0, dims, &rank))) return st;
    gf_set_shape(out0(ctx), v.dtype, rank, dims);
    return GF_OK;
}

static gf_status constant_of_shape_cpu(gf_op_ctx *ctx)
{
    gf_tensor v;
    gf_status st = gf_constant_of_shape_value(ctx->node, &v);
    if (!st) fill_elements(out0(ctx)->data, gf_tensor_numel(out0(ctx)), v.data, gf_dtype_size(v.dtype));
    return st;
}

static int is_float_type(gf_dtype t) { return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16 || t == GF_BFLOAT16; }

/* Element count of Range: max(ceil((limit - start) / delta), 0), checked. */
static gf_status range_count(const gf_tensor *start, const gf_tensor *limit, const gf_tensor *delta, int64_t *n)
{
    if (is_float_type(start->dtype)) {
        double s = gf_num_at(start, 0), l = gf_num_at(limit, 0), d = gf_num_at(delta, 0);
        double c = ceil((l - s) / d);
        if (d == 0 || !(c < 4e18)) return gf_fail(GF_ERR_INVALID, "Range(%g, %g, %g) has no finite length", s, l, d);
        *n = c > 0 ? (int64_t)c : 0;
        return GF_OK;
    }
    int64_t s = gf_int_at(start, 0), l = gf_int_at(limit, 0), d = gf_int_at(delta, 0), diff;
    if (d == 0) return gf_fail(GF_ERR_INVALID, "Range's delta is 0");
    if (__builtin_sub_overflow(l, s, &diff) || (diff == INT64_MIN && d == -1))
        return gf_fail(GF_ERR_INVALID, "Range(%lld, %lld, %lld) is too long", (long long)s, (long long)l, (long long)d);
    *n = (diff > 0) != (d > 0) || diff == 0 ? 0 : diff / d + (diff % d != 0);
    return GF_OK;
}

static gf_status range_infer(gf_op_ctx *ctx)
{
    static const gf_dtype types[] = {GF_FLOAT, GF_DOUBLE, GF_FLOAT16, GF_BFLOAT16, GF_INT16, GF_INT32, GF_INT64, GF_UNDEFINED};
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (!st) st = gf_check_dtype(ctx, 0, types);
    for (int i = 0; i < 3 && !st; i++) {
        const gf_tensor *t = ctx->inputs[i];
        if (t->dtype != ctx->inputs[0]->dtype)
            st = gf_fail(GF_ERR_INVALID, "start, limit and delta must share a type (input %d is %s, start %s)", i,
                         gf_dtype_name(t->dtype), gf_dtype_name(ctx->inputs[0]->dtype));
        else if (gf_tensor_numel(t) != 1 || t->rank > 1)
            st = gf_fail(GF_ERR_INVALID, "input %d must be a scalar", i);
    }
    if (st) return st;
    gf_dtype dt = ctx->inputs[0]->dtype;
    for (int i = 0; i < 3; i++)
        if (!gf_values_known(ctx->inputs[i])) {
            gf_set_dynamic(out0(ctx), dt);
            return GF_OK;
        }
    int64_t n;
    if ((st = range_count(ctx->inputs[0], ctx->inputs[1], ctx->inputs[2], &n))) return st;
    gf_set_shape(out0(ctx), dt, 1, &n);
    return GF_OK;
}

static gf_status range_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *start = ctx->inputs[0], *delta = ctx->inputs[2];
    gf_tensor *y = out0(ctx);
    int64_t n = y->dims[0];
    if (is_float_type(y->dtype)) {
        double s = gf_num_at(start, 0), d = gf_num_at(delta, 0);
        for (int64_t i = 0; i < n; i++) gf_num_set(y, i, s + (double)i * d);
    } else {
        /* Every value lies between start and limit, so none overflows. */
        int64_t s = gf_int_at(start, 0), d = gf_int_at(delta, 0);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = s + i * d;
            switch (y->dtype) {
            case GF_INT16: ((int16_t *)y->data)[i] = (int16_t)v; break;
            case GF_INT32: ((int32_t *)y->data)[i] = (int32_t)v; break;
            default: ((int64_t *)y->data)[i] = v; break;
            }
        }
    }
    return GF_OK;
}

static gf_status eye_like_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (x->rank != 2) return gf_fail(GF_ERR_INVALID, "input must be 2-D, has rank %d", x->rank);
    int64_t dt = gf_attr_int(ctx->node, "dtype", x->dtype);
    if (dt <= 0 || dt > GF_BFLOAT16 || gf_dtype_size((gf_dtype)dt) == 0 || dt == GF_STRING)
        return gf_fail(GF_ERR_UNSUPPORTED, "dtype %lld is not supported", (long long)dt);
    gf_set_shape(out0(ctx), (gf_dtype)dt, 2, x->dims);
    return GF_OK;
}

static gf_status eye_like_cpu(gf_op_ctx *ctx)
{
    gf_tensor *y = out0(ctx);
    int64_t rows = y->dims[0], cols = y->dims[1], k = gf_attr_int(ctx->node, "k", 0);
    memset(y->data, 0, gf_tensor_nbytes(y));
    for (int64_t i = 0; i < rows; i++) {
        /* Column i + k, computed without overflow for any k. */
        if (k >= cols || k < -rows) break;
        int64_t j = i + k;
        if (j >= 0 && j < cols) gf_num_set(y, i * cols + j, 1);
    }
    return GF_OK;
}

/* ---- Dropout (inference), Trilu ---- */

/* Reads an optional scalar input: bool for training_mode, int64 for Trilu's k. */
static gf_status optional_scalar(const gf_op_ctx *ctx, int i, const char *what, int64_t dflt, int64_t *v)
{
    *v = dflt;
    if (ctx->n_inputs <= i || !ctx->inputs[i]) return GF_OK;
    const gf_tensor *t = ctx->inputs[i];
    if (gf_tensor_numel(t) != 1 || t->rank > 1) return gf_fail(GF_ERR_INVALID, "%s must be a scalar", what);
    if (t->data) *v = gf_int_at(t, 0);
    return GF_OK;
}

gf_status gf_dropout_inference_check(const gf_op_ctx *ctx)
{
    int64_t training = 0;
    gf_status st = optional_scalar(ctx, 2, "training_mode", 0, &training);
    if (!st && training)
        st = gf_fail(GF_ERR_UNSUPPORTED, "Dropout in training mode is not supported; only inference (identity)");
    return st;
}

static gf_status dropout_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 3);
    if (!st) st = gf_dropout_inference_check(ctx);
    if (st) return st;
    gf_set_like(out0(ctx), ctx->inputs[0]);
    /* The mask is bool from opset 10, the input's type before. */
    if (ctx->n_outputs > 1 && ctx->outputs[1])
        gf_set_shape(ctx->outputs[1], ctx->node->opset >= 10 ? GF_BOOL : ctx->inputs[0]->dtype, ctx->inputs[0]->rank,
                     ctx->inputs[0]->dims);
    return GF_OK;
}

static gf_status dropout_cpu(gf_op_ctx *ctx)
{
    gf_status st = gf_dropout_inference_check(ctx);
    if (!st) st = copy_input(ctx);
    /* The mask says every element was kept: true from opset 12. Before, the
     * spec leaves it unfilled in inference and onnxruntime writes zeros; so do we. */
    gf_tensor *mask = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    double kept = ctx->node->opset >= 12 ? 1 : 0;
    for (int64_t i = 0, n = mask ? gf_tensor_numel(mask) : 0; !st && i < n; i++) gf_num_set(mask, i, kept);
    return st;
}

static gf_status trilu_infer(gf_op_ctx *ctx)
{
    int64_t k;
    gf_status st = gf_check_inputs(ctx, 1, 2);
    if (!st && ctx->inputs[0]->rank < 2) st = gf_fail(GF_ERR_INVALID, "input must have rank 2 or more, has %d", ctx->inputs[0]->rank);
    if (!st) st = optional_scalar(ctx, 1, "k", 0, &k);
    if (!st) gf_set_like(out0(ctx), ctx->inputs[0]);
    return st;
}

static gf_status trilu_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    int64_t k;
    gf_status st = optional_scalar(ctx, 1, "k", 0, &k);
    if (st) return st;
    int upper = gf_attr_int(ctx->node, "upper", 1) != 0;
    size_t e = gf_dtype_size(x->dtype);
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    int64_t mats = rows > 0 && cols > 0 ? gf_tensor_numel(x) / (rows * cols) : 0;
    /* Clamping k to just past the matrix changes nothing and keeps i + k in range. */
    if (k > cols + 1) k = cols + 1;
    if (k < -rows - 1) k = -rows - 1;
    const char *src = x->data;
    char *dst = out0(ctx)->data;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++) {
            size_t row = (size_t)((m * rows + i) * cols) * e;
            /* Columns kept: j >= i + k (upper) or j <= i + k (lower); the rest are zero. */
            int64_t edge = upper ? i + k : i + k + 1;
            edge = edge < 0 ? 0 : edge > cols ? cols : edge;
            int64_t keep_lo = upper ? edge : 0, keep_hi = upper ? cols : edge;
            memset(dst + row, 0, (size_t)cols * e);
            if (keep_hi > keep_lo)
                memcpy(dst + row + (size_t)keep_lo * e, src + row + (size_t)keep_lo * e, (size_t)(keep_hi - keep_lo) * e);
        }
    return GF_OK;
}

const gf_op gf_ops_shape[] = {
    {"", "Shape", 1, 0, shape_infer, shape_cpu, .shape_only = 1},
    {"", "Size", 1, 0, size_infer, size_cpu, .shape_only = 1},
    {"", "Reshape", 1, 0, reshape_infer, copy_input},
    {"", "Flatten", 1, 0, flatten_infer, copy_input},
    {"", "Squeeze", 1, 0, squeeze_infer, copy_input},
    {"", "Unsqueeze", 1, 0, unsqueeze_infer, copy_input},
    {"", "Identity", 1, 0, identity_infer, copy_input},
    {"", "Transpose", 1, 0, transpose_infer, transpose_cpu},
    {"", "Expand", 8, 0, expand_infer, expand_cpu},
    {"", "Constant", 1, 0, constant_infer, constant_cpu},
    {"", "ConstantOfShape", 9, 0, constant_of_shape_infer, constant_of_shape_cpu},
    {"", "Range", 11, 0, range_infer, range_cpu},
    {"", "EyeLike", 9, 0, eye_like_infer, eye_like_cpu},
    {"", "Dropout", 7, 0, dropout_infer, dropout_cpu},
    {"", "Trilu", 14, 0, trilu_infer, trilu_cpu},
    {0},
};
