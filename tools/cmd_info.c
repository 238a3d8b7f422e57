/* graft info MODEL: what a model holds, and what it costs at a given batch. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runtime/error.h"

static const char info_usage[] =
    "usage: graft info MODEL [--batch N] [--size HxW] [--json]\n"
    "\n"
    "Prints the IR version, producer, opsets, inputs and outputs (symbolic dims by\n"
    "name), op counts, parameters, and, planned with symbolic dims set to --batch\n"
    "(default 1) and unknown spatial dims to --size (default 224x224), the FLOPs\n"
    "and the activation memory peak. When the model cannot be planned (an op graft\n"
    "does not support, say), the rest is printed and the reason goes to stderr.\n";

typedef struct info_cost {
    int batch, height, width;
    int planned;            /* 0: the model could not be planned; no FLOPs or memory */
    double gflops;
    double arena_mib;
} info_cost;

/* Plans a session at the concrete input shapes to learn FLOPs and memory. */
static gf_status plan_cost(gf_model *m, info_cost *cost)
{
    int n = gf_model_num_inputs(m);
    gf_tensor *shapes = calloc((size_t)n + 1, sizeof *shapes);
    const gf_tensor **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    gf_session *s = NULL;
    gf_status st = shapes && ptrs ? GF_OK : gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) {
        gf_io_info io = gf_model_input(m, i);
        st = cli_concrete_shape(&io, cost->batch, cost->height, cost->width, &shapes[i]);
        ptrs[i] = &shapes[i];
    }
    gf_session_options opt = {0};
    if (!st) st = gf_session_new(m, &opt, &s);
    if (!st) st = gf_session_plan(s, ptrs);
    if (!st) {
        cost->planned = 1;
        cost->gflops = gf_session_flops(s) / 1e9;
        cost->arena_mib = (double)gf_session_arena_bytes(s) / (1024.0 * 1024.0);
    }
    gf_session_free(s);
    free(shapes);
    free(ptrs);
    return st;
}

static void print_io_text(const char *title, gf_model *m, int n, gf_io_info (*get)(const gf_model *, int))
{
    printf("%s:\n", title);
    for (int i = 0; i < n; i++) {
        gf_io_info io = get(m, i);
        char shape[256];
        cli_io_shape(&io, shape, sizeof shape);
        printf("  %-24s %-8s %s\n", io.name, gf_dtype_name(io.dtype), shape);
    }
}

static void print_text(const char *path, gf_model *m, const gf_model_summary *sum, const info_cost *cost)
{
    printf("model:      %s\n", path);
    printf("ir_version: %lld\n", (long long)sum->ir_version);
    printf("producer:   %s\n", sum->producer[0] ? sum->producer : "(none)");
    printf("opsets:    ");
    for (int k = 0; k < sum->n_opsets; k++)
        printf(" %s%s%lld", sum->opset_domains[k][0] ? sum->opset_domains[k] : "ai.onnx", ":",
               (long long)sum->opset_versions[k]);
    printf("\n");
    print_io_text("inputs", m, gf_model_num_inputs(m), gf_model_input);
    print_io_text("outputs", m, gf_model_num_outputs(m), gf_model_output);
    printf("ops: %d nodes, %d types\n", sum->n_nodes, sum->n_op_types);
    for (int k = 0; k < sum->n_op_types; k++) printf("  %-24s %d\n", sum->op_types[k], sum->op_counts[k]);
    printf("parameters: %lld (%.2f MiB)\n", (long long)sum->n_params, (double)sum->param_bytes / (1024.0 * 1024.0));
    if (cost->planned)
        printf("at batch %d: %.3f GFLOPs, activation memory peak %.2f MiB\n", cost->batch, cost->gflops,
               cost->arena_mib);
    else printf("at batch %d: FLOPs and memory unknown (the model cannot be planned)\n", cost->batch);
}

static void print_io_json(const char *key, gf_model *m, int n, gf_io_info (*get)(const gf_model *, int))
{
    printf("  \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        gf_io_info io = get(m, i);
        printf("%s\n    {\"name\": ", i ? "," : "");
        cli_json_string(stdout, io.name);
        printf(", \"dtype\": ");
        cli_json_string(stdout, gf_dtype_name(io.dtype));
        printf(", \"shape\": ");
        if (io.rank < 0) printf("null");
        else {
            printf("[");
            for (int d = 0; d < io.rank; d++) {
                if (d) printf(", ");
                if (io.dims[d] >= 0) printf("%lld", (long long)io.dims[d]);
                else if (io.dim_names && io.dim_names[d]) cli_json_string(stdout, io.dim_names[d]);
                else printf("null");
            }
            printf("]");
        }
        printf("}");
    }
    printf("%s],\n", n ? "\n  " : "");
}

static void print_json(const char *path, gf_model *m, const gf_model_summary *sum, const info_cost *cost)
{
    printf("{\n  \"model\": ");
    cli_json_string(stdout, path);
    printf(",\n  \"ir_version\": %lld,\n  \"producer\": ", (long long)sum->ir_version);
    cli_json_string(stdout, sum->producer);
    printf(",\n  \"opsets\": {");
    for (int k = 0; k < sum->n_opsets; k++) {
        printf("%s", k ? ", " : "");
        cli_json_string(stdout, sum->opset_domains[k]);
        printf(": %lld", (long long)sum->opset_versions[k]);
    }
    printf("},\n");
    print_io_json("inputs", m, gf_model_num_inputs(m), gf_model_input);
    print_io_json("outputs", m, gf_model_num_outputs(m), gf_model_output);
    printf("  \"nodes\": %d,\n  \"ops\": {", sum->n_nodes);
    for (int k = 0; k < sum->n_op_types; k++) {
        printf("%s", k ? ", " : "");
        cli_json_string(stdout, sum->op_types[k]);
        printf(": %d", sum->op_counts[k]);
    }
    printf("},\n  \"parameters\": %lld,\n  \"parameter_bytes\": %lld,\n", (long long)sum->n_params,
           (long long)sum->param_bytes);
    printf("  \"batch\": %d,\n", cost->batch);
    if (cost->planned) printf("  \"gflops\": %.6g,\n  \"arena_mib\": %.6g\n}\n", cost->gflops, cost->arena_mib);
    else {
        printf("  \"gflops\": null,\n  \"arena_mib\": null,\n  \"plan_error\": ");
        cli_json_string(stdout, gf_last_error());
        printf("\n}\n");
    }
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL, *value;
    int json = 0;
    info_cost cost = {.batch = 1, .height = 224, .width = 224};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(info_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (cli_flag("info", argc, argv, &i, "--batch", &value))
            cost.batch = cli_int("info", "--batch", value, 1, 1 << 20);
        else if (cli_flag("info", argc, argv, &i, "--size", &value)) cli_size("info", value, &cost.height, &cost.width);
        else if (argv[i][0] == '-' && argv[i][1]) cli_usage_error("info", "unknown option '%s'", argv[i]);
        else if (path) cli_usage_error("info", "one model at a time ('%s' and '%s')", path, argv[i]);
        else path = argv[i];
    }
    if (!path) cli_usage_error("info", "which model?");

    gf_model *m = NULL;
    gf_model_summary sum;
    if (gf_model_load(path, &m) || gf_model_summary_get(m, &sum)) {
        int rc = cli_fail();
        gf_model_free(m);
        return rc;
    }
    /* A model that cannot be planned is still described; the reason follows. */
    int rc = plan_cost(m, &cost) ? 1 : 0;
    if (json) print_json(path, m, &sum, &cost);
    else print_text(path, m, &sum, &cost);
    fflush(stdout);
    if (rc) cli_fail();
    gf_model_free(m);
    return rc;
}
