/* Image transforms for classification preprocessing: resize as Pillow's
 * BILINEAR (a triangle filter widened by the downscale factor, so shrinking
 * averages instead of aliasing; in Pillow's fixed point, so the levels come out
 * the same), center crop, and normalization to CHW floats. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft.h"
#include "data/image.h"
#include "runtime/error.h"

/* Pillow's fixed point: weights and sums in units of 2^-22. */
#define PRECISION_BITS 22

/* For each output position along one axis: the first input index, the number of
 * taps and their weights (`taps` per output, zero-padded). */
typedef struct resample_axis {
    int taps;
    int *first;
    int *count;
    int32_t *weights;
} resample_axis;

static void axis_free(resample_axis *a)
{
    free(a->first);
    free(a->count);
    free(a->weights);
}

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's precompute_coeffs and normalize_coeffs_8bpc (libImaging/Resample.c):
 * weights in double, normalised, then rounded to fixed point. */
static gf_status axis_init(resample_axis *a, int in_size, int out_size)
{
    double scale = (double)in_size / out_size;
    double filter_scale = scale > 1.0 ? scale : 1.0;
    double support = filter_scale; /* the triangle's radius is 1, widened when shrinking */
    a->taps = (int)ceil(support) * 2 + 1;
    a->first = malloc((size_t)out_size * sizeof *a->first);
    a->count = malloc((size_t)out_size * sizeof *a->count);
    a->weights = calloc((size_t)out_size * (size_t)a->taps, sizeof *a->weights);
    double *w = calloc((size_t)a->taps, sizeof *w);
    if (!a->first || !a->count || !a->weights || !w) {
        axis_free(a);
        free(w);
        return gf_fail(GF_ERR_NOMEM, "out of memory resizing an image to %d", out_size);
    }
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale, total = 0, inv = 1.0 / filter_scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        if (hi - lo > a->taps) hi = lo + a->taps;
        for (int k = 0; k < hi - lo; k++) {
            w[k] = triangle((k + lo - center + 0.5) * inv);
            total += w[k];
        }
        int32_t *fixed = a->weights + (size_t)i * (size_t)a->taps;
        for (int k = 0; k < hi - lo; k++) {
            double v = total != 0.0 ? w[k] / total : w[k];
            fixed[k] = (int32_t)(0.5 + v * (1 << PRECISION_BITS)); /* the triangle is never negative */
        }
        a->first[i] = lo;
        a->count[i] = hi - lo;
    }
    free(w);
    return GF_OK;
}

static uint8_t clip8(int32_t sum)
{
    int32_t v = sum >> PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* One separable pass: `along_x` resamples rows, otherwise columns. */
static void resample_pass(const uint8_t *src, int src_w, uint8_t *dst, int dst_w, int dst_h, int channels,
                          const resample_axis *a, int along_x)
{
    for (int y = 0; y < dst_h; y++)
        for (int x = 0; x < dst_w; x++) {
            int o = along_x ? x : y;
            const int32_t *w = a->weights + (size_t)o * (size_t)a->taps;
            for (int c = 0; c < channels; c++) {
                int32_t sum = 1 << (PRECISION_BITS - 1);
                for (int k = 0; k < a->count[o]; k++) {
                    int sx = along_x ? a->first[o] + k : x, sy = along_x ? y : a->first[o] + k;
                    sum += w[k] * src[((size_t)sy * (size_t)src_w + (size_t)sx) * (size_t)channels + (size_t)c];
                }
                dst[((size_t)y * (size_t)dst_w + (size_t)x) * (size_t)channels + (size_t)c] = clip8(sum);
            }
        }
}

gf_status gf_image_resize(const gf_image *img, int width, int height, gf_image *out)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || (int64_t)width * height > ((int64_t)1 << 28))
        return gf_fail(GF_ERR_INVALID, "cannot resize an image to %dx%d", width, height);
    resample_axis ax, ay;
    gf_status st = axis_init(&ax, img->width, width);
    if (st) return st;
    st = axis_init(&ay, img->height, height);
    if (st) {
        axis_free(&ax);
        return st;
    }
    size_t c = (size_t)img->channels;
    uint8_t *rows = malloc((size_t)width * (size_t)img->height * c);
    uint8_t *pixels = malloc((size_t)width * (size_t)height * c);
    if (rows && pixels) {
        /* Horizontal first, rounding to 8 bits in between, as Pillow does. */
        resample_pass(img->pixels, img->width, rows, width, img->height, img->channels, &ax, 1);
        resample_pass(rows, width, pixels, width, height, img->channels, &ay, 0);
    }
    free(rows);
    axis_free(&ax);
    axis_free(&ay);
    if (!rows || !pixels) {
        free(pixels);
        return gf_fail(GF_ERR_NOMEM, "out of memory resizing an image to %dx%d", width, height);
    }
    *out = (gf_image){width, height, img->channels, pixels};
    return GF_OK;
}

void gf_shorter_side_size(int width, int height, int shorter, int *new_width, int *new_height)
{
    /* The longer side as torchvision computes it: truncated, not rounded. */
    *new_width = width <= height ? shorter : (int)((int64_t)shorter * width / height);
    *new_height = width <= height ? (int)((int64_t)shorter * height / width) : shorter;
}

gf_status gf_image_resize_shorter(const gf_image *img, int shorter, gf_image *out)
{
    if (shorter <= 0) return gf_fail(GF_ERR_INVALID, "cannot resize an image's shorter side to %d", shorter);
    int w, h;
    gf_shorter_side_size(img->width, img->height, shorter, &w, &h);
    return gf_image_resize(img, w, h, out);
}

gf_status gf_image_center_crop(const gf_image *img, int width, int height, gf_image *out)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || width > img->width || height > img->height)
        return gf_fail(GF_ERR_INVALID, "cannot crop %dx%d from an image of %dx%d", width, height, img->width,
                       img->height);
    /* torchvision rounds the offsets half to even; nearbyint does in the default mode. */
    int left = (int)nearbyint((img->width - width) / 2.0), top = (int)nearbyint((img->height - height) / 2.0);
    size_t c = (size_t)img->channels, row = (size_t)width * c;
    uint8_t *pixels = malloc(row * (size_t)height);
    if (!pixels) return gf_fail(GF_ERR_NOMEM, "out of memory cropping an image to %dx%d", width, height);
    for (int y = 0; y < height; y++)
        memcpy(pixels + (size_t)y * row,
               img->pixels + ((size_t)(top + y) * (size_t)img->width + (size_t)left) * c, row);
    *out = (gf_image){width, height, img->channels, pixels};
    return GF_OK;
}

void gf_image_to_chw(const gf_image *img, const float *mean, const float *std, float *dst)
{
    size_t plane = (size_t)img->width * (size_t)img->height;
    for (int c = 0; c < img->channels; c++)
        for (size_t p = 0; p < plane; p++)
            dst[(size_t)c * plane + p] =
                (img->pixels[p * (size_t)img->channels + (size_t)c] / 255.0f - mean[c]) / std[c];
}
