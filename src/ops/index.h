/* What index.c shares with other families: Slice's geometry, which SliceGrad
 * (movement_grad.c) inverts. */
#ifndef GF_INDEX_H
#define GF_INDEX_H

#include "op.h"

/* Where a slice's output lies in its input: along each axis, the first input
 * index taken, the step between taken indices and how many are taken. */
typedef struct gf_slice_plan {
    int64_t start[GF_MAX_RANK], step[GF_MAX_RANK], dims[GF_MAX_RANK];
} gf_slice_plan;

/* Plans ONNX Slice (opset 13: negative indices, clamping, negative steps) of an
 * input of shape rank/dims from bounds[0..3] = starts, ends, axes, steps (axes
 * and steps NULL when omitted). Sets *dynamic, planning nothing, when a bound's
 * values are not known yet. */
gf_status gf_slice_plan_of(const gf_op_ctx *ctx, int rank, const int64_t *dims, const gf_tensor *const *bounds,
                           gf_slice_plan *p, int *dynamic);

/* The slice as a strided view of the row-major input of shape rank/dims: the
 * output element at coordinates c is input element first + Σ c[d] * strides[d]. */
void gf_slice_view(const gf_slice_plan *p, int rank, const int64_t *dims, int64_t *first, int64_t *strides);

#endif
