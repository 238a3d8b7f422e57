/* libFuzzer target: any bytes as an ONNX model. A model that loads must also
 * plan (shapes inferred, constants folded) or be refused with an error. */
#include "graft.h"

#include <stdint.h>
#include <stdlib.h>

#define MAX_INPUT_ELEMENTS (1 << 16)

/* Declared shapes with symbolic dims set to 1; NULL when a shape is unknown or large. */
static gf_tensor *input_like(gf_io_info info)
{
    if (info.rank < 0 || gf_dtype_size(info.dtype) == 0) return NULL;
    int64_t dims[GF_MAX_RANK], n = 1;
    for (int d = 0; d < info.rank; d++) {
        dims[d] = info.dims[d] < 0 ? 1 : info.dims[d];
        if (dims[d] > MAX_INPUT_ELEMENTS || (n *= dims[d]) > MAX_INPUT_ELEMENTS) return NULL;
    }
    gf_tensor *t;
    return gf_tensor_new(&t, info.dtype, info.rank, dims) ? NULL : t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gf_model *m;
    if (gf_model_load_buffer(data, size, &m)) return 0;
    int n = gf_model_num_inputs(m), ok = 1;
    gf_tensor **inputs = calloc((size_t)n + 1, sizeof *inputs);
    for (int i = 0; i < n && inputs; i++) ok &= (inputs[i] = input_like(gf_model_input(m, i))) != NULL;
    gf_session *s;
    if (inputs && ok && !gf_session_new(m, NULL, &s)) {
        gf_session_plan(s, (const gf_tensor *const *)inputs);
        gf_session_free(s);
    }
    for (int i = 0; i < n && inputs; i++) gf_tensor_free(inputs[i]);
    free(inputs);
    gf_model_free(m);
    return 0;
}
