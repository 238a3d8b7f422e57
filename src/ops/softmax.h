/* What softmax.c shares with its CUDA twin (cuda/softmax.cu) and with SoftmaxGrad
 * (activation_grad.c): the (outer, n, inner) view the ops run over, read the same way
 * and with the same messages on every backend. */
#ifndef GF_OPS_SOFTMAX_H
#define GF_OPS_SOFTMAX_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* A tensor viewed as [outer, n, inner]: the op runs over n, inner apart. */
typedef struct gf_softmax_view {
    int64_t outer, n, inner;
} gf_softmax_view;

/* The view of shape rank/dims at `axis`: n is that axis, or with coerce_2d every dim
 * from it on (Softmax before opset 13, and SoftmaxGrad's legacy). */
void gf_softmax_split(int rank, const int64_t *dims, int axis, int coerce_2d, gf_softmax_view *v);

/* Softmax, LogSoftmax, Hardmax: checks axis against the input and gives its view. */
gf_status gf_softmax_view_of(const gf_op_ctx *ctx, gf_softmax_view *v);

#ifdef __cplusplus
}
#endif

#endif
