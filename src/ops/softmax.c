/* Softmax, LogSoftmax and Hardmax.
 *
 * Before opset 13 the input is coerced to 2-D at `axis` (default 1) and the
 * op runs over each row of [prod(dims[:axis]), prod(dims[axis:])]. From opset
 * 13 on it runs along the single axis `axis` (default -1). Both are the same
 * loop over an (outer, n, inner) view: the old form has inner = 1 and n the
 * product of the trailing dims. */
#include "softmax.h"

#include <math.h>

typedef enum softmax_kind { SOFTMAX, LOG_SOFTMAX, HARDMAX } softmax_kind;

void gf_softmax_split(int rank, const int64_t *dims, int axis, int coerce_2d, gf_softmax_view *v)
{
    v->outer = v->n = v->inner = 1;
    for (int d = 0; d < rank; d++) {
        if (d < axis) v->outer *= dims[d];
        else if (d == axis || coerce_2d) v->n *= dims[d];
        else v->inner *= dims[d];
    }
}

gf_status gf_softmax_view_of(const gf_op_ctx *ctx, gf_softmax_view *v)
{
    const gf_tensor *x = ctx->inputs[0];
    int coerce_2d = ctx->node->opset < 13;
    int axis;
    gf_status st = gf_axis(ctx, gf_attr_int(ctx->node, "axis", coerce_2d ? 1 : -1), x->rank, &axis);
    if (st) return st;
    if (x->rank == 0) return gf_fail(GF_ERR_SHAPE, "input is a scalar; it needs at least one axis");
    gf_softmax_split(x->rank, x->dims, axis, coerce_2d, v);
    return GF_OK;
}

static gf_status softmax_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    static const gf_dtype allowed[] = {GF_FLOAT, GF_UNDEFINED};
    if ((st = gf_check_dtype(ctx, 0, allowed))) return st;
    gf_softmax_view v;
    if ((st = gf_softmax_view_of(ctx, &v))) return st;
    gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    return GF_OK;
}

/* One line of n elements, `stride` apart. */
static void softmax_line(softmax_kind kind, const float *x, float *y, int64_t n, int64_t stride)
{
    float max = x[0];
    int64_t argmax = 0;
    for (int64_t j = 1; j < n; j++)
        if (x[j * stride] > max) max = x[j * stride], argmax = j;
    if (kind == HARDMAX) {
        for (int64_t j = 0; j < n; j++) y[j * stride] = j == argmax ? 1.0f : 0.0f;
        return;
    }
    double sum = 0;
    for (int64_t j = 0; j < n; j++) {
        float e = expf(x[j * stride] - max);
        sum += e;
        if (kind == SOFTMAX) y[j * stride] = e;
    }
    if (kind == SOFTMAX) {
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < n; j++) y[j * stride] *= inv;
    } else {
        float shift = max + (float)log(sum);
        for (int64_t j = 0; j < n; j++) y[j * stride] = x[j * stride] - shift;
    }
}

static gf_status softmax_run(gf_op_ctx *ctx, softmax_kind kind)
{
    gf_softmax_view v;
    gf_status st = gf_softmax_view_of(ctx, &v);
    if (st) return st;
    if (v.n == 0) return GF_OK;
    const float *x = ctx->inputs[0]->data;
    float *y = ctx->outputs[0]->data;
    int64_t lines = v.outer * v.inner;
    #pragma omp parallel for schedule(static) if (lines * v.n > 32768)
    for (int64_t l = 0; l < lines; l++) {
        int64_t o = l / v.inner, i = l % v.inner;
        int64_t start = o * v.n * v.inner + i;
        softmax_line(kind, x + start, y + start, v.n, v.inner);
    }
    return GF_OK;
}

static gf_status softmax_cpu(gf_op_ctx *ctx) { return softmax_run(ctx, SOFTMAX); }
static gf_status log_softmax_cpu(gf_op_ctx *ctx) { return softmax_run(ctx, LOG_SOFTMAX); }
static gf_status hardmax_cpu(gf_op_ctx *ctx) { return softmax_run(ctx, HARDMAX); }

const gf_op gf_ops_softmax[] = {
    {"", "Softmax", 1, 0, softmax_infer, softmax_cpu},
    {"", "LogSoftmax", 1, 0, softmax_infer, log_softmax_cpu},
    {"", "Hardmax", 1, 0, softmax_infer, hardmax_cpu},
    {0},
};
