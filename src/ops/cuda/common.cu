/* What the CUDA families share: scratch memory, copies (dense, strided, shifted),
 * fills, the sum reduction, and small host-side helpers. */
#include "cuda_util.cuh"

#include <math.h>
#include <string.h>

/* ---- scratch memory ---- */

gf_status gf_cuda_scratch(const gf_op_ctx *ctx, gf_cuda_ctx *cu, size_t bytes, void **out)
{
    *out = NULL;
    cudaError_t e = cudaMallocAsync(out, bytes ? bytes : 16, cu->stream);
    if (e != cudaSuccess) *out = NULL;
    return gf_cuda_rt_status(ctx, "cudaMallocAsync (scratch)", e);
}

void gf_cuda_scratch_free(gf_cuda_ctx *cu, void *p)
{
    if (p) cudaFreeAsync(p, cu->stream);
}

gf_status gf_cuda_upload(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const void *src, size_t bytes, void **out)
{
    gf_status st = gf_cuda_scratch(ctx, cu, bytes, out);
    if (st || !bytes) return st;
    /* From pageable memory the driver stages the bytes before returning: src may go. */
    st = GF_CU(ctx, cudaMemcpyAsync(*out, src, bytes, cudaMemcpyHostToDevice, cu->stream));
    if (st) {
        gf_cuda_scratch_free(cu, *out);
        *out = NULL;
    }
    return st;
}

gf_status gf_cuda_workspace(const gf_op_ctx *ctx, gf_cuda_ctx *cu, size_t bytes, void **out)
{
    if (bytes > cu->workspace_bytes || !cu->workspace) {
        if (cu->workspace) cudaFreeAsync(cu->workspace, cu->stream);
        cu->workspace = NULL;
        cu->workspace_bytes = 0;
        size_t want = bytes < 1024 ? 1024 : bytes;
        gf_status st = GF_CU(ctx, cudaMallocAsync(&cu->workspace, want, cu->stream));
        if (st) {
            cu->workspace = NULL;
            return st;
        }
        cu->workspace_bytes = want;
    }
    *out = cu->workspace;
    return GF_OK;
}

gf_status gf_cuda_read_small(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, const void *src, size_t bytes)
{
    if (bytes > GF_CUDA_SMALL) return gf_cuda_node_fail(ctx, GF_ERR_RUNTIME, "reading back %zu bytes at once", bytes);
    gf_status st = GF_CU(ctx, cudaMemcpyAsync(cu->h_small, src, bytes, cudaMemcpyDeviceToHost, cu->stream));
    if (!st) st = GF_CU(ctx, cudaStreamSynchronize(cu->stream));
    if (!st) memcpy(dst, cu->h_small, bytes);
    return st;
}

gf_status gf_cuda_copy_bytes(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, const void *src, size_t bytes)
{
    if (!bytes || dst == src) return GF_OK;
    return GF_CU(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu->stream));
}

gf_status gf_cuda_zero(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, size_t bytes)
{
    if (!bytes) return GF_OK;
    return GF_CU(ctx, cudaMemsetAsync(dst, 0, bytes, cu->stream));
}

/* ---- fills ---- */

template <typename T>
__global__ void fill_kernel(T *dst, int64_t n, T value)
{
    GF_CUDA_LOOP(i, n) dst[i] = value;
}

gf_status gf_cuda_fill(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, int64_t n, const void *value, size_t esize)
{
    if (n <= 0) return GF_OK;
    unsigned blocks = gf_cuda_blocks(n);
    switch (esize) {
    case 1: {
        uint8_t v;
        memcpy(&v, value, 1);
        return GF_CU(ctx, cudaMemsetAsync(dst, v, (size_t)n, cu->stream));
    }
    case 2: {
        uint16_t v;
        memcpy(&v, value, 2);
        fill_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((uint16_t *)dst, n, v);
        break;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, value, 4);
        fill_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((uint32_t *)dst, n, v);
        break;
    }
    case 8: {
        unsigned long long v;
        memcpy(&v, value, 8);
        fill_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((unsigned long long *)dst, n, v);
        break;
    }
    default: return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED, "filling elements of %zu bytes", esize);
    }
    return gf_cuda_launched(ctx, "fill_kernel");
}

/* ---- strided copies ---- */

template <typename T>
__global__ void strided_kernel(T *dst, const T *src, gf_cu_dims g, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        int64_t od, os;
        gf_cu_offsets(g, i, &od, &os);
        dst[od] = src[os];
    }
}

/* Bytes copied one element of `esize` at a time, for sizes without a type. */
__global__ void strided_bytes_kernel(char *dst, const char *src, gf_cu_dims g, int64_t n, int esize)
{
    GF_CUDA_LOOP(i, n) {
        int64_t od, os;
        gf_cu_offsets(g, i, &od, &os);
        for (int b = 0; b < esize; b++) dst[od * esize + b] = src[os * esize + b];
    }
}

/* Drops axes of size 1 and merges neighbours that both stride sets walk as one. */
static void coalesce(gf_cu_dims *g, int rank, const int64_t *dims, const int64_t *sa, const int64_t *sb)
{
    g->rank = 0;
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1) continue;
        int r = g->rank;
        if (r > 0 && g->a[r - 1] == sa[d] * dims[d] && g->b[r - 1] == sb[d] * dims[d]) {
            g->dims[r - 1] *= dims[d];
            g->a[r - 1] = sa[d];
            g->b[r - 1] = sb[d];
        } else {
            g->dims[r] = dims[d];
            g->a[r] = sa[d];
            g->b[r] = sb[d];
            g->rank++;
        }
    }
    if (g->rank == 0) {
        g->rank = 1;
        g->dims[0] = 1;
        g->a[0] = g->b[0] = 0;
    }
}

static void dense_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        strides[d] = s;
        s *= dims[d];
    }
}

gf_status gf_cuda_copy_strided(const gf_op_ctx *ctx, gf_cuda_ctx *cu, void *dst, const int64_t *dst_strides,
                               const void *src, const int64_t *src_strides, size_t esize, int rank,
                               const int64_t *dims)
{
    int64_t n = 1, dense[GF_MAX_RANK];
    for (int d = 0; d < rank; d++) n *= dims[d];
    if (n <= 0) return GF_OK;
    dense_strides(rank, dims, dense);
    gf_cu_dims g;
    coalesce(&g, rank, dims, dst_strides ? dst_strides : dense, src_strides ? src_strides : dense);
    if (g.rank == 1 && g.a[0] == 1 && g.b[0] == 1)
        return gf_cuda_copy_bytes(ctx, cu, dst, src, (size_t)n * esize);
    if (g.rank == 1 && g.dims[0] == 1) return gf_cuda_copy_bytes(ctx, cu, dst, src, esize);
    unsigned blocks = gf_cuda_blocks(n);
    switch (esize) {
    case 1: strided_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((uint8_t *)dst, (const uint8_t *)src, g, n); break;
    case 2: strided_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((uint16_t *)dst, (const uint16_t *)src, g, n); break;
    case 4: strided_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((uint32_t *)dst, (const uint32_t *)src, g, n); break;
    case 8:
        strided_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((unsigned long long *)dst,
                                                                    (const unsigned long long *)src, g, n);
        break;
    default:
        strided_bytes_kernel<<<blocks, GF_CUDA_THREADS, 0, cu->stream>>>((char *)dst, (const char *)src, g, n, (int)esize);
        break;
    }
    return gf_cuda_launched(ctx, "strided_kernel");
}

/* ---- shifted window copies (explicit padding and cropping around cuDNN) ---- */

struct shift_geom {
    int64_t dst[3], src[3], shift[3];
};

__global__ void shift_kernel(float *dst, const float *src, shift_geom g, int64_t n)
{
    int64_t dst_plane = g.dst[0] * g.dst[1] * g.dst[2], src_plane = g.src[0] * g.src[1] * g.src[2];
    GF_CUDA_LOOP(i, n) {
        int64_t p = i / dst_plane, r = i % dst_plane;
        int64_t o2 = r % g.dst[2], o1 = r / g.dst[2] % g.dst[1], o0 = r / (g.dst[2] * g.dst[1]);
        int64_t s0 = o0 + g.shift[0], s1 = o1 + g.shift[1], s2 = o2 + g.shift[2];
        int inside = s0 >= 0 && s0 < g.src[0] && s1 >= 0 && s1 < g.src[1] && s2 >= 0 && s2 < g.src[2];
        dst[i] = inside ? src[p * src_plane + (s0 * g.src[1] + s1) * g.src[2] + s2] : 0.0f;
    }
}

gf_status gf_cuda_shift_copy(const gf_op_ctx *ctx, gf_cuda_ctx *cu, float *dst, const int64_t *dst_sp,
                             const float *src, const int64_t *src_sp, const int64_t *shift, int64_t planes, int nsp)
{
    shift_geom g;
    for (int d = 0; d < 3; d++) {
        /* spatial dims right-aligned; leading unused ones are 1 wide, not shifted */
        int k = d - (3 - nsp);
        g.dst[d] = k >= 0 ? dst_sp[k] : 1;
        g.src[d] = k >= 0 ? src_sp[k] : 1;
        g.shift[d] = k >= 0 ? shift[k] : 0;
    }
    int64_t n = planes * g.dst[0] * g.dst[1] * g.dst[2];
    if (n <= 0) return GF_OK;
    shift_kernel<<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, cu->stream>>>(dst, src, g, n);
    return gf_cuda_launched(ctx, "shift_kernel");
}

/* ---- channel bias ---- */

__global__ void channel_bias_kernel(float *y, const float *b, int64_t m, int64_t inner, int64_t n)
{
    GF_CUDA_LOOP(i, n) y[i] += b[i / inner % m];
}

gf_status gf_cuda_add_channel_bias(const gf_op_ctx *ctx, gf_cuda_ctx *cu, float *y, const float *b, int64_t n,
                                   int64_t m, int64_t inner)
{
    int64_t total = n * m * inner;
    if (total <= 0) return GF_OK;
    channel_bias_kernel<<<gf_cuda_blocks(total), GF_CUDA_THREADS, 0, cu->stream>>>(y, b, m, inner, total);
    return gf_cuda_launched(ctx, "channel_bias_kernel");
}

/* ---- per-channel sums (batch normalization) ---- */

__global__ void channel_sums_kernel(const float *x, const float *dy, const double *shift, int64_t c, int64_t inner,
                                    int64_t count, int64_t parts, double *partial)
{
    int64_t chunk = (count + parts - 1) / parts;
    for (int64_t t = blockIdx.x; t < c * parts; t += gridDim.x) {
        int64_t ch = t / parts, p = t % parts;
        int64_t lo = p * chunk, hi = lo + chunk < count ? lo + chunk : count;
        double s = shift ? shift[ch] : 0.0, first = 0, second = 0;
        for (int64_t j = lo + threadIdx.x; j < hi; j += blockDim.x) {
            int64_t at = (j / inner * c + ch) * inner + j % inner;
            double d = x[at] - s, w = dy ? (double)dy[at] : d;
            first += w;
            second += w * d;
        }
        first = gf_cu_block_sum(first);
        second = gf_cu_block_sum(second);
        if (threadIdx.x == 0) {
            partial[2 * t] = first;
            partial[2 * t + 1] = second;
        }
    }
}

__global__ void channel_sums_finish(const double *partial, int64_t c, int64_t parts, double *first, double *second)
{
    GF_CUDA_LOOP(ch, c) {
        double f = 0, q = 0;
        for (int64_t p = 0; p < parts; p++) {
            f += partial[2 * (ch * parts + p)];
            q += partial[2 * (ch * parts + p) + 1];
        }
        first[ch] = f;
        second[ch] = q;
    }
}

gf_status gf_cuda_channel_sums(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const float *x, const float *dy,
                               const double *shift, int64_t n, int64_t c, int64_t inner, double *first,
                               double *second)
{
    if (c <= 0) return GF_OK;
    int64_t count = n * inner, parts = count / 16384;
    if (parts < 1) parts = 1;
    if (parts > 256) parts = 256;
    double *partial;
    gf_status st = gf_cuda_scratch(ctx, cu, (size_t)(2 * c * parts) * sizeof *partial, (void **)&partial);
    if (st) return st;
    int64_t tasks = c * parts;
    channel_sums_kernel<<<(unsigned)(tasks < 65536 ? tasks : 65536), GF_CUDA_THREADS, 0, cu->stream>>>(
        x, dy, shift, c, inner, count, parts, partial);
    st = gf_cuda_launched(ctx, "channel_sums_kernel");
    if (!st) {
        channel_sums_finish<<<gf_cuda_blocks(c), GF_CUDA_THREADS, 0, cu->stream>>>(partial, c, parts, first, second);
        st = gf_cuda_launched(ctx, "channel_sums_finish");
    }
    gf_cuda_scratch_free(cu, partial);
    return st;
}

/* ---- the sum reduction ---- */

struct red_geom {
    int n_kept, n_red;
    int64_t kept_dims[GF_MAX_RANK], kept_strides[GF_MAX_RANK];
    int64_t red_dims[GF_MAX_RANK], red_strides[GF_MAX_RANK];
    int64_t n_out, n_red_total;
};

__device__ inline int64_t red_base(const red_geom &g, int64_t o)
{
    int64_t off = 0;
    for (int k = g.n_kept - 1; k >= 0; k--) {
        off += o % g.kept_dims[k] * g.kept_strides[k];
        o /= g.kept_dims[k];
    }
    return off;
}

__device__ inline int64_t red_offset(const red_geom &g, int64_t j)
{
    int64_t off = 0;
    for (int k = g.n_red - 1; k >= 0; k--) {
        off += j % g.red_dims[k] * g.red_strides[k];
        j /= g.red_dims[k];
    }
    return off;
}

/* One thread per output, its elements in row-major order. */
__global__ void reduce_thread_kernel(const float *x, float *y, red_geom g, int mean)
{
    GF_CUDA_LOOP(o, g.n_out) {
        int64_t base = red_base(g, o), idx[GF_MAX_RANK], off = 0;
        for (int k = 0; k < g.n_red; k++) idx[k] = 0;
        double s = 0;
        for (int64_t j = 0; j < g.n_red_total; j++) {
            s += x[base + off];
            for (int k = g.n_red - 1; k >= 0; k--) {
                off += g.red_strides[k];
                if (++idx[k] < g.red_dims[k]) break;
                off -= idx[k] * g.red_strides[k];
                idx[k] = 0;
            }
        }
        y[o] = (float)(mean ? s / (double)g.n_red_total : s);
    }
}

/* Tasks (output o, part p), one block each: the block's threads sum part p of o's
 * elements into partial[o * parts + p]. */
__global__ void reduce_block_kernel(const float *x, double *partial, red_geom g, int64_t parts)
{
    int64_t chunk = (g.n_red_total + parts - 1) / parts;
    for (int64_t t = blockIdx.x; t < g.n_out * parts; t += gridDim.x) {
        int64_t o = t / parts, p = t % parts, base = red_base(g, o);
        int64_t lo = p * chunk, hi = lo + chunk < g.n_red_total ? lo + chunk : g.n_red_total;
        double s = 0;
        for (int64_t j = lo + threadIdx.x; j < hi; j += blockDim.x) s += x[base + red_offset(g, j)];
        s = gf_cu_block_sum(s);
        if (threadIdx.x == 0) partial[t] = s;
    }
}

__global__ void reduce_finish_kernel(const double *partial, float *y, int64_t n_out, int64_t parts, int64_t count,
                                     int mean)
{
    GF_CUDA_LOOP(o, n_out) {
        double s = 0;
        for (int64_t p = 0; p < parts; p++) s += partial[o * parts + p];
        y[o] = (float)(mean ? s / (double)count : s);
    }
}

gf_status gf_cuda_reduce_sum(const gf_op_ctx *ctx, gf_cuda_ctx *cu, const float *x, int rank, const int64_t *dims,
                             const unsigned char *reduced, int mean, float *y)
{
    int64_t strides[GF_MAX_RANK];
    dense_strides(rank, dims, strides);
    /* Coalesced axes: size-1 axes dropped, neighbours of one kind merged. */
    int64_t cd[GF_MAX_RANK], cs[GF_MAX_RANK];
    unsigned char cr[GF_MAX_RANK];
    int n = 0;
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 1) continue;
        if (n > 0 && cr[n - 1] == (reduced[d] != 0)) {
            cd[n - 1] *= dims[d];
            cs[n - 1] = strides[d];
        } else {
            cd[n] = dims[d];
            cs[n] = strides[d];
            cr[n++] = reduced[d] != 0;
        }
    }
    red_geom g;
    memset(&g, 0, sizeof g);
    g.n_out = g.n_red_total = 1;
    for (int k = 0; k < n; k++) {
        if (cr[k]) {
            g.red_dims[g.n_red] = cd[k];
            g.red_strides[g.n_red++] = cs[k];
            g.n_red_total *= cd[k];
        } else {
            g.kept_dims[g.n_kept] = cd[k];
            g.kept_strides[g.n_kept++] = cs[k];
            g.n_out *= cd[k];
        }
    }
    if (g.n_out == 0) return GF_OK;
    if (g.n_red_total == 0) {
        /* Nothing to add: 0, and for a mean 0 / 0. */
        float v = mean ? NAN : 0.0f;
        return gf_cuda_fill(ctx, cu, y, g.n_out, &v, sizeof v);
    }
    int inner_kept = n > 0 && !cr[n - 1];
    if (g.n_red_total <= 32 || (inner_kept && g.n_out >= 2048)) {
        reduce_thread_kernel<<<gf_cuda_blocks(g.n_out), GF_CUDA_THREADS, 0, cu->stream>>>(x, y, g, mean);
        return gf_cuda_launched(ctx, "reduce_thread_kernel");
    }
    /* Parts of about 16384 elements, so that a few large sums still fill the device;
     * the split depends on the shape alone, so the result does too. */
    int64_t parts = g.n_red_total / 16384;
    if (parts < 1) parts = 1;
    if (parts > 1024) parts = 1024;
    double *partial;
    gf_status st = gf_cuda_scratch(ctx, cu, (size_t)(g.n_out * parts) * sizeof *partial, (void **)&partial);
    if (st) return st;
    int64_t tasks = g.n_out * parts;
    reduce_block_kernel<<<(unsigned)(tasks < 65536 ? tasks : 65536), GF_CUDA_THREADS, 0, cu->stream>>>(x, partial, g,
                                                                                                        parts);
    st = gf_cuda_launched(ctx, "reduce_block_kernel");
    if (!st) {
        reduce_finish_kernel<<<gf_cuda_blocks(g.n_out), GF_CUDA_THREADS, 0, cu->stream>>>(partial, y, g.n_out, parts,
                                                                                           g.n_red_total, mean);
        st = gf_cuda_launched(ctx, "reduce_finish_kernel");
    }
    gf_cuda_scratch_free(cu, partial);
    return st;
}

/* ---- host-side helpers ---- */

gf_status gf_cuda_int_strides(const gf_op_ctx *ctx, int rank, const int *dims, int *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        if (s > INT32_MAX)
            return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED, "a tensor is too large for cuDNN's int strides");
        strides[i] = (int)s;
        s *= dims[i];
    }
    return GF_OK;
}

gf_status gf_cuda_check_float(const gf_op_ctx *ctx, int from, int to)
{
    for (int i = from; i < to && i < ctx->n_inputs; i++) {
        const gf_tensor *t = ctx->inputs[i];
        if (t && t->dtype != GF_FLOAT)
            return gf_fail(GF_ERR_UNSUPPORTED, "input %d is %s; the CUDA kernel of %s takes float32", i,
                           gf_dtype_name(t->dtype), ctx->node->op_type);
    }
    return GF_OK;
}

gf_status gf_cuda_check_all_float(gf_op_ctx *ctx)
{
    const gf_cuda_op *op = gf_cuda_op_find(ctx->node->domain, ctx->node->op_type, ctx->node->opset);
    for (int i = 0; i < ctx->n_inputs; i++) {
        if (op && gf_cuda_input_on_host(op, i)) continue;
        gf_status st = gf_cuda_check_float(ctx, i, i + 1);
        if (st) return st;
    }
    return GF_OK;
}
