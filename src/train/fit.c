/* Fitting: epochs over a training loader, each followed by a pass over a validation
 * loader, with the best model kept, a CSV log, plots, checkpoints and early stopping.
 *
 * An epoch's score ranks epochs: top-1 accuracy (classification) or mean IoU
 * (segmentation), on the validation set, or on the training batches (as the
 * training forward pass saw them) when there is none; mAP@0.5 (detection) on the
 * validation set only. A checkpoint is written at
 * each epoch's end and holds, besides the trainer's state, where the data stands
 * (the next epoch), the best score so far and the history the plots draw. */
#include "trainer_impl.h"

#include "../runtime/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_EPOCHS 100000

typedef struct epoch_row {
    double train_loss, train_score, val_loss, val_score, lr, seconds;
    double data_wait;           /* seconds the training pass waited in gf_loader_next */
    double train_seconds;       /* of the training pass alone (not kept in checkpoints) */
} epoch_row;

typedef struct fit_state {
    epoch_row *rows;            /* one per epoch done, resumed ones included */
    int n_rows;
    int best_epoch;             /* 1-based; 0: none yet */
    double best_score;
    int bad_epochs;             /* since the best */
} fit_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- scores ---- */

typedef struct scorer {
    gf_class_metrics *cls;
    gf_seg_metrics *seg;
    gf_det_metrics *det;
    gf_yolo_options yolo;
    int64_t added;
} scorer;

static gf_status scorer_new(const gf_fit_options *o, scorer *s)
{
    memset(s, 0, sizeof *s);
    if (o->task == GF_TASK_CLASSIFY) return gf_class_metrics_new(o->n_classes, 1, &s->cls);
    if (o->task == GF_TASK_SEGMENT) return gf_seg_metrics_new(o->n_classes, o->ignore_index, &s->seg);
    if (!o->yolo) return gf_fail(GF_ERR_INVALID, "fitting a detector needs its YOLO options (anchors, strides)");
    s->yolo = *o->yolo;
    return gf_det_metrics_new(o->n_classes, 0.5, &s->det);
}

static void scorer_free(scorer *s)
{
    gf_class_metrics_free(s->cls);
    gf_seg_metrics_free(s->seg);
    gf_det_metrics_free(s->det);
}

static void scorer_reset(scorer *s)
{
    if (s->cls) gf_class_metrics_reset(s->cls);
    if (s->seg) gf_seg_metrics_reset(s->seg);
    if (s->det) gf_det_metrics_reset(s->det);
    s->added = 0;
}

/* outputs: the model's, all of them (a detector's heads). */
static gf_status scorer_add(scorer *s, const gf_tensor *const *outputs, const gf_tensor *images, const gf_tensor *targets)
{
    s->added++;
    if (s->cls) return gf_class_metrics_add(s->cls, outputs[0], targets);
    if (s->seg) return gf_seg_metrics_add(s->seg, outputs[0], targets);
    s->yolo.input_height = (int)images->dims[2];
    s->yolo.input_width = (int)images->dims[3];
    gf_detections d = {0};
    gf_status st = gf_yolo_detect(outputs, &s->yolo, &d);
    if (!st) st = gf_det_metrics_add(s->det, &d, targets);
    gf_detections_free(&d);
    return st;
}

static double scorer_value(scorer *s)
{
    if (!s->added) return NAN;
    if (s->cls) {
        gf_class_report r;
        gf_class_metrics_report(s->cls, &r);
        return r.accuracy;
    }
    if (s->seg) {
        gf_seg_report r;
        gf_seg_metrics_report(s->seg, &r);
        return r.mean_iou;
    }
    gf_det_report r;
    return gf_det_metrics_report(s->det, &r) ? NAN : r.map;
}

/* ---- progress ---- */

static void show_progress(const gf_fit_options *o, const char *phase, int epoch, int64_t done, int64_t total,
                          int64_t images, double started, double loss)
{
    if (!o->progress) return;
    double elapsed = now_s() - started, rate = elapsed > 0 ? (double)images / elapsed : 0;
    double eta = done ? elapsed * (double)(total - done) / (double)done : 0;
    int tty = isatty(2), width = 24, filled = total ? (int)(width * done / total) : width;
    /* On a terminal one line redrawn; elsewhere (a log) a line each tenth of the epoch. */
    if (!tty && done != total && done * 10 / total == (done - 1) * 10 / total) return;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "%sepoch %d/%d %s [%s] %lld/%lld  %.1f img/s  ETA %d:%02d  loss %.4f%s", tty ? "\r" : "", epoch,
            o->epochs, phase, bar, (long long)done, (long long)total, rate, (int)eta / 60, (int)eta % 60, loss,
            tty ? "\033[K" : "\n");
    if (tty && done == total) fputc('\n', stderr);
}

/* ---- one epoch ---- */

static gf_status train_epoch(gf_trainer *t, gf_loader *l, const gf_fit_options *o, int epoch, scorer *sc,
                             epoch_row *row)
{
    int64_t n = gf_loader_batches_per_epoch(l), images = 0;
    double started = now_s(), sum = 0;
    scorer_reset(sc);
    gf_status st = GF_OK;
    row->data_wait = 0;
    /* Batch b + 1 is taken and staged before batch b's step, so that on a GPU its copy
     * overlaps that step. */
    gf_batch batch = {0}, next = {0};
    double asked = now_s();
    st = gf_loader_next(l, &next);
    row->data_wait += now_s() - asked;
    for (int64_t b = 0; b < n && !st; b++) {
        batch = next;
        next = (gf_batch){0};
        if (b + 1 < n) {
            asked = now_s();
            st = gf_loader_next(l, &next);
            row->data_wait += now_s() - asked;
            const gf_tensor *coming[1] = {next.images};
            if (!st) st = gf_trainer_stage(t, coming, next.targets);
            if (st) break;
        }
        const gf_tensor *in[1] = {batch.images};
        double loss;
        st = gf_trainer_step(t, in, batch.targets, &loss);
        /* a detector is scored on validation only: its training heads are not decoded */
        const gf_tensor *out[1] = {gf_trainer_output(t)};
        if (!st && !sc->det) st = scorer_add(sc, out, batch.images, batch.targets);
        if (!st && !o->sched_per_epoch) gf_trainer_schedule_step(t, loss);
        images += batch.images->dims[0];
        gf_batch_free(&batch);
        sum += loss;
        show_progress(o, "train", epoch, b + 1, n, images, started, sum / (double)(b + 1));
    }
    gf_batch_free(&batch);
    gf_batch_free(&next);
    row->train_loss = n ? sum / (double)n : NAN;
    row->train_score = scorer_value(sc);
    row->train_seconds = now_s() - started;
    return st;
}

static gf_status validate(gf_trainer *t, gf_loader *l, const gf_fit_options *o, int epoch, scorer *sc,
                          epoch_row *row)
{
    int64_t n = gf_loader_batches_per_epoch(l), images = 0;
    double started = now_s(), sum = 0;
    scorer_reset(sc);
    gf_status st = GF_OK;
    for (int64_t b = 0; b < n && !st; b++) {
        gf_batch batch;
        if ((st = gf_loader_next(l, &batch))) break;
        const gf_tensor *in[1] = {batch.images};
        double loss;
        gf_tensor *outputs[64] = {NULL};
        st = gf_trainer_evaluate(t, in, batch.targets, &loss, outputs);
        if (!st) st = scorer_add(sc, (const gf_tensor *const *)outputs, batch.images, batch.targets);
        images += batch.images->dims[0];
        for (int k = 0; k < 64; k++) gf_tensor_free(outputs[k]);
        gf_batch_free(&batch);
        sum += loss;
        show_progress(o, "val  ", epoch, b + 1, n, images, started, sum / (double)(b + 1));
    }
    row->val_loss = n ? sum / (double)n : NAN;
    row->val_score = scorer_value(sc);
    return st;
}

/* ---- records: log, plots, checkpoint ---- */

static const char *score_name(gf_task task)
{
    return task == GF_TASK_SEGMENT ? "miou" : task == GF_TASK_DETECT ? "map50" : "top1";
}

static gf_status write_log(const gf_fit_options *o, const fit_state *fs)
{
    FILE *f = fopen(o->log_path, "w");
    if (!f) return gf_fail(GF_ERR_IO, "%s: cannot create: %s", o->log_path, strerror(errno));
    const char *score = score_name(o->task);
    fprintf(f, "epoch,train_loss,train_%s,val_loss,val_%s,lr,seconds,data_wait_s\n", score, score);
    for (int e = 0; e < fs->n_rows; e++) {
        const epoch_row *r = &fs->rows[e];
        fprintf(f, "%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f,%.3f\n", e + 1, r->train_loss, r->train_score, r->val_loss,
                r->val_score, r->lr, r->seconds, r->data_wait);
    }
    int bad = ferror(f);
    if (fclose(f) || bad) return gf_fail(GF_ERR_IO, "%s: cannot write: %s", o->log_path, strerror(errno));
    return GF_OK;
}

/* One chart of up to two series picked from the rows by offset. */
static gf_status plot(const gf_fit_options *o, const fit_state *fs, const char *file, const char *title,
                      const char *y_label, const char *name1, size_t off1, const char *name2, size_t off2)
{
    int n = fs->n_rows;
    double *y = malloc(2 * (size_t)n * sizeof *y);
    if (!y) return gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int e = 0; e < n; e++) {
        y[e] = *(const double *)((const char *)&fs->rows[e] + off1);
        y[n + e] = name2 ? *(const double *)((const char *)&fs->rows[e] + off2) : NAN;
    }
    gf_series series[2] = {{name1, NULL, y, n}, {name2, NULL, y + n, n}};
    gf_chart chart = {title, "epoch", y_label, series, name2 ? 2 : 1, 0, 0};
    gf_image img = {0};
    gf_status st = gf_plot_lines(&chart, &img, NULL);
    char path[4096];
    if (!st && snprintf(path, sizeof path, "%s/%s", o->plot_dir, file) >= (int)sizeof path)
        st = gf_fail(GF_ERR_INVALID, "%s: the folder's name is too long", o->plot_dir);
    if (!st) st = gf_image_save_png(&img, path);
    gf_image_free(&img);
    free(y);
    return st;
}

static gf_status draw_plots(const gf_fit_options *o, const fit_state *fs, int has_val)
{
    if (mkdir(o->plot_dir, 0777) && errno != EEXIST)
        return gf_fail(GF_ERR_IO, "%s: cannot create the folder: %s", o->plot_dir, strerror(errno));
    const char *score = o->task == GF_TASK_SEGMENT ? "mean IoU" : o->task == GF_TASK_DETECT ? "mAP@0.5" : "top-1 accuracy";
    gf_status st = plot(o, fs, "loss.png", "loss", "loss", "train", offsetof(epoch_row, train_loss),
                        has_val ? "validation" : NULL, offsetof(epoch_row, val_loss));
    if (!st) st = plot(o, fs, "score.png", score, score, "train", offsetof(epoch_row, train_score),
                       has_val ? "validation" : NULL, offsetof(epoch_row, val_score));
    if (!st) st = plot(o, fs, "lr.png", "learning rate", "lr", "lr", offsetof(epoch_row, lr), NULL, 0);
    return st;
}

/* The history as text: one "train_loss train_score val_loss val_score lr seconds data_wait"
 * line an epoch. */
static char *format_history(const fit_state *fs)
{
    size_t cap = (size_t)fs->n_rows * 7 * 26 + 1, at = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    text[0] = 0;
    for (int e = 0; e < fs->n_rows; e++) {
        const epoch_row *r = &fs->rows[e];
        at += (size_t)snprintf(text + at, cap - at, "%.17g %.17g %.17g %.17g %.17g %.3f %.3f\n", r->train_loss,
                               r->train_score, r->val_loss, r->val_score, r->lr, r->seconds, r->data_wait);
    }
    return text;
}

static gf_status save_checkpoint(gf_trainer *t, const gf_fit_options *o, gf_loader *train, const fit_state *fs)
{
    char epoch[32], index[32], best[64], best_epoch[32], bad[32];
    int64_t e, i;
    gf_loader_position(train, &e, &i);
    snprintf(epoch, sizeof epoch, "%lld", (long long)e);
    snprintf(index, sizeof index, "%lld", (long long)i);
    snprintf(best, sizeof best, "%.17g", fs->best_score);
    snprintf(best_epoch, sizeof best_epoch, "%d", fs->best_epoch);
    snprintf(bad, sizeof bad, "%d", fs->bad_epochs);
    char *history = format_history(fs);
    if (!history) return gf_fail(GF_ERR_NOMEM, "out of memory");
    const char *keys[] = {"graft.fit.epoch", "graft.fit.index", "graft.fit.best", "graft.fit.best_epoch",
                          "graft.fit.bad_epochs", "graft.fit.history"};
    const char *values[] = {epoch, index, best, best_epoch, bad, history};
    gf_status st = gf_trainer_save_checkpoint(t, o->checkpoint_path, 6, keys, values);
    free(history);
    return st;
}

static gf_status grow_rows(fit_state *fs, int n)
{
    epoch_row *rows = realloc(fs->rows, ((size_t)n + 1) * sizeof *rows);
    if (!rows) return gf_fail(GF_ERR_NOMEM, "out of memory");
    fs->rows = rows;
    return GF_OK;
}

/* Where a resumed run stands: what the checkpoint's writer, gf_fit, stored. */
static gf_status resume(gf_trainer *t, gf_loader *train, fit_state *fs)
{
    const char *epoch = gf_trainer_checkpoint_value(t, "graft.fit.epoch");
    const char *index = gf_trainer_checkpoint_value(t, "graft.fit.index");
    const char *best = gf_trainer_checkpoint_value(t, "graft.fit.best");
    const char *best_epoch = gf_trainer_checkpoint_value(t, "graft.fit.best_epoch");
    const char *bad = gf_trainer_checkpoint_value(t, "graft.fit.bad_epochs");
    const char *history = gf_trainer_checkpoint_value(t, "graft.fit.history");
    if (!epoch) return GF_OK; /* no checkpoint, or one of training on tensors: start at the start */
    if (!index || !best || !best_epoch || !bad || !history)
        return gf_fail(GF_ERR_INVALID, "%s: the checkpoint's fitting state is incomplete", t->resume->path);
    fs->best_score = strtod(best, NULL);
    fs->best_epoch = atoi(best_epoch);
    fs->bad_epochs = atoi(bad);
    for (const char *line = history; *line;) {
        epoch_row r = {.train_seconds = NAN};
        if (sscanf(line, "%lf %lf %lf %lf %lf %lf %lf", &r.train_loss, &r.train_score, &r.val_loss, &r.val_score,
                   &r.lr, &r.seconds, &r.data_wait) != 7)
            return gf_fail(GF_ERR_INVALID, "%s: the checkpoint's history is malformed", t->resume->path);
        gf_status st = grow_rows(fs, fs->n_rows + 1);
        if (st) return st;
        fs->rows[fs->n_rows++] = r;
        const char *next = strchr(line, '\n');
        line = next ? next + 1 : line + strlen(line);
    }
    return gf_loader_seek(train, strtoll(epoch, NULL, 10), strtoll(index, NULL, 10));
}

/* Better: a higher score (a NaN never is). */
static int improves(const fit_state *fs, double score) { return !isnan(score) && (!fs->best_epoch || score > fs->best_score); }

gf_status gf_fit(gf_trainer *t, gf_loader *train, gf_loader *val, const gf_fit_options *o, gf_fit_result *out)
{
    memset(out, 0, sizeof *out);
    if (o->epochs < 1 || o->epochs > MAX_EPOCHS)
        return gf_fail(GF_ERR_INVALID, "epochs must be from 1 to %d, not %d", MAX_EPOCHS, o->epochs);
    fit_state fs = {0};
    scorer sc;
    gf_status st = scorer_new(o, &sc);
    if (!st) st = resume(t, train, &fs);
    while (!st && fs.n_rows < o->epochs) {
        int epoch = fs.n_rows + 1;
        double started = now_s();
        epoch_row row = {.val_loss = NAN, .val_score = NAN, .lr = gf_trainer_lr(t)};
        if ((st = train_epoch(t, train, o, epoch, &sc, &row))) break;
        if (val && (st = validate(t, val, o, epoch, &sc, &row))) break;
        if (o->sched_per_epoch) gf_trainer_schedule_step(t, val ? row.val_loss : row.train_loss);
        row.seconds = now_s() - started;
        if ((st = grow_rows(&fs, epoch))) break;
        fs.rows[fs.n_rows++] = row;
        out->epochs_run++;
        double score = val ? row.val_score : row.train_score;
        int best = improves(&fs, score);
        if (best) {
            fs.best_epoch = epoch;
            fs.best_score = score;
            fs.bad_epochs = 0;
            if (o->best_path) st = gf_trainer_sync_model(t);
            if (!st && o->best_path) st = gf_model_save(t->model, o->best_path);
        } else {
            fs.bad_epochs++;
        }
        if (o->progress) {
            fprintf(stderr, "epoch %d/%d: train loss %.4f %s %.4f", epoch, o->epochs, row.train_loss,
                    score_name(o->task), row.train_score);
            if (val) fprintf(stderr, "  val loss %.4f %s %.4f", row.val_loss, score_name(o->task), row.val_score);
            fprintf(stderr, "  %.1f s (waited %.1f s for data)%s\n", row.seconds, row.data_wait,
                    best ? "  best so far" : "");
        }
        if (!st && o->log_path) st = write_log(o, &fs);
        if (!st && o->plot_dir) st = draw_plots(o, &fs, val != NULL);
        if (!st && o->checkpoint_path) st = save_checkpoint(t, o, train, &fs);
        if (!st && o->early_stop && fs.bad_epochs >= o->early_stop) {
            out->stopped_early = 1;
            break;
        }
    }
    /* No epoch had a score (a detector without a validation set): the last one is kept. */
    if (!st && o->best_path && !fs.best_epoch && out->epochs_run) {
        st = gf_trainer_sync_model(t);
        if (!st) st = gf_model_save(t->model, o->best_path);
    }
    if (fs.n_rows) {
        const epoch_row *last = &fs.rows[fs.n_rows - 1];
        out->last_train_loss = last->train_loss;
        out->last_train_score = last->train_score;
        out->last_val_loss = last->val_loss;
        out->last_val_score = last->val_score;
        out->last_data_wait_share = last->data_wait / last->train_seconds;
    }
    out->epochs_done = fs.n_rows;
    out->best_epoch = fs.best_epoch;
    out->best_score = fs.best_score;
    scorer_free(&sc);
    free(fs.rows);
    return st;
}
