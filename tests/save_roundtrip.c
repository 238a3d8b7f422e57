/* Loads a model and saves it again: the saver's test driver.
 *
 * usage: save_roundtrip IN.onnx OUT.onnx [EXTRA_NAME...]
 *
 * Each EXTRA_NAME is saved as an extra initializer (as a checkpoint saves optimizer
 * state): float32 [2,3] holding k*10 + 0..5 for the k-th name; with extras the file
 * also gets metadata saver.extras=<count> and graft.step=7. */
#include "graft.h"
#include "runtime/saver.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_EXTRAS 8

static gf_status save_with_extras(const gf_model *m, const char *path, int n, char **names)
{
    static const int64_t dims[2] = {2, 3};
    gf_tensor *tensors[MAX_EXTRAS] = {0};
    gf_status st = GF_OK;
    for (int k = 0; k < n && !st; k++) {
        st = gf_tensor_new(&tensors[k], GF_FLOAT, 2, dims);
        for (int i = 0; !st && i < 6; i++) ((float *)tensors[k]->data)[i] = (float)(k * 10 + i);
    }
    char count[16];
    snprintf(count, sizeof count, "%d", n);
    const char *keys[] = {"saver.extras", "graft.step"}, *values[] = {count, "7"};
    if (!st)
        st = gf_model_save_extra(m, path, n, (const char *const *)names, (const gf_tensor *const *)tensors, 2, keys,
                                 values);
    for (int k = 0; k < n; k++) gf_tensor_free(tensors[k]);
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 3 + MAX_EXTRAS) {
        fprintf(stderr, "usage: %s IN.onnx OUT.onnx [EXTRA_NAME...] (at most %d)\n", argv[0], MAX_EXTRAS);
        return 2;
    }
    gf_model *m = NULL;
    gf_status st = gf_model_load(argv[1], &m);
    if (!st) st = argc > 3 ? save_with_extras(m, argv[2], argc - 3, argv + 3) : gf_model_save(m, argv[2]);
    if (st) fprintf(stderr, "%s\n", gf_last_error());
    gf_model_free(m);
    return st ? 1 : 0;
}
