/* The element-wise kernels of unary.c that other ops apply to their own outputs. */
#ifndef GF_OPS_UNARY_H
#define GF_OPS_UNARY_H

#include <stdint.h>

/* y = Relu(x), or LeakyRelu(x) with alpha when leaky, as those ops compute them
 * (vectorized, on the session's threads); y may be x. */
void gf_relu_f32(const float *x, float *y, int64_t n, int leaky, float alpha);

#endif
