/* CheckFinite (domain ai.graft) on the GPU (twin: ops/train_util.c): passes its input
 * through and fails the run when it holds a NaN or an infinity. A training step ends its
 * loss with it so that a non-finite step stops before the optimizer writes the
 * parameters; on the GPU that means waiting here for the answer (a scalar loss: one
 * short synchronization per step) before the session queues the optimizer's kernels. */
#include "cuda_util.cuh"

#include <math.h>

__global__ void check_finite_kernel(const float *x, float *y, int64_t n, unsigned long long *first_bad)
{
    GF_CUDA_LOOP(i, n) {
        float v = x[i];
        if (!isfinite(v)) atomicMin(first_bad, (unsigned long long)i);
        if (y != x) y[i] = v;
    }
}

static gf_status check_finite_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (st) return gf_cuda_node_context(ctx, st);
    const float *x = (const float *)ctx->inputs[0]->data;
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    if (n == 0) return GF_OK;
    unsigned long long *bad, none = ~0ull, found;
    if ((st = gf_cuda_scratch(ctx, cu, sizeof *bad, (void **)&bad))) return st;
    st = GF_CU(ctx, cudaMemcpyAsync(bad, &none, sizeof none, cudaMemcpyHostToDevice, cu->stream));
    if (!st) {
        check_finite_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(x, (float *)ctx->outputs[0]->data, n,
                                                                                   bad);
        st = gf_cuda_launched(ctx, "check_finite_kernel");
    }
    if (!st) st = gf_cuda_read_small(ctx, cu, &found, bad, sizeof found);
    float value = 0;
    if (!st && found != none) st = gf_cuda_read_small(ctx, cu, &value, x + found, sizeof value);
    gf_cuda_scratch_free(cu, bad);
    if (!st && found != none)
        st = gf_cuda_node_fail(ctx, GF_ERR_RUNTIME, "the value is not finite (%g at element %lld)", (double)value,
                               (long long)found);
    return st;
}

static gf_status float_input(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, 1); }

extern "C" const gf_cuda_op gf_cuda_ops_train_util[] = {
    {"ai.graft", "CheckFinite", 1, 0, check_finite_cuda, float_input, 0},
    {0},
};
