/* Helpers shared by the kernels of every family. */
#include "op.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void gf_set_shape(gf_tensor *t, gf_dtype dtype, int rank, const int64_t *dims)
{
    if (!t) return; /* an omitted optional output */
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank && i < GF_MAX_RANK; i++) t->dims[i] = dims[i];
}

void gf_set_like(gf_tensor *t, const gf_tensor *like)
{
    if (!t) return;
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

void gf_int_set(gf_tensor *t, int64_t i, int64_t v)
{
    switch (t->dtype) {
    case GF_INT64: ((int64_t *)t->data)[i] = v; break;
    case GF_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    case GF_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case GF_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case GF_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case GF_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case GF_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case GF_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case GF_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: break;
    }
}

int64_t gf_saturate_i64(double v)
{
    if (v != v) return 0;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)v;
}

void gf_num_set(gf_tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case GF_FLOAT: ((float *)t->data)[i] = (float)v; break;
    case GF_DOUBLE: ((double *)t->data)[i] = v; break;
    case GF_FLOAT16: ((uint16_t *)t->data)[i] = gf_float_to_half((float)v); break;
    case GF_BFLOAT16: ((uint16_t *)t->data)[i] = gf_float_to_bf16((float)v); break;
    case GF_UINT64: ((uint64_t *)t->data)[i] = v >= 18446744073709551616.0 ? UINT64_MAX : v > 0 ? (uint64_t)v : 0; break;
    case GF_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: gf_int_set(t, i, gf_saturate_i64(v)); break;
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

/* ---- helpers for ops that move data or take shapes from input values ---- */

int gf_values_known(const gf_tensor *t) { return t->data != NULL || gf_tensor_numel(t) == 0; }

void gf_set_dynamic(gf_tensor *t, gf_dtype dtype)
{
    if (!t) return;
    t->dtype = dtype;
    t->rank = GF_RANK_DYNAMIC;
}

gf_status gf_read_ints(const gf_tensor *t, const char *what, int64_t *out, int max, int *count)
{
    if (t->dtype != GF_INT64 && t->dtype != GF_INT32)
        return gf_fail(GF_ERR_INVALID, "%s must be int32 or int64, not %s", what, gf_dtype_name(t->dtype));
    if (t->rank > 1) return gf_fail(GF_ERR_INVALID, "%s must be a scalar or 1-D, has rank %d", what, t->rank);
    int64_t n = gf_tensor_numel(t);
    if (n > max) return gf_fail(GF_ERR_INVALID, "%s has %lld values, at most %d make sense here", what, (long long)n, max);
    for (int64_t i = 0; i < n; i++) out[i] = gf_int_at(t, i);
    *count = (int)n;
    return GF_OK;
}

/* gf_copy_strided merges axes that are contiguous in both source and
 * destination, then copies in one of three ways: whole rows with memcpy when
 * the innermost axis is contiguous in the source; tiles when another axis is
 * (a transpose: a tile's rows and columns both stay in cache); element by
 * element otherwise. Work is split across threads over the outer axes; for
 * tiles, the blocks of the source-contiguous axis count as one more outer axis. */
enum { COPY_ROWS, COPY_TILES, COPY_ELEMS };

#define COPY_TILE 16

typedef struct copy_plan {
    size_t esize;
    int mode;
    int n_outer;                 /* the axes looped over around the inner copy */
    int64_t odims[GF_MAX_RANK], osrc[GF_MAX_RANK], odst[GF_MAX_RANK]; /* strides in bytes */
    int64_t n, src_step;         /* innermost axis: length, source stride in bytes */
    int64_t m, m_dst_step;       /* tiles: length of the source-contiguous axis, its dst stride in bytes */
} copy_plan;

static void copy_elems(char *d, const char *s, size_t esize, int64_t n, int64_t sstep, int64_t dstep)
{
    switch (esize) {
    case 1: for (int64_t i = 0; i < n; i++) d[i * dstep] = s[i * sstep]; break;
    case 2: for (int64_t i = 0; i < n; i++) memcpy(d + i * dstep, s + i * sstep, 2); break;
    case 4: for (int64_t i = 0; i < n; i++) memcpy(d + i * dstep, s + i * sstep, 4); break;
    case 8: for (int64_t i = 0; i < n; i++) memcpy(d + i * dstep, s + i * sstep, 8); break;
    default: for (int64_t i = 0; i < n; i++) memcpy(d + i * dstep, s + i * sstep, esize); break;
    }
}

/* The copy under one combination of outer coordinates; `rows` is the length
 * of this tile block (tiles only). */
static void copy_inner(const copy_plan *p, char *d, const char *s, int64_t rows)
{
    int64_t e = (int64_t)p->esize;
    switch (p->mode) {
    case COPY_ROWS: memcpy(d, s, (size_t)(p->n * e)); break;
    case COPY_ELEMS: copy_elems(d, s, p->esize, p->n, p->src_step, e); break;
    case COPY_TILES:
        for (int64_t j0 = 0; j0 < p->n; j0 += COPY_TILE) {
            int64_t jn = j0 + COPY_TILE < p->n ? COPY_TILE : p->n - j0;
            for (int64_t i = 0; i < rows; i++)
                copy_elems(d + i * p->m_dst_step + j0 * e, s + i * e + j0 * p->src_step, p->esize, jn, p->src_step, e);
        }
        break;
    }
}

/* Runs copy_inner over every combination of the outer axes, split across threads. */
static void copy_outer(const copy_plan *p, char *dst, const char *src, int64_t numel)
{
    int64_t total = 1;
    for (int a = 0; a < p->n_outer; a++) total *= p->odims[a];
#pragma omp parallel if (numel >= 65536 && total > 1)
    {
        int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t per = total / nt, extra = total % nt;
        int64_t lo = per * t + (t < extra ? t : extra), hi = lo + per + (t < extra);
        int64_t c[GF_MAX_RANK], so = 0, dof = 0, rest = lo;
        for (int a = p->n_outer - 1; a >= 0; a--) {
            c[a] = rest % p->odims[a];
            rest /= p->odims[a];
            so += c[a] * p->osrc[a];
            dof += c[a] * p->odst[a];
        }
        for (int64_t k = lo; k < hi; k++) {
            int64_t rows = 0;
            if (p->mode == COPY_TILES) {
                int64_t left = p->m - c[p->n_outer - 1] * COPY_TILE;
                rows = left < COPY_TILE ? left : COPY_TILE;
            }
            copy_inner(p, dst + dof, src + so, rows);
            for (int a = p->n_outer - 1; a >= 0; a--) {
                so += p->osrc[a];
                dof += p->odst[a];
                if (++c[a] < p->odims[a]) break;
                so -= c[a] * p->osrc[a];
                dof -= c[a] * p->odst[a];
                c[a] = 0;
            }
        }
    }
}

void gf_copy_strided(void *dst, const void *src, size_t esize, int rank, const int64_t *dims,
                     const int64_t *src_strides)
{
    int64_t d[GF_MAX_RANK], s[GF_MAX_RANK], o[GF_MAX_RANK], numel = 1;
    for (int a = 0; a < rank; a++) numel *= dims[a];
    if (numel == 0) return;
    /* Drop unit axes, merge neighbours contiguous on both sides; strides in bytes. */
    int r = 0;
    int64_t dst_stride = (int64_t)esize;
    for (int a = rank - 1; a >= 0; a--) {
        if (dims[a] == 1) continue;
        int64_t ss = src_strides[a] * (int64_t)esize;
        if (r > 0 && ss == s[r - 1] * d[r - 1] && dst_stride == o[r - 1] * d[r - 1]) {
            d[r - 1] *= dims[a];
        } else {
            d[r] = dims[a];
            s[r] = ss;
            o[r] = dst_stride;
            r++;
        }
        dst_stride *= dims[a];
    }
    if (r == 0) {
        memcpy(dst, src, esize);
        return;
    }
    /* Axis 0 of d/s/o is now the innermost. */
    copy_plan p = {.esize = esize, .n = d[0], .src_step = s[0]};
    int tile_axis = -1;
    if (s[0] != (int64_t)esize)
        for (int a = 1; a < r; a++)
            if (s[a] == (int64_t)esize && d[a] >= 8 && d[0] >= 8) tile_axis = a;
    p.mode = s[0] == (int64_t)esize ? COPY_ROWS : tile_axis > 0 ? COPY_TILES : COPY_ELEMS;
    for (int a = r - 1; a >= 1; a--) {
        if (a == tile_axis) continue;
        p.odims[p.n_outer] = d[a];
        p.osrc[p.n_outer] = s[a];
        p.odst[p.n_outer] = o[a];
        p.n_outer++;
    }
    if (tile_axis > 0) {
        p.m = d[tile_axis];
        p.m_dst_step = o[tile_axis];
        p.odims[p.n_outer] = (p.m + COPY_TILE - 1) / COPY_TILE;
        p.osrc[p.n_outer] = COPY_TILE * (int64_t)esize;
        p.odst[p.n_outer] = COPY_TILE * p.m_dst_step;
        p.n_outer++;
    }
    copy_outer(&p, dst, src, numel);
}
