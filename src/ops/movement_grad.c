/* Gradients of the ops that move data, in domain ai.graft (float32 data):
 *
 *   ReduceSumTo(X, shape) -> Y            Y has dims `shape`, which must broadcast to X's
 *                                         shape (numpy rules: right-aligned, each dim 1 or
 *                                         equal, possibly lower rank); Y sums X over the
 *                                         broadcast axes. The gradient of broadcasting.
 *   ConcatGrad(dY, shape_0, ..., shape_{n-1}), attribute axis -> dX_0, ..., dX_{n-1}
 *                                         dX_i is piece i of dY along axis, shape_i[axis]
 *                                         long; omitted outputs are skipped.
 *   SliceGrad(dY, x_shape, starts, ends, [axes], [steps]) -> dX
 *                                         zeros of x_shape holding dY where Slice (opset 13)
 *                                         took its elements; the geometry is Slice's own.
 *   ResizeGrad(dY, x_shape, [roi], [scales], [sizes]) -> dX, Resize's attributes
 *                                         the transpose of Resize's linear map from x_shape
 *                                         to dY's shape (nearest and linear): every dY
 *                                         element goes back to the inputs Resize read it
 *                                         from, with the same weights (resize.c's taps).
 *                                         Optional inputs sit where Resize-13 has them,
 *                                         one later. Upsample maps onto it: scales,
 *                                         coordinate_transformation_mode=asymmetric and,
 *                                         for nearest, nearest_mode=floor.
 *
 * Shape inputs are 1-D int64 (int32 is accepted). The trainer passes them as
 * constants, so shapes are set when the session is planned; otherwise outputs are
 * shaped when the node runs. Sums are taken in double, split into blocks fixed by
 * the shapes alone, so results do not depend on the number of threads. */
#include "index.h"
#include "resize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};

/* Work, in elements, of one block of a blocked sum. */
#define SUM_BLOCK 32768
/* Width of the row pieces that sums and adjoint passes handle per task. */
#define ROW_CHUNK 256

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t numel_of(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= dims[d];
    return n;
}

static char *dims_str(int rank, const int64_t *dims, char *buf, size_t len)
{
    gf_tensor t = {.rank = rank};
    memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    return gf_shape_str(&t, buf, len);
}

/* Reads a 1-D shape input (int64 or int32) into dims; fails naming `what`. */
static gf_status read_shape(const gf_tensor *t, const char *what, int64_t *dims, int *rank)
{
    if (t->rank != 1) return gf_fail(GF_ERR_INVALID, "%s must be a 1-D shape tensor, has rank %d", what, t->rank);
    gf_status st = gf_read_ints(t, what, dims, GF_MAX_RANK, rank);
    for (int d = 0; !st && d < *rank; d++)
        if (dims[d] < 0) st = gf_fail(GF_ERR_INVALID, "%s[%d] is negative (%lld)", what, d, (long long)dims[d]);
    return st;
}

/* The coordinates of element `at` of a row-major array of shape dims. */
static void coord_of(int64_t at, const int64_t *dims, int rank, int64_t *c)
{
    for (int d = rank - 1; d >= 0; d--) {
        c[d] = at % dims[d];
        at /= dims[d];
    }
}

/* ---- ReduceSumTo ---- */

/* X seen as runs of adjacent axes that Y keeps and runs it sums over (axes of
 * size 1 dropped), outer to inner, with their lengths and strides in X. */
typedef struct sum_plan {
    int n_kept, n_summed;
    int64_t kept_len[GF_MAX_RANK], kept_stride[GF_MAX_RANK];
    int64_t summed_len[GF_MAX_RANK], summed_stride[GF_MAX_RANK];
    int inner_summed;   /* X's innermost run is summed (else kept) */
} sum_plan;

/* Adds an axis (outer to inner) to a run list: a new run, or merged into the
 * last run when that one is of the same kind (the run then steps like its
 * innermost axis). */
static void sum_plan_add(int *n, int64_t *len, int64_t *stride, int *last_kind, int kind, int64_t dim, int64_t s)
{
    if (*last_kind != kind) {
        len[(*n)++] = 1;
        *last_kind = kind;
    }
    len[*n - 1] *= dim;
    stride[*n - 1] = s;
}

/* Checks that `shape` broadcasts to X and plans the sum. */
static gf_status sum_plan_of(const gf_tensor *x, int rank, const int64_t *shape, sum_plan *p)
{
    char a[128], b[128];
    if (rank > x->rank)
        return gf_fail(GF_ERR_SHAPE, "shape %s has more axes than X %s", dims_str(rank, shape, a, sizeof a),
                       gf_shape_str(x, b, sizeof b));
    memset(p, 0, sizeof *p);
    int64_t strides[GF_MAX_RANK];
    gf_broadcast_strides(x, x->rank, x->dims, strides);
    int last_kind = -1, lead = x->rank - rank;
    for (int d = 0; d < x->rank; d++) {
        int64_t xd = x->dims[d], yd = d >= lead ? shape[d - lead] : 1;
        if (yd != xd && yd != 1)
            return gf_fail(GF_ERR_SHAPE, "shape %s does not broadcast to X %s: axis %d is %lld, must be 1 or %lld",
                           dims_str(rank, shape, a, sizeof a), gf_shape_str(x, b, sizeof b), d, (long long)yd, (long long)xd);
        if (xd == 1) continue;
        p->inner_summed = yd != xd;
        if (p->inner_summed) sum_plan_add(&p->n_summed, p->summed_len, p->summed_stride, &last_kind, 1, xd, strides[d]);
        else sum_plan_add(&p->n_kept, p->kept_len, p->kept_stride, &last_kind, 0, xd, strides[d]);
    }
    return GF_OK;
}

/* The offset in X of row-major index i over n runs. */
static int64_t run_offset(int64_t i, int n, const int64_t *len, const int64_t *stride)
{
    int64_t off = 0;
    for (int g = n - 1; g >= 0; g--) {
        off += i % len[g] * stride[g];
        i /= len[g];
    }
    return off;
}

/* How many blocks the `count` terms of one sum, each `width` elements of
 * work, are split into so that a block is about SUM_BLOCK elements. */
static int64_t sum_blocks(int64_t count, int64_t width)
{
    int64_t nb = (count * width + SUM_BLOCK - 1) / SUM_BLOCK;
    return nb < 1 ? 1 : nb > count ? count : nb;
}

/* Σ run[0..len) in double, over SUM_LANES independent lanes so that the adds
 * vectorize and do not wait on each other; the order is fixed by len alone. */
#define SUM_LANES 8
static double sum_run(const float *run, int64_t len)
{
    double lane[SUM_LANES] = {0}, s = 0;
    int64_t i = 0;
    for (; i + SUM_LANES <= len; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) lane[l] += run[i + l];
    for (; i < len; i++) s += run[i];
    for (int l = 0; l < SUM_LANES; l++) s += lane[l];
    return s;
}

/* X's innermost run is summed: every Y element adds up `count` contiguous runs
 * of `len` elements, in blocks that become partial sums added in order. */
static gf_status sum_to_scalars(const float *x, float *y, int64_t y_numel, const sum_plan *p)
{
    int64_t len = p->summed_len[p->n_summed - 1], count = numel_of(p->n_summed - 1, p->summed_len);
    int64_t nb = sum_blocks(count, len);
    double *partial = malloc((size_t)(y_numel * nb) * sizeof *partial);
    if (!partial) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld partial sums", (long long)(y_numel * nb));
#pragma omp parallel for schedule(static) if (y_numel * count * len > SUM_BLOCK)
    for (int64_t task = 0; task < y_numel * nb; task++) {
        int64_t e = task / nb, b = task % nb, base = run_offset(e, p->n_kept, p->kept_len, p->kept_stride);
        double s = 0;
        for (int64_t c = b * count / nb; c < (b + 1) * count / nb; c++)
            s += sum_run(x + base + run_offset(c, p->n_summed - 1, p->summed_len, p->summed_stride), len);
        partial[task] = s;
    }
#pragma omp parallel for schedule(static) if (y_numel * nb > SUM_BLOCK)
    for (int64_t e = 0; e < y_numel; e++) {
        double s = 0;
        for (int64_t b = 0; b < nb; b++) s += partial[e * nb + b];
        y[e] = (float)s;
    }
    free(partial);
    return GF_OK;
}

/* X's innermost run is kept: Y is rows of `len` contiguous elements, and each
 * piece of a row (ROW_CHUNK wide) adds the matching pieces of `count` X rows,
 * in blocks whose partial rows are added in order. */
static gf_status sum_to_rows(const float *x, float *y, int64_t y_numel, const sum_plan *p)
{
    int64_t len = p->kept_len[p->n_kept - 1], rows = y_numel / len, chunks = (len + ROW_CHUNK - 1) / ROW_CHUNK;
    int64_t count = numel_of(p->n_summed, p->summed_len), nb = sum_blocks(count, min64(len, ROW_CHUNK));
    int64_t pieces = rows * chunks;
    double *partial = malloc((size_t)(pieces * nb * ROW_CHUNK) * sizeof *partial);
    if (!partial) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld partial sums", (long long)(pieces * nb * ROW_CHUNK));
#pragma omp parallel for schedule(static) if (y_numel * count > SUM_BLOCK)
    for (int64_t task = 0; task < pieces * nb; task++) {
        int64_t piece = task / nb, b = task % nb, row = piece / chunks, i0 = piece % chunks * ROW_CHUNK;
        int64_t width = min64(ROW_CHUNK, len - i0);
        int64_t base = run_offset(row, p->n_kept - 1, p->kept_len, p->kept_stride) + i0;
        double *acc = partial + task * ROW_CHUNK;
        for (int64_t i = 0; i < width; i++) acc[i] = 0;
        for (int64_t c = b * count / nb; c < (b + 1) * count / nb; c++) {
            const float *src = x + base + run_offset(c, p->n_summed, p->summed_len, p->summed_stride);
            for (int64_t i = 0; i < width; i++) acc[i] += src[i];
        }
    }
#pragma omp parallel for schedule(static) if (pieces * nb * ROW_CHUNK > SUM_BLOCK)
    for (int64_t piece = 0; piece < pieces; piece++) {
        int64_t row = piece / chunks, i0 = piece % chunks * ROW_CHUNK, width = min64(ROW_CHUNK, len - i0);
        float *dst = y + row * len + i0;
        for (int64_t i = 0; i < width; i++) {
            double s = 0;
            for (int64_t b = 0; b < nb; b++) s += partial[(piece * nb + b) * ROW_CHUNK + i];
            dst[i] = (float)s;
        }
    }
    free(partial);
    return GF_OK;
}

/* Reads `shape` and checks it against X; *dynamic when its values are not known yet. */
static gf_status reduce_sum_to_shape(const gf_op_ctx *ctx, int *rank, int64_t *shape, sum_plan *p, int *dynamic)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (st) return st;
    *dynamic = !gf_values_known(ctx->inputs[1]);
    if (*dynamic) return GF_OK;
    if ((st = read_shape(ctx->inputs[1], "shape", shape, rank))) return st;
    return sum_plan_of(ctx->inputs[0], *rank, shape, p);
}

static gf_status reduce_sum_to_infer(gf_op_ctx *ctx)
{
    int rank, dynamic;
    int64_t shape[GF_MAX_RANK];
    sum_plan p;
    gf_status st = reduce_sum_to_shape(ctx, &rank, shape, &p, &dynamic);
    if (st) return st;
    if (dynamic) gf_set_dynamic(ctx->outputs[0], GF_FLOAT);
    else gf_set_shape(ctx->outputs[0], GF_FLOAT, rank, shape);
    return GF_OK;
}

static gf_status reduce_sum_to_cpu(gf_op_ctx *ctx)
{
    int rank, dynamic;
    int64_t shape[GF_MAX_RANK];
    sum_plan p;
    gf_status st = reduce_sum_to_shape(ctx, &rank, shape, &p, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "shape is still unknown while running");
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t y_numel = gf_tensor_numel(y);
    if (y_numel == 0) return GF_OK;
    if (gf_tensor_numel(x) == 0) {
        memset(y->data, 0, gf_tensor_nbytes(y));
        return GF_OK;
    }
    if (p.n_summed == 0) {
        memcpy(y->data, x->data, gf_tensor_nbytes(y));
        return GF_OK;
    }
    return p.inner_summed ? sum_to_scalars(x->data, y->data, y_numel, &p) : sum_to_rows(x->data, y->data, y_numel, &p);
}

/* ---- ConcatGrad ---- */

/* Checks the pieces' shapes against dY and sets *axis; *dynamic when a shape's
 * values are not known yet. extent[i] is piece i's length along the axis. */
static gf_status concat_grad_geometry(const gf_op_ctx *ctx, int *axis, int64_t *extent, int *dynamic)
{
    if (ctx->n_inputs < 2 || !ctx->inputs[0]) return gf_fail(GF_ERR_INVALID, "needs dY and at least one shape");
    gf_status st = gf_check_dtype(ctx, 0, float_only);
    if (st) return st;
    const gf_tensor *dy = ctx->inputs[0];
    int n = ctx->n_inputs - 1;
    if (ctx->n_outputs > n) return gf_fail(GF_ERR_INVALID, "has %d outputs for %d shapes", ctx->n_outputs, n);
    if (dy->rank < 1) return gf_fail(GF_ERR_INVALID, "dY is a scalar; concatenation needs an axis");
    if ((st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), dy->rank, axis))) return st;
    *dynamic = 0;
    for (int i = 0; i < n; i++) {
        if (!ctx->inputs[i + 1]) return gf_fail(GF_ERR_INVALID, "shape_%d is missing", i);
        if (!gf_values_known(ctx->inputs[i + 1])) *dynamic = 1;
    }
    if (*dynamic) return GF_OK;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t dims[GF_MAX_RANK];
        int rank, same;
        char what[32], a[128], b[128];
        snprintf(what, sizeof what, "shape_%d", i);
        if ((st = read_shape(ctx->inputs[i + 1], what, dims, &rank))) return st;
        same = rank == dy->rank;
        for (int d = 0; same && d < rank; d++) same = d == *axis || dims[d] == dy->dims[d];
        if (!same)
            return gf_fail(GF_ERR_SHAPE, "%s is %s but dY is %s: they may differ only on axis %d", what,
                           dims_str(rank, dims, a, sizeof a), gf_shape_str(dy, b, sizeof b), *axis);
        extent[i] = dims[*axis];
        if (__builtin_add_overflow(total, extent[i], &total)) return gf_fail(GF_ERR_SHAPE, "the shapes' axis %d overflows", *axis);
    }
    if (total != dy->dims[*axis])
        return gf_fail(GF_ERR_SHAPE, "the shapes add up to %lld along axis %d, dY has %lld", (long long)total, *axis,
                       (long long)dy->dims[*axis]);
    return GF_OK;
}

static gf_status concat_grad_infer(gf_op_ctx *ctx)
{
    int axis, dynamic;
    int64_t *extent = malloc((size_t)ctx->n_inputs * sizeof *extent);
    if (!extent) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_status st = concat_grad_geometry(ctx, &axis, extent, &dynamic);
    for (int i = 0; !st && i < ctx->n_outputs; i++) {
        if (!ctx->outputs[i]) continue;
        if (dynamic) {
            gf_set_dynamic(ctx->outputs[i], GF_FLOAT);
            continue;
        }
        int64_t dims[GF_MAX_RANK];
        memcpy(dims, ctx->inputs[0]->dims, sizeof dims);
        dims[axis] = extent[i];
        gf_set_shape(ctx->outputs[i], GF_FLOAT, ctx->inputs[0]->rank, dims);
    }
    free(extent);
    return st;
}

static gf_status concat_grad_cpu(gf_op_ctx *ctx)
{
    int axis, dynamic;
    int64_t *extent = malloc((size_t)ctx->n_inputs * sizeof *extent);
    if (!extent) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_status st = concat_grad_geometry(ctx, &axis, extent, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "the shapes are still unknown while running");
    const gf_tensor *dy = ctx->inputs[0];
    int64_t strides[GF_MAX_RANK], at = 0;
    gf_broadcast_strides(dy, dy->rank, dy->dims, strides);
    for (int i = 0; !st && i < ctx->n_outputs; i++) {
        gf_tensor *dx = ctx->outputs[i];
        if (dx && gf_tensor_numel(dx) > 0)
            gf_copy_strided(dx->data, (const float *)dy->data + at * strides[axis], sizeof(float), dx->rank, dx->dims, strides);
        at += extent[i];
    }
    free(extent);
    return st;
}

/* ---- SliceGrad ---- */

/* x's shape and the slice of it that dY is; *dynamic when a value is not known yet. */
static gf_status slice_grad_geometry(const gf_op_ctx *ctx, int *rank, int64_t *x_dims, gf_slice_plan *p, int *dynamic)
{
    gf_status st = gf_check_inputs(ctx, 4, 6);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (st) return st;
    const gf_tensor *dy = ctx->inputs[0], *bounds[4] = {0};
    for (int k = 0; k < 4 && k + 2 < ctx->n_inputs; k++) bounds[k] = ctx->inputs[k + 2];
    *dynamic = !gf_values_known(ctx->inputs[1]);
    if (*dynamic) return GF_OK;
    if ((st = read_shape(ctx->inputs[1], "x_shape", x_dims, rank))) return st;
    if ((st = gf_slice_plan_of(ctx, *rank, x_dims, bounds, p, dynamic)) || *dynamic) return st;
    int same = dy->rank == *rank;
    for (int d = 0; same && d < *rank; d++) same = dy->dims[d] == p->dims[d];
    if (!same) {
        char a[128], b[128], c[128];
        return gf_fail(GF_ERR_SHAPE, "dY is %s, but this slice of x_shape %s is %s", gf_shape_str(dy, a, sizeof a),
                       dims_str(*rank, x_dims, b, sizeof b), dims_str(*rank, p->dims, c, sizeof c));
    }
    return GF_OK;
}

static gf_status slice_grad_infer(gf_op_ctx *ctx)
{
    int rank, dynamic;
    int64_t x_dims[GF_MAX_RANK];
    gf_slice_plan p;
    gf_status st = slice_grad_geometry(ctx, &rank, x_dims, &p, &dynamic);
    if (st) return st;
    if (dynamic) gf_set_dynamic(ctx->outputs[0], GF_FLOAT);
    else gf_set_shape(ctx->outputs[0], GF_FLOAT, rank, x_dims);
    return GF_OK;
}

/* dst[first + Σ c[d] * strides[d]] = src[c] for every row-major coordinate c of
 * dims: Slice's strided copy run backwards. Slices take each element at most once,
 * so rows never write the same place and run in parallel. */
static void scatter_strided(float *dst, const float *src, int rank, const int64_t *dims, int64_t first,
                            const int64_t *strides)
{
    int64_t n = rank ? dims[rank - 1] : 1, step = rank ? strides[rank - 1] : 0;
    int64_t rows = numel_of(rank, dims) / n;
#pragma omp parallel for schedule(static) if (rows * n > 65536)
    for (int64_t row = 0; row < rows; row++) {
        int64_t c[GF_MAX_RANK], off = first;
        coord_of(row, dims, rank - 1, c);
        for (int d = 0; d < rank - 1; d++) off += c[d] * strides[d];
        const float *s = src + row * n;
        for (int64_t i = 0; i < n; i++) dst[off + i * step] = s[i];
    }
}

static gf_status slice_grad_cpu(gf_op_ctx *ctx)
{
    int rank, dynamic;
    int64_t x_dims[GF_MAX_RANK];
    gf_slice_plan p;
    gf_status st = slice_grad_geometry(ctx, &rank, x_dims, &p, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "x_shape or the slice bounds are still unknown while running");
    if (st) return st;
    const gf_tensor *dy = ctx->inputs[0];
    gf_tensor *dx = ctx->outputs[0];
    memset(dx->data, 0, gf_tensor_nbytes(dx));
    if (gf_tensor_numel(dy) == 0) return GF_OK;
    int64_t first, strides[GF_MAX_RANK];
    gf_slice_view(&p, rank, x_dims, &first, strides);
    scatter_strided(dx->data, dy->data, rank, dy->dims, first, strides);
    return GF_OK;
}

/* ---- ResizeGrad ---- */

/* x's shape, Resize's parameters and, once scales or sizes are known, each
 * axis's map checked against dY's shape. *dynamic when x_shape is not known;
 * *mapped when the axes were mapped. */
static gf_status resize_grad_geometry(const gf_op_ctx *ctx, int64_t *x_dims, gf_resize_params *p, gf_resize_axis *axes,
                                      int *dynamic, int *mapped)
{
    gf_status st = gf_check_inputs(ctx, 2, 5);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (st) return st;
    const gf_tensor *dy = ctx->inputs[0];
    int rank;
    *mapped = 0;
    *dynamic = !gf_values_known(ctx->inputs[1]);
    if (*dynamic) return GF_OK;
    if ((st = read_shape(ctx->inputs[1], "x_shape", x_dims, &rank))) return st;
    if (rank != dy->rank)
        return gf_fail(GF_ERR_SHAPE, "x_shape has %d dims, dY has rank %d: Resize keeps the rank", rank, dy->rank);
    if ((st = gf_resize_params_of(ctx, 2, rank, p))) return st;
    if (p->mode == GF_RESIZE_CUBIC)
        return gf_fail(GF_ERR_UNSUPPORTED, "mode 'cubic' has no gradient here; 'nearest' and 'linear' do");
    if (!gf_resize_shape_known(p)) return GF_OK;
    if ((st = gf_resize_map_axes(rank, x_dims, p, axes))) return st;
    for (int d = 0; d < rank; d++) {
        char a[128], b[128];
        if (axes[d].out_len != dy->dims[d])
            return gf_fail(GF_ERR_SHAPE, "dY is %s, but Resize of x_shape %s makes axis %d %lld long",
                           gf_shape_str(dy, a, sizeof a), dims_str(rank, x_dims, b, sizeof b), d, (long long)axes[d].out_len);
        if (axes[d].in_len == 0 && axes[d].out_len > 0)
            return gf_fail(GF_ERR_INVALID, "Resize cannot read axis %d of x_shape: it is empty", d);
    }
    *mapped = 1;
    return GF_OK;
}

static gf_status resize_grad_infer(gf_op_ctx *ctx)
{
    int64_t x_dims[GF_MAX_RANK];
    gf_resize_params p;
    gf_resize_axis axes[GF_MAX_RANK];
    int dynamic, mapped;
    gf_status st = resize_grad_geometry(ctx, x_dims, &p, axes, &dynamic, &mapped);
    if (st) return st;
    if (dynamic) gf_set_dynamic(ctx->outputs[0], GF_FLOAT);
    else gf_set_shape(ctx->outputs[0], GF_FLOAT, ctx->inputs[0]->rank, x_dims);
    return GF_OK;
}

/* The transpose of one interpolation pass along axis a (dims[a] = out_len):
 * out[o, idx[j,t], i] += w[j,t] * in[o, j, i], out zeroed and in_len long on a.
 * Tasks split o and pieces of i; each visits j in order, so every element adds
 * its terms in the same order whatever the thread count. */
static void resize_adjoint_pass(const double *in, double *out, const int64_t *dims, int rank, int a, int64_t in_len,
                                int k, const int64_t *idx, const double *w, const unsigned char *outside)
{
    int64_t out_len = dims[a], outer = numel_of(a, dims), inner = numel_of(rank - a - 1, dims + a + 1);
    int64_t chunks = (inner + ROW_CHUNK - 1) / ROW_CHUNK;
#pragma omp parallel for schedule(static) if (outer * out_len * inner > 32768)
    for (int64_t task = 0; task < outer * chunks; task++) {
        int64_t o = task / chunks, i0 = task % chunks * ROW_CHUNK, i1 = min64(i0 + ROW_CHUNK, inner);
        const double *src = in + o * out_len * inner;
        double *dst = out + o * in_len * inner;
        for (int64_t j = 0; j < out_len; j++) {
            if (outside[j]) continue;
            for (int t = 0; t < k; t++) {
                double wt = w[j * k + t];
                const double *s = src + j * inner;
                double *d = dst + idx[j * k + t] * inner;
                for (int64_t i = i0; i < i1; i++) d[i] += wt * s[i];
            }
        }
    }
}

/* dX = A_0ᵀ ⋯ A_{r-1}ᵀ dY, where A_a is Resize's pass along axis a; the passes
 * act on different axes, so their transposes apply in any order: innermost first. */
static gf_status resize_adjoint(const gf_tensor *dy, gf_tensor *dx, const gf_resize_params *p, const gf_resize_axis *axes)
{
    int r = dy->rank, k = gf_resize_taps_per_output(p);
    int64_t dims[GF_MAX_RANK], n = gf_tensor_numel(dy), max_len = 1;
    for (int d = 0; d < r; d++) {
        dims[d] = dy->dims[d];
        if (axes[d].out_len > max_len) max_len = axes[d].out_len;
    }
    double *cur = malloc((size_t)n * sizeof *cur);
    int64_t *idx = malloc((size_t)(max_len * k) * sizeof *idx);
    double *w = malloc((size_t)(max_len * k) * sizeof *w);
    unsigned char *outside = malloc((size_t)max_len);
    gf_status st = GF_OK;
    if (!cur || !idx || !w || !outside) st = gf_fail(GF_ERR_NOMEM, "out of memory for resize gradient buffers");
    for (int64_t i = 0; !st && i < n; i++) cur[i] = ((const float *)dy->data)[i];
    for (int a = r - 1; !st && a >= 0; a--) {
        if (gf_resize_is_identity(&axes[a], p)) continue;
        int64_t next_n = n / dims[a] * axes[a].in_len;
        double *next = calloc((size_t)next_n, sizeof *next);
        if (!next) {
            st = gf_fail(GF_ERR_NOMEM, "out of memory for a resize gradient pass of %lld elements", (long long)next_n);
            break;
        }
        gf_resize_taps(&axes[a], p, idx, w, outside);
        resize_adjoint_pass(cur, next, dims, r, a, axes[a].in_len, k, idx, w, outside);
        free(cur);
        cur = next;
        n = next_n;
        dims[a] = axes[a].in_len;
    }
    for (int64_t i = 0; !st && i < n; i++) ((float *)dx->data)[i] = (float)cur[i];
    free(cur);
    free(idx);
    free(w);
    free(outside);
    return st;
}

/* The common case, only the last two axes resized (NCHW images): each plane is
 * taken back in double a dY row at a time: the row goes back along the width
 * first (A_wᵀ row), then onto the input rows it was read from. Planes run in
 * parallel, each in its own order, whatever the thread count. */
static gf_status resize_adjoint_2d(const gf_tensor *dy, gf_tensor *dx, const gf_resize_params *p, const gf_resize_axis *axes)
{
    int r = dy->rank, k = gf_resize_taps_per_output(p);
    const gf_resize_axis *ah = &axes[r - 2], *aw = &axes[r - 1];
    int64_t H = ah->out_len, W = aw->out_len, in_h = ah->in_len, in_w = aw->in_len;
    int64_t planes = gf_tensor_numel(dx) / (in_h * in_w);
    int64_t *ih = malloc((size_t)((H + W) * k) * sizeof *ih);
    double *wt = malloc((size_t)((H + W) * k) * sizeof *wt);
    unsigned char *out = malloc((size_t)(H + W));
    int failed = !ih || !wt || !out;
    if (!failed) {
        gf_resize_taps(ah, p, ih, wt, out);
        gf_resize_taps(aw, p, ih + H * k, wt + H * k, out + H);
    }
    const int64_t *iw = ih + H * k;
    const double *wh = wt, *ww = wt + H * k;
    const unsigned char *out_w = out + H;
#pragma omp parallel if (!failed && planes * H * W > 32768)
    {
        double *acc = failed ? NULL : malloc((size_t)(in_h * in_w + in_w) * sizeof *acc);
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++) {
            if (!acc) continue;
            double *row = acc + in_h * in_w;
            const float *src = (const float *)dy->data + pl * H * W;
            memset(acc, 0, (size_t)(in_h * in_w) * sizeof *acc);
            for (int64_t h = 0; h < H; h++) {
                if (out[h]) continue;
                memset(row, 0, (size_t)in_w * sizeof *row);
                for (int64_t w = 0; w < W; w++)
                    if (!out_w[w])
                        for (int b = 0; b < k; b++) row[iw[w * k + b]] += ww[w * k + b] * src[h * W + w];
                for (int a = 0; a < k; a++) {
                    double *d = acc + ih[h * k + a] * in_w, f = wh[h * k + a];
                    for (int64_t i = 0; i < in_w; i++) d[i] += f * row[i];
                }
            }
            float *dst = (float *)dx->data + pl * in_h * in_w;
            for (int64_t i = 0; i < in_h * in_w; i++) dst[i] = (float)acc[i];
        }
        if (!acc) {
#pragma omp atomic write
            failed = 1;
        }
        free(acc);
    }
    free(ih);
    free(wt);
    free(out);
    return failed ? gf_fail(GF_ERR_NOMEM, "out of memory for resize gradient buffers") : GF_OK;
}

/* Whether only the last two axes are resized. */
static int fits_adjoint_2d(int rank, const gf_resize_params *p, const gf_resize_axis *axes)
{
    if (rank < 2) return 0;
    for (int d = 0; d < rank - 2; d++)
        if (!gf_resize_is_identity(&axes[d], p)) return 0;
    return 1;
}

static gf_status resize_grad_cpu(gf_op_ctx *ctx)
{
    int64_t x_dims[GF_MAX_RANK];
    gf_resize_params p;
    gf_resize_axis axes[GF_MAX_RANK];
    int dynamic, mapped;
    gf_status st = resize_grad_geometry(ctx, x_dims, &p, axes, &dynamic, &mapped);
    if (!st && (dynamic || !mapped)) st = gf_fail(GF_ERR_RUNTIME, "x_shape or scales/sizes are still unknown while running");
    if (st) return st;
    gf_tensor *dx = ctx->outputs[0];
    if (gf_tensor_numel(dx) == 0) return GF_OK;
    if (gf_tensor_numel(ctx->inputs[0]) == 0) {
        memset(dx->data, 0, gf_tensor_nbytes(dx));
        return GF_OK;
    }
    const gf_tensor *dy = ctx->inputs[0];
    return fits_adjoint_2d(dy->rank, &p, axes) ? resize_adjoint_2d(dy, dx, &p, axes) : resize_adjoint(dy, dx, &p, axes);
}

const gf_op gf_ops_movement_grad[] = {
    {"ai.graft", "ReduceSumTo", 1, 0, reduce_sum_to_infer, reduce_sum_to_cpu},
    {"ai.graft", "ConcatGrad", 1, 0, concat_grad_infer, concat_grad_cpu},
    {"ai.graft", "SliceGrad", 1, 0, slice_grad_infer, slice_grad_cpu},
    {"ai.graft", "ResizeGrad", 1, 0, resize_grad_infer, resize_grad_cpu},
    {0},
};
