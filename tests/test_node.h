/* Hand-built nodes for the tests that call kernels through the registry. */
#ifndef GF_TEST_NODE_H
#define GF_TEST_NODE_H

#include "runtime/graph.h"

#include <string.h>

typedef struct test_node {
    gf_node node;
    gf_attr attrs[4];
} test_node;

static inline void node_init(test_node *tn, const char *op_type, int opset)
{
    memset(tn, 0, sizeof *tn);
    tn->node.name = (char *)op_type;
    tn->node.op_type = (char *)op_type;
    tn->node.domain = "";
    tn->node.opset = opset;
    tn->node.attrs = tn->attrs;
}

static inline void add_float(test_node *tn, const char *name, float v)
{
    gf_attr *a = &tn->attrs[tn->node.n_attrs++];
    a->name = (char *)name;
    a->type = GF_ATTR_FLOAT;
    a->f = v;
}

static inline void add_int(test_node *tn, const char *name, int64_t v)
{
    gf_attr *a = &tn->attrs[tn->node.n_attrs++];
    a->name = (char *)name;
    a->type = GF_ATTR_INT;
    a->i = v;
}

#endif
