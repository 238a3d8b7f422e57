/* NCCL for data parallel training: the library, loaded when first needed (as cuBLAS
 * is, so that no single-GPU or CPU run pays for loading its ~200 MB), each context's
 * communicator, made at its first all-reduce, and the all-reduce itself. */
#include "device.h"

#include "../ops/cuda/cuda_ctx.h"
#include "error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if __has_include(<nccl.h>)
#include <nccl.h>

_Static_assert(sizeof(ncclUniqueId) == GF_NCCL_ID_BYTES, "GF_NCCL_ID_BYTES is not NCCL's id size");

typedef struct nccl_api {
    ncclResult_t (*get_unique_id)(ncclUniqueId *id);
    ncclResult_t (*comm_init_rank)(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
    ncclResult_t (*comm_destroy)(ncclComm_t comm);
    ncclResult_t (*all_reduce)(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream);
    ncclResult_t (*group_start)(void);
    ncclResult_t (*group_end)(void);
    const char *(*error_string)(ncclResult_t result);
} nccl_api;

static nccl_api nccl;
static int nccl_loaded;
static pthread_once_t nccl_once = PTHREAD_ONCE_INIT;
static char nccl_error[512];

static void load_nccl(void)
{
    void *lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(nccl_error, sizeof nccl_error, "cannot load libnccl.so.2: %s", dlerror());
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"ncclGetUniqueId", (void **)&nccl.get_unique_id},   {"ncclCommInitRank", (void **)&nccl.comm_init_rank},
        {"ncclCommDestroy", (void **)&nccl.comm_destroy},    {"ncclAllReduce", (void **)&nccl.all_reduce},
        {"ncclGroupStart", (void **)&nccl.group_start},      {"ncclGroupEnd", (void **)&nccl.group_end},
        {"ncclGetErrorString", (void **)&nccl.error_string},
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++)
        if (!(*syms[i].slot = dlsym(lib, syms[i].name))) {
            snprintf(nccl_error, sizeof nccl_error, "libnccl.so.2 has no %s", syms[i].name);
            return;
        }
    nccl_loaded = 1;
}

static gf_status nccl_ready(void)
{
    pthread_once(&nccl_once, load_nccl);
    if (nccl_loaded) return GF_OK;
    return gf_fail(GF_ERR_UNSUPPORTED, "data parallel training needs NCCL: %s", nccl_error);
}

static gf_status nccl_status(const gf_op_ctx *ctx, const char *call, ncclResult_t r)
{
    if (r == ncclSuccess) return GF_OK;
    if (ctx) return gf_cuda_node_fail(ctx, GF_ERR_RUNTIME, "%s failed: %s", call, nccl.error_string(r));
    return gf_fail(GF_ERR_RUNTIME, "NCCL: %s failed: %s", call, nccl.error_string(r));
}

gf_status gf_cuda_nccl_unique_id(unsigned char *id)
{
    gf_status st = nccl_ready();
    if (st) return st;
    ncclUniqueId u;
    if ((st = nccl_status(NULL, "ncclGetUniqueId", nccl.get_unique_id(&u)))) return st;
    memcpy(id, u.internal, GF_NCCL_ID_BYTES);
    return GF_OK;
}

/* The communicator: every rank's first all-reduce makes it (ncclCommInitRank waits
 * for all of them). */
static gf_status communicator(const gf_op_ctx *ctx, gf_cuda_ctx *cu, ncclComm_t *out)
{
    if (!cu->nccl_comm) {
        const gf_data_parallel *p = &cu->opt.parallel;
        gf_status st = nccl_ready();
        if (st) return gf_cuda_node_context(ctx, st);
        ncclUniqueId id;
        memcpy(id.internal, p->nccl_id, GF_NCCL_ID_BYTES);
        ncclComm_t comm = NULL;
        if ((st = GF_CU(ctx, cudaSetDevice(cu->device)))) return st;
        if ((st = nccl_status(ctx, "ncclCommInitRank", nccl.comm_init_rank(&comm, p->world_size, id, p->rank))))
            return gf_fail_context(st, "rank %d of %d on cuda:%d", p->rank, p->world_size, cu->device);
        cu->nccl_comm = comm;
    }
    *out = cu->nccl_comm;
    return GF_OK;
}

gf_status gf_cuda_all_reduce_mean(const gf_op_ctx *ctx, gf_cuda_ctx *cu, int n, const float *const *src,
                                  float *const *dst, const int64_t *counts)
{
    ncclComm_t comm = NULL;
    gf_status st = communicator(ctx, cu, &comm);
    if (st) return st;
    /* One group: NCCL fuses the many small gradients into few transfers. */
    if ((st = nccl_status(ctx, "ncclGroupStart", nccl.group_start()))) return st;
    for (int i = 0; i < n && !st; i++)
        st = nccl_status(ctx, "ncclAllReduce",
                         nccl.all_reduce(src[i], dst[i], (size_t)counts[i], ncclFloat32, ncclAvg, comm, cu->stream));
    gf_status end = nccl_status(ctx, "ncclGroupEnd", nccl.group_end());
    return st ? st : end;
}

void gf_cuda_nccl_free(gf_cuda_ctx *cu)
{
    if (cu->nccl_comm) nccl.comm_destroy(cu->nccl_comm);
    cu->nccl_comm = NULL;
}

#else /* a CUDA toolkit without NCCL's header */

static gf_status no_nccl(void)
{
    return gf_fail(GF_ERR_UNSUPPORTED, "data parallel training needs NCCL, and this build of graft was made without "
                                       "nccl.h");
}

gf_status gf_cuda_nccl_unique_id(unsigned char *id)
{
    (void)id;
    return no_nccl();
}

gf_status gf_cuda_all_reduce_mean(const gf_op_ctx *ctx, gf_cuda_ctx *cu, int n, const float *const *src,
                                  float *const *dst, const int64_t *counts)
{
    (void)cu, (void)n, (void)src, (void)dst, (void)counts;
    return gf_cuda_node_context(ctx, no_nccl());
}

void gf_cuda_nccl_free(gf_cuda_ctx *cu) { (void)cu; }

#endif
