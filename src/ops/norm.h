/* What norm.c shares with its CUDA twin (cuda/norm.cu): how BatchNormalization views
 * X and decides on training mode, the same way and with the same messages on every
 * backend. */
#ifndef GF_OPS_NORM_H
#define GF_OPS_NORM_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* X viewed as [n, c, inner]; the four parameter vectors have c elements. With
 * opset 6-8's spatial=0 the statistics are per (channel, position), which is
 * the same loop with c = C * spatial size and inner = 1. */
typedef struct gf_bn_view {
    int64_t n, c, inner;
    int training;
} gf_bn_view;

/* BatchNormalization: checks X's rank and the statistics outputs asked for, and gives
 * X's view and whether the node trains. */
gf_status gf_bn_view_of(const gf_op_ctx *ctx, gf_bn_view *v);

#ifdef __cplusplus
}
#endif

#endif
