/* Transform pipelines: the spec parsed into steps, and the steps applied with
 * their random parameters drawn as torchvision's get_params draw them (in the
 * same order, so tests/test_data_transforms.py can replay them through
 * torchvision). The steps themselves are in augment.c and color.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "data/image.h"
#include "data/pipeline.h"
#include "data/rng.h"
#include "runtime/error.h"

#define MAX_PARAMS 6
#define MAX_SIDE 65536

typedef enum step_kind {
    STEP_RESIZE,
    STEP_CENTER_CROP,
    STEP_RANDOM_RESIZED_CROP,
    STEP_RANDOM_CROP,
    STEP_HFLIP,
    STEP_ROTATE,
    STEP_AFFINE,
    STEP_COLOR_JITTER,
    STEP_GREY_TO_RGB,
    STEP_NORMALIZE,
} step_kind;

static const struct {
    const char *name;
    const char *usage;
    unsigned counts;            /* bit k: takes k parameters */
} steps_known[] = {
    [STEP_RESIZE] = {"resize", "resize:S or resize:HxW", 1u << 1},
    [STEP_CENTER_CROP] = {"center-crop", "center-crop:S or center-crop:HxW", 1u << 1},
    [STEP_RANDOM_RESIZED_CROP] = {"random-resized-crop", "random-resized-crop:S[:SMIN:SMAX[:RMIN:RMAX]]",
                                  1u << 1 | 1u << 3 | 1u << 5},
    [STEP_RANDOM_CROP] = {"random-crop", "random-crop:S[:PAD]", 1u << 1 | 1u << 2},
    [STEP_HFLIP] = {"hflip", "hflip[:P]", 1u << 0 | 1u << 1},
    [STEP_ROTATE] = {"rotate", "rotate:DEGREES", 1u << 1},
    [STEP_AFFINE] = {"affine", "affine:DEGREES[:TRANSLATE[:SMIN:SMAX[:SHEAR]]]", 1u << 1 | 1u << 2 | 1u << 4 | 1u << 5},
    [STEP_COLOR_JITTER] = {"color-jitter", "color-jitter:B:C:S[:H]", 1u << 3 | 1u << 4},
    [STEP_GREY_TO_RGB] = {"grey-to-rgb", "grey-to-rgb", 1u << 0},
    [STEP_NORMALIZE] = {"normalize", "normalize:imagenet, normalize:M:S, normalize:M1:M2:M3:S1:S2:S3 or normalize:auto",
                        1u << 1 | 1u << 2 | 1u << 6},
};
#define N_KINDS (int)(sizeof steps_known / sizeof *steps_known)

typedef struct step {
    step_kind kind;
    int n;
    double p[MAX_PARAMS];
    int height, width;          /* sizes: resize (width 0: shorter side = height), crops */
} step;

typedef enum norm_state { NORM_NONE, NORM_SET, NORM_AUTO } norm_state;

struct gf_transform {
    int n_steps;
    step *steps;
    norm_state norm;
    int norm_n;                 /* 1: every channel; 3: per channel */
    float mean[3], std[3];
};

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void gf_transform_free(gf_transform *t)
{
    if (!t) return;
    free(t->steps);
    free(t);
}

/* ---- parsing ---- */

typedef struct parse_ctx {
    const char *spec;
    const char *text;           /* the step being parsed */
    int len;
} parse_ctx;

static gf_status bad_step(const parse_ctx *c, const char *why, const char *usage)
{
    return gf_fail(GF_ERR_INVALID, "transforms '%s': step '%.*s': %s%s%s", c->spec, c->len, c->text, why,
                   usage ? "; expected " : "", usage ? usage : "");
}

static int parse_number(const char *text, size_t len, double *v)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, text, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    *v = strtod(buf, &end);
    return !errno && *end == 0 && isfinite(*v);
}

/* "S" (height = width = S, *single set) or "HxW". */
static int parse_size(const char *text, size_t len, int *height, int *width, int *single)
{
    const char *x = memchr(text, 'x', len);
    double h, w;
    *single = !x;
    if (!x) {
        if (!parse_number(text, len, &h)) return 0;
        w = h;
    } else if (!parse_number(text, (size_t)(x - text), &h) || !parse_number(x + 1, len - (size_t)(x - text) - 1, &w))
        return 0;
    if (h != floor(h) || w != floor(w) || h < 1 || w < 1 || h > MAX_SIDE || w > MAX_SIDE) return 0;
    *height = (int)h;
    *width = (int)w;
    return 1;
}

static gf_status check_ranges(const parse_ctx *c, const step *s)
{
    const char *usage = steps_known[s->kind].usage;
    const double *p = s->p;
    switch (s->kind) {
    case STEP_RANDOM_RESIZED_CROP:
        if (s->n >= 3 && !(p[1] > 0 && p[1] <= p[2])) return bad_step(c, "the scale range must be 0 < SMIN <= SMAX", usage);
        if (s->n == 5 && !(p[3] > 0 && p[3] <= p[4])) return bad_step(c, "the ratio range must be 0 < RMIN <= RMAX", usage);
        break;
    case STEP_RANDOM_CROP:
        if (s->n == 2 && !(p[1] >= 0 && p[1] == floor(p[1]) && p[1] <= MAX_SIDE))
            return bad_step(c, "the padding must be a whole number of pixels", usage);
        break;
    case STEP_HFLIP:
        if (s->n == 1 && !(p[0] >= 0 && p[0] <= 1)) return bad_step(c, "the probability must be in [0, 1]", usage);
        break;
    case STEP_ROTATE:
        if (!(p[0] >= 0)) return bad_step(c, "the degrees must not be negative", usage);
        break;
    case STEP_AFFINE:
        if (!(p[0] >= 0)) return bad_step(c, "the degrees must not be negative", usage);
        if (s->n >= 2 && !(p[1] >= 0 && p[1] <= 1)) return bad_step(c, "the translation must be in [0, 1]", usage);
        if (s->n >= 4 && !(p[2] > 0 && p[2] <= p[3])) return bad_step(c, "the scale range must be 0 < SMIN <= SMAX", usage);
        if (s->n == 5 && !(p[4] >= 0 && p[4] < 90)) return bad_step(c, "the shear must be in [0, 90) degrees", usage);
        break;
    case STEP_COLOR_JITTER:
        for (int k = 0; k < 3; k++)
            if (!(p[k] >= 0)) return bad_step(c, "brightness, contrast and saturation must not be negative", usage);
        if (s->n == 4 && !(p[3] >= 0 && p[3] <= 0.5)) return bad_step(c, "the hue must be in [0, 0.5]", usage);
        break;
    case STEP_NORMALIZE:
        for (int k = s->n / 2; k < s->n; k++)
            if (p[k] == 0) return bad_step(c, "a standard deviation of 0", usage);
        break;
    default:
        break;
    }
    return GF_OK;
}

/* The parameters in [at, end) (at is NULL when the step has none): sizes where the
 * step takes one, keywords for normalize, numbers otherwise. */
static gf_status parse_params(const parse_ctx *c, const char *at, const char *end, step *s, gf_transform *t)
{
    const char *usage = steps_known[s->kind].usage;
    s->n = 0;
    while (at) {
        const char *stop = memchr(at, ':', (size_t)(end - at));
        if (!stop) stop = end;
        size_t len = (size_t)(stop - at);
        if (len == 0) return bad_step(c, "an empty parameter", usage);
        if (s->n == MAX_PARAMS) return bad_step(c, "too many parameters", usage);
        int is_size = s->n == 0 && (s->kind == STEP_RESIZE || s->kind == STEP_CENTER_CROP ||
                                    s->kind == STEP_RANDOM_RESIZED_CROP || s->kind == STEP_RANDOM_CROP);
        int only = s->kind == STEP_NORMALIZE && s->n == 0 && stop == end;
        if (is_size) {
            int single;
            if (!parse_size(at, len, &s->height, &s->width, &single))
                return bad_step(c, "the size must be S or HxW, whole numbers from 1 to 65536", usage);
            if (s->kind == STEP_RESIZE && single) s->width = 0;
        } else if (only && len == 4 && !strncmp(at, "auto", 4)) {
            t->norm = NORM_AUTO;
            return GF_OK;
        } else if (only && len == 8 && !strncmp(at, "imagenet", 8)) {
            return gf_transform_set_normalize(t, 3, imagenet_mean, imagenet_std);
        } else if (!parse_number(at, len, &s->p[s->n])) {
            return bad_step(c, "parameters must be numbers", usage);
        }
        s->n++;
        at = stop == end ? NULL : stop + 1;
    }
    if (!(steps_known[s->kind].counts >> s->n & 1u) || (s->kind == STEP_NORMALIZE && s->n == 1))
        return bad_step(c, "the wrong number of parameters", usage);
    if (s->kind == STEP_NORMALIZE) {
        t->norm = NORM_SET;
        t->norm_n = s->n == 6 ? 3 : 1;
        for (int k = 0; k < t->norm_n; k++) {
            t->mean[k] = (float)s->p[k];
            t->std[k] = (float)s->p[k + t->norm_n];
        }
    }
    return check_ranges(c, s);
}

gf_status gf_transform_parse(const char *spec, gf_transform **out)
{
    *out = NULL;
    gf_transform *t = calloc(1, sizeof *t);
    size_t cap = 1;
    for (const char *p = spec; *p; p++) cap += *p == ',';
    if (!t || !(t->steps = calloc(cap, sizeof *t->steps))) {
        free(t);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    gf_status st = GF_OK;
    const char *at = spec;
    while (!st && *at) {
        const char *end = strchr(at, ',');
        if (!end) end = at + strlen(at);
        parse_ctx c = {spec, at, (int)(end - at)};
        const char *colon = memchr(at, ':', (size_t)(end - at));
        size_t name_len = (size_t)((colon ? colon : end) - at);
        int kind = -1;
        for (int k = 0; k < N_KINDS && kind < 0; k++)
            if (strlen(steps_known[k].name) == name_len && !strncmp(at, steps_known[k].name, name_len)) kind = k;
        if (name_len == 11 && !strncmp(at, "gray-to-rgb", 11)) kind = STEP_GREY_TO_RGB;
        if (kind < 0)
            st = bad_step(&c, "unknown step", "resize, center-crop, random-resized-crop, random-crop, hflip, rotate, "
                                             "affine, color-jitter, grey-to-rgb or normalize");
        else if (t->norm != NORM_NONE)
            st = bad_step(&c, "normalize must be the last step", NULL);
        else {
            step *s = &t->steps[t->n_steps++];
            s->kind = (step_kind)kind;
            st = parse_params(&c, colon ? colon + 1 : NULL, end, s, t);
        }
        at = *end ? end + 1 : end;
        if (!st && *end && !*at) st = gf_fail(GF_ERR_INVALID, "transforms '%s': a comma with no step after it", spec);
    }
    if (st) {
        gf_transform_free(t);
        return st;
    }
    *out = t;
    return GF_OK;
}

int gf_transform_wants_stats(const gf_transform *t) { return t && t->norm == NORM_AUTO; }

gf_status gf_transform_set_normalize(gf_transform *t, int n, const float *mean, const float *std)
{
    if (n != 1 && n != 3) return gf_fail(GF_ERR_INVALID, "normalize takes 1 or 3 means and stds, not %d", n);
    for (int k = 0; k < n; k++)
        if (!(std[k] != 0) || !isfinite(mean[k]) || !isfinite(std[k]))
            return gf_fail(GF_ERR_INVALID, "normalize: mean %g, std %g is not usable", mean[k], std[k]);
    t->norm = NORM_SET;
    t->norm_n = n;
    memcpy(t->mean, mean, (size_t)n * sizeof *mean);
    memcpy(t->std, std, (size_t)n * sizeof *std);
    return GF_OK;
}

gf_status transform_norm(const gf_transform *t, int n_auto, const float *auto_mean, const float *auto_std,
                         int channels, float mean[3], float std[3])
{
    int n = 1;
    const float zero = 0.0f, one = 1.0f, *m = &zero, *s = &one;
    if (t && t->norm == NORM_SET) n = t->norm_n, m = t->mean, s = t->std;
    else if (t && t->norm == NORM_AUTO) {
        if (!auto_mean)
            return gf_fail(GF_ERR_INVALID, "normalize:auto has no values yet: set them (gf_transform_set_normalize) "
                                           "from the data set's statistics ('graft stats')");
        n = n_auto, m = auto_mean, s = auto_std;
    }
    if (n != 1 && n != channels)
        return gf_fail(GF_ERR_SHAPE, "normalize has %d means and stds but the images have %d channel%s", n, channels,
                       channels == 1 ? " (add grey-to-rgb, or give one mean and std)" : "s");
    for (int k = 0; k < channels; k++) {
        mean[k] = m[n == 1 ? 0 : k];
        std[k] = s[n == 1 ? 0 : k];
    }
    return GF_OK;
}

gf_status gf_transform_to_chw(const gf_transform *t, const gf_image *img, float *dst)
{
    float mean[3], std[3];
    gf_status st = transform_norm(t, 0, NULL, NULL, img->channels, mean, std);
    if (!st) gf_image_to_chw(img, mean, std, dst);
    return st;
}

/* ---- applying ---- */

/* torchvision's RandomResizedCrop.get_params: box = top, left, height, width. */
static void rrc_params(gf_rng *rng, int width, int height, const double scale[2], const double ratio[2], int box[4])
{
    double area = (double)height * width, lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int k = 0; k < 10; k++) {
        double target = area * rng_range(rng, scale[0], scale[1]);
        double aspect = exp(rng_range(rng, lr0, lr1));
        double w = nearbyint(sqrt(target * aspect)), h = nearbyint(sqrt(target / aspect)); /* round half to even */
        if (0 < w && w <= width && 0 < h && h <= height) {
            box[0] = (int)rng_below(rng, height - (int)h + 1);
            box[1] = (int)rng_below(rng, width - (int)w + 1);
            box[2] = (int)h;
            box[3] = (int)w;
            return;
        }
    }
    /* The central crop, at the nearer end of the ratio range. */
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < ratio[0]) h = (int)nearbyint(width / ratio[0]);
    else if (in_ratio > ratio[1]) w = (int)nearbyint(height * ratio[1]);
    box[0] = (height - h) / 2;
    box[1] = (width - w) / 2;
    box[2] = h;
    box[3] = w;
}

/* torchvision's CenterCrop offset along one axis, padding included when size < crop. */
static int center_offset(int size, int crop) { return crop > size ? -((crop - size) / 2) : (int)nearbyint((size - crop) / 2.0); }

static gf_status random_crop(const step *s, gf_rng *rng, gf_sample *x)
{
    int pad = s->n == 2 ? (int)s->p[1] : 0, h = x->image.height + 2 * pad, w = x->image.width + 2 * pad;
    if (h < s->height || w < s->width)
        return gf_fail(GF_ERR_SHAPE, "random-crop of %dx%d from an image of %dx%d (%dx%d padded); resize first",
                       s->height, s->width, x->image.height, x->image.width, h, w);
    int top = 0, left = 0;
    if (h != s->height || w != s->width) {
        top = (int)rng_below(rng, h - s->height + 1);
        left = (int)rng_below(rng, w - s->width + 1);
    }
    return aug_crop(x, top - pad, left - pad, s->height, s->width);
}

static gf_status random_affine(const step *s, gf_rng *rng, gf_sample *x)
{
    int w = x->image.width, h = x->image.height;
    double angle = rng_range(rng, -s->p[0], s->p[0]), tx = 0, ty = 0, scale = 1, shear = 0;
    if (s->n >= 2 && s->p[1] > 0) {
        double max_dx = s->p[1] * w, max_dy = s->p[1] * h;
        tx = nearbyint(rng_range(rng, -max_dx, max_dx));
        ty = nearbyint(rng_range(rng, -max_dy, max_dy));
    }
    if (s->n >= 4) scale = rng_range(rng, s->p[2], s->p[3]);
    if (s->n == 5 && s->p[4] > 0) shear = rng_range(rng, -s->p[4], s->p[4]);
    double m[6];
    aug_affine_matrix(angle, tx, ty, scale, shear, 0.0, w, h, m);
    return aug_affine(x, m);
}

/* ColorJitter: a random order of the four, then the factors of those asked for. */
static void color_jitter(const step *s, gf_rng *rng, gf_image *img)
{
    int order[4] = {0, 1, 2, 3};
    for (int k = 3; k > 0; k--) {
        int j = (int)rng_below(rng, k + 1), t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    double f[4] = {1, 1, 1, 0};
    for (int k = 0; k < 3; k++)
        if (s->p[k] > 0) f[k] = rng_range(rng, fmax(0.0, 1 - s->p[k]), 1 + s->p[k]);
    if (s->n == 4 && s->p[3] > 0) f[3] = rng_range(rng, -s->p[3], s->p[3]);
    for (int k = 0; k < 4; k++) {
        int which = order[k];
        if (which == 3 ? !(s->n == 4 && s->p[3] > 0) : !(s->p[which] > 0)) continue;
        if (which == 0) color_brightness(img, (float)f[0]);
        else if (which == 1) color_contrast(img, (float)f[1]);
        else if (which == 2) color_saturation(img, (float)f[2]);
        else color_hue(img, f[3]);
    }
}

static gf_status apply_step(const step *s, gf_rng *rng, gf_sample *x)
{
    int w = x->image.width, h = x->image.height;
    switch (s->kind) {
    case STEP_RESIZE: {
        int nw = s->width, nh = s->height;
        if (!s->width) gf_shorter_side_size(w, h, s->height, &nw, &nh);
        return aug_resize(x, nw, nh);
    }
    case STEP_CENTER_CROP:
        return aug_crop(x, center_offset(h, s->height), center_offset(w, s->width), s->height, s->width);
    case STEP_RANDOM_RESIZED_CROP: {
        const double scale[2] = {s->n >= 3 ? s->p[1] : 0.08, s->n >= 3 ? s->p[2] : 1.0};
        const double ratio[2] = {s->n == 5 ? s->p[3] : 3.0 / 4.0, s->n == 5 ? s->p[4] : 4.0 / 3.0};
        int box[4];
        rrc_params(rng, w, h, scale, ratio, box);
        gf_status st = aug_crop(x, box[0], box[1], box[2], box[3]);
        return st ? st : aug_resize(x, s->width, s->height);
    }
    case STEP_RANDOM_CROP:
        return random_crop(s, rng, x);
    case STEP_HFLIP:
        if (rng_uniform(rng) < (s->n ? s->p[0] : 0.5)) aug_hflip(x);
        return GF_OK;
    case STEP_ROTATE: {
        double m[6];
        aug_rotation_matrix(rng_range(rng, -s->p[0], s->p[0]), w, h, m);
        return aug_affine(x, m);
    }
    case STEP_AFFINE:
        return random_affine(s, rng, x);
    case STEP_COLOR_JITTER:
        color_jitter(s, rng, &x->image);
        return GF_OK;
    case STEP_GREY_TO_RGB:
        return color_grey_to_rgb(&x->image);
    case STEP_NORMALIZE:
        return GF_OK; /* when converting to floats */
    }
    return GF_OK;
}

gf_status gf_transform_apply(const gf_transform *t, uint64_t seed, gf_sample *s)
{
    if (!t) return GF_OK;
    gf_rng rng = {seed};
    for (int k = 0; k < t->n_steps; k++) {
        gf_status st = apply_step(&t->steps[k], &rng, s);
        if (st) return st;
    }
    return GF_OK;
}
