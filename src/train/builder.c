/* Adding values, nodes, attributes and constants to a training graph. */
#include "train_graph.h"

#include "../ops/op.h"
#include "../runtime/model.h"
#include "../runtime/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gb_new_value(gf_builder *b, const char *hint)
{
    char name[512];
    for (;;) {
        snprintf(name, sizeof name, "%s~%d", hint, b->n_made++);
        if (gf_graph_find_value(b->g, name) < 0) return gf_graph_value(b->g, name);
    }
}

int gb_node(gf_builder *b, const char *domain, const char *op_type, const char *hint, int n_in, const int *in,
            int n_out, int *out)
{
    int opset = strcmp(domain, GF_DOMAIN) ? GF_TRAIN_ONNX_OPSET : 1;
    const gf_op *op = gf_op_find(domain, op_type, opset);
    if (!op) {
        gf_fail(GF_ERR_UNSUPPORTED, "%s%s%s (opset %d) is not registered; training needs it", domain,
                *domain ? "." : "", op_type, opset);
        return -1;
    }
    char name[512];
    snprintf(name, sizeof name, "%s/%s", hint, op_type);
    for (int k = 0; k < n_out; k++) {
        out[k] = gb_new_value(b, name);
        if (out[k] < 0) goto nomem;
    }
    int ni = gf_graph_add_node(b->g, name, op_type, domain, n_in, in, n_out, out);
    if (ni < 0) goto nomem;
    b->g->nodes[ni].opset = opset;
    b->g->nodes[ni].op = op;
    for (int k = 0; k < n_out; k++) b->g->values[out[k]].producer = ni;
    return ni;
nomem:
    gf_fail(GF_ERR_NOMEM, "out of memory building the training graph");
    return -1;
}

static gf_attr *new_attr(gf_builder *b, int ni, const char *name, gf_attr_type type)
{
    gf_node *n = &b->g->nodes[ni];
    gf_attr *attrs = realloc(n->attrs, (size_t)(n->n_attrs + 1) * sizeof *attrs);
    if (!attrs) return NULL;
    n->attrs = attrs;
    gf_attr *a = &attrs[n->n_attrs];
    memset(a, 0, sizeof *a);
    if (!(a->name = strdup(name))) return NULL;
    a->type = type;
    n->n_attrs++;
    return a;
}

static gf_status nomem(void) { return gf_fail(GF_ERR_NOMEM, "out of memory building the training graph"); }

gf_status gb_attr_int(gf_builder *b, int ni, const char *name, int64_t v)
{
    gf_attr *a = new_attr(b, ni, name, GF_ATTR_INT);
    if (!a) return nomem();
    a->i = v;
    return GF_OK;
}

gf_status gb_attr_float(gf_builder *b, int ni, const char *name, float v)
{
    gf_attr *a = new_attr(b, ni, name, GF_ATTR_FLOAT);
    if (!a) return nomem();
    a->f = v;
    return GF_OK;
}

gf_status gb_attr_ints(gf_builder *b, int ni, const char *name, const int64_t *v, int n)
{
    gf_attr *a = new_attr(b, ni, name, GF_ATTR_INTS);
    if (!a || !(a->ints = malloc((size_t)(n ? n : 1) * sizeof *v))) return nomem();
    if (n) memcpy(a->ints, v, (size_t)n * sizeof *v);
    a->n = n;
    return GF_OK;
}

gf_status gb_attr_floats(gf_builder *b, int ni, const char *name, const float *v, int n)
{
    gf_attr *a = new_attr(b, ni, name, GF_ATTR_FLOATS);
    if (!a || !(a->floats = malloc((size_t)(n ? n : 1) * sizeof *v))) return nomem();
    if (n) memcpy(a->floats, v, (size_t)n * sizeof *v);
    a->n = n;
    return GF_OK;
}

gf_status gb_attr_string(gf_builder *b, int ni, const char *name, const char *v)
{
    gf_attr *a = new_attr(b, ni, name, GF_ATTR_STRING);
    if (!a || !(a->s = strdup(v))) return nomem();
    return GF_OK;
}

static gf_status copy_attr(gf_attr *dst, const gf_attr *src, const gf_node *from)
{
    switch (src->type) {
    case GF_ATTR_FLOAT: dst->f = src->f; return GF_OK;
    case GF_ATTR_INT: dst->i = src->i; return GF_OK;
    case GF_ATTR_STRING: return (dst->s = strdup(src->s)) ? GF_OK : nomem();
    case GF_ATTR_INTS:
        dst->n = src->n;
        if (!(dst->ints = malloc((size_t)(src->n ? src->n : 1) * sizeof *src->ints))) return nomem();
        if (src->n) memcpy(dst->ints, src->ints, (size_t)src->n * sizeof *src->ints);
        return GF_OK;
    case GF_ATTR_FLOATS:
        dst->n = src->n;
        if (!(dst->floats = malloc((size_t)(src->n ? src->n : 1) * sizeof *src->floats))) return nomem();
        if (src->n) memcpy(dst->floats, src->floats, (size_t)src->n * sizeof *src->floats);
        return GF_OK;
    case GF_ATTR_TENSOR: {
        gf_status st = gf_tensor_new(&dst->t, src->t->dtype, src->t->rank, src->t->dims);
        if (!st) memcpy(dst->t->data, src->t->data, gf_tensor_nbytes(src->t));
        return st;
    }
    default:
        return gf_fail(GF_ERR_UNSUPPORTED, "node '%s' (%s): attribute '%s' of this kind cannot be trained through",
                       from->name, from->op_type, src->name);
    }
}

gf_status gb_copy_attrs(gf_builder *b, int ni, const gf_node *from, const char *const *except)
{
    for (int i = 0; i < from->n_attrs; i++) {
        const gf_attr *src = &from->attrs[i];
        int skip = 0;
        for (const char *const *e = except; e && *e && !skip; e++) skip = !strcmp(*e, src->name);
        if (skip) continue;
        gf_attr *a = new_attr(b, ni, src->name, src->type);
        if (!a) return nomem();
        gf_status st = copy_attr(a, src, from);
        if (st) return st;
    }
    return GF_OK;
}

static int new_initializer(gf_builder *b, const char *hint, gf_dtype dtype, int rank, const int64_t *dims,
                           const void *data)
{
    int v = gb_new_value(b, hint);
    if (v < 0) return -1;
    gf_value *val = &b->g->values[v];
    if (gf_tensor_new(&val->init, dtype, rank, dims)) return -1;
    memcpy(val->init->data, data, gf_tensor_nbytes(val->init));
    val->role = GF_ROLE_INITIALIZER;
    val->dtype = dtype;
    val->rank = rank;
    for (int d = 0; d < rank; d++) val->dims[d] = dims[d];
    return v;
}

int gb_const_float(gf_builder *b, const char *hint, float v)
{
    return new_initializer(b, hint, GF_FLOAT, 0, NULL, &v);
}

int gb_const_int(gf_builder *b, const char *hint, int64_t v)
{
    return new_initializer(b, hint, GF_INT64, 0, NULL, &v);
}

int gb_const_ints(gf_builder *b, const char *hint, const int64_t *v, int n)
{
    int64_t dims[1] = {n};
    return new_initializer(b, hint, GF_INT64, 1, dims, v);
}

int gb_shape(gf_builder *b, int v)
{
    if (v < b->n_forward_values && b->shape_of[v] >= 0) return b->shape_of[v];
    int out;
    if (gb_node(b, "", "Shape", b->g->values[v].name, 1, &v, 1, &out) < 0) return -1;
    if (v < b->n_forward_values) b->shape_of[v] = out;
    return out;
}

int gb_rank(const gf_builder *b, int v)
{
    const gf_tensor *t = v >= 0 && v < b->n_forward_values ? gf_session_value(b->shapes, v) : NULL;
    return t ? t->rank : -1;
}

gf_dtype gb_dtype(const gf_builder *b, int v)
{
    const gf_tensor *t = v >= 0 && v < b->n_forward_values ? gf_session_value(b->shapes, v) : NULL;
    return t ? t->dtype : GF_UNDEFINED;
}

int gb_op1(gf_builder *b, const char *op_type, const char *hint, int a)
{
    int out;
    return gb_node(b, "", op_type, hint, 1, &a, 1, &out) < 0 ? -1 : out;
}

int gb_op2(gf_builder *b, const char *op_type, const char *hint, int a, int c)
{
    int in[2] = {a, c}, out;
    return gb_node(b, "", op_type, hint, 2, in, 1, &out) < 0 ? -1 : out;
}

int gb_graft1(gf_builder *b, const char *op_type, const char *hint, int n_in, const int *in)
{
    int out;
    return gb_node(b, GF_DOMAIN, op_type, hint, n_in, in, 1, &out) < 0 ? -1 : out;
}

/* Parameters and running statistics get storage of their own (not the mapped file)
 * before the training graph shares it. */
gf_status gf_own_storage(const gf_model *m, gf_tensor *init, const char *name)
{
    if (init->owns_data || gf_external_is_copy(&m->external, init->data)) return GF_OK;
    size_t n = gf_tensor_nbytes(init);
    void *copy = malloc(n ? n : 1);
    if (!copy) return gf_fail(GF_ERR_NOMEM, "out of memory copying '%s'", name);
    memcpy(copy, init->data, n);
    init->data = copy;
    init->owns_data = 1;
    return GF_OK;
}
