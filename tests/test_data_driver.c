/* A command-line front to src/data for the Python tests (test_data_*.py), which
 * compare what it writes with Pillow, torchvision and numpy:
 *
 *   transform SPEC SEED IMAGE OUT [--grey] [--mask M.png] [--boxes B.txt]
 *       the pipeline (gf_transform_apply) on one sample: OUT.pnm, OUT.mask.pgm,
 *       OUT.boxes.txt, OUT.chw (float32, after normalize)
 *   op NAME IMAGE OUT [--grey] [--mask M.png] [--boxes B.txt] PARAMS...
 *       one step with its parameters given (src/data/augment.h): crop T L H W,
 *       resize W H, hflip, rotate DEG, affine ANGLE TX TY SCALE SHX SHY,
 *       brightness F, contrast F, saturation F, hue H
 *   dataset PATH [DATA OPTIONS]            what gf_dataset_open finds, as JSON
 *   load PATH OUTDIR [DATA OPTIONS] [LOADER OPTIONS] [--batches K] [--seek E:I]
 *       batches from a loader: OUTDIR/bK.images, bK.targets (raw), a JSON line each
 *   bench PATH [DATA OPTIONS] [LOADER OPTIONS] [--seconds S]   batches per second
 *
 * DATA OPTIONS: --format F --subset S --channels C --classes N --skip-bad
 *               --split RATIO:SEED:train|val
 * LOADER OPTIONS: --spec S --batch B --workers W --prefetch P --seed S --shuffle
 *                 --balanced --drop-last */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/augment.h"
#include "data/image.h"
#include "graft.h"

static int fail(void)
{
    fprintf(stderr, "%s\n", gf_last_error());
    return 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: test_data_driver transform|op|dataset|load|bench ... (see the source)\n");
    exit(2);
}

static int write_pnm(const char *path, const gf_image *img)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    fprintf(f, "P%d\n%d %d\n255\n", img->channels == 3 ? 6 : 5, img->width, img->height);
    fwrite(img->pixels, 1, (size_t)img->width * img->height * img->channels, f);
    return fclose(f) != 0;
}

static char *with_suffix(const char *base, const char *suffix)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s%s", base, suffix);
    return buf;
}

/* ---- one sample: transform and op ---- */

typedef struct sample_args {
    int grey;
    const char *mask, *boxes;
    int n_params;
    char **params;
} sample_args;

static void sample_options(int argc, char **argv, int from, sample_args *a)
{
    *a = (sample_args){0};
    a->params = calloc((size_t)argc, sizeof *a->params);
    for (int i = from; i < argc; i++) {
        if (!strcmp(argv[i], "--grey")) a->grey = 1;
        else if (!strcmp(argv[i], "--mask") && i + 1 < argc) a->mask = argv[++i];
        else if (!strcmp(argv[i], "--boxes") && i + 1 < argc) a->boxes = argv[++i];
        else a->params[a->n_params++] = argv[i];
    }
}

static gf_status load_sample(const char *image, const sample_args *a, gf_sample *s)
{
    *s = (gf_sample){.label = -1, .path = image};
    gf_status st = gf_image_load(image, a->grey ? 1 : 3, &s->image);
    if (!st && a->mask) st = gf_mask_load(a->mask, &s->mask);
    if (!st && a->boxes) {
        FILE *f = fopen(a->boxes, "r");
        float b[5];
        s->boxes = malloc(256 * 5 * sizeof *s->boxes);
        while (f && s->n_boxes < 256 && fscanf(f, "%f %f %f %f %f", &b[0], &b[1], &b[2], &b[3], &b[4]) == 5)
            memcpy(s->boxes + 5 * s->n_boxes++, b, sizeof b);
        if (f) fclose(f);
    }
    return st;
}

static int save_sample(const char *out, const gf_sample *s)
{
    int bad = write_pnm(with_suffix(out, ".pnm"), &s->image);
    if (s->mask.pixels) bad |= write_pnm(with_suffix(out, ".mask.pgm"), &s->mask);
    FILE *f = fopen(with_suffix(out, ".boxes.txt"), "w");
    for (int k = 0; f && k < s->n_boxes; k++) {
        const float *b = s->boxes + 5 * k;
        fprintf(f, "%.9g %.9g %.9g %.9g %.9g\n", b[0], b[1], b[2], b[3], b[4]);
    }
    if (f) fclose(f);
    return bad;
}

static int cmd_transform(int argc, char **argv)
{
    if (argc < 6) usage();
    sample_args a;
    sample_options(argc, argv, 6, &a);
    gf_transform *t;
    gf_sample s;
    if (gf_transform_parse(argv[2], &t)) return fail();
    if (load_sample(argv[4], &a, &s) || gf_transform_apply(t, strtoull(argv[3], NULL, 10), &s)) return fail();
    size_t n = (size_t)s.image.width * s.image.height * s.image.channels;
    float *chw = malloc(n * sizeof *chw);
    if (gf_transform_to_chw(t, &s.image, chw)) return fail();
    FILE *f = fopen(with_suffix(argv[5], ".chw"), "wb");
    fwrite(chw, sizeof *chw, n, f);
    fclose(f);
    int bad = save_sample(argv[5], &s);
    free(chw);
    free(a.params);
    gf_sample_free(&s);
    gf_transform_free(t);
    return bad;
}

static double param(const sample_args *a, int k)
{
    if (k >= a->n_params) usage();
    return strtod(a->params[k], NULL);
}

static int cmd_op(int argc, char **argv)
{
    if (argc < 5) usage();
    const char *op = argv[2];
    sample_args a;
    sample_options(argc, argv, 5, &a);
    gf_sample s;
    if (load_sample(argv[3], &a, &s)) return fail();
    gf_status st = GF_OK;
    double m[6];
    if (!strcmp(op, "crop")) st = aug_crop(&s, (int)param(&a, 0), (int)param(&a, 1), (int)param(&a, 2), (int)param(&a, 3));
    else if (!strcmp(op, "resize")) st = aug_resize(&s, (int)param(&a, 0), (int)param(&a, 1));
    else if (!strcmp(op, "hflip")) aug_hflip(&s);
    else if (!strcmp(op, "rotate")) {
        aug_rotation_matrix(param(&a, 0), s.image.width, s.image.height, m);
        st = aug_affine(&s, m);
    } else if (!strcmp(op, "affine")) {
        aug_affine_matrix(param(&a, 0), param(&a, 1), param(&a, 2), param(&a, 3), param(&a, 4), param(&a, 5),
                          s.image.width, s.image.height, m);
        st = aug_affine(&s, m);
    } else if (!strcmp(op, "brightness")) color_brightness(&s.image, (float)param(&a, 0));
    else if (!strcmp(op, "contrast")) color_contrast(&s.image, (float)param(&a, 0));
    else if (!strcmp(op, "saturation")) color_saturation(&s.image, (float)param(&a, 0));
    else if (!strcmp(op, "hue")) color_hue(&s.image, param(&a, 0));
    else usage();
    if (st) return fail();
    int bad = save_sample(argv[4], &s);
    gf_sample_free(&s);
    free(a.params);
    return bad;
}

/* ---- data sets and loaders ---- */

typedef struct run_args {
    gf_dataset_options data;
    const char *split;          /* RATIO:SEED:train|val */
    const char *spec, *seek;
    gf_loader_options loader;
    int batches;
    double seconds;
} run_args;

static void run_options(int argc, char **argv, int from, run_args *a)
{
    *a = (run_args){.loader = {.batch_size = 8, .num_workers = 2}, .batches = 1, .seconds = 2};
    for (int i = from; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--skip-bad")) a->data.skip_bad = 1;
        else if (!strcmp(flag, "--shuffle")) a->loader.shuffle = 1;
        else if (!strcmp(flag, "--balanced")) a->loader.balanced = 1;
        else if (!strcmp(flag, "--drop-last")) a->loader.drop_last = 1;
        else {
            if (++i >= argc) usage();
            const char *v = argv[i];
            if (!strcmp(flag, "--format")) {
                if (gf_data_format_parse(v, &a->data.format)) exit(fail());
            } else if (!strcmp(flag, "--subset")) a->data.subset = v;
            else if (!strcmp(flag, "--channels")) a->data.channels = atoi(v);
            else if (!strcmp(flag, "--classes")) a->data.n_classes = atoi(v);
            else if (!strcmp(flag, "--split")) a->split = v;
            else if (!strcmp(flag, "--spec")) a->spec = v;
            else if (!strcmp(flag, "--seek")) a->seek = v;
            else if (!strcmp(flag, "--batch")) a->loader.batch_size = atoi(v);
            else if (!strcmp(flag, "--workers")) a->loader.num_workers = atoi(v);
            else if (!strcmp(flag, "--prefetch")) a->loader.prefetch = atoi(v);
            else if (!strcmp(flag, "--seed")) a->loader.seed = strtoull(v, NULL, 10);
            else if (!strcmp(flag, "--shard")) sscanf(v, "%d:%d", &a->loader.shard, &a->loader.n_shards);
            else if (!strcmp(flag, "--pinned")) a->loader.pinned = atoi(v);
            else if (!strcmp(flag, "--batches")) a->batches = atoi(v);
            else if (!strcmp(flag, "--seconds")) a->seconds = strtod(v, NULL);
            else usage();
        }
    }
}

/* Opens the data set, and the split side asked for; *root is what to free last. */
static gf_status open_data(const char *path, const run_args *a, gf_dataset **root, gf_dataset **d, gf_dataset **other)
{
    *other = NULL;
    gf_status st = gf_dataset_open(path, &a->data, root);
    *d = *root;
    if (st || !a->split) return st;
    double ratio;
    unsigned long long seed;
    char side[16];
    if (sscanf(a->split, "%lf:%llu:%15s", &ratio, &seed, side) != 3) usage();
    gf_dataset *train, *val;
    if ((st = gf_dataset_split(*root, ratio, seed, &train, &val))) return st;
    *d = !strcmp(side, "val") ? val : train;
    *other = *d == val ? train : val;
    return GF_OK;
}

static int cmd_dataset(int argc, char **argv)
{
    if (argc < 3) usage();
    run_args a;
    run_options(argc, argv, 3, &a);
    gf_dataset *root, *d, *other;
    if (open_data(argv[2], &a, &root, &d, &other)) return fail();
    printf("{\"format\": \"%s\", \"task\": %d, \"size\": %lld, \"channels\": %d, \"classes\": %d, \"names\": [",
           gf_data_format_name(gf_dataset_format(d)), (int)gf_dataset_task(d), (long long)gf_dataset_size(d),
           gf_dataset_channels(d), gf_dataset_num_classes(d));
    for (int k = 0; k < gf_dataset_num_classes(d); k++) {
        const char *name = gf_dataset_class_name(d, k);
        printf(k ? ", " : "");
        if (name) printf("\"%s\"", name);
        else printf("null");
    }
    printf("], \"labels\": [");
    for (int64_t i = 0; i < gf_dataset_size(d); i++) printf("%s%lld", i ? ", " : "", (long long)gf_dataset_label(d, i));
    printf("], \"paths\": [");
    for (int64_t i = 0; i < gf_dataset_size(d); i++) printf("%s\"%s\"", i ? ", " : "", gf_dataset_path(d, i));
    printf("]}\n");
    gf_dataset_free(other);
    if (d != root) gf_dataset_free(d);
    gf_dataset_free(root);
    return 0;
}

static void write_tensor(const char *dir, int64_t k, const char *what, const gf_tensor *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/b%lld.%s", dir, (long long)k, what);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(t->data, 1, gf_tensor_nbytes(t), f);
        fclose(f);
    }
}

static void print_shape(const gf_tensor *t)
{
    printf("[");
    for (int d = 0; d < t->rank; d++) printf("%s%lld", d ? ", " : "", (long long)t->dims[d]);
    printf("]");
}

/* Sets up the transform and loader of a load or bench run. */
static gf_status open_loader(const char *path, const run_args *a, gf_dataset **root, gf_dataset **d,
                             gf_dataset **other, gf_transform **t, gf_loader **l)
{
    *t = NULL;
    *l = NULL;
    gf_status st = open_data(path, a, root, d, other);
    if (!st && a->spec) st = gf_transform_parse(a->spec, t);
    if (!st) st = gf_loader_new(*d, *t, &a->loader, l);
    return st;
}

static int cmd_load(int argc, char **argv)
{
    if (argc < 4) usage();
    run_args a;
    run_options(argc, argv, 4, &a);
    gf_dataset *root = NULL, *d = NULL, *other = NULL;
    gf_transform *t;
    gf_loader *l;
    if (open_loader(argv[2], &a, &root, &d, &other, &t, &l)) return fail();
    int64_t e, i;
    if (a.seek && (sscanf(a.seek, "%lld:%lld", (long long *)&e, (long long *)&i) != 2 || gf_loader_seek(l, e, i)))
        return fail();
    int rc = 0;
    for (int64_t k = 0; k < a.batches; k++) {
        gf_batch b;
        gf_loader_position(l, &e, &i);
        if (gf_loader_next(l, &b)) {
            printf("{\"k\": %lld, \"epoch\": %lld, \"index\": %lld, \"error\": \"see stderr\"}\n", (long long)k,
                   (long long)e, (long long)i);
            fprintf(stderr, "%s\n", gf_last_error());
            rc = 1;
            continue;
        }
        write_tensor(argv[3], k, "images", b.images);
        write_tensor(argv[3], k, "targets", b.targets);
        printf("{\"k\": %lld, \"epoch\": %lld, \"index\": %lld, \"position\": [%lld, %lld], \"images\": ", (long long)k,
               (long long)b.epoch, (long long)b.index, (long long)e, (long long)i);
        print_shape(b.images);
        printf(", \"targets\": ");
        print_shape(b.targets);
        printf(", \"targets_dtype\": \"%s\", \"samples\": [", gf_dtype_name(b.targets->dtype));
        for (int64_t s = 0; s < b.images->dims[0]; s++) printf("%s%lld", s ? ", " : "", (long long)b.samples[s]);
        printf("]}\n");
        gf_batch_free(&b);
    }
    printf("{\"batches_per_epoch\": %lld}\n", (long long)gf_loader_batches_per_epoch(l));
    gf_loader_free(l);
    gf_transform_free(t);
    gf_dataset_free(other);
    if (d != root) gf_dataset_free(d);
    gf_dataset_free(root);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmd_bench(int argc, char **argv)
{
    if (argc < 3) usage();
    run_args a;
    run_options(argc, argv, 3, &a);
    gf_dataset *root = NULL, *d = NULL, *other = NULL;
    gf_transform *t;
    gf_loader *l;
    if (open_loader(argv[2], &a, &root, &d, &other, &t, &l)) return fail();
    gf_batch b;
    if (gf_loader_next(l, &b)) return fail(); /* the first one waits for the workers to start */
    gf_batch_free(&b);
    int64_t n = 0;
    double start = now_s(), elapsed;
    while ((elapsed = now_s() - start) < a.seconds) {
        if (gf_loader_next(l, &b)) return fail();
        gf_batch_free(&b);
        n++;
    }
    printf("{\"batches\": %lld, \"seconds\": %.3f, \"batches_per_s\": %.1f, \"samples_per_s\": %.0f, "
           "\"batch\": %d, \"workers\": %d}\n",
           (long long)n, elapsed, n / elapsed, n * a.loader.batch_size / elapsed, a.loader.batch_size,
           a.loader.num_workers);
    gf_loader_free(l);
    gf_transform_free(t);
    gf_dataset_free(other);
    if (d != root) gf_dataset_free(d);
    gf_dataset_free(root);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    if (!strcmp(argv[1], "transform")) return cmd_transform(argc, argv);
    if (!strcmp(argv[1], "op")) return cmd_op(argc, argv);
    if (!strcmp(argv[1], "dataset")) return cmd_dataset(argc, argv);
    if (!strcmp(argv[1], "load")) return cmd_load(argc, argv);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc, argv);
    usage();
}
