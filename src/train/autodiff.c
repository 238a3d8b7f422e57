/* Reverse-mode differentiation over the IR.
 *
 * Forward: the model's graph is copied in training form (value indices kept).
 * Backward: nodes are visited from the last to the first; a node whose outputs
 * receive gradients and some of whose inputs want one asks its op's rule for
 * gradient nodes. A value's contributions from several consumers are summed.
 * Only float values that depend on a parameter want gradients, so integer and
 * shape paths stop them, and frozen parts before the first trainable parameter
 * get no backward nodes at all. */
#include "train_graph.h"

#include "../ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- forward ---- */

static gf_status copy_values(gf_graph *g, const gf_graph *model)
{
    for (int v = 0; v < model->n_values; v++) {
        const gf_value *src = &model->values[v];
        int i = gf_graph_value(g, src->name);
        if (i != v) return gf_fail(GF_ERR_NOMEM, "out of memory copying the graph");
        gf_value *dst = &g->values[i];
        dst->role = src->role;
        dst->dtype = src->dtype;
        dst->rank = src->rank;
        memcpy(dst->dims, src->dims, sizeof dst->dims);
        if (src->init) {
            /* The training graph reads and updates the model's own storage. */
            if (!(dst->init = malloc(sizeof *dst->init))) return gf_fail(GF_ERR_NOMEM, "out of memory");
            *dst->init = *src->init;
            dst->init->owns_data = 0;
        }
    }
    return GF_OK;
}

static int add_update(gf_graph *g, int state, int source)
{
    gf_update *u = realloc(g->updates, (size_t)(g->n_updates + 1) * sizeof *u);
    if (!u) return 0;
    g->updates = u;
    g->updates[g->n_updates++] = (gf_update){state, source};
    return 1;
}

/* BatchNormalization → BatchNormTrain: batch statistics, running ones updated. */
static gf_status batch_norm_train(gf_builder *b, const gf_node *n, double bn_momentum)
{
    if (n->n_inputs < 5 || n->inputs[3] < 0 || n->inputs[4] < 0)
        return gf_fail(GF_ERR_INVALID, "BatchNormalization needs 5 inputs");
    for (int k = 3; k < 5; k++)
        if (!b->g->values[n->inputs[k]].init)
            return gf_fail(GF_ERR_UNSUPPORTED, "running statistic '%s' is not an initializer; it cannot be updated",
                           b->g->values[n->inputs[k]].name);
    int out[5];
    int ni = gb_node(b, GF_DOMAIN, "BatchNormTrain", n->name, 5, n->inputs, 5, out);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    /* Y keeps its name and index so that later nodes read it unchanged. */
    gf_node *bn = &b->g->nodes[ni];
    b->g->values[out[0]].producer = -1;
    bn->outputs[0] = out[0] = n->outputs[0];
    b->g->values[out[0]].producer = ni;
    gf_status st = gb_attr_float(b, ni, "epsilon", gf_attr_float(n, "epsilon", 1e-5f));
    float momentum = bn_momentum > 0 ? (float)(1 - bn_momentum) : gf_attr_float(n, "momentum", 0.9f);
    if (!st) st = gb_attr_float(b, ni, "momentum", momentum);
    for (int k = 3; k < 5 && !st; k++) {
        b->g->values[n->inputs[k]].is_state = 1;
        if (!add_update(b->g, n->inputs[k], out[k])) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    return st;
}

/* Dropout's ratio: an attribute before opset 12, a constant input from then on. */
static gf_status dropout_ratio(const gf_builder *b, const gf_node *n, float *ratio)
{
    *ratio = gf_attr_float(n, "ratio", 0.5f);
    if (n->opset < 12 || n->n_inputs < 2 || n->inputs[1] < 0) return GF_OK;
    const gf_tensor *r = b->g->values[n->inputs[1]].init;
    if (!r || gf_tensor_numel(r) != 1) return gf_fail(GF_ERR_UNSUPPORTED, "the ratio must be a constant to train");
    *ratio = (float)gf_num_at(r, 0);
    return GF_OK;
}

static gf_status dropout_train(gf_builder *b, const gf_node *n, int node_index, uint64_t seed, int step)
{
    float ratio;
    gf_status st = dropout_ratio(b, n, &ratio);
    if (st) return st;
    int in[2] = {n->inputs[0], step}, out[2];
    int ni = gb_node(b, GF_DOMAIN, "DropoutTrain", n->name, 2, in, 2, out);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    for (int k = 0; k < 2; k++) {
        int keep = k < n->n_outputs ? n->outputs[k] : -1;
        if (keep < 0) continue;
        b->g->values[out[k]].producer = -1;
        b->g->nodes[ni].outputs[k] = keep;
        b->g->values[keep].producer = ni;
    }
    st = gb_attr_float(b, ni, "ratio", ratio);
    /* Each Dropout draws its own masks: the seed mixes in the node's position. */
    if (!st) st = gb_attr_int(b, ni, "seed", (int64_t)((seed * 0x9E3779B97F4A7C15ull + (uint64_t)node_index) >> 1));
    return st;
}

static gf_status copy_node(gf_builder *b, const gf_node *n)
{
    int ni = gf_graph_add_node(b->g, n->name, n->op_type, n->domain, n->n_inputs, n->inputs, n->n_outputs, n->outputs);
    if (ni < 0) return gf_fail(GF_ERR_NOMEM, "out of memory");
    b->g->nodes[ni].opset = n->opset;
    b->g->nodes[ni].op = n->op;
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) b->g->values[n->outputs[k]].producer = ni;
    return gb_copy_attrs(b, ni, n, NULL);
}

gf_status gf_copy_forward(gf_builder *b, const gf_graph *model)
{
    gf_status st = copy_values(b->g, model);
    for (int i = 0; i < model->n_nodes && !st; i++) st = copy_node(b, &model->nodes[i]);
    return st;
}

gf_status gf_autodiff_forward(gf_builder *b, const gf_graph *model, uint64_t seed, double bn_momentum, int *step_out)
{
    gf_status st = copy_values(b->g, model);
    int step = st ? -1 : gf_graph_value(b->g, "graft.step");
    if (!st && step < 0) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) {
        b->g->values[step].role = GF_ROLE_INPUT;
        b->g->values[step].dtype = GF_INT64;
        b->g->values[step].rank = 0;
    }
    *step_out = step;
    for (int i = 0; i < model->n_nodes && !st; i++) {
        const gf_node *n = &model->nodes[i];
        if (!strcmp(n->op_type, "BatchNormalization") && !*n->domain) st = batch_norm_train(b, n, bn_momentum);
        else if (!strcmp(n->op_type, "Dropout") && !*n->domain) st = dropout_train(b, n, i, seed, step);
        else st = copy_node(b, n);
        if (st) st = gf_fail_context(st, "node '%s' (%s)", n->name, n->op_type);
    }
    return st;
}

/* ---- backward ---- */

typedef struct grad_sum {
    int n, cap;
    int *parts;     /* contributions to this value's gradient */
    int total;      /* their sum once made, or -1 */
} grad_sum;

static int add_part(grad_sum *s, int v)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 2;
        int *p = realloc(s->parts, (size_t)cap * sizeof *p);
        if (!p) return 0;
        s->parts = p;
        s->cap = cap;
    }
    s->parts[s->n++] = v;
    return 1;
}

/* The gradient of value v: its one contribution, or the Sum of several. */
static int total_grad(gf_builder *b, grad_sum *sums, int v)
{
    grad_sum *s = &sums[v];
    if (s->total >= 0 || s->n == 0) return s->n ? s->total : -1;
    if (s->n == 1) return s->total = s->parts[0];
    char hint[300];
    snprintf(hint, sizeof hint, "grad/%s", b->g->values[v].name);
    int out;
    if (gb_node(b, "", "Sum", hint, s->n, s->parts, 1, &out) < 0) return -2;
    return s->total = out;
}

static int is_float(gf_dtype t) { return t == GF_FLOAT; }

/* Marks the values that depend on a parameter through float paths. */
static void mark_wants_grad(const gf_builder *b, int n_nodes, char *wants)
{
    const gf_graph *g = b->g;
    for (int i = 0; i < n_nodes; i++) {
        const gf_node *n = &g->nodes[i];
        int any = 0;
        for (int k = 0; k < n->n_inputs; k++) any |= n->inputs[k] >= 0 && wants[n->inputs[k]];
        if (!any) continue;
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0) continue;
            gf_dtype t = v < b->n_forward_values ? gb_dtype(b, v) : GF_FLOAT;
            /* Outputs the shape pass does not know (training-only ones) are float unless named otherwise. */
            if (t == GF_UNDEFINED) t = g->values[v].dtype == GF_UNDEFINED ? GF_FLOAT : g->values[v].dtype;
            wants[v] = (char)is_float(t);
        }
    }
}

static gf_status node_backward(gf_builder *b, grad_sum *sums, const char *wants, int ni)
{
    gf_grad_ctx c = {.b = b, .fwd = b->g->nodes[ni]};
    const gf_node *n = &c.fwd;
    int dy[64], dx[64];
    char needs[64];
    if (n->n_inputs > 64 || n->n_outputs > 64)
        return gf_fail(GF_ERR_UNSUPPORTED, "too many inputs or outputs to differentiate");
    int any_dy = 0, any_need = 0;
    for (int k = 0; k < n->n_outputs; k++) {
        int v = n->outputs[k];
        dy[k] = v >= 0 && wants[v] ? total_grad(b, sums, v) : -1;
        if (dy[k] == -2) return GF_ERR_NOMEM;
        any_dy |= dy[k] >= 0;
    }
    for (int k = 0; k < n->n_inputs; k++) {
        needs[k] = (char)(n->inputs[k] >= 0 && wants[n->inputs[k]]);
        any_need |= needs[k];
        dx[k] = -1;
    }
    if (!any_dy || !any_need) return GF_OK;
    const gf_grad_rule *rule = gf_grad_rule_find(n->domain, n->op_type);
    if (!rule)
        return gf_fail(GF_ERR_UNSUPPORTED,
                       "op %s has no gradient rule, and trainable parameters lie before it "
                       "(freeze them, or train only what follows this node)", n->op_type);
    c.dy = dy;
    c.needs = needs;
    c.dx = dx;
    gf_status st = rule->fn(&c);
    if (st) return st;
    for (int k = 0; k < n->n_inputs; k++)
        if (needs[k] && dx[k] >= 0 && !add_part(&sums[n->inputs[k]], dx[k]))
            return gf_fail(GF_ERR_NOMEM, "out of memory");
    return GF_OK;
}

gf_status gf_autodiff_backward(gf_builder *b, int loss, const int *params, int n_params, int *grads)
{
    int n_nodes = b->g->n_nodes;
    size_t nv = (size_t)b->g->n_values;
    char *wants = calloc(nv + 1, 1);
    grad_sum *sums = calloc(nv + 1, sizeof *sums);
    gf_status st = GF_OK;
    if (!wants || !sums) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t v = 0; v <= nv; v++) sums[v].total = -1;
    for (int i = 0; i < n_params; i++) wants[params[i]] = 1;
    mark_wants_grad(b, n_nodes, wants);
    if (!wants[loss]) {
        st = gf_fail(GF_ERR_INVALID, "the loss does not depend on any trainable parameter");
        goto out;
    }
    int seed = gb_const_float(b, "grad/loss", 1.0f);
    if (seed < 0 || !add_part(&sums[loss], seed)) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int ni = n_nodes - 1; ni >= 0 && !st; ni--) {
        st = node_backward(b, sums, wants, ni);
        if (st) {
            const gf_node *n = &b->g->nodes[ni];
            st = gf_fail_context(st, "node '%s' (%s)", n->name, n->op_type);
        }
    }
    for (int i = 0; i < n_params && !st; i++) {
        grads[i] = total_grad(b, sums, params[i]);
        if (grads[i] == -2) st = GF_ERR_NOMEM;
    }
out:
    for (size_t v = 0; sums && v <= nv; v++) free(sums[v].parts);
    free(sums);
    free(wants);
    return st;
}

const gf_grad_rule *gf_grad_rule_find(const char *domain, const char *op_type)
{
    const gf_grad_rule *tables[] = {gf_grad_rules_basic, gf_grad_rules_nn};
    if (!strcmp(domain, "ai.onnx")) domain = "";
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const gf_grad_rule *r = tables[t]; r->op_type; r++)
            if (!strcmp(r->op_type, op_type) && !strcmp(r->domain, domain)) return r;
    return NULL;
}
