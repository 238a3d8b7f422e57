/* ONNX file → IR. The file is mapped, parsed by protobuf-c, and turned into a
 * gf_graph; initializer data is taken over from the parse without a copy. */
#include "model.h"

#include "../ops/op.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_UNSUPPORTED_LISTED 20

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

static gf_status convert_attr(Onnx__AttributeProto *ap, const gf_node *n, gf_attr *a)
{
    a->name = dup_or_empty(ap->name);
    if (!a->name) return gf_fail(GF_ERR_NOMEM, "out of memory");
    const char *what = ap->name ? ap->name : "";
    switch (ap->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        a->type = GF_ATTR_FLOAT;
        a->f = ap->f;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        a->type = GF_ATTR_INT;
        a->i = ap->i;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        a->type = GF_ATTR_STRING;
        if (!(a->s = malloc(ap->s.len + 1))) return gf_fail(GF_ERR_NOMEM, "out of memory");
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = '\0';
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        a->type = GF_ATTR_TENSOR;
        if (!ap->t) return gf_fail(GF_ERR_PARSE, "attribute '%s' is a tensor attribute with no tensor", what);
        return gf_tensor_from_proto(ap->t, NULL, NULL, what, &a->t);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
        a->type = GF_ATTR_GRAPH; /* subgraph ops are not supported: the registry refuses them */
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        a->type = GF_ATTR_FLOATS;
        a->n = (int)ap->n_floats;
        if (!(a->floats = malloc((ap->n_floats + 1) * sizeof(float)))) return gf_fail(GF_ERR_NOMEM, "out of memory");
        if (ap->n_floats) memcpy(a->floats, ap->floats, ap->n_floats * sizeof(float));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        a->type = GF_ATTR_INTS;
        a->n = (int)ap->n_ints;
        if (!(a->ints = malloc((ap->n_ints + 1) * sizeof(int64_t)))) return gf_fail(GF_ERR_NOMEM, "out of memory");
        if (ap->n_ints) memcpy(a->ints, ap->ints, ap->n_ints * sizeof(int64_t));
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        a->type = GF_ATTR_STRINGS;
        if (!(a->strings = calloc(ap->n_strings + 1, sizeof(char *)))) return gf_fail(GF_ERR_NOMEM, "out of memory");
        a->n = (int)ap->n_strings;
        for (size_t i = 0; i < ap->n_strings; i++) {
            if (!(a->strings[i] = malloc(ap->strings[i].len + 1))) return gf_fail(GF_ERR_NOMEM, "out of memory");
            if (ap->strings[i].len) memcpy(a->strings[i], ap->strings[i].data, ap->strings[i].len);
            a->strings[i][ap->strings[i].len] = '\0';
        }
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
        a->type = GF_ATTR_UNDEFINED; /* no op graft runs takes these */
        break;
    default:
        return gf_fail(GF_ERR_PARSE, "attribute '%s' has unknown type %d", what, (int)ap->type);
    }
    (void)n;
    return GF_OK;
}

/* Declared type and shape of a graph input, output or value_info entry. */
static gf_status declare_value(gf_graph *g, const Onnx__ValueInfoProto *vi, int *index)
{
    if (!vi->name || !*vi->name) return gf_fail(GF_ERR_PARSE, "a graph input, output or value_info has no name");
    int i = gf_graph_value(g, vi->name);
    if (i < 0) return gf_fail(GF_ERR_NOMEM, "out of memory");
    *index = i;
    const Onnx__TypeProto *tp = vi->type;
    if (tp && tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return gf_fail(GF_ERR_UNSUPPORTED, "value '%s' is a %s, not a tensor; graft supports tensors only", vi->name,
                       tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE   ? "sequence"
                       : tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE      ? "map"
                       : tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE ? "optional"
                                                                                 : "non-tensor type");
    if (!tp || !tp->tensor_type) return GF_OK;
    gf_value *v = &g->values[i];
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type) v->dtype = (gf_dtype)tt->elem_type;
    if (!tt->shape) return GF_OK;
    if (tt->shape->n_dim > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "value '%s' has rank %zu; graft holds at most %d",
                       vi->name, tt->shape->n_dim, GF_MAX_RANK);
    v->rank = (int)tt->shape->n_dim;
    for (int d = 0; d < v->rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        v->dims[d] = -1;
        free(v->dim_names[d]);
        v->dim_names[d] = NULL;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value >= 0)
            v->dims[d] = dim->dim_value;
        else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param &&
                 !(v->dim_names[d] = strdup(dim->dim_param)))
            return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    return GF_OK;
}

static int64_t opset_of(const gf_graph *g, const char *domain)
{
    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain;
        if (!strcmp(d, domain) || (!*domain && !strcmp(d, "ai.onnx")) || (!*d && !strcmp(domain, "ai.onnx")))
            return g->opsets[i].version;
    }
    return -1;
}

static gf_status convert_node(gf_graph *g, Onnx__NodeProto *np, int index)
{
    int *ins = malloc((np->n_input + 1) * sizeof(int)), *outs = malloc((np->n_output + 1) * sizeof(int));
    gf_status st = GF_OK;
    if (!ins || !outs) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < np->n_input; k++)
        ins[k] = np->input[k] && *np->input[k] ? gf_graph_value(g, np->input[k]) : -1;
    for (size_t k = 0; k < np->n_output; k++)
        outs[k] = np->output[k] && *np->output[k] ? gf_graph_value(g, np->output[k]) : -1;
    char name[64];
    snprintf(name, sizeof name, "%s_%d", np->op_type ? np->op_type : "node", index);
    int ni = gf_graph_add_node(g, np->name && *np->name ? np->name : name, np->op_type ? np->op_type : "",
                               np->domain ? np->domain : "", (int)np->n_input, ins, (int)np->n_output, outs);
    if (ni < 0) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    gf_node *n = &g->nodes[ni];
    if (!np->op_type || !*np->op_type) {
        st = gf_fail(GF_ERR_PARSE, "node '%s' has no op type", n->name);
        goto out;
    }

    n->attrs = calloc(np->n_attribute + 1, sizeof(gf_attr));
    if (!n->attrs) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t a = 0; a < np->n_attribute && !st; a++) {
        n->n_attrs++;
        st = convert_attr(np->attribute[a], n, &n->attrs[a]);
        if (st) st = gf_fail_context(st, "node '%s' (%s)", n->name, n->op_type);
    }
out:
    free(ins);
    free(outs);
    return st;
}

/* Finds each node's kernel; every unsupported (op, opset) is listed at once. */
static gf_status resolve_ops(gf_graph *g)
{
    char msg[4096];
    size_t at = 0;
    int missing = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        gf_node *n = &g->nodes[i];
        int64_t opset = opset_of(g, n->domain);
        const char *why;
        if (opset < 0) {
            why = "its domain is not imported by the model";
        } else {
            n->opset = (int)opset;
            n->op = gf_op_find(n->domain, n->op_type, n->opset);
            /* The first output of every op graft runs is required; kernels rely on it. */
            if (n->op && (n->n_outputs == 0 || n->outputs[0] < 0))
                return gf_fail(GF_ERR_INVALID, "node '%s' (%s) has no first output", n->name, n->op_type);
            if (n->op) continue;
            why = gf_op_known(n->domain, n->op_type) ? "not supported at this opset" : "not supported";
        }
        if (++missing <= MAX_UNSUPPORTED_LISTED && at < sizeof msg)
            at += (size_t)snprintf(msg + at, sizeof msg - at, "\n  node '%s': %s%s%s (opset %lld) %s", n->name,
                                   n->domain, *n->domain ? "." : "", n->op_type, (long long)opset, why);
    }
    if (!missing) return GF_OK;
    if (missing > MAX_UNSUPPORTED_LISTED && at < sizeof msg)
        snprintf(msg + at, sizeof msg - at, "\n  ... and %d more", missing - MAX_UNSUPPORTED_LISTED);
    return gf_fail(GF_ERR_UNSUPPORTED, "%d node%s cannot run:%s", missing, missing == 1 ? "" : "s", msg);
}

gf_status gf_graph_from_proto(Onnx__ModelProto *mp, const gf_raw_span *spans, int n_spans, gf_external *ext,
                              gf_graph **out)
{
    *out = NULL;
    if (!mp->graph) return gf_fail(GF_ERR_PARSE, "the model has no graph");
    if (mp->ir_version < 3)
        return gf_fail(GF_ERR_UNSUPPORTED, "IR version %lld is older than 3, the first graft reads",
                       (long long)mp->ir_version);
    gf_graph *g = gf_graph_new();
    if (!g) return gf_fail(GF_ERR_NOMEM, "out of memory");
    Onnx__GraphProto *gp = mp->graph;
    gf_status st = GF_OK;
    g->ir_version = mp->ir_version;
    g->name = dup_or_empty(gp->name);
    g->producer_name = malloc(strlen(mp->producer_name ? mp->producer_name : "") +
                              strlen(mp->producer_version ? mp->producer_version : "") + 2);
    g->opsets = calloc(mp->n_opset_import + 1, sizeof(gf_opset_import));
    g->inputs = malloc((gp->n_input + 1) * sizeof(int));
    g->outputs = malloc((gp->n_output + 1) * sizeof(int));
    if (!g->name || !g->producer_name || !g->opsets || !g->inputs || !g->outputs) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    sprintf(g->producer_name, "%s%s%s", mp->producer_name ? mp->producer_name : "",
            mp->producer_version && *mp->producer_version ? " " : "", mp->producer_version ? mp->producer_version : "");
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        g->opsets[i].domain = dup_or_empty(mp->opset_import[i]->domain);
        if (!g->opsets[i].domain) {
            st = gf_fail(GF_ERR_NOMEM, "out of memory");
            goto out;
        }
        g->opsets[i].version = mp->opset_import[i]->version;
        g->n_opsets++;
    }
    if (!(g->meta_keys = calloc(mp->n_metadata_props + 1, sizeof(char *))) ||
        !(g->meta_values = calloc(mp->n_metadata_props + 1, sizeof(char *)))) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < mp->n_metadata_props; i++, g->n_meta++) {
        g->meta_keys[i] = dup_or_empty(mp->metadata_props[i]->key);
        g->meta_values[i] = dup_or_empty(mp->metadata_props[i]->value);
        if (!g->meta_keys[i] || !g->meta_values[i]) {
            g->n_meta++;
            st = gf_fail(GF_ERR_NOMEM, "out of memory");
            goto out;
        }
    }

    for (size_t i = 0; i < gp->n_initializer && !st; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name) {
            st = gf_fail(GF_ERR_PARSE, "initializer %zu has no name", i);
            break;
        }
        int v = gf_graph_value(g, tp->name);
        if (v < 0) {
            st = gf_fail(GF_ERR_NOMEM, "out of memory");
            break;
        }
        if (g->values[v].init) {
            st = gf_fail(GF_ERR_INVALID, "initializer '%s' is given twice", tp->name);
            break;
        }
        g->values[v].role = GF_ROLE_INITIALIZER;
        st = gf_tensor_from_proto(tp, (int)i < n_spans ? &spans[i] : NULL, ext, tp->name, &g->values[v].init);
        if (!st) {
            gf_value *val = &g->values[v];
            val->dtype = val->init->dtype;
            val->rank = val->init->rank;
            for (int d = 0; d < val->rank; d++) val->dims[d] = val->init->dims[d];
        }
    }
    if (gp->n_sparse_initializer && !st)
        st = gf_fail(GF_ERR_UNSUPPORTED, "the model has sparse initializers, which graft does not support");

    /* Graph inputs; before IR 4 initializers were listed among them too. */
    for (size_t i = 0; i < gp->n_input && !st; i++) {
        int v;
        int is_init = gp->input[i]->name && gf_graph_find_value(g, gp->input[i]->name) >= 0 &&
                      g->values[gf_graph_find_value(g, gp->input[i]->name)].role == GF_ROLE_INITIALIZER;
        if (is_init) continue;
        st = declare_value(g, gp->input[i], &v);
        if (st) break;
        if (g->values[v].role == GF_ROLE_INPUT) {
            st = gf_fail(GF_ERR_INVALID, "graph input '%s' is listed twice", g->values[v].name);
            break;
        }
        g->values[v].role = GF_ROLE_INPUT;
        g->inputs[g->n_inputs++] = v;
    }
    for (size_t i = 0; i < gp->n_value_info && !st; i++) {
        int v;
        st = declare_value(g, gp->value_info[i], &v);
    }
    for (size_t i = 0; i < gp->n_node && !st; i++) st = convert_node(g, gp->node[i], (int)i);
    for (size_t i = 0; i < gp->n_output && !st; i++) {
        int v;
        st = declare_value(g, gp->output[i], &v);
        if (st) break;
        g->values[v].is_output = 1;
        g->outputs[g->n_outputs++] = v;
    }
    if (!st && g->n_outputs == 0) st = gf_fail(GF_ERR_INVALID, "the graph has no outputs");
    if (!st) st = gf_graph_sort(g);
    for (int i = 0; i < g->n_outputs && !st; i++) {
        const gf_value *v = &g->values[g->outputs[i]];
        if (v->role == GF_ROLE_ACTIVATION && v->producer < 0)
            st = gf_fail(GF_ERR_INVALID, "graph output '%s' is not produced by any node", v->name);
    }
    if (!st) st = resolve_ops(g);
out:
    if (st) {
        gf_graph_free(g);
        return st;
    }
    *out = g;
    return GF_OK;
}

/* Parses a serialized ModelProto; `base_dir` is where external data is found
 * (NULL: external data is refused). With `keep_mapped`, `data` is a mapping
 * the model keeps: initializers are used in place (see proto_scan.h). */
static gf_status load_bytes(const void *data, size_t len, int keep_mapped, const char *path, const char *base_dir,
                            gf_model **out)
{
    *out = NULL;
    gf_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    uint8_t *stripped = NULL;
    size_t stripped_len = 0;
    gf_raw_span *spans = NULL;
    int n_spans = 0;
    if (keep_mapped && gf_scan_model(data, len, &stripped, &stripped_len, &spans, &n_spans)) {
        data = stripped;
        len = stripped_len;
    }
    /* What protobuf-c would build is checked before it builds it. */
    gf_status st = len ? gf_scan_limits(data, len, &onnx__model_proto__descriptor)
                       : gf_fail(GF_ERR_PARSE, "the file is empty");
    Onnx__ModelProto *mp = st ? NULL : onnx__model_proto__unpack(NULL, len, data);
    if (!st && !mp) st = gf_fail(GF_ERR_PARSE, "not a valid ONNX model (truncated, or not protobuf)");
    if (!st) {
        m->external.base_dir = base_dir;
        st = gf_graph_from_proto(mp, spans, n_spans, &m->external, &m->graph);
        m->external.base_dir = NULL;
    }
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    free(stripped);
    free(spans);
    if (st) {
        gf_model_free(m);
        return gf_fail_context(st, "%s", path);
    }
    *out = m;
    return GF_OK;
}

gf_status gf_model_load_buffer(const void *data, size_t len, gf_model **out)
{
    return load_bytes(data, len, 0, "<memory>", NULL, out);
}

gf_status gf_model_load(const char *path, gf_model **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gf_fail(GF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return gf_fail(GF_ERR_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (map == MAP_FAILED) return gf_fail(GF_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    char *dir_copy = strdup(path);
    gf_status st = dir_copy ? load_bytes(map, len, 1, path, dirname(dir_copy), out)
                            : gf_fail(GF_ERR_NOMEM, "out of memory");
    free(dir_copy);
    /* The model keeps the mapping: aligned weights live in it. */
    if (!st && len) st = gf_external_keep(&(*out)->external, map, len);
    if (st) {
        gf_model_free(*out);
        *out = NULL;
        if (len) munmap(map, len);
    }
    return st;
}

void gf_model_free(gf_model *m)
{
    if (!m) return;
    gf_graph_free(m->graph);
    gf_external_release(&m->external);
    free(m->summary_domains);
    free(m->summary_versions);
    free(m->summary_ops);
    free(m->summary_counts);
    free(m->path);
    free(m);
}
