/* gradcheck MODEL.onnx [--eps E] [--rtol R] [--atol A]
 *
 * Checks the gradients graft builds for a model whose first output is a scalar
 * against central finite differences: for every element of every float
 * initializer x, (f(x + h) - f(x - h)) / (2h), with f evaluated by the same
 * training-form forward (batch statistics for BatchNormalization, the same Dropout
 * mask) and h the step actually representable in float32. An initializer passes
 * when max |numeric - analytic| <= atol + rtol * max |analytic|. Prints one line
 * per initializer; exits 1 on any failure. */
#include "train/gradients.h"

#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct check_args {
    const char *model;
    double eps, rtol, atol;
} check_args;

static double eval(gf_gradients *gr, int *failed)
{
    double loss = NAN;
    if (gf_gradients_run(gr, NULL, &loss, NULL)) {
        printf("FAIL running: %s\n", gf_last_error());
        *failed = 1;
    }
    return loss;
}

/* Compares one initializer's analytic gradient with central differences. */
static int check_param(gf_gradients *gr, int i, const gf_tensor *analytic, const check_args *a)
{
    gf_tensor *p = gf_gradients_param(gr, i);
    float *x = p->data;
    const float *g = analytic->data;
    int64_t n = gf_tensor_numel(p);
    if (gf_tensor_numel(analytic) != n) {
        printf("FAIL %s: gradient has %lld elements, the initializer %lld\n", gf_gradients_name(gr, i),
               (long long)gf_tensor_numel(analytic), (long long)n);
        return 0;
    }
    double worst = 0, scale = 0;
    int64_t worst_at = 0;
    int failed = 0;
    for (int64_t k = 0; k < n; k++) scale = fmax(scale, fabs(g[k]));
    for (int64_t k = 0; k < n && !failed; k++) {
        float x0 = x[k];
        float up = x0 + (float)a->eps, down = x0 - (float)a->eps;
        x[k] = up;
        double f_up = eval(gr, &failed);
        x[k] = down;
        double f_down = eval(gr, &failed);
        x[k] = x0;
        double numeric = (f_up - f_down) / ((double)up - (double)down);
        double err = fabs(numeric - g[k]);
        if (err > worst) worst = err, worst_at = k;
    }
    double bound = a->atol + a->rtol * scale;
    int ok = !failed && worst <= bound;
    printf("%s %-40s %6lld elements  max|grad| %.3e  max error %.3e (element %lld, bound %.3e)\n", ok ? "ok  " : "FAIL",
           gf_gradients_name(gr, i), (long long)n, scale, worst, (long long)worst_at, bound);
    return ok;
}

int main(int argc, char **argv)
{
    check_args a = {NULL, 1e-2, 2e-3, 1e-4};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--eps") && i + 1 < argc) a.eps = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rtol") && i + 1 < argc) a.rtol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--atol") && i + 1 < argc) a.atol = atof(argv[++i]);
        else a.model = argv[i];
    }
    if (!a.model) {
        fprintf(stderr, "usage: gradcheck MODEL.onnx [--eps E] [--rtol R] [--atol A]\n");
        return 2;
    }
    gf_model *m = NULL;
    gf_gradients *gr = NULL;
    if (gf_model_load(a.model, &m) || gf_gradients_new(m, NULL, &gr)) {
        printf("FAIL %s: %s\n", a.model, gf_last_error());
        gf_model_free(m);
        return 1;
    }
    int n = gf_gradients_count(gr), all_ok = n > 0;
    if (!n) printf("FAIL %s: the output depends on no initializer\n", a.model);
    gf_tensor **grads = calloc((size_t)n + 1, sizeof *grads);
    double loss;
    if (gf_gradients_run(gr, NULL, &loss, grads)) {
        printf("FAIL %s: %s\n", a.model, gf_last_error());
        all_ok = 0;
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        all_ok &= check_param(gr, i, grads[i], &a);
        gf_tensor_free(grads[i]);
    }
    free(grads);
    gf_gradients_free(gr);
    gf_model_free(m);
    return all_ok ? 0 : 1;
}
