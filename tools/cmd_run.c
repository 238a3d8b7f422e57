/* graft run MODEL: tensors in, tensors out (--input), or images in, top-k
 * classes out (--image). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "runtime/error.h"

static const char run_usage[] =
    "usage: graft run MODEL --input a.pb [--input b.pb ...] --output-dir DIR [--json]\n"
    "       graft run MODEL --image FILE [--image FILE ...] [--top 5] [--labels FILE]\n"
    "                 [--resize 256] [--size 224] [--mean 0.485,0.456,0.406]\n"
    "                 [--std 0.229,0.224,0.225] [--threads T] [--device D] [--json]\n"
    "\n"
    "With --input: ONNX TensorProto files, one per graph input in the graph's order;\n"
    "the outputs go to DIR/output_0.pb, ... in graph-output order, each named after\n"
    "its graph output.\n"
    "With --image: JPEG or PNG files, resized so the shorter side is --resize,\n"
    "center-cropped to --size (the model's own height and width when it fixes them),\n"
    "normalized and run as one batch; prints the top classes of each image from the\n"
    "softmax of the first output. --labels names the classes, one per line.\n"
    "--device cpu (the default), cuda or cuda:N runs the model there.\n";

#define MAX_FILES 4096

typedef struct run_args {
    const char *model;
    const char *inputs[MAX_FILES];
    int n_inputs;
    const char *images[MAX_FILES];
    int n_images;
    const char *output_dir, *labels;
    int top, resize, size, size_given, resize_given, threads, json;
    float mean[3], std[3];
    gf_session_options device; /* its device fields */
} run_args;

static void parse_args(int argc, char **argv, run_args *a)
{
    const char *v;
    *a = (run_args){.top = 5, .resize = 256, .size = 224, .mean = {0.485f, 0.456f, 0.406f},
                    .std = {0.229f, 0.224f, 0.225f}};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(run_usage, stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--json")) a->json = 1;
        else if (cli_flag("run", argc, argv, &i, "--input", &v)) {
            if (a->n_inputs == MAX_FILES) cli_usage_error("run", "too many --input files");
            a->inputs[a->n_inputs++] = v;
        } else if (cli_flag("run", argc, argv, &i, "--image", &v)) {
            if (a->n_images == MAX_FILES) cli_usage_error("run", "too many --image files");
            a->images[a->n_images++] = v;
        } else if (cli_flag("run", argc, argv, &i, "--output-dir", &v)) a->output_dir = v;
        else if (cli_flag("run", argc, argv, &i, "--labels", &v)) a->labels = v;
        else if (cli_flag("run", argc, argv, &i, "--top", &v)) a->top = cli_int("run", "--top", v, 1, 1 << 20);
        else if (cli_flag("run", argc, argv, &i, "--threads", &v)) a->threads = cli_int("run", "--threads", v, 0, 4096);
        else if (cli_flag("run", argc, argv, &i, "--device", &v)) cli_device("run", v, &a->device);
        else if (cli_flag("run", argc, argv, &i, "--resize", &v)) {
            a->resize = cli_int("run", "--resize", v, 1, 16384);
            a->resize_given = 1;
        } else if (cli_flag("run", argc, argv, &i, "--size", &v)) {
            a->size = cli_int("run", "--size", v, 1, 16384);
            a->size_given = 1;
        } else if (cli_flag("run", argc, argv, &i, "--mean", &v)) cli_floats("run", "--mean", v, a->mean, 3);
        else if (cli_flag("run", argc, argv, &i, "--std", &v)) {
            cli_floats("run", "--std", v, a->std, 3);
            for (int c = 0; c < 3; c++)
                if (a->std[c] == 0) cli_usage_error("run", "--std must not contain 0");
        } else if (argv[i][0] == '-' && argv[i][1]) cli_usage_error("run", "unknown option '%s'", argv[i]);
        else if (a->model) cli_usage_error("run", "one model at a time ('%s' and '%s')", a->model, argv[i]);
        else a->model = argv[i];
    }
    if (!a->model) cli_usage_error("run", "which model?");
    if (!a->n_inputs == !a->n_images) cli_usage_error("run", "give either --input files or --image files");
    if (a->n_inputs && !a->output_dir) cli_usage_error("run", "--input needs --output-dir");
}

static gf_status make_dir(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return GF_OK;
        return gf_fail(GF_ERR_IO, "%s: exists and is not a directory", path);
    }
    if (mkdir(path, 0777)) return gf_fail(GF_ERR_IO, "%s: cannot create the directory", path);
    return GF_OK;
}

/* ---- --input: tensors from .pb files ---- */

static int run_tensors(gf_model *m, const run_args *a)
{
    int n_in = gf_model_num_inputs(m), n_out = gf_model_num_outputs(m);
    if (a->n_inputs != n_in) {
        fprintf(stderr, "graft: %s takes %d input%s (", a->model, n_in, n_in == 1 ? "" : "s");
        for (int i = 0; i < n_in; i++) fprintf(stderr, "%s'%s'", i ? ", " : "", gf_model_input(m, i).name);
        fprintf(stderr, "), but %d --input file%s given\n", a->n_inputs, a->n_inputs == 1 ? " was" : "s were");
        return 1;
    }
    gf_tensor **ins = calloc((size_t)n_in + 1, sizeof *ins);
    gf_tensor **outs = calloc((size_t)n_out + 1, sizeof *outs);
    gf_session *s = NULL;
    gf_session_options opt = {a->device.device, a->device.device_index, .num_threads = a->threads};
    gf_status st = ins && outs ? GF_OK : gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_in && !st; i++) {
        char *name = NULL;
        st = gf_tensor_read_pb(a->inputs[i], &ins[i], &name);
        free(name);
    }
    if (!st) st = gf_session_new(m, &opt, &s);
    if (!st) st = gf_session_run(s, (const gf_tensor *const *)ins, outs);
    if (!st) st = make_dir(a->output_dir);
    if (a->json && !st) printf("{\n  \"outputs\": [");
    for (int i = 0; i < n_out && !st; i++) {
        char path[4096], shape[128];
        snprintf(path, sizeof path, "%s/output_%d.pb", a->output_dir, i);
        const char *name = gf_model_output(m, i).name;
        st = gf_tensor_write_pb(path, outs[i], name);
        if (st) break;
        gf_shape_str(outs[i], shape, sizeof shape);
        if (a->json) {
            printf("%s\n    {\"name\": ", i ? "," : "");
            cli_json_string(stdout, name);
            printf(", \"dtype\": ");
            cli_json_string(stdout, gf_dtype_name(outs[i]->dtype));
            printf(", \"shape\": ");
            cli_json_string(stdout, shape);
            printf(", \"file\": ");
            cli_json_string(stdout, path);
            printf("}");
        } else printf("%s %s %s -> %s\n", name, gf_dtype_name(outs[i]->dtype), shape, path);
    }
    if (a->json && !st) printf("\n  ]\n}\n");
    int rc = st ? cli_fail() : 0;
    for (int i = 0; ins && i < n_in; i++) gf_tensor_free(ins[i]);
    for (int i = 0; outs && i < n_out; i++) gf_tensor_free(outs[i]);
    free(ins);
    free(outs);
    gf_session_free(s);
    return rc;
}

/* ---- --image: classification ---- */

/* Decodes, resizes, crops and normalizes one image into dst (3 x size x size). */
static gf_status prepare_image(const char *path, const run_args *a, int resize, int height, int width, float *dst)
{
    gf_image img, scaled, crop;
    gf_status st = gf_image_load(path, 3, &img);
    if (st) return st;
    st = gf_image_resize_shorter(&img, resize, &scaled);
    gf_image_free(&img);
    if (st) return st;
    st = gf_image_center_crop(&scaled, width, height, &crop);
    gf_image_free(&scaled);
    if (st) return gf_fail_context(st, "%s", path);
    gf_image_to_chw(&crop, a->mean, a->std, dst);
    gf_image_free(&crop);
    return GF_OK;
}

/* Reads one label per line; *n_labels is 0 without a file. On failure the
 * labels read so far stay in *labels for the caller to free. */
static gf_status read_labels(const char *path, char ***labels, int *n_labels)
{
    *labels = NULL;
    *n_labels = 0;
    if (!path) return GF_OK;
    FILE *f = fopen(path, "r");
    if (!f) return gf_fail(GF_ERR_IO, "%s: cannot open the labels file: %s", path, strerror(errno));
    char *line = NULL;
    size_t line_cap = 0;
    int cap = 0;
    gf_status st = GF_OK;
    while (!st && getline(&line, &line_cap, f) >= 0) {
        line[strcspn(line, "\r\n")] = 0;
        if (*n_labels == cap) {
            cap = cap ? cap * 2 : 256;
            char **grown = realloc(*labels, (size_t)cap * sizeof *grown);
            if (!grown) st = gf_fail(GF_ERR_NOMEM, "out of memory reading %s", path);
            else *labels = grown;
        }
        if (!st && !((*labels)[*n_labels] = strdup(line)))
            st = gf_fail(GF_ERR_NOMEM, "out of memory reading %s", path);
        if (!st) ++*n_labels;
    }
    free(line);
    fclose(f);
    return st;
}

/* Softmax in place over n logits, stable against large values. */
static void softmax(float *x, int64_t n)
{
    float peak = x[0], total = 0;
    for (int64_t k = 1; k < n; k++) peak = x[k] > peak ? x[k] : peak;
    for (int64_t k = 0; k < n; k++) total += x[k] = expf(x[k] - peak);
    for (int64_t k = 0; k < n; k++) x[k] /= total;
}

/* The index of the largest probability not yet taken (taken marked with -1). */
static int64_t take_best(float *p, int64_t n)
{
    int64_t best = 0;
    for (int64_t k = 1; k < n; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* [n, classes], or [n, classes, 1, 1] as a convolutional classifier leaves it. */
static int is_class_scores(const gf_tensor *t, int n)
{
    if (t->dtype != GF_FLOAT || t->rank < 2 || t->dims[0] != n || t->dims[1] < 1) return 0;
    for (int d = 2; d < t->rank; d++)
        if (t->dims[d] != 1) return 0;
    return 1;
}

static void print_top(const run_args *a, const gf_tensor *out, char **labels, int n_labels)
{
    int64_t n = out->dims[0], classes = gf_tensor_numel(out) / n;
    int top = a->top < classes ? a->top : (int)classes;
    float *probs = out->data;
    if (a->json) printf("{\n  \"images\": [");
    for (int64_t b = 0; b < n; b++) {
        float *p = probs + b * classes;
        softmax(p, classes);
        if (a->json) {
            printf("%s\n    {\"file\": ", b ? "," : "");
            cli_json_string(stdout, a->images[b]);
            printf(", \"top\": [");
        } else printf("%s%s\n", b ? "\n" : "", a->images[b]);
        for (int k = 0; k < top; k++) {
            int64_t best = take_best(p, classes);
            const char *label = best < n_labels ? labels[best] : "";
            if (a->json) {
                printf("%s{\"index\": %lld, \"prob\": %.6f, \"label\": ", k ? ", " : "", (long long)best, p[best]);
                cli_json_string(stdout, label);
                printf("}");
            } else printf("  %.4f  %5lld%s%s\n", p[best], (long long)best, *label ? "  " : "", label);
            p[best] = -1;
        }
        if (a->json) printf("]}");
    }
    if (a->json) printf("\n  ]\n}\n");
}

static int run_images(gf_model *m, const run_args *a)
{
    if (gf_model_num_inputs(m) != 1) {
        fprintf(stderr, "graft: --image needs a model with one input; %s has %d\n", a->model,
                gf_model_num_inputs(m));
        return 1;
    }
    gf_io_info io = gf_model_input(m, 0);
    int height = a->size, width = a->size, resize = a->resize;
    if (io.rank == 4 && io.dims[2] > 0 && io.dims[3] > 0) {
        height = (int)io.dims[2];
        width = (int)io.dims[3];
    }
    int crop = height > width ? height : width;
    /* Keep torchvision's 256/224 margin when the crop is not the default size. */
    if (!a->resize_given && crop != 224) resize = (int)((int64_t)crop * 256 / 224);
    if (resize < crop) resize = crop;

    int64_t dims[4] = {a->n_images, 3, height, width};
    gf_tensor *batch = NULL, *out[64] = {0};
    gf_session *s = NULL;
    char **labels = NULL;
    int n_labels = 0;
    gf_session_options opt = {a->device.device, a->device.device_index, .num_threads = a->threads};
    gf_status st = gf_model_num_outputs(m) > 64 ? gf_fail(GF_ERR_UNSUPPORTED, "too many outputs for --image")
                                                 : gf_tensor_new(&batch, GF_FLOAT, 4, dims);
    /* Images first: a bad file is the likeliest mistake, and it names itself. */
    for (int b = 0; b < a->n_images && !st; b++)
        st = prepare_image(a->images[b], a, resize, height, width, (float *)batch->data + (size_t)b * 3 * height * width);
    if (!st) st = read_labels(a->labels, &labels, &n_labels);
    if (!st) st = gf_session_new(m, &opt, &s);
    if (!st) st = gf_session_run(s, (const gf_tensor *const *)&batch, out);
    if (!st && !is_class_scores(out[0], a->n_images)) {
        char shape[128];
        gf_shape_str(out[0], shape, sizeof shape);
        st = gf_fail(GF_ERR_UNSUPPORTED, "output '%s' is %s %s, not float class scores of shape [%d, classes]",
                     gf_model_output(m, 0).name, gf_dtype_name(out[0]->dtype), shape, a->n_images);
    }
    if (!st) print_top(a, out[0], labels, n_labels);
    int rc = st ? cli_fail() : 0;
    for (int i = 0; i < gf_model_num_outputs(m) && i < 64; i++) gf_tensor_free(out[i]);
    for (int k = 0; k < n_labels; k++) free(labels[k]);
    free(labels);
    gf_tensor_free(batch);
    gf_session_free(s);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    static run_args a;
    parse_args(argc, argv, &a);
    gf_model *m = NULL;
    if (gf_model_load(a.model, &m)) return cli_fail();
    int rc = a.n_inputs ? run_tensors(m, &a) : run_images(m, &a);
    gf_model_free(m);
    return rc;
}
