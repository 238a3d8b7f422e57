/* AllReduceMean (domain ai.graft) on CUDA: one NCCL all-reduce of every input, grouped,
 * on the compute stream, averaging over the session's gf_data_parallel group (what the
 * CPU twin, ops/collective.c, does for a group of one). */
#include "cuda_ctx.h"

static gf_status all_reduce_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int n = ctx->n_inputs;
    if (cu->opt.parallel.world_size <= 1) { /* alone: the mean is the input */
        for (int i = 0; i < n; i++) {
            if (ctx->outputs[i]->data == ctx->inputs[i]->data) continue;
            gf_status st = gf_cuda_copy_bytes(ctx, cu, ctx->outputs[i]->data, ctx->inputs[i]->data,
                                              gf_tensor_nbytes(ctx->inputs[i]));
            if (st) return st;
        }
        return GF_OK;
    }
    const float **src = (const float **)malloc((size_t)n * sizeof *src);
    float **dst = (float **)malloc((size_t)n * sizeof *dst);
    int64_t *counts = (int64_t *)malloc((size_t)n * sizeof *counts);
    gf_status st = src && dst && counts ? GF_OK : gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) {
        src[i] = (const float *)ctx->inputs[i]->data;
        dst[i] = (float *)ctx->outputs[i]->data;
        counts[i] = gf_tensor_numel(ctx->inputs[i]);
    }
    if (!st) st = gf_cuda_all_reduce_mean(ctx, cu, n, src, dst, counts);
    free(src);
    free(dst);
    free(counts);
    return st;
}

extern "C" const gf_cuda_op gf_cuda_ops_collective[] = {
    {"ai.graft", "AllReduceMean", 1, 0, all_reduce_cuda, gf_cuda_check_all_float, 0},
    {0},
};
