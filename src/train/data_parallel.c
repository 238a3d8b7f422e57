/* Data parallel training's one node: after the backward pass, an AllReduceMean
 * (ops/collective.c) over every gradient and every running statistic the forward pass
 * updates, so that all processes step with the mean gradient of all their batches and
 * keep the same BatchNormalization statistics (their mean, where torch's
 * DistributedDataParallel keeps rank 0's). Weights that start equal stay equal. */
#include "trainer_impl.h"

#include <stdlib.h>

/* Update k is a running statistic to average: a float state (a step counter is not). */
static int averaged(const gf_graph *g, int k) { return g->values[g->updates[k].state].init->dtype == GF_FLOAT; }

gf_status gf_add_all_reduce(gf_builder *b, const gf_param_set *p, int *grads, int n_stat_updates)
{
    gf_graph *g = b->g;
    int n = 0;
    int *in = malloc(((size_t)p->n + (size_t)n_stat_updates) * sizeof *in);
    int *out = malloc(((size_t)p->n + (size_t)n_stat_updates) * sizeof *out);
    if (!in || !out) {
        free(in);
        free(out);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < p->n; i++)
        if (grads[i] >= 0) in[n++] = grads[i];
    for (int k = 0; k < n_stat_updates; k++)
        if (averaged(g, k)) in[n++] = g->updates[k].source;
    gf_status st = GF_OK;
    if (n && gb_node(b, GF_DOMAIN, "AllReduceMean", "data_parallel", n, in, n, out) < 0) st = GF_ERR_UNSUPPORTED;
    int at = 0;
    for (int i = 0; i < p->n && !st; i++)
        if (grads[i] >= 0) grads[i] = out[at++];
    for (int k = 0; k < n_stat_updates && !st; k++)
        if (averaged(g, k)) g->updates[k].source = out[at++];
    free(in);
    free(out);
    return st;
}
