/* Image folders for classification: DIR/CLASS/.../IMAGE, classes and images
 * ordered as torchvision's ImageFolder orders them. */
#include <stdlib.h>

#include "data/dataset.h"
#include "data/image.h"
#include "runtime/error.h"

typedef struct folder_data {
    str_list paths;             /* per sample: DIR/CLASS/... */
} folder_data;

static gf_status folder_get(const gf_dataset *d, int64_t i, gf_sample *out)
{
    const folder_data *f = d->impl;
    out->label = d->labels[i];
    return gf_image_load(f->paths.items[i], d->channels, &out->image);
}

static const char *folder_path(const gf_dataset *d, int64_t i) { return ((const folder_data *)d->impl)->paths.items[i]; }

static void folder_free(void *impl)
{
    folder_data *f = impl;
    str_list_free(&f->paths);
    free(f);
}

static const dataset_reader folder_reader = {folder_get, folder_path, folder_free};

/* Adds class k's images (folder dir/name) as samples. */
static gf_status add_class(gf_dataset *d, folder_data *f, const char *dir, const char *name, int k)
{
    char *class_dir = path_join(dir, name);
    str_list images = {0};
    gf_status st = class_dir ? list_images(class_dir, &images) : gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st && images.n == 0)
        st = gf_fail(GF_ERR_INVALID, "%s: the folder of class '%s' holds no JPEG or PNG images", class_dir, name);
    int64_t *labels = st ? NULL : realloc(d->labels, (size_t)(d->n + images.n) * sizeof *labels);
    if (!st && !labels) st = gf_fail(GF_ERR_NOMEM, "out of memory listing %s", class_dir);
    if (labels) d->labels = labels;
    for (int64_t j = 0; j < images.n && !st; j++) {
        char *p = path_join(class_dir, images.items[j]);
        st = p ? str_list_add(&f->paths, p) : gf_fail(GF_ERR_NOMEM, "out of memory");
        free(p);
        if (!st) d->labels[d->n++] = k;
    }
    str_list_free(&images);
    free(class_dir);
    return st;
}

gf_status dataset_open_folder(const dataset_args *a, gf_dataset *d)
{
    char *dir;
    gf_status st = dataset_subfolder(a->path, a->subset, &dir);
    if (st) return st;
    folder_data *f = calloc(1, sizeof *f);
    if (!f) {
        free(dir);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    d->reader = &folder_reader;
    d->impl = f;
    d->task = GF_TASK_CLASSIFY;
    st = list_subdirs(dir, &d->class_names);
    if (!st && d->class_names.n == 0) {
        str_list loose = {0};
        st = list_images(dir, &loose);
        if (!st)
            st = gf_fail(GF_ERR_INVALID,
                         loose.n ? "%s: images but no class folders; an image folder holds one subfolder of images per class"
                                 : "%s: no images (JPEG or PNG) and no class folders",
                         dir);
        str_list_free(&loose);
    }
    if (!st && d->class_names.n > 1 << 20) st = gf_fail(GF_ERR_UNSUPPORTED, "%s: too many class folders", dir);
    if (!st) st = dataset_check_classes(a, (int)d->class_names.n, "has the folders of");
    for (int64_t k = 0; k < d->class_names.n && !st; k++) st = add_class(d, f, dir, d->class_names.items[k], (int)k);
    if (!st) d->n_classes = a->n_classes ? a->n_classes : (int)d->class_names.n;
    free(dir);
    return st;
}
