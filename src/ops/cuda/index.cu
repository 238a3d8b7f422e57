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

static gf_status concat_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int axis;
    gf_status st = ctx->n_inputs < 1 ? gf_fail(GF_ERR_INVALID, "needs at least one input") : gf_concat_axis(ctx, &axis);
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

static gf_status split_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int64_t *sizes = (int64_t *)malloc((size_t)ctx->n_outputs * sizeof *sizes + 1);
    if (!sizes) return gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory");
    int axis, dynamic;
    const gf_tensor *x = ctx->inputs[0];
    gf_status st = gf_split_sizes(ctx, &axis, sizes, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "split sizes are still unknown while running");
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

static gf_status slice_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t first, strides[GF_MAX_RANK];
    gf_status st = gf_slice_node_view(ctx, &first, strides);
    if (st) return gf_cuda_node_context(ctx, st);
    if (gf_tensor_numel(y) == 0) return GF_OK;
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
    gf_status st = gf_gather_axis(ctx, &axis);
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
    gf_pad_plan p;
    int dynamic;
    memset(&p, 0, sizeof p);
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    gf_status st = gf_pad_plan_of(ctx, &p, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "pads are still unknown while running");
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t numel = gf_tensor_numel(y);
    size_t e = gf_dtype_size(x->dtype);
    if (numel == 0) return GF_OK;
    int r = y->rank;
    if (r == 0) return gf_cuda_copy_bytes(ctx, cu, y->data, x->data, e);
    unsigned char value[16];
    gf_pad_value(ctx, value);
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
            maps[g.map_at[d] + o] = gf_pad_source(o, p.begin[d], p.end[d], x->dims[d], p.mode);
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
