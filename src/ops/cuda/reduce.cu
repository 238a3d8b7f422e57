/* ReduceSum and ReduceMean on float32 on the GPU (twin: ops/reduce.c): the axes as
 * reduce.c reads them (an attribute, or input 1 from opset 13 for ReduceSum and 18 for
 * ReduceMean; noop_with_empty_axes), the sum in double, the mean dividing it by the
 * count (0 / 0 for an empty axis, as the reference). */
#include "cuda_util.cuh"

#include "../reduce.h"

#include <string.h>

static int is_mean(const gf_op_ctx *ctx) { return !strcmp(ctx->node->op_type, "ReduceMean"); }

static gf_status reduce_check(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 2);
    return st ? st : gf_cuda_check_float(ctx, 0, 1);
}

static gf_status reduce_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int axes_as_input = ctx->node->opset >= (is_mean(ctx) ? 18 : 13);
    gf_reduce_axes axes;
    int dynamic;
    gf_status st = gf_check_inputs(ctx, 1, axes_as_input ? 2 : 1);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (!st) st = gf_reduce_read_axes(ctx, axes_as_input, &axes, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "axes are not known when the kernel runs");
    if (st) return gf_cuda_node_context(ctx, st);
    const gf_tensor *x = ctx->inputs[0];
    return gf_cuda_reduce_sum(ctx, cu, (const float *)x->data, x->rank, x->dims, axes.reduced, is_mean(ctx),
                              (float *)ctx->outputs[0]->data);
}

extern "C" const gf_cuda_op gf_cuda_ops_reduce[] = {
    {"", "ReduceSum", 1, 0, reduce_cuda, reduce_check, GF_CUDA_HOST(1)},
    {"", "ReduceMean", 1, 0, reduce_cuda, reduce_check, GF_CUDA_HOST(1)},
    {0},
};
