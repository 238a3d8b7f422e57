/* What optimizer.c shares with its CUDA twin (cuda/optimizer.cu): how the steps read
 * their hyper-parameters and step, so that both devices compute with the same values
 * and fail with the same messages. */
#ifndef GF_OPS_OPTIMIZER_H
#define GF_OPS_OPTIMIZER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* A hyper-parameter as torch sees it. Attributes are float32 but torch computes
 * with Python doubles (1 - beta1, beta2 ** step, ...): the decimal written by the
 * user is recovered as the shortest one that reads back as the same float32, so
 * 0.9f means 0.9 and 1 - beta1 rounds as torch's does. dflt when the attribute is absent. */
double gf_attr_decimal(const gf_node *node, const char *name, double dflt);

/* The int64 step (input i, in host memory), checked to be 1 or more. */
gf_status gf_optimizer_step(const gf_op_ctx *ctx, int i, int64_t *step);

#ifdef __cplusplus
}
#endif

#endif
