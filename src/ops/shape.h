/* What shape.c shares with its CUDA twin (cuda/shape.cu): how Shape, Transpose,
 * Constant, ConstantOfShape and Dropout read their attributes and inputs, the same way
 * and with the same messages on every backend. */
#ifndef GF_OPS_SHAPE_H
#define GF_OPS_SHAPE_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* Shape: the dims [start, end) it gives of an input of the given rank, the start and
 * end attributes clamped into [0, rank]. */
void gf_shape_range(const gf_op_ctx *ctx, int rank, int64_t *start, int64_t *end);

/* Transpose: checks that perm is a permutation of the rank dims (reversed when
 * omitted) and gives it. */
gf_status gf_transpose_perm(const gf_op_ctx *ctx, int rank, int *perm);

/* Constant: checks for one value attribute of a supported kind and gives it as a
 * tensor that points at the attribute's data. */
gf_status gf_constant_value(const gf_node *n, gf_tensor *v);

/* ConstantOfShape: checks the value attribute (one element) and gives it, or float 0. */
gf_status gf_constant_of_shape_value(const gf_node *n, gf_tensor *v);

/* Dropout: checks that training_mode (input 2), where given, is a scalar and false. */
gf_status gf_dropout_inference_check(const gf_op_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
