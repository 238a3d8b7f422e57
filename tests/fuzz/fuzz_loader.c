/* libFuzzer target: any bytes as an ONNX model in memory (gf_model_load_buffer).
 * A model that loads must also plan (shapes inferred, constants folded) or be
 * refused with an error. fuzz_model_file.c takes the mapped-file path. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gf_model *m;
    if (gf_model_load_buffer(data, size, &m)) return 0;
    fuzz_plan_and_run(m, 0, (uint32_t)size);
    gf_model_free(m);
    return 0;
}
