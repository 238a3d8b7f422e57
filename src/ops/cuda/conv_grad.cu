/* ConvGradInput and ConvGradWeight (domain ai.graft) on the GPU (twin:
 * ops/conv_grad.c): cuDNN's backward-data and backward-filter convolutions, over 1 to
 * 3 spatial dims, float32. x_shape and w_shape are host inputs. Pads that differ at the
 * two ends are handled as conv.cu handles them: the convolution of X padded explicitly
 * by the difference, so ConvGradInput computes the gradient of that padded X and keeps
 * its interior, and ConvGradWeight reads the padded copy. */
#include "conv_cudnn.h"
#include "cuda_util.cuh"

extern "C" {
#include "../conv_shape.h"
#include "../dnnl_util.h"
}

#include <stdio.h>
#include <string.h>

/* The padding cuDNN keeps (the smaller end) and the explicitly padded size of X. */
static int split_pads(const gf_window *w, int64_t *sym, int64_t *extra_begin, int64_t *padded)
{
    int explicit_pad = 0;
    for (int d = 0; d < w->nsp; d++) {
        sym[d] = w->pad_begin[d] < w->pad_end[d] ? w->pad_begin[d] : w->pad_end[d];
        extra_begin[d] = w->pad_begin[d] - sym[d];
        padded[d] = w->in[d] + extra_begin[d] + (w->pad_end[d] - sym[d]);
        explicit_pad |= padded[d] != w->in[d];
    }
    return explicit_pad;
}

static int64_t volume(const int64_t *v, int nsp)
{
    int64_t p = 1;
    for (int d = 0; d < nsp; d++) p *= v[d];
    return p;
}

static gf_status conv_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int grad_input = !strcmp(ctx->node->op_type, "ConvGradInput");
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (!st) st = gf_cuda_check_float(ctx, 0, 2);
    gf_tensor shaped;
    const char *shape_name = grad_input ? "x_shape" : "w_shape";
    if (!st && !gf_values_known(ctx->inputs[2]))
        st = gf_fail(GF_ERR_RUNTIME, "%s is still unknown while running", shape_name);
    if (!st) st = gf_shape_input(ctx->inputs[2], shape_name, &shaped);
    gf_conv_grad_shape sh;
    const gf_tensor *dy = ctx->inputs[0], *other = ctx->inputs[1];
    if (!st)
        st = grad_input ? gf_conv_grad_geometry(ctx, dy, &shaped, "X (x_shape)", other, "W", &sh)
                        : gf_conv_grad_geometry(ctx, dy, other, "X", &shaped, "W (w_shape)", &sh);
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *out = ctx->outputs[0];
    if (!out || gf_tensor_numel(out) == 0) return GF_OK;
    if (gf_tensor_numel(dy) == 0 || gf_tensor_numel(other) == 0)
        return gf_cuda_zero(ctx, cu, out->data, gf_tensor_nbytes(out)); /* no term at all */
    const gf_window *w = &sh.w;
    int nsp = w->nsp;
    int64_t sym[3], extra[3], padded[3], neg_extra[3];
    int explicit_pad = split_pads(w, sym, extra, padded);
    for (int d = 0; d < nsp; d++) neg_extra[d] = -extra[d];
    gf_cu_conv g;
    st = gf_cu_conv_geometry(ctx, &g, nsp, sh.n, sh.c, sh.m, sh.group, explicit_pad ? padded : w->in, w->out, w->kernel,
                             sym, w->stride, w->dilation);
    if (st) return st;
    float *buf = NULL;
    if (explicit_pad &&
        (st = gf_cuda_scratch(ctx, cu, (size_t)(sh.n * sh.c * volume(padded, nsp)) * sizeof(float), (void **)&buf)))
        return st;
    if (grad_input) {
        /* dX = the interior of the padded X's gradient */
        st = gf_cu_conv_run(ctx, cu, &g, GF_CU_CONV_BWD_DATA, (const float *)dy->data, (const float *)other->data,
                            explicit_pad ? buf : (float *)out->data);
        if (!st && explicit_pad)
            st = gf_cuda_shift_copy(ctx, cu, (float *)out->data, w->in, buf, padded, extra, sh.n * sh.c, nsp);
    } else {
        const float *x = (const float *)other->data;
        if (explicit_pad) {
            st = gf_cuda_shift_copy(ctx, cu, buf, padded, x, w->in, neg_extra, sh.n * sh.c, nsp);
            x = buf;
        }
        if (!st) st = gf_cu_conv_run(ctx, cu, &g, GF_CU_CONV_BWD_FILTER, x, (const float *)dy->data, (float *)out->data);
    }
    gf_cuda_scratch_free(cu, buf);
    return st;
}

static gf_status conv_grad_check(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, 2); }

extern "C" const gf_cuda_op gf_cuda_ops_conv_grad[] = {
    {"ai.graft", "ConvGradInput", 1, 0, conv_grad_cuda, conv_grad_check, GF_CUDA_HOST(2)},
    {"ai.graft", "ConvGradWeight", 1, 0, conv_grad_cuda, conv_grad_check, GF_CUDA_HOST(2)},
    {0},
};
