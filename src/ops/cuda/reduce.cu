/* ReduceSum and ReduceMean on float32 on the GPU (twin: ops/reduce.c): the axes as
 * reduce.c reads them (an attribute, or input 1 from opset 13 for ReduceSum and 18 for
 * ReduceMean; noop_with_empty_axes), the sum in double, the mean dividing it by the
 * count (0 / 0 for an empty axis, as the reference). */
#include "cuda_util.cuh"

#include <string.h>

typedef struct reduce_axes {
    int keepdims;
    unsigned char reduced[GF_MAX_RANK];
} reduce_axes;

static gf_status mark_axis(const gf_op_ctx *ctx, int64_t axis, int rank, reduce_axes *r)
{
    int a;
    gf_status st = gf_axis(ctx, axis, rank, &a);
    if (st) return st;
    if (r->reduced[a]) return gf_fail(GF_ERR_INVALID, "axis %lld is listed twice", (long long)axis);
    r->reduced[a] = 1;
    return GF_OK;
}

/* reduce.c's read_axes. */
static gf_status read_axes(const gf_op_ctx *ctx, int axes_as_input, reduce_axes *r)
{
    const gf_tensor *x = ctx->inputs[0];
    memset(r, 0, sizeof *r);
    r->keepdims = gf_attr_int(ctx->node, "keepdims", 1) != 0;
    int n_axes = 0;
    gf_status st = GF_OK;
    if (axes_as_input) {
        const gf_tensor *axes = ctx->n_inputs > 1 ? ctx->inputs[1] : NULL;
        if (axes) {
            if (axes->dtype != GF_INT64)
                return gf_fail(GF_ERR_INVALID, "axes must be int64, not %s", gf_dtype_name(axes->dtype));
            if (axes->rank != 1) return gf_fail(GF_ERR_INVALID, "axes must be 1-D, has rank %d", axes->rank);
            n_axes = (int)(axes->dims[0] < 0 ? 0 : axes->dims[0]);
            if (n_axes > 0 && !axes->data) return gf_fail(GF_ERR_RUNTIME, "axes are not known when the kernel runs");
            if (n_axes > x->rank)
                return gf_fail(GF_ERR_INVALID, "%d axes given for an input of rank %d", n_axes, x->rank);
            for (int i = 0; i < n_axes && !st; i++) st = mark_axis(ctx, gf_int_at(axes, i), x->rank, r);
        }
        if (n_axes == 0 && gf_attr_int(ctx->node, "noop_with_empty_axes", 0)) return GF_OK;
    } else {
        const int64_t *axes = gf_attr_ints(ctx->node, "axes", &n_axes);
        if (n_axes > x->rank) return gf_fail(GF_ERR_INVALID, "%d axes given for an input of rank %d", n_axes, x->rank);
        for (int i = 0; i < n_axes && !st; i++) st = mark_axis(ctx, axes[i], x->rank, r);
    }
    if (st) return st;
    if (n_axes == 0)
        for (int d = 0; d < x->rank; d++) r->reduced[d] = 1;
    return GF_OK;
}

static int is_mean(const gf_op_ctx *ctx) { return !strcmp(ctx->node->op_type, "ReduceMean"); }

static gf_status reduce_check(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 1, 2);
    return st ? st : gf_cuda_check_float(ctx, 0, 1);
}

static gf_status reduce_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int axes_as_input = ctx->node->opset >= (is_mean(ctx) ? 18 : 13);
    reduce_axes axes;
    gf_status st = gf_check_inputs(ctx, 1, axes_as_input ? 2 : 1);
    if (!st) st = gf_cuda_check_float(ctx, 0, 1);
    if (!st) st = read_axes(ctx, axes_as_input, &axes);
    if (st) return gf_cuda_node_context(ctx, st);
    const gf_tensor *x = ctx->inputs[0];
    return gf_cuda_reduce_sum(ctx, cu, (const float *)x->data, x->rank, x->dims, axes.reduced, is_mean(ctx),
                              (float *)ctx->outputs[0]->data);
}

extern "C" const gf_cuda_op gf_cuda_ops_reduce[] = {
    {"", "ReduceSum", 1, 0, reduce_cuda, reduce_check, GF_CUDA_HOST(1)},
    {"", "ReduceMean", 1, 0, reduce_cuda, reduce_check, GF_CUDA_HOST(1)},
    {0},
};
