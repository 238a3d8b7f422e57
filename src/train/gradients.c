/* Gradients of a model's scalar first output with respect to every float
 * initializer, with the forward in training form: what the gradient checker
 * compares against finite differences, one rule at a time. */
#include "gradients.h"

#include "../ops/op.h"
#include "../runtime/model.h"
#include "../runtime/session.h"

#include <stdlib.h>
#include <string.h>

struct gf_gradients {
    gf_graph *graph;
    gf_session *session;
    int n;            /* initializers with a gradient */
    int *values;      /* their value indices */
    int step;         /* the "graft.step" input's index among the graph inputs */
};

void gf_gradients_free(gf_gradients *gr)
{
    if (!gr) return;
    gf_session_free(gr->session);
    gf_graph_free(gr->graph);
    free(gr->values);
    free(gr);
}

static gf_status build(gf_gradients *gr, gf_model *m, const gf_session *shapes)
{
    const gf_graph *model = m->graph;
    gf_builder b = {.shapes = shapes, .n_forward_values = model->n_values};
    int *params = malloc(((size_t)model->n_values + 1) * sizeof *params);
    int *grads = malloc(((size_t)model->n_values + 1) * sizeof *grads);
    b.g = gr->graph = gf_graph_new();
    b.shape_of = malloc(((size_t)model->n_values + 1) * sizeof *b.shape_of);
    gf_status st = GF_OK;
    if (!params || !grads || !b.g || !b.shape_of) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    int n_params = 0, step;
    for (int v = 0; v < model->n_values; v++) {
        b.shape_of[v] = -1;
        const gf_tensor *init = model->values[v].init;
        if (init && init->dtype == GF_FLOAT && gf_tensor_numel(init) > 0) params[n_params++] = v;
    }
    for (int i = 0; i < n_params && !st; i++) st = gf_own_storage(m, model->values[params[i]].init, model->values[params[i]].name);
    if (st) goto out;
    if ((st = gf_autodiff_forward(&b, model, 0, 0, &step))) goto out;
    for (int i = 0; i < n_params; i++) b.g->values[params[i]].is_state = 1;
    if ((st = gf_autodiff_backward(&b, model->outputs[0], params, n_params, grads))) goto out;

    gf_graph *g = b.g;
    if (!(gr->values = malloc((size_t)(n_params + 1) * sizeof *gr->values)) ||
        !(g->outputs = malloc((size_t)(n_params + 1) * sizeof *g->outputs)) ||
        !(g->inputs = malloc((size_t)(model->n_inputs + 1) * sizeof *g->inputs))) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int v = 0; v < g->n_values; v++) g->values[v].is_output = 0;
    g->outputs[g->n_outputs++] = model->outputs[0];
    for (int i = 0; i < n_params; i++) {
        if (grads[i] < 0) continue;
        /* A gradient that is a parameter's own value (d(x)/dx of an Identity) is still an output. */
        g->outputs[g->n_outputs++] = grads[i];
        gr->values[gr->n++] = params[i];
    }
    for (int k = 0; k < g->n_outputs; k++) g->values[g->outputs[k]].is_output = 1;
    for (int i = 0; i < model->n_inputs; i++) g->inputs[g->n_inputs++] = model->inputs[i];
    gr->step = g->n_inputs;
    g->inputs[g->n_inputs++] = step;
    st = gf_session_new_graph(g, m->path, NULL, &gr->session);
out:
    free(params);
    free(grads);
    free(b.shape_of);
    return st;
}

gf_status gf_gradients_new(gf_model *m, const gf_tensor *const *inputs, gf_gradients **out)
{
    *out = NULL;
    gf_gradients *gr = calloc(1, sizeof *gr);
    if (!gr) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_session *shapes = NULL;
    gf_status st = gf_model_keep_weights(m);
    if (!st) st = gf_session_new(m, NULL, &shapes);
    if (!st) st = gf_session_plan(shapes, inputs);
    if (!st) st = build(gr, m, shapes);
    gf_session_free(shapes);
    if (st) {
        gf_gradients_free(gr);
        return st;
    }
    *out = gr;
    return GF_OK;
}

int gf_gradients_count(const gf_gradients *gr) { return gr->n; }
const char *gf_gradients_name(const gf_gradients *gr, int i) { return gr->graph->values[gr->values[i]].name; }
gf_tensor *gf_gradients_param(gf_gradients *gr, int i) { return gr->graph->values[gr->values[i]].init; }

gf_status gf_gradients_run(gf_gradients *gr, const gf_tensor *const *inputs, double *loss, gf_tensor **grads)
{
    const gf_tensor *all[GF_MAX_RANK + 1];
    int n_in = gr->graph->n_inputs - 1;
    if (n_in > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "too many inputs");
    int64_t step_no = 1;
    gf_tensor step = {GF_INT64, 0, {0}, &step_no, 0};
    for (int i = 0; i < n_in; i++) all[i] = inputs[i];
    all[gr->step] = &step;
    gf_tensor **outs = calloc((size_t)gr->n + 1, sizeof *outs);
    if (!outs) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_status st = gf_session_run(gr->session, all, outs);
    if (!st) {
        *loss = gf_num_at(outs[0], 0);
        gf_tensor_free(outs[0]);
        for (int i = 0; i < gr->n; i++) {
            if (grads) grads[i] = outs[1 + i];
            else gf_tensor_free(outs[1 + i]);
        }
    }
    free(outs);
    return st;
}
