/* libFuzzer target: any bytes as an ONNX TensorProto file (gf_tensor_read_pb, what
 * `graft run --input` and `graft train --inputs` read). A tensor that reads must
 * write back and read again as the same dtype, shape and bytes. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("tensor.pb", data, size);
    gf_tensor *t = NULL, *again = NULL;
    char *name = NULL, *name2 = NULL;
    if (gf_tensor_read_pb(path, &t, &name)) return 0;
    char out[8192];
    snprintf(out, sizeof out, "%s/again.pb", fuzz_scratch());
    if (gf_tensor_write_pb(out, t, name)) abort();
    if (gf_tensor_read_pb(out, &again, &name2)) abort();
    if (again->dtype != t->dtype || again->rank != t->rank || memcmp(again->dims, t->dims, sizeof t->dims[0] * t->rank) ||
        gf_tensor_nbytes(again) != gf_tensor_nbytes(t) || memcmp(again->data, t->data, gf_tensor_nbytes(t)) ||
        strcmp(name ? name : "", name2 ? name2 : ""))
        abort();
    gf_tensor_free(t);
    gf_tensor_free(again);
    free(name);
    free(name2);
    return 0;
}
