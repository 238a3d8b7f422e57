/* Helpers the gradient-rule files share. */
#ifndef GF_GRAD_RULES_H
#define GF_GRAD_RULES_H

#include "train_graph.h"

#include "../ops/op.h"
#include "../runtime/session.h"

/* A dx[] entry meaning "this input gets no gradient" (an integer or shape input). */
#define GR_NO_GRAD (-3)

/* Sums `grad` (shaped like forward output y) down to the shape of `like`, an input that
 * y broadcast from; no node at all when they are activations of the same shape. */
int gr_reduce_to(gf_builder *b, int grad, int like, int y, const char *hint);
/* Checks that every wanted dx[] was made (a -1 there means a builder call failed and set
 * the error) and turns GR_NO_GRAD entries into -1. */
gf_status gr_done(const gf_grad_ctx *c);

#endif
