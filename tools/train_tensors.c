/* graft train MODEL --inputs X.pb --labels Y.pb: finetunes on tensors (a whole data
 * set or one batch, first axis the samples) and writes the trained model as ONNX. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "runtime/error.h"
#include "train_args.h"

/* ---- batches ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The epoch's sample order: 0..n-1, or a seeded Fisher-Yates shuffle of it. */
static void epoch_order(int64_t *order, int64_t n, int shuffle, uint64_t *rng)
{
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; shuffle && i > 0; i--) {
        int64_t j = (int64_t)(splitmix64(rng) % (uint64_t)(i + 1));
        int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* Copies samples order[0..count) of `all` into `batch` (first dim set to count). */
static void gather(const gf_tensor *all, const int64_t *order, int64_t count, gf_tensor *batch)
{
    size_t row = all->dims[0] ? gf_tensor_nbytes(all) / (size_t)all->dims[0] : 0;
    void *storage = batch->data;
    *batch = *all;
    batch->data = storage;
    batch->owns_data = 0;
    batch->dims[0] = count;
    for (int64_t i = 0; i < count; i++)
        memcpy((char *)batch->data + (size_t)i * row, (const char *)all->data + (size_t)order[i] * row, row);
}

/* Share of samples whose arg-max class is the label; -1 when not a classification. */
static double batch_accuracy(const gf_tensor *logits, const gf_tensor *labels)
{
    if (!logits || logits->dtype != GF_FLOAT || logits->rank != 2 || labels->dtype != GF_INT64 || labels->rank != 1)
        return -1;
    int64_t n = logits->dims[0], c = logits->dims[1], right = 0;
    const float *x = logits->data;
    const int64_t *y = labels->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (x[i * c + k] > x[i * c + best]) best = k;
        right += best == y[i];
    }
    return n ? (double)right / (double)n : -1;
}

/* Class labels must name one of the model's classes (or be the ignored label). */
static gf_status check_labels(const gf_model *m, const gf_tensor *y, const train_args *a)
{
    gf_io_info out = gf_model_output(m, 0);
    int classy = a->opt.loss.kind == GF_LOSS_CROSS_ENTROPY || a->opt.loss.kind == GF_LOSS_NLL;
    if (!classy) return GF_OK;
    if (y->dtype != GF_INT64)
        return gf_fail(GF_ERR_INVALID, "%s: class labels must be int64, not %s", a->labels, gf_dtype_name(y->dtype));
    int64_t classes = out.rank >= 2 ? out.dims[1] : -1;
    const int64_t *label = y->data;
    for (int64_t i = 0, n = gf_tensor_numel(y); i < n; i++) {
        if (label[i] == a->opt.loss.ignore_index) continue;
        if (label[i] < 0 || (classes > 0 && label[i] >= classes))
            return gf_fail(GF_ERR_INVALID, "%s: label %lld (sample %lld) is not a class of %s, whose output '%s' has "
                           "%lld classes%s", a->labels, (long long)label[i], (long long)(i / (n / y->dims[0])),
                           a->model, out.name, (long long)classes,
                           label[i] >= classes ? "; --replace-head N gives it a new head of N classes" : "");
    }
    return GF_OK;
}

static gf_status check_data(const gf_tensor *x, const gf_tensor *y, const train_args *a)
{
    if (x->rank < 1 || y->rank < 1 || x->dims[0] != y->dims[0] || x->dims[0] == 0)
        return gf_fail(GF_ERR_SHAPE, "%s and %s must hold the same number (> 0) of samples along their first axis "
                       "(%lld and %lld)", a->inputs, a->labels, (long long)(x->rank ? x->dims[0] : 0),
                       (long long)(y->rank ? y->dims[0] : 0));
    return GF_OK;
}

typedef struct train_run {
    gf_model *model;
    gf_trainer *trainer;
    gf_tensor *x, *y, xb, yb;
    int64_t *order;
    FILE *log;
    uint64_t rng, epoch_rng;   /* the shuffle's state now, and when this epoch's order was drawn */
} train_run;

/* What a checkpoint adds to the trainer's own state: where the data order stands. */
static gf_status save_checkpoint(train_run *r, const train_args *a)
{
    char rng[32], epoch_rng[32], samples[32];
    snprintf(rng, sizeof rng, "%llu", (unsigned long long)r->rng);
    snprintf(epoch_rng, sizeof epoch_rng, "%llu", (unsigned long long)r->epoch_rng);
    snprintf(samples, sizeof samples, "%lld", (long long)r->x->dims[0]);
    const char *keys[] = {"graft.train.rng", "graft.train.epoch_rng", "graft.train.samples"};
    const char *values[] = {rng, epoch_rng, samples};
    return gf_trainer_save_checkpoint(r->trainer, a->checkpoint, 3, keys, values);
}

static gf_status resume(train_run *r, const train_args *a, int64_t per_epoch)
{
    gf_status st = gf_trainer_load_checkpoint(r->trainer, a->resume);
    if (st) return st;
    const char *rng = gf_trainer_checkpoint_value(r->trainer, "graft.train.rng");
    const char *epoch_rng = gf_trainer_checkpoint_value(r->trainer, "graft.train.epoch_rng");
    const char *samples = gf_trainer_checkpoint_value(r->trainer, "graft.train.samples");
    if (!rng || !epoch_rng || !samples)
        return gf_fail(GF_ERR_INVALID, "%s: not written by graft train (no data position in it)", a->resume);
    if (strtoll(samples, NULL, 10) != r->x->dims[0])
        return gf_fail(GF_ERR_INVALID, "%s was trained on %s samples; %s holds %lld", a->resume, samples, a->inputs,
                       (long long)r->x->dims[0]);
    r->rng = strtoull(rng, NULL, 10);
    r->epoch_rng = strtoull(epoch_rng, NULL, 10);
    if (gf_trainer_steps_done(r->trainer) % per_epoch) {
        /* Mid-epoch: draw this epoch's order again, as it was. */
        r->rng = r->epoch_rng;
        epoch_order(r->order, r->x->dims[0], a->shuffle, &r->rng);
    }
    return GF_OK;
}

/* The batch of step s (0 first): drawn from this epoch's order, reshuffled at each epoch's start. */
static void next_batch(train_run *r, const train_args *a, int64_t s, int64_t per_epoch)
{
    int64_t n = r->x->dims[0], at = (s % per_epoch) * a->batch;
    if (at == 0) {
        r->epoch_rng = r->rng;
        epoch_order(r->order, n, a->shuffle, &r->rng);
    }
    int64_t count = n - at < a->batch ? n - at : a->batch;
    gather(r->x, r->order + at, count, &r->xb);
    gather(r->y, r->order + at, count, &r->yb);
}

/* The run in one line: on stderr, or as a JSON object on stdout with --json. */
static void print_summary(const train_args *a, int64_t steps, double ms, double last_loss)
{
    struct rusage ru;
    double peak_mib = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024 : 0;
    if (a->json)
        printf("{\"steps\": %lld, \"last_loss\": %.9g, \"seconds\": %.3f, \"peak_rss_mib\": %.1f}\n",
               (long long)steps, last_loss, ms / 1e3, peak_mib);
    else if (!a->quiet)
        fprintf(stderr, "trained %lld steps in %.1f s; last loss %.6f; peak resident memory %.0f MiB\n",
                (long long)steps, ms / 1e3, last_loss, peak_mib);
}

static gf_status train_loop(train_run *r, const train_args *a)
{
    int64_t n = r->x->dims[0], per_epoch = (n + a->batch - 1) / a->batch;
    int64_t steps = a->steps ? a->steps : per_epoch;
    r->rng = a->seed ^ 0x5DEECE66Dull;
    gf_status st = a->sched ? gf_trainer_set_schedule(r->trainer, a->sched) : GF_OK;
    if (!st && a->resume) st = resume(r, a, per_epoch);
    int64_t first = gf_trainer_steps_done(r->trainer);
    if (!st && a->unfreeze_at && first >= a->unfreeze_at) st = gf_trainer_set_trainable(r->trainer, NULL, 0, NULL, 0, NULL);
    if (!st && r->log && ftell(r->log) == 0) fprintf(r->log, "step,epoch,loss,lr,accuracy\n");
    double t0 = cli_now_ms(), epoch_loss = 0, last_loss = NAN;
    for (int64_t s = first; s < steps && !st; s++) {
        int64_t epoch = s / per_epoch;
        if (a->unfreeze_at && s + 1 == a->unfreeze_at &&
            (st = gf_trainer_set_trainable(r->trainer, NULL, 0, NULL, 0, NULL)))
            break;
        next_batch(r, a, s, per_epoch);
        const gf_tensor *in[1] = {&r->xb};
        double loss, lr = gf_trainer_lr(r->trainer);
        if ((st = gf_trainer_step(r->trainer, in, &r->yb, &loss))) break;
        epoch_loss += loss;
        last_loss = loss;
        int epoch_ends = (s + 1) % per_epoch == 0 || s + 1 == steps;
        if (!a->sched_per_epoch) gf_trainer_schedule_step(r->trainer, loss);
        else if (epoch_ends) {
            /* Plateau watches the epoch's mean loss. */
            gf_trainer_schedule_step(r->trainer, epoch_loss / (double)(s % per_epoch + 1));
        }
        if (epoch_ends) epoch_loss = 0;
        double acc = batch_accuracy(gf_trainer_output(r->trainer), &r->yb);
        if (r->log) {
            fprintf(r->log, "%lld,%lld,%.9g,%.9g,", (long long)s + 1, (long long)epoch + 1, loss, lr);
            if (acc >= 0) fprintf(r->log, "%.6f", acc);
            fputc('\n', r->log);
        }
        if (!a->quiet) {
            fprintf(stderr, "step %lld/%lld  epoch %lld  loss %.6f  lr %.3g", (long long)s + 1, (long long)steps,
                    (long long)epoch + 1, loss, lr);
            if (acc >= 0) fprintf(stderr, "  batch accuracy %.3f", acc);
            fprintf(stderr, "  %.1f ms/step\n", (cli_now_ms() - t0) / (double)(s + 1 - first));
        }
        if (a->checkpoint && a->checkpoint_every && (s + 1) % a->checkpoint_every == 0) st = save_checkpoint(r, a);
    }
    if (!st && a->checkpoint) st = save_checkpoint(r, a);
    if (!st && r->log && fflush(r->log)) st = gf_fail(GF_ERR_IO, "%s: cannot write: %s", a->log, strerror(errno));
    if (!st) print_summary(a, steps - first, cli_now_ms() - t0, last_loss);
    return st;
}

/* The LR range test: one step at each rate of an exponential ramp, from the model's
 * weights as they are (the weights move; nothing is written). Prints each rate's loss
 * and the suggested rate. */
static gf_status find_lr(train_run *r, const train_args *a)
{
    int64_t n = r->x->dims[0], per_epoch = (n + a->batch - 1) / a->batch, steps = a->find_lr_steps;
    double *lrs = malloc((size_t)steps * sizeof *lrs), *losses = malloc((size_t)steps * sizeof *losses);
    if (!lrs || !losses) {
        free(lrs);
        free(losses);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    r->rng = a->seed ^ 0x5DEECE66Dull;
    gf_status st = GF_OK;
    int done = 0;
    if (r->log) fprintf(r->log, "step,lr,loss\n");
    for (int64_t s = 0; s < steps && !st; s++) {
        lrs[s] = gf_lr_range_at(a->find_lr_start, a->find_lr_end, steps, s);
        gf_trainer_set_lr(r->trainer, lrs[s]);
        next_batch(r, a, s, per_epoch);
        const gf_tensor *in[1] = {&r->xb};
        st = gf_trainer_step(r->trainer, in, &r->yb, &losses[s]);
        if (st && strstr(gf_last_error(), "not finite")) {
            st = GF_OK; /* diverged: the test ends here */
            break;
        }
        if (!st) done++;
        if (!st && r->log) fprintf(r->log, "%lld,%.9g,%.9g\n", (long long)s + 1, lrs[s], losses[s]);
        if (!st && !a->quiet) fprintf(stderr, "lr %.3e  loss %.6f\n", lrs[s], losses[s]);
    }
    double best = 0;
    if (!st) st = gf_lr_range_suggest(lrs, losses, done, &best);
    if (!st) printf(a->json ? "{\"suggested_lr\": %.6g, \"steps\": %d}\n" : "suggested lr: %.3g (%d steps)\n", best,
                    done);
    free(lrs);
    free(losses);
    return st;
}

int train_on_tensors(train_args *args)
{
    train_args a = *args;
    train_run r = {0};
    char *name = NULL;
    gf_status st = gf_model_load(a.model, &r.model);
    if (!st && gf_model_num_inputs(r.model) != 1)
        st = gf_fail(GF_ERR_UNSUPPORTED, "%s: training from the command line takes models with one input (this one has %d)",
                     a.model, gf_model_num_inputs(r.model));
    if (!st && a.replace_head) st = gf_model_replace_head(r.model, a.replace_head, a.seed);
    if (!st) st = gf_tensor_read_pb(a.inputs, &r.x, &name);
    free(name);
    name = NULL;
    if (!st) st = gf_tensor_read_pb(a.labels, &r.y, &name);
    free(name);
    if (!st) st = check_data(r.x, r.y, &a);
    if (!st) st = check_labels(r.model, r.y, &a);
    if (!st && !(r.order = malloc((size_t)r.x->dims[0] * sizeof *r.order))) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) {
        int64_t b = r.x->dims[0] < a.batch ? r.x->dims[0] : a.batch;
        r.xb.data = malloc(gf_tensor_nbytes(r.x) / (size_t)r.x->dims[0] * (size_t)b + 1);
        r.yb.data = malloc(gf_tensor_nbytes(r.y) / (size_t)r.y->dims[0] * (size_t)b + 1);
        if (!r.xb.data || !r.yb.data) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    if (!st && a.log && !(r.log = fopen(a.log, a.resume ? "a" : "w"))) st = gf_fail(GF_ERR_IO, "%s: cannot create: %s", a.log, strerror(errno));
    if (!st) st = gf_trainer_new(r.model, &a.opt, &r.trainer);
    if (!st) st = a.find_lr ? find_lr(&r, &a) : train_loop(&r, &a);
    if (!st && a.out && !a.find_lr) st = gf_trainer_sync_model(r.trainer);
    if (!st && a.out && !a.find_lr) st = gf_model_save(r.model, a.out);
    if (!st && a.out && !a.quiet) fprintf(stderr, "wrote %s\n", a.out);
    int rc = st ? cli_fail() : 0;
    if (r.log) fclose(r.log);
    gf_trainer_free(r.trainer);
    free(r.xb.data);
    free(r.yb.data);
    free(r.order);
    gf_tensor_free(r.x);
    gf_tensor_free(r.y);
    gf_model_free(r.model);
    return rc;
}
