/* ConvGradInput and ConvGradWeight (domain ai.graft) on the GPU (twin:
 * ops/conv_grad.c): cuDNN's backward-data and backward-filter convolutions, over 1 to
 * 3 spatial dims, float32. x_shape and w_shape are host inputs. Pads that differ at the
 * two ends are handled as conv.cu handles them: the convolution of X padded explicitly
 * by the difference, so ConvGradInput computes the gradient of that padded X and keeps
 * its interior, and ConvGradWeight reads the padded copy. */
#include "conv_cudnn.h"
#include "cuda_util.cuh"

extern "C" {
#include "../dnnl_util.h"
}

#include <stdio.h>
#include <string.h>

typedef struct conv_grad_shape {
    int64_t n, c, m, group;
    gf_window w;
} conv_grad_shape;

/* conv_grad.c's conv_geometry. */
static gf_status conv_geometry(const gf_op_ctx *ctx, const gf_tensor *dy, const gf_tensor *x, const char *x_name,
                               const gf_tensor *w, const char *w_name, conv_grad_shape *sh)
{
    if (x->rank < 3) return gf_fail(GF_ERR_SHAPE, "%s has rank %d, expected N x C x spatial dims", x_name, x->rank);
    if (w->rank != x->rank)
        return gf_fail(GF_ERR_SHAPE, "%s has rank %d but %s has rank %d", w_name, w->rank, x_name, x->rank);
    memset(sh, 0, sizeof *sh);
    sh->n = x->dims[0];
    sh->c = x->dims[1];
    sh->m = w->dims[0];
    sh->group = gf_attr_int(ctx->node, "group", 1);
    if (sh->group < 1 || sh->group > sh->c || sh->c % sh->group)
        return gf_fail(GF_ERR_INVALID, "group %lld does not divide the %lld channels of %s", (long long)sh->group,
                       (long long)sh->c, x_name);
    if (w->dims[1] != sh->c / sh->group)
        return gf_fail(GF_ERR_SHAPE, "%s has %lld channels in %lld groups, so %s's dim 1 must be %lld, is %lld", x_name,
                       (long long)sh->c, (long long)sh->group, w_name, (long long)(sh->c / sh->group),
                       (long long)w->dims[1]);
    if (sh->m % sh->group)
        return gf_fail(GF_ERR_SHAPE, "group %lld does not divide the %lld output channels of %s", (long long)sh->group,
                       (long long)sh->m, w_name);
    int n_kernel;
    const int64_t *kernel_attr = gf_attr_ints(ctx->node, "kernel_shape", &n_kernel);
    if (kernel_attr && n_kernel != x->rank - 2)
        return gf_fail(GF_ERR_INVALID, "kernel_shape has %d values, expected %d", n_kernel, x->rank - 2);
    for (int d = 0; kernel_attr && d < n_kernel; d++)
        if (kernel_attr[d] != w->dims[2 + d])
            return gf_fail(GF_ERR_SHAPE, "kernel_shape[%d] = %lld but %s's kernel is %lld", d,
                           (long long)kernel_attr[d], w_name, (long long)w->dims[2 + d]);
    gf_status st = gf_window_read(ctx, x, w->dims + 2, &sh->w);
    if (!st) st = gf_window_forward(ctx, 0, &sh->w);
    if (!st) st = gf_check_numel(x->rank, x->dims);
    if (!st) st = gf_check_numel(w->rank, w->dims);
    if (st) return st;
    char conv[96];
    snprintf(conv, sizeof conv, "the Conv of %s with %s", x_name, w_name);
    return gf_window_check_output(dy, "dY", sh->n, sh->m, &sh->w, conv);
}

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
    conv_grad_shape sh;
    const gf_tensor *dy = ctx->inputs[0], *other = ctx->inputs[1];
    if (!st)
        st = grad_input ? conv_geometry(ctx, dy, &shaped, "X (x_shape)", other, "W", &sh)
                        : conv_geometry(ctx, dy, other, "X", &shaped, "W (w_shape)", &sh);
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
