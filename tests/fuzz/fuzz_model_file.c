/* libFuzzer target: any bytes as an ONNX model file (gf_model_load): the file is
 * mapped, proto_scan.c's pre-pass strips the initializers' raw data and points
 * them into the mapping, and external data may be named. Beside the model lies
 * "data.bin" (4 KiB), so that external data has a file to be found in. A model
 * that loads must plan or be refused; a small plan is run too. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t bytes[4096];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 7 + 3);
    fuzz_write("data.bin", bytes, sizeof bytes);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gf_model *m;
    const char *path = fuzz_write("model.onnx", data, size);
    if (gf_model_load(path, &m)) return 0;
    fuzz_plan_and_run(m, 1, (uint32_t)size);
    gf_model_free(m);
    return 0;
}
