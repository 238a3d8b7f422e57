/* Runs graft's evaluation metrics on tensors from stdin, for tests/test_metrics.py to
 * compare with scikit-learn, numpy and torchvision.
 *
 *   test_metrics classify C K BATCH      logits [N, C] f32, labels [N] i64
 *   test_metrics segment C IGNORE BATCH  pred (f32 [N, C, H, W] or i64 [N, H, W]), mask i64 [N, H, W]
 *   test_metrics iou                     boxes A [n, 4], B [m, 4] (cx, cy, w, h), f32
 *   test_metrics nms IOU                 detections [n, 7] f32: image, class, score, cx, cy, w, h
 *   test_metrics yolo W H CONF IOU MAX A [STRIDE...]
 *                                        anchors f32 [L * A * 2], then L heads f32
 *   test_metrics map K IOU               batches i64 [1]; per batch: images i64 [1],
 *                                        detections [n, 7] f32, targets [T, 6] f32
 * Tensors on stdin are text: "f32" or "i64", rank, dims, values. Metrics are added in
 * batches of BATCH samples (images); an add that fails prints "add-error: MESSAGE" and
 * the run goes on. Results go to stdout, one "name values..." line each; other errors
 * go to stderr with exit status 2. */
#include "graft.h"
#include "train/detect.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
    fprintf(stderr, "error: %s%s%s\n", what, *what ? ": " : "", gf_last_error());
    return 2;
}

/* One tensor from stdin, or NULL when the input is malformed. */
static gf_tensor *read_tensor(void)
{
    char type[8];
    int rank;
    int64_t dims[GF_MAX_RANK];
    if (scanf("%7s %d", type, &rank) != 2 || rank < 0 || rank > GF_MAX_RANK) return NULL;
    for (int i = 0; i < rank; i++)
        if (scanf("%" SCNd64, &dims[i]) != 1) return NULL;
    gf_dtype dtype = !strcmp(type, "f32") ? GF_FLOAT : !strcmp(type, "i64") ? GF_INT64 : GF_UNDEFINED;
    gf_tensor *t;
    if (dtype == GF_UNDEFINED || gf_tensor_new(&t, dtype, rank, dims)) return NULL;
    for (int64_t i = 0; i < gf_tensor_numel(t); i++) {
        int ok;
        if (dtype == GF_FLOAT) {
            double v;
            ok = scanf("%lf", &v) == 1;
            ((float *)t->data)[i] = (float)v;
        } else {
            ok = scanf("%" SCNd64, &((int64_t *)t->data)[i]) == 1;
        }
        if (!ok) {
            gf_tensor_free(t);
            return NULL;
        }
    }
    return t;
}

/* Rows [start, start + n) of t, sharing its data. */
static gf_tensor rows(const gf_tensor *t, int64_t start, int64_t n)
{
    gf_tensor v = *t;
    v.owns_data = 0;
    v.dims[0] = n;
    v.data = (char *)t->data + (size_t)start * (gf_tensor_nbytes(t) / (size_t)t->dims[0]);
    return v;
}

static void print_doubles(const char *name, const double *v, int64_t n)
{
    printf("%s", name);
    for (int64_t i = 0; i < n; i++) printf(" %.17g", v[i]);
    printf("\n");
}

static void print_ints(const char *name, const int64_t *v, int64_t n)
{
    printf("%s", name);
    for (int64_t i = 0; i < n; i++) printf(" %lld", (long long)v[i]);
    printf("\n");
}

static void print_detections(const gf_detection *d, int64_t n)
{
    printf("count %lld\n", (long long)n);
    for (int64_t i = 0; i < n; i++)
        printf("det %lld %d %.9g %.9g %.9g %.9g %.9g\n", (long long)d[i].image, d[i].cls, d[i].score, d[i].cx, d[i].cy,
               d[i].w, d[i].h);
}

/* Detections from an [n, 7] tensor. */
static gf_detection *to_detections(const gf_tensor *t, int64_t *n)
{
    *n = t->dims[0];
    gf_detection *d = malloc(((size_t)*n + 1) * sizeof *d);
    const float *v = t->data;
    for (int64_t i = 0; d && i < *n; i++, v += 7)
        d[i] = (gf_detection){(int64_t)v[0], (int)v[1], v[2], v[3], v[4], v[5], v[6]};
    return d;
}

static int classify(int argc, char **argv)
{
    if (argc < 3) return fail("classify needs C K BATCH");
    int64_t batch = atol(argv[2]);
    gf_tensor *logits = read_tensor(), *labels = read_tensor();
    gf_class_metrics *m = NULL;
    int rc = !logits || !labels ? fail("classify: malformed tensors on stdin")
             : gf_class_metrics_new(atoi(argv[0]), atoi(argv[1]), &m) ? fail("") : 0;
    if (rc) goto out;
    for (int64_t at = 0; at < logits->dims[0]; at += batch) {
        int64_t n = logits->dims[0] - at < batch ? logits->dims[0] - at : batch;
        gf_tensor x = rows(logits, at, n), y = rows(labels, at, n);
        if (gf_class_metrics_add(m, &x, &y)) printf("add-error: %s\n", gf_last_error());
    }
    gf_class_report r;
    gf_class_metrics_report(m, &r);
    printf("samples %lld\n", (long long)r.samples);
    print_doubles("accuracy", &r.accuracy, 1);
    print_doubles("top_k", &r.top_k_accuracy, 1);
    print_ints("confusion", r.confusion, (int64_t)r.n_classes * r.n_classes);
    print_ints("support", r.support, r.n_classes);
    print_doubles("precision", r.precision, r.n_classes);
    print_doubles("recall", r.recall, r.n_classes);
    print_doubles("f1", r.f1, r.n_classes);
    print_doubles("macro", (double[]){r.macro_precision, r.macro_recall, r.macro_f1}, 3);
    print_doubles("weighted", (double[]){r.weighted_precision, r.weighted_recall, r.weighted_f1}, 3);
out:
    gf_class_metrics_free(m);
    gf_tensor_free(logits);
    gf_tensor_free(labels);
    return rc;
}

static int segment(int argc, char **argv)
{
    if (argc < 3) return fail("segment needs C IGNORE BATCH");
    int64_t batch = atol(argv[2]);
    gf_tensor *pred = read_tensor(), *mask = read_tensor();
    gf_seg_metrics *m = NULL;
    int rc = !pred || !mask ? fail("segment: malformed tensors on stdin")
             : gf_seg_metrics_new(atoi(argv[0]), atol(argv[1]), &m) ? fail("") : 0;
    if (rc) goto out;
    for (int64_t at = 0; at < mask->dims[0]; at += batch) {
        int64_t n = mask->dims[0] - at < batch ? mask->dims[0] - at : batch;
        gf_tensor p = rows(pred, at, n), y = rows(mask, at, n);
        if (gf_seg_metrics_add(m, &p, &y)) printf("add-error: %s\n", gf_last_error());
    }
    gf_seg_report r;
    gf_seg_metrics_report(m, &r);
    printf("pixels %lld\n", (long long)r.pixels);
    print_doubles("pixel_accuracy", &r.pixel_accuracy, 1);
    print_doubles("iou", r.iou, r.n_classes);
    print_doubles("mean_iou", &r.mean_iou, 1);
    printf("n_present %d\n", r.n_present);
    print_ints("confusion", r.confusion, (int64_t)r.n_classes * r.n_classes);
out:
    gf_seg_metrics_free(m);
    gf_tensor_free(pred);
    gf_tensor_free(mask);
    return rc;
}

static int box_iou(void)
{
    gf_tensor *a = read_tensor(), *b = read_tensor();
    if (!a || !b) return fail("iou: malformed tensors on stdin");
    const float *pa = a->data, *pb = b->data;
    for (int64_t i = 0; i < a->dims[0]; i++) {
        printf("iou");
        gf_detection da = {0, 0, 0, pa[4 * i], pa[4 * i + 1], pa[4 * i + 2], pa[4 * i + 3]};
        for (int64_t j = 0; j < b->dims[0]; j++) {
            gf_detection db = {0, 0, 0, pb[4 * j], pb[4 * j + 1], pb[4 * j + 2], pb[4 * j + 3]};
            printf(" %.17g", gf_box_iou(&da, &db));
        }
        printf("\n");
    }
    gf_tensor_free(a);
    gf_tensor_free(b);
    return 0;
}

static int nms(int argc, char **argv)
{
    if (argc < 1) return fail("nms needs IOU");
    gf_tensor *t = read_tensor();
    if (!t) return fail("nms: malformed tensor on stdin");
    int64_t n;
    gf_detection *d = to_detections(t, &n);
    int rc = gf_nms(d, &n, strtod(argv[0], NULL)) ? fail("") : 0;
    if (!rc) print_detections(d, n);
    free(d);
    gf_tensor_free(t);
    return rc;
}

static int yolo(int argc, char **argv)
{
    if (argc < 6) return fail("yolo needs W H CONF IOU MAX A [STRIDE...]");
    int strides[8];
    gf_tensor *anchors = read_tensor(), *heads[8] = {0};
    if (!anchors) return fail("yolo: malformed anchors on stdin");
    gf_yolo_options o = {.input_width = atoi(argv[0]), .input_height = atoi(argv[1]),
                         .conf_threshold = strtod(argv[2], NULL), .iou_threshold = strtod(argv[3], NULL), .max_per_image = atoi(argv[4]),
                         .n_anchors = atoi(argv[5]), .anchors = anchors->data};
    o.n_heads = o.n_anchors > 0 ? (int)(gf_tensor_numel(anchors) / (2 * o.n_anchors)) : 0;
    for (int i = 6; i < argc && i - 6 < 8; i++) strides[i - 6] = atoi(argv[i]);
    if (argc > 6) o.strides = strides;
    int rc = 0;
    for (int l = 0; l < o.n_heads && l < 8 && !rc; l++)
        if (!(heads[l] = read_tensor())) rc = fail("yolo: malformed heads on stdin");
    gf_detections d = {0};
    if (!rc && gf_yolo_detect((const gf_tensor *const *)heads, &o, &d)) rc = fail("");
    if (!rc) {
        printf("images %lld\n", (long long)d.n_images);
        print_detections(d.items, d.count);
    }
    gf_detections_free(&d);
    for (int l = 0; l < 8; l++) gf_tensor_free(heads[l]);
    gf_tensor_free(anchors);
    return rc;
}

static int mean_ap(int argc, char **argv)
{
    if (argc < 2) return fail("map needs K IOU");
    gf_det_metrics *m;
    if (gf_det_metrics_new(atoi(argv[0]), strtod(argv[1], NULL), &m)) return fail("");
    gf_tensor *batches = read_tensor();
    if (!batches) return fail("map: malformed batch count on stdin");
    for (int64_t b = 0; b < ((int64_t *)batches->data)[0]; b++) {
        gf_tensor *images = read_tensor(), *dets = read_tensor(), *targets = read_tensor();
        if (!images || !dets || !targets) return fail("map: malformed batch on stdin");
        gf_detections d = {.n_images = ((int64_t *)images->data)[0]};
        d.items = to_detections(dets, &d.count);
        if (gf_det_metrics_add(m, &d, targets->dims[0] ? targets : NULL))
            printf("add-error: %s\n", gf_last_error());
        free(d.items);
        gf_tensor_free(images);
        gf_tensor_free(dets);
        gf_tensor_free(targets);
    }
    gf_det_report r;
    if (gf_det_metrics_report(m, &r)) return fail("");
    printf("images %lld\n", (long long)r.images);
    print_doubles("ap", r.ap, r.n_classes);
    print_doubles("map", &r.map, 1);
    printf("n_with_truth %d\n", r.n_with_truth);
    print_ints("n_truth", r.n_truth, r.n_classes);
    print_ints("n_detections", r.n_detections, r.n_classes);
    gf_det_metrics_free(m);
    gf_tensor_free(batches);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_metrics classify|segment|iou|nms|yolo|map ARGS < tensors\n");
        return 2;
    }
    const char *mode = argv[1];
    argc -= 2, argv += 2;
    if (!strcmp(mode, "classify")) return classify(argc, argv);
    if (!strcmp(mode, "segment")) return segment(argc, argv);
    if (!strcmp(mode, "iou")) return box_iou();
    if (!strcmp(mode, "nms")) return nms(argc, argv);
    if (!strcmp(mode, "yolo")) return yolo(argc, argv);
    if (!strcmp(mode, "map")) return mean_ap(argc, argv);
    fprintf(stderr, "unknown mode '%s'\n", mode);
    return 2;
}
