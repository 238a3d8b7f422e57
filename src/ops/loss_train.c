/* Training losses and their gradients (domain ai.graft), each exactly the
 * torch.nn.functional loss of the same name in PyTorch 1.13.
 *
 * Every loss has the attribute `reduction`: "none" gives the per-element
 * losses, "sum" their sum, "mean" (the default) their sum divided by the
 * element count, or for the class losses by the summed weight of the targets
 * that are not ignored (NaN when every target is ignored, as in torch).
 * Each gradient op takes dloss first: a scalar for "mean" and "sum", shaped
 * like the per-element losses for "none".
 *
 *   CrossEntropyLoss(scores, target, [weight]) -> (loss, log_prob)
 *       attrs reduction, ignore_index = -100, label_smoothing = 0.
 *       scores [N, C, d1..dk] (k >= 0), target int64 [N, d1..dk], weight [C].
 *       log_prob is LogSoftmax over axis 1. Each target position with label t
 *       (not ignore_index) loses, with e = label_smoothing and w = weight:
 *           (1 - e) * -w[t] * log_prob[t]  +  e / C * sum_k -w[k] * log_prob[k]
 *       an ignored position loses 0 and weighs 0; "mean" divides by the sum of
 *       w[t] over the positions that are not ignored (torch 1.13 does so for
 *       the smoothing term too).
 *   CrossEntropyLossGrad(dloss, log_prob, target, [weight]) -> dscores
 *   NLLLossGrad(dloss, input, target, [weight]) -> dinput
 *       attrs reduction, ignore_index = -100: the gradient of
 *       NegativeLogLikelihoodLoss (loss.c), -w[t] * dloss at the target class.
 *   MSELoss(x, y) -> loss                (x - y)^2
 *   L1Loss(x, y) -> loss                 |x - y|, gradient sign(x - y), sign(0) = 0
 *   BCEWithLogitsLoss(x, y, [weight], [pos_weight]) -> loss
 *       w * ((1 - y) * x + (1 + (pw - 1) * y) * softplus(-x)), weight and
 *       pos_weight broadcast to x (pos_weight [C] along the last axis).
 *   MSELossGrad, L1LossGrad, BCEWithLogitsLossGrad(dloss, <the loss's inputs>) -> dx
 *   YoloV3Loss, YoloV3LossGrad: see their section below.
 *
 * Inputs are float32 (labels int64); arithmetic is in double. Sums are taken
 * over fixed blocks in a fixed order, so results do not depend on the thread
 * count. */
#include "loss_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "ai.graft"
/* Work (in element visits) of one block of a reduction. */
#define BLOCK_WORK 16384

static gf_status read_reduction(const gf_node *node, gf_loss_reduction *r)
{
    const char *reduction = gf_attr_string(node, "reduction", "mean");
    if (!strcmp(reduction, "none")) *r = GF_REDUCTION_NONE;
    else if (!strcmp(reduction, "sum")) *r = GF_REDUCTION_SUM;
    else if (!strcmp(reduction, "mean")) *r = GF_REDUCTION_MEAN;
    else return gf_fail(GF_ERR_INVALID, "reduction is '%s'; expected none, sum or mean", reduction);
    return GF_OK;
}

static const gf_tensor *optional_input(const gf_op_ctx *ctx, int i)
{
    return i < ctx->n_inputs ? ctx->inputs[i] : NULL;
}

static gf_status check_float(const gf_tensor *t, const char *what)
{
    if (t->dtype != GF_FLOAT)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s has element type %s; expected float32", what, gf_dtype_name(t->dtype));
    return GF_OK;
}

static int same_shape(const gf_tensor *a, int rank, const int64_t *dims)
{
    if (a->rank != rank) return 0;
    for (int i = 0; i < rank; i++)
        if (a->dims[i] != dims[i]) return 0;
    return 1;
}

/* ---- reductions ---- */

/* Term i of a loss; sets *weight to what "mean" divides by for it. */
typedef double (*loss_term_fn)(const void *loss, int64_t i, double *weight);

/* The sums of `count` terms and of their weights, over blocks of `block` terms
 * added in block order. */
static gf_status sum_terms(const void *loss, loss_term_fn term, int64_t count, int64_t block, double *sum,
                           double *weight_sum)
{
    int64_t blocks = (count + block - 1) / block;
    double *sums = calloc((size_t)(blocks ? blocks : 1) * 2, sizeof *sums);
    if (!sums) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld partial sums", (long long)blocks);
    #pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        double s = 0, ws = 0;
        int64_t end = (b + 1) * block < count ? (b + 1) * block : count;
        for (int64_t i = b * block; i < end; i++) {
            double w;
            s += term(loss, i, &w);
            ws += w;
        }
        sums[2 * b] = s;
        sums[2 * b + 1] = ws;
    }
    *sum = *weight_sum = 0;
    for (int64_t b = 0; b < blocks; b++) *sum += sums[2 * b], *weight_sum += sums[2 * b + 1];
    free(sums);
    return GF_OK;
}

/* Writes the reduced loss: every term for "none", else one scalar. */
static gf_status reduce_terms(const void *loss, loss_term_fn term, int64_t count, int64_t block, gf_loss_reduction r,
                              float *out)
{
    if (r == GF_REDUCTION_NONE) {
        #pragma omp parallel for schedule(static) if (count > block)
        for (int64_t i = 0; i < count; i++) {
            double w;
            out[i] = (float)term(loss, i, &w);
        }
        return GF_OK;
    }
    double sum, weight_sum;
    gf_status st = sum_terms(loss, term, count, block, &sum, &weight_sum);
    if (!st) out[0] = (float)(r == GF_REDUCTION_MEAN ? sum / weight_sum : sum);
    return st;
}

static int64_t block_of(int64_t work_per_term)
{
    return work_per_term < BLOCK_WORK ? BLOCK_WORK / (work_per_term > 0 ? work_per_term : 1) : 1;
}

/* ---- the incoming gradient ---- */

/* dloss as term i sees it: dloss[i] for "none", else the scalar (divided by
 * the total weight for "mean"). */
typedef struct loss_seed {
    const float *dloss;
    int per_term;
    double scalar;
} loss_seed;

gf_status gf_loss_check_dloss(const gf_tensor *dloss, gf_loss_reduction r, int rank, const int64_t *dims)
{
    gf_status st = check_float(dloss, "dloss");
    if (st) return st;
    char got[128];
    if (r != GF_REDUCTION_NONE && gf_tensor_numel(dloss) != 1)
        return gf_fail(GF_ERR_SHAPE, "dloss is %s; expected a scalar for reduction %s",
                       gf_shape_str(dloss, got, sizeof got), r == GF_REDUCTION_SUM ? "sum" : "mean");
    if (r == GF_REDUCTION_NONE && !same_shape(dloss, rank, dims)) {
        gf_tensor like = {.rank = rank};
        memcpy(like.dims, dims, (size_t)rank * sizeof *dims);
        char want[128];
        return gf_fail(GF_ERR_SHAPE, "dloss is %s; expected %s, the shape of the loss with reduction none",
                       gf_shape_str(dloss, got, sizeof got), gf_shape_str(&like, want, sizeof want));
    }
    return GF_OK;
}

static loss_seed seed_of(const gf_tensor *dloss, gf_loss_reduction r, double total_weight)
{
    loss_seed s = {.dloss = dloss->data, .per_term = r == GF_REDUCTION_NONE};
    if (!s.per_term) s.scalar = r == GF_REDUCTION_MEAN ? s.dloss[0] / total_weight : s.dloss[0];
    return s;
}

static double seed_at(const loss_seed *s, int64_t i)
{
    return s->per_term ? s->dloss[i] : s->scalar;
}

/* ---- class losses: CrossEntropyLoss, its gradient, NLLLossGrad ---- */

gf_status gf_class_loss_read(const gf_op_ctx *ctx, int first, int with_smoothing, gf_class_loss *s)
{
    const gf_tensor *scores = ctx->inputs[first], *target = ctx->inputs[first + 1];
    const gf_tensor *weight = optional_input(ctx, first + 2);
    gf_status st = read_reduction(ctx->node, &s->reduction);
    if (st) return st;
    s->ignore_index = gf_attr_int(ctx->node, "ignore_index", -100);
    s->smoothing = with_smoothing ? gf_attr_float(ctx->node, "label_smoothing", 0) : 0;
    if (!(s->smoothing >= 0 && s->smoothing <= 1))
        return gf_fail(GF_ERR_INVALID, "label_smoothing is %g; expected a value in [0, 1]", s->smoothing);

    if ((st = check_float(scores, "scores"))) return st;
    if (target->dtype != GF_INT64)
        return gf_fail(GF_ERR_INVALID, "target has element type %s; expected int64 class indices",
                       gf_dtype_name(target->dtype));
    char ss[128], ts[128];
    if (scores->rank < 2)
        return gf_fail(GF_ERR_SHAPE, "scores %s must be [N, C] or [N, C, d1, ...]", gf_shape_str(scores, ss, sizeof ss));
    int fits = target->rank == scores->rank - 1 && target->dims[0] == scores->dims[0];
    for (int i = 1; fits && i < target->rank; i++) fits = target->dims[i] == scores->dims[i + 1];
    if (!fits)
        return gf_fail(GF_ERR_SHAPE, "target %s does not fit scores %s; expected [N, d1, ...] for scores [N, C, d1, ...]",
                       gf_shape_str(target, ts, sizeof ts), gf_shape_str(scores, ss, sizeof ss));
    s->n = scores->dims[0];
    s->c = scores->dims[1];
    s->d = 1;
    for (int i = 2; i < scores->rank; i++) s->d *= scores->dims[i];

    if (weight) {
        if ((st = check_float(weight, "weight"))) return st;
        if (weight->rank != 1 || weight->dims[0] != s->c)
            return gf_fail(GF_ERR_SHAPE, "weight %s must be [C] with C = %lld classes",
                           gf_shape_str(weight, ss, sizeof ss), (long long)s->c);
    }
    s->target = target;
    s->labels = target->data;
    s->weight = weight ? weight->data : NULL;
    s->scores = scores->data;
    return GF_OK;
}

/* "3" for [N] targets, "(0, 2, 5)" for [N, d1, ...]. */
static void format_position(const gf_tensor *target, int64_t pos, char *buf, size_t len)
{
    if (target->rank == 1) {
        snprintf(buf, len, "%lld", (long long)pos);
        return;
    }
    int64_t coord[GF_MAX_RANK];
    for (int a = target->rank - 1; a >= 0; a--) {
        coord[a] = pos % target->dims[a];
        pos /= target->dims[a];
    }
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int a = 0; a < target->rank && used < len; a++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", a ? ", " : "", (long long)coord[a]);
    if (used < len) snprintf(buf + used, len - used, ")");
}

/* Every label must be a class index or ignore_index: labels index the scores and weight. */
static gf_status check_labels(const gf_class_loss *s)
{
    for (int64_t pos = 0; pos < s->n * s->d; pos++) {
        int64_t l = s->labels[pos];
        if (l == s->ignore_index || (l >= 0 && l < s->c)) continue;
        char where[160];
        format_position(s->target, pos, where, sizeof where);
        return gf_fail(GF_ERR_INVALID, "label %lld at target position %s is outside [0, %lld) and is not ignore_index %lld",
                       (long long)l, where, (long long)s->c, (long long)s->ignore_index);
    }
    return GF_OK;
}

static double class_weight(const gf_class_loss *s, int64_t k)
{
    return s->weight ? s->weight[k] : 1.0;
}

/* The weight target position `pos` carries: 0 when ignored. */
static double target_weight(const gf_class_loss *s, int64_t pos)
{
    int64_t t = s->labels[pos];
    return t == s->ignore_index ? 0 : class_weight(s, t);
}

/* Offset of class 0 at target position `pos` in [N, C, D]; classes are D apart. */
static int64_t line_base(const gf_class_loss *s, int64_t pos)
{
    return pos / s->d * s->c * s->d + pos % s->d;
}

/* CrossEntropyLoss's terms: the class loss, and where they write the log-softmax. */
typedef struct cross_entropy_pass {
    gf_class_loss s;
    float *log_prob;
} cross_entropy_pass;

/* Writes the log-softmax of position `pos` and returns its loss. */
static double cross_entropy_term(const void *loss, int64_t pos, double *weight)
{
    const cross_entropy_pass *pass = loss;
    const gf_class_loss *s = &pass->s;
    int64_t base = line_base(s, pos), d = s->d;
    const float *x = s->scores + base;
    float *log_prob = pass->log_prob + base;
    double max = -INFINITY, sum = 0, smooth = 0;
    for (int64_t k = 0; k < s->c; k++) max = fmax(max, x[k * d]);
    for (int64_t k = 0; k < s->c; k++) sum += exp(x[k * d] - max);
    double shift = max + log(sum);
    for (int64_t k = 0; k < s->c; k++) {
        double lp = x[k * d] - shift;
        log_prob[k * d] = (float)lp;
        smooth += class_weight(s, k) * lp;
    }
    *weight = target_weight(s, pos);
    if (s->labels[pos] == s->ignore_index) return 0;
    double nll = -*weight * (x[s->labels[pos] * d] - shift);
    return (1 - s->smoothing) * nll - s->smoothing / (double)s->c * smooth;
}

/* The weight of position `pos` alone, for the gradients' "mean". */
static double weight_term(const void *loss, int64_t pos, double *weight)
{
    *weight = target_weight(loss, pos);
    return 0;
}

static gf_status cross_entropy_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 3);
    gf_class_loss s;
    if (st || (st = gf_class_loss_read(ctx, 0, 1, &s))) return st;
    const gf_tensor *target = ctx->inputs[1];
    if (s.reduction == GF_REDUCTION_NONE) gf_set_shape(ctx->outputs[0], GF_FLOAT, target->rank, target->dims);
    else gf_set_shape(ctx->outputs[0], GF_FLOAT, 0, NULL);
    if (ctx->n_outputs > 1) gf_set_like(ctx->outputs[1], ctx->inputs[0]);
    return GF_OK;
}

static gf_status cross_entropy_cpu(gf_op_ctx *ctx)
{
    cross_entropy_pass pass;
    const gf_class_loss *s = &pass.s;
    gf_status st = gf_class_loss_read(ctx, 0, 1, &pass.s);
    if (st || (st = check_labels(s))) return st;
    gf_tensor *log_prob = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    float *scratch = NULL;
    if (log_prob) {
        pass.log_prob = log_prob->data;
    } else {
        size_t bytes = gf_tensor_nbytes(ctx->inputs[0]);
        if (!(pass.log_prob = scratch = malloc(bytes ? bytes : 1)))
            return gf_fail(GF_ERR_NOMEM, "out of memory: log-probabilities need %zu bytes", bytes);
    }
    st = reduce_terms(&pass, cross_entropy_term, s->n * s->d, block_of(s->c * 3), s->reduction, ctx->outputs[0]->data);
    free(scratch);
    return st;
}

/* Reads a class loss gradient's inputs (dloss, scores-like, target, [weight]). */
static gf_status read_class_grad(const gf_op_ctx *ctx, int with_smoothing, gf_class_loss *s)
{
    gf_status st = gf_check_inputs(ctx, 3, 4);
    if (st || (st = gf_class_loss_read(ctx, 1, with_smoothing, s))) return st;
    return gf_loss_check_dloss(ctx->inputs[0], s->reduction, s->target->rank, s->target->dims);
}

static gf_status class_grad_infer(gf_op_ctx *ctx, int with_smoothing)
{
    gf_class_loss s;
    gf_status st = read_class_grad(ctx, with_smoothing, &s);
    if (!st) gf_set_like(ctx->outputs[0], ctx->inputs[1]);
    return st;
}

static gf_status cross_entropy_grad_infer(gf_op_ctx *ctx) { return class_grad_infer(ctx, 1); }
static gf_status nll_grad_infer(gf_op_ctx *ctx) { return class_grad_infer(ctx, 0); }

/* d loss / d scores[k] = g * ((1 - e) * w[t] * (p[k] - [k == t]) + e / C * (W * p[k] - w[k])),
 * p = exp(log_prob), W = sum_k w[k]; 0 at ignored positions. */
static void cross_entropy_grad(const gf_class_loss *s, const loss_seed *seed, float *out)
{
    double weight_total = 0;
    for (int64_t k = 0; k < s->c; k++) weight_total += class_weight(s, k);
    int64_t positions = s->n * s->d;
    #pragma omp parallel for schedule(static) if (positions * s->c > 32768)
    for (int64_t pos = 0; pos < positions; pos++) {
        int64_t base = line_base(s, pos), t = s->labels[pos];
        float *dx = out + base;
        const float *log_prob = s->scores + base;
        if (t == s->ignore_index) {
            for (int64_t k = 0; k < s->c; k++) dx[k * s->d] = 0;
            continue;
        }
        double g = seed_at(seed, pos), wt = class_weight(s, t);
        double hard = g * (1 - s->smoothing) * wt, soft = g * s->smoothing / (double)s->c;
        for (int64_t k = 0; k < s->c; k++) {
            double p = exp(log_prob[k * s->d]);
            dx[k * s->d] = (float)(hard * (p - (k == t)) + soft * (weight_total * p - class_weight(s, k)));
        }
    }
}

/* d loss / d input[t] = -w[t] * g at the target class t, 0 elsewhere and at ignored positions. */
static void nll_grad(const gf_class_loss *s, const loss_seed *seed, float *out)
{
    int64_t positions = s->n * s->d;
    #pragma omp parallel for schedule(static) if (positions * s->c > 32768)
    for (int64_t pos = 0; pos < positions; pos++) {
        float *dx = out + line_base(s, pos);
        for (int64_t k = 0; k < s->c; k++) dx[k * s->d] = 0;
        if (s->labels[pos] != s->ignore_index)
            dx[s->labels[pos] * s->d] = (float)(-target_weight(s, pos) * seed_at(seed, pos));
    }
}

typedef void (*class_grad_fn)(const gf_class_loss *s, const loss_seed *seed, float *out);

/* Reads the inputs, checks the labels, and writes the gradient with the seed of dloss. */
static gf_status class_grad_cpu(gf_op_ctx *ctx, int with_smoothing, class_grad_fn grad)
{
    gf_class_loss s;
    gf_status st = read_class_grad(ctx, with_smoothing, &s);
    if (st || (st = check_labels(&s))) return st;
    double total_weight = 0, unused;
    if (s.reduction == GF_REDUCTION_MEAN &&
        (st = sum_terms(&s, weight_term, s.n * s.d, BLOCK_WORK, &unused, &total_weight)))
        return st;
    loss_seed seed = seed_of(ctx->inputs[0], s.reduction, total_weight);
    grad(&s, &seed, ctx->outputs[0]->data);
    return GF_OK;
}

static gf_status cross_entropy_grad_cpu(gf_op_ctx *ctx) { return class_grad_cpu(ctx, 1, cross_entropy_grad); }
static gf_status nll_grad_cpu(gf_op_ctx *ctx) { return class_grad_cpu(ctx, 0, nll_grad); }

/* ---- element-wise losses: MSE, L1, BCE with logits ---- */

typedef struct pointwise_loss {
    gf_loss_reduction reduction;
    int64_t count;
    const float *x, *y;
    float *weight, *pos_weight; /* broadcast to x's shape; NULL when absent */
} pointwise_loss;

/* A per-element weight must broadcast to x's shape (numpy rules, x's shape unchanged). */
static gf_status check_broadcasts_to(const gf_tensor *w, const gf_tensor *x, const char *what)
{
    gf_status st = check_float(w, what);
    if (st) return st;
    int fits = w->rank <= x->rank;
    for (int i = 1; fits && i <= w->rank; i++) {
        int64_t dw = w->dims[w->rank - i], dx = x->dims[x->rank - i];
        fits = dw == dx || dw == 1;
    }
    char ws[128], xs[128];
    if (!fits)
        return gf_fail(GF_ERR_SHAPE, "%s %s does not broadcast to input %s", what, gf_shape_str(w, ws, sizeof ws),
                       gf_shape_str(x, xs, sizeof xs));
    return GF_OK;
}

gf_status gf_pointwise_loss_check(const gf_op_ctx *ctx, int first, gf_loss_reduction *r)
{
    const gf_tensor *x = ctx->inputs[first], *y = ctx->inputs[first + 1];
    gf_status st = read_reduction(ctx->node, r);
    if (st || (st = check_float(x, "input")) || (st = check_float(y, "target"))) return st;
    char xs[128], ys[128];
    if (!same_shape(y, x->rank, x->dims))
        return gf_fail(GF_ERR_SHAPE, "target %s must have the shape of input %s", gf_shape_str(y, ys, sizeof ys),
                       gf_shape_str(x, xs, sizeof xs));
    const gf_tensor *weight = optional_input(ctx, first + 2), *pos_weight = optional_input(ctx, first + 3);
    if (weight && (st = check_broadcasts_to(weight, x, "weight"))) return st;
    if (pos_weight && (st = check_broadcasts_to(pos_weight, x, "pos_weight"))) return st;
    return GF_OK;
}

/* A copy of `w` broadcast to x's shape, or NULL with *st set when out of memory. */
static float *expand_to(const gf_tensor *w, const gf_tensor *x, gf_status *st)
{
    size_t bytes = gf_tensor_nbytes(x);
    float *out = malloc(bytes ? bytes : 1);
    if (!out) {
        *st = gf_fail(GF_ERR_NOMEM, "out of memory: a broadcast weight needs %zu bytes", bytes);
        return NULL;
    }
    int64_t strides[GF_MAX_RANK];
    gf_broadcast_strides(w, x->rank, x->dims, strides);
    gf_copy_strided(out, w->data, sizeof(float), x->rank, x->dims, strides);
    return out;
}

static void release_pointwise(pointwise_loss *p)
{
    free(p->weight);
    free(p->pos_weight);
}

/* Reads inputs (x, y, [weight], [pos_weight]) starting at input `first`. */
static gf_status read_pointwise(const gf_op_ctx *ctx, int first, pointwise_loss *p)
{
    *p = (pointwise_loss){0};
    gf_status st = gf_pointwise_loss_check(ctx, first, &p->reduction);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[first];
    const gf_tensor *weight = optional_input(ctx, first + 2), *pos_weight = optional_input(ctx, first + 3);
    p->count = gf_tensor_numel(x);
    p->x = x->data;
    p->y = ctx->inputs[first + 1]->data;
    if (weight) p->weight = expand_to(weight, x, &st);
    if (!st && pos_weight) p->pos_weight = expand_to(pos_weight, x, &st);
    if (st) release_pointwise(p);
    return st;
}

static gf_status pointwise_infer(gf_op_ctx *ctx, int max_inputs)
{
    gf_status st = gf_check_inputs(ctx, 2, max_inputs);
    gf_loss_reduction r;
    if (st || (st = gf_pointwise_loss_check(ctx, 0, &r))) return st;
    if (r == GF_REDUCTION_NONE) gf_set_like(ctx->outputs[0], ctx->inputs[0]);
    else gf_set_shape(ctx->outputs[0], GF_FLOAT, 0, NULL);
    return GF_OK;
}

static gf_status pointwise_grad_infer(gf_op_ctx *ctx, int max_inputs)
{
    gf_status st = gf_check_inputs(ctx, 3, max_inputs);
    gf_loss_reduction r;
    if (st || (st = gf_pointwise_loss_check(ctx, 1, &r))) return st;
    const gf_tensor *x = ctx->inputs[1];
    if ((st = gf_loss_check_dloss(ctx->inputs[0], r, x->rank, x->dims))) return st;
    gf_set_like(ctx->outputs[0], x);
    return GF_OK;
}

static gf_status two_input_infer(gf_op_ctx *ctx) { return pointwise_infer(ctx, 2); }
static gf_status bce_infer(gf_op_ctx *ctx) { return pointwise_infer(ctx, 4); }
static gf_status two_input_grad_infer(gf_op_ctx *ctx) { return pointwise_grad_infer(ctx, 3); }
static gf_status bce_grad_infer(gf_op_ctx *ctx) { return pointwise_grad_infer(ctx, 5); }

static double optional_at(const float *w, int64_t i)
{
    return w ? w[i] : 1.0;
}

static double mse_term(const void *loss, int64_t i, double *weight)
{
    const pointwise_loss *p = loss;
    double d = (double)p->x[i] - p->y[i];
    *weight = 1;
    return d * d;
}

static double l1_term(const void *loss, int64_t i, double *weight)
{
    const pointwise_loss *p = loss;
    *weight = 1;
    return fabs((double)p->x[i] - p->y[i]);
}

/* softplus(-x) = log(1 + exp(-x)) without overflow. */
static double softplus_neg(double x)
{
    return fmax(-x, 0) + log1p(exp(-fabs(x)));
}

static double sigmoid(double x)
{
    return 1 / (1 + exp(-x));
}

static double bce_term(const void *loss, int64_t i, double *weight)
{
    const pointwise_loss *p = loss;
    double x = p->x[i], y = p->y[i];
    double log_weight = 1 + (optional_at(p->pos_weight, i) - 1) * y;
    *weight = 1;
    return optional_at(p->weight, i) * ((1 - y) * x + log_weight * softplus_neg(x));
}

/* d term / d x[i]. */
typedef double (*slope_fn)(const pointwise_loss *p, int64_t i);

static double mse_slope(const pointwise_loss *p, int64_t i)
{
    return 2 * ((double)p->x[i] - p->y[i]);
}

static double l1_slope(const pointwise_loss *p, int64_t i)
{
    double d = (double)p->x[i] - p->y[i];
    return (d > 0) - (d < 0);
}

static double bce_slope(const pointwise_loss *p, int64_t i)
{
    double y = p->y[i], pw_y = optional_at(p->pos_weight, i) * y;
    return optional_at(p->weight, i) * ((pw_y + 1 - y) * sigmoid(p->x[i]) - pw_y);
}

static gf_status pointwise_cpu(gf_op_ctx *ctx, loss_term_fn term)
{
    pointwise_loss p;
    gf_status st = read_pointwise(ctx, 0, &p);
    if (st) return st;
    st = reduce_terms(&p, term, p.count, BLOCK_WORK, p.reduction, ctx->outputs[0]->data);
    release_pointwise(&p);
    return st;
}

static gf_status pointwise_grad_cpu(gf_op_ctx *ctx, slope_fn slope)
{
    pointwise_loss p;
    gf_status st = read_pointwise(ctx, 1, &p);
    if (st) return st;
    loss_seed seed = seed_of(ctx->inputs[0], p.reduction, (double)p.count);
    float *dx = ctx->outputs[0]->data;
    #pragma omp parallel for schedule(static) if (p.count > 32768)
    for (int64_t i = 0; i < p.count; i++) dx[i] = (float)(seed_at(&seed, i) * slope(&p, i));
    release_pointwise(&p);
    return GF_OK;
}

static gf_status mse_cpu(gf_op_ctx *ctx) { return pointwise_cpu(ctx, mse_term); }
static gf_status l1_cpu(gf_op_ctx *ctx) { return pointwise_cpu(ctx, l1_term); }
static gf_status bce_cpu(gf_op_ctx *ctx) { return pointwise_cpu(ctx, bce_term); }
static gf_status mse_grad_cpu(gf_op_ctx *ctx) { return pointwise_grad_cpu(ctx, mse_slope); }
static gf_status l1_grad_cpu(gf_op_ctx *ctx) { return pointwise_grad_cpu(ctx, l1_slope); }
static gf_status bce_grad_cpu(gf_op_ctx *ctx) { return pointwise_grad_cpu(ctx, bce_slope); }

/* ---- YoloV3Loss ----
 *
 * After the Ultralytics YOLOv3 loss (utils/loss.py, ComputeLoss), with the box
 * term 1 - GIoU and each target assigned to its own grid cell only:
 *
 *   YoloV3Loss(targets, p_1, ..., p_L) -> (loss, [components])
 *   YoloV3LossGrad(dloss, targets, p_1, ..., p_L) -> (dp_1, ..., dp_L)
 *     targets [T, 6]: image index, class, cx, cy, w, h (cx..h normalised to [0, 1]).
 *     p_l [N, A * (5 + K), H_l, W_l]: head l's raw output, channel a * (5 + K) + c
 *       holding tx, ty, tw, th, objectness, K class logits of anchor a.
 *     attrs: anchors (floats, L * A * (w, h) in input pixels, head by head),
 *       strides (ints, L, default 32, 16, 8), anchor_t = 4, box = 0.05,
 *       obj = 1, cls = 0.5, balance (floats, L; default 4, 1, 0.4 for three
 *       heads, else all 1).
 *   A target matches anchor a of head l when both of its width and height
 *   ratios to the anchor (in grid units) lie within [1/anchor_t, anchor_t]; it is
 *   predicted by cell (floor(cx W_l), floor(cy H_l)), clamped into the grid, as
 *       pxy = 2 sigmoid(txy) - 0.5 (cell-relative), pwh = (2 sigmoid(twh))^2 * anchor.
 *   Per head: lbox = mean over the matches of 1 - GIoU(pbox, target box);
 *   lobj = mean over all N A H W cells of BCE-with-logits(objectness, tobj),
 *   tobj = max(GIoU, 0) (a constant) at matched cells, the last match written
 *   winning (matches run anchor by anchor, targets in order), 0 elsewhere;
 *   lcls (only when K > 1) = mean over the matches' K logits of
 *   BCE-with-logits(logit, one-hot class). Then
 *       loss = N * (box * sum_l lbox_l + obj * sum_l balance_l lobj_l + cls * sum_l lcls_l)
 *   and components = (box * sum lbox, obj * sum balance lobj, cls * sum lcls).
 *   GIoU is Ultralytics' bbox_iou(..., GIoU=True, eps=1e-7), whose min/max and
 *   clamp split and pass gradients as torch's do. */

#define YOLO_MAX_HEADS 8
#define YOLO_EPS 1e-7

typedef struct yolo_loss {
    int heads, anchors, classes;        /* L, A, K */
    int64_t batch, n_targets;
    const float *anchor_px;             /* [L][A][2] */
    int64_t strides[YOLO_MAX_HEADS];
    double anchor_t, box_gain, obj_gain, cls_gain, balance[YOLO_MAX_HEADS];
    const float *targets;               /* [T, 6] */
    const gf_tensor *p[YOLO_MAX_HEADS];
} yolo_loss;

static gf_status read_yolo_gains(const gf_node *node, yolo_loss *y)
{
    int n;
    const int64_t *strides = gf_attr_ints(node, "strides", &n);
    static const int64_t default_strides[] = {32, 16, 8};
    if (!strides && y->heads <= 3) strides = default_strides, n = y->heads;
    if (n != y->heads) return gf_fail(GF_ERR_INVALID, "strides has %d values; expected one per head (%d)", n, y->heads);
    const float *balance = gf_attr_floats(node, "balance", &n);
    if (balance && n != y->heads)
        return gf_fail(GF_ERR_INVALID, "balance has %d values; expected one per head (%d)", n, y->heads);
    static const double three_heads[] = {4.0, 1.0, 0.4};
    for (int l = 0; l < y->heads; l++) {
        if (strides[l] <= 0) return gf_fail(GF_ERR_INVALID, "stride %lld of head %d is not positive", (long long)strides[l], l);
        y->strides[l] = strides[l];
        y->balance[l] = balance ? balance[l] : y->heads == 3 ? three_heads[l] : 1.0;
    }
    y->anchor_t = gf_attr_float(node, "anchor_t", 4.0f);
    y->box_gain = gf_attr_float(node, "box", 0.05f);
    y->obj_gain = gf_attr_float(node, "obj", 1.0f);
    y->cls_gain = gf_attr_float(node, "cls", 0.5f);
    return GF_OK;
}

/* Reads attributes and checks targets (input `first`) and the heads after it. */
static gf_status read_yolo_loss(const gf_op_ctx *ctx, int first, yolo_loss *y)
{
    *y = (yolo_loss){.heads = ctx->n_inputs - first - 1};
    if (y->heads < 1 || y->heads > YOLO_MAX_HEADS)
        return gf_fail(GF_ERR_INVALID, "has %d heads; expected 1 to %d after the targets", y->heads, YOLO_MAX_HEADS);
    int n;
    y->anchor_px = gf_attr_floats(ctx->node, "anchors", &n);
    if (!y->anchor_px || n == 0 || n % (2 * y->heads))
        return gf_fail(GF_ERR_INVALID, "anchors has %d values; expected (w, h) pairs, the same number for each of %d heads",
                       n, y->heads);
    y->anchors = n / (2 * y->heads);
    gf_status st = read_yolo_gains(ctx->node, y);
    if (st) return st;

    const gf_tensor *targets = ctx->inputs[first];
    char s[128];
    if ((st = check_float(targets, "targets"))) return st;
    if (targets->rank != 2 || targets->dims[1] != 6)
        return gf_fail(GF_ERR_SHAPE, "targets %s must be [T, 6]: image, class, cx, cy, w, h",
                       gf_shape_str(targets, s, sizeof s));
    y->n_targets = targets->dims[0];
    y->targets = targets->data;
    for (int l = 0; l < y->heads; l++) {
        const gf_tensor *p = ctx->inputs[first + 1 + l];
        if (!p) return gf_fail(GF_ERR_INVALID, "head %d is omitted", l);
        if ((st = check_float(p, "a head"))) return st;
        if (p->rank != 4 || p->dims[1] % y->anchors || p->dims[1] / y->anchors < 5 ||
            (l > 0 && (p->dims[0] != y->batch || p->dims[1] != y->p[0]->dims[1])))
            return gf_fail(GF_ERR_SHAPE, "head %d is %s; expected [N, %d * (5 + classes), H, W] like every head", l,
                           gf_shape_str(p, s, sizeof s), y->anchors);
        y->p[l] = p;
        y->batch = p->dims[0];
    }
    y->classes = (int)(y->p[0]->dims[1] / y->anchors) - 5;
    return GF_OK;
}

static gf_status check_yolo_targets(const yolo_loss *y)
{
    for (int64_t j = 0; j < y->n_targets; j++) {
        const float *t = y->targets + 6 * j;
        if (!(t[0] >= 0 && t[0] < y->batch && t[0] == floorf(t[0])))
            return gf_fail(GF_ERR_INVALID, "target %lld has image index %g; expected an integer in [0, %lld)",
                           (long long)j, t[0], (long long)y->batch);
        if (!(t[1] >= 0 && t[1] < y->classes && t[1] == floorf(t[1])))
            return gf_fail(GF_ERR_INVALID, "target %lld has class %g; expected an integer in [0, %d)", (long long)j, t[1],
                           y->classes);
    }
    return GF_OK;
}

/* d min(a, b) / d a as torch's minimum (and, with the arguments swapped, maximum) passes it. */
static double lesser_share(double a, double b)
{
    return a < b ? 1 : a == b ? 0.5 : 0;
}

/* Ultralytics' GIoU of boxes p and t (cx, cy, w, h) and, into dp, d GIoU / d p. */
static double giou(const double p[4], const double t[4], double dp[4])
{
    double p1[2], p2[2], t1[2], t2[2], overlap[2], extent[2];
    for (int k = 0; k < 2; k++) {
        p1[k] = p[k] - p[k + 2] / 2, p2[k] = p[k] + p[k + 2] / 2;
        t1[k] = t[k] - t[k + 2] / 2, t2[k] = t[k] + t[k + 2] / 2;
        overlap[k] = fmin(p2[k], t2[k]) - fmax(p1[k], t1[k]);
        extent[k] = fmax(p2[k], t2[k]) - fmin(p1[k], t1[k]);
    }
    double iw = fmax(overlap[0], 0), ih = fmax(overlap[1], 0), inter = iw * ih;
    double w1 = p2[0] - p1[0], h1 = p2[1] - p1[1] + YOLO_EPS, w2 = t2[0] - t1[0], h2 = t2[1] - t1[1] + YOLO_EPS;
    double uni = w1 * h1 + w2 * h2 - inter + YOLO_EPS, area = extent[0] * extent[1] + YOLO_EPS;
    double iou = inter / uni;

    /* Backwards from d GIoU = 1, GIoU = iou - (area - uni) / area. */
    double d_uni = 1 / area - inter / (uni * uni), d_area = -uni / (area * area);
    double d_inter = 1 / uni - d_uni;
    double d_overlap[2] = {d_inter * ih * (overlap[0] >= 0), d_inter * iw * (overlap[1] >= 0)};
    double d_extent[2] = {d_area * extent[1], d_area * extent[0]};
    double d_size[2] = {d_uni * h1, d_uni * w1};
    for (int k = 0; k < 2; k++) {
        double d_p2 = d_overlap[k] * lesser_share(p2[k], t2[k]) + d_extent[k] * lesser_share(t2[k], p2[k]) + d_size[k];
        double d_p1 = -d_overlap[k] * lesser_share(t1[k], p1[k]) - d_extent[k] * lesser_share(p1[k], t1[k]) - d_size[k];
        dp[k] = d_p1 + d_p2;
        dp[k + 2] = (d_p2 - d_p1) / 2;
    }
    return iou - (area - uni) / area;
}

/* BCE-with-logits of logit x against y, and its slope. */
static double bce(double x, double y, double *slope)
{
    *slope = sigmoid(x) - y;
    return (1 - y) * x + softplus_neg(x);
}

/* Whether target j matches anchor a of head l; sets its box in grid units. */
static int yolo_match(const yolo_loss *y, int l, int a, int64_t j, double box[4], double anchor[2])
{
    const gf_tensor *p = y->p[l];
    const float *t = y->targets + 6 * j;
    int64_t grid[2] = {p->dims[3], p->dims[2]};
    int fits = 1;
    for (int k = 0; k < 2; k++) {
        box[k] = t[2 + k] * (double)grid[k];
        box[k + 2] = t[4 + k] * (double)grid[k];
        anchor[k] = y->anchor_px[(l * y->anchors + a) * 2 + k] / (double)y->strides[l];
        double r = box[k + 2] / anchor[k];
        fits = fits && fmax(r, 1 / r) < y->anchor_t;
    }
    return fits;
}

/* The loss terms of head l (box, objectness, class; before gains) and, when dp
 * is given, their gradient added into it, scaled by `seed` (d loss / d each term). */
static gf_status yolo_head(const yolo_loss *y, int l, const double seed[3], double terms[3], float *dp)
{
    const gf_tensor *pt = y->p[l];
    const float *p = pt->data;
    int64_t h = pt->dims[2], w = pt->dims[3], plane = h * w, cells = y->batch * y->anchors * plane;
    int no = 5 + y->classes;
    terms[0] = terms[1] = terms[2] = 0;
    float *tobj = calloc((size_t)(cells ? cells : 1), sizeof *tobj);
    if (!tobj) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld objectness targets", (long long)cells);
    int64_t matches = 0;
    double box[4], anchor[2];
    for (int a = 0; a < y->anchors; a++)
        for (int64_t j = 0; j < y->n_targets; j++) matches += yolo_match(y, l, a, j, box, anchor);

    double lbox = 0, lcls = 0, lobj = 0, slope;
    for (int a = 0; a < y->anchors; a++) {
        for (int64_t j = 0; j < y->n_targets; j++) {
            if (!yolo_match(y, l, a, j, box, anchor)) continue;
            const float *t = y->targets + 6 * j;
            int64_t gx = (int64_t)fmin(fmax(floor(box[0]), 0), (double)(w - 1));
            int64_t gy = (int64_t)fmin(fmax(floor(box[1]), 0), (double)(h - 1));
            int64_t cell = ((int64_t)t[0] * y->anchors + a) * plane + gy * w + gx;
            int64_t at = ((int64_t)t[0] * y->anchors * no + a * no) * plane + gy * w + gx; /* channel 0 */
            double s[4], pbox[4], dbox[4];
            for (int k = 0; k < 4; k++) s[k] = sigmoid(p[at + k * plane]);
            double target_box[4] = {box[0] - (double)gx, box[1] - (double)gy, box[2], box[3]};
            for (int k = 0; k < 2; k++) {
                pbox[k] = 2 * s[k] - 0.5;
                pbox[k + 2] = 4 * s[k + 2] * s[k + 2] * anchor[k];
            }
            double g = giou(pbox, target_box, dbox);
            lbox += 1 - g;
            tobj[cell] = (float)fmax(g, 0);
            if (dp) {
                double d_box = -seed[0] / (double)matches;
                for (int k = 0; k < 2; k++) {
                    dp[at + k * plane] += (float)(d_box * dbox[k] * 2 * s[k] * (1 - s[k]));
                    dp[at + (k + 2) * plane] +=
                        (float)(d_box * dbox[k + 2] * 8 * anchor[k] * s[k + 2] * s[k + 2] * (1 - s[k + 2]));
                }
            }
            for (int c = 0; y->classes > 1 && c < y->classes; c++) {
                lcls += bce(p[at + (5 + c) * plane], c == (int)t[1], &slope);
                if (dp) dp[at + (5 + c) * plane] += (float)(seed[2] * slope / (double)(matches * y->classes));
            }
        }
    }
    for (int64_t cell = 0; cell < cells; cell++) {
        int64_t b = cell / (y->anchors * plane), a = cell / plane % y->anchors;
        int64_t at = ((b * y->anchors + a) * no + 4) * plane + cell % plane;
        lobj += bce(p[at], tobj[cell], &slope);
        if (dp) dp[at] += (float)(seed[1] * slope / (double)cells);
    }
    free(tobj);
    terms[0] = matches ? lbox / (double)matches : 0;
    terms[1] = cells ? lobj / (double)cells : 0;
    terms[2] = matches && y->classes > 1 ? lcls / (double)(matches * y->classes) : 0;
    return GF_OK;
}

/* d loss / d (sum of each term of head l), for loss = N (box lbox + obj balance lobj + cls lcls). */
static void yolo_seed(const yolo_loss *y, int l, double dloss, double seed[3])
{
    double n = (double)y->batch * dloss;
    seed[0] = n * y->box_gain;
    seed[1] = n * y->obj_gain * y->balance[l];
    seed[2] = n * y->cls_gain;
}

static gf_status yolo_infer(gf_op_ctx *ctx)
{
    yolo_loss y;
    gf_status st = read_yolo_loss(ctx, 0, &y);
    if (st) return st;
    int64_t three = 3;
    gf_set_shape(ctx->outputs[0], GF_FLOAT, 0, NULL);
    if (ctx->n_outputs > 1) gf_set_shape(ctx->outputs[1], GF_FLOAT, 1, &three);
    return GF_OK;
}

static gf_status yolo_cpu(gf_op_ctx *ctx)
{
    yolo_loss y;
    gf_status st = read_yolo_loss(ctx, 0, &y);
    if (st || (st = check_yolo_targets(&y))) return st;
    double components[3] = {0};
    for (int l = 0; l < y.heads; l++) {
        double terms[3];
        if ((st = yolo_head(&y, l, NULL, terms, NULL))) return st;
        components[0] += y.box_gain * terms[0];
        components[1] += y.obj_gain * y.balance[l] * terms[1];
        components[2] += y.cls_gain * terms[2];
    }
    float *loss = ctx->outputs[0]->data;
    loss[0] = (float)((double)y.batch * (components[0] + components[1] + components[2]));
    if (ctx->n_outputs > 1 && ctx->outputs[1])
        for (int k = 0; k < 3; k++) ((float *)ctx->outputs[1]->data)[k] = (float)components[k];
    return GF_OK;
}

static gf_status yolo_grad_infer(gf_op_ctx *ctx)
{
    yolo_loss y;
    gf_status st = read_yolo_loss(ctx, 1, &y);
    if (st || (st = gf_loss_check_dloss(ctx->inputs[0], GF_REDUCTION_SUM, 0, NULL))) return st;
    if (ctx->n_outputs != y.heads)
        return gf_fail(GF_ERR_INVALID, "has %d outputs; expected one gradient per head (%d)", ctx->n_outputs, y.heads);
    for (int l = 0; l < y.heads; l++) gf_set_like(ctx->outputs[l], y.p[l]);
    return GF_OK;
}

static gf_status yolo_grad_cpu(gf_op_ctx *ctx)
{
    yolo_loss y;
    gf_status st = read_yolo_loss(ctx, 1, &y);
    if (st || (st = check_yolo_targets(&y))) return st;
    double dloss = ((const float *)ctx->inputs[0]->data)[0];
    for (int l = 0; l < y.heads && !st; l++) {
        if (!ctx->outputs[l]) continue;
        double terms[3], seed[3];
        yolo_seed(&y, l, dloss, seed);
        memset(ctx->outputs[l]->data, 0, gf_tensor_nbytes(ctx->outputs[l]));
        st = yolo_head(&y, l, seed, terms, ctx->outputs[l]->data);
    }
    return st;
}

const gf_op gf_ops_loss_train[] = {
    {DOMAIN, "CrossEntropyLoss", 1, 0, cross_entropy_infer, cross_entropy_cpu},
    {DOMAIN, "CrossEntropyLossGrad", 1, 0, cross_entropy_grad_infer, cross_entropy_grad_cpu},
    {DOMAIN, "NLLLossGrad", 1, 0, nll_grad_infer, nll_grad_cpu},
    {DOMAIN, "MSELoss", 1, 0, two_input_infer, mse_cpu},
    {DOMAIN, "MSELossGrad", 1, 0, two_input_grad_infer, mse_grad_cpu},
    {DOMAIN, "L1Loss", 1, 0, two_input_infer, l1_cpu},
    {DOMAIN, "L1LossGrad", 1, 0, two_input_grad_infer, l1_grad_cpu},
    {DOMAIN, "BCEWithLogitsLoss", 1, 0, bce_infer, bce_cpu},
    {DOMAIN, "BCEWithLogitsLossGrad", 1, 0, bce_grad_infer, bce_grad_cpu},
    {DOMAIN, "YoloV3Loss", 1, 0, yolo_infer, yolo_cpu},
    {DOMAIN, "YoloV3LossGrad", 1, 0, yolo_grad_infer, yolo_grad_cpu},
    {0},
};
