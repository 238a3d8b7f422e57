/* A session on a GPU: which steps run there, where each value's data is, and the
 * copies between host and device (session_impl.h says how a plan is made). Built with
 * the CUDA backend only.
 *
 * Each value has a residency: HOST (its host data is current), DEV (its device data
 * is), or both. A step reads its inputs where it runs, copying those that are current
 * only on the other side, and leaves its outputs current only where it ran. Device
 * storage by kind of value:
 *   arena (activations)      the device arena, at the offset the planner chose;
 *   constant                 a copy made at the first GPU step that reads it, kept for the plan;
 *   input, dynamic           a copy for the run, freed at its end (an input's may have been
 *                            staged: copied ahead on the copy stream, gf_session_stage);
 *   state                    a buffer for the session's lifetime, current across runs;
 *   in-place update source   its state's buffer.
 * Host storage of an arena value is a mirror made when a CPU step or an output needs it. */
#include "session_impl.h"

#include "../ops/cuda/cuda_ctx.h"
#include "device.h"
#include "error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { AT_HOST = 1, AT_DEV = 2 };
enum { OWN_NONE = 0, OWN_PLAN, OWN_RUN };

/* A coming run's inputs, copied ahead on the copy stream. */
typedef struct staged_set {
    int used;                   /* 0: the slot is free */
    int consumed;               /* the current run took its copies */
    const void **host;          /* per graph input: the host data copied (NULL: none) */
    size_t *bytes;
    void **dev;
    gf_cuda_event *done;
} staged_set;

/* Two sets: the one the current run consumes and the next one, staged while it runs. */
#define STAGED_SETS 2

struct gf_session_cuda {
    gf_cuda_ctx *ctx;           /* started at the first prepared plan */
    int device;
    /* per value of the plan (n of them) */
    int n;
    void **dev;                 /* device data; NULL: none yet */
    unsigned char *where;       /* AT_* of values that are not state */
    unsigned char *dev_owner;   /* OWN_*: who frees dev[v] */
    void **mirror;              /* host storage the session made for an arena value */
    void *arena;
    /* per value of the graph, for its states: across runs and plans */
    void **state_dev;
    unsigned char *state_where;
    staged_set staged[STAGED_SETS];
    int staged_next;            /* the slot the next gf_session_stage fills */
};

gf_status gf_session_cuda_new(gf_session *s)
{
    int count = 0;
    gf_status st = gf_cuda_devices(&count);
    if (st) return st;
    if (s->opt.device_index < 0 || s->opt.device_index >= count)
        return gf_fail(GF_ERR_INVALID, "no CUDA device cuda:%d: this machine has %d (cuda:0 to cuda:%d)",
                       s->opt.device_index, count, count - 1);
    gf_session_cuda *c = calloc(1, sizeof *c);
    int n = s->g->n_values + 1;
    if (c) {
        c->state_dev = calloc((size_t)n, sizeof *c->state_dev);
        c->state_where = malloc((size_t)n);
    }
    if (!c || !c->state_dev || !c->state_where) {
        if (c) free(c->state_dev);
        free(c);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    memset(c->state_where, AT_HOST, (size_t)n);
    c->device = s->opt.device_index;
    s->cuda = c;
    return GF_OK;
}

/* Frees what a staged set still holds, once its copies are done. */
static void drop_staged(gf_session *s, staged_set *set)
{
    gf_session_cuda *c = s->cuda;
    if (!set->used) return;
    if (set->done) gf_cuda_wait_prefetch(c->ctx, set->done);
    for (int i = 0; i < s->g->n_inputs; i++) gf_cuda_free(c->ctx, set->dev[i]);
    gf_cuda_event_free(set->done);
    set->done = NULL;
    set->used = set->consumed = 0;
}

void gf_session_cuda_free(gf_session *s)
{
    gf_session_cuda *c = s->cuda;
    if (!c) return;
    gf_session_cuda_release(s);
    for (int k = 0; k < STAGED_SETS; k++) {
        drop_staged(s, &c->staged[k]);
        free(c->staged[k].host);
        free(c->staged[k].bytes);
        free(c->staged[k].dev);
    }
    for (int v = 0; c->ctx && v < s->g->n_values; v++) gf_cuda_free(c->ctx, c->state_dev[v]);
    gf_cuda_ctx_free(c->ctx);
    free(c->state_dev);
    free(c->state_where);
    free(c);
    s->cuda = NULL;
}

const gf_cuda_op *gf_session_cuda_choose(gf_op_ctx *ctx)
{
    const gf_node *n = ctx->node;
    const gf_cuda_op *op = gf_cuda_op_find(n->domain, n->op_type, n->opset);
    if (!op) return NULL;
    /* A check that says no is not an error: the CPU runs the step. */
    if (op->check && op->check(ctx) != GF_OK) {
        gf_clear_error();
        return NULL;
    }
    return op;
}

static void free_per_value(gf_session_cuda *c)
{
    free(c->dev);
    free(c->where);
    free(c->dev_owner);
    free(c->mirror);
    c->dev = NULL;
    c->where = c->dev_owner = NULL;
    c->mirror = NULL;
    c->n = 0;
}

gf_status gf_session_cuda_arena(gf_session *s, size_t total, const size_t *offset)
{
    gf_session_cuda *c = s->cuda;
    if (!c->ctx) {
        gf_cuda_options o;
        gf_cuda_options_default(&o);
        o.device = c->device;
        o.parallel = s->opt.parallel;
        gf_status st = gf_cuda_ctx_new(&o, &c->ctx);
        if (st) return st;
    }
    size_t n = (size_t)s->n_vals + 1;
    c->dev = calloc(n, sizeof *c->dev);
    c->where = calloc(n, 1);
    c->dev_owner = calloc(n, 1);
    c->mirror = calloc(n, sizeof *c->mirror);
    if (!c->dev || !c->where || !c->dev_owner || !c->mirror) {
        free_per_value(c);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    c->n = s->n_vals;
    gf_status st = gf_cuda_alloc(c->ctx, total, &c->arena);
    if (st) {
        free_per_value(c);
        return gf_fail_context(st, "the activation arena");
    }
    for (int v = 0; v < s->n_vals; v++)
        if (offset[v] != SIZE_MAX) {
            c->dev[v] = (char *)c->arena + offset[v];
            s->vals[v].data = NULL; /* a mirror is made where the host needs it */
        }
    return GF_OK;
}

void gf_session_cuda_release(gf_session *s)
{
    gf_session_cuda *c = s->cuda;
    if (!c->ctx) return;
    gf_session_cuda_end(s);
    for (int v = 0; v < c->n; v++) {
        if (c->dev_owner[v] == OWN_PLAN) gf_cuda_free(c->ctx, c->dev[v]);
        if (c->mirror[v]) {
            free(c->mirror[v]);
            if (s->vals[v].data == c->mirror[v]) s->vals[v].data = NULL;
        }
    }
    gf_cuda_free(c->ctx, c->arena);
    c->arena = NULL;
    free_per_value(c);
}

/* ---- residency ---- */

/* The value whose storage v is: an in-place update source is its state. */
static int storage_of(const gf_session *s, int v)
{
    return s->kind[v] == VALUE_IN_PLACE ? s->in_place_of[v] : v;
}

static unsigned char *where_of(gf_session *s, int v)
{
    v = storage_of(s, v);
    return s->kind[v] == VALUE_STATE ? &s->cuda->state_where[v] : &s->cuda->where[v];
}

static const char *name_of(const gf_session *s, int v)
{
    return v < s->g->n_values ? s->g->values[v].name : "(a value graft made)";
}

/* v's device storage, made when it has none yet. */
static gf_status device_storage(gf_session *s, int v, void **out)
{
    gf_session_cuda *c = s->cuda;
    v = storage_of(s, v);
    size_t bytes = gf_tensor_nbytes(&s->vals[v]);
    void **slot = s->kind[v] == VALUE_STATE ? &c->state_dev[v] : &c->dev[v];
    if (!*slot) {
        gf_status st = gf_cuda_alloc(c->ctx, bytes, slot);
        if (st) return gf_fail_context(st, "value '%s'", name_of(s, v));
        if (s->kind[v] != VALUE_STATE)
            c->dev_owner[v] = s->kind[v] == VALUE_CONST ? OWN_PLAN : OWN_RUN;
    }
    *out = *slot;
    return GF_OK;
}

/* v's host storage (s->vals[v].data), with a mirror made for an arena value. */
static gf_status host_storage(gf_session *s, int v)
{
    gf_session_cuda *c = s->cuda;
    if (s->vals[v].data) return GF_OK;
    size_t bytes = gf_tensor_nbytes(&s->vals[v]);
    if (!bytes) return GF_OK;
    if (!(c->mirror[v] = malloc(bytes))) return gf_fail(GF_ERR_NOMEM, "out of memory: %zu bytes", bytes);
    s->vals[v].data = c->mirror[v];
    return GF_OK;
}

static gf_status not_computed(const gf_session *s, int v)
{
    return gf_fail(GF_ERR_RUNTIME, "value '%s' is read before any step computed it", name_of(s, v));
}

static gf_status to_host(gf_session *s, int v)
{
    unsigned char *w = where_of(s, v);
    if (*w & AT_HOST) return GF_OK;
    if (!(*w & AT_DEV)) return not_computed(s, v);
    void *dev;
    gf_status st = device_storage(s, v, &dev);
    if (!st) st = host_storage(s, v);
    if (!st) st = gf_cuda_to_host(s->cuda->ctx, s->vals[v].data, dev, gf_tensor_nbytes(&s->vals[v]));
    if (st) return gf_fail_context(st, "copying '%s' to the host", name_of(s, v));
    *w |= AT_HOST;
    return GF_OK;
}

static gf_status to_device(gf_session *s, int v, void **dev)
{
    unsigned char *w = where_of(s, v);
    gf_status st = device_storage(s, v, dev);
    if (st || (*w & AT_DEV)) return st;
    if (!(*w & AT_HOST)) return not_computed(s, v);
    st = gf_cuda_to_device(s->cuda->ctx, *dev, s->vals[v].data, gf_tensor_nbytes(&s->vals[v]));
    if (st) return gf_fail_context(st, "copying '%s' to the device", name_of(s, v));
    *w |= AT_DEV;
    return GF_OK;
}

/* ---- inputs copied ahead ---- */

gf_status gf_session_cuda_stage(gf_session *s, const gf_tensor *const *inputs)
{
    gf_session_cuda *c = s->cuda;
    if (!c->ctx) return GF_OK; /* no plan prepared yet: the first run copies its own */
    int n = s->g->n_inputs;
    staged_set *set = &c->staged[c->staged_next];
    drop_staged(s, set); /* staged two runs ago and never used */
    if (!set->host) {
        set->host = calloc((size_t)n, sizeof *set->host);
        set->bytes = calloc((size_t)n, sizeof *set->bytes);
        set->dev = calloc((size_t)n, sizeof *set->dev);
        if (!set->host || !set->bytes || !set->dev) return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) set->host[i] = NULL, set->bytes[i] = 0, set->dev[i] = NULL;
    set->used = 1;
    c->staged_next = (c->staged_next + 1) % STAGED_SETS;
    gf_status st = GF_OK;
    for (int i = 0; i < n && !st; i++) {
        size_t bytes = inputs[i] ? gf_tensor_nbytes(inputs[i]) : 0;
        if (!bytes) continue;
        st = gf_cuda_alloc(c->ctx, bytes, &set->dev[i]);
        if (!st) st = gf_cuda_prefetch(c->ctx, set->dev[i], inputs[i]->data, bytes, &set->done);
        if (st) st = gf_fail_context(st, "staging input '%s'", name_of(s, s->g->inputs[i]));
        set->host[i] = inputs[i]->data;
        set->bytes[i] = bytes;
    }
    if (st) drop_staged(s, set);
    return st;
}

/* The run's inputs that were staged take the staged device copies, and the compute
 * stream waits for those copies. */
static gf_status take_staged(gf_session *s)
{
    gf_session_cuda *c = s->cuda;
    for (int i = 0; i < s->g->n_inputs; i++) {
        int v = s->g->inputs[i];
        size_t bytes = gf_tensor_nbytes(&s->vals[v]);
        for (int k = 0; k < STAGED_SETS && bytes && !c->dev[v]; k++) {
            staged_set *set = &c->staged[k];
            if (!set->used || !set->dev[i] || set->host[i] != s->vals[v].data || set->bytes[i] != bytes) continue;
            gf_status st = set->consumed ? GF_OK : gf_cuda_wait_prefetch(c->ctx, set->done);
            if (st) return gf_fail_context(st, "input '%s'", name_of(s, v));
            set->consumed = 1;
            c->dev[v] = set->dev[i];
            c->dev_owner[v] = OWN_RUN;
            c->where[v] |= AT_DEV;
            set->dev[i] = NULL;
        }
    }
    return GF_OK;
}

gf_status gf_session_cuda_begin(gf_session *s)
{
    gf_session_cuda *c = s->cuda;
    for (int v = 0; v < c->n; v++) {
        switch (s->kind[v]) {
        case VALUE_CONST: c->where[v] = AT_HOST | (c->dev[v] ? AT_DEV : 0); break;
        case VALUE_INPUT: c->where[v] = AT_HOST; break;
        default: c->where[v] = 0; /* states keep theirs in state_where */
        }
    }
    return take_staged(s);
}

gf_status gf_session_cuda_host_inputs(gf_session *s, const gf_node *n)
{
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0) {
            gf_status st = to_host(s, n->inputs[k]);
            if (st) return st;
        }
    return GF_OK;
}

static gf_status run_on_cpu(gf_session *s, gf_op_ctx *ctx)
{
    const gf_node *n = ctx->node;
    gf_status st = gf_session_cuda_host_inputs(s, n);
    for (int k = 0; k < n->n_outputs && !st; k++)
        if (n->outputs[k] >= 0) st = host_storage(s, storage_of(s, n->outputs[k]));
    if (!st) st = n->op->cpu(ctx);
    for (int k = 0; k < n->n_outputs && !st; k++)
        if (n->outputs[k] >= 0) *where_of(s, n->outputs[k]) = AT_HOST;
    return st;
}

enum { VIEW_HOST, VIEW_DEVICE, VIEW_DEVICE_OUTPUT };

/* The kernel's tensor for value v: the plan's dtype and shape, its data current on the
 * host or the device, or (an output) device storage to write. */
static gf_status kernel_view(gf_session *s, int v, int kind, gf_tensor *t)
{
    *t = s->vals[v];
    t->owns_data = 0;
    if (kind == VIEW_DEVICE_OUTPUT) return device_storage(s, v, &t->data);
    if (kind == VIEW_DEVICE) return to_device(s, v, &t->data);
    gf_status st = to_host(s, v);
    t->data = s->vals[v].data;
    return st;
}

/* The kernel sees its inputs, then its outputs, as views: device storage, but for the
 * inputs its entry takes on the host. */
static gf_status run_on_gpu(gf_session *s, const gf_cuda_op *op, gf_op_ctx *ctx)
{
    const gf_node *n = ctx->node;
    int n_io = n->n_inputs + n->n_outputs;
    gf_tensor view_buf[24], *views = view_buf, *ptr_buf[24], **ptrs = ptr_buf;
    gf_status st = GF_OK;
    if (n_io > 24) {
        views = malloc((size_t)n_io * sizeof *views);
        ptrs = malloc((size_t)n_io * sizeof *ptrs);
        if (!views || !ptrs) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < n_io && !st; k++) {
        int output = k >= n->n_inputs, v = output ? n->outputs[k - n->n_inputs] : n->inputs[k];
        ptrs[k] = NULL;
        if (v < 0) continue;
        int kind = output ? VIEW_DEVICE_OUTPUT : gf_cuda_input_on_host(op, k) ? VIEW_HOST : VIEW_DEVICE;
        st = kernel_view(s, v, kind, &views[k]);
        ptrs[k] = &views[k];
    }
    if (!st) {
        gf_op_ctx dev_ctx = *ctx;
        dev_ctx.inputs = (const gf_tensor **)ptrs;
        dev_ctx.outputs = ptrs + n->n_inputs;
        st = op->run(&dev_ctx, s->cuda->ctx);
        if (!st) st = gf_cuda_after_kernel(s->cuda->ctx, &dev_ctx);
        /* A profile times each step to its end; a finite check reads its outputs. */
        if (!st && s->opt.profile) st = gf_cuda_sync(s->cuda->ctx);
    }
    for (int k = 0; k < n->n_outputs && !st; k++)
        if (n->outputs[k] >= 0) *where_of(s, n->outputs[k]) = AT_DEV;
    for (int k = 0; k < n->n_outputs && !st && s->check_finite; k++)
        if (n->outputs[k] >= 0 && s->vals[n->outputs[k]].dtype == GF_FLOAT) st = to_host(s, n->outputs[k]);
    if (views != view_buf) free(views), free(ptrs);
    return st;
}

gf_status gf_session_cuda_step(gf_session *s, const exec_node *e, gf_op_ctx *ctx)
{
    return e->cuda ? run_on_gpu(s, e->cuda, ctx) : run_on_cpu(s, ctx);
}

gf_status gf_session_cuda_finish(gf_session *s)
{
    gf_status st = gf_cuda_sync(s->cuda->ctx);
    for (int i = 0; i < s->g->n_outputs && !st; i++) st = to_host(s, s->g->outputs[i]);
    return st;
}

gf_status gf_session_cuda_updates(gf_session *s)
{
    for (int u = 0; u < s->g->n_updates; u++) {
        const gf_update *b = &s->g->updates[u];
        if (s->kind[b->source] == VALUE_IN_PLACE) continue; /* written where the state is */
        unsigned char *src_at = where_of(s, b->source), *state_at = &s->cuda->state_where[b->state];
        size_t bytes = gf_tensor_nbytes(&s->vals[b->source]);
        gf_status st;
        if (*src_at & AT_DEV) {
            void *src, *dst;
            st = device_storage(s, b->source, &src);
            if (!st) st = device_storage(s, b->state, &dst);
            if (!st) st = gf_cuda_copy(s->cuda->ctx, dst, src, bytes);
            if (!st) *state_at = AT_DEV;
        } else {
            memcpy(s->g->values[b->state].init->data, s->vals[b->source].data, bytes);
            *state_at = AT_HOST;
            st = GF_OK;
        }
        if (st) return gf_fail_context(st, "updating '%s'", name_of(s, b->state));
    }
    return GF_OK;
}

void gf_session_cuda_end(gf_session *s)
{
    gf_session_cuda *c = s->cuda;
    if (!c->ctx) return;
    /* A failed run may leave kernels queued and error sites registered: wait for them
     * (so that the next run's report is its own), keeping the failure's message. */
    if (c->ctx->n_sites) {
        char message[1024];
        snprintf(message, sizeof message, "%s", gf_last_error());
        gf_status st = gf_cuda_sync(c->ctx);
        if (st) gf_fail(st, "%s", message);
    }
    for (int k = 0; k < STAGED_SETS; k++)
        if (c->staged[k].consumed) drop_staged(s, &c->staged[k]);
    for (int v = 0; v < c->n; v++)
        if (c->dev_owner[v] == OWN_RUN) {
            gf_cuda_free(c->ctx, c->dev[v]);
            c->dev[v] = NULL;
            c->dev_owner[v] = OWN_NONE;
        }
}

gf_status gf_session_cuda_sync_states(gf_session *s)
{
    gf_session_cuda *c = s->cuda;
    for (int v = 0; v < s->g->n_values; v++) {
        if (c->state_where[v] & AT_HOST) continue;
        gf_tensor *state = s->g->values[v].init;
        gf_status st = gf_cuda_to_host(c->ctx, state->data, c->state_dev[v], gf_tensor_nbytes(state));
        if (st) return gf_fail_context(st, "copying '%s' to the host", name_of(s, v));
        c->state_where[v] |= AT_HOST;
    }
    return GF_OK;
}

void gf_session_cuda_states_changed(gf_session *s)
{
    memset(s->cuda->state_where, AT_HOST, (size_t)s->g->n_values + 1);
}
