/* Gradients of a model's scalar first output with respect to every float initializer
 * (the forward in training form). For the gradient checker (tests/gradcheck.c). */
#ifndef GF_GRADIENTS_H
#define GF_GRADIENTS_H

#include "train_graph.h"

typedef struct gf_gradients gf_gradients;

/* Builds the gradient graph for inputs of these shapes. */
gf_status gf_gradients_new(gf_model *m, const gf_tensor *const *inputs, gf_gradients **out);
void gf_gradients_free(gf_gradients *gr);
/* The initializers the first output depends on. */
int gf_gradients_count(const gf_gradients *gr);
const char *gf_gradients_name(const gf_gradients *gr, int i);
/* The initializer's storage: change it to evaluate the output elsewhere. */
gf_tensor *gf_gradients_param(gf_gradients *gr, int i);
/* Runs forward and backward: *loss the first output, grads[i] (new tensors, or NULL
 * to skip them) the gradient of initializer i. */
gf_status gf_gradients_run(gf_gradients *gr, const gf_tensor *const *inputs, double *loss, gf_tensor **grads);

#endif
