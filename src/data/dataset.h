/* The data set behind gf_dataset: what every format's reader fills in at open,
 * and how it reads one sample. Split views share their root's reader. */
#ifndef GF_DATA_DATASET_H
#define GF_DATA_DATASET_H

#include <pthread.h>

#include "graft.h"
#include "data/files.h"

typedef struct dataset_reader {
    /* Sample i of the root data set: its image (d->channels) and label, mask or boxes. */
    gf_status (*get)(const gf_dataset *d, int64_t i, gf_sample *out);
    const char *(*path)(const gf_dataset *d, int64_t i);
    void (*free)(void *impl);
} dataset_reader;

struct gf_dataset {
    gf_data_format format;
    gf_task task;
    int channels;
    int n_classes;              /* 0: unknown */
    str_list class_names;       /* n_classes names, or none */
    int64_t n;
    int64_t *labels;            /* classification: n labels */
    int skip_bad;
    const dataset_reader *reader;
    void *impl;
    /* A split: sample i is root's index[i]. NULL for a root. */
    const gf_dataset *root;
    int64_t *index;
    /* The root's: samples already found bad under skip_bad (warned about once). */
    pthread_mutex_t bad_lock;
    uint8_t *bad;
};

/* What a format's open gets: the folder or file, and the options with defaults filled in. */
typedef struct dataset_args {
    const char *path;
    int channels;
    int n_classes;
    const char *subset;
} dataset_args;

gf_status dataset_open_folder(const dataset_args *a, gf_dataset *d);
gf_status dataset_open_idx(const dataset_args *a, gf_dataset *d);
gf_status dataset_open_cifar(const dataset_args *a, int hundred, gf_dataset *d);
gf_status dataset_open_seg(const dataset_args *a, gf_dataset *d);
gf_status dataset_open_yolo(const dataset_args *a, gf_dataset *d);

/* Auto-detection: what path holds. dataset_cifar_kind: 10, 100 or 0 (not CIFAR). */
int dataset_cifar_kind(const char *path);
int dataset_is_idx(const char *path);

/* Where a format's files are: path itself, or path/subset when a subset is given. */
gf_status dataset_subfolder(const char *path, const char *subset, char **out);

/* The images under DIR/images[/SUBSET] (full paths, in list_images' order) and for each
 * the path of its partner at the same place under DIR/PAIR[/SUBSET], named with its stem
 * and ext (".png", ".txt"): its mask or labels file, which need not exist. */
gf_status dataset_list_pairs(const dataset_args *a, const char *pair, const char *ext, str_list *images,
                             str_list *partners);

/* Class names, one a line, from dir/file when there is one (trailing blank lines dropped). */
gf_status dataset_read_names(const char *dir, const char *file, str_list *names);

/* Checks the n_classes option against a data set's own class count, naming what. */
gf_status dataset_check_classes(const dataset_args *a, int own, const char *what);

/* Grey to RGB and RGB to grey (Pillow's convert("L")) for formats stored as raw pixels. */
void dataset_convert_pixels(const uint8_t *src, int src_channels, int64_t n_pixels, uint8_t *dst, int dst_channels);

/* Sample i as the loader and the statistics want it: when the file is bad and skip_bad
 * is set, it warns once and sets *skipped (GF_OK, nothing in out). */
gf_status dataset_get_or_skip(const gf_dataset *d, int64_t i, gf_sample *out, int *skipped);

#endif
