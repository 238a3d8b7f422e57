/* The optimizer's nodes: one functional step op per parameter (ops/optimizer.c),
 * whose new values the update bindings write back after each step. */
#include "trainer_impl.h"

#include "../ops/op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A state initializer of `dtype` shaped like the parameter (or a scalar), filled with `fill`. */
static int add_typed_state(gf_builder *b, int param, const char *slot, gf_dtype dtype, int scalar, float fill)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", b->g->values[param].name, slot);
    if (gf_graph_find_value(b->g, name) >= 0) {
        gf_fail(GF_ERR_INVALID, "optimizer state '%s' clashes with a value of the model", name);
        return -1;
    }
    int v = gf_graph_value(b->g, name);
    const gf_tensor *like = b->g->values[param].init;
    gf_tensor *t = NULL;
    if (v < 0 || gf_tensor_new(&t, dtype, scalar ? 0 : like->rank, like->dims)) {
        gf_fail(GF_ERR_NOMEM, "out of memory for optimizer state '%s'", name);
        return -1;
    }
    for (int64_t i = 0, n = gf_tensor_numel(t); i < n; i++) {
        if (dtype == GF_INT64) ((int64_t *)t->data)[i] = (int64_t)fill;
        else ((float *)t->data)[i] = fill;
    }
    gf_value *val = &b->g->values[v];
    val->init = t;
    val->role = GF_ROLE_INITIALIZER;
    val->is_state = 1;
    return v;
}

/* A state initializer shaped like the parameter (or a scalar), filled with `fill`. */
static int add_state(gf_builder *b, int param, const char *slot, int scalar, float fill)
{
    return add_typed_state(b, param, slot, GF_FLOAT, scalar, fill);
}

/* The parameter's own step count, as torch keeps state['step'] per parameter: an int64
 * state, 0 before its first update, and the node that makes this step's number (1
 * first). A parameter that starts training late (unfrozen) starts counting then. */
static int param_step(gf_builder *b, int param)
{
    int count = add_typed_state(b, param, "step", GF_INT64, 1, 0);
    int one = count < 0 ? -1 : gb_const_int(b, "step.one", 1);
    int next = one < 0 ? -1 : gb_op2(b, "Add", b->g->values[param].name, count, one);
    if (next < 0) return -1;
    gf_update *u = realloc(b->g->updates, (size_t)(b->g->n_updates + 1) * sizeof *u);
    if (!u) {
        gf_fail(GF_ERR_NOMEM, "out of memory");
        return -1;
    }
    b->g->updates = u;
    u[b->g->n_updates++] = (gf_update){count, next, 0};
    return next;
}

/* The step ops are element-wise: each may write its new values over its state. */
static gf_status bind_updates(gf_builder *b, int n, const int *states, const int *sources)
{
    gf_update *u = realloc(b->g->updates, (size_t)(b->g->n_updates + n) * sizeof *u);
    if (!u) return gf_fail(GF_ERR_NOMEM, "out of memory");
    b->g->updates = u;
    for (int k = 0; k < n; k++)
        if (states[k] >= 0) u[b->g->n_updates++] = (gf_update){states[k], sources[k], 1};
    return GF_OK;
}

/* The node's inputs: param, grad, then the optimizer's own; outputs: the new param,
 * then each state's new value in the order of `states`. */
static gf_status add_step(gf_builder *b, const char *op, int n_in, const int *in, int n_state, const int *states,
                          int *node)
{
    int out[8];
    int ni = gb_node(b, GF_DOMAIN, op, b->g->values[in[0]].name, n_in, in, 1 + n_state, out);
    if (ni < 0) return GF_ERR_UNSUPPORTED;
    *node = ni;
    int targets[8] = {in[0]};
    for (int k = 0; k < n_state; k++) {
        targets[1 + k] = states[k];
        if (states[k] < 0) b->g->nodes[ni].outputs[1 + k] = -1;
    }
    return bind_updates(b, 1 + n_state, targets, out);
}

/* lr0: the group's learning rate at the start (ASGD's first eta). */
static gf_status add_param_step(gf_builder *b, const gf_optim_options *o, double wd, double lr0, int p, int g, int lr)
{
    int ni = -1;
    gf_status st;
    int step = o->kind == GF_OPTIM_RMSPROP ? -1 : param_step(b, p);
    if (o->kind != GF_OPTIM_RMSPROP && step < 0) return GF_ERR_NOMEM;
    switch (o->kind) {
    case GF_OPTIM_SGD: {
        int buf = o->momentum != 0 ? add_state(b, p, "momentum_buffer", 0, 0) : -1;
        if (o->momentum != 0 && buf < 0) return GF_ERR_NOMEM;
        int in[5] = {p, g, buf, lr, step};
        if ((st = add_step(b, "SGDStep", 5, in, 1, &buf, &ni))) return st;
        st = gb_attr_float(b, ni, "momentum", (float)o->momentum);
        if (!st) st = gb_attr_float(b, ni, "dampening", (float)o->dampening);
        if (!st) st = gb_attr_int(b, ni, "nesterov", o->nesterov);
        break;
    }
    case GF_OPTIM_ADAM:
    case GF_OPTIM_ADAMW: {
        int s[3] = {add_state(b, p, "exp_avg", 0, 0), add_state(b, p, "exp_avg_sq", 0, 0),
                    o->amsgrad ? add_state(b, p, "max_exp_avg_sq", 0, 0) : -1};
        if (s[0] < 0 || s[1] < 0 || (o->amsgrad && s[2] < 0)) return GF_ERR_NOMEM;
        int in[7] = {p, g, s[0], s[1], lr, step, s[2]};
        if ((st = add_step(b, "AdamStep", o->amsgrad ? 7 : 6, in, o->amsgrad ? 3 : 2, s, &ni))) return st;
        st = gb_attr_float(b, ni, "beta1", (float)o->beta1);
        if (!st) st = gb_attr_float(b, ni, "beta2", (float)o->beta2);
        if (!st) st = gb_attr_float(b, ni, "epsilon", (float)o->eps);
        if (!st) st = gb_attr_int(b, ni, "decoupled", o->kind == GF_OPTIM_ADAMW);
        if (!st) st = gb_attr_int(b, ni, "amsgrad", o->amsgrad);
        break;
    }
    case GF_OPTIM_RMSPROP: {
        int s[3] = {add_state(b, p, "square_avg", 0, 0), o->momentum != 0 ? add_state(b, p, "momentum_buffer", 0, 0) : -1,
                    o->centered ? add_state(b, p, "grad_avg", 0, 0) : -1};
        if (s[0] < 0 || (o->momentum != 0 && s[1] < 0) || (o->centered && s[2] < 0)) return GF_ERR_NOMEM;
        int in[6] = {p, g, s[0], lr, s[1], s[2]};
        if ((st = add_step(b, "RMSpropStep", 6, in, 3, s, &ni))) return st;
        st = gb_attr_float(b, ni, "alpha", (float)o->alpha);
        if (!st) st = gb_attr_float(b, ni, "epsilon", (float)o->eps);
        if (!st) st = gb_attr_float(b, ni, "momentum", (float)o->momentum);
        if (!st) st = gb_attr_int(b, ni, "centered", o->centered);
        break;
    }
    case GF_OPTIM_ASGD: {
        int s[3] = {add_state(b, p, "ax", 0, 0), add_state(b, p, "eta", 1, (float)lr0), add_state(b, p, "mu", 1, 1)};
        if (s[0] < 0 || s[1] < 0 || s[2] < 0) return GF_ERR_NOMEM;
        int in[7] = {p, g, s[0], s[1], s[2], lr, step};
        if ((st = add_step(b, "ASGDStep", 7, in, 3, s, &ni))) return st;
        st = gb_attr_float(b, ni, "lambd", (float)o->asgd_lambd);
        if (!st) st = gb_attr_float(b, ni, "alpha", (float)o->asgd_alpha);
        if (!st) st = gb_attr_float(b, ni, "t0", (float)o->asgd_t0);
        break;
    }
    default:
        return gf_fail(GF_ERR_INVALID, "unknown optimizer %d", (int)o->kind);
    }
    return st ? st : gb_attr_float(b, ni, "weight_decay", (float)wd);
}

/* Scales every gradient so that their global L2 norm is at most max_norm. */
static gf_status clip_gradients(gf_builder *b, const gf_param_set *p, int *grads, double max_norm)
{
    int *in = malloc((size_t)p->n * sizeof *in), n = 0;
    if (!in) return gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n; i++)
        if (grads[i] >= 0) in[n++] = grads[i];
    int norm = gb_graft1(b, "GradNorm", "clip", n, in);
    free(in);
    int scale = norm < 0 ? -1 : gb_graft1(b, "ClipGradScale", "clip", 1, &norm);
    if (scale < 0) return GF_ERR_UNSUPPORTED;
    gf_status st = gb_attr_float(b, b->g->values[scale].producer, "max_norm", (float)max_norm);
    for (int i = 0; i < p->n && !st; i++)
        if (grads[i] >= 0 && (grads[i] = gb_op2(b, "Mul", "clip", grads[i], scale)) < 0) st = GF_ERR_UNSUPPORTED;
    return st;
}

gf_status gf_add_optimizer(gf_builder *b, const gf_train_options *opt, const gf_param_set *p, const int *grads_in,
                           const int *lr)
{
    int *grads = malloc((size_t)p->n * sizeof *grads);
    if (!grads) return gf_fail(GF_ERR_NOMEM, "out of memory");
    memcpy(grads, grads_in, (size_t)p->n * sizeof *grads);
    gf_status st = opt->optim.clip_norm > 0 ? clip_gradients(b, p, grads, opt->optim.clip_norm) : GF_OK;
    for (int i = 0; i < p->n && !st; i++) {
        if (grads[i] < 0) continue; /* the loss does not depend on it: left as it is, as PyTorch does */
        int group = p->group[i];
        double wd = group && opt->groups[group - 1].weight_decay >= 0 ? opt->groups[group - 1].weight_decay
                                                                      : opt->optim.weight_decay;
        double lr0 = opt->optim.lr * (group ? opt->groups[group - 1].lr_scale : 1);
        st = add_param_step(b, &opt->optim, wd, lr0, p->values[i], grads[i], lr[group]);
        if (st) st = gf_fail_context(st, "optimizer step of '%s'", b->g->values[p->values[i]].name);
    }
    free(grads);
    return st;
}
