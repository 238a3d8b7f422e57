/* IR → ONNX file. The ModelProto built here points into the IR (names, attribute
 * arrays, weights) instead of copying it, and protobuf-c serializes it straight
 * into the file through a ProtobufCBuffer, so a model's weights are never held
 * twice in memory. The file is replaced atomically: written beside it as
 * <path>.tmp.<pid>.<n>, synced, renamed over it, and the folder synced, so that a
 * crash or a full disk at any moment leaves either the old file or the new one.
 *
 * What the IR cannot say faithfully (a subgraph the loader did not keep, an
 * attribute type graft drops, a node in a domain the model does not import) fails
 * with a message instead of writing a file that means something else. */
#include "saver.h"

#include "error.h"
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the saver writes tensors' memory as ONNX raw_data, which is little-endian"
#endif

/* protobuf cannot serialize a message of 2 GiB or more, so neither can ONNX without external data */
#define PROTOBUF_MAX_BYTES ((size_t)INT32_MAX)

/* The pieces of one ModelProto, allocated one by one and freed together. */
typedef struct piece {
    struct piece *next;
    max_align_t data[];
} piece;

typedef struct saver {
    piece *pieces;
    const gf_graph *root; /* its opset imports and IR version rule subgraphs too */
} saver;

/* Initializers and metadata a checkpoint adds to the model's own. */
typedef struct extras {
    int n_tensors;
    const char *const *names;
    const gf_tensor *const *tensors;
    int n_meta;
    const char *const *keys, *const *values;
} extras;

/* Zeroed memory that lives until free_pieces; NULL (message set) when out of memory. */
static void *alloc(saver *s, size_t count, size_t size)
{
    piece *p = count <= (SIZE_MAX - sizeof(piece)) / (size ? size : 1) ? calloc(1, sizeof(piece) + count * size)
                                                                        : NULL;
    if (!p) {
        gf_fail(GF_ERR_NOMEM, "out of memory building the ONNX model");
        return NULL;
    }
    p->next = s->pieces;
    s->pieces = p;
    return p->data;
}

static void free_pieces(saver *s)
{
    while (s->pieces) {
        piece *next = s->pieces->next;
        free(s->pieces);
        s->pieces = next;
    }
}

static void *new_message(saver *s, size_t size, const void *init)
{
    void *m = alloc(s, 1, size);
    if (m) memcpy(m, init, size);
    return m;
}

/* A protobuf-c message of `type` set to its defaults, e.g. NEW(s, Onnx__NodeProto, ONNX__NODE_PROTO__INIT). */
#define NEW(s, type, init) ((type *)new_message(s, sizeof(type), &(type)init))

/* ---- tensors, types, attributes, nodes, graphs ---- */

/* The tensor as raw_data pointing at its own memory; `what` names it in errors. */
static gf_status tensor_proto(saver *s, const gf_tensor *t, const char *name, const char *what,
                              Onnx__TensorProto **out)
{
    if (gf_dtype_size(t->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor '%s' has element type %d, which graft cannot write", what,
                       (int)t->dtype);
    if (t->rank < 0 || t->rank > GF_MAX_RANK)
        return gf_fail(GF_ERR_INVALID, "tensor '%s' has rank %d", what, t->rank);
    Onnx__TensorProto *p = NEW(s, Onnx__TensorProto, ONNX__TENSOR_PROTO__INIT);
    if (!p) return GF_ERR_NOMEM;
    p->name = (char *)name;
    p->n_dims = (size_t)t->rank;
    p->dims = (int64_t *)t->dims;
    p->has_data_type = 1;
    p->data_type = (int32_t)t->dtype;
    p->has_raw_data = 1;
    p->raw_data.len = gf_tensor_nbytes(t);
    p->raw_data.data = t->data;
    *out = p;
    return GF_OK;
}

/* Declared element type and shape, symbolic dims by name; NULL type when nothing was declared. */
static gf_status type_proto(saver *s, const gf_value *v, Onnx__TypeProto **out)
{
    *out = NULL;
    if (v->dtype == GF_UNDEFINED && v->rank < 0) return GF_OK;
    Onnx__TypeProto *tp = NEW(s, Onnx__TypeProto, ONNX__TYPE_PROTO__INIT);
    Onnx__TypeProto__Tensor *tt = NEW(s, Onnx__TypeProto__Tensor, ONNX__TYPE_PROTO__TENSOR__INIT);
    if (!tp || !tt) return GF_ERR_NOMEM;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = v->dtype != GF_UNDEFINED;
    tt->elem_type = (int32_t)v->dtype;
    *out = tp;
    if (v->rank < 0) return GF_OK;
    if (v->rank > GF_MAX_RANK) return gf_fail(GF_ERR_INVALID, "value '%s' has rank %d", v->name, v->rank);
    Onnx__TensorShapeProto *shape = NEW(s, Onnx__TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
    Onnx__TensorShapeProto__Dimension **dim = alloc(s, (size_t)v->rank + 1, sizeof *dim);
    if (!shape || !dim) return GF_ERR_NOMEM;
    for (int d = 0; d < v->rank; d++) {
        if (!(dim[d] = NEW(s, Onnx__TensorShapeProto__Dimension, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT)))
            return GF_ERR_NOMEM;
        if (v->dims[d] >= 0) {
            dim[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[d]->dim_value = v->dims[d];
        } else if (v->dim_names[d]) {
            dim[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[d]->dim_param = v->dim_names[d];
        }
    }
    shape->n_dim = (size_t)v->rank;
    shape->dim = dim;
    tt->shape = shape;
    return GF_OK;
}

static gf_status value_info(saver *s, const gf_value *v, Onnx__ValueInfoProto **out)
{
    Onnx__ValueInfoProto *vi = NEW(s, Onnx__ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
    if (!vi) return GF_ERR_NOMEM;
    vi->name = v->name;
    *out = vi;
    return type_proto(s, v, &vi->type);
}

static gf_status graph_proto(saver *s, const gf_graph *g, const extras *x, Onnx__GraphProto **out);

static gf_status attr_proto(saver *s, const gf_attr *a, Onnx__AttributeProto **out)
{
    Onnx__AttributeProto *p = NEW(s, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    if (!p) return GF_ERR_NOMEM;
    *out = p;
    p->name = a->name;
    p->has_type = 1;
    switch (a->type) {
    case GF_ATTR_FLOAT:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        p->has_f = 1;
        p->f = a->f;
        return GF_OK;
    case GF_ATTR_INT:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        p->has_i = 1;
        p->i = a->i;
        return GF_OK;
    case GF_ATTR_STRING:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        p->has_s = 1;
        p->s.len = strlen(a->s);
        p->s.data = (uint8_t *)a->s;
        return GF_OK;
    case GF_ATTR_TENSOR:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
        if (!a->t) return gf_fail(GF_ERR_INVALID, "tensor attribute '%s' has no tensor", a->name);
        return tensor_proto(s, a->t, "", a->name, &p->t);
    case GF_ATTR_GRAPH:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
        if (!a->g) return gf_fail(GF_ERR_UNSUPPORTED, "the subgraph of attribute '%s' was not kept", a->name);
        return graph_proto(s, a->g, NULL, &p->g);
    case GF_ATTR_FLOATS:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        p->n_floats = (size_t)a->n;
        p->floats = a->floats;
        return GF_OK;
    case GF_ATTR_INTS:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        p->n_ints = (size_t)a->n;
        p->ints = a->ints;
        return GF_OK;
    case GF_ATTR_STRINGS:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
        if (!(p->strings = alloc(s, (size_t)a->n + 1, sizeof *p->strings))) return GF_ERR_NOMEM;
        p->n_strings = (size_t)a->n;
        for (int k = 0; k < a->n; k++) p->strings[k] = (ProtobufCBinaryData){strlen(a->strings[k]), (uint8_t *)a->strings[k]};
        return GF_OK;
    default:
        /* lists of tensors or graphs, sparse tensors, type protos: the loader keeps only the name */
        return gf_fail(GF_ERR_UNSUPPORTED, "attribute '%s' is of a type graft does not keep, so it cannot be written back",
                       a->name);
    }
}

static int domain_imported(const gf_graph *root, const char *domain)
{
    for (int i = 0; i < root->n_opsets; i++) {
        const char *d = root->opsets[i].domain;
        if (!strcmp(d, domain) || (!*domain && !strcmp(d, "ai.onnx")) || (!*d && !strcmp(domain, "ai.onnx")))
            return 1;
    }
    return 0;
}

/* Value names of a node's inputs or outputs; "" for an omitted optional one (index -1). */
static char **value_names(saver *s, const gf_graph *g, int n, const int *values)
{
    char **names = alloc(s, (size_t)n + 1, sizeof *names);
    for (int i = 0; names && i < n; i++) names[i] = values[i] < 0 ? "" : g->values[values[i]].name;
    return names;
}

static gf_status node_proto(saver *s, const gf_graph *g, const gf_node *n, Onnx__NodeProto **out)
{
    if (!domain_imported(s->root, n->domain))
        return gf_fail(GF_ERR_INVALID, "node '%s' (%s) is in domain '%s', which the model does not import", n->name,
                       n->op_type, n->domain);
    Onnx__NodeProto *p = NEW(s, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
    if (!p || !(p->input = value_names(s, g, n->n_inputs, n->inputs)) ||
        !(p->output = value_names(s, g, n->n_outputs, n->outputs)) ||
        !(p->attribute = alloc(s, (size_t)n->n_attrs + 1, sizeof *p->attribute)))
        return GF_ERR_NOMEM;
    *out = p;
    p->n_input = (size_t)n->n_inputs;
    p->n_output = (size_t)n->n_outputs;
    p->name = n->name;
    p->op_type = n->op_type;
    p->domain = n->domain;
    p->n_attribute = (size_t)n->n_attrs;
    for (int a = 0; a < n->n_attrs; a++) {
        gf_status st = attr_proto(s, &n->attrs[a], &p->attribute[a]);
        if (st) return gf_fail_context(st, "node '%s' (%s)", n->name, n->op_type);
    }
    return GF_OK;
}

/* The graph's initializers in value order, then the extra ones. */
static gf_status initializers(saver *s, const gf_graph *g, const extras *x, Onnx__GraphProto *p)
{
    int n_extra = x ? x->n_tensors : 0, n = 0;
    for (int v = 0; v < g->n_values; v++) n += g->values[v].role == GF_ROLE_INITIALIZER;
    if (!(p->initializer = alloc(s, (size_t)(n + n_extra) + 1, sizeof *p->initializer))) return GF_ERR_NOMEM;
    for (int v = 0; v < g->n_values; v++) {
        const gf_value *val = &g->values[v];
        if (val->role != GF_ROLE_INITIALIZER) continue;
        if (!val->init) return gf_fail(GF_ERR_INVALID, "initializer '%s' has no data", val->name);
        gf_status st = tensor_proto(s, val->init, val->name, val->name, &p->initializer[p->n_initializer++]);
        if (st) return st;
    }
    for (int i = 0; i < n_extra; i++) {
        gf_status st = tensor_proto(s, x->tensors[i], x->names[i], x->names[i], &p->initializer[p->n_initializer++]);
        if (st) return st;
    }
    return GF_OK;
}

/* Graph inputs; before IR version 4 every initializer had to be listed among them too. */
static gf_status inputs(saver *s, const gf_graph *g, Onnx__GraphProto *p)
{
    int with_initializers = s->root->ir_version < 4;
    size_t n = (size_t)g->n_inputs + (with_initializers ? p->n_initializer : 0);
    if (!(p->input = alloc(s, n + 1, sizeof *p->input))) return GF_ERR_NOMEM;
    for (int i = 0; i < g->n_inputs; i++) {
        gf_status st = value_info(s, &g->values[g->inputs[i]], &p->input[p->n_input++]);
        if (st) return st;
    }
    for (size_t i = 0; with_initializers && i < p->n_initializer; i++) {
        const Onnx__TensorProto *t = p->initializer[i];
        gf_value v = {.name = t->name, .dtype = (gf_dtype)t->data_type, .rank = (int)t->n_dims};
        memcpy(v.dims, t->dims, t->n_dims * sizeof *t->dims);
        gf_status st = value_info(s, &v, &p->input[p->n_input++]);
        if (st) return st;
    }
    return GF_OK;
}

/* Outputs, and value_info for the other values whose type or shape was declared. */
static gf_status outputs_and_value_info(saver *s, const gf_graph *g, Onnx__GraphProto *p)
{
    if (!(p->output = alloc(s, (size_t)g->n_outputs + 1, sizeof *p->output)) ||
        !(p->value_info = alloc(s, (size_t)g->n_values + 1, sizeof *p->value_info)))
        return GF_ERR_NOMEM;
    for (int i = 0; i < g->n_outputs; i++) {
        gf_status st = value_info(s, &g->values[g->outputs[i]], &p->output[p->n_output++]);
        if (st) return st;
    }
    for (int v = 0; v < g->n_values; v++) {
        const gf_value *val = &g->values[v];
        if (val->role != GF_ROLE_ACTIVATION || val->is_output || (val->dtype == GF_UNDEFINED && val->rank < 0))
            continue;
        gf_status st = value_info(s, val, &p->value_info[p->n_value_info++]);
        if (st) return st;
    }
    return GF_OK;
}

static gf_status graph_proto(saver *s, const gf_graph *g, const extras *x, Onnx__GraphProto **out)
{
    Onnx__GraphProto *p = NEW(s, Onnx__GraphProto, ONNX__GRAPH_PROTO__INIT);
    if (!p || !(p->node = alloc(s, (size_t)g->n_nodes + 1, sizeof *p->node))) return GF_ERR_NOMEM;
    *out = p;
    p->name = g->name;
    gf_status st = GF_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) st = node_proto(s, g, &g->nodes[i], &p->node[p->n_node++]);
    if (!st) st = initializers(s, g, x, p);
    if (!st) st = inputs(s, g, p);
    if (!st) st = outputs_and_value_info(s, g, p);
    return st;
}

/* ---- the model ---- */

static int key_index(int n, const char *const *keys, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i], key)) return i;
    return -1;
}

/* The model's metadata_props, where the extra entries replace those of the same key. */
static gf_status metadata(saver *s, const gf_graph *g, const extras *x, Onnx__ModelProto *mp)
{
    if (!(mp->metadata_props = alloc(s, (size_t)(g->n_meta + x->n_meta) + 1, sizeof *mp->metadata_props)))
        return GF_ERR_NOMEM;
    for (int i = 0; i < g->n_meta + x->n_meta; i++) {
        int own = i < g->n_meta;
        char *key = own ? g->meta_keys[i] : (char *)x->keys[i - g->n_meta];
        char *value = own ? g->meta_values[i] : (char *)x->values[i - g->n_meta];
        if (own && key_index(x->n_meta, x->keys, key) >= 0) continue;
        Onnx__StringStringEntryProto *e = NEW(s, Onnx__StringStringEntryProto, ONNX__STRING_STRING_ENTRY_PROTO__INIT);
        if (!e) return GF_ERR_NOMEM;
        e->key = key;
        e->value = value;
        mp->metadata_props[mp->n_metadata_props++] = e;
    }
    return GF_OK;
}

static gf_status model_proto(saver *s, const gf_graph *g, const extras *x, Onnx__ModelProto *mp)
{
    if (g->n_updates)
        return gf_fail(GF_ERR_UNSUPPORTED, "the graph carries %d training update bindings; only a model's own graph "
                       "can be saved", g->n_updates);
    mp->has_ir_version = 1;
    mp->ir_version = g->ir_version;
    mp->producer_name = "graft";
    mp->producer_version = GRAFT_VERSION;
    if (!(mp->opset_import = alloc(s, (size_t)g->n_opsets + 1, sizeof *mp->opset_import))) return GF_ERR_NOMEM;
    for (int i = 0; i < g->n_opsets; i++) {
        Onnx__OperatorSetIdProto *o = NEW(s, Onnx__OperatorSetIdProto, ONNX__OPERATOR_SET_ID_PROTO__INIT);
        if (!o) return GF_ERR_NOMEM;
        o->domain = g->opsets[i].domain;
        o->has_version = 1;
        o->version = g->opsets[i].version;
        mp->opset_import[mp->n_opset_import++] = o;
    }
    gf_status st = graph_proto(s, g, x, &mp->graph);
    return st ? st : metadata(s, g, x, mp);
}

/* Extra names must be new and distinct, so the file has one meaning. */
static gf_status check_extras(const gf_graph *g, const extras *x)
{
    if (x->n_tensors < 0 || x->n_meta < 0 || (x->n_tensors && (!x->names || !x->tensors)) ||
        (x->n_meta && (!x->keys || !x->values)))
        return gf_fail(GF_ERR_INVALID, "extra tensors or metadata given without their arrays");
    for (int i = 0; i < x->n_tensors; i++) {
        const char *name = x->names[i];
        if (!name || !*name || !x->tensors[i])
            return gf_fail(GF_ERR_INVALID, "extra tensor %d has no name or no data", i);
        if (gf_graph_find_value(g, name) >= 0)
            return gf_fail(GF_ERR_INVALID, "extra tensor '%s' has the name of a value of the graph", name);
        if (key_index(i, x->names, name) >= 0)
            return gf_fail(GF_ERR_INVALID, "extra tensor '%s' is given twice", name);
    }
    for (int i = 0; i < x->n_meta; i++) {
        if (!x->keys[i] || !x->values[i]) return gf_fail(GF_ERR_INVALID, "metadata entry %d has no key or no value", i);
        if (key_index(i, x->keys, x->keys[i]) >= 0)
            return gf_fail(GF_ERR_INVALID, "metadata key '%s' is given twice", x->keys[i]);
    }
    return GF_OK;
}

/* ---- the file ---- */

/* Hands protobuf-c's output to stdio as it comes; the first error is kept. */
typedef struct file_sink {
    ProtobufCBuffer base;
    FILE *f;
    int err;
} file_sink;

static void append_to_file(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    file_sink *sink = (file_sink *)buffer;
    if (sink->err) return;
    errno = 0;
    if (fwrite(data, 1, len, sink->f) != len) sink->err = errno ? errno : EIO;
}

static int write_model(FILE *f, void *message)
{
    file_sink sink = {{append_to_file}, f, 0};
    protobuf_c_message_pack_to_buffer(message, &sink.base);
    return sink.err;
}

/* Makes the rename itself durable. Best effort: some file systems refuse fsync on a
 * directory, and the file is complete either way. */
static void sync_directory(const char *path)
{
    char *copy = strdup(path);
    int fd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    free(copy);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* Writes, flushes and (for a regular file) syncs an open descriptor; 0 or an errno. */
static int fill_and_sync(int fd, int (*fill)(FILE *f, void *ctx), void *ctx, int sync)
{
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int err = errno;
        close(fd);
        return err;
    }
    int err = fill(f, ctx);
    if (!err && fflush(f)) err = errno;
    if (!err && sync && fsync(fd)) err = errno;
    if (fclose(f) && !err) err = errno;
    return err;
}

/* Temporaries are <path>.tmp.<pid>.<n>: distinct per process and per save, so that
 * two saves never share one, and recognisable when a killed process left one. */
static atomic_uint temp_counter;

gf_status gf_write_atomically(const char *path, int (*fill)(FILE *f, void *ctx), void *ctx)
{
    /* A link is followed, so that the file it names is replaced, not the link. */
    char *real = NULL;
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) real = realpath(path, NULL);
    const char *target = real ? real : path;
    int exists = stat(target, &sb) == 0;
    gf_status st = GF_OK;
    if (exists && S_ISDIR(sb.st_mode)) {
        st = gf_fail(GF_ERR_IO, "cannot save '%s': cannot replace it: it is a folder", path);
    } else if (exists && !S_ISREG(sb.st_mode)) {
        /* /dev/null, a pipe: written as it is, never renamed over */
        int fd = open(target, O_WRONLY | O_TRUNC | O_CLOEXEC);
        int err = fd < 0 ? errno : fill_and_sync(fd, fill, ctx, 0);
        if (err) st = gf_fail(GF_ERR_IO, "cannot save '%s': %s", path, strerror(err));
    } else {
        size_t len = strlen(target) + 48;
        char *tmp = malloc(len);
        if (!tmp) {
            free(real);
            return gf_fail(GF_ERR_NOMEM, "out of memory");
        }
        snprintf(tmp, len, "%s.tmp.%ld.%u", target, (long)getpid(), atomic_fetch_add(&temp_counter, 1));
        /* O_EXCL | O_NOFOLLOW: never write through a file or link someone put there */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0) {
            st = gf_fail(GF_ERR_IO, "cannot save '%s': cannot create '%s': %s", path, tmp, strerror(errno));
        } else {
            if (exists) (void)fchmod(fd, sb.st_mode & 07777); /* a replaced file keeps its permissions */
            int err = fill_and_sync(fd, fill, ctx, 1);
            if (err) st = gf_fail(GF_ERR_IO, "cannot save '%s': writing failed: %s", path, strerror(err));
            else if (rename(tmp, target))
                st = gf_fail(GF_ERR_IO, "cannot save '%s': cannot replace it: %s", path, strerror(errno));
            if (st) unlink(tmp); /* the old file, if any, is as it was; no temporary is left */
            else sync_directory(target);
        }
        free(tmp);
    }
    free(real);
    return st;
}

static gf_status save(const gf_model *m, const char *path, const extras *x)
{
    if (!m || !m->graph || !path || !*path) return gf_fail(GF_ERR_INVALID, "gf_model_save: no model or no path");
    saver s = {NULL, m->graph};
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    gf_status st = gf_model_keep_weights(m);
    if (!st) st = check_extras(m->graph, x);
    if (!st) st = model_proto(&s, m->graph, x, &mp);
    if (st) {
        st = gf_fail_context(st, "cannot save '%s'", path);
    } else {
        size_t size = onnx__model_proto__get_packed_size(&mp);
        if (size > PROTOBUF_MAX_BYTES)
            st = gf_fail(GF_ERR_UNSUPPORTED, "cannot save '%s': the model needs %.2f GiB, over protobuf's 2 GiB limit "
                         "for one file (graft does not write external data)", path, (double)size / (1u << 30));
        else
            st = gf_write_atomically(path, write_model, &mp.base);
    }
    free_pieces(&s);
    return st;
}

gf_status gf_model_save_extra(const gf_model *m, const char *path, int n_tensors, const char *const *names,
                              const gf_tensor *const *tensors, int n_meta, const char *const *keys,
                              const char *const *values)
{
    extras x = {n_tensors, names, tensors, n_meta, keys, values};
    return save(m, path, &x);
}

gf_status gf_model_save(const gf_model *m, const char *path)
{
    return gf_model_save_extra(m, path, 0, NULL, NULL, 0, NULL, NULL);
}
