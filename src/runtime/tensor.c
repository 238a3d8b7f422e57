#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t gf_dtype_size(gf_dtype t)
{
    switch (t) {
    case GF_FLOAT: case GF_INT32: case GF_UINT32: return 4;
    case GF_DOUBLE: case GF_INT64: case GF_UINT64: return 8;
    case GF_UINT8: case GF_INT8: case GF_BOOL: return 1;
    case GF_UINT16: case GF_INT16: case GF_FLOAT16: case GF_BFLOAT16: return 2;
    default: return 0;
    }
}

const char *gf_dtype_name(gf_dtype t)
{
    switch (t) {
    case GF_FLOAT: return "float32";
    case GF_UINT8: return "uint8";
    case GF_INT8: return "int8";
    case GF_UINT16: return "uint16";
    case GF_INT16: return "int16";
    case GF_INT32: return "int32";
    case GF_INT64: return "int64";
    case GF_STRING: return "string";
    case GF_BOOL: return "bool";
    case GF_FLOAT16: return "float16";
    case GF_DOUBLE: return "float64";
    case GF_UINT32: return "uint32";
    case GF_UINT64: return "uint64";
    case GF_BFLOAT16: return "bfloat16";
    default: return "undefined";
    }
}

int64_t gf_tensor_numel(const gf_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

size_t gf_tensor_nbytes(const gf_tensor *t)
{
    return (size_t)gf_tensor_numel(t) * gf_dtype_size(t->dtype);
}

gf_status gf_tensor_new(gf_tensor **out, gf_dtype dtype, int rank, const int64_t *dims)
{
    *out = NULL;
    if (rank < 0 || rank > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor rank %d is outside 0..%d", rank, GF_MAX_RANK);
    if (gf_dtype_size(dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor element type %s is not supported", gf_dtype_name(dtype));
    gf_tensor *t = calloc(1, sizeof *t);
    if (!t) return gf_fail(GF_ERR_NOMEM, "out of memory allocating a tensor");
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) {
            free(t);
            return gf_fail(GF_ERR_SHAPE, "tensor dim %d is negative (%lld)", i, (long long)dims[i]);
        }
        t->dims[i] = dims[i];
    }
    size_t n = gf_tensor_nbytes(t);
    t->data = calloc(n ? n : 1, 1);
    if (!t->data) {
        free(t);
        return gf_fail(GF_ERR_NOMEM, "out of memory allocating %zu bytes for a tensor", n);
    }
    t->owns_data = 1;
    *out = t;
    return GF_OK;
}

void gf_tensor_free(gf_tensor *t)
{
    if (!t) return;
    if (t->owns_data) free(t->data);
    free(t);
}

char *gf_shape_str(const gf_tensor *t, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "[");
    for (int i = 0; i < t->rank && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ",%lld" : "%lld", (long long)t->dims[i]);
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}
