/* Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (opset 12+).
 *
 * Both view their scores as [N, C, D], D the product of the trailing dims
 * d1..dk (1 for [N, C] scores), and their labels as [N, D]. Each target
 * position (n, j) with label l contributes
 *     loss = -input[n, l, j] * w,   w = weights[l] (1 without weights)
 * or nothing (loss and w both 0) when l is ignore_index. Reduction "none"
 * returns the per-position losses shaped like the labels, "sum" their sum and
 * "mean" their sum divided by the sum of w: with weights that is the weights
 * of the non-ignored targets, without them the count of non-ignored targets.
 * When every target is ignored "mean" is 0/0 = NaN, as in the ONNX reference
 * and PyTorch.
 *
 * SoftmaxCrossEntropyLoss is exactly LogSoftmax over axis 1 followed by
 * NegativeLogLikelihoodLoss; the log-probabilities go to its optional second
 * output, or to a scratch buffer when that output is not wanted.
 *
 * Elements are read and written through gf_num_at/gf_num_set, so float,
 * double, float16 and bfloat16 scores all work; arithmetic is in double.
 * Sums are taken over fixed blocks in a fixed order, so results do not depend
 * on the thread count. */
#include "op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum loss_reduction { REDUCE_NONE, REDUCE_SUM, REDUCE_MEAN } loss_reduction;

typedef struct loss_spec {
    loss_reduction reduction;
    int has_ignore_index;
    int64_t ignore_index;
    int64_t n, c, d;        /* scores viewed as [N, C, D] */
} loss_spec;

static int is_float_type(gf_dtype t)
{
    return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16 || t == GF_BFLOAT16;
}

/* Reads the attributes and checks that scores, labels and weights fit together. */
static gf_status read_loss_spec(const gf_op_ctx *ctx, loss_spec *s)
{
    const gf_tensor *scores = ctx->inputs[0], *labels = ctx->inputs[1];
    const gf_tensor *weights = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;

    const char *reduction = gf_attr_string(ctx->node, "reduction", "mean");
    if (!strcmp(reduction, "none")) s->reduction = REDUCE_NONE;
    else if (!strcmp(reduction, "sum")) s->reduction = REDUCE_SUM;
    else if (!strcmp(reduction, "mean")) s->reduction = REDUCE_MEAN;
    else return gf_fail(GF_ERR_INVALID, "reduction is '%s'; expected none, sum or mean", reduction);
    s->has_ignore_index = gf_node_attr(ctx->node, "ignore_index") != NULL;
    s->ignore_index = gf_attr_int(ctx->node, "ignore_index", 0);

    if (!is_float_type(scores->dtype))
        return gf_fail(GF_ERR_UNSUPPORTED, "scores have element type %s; expected a floating type",
                       gf_dtype_name(scores->dtype));
    if (labels->dtype != GF_INT64 && labels->dtype != GF_INT32)
        return gf_fail(GF_ERR_INVALID, "labels have element type %s; expected int32 or int64",
                       gf_dtype_name(labels->dtype));
    char ss[128], ls[128];
    if (scores->rank < 2)
        return gf_fail(GF_ERR_SHAPE, "scores %s must be [N, C] or [N, C, d1, ...]",
                       gf_shape_str(scores, ss, sizeof ss));
    int fits = labels->rank == scores->rank - 1 && labels->dims[0] == scores->dims[0];
    for (int i = 1; fits && i < labels->rank; i++) fits = labels->dims[i] == scores->dims[i + 1];
    if (!fits)
        return gf_fail(GF_ERR_SHAPE, "labels %s do not fit scores %s; expected [N, d1, ...] for scores [N, C, d1, ...]",
                       gf_shape_str(labels, ls, sizeof ls), gf_shape_str(scores, ss, sizeof ss));

    s->n = scores->dims[0];
    s->c = scores->dims[1];
    s->d = 1;
    for (int i = 2; i < scores->rank; i++) s->d *= scores->dims[i];

    if (weights) {
        if (weights->dtype != scores->dtype)
            return gf_fail(GF_ERR_INVALID, "weights have element type %s, scores %s",
                           gf_dtype_name(weights->dtype), gf_dtype_name(scores->dtype));
        if (weights->rank != 1 || weights->dims[0] != s->c)
            return gf_fail(GF_ERR_SHAPE, "weights %s must be [C] with C = %lld classes",
                           gf_shape_str(weights, ss, sizeof ss), (long long)s->c);
    }
    return GF_OK;
}

static gf_status loss_infer(gf_op_ctx *ctx, int with_log_prob)
{
    gf_status st = gf_check_inputs(ctx, 2, 3);
    if (st) return st;
    loss_spec s;
    if ((st = read_loss_spec(ctx, &s))) return st;
    const gf_tensor *scores = ctx->inputs[0], *labels = ctx->inputs[1];
    if (s.reduction == REDUCE_NONE) gf_set_shape(ctx->outputs[0], scores->dtype, labels->rank, labels->dims);
    else gf_set_shape(ctx->outputs[0], scores->dtype, 0, NULL);
    if (with_log_prob && ctx->n_outputs > 1 && ctx->outputs[1]) gf_set_like(ctx->outputs[1], scores);
    return GF_OK;
}

static gf_status nll_infer(gf_op_ctx *ctx) { return loss_infer(ctx, 0); }
static gf_status sce_infer(gf_op_ctx *ctx) { return loss_infer(ctx, 1); }

/* Every label must be a class index or ignore_index: a label is used to index
 * the input and the weights. */
static gf_status check_labels(const loss_spec *s, const gf_tensor *labels)
{
    for (int64_t pos = 0; pos < s->n * s->d; pos++) {
        int64_t l = gf_int_at(labels, pos);
        if (s->has_ignore_index && l == s->ignore_index) continue;
        if (l < 0 || l >= s->c)
            return gf_fail(GF_ERR_INVALID, "label %lld (at flat position %lld) is outside [0, %lld)%s",
                           (long long)l, (long long)pos, (long long)s->c,
                           s->has_ignore_index ? " and is not ignore_index" : "");
    }
    return GF_OK;
}

/* The loss of target position `pos` of [N, D] and the weight it carries. */
static double position_loss(const loss_spec *s, const gf_tensor *log_prob, const gf_tensor *labels,
                            const gf_tensor *weights, int64_t pos, double *weight)
{
    int64_t l = gf_int_at(labels, pos);
    if (s->has_ignore_index && l == s->ignore_index) {
        *weight = 0;
        return 0;
    }
    int64_t n = pos / s->d, j = pos % s->d;
    double w = weights ? gf_num_at(weights, l) : 1.0;
    *weight = w;
    return -gf_num_at(log_prob, (n * s->c + l) * s->d + j) * w;
}

#define LOSS_BLOCK 4096

/* The NLL of `log_prob` ([N, C, D]) into `out`, after the labels are checked. */
static gf_status nll_run(const loss_spec *s, const gf_tensor *log_prob, const gf_tensor *labels,
                         const gf_tensor *weights, gf_tensor *out)
{
    int64_t positions = s->n * s->d;
    if (s->reduction == REDUCE_NONE) {
        #pragma omp parallel for schedule(static) if (positions > 32768)
        for (int64_t pos = 0; pos < positions; pos++) {
            double w;
            gf_num_set(out, pos, position_loss(s, log_prob, labels, weights, pos, &w));
        }
        return GF_OK;
    }
    int64_t blocks = (positions + LOSS_BLOCK - 1) / LOSS_BLOCK;
    double *sums = calloc((size_t)(blocks ? blocks : 1) * 2, sizeof *sums);
    if (!sums) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld partial sums", (long long)blocks);
    #pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        double loss = 0, weight = 0;
        int64_t end = (b + 1) * LOSS_BLOCK < positions ? (b + 1) * LOSS_BLOCK : positions;
        for (int64_t pos = b * LOSS_BLOCK; pos < end; pos++) {
            double w;
            loss += position_loss(s, log_prob, labels, weights, pos, &w);
            weight += w;
        }
        sums[2 * b] = loss;
        sums[2 * b + 1] = weight;
    }
    double loss = 0, weight = 0;
    for (int64_t b = 0; b < blocks; b++) loss += sums[2 * b], weight += sums[2 * b + 1];
    free(sums);
    gf_num_set(out, 0, s->reduction == REDUCE_MEAN ? loss / weight : loss);
    return GF_OK;
}

static gf_status nll_cpu(gf_op_ctx *ctx)
{
    loss_spec s;
    gf_status st = read_loss_spec(ctx, &s);
    if (!st) st = check_labels(&s, ctx->inputs[1]);
    if (st) return st;
    const gf_tensor *weights = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    return nll_run(&s, ctx->inputs[0], ctx->inputs[1], weights, ctx->outputs[0]);
}

/* LogSoftmax of `scores` ([N, C, D]) over C into `log_prob`, same dtype and shape. */
static void log_softmax_over_classes(const loss_spec *s, const gf_tensor *scores, gf_tensor *log_prob)
{
    int64_t lines = s->n * s->d;
    #pragma omp parallel for schedule(static) if (lines * s->c > 32768)
    for (int64_t line = 0; line < lines; line++) {
        int64_t n = line / s->d, j = line % s->d;
        int64_t base = n * s->c * s->d + j;
        double max = -INFINITY, sum = 0;
        for (int64_t k = 0; k < s->c; k++) max = fmax(max, gf_num_at(scores, base + k * s->d));
        for (int64_t k = 0; k < s->c; k++) sum += exp(gf_num_at(scores, base + k * s->d) - max);
        double shift = max + log(sum);
        for (int64_t k = 0; k < s->c; k++)
            gf_num_set(log_prob, base + k * s->d, gf_num_at(scores, base + k * s->d) - shift);
    }
}

static gf_status sce_cpu(gf_op_ctx *ctx)
{
    loss_spec s;
    gf_status st = read_loss_spec(ctx, &s);
    if (!st) st = check_labels(&s, ctx->inputs[1]);
    if (st) return st;
    const gf_tensor *scores = ctx->inputs[0];
    const gf_tensor *weights = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;

    gf_tensor scratch = *scores, *log_prob = &scratch;
    if (ctx->n_outputs > 1 && ctx->outputs[1]) {
        log_prob = ctx->outputs[1];
    } else {
        size_t bytes = gf_tensor_nbytes(scores);
        scratch.owns_data = 0;
        scratch.data = malloc(bytes ? bytes : 1);
        if (!scratch.data) return gf_fail(GF_ERR_NOMEM, "out of memory: log-probabilities need %zu bytes", bytes);
    }
    log_softmax_over_classes(&s, scores, log_prob);
    st = nll_run(&s, log_prob, ctx->inputs[1], weights, ctx->outputs[0]);
    if (log_prob == &scratch) free(scratch.data);
    return st;
}

const gf_op gf_ops_loss[] = {
    {"", "NegativeLogLikelihoodLoss", 12, 0, nll_infer, nll_cpu},
    {"", "SoftmaxCrossEntropyLoss", 12, 0, sce_infer, sce_cpu},
    {0},
};
