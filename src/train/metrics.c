/* Classification metrics (graft.h, "evaluation"): a confusion matrix and a count of
 * top-k hits accumulate; everything else is derived from them when reported. */
#include "metrics_util.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gf_class_metrics {
    int n_classes, top_k;
    int64_t samples, top_k_hits;
    int64_t *confusion;         /* [C][C] */
    int64_t *support, *predicted;
    double *precision, *recall, *f1;
};

gf_status gf_class_metrics_new(int n_classes, int top_k, gf_class_metrics **out)
{
    *out = NULL;
    if (n_classes < 1 || n_classes > GF_METRICS_MAX_CLASSES)
        return gf_fail(GF_ERR_INVALID, "classification metrics: %d classes; expected 1 to %d", n_classes,
                       GF_METRICS_MAX_CLASSES);
    if (top_k < 1 || top_k > n_classes)
        return gf_fail(GF_ERR_INVALID, "classification metrics: top-%d of %d classes; expected k in [1, %d]", top_k,
                       n_classes, n_classes);
    gf_class_metrics *m = calloc(1, sizeof *m);
    size_t c = (size_t)n_classes;
    if (m) {
        m->confusion = calloc(c * c, sizeof *m->confusion);
        m->support = calloc(c, sizeof *m->support);
        m->predicted = calloc(c, sizeof *m->predicted);
        m->precision = calloc(c, sizeof *m->precision);
        m->recall = calloc(c, sizeof *m->recall);
        m->f1 = calloc(c, sizeof *m->f1);
    }
    if (!m || !m->confusion || !m->support || !m->predicted || !m->precision || !m->recall || !m->f1) {
        gf_class_metrics_free(m);
        return gf_fail(GF_ERR_NOMEM, "classification metrics: out of memory for %d classes", n_classes);
    }
    m->n_classes = n_classes;
    m->top_k = top_k;
    *out = m;
    return GF_OK;
}

void gf_class_metrics_free(gf_class_metrics *m)
{
    if (!m) return;
    free(m->confusion);
    free(m->support);
    free(m->predicted);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m);
}

void gf_class_metrics_reset(gf_class_metrics *m)
{
    size_t c = (size_t)m->n_classes;
    memset(m->confusion, 0, c * c * sizeof *m->confusion);
    m->samples = m->top_k_hits = 0;
}

/* Checks shapes, labels and logits before anything is counted. */
static gf_status check_batch(const gf_class_metrics *m, const gf_tensor *logits, const gf_tensor *labels)
{
    char s[128], t[128];
    if (!logits || !labels) return gf_fail(GF_ERR_INVALID, "classification metrics: no logits or no labels");
    if (logits->dtype != GF_FLOAT || logits->rank != 2 || logits->dims[1] != m->n_classes)
        return gf_fail(GF_ERR_SHAPE, "classification metrics: logits are %s %s; expected float32 [N, %d]",
                       gf_dtype_name(logits->dtype), gf_shape_str(logits, s, sizeof s), m->n_classes);
    if (labels->dtype != GF_INT64 || labels->rank != 1 || labels->dims[0] != logits->dims[0])
        return gf_fail(GF_ERR_SHAPE, "classification metrics: labels are %s %s; expected int64 [%lld] for logits %s",
                       gf_dtype_name(labels->dtype), gf_shape_str(labels, t, sizeof t), (long long)logits->dims[0],
                       gf_shape_str(logits, s, sizeof s));
    const float *x = logits->data;
    const int64_t *y = labels->data;
    for (int64_t i = 0; i < labels->dims[0]; i++) {
        if (y[i] < 0 || y[i] >= m->n_classes)
            return gf_fail(GF_ERR_INVALID, "classification metrics: sample %lld has label %lld; expected [0, %d)",
                           (long long)i, (long long)y[i], m->n_classes);
        int64_t bad = gf_metrics_first_nonfinite(x + i * m->n_classes, m->n_classes);
        if (bad >= 0)
            return gf_fail(GF_ERR_INVALID,
                           "classification metrics: sample %lld has a non-finite logit (%g) for class %lld", (long long)i, x[i * m->n_classes + bad], (long long)bad);
    }
    return GF_OK;
}

/* How many classes outrank `label`: a higher logit, or the same one at a lower index. */
static int rank_of(const float *x, int n, int64_t label)
{
    int rank = 0;
    for (int j = 0; j < n; j++) rank += x[j] > x[label] || (x[j] == x[label] && j < label);
    return rank;
}

gf_status gf_class_metrics_add(gf_class_metrics *m, const gf_tensor *logits, const gf_tensor *labels)
{
    gf_status st = check_batch(m, logits, labels);
    if (st) return st;
    const float *x = logits->data;
    const int64_t *y = labels->data;
    int c = m->n_classes;
    for (int64_t i = 0; i < labels->dims[0]; i++) {
        const float *row = x + i * c;
        m->confusion[y[i] * c + gf_metrics_argmax(row, c, 1)]++;
        m->top_k_hits += rank_of(row, c, y[i]) < m->top_k;
    }
    m->samples += labels->dims[0];
    return GF_OK;
}

static double ratio(int64_t num, int64_t den) { return den ? (double)num / (double)den : 0; }

void gf_class_metrics_report(gf_class_metrics *m, gf_class_report *out)
{
    int c = m->n_classes;
    int64_t correct = 0;
    memset(m->support, 0, (size_t)c * sizeof *m->support);
    memset(m->predicted, 0, (size_t)c * sizeof *m->predicted);
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            m->support[i] += m->confusion[i * c + j];
            m->predicted[j] += m->confusion[i * c + j];
        }
    *out = (gf_class_report){.n_classes = c, .top_k = m->top_k, .samples = m->samples, .confusion = m->confusion,
                             .support = m->support, .precision = m->precision, .recall = m->recall, .f1 = m->f1};
    int present = 0;
    for (int i = 0; i < c; i++) {
        int64_t tp = m->confusion[i * c + i];
        correct += tp;
        double p = ratio(tp, m->predicted[i]), r = ratio(tp, m->support[i]);
        m->precision[i] = p;
        m->recall[i] = r;
        m->f1[i] = p + r > 0 ? 2 * p * r / (p + r) : 0;
        if (m->support[i] || m->predicted[i]) {
            present++;
            out->macro_precision += p;
            out->macro_recall += r;
            out->macro_f1 += m->f1[i];
        }
        double weight = ratio(m->support[i], m->samples);
        out->weighted_precision += weight * p;
        out->weighted_recall += weight * r;
        out->weighted_f1 += weight * m->f1[i];
    }
    if (present) {
        out->macro_precision /= present;
        out->macro_recall /= present;
        out->macro_f1 /= present;
    }
    out->accuracy = ratio(correct, m->samples);
    out->top_k_accuracy = ratio(m->top_k_hits, m->samples);
}
