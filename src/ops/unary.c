/* Element-wise unary ops: activations (Relu, Sigmoid, Elu, ...), math
 * functions (Exp, Log, Sqrt, trig, ...), Clip, IsNaN/IsInf, Not, Cast and
 * CastLike.
 *
 * One kernel serves the math ops: a table maps each op to a kind and its
 * attribute defaults; eval_f64 computes any kind in double, eval_f32 gives
 * float32 its own (vectorizable) expressions for the hot ones. float32 and
 * double run typed loops; other types (float16, bfloat16, integers where the
 * op allows them) go element by element through double. */
#include "op.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define PARALLEL_MIN 65536

typedef enum unary_kind {
    U_RELU, U_LEAKY_RELU, U_SIGMOID, U_TANH, U_EXP, U_LOG, U_SQRT, U_NEG, U_ABS, U_RECIPROCAL, U_ERF,
    U_FLOOR, U_CEIL, U_ROUND, U_SIGN, U_ELU, U_SELU, U_CELU, U_HARD_SIGMOID, U_HARD_SWISH, U_SOFTPLUS,
    U_SOFTSIGN, U_THRESHOLDED_RELU, U_SHRINK, U_CLIP, U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN,
    U_SINH, U_COSH, U_ASINH, U_ACOSH, U_ATANH,
} unary_kind;

typedef struct params {
    double alpha, beta, gamma;   /* Clip keeps its bounds in alpha (min) and beta (max) */
} params;

typedef struct unary {
    const char *op_type;
    unary_kind kind;
    int int_ok;                  /* exact on integer types */
    params dflt;                 /* attribute defaults: alpha, beta, gamma (or lambd, bias) */
} unary;

static const unary unaries[] = {
    {"Relu", U_RELU, 1, {0}}, {"LeakyRelu", U_LEAKY_RELU, 0, {0.01, 0, 0}},
    {"Sigmoid", U_SIGMOID, 0, {0}}, {"Tanh", U_TANH, 0, {0}}, {"Exp", U_EXP, 0, {0}},
    {"Log", U_LOG, 0, {0}}, {"Sqrt", U_SQRT, 0, {0}}, {"Neg", U_NEG, 1, {0}}, {"Abs", U_ABS, 1, {0}},
    {"Reciprocal", U_RECIPROCAL, 0, {0}}, {"Erf", U_ERF, 0, {0}}, {"Floor", U_FLOOR, 0, {0}},
    {"Ceil", U_CEIL, 0, {0}}, {"Round", U_ROUND, 0, {0}}, {"Sign", U_SIGN, 1, {0}},
    {"Elu", U_ELU, 0, {1.0, 0, 0}},
    {"Selu", U_SELU, 0, {1.67326319217681884765625, 0, 1.05070102214813232421875}},
    {"Celu", U_CELU, 0, {1.0, 0, 0}}, {"HardSigmoid", U_HARD_SIGMOID, 0, {0.2, 0.5, 0}},
    {"HardSwish", U_HARD_SWISH, 0, {0}}, {"Softplus", U_SOFTPLUS, 0, {0}},
    {"Softsign", U_SOFTSIGN, 0, {0}}, {"ThresholdedRelu", U_THRESHOLDED_RELU, 0, {1.0, 0, 0}},
    {"Shrink", U_SHRINK, 1, {0.5, 0, 0}}, {"Clip", U_CLIP, 1, {0}},
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
    case U_HARD_SIGMOID: return fmax(0, fmin(1, p->alpha * x + p->beta));
    case U_HARD_SWISH: return x * fmax(0, fmin(1, x / 6 + 0.5));
    case U_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case U_SOFTSIGN: return x / (1 + fabs(x));
    case U_THRESHOLDED_RELU: return x > p->alpha ? x : 0;
    case U_SHRINK: return x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0;
    case U_CLIP: return x < p->alpha ? p->alpha : x > p->beta ? p->beta : x;
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

static inline float eval_f32(unary_kind k, float x, const params *p)
{
    switch (k) {
    case U_RELU: return x < 0 ? 0 : x;
    case U_LEAKY_RELU: return x < 0 ? (float)p->alpha * x : x;
    case U_SIGMOID: return 1 / (1 + expf(-x));
    case U_TANH: return tanhf(x);
    case U_EXP: return expf(x);
    case U_SQRT: return sqrtf(x);
    case U_NEG: return -x;
    case U_ABS: return fabsf(x);
    case U_CLIP: return x < (float)p->alpha ? (float)p->alpha : x > (float)p->beta ? (float)p->beta : x;
    default: return (float)eval_f64(k, x, p);
    }
}

/* int64 exactly, for the kinds that are integer operations. */
static inline int64_t eval_i64(unary_kind k, int64_t x, const params *p)
{
    switch (k) {
    case U_RELU: return x < 0 ? 0 : x;
    case U_NEG: return (int64_t)(0 - (uint64_t)x);
    case U_ABS: return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
    case U_SIGN: return (x > 0) - (x < 0);
    case U_CLIP: return (double)x < p->alpha ? (int64_t)p->alpha : (double)x > p->beta ? (int64_t)p->beta : x;
    default: return (int64_t)eval_f64(k, (double)x, p);
    }
}

/* The hot kinds get a loop of their own with the kind constant. */
#define FAST(K) case K: for (int64_t i = i0; i < i1; i++) y[i] = eval_f32(K, x[i], p); break;

static void run_f32(unary_kind k, const float *x, float *y, int64_t n, const params *p)
{
    #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t c = 0; c < (n + 4095) / 4096; c++) {
        int64_t i0 = c * 4096, i1 = i0 + 4096 < n ? i0 + 4096 : n;
        switch (k) {
        FAST(U_RELU) FAST(U_LEAKY_RELU) FAST(U_SIGMOID) FAST(U_TANH) FAST(U_EXP) FAST(U_SQRT)
        FAST(U_NEG) FAST(U_ABS) FAST(U_CLIP)
        default: for (int64_t i = i0; i < i1; i++) y[i] = eval_f32(k, x[i], p); break;
        }
    }
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
    } else if (x->dtype == GF_INT64) {
        const int64_t *xs = x->data;
        int64_t *ys = y->data;
        for (int64_t i = 0; i < n; i++) ys[i] = eval_i64(k, xs[i], p);
    } else {
        #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) gf_num_set(y, i, eval_f64(k, gf_num_at(x, i), p));
    }
}

static int is_float(gf_dtype t) { return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16 || t == GF_BFLOAT16; }
static int is_int(gf_dtype t)
{
    return t == GF_INT8 || t == GF_INT16 || t == GF_INT32 || t == GF_UINT8 || t == GF_UINT16 ||
           t == GF_UINT32 || t == GF_INT64;   /* uint64 would not survive the trip through double */
}

/* Clip's bounds: attributes before opset 11, optional scalar inputs since. */
static gf_status clip_bounds(const gf_op_ctx *ctx, params *p)
{
    if (ctx->node->opset < 11) {
        p->alpha = gf_attr_float(ctx->node, "min", -FLT_MAX);
        p->beta = gf_attr_float(ctx->node, "max", FLT_MAX);
        return GF_OK;
    }
    p->alpha = -INFINITY;
    p->beta = INFINITY;
    for (int i = 1; i < ctx->n_inputs && i < 3; i++) {
        const gf_tensor *b = ctx->inputs[i];
        if (!b) continue;
        if (b->dtype != ctx->inputs[0]->dtype)
            return gf_fail(GF_ERR_INVALID, "bound %d is %s, input is %s", i, gf_dtype_name(b->dtype),
                           gf_dtype_name(ctx->inputs[0]->dtype));
        if (gf_tensor_numel(b) != 1) return gf_fail(GF_ERR_INVALID, "bound %d must be a scalar", i);
        if (b->data) *(i == 1 ? &p->alpha : &p->beta) = gf_num_at(b, 0);
    }
    return GF_OK;
}

static gf_status unary_params(const gf_op_ctx *ctx, const unary *u, params *p)
{
    *p = u->dflt;
    if (u->kind == U_CLIP) return clip_bounds(ctx, p);
    if (u->kind == U_SHRINK) {
        p->alpha = gf_attr_float(ctx->node, "lambd", (float)p->alpha);
        p->beta = gf_attr_float(ctx->node, "bias", (float)p->beta);
        return GF_OK;
    }
    /* Defaults stay exact in double; attributes are float32 by nature. */
    if (gf_attr_float(ctx->node, "alpha", NAN) == gf_attr_float(ctx->node, "alpha", NAN))
        p->alpha = gf_attr_float(ctx->node, "alpha", 0);
    if (gf_attr_float(ctx->node, "beta", NAN) == gf_attr_float(ctx->node, "beta", NAN))
        p->beta = gf_attr_float(ctx->node, "beta", 0);
    if (gf_attr_float(ctx->node, "gamma", NAN) == gf_attr_float(ctx->node, "gamma", NAN))
        p->gamma = gf_attr_float(ctx->node, "gamma", 0);
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
static int is_int64ish(gf_dtype t) { return t == GF_INT64 || t == GF_UINT64; }

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

/* Integer to integer goes through int64 (exact); anything else through double. */
static gf_status cast_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0];
    int64_t n = gf_tensor_numel(x);
    if (x->dtype == y->dtype) {
        memcpy(y->data, x->data, gf_tensor_nbytes(x));
        return GF_OK;
    }
    int int_to_int = !is_float(x->dtype) && !is_float(y->dtype);
    if (int_to_int && (is_int64ish(x->dtype) || is_int64ish(y->dtype))) {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = gf_int_at(x, i);
            switch (y->dtype) {
            case GF_INT64: ((int64_t *)y->data)[i] = v; break;
            case GF_UINT64: ((uint64_t *)y->data)[i] = (uint64_t)v; break;
            default: gf_num_set(y, i, (double)(y->dtype == GF_BOOL ? v != 0 : v)); break;
            }
        }
        return GF_OK;
    }
    for (int64_t i = 0; i < n; i++) gf_num_set(y, i, gf_num_at(x, i));
    return GF_OK;
}

#define UN(name, since) {"", name, since, 0, unary_infer, unary_cpu}
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
