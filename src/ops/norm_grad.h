/* What norm_grad.c shares with its CUDA twin (cuda/norm_grad.cu): how BatchNormTrain
 * and BatchNormGrad check their inputs and view X, with the same messages on every
 * backend. */
#ifndef GF_OPS_NORM_GRAD_H
#define GF_OPS_NORM_GRAD_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* X viewed as [n, c, inner]. */
typedef struct gf_bn_shape {
    int64_t n, c, inner;
} gf_bn_shape;

/* BatchNormTrain (grad 0) or BatchNormGrad (1): checks for five float32 inputs, X
 * (input 0, or 1 after dY) of rank 2 or more and one value per channel in the inputs
 * after it, and gives X's view. */
gf_status gf_bn_read_shape(const gf_op_ctx *ctx, int grad, gf_bn_shape *s);

#ifdef __cplusplus
}
#endif

#endif
