/* PNG output for the report images (graft.h, gf_image_save_png): libpng encodes into
 * memory, so its messages survive, then the saver replaces the file atomically. */
#include "graft.h"

#include "../runtime/error.h"
#include "../runtime/saver.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct png_buffer {
    unsigned char *data;
    size_t size, capacity;
    int out_of_memory;
    char message[256];
} png_buffer;

static void on_error(png_structp png, png_const_charp msg)
{
    png_buffer *b = png_get_error_ptr(png);
    snprintf(b->message, sizeof b->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void append(png_structp png, png_bytep data, size_t len)
{
    png_buffer *b = png_get_io_ptr(png);
    if (b->size + len > b->capacity) {
        size_t grown = b->capacity ? b->capacity : 4096;
        while (grown < b->size + len) grown *= 2;
        unsigned char *p = realloc(b->data, grown);
        if (!p) {
            b->out_of_memory = 1;
            png_error(png, "out of memory");
        }
        b->data = p;
        b->capacity = grown;
    }
    memcpy(b->data + b->size, data, len);
    b->size += len;
}

static void flush(png_structp png) { (void)png; }

static gf_status encode(const gf_image *img, png_buffer *b, const char *path)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, b, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return gf_fail(GF_ERR_NOMEM, "cannot save '%s': out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return gf_fail(b->out_of_memory ? GF_ERR_NOMEM : GF_ERR_RUNTIME, "cannot save '%s': PNG encoding failed: %s",
                       path, b->message);
    }
    png_set_write_fn(png, b, append, flush);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++) png_write_row(png, img->pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return GF_OK;
}

static int write_bytes(FILE *f, void *ctx)
{
    const png_buffer *b = ctx;
    return fwrite(b->data, 1, b->size, f) == b->size ? 0 : errno ? errno : EIO;
}

gf_status gf_image_save_png(const gf_image *img, const char *path)
{
    if (!path || !*path) return gf_fail(GF_ERR_INVALID, "gf_image_save_png: no path");
    if (!img || !img->pixels || img->width < 1 || img->height < 1 || (img->channels != 1 && img->channels != 3))
        return gf_fail(GF_ERR_INVALID, "cannot save '%s': the image is %dx%d with %d channels; expected 1 or 3 "
                       "channels and pixels", path, img ? img->width : 0, img ? img->height : 0,
                       img ? img->channels : 0);
    png_buffer b = {0};
    gf_status st = encode(img, &b, path);
    if (!st) st = gf_write_atomically(path, write_bytes, &b);
    free(b.data);
    return st;
}
