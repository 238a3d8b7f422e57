/* MaxPoolGrad, AveragePoolGrad and GlobalAveragePoolGrad (domain ai.graft): the
 * gradients of float32 MaxPool, AveragePool and GlobalAveragePool with respect to X.
 * Each takes its forward op's attributes:
 *
 *   MaxPoolGrad(dY, X) -> dX (storage_order is ignored): each output's gradient goes to
 *     the maximum of its window, the first one in row-major tap order on ties (the one
 *     MaxPool picks, as PyTorch does); padding never wins.
 *   AveragePoolGrad(dY, x_shape) -> dX: each output's gradient, divided by the divisor
 *     AveragePool used for its window, goes to every input position the window covers.
 *   GlobalAveragePoolGrad(dY, x_shape) -> dX = dY / (product of the spatial dims),
 *     broadcast over them.
 *
 * x_shape is a 1-D int64 (or int32) tensor; dY must have the shape the forward op outputs.
 * Windows overlap when strides are smaller than kernels, so gradients are scattered into
 * each channel plane by one thread, in a fixed order: results do not depend on the
 * thread count. */
#include "pool_grad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gf_dtype float_only[] = {GF_FLOAT, GF_UNDEFINED};

/* The forward pool's geometry over X (a tensor, or a shape standing for one, named
 * x_name in errors), and the check of dY against it. Global pools have one window. */
static gf_status pool_geometry(const gf_op_ctx *ctx, const gf_tensor *dy, const gf_tensor *x, const char *x_name,
                               int global, gf_pool_grad_shape *sh)
{
    if (x->rank < 3) return gf_fail(GF_ERR_SHAPE, "%s has rank %d, expected N x C x spatial dims", x_name, x->rank);
    memset(sh, 0, sizeof *sh);
    sh->n = x->dims[0];
    sh->c = x->dims[1];
    gf_status st = gf_check_numel(x->rank, x->dims);
    if (!st && global) {
        st = gf_window_read(ctx, x, x->dims + 2, &sh->w);
        if (!st) st = gf_window_forward(ctx, 0, &sh->w);
    } else if (!st) {
        st = gf_window_pool(ctx, x, &sh->w);
    }
    if (st) return st;
    char pooling[64];
    snprintf(pooling, sizeof pooling, "pooling %s", x_name);
    return gf_window_check_output(dy, "dY", sh->n, sh->c, &sh->w, pooling);
}

gf_status gf_pool_grad_read_average(const gf_op_ctx *ctx, gf_pool_grad_shape *sh, gf_tensor *x, int *dynamic)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (st) return st;
    *dynamic = !gf_values_known(ctx->inputs[1]);
    if (*dynamic) return GF_OK;
    if ((st = gf_shape_input(ctx->inputs[1], "x_shape", x))) return st;
    int global = !strcmp(ctx->node->op_type, "GlobalAveragePoolGrad");
    return pool_geometry(ctx, ctx->inputs[0], x, "X (x_shape)", global, sh);
}

gf_status gf_pool_grad_read_max(const gf_op_ctx *ctx, gf_pool_grad_shape *sh)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (!st) st = gf_check_dtype(ctx, 0, float_only);
    if (!st) st = gf_check_dtype(ctx, 1, float_only);
    return st ? st : pool_geometry(ctx, ctx->inputs[0], ctx->inputs[1], "X", 0, sh);
}

/* ---- kernels ---- */

/* The taps of one window along one dim that land inside X: `count` of them, the first
 * at input index `first`, then one every `step`. `in_pads` counts the window's taps
 * inside X or its pads, as AveragePool's divisor does with count_include_pad: not
 * those ceil_mode pushed past the end pad. */
typedef struct tap_span {
    int64_t first, count, step, in_pads;
} tap_span;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The spans of the windows along each dim: spans[d][o] for window position o on dim d
 * (a window's taps are the product of its spans). Computed once per run, so the
 * kernels divide nothing per window. gf_window_pool has checked that every window
 * reaches into X, so each span holds a tap. NULL when out of memory. */
static tap_span *window_spans(const gf_window *w, tap_span *spans[3])
{
    tap_span *all = malloc((size_t)(w->out[0] + w->out[1] + w->out[2]) * sizeof *all);
    if (!all) return NULL;
    for (int d = 0; d < 3; d++) {
        spans[d] = d ? spans[d - 1] + w->out[d - 1] : all;
        int64_t dil = w->dilation[d];
        for (int64_t o = 0; o < w->out[d]; o++) {
            int64_t start = o * w->stride[d] - w->pad_begin[d];
            int64_t lo = start >= 0 ? 0 : (-start + dil - 1) / dil;                 /* the first tap at or after 0 */
            int64_t hi = min64(w->kernel[d], (w->in[d] - start + dil - 1) / dil); /* taps before the end of X */
            int64_t in_pads = min64(w->kernel[d], (w->in[d] + w->pad_end[d] - start + dil - 1) / dil);
            spans[d][o] = (tap_span){start + lo * dil, hi - lo, dil, in_pads};
        }
    }
    return all;
}

static gf_status max_pool_grad(const gf_pool_grad_shape *sh, const float *dy, const float *x, float *dx)
{
    const gf_window *w = &sh->w;
    tap_span *spans[3], *all = window_spans(w, spans);
    if (!all) return gf_fail(GF_ERR_NOMEM, "out of memory for pooling windows");
    int64_t in_size = gf_window_size(w->in), out_size = gf_window_size(w->out);
    memset(dx, 0, (size_t)(sh->n * sh->c * in_size) * sizeof *dx);
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < sh->n * sh->c; nc++) {
        const float *xp = x + nc * in_size, *dyp = dy + nc * out_size;
        float *dxp = dx + nc * in_size;
        for (int64_t o0 = 0; o0 < w->out[0]; o0++)
            for (int64_t o1 = 0; o1 < w->out[1]; o1++)
                for (int64_t o2 = 0; o2 < w->out[2]; o2++) {
                    const tap_span *s0 = &spans[0][o0], *s1 = &spans[1][o1], *s2 = &spans[2][o2];
                    /* The taps in row-major order from the first; strictly greater, so the
                     * first maximum wins (as a NaN does when it comes first). */
                    int64_t best_at = (s0->first * w->in[1] + s1->first) * w->in[2] + s2->first;
                    float best = xp[best_at];
                    for (int64_t a = 0, i0 = s0->first; a < s0->count; a++, i0 += s0->step)
                        for (int64_t b = 0, i1 = s1->first; b < s1->count; b++, i1 += s1->step) {
                            int64_t row = (i0 * w->in[1] + i1) * w->in[2];
                            for (int64_t c = 0, i2 = s2->first; c < s2->count; c++, i2 += s2->step) {
                                float v = xp[row + i2];
                                int greater = v > best; /* selected without a branch: maxima are unpredictable */
                                best = greater ? v : best;
                                best_at = greater ? row + i2 : best_at;
                            }
                        }
                    dxp[best_at] += dyp[(o0 * w->out[1] + o1) * w->out[2] + o2];
                }
    }
    free(all);
    return GF_OK;
}

static gf_status average_pool_grad(const gf_pool_grad_shape *sh, int count_include_pad, const float *dy, float *dx)
{
    const gf_window *w = &sh->w;
    tap_span *spans[3], *all = window_spans(w, spans);
    if (!all) return gf_fail(GF_ERR_NOMEM, "out of memory for pooling windows");
    int64_t in_size = gf_window_size(w->in), out_size = gf_window_size(w->out);
    memset(dx, 0, (size_t)(sh->n * sh->c * in_size) * sizeof *dx);
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < sh->n * sh->c; nc++) {
        const float *dyp = dy + nc * out_size;
        float *dxp = dx + nc * in_size;
        for (int64_t o0 = 0; o0 < w->out[0]; o0++)
            for (int64_t o1 = 0; o1 < w->out[1]; o1++)
                for (int64_t o2 = 0; o2 < w->out[2]; o2++) {
                    const tap_span *s0 = &spans[0][o0], *s1 = &spans[1][o1], *s2 = &spans[2][o2];
                    int64_t divisor = count_include_pad ? s0->in_pads * s1->in_pads * s2->in_pads
                                                        : s0->count * s1->count * s2->count;
                    float share = dyp[(o0 * w->out[1] + o1) * w->out[2] + o2] / (float)divisor;
                    for (int64_t a = 0, i0 = s0->first; a < s0->count; a++, i0 += s0->step)
                        for (int64_t b = 0, i1 = s1->first; b < s1->count; b++, i1 += s1->step) {
                            int64_t row = (i0 * w->in[1] + i1) * w->in[2];
                            for (int64_t c = 0, i2 = s2->first; c < s2->count; c++, i2 += s2->step)
                                dxp[row + i2] += share;
                        }
                }
    }
    free(all);
    return GF_OK;
}

static void global_average_pool_grad(const gf_pool_grad_shape *sh, const float *dy, float *dx)
{
    int64_t in_size = gf_window_size(sh->w.in);
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < sh->n * sh->c; nc++) {
        float share = dy[nc] / (float)in_size;
        for (int64_t i = 0; i < in_size; i++) dx[nc * in_size + i] = share;
    }
}

/* ---- the same in the blocked layout (op.h): N x C/b x spatial x b ----
 * Each block's b channels go through their windows side by side, every channel's taps in
 * the order of the plain kernels above, so the values are theirs bit for bit. */

/* One channel block (b lanes, each its own channel): each window's first maximum gets
 * the window's gradient. Compiled for AVX-512 and AVX2 too, picked when the library
 * loads: the lane-by-lane selects are one vector instruction each there (the baseline's
 * SSE2 has no 64-bit compare). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void max_pool_grad_block(const gf_window *w, tap_span *const *spans, int64_t b, const float *xp,
                                const float *dyp, float *dxp)
{
    int64_t in_size = gf_window_size(w->in);
    memset(dxp, 0, (size_t)(in_size * b) * sizeof *dxp);
    for (int64_t o0 = 0; o0 < w->out[0]; o0++)
        for (int64_t o1 = 0; o1 < w->out[1]; o1++)
            for (int64_t o2 = 0; o2 < w->out[2]; o2++) {
                const tap_span *s0 = &spans[0][o0], *s1 = &spans[1][o1], *s2 = &spans[2][o2];
                int64_t first = (s0->first * w->in[1] + s1->first) * w->in[2] + s2->first;
                float best[16];
                int64_t best_at[16];
                for (int64_t j = 0; j < b; j++) {
                    best[j] = xp[first * b + j];
                    best_at[j] = first;
                }
                for (int64_t a = 0, i0 = s0->first; a < s0->count; a++, i0 += s0->step)
                    for (int64_t bb = 0, i1 = s1->first; bb < s1->count; bb++, i1 += s1->step) {
                        int64_t row = (i0 * w->in[1] + i1) * w->in[2];
                        for (int64_t c = 0, i2 = s2->first; c < s2->count; c++, i2 += s2->step) {
                            const float *v = xp + (row + i2) * b;
                            for (int64_t j = 0; j < b; j++) {
                                int greater = v[j] > best[j];
                                best[j] = greater ? v[j] : best[j];
                                best_at[j] = greater ? row + i2 : best_at[j];
                            }
                        }
                    }
                const float *g = dyp + ((o0 * w->out[1] + o1) * w->out[2] + o2) * b;
                for (int64_t j = 0; j < b; j++) dxp[best_at[j] * b + j] += g[j];
            }
}

static gf_status max_pool_grad_blocked(const gf_pool_grad_shape *sh, const float *dy, const float *x, float *dx)
{
    const gf_window *w = &sh->w;
    tap_span *spans[3], *all = window_spans(w, spans);
    if (!all) return gf_fail(GF_ERR_NOMEM, "out of memory for pooling windows");
    int64_t in_size = gf_window_size(w->in), out_size = gf_window_size(w->out), b = gf_layout_block();
    int64_t blocks = sh->n * (sh->c / b);
#pragma omp parallel for schedule(static)
    for (int64_t nb = 0; nb < blocks; nb++)
        max_pool_grad_block(w, spans, b, x + nb * in_size * b, dy + nb * out_size * b, dx + nb * in_size * b);
    free(all);
    return GF_OK;
}

static gf_status average_pool_grad_blocked(const gf_pool_grad_shape *sh, int count_include_pad, const float *dy, float *dx)
{
    const gf_window *w = &sh->w;
    tap_span *spans[3], *all = window_spans(w, spans);
    if (!all) return gf_fail(GF_ERR_NOMEM, "out of memory for pooling windows");
    int64_t in_size = gf_window_size(w->in), out_size = gf_window_size(w->out), b = gf_layout_block();
    int64_t blocks = sh->n * (sh->c / b);
#pragma omp parallel for schedule(static)
    for (int64_t nb = 0; nb < blocks; nb++) {
        const float *dyp = dy + nb * out_size * b;
        float *dxp = dx + nb * in_size * b;
        memset(dxp, 0, (size_t)(in_size * b) * sizeof *dxp);
        for (int64_t o0 = 0; o0 < w->out[0]; o0++)
            for (int64_t o1 = 0; o1 < w->out[1]; o1++)
                for (int64_t o2 = 0; o2 < w->out[2]; o2++) {
                    const tap_span *s0 = &spans[0][o0], *s1 = &spans[1][o1], *s2 = &spans[2][o2];
                    int64_t divisor = count_include_pad ? s0->in_pads * s1->in_pads * s2->in_pads
                                                        : s0->count * s1->count * s2->count;
                    const float *g = dyp + ((o0 * w->out[1] + o1) * w->out[2] + o2) * b;
                    float share[16];
                    for (int64_t j = 0; j < b; j++) share[j] = g[j] / (float)divisor;
                    for (int64_t a = 0, i0 = s0->first; a < s0->count; a++, i0 += s0->step)
                        for (int64_t bb = 0, i1 = s1->first; bb < s1->count; bb++, i1 += s1->step) {
                            int64_t row = (i0 * w->in[1] + i1) * w->in[2];
                            for (int64_t c = 0, i2 = s2->first; c < s2->count; c++, i2 += s2->step)
                                for (int64_t j = 0; j < b; j++) dxp[(row + i2) * b + j] += share[j];
                        }
                }
    }
    free(all);
    return GF_OK;
}

static void global_average_pool_grad_blocked(const gf_pool_grad_shape *sh, const float *dy, float *dx)
{
    int64_t in_size = gf_window_size(sh->w.in), b = gf_layout_block(), blocks = sh->n * (sh->c / b);
#pragma omp parallel for schedule(static)
    for (int64_t nb = 0; nb < blocks; nb++) {
        float share[16];
        for (int64_t j = 0; j < b; j++) share[j] = dy[nb * b + j] / (float)in_size;
        float *dxp = dx + nb * in_size * b;
        for (int64_t i = 0; i < in_size; i++)
            for (int64_t j = 0; j < b; j++) dxp[i * b + j] = share[j];
    }
}

/* A blocked tensor's plain copy (when `layout` is blocked; else t's own data). */
static gf_status plain_copy(const gf_tensor *t, int layout, float **copy, const float **data)
{
    *copy = NULL;
    *data = t->data;
    if (layout != GF_LAYOUT_BLOCKED) return GF_OK;
    if (!(*copy = malloc(gf_tensor_nbytes(t) + 1))) return gf_fail(GF_ERR_NOMEM, "out of memory");
    *data = *copy;
    return gf_layout_convert(t->rank, t->dims, t->data, layout, *copy, GF_LAYOUT_PLAIN);
}

/* ---- the ops ---- */

static gf_status max_pool_grad_infer(gf_op_ctx *ctx)
{
    gf_pool_grad_shape sh;
    gf_status st = gf_pool_grad_read_max(ctx, &sh);
    if (!st && ctx->outputs[0]) gf_set_like(ctx->outputs[0], ctx->inputs[1]);
    return st;
}

static gf_status max_pool_grad_cpu(gf_op_ctx *ctx)
{
    gf_pool_grad_shape sh;
    gf_status st = gf_pool_grad_read_max(ctx, &sh);
    if (st || !ctx->outputs[0]) return st;
    int dy_l = gf_in_layout(ctx, 0), x_l = gf_in_layout(ctx, 1), dx_l = gf_out_layout(ctx, 0);
    gf_tensor *dxt = ctx->outputs[0];
    if (dy_l && x_l && dx_l) return max_pool_grad_blocked(&sh, ctx->inputs[0]->data, ctx->inputs[1]->data, dxt->data);
    if (!dy_l && !x_l && !dx_l) return max_pool_grad(&sh, ctx->inputs[0]->data, ctx->inputs[1]->data, dxt->data);
    /* Mixed layouts: through plain copies. */
    float *dy_copy = NULL, *x_copy = NULL, *dx_plain = dx_l ? malloc(gf_tensor_nbytes(dxt) + 1) : dxt->data;
    const float *dy = NULL, *x = NULL;
    st = dx_plain ? plain_copy(ctx->inputs[0], dy_l, &dy_copy, &dy) : gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) st = plain_copy(ctx->inputs[1], x_l, &x_copy, &x);
    if (!st) st = max_pool_grad(&sh, dy, x, dx_plain);
    if (!st && dx_l) st = gf_layout_convert(dxt->rank, dxt->dims, dx_plain, GF_LAYOUT_PLAIN, dxt->data, dx_l);
    if (dx_l) free(dx_plain);
    free(dy_copy);
    free(x_copy);
    return st;
}

static gf_status average_grad_infer(gf_op_ctx *ctx)
{
    gf_pool_grad_shape sh;
    gf_tensor x;
    int dynamic;
    gf_status st = gf_pool_grad_read_average(ctx, &sh, &x, &dynamic);
    if (st || !ctx->outputs[0]) return st;
    if (dynamic) gf_set_dynamic(ctx->outputs[0], GF_FLOAT);
    else gf_set_shape(ctx->outputs[0], GF_FLOAT, x.rank, x.dims);
    return GF_OK;
}

static gf_status average_grad_cpu(gf_op_ctx *ctx)
{
    gf_pool_grad_shape sh;
    gf_tensor x;
    int dynamic;
    gf_status st = gf_pool_grad_read_average(ctx, &sh, &x, &dynamic);
    if (!st && dynamic) st = gf_fail(GF_ERR_RUNTIME, "x_shape is still unknown while running");
    if (st || !ctx->outputs[0]) return st;
    const float *dy = ctx->inputs[0]->data;
    gf_tensor *dxt = ctx->outputs[0];
    float *dx = dxt->data;
    int dy_l = gf_in_layout(ctx, 0), dx_l = gf_out_layout(ctx, 0);
    if (!strcmp(ctx->node->op_type, "GlobalAveragePoolGrad")) {
        /* dY has one position per channel: its layouts are the same bytes. */
        if (dx_l) global_average_pool_grad_blocked(&sh, dy, dx);
        else global_average_pool_grad(&sh, dy, dx);
        return GF_OK;
    }
    int include_pad = (int)gf_attr_int(ctx->node, "count_include_pad", 0);
    if (dy_l && dx_l) return average_pool_grad_blocked(&sh, include_pad, dy, dx);
    if (!dy_l && !dx_l) return average_pool_grad(&sh, include_pad, dy, dx);
    float *dy_copy = NULL, *dx_plain = dx_l ? malloc(gf_tensor_nbytes(dxt) + 1) : dx;
    st = dx_plain ? plain_copy(ctx->inputs[0], dy_l, &dy_copy, &dy) : gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) st = average_pool_grad(&sh, include_pad, dy, dx_plain);
    if (!st && dx_l) st = gf_layout_convert(dxt->rank, dxt->dims, dx_plain, GF_LAYOUT_PLAIN, dx, dx_l);
    if (dx_l) free(dx_plain);
    free(dy_copy);
    return st;
}

/* Which tensors may be blocked (each independently; mixed layouts go through plain
 * copies): MaxPoolGrad's dY, X and dX, AveragePoolGrad's dY and dX, GlobalAveragePoolGrad's
 * dX. */
static gf_status pool_grad_layouts(gf_op_ctx *ctx)
{
    if (!ctx->outputs[0] || ctx->outputs[0]->rank == GF_RANK_DYNAMIC) return GF_OK;
    ctx->out_layout[0] = GF_LAYOUT_CAN_BLOCK;
    if (strcmp(ctx->node->op_type, "GlobalAveragePoolGrad")) ctx->in_layout[0] = GF_LAYOUT_CAN_BLOCK;
    if (!strcmp(ctx->node->op_type, "MaxPoolGrad")) ctx->in_layout[1] = GF_LAYOUT_CAN_BLOCK;
    return GF_OK;
}

const gf_op gf_ops_pool_grad[] = {
    {"ai.graft", "MaxPoolGrad", 1, 0, max_pool_grad_infer, max_pool_grad_cpu, 0, pool_grad_layouts},
    {"ai.graft", "AveragePoolGrad", 1, 0, average_grad_infer, average_grad_cpu, 0, pool_grad_layouts},
    {"ai.graft", "GlobalAveragePoolGrad", 1, 0, average_grad_infer, average_grad_cpu, 0, pool_grad_layouts},
    {0},
};
