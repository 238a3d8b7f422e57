/* Building a training graph: the forward graph copied in training form, a loss,
 * gradient nodes from one rule per op, and the optimizer's update nodes. Private
 * to src/train.
 *
 * The forward values keep their indices: value v of the model's graph is value v
 * of the training graph, so the shapes a plan of the model inferred (the "shape
 * pass") describe the training graph's forward values too. Gradient rules use
 * those shapes for ranks and element types only, never for dims: a training
 * graph serves every batch size, the session replanning on a new one. */
#ifndef GF_TRAIN_GRAPH_H
#define GF_TRAIN_GRAPH_H

#include "../runtime/error.h"
#include "../runtime/graph.h"

/* The opset of the ONNX ops the builder adds (Sum, ReduceSum with axes as an input, ...). */
#define GF_TRAIN_ONNX_OPSET 17
#define GF_DOMAIN "ai.graft"

typedef struct gf_builder {
    gf_graph *g;              /* the training graph being built */
    const gf_session *shapes; /* a plan of the model's graph: types and shapes of the forward values */
    int n_forward_values;     /* values [0, n) are the model's */
    int *shape_of;            /* per forward value: its Shape node's output, or -1 (made on demand) */
    int n_made;               /* counter for unique names */
} gf_builder;

/* ---- adding to the graph ---- */

/* A new activation value with a unique name built from `hint`; -1 when out of memory. */
int gb_new_value(gf_builder *b, const char *hint);
/* Adds a node of (domain, op_type), resolved from the registry, with new output values
 * named after `hint`; out[] receives them (may be NULL when n_out is 0). Returns the node
 * index, or -1 with the error set. An input may be -1 (omitted). */
int gb_node(gf_builder *b, const char *domain, const char *op_type, const char *hint, int n_in, const int *in,
            int n_out, int *out);
/* Attributes of node `ni` (the node must be the last added or still valid by index). */
gf_status gb_attr_int(gf_builder *b, int ni, const char *name, int64_t v);
gf_status gb_attr_float(gf_builder *b, int ni, const char *name, float v);
gf_status gb_attr_ints(gf_builder *b, int ni, const char *name, const int64_t *v, int n);
gf_status gb_attr_floats(gf_builder *b, int ni, const char *name, const float *v, int n);
gf_status gb_attr_string(gf_builder *b, int ni, const char *name, const char *v);
/* Copies every attribute of `from` but those listed (a NULL-terminated list, or NULL). */
gf_status gb_copy_attrs(gf_builder *b, int ni, const gf_node *from, const char *const *except);
/* New initializers: a float scalar, an int64 scalar, an int64 vector. -1 when out of memory. */
int gb_const_float(gf_builder *b, const char *hint, float v);
int gb_const_int(gf_builder *b, const char *hint, int64_t v);
int gb_const_ints(gf_builder *b, const char *hint, const int64_t *v, int n);
/* Shape(v) for a forward value, made once and folded by the session at plan time. */
int gb_shape(gf_builder *b, int v);
/* Rank and element type of a forward value from the shape pass; -1 / GF_UNDEFINED for others. */
int gb_rank(const gf_builder *b, int v);
gf_dtype gb_dtype(const gf_builder *b, int v);

/* Single-output conveniences; each returns the output value or -1 with the error set. */
int gb_op1(gf_builder *b, const char *op_type, const char *hint, int a);
int gb_op2(gf_builder *b, const char *op_type, const char *hint, int a, int c);
/* An ai.graft op with inputs in[] and one output. */
int gb_graft1(gf_builder *b, const char *op_type, const char *hint, int n_in, const int *in);

/* Gives an initializer of model m storage of its own (a copy of the mapped file's
 * bytes) so that training can write it; the model's aligned copies already are
 * (gf_model_keep_weights has made them stay). */
gf_status gf_own_storage(const gf_model *m, gf_tensor *init, const char *name);

/* ---- gradient rules ---- */

typedef struct gf_grad_ctx {
    gf_builder *b;
    gf_node fwd;              /* the forward node (a copy: adding nodes may move the node array) */
    const int *dy;            /* per output: its gradient value, or -1 when none flows back */
    const char *needs;        /* per input: whether its gradient is wanted */
    int *dx;                  /* per input: set to the gradient value where wanted */
} gf_grad_ctx;

typedef gf_status (*gf_grad_fn)(gf_grad_ctx *c);

typedef struct gf_grad_rule {
    const char *domain;
    const char *op_type;
    gf_grad_fn fn;
} gf_grad_rule;

/* The rule for an op, or NULL. Rule tables: grad_rules.c (element-wise, activations,
 * data movement), grad_rules_nn.c (conv, pooling, normalisation, matrix products, losses). */
const gf_grad_rule *gf_grad_rule_find(const char *domain, const char *op_type);
extern const gf_grad_rule gf_grad_rules_basic[], gf_grad_rules_nn[];

/* ---- autodiff ---- */

/* Copies the model's graph into b->g in training form: BatchNormalization uses batch
 * statistics and updates its running mean and variance (update bindings), Dropout drops
 * (masks drawn from `seed` and the step number). *step receives the int64 scalar input
 * "graft.step" it adds for that (the caller lists it among the graph's inputs).
 * bn_momentum > 0 overrides the models' BatchNormalization momentum (gf_train_options). */
gf_status gf_autodiff_forward(gf_builder *b, const gf_graph *model, uint64_t seed, double bn_momentum, int *step);
/* Copies the model's graph into b->g as it is, in eval form (value indices kept, the
 * initializers reading the model's storage). */
gf_status gf_copy_forward(gf_builder *b, const gf_graph *model);
/* Adds the gradient nodes of `loss` (a float scalar) with respect to each of params[];
 * grads[i] receives the gradient value, -1 for a parameter the loss does not depend on. */
gf_status gf_autodiff_backward(gf_builder *b, int loss, const int *params, int n_params, int *grads);

#endif
