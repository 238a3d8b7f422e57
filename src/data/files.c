/* Paths, sorted directory walks, whole files and text lines for the data set readers. */
#include "data/files.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "runtime/error.h"

/* Deeper than this is taken for a loop of links. */
#define MAX_DEPTH 64

gf_status str_list_add(str_list *l, const char *s)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 16;
        char **items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return gf_fail(GF_ERR_NOMEM, "out of memory listing files");
        l->items = items;
        l->cap = cap;
    }
    if (!(l->items[l->n] = strdup(s))) return gf_fail(GF_ERR_NOMEM, "out of memory listing files");
    l->n++;
    return GF_OK;
}

void str_list_free(str_list *l)
{
    for (int64_t k = 0; k < l->n; k++) free(l->items[k]);
    free(l->items);
    *l = (str_list){0};
}

char *path_join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    if (na && nb && a[na - 1] != '/') p[na++] = '/';
    memcpy(p + na, b, nb + 1);
    return p;
}

int path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int path_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *path_stem(const char *path)
{
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    const char *dot = strrchr(name, '.');
    return strndup(name, dot && dot != name ? (size_t)(dot - name) : strlen(name));
}

int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int by_strcmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The names in dir that are (want_dirs) or are not folders, hidden ones left out, sorted. */
static gf_status list_names(const char *dir, int want_dirs, str_list *out)
{
    DIR *d = opendir(dir);
    if (!d) return gf_fail(GF_ERR_IO, "%s: %s", dir, strerror(errno));
    gf_status st = GF_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = path_join(dir, e->d_name);
        if (!full) st = gf_fail(GF_ERR_NOMEM, "out of memory listing %s", dir);
        else if (path_is_dir(full) == want_dirs) st = str_list_add(out, e->d_name);
        free(full);
    }
    closedir(d);
    if (!st && out->n > 1) qsort(out->items, (size_t)out->n, sizeof *out->items, by_strcmp);
    return st;
}

gf_status list_subdirs(const char *dir, str_list *out) { return list_names(dir, 1, out); }

/* rel (a folder under root) and every folder below it, into dirs. */
static gf_status walk(const char *root, const char *rel, int depth, str_list *dirs)
{
    if (depth > MAX_DEPTH)
        return gf_fail(GF_ERR_INVALID, "%s/%s: folders nest more than %d deep (a loop of links?)", root, rel, MAX_DEPTH);
    gf_status st = str_list_add(dirs, rel);
    char *here = path_join(root, rel);
    str_list subs = {0};
    if (!st && !here) st = gf_fail(GF_ERR_NOMEM, "out of memory listing %s", root);
    if (!st) st = list_names(here, 1, &subs);
    for (int64_t k = 0; k < subs.n && !st; k++) {
        char *sub = path_join(rel, subs.items[k]);
        st = sub ? walk(root, sub, depth + 1, dirs) : gf_fail(GF_ERR_NOMEM, "out of memory listing %s", root);
        free(sub);
    }
    str_list_free(&subs);
    free(here);
    return st;
}

gf_status list_images(const char *dir, str_list *out)
{
    str_list dirs = {0};
    gf_status st = walk(dir, "", 0, &dirs);
    /* torchvision sorts os.walk's folders as path strings: "a/b" after "a", "a-b" before "a/b". */
    if (!st) qsort(dirs.items, (size_t)dirs.n, sizeof *dirs.items, by_strcmp);
    for (int64_t k = 0; k < dirs.n && !st; k++) {
        str_list files = {0};
        char *here = path_join(dir, dirs.items[k]);
        st = here ? list_names(here, 0, &files) : gf_fail(GF_ERR_NOMEM, "out of memory listing %s", dir);
        for (int64_t f = 0; f < files.n && !st; f++) {
            if (!is_image_name(files.items[f])) continue;
            char *rel = path_join(dirs.items[k], files.items[f]);
            st = rel ? str_list_add(out, rel) : gf_fail(GF_ERR_NOMEM, "out of memory listing %s", dir);
            free(rel);
        }
        free(here);
        str_list_free(&files);
    }
    str_list_free(&dirs);
    return st;
}

gf_status read_whole(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (path_is_dir(path)) return gf_fail(GF_ERR_IO, "%s: is a directory, not a file", path);
    gzFile f = gzopen(path, "rb");
    if (!f) return gf_fail(GF_ERR_IO, "%s: %s", path, strerror(errno ? errno : ENOENT));
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    gf_status st = buf ? GF_OK : gf_fail(GF_ERR_NOMEM, "%s: out of memory", path);
    while (!st) {
        if (n == cap) {
            uint8_t *bigger = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                st = gf_fail(GF_ERR_NOMEM, "%s: out of memory reading it", path);
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t want = cap - n < (1u << 30) ? cap - n : (1u << 30);
        int got = gzread(f, buf + n, (unsigned)want);
        if (got < 0) {
            int code;
            const char *why = gzerror(f, &code);
            st = gf_fail(GF_ERR_PARSE, "%s: %s", path, code == Z_ERRNO ? strerror(errno) : why);
        } else if (got == 0) {
            int code;
            gzerror(f, &code);
            /* zlib reports a gzip stream cut short as a buffer error at the end. */
            if (code == Z_BUF_ERROR) st = gf_fail(GF_ERR_PARSE, "%s: the gzip data ends early (truncated?)", path);
            break;
        } else n += (size_t)got;
    }
    gzclose(f);
    if (st) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = n;
    return GF_OK;
}

gf_status read_lines(const char *path, str_list *out)
{
    uint8_t *data;
    size_t len;
    gf_status st = read_whole(path, &data, &len);
    if (st) return st;
    size_t start = 0;
    while (!st && start < len) {
        size_t end = start;
        while (end < len && data[end] != '\n') end++;
        size_t stop = end > start && data[end - 1] == '\r' ? end - 1 : end;
        char *line = strndup((const char *)data + start, stop - start);
        st = line ? str_list_add(out, line) : gf_fail(GF_ERR_NOMEM, "%s: out of memory", path);
        free(line);
        start = end + 1;
    }
    free(data);
    return st;
}
