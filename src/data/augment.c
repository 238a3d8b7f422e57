/* Geometric steps on a sample: the image, its mask (nearest neighbour, padded
 * with GF_MASK_IGNORE) and its boxes move together. The resampling copies
 * Pillow's arithmetic, fixed-point and all, because agreeing with what
 * torchvision gives on PIL images is the point. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "runtime/error.h"

#define MAX_SIDE (1 << 16)

/* Pillow's COORD and FLOOR (libImaging/Geometry.c). */
static int coord(double v) { return v < 0.0 ? -1 : (int)v; }
static int pil_floor(double v) { return v < 0.0 ? (int)floor(v) : (int)v; }

static gf_status new_image(int width, int height, int channels, uint8_t fill, gf_image *out)
{
    uint8_t *p = malloc((size_t)width * (size_t)height * (size_t)channels);
    if (!p) return gf_fail(GF_ERR_NOMEM, "out of memory for a %dx%d image", width, height);
    memset(p, fill, (size_t)width * (size_t)height * (size_t)channels);
    *out = (gf_image){width, height, channels, p};
    return GF_OK;
}

static void replace(gf_image *img, gf_image *with)
{
    gf_image_free(img);
    *img = *with;
}

/* ---- boxes ---- */

typedef void (*point_map)(const void *ctx, double *x, double *y);

/* Moves the boxes through a step that cuts the image: the corners of each (in the
 * input's pixels) go through `map` into the out_w x out_h output; their bounding box,
 * clipped to it, stays when Ultralytics' box_candidates would keep it. */
static void cut_boxes(gf_sample *s, int out_w, int out_h, point_map map, const void *ctx)
{
    int in_w = s->image.width, in_h = s->image.height, kept = 0;
    for (int k = 0; k < s->n_boxes; k++) {
        const float *b = s->boxes + 5 * k;
        float cls = b[0];
        double xs[2] = {(b[1] - b[3] / 2.0) * in_w, (b[1] + b[3] / 2.0) * in_w};
        double ys[2] = {(b[2] - b[4] / 2.0) * in_h, (b[2] + b[4] / 2.0) * in_h};
        double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
        for (int c = 0; c < 4; c++) {
            double x = xs[c & 1], y = ys[c >> 1];
            map(ctx, &x, &y);
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
        double area = (x1 - x0) * (y1 - y0);
        x0 = fmax(x0, 0), y0 = fmax(y0, 0), x1 = fmin(x1, out_w), y1 = fmin(y1, out_h);
        double w = x1 - x0, h = y1 - y0, eps = 1e-16;
        if (!(w > 2 && h > 2 && w * h / (area + eps) > 0.1 && fmax(w / (h + eps), h / (w + eps)) < 100)) continue;
        float *o = s->boxes + 5 * kept++;
        o[0] = cls;
        o[1] = (float)((x0 + x1) / 2 / out_w);
        o[2] = (float)((y0 + y1) / 2 / out_h);
        o[3] = (float)(w / out_w);
        o[4] = (float)(h / out_h);
    }
    s->n_boxes = kept;
}

/* ---- crop ---- */

static gf_status crop_image(const gf_image *in, int top, int left, int height, int width, uint8_t fill,
                            gf_image *out)
{
    gf_status st = new_image(width, height, in->channels, fill, out);
    if (st) return st;
    size_t c = (size_t)in->channels;
    int x0 = left < 0 ? 0 : left, x1 = left + width > in->width ? in->width : left + width;
    for (int y = 0; y < height && x1 > x0; y++) {
        int sy = top + y;
        if (sy < 0 || sy >= in->height) continue;
        memcpy(out->pixels + ((size_t)y * (size_t)width + (size_t)(x0 - left)) * c,
               in->pixels + ((size_t)sy * (size_t)in->width + (size_t)x0) * c, (size_t)(x1 - x0) * c);
    }
    return GF_OK;
}

static void crop_point(const void *ctx, double *x, double *y)
{
    const int *at = ctx; /* top, left */
    *x -= at[1];
    *y -= at[0];
}

gf_status aug_crop(gf_sample *s, int top, int left, int height, int width)
{
    if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE)
        return gf_fail(GF_ERR_INVALID, "cannot crop %dx%d", width, height);
    gf_image img, mask = {0};
    gf_status st = crop_image(&s->image, top, left, height, width, 0, &img);
    if (!st && s->mask.pixels && (st = crop_image(&s->mask, top, left, height, width, GF_MASK_IGNORE, &mask)))
        gf_image_free(&img);
    if (st) return st;
    const int at[2] = {top, left};
    cut_boxes(s, width, height, crop_point, at);
    replace(&s->image, &img);
    if (mask.pixels) replace(&s->mask, &mask);
    return GF_OK;
}

/* ---- resize ---- */

/* Pillow's resize(NEAREST): its scaling affine path, positions accumulated as it does. */
static gf_status resize_nearest(const gf_image *in, int width, int height, gf_image *out)
{
    int *xin = malloc((size_t)width * sizeof *xin);
    gf_status st = xin ? new_image(width, height, 1, 0, out) : gf_fail(GF_ERR_NOMEM, "out of memory");
    if (st) {
        free(xin);
        return st;
    }
    double ax = (double)in->width / width, ay = (double)in->height / height, xo = ax * 0.5, yo = ay * 0.5;
    for (int x = 0; x < width; x++, xo += ax) xin[x] = coord(xo) < in->width ? coord(xo) : in->width - 1;
    for (int y = 0; y < height; y++, yo += ay) {
        int sy = coord(yo) < in->height ? coord(yo) : in->height - 1;
        for (int x = 0; x < width; x++) out->pixels[(size_t)y * width + x] = in->pixels[(size_t)sy * in->width + xin[x]];
    }
    free(xin);
    return GF_OK;
}

gf_status aug_resize(gf_sample *s, int width, int height)
{
    if (width == s->image.width && height == s->image.height) return GF_OK;
    gf_image img, mask = {0};
    gf_status st = gf_image_resize(&s->image, width, height, &img);
    if (!st && s->mask.pixels && (st = resize_nearest(&s->mask, width, height, &mask))) gf_image_free(&img);
    if (st) return st;
    replace(&s->image, &img);
    if (mask.pixels) replace(&s->mask, &mask);
    return GF_OK; /* normalised boxes stay where they are */
}

/* ---- horizontal flip ---- */

static void mirror(gf_image *img)
{
    size_t c = (size_t)img->channels;
    for (int y = 0; y < img->height; y++) {
        uint8_t *row = img->pixels + (size_t)y * (size_t)img->width * c;
        for (int a = 0, b = img->width - 1; a < b; a++, b--)
            for (size_t k = 0; k < c; k++) {
                uint8_t t = row[a * c + k];
                row[a * c + k] = row[b * c + k];
                row[b * c + k] = t;
            }
    }
}

void aug_hflip(gf_sample *s)
{
    mirror(&s->image);
    if (s->mask.pixels) mirror(&s->mask);
    for (int k = 0; k < s->n_boxes; k++) s->boxes[5 * k + 1] = 1.0f - s->boxes[5 * k + 1];
}

/* ---- affine ---- */

/* Pillow's generic transform with its bilinear filter (bilinear_filter8 / 32RGB). */
static void affine_bilinear(const gf_image *in, gf_image *out, const double a[6])
{
    int w = in->width, h = in->height, c = in->channels;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            double xin = a[0] * (x + 0.5) + a[1] * (y + 0.5) + a[2];
            double yin = a[3] * (x + 0.5) + a[4] * (y + 0.5) + a[5];
            if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h) continue; /* stays 0 */
            xin -= 0.5;
            yin -= 0.5;
            int ix = pil_floor(xin), iy = pil_floor(yin);
            double dx = xin - ix, dy = yin - iy;
            int x0 = ix < 0 ? 0 : ix < w ? ix : w - 1, x1 = ix + 1 < 0 ? 0 : ix + 1 < w ? ix + 1 : w - 1;
            const uint8_t *row0 = in->pixels + (size_t)(iy < 0 ? 0 : iy < h ? iy : h - 1) * w * c;
            const uint8_t *row1 = iy + 1 >= 0 && iy + 1 < h ? in->pixels + (size_t)(iy + 1) * w * c : NULL;
            uint8_t *o = out->pixels + ((size_t)y * out->width + x) * c;
            for (int k = 0; k < c; k++) {
                double v1 = row0[x0 * c + k] + (row0[x1 * c + k] - row0[x0 * c + k]) * dx;
                double v2 = row1 ? row1[x0 * c + k] + (row1[x1 * c + k] - row1[x0 * c + k]) * dx : v1;
                v1 = v1 + (v2 - v1) * dy;
                o[k] = (uint8_t)v1;
            }
        }
}

static int fits_fixed(const double a[6], int x, int y)
{
    return fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

static int fix16(double v) { return pil_floor(v * 65536.0 + 0.5); }

/* Pillow's ImagingTransformAffine with NEAREST: a scaling path, a 16.16 fixed-point
 * path, and a floating-point one for coordinates too large for fixed point. out is
 * filled beforehand; pixels that map outside the input keep that. */
static gf_status affine_nearest(const gf_image *in, gf_image *out, const double a[6])
{
    int w = in->width, h = in->height, ow = out->width, oh = out->height;
    const uint8_t *src = in->pixels;
    uint8_t *dst = out->pixels;
    if (a[1] == 0 && a[3] == 0) {
        int *xin = calloc((size_t)ow, sizeof *xin), xmin = ow, xmax = 0;
        if (!xin) return gf_fail(GF_ERR_NOMEM, "out of memory");
        double xo = a[2] + a[0] * 0.5, yo = a[5] + a[4] * 0.5;
        for (int x = 0; x < ow; x++, xo += a[0]) {
            int sx = coord(xo);
            if (sx >= 0 && sx < w) {
                xmax = x + 1;
                if (x < xmin) xmin = x;
                xin[x] = sx;
            }
        }
        for (int y = 0; y < oh; y++, yo += a[4]) {
            int sy = coord(yo);
            if (sy >= 0 && sy < h)
                for (int x = xmin; x < xmax; x++) dst[(size_t)y * ow + x] = src[(size_t)sy * w + xin[x]];
        }
        free(xin);
    } else if (fits_fixed(a, 0, 0) && fits_fixed(a, ow, oh) && fits_fixed(a, 0, oh) && fits_fixed(a, ow, 0)) {
        int a0 = fix16(a[0]), a1 = fix16(a[1]), a3 = fix16(a[3]), a4 = fix16(a[4]);
        int a2 = fix16(a[2] + a[0] * 0.5 + a[1] * 0.5), a5 = fix16(a[5] + a[3] * 0.5 + a[4] * 0.5);
        for (int y = 0; y < oh; y++, a2 += a1, a5 += a4) {
            int xx = a2, yy = a5;
            for (int x = 0; x < ow; x++, xx += a0, yy += a3) {
                int sx = xx >> 16, sy = yy >> 16; /* arithmetic shifts: floor */
                if (sx >= 0 && sx < w && sy >= 0 && sy < h) dst[(size_t)y * ow + x] = src[(size_t)sy * w + sx];
            }
        }
    } else {
        double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
        for (int y = 0; y < oh; y++, xo += a[1], yo += a[4]) {
            double xx = xo, yy = yo;
            for (int x = 0; x < ow; x++, xx += a[0], yy += a[3]) {
                int sx = coord(xx), sy = coord(yy);
                if (sx >= 0 && sx < w && sy >= 0 && sy < h) dst[(size_t)y * ow + x] = src[(size_t)sy * w + sx];
            }
        }
    }
    return GF_OK;
}

/* The forward map of an affine step: input point to output point, m inverted. */
static void affine_point(const void *ctx, double *x, double *y)
{
    const double *m = ctx;
    double det = m[0] * m[4] - m[1] * m[3], px = *x - m[2], py = *y - m[5];
    *x = (m[4] * px - m[1] * py) / det;
    *y = (m[0] * py - m[3] * px) / det;
}

gf_status aug_affine(gf_sample *s, const double m[6])
{
    if (!(fabs(m[0] * m[4] - m[1] * m[3]) > 1e-12))
        return gf_fail(GF_ERR_INVALID, "an affine map that collapses the image (determinant 0)");
    int w = s->image.width, h = s->image.height;
    gf_image img, mask = {0};
    gf_status st = new_image(w, h, s->image.channels, 0, &img);
    if (st) return st;
    affine_bilinear(&s->image, &img, m);
    if (s->mask.pixels) {
        st = new_image(w, h, 1, GF_MASK_IGNORE, &mask);
        if (!st) st = affine_nearest(&s->mask, &mask, m);
        if (st) {
            gf_image_free(&img);
            gf_image_free(&mask);
            return st;
        }
    }
    cut_boxes(s, w, h, affine_point, m);
    replace(&s->image, &img);
    if (mask.pixels) replace(&s->mask, &mask);
    return GF_OK;
}

/* Python's round(v, 15): the double nearest the decimal rounding of v's exact value. */
static double round15(double v)
{
    char text[64];
    snprintf(text, sizeof text, "%.15f", v);
    return strtod(text, NULL);
}

void aug_rotation_matrix(double degrees, int width, int height, double m[6])
{
    double angle = fmod(degrees, 360.0); /* Python's angle % 360.0 */
    if (angle < 0) angle += 360.0;
    angle = -(angle * (M_PI / 180.0));
    m[0] = round15(cos(angle)), m[1] = round15(sin(angle)), m[2] = 0.0;
    m[3] = round15(-sin(angle)), m[4] = round15(cos(angle)), m[5] = 0.0;
    double cx = width / 2.0, cy = height / 2.0;
    m[2] = m[0] * -cx + m[1] * -cy + 0.0;
    m[5] = m[3] * -cx + m[4] * -cy + 0.0;
    m[2] += cx;
    m[5] += cy;
}

void aug_affine_matrix(double angle, double tx, double ty, double scale, double shear_x, double shear_y, int width,
                       int height, double m[6])
{
    double rot = angle * (M_PI / 180.0), sx = shear_x * (M_PI / 180.0), sy = shear_y * (M_PI / 180.0);
    double cx = width * 0.5, cy = height * 0.5;
    double a = cos(rot - sy) / cos(sy);
    double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    double c = sin(rot - sy) / cos(sy);
    double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    m[0] = d / scale, m[1] = -b / scale, m[2] = 0.0 / scale;
    m[3] = -c / scale, m[4] = a / scale, m[5] = 0.0 / scale;
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
}
