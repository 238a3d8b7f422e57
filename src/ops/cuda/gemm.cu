/* Gemm and MatMul on the GPU (twin: ops/gemm.c), float32, through cuBLAS.
 *
 * graft's matrices are row-major; cuBLAS's are column-major, where a row-major
 * [m, k] matrix is a column-major [k, m] one. So Y = op(A) op(B) is computed as
 * Y^T = op(B)^T op(A)^T: sgemm with the operands swapped. MatMul's broadcast batches
 * run as strided-batched products over their innermost batch dim (all of them when the
 * batch dims merge into one), one call per outer batch otherwise; a stack of As against
 * one B is a single taller product, as on the CPU. Gemm's C (broadcast) is copied into
 * Y first and takes part as cuBLAS's beta term; beta 0 ignores C entirely, NaNs and
 * all, as the reference does. TF32 only with GRAFT_CUDA_TF32=1. */
#include "cuda_util.cuh"

#include "../gemm.h"

#include <limits.h>

/* ---- cuBLAS ---- */

__global__ void scale_kernel(float *y, int64_t n, double f)
{
    GF_CUDA_LOOP(i, n) y[i] = (float)(f * y[i]);
}

/* `batch` products Y_i = alpha op(A_i) op(B_i) + beta Y_i, matrices stride_* elements apart. */
static gf_status sgemm(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_gemm_shape *s, float alpha, const float *a,
                       long long stride_a, const float *b, long long stride_b, float beta, float *y, long long stride_y,
                       int64_t batch)
{
    if (s->m == 0 || s->n == 0 || batch == 0) return GF_OK;
    if (s->m > INT_MAX || s->n > INT_MAX || s->k > INT_MAX || batch > INT_MAX)
        return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED, "a matrix dim exceeds cuBLAS's int range");
    int m = (int)s->m, n = (int)s->n, k = (int)s->k;
    int lda = s->trans_a ? m : k, ldb = s->trans_b ? k : n;
    cublasOperation_t op_a = s->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = s->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1)
        return GF_CUBLAS(ctx, gf_cublas->sgemm(cu->cublas, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, y, n));
    return GF_CUBLAS(ctx, gf_cublas->sgemm_strided_batched(cu->cublas, op_b, op_a, n, m, k, &alpha, b, ldb, stride_b, a,
                                                           lda, stride_a, &beta, y, n, stride_y, (int)batch));
}

/* ---- Gemm ---- */

static gf_status gemm_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_gemm_batches p;
    gf_status st = gf_gemm_plan(ctx, &p);
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *y = ctx->outputs[0];
    const gf_tensor *c = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    float alpha = gf_attr_float(ctx->node, "alpha", 1.0f), beta = gf_attr_float(ctx->node, "beta", 1.0f);
    if (beta == 0) c = NULL; /* C does not contribute at all, not even its NaNs */
    int64_t numel = gf_tensor_numel(y);
    if (numel == 0) return GF_OK;
    if (c) {
        int64_t strides[2] = {0, 0};
        gf_broadcast_strides(c, 2, y->dims, strides);
        if ((st = gf_cuda_copy_strided(ctx, cu, y->data, NULL, c->data, strides, sizeof(float), 2, y->dims)))
            return st;
    }
    if (p.shape.k == 0) {
        /* A B is 0: Y = beta C, as the reference computes it (in double), or 0 */
        if (!c) return gf_cuda_zero(ctx, cu, y->data, gf_tensor_nbytes(y));
        scale_kernel<<<gf_cuda_blocks(numel), GF_CUDA_THREADS, 0, cu->stream>>>((float *)y->data, numel, (double)beta);
        return gf_cuda_launched(ctx, "scale_kernel");
    }
    return sgemm(ctx, cu, &p.shape, alpha, (const float *)ctx->inputs[0]->data, 0,
                 (const float *)ctx->inputs[1]->data, 0, c ? beta : 0.0f, (float *)y->data, 0, 1);
}

/* ---- MatMul ---- */

static gf_status matmul_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_gemm_batches p;
    int out_rank;
    int64_t out_dims[GF_MAX_RANK];
    gf_status st = gf_matmul_plan(ctx->inputs[0], ctx->inputs[1], &p, &out_rank, out_dims);
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *y = ctx->outputs[0];
    if (gf_tensor_numel(y) == 0) return GF_OK;
    const gf_gemm_shape *s = &p.shape;
    const float *a = (const float *)ctx->inputs[0]->data, *b = (const float *)ctx->inputs[1]->data;
    float *yd = (float *)y->data;
    if (s->k == 0) return gf_cuda_zero(ctx, cu, y->data, gf_tensor_nbytes(y));
    if (p.count == 1) return sgemm(ctx, cu, s, 1.0f, a, 0, b, 0, 0.0f, yd, 0, 1);
    /* Batch dims merged where both strides let them, size-1 ones dropped. */
    int r = 0;
    int64_t dims[GF_MAX_RANK], as[GF_MAX_RANK], bs[GF_MAX_RANK];
    for (int d = 0; d < p.rank; d++) {
        if (p.dims[d] == 1) continue;
        if (r > 0 && as[r - 1] == p.a_strides[d] * p.dims[d] && bs[r - 1] == p.b_strides[d] * p.dims[d]) {
            dims[r - 1] *= p.dims[d];
            as[r - 1] = p.a_strides[d];
            bs[r - 1] = p.b_strides[d];
        } else {
            dims[r] = p.dims[d];
            as[r] = p.a_strides[d];
            bs[r] = p.b_strides[d];
            r++;
        }
    }
    int64_t inner = dims[r - 1], outer = p.count / inner, mk = s->m * s->k, kn = s->k * s->n, mn = s->m * s->n;
    for (int64_t o = 0; o < outer && !st; o++) {
        int64_t ai = 0, bi = 0, rest = o;
        for (int d = r - 2; d >= 0; d--) {
            int64_t coord = rest % dims[d];
            rest /= dims[d];
            ai += coord * as[d];
            bi += coord * bs[d];
        }
        st = sgemm(ctx, cu, s, 1.0f, a + ai * mk, (long long)(as[r - 1] * mk), b + bi * kn, (long long)(bs[r - 1] * kn),
                   0.0f, yd + o * inner * mn, (long long)mn, inner);
    }
    return st;
}

extern "C" const gf_cuda_op gf_cuda_ops_gemm[] = {
    {"", "Gemm", 6, 0, gemm_cuda, gf_cuda_check_all_float, 0},
    {"", "MatMul", 1, 0, matmul_cuda, gf_cuda_check_all_float, 0},
    {0},
};
