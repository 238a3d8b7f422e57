/* Line charts of training series (graft.h, gf_plot_lines): loss, accuracy, learning
 * rate per epoch or step, with ticks at "nice" values, grid, legend and labels. */
#include "plot_draw.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_SERIES 10
#define MARGIN 10
#define TICK 4                  /* tick marks' length, outside the frame */
#define SWATCH 18               /* the legend's sample of a line */
#define LEGEND_ROW 12
#define MAX_NAME 24             /* legend names beyond this are cut */

static const gf_rgb tab10[MAX_SERIES] = {
    {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28}, {0x94, 0x67, 0xbd},
    {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x7f, 0x7f, 0x7f}, {0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf},
};
static const gf_rgb white = {255, 255, 255}, black = {0, 0, 0}, grid_grey = {225, 225, 225};

typedef struct axis {
    double min, max, step;
    int64_t first;              /* min = first * step */
    int ticks;
} axis;

/* Ticks every 1, 2 or 5 times a power of ten, about `target` of them, the range
 * widened to whole steps; `whole`: steps of at least 1. A flat range is widened first. */
static axis nice_axis(double lo, double hi, int target, int whole)
{
    if (!(hi > lo)) {
        double pad = whole ? 1 : lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= pad, hi += pad;
    }
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    if (whole && step < 1) step = 1;
    axis a = {.step = step, .first = (int64_t)floor(lo / step + 1e-9)};
    int64_t last = (int64_t)ceil(hi / step - 1e-9);
    if (last <= a.first) last = a.first + 1;
    a.min = fmin((double)a.first * step, lo);   /* first * step may round past lo */
    a.max = fmax((double)last * step, hi);
    a.ticks = (int)(last - a.first) + 1;
    return a;
}

static double tick_value(const axis *a, int i)
{
    double v = (double)(a->first + i) * a->step;
    return fabs(v) < a->step * 1e-6 ? 0 : v;   /* no "-0" */
}

/* The value with as many significant digits as the step needs. */
static void tick_label(const axis *a, int i, char *buf, size_t len)
{
    double v = tick_value(a, i), big = fmax(fabs(a->min), fabs(a->max));
    int whole = (int)floor(log10(big)) + 1, digits = whole - (int)floor(log10(a->step) + 1e-9);
    if (whole > digits && whole <= 6) digits = whole;   /* 1000, not 1e+03 */
    snprintf(buf, len, "%.*g", digits < 1 ? 1 : digits > 15 ? 15 : digits, v);
}

static double series_x(const gf_series *s, int i) { return s->x ? s->x[i] : i + 1; }

static gf_status check_chart(const gf_chart *c, int *width, int *height)
{
    if (!c || !c->series || c->n_series < 1 || c->n_series > MAX_SERIES)
        return gf_fail(GF_ERR_INVALID, "line chart: %d series; expected 1 to %d", c && c->series ? c->n_series : 0,
                       MAX_SERIES);
    *width = c->width, *height = c->height;
    if (!*width && !*height) *width = 640, *height = 400;
    if (*width < 240 || *height < 160)
        return gf_fail(GF_ERR_INVALID, "line chart: %dx%d pixels; expected at least 240x160", *width, *height);
    int points = 0;
    for (int k = 0; k < c->n_series; k++) {
        const gf_series *s = &c->series[k];
        if (s->n < 1 || !s->y)
            return gf_fail(GF_ERR_INVALID, "line chart: series %d ('%s') has no values", k, s->name ? s->name : "");
        for (int i = 0; i < s->n; i++) {
            if (!isfinite(series_x(s, i)))
                return gf_fail(GF_ERR_INVALID, "line chart: series %d ('%s') has x %g at point %d; expected finite x",
                               k, s->name ? s->name : "", series_x(s, i), i);
            points += isfinite(s->y[i]) != 0;
        }
    }
    if (!points) return gf_fail(GF_ERR_INVALID, "line chart: no series has a finite value");
    return GF_OK;
}

static int has_text(const char *s) { return s && *s; }

/* The name as the legend shows it: cut to MAX_NAME characters, "series K" when none. */
static void legend_name(const gf_series *s, int k, char *buf, size_t len)
{
    if (has_text(s->name)) snprintf(buf, len, "%.*s", MAX_NAME, s->name);
    else snprintf(buf, len, "series %d", k + 1);
}

/* The data's range over finite points: x over all of them, y over those with a finite y. */
static void data_range(const gf_chart *c, double *x_lo, double *x_hi, double *y_lo, double *y_hi, int *whole_x)
{
    *x_lo = *y_lo = INFINITY, *x_hi = *y_hi = -INFINITY, *whole_x = 1;
    for (int k = 0; k < c->n_series; k++)
        for (int i = 0; i < c->series[k].n; i++) {
            double x = series_x(&c->series[k], i), y = c->series[k].y[i];
            *whole_x = *whole_x && x == floor(x);
            if (!isfinite(y)) continue;
            *x_lo = fmin(*x_lo, x), *x_hi = fmax(*x_hi, x);
            *y_lo = fmin(*y_lo, y), *y_hi = fmax(*y_hi, y);
        }
}

typedef struct chart_frame {
    gf_chart_layout at;
    axis x, y;
    int legend_x;
} chart_frame;

/* Places the plot area: the title above, tick labels and axis labels left and below,
 * the legend right. */
static gf_status place(const gf_chart *c, int width, int height, chart_frame *f)
{
    double x_lo, x_hi, y_lo, y_hi;
    int whole_x;
    data_range(c, &x_lo, &x_hi, &y_lo, &y_hi, &whole_x);
    gf_chart_layout *at = &f->at;
    at->top = MARGIN + (has_text(c->title) ? 2 * GF_GLYPH_H + MARGIN : 4) + 1;
    at->bottom = height - 1 - MARGIN - (has_text(c->x_label) ? GF_GLYPH_H + 6 : 0) - GF_GLYPH_H - TICK - 4;
    f->y = nice_axis(y_lo, y_hi, (at->bottom - at->top) / 40 > 2 ? (at->bottom - at->top) / 40 : 2, 0);
    int label_w = 0, legend_w = 0;
    char buf[64];
    for (int i = 0; i < f->y.ticks; i++) {
        tick_label(&f->y, i, buf, sizeof buf);
        int w = gf_text_width(buf, 1);
        label_w = w > label_w ? w : label_w;
    }
    for (int k = 0; k < c->n_series; k++) {
        legend_name(&c->series[k], k, buf, sizeof buf);
        int w = SWATCH + 4 + gf_text_width(buf, 1);
        legend_w = w > legend_w ? w : legend_w;
    }
    at->left = MARGIN + (has_text(c->y_label) ? GF_GLYPH_H + 6 : 0) + label_w + TICK + 4 + 1;
    at->right = width - 1 - MARGIN - legend_w - 12 - 1;
    f->legend_x = at->right + 1 + 12;
    if (at->right - at->left < 40 || at->bottom - at->top < 40)
        return gf_fail(GF_ERR_INVALID, "line chart: %dx%d pixels leave no room for the plot beside its labels and "
                       "legend", width, height);
    f->x = nice_axis(x_lo, x_hi, (at->right - at->left) / 70 > 2 ? (at->right - at->left) / 70 : 2, whole_x);
    at->x_min = f->x.min, at->x_max = f->x.max, at->x_step = f->x.step;
    at->y_min = f->y.min, at->y_max = f->y.max, at->y_step = f->y.step;
    return GF_OK;
}

static double to_column(const gf_chart_layout *at, double x)
{
    return at->left + (x - at->x_min) / (at->x_max - at->x_min) * (at->right - at->left);
}

static double to_row(const gf_chart_layout *at, double y)
{
    return at->bottom - (y - at->y_min) / (at->y_max - at->y_min) * (at->bottom - at->top);
}

static void draw_axes(gf_image *img, const chart_frame *f)
{
    const gf_chart_layout *at = &f->at;
    char buf[64];
    for (int i = 0; i < f->y.ticks; i++) {
        int row = (int)lround(to_row(at, tick_value(&f->y, i)));
        gf_canvas_fill(img, (gf_rect){at->left, row, at->right, row}, grid_grey);
        gf_canvas_fill(img, (gf_rect){at->left - 1 - TICK, row, at->left - 2, row}, black);
        tick_label(&f->y, i, buf, sizeof buf);
        gf_canvas_text(img, at->left - 1 - TICK - 3 - gf_text_width(buf, 1), row - 3, buf, 1, black);
    }
    for (int i = 0; i < f->x.ticks; i++) {
        int col = (int)lround(to_column(at, tick_value(&f->x, i)));
        gf_canvas_fill(img, (gf_rect){col, at->top, col, at->bottom}, grid_grey);
        gf_canvas_fill(img, (gf_rect){col, at->bottom + 2, col, at->bottom + 1 + TICK}, black);
        tick_label(&f->x, i, buf, sizeof buf);
        gf_canvas_text(img, col - gf_text_width(buf, 1) / 2, at->bottom + 1 + TICK + 3, buf, 1, black);
    }
    gf_canvas_fill(img, (gf_rect){at->left - 1, at->top - 1, at->right + 1, at->top - 1}, black);
    gf_canvas_fill(img, (gf_rect){at->left - 1, at->bottom + 1, at->right + 1, at->bottom + 1}, black);
    gf_canvas_fill(img, (gf_rect){at->left - 1, at->top - 1, at->left - 1, at->bottom + 1}, black);
    gf_canvas_fill(img, (gf_rect){at->right + 1, at->top - 1, at->right + 1, at->bottom + 1}, black);
}

static void draw_labels(gf_image *img, const gf_chart *c, const chart_frame *f)
{
    const gf_chart_layout *at = &f->at;
    if (has_text(c->title))
        gf_canvas_text(img, (img->width - gf_text_width(c->title, 2)) / 2, MARGIN, c->title, 2, black);
    if (has_text(c->x_label))
        gf_canvas_text(img, (at->left + at->right - gf_text_width(c->x_label, 1)) / 2,
                       img->height - MARGIN - GF_GLYPH_H, c->x_label, 1, black);
    if (has_text(c->y_label))
        gf_canvas_text_up(img, MARGIN, (at->top + at->bottom + gf_text_width(c->y_label, 1)) / 2, c->y_label, 1, black);
    char buf[64];
    gf_rect everywhere = {0, 0, img->width - 1, img->height - 1};
    for (int k = 0; k < c->n_series; k++) {
        int row = at->top + 4 + k * LEGEND_ROW;
        gf_canvas_line(img, f->legend_x, row + 3, f->legend_x + SWATCH - 2, row + 3, tab10[k], everywhere);
        legend_name(&c->series[k], k, buf, sizeof buf);
        gf_canvas_text(img, f->legend_x + SWATCH + 4, row, buf, 1, black);
    }
}

/* Each run of finite points joined; a lone one still shows as a dot. */
static void draw_series(gf_image *img, const gf_series *s, gf_rgb colour, const gf_chart_layout *at)
{
    gf_rect clip = {at->left, at->top, at->right, at->bottom};
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->y[i])) continue;
        double x0 = to_column(at, series_x(s, i)), y0 = to_row(at, s->y[i]);
        int next = i + 1 < s->n && isfinite(s->y[i + 1]);
        double x1 = next ? to_column(at, series_x(s, i + 1)) : x0, y1 = next ? to_row(at, s->y[i + 1]) : y0;
        gf_canvas_line(img, x0, y0, x1, y1, colour, clip);
    }
}

gf_status gf_plot_lines(const gf_chart *c, gf_image *out, gf_chart_layout *layout)
{
    *out = (gf_image){0};
    int width = 0, height = 0;
    chart_frame f = {{0}};
    gf_status st = check_chart(c, &width, &height);
    if (!st) st = place(c, width, height, &f);
    if (!st) st = gf_canvas_new(out, width, height, white, "line chart");
    if (st) return st;
    draw_axes(out, &f);
    for (int k = 0; k < c->n_series; k++) draw_series(out, &c->series[k], tab10[k], &f.at);
    draw_labels(out, c, &f);
    if (layout) *layout = f.at;
    return GF_OK;
}
