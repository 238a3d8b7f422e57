/* Sliding-window geometry and oneDNN plumbing shared by the conv and pool families
 * (conv.c, pool.c and their gradients conv_grad.c, pool_grad.c). */
#include "dnnl_util.h"

#include <dnnl_debug.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Attribute values and spatial sizes stay below this, so sums and products of two of
 * them cannot overflow int64. */
#define WINDOW_LIMIT ((int64_t)1 << 31)

/* ---- sliding windows ---- */

gf_status gf_check_numel(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0) return gf_fail(GF_ERR_SHAPE, "dim %d would be negative (%lld)", d, (long long)dims[d]);
        if (dims[d] && n > (INT64_MAX / 16) / dims[d])
            return gf_fail(GF_ERR_NOMEM, "the output would have too many elements");
        n *= dims[d];
    }
    return GF_OK;
}

/* Reads an optional per-axis attribute into out[0..nsp), checking count and range. */
static gf_status read_axes(const gf_op_ctx *ctx, const char *name, int nsp, int64_t lo, int64_t *out)
{
    int count;
    const int64_t *v = gf_attr_ints(ctx->node, name, &count);
    if (!v) return GF_OK;
    if (count != nsp) return gf_fail(GF_ERR_INVALID, "%s has %d values, expected %d", name, count, nsp);
    for (int d = 0; d < nsp; d++) {
        if (v[d] < lo || v[d] >= WINDOW_LIMIT)
            return gf_fail(GF_ERR_INVALID, "%s[%d] = %lld is out of range", name, d, (long long)v[d]);
        out[d] = v[d];
    }
    return GF_OK;
}

gf_status gf_window_read(const gf_op_ctx *ctx, const gf_tensor *x, const int64_t *kernel, gf_window *w)
{
    int nsp = x->rank - 2;
    if (nsp < 1 || nsp > GF_WINDOW_MAX_SPATIAL)
        return gf_fail(GF_ERR_UNSUPPORTED, "input X has rank %d; graft handles 1 to %d spatial dims", x->rank,
                       GF_WINDOW_MAX_SPATIAL);
    w->nsp = nsp;
    for (int d = 0; d < GF_WINDOW_MAX_SPATIAL; d++) {
        w->in[d] = w->out[d] = w->kernel[d] = w->stride[d] = w->dilation[d] = 1;
        w->pad_begin[d] = w->pad_end[d] = 0;
    }
    for (int d = 0; d < nsp; d++) {
        w->in[d] = x->dims[2 + d];
        w->kernel[d] = kernel[d];
        if (w->in[d] >= WINDOW_LIMIT)
            return gf_fail(GF_ERR_UNSUPPORTED, "spatial dim %d of X is too large (%lld)", d, (long long)w->in[d]);
        if (kernel[d] < 1 || kernel[d] >= WINDOW_LIMIT)
            return gf_fail(GF_ERR_INVALID, "kernel dim %d = %lld is out of range", d, (long long)kernel[d]);
    }
    gf_status st = read_axes(ctx, "strides", nsp, 1, w->stride);
    if (!st) st = read_axes(ctx, "dilations", nsp, 1, w->dilation);
    if (st) return st;
    int count;
    const int64_t *pads = gf_attr_ints(ctx->node, "pads", &count);
    if (!pads) return GF_OK;
    if (count != 2 * nsp) return gf_fail(GF_ERR_INVALID, "pads has %d values, expected %d", count, 2 * nsp);
    for (int i = 0; i < count; i++)
        if (pads[i] < 0 || pads[i] >= WINDOW_LIMIT)
            return gf_fail(GF_ERR_INVALID, "pads[%d] = %lld is out of range", i, (long long)pads[i]);
    for (int d = 0; d < nsp; d++) {
        w->pad_begin[d] = pads[d];
        w->pad_end[d] = pads[nsp + d];
    }
    return GF_OK;
}

gf_status gf_window_forward(const gf_op_ctx *ctx, int ceil_mode, gf_window *w)
{
    const char *auto_pad = gf_attr_string(ctx->node, "auto_pad", "NOTSET");
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    int valid = !strcmp(auto_pad, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET"))
        return gf_fail(GF_ERR_INVALID, "unknown auto_pad '%s'", auto_pad);
    for (int d = 0; d < w->nsp; d++) {
        int64_t in = w->in[d], s = w->stride[d], ext = gf_window_extent(w, d);
        if (same_upper || same_lower) {
            /* Output ceil(in / stride); the padding that takes splits with the odd one at
             * the end (SAME_UPPER) or the beginning (SAME_LOWER). */
            w->out[d] = (in + s - 1) / s;
            int64_t total = (w->out[d] - 1) * s + ext - in;
            if (total < 0) total = 0;
            w->pad_begin[d] = same_upper ? total / 2 : total - total / 2;
            w->pad_end[d] = total - w->pad_begin[d];
            continue;
        }
        if (valid) w->pad_begin[d] = w->pad_end[d] = 0;
        int64_t span = in + w->pad_begin[d] + w->pad_end[d] - ext;
        if (span < 0)
            return gf_fail(GF_ERR_SHAPE, "a window of extent %lld does not fit spatial dim %d of size %lld plus pads",
                           (long long)ext, d, (long long)in);
        w->out[d] = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
        /* With ceil_mode the last window must still start inside the input or its left pad. */
        if (ceil_mode && (w->out[d] - 1) * s >= in + w->pad_begin[d]) w->out[d]--;
    }
    return GF_OK;
}

/* Whether some kernel tap of output window o along dim d lands inside the input. */
static int window_touches_input(const gf_window *w, int d, int64_t o)
{
    int64_t start = o * w->stride[d] - w->pad_begin[d], dil = w->dilation[d];
    int64_t k = start >= 0 ? 0 : (-start + dil - 1) / dil; /* the first tap at or after 0 */
    return k < w->kernel[d] && start + k * dil < w->in[d];
}

gf_status gf_window_pool(const gf_op_ctx *ctx, const gf_tensor *x, gf_window *w)
{
    int n_kernel;
    const int64_t *kernel = gf_attr_ints(ctx->node, "kernel_shape", &n_kernel);
    if (!kernel) return gf_fail(GF_ERR_INVALID, "kernel_shape is required");
    if (n_kernel != x->rank - 2)
        return gf_fail(GF_ERR_INVALID, "kernel_shape has %d values, X has %d spatial dims", n_kernel, x->rank - 2);
    gf_status st = gf_window_read(ctx, x, kernel, w);
    if (!st) st = gf_window_forward(ctx, (int)gf_attr_int(ctx->node, "ceil_mode", 0), w);
    for (int d = 0; !st && d < w->nsp; d++)
        for (int64_t o = 0; o < w->out[d]; o++)
            if (!window_touches_input(w, d, o))
                return gf_fail(GF_ERR_INVALID, "output window %lld along spatial dim %d covers only padding",
                               (long long)o, d);
    return st;
}

gf_status gf_window_check_output(const gf_tensor *t, const char *name, int64_t n, int64_t c, const gf_window *w,
                                 const char *producer)
{
    gf_tensor want = {.rank = w->nsp + 2, .dims = {n, c}};
    for (int d = 0; d < w->nsp; d++) want.dims[2 + d] = w->out[d];
    if (t->rank == want.rank && !memcmp(t->dims, want.dims, (size_t)want.rank * sizeof *want.dims)) return GF_OK;
    char got_s[160], want_s[160];
    return gf_fail(GF_ERR_SHAPE, "%s is %s, but %s outputs %s", name, gf_shape_str(t, got_s, sizeof got_s), producer,
                   gf_shape_str(&want, want_s, sizeof want_s));
}

gf_status gf_shape_input(const gf_tensor *shape, const char *what, gf_tensor *like)
{
    if (shape->rank != 1) return gf_fail(GF_ERR_INVALID, "%s must be a 1-D shape tensor, has rank %d", what, shape->rank);
    memset(like, 0, sizeof *like);
    like->dtype = GF_FLOAT;
    gf_status st = gf_read_ints(shape, what, like->dims, GF_MAX_RANK, &like->rank);
    for (int d = 0; !st && d < like->rank; d++)
        if (like->dims[d] < 0)
            st = gf_fail(GF_ERR_INVALID, "%s[%d] is negative (%lld)", what, d, (long long)like->dims[d]);
    return st;
}

/* ---- which implementation runs ---- */

static pthread_once_t fastpath_once = PTHREAD_ONCE_INIT;
static int fastpath_on;

static void read_fastpath_env(void)
{
    const char *v = getenv("GRAFT_NO_FASTPATH");
    fastpath_on = !(v && !strcmp(v, "1"));
}

int gf_fastpath_enabled(void)
{
    pthread_once(&fastpath_once, read_fastpath_env);
    return fastpath_on;
}

/* ---- oneDNN: engine, streams, errors ---- */

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;     /* NULL when oneDNN has no CPU engine */
static pthread_key_t stream_key; /* each thread its own stream */

static void destroy_stream(void *s) { dnnl_stream_destroy(s); }

static void create_engine(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
    if (engine && pthread_key_create(&stream_key, destroy_stream)) {
        dnnl_engine_destroy(engine);
        engine = NULL;
    }
}

static gf_status dnnl_fail(dnnl_status_t s, const char *what)
{
    return gf_fail(GF_ERR_RUNTIME, "oneDNN failed %s: %s", what, dnnl_status2str(s));
}

static gf_status get_engine(dnnl_engine_t *out)
{
    pthread_once(&engine_once, create_engine);
    if (!engine) return gf_fail(GF_ERR_UNSUPPORTED, "oneDNN has no CPU engine");
    *out = engine;
    return GF_OK;
}

static gf_status get_stream(dnnl_stream_t *out)
{
    dnnl_engine_t eng = NULL;
    gf_status st = get_engine(&eng);
    if (st) return st;
    dnnl_stream_t s = pthread_getspecific(stream_key);
    if (!s) {
        dnnl_status_t ds = dnnl_stream_create(&s, eng, dnnl_stream_default_flags);
        if (ds != dnnl_success) return dnnl_fail(ds, "creating a stream");
        if (pthread_setspecific(stream_key, s)) {
            dnnl_stream_destroy(s);
            return gf_fail(GF_ERR_NOMEM, "out of memory for a oneDNN stream");
        }
    }
    *out = s;
    return GF_OK;
}

dnnl_status_t gf_dnnl_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims, const int64_t *strides)
{
    dnnl_dims_t d, s;
    int64_t step = 1;
    for (int i = rank - 1; i >= 0; i--) {
        d[i] = dims[i];
        s[i] = strides ? strides[i] : step;
        step *= dims[i];
    }
    return dnnl_memory_desc_init_by_strides(md, rank, d, dnnl_f32, s);
}

dnnl_status_t gf_dnnl_any_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims)
{
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, dnnl_format_tag_any);
}

static pthread_once_t block_once = PTHREAD_ONCE_INIT;
static int layout_block = 8;

static void read_block(void)
{
    int wide = (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
    layout_block = wide ? 16 : 8;
}

int gf_layout_block(void)
{
    pthread_once(&block_once, read_block);
    return layout_block;
}

/* The channel-blocked tag of a rank 3 to 5 tensor. */
static dnnl_format_tag_t blocked_tag(int rank)
{
    int wide = gf_layout_block() == 16;
    switch (rank) {
    case 3: return wide ? dnnl_nCw16c : dnnl_nCw8c;
    case 4: return wide ? dnnl_nChw16c : dnnl_nChw8c;
    default: return wide ? dnnl_nCdhw16c : dnnl_nCdhw8c;
    }
}

dnnl_status_t gf_dnnl_blocked_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims)
{
    if (rank < 3 || rank > 5 || dims[1] % gf_layout_block()) return gf_dnnl_any_md(md, rank, dims);
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, blocked_tag(rank));
}

dnnl_status_t gf_dnnl_layout_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims, int layout)
{
    if (layout != GF_LAYOUT_BLOCKED) return gf_dnnl_md(md, rank, dims, NULL);
    if (rank < 3 || rank > 5 || dims[1] % gf_layout_block()) return dnnl_invalid_arguments;
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++) d[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, blocked_tag(rank));
}

/* ---- plans ---- */

static void plan_destroy(gf_dnnl_plan *p)
{
    for (int i = 0; i < p->n_args; i++) {
        gf_dnnl_arg *a = &p->args[i];
        if (a->reorder) dnnl_primitive_destroy(a->reorder);
        if (a->reorder_pd) dnnl_primitive_desc_destroy(a->reorder_pd);
        if (a->inner && a->inner != a->user) dnnl_memory_destroy(a->inner);
        if (a->user) dnnl_memory_destroy(a->user);
        free(a->buf);
    }
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    p->prim = NULL;
    p->scratch = NULL;
    p->scratch_bytes = 0;
    p->n_args = 0;
}

/* Gives argument a its inner memory and, when the layouts differ, a buffer and a reorder. */
static gf_status plan_arg(gf_dnnl_arg *a, dnnl_engine_t eng, const dnnl_memory_desc_t *user,
                          const dnnl_memory_desc_t *inner)
{
    dnnl_status_t s = dnnl_memory_create(&a->user, user, eng, DNNL_MEMORY_NONE);
    if (s != dnnl_success) return dnnl_fail(s, "creating a memory object");
    if (dnnl_memory_desc_equal(user, inner)) {
        a->inner = a->user;
        return GF_OK;
    }
    size_t bytes = dnnl_memory_desc_get_size(inner);
    a->buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!a->buf) return gf_fail(GF_ERR_NOMEM, "out of memory: %zu bytes for a reordered tensor", bytes);
    s = dnnl_memory_create(&a->inner, inner, eng, a->buf);
    if (s != dnnl_success) return dnnl_fail(s, "creating a memory object");
    s = a->is_output ? dnnl_reorder_primitive_desc_create(&a->reorder_pd, inner, eng, user, eng, NULL)
                     : dnnl_reorder_primitive_desc_create(&a->reorder_pd, user, eng, inner, eng, NULL);
    if (s != dnnl_success) {
        a->reorder_pd = NULL;
        return dnnl_fail(s, "creating a reorder");
    }
    return GF_OK;
}

/* The primitive descriptor of op_desc, given the one of its forward op as a hint when
 * fwd_desc is not NULL; *pd stays NULL when oneDNN has no implementation. */
static gf_status create_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, const_dnnl_op_desc_t op_desc,
                           const_dnnl_op_desc_t fwd_desc, const_dnnl_primitive_attr_t attr)
{
    dnnl_primitive_desc_t hint = NULL;
    dnnl_status_t s = dnnl_success;
    if (fwd_desc) s = dnnl_primitive_desc_create(&hint, fwd_desc, NULL, eng, NULL);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, op_desc, attr, eng, hint);
    if (hint) dnnl_primitive_desc_destroy(hint);
    const char *impl = NULL;
    if (s == dnnl_success && dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
        impl && !strncmp(impl, "ref", 3)) {
        /* oneDNN's own reference loops (what it falls back to for, say, depthwise weight
         * gradients) are slower than graft's reference kernels: let those run instead. */
        dnnl_primitive_desc_destroy(*pd);
        s = dnnl_unimplemented;
    }
    if (s == dnnl_success) return GF_OK;
    *pd = NULL;
    return s == dnnl_unimplemented ? GF_OK : dnnl_fail(s, "creating a primitive descriptor");
}

static gf_status plan_build(gf_dnnl_plan *plan, const_dnnl_op_desc_t op_desc, const_dnnl_op_desc_t fwd_desc,
                            const_dnnl_primitive_attr_t attr, int n_args, const gf_dnnl_arg_desc *args)
{
    dnnl_engine_t eng = NULL;
    gf_status st = get_engine(&eng);
    if (st) return st;
    dnnl_primitive_desc_t pd;
    if ((st = create_pd(&pd, eng, op_desc, fwd_desc, attr)) || !pd) return st;
    dnnl_status_t s;
    plan->n_args = n_args;
    for (int i = 0; i < n_args && !st; i++) {
        gf_dnnl_arg *a = &plan->args[i];
        a->arg = args[i].arg;
        a->is_output = args[i].is_output;
        st = plan_arg(a, eng, &args[i].user, dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a->arg));
    }
    /* Under scratchpad_mode_user the descriptor names the scratch memory a run must pass. */
    const dnnl_memory_desc_t *scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch_bytes = scratch ? dnnl_memory_desc_get_size(scratch) : 0;
    if (!st && scratch_bytes) {
        if ((s = dnnl_memory_create(&plan->scratch, scratch, eng, DNNL_MEMORY_NONE)) == dnnl_success)
            plan->scratch_bytes = scratch_bytes;
        else
            st = dnnl_fail(s, "creating a memory object");
    }
    if (!st && (s = dnnl_primitive_create(&plan->prim, pd)) != dnnl_success) {
        plan->prim = NULL;
        st = dnnl_fail(s, "creating a primitive");
    }
    dnnl_primitive_desc_destroy(pd);
    if (st) plan_destroy(plan);
    return st;
}

gf_status gf_dnnl_plan_build(gf_dnnl_plan *plan, const_dnnl_op_desc_t op_desc, int n_args,
                             const gf_dnnl_arg_desc *args)
{
    return plan_build(plan, op_desc, NULL, NULL, n_args, args);
}

gf_status gf_dnnl_plan_build_attr(gf_dnnl_plan *plan, const_dnnl_op_desc_t op_desc, const_dnnl_primitive_attr_t attr,
                                  int n_args, const gf_dnnl_arg_desc *args)
{
    return plan_build(plan, op_desc, NULL, attr, n_args, args);
}

gf_status gf_dnnl_plan_build_backward(gf_dnnl_plan *plan, const_dnnl_op_desc_t op_desc,
                                      const_dnnl_op_desc_t fwd_desc, int n_args, const gf_dnnl_arg_desc *args)
{
    return plan_build(plan, op_desc, fwd_desc, NULL, n_args, args);
}

gf_status gf_dnnl_plan_build_reorder(gf_dnnl_plan *plan, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to)
{
    dnnl_engine_t eng = NULL;
    gf_status st = get_engine(&eng);
    if (st) return st;
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL);
    if (s == dnnl_unimplemented) return GF_OK;
    if (s != dnnl_success) return dnnl_fail(s, "creating a reorder");
    const dnnl_memory_desc_t *mds[2] = {from, to};
    plan->n_args = 2;
    for (int i = 0; i < 2 && !st; i++) {
        gf_dnnl_arg *a = &plan->args[i];
        a->arg = i ? DNNL_ARG_TO : DNNL_ARG_FROM;
        a->is_output = i;
        s = dnnl_memory_create(&a->user, mds[i], eng, DNNL_MEMORY_NONE);
        if (s != dnnl_success) st = dnnl_fail(s, "creating a memory object");
        a->inner = a->user;
    }
    if (!st && (s = dnnl_primitive_create(&plan->prim, pd)) != dnnl_success) {
        plan->prim = NULL;
        st = dnnl_fail(s, "creating a reorder");
    }
    dnnl_primitive_desc_destroy(pd);
    if (st) plan_destroy(plan);
    return st;
}

static gf_status run_reorder(gf_dnnl_arg *a, dnnl_stream_t stream)
{
    dnnl_status_t made = a->reorder ? dnnl_success : dnnl_primitive_create(&a->reorder, a->reorder_pd);
    if (made != dnnl_success) {
        a->reorder = NULL;
        return dnnl_fail(made, "creating a reorder");
    }
    dnnl_exec_arg_t io[2] = {{DNNL_ARG_FROM, a->is_output ? a->inner : a->user},
                             {DNNL_ARG_TO, a->is_output ? a->user : a->inner}};
    dnnl_status_t s = dnnl_primitive_execute(a->reorder, stream, 2, io);
    return s == dnnl_success ? GF_OK : dnnl_fail(s, "reordering");
}

gf_status gf_dnnl_plan_set_constant(gf_dnnl_plan *plan, int i, const void *data)
{
    gf_dnnl_arg *a = &plan->args[i];
    dnnl_stream_t stream = NULL;
    gf_status st = get_stream(&stream);
    if (st) return st;
    pthread_mutex_lock(&plan->lock);
    a->ready = NULL;
    if (data && a->reorder_pd) {
        dnnl_memory_set_data_handle(a->user, (void *)data);
        st = run_reorder(a, stream);
        if (!st && dnnl_stream_wait(stream) != dnnl_success) st = gf_fail(GF_ERR_RUNTIME, "oneDNN stream failed");
        if (!st) a->ready = data;
        /* The reorder primitive keeps memory of its own once it has run, about as much
         * again as the weights it wrote for Winograd's transform: ~480 MB of YOLOv3's
         * 1.3 GB at batch 1. A constant needs it again only if its pointer changes. */
        dnnl_primitive_destroy(a->reorder);
        a->reorder = NULL;
    }
    pthread_mutex_unlock(&plan->lock);
    return st;
}

/* Scratch for runs given none (kernels run outside a session's steps): one buffer per
 * calling thread, freed when the thread ends. */
typedef struct thread_scratch {
    void *data;
    size_t bytes;
} thread_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void free_thread_scratch(void *p)
{
    thread_scratch *t = p;
    free(t->data);
    free(t);
}

static void make_scratch_key(void) { pthread_key_create(&scratch_key, free_thread_scratch); }

static void *thread_scratch_of(size_t bytes)
{
    pthread_once(&scratch_once, make_scratch_key);
    thread_scratch *t = pthread_getspecific(scratch_key);
    if (!t) {
        if (!(t = calloc(1, sizeof *t))) return NULL;
        if (pthread_setspecific(scratch_key, t)) {
            free(t);
            return NULL;
        }
    }
    if (t->bytes < bytes) {
        free(t->data);
        t->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
        t->bytes = t->data ? bytes : 0;
    }
    return t->data;
}

gf_status gf_dnnl_plan_run(gf_dnnl_plan *plan, void *const *data) { return gf_dnnl_plan_run_scratch(plan, data, NULL); }

gf_status gf_dnnl_plan_run_scratch(gf_dnnl_plan *plan, void *const *data, void *scratch)
{
    dnnl_stream_t stream = NULL;
    gf_status st = get_stream(&stream);
    if (st) return st;
    if (plan->scratch && !scratch && !(scratch = thread_scratch_of(plan->scratch_bytes)))
        return gf_fail(GF_ERR_NOMEM, "out of memory: %zu bytes of scratch for oneDNN", plan->scratch_bytes);
    dnnl_exec_arg_t args[GF_DNNL_MAX_ARGS + 1];
    int n_args = plan->n_args;
    pthread_mutex_lock(&plan->lock);
    if (plan->scratch) {
        dnnl_memory_set_data_handle(plan->scratch, scratch);
        args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, plan->scratch};
    }
    for (int i = 0; i < plan->n_args && !st; i++) {
        gf_dnnl_arg *a = &plan->args[i];
        args[i] = (dnnl_exec_arg_t){a->arg, a->inner};
        if (a->ready && a->ready == data[i]) continue;
        dnnl_memory_set_data_handle(a->user, data[i]);
        if (a->reorder_pd && !a->is_output) {
            a->ready = NULL;
            st = run_reorder(a, stream);
        }
    }
    dnnl_status_t s = dnnl_success;
    if (!st) s = dnnl_primitive_execute(plan->prim, stream, n_args, args);
    if (s != dnnl_success) st = dnnl_fail(s, "running a primitive");
    for (int i = 0; i < plan->n_args && !st; i++)
        if (plan->args[i].reorder_pd && plan->args[i].is_output) st = run_reorder(&plan->args[i], stream);
    if (!st && dnnl_stream_wait(stream) != dnnl_success) st = gf_fail(GF_ERR_RUNTIME, "oneDNN stream failed");
    pthread_mutex_unlock(&plan->lock);
    return st;
}

/* ---- the plan cache ---- */

#define CACHE_CAPACITY 512

typedef struct cache_entry {
    gf_dnnl_plan plan;          /* first, so a plan pointer is its entry's */
    struct cache_entry *next;
    gf_dnnl_build_fn build;     /* part of the key: families' keys may look alike */
    uint64_t hash, last_use;
    int refs;
    size_t key_len;
    unsigned char key[];
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache_head;
static int cache_count;
static uint64_t cache_clock;

static uint64_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Under cache_lock: the entry for key, taken, or NULL. */
static cache_entry *cache_take(gf_dnnl_build_fn build, const void *key, size_t len, uint64_t hash)
{
    for (cache_entry *e = cache_head; e; e = e->next)
        if (e->hash == hash && e->build == build && e->key_len == len && !memcmp(e->key, key, len)) {
            e->refs++;
            e->last_use = ++cache_clock;
            return e;
        }
    return NULL;
}

static void entry_free(cache_entry *e)
{
    plan_destroy(&e->plan);
    pthread_mutex_destroy(&e->plan.lock);
    free(e);
}

/* Under cache_lock: takes the entry *pe points at out of the list, and returns it. */
static cache_entry *cache_unlink(cache_entry **pe)
{
    cache_entry *e = *pe;
    *pe = e->next;
    cache_count--;
    return e;
}

/* Under cache_lock: drops the least recently used plan nobody holds. */
static void cache_evict_one(void)
{
    cache_entry **victim = NULL;
    for (cache_entry **pe = &cache_head; *pe; pe = &(*pe)->next)
        if (!(*pe)->refs && (!victim || (*pe)->last_use < (*victim)->last_use)) victim = pe;
    if (victim) entry_free(cache_unlink(victim));
}

gf_status gf_dnnl_plan_get(const void *key, size_t key_len, gf_dnnl_build_fn build, const void *arg,
                           gf_dnnl_plan **out)
{
    uint64_t hash = hash_bytes(key, key_len);
    pthread_mutex_lock(&cache_lock);
    cache_entry *e = cache_take(build, key, key_len, hash);
    pthread_mutex_unlock(&cache_lock);
    if (e) {
        *out = &e->plan;
        return GF_OK;
    }
    /* Build outside the lock: creating a primitive compiles code. */
    cache_entry *fresh = calloc(1, sizeof *fresh + key_len);
    if (!fresh) return gf_fail(GF_ERR_NOMEM, "out of memory for a oneDNN plan");
    pthread_mutex_init(&fresh->plan.lock, NULL);
    gf_status st = build(&fresh->plan, arg);
    if (st) {
        entry_free(fresh);
        return st;
    }
    fresh->build = build;
    memcpy(fresh->key, key, key_len);
    fresh->key_len = key_len;
    fresh->hash = hash;
    pthread_mutex_lock(&cache_lock);
    e = cache_take(build, key, key_len, hash); /* another thread may have built it meanwhile */
    if (!e) {
        e = fresh;
        fresh = NULL;
        e->refs = 1;
        e->last_use = ++cache_clock;
        e->next = cache_head;
        cache_head = e;
        if (++cache_count > CACHE_CAPACITY) cache_evict_one();
    }
    pthread_mutex_unlock(&cache_lock);
    if (fresh) entry_free(fresh);
    *out = &e->plan;
    return GF_OK;
}

void gf_dnnl_plan_release(gf_dnnl_plan *plan)
{
    pthread_mutex_lock(&cache_lock);
    ((cache_entry *)plan)->refs--;
    pthread_mutex_unlock(&cache_lock);
}

/* A session's hold ends (it plans again, or is freed): the plan goes with it unless someone
 * else holds it. Cached, it would keep its reordered weights for a shape that may not come
 * back: FCN8s run on five image sizes in turn peaked at 3.8 GB, 538 MB of weights a size. */
int gf_dnnl_plan_cache_count(void)
{
    pthread_mutex_lock(&cache_lock);
    int n = cache_count;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

static void release_held(void *plan)
{
    cache_entry *e = plan, *gone = NULL;
    pthread_mutex_lock(&cache_lock);
    if (--e->refs == 0)
        for (cache_entry **pe = &cache_head; *pe; pe = &(*pe)->next)
            if (*pe == e) {
                gone = cache_unlink(pe);
                break;
            }
    pthread_mutex_unlock(&cache_lock);
    if (gone) entry_free(gone);
}

void gf_dnnl_plan_hand_over(gf_dnnl_plan *plan, int i, const void *data, gf_kept *kept)
{
    pthread_mutex_lock(&plan->lock);
    int holds = data && plan->args[i].ready == data;
    pthread_mutex_unlock(&plan->lock);
    if (holds && kept && !kept->data)
        *kept = (gf_kept){data, plan, release_held};
    else
        gf_dnnl_plan_release(plan);
}

/* ---- layouts ---- */

typedef struct convert_key {
    int64_t family, rank, from, to, dims[5];
} convert_key;

#define CONVERT_FAMILY 0x72656f72646572ll /* "reorder" */

static gf_status build_convert_plan(gf_dnnl_plan *plan, const void *arg)
{
    const convert_key *k = arg;
    dnnl_memory_desc_t from, to;
    if (gf_dnnl_layout_md(&from, (int)k->rank, k->dims, (int)k->from) ||
        gf_dnnl_layout_md(&to, (int)k->rank, k->dims, (int)k->to))
        return GF_OK;
    return gf_dnnl_plan_build_reorder(plan, &from, &to);
}

/* Plane by plane, for when oneDNN has no reorder (or fast paths are off). */
static void convert_reference(int rank, const int64_t *dims, const float *src, int from, float *dst, int to)
{
    int64_t size = 1;
    for (int d = 2; d < rank; d++) size *= dims[d];
    gf_planes a = gf_planes_of(dims[1], size, from), b = gf_planes_of(dims[1], size, to);
#pragma omp parallel for collapse(2) schedule(static) if (dims[0] * dims[1] * size > 65536)
    for (int64_t n = 0; n < dims[0]; n++)
        for (int64_t c = 0; c < dims[1]; c++) {
            const float *s = src + gf_plane_base(&a, n, c);
            float *t = dst + gf_plane_base(&b, n, c);
            for (int64_t i = 0; i < size; i++) t[i * b.step] = s[i * a.step];
        }
}

gf_status gf_layout_convert(int rank, const int64_t *dims, const void *src, int from, void *dst, int to)
{
    int64_t numel = 1;
    for (int d = 0; d < rank; d++) numel *= dims[d];
    if (from == to || rank < 3 || rank > 5) {
        if (src != dst && numel) memmove(dst, src, (size_t)numel * sizeof(float));
        return GF_OK;
    }
    if (dims[1] % gf_layout_block()) return gf_fail(GF_ERR_INVALID, "%lld channels do not fill whole blocks", (long long)dims[1]);
    if (numel == 0) return GF_OK;
    if (gf_fastpath_enabled()) {
        convert_key key;
        memset(&key, 0, sizeof key);
        key.family = CONVERT_FAMILY;
        key.rank = rank;
        key.from = from;
        key.to = to;
        for (int d = 0; d < rank; d++) key.dims[d] = dims[d];
        gf_dnnl_plan *plan;
        gf_status st = gf_dnnl_plan_get(&key, sizeof key, build_convert_plan, &key, &plan);
        if (st) return st;
        if (plan->prim) {
            void *data[2] = {(void *)src, dst};
            st = gf_dnnl_plan_run(plan, data);
            gf_dnnl_plan_release(plan);
            return st;
        }
        gf_dnnl_plan_release(plan);
    }
    convert_reference(rank, dims, src, from, dst, to);
    return GF_OK;
}
