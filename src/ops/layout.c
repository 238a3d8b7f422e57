/* Reorder (domain ai.graft): Y = X, moved from X's layout to Y's (op.h, GF_LAYOUT_*).
 * Sessions put one where a blocked activation meets a kernel that reads it plain. Run
 * without layouts (as a node of a model file) it is a copy. */
#include "dnnl_util.h"

#include <string.h>

static gf_status reorder_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st || !ctx->outputs[0]) return st;
    gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return GF_OK;
}

static gf_status reorder_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    if (!y) return GF_OK;
    int from = gf_in_layout(ctx, 0), to = gf_out_layout(ctx, 0);
    if (from == to || x->dtype != GF_FLOAT) {
        if (y->data != x->data && gf_tensor_nbytes(x)) memcpy(y->data, x->data, gf_tensor_nbytes(x));
        return GF_OK;
    }
    return gf_layout_convert(x->rank, x->dims, x->data, from, y->data, to);
}

/* Each side may be either: the session says which. */
static gf_status reorder_layouts(gf_op_ctx *ctx)
{
    ctx->in_layout[0] = ctx->out_layout[0] = GF_LAYOUT_CAN_BLOCK;
    return GF_OK;
}

const gf_op gf_ops_layout[] = {
    {"ai.graft", "Reorder", 1, 0, reorder_infer, reorder_cpu, 0, reorder_layouts},
    {0},
};
