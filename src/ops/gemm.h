/* What gemm.c shares with its CUDA twin (cuda/gemm.cu): Gemm's and MatMul's shapes
 * as 2-D products over broadcast batches, checked the same way and with the same
 * messages on every backend. */
#ifndef GF_OPS_GEMM_H
#define GF_OPS_GEMM_H

#ifdef __cplusplus
extern "C" {
#endif

#include "op.h"

/* One product Y[m,n] = op(A)[m,k] op(B)[k,n]. */
typedef struct gf_gemm_shape {
    int64_t m, n, k;
    int trans_a, trans_b;   /* A stored as [k, m], B stored as [n, k] */
} gf_gemm_shape;

/* MatMul broadcasts the dims before the last two; batch i reads matrix a_index(i) of
 * A and b_index(i) of B (the strides below) and writes matrix i of Y. */
typedef struct gf_gemm_batches {
    gf_gemm_shape shape;
    int64_t count;
    int rank;
    int64_t dims[GF_MAX_RANK];
    int64_t a_strides[GF_MAX_RANK], b_strides[GF_MAX_RANK];   /* in matrices; 0 where broadcast */
} gf_gemm_batches;

/* Gemm: checks that A and B (inputs 0 and 1) are matrices whose inner dims agree
 * under transA/transB, and gives the one product. */
gf_status gf_gemm_plan(const gf_op_ctx *ctx, gf_gemm_batches *p);

/* MatMul (numpy.matmul): checks A's and B's shapes, gives the products and the
 * output's shape. A stack of As against one B is a single taller product. */
gf_status gf_matmul_plan(const gf_tensor *a, const gf_tensor *b, gf_gemm_batches *p, int *out_rank,
                         int64_t *out_dims);

#ifdef __cplusplus
}
#endif

#endif
