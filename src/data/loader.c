/* The batch loader: worker threads claim batch numbers in order, decode and
 * transform their samples and put the finished batch in a ring of `depth` slots;
 * the consumer takes them in order, and a worker never runs more than `depth`
 * batches ahead of it. What a batch holds depends only on (seed, epoch, place):
 * each epoch's order comes from (seed, epoch) and each sample's transform seed
 * from (seed, epoch, place in the epoch), so threads and timing change nothing.
 * A shard (data parallel) takes every n_shards-th batch of the same epoch order.
 * Seeking bumps a generation number; batches of an older one are dropped. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/host_pool.h"
#include "data/pipeline.h"
#include "data/rng.h"
#include "data/threads.h"

/* Streams of random numbers besides the samples' own (seed, epoch, place). */
#define ORDER_STREAM 0x6f72646572ull   /* "order" */

typedef struct slot {
    int64_t number;             /* the batch it holds, numbered across epochs */
    int ready;
    carried_error error;
    gf_batch batch;
} slot;

typedef struct epoch_order {
    int64_t epoch;              /* -1: empty */
    int64_t *order;
} epoch_order;

struct gf_loader {
    const gf_dataset *data;
    const gf_transform *transform;
    gf_loader_options opt;
    int n_auto;                 /* normalize:auto's values, computed here when the transform left them unset */
    float auto_mean[3], auto_std[3];
    int64_t per_epoch;
    /* Balanced sampling: the samples of each class (CSR), and the classes that have any. */
    int64_t *class_start, *class_members;
    int *classes_present, n_present;

    pthread_mutex_t lock;
    pthread_cond_t work, done;
    int stop;
    uint64_t generation;
    int64_t next_claim, next_take;
    int depth;
    slot *slots;
    epoch_order orders[2];
    int n_threads;
    pthread_t *threads;
    gf_host_pool *pool;         /* opt.pinned: the batches' page-locked memory */
};

/* ---- the data order ---- */

static gf_status make_order(const gf_loader *l, int64_t epoch, int64_t *order)
{
    int64_t n = l->data->n;
    gf_rng rng = rng_seeded(l->opt.seed, (uint64_t)epoch, ORDER_STREAM);
    if (l->opt.balanced) {
        /* Weights inverse to class frequency make every class equally likely: a
         * class uniformly, then one of its samples uniformly. */
        for (int64_t k = 0; k < n; k++) {
            int c = l->classes_present[rng_below(&rng, l->n_present)];
            int64_t size = l->class_start[c + 1] - l->class_start[c];
            order[k] = l->class_members[l->class_start[c] + rng_below(&rng, size)];
        }
        return GF_OK;
    }
    for (int64_t k = 0; k < n; k++) order[k] = k;
    for (int64_t k = n - 1; k > 0; k--) { /* Fisher-Yates */
        int64_t j = rng_below(&rng, k + 1), t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    return GF_OK;
}

/* The place in its epoch's order of this shard's batch `index`. */
static int64_t epoch_batch(const gf_loader *l, int64_t index)
{
    return l->opt.n_shards > 1 ? index * l->opt.n_shards + l->opt.shard : index;
}

/* The data set indices of batch g into idx; under the lock (the order cache). */
static gf_status batch_indices(gf_loader *l, int64_t g, int64_t *idx, int *count)
{
    int64_t epoch = g / l->per_epoch, first = epoch_batch(l, g % l->per_epoch) * l->opt.batch_size;
    int64_t end = first + l->opt.batch_size < l->data->n ? first + l->opt.batch_size : l->data->n;
    *count = (int)(end - first);
    if (!l->opt.shuffle && !l->opt.balanced) {
        for (int64_t k = first; k < end; k++) idx[k - first] = k;
        return GF_OK;
    }
    epoch_order *o = l->orders[0].epoch == epoch ? &l->orders[0] : l->orders[1].epoch == epoch ? &l->orders[1] : NULL;
    if (!o) { /* replace the older epoch's */
        o = l->orders[0].epoch < l->orders[1].epoch ? &l->orders[0] : &l->orders[1];
        if (!o->order && !(o->order = malloc((size_t)l->data->n * sizeof *o->order)))
            return gf_fail(GF_ERR_NOMEM, "out of memory for the data order");
        o->epoch = epoch;
        make_order(l, epoch, o->order);
    }
    memcpy(idx, o->order + first, (size_t)*count * sizeof *idx);
    return GF_OK;
}

/* ---- making a batch ---- */

typedef struct rows {
    float *v;
    int64_t n, cap;
} rows;

static gf_status add_boxes(rows *r, int image, const gf_sample *s)
{
    if (r->n + s->n_boxes > r->cap) {
        int64_t cap = r->cap ? r->cap : 64;
        while (cap < r->n + s->n_boxes) cap *= 2;
        float *v = realloc(r->v, (size_t)cap * 6 * sizeof *v);
        if (!v) return gf_fail(GF_ERR_NOMEM, "out of memory for a batch's boxes");
        r->v = v;
        r->cap = cap;
    }
    for (int k = 0; k < s->n_boxes; k++) {
        float *o = r->v + (r->n + k) * 6;
        o[0] = (float)image;
        memcpy(o + 1, s->boxes + 5 * k, 5 * sizeof *o);
    }
    r->n += s->n_boxes;
    return GF_OK;
}

/* Sample i, or when it is bad and skip_bad is set, the next good one after it. */
static gf_status load_sample(const gf_loader *l, int64_t *i, gf_sample *s)
{
    for (int64_t tries = 0; tries < l->data->n; tries++) {
        int skipped;
        gf_status st = dataset_get_or_skip(l->data, *i, s, &skipped);
        if (st || !skipped) return st;
        *i = (*i + 1) % l->data->n;
    }
    return gf_fail(GF_ERR_INVALID, "%s: no sample of the data set could be read", gf_dataset_path(l->data, 0));
}

/* A batch tensor, in the pool's memory when it has some (every element is written
 * before the batch is handed out), else in its own. */
static gf_status batch_tensor(gf_batch *b, gf_dtype dtype, int rank, const int64_t *dims, gf_tensor **out)
{
    gf_tensor shape = {.dtype = dtype, .rank = rank};
    memcpy(shape.dims, dims, (size_t)rank * sizeof *dims);
    void *pinned = b->pool ? host_pool_take(b->pool, gf_tensor_nbytes(&shape)) : NULL;
    if (!pinned) return gf_tensor_new(out, dtype, rank, dims);
    if (!(*out = malloc(sizeof **out))) {
        host_pool_give(b->pool, pinned);
        return gf_fail(GF_ERR_NOMEM, "out of memory");
    }
    **out = shape;
    (*out)->data = pinned;
    return GF_OK;
}

/* The batch's tensors, once its first sample gives the image size. */
static gf_status alloc_batch(const gf_loader *l, int n, const gf_image *img, gf_batch *b)
{
    int64_t idims[4] = {n, img->channels, img->height, img->width}, tdims[3] = {n, img->height, img->width};
    gf_status st = batch_tensor(b, GF_FLOAT, 4, idims, &b->images);
    if (!st && l->data->task == GF_TASK_CLASSIFY) st = batch_tensor(b, GF_INT64, 1, tdims, &b->targets);
    if (!st && l->data->task == GF_TASK_SEGMENT) st = batch_tensor(b, GF_INT64, 3, tdims, &b->targets);
    return st;
}

static gf_status fill_batch(const gf_loader *l, const int64_t *idx, int n, gf_batch *b, rows *boxes)
{
    const char *first_path = NULL;
    float mean[3], std[3];
    gf_status st = GF_OK;
    for (int k = 0; k < n && !st; k++) {
        int64_t i = idx[k];
        gf_sample s;
        if ((st = load_sample(l, &i, &s))) break;
        b->samples[k] = i;
        uint64_t seed = rng_seeded(l->opt.seed, (uint64_t)b->epoch, (uint64_t)(epoch_batch(l, b->index) * l->opt.batch_size + k)).state;
        if ((st = gf_transform_apply(l->transform, seed, &s))) st = gf_fail_context(st, "%s", s.path);
        const gf_image *img = &s.image;
        if (!st && k == 0) {
            first_path = s.path;
            st = alloc_batch(l, n, img, b);
            if (!st) st = transform_norm(l->transform, l->n_auto, l->n_auto ? l->auto_mean : NULL, l->auto_std,
                                         img->channels, mean, std);
        } else if (!st && (img->channels != b->images->dims[1] || img->height != b->images->dims[2] ||
                           img->width != b->images->dims[3]))
            st = gf_fail(GF_ERR_SHAPE,
                         "%s is %dx%dx%d after the transforms but %s is %lldx%lldx%lld; a batch needs one size "
                         "(add resize and crop steps, e.g. resize:256,center-crop:224)",
                         s.path, img->width, img->height, img->channels, first_path, (long long)b->images->dims[3],
                         (long long)b->images->dims[2], (long long)b->images->dims[1]);
        if (!st) {
            size_t plane = (size_t)img->width * (size_t)img->height;
            gf_image_to_chw(img, mean, std, (float *)b->images->data + (size_t)k * plane * (size_t)img->channels);
            if (l->data->task == GF_TASK_CLASSIFY) ((int64_t *)b->targets->data)[k] = s.label;
            else if (l->data->task == GF_TASK_SEGMENT) {
                int64_t *t = (int64_t *)b->targets->data + (size_t)k * plane;
                for (size_t p = 0; p < plane; p++) t[p] = s.mask.pixels[p];
            } else st = add_boxes(boxes, k, &s);
        }
        gf_sample_free(&s);
    }
    if (!st && l->data->task == GF_TASK_DETECT) {
        int64_t dims[2] = {boxes->n, 6};
        st = gf_tensor_new(&b->targets, GF_FLOAT, 2, dims);
        if (!st && boxes->n) memcpy(b->targets->data, boxes->v, (size_t)boxes->n * 6 * sizeof(float));
    }
    return st;
}

static void build_batch(const gf_loader *l, int64_t g, const int64_t *idx, int n, slot *out)
{
    gf_batch *b = &out->batch;
    *b = (gf_batch){.epoch = g / l->per_epoch, .index = g % l->per_epoch, .pool = l->pool};
    out->number = g;
    rows boxes = {0};
    gf_status st = (b->samples = malloc((size_t)n * sizeof *b->samples)) ? GF_OK
                                                                           : gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st) st = fill_batch(l, idx, n, b, &boxes);
    free(boxes.v);
    if (st) {
        gf_fail_context(st, "batch %lld of epoch %lld", (long long)b->index, (long long)b->epoch);
        gf_batch_free(b);
        b->epoch = g / l->per_epoch;
        b->index = g % l->per_epoch;
    }
    carry_error(&out->error, st);
}

static void *worker(void *arg)
{
    gf_loader *l = arg;
    int64_t *idx = malloc((size_t)l->opt.batch_size * sizeof *idx);
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->stop && l->next_claim >= l->next_take + l->depth) pthread_cond_wait(&l->work, &l->lock);
        if (l->stop) break;
        int64_t g = l->next_claim++;
        uint64_t generation = l->generation;
        int n = 0;
        gf_status st = idx ? batch_indices(l, g, idx, &n) : gf_fail(GF_ERR_NOMEM, "out of memory for a batch");
        pthread_mutex_unlock(&l->lock);
        slot made = {0};
        if (st) {
            made.number = g;
            carry_error(&made.error, st);
        } else build_batch(l, g, idx, n, &made);
        pthread_mutex_lock(&l->lock);
        if (generation == l->generation) {
            made.ready = 1;
            l->slots[g % l->depth] = made;
            pthread_cond_broadcast(&l->done);
        } else gf_batch_free(&made.batch);
    }
    pthread_mutex_unlock(&l->lock);
    free(idx);
    return NULL;
}

/* ---- the loader ---- */

static gf_status index_classes(gf_loader *l)
{
    const gf_dataset *d = l->data;
    if (d->task != GF_TASK_CLASSIFY || !d->labels || d->n_classes < 1)
        return gf_fail(GF_ERR_INVALID, "balanced sampling needs a classification data set (this one is %s)",
                       gf_data_format_name(d->format));
    int c = d->n_classes;
    l->class_start = calloc((size_t)c + 1, sizeof *l->class_start);
    l->class_members = malloc((size_t)d->n * sizeof *l->class_members);
    l->classes_present = malloc((size_t)c * sizeof *l->classes_present);
    int64_t *fill = calloc((size_t)c, sizeof *fill);
    gf_status st = l->class_start && l->class_members && l->classes_present && fill
                       ? GF_OK
                       : gf_fail(GF_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < d->n && !st; i++) l->class_start[d->labels[i] + 1]++;
    for (int k = 0; k < c && !st; k++) {
        if (l->class_start[k + 1]) l->classes_present[l->n_present++] = k;
        l->class_start[k + 1] += l->class_start[k];
    }
    for (int64_t i = 0; i < d->n && !st; i++) {
        int64_t k = d->labels[i];
        l->class_members[l->class_start[k] + fill[k]++] = i;
    }
    free(fill);
    return st;
}

gf_status gf_loader_new(const gf_dataset *d, const gf_transform *t, const gf_loader_options *opt, gf_loader **out)
{
    *out = NULL;
    if (!opt || opt->batch_size < 1 || opt->num_workers < 0 || opt->prefetch < 0)
        return gf_fail(GF_ERR_INVALID, "loader options: batch_size must be at least 1, num_workers and prefetch "
                                       "not negative");
    if (opt->n_shards < 0 || opt->shard < 0 || (opt->n_shards > 1 ? opt->shard >= opt->n_shards : opt->shard != 0))
        return gf_fail(GF_ERR_INVALID, "loader options: shard %d of %d is not one of 0 .. n_shards - 1", opt->shard,
                       opt->n_shards);
    gf_loader *l = calloc(1, sizeof *l);
    if (!l) return gf_fail(GF_ERR_NOMEM, "out of memory");
    l->data = d;
    l->transform = t;
    l->opt = *opt;
    l->orders[0].epoch = l->orders[1].epoch = -1;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->done, NULL);
    int64_t b = opt->batch_size;
    l->per_epoch = opt->drop_last ? d->n / b : (d->n + b - 1) / b;
    if (opt->n_shards > 1) l->per_epoch /= opt->n_shards;
    l->n_threads = data_threads(opt->num_workers, 0);
    l->depth = opt->prefetch ? opt->prefetch : 2 * l->n_threads;
    gf_status st = GF_OK;
    if (l->per_epoch == 0)
        st = opt->n_shards > 1
                 ? gf_fail(GF_ERR_INVALID, "%s: %lld samples in batches of %d make fewer batches than the %d shards",
                           gf_dataset_path(d, 0), (long long)d->n, opt->batch_size, opt->n_shards)
                 : gf_fail(GF_ERR_INVALID, "%s: a batch of %d is more than the data set's %lld samples, and drop_last "
                                           "leaves no batch", gf_dataset_path(d, 0), opt->batch_size, (long long)d->n);
    if (!st && opt->balanced) st = index_classes(l);
    if (!st && gf_transform_wants_stats(t)) {
        double mean[3], std[3];
        st = gf_dataset_stats(d, opt->num_workers, mean, std, NULL);
        l->n_auto = d->channels;
        for (int k = 0; k < d->channels && !st; k++) l->auto_mean[k] = (float)mean[k], l->auto_std[k] = (float)std[k];
        if (!st && (l->auto_std[0] == 0 || l->auto_std[l->n_auto - 1] == 0))
            st = gf_fail(GF_ERR_INVALID, "%s: normalize:auto: the data set's pixels do not vary (std 0)",
                         gf_dataset_path(d, 0));
    }
    if (!st && opt->pinned && !(l->pool = host_pool_new(NULL))) st = gf_fail(GF_ERR_NOMEM, "out of memory");
    if (!st && (!(l->slots = calloc((size_t)l->depth, sizeof *l->slots)) ||
                !(l->threads = calloc((size_t)l->n_threads, sizeof *l->threads))))
        st = gf_fail(GF_ERR_NOMEM, "out of memory");
    int started = 0;
    for (int k = 0; k < l->n_threads && !st; k++) {
        if (pthread_create(&l->threads[started], NULL, worker, l) == 0) started++;
    }
    if (!st && started == 0) st = gf_fail(GF_ERR_RUNTIME, "cannot start the loader's worker threads");
    l->n_threads = started;
    if (st) {
        gf_loader_free(l);
        return st;
    }
    *out = l;
    return GF_OK;
}

void gf_loader_free(gf_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
    for (int k = 0; k < l->n_threads; k++) pthread_join(l->threads[k], NULL);
    for (int k = 0; l->slots && k < l->depth; k++) gf_batch_free(&l->slots[k].batch);
    for (int k = 0; k < 2; k++) free(l->orders[k].order);
    free(l->slots);
    free(l->threads);
    free(l->class_start);
    free(l->class_members);
    free(l->classes_present);
    host_pool_release(l->pool);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->done);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int64_t gf_loader_batches_per_epoch(const gf_loader *l) { return l->per_epoch; }

gf_status gf_loader_next(gf_loader *l, gf_batch *out)
{
    pthread_mutex_lock(&l->lock);
    int64_t g = l->next_take;
    slot *s = &l->slots[g % l->depth];
    while (!(s->ready && s->number == g)) pthread_cond_wait(&l->done, &l->lock);
    *out = s->batch;
    carried_error error = s->error;
    *s = (slot){0};
    l->next_take++;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
    return raise_error(&error);
}

void gf_loader_position(const gf_loader *l, int64_t *epoch, int64_t *index)
{
    gf_loader *m = (gf_loader *)l; /* the lock only */
    pthread_mutex_lock(&m->lock);
    *epoch = l->next_take / l->per_epoch;
    *index = l->next_take % l->per_epoch;
    pthread_mutex_unlock(&m->lock);
}

gf_status gf_loader_seek(gf_loader *l, int64_t epoch, int64_t index)
{
    if (epoch < 0 || index < 0 || index >= l->per_epoch || epoch > INT64_MAX / l->per_epoch - 1)
        return gf_fail(GF_ERR_INVALID, "loader position epoch %lld, batch %lld: batches run from 0 to %lld",
                       (long long)epoch, (long long)index, (long long)l->per_epoch - 1);
    pthread_mutex_lock(&l->lock);
    l->generation++;
    for (int k = 0; k < l->depth; k++) {
        gf_batch_free(&l->slots[k].batch);
        l->slots[k] = (slot){0};
    }
    l->next_take = l->next_claim = epoch * l->per_epoch + index;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
    return GF_OK;
}

/* A tensor's page-locked memory back to its pool (its own is freed with it). */
static void give_back(gf_host_pool *pool, gf_tensor *t)
{
    if (pool && t && !t->owns_data) host_pool_give(pool, t->data);
}

void gf_batch_free(gf_batch *b)
{
    if (!b) return;
    give_back(b->pool, b->images);
    give_back(b->pool, b->targets);
    gf_tensor_free(b->images);
    gf_tensor_free(b->targets);
    free(b->samples);
    *b = (gf_batch){0};
}
