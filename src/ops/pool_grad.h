/* What pool_grad.c shares with its CUDA twin (cuda/pool_grad.cu): how the pooling
 * gradients read their inputs and the forward pool's geometry, with the same messages
 * on every backend. */
#ifndef GF_OPS_POOL_GRAD_H
#define GF_OPS_POOL_GRAD_H

#ifdef __cplusplus
extern "C" {
#endif

#include "dnnl_util.h" /* gf_window */

typedef struct gf_pool_grad_shape {
    int64_t n, c;
    gf_window w;  /* the forward pool's window over X */
} gf_pool_grad_shape;

/* MaxPoolGrad: checks dY and X (float32) and that dY is what MaxPool makes of X, and
 * gives the forward pool's geometry. */
gf_status gf_pool_grad_read_max(const gf_op_ctx *ctx, gf_pool_grad_shape *sh);

/* AveragePoolGrad, GlobalAveragePoolGrad: checks dY (float32) and x_shape, read into
 * *x, against the forward pool's geometry. Sets *dynamic, checking nothing more, when
 * x_shape is not known yet. */
gf_status gf_pool_grad_read_average(const gf_op_ctx *ctx, gf_pool_grad_shape *sh, gf_tensor *x, int *dynamic);

#ifdef __cplusplus
}
#endif

#endif
