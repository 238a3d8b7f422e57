/* Add, Sub, Mul and Div with ONNX (numpy) broadcasting on the GPU (twin:
 * ops/elementwise.c), on float32, int32 and int64.
 *
 * The broadcast output is walked as elementwise.c walks it: axes of size 1 dropped,
 * neighbours every input walks contiguously merged, so a same-shape or scalar operand
 * is one flat loop. Integers compute in 64 bits and wrap like the stored type, and
 * division truncates toward zero with x / 0 = 0 (and x / -1 = -x, wrapping), as the
 * reference defines it. */
#include "cuda_util.cuh"

#include <string.h>

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

template <int OP>
__device__ inline float eval(float a, float b)
{
    switch (OP) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    default: return a / b;
    }
}

template <int OP>
__device__ inline int64_t eval_i64(int64_t a, int64_t b)
{
    switch (OP) {
    case OP_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case OP_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case OP_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    default: return b == 0 ? 0 : b == -1 ? (int64_t)(0 - (uint64_t)a) : a / b;
    }
}

template <int OP>
__device__ inline int32_t eval(int32_t a, int32_t b)
{
    return (int32_t)eval_i64<OP>(a, b);
}

template <int OP>
__device__ inline int64_t eval(int64_t a, int64_t b)
{
    return eval_i64<OP>(a, b);
}

/* One merged axis: operands step sa and sb (0 or 1) along it. */
template <typename T, int OP>
__global__ void binary_flat(const T *a, const T *b, T *y, int64_t sa, int64_t sb, int64_t n)
{
    GF_CUDA_LOOP(i, n) y[i] = eval<OP>(a[i * sa], b[i * sb]);
}

template <typename T, int OP>
__global__ void binary_strided(const T *a, const T *b, T *y, gf_cu_dims g, int64_t n)
{
    GF_CUDA_LOOP(i, n) {
        int64_t oa, ob;
        gf_cu_offsets(g, i, &oa, &ob);
        y[i] = eval<OP>(a[oa], b[ob]);
    }
}

/* elementwise.c's plan_bcast for two inputs. */
static void plan_bcast(gf_cu_dims *g, const gf_tensor *a, const gf_tensor *b, const gf_tensor *y)
{
    int64_t s[2][GF_MAX_RANK];
    gf_broadcast_strides(a, y->rank, y->dims, s[0]);
    gf_broadcast_strides(b, y->rank, y->dims, s[1]);
    g->rank = 0;
    for (int d = 0; d < y->rank; d++) {
        if (y->dims[d] == 1) continue;
        int r = g->rank;
        if (r > 0 && g->a[r - 1] == s[0][d] * y->dims[d] && g->b[r - 1] == s[1][d] * y->dims[d]) {
            g->dims[r - 1] *= y->dims[d];
            g->a[r - 1] = s[0][d];
            g->b[r - 1] = s[1][d];
        } else {
            g->dims[r] = y->dims[d];
            g->a[r] = s[0][d];
            g->b[r] = s[1][d];
            g->rank++;
        }
    }
    if (g->rank == 0) {
        g->rank = 1;
        g->dims[0] = 1;
        g->a[0] = g->b[0] = 0;
    }
}

template <typename T, int OP>
static void launch(const gf_cu_dims *g, const void *a, const void *b, void *y, int64_t n, cudaStream_t stream)
{
    if (g->rank == 1)
        binary_flat<T, OP><<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, stream>>>((const T *)a, (const T *)b, (T *)y,
                                                                              g->a[0], g->b[0], n);
    else
        binary_strided<T, OP><<<gf_cuda_blocks(n), GF_CUDA_THREADS, 0, stream>>>((const T *)a, (const T *)b, (T *)y, *g,
                                                                                 n);
}

template <typename T>
static void launch_op(int op, const gf_cu_dims *g, const void *a, const void *b, void *y, int64_t n,
                      cudaStream_t stream)
{
    switch (op) {
    case OP_ADD: launch<T, OP_ADD>(g, a, b, y, n, stream); break;
    case OP_SUB: launch<T, OP_SUB>(g, a, b, y, n, stream); break;
    case OP_MUL: launch<T, OP_MUL>(g, a, b, y, n, stream); break;
    default: launch<T, OP_DIV>(g, a, b, y, n, stream); break;
    }
}

static int op_of(const char *op_type)
{
    return !strcmp(op_type, "Add") ? OP_ADD : !strcmp(op_type, "Sub") ? OP_SUB : !strcmp(op_type, "Mul") ? OP_MUL : OP_DIV;
}

static gf_status binary_check(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 2);
    if (st) return st;
    gf_dtype t = ctx->inputs[0]->dtype;
    if (t != GF_FLOAT && t != GF_INT32 && t != GF_INT64)
        return gf_fail(GF_ERR_UNSUPPORTED, "the CUDA kernel of %s takes float32, int32 or int64, not %s",
                       ctx->node->op_type, gf_dtype_name(t));
    if (ctx->inputs[1]->dtype != t)
        return gf_fail(GF_ERR_SHAPE, "input 1 is %s, input 0 is %s", gf_dtype_name(ctx->inputs[1]->dtype),
                       gf_dtype_name(t));
    return GF_OK;
}

static gf_status binary_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_status st = binary_check(ctx);
    if (st) return gf_cuda_node_context(ctx, st);
    const gf_tensor *a = ctx->inputs[0], *b = ctx->inputs[1];
    gf_tensor *y = ctx->outputs[0];
    int64_t n = gf_tensor_numel(y);
    if (n == 0) return GF_OK;
    gf_cu_dims g;
    plan_bcast(&g, a, b, y);
    int op = op_of(ctx->node->op_type);
    switch (a->dtype) {
    case GF_FLOAT: launch_op<float>(op, &g, a->data, b->data, y->data, n, cu->stream); break;
    case GF_INT32: launch_op<int32_t>(op, &g, a->data, b->data, y->data, n, cu->stream); break;
    default: launch_op<int64_t>(op, &g, a->data, b->data, y->data, n, cu->stream); break;
    }
    return gf_cuda_launched(ctx, "binary_kernel");
}

extern "C" const gf_cuda_op gf_cuda_ops_elementwise[] = {
    {"", "Add", 1, 0, binary_cuda, binary_check, 0},
    {"", "Sub", 1, 0, binary_cuda, binary_check, 0},
    {"", "Mul", 1, 0, binary_cuda, binary_check, 0},
    {"", "Div", 1, 0, binary_cuda, binary_check, 0},
    {0},
};
