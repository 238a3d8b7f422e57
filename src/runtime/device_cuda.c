/* The CUDA device layer (device.h): devices, contexts, memory, copies, and the error
 * reports of CUDA kernels. Built only with the CUDA backend. */
#include "device.h"

#include "../ops/cuda/cuda_ctx.h"
#include "error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ---- */

/* "cudnnConvolutionForward(cu->cudnn, ...)" -> "cudnnConvolutionForward" */
static void call_name(const char *call, char *buf, size_t len)
{
    size_t n = strcspn(call, "(");
    if (n >= len) n = len - 1;
    memcpy(buf, call, n);
    buf[n] = '\0';
}

static const char *node_name(const gf_op_ctx *ctx) { return ctx && ctx->node ? ctx->node->name : NULL; }

static gf_status fail_at(const gf_op_ctx *ctx, gf_status st, const char *msg)
{
    if (node_name(ctx)) return gf_fail(st, "node '%s' (%s) on CUDA: %s", ctx->node->name, ctx->node->op_type, msg);
    return gf_fail(st, "CUDA: %s", msg);
}

gf_status gf_cuda_rt_status(const gf_op_ctx *ctx, const char *call, cudaError_t e)
{
    if (e == cudaSuccess) return GF_OK;
    char name[96], msg[512];
    call_name(call, name, sizeof name);
    snprintf(msg, sizeof msg, "%s failed: %s (%s)", name, cudaGetErrorString(e), cudaGetErrorName(e));
    return fail_at(ctx, e == cudaErrorMemoryAllocation ? GF_ERR_NOMEM : GF_ERR_RUNTIME, msg);
}

/* ---- cuBLAS, loaded on first use ---- */

const gf_cublas_api *gf_cublas;
static gf_cublas_api cublas_table;
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;
static char cublas_error[512];

static void load_cublas(void)
{
    char soname[64];
    snprintf(soname, sizeof soname, "libcublas.so.%d", CUBLAS_VER_MAJOR);
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(cublas_error, sizeof cublas_error, "cannot load %s: %s", soname, dlerror());
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"cublasCreate_v2", (void **)&cublas_table.create},
        {"cublasDestroy_v2", (void **)&cublas_table.destroy},
        {"cublasSetStream_v2", (void **)&cublas_table.set_stream},
        {"cublasSetMathMode", (void **)&cublas_table.set_math_mode},
        {"cublasSgemm_v2", (void **)&cublas_table.sgemm},
        {"cublasSgemmStridedBatched", (void **)&cublas_table.sgemm_strided_batched},
        {"cublasGetStatusString", (void **)&cublas_table.status_string},
        {"cublasGetStatusName", (void **)&cublas_table.status_name},
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++)
        if (!(*syms[i].slot = dlsym(lib, syms[i].name))) {
            snprintf(cublas_error, sizeof cublas_error, "%s has no %s", soname, syms[i].name);
            return; /* the library stays loaded; nothing uses it */
        }
    gf_cublas = &cublas_table;
}

static const char *blas_string(cublasStatus_t e) { return gf_cublas ? gf_cublas->status_string(e) : "(cuBLAS not loaded)"; }
static const char *blas_name(cublasStatus_t e) { return gf_cublas ? gf_cublas->status_name(e) : "?"; }

gf_status gf_cuda_blas_status(const gf_op_ctx *ctx, const char *call, cublasStatus_t e)
{
    if (e == CUBLAS_STATUS_SUCCESS) return GF_OK;
    char name[96], msg[512];
    call_name(call, name, sizeof name);
    snprintf(msg, sizeof msg, "%s failed: %s (%s, status %d)", name, blas_string(e), blas_name(e), (int)e);
    return fail_at(ctx, e == CUBLAS_STATUS_ALLOC_FAILED ? GF_ERR_NOMEM : GF_ERR_RUNTIME, msg);
}

gf_status gf_cuda_dnn_status(const gf_op_ctx *ctx, const char *call, cudnnStatus_t e)
{
    if (e == CUDNN_STATUS_SUCCESS) return GF_OK;
    char name[96], msg[512];
    call_name(call, name, sizeof name);
    snprintf(msg, sizeof msg, "%s failed: %s", name, cudnnGetErrorString(e));
    gf_status st = e == CUDNN_STATUS_ALLOC_FAILED ? GF_ERR_NOMEM
                   : e == CUDNN_STATUS_NOT_SUPPORTED ? GF_ERR_UNSUPPORTED
                                                      : GF_ERR_RUNTIME;
    return fail_at(ctx, st, msg);
}

gf_status gf_cuda_launched(const gf_op_ctx *ctx, const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return GF_OK;
    char msg[512];
    snprintf(msg, sizeof msg, "launching %s failed: %s (%s)", kernel, cudaGetErrorString(e), cudaGetErrorName(e));
    return fail_at(ctx, GF_ERR_RUNTIME, msg);
}

gf_status gf_cuda_node_fail(const gf_op_ctx *ctx, gf_status st, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail_at(ctx, st, msg);
}

gf_status gf_cuda_node_context(const gf_op_ctx *ctx, gf_status st)
{
    if (!node_name(ctx)) return gf_fail_context(st, "CUDA");
    return gf_fail_context(st, "node '%s' (%s) on CUDA", ctx->node->name, ctx->node->op_type);
}

/* ---- options and devices ---- */

static int env_flag(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    return strcmp(v, "0") != 0;
}

void gf_cuda_options_default(gf_cuda_options *o)
{
    memset(o, 0, sizeof *o);
    o->allow_tf32 = env_flag("GRAFT_CUDA_TF32", 0);
    o->deterministic = env_flag("GRAFT_CUDA_DETERMINISTIC", 1);
    o->find_algorithms = env_flag("GRAFT_CUDNN_FIND", 0);
    o->sync_each = env_flag("GRAFT_CUDA_SYNC", 0);
}

gf_status gf_cuda_devices(int *count)
{
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(count);
    if (e != cudaSuccess) {
        *count = 0;
        cudaGetLastError(); /* not sticky: clear it */
        return gf_fail(GF_ERR_UNSUPPORTED, "no CUDA device: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (*count == 0) return gf_fail(GF_ERR_UNSUPPORTED, "no CUDA device: the driver reports none");
    return GF_OK;
}

int gf_cuda_device_count(void)
{
    int n;
    return gf_cuda_devices(&n) ? 0 : n;
}

/* ---- contexts ---- */

static gf_status dev_fail(int device, const char *call, cudaError_t e)
{
    char name[96];
    call_name(call, name, sizeof name);
    return gf_fail(e == cudaErrorMemoryAllocation ? GF_ERR_NOMEM : GF_ERR_RUNTIME, "cuda:%d: %s failed: %s (%s)", device,
                   name, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define DEV_TRY(call)                                      \
    do {                                                   \
        cudaError_t e_ = (call);                           \
        if (e_ != cudaSuccess) {                           \
            st = dev_fail(c->device, #call, e_);           \
            goto fail;                                     \
        }                                                  \
    } while (0)

gf_status gf_cuda_ctx_new(const gf_cuda_options *o, gf_cuda_ctx **out)
{
    *out = NULL;
    gf_cuda_options opt;
    if (o) opt = *o;
    else gf_cuda_options_default(&opt);
    int count;
    gf_status st = gf_cuda_devices(&count);
    if (st) return st;
    if (opt.device < 0 || opt.device >= count)
        return gf_fail(GF_ERR_INVALID, "cuda:%d does not exist: the driver reports %d CUDA device%s", opt.device, count,
                       count == 1 ? "" : "s");
    gf_cuda_ctx *c = calloc(1, sizeof *c);
    if (!c) return gf_fail(GF_ERR_NOMEM, "out of memory");
    c->opt = opt;
    c->device = opt.device;
    DEV_TRY(cudaSetDevice(c->device));
    int pools = 0;
    DEV_TRY(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, c->device));
    if (!pools) {
        st = gf_fail(GF_ERR_UNSUPPORTED, "cuda:%d has no stream-ordered memory pools (CUDA 11.2 drivers and later have)",
                     c->device);
        goto fail;
    }
    /* The default pool keeps what is freed, so that allocation on the stream is cheap. */
    cudaMemPool_t pool;
    uint64_t keep = UINT64_MAX;
    DEV_TRY(cudaDeviceGetDefaultMemPool(&pool, c->device));
    DEV_TRY(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    DEV_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    DEV_TRY(cudaStreamCreateWithFlags(&c->copy_stream, cudaStreamNonBlocking));
    DEV_TRY(cudaEventCreateWithFlags(&c->queued, cudaEventDisableTiming));
    DEV_TRY(cudaMalloc((void **)&c->d_err, sizeof *c->d_err));
    DEV_TRY(cudaMemsetAsync(c->d_err, 0, sizeof *c->d_err, c->stream)); /* ordered before every kernel */
    DEV_TRY(cudaHostAlloc((void **)&c->h_err, sizeof *c->h_err, cudaHostAllocPortable));
    DEV_TRY(cudaHostAlloc(&c->h_small, GF_CUDA_SMALL, cudaHostAllocPortable));
    if (!c->opt.workspace_limit) {
        size_t free_bytes = 0, total = 0;
        DEV_TRY(cudaMemGetInfo(&free_bytes, &total));
        c->opt.workspace_limit = total / 4;
    }
    pthread_once(&cublas_once, load_cublas);
    if (!gf_cublas) {
        st = gf_fail(GF_ERR_UNSUPPORTED, "cuda:%d: cuBLAS is not usable: %s", c->device, cublas_error);
        goto fail;
    }
    cublasStatus_t bs = gf_cublas->create(&c->cublas);
    if (bs != CUBLAS_STATUS_SUCCESS) c->cublas = NULL;
    if (bs == CUBLAS_STATUS_SUCCESS) bs = gf_cublas->set_stream(c->cublas, c->stream);
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = gf_cublas->set_math_mode(c->cublas, c->opt.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        st = gf_fail(bs == CUBLAS_STATUS_ALLOC_FAILED ? GF_ERR_NOMEM : GF_ERR_RUNTIME, "cuda:%d: starting cuBLAS failed: %s",
                     c->device, blas_string(bs));
        goto fail;
    }
    cudnnStatus_t ds = cudnnCreate(&c->cudnn);
    if (ds == CUDNN_STATUS_SUCCESS) ds = cudnnSetStream(c->cudnn, c->stream);
    if (ds != CUDNN_STATUS_SUCCESS) {
        st = gf_fail(GF_ERR_RUNTIME, "cuda:%d: starting cuDNN failed: %s", c->device, cudnnGetErrorString(ds));
        goto fail;
    }
    *out = c;
    return GF_OK;
fail:
    gf_cuda_ctx_free(c);
    return st;
}

void gf_cuda_ctx_free(gf_cuda_ctx *c)
{
    if (!c) return;
    cudaSetDevice(c->device);
    if (c->stream) {
        if (c->workspace) cudaFreeAsync(c->workspace, c->stream);
        cudaStreamSynchronize(c->stream);
    }
    if (c->copy_stream) cudaStreamSynchronize(c->copy_stream);
    gf_cuda_nccl_free(c);
    if (c->cudnn) cudnnDestroy(c->cudnn);
    if (c->cublas) gf_cublas->destroy(c->cublas);
    if (c->queued) cudaEventDestroy(c->queued);
    if (c->copy_stream) cudaStreamDestroy(c->copy_stream);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->d_err) cudaFree(c->d_err);
    if (c->h_err) cudaFreeHost(c->h_err);
    if (c->h_small) cudaFreeHost(c->h_small);
    cudaGetLastError();
    free(c->sites);
    free(c->algos);
    free(c);
}

const gf_cuda_options *gf_cuda_ctx_options(const gf_cuda_ctx *c) { return &c->opt; }

void gf_cuda_ctx_set_options(gf_cuda_ctx *c, const gf_cuda_options *o)
{
    int device = c->device, tf32 = c->opt.allow_tf32;
    size_t limit = c->opt.workspace_limit;
    c->opt = *o;
    c->opt.device = device;
    if (!c->opt.workspace_limit) c->opt.workspace_limit = limit;
    if (c->opt.allow_tf32 != tf32) {
        gf_cublas->set_math_mode(c->cublas, c->opt.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
        c->n_algos = 0; /* chosen for the other math */
    }
}

/* ---- memory ---- */

gf_status gf_cuda_alloc(gf_cuda_ctx *c, size_t bytes, void **out)
{
    *out = NULL;
    cudaSetDevice(c->device);
    cudaError_t e = cudaMallocAsync(out, bytes ? bytes : 1, c->stream);
    if (e == cudaSuccess) return GF_OK;
    *out = NULL;
    cudaGetLastError();
    return gf_fail(e == cudaErrorMemoryAllocation ? GF_ERR_NOMEM : GF_ERR_RUNTIME,
                   "cuda:%d: allocating %zu bytes of device memory failed: %s", c->device, bytes, cudaGetErrorString(e));
}

void gf_cuda_free(gf_cuda_ctx *c, void *p)
{
    if (!p) return;
    cudaSetDevice(c->device);
    cudaFreeAsync(p, c->stream);
}

gf_status gf_cuda_host_alloc(size_t bytes, void **out)
{
    cudaError_t e = cudaHostAlloc(out, bytes ? bytes : 1, cudaHostAllocPortable);
    if (e == cudaSuccess) return GF_OK;
    *out = NULL;
    cudaGetLastError();
    return gf_fail(GF_ERR_NOMEM, "allocating %zu bytes of pinned host memory failed: %s", bytes, cudaGetErrorString(e));
}

void gf_cuda_host_free(void *p)
{
    if (p) cudaFreeHost(p);
}

/* ---- copies ---- */

#define CTX_TRY(call)                                              \
    do {                                                           \
        cudaError_t e_ = (call);                                   \
        if (e_ != cudaSuccess) return dev_fail(c->device, #call, e_); \
    } while (0)

gf_status gf_cuda_to_device(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    if (!bytes) return GF_OK;
    CTX_TRY(cudaSetDevice(c->device));
    CTX_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    return GF_OK;
}

gf_status gf_cuda_to_host(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    if (!bytes) return GF_OK;
    CTX_TRY(cudaSetDevice(c->device));
    CTX_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CTX_TRY(cudaStreamSynchronize(c->stream));
    return GF_OK;
}

gf_status gf_cuda_copy(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes)
{
    if (!bytes || dst == src) return GF_OK;
    CTX_TRY(cudaSetDevice(c->device));
    CTX_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
    return GF_OK;
}

gf_status gf_cuda_prefetch(gf_cuda_ctx *c, void *dst, const void *src, size_t bytes, gf_cuda_event **done)
{
    CTX_TRY(cudaSetDevice(c->device));
    if (!*done) CTX_TRY(cudaEventCreateWithFlags((cudaEvent_t *)done, cudaEventDisableTiming));
    CTX_TRY(cudaEventRecord(c->queued, c->stream));
    CTX_TRY(cudaStreamWaitEvent(c->copy_stream, c->queued, 0));
    if (bytes) CTX_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->copy_stream));
    CTX_TRY(cudaEventRecord((cudaEvent_t)*done, c->copy_stream));
    return GF_OK;
}

gf_status gf_cuda_wait_prefetch(gf_cuda_ctx *c, gf_cuda_event *done)
{
    CTX_TRY(cudaSetDevice(c->device));
    CTX_TRY(cudaStreamWaitEvent(c->stream, (cudaEvent_t)done, 0));
    return GF_OK;
}

void gf_cuda_event_free(gf_cuda_event *e)
{
    if (e) cudaEventDestroy((cudaEvent_t)e);
}

gf_status gf_cuda_memset(gf_cuda_ctx *c, void *dst, int value, size_t bytes)
{
    if (!bytes) return GF_OK;
    CTX_TRY(cudaSetDevice(c->device));
    CTX_TRY(cudaMemsetAsync(dst, value, bytes, c->stream));
    return GF_OK;
}

/* ---- the error record ---- */

int gf_cuda_error_site(gf_cuda_ctx *cu, const gf_op_ctx *ctx, const gf_tensor *shape, int64_t info0, int64_t info1)
{
    if (cu->n_sites == cu->cap_sites) {
        int cap = cu->cap_sites ? 2 * cu->cap_sites : 64;
        gf_cuda_site *s = realloc(cu->sites, (size_t)cap * sizeof *s);
        if (!s) {
            gf_fail(GF_ERR_NOMEM, "out of memory");
            return -1;
        }
        cu->sites = s;
        cu->cap_sites = cap;
    }
    gf_cuda_site *s = &cu->sites[cu->n_sites];
    memset(s, 0, sizeof *s);
    s->node = ctx ? ctx->node : NULL;
    if (shape) {
        s->rank = shape->rank;
        memcpy(s->dims, shape->dims, sizeof s->dims);
    }
    s->info[0] = info0;
    s->info[1] = info1;
    return cu->n_sites++;
}

/* "3" for a 1-D shape, "(0, 2, 5)" otherwise, as loss_train.c writes positions. */
static void format_position(const gf_cuda_site *s, long long pos, char *buf, size_t len)
{
    if (s->rank <= 1) {
        snprintf(buf, len, "%lld", pos);
        return;
    }
    int64_t coord[GF_MAX_RANK];
    for (int a = s->rank - 1; a >= 0; a--) {
        coord[a] = s->dims[a] ? pos % s->dims[a] : 0;
        pos = s->dims[a] ? pos / s->dims[a] : 0;
    }
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int a = 0; a < s->rank && used < len; a++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", a ? ", " : "", (long long)coord[a]);
    if (used < len) snprintf(buf + used, len - used, ")");
}

static gf_status report_record(const gf_cuda_ctx *c, const gf_cuda_error *e)
{
    const gf_cuda_site *s = e->site >= 0 && e->site < c->n_sites ? &c->sites[e->site] : NULL;
    gf_op_ctx where = {0};
    where.node = s ? s->node : NULL;
    char msg[640], pos[200];
    switch (e->code) {
    case GF_CUDA_ERR_INDEX:
        snprintf(msg, sizeof msg, "index %lld is out of range for an axis of size %lld", e->a, e->b);
        break;
    case GF_CUDA_ERR_LABEL:
        if (s) format_position(s, e->pos, pos, sizeof pos);
        else snprintf(pos, sizeof pos, "%lld", e->pos);
        snprintf(msg, sizeof msg, "label %lld at target position %s is outside [0, %lld) and is not ignore_index %lld",
                 e->a, pos, s ? (long long)s->info[0] : 0LL, s ? (long long)s->info[1] : 0LL);
        break;
    default: snprintf(msg, sizeof msg, "a kernel recorded error code %d", e->code); break;
    }
    return fail_at(&where, GF_ERR_INVALID, msg);
}

gf_status gf_cuda_sync(gf_cuda_ctx *c)
{
    CTX_TRY(cudaSetDevice(c->device));
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        c->n_sites = 0;
        return gf_fail(GF_ERR_RUNTIME, "CUDA: a kernel on cuda:%d failed: %s (%s)", c->device, cudaGetErrorString(e),
                       cudaGetErrorName(e));
    }
    CTX_TRY(cudaMemcpy(c->h_err, c->d_err, sizeof *c->h_err, cudaMemcpyDeviceToHost));
    gf_status st = GF_OK;
    if (c->h_err->code) {
        st = report_record(c, c->h_err);
        cudaError_t z = cudaMemsetAsync(c->d_err, 0, sizeof *c->d_err, c->stream);
        if (z != cudaSuccess) st = dev_fail(c->device, "cudaMemsetAsync", z);
    }
    c->n_sites = 0;
    return st;
}

gf_status gf_cuda_after_kernel(gf_cuda_ctx *cu, const gf_op_ctx *ctx)
{
    gf_status st = gf_cuda_launched(ctx, "a kernel");
    if (st || !cu->opt.sync_each) return st;
    cudaError_t e = cudaStreamSynchronize(cu->stream);
    if (e != cudaSuccess) return gf_cuda_rt_status(ctx, "the kernel", e);
    return gf_cuda_sync(cu);
}
