/* graft eval MODEL --data DIR: the model's scores on a data set — top-1/top-k,
 * per-class accuracy, precision/recall/F1 and the confusion matrix for a classifier;
 * pixel accuracy and IoU for segmentation; mAP@0.5 for a YOLOv3 detector — with a
 * report folder of pictures (the confusion matrix, mask or box overlays). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "runtime/error.h"

static const char eval_usage[] =
    "usage: graft eval MODEL --data DIR [--format F] [--subset S] [--limit N [--seed S] | --first N] [--transform SPEC]\n"
    "                  [--batch 32] [--top 5] [--report DIR | --no-report] [--overlays 8]\n"
    "                  [--anchors W,H,...] [--conf 0.001] [--iou 0.5] [--workers W] [--threads T]\n"
    "                  [--device D] [--json]\n"
    "\n"
    "Runs MODEL over a data set (as graft train --data reads them: a folder of class\n"
    "folders, IDX, CIFAR, images/ + masks/, images/ + labels/ for YOLO) prepared by\n"
    "--transform (e.g. 'resize:256,center-crop:224,normalize:imagenet'; default: pixel / 255)\n"
    "and prints, by task:\n"
    "  classification  top-1, top-k, per-class accuracy, precision, recall, F1, the confusion matrix\n"
    "  segmentation    pixel accuracy, mean IoU and each class's IoU (mask value 255: no class)\n"
    "  detection       mAP@0.5 (VOC all-point AP) over the model's YOLOv3 heads, decoded with\n"
    "                  --anchors (default YOLOv3's nine, the largest for the first head)\n"
    "The report folder (default graft-eval) gets confusion.png, or overlays of the first\n"
    "--overlays images: the predicted masks or boxes drawn over each image.\n"
    "--limit N scores a seeded random N of the samples: for --seed S (default 0), the N that\n"
    "graft train --val-limit N --seed S validates on. --first N scores the first N.\n"
    "--device cpu (the default), cuda or cuda:N runs the model there.\n"
    "--json prints one object: top1 and top5 as fractions (classification), miou and\n"
    "pixel_acc (segmentation), map50 (detection), and the rest.\n";

typedef struct eval_args {
    const char *model, *data, *format, *subset, *transform, *report;
    int limit, first, batch, top, overlays, workers, threads, json, no_report, n_anchor_values;
    float anchors[64];
    double conf, iou;
    uint64_t seed;
    gf_session_options device; /* its device fields */
} eval_args;

static void parse_args(int argc, char **argv, eval_args *a)
{
    const char *v;
    *a = (eval_args){.batch = 32, .top = 5, .overlays = 8, .report = "graft-eval", .conf = 0.001, .iou = 0.5};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(eval_usage, stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--json")) a->json = 1;
        else if (!strcmp(argv[i], "--no-report")) a->no_report = 1;
        else if (cli_flag("eval", argc, argv, &i, "--data", &v)) a->data = v;
        else if (cli_flag("eval", argc, argv, &i, "--format", &v)) a->format = v;
        else if (cli_flag("eval", argc, argv, &i, "--subset", &v)) a->subset = v;
        else if (cli_flag("eval", argc, argv, &i, "--transform", &v)) a->transform = v;
        else if (cli_flag("eval", argc, argv, &i, "--report", &v)) a->report = v;
        else if (cli_flag("eval", argc, argv, &i, "--limit", &v)) a->limit = cli_int("eval", "--limit", v, 1, 1 << 30);
        else if (cli_flag("eval", argc, argv, &i, "--seed", &v)) a->seed = (uint64_t)cli_double("eval", "--seed", v, 0, 1e15);
        else if (cli_flag("eval", argc, argv, &i, "--first", &v)) a->first = cli_int("eval", "--first", v, 1, 1 << 30);
        else if (cli_flag("eval", argc, argv, &i, "--batch", &v)) a->batch = cli_int("eval", "--batch", v, 1, 1 << 16);
        else if (cli_flag("eval", argc, argv, &i, "--top", &v)) a->top = cli_int("eval", "--top", v, 1, 1 << 16);
        else if (cli_flag("eval", argc, argv, &i, "--overlays", &v)) a->overlays = cli_int("eval", "--overlays", v, 0, 1000);
        else if (cli_flag("eval", argc, argv, &i, "--workers", &v)) a->workers = cli_int("eval", "--workers", v, 0, 256);
        else if (cli_flag("eval", argc, argv, &i, "--threads", &v)) a->threads = cli_int("eval", "--threads", v, 0, 4096);
        else if (cli_flag("eval", argc, argv, &i, "--device", &v)) cli_device("eval", v, &a->device);
        else if (cli_flag("eval", argc, argv, &i, "--conf", &v)) a->conf = cli_double("eval", "--conf", v, 0, 1);
        else if (cli_flag("eval", argc, argv, &i, "--iou", &v)) a->iou = cli_double("eval", "--iou", v, 0, 1);
        else if (cli_flag("eval", argc, argv, &i, "--anchors", &v)) {
            int n = 1;
            for (const char *p = v; *p; p++) n += *p == ',';
            if (n % 2 || n > 64) cli_usage_error("eval", "--anchors takes pairs of width,height (at most 32 pairs)");
            cli_floats("eval", "--anchors", v, a->anchors, n);
            a->n_anchor_values = n;
        } else if (argv[i][0] == '-' && argv[i][1]) cli_usage_error("eval", "unknown option '%s'", argv[i]);
        else if (a->model) cli_usage_error("eval", "one model at a time ('%s' and '%s')", a->model, argv[i]);
        else a->model = argv[i];
    }
    if (!a->model) cli_usage_error("eval", "which model?");
    if (!a->data) cli_usage_error("eval", "which data set? (--data DIR)");
    if (a->limit && a->first) cli_usage_error("eval", "--limit or --first, not both");
}

/* ---- the run ---- */

typedef struct eval_run {
    gf_model *model;
    gf_session *session;
    gf_dataset *root, *rest, *data;
    gf_transform *transform;
    gf_loader *loader;
    gf_task task;
    int n_classes, n_outputs;
    gf_class_metrics *cls;
    gf_seg_metrics *seg;
    gf_det_metrics *det;
    gf_yolo_options yolo;
    int strides[8];
    int64_t samples;
} eval_run;

static gf_status open_data(eval_run *r, const eval_args *a)
{
    gf_io_info in = gf_model_input(r->model, 0);
    gf_dataset_options o = {.subset = a->subset, .channels = in.rank == 4 && in.dims[1] > 0 ? (int)in.dims[1] : 0};
    gf_status st = a->format ? gf_data_format_parse(a->format, &o.format) : GF_OK;
    if (!st) st = gf_dataset_open(a->data, &o, &r->root);
    r->data = r->root;
    int64_t n = st ? 0 : gf_dataset_size(r->root);
    if (!st && a->limit && a->limit < n) st = gf_dataset_split(r->root, (double)a->limit / (double)n, cli_val_subset_seed(a->seed), &r->rest,
                                  &r->data);
    if (!st && a->first && a->first < n) st = gf_dataset_head(r->root, a->first, &r->data);
    if (!st && a->transform) st = gf_transform_parse(a->transform, &r->transform);
    if (!st && r->transform && gf_transform_wants_stats(r->transform))
        st = gf_fail(GF_ERR_INVALID, "normalize:auto needs the training set's statistics; give them as normalize:M:S "
                     "(graft stats prints them)");
    gf_loader_options lo = {.batch_size = a->batch, .num_workers = a->workers,
                            .pinned = a->device.device == GF_DEVICE_CUDA};
    if (!st) st = gf_loader_new(r->data, r->transform, &lo, &r->loader);
    return st;
}

/* The classes: the model's first output's axis 1 (a detector's from its data set). */
static gf_status make_metrics(eval_run *r, const eval_args *a)
{
    r->task = gf_dataset_task(r->data);
    gf_io_info out = gf_model_output(r->model, 0);
    r->n_classes = out.rank >= 2 && out.dims[1] > 0 ? (int)out.dims[1] : gf_dataset_num_classes(r->data);
    if (r->task == GF_TASK_CLASSIFY) {
        int k = a->top < r->n_classes ? a->top : r->n_classes;
        return gf_class_metrics_new(r->n_classes, k, &r->cls);
    }
    if (r->task == GF_TASK_SEGMENT) return gf_seg_metrics_new(r->n_classes, GF_MASK_IGNORE, &r->seg);
    int heads = r->n_outputs, values = a->n_anchor_values ? a->n_anchor_values : 18;
    if (heads < 1 || heads > 8 || values % (2 * heads))
        return gf_fail(GF_ERR_INVALID, "%s: %d outputs and %d anchor values do not make YOLO heads", a->model, heads,
                       values);
    for (int l = 0; l < heads; l++) r->strides[l] = 32 >> l;
    int n_anchors = values / 2 / heads;
    gf_io_info in = gf_model_input(r->model, 0);
    gf_io_info head0 = gf_model_output(r->model, 0);
    r->n_classes = gf_dataset_num_classes(r->data);
    if (r->n_classes < 1 && head0.rank == 4 && head0.dims[1] > 0) r->n_classes = (int)head0.dims[1] / n_anchors - 5;
    r->yolo = (gf_yolo_options){.n_heads = heads, .n_anchors = n_anchors,
                                .anchors = a->n_anchor_values ? a->anchors : gf_yolov3_anchors, .strides = r->strides,
                                .input_width = in.rank == 4 ? (int)in.dims[3] : 0,
                                .input_height = in.rank == 4 ? (int)in.dims[2] : 0, .conf_threshold = a->conf,
                                .iou_threshold = 0.45, .max_per_image = 300};
    return gf_det_metrics_new(r->n_classes, a->iou, &r->det);
}

static gf_status score_batch(eval_run *r, const gf_batch *b, gf_tensor **outs)
{
    if (r->cls) return gf_class_metrics_add(r->cls, outs[0], b->targets);
    if (r->seg) return gf_seg_metrics_add(r->seg, outs[0], b->targets);
    /* The input size is the batch's when the model leaves it symbolic. */
    r->yolo.input_height = (int)b->images->dims[2];
    r->yolo.input_width = (int)b->images->dims[3];
    gf_detections d = {0};
    gf_status st = gf_yolo_detect((const gf_tensor *const *)outs, &r->yolo, &d);
    if (!st) st = gf_det_metrics_add(r->det, &d, b->targets);
    gf_detections_free(&d);
    return st;
}

/* ---- the report folder ---- */

static gf_status report_path(const eval_args *a, const char *name, char *buf, size_t len)
{
    if (snprintf(buf, len, "%s/%s", a->report, name) >= (int)len)
        return gf_fail(GF_ERR_INVALID, "%s: the report folder's name is too long", a->report);
    return GF_OK;
}

static gf_status write_confusion(const eval_args *a, const eval_run *r, const gf_class_report *rep)
{
    const char **labels = malloc((size_t)rep->n_classes * sizeof *labels);
    if (!labels) return gf_fail(GF_ERR_NOMEM, "out of memory");
    int named = 1;
    for (int k = 0; k < rep->n_classes; k++) named &= (labels[k] = gf_dataset_class_name(r->data, k)) != NULL;
    gf_image img = {0};
    char path[4096];
    gf_status st = gf_plot_confusion(rep->confusion, rep->n_classes, named ? labels : NULL, "confusion matrix (rows: true)",
                                     0, &img, NULL);
    if (!st) st = report_path(a, "confusion.png", path, sizeof path);
    if (!st) st = gf_image_save_png(&img, path);
    gf_image_free(&img);
    free(labels);
    return st;
}

/* Sample i's image as the transform leaves it before normalize: what the model saw. */
static gf_status seen_image(const eval_run *r, int64_t i, gf_sample *s)
{
    gf_status st = gf_dataset_get(r->data, i, s);
    if (!st && r->transform) st = gf_transform_apply(r->transform, 0, s);
    if (!st && s->image.channels == 1) {
        /* overlays are coloured: grey to RGB */
        uint8_t *rgb = malloc((size_t)s->image.width * (size_t)s->image.height * 3);
        if (!rgb) return gf_fail(GF_ERR_NOMEM, "out of memory");
        for (size_t p = 0; p < (size_t)s->image.width * (size_t)s->image.height; p++)
            rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = s->image.pixels[p];
        free(s->image.pixels);
        s->image.pixels = rgb;
        s->image.channels = 3;
    }
    return st;
}

/* The predicted classes of batch item j: the argmax over axis 1 of logits [N, C, H, W]. */
static gf_status argmax_mask(const gf_tensor *logits, int64_t j, gf_tensor **out)
{
    int64_t c = logits->dims[1], h = logits->dims[2], w = logits->dims[3], dims[2] = {h, w};
    gf_status st = gf_tensor_new(out, GF_INT64, 2, dims);
    if (st) return st;
    const float *x = (const float *)logits->data + j * c * h * w;
    int64_t *m = (*out)->data;
    for (int64_t p = 0; p < h * w; p++) {
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (x[k * h * w + p] > x[best * h * w + p]) best = k;
        m[p] = best;
    }
    return GF_OK;
}

static gf_status write_overlays(const eval_args *a, eval_run *r, const gf_batch *b, gf_tensor **outs)
{
    gf_status st = GF_OK;
    gf_detections d = {0};
    gf_yolo_options shown = r->yolo; /* what is worth drawing: the confident boxes */
    shown.conf_threshold = 0.25;
    shown.max_per_image = 100;
    if (r->det) st = gf_yolo_detect((const gf_tensor *const *)outs, &shown, &d);
    const char **labels = NULL;
    if (!st && r->det && !(labels = calloc((size_t)r->n_classes + 1, sizeof *labels))) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int k = 0; labels && k < r->n_classes; k++) labels[k] = gf_dataset_class_name(r->data, k);
    for (int64_t j = 0; j < b->images->dims[0] && r->samples + j < a->overlays && !st; j++) {
        gf_sample s = {0};
        gf_tensor *mask = NULL;
        char name[64], path[4096];
        st = seen_image(r, b->samples[j], &s);
        if (!st && r->seg) {
            st = argmax_mask(outs[0], j, &mask);
            if (!st) st = gf_image_draw_mask(&s.image, mask, 0.5, GF_MASK_IGNORE);
        } else if (!st) {
            int64_t first = 0, n = 0;
            while (first < d.count && d.items[first].image < j) first++;
            while (first + n < d.count && d.items[first + n].image == j) n++;
            st = gf_image_draw_boxes(&s.image, d.items + first, n, labels, r->n_classes);
        }
        snprintf(name, sizeof name, "overlay_%03lld.png", (long long)(r->samples + j));
        if (!st) st = report_path(a, name, path, sizeof path);
        if (!st) st = gf_image_save_png(&s.image, path);
        gf_tensor_free(mask);
        gf_sample_free(&s);
    }
    free(labels);
    gf_detections_free(&d);
    return st;
}

/* ---- printing ---- */

static const char *class_name(const eval_run *r, int k, char *buf, size_t len)
{
    const char *name = gf_dataset_class_name(r->data, k);
    if (name) return name;
    snprintf(buf, len, "%d", k);
    return buf;
}

static void print_classes(const eval_args *a, const eval_run *r, const gf_class_report *rep)
{
    char buf[32];
    if (a->json) {
        /* top-k with k past the classes counts every sample: its value is top-C's */
        printf("{\"task\": \"classification\", \"samples\": %lld, \"top1\": %.9g, \"top%d\": %.9g, ",
               (long long)rep->samples, rep->accuracy, a->top, rep->top_k_accuracy);
        printf("\"macro_f1\": %.9g, \"weighted_f1\": %.9g, \"per_class\": [", rep->macro_f1, rep->weighted_f1);
        for (int k = 0; k < rep->n_classes; k++) {
            printf("%s{\"class\": ", k ? ", " : "");
            cli_json_string(stdout, class_name(r, k, buf, sizeof buf));
            printf(", \"support\": %lld, \"accuracy\": %.9g, \"precision\": %.9g, \"f1\": %.9g}",
                   (long long)rep->support[k], rep->recall[k], rep->precision[k], rep->f1[k]);
        }
        printf("], \"confusion\": [");
        for (int i = 0; i < rep->n_classes; i++) {
            printf("%s[", i ? ", " : "");
            for (int j = 0; j < rep->n_classes; j++)
                printf("%s%lld", j ? ", " : "", (long long)rep->confusion[i * rep->n_classes + j]);
            printf("]");
        }
        printf("]}\n");
        return;
    }
    printf("samples:   %lld\ntop-1:     %.4f\ntop-%d:     %.4f\nmacro F1:  %.4f\n\n", (long long)rep->samples,
           rep->accuracy, a->top, rep->top_k_accuracy, rep->macro_f1);
    printf("%-20s %8s %9s %9s %7s\n", "class", "support", "accuracy", "precision", "F1");
    for (int k = 0; k < rep->n_classes; k++)
        printf("%-20.20s %8lld %9.4f %9.4f %7.4f\n", class_name(r, k, buf, sizeof buf), (long long)rep->support[k],
               rep->recall[k], rep->precision[k], rep->f1[k]);
}

static void print_json_number(double v) { isnan(v) ? printf("null") : printf("%.9g", v); }

static void print_segments(const eval_args *a, const eval_run *r, const gf_seg_report *rep)
{
    char buf[32];
    if (a->json) {
        printf("{\"task\": \"segmentation\", \"pixels\": %lld, \"pixel_acc\": %.9g, \"miou\": ", (long long)rep->pixels,
               rep->pixel_accuracy);
        print_json_number(rep->mean_iou);
        printf(", \"iou\": [");
        for (int k = 0; k < rep->n_classes; k++) {
            printf("%s", k ? ", " : "");
            print_json_number(rep->iou[k]);
        }
        printf("]}\n");
        return;
    }
    printf("pixels:          %lld\npixel accuracy:  %.4f\nmean IoU:        %.4f (over %d classes present)\n\n",
           (long long)rep->pixels, rep->pixel_accuracy, rep->mean_iou, rep->n_present);
    for (int k = 0; k < rep->n_classes; k++)
        if (!isnan(rep->iou[k])) printf("%-20.20s IoU %.4f\n", class_name(r, k, buf, sizeof buf), rep->iou[k]);
}

static void print_detections(const eval_args *a, const eval_run *r, const gf_det_report *rep)
{
    char buf[32];
    if (a->json) {
        printf("{\"task\": \"detection\", \"images\": %lld, \"map50\": ", (long long)rep->images);
        print_json_number(rep->map);
        printf(", \"ap\": [");
        for (int k = 0; k < rep->n_classes; k++) {
            printf("%s", k ? ", " : "");
            print_json_number(rep->ap[k]);
        }
        printf("]}\n");
        return;
    }
    printf("images:   %lld\nmAP@%.2g:  %.4f (over %d classes with boxes)\n\n", (long long)rep->images, a->iou, rep->map,
           rep->n_with_truth);
    for (int k = 0; k < rep->n_classes; k++)
        if (!isnan(rep->ap[k]))
            printf("%-20.20s AP %.4f  (%lld boxes, %lld detections)\n", class_name(r, k, buf, sizeof buf), rep->ap[k],
                   (long long)rep->n_truth[k], (long long)rep->n_detections[k]);
}

static gf_status report(const eval_args *a, eval_run *r)
{
    gf_status st = GF_OK;
    if (r->cls) {
        gf_class_report rep;
        gf_class_metrics_report(r->cls, &rep);
        print_classes(a, r, &rep);
        if (!a->no_report) st = write_confusion(a, r, &rep);
    } else if (r->seg) {
        gf_seg_report rep;
        gf_seg_metrics_report(r->seg, &rep);
        print_segments(a, r, &rep);
    } else {
        gf_det_report rep;
        if (!(st = gf_det_metrics_report(r->det, &rep))) print_detections(a, r, &rep);
    }
    if (!st && !a->no_report && !a->json) fprintf(stderr, "report: %s/\n", a->report);
    return st;
}

int cmd_eval(int argc, char **argv)
{
    eval_args a;
    parse_args(argc, argv, &a);
    eval_run r = {0};
    gf_session_options so = {a.device.device, a.device.device_index, .num_threads = a.threads};
    gf_status st = gf_model_load(a.model, &r.model);
    if (!st && gf_model_num_inputs(r.model) != 1)
        st = gf_fail(GF_ERR_UNSUPPORTED, "%s: evaluation takes models with one input (this one has %d)", a.model,
                     gf_model_num_inputs(r.model));
    if (!st) r.n_outputs = gf_model_num_outputs(r.model);
    if (!st) st = open_data(&r, &a);
    if (!st) st = make_metrics(&r, &a);
    if (!st) st = gf_session_new(r.model, &so, &r.session);
    if (!st && !a.no_report && mkdir(a.report, 0777) && errno != EEXIST)
        st = gf_fail(GF_ERR_IO, "%s: cannot create the report folder: %s", a.report, strerror(errno));
    gf_tensor **outs = st ? NULL : calloc((size_t)r.n_outputs, sizeof *outs);
    if (!st && !outs) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int64_t b = 0, n = st ? 0 : gf_loader_batches_per_epoch(r.loader); b < n && !st; b++) {
        gf_batch batch;
        if ((st = gf_loader_next(r.loader, &batch))) break;
        const gf_tensor *in[1] = {batch.images};
        st = gf_session_run(r.session, in, outs);
        if (!st) st = score_batch(&r, &batch, outs);
        if (!st && !a.no_report && !r.cls && r.samples < a.overlays) st = write_overlays(&a, &r, &batch, outs);
        r.samples += batch.images->dims[0];
        for (int k = 0; k < r.n_outputs; k++) {
            gf_tensor_free(outs[k]);
            outs[k] = NULL;
        }
        gf_batch_free(&batch);
    }
    if (!st) st = report(&a, &r);
    int rc = st ? cli_fail() : 0;
    free(outs);
    gf_class_metrics_free(r.cls);
    gf_seg_metrics_free(r.seg);
    gf_det_metrics_free(r.det);
    gf_session_free(r.session);
    gf_loader_free(r.loader);
    gf_transform_free(r.transform);
    if (r.data != r.root) gf_dataset_free(r.data); /* views before their root */
    gf_dataset_free(r.rest);
    gf_dataset_free(r.root);
    gf_model_free(r.model);
    return rc;
}
