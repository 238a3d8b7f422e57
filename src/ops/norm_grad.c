/* Batch normalization in training mode and its gradient (domain ai.graft), float32.
 *
 *   BatchNormTrain(X, scale, B, running_mean, running_var)
 *       -> (Y, saved_mean, saved_invstd, running_mean_new, running_var_new)
 *     attributes epsilon (1e-5) and momentum (0.9). X is N x C x spatial dims (rank >= 2),
 *     the other inputs have C elements. Per channel, over the count = N x spatial values:
 *       mean, var = the batch mean and biased variance
 *       saved_mean = mean, saved_invstd = 1 / sqrt(var + epsilon)
 *       Y = (X - mean) * saved_invstd * scale + B
 *       running_mean_new = running_mean * momentum + mean * (1 - momentum)
 *       running_var_new = running_var * momentum + var * count / (count - 1) * (1 - momentum)
 *     (the running variance takes the unbiased batch variance, as PyTorch's BatchNorm does in
 *     training). A channel needs more than one value.
 *
 *   BatchNormGrad(dY, X, scale, saved_mean, saved_invstd) -> (dX, dScale, dBias)
 *     with xhat = (X - saved_mean) * saved_invstd, per channel:
 *       dBias = sum dY, dScale = sum dY * xhat
 *       dX = scale * saved_invstd * (dY - dBias / count - xhat * dScale / count)
 *
 * Every output may be omitted; an omitted one is not computed.
 *
 * Both ops read X (and dY) twice at most: once for per-channel sums, once to write Y or dX.
 * The sums are taken in double by one thread per channel in a fixed order, so results do
 * not depend on the thread count, over the values minus a shift near the channel's mean
 * (its first value; saved_mean in the gradient), so that the variance does not cancel.
 * Each sum runs in LANES partial sums, a loop the compiler vectorizes without reordering
 * additions. */
#include "norm_grad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8
#define PARALLEL_MIN 32768
#define CHANNEL_BLOCK 256  /* channels a thread sums at once when X is N x C */

static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};

static int64_t bn_count(const gf_bn_shape *s) { return s->n * s->inner; }

static gf_status check_floats(const gf_op_ctx *ctx)
{
    gf_status st = GF_OK;
    for (int i = 0; i < ctx->n_inputs && !st; i++) st = gf_check_dtype(ctx, i, float_only);
    return st;
}

/* Reads X's shape (input x_index) and checks that the inputs from first_channel_input
 * on have one element per channel; `names` names every input. */
static gf_status bn_shape_of(const gf_op_ctx *ctx, int x_index, int first_channel_input, const char *const *names,
                             gf_bn_shape *s)
{
    const gf_tensor *x = ctx->inputs[x_index];
    if (x->rank < 2)
        return gf_fail(GF_ERR_SHAPE, "input X has rank %d; it needs N x C x spatial dims", x->rank);
    s->n = x->dims[0];
    s->c = x->dims[1];
    s->inner = 1;
    for (int d = 2; d < x->rank; d++) s->inner *= x->dims[d];
    for (int i = first_channel_input; i < ctx->n_inputs; i++)
        if (gf_tensor_numel(ctx->inputs[i]) != s->c)
            return gf_fail(GF_ERR_SHAPE, "input %s has %lld elements, X has %lld channels", names[i],
                           (long long)gf_tensor_numel(ctx->inputs[i]), (long long)s->c);
    return GF_OK;
}

static const char *const train_inputs[] = {"X", "scale", "B", "running_mean", "running_var"};
static const char *const grad_inputs[] = {"dY", "X", "scale", "saved_mean", "saved_invstd"};

gf_status gf_bn_read_shape(const gf_op_ctx *ctx, int grad, gf_bn_shape *s)
{
    int x = grad != 0; /* dY comes first in the gradient */
    gf_status st = gf_check_inputs(ctx, 5, 5);
    if (!st) st = check_floats(ctx);
    return st ? st : bn_shape_of(ctx, x, x + 1, x ? grad_inputs : train_inputs, s);
}

/* ---- the two passes ---- */

/* Per-channel sums over X's values x, with d = x - shift[c]. Without dY:
 * first = sum d, second = sum d * d; with dY: first = sum dy, second = sum dy * d. */
typedef struct channel_sums {
    const double *shift;
    double *first, *second;
} channel_sums;

/* Adds one row of len values into the lane sums. */
GF_SIMD_CLONES static void sum_row(const float *x, const float *dy, int64_t len, double shift, double first[LANES],
                    double second[LANES])
{
    int64_t full = len - len % LANES;
    if (dy) {
        for (int64_t i = 0; i < full; i += LANES)
            for (int j = 0; j < LANES; j++) {
                double d = x[i + j] - shift;
                first[j] += dy[i + j];
                second[j] += dy[i + j] * d;
            }
    } else {
        for (int64_t i = 0; i < full; i += LANES)
            for (int j = 0; j < LANES; j++) {
                double d = x[i + j] - shift;
                first[j] += d;
                second[j] += d * d;
            }
    }
    for (int64_t i = full; i < len; i++) {
        double d = x[i] - shift, w = dy ? dy[i] : d;
        first[i - full] += w;
        second[i - full] += w * d;
    }
}

/* X is [n, c, inner] with inner > 1: each channel's rows, lane by lane. */
static void sum_channels_by_rows(const gf_bn_shape *s, const float *x, const float *dy, const channel_sums *out)
{
    #pragma omp parallel for schedule(static) if (s->n * s->c * s->inner > PARALLEL_MIN)
    for (int64_t c = 0; c < s->c; c++) {
        double first[LANES] = {0}, second[LANES] = {0};
        for (int64_t n = 0; n < s->n; n++) {
            int64_t at = (n * s->c + c) * s->inner;
            sum_row(x + at, dy ? dy + at : NULL, s->inner, out->shift[c], first, second);
        }
        double f = 0, q = 0;
        for (int j = 0; j < LANES; j++) f += first[j], q += second[j];
        out->first[c] = f;
        out->second[c] = q;
    }
}

/* X is [n, c] (inner is 1): blocks of channels, each summed along the rows across its
 * channels, so that the loop runs over contiguous values. */
static void sum_channels_by_columns(const gf_bn_shape *s, const float *x, const float *dy, const channel_sums *out)
{
    int64_t blocks = (s->c + CHANNEL_BLOCK - 1) / CHANNEL_BLOCK;
    #pragma omp parallel for schedule(static) if (s->n * s->c > PARALLEL_MIN)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t c0 = b * CHANNEL_BLOCK, len = s->c - c0 < CHANNEL_BLOCK ? s->c - c0 : CHANNEL_BLOCK;
        const double *shift = out->shift + c0;
        double *first = out->first + c0, *second = out->second + c0;
        for (int64_t j = 0; j < len; j++) first[j] = second[j] = 0;
        for (int64_t n = 0; n < s->n; n++) {
            const float *xr = x + n * s->c + c0, *dyr = dy ? dy + n * s->c + c0 : NULL;
            for (int64_t j = 0; j < len; j++) {
                double d = xr[j] - shift[j], w = dyr ? dyr[j] : d;
                first[j] += w;
                second[j] += w * d;
            }
        }
    }
}

/* X blocked (N x C/b x inner x b, op.h): b channels at a time, each position's b values
 * side by side. Every channel's values go to the lanes they take in sum_row (position mod
 * LANES) in the same order, so the sums are those of the plain layout, bit for bit. */
GF_SIMD_CLONES static void sum_channel_block(const gf_bn_shape *s, const float *x, const float *dy, int64_t cb,
                                             const channel_sums *out)
{
    int64_t b = gf_layout_block(), blocks = s->c / b;
    double first[LANES][16], second[LANES][16], shift[16];
    for (int64_t j = 0; j < b; j++) shift[j] = out->shift[cb * b + j];
    for (int l = 0; l < LANES; l++)
        for (int64_t j = 0; j < 16; j++) first[l][j] = second[l][j] = 0;
    for (int64_t n = 0; n < s->n; n++) {
        int64_t at = (n * blocks + cb) * s->inner * b;
        const float *xs = x + at, *dys = dy ? dy + at : NULL;
        for (int64_t i = 0; i < s->inner; i++) {
            int l = (int)(i % LANES); /* sum_row's lane */
            const float *xr = xs + i * b, *dyr = dys ? dys + i * b : NULL;
            if (dyr)
                for (int64_t j = 0; j < b; j++) {
                    double d = xr[j] - shift[j];
                    first[l][j] += dyr[j];
                    second[l][j] += dyr[j] * d;
                }
            else
                for (int64_t j = 0; j < b; j++) {
                    double d = xr[j] - shift[j];
                    first[l][j] += d;
                    second[l][j] += d * d;
                }
        }
    }
    for (int64_t j = 0; j < b; j++) {
        double f = 0, q = 0;
        for (int l = 0; l < LANES; l++) f += first[l][j], q += second[l][j];
        out->first[cb * b + j] = f;
        out->second[cb * b + j] = q;
    }
}

static void sum_channels_blocked(const gf_bn_shape *s, const float *x, const float *dy, const channel_sums *out)
{
    int64_t blocks = s->c / gf_layout_block();
    #pragma omp parallel for schedule(static) if (s->n * s->c * s->inner > PARALLEL_MIN)
    for (int64_t cb = 0; cb < blocks; cb++) sum_channel_block(s, x, dy, cb, out);
}

static void sum_channels(const gf_bn_shape *s, int layout, const float *x, const float *dy, const channel_sums *out)
{
    if (layout == GF_LAYOUT_BLOCKED) sum_channels_blocked(s, x, dy, out);
    else if (s->inner == 1) sum_channels_by_columns(s, x, dy, out);
    else sum_channels_by_rows(s, x, dy, out);
}

/* Per channel: out = ((x - shift) - delta) * slope + offset, plus dy * dy_slope when dY is
 * given. Centering in two steps keeps Y exact when the mean is far from zero: x - shift is
 * exact for values near the shift (a value of X), and delta = mean - shift is small, so
 * float32 holds it closely where it could not hold the mean itself. */
typedef struct channel_affine {
    float *shift, *delta, *slope, *offset, *dy_slope;
} channel_affine;

/* One image's channel block of a blocked X (and dY). Y may be X's or dY's storage:
 * each element is read before it is written, at the same index. */
GF_SIMD_CLONES static void map_channel_block(const gf_bn_shape *s, const float *x, const float *dy,
                                             const channel_affine *f, int64_t nb, float *out)
{
    int64_t b = gf_layout_block(), blocks = s->c / b, c0 = nb % blocks * b;
    float shift[16], delta[16], slope[16], offset[16], dy_slope[16];
    for (int64_t j = 0; j < b; j++) {
        shift[j] = f->shift[c0 + j];
        delta[j] = f->delta[c0 + j];
        slope[j] = f->slope[c0 + j];
        offset[j] = f->offset[c0 + j];
        dy_slope[j] = dy ? f->dy_slope[c0 + j] : 0.0f;
    }
    const float *xr = x + nb * s->inner * b, *dyr = dy ? dy + nb * s->inner * b : NULL;
    float *o = out + nb * s->inner * b;
    for (int64_t i = 0; i < s->inner; i++)
        if (dyr) {
            #pragma omp simd
            for (int64_t j = 0; j < b; j++)
                o[i * b + j] = (xr[i * b + j] - shift[j] - delta[j]) * slope[j] + offset[j] + dyr[i * b + j] * dy_slope[j];
        } else {
            #pragma omp simd
            for (int64_t j = 0; j < b; j++)
                o[i * b + j] = (xr[i * b + j] - shift[j] - delta[j]) * slope[j] + offset[j] + 0.0f;
        }
}

static void map_channels(const gf_bn_shape *s, int layout, const float *x, const float *dy, const channel_affine *f,
                         float *out)
{
    if (layout == GF_LAYOUT_BLOCKED) {
        int64_t blocks = s->c / gf_layout_block();
        #pragma omp parallel for schedule(static) if (s->n * s->c * s->inner > PARALLEL_MIN)
        for (int64_t nb = 0; nb < s->n * blocks; nb++) map_channel_block(s, x, dy, f, nb, out);
        return;
    }
    if (s->inner == 1) {
        #pragma omp parallel for schedule(static) if (s->n * s->c > PARALLEL_MIN)
        for (int64_t n = 0; n < s->n; n++) {
            const float *xr = x + n * s->c, *dyr = dy ? dy + n * s->c : NULL;
            float *o = out + n * s->c;
            for (int64_t c = 0; c < s->c; c++)
                o[c] = (xr[c] - f->shift[c] - f->delta[c]) * f->slope[c] + f->offset[c] +
                       (dyr ? dyr[c] * f->dy_slope[c] : 0.0f);
        }
        return;
    }
    #pragma omp parallel for schedule(static) if (s->n * s->c * s->inner > PARALLEL_MIN)
    for (int64_t nc = 0; nc < s->n * s->c; nc++) {
        int64_t c = nc % s->c;
        float shift = f->shift[c], delta = f->delta[c], slope = f->slope[c], offset = f->offset[c];
        float dy_slope = dy ? f->dy_slope[c] : 0.0f;
        const float *xr = x + nc * s->inner, *dyr = dy ? dy + nc * s->inner : NULL;
        float *o = out + nc * s->inner;
        for (int64_t i = 0; i < s->inner; i++)
            o[i] = (xr[i] - shift - delta) * slope + offset + (dyr ? dyr[i] * dy_slope : 0.0f);
    }
}

/* Per-channel scratch: the sums (double) and the affine map (float), in one block. */
typedef struct bn_scratch {
    double *shift;
    channel_sums sums;
    channel_affine map;
} bn_scratch;

static gf_status scratch_new(bn_scratch *w, int64_t c)
{
    size_t n = (size_t)c + 1;
    double *d = malloc(n * (3 * sizeof(double) + 5 * sizeof(float)));
    if (!d) return gf_fail(GF_ERR_NOMEM, "out of memory for the statistics of %lld channels", (long long)c);
    float *f = (float *)(d + 3 * n);
    w->shift = d;
    w->sums = (channel_sums){d, d + n, d + 2 * n};
    w->map = (channel_affine){f, f + n, f + 2 * n, f + 3 * n, f + 4 * n};
    return GF_OK;
}

static void scratch_free(bn_scratch *w) { free(w->shift); }

static float *output_data(const gf_op_ctx *ctx, int i)
{
    return i < ctx->n_outputs && ctx->outputs[i] ? ctx->outputs[i]->data : NULL;
}

/* ---- BatchNormTrain ---- */

static gf_status bn_train_infer(gf_op_ctx *ctx)
{
    gf_bn_shape s;
    gf_status st = gf_bn_read_shape(ctx, 0, &s);
    if (st) return st;
    const int64_t channels[1] = {s.c};
    for (int i = 0; i < ctx->n_outputs; i++) {
        if (!ctx->outputs[i]) continue;
        if (i == 0) gf_set_like(ctx->outputs[i], ctx->inputs[0]);
        else if (i < 3) gf_set_shape(ctx->outputs[i], GF_FLOAT, 1, channels);
        else gf_set_like(ctx->outputs[i], ctx->inputs[i]);
    }
    return GF_OK;
}

/* Writes the statistics outputs that are asked for and sets Y's map, from the sums. The
 * new running statistics may share storage with the old ones (a training session updates
 * them in place): each element is read before it is written. */
static void bn_train_finish(const gf_op_ctx *ctx, const gf_bn_shape *s, const bn_scratch *w)
{
    double eps = gf_attr_float(ctx->node, "epsilon", 1e-5f), momentum = gf_attr_float(ctx->node, "momentum", 0.9f);
    const float *scale = ctx->inputs[1]->data, *bias = ctx->inputs[2]->data;
    const float *running_mean = ctx->inputs[3]->data, *running_var = ctx->inputs[4]->data;
    float *saved_mean = output_data(ctx, 1), *saved_invstd = output_data(ctx, 2);
    float *mean_out = output_data(ctx, 3), *var_out = output_data(ctx, 4);
    double count = (double)bn_count(s);
    for (int64_t c = 0; c < s->c; c++) {
        double shifted_mean = w->sums.first[c] / count;
        double var = w->sums.second[c] / count - shifted_mean * shifted_mean;
        if (var < 0) var = 0;  /* rounding, when every value is the same */
        double mean = w->shift[c] + shifted_mean, invstd = 1 / sqrt(var + eps);
        w->map.shift[c] = (float)w->shift[c];
        w->map.delta[c] = (float)shifted_mean;
        w->map.slope[c] = (float)(invstd * scale[c]);
        w->map.offset[c] = bias[c];
        if (saved_mean) saved_mean[c] = (float)mean;
        if (saved_invstd) saved_invstd[c] = (float)invstd;
        if (mean_out) mean_out[c] = (float)(running_mean[c] * momentum + mean * (1 - momentum));
        if (var_out) var_out[c] = (float)(running_var[c] * momentum + var * count / (count - 1) * (1 - momentum));
    }
}

static gf_status bn_train_cpu(gf_op_ctx *ctx)
{
    gf_bn_shape s;
    gf_status st = bn_shape_of(ctx, 0, 1, train_inputs, &s);
    if (st || s.c == 0) return st;
    if (bn_count(&s) < 2)
        return gf_fail(GF_ERR_SHAPE, "X has %lld value(s) per channel (N x spatial size); training needs more than one",
                       (long long)bn_count(&s));
    bn_scratch w;
    if ((st = scratch_new(&w, s.c))) return st;
    const float *x = ctx->inputs[0]->data;
    int layout = gf_in_layout(ctx, 0);
    gf_planes planes = gf_planes_of(s.c, s.inner, layout);
    for (int64_t c = 0; c < s.c; c++) w.shift[c] = x[gf_plane_base(&planes, 0, c)];
    sum_channels(&s, layout, x, NULL, &w.sums);
    bn_train_finish(ctx, &s, &w);
    if (output_data(ctx, 0)) map_channels(&s, layout, x, NULL, &w.map, output_data(ctx, 0));
    scratch_free(&w);
    return GF_OK;
}

/* ---- BatchNormGrad ---- */

static gf_status bn_grad_infer(gf_op_ctx *ctx)
{
    gf_bn_shape s;
    gf_status st = gf_bn_read_shape(ctx, 1, &s);
    if (st) return st;
    const gf_tensor *dy = ctx->inputs[0], *x = ctx->inputs[1];
    int same = dy->rank == x->rank;
    for (int d = 0; same && d < x->rank; d++) same = dy->dims[d] == x->dims[d];
    if (!same) {
        char a[128], b[128];
        return gf_fail(GF_ERR_SHAPE, "dY has shape %s, X has %s; they must be the same",
                       gf_shape_str(dy, a, sizeof a), gf_shape_str(x, b, sizeof b));
    }
    for (int i = 0; i < ctx->n_outputs && i < 3; i++)
        if (ctx->outputs[i]) gf_set_like(ctx->outputs[i], ctx->inputs[i == 0 ? 1 : 2]);
    return GF_OK;
}

static gf_status bn_grad_cpu(gf_op_ctx *ctx)
{
    gf_bn_shape s;
    gf_status st = bn_shape_of(ctx, 1, 2, grad_inputs, &s);
    if (st || s.c == 0) return st;
    bn_scratch w;
    if ((st = scratch_new(&w, s.c))) return st;
    const float *dy = ctx->inputs[0]->data, *x = ctx->inputs[1]->data, *scale = ctx->inputs[2]->data;
    const float *mean = ctx->inputs[3]->data, *invstd = ctx->inputs[4]->data;
    float *dx = output_data(ctx, 0), *dscale = output_data(ctx, 1), *dbias = output_data(ctx, 2);
    for (int64_t c = 0; c < s.c; c++) w.shift[c] = mean[c];
    int layout = gf_in_layout(ctx, 1);
    sum_channels(&s, layout, x, dy, &w.sums);
    double count = (double)bn_count(&s);
    for (int64_t c = 0; c < s.c; c++) {
        double sum_dy = w.sums.first[c], sum_dy_xhat = w.sums.second[c] * invstd[c];
        if (dbias) dbias[c] = (float)sum_dy;
        if (dscale) dscale[c] = (float)sum_dy_xhat;
        /* dX = a * dY - a * mean(dY) - (X - mean) * a * invstd * mean(dY * xhat), a = scale * invstd */
        double a = (double)scale[c] * invstd[c];
        w.map.shift[c] = mean[c];
        w.map.delta[c] = 0;
        w.map.slope[c] = (float)(-a * invstd[c] * sum_dy_xhat / count);
        w.map.offset[c] = (float)(-a * sum_dy / count);
        w.map.dy_slope[c] = (float)a;
    }
    if (dx) map_channels(&s, layout, x, dy, &w.map, dx);
    scratch_free(&w);
    return GF_OK;
}

/* X and Y (BatchNormTrain), dY, X and dX (BatchNormGrad) are blocked together or not at
 * all: each output element is computed from the same element of the inputs once the
 * channel sums are taken, so an output may also take an input's storage. Blocked needs
 * rank 3 to 5 and whole channel blocks (the session checks that). */
static gf_status bn_layouts(gf_op_ctx *ctx)
{
    int grad = !strcmp(ctx->node->op_type, "BatchNormGrad");
    const gf_tensor *x = ctx->inputs[grad ? 1 : 0];
    if (x->rank < 3 || x->rank > 5 || x->dims[1] % gf_layout_block() || !ctx->outputs[0]) return GF_OK;
    ctx->in_layout[0] = GF_LAYOUT_FOLLOW;
    if (grad) ctx->in_layout[1] = GF_LAYOUT_FOLLOW;
    ctx->out_layout[0] = GF_LAYOUT_FOLLOW;
    return GF_OK;
}

const gf_op gf_ops_norm_grad[] = {
    {"ai.graft", "BatchNormTrain", 1, 0, bn_train_infer, bn_train_cpu, 0, bn_layouts},
    {"ai.graft", "BatchNormGrad", 1, 0, bn_grad_infer, bn_grad_cpu, 0, bn_layouts},
    {0},
};
