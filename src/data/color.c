/* Colour steps as torchvision does them to PIL images: ImageEnhance's blends
 * (Image.blend in float, truncated) and F.adjust_hue through Pillow's HSV
 * conversions, with Pillow's rounding so the levels come out the same. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "runtime/error.h"

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* Pillow's luma for convert("L"): ITU-R 601-2 in 16-bit fixed point. */
static uint8_t luma(const uint8_t *rgb) { return (uint8_t)((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16); }

/* Image.blend(degenerate, image, alpha) for one sample (ImagingBlend). */
static uint8_t blend(int degenerate, int value, float alpha)
{
    if (alpha >= 0 && alpha <= 1.0) return (uint8_t)(degenerate + alpha * (value - degenerate));
    float v = (float)(degenerate + alpha * (value - degenerate));
    return v <= 0.0 ? 0 : v >= 255.0 ? 255 : (uint8_t)v;
}

void color_brightness(gf_image *img, float f)
{
    size_t n = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    for (size_t k = 0; k < n; k++) img->pixels[k] = blend(0, img->pixels[k], f);
}

void color_contrast(gf_image *img, float f)
{
    size_t n = (size_t)img->width * (size_t)img->height, c = (size_t)img->channels;
    uint64_t sum = 0;
    for (size_t p = 0; p < n; p++) sum += c == 3 ? luma(img->pixels + 3 * p) : img->pixels[p];
    int mean = (int)((double)sum / (double)n + 0.5); /* ImageStat's mean of the "L" image, rounded */
    for (size_t k = 0; k < n * c; k++) img->pixels[k] = blend(mean, img->pixels[k], f);
}

void color_saturation(gf_image *img, float f)
{
    if (img->channels != 3) return; /* the grey image is its own degenerate */
    size_t n = (size_t)img->width * (size_t)img->height;
    for (size_t p = 0; p < n; p++) {
        uint8_t *px = img->pixels + 3 * p, grey = luma(px);
        for (int k = 0; k < 3; k++) px[k] = blend(grey, px[k], f);
    }
}

/* Pillow's rgb2hsv_row (libImaging/Convert.c), its float and double steps kept. */
static void rgb_to_hsv(const uint8_t *in, uint8_t *out)
{
    uint8_t r = in[0], g = in[1], b = in[2], maxc = MAX(r, MAX(g, b)), minc = MIN(r, MIN(g, b));
    out[2] = maxc;
    if (minc == maxc) {
        out[0] = out[1] = 0;
        return;
    }
    float cr = (float)(maxc - minc), s = cr / (float)maxc, h;
    float rc = (float)(maxc - r) / cr, gc = (float)(maxc - g) / cr, bc = (float)(maxc - b) / cr;
    if (r == maxc) h = bc - gc;
    else if (g == maxc) h = 2.0 + rc - bc;
    else h = 4.0 + gc - rc;
    h = fmod(h / 6.0 + 1.0, 1.0);
    int uh = (int)(h * 255.0), us = (int)(s * 255.0);
    out[0] = (uint8_t)(uh < 0 ? 0 : uh > 255 ? 255 : uh);
    out[1] = (uint8_t)(us < 0 ? 0 : us > 255 ? 255 : us);
}

static uint8_t clip8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v; }

/* Pillow's hsv2rgb. */
static void hsv_to_rgb(const uint8_t *in, uint8_t *out)
{
    uint8_t h = in[0], s = in[1], v = in[2];
    if (s == 0) {
        out[0] = out[1] = out[2] = v;
        return;
    }
    int i = (int)floor((float)h * 6.0 / 255.0);
    float f = (float)h * 6.0 / 255.0 - (float)i, fs = (float)s / 255.0;
    uint8_t p = clip8(round((float)v * (1.0 - fs))), q = clip8(round((float)v * (1.0 - fs * f)));
    uint8_t t = clip8(round((float)v * (1.0 - fs * (1.0 - f))));
    const uint8_t rgb[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    memcpy(out, rgb[i % 6], 3);
}

void color_hue(gf_image *img, double hue)
{
    if (img->channels != 3) return; /* F.adjust_hue returns grey images as they are */
    /* np.uint8(hue * 255): truncated towards zero, then taken modulo 256. */
    uint8_t shift = (uint8_t)((int)(hue * 255) & 0xFF);
    size_t n = (size_t)img->width * (size_t)img->height;
    for (size_t p = 0; p < n; p++) {
        uint8_t hsv[3];
        rgb_to_hsv(img->pixels + 3 * p, hsv);
        hsv[0] = (uint8_t)(hsv[0] + shift);
        hsv_to_rgb(hsv, img->pixels + 3 * p);
    }
}

gf_status color_grey_to_rgb(gf_image *img)
{
    if (img->channels == 3) return GF_OK;
    size_t n = (size_t)img->width * (size_t)img->height;
    uint8_t *rgb = malloc(3 * n);
    if (!rgb) return gf_fail(GF_ERR_NOMEM, "out of memory for a %dx%d image", img->width, img->height);
    for (size_t p = 0; p < n; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = img->pixels[p];
    free(img->pixels);
    img->pixels = rgb;
    img->channels = 3;
    return GF_OK;
}
