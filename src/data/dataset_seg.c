/* Segmentation pairs: DIR/images/.../STEM.{jpg,jpeg,png} and the class-index mask
 * DIR/masks/.../STEM.png at the same place. */
#include <stdlib.h>

#include "data/dataset.h"
#include "data/image.h"
#include "runtime/error.h"

typedef struct seg_data {
    str_list images, masks;     /* per sample, full paths */
} seg_data;

static gf_status check_mask(const gf_dataset *d, const seg_data *s, int64_t i, const gf_sample *out)
{
    const gf_image *m = &out->mask, *img = &out->image;
    if (m->width != img->width || m->height != img->height)
        return gf_fail(GF_ERR_SHAPE, "%s: the mask is %dx%d but its image %s is %dx%d", s->masks.items[i], m->width,
                       m->height, s->images.items[i], img->width, img->height);
    if (!d->n_classes) return GF_OK;
    for (int64_t p = 0; p < (int64_t)m->width * m->height; p++) {
        int v = m->pixels[p];
        if (v >= d->n_classes && v != GF_MASK_IGNORE)
            return gf_fail(GF_ERR_INVALID, "%s: value %d at x=%d, y=%d is outside the %d classes (%d marks no class)",
                           s->masks.items[i], v, (int)(p % m->width), (int)(p / m->width), d->n_classes,
                           GF_MASK_IGNORE);
    }
    return GF_OK;
}

static gf_status seg_get(const gf_dataset *d, int64_t i, gf_sample *out)
{
    const seg_data *s = d->impl;
    gf_status st = gf_image_load(s->images.items[i], d->channels, &out->image);
    if (!st) st = gf_mask_load(s->masks.items[i], &out->mask);
    if (!st) st = check_mask(d, s, i, out);
    return st;
}

static const char *seg_path(const gf_dataset *d, int64_t i) { return ((const seg_data *)d->impl)->images.items[i]; }

static void seg_free(void *impl)
{
    seg_data *s = impl;
    str_list_free(&s->images);
    str_list_free(&s->masks);
    free(s);
}

static const dataset_reader seg_reader = {seg_get, seg_path, seg_free};

gf_status dataset_open_seg(const dataset_args *a, gf_dataset *d)
{
    seg_data *s = calloc(1, sizeof *s);
    if (!s) return gf_fail(GF_ERR_NOMEM, "out of memory");
    d->reader = &seg_reader;
    d->impl = s;
    d->task = GF_TASK_SEGMENT;
    gf_status st = dataset_list_pairs(a, "masks", ".png", &s->images, &s->masks);
    for (int64_t k = 0; k < s->masks.n && !st; k++)
        if (!path_is_file(s->masks.items[k]))
            st = gf_fail(GF_ERR_IO, "%s: no mask %s for it", s->images.items[k], s->masks.items[k]);
    if (!st) st = dataset_read_names(a->path, "classes.txt", &d->class_names);
    if (!st) st = dataset_check_classes(a, (int)d->class_names.n, "classes.txt names");
    if (!st) {
        d->n = s->images.n;
        d->n_classes = a->n_classes ? a->n_classes : (int)d->class_names.n;
    }
    return st;
}
