/* Detection mAP (graft.h, gf_det_metrics): every detection and ground-truth box is kept,
 * with its image numbered across batches; matching and AP happen when reported. */
#include "detect.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gf_det_metrics {
    int n_classes;
    double iou_threshold;
    int64_t images;
    gf_detection *dets, *truth;     /* image numbered across batches; a truth's score unused */
    int64_t n_dets, n_truth, cap_dets, cap_truth;
    double *ap;
    int64_t *truth_count, *det_count;
};

gf_status gf_det_metrics_new(int n_classes, double iou_threshold, gf_det_metrics **out)
{
    *out = NULL;
    if (n_classes < 1)
        return gf_fail(GF_ERR_INVALID, "detection metrics: %d classes; expected at least 1", n_classes);
    if (!(iou_threshold >= 0 && iou_threshold <= 1))
        return gf_fail(GF_ERR_INVALID, "detection metrics: IoU threshold %g; expected [0, 1]", iou_threshold);
    gf_det_metrics *m = calloc(1, sizeof *m);
    if (m) {
        m->ap = calloc((size_t)n_classes, sizeof *m->ap);
        m->truth_count = calloc((size_t)n_classes, sizeof *m->truth_count);
        m->det_count = calloc((size_t)n_classes, sizeof *m->det_count);
    }
    if (!m || !m->ap || !m->truth_count || !m->det_count) {
        gf_det_metrics_free(m);
        return gf_fail(GF_ERR_NOMEM, "detection metrics: out of memory for %d classes", n_classes);
    }
    m->n_classes = n_classes;
    m->iou_threshold = iou_threshold;
    *out = m;
    return GF_OK;
}

void gf_det_metrics_free(gf_det_metrics *m)
{
    if (!m) return;
    free(m->dets);
    free(m->truth);
    free(m->ap);
    free(m->truth_count);
    free(m->det_count);
    free(m);
}

void gf_det_metrics_reset(gf_det_metrics *m)
{
    m->images = m->n_dets = m->n_truth = 0;
}

static gf_status reserve(gf_detection **items, int64_t *capacity, int64_t needed)
{
    if (needed <= *capacity) return GF_OK;
    int64_t grown = *capacity ? *capacity : 1024;
    while (grown < needed) grown *= 2;
    gf_detection *p = realloc(*items, (size_t)grown * sizeof *p);
    if (!p) return gf_fail(GF_ERR_NOMEM, "detection metrics: out of memory for %lld boxes", (long long)grown);
    *items = p;
    *capacity = grown;
    return GF_OK;
}

static int box_ok(float cx, float cy, float w, float h)
{
    return isfinite(cx) && isfinite(cy) && isfinite(w) && isfinite(h) && w >= 0 && h >= 0;
}

static gf_status check_batch(const gf_det_metrics *m, const gf_detections *d, const gf_tensor *targets)
{
    char s[128];
    if (!d || d->n_images < 0 || (d->count && !d->items))
        return gf_fail(GF_ERR_INVALID, "detection metrics: no detections (not even an empty list)");
    for (int64_t i = 0; i < d->count; i++) {
        const gf_detection *x = &d->items[i];
        if (x->image < 0 || x->image >= d->n_images || x->cls < 0 || x->cls >= m->n_classes || !isfinite(x->score) ||
            !box_ok(x->cx, x->cy, x->w, x->h))
            return gf_fail(GF_ERR_INVALID, "detection metrics: detection %lld (image %lld, class %d, score %g, box %g, "
                           "%g, %g, %g) is not an image of the %lld, a class of the %d with a score and a box",
                           (long long)i, (long long)x->image, x->cls, x->score, x->cx, x->cy, x->w, x->h,
                           (long long)d->n_images, m->n_classes);
    }
    if (!targets) return GF_OK;
    if (targets->dtype != GF_FLOAT || targets->rank != 2 || targets->dims[1] != 6)
        return gf_fail(GF_ERR_SHAPE, "detection metrics: targets are %s %s; expected float32 [T, 6]: image, class, "
                       "cx, cy, w, h", gf_dtype_name(targets->dtype), gf_shape_str(targets, s, sizeof s));
    const float *t = targets->data;
    for (int64_t j = 0; j < targets->dims[0]; j++, t += 6) {
        if (!(t[0] >= 0 && t[0] < (double)d->n_images && t[0] == floorf(t[0])))
            return gf_fail(GF_ERR_INVALID, "detection metrics: target %lld has image index %g; expected an integer in "
                           "[0, %lld)", (long long)j, t[0], (long long)d->n_images);
        if (!(t[1] >= 0 && t[1] < m->n_classes && t[1] == floorf(t[1])))
            return gf_fail(GF_ERR_INVALID,
                           "detection metrics: target %lld has class %g; expected an integer in [0, %d)", (long long)j, t[1], m->n_classes);
        if (!box_ok(t[2], t[3], t[4], t[5]))
            return gf_fail(GF_ERR_INVALID, "detection metrics: target %lld has box %g, %g, %g, %g; expected finite "
                           "numbers, w and h not negative", (long long)j, t[2], t[3], t[4], t[5]);
    }
    return GF_OK;
}

gf_status gf_det_metrics_add(gf_det_metrics *m, const gf_detections *d, const gf_tensor *targets)
{
    gf_status st = check_batch(m, d, targets);
    int64_t n_targets = targets ? targets->dims[0] : 0;
    if (!st) st = reserve(&m->dets, &m->cap_dets, m->n_dets + d->count);
    if (!st) st = reserve(&m->truth, &m->cap_truth, m->n_truth + n_targets);
    if (st) return st;
    for (int64_t i = 0; i < d->count; i++) {
        m->dets[m->n_dets] = d->items[i];
        m->dets[m->n_dets++].image += m->images;
    }
    const float *t = targets ? targets->data : NULL;
    for (int64_t j = 0; j < n_targets; j++, t += 6)
        m->truth[m->n_truth++] = (gf_detection){m->images + (int64_t)t[0], (int)t[1], 0, t[2], t[3], t[4], t[5]};
    m->images += d->n_images;
    return GF_OK;
}

/* qsort's comparators see only the elements: they index this pair. */
typedef struct indexed {
    const gf_detection *box;
    int64_t index;
} indexed;

/* Descending score, then the order added. */
static int by_score(const void *pa, const void *pb)
{
    const indexed *a = pa, *b = pb;
    if (a->box->score != b->box->score) return a->box->score > b->box->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static int by_image(const void *pa, const void *pb)
{
    const indexed *a = pa, *b = pb;
    if (a->box->image != b->box->image) return a->box->image < b->box->image ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* The first of truth[0..n) (sorted by image) that is of `image`, or n. */
static int64_t first_of_image(const indexed *truth, int64_t n, int64_t image)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (truth[mid].box->image < image) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* VOC's matching and all-point AP for one class: dets by descending score, truth by image. */
static double class_ap(const indexed *dets, int64_t n_dets, const indexed *truth, int64_t n_truth, double threshold,
                       unsigned char *taken, double *precision, double *recall)
{
    memset(taken, 0, (size_t)n_truth);
    int64_t tp = 0;
    for (int64_t i = 0; i < n_dets; i++) {
        const gf_detection *d = dets[i].box;
        double best = -1;
        int64_t match = -1;
        int64_t j = first_of_image(truth, n_truth, d->image);
        for (; j < n_truth && truth[j].box->image == d->image; j++) {
            double iou = gf_box_iou(d, truth[j].box);
            if (iou > best) best = iou, match = j;
        }
        if (match >= 0 && best >= threshold && !taken[match]) {
            taken[match] = 1;
            tp++;
        }
        precision[i] = (double)tp / (double)(i + 1);
        recall[i] = (double)tp / (double)n_truth;
    }
    /* Precision made monotone from the right, then the area under it. */
    double ap = 0, envelope = 0;
    for (int64_t i = n_dets - 1; i >= 0; i--) {
        envelope = fmax(envelope, precision[i]);
        ap += (recall[i] - (i ? recall[i - 1] : 0)) * envelope;
    }
    return ap;
}

gf_status gf_det_metrics_report(gf_det_metrics *m, gf_det_report *out)
{
    int k = m->n_classes;
    *out = (gf_det_report){.n_classes = k, .images = m->images, .map = NAN, .ap = m->ap,
                           .n_truth = m->truth_count, .n_detections = m->det_count};
    memset(m->truth_count, 0, (size_t)k * sizeof *m->truth_count);
    memset(m->det_count, 0, (size_t)k * sizeof *m->det_count);
    for (int64_t i = 0; i < m->n_truth; i++) m->truth_count[m->truth[i].cls]++;
    for (int64_t i = 0; i < m->n_dets; i++) m->det_count[m->dets[i].cls]++;
    size_t most = (size_t)(m->n_dets > m->n_truth ? m->n_dets : m->n_truth) + 1;
    indexed *dets = malloc(most * sizeof *dets), *truth = malloc(most * sizeof *truth);
    double *precision = malloc(most * sizeof *precision), *recall = malloc(most * sizeof *recall);
    unsigned char *taken = malloc(most);
    gf_status st = GF_OK;
    if (!dets || !truth || !precision || !recall || !taken) {
        st = gf_fail(GF_ERR_NOMEM, "detection metrics: out of memory for %lld detections", (long long)m->n_dets);
        goto out;
    }
    double sum = 0;
    for (int c = 0; c < k; c++) {
        int64_t nd = 0, nt = 0;
        for (int64_t i = 0; i < m->n_dets; i++)
            if (m->dets[i].cls == c) dets[nd] = (indexed){&m->dets[i], i}, nd++;
        for (int64_t i = 0; i < m->n_truth; i++)
            if (m->truth[i].cls == c) truth[nt] = (indexed){&m->truth[i], i}, nt++;
        if (!nt) {
            m->ap[c] = NAN;
            continue;
        }
        qsort(dets, (size_t)nd, sizeof *dets, by_score);
        qsort(truth, (size_t)nt, sizeof *truth, by_image);
        m->ap[c] = class_ap(dets, nd, truth, nt, m->iou_threshold, taken, precision, recall);
        sum += m->ap[c];
        out->n_with_truth++;
    }
    if (out->n_with_truth) out->map = sum / out->n_with_truth;
out:
    free(dets);
    free(truth);
    free(precision);
    free(recall);
    free(taken);
    return st;
}
