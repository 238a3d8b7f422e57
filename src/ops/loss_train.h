/* What loss_train.c shares with its CUDA twin (cuda/loss_train.cu): how the training
 * losses and their gradients read and check their attributes and inputs, the same way
 * and with the same messages on every backend. */
#ifndef GF_OPS_LOSS_TRAIN_H
#define GF_OPS_LOSS_TRAIN_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* The `reduction` attribute. */
typedef enum gf_loss_reduction { GF_REDUCTION_NONE, GF_REDUCTION_SUM, GF_REDUCTION_MEAN } gf_loss_reduction;

/* A class loss's attributes and inputs (CrossEntropyLoss, its gradient, NLLLossGrad). */
typedef struct gf_class_loss {
    gf_loss_reduction reduction;
    int64_t ignore_index;
    double smoothing;           /* label_smoothing; 0 for NLL */
    int64_t n, c, d;            /* scores viewed as [N, C, D] */
    const gf_tensor *target;    /* [N, d1..dk], viewed as [N, D] */
    const int64_t *labels;
    const float *weight;        /* [C]; NULL for all ones */
    const float *scores;        /* the forward's scores, or log_prob / input for the gradients */
} gf_class_loss;

/* Reads reduction, ignore_index and (with_smoothing) label_smoothing, and checks scores
 * (input `first`), the int64 target and the optional weight after it. */
gf_status gf_class_loss_read(const gf_op_ctx *ctx, int first, int with_smoothing, gf_class_loss *s);

/* The element-wise losses (MSE, L1, BCE with logits): reads reduction and checks x
 * (input `first`), y and, where the op takes them, weight and pos_weight. */
gf_status gf_pointwise_loss_check(const gf_op_ctx *ctx, int first, gf_loss_reduction *r);

/* A gradient's dloss: float32, a scalar for "mean" and "sum", and shaped rank/dims
 * like the terms for "none". */
gf_status gf_loss_check_dloss(const gf_tensor *dloss, gf_loss_reduction r, int rank, const int64_t *dims);

#ifdef __cplusplus
}
#endif

#endif
