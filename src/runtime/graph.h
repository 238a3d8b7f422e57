/* The IR: values, nodes and typed attributes. Everything past the loader sees
 * only this; protobuf-c stays in the loader and saver. */
#ifndef GF_GRAPH_H
#define GF_GRAPH_H

#include "graft.h"

typedef enum gf_attr_type {
    GF_ATTR_UNDEFINED = 0,
    GF_ATTR_FLOAT,
    GF_ATTR_INT,
    GF_ATTR_STRING,
    GF_ATTR_TENSOR,
    GF_ATTR_GRAPH,
    GF_ATTR_FLOATS,
    GF_ATTR_INTS,
    GF_ATTR_STRINGS,
    GF_ATTR_TENSORS,
    GF_ATTR_GRAPHS,
} gf_attr_type;

struct gf_graph;

typedef struct gf_attr {
    char *name;
    gf_attr_type type;
    float f;
    int64_t i;
    char *s;                 /* NUL-terminated copy of a string attribute */
    gf_tensor *t;
    struct gf_graph *g;      /* subgraph (If/Loop/Scan); kept but not run yet */
    int n;                   /* element count of floats/ints/strings */
    float *floats;
    int64_t *ints;
    char **strings;
} gf_attr;

typedef struct gf_node {
    char *name;              /* never NULL: a generated "<op>_<index>" when the file has none */
    char *op_type;
    char *domain;            /* "" for the default ONNX domain */
    int opset;               /* the model's opset for this node's domain */
    int n_inputs, n_outputs;
    int *inputs;             /* value indices; -1 for an omitted optional input */
    int *outputs;            /* value indices; -1 for an omitted optional output */
    int n_attrs;
    gf_attr *attrs;
    const struct gf_op *op;  /* resolved from the registry at load time */
} gf_node;

typedef enum gf_value_role {
    GF_ROLE_ACTIVATION = 0,
    GF_ROLE_INPUT,
    GF_ROLE_INITIALIZER,
} gf_value_role;

typedef struct gf_value {
    char *name;
    gf_value_role role;
    gf_dtype dtype;          /* declared type; GF_UNDEFINED when not declared */
    int rank;                /* declared rank; -1 when not declared */
    int64_t dims[GF_MAX_RANK];   /* -1 for a symbolic or unknown dim */
    char *dim_names[GF_MAX_RANK];/* symbolic names, NULL where none */
    gf_tensor *init;         /* data of an initializer */
    int producer;            /* node index, -1 for inputs and initializers */
    int is_output;
    int is_state;            /* an initializer whose data changes between runs (trainable parameters,
                                optimizer state, running statistics): never folded as a constant */
} gf_value;

/* After a successful run, the data of value `source` is copied into the initializer
 * `state` (ONNX's TrainingInfoProto update_binding): how a training step's new
 * parameters, optimizer state and running statistics persist to the next step. */
typedef struct gf_update {
    int state, source;
    int in_place;            /* the node making `source` reads the state element by element before
                                writing, so it may write straight into the state's storage when it
                                is the state's last reader (the session checks that) */
} gf_update;

typedef struct gf_opset_import {
    char *domain;
    int64_t version;
} gf_opset_import;

typedef struct gf_graph {
    char *name;
    int n_values, cap_values;
    gf_value *values;
    int n_nodes, cap_nodes;
    gf_node *nodes;          /* in topological order after loading */
    int n_inputs, n_outputs;
    int *inputs;             /* graph inputs that are not initializers */
    int *outputs;
    int n_opsets;
    gf_opset_import *opsets;
    int64_t ir_version;
    char *producer_name;
    int n_updates;
    gf_update *updates;
    int n_meta;              /* the model's metadata_props */
    char **meta_keys, **meta_values;
    int n_slots;             /* open-addressing index of value names */
    int *slots;              /* value index + 1, 0 for empty */
} gf_graph;

gf_graph *gf_graph_new(void);
void gf_graph_free(gf_graph *g);

/* Index of the value with this name, adding an activation if there is none;
 * -1 when out of memory. */
int gf_graph_value(gf_graph *g, const char *name);
int gf_graph_find_value(const gf_graph *g, const char *name);
/* Appends a node; returns its index or -1. Names and arrays are copied. */
int gf_graph_add_node(gf_graph *g, const char *name, const char *op_type, const char *domain,
                      int n_inputs, const int *inputs, int n_outputs, const int *outputs);

/* Drops the nodes i with remove[i] set, keeping the others' order; producers are
 * renumbered. Values stay (a removed node's outputs must be made by other means). */
void gf_graph_remove_nodes(gf_graph *g, const char *remove);

/* Puts nodes in topological order; fails naming a node on a cycle or the
 * value nobody produces. */
gf_status gf_graph_sort(gf_graph *g);

/* ---- attributes ---- */

const gf_attr *gf_node_attr(const gf_node *n, const char *name);
int64_t gf_attr_int(const gf_node *n, const char *name, int64_t dflt);
float gf_attr_float(const gf_node *n, const char *name, float dflt);
const char *gf_attr_string(const gf_node *n, const char *name, const char *dflt);
/* Returns the list and its length in *count; NULL (and *count 0) when absent. */
const int64_t *gf_attr_ints(const gf_node *n, const char *name, int *count);
const float *gf_attr_floats(const gf_node *n, const char *name, int *count);

#endif
