/* Resize (opsets 10, 11, 13) and Upsample (opsets 7, 9).
 *
 * Every axis maps each output coordinate to a source coordinate (the
 * coordinate transformation mode), then to source taps: one index for
 * nearest, two weighted indices for linear, four for cubic. Interpolation is
 * separable, so linear and cubic resize one axis at a time in double
 * precision, which is how ONNX's reference defines them and works for any
 * rank; float32 with only the last two axes resized (NCHW images) takes the
 * same tensor-product sum straight from the input, without intermediate
 * buffers. Nearest is a pure gather in the input's own element type; when
 * neighbouring output rows come from the same source row (upsampling) the row
 * is copied, and a row that plainly repeats each element s times is written
 * without the index table, which makes YOLO's ×2 nearest upsampling little
 * more than memory copies. Both shortcuts are chosen by looking at the index
 * tables the general path uses, so they cannot disagree with it. The mapping
 * and taps are shared with ResizeGrad through resize.h. */
#include "resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- attributes and inputs ---- */

static int is_upsample(const gf_op_ctx *ctx) { return !strcmp(ctx->node->op_type, "Upsample"); }

/* Resize-10 and Upsample use the older fixed semantics. */
static int old_semantics(const gf_op_ctx *ctx) { return is_upsample(ctx) || ctx->node->opset < 11; }

static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static gf_status read_modes(const gf_op_ctx *ctx, int old, gf_resize_params *p)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    /* In gf_resize_coord's order; opset 11 spelled tf_half_pixel_for_nearest "tf_half_pixel_for_nn". */
    static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                         "tf_half_pixel_for_nearest", "tf_crop_and_resize", "tf_half_pixel_for_nn"};
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *mode = gf_attr_string(ctx->node, "mode", "nearest");
    int m = pick(mode, modes, 3);
    if (m < 0 || (m == GF_RESIZE_CUBIC && old))
        return gf_fail(GF_ERR_INVALID, "unknown mode '%s'", mode);
    p->mode = (gf_resize_mode)m;
    if (old) {
        p->coord = GF_COORD_ASYMMETRIC;
        p->nearest = GF_NEAREST_SIMPLE;
    } else {
        const char *coord = gf_attr_string(ctx->node, "coordinate_transformation_mode", "half_pixel");
        const char *nearest = gf_attr_string(ctx->node, "nearest_mode", "round_prefer_floor");
        int c = pick(coord, coords, 7), n = pick(nearest, nearests, 4);
        if (c == 6) c = GF_COORD_TF_HALF_PIXEL_FOR_NN;
        if (c < 0) return gf_fail(GF_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s' is not supported", coord);
        if (n < 0) return gf_fail(GF_ERR_INVALID, "unknown nearest_mode '%s'", nearest);
        p->coord = (gf_resize_coord)c;
        p->nearest = (gf_resize_nearest)n;
    }
    p->cubic_a = gf_attr_float(ctx->node, "cubic_coeff_a", -0.75f);
    p->exclude_outside = gf_attr_int(ctx->node, "exclude_outside", 0) != 0;
    p->extrapolation = gf_attr_float(ctx->node, "extrapolation_value", 0.0f);
    return GF_OK;
}

/* Checks the opset 18 additions graft does not implement, and scales, sizes
 * and roi against an input of the given rank. */
static gf_status check_params(const gf_op_ctx *ctx, int rank, const gf_resize_params *p)
{
    if (gf_attr_int(ctx->node, "antialias", 0) || gf_node_attr(ctx->node, "axes") ||
        strcmp(gf_attr_string(ctx->node, "keep_aspect_ratio_policy", "stretch"), "stretch"))
        return gf_fail(GF_ERR_UNSUPPORTED, "antialias, axes and keep_aspect_ratio_policy (opset 18) are not supported");
    const gf_tensor *v = p->sizes ? p->sizes : p->scales;
    if (v) {
        if (p->sizes && v->dtype != GF_INT64) return gf_fail(GF_ERR_INVALID, "sizes must be int64");
        if (p->scales && v->dtype != GF_FLOAT) return gf_fail(GF_ERR_INVALID, "scales must be float");
        if (v->rank != 1 || v->dims[0] != rank)
            return gf_fail(GF_ERR_INVALID, "%s needs %d values for an input of rank %d",
                           p->sizes ? "sizes" : "scales", rank, rank);
    }
    if (p->coord == GF_COORD_TF_CROP_AND_RESIZE &&
        (!p->roi || p->roi->rank != 1 || p->roi->dims[0] != 2 * rank))
        return gf_fail(GF_ERR_INVALID, "tf_crop_and_resize needs roi with %d values", 2 * rank);
    return GF_OK;
}

static const gf_tensor *given(const gf_op_ctx *ctx, int i)
{
    const gf_tensor *t = i < ctx->n_inputs ? ctx->inputs[i] : NULL;
    return t && gf_tensor_numel(t) > 0 ? t : NULL;
}

gf_status gf_resize_params_of(const gf_op_ctx *ctx, int first, int rank, gf_resize_params *p)
{
    memset(p, 0, sizeof *p);
    p->roi = given(ctx, first);
    p->scales = given(ctx, first + 1);
    p->sizes = given(ctx, first + 2);
    if (!p->scales == !p->sizes) return gf_fail(GF_ERR_INVALID, "exactly one of scales and sizes must be given");
    gf_status st = read_modes(ctx, 0, p);
    return st ? st : check_params(ctx, rank, p);
}

/* Upsample-7's scales attribute, Upsample-9's and Resize-10's scales input. */
static gf_status read_old_params(const gf_op_ctx *ctx, int rank, gf_resize_params *p)
{
    memset(p, 0, sizeof *p);
    gf_status st;
    if (is_upsample(ctx) && ctx->node->opset < 9) {
        if ((st = gf_check_inputs(ctx, 1, 1))) return st;
        int n;
        p->scale_attr = gf_attr_floats(ctx->node, "scales", &n);
        if (!p->scale_attr || n != rank)
            return gf_fail(GF_ERR_INVALID, "attribute scales needs %d values, has %d", rank, p->scale_attr ? n : 0);
    } else {
        if ((st = gf_check_inputs(ctx, 2, 2))) return st;
        p->scales = ctx->inputs[1];
    }
    if ((st = read_modes(ctx, 1, p))) return st;
    return check_params(ctx, rank, p);
}

gf_status gf_resize_node_params(const gf_op_ctx *ctx, gf_resize_params *p)
{
    if (ctx->n_inputs < 1 || !ctx->inputs[0]) return gf_fail(GF_ERR_INVALID, "input X is required");
    int rank = ctx->inputs[0]->rank;
    if (old_semantics(ctx)) return read_old_params(ctx, rank, p);
    gf_status st = gf_check_inputs(ctx, 1, 4);
    return st ? st : gf_resize_params_of(ctx, 1, rank, p);
}

static gf_status read_params(const gf_op_ctx *ctx, gf_resize_params *p)
{
    gf_status st = gf_resize_node_params(ctx, p);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (p->mode == GF_RESIZE_NEAREST ? gf_dtype_size(x->dtype) == 0 || x->dtype == GF_STRING
                                     : x->dtype != GF_FLOAT && x->dtype != GF_DOUBLE && x->dtype != GF_FLOAT16)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s resize of element type %s is not supported",
                       p->mode == GF_RESIZE_NEAREST ? "nearest" : "linear/cubic", gf_dtype_name(x->dtype));
    return GF_OK;
}

int gf_resize_shape_known(const gf_resize_params *p)
{
    if (p->scale_attr) return 1;
    const gf_tensor *v = p->sizes ? p->sizes : p->scales;
    return v->data != NULL;
}

gf_status gf_resize_map_axes(int rank, const int64_t *dims, const gf_resize_params *p, gf_resize_axis *axes)
{
    for (int d = 0; d < rank; d++) {
        gf_resize_axis *a = &axes[d];
        a->in_len = dims[d];
        if (p->sizes) {
            a->out_len = gf_int_at(p->sizes, d);
            if (a->out_len < 0) return gf_fail(GF_ERR_INVALID, "sizes[%d] is negative (%lld)", d, (long long)a->out_len);
            a->scale = a->in_len ? (double)a->out_len / (double)a->in_len : 1;
            a->out_width = (double)a->out_len;
        } else {
            double s = p->scale_attr ? p->scale_attr[d] : gf_num_at(p->scales, d);
            double len = s * (double)a->in_len;
            if (!(s > 0) || !(len < 9e15))
                return gf_fail(GF_ERR_INVALID, "scales[%d] = %g is not a usable positive scale", d, s);
            a->scale = s;
            a->out_width = len;
            a->out_len = (int64_t)floor(len);
        }
        a->roi_start = 0;
        a->roi_end = 1;
        /* The roi moves coordinates, not lengths: planning may not know it yet. */
        if (p->coord == GF_COORD_TF_CROP_AND_RESIZE && p->roi->data) {
            a->roi_start = gf_num_at(p->roi, d);
            a->roi_end = gf_num_at(p->roi, rank + d);
        }
    }
    return GF_OK;
}

/* ---- coordinates and taps ---- */

/* The source coordinate of output coordinate j; sets *outside when
 * tf_crop_and_resize maps it outside the input. */
static double source_coord(const gf_resize_axis *a, gf_resize_coord c, int64_t j, int *outside)
{
    double x = (double)j, in_last = (double)(a->in_len - 1), src;
    *outside = 0;
    switch (c) {
    case GF_COORD_HALF_PIXEL: return (x + 0.5) / a->scale - 0.5;
    case GF_COORD_PYTORCH_HALF_PIXEL: return a->out_width > 1 ? (x + 0.5) / a->scale - 0.5 : -0.5;
    case GF_COORD_ALIGN_CORNERS: return a->out_width == 1 ? 0 : x * in_last / (a->out_width - 1);
    case GF_COORD_ASYMMETRIC: return x / a->scale;
    case GF_COORD_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / a->scale;
    case GF_COORD_TF_CROP_AND_RESIZE:
        src = a->out_width == 1 ? (a->roi_end - a->roi_start) * in_last / 2
                                : x * (a->roi_end - a->roi_start) * in_last / (a->out_width - 1);
        src += a->roi_start * in_last;
        *outside = src < 0 || src > in_last;
        return src;
    }
    return x;
}

static int64_t clamp_index(double i, int64_t len)
{
    if (!(i > 0)) return 0;
    if (i > (double)(len - 1)) return len - 1;
    return (int64_t)i;
}

static double nearest_source(double x, gf_resize_nearest m, double scale)
{
    double f = floor(x), r = x - f;
    switch (m) {
    case GF_NEAREST_ROUND_PREFER_FLOOR: return r <= 0.5 ? f : f + 1;
    case GF_NEAREST_ROUND_PREFER_CEIL: return r < 0.5 ? f : f + 1;
    case GF_NEAREST_FLOOR: return f;
    case GF_NEAREST_CEIL: return ceil(x);
    case GF_NEAREST_SIMPLE: return scale < 1 ? ceil(x) : trunc(x);
    }
    return f;
}

/* Per output coordinate, the source index; -1 where tf_crop_and_resize extrapolates. */
static void nearest_indices(const gf_resize_axis *a, const gf_resize_params *p, int64_t *idx)
{
    for (int64_t j = 0; j < a->out_len; j++) {
        int outside;
        double x = source_coord(a, p->coord, j, &outside);
        idx[j] = outside ? -1 : clamp_index(nearest_source(x, p->nearest, a->scale), a->in_len);
    }
}

/* Keys' cubic convolution weights for taps at floor(x) - 1 .. floor(x) + 2, t = x - floor(x). */
static void cubic_weights(double t, double A, double *w)
{
    double t1 = t + 1, u = 1 - t, u1 = 2 - t;
    w[0] = ((A * t1 - 5 * A) * t1 + 8 * A) * t1 - 4 * A;
    w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
    w[2] = ((A + 2) * u - (A + 3)) * u * u + 1;
    w[3] = ((A * u1 - 5 * A) * u1 + 8 * A) * u1 - 4 * A;
}

/* Linear (k = 2) or cubic (k = 4) taps of every output coordinate: source
 * indices clamped to the input (edge padding) and their weights. */
static void interp_taps(const gf_resize_axis *a, const gf_resize_params *p, int k, int64_t *idx, double *w, unsigned char *outside)
{
    for (int64_t j = 0; j < a->out_len; j++) {
        int out;
        double x = source_coord(a, p->coord, j, &out), f = floor(x), t = x - f;
        double *wj = w + j * k, sum = 0;
        outside[j] = (unsigned char)out;
        if (k == 2) {
            wj[0] = 1 - t;
            wj[1] = t;
        } else {
            cubic_weights(t, p->cubic_a, wj);
        }
        double first = k == 2 ? f : f - 1;
        for (int i = 0; i < k; i++) {
            double src = first + i;
            if (p->exclude_outside && (src < 0 || src > (double)(a->in_len - 1))) wj[i] = 0;
            sum += wj[i];
            idx[j * k + i] = clamp_index(src, a->in_len);
        }
        if (p->exclude_outside && sum != 0)
            for (int i = 0; i < k; i++) wj[i] /= sum;
    }
}

int gf_resize_taps_per_output(const gf_resize_params *p)
{
    return p->mode == GF_RESIZE_NEAREST ? 1 : p->mode == GF_RESIZE_LINEAR ? 2 : 4;
}

void gf_resize_taps(const gf_resize_axis *a, const gf_resize_params *p, int64_t *idx, double *w, unsigned char *outside)
{
    if (p->mode != GF_RESIZE_NEAREST) {
        interp_taps(a, p, gf_resize_taps_per_output(p), idx, w, outside);
        return;
    }
    nearest_indices(a, p, idx);
    for (int64_t j = 0; j < a->out_len; j++) {
        outside[j] = idx[j] < 0;
        w[j] = outside[j] ? 0 : 1;
        if (outside[j]) idx[j] = 0;
    }
}

int gf_resize_is_identity(const gf_resize_axis *a, const gf_resize_params *p)
{
    if (a->out_len != a->in_len) return 0;
    for (int64_t j = 0; j < a->out_len; j++) {
        int outside;
        if (source_coord(a, p->coord, j, &outside) != (double)j || outside) return 0;
    }
    return 1;
}

/* ---- nearest: a gather in the element type ---- */

/* The integer factor s when idx[w] == w / s for every w (plain replication), else 0. */
static int64_t replication_factor(const int64_t *idx, int64_t in_len, int64_t out_len)
{
    if (in_len == 0 || out_len % in_len) return 0;
    int64_t s = out_len / in_len;
    for (int64_t w = 0; w < out_len; w++)
        if (idx[w] != w / s) return 0;
    return s;
}

#define GATHER_ROW(T)                                                                      \
    static void gather_row_##T(T *dst, const T *src, const int64_t *idx, int64_t n,       \
                               int64_t rep, T fill)                                        \
    {                                                                                      \
        if (rep == 2) {                                                                    \
            for (int64_t i = 0; i < n / 2; i++) dst[2 * i] = dst[2 * i + 1] = src[i];      \
        } else if (rep > 0) {                                                              \
            for (int64_t i = 0; i < n / rep; i++)                                          \
                for (int64_t r = 0; r < rep; r++) dst[i * rep + r] = src[i];               \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++) dst[i] = idx[i] < 0 ? fill : src[idx[i]];      \
        }                                                                                  \
    }
GATHER_ROW(uint8_t)
GATHER_ROW(uint16_t)
GATHER_ROW(uint32_t)
GATHER_ROW(uint64_t)

/* One output row from one input row; `fill` holds the extrapolation value's bytes. */
static void gather_row(size_t es, void *dst, const void *src, const int64_t *idx, int64_t n, int64_t rep,
                       const unsigned char *fill)
{
    uint8_t f1;
    uint16_t f2;
    uint32_t f4;
    uint64_t f8;
    switch (es) {
    case 1: memcpy(&f1, fill, 1); gather_row_uint8_t(dst, src, idx, n, rep, f1); break;
    case 2: memcpy(&f2, fill, 2); gather_row_uint16_t(dst, src, idx, n, rep, f2); break;
    case 4: memcpy(&f4, fill, 4); gather_row_uint32_t(dst, src, idx, n, rep, f4); break;
    default: memcpy(&f8, fill, 8); gather_row_uint64_t(dst, src, idx, n, rep, f8); break; /* 8 */
    }
}

static void fill_row(size_t es, void *dst, int64_t n, const unsigned char *fill)
{
    for (int64_t i = 0; i < n; i++) memcpy((char *)dst + (size_t)i * es, fill, es);
}

/* Output viewed as [planes, H, W] (H = 1 for rank 1). Planes run in parallel;
 * within a plane a row whose source row equals the previous one is copied. */
static void resize_nearest(const gf_tensor *x, gf_tensor *y, int64_t *const *idx, const unsigned char *fill)
{
    int r = x->rank;
    size_t es = gf_dtype_size(x->dtype);
    int64_t in_strides[GF_MAX_RANK], s = 1;
    for (int d = r - 1; d >= 0; d--) {
        in_strides[d] = s;
        s *= x->dims[d];
    }
    int64_t W = y->dims[r - 1], H = r >= 2 ? y->dims[r - 2] : 1, planes = 1;
    for (int d = 0; d < r - 2; d++) planes *= y->dims[d];
    int64_t row_stride = r >= 2 ? in_strides[r - 2] : 0;
    const int64_t *idx_w = idx[r - 1];
    int64_t rep = replication_factor(idx_w, x->dims[r - 1], W);
    const char *xd = x->data;
    char *yd = y->data;
    size_t row_bytes = (size_t)W * es;

#pragma omp parallel for schedule(static) if (planes * H * W > 65536)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t src_plane = 0, rest = pl;
        for (int d = r - 3; d >= 0 && src_plane >= 0; d--) {
            int64_t i = idx[d][rest % y->dims[d]];
            rest /= y->dims[d];
            src_plane = i < 0 ? -1 : src_plane + i * in_strides[d];
        }
        for (int64_t h = 0; h < H; h++) {
            char *dst = yd + (size_t)(pl * H + h) * row_bytes;
            int64_t ih = r >= 2 ? idx[r - 2][h] : 0;
            if (src_plane < 0 || ih < 0) fill_row(es, dst, W, fill);
            else if (h > 0 && r >= 2 && ih == idx[r - 2][h - 1]) memcpy(dst, dst - row_bytes, row_bytes);
            else gather_row(es, dst, xd + (size_t)(src_plane + ih * row_stride) * es, idx_w, W, rep, fill);
        }
    }
}

/* ---- linear and cubic: separable passes in double ---- */

/* Resizes axis `a` of `in` (dims) into `out`: out[o, j, i] = Σ_k w[j,k] in[o, idx[j,k], i]. */
static void interp_pass(const double *in, double *out, const int64_t *dims, int rank, int a, int64_t out_len,
                        int k, const int64_t *idx, const double *w, const unsigned char *outside, double fill)
{
    int64_t outer = 1, inner = 1, in_len = dims[a];
    for (int d = 0; d < a; d++) outer *= dims[d];
    for (int d = a + 1; d < rank; d++) inner *= dims[d];
#pragma omp parallel for schedule(static) if (outer * out_len * inner > 32768)
    for (int64_t oj = 0; oj < outer * out_len; oj++) {
        int64_t o = oj / out_len, j = oj % out_len;
        double *dst = out + oj * inner;
        const double *src = in + o * in_len * inner;
        if (outside[j]) {
            for (int64_t i = 0; i < inner; i++) dst[i] = fill;
            continue;
        }
        for (int64_t i = 0; i < inner; i++) dst[i] = 0;
        for (int t = 0; t < k; t++) {
            double wt = w[j * k + t];
            const double *s = src + idx[j * k + t] * inner;
            for (int64_t i = 0; i < inner; i++) dst[i] += wt * s[i];
        }
    }
}

static gf_status resize_interp(const gf_tensor *x, gf_tensor *y, const gf_resize_params *p, const gf_resize_axis *axes)
{
    int r = x->rank, k = gf_resize_taps_per_output(p);
    int64_t dims[GF_MAX_RANK], n = gf_tensor_numel(x), max_len = 1;
    for (int d = 0; d < r; d++) {
        dims[d] = x->dims[d];
        if (axes[d].out_len > max_len) max_len = axes[d].out_len;
    }
    double *cur = malloc((size_t)(n ? n : 1) * sizeof *cur);
    int64_t *idx = malloc((size_t)max_len * (size_t)k * sizeof *idx);
    double *w = malloc((size_t)max_len * (size_t)k * sizeof *w);
    unsigned char *outside = malloc((size_t)max_len);
    gf_status st = GF_OK;
    if (!cur || !idx || !w || !outside) st = gf_fail(GF_ERR_NOMEM, "out of memory for resize buffers");
    for (int64_t i = 0; !st && i < n; i++) cur[i] = x->dtype == GF_FLOAT ? ((const float *)x->data)[i] : gf_num_at(x, i);
    for (int a = 0; !st && a < r; a++) {
        if (gf_resize_is_identity(&axes[a], p)) continue;
        int64_t next_n = n / (dims[a] ? dims[a] : 1) * axes[a].out_len;
        if (dims[a] == 0) next_n = 0;
        double *next = malloc((size_t)(next_n ? next_n : 1) * sizeof *next);
        if (!next) {
            st = gf_fail(GF_ERR_NOMEM, "out of memory for a resize pass of %lld elements", (long long)next_n);
            break;
        }
        gf_resize_taps(&axes[a], p, idx, w, outside);
        if (next_n) interp_pass(cur, next, dims, r, a, axes[a].out_len, k, idx, w, outside, p->extrapolation);
        free(cur);
        cur = next;
        n = next_n;
        dims[a] = axes[a].out_len;
    }
    if (!st) {
        if (y->dtype == GF_FLOAT)
            for (int64_t i = 0; i < n; i++) ((float *)y->data)[i] = (float)cur[i];
        else
            for (int64_t i = 0; i < n; i++) gf_num_set(y, i, cur[i]);
    }
    free(cur);
    free(idx);
    free(w);
    free(outside);
    return st;
}

/* The common case, float32 with only the last two axes resized, straight from
 * the input: each output is the tensor product of its row taps and column taps
 * (the same sum the separable passes compute), with no intermediate buffers. */
static int fits_direct_2d(const gf_tensor *x, const gf_resize_params *p, const gf_resize_axis *axes)
{
    if (x->dtype != GF_FLOAT || x->rank < 2) return 0;
    for (int d = 0; d < x->rank - 2; d++)
        if (!gf_resize_is_identity(&axes[d], p)) return 0;
    return 1;
}

/* One output row from k source rows; k is a constant at each call so the tap loops unroll. */
static inline void direct_row(float *dst, int64_t W, const float *const *rows, const double *wh,
                              const int64_t *iw, const double *ww, const unsigned char *out_w, float fill, const int k)
{
    for (int64_t w = 0; w < W; w++) {
        double sum = 0;
        for (int a = 0; a < k; a++) {
            double across = 0;
            for (int b = 0; b < k; b++) across += ww[w * k + b] * rows[a][iw[w * k + b]];
            sum += wh[a] * across;
        }
        dst[w] = out_w[w] ? fill : (float)sum;
    }
}

static gf_status resize_direct_2d(const gf_tensor *x, gf_tensor *y, const gf_resize_params *p, const gf_resize_axis *axes)
{
    int r = x->rank, k = gf_resize_taps_per_output(p);
    const gf_resize_axis *ah = &axes[r - 2], *aw = &axes[r - 1];
    int64_t H = ah->out_len, W = aw->out_len, in_w = aw->in_len, plane_in = ah->in_len * in_w;
    int64_t planes = gf_tensor_numel(y) / (H * W);
    int64_t *ih = malloc((size_t)(H + W) * (size_t)k * sizeof *ih);
    double *wt = malloc((size_t)(H + W) * (size_t)k * sizeof *wt);
    unsigned char *out = malloc((size_t)(H + W));
    if (!ih || !wt || !out) {
        free(ih);
        free(wt);
        free(out);
        return gf_fail(GF_ERR_NOMEM, "out of memory for resize taps");
    }
    int64_t *iw = ih + H * k;
    double *wh = wt, *ww = wt + H * k;
    gf_resize_taps(ah, p, ih, wh, out);
    gf_resize_taps(aw, p, iw, ww, out + H);
    const float *xd = x->data;
    float *yd = y->data;
    float fill = (float)p->extrapolation;
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
    for (int64_t ph = 0; ph < planes * H; ph++) {
        int64_t pl = ph / H, h = ph % H;
        const float *src = xd + pl * plane_in;
        float *dst = yd + ph * W;
        if (out[h]) {
            for (int64_t w = 0; w < W; w++) dst[w] = fill;
            continue;
        }
        const float *rows[4];
        for (int a = 0; a < k; a++) rows[a] = src + ih[h * k + a] * in_w;
        if (k == 2) direct_row(dst, W, rows, wh + h * k, iw, ww, out + H, fill, 2);
        else direct_row(dst, W, rows, wh + h * k, iw, ww, out + H, fill, 4);
    }
    free(ih);
    free(wt);
    free(out);
    return GF_OK;
}

/* ---- the op ---- */

static gf_status resize_infer(gf_op_ctx *ctx)
{
    gf_resize_params p;
    gf_status st = read_params(ctx, &p);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    if (!gf_resize_shape_known(&p)) {
        ctx->outputs[0]->dtype = x->dtype;
        ctx->outputs[0]->rank = GF_RANK_DYNAMIC;
        return GF_OK;
    }
    gf_resize_axis axes[GF_MAX_RANK];
    if ((st = gf_resize_map_axes(x->rank, x->dims, &p, axes))) return st;
    int64_t dims[GF_MAX_RANK];
    for (int d = 0; d < x->rank; d++) dims[d] = axes[d].out_len;
    gf_set_shape(ctx->outputs[0], x->dtype, x->rank, dims);
    return GF_OK;
}

static gf_status resize_cpu(gf_op_ctx *ctx)
{
    gf_resize_params p;
    gf_status st = read_params(ctx, &p);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    if (!gf_resize_shape_known(&p)) return gf_fail(GF_ERR_RUNTIME, "scales/sizes are not known when the kernel runs");
    gf_resize_axis axes[GF_MAX_RANK];
    if ((st = gf_resize_map_axes(x->rank, x->dims, &p, axes))) return st;
    int64_t numel = gf_tensor_numel(y);
    if (numel == 0) return GF_OK;
    if (x->rank == 0) {
        memcpy(y->data, x->data, gf_tensor_nbytes(x));
        return GF_OK;
    }
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] == 0) return gf_fail(GF_ERR_INVALID, "cannot resize an empty axis %d to %lld", d, (long long)axes[d].out_len);
    if (p.mode != GF_RESIZE_NEAREST)
        return fits_direct_2d(x, &p, axes) ? resize_direct_2d(x, y, &p, axes) : resize_interp(x, y, &p, axes);

    int64_t *idx[GF_MAX_RANK] = {0};
    for (int d = 0; d < x->rank && !st; d++) {
        idx[d] = malloc((size_t)axes[d].out_len * sizeof *idx[d]);
        if (!idx[d]) st = gf_fail(GF_ERR_NOMEM, "out of memory for resize indices");
        else nearest_indices(&axes[d], &p, idx[d]);
    }
    if (!st) {
        uint64_t fill_bits = 0;
        gf_tensor fill = {.dtype = x->dtype, .rank = 0, .data = &fill_bits};
        gf_num_set(&fill, 0, p.extrapolation);
        resize_nearest(x, y, idx, (const unsigned char *)&fill_bits);
    }
    for (int d = 0; d < x->rank; d++) free(idx[d]);
    return st;
}

const gf_op gf_ops_resize[] = {
    {"", "Upsample", 7, 9, resize_infer, resize_cpu},
    {"", "Resize", 10, 0, resize_infer, resize_cpu},
    {0},
};
