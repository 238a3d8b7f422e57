#include "proto_tensor.h"

#include "error.h"
#include "saver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Number of elements, refusing negative dims and products that overflow. */
static gf_status checked_numel(const Onnx__TensorProto *p, const char *what, int64_t *out)
{
    int64_t n = 1;
    for (size_t i = 0; i < p->n_dims; i++) {
        if (p->dims[i] < 0)
            return gf_fail(GF_ERR_PARSE, "tensor '%s': dim %zu is negative (%lld)", what, i, (long long)p->dims[i]);
        if (p->dims[i] && n > INT64_MAX / 16 / p->dims[i])
            return gf_fail(GF_ERR_NOMEM, "tensor '%s': its dims claim more elements than can exist", what);
        n *= p->dims[i];
    }
    *out = n;
    return GF_OK;
}

static const char *external_entry(const Onnx__TensorProto *p, const char *key)
{
    for (size_t i = 0; i < p->n_external_data; i++)
        if (p->external_data[i]->key && !strcmp(p->external_data[i]->key, key))
            return p->external_data[i]->value;
    return NULL;
}

/* Gives back the whole pages of a read-only file mapping that [data, data + nbytes)
 * covers: they leave the resident set and are read from the file again if touched. */
static void drop_pages(const void *data, size_t nbytes)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)data + page - 1) / page * page;
    uintptr_t hi = ((uintptr_t)data + nbytes) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Copies smaller than this are heap memory and stay: evicting works in whole pages. */
#define EVICTABLE_MIN (64 * 1024)

/* Guards every model's copies and session counts: evicting and restoring are rare. */
static pthread_mutex_t copies_lock = PTHREAD_MUTEX_INITIALIZER;

/* Copies data a file holds at an offset its element type cannot be read at, aligned; a
 * large one into a mapping of its own that can be evicted (see gf_external). */
static gf_status aligned_copy(gf_external *ext, const void *src, size_t nbytes, const char *what, gf_tensor *t)
{
    if (!ext || nbytes < EVICTABLE_MIN) {
        if (!(t->data = aligned_alloc(64, (nbytes + 63) / 64 * 64)))
            return gf_fail(GF_ERR_NOMEM, "out of memory: tensor '%s' needs %zu bytes", what, nbytes);
        t->owns_data = 1;
        memcpy(t->data, src, nbytes);
        drop_pages(src, nbytes);
        return GF_OK;
    }
    if (ext->n_copies == ext->cap_copies) {
        int cap = ext->cap_copies ? 2 * ext->cap_copies : 16;
        void *grown = realloc(ext->copies, (size_t)cap * sizeof *ext->copies);
        if (!grown) return gf_fail(GF_ERR_NOMEM, "out of memory copying tensor '%s'", what);
        ext->copies = grown;
        ext->cap_copies = cap;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = (nbytes + page - 1) / page * page;
    void *addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (addr == MAP_FAILED)
        return gf_fail(GF_ERR_NOMEM, "out of memory: tensor '%s' needs %zu bytes", what, nbytes);
    memcpy(addr, src, nbytes);
    drop_pages(src, nbytes);
    ext->copies[ext->n_copies++] = (struct gf_copy){addr, len, src, nbytes, 0};
    t->data = addr; /* the model's mappings own it */
    return GF_OK;
}

static gf_status map_external(const Onnx__TensorProto *p, gf_external *ext, const char *what,
                              size_t nbytes, gf_tensor *t)
{
    const char *loc = external_entry(p, "location");
    if (!ext || !ext->base_dir)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor '%s' keeps its data in an external file, which is not allowed here", what);
    if (!loc || !*loc)
        return gf_fail(GF_ERR_PARSE, "tensor '%s': external data has no location", what);
    /* The spec says relative to the model's folder; refuse escapes from it. */
    if (loc[0] == '/' || !strncmp(loc, "../", 3) || strstr(loc, "/../") || !strcmp(loc, ".."))
        return gf_fail(GF_ERR_INVALID, "tensor '%s': external data location '%s' leaves the model's folder", what, loc);
    const char *off_s = external_entry(p, "offset"), *len_s = external_entry(p, "length");
    char *end;
    long long offset = off_s ? strtoll(off_s, &end, 10) : 0;
    if (offset < 0 || (off_s && *end))
        return gf_fail(GF_ERR_PARSE, "tensor '%s': external data offset '%s' is not a valid offset", what, off_s);
    if (len_s) {
        long long len = strtoll(len_s, &end, 10);
        if (*end || len < 0 || (unsigned long long)len != nbytes)
            return gf_fail(GF_ERR_PARSE, "tensor '%s': external data length %s, but its dims need %zu bytes", what, len_s, nbytes);
    }
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", ext->base_dir, loc) >= sizeof path)
        return gf_fail(GF_ERR_INVALID, "tensor '%s': external data path is too long", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gf_fail(GF_ERR_IO, "tensor '%s': cannot open external data file '%s': %s", what, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || (unsigned long long)offset + nbytes > (unsigned long long)sb.st_size) {
        close(fd);
        return gf_fail(GF_ERR_PARSE, "tensor '%s': external data file '%s' holds %lld bytes, the tensor needs %zu at offset %lld",
                       what, path, (long long)sb.st_size, nbytes, offset);
    }
    if (nbytes == 0) {
        close(fd);
        t->data = NULL;
        return GF_OK;
    }
    long page = sysconf(_SC_PAGESIZE);
    off_t start = (off_t)(offset / page * page);
    size_t len = nbytes + (size_t)(offset - start);
    void *addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, start);
    close(fd);
    if (addr == MAP_FAILED)
        return gf_fail(GF_ERR_IO, "tensor '%s': cannot map '%s': %s", what, path, strerror(errno));
    char *data = (char *)addr + (offset - start);
    if (gf_external_keep(ext, addr, len)) {
        munmap(addr, len);
        return GF_ERR_NOMEM;
    }
    if ((uintptr_t)data % gf_dtype_size(t->dtype)) return aligned_copy(ext, data, nbytes, what, t);
    t->data = data;
    return GF_OK;
}

gf_status gf_external_keep(gf_external *ext, void *addr, size_t len)
{
    if (ext->n_maps == ext->cap_maps) {
        int cap = ext->cap_maps ? 2 * ext->cap_maps : 16;
        void *m = realloc(ext->maps, (size_t)cap * sizeof *ext->maps);
        if (!m) return gf_fail(GF_ERR_NOMEM, "out of memory keeping a mapping");
        ext->maps = m;
        ext->cap_maps = cap;
    }
    ext->maps[ext->n_maps].addr = addr;
    ext->maps[ext->n_maps].len = len;
    ext->n_maps++;
    return GF_OK;
}

void gf_external_release(gf_external *ext)
{
    for (int i = 0; i < ext->n_maps; i++) munmap(ext->maps[i].addr, ext->maps[i].len);
    free(ext->maps);
    ext->maps = NULL;
    ext->n_maps = ext->cap_maps = 0;
    for (int i = 0; i < ext->n_copies; i++) munmap(ext->copies[i].addr, ext->copies[i].len);
    free(ext->copies);
    ext->copies = NULL;
    ext->n_copies = ext->cap_copies = 0;
}

void gf_external_sessions(gf_external *ext, int delta)
{
    pthread_mutex_lock(&copies_lock);
    ext->n_sessions += delta;
    pthread_mutex_unlock(&copies_lock);
}

void gf_external_evict(gf_external *ext, const void *data)
{
    pthread_mutex_lock(&copies_lock);
    for (int i = 0; ext->n_sessions == 1 && !ext->resident && i < ext->n_copies; i++) {
        struct gf_copy *c = &ext->copies[i];
        if (c->addr != data) continue;
        /* no access first: should giving the pages back fail, the data is still there */
        if (!c->evicted && !mprotect(c->addr, c->len, PROT_NONE)) {
            madvise(c->addr, c->len, MADV_DONTNEED);
            c->evicted = 1;
        }
        break;
    }
    pthread_mutex_unlock(&copies_lock);
}

gf_status gf_external_restore(gf_external *ext, int keep)
{
    gf_status st = GF_OK;
    pthread_mutex_lock(&copies_lock);
    for (int i = 0; i < ext->n_copies && !st; i++) {
        struct gf_copy *c = &ext->copies[i];
        if (!c->evicted) continue;
        if (mprotect(c->addr, c->len, PROT_READ | PROT_WRITE)) {
            st = gf_fail(GF_ERR_NOMEM, "cannot bring back a copy of %zu bytes of weights: %s", c->nbytes,
                         strerror(errno));
            break;
        }
        memcpy(c->addr, c->src, c->nbytes);
        drop_pages(c->src, c->nbytes);
        c->evicted = 0;
    }
    if (!st && keep) ext->resident = 1;
    pthread_mutex_unlock(&copies_lock);
    return st;
}

int gf_external_is_copy(const gf_external *ext, const void *data)
{
    for (int i = 0; i < ext->n_copies; i++)
        if (ext->copies[i].addr == data) return 1;
    return 0;
}

size_t gf_external_evicted_bytes(gf_external *ext)
{
    size_t bytes = 0;
    pthread_mutex_lock(&copies_lock);
    for (int i = 0; i < ext->n_copies; i++)
        if (ext->copies[i].evicted) bytes += ext->copies[i].nbytes;
    pthread_mutex_unlock(&copies_lock);
    return bytes;
}

/* How many values a tensor holds in the typed field its dtype uses. */
static size_t typed_count(const Onnx__TensorProto *p, gf_dtype dtype)
{
    switch (dtype) {
    case GF_FLOAT: return p->n_float_data;
    case GF_DOUBLE: return p->n_double_data;
    case GF_INT64: return p->n_int64_data;
    case GF_UINT32: case GF_UINT64: return p->n_uint64_data;
    default: return p->n_int32_data;
    }
}

/* Copies typed-field data (float_data, int32_data, ...) into the tensor; the
 * count was checked before the tensor was allocated. */
static void copy_typed(const Onnx__TensorProto *p, gf_tensor *t, int64_t numel)
{
    for (int64_t i = 0; i < numel; i++) {
        switch (t->dtype) {
        case GF_FLOAT: ((float *)t->data)[i] = p->float_data[i]; break;
        case GF_DOUBLE: ((double *)t->data)[i] = p->double_data[i]; break;
        case GF_INT64: ((int64_t *)t->data)[i] = p->int64_data[i]; break;
        case GF_UINT64: ((uint64_t *)t->data)[i] = p->uint64_data[i]; break;
        case GF_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)p->uint64_data[i]; break;
        case GF_INT32: ((int32_t *)t->data)[i] = p->int32_data[i]; break;
        case GF_INT16: ((int16_t *)t->data)[i] = (int16_t)p->int32_data[i]; break;
        case GF_INT8: ((int8_t *)t->data)[i] = (int8_t)p->int32_data[i]; break;
        case GF_UINT16: case GF_FLOAT16: case GF_BFLOAT16:
            ((uint16_t *)t->data)[i] = (uint16_t)p->int32_data[i]; break;
        case GF_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)p->int32_data[i]; break;
        case GF_BOOL: ((uint8_t *)t->data)[i] = p->int32_data[i] != 0; break;
        default: break;
        }
    }
}

void gf_external_release_pages(const gf_external *ext, const void *data, size_t nbytes)
{
    const char *p = data;
    for (int i = 0; ext && p && i < ext->n_maps; i++) {
        const char *map = ext->maps[i].addr;
        if (p >= map && nbytes <= ext->maps[i].len && (size_t)(p - map) <= ext->maps[i].len - nbytes) {
            drop_pages(p, nbytes);
            return;
        }
    }
}

/* Raw data still in the mapped file: used in place when aligned for its type,
 * else copied once, and the file's pages given back. */
static gf_status use_mapped(const gf_raw_span *span, gf_external *ext, gf_tensor *t, size_t nbytes, const char *what)
{
    char shape[96];
    if (span->len != nbytes)
        return gf_fail(GF_ERR_PARSE, "tensor '%s': raw data has %zu bytes, its dims %s need %zu", what, span->len,
                       gf_shape_str(t, shape, sizeof shape), nbytes);
    if ((uintptr_t)span->data % gf_dtype_size(t->dtype) == 0) {
        t->data = (void *)span->data;
        return GF_OK;
    }
    return aligned_copy(ext, span->data, nbytes, what, t);
}

gf_status gf_tensor_from_proto(Onnx__TensorProto *p, const gf_raw_span *mapped, gf_external *ext, const char *what,
                               gf_tensor **out)
{
    *out = NULL;
    gf_dtype dtype = (gf_dtype)(p->has_data_type ? p->data_type : 0);
    if (p->n_dims > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor '%s' has rank %zu; graft holds at most %d", what, p->n_dims, GF_MAX_RANK);
    if (dtype == GF_STRING)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor '%s' holds strings, which graft does not support", what);
    if (gf_dtype_size(dtype) == 0)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor '%s' has element type %d, which graft does not support", what, (int)dtype);
    if (p->segment)
        return gf_fail(GF_ERR_UNSUPPORTED, "tensor '%s' is segmented, which graft does not support", what);
    int64_t numel = 0;
    gf_status st = checked_numel(p, what, &numel);
    if (st) return st;
    size_t nbytes = (size_t)numel * gf_dtype_size(dtype);

    gf_tensor *t = calloc(1, sizeof *t);
    if (!t) return gf_fail(GF_ERR_NOMEM, "out of memory reading tensor '%s'", what);
    t->dtype = dtype;
    t->rank = (int)p->n_dims;
    for (size_t i = 0; i < p->n_dims; i++) t->dims[i] = p->dims[i];

    if (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        st = map_external(p, ext, what, nbytes, t);
    } else if (mapped && mapped->data) {
        st = use_mapped(mapped, ext, t, nbytes, what);
    } else if (p->has_raw_data) {
        if (p->raw_data.len != nbytes) {
            st = gf_fail(GF_ERR_PARSE, "tensor '%s': raw data has %zu bytes, its dims %s need %zu",
                         what, p->raw_data.len, gf_shape_str(t, (char[96]){0}, 96), nbytes);
        } else if (nbytes) {
            t->data = p->raw_data.data; /* taken over: protobuf-c allocated it with malloc */
            t->owns_data = 1;
            p->raw_data.data = NULL;
            p->raw_data.len = 0;
            p->has_raw_data = 0;
        }
    } else if (typed_count(p, dtype) != (size_t)numel) {
        /* checked before allocating: the dims of a hostile file can claim any size */
        st = gf_fail(GF_ERR_PARSE, "tensor '%s': holds %zu values, its dims say %lld", what, typed_count(p, dtype),
                     (long long)numel);
    } else if (!(t->data = calloc(nbytes ? nbytes : 1, 1))) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory: tensor '%s' needs %zu bytes", what, nbytes);
    } else {
        t->owns_data = 1;
        copy_typed(p, t, numel);
    }
    if (!st && !t->data) { /* empty tensors still get a valid pointer */
        t->data = calloc(1, 1);
        t->owns_data = 1;
        if (!t->data) st = gf_fail(GF_ERR_NOMEM, "out of memory reading tensor '%s'", what);
    }
    if (st) {
        gf_tensor_free(t);
        return st;
    }
    *out = t;
    return GF_OK;
}

/* Reads a whole small file; .pb tensors are read, not mapped. */
static gf_status read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return gf_fail(GF_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    uint8_t *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *d = realloc(data, cap);
            if (!d) {
                free(data);
                fclose(f);
                return gf_fail(GF_ERR_NOMEM, "out of memory reading '%s'", path);
            }
            data = d;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(data);
        return gf_fail(GF_ERR_IO, "error reading '%s'", path);
    }
    *buf = data;
    *len = n;
    return GF_OK;
}

gf_status gf_tensor_read_pb(const char *path, gf_tensor **out, char **name)
{
    *out = NULL;
    if (name) *name = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    gf_status st = read_file(path, &buf, &len);
    if (st) return st;
    st = gf_scan_limits(buf, len, &onnx__tensor_proto__descriptor);
    Onnx__TensorProto *p = st ? NULL : onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (st) return gf_fail_context(st, "%s", path);
    if (!p) return gf_fail(GF_ERR_PARSE, "'%s' is not an ONNX TensorProto (truncated or corrupt)", path);
    st = gf_tensor_from_proto(p, NULL, NULL, p->name && *p->name ? p->name : path, out);
    if (!st && name && p->name && !(*name = strdup(p->name))) {
        gf_tensor_free(*out);
        *out = NULL;
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(p, NULL);
    if (st) return gf_fail_context(st, "%s", path);
    return GF_OK;
}

typedef struct packed {
    const uint8_t *data;
    size_t len;
} packed;

static int write_packed(FILE *f, void *ctx)
{
    const packed *p = ctx;
    errno = 0;
    return fwrite(p->data, 1, p->len, f) == p->len ? 0 : errno ? errno : EIO;
}

/* Written like a model: to a temporary beside it, then renamed, so that a full disk
 * leaves no half tensor under the name. */
gf_status gf_tensor_write_pb(const char *path, const gf_tensor *t, const char *name)
{
    Onnx__TensorProto p = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[GF_MAX_RANK];
    for (int i = 0; i < t->rank; i++) dims[i] = t->dims[i];
    p.n_dims = (size_t)t->rank;
    p.dims = dims;
    p.has_data_type = 1;
    p.data_type = (int32_t)t->dtype;
    p.name = (char *)(name ? name : "");
    p.has_raw_data = 1;
    p.raw_data.len = gf_tensor_nbytes(t);
    p.raw_data.data = t->data;
    size_t len = onnx__tensor_proto__get_packed_size(&p);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return gf_fail(GF_ERR_NOMEM, "out of memory writing '%s'", path);
    onnx__tensor_proto__pack(&p, buf);
    packed bytes = {buf, len};
    gf_status st = gf_write_atomically(path, write_packed, &bytes);
    free(buf);
    return st;
}
