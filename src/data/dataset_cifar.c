/* CIFAR-10 and CIFAR-100, binary version: fixed-size records of label bytes and
 * 32x32 R, G and B planes, mapped from their files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "runtime/error.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_MAX_FILES 5

typedef struct cifar_file {
    char *path;
    const uint8_t *map;
    size_t len;
    int64_t records;
} cifar_file;

typedef struct cifar_data {
    int n_files;
    cifar_file files[CIFAR_MAX_FILES];
    int label_bytes;            /* 1 (CIFAR-10) or 2 (CIFAR-100: coarse, then fine) */
} cifar_data;

static int is_cifar10_name(const char *name)
{
    int k, end = 0;
    return !strcmp(name, "test_batch.bin") || (sscanf(name, "data_batch_%d.bin%n", &k, &end) == 1 && !name[end]);
}

static int is_cifar100_name(const char *name) { return !strcmp(name, "train.bin") || !strcmp(name, "test.bin"); }

static int folder_has(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    int yes = p && path_is_file(p);
    free(p);
    return yes;
}

static int folder_kind(const char *dir)
{
    if (folder_has(dir, "data_batch_1.bin") || folder_has(dir, "test_batch.bin")) return 10;
    if (folder_has(dir, "train.bin") || folder_has(dir, "test.bin")) return 100;
    return 0;
}

/* The folder holding the .bin files: dir, or the subfolder the archive unpacks to. */
static char *cifar_folder(const char *dir)
{
    static const char *const subs[] = {"", "cifar-10-batches-bin", "cifar-100-binary"};
    for (size_t k = 0; k < sizeof subs / sizeof *subs; k++) {
        char *p = path_join(dir, subs[k]);
        if (p && path_is_dir(p) && folder_kind(p)) return p;
        free(p);
    }
    return NULL;
}

int dataset_cifar_kind(const char *path)
{
    if (path_is_file(path)) {
        const char *name = strrchr(path, '/');
        name = name ? name + 1 : path;
        return is_cifar10_name(name) ? 10 : is_cifar100_name(name) ? 100 : 0;
    }
    char *dir = path_is_dir(path) ? cifar_folder(path) : NULL;
    int kind = dir ? folder_kind(dir) : 0;
    free(dir);
    return kind;
}

static void cifar_free(void *impl)
{
    cifar_data *c = impl;
    for (int k = 0; k < c->n_files; k++) {
        if (c->files[k].map) munmap((void *)c->files[k].map, c->files[k].len);
        free(c->files[k].path);
    }
    free(c);
}

/* The file holding record i, and i's place in it. */
static const cifar_file *locate(const cifar_data *c, int64_t *i)
{
    int k = 0;
    while (*i >= c->files[k].records) *i -= c->files[k++].records;
    return &c->files[k];
}

static gf_status cifar_get(const gf_dataset *d, int64_t i, gf_sample *out)
{
    const cifar_data *c = d->impl;
    out->label = d->labels[i];
    const cifar_file *f = locate(c, &i);
    const uint8_t *planes = f->map + i * (c->label_bytes + 3 * CIFAR_PIXELS) + c->label_bytes;
    uint8_t rgb[3 * CIFAR_PIXELS];
    for (int p = 0; p < CIFAR_PIXELS; p++)
        for (int ch = 0; ch < 3; ch++) rgb[3 * p + ch] = planes[ch * CIFAR_PIXELS + p];
    out->image = (gf_image){CIFAR_SIDE, CIFAR_SIDE, d->channels, malloc((size_t)(CIFAR_PIXELS * d->channels))};
    if (!out->image.pixels) return gf_fail(GF_ERR_NOMEM, "out of memory");
    dataset_convert_pixels(rgb, 3, CIFAR_PIXELS, out->image.pixels, d->channels);
    return GF_OK;
}

static const char *cifar_path(const gf_dataset *d, int64_t i)
{
    return locate(d->impl, &i)->path;
}

static const dataset_reader cifar_reader = {cifar_get, cifar_path, cifar_free};

static gf_status map_file(cifar_data *c, const char *path, const char *kind)
{
    cifar_file *f = &c->files[c->n_files];
    if (!(f->path = strdup(path))) return gf_fail(GF_ERR_NOMEM, "out of memory");
    c->n_files++;
    size_t record = (size_t)c->label_bytes + 3 * CIFAR_PIXELS;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        gf_status st = gf_fail(GF_ERR_IO, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return st;
    }
    f->len = (size_t)sb.st_size;
    gf_status st = GF_OK;
    if (f->len == 0) st = gf_fail(GF_ERR_PARSE, "%s: the file is empty", path);
    else if (f->len % record)
        st = gf_fail(GF_ERR_PARSE, "%s: %zu bytes are not whole %zu-byte %s records (truncated?)", path, f->len, record,
                     kind);
    else if ((f->map = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
        f->map = NULL;
        st = gf_fail(GF_ERR_IO, "%s: %s", path, strerror(errno));
    }
    close(fd);
    f->records = (int64_t)(f->len / record);
    return st;
}

/* Maps dir/name when there is such a file. */
static gf_status map_if_there(cifar_data *c, const char *dir, const char *name, const char *kind)
{
    char *p = path_join(dir, name);
    if (!p) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_status st = path_is_file(p) ? map_file(c, p, kind) : GF_OK;
    free(p);
    return st;
}

/* The files of a subset: one file given itself, or a folder's train or test batches. */
static gf_status cifar_files(const dataset_args *a, int hundred, const char *kind, cifar_data *c, char **dir)
{
    if (path_is_file(a->path)) {
        const char *slash = strrchr(a->path, '/');
        *dir = slash ? strndup(a->path, (size_t)(slash - a->path)) : strdup(".");
        return *dir ? map_file(c, a->path, kind) : gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    if (!(*dir = cifar_folder(a->path))) return gf_fail(GF_ERR_IO, "%s: no %s .bin files here", a->path, kind);
    const char *subset = a->subset && *a->subset ? a->subset : "train";
    int test = !strcmp(subset, "test");
    if (!test && strcmp(subset, "train"))
        return gf_fail(GF_ERR_INVALID, "%s: %s subsets are 'train' and 'test', not '%s'", a->path, kind, subset);
    gf_status st = GF_OK;
    if (hundred) st = map_if_there(c, *dir, test ? "test.bin" : "train.bin", kind);
    else if (test) st = map_if_there(c, *dir, "test_batch.bin", kind);
    for (int k = 1; k <= CIFAR_MAX_FILES && !hundred && !test && !st; k++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", k);
        st = map_if_there(c, *dir, name, kind);
    }
    if (!st && c->n_files == 0) st = gf_fail(GF_ERR_IO, "%s: no %s %s batches here", *dir, kind, subset);
    return st;
}

gf_status dataset_open_cifar(const dataset_args *a, int hundred, gf_dataset *d)
{
    cifar_data *c = calloc(1, sizeof *c);
    if (!c) return gf_fail(GF_ERR_NOMEM, "out of memory");
    d->reader = &cifar_reader;
    d->impl = c;
    d->task = GF_TASK_CLASSIFY;
    c->label_bytes = hundred ? 2 : 1;
    const char *kind = hundred ? "CIFAR-100" : "CIFAR-10";
    int own = hundred ? 100 : 10;
    char *dir = NULL;
    gf_status st = cifar_files(a, hundred, kind, c, &dir);
    if (!st) st = dataset_check_classes(a, own, hundred ? "CIFAR-100 has" : "CIFAR-10 has");
    int n_classes = a->n_classes ? a->n_classes : own;
    for (int k = 0; k < c->n_files && !st; k++) d->n += c->files[k].records;
    if (!st && !(d->labels = malloc((size_t)d->n * sizeof *d->labels))) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    int64_t at = 0;
    size_t record = (size_t)c->label_bytes + 3 * CIFAR_PIXELS;
    for (int k = 0; k < c->n_files && !st; k++)
        for (int64_t r = 0; r < c->files[k].records && !st; r++) {
            int label = c->files[k].map[(size_t)r * record + (size_t)(c->label_bytes - 1)];
            if (label >= n_classes)
                st = gf_fail(GF_ERR_INVALID, "%s: record %lld has label %d, outside the %d classes", c->files[k].path,
                             (long long)r, label, n_classes);
            d->labels[at++] = label;
        }
    if (!st) st = dataset_read_names(dir, hundred ? "fine_label_names.txt" : "batches.meta.txt", &d->class_names);
    d->n_classes = n_classes;
    free(dir);
    return st;
}
