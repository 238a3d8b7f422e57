/* Broadcasting element-wise ops: arithmetic (Add, Sub, Mul, Div, Pow, Mod,
 * BitShift, PRelu), comparisons and logic (Equal, Less, Greater, ...,
 * And/Or/Xor), variadic Min/Max/Sum/Mean, and Where.
 *
 * One driver walks the broadcast output: axes of size 1 are dropped and
 * neighbouring axes that every input walks contiguously are merged, so the
 * innermost axis is usually long; the output is cut into rows of that axis
 * (and long rows into chunks), each handed to a typed row function with the
 * inputs' strides along it. Row functions switch on the op once per row and
 * run a loop whose per-element op is constant-folded. float16/bfloat16 and
 * mixed-type Pow go through double buffers. */
#include "op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* As in unary.c: without it, GCC will not evaluate both sides of a select
 * (PRelu, NaN-aware Min/Max), and those loops would not vectorize. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_MOD, OP_FMOD, OP_SHL, OP_SHR, OP_MIN, OP_MAX, OP_PRELU,
    OP_EQ, OP_LT, OP_GT, OP_LE, OP_GE, OP_AND, OP_OR, OP_XOR,
};

#define MAX_IN 3
#define CHUNK 16384
#define PARALLEL_MIN 65536

/* ---- the broadcast driver ---- */

typedef struct bcast {
    int rank, n_in;
    int64_t numel;
    int64_t dims[GF_MAX_RANK];
    int64_t strides[MAX_IN][GF_MAX_RANK];
} bcast;

typedef void (*row_fn)(int op, int64_t n, const char *const *in, const int64_t *step, char *y);

static void plan_bcast(bcast *p, int n_in, const gf_tensor *const *in, const gf_tensor *y)
{
    int64_t s[MAX_IN][GF_MAX_RANK];
    for (int k = 0; k < n_in; k++) gf_broadcast_strides(in[k], y->rank, y->dims, s[k]);
    p->n_in = n_in;
    p->rank = 0;
    p->numel = gf_tensor_numel(y);
    for (int d = 0; d < y->rank; d++) {
        if (y->dims[d] == 1) continue;
        int r = p->rank, merge = r > 0;
        for (int k = 0; k < n_in && merge; k++) merge = p->strides[k][r - 1] == s[k][d] * y->dims[d];
        if (merge) {
            p->dims[r - 1] *= y->dims[d];
            for (int k = 0; k < n_in; k++) p->strides[k][r - 1] = s[k][d];
        } else {
            p->dims[r] = y->dims[d];
            for (int k = 0; k < n_in; k++) p->strides[k][r] = s[k][d];
            p->rank++;
        }
    }
    if (p->rank == 0) {
        p->rank = 1;
        p->dims[0] = 1;
        for (int k = 0; k < n_in; k++) p->strides[k][0] = 0;
    }
}

/* Work is cut into tasks of whole rows (as many as make about CHUNK elements)
 * or, for rows longer than CHUNK, pieces of one row. A task finds its first
 * row's offsets by division, then steps from row to row like an odometer. */
static void run_bcast(const bcast *p, int op, row_fn fn, const void *const *in, const size_t *esize,
                      void *y, size_t ysize)
{
    if (p->numel == 0) return;
    int r = p->rank;
    int64_t inner = p->dims[r - 1], rows = p->numel / inner;
    int64_t rows_per_task = inner >= CHUNK ? 1 : CHUNK / inner, pieces = (inner + CHUNK - 1) / CHUNK;
    int64_t n_tasks = (rows + rows_per_task - 1) / rows_per_task * pieces;
    #pragma omp parallel for schedule(static) if (p->numel > PARALLEL_MIN)
    for (int64_t t = 0; t < n_tasks; t++) {
        int64_t row = t / pieces * rows_per_task, start = t % pieces * CHUNK;
        int64_t end_row = row + rows_per_task < rows ? row + rows_per_task : rows;
        int64_t n = inner - start < CHUNK ? inner - start : CHUNK;
        int64_t coord[GF_MAX_RANK], off[MAX_IN], step[MAX_IN];
        for (int k = 0; k < p->n_in; k++) {
            off[k] = start * p->strides[k][r - 1];
            step[k] = p->strides[k][r - 1];
        }
        for (int64_t d = r - 2, rem = row; d >= 0; d--) {
            coord[d] = rem % p->dims[d];
            rem /= p->dims[d];
            for (int k = 0; k < p->n_in; k++) off[k] += coord[d] * p->strides[k][d];
        }
        for (; row < end_row; row++) {
            const char *ptr[MAX_IN];
            for (int k = 0; k < p->n_in; k++) ptr[k] = (const char *)in[k] + off[k] * (int64_t)esize[k];
            fn(op, n, ptr, step, (char *)y + (row * inner + start) * (int64_t)ysize);
            for (int d = r - 2; d >= 0; d--) {   /* the next row */
                for (int k = 0; k < p->n_in; k++) off[k] += p->strides[k][d];
                if (++coord[d] < p->dims[d]) break;
                for (int k = 0; k < p->n_in; k++) off[k] -= p->dims[d] * p->strides[k][d];
                coord[d] = 0;
            }
        }
    }
}

/* ---- scalar ops per type class ---- */

#define FLOAT_EVAL(T, SUFFIX)                                                            \
    static inline T eval_##SUFFIX(int op, T a, T b)                                      \
    {                                                                                    \
        switch (op) {                                                                    \
        case OP_ADD: return a + b;                                                       \
        case OP_SUB: return a - b;                                                       \
        case OP_MUL: return a * b;                                                       \
        case OP_DIV: return a / b;                                                       \
        case OP_POW: return b == 2 ? a * a : (T)pow(a, b);   /* the same value, faster */ \
        case OP_MOD: { double r = fmod(a, b); return (T)(r != 0 && (r < 0) != (b < 0) ? r + b : r); } \
        case OP_FMOD: return (T)fmod(a, b);                                              \
        case OP_MIN: return a < b || a != a ? a : b;   /* NaN wins, as numpy's */          \
        case OP_MAX: return a > b || a != a ? a : b;                                     \
        case OP_PRELU: return a < 0 ? a * b : a;                                         \
        default: return 0;                                                               \
        }                                                                                \
    }
FLOAT_EVAL(float, f32)
FLOAT_EVAL(double, f64)

static inline int64_t ipow(int64_t a, int64_t b)
{
    if (b < 0) return a == 1 ? 1 : a == -1 ? (b & 1 ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)a;   /* unsigned: wraps instead of overflowing */
    for (; b; b >>= 1, x *= x)
        if (b & 1) r *= x;
    return (int64_t)r;
}

/* Signed integers, computed in 64 bits and stored back (wrapping like the
 * stored type). Division truncates toward zero; x/0 and x%0 give 0. */
static inline int64_t eval_i64(int op, int64_t a, int64_t b)
{
    switch (op) {
    case OP_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case OP_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case OP_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case OP_DIV: return b == 0 ? 0 : b == -1 ? (int64_t)(0 - (uint64_t)a) : a / b;
    case OP_POW: return ipow(a, b);
    case OP_MOD: { if (b == 0 || b == -1) return 0; int64_t r = a % b; return r != 0 && (r < 0) != (b < 0) ? r + b : r; }
    case OP_FMOD: return b == 0 || b == -1 ? 0 : a % b;
    case OP_MIN: return a < b ? a : b;
    case OP_MAX: return a > b ? a : b;
    case OP_PRELU: return a < 0 ? (int64_t)((uint64_t)a * (uint64_t)b) : a;
    default: return 0;
    }
}

static inline uint64_t eval_u64(int op, uint64_t a, uint64_t b)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return b ? a / b : 0;
    case OP_POW: return (uint64_t)ipow((int64_t)a, (int64_t)b);
    case OP_MOD: case OP_FMOD: return b ? a % b : 0;
    case OP_SHL: return b >= 64 ? 0 : a << b;
    case OP_SHR: return b >= 64 ? 0 : a >> b;
    case OP_MIN: return a < b ? a : b;
    case OP_MAX: return a > b ? a : b;
    case OP_PRELU: return a;
    default: return 0;
    }
}

#define CMP_EVAL(op, a, b)                                                                \
    ((op) == OP_EQ ? (a) == (b) : (op) == OP_LT ? (a) < (b) : (op) == OP_GT ? (a) > (b)  \
     : (op) == OP_LE ? (a) <= (b) : (op) == OP_GE ? (a) >= (b)                           \
     : (op) == OP_AND ? ((a) != 0) & ((b) != 0) : (op) == OP_OR ? ((a) != 0) | ((b) != 0) \
     : ((a) != 0) ^ ((b) != 0))

/* ---- typed row functions ---- */

/* One case of a row function: the op is a constant inside, so the compiler
 * folds the switch in EVAL and can vectorize the contiguous loops. */
#define ROW_CASE(K, EXPR)                                                                 \
    case K:                                                                               \
        if (sa == 1 && sb == 1) for (int64_t i = 0; i < n; i++) { const int op_ = K; (void)op_; y[i] = EXPR(a[i], b[i]); } \
        else if (sa == 1 && sb == 0) for (int64_t i = 0; i < n; i++) { const int op_ = K; (void)op_; y[i] = EXPR(a[i], b[0]); } \
        else for (int64_t i = 0; i < n; i++) { const int op_ = K; (void)op_; y[i] = EXPR(a[i * sa], b[i * sb]); } \
        break;

#define ROW_PROLOGUE(TI, TO)                                                              \
    const TI *a = (const TI *)in[0], *b = (const TI *)in[1];                              \
    TO *y = (TO *)out;                                                                    \
    int64_t sa = step[0], sb = step[1];

#define ARITH_ROW(S, T, ACC, EVAL)                                                        \
    static void arith_row_##S(int op, int64_t n, const char *const *in, const int64_t *step, char *out) \
    {                                                                                     \
        ROW_PROLOGUE(T, T)                                                                \
        switch (op) {                                                                     \
        ROW_CASE(OP_ADD, ARITH_##S) ROW_CASE(OP_SUB, ARITH_##S) ROW_CASE(OP_MUL, ARITH_##S) \
        ROW_CASE(OP_DIV, ARITH_##S) ROW_CASE(OP_POW, ARITH_##S) ROW_CASE(OP_MOD, ARITH_##S) \
        ROW_CASE(OP_FMOD, ARITH_##S) ROW_CASE(OP_SHL, ARITH_##S) ROW_CASE(OP_SHR, ARITH_##S) \
        ROW_CASE(OP_MIN, ARITH_##S) ROW_CASE(OP_MAX, ARITH_##S) ROW_CASE(OP_PRELU, ARITH_##S) \
        default: break;                                                                   \
        }                                                                                 \
    }

#define CMP_ROW(S, T)                                                                     \
    static void cmp_row_##S(int op, int64_t n, const char *const *in, const int64_t *step, char *out) \
    {                                                                                     \
        ROW_PROLOGUE(T, uint8_t)                                                          \
        switch (op) {                                                                     \
        ROW_CASE(OP_EQ, CMP_##S) ROW_CASE(OP_LT, CMP_##S) ROW_CASE(OP_GT, CMP_##S)        \
        ROW_CASE(OP_LE, CMP_##S) ROW_CASE(OP_GE, CMP_##S) ROW_CASE(OP_AND, CMP_##S)       \
        ROW_CASE(OP_OR, CMP_##S) ROW_CASE(OP_XOR, CMP_##S)                                \
        default: break;                                                                   \
        }                                                                                 \
    }

#define TYPES(X)                                                                          \
    X(f32, float, float, f32) X(f64, double, double, f64)                                 \
    X(i8, int8_t, int64_t, i64) X(i16, int16_t, int64_t, i64) X(i32, int32_t, int64_t, i64) \
    X(i64, int64_t, int64_t, i64) X(u8, uint8_t, uint64_t, u64) X(u16, uint16_t, uint64_t, u64) \
    X(u32, uint32_t, uint64_t, u64) X(u64, uint64_t, uint64_t, u64)

#define DEFINE_EVALS(S, T, ACC, E)                                                        \
    static inline T arith_##S(int op, T a, T b) { return (T)eval_##E(op, (ACC)a, (ACC)b); } \
    static inline uint8_t cmp_##S(int op, T a, T b) { return (uint8_t)(CMP_EVAL(op, a, b)); }
TYPES(DEFINE_EVALS)
#define DEFINE_ROWS(S, T, ACC, E)                                                         \
    ARITH_ROW(S, T, ACC, E) CMP_ROW(S, T)
#define ARITH_f32(a, b) arith_f32(op_, a, b)
#define ARITH_f64(a, b) arith_f64(op_, a, b)
#define ARITH_i8(a, b) arith_i8(op_, a, b)
#define ARITH_i16(a, b) arith_i16(op_, a, b)
#define ARITH_i32(a, b) arith_i32(op_, a, b)
#define ARITH_i64(a, b) arith_i64(op_, a, b)
#define ARITH_u8(a, b) arith_u8(op_, a, b)
#define ARITH_u16(a, b) arith_u16(op_, a, b)
#define ARITH_u32(a, b) arith_u32(op_, a, b)
#define ARITH_u64(a, b) arith_u64(op_, a, b)
#define CMP_f32(a, b) cmp_f32(op_, a, b)
#define CMP_f64(a, b) cmp_f64(op_, a, b)
#define CMP_i8(a, b) cmp_i8(op_, a, b)
#define CMP_i16(a, b) cmp_i16(op_, a, b)
#define CMP_i32(a, b) cmp_i32(op_, a, b)
#define CMP_i64(a, b) cmp_i64(op_, a, b)
#define CMP_u8(a, b) cmp_u8(op_, a, b)
#define CMP_u16(a, b) cmp_u16(op_, a, b)
#define CMP_u32(a, b) cmp_u32(op_, a, b)
#define CMP_u64(a, b) cmp_u64(op_, a, b)
TYPES(DEFINE_ROWS)

typedef struct row_fns {
    gf_dtype dtype;
    row_fn arith, cmp;
} row_fns;

static const row_fns row_table[] = {
    {GF_FLOAT, arith_row_f32, cmp_row_f32}, {GF_DOUBLE, arith_row_f64, cmp_row_f64},
    {GF_INT8, arith_row_i8, cmp_row_i8}, {GF_INT16, arith_row_i16, cmp_row_i16},
    {GF_INT32, arith_row_i32, cmp_row_i32}, {GF_INT64, arith_row_i64, cmp_row_i64},
    {GF_UINT8, arith_row_u8, cmp_row_u8}, {GF_UINT16, arith_row_u16, cmp_row_u16},
    {GF_UINT32, arith_row_u32, cmp_row_u32}, {GF_UINT64, arith_row_u64, cmp_row_u64},
    {GF_BOOL, NULL, cmp_row_u8},
};

static const row_fns *find_rows(gf_dtype t)
{
    for (size_t i = 0; i < sizeof row_table / sizeof *row_table; i++)
        if (row_table[i].dtype == t) return &row_table[i];
    return NULL;
}

/* Where: selects by condition; only the element size matters. */
#define SELECT_ROW(N, T)                                                                  \
    static void select_row_##N(int op, int64_t n, const char *const *in, const int64_t *step, char *out) \
    {                                                                                     \
        const uint8_t *c = (const uint8_t *)in[0];                                        \
        const T *x = (const T *)in[1], *z = (const T *)in[2];                             \
        T *y = (T *)out;                                                                  \
        for (int64_t i = 0; i < n; i++) y[i] = c[i * step[0]] ? x[i * step[1]] : z[i * step[2]]; \
    }
SELECT_ROW(1, uint8_t)
SELECT_ROW(2, uint16_t)
SELECT_ROW(4, uint32_t)
SELECT_ROW(8, uint64_t)

/* ---- op descriptions ---- */

enum { K_ARITH, K_CMP, K_LOGIC, K_SHIFT };

typedef struct binop {
    const char *op_type;
    int op, kind;
    int int_ok;     /* defined on integer types */
} binop;

static const binop binops[] = {
    {"Add", OP_ADD, K_ARITH, 1}, {"Sub", OP_SUB, K_ARITH, 1}, {"Mul", OP_MUL, K_ARITH, 1},
    {"Div", OP_DIV, K_ARITH, 1}, {"Pow", OP_POW, K_ARITH, 1}, {"Mod", OP_MOD, K_ARITH, 1},
    {"BitShift", OP_SHL, K_SHIFT, 1}, {"PRelu", OP_PRELU, K_ARITH, 1},
    {"Min", OP_MIN, K_ARITH, 1}, {"Max", OP_MAX, K_ARITH, 1}, {"Sum", OP_ADD, K_ARITH, 0},
    {"Mean", OP_ADD, K_ARITH, 0},
    {"Equal", OP_EQ, K_CMP, 1}, {"Less", OP_LT, K_CMP, 1}, {"Greater", OP_GT, K_CMP, 1},
    {"LessOrEqual", OP_LE, K_CMP, 1}, {"GreaterOrEqual", OP_GE, K_CMP, 1},
    {"And", OP_AND, K_LOGIC, 0}, {"Or", OP_OR, K_LOGIC, 0}, {"Xor", OP_XOR, K_LOGIC, 0},
};

static const binop *find_binop(const char *op_type)
{
    for (size_t i = 0; i < sizeof binops / sizeof *binops; i++)
        if (!strcmp(binops[i].op_type, op_type)) return &binops[i];
    return NULL;
}

static int is_float(gf_dtype t) { return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16 || t == GF_BFLOAT16; }
static int is_unsigned(gf_dtype t) { return t == GF_UINT8 || t == GF_UINT16 || t == GF_UINT32 || t == GF_UINT64; }
static int is_int(gf_dtype t)
{
    return is_unsigned(t) || t == GF_INT8 || t == GF_INT16 || t == GF_INT32 || t == GF_INT64;
}

/* The op an instance computes: Mod and BitShift depend on attributes. */
static gf_status instance_op(const gf_op_ctx *ctx, const binop *b, int *op)
{
    *op = b->op;
    if (b->op == OP_MOD && gf_attr_int(ctx->node, "fmod", 0)) *op = OP_FMOD;
    if (b->kind == K_SHIFT) {
        const char *dir = gf_attr_string(ctx->node, "direction", "");
        if (!strcmp(dir, "RIGHT")) *op = OP_SHR;
        else if (strcmp(dir, "LEFT"))
            return gf_fail(GF_ERR_INVALID, "direction must be LEFT or RIGHT, not '%s'", dir);
    }
    return GF_OK;
}

static gf_status check_operand_type(const binop *b, gf_dtype t)
{
    int ok;
    switch (b->kind) {
    case K_LOGIC: ok = t == GF_BOOL; break;
    case K_SHIFT: ok = is_unsigned(t); break;
    case K_CMP: ok = is_float(t) || is_int(t) || t == GF_BOOL; break;
    default: ok = is_float(t) || (b->int_ok && is_int(t)); break;
    }
    return ok ? GF_OK : gf_fail(GF_ERR_UNSUPPORTED, "%s is not supported on %s", b->op_type, gf_dtype_name(t));
}

/* ---- infer ---- */

static gf_status broadcast_all(const gf_op_ctx *ctx, int first, gf_tensor *shape)
{
    *shape = *ctx->inputs[first];
    for (int i = first + 1; i < ctx->n_inputs; i++) {
        gf_tensor next = *shape;
        if (!ctx->inputs[i]) return gf_fail(GF_ERR_INVALID, "input %d is missing", i);
        gf_status st = gf_broadcast_shape(&next, ctx->inputs[i], &shape->rank, shape->dims);
        if (st) return st;
    }
    return GF_OK;
}

static gf_status elementwise_infer(gf_op_ctx *ctx)
{
    const binop *b = find_binop(ctx->node->op_type);
    int variadic = !strcmp(b->op_type, "Min") || !strcmp(b->op_type, "Max") || !strcmp(b->op_type, "Sum") ||
                   !strcmp(b->op_type, "Mean");
    gf_status st = gf_check_inputs(ctx, variadic ? 1 : 2, variadic ? 64 : 2);
    if (st) return st;
    if (ctx->node->opset < 7 && gf_attr_int(ctx->node, "broadcast", 0) && gf_attr_int(ctx->node, "axis", -1) != -1)
        return gf_fail(GF_ERR_UNSUPPORTED, "legacy broadcasting with an axis attribute");
    int op;
    if ((st = instance_op(ctx, b, &op))) return st;
    gf_dtype t = ctx->inputs[0]->dtype;
    if ((st = check_operand_type(b, t))) return st;
    for (int i = 1; i < ctx->n_inputs; i++) {
        gf_dtype ti = ctx->inputs[i] ? ctx->inputs[i]->dtype : t;
        if (b->op == OP_POW) {
            if (!is_float(ti) && !is_int(ti))
                return gf_fail(GF_ERR_UNSUPPORTED, "Pow exponent of type %s", gf_dtype_name(ti));
        } else if (ti != t) {
            return gf_fail(GF_ERR_SHAPE, "input %d is %s, input 0 is %s", i, gf_dtype_name(ti), gf_dtype_name(t));
        }
    }
    gf_tensor shape;
    if ((st = broadcast_all(ctx, 0, &shape))) return st;
    if (b->op == OP_PRELU) {
        int same = shape.rank == ctx->inputs[0]->rank;
        for (int d = 0; d < shape.rank && same; d++) same = shape.dims[d] == ctx->inputs[0]->dims[d];
        if (!same) return gf_fail(GF_ERR_SHAPE, "slope does not broadcast to the shape of X");
    }
    gf_dtype out = b->kind == K_CMP || b->kind == K_LOGIC ? GF_BOOL : t;
    gf_set_shape(ctx->outputs[0], out, shape.rank, shape.dims);
    return GF_OK;
}

static gf_status where_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 3, 3);
    if (st) return st;
    if (ctx->inputs[0]->dtype != GF_BOOL)
        return gf_fail(GF_ERR_INVALID, "condition must be bool, not %s", gf_dtype_name(ctx->inputs[0]->dtype));
    gf_dtype t = ctx->inputs[1]->dtype;
    if (ctx->inputs[2]->dtype != t)
        return gf_fail(GF_ERR_SHAPE, "X is %s but Y is %s", gf_dtype_name(t), gf_dtype_name(ctx->inputs[2]->dtype));
    size_t es = gf_dtype_size(t);
    if (t == GF_STRING || !(es == 1 || es == 2 || es == 4 || es == 8))
        return gf_fail(GF_ERR_UNSUPPORTED, "Where on %s", gf_dtype_name(t));
    gf_tensor shape;
    if ((st = broadcast_all(ctx, 0, &shape))) return st;
    gf_set_shape(ctx->outputs[0], t, shape.rank, shape.dims);
    return GF_OK;
}

/* ---- kernels ---- */

/* A double copy of t (same shape), for types without a row function of their own. */
static gf_status widen(const gf_tensor *t, gf_tensor *w)
{
    *w = *t;
    w->dtype = GF_DOUBLE;
    w->owns_data = 0;
    int64_t n = gf_tensor_numel(t);
    w->data = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!w->data) return gf_fail(GF_ERR_NOMEM, "out of memory widening an input");
    for (int64_t i = 0; i < n; i++) ((double *)w->data)[i] = gf_num_at(t, i);
    return GF_OK;
}

static void run_pair(int op, row_fn fn, const gf_tensor *a, const gf_tensor *b, gf_tensor *y)
{
    bcast p;
    const gf_tensor *in[2] = {a, b};
    plan_bcast(&p, 2, in, y);
    const void *data[2] = {a->data, b->data};
    size_t es[2] = {gf_dtype_size(a->dtype), gf_dtype_size(b->dtype)};
    run_bcast(&p, op, fn, data, es, y->data, gf_dtype_size(y->dtype));
}

/* Folds inputs left to right into y: y = in0 broadcast, then y = y op in_i. */
static void fold_inputs(const gf_op_ctx *ctx, int op, row_fn fn, const gf_tensor *const *in, gf_tensor *y)
{
    int64_t strides[GF_MAX_RANK];
    gf_broadcast_strides(in[0], y->rank, y->dims, strides);
    gf_copy_strided(y->data, in[0]->data, gf_dtype_size(y->dtype), y->rank, y->dims, strides);
    for (int i = 1; i < ctx->n_inputs; i++) run_pair(op, fn, y, in[i], y);
}

static gf_status compute(const gf_op_ctx *ctx, const binop *b, int op, const gf_tensor *const *in, gf_tensor *y)
{
    const row_fns *rows = find_rows(in[0]->dtype);
    row_fn fn = rows ? (b->kind == K_CMP || b->kind == K_LOGIC ? rows->cmp : rows->arith) : NULL;
    if (!fn) return gf_fail(GF_ERR_UNSUPPORTED, "%s on %s", b->op_type, gf_dtype_name(in[0]->dtype));
    if (ctx->n_inputs == 2) run_pair(op, fn, in[0], in[1], y);
    else fold_inputs(ctx, op, fn, in, y);
    if (!strcmp(b->op_type, "Mean")) {
        int64_t n = gf_tensor_numel(y);
        for (int64_t i = 0; i < n; i++) gf_num_set(y, i, gf_num_at(y, i) / ctx->n_inputs);
    }
    return GF_OK;
}

static gf_status elementwise_cpu(gf_op_ctx *ctx)
{
    const binop *b = find_binop(ctx->node->op_type);
    int op;
    gf_status st = instance_op(ctx, b, &op);
    if (st) return st;
    gf_tensor *y = ctx->outputs[0];
    int mixed = 0;
    for (int i = 0; i < ctx->n_inputs; i++) mixed |= ctx->inputs[i]->dtype != ctx->inputs[0]->dtype;
    gf_dtype t = ctx->inputs[0]->dtype;
    if (!mixed && find_rows(t)) return compute(ctx, b, op, ctx->inputs, y);

    /* float16, bfloat16, mixed-type Pow: compute in double. */
    int n = ctx->n_inputs;
    gf_tensor wide[64], wy = *y;
    const gf_tensor *in[64];
    int made = 0;
    for (; made < n && !st; made++) {
        st = widen(ctx->inputs[made], &wide[made]);
        in[made] = &wide[made];
    }
    if (!st && y->dtype != GF_BOOL) {
        wy.dtype = GF_DOUBLE;
        wy.data = malloc((size_t)(gf_tensor_numel(y) > 0 ? gf_tensor_numel(y) : 1) * sizeof(double));
        if (!wy.data) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    if (!st) st = compute(ctx, b, op, in, &wy);
    if (!st && y->dtype != GF_BOOL) {
        int64_t ne = gf_tensor_numel(y);
        for (int64_t i = 0; i < ne; i++) gf_num_set(y, i, ((double *)wy.data)[i]);
    }
    if (y->dtype != GF_BOOL) free(wy.data);
    for (int i = 0; i < made; i++) free(wide[i].data);
    return st;
}

static gf_status where_cpu(gf_op_ctx *ctx)
{
    static const row_fn by_size[9] = {[1] = select_row_1, [2] = select_row_2, [4] = select_row_4, [8] = select_row_8};
    gf_tensor *y = ctx->outputs[0];
    bcast p;
    plan_bcast(&p, 3, ctx->inputs, y);
    const void *data[3] = {ctx->inputs[0]->data, ctx->inputs[1]->data, ctx->inputs[2]->data};
    size_t es = gf_dtype_size(y->dtype), sizes[3] = {1, es, es};
    run_bcast(&p, 0, by_size[es], data, sizes, y->data, es);
    return GF_OK;
}

/* Before opset 7 a 1-D PRelu slope holds one value per channel (axis 1), as in
 * Caffe and PyTorch; from 7 on it broadcasts like numpy. Both run the same
 * kernel, with the old slope seen as [C, 1, ..., 1]. */
static gf_op_ctx legacy_prelu(gf_op_ctx *ctx, const gf_tensor *ins[2], gf_tensor *slope)
{
    gf_op_ctx c = *ctx;
    const gf_tensor *x = ctx->inputs[0], *s = ctx->n_inputs == 2 ? ctx->inputs[1] : NULL;
    if (x && s && x->rank >= 2 && s->rank == 1 && s->dims[0] == x->dims[1] && s->dims[0] != 1) {
        *slope = *s;
        slope->rank = x->rank - 1;
        for (int d = 1; d < slope->rank; d++) slope->dims[d] = 1;
        ins[0] = x;
        ins[1] = slope;
        c.inputs = ins;
    }
    return c;
}

static gf_status legacy_prelu_infer(gf_op_ctx *ctx)
{
    const gf_tensor *ins[2];
    gf_tensor slope;
    gf_op_ctx c = legacy_prelu(ctx, ins, &slope);
    return elementwise_infer(&c);
}

static gf_status legacy_prelu_cpu(gf_op_ctx *ctx)
{
    const gf_tensor *ins[2];
    gf_tensor slope;
    gf_op_ctx c = legacy_prelu(ctx, ins, &slope);
    return elementwise_cpu(&c);
}

/* Element by element when every input has the output's shape (no broadcasting): then the
 * layout is the same for all, and the output may take an input's storage. */
static gf_status elementwise_layouts(gf_op_ctx *ctx)
{
    const gf_tensor *y = ctx->outputs[0];
    if (!y || y->dtype != GF_FLOAT || ctx->n_inputs < 1) return GF_OK;
    for (int i = 0; i < ctx->n_inputs; i++) {
        const gf_tensor *t = ctx->inputs[i];
        if (!t || t->dtype != GF_FLOAT || t->rank != y->rank) return GF_OK;
        for (int d = 0; d < y->rank; d++)
            if (t->dims[d] != y->dims[d]) return GF_OK;
    }
    for (int i = 0; i < ctx->n_inputs; i++) ctx->in_layout[i] = GF_LAYOUT_FOLLOW;
    ctx->out_layout[0] = GF_LAYOUT_FOLLOW;
    return GF_OK;
}

#define EW(name, since) {"", name, since, 0, elementwise_infer, elementwise_cpu, 0, elementwise_layouts}
const gf_op gf_ops_elementwise[] = {
    EW("Add", 1), EW("Sub", 1), EW("Mul", 1), EW("Div", 1), EW("Pow", 1), EW("Mod", 10),
    EW("BitShift", 11), EW("PRelu", 7), {"", "PRelu", 1, 6, legacy_prelu_infer, legacy_prelu_cpu}, EW("Min", 1), EW("Max", 1), EW("Sum", 1), EW("Mean", 1),
    EW("Equal", 1), EW("Less", 1), EW("Greater", 1), EW("LessOrEqual", 12), EW("GreaterOrEqual", 12),
    EW("And", 1), EW("Or", 1), EW("Xor", 1),
    {"", "Where", 9, 0, where_infer, where_cpu},
    {0},
};
