/* cuDNN convolutions for conv.cu (Conv, ConvTranspose) and conv_grad.cu (ConvGradInput,
 * ConvGradWeight): descriptors, the algorithm chosen once per geometry and cached in the
 * context with its workspace size, and the three directions. C++, for .cu files. */
#ifndef GF_CONV_CUDNN_H
#define GF_CONV_CUDNN_H

#include "cuda_ctx.h"

/* A convolution as cuDNN sees it: x (c channels) -> y (m channels) through w
 * [m, c / group, kernel], symmetric pads. Spatial arrays hold sp dims (2 or 3): a 1-D
 * convolution is a 2-D one of height 1. */
typedef struct gf_cu_conv {
    int sp;
    int n, c, m, group;
    int x[3], y[3], k[3], pad[3], stride[3], dil[3];
} gf_cu_conv;

typedef enum gf_cu_conv_dir { GF_CU_CONV_FWD, GF_CU_CONV_BWD_DATA, GF_CU_CONV_BWD_FILTER } gf_cu_conv_dir;

/* Fills g from graft's geometry: nsp (1-3) spatial dims of x and y, kernel, pads (one
 * per dim, symmetric), strides, dilations; fails naming the node when a size does not
 * fit cuDNN's int. */
gf_status gf_cu_conv_geometry(const gf_op_ctx *ctx, gf_cu_conv *g, int nsp, int64_t n, int64_t c, int64_t m,
                              int64_t group, const int64_t *x, const int64_t *y, const int64_t *k, const int64_t *pad,
                              const int64_t *stride, const int64_t *dil);

/* Runs one direction with alpha 1, beta 0:
 *   FWD:         y = conv(x, w)           (a = x, b = w, out = y)
 *   BWD_DATA:    x = conv_bwd_data(y, w)  (a = dy, b = w, out = dx)
 *   BWD_FILTER:  w = conv_bwd_filter(x, y) (a = x, b = dy, out = dw) */
gf_status gf_cu_conv_run(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_cu_conv *g, gf_cu_conv_dir dir,
                         const float *a, const float *b, float *out);

#endif
