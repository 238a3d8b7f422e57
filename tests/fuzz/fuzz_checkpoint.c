/* libFuzzer target: any bytes as a training checkpoint of models/onnx/tiny_cnn_bn
 * (gf_trainer_load_checkpoint, what `graft train --resume` reads), for an SGD with
 * momentum and an Adam trainer. A checkpoint that loads must also train a step (its
 * optimizer state applied) and be written again. */
#include "fuzz_common.h"

#ifndef GRAFT_TINY_CNN_BN
#error "GRAFT_TINY_CNN_BN: the path of models/onnx/tiny_cnn/tiny_cnn_bn/model.onnx"
#endif

static gf_tensor *x, *y;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const int64_t xd[4] = {2, 3, 12, 12}, yd[1] = {2};
    if (gf_tensor_new(&x, GF_FLOAT, 4, xd) || gf_tensor_new(&y, GF_INT64, 1, yd)) abort();
    for (int i = 0; i < 2 * 3 * 12 * 12; i++) ((float *)x->data)[i] = (float)(i % 13) / 13.0f - 0.5f;
    ((int64_t *)y->data)[1] = 7;
    gf_model *m;
    if (gf_model_load(GRAFT_TINY_CNN_BN, &m)) {
        fprintf(stderr, "%s\n", gf_last_error());
        abort();
    }
    gf_model_free(m);
    return 0;
}

static void try_resume(const char *path, gf_optimizer kind)
{
    gf_model *m;
    gf_trainer *t;
    if (gf_model_load(GRAFT_TINY_CNN_BN, &m)) abort();
    gf_train_options opt;
    gf_train_defaults(&opt, kind);
    opt.optim.momentum = kind == GF_OPTIM_SGD ? 0.9 : opt.optim.momentum;
    opt.session.num_threads = 1;
    if (gf_trainer_new(m, &opt, &t)) abort();
    if (!gf_trainer_load_checkpoint(t, path)) {
        const gf_tensor *in[1] = {x};
        double loss;
        if (!gf_trainer_step(t, in, y, &loss)) {
            char out[8192];
            snprintf(out, sizeof out, "%s/again.onnx", fuzz_scratch());
            if (gf_trainer_save_checkpoint(t, out, 0, NULL, NULL)) {
                fprintf(stderr, "a resumed checkpoint does not save again: %s\n", gf_last_error());
                abort();
            }
        }
    }
    gf_trainer_free(t);
    gf_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("checkpoint.onnx", data, size);
    try_resume(path, GF_OPTIM_SGD);
    try_resume(path, GF_OPTIM_ADAM);
    return 0;
}
