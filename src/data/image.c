/* Decoding JPEG (libjpeg-turbo) and PNG (libpng) files into 8-bit RGB or grey.
 * Both libraries report errors by calling back; we longjmp out of the callback
 * and turn the failure into a message that names the file. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "graft.h"
#include "data/image.h"
#include "runtime/error.h"

/* Refuses absurd headers before allocating (about 1 GiB of RGB). */
#define MAX_PIXELS ((int64_t)1 << 28)

void gf_image_free(gf_image *img)
{
    if (!img) return;
    free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
}

static gf_status alloc_pixels(const char *path, int width, int height, int channels, uint8_t **out)
{
    if (width <= 0 || height <= 0 || (int64_t)width * height > MAX_PIXELS)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: image size %dx%d is not supported", path, width, height);
    *out = malloc((size_t)width * (size_t)height * (size_t)channels);
    if (!*out) return gf_fail(GF_ERR_NOMEM, "%s: out of memory for a %dx%d image", path, width, height);
    return GF_OK;
}

/* ---- JPEG ---- */

typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    f->mgr.format_message(cinfo, f->message);
    longjmp(f->jump, 1);
}

/* libjpeg only warns about a file that ends early and fills the rest with grey;
 * a truncated image is an error here. Other warnings are ignored. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_failure *f = (jpeg_failure *)cinfo->err;
        snprintf(f->message, sizeof f->message, "the file ends early (truncated?)");
        longjmp(f->jump, 1);
    }
}

/* A progressive JPEG may have any number of scans, and each one walks the whole
 * image: a small file of thousands of scans takes minutes. Real ones have about ten. */
#define MAX_JPEG_SCANS 500

static void jpeg_on_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > MAX_JPEG_SCANS) {
        jpeg_failure *f = (jpeg_failure *)cinfo->err;
        snprintf(f->message, sizeof f->message, "more than %d scans (real JPEGs have about ten)", MAX_JPEG_SCANS);
        longjmp(f->jump, 1);
    }
}

/* What the header claims must fit in the file: Huffman coding spends at least one bit
 * on every 8x8 block of every component (arithmetic coding, far rarer, is given 64
 * blocks a bit). Otherwise a file of a few hundred bytes that claims 16000x16000
 * pixels would have the decoder fill gigabytes (a progressive JPEG's coefficients are
 * all held at once) before it finds the data missing. */
static gf_status check_jpeg_header(const char *path, FILE *file, const struct jpeg_decompress_struct *cinfo)
{
    uint64_t width = cinfo->image_width, height = cinfo->image_height, blocks = 0;
    if (!width || !height || width * height > (uint64_t)MAX_PIXELS)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: image size %llux%llu is not supported", path,
                       (unsigned long long)width, (unsigned long long)height);
    for (int c = 0; c < cinfo->num_components; c++)
        blocks += (uint64_t)cinfo->comp_info[c].width_in_blocks * cinfo->comp_info[c].height_in_blocks;
    uint64_t need = blocks / 8 / (cinfo->arith_code ? 64 : 1);
    struct stat sb;
    if (fstat(fileno(file), &sb) == 0 && (uint64_t)sb.st_size < need)
        return gf_fail(GF_ERR_PARSE, "%s: broken JPEG: a %llux%llu image needs at least %llu bytes, the file has %lld "
                       "(truncated, or not the image it claims)", path, (unsigned long long)width,
                       (unsigned long long)height, (unsigned long long)need, (long long)sb.st_size);
    return GF_OK;
}

static gf_status load_jpeg(const char *path, FILE *file, int channels, gf_image *out)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_on_progress};
    jpeg_failure failure;

    cinfo.err = jpeg_std_error(&failure.mgr);
    failure.mgr.error_exit = jpeg_on_error;
    failure.mgr.emit_message = jpeg_on_message;
    failure.message[0] = 0;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        gf_image_free(out);
        return gf_fail(GF_ERR_PARSE, "%s: broken JPEG: %s", path, failure.message);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &progress;
    jpeg_stdio_src(&cinfo, file);
    jpeg_read_header(&cinfo, TRUE);
    gf_status checked = check_jpeg_header(path, file, &cinfo);
    if (checked) {
        jpeg_destroy_decompress(&cinfo);
        return checked;
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: CMYK JPEGs are not supported; convert it to RGB", path);
    }
    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != channels) {
        jpeg_destroy_decompress(&cinfo);
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: cannot convert this JPEG's color space to %d channels", path, channels);
    }
    gf_status st = alloc_pixels(path, (int)cinfo.output_width, (int)cinfo.output_height, channels, &out->pixels);
    if (st) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    size_t stride = (size_t)cinfo.output_width * (size_t)channels;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out->pixels + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->channels = channels;
    jpeg_destroy_decompress(&cinfo);
    return GF_OK;
}

/* ---- PNG ---- */

typedef struct png_failure {
    char message[256];
} png_failure;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_failure *f = png_get_error_ptr(png);
    snprintf(f->message, sizeof f->message, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Asks libpng for 8-bit samples in `channels` channels whatever the file holds. */
static void png_request_8bit(png_structp png, png_infop info, int channels)
{
    int color = png_get_color_type(png, info);
    png_set_expand(png);        /* palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha */
    png_set_scale_16(png);
    png_set_strip_alpha(png);
    if (channels == 3 && !(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    /* Rec. 601 luma (in units of 1e-5), as libjpeg's grey output and Pillow's convert('L'). */
    if (channels == 1 && (color & PNG_COLOR_MASK_COLOR)) png_set_rgb_to_gray_fixed(png, 1, 29900, 58700);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

/* Masks: the samples as stored (palette indices, grey values), one byte each
 * (16-bit ones are narrowed afterwards). */
static gf_status png_request_indices(const char *path, png_structp png, png_infop info)
{
    int color = png_get_color_type(png, info);
    if (color != PNG_COLOR_TYPE_GRAY && color != PNG_COLOR_TYPE_PALETTE)
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: a mask must be a grey or palette PNG of class indices, not %s", path,
                       color & PNG_COLOR_MASK_ALPHA ? "one with alpha" : "RGB");
    if (png_get_bit_depth(png, info) < 8) png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return GF_OK;
}

/* 16-bit mask samples (big-endian) to bytes; a value above 255 fails. */
static gf_status narrow_mask(const char *path, const uint8_t *wide, int width, int height, uint8_t *out)
{
    for (int64_t k = 0; k < (int64_t)width * height; k++) {
        int v = wide[2 * k] << 8 | wide[2 * k + 1];
        if (v > 255)
            return gf_fail(GF_ERR_UNSUPPORTED, "%s: mask value %d at x=%d, y=%d; classes above 255 are not supported",
                           path, v, (int)(k % width), (int)(k / width));
        out[k] = (uint8_t)v;
    }
    return GF_OK;
}

/* channels 1 or 3: a picture; 0: a mask of class indices. */
static gf_status load_png(const char *path, FILE *file, int channels, gf_image *out)
{
    png_failure failure = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, png_on_error, png_on_warning);
    if (!png) return gf_fail(GF_ERR_NOMEM, "%s: out of memory", path);
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    uint8_t *volatile wide = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return gf_fail(GF_ERR_NOMEM, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        gf_image_free(out);
        free(rows);
        free(wide);
        if (feof(file)) return gf_fail(GF_ERR_PARSE, "%s: broken PNG: the file ends early (truncated?)", path);
        return gf_fail(GF_ERR_PARSE, "%s: broken PNG: %s", path, failure.message);
    }
    png_init_io(png, file);
    png_read_info(png, info);
    gf_status st = GF_OK;
    if (channels) png_request_8bit(png, info, channels);
    else st = png_request_indices(path, png, info);
    int width = (int)png_get_image_width(png, info), height = (int)png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), samples = channels ? channels : 1;
    if (!st && ((int)png_get_channels(png, info) != samples || (depth != 8 && (channels || depth != 16))))
        st = gf_fail(GF_ERR_UNSUPPORTED, "%s: cannot convert this PNG to 8-bit with %d channels", path, samples);
    if (!st) st = alloc_pixels(path, width, height, samples, &out->pixels);
    if (st) {
        png_destroy_read_struct(&png, &info, NULL);
        gf_image_free(out);
        return st;
    }
    size_t row_bytes = (size_t)width * (size_t)samples * (size_t)(depth / 8);
    if (depth == 16 && !(wide = malloc(row_bytes * (size_t)height))) longjmp(png_jmpbuf(png), 1);
    png_bytep *row_list = malloc((size_t)height * sizeof *row_list);
    if (!row_list) longjmp(png_jmpbuf(png), 1);
    rows = row_list;
    uint8_t *base = depth == 16 ? wide : out->pixels;
    for (int y = 0; y < height; y++) row_list[y] = base + (size_t)y * row_bytes;
    png_read_image(png, row_list);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(row_list);
    if (depth == 16) st = narrow_mask(path, wide, width, height, out->pixels);
    free(wide);
    if (st) {
        gf_image_free(out);
        return st;
    }
    out->width = width;
    out->height = height;
    out->channels = samples;
    return GF_OK;
}

/* Opens path and reads its first bytes: which decoder it wants. */
static gf_status open_image(const char *path, FILE **file, int *is_png)
{
    *file = fopen(path, "rb");
    if (!*file) return gf_fail(GF_ERR_IO, "%s: %s", path, strerror(errno));
    uint8_t magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, *file);
    gf_status st = GF_OK;
    if (ferror(*file)) /* a directory opens but does not read */
        st = gf_fail(GF_ERR_IO, "%s: %s", path, strerror(errno));
    else if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF)
        *is_png = 0;
    else if (got == 8 && png_sig_cmp(magic, 0, 8) == 0)
        *is_png = 1;
    else if (got == 0)
        st = gf_fail(GF_ERR_PARSE, "%s: the file is empty, not a JPEG or PNG image", path);
    else
        st = gf_fail(GF_ERR_PARSE, "%s: not a JPEG or PNG image", path);
    if (st) fclose(*file);
    else rewind(*file);
    return st;
}

gf_status gf_image_load(const char *path, int channels, gf_image *out)
{
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return gf_fail(GF_ERR_INVALID, "%s: images load as 1 or 3 channels, not %d", path, channels);
    FILE *file;
    int is_png;
    gf_status st = open_image(path, &file, &is_png);
    if (st) return st;
    st = is_png ? load_png(path, file, channels, out) : load_jpeg(path, file, channels, out);
    fclose(file);
    return st;
}

gf_status gf_mask_load(const char *path, gf_image *out)
{
    memset(out, 0, sizeof *out);
    FILE *file;
    int is_png;
    gf_status st = open_image(path, &file, &is_png);
    if (st) return st;
    st = is_png ? load_png(path, file, 0, out)
                : gf_fail(GF_ERR_UNSUPPORTED, "%s: a mask must be a PNG (JPEG's losses change class indices)", path);
    fclose(file);
    return st;
}
