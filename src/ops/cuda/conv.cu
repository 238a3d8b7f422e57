/* Conv and ConvTranspose on the GPU (twin: ops/conv.c), over 1 to 3 spatial dims,
 * float32, through cuDNN.
 *
 * cuDNN pads symmetrically; ONNX pads need not be. A Conv whose pads differ at the
 * two ends runs on a copy of X padded explicitly by the difference, with the smaller
 * pad left to cuDNN. A ConvTranspose is cuDNN's backward-data convolution: directly
 * when its pads are symmetric and output_padding is below the stride (then cuDNN's
 * output size is the op's), otherwise into the unpadded full output
 * (stride * (in - 1) + dilated kernel) from which the op's output is cut at pad_begin
 * (zeros where it reaches past, as negative pads or output_padding ask). The bias is
 * added after. cuDNN's algorithm per geometry is chosen once (heuristics, or timed with
 * GRAFT_CUDNN_FIND=1), deterministic unless GRAFT_CUDA_DETERMINISTIC=0, without TF32
 * unless GRAFT_CUDA_TF32=1, and cached in the context with its workspace size. */
#include "conv_cudnn.h"
#include "cuda_util.cuh"

extern "C" {
#include "../conv_shape.h"
#include "../dnnl_util.h"
}

#include <string.h>

/* ---- cuDNN: descriptors, algorithms, the three directions ---- */

gf_status gf_cu_conv_geometry(const gf_op_ctx *ctx, gf_cu_conv *g, int nsp, int64_t n, int64_t c, int64_t m,
                              int64_t group, const int64_t *x, const int64_t *y, const int64_t *k, const int64_t *pad,
                              const int64_t *stride, const int64_t *dil)
{
    memset(g, 0, sizeof *g);
    const int64_t lim = INT32_MAX;
    if (n > lim || c > lim || m > lim || group > lim)
        return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED, "a dim exceeds cuDNN's int range");
    g->sp = nsp == 3 ? 3 : 2;
    g->n = (int)n;
    g->c = (int)c;
    g->m = (int)m;
    g->group = (int)group;
    int lead = g->sp - nsp; /* 1 for a 1-D convolution: height 1 */
    for (int d = 0; d < g->sp; d++) {
        int s = d - lead;
        int64_t v[6] = {s >= 0 ? x[s] : 1, s >= 0 ? y[s] : 1, s >= 0 ? k[s] : 1,
                        s >= 0 ? pad[s] : 0, s >= 0 ? stride[s] : 1, s >= 0 ? dil[s] : 1};
        for (int i = 0; i < 6; i++)
            if (v[i] < 0 || v[i] > lim)
                return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED, "a spatial size exceeds cuDNN's int range");
        g->x[d] = (int)v[0];
        g->y[d] = (int)v[1];
        g->k[d] = (int)v[2];
        g->pad[d] = (int)v[3];
        g->stride[d] = (int)v[4];
        g->dil[d] = (int)v[5];
    }
    return GF_OK;
}

/* Descriptors of one geometry, destroyed together. */
typedef struct conv_descs {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} conv_descs;

static void destroy_descs(conv_descs *d)
{
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

static gf_status make_descs(const gf_op_ctx *ctx, const gf_cu_conv *g, int math, conv_descs *d)
{
    memset(d, 0, sizeof *d);
    int nb = g->sp + 2;
    int xd[5] = {g->n, g->c}, yd[5] = {g->n, g->m}, wd[5] = {g->m, g->c / g->group};
    int xs[5], ys[5];
    for (int i = 0; i < g->sp; i++) {
        xd[2 + i] = g->x[i];
        yd[2 + i] = g->y[i];
        wd[2 + i] = g->k[i];
    }
    /* dense NCHW strides */
    gf_status st = gf_cuda_int_strides(ctx, nb, xd, xs);
    if (!st) st = gf_cuda_int_strides(ctx, nb, yd, ys);
    if (st) return st;
    if ((st = GF_CUDNN(ctx, cudnnCreateTensorDescriptor(&d->x))) || (st = GF_CUDNN(ctx, cudnnCreateTensorDescriptor(&d->y))) ||
        (st = GF_CUDNN(ctx, cudnnCreateFilterDescriptor(&d->w))) ||
        (st = GF_CUDNN(ctx, cudnnCreateConvolutionDescriptor(&d->conv))) ||
        (st = GF_CUDNN(ctx, cudnnSetTensorNdDescriptor(d->x, CUDNN_DATA_FLOAT, nb, xd, xs))) ||
        (st = GF_CUDNN(ctx, cudnnSetTensorNdDescriptor(d->y, CUDNN_DATA_FLOAT, nb, yd, ys))) ||
        (st = GF_CUDNN(ctx, cudnnSetFilterNdDescriptor(d->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, nb, wd))) ||
        (st = GF_CUDNN(ctx, cudnnSetConvolutionNdDescriptor(d->conv, g->sp, g->pad, g->stride, g->dil,
                                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT))) ||
        (st = GF_CUDNN(ctx, cudnnSetConvolutionGroupCount(d->conv, g->group))) ||
        (st = GF_CUDNN(ctx, cudnnSetConvolutionMathType(d->conv, (cudnnMathType_t)math)))) {
        destroy_descs(d);
        return st;
    }
    /* cuDNN's own output size must be the one graft planned. */
    int out[5];
    if ((st = GF_CUDNN(ctx, cudnnGetConvolutionNdForwardOutputDim(d->conv, d->x, d->w, nb, out)))) {
        destroy_descs(d);
        return st;
    }
    for (int i = 0; i < nb; i++)
        if (out[i] != yd[i]) {
            destroy_descs(d);
            return gf_cuda_node_fail(ctx, GF_ERR_RUNTIME,
                                     "cuDNN computes dim %d of the convolution's output as %d, graft as %d", i, out[i],
                                     yd[i]);
        }
    return GF_OK;
}

static void make_key(const gf_cuda_ctx *cu, const gf_cu_conv *g, gf_cu_conv_dir dir, int64_t *key)
{
    memset(key, 0, GF_CUDA_ALGO_KEY * sizeof *key);
    int at = 0;
    key[at++] = dir;
    key[at++] = g->sp;
    key[at++] = g->n;
    key[at++] = g->c;
    key[at++] = g->m;
    key[at++] = g->group;
    for (int i = 0; i < 3; i++) {
        key[at++] = g->x[i];
        key[at++] = g->y[i];
        key[at++] = g->k[i];
        key[at++] = g->pad[i];
        key[at++] = g->stride[i];
        key[at++] = g->dil[i];
    }
    key[at++] = cu->opt.allow_tf32;
    key[at++] = cu->opt.deterministic;
    key[at++] = cu->opt.find_algorithms;
}

static const gf_cuda_algo *cached_algo(const gf_cuda_ctx *cu, const int64_t *key)
{
    for (int i = 0; i < cu->n_algos; i++)
        if (!memcmp(cu->algos[i].key, key, GF_CUDA_ALGO_KEY * sizeof *key)) return &cu->algos[i];
    return NULL;
}

static gf_status cache_algo(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_cuda_algo *a)
{
    if (cu->n_algos == cu->cap_algos) {
        int cap = cu->cap_algos ? 2 * cu->cap_algos : 32;
        gf_cuda_algo *p = (gf_cuda_algo *)realloc(cu->algos, (size_t)cap * sizeof *p);
        if (!p) return gf_cuda_node_fail(ctx, GF_ERR_NOMEM, "out of memory caching a cuDNN algorithm");
        cu->algos = p;
        cu->cap_algos = cap;
    }
    cu->algos[cu->n_algos++] = *a;
    return GF_OK;
}

/* The first usable result, in cuDNN's order (fastest first): succeeded, within the
 * workspace limit, deterministic when asked. -1 when none. */
template <typename Perf>
static int pick(const gf_cuda_ctx *cu, const Perf *perf, int n)
{
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
        if (perf[i].memory > cu->opt.workspace_limit) continue;
        if (cu->opt.deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
        return i;
    }
    return -1;
}

static const char *const dir_names[] = {"forward", "backward-data", "backward-filter"};

static gf_status choose_algo(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_cu_conv *g, gf_cu_conv_dir dir,
                             const conv_descs *d, gf_cuda_algo *out)
{
    int64_t key[GF_CUDA_ALGO_KEY];
    make_key(cu, g, dir, key);
    const gf_cuda_algo *hit = cached_algo(cu, key);
    if (hit) {
        *out = *hit;
        return GF_OK;
    }
    gf_cuda_algo a;
    memset(&a, 0, sizeof a);
    memcpy(a.key, key, sizeof key);
    int got = 0, i = -1, find = cu->opt.find_algorithms;
    gf_status st = GF_OK;
    cudnnMathType_t math = CUDNN_FMA_MATH;
    if (dir == GF_CU_CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        st = find ? GF_CUDNN(ctx, cudnnFindConvolutionForwardAlgorithm(cu->cudnn, d->x, d->w, d->conv, d->y,
                                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf))
                  : GF_CUDNN(ctx, cudnnGetConvolutionForwardAlgorithm_v7(cu->cudnn, d->x, d->w, d->conv, d->y,
                                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
        if (!st && (i = pick(cu, perf, got)) >= 0) {
            a.algo = perf[i].algo;
            math = perf[i].mathType;
        }
    } else if (dir == GF_CU_CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        st = find ? GF_CUDNN(ctx, cudnnFindConvolutionBackwardDataAlgorithm(cu->cudnn, d->w, d->y, d->conv, d->x,
                                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got,
                                                                            perf))
                  : GF_CUDNN(ctx, cudnnGetConvolutionBackwardDataAlgorithm_v7(cu->cudnn, d->w, d->y, d->conv, d->x,
                                                                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                              &got, perf));
        if (!st && (i = pick(cu, perf, got)) >= 0) {
            a.algo = perf[i].algo;
            math = perf[i].mathType;
        }
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        st = find ? GF_CUDNN(ctx, cudnnFindConvolutionBackwardFilterAlgorithm(cu->cudnn, d->x, d->y, d->conv, d->w,
                                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                              &got, perf))
                  : GF_CUDNN(ctx, cudnnGetConvolutionBackwardFilterAlgorithm_v7(cu->cudnn, d->x, d->y, d->conv, d->w,
                                                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                                &got, perf));
        if (!st && (i = pick(cu, perf, got)) >= 0) {
            a.algo = perf[i].algo;
            math = perf[i].mathType;
        }
    }
    if (st) return st;
    if (i < 0)
        return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED,
                                 "cuDNN offers no %s%s convolution algorithm within the %zu-byte workspace limit for "
                                 "this geometry%s",
                                 cu->opt.deterministic ? "deterministic " : "", dir_names[dir], cu->opt.workspace_limit,
                                 cu->opt.deterministic ? " (GRAFT_CUDA_DETERMINISTIC=0 allows the others)" : "");
    /* Without TF32 the algorithm runs on FMA arithmetic, as PyTorch does with
     * allow_tf32 off; with it, in the math cuDNN reported. */
    a.math = cu->opt.allow_tf32 ? (int)math : (int)CUDNN_FMA_MATH;
    if ((st = GF_CUDNN(ctx, cudnnSetConvolutionMathType(d->conv, (cudnnMathType_t)a.math)))) return st;
    size_t bytes = 0;
    if (dir == GF_CU_CONV_FWD)
        st = GF_CUDNN(ctx, cudnnGetConvolutionForwardWorkspaceSize(cu->cudnn, d->x, d->w, d->conv, d->y,
                                                                   (cudnnConvolutionFwdAlgo_t)a.algo, &bytes));
    else if (dir == GF_CU_CONV_BWD_DATA)
        st = GF_CUDNN(ctx, cudnnGetConvolutionBackwardDataWorkspaceSize(cu->cudnn, d->w, d->y, d->conv, d->x,
                                                                        (cudnnConvolutionBwdDataAlgo_t)a.algo, &bytes));
    else
        st = GF_CUDNN(ctx, cudnnGetConvolutionBackwardFilterWorkspaceSize(cu->cudnn, d->x, d->y, d->conv, d->w,
                                                                          (cudnnConvolutionBwdFilterAlgo_t)a.algo,
                                                                          &bytes));
    if (st) return st;
    a.workspace = bytes;
    if ((st = cache_algo(ctx, cu, &a))) return st;
    *out = a;
    return GF_OK;
}

gf_status gf_cu_conv_run(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_cu_conv *g, gf_cu_conv_dir dir,
                         const float *a, const float *b, float *out)
{
    int math = cu->opt.allow_tf32 ? (int)CUDNN_DEFAULT_MATH : (int)CUDNN_FMA_MATH;
    conv_descs d;
    gf_status st = make_descs(ctx, g, math, &d);
    if (st) return st;
    gf_cuda_algo algo;
    memset(&algo, 0, sizeof algo);
    void *ws = NULL;
    const float one = 1.0f, zero = 0.0f;
    if (!(st = choose_algo(ctx, cu, g, dir, &d, &algo)) &&
        !(st = GF_CUDNN(ctx, cudnnSetConvolutionMathType(d.conv, (cudnnMathType_t)algo.math))) &&
        !(st = gf_cuda_workspace(ctx, cu, algo.workspace, &ws))) {
        switch (dir) {
        case GF_CU_CONV_FWD:
            st = GF_CUDNN(ctx, cudnnConvolutionForward(cu->cudnn, &one, d.x, a, d.w, b, d.conv,
                                                       (cudnnConvolutionFwdAlgo_t)algo.algo, ws, algo.workspace, &zero,
                                                       d.y, out));
            break;
        case GF_CU_CONV_BWD_DATA:
            st = GF_CUDNN(ctx, cudnnConvolutionBackwardData(cu->cudnn, &one, d.w, b, d.y, a, d.conv,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo.algo, ws,
                                                            algo.workspace, &zero, d.x, out));
            break;
        case GF_CU_CONV_BWD_FILTER:
            st = GF_CUDNN(ctx, cudnnConvolutionBackwardFilter(cu->cudnn, &one, d.x, a, d.y, b, d.conv,
                                                              (cudnnConvolutionBwdFilterAlgo_t)algo.algo, ws,
                                                              algo.workspace, &zero, d.w, out));
            break;
        }
    }
    destroy_descs(&d);
    return st;
}

/* ---- the ops' geometry ---- */

/* conv_shape.h's checks and geometry, then what the CUDA kernels add: float32 only. */
static gf_status read_shape(const gf_op_ctx *ctx, int transpose, gf_conv_shape *sh)
{
    gf_status st = gf_conv_read_shape(ctx, transpose, sh);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *w = ctx->inputs[1], *b = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (x->dtype != GF_FLOAT || w->dtype != GF_FLOAT || (b && b->dtype != GF_FLOAT))
        return gf_fail(GF_ERR_UNSUPPORTED, "the CUDA kernel takes float32 (X is %s)", gf_dtype_name(x->dtype));
    return GF_OK;
}

/* ---- Conv ---- */

static gf_status conv_forward(gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_conv_shape *sh)
{
    const gf_window *w = &sh->w;
    int nsp = w->nsp;
    const float *x = (const float *)ctx->inputs[0]->data, *wt = (const float *)ctx->inputs[1]->data;
    float *y = (float *)ctx->outputs[0]->data;
    int64_t sym[3], begin_extra[3], padded[3], shift[3];
    int explicit_pad = 0;
    for (int d = 0; d < nsp; d++) {
        sym[d] = w->pad_begin[d] < w->pad_end[d] ? w->pad_begin[d] : w->pad_end[d];
        begin_extra[d] = w->pad_begin[d] - sym[d];
        padded[d] = w->in[d] + begin_extra[d] + (w->pad_end[d] - sym[d]);
        shift[d] = -begin_extra[d];
        explicit_pad |= padded[d] != w->in[d];
    }
    float *xp = NULL;
    gf_status st = GF_OK;
    if (explicit_pad) {
        int64_t vol = 1;
        for (int d = 0; d < nsp; d++) vol *= padded[d];
        size_t bytes = (size_t)(sh->n * sh->c * vol) * sizeof(float);
        if ((st = gf_cuda_scratch(ctx, cu, bytes, (void **)&xp))) return st;
        st = gf_cuda_shift_copy(ctx, cu, xp, padded, x, w->in, shift, sh->n * sh->c, nsp);
        x = xp;
    }
    gf_cu_conv g;
    if (!st) st = gf_cu_conv_geometry(ctx, &g, nsp, sh->n, sh->c, sh->m, sh->group, explicit_pad ? padded : w->in,
                                      w->out, w->kernel, sym, w->stride, w->dilation);
    if (!st) st = gf_cu_conv_run(ctx, cu, &g, GF_CU_CONV_FWD, x, wt, y);
    gf_cuda_scratch_free(cu, xp);
    return st;
}

/* ---- ConvTranspose ---- */

static gf_status conv_transpose(gf_op_ctx *ctx, gf_cuda_ctx *cu, const gf_conv_shape *sh)
{
    const gf_window *w = &sh->w;
    int nsp = w->nsp;
    const float *x = (const float *)ctx->inputs[0]->data, *wt = (const float *)ctx->inputs[1]->data;
    float *y = (float *)ctx->outputs[0]->data;
    int direct = 1;
    for (int d = 0; d < nsp; d++)
        direct &= w->pad_begin[d] >= 0 && w->pad_begin[d] == w->pad_end[d] + sh->outpad[d] &&
                  sh->outpad[d] < w->stride[d];
    gf_cu_conv g;
    gf_status st;
    if (direct) {
        /* cuDNN's forward view: x is the op's output (m channels), y its input (c). */
        st = gf_cu_conv_geometry(ctx, &g, nsp, sh->n, sh->m, sh->c, sh->group, w->out, w->in, w->kernel, w->pad_begin,
                                 w->stride, w->dilation);
        return st ? st : gf_cu_conv_run(ctx, cu, &g, GF_CU_CONV_BWD_DATA, x, wt, y);
    }
    int64_t full[3], zero_pad[3] = {0, 0, 0}, vol = 1;
    for (int d = 0; d < nsp; d++) {
        full[d] = w->stride[d] * (w->in[d] - 1) + gf_window_extent(w, d);
        vol *= full[d];
    }
    float *f = NULL;
    if ((st = gf_cuda_scratch(ctx, cu, (size_t)(sh->n * sh->m * vol) * sizeof(float), (void **)&f))) return st;
    st = gf_cu_conv_geometry(ctx, &g, nsp, sh->n, sh->m, sh->c, sh->group, full, w->in, w->kernel, zero_pad, w->stride,
                             w->dilation);
    if (!st) st = gf_cu_conv_run(ctx, cu, &g, GF_CU_CONV_BWD_DATA, x, wt, f);
    /* Y[o] = full[o + pad_begin], 0 past its ends */
    if (!st) st = gf_cuda_shift_copy(ctx, cu, y, w->out, f, full, w->pad_begin, sh->n * sh->m, nsp);
    gf_cuda_scratch_free(cu, f);
    return st;
}

/* ---- FusedConv (domain ai.graft, made by the session's rewrites, runtime/fuse.c) ----
 *   FusedConv(X, W, B?, S?) -> Y = act(Conv(X, W, B) + S), activation "", "Relu" or
 *   "LeakyRelu" (alpha 0.01), read by gf_conv_read_fusion (conv_shape.h). Here the
 *   convolution, then one epilogue kernel: the bias, S, the activation, each as the
 *   separate ops compute it; the algorithm attribute is oneDNN's and has no effect here. */

/* y = act((c + b[m]) + s), reading c (the convolution, which may be y itself) and s. */
__global__ void epilogue_kernel(float *y, const float *c, const float *b, const float *s, int64_t m, int64_t inner,
                                int act, float alpha, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        float v = c[i];
        if (b) v += b[i / inner % m];
        if (s) v = v + s[i];
        if (act == GF_CONV_ACT_RELU) v = v < 0 ? 0 : v;
        else if (act == GF_CONV_ACT_LEAKY) v = v < 0 ? v * alpha : v;
        y[i] = v;
    }
}

static gf_status conv_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_op_ctx cv;
    gf_conv_fusion f;
    gf_conv_shape sh;
    int transpose = !strcmp(ctx->node->op_type, "ConvTranspose");
    gf_status st = gf_conv_read_fusion(ctx, &cv, &f);
    if (!st) st = read_shape(&cv, transpose, &sh);
    if (!st && f.has_sum) {
        const gf_tensor *sum = ctx->inputs[3], *y = ctx->outputs[0];
        int same = y && sum->dtype == GF_FLOAT && sum->rank == y->rank;
        for (int d = 0; same && d < sum->rank; d++) same = sum->dims[d] == y->dims[d];
        if (!same) st = gf_fail(GF_ERR_SHAPE, "input S must have the output's shape and type");
    }
    if (st) return gf_cuda_node_context(ctx, st);
    gf_tensor *y = ctx->outputs[0];
    if (!y || gf_tensor_numel(y) == 0) return GF_OK;
    const float *b = sh.has_bias ? (const float *)cv.inputs[2]->data : NULL;
    const float *sum = f.has_sum ? (const float *)ctx->inputs[3]->data : NULL;
    int64_t total = gf_tensor_numel(y), inner = total / (sh.n * sh.m);
    /* S in Y's storage (an in-place sum): the convolution goes to scratch first */
    float *conv_out = (float *)y->data, *scratch = NULL;
    if (sum == conv_out) {
        if ((st = gf_cuda_scratch(ctx, cu, gf_tensor_nbytes(y), (void **)&scratch))) return st;
        conv_out = scratch;
    }
    gf_tensor target = *y;
    target.data = conv_out;
    gf_tensor *outs[1] = {&target};
    cv.outputs = outs;
    cv.n_outputs = 1;
    if (gf_tensor_numel(ctx->inputs[0]) == 0 || gf_tensor_numel(ctx->inputs[1]) == 0)
        st = gf_cuda_zero(ctx, cu, conv_out, gf_tensor_nbytes(y)); /* no tap reads anything: the bias alone */
    else
        st = transpose ? conv_transpose(&cv, cu, &sh) : conv_forward(&cv, cu, &sh);
    if (!st && (b || sum || f.act != GF_CONV_ACT_NONE || conv_out != y->data)) {
        epilogue_kernel<<<gf_cuda_blocks(total), GF_CUDA_THREADS, 0, cu->stream>>>(
            (float *)y->data, conv_out, b, sum, sh.m, inner, f.act, f.alpha, total);
        st = gf_cuda_launched(ctx, "epilogue_kernel");
    }
    gf_cuda_scratch_free(cu, scratch);
    return st;
}

static gf_status conv_check(gf_op_ctx *ctx) { return gf_cuda_check_float(ctx, 0, ctx->n_inputs); }

extern "C" const gf_cuda_op gf_cuda_ops_conv[] = {
    {"", "Conv", 1, 0, conv_cuda, conv_check, 0},
    {"", "ConvTranspose", 1, 0, conv_cuda, conv_check, 0},
    {"ai.graft", "FusedConv", 1, 0, conv_cuda, conv_check, 0},
    {0},
};
