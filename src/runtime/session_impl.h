/* The session's insides, shared by session.c (planning, memory, running) and fuse.c
 * (the graph rewrites a plan applies: fusions, layouts, in-place outputs). Private to
 * src/runtime. */
#ifndef GF_SESSION_IMPL_H
#define GF_SESSION_IMPL_H

#include "session.h"

typedef enum value_kind {
    VALUE_UNUSED = 0,
    VALUE_CONST,   /* initializer or folded: data known at plan time */
    VALUE_STATE,   /* initializer that changes between runs: its data is bound when running */
    VALUE_INPUT,   /* points at the caller's data during a run */
    VALUE_ARENA,   /* static shape: lives in the arena */
    VALUE_DYNAMIC, /* shape known only while running: heap, freed after the run */
    VALUE_IN_PLACE,/* a state's new value, written straight into the state's storage */
} value_kind;

/* One step of the run: a node of the graph, or one the rewrites made (s->synth). */
typedef struct exec_node {
    const gf_node *node;
    int dynamic;              /* infer again while running */
    int in_place;             /* output 0 takes the storage of this input (-1: its own) */
    unsigned char *layout;    /* n_inputs then n_outputs GF_LAYOUT_* bytes; NULL: all plain */
} exec_node;

struct gf_session {
    const char *path;       /* the model's file, for messages */
    const gf_graph *g;
    gf_session_options opt;
    int check_finite;
    int rewrites;           /* fusions, layouts and in-place outputs (gf_session_set_rewrites) */

    int planned;
    int prepared;           /* the plan's kernels have built their fast paths (a run's plan) */
    /* Per value: the graph's values first, then the ones the rewrites add (n_vals in all). */
    int n_vals, cap_vals;
    gf_tensor *vals;        /* dtype, shape and data pointer */
    value_kind *kind;
    int *in_place_of;       /* per VALUE_IN_PLACE value: the state it is written into */
    gf_tensor **folded;     /* owned data of a folded or rewritten constant */
    unsigned char *layout;  /* GF_LAYOUT_* of each value's data */
    exec_node *run;         /* the steps, in order */
    int n_run, cap_run;
    gf_node **synth;        /* nodes the rewrites made, owned */
    int n_synth, cap_synth;
    void *arena;
    size_t arena_bytes;
    double flops;

    gf_op_time *times;
    int n_times, cap_times;
};

/* A new value of the session (not of the graph) shaped like `like`, no data; -1 when out
 * of memory. Invalidates pointers into the per-value arrays. */
int gf_session_add_value(gf_session *s, const gf_tensor *like, value_kind kind);
/* A node the session owns, with a copy of the given inputs and outputs and the
 * attributes of `attrs_of` (shared, not copied: the graph outlives the session) followed
 * by n_extra more; its op resolved from the registry. NULL when out of memory or when no
 * op is registered (the rewrites then leave the graph as it is). */
gf_node *gf_session_add_node(gf_session *s, const char *name, const char *domain, const char *op_type, int opset,
                             int n_inputs, const int *inputs, int n_outputs, const int *outputs,
                             const gf_node *attrs_of, int n_extra, const gf_attr *extra);

/* The rewrites, applied after the first planning pass (shapes known, constants folded,
 * s->run holding the graph's nodes still to run): fusions of Conv with the
 * BatchNormalization, Add and activation after it (inference), layouts (blocked
 * activations between kernels that take them, reorders at the borders) and in-place
 * outputs. They edit s->run and add values and nodes; they fail only when out of
 * memory. */
gf_status gf_session_rewrite(gf_session *s);

#endif
