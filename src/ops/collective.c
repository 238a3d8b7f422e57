/* Collectives of data parallel training (domain ai.graft).
 *
 *   AllReduceMean(x_0, ..., x_{n-1}) -> (y_0, ..., y_{n-1})
 *       y_i = the mean of x_i over every process of the session's gf_data_parallel group
 *
 * The trainer puts one after the backward pass, over every gradient and every new
 * running statistic, when it trains in more than one process. The group runs on CUDA
 * devices (ops/cuda/collective.cu, over NCCL); this CPU kernel is the group of one,
 * where the mean is x itself. */
#include "op.h"

#include <string.h>

static gf_status all_reduce_infer(gf_op_ctx *ctx)
{
    if (ctx->n_inputs < 1 || ctx->n_outputs != ctx->n_inputs)
        return gf_fail(GF_ERR_INVALID, "expects as many outputs as inputs, at least one (has %d inputs, %d outputs)",
                       ctx->n_inputs, ctx->n_outputs);
    static const gf_dtype floats[] = {GF_FLOAT, GF_UNDEFINED};
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (!ctx->inputs[i] || !ctx->outputs[i])
            return gf_fail(GF_ERR_INVALID, "input and output %d must both be there", i);
        gf_status st = gf_check_dtype(ctx, i, floats);
        if (st) return st;
        gf_set_shape(ctx->outputs[i], GF_FLOAT, ctx->inputs[i]->rank, ctx->inputs[i]->dims);
    }
    return GF_OK;
}

static gf_status all_reduce_cpu(gf_op_ctx *ctx)
{
    for (int i = 0; i < ctx->n_inputs; i++)
        if (ctx->outputs[i]->data != ctx->inputs[i]->data)
            memcpy(ctx->outputs[i]->data, ctx->inputs[i]->data, gf_tensor_nbytes(ctx->inputs[i]));
    return GF_OK;
}

const gf_op gf_ops_collective[] = {
    {"ai.graft", "AllReduceMean", 1, 0, all_reduce_infer, all_reduce_cpu},
    {0},
};
