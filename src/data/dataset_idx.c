/* IDX files (MNIST, Fashion-MNIST): an images file uint8 [N, H, W] and a labels
 * file uint8 [N], each gzipped or not, read whole at open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/dataset.h"
#include "runtime/error.h"

typedef struct idx_data {
    char *images_path;
    uint8_t *file;              /* the images file, header included */
    const uint8_t *pixels;
    int rows, cols;
} idx_data;

/* The names files go by: "train-images-idx3-ubyte" (LeCun's) or "train-images.idx3-ubyte". */
static const char *const idx_patterns[] = {"%s-%s-idx%d-ubyte", "%s-%s-idx%d-ubyte.gz", "%s-%s.idx%d-ubyte",
                                           "%s-%s.idx%d-ubyte.gz"};

/* dir's file of this subset and kind (images idx3, labels idx1); NULL when none. */
static char *find_idx(const char *dir, const char *subset, const char *kind, int dims)
{
    for (size_t k = 0; k < sizeof idx_patterns / sizeof *idx_patterns; k++) {
        char name[256];
        snprintf(name, sizeof name, idx_patterns[k], subset, kind, dims);
        char *p = path_join(dir, name);
        if (p && path_is_file(p)) return p;
        free(p);
    }
    return NULL;
}

static int has_idx_magic(const char *path)
{
    gzFile f = gzopen(path, "rb");
    uint8_t m[4] = {1};
    int ok = f && gzread(f, m, 4) == 4 && m[0] == 0 && m[1] == 0 && m[2] == 0x08 && m[3] == 3;
    if (f) gzclose(f);
    return ok;
}

int dataset_is_idx(const char *path)
{
    if (path_is_file(path)) return has_idx_magic(path);
    if (!path_is_dir(path)) return 0;
    char *train = find_idx(path, "train", "images", 3), *test = find_idx(path, "t10k", "images", 3);
    int yes = train || test;
    free(train);
    free(test);
    return yes;
}

/* The labels file beside an images file: "images-idx3" / "images.idx3" in its name
 * becomes "labels-idx1" / "labels.idx1", gzipped or not, whichever is there (the
 * same as the images when neither is); NULL when the name has neither pattern. */
static char *labels_beside(const char *images)
{
    const char *name = strrchr(images, '/');
    name = name ? name + 1 : images;
    const char *at = strstr(name, "images-idx3");
    if (!at) at = strstr(name, "images.idx3");
    size_t len = strlen(images);
    char *p = at ? malloc(len + 4) : NULL;
    if (!p) return NULL;
    memcpy(p, images, len + 1);
    size_t off = (size_t)(at - images);
    memcpy(p + off, "labels", 6);
    p[off + 10] = '1';
    if (path_is_file(p)) return p;
    int gz = len > 3 && !strcmp(p + len - 3, ".gz");
    if (gz) p[len - 3] = 0;
    else strcpy(p + len, ".gz");
    if (path_is_file(p)) return p;
    if (gz) p[len - 3] = '.';
    else p[len] = 0;
    return p;
}

/* Reads an IDX file of unsigned bytes with `rank` dims; *data points past the header. */
static gf_status read_idx(const char *path, int rank, uint8_t **file, const uint8_t **data, int64_t dims[3])
{
    size_t len;
    gf_status st = read_whole(path, file, &len);
    if (st) return st;
    const uint8_t *b = *file;
    size_t header = 4 + 4 * (size_t)rank;
    if (len < 4 || b[0] || b[1]) st = gf_fail(GF_ERR_PARSE, "%s: not an IDX file (no IDX magic number)", path);
    else if (b[2] != 0x08)
        st = gf_fail(GF_ERR_UNSUPPORTED, "%s: IDX element type 0x%02x; only unsigned bytes (0x08) are supported", path,
                     b[2]);
    else if (b[3] != rank) st = gf_fail(GF_ERR_PARSE, "%s: an IDX file of %d dims; expected %d", path, b[3], rank);
    else if (len < header) st = gf_fail(GF_ERR_PARSE, "%s: the file ends inside its IDX header (truncated?)", path);
    int64_t total = 1;
    for (int k = 0; k < rank && !st; k++) {
        const uint8_t *p = b + 4 + 4 * k;
        dims[k] = (int64_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
        /* checked before multiplying: each dim may be up to 2^32 */
        if (dims[k] && total > ((int64_t)1 << 40) / dims[k]) st = gf_fail(GF_ERR_PARSE, "%s: IDX dims too large", path);
        else total *= dims[k];
    }
    if (!st && (int64_t)(len - header) != total) {
        int64_t per = total / (dims[0] ? dims[0] : 1), have = per ? (int64_t)(len - header) / per : 0;
        st = (int64_t)(len - header) < total
                 ? gf_fail(GF_ERR_PARSE, "%s: holds %lld of the %lld samples its header promises (truncated?)", path,
                           (long long)have, (long long)dims[0])
                 : gf_fail(GF_ERR_PARSE, "%s: %lld bytes more than the %lld samples its header promises", path,
                           (long long)(len - header - (size_t)total), (long long)dims[0]);
    }
    if (st) {
        free(*file);
        *file = NULL;
        return st;
    }
    *data = b + header;
    return GF_OK;
}

static gf_status idx_get(const gf_dataset *d, int64_t i, gf_sample *out)
{
    const idx_data *x = d->impl;
    int64_t plane = (int64_t)x->rows * x->cols;
    out->label = d->labels[i];
    out->image = (gf_image){x->cols, x->rows, d->channels, malloc((size_t)(plane * d->channels))};
    if (!out->image.pixels) return gf_fail(GF_ERR_NOMEM, "out of memory");
    dataset_convert_pixels(x->pixels + i * plane, 1, plane, out->image.pixels, d->channels);
    return GF_OK;
}

static const char *idx_path(const gf_dataset *d, int64_t i) { return ((const idx_data *)d->impl)->images_path; }

static void idx_free(void *impl)
{
    idx_data *x = impl;
    free(x->images_path);
    free(x->file);
    free(x);
}

static const dataset_reader idx_reader = {idx_get, idx_path, idx_free};

/* The images and labels files for a path (an images file, or a folder and subset). */
static gf_status idx_files(const dataset_args *a, char **images, char **labels)
{
    *images = *labels = NULL;
    if (path_is_file(a->path)) {
        *images = strdup(a->path);
        *labels = labels_beside(a->path);
        if (!*labels)
            return gf_fail(GF_ERR_INVALID, "%s: cannot tell its labels file (expected 'images-idx3' in the name)",
                           a->path);
        if (!path_is_file(*labels)) return gf_fail(GF_ERR_IO, "%s: no labels file %s beside it", a->path, *labels);
        return GF_OK;
    }
    const char *subset = !a->subset || !*a->subset ? "train" : !strcmp(a->subset, "test") ? "t10k" : a->subset;
    *images = find_idx(a->path, subset, "images", 3);
    *labels = find_idx(a->path, subset, "labels", 1);
    if (!*images || !*labels)
        return gf_fail(GF_ERR_IO, "%s: no %s-%s-idx%d-ubyte[.gz] here", a->path, subset, *images ? "labels" : "images",
                       *images ? 1 : 3);
    return GF_OK;
}

gf_status dataset_open_idx(const dataset_args *a, gf_dataset *d)
{
    idx_data *x = calloc(1, sizeof *x);
    if (!x) return gf_fail(GF_ERR_NOMEM, "out of memory");
    d->reader = &idx_reader;
    d->impl = x;
    d->task = GF_TASK_CLASSIFY;
    char *labels_path = NULL;
    uint8_t *labels_file = NULL;
    const uint8_t *labels;
    int64_t idims[3], ldims[3];
    gf_status st = idx_files(a, &x->images_path, &labels_path);
    if (!st) st = read_idx(x->images_path, 3, &x->file, &x->pixels, idims);
    if (!st) st = read_idx(labels_path, 1, &labels_file, &labels, ldims);
    if (!st && idims[0] != ldims[0])
        st = gf_fail(GF_ERR_INVALID, "%s holds %lld images but %s %lld labels", x->images_path, (long long)idims[0],
                     labels_path, (long long)ldims[0]);
    if (!st && idims[0] == 0) st = gf_fail(GF_ERR_INVALID, "%s: no images", x->images_path);
    if (!st && (idims[1] < 1 || idims[2] < 1 || idims[1] > 1 << 16 || idims[2] > 1 << 16))
        st = gf_fail(GF_ERR_UNSUPPORTED, "%s: images of %lldx%lld are not supported", x->images_path,
                     (long long)idims[2], (long long)idims[1]);
    if (!st && !(d->labels = malloc((size_t)ldims[0] * sizeof *d->labels)))
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
    int top = 0;
    for (int64_t i = 0; i < ldims[0] && !st; i++) {
        d->labels[i] = labels[i];
        if (labels[i] > top) top = labels[i];
        if (a->n_classes && labels[i] >= a->n_classes)
            st = gf_fail(GF_ERR_INVALID, "%s: label %d of sample %lld is outside the %d classes given", labels_path,
                         labels[i], (long long)i, a->n_classes);
    }
    if (!st) {
        d->n = idims[0];
        x->rows = (int)idims[1];
        x->cols = (int)idims[2];
        d->n_classes = a->n_classes ? a->n_classes : top + 1;
    }
    free(labels_path);
    free(labels_file);
    return st;
}
