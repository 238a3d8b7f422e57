/* graft bench MODEL: latency and throughput on random input, and where the
 * time goes per op type. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runtime/error.h"

static const char bench_usage[] =
    "usage: graft bench MODEL [--batch N] [--size HxW] [--warmup 3] [--runs 20] [--threads T]\n"
    "                   [--device D] [--profile] [--json]\n"
    "\n"
    "Runs the model on random input (symbolic dims set to --batch, unknown spatial\n"
    "dims to --size, default 224x224) and prints the latency (median, p90, p99,\n"
    "minimum) and the throughput at the median.\n"
    "--threads 0 (the default) uses one thread per core. --profile adds the time per\n"
    "op type over the timed runs. --device cpu (the default), cuda or cuda:N runs the\n"
    "model there (each run's time includes copying its input to the GPU and its outputs back).\n";

typedef struct bench_args {
    const char *model;
    int batch, height, width, warmup, runs, threads, profile, json;
    gf_session_options device; /* its device fields */
} bench_args;

static void parse_args(int argc, char **argv, bench_args *a)
{
    const char *v;
    *a = (bench_args){.batch = 1, .height = 224, .width = 224, .warmup = 3, .runs = 20};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(bench_usage, stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--json")) a->json = 1;
        else if (!strcmp(argv[i], "--profile")) a->profile = 1;
        else if (cli_flag("bench", argc, argv, &i, "--batch", &v)) a->batch = cli_int("bench", "--batch", v, 1, 1 << 20);
        else if (cli_flag("bench", argc, argv, &i, "--size", &v)) cli_size("bench", v, &a->height, &a->width);
        else if (cli_flag("bench", argc, argv, &i, "--warmup", &v)) a->warmup = cli_int("bench", "--warmup", v, 0, 1000000);
        else if (cli_flag("bench", argc, argv, &i, "--runs", &v)) a->runs = cli_int("bench", "--runs", v, 1, 1000000);
        else if (cli_flag("bench", argc, argv, &i, "--threads", &v)) a->threads = cli_int("bench", "--threads", v, 0, 4096);
        else if (cli_flag("bench", argc, argv, &i, "--device", &v)) cli_device("bench", v, &a->device);
        else if (argv[i][0] == '-' && argv[i][1]) cli_usage_error("bench", "unknown option '%s'", argv[i]);
        else if (a->model) cli_usage_error("bench", "one model at a time ('%s' and '%s')", a->model, argv[i]);
        else a->model = argv[i];
    }
    if (!a->model) cli_usage_error("bench", "which model?");
}

/* Uniform in [-1, 1) for floats from a fixed-seed generator; zeros otherwise. */
static void fill_random(gf_tensor *t, uint64_t *state)
{
    if (t->dtype != GF_FLOAT) return;
    float *x = t->data;
    for (int64_t k = 0; k < gf_tensor_numel(t); k++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        x[k] = (float)((*state >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
    }
}

static gf_status make_inputs(gf_model *m, const bench_args *a, gf_tensor **ins)
{
    uint64_t state = 42;
    for (int i = 0; i < gf_model_num_inputs(m); i++) {
        gf_io_info io = gf_model_input(m, i);
        gf_tensor shape;
        gf_status st = cli_concrete_shape(&io, a->batch, a->height, a->width, &shape);
        if (!st) st = gf_tensor_new(&ins[i], shape.dtype, shape.rank, shape.dims);
        if (st) return st;
        fill_random(ins[i], &state);
    }
    return GF_OK;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench_result {
    double median_ms, p90_ms, p99_ms, min_ms, images_per_s, gflops;
} bench_result;

static gf_status time_runs(gf_session *s, const bench_args *a, gf_tensor **ins, gf_tensor **outs, int n_out,
                           bench_result *r)
{
    double *times = malloc((size_t)a->runs * sizeof *times);
    if (!times) return gf_fail(GF_ERR_NOMEM, "out of memory");
    gf_status st = GF_OK;
    for (int k = 0; k < a->warmup + a->runs && !st; k++) {
        if (k == a->warmup) gf_session_profile_reset(s);
        double t0 = cli_now_ms();
        st = gf_session_run(s, (const gf_tensor *const *)ins, outs);
        if (k >= a->warmup) times[k - a->warmup] = cli_now_ms() - t0;
        for (int i = 0; i < n_out; i++) {
            gf_tensor_free(outs[i]);
            outs[i] = NULL;
        }
    }
    if (!st) {
        qsort(times, (size_t)a->runs, sizeof *times, by_value);
        r->median_ms = a->runs % 2 ? times[a->runs / 2] : (times[a->runs / 2 - 1] + times[a->runs / 2]) / 2;
        r->p90_ms = times[(int)((a->runs - 1) * 0.9 + 0.5)];
        r->p99_ms = times[(int)((a->runs - 1) * 0.99 + 0.5)];
        r->min_ms = times[0];
        r->images_per_s = r->median_ms > 0 ? a->batch * 1000.0 / r->median_ms : 0;
        r->gflops = gf_session_flops(s) / 1e9;
    }
    free(times);
    return st;
}

static void print_profile_text(const gf_op_time *t, int n)
{
    double total = 0;
    for (int k = 0; k < n; k++) total += t[k].ms;
    printf("\n%-24s %7s %12s %8s\n", "op", "count", "total ms", "share");
    for (int k = 0; k < n; k++)
        printf("%-24s %7d %12.3f %7.1f%%\n", t[k].op_type, t[k].count, t[k].ms, total > 0 ? 100 * t[k].ms / total : 0);
}

static void print_profile_json(const gf_op_time *t, int n)
{
    double total = 0;
    for (int k = 0; k < n; k++) total += t[k].ms;
    printf(",\n  \"profile\": [");
    for (int k = 0; k < n; k++) {
        printf("%s\n    {\"op\": ", k ? "," : "");
        cli_json_string(stdout, t[k].op_type);
        printf(", \"count\": %d, \"total_ms\": %.6g, \"share_pct\": %.6g}", t[k].count, t[k].ms,
               total > 0 ? 100 * t[k].ms / total : 0);
    }
    printf("\n  ]");
}

static void print_result(const bench_args *a, const bench_result *r, const gf_session *s)
{
    const gf_op_time *times = NULL;
    int n_times = a->profile ? gf_session_profile(s, &times) : 0;
    if (a->json) {
        printf("{\n  \"model\": ");
        cli_json_string(stdout, a->model);
        printf(",\n  \"batch\": %d,\n  \"threads\": %d,\n  \"runs\": %d,\n  \"median_ms\": %.6g,\n"
               "  \"p90_ms\": %.6g,\n  \"p99_ms\": %.6g,\n  \"min_ms\": %.6g,\n  \"images_per_s\": %.6g,\n"
               "  \"gflops\": %.6g",
               a->batch, a->threads, a->runs, r->median_ms, r->p90_ms, r->p99_ms, r->min_ms, r->images_per_s,
               r->gflops);
        if (a->profile) print_profile_json(times, n_times);
        printf("\n}\n");
        return;
    }
    printf("%s: batch %d, %d runs after %d warmup\n", a->model, a->batch, a->runs, a->warmup);
    printf("latency ms: median %.3f  p90 %.3f  p99 %.3f  min %.3f\n", r->median_ms, r->p90_ms, r->p99_ms,
           r->min_ms);
    printf("throughput: %.1f images/s, %.3f GFLOPs per run (%.1f GFLOP/s)\n", r->images_per_s, r->gflops,
           r->median_ms > 0 ? r->gflops * 1000.0 / r->median_ms : 0);
    if (a->profile) print_profile_text(times, n_times);
}

int cmd_bench(int argc, char **argv)
{
    bench_args a;
    parse_args(argc, argv, &a);
    gf_model *m = NULL;
    if (gf_model_load(a.model, &m)) return cli_fail();
    int n_in = gf_model_num_inputs(m), n_out = gf_model_num_outputs(m);
    gf_tensor **ins = calloc((size_t)n_in + 1, sizeof *ins);
    gf_tensor **outs = calloc((size_t)n_out + 1, sizeof *outs);
    gf_session *s = NULL;
    gf_session_options opt = {a.device.device, a.device.device_index, a.threads, a.profile};
    bench_result r = {0};
    gf_status st = ins && outs ? GF_OK : gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) st = make_inputs(m, &a, ins);
    if (!st) st = gf_session_new(m, &opt, &s);
    if (!st) st = time_runs(s, &a, ins, outs, n_out, &r);
    if (!st) print_result(&a, &r, s);
    int rc = st ? cli_fail() : 0;
    for (int i = 0; ins && i < n_in; i++) gf_tensor_free(ins[i]);
    free(ins);
    free(outs);
    gf_session_free(s);
    gf_model_free(m);
    return rc;
}
