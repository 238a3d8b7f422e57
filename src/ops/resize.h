/* What resize.c shares with ResizeGrad (movement_grad.c) and with the CUDA twins
 * (cuda/resize.cu, cuda/movement_grad.cu): how Resize reads its attributes and
 * inputs, and the per-axis coordinate mapping and interpolation taps. The gradient is
 * the transpose of the same taps, so the two cannot drift. */
#ifndef GF_RESIZE_H
#define GF_RESIZE_H

#include "op.h"

typedef enum gf_resize_mode { GF_RESIZE_NEAREST, GF_RESIZE_LINEAR, GF_RESIZE_CUBIC } gf_resize_mode;

typedef enum gf_resize_coord {
    GF_COORD_HALF_PIXEL,
    GF_COORD_PYTORCH_HALF_PIXEL,
    GF_COORD_ALIGN_CORNERS,
    GF_COORD_ASYMMETRIC,
    GF_COORD_TF_HALF_PIXEL_FOR_NN,
    GF_COORD_TF_CROP_AND_RESIZE,
} gf_resize_coord;

typedef enum gf_resize_nearest {
    GF_NEAREST_ROUND_PREFER_FLOOR,
    GF_NEAREST_ROUND_PREFER_CEIL,
    GF_NEAREST_FLOOR,
    GF_NEAREST_CEIL,
    GF_NEAREST_SIMPLE, /* Upsample and Resize-10: floor when upsampling, ceil when downsampling */
} gf_resize_nearest;

typedef struct gf_resize_params {
    gf_resize_mode mode;
    gf_resize_coord coord;
    gf_resize_nearest nearest;
    double cubic_a;
    int exclude_outside;
    double extrapolation;
    const gf_tensor *roi;       /* NULL or empty unless tf_crop_and_resize */
    const gf_tensor *scales;    /* NULL when not given (or empty) */
    const gf_tensor *sizes;     /* NULL when not given (or empty) */
    const float *scale_attr;    /* Upsample-7's scales attribute */
} gf_resize_params;

/* How one axis maps output coordinates to source coordinates. */
typedef struct gf_resize_axis {
    int64_t in_len, out_len;
    double scale;               /* output/input ratio the coordinate transform divides by */
    double out_width;           /* scale × in_len: ONNX's reference uses this unrounded length */
    double roi_start, roi_end;  /* tf_crop_and_resize only */
} gf_resize_axis;

/* Reads Resize's attributes (opset 11+ semantics) and its optional inputs roi,
 * scales and sizes, which sit at inputs first, first + 1 and first + 2, for an
 * input of the given rank. Refuses the opset 18 additions (antialias, axes,
 * keep_aspect_ratio_policy) as unsupported. */
gf_status gf_resize_params_of(const gf_op_ctx *ctx, int first, int rank, gf_resize_params *p);
/* A Resize or Upsample node's parameters, any opset: checks X and the inputs the opset
 * takes (the older fixed semantics for Upsample and Resize-10), not X's element type. */
gf_status gf_resize_node_params(const gf_op_ctx *ctx, gf_resize_params *p);
/* Whether the values that decide the output shape (scales or sizes) are known. */
int gf_resize_shape_known(const gf_resize_params *p);
/* Fills each axis's map for an input of shape rank/dims. Needs gf_resize_shape_known(). */
gf_status gf_resize_map_axes(int rank, const int64_t *dims, const gf_resize_params *p, gf_resize_axis *axes);

/* Taps per output coordinate: 1 for nearest, 2 for linear, 4 for cubic. */
int gf_resize_taps_per_output(const gf_resize_params *p);
/* Every output coordinate j of one axis reads sum_t w[j*k + t] * in[idx[j*k + t]]
 * (k = gf_resize_taps_per_output); outside[j] is set where tf_crop_and_resize
 * extrapolates, and such a j reads nothing (its weights are 0 for nearest). */
void gf_resize_taps(const gf_resize_axis *a, const gf_resize_params *p, int64_t *idx, double *w, unsigned char *outside);
/* An axis every output coordinate of which lands exactly on its own input coordinate. */
int gf_resize_is_identity(const gf_resize_axis *a, const gf_resize_params *p);

#endif
