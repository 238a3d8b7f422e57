/* Confusion-matrix heat maps (graft.h, gf_plot_confusion). */
#include "plot_draw.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_CLASSES 2048
#define MARGIN 10
#define GAP 6
#define MAX_LABEL 20            /* class labels beyond this are cut */

static const gf_rgb white = {255, 255, 255}, black = {0, 0, 0}, frame_grey = {128, 128, 128};
static const gf_rgb darkest = {8, 48, 107};    /* the end of matplotlib's "Blues" */

/* From white at t = 0 to `darkest` at t = 1, every channel monotone. */
static gf_rgb shade(double t)
{
    return (gf_rgb){(uint8_t)lround(255 + (darkest.r - 255) * t), (uint8_t)lround(255 + (darkest.g - 255) * t),
                    (uint8_t)lround(255 + (darkest.b - 255) * t)};
}

static void class_label(const char *const *labels, int i, char *buf, size_t len)
{
    if (labels && labels[i]) snprintf(buf, len, "%.*s", MAX_LABEL, labels[i]);
    else snprintf(buf, len, "%d", i);
}

/* The cells' values: the counts, or each row's shares. */
static double *cell_values(const int64_t *confusion, int n, int normalize, double *largest)
{
    double *v = malloc((size_t)n * (size_t)n * sizeof *v);
    *largest = 0;
    for (int i = 0; v && i < n; i++) {
        int64_t row = 0;
        for (int j = 0; j < n; j++) row += confusion[i * n + j];
        for (int j = 0; j < n; j++) {
            double x = (double)confusion[i * n + j];
            v[i * n + j] = normalize ? (row ? x / (double)row : 0) : x;
            *largest = fmax(*largest, v[i * n + j]);
        }
    }
    return v;
}

static void value_text(double v, int normalize, char *buf, size_t len)
{
    if (normalize) snprintf(buf, len, "%.2f", v);
    else snprintf(buf, len, "%.0f", v);
}

/* The values are printed in the cells when the widest fits in every cell, else none. */
static void draw_cells(gf_image *img, const double *v, int n, double largest, int normalize,
                       const gf_heatmap_layout *at)
{
    char buf[32];
    value_text(largest, normalize, buf, sizeof buf);
    int show = gf_text_width(buf, 1) <= at->cell - 4 && GF_GLYPH_H <= at->cell - 4;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double t = largest > 0 ? v[i * n + j] / largest : 0;
            int x = at->left + j * at->cell, y = at->top + i * at->cell;
            gf_canvas_fill(img, (gf_rect){x, y, x + at->cell - 1, y + at->cell - 1}, shade(t));
            if (!show) continue;
            value_text(v[i * n + j], normalize, buf, sizeof buf);
            int w = gf_text_width(buf, 1);
            gf_canvas_text(img, x + (at->cell - w) / 2, y + (at->cell - GF_GLYPH_H + 1) / 2, buf, 1,
                           t > 0.5 ? white : black);
        }
}

gf_status gf_plot_confusion(const int64_t *confusion, int n, const char *const *labels, const char *title,
                            int normalize, gf_image *out, gf_heatmap_layout *layout)
{
    *out = (gf_image){0};
    if (!confusion || n < 1 || n > MAX_CLASSES)
        return gf_fail(GF_ERR_INVALID, "confusion heat map: %d classes; expected 1 to %d", confusion ? n : 0,
                       MAX_CLASSES);
    for (int i = 0; i < n * n; i++)
        if (confusion[i] < 0)
            return gf_fail(GF_ERR_INVALID, "confusion heat map: cell (%d, %d) holds %lld; expected a count", i / n,
                           i % n, (long long)confusion[i]);
    gf_heatmap_layout at = {.cell = 560 / n};
    at.cell = at.cell > 48 ? 48 : at.cell < 2 ? 2 : at.cell;
    int show_labels = at.cell >= GF_GLYPH_H + 1, label_w = 0;
    char buf[64];
    for (int i = 0; show_labels && i < n; i++) {
        class_label(labels, i, buf, sizeof buf);
        int w = gf_text_width(buf, 1);
        label_w = w > label_w ? w : label_w;
    }
    int has_title = title && *title, grid = n * at.cell;
    at.left = MARGIN + GF_GLYPH_H + GAP + label_w + GAP;
    at.top = MARGIN + (has_title ? 2 * GF_GLYPH_H + MARGIN : 0);
    int width = at.left + grid + MARGIN, height = at.top + grid + GAP + label_w + GAP + GF_GLYPH_H + MARGIN;
    if (has_title && gf_text_width(title, 2) + 2 * MARGIN > width) width = gf_text_width(title, 2) + 2 * MARGIN;
    double largest;
    double *v = cell_values(confusion, n, normalize, &largest);
    if (!v) return gf_fail(GF_ERR_NOMEM, "confusion heat map: out of memory for %d classes", n);
    gf_status st = gf_canvas_new(out, width, height, white, "confusion heat map");
    if (st) {
        free(v);
        return st;
    }
    gf_canvas_fill(out, (gf_rect){at.left - 1, at.top - 1, at.left + grid, at.top + grid}, frame_grey);
    draw_cells(out, v, n, largest, normalize, &at);
    free(v);
    for (int i = 0; show_labels && i < n; i++) {
        class_label(labels, i, buf, sizeof buf);
        int middle = i * at.cell + (at.cell - GF_GLYPH_H + 1) / 2;
        gf_canvas_text(out, at.left - GAP - gf_text_width(buf, 1), at.top + middle, buf, 1, black);
        gf_canvas_text_up(out, at.left + middle, at.top + grid + GAP + gf_text_width(buf, 1) - 1, buf, 1, black);
    }
    if (has_title) gf_canvas_text(out, (width - gf_text_width(title, 2)) / 2, MARGIN, title, 2, black);
    gf_canvas_text_up(out, MARGIN, at.top + (grid + gf_text_width("true", 1)) / 2, "true", 1, black);
    gf_canvas_text(out, at.left + (grid - gf_text_width("predicted", 1)) / 2, height - MARGIN - GF_GLYPH_H,
                   "predicted", 1, black);
    if (layout) *layout = at;
    return GF_OK;
}
