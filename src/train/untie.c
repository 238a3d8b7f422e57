/* Untying initializers that an exporter merged.
 *
 * PyTorch's exporter keeps one copy of initializers that hold equal values and
 * makes the others with an Identity node: a fresh BatchNorm's running variance
 * and its weight are both ones, its running mean and bias both zeros. For
 * inference that is harmless; for training it ties values PyTorch keeps apart
 * (the running statistics could not even be updated). Each Identity of a float
 * initializer becomes an initializer of its own again, a copy under the name the
 * exporter gave it, so an export writes it back under that name. */
#include "trainer_impl.h"

#include "../runtime/model.h"

#include <stdlib.h>
#include <string.h>

static int is_tie(const gf_graph *g, const gf_node *n)
{
    if (strcmp(n->op_type, "Identity") || *n->domain || n->n_inputs != 1 || n->n_outputs != 1) return 0;
    int in = n->inputs[0], out = n->outputs[0];
    return in >= 0 && out >= 0 && g->values[in].init && g->values[in].init->dtype == GF_FLOAT &&
           !g->values[out].is_output;
}

gf_status gf_untie_initializers(gf_graph *g)
{
    char *remove = calloc((size_t)g->n_nodes + 1, 1);
    if (!remove) return gf_fail(GF_ERR_NOMEM, "out of memory");
    int n_removed = 0;
    gf_status st = GF_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        const gf_node *n = &g->nodes[i];
        if (!is_tie(g, n)) continue;
        const gf_tensor *src = g->values[n->inputs[0]].init;
        gf_value *dst = &g->values[n->outputs[0]];
        gf_tensor *copy;
        if ((st = gf_tensor_new(&copy, src->dtype, src->rank, src->dims))) break;
        memcpy(copy->data, src->data, gf_tensor_nbytes(src));
        dst->init = copy;
        dst->role = GF_ROLE_INITIALIZER;
        dst->dtype = src->dtype;
        dst->rank = src->rank;
        memcpy(dst->dims, src->dims, sizeof dst->dims);
        remove[i] = 1;
        n_removed++;
    }
    if (n_removed) gf_graph_remove_nodes(g, remove);
    free(remove);
    return st;
}
