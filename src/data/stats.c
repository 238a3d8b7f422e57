/* gf_dataset_stats: per-channel mean and standard deviation over every pixel of
 * every sample, summed in integers on worker threads, so the result is exact and
 * the same for any number of threads. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "data/dataset.h"
#include "data/threads.h"

typedef struct stats_part {
    const gf_dataset *d;
    int64_t first, step;        /* samples first, first + step, ... */
    uint64_t sum[3], squares[3];
    int64_t pixels;
    int64_t failed_at;          /* the sample that failed, or -1 */
    carried_error error;
} stats_part;

static void *sum_part(void *arg)
{
    stats_part *p = arg;
    int c = p->d->channels;
    for (int64_t i = p->first; i < p->d->n; i += p->step) {
        gf_sample s;
        int skipped;
        gf_status st = dataset_get_or_skip(p->d, i, &s, &skipped);
        if (st) {
            carry_error(&p->error, st);
            p->failed_at = i;
            return NULL;
        }
        if (skipped) continue;
        int64_t n = (int64_t)s.image.width * s.image.height;
        for (int64_t k = 0; k < n; k++)
            for (int ch = 0; ch < c; ch++) {
                uint64_t v = s.image.pixels[k * c + ch];
                p->sum[ch] += v;
                p->squares[ch] += v * v;
            }
        p->pixels += n;
        gf_sample_free(&s);
    }
    return NULL;
}

gf_status gf_dataset_stats(const gf_dataset *d, int num_threads, double *mean, double *std, int64_t *pixels)
{
    int n = data_threads(num_threads, d->n);
    stats_part *parts = calloc((size_t)n, sizeof *parts);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    if (!parts || !threads) {
        free(parts);
        free(threads);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    /* Part 0 runs here, as does any part whose thread does not start. */
    char *running = calloc((size_t)n, 1);
    for (int k = 0; k < n; k++) {
        parts[k] = (stats_part){.d = d, .first = k, .step = n, .failed_at = -1};
        if (k > 0 && running) running[k] = pthread_create(&threads[k], NULL, sum_part, &parts[k]) == 0;
    }
    for (int k = 0; k < n; k++)
        if (!running || !running[k]) sum_part(&parts[k]);
    for (int k = 1; k < n; k++)
        if (running && running[k]) pthread_join(threads[k], NULL);
    free(running);
    gf_status st = GF_OK;
    uint64_t sum[3] = {0}, squares[3] = {0};
    int64_t total = 0, first_failure = -1;
    for (int k = 0; k < n; k++) {
        if (parts[k].failed_at >= 0 && (first_failure < 0 || parts[k].failed_at < first_failure)) {
            first_failure = parts[k].failed_at;
            st = raise_error(&parts[k].error);
        }
        for (int ch = 0; ch < d->channels; ch++) sum[ch] += parts[k].sum[ch], squares[ch] += parts[k].squares[ch];
        total += parts[k].pixels;
    }
    free(parts);
    free(threads);
    if (st) return st;
    if (total == 0) return gf_fail(GF_ERR_INVALID, "%s: no sample could be read", gf_dataset_path(d, 0));
    for (int ch = 0; ch < d->channels; ch++) {
        double m = (double)sum[ch] / (double)total, var = (double)squares[ch] / (double)total - m * m;
        mean[ch] = m / 255.0;
        std[ch] = sqrt(var > 0 ? var : 0) / 255.0;
    }
    if (pixels) *pixels = total;
    return GF_OK;
}
