/* Shape, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Transpose, Constant,
 * ConstantOfShape and Dropout (inference) on the GPU (twin: ops/shape.c). They move
 * bytes, so every element type works. Output shapes come from the CPU infer, which
 * reads the shape-giving inputs (Reshape's shape, Squeeze's axes, ...) on the host. */
#include "cuda_util.cuh"

#include "../shape.h"

static gf_tensor *out0(gf_op_ctx *ctx) { return ctx->outputs[0]; }

/* shape.c's copy_input: the output holds the input's bytes. */
static gf_status copy_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    size_t bytes = gf_tensor_nbytes(ctx->inputs[0]);
    if (bytes != gf_tensor_nbytes(out0(ctx)))
        return gf_cuda_node_fail(ctx, GF_ERR_RUNTIME, "output holds %zu bytes, input %zu", gf_tensor_nbytes(out0(ctx)),
                                 bytes);
    return gf_cuda_copy_bytes(ctx, cu, out0(ctx)->data, ctx->inputs[0]->data, bytes);
}

/* ---- Shape ---- */

static gf_status shape_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int64_t start, end, dims[GF_MAX_RANK];
    gf_shape_range(ctx, ctx->inputs[0]->rank, &start, &end);
    for (int64_t d = start; d < end; d++) dims[d - start] = ctx->inputs[0]->dims[d];
    if (end <= start) return GF_OK;
    return GF_CU(ctx, cudaMemcpyAsync(out0(ctx)->data, dims, (size_t)(end - start) * sizeof *dims,
                                      cudaMemcpyHostToDevice, cu->stream));
}

/* ---- Transpose ---- */

static gf_status transpose_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    const gf_tensor *x = ctx->inputs[0];
    int perm[GF_MAX_RANK];
    gf_status st = gf_transpose_perm(ctx, x->rank, perm);
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t in_strides[GF_MAX_RANK], strides[GF_MAX_RANK], s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        in_strides[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < x->rank; d++) strides[d] = in_strides[perm[d]];
    return gf_cuda_copy_strided(ctx, cu, out0(ctx)->data, NULL, x->data, strides, gf_dtype_size(x->dtype), x->rank,
                                out0(ctx)->dims);
}

/* ---- Constant, ConstantOfShape ---- */

static gf_status constant_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_tensor v;
    gf_status st = gf_constant_value(ctx->node, &v);
    if (st) return gf_cuda_node_context(ctx, st);
    size_t bytes = gf_tensor_nbytes(&v);
    if (!bytes) return GF_OK;
    return GF_CU(ctx, cudaMemcpyAsync(out0(ctx)->data, v.data, bytes, cudaMemcpyHostToDevice, cu->stream));
}

static gf_status constant_of_shape_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_tensor v;
    gf_status st = gf_constant_of_shape_value(ctx->node, &v);
    if (st) return gf_cuda_node_context(ctx, st);
    return gf_cuda_fill(ctx, cu, out0(ctx)->data, gf_tensor_numel(out0(ctx)), v.data, gf_dtype_size(v.dtype));
}

/* ---- Dropout (inference) ---- */

static gf_status dropout_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = gf_dropout_inference_check(ctx); /* training_mode is a host input */
    if (st) return gf_cuda_node_context(ctx, st);
    st = copy_cuda(ctx, cu);
    gf_tensor *mask = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    if (st || !mask) return st;
    /* every element kept: true from opset 12, zeros before (as shape.c writes) */
    unsigned char value[16] = {0};
    gf_tensor one = {mask->dtype, 0, {0}, value, 0};
    gf_num_set(&one, 0, ctx->node->opset >= 12 ? 1 : 0);
    return gf_cuda_fill(ctx, cu, mask->data, gf_tensor_numel(mask), value, gf_dtype_size(mask->dtype));
}

extern "C" const gf_cuda_op gf_cuda_ops_shape[] = {
    {"", "Shape", 1, 0, shape_cuda, NULL, 0},
    {"", "Reshape", 1, 0, copy_cuda, NULL, GF_CUDA_HOST(1)},
    {"", "Flatten", 1, 0, copy_cuda, NULL, 0},
    {"", "Squeeze", 1, 0, copy_cuda, NULL, GF_CUDA_HOST(1)},
    {"", "Unsqueeze", 1, 0, copy_cuda, NULL, GF_CUDA_HOST(1)},
    {"", "Identity", 1, 0, copy_cuda, NULL, 0},
    {"", "Transpose", 1, 0, transpose_cuda, NULL, 0},
    {"", "Constant", 1, 0, constant_cuda, NULL, 0},
    {"", "ConstantOfShape", 9, 0, constant_of_shape_cuda, NULL, GF_CUDA_HOST(0)},
    {"", "Dropout", 7, 0, dropout_cuda, NULL, GF_CUDA_HOST(1) | GF_CUDA_HOST(2)},
    {0},
};
