/* MaxPool, AveragePool, LpPool, their Global forms, and MaxUnpool. The reference
 * kernels read and write any numeric element type through doubles; a oneDNN fast path
 * runs float32 MaxPool (without Indices) and AveragePool. */
#include "dnnl_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP } pool_kind;

typedef struct pool_spec {
    pool_kind kind;
    int count_include_pad;  /* AveragePool: pads count in the divisor */
    double p;               /* LpPool's norm */
    int storage_order;      /* MaxPool's Indices: 0 row-major, 1 column-major */
    int64_t n, c;
    gf_window w;
} pool_spec;

static pool_kind kind_of(const gf_node *n)
{
    const char *t = n->op_type;
    if (strstr(t, "MaxPool")) return POOL_MAX;
    if (strstr(t, "AveragePool")) return POOL_AVG;
    return POOL_LP;
}

static int is_global(const gf_node *n) { return !strncmp(n->op_type, "Global", 6); }

/* LpPool-1 has a float p, later opsets an int one. */
static double read_p(const gf_node *n)
{
    const gf_attr *a = gf_node_attr(n, "p");
    if (!a) return 2.0;
    return a->type == GF_ATTR_FLOAT ? a->f : (double)a->i;
}

/* Whether some kernel tap of output window o along dim d lands inside the input. */
static int window_touches_input(const gf_window *w, int d, int64_t o)
{
    int64_t start = o * w->stride[d] - w->pad_begin[d], dil = w->dilation[d];
    int64_t k = start >= 0 ? 0 : (-start + dil - 1) / dil; /* the first tap at or after 0 */
    return k < w->kernel[d] && start + k * dil < w->in[d];
}

static gf_status read_pool_spec(const gf_op_ctx *ctx, pool_spec *ps)
{
    gf_status st = gf_check_inputs(ctx, 1, 1);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0];
    memset(ps, 0, sizeof *ps);
    ps->kind = kind_of(ctx->node);
    static const gf_dtype max_types[] = {GF_FLOAT, GF_DOUBLE, GF_FLOAT16, GF_INT8, GF_UINT8, GF_UNDEFINED};
    static const gf_dtype float_types[] = {GF_FLOAT, GF_DOUBLE, GF_FLOAT16, GF_UNDEFINED};
    if ((st = gf_check_dtype(ctx, 0, ps->kind == POOL_MAX ? max_types : float_types))) return st;
    if (x->rank < 3) return gf_fail(GF_ERR_SHAPE, "input X has rank %d, expected N x C x spatial dims", x->rank);
    ps->n = x->dims[0];
    ps->c = x->dims[1];
    ps->count_include_pad = (int)gf_attr_int(ctx->node, "count_include_pad", 0);
    ps->storage_order = (int)gf_attr_int(ctx->node, "storage_order", 0);
    ps->p = read_p(ctx->node);
    if (ps->kind == POOL_LP && !(ps->p > 0))
        return gf_fail(GF_ERR_INVALID, "p must be positive, is %g", ps->p);
    if (is_global(ctx->node)) {
        if ((st = gf_window_read(ctx, x, x->dims + 2, &ps->w))) return st;
        return gf_window_forward(ctx, 0, &ps->w);
    }
    int n_kernel;
    const int64_t *kernel = gf_attr_ints(ctx->node, "kernel_shape", &n_kernel);
    if (!kernel) return gf_fail(GF_ERR_INVALID, "kernel_shape is required");
    if (n_kernel != x->rank - 2)
        return gf_fail(GF_ERR_INVALID, "kernel_shape has %d values, X has %d spatial dims", n_kernel, x->rank - 2);
    if ((st = gf_window_read(ctx, x, kernel, &ps->w))) return st;
    if ((st = gf_window_forward(ctx, (int)gf_attr_int(ctx->node, "ceil_mode", 0), &ps->w))) return st;
    for (int d = 0; d < ps->w.nsp; d++)
        for (int64_t o = 0; o < ps->w.out[d]; o++)
            if (!window_touches_input(&ps->w, d, o))
                return gf_fail(GF_ERR_INVALID, "output window %lld along spatial dim %d covers only padding",
                               (long long)o, d);
    return GF_OK;
}

/* ---- reference kernel ---- */

/* The index MaxPool reports for spatial position ip of channel plane nc. */
static int64_t max_index(const pool_spec *ps, int64_t nc, const int64_t *ip)
{
    const int64_t *in = ps->w.in;
    int64_t spatial = ps->storage_order ? ip[0] + in[0] * (ip[1] + in[1] * ip[2]) /* column-major */
                                        : (ip[0] * in[1] + ip[1]) * in[2] + ip[2];
    return nc * gf_window_size(in) + spatial;
}

static void pool_reference(const pool_spec *ps, const gf_tensor *x, gf_tensor *y, gf_tensor *indices)
{
    const gf_window *w = &ps->w;
    int64_t in_size = gf_window_size(w->in), out_size = gf_window_size(w->out), k_size = gf_window_size(w->kernel);
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < ps->n * ps->c; nc++)
        for (int64_t o = 0; o < out_size; o++) {
            int64_t op[3], kp[3], ip[3], best_ip[3] = {0, 0, 0}, taps = 0, pad_taps = 0;
            double acc = 0, best = 0;
            gf_window_pos(o, w->out, op);
            for (int64_t k = 0; k < k_size; k++) {
                gf_window_pos(k, w->kernel, kp);
                int inside = 1, in_pads = 1;
                for (int d = 0; d < 3; d++) {
                    ip[d] = op[d] * w->stride[d] - w->pad_begin[d] + kp[d] * w->dilation[d];
                    inside &= ip[d] >= 0 && ip[d] < w->in[d];
                    in_pads &= ip[d] < w->in[d] + w->pad_end[d]; /* ceil_mode windows may reach past the pads */
                }
                if (!inside) {
                    pad_taps += in_pads;
                    continue;
                }
                double v = gf_num_at(x, nc * in_size + (ip[0] * w->in[1] + ip[1]) * w->in[2] + ip[2]);
                if (ps->kind == POOL_MAX && (taps == 0 || v > best)) {
                    best = v;
                    memcpy(best_ip, ip, sizeof ip);
                }
                acc += ps->kind == POOL_LP ? pow(fabs(v), ps->p) : v;
                taps++;
            }
            double divisor = (double)(ps->count_include_pad ? taps + pad_taps : taps);
            double r = ps->kind == POOL_MAX ? best : ps->kind == POOL_AVG ? acc / divisor : pow(acc, 1.0 / ps->p);
            gf_num_set(y, nc * out_size + o, r);
            if (indices) ((int64_t *)indices->data)[nc * out_size + o] = max_index(ps, nc, best_ip);
        }
}

/* ---- oneDNN fast path ---- */

typedef struct pool_key {
    int64_t alg, nsp, n, c;
    int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
    int64_t src_layout, dst_layout;
} pool_key;

/* The right padding oneDNN needs to produce exactly w->out windows (ceil_mode adds some). */
static int64_t effective_pad_end(const gf_window *w, int d)
{
    return (w->out[d] - 1) * w->stride[d] + gf_window_extent(w, d) - w->in[d] - w->pad_begin[d];
}

static int fast_path_fits(const gf_op_ctx *ctx, const pool_spec *ps)
{
    if (ctx->inputs[0]->dtype != GF_FLOAT || gf_tensor_numel(ctx->inputs[0]) == 0) return 0;
    if (ps->kind == POOL_MAX) return ctx->n_outputs < 2 || !ctx->outputs[1];
    if (ps->kind != POOL_AVG) return 0;
    /* oneDNN divides by the whole kernel when pads count; the reference stops at the
     * given pads, which differs for windows ceil_mode pushed further. */
    for (int d = 0; d < ps->w.nsp && ps->count_include_pad; d++)
        if (effective_pad_end(&ps->w, d) > ps->w.pad_end[d]) return 0;
    return 1;
}

static gf_status build_pool_plan(gf_dnnl_plan *plan, const void *arg)
{
    const pool_key *k = arg;
    int nsp = (int)k->nsp, rank = nsp + 2;
    int64_t src_dims[5] = {k->n, k->c}, dst_dims[5] = {k->n, k->c};
    dnnl_dims_t strides, kernel, dilation, pad_l, pad_r;
    for (int d = 0; d < nsp; d++) {
        src_dims[2 + d] = k->in[d];
        dst_dims[2 + d] = k->out[d];
        strides[d] = k->stride[d];
        kernel[d] = k->kernel[d];
        dilation[d] = k->dilation[d] - 1; /* oneDNN counts the gaps */
        pad_l[d] = k->pad_begin[d];
        pad_r[d] = k->pad_end[d];
    }
    gf_dnnl_arg_desc args[2] = {{DNNL_ARG_SRC, {0}, 0}, {DNNL_ARG_DST, {0}, 1}};
    dnnl_memory_desc_t src_blocked, dst_any;
    /* oneDNN pools plain NCHW with a slow generic kernel; channel blocks get its
     * vectorised one, which pays for the reorders many times over: graft's blocked
     * layout when the channels fill its blocks (then blocked activations pass as they
     * are), blocks of 8 (padded) otherwise. */
    static const dnnl_format_tag_t blocked[] = {dnnl_nCw8c, dnnl_nChw8c, dnnl_nCdhw8c};
    dnnl_dims_t dims;
    for (int i = 0; i < rank; i++) dims[i] = src_dims[i];
    dnnl_status_t inner = k->c % gf_layout_block()
                              ? dnnl_memory_desc_init_by_tag(&src_blocked, rank, dims, dnnl_f32, blocked[nsp - 1])
                              : gf_dnnl_blocked_md(&src_blocked, rank, src_dims);
    if (gf_dnnl_layout_md(&args[0].user, rank, src_dims, (int)k->src_layout) ||
        gf_dnnl_layout_md(&args[1].user, rank, dst_dims, (int)k->dst_layout) ||
        gf_dnnl_any_md(&dst_any, rank, dst_dims) || inner)
        return GF_OK;
    dnnl_pooling_v2_desc_t desc;
    if (dnnl_pooling_v2_forward_desc_init(&desc, dnnl_forward_inference, (dnnl_alg_kind_t)k->alg, &src_blocked,
                                          &dst_any, strides, kernel, dilation, pad_l, pad_r) != dnnl_success)
        return GF_OK; /* no fast path for this geometry */
    return gf_dnnl_plan_build(plan, &desc, 2, args);
}

static gf_status run_fast(gf_op_ctx *ctx, const pool_spec *ps)
{
    pool_key key;
    memset(&key, 0, sizeof key);
    key.alg = ps->kind == POOL_MAX          ? dnnl_pooling_max
              : ps->count_include_pad ? dnnl_pooling_avg_include_padding
                                      : dnnl_pooling_avg_exclude_padding;
    key.nsp = ps->w.nsp;
    key.n = ps->n;
    key.c = ps->c;
    for (int d = 0; d < 3; d++) {
        key.in[d] = ps->w.in[d];
        key.out[d] = ps->w.out[d];
        key.kernel[d] = ps->w.kernel[d];
        key.stride[d] = ps->w.stride[d];
        key.dilation[d] = ps->w.dilation[d];
        key.pad_begin[d] = ps->w.pad_begin[d];
        key.pad_end[d] = d < ps->w.nsp ? effective_pad_end(&ps->w, d) : 0;
    }
    key.src_layout = gf_in_layout(ctx, 0);
    key.dst_layout = gf_out_layout(ctx, 0);
    gf_dnnl_plan *plan;
    gf_status st = gf_dnnl_plan_get(&key, sizeof key, build_pool_plan, &key, &plan);
    if (st) return st;
    if (plan->prim) {
        void *data[2] = {ctx->inputs[0]->data, ctx->outputs[0]->data};
        st = gf_dnnl_plan_run(plan, data);
    } else {
        st = gf_fail(GF_ERR_UNSUPPORTED, "oneDNN has no implementation for this pooling");
    }
    gf_dnnl_plan_release(plan);
    return st;
}

/* ---- GlobalAveragePool on float32, plain or blocked ---- */

/* Each channel's mean over its positions, summed in double in position order and divided
 * once, as the reference does, so both layouts give the reference's values. */
static void global_average_f32(const pool_spec *ps, const float *x, int layout, float *y)
{
    int64_t size = gf_window_size(ps->w.in);
    gf_planes p = gf_planes_of(ps->c, size, layout);
    if (!p.blocked) {
#pragma omp parallel for schedule(static) if (ps->n * ps->c * size > 65536)
        for (int64_t nc = 0; nc < ps->n * ps->c; nc++) {
            const float *xp = x + nc * size;
            double acc = 0;
            for (int64_t i = 0; i < size; i++) acc += xp[i];
            y[nc] = (float)(acc / (double)size);
        }
        return;
    }
    int64_t blocks = ps->c / p.block;
#pragma omp parallel for schedule(static) if (ps->n * ps->c * size > 65536)
    for (int64_t nb = 0; nb < ps->n * blocks; nb++) {
        const float *xp = x + nb * size * p.block;
        double acc[16] = {0};
        for (int64_t i = 0; i < size; i++)
            for (int64_t j = 0; j < p.block; j++) acc[j] += xp[i * p.block + j];
        for (int64_t j = 0; j < p.block; j++) y[nb * p.block + j] = (float)(acc[j] / (double)size);
    }
}

/* Which tensors the fast paths take blocked: a oneDNN pool's input and output, a global
 * average's input (its output has one position: both layouts are the same bytes). */
static gf_status pool_layouts(gf_op_ctx *ctx)
{
    pool_spec ps;
    gf_status st = read_pool_spec(ctx, &ps);
    if (st || !ctx->outputs[0] || !gf_fastpath_enabled()) return st;
    if (is_global(ctx->node)) {
        if (ps.kind == POOL_AVG && ctx->inputs[0]->dtype == GF_FLOAT) ctx->in_layout[0] = GF_LAYOUT_CAN_BLOCK;
        return GF_OK;
    }
    if (fast_path_fits(ctx, &ps)) ctx->in_layout[0] = ctx->out_layout[0] = GF_LAYOUT_CAN_BLOCK;
    return GF_OK;
}

/* ---- the pooling ops ---- */

static gf_status pool_infer(gf_op_ctx *ctx)
{
    pool_spec ps;
    gf_status st = read_pool_spec(ctx, &ps);
    if (st) return st;
    int64_t dims[GF_MAX_RANK] = {ps.n, ps.c};
    for (int d = 0; d < ps.w.nsp; d++) dims[2 + d] = ps.w.out[d];
    if ((st = gf_check_numel(ps.w.nsp + 2, dims))) return st;
    if (ctx->outputs[0]) gf_set_shape(ctx->outputs[0], ctx->inputs[0]->dtype, ps.w.nsp + 2, dims);
    if (ctx->n_outputs > 1 && ctx->outputs[1]) {
        if (ps.kind != POOL_MAX || is_global(ctx->node))
            return gf_fail(GF_ERR_INVALID, "only MaxPool has a second output");
        gf_set_shape(ctx->outputs[1], GF_INT64, ps.w.nsp + 2, dims);
    }
    return GF_OK;
}

/* The reference on a plain copy of a blocked input, into a plain temporary for a
 * blocked output. */
static gf_status reference_any_layout(gf_op_ctx *ctx, const pool_spec *ps)
{
    const gf_tensor *x = ctx->inputs[0];
    gf_tensor *y = ctx->outputs[0], *indices = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    int xl = gf_in_layout(ctx, 0), yl = gf_out_layout(ctx, 0);
    if (!xl && !yl) {
        pool_reference(ps, x, y, indices);
        return GF_OK;
    }
    gf_tensor px = *x, py = *y;
    px.data = xl ? malloc(gf_tensor_nbytes(x) + 1) : x->data;
    py.data = yl ? malloc(gf_tensor_nbytes(y) + 1) : y->data;
    gf_status st = !px.data || !py.data ? gf_fail(GF_ERR_NOMEM, "out of memory") : GF_OK;
    if (!st && xl) st = gf_layout_convert(x->rank, x->dims, x->data, xl, px.data, GF_LAYOUT_PLAIN);
    if (!st) pool_reference(ps, &px, &py, indices);
    if (!st && yl) st = gf_layout_convert(y->rank, y->dims, py.data, GF_LAYOUT_PLAIN, y->data, yl);
    if (xl) free(px.data);
    if (yl) free(py.data);
    return st;
}

gf_status gf_pool_cpu_impl(gf_op_ctx *ctx, gf_impl impl)
{
    pool_spec ps;
    gf_status st = read_pool_spec(ctx, &ps);
    if (st || !ctx->outputs[0]) return st;
    if (is_global(ctx->node) && ps.kind == POOL_AVG && ctx->inputs[0]->dtype == GF_FLOAT && impl != GF_IMPL_REFERENCE) {
        global_average_f32(&ps, ctx->inputs[0]->data, gf_in_layout(ctx, 0), ctx->outputs[0]->data);
        return GF_OK;
    }
    int fits = !is_global(ctx->node) && fast_path_fits(ctx, &ps);
    if (impl == GF_IMPL_AUTO && fits && gf_fastpath_enabled()) {
        st = run_fast(ctx, &ps);
        if (st != GF_ERR_UNSUPPORTED) return st;
        gf_clear_error();
    }
    if (impl == GF_IMPL_FAST)
        return fits ? run_fast(ctx, &ps) : gf_fail(GF_ERR_UNSUPPORTED, "the fast path does not take these inputs");
    return reference_any_layout(ctx, &ps);
}

static gf_status pool_cpu(gf_op_ctx *ctx) { return gf_pool_cpu_impl(ctx, GF_IMPL_AUTO); }

/* ---- MaxUnpool ---- */

/* MaxUnpool's shapes. Indices address the "natural" output, each spatial dim
 * (in - 1) * stride + kernel - pads; an output_shape input may ask for a larger output,
 * which holds the natural one in its leading corner (as ONNX's reference does). `known`
 * is cleared when output_shape is not known yet. */
static gf_status unpool_shapes(const gf_op_ctx *ctx, int64_t *natural, int64_t *dims, int *known)
{
    gf_status st = gf_check_inputs(ctx, 2, 3);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    const gf_tensor *shape = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    static const gf_dtype types[] = {GF_FLOAT, GF_DOUBLE, GF_FLOAT16, GF_UNDEFINED};
    if ((st = gf_check_dtype(ctx, 0, types))) return st;
    if (idx->dtype != GF_INT64) return gf_fail(GF_ERR_SHAPE, "input I must be int64, is %s", gf_dtype_name(idx->dtype));
    if (idx->rank != x->rank || memcmp(idx->dims, x->dims, (size_t)x->rank * sizeof *x->dims))
        return gf_fail(GF_ERR_SHAPE, "input I must have the shape of X");
    int n_kernel;
    const int64_t *kernel = gf_attr_ints(ctx->node, "kernel_shape", &n_kernel);
    if (!kernel || n_kernel != x->rank - 2)
        return gf_fail(GF_ERR_INVALID, "kernel_shape must give %d values", x->rank - 2);
    gf_window w;
    if ((st = gf_window_read(ctx, x, kernel, &w))) return st;
    natural[0] = x->dims[0];
    natural[1] = x->dims[1];
    for (int d = 0; d < w.nsp; d++)
        natural[2 + d] = (w.in[d] - 1) * w.stride[d] + w.kernel[d] - w.pad_begin[d] - w.pad_end[d];
    if ((st = gf_check_numel(x->rank, natural))) return st;
    memcpy(dims, natural, (size_t)x->rank * sizeof *dims);
    *known = 1;
    if (!shape) return GF_OK;
    if (shape->rank != 1 || shape->dims[0] != x->rank || (shape->dtype != GF_INT64 && shape->dtype != GF_INT32))
        return gf_fail(GF_ERR_SHAPE, "output_shape must be a 1-D integer tensor of %d values", x->rank);
    if (!shape->data) {
        *known = 0;
        return GF_OK;
    }
    for (int d = 0; d < x->rank; d++) {
        dims[d] = gf_int_at(shape, d);
        if (dims[d] < natural[d] || (d < 2 && dims[d] != natural[d]))
            return gf_fail(GF_ERR_SHAPE, "output_shape[%d] = %lld, but the unpooled size is %lld", d,
                           (long long)dims[d], (long long)natural[d]);
    }
    return gf_check_numel(x->rank, dims);
}

static gf_status unpool_infer(gf_op_ctx *ctx)
{
    int64_t natural[GF_MAX_RANK], dims[GF_MAX_RANK];
    int known = 0;
    gf_status st = unpool_shapes(ctx, natural, dims, &known);
    if (st || !ctx->outputs[0]) return st;
    if (known) gf_set_shape(ctx->outputs[0], ctx->inputs[0]->dtype, ctx->inputs[0]->rank, dims);
    else ctx->outputs[0]->rank = GF_RANK_DYNAMIC;
    return GF_OK;
}

/* Zeros, with each X value placed where its index points in the natural output. */
static gf_status unpool_cpu(gf_op_ctx *ctx)
{
    int64_t natural[GF_MAX_RANK], dims[GF_MAX_RANK];
    int known = 0;
    gf_status st = unpool_shapes(ctx, natural, dims, &known);
    if (st || !ctx->outputs[0]) return st;
    const gf_tensor *x = ctx->inputs[0], *idx = ctx->inputs[1];
    gf_tensor *y = ctx->outputs[0];
    if (y->rank == GF_RANK_DYNAMIC && (st = gf_op_output(ctx, 0, x->dtype, x->rank, dims))) return st;
    int rank = x->rank;
    size_t esize = gf_dtype_size(x->dtype);
    int64_t n_natural = 1, nx = gf_tensor_numel(x);
    for (int d = 0; d < rank; d++) n_natural *= natural[d];
    memset(y->data, 0, gf_tensor_nbytes(y));
    for (int64_t j = 0; j < nx; j++) {
        int64_t i = ((const int64_t *)idx->data)[j];
        if (i < 0 || i >= n_natural)
            return gf_fail(GF_ERR_INVALID, "index %lld at position %lld is outside the %lld-element unpooled output",
                           (long long)i, (long long)j, (long long)n_natural);
        int64_t at = 0, rest = i, scale = 1; /* the same coordinates in y */
        for (int d = rank - 1; d >= 0; d--) {
            at += rest % natural[d] * scale;
            rest /= natural[d];
            scale *= dims[d];
        }
        memcpy((char *)y->data + at * esize, (const char *)x->data + j * esize, esize);
    }
    return GF_OK;
}

const gf_op gf_ops_pool[] = {
    {"", "MaxPool", 1, 0, pool_infer, pool_cpu, 0, pool_layouts},
    {"", "AveragePool", 1, 0, pool_infer, pool_cpu, 0, pool_layouts},
    {"", "LpPool", 1, 0, pool_infer, pool_cpu},
    {"", "GlobalMaxPool", 1, 0, pool_infer, pool_cpu},
    {"", "GlobalAveragePool", 1, 0, pool_infer, pool_cpu, 0, pool_layouts},
    {"", "GlobalLpPool", 1, 0, pool_infer, pool_cpu},
    {"", "MaxUnpool", 9, 0, unpool_infer, unpool_cpu},
    {0},
};
