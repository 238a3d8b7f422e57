/* SGDStep, AdamStep, RMSpropStep, GradNorm and ClipGradScale (domain ai.graft) on the
 * GPU (twin: ops/optimizer.c).
 *
 * The steps are the reference's element loops with the same float32 rounding: fmaf
 * where it has fmaf, in the same operand order, and no other contraction (-fmad=false),
 * so the new parameters and state are the CPU's bits. lr and step are host inputs: the
 * scalars torch computes in double (bias corrections, 1 - beta) are computed on the host
 * exactly as the reference does. Every element's state is read before its new value is
 * written, so new values may be written over the state they replace. GradNorm sums
 * squares in double in an order fixed by the shapes; ClipGradScale reads the norm on
 * the device, so clipping needs no trip to the host. */
#include "cuda_util.cuh"

#include "../optimizer.h"

#include <math.h>
#include <string.h>

static const float *in_data(const gf_op_ctx *ctx, int i)
{
    return i < ctx->n_inputs && ctx->inputs[i] ? (const float *)ctx->inputs[i]->data : NULL;
}

static float *out_data(const gf_op_ctx *ctx, int o)
{
    return o < ctx->n_outputs && ctx->outputs[o] ? (float *)ctx->outputs[o]->data : NULL;
}

/* Host inputs: lr (float32) and step (int64). */
static float scalar_in(const gf_op_ctx *ctx, int i) { return *(const float *)ctx->inputs[i]->data; }

static gf_status check_scalars(const gf_op_ctx *ctx, int lr, int step)
{
    if (lr >= ctx->n_inputs || !ctx->inputs[lr] || ctx->inputs[lr]->dtype != GF_FLOAT ||
        gf_tensor_numel(ctx->inputs[lr]) != 1 || !ctx->inputs[lr]->data)
        return gf_fail(GF_ERR_INVALID, "input %d (lr) must be a float32 scalar in host memory", lr);
    if (step >= 0 && (step >= ctx->n_inputs || !ctx->inputs[step] || ctx->inputs[step]->dtype != GF_INT64 ||
                      gf_tensor_numel(ctx->inputs[step]) != 1 || !ctx->inputs[step]->data))
        return gf_fail(GF_ERR_INVALID, "input %d (step) must be an int64 scalar in host memory", step);
    return GF_OK;
}

/* An output that repeats its input, for state the attributes switch off. */
static gf_status pass_through(const gf_op_ctx *ctx, gf_cuda_ctx *cu, int o, int i)
{
    float *out = out_data(ctx, o);
    const float *in = in_data(ctx, i);
    if (!out || !in || out == in) return GF_OK;
    return gf_cuda_copy_bytes(ctx, cu, out, in, gf_tensor_nbytes(ctx->inputs[i]));
}

/* ---- SGD ---- */

enum { SGD_PARAM, SGD_GRAD, SGD_BUF, SGD_LR, SGD_STEP };

__global__ void sgd_kernel(const float *param, const float *grad, const float *buf, float *param_out, float *buf_out,
                           float m, float keep, float wd, float neg_lr, int use_momentum, int nesterov, int first,
                           int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        float p = param[i], d = grad[i];
        if (wd != 0) d = fmaf(p, wd, d);
        if (use_momentum) {
            float b = first ? d : fmaf(d, keep, buf[i] * m);
            if (buf_out) buf_out[i] = b;
            d = nesterov ? fmaf(b, m, d) : b;
        }
        param_out[i] = fmaf(d, neg_lr, p);
    }
}

static gf_status sgd_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int64_t step;
    gf_status st = check_scalars(ctx, SGD_LR, SGD_STEP);
    if (!st) st = gf_optimizer_step(ctx, SGD_STEP, &step);
    if (st) return gf_cuda_node_context(ctx, st);
    double momentum = gf_attr_decimal(ctx->node, "momentum", 0);
    const float m = (float)momentum, keep = (float)(1 - gf_attr_decimal(ctx->node, "dampening", 0));
    const float wd = (float)gf_attr_decimal(ctx->node, "weight_decay", 0), neg_lr = -scalar_in(ctx, SGD_LR);
    const int nesterov = gf_attr_int(ctx->node, "nesterov", 0) != 0, first = step == 1;
    int64_t n = gf_tensor_numel(ctx->inputs[SGD_PARAM]);
    if (momentum == 0 && (st = pass_through(ctx, cu, 1, SGD_BUF))) return st;
    if (momentum != 0 && !in_data(ctx, SGD_BUF))
        return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "input 2 (momentum_buf) is required when momentum is not 0");
    if (n == 0) return GF_OK;
    sgd_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
        in_data(ctx, SGD_PARAM), in_data(ctx, SGD_GRAD), in_data(ctx, SGD_BUF), out_data(ctx, 0),
        momentum != 0 ? out_data(ctx, 1) : NULL, m, keep, wd, neg_lr, momentum != 0, nesterov, first, n);
    return gf_cuda_launched(ctx, "sgd_kernel");
}

/* ---- Adam, AdamW ---- */

enum { ADAM_PARAM, ADAM_GRAD, ADAM_AVG, ADAM_AVG_SQ, ADAM_LR, ADAM_STEP, ADAM_MAX_AVG_SQ };

__device__ inline float max_nan(float a, float b) { return isnan(a) || a > b ? a : b; }

struct adam_consts {
    float b1, b2, keep1, keep2, eps, wd, decay, bc2_sqrt, neg_step_size;
    int decoupled, amsgrad;
};

__global__ void adam_kernel(const float *param, const float *grad, const float *avg, const float *avg_sq,
                            const float *max_sq, float *param_out, float *avg_out, float *avg_sq_out, float *max_sq_out,
                            adam_consts k, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        float p = param[i], g = grad[i];
        if (k.decoupled) p *= k.decay;
        else if (k.wd != 0) g = fmaf(p, k.wd, g);
        float m = fmaf(g, k.keep1, avg[i] * k.b1);
        float v = fmaf(k.keep2 * g, g, avg_sq[i] * k.b2);
        float v_max = k.amsgrad ? max_nan(max_sq[i], v) : v;
        if (k.amsgrad && max_sq_out) max_sq_out[i] = v_max;
        if (avg_out) avg_out[i] = m;
        if (avg_sq_out) avg_sq_out[i] = v;
        param_out[i] = p + k.neg_step_size * m / (sqrtf(v_max) / k.bc2_sqrt + k.eps);
    }
}

static gf_status adam_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int64_t step;
    gf_status st = check_scalars(ctx, ADAM_LR, ADAM_STEP);
    if (!st) st = gf_optimizer_step(ctx, ADAM_STEP, &step);
    if (st) return gf_cuda_node_context(ctx, st);
    const gf_node *node = ctx->node;
    double beta1 = gf_attr_decimal(node, "beta1", 0.9), beta2 = gf_attr_decimal(node, "beta2", 0.999);
    double weight_decay = gf_attr_decimal(node, "weight_decay", 0), lr = scalar_in(ctx, ADAM_LR);
    adam_consts k;
    k.decoupled = gf_attr_int(node, "decoupled", 0) != 0;
    k.amsgrad = gf_attr_int(node, "amsgrad", 0) != 0;
    k.b1 = (float)beta1;
    k.b2 = (float)beta2;
    k.keep1 = (float)(1 - beta1);
    k.keep2 = (float)(1 - beta2);
    k.eps = (float)gf_attr_decimal(node, "epsilon", 1e-8);
    k.wd = (float)weight_decay;
    k.decay = (float)(1 - lr * weight_decay);
    k.bc2_sqrt = (float)sqrt(1 - pow(beta2, (double)step));
    k.neg_step_size = (float)-(lr / (1 - pow(beta1, (double)step)));
    if (k.amsgrad && !in_data(ctx, ADAM_MAX_AVG_SQ))
        return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "input 6 (max_exp_avg_sq) is required when amsgrad is set");
    if (!k.amsgrad && (st = pass_through(ctx, cu, 3, ADAM_MAX_AVG_SQ))) return st;
    int64_t n = gf_tensor_numel(ctx->inputs[ADAM_PARAM]);
    if (n == 0) return GF_OK;
    adam_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
        in_data(ctx, ADAM_PARAM), in_data(ctx, ADAM_GRAD), in_data(ctx, ADAM_AVG), in_data(ctx, ADAM_AVG_SQ),
        in_data(ctx, ADAM_MAX_AVG_SQ), out_data(ctx, 0), out_data(ctx, 1), out_data(ctx, 2), out_data(ctx, 3), k, n);
    return gf_cuda_launched(ctx, "adam_kernel");
}

/* ---- RMSprop ---- */

enum { RMS_PARAM, RMS_GRAD, RMS_SQUARE_AVG, RMS_LR, RMS_BUF, RMS_GRAD_AVG };

struct rms_consts {
    float a, keep, m, eps, wd, neg_lr;
    int centered, use_momentum;
};

__global__ void rmsprop_kernel(const float *param, const float *grad, const float *square_avg, const float *buf,
                               const float *grad_avg, float *param_out, float *square_avg_out, float *buf_out,
                               float *grad_avg_out, rms_consts k, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        float p = param[i], g = grad[i];
        if (k.wd != 0) g = fmaf(p, k.wd, g);
        float sq = fmaf(k.keep * g, g, square_avg[i] * k.a);
        float avg;
        if (k.centered) {
            float ga = fmaf(g, k.keep, grad_avg[i] * k.a);
            if (grad_avg_out) grad_avg_out[i] = ga;
            avg = sqrtf(fmaf(-ga, ga, sq));
        } else {
            avg = sqrtf(sq);
        }
        avg += k.eps;
        if (square_avg_out) square_avg_out[i] = sq;
        if (k.use_momentum) {
            float b = buf[i] * k.m + g / avg;
            if (buf_out) buf_out[i] = b;
            param_out[i] = fmaf(b, k.neg_lr, p);
        } else {
            param_out[i] = p + k.neg_lr * g / avg;
        }
    }
}

static gf_status rmsprop_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = check_scalars(ctx, RMS_LR, -1);
    if (st) return gf_cuda_node_context(ctx, st);
    const gf_node *node = ctx->node;
    double alpha = gf_attr_decimal(node, "alpha", 0.99), momentum = gf_attr_decimal(node, "momentum", 0);
    rms_consts k;
    k.a = (float)alpha;
    k.keep = (float)(1 - alpha);
    k.m = (float)momentum;
    k.eps = (float)gf_attr_decimal(node, "epsilon", 1e-8);
    k.wd = (float)gf_attr_decimal(node, "weight_decay", 0);
    k.neg_lr = -scalar_in(ctx, RMS_LR);
    k.centered = gf_attr_int(node, "centered", 0) != 0;
    k.use_momentum = momentum > 0;
    if (k.use_momentum && !in_data(ctx, RMS_BUF))
        return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "input 4 (momentum_buf) is required when momentum is above 0");
    if (k.centered && !in_data(ctx, RMS_GRAD_AVG))
        return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "input 5 (grad_avg) is required when centered is set");
    if (!k.use_momentum && (st = pass_through(ctx, cu, 2, RMS_BUF))) return st;
    if (!k.centered && (st = pass_through(ctx, cu, 3, RMS_GRAD_AVG))) return st;
    int64_t n = gf_tensor_numel(ctx->inputs[RMS_PARAM]);
    if (n == 0) return GF_OK;
    rmsprop_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(
        in_data(ctx, RMS_PARAM), in_data(ctx, RMS_GRAD), in_data(ctx, RMS_SQUARE_AVG), in_data(ctx, RMS_BUF),
        in_data(ctx, RMS_GRAD_AVG), out_data(ctx, 0), out_data(ctx, 1), k.use_momentum ? out_data(ctx, 2) : NULL,
        k.centered ? out_data(ctx, 3) : NULL, k, n);
    return gf_cuda_launched(ctx, "rmsprop_kernel");
}

/* ---- GradNorm, ClipGradScale ---- */

#define NORM_THREADS 256
#define NORM_ELEMENTS 65536 /* per block: the split depends on the sizes alone */

static int64_t norm_blocks(int64_t n) { return n > 0 ? (n + NORM_ELEMENTS - 1) / NORM_ELEMENTS : 0; }

__global__ void square_sums_kernel(const float *g, int64_t n, double *partial)
{
    int64_t lo = (int64_t)blockIdx.x * NORM_ELEMENTS, hi = lo + NORM_ELEMENTS < n ? lo + NORM_ELEMENTS : n;
    double s = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)g[i] * g[i];
    s = gf_cu_block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void norm_finish_kernel(const double *partial, int64_t n, float *out)
{
    if (blockIdx.x || threadIdx.x) return;
    double total = 0;
    for (int64_t b = 0; b < n; b++) total += partial[b];
    out[0] = (float)sqrt(total);
}

static gf_status grad_norm_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    if (ctx->n_inputs < 1) return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "expects at least one gradient");
    gf_status st = gf_cuda_check_float(ctx, 0, ctx->n_inputs);
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t total = 0;
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (!ctx->inputs[i]) return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "input %d is omitted; every input is a gradient", i);
        total += norm_blocks(gf_tensor_numel(ctx->inputs[i]));
    }
    double *partial;
    if ((st = gf_cuda_scratch(ctx, cu, (size_t)(total ? total : 1) * sizeof *partial, (void **)&partial))) return st;
    int64_t at = 0;
    for (int i = 0; i < ctx->n_inputs && !st; i++) {
        int64_t n = gf_tensor_numel(ctx->inputs[i]), blocks = norm_blocks(n);
        if (!blocks) continue;
        for (int64_t b0 = 0; b0 < blocks && !st; b0 += 65535) {
            int64_t part = blocks - b0 < 65535 ? blocks - b0 : 65535;
            square_sums_kernel<<<(unsigned)part, NORM_THREADS, 0, cu->stream>>>(
                (const float *)ctx->inputs[i]->data + b0 * NORM_ELEMENTS, n - b0 * NORM_ELEMENTS, partial + at + b0);
            st = gf_cuda_launched(ctx, "square_sums_kernel");
        }
        at += blocks;
    }
    if (!st) {
        norm_finish_kernel<<<1, 32, 0, cu->stream>>>(partial, total, (float *)ctx->outputs[0]->data);
        st = gf_cuda_launched(ctx, "norm_finish_kernel");
    }
    gf_cuda_scratch_free(cu, partial);
    return st;
}

/* As torch.nn.utils.clip_grad_norm_ in float32 (optimizer.c's clip_scale_cpu). */
__global__ void clip_scale_kernel(const float *norm, float max_norm, float *out)
{
    if (blockIdx.x || threadIdx.x) return;
    float scale = 1.0f / (norm[0] + 1e-6f) * max_norm;
    out[0] = scale > 1.0f ? 1.0f : scale;
}

static gf_status clip_scale_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (!st && !gf_node_attr(ctx->node, "max_norm")) st = gf_fail(GF_ERR_INVALID, "attribute max_norm is required");
    if (st) return gf_cuda_node_context(ctx, st);
    float max_norm = (float)gf_attr_decimal(ctx->node, "max_norm", 0);
    clip_scale_kernel<<<1, 32, 0, cu->stream>>>((const float *)ctx->inputs[0]->data, max_norm,
                                                (float *)ctx->outputs[0]->data);
    return gf_cuda_launched(ctx, "clip_scale_kernel");
}

static gf_status step_check(gf_op_ctx *ctx)
{
    /* the tensors (param, grad, state) float32 on the device; lr and step checked when running */
    const char *op = ctx->node->op_type;
    int lr = (int)RMS_LR, step = -1;
    if (!strcmp(op, "AdamStep")) lr = (int)ADAM_LR, step = (int)ADAM_STEP;
    else if (!strcmp(op, "SGDStep")) lr = (int)SGD_LR, step = (int)SGD_STEP;
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (i == lr || i == step) continue;
        gf_status st = gf_cuda_check_float(ctx, i, i + 1);
        if (st) return st;
    }
    return GF_OK;
}

static gf_status all_float(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, ctx->n_inputs); }

extern "C" const gf_cuda_op gf_cuda_ops_optimizer[] = {
    {"ai.graft", "SGDStep", 1, 0, sgd_cuda, step_check, GF_CUDA_HOST(SGD_LR) | GF_CUDA_HOST(SGD_STEP)},
    {"ai.graft", "AdamStep", 1, 0, adam_cuda, step_check, GF_CUDA_HOST(ADAM_LR) | GF_CUDA_HOST(ADAM_STEP)},
    {"ai.graft", "RMSpropStep", 1, 0, rmsprop_cuda, step_check, GF_CUDA_HOST(RMS_LR)},
    {"ai.graft", "GradNorm", 1, 0, grad_norm_cuda, all_float, 0},
    {"ai.graft", "ClipGradScale", 1, 0, clip_scale_cuda, all_float, 0},
    {0},
};
