/* Shape, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Transpose, Constant,
 * ConstantOfShape and Dropout (inference) on the GPU (twin: ops/shape.c). They move
 * bytes, so every element type works. Output shapes come from the CPU infer, which
 * reads the shape-giving inputs (Reshape's shape, Squeeze's axes, ...) on the host. */
#include "cuda_util.cuh"

#include <string.h>

static gf_tensor *out0(gf_op_ctx *ctx) { return ctx->outputs[0]; }

/* shape.c's copy_input: the output holds the input's bytes. */
static gf_status copy_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    size_t bytes = gf_tensor_nbytes(ctx->inputs[0]);
    if (bytes != gf_tensor_nbytes(out0(ctx)))
        return gf_cuda_node_fail(ctx, GF_ERR_RUNTIME, "output holds %zu bytes, input %zu", gf_tensor_nbytes(out0(ctx)),
                                 bytes);
    return gf_cuda_copy_bytes(ctx, cu, out0(ctx)->data, ctx->inputs[0]->data, bytes);
}

/* ---- Shape ---- */

static void shape_range(const gf_op_ctx *ctx, int rank, int64_t *start, int64_t *end)
{
    int64_t s = gf_attr_int(ctx->node, "start", 0), e = gf_attr_int(ctx->node, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    *start = s < 0 ? 0 : s > rank ? rank : s;
    *end = e < 0 ? 0 : e > rank ? rank : e;
}

static gf_status shape_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    int64_t start, end, dims[GF_MAX_RANK];
    shape_range(ctx, ctx->inputs[0]->rank, &start, &end);
    for (int64_t d = start; d < end; d++) dims[d - start] = ctx->inputs[0]->dims[d];
    if (end <= start) return GF_OK;
    return GF_CU(ctx, cudaMemcpyAsync(out0(ctx)->data, dims, (size_t)(end - start) * sizeof *dims,
                                      cudaMemcpyHostToDevice, cu->stream));
}

/* ---- Transpose ---- */

static gf_status read_perm(const gf_op_ctx *ctx, int rank, int *perm)
{
    int n;
    const int64_t *attr = gf_attr_ints(ctx->node, "perm", &n);
    if (!attr) {
        for (int d = 0; d < rank; d++) perm[d] = rank - 1 - d;
        return GF_OK;
    }
    if (n != rank) return gf_fail(GF_ERR_INVALID, "perm has %d entries for an input of rank %d", n, rank);
    unsigned char seen[GF_MAX_RANK] = {0};
    for (int d = 0; d < rank; d++) {
        if (attr[d] < 0 || attr[d] >= rank || seen[attr[d]])
            return gf_fail(GF_ERR_INVALID, "perm is not a permutation of 0..%d (entry %d is %lld)", rank - 1, d,
                           (long long)attr[d]);
        seen[attr[d]] = 1;
        perm[d] = (int)attr[d];
    }
    return GF_OK;
}

static gf_status transpose_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    const gf_tensor *x = ctx->inputs[0];
    int perm[GF_MAX_RANK];
    gf_status st = read_perm(ctx, x->rank, perm);
    if (st) return gf_cuda_node_context(ctx, st);
    int64_t in_strides[GF_MAX_RANK], strides[GF_MAX_RANK], s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        in_strides[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < x->rank; d++) strides[d] = in_strides[perm[d]];
    return gf_cuda_copy_strided(ctx, cu, out0(ctx)->data, NULL, x->data, strides, gf_dtype_size(x->dtype), x->rank,
                                out0(ctx)->dims);
}

/* ---- Constant, ConstantOfShape ---- */

static gf_status constant_value(const gf_node *n, gf_tensor *v)
{
    memset(v, 0, sizeof *v);
    if (n->n_attrs != 1) return gf_fail(GF_ERR_INVALID, "needs exactly one value attribute, has %d", n->n_attrs);
    const gf_attr *a = &n->attrs[0];
    if (!strcmp(a->name, "value") && a->type == GF_ATTR_TENSOR && a->t) {
        *v = *a->t;
        v->owns_data = 0;
    } else if (!strcmp(a->name, "value_float") && a->type == GF_ATTR_FLOAT) {
        v->dtype = GF_FLOAT;
        v->data = (void *)&a->f;
    } else if (!strcmp(a->name, "value_floats") && a->type == GF_ATTR_FLOATS) {
        v->dtype = GF_FLOAT;
        v->rank = 1;
        v->dims[0] = a->n;
        v->data = a->floats;
    } else if (!strcmp(a->name, "value_int") && a->type == GF_ATTR_INT) {
        v->dtype = GF_INT64;
        v->data = (void *)&a->i;
    } else if (!strcmp(a->name, "value_ints") && a->type == GF_ATTR_INTS) {
        v->dtype = GF_INT64;
        v->rank = 1;
        v->dims[0] = a->n;
        v->data = a->ints;
    } else {
        return gf_fail(GF_ERR_UNSUPPORTED, "a Constant given by attribute '%s' (sparse or string values) is not supported",
                       a->name);
    }
    if (gf_dtype_size(v->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "a Constant of element type %s is not supported", gf_dtype_name(v->dtype));
    return GF_OK;
}

static gf_status constant_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_tensor v;
    gf_status st = constant_value(ctx->node, &v);
    if (st) return gf_cuda_node_context(ctx, st);
    size_t bytes = gf_tensor_nbytes(&v);
    if (!bytes) return GF_OK;
    return GF_CU(ctx, cudaMemcpyAsync(out0(ctx)->data, v.data, bytes, cudaMemcpyHostToDevice, cu->stream));
}

static gf_status fill_value(const gf_node *n, gf_tensor *v)
{
    static const float zero = 0;
    const gf_attr *a = gf_node_attr(n, "value");
    memset(v, 0, sizeof *v);
    if (!a) {
        v->dtype = GF_FLOAT;
        v->data = (void *)&zero;
        return GF_OK;
    }
    if (a->type != GF_ATTR_TENSOR || !a->t || gf_tensor_numel(a->t) != 1)
        return gf_fail(GF_ERR_INVALID, "value must be a tensor of one element");
    if (gf_dtype_size(a->t->dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "value of element type %s is not supported", gf_dtype_name(a->t->dtype));
    *v = *a->t;
    return GF_OK;
}

static gf_status constant_of_shape_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    gf_tensor v;
    gf_status st = fill_value(ctx->node, &v);
    if (st) return gf_cuda_node_context(ctx, st);
    return gf_cuda_fill(ctx, cu, out0(ctx)->data, gf_tensor_numel(out0(ctx)), v.data, gf_dtype_size(v.dtype));
}

/* ---- Dropout (inference) ---- */

static gf_status dropout_cuda(gf_op_ctx *ctx, gf_cuda_ctx *cu)
{
    /* shape.c's dropout_training_check: training_mode (input 2, on the host) must be false */
    const gf_tensor *t = ctx->n_inputs > 2 ? ctx->inputs[2] : NULL;
    if (t) {
        if (gf_tensor_numel(t) != 1 || t->rank > 1)
            return gf_cuda_node_fail(ctx, GF_ERR_INVALID, "training_mode must be a scalar");
        if (t->data && gf_int_at(t, 0))
            return gf_cuda_node_fail(ctx, GF_ERR_UNSUPPORTED,
                                     "Dropout in training mode is not supported; only inference (identity)");
    }
    gf_status st = copy_cuda(ctx, cu);
    gf_tensor *mask = ctx->n_outputs > 1 ? ctx->outputs[1] : NULL;
    if (st || !mask) return st;
    /* every element kept: true from opset 12, zeros before (as shape.c writes) */
    unsigned char value[16] = {0};
    gf_tensor one = {mask->dtype, 0, {0}, value, 0};
    gf_num_set(&one, 0, ctx->node->opset >= 12 ? 1 : 0);
    return gf_cuda_fill(ctx, cu, mask->data, gf_tensor_numel(mask), value, gf_dtype_size(mask->dtype));
}

extern "C" const gf_cuda_op gf_cuda_ops_shape[] = {
    {"", "Shape", 1, 0, shape_cuda, NULL, 0},
    {"", "Reshape", 1, 0, copy_cuda, NULL, GF_CUDA_HOST(1)},
    {"", "Flatten", 1, 0, copy_cuda, NULL, 0},
    {"", "Squeeze", 1, 0, copy_cuda, NULL, GF_CUDA_HOST(1)},
    {"", "Unsqueeze", 1, 0, copy_cuda, NULL, GF_CUDA_HOST(1)},
    {"", "Identity", 1, 0, copy_cuda, NULL, 0},
    {"", "Transpose", 1, 0, transpose_cuda, NULL, 0},
    {"", "Constant", 1, 0, constant_cuda, NULL, 0},
    {"", "ConstantOfShape", 9, 0, constant_of_shape_cuda, NULL, GF_CUDA_HOST(0)},
    {"", "Dropout", 7, 0, dropout_cuda, NULL, GF_CUDA_HOST(1) | GF_CUDA_HOST(2)},
    {0},
};
