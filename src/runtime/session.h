/* What the library's own modules (training) need from a session beyond the
 * public API: sessions over a graph that no gf_model holds, the shapes a plan
 * inferred, and a check for non-finite values. */
#ifndef GF_SESSION_H
#define GF_SESSION_H

#include "graph.h"

/* A session over `g` (not owned); `path` names the model in error messages. */
gf_status gf_session_new_graph(const gf_graph *g, const char *path, const gf_session_options *opt,
                               gf_session **out);
/* Value v as the last plan left it: dtype and shape always, data only for
 * constants (initializers and folded values); NULL before any plan. */
const gf_tensor *gf_session_value(const gf_session *s, int v);
/* When on, every run checks each node's float outputs and fails at the first
 * node that produced a NaN or an infinity, naming it. */
void gf_session_check_finite(gf_session *s, int on);
/* Whether plans apply the rewrites of fuse.c: fusions (Conv with the BatchNormalization,
 * Add and activation after it), blocked layouts between the kernels that take them and
 * outputs computed in place. On by default (off for every session when the environment
 * sets GRAFT_NO_FUSION=1); a change takes effect at the next plan. Results agree either
 * way to rounding; tests compare the two. */
void gf_session_set_rewrites(gf_session *s, int on);

/* A session on a GPU keeps the graph's state (the values its updates write: trained
 * parameters, running statistics, optimizer moments) on the device between runs.
 * sync_states copies what the device holds newer back into the state's host storage;
 * states_changed says that the host storage was written (by another session, a
 * checkpoint), so the next run copies it to the device again. No-ops on the CPU. */
gf_status gf_session_sync_states(gf_session *s);
void gf_session_states_changed(gf_session *s);

#endif
