/* Head surgery: the classifier at the end of a model replaced by a freshly
 * initialised one with another number of classes.
 *
 * The class path is found by walking back from the first graph output through
 * every value that carries the classes along axis 1:
 *   - ops that pass values on (Flatten, Reshape, Identity, Dropout, Softmax, Slice,
 *     Resize, ...) are walked through;
 *   - Add/Sum of activations walks every branch (FCN-8s joins its skip scores
 *     so), and an initializer added to the classes is a bias to re-initialise;
 *   - a ConvTranspose from classes to classes (FCN's learned and fixed
 *     upsamplers) gets n inputs and n outputs and is walked through;
 *   - a Gemm, a MatMul or a Conv that makes the classes is a head: its weight (and
 *     bias) get n outputs. FCN-8s has three, ResNet one.
 * Weights and biases keep their names (so the exported model's parameters are found
 * where PyTorch put them) and take PyTorch's default initialisation for nn.Linear,
 * nn.Conv2d and nn.ConvTranspose2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in
 * being the weight's size over its axis 0 for Linear and Conv, over its axis 1 for
 * ConvTranspose (torch's _calculate_fan_in_and_fan_out). An upsampler that is
 * channel-wise (every weight off the class-to-same-class diagonal zero, as
 * FCN's bilinear kernels) stays channel-wise with the same filter. */
#include "train_graph.h"

#include "../ops/op.h"
#include "../runtime/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_op(const gf_node *n, const char *op) { return !*n->domain && !strcmp(n->op_type, op); }

static int passes_through(const gf_node *n)
{
    static const char *const ops[] = {"Flatten", "Reshape", "Identity", "Dropout", "Softmax", "LogSoftmax", "Squeeze",
                                      "Sigmoid", "Slice", "Resize", "Upsample", "Relu", "Pad", NULL};
    for (const char *const *op = ops; *op; op++)
        if (is_op(n, *op)) return 1;
    return 0;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *rng, double bound) { return ((double)(splitmix64(rng) >> 11) * 0x1.0p-53 * 2 - 1) * bound; }

/* A new float tensor of `dims` for initializer v, replacing its data. */
static gf_status renew(gf_value *v, int rank, const int64_t *dims, float **data)
{
    gf_tensor *t;
    gf_status st = gf_tensor_new(&t, GF_FLOAT, rank, dims);
    if (st) return st;
    gf_tensor_free(v->init);
    v->init = t;
    v->rank = rank;
    memcpy(v->dims, t->dims, sizeof v->dims);
    *data = t->data;
    return GF_OK;
}

static gf_status reinit_uniform(gf_value *v, int rank, const int64_t *dims, double bound, uint64_t *rng)
{
    float *x;
    gf_status st = renew(v, rank, dims, &x);
    for (int64_t i = 0, n = st ? 0 : gf_tensor_numel(v->init); i < n; i++) x[i] = (float)uniform(rng, bound);
    return st;
}

static gf_value *initializer(gf_graph *g, const gf_node *n, int k)
{
    int v = k < n->n_inputs ? n->inputs[k] : -1;
    return v >= 0 && g->values[v].init && g->values[v].init->dtype == GF_FLOAT ? &g->values[v] : NULL;
}

typedef struct surgery {
    gf_graph *g;
    int64_t old_classes, n;
    uint64_t rng;
    char *seen;     /* per value: on the class path already */
    int n_heads;
} surgery;

/* A bias of the classes (its size old_classes): n new values drawn from U(-bound, bound). */
static gf_status reinit_bias(surgery *s, gf_value *b, double bound)
{
    if (!b || gf_tensor_numel(b->init) != s->old_classes) return GF_OK;
    int64_t dims[GF_MAX_RANK];
    memcpy(dims, b->init->dims, sizeof dims);
    for (int d = 0; d < b->init->rank; d++)
        if (dims[d] == s->old_classes) dims[d] = s->n;
    return reinit_uniform(b, b->init->rank, dims, bound, &s->rng);
}

/* Gemm, MatMul or Conv making the classes: n outputs along its weight's output axis. */
static gf_status replace_head(surgery *s, const gf_node *n, gf_value *bias)
{
    gf_value *w = initializer(s->g, n, 1);
    int conv = is_op(n, "Conv");
    if (!w || (!conv && w->init->rank != 2))
        return gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (%s): its weight is not a float initializer of the right rank",
                       n->name, n->op_type);
    if (conv && gf_attr_int(n, "group", 1) != 1)
        return gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (Conv): a grouped convolution cannot be a head", n->name);
    int out_axis = conv || (is_op(n, "Gemm") && gf_attr_int(n, "transB", 0)) ? 0 : 1;
    if (w->init->dims[out_axis] != s->old_classes)
        return gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (%s) makes %lld channels where the output has %lld classes",
                       n->name, n->op_type, (long long)w->init->dims[out_axis], (long long)s->old_classes);
    int64_t dims[GF_MAX_RANK];
    memcpy(dims, w->init->dims, sizeof dims);
    dims[out_axis] = s->n;
    double fan_in = 1;
    for (int d = 0; d < w->init->rank; d++)
        if (d != out_axis) fan_in *= (double)dims[d];
    double bound = 1 / sqrt(fan_in);
    gf_status st = reinit_uniform(w, w->init->rank, dims, bound, &s->rng);
    if (!st && !is_op(n, "MatMul")) st = reinit_bias(s, initializer(s->g, n, 2), bound);
    if (!st) st = reinit_bias(s, bias, bound);
    s->n_heads++;
    return st;
}

/* Whether W [C, C, k...] only maps each channel onto itself, with one filter for all. */
static int channel_wise(const gf_tensor *w)
{
    int64_t c = w->dims[0], k = gf_tensor_numel(w) / (c * c);
    const float *x = w->data;
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < c; j++)
            for (int64_t t = 0; t < k; t++) {
                float v = x[(i * c + j) * k + t];
                if (i == j ? v != x[t] : v != 0) return 0;
            }
    return 1;
}

/* ConvTranspose from the classes to the classes: n in, n out. */
static gf_status resize_upsampler(surgery *s, const gf_node *n)
{
    gf_value *w = initializer(s->g, n, 1);
    const gf_tensor *old = w->init;
    int64_t dims[GF_MAX_RANK], k = gf_tensor_numel(old) / (old->dims[0] * old->dims[1]);
    memcpy(dims, old->dims, sizeof dims);
    dims[0] = dims[1] = s->n;
    float *filter = malloc((size_t)k * sizeof *filter);
    if (!filter) return gf_fail(GF_ERR_NOMEM, "out of memory");
    int keep_filter = channel_wise(old);
    memcpy(filter, old->data, (size_t)k * sizeof *filter);
    double fan_in = (double)s->n * (double)k, bound = 1 / sqrt(fan_in);
    float *x;
    gf_status st;
    if (keep_filter) {
        if (!(st = renew(w, old->rank, dims, &x)))
            for (int64_t i = 0; i < s->n; i++) memcpy(x + (i * s->n + i) * k, filter, (size_t)k * sizeof *x);
    } else {
        st = reinit_uniform(w, old->rank, dims, bound, &s->rng);
    }
    free(filter);
    if (!st) st = reinit_bias(s, initializer(s->g, n, 2), bound);
    return st;
}

static int is_class_upsampler(surgery *s, const gf_node *n)
{
    gf_value *w = initializer(s->g, n, 1);
    return is_op(n, "ConvTranspose") && w && w->init->rank >= 3 && gf_attr_int(n, "group", 1) == 1 &&
           w->init->dims[0] == s->old_classes && w->init->dims[1] == s->old_classes;
}

/* Walks back from value v, which carries the classes on axis 1. */
static gf_status walk(surgery *s, int v, gf_value *bias)
{
    gf_graph *g = s->g;
    if (s->seen[v]) return GF_OK;
    s->seen[v] = 1;
    gf_value *val = &g->values[v];
    if (val->rank >= 2) {
        val->dims[1] = s->n;
        free(val->dim_names[1]);
        val->dim_names[1] = NULL;
    }
    if (val->producer < 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "no classifier head (Gemm, MatMul or Conv) makes '%s'", val->name);
    const gf_node *n = &g->nodes[val->producer];
    if (is_op(n, "Gemm") || is_op(n, "MatMul") || is_op(n, "Conv")) return replace_head(s, n, bias);
    if (bias) {
        /* A constant added to what is not a head's output (a sum of branches): it starts at zero. */
        gf_status st = reinit_bias(s, bias, 0);
        if (st) return st;
    }
    if (passes_through(n)) return walk(s, n->inputs[0], NULL);
    if (is_class_upsampler(s, n)) {
        gf_status st = resize_upsampler(s, n);
        return st ? st : walk(s, n->inputs[0], NULL);
    }
    if (is_op(n, "Add") || is_op(n, "Sum")) {
        gf_value *added = NULL;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && g->values[n->inputs[k]].init) added = &g->values[n->inputs[k]];
        for (int k = 0; k < n->n_inputs; k++) {
            int in = n->inputs[k];
            if (in < 0 || g->values[in].init) continue;
            gf_status st = walk(s, in, added);
            if (st) return st;
            added = NULL; /* one bias, re-initialised once */
        }
        return GF_OK;
    }
    return gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (%s) makes '%s' on the way to the classes; head surgery walks only "
                   "through Gemm, MatMul, Conv, class-to-class ConvTranspose, Add and ops that pass values on",
                   n->name, n->op_type, val->name);
}

/* The classes the output has: its declared axis 1, or what the nearest head makes. */
static int64_t classes_of(const gf_graph *g, int v)
{
    for (int hops = 0; hops < g->n_nodes && v >= 0; hops++) {
        const gf_value *val = &g->values[v];
        if (val->rank >= 2 && val->dims[1] > 0) return val->dims[1];
        if (val->producer < 0) return -1;
        const gf_node *n = &g->nodes[val->producer];
        const gf_value *w = n->n_inputs > 1 && n->inputs[1] >= 0 ? &g->values[n->inputs[1]] : NULL;
        if ((is_op(n, "Conv") || is_op(n, "ConvTranspose") || is_op(n, "Gemm") || is_op(n, "MatMul")) && w && w->init) {
            int out_axis = is_op(n, "MatMul") || is_op(n, "ConvTranspose") ||
                           (is_op(n, "Gemm") && !gf_attr_int(n, "transB", 0));
            return w->init->dims[out_axis];
        }
        v = n->n_inputs ? n->inputs[0] : -1;
    }
    return -1;
}

gf_status gf_model_replace_head(gf_model *m, int n_classes, uint64_t seed)
{
    gf_graph *g = m->graph;
    if (n_classes < 1) return gf_fail(GF_ERR_INVALID, "a head needs at least one class, not %d", n_classes);
    gf_status kept = gf_model_keep_weights(m);
    if (kept) return kept;
    if (!g->n_outputs) return gf_fail(GF_ERR_INVALID, "%s: the model has no output", m->path);
    surgery s = {.g = g, .n = n_classes, .rng = seed ^ 0x6A09E667F3BCC909ull};
    s.old_classes = classes_of(g, g->outputs[0]);
    if (s.old_classes < 1)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: cannot tell how many classes output '%s' has", m->path,
                       g->values[g->outputs[0]].name);
    if (!(s.seen = calloc((size_t)g->n_values + 1, 1))) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_status st = walk(&s, g->outputs[0], NULL);
    free(s.seen);
    return st ? gf_fail_context(st, "%s: replacing the head", m->path) : GF_OK;
}
