/* Optimizer steps and gradient clipping (domain ai.graft).
 *
 * The step ops are functional: they take a parameter, its gradient and its
 * optimizer state and return the new values, which the trainer writes back into
 * the state after each step. `lr` is a float32 scalar input and `step` an int64
 * scalar input (1 for the first update), so a schedule changes them without
 * replanning; hyper-parameters are attributes.
 *
 *   SGDStep(param, grad, [momentum_buf], lr, step) -> (param_new, [momentum_buf_new])
 *       momentum=0, dampening=0, nesterov=0, weight_decay=0
 *   AdamStep(param, grad, exp_avg, exp_avg_sq, lr, step, [max_exp_avg_sq])
 *       -> (param_new, exp_avg_new, exp_avg_sq_new, [max_exp_avg_sq_new])
 *       beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0, decoupled=0 (1: AdamW), amsgrad=0
 *   RMSpropStep(param, grad, square_avg, lr, [momentum_buf], [grad_avg])
 *       -> (param_new, square_avg_new, [momentum_buf_new], [grad_avg_new])
 *       alpha=0.99, epsilon=1e-8, weight_decay=0, momentum=0, centered=0
 *   ASGDStep(param, grad, ax, eta, mu, lr, step) -> (param_new, ax_new, eta_new, mu_new)
 *       lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0; eta and mu are float32 scalars
 *       (eta = lr and mu = 1 before the first step)
 *   GradNorm(g_0, ..., g_{n-1}) -> sqrt(sum of the squares of every element), float32 scalar
 *   ClipGradScale(norm) -> min(1, max_norm / (norm + 1e-6)), max_norm required
 *
 * Each step is torch 1.13's torch.optim single-tensor (foreach=False) update, with
 * its float32 rounding: where torch's CPU kernels fuse a multiply and an add
 * (add with alpha, addcmul) the kernels here use fmaf, in the same operand order,
 * and scalars that torch computes in double (bias corrections, 1 - beta) are
 * computed in double and rounded to float32 where torch rounds them. SGD's first
 * step (step == 1) sets the momentum buffer to the (decayed) gradient, without
 * dampening, as torch does. State the attributes switch off (SGD's buffer with
 * momentum 0, RMSprop's with momentum 0 or grad_avg when not centered) may be
 * omitted; given anyway, its output repeats its input.
 *
 * Every update is element-wise and reads an element's state before writing its
 * new value, so a new value may be written over the state it replaces (the
 * trainer's in-place update bindings rely on it). */
#include "optimizer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define PARALLEL_MIN 32768       /* elements below which a step runs on one thread */
#define NORM_BLOCK 65536         /* GradNorm's fixed blocks: the sum is thread-count independent */

/* ---- attributes ---- */

double gf_attr_decimal(const gf_node *node, const char *name, double dflt)
{
    if (!gf_node_attr(node, name)) return dflt;
    float f = gf_attr_float(node, name, 0);
    char text[32];
    for (int digits = 1; digits < 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        if (strtof(text, NULL) == f) return strtod(text, NULL);
    }
    return f;
}

/* ---- signatures and shape checks ---- */

typedef enum slot_kind {
    SLOT_TENSOR,        /* float32, the parameter's shape */
    SLOT_SCALAR,        /* float32, rank 0 or one element */
    SLOT_STEP,          /* int64, rank 0 or one element */
} slot_kind;

typedef struct slot {
    const char *name;
    slot_kind kind;
    int optional;
} slot;

/* A step op's inputs, and for each output the input it is the new value of. */
typedef struct step_signature {
    int n_inputs;
    slot inputs[8];
    int n_outputs;
    int output_of[4];
} step_signature;

enum { SGD_PARAM, SGD_GRAD, SGD_BUF, SGD_LR, SGD_STEP };
static const step_signature sgd_signature = {
    5, {{"param", SLOT_TENSOR, 0}, {"grad", SLOT_TENSOR, 0}, {"momentum_buf", SLOT_TENSOR, 1},
        {"lr", SLOT_SCALAR, 0}, {"step", SLOT_STEP, 0}},
    2, {SGD_PARAM, SGD_BUF}};

enum { ADAM_PARAM, ADAM_GRAD, ADAM_AVG, ADAM_AVG_SQ, ADAM_LR, ADAM_STEP, ADAM_MAX_AVG_SQ };
static const step_signature adam_signature = {
    7, {{"param", SLOT_TENSOR, 0}, {"grad", SLOT_TENSOR, 0}, {"exp_avg", SLOT_TENSOR, 0},
        {"exp_avg_sq", SLOT_TENSOR, 0}, {"lr", SLOT_SCALAR, 0}, {"step", SLOT_STEP, 0},
        {"max_exp_avg_sq", SLOT_TENSOR, 1}},
    4, {ADAM_PARAM, ADAM_AVG, ADAM_AVG_SQ, ADAM_MAX_AVG_SQ}};

enum { RMS_PARAM, RMS_GRAD, RMS_SQUARE_AVG, RMS_LR, RMS_BUF, RMS_GRAD_AVG };
static const step_signature rmsprop_signature = {
    6, {{"param", SLOT_TENSOR, 0}, {"grad", SLOT_TENSOR, 0}, {"square_avg", SLOT_TENSOR, 0},
        {"lr", SLOT_SCALAR, 0}, {"momentum_buf", SLOT_TENSOR, 1}, {"grad_avg", SLOT_TENSOR, 1}},
    4, {RMS_PARAM, RMS_SQUARE_AVG, RMS_BUF, RMS_GRAD_AVG}};

enum { ASGD_PARAM, ASGD_GRAD, ASGD_AX, ASGD_ETA, ASGD_MU, ASGD_LR, ASGD_STEP };
static const step_signature asgd_signature = {
    7, {{"param", SLOT_TENSOR, 0}, {"grad", SLOT_TENSOR, 0}, {"ax", SLOT_TENSOR, 0}, {"eta", SLOT_SCALAR, 0},
        {"mu", SLOT_SCALAR, 0}, {"lr", SLOT_SCALAR, 0}, {"step", SLOT_STEP, 0}},
    4, {ASGD_PARAM, ASGD_AX, ASGD_ETA, ASGD_MU}};

static int is_scalar(const gf_tensor *t) { return t->rank == 0 || gf_tensor_numel(t) == 1; }

static int same_shape(const gf_tensor *a, const gf_tensor *b)
{
    if (a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

static gf_status check_slot(const gf_op_ctx *ctx, const slot *s, int i)
{
    const gf_tensor *t = ctx->inputs[i], *param = ctx->inputs[0];
    gf_dtype want = s->kind == SLOT_STEP ? GF_INT64 : GF_FLOAT;
    if (t->dtype != want)
        return gf_fail(GF_ERR_SHAPE, "input %d (%s) must be %s, got %s", i, s->name, gf_dtype_name(want),
                       gf_dtype_name(t->dtype));
    if (s->kind != SLOT_TENSOR && !is_scalar(t)) {
        char shape[64];
        return gf_fail(GF_ERR_SHAPE, "input %d (%s) must be a scalar (rank 0 or one element), got shape %s", i,
                       s->name, gf_shape_str(t, shape, sizeof shape));
    }
    if (s->kind == SLOT_TENSOR && !same_shape(t, param)) {
        char shape[64], want_shape[64];
        return gf_fail(GF_ERR_SHAPE, "input %d (%s) has shape %s, expected the param's shape %s", i, s->name,
                       gf_shape_str(t, shape, sizeof shape), gf_shape_str(param, want_shape, sizeof want_shape));
    }
    return GF_OK;
}

static gf_status require_first_output(const gf_op_ctx *ctx, const char *what)
{
    if (ctx->n_outputs >= 1 && ctx->outputs[0]) return GF_OK;
    return gf_fail(GF_ERR_INVALID, "output 0 (%s) is required but omitted", what);
}

/* Checks the inputs against the signature and shapes each present output like the
 * input it replaces, which must be present too. */
static gf_status infer_step(gf_op_ctx *ctx, const step_signature *sig)
{
    if (ctx->n_inputs > sig->n_inputs || ctx->n_outputs > sig->n_outputs)
        return gf_fail(GF_ERR_INVALID, "expects at most %d inputs and %d outputs, has %d and %d", sig->n_inputs,
                       sig->n_outputs, ctx->n_inputs, ctx->n_outputs);
    for (int i = 0; i < sig->n_inputs; i++) {
        const slot *s = &sig->inputs[i];
        if (i >= ctx->n_inputs || !ctx->inputs[i]) {
            if (!s->optional) return gf_fail(GF_ERR_INVALID, "input %d (%s) is required but omitted", i, s->name);
            continue;
        }
        gf_status st = check_slot(ctx, s, i);
        if (st) return st;
    }
    gf_status st = require_first_output(ctx, "the new param");
    if (st) return st;
    for (int o = 0; o < ctx->n_outputs; o++) {
        if (!ctx->outputs[o]) continue;
        int src = sig->output_of[o];
        if (src >= ctx->n_inputs || !ctx->inputs[src])
            return gf_fail(GF_ERR_INVALID, "output %d (new %s) needs input %d (%s), which is omitted", o,
                           sig->inputs[src].name, src, sig->inputs[src].name);
        gf_set_like(ctx->outputs[o], ctx->inputs[src]);
    }
    return GF_OK;
}

/* Fails when an attribute needs an optional input that is omitted. */
static gf_status require_input(const gf_op_ctx *ctx, const step_signature *sig, int i, const char *because)
{
    if (i < ctx->n_inputs && ctx->inputs[i]) return GF_OK;
    return gf_fail(GF_ERR_INVALID, "input %d (%s) is required when %s", i, sig->inputs[i].name, because);
}

/* ---- kernel helpers ---- */

static const float *in_data(const gf_op_ctx *ctx, int i)
{
    return i < ctx->n_inputs && ctx->inputs[i] ? ctx->inputs[i]->data : NULL;
}

static float *out_data(const gf_op_ctx *ctx, int o)
{
    return o < ctx->n_outputs && ctx->outputs[o] ? ctx->outputs[o]->data : NULL;
}

static float scalar_in(const gf_op_ctx *ctx, int i) { return *(const float *)ctx->inputs[i]->data; }

gf_status gf_optimizer_step(const gf_op_ctx *ctx, int i, int64_t *step)
{
    *step = *(const int64_t *)ctx->inputs[i]->data;
    if (*step < 1) return gf_fail(GF_ERR_INVALID, "step is %lld; the first update is step 1", (long long)*step);
    return GF_OK;
}

/* An output that repeats its input, for state the attributes switch off. */
static void pass_through(const gf_op_ctx *ctx, int o, int i)
{
    float *out = out_data(ctx, o);
    const float *in = in_data(ctx, i);
    if (!out || out == in) return;
    for (int64_t k = 0, n = gf_tensor_numel(ctx->inputs[i]); k < n; k++) out[k] = in[k];
}

/* torch.maximum: NaN when either is NaN. */
static float max_nan(float a, float b) { return isnan(a) || a > b ? a : b; }

/* The element-wise updates run over one span of their tensors per thread, each span's
 * loop in GF_SIMD_CLONES (op.h): on the baseline x86-64 every fmaf is a call into libm
 * and the loop stays scalar (ResNet18's SGD step took 12.8 ms a batch, 4.9 so). fmaf,
 * sqrtf and division round the same in every clone. */

/* A span function copies its arguments into a local struct first: the loop's stores
 * cannot change a local, so its constants stay in registers. */
typedef void (*update_span)(const void *args, int64_t lo, int64_t hi);

/* Where the kernel writes output o: the output's data, or, when the output is omitted,
 * *scratch (n floats, made on first use, for the caller to free), so that the update
 * loops store without a branch and vectorize. */
static gf_status output_or_scratch(const gf_op_ctx *ctx, int o, int64_t n, float **out, float **scratch)
{
    *out = out_data(ctx, o);
    if (*out) return GF_OK;
    if (!*scratch && !(*scratch = malloc((size_t)n * sizeof **scratch + 1)))
        return gf_fail(GF_ERR_NOMEM, "out of memory for an omitted output of %lld values", (long long)n);
    *out = *scratch;
    return GF_OK;
}

static void update_spans(int64_t n, update_span run, const void *args)
{
    #pragma omp parallel if (n > PARALLEL_MIN)
    {
        int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
        run(args, n * t / threads, n * (t + 1) / threads);
    }
}

/* ---- SGD ---- */

static gf_status sgd_infer(gf_op_ctx *ctx)
{
    gf_status st = infer_step(ctx, &sgd_signature);
    if (!st && gf_attr_decimal(ctx->node, "momentum", 0) != 0)
        st = require_input(ctx, &sgd_signature, SGD_BUF, "momentum is not 0");
    return st;
}

typedef struct sgd_args {
    const float *param, *grad, *buf;
    float *param_out, *buf_out;
    float m, keep, wd, neg_lr;
    int momentum, nesterov, first;
} sgd_args;

GF_SIMD_CLONES static void sgd_span(const void *args, int64_t lo, int64_t hi)
{
    const sgd_args a = *(const sgd_args *)args;
    if (!a.momentum) {
        #pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float p = a.param[i], d = a.grad[i];
            if (a.wd != 0) d = fmaf(p, a.wd, d);
            a.param_out[i] = fmaf(d, a.neg_lr, p);
        }
        return;
    }
    #pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float p = a.param[i], d = a.grad[i];
        if (a.wd != 0) d = fmaf(p, a.wd, d);
        float b = a.first ? d : fmaf(d, a.keep, a.buf[i] * a.m);
        a.buf_out[i] = b;
        d = a.nesterov ? fmaf(b, a.m, d) : b;
        a.param_out[i] = fmaf(d, a.neg_lr, p);
    }
}

static gf_status sgd_cpu(gf_op_ctx *ctx)
{
    int64_t step;
    gf_status st = gf_optimizer_step(ctx, SGD_STEP, &step);
    if (st) return st;
    double momentum = gf_attr_decimal(ctx->node, "momentum", 0);
    int64_t n = gf_tensor_numel(ctx->inputs[SGD_PARAM]);
    sgd_args a = {in_data(ctx, SGD_PARAM), in_data(ctx, SGD_GRAD), in_data(ctx, SGD_BUF), out_data(ctx, 0), NULL,
                  (float)momentum, (float)(1 - gf_attr_decimal(ctx->node, "dampening", 0)),
                  (float)gf_attr_decimal(ctx->node, "weight_decay", 0), -scalar_in(ctx, SGD_LR), momentum != 0,
                  gf_attr_int(ctx->node, "nesterov", 0) != 0, step == 1};
    float *scratch = NULL;
    if (momentum == 0) pass_through(ctx, 1, SGD_BUF);
    else st = output_or_scratch(ctx, 1, n, &a.buf_out, &scratch);
    if (!st) update_spans(n, sgd_span, &a);
    free(scratch);
    return st;
}

/* ---- Adam, AdamW ---- */

static gf_status adam_infer(gf_op_ctx *ctx)
{
    gf_status st = infer_step(ctx, &adam_signature);
    if (!st && gf_attr_int(ctx->node, "amsgrad", 0))
        st = require_input(ctx, &adam_signature, ADAM_MAX_AVG_SQ, "amsgrad is set");
    return st;
}

typedef struct adam_args {
    const float *param, *grad, *avg, *avg_sq, *max_sq;
    float *param_out, *avg_out, *avg_sq_out, *max_sq_out;
    float b1, b2, keep1, keep2, eps, wd, decay, bc2_sqrt, neg_step_size;
    int decoupled, amsgrad;
} adam_args;

/* The new parameter from p (already decayed for AdamW), the new first moment m and the
 * second moment's running maximum v_max (the second moment itself without amsgrad). */
static inline float adam_param(const adam_args *a, float p, float m, float v_max)
{
    return p + a->neg_step_size * m / (sqrtf(v_max) / a->bc2_sqrt + a->eps);
}

GF_SIMD_CLONES static void adam_span(const void *args, int64_t lo, int64_t hi)
{
    const adam_args a = *(const adam_args *)args;
    if (a.amsgrad) {
        #pragma omp simd
        for (int64_t i = lo; i < hi; i++) {
            float p = a.param[i], g = a.grad[i];
            if (a.decoupled) p *= a.decay;
            else if (a.wd != 0) g = fmaf(p, a.wd, g);
            float m = fmaf(g, a.keep1, a.avg[i] * a.b1), v = fmaf(a.keep2 * g, g, a.avg_sq[i] * a.b2);
            float v_max = max_nan(a.max_sq[i], v);
            a.max_sq_out[i] = v_max;
            a.avg_out[i] = m;
            a.avg_sq_out[i] = v;
            a.param_out[i] = adam_param(&a, p, m, v_max);
        }
        return;
    }
    #pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float p = a.param[i], g = a.grad[i];
        if (a.decoupled) p *= a.decay;
        else if (a.wd != 0) g = fmaf(p, a.wd, g);
        float m = fmaf(g, a.keep1, a.avg[i] * a.b1), v = fmaf(a.keep2 * g, g, a.avg_sq[i] * a.b2);
        a.avg_out[i] = m;
        a.avg_sq_out[i] = v;
        a.param_out[i] = adam_param(&a, p, m, v);
    }
}

static gf_status adam_cpu(gf_op_ctx *ctx)
{
    int64_t step;
    gf_status st = gf_optimizer_step(ctx, ADAM_STEP, &step);
    if (st) return st;
    const gf_node *node = ctx->node;
    double beta1 = gf_attr_decimal(node, "beta1", 0.9), beta2 = gf_attr_decimal(node, "beta2", 0.999);
    double weight_decay = gf_attr_decimal(node, "weight_decay", 0), lr = scalar_in(ctx, ADAM_LR);
    const int amsgrad = gf_attr_int(node, "amsgrad", 0) != 0;
    int64_t n = gf_tensor_numel(ctx->inputs[ADAM_PARAM]);
    adam_args a = {
        in_data(ctx, ADAM_PARAM), in_data(ctx, ADAM_GRAD), in_data(ctx, ADAM_AVG), in_data(ctx, ADAM_AVG_SQ),
        in_data(ctx, ADAM_MAX_AVG_SQ), out_data(ctx, 0), NULL, NULL, NULL,
        (float)beta1, (float)beta2, (float)(1 - beta1), (float)(1 - beta2),
        (float)gf_attr_decimal(node, "epsilon", 1e-8), (float)weight_decay,
        (float)(1 - lr * weight_decay),                                  /* AdamW's, applied to the param first */
        (float)sqrt(1 - pow(beta2, (double)step)), (float)-(lr / (1 - pow(beta1, (double)step))),
        gf_attr_int(node, "decoupled", 0) != 0, amsgrad};
    float *scratch = NULL;
    st = output_or_scratch(ctx, 1, n, &a.avg_out, &scratch);
    if (!st) st = output_or_scratch(ctx, 2, n, &a.avg_sq_out, &scratch);
    if (!st && amsgrad) st = output_or_scratch(ctx, 3, n, &a.max_sq_out, &scratch);
    if (!amsgrad) pass_through(ctx, 3, ADAM_MAX_AVG_SQ);
    if (!st) update_spans(n, adam_span, &a);
    free(scratch);
    return st;
}

/* ---- RMSprop ---- */

static gf_status rmsprop_infer(gf_op_ctx *ctx)
{
    gf_status st = infer_step(ctx, &rmsprop_signature);
    if (!st && gf_attr_decimal(ctx->node, "momentum", 0) > 0)
        st = require_input(ctx, &rmsprop_signature, RMS_BUF, "momentum is above 0");
    if (!st && gf_attr_int(ctx->node, "centered", 0))
        st = require_input(ctx, &rmsprop_signature, RMS_GRAD_AVG, "centered is set");
    return st;
}

typedef struct rmsprop_args {
    const float *param, *grad, *square_avg, *buf, *grad_avg;
    float *param_out, *square_avg_out, *buf_out, *grad_avg_out;
    float a, keep, m, eps, wd, neg_lr;
    int centered, use_momentum;
} rmsprop_args;

GF_SIMD_CLONES static void rmsprop_span(const void *args, int64_t lo, int64_t hi)
{
    const rmsprop_args r = *(const rmsprop_args *)args;
    #pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float p = r.param[i], g = r.grad[i];
        if (r.wd != 0) g = fmaf(p, r.wd, g);
        float sq = fmaf(r.keep * g, g, r.square_avg[i] * r.a);
        float avg;
        if (r.centered) {
            float ga = fmaf(g, r.keep, r.grad_avg[i] * r.a);
            r.grad_avg_out[i] = ga;
            avg = sqrtf(fmaf(-ga, ga, sq));
        } else {
            avg = sqrtf(sq);
        }
        avg += r.eps;
        r.square_avg_out[i] = sq;
        if (r.use_momentum) {
            float b = r.buf[i] * r.m + g / avg;
            r.buf_out[i] = b;
            r.param_out[i] = fmaf(b, r.neg_lr, p);
        } else {
            r.param_out[i] = p + r.neg_lr * g / avg;
        }
    }
}

static gf_status rmsprop_cpu(gf_op_ctx *ctx)
{
    const gf_node *node = ctx->node;
    double alpha = gf_attr_decimal(node, "alpha", 0.99), momentum = gf_attr_decimal(node, "momentum", 0);
    const int centered = gf_attr_int(node, "centered", 0) != 0, use_momentum = momentum > 0;
    int64_t n = gf_tensor_numel(ctx->inputs[RMS_PARAM]);
    rmsprop_args r = {
        in_data(ctx, RMS_PARAM), in_data(ctx, RMS_GRAD), in_data(ctx, RMS_SQUARE_AVG), in_data(ctx, RMS_BUF),
        in_data(ctx, RMS_GRAD_AVG), out_data(ctx, 0), NULL, NULL, NULL,
        (float)alpha, (float)(1 - alpha), (float)momentum, (float)gf_attr_decimal(node, "epsilon", 1e-8),
        (float)gf_attr_decimal(node, "weight_decay", 0), -scalar_in(ctx, RMS_LR), centered, use_momentum};
    float *scratch = NULL;
    gf_status st = output_or_scratch(ctx, 1, n, &r.square_avg_out, &scratch);
    if (!use_momentum) pass_through(ctx, 2, RMS_BUF);
    else if (!st) st = output_or_scratch(ctx, 2, n, &r.buf_out, &scratch);
    if (!centered) pass_through(ctx, 3, RMS_GRAD_AVG);
    else if (!st) st = output_or_scratch(ctx, 3, n, &r.grad_avg_out, &scratch);
    if (!st) update_spans(n, rmsprop_span, &r);
    free(scratch);
    return st;
}

/* ---- ASGD ---- */

typedef struct asgd_args {
    const float *param, *grad, *ax;
    float *param_out, *ax_out;
    float mu, wd, decay, neg_eta;
} asgd_args;

GF_SIMD_CLONES static void asgd_span(const void *args, int64_t lo, int64_t hi)
{
    const asgd_args a = *(const asgd_args *)args;
    #pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        float g = a.grad[i], p = a.param[i];
        if (a.wd != 0) g = fmaf(p, a.wd, g);
        p = fmaf(g, a.neg_eta, p * a.decay);
        /* averaging starts once mu drops below 1 (past t0); until then ax follows param */
        float average = a.mu != 1 ? a.ax[i] + (p - a.ax[i]) * a.mu : p;
        a.ax_out[i] = average;
        a.param_out[i] = p;
    }
}

static gf_status asgd_cpu(gf_op_ctx *ctx)
{
    int64_t step;
    gf_status st = gf_optimizer_step(ctx, ASGD_STEP, &step);
    if (st) return st;
    const gf_node *node = ctx->node;
    double lambd = gf_attr_decimal(node, "lambd", 1e-4), alpha = gf_attr_decimal(node, "alpha", 0.75);
    double t0 = gf_attr_decimal(node, "t0", 1e6), lr = scalar_in(ctx, ASGD_LR);
    double eta = scalar_in(ctx, ASGD_ETA);
    asgd_args a = {in_data(ctx, ASGD_PARAM), in_data(ctx, ASGD_GRAD), in_data(ctx, ASGD_AX), out_data(ctx, 0),
                   NULL, scalar_in(ctx, ASGD_MU), (float)gf_attr_decimal(node, "weight_decay", 0),
                   (float)(1 - lambd * eta), (float)-eta};
    int64_t n = gf_tensor_numel(ctx->inputs[ASGD_PARAM]);
    float *scratch = NULL, *eta_out = out_data(ctx, 2), *mu_out = out_data(ctx, 3);
    st = output_or_scratch(ctx, 1, n, &a.ax_out, &scratch);
    if (!st) update_spans(n, asgd_span, &a);
    free(scratch);
    if (st) return st;
    if (eta_out) *eta_out = (float)(lr / pow(1 + lambd * lr * (double)step, alpha));
    if (mu_out) *mu_out = (float)(1 / fmax(1, (double)step - t0));
    return GF_OK;
}

static gf_status asgd_infer(gf_op_ctx *ctx) { return infer_step(ctx, &asgd_signature); }

/* ---- gradient clipping ---- */

static gf_status grad_norm_infer(gf_op_ctx *ctx)
{
    if (ctx->n_inputs < 1) return gf_fail(GF_ERR_INVALID, "expects at least one gradient");
    gf_status st = require_first_output(ctx, "the norm");
    if (st) return st;
    static const gf_dtype floats[] = {GF_FLOAT, GF_UNDEFINED};
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (!ctx->inputs[i]) return gf_fail(GF_ERR_INVALID, "input %d is omitted; every input is a gradient", i);
        if ((st = gf_check_dtype(ctx, i, floats))) return st;
    }
    gf_set_shape(ctx->outputs[0], GF_FLOAT, 0, NULL);
    return GF_OK;
}

static int64_t norm_blocks(const gf_tensor *t) { return (gf_tensor_numel(t) + NORM_BLOCK - 1) / NORM_BLOCK; }

/* Sums of squares in double over fixed blocks of every input, added in input and
 * block order: the same result on any number of threads. */
static gf_status grad_norm_cpu(gf_op_ctx *ctx)
{
    int64_t n_blocks = 0;
    for (int i = 0; i < ctx->n_inputs; i++) n_blocks += norm_blocks(ctx->inputs[i]);
    double *partial = malloc((size_t)(n_blocks ? n_blocks : 1) * sizeof *partial);
    if (!partial) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld partial sums", (long long)n_blocks);
    double *next = partial;
    for (int i = 0; i < ctx->n_inputs; i++) {
        const float *g = ctx->inputs[i]->data;
        int64_t n = gf_tensor_numel(ctx->inputs[i]), blocks = norm_blocks(ctx->inputs[i]);
        double *sums = next;
        next += blocks;
        #pragma omp parallel for schedule(static) if (n > PARALLEL_MIN)
        for (int64_t b = 0; b < blocks; b++) {
            int64_t end = (b + 1) * NORM_BLOCK < n ? (b + 1) * NORM_BLOCK : n;
            double sum = 0;
            for (int64_t k = b * NORM_BLOCK; k < end; k++) sum += (double)g[k] * g[k];
            sums[b] = sum;
        }
    }
    double total = 0;
    for (int64_t b = 0; b < n_blocks; b++) total += partial[b];
    free(partial);
    *(float *)ctx->outputs[0]->data = (float)sqrt(total);
    return GF_OK;
}

static gf_status clip_scale_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    static const slot norm = {"norm", SLOT_SCALAR, 0};
    if ((st = check_slot(ctx, &norm, 0)) || (st = require_first_output(ctx, "the scale"))) return st;
    if (!gf_node_attr(ctx->node, "max_norm")) return gf_fail(GF_ERR_INVALID, "attribute max_norm is required");
    gf_set_shape(ctx->outputs[0], GF_FLOAT, 0, NULL);
    return GF_OK;
}

/* As torch.nn.utils.clip_grad_norm_ in float32: max_norm / (norm + 1e-6) is
 * Tensor.__rdiv__, a reciprocal times max_norm; clamped to 1 (NaN stays NaN). */
static gf_status clip_scale_cpu(gf_op_ctx *ctx)
{
    float max_norm = (float)gf_attr_decimal(ctx->node, "max_norm", 0);
    float scale = 1.0f / (scalar_in(ctx, 0) + 1e-6f) * max_norm;
    *(float *)ctx->outputs[0]->data = scale > 1.0f ? 1.0f : scale;
    return GF_OK;
}

const gf_op gf_ops_optimizer[] = {
    {"ai.graft", "SGDStep", 1, 0, sgd_infer, sgd_cpu},
    {"ai.graft", "AdamStep", 1, 0, adam_infer, adam_cpu},
    {"ai.graft", "RMSpropStep", 1, 0, rmsprop_infer, rmsprop_cpu},
    {"ai.graft", "ASGDStep", 1, 0, asgd_infer, asgd_cpu},
    {"ai.graft", "GradNorm", 1, 0, grad_norm_infer, grad_norm_cpu},
    {"ai.graft", "ClipGradScale", 1, 0, clip_scale_infer, clip_scale_cpu},
    {0},
};
