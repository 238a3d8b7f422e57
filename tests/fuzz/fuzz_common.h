/* What the fuzz targets share: a private scratch folder for the targets whose
 * entry point takes a path, and inputs shaped like a model's declared inputs. */
#ifndef GF_FUZZ_COMMON_H
#define GF_FUZZ_COMMON_H

#include "graft.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT_ELEMENTS (1 << 16)

/* The fuzzer reports an input that takes 4 GiB of RSS (-rss_limit_mb) as a finding, while
 * graft refuses only what exceeds the machine's memory: a graph folding an 8 GiB constant
 * is legal on a 24 GiB machine. Telling graft it has 1 GiB (GRAFT_MEMORY_LIMIT, unless set)
 * makes such inputs meet graft's refusal, the path worth fuzzing. */
__attribute__((constructor)) static void fuzz_memory_budget(void) { setenv("GRAFT_MEMORY_LIMIT", "1G", 0); }

static char fuzz_dir[4096];

static inline void fuzz_remove_dir(void)
{
    DIR *d = fuzz_dir[0] ? opendir(fuzz_dir) : NULL;
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(fuzz_dir);
}

/* A folder of this process's own, removed at exit. */
static inline const char *fuzz_scratch(void)
{
    if (fuzz_dir[0]) return fuzz_dir;
    /* memory-backed where there is one: the savers fsync every file they write */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/graft-fuzz-XXXXXX", tmp);
    if (!mkdtemp(fuzz_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(fuzz_remove_dir);
    return fuzz_dir;
}

/* fuzz_scratch()/name, written with exactly these bytes. */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
    return path;
}

/* A tensor of the declared shape, symbolic dims set to 1, filled with small values
 * from `seed`; NULL when the shape is unknown or large. */
static inline gf_tensor *fuzz_input_like(gf_io_info info, uint32_t seed)
{
    if (info.rank < 0 || gf_dtype_size(info.dtype) == 0) return NULL;
    int64_t dims[GF_MAX_RANK], n = 1;
    for (int d = 0; d < info.rank; d++) {
        dims[d] = info.dims[d] < 0 ? 1 : info.dims[d];
        if (dims[d] > FUZZ_MAX_INPUT_ELEMENTS || (n *= dims[d]) > FUZZ_MAX_INPUT_ELEMENTS) return NULL;
    }
    gf_tensor *t;
    if (gf_tensor_new(&t, info.dtype, info.rank, dims)) return NULL;
    size_t size = gf_dtype_size(info.dtype);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        int v = (int)(seed >> 16) % 7 - 3; /* -3..3: valid as indices, shapes and axes as often as not */
        uint8_t *p = (uint8_t *)t->data + (size_t)i * size;
        switch (info.dtype) {
        case GF_FLOAT: *(float *)p = (float)v * 0.5f; break;
        case GF_DOUBLE: *(double *)p = v * 0.5; break;
        case GF_INT64: *(int64_t *)p = v; break;
        case GF_INT32: *(int32_t *)p = v; break;
        case GF_BOOL: *p = v > 0; break;
        case GF_FLOAT16: *(uint16_t *)p = (uint16_t)(v < 0 ? 0xbc00 : v ? 0x3c00 : 0); break;
        default: memset(p, v & 0xff, size); break;
        }
    }
    return t;
}

/* With GRAFT_FUZZ_STATS set, how far the inputs got, printed at exit: to see that a
 * target's inputs reach the code under test, not what it must do. */
static struct { long loaded, planned, ran; } fuzz_stats;

static inline void fuzz_print_stats(void)
{
    fprintf(stderr, "fuzz stats: %ld loaded, %ld planned, %ld ran\n", fuzz_stats.loaded, fuzz_stats.planned,
            fuzz_stats.ran);
}

/* Plans the model for its declared inputs; when that works and the plan is small,
 * runs it too. Errors are fine; crashes, leaks and undefined behaviour are not. */
static inline void fuzz_plan_and_run(gf_model *m, int run, uint32_t seed)
{
    static int stats = -1;
    if (stats < 0 && (stats = getenv("GRAFT_FUZZ_STATS") != NULL)) atexit(fuzz_print_stats);
    fuzz_stats.loaded++;
    int n = gf_model_num_inputs(m), ok = 1;
    gf_tensor **inputs = calloc((size_t)n + 1, sizeof *inputs);
    for (int i = 0; i < n && inputs; i++) ok &= (inputs[i] = fuzz_input_like(gf_model_input(m, i), seed + (uint32_t)i)) != NULL;
    gf_session *s;
    gf_session_options opt = {.num_threads = 1};
    if (inputs && ok && !gf_session_new(m, &opt, &s)) {
        int planned = !gf_session_plan(s, (const gf_tensor *const *)inputs);
        fuzz_stats.planned += planned;
        if (planned && run && gf_session_arena_bytes(s) <= (1u << 24) && gf_session_flops(s) <= 1e7) {
            int n_out = gf_model_num_outputs(m);
            gf_tensor **outputs = calloc((size_t)n_out + 1, sizeof *outputs);
            if (outputs && !gf_session_run(s, (const gf_tensor *const *)inputs, outputs)) {
                fuzz_stats.ran++;
                for (int i = 0; i < n_out; i++) gf_tensor_free(outputs[i]);
            }
            free(outputs);
        }
        gf_session_free(s);
    }
    for (int i = 0; i < n && inputs; i++) gf_tensor_free(inputs[i]);
    free(inputs);
}

#endif
