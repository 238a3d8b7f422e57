/* Detection ops: NonMaxSuppression (opset 10+) and RoiAlign (opset 10, 16).
 *
 * Both follow onnxruntime's CPU kernels step for step (the ONNX reference for
 * RoiAlign is a port of the same code), in float32, so that boxes exactly at
 * a threshold and samples exactly on a pixel land where theirs do. */
#include "op.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- NonMaxSuppression ----
 *
 * For each batch and class, boxes whose score passes score_threshold (strictly
 * greater; every box when there is no threshold) are visited from the highest
 * score down, ties by lower box index; a box is kept unless its IoU with a box
 * already kept exceeds iou_threshold, until max_output_boxes_per_class are
 * kept. The output lists [batch, class, box] triples, batch-major, then class,
 * then in the order kept. Boxes are [y1, x1, y2, x2] with either pair of
 * opposite corners (center_point_box 0), or [x_center, y_center, w, h] (1).
 * Boxes with a NaN score are never kept: they have no place in the order. */

typedef struct nms_params {
    int center_point_box;
    int64_t max_per_class;
    float iou_threshold;
    int has_score_threshold;
    float score_threshold;
} nms_params;

static gf_status nms_check(const gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 2, 5);
    if (st) return st;
    const gf_tensor *boxes = ctx->inputs[0], *scores = ctx->inputs[1];
    char bs[128], ss[128];
    if (boxes->dtype != GF_FLOAT || scores->dtype != GF_FLOAT)
        return gf_fail(GF_ERR_UNSUPPORTED, "boxes and scores must be float, are %s and %s",
                       gf_dtype_name(boxes->dtype), gf_dtype_name(scores->dtype));
    if (boxes->rank != 3 || boxes->dims[2] != 4)
        return gf_fail(GF_ERR_SHAPE, "boxes %s must be [batches, boxes, 4]", gf_shape_str(boxes, bs, sizeof bs));
    if (scores->rank != 3 || scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return gf_fail(GF_ERR_SHAPE, "scores %s must be [batches, classes, boxes] for boxes %s",
                       gf_shape_str(scores, ss, sizeof ss), gf_shape_str(boxes, bs, sizeof bs));
    int64_t cpb = gf_attr_int(ctx->node, "center_point_box", 0);
    if (cpb != 0 && cpb != 1)
        return gf_fail(GF_ERR_INVALID, "center_point_box is %lld; expected 0 or 1", (long long)cpb);
    static const char *const names[] = {NULL, NULL, "max_output_boxes_per_class", "iou_threshold", "score_threshold"};
    for (int i = 2; i < ctx->n_inputs; i++) {
        const gf_tensor *t = ctx->inputs[i];
        if (!t) continue;
        gf_dtype want = i == 2 ? GF_INT64 : GF_FLOAT;
        if (t->dtype != want || gf_tensor_numel(t) != 1 || t->rank > 1)
            return gf_fail(GF_ERR_INVALID, "%s must be one %s value", names[i], gf_dtype_name(want));
    }
    return GF_OK;
}

static const gf_tensor *optional_input(const gf_op_ctx *ctx, int i) { return ctx->n_inputs > i ? ctx->inputs[i] : NULL; }

static gf_status nms_read_params(const gf_op_ctx *ctx, nms_params *p)
{
    const gf_tensor *max_out = optional_input(ctx, 2), *iou = optional_input(ctx, 3), *score = optional_input(ctx, 4);
    p->center_point_box = (int)gf_attr_int(ctx->node, "center_point_box", 0);
    p->max_per_class = max_out ? *(const int64_t *)max_out->data : 0;
    if (p->max_per_class < 0) p->max_per_class = 0;
    p->iou_threshold = iou ? *(const float *)iou->data : 0.0f;
    p->has_score_threshold = score != NULL;
    p->score_threshold = score ? *(const float *)score->data : 0.0f;
    if (!(p->iou_threshold >= 0.0f && p->iou_threshold <= 1.0f))
        return gf_fail(GF_ERR_INVALID, "iou_threshold is %g; it must lie in [0, 1]", p->iou_threshold);
    return GF_OK;
}

static gf_status nms_infer(gf_op_ctx *ctx)
{
    gf_status st = nms_check(ctx);
    if (st) return st;
    gf_set_dynamic(ctx->outputs[0], GF_INT64);
    return GF_OK;
}

/* A box as its x and y extents, smaller coordinate first. */
typedef struct nms_box {
    float x_min, x_max, y_min, y_max;
} nms_box;

static nms_box box_extents(const float *b, int center_point_box)
{
    nms_box r;
    if (center_point_box) {
        float half_w = b[2] / 2, half_h = b[3] / 2;
        r.x_min = b[0] - half_w, r.x_max = b[0] + half_w;
        r.y_min = b[1] - half_h, r.y_max = b[1] + half_h;
    } else {
        r.y_min = fminf(b[0], b[2]), r.y_max = fmaxf(b[0], b[2]);
        r.x_min = fminf(b[1], b[3]), r.x_max = fmaxf(b[1], b[3]);
    }
    return r;
}

/* Whether IoU(a, b) > threshold; boxes that do not overlap, or have no area, never suppress. */
static int iou_exceeds(const nms_box *a, const nms_box *b, float threshold)
{
    float ix_min = fmaxf(a->x_min, b->x_min), ix_max = fminf(a->x_max, b->x_max);
    float iy_min = fmaxf(a->y_min, b->y_min), iy_max = fminf(a->y_max, b->y_max);
    if (ix_max <= ix_min || iy_max <= iy_min) return 0;
    float inter = (ix_max - ix_min) * (iy_max - iy_min);
    float area_a = (a->x_max - a->x_min) * (a->y_max - a->y_min);
    float area_b = (b->x_max - b->x_min) * (b->y_max - b->y_min);
    float uni = area_a + area_b - inter;
    if (inter <= 0 || area_a <= 0 || area_b <= 0 || uni <= 0) return 0;
    return inter / uni > threshold;
}

typedef struct nms_candidate {
    float score;
    int64_t index;
} nms_candidate;

static int by_score_then_index(const void *pa, const void *pb)
{
    const nms_candidate *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Selects the boxes of one (batch, class); appends their indices to kept. */
static int64_t nms_one_class(const nms_params *p, const nms_box *boxes, const float *scores, int64_t n_boxes,
                             nms_candidate *candidates, int64_t *kept)
{
    int64_t n = 0, n_kept = 0;
    for (int64_t i = 0; i < n_boxes; i++) {
        if (isnan(scores[i]) || (p->has_score_threshold && !(scores[i] > p->score_threshold))) continue;
        candidates[n].score = scores[i];
        candidates[n].index = i;
        n++;
    }
    qsort(candidates, (size_t)n, sizeof *candidates, by_score_then_index);
    for (int64_t c = 0; c < n && n_kept < p->max_per_class; c++) {
        const nms_box *box = &boxes[candidates[c].index];
        int suppressed = 0;
        for (int64_t k = 0; k < n_kept && !suppressed; k++)
            suppressed = iou_exceeds(box, &boxes[kept[k]], p->iou_threshold);
        if (!suppressed) kept[n_kept++] = candidates[c].index;
    }
    return n_kept;
}

static gf_status nms_cpu(gf_op_ctx *ctx)
{
    nms_params p;
    gf_status st = nms_read_params(ctx, &p);
    if (st) return st;
    const gf_tensor *boxes_t = ctx->inputs[0], *scores_t = ctx->inputs[1];
    int64_t n_batches = boxes_t->dims[0], n_boxes = boxes_t->dims[1], n_classes = scores_t->dims[1];
    int64_t per_class = p.max_per_class < n_boxes ? p.max_per_class : n_boxes;

    nms_box *boxes = malloc((size_t)(n_boxes ? n_boxes : 1) * sizeof *boxes);
    nms_candidate *candidates = malloc((size_t)(n_boxes ? n_boxes : 1) * sizeof *candidates);
    int64_t *kept = malloc((size_t)(per_class ? per_class : 1) * sizeof *kept);
    /* [batch, class, box] triples; at most per_class for each (batch, class). */
    int64_t capacity = n_batches * n_classes * per_class, n_selected = 0;
    int64_t *selected = malloc((size_t)(capacity ? capacity : 1) * 3 * sizeof *selected);
    if (!boxes || !candidates || !kept || !selected) {
        st = gf_fail(GF_ERR_NOMEM, "out of memory for %lld boxes", (long long)n_boxes);
        goto done;
    }
    for (int64_t b = 0; b < n_batches; b++) {
        const float *batch_boxes = (const float *)boxes_t->data + b * n_boxes * 4;
        for (int64_t i = 0; i < n_boxes; i++) boxes[i] = box_extents(batch_boxes + i * 4, p.center_point_box);
        for (int64_t c = 0; c < n_classes; c++) {
            const float *scores = (const float *)scores_t->data + (b * n_classes + c) * n_boxes;
            int64_t n_kept = nms_one_class(&p, boxes, scores, n_boxes, candidates, kept);
            for (int64_t k = 0; k < n_kept; k++, n_selected++) {
                selected[n_selected * 3] = b;
                selected[n_selected * 3 + 1] = c;
                selected[n_selected * 3 + 2] = kept[k];
            }
        }
    }
    int64_t dims[2] = {n_selected, 3};
    if (!(st = gf_op_output(ctx, 0, GF_INT64, 2, dims)) && ctx->outputs[0])
        memcpy(ctx->outputs[0]->data, selected, (size_t)n_selected * 3 * sizeof *selected);
done:
    free(boxes);
    free(candidates);
    free(kept);
    free(selected);
    return st;
}

/* ---- RoiAlign ----
 *
 * Each roi [x1, y1, x2, y2] (scaled by spatial_scale, shifted by half a pixel
 * in half_pixel mode) is cut into output_height x output_width bins; each bin
 * samples a grid of sampling_ratio^2 points (or ceil(roi size / output size)
 * per axis when sampling_ratio is 0), each point bilinearly interpolated from
 * its four neighbours. "avg" averages a bin's samples. "max" follows the ONNX
 * reference and onnxruntime: the maximum, over samples, of the largest of the
 * four weighted neighbours w_i * v_i (not of the interpolated values; the spec
 * text reads otherwise, but this is what the reference computes). Before
 * opset 16 the coordinates are output_half_pixel, which also stretches rois
 * smaller than one pixel to one pixel. */

typedef struct roi_params {
    int max_mode, half_pixel;
    int64_t out_h, out_w, sampling_ratio;
    float spatial_scale;
} roi_params;

static gf_status roi_read_params(const gf_op_ctx *ctx, roi_params *p)
{
    const char *mode = gf_attr_string(ctx->node, "mode", "avg");
    if (strcmp(mode, "avg") && strcmp(mode, "max"))
        return gf_fail(GF_ERR_INVALID, "mode is '%s'; expected avg or max", mode);
    p->max_mode = !strcmp(mode, "max");
    const char *ctm = ctx->node->opset >= 16
        ? gf_attr_string(ctx->node, "coordinate_transformation_mode", "half_pixel") : "output_half_pixel";
    if (strcmp(ctm, "half_pixel") && strcmp(ctm, "output_half_pixel"))
        return gf_fail(GF_ERR_INVALID, "coordinate_transformation_mode is '%s'; expected half_pixel or output_half_pixel", ctm);
    p->half_pixel = !strcmp(ctm, "half_pixel");
    p->out_h = gf_attr_int(ctx->node, "output_height", 1);
    p->out_w = gf_attr_int(ctx->node, "output_width", 1);
    p->sampling_ratio = gf_attr_int(ctx->node, "sampling_ratio", 0);
    p->spatial_scale = gf_attr_float(ctx->node, "spatial_scale", 1.0f);
    if (p->out_h < 1 || p->out_w < 1 || p->out_h > INT32_MAX || p->out_w > INT32_MAX)
        return gf_fail(GF_ERR_INVALID, "output size %lldx%lld is invalid", (long long)p->out_h, (long long)p->out_w);
    if (p->sampling_ratio < 0 || p->sampling_ratio > 65536)
        return gf_fail(GF_ERR_INVALID, "sampling_ratio %lld is out of range", (long long)p->sampling_ratio);
    return GF_OK;
}

static gf_status roi_infer(gf_op_ctx *ctx)
{
    gf_status st = gf_check_inputs(ctx, 3, 3);
    roi_params p;
    if (st || (st = roi_read_params(ctx, &p))) return st;
    const gf_tensor *x = ctx->inputs[0], *rois = ctx->inputs[1], *idx = ctx->inputs[2];
    char xs[128], rs[128];
    if (x->dtype != GF_FLOAT || rois->dtype != GF_FLOAT)
        return gf_fail(GF_ERR_UNSUPPORTED, "X and rois must be float, are %s and %s",
                       gf_dtype_name(x->dtype), gf_dtype_name(rois->dtype));
    if (x->rank != 4) return gf_fail(GF_ERR_SHAPE, "X %s must be [N, C, H, W]", gf_shape_str(x, xs, sizeof xs));
    if (rois->rank != 2 || rois->dims[1] != 4)
        return gf_fail(GF_ERR_SHAPE, "rois %s must be [num_rois, 4]", gf_shape_str(rois, rs, sizeof rs));
    if (idx->dtype != GF_INT64 || idx->rank != 1 || idx->dims[0] != rois->dims[0])
        return gf_fail(GF_ERR_SHAPE, "batch_indices must be int64 [%lld], one per roi", (long long)rois->dims[0]);
    int64_t dims[4] = {rois->dims[0], x->dims[1], p.out_h, p.out_w};
    if (dims[0] * dims[1] > INT64_MAX / p.out_h / p.out_w)
        return gf_fail(GF_ERR_NOMEM, "the output would be absurdly large");
    gf_set_shape(ctx->outputs[0], GF_FLOAT, 4, dims);
    return GF_OK;
}

/* One sample point: its four neighbours in the H x W plane and their weights. */
typedef struct roi_sample {
    int64_t pos[4];
    float w[4];
} roi_sample;

static roi_sample bilinear_sample(float y, float x, int64_t height, int64_t width)
{
    roi_sample s = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    if (y < -1.0f || y > (float)height || x < -1.0f || x > (float)width) return s;   /* outside: contributes 0 */
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    int64_t y_low = (int64_t)y, x_low = (int64_t)x, y_high, x_high;
    if (y_low >= height - 1) y_high = y_low = height - 1, y = (float)y_low;
    else y_high = y_low + 1;
    if (x_low >= width - 1) x_high = x_low = width - 1, x = (float)x_low;
    else x_high = x_low + 1;
    float ly = y - (float)y_low, lx = x - (float)x_low, hy = 1.0f - ly, hx = 1.0f - lx;
    s.pos[0] = y_low * width + x_low, s.w[0] = hy * hx;
    s.pos[1] = y_low * width + x_high, s.w[1] = hy * lx;
    s.pos[2] = y_high * width + x_low, s.w[2] = ly * hx;
    s.pos[3] = y_high * width + x_high, s.w[3] = ly * lx;
    return s;
}

/* The geometry of one roi: where it starts, its bin size and sampling grid. */
typedef struct roi_grid {
    float start_y, start_x, bin_h, bin_w;
    int64_t grid_h, grid_w;
} roi_grid;

static gf_status roi_grid_of(const roi_params *p, const float *roi, int64_t r, roi_grid *g)
{
    float offset = p->half_pixel ? 0.5f : 0.0f;
    float start_x = roi[0] * p->spatial_scale - offset, start_y = roi[1] * p->spatial_scale - offset;
    float end_x = roi[2] * p->spatial_scale - offset, end_y = roi[3] * p->spatial_scale - offset;
    float roi_w = end_x - start_x, roi_h = end_y - start_y;
    if (!p->half_pixel) roi_w = fmaxf(roi_w, 1.0f), roi_h = fmaxf(roi_h, 1.0f);
    g->start_y = start_y, g->start_x = start_x;
    g->bin_h = roi_h / (float)p->out_h, g->bin_w = roi_w / (float)p->out_w;
    float grid_h = p->sampling_ratio > 0 ? (float)p->sampling_ratio : ceilf(roi_h / (float)p->out_h);
    float grid_w = p->sampling_ratio > 0 ? (float)p->sampling_ratio : ceilf(roi_w / (float)p->out_w);
    /* Refuse rois that are not finite or would need an absurd number of samples. */
    if (!(isfinite(start_x) && isfinite(start_y) && isfinite(roi_w) && isfinite(roi_h) && grid_h <= 65536 &&
          grid_w <= 65536))
        return gf_fail(GF_ERR_INVALID, "roi %lld [%g, %g, %g, %g] is not finite or too large to sample",
                       (long long)r, roi[0], roi[1], roi[2], roi[3]);
    g->grid_h = grid_h > 0 ? (int64_t)grid_h : 0;
    g->grid_w = grid_w > 0 ? (int64_t)grid_w : 0;
    return GF_OK;
}

/* Pools bin (ph, pw) of roi grid g over one H x W channel plane. */
static float roi_pool_bin(const roi_params *p, const roi_grid *g, const float *plane, int64_t height,
                          int64_t width, int64_t ph, int64_t pw)
{
    int64_t count = g->grid_h * g->grid_w > 1 ? g->grid_h * g->grid_w : 1;
    float acc = 0;
    int first = 1;
    for (int64_t iy = 0; iy < g->grid_h; iy++) {
        float y = g->start_y + (float)ph * g->bin_h + ((float)iy + 0.5f) * g->bin_h / (float)g->grid_h;
        for (int64_t ix = 0; ix < g->grid_w; ix++) {
            float x = g->start_x + (float)pw * g->bin_w + ((float)ix + 0.5f) * g->bin_w / (float)g->grid_w;
            roi_sample s = bilinear_sample(y, x, height, width);
            if (!p->max_mode) {
                acc += s.w[0] * plane[s.pos[0]] + s.w[1] * plane[s.pos[1]] + s.w[2] * plane[s.pos[2]] +
                       s.w[3] * plane[s.pos[3]];
                continue;
            }
            float v = fmaxf(fmaxf(fmaxf(s.w[0] * plane[s.pos[0]], s.w[1] * plane[s.pos[1]]),
                                  s.w[2] * plane[s.pos[2]]), s.w[3] * plane[s.pos[3]]);
            acc = first ? v : fmaxf(acc, v);
            first = 0;
        }
    }
    return p->max_mode ? acc : acc / (float)count;
}

static gf_status roi_cpu(gf_op_ctx *ctx)
{
    roi_params p;
    gf_status st = roi_read_params(ctx, &p);
    if (st) return st;
    const gf_tensor *x = ctx->inputs[0], *rois = ctx->inputs[1], *idx = ctx->inputs[2];
    int64_t n_rois = rois->dims[0], channels = x->dims[1], height = x->dims[2], width = x->dims[3];
    roi_grid *grids = malloc((size_t)(n_rois ? n_rois : 1) * sizeof *grids);
    if (!grids) return gf_fail(GF_ERR_NOMEM, "out of memory for %lld rois", (long long)n_rois);
    for (int64_t r = 0; r < n_rois && !st; r++) {
        int64_t b = ((const int64_t *)idx->data)[r];
        if (b < 0 || b >= x->dims[0])
            st = gf_fail(GF_ERR_INVALID, "batch_indices[%lld] = %lld is outside [0, %lld)", (long long)r,
                         (long long)b, (long long)x->dims[0]);
        else
            st = roi_grid_of(&p, (const float *)rois->data + r * 4, r, &grids[r]);
    }
    if (!st && height > 0 && width > 0) {
        float *y = ctx->outputs[0]->data;
        int64_t planes = n_rois * channels;
        #pragma omp parallel for schedule(dynamic) if (planes > 1)
        for (int64_t rc = 0; rc < planes; rc++) {
            int64_t r = rc / channels, c = rc % channels, b = ((const int64_t *)idx->data)[r];
            const float *plane = (const float *)x->data + (b * channels + c) * height * width;
            for (int64_t ph = 0; ph < p.out_h; ph++)
                for (int64_t pw = 0; pw < p.out_w; pw++)
                    y[(rc * p.out_h + ph) * p.out_w + pw] = roi_pool_bin(&p, &grids[r], plane, height, width, ph, pw);
        }
    } else if (!st) {
        memset(ctx->outputs[0]->data, 0, gf_tensor_nbytes(ctx->outputs[0]));   /* an empty map: every sample is 0 */
    }
    free(grids);
    return st;
}

const gf_op gf_ops_detection[] = {
    {"", "NonMaxSuppression", 10, 0, nms_infer, nms_cpu},
    {"", "RoiAlign", 10, 0, roi_infer, roi_cpu},
    {0},
};
