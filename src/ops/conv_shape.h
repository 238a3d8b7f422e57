/* The geometry of a convolution, shared by the CPU ops (conv.c, conv_grad.c) and their
 * CUDA twins (cuda/conv.cu, cuda/conv_grad.cu): inputs and attributes checked, output size
 * and padding computed, the same way and with the same messages on every backend; and
 * how FusedConv's extras are read. */
#ifndef GF_OPS_CONV_SHAPE_H
#define GF_OPS_CONV_SHAPE_H

#ifdef __cplusplus
extern "C" {
#endif

#include "dnnl_util.h" /* gf_window */

typedef struct gf_conv_shape {
    int transpose;
    int64_t n, c, m, group;  /* batch, input channels, output channels, groups */
    /* Slides over X for Conv and over Y for ConvTranspose; `in` is X's spatial size and
     * `out` Y's either way. For ConvTranspose pad_end already has output_padding taken
     * off and may be negative (output_shape asking for more than the kernels cover). */
    gf_window w;
    int64_t outpad[3];       /* ConvTranspose: output_padding by spatial dim (0 for Conv) */
    int has_bias;
} gf_conv_shape;

/* Conv (transpose 0) or ConvTranspose (1): validates X, W, B and the attributes and
 * computes the geometry. */
gf_status gf_conv_read_shape(const gf_op_ctx *ctx, int transpose, gf_conv_shape *sh);

typedef struct gf_conv_grad_shape {
    int64_t n, c, m, group;  /* batch, input channels, output channels, groups */
    gf_window w;             /* the forward Conv's window over X */
} gf_conv_grad_shape;

/* The forward Conv's geometry from the shapes of X and W (tensors, or shapes standing for
 * them, named x_name and w_name in errors), checking that dY is what that Conv outputs. */
gf_status gf_conv_grad_geometry(const gf_op_ctx *ctx, const gf_tensor *dy, const gf_tensor *x, const char *x_name,
                                const gf_tensor *w, const char *w_name, gf_conv_grad_shape *sh);

/* FusedConv's activation, applied after the sum. */
enum { GF_CONV_ACT_NONE, GF_CONV_ACT_RELU, GF_CONV_ACT_LEAKY };

/* What FusedConv adds to a Conv; all zero for a Conv. */
typedef struct gf_conv_fusion {
    int has_sum, act;
    float alpha;
    int winograd;   /* algorithm "winograd": oneDNN's Winograd convolution where it has one */
} gf_conv_fusion;

/* FusedConv (X, W, B?, S?): checks the inputs, activation and algorithm and gives the
 * extras and, in *conv, the view of ctx that Conv's code reads (X, W, B?). For any other
 * op, *conv is ctx and the extras are zero. */
gf_status gf_conv_read_fusion(const gf_op_ctx *ctx, gf_op_ctx *conv, gf_conv_fusion *f);

#ifdef __cplusplus
}
#endif

#endif
