/* Drawing on gf_images for the report images: rectangles, lines, pixel-font text.
 * Coordinates are pixels, x to the right, y down; everything clips to the image. */
#ifndef GF_PLOT_DRAW_H
#define GF_PLOT_DRAW_H

#include "graft.h"

#define GF_GLYPH_W 5
#define GF_GLYPH_H 8        /* rows 0..6 above the baseline, row 7 below */
#define GF_GLYPH_ADVANCE 6  /* a glyph and a blank column */

typedef struct gf_rgb {
    uint8_t r, g, b;
} gf_rgb;

/* Inclusive bounds. */
typedef struct gf_rect {
    int x0, y0, x1, y1;
} gf_rect;

/* A glyph's rows, '#' where ink is; '?' stands for bytes outside printable ASCII. */
const char *const *gf_font_glyph(unsigned char ch);

/* A new RGB image filled with `background`; `what` names it in errors. */
gf_status gf_canvas_new(gf_image *img, int width, int height, gf_rgb background, const char *what);
void gf_canvas_fill(gf_image *img, gf_rect r, gf_rgb c);
/* A 2-pixel line: the 2x2 squares with top-left corners on the Bresenham line between
 * the rounded end points, kept inside `clip`. */
void gf_canvas_line(gf_image *img, double x0, double y0, double x1, double y1, gf_rgb c, gf_rect clip);

/* Text of `scale`-times-sized glyphs with its top-left corner at (x, y); width in pixels
 * (the last glyph's blank column not counted). */
int gf_text_width(const char *s, int scale);
void gf_canvas_text(gf_image *img, int x, int y, const char *s, int scale, gf_rgb c);
/* The same turned a quarter anticlockwise, reading upwards: the glyphs' tops face
 * column x (the text covers columns x .. x + 8 scale - 1), the first glyph starts at row y. */
void gf_canvas_text_up(gf_image *img, int x, int y, const char *s, int scale, gf_rgb c);

#endif
