/* graft stats DATA: what a data set holds, and the per-channel mean and
 * standard deviation of its pixels, the values a normalize step wants. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char stats_usage[] =
    "usage: graft stats DATA [--format F] [--subset S] [--channels 1|3] [--skip-bad] [--threads N] [--json]\n"
    "\n"
    "Opens a data set (a folder of class folders, IDX/MNIST files, CIFAR-10/100 .bin\n"
    "batches, images/ + masks/ for segmentation, images/ + labels/ for YOLO; --format\n"
    "auto|folder|idx|cifar10|cifar100|segmentation|yolo, default auto) and prints its\n"
    "size and classes and the mean and standard deviation of every pixel of every\n"
    "sample per channel, in ToTensor's units (0..1), with the matching transform step\n"
    "(normalize:M1:M2:M3:S1:S2:S3). --subset picks train/test (IDX: t10k, CIFAR: test)\n"
    "or a subfolder; --channels loads as grey (1) or RGB (3); --skip-bad leaves out\n"
    "files that do not decode, with a warning. The sums are exact: any --threads\n"
    "(default one per core) gives the same numbers.\n";

static const char *task_name(gf_task t)
{
    return t == GF_TASK_CLASSIFY ? "classification" : t == GF_TASK_SEGMENT ? "segmentation" : "detection";
}

/* "normalize:M...:S..." with six decimals, as the transform spec takes it. */
static void normalize_spec(char *buf, size_t len, int channels, const double *mean, const double *std)
{
    size_t at = (size_t)snprintf(buf, len, "normalize");
    for (int k = 0; k < 2 * channels && at < len; k++)
        at += (size_t)snprintf(buf + at, len - at, ":%.6f", k < channels ? mean[k] : std[k - channels]);
}

static void print_text(const char *path, const gf_dataset *d, int64_t pixels, const double *mean, const double *std,
                       const char *spec)
{
    int c = gf_dataset_channels(d), classes = gf_dataset_num_classes(d);
    printf("data:      %s\n", path);
    printf("format:    %s (%s)\n", gf_data_format_name(gf_dataset_format(d)), task_name(gf_dataset_task(d)));
    printf("samples:   %lld\n", (long long)gf_dataset_size(d));
    if (classes) printf("classes:   %d\n", classes);
    else printf("classes:   unknown (no classes.txt)\n");
    printf("channels:  %d\n", c);
    printf("pixels:    %lld per channel\n", (long long)pixels);
    printf("mean:     ");
    for (int k = 0; k < c; k++) printf(" %.6f", mean[k]);
    printf("\nstd:      ");
    for (int k = 0; k < c; k++) printf(" %.6f", std[k]);
    printf("\ntransform: %s\n", spec);
}

static void print_json(const char *path, const gf_dataset *d, int64_t pixels, const double *mean, const double *std,
                       const char *spec)
{
    int c = gf_dataset_channels(d), classes = gf_dataset_num_classes(d);
    printf("{\n  \"data\": ");
    cli_json_string(stdout, path);
    printf(",\n  \"format\": ");
    cli_json_string(stdout, gf_data_format_name(gf_dataset_format(d)));
    printf(",\n  \"task\": ");
    cli_json_string(stdout, task_name(gf_dataset_task(d)));
    printf(",\n  \"samples\": %lld,\n  \"classes\": ", (long long)gf_dataset_size(d));
    if (classes) printf("%d", classes);
    else printf("null");
    printf(",\n  \"class_names\": [");
    for (int k = 0; k < classes; k++) {
        const char *name = gf_dataset_class_name(d, k);
        printf("%s", k ? ", " : "");
        if (name) cli_json_string(stdout, name);
        else printf("null");
    }
    printf("],\n  \"channels\": %d,\n  \"pixels\": %lld,\n  \"mean\": [", c, (long long)pixels);
    for (int k = 0; k < c; k++) printf("%s%.9g", k ? ", " : "", mean[k]);
    printf("],\n  \"std\": [");
    for (int k = 0; k < c; k++) printf("%s%.9g", k ? ", " : "", std[k]);
    printf("],\n  \"transform\": ");
    cli_json_string(stdout, spec);
    printf("\n}\n");
}

int cmd_stats(int argc, char **argv)
{
    const char *path = NULL, *value;
    int json = 0, threads = 0;
    gf_dataset_options opt = {0};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(stats_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--skip-bad")) opt.skip_bad = 1;
        else if (cli_flag("stats", argc, argv, &i, "--format", &value)) {
            if (gf_data_format_parse(value, &opt.format)) cli_usage_error("stats", "%s", gf_last_error());
        } else if (cli_flag("stats", argc, argv, &i, "--subset", &value)) opt.subset = value;
        else if (cli_flag("stats", argc, argv, &i, "--channels", &value)) {
            opt.channels = cli_int("stats", "--channels", value, 1, 3);
            if (opt.channels == 2) cli_usage_error("stats", "--channels wants 1 (grey) or 3 (RGB), not 2");
        } else if (cli_flag("stats", argc, argv, &i, "--threads", &value))
            threads = cli_int("stats", "--threads", value, 1, 1024);
        else if (argv[i][0] == '-' && argv[i][1]) cli_usage_error("stats", "unknown option '%s'", argv[i]);
        else if (path) cli_usage_error("stats", "one data set at a time ('%s' and '%s')", path, argv[i]);
        else path = argv[i];
    }
    if (!path) cli_usage_error("stats", "which data set?");

    gf_dataset *d = NULL;
    double mean[3], std[3];
    int64_t pixels;
    if (gf_dataset_open(path, &opt, &d) || gf_dataset_stats(d, threads, mean, std, &pixels)) {
        int rc = cli_fail();
        gf_dataset_free(d);
        return rc;
    }
    char spec[256];
    normalize_spec(spec, sizeof spec, gf_dataset_channels(d), mean, std);
    if (json) print_json(path, d, pixels, mean, std, spec);
    else print_text(path, d, pixels, mean, std, spec);
    gf_dataset_free(d);
    return 0;
}
