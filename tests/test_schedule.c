/* Prints learning-rate schedules for tests/test_schedule.py to compare with torch.
 *
 *   test_schedule [--resume K] SPEC BASE_LR STEPS [METRIC... | -]
 *       the rate at positions 0..STEPS, one per line, advancing with the i-th
 *       metric (plateau; from stdin with "-", 0 when none is given). --resume K
 *       saves the state as text after K advances and goes on in a schedule
 *       parsed afresh with that state restored, as a resumed training would.
 *   test_schedule --range START END N      the range test's N rates
 *   test_schedule --suggest                 the suggestion from "lr loss" lines on stdin
 * Errors go to stderr, with exit status 2. */
#include "train/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(void)
{
    fprintf(stderr, "error: %s\n", gf_last_error());
    return 2;
}

static int usage(void)
{
    fprintf(stderr, "usage: test_schedule [--resume K] SPEC BASE_LR STEPS [METRIC... | -]\n"
                    "       test_schedule --range START END N\n"
                    "       test_schedule --suggest < pairs\n");
    return 2;
}

/* STEPS metrics from argv, from stdin ("-"), or zeros. */
static double *read_metrics(int argc, char **argv, long steps)
{
    double *metrics = calloc((size_t)steps + 1, sizeof *metrics);
    if (!metrics) return NULL;
    int from_stdin = argc == 1 && !strcmp(argv[0], "-");
    for (long i = 0; i < steps; i++) {
        if (from_stdin) {
            if (scanf("%lf", &metrics[i]) != 1) break;
        } else if (i < argc) {
            metrics[i] = strtod(argv[i], NULL);
        }
    }
    return metrics;
}

/* Saves and restores the state through its text, into a schedule parsed afresh. */
static int resume(gf_schedule *s, const char *spec, double base_lr)
{
    char state[256];
    gf_schedule_state_format(s, state, sizeof state);
    if (gf_schedule_parse(spec, base_lr, s) || gf_schedule_state_parse(s, state)) return 0;
    return 1;
}

static int print_schedule(int argc, char **argv)
{
    long resume_at = -1;
    if (argc >= 2 && !strcmp(argv[0], "--resume")) {
        resume_at = atol(argv[1]);
        argc -= 2, argv += 2;
    }
    if (argc < 3) return usage();
    const char *spec = argv[0];
    double base_lr = strtod(argv[1], NULL);
    long steps = atol(argv[2]);
    gf_schedule s;
    if (gf_schedule_parse(spec, base_lr, &s)) return fail();
    double *metrics = read_metrics(argc - 3, argv + 3, steps);
    if (!metrics) return 2;
    for (long t = 0; t <= steps; t++) {
        if (t == resume_at && !resume(&s, spec, base_lr)) {
            free(metrics);
            return fail();
        }
        printf("%.17g\n", gf_schedule_lr(&s));
        gf_schedule_advance(&s, metrics[t]);
    }
    free(metrics);
    return 0;
}

static int print_range(int argc, char **argv)
{
    if (argc != 3) return usage();
    double start = strtod(argv[0], NULL), end = strtod(argv[1], NULL);
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) printf("%.17g\n", gf_lr_range_at(start, end, n, i));
    return 0;
}

static int print_suggestion(void)
{
    int n = 0, cap = 0;
    double *lrs = NULL, *losses = NULL, lr, loss;
    while (scanf("%lf %lf", &lr, &loss) == 2) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            double *l = realloc(lrs, (size_t)cap * sizeof *l);
            if (l) lrs = l;
            double *o = l ? realloc(losses, (size_t)cap * sizeof *o) : NULL;
            if (o) losses = o;
            if (!o) {
                free(lrs);
                free(losses);
                fprintf(stderr, "error: out of memory\n");
                return 2;
            }
        }
        lrs[n] = lr, losses[n++] = loss;
    }
    double suggested;
    gf_status st = gf_lr_range_suggest(lrs, losses, n, &suggested);
    free(lrs);
    free(losses);
    if (st) return fail();
    printf("%.17g\n", suggested);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--range")) return print_range(argc - 2, argv + 2);
    if (argc == 2 && !strcmp(argv[1], "--suggest")) return print_suggestion();
    return print_schedule(argc - 1, argv + 1);
}
