/* Element-wise unary ops: activations (Relu, Sigmoid, Elu, ...), math
 * functions (Exp, Log, Sqrt, trig, ...), Clip, IsNaN/IsInf, Not, Cast and
 * CastLike.
 *
 * One kernel serves the math ops: a table maps each op to a kind and its
 * attribute defaults, and eval_f64 computes any kind in double: that is the
 * reference. float32 has a fast path (map_f32) whose hot kinds run loops of
 * their own that vectorize, with exp-based ones on exp_f32, a branch-free
 * exp (libm's expf does not vectorize without -ffast-math);
 * tests/test_fastpath_elementwise.c checks it against the reference. Integers
 * (where the op allows them) are computed exactly in int64; other types
 * (float16, bfloat16) go element by element through double. */
#include "op.h"
#include "unary.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* graft does not use floating-point exception flags. GCC's default
 * -ftrapping-math keeps it from evaluating both sides of a select (Clip, the
 * clamp in exp_f32), so none of these loops would vectorize; clang's default
 * is already off. Values are the same either way. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define PARALLEL_MIN 65536
#define BLOCK 4096

typedef enum unary_kind {
    U_RELU, U_LEAKY_RELU, U_SIGMOID, U_TANH, U_EXP, U_LOG, U_SQRT, U_NEG, U_ABS, U_RECIPROCAL, U_ERF,
    U_FLOOR, U_CEIL, U_ROUND, U_SIGN, U_ELU, U_SELU, U_CELU, U_HARD_SIGMOID, U_HARD_SWISH, U_SOFTPLUS,
    U_SOFTSIGN, U_THRESHOLDED_RELU, U_SHRINK, U_CLIP, U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN,
    U_SINH, U_COSH, U_ASINH, U_ACOSH, U_ATANH,
} unary_kind;

typedef struct params {
    double alpha, beta, gamma;   /* Clip keeps its bounds in alpha (min) and beta (max) */
    int64_t lo, hi;              /* Clip's bounds on integer inputs, exact */
} params;

typedef struct unary {
    const char *op_type;
    unary_kind kind;
    int int_ok;                  /* exact on integer types */
    params dflt;                 /* attribute defaults (float32, as ONNX attributes): alpha, beta, gamma (or lambd, bias) */
} unary;

static const unary unaries[] = {
    {"Relu", U_RELU, 1, {0}}, {"LeakyRelu", U_LEAKY_RELU, 0, {0.01f, 0, 0}},
    {"Sigmoid", U_SIGMOID, 0, {0}}, {"Tanh", U_TANH, 0, {0}}, {"Exp", U_EXP, 0, {0}},
    {"Log", U_LOG, 0, {0}}, {"Sqrt", U_SQRT, 0, {0}}, {"Neg", U_NEG, 1, {0}}, {"Abs", U_ABS, 1, {0}},
    {"Reciprocal", U_RECIPROCAL, 0, {0}}, {"Erf", U_ERF, 0, {0}}, {"Floor", U_FLOOR, 0, {0}},
    {"Ceil", U_CEIL, 0, {0}}, {"Round", U_ROUND, 0, {0}}, {"Sign", U_SIGN, 1, {0}},
    {"Elu", U_ELU, 0, {1.0, 0, 0}},
    {"Selu", U_SELU, 0, {1.67326319217681884765625, 0, 1.05070102214813232421875}},
    {"Celu", U_CELU, 0, {1.0, 0, 0}}, {"HardSigmoid", U_HARD_SIGMOID, 0, {0.2f, 0.5f, 0}},
    {"HardSwish", U_HARD_SWISH, 0, {0}}, {"Softplus", U_SOFTPLUS, 0, {0}},
    {"Softsign", U_SOFTSIGN, 0, {0}}, {"ThresholdedRelu", U_THRESHOLDED_RELU, 0, {1.0, 0, 0}},
    {"Shrink", U_SHRINK, 1, {0.5f, 0, 0}}, {"Clip", U_CLIP, 1, {0}},
    {"Sin", U_SIN, 0, {0}}, {"Cos", U_COS, 0, {0}}, {"Tan", U_TAN, 0, {0}}, {"Asin", U_ASIN, 0, {0}},
    {"Acos", U_ACOS, 0, {0}}, {"Atan", U_ATAN, 0, {0}}, {"Sinh", U_SINH, 0, {0}},
    {"Cosh", U_COSH, 0, {0}}, {"Asinh", U_ASINH, 0, {0}}, {"Acosh", U_ACOSH, 0, {0}},
    {"Atanh", U_ATANH, 0, {0}},
};

static const unary *find_unary(const char *op_type)
{
    for (size_t i = 0; i < sizeof unaries / sizeof *unaries; i++)
        if (!strcmp(unaries[i].op_type, op_type)) return &unaries[i];
    return NULL;
}

/* Clamps written with comparisons so that NaN passes through (fmin/fmax drop it). */
#define CLAMP(v, lo, hi) ((v) < (lo) ? (lo) : (v) > (hi) ? (hi) : (v))

static inline double eval_f64(unary_kind k, double x, const params *p)
{
    switch (k) {
    case U_RELU: return x < 0 ? 0 : x;
    case U_LEAKY_RELU: return x < 0 ? p->alpha * x : x;
    case U_SIGMOID: return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case U_TANH: return tanh(x);
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_SQRT: return sqrt(x);
    case U_NEG: return -x;
    case U_ABS: return fabs(x);
    case U_RECIPROCAL: return 1 / x;
    case U_ERF: return erf(x);
    case U_FLOOR: return floor(x);
    case U_CEIL: return ceil(x);
    case U_ROUND: return nearbyint(x);   /* default rounding mode: half to even */
    case U_SIGN: return x > 0 ? 1 : x < 0 ? -1 : x;
    case U_ELU: return x < 0 ? p->alpha * expm1(x) : x;
    case U_SELU: return p->gamma * (x <= 0 ? p->alpha * expm1(x) : x);
    case U_CELU: return x < 0 ? p->alpha * expm1(x / p->alpha) : x;
    case U_HARD_SIGMOID: return CLAMP(p->alpha * x + p->beta, 0.0, 1.0);
    case U_HARD_SWISH: return x * CLAMP(x / 6 + 0.5, 0.0, 1.0);
    case U_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case U_SOFTSIGN: return x / (1 + fabs(x));
    case U_THRESHOLDED_RELU: return x > p->alpha ? x : 0;
    case U_SHRINK: return x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0;
    case U_CLIP: { double v = x < p->alpha ? p->alpha : x; return v > p->beta ? p->beta : v; } /* as clip_f32 */
    case U_SIN: return sin(x);
    case U_COS: return cos(x);
    case U_TAN: return tan(x);
    case U_ASIN: return asin(x);
    case U_ACOS: return acos(x);
    case U_ATAN: return atan(x);
    case U_SINH: return sinh(x);
    case U_COSH: return cosh(x);
    case U_ASINH: return asinh(x);
    case U_ACOSH: return acosh(x);
    case U_ATANH: return atanh(x);
    }
    return 0;
}

/* ---- float32 fast path ---- */

/* exp(x) within a few ulp, branch-free so that loops calling it vectorize:
 * x = n ln2 + r with |r| <= ln2/2, exp(r) from Cephes' expf polynomial, and
 * 2^n applied as two factors so results fall gradually into the subnormals
 * and overflow to inf as expf's do. NaN stays NaN. Integer work is unsigned:
 * for NaN the bits are garbage but the product is NaN anyway. */
static inline float exp_f32(float x)
{
    x = x > 89.0f ? 89.0f : x < -104.0f ? -104.0f : x;   /* beyond these exp is inf or 0 already */
    const float round_magic = 12582912.0f;   /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + round_magic, n = t - round_magic;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;   /* ln2 in two parts, the first exact times n */
    float e = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
               1.6666665459e-1f) * r + 5.0000001201e-1f;
    e = e * r * r + r + 1.0f;
    uint32_t tb, m, s1b, s2b;
    memcpy(&tb, &t, 4);
    m = tb - 0x4B400000u + 256;               /* n + 256 in [106, 385] */
    s1b = ((m >> 1) - 1) << 23;               /* 2^floor(n/2): biased exponent floor(n/2) + 127 */
    s2b = (m - (m >> 1) - 1) << 23;           /* 2^(n - floor(n/2)) */
    float s1, s2;
    memcpy(&s1, &s1b, 4);
    memcpy(&s2, &s2b, 4);
    return e * s1 * s2;
}

/* tanh as Cephes' tanhf: an odd polynomial near 0, 1 - 2 / (exp(2|x|) + 1) beyond. */
static inline float tanh_f32(float x)
{
    float z = x * x, ax = fabsf(x);
    float near0 = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float far = copysignf(1.0f - 2.0f / (exp_f32(2.0f * ax) + 1.0f), x);
    return ax < 0.625f ? near0 : far;
}

/* 1 / (1 + exp(-x)), as e / (1 + e) with e = exp(x) for negative x so that
 * small results keep their relative precision. */
static inline float sigmoid_f32(float x)
{
    float e = exp_f32(-fabsf(x)), s = 1.0f / (1.0f + e);
    return x >= 0 ? s : e * s;
}

/* min(max(v, lo), hi): min > max gives max, as numpy's clip; NaN stays NaN. */
static inline float clip_f32(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

#define MAP(EXPR) for (int64_t i = 0; i < n; i++) { float v = x[i]; y[i] = (EXPR); } break

/* Compiled twice, for AVX2 and for the baseline, and picked when the library
 * loads: exp_f32 is compute-bound, and twice the vector width halves its time.
 * Both compile the same operations (no FMA contraction), so results do not
 * depend on the machine. */
__attribute__((target_clones("avx2", "default")))
static void map_f32(unary_kind k, const float *x, float *y, int64_t n, const params *p)
{
    const float alpha = (float)p->alpha, beta = (float)p->beta;
    switch (k) {
    case U_RELU: MAP(v < 0 ? 0 : v);
    case U_LEAKY_RELU: MAP(v < 0 ? alpha * v : v);
    case U_CLIP: MAP(clip_f32(v, alpha, beta));
    case U_SIGMOID: MAP(sigmoid_f32(v));
    case U_TANH: MAP(tanh_f32(v));
    case U_EXP: MAP(exp_f32(v));
    case U_NEG: MAP(-v);
    case U_ABS: MAP(fabsf(v));
    /* in double, as the reference: in float, the sum cancels near the kinks */
    case U_HARD_SIGMOID: MAP((float)CLAMP(p->alpha * v + p->beta, 0.0, 1.0));
    case U_HARD_SWISH: MAP((float)(v * CLAMP(v / 6.0 + 0.5, 0.0, 1.0)));
    default: MAP((float)eval_f64(k, v, p));
    }
}

static void run_f32(unary_kind k, const float *x, float *y, int64_t n, const params *p)
{
    #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t b = 0; b < (n + BLOCK - 1) / BLOCK; b++) {
        int64_t i0 = b * BLOCK;
        map_f32(k, x + i0, y + i0, n - i0 < BLOCK ? n - i0 : BLOCK, p);
    }
}

void gf_relu_f32(const float *x, float *y, int64_t n, int leaky, float alpha)
{
    params p = {.alpha = alpha};
    run_f32(leaky ? U_LEAKY_RELU : U_RELU, x, y, n, &p);
}

/* ---- integers ---- */

/* int64 exactly (wrapping on overflow), for the kinds that are integer operations. */
static inline int64_t eval_i64(unary_kind k, int64_t x, const params *p)
{
    switch (k) {
    case U_RELU: return x < 0 ? 0 : x;
    case U_NEG: return (int64_t)(0 - (uint64_t)x);
    case U_ABS: return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
    case U_SIGN: return (x > 0) - (x < 0);
    case U_CLIP: { int64_t v = x < p->lo ? p->lo : x; return v > p->hi ? p->hi : v; }
    default: return gf_saturate_i64(eval_f64(k, (double)x, p));
    }
}

static int is_float(gf_dtype t) { return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16 || t == GF_BFLOAT16; }
static int is_int(gf_dtype t)
{
    return t == GF_INT8 || t == GF_INT16 || t == GF_INT32 || t == GF_UINT8 || t == GF_UINT16 ||
           t == GF_UINT32 || t == GF_INT64;   /* uint64 would not fit int64 */
}

static void run_any(unary_kind k, const gf_tensor *x, gf_tensor *y, const params *p)
{
    int64_t n = gf_tensor_numel(x);
    if (x->dtype == GF_FLOAT) {
        run_f32(k, x->data, y->data, n, p);
    } else if (x->dtype == GF_DOUBLE) {
        const double *xs = x->data;
        double *ys = y->data;
        #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) ys[i] = eval_f64(k, xs[i], p);
    } else if (is_int(x->dtype)) {
        for (int64_t i = 0; i < n; i++) gf_int_set(y, i, eval_i64(k, gf_int_at(x, i), p));
    } else {
        #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) gf_num_set(y, i, eval_f64(k, gf_num_at(x, i), p));
    }
}

/* Clip's bounds: attributes before opset 11, optional scalar inputs since. */
static gf_status clip_bounds(const gf_op_ctx *ctx, params *p)
{
    p->alpha = -INFINITY;
    p->beta = INFINITY;
    p->lo = INT64_MIN;
    p->hi = INT64_MAX;
    if (ctx->node->opset < 11) {
        p->alpha = gf_attr_float(ctx->node, "min", -INFINITY);
        p->beta = gf_attr_float(ctx->node, "max", INFINITY);
        return GF_OK;
    }
    for (int i = 1; i < ctx->n_inputs && i < 3; i++) {
        const gf_tensor *b = ctx->inputs[i];
        if (!b) continue;
        if (b->dtype != ctx->inputs[0]->dtype)
            return gf_fail(GF_ERR_INVALID, "bound %d is %s, input is %s", i, gf_dtype_name(b->dtype),
                           gf_dtype_name(ctx->inputs[0]->dtype));
        if (gf_tensor_numel(b) != 1) return gf_fail(GF_ERR_INVALID, "bound %d must be a scalar", i);
        if (!b->data) continue;   /* known when running */
        *(i == 1 ? &p->alpha : &p->beta) = gf_num_at(b, 0);
        if (is_int(b->dtype)) *(i == 1 ? &p->lo : &p->hi) = gf_int_at(b, 0);
    }
    return GF_OK;
}

/* Sets *v from a float attribute when the node has it; defaults stay exact in double. */
static void float_attr(const gf_node *node, const char *name, double *v)
{
    if (gf_node_attr(node, name)) *v = gf_attr_float(node, name, 0);
}

static gf_status unary_params(const gf_op_ctx *ctx, const unary *u, params *p)
{
    *p = u->dflt;
    if (u->kind == U_CLIP) return clip_bounds(ctx, p);
    if (u->kind == U_SHRINK) {
        float_attr(ctx->node, "lambd", &p->alpha);
        float_attr(ctx->node, "bias", &p->beta);
        return GF_OK;
    }
    float_attr(ctx->node, "alpha", &p->alpha);
    float_attr(ctx->node, "beta", &p->beta);
    float_attr(ctx->node, "gamma", &p->gamma);
    return GF_OK;
}

static gf_status unary_infer(gf_op_ctx *ctx)
{
    const unary *u = find_unary(ctx->node->op_type);
    gf_status st = gf_check_inputs(ctx, 1, u->kind == U_CLIP ? 3 : 1);
    if (st) return st;
    gf_dtype t = ctx->inputs[0]->dtype;
    if (!is_float(t) && !(u->int_ok && is_int(t)))
        return gf_fail(GF_ERR_UNSUPPORTED, "%s is not supported on %s", u->op_type, gf_dtype_name(t));
    params p;
    if ((st = unary_params(ctx, u, &p))) return st;
    gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return GF_OK;
}

static gf_status unary_cpu(gf_op_ctx *ctx)
{
    const unary *u = find_unary(ctx->node->op_type);
    params p;
    gf_status st = unary_params(ctx, u, &p);
    if (st) return st;
    run_any(u->kind, ctx->inputs[0], ctx->outputs[0], &p);
    return GF_OK;
}

/* ---- IsNaN, IsInf, Not ---- */

static gf_status to_bool_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    gf_dtype t = ctx->inputs[0]->dtype;
    int is_not = !strcmp(ctx->node->op_type, "Not");
    if (is_not ? t != GF_BOOL : !is_float(t))
        return gf_fail(GF_ERR_UNSUPPORTED, "%s is not supported on %s", ctx->node->op_type, gf_dtype_name(t));
    gf_set_shape(ctx->outputs[0], GF_BOOL, ctx->inputs[0]->rank, ctx->inputs[0]->dims);
    return GF_OK;
}

static gf_status to_bool_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    uint8_t *y = ctx->outputs[0]->data;
    int64_t n = gf_tensor_numel(x);
    const char *op = ctx->node->op_type;
    if (!strcmp(op, "Not")) {
        for (int64_t i = 0; i < n; i++) y[i] = !((const uint8_t *)x->data)[i];
    } else if (!strcmp(op, "IsNaN")) {
        for (int64_t i = 0; i < n; i++) y[i] = isnan(gf_num_at(x, i)) != 0;
    } else {
        int neg = gf_attr_int(ctx->node, "detect_negative", 1) != 0;
        int pos = gf_attr_int(ctx->node, "detect_positive", 1) != 0;
        for (int64_t i = 0; i < n; i++) {
            double v = gf_num_at(x, i);
            y[i] = isinf(v) && (v > 0 ? pos : neg);
        }
    }
    return GF_OK;
}

/* ---- Cast, CastLike ---- */

static int castable(gf_dtype t) { return t != GF_STRING && gf_dtype_size(t) != 0; }

static gf_status cast_infer(gf_op_ctx *ctx)
{
    int like = !strcmp(ctx->node->op_type, "CastLike");
    gf_status st = gf_check_inputs(ctx, like ? 2 : 1, like ? 2 : 1);
    if (st) return st;
    gf_dtype from = ctx->inputs[0]->dtype;
    gf_dtype to = like ? ctx->inputs[1]->dtype : (gf_dtype)gf_attr_int(ctx->node, "to", 0);
    if (!castable(from) || !castable(to))
        return gf_fail(GF_ERR_UNSUPPORTED, "cast from %s to %s", gf_dtype_name(from), gf_dtype_name(to));
    gf_set_shape(ctx->outputs[0], to, ctx->inputs[0]->rank, ctx->inputs[0]->dims);
    return GF_OK;
}

/* A float value to an integer type: ONNX leaves out-of-range values undefined,
 * C makes them undefined behaviour, so they saturate (NaN gives 0). */
static void store_float_as_int(gf_tensor *t, int64_t i, double v)
{
    static const struct { gf_dtype t; double lo, hi; } range[] = {
        {GF_INT8, INT8_MIN, INT8_MAX}, {GF_UINT8, 0, UINT8_MAX}, {GF_INT16, INT16_MIN, INT16_MAX},
        {GF_UINT16, 0, UINT16_MAX}, {GF_INT32, INT32_MIN, INT32_MAX}, {GF_UINT32, 0, UINT32_MAX},
    };
    if (t->dtype == GF_UINT64) {
        ((uint64_t *)t->data)[i] = v != v || v <= 0 ? 0 : v >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v;
        return;
    }
    for (size_t r = 0; r < sizeof range / sizeof *range; r++)
        if (range[r].t == t->dtype) v = v < range[r].lo ? range[r].lo : v > range[r].hi ? range[r].hi : v;
    gf_int_set(t, i, gf_saturate_i64(v));
}

/* Integers and bools convert exactly through int64 (uint64 by its bits), wrapping
 * like C and numpy; everything else through double. */
static gf_status cast_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t n = gf_tensor_numel(x);
    if (x->dtype == y->dtype) {
        memcpy(y->data, x->data, gf_tensor_nbytes(x));
    } else if (y->dtype == GF_BOOL || is_float(y->dtype)) {
        for (int64_t i = 0; i < n; i++) gf_num_set(y, i, gf_num_at(x, i));
    } else if (is_float(x->dtype)) {
        for (int64_t i = 0; i < n; i++) store_float_as_int(y, i, gf_num_at(x, i));
    } else {
        for (int64_t i = 0; i < n; i++) gf_int_set(y, i, gf_int_at(x, i));
    }
    return GF_OK;
}

/* Element by element: the output in the input's layout (and storage, when the session
 * computes it in place). */
static gf_status unary_layouts(gf_op_ctx *ctx)
{
    if (ctx->inputs[0]->dtype == GF_FLOAT && ctx->outputs[0])
        ctx->in_layout[0] = ctx->out_layout[0] = GF_LAYOUT_FOLLOW;
    return GF_OK;
}

#define UN(name, since) {"", name, since, 0, unary_infer, unary_cpu, 0, unary_layouts}
const gf_op gf_ops_unary[] = {
    UN("Relu", 1), UN("LeakyRelu", 1), UN("Sigmoid", 1), UN("Tanh", 1), UN("Exp", 1), UN("Log", 1),
    UN("Sqrt", 1), UN("Neg", 1), UN("Abs", 1), UN("Reciprocal", 1), UN("Erf", 9), UN("Floor", 1),
    UN("Ceil", 1), UN("Round", 11), UN("Sign", 9), UN("Elu", 1), UN("Selu", 1), UN("Celu", 12),
    UN("HardSigmoid", 1), UN("HardSwish", 14), UN("Softplus", 1), UN("Softsign", 1),
    UN("ThresholdedRelu", 10), UN("Shrink", 9), UN("Clip", 1), UN("Sin", 7), UN("Cos", 7),
    UN("Tan", 7), UN("Asin", 7), UN("Acos", 7), UN("Atan", 7), UN("Sinh", 9), UN("Cosh", 9),
    UN("Asinh", 9), UN("Acosh", 9), UN("Atanh", 9),
    {"", "IsNaN", 9, 0, to_bool_infer, to_bool_cpu},
    {"", "IsInf", 10, 0, to_bool_infer, to_bool_cpu},
    {"", "Not", 1, 0, to_bool_infer, to_bool_cpu},
    {"", "Cast", 1, 0, cast_infer, cast_cpu},
    {"", "CastLike", 15, 0, cast_infer, cast_cpu},
    {0},
};
