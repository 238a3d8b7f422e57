/* The ONNX conformance runner: walks test cases in the ONNX test-data layout
 * (case/model.onnx, case/test_data_set_N/{input,output}_K.pb), runs each through
 * graft and compares with the expected outputs.
 *
 *   conformance [--filter SUBSTR] [--verbose] [--max-rel X] [--min-passed DIR=N] [--device D] [DIR ...]
 *
 * --device cuda[:N] runs every case in a session on that GPU (the steps without a CUDA
 * kernel on the CPU beside it); without a CUDA device it says so and exits 77 (skipped).
 *
 * A DIR holds cases, or is a case itself. Each case is passed, failed (wrong
 * answer or an error other than "unsupported") or unsupported. A wrong answer
 * is worse than an unsupported op: any failure makes the exit status 1. */
#include "graft.h"
#include "runtime/device.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RTOL 1e-3
#define ATOL 1e-5

/* Cases whose expected data in Debian's ONNX 1.12 test data is wrong; each
 * was checked against a newer ONNX reference or onnxruntime. They still run,
 * and are reported as "stale" instead of counted as passed or failed. */
static const struct {
    const char *name, *why;
} stale_data[] = {
    {"test_cast_FLOAT_to_BFLOAT16", "ONNX 1.12's data truncates; its newer reference, onnxruntime and PyTorch round to nearest even"},
    {"test_castlike_BFLOAT16_to_FLOAT", "input 'like' has shape [1] where the model declares [3,4]"},
    {"test_castlike_BFLOAT16_to_FLOAT_expanded", "input 'like' has shape [1] where the model declares [3,4]"},
    {"test_castlike_FLOAT_to_BFLOAT16", "input 'like' has shape [1] where the model declares [3,4]"},
    {"test_castlike_FLOAT_to_BFLOAT16_expanded", "input 'like' has shape [1] where the model declares [3,4]"},
};

static const char *stale_reason(const char *name)
{
    for (size_t i = 0; i < sizeof stale_data / sizeof *stale_data; i++)
        if (!strcmp(name, stale_data[i].name)) return stale_data[i].why;
    return NULL;
}

typedef struct options {
    const char *filter;
    int verbose;
    double max_rel; /* > 0: tolerance relative to the largest expected magnitude (model tests) */
    int skip_missing; /* a missing DIR skips (exit 77) instead of failing */
    int strict;       /* unsupported counts as failed: for models graft must run */
    gf_session_options session;
} options;

typedef struct counts {
    int passed, failed, unsupported, stale;
} counts;

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in a folder; returns the count. */
static int list_dir(const char *path, char ***names)
{
    DIR *d = opendir(path);
    int n = 0, cap = 64;
    *names = malloc((size_t)cap * sizeof(char *));
    if (!d || !*names) {
        if (d) closedir(d);
        return 0;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) *names = realloc(*names, (size_t)(cap *= 2) * sizeof(char *));
        (*names)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*names, (size_t)n, sizeof(char *), cmp_str);
    return n;
}

static void free_list(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static double value_at(const gf_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case GF_FLOAT: return ((const float *)t->data)[i];
    case GF_DOUBLE: return ((const double *)t->data)[i];
    case GF_INT64: return (double)((const int64_t *)t->data)[i];
    case GF_INT32: return ((const int32_t *)t->data)[i];
    case GF_INT16: return ((const int16_t *)t->data)[i];
    case GF_INT8: return ((const int8_t *)t->data)[i];
    case GF_UINT64: return (double)((const uint64_t *)t->data)[i];
    case GF_UINT32: return ((const uint32_t *)t->data)[i];
    case GF_UINT16: return ((const uint16_t *)t->data)[i];
    case GF_UINT8: case GF_BOOL: return ((const uint8_t *)t->data)[i];
    case GF_FLOAT16: {
        uint16_t h = ((const uint16_t *)t->data)[i];
        int e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m | 1024, e - 25);
        return h & 0x8000 ? -v : v;
    }
    case GF_BFLOAT16: {
        uint32_t bits = (uint32_t)((const uint16_t *)t->data)[i] << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    default: return NAN;
    }
}

static int is_float(gf_dtype t)
{
    return t == GF_FLOAT || t == GF_DOUBLE || t == GF_FLOAT16 || t == GF_BFLOAT16;
}

/* Returns 1 when equal within tolerance; otherwise writes why into msg. */
static int compare(const gf_tensor *got, const gf_tensor *want, double rtol, double atol, double max_rel,
                   char *msg, size_t len)
{
    char a[96], b[96];
    if (got->dtype != want->dtype) {
        snprintf(msg, len, "element type %s, expected %s", gf_dtype_name(got->dtype), gf_dtype_name(want->dtype));
        return 0;
    }
    int same = got->rank == want->rank;
    for (int d = 0; same && d < got->rank; d++) same = got->dims[d] == want->dims[d];
    if (!same) {
        snprintf(msg, len, "shape %s, expected %s", gf_shape_str(got, a, sizeof a), gf_shape_str(want, b, sizeof b));
        return 0;
    }
    int64_t n = gf_tensor_numel(want);
    if (max_rel > 0) {
        double peak = 0;
        for (int64_t i = 0; i < n; i++) peak = fmax(peak, fabs(value_at(want, i)));
        atol = max_rel * peak + ATOL;
        rtol = 0;
    }
    int64_t worst = -1;
    double worst_excess = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = value_at(got, i), w = value_at(want, i);
        if (isnan(w) && isnan(g)) continue;
        if (isinf(w) && g == w) continue;
        double excess = is_float(want->dtype) ? fabs(g - w) - (atol + rtol * fabs(w)) : (g != w ? 1 : -1);
        if (isnan(excess) || excess > worst_excess || (excess > 0 && worst < 0)) {
            worst = i;
            worst_excess = isnan(excess) ? INFINITY : excess;
        }
    }
    if (worst < 0) return 1;
    snprintf(msg, len, "element %lld is %.9g, expected %.9g (rtol %g, atol %g)", (long long)worst,
             value_at(got, worst), value_at(want, worst), rtol, atol);
    return 0;
}

typedef enum verdict { PASSED, FAILED, UNSUPPORTED } verdict;

/* The ONNX 1.12 test data stores bfloat16 tensors with the uint16 type. */
static void as_bfloat16_if_declared(gf_tensor *t, gf_dtype declared)
{
    if (t->dtype == GF_UINT16 && declared == GF_BFLOAT16) t->dtype = GF_BFLOAT16;
}

static verdict run_data_set(gf_model *m, gf_session *s, const char *set_dir, const options *o,
                            char *msg, size_t len)
{
    int n_in = gf_model_num_inputs(m), n_out = gf_model_num_outputs(m);
    gf_tensor **in = calloc((size_t)n_in + 1, sizeof *in), **want = calloc((size_t)n_out + 1, sizeof *want);
    gf_tensor **got = calloc((size_t)n_out + 1, sizeof *got);
    char path[4096];
    verdict v = PASSED;
    gf_status st;
    for (int i = 0; i < n_in && v == PASSED; i++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", set_dir, i);
        if (!is_file(path)) {
            snprintf(msg, len, "test data has no %s for graph input '%s'", path, gf_model_input(m, i).name);
            v = FAILED;
        } else if ((st = gf_tensor_read_pb(path, &in[i], NULL))) {
            snprintf(msg, len, "%s", gf_last_error());
            v = st == GF_ERR_UNSUPPORTED ? UNSUPPORTED : FAILED;
        } else {
            as_bfloat16_if_declared(in[i], gf_model_input(m, i).dtype);
        }
    }
    for (int i = 0; i < n_out && v == PASSED; i++) {
        snprintf(path, sizeof path, "%s/output_%d.pb", set_dir, i);
        if ((st = gf_tensor_read_pb(path, &want[i], NULL))) {
            snprintf(msg, len, "%s", gf_last_error());
            v = st == GF_ERR_UNSUPPORTED ? UNSUPPORTED : FAILED;
        } else {
            as_bfloat16_if_declared(want[i], gf_model_output(m, i).dtype);
        }
    }
    /* On a GPU, a second run with the inputs staged (copied ahead on the copy stream)
     * must agree too. */
    int runs = o->session.device == GF_DEVICE_CUDA ? 2 : 1;
    for (int r = 0; r < runs && v == PASSED; r++) {
        const char *how = r ? " (inputs staged)" : "";
        for (int i = 0; i < n_out; i++) {
            gf_tensor_free(got[i]);
            got[i] = NULL;
        }
        st = r ? gf_session_stage(s, (const gf_tensor *const *)in) : GF_OK;
        if (!st) st = gf_session_run(s, (const gf_tensor *const *)in, got);
        if (st) {
            snprintf(msg, len, "%s%s", gf_last_error(), how);
            v = st == GF_ERR_UNSUPPORTED ? UNSUPPORTED : FAILED;
        }
        for (int i = 0; i < n_out && v == PASSED; i++) {
            char why[512];
            if (!compare(got[i], want[i], RTOL, ATOL, o->max_rel, why, sizeof why)) {
                snprintf(msg, len, "output %d ('%s')%s: %s", i, gf_model_output(m, i).name, how, why);
                v = FAILED;
            }
        }
    }
    for (int i = 0; i < n_in; i++) gf_tensor_free(in[i]);
    for (int i = 0; i < n_out; i++) {
        gf_tensor_free(want[i]);
        gf_tensor_free(got[i]);
    }
    free(in);
    free(want);
    free(got);
    return v;
}

static verdict run_case(const char *dir, const options *o, char *msg, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    gf_model *m;
    gf_status st = gf_model_load(path, &m);
    if (st) {
        snprintf(msg, len, "%s", gf_last_error());
        return st == GF_ERR_UNSUPPORTED ? UNSUPPORTED : FAILED;
    }
    gf_session *s;
    if (gf_session_new(m, &o->session, &s)) {
        if (o->session.device == GF_DEVICE_CUDA && strstr(gf_last_error(), "CUDA")) {
            printf("SKIP: %s\n", gf_last_error());
            exit(77);
        }
        snprintf(msg, len, "%s", gf_last_error());
        gf_model_free(m);
        return FAILED;
    }
    char **sets;
    int n_sets = list_dir(dir, &sets), ran = 0;
    verdict v = PASSED;
    for (int i = 0; i < n_sets && v == PASSED; i++) {
        if (strncmp(sets[i], "test_data_set_", 14)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, sets[i]);
        v = run_data_set(m, s, path, o, msg, len);
        ran++;
    }
    if (v == PASSED && !ran) {
        snprintf(msg, len, "no test_data_set_* folder");
        v = FAILED;
    }
    free_list(sets, n_sets);
    gf_session_free(s);
    gf_model_free(m);
    return v;
}

static void run_collection(const char *dir, const options *o, counts *c)
{
    char path[4096], msg[8192];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    char **names = NULL;
    int n, single = is_file(path);
    if (single) {
        n = 1;
        names = malloc(sizeof(char *));
        names[0] = strdup(dir);
    } else {
        n = list_dir(dir, &names);
    }
    for (int i = 0; i < n; i++) {
        if (o->filter && !strstr(names[i], o->filter)) continue;
        if (single) snprintf(path, sizeof path, "%s", dir);
        else snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!is_dir(path)) continue;
        msg[0] = '\0';
        verdict v = run_case(path, o, msg, sizeof msg);
        if (v == UNSUPPORTED && o->strict) v = FAILED;
        const char *stale = stale_reason(names[i]);
        if (stale && v != PASSED) {
            c->stale++;
            printf("STALE       %s: %s (%s)\n", names[i], stale, msg);
            continue;
        }
        const char *word = v == PASSED ? "PASS" : v == FAILED ? "FAIL" : "UNSUPPORTED";
        if (v == PASSED) c->passed++;
        else if (v == FAILED) c->failed++;
        else c->unsupported++;
        if (v == FAILED || o->verbose) {
            /* keep each report on one line */
            for (char *p = msg; *p; p++)
                if (*p == '\n') *p = ' ';
            printf("%-11s %s%s%s\n", word, names[i], *msg ? ": " : "", msg);
        }
    }
    free_list(names, n);
}

int main(int argc, char **argv)
{
    options o = {0};
    const char *dirs[64];
    int n_dirs = 0;
    struct { const char *dir; int min; } floors[16];
    int n_floors = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--filter") && i + 1 < argc) o.filter = argv[++i];
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) o.verbose = 1;
        else if (!strcmp(argv[i], "--max-rel") && i + 1 < argc) o.max_rel = atof(argv[++i]);
        else if (!strcmp(argv[i], "--skip-missing")) o.skip_missing = 1;
        else if (!strcmp(argv[i], "--strict")) o.strict = 1;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            int index;
            if (gf_cuda_parse_device(argv[++i], &index)) {
                fprintf(stderr, "conformance: %s\n", gf_last_error());
                return 2;
            }
            o.session.device = index < 0 ? GF_DEVICE_CPU : GF_DEVICE_CUDA;
            o.session.device_index = index < 0 ? 0 : index;
        }
        else if (!strcmp(argv[i], "--min-passed") && i + 1 < argc && n_floors < 16) {
            char *eq = strrchr(argv[++i], '=');
            if (!eq) {
                fprintf(stderr, "conformance: --min-passed takes DIR=N\n");
                return 2;
            }
            *eq = '\0';
            floors[n_floors].dir = argv[i];
            floors[n_floors++].min = atoi(eq + 1);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: conformance [--filter SUBSTR] [--verbose] [--max-rel X] [--min-passed DIR=N] [--skip-missing] [--strict] [--device D] [DIR ...]\n");
            return 2;
        } else if (n_dirs < 64) dirs[n_dirs++] = argv[i];
    }
    static const char *defaults[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
    char default_paths[4][4096];
    if (!n_dirs)
        for (int i = 0; i < 4; i++) {
            snprintf(default_paths[i], sizeof default_paths[i], "%s/%s", GRAFT_TESTDATA, defaults[i]);
            dirs[n_dirs++] = default_paths[i];
        }
    counts total = {0};
    int floors_ok = 1;
    for (int i = 0; i < n_dirs; i++) {
        if (!is_dir(dirs[i])) {
            fprintf(stderr, "conformance: no such folder: %s%s\n", dirs[i], o.skip_missing ? " (skipped)" : "");
            return o.skip_missing ? 77 : 2;
        }
        counts c = {0};
        run_collection(dirs[i], &o, &c);
        printf("%s: %d passed, %d failed, %d unsupported, %d with stale reference data\n", dirs[i], c.passed, c.failed,
               c.unsupported, c.stale);
        for (int f = 0; f < n_floors; f++) {
            size_t ld = strlen(dirs[i]), lf = strlen(floors[f].dir);
            if (ld >= lf && !strcmp(dirs[i] + ld - lf, floors[f].dir) && c.passed < floors[f].min) {
                printf("%s: %d passed, fewer than the %d expected\n", dirs[i], c.passed, floors[f].min);
                floors_ok = 0;
            }
        }
        total.passed += c.passed;
        total.failed += c.failed;
        total.unsupported += c.unsupported;
        total.stale += c.stale;
    }
    printf("conformance: %d passed, %d failed, %d unsupported, %d with stale reference data\n", total.passed,
           total.failed, total.unsupported, total.stale);
    return total.failed || !floors_ok ? 1 : 0;
}
