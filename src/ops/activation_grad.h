/* What activation_grad.c shares with its CUDA twin (cuda/activation_grad.cu): how
 * SoftmaxGrad and LogSoftmaxGrad read their view, with the same messages on every
 * backend. */
#ifndef GF_OPS_ACTIVATION_GRAD_H
#define GF_OPS_ACTIVATION_GRAD_H

#ifdef __cplusplus
extern "C" {
#endif

#include "softmax.h"

/* SoftmaxGrad, LogSoftmaxGrad: checks axis and legacy against Y (input 1) and gives
 * the view of the tensors, the sums running over n. */
gf_status gf_softmax_grad_view_of(const gf_op_ctx *ctx, gf_softmax_view *v);

#ifdef __cplusplus
}
#endif

#endif
