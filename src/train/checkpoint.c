/* Checkpoints. A checkpoint is an ONNX file: the model with its current weights and
 * running statistics (any ONNX tool can load it, `graft run` runs it), plus the
 * optimizer's state as extra initializers named "<parameter>.<slot>", and metadata:
 * graft.checkpoint (format version), graft.step, graft.optimizer, and whatever the
 * caller adds (epoch, data order, schedule). Written atomically by the saver.
 *
 * Resuming copies weights and statistics into the model at once, the step count
 * into the trainer, and the optimizer state into the training graph once the first
 * step has built it. */
#include "trainer_impl.h"

#include "../runtime/model.h"
#include "../runtime/saver.h"
#include "../runtime/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECKPOINT_FORMAT "2" /* 2: per-parameter step counts */

static const char *const optimizer_names[] = {"sgd", "adam", "adamw", "rmsprop", "asgd"};

gf_status gf_trainer_save_checkpoint(gf_trainer *t, const char *path, int n_extra, const char *const *keys,
                                     const char *const *values)
{
    gf_status st = gf_trainer_sync_model(t);
    if (st) return st;
    const gf_graph *model = t->model->graph, *g = t->graph;
    int n_state = 0, n_meta = 0;
    for (int v = model->n_values; g && v < g->n_values; v++) n_state += g->values[v].is_state;
    const char **names = malloc(((size_t)n_state + 1) * sizeof *names);
    const gf_tensor **tensors = malloc(((size_t)n_state + 1) * sizeof *tensors);
    const char **mk = malloc(((size_t)n_extra + 5) * sizeof *mk), **mv = malloc(((size_t)n_extra + 5) * sizeof *mv);
    if (!names || !tensors || !mk || !mv) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    n_state = 0;
    for (int v = model->n_values; g && v < g->n_values; v++)
        if (g->values[v].is_state) {
            names[n_state] = g->values[v].name;
            tensors[n_state++] = g->values[v].init;
        }
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)t->steps_done);
    mk[n_meta] = "graft.checkpoint", mv[n_meta++] = CHECKPOINT_FORMAT;
    mk[n_meta] = "graft.step", mv[n_meta++] = step;
    mk[n_meta] = "graft.optimizer", mv[n_meta++] = optimizer_names[t->opt.optim.kind];
    char schedule[256];
    if (t->has_schedule) {
        gf_schedule_state_format(&t->schedule, schedule, sizeof schedule);
        mk[n_meta] = "graft.schedule", mv[n_meta++] = t->schedule_spec;
        mk[n_meta] = "graft.schedule.state", mv[n_meta++] = schedule;
    }
    for (int i = 0; i < n_extra; i++) mk[n_meta] = keys[i], mv[n_meta++] = values[i];
    st = gf_model_save_extra(t->model, path, n_state, names, tensors, n_meta, mk, mv);
out:
    free(names);
    free(tensors);
    free(mk);
    free(mv);
    return st;
}

static const char *meta(const gf_graph *g, const char *key)
{
    for (int i = 0; i < g->n_meta; i++)
        if (!strcmp(g->meta_keys[i], key)) return g->meta_values[i];
    return NULL;
}

const char *gf_trainer_checkpoint_value(const gf_trainer *t, const char *key)
{
    return t->resume ? meta(t->resume->graph, key) : NULL;
}

static int same_shape(const gf_tensor *a, const gf_tensor *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

/* The checkpoint must hold this model: the same ops in the same order, and every
 * initializer with the same type and shape. */
static gf_status check_same_model(const gf_graph *model, const gf_graph *ck, const char *path)
{
    if (model->n_nodes != ck->n_nodes)
        return gf_fail(GF_ERR_INVALID, "%s is a checkpoint of another model: it has %d nodes, this model %d", path,
                       ck->n_nodes, model->n_nodes);
    for (int i = 0; i < model->n_nodes; i++)
        if (strcmp(model->nodes[i].op_type, ck->nodes[i].op_type))
            return gf_fail(GF_ERR_INVALID, "%s is a checkpoint of another model: node %d is %s there, %s here", path, i,
                           ck->nodes[i].op_type, model->nodes[i].op_type);
    for (int v = 0; v < model->n_values; v++) {
        const gf_tensor *mine = model->values[v].init;
        if (!mine) continue;
        int c = gf_graph_find_value(ck, model->values[v].name);
        const gf_tensor *theirs = c >= 0 ? ck->values[c].init : NULL;
        char a[96], b[96];
        if (!theirs)
            return gf_fail(GF_ERR_INVALID, "%s is a checkpoint of another model: it has no initializer '%s'", path,
                           model->values[v].name);
        if (!same_shape(mine, theirs))
            return gf_fail(GF_ERR_INVALID, "%s is a checkpoint of another model: initializer '%s' is %s %s there, %s %s here",
                           path, model->values[v].name, gf_dtype_name(theirs->dtype), gf_shape_str(theirs, a, sizeof a),
                           gf_dtype_name(mine->dtype), gf_shape_str(mine, b, sizeof b));
    }
    return GF_OK;
}

/* The schedule must be the one the checkpoint was written with; it goes on from there. */
static gf_status resume_schedule(gf_trainer *t, const gf_graph *ck, const char *path)
{
    const char *spec = meta(ck, "graft.schedule"), *state = meta(ck, "graft.schedule.state");
    const char *mine = t->has_schedule ? t->schedule_spec : NULL;
    if (!spec && !mine) return GF_OK;
    if (!spec || !mine || strcmp(spec, mine))
        return gf_fail(GF_ERR_INVALID, "%s was written with %s%s%s; this training has %s%s%s", path,
                       spec ? "the schedule '" : "no schedule", spec ? spec : "", spec ? "'" : "",
                       mine ? "the schedule '" : "none", mine ? mine : "", mine ? "'" : "");
    gf_schedule resumed = t->schedule;
    gf_status st = state ? gf_schedule_state_parse(&resumed, state)
                         : gf_fail(GF_ERR_INVALID, "%s: the schedule's position is missing", path);
    if (st) return gf_fail_context(st, "%s", path);
    t->schedule = resumed;
    return GF_OK;
}

/* A step count as written: decimal digits, small enough that counting on cannot overflow. */
static int parse_step(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (!*s) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX / 4 - 9) / 10) return 0;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 1;
}

gf_status gf_trainer_load_checkpoint(gf_trainer *t, const char *path)
{
    if (t->graph) return gf_fail(GF_ERR_INVALID, "resume from a checkpoint before the first step");
    gf_model *ck = NULL;
    gf_status st = gf_model_load(path, &ck);
    if (st) return st;
    const gf_graph *cg = ck->graph, *mg = t->model->graph;
    const char *format = meta(cg, "graft.checkpoint"), *step = meta(cg, "graft.step"), *optim = meta(cg, "graft.optimizer");
    if (!format || !step || !optim) st = gf_fail(GF_ERR_INVALID, "%s is not a graft checkpoint (an ONNX model without graft's "
                                                "training metadata)", path);
    else if (strcmp(format, CHECKPOINT_FORMAT))
        st = gf_fail(GF_ERR_UNSUPPORTED, "%s: checkpoint format %s; this graft reads format %s", path, format, CHECKPOINT_FORMAT);
    else if (strcmp(optim, optimizer_names[t->opt.optim.kind]))
        st = gf_fail(GF_ERR_INVALID, "%s was written by a %s optimizer; this training uses %s", path, optim,
                     optimizer_names[t->opt.optim.kind]);
    int64_t steps_done = 0;
    if (!st && !parse_step(step, &steps_done))
        st = gf_fail(GF_ERR_INVALID, "%s: graft.step is '%s', not a count of steps", path, step);
    if (!st) st = check_same_model(mg, cg, path);
    if (!st) st = resume_schedule(t, cg, path);
    for (int v = 0; v < mg->n_values && !st; v++) {
        gf_tensor *mine = mg->values[v].init;
        if (!mine || mine->dtype != GF_FLOAT) continue;
        const gf_tensor *theirs = cg->values[gf_graph_find_value(cg, mg->values[v].name)].init;
        if (!(st = gf_own_storage(t->model, mine, mg->values[v].name))) memcpy(mine->data, theirs->data, gf_tensor_nbytes(mine));
    }
    if (st) {
        gf_model_free(ck);
        return st;
    }
    gf_model_free(t->resume);
    t->resume = ck;
    t->steps_done = steps_done;
    if (t->eval_session) gf_session_states_changed(t->eval_session);
    return GF_OK;
}

gf_status gf_copy_optimizer_state(const gf_graph *from, gf_graph *to, int n_model_values, int all, const char *what)
{
    for (int v = n_model_values; v < to->n_values; v++) {
        if (!to->values[v].is_state) continue;
        int c = gf_graph_find_value(from, to->values[v].name);
        const gf_tensor *theirs = c >= 0 ? from->values[c].init : NULL;
        if (theirs && same_shape(theirs, to->values[v].init))
            memcpy(to->values[v].init->data, theirs->data, gf_tensor_nbytes(theirs));
        else if (all)
            return gf_fail(GF_ERR_INVALID, "%s: optimizer state '%s' is missing or of another shape (other optimizer "
                           "settings than the run that wrote it?)", what, to->values[v].name);
    }
    return GF_OK;
}
