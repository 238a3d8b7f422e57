/* Head surgery: the classifier at the end of a model replaced by a freshly
 * initialised one with another number of classes.
 *
 * The head is found by walking back from the first graph output through ops that
 * only pass values on (Flatten, Reshape, Identity, Dropout, Softmax, ...) to the
 * layer that makes the classes: a Gemm, a MatMul (with the Add of its bias), or a
 * 1x1 Conv (a segmentation net's per-pixel classifier). Its weight and bias keep
 * their names (so the exported model's parameters are found where PyTorch put
 * them) and take PyTorch's default initialisation for nn.Linear / nn.Conv2d:
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both. */
#include "train_graph.h"

#include "../ops/op.h"
#include "../runtime/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int passes_through(const gf_node *n)
{
    static const char *const ops[] = {"Flatten", "Reshape", "Identity", "Dropout", "Softmax", "LogSoftmax",
                                      "Squeeze", "Sigmoid", NULL};
    for (const char *const *op = ops; *op; op++)
        if (!strcmp(n->op_type, *op) && !*n->domain) return 1;
    return 0;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Replaces initializer v by a tensor of `dims` drawn from U(-bound, bound). */
static gf_status reinit(gf_value *v, int rank, const int64_t *dims, double bound, uint64_t *rng)
{
    gf_tensor *t;
    gf_status st = gf_tensor_new(&t, GF_FLOAT, rank, dims);
    if (st) return st;
    float *x = t->data;
    for (int64_t i = 0, n = gf_tensor_numel(t); i < n; i++)
        x[i] = (float)(((double)(splitmix64(rng) >> 11) * 0x1.0p-53 * 2 - 1) * bound);
    gf_tensor_free(v->init);
    v->init = t;
    v->rank = rank;
    memcpy(v->dims, dims, sizeof v->dims);
    return GF_OK;
}

static gf_value *initializer(gf_graph *g, const gf_node *n, int k)
{
    int v = k < n->n_inputs ? n->inputs[k] : -1;
    return v >= 0 && g->values[v].init && g->values[v].init->dtype == GF_FLOAT ? &g->values[v] : NULL;
}

/* The classes axis of a head's weight: Gemm's output features are W's rows when
 * transB is set, its columns otherwise; MatMul's are the columns; Conv's the first axis. */
static gf_status head_weight(gf_graph *g, const gf_node *n, gf_value **w, int *out_axis)
{
    *w = initializer(g, n, 1);
    if (!*w || ((*w)->init->rank != 2 && strcmp(n->op_type, "Conv")))
        return gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (%s): its weight is not a 2-D float initializer", n->name,
                       n->op_type);
    if (!strcmp(n->op_type, "Conv")) {
        for (int d = 2; d < (*w)->init->rank; d++)
            if ((*w)->init->dims[d] != 1 || gf_attr_int(n, "group", 1) != 1)
                return gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (Conv): a head must be a 1x1 convolution", n->name);
        *out_axis = 0;
    } else {
        *out_axis = !strcmp(n->op_type, "Gemm") && gf_attr_int(n, "transB", 0) ? 0 : 1;
    }
    return GF_OK;
}

/* The declared shape of the values from the head to the output: their classes dim becomes n. */
static void redeclare(gf_graph *g, int from, int old_classes, int n_classes)
{
    for (int v = from;;) {
        gf_value *val = &g->values[v];
        if (val->rank >= 2 && val->dims[1] == old_classes) val->dims[1] = n_classes;
        int next = -1;
        for (int i = 0; i < g->n_nodes && next < 0; i++) {
            const gf_node *n = &g->nodes[i];
            if (n->n_inputs && n->inputs[0] == v && n->n_outputs && (passes_through(n) || !strcmp(n->op_type, "Add")))
                next = n->outputs[0];
        }
        if (next < 0 || next == v) return;
        v = next;
    }
}

gf_status gf_model_replace_head(gf_model *m, int n_classes, uint64_t seed)
{
    gf_graph *g = m->graph;
    if (n_classes < 1) return gf_fail(GF_ERR_INVALID, "a head needs at least one class, not %d", n_classes);
    if (!g->n_outputs) return gf_fail(GF_ERR_INVALID, "%s: the model has no output", m->path);
    int v = g->outputs[0], bias_add = -1;
    const gf_node *head = NULL;
    while (!head && g->values[v].producer >= 0) {
        const gf_node *n = &g->nodes[g->values[v].producer];
        if (!strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul") || !strcmp(n->op_type, "Conv")) head = n;
        else if (!strcmp(n->op_type, "Add") && n->n_inputs == 2 && initializer(g, n, 1)) {
            bias_add = g->values[v].producer;
            v = n->inputs[0];
        } else if (passes_through(n)) v = n->inputs[0];
        else break;
    }
    if (!head)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: no classifier head (Gemm, MatMul or 1x1 Conv) found before output '%s'",
                       m->path, g->values[g->outputs[0]].name);
    gf_value *w, *b = NULL;
    int out_axis;
    gf_status st = head_weight(g, head, &w, &out_axis);
    if (st) return gf_fail_context(st, "%s", m->path);
    if (strcmp(head->op_type, "MatMul")) b = initializer(g, head, 2);
    else if (bias_add >= 0) b = initializer(g, &g->nodes[bias_add], 1);
    int64_t old_classes = w->init->dims[out_axis], dims[GF_MAX_RANK];
    int rank = w->init->rank;
    memcpy(dims, w->init->dims, sizeof dims);
    dims[out_axis] = n_classes;
    double fan_in = 1;
    for (int d = 0; d < rank; d++)
        if (d != out_axis) fan_in *= (double)dims[d];
    uint64_t rng = seed ^ 0x6A09E667F3BCC909ull;
    double bound = 1 / sqrt(fan_in);
    if ((st = reinit(w, rank, dims, bound, &rng))) return st;
    if (b && gf_tensor_numel(b->init) == old_classes) {
        int64_t bias_dims[1] = {n_classes};
        if ((st = reinit(b, 1, bias_dims, bound, &rng))) return st;
    }
    redeclare(g, head->outputs[0], (int)old_classes, n_classes);
    return GF_OK;
}
