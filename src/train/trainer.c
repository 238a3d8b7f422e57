/* The trainer: builds the training graph at the first step (forward in training
 * form, loss, gradients, optimizer steps) and runs it, one session run per step.
 *
 * The training graph's inputs are the model's, then "graft.labels", "graft.step"
 * and one learning rate per parameter group ("graft.lr.<g>"); its outputs the loss
 * and the model's first output. Parameters, optimizer state and running statistics
 * are state initializers: the model's own storage, updated after every run. */
#include "trainer_impl.h"

#include "../ops/op.h"
#include "../runtime/model.h"
#include "../runtime/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void gf_train_defaults(gf_train_options *o, gf_optimizer kind)
{
    memset(o, 0, sizeof *o);
    o->optim = (gf_optim_options){
        .kind = kind,
        .lr = kind == GF_OPTIM_SGD ? 0.01 : kind == GF_OPTIM_RMSPROP ? 0.01 : 0.001,
        .weight_decay = kind == GF_OPTIM_ADAMW ? 0.01 : 0,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .eps = kind == GF_OPTIM_RMSPROP ? 1e-8 : 1e-8,
        .alpha = 0.99,
        .asgd_lambd = 1e-4,
        .asgd_alpha = 0.75,
        .asgd_t0 = 1e6,
    };
    o->loss.ignore_index = -100;
}

gf_status gf_trainer_new(gf_model *m, const gf_train_options *opt, gf_trainer **out)
{
    *out = NULL;
    if (gf_model_num_outputs(m) < 1) return gf_fail(GF_ERR_INVALID, "%s: the model has no output to train", m->path);
    const gf_data_parallel *dp = &opt->session.parallel;
    if (dp->world_size > 1 && opt->session.device != GF_DEVICE_CUDA)
        return gf_fail(GF_ERR_UNSUPPORTED, "data parallel training (%d processes) averages gradients over NCCL, on "
                                           "CUDA devices: this trainer's session is on the CPU", dp->world_size);
    if (dp->world_size > 1 && (dp->rank < 0 || dp->rank >= dp->world_size))
        return gf_fail(GF_ERR_INVALID, "data parallel rank %d is not one of 0 .. %d", dp->rank, dp->world_size - 1);
    gf_status st = gf_model_keep_weights(m);
    if (!st) st = gf_untie_initializers(m->graph);
    if (st) return gf_fail_context(st, "%s", m->path);
    gf_trainer *t = calloc(1, sizeof *t);
    if (!t) return gf_fail(GF_ERR_NOMEM, "out of memory");
    t->model = m;
    t->opt = *opt;
    t->lr = opt->optim.lr;
    t->n_model_inputs = gf_model_num_inputs(m);
    *out = t;
    return GF_OK;
}

static void free_eval(gf_trainer *t)
{
    gf_session_free(t->eval_session);
    gf_graph_free(t->eval_graph);
    t->eval_session = NULL;
    t->eval_graph = NULL;
}

gf_status gf_trainer_sync_model(gf_trainer *t)
{
    if (!t->host_stale) return GF_OK;
    gf_status st = gf_session_sync_states(t->session);
    if (st) return gf_fail_context(st, "%s: bringing the trained weights back from the device", t->model->path);
    if (t->eval_session) gf_session_states_changed(t->eval_session);
    t->host_stale = 0;
    return GF_OK;
}

void gf_trainer_free(gf_trainer *t)
{
    if (!t) return;
    /* The model keeps what was trained, as the API promises; a failure here leaves it
     * as of the last sync, and the message says why. */
    gf_trainer_sync_model(t);
    free_eval(t);
    gf_session_free(t->session);
    gf_graph_free(t->graph);
    gf_param_set_free(&t->params);
    gf_tensor_free(t->output);
    gf_model_free(t->resume);
    free(t->schedule_spec);
    free(t);
}

static int add_input(gf_graph *g, const char *name, gf_dtype dtype, int rank)
{
    int v = gf_graph_value(g, name);
    if (v < 0) return -1;
    g->values[v].role = GF_ROLE_INPUT;
    g->values[v].dtype = dtype;
    g->values[v].rank = rank;
    for (int d = 0; d < rank; d++) g->values[v].dims[d] = -1;
    return v;
}

const float gf_yolov3_anchors[18] = {116, 90, 156, 198, 373, 326, 30, 61, 62, 45, 59, 119, 10, 13, 16, 30, 33, 23};

/* YoloV3Loss(targets, every output of the model, a head each). */
static int add_yolo_loss(gf_builder *b, const gf_loss_options *lo, const gf_graph *model, int labels)
{
    int in[1 + 8], out;
    if (model->n_outputs > 8) {
        gf_fail(GF_ERR_UNSUPPORTED, "a YOLOv3 loss over %d outputs: at most 8 heads", model->n_outputs);
        return -1;
    }
    in[0] = labels;
    for (int l = 0; l < model->n_outputs; l++) in[1 + l] = model->outputs[l];
    int ni = gb_node(b, GF_DOMAIN, "YoloV3Loss", "loss", 1 + model->n_outputs, in, 1, &out);
    const float *anchors = lo->anchors ? lo->anchors : gf_yolov3_anchors;
    int n = lo->anchors ? lo->n_anchor_values : 18;
    return ni < 0 || gb_attr_floats(b, ni, "anchors", anchors, n) ? -1 : out;
}

/* The loss node on the model's first output (a YOLOv3 loss: on all); returns the loss value. */
static int add_loss(gf_builder *b, const gf_loss_options *lo, const gf_graph *model, int labels)
{
    static const char *const ops[] = {"CrossEntropyLoss", "NegativeLogLikelihoodLoss", "MSELoss", "L1Loss",
                                      "BCEWithLogitsLoss"};
    int pred = model->outputs[0];
    if (lo->kind == GF_LOSS_YOLOV3) return add_yolo_loss(b, lo, model, labels);
    if ((unsigned)lo->kind >= sizeof ops / sizeof *ops) {
        gf_fail(GF_ERR_INVALID, "unknown loss %d", (int)lo->kind);
        return -1;
    }
    int classy = lo->kind == GF_LOSS_CROSS_ENTROPY || lo->kind == GF_LOSS_NLL;
    int weights = -1;
    if (classy && lo->class_weights) {
        int64_t dims[1] = {lo->n_class_weights};
        gf_tensor *w;
        if ((weights = gb_new_value(b, "loss.class_weights")) < 0 || gf_tensor_new(&w, GF_FLOAT, 1, dims)) return -1;
        memcpy(w->data, lo->class_weights, (size_t)lo->n_class_weights * sizeof(float));
        b->g->values[weights].init = w;
        b->g->values[weights].role = GF_ROLE_INITIALIZER;
    }
    int in[3] = {pred, labels, weights}, out[2];
    int n_out = lo->kind == GF_LOSS_CROSS_ENTROPY ? 2 : 1;
    const char *domain = lo->kind == GF_LOSS_NLL ? "" : GF_DOMAIN;
    int ni = gb_node(b, domain, ops[lo->kind], "loss", weights >= 0 ? 3 : 2, in, n_out, out);
    if (ni < 0) return -1;
    gf_status st = gb_attr_string(b, ni, "reduction", "mean");
    if (!st && classy) st = gb_attr_int(b, ni, "ignore_index", lo->ignore_index);
    if (!st && lo->kind == GF_LOSS_CROSS_ENTROPY) st = gb_attr_float(b, ni, "label_smoothing", (float)lo->label_smoothing);
    return st ? -1 : out[0];
}

static gf_status build(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *labels)
{
    gf_graph *model = t->model->graph;
    gf_session *shapes = NULL;
    gf_builder b = {0};
    int *grads = NULL, lr[65];
    gf_status st = gf_session_new(t->model, &t->opt.session, &shapes);
    if (!st) st = gf_session_plan(shapes, inputs);
    if (!st) st = gf_select_params(model, &t->opt, &t->params);
    if (st) goto out;
    if (t->opt.n_groups > 64) {
        st = gf_fail(GF_ERR_INVALID, "at most 64 parameter groups");
        goto out;
    }
    for (int i = 0; i < t->params.n && !st; i++) {
        int v = t->params.values[i];
        st = gf_own_storage(t->model, model->values[v].init, model->values[v].name);
    }
    for (int i = 0; i < model->n_nodes && !st; i++) {
        const gf_node *n = &model->nodes[i];
        if (strcmp(n->op_type, "BatchNormalization") || *n->domain) continue;
        for (int k = 3; k < 5 && k < n->n_inputs && !st; k++)
            if (n->inputs[k] >= 0 && model->values[n->inputs[k]].init)
                st = gf_own_storage(t->model, model->values[n->inputs[k]].init, model->values[n->inputs[k]].name);
    }
    if (st) goto out;

    b.g = t->graph = gf_graph_new();
    b.shapes = shapes;
    b.n_forward_values = model->n_values;
    b.shape_of = malloc(((size_t)model->n_values + 1) * sizeof *b.shape_of);
    grads = malloc(((size_t)t->params.n + 1) * sizeof *grads);
    if (!b.g || !b.shape_of || !grads) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int v = 0; v < model->n_values; v++) b.shape_of[v] = -1;
    int step;
    if ((st = gf_autodiff_forward(&b, model, t->opt.seed, t->opt.bn_momentum, &step))) goto out;
    int n_stat_updates = b.g->n_updates; /* the running statistics' */
    for (int i = 0; i < t->params.n; i++) b.g->values[t->params.values[i]].is_state = 1;

    int label_input = add_input(b.g, "graft.labels", labels->dtype, labels->rank);
    for (int k = 0; k <= t->opt.n_groups; k++) {
        char name[32];
        snprintf(name, sizeof name, "graft.lr.%d", k);
        lr[k] = add_input(b.g, name, GF_FLOAT, 0);
    }
    int pred = model->outputs[0];
    int loss = label_input < 0 ? -1 : add_loss(&b, &t->opt.loss, model, label_input);
    int checked = loss < 0 ? -1 : gb_graft1(&b, "CheckFinite", "loss", 1, &loss);
    if (checked < 0) {
        st = GF_ERR_INVALID;
        goto out;
    }
    if ((st = gf_autodiff_backward(&b, loss, t->params.values, t->params.n, grads))) goto out;
    if (t->opt.session.parallel.world_size > 1 && (st = gf_add_all_reduce(&b, &t->params, grads, n_stat_updates)))
        goto out;
    if ((st = gf_add_optimizer(&b, &t->opt, &t->params, grads, lr))) goto out;

    gf_graph *g = b.g;
    g->n_inputs = t->n_model_inputs + 2 + t->opt.n_groups + 1;
    g->n_outputs = 2;
    g->inputs = malloc((size_t)g->n_inputs * sizeof *g->inputs);
    g->outputs = malloc(2 * sizeof *g->outputs);
    if (!g->inputs || !g->outputs) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    int at = 0;
    for (int i = 0; i < t->n_model_inputs; i++) g->inputs[at++] = model->inputs[i];
    g->inputs[at++] = label_input;
    g->inputs[at++] = step;
    for (int k = 0; k <= t->opt.n_groups; k++) g->inputs[at++] = lr[k];
    for (int v = 0; v < g->n_values; v++) g->values[v].is_output = 0;
    g->outputs[0] = checked;
    g->outputs[1] = pred;
    g->values[checked].is_output = g->values[pred].is_output = 1;
    st = gf_session_new_graph(g, t->model->path, &t->opt.session, &t->session);
out:
    gf_session_free(shapes);
    free(b.shape_of);
    free(grads);
    if (st) {
        gf_graph_free(t->graph);
        t->graph = NULL;
        gf_param_set_free(&t->params);
    }
    return st;
}

/* The graph and session of gf_trainer_evaluate: the model in eval form (BatchNormalization
 * on running statistics, Dropout passing through), the loss, outputs (loss, prediction).
 * Its float initializers are state, bound when running, so it sees every update. */
static gf_status build_eval(gf_trainer *t, const gf_tensor *labels)
{
    gf_graph *model = t->model->graph;
    gf_builder b = {.g = gf_graph_new(), .n_forward_values = model->n_values};
    gf_status st = b.g ? gf_copy_forward(&b, model) : gf_fail(GF_ERR_NOMEM, "out of memory");
    int label_input = st ? -1 : add_input(b.g, "graft.labels", labels->dtype, labels->rank);
    int loss = label_input < 0 ? -1 : add_loss(&b, &t->opt.loss, model, label_input);
    if (!st && loss < 0) st = GF_ERR_INVALID;
    gf_graph *g = b.g;
    if (!st) {
        for (int v = 0; v < model->n_values; v++) {
            g->values[v].is_state = g->values[v].init && g->values[v].init->dtype == GF_FLOAT;
            g->values[v].is_output = 0;
        }
        g->n_inputs = t->n_model_inputs + 1;
        g->n_outputs = 1 + model->n_outputs;
        g->inputs = malloc((size_t)g->n_inputs * sizeof *g->inputs);
        g->outputs = malloc((size_t)g->n_outputs * sizeof *g->outputs);
        if (!g->inputs || !g->outputs) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        for (int i = 0; i < t->n_model_inputs; i++) g->inputs[i] = model->inputs[i];
        g->inputs[t->n_model_inputs] = label_input;
        g->outputs[0] = loss;
        g->values[loss].is_output = 1;
        for (int k = 0; k < model->n_outputs; k++) {
            g->outputs[1 + k] = model->outputs[k];
            g->values[model->outputs[k]].is_output = 1;
        }
        st = gf_session_new_graph(g, t->model->path, &t->opt.session, &t->eval_session);
    }
    if (st) {
        gf_graph_free(g);
        return st;
    }
    t->eval_graph = g;
    return GF_OK;
}

gf_status gf_trainer_evaluate(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *labels, double *loss,
                              gf_tensor **outputs)
{
    int n_out = t->model->graph->n_outputs;
    for (int k = 0; k < n_out; k++) outputs[k] = NULL;
    if (t->n_model_inputs > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "too many model inputs to evaluate");
    gf_status st = gf_trainer_sync_model(t);
    if (st) return st;
    st = t->eval_graph ? GF_OK : build_eval(t, labels);
    if (st) return gf_fail_context(st, "%s: building the evaluation graph", t->model->path);
    const gf_tensor *all[GF_MAX_RANK + 1];
    for (int i = 0; i < t->n_model_inputs; i++) all[i] = inputs[i];
    all[t->n_model_inputs] = labels;
    gf_tensor *outs[1 + 64] = {NULL};
    if (n_out > 64) return gf_fail(GF_ERR_UNSUPPORTED, "too many model outputs to evaluate");
    if ((st = gf_session_run(t->eval_session, all, outs))) return gf_fail_context(st, "evaluating");
    *loss = *(const float *)outs[0]->data;
    gf_tensor_free(outs[0]);
    for (int k = 0; k < n_out; k++) outputs[k] = outs[1 + k];
    return GF_OK;
}

/* After a step failed on its loss: the same step again, checking every node, to name
 * the first that produced a NaN or an infinity. Nothing was updated. */
static gf_status explain_non_finite(gf_trainer *t, const gf_tensor *const *all, gf_tensor **outs)
{
    char first[1024];
    snprintf(first, sizeof first, "%s", gf_last_error());
    gf_session_check_finite(t->session, 1);
    gf_status st = gf_session_run(t->session, all, outs);
    gf_session_check_finite(t->session, 0);
    for (int k = 0; k < 2; k++) gf_tensor_free(outs[k]);
    if (st)
        return gf_fail(GF_ERR_RUNTIME, "step %lld: the loss is not finite; the first non-finite value: %s",
                       (long long)t->steps_done + 1, gf_last_error());
    return gf_fail(GF_ERR_RUNTIME, "step %lld: %s", (long long)t->steps_done + 1, first);
}

/* The training graph for the current options: built at the first step, rebuilt when
 * what trains has changed (the optimizer state of parameters that go on training
 * carried over), with a resumed checkpoint's state applied once. */
static gf_status ensure_graph(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *labels)
{
    if (t->graph && !t->retrain) return GF_OK;
    gf_status st = gf_trainer_sync_model(t); /* the old graph's state is copied from the host */
    if (st) return st;
    gf_graph *old = t->graph;
    gf_session *old_session = t->session;
    gf_param_set old_params = t->params;
    t->graph = NULL;
    t->session = NULL;
    memset(&t->params, 0, sizeof t->params);
    st = build(t, inputs, labels);
    if (st) {
        t->graph = old;
        t->session = old_session;
        t->params = old_params;
        return gf_fail_context(st, "%s: building the training graph", t->model->path);
    }
    int n_model = t->model->graph->n_values;
    if (old) st = gf_copy_optimizer_state(old, t->graph, n_model, 0, t->model->path);
    else if (t->resume) st = gf_copy_optimizer_state(t->resume->graph, t->graph, n_model, 1, t->resume->path);
    gf_session_free(old_session);
    gf_graph_free(old);
    free_eval(t); /* it may read storage the new graph replaced */
    gf_param_set_free(&old_params);
    t->retrain = 0;
    return st;
}

gf_status gf_trainer_set_trainable(gf_trainer *t, const char *const *trainable, int n_trainable,
                                   const char *const *freeze, int n_freeze, const char *freeze_before)
{
    t->opt.trainable = trainable;
    t->opt.n_trainable = n_trainable;
    t->opt.freeze = freeze;
    t->opt.n_freeze = n_freeze;
    t->opt.freeze_before = freeze_before;
    t->retrain = 1;
    return GF_OK;
}

gf_status gf_trainer_set_schedule(gf_trainer *t, const char *spec)
{
    if (t->resume)
        return gf_fail(GF_ERR_INVALID, "set the schedule before resuming from a checkpoint, so that its position applies");
    gf_schedule sched;
    gf_status st = gf_schedule_parse(spec, t->opt.optim.lr, &sched);
    if (st) return st;
    char *copy = strdup(spec);
    if (!copy) return gf_fail(GF_ERR_NOMEM, "out of memory");
    free(t->schedule_spec);
    t->schedule_spec = copy;
    t->schedule = sched;
    t->has_schedule = 1;
    return GF_OK;
}

void gf_trainer_schedule_step(gf_trainer *t, double metric)
{
    if (t->has_schedule) gf_schedule_advance(&t->schedule, metric);
}

gf_status gf_trainer_step(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *labels, double *loss)
{
    gf_status st = ensure_graph(t, inputs, labels);
    if (st) return st;
    int n_groups = t->opt.n_groups;
    const gf_tensor *all[GF_MAX_RANK + 70];
    if (t->n_model_inputs > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "too many model inputs to train");
    int64_t step_no = t->steps_done + 1;
    float lrs[65];
    gf_tensor step = {GF_INT64, 0, {0}, &step_no, 0}, lr_t[65];
    int at = 0;
    for (int i = 0; i < t->n_model_inputs; i++) all[at++] = inputs[i];
    all[at++] = labels;
    all[at++] = &step;
    for (int k = 0; k <= n_groups; k++) {
        lrs[k] = (float)(gf_trainer_lr(t) * (k ? t->opt.groups[k - 1].lr_scale : 1));
        lr_t[k] = (gf_tensor){GF_FLOAT, 0, {0}, &lrs[k], 0};
        all[at++] = &lr_t[k];
    }
    gf_tensor *outs[2] = {NULL, NULL};
    st = gf_session_run(t->session, all, outs);
    if (st) {
        if (strstr(gf_last_error(), "CheckFinite")) return explain_non_finite(t, all, outs);
        return gf_fail_context(st, "step %lld", (long long)step_no);
    }
    *loss = *(const float *)outs[0]->data;
    gf_tensor_free(outs[0]);
    gf_tensor_free(t->output);
    t->output = outs[1];
    t->steps_done++;
    t->host_stale = 1;
    return GF_OK;
}

gf_status gf_trainer_stage(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *labels)
{
    if (!t->session) return GF_OK; /* the first step builds the graph */
    if (t->n_model_inputs > GF_MAX_RANK) return gf_fail(GF_ERR_UNSUPPORTED, "too many model inputs to train");
    /* the step's inputs, as gf_trainer_step orders them; its step number and rates are not worth staging */
    const gf_tensor *all[GF_MAX_RANK + 70] = {NULL};
    for (int i = 0; i < t->n_model_inputs; i++) all[i] = inputs[i];
    all[t->n_model_inputs] = labels;
    return gf_session_stage(t->session, all);
}

const gf_tensor *gf_trainer_output(const gf_trainer *t) { return t->output; }
void gf_trainer_set_lr(gf_trainer *t, double lr)
{
    t->lr = lr;
    t->has_schedule = 0;
}

double gf_trainer_lr(const gf_trainer *t) { return t->has_schedule ? gf_schedule_lr(&t->schedule) : t->lr; }
int64_t gf_trainer_steps_done(const gf_trainer *t) { return t->steps_done; }
int gf_trainer_num_params(const gf_trainer *t) { return t->params.n; }

const char *gf_trainer_param_name(const gf_trainer *t, int i)
{
    return i >= 0 && i < t->params.n ? t->model->graph->values[t->params.values[i]].name : NULL;
}
