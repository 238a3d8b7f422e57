/* Overlays on images (graft.h): a segmentation mask blended in class colours, and
 * detection boxes with their labels. */
#include "plot_draw.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdio.h>

#define LABEL_H (GF_GLYPH_H + 2)
#define MAX_LABEL 32

void gf_class_color(int c, uint8_t rgb[3])
{
    rgb[0] = rgb[1] = rgb[2] = 0;
    for (int bit = 7; bit >= 0 && c > 0; bit--, c >>= 3)
        for (int k = 0; k < 3; k++) rgb[k] |= (uint8_t)(((c >> k) & 1) << bit);
}

static gf_status check_image(const gf_image *img, const char *what)
{
    if (!img || !img->pixels || img->width < 1 || img->height < 1 || img->channels != 3)
        return gf_fail(GF_ERR_INVALID, "%s: the image is %dx%d with %d channels; expected RGB pixels", what,
                       img ? img->width : 0, img ? img->height : 0, img ? img->channels : 0);
    return GF_OK;
}

gf_status gf_image_draw_mask(gf_image *img, const gf_tensor *mask, double alpha, int64_t ignore_index)
{
    gf_status st = check_image(img, "mask overlay");
    if (st) return st;
    char s[128];
    if (!mask || mask->dtype != GF_INT64 || !(mask->rank == 2 || (mask->rank == 3 && mask->dims[0] == 1)) ||
        mask->dims[mask->rank - 2] != img->height || mask->dims[mask->rank - 1] != img->width)
        return gf_fail(GF_ERR_SHAPE, "mask overlay: the mask is %s %s; expected int64 [%d, %d] like the image",
                       mask ? gf_dtype_name(mask->dtype) : "missing", mask ? gf_shape_str(mask, s, sizeof s) : "",
                       img->height, img->width);
    if (!(alpha >= 0 && alpha <= 1)) return gf_fail(GF_ERR_INVALID, "mask overlay: alpha %g; expected [0, 1]", alpha);
    const int64_t *m = mask->data;
    int64_t n = (int64_t)img->width * img->height;
    for (int64_t i = 0; i < n; i++)
        if (m[i] < 0 && m[i] != ignore_index)
            return gf_fail(GF_ERR_INVALID, "mask overlay: pixel (row %lld, column %lld) holds class %lld",
                           (long long)(i / img->width), (long long)(i % img->width), (long long)m[i]);
    for (int64_t i = 0; i < n; i++) {
        if (m[i] == ignore_index) continue;
        uint8_t colour[3], *p = img->pixels + 3 * i;
        gf_class_color(m[i] > 0x7fffffff ? 0x7fffffff : (int)m[i], colour);
        for (int k = 0; k < 3; k++) p[k] = (uint8_t)floor((1 - alpha) * p[k] + alpha * colour[k] + 0.5);
    }
    return GF_OK;
}

static int clamp(long v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : (int)v; }

/* The box's pixel bounds, as graft.h gives them; 0 when nothing of it is in the image. */
static int box_bounds(const gf_image *img, const gf_detection *d, gf_rect *r)
{
    double w = img->width, h = img->height, limit = 1e6;
    double x0 = ((double)d->cx - (double)d->w / 2) * w, x1 = ((double)d->cx + (double)d->w / 2) * w;
    double y0 = ((double)d->cy - (double)d->h / 2) * h, y1 = ((double)d->cy + (double)d->h / 2) * h;
    if (fabs(x0) > limit || fabs(x1) > limit || fabs(y0) > limit || fabs(y1) > limit) return 0;
    long ix0 = lround(x0), ix1 = lround(x1) - 1, iy0 = lround(y0), iy1 = lround(y1) - 1;
    if (ix0 > ix1 || iy0 > iy1 || ix1 < 0 || iy1 < 0 || ix0 >= img->width || iy0 >= img->height) return 0;
    *r = (gf_rect){clamp(ix0, 0, img->width - 1), clamp(iy0, 0, img->height - 1), clamp(ix1, 0, img->width - 1),
                   clamp(iy1, 0, img->height - 1)};
    return 1;
}

static void draw_label(gf_image *img, const gf_detection *d, gf_rect box, gf_rgb colour, const char *const *labels,
                       int n_labels)
{
    char text[MAX_LABEL + 16], name[MAX_LABEL + 1];
    if (labels && d->cls < n_labels && labels[d->cls]) snprintf(name, sizeof name, "%.*s", MAX_LABEL, labels[d->cls]);
    else snprintf(name, sizeof name, "%d", d->cls);
    if (d->score >= 0) snprintf(text, sizeof text, "%s %.2f", name, d->score);
    else snprintf(text, sizeof text, "%s", name);
    int w = gf_text_width(text, 1) + 4;
    int x = box.x0 + w > img->width ? (img->width - w > 0 ? img->width - w : 0) : box.x0;
    int y = box.y0 >= LABEL_H ? box.y0 - LABEL_H : box.y0;
    gf_canvas_fill(img, (gf_rect){x, y, x + w - 1, y + LABEL_H - 1}, colour);
    int light = 299 * colour.r + 587 * colour.g + 114 * colour.b > 140000;
    gf_canvas_text(img, x + 2, y + 1, text, 1, light ? (gf_rgb){0, 0, 0} : (gf_rgb){255, 255, 255});
}

gf_status gf_image_draw_boxes(gf_image *img, const gf_detection *d, int64_t n, const char *const *labels, int n_labels)
{
    gf_status st = check_image(img, "box overlay");
    if (st) return st;
    if (n < 0 || (n && !d)) return gf_fail(GF_ERR_INVALID, "box overlay: %lld boxes and no array", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (d[i].cls < 0 || !isfinite(d[i].cx) || !isfinite(d[i].cy) || !isfinite(d[i].w) || !isfinite(d[i].h))
            return gf_fail(GF_ERR_INVALID, "box overlay: box %lld has class %d and box %g, %g, %g, %g", (long long)i,
                           d[i].cls, d[i].cx, d[i].cy, d[i].w, d[i].h);
    for (int64_t i = n - 1; i >= 0; i--) {
        gf_rect r;
        if (!box_bounds(img, &d[i], &r)) continue;
        uint8_t c[3];
        gf_class_color(d[i].cls, c);
        gf_rgb colour = {c[0], c[1], c[2]};
        gf_canvas_fill(img, (gf_rect){r.x0, r.y0, r.x1, r.y0 + 1 < r.y1 ? r.y0 + 1 : r.y1}, colour);
        gf_canvas_fill(img, (gf_rect){r.x0, r.y1 - 1 > r.y0 ? r.y1 - 1 : r.y0, r.x1, r.y1}, colour);
        gf_canvas_fill(img, (gf_rect){r.x0, r.y0, r.x0 + 1 < r.x1 ? r.x0 + 1 : r.x1, r.y1}, colour);
        gf_canvas_fill(img, (gf_rect){r.x1 - 1 > r.x0 ? r.x1 - 1 : r.x0, r.y0, r.x1, r.y1}, colour);
        draw_label(img, &d[i], r, colour, labels, n_labels);
    }
    return GF_OK;
}
