#include "graph.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

gf_graph *gf_graph_new(void)
{
    return calloc(1, sizeof(gf_graph));
}

static void attr_free(gf_attr *a)
{
    free(a->name);
    free(a->s);
    gf_tensor_free(a->t);
    gf_graph_free(a->g);
    free(a->floats);
    free(a->ints);
    for (int i = 0; a->strings && i < a->n; i++) free(a->strings[i]);
    free(a->strings);
}

static void node_free(gf_node *n)
{
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    for (int a = 0; a < n->n_attrs; a++) attr_free(&n->attrs[a]);
    free(n->attrs);
}

void gf_graph_remove_nodes(gf_graph *g, const char *remove)
{
    int kept = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (remove[i]) {
            node_free(&g->nodes[i]);
            continue;
        }
        g->nodes[kept++] = g->nodes[i];
    }
    g->n_nodes = kept;
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int o = 0; o < g->nodes[i].n_outputs; o++)
            if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
}

void gf_graph_free(gf_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_values; i++) {
        gf_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < GF_MAX_RANK; d++) free(v->dim_names[d]);
        gf_tensor_free(v->init);
    }
    for (int i = 0; i < g->n_nodes; i++) node_free(&g->nodes[i]);
    for (int i = 0; i < g->n_opsets; i++) free(g->opsets[i].domain);
    free(g->opsets);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->updates);
    for (int i = 0; i < g->n_meta; i++) {
        free(g->meta_keys[i]);
        free(g->meta_values[i]);
    }
    free(g->meta_keys);
    free(g->meta_values);
    free(g->name);
    free(g->producer_name);
    free(g->slots);
    free(g);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int gf_graph_find_value(const gf_graph *g, const char *name)
{
    if (!g->n_slots) return -1;
    for (uint64_t at = name_hash(name);; at++) {
        int slot = g->slots[at & (uint64_t)(g->n_slots - 1)];
        if (!slot) return -1;
        if (!strcmp(g->values[slot - 1].name, name)) return slot - 1;
    }
}

static void index_insert(gf_graph *g, int value)
{
    uint64_t at = name_hash(g->values[value].name);
    while (g->slots[at & (uint64_t)(g->n_slots - 1)]) at++;
    g->slots[at & (uint64_t)(g->n_slots - 1)] = value + 1;
}

/* Keeps the name index at most half full. */
static int index_reserve(gf_graph *g, int n_values)
{
    if (2 * n_values <= g->n_slots) return 1;
    int n = g->n_slots ? g->n_slots : 64;
    while (2 * n_values > n) n *= 2;
    int *slots = calloc((size_t)n, sizeof(int));
    if (!slots) return 0;
    free(g->slots);
    g->slots = slots;
    g->n_slots = n;
    for (int i = 0; i < g->n_values; i++) index_insert(g, i);
    return 1;
}

static int grow(void **items, int *cap, int need, size_t size)
{
    if (need <= *cap) return 1;
    int cap2 = *cap ? *cap * 2 : 16;
    while (cap2 < need) cap2 *= 2;
    void *p = realloc(*items, (size_t)cap2 * size);
    if (!p) return 0;
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(cap2 - *cap) * size);
    *items = p;
    *cap = cap2;
    return 1;
}

int gf_graph_value(gf_graph *g, const char *name)
{
    int i = gf_graph_find_value(g, name);
    if (i >= 0) return i;
    if (!grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(gf_value))) return -1;
    if (!index_reserve(g, g->n_values + 1)) return -1;
    gf_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    if (!v->name) return -1;
    v->rank = -1;
    v->producer = -1;
    index_insert(g, g->n_values);
    return g->n_values++;
}

static int *copy_ints(const int *src, int n)
{
    int *p = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (p && n) memcpy(p, src, (size_t)n * sizeof(int));
    return p;
}

int gf_graph_add_node(gf_graph *g, const char *name, const char *op_type, const char *domain,
                      int n_inputs, const int *inputs, int n_outputs, const int *outputs)
{
    if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(gf_node))) return -1;
    gf_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->name = strdup(name);
    n->op_type = strdup(op_type);
    n->domain = strdup(domain ? domain : "");
    n->inputs = copy_ints(inputs, n_inputs);
    n->outputs = copy_ints(outputs, n_outputs);
    if (!n->name || !n->op_type || !n->domain || !n->inputs || !n->outputs) {
        free(n->name); free(n->op_type); free(n->domain); free(n->inputs); free(n->outputs);
        return -1;
    }
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    return g->n_nodes++;
}

/* Kahn's algorithm with a FIFO of ready nodes, seeded in file order, so that
 * a model that is already sorted keeps its order. */
gf_status gf_graph_sort(gf_graph *g)
{
    int nn = g->n_nodes, nv = g->n_values;
    size_t n1 = (size_t)nn + 1, v1 = (size_t)nv + 1;
    int *producer = malloc(v1 * sizeof(int));
    int *pending = calloc(n1, sizeof(int));
    int *queue = malloc(n1 * sizeof(int));
    int *use_start = calloc(v1 + 1, sizeof(int)); /* consumers of value v: users[use_start[v] .. use_start[v+1]) */
    int *use_fill = malloc(v1 * sizeof(int));
    int *users = NULL;
    gf_node *sorted = NULL;
    gf_status st = GF_OK;
    if (!producer || !pending || !queue || !use_start || !use_fill) goto nomem;
    for (int v = 0; v < nv; v++) producer[v] = -1;
    for (int i = 0; i < nn; i++)
        for (int o = 0; o < g->nodes[i].n_outputs; o++) {
            int v = g->nodes[i].outputs[o];
            if (v < 0) continue;
            if (producer[v] >= 0 || g->values[v].role != GF_ROLE_ACTIVATION) {
                st = gf_fail(GF_ERR_INVALID, "node '%s' (%s): output '%s' is already %s",
                             g->nodes[i].name, g->nodes[i].op_type, g->values[v].name,
                             producer[v] >= 0 ? "produced by another node" : "a graph input or initializer");
                goto out;
            }
            producer[v] = i;
        }
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) {
            int v = g->nodes[i].inputs[k];
            if (v < 0) continue;
            if (producer[v] >= 0) {
                pending[i]++;
                use_start[v + 1]++;
            } else if (g->values[v].role == GF_ROLE_ACTIVATION) {
                st = gf_fail(GF_ERR_INVALID,
                             "node '%s' (%s): input '%s' is not a graph input, an initializer or any node's output",
                             g->nodes[i].name, g->nodes[i].op_type, g->values[v].name);
                goto out;
            }
        }
    for (int v = 0; v < nv; v++) use_start[v + 1] += use_start[v];
    users = malloc(((size_t)use_start[nv] + 1) * sizeof(int));
    if (!users) goto nomem;
    memcpy(use_fill, use_start, (size_t)nv * sizeof(int));
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) {
            int v = g->nodes[i].inputs[k];
            if (v >= 0 && producer[v] >= 0) users[use_fill[v]++] = i;
        }

    int head = 0, tail = 0;
    for (int i = 0; i < nn; i++)
        if (!pending[i]) queue[tail++] = i;
    while (head < tail) {
        const gf_node *n = &g->nodes[queue[head++]];
        for (int o = 0; o < n->n_outputs; o++) {
            int v = n->outputs[o];
            if (v < 0) continue;
            for (int u = use_start[v]; u < use_start[v + 1]; u++)
                if (--pending[users[u]] == 0) queue[tail++] = users[u];
        }
    }
    if (tail < nn) {
        for (int i = 0; i < nn; i++)
            if (pending[i]) {
                st = gf_fail(GF_ERR_INVALID, "node '%s' (%s) is on a cycle: the graph cannot be ordered",
                             g->nodes[i].name, g->nodes[i].op_type);
                goto out;
            }
    }
    sorted = malloc(n1 * sizeof(gf_node));
    if (!sorted) goto nomem;
    for (int i = 0; i < nn; i++) sorted[i] = g->nodes[queue[i]];
    if (nn) memcpy(g->nodes, sorted, (size_t)nn * sizeof(gf_node));
    for (int i = 0; i < nn; i++)
        for (int o = 0; o < g->nodes[i].n_outputs; o++)
            if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
    goto out;
nomem:
    st = gf_fail(GF_ERR_NOMEM, "out of memory sorting %d nodes", nn);
out:
    free(producer);
    free(pending);
    free(queue);
    free(use_start);
    free(use_fill);
    free(users);
    free(sorted);
    return st;
}

/* ---- attributes ---- */

const gf_attr *gf_node_attr(const gf_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t gf_attr_int(const gf_node *n, const char *name, int64_t dflt)
{
    const gf_attr *a = gf_node_attr(n, name);
    return a && a->type == GF_ATTR_INT ? a->i : dflt;
}

float gf_attr_float(const gf_node *n, const char *name, float dflt)
{
    const gf_attr *a = gf_node_attr(n, name);
    if (a && a->type == GF_ATTR_FLOAT) return a->f;
    if (a && a->type == GF_ATTR_INT) return (float)a->i;
    return dflt;
}

const char *gf_attr_string(const gf_node *n, const char *name, const char *dflt)
{
    const gf_attr *a = gf_node_attr(n, name);
    return a && a->type == GF_ATTR_STRING ? a->s : dflt;
}

const int64_t *gf_attr_ints(const gf_node *n, const char *name, int *count)
{
    const gf_attr *a = gf_node_attr(n, name);
    if (a && a->type == GF_ATTR_INTS) {
        *count = a->n;
        return a->ints;
    }
    *count = 0;
    return NULL;
}

const float *gf_attr_floats(const gf_node *n, const char *name, int *count)
{
    const gf_attr *a = gf_node_attr(n, name);
    if (a && a->type == GF_ATTR_FLOATS) {
        *count = a->n;
        return a->floats;
    }
    *count = 0;
    return NULL;
}
