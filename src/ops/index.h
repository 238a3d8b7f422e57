/* What index.c shares with other families: Slice's geometry, which SliceGrad
 * (movement_grad.c) inverts, and with its CUDA twin (cuda/index.cu): how Concat,
 * Split, Slice, Gather and Pad read their attributes and inputs, the same way and with
 * the same messages on every backend. */
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

/* Slice when it runs: checks the node's bounds (attributes before opset 10, inputs 1-4
 * from it; all known by now) against input 0 and gives the slice as gf_slice_view does. */
gf_status gf_slice_node_view(const gf_op_ctx *ctx, int64_t *first, int64_t *strides);

/* Concat: checks that input 0 is no scalar and the axis attribute (required from
 * opset 4), and gives the axis. */
gf_status gf_concat_axis(const gf_op_ctx *ctx, int *axis);

/* Split: checks the axis and the part sizes along it (room for n_outputs in sizes):
 * the split attribute (before opset 13) or input 1, else num_outputs or equal parts.
 * Sets *dynamic when input 1's values are not known yet. */
gf_status gf_split_sizes(const gf_op_ctx *ctx, int *axis, int64_t *sizes, int *dynamic);

/* Gather, GatherElements, ScatterElements: checks that the data (input 0) has rank 1 or
 * more and that the axis attribute lies in it, and gives the axis. */
gf_status gf_gather_axis(const gf_op_ctx *ctx, int *axis);

typedef enum gf_pad_mode { GF_PAD_CONSTANT, GF_PAD_REFLECT, GF_PAD_EDGE, GF_PAD_WRAP } gf_pad_mode;

typedef struct gf_pad_plan {
    gf_pad_mode mode;
    int64_t begin[GF_MAX_RANK], end[GF_MAX_RANK], dims[GF_MAX_RANK];  /* negative pads crop */
} gf_pad_plan;

/* Pad: checks the mode, the axes (input 3, opset 18) and the pads, as attributes
 * (opset 1 "paddings", 2-10 "pads") or input 1 (11+), against the input, and gives
 * them with the output shape. Sets *dynamic when an input's values are not known yet. */
gf_status gf_pad_plan_of(const gf_op_ctx *ctx, gf_pad_plan *p, int *dynamic);
/* The value padding writes, as the bytes (16 at most) of the data's type. */
void gf_pad_value(const gf_op_ctx *ctx, unsigned char *value);
/* Where output position o along an axis reads from, or -1 for the constant.
 * Negative pads crop first: [lo, lo + kept) is what is left of the axis. The
 * edge and reflect formulas read inside it as long as gf_pad_plan_of's checks hold. */
int64_t gf_pad_source(int64_t o, int64_t begin, int64_t end, int64_t dim, gf_pad_mode mode);

#endif
