/* Which initializers are trainable parameters, and which group each is in.
 *
 * A parameter is a float initializer that a node reads where a weight goes: the
 * weights and biases of Conv, ConvTranspose, Gemm, MatMul and the normalisations,
 * PRelu's slope, or an operand of element-wise arithmetic. The exporter's own
 * constants ("onnx::Mul_12", scale factors and the like) are read by arithmetic too,
 * so there a name starting with "onnx::" marks a constant, not a parameter. */
#include "trainer_impl.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

static int weight_slot(const gf_node *n, int k, const char *name)
{
    const char *op = n->op_type;
    if (*n->domain) return 0;
    if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose")) return k >= 1;
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) return 1;
    if (!strcmp(op, "BatchNormalization") || !strcmp(op, "InstanceNormalization") ||
        !strcmp(op, "LayerNormalization"))
        return k == 1 || k == 2;
    if (!strcmp(op, "PRelu")) return k == 1;
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div") || !strcmp(op, "Sum"))
        return strncmp(name, "onnx::", 6) != 0;
    return 0;
}

static int matches_any(const char *name, const char *const *patterns, int n)
{
    for (int i = 0; i < n; i++)
        if (fnmatch(patterns[i], name, 0) == 0) return 1;
    return 0;
}

/* Marks the nodes `target` depends on, itself included. */
static gf_status mark_ancestors(const gf_graph *g, const char *target, char *before)
{
    int t = -1;
    for (int i = 0; i < g->n_nodes && t < 0; i++)
        if (!strcmp(g->nodes[i].name, target)) t = i;
    if (t < 0) return gf_fail(GF_ERR_INVALID, "freeze before '%s': the model has no node of that name", target);
    before[t] = 1;
    /* Nodes are in topological order: one backward sweep finds every ancestor. */
    for (int i = t; i >= 0; i--) {
        if (!before[i]) continue;
        const gf_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v >= 0 && g->values[v].producer >= 0) before[g->values[v].producer] = 1;
        }
    }
    return GF_OK;
}

gf_status gf_select_params(const gf_graph *g, const gf_train_options *opt, gf_param_set *out)
{
    memset(out, 0, sizeof *out);
    char *is_param = calloc((size_t)g->n_values + 1, 1), *frozen = calloc((size_t)g->n_values + 1, 1);
    char *before = calloc((size_t)g->n_nodes + 1, 1);
    out->values = malloc(((size_t)g->n_values + 1) * sizeof *out->values);
    out->group = malloc(((size_t)g->n_values + 1) * sizeof *out->group);
    gf_status st = GF_OK;
    if (!is_param || !frozen || !before || !out->values || !out->group) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (opt->freeze_before && (st = mark_ancestors(g, opt->freeze_before, before))) goto done;
    for (int i = 0; i < g->n_nodes; i++) {
        const gf_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v < 0 || !g->values[v].init || g->values[v].init->dtype != GF_FLOAT) continue;
            if (!weight_slot(n, k, g->values[v].name)) continue;
            is_param[v] = 1;
            if (before[i]) frozen[v] = 1;
        }
    }
    int n_candidates = 0;
    for (int v = 0; v < g->n_values; v++) {
        if (!is_param[v]) continue;
        n_candidates++;
        const char *name = g->values[v].name;
        if (frozen[v]) continue;
        if (opt->n_trainable && !matches_any(name, opt->trainable, opt->n_trainable)) continue;
        if (matches_any(name, opt->freeze, opt->n_freeze)) continue;
        int group = 0;
        for (int k = 0; k < opt->n_groups && !group; k++)
            if (fnmatch(opt->groups[k].pattern, name, 0) == 0) group = k + 1;
        out->group[out->n] = group;
        out->values[out->n++] = v;
    }
    if (!out->n)
        st = gf_fail(GF_ERR_INVALID, "nothing to train: all %d parameters of the model are frozen%s", n_candidates,
                     opt->n_trainable ? " (no parameter name matches the trainable patterns)" : "");
done:
    free(is_param);
    free(frozen);
    free(before);
    if (st) gf_param_set_free(out);
    return st;
}

void gf_param_set_free(gf_param_set *p)
{
    free(p->values);
    free(p->group);
    memset(p, 0, sizeof *p);
}
