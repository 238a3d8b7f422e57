/* The one op registry: every family's table, searched by (domain, op type, opset). */
#include "op.h"

#include <string.h>

extern const gf_op gf_ops_conv[], gf_ops_pool[], gf_ops_norm[], gf_ops_gemm[],
    gf_ops_elementwise[], gf_ops_unary[], gf_ops_shape[], gf_ops_index[], gf_ops_reduce[],
    gf_ops_softmax[], gf_ops_resize[], gf_ops_loss[], gf_ops_detection[], gf_ops_quant[], gf_ops_einsum[],
    gf_ops_conv_grad[], gf_ops_pool_grad[], gf_ops_norm_grad[], gf_ops_activation_grad[], gf_ops_loss_train[],
    gf_ops_movement_grad[], gf_ops_optimizer[], gf_ops_train_util[], gf_ops_collective[], gf_ops_layout[];

static const gf_op *const families[] = {
    gf_ops_conv, gf_ops_pool, gf_ops_norm, gf_ops_gemm, gf_ops_elementwise, gf_ops_unary,
    gf_ops_shape, gf_ops_index, gf_ops_reduce, gf_ops_softmax, gf_ops_resize, gf_ops_loss,
    gf_ops_detection, gf_ops_quant, gf_ops_einsum,
    /* domain ai.graft: what training adds (gradients, training-mode forms, losses, optimizer steps) */
    gf_ops_conv_grad, gf_ops_pool_grad, gf_ops_norm_grad, gf_ops_activation_grad, gf_ops_loss_train,
    gf_ops_movement_grad, gf_ops_optimizer, gf_ops_train_util, gf_ops_collective,
    /* domain ai.graft: what a session's rewrites add (layout reorders) */
    gf_ops_layout,
};

static int same_domain(const char *a, const char *b)
{
    /* "ai.onnx" is the default domain's long name. */
    if (!strcmp(a, "ai.onnx")) a = "";
    if (!strcmp(b, "ai.onnx")) b = "";
    return !strcmp(a, b);
}

const gf_op *gf_op_find(const char *domain, const char *op_type, int opset)
{
    const gf_op *best = NULL;
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const gf_op *op = families[f]; op->op_type; op++) {
            if (strcmp(op->op_type, op_type) || !same_domain(op->domain, domain)) continue;
            if (opset < op->since_version) continue;
            if (op->until_version && opset > op->until_version) continue;
            if (!best || op->since_version > best->since_version) best = op;
        }
    return best;
}

int gf_op_known(const char *domain, const char *op_type)
{
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const gf_op *op = families[f]; op->op_type; op++)
            if (!strcmp(op->op_type, op_type) && same_domain(op->domain, domain)) return 1;
    return 0;
}
