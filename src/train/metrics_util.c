/* Helpers the metrics files share: see metrics_util.h. */
#include "metrics_util.h"

#include <math.h>

int gf_metrics_argmax(const float *x, int n, int64_t stride)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (x[j * stride] > x[best * stride]) best = j;
    return best;
}

int64_t gf_metrics_first_nonfinite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}
