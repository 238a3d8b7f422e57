/* bench/train_step: the time of one training step (forward, loss, backward, SGD
 * update) of a model through the C API, on a seeded random batch; the median and
 * minimum over the timed steps, and with --profile the time per op type of the
 * training graph.
 *
 *   train_step MODEL --batch N --size HxW [--steps 10] [--warmup 2] [--threads T]
 *              [--classes K] [--profile] [--json]
 *
 * SGD with lr 0.01 and momentum 0.9 (as bench.py's PyTorch side); cross-entropy on
 * random labels below --classes (the model's output width, 1000 by default). The
 * profile reads the trainer's session, so this program includes src/train's private
 * header; it is a measuring tool, not part of the library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graft.h"
#include "train/trainer_impl.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int die(const char *what)
{
    fprintf(stderr, "train_step: %s: %s\n", what, gf_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    int batch = 8, height = 224, width = 224, steps = 10, warmup = 2, threads = 0, classes = 1000, profile = 0,
        json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--batch") && v) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--size") && v) {
            if (sscanf(argv[++i], "%dx%d", &height, &width) != 2) height = width = atoi(argv[i]);
        } else if (!strcmp(a, "--steps") && v) steps = atoi(argv[++i]);
        else if (!strcmp(a, "--warmup") && v) warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--classes") && v) classes = atoi(argv[++i]);
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] != '-' && !model_path) model_path = a;
        else {
            fprintf(stderr, "usage: train_step MODEL --batch N --size HxW [--steps 10] [--warmup 2] [--threads T] "
                            "[--classes K] [--profile] [--json]\n");
            return 2;
        }
    }
    if (!model_path || batch < 1 || steps < 1 || warmup < 0 || classes < 1) {
        fprintf(stderr, "train_step: which model (and positive --batch, --steps, --classes)?\n");
        return 2;
    }
    gf_model *m = NULL;
    if (gf_model_load(model_path, &m)) return die(model_path);
    int64_t xd[4] = {batch, 3, height, width}, yd[1] = {batch};
    gf_tensor *x = NULL, *y = NULL;
    if (gf_tensor_new(&x, GF_FLOAT, 4, xd) || gf_tensor_new(&y, GF_INT64, 1, yd)) return die("allocating the batch");
    uint64_t state = 42;
    for (int64_t k = 0; k < gf_tensor_numel(x); k++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        ((float *)x->data)[k] = (float)((state >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
    }
    for (int64_t k = 0; k < batch; k++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        ((int64_t *)y->data)[k] = (int64_t)((state >> 33) % (uint64_t)classes);
    }
    gf_train_options opt;
    gf_train_defaults(&opt, GF_OPTIM_SGD);
    opt.optim.lr = 0.01;
    opt.optim.momentum = 0.9;
    opt.session.num_threads = threads;
    opt.session.profile = profile;
    gf_trainer *t = NULL;
    if (gf_trainer_new(m, &opt, &t)) return die("creating the trainer");
    double *times = malloc((size_t)steps * sizeof *times), loss = 0, first_ms = 0;
    const gf_tensor *ins[1] = {x};
    for (int k = 0; k < warmup + steps; k++) {
        if (k == warmup && profile && t->session) gf_session_profile_reset(t->session);
        double t0 = now_ms();
        if (gf_trainer_step(t, ins, y, &loss)) return die("a training step");
        double ms = now_ms() - t0;
        if (k == 0) first_ms = ms;
        if (k >= warmup) times[k - warmup] = ms;
    }
    qsort(times, (size_t)steps, sizeof *times, by_value);
    double median = steps % 2 ? times[steps / 2] : (times[steps / 2 - 1] + times[steps / 2]) / 2;
    const gf_op_time *pt = NULL;
    int n_pt = profile ? gf_session_profile(t->session, &pt) : 0;
    double total = 0;
    for (int k = 0; k < n_pt; k++) total += pt[k].ms;
    if (json) {
        printf("{\"model\": \"%s\", \"batch\": %d, \"height\": %d, \"width\": %d, \"steps\": %d, \"median_ms\": %.6g, "
               "\"min_ms\": %.6g, \"first_ms\": %.6g, \"last_loss\": %.9g, \"gflops\": %.6g",
               model_path, batch, height, width, steps, median, times[0], first_ms, loss,
               gf_session_flops(t->session) / 1e9);
        if (profile) {
            printf(", \"profile\": [");
            for (int k = 0; k < n_pt; k++)
                printf("%s{\"op\": \"%s\", \"count\": %d, \"total_ms\": %.6g}", k ? ", " : "", pt[k].op_type,
                       pt[k].count, pt[k].ms);
            printf("]");
        }
        printf("}\n");
    } else {
        double gflop = gf_session_flops(t->session) / 1e9;
        printf("%s: batch %d at %dx%d, %d steps after %d warm-up: median %.2f ms, min %.2f ms (first step %.1f ms), "
               "loss %.9g; %.3f GFLOPs per step (%.1f GFLOP/s)\n",
               model_path, batch, height, width, steps, warmup, median, times[0], first_ms, loss, gflop,
               gflop * 1e3 / median);
        if (profile) {
            printf("\n%-24s %7s %12s %8s %10s\n", "op", "count", "total ms", "share", "ms/step");
            for (int k = 0; k < n_pt; k++)
                printf("%-24s %7d %12.3f %7.1f%% %10.3f\n", pt[k].op_type, pt[k].count, pt[k].ms,
                       total > 0 ? 100 * pt[k].ms / total : 0, pt[k].ms / steps);
        }
    }
    free(times);
    gf_trainer_free(t);
    gf_tensor_free(x);
    gf_tensor_free(y);
    gf_model_free(m);
    return 0;
}
