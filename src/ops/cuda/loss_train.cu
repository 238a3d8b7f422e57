/* CrossEntropyLoss, MSELoss, L1Loss, BCEWithLogitsLoss and their gradients (domain
 * ai.graft) on the GPU (twin: ops/loss_train.c), float32 in, double arithmetic, as
 * PyTorch 1.13's torch.nn.functional losses.
 *
 * Terms are the reference's expressions. "sum" and "mean" add them (and, for the class
 * losses, the weights "mean" divides by) in double, block by block in an order fixed by
 * the shape, then one thread adds the blocks in order: the same result every run. The
 * gradients read dloss and the total weight on the device, so nothing waits for the
 * host. Labels are checked on the device: one that is neither a class nor ignore_index
 * is an error (reported by the next gf_cuda_sync, naming the node and the position, as
 * the reference words it) and counts for nothing meanwhile. */
#include "cuda_util.cuh"

#include "../loss_train.h"

#include <math.h>
#include <string.h>

static const gf_tensor *optional_input(const gf_op_ctx *ctx, int i) { return i < ctx->n_inputs ? ctx->inputs[i] : NULL; }

/* ---- fixed-order sums ---- */

#define SUM_THREADS 256
#define SUM_MAX_BLOCKS 1024

static unsigned sum_blocks(int64_t n)
{
    int64_t b = (n + SUM_THREADS - 1) / SUM_THREADS;
    return (unsigned)(b < 1 ? 1 : b > SUM_MAX_BLOCKS ? SUM_MAX_BLOCKS : b);
}

/* Block sums of f(i) and of the weight f sets: partial[2 b], partial[2 b + 1]. */
template <typename F>
__global__ void partial_sums_kernel(F f, int64_t n, double *partial)
{
    double s = 0, ws = 0;
    GF_CUDA_LOOP(i, n) {
        double w = 0;
        s += f(i, &w);
        ws += w;
    }
    s = gf_cu_block_sum(s);
    ws = gf_cu_block_sum(ws);
    if (threadIdx.x == 0) {
        partial[2 * blockIdx.x] = s;
        partial[2 * blockIdx.x + 1] = ws;
    }
}

/* One thread adds the blocks in order: totals[0] = the sum, totals[1] = the weights;
 * out (when given) receives the loss. */
__global__ void finish_sums_kernel(const double *partial, int blocks, double *totals, float *out, int mean)
{
    if (blockIdx.x || threadIdx.x) return;
    double s = 0, ws = 0;
    for (int b = 0; b < blocks; b++) s += partial[2 * b], ws += partial[2 * b + 1];
    totals[0] = s;
    totals[1] = ws;
    if (out) out[0] = (float)(mean ? s / ws : s);
}

/* totals[0..1] = the sums of f over [0, n); out as finish_sums_kernel. */
template <typename F>
static gf_status sum_terms(const gf_op_ctx *ctx, gf_cuda_ctx *cu, F f, int64_t n, double *totals, float *out, int mean)
{
    unsigned blocks = sum_blocks(n);
    double *partial;
    gf_status st = gf_cuda_scratch(ctx, cu, 2 * blocks * sizeof(double), (void **)&partial);
    if (st) return st;
    partial_sums_kernel<F><<<blocks, SUM_THREADS, 0, cu->stream>>>(f, n, partial);
    st = gf_cuda_launched(ctx, "partial_sums_kernel");
    if (!st) {
        finish_sums_kernel<<<1, 32, 0, cu->stream>>>(partial, (int)blocks, totals, out, mean);
        st = gf_cuda_launched(ctx, "finish_sums_kernel");
    }
    gf_cuda_scratch_free(cu, partial);
    return st;
}

/* Every term into out (reduction "none"). */
template <typename F>
__global__ void each_term_kernel(F f, int64_t n, float *out)
{
    GF_CUDA_LOOP(i, n) {
        double w;
        out[i] = (float)f(i, &w);
    }
}

/* ---- class losses ---- */

__global__ void check_labels_kernel(const int64_t *labels, int64_t positions, int64_t c, int64_t ignore,
                                    gf_cuda_error *err, int site)
{
    GF_CUDA_LOOP(pos, positions) {
        int64_t l = labels[pos];
        if (l != ignore && (l < 0 || l >= c)) gf_cu_report(err, site, GF_CUDA_ERR_LABEL, pos, l, 0);
    }
}

/* Queues the label check; its errors name this node. */
static gf_status check_labels(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_class_loss *s)
{
    int64_t positions = s->n * s->d;
    if (positions == 0) return GF_OK;
    int site = gf_cuda_error_site(cu, ctx, s->target, s->c, s->ignore_index);
    if (site < 0) return gf_cuda_node_context(ctx, GF_ERR_NOMEM);
    check_labels_kernel<<<gf_cuda_blocks(positions), GF_CUDA_THREADS, 0, cu->stream>>>(
        s->labels, positions, s->c, s->ignore_index, cu->d_err, site);
    return gf_cuda_launched(ctx, "check_labels_kernel");
}

struct class_view {
    const int64_t *labels;
    const float *weight;
    int64_t c, d, ignore;
    __device__ double class_weight(int64_t k) const { return weight ? weight[k] : 1.0; }
    /* a label that is neither a class nor ignored was reported; it counts for nothing */
    __device__ int counts(int64_t t) const { return t != ignore && t >= 0 && t < c; }
    __device__ int64_t line_base(int64_t pos) const { return pos / d * c * d + pos % d; }
};

/* loss_train.c's cross_entropy_term: the log-softmax of one position (written when
 * log_prob is given), its loss, and its weight. */
struct ce_term {
    class_view v;
    const float *scores;
    float *log_prob;
    double smoothing;
    __device__ double operator()(int64_t pos, double *weight) const
    {
        int64_t base = v.line_base(pos), d = v.d;
        const float *x = scores + base;
        double max = -INFINITY, sum = 0, smooth = 0;
        for (int64_t k = 0; k < v.c; k++) max = fmax(max, (double)x[k * d]);
        for (int64_t k = 0; k < v.c; k++) sum += exp(x[k * d] - max);
        double shift = max + log(sum);
        for (int64_t k = 0; k < v.c; k++) {
            double lp = x[k * d] - shift;
            if (log_prob) log_prob[base + k * d] = (float)lp;
            smooth += v.class_weight(k) * lp;
        }
        int64_t t = v.labels[pos];
        *weight = v.counts(t) ? v.class_weight(t) : 0;
        if (!v.counts(t)) return 0;
        double nll = -*weight * (x[t * d] - shift);
        return (1 - smoothing) * nll - smoothing / (double)v.c * smooth;
    }
};

struct target_weight_term {
    class_view v;
    __device__ double operator()(int64_t pos, double *weight) const
    {
        int64_t t = v.labels[pos];
        *weight = v.counts(t) ? v.class_weight(t) : 0;
        return 0;
    }
};

struct class_weight_term {
    const float *weight;
    __device__ double operator()(int64_t k, double *w) const
    {
        *w = 0;
        return weight[k];
    }
};

static gf_status cross_entropy_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_class_loss s;
    gf_status st = gf_check_inputs(ctx, 2, 3);
    if (!st) st = gf_class_loss_read(ctx, 0, 1, &s);
    if (st) return gf_cuda_node_context(ctx, st);
    if ((st = check_labels(ctx, cu, &s))) return st;
    gf_tensor *log_prob = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    class_view v = {s.labels, s.weight, s.c, s.d, s.ignore_index};
    ce_term f = {v, s.scores, log_prob ? (float *)log_prob->data : NULL, s.smoothing};
    int64_t positions = s.n * s.d;
    float *out = (float *)ctx->outputs[0]->data;
    if (s.reduction == GF_REDUCTION_NONE) {
        if (positions == 0) return GF_OK;
        each_term_kernel<ce_term><<<gf_cuda_blocks(positions), GF_CUDA_THREADS, 0, cu->stream>>>(f, positions, out);
        return gf_cuda_launched(ctx, "each_term_kernel");
    }
    double *totals;
    if ((st = gf_cuda_scratch(ctx, cu, 2 * sizeof(double), (void **)&totals))) return st;
    st = sum_terms(ctx, cu, f, positions, totals, out, s.reduction == GF_REDUCTION_MEAN);
    gf_cuda_scratch_free(cu, totals);
    return st;
}

/* d loss / d scores[k] = g ((1 - e) w[t] (p[k] - [k == t]) + e / C (W p[k] - w[k])), 0 at
 * ignored positions: loss_train.c's cross_entropy_grad_cpu, per element. totals[0]: the
 * targets' weight ("mean"), totals[1] unused, totals[2]: W = the sum of the class weights. */
__global__ void cross_entropy_grad_kernel(class_view v, const float *dloss, int per_term, int mean,
                                          const double *totals, const float *log_prob, double smoothing, float *dx,
                                          int64_t n)
{
    GF_CUDA_LOOP(e, n) {
        int64_t k = e / v.d % v.c, pos = e / (v.c * v.d) * v.d + e % v.d, t = v.labels[pos];
        if (!v.counts(t)) {
            dx[e] = 0;
            continue;
        }
        double g = per_term ? (double)dloss[pos] : mean ? dloss[0] / totals[0] : (double)dloss[0];
        double wt = v.class_weight(t);
        double hard = g * (1 - smoothing) * wt, soft = g * smoothing / (double)v.c;
        double p = exp((double)log_prob[e]);
        dx[e] = (float)(hard * (p - (k == t)) + soft * (totals[2] * p - v.class_weight(k)));
    }
}

static gf_status cross_entropy_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_class_loss s;
    gf_status st = gf_check_inputs(ctx, 3, 4);
    if (!st) st = gf_class_loss_read(ctx, 1, 1, &s);
    if (!st) st = gf_loss_check_dloss(ctx->inputs[0], s.reduction, s.target->rank, s.target->dims);
    if (st) return gf_cuda_node_context(ctx, st);
    if ((st = check_labels(ctx, cu, &s))) return st;
    int64_t n = gf_tensor_numel(ctx->outputs[0]), positions = s.n * s.d;
    if (n == 0) return GF_OK;
    class_view v = {s.labels, s.weight, s.c, s.d, s.ignore_index};
    double *totals;
    if ((st = gf_cuda_scratch(ctx, cu, 4 * sizeof(double), (void **)&totals))) return st;
    /* "mean": the targets' weight, which sum_terms leaves in totals[1], moved to totals[0] */
    if (s.reduction == GF_REDUCTION_MEAN) {
        target_weight_term tw = {v};
        st = sum_terms(ctx, cu, tw, positions, totals, NULL, 0);
        if (!st) st = GF_CU(ctx, cudaMemcpyAsync(totals, totals + 1, sizeof(double), cudaMemcpyDeviceToDevice, cu->stream));
    }
    /* W, the class weights' sum, for the smoothing term: totals[2] */
    if (!st && s.weight) {
        class_weight_term cw = {s.weight};
        st = sum_terms(ctx, cu, cw, s.c, totals + 2, NULL, 0);
    } else if (!st) {
        double c = (double)s.c; /* staged by the driver before the call returns */
        st = GF_CU(ctx, cudaMemcpyAsync(totals + 2, &c, sizeof c, cudaMemcpyHostToDevice, cu->stream));
    }
    if (!st) {
        cross_entropy_grad_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
            v, (const float *)ctx->inputs[0]->data, s.reduction == GF_REDUCTION_NONE, s.reduction == GF_REDUCTION_MEAN,
            totals, s.scores, s.smoothing, (float *)ctx->outputs[0]->data, n);
        st = gf_cuda_launched(ctx, "cross_entropy_grad_kernel");
    }
    gf_cuda_scratch_free(cu, totals);
    return st;
}

/* ---- element-wise losses ---- */

enum { L_MSE, L_L1, L_BCE };

/* x, y of one shape; weight and pos_weight (BCE) read through broadcast strides: g.a
 * for weight, g.b for pos_weight, over x's dims. */
struct pointwise {
    const float *x, *y, *weight, *pos_weight;
    gf_cu_dims g;
    int kind;
    __device__ void weights(int64_t i, double *w, double *pw) const
    {
        int64_t ow, opw;
        gf_cu_offsets(g, i, &ow, &opw);
        *w = weight ? (double)weight[ow] : 1.0;
        *pw = pos_weight ? (double)pos_weight[opw] : 1.0;
    }
    __device__ double term(int64_t i) const
    {
        if (kind == L_MSE) {
            double d = (double)x[i] - y[i];
            return d * d;
        }
        if (kind == L_L1) return fabs((double)x[i] - y[i]);
        double xv = x[i], yv = y[i], w, pw;
        weights(i, &w, &pw);
        double log_weight = 1 + (pw - 1) * yv;
        double softplus_neg = fmax(-xv, 0.0) + log1p(exp(-fabs(xv)));
        return w * ((1 - yv) * xv + log_weight * softplus_neg);
    }
    __device__ double slope(int64_t i) const
    {
        if (kind == L_MSE) return 2 * ((double)x[i] - y[i]);
        if (kind == L_L1) {
            double d = (double)x[i] - y[i];
            return (d > 0) - (d < 0);
        }
        double yv = y[i], w, pw;
        weights(i, &w, &pw);
        double pw_y = pw * yv;
        return w * ((pw_y + 1 - yv) * (1 / (1 + exp(-(double)x[i]))) - pw_y);
    }
    __device__ double operator()(int64_t i, double *weight_out) const
    {
        *weight_out = 1;
        return term(i);
    }
};

static int kind_of(const char *op_type)
{
    return !strncmp(op_type, "MSE", 3) ? L_MSE : !strncmp(op_type, "L1", 2) ? L_L1 : L_BCE;
}

static gf_status read_pointwise(const gf_op_ctx *ctx, int first, pointwise *p, gf_loss_reduction *r)
{
    gf_status st = gf_pointwise_loss_check(ctx, first, r);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[first];
    const gf_tensor *weight = optional_input(ctx, first + 2), *pos_weight = optional_input(ctx, first + 3);
    memset(p, 0, sizeof *p);
    p->x = (const float *)x->data;
    p->y = (const float *)ctx->inputs[first + 1]->data;
    p->weight = weight ? (const float *)weight->data : NULL;
    p->pos_weight = pos_weight ? (const float *)pos_weight->data : NULL;
    p->kind = kind_of(ctx->node->op_type);
    p->g.rank = x->rank > 0 ? x->rank : 1;
    if (x->rank == 0) {
        p->g.dims[0] = 1;
        p->g.a[0] = p->g.b[0] = 0;
    } else {
        for (int d = 0; d < x->rank; d++) p->g.dims[d] = x->dims[d];
        if (weight) gf_broadcast_strides(weight, x->rank, x->dims, p->g.a);
        else memset(p->g.a, 0, sizeof p->g.a);
        if (pos_weight) gf_broadcast_strides(pos_weight, x->rank, x->dims, p->g.b);
        else memset(p->g.b, 0, sizeof p->g.b);
    }
    return GF_OK;
}

static gf_status pointwise_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    pointwise p;
    gf_loss_reduction r;
    int bce = kind_of(ctx->node->op_type) == L_BCE;
    gf_status st = gf_check_inputs(ctx, 2, bce ? 4 : 2);
    if (!st) st = read_pointwise(ctx, 0, &p, &r);
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t count = gf_tensor_numel(ctx->inputs[0]);
    float *out = (float *)ctx->outputs[0]->data;
    if (r == GF_REDUCTION_NONE) {
        if (count == 0) return GF_OK;
        each_term_kernel<pointwise><<<gf_cuda_blocks(count), GF_CUDA_THREADS, 0, cu->stream>>>(p, count, out);
        return gf_cuda_launched(ctx, "each_term_kernel");
    }
    double *totals;
    if ((st = gf_cuda_scratch(ctx, cu, 2 * sizeof(double), (void **)&totals))) return st;
    st = sum_terms(ctx, cu, p, count, totals, out, r == GF_REDUCTION_MEAN);
    gf_cuda_scratch_free(cu, totals);
    return st;
}

/* dx[i] = seed * slope(i): seed dloss[i] ("none"), dloss[0] ("sum"), dloss[0] / count ("mean"). */
__global__ void pointwise_grad_kernel(pointwise p, const float *dloss, int per_term, int mean, double count, float *dx,
                                      int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        double seed = per_term ? (double)dloss[i] : mean ? dloss[0] / count : (double)dloss[0];
        dx[i] = (float)(seed * p.slope(i));
    }
}

static gf_status pointwise_grad_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    pointwise p;
    gf_loss_reduction r;
    int bce = kind_of(ctx->node->op_type) == L_BCE;
    gf_status st = gf_check_inputs(ctx, 3, bce ? 5 : 3);
    if (!st) st = read_pointwise(ctx, 1, &p, &r);
    if (!st) st = gf_loss_check_dloss(ctx->inputs[0], r, ctx->inputs[1]->rank, ctx->inputs[1]->dims);
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t count = gf_tensor_numel(ctx->inputs[1]);
    if (count == 0) return GF_OK;
    pointwise_grad_kernel<<<gf_cuda_blocks(count), GF_CUDA_THREADS, 0, cu->stream>>>(
        p, (const float *)ctx->inputs[0]->data, r == GF_REDUCTION_NONE, r == GF_REDUCTION_MEAN, (double)count,
        (float *)ctx->outputs[0]->data, count);
    return gf_cuda_launched(ctx, "pointwise_grad_kernel");
}

static gf_status floats_but_target(gf_op_ctx *ctx)
{
    /* every input float32 but the class losses' int64 target, which gf_class_loss_read checks */
    int ce = !strncmp(ctx->node->op_type, "CrossEntropy", 12), grad = strstr(ctx->node->op_type, "Grad") != NULL;
    int target = ce ? (grad ? 2 : 1) : -1;
    for (int i = 0; i < ctx->n_inputs; i++)
        if (i != target) {
            gf_status st = gf_cuda_check_float(ctx, i, i + 1);
            if (st) return st;
        }
    return GF_OK;
}

extern "C" const gf_cuda_op gf_cuda_ops_loss_train[] = {
    {"ai.graft", "CrossEntropyLoss", 1, 0, cross_entropy_cuda, floats_but_target, 0},
    {"ai.graft", "CrossEntropyLossGrad", 1, 0, cross_entropy_grad_cuda, floats_but_target, 0},
    {"ai.graft", "MSELoss", 1, 0, pointwise_cuda, floats_but_target, 0},
    {"ai.graft", "MSELossGrad", 1, 0, pointwise_grad_cuda, floats_but_target, 0},
    {"ai.graft", "L1Loss", 1, 0, pointwise_cuda, floats_but_target, 0},
    {"ai.graft", "L1LossGrad", 1, 0, pointwise_grad_cuda, floats_but_target, 0},
    {"ai.graft", "BCEWithLogitsLoss", 1, 0, pointwise_cuda, floats_but_target, 0},
    {"ai.graft", "BCEWithLogitsLossGrad", 1, 0, pointwise_grad_cuda, floats_but_target, 0},
    {0},
};
