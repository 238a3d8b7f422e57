/* Gradients of activations, and Dropout for training (domain ai.graft), float32.
 * Every op's inputs have one shape, which its outputs take:
 *
 *   ReluGrad(dY, Y) -> dX = dY where Y > 0, else 0
 *   LeakyReluGrad(dY, X), alpha (0.01) -> dX = dY where X > 0, else alpha * dY
 *   SigmoidGrad(dY, Y) -> dX = dY * Y * (1 - Y)
 *   SoftmaxGrad(dY, Y) -> dX = Y * (dY - sum(dY * Y))
 *   LogSoftmaxGrad(dY, Y) -> dX = dY - exp(Y) * sum(dY)
 *     attributes axis (-1) and legacy (0): the sums run along axis; with legacy = 1 they
 *     run over all the dims from axis on, as Softmax before opset 13 (axis then defaults to 1).
 *   DropoutTrain(X, step) -> (Y, mask), attributes ratio (0.5, in [0, 1)) and seed (0)
 *     step is an int64 (or int32) scalar. Element i is kept (mask true) when u(seed, step, i)
 *     >= ratio, u being a uniform number in [0, 1) hashed from its arguments: the mask
 *     depends on nothing else (not on the thread count), and changes with the step.
 *     Y = X * mask * scale, scale = 1 / (1 - ratio) rounded to float.
 *   DropoutGrad(dY, mask), attribute ratio -> dX = dY * mask * scale
 *
 * Any output may be omitted. */
#include "activation_grad.h"

#include <math.h>

/* GCC's default -ftrapping-math keeps it from evaluating both sides of a select,
 * so that the select loops below would not vectorize; graft does not use
 * floating-point exception flags (see unary.c). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define PARALLEL_MIN 65536
#define DROPOUT_PARALLEL_MIN 8192  /* hashing costs more per element than the other loops */

static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};
static const gf_dtype bool_only[] = {GF_BOOL, GF_UNDEFINED};
static const gf_dtype step_types[] = {GF_INT64, GF_INT32, GF_UNDEFINED};

/* Fails unless input i, named `name`, has one of the `allowed` types, which `expected` lists. */
static gf_status check_type(const gf_op_ctx *ctx, int i, const char *name, const gf_dtype *allowed,
                            const char *expected)
{
    for (const gf_dtype *a = allowed; *a != GF_UNDEFINED; a++)
        if (ctx->inputs[i]->dtype == *a) return GF_OK;
    return gf_fail(GF_ERR_SHAPE, "%s has element type %s; it must be %s", name,
                   gf_dtype_name(ctx->inputs[i]->dtype), expected);
}

static gf_status check_same_shape(const gf_op_ctx *ctx, int i, const char *name_i, int j, const char *name_j)
{
    const gf_tensor *a = ctx->inputs[i], *b = ctx->inputs[j];
    int same = a->rank == b->rank;
    for (int d = 0; same && d < a->rank; d++) same = a->dims[d] == b->dims[d];
    if (same) return GF_OK;
    char sa[128], sb[128];
    return gf_fail(GF_ERR_SHAPE, "%s has shape %s, %s has %s; they must be the same", name_i,
                   gf_shape_str(a, sa, sizeof sa), name_j, gf_shape_str(b, sb, sizeof sb));
}

/* Checks (dY, v), both float32 of one shape, v named `name`; dX takes their shape. */
static gf_status pair_infer(gf_op_ctx *ctx, const char *name)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (!st) st = gf_check_dtype(ctx, 1, float_only);
    if (!st) st = check_same_shape(ctx, 0, "dY", 1, name);
    if (!st && ctx->outputs[0]) gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return st;
}

static gf_status y_pair_infer(gf_op_ctx *ctx) { return pair_infer(ctx, "Y"); }
static gf_status x_pair_infer(gf_op_ctx *ctx) { return pair_infer(ctx, "X"); }

/* ---- Relu, LeakyRelu, Sigmoid ---- */

typedef struct pair_data {
    const float *dy, *v;
    float *dx;
    int64_t n;
} pair_data;

/* The pair's data; 0 when dX is omitted and there is nothing to do. */
static int pair_data_of(const gf_op_ctx *ctx, pair_data *p)
{
    if (!ctx->outputs[0]) return 0;
    *p = (pair_data){ctx->inputs[0]->data, ctx->inputs[1]->data, ctx->outputs[0]->data,
                     gf_tensor_numel(ctx->inputs[0])};
    return 1;
}

static gf_status relu_grad_cpu(gf_op_ctx *ctx)
{
    pair_data p;
    if (!pair_data_of(ctx, &p)) return GF_OK;
    #pragma omp parallel for schedule(static) if (p.n > PARALLEL_MIN)
    for (int64_t i = 0; i < p.n; i++) {
        float dy = p.dy[i];  /* read on both sides of the select, so that the loop vectorizes */
        p.dx[i] = p.v[i] > 0 ? dy : 0.0f;
    }
    return GF_OK;
}

static gf_status leaky_relu_grad_cpu(gf_op_ctx *ctx)
{
    pair_data p;
    if (!pair_data_of(ctx, &p)) return GF_OK;
    float alpha = gf_attr_float(ctx->node, "alpha", 0.01f);
    #pragma omp parallel for schedule(static) if (p.n > PARALLEL_MIN)
    for (int64_t i = 0; i < p.n; i++) p.dx[i] = p.v[i] > 0 ? p.dy[i] : alpha * p.dy[i];
    return GF_OK;
}

static gf_status sigmoid_grad_cpu(gf_op_ctx *ctx)
{
    pair_data p;
    if (!pair_data_of(ctx, &p)) return GF_OK;
    #pragma omp parallel for schedule(static) if (p.n > PARALLEL_MIN)
    for (int64_t i = 0; i < p.n; i++) p.dx[i] = p.dy[i] * p.v[i] * (1.0f - p.v[i]);
    return GF_OK;
}

/* ---- Softmax, LogSoftmax ---- */

gf_status gf_softmax_grad_view_of(const gf_op_ctx *ctx, gf_softmax_view *v)
{
    const gf_tensor *y = ctx->inputs[1];
    int legacy = gf_attr_int(ctx->node, "legacy", 0) != 0;
    if (y->rank == 0) return gf_fail(GF_ERR_SHAPE, "Y is a scalar; it needs at least one axis");
    int axis;
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", legacy ? 1 : -1), y->rank, &axis);
    if (st) return st;
    gf_softmax_split(y->rank, y->dims, axis, legacy, v);
    return GF_OK;
}

static gf_status softmax_grad_infer(gf_op_ctx *ctx)
{
    gf_status st = y_pair_infer(ctx);
    gf_softmax_view v;
    return st ? st : gf_softmax_grad_view_of(ctx, &v);
}

/* One line of n values, `stride` apart. */
static void softmax_grad_line(const float *dy, const float *y, float *dx, int64_t n, int64_t stride)
{
    double dot = 0;
    for (int64_t j = 0; j < n; j++) dot += (double)dy[j * stride] * y[j * stride];
    float s = (float)dot;
    for (int64_t j = 0; j < n; j++) dx[j * stride] = y[j * stride] * (dy[j * stride] - s);
}

static void log_softmax_grad_line(const float *dy, const float *y, float *dx, int64_t n, int64_t stride)
{
    double sum = 0;
    for (int64_t j = 0; j < n; j++) sum += dy[j * stride];
    float s = (float)sum;
    for (int64_t j = 0; j < n; j++) dx[j * stride] = dy[j * stride] - expf(y[j * stride]) * s;
}

typedef void (*line_fn)(const float *dy, const float *y, float *dx, int64_t n, int64_t stride);

static gf_status softmax_lines(gf_op_ctx *ctx, line_fn line)
{
    gf_softmax_view v;
    gf_status st = gf_softmax_grad_view_of(ctx, &v);
    pair_data p;
    if (st || !pair_data_of(ctx, &p)) return st;
    int64_t lines = v.outer * v.inner;
    #pragma omp parallel for schedule(static) if (p.n > PARALLEL_MIN)
    for (int64_t l = 0; l < lines; l++) {
        int64_t start = l / v.inner * v.n * v.inner + l % v.inner;
        line(p.dy + start, p.v + start, p.dx + start, v.n, v.inner);
    }
    return GF_OK;
}

static gf_status softmax_grad_cpu(gf_op_ctx *ctx) { return softmax_lines(ctx, softmax_grad_line); }
static gf_status log_softmax_grad_cpu(gf_op_ctx *ctx) { return softmax_lines(ctx, log_softmax_grad_line); }

/* ---- Dropout ---- */

#define GOLDEN 0x9E3779B97F4A7C15ull

/* SplitMix64's output function: a bijection of 64 bits in which every output bit
 * depends on every input bit. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* u(seed, step, i) in [0, 1): element i of the SplitMix64 sequence seeded with a key
 * hashed from (seed, step), so that for one seed every step has its own key. */
static double dropout_uniform(uint64_t key, int64_t i)
{
    return (double)(mix64(key + ((uint64_t)i + 1) * GOLDEN) >> 11) * 0x1p-53;
}

static uint64_t dropout_key(int64_t seed, int64_t step) { return mix64(mix64((uint64_t)seed) + (uint64_t)step); }

static gf_status dropout_ratio(const gf_op_ctx *ctx, float *ratio)
{
    *ratio = gf_attr_float(ctx->node, "ratio", 0.5f);
    if (!(*ratio >= 0 && *ratio < 1))
        return gf_fail(GF_ERR_INVALID, "ratio is %g; it must be in [0, 1)", *ratio);
    return GF_OK;
}

static gf_status dropout_train_infer(gf_op_ctx *ctx)
{
    float ratio;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (!st) st = dropout_ratio(ctx, &ratio);
    if (!st) st = check_type(ctx, 1, "step", step_types, "int64 (or int32)");
    if (st) return st;
    if (gf_tensor_numel(ctx->inputs[1]) != 1)
        return gf_fail(GF_ERR_SHAPE, "step has %lld values; it must be a scalar",
                       (long long)gf_tensor_numel(ctx->inputs[1]));
    const gf_tensor *x = ctx->inputs[0];
    if (ctx->outputs[0]) gf_set_like(ctx->outputs[0], x);
    if (ctx->n_outputs > 1 && ctx->outputs[1]) gf_set_shape(ctx->outputs[1], GF_BOOL, x->rank, x->dims);
    return GF_OK;
}

static gf_status dropout_train_cpu(gf_op_ctx *ctx)
{
    float ratio;
    gf_status st = dropout_ratio(ctx, &ratio);
    if (st) return st;
    const float *x = ctx->inputs[0]->data;
    float *y = ctx->outputs[0] ? ctx->outputs[0]->data : NULL;
    uint8_t *mask = ctx->n_outputs > 1 && ctx->outputs[1] ? ctx->outputs[1]->data : NULL;
    float scale = 1.0f / (1.0f - ratio);
    uint64_t key = dropout_key(gf_attr_int(ctx->node, "seed", 0), gf_int_at(ctx->inputs[1], 0));
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    #pragma omp parallel for schedule(static) if (n > DROPOUT_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        int keep = dropout_uniform(key, i) >= ratio;
        if (mask) mask[i] = (uint8_t)keep;
        if (y) y[i] = x[i] * (keep ? scale : 0.0f);
    }
    return GF_OK;
}

static gf_status dropout_grad_infer(gf_op_ctx *ctx)
{
    float ratio;
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (!st) st = check_type(ctx, 1, "mask", bool_only, "bool");
    if (!st) st = dropout_ratio(ctx, &ratio);
    if (!st) st = check_same_shape(ctx, 0, "dY", 1, "mask");
    if (!st && ctx->outputs[0]) gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return st;
}

static gf_status dropout_grad_cpu(gf_op_ctx *ctx)
{
    float ratio;
    gf_status st = dropout_ratio(ctx, &ratio);
    if (st || !ctx->outputs[0]) return st;
    const float *dy = ctx->inputs[0]->data;
    const uint8_t *mask = ctx->inputs[1]->data;
    float *dx = ctx->outputs[0]->data, scale = 1.0f / (1.0f - ratio);
    int64_t n = gf_tensor_numel(ctx->inputs[0]);
    #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
    return GF_OK;
}

/* Relu, LeakyRelu and Sigmoid gradients go element by element: any layout, the same for
 * all three tensors, and dX may take dY's storage. (Dropout's mask hashes the element's
 * plain index, so Dropout stays plain.) */
static gf_status pair_layouts(gf_op_ctx *ctx)
{
    if (ctx->outputs[0]) ctx->in_layout[0] = ctx->in_layout[1] = ctx->out_layout[0] = GF_LAYOUT_FOLLOW;
    return GF_OK;
}

const gf_op gf_ops_activation_grad[] = {
    {"ai.graft", "ReluGrad", 1, 0, y_pair_infer, relu_grad_cpu, 0, pair_layouts},
    {"ai.graft", "LeakyReluGrad", 1, 0, x_pair_infer, leaky_relu_grad_cpu, 0, pair_layouts},
    {"ai.graft", "SigmoidGrad", 1, 0, y_pair_infer, sigmoid_grad_cpu, 0, pair_layouts},
    {"ai.graft", "SoftmaxGrad", 1, 0, softmax_grad_infer, softmax_grad_cpu},
    {"ai.graft", "LogSoftmaxGrad", 1, 0, softmax_grad_infer, log_softmax_grad_cpu},
    {"ai.graft", "DropoutTrain", 1, 0, dropout_train_infer, dropout_train_cpu},
    {"ai.graft", "DropoutGrad", 1, 0, dropout_grad_infer, dropout_grad_cpu},
    {0},
};
