/* YOLO detection labels: DIR/images/.../STEM.{jpg,jpeg,png} and DIR/labels/.../STEM.txt,
 * a line "class cx cy w h" per box, normalised. Every labels file is parsed at open,
 * so a malformed line fails there, naming the file and the line. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "runtime/error.h"

typedef struct yolo_data {
    str_list images;
    int64_t *first;             /* per sample: its first box in `boxes`, and one past the last sample's */
    float *boxes;               /* [total][5]: class, cx, cy, w, h */
    int64_t n_boxes, cap;
} yolo_data;

static gf_status yolo_get(const gf_dataset *d, int64_t i, gf_sample *out)
{
    const yolo_data *y = d->impl;
    int64_t n = y->first[i + 1] - y->first[i];
    if (n) {
        if (!(out->boxes = malloc((size_t)n * 5 * sizeof *out->boxes))) return gf_fail(GF_ERR_NOMEM, "out of memory");
        memcpy(out->boxes, y->boxes + y->first[i] * 5, (size_t)n * 5 * sizeof *out->boxes);
    }
    out->n_boxes = (int)n;
    return gf_image_load(y->images.items[i], d->channels, &out->image);
}

static const char *yolo_path(const gf_dataset *d, int64_t i) { return ((const yolo_data *)d->impl)->images.items[i]; }

static void yolo_free(void *impl)
{
    yolo_data *y = impl;
    str_list_free(&y->images);
    free(y->first);
    free(y->boxes);
    free(y);
}

static const dataset_reader yolo_reader = {yolo_get, yolo_path, yolo_free};

/* One label line into box[5]; *blank when it holds nothing. */
static gf_status parse_line(const char *path, int line_no, const char *line, int n_classes, float box[5], int *blank)
{
    static const char *const what[5] = {"class", "cx", "cy", "w", "h"};
    double v[5];
    int n = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || (*end && *end != ' ' && *end != '\t')) {
            int len = (int)strcspn(p, " \t");
            return gf_fail(GF_ERR_PARSE, "%s:%d: '%.*s' is not a number", path, line_no, len, p);
        }
        if (n < 5) v[n] = x;
        n++;
        p = end;
    }
    *blank = n == 0;
    if (*blank) return GF_OK;
    if (n != 5)
        return gf_fail(GF_ERR_PARSE, "%s:%d: %d number%s; a box is 5: class cx cy w h", path, line_no, n,
                       n == 1 ? "" : "s");
    if (!(v[0] >= 0 && v[0] == floor(v[0]) && v[0] < (1 << 20)))
        return gf_fail(GF_ERR_INVALID, "%s:%d: class %g is not a whole number from 0", path, line_no, v[0]);
    if (n_classes && v[0] >= n_classes)
        return gf_fail(GF_ERR_INVALID, "%s:%d: class %g is outside the %d classes", path, line_no, v[0], n_classes);
    for (int k = 1; k < 5; k++)
        if (!(v[k] >= 0 && v[k] <= 1) || (k >= 3 && v[k] == 0))
            return gf_fail(GF_ERR_INVALID, "%s:%d: %s %g is outside %s; boxes are normalised to the image", path,
                           line_no, what[k], v[k], k >= 3 ? "(0, 1]" : "[0, 1]");
    for (int k = 0; k < 5; k++) box[k] = (float)v[k];
    return GF_OK;
}

static gf_status add_box(yolo_data *y, const float box[5])
{
    if (y->n_boxes == y->cap) {
        int64_t cap = y->cap ? 2 * y->cap : 256;
        float *b = realloc(y->boxes, (size_t)cap * 5 * sizeof *b);
        if (!b) return gf_fail(GF_ERR_NOMEM, "out of memory reading labels");
        y->boxes = b;
        y->cap = cap;
    }
    memcpy(y->boxes + y->n_boxes++ * 5, box, 5 * sizeof *box);
    return GF_OK;
}

/* Sample i's boxes from its labels file, if it has one; *top gets the largest class + 1. */
static gf_status read_labels(yolo_data *y, const char *path, int n_classes, int *top)
{
    if (!path_is_file(path)) return GF_OK;
    str_list lines = {0};
    gf_status st = read_lines(path, &lines);
    for (int64_t k = 0; k < lines.n && !st; k++) {
        float box[5] = {0};
        int blank;
        st = parse_line(path, (int)k + 1, lines.items[k], n_classes, box, &blank);
        if (!st && !blank) {
            st = add_box(y, box);
            if ((int)box[0] + 1 > *top) *top = (int)box[0] + 1;
        }
    }
    str_list_free(&lines);
    return st;
}

gf_status dataset_open_yolo(const dataset_args *a, gf_dataset *d)
{
    yolo_data *y = calloc(1, sizeof *y);
    if (!y) return gf_fail(GF_ERR_NOMEM, "out of memory");
    d->reader = &yolo_reader;
    d->impl = y;
    d->task = GF_TASK_DETECT;
    str_list labels = {0};
    gf_status st = dataset_list_pairs(a, "labels", ".txt", &y->images, &labels);
    if (!st) st = dataset_read_names(a->path, "classes.txt", &d->class_names);
    if (!st) st = dataset_check_classes(a, (int)d->class_names.n, "classes.txt names");
    int n_classes = a->n_classes ? a->n_classes : (int)d->class_names.n, top = 0;
    if (!st && !(y->first = malloc((size_t)(y->images.n + 1) * sizeof *y->first)))
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < y->images.n && !st; i++) {
        y->first[i] = y->n_boxes;
        st = read_labels(y, labels.items[i], n_classes, &top);
    }
    if (!st) {
        y->first[y->images.n] = y->n_boxes;
        d->n = y->images.n;
        d->n_classes = n_classes ? n_classes : top;
    }
    str_list_free(&labels);
    return st;
}
