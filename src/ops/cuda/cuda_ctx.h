/* What a CUDA kernel sees beside its gf_op_ctx, and the registry entry that finds it.
 *
 * A CUDA kernel has the signature of a CPU one plus the session's device context:
 *     gf_status kernel(gf_op_ctx *ctx, gf_cuda_ctx *cu)
 * ctx is the node and its tensors exactly as the CPU kernel gets them, shaped by the
 * op's CPU `infer` (which the session runs at plan time, on both devices), except
 * that every tensor's data is a device pointer, but for the inputs the entry lists
 * in `host_inputs`: those hold small values that `infer` or the kernel reads on the
 * host (shapes, axes, pads, scales, a step count, a learning rate), and the session
 * gives them in host memory. A kernel queues its work on cu->stream and returns; it
 * never synchronizes, but where the CPU kernel's result decides whether the run may go
 * on (CheckFinite).
 *
 * Each kernel computes what its CPU twin (src/ops/<family>.c) computes, with the same
 * attributes, defaults and edge cases, in float32 (sums in double where the twin's
 * are). Where a library serves (cuDNN for convolutions, pooling and inference batch
 * norm, cuBLAS for Gemm and MatMul) results agree to rounding; graft's own kernels
 * compile without FMA contraction (-fmad=false) and use fmaf exactly where the twin
 * does, so element-wise results are the twin's bits.
 *
 * Errors name the node: "node 'Conv_3' (Conv) on CUDA: cudnnConvolutionForward failed:
 * CUDNN_STATUS_BAD_PARAM". Bad data found on the device (an index out of range, a
 * label that is no class) goes to an error record that gf_cuda_sync reports. */
#ifndef GF_CUDA_CTX_H
#define GF_CUDA_CTX_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../op.h"
#include "../../runtime/device.h"

/* ---- the error record ---- */

typedef enum gf_cuda_error_code {
    GF_CUDA_ERR_NONE = 0,
    GF_CUDA_ERR_INDEX,      /* Gather: a = the index, b = the axis size */
    GF_CUDA_ERR_LABEL,      /* class losses: a = the label; the site holds C, ignore_index, the target shape */
} gf_cuda_error_code;

/* In device memory. Kernels keep the error of the earliest site (run order) and, within
 * it, of the lowest position, so that the message does not depend on thread timing. */
typedef struct gf_cuda_error {
    int lock;
    int code;
    int site;               /* index into gf_cuda_ctx.sites */
    int unused;
    long long pos, a, b;
} gf_cuda_error;

/* A kernel launch that may record an error: its node, and what its message needs. */
typedef struct gf_cuda_site {
    const gf_node *node;
    int rank;               /* the shape positions are reported in (the target's) */
    int64_t dims[GF_MAX_RANK];
    int64_t info[2];
} gf_cuda_site;

#define GF_CUDA_ALGO_KEY 32

/* A cuDNN convolution algorithm chosen for one geometry. */
typedef struct gf_cuda_algo {
    int64_t key[GF_CUDA_ALGO_KEY];
    int algo;
    int math;               /* cudnnMathType_t to set on the descriptor */
    size_t workspace;
} gf_cuda_algo;

struct gf_cuda_ctx {
    gf_cuda_options opt;
    int device;
    cudaStream_t stream;        /* every kernel, in order */
    cudaStream_t copy_stream;   /* prefetches */
    cudaEvent_t queued;         /* a point of `stream` the copy stream waits for */
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    void *workspace;            /* cuDNN's, grown on demand, ordered on `stream` */
    size_t workspace_bytes;
    gf_cuda_error *d_err;       /* the record, in device memory */
    gf_cuda_error *h_err;       /* pinned, to read it back */
    void *h_small;              /* pinned, GF_CUDA_SMALL bytes, for small reads */
    gf_cuda_site *sites;
    int n_sites, cap_sites;
    gf_cuda_algo *algos;
    int n_algos, cap_algos;
    struct ncclComm *nccl_comm; /* ncclComm_t of opt.parallel's group; NULL until the first all-reduce */
};

#define GF_CUDA_SMALL 4096

/* The cuBLAS functions graft calls. libgraft does not link cuBLAS: it is loaded (dlopen)
 * when the first CUDA context starts, because loading it costs a few hundred
 * milliseconds and some 200 MB, which every CPU-only run of a CUDA build would pay. */
typedef struct gf_cublas_api {
    cublasStatus_t (*create)(cublasHandle_t *handle);
    cublasStatus_t (*destroy)(cublasHandle_t handle);
    cublasStatus_t (*set_stream)(cublasHandle_t handle, cudaStream_t stream);
    cublasStatus_t (*set_math_mode)(cublasHandle_t handle, cublasMath_t mode);
    cublasStatus_t (*sgemm)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const float *alpha, const float *a, int lda, const float *b, int ldb,
                            const float *beta, float *c, int ldc);
    cublasStatus_t (*sgemm_strided_batched)(cublasHandle_t handle, cublasOperation_t transa,
                                            cublasOperation_t transb, int m, int n, int k, const float *alpha,
                                            const float *a, int lda, long long stride_a, const float *b, int ldb,
                                            long long stride_b, const float *beta, float *c, int ldc,
                                            long long stride_c, int batch);
    const char *(*status_string)(cublasStatus_t status);
    const char *(*status_name)(cublasStatus_t status);
} gf_cublas_api;

/* NULL until the first context has loaded cuBLAS; set for good after. */
extern const gf_cublas_api *gf_cublas;

/* ---- the registry ---- */

typedef gf_status (*gf_cuda_fn)(gf_op_ctx *ctx, gf_cuda_ctx *cu);

typedef struct gf_cuda_op {
    const char *domain;         /* "" for the default ONNX domain */
    const char *op_type;
    int since_version;          /* the opset range, as the CPU entry's */
    int until_version;
    gf_cuda_fn run;
    /* At plan time, with shapes and dtypes known: GF_OK when this node runs on the GPU,
     * GF_ERR_UNSUPPORTED saying why not (float16, a mode graft's GPU kernels lack).
     * NULL: whatever the CPU infer accepts. */
    gf_op_fn check;
    uint64_t host_inputs;       /* bit i: input i is given in host memory */
} gf_cuda_op;

#define GF_CUDA_HOST(i) ((uint64_t)1 << (i))
/* Input i and every later one (bit 63 stands for all inputs past 62 too). */
#define GF_CUDA_HOST_FROM(i) (~(uint64_t)0 << (i))

static inline int gf_cuda_input_on_host(const gf_cuda_op *op, int i)
{
    return (int)((op->host_inputs >> (i < 63 ? i : 63)) & 1);
}

/* The CUDA kernel of (domain, op type, opset), matched as gf_op_find matches the CPU
 * ones; NULL when the GPU has none. */
const gf_cuda_op *gf_cuda_op_find(const char *domain, const char *op_type, int opset);
/* Whether any opset of (domain, op_type) has a CUDA kernel. */
int gf_cuda_op_known(const char *domain, const char *op_type);

/* ---- status checks for kernels: GF_OK, or a message naming the node and the call ---- */

gf_status gf_cuda_rt_status(const gf_op_ctx *ctx, const char *call, cudaError_t e);
gf_status gf_cuda_blas_status(const gf_op_ctx *ctx, const char *call, cublasStatus_t e);
gf_status gf_cuda_dnn_status(const gf_op_ctx *ctx, const char *call, cudnnStatus_t e);
#define GF_CU(ctx, call) gf_cuda_rt_status((ctx), #call, (call))
#define GF_CUBLAS(ctx, call) gf_cuda_blas_status((ctx), #call, (call))
#define GF_CUDNN(ctx, call) gf_cuda_dnn_status((ctx), #call, (call))
/* After a launch: a bad launch configuration, naming the kernel. */
gf_status gf_cuda_launched(const gf_op_ctx *ctx, const char *kernel);
/* A failure of the kernel's own checks, naming the node. */
gf_status gf_cuda_node_fail(const gf_op_ctx *ctx, gf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts the node in front of the current message (a CPU helper's, such as gf_window_read's). */
gf_status gf_cuda_node_context(const gf_op_ctx *ctx, gf_status st);

/* What the session calls after each CUDA kernel: with sync_each, waits and reports
 * any error, naming the node. */
gf_status gf_cuda_after_kernel(gf_cuda_ctx *cu, const gf_op_ctx *ctx);

/* Registers a launch that may record a data error; its index goes to the kernel.
 * shape (may be NULL) is the tensor positions are reported in. -1 when out of memory. */
int gf_cuda_error_site(gf_cuda_ctx *cu, const gf_op_ctx *ctx, const gf_tensor *shape, int64_t info0, int64_t info1);

/* ---- scratch memory and copies (common.cu), ordered on cu->stream ---- */

gf_status gf_cuda_scratch(const gf_op_ctx *ctx, gf_cuda_ctx *cu, size_t bytes, void **out);
void gf_cuda_scratch_free(gf_cuda_ctx *cu, void *p);   /* NULL is fine */
/* Scratch holding a copy of host memory (any: it may be reused on return). */
gf_status gf_cuda_upload(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const void *src, size_t bytes, void **out);
/* cuDNN's workspace, at least `bytes`; valid until the next call. */
gf_status gf_cuda_workspace(const gf_op_ctx *ctx, gf_cuda_ctx *cu, size_t bytes, void **out);
/* Reads `bytes` (at most GF_CUDA_SMALL) of device memory into dst, waiting for the stream. */
gf_status gf_cuda_read_small(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, const void *src, size_t bytes);

gf_status gf_cuda_copy_bytes(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, const void *src, size_t bytes);
gf_status gf_cuda_zero(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, size_t bytes);
/* n elements of esize (1, 2, 4 or 8) bytes set to *value. */
gf_status gf_cuda_fill(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, int64_t n, const void *value, size_t esize);
/* For every row-major coordinate c of dims: dst[Σ c·dst_strides] = src[Σ c·src_strides]
 * (strides in elements; NULL: dense row-major; src strides may be 0 or negative).
 * Any element size. */
gf_status gf_cuda_copy_strided(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, const int64_t *dst_strides,
                               const void *src, const int64_t *src_strides, size_t esize, int rank,
                               const int64_t *dims);
/* Float planes [planes, dst spatial] from [planes, src spatial] shifted by `shift` per
 * spatial dim: dst[p, o] = src[p, o + shift] where that lies inside src, else 0. nsp 1-3. */
gf_status gf_cuda_shift_copy(const gf_op_ctx *ctx, gf_cuda_ctx *cu, float *dst, const int64_t *dst_sp,
                             const float *src, const int64_t *src_sp, const int64_t *shift, int64_t planes, int nsp);
/* y = the sum (mean: divided by the count) of float x over the axes marked reduced,
 * accumulated in double; y holds the kept axes in order. */
gf_status gf_cuda_reduce_sum(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const float *x, int rank, const int64_t *dims,
                             const unsigned char *reduced, int mean, float *y);
/* Per-channel sums over X viewed as [n, c, inner], in double, in an order fixed by the
 * shape: with d = x - shift[c] (shift NULL: 0), first[c] = sum of w and second[c] = sum of
 * w * d, where w = dy (when given, of X's shape) or d. shift, first, second: device, c each. */
gf_status gf_cuda_channel_sums(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const float *x, const float *dy,
                               const double *shift, int64_t n, int64_t c, int64_t inner, double *first,
                               double *second);
/* y[n, m, s] += b[m] for y [n, m, inner]. */
gf_status gf_cuda_add_channel_bias(const gf_op_ctx *ctx, gf_cuda_ctx *cu, float *y, const float *b, int64_t n,
                                   int64_t m, int64_t inner);

/* ---- NCCL (runtime/device_nccl.c) ---- */

/* dst[i] = the mean over cu->opt.parallel's processes of their src[i] (counts[i] floats
 * each; dst may be src), queued on cu->stream. The first call joins the group. */
gf_status gf_cuda_all_reduce_mean(const gf_op_ctx *ctx, gf_cuda_ctx *cu, int n, const float *const *src,
                                  float *const *dst, const int64_t *counts);
void gf_cuda_nccl_free(gf_cuda_ctx *cu);

/* ---- helpers the families share ---- */

/* Dense row-major strides of dims as cuDNN takes them (int, computed in int64 first);
 * fails (GF_ERR_UNSUPPORTED) when one passes int range. */
gf_status gf_cuda_int_strides(const gf_op_ctx *ctx, int rank, const int *dims, int *strides);
/* Fails unless every present input in [from, to) is float32 (GF_ERR_UNSUPPORTED, naming it). */
gf_status gf_cuda_check_float(const gf_op_ctx *ctx, int from, int to);
/* The check of ops whose every non-host tensor is float32. */
gf_status gf_cuda_check_all_float(gf_op_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
