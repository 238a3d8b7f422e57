/* A graph prepared for given input shapes: every shape inferred, constant
 * subgraphs folded, the rewrites of fuse.c applied (fusions, layouts, in-place
 * outputs), activations placed in one arena; then run step by step through the
 * op registry. */
#include "session_impl.h"

#include "model.h"
#include "planner.h"

#include "../ops/op.h"
#include "error.h"
#include "limits.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static gf_status node_fail(const gf_node *n, gf_status st)
{
    return gf_fail_context(st, "node '%s' (%s)", n->name, n->op_type);
}

#ifdef GF_HAVE_CUDA /* built with the CUDA backend (src/runtime/device_cuda.c, src/ops/cuda) */
const char *gf_backends(void) { return "cpu, cuda"; }
#else
const char *gf_backends(void) { return "cpu"; }
#endif

gf_status gf_session_new(gf_model *m, const gf_session_options *opt, gf_session **out)
{
    gf_status st = gf_session_new_graph(m->graph, m->path, opt, out);
    if (st) return st;
    (*out)->file_maps = &m->external;
    gf_external_sessions(&m->external, 1);
    return GF_OK;
}

/* GRAFT_NO_FUSION=1 turns the rewrites off for every session (read once). */
static int rewrites_default(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *v = getenv("GRAFT_NO_FUSION");
        cached = !(v && !strcmp(v, "1"));
    }
    return cached;
}

gf_status gf_session_new_graph(const gf_graph *g, const char *path, const gf_session_options *opt,
                               gf_session **out)
{
    *out = NULL;
    if (opt && opt->device != GF_DEVICE_CPU && opt->device != GF_DEVICE_CUDA)
        return gf_fail(GF_ERR_INVALID, "unknown device %d", (int)opt->device);
    gf_session *s = calloc(1, sizeof *s);
    if (!s) return gf_fail(GF_ERR_NOMEM, "out of memory");
    s->path = path;
    s->g = g;
    if (opt) s->opt = *opt;
    s->rewrites = rewrites_default();
    /* One OpenMP pool serves our kernels and oneDNN's (both GNU OpenMP). */
    if (s->opt.num_threads > 0) omp_set_num_threads(s->opt.num_threads);
    s->cap_vals = g->n_values + 16;
    s->n_vals = g->n_values;
    s->vals = calloc((size_t)s->cap_vals, sizeof *s->vals);
    s->kind = calloc((size_t)s->cap_vals, sizeof *s->kind);
    s->in_place_of = calloc((size_t)s->cap_vals, sizeof *s->in_place_of);
    s->folded = calloc((size_t)s->cap_vals, sizeof *s->folded);
    s->layout = calloc((size_t)s->cap_vals, 1);
    s->cap_run = g->n_nodes + 1;
    s->run = calloc((size_t)s->cap_run, sizeof *s->run);
    if (!s->vals || !s->kind || !s->in_place_of || !s->folded || !s->layout || !s->run) {
        gf_session_free(s);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    if (s->opt.device == GF_DEVICE_CUDA) {
        gf_status st = gf_session_cuda_new(s);
        if (st) {
            gf_session_free(s);
            return st;
        }
    }
    *out = s;
    return GF_OK;
}

void gf_session_set_rewrites(gf_session *s, int on)
{
    s->rewrites = on;
    s->planned = 0;
}

int gf_session_add_value(gf_session *s, const gf_tensor *like_in, value_kind kind)
{
    gf_tensor like = *like_in; /* it may point into s->vals, which may move */
    if (s->n_vals == s->cap_vals) {
        int cap = s->cap_vals * 2;
        gf_tensor *vals = realloc(s->vals, (size_t)cap * sizeof *vals);
        if (vals) s->vals = vals;
        value_kind *k = realloc(s->kind, (size_t)cap * sizeof *k);
        if (k) s->kind = k;
        int *ip = realloc(s->in_place_of, (size_t)cap * sizeof *ip);
        if (ip) s->in_place_of = ip;
        gf_tensor **f = realloc(s->folded, (size_t)cap * sizeof *f);
        if (f) s->folded = f;
        unsigned char *l = realloc(s->layout, (size_t)cap);
        if (l) s->layout = l;
        if (!vals || !k || !ip || !f || !l) return -1;
        s->cap_vals = cap;
    }
    int v = s->n_vals++;
    s->vals[v] = like;
    s->vals[v].data = NULL;
    s->vals[v].owns_data = 0;
    s->kind[v] = kind;
    s->in_place_of[v] = 0;
    s->folded[v] = NULL;
    s->layout[v] = GF_LAYOUT_PLAIN;
    return v;
}

static void free_synth(gf_node *n)
{
    if (!n) return;
    free(n->name);
    free(n->inputs);
    free(n->outputs);
    free(n->attrs);
    free(n);
}

gf_node *gf_session_add_node(gf_session *s, const char *name, const char *domain, const char *op_type, int opset,
                             int n_inputs, const int *inputs, int n_outputs, const int *outputs,
                             const gf_node *attrs_of, int n_extra, const gf_attr *extra)
{
    const gf_op *op = gf_op_find(domain, op_type, opset);
    if (!op) return NULL;
    if (s->n_synth == s->cap_synth) {
        int cap = s->cap_synth ? 2 * s->cap_synth : 16;
        gf_node **grown = realloc(s->synth, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        s->synth = grown;
        s->cap_synth = cap;
    }
    gf_node *n = calloc(1, sizeof *n);
    int n_shared = attrs_of ? attrs_of->n_attrs : 0;
    if (!n) return NULL;
    n->name = strdup(name);
    n->inputs = malloc(((size_t)n_inputs + 1) * sizeof *n->inputs);
    n->outputs = malloc(((size_t)n_outputs + 1) * sizeof *n->outputs);
    n->attrs = malloc(((size_t)(n_shared + n_extra) + 1) * sizeof *n->attrs);
    if (!n->name || !n->inputs || !n->outputs || !n->attrs) {
        free_synth(n);
        return NULL;
    }
    n->op_type = (char *)op->op_type;
    n->domain = (char *)op->domain;
    n->opset = opset;
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    memcpy(n->outputs, outputs, (size_t)n_outputs * sizeof *outputs);
    if (n_shared) memcpy(n->attrs, attrs_of->attrs, (size_t)n_shared * sizeof *n->attrs);
    if (n_extra) memcpy(n->attrs + n_shared, extra, (size_t)n_extra * sizeof *n->attrs);
    n->n_attrs = n_shared + n_extra;
    n->op = op;
    s->synth[s->n_synth++] = n;
    return n;
}

static void release_plan(gf_session *s)
{
    if (s->cuda) gf_session_cuda_release(s);
    for (int v = 0; v < s->n_vals; v++) {
        gf_tensor_free(s->folded[v]);
        s->folded[v] = NULL;
    }
    for (int i = 0; i < s->n_run; i++) {
        free(s->run[i].layout);
        if (s->run[i].kept.release) s->run[i].kept.release(s->run[i].kept.holder);
    }
    s->n_run = 0;
    for (int i = 0; i < s->n_synth; i++) free_synth(s->synth[i]);
    s->n_synth = 0;
    s->n_vals = s->g->n_values;
    free(s->arena);
    s->arena = NULL;
    s->arena_bytes = 0;
    s->planned = 0;
}

void gf_session_free(gf_session *s)
{
    if (!s) return;
    if (s->folded && s->run) release_plan(s);
    if (s->cuda) gf_session_cuda_free(s);
    if (s->file_maps) gf_external_sessions(s->file_maps, -1);
    free(s->vals);
    free(s->kind);
    free(s->in_place_of);
    free(s->folded);
    free(s->layout);
    free(s->run);
    free(s->synth);
    free(s->times);
    free(s);
}

size_t gf_session_arena_bytes(const gf_session *s) { return s->arena_bytes; }

const gf_tensor *gf_session_value(const gf_session *s, int v)
{
    return s->planned && v >= 0 && v < s->g->n_values ? &s->vals[v] : NULL;
}

void gf_session_check_finite(gf_session *s, int on) { s->check_finite = on; }

gf_status gf_session_sync_states(gf_session *s) { return s->cuda ? gf_session_cuda_sync_states(s) : GF_OK; }

void gf_session_states_changed(gf_session *s)
{
    if (s->cuda) gf_session_cuda_states_changed(s);
}

double gf_session_flops(const gf_session *s) { return s->flops; }

static const char *value_name(const gf_session *s, int v)
{
    return v < s->g->n_values ? s->g->values[v].name : "(a value graft made)";
}

/* Checks a caller's input against the declared type and static dims. */
static gf_status check_input(const gf_value *v, const gf_tensor *t)
{
    char want[160], got[96];
    if (v->dtype != GF_UNDEFINED && t->dtype != v->dtype)
        return gf_fail(GF_ERR_SHAPE, "input '%s': expected element type %s, got %s", v->name,
                       gf_dtype_name(v->dtype), gf_dtype_name(t->dtype));
    if (v->rank < 0) return GF_OK;
    int ok = t->rank == v->rank;
    for (int d = 0; ok && d < v->rank; d++) ok = v->dims[d] < 0 || v->dims[d] == t->dims[d];
    if (ok) return GF_OK;
    size_t at = (size_t)snprintf(want, sizeof want, "[");
    for (int d = 0; d < v->rank && at < sizeof want; d++) {
        if (v->dims[d] >= 0) at += (size_t)snprintf(want + at, sizeof want - at, d ? ",%lld" : "%lld", (long long)v->dims[d]);
        else at += (size_t)snprintf(want + at, sizeof want - at, d ? ",%s" : "%s", v->dim_names[d] ? v->dim_names[d] : "?");
    }
    if (at < sizeof want) snprintf(want + at, sizeof want - at, "]");
    return gf_fail(GF_ERR_SHAPE, "input '%s': expected shape %s, got %s", v->name, want, gf_shape_str(t, got, sizeof got));
}

/* Validates what infer produced: sane rank, non-negative dims, a size that fits. */
static gf_status check_inferred(const char *name, const gf_tensor *t)
{
    if (t->rank == GF_RANK_DYNAMIC) return GF_OK;
    if (t->rank < 0 || t->rank > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "output '%s' would have rank %d", name, t->rank);
    if (gf_dtype_size(t->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "output '%s' would have element type %s", name, gf_dtype_name(t->dtype));
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0)
            return gf_fail(GF_ERR_SHAPE, "output '%s' would have negative dim %lld", name, (long long)t->dims[d]);
        if (t->dims[d] && n > (INT64_MAX / 16) / t->dims[d])
            return gf_fail(GF_ERR_NOMEM, "output '%s' would be too large to exist", name);
        n *= t->dims[d];
    }
    /* refused here, with a message, rather than by the OOM killer once it is filled */
    if ((double)n * (double)gf_dtype_size(t->dtype) > (double)gf_memory_limit()) {
        char need[32], have[32], shape[96];
        return gf_fail(GF_ERR_NOMEM, "output '%s' %s would need %s, more than the %s of memory there is", name,
                       gf_shape_str(t, shape, sizeof shape), gf_bytes_str((double)n * (double)gf_dtype_size(t->dtype),
                       need, sizeof need), gf_bytes_str((double)gf_memory_limit(), have, sizeof have));
    }
    return GF_OK;
}

/* Multiply-adds x2 of the ops that dominate compute. */
static double node_flops(const gf_node *n, const gf_tensor *const *in, const gf_tensor *out0)
{
    if (!out0 || out0->rank == GF_RANK_DYNAMIC) return 0;
    const char *op = n->op_type;
    if (!strcmp(op, "Conv") && n->n_inputs > 1 && in[1]) {
        double k = 1;
        for (int d = 1; d < in[1]->rank; d++) k *= (double)in[1]->dims[d];
        return 2.0 * (double)gf_tensor_numel(out0) * k;
    }
    if (!strcmp(op, "ConvTranspose") && n->n_inputs > 1 && in[1]) {
        double k = 1;
        for (int d = 1; d < in[1]->rank; d++) k *= (double)in[1]->dims[d];
        return 2.0 * (double)gf_tensor_numel(in[0]) * k;
    }
    /* The gradients of a Conv cost what it does: every dY element meets C/group x kernel weights. */
    if ((!strcmp(op, "ConvGradInput") || !strcmp(op, "ConvGradWeight")) && n->n_inputs > 1 && in[0]) {
        const gf_tensor *w = !strcmp(op, "ConvGradInput") ? in[1] : out0;
        double k = 1;
        for (int d = 1; d < w->rank; d++) k *= (double)w->dims[d];
        return 2.0 * (double)gf_tensor_numel(in[0]) * k;
    }
    if ((!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) && in[0] && in[0]->rank >= 1) {
        int64_t k = !strcmp(op, "Gemm") && gf_attr_int(n, "transA", 0) ? in[0]->dims[0] : in[0]->dims[in[0]->rank - 1];
        return 2.0 * (double)gf_tensor_numel(out0) * (double)k;
    }
    return 0;
}

typedef struct node_io {
    const gf_tensor *in[64];
    gf_tensor *out[64];
    const gf_tensor **inputs;  /* in, or heap for nodes with more than 64 */
    gf_tensor **outputs;
} node_io;

static gf_status bind_node(gf_session *s, const gf_node *n, node_io *io)
{
    io->inputs = n->n_inputs <= 64 ? io->in : malloc((size_t)n->n_inputs * sizeof *io->inputs);
    io->outputs = n->n_outputs <= 64 ? io->out : malloc((size_t)n->n_outputs * sizeof *io->outputs);
    if (!io->inputs || !io->outputs) return gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n->n_inputs; k++) io->inputs[k] = n->inputs[k] >= 0 ? &s->vals[n->inputs[k]] : NULL;
    for (int k = 0; k < n->n_outputs; k++) io->outputs[k] = n->outputs[k] >= 0 ? &s->vals[n->outputs[k]] : NULL;
    return GF_OK;
}

static void unbind_node(node_io *io)
{
    if (io->inputs != io->in) free(io->inputs);
    if (io->outputs != io->out) free((void *)io->outputs);
}

static gf_op_ctx make_ctx(const gf_node *n, node_io *io, int planning, unsigned char *layout)
{
    gf_op_ctx ctx = {n, n->n_inputs, io->inputs, n->n_outputs, io->outputs, planning};
    if (layout) {
        ctx.in_layout = layout;
        ctx.out_layout = layout + n->n_inputs;
    }
    return ctx;
}

static gf_status add_step(gf_session *s, const gf_node *n, int dynamic)
{
    if (s->n_run == s->cap_run) {
        int cap = 2 * s->cap_run;
        exec_node *grown = realloc(s->run, (size_t)cap * sizeof *grown);
        if (!grown) return gf_fail(GF_ERR_NOMEM, "out of memory");
        s->run = grown;
        s->cap_run = cap;
    }
    s->run[s->n_run++] = (exec_node){n, dynamic, -1, NULL, NULL};
    return GF_OK;
}

/* The first planning pass over one node of the graph: infer for shapes (building no
 * fast-path plans yet) and fold it when every input is known. */
static gf_status plan_node(gf_session *s, const gf_node *n)
{
    int all_const = 1, any_dynamic = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v < 0) continue;
        if (s->kind[v] != VALUE_CONST) all_const = 0;
        if (s->kind[v] == VALUE_DYNAMIC) any_dynamic = 1;
    }
    node_io io;
    gf_status st = bind_node(s, n, &io);
    if (st) return st;
    for (int k = 0; k < n->n_outputs; k++)
        if (io.outputs[k]) memset(io.outputs[k], 0, sizeof(gf_tensor));
    int foldable = (all_const || n->op->shape_only) && !any_dynamic;
    if (!any_dynamic) {
        gf_op_ctx ctx = make_ctx(n, &io, 1, NULL);
        ctx.shapes_only = !foldable;
        st = n->op->infer(&ctx);
        for (int k = 0; !st && k < n->n_outputs; k++)
            if (io.outputs[k]) st = check_inferred(value_name(s, n->outputs[k]), io.outputs[k]);
        if (st) goto out;
        s->flops += node_flops(n, io.inputs, io.outputs[0]);
    }
    int dynamic = any_dynamic;
    for (int k = 0; k < n->n_outputs; k++)
        if (io.outputs[k] && io.outputs[k]->rank == GF_RANK_DYNAMIC) dynamic = 1;

    if (foldable && !dynamic) {
        /* Every input is known: compute the outputs now, once. */
        for (int k = 0; k < n->n_outputs && !st; k++) {
            int v = n->outputs[k];
            if (v < 0) continue;
            st = gf_tensor_new(&s->folded[v], io.outputs[k]->dtype, io.outputs[k]->rank, io.outputs[k]->dims);
            if (!st) {
                io.outputs[k]->data = s->folded[v]->data;
                s->kind[v] = VALUE_CONST;
            }
        }
        gf_op_ctx ctx = make_ctx(n, &io, 1, NULL);
        if (!st) st = n->op->cpu(&ctx);
        goto out;
    }
    if ((st = add_step(s, n, dynamic))) goto out;
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) s->kind[n->outputs[k]] = dynamic ? VALUE_DYNAMIC : VALUE_ARENA;
out:
    unbind_node(&io);
    return st ? node_fail(n, st) : GF_OK;
}

/* The second pass over the steps left after the rewrites: infer again, now with the
 * steps' layouts, so that kernels build their fast-path plans and reorder constant
 * weights once. */
static gf_status prepare_step(gf_session *s, exec_node *e)
{
    const gf_node *n = e->node;
    if (e->dynamic) return GF_OK;
    node_io io;
    gf_status st = bind_node(s, n, &io);
    if (st) return st;
    gf_tensor saved[64];
    int n_saved = n->n_outputs < 64 ? n->n_outputs : 64;
    for (int k = 0; k < n_saved; k++)
        if (io.outputs[k]) saved[k] = *io.outputs[k];
    gf_op_ctx ctx = make_ctx(n, &io, 1, e->layout);
    ctx.kept = &e->kept;
    ctx.scratch_need = &e->scratch_bytes;
    st = n->op->infer(&ctx);
    /* The shapes cannot have changed; the first pass's stand (data pointers included). */
    for (int k = 0; k < n_saved; k++)
        if (io.outputs[k]) *io.outputs[k] = saved[k];
    unbind_node(&io);
    if (st) return node_fail(n, st);
    /* Weights read in place from the model's file have been read now (a convolution's
     * into its own reordered copy): their pages leave the resident set, and a kernel that
     * reads them while running brings back only those. YOLOv3 at batch 1 peaks at 724
     * MiB instead of 808. (Weights the file holds at offsets a float cannot be read at
     * were copied when the model was loaded: prepare_steps evicts those copies.) */
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        if (v >= 0 && s->kind[v] == VALUE_CONST)
            gf_external_release_pages(s->file_maps, s->vals[v].data, gf_tensor_nbytes(&s->vals[v]));
    }
    return GF_OK;
}

/* The second pass over every step, and the weight copies it frees: a copy the loader made
 * of weights the file stores unaligned (proto_tensor.h) is evicted as soon as every step
 * that reads it has been prepared and holds a copy of its own, so that the peak holds
 * one of the two, not both (FCN8s: 527 of its 538 MB of weights lie unaligned in
 * PyTorch's export). Not on a GPU, whose steps read their constants when they upload. */
static gf_status prepare_steps(gf_session *s)
{
    int *readers = calloc((size_t)s->n_vals, sizeof *readers);     /* steps still to prepare */
    unsigned char *read_running = calloc((size_t)s->n_vals, 1);    /* some step reads it while running */
    gf_status st = readers && read_running ? GF_OK : gf_fail(GF_ERR_NOMEM, "out of memory");
    int evict = s->file_maps && !s->cuda;
    for (int step = 0; step < s->n_run && !st; step++) {
        const exec_node *e = &s->run[step];
        for (int i = 0; i < e->node->n_inputs; i++) {
            int v = e->node->inputs[i];
            if (v < 0 || s->kind[v] != VALUE_CONST) continue;
            readers[v]++;
            if (e->dynamic) read_running[v] = 1;
        }
    }
    for (int i = 0; i < s->g->n_outputs && !st; i++) read_running[s->g->outputs[i]] = 1;
    /* weights no step reads any more (a convolution's, folded with its BatchNormalization) */
    for (int v = 0; v < s->g->n_values && !st && evict; v++)
        if (s->kind[v] == VALUE_CONST && !readers[v] && !read_running[v]) gf_external_evict(s->file_maps, s->vals[v].data);
    for (int step = 0; step < s->n_run && !st; step++) {
        exec_node *e = &s->run[step];
        if (e->cuda) continue;
        if ((st = prepare_step(s, e))) break;
        for (int i = 0; i < e->node->n_inputs; i++) {
            int v = e->node->inputs[i];
            if (v < 0 || s->kind[v] != VALUE_CONST) continue;
            if (!e->kept.data || e->kept.data != s->vals[v].data) read_running[v] = 1;
            if (!--readers[v] && !read_running[v] && evict && v < s->g->n_values)
                gf_external_evict(s->file_maps, s->vals[v].data);
        }
    }
    free(readers);
    free(read_running);
    return st;
}

/* A CUDA session's placement: each step that is not data-dependent runs on the GPU
 * where a CUDA kernel takes it. */
static gf_status place_steps(gf_session *s)
{
    for (int step = 0; step < s->n_run; step++) {
        exec_node *e = &s->run[step];
        if (e->dynamic) continue;
        node_io io;
        gf_status st = bind_node(s, e->node, &io);
        if (st) return st;
        gf_op_ctx ctx = make_ctx(e->node, &io, 1, NULL);
        e->cuda = gf_session_cuda_choose(&ctx);
        unbind_node(&io);
    }
    return GF_OK;
}

/* Places every arena value by its lifetime over the run order. An output computed in
 * place takes its input's slot, which then lives as long as either. */
/* Whether a step's scratch memory goes in the arena, where it takes space the activations
 * leave free at that step: when large (Winograd's at batch 8 on FCN8s's 106x106 maps:
 * 446 MB, which the arena holds without growing). A small one stays in the kernel's own
 * buffer, which all steps share and so keeps in the caches: ResNet50 at batch 8 ran
 * 1.5% slower with every scratch in the arena. */
static int in_arena_scratch(const exec_node *e) { return e->scratch_bytes >= ((size_t)16 << 20); }

static gf_status plan_memory(gf_session *s, int on_device)
{
    const gf_graph *g = s->g;
    size_t nv = (size_t)s->n_vals + 1;
    /* a value's buffer each, and a step's scratch each (living during that step only) */
    gf_buffer_life *life = calloc(nv + (size_t)s->n_run, sizeof *life);
    int *slot = malloc(nv * sizeof *slot);
    char *keep = calloc(nv, 1); /* read after the last step: outputs, update sources */
    if (!life || !slot || !keep) {
        free(life);
        free(slot);
        free(keep);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    for (int v = 0; v < g->n_values; v++) keep[v] = (char)g->values[v].is_output;
    for (int u = 0; u < g->n_updates; u++) keep[g->updates[u].source] = 1;
    for (int v = 0; v < s->n_vals; v++) slot[v] = -1;
    for (int step = 0; step < s->n_run; step++) {
        const exec_node *e = &s->run[step];
        const gf_node *nd = e->node;
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v < 0 || s->kind[v] != VALUE_ARENA) continue;
            int from = k == 0 && e->in_place >= 0 ? nd->inputs[e->in_place] : -1;
            if (from >= 0 && slot[from] >= 0) {
                slot[v] = slot[from];
                if (keep[v]) life[slot[v]].last = s->n_run;
                continue;
            }
            slot[v] = n;
            life[n++] = (gf_buffer_life){gf_tensor_nbytes(&s->vals[v]), step, keep[v] ? s->n_run : step, 0};
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v >= 0 && slot[v] >= 0 && life[slot[v]].last < step) life[slot[v]].last = step;
        }
    }
    int n_values = n;
    for (int step = 0; step < s->n_run && !on_device; step++)
        if (in_arena_scratch(&s->run[step])) life[n++] = (gf_buffer_life){s->run[step].scratch_bytes, step, step, 0};
    size_t total = gf_plan_arena(life, n);
    gf_status st = GF_OK;
    size_t *offset = on_device ? malloc(nv * sizeof *offset) : NULL;
    if (on_device && !offset) total = (size_t)-1;
    /* a run also copies the graph outputs out of the arena */
    double peak = (double)total;
    for (int i = 0; i < g->n_outputs; i++) peak += (double)gf_tensor_nbytes(&s->vals[g->outputs[i]]);
    char need[32], have[32];
    if (total == (size_t)-1) st = gf_fail(GF_ERR_NOMEM, "out of memory planning the arena");
    else if (!on_device && peak > (double)gf_memory_limit()) /* the device's own allocator refuses on a GPU */
        st = gf_fail(GF_ERR_NOMEM, "the activations and outputs need %s at their peak, more than the %s of memory "
                     "there is", gf_bytes_str(peak, need, sizeof need),
                     gf_bytes_str((double)gf_memory_limit(), have, sizeof have));
    else if (on_device) {
        for (int v = 0; v < s->n_vals; v++) offset[v] = slot[v] >= 0 ? life[slot[v]].offset : SIZE_MAX;
        st = gf_session_cuda_arena(s, total, offset);
        if (!st) s->arena_bytes = total;
    } else if (!(s->arena = aligned_alloc(GF_ARENA_ALIGN, total ? total : GF_ARENA_ALIGN)))
        st = gf_fail(GF_ERR_NOMEM, "cannot allocate the %zu-byte activation arena", total);
    if (!st && !on_device) {
        s->arena_bytes = total;
        for (int v = 0; v < s->n_vals; v++)
            if (slot[v] >= 0) s->vals[v].data = (char *)s->arena + life[slot[v]].offset;
        for (int step = 0, i = n_values; step < s->n_run; step++)
            if (in_arena_scratch(&s->run[step])) s->run[step].scratch = (char *)s->arena + life[i++].offset;
    }
    free(life);
    free(slot);
    free(keep);
    free(offset);
    return st;
}

/* The run step of the node that writes value v, and the last step that reads it (-1: none). */
static int step_writing(const gf_session *s, int v)
{
    for (int step = 0; step < s->n_run; step++) {
        const gf_node *n = s->run[step].node;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] == v) return step;
    }
    return -1;
}

static int last_step_reading(const gf_session *s, int v)
{
    for (int step = s->n_run - 1; step >= 0; step--) {
        const gf_node *n = s->run[step].node;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) return step;
    }
    return -1;
}

/* Each update's new value must be computed by a node, with its state's type and size.
 * Where allowed and safe it is computed in place. */
static gf_status check_updates(gf_session *s)
{
    for (int u = 0; u < s->g->n_updates; u++) {
        const gf_update *b = &s->g->updates[u];
        const gf_tensor *state = s->g->values[b->state].init, *src = &s->vals[b->source];
        if (s->kind[b->source] != VALUE_ARENA || src->dtype != state->dtype ||
            gf_tensor_nbytes(src) != gf_tensor_nbytes(state))
            return gf_fail(GF_ERR_INVALID, "update of '%s' from '%s': the new value does not fit the state",
                           s->g->values[b->state].name, s->g->values[b->source].name);
        if (b->in_place && !s->g->values[b->source].is_output &&
            last_step_reading(s, b->state) <= step_writing(s, b->source)) {
            s->kind[b->source] = VALUE_IN_PLACE;
            s->in_place_of[b->source] = b->state;
        }
    }
    return GF_OK;
}

/* Plans for these inputs. `prepare` runs the second pass too (fast-path plans, weights
 * reordered): a plan made only for its shapes (gf_session_plan) skips it, and the first
 * run plans again. */
static gf_status plan(gf_session *s, const gf_tensor *const *inputs, int prepare)
{
    const gf_graph *g = s->g;
    release_plan(s);
    /* what an earlier plan evicted, the kernels read again now */
    if (s->file_maps) {
        gf_status st = gf_external_restore(s->file_maps, 0);
        if (st) return st;
    }
    s->flops = 0;
    memset(s->kind, 0, (size_t)g->n_values * sizeof *s->kind);
    memset(s->layout, 0, (size_t)g->n_values);
    for (int v = 0; v < g->n_values; v++) {
        memset(&s->vals[v], 0, sizeof(gf_tensor));
        if (g->values[v].init) {
            s->vals[v] = *g->values[v].init;
            s->vals[v].owns_data = 0;
            s->kind[v] = VALUE_CONST;
            if (g->values[v].is_state) {
                s->vals[v].data = NULL; /* so that no kernel takes it for a constant while planning */
                s->kind[v] = VALUE_STATE;
            }
        }
    }
    for (int i = 0; i < g->n_inputs; i++) {
        const gf_value *v = &g->values[g->inputs[i]];
        gf_status st = check_input(v, inputs[i]);
        if (st) return st;
        gf_tensor *t = &s->vals[g->inputs[i]];
        *t = *inputs[i];
        t->data = NULL;
        t->owns_data = 0;
        s->kind[g->inputs[i]] = VALUE_INPUT;
    }
    gf_status st = GF_OK;
    int on_device = s->cuda && prepare;
    for (int ni = 0; ni < g->n_nodes && !st; ni++) st = plan_node(s, &g->nodes[ni]);
    if (!st && s->rewrites) st = gf_session_rewrite(s);
    if (!st && on_device) st = place_steps(s);
    if (!st && prepare) st = prepare_steps(s);
    if (!st) st = check_updates(s);
    if (!st) st = plan_memory(s, on_device);
    if (st) {
        release_plan(s);
        return st;
    }
    s->planned = 1;
    s->prepared = prepare;
    return GF_OK;
}

/* The public entry points name the model's file in their errors. */
gf_status gf_session_plan(gf_session *s, const gf_tensor *const *inputs)
{
    gf_status st = plan(s, inputs, 0);
    return st ? gf_fail_context(st, "%s", s->path) : GF_OK;
}

static int same_shapes(const gf_session *s, const gf_tensor *const *inputs)
{
    for (int i = 0; i < s->g->n_inputs; i++) {
        const gf_tensor *a = &s->vals[s->g->inputs[i]], *b = inputs[i];
        if (a->dtype != b->dtype || a->rank != b->rank) return 0;
        for (int d = 0; d < a->rank; d++)
            if (a->dims[d] != b->dims[d]) return 0;
    }
    return 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void record_time(gf_session *s, const char *op_type, double ms)
{
    int i = 0;
    while (i < s->n_times && strcmp(s->times[i].op_type, op_type)) i++;
    if (i == s->n_times) {
        if (s->n_times == s->cap_times) {
            int cap = s->cap_times ? 2 * s->cap_times : 32;
            gf_op_time *grown = realloc(s->times, (size_t)cap * sizeof *grown);
            if (!grown) return; /* a profile short of an op type rather than a failed run */
            s->times = grown;
            s->cap_times = cap;
        }
        s->times[s->n_times++] = (gf_op_time){op_type, 0, 0};
    }
    s->times[i].count++;
    s->times[i].ms += ms;
}

/* Nodes behind a data-dependent shape: infer again now that every input's data
 * is known, then give each output its own heap buffer. */
static gf_status prepare_dynamic(gf_session *s, const gf_node *n, node_io *io)
{
    for (int k = 0; k < n->n_outputs; k++)
        if (io->outputs[k]) memset(io->outputs[k], 0, sizeof(gf_tensor));
    gf_op_ctx ctx = make_ctx(n, io, 0, NULL);
    gf_status st = n->op->infer(&ctx);
    for (int k = 0; !st && k < n->n_outputs; k++) {
        gf_tensor *t = io->outputs[k];
        if (!t || t->rank == GF_RANK_DYNAMIC) continue;
        st = check_inferred(value_name(s, n->outputs[k]), t);
        if (st) break;
        size_t bytes = gf_tensor_nbytes(t);
        if (!(t->data = malloc(bytes ? bytes : 1))) st = gf_fail(GF_ERR_NOMEM, "out of memory: %zu bytes", bytes);
        else t->owns_data = 1;
    }
    return st;
}

static void free_dynamic(gf_session *s)
{
    for (int v = 0; v < s->n_vals; v++)
        if (s->kind[v] == VALUE_DYNAMIC && s->vals[v].owns_data) {
            free(s->vals[v].data);
            s->vals[v].data = NULL;
            s->vals[v].owns_data = 0;
        }
}

static gf_status check_outputs_finite(const gf_session *s, const gf_node *n, const node_io *io)
{
    for (int k = 0; k < n->n_outputs; k++) {
        const gf_tensor *t = io->outputs[k];
        if (!t || t->dtype != GF_FLOAT || !t->data) continue;
        const float *x = t->data;
        for (int64_t i = 0, count = gf_tensor_numel(t); i < count; i++)
            if (!isfinite(x[i]))
                return gf_fail(GF_ERR_RUNTIME, "output '%s' has a non-finite value (%g) at element %lld",
                               value_name(s, n->outputs[k]), (double)x[i], (long long)i);
    }
    return GF_OK;
}

/* The graph's update bindings: each new value goes into its state's storage. */
static void apply_updates(gf_session *s)
{
    for (int u = 0; u < s->g->n_updates; u++) {
        const gf_update *b = &s->g->updates[u];
        gf_tensor *state = s->g->values[b->state].init;
        if (s->kind[b->source] == VALUE_IN_PLACE) continue;
        memcpy(state->data, s->vals[b->source].data, gf_tensor_nbytes(state));
    }
}

static gf_status copy_out(const gf_tensor *src, const gf_value *v, gf_tensor **out)
{
    if (!src->data && gf_tensor_nbytes(src))
        return gf_fail(GF_ERR_RUNTIME, "graph output '%s' was not computed", v->name);
    gf_status st = gf_tensor_new(out, src->dtype, src->rank, src->dims);
    if (!st && gf_tensor_nbytes(src)) memcpy((*out)->data, src->data, gf_tensor_nbytes(src));
    return st;
}

gf_status gf_session_stage(gf_session *s, const gf_tensor *const *inputs)
{
    gf_status st = s->cuda ? gf_session_cuda_stage(s, inputs) : GF_OK;
    return st ? gf_fail_context(st, "%s", s->path) : GF_OK;
}

gf_status gf_session_run(gf_session *s, const gf_tensor *const *inputs, gf_tensor **outputs)
{
    const gf_graph *g = s->g;
    for (int i = 0; i < g->n_outputs; i++) outputs[i] = NULL;
    for (int i = 0; i < g->n_inputs; i++)
        if (!inputs[i]) return gf_fail(GF_ERR_INVALID, "input '%s' is missing", g->values[g->inputs[i]].name);
    if (!s->planned || !s->prepared || !same_shapes(s, inputs)) {
        gf_status st = plan(s, inputs, 1);
        if (st) return gf_fail_context(st, "%s", s->path);
    }
    for (int i = 0; i < g->n_inputs; i++) s->vals[g->inputs[i]].data = inputs[i]->data;
    for (int v = 0; v < g->n_values; v++) {
        if (s->kind[v] == VALUE_STATE) s->vals[v].data = g->values[v].init->data;
        if (s->kind[v] == VALUE_IN_PLACE) s->vals[v].data = g->values[s->in_place_of[v]].init->data;
    }

    gf_status st = s->cuda ? gf_session_cuda_begin(s) : GF_OK;
    for (int step = 0; step < s->n_run && !st; step++) {
        const exec_node *e = &s->run[step];
        const gf_node *n = e->node;
        node_io io;
        st = bind_node(s, n, &io);
        if (!st && e->dynamic && s->cuda) st = gf_session_cuda_host_inputs(s, n);
        if (!st && e->dynamic) st = prepare_dynamic(s, n, &io);
        double t0 = s->opt.profile ? now_ms() : 0;
        if (!st) {
            gf_op_ctx ctx = make_ctx(n, &io, 0, e->layout);
            ctx.scratch = e->scratch;
            st = s->cuda ? gf_session_cuda_step(s, e, &ctx) : n->op->cpu(&ctx);
        }
        if (s->opt.profile) record_time(s, n->op_type, now_ms() - t0);
        if (!st && s->check_finite) st = check_outputs_finite(s, n, &io);
        unbind_node(&io);
        if (st) st = node_fail(n, st);
    }
    if (!st && s->cuda) st = gf_session_cuda_finish(s);
    for (int i = 0; i < g->n_outputs && !st; i++)
        st = copy_out(&s->vals[g->outputs[i]], &g->values[g->outputs[i]], &outputs[i]);
    if (!st && s->cuda) st = gf_session_cuda_updates(s);
    else if (!st) apply_updates(s);
    if (s->cuda) gf_session_cuda_end(s);
    for (int i = 0; i < g->n_inputs; i++) s->vals[g->inputs[i]].data = NULL;
    free_dynamic(s);
    if (st) {
        for (int i = 0; i < g->n_outputs; i++) {
            gf_tensor_free(outputs[i]);
            outputs[i] = NULL;
        }
        return gf_fail_context(st, "%s", s->path);
    }
    return GF_OK;
}

static int by_time_desc(const void *a, const void *b)
{
    double x = ((const gf_op_time *)a)->ms, y = ((const gf_op_time *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

int gf_session_profile(const gf_session *s, const gf_op_time **times)
{
    if (s->n_times) qsort(s->times, (size_t)s->n_times, sizeof *s->times, by_time_desc);
    *times = s->times;
    return s->n_times;
}

void gf_session_profile_reset(gf_session *s) { s->n_times = 0; }
