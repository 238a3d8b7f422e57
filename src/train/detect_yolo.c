/* YOLOv3 box decoding (graft.h, gf_yolo_detect): the raw heads, as YoloV3Loss reads
 * them, to thresholded, suppressed boxes normalised to the input. */
#include "metrics_util.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdlib.h>

#define YOLO_MAX_HEADS 8

void gf_detections_free(gf_detections *d)
{
    if (!d) return;
    free(d->items);
    *d = (gf_detections){0};
}

static gf_status check_options(const gf_yolo_options *o, const int **strides)
{
    static const int default_strides[] = {32, 16, 8};
    if (o->n_heads < 1 || o->n_heads > YOLO_MAX_HEADS)
        return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: %d heads; expected 1 to %d", o->n_heads, YOLO_MAX_HEADS);
    if (o->n_anchors < 1 || !o->anchors)
        return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: no anchors (%d per head)", o->n_anchors);
    for (int i = 0; i < 2 * o->n_heads * o->n_anchors; i++)
        if (!(o->anchors[i] > 0 && isfinite(o->anchors[i])))
            return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: anchor value %d (%g) is not a positive size", i,
                           o->anchors[i]);
    *strides = o->strides;
    if (!*strides) {
        if (o->n_heads > 3)
            return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: %d heads need their strides (the default 32, 16, 8 is "
                           "for up to three)", o->n_heads);
        *strides = default_strides;
    }
    for (int l = 0; l < o->n_heads; l++)
        if ((*strides)[l] <= 0)
            return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: stride %d of head %d is not positive", (*strides)[l], l);
    if (o->input_width <= 0 || o->input_height <= 0)
        return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: input size %dx%d is not positive", o->input_width,
                       o->input_height);
    if (!(o->conf_threshold >= 0 && o->conf_threshold < 1) || !(o->iou_threshold >= 0 && o->iou_threshold <= 1))
        return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: thresholds confidence %g, IoU %g; expected [0, 1)"
                       " and [0, 1]", o->conf_threshold, o->iou_threshold);
    if (o->max_per_image < 0)
        return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: max_per_image %d is negative", o->max_per_image);
    return GF_OK;
}

/* Checks every head's shape against the first and the input size, and its values. */
static gf_status check_heads(const gf_tensor *const *heads, const gf_yolo_options *o, const int *strides)
{
    char s[128];
    for (int l = 0; l < o->n_heads; l++) {
        const gf_tensor *p = heads[l];
        if (!p) return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: head %d is missing", l);
        if (p->dtype != GF_FLOAT || p->rank != 4 || p->dims[1] % o->n_anchors || p->dims[1] / o->n_anchors < 6 ||
            (l > 0 && (p->dims[0] != heads[0]->dims[0] || p->dims[1] != heads[0]->dims[1])))
            return gf_fail(GF_ERR_SHAPE, "YOLOv3 decoding: head %d is %s %s; expected float32 [N, %d * (5 + classes), "
                           "H, W] like every head", l, gf_dtype_name(p->dtype), gf_shape_str(p, s, sizeof s),
                           o->n_anchors);
        if (p->dims[3] * strides[l] != o->input_width || p->dims[2] * strides[l] != o->input_height)
            return gf_fail(GF_ERR_SHAPE, "YOLOv3 decoding: head %d's grid %lldx%lld times its stride %d is not the "
                           "input size %dx%d", l, (long long)p->dims[3], (long long)p->dims[2], strides[l],
                           o->input_width, o->input_height);
        int64_t bad = gf_metrics_first_nonfinite(p->data, gf_tensor_numel(p));
        if (bad >= 0) {
            int64_t plane = p->dims[2] * p->dims[3], at = bad % plane;
            return gf_fail(GF_ERR_INVALID, "YOLOv3 decoding: head %d has %g at image %lld, channel %lld, row %lld, "
                           "column %lld", l, ((const float *)p->data)[bad], (long long)(bad / plane / p->dims[1]),
                           (long long)(bad / plane % p->dims[1]), (long long)(at / p->dims[3]),
                           (long long)(at % p->dims[3]));
        }
    }
    return GF_OK;
}

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

static gf_status push(gf_detections *out, int64_t *capacity, gf_detection d)
{
    if (out->count == *capacity) {
        int64_t grown = *capacity ? 2 * *capacity : 256;
        gf_detection *items = realloc(out->items, (size_t)grown * sizeof *items);
        if (!items) return gf_fail(GF_ERR_NOMEM, "YOLOv3 decoding: out of memory for %lld boxes", (long long)grown);
        out->items = items;
        *capacity = grown;
    }
    out->items[out->count++] = d;
    return GF_OK;
}

/* The boxes of head l above the confidence threshold, appended to out. */
static gf_status decode_head(const gf_tensor *head, int l, const gf_yolo_options *o, int stride, gf_detections *out,
                             int64_t *capacity)
{
    int n_anchors = o->n_anchors, no = (int)(head->dims[1] / n_anchors), classes = no - 5;
    int64_t h = head->dims[2], w = head->dims[3], plane = h * w;
    for (int64_t b = 0; b < head->dims[0]; b++)
        for (int a = 0; a < n_anchors; a++) {
            const float *anchor = o->anchors + 2 * (l * n_anchors + a);
            const float *p = (const float *)head->data + (b * n_anchors + a) * no * plane;
            for (int64_t cell = 0; cell < plane; cell++) {
                const float *t = p + cell;
                double obj = sigmoid(t[4 * plane]), conf = obj;
                int cls = 0;
                if (!(obj > o->conf_threshold)) continue;
                if (classes > 1) {
                    cls = gf_metrics_argmax(t + 5 * plane, classes, plane);
                    conf = obj * sigmoid(t[(5 + cls) * plane]);
                    if (!(conf > o->conf_threshold)) continue;
                }
                double sx = sigmoid(t[0]), sy = sigmoid(t[plane]);
                double sw = sigmoid(t[2 * plane]), sh = sigmoid(t[3 * plane]);
                gf_detection d = {
                    .image = b,
                    .cls = cls,
                    .score = (float)conf,
                    .cx = (float)(((double)(cell % w) + 2 * sx - 0.5) * stride / o->input_width),
                    .cy = (float)(((double)(cell / w) + 2 * sy - 0.5) * stride / o->input_height),
                    .w = (float)(4 * sw * sw * anchor[0] / o->input_width),
                    .h = (float)(4 * sh * sh * anchor[1] / o->input_height),
                };
                gf_status st = push(out, capacity, d);
                if (st) return st;
            }
        }
    return GF_OK;
}

/* Keeps each image's best max_per_image (the list is by image, then by score). */
static void keep_best(gf_detections *d, int max_per_image)
{
    int64_t kept = 0, run = 0;
    for (int64_t i = 0; i < d->count; i++) {
        run = i > 0 && d->items[i].image == d->items[i - 1].image ? run + 1 : 0;
        if (run < max_per_image) d->items[kept++] = d->items[i];
    }
    d->count = kept;
}

gf_status gf_yolo_detect(const gf_tensor *const *heads, const gf_yolo_options *o, gf_detections *out)
{
    *out = (gf_detections){0};
    const int *strides = NULL;
    gf_status st = check_options(o, &strides);
    if (!st) st = check_heads(heads, o, strides);
    if (st) return st;
    out->n_images = heads[0]->dims[0];
    int64_t capacity = 0;
    for (int l = 0; l < o->n_heads && !st; l++) st = decode_head(heads[l], l, o, strides[l], out, &capacity);
    if (!st) st = gf_nms(out->items, &out->count, o->iou_threshold);
    if (st) {
        gf_detections_free(out);
        return st;
    }
    if (o->max_per_image) keep_best(out, o->max_per_image);
    return GF_OK;
}
