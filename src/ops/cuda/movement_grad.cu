/* ReduceSumTo, ConcatGrad, SliceGrad and ResizeGrad (domain ai.graft) on the GPU
 * (twin: ops/movement_grad.c), float32. Shape inputs are host inputs.
 *
 * ReduceSumTo is the sum reduction (in double) over the axes the shape broadcasts.
 * ConcatGrad and SliceGrad are strided copies (SliceGrad into zeros). ResizeGrad is the
 * transpose of Resize's map with resize.c's own taps: per resized axis the host inverts
 * the taps into, for each input coordinate, the list of (output coordinate, weight)
 * that read it, and each dX element sums the tensor product of its lists over dY in
 * double: a gather, with no atomics, in an order fixed by the shapes. */
#include "cuda_util.cuh"

extern "C" {
#include "../index.h"
#include "../resize.h"
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};

static char *dims_str(int rank, const int64_t *dims, char *buf, size_t len)
{
    gf_tensor t;
    memset(&t, 0, sizeof t);
    t.rank = rank;
    memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    return gf_shape_str(&t, buf, len);
}

static gf_status read_shape(const gf_tensor *t, const char *what, int64_t *dims, int *rank)
{
    if (t->rank != 1) return gf_fail(GF_ERR_INVALID, "%s must be a 1-D shape tensor, has rank %d", what, t->rank);
    if (!gf_values_known(t)) return gf_fail(GF_ERR_RUNTIME, "%s is still unknown while running", what);
    gf_status st = gf_read_ints(t, what, dims, GF_MAX_RANK, rank);
    for (int d = 0; !st && d < *rank; d++)
        if (dims[d] < 0) st = gf_fail(GF_ERR_INVALID, "%s[%d] is negative (%lld)", what, d, (long long)dims[d]);
    return st;
}

/* ---- ReduceSumTo ---- */

static gf_status reduce_sum_to_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    int rank;
    int64_t shape[GF_MAX_RANK];
    if (!st) st = read_shape(ctx->inputs[1], "shape", shape, &rank);
    if (st) return gf_cuda_node_context(ctx, st);
    const gf_tensor *x = ctx->inputs[0];
    char a[128], b[128];
    if (rank > x->rank)
        return gf_cuda_node_fail(ctx, GF_ERR_SHAPE, "shape %s has more axes than X %s", dims_str(rank, shape, a, sizeof a),
                                 gf_shape_str(x, b, sizeof b));
    unsigned char reduced[GF_MAX_RANK] = {0};
    int summed = 0, lead = x->rank - rank;
    for (int d = 0; d < x->rank; d++) {
        int64_t xd = x->dims[d], yd = d >= lead ? shape[d - lead] : 1;
        if (yd != xd && yd != 1)
            return gf_cuda_node_fail(ctx, GF_ERR_SHAPE,
                                     "shape %s does not broadcast to X %s: axis %d is %lld, must be 1 or %lld",
                                     dims_str(rank, shape, a, sizeof a), gf_shape_str(x, b, sizeof b), d, (long long)yd,
                                     (long long)xd);
        reduced[d] = yd != xd;
        summed |= reduced[d];
    }
    gf_tensor *y = ctx->outputs[0];
    if (gf_tensor_numel(y) == 0) return GF_OK;
    if (gf_tensor_numel(x) == 0) return gf_cuda_zero(ctx, cu, y->data, gf_tensor_nbytes(y));
    if (!summed) return gf_cuda_copy_bytes(ctx, cu, y->data, x->data, gf_tensor_nbytes(y));
    return gf_cuda_reduce_sum(ctx, cu, (const float *)x->data, x->rank, x->dims, reduced, 0, (float *)y->data);
}

/* ---- ConcatGrad ---- */

static gf_status concat_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    if (ctx->n_inputs < 2 || !ctx->inputs[0])
        return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "needs dY and at least one shape");
    const gf_tensor *dy = ctx->inputs[0];
    int n = ctx->n_inputs - 1, axis;
    gf_status st = gf_check_dtype(ctx, 0, float_only);
    if (!st && ctx->n_outputs > n) st = gf_fail(GF_ERR_INVALID, "has %d outputs for %d shapes", ctx->n_outputs, n);
    if (!st && dy->rank < 1) st = gf_fail(GF_ERR_INVALID, "dY is a scalar; concatenation needs an axis");
    if (!st) st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), dy->rank, &axis);
    int64_t total = 0;
    int64_t *extent = (int64_t *)malloc((size_t)n * sizeof *extent + 1);
    if (!extent && !st) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) {
        int64_t dims[GF_MAX_RANK];
        int rank, same;
        char what[32], a[128], b[128];
        snprintf(what, sizeof what, "shape_%d", i);
        if (!ctx->inputs[i + 1]) {
            st = gf_fail(GF_ERR_INVALID, "%s is missing", what);
            break;
        }
        if ((st = read_shape(ctx->inputs[i + 1], what, dims, &rank))) break;
        same = rank == dy->rank;
        for (int d = 0; same && d < rank; d++) same = d == axis || dims[d] == dy->dims[d];
        if (!same) {
            st = gf_fail(GF_ERR_SHAPE, "%s is %s but dY is %s: they may differ only on axis %d", what,
                         dims_str(rank, dims, a, sizeof a), gf_shape_str(dy, b, sizeof b), axis);
            break;
        }
        extent[i] = dims[axis];
        if (__builtin_add_overflow(total, extent[i], &total))
            st = gf_fail(GF_ERR_SHAPE, "the shapes' axis %d overflows", axis);
    }
    if (!st && total != dy->dims[axis])
        st = gf_fail(GF_ERR_SHAPE, "the shapes add up to %lld along axis %d, dY has %lld", (long long)total, axis,
                     (long long)dy->dims[axis]);
    if (st) {
        free(extent);
        return gf_cuda_node_context(ctx, st);
    }
    int64_t strides[GF_MAX_RANK], at = 0;
    gf_broadcast_strides(dy, dy->rank, dy->dims, strides);
    for (int i = 0; !st && i < ctx->n_outputs; i++) {
        gf_tensor *dx = ctx->outputs[i];
        if (dx && gf_tensor_numel(dx) > 0)
            st = gf_cuda_copy_strided(ctx, cu, dx->data, NULL, (const float *)dy->data + at * strides[axis], strides,
                                      sizeof(float), dx->rank, dx->dims);
        at += extent[i];
    }
    free(extent);
    return st;
}

/* ---- SliceGrad ---- */

static gf_status slice_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = gf_check_inputs(ctx, 4, 6);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    int rank, dynamic = 0;
    int64_t x_dims[GF_MAX_RANK];
    gf_slice_plan p;
    const gf_tensor *dy = ctx->inputs[0], *bounds[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 4 && k + 2 < ctx->n_inputs; k++) bounds[k] = ctx->inputs[k + 2];
    if (!st) st = read_shape(ctx->inputs[1], "x_shape", x_dims, &rank);
    if (!st) st = gf_slice_plan_of(ctx, rank, x_dims, bounds, &p, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "the slice bounds are still unknown while running");
    if (!st) {
        int same = dy->rank == rank;
        for (int d = 0; same && d < rank; d++) same = dy->dims[d] == p.dims[d];
        if (!same) {
            char a[128], b[128], c[128];
            st = gf_fail(GF_ERR_SHAPE, "dY is %s, but this slice of x_shape %s is %s", gf_shape_str(dy, a, sizeof a),
                         dims_str(rank, x_dims, b, sizeof b), dims_str(rank, p.dims, c, sizeof c));
        }
    }
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *dx = ctx->outputs[0];
    if ((st = gf_cuda_zero(ctx, cu, dx->data, gf_tensor_nbytes(dx))) || gf_tensor_numel(dy) == 0) return st;
    int64_t first, strides[GF_MAX_RANK];
    gf_slice_view(&p, rank, x_dims, &first, strides);
    return gf_cuda_copy_strided(ctx, cu, (float *)dx->data + first, strides, dy->data, NULL, sizeof(float), rank,
                                dy->dims);
}

/* ---- ResizeGrad ---- */

struct adjoint_geom {
    int rank;
    int64_t xdims[GF_MAX_RANK], dystrides[GF_MAX_RANK];
    int64_t row_at[GF_MAX_RANK]; /* axis d's rows: rows[row_at[d] + i .. + i + 1) index the entries; -1: identity */
};

__global__ void resize_adjoint_kernel(const float *dy, float *dx, const int64_t *rows, const int64_t *cols,
                                      const double *w, adjoint_geom g, int64_t n)
{
    GF_CUDA_LOOP(e, n) {
        int64_t c[GF_MAX_RANK], rest = e, base = 0, lo[GF_MAX_RANK], hi[GF_MAX_RANK], cur[GF_MAX_RANK];
        int res[GF_MAX_RANK], nres = 0, empty = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            c[d] = rest % g.xdims[d];
            rest /= g.xdims[d];
        }
        for (int d = 0; d < g.rank; d++) {
            if (g.row_at[d] < 0) {
                base += c[d] * g.dystrides[d];
                continue;
            }
            lo[d] = cur[d] = rows[g.row_at[d] + c[d]];
            hi[d] = rows[g.row_at[d] + c[d] + 1];
            empty |= lo[d] == hi[d];
            res[nres++] = d;
        }
        double acc = 0;
        while (!empty) {
            double wt = 1;
            int64_t off = base;
            for (int r = 0; r < nres; r++) {
                int d = res[r];
                wt *= w[cur[d]];
                off += cols[cur[d]] * g.dystrides[d];
            }
            acc += wt * dy[off];
            int r = nres - 1;
            for (; r >= 0; r--) {
                int d = res[r];
                if (++cur[d] < hi[d]) break;
                cur[d] = lo[d];
            }
            if (r < 0) break;
        }
        dx[e] = (float)acc;
    }
}

static gf_status resize_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = gf_check_inputs(ctx, 2, 5);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    const gf_tensor *dy = ctx->inputs[0];
    int64_t x_dims[GF_MAX_RANK];
    int rank;
    gf_resize_params p;
    gf_resize_axis axes[GF_MAX_RANK];
    if (!st) st = read_shape(ctx->inputs[1], "x_shape", x_dims, &rank);
    if (!st && rank != dy->rank)
        st = gf_fail(GF_ERR_SHAPE, "x_shape has %d dims, dY has rank %d: Resize keeps the rank", rank, dy->rank);
    if (!st) st = gf_resize_params_of(ctx, 2, rank, &p);
    if (!st && p.mode == GF_RESIZE_CUBIC)
        st = gf_fail(GF_ERR_UNSUPPORTED, "mode 'cubic' has no gradient here; 'nearest' and 'linear' do");
    if (!st && !gf_resize_shape_known(&p)) st = gf_fail(GF_ERR_RUNTIME, "scales/sizes are still unknown while running");
    if (!st) st = gf_resize_map_axes(rank, x_dims, &p, axes);
    for (int d = 0; !st && d < rank; d++) {
        char a[128], b[128];
        if (axes[d].out_len != dy->dims[d])
            st = gf_fail(GF_ERR_SHAPE, "dY is %s, but Resize of x_shape %s makes axis %d %lld long",
                         gf_shape_str(dy, a, sizeof a), dims_str(rank, x_dims, b, sizeof b), d,
                         (long long)axes[d].out_len);
        else if (axes[d].in_len == 0 && axes[d].out_len > 0)
            st = gf_fail(GF_ERR_INVALID, "Resize cannot read axis %d of x_shape: it is empty", d);
    }
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *dx = ctx->outputs[0];
    int64_t n = gf_tensor_numel(dx);
    if (n == 0) return GF_OK;
    if (gf_tensor_numel(dy) == 0) return gf_cuda_zero(ctx, cu, dx->data, gf_tensor_nbytes(dx));

    /* The inverted taps of every resized axis: rows (CSR offsets), then entries. */
    int k = gf_resize_taps_per_output(&p);
    adjoint_geom g;
    memset(&g, 0, sizeof g);
    g.rank = rank;
    int64_t s = 1, n_rows = 0, n_ent = 0, max_len = 1;
    for (int d = rank - 1; d >= 0; d--) {
        g.dystrides[d] = s;
        s *= dy->dims[d];
    }
    for (int d = 0; d < rank; d++) {
        g.xdims[d] = x_dims[d];
        g.row_at[d] = -1;
        if (gf_resize_is_identity(&axes[d], &p)) continue;
        g.row_at[d] = n_rows;
        n_rows += axes[d].in_len + 1;
        n_ent += axes[d].out_len * k;
        if (axes[d].out_len > max_len) max_len = axes[d].out_len;
    }
    size_t rows_bytes = (size_t)n_rows * sizeof(int64_t), cols_bytes = (size_t)n_ent * sizeof(int64_t);
    size_t bytes = rows_bytes + cols_bytes + (size_t)n_ent * sizeof(double);
    char *host = (char *)malloc(bytes + 1);
    int64_t *tap_idx = (int64_t *)malloc((size_t)(max_len * k) * sizeof(int64_t));
    double *tap_w = (double *)malloc((size_t)(max_len * k) * sizeof(double));
    unsigned char *outside = (unsigned char *)malloc((size_t)max_len);
    if (!host || !tap_idx || !tap_w || !outside) {
        free(host);
        free(tap_idx);
        free(tap_w);
        free(outside);
        return gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory for resize gradient taps");
    }
    int64_t *rows = (int64_t *)host, *cols = (int64_t *)(host + rows_bytes);
    double *w = (double *)(host + rows_bytes + cols_bytes);
    int64_t at = 0;
    for (int d = 0; d < rank; d++) {
        if (g.row_at[d] < 0) continue;
        int64_t in_len = axes[d].in_len, out_len = axes[d].out_len, *row = rows + g.row_at[d];
        gf_resize_taps(&axes[d], &p, tap_idx, tap_w, outside);
        /* count, offsets, then fill in (output coordinate, tap) order */
        for (int64_t i = 0; i <= in_len; i++) row[i] = 0;
        for (int64_t j = 0; j < out_len; j++)
            if (!outside[j])
                for (int t = 0; t < k; t++) row[tap_idx[j * k + t] + 1]++;
        row[0] = at;
        for (int64_t i = 0; i < in_len; i++) row[i + 1] += row[i];
        int64_t *fill = (int64_t *)malloc((size_t)(in_len ? in_len : 1) * sizeof *fill);
        if (!fill) {
            free(host);
            free(tap_idx);
            free(tap_w);
            free(outside);
            return gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory for resize gradient taps");
        }
        for (int64_t i = 0; i < in_len; i++) fill[i] = row[i];
        for (int64_t j = 0; j < out_len; j++)
            if (!outside[j])
                for (int t = 0; t < k; t++) {
                    int64_t i = tap_idx[j * k + t], e = fill[i]++;
                    cols[e] = j;
                    w[e] = tap_w[j * k + t];
                }
        at = row[in_len];
        free(fill);
    }
    free(tap_idx);
    free(tap_w);
    free(outside);
    char *dev = NULL;
    st = gf_cuda_upload(ctx, cu, host, bytes, (void **)&dev);
    free(host);
    if (st) return st;
    resize_adjoint_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
        (const float *)dy->data, (float *)dx->data, (const int64_t *)dev, (const int64_t *)(dev + rows_bytes),
        (const double *)(dev + rows_bytes + cols_bytes), g, n);
    st = gf_cuda_launched(ctx, "resize_adjoint_kernel");
    gf_cuda_scratch_free(cu, dev);
    return st;
}

static gf_status first_float(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, 1); }

extern "C" const gf_cuda_op gf_cuda_ops_movement_grad[] = {
    {"ai.graft", "ReduceSumTo", 1, 0, reduce_sum_to_cuda, first_float, GF_CUDA_HOST(1)},
    {"ai.graft", "ConcatGrad", 1, 0, concat_grad_cuda, first_float, GF_CUDA_HOST_FROM(1)},
    {"ai.graft", "SliceGrad", 1, 0, slice_grad_cuda, first_float, GF_CUDA_HOST_FROM(1)},
    {"ai.graft", "ResizeGrad", 1, 0, resize_grad_cuda, first_float, GF_CUDA_HOST_FROM(1)},
    {0},
};
