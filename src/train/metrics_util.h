/* Helpers the metrics files share. */
#ifndef GF_METRICS_UTIL_H
#define GF_METRICS_UTIL_H

#include "graft.h"

/* Classes beyond this would make a confusion matrix of gigabytes. */
#define GF_METRICS_MAX_CLASSES 32768

/* The index of the largest of x[0], x[stride], ... x[(n - 1) * stride], the lowest on ties. */
int gf_metrics_argmax(const float *x, int n, int64_t stride);
/* The index of the first non-finite value of x[0..n), or -1. */
int64_t gf_metrics_first_nonfinite(const float *x, int64_t n);

#endif
