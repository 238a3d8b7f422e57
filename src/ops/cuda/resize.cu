/* Resize and Upsample on the GPU (twin: ops/resize.c): nearest for any element type,
 * linear and cubic on float32.
 *
 * The coordinate mapping and the taps are resize.c's own (gf_resize_map_axes,
 * gf_resize_taps, through resize.h), computed on the host per axis and uploaded, so the
 * two devices cannot disagree on where an output reads. Nearest gathers through one
 * index table per axis (-1 where tf_crop_and_resize extrapolates). Linear and cubic sum,
 * in double, the tensor product of the resized axes' taps (the same sum the reference's
 * separable passes compute, one rounding order apart); axes the mapping leaves as they
 * are take their own coordinate, as the reference skips them. */
#include "cuda_util.cuh"

extern "C" {
#include "../resize.h"
}

#include <stdlib.h>
#include <string.h>

/* ---- the parameters ---- */

/* resize.h's reading, then what the CUDA kernels add: nearest moves elements of 1, 2, 4
 * or 8 bytes, linear and cubic take float32. */
static gf_status read_params(const gf_op_ctx *ctx, gf_resize_params *p)
{
    gf_status st = gf_resize_node_params(ctx, p);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    size_t e = gf_dtype_size(x->dtype);
    if (p->mode == GF_RESIZE_NEAREST ? !(e == 1 || e == 2 || e == 4 || e == 8) || x->dtype == GF_STRING
                                     : x->dtype != GF_FLOAT)
        return gf_fail(GF_ERR_UNSUPPORTED, "the CUDA kernel's %s resize does not take element type %s",
                       p->mode == GF_RESIZE_NEAREST ? "nearest" : "linear/cubic", gf_dtype_name(x->dtype));
    return GF_OK;
}

/* ---- kernels ---- */

struct resize_geom {
    int rank, k;
    int64_t ydims[GF_MAX_RANK], xstrides[GF_MAX_RANK];
    int64_t tap_at[GF_MAX_RANK];     /* axis d's taps: idx/w[tap_at[d] + j * k + t]; -1 for an identity axis */
    int64_t out_at[GF_MAX_RANK];     /* axis d's outside flags: outside[out_at[d] + j] */
};

template <typename T>
__global__ void resize_nearest_kernel(const T *x, T *y, const int64_t *idx, resize_geom g, T fill, int64_t n)
{
    GF_CUDA_LOOP(j, n) {
        int64_t rest = j, off = 0;
        int outside = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t c = rest % g.ydims[d];
            rest /= g.ydims[d];
            int64_t s = g.tap_at[d] < 0 ? c : idx[g.tap_at[d] + c];
            if (s < 0) outside = 1;
            else off += s * g.xstrides[d];
        }
        y[j] = outside ? fill : x[off];
    }
}

__global__ void resize_interp_kernel(const float *x, float *y, const int64_t *idx, const double *w,
                                     const unsigned char *outside, resize_geom g, float fill, int64_t n)
{
    GF_CUDA_LOOP(j, n) {
        int64_t c[GF_MAX_RANK], rest = j, base = 0;
        int out = 0, resized = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            c[d] = rest % g.ydims[d];
            rest /= g.ydims[d];
            if (g.tap_at[d] < 0) base += c[d] * g.xstrides[d];
            else {
                resized++;
                out |= outside[g.out_at[d] + c[d]];
            }
        }
        if (out) {
            y[j] = fill;
            continue;
        }
        int64_t combos = 1;
        for (int r = 0; r < resized; r++) combos *= g.k;
        double acc = 0;
        for (int64_t t = 0; t < combos; t++) {
            int64_t rem = t, off = base;
            double wt = 1;
            for (int d = 0; d < g.rank; d++) {
                if (g.tap_at[d] < 0) continue;
                int64_t tap = rem % g.k, at = g.tap_at[d] + c[d] * g.k + tap;
                rem /= g.k;
                wt *= w[at];
                off += idx[at] * g.xstrides[d];
            }
            acc += wt * x[off];
        }
        y[j] = (float)acc;
    }
}

template <typename T>
static void launch_nearest(const void *x, void *y, const int64_t *idx, const resize_geom &g, const void *fill, int64_t n,
                           cudaStream_t s)
{
    T f;
    memcpy(&f, fill, sizeof f);
    resize_nearest_kernel<T><<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, s>>>((const T *)x, (T *)y, idx, g, f, n);
}

static gf_status resize_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_resize_params p;
    gf_status st = read_params(ctx, &p);
    if (!st && !gf_resize_shape_known(&p)) st = gf_fail(GF_ERR_RUNTIME, "scales/sizes are not known when the kernel runs");
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    gf_resize_axis axes[GF_MAX_RANK];
    if (!st) st = gf_resize_map_axes(x->rank, x->dims, &p, axes);
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t numel = gf_tensor_numel(y);
    if (numel == 0) return GF_OK;
    size_t e = gf_dtype_size(x->dtype);
    if (x->rank == 0) return gf_cuda_copy_bytes(ctx, cu, y->data, x->data, e);
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] == 0)
            return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "cannot resize an empty axis %d to %lld", d,
                                     (long long)axes[d].out_len);
    int r = x->rank, k = gf_resize_taps_per_output(&p);
    resize_geom g;
    memset(&g, 0, sizeof g);
    g.rank = r;
    g.k = k;
    int64_t s = 1, taps = 0, outs = 0;
    for (int d = r - 1; d >= 0; d--) {
        g.xstrides[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < r; d++) {
        g.ydims[d] = y->dims[d];
        if (gf_resize_is_identity(&axes[d], &p)) {
            g.tap_at[d] = g.out_at[d] = -1;
            continue;
        }
        g.tap_at[d] = taps;
        g.out_at[d] = outs;
        taps += axes[d].out_len * k;
        outs += axes[d].out_len;
    }
    /* One upload: index table, weights, outside flags. */
    size_t idx_bytes = (size_t)taps * sizeof(int64_t), w_bytes = (size_t)taps * sizeof(double);
    size_t bytes = idx_bytes + w_bytes + (size_t)outs;
    char *host = (char *)malloc(bytes + 1);
    if (!host) return gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory for resize taps");
    int64_t *idx = (int64_t *)host;
    double *w = (double *)(host + idx_bytes);
    unsigned char *outside = (unsigned char *)(host + idx_bytes + w_bytes);
    for (int d = 0; d < r; d++) {
        if (g.tap_at[d] < 0) continue;
        gf_resize_taps(&axes[d], &p, idx + g.tap_at[d], w + g.tap_at[d], outside + g.out_at[d]);
        if (p.mode == GF_RESIZE_NEAREST)
            for (int64_t j = 0; j < axes[d].out_len; j++)
                if (outside[g.out_at[d] + j]) idx[g.tap_at[d] + j] = -1;
    }
    char *dev = NULL;
    st = gf_cuda_upload(ctx, cu, host, bytes, (void **)&dev);
    free(host);
    if (st) return st;
    const int64_t *d_idx = (const int64_t *)dev;
    if (p.mode == GF_RESIZE_NEAREST) {
        uint64_t fill_bits = 0;
        gf_tensor fill;
        memset(&fill, 0, sizeof fill);
        fill.dtype = x->dtype;
        fill.data = &fill_bits;
        gf_num_set(&fill, 0, p.extrapolation);
        switch (e) {
        case 1: launch_nearest<uint8_t>(x->data, y->data, d_idx, g, &fill_bits, numel, cu->stream); break;
        case 2: launch_nearest<uint16_t>(x->data, y->data, d_idx, g, &fill_bits, numel, cu->stream); break;
        case 4: launch_nearest<uint32_t>(x->data, y->data, d_idx, g, &fill_bits, numel, cu->stream); break;
        default: launch_nearest<unsigned long long>(x->data, y->data, d_idx, g, &fill_bits, numel, cu->stream); break;
        }
    } else {
        resize_interp_kernel<<<gf_cuda_blocks(numel), GF_CUDA_THREADS, 0, cu->stream>>>(
            (const float *)x->data, (float *)y->data, d_idx, (const double *)(dev + idx_bytes),
            (const unsigned char *)(dev + idx_bytes + w_bytes), g, (float)p.extrapolation, numel);
    }
    st = gf_cuda_launched(ctx, "resize_kernel");
    gf_cuda_scratch_free(cu, dev);
    return st;
}

static gf_status resize_check(gf_op_ctx *ctx)
{
    gf_resize_params p;
    return read_params(ctx, &p);
}

extern "C" const gf_cuda_op gf_cuda_ops_resize[] = {
    {"", "Upsample", 7, 9, resize_cuda, resize_check, GF_CUDA_HOST_FROM(1)},
    {"", "Resize", 10, 0, resize_cuda, resize_check, GF_CUDA_HOST_FROM(1)},
    {0},
};
