/* File-system helpers for the data set readers: paths, sorted directory walks,
 * whole files (gzipped or not), text lines. Failures name the path. */
#ifndef GF_DATA_FILES_H
#define GF_DATA_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "graft.h"

/* A growable list of owned strings. */
typedef struct str_list {
    char **items;
    int64_t n, cap;
} str_list;

gf_status str_list_add(str_list *l, const char *s);
void str_list_free(str_list *l);

/* "a/b" (a or b alone when the other is empty), malloc'd; NULL when out of memory. */
char *path_join(const char *a, const char *b);
int path_is_dir(const char *path);
int path_is_file(const char *path);
/* The file name of path without its directory and extension, malloc'd. */
char *path_stem(const char *path);

/* True for names ending in .jpg, .jpeg or .png, in any case. */
int is_image_name(const char *name);

/* The subfolders of dir whose names do not start with '.', sorted by strcmp. */
gf_status list_subdirs(const char *dir, str_list *out);

/* Every image (is_image_name, not hidden) under dir, following links, as paths
 * relative to dir, ordered as torchvision's make_dataset orders them: by folder
 * path (as a string), then by file name. */
gf_status list_images(const char *dir, str_list *out);

/* The whole file, gunzipped if it is gzip; *data is malloc'd. */
gf_status read_whole(const char *path, uint8_t **data, size_t *len);

/* The lines of a text file without their line ends, blank ones kept. */
gf_status read_lines(const char *path, str_list *out);

#endif
