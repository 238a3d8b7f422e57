/* A graph prepared for given input shapes: every shape inferred, constant
 * subgraphs folded, activations placed in one arena; then run node by node
 * through the op registry. */
#include "session.h"

#include "model.h"
#include "planner.h"

#include "../ops/op.h"
#include "error.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum value_kind {
    VALUE_UNUSED = 0,
    VALUE_CONST,   /* initializer or folded: data known at plan time */
    VALUE_STATE,   /* initializer that changes between runs: its data is bound when running */
    VALUE_INPUT,   /* points at the caller's data during a run */
    VALUE_ARENA,   /* static shape: lives in the arena */
    VALUE_DYNAMIC, /* shape known only while running: heap, freed after the run */
    VALUE_IN_PLACE,/* a state's new value, written straight into the state's storage */
} value_kind;

struct gf_session {
    const char *path;       /* the model's file, for messages */
    const gf_graph *g;
    gf_session_options opt;
    int check_finite;

    int planned;
    gf_tensor *vals;        /* per value: dtype, shape and data pointer */
    value_kind *kind;
    int *in_place_of;       /* per VALUE_IN_PLACE value: the state it is written into */
    gf_tensor **folded;     /* per value: owned data of a folded constant */
    int *run_nodes, n_run;  /* nodes left to run after folding, in order */
    char *node_dynamic;     /* per node: infer again while running */
    void *arena;
    size_t arena_bytes;
    double flops;

    gf_op_time *times;
    int n_times;
};

static gf_status node_fail(const gf_node *n, gf_status st)
{
    return gf_fail_context(st, "node '%s' (%s)", n->name, n->op_type);
}

const char *gf_backends(void) { return "cpu"; }

gf_status gf_session_new(gf_model *m, const gf_session_options *opt, gf_session **out)
{
    return gf_session_new_graph(m->graph, m->path, opt, out);
}

gf_status gf_session_new_graph(const gf_graph *g, const char *path, const gf_session_options *opt,
                               gf_session **out)
{
    *out = NULL;
    if (opt && opt->device != GF_DEVICE_CPU)
        return gf_fail(GF_ERR_UNSUPPORTED, "this build of graft has no CUDA backend (backends: %s)", gf_backends());
    gf_session *s = calloc(1, sizeof *s);
    if (!s) return gf_fail(GF_ERR_NOMEM, "out of memory");
    s->path = path;
    s->g = g;
    if (opt) s->opt = *opt;
    if (s->opt.num_threads > 0) omp_set_num_threads(s->opt.num_threads);
    size_t nv = (size_t)s->g->n_values + 1, nn = (size_t)s->g->n_nodes + 1;
    s->vals = calloc(nv, sizeof *s->vals);
    s->kind = calloc(nv, sizeof *s->kind);
    s->in_place_of = calloc(nv, sizeof *s->in_place_of);
    s->folded = calloc(nv, sizeof *s->folded);
    s->run_nodes = calloc(nn, sizeof *s->run_nodes);
    s->node_dynamic = calloc(nn, 1);
    s->times = calloc(nn, sizeof *s->times);
    if (!s->vals || !s->kind || !s->in_place_of || !s->folded || !s->run_nodes || !s->node_dynamic || !s->times) {
        gf_session_free(s);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return GF_OK;
}

static void release_plan(gf_session *s)
{
    for (int v = 0; v < s->g->n_values; v++) {
        gf_tensor_free(s->folded[v]);
        s->folded[v] = NULL;
    }
    free(s->arena);
    s->arena = NULL;
    s->arena_bytes = 0;
    s->planned = 0;
}

void gf_session_free(gf_session *s)
{
    if (!s) return;
    if (s->folded) release_plan(s);
    free(s->vals);
    free(s->kind);
    free(s->in_place_of);
    free(s->folded);
    free(s->run_nodes);
    free(s->node_dynamic);
    free(s->times);
    free(s);
}

size_t gf_session_arena_bytes(const gf_session *s) { return s->arena_bytes; }

const gf_tensor *gf_session_value(const gf_session *s, int v) { return s->planned ? &s->vals[v] : NULL; }

void gf_session_check_finite(gf_session *s, int on) { s->check_finite = on; }
double gf_session_flops(const gf_session *s) { return s->flops; }

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
static gf_status check_inferred(const gf_value *v, const gf_tensor *t)
{
    if (t->rank == GF_RANK_DYNAMIC) return GF_OK;
    if (t->rank < 0 || t->rank > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "output '%s' would have rank %d", v->name, t->rank);
    if (gf_dtype_size(t->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "output '%s' would have element type %s", v->name, gf_dtype_name(t->dtype));
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 0)
            return gf_fail(GF_ERR_SHAPE, "output '%s' would have negative dim %lld", v->name, (long long)t->dims[d]);
        if (t->dims[d] && n > (INT64_MAX / 16) / t->dims[d])
            return gf_fail(GF_ERR_NOMEM, "output '%s' would be too large to exist", v->name);
        n *= t->dims[d];
    }
    return GF_OK;
}

/* Multiply-adds ×2 of the ops that dominate compute. */
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

static gf_op_ctx make_ctx(const gf_node *n, node_io *io, int planning)
{
    gf_op_ctx ctx = {n, n->n_inputs, io->inputs, n->n_outputs, io->outputs, planning};
    return ctx;
}

/* Runs infer for one node at plan time and decides whether it can be folded. */
static gf_status plan_node(gf_session *s, int ni)
{
    const gf_node *n = &s->g->nodes[ni];
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
    if (!any_dynamic) {
        gf_op_ctx ctx = make_ctx(n, &io, 1);
        st = n->op->infer(&ctx);
        for (int k = 0; !st && k < n->n_outputs; k++)
            if (io.outputs[k]) st = check_inferred(&s->g->values[n->outputs[k]], io.outputs[k]);
        if (st) goto out;
        s->flops += node_flops(n, io.inputs, io.outputs[0]);
    }
    int dynamic = any_dynamic;
    for (int k = 0; k < n->n_outputs; k++)
        if (io.outputs[k] && io.outputs[k]->rank == GF_RANK_DYNAMIC) dynamic = 1;
    s->node_dynamic[ni] = (char)dynamic;

    if ((all_const || n->op->shape_only) && !dynamic) {
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
        gf_op_ctx ctx = make_ctx(n, &io, 1);
        if (!st) st = n->op->cpu(&ctx);
        goto out;
    }
    s->run_nodes[s->n_run++] = ni;
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) s->kind[n->outputs[k]] = dynamic ? VALUE_DYNAMIC : VALUE_ARENA;
out:
    unbind_node(&io);
    return st ? node_fail(n, st) : GF_OK;
}

/* Places every arena value by its lifetime over the run order. */
static gf_status plan_memory(gf_session *s)
{
    const gf_graph *g = s->g;
    gf_buffer_life *life = calloc((size_t)g->n_values + 1, sizeof *life);
    int *slot = malloc(((size_t)g->n_values + 1) * sizeof *slot);
    if (!life || !slot) {
        free(life);
        free(slot);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    char *keep = calloc((size_t)g->n_values + 1, 1); /* read after the last node: outputs, update sources */
    if (!keep) {
        free(life);
        free(slot);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    for (int v = 0; v < g->n_values; v++) keep[v] = (char)g->values[v].is_output;
    for (int u = 0; u < g->n_updates; u++) keep[g->updates[u].source] = 1;
    for (int v = 0; v < g->n_values; v++) slot[v] = -1;
    for (int step = 0; step < s->n_run; step++) {
        const gf_node *nd = &g->nodes[s->run_nodes[step]];
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v < 0 || s->kind[v] != VALUE_ARENA) continue;
            slot[v] = n;
            life[n++] = (gf_buffer_life){gf_tensor_nbytes(&s->vals[v]), step, keep[v] ? s->n_run : step, 0};
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v >= 0 && slot[v] >= 0 && life[slot[v]].last < step) life[slot[v]].last = step;
        }
    }
    size_t total = gf_plan_arena(life, n);
    gf_status st = GF_OK;
    if (total == (size_t)-1) st = gf_fail(GF_ERR_NOMEM, "out of memory planning the arena");
    else if (!(s->arena = aligned_alloc(GF_ARENA_ALIGN, total ? total : GF_ARENA_ALIGN)))
        st = gf_fail(GF_ERR_NOMEM, "cannot allocate the %zu-byte activation arena", total);
    if (!st) {
        s->arena_bytes = total;
        for (int v = 0; v < g->n_values; v++)
            if (slot[v] >= 0) s->vals[v].data = (char *)s->arena + life[slot[v]].offset;
    }
    free(life);
    free(slot);
    free(keep);
    return st;
}

/* The run step of the node that writes value v, and the last step that reads it (-1: none). */
static int step_writing(const gf_session *s, int v)
{
    for (int step = 0; step < s->n_run; step++) {
        const gf_node *n = &s->g->nodes[s->run_nodes[step]];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] == v) return step;
    }
    return -1;
}

static int last_step_reading(const gf_session *s, int v)
{
    for (int step = s->n_run - 1; step >= 0; step--) {
        const gf_node *n = &s->g->nodes[s->run_nodes[step]];
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

static gf_status plan(gf_session *s, const gf_tensor *const *inputs)
{
    const gf_graph *g = s->g;
    release_plan(s);
    s->n_run = 0;
    s->flops = 0;
    memset(s->kind, 0, (size_t)g->n_values * sizeof *s->kind);
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
    for (int ni = 0; ni < g->n_nodes; ni++) {
        gf_status st = plan_node(s, ni);
        if (st) {
            release_plan(s);
            return st;
        }
    }
    gf_status st = check_updates(s);
    if (!st) st = plan_memory(s);
    if (st) {
        release_plan(s);
        return st;
    }
    s->planned = 1;
    return GF_OK;
}

/* The public entry points name the model's file in their errors. */
gf_status gf_session_plan(gf_session *s, const gf_tensor *const *inputs)
{
    gf_status st = plan(s, inputs);
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
    if (i == s->n_times) s->times[s->n_times++] = (gf_op_time){op_type, 0, 0};
    s->times[i].count++;
    s->times[i].ms += ms;
}

/* Nodes behind a data-dependent shape: infer again now that every input's data
 * is known, then give each output its own heap buffer. */
static gf_status prepare_dynamic(gf_session *s, const gf_node *n, node_io *io)
{
    for (int k = 0; k < n->n_outputs; k++)
        if (io->outputs[k]) memset(io->outputs[k], 0, sizeof(gf_tensor));
    gf_op_ctx ctx = make_ctx(n, io, 0);
    gf_status st = n->op->infer(&ctx);
    for (int k = 0; !st && k < n->n_outputs; k++) {
        gf_tensor *t = io->outputs[k];
        if (!t || t->rank == GF_RANK_DYNAMIC) continue;
        st = check_inferred(&s->g->values[n->outputs[k]], t);
        if (st) break;
        size_t bytes = gf_tensor_nbytes(t);
        if (!(t->data = malloc(bytes ? bytes : 1))) st = gf_fail(GF_ERR_NOMEM, "out of memory: %zu bytes", bytes);
        else t->owns_data = 1;
    }
    return st;
}

static void free_dynamic(gf_session *s)
{
    for (int v = 0; v < s->g->n_values; v++)
        if (s->kind[v] == VALUE_DYNAMIC && s->vals[v].owns_data) {
            free(s->vals[v].data);
            s->vals[v].data = NULL;
            s->vals[v].owns_data = 0;
        }
}

static gf_status check_outputs_finite(const gf_graph *g, const gf_node *n, const node_io *io)
{
    for (int k = 0; k < n->n_outputs; k++) {
        const gf_tensor *t = io->outputs[k];
        if (!t || t->dtype != GF_FLOAT || !t->data) continue;
        const float *x = t->data;
        for (int64_t i = 0, count = gf_tensor_numel(t); i < count; i++)
            if (!isfinite(x[i]))
                return gf_fail(GF_ERR_RUNTIME, "output '%s' has a non-finite value (%g) at element %lld",
                               g->values[n->outputs[k]].name, (double)x[i], (long long)i);
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

gf_status gf_session_run(gf_session *s, const gf_tensor *const *inputs, gf_tensor **outputs)
{
    const gf_graph *g = s->g;
    for (int i = 0; i < g->n_outputs; i++) outputs[i] = NULL;
    for (int i = 0; i < g->n_inputs; i++)
        if (!inputs[i]) return gf_fail(GF_ERR_INVALID, "input '%s' is missing", g->values[g->inputs[i]].name);
    if (!s->planned || !same_shapes(s, inputs)) {
        gf_status st = plan(s, inputs);
        if (st) return gf_fail_context(st, "%s", s->path);
    }
    for (int i = 0; i < g->n_inputs; i++) s->vals[g->inputs[i]].data = inputs[i]->data;
    for (int v = 0; v < g->n_values; v++) {
        if (s->kind[v] == VALUE_STATE) s->vals[v].data = g->values[v].init->data;
        if (s->kind[v] == VALUE_IN_PLACE) s->vals[v].data = g->values[s->in_place_of[v]].init->data;
    }

    gf_status st = GF_OK;
    for (int step = 0; step < s->n_run && !st; step++) {
        int ni = s->run_nodes[step];
        const gf_node *n = &g->nodes[ni];
        node_io io;
        st = bind_node(s, n, &io);
        if (!st && s->node_dynamic[ni]) st = prepare_dynamic(s, n, &io);
        double t0 = s->opt.profile ? now_ms() : 0;
        if (!st) {
            gf_op_ctx ctx = make_ctx(n, &io, 0);
            st = n->op->cpu(&ctx);
        }
        if (s->opt.profile) record_time(s, n->op_type, now_ms() - t0);
        if (!st && s->check_finite) st = check_outputs_finite(g, n, &io);
        unbind_node(&io);
        if (st) st = node_fail(n, st);
    }
    for (int i = 0; i < g->n_outputs && !st; i++)
        st = copy_out(&s->vals[g->outputs[i]], &g->values[g->outputs[i]], &outputs[i]);
    if (!st) apply_updates(s);
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
    qsort(s->times, (size_t)s->n_times, sizeof *s->times, by_time_desc);
    *times = s->times;
    return s->n_times;
}

void gf_session_profile_reset(gf_session *s) { s->n_times = 0; }
