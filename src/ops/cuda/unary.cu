/* Relu, LeakyRelu, Sigmoid and Exp on float32, and Cast, on the GPU (twin:
 * ops/unary.c).
 *
 * The activations are the reference's float32 fast path, operation for operation:
 * Exp and Sigmoid use unary.c's exp_f32 (its Cephes polynomial and two-factor
 * scaling), and with FMA contraction off (-fmad=false) the GPU rounds every step as the
 * CPU does, so the results are the CPU's bits. (Graft's activations are memory-bound
 * element-wise loops, so cuDNN's activation descriptors would add calls and no speed.)
 * Cast converts as cast_cpu does: integers and bools exactly through int64 (wrapping),
 * everything else through double, float to integer saturating with NaN to 0. */
#include "cuda_util.cuh"

#include <string.h>

/* unary.c's exp_f32, line for line. */
__device__ inline float exp_f32(float x)
{
    x = x > 89.0f ? 89.0f : x < -104.0f ? -104.0f : x;
    const float round_magic = 12582912.0f;
    float t = x * 1.44269504088896341f + round_magic, n = t - round_magic;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float e = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
               1.6666665459e-1f) * r + 5.0000001201e-1f;
    e = e * r * r + r + 1.0f;
    uint32_t tb = __float_as_uint(t), m, s1b, s2b;
    m = tb - 0x4B400000u + 256;
    s1b = ((m >> 1) - 1) << 23;
    s2b = (m - (m >> 1) - 1) << 23;
    return e * __uint_as_float(s1b) * __uint_as_float(s2b);
}

__device__ inline float sigmoid_f32(float x)
{
    float e = exp_f32(-fabsf(x)), s = 1.0f / (1.0f + e);
    return x >= 0 ? s : e * s;
}

enum { U_RELU, U_LEAKY_RELU, U_SIGMOID, U_EXP };

template <int K>
__global__ void unary_kernel(const float *x, float *y, float alpha, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        float v = x[i];
        switch (K) {
        case U_RELU: y[i] = v < 0 ? 0 : v; break;
        case U_LEAKY_RELU: y[i] = v < 0 ? alpha * v : v; break;
        case U_SIGMOID: y[i] = sigmoid_f32(v); break;
        default: y[i] = exp_f32(v); break;
        }
    }
}

static gf_status unary_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (st) return gf_cuda_node_context(ctx, st);
    const char *op = ctx->node->op_type;
    const float *x = (const float *)ctx->inputs[0]->data;
    float *y = (float *)ctx->outputs[0]->data;
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    if (n == 0) return GF_OK;
    unsigned blocks = gf_cuda_blocks(n);
    /* unary.c's params: the attribute as a double when present, else the float32 default */
    double alpha = gf_node_attr(ctx->node, "alpha") ? gf_attr_float(ctx->node, "alpha", 0) : (double)0.01f;
    if (!strcmp(op, "Relu")) unary_kernel<U_RELU><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>(x, y, 0, n);
    else if (!strcmp(op, "LeakyRelu"))
        unary_kernel<U_LEAKY_RELU><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>(x, y, (float)alpha, n);
    else if (!strcmp(op, "Sigmoid")) unary_kernel<U_SIGMOID><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>(x, y, 0, n);
    else unary_kernel<U_EXP><<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>(x, y, 0, n);
    return gf_cuda_launched(ctx, "unary_kernel");
}

static gf_status unary_check(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, 1); }

/* ---- Cast ---- */

static int cast_type_ok(gf_dtype t)
{
    switch (t) {
    case GF_FLOAT: case GF_DOUBLE: case GF_INT8: case GF_UINT8: case GF_INT16: case GF_UINT16: case GF_INT32:
    case GF_UINT32: case GF_INT64: case GF_UINT64: case GF_BOOL: return 1;
    default: return 0;
    }
}

__device__ inline int is_float_type(int t) { return t == GF_FLOAT || t == GF_DOUBLE; }

__device__ inline int64_t int_at(int t, const void *p, int64_t i)
{
    switch (t) {
    case GF_INT64: return ((const int64_t *)p)[i];
    case GF_INT32: return ((const int32_t *)p)[i];
    case GF_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case GF_UINT32: return ((const uint32_t *)p)[i];
    case GF_INT16: return ((const int16_t *)p)[i];
    case GF_UINT16: return ((const uint16_t *)p)[i];
    case GF_INT8: return ((const int8_t *)p)[i];
    default: return ((const uint8_t *)p)[i]; /* uint8, bool */
    }
}

__device__ inline double num_at(int t, const void *p, int64_t i)
{
    switch (t) {
    case GF_FLOAT: return ((const float *)p)[i];
    case GF_DOUBLE: return ((const double *)p)[i];
    case GF_UINT64: return (double)((const uint64_t *)p)[i];
    default: return (double)int_at(t, p, i);
    }
}

__device__ inline void int_set(int t, void *p, int64_t i, int64_t v)
{
    switch (t) {
    case GF_INT64: ((int64_t *)p)[i] = v; break;
    case GF_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case GF_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    case GF_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case GF_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
    case GF_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case GF_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
    case GF_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case GF_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: break;
    }
}

__device__ inline int64_t saturate_i64(double v)
{
    if (v != v) return 0;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)v;
}

__device__ inline void num_set(int t, void *p, int64_t i, double v)
{
    switch (t) {
    case GF_FLOAT: ((float *)p)[i] = (float)v; break;
    case GF_DOUBLE: ((double *)p)[i] = v; break;
    case GF_UINT64: ((uint64_t *)p)[i] = v >= 18446744073709551616.0 ? UINT64_MAX : v > 0 ? (uint64_t)v : 0; break;
    case GF_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: int_set(t, p, i, saturate_i64(v)); break;
    }
}

/* unary.c's store_float_as_int: saturating to the type's range, NaN to 0. */
__device__ inline void store_float_as_int(int t, void *p, int64_t i, double v)
{
    if (t == GF_UINT64) {
        ((uint64_t *)p)[i] = v != v || v <= 0 ? 0 : v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
        return;
    }
    double lo = 0, hi = 0;
    int ranged = 1;
    switch (t) {
    case GF_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
    case GF_UINT8: lo = 0, hi = UINT8_MAX; break;
    case GF_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
    case GF_UINT16: lo = 0, hi = UINT16_MAX; break;
    case GF_INT32: lo = INT32_MIN, hi = INT32_MAX; break;
    case GF_UINT32: lo = 0, hi = UINT32_MAX; break;
    default: ranged = 0; break;
    }
    if (ranged) v = v < lo ? lo : v > hi ? hi : v;
    int_set(t, p, i, saturate_i64(v));
}

__global__ void cast_kernel(const void *x, int from, void *y, int to, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        if (to == GF_BOOL || is_float_type(to)) num_set(to, y, i, num_at(from, x, i));
        else if (is_float_type(from)) store_float_as_int(to, y, i, num_at(from, x, i));
        else int_set(to, y, i, int_at(from, x, i));
    }
}

static gf_status cast_check(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    gf_dtype from = ctx->inputs[0]->dtype, to = (gf_dtype)gf_attr_int(ctx->node, "to", 0);
    if (!cast_type_ok(from) || !cast_type_ok(to))
        return gf_fail(GF_ERR_UNSUPPORTED, "the CUDA kernel of Cast does not convert %s to %s", gf_dtype_name(from),
                       gf_dtype_name(to));
    return GF_OK;
}

static gf_status cast_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = cast_check(ctx);
    if (st) return gf_cuda_node_context(ctx, st);
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t n = gf_tensor_numel(x);
    if (n == 0) return GF_OK;
    if (x->dtype == y->dtype) return gf_cuda_copy_bytes(ctx, cu, y->data, x->data, gf_tensor_nbytes(x));
    cast_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(x->data, x->dtype, y->data, y->dtype, n);
    return gf_cuda_launched(ctx, "cast_kernel");
}

extern "C" const gf_cuda_op gf_cuda_ops_unary[] = {
    {"", "Relu", 1, 0, unary_cuda, unary_check, 0},
    {"", "LeakyRelu", 1, 0, unary_cuda, unary_check, 0},
    {"", "Sigmoid", 1, 0, unary_cuda, unary_check, 0},
    {"", "Exp", 1, 0, unary_cuda, unary_check, 0},
    {"", "Cast", 1, 0, cast_cuda, cast_check, 0},
    {0},
};
