/* Concat, Split, Slice, Gather and Pad on the GPU (twin: ops/index.c). They move
 * bytes, so every element type works. The geometry (axes, split sizes, slice bounds,
 * pads) is index.c's, computed on the host from attributes and host inputs; the data
 * moves on the device as strided copies. Gather checks its indices on the device: one
 * out of range is an error (reported by the next gf_cuda_sync, naming the node), and
 * is never read through. */
#include "cuda_util.cuh"

extern "C" {
#include "../index.h"
}

#include <stdlib.h>
#include <string.h>

static int64_t span(const int64_t *dims, int lo, int hi)
{
    int64_t n = 1;
    for (int d = lo; d < hi; d++) n *= dims[d];
    return n;
}

/* ---- Concat ---- */

static gf_status concat_axis(const gf_op_ctx *ctx, int *axis)
{
    const gf_tensor *first = ctx->inputs[0];
    if (first->rank < 1) return gf_fail(GF_ERR_INVALID, "cannot concatenate scalars");
    int64_t a = gf_attr_int(ctx->node, "axis", ctx->node->opset < 4 ? 1 : INT64_MIN);
    if (a == INT64_MIN) return gf_fail(GF_ERR_INVALID, "the axis attribute is required");
    return gf_axis(ctx, a, first->rank, axis);
}

static gf_status concat_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int axis;
    gf_status st = ctx->n_inputs < 1 ? gf_fail(GF_ERR_INVALID, "needs at least one input") : concat_axis(ctx, &axis);
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *y = ctx->outputs[0];
    size_t e = gf_dtype_size(y->dtype);
    int64_t outer = span(y->dims, 0, axis), inner = span(y->dims, axis + 1, y->rank), row = y->dims[axis] * inner;
    int64_t at = 0;
    for (int i = 0; i < ctx->n_inputs && !st; i++) {
        int64_t chunk = ctx->inputs[i]->dims[axis] * inner;
        int64_t dims[2] = {outer, chunk}, dst_strides[2] = {row, 1};
        st = gf_cuda_copy_strided(ctx, cu, (char *)y->data + (size_t)at * e, dst_strides, ctx->inputs[i]->data, NULL, e,
                                  2, dims);
        at += chunk;
    }
    return st;
}

/* ---- Split ---- */

/* index.c's split_sizes. */
static gf_status split_sizes(const gf_op_ctx *ctx, int *axis, int64_t *sizes)
{
    const gf_tensor *x = ctx->inputs[0];
    int n = ctx->n_outputs, count = 0;
    if (x->rank < 1) return gf_fail(GF_ERR_INVALID, "cannot split a scalar");
    if (n < 1) return gf_fail(GF_ERR_INVALID, "needs at least one output");
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), x->rank, axis);
    if (st) return st;
    const gf_tensor *given = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
    if (given) {
        if (given->rank == 1 && given->dims[0] != n && given->dims[0] != 0)
            return gf_fail(GF_ERR_INVALID, "split has %lld sizes for %d outputs", (long long)given->dims[0], n);
        if (!gf_values_known(given)) return gf_fail(GF_ERR_RUNTIME, "split sizes are still unknown while running");
        if ((st = gf_read_ints(given, "split", sizes, n, &count))) return st;
    } else if (ctx->node->opset < 13) {
        const int64_t *attr = gf_attr_ints(ctx->node, "split", &count);
        if (count > n) return gf_fail(GF_ERR_INVALID, "split has %d sizes for %d outputs", count, n);
        if (count) memcpy(sizes, attr, (size_t)count * sizeof *sizes);
    }
    int64_t dim = x->dims[*axis];
    if (count == 0 && ctx->node->opset >= 18) {
        if (gf_attr_int(ctx->node, "num_outputs", -1) != n)
            return gf_fail(GF_ERR_INVALID, "without a split input, num_outputs must be given and equal the %d outputs", n);
        int64_t part = dim / n + (dim % n != 0);
        for (int k = 0; k < n; k++) sizes[k] = k < n - 1 ? part : dim - part * (n - 1);
        if (sizes[n - 1] < 0)
            return gf_fail(GF_ERR_SHAPE, "axis %d of size %lld does not split into %d parts of %lld", *axis,
                           (long long)dim, n, (long long)part);
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

static gf_status split_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int64_t *sizes = (int64_t *)malloc((size_t)ctx->n_outputs * sizeof *sizes + 1);
    if (!sizes) return gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory");
    int axis;
    const gf_tensor *x = ctx->inputs[0];
    gf_status st = split_sizes(ctx, &axis, sizes);
    if (st) st = gf_cuda_node_context(ctx, st);
    size_t e = gf_dtype_size(x->dtype);
    int64_t outer = span(x->dims, 0, axis), inner = span(x->dims, axis + 1, x->rank), row = x->dims[axis] * inner;
    int64_t at = 0;
    for (int k = 0; !st && k < ctx->n_outputs; k++) {
        int64_t chunk = sizes[k] * inner;
        if (ctx->outputs[k]) {
            int64_t dims[2] = {outer, chunk}, src_strides[2] = {row, 1};
            st = gf_cuda_copy_strided(ctx, cu, ctx->outputs[k]->data, NULL, (const char *)x->data + (size_t)at * e,
                                      src_strides, e, 2, dims);
        }
        at += chunk;
    }
    free(sizes);
    return st;
}

/* ---- Slice ---- */

static const char *const slice_names[] = {"starts", "ends", "axes", "steps"};

/* The slice's plan: the bounds are inputs 1-4 from opset 10, attributes before (index.c's
 * slice_bounds_from_attrs, given here to gf_slice_plan_of as tensors over them). */
static gf_status slice_plan(const gf_op_ctx *ctx, gf_slice_plan *p)
{
    const gf_tensor *x = ctx->inputs[0];
    const gf_tensor *bounds[4] = {NULL, NULL, NULL, NULL};
    gf_tensor attr[4];
    if (ctx->node->opset >= 10) {
        for (int k = 0; k < 4; k++) bounds[k] = ctx->n_inputs > k + 1 ? ctx->inputs[k + 1] : NULL;
    } else {
        for (int k = 0; k < 3; k++) {
            int count;
            const int64_t *v = gf_attr_ints(ctx->node, slice_names[k], &count);
            if (!v) continue;
            if (count > GF_MAX_RANK)
                return gf_fail(GF_ERR_INVALID, "%s has %d values for rank %d", slice_names[k], count, x->rank);
            memset(&attr[k], 0, sizeof attr[k]);
            attr[k].dtype = GF_INT64;
            attr[k].rank = 1;
            attr[k].dims[0] = count;
            attr[k].data = (void *)v;
            bounds[k] = &attr[k];
        }
        if (!bounds[0] || !bounds[1]) return gf_fail(GF_ERR_INVALID, "starts and ends are required");
    }
    int dynamic;
    gf_status st = gf_slice_plan_of(ctx, x->rank, x->dims, bounds, p, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "slice bounds are still unknown while running");
    return st;
}

static gf_status slice_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_slice_plan p;
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    gf_status st = slice_plan(ctx, &p);
    if (st) return gf_cuda_node_context(ctx, st);
    if (gf_tensor_numel(y) == 0) return GF_OK;
    int64_t first, strides[GF_MAX_RANK];
    gf_slice_view(&p, x->rank, x->dims, &first, strides);
    size_t e = gf_dtype_size(x->dtype);
    return gf_cuda_copy_strided(ctx, cu, y->data, NULL, (const char *)x->data + first * (int64_t)e, strides, e,
                                y->rank, y->dims);
}

/* ---- Gather ---- */

__device__ inline int64_t index_at(const void *idx, int is64, int64_t i)
{
    return is64 ? ((const int64_t *)idx)[i] : ((const int32_t *)idx)[i];
}

__global__ void gather_check_kernel(const void *idx, int is64, int64_t m, int64_t n, gf_cuda_error *err, int site)
{
    GF_CUDA_LOOP(i, m) {
        int64_t v = index_at(idx, is64, i);
        if (v < -n || v >= n) gf_cu_report(err, site, GF_CUDA_ERR_INDEX, i, v, n);
    }
}

/* y[o, i, b] = x[o, idx[i], b]; an index out of range (already reported) gives zeros. */
template <typename T>
__global__ void gather_kernel(const T *x, T *y, const void *idx, int is64, int64_t n, int64_t m, int64_t inner,
                              int64_t total)
{
    GF_CUDA_LOOP(j, total) {
        int64_t b = j % inner, i = j / inner % m, o = j / (inner * m);
        int64_t at = index_at(idx, is64, i);
        if (at < 0) at += n;
        y[j] = at >= 0 && at < n ? x[(o * n + at) * inner + b] : T(0);
    }
}

static gf_status gather_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    gf_tensor *y = ctx->outputs[0];
    int axis;
    gf_status st = x->rank < 1 ? gf_fail(GF_ERR_INVALID, "data must have rank 1 or more")
                               : gf_axis(ctx, gf_attr_int(ctx->node, "axis", 0), x->rank, &axis);
    if (!st && idx->dtype != GF_INT32 && idx->dtype != GF_INT64)
        st = gf_fail(GF_ERR_UNSUPPORTED, "indices are %s; expected int32 or int64", gf_dtype_name(idx->dtype));
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t n = x->dims[axis], m = gf_tensor_numel(idx), is64 = idx->dtype == GF_INT64;
    if (m > 0) {
        int site = gf_cuda_error_site(cu, ctx, NULL, 0, 0);
        if (site < 0) return gf_cuda_node_context(ctx, GF_ERR_NOMEM);
        gather_check_kernel<<<gf_cuda_blocks(m), GF_CUDA_THREADS, 0, cu->stream>>>(idx->data, (int)is64, m, n, cu->d_err,
                                                                                   site);
        if ((st = gf_cuda_launched(ctx, "gather_check_kernel"))) return st;
    }
    int64_t total = gf_tensor_numel(y);
    if (total == 0) return GF_OK;
    int64_t inner = span(x->dims, axis + 1, x->rank);
    size_t e = gf_dtype_size(x->dtype);
    unsigned blocks = gf_cuda_blocks(total);
    switch (e) {
    case 1: gather_kernel<uint8_t><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((const uint8_t *)x->data, (uint8_t *)y->data, idx->data, (int)is64, n, m, inner, total); break;
    case 2: gather_kernel<uint16_t><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((const uint16_t *)x->data, (uint16_t *)y->data, idx->data, (int)is64, n, m, inner, total); break;
    case 4: gather_kernel<uint32_t><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((const uint32_t *)x->data, (uint32_t *)y->data, idx->data, (int)is64, n, m, inner, total); break;
    case 8: gather_kernel<unsigned long long><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((const unsigned long long *)x->data, (unsigned long long *)y->data, idx->data, (int)is64, n, m, inner, total); break;
    default: return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED, "Gather of %zu-byte elements", e);
    }
    return gf_cuda_launched(ctx, "gather_kernel");
}

/* ---- Pad ---- */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

typedef struct pad_plan {
    pad_mode mode;
    int64_t begin[GF_MAX_RANK], end[GF_MAX_RANK], dims[GF_MAX_RANK];
} pad_plan;

static gf_status pad_mode_of(const gf_op_ctx *ctx, pad_mode *mode)
{
    const char *m = gf_attr_string(ctx->node, "mode", "constant");
    if (!strcmp(m, "constant")) *mode = PAD_CONSTANT;
    else if (!strcmp(m, "reflect")) *mode = PAD_REFLECT;
    else if (!strcmp(m, "edge")) *mode = PAD_EDGE;
    else if (!strcmp(m, "wrap")) *mode = PAD_WRAP;
    else return gf_fail(GF_ERR_INVALID, "unknown mode '%s'", m);
    return GF_OK;
}

static gf_status pad_axes(const gf_op_ctx *ctx, int *axes, int *n_axes)
{
    int rank = ctx->inputs[0]->rank;
    const gf_tensor *t = ctx->node->opset >= 18 && ctx->n_inputs > 3 ? ctx->inputs[3] : NULL;
    *n_axes = rank;
    for (int d = 0; d < rank; d++) axes[d] = d;
    if (!t) return GF_OK;
    if (!gf_values_known(t)) return gf_fail(GF_ERR_RUNTIME, "pads are still unknown while running");
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

/* index.c's pad_plan_of. */
static gf_status pad_plan_of(const gf_op_ctx *ctx, pad_plan *p)
{
    const gf_tensor *x = ctx->inputs[0];
    int64_t pads[2 * GF_MAX_RANK];
    int n, axes[GF_MAX_RANK], n_axes;
    gf_status st = pad_mode_of(ctx, &p->mode);
    if (!st) st = pad_axes(ctx, axes, &n_axes);
    if (st) return st;
    if (ctx->node->opset < 11) {
        const int64_t *attr = gf_attr_ints(ctx->node, ctx->node->opset < 2 ? "paddings" : "pads", &n);
        if (!attr) return gf_fail(GF_ERR_INVALID, "the pads attribute is required");
        if (n > 2 * GF_MAX_RANK) return gf_fail(GF_ERR_INVALID, "pads has %d values for rank %d", n, x->rank);
        memcpy(pads, attr, (size_t)n * sizeof *pads);
    } else if (!gf_values_known(ctx->inputs[1])) {
        return gf_fail(GF_ERR_RUNTIME, "pads are still unknown while running");
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
        if (b < -dim || e < -dim || __builtin_add_overflow(dim, b, &p->dims[d]) ||
            __builtin_add_overflow(p->dims[d], e, &p->dims[d]) || p->dims[d] < 0)
            return gf_fail(GF_ERR_SHAPE, "pads (%lld, %lld) do not fit axis %d of size %lld", (long long)b, (long long)e, d,
                           (long long)dim);
        int64_t kept = dim + (b < 0 ? b : 0) + (e < 0 ? e : 0);
        if (p->mode != PAD_CONSTANT && p->dims[d] > 0 && (b > 0 || e > 0)) {
            if (kept < 1)
                return gf_fail(GF_ERR_INVALID, "cannot extend axis %d by edge, reflect or wrap: nothing of it is left", d);
            if (p->mode == PAD_REFLECT && (b > kept - 1 || e > kept - 1))
                return gf_fail(GF_ERR_INVALID, "reflect pads (%lld, %lld) on axis %d must be smaller than its length %lld",
                               (long long)b, (long long)e, d, (long long)kept);
        }
    }
    return GF_OK;
}

/* index.c's pad_value: the bytes padding writes. */
static void pad_value(const gf_op_ctx *ctx, unsigned char *value)
{
    const gf_tensor *x = ctx->inputs[0], *given = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    memset(value, 0, 16);
    if (ctx->node->opset < 11) {
        gf_tensor v;
        memset(&v, 0, sizeof v);
        v.dtype = x->dtype;
        v.data = value;
        gf_num_set(&v, 0, gf_attr_float(ctx->node, "value", 0));
    } else if (given && gf_tensor_numel(given) == 1) {
        memcpy(value, given->data, gf_dtype_size(x->dtype));
    }
}

/* index.c's pad_source. */
static int64_t pad_source(int64_t o, int64_t begin, int64_t end, int64_t dim, pad_mode mode)
{
    int64_t i = o - begin;
    if (i >= 0 && i < dim) return i;
    int64_t lo = begin < 0 ? -begin : 0, kept = dim + (begin < 0 ? begin : 0) + (end < 0 ? end : 0);
    switch (mode) {
    case PAD_EDGE: return i < 0 ? 0 : dim - 1;
    case PAD_REFLECT: return i < 0 ? -i : 2 * (dim - 1) - i;
    case PAD_WRAP: return lo + ((i - lo) % kept + kept) % kept;
    default: return -1;
    }
}

struct pad_geom {
    int rank;
    int64_t ydims[GF_MAX_RANK], xstrides[GF_MAX_RANK], map_at[GF_MAX_RANK];
};

/* Output element j reads x at the mapped position of each coordinate, or the constant
 * where a map says -1. */
template <typename T>
__global__ void pad_kernel(const T *x, T *y, const int64_t *maps, pad_geom g, T value, int64_t n)
{
    GF_CUDA_LOOP(j, n) {
        int64_t rest = j, off = 0;
        int constant = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t c = rest % g.ydims[d];
            rest /= g.ydims[d];
            int64_t s = maps[g.map_at[d] + c];
            if (s < 0) constant = 1;
            else off += s * g.xstrides[d];
        }
        y[j] = constant ? value : x[off];
    }
}

template <typename T>
static void launch_pad(const void *x, void *y, const int64_t *maps, const pad_geom &g, const unsigned char *value,
                       int64_t n, cudaStream_t s)
{
    T v;
    memcpy(&v, value, sizeof v);
    pad_kernel<T><<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, s>>>((const T *)x, (T *)y, maps, g, v, n);
}

static gf_status pad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    pad_plan p;
    memset(&p, 0, sizeof p);
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    gf_status st = pad_plan_of(ctx, &p);
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t numel = gf_tensor_numel(y);
    size_t e = gf_dtype_size(x->dtype);
    if (numel == 0) return GF_OK;
    int r = y->rank;
    if (r == 0) return gf_cuda_copy_bytes(ctx, cu, y->data, x->data, e);
    unsigned char value[16];
    pad_value(ctx, value);
    pad_geom g;
    g.rank = r;
    int64_t total = 0, s = 1;
    for (int d = r - 1; d >= 0; d--) {
        g.xstrides[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < r; d++) {
        g.ydims[d] = y->dims[d];
        g.map_at[d] = total;
        total += y->dims[d];
    }
    int64_t *maps = (int64_t *)malloc((size_t)total * sizeof *maps);
    if (!maps) return gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory");
    for (int d = 0; d < r; d++)
        for (int64_t o = 0; o < y->dims[d]; o++)
            maps[g.map_at[d] + o] = pad_source(o, p.begin[d], p.end[d], x->dims[d], p.mode);
    int64_t *d_maps = NULL;
    st = gf_cuda_upload(ctx, cu, maps, (size_t)total * sizeof *maps, (void **)&d_maps);
    free(maps);
    if (st) return st;
    switch (e) {
    case 1: launch_pad<uint8_t>(x->data, y->data, d_maps, g, value, numel, cu->stream); break;
    case 2: launch_pad<uint16_t>(x->data, y->data, d_maps, g, value, numel, cu->stream); break;
    case 4: launch_pad<uint32_t>(x->data, y->data, d_maps, g, value, numel, cu->stream); break;
    case 8: launch_pad<unsigned long long>(x->data, y->data, d_maps, g, value, numel, cu->stream); break;
    default: st = gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED, "Pad of %zu-byte elements", e); break;
    }
    if (!st) st = gf_cuda_launched(ctx, "pad_kernel");
    gf_cuda_scratch_free(cu, d_maps);
    return st;
}

extern "C" const gf_cuda_op gf_cuda_ops_index[] = {
    {"", "Concat", 1, 0, concat_cuda, NULL, 0},
    {"", "Split", 1, 0, split_cuda, NULL, GF_CUDA_HOST(1)},
    {"", "Slice", 1, 0, slice_cuda, NULL, GF_CUDA_HOST_FROM(1)},
    {"", "Gather", 1, 0, gather_cuda, NULL, 0},
    {"", "Pad", 1, 0, pad_cuda, NULL, GF_CUDA_HOST_FROM(1)},
    {0},
};
