/* MaxPool, AveragePool and GlobalAveragePool on the GPU (twin: ops/pool.c), float32.
 *
 * cuDNN pools when its definition is the reference's: no dilation, pads equal at both
 * ends and below the window, no window pushed past the pads by ceil_mode, and for
 * MaxPool no Indices output. cuDNN then divides AveragePool's sum by the window's size
 * (count_include_pad) or by its taps inside X, as the reference does. One difference
 * remains, for NaN only: cuDNN's MaxPool gives NaN when any tap is NaN, the reference
 * when the first tap is. Everything else (dilations, asymmetric pads, ceil_mode,
 * Indices with either storage_order) runs graft's direct kernel, one thread per
 * output, which is the reference loop itself in double. GlobalAveragePool is a mean
 * over the spatial dims (the sum reduction, in double). */
#include "cuda_util.cuh"

extern "C" {
#include "../dnnl_util.h"
}

#include <string.h>

typedef enum pool_kind { POOL_MAX, POOL_AVG } pool_kind;

typedef struct pool_spec {
    pool_kind kind;
    int global;
    int count_include_pad;
    int storage_order;
    int64_t n, c;
    gf_window w;
} pool_spec;

/* pool.c's read_pool_spec for the kinds the GPU runs. */
static gf_status read_pool_spec(const gf_op_ctx *ctx, pool_spec *ps)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    memset(ps, 0, sizeof *ps);
    ps->kind = strstr(ctx->node->op_type, "MaxPool") ? POOL_MAX : POOL_AVG;
    ps->global = !strncmp(ctx->node->op_type, "Global", 6);
    if (x->dtype != GF_FLOAT)
        return gf_fail(GF_ERR_UNSUPPORTED, "the CUDA kernel takes float32, X is %s", gf_dtype_name(x->dtype));
    if (x->rank < 3) return gf_fail(GF_ERR_SHAPE, "input X has rank %d, expected N x C x spatial dims", x->rank);
    ps->n = x->dims[0];
    ps->c = x->dims[1];
    ps->count_include_pad = (int)gf_attr_int(ctx->node, "count_include_pad", 0);
    ps->storage_order = (int)gf_attr_int(ctx->node, "storage_order", 0);
    if (ps->global) {
        if ((st = gf_window_read(ctx, x, x->dims + 2, &ps->w))) return st;
        return gf_window_forward(ctx, 0, &ps->w);
    }
    return gf_window_pool(ctx, x, &ps->w);
}

/* ---- the direct kernel: pool.c's pool_reference ---- */

__device__ inline void window_pos(int64_t i, const int64_t *dims, int64_t *pos)
{
    pos[2] = i % dims[2];
    pos[1] = i / dims[2] % dims[1];
    pos[0] = i / (dims[2] * dims[1]);
}

__global__ void pool_direct_kernel(const float *x, float *y, int64_t *indices, gf_window w, int is_max,
                                   int count_include_pad, int storage_order, int64_t n)
{
    int64_t in_size = w.in[0] * w.in[1] * w.in[2], out_size = w.out[0] * w.out[1] * w.out[2];
    int64_t k_size = w.kernel[0] * w.kernel[1] * w.kernel[2];
    GF_CUDA_LOOP(i, n) {
        int64_t nc = i / out_size, o = i % out_size;
        int64_t op[3], kp[3], ip[3], best_ip[3] = {0, 0, 0}, taps = 0, pad_taps = 0;
        double acc = 0, best = 0;
        window_pos(o, w.out, op);
        for (int64_t k = 0; k < k_size; k++) {
            window_pos(k, w.kernel, kp);
            int inside = 1, in_pads = 1;
            for (int d = 0; d < 3; d++) {
                ip[d] = op[d] * w.stride[d] - w.pad_begin[d] + kp[d] * w.dilation[d];
                inside &= ip[d] >= 0 && ip[d] < w.in[d];
                in_pads &= ip[d] < w.in[d] + w.pad_end[d];
            }
            if (!inside) {
                pad_taps += in_pads;
                continue;
            }
            double v = x[nc * in_size + (ip[0] * w.in[1] + ip[1]) * w.in[2] + ip[2]];
            if (is_max && (taps == 0 || v > best)) {
                best = v;
                best_ip[0] = ip[0];
                best_ip[1] = ip[1];
                best_ip[2] = ip[2];
            }
            acc += v;
            taps++;
        }
        double divisor = (double)(count_include_pad ? taps + pad_taps : taps);
        y[i] = (float)(is_max ? best : acc / divisor);
        if (indices) {
            int64_t spatial = storage_order ? best_ip[0] + w.in[0] * (best_ip[1] + w.in[1] * best_ip[2])
                                            : (best_ip[0] * w.in[1] + best_ip[1]) * w.in[2] + best_ip[2];
            indices[i] = nc * in_size + spatial;
        }
    }
}

/* ---- cuDNN ---- */

static int cudnn_fits(const gf_op_ctx *ctx, const gf_cuda_ctx *cu, const pool_spec *ps)
{
    if (cu->opt.prefer_direct || ps->global) return 0;
    if (ps->kind == POOL_MAX && ctx->n_outputs > 1 && ctx->outputs[1]) return 0;
    const gf_window *w = &ps->w;
    for (int d = 0; d < w->nsp; d++) {
        if (w->dilation[d] != 1 || w->pad_begin[d] != w->pad_end[d] || w->pad_begin[d] >= w->kernel[d]) return 0;
        if (w->in[d] + 2 * w->pad_begin[d] < w->kernel[d]) return 0;
        if (w->out[d] != (w->in[d] + 2 * w->pad_begin[d] - w->kernel[d]) / w->stride[d] + 1) return 0;
        if (w->in[d] > INT32_MAX || w->kernel[d] > INT32_MAX || w->stride[d] > INT32_MAX) return 0;
    }
    return ps->n <= INT32_MAX && ps->c <= INT32_MAX;
}

static gf_status pool_cudnn(gf_op_ctx *ctx, gf_cuda_ctx *cu, const pool_spec *ps)
{
    const gf_window *w = &ps->w;
    int sp = w->nsp == 3 ? 3 : 2, lead = sp - w->nsp, nb = sp + 2;
    int xd[5] = {(int)ps->n, (int)ps->c}, yd[5] = {(int)ps->n, (int)ps->c}, win[3], pad[3], stride[3];
    for (int d = 0; d < sp; d++) {
        int s = d - lead;
        xd[2 + d] = s >= 0 ? (int)w->in[s] : 1;
        yd[2 + d] = s >= 0 ? (int)w->out[s] : 1;
        win[d] = s >= 0 ? (int)w->kernel[s] : 1;
        pad[d] = s >= 0 ? (int)w->pad_begin[s] : 0;
        stride[d] = s >= 0 ? (int)w->stride[s] : 1;
    }
    int xs[5], ys[5];
    gf_status st = gf_cuda_int_strides(ctx, nb, xd, xs);
    if (!st) st = gf_cuda_int_strides(ctx, nb, yd, ys);
    if (st) return st;
    cudnnPoolingMode_t mode = ps->kind == POOL_MAX          ? CUDNN_POOLING_MAX
                              : ps->count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                      : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    cudnnTensorDescriptor_t xdesc = NULL, ydesc = NULL;
    cudnnPoolingDescriptor_t pdesc = NULL;
    int out[5];
    const float one = 1.0f, zero = 0.0f;
    if (!(st = GF_CUDNN(ctx, cudnnCreateTensorDescriptor(&xdesc))) &&
        !(st = GF_CUDNN(ctx, cudnnCreateTensorDescriptor(&ydesc))) &&
        !(st = GF_CUDNN(ctx, cudnnCreatePoolingDescriptor(&pdesc))) &&
        !(st = GF_CUDNN(ctx, cudnnSetTensorNdDescriptor(xdesc, CUDNN_DATA_FLOAT, nb, xd, xs))) &&
        !(st = GF_CUDNN(ctx, cudnnSetTensorNdDescriptor(ydesc, CUDNN_DATA_FLOAT, nb, yd, ys))) &&
        !(st = GF_CUDNN(ctx, cudnnSetPoolingNdDescriptor(pdesc, mode, CUDNN_PROPAGATE_NAN, sp, win, pad, stride))) &&
        !(st = GF_CUDNN(ctx, cudnnGetPoolingNdForwardOutputDim(pdesc, xdesc, nb, out)))) {
        for (int i = 0; i < nb && !st; i++)
            if (out[i] != yd[i])
                st = gf_cuda_node_fail(ctx, GF_ERR_RUNTIME, "cuDNN computes dim %d of the pooled output as %d, graft as %d",
                                       i, out[i], yd[i]);
        if (!st)
            st = GF_CUDNN(ctx, cudnnPoolingForward(cu->cudnn, pdesc, &one, xdesc, ctx->inputs[0]->data, &zero, ydesc,
                                                   ctx->outputs[0]->data));
    }
    if (pdesc) cudnnDestroyPoolingDescriptor(pdesc);
    if (ydesc) cudnnDestroyTensorDescriptor(ydesc);
    if (xdesc) cudnnDestroyTensorDescriptor(xdesc);
    return st;
}

/* ---- the ops ---- */

static gf_status pool_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    pool_spec ps;
    gf_status st = read_pool_spec(ctx, &ps);
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *y = ctx->outputs[0];
    gf_tensor *indices = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    if (indices && ps.kind != POOL_MAX)
        return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "only MaxPool has a second output");
    if (!y || gf_tensor_numel(y) == 0) return GF_OK;
    const gf_window *w = &ps.w;
    int plain_global = ps.global;
    for (int d = 0; d < w->nsp; d++) plain_global &= w->pad_begin[d] == 0 && w->pad_end[d] == 0 && w->out[d] == 1;
    if (plain_global) {
        unsigned char reduced[GF_MAX_RANK] = {0};
        for (int d = 2; d < ctx->inputs[0]->rank; d++) reduced[d] = 1;
        return gf_cuda_reduce_sum(ctx, cu, (const float *)ctx->inputs[0]->data, ctx->inputs[0]->rank,
                                  ctx->inputs[0]->dims, reduced, 1, (float *)y->data);
    }
    if (cudnn_fits(ctx, cu, &ps)) return pool_cudnn(ctx, cu, &ps);
    int64_t n = gf_tensor_numel(y);
    pool_direct_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
        (const float *)ctx->inputs[0]->data, (float *)y->data, indices ? (int64_t *)indices->data : NULL, ps.w,
        ps.kind == POOL_MAX, ps.count_include_pad, ps.storage_order, n);
    return gf_cuda_launched(ctx, "pool_direct_kernel");
}

static gf_status pool_check(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, 1); }

extern "C" const gf_cuda_op gf_cuda_ops_pool[] = {
    {"", "MaxPool", 1, 0, pool_cuda, pool_check, 0},
    {"", "AveragePool", 1, 0, pool_cuda, pool_check, 0},
    {"", "GlobalAveragePool", 1, 0, pool_cuda, pool_check, 0},
    {0},
};
