/* CheckFinite (domain ai.graft): passes its input through, and fails the run when it
 * holds a NaN or an infinity. A training step ends its loss with it, so a step whose
 * loss is not finite stops before its parameter updates are applied. */
#include "op.h"

#include <math.h>
#include <string.h>

static gf_status check_finite_infer(gf_op_ctx *ctx)
{
    static const gf_dtype floats[] = {GF_FLOAT, GF_UNDEFINED};
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = gf_check_dtype(ctx, 0, floats);
    if (!st) gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return st;
}

static gf_status check_finite_cpu(gf_op_ctx *ctx)
{
    const float *x = ctx->inputs[0]->data;
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return gf_fail(GF_ERR_RUNTIME, "the value is not finite (%g at element %lld)", (double)x[i], (long long)i);
    memcpy(ctx->outputs[0]->data, x, (size_t)n * sizeof *x);
    return GF_OK;
}

const gf_op gf_ops_train_util[] = {
    {"ai.graft", "CheckFinite", 1, 0, check_finite_infer, check_finite_cpu},
    {0},
};
