/* Hand-built nodes for the tests that call kernels through the registry. */
#ifndef GF_TEST_NODE_H
#define GF_TEST_NODE_H

#include "ops/op.h"

#include <stdio.h>
#include <stdlib.h>
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

/* Finds the node's op, runs its infer and allocates the one output at the
 * inferred shape; ctx is then ready for a kernel (op->cpu or another). Returns
 * the output (caller frees) or NULL after printing why. */
static inline gf_tensor *test_prepare(const test_node *tn, int n_inputs, const gf_tensor **inputs, gf_op_ctx *ctx,
                                      gf_tensor **outs, const gf_op **found)
{
    const gf_op *op = *found = gf_op_find("", tn->node.op_type, tn->node.opset);
    if (!op) {
        printf("FAIL %s (opset %d) is not registered\n", tn->node.op_type, tn->node.opset);
        return NULL;
    }
    gf_tensor *out = calloc(1, sizeof *out);
    outs[0] = out;
    *ctx = (gf_op_ctx){&tn->node, n_inputs, inputs, 1, outs, 1};
    if (op->infer(ctx)) {
        printf("FAIL %s infer: %s\n", tn->node.op_type, gf_last_error());
        free(out);
        return NULL;
    }
    out->data = malloc(gf_tensor_nbytes(out) + 1);
    out->owns_data = 1;
    ctx->planning = 0;
    return out;
}

#endif
