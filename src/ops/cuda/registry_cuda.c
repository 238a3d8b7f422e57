/* The CUDA kernels' registry: every CUDA family's table, searched by (domain, op
 * type, opset) exactly as registry.c searches the CPU ones.
 *
 * Why a table of its own and not a `cuda` member of struct gf_op: the CPU tables are
 * const arrays defined in each CPU family file (ops/conv.c, ...), so filling a member
 * from the CUDA build would mean editing every one of them under #ifdef, and the CPU
 * build must not see CUDA at all. Here each CUDA family file (ops/cuda/conv.cu, ...)
 * defines its own table beside its kernels, and the session, after resolving a node's
 * CPU op (gf_op_find, whose infer always runs), asks gf_cuda_op_find for its kernel
 * on the GPU: NULL means there is none. */
#include "cuda_ctx.h"

#include <string.h>

extern const gf_cuda_op gf_cuda_ops_conv[], gf_cuda_ops_pool[], gf_cuda_ops_norm[], gf_cuda_ops_gemm[],
    gf_cuda_ops_elementwise[], gf_cuda_ops_unary[], gf_cuda_ops_shape[], gf_cuda_ops_index[], gf_cuda_ops_reduce[],
    gf_cuda_ops_softmax[], gf_cuda_ops_resize[], gf_cuda_ops_conv_grad[], gf_cuda_ops_pool_grad[],
    gf_cuda_ops_norm_grad[], gf_cuda_ops_activation_grad[], gf_cuda_ops_loss_train[], gf_cuda_ops_movement_grad[],
    gf_cuda_ops_optimizer[], gf_cuda_ops_train_util[], gf_cuda_ops_collective[];

static const gf_cuda_op *const families[] = {
    gf_cuda_ops_conv, gf_cuda_ops_pool, gf_cuda_ops_norm, gf_cuda_ops_gemm, gf_cuda_ops_elementwise,
    gf_cuda_ops_unary, gf_cuda_ops_shape, gf_cuda_ops_index, gf_cuda_ops_reduce, gf_cuda_ops_softmax,
    gf_cuda_ops_resize,
    /* domain ai.graft */
    gf_cuda_ops_conv_grad, gf_cuda_ops_pool_grad, gf_cuda_ops_norm_grad, gf_cuda_ops_activation_grad,
    gf_cuda_ops_loss_train, gf_cuda_ops_movement_grad, gf_cuda_ops_optimizer, gf_cuda_ops_train_util,
    gf_cuda_ops_collective,
};

static int same_domain(const char *a, const char *b)
{
    if (!strcmp(a, "ai.onnx")) a = "";
    if (!strcmp(b, "ai.onnx")) b = "";
    return !strcmp(a, b);
}

const gf_cuda_op *gf_cuda_op_find(const char *domain, const char *op_type, int opset)
{
    const gf_cuda_op *best = NULL;
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const gf_cuda_op *op = families[f]; op->op_type; op++) {
            if (strcmp(op->op_type, op_type) || !same_domain(op->domain, domain)) continue;
            if (opset < op->since_version) continue;
            if (op->until_version && opset > op->until_version) continue;
            if (!best || op->since_version > best->since_version) best = op;
        }
    return best;
}

int gf_cuda_op_known(const char *domain, const char *op_type)
{
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const gf_cuda_op *op = families[f]; op->op_type; op++)
            if (!strcmp(op->op_type, op_type) && same_domain(op->domain, domain)) return 1;
    return 0;
}
