/* Box IoU and per-class non-maximum suppression (graft.h, gf_nms). */
#include "detect.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdlib.h>

/* In torchvision's order of operations, so the numbers agree to the last bit. */
double gf_box_iou(const gf_detection *a, const gf_detection *b)
{
    double ax1 = (double)a->cx - (double)a->w / 2, ax2 = (double)a->cx + (double)a->w / 2;
    double ay1 = (double)a->cy - (double)a->h / 2, ay2 = (double)a->cy + (double)a->h / 2;
    double bx1 = (double)b->cx - (double)b->w / 2, bx2 = (double)b->cx + (double)b->w / 2;
    double by1 = (double)b->cy - (double)b->h / 2, by2 = (double)b->cy + (double)b->h / 2;
    double area_a = (ax2 - ax1) * (ay2 - ay1), area_b = (bx2 - bx1) * (by2 - by1);
    double w = fmax(0, fmin(ax2, bx2) - fmax(ax1, bx1)), h = fmax(0, fmin(ay2, by2) - fmax(ay1, by1));
    double inter = w * h, uni = area_a + area_b - inter;
    return uni > 0 ? inter / uni : 0;
}

typedef struct ranked {
    gf_detection d;
    int64_t index;              /* in the caller's array: the tie-break */
} ranked;

static int by_score(const ranked *a, const ranked *b)
{
    if (a->d.score != b->d.score) return a->d.score > b->d.score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Image, class, then descending score: each group in the order NMS visits it. */
static int by_group(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->d.image != b->d.image) return a->d.image < b->d.image ? -1 : 1;
    if (a->d.cls != b->d.cls) return a->d.cls < b->d.cls ? -1 : 1;
    return by_score(a, b);
}

static int by_image(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->d.image != b->d.image) return a->d.image < b->d.image ? -1 : 1;
    return by_score(a, b);
}

static gf_status check_finite(const gf_detection *d, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(d[i].score) || !isfinite(d[i].cx) || !isfinite(d[i].cy) || !isfinite(d[i].w) ||
            !isfinite(d[i].h))
            return gf_fail(GF_ERR_INVALID, "non-maximum suppression: detection %lld has a non-finite score or box "
                           "(score %g, box %g, %g, %g, %g)", (long long)i, d[i].score, d[i].cx, d[i].cy, d[i].w,
                           d[i].h);
    return GF_OK;
}

gf_status gf_nms(gf_detection *d, int64_t *n, double iou_threshold)
{
    int64_t count = *n;
    gf_status st = check_finite(d, count);
    if (st || count == 0) return st;
    ranked *r = malloc((size_t)count * sizeof *r);
    if (!r) return gf_fail(GF_ERR_NOMEM, "non-maximum suppression: out of memory for %lld boxes", (long long)count);
    for (int64_t i = 0; i < count; i++) r[i] = (ranked){d[i], i};
    qsort(r, (size_t)count, sizeof *r, by_group);
    int64_t kept = 0;
    for (int64_t start = 0, end; start < count; start = end) {
        for (end = start; end < count && r[end].d.image == r[start].d.image && r[end].d.cls == r[start].d.cls;) end++;
        /* The group's survivors gather at r[first..kept) as it is walked. */
        int64_t first = kept;
        for (int64_t i = start; i < end; i++) {
            int suppressed = 0;
            for (int64_t k = first; k < kept && !suppressed; k++)
                suppressed = gf_box_iou(&r[k].d, &r[i].d) > iou_threshold;
            if (!suppressed) r[kept++] = r[i];
        }
    }
    qsort(r, (size_t)kept, sizeof *r, by_image);
    for (int64_t i = 0; i < kept; i++) d[i] = r[i].d;
    *n = kept;
    free(r);
    return GF_OK;
}
