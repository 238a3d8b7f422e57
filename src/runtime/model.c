/* What a loaded model tells about itself: inputs, outputs, a summary. */
#include "model.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

gf_status gf_model_keep_weights(const gf_model *m)
{
    /* restoring the pages changes nothing a caller can see; the model itself is not const */
    return gf_external_restore((gf_external *)&m->external, 1);
}

int gf_model_num_inputs(const gf_model *m) { return m->graph->n_inputs; }
int gf_model_num_outputs(const gf_model *m) { return m->graph->n_outputs; }

static gf_io_info io_info(const gf_value *v)
{
    gf_io_info info = {v->name, v->dtype, v->rank, v->dims, (const char *const *)v->dim_names};
    return info;
}

gf_io_info gf_model_input(const gf_model *m, int i) { return io_info(&m->graph->values[m->graph->inputs[i]]); }
gf_io_info gf_model_output(const gf_model *m, int i) { return io_info(&m->graph->values[m->graph->outputs[i]]); }

typedef struct op_count {
    const char *type;
    int count;
    int first; /* index of its first node, to keep ties in graph order */
} op_count;

static int by_count_desc(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : x->first - y->first;
}

/* Op types by count, built once per model. */
static gf_status build_summary(gf_model *m)
{
    const gf_graph *g = m->graph;
    int n = g->n_nodes, n_types = 0;
    op_count *counts = calloc((size_t)n + 1, sizeof *counts);
    m->summary_ops = calloc((size_t)n + 1, sizeof *m->summary_ops);
    m->summary_counts = calloc((size_t)n + 1, sizeof *m->summary_counts);
    m->summary_domains = calloc((size_t)g->n_opsets + 1, sizeof *m->summary_domains);
    m->summary_versions = calloc((size_t)g->n_opsets + 1, sizeof *m->summary_versions);
    if (!counts || !m->summary_ops || !m->summary_counts || !m->summary_domains || !m->summary_versions) {
        free(counts);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int t = 0;
        while (t < n_types && strcmp(counts[t].type, g->nodes[i].op_type)) t++;
        if (t == n_types) counts[n_types++] = (op_count){g->nodes[i].op_type, 0, i};
        counts[t].count++;
    }
    qsort(counts, (size_t)n_types, sizeof *counts, by_count_desc);
    for (int t = 0; t < n_types; t++) {
        m->summary_ops[t] = counts[t].type;
        m->summary_counts[t] = counts[t].count;
    }
    m->summary_n_types = n_types;
    free(counts);
    for (int i = 0; i < g->n_opsets; i++) {
        m->summary_domains[i] = g->opsets[i].domain;
        m->summary_versions[i] = g->opsets[i].version;
    }
    return GF_OK;
}

gf_status gf_model_summary_get(gf_model *m, gf_model_summary *out)
{
    const gf_graph *g = m->graph;
    memset(out, 0, sizeof *out);
    if (!m->summary_ops) {
        gf_status st = build_summary(m);
        if (st) return st;
    }
    out->ir_version = g->ir_version;
    out->producer = g->producer_name;
    out->n_opsets = g->n_opsets;
    out->opset_domains = m->summary_domains;
    out->opset_versions = m->summary_versions;
    out->n_nodes = g->n_nodes;
    out->n_op_types = m->summary_n_types;
    out->op_types = m->summary_ops;
    out->op_counts = m->summary_counts;
    for (int i = 0; i < g->n_values; i++) {
        const gf_tensor *t = g->values[i].init;
        if (!t) continue;
        out->param_bytes += (int64_t)gf_tensor_nbytes(t);
        if (t->dtype == GF_FLOAT || t->dtype == GF_FLOAT16 || t->dtype == GF_DOUBLE || t->dtype == GF_BFLOAT16)
            out->n_params += gf_tensor_numel(t);
    }
    return GF_OK;
}
