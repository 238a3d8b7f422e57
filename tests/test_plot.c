/* Draws graft's report images from specs on stdin, for tests/test_plot.py to check
 * with Pillow.
 *
 *   test_plot lines OUT W H TITLE XLABEL YLABEL   stdin: S, then per series:
 *                                                 NAME N HAS_X [x...] y...
 *   test_plot confusion OUT N NORMALIZE TITLE     stdin: N*N counts, then N labels or "-"
 *   test_plot mask IN OUT ALPHA IGNORE            stdin: H W, then H*W classes
 *   test_plot boxes IN OUT                        stdin: L labels, n, then n rows of
 *                                                 image class score cx cy w h
 *   test_plot save OUT W H C                      stdin: W*H*C bytes as numbers
 * Texts given as "-" are NULL; "_" in them stands for a space. Layouts go to stdout;
 * errors to stderr with exit status 2. */
#include "graft.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 128

static int fail(void)
{
    fprintf(stderr, "error: %s\n", gf_last_error());
    return 2;
}

static int bad_input(void)
{
    fprintf(stderr, "error: malformed input on stdin\n");
    return 2;
}

/* A text argument: NULL for "-", else with each "_" made a space, in place. */
static const char *text_arg(char *s)
{
    if (!strcmp(s, "-")) return NULL;
    for (char *p = s; *p; p++)
        if (*p == '_') *p = ' ';
    return s;
}

static int lines(int argc, char **argv)
{
    if (argc < 6) return bad_input();
    int n_series;
    if (scanf("%d", &n_series) != 1 || n_series < 0 || n_series > 64) return bad_input();
    gf_series series[64];
    char names[64][MAX_TEXT];
    for (int k = 0; k < n_series; k++) {
        int has_x;
        if (scanf("%127s %d %d", names[k], &series[k].n, &has_x) != 3 || series[k].n < 0) return bad_input();
        double *x = has_x ? malloc(((size_t)series[k].n + 1) * sizeof *x) : NULL;
        double *y = malloc(((size_t)series[k].n + 1) * sizeof *y);
        for (int i = 0; x && i < series[k].n; i++)
            if (scanf("%lf", &x[i]) != 1) return bad_input();
        for (int i = 0; i < series[k].n; i++)
            if (scanf("%lf", &y[i]) != 1) return bad_input();
        series[k].x = x;
        series[k].y = y;
        series[k].name = text_arg(names[k]);
    }
    gf_chart chart = {text_arg(argv[3]), text_arg(argv[4]), text_arg(argv[5]), series,
                      n_series, atoi(argv[1]), atoi(argv[2])};
    gf_image img;
    gf_chart_layout at;
    int rc = 0;
    if (gf_plot_lines(&chart, &img, &at) || gf_image_save_png(&img, argv[0])) rc = fail();
    else
        printf("layout %d %d %d %d %.17g %.17g %.17g %.17g %.17g %.17g\n", at.left, at.top, at.right, at.bottom,
               at.x_min, at.x_max, at.x_step, at.y_min, at.y_max, at.y_step);
    gf_image_free(&img);
    for (int k = 0; k < n_series; k++) {
        free((void *)series[k].x);
        free((void *)series[k].y);
    }
    return rc;
}

static int confusion(int argc, char **argv)
{
    if (argc < 4) return bad_input();
    int n = atoi(argv[1]);
    if (n < 1 || n > 64) return bad_input();
    int64_t counts[64 * 64];
    char names[64][MAX_TEXT];
    const char *labels[64];
    for (int i = 0; i < n * n; i++)
        if (scanf("%" SCNd64, &counts[i]) != 1) return bad_input();
    for (int i = 0; i < n; i++) {
        if (scanf("%127s", names[i]) != 1) return bad_input();
        labels[i] = text_arg(names[i]);
    }
    gf_image img;
    gf_heatmap_layout at;
    int rc = 0;
    if (gf_plot_confusion(counts, n, labels[0] ? labels : NULL, text_arg(argv[3]), atoi(argv[2]), &img, &at) ||
        gf_image_save_png(&img, argv[0]))
        rc = fail();
    else
        printf("layout %d %d %d\n", at.left, at.top, at.cell);
    gf_image_free(&img);
    return rc;
}

static int mask(int argc, char **argv)
{
    if (argc < 4) return bad_input();
    int64_t dims[2];
    if (scanf("%" SCNd64 " %" SCNd64, &dims[0], &dims[1]) != 2) return bad_input();
    gf_tensor *m;
    gf_image img;
    if (gf_tensor_new(&m, GF_INT64, 2, dims)) return fail();
    for (int64_t i = 0; i < dims[0] * dims[1]; i++)
        if (scanf("%" SCNd64, &((int64_t *)m->data)[i]) != 1) return bad_input();
    int rc = 0;
    if (gf_image_load(argv[0], 3, &img)) rc = fail();
    else if (gf_image_draw_mask(&img, m, strtod(argv[2], NULL), atol(argv[3])) || gf_image_save_png(&img, argv[1]))
        rc = fail();
    gf_image_free(&img);
    gf_tensor_free(m);
    return rc;
}

static int boxes(int argc, char **argv)
{
    if (argc < 2) return bad_input();
    int n_labels;
    int64_t n;
    char names[16][MAX_TEXT];
    const char *labels[16];
    if (scanf("%d", &n_labels) != 1 || n_labels < 0 || n_labels > 16) return bad_input();
    for (int i = 0; i < n_labels; i++) {
        if (scanf("%127s", names[i]) != 1) return bad_input();
        labels[i] = text_arg(names[i]);
    }
    if (scanf("%" SCNd64, &n) != 1 || n < 0 || n > 1000) return bad_input();
    gf_detection d[1000];
    for (int64_t i = 0; i < n; i++) {
        double v[7];
        for (int k = 0; k < 7; k++)
            if (scanf("%lf", &v[k]) != 1) return bad_input();
        d[i] = (gf_detection){(int64_t)v[0], (int)v[1], (float)v[2], (float)v[3], (float)v[4], (float)v[5],
                              (float)v[6]};
    }
    gf_image img;
    int rc = 0;
    if (gf_image_load(argv[0], 3, &img)) rc = fail();
    else if (gf_image_draw_boxes(&img, d, n, labels, n_labels) || gf_image_save_png(&img, argv[1])) rc = fail();
    gf_image_free(&img);
    return rc;
}

static int save(int argc, char **argv)
{
    if (argc < 4) return bad_input();
    gf_image img = {atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), NULL};
    size_t n = img.width > 0 && img.height > 0 && img.channels > 0
                   ? (size_t)img.width * (size_t)img.height * (size_t)img.channels : 0;
    img.pixels = n ? malloc(n) : NULL;
    for (size_t i = 0; i < n; i++) {
        int v;
        if (scanf("%d", &v) != 1) return bad_input();
        img.pixels[i] = (uint8_t)v;
    }
    int rc = gf_image_save_png(&img, argv[0]) ? fail() : 0;
    free(img.pixels);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_plot lines|confusion|mask|boxes|save ARGS < spec\n");
        return 2;
    }
    const char *mode = argv[1];
    argc -= 2, argv += 2;
    if (!strcmp(mode, "lines")) return lines(argc, argv);
    if (!strcmp(mode, "confusion")) return confusion(argc, argv);
    if (!strcmp(mode, "mask")) return mask(argc, argv);
    if (!strcmp(mode, "boxes")) return boxes(argc, argv);
    if (!strcmp(mode, "save")) return save(argc, argv);
    fprintf(stderr, "unknown mode '%s'\n", mode);
    return 2;
}
