/* gf_dataset: opening by format (told apart by what the path holds when not
 * given), the common accessors, reading samples (skipping bad ones when asked),
 * and random train/validation splits as views of a data set. */
#include "data/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/rng.h"
#include "runtime/error.h"

static const char *const format_names[] = {"auto", "folder", "idx", "cifar10", "cifar100", "segmentation", "yolo"};

const char *gf_data_format_name(gf_data_format f)
{
    return f >= GF_DATA_AUTO && f <= GF_DATA_YOLO ? format_names[f] : "unknown";
}

gf_status gf_data_format_parse(const char *name, gf_data_format *out)
{
    for (int f = GF_DATA_AUTO; f <= GF_DATA_YOLO; f++)
        if (!strcmp(name, format_names[f])) {
            *out = (gf_data_format)f;
            return GF_OK;
        }
    return gf_fail(GF_ERR_INVALID, "unknown data format '%s'; expected auto, folder, idx, cifar10, cifar100, "
                                   "segmentation or yolo", name);
}

static int has_subdir(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    int yes = p && path_is_dir(p);
    free(p);
    return yes;
}

static gf_status detect(const char *path, gf_data_format *out)
{
    int cifar = dataset_cifar_kind(path);
    if (cifar) *out = cifar == 10 ? GF_DATA_CIFAR10 : GF_DATA_CIFAR100;
    else if (dataset_is_idx(path)) *out = GF_DATA_IDX;
    else if (path_is_dir(path) && has_subdir(path, "images") && has_subdir(path, "masks")) *out = GF_DATA_SEGMENTATION;
    else if (path_is_dir(path) && has_subdir(path, "images") && has_subdir(path, "labels")) *out = GF_DATA_YOLO;
    else if (path_is_dir(path)) *out = GF_DATA_FOLDER;
    else if (path_is_file(path))
        return gf_fail(GF_ERR_UNSUPPORTED, "%s: not an IDX or CIFAR file; give the folder of an image data set",
                       path);
    else return gf_fail(GF_ERR_IO, "%s: no such file or folder", path);
    return GF_OK;
}

gf_status gf_dataset_open(const char *path, const gf_dataset_options *opt, gf_dataset **out)
{
    *out = NULL;
    gf_dataset_options o = opt ? *opt : (gf_dataset_options){0};
    if (o.channels != 0 && o.channels != 1 && o.channels != 3)
        return gf_fail(GF_ERR_INVALID, "%s: data sets load as 1 or 3 channels, not %d", path, o.channels);
    if (o.n_classes < 0) return gf_fail(GF_ERR_INVALID, "%s: n_classes %d is negative", path, o.n_classes);
    gf_status st = GF_OK;
    if (o.format == GF_DATA_AUTO && (st = detect(path, &o.format))) return st;
    gf_dataset *d = calloc(1, sizeof *d);
    if (!d) return gf_fail(GF_ERR_NOMEM, "out of memory opening %s", path);
    pthread_mutex_init(&d->bad_lock, NULL);
    d->format = o.format;
    d->skip_bad = o.skip_bad;
    dataset_args a = {path, o.channels ? o.channels : o.format == GF_DATA_IDX ? 1 : 3, o.n_classes, o.subset};
    d->channels = a.channels;
    switch (o.format) {
    case GF_DATA_FOLDER: st = dataset_open_folder(&a, d); break;
    case GF_DATA_IDX: st = dataset_open_idx(&a, d); break;
    case GF_DATA_CIFAR10: st = dataset_open_cifar(&a, 0, d); break;
    case GF_DATA_CIFAR100: st = dataset_open_cifar(&a, 1, d); break;
    case GF_DATA_SEGMENTATION: st = dataset_open_seg(&a, d); break;
    case GF_DATA_YOLO: st = dataset_open_yolo(&a, d); break;
    default: st = gf_fail(GF_ERR_INVALID, "%s: unknown data format %d", path, (int)o.format);
    }
    if (!st && !(d->bad = calloc((size_t)d->n, 1))) st = gf_fail(GF_ERR_NOMEM, "out of memory opening %s", path);
    if (st) {
        gf_dataset_free(d);
        return st;
    }
    *out = d;
    return GF_OK;
}

void gf_dataset_free(gf_dataset *d)
{
    if (!d) return;
    if (d->reader && d->impl) d->reader->free(d->impl);
    str_list_free(&d->class_names);
    free(d->labels);
    free(d->index);
    free(d->bad);
    pthread_mutex_destroy(&d->bad_lock);
    free(d);
}

static const gf_dataset *root_of(const gf_dataset *d) { return d->root ? d->root : d; }
static int64_t root_index(const gf_dataset *d, int64_t i) { return d->root ? d->index[i] : i; }

gf_data_format gf_dataset_format(const gf_dataset *d) { return d->format; }
gf_task gf_dataset_task(const gf_dataset *d) { return d->task; }
int64_t gf_dataset_size(const gf_dataset *d) { return d->n; }
int gf_dataset_channels(const gf_dataset *d) { return d->channels; }
int gf_dataset_num_classes(const gf_dataset *d) { return d->n_classes; }

const char *gf_dataset_class_name(const gf_dataset *d, int k)
{
    const str_list *names = &root_of(d)->class_names;
    return k >= 0 && k < names->n ? names->items[k] : NULL;
}

int64_t gf_dataset_label(const gf_dataset *d, int64_t i)
{
    return d->labels && i >= 0 && i < d->n ? d->labels[i] : -1;
}

const char *gf_dataset_path(const gf_dataset *d, int64_t i)
{
    if (i < 0 || i >= d->n) return NULL;
    const gf_dataset *r = root_of(d);
    return r->reader->path(r, root_index(d, i));
}

void gf_sample_free(gf_sample *s)
{
    if (!s) return;
    gf_image_free(&s->image);
    gf_image_free(&s->mask);
    free(s->boxes);
    *s = (gf_sample){.label = -1};
}

gf_status gf_dataset_get(const gf_dataset *d, int64_t i, gf_sample *out)
{
    *out = (gf_sample){.label = -1};
    if (i < 0 || i >= d->n)
        return gf_fail(GF_ERR_INVALID, "sample %lld is outside the data set's %lld", (long long)i, (long long)d->n);
    const gf_dataset *r = root_of(d);
    int64_t ri = root_index(d, i);
    gf_status st = r->reader->get(r, ri, out);
    if (st) gf_sample_free(out);
    else out->path = r->reader->path(r, ri);
    return st;
}

gf_status dataset_get_or_skip(const gf_dataset *d, int64_t i, gf_sample *out, int *skipped)
{
    *skipped = 0;
    gf_dataset *r = (gf_dataset *)root_of(d);
    int64_t ri = root_index(d, i);
    if (i >= 0 && i < d->n && __atomic_load_n(&r->bad[ri], __ATOMIC_RELAXED)) {
        *out = (gf_sample){.label = -1};
        *skipped = 1;
        return GF_OK;
    }
    gf_status st = gf_dataset_get(d, i, out);
    if (st == GF_OK || !r->skip_bad || st == GF_ERR_NOMEM || i < 0 || i >= d->n) return st;
    pthread_mutex_lock(&r->bad_lock);
    int first = !r->bad[ri];
    __atomic_store_n(&r->bad[ri], 1, __ATOMIC_RELAXED);
    if (first) fprintf(stderr, "graft: warning: skipping a bad sample: %s\n", gf_last_error());
    pthread_mutex_unlock(&r->bad_lock);
    *skipped = 1;
    return GF_OK;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A view of d holding d's samples perm[0..n), in d's order. */
static gf_status make_view(const gf_dataset *d, int64_t *perm, int64_t n, gf_dataset **out)
{
    qsort(perm, (size_t)n, sizeof *perm, by_value);
    gf_dataset *v = calloc(1, sizeof *v);
    int64_t *index = malloc((size_t)n * sizeof *index);
    int64_t *labels = d->labels ? malloc((size_t)n * sizeof *labels) : NULL;
    if (!v || !index || (d->labels && !labels)) {
        free(v);
        free(index);
        free(labels);
        return gf_fail(GF_ERR_NOMEM, "out of memory splitting a data set");
    }
    *v = *d;
    v->class_names = (str_list){0};
    v->reader = NULL;
    v->impl = NULL;
    v->bad = NULL;
    pthread_mutex_init(&v->bad_lock, NULL);
    v->root = root_of(d);
    v->n = n;
    for (int64_t k = 0; k < n; k++) {
        index[k] = root_index(d, perm[k]);
        if (labels) labels[k] = d->labels[perm[k]];
    }
    v->index = index;
    v->labels = labels;
    *out = v;
    return GF_OK;
}

gf_status gf_dataset_split(const gf_dataset *d, double val_ratio, uint64_t seed, gf_dataset **train,
                           gf_dataset **val)
{
    *train = *val = NULL;
    int64_t n_val = (int64_t)(val_ratio * (double)d->n + 0.5);
    if (!(val_ratio > 0 && val_ratio < 1) || n_val < 1 || n_val >= d->n)
        return gf_fail(GF_ERR_INVALID, "a validation ratio of %g leaves an empty side of %lld samples", val_ratio,
                       (long long)d->n);
    int64_t *perm = malloc((size_t)d->n * sizeof *perm);
    if (!perm) return gf_fail(GF_ERR_NOMEM, "out of memory splitting a data set");
    for (int64_t k = 0; k < d->n; k++) perm[k] = k;
    gf_rng rng = rng_seeded(seed, 0x73706c6974ull /* "split" */, 0);
    for (int64_t k = d->n - 1; k > 0; k--) {
        int64_t j = rng_below(&rng, k + 1), t = perm[k];
        perm[k] = perm[j];
        perm[j] = t;
    }
    gf_status st = make_view(d, perm, n_val, val);
    if (!st) st = make_view(d, perm + n_val, d->n - n_val, train);
    free(perm);
    if (st) {
        gf_dataset_free(*val);
        *val = NULL;
    }
    return st;
}

gf_status gf_dataset_head(const gf_dataset *d, int64_t n, gf_dataset **out)
{
    *out = NULL;
    if (n < 1 || n > d->n)
        return gf_fail(GF_ERR_INVALID, "the first %lld of a data set of %lld samples", (long long)n, (long long)d->n);
    int64_t *first = malloc((size_t)n * sizeof *first);
    if (!first) return gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; k < n; k++) first[k] = k;
    gf_status st = make_view(d, first, n, out);
    free(first);
    return st;
}

gf_status dataset_subfolder(const char *path, const char *subset, char **out)
{
    *out = subset && *subset ? path_join(path, subset) : strdup(path);
    if (!*out) return gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!path_is_dir(*out)) {
        gf_status st = gf_fail(GF_ERR_IO, "%s: no such folder", *out);
        free(*out);
        *out = NULL;
        return st;
    }
    return GF_OK;
}

gf_status dataset_list_pairs(const dataset_args *a, const char *pair, const char *ext, str_list *images,
                             str_list *partners)
{
    char *images_top = path_join(a->path, "images"), *pair_top = path_join(a->path, pair);
    char *images_dir = NULL, *pair_dir = NULL;
    str_list rel = {0};
    gf_status st = images_top && pair_top ? GF_OK : gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) st = dataset_subfolder(images_top, a->subset, &images_dir);
    if (!st) st = dataset_subfolder(pair_top, a->subset, &pair_dir);
    if (!st) st = list_images(images_dir, &rel);
    if (!st && rel.n == 0) st = gf_fail(GF_ERR_INVALID, "%s: no images (JPEG or PNG)", images_dir);
    for (int64_t k = 0; k < rel.n && !st; k++) {
        char *image = path_join(images_dir, rel.items[k]);
        char *dot = strrchr(rel.items[k], '.');
        *dot = 0; /* list_images' names all have an extension */
        char *stem = path_join(pair_dir, rel.items[k]);
        char *partner = stem ? malloc(strlen(stem) + strlen(ext) + 1) : NULL;
        if (partner) strcat(strcpy(partner, stem), ext);
        st = image && partner ? str_list_add(images, image) : gf_fail(GF_ERR_NOMEM, "out of memory");
        if (!st) st = str_list_add(partners, partner);
        free(image);
        free(stem);
        free(partner);
    }
    str_list_free(&rel);
    free(images_top);
    free(pair_top);
    free(images_dir);
    free(pair_dir);
    return st;
}

gf_status dataset_read_names(const char *dir, const char *file, str_list *names)
{
    char *p = path_join(dir, file);
    if (!p) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_status st = path_is_file(p) ? read_lines(p, names) : GF_OK;
    while (!st && names->n && !names->items[names->n - 1][0]) free(names->items[--names->n]);
    free(p);
    return st;
}

gf_status dataset_check_classes(const dataset_args *a, int own, const char *what)
{
    if (a->n_classes > 0 && own > a->n_classes)
        return gf_fail(GF_ERR_INVALID, "%s: %s %d classes, more than the %d given", a->path, what, own, a->n_classes);
    return GF_OK;
}

void dataset_convert_pixels(const uint8_t *src, int src_channels, int64_t n_pixels, uint8_t *dst, int dst_channels)
{
    for (int64_t p = 0; p < n_pixels; p++) {
        const uint8_t *s = src + p * src_channels;
        uint8_t *o = dst + p * dst_channels;
        if (src_channels == dst_channels) memcpy(o, s, (size_t)dst_channels);
        else if (dst_channels == 3) o[0] = o[1] = o[2] = s[0];
        else o[0] = (uint8_t)((s[0] * 19595 + s[1] * 38470 + s[2] * 7471 + 0x8000) >> 16); /* Pillow's "L" */
    }
}
