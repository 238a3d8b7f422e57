/* The trainer's parts, private to src/train. */
#ifndef GF_TRAINER_IMPL_H
#define GF_TRAINER_IMPL_H

#include "schedule.h"
#include "train_graph.h"

/* The trainable parameters: value indices and group (0: the optimizer's own settings,
 * k > 0: options' groups[k - 1]). */
typedef struct gf_param_set {
    int n;
    int *values;
    int *group;
} gf_param_set;

gf_status gf_select_params(const gf_graph *g, const gf_train_options *opt, gf_param_set *out);
void gf_param_set_free(gf_param_set *p);

/* Adds one optimizer-step node per parameter with a gradient (grads[i] >= 0), its
 * state as zero-initialised state initializers named "<param>.<slot>" (the step count
 * "<param>.step" among them), and the update bindings. lr[g] is the float input
 * holding group g's learning rate. */
gf_status gf_add_optimizer(gf_builder *b, const gf_train_options *opt, const gf_param_set *p, const int *grads,
                           const int *lr);
/* Data parallel (data_parallel.c): replaces grads[i] and the sources of the first
 * n_stat_updates updates (the forward pass's running statistics) by their mean over
 * every process. */
gf_status gf_add_all_reduce(gf_builder *b, const gf_param_set *p, int *grads, int n_stat_updates);

struct gf_trainer {
    gf_model *model;
    gf_train_options opt;
    gf_graph *graph;          /* the training graph, NULL before the first step */
    gf_session *session;
    int host_stale;           /* steps ran since the model's storage was last brought up to date
                                 (a session on a GPU keeps the state there: gf_trainer_sync_model) */
    gf_param_set params;
    int n_model_inputs;
    double lr;
    int64_t steps_done;
    gf_tensor *output;        /* the model's first output, last step */
    gf_model *resume;         /* a checkpoint whose optimizer state waits for the graph to exist */
    int retrain;              /* what trains changed: rebuild the graph before the next step */
    gf_graph *eval_graph;     /* the model in eval form with the loss; NULL until evaluated, */
    gf_session *eval_session; /* and again each time the training graph is rebuilt */
    int has_schedule;
    char *schedule_spec;
    gf_schedule schedule;
};

/* Gives every value an exporter made as Identity(float initializer) an initializer
 * of its own (untie.c). */
gf_status gf_untie_initializers(gf_graph *g);

/* Copies the optimizer state (the state initializers past the model's own values) of
 * `from` into the training graph `to`, by name (checkpoint.c). Every state of `to`
 * must be found, with its shape, when `all` is set (resuming: `what` names the
 * checkpoint in errors); otherwise missing ones keep their fresh values (parameters
 * that start to train). */
gf_status gf_copy_optimizer_state(const gf_graph *from, gf_graph *to, int n_model_values, int all, const char *what);

#endif
