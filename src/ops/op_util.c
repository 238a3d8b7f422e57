/* Helpers shared by the kernels of every family. */
#include "op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void gf_set_shape(gf_tensor *t, gf_dtype dtype, int rank, const int64_t *dims)
{
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank && i < GF_MAX_RANK; i++) t->dims[i] = dims[i];
}

void gf_set_like(gf_tensor *t, const gf_tensor *like)
{
    gf_set_shape(t, like->dtype, like->rank, like->dims);
}

gf_status gf_check_inputs(const gf_op_ctx *ctx, int lo, int hi)
{
    if (ctx->n_inputs < lo || ctx->n_inputs > hi)
        return gf_fail(GF_ERR_INVALID, "expects %d to %d inputs, has %d", lo, hi, ctx->n_inputs);
    for (int i = 0; i < lo; i++)
        if (!ctx->inputs[i]) return gf_fail(GF_ERR_INVALID, "input %d is required but omitted", i);
    return GF_OK;
}

gf_status gf_check_dtype(const gf_op_ctx *ctx, int i, const gf_dtype *allowed)
{
    const gf_tensor *t = ctx->inputs[i];
    for (const gf_dtype *a = allowed; *a != GF_UNDEFINED; a++)
        if (t->dtype == *a) return GF_OK;
    return gf_fail(GF_ERR_UNSUPPORTED, "input %d has element type %s, which this op does not take",
                   i, gf_dtype_name(t->dtype));
}

gf_status gf_broadcast_shape(const gf_tensor *a, const gf_tensor *b, int *rank, int64_t *dims)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[128], sb[128];
            return gf_fail(GF_ERR_SHAPE, "shapes %s and %s do not broadcast (axis %d: %lld vs %lld)",
                           gf_shape_str(a, sa, sizeof sa), gf_shape_str(b, sb, sizeof sb), i,
                           (long long)da, (long long)db);
        }
        dims[i] = da == 1 ? db : da;
    }
    *rank = r;
    return GF_OK;
}

void gf_broadcast_strides(const gf_tensor *t, int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        int it = i - (rank - t->rank);
        int64_t d = it >= 0 ? t->dims[it] : 1;
        strides[i] = (d == 1 && dims[i] != 1) || it < 0 ? 0 : s;
        s *= d;
    }
}

gf_status gf_axis(const gf_op_ctx *ctx, int64_t axis, int rank, int *out)
{
    (void)ctx;
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= (rank > 0 ? rank : 1))
        return gf_fail(GF_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)a;
    return GF_OK;
}

int64_t gf_int_at(const gf_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case GF_INT64: return ((const int64_t *)t->data)[i];
    case GF_INT32: return ((const int32_t *)t->data)[i];
    case GF_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case GF_UINT32: return ((const uint32_t *)t->data)[i];
    case GF_INT16: return ((const int16_t *)t->data)[i];
    case GF_UINT16: return ((const uint16_t *)t->data)[i];
    case GF_INT8: return ((const int8_t *)t->data)[i];
    case GF_UINT8: case GF_BOOL: return ((const uint8_t *)t->data)[i];
    default: return (int64_t)gf_num_at(t, i);
    }
}

double gf_num_at(const gf_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case GF_FLOAT: return ((const float *)t->data)[i];
    case GF_DOUBLE: return ((const double *)t->data)[i];
    case GF_FLOAT16: return gf_half_to_float(((const uint16_t *)t->data)[i]);
    case GF_BFLOAT16: return gf_bf16_to_float(((const uint16_t *)t->data)[i]);
    case GF_UINT64: return (double)((const uint64_t *)t->data)[i];
    default: return (double)gf_int_at(t, i);
    }
}

void gf_num_set(gf_tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case GF_FLOAT: ((float *)t->data)[i] = (float)v; break;
    case GF_DOUBLE: ((double *)t->data)[i] = v; break;
    case GF_FLOAT16: ((uint16_t *)t->data)[i] = gf_float_to_half((float)v); break;
    case GF_BFLOAT16: ((uint16_t *)t->data)[i] = gf_float_to_bf16((float)v); break;
    case GF_INT64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    case GF_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case GF_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    case GF_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case GF_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case GF_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case GF_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case GF_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case GF_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: break;
    }
}

float gf_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float f;
    if (exp == 0) f = ldexpf((float)mant, -24);
    else if (exp == 31) f = mant ? NAN : INFINITY;
    else f = ldexpf((float)(mant | 0x400), (int)exp - 25);
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits |= sign;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t gf_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t absx = x & 0x7fffffff;
    if (absx > 0x7f800000) return sign | 0x7e00;               /* NaN */
    if (absx >= 0x477ff000) return sign | 0x7c00;              /* overflow to inf */
    if (absx < 0x38800000) {                                    /* subnormal or zero */
        float a;
        memcpy(&a, &absx, 4);
        return sign | (uint16_t)lrintf(a * 16777216.0f);        /* round to nearest even */
    }
    uint32_t mant = absx & 0x7fffff, exp = (absx >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return sign | (uint16_t)h;
}

float gf_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t gf_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

gf_status gf_op_output(gf_op_ctx *ctx, int i, gf_dtype dtype, int rank, const int64_t *dims)
{
    gf_tensor *t = ctx->outputs[i];
    if (!t) return GF_OK;
    if (rank < 0 || rank > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "output %d would have rank %d", i, rank);
    gf_set_shape(t, dtype, rank, dims);
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0 || (dims[d] && n > (INT64_MAX / 16) / dims[d]))
            return gf_fail(GF_ERR_SHAPE, "output %d would have an invalid or huge dim %lld", i, (long long)dims[d]);
        n *= dims[d];
    }
    size_t bytes = gf_tensor_nbytes(t);
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data) return gf_fail(GF_ERR_NOMEM, "out of memory: output %d needs %zu bytes", i, bytes);
    t->owns_data = 1;
    return GF_OK;
}
