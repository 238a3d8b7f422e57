/* Image decoding and preprocessing against the fixtures tests/image_fixtures.py
 * writes: every PNG bit depth and colour type (palette, alpha, 16-bit, Adam7),
 * JPEGs as Pillow decodes them, resize and center crop as Pillow and
 * torchvision do them (within one grey level), and broken files refused with
 * a message that names them.
 *
 * usage: test_image FIXTURE_DIR   (tests/image_fixtures.py runs it) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft.h"
#include "test_check.h"

static const char *dir;

static const char *fixture(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Reads a binary PPM (P6, RGB) or PGM (P5, grey) written by the fixture script. */
static int read_pnm(const char *name, gf_image *img)
{
    FILE *f = fopen(fixture(name), "rb");
    char magic[3] = {0};
    int maxval;
    if (!f || fscanf(f, "%2s %d %d %d", magic, &img->width, &img->height, &maxval) != 4 || fgetc(f) == EOF) {
        fprintf(stderr, "cannot read fixture %s\n", fixture(name));
        exit(2);
    }
    img->channels = !strcmp(magic, "P6") ? 3 : 1;
    size_t n = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    img->pixels = malloc(n);
    if (!img->pixels || fread(img->pixels, 1, n, f) != n) {
        fprintf(stderr, "short fixture %s\n", fixture(name));
        exit(2);
    }
    fclose(f);
    return 0;
}

/* The largest |a - b| over all samples, or -1 when the shapes differ. */
static int max_diff(const gf_image *a, const gf_image *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels) return -1;
    int worst = 0;
    size_t n = (size_t)a->width * (size_t)a->height * (size_t)a->channels;
    for (size_t k = 0; k < n; k++) {
        int d = abs((int)a->pixels[k] - (int)b->pixels[k]);
        if (d > worst) worst = d;
    }
    return worst;
}

static void expect_similar(const char *what, const gf_image *got, const char *expected_name, int tolerance)
{
    gf_image want;
    read_pnm(expected_name, &want);
    int d = max_diff(got, &want);
    CHECK(d >= 0, "%s: got %dx%dx%d, expected %dx%dx%d", what, got->width, got->height, got->channels, want.width,
          want.height, want.channels);
    CHECK(d <= tolerance, "%s: pixels differ by up to %d from %s (tolerance %d)", what, d, expected_name, tolerance);
    gf_image_free(&want);
}

static void expect_decoded(const char *file, int channels, const char *expected_name, int tolerance)
{
    gf_image img;
    gf_status st = gf_image_load(fixture(file), channels, &img);
    CHECK(st == GF_OK, "%s: %s", file, gf_last_error());
    if (st) return;
    char what[256];
    snprintf(what, sizeof what, "%s as %d channel%s", file, channels, channels == 1 ? "" : "s");
    expect_similar(what, &img, expected_name, tolerance);
    gf_image_free(&img);
}

static void test_png(void)
{
    static const char *const grey[] = {"grey1", "grey2", "grey4", "grey8", "grey16", "grey_alpha8", "grey_alpha16",
                                       "interlaced_grey16"};
    static const char *const rgb[] = {"rgb8", "rgb16", "rgba8", "rgba16", "palette4", "palette8", "interlaced_rgb8"};
    char png[64], pnm[64];
    for (size_t k = 0; k < sizeof grey / sizeof *grey; k++) {
        snprintf(png, sizeof png, "%s.png", grey[k]);
        snprintf(pnm, sizeof pnm, "%s.pgm", grey[k]);
        expect_decoded(png, 1, pnm, 0);
        /* Grey loaded as RGB repeats the grey level in all three channels. */
        gf_image img;
        if (gf_image_load(fixture(png), 3, &img) == GF_OK) {
            gf_image want;
            read_pnm(pnm, &want);
            int same = img.width == want.width && img.height == want.height;
            for (int p = 0; same && p < want.width * want.height; p++)
                for (int c = 0; c < 3; c++) same &= img.pixels[p * 3 + c] == want.pixels[p];
            CHECK(same, "%s as RGB is not its grey level repeated", png);
            gf_image_free(&want);
            gf_image_free(&img);
        } else CHECK(0, "%s as RGB: %s", png, gf_last_error());
    }
    for (size_t k = 0; k < sizeof rgb / sizeof *rgb; k++) {
        snprintf(png, sizeof png, "%s.png", rgb[k]);
        snprintf(pnm, sizeof pnm, "%s.ppm", rgb[k]);
        expect_decoded(png, 3, pnm, 0);
    }
    expect_decoded("rgb8.png", 1, "rgb8_luma.pgm", 1);
}

static void test_jpeg(void)
{
    /* Pillow links the same libjpeg-turbo: the pixels should agree exactly;
     * one level leaves room for a different IDCT build. */
    expect_decoded("photo.jpg", 3, "photo_jpg.ppm", 1);
    expect_decoded("progressive.jpg", 3, "progressive_jpg.ppm", 1);
    expect_decoded("grey.jpg", 3, "grey_jpg.ppm", 1);
    /* Grey from a colour JPEG is libjpeg's luma plane, as Pillow's draft('L')
     * gives it (it differs from the luma of the decoded RGB by a few levels). */
    expect_decoded("photo.jpg", 1, "photo_jpg_luma.pgm", 1);
}

static void expect_refused(const char *file, const char *words)
{
    gf_image img = {0};
    const char *path = fixture(file);
    gf_status st = gf_image_load(path, 3, &img);
    CHECK(st != GF_OK, "%s was accepted", file);
    CHECK(img.pixels == NULL, "%s: failed but left pixels behind", file);
    if (st == GF_OK) {
        gf_image_free(&img);
        return;
    }
    const char *msg = gf_last_error();
    CHECK(strstr(msg, path) != NULL, "%s: the message does not name the file: %s", file, msg);
    CHECK(strstr(msg, words) != NULL, "%s: the message does not say '%s': %s", file, words, msg);
}

static void test_broken(void)
{
    expect_refused("truncated.png", "truncated");
    expect_refused("truncated.jpg", "truncated");
    expect_refused("header_only.jpg", "truncated");
    expect_refused("corrupt.png", "PNG");
    expect_refused("not_an_image.png", "not a JPEG or PNG");
    expect_refused("empty.jpg", "empty");
    expect_refused("no_such_file.png", "No such file");
    expect_refused(".", "directory");

    gf_image img;
    gf_status st = gf_image_load(fixture("rgb8.png"), 2, &img);
    CHECK(st == GF_ERR_INVALID, "2 channels accepted");
}

static void test_resize(void)
{
    static const int sizes[][2] = {{40, 25}, {13, 7}, {97, 30}, {200, 130}, {150, 45}, {1, 1}};
    gf_image rgb, grey, out;
    if (gf_image_load(fixture("resize_src.png"), 3, &rgb) || gf_image_load(fixture("resize_src_grey.png"), 1, &grey)) {
        CHECK(0, "resize sources: %s", gf_last_error());
        return;
    }
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        char what[64], name[64];
        snprintf(what, sizeof what, "resize to %dx%d", w, h);
        snprintf(name, sizeof name, "resize_%dx%d.ppm", w, h);
        CHECK(gf_image_resize(&rgb, w, h, &out) == GF_OK, "%s: %s", what, gf_last_error());
        expect_similar(what, &out, name, 1);
        gf_image_free(&out);
        snprintf(what, sizeof what, "grey resize to %dx%d", w, h);
        snprintf(name, sizeof name, "resize_grey_%dx%d.pgm", w, h);
        CHECK(gf_image_resize(&grey, w, h, &out) == GF_OK, "%s: %s", what, gf_last_error());
        expect_similar(what, &out, name, 1);
        gf_image_free(&out);
    }
    CHECK(gf_image_resize(&rgb, 0, 5, &out) == GF_ERR_INVALID, "resize to 0x5 accepted");
    CHECK(gf_image_resize_shorter(&rgb, -1, &out) == GF_ERR_INVALID, "shorter side -1 accepted");
    gf_image_free(&rgb);
    gf_image_free(&grey);
}

static void test_shorter_side_and_crop(void)
{
    static const int cases[][2] = {{256, 224}, {100, 81}, {500, 333}};
    gf_image tall, scaled, crop;
    if (gf_image_load(fixture("tall.png"), 3, &tall)) {
        CHECK(0, "tall.png: %s", gf_last_error());
        return;
    }
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int shorter = cases[k][0], size = cases[k][1];
        char what[64], name[64];
        snprintf(what, sizeof what, "shorter side %d", shorter);
        snprintf(name, sizeof name, "tall_shorter%d.ppm", shorter);
        CHECK(gf_image_resize_shorter(&tall, shorter, &scaled) == GF_OK, "%s: %s", what, gf_last_error());
        expect_similar(what, &scaled, name, 1);
        snprintf(what, sizeof what, "shorter side %d, center crop %d", shorter, size);
        snprintf(name, sizeof name, "tall_shorter%d_crop%d.ppm", shorter, size);
        CHECK(gf_image_center_crop(&scaled, size, size, &crop) == GF_OK, "%s: %s", what, gf_last_error());
        expect_similar(what, &crop, name, 1);
        gf_image_free(&crop);
        CHECK(gf_image_center_crop(&scaled, scaled.width + 1, size, &crop) == GF_ERR_INVALID,
              "a crop wider than the image was accepted");
        gf_image_free(&scaled);
    }
    gf_image_free(&tall);
}

static void test_to_chw(void)
{
    uint8_t pixels[2 * 3 * 3];
    for (int k = 0; k < 18; k++) pixels[k] = (uint8_t)(k * 15);
    gf_image img = {3, 2, 3, pixels};
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float chw[18];
    gf_image_to_chw(&img, mean, std, chw);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 6; p++) {
            float want = (pixels[p * 3 + c] / 255.0f - mean[c]) / std[c];
            CHECK(fabsf(chw[c * 6 + p] - want) <= 1e-6f, "chw[%d][%d] = %g, expected %g", c, p, chw[c * 6 + p], want);
        }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_image FIXTURE_DIR (tests/image_fixtures.py writes it)\n");
        return 2;
    }
    dir = argv[1];
    test_png();
    test_jpeg();
    test_broken();
    test_resize();
    test_shorter_side_and_crop();
    test_to_chw();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("image: all checks passed\n");
    return 0;
}
