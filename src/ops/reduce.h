/* What reduce.c shares with its CUDA twin (cuda/reduce.cu): how the Reduce ops read
 * their axes, the same way and with the same messages on every backend. */
#ifndef GF_OPS_REDUCE_H
#define GF_OPS_REDUCE_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* Which axes of the input a reduction takes, and whether it keeps them as size 1. */
typedef struct gf_reduce_axes {
    int keepdims;
    unsigned char reduced[GF_MAX_RANK];
} gf_reduce_axes;

/* Reads and checks the axes from the attribute or, with axes_as_input, from input 1
 * (and keepdims, noop_with_empty_axes). Sets *dynamic, reading nothing, when input 1's
 * values are not known yet. */
gf_status gf_reduce_read_axes(const gf_op_ctx *ctx, int axes_as_input, gf_reduce_axes *r, int *dynamic);

#ifdef __cplusplus
}
#endif

#endif
