/* The session's insides, shared by session.c (planning, memory, running) and fuse.c
 * (the graph rewrites a plan applies: fusions, layouts, in-place outputs). Private to
 * src/runtime. */
#ifndef GF_SESSION_IMPL_H
#define GF_SESSION_IMPL_H

#include "session.h"

#include "../ops/op.h"

typedef enum value_kind {
    VALUE_UNUSED = 0,
    VALUE_CONST,   /* initializer or folded: data known at plan time */
    VALUE_STATE,   /* initializer that changes between runs: its data is bound when running */
    VALUE_INPUT,   /* points at the caller's data during a run */
    VALUE_ARENA,   /* static shape: lives in the arena */
    VALUE_DYNAMIC, /* shape known only while running: heap, freed after the run */
    VALUE_IN_PLACE,/* a state's new value, written straight into the state's storage */
} value_kind;

struct gf_cuda_op;
struct gf_external;
typedef struct gf_session_cuda gf_session_cuda;

/* One step of the run: a node of the graph, or one the rewrites made (s->synth). */
typedef struct exec_node {
    const gf_node *node;
    int dynamic;              /* infer again while running */
    int in_place;             /* output 0 takes the storage of this input (-1: its own) */
    unsigned char *layout;    /* n_inputs then n_outputs GF_LAYOUT_* bytes; NULL: all plain */
    const struct gf_cuda_op *cuda; /* a CUDA session's kernel for the step; NULL: it runs on the CPU */
    gf_kept kept;             /* a constant input the kernel holds a copy of (gf_op_ctx) */
    size_t scratch_bytes;     /* the kernel's scratch memory while running (gf_op_ctx) */
    void *scratch;            /* where it is, in the arena; NULL: the kernel finds its own */
} exec_node;

struct gf_session {
    const char *path;       /* the model's file, for messages */
    const gf_graph *g;
    struct gf_external *file_maps; /* the model's mappings and weight copies; NULL: a graph of no model */
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

    gf_session_cuda *cuda;  /* a session on a GPU (session_cuda.c); NULL on the CPU */
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

/* ---- a session on a GPU (session_cuda.c, in CUDA builds) ----
 *
 * The plan is the CPU's: infer, folding and the Conv fusions run on the host (the
 * layouts and in-place outputs, which are oneDNN's, do not apply). Then each step whose
 * op has a CUDA kernel that takes its shapes and dtypes is placed on the GPU; the rest
 * (data-dependent shapes, ops without a kernel) run on the CPU. Every value knows where
 * its current data is (host, device or both) and is copied only where a step on the
 * other side reads it: the activations the GPU steps make live in one device arena
 * planned like the CPU's, constants go to the device once per plan, graph inputs at
 * the run's start, outputs back at its end. State (the trained parameters and optimizer
 * moments) stays on the device across runs and plans: gf_session_sync_states brings it
 * back to the host, gf_session_states_changed says the host's copy has been written. */

#ifdef GF_HAVE_CUDA
/* Checks that the session's device exists; the context starts at the first prepared plan. */
gf_status gf_session_cuda_new(gf_session *s);
void gf_session_cuda_free(gf_session *s);
/* The step's CUDA kernel when it has one that takes the node as planned (ctx bound to
 * the plan's tensors), else NULL. */
const struct gf_cuda_op *gf_session_cuda_choose(gf_op_ctx *ctx);
/* Places the arena values: the activation arena on the device, `offset` per value
 * (SIZE_MAX: not in the arena). */
gf_status gf_session_cuda_arena(gf_session *s, size_t total, const size_t *offset);
/* Frees what the plan put on the device (arena, constants) and its host mirrors. */
void gf_session_cuda_release(gf_session *s);
/* Copies a coming run's inputs ahead (gf_session_stage). */
gf_status gf_session_cuda_stage(gf_session *s, const gf_tensor *const *inputs);
/* A run's start, once its inputs are bound: where each value's data is; staged inputs
 * take their copies. */
gf_status gf_session_cuda_begin(gf_session *s);
/* Brings every input of the node to the host (a step the CPU runs, or infers again). */
gf_status gf_session_cuda_host_inputs(gf_session *s, const gf_node *n);
/* One step, on the device the plan chose, its inputs copied there first where needed. */
gf_status gf_session_cuda_step(gf_session *s, const exec_node *e, gf_op_ctx *ctx);
/* Waits for the device, reporting a kernel's data error, and brings every graph output to the host. */
gf_status gf_session_cuda_finish(gf_session *s);
/* The graph's updates on the device: each new value into its state's device storage. */
gf_status gf_session_cuda_updates(gf_session *s);
/* Frees what the run alone needed (device copies of inputs, dynamic values). */
void gf_session_cuda_end(gf_session *s);
gf_status gf_session_cuda_sync_states(gf_session *s);
void gf_session_cuda_states_changed(gf_session *s);
#else /* a CPU-only build: s->cuda is always NULL, and nothing calls these but under it */
static inline gf_status gf_session_cuda_new(gf_session *s)
{
    (void)s;
    return gf_fail(GF_ERR_UNSUPPORTED, "this build of graft has no CUDA backend (backends: %s)", gf_backends());
}
static inline void gf_session_cuda_free(gf_session *s) { (void)s; }
static inline const struct gf_cuda_op *gf_session_cuda_choose(gf_op_ctx *ctx)
{
    (void)ctx;
    return NULL;
}
static inline gf_status gf_session_cuda_arena(gf_session *s, size_t total, const size_t *offset)
{
    (void)s, (void)total, (void)offset;
    return GF_ERR_UNSUPPORTED;
}
static inline void gf_session_cuda_release(gf_session *s) { (void)s; }
static inline gf_status gf_session_cuda_stage(gf_session *s, const gf_tensor *const *inputs)
{
    (void)s, (void)inputs;
    return GF_ERR_UNSUPPORTED;
}
static inline gf_status gf_session_cuda_begin(gf_session *s) { (void)s; return GF_ERR_UNSUPPORTED; }
static inline gf_status gf_session_cuda_host_inputs(gf_session *s, const gf_node *n)
{
    (void)s, (void)n;
    return GF_ERR_UNSUPPORTED;
}
static inline gf_status gf_session_cuda_step(gf_session *s, const exec_node *e, gf_op_ctx *ctx)
{
    (void)s, (void)e, (void)ctx;
    return GF_ERR_UNSUPPORTED;
}
static inline gf_status gf_session_cuda_finish(gf_session *s) { (void)s; return GF_ERR_UNSUPPORTED; }
static inline gf_status gf_session_cuda_updates(gf_session *s) { (void)s; return GF_ERR_UNSUPPORTED; }
static inline void gf_session_cuda_end(gf_session *s) { (void)s; }
static inline gf_status gf_session_cuda_sync_states(gf_session *s) { (void)s; return GF_OK; }
static inline void gf_session_cuda_states_changed(gf_session *s) { (void)s; }
#endif

#endif
