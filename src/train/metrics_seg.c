/* Segmentation metrics (graft.h, "evaluation"): a confusion matrix over the counted
 * pixels accumulates; pixel accuracy and IoU are derived from it when reported. */
#include "metrics_util.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gf_seg_metrics {
    int n_classes;
    int64_t ignore_index;
    int64_t *confusion;         /* [C][C] */
    double *iou;
};

gf_status gf_seg_metrics_new(int n_classes, int64_t ignore_index, gf_seg_metrics **out)
{
    *out = NULL;
    if (n_classes < 1 || n_classes > GF_METRICS_MAX_CLASSES)
        return gf_fail(GF_ERR_INVALID, "segmentation metrics: %d classes; expected 1 to %d", n_classes,
                       GF_METRICS_MAX_CLASSES);
    if (ignore_index >= 0 && ignore_index < n_classes)
        return gf_fail(GF_ERR_INVALID, "segmentation metrics: ignore index %lld is one of the %d classes",
                       (long long)ignore_index, n_classes);
    gf_seg_metrics *m = calloc(1, sizeof *m);
    size_t c = (size_t)n_classes;
    if (m) {
        m->confusion = calloc(c * c, sizeof *m->confusion);
        m->iou = calloc(c, sizeof *m->iou);
    }
    if (!m || !m->confusion || !m->iou) {
        gf_seg_metrics_free(m);
        return gf_fail(GF_ERR_NOMEM, "segmentation metrics: out of memory for %d classes", n_classes);
    }
    m->n_classes = n_classes;
    m->ignore_index = ignore_index;
    *out = m;
    return GF_OK;
}

void gf_seg_metrics_free(gf_seg_metrics *m)
{
    if (!m) return;
    free(m->confusion);
    free(m->iou);
    free(m);
}

void gf_seg_metrics_reset(gf_seg_metrics *m)
{
    memset(m->confusion, 0, (size_t)m->n_classes * (size_t)m->n_classes * sizeof *m->confusion);
}

/* Names pixel i of an [N, H, W] tensor. */
static const char *pixel_name(const gf_tensor *t, int64_t i, char *buf, size_t len)
{
    int64_t plane = t->dims[1] * t->dims[2];
    snprintf(buf, len, "image %lld, row %lld, column %lld", (long long)(i / plane), (long long)(i % plane / t->dims[2]),
             (long long)(i % t->dims[2]));
    return buf;
}

static gf_status check_shapes(const gf_seg_metrics *m, const gf_tensor *pred, const gf_tensor *mask)
{
    char s[128], t[128];
    if (!pred || !mask) return gf_fail(GF_ERR_INVALID, "segmentation metrics: no prediction or no mask");
    if (mask->dtype != GF_INT64 || mask->rank != 3)
        return gf_fail(GF_ERR_SHAPE, "segmentation metrics: the mask is %s %s; expected int64 [N, H, W]",
                       gf_dtype_name(mask->dtype), gf_shape_str(mask, s, sizeof s));
    int logits = pred->dtype == GF_FLOAT && pred->rank == 4 && pred->dims[1] == m->n_classes &&
                 pred->dims[0] == mask->dims[0] && pred->dims[2] == mask->dims[1] && pred->dims[3] == mask->dims[2];
    int classes = pred->dtype == GF_INT64 && pred->rank == 3 && pred->dims[0] == mask->dims[0] &&
                  pred->dims[1] == mask->dims[1] && pred->dims[2] == mask->dims[2];
    if (!logits && !classes)
        return gf_fail(GF_ERR_SHAPE, "segmentation metrics: the prediction is %s %s; for the mask %s expected float32 "
                       "logits [%lld, %d, %lld, %lld] or an int64 class map of the mask's shape",
                       gf_dtype_name(pred->dtype), gf_shape_str(pred, s, sizeof s), gf_shape_str(mask, t, sizeof t),
                       (long long)mask->dims[0], m->n_classes, (long long)mask->dims[1], (long long)mask->dims[2]);
    return GF_OK;
}

/* Checks every value before anything is counted. */
static gf_status check_values(const gf_seg_metrics *m, const gf_tensor *pred, const gf_tensor *mask)
{
    char where[96];
    int64_t n = gf_tensor_numel(mask);
    const int64_t *y = mask->data;
    for (int64_t i = 0; i < n; i++)
        if ((y[i] < 0 || y[i] >= m->n_classes) && y[i] != m->ignore_index)
            return gf_fail(GF_ERR_INVALID, "segmentation metrics: mask %s holds %lld; expected a class in [0, %d) or "
                           "the ignore index %lld", pixel_name(mask, i, where, sizeof where), (long long)y[i],
                           m->n_classes, (long long)m->ignore_index);
    if (pred->dtype == GF_INT64) {
        const int64_t *p = pred->data;
        for (int64_t i = 0; i < n; i++)
            if (p[i] < 0 || p[i] >= m->n_classes)
                return gf_fail(GF_ERR_INVALID, "segmentation metrics: the class map %s holds %lld; expected [0, %d)",
                               pixel_name(pred, i, where, sizeof where), (long long)p[i], m->n_classes);
        return GF_OK;
    }
    int64_t bad = gf_metrics_first_nonfinite(pred->data, gf_tensor_numel(pred));
    if (bad >= 0) {
        int64_t plane = pred->dims[2] * pred->dims[3], image = bad / (m->n_classes * plane);
        int64_t pixel = image * plane + bad % plane;
        return gf_fail(GF_ERR_INVALID, "segmentation metrics: the logits %s are not finite (%g for class %lld)",
                       pixel_name(mask, pixel, where, sizeof where), ((const float *)pred->data)[bad],
                       (long long)(bad / plane % m->n_classes));
    }
    return GF_OK;
}

gf_status gf_seg_metrics_add(gf_seg_metrics *m, const gf_tensor *pred, const gf_tensor *mask)
{
    gf_status st = check_shapes(m, pred, mask);
    if (!st) st = check_values(m, pred, mask);
    if (st) return st;
    int c = m->n_classes;
    int64_t plane = mask->dims[1] * mask->dims[2];
    const int64_t *y = mask->data;
    for (int64_t i = 0; i < gf_tensor_numel(mask); i++) {
        if (y[i] == m->ignore_index) continue;
        int64_t p;
        if (pred->dtype == GF_INT64) p = ((const int64_t *)pred->data)[i];
        else p = gf_metrics_argmax((const float *)pred->data + i / plane * c * plane + i % plane, c, plane);
        m->confusion[y[i] * c + p]++;
    }
    return GF_OK;
}

void gf_seg_metrics_report(gf_seg_metrics *m, gf_seg_report *out)
{
    int c = m->n_classes;
    *out = (gf_seg_report){.n_classes = c, .iou = m->iou, .confusion = m->confusion};
    int64_t correct = 0;
    double iou_sum = 0;
    for (int i = 0; i < c; i++) {
        int64_t tp = m->confusion[i * c + i], truth = 0, predicted = 0;
        for (int j = 0; j < c; j++) {
            truth += m->confusion[i * c + j];
            predicted += m->confusion[j * c + i];
        }
        out->pixels += truth;
        correct += tp;
        int64_t uni = truth + predicted - tp;
        m->iou[i] = uni ? (double)tp / (double)uni : NAN;
        if (uni) {
            out->n_present++;
            iou_sum += m->iou[i];
        }
    }
    out->pixel_accuracy = out->pixels ? (double)correct / (double)out->pixels : 0;
    out->mean_iou = out->n_present ? iou_sum / out->n_present : NAN;
}
