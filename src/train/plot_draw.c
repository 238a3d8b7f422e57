/* Drawing on gf_images: see plot_draw.h. */
#include "plot_draw.h"

#include "../runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sides beyond this are a mistake, not a chart. */
#define CANVAS_MAX_SIDE 16384

gf_status gf_canvas_new(gf_image *img, int width, int height, gf_rgb background, const char *what)
{
    *img = (gf_image){0};
    if (width < 1 || height < 1 || width > CANVAS_MAX_SIDE || height > CANVAS_MAX_SIDE)
        return gf_fail(GF_ERR_INVALID, "%s: %dx%d pixels; expected sides of 1 to %d", what, width, height,
                       CANVAS_MAX_SIDE);
    img->pixels = malloc((size_t)width * (size_t)height * 3);
    if (!img->pixels) return gf_fail(GF_ERR_NOMEM, "%s: out of memory for %dx%d pixels", what, width, height);
    img->width = width;
    img->height = height;
    img->channels = 3;
    gf_canvas_fill(img, (gf_rect){0, 0, width - 1, height - 1}, background);
    return GF_OK;
}

static void put(gf_image *img, int x, int y, gf_rgb c)
{
    if (x < 0 || y < 0 || x >= img->width || y >= img->height) return;
    uint8_t *p = img->pixels + ((size_t)y * (size_t)img->width + (size_t)x) * 3;
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

void gf_canvas_fill(gf_image *img, gf_rect r, gf_rgb c)
{
    for (int y = r.y0 < 0 ? 0 : r.y0; y <= r.y1 && y < img->height; y++)
        for (int x = r.x0 < 0 ? 0 : r.x0; x <= r.x1 && x < img->width; x++) put(img, x, y, c);
}

static void stamp(gf_image *img, int x, int y, gf_rgb c, gf_rect clip)
{
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++)
            if (x + dx >= clip.x0 && x + dx <= clip.x1 && y + dy >= clip.y0 && y + dy <= clip.y1)
                put(img, x + dx, y + dy, c);
}

void gf_canvas_line(gf_image *img, double x0, double y0, double x1, double y1, gf_rgb c, gf_rect clip)
{
    /* Far-off points would overflow the integers; anything past the canvas is clipped anyway. */
    double limit = 4.0 * CANVAS_MAX_SIDE;
    if (!(fabs(x0) < limit && fabs(y0) < limit && fabs(x1) < limit && fabs(y1) < limit)) return;
    int x = (int)lround(x0), y = (int)lround(y0), xe = (int)lround(x1), ye = (int)lround(y1);
    int dx = abs(xe - x), dy = -abs(ye - y), sx = x < xe ? 1 : -1, sy = y < ye ? 1 : -1, err = dx + dy;
    for (;;) {
        stamp(img, x, y, c, clip);
        if (x == xe && y == ye) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x += sx;
        if (e2 <= dx) err += dx, y += sy;
    }
}

int gf_text_width(const char *s, int scale)
{
    size_t n = strlen(s);
    return n ? (int)(n * GF_GLYPH_ADVANCE - 1) * scale : 0;
}

/* Glyph pixel (gx, gy) of character i lands at column x + along * ax + down * dx and
 * row y + along * ay + down * dy, `along` running with the text and `down` across it. */
static void text(gf_image *img, int x, int y, const char *s, int scale, gf_rgb c, int ax, int ay, int dx, int dy)
{
    for (int i = 0; s[i]; i++) {
        const char *const *rows = gf_font_glyph((unsigned char)s[i]);
        for (int gy = 0; gy < GF_GLYPH_H * scale; gy++)
            for (int gx = 0; gx < GF_GLYPH_W * scale; gx++) {
                if (rows[gy / scale][gx / scale] != '#') continue;
                int along = i * GF_GLYPH_ADVANCE * scale + gx;
                put(img, x + along * ax + gy * dx, y + along * ay + gy * dy, c);
            }
    }
}

void gf_canvas_text(gf_image *img, int x, int y, const char *s, int scale, gf_rgb c)
{
    text(img, x, y, s, scale, c, 1, 0, 0, 1);
}

void gf_canvas_text_up(gf_image *img, int x, int y, const char *s, int scale, gf_rgb c)
{
    text(img, x, y, s, scale, c, 0, -1, 1, 0);
}
