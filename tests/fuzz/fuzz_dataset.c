/* libFuzzer target: the data set readers. The first byte picks what the rest is:
 *   0  IDX: bytes 1-2 (little-endian) split the rest into the images and the labels file
 *   1  a CIFAR-10 batch (data_batch_1.bin)         2  a CIFAR-100 file (train.bin)
 *   3  a YOLO labels file beside a valid image       4  a segmentation mask beside it
 * and byte 1 (IDX: byte 3) % 5 the n_classes option (0: the data set's own). A data set
 * that opens must give each of its first samples and carry it, mask and boxes too,
 * through a geometric transform (random resized crop, flip, rotation) to planar float. */
#include "fuzz_common.h"

#include <sys/stat.h>

enum { KIND_IDX, KIND_CIFAR10, KIND_CIFAR100, KIND_YOLO, KIND_SEGMENT, N_KINDS };

static char root[4096];
static const char *const files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "data_batch_1.bin",
                                    "train.bin", "images/a.png", "labels/a.txt", "masks/a.png"};
static const char *const folders[] = {"images", "labels", "masks"};

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", root, name); }

static void put(const char *name, const uint8_t *data, size_t size)
{
    char path[8192];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
}

/* The data set folder, emptied of the last input's files; the 5x4 image YOLO and
 * segmentation samples share is written once. */
static void reset(void)
{
    if (!root[0]) {
        snprintf(root, sizeof root, "%s/set", fuzz_scratch());
        mkdir(root, 0700);
        for (size_t k = 0; k < sizeof folders / sizeof *folders; k++) {
            char path[8192];
            path_of(path, sizeof path, folders[k]);
            mkdir(path, 0700);
        }
        uint8_t pixels[5 * 4 * 3];
        for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 37);
        gf_image img = {5, 4, 3, pixels};
        char path[8192];
        path_of(path, sizeof path, "images/a.png");
        if (gf_image_save_png(&img, path)) abort();
    }
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        if (!strcmp(files[k], "images/a.png")) continue;
        char path[8192];
        path_of(path, sizeof path, files[k]);
        unlink(path);
    }
}

static void check_sample(const gf_dataset *d, const gf_sample *s, gf_task task)
{
    if (s->image.width <= 0 || s->image.height <= 0 || s->image.channels != gf_dataset_channels(d)) abort();
    if (task == GF_TASK_SEGMENT &&
        (s->mask.width != s->image.width || s->mask.height != s->image.height || s->mask.channels != 1))
        abort();
    int n_classes = gf_dataset_num_classes(d);
    for (int b = 0; b < s->n_boxes; b++) {
        float cls = s->boxes[b * 5];
        if (cls < 0 || (n_classes && cls >= n_classes)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gf_transform *transform;
    if (!transform && gf_transform_parse("random-resized-crop:6,hflip:0.5,rotate:30", &transform)) abort();
    if (size < 2) return 0;
    reset();
    int kind = data[0] % N_KINDS;
    const uint8_t *body = data + 2;
    size_t n = size - 2;
    gf_dataset_options opt = {.n_classes = data[1] % 5};
    switch (kind) {
    case KIND_IDX: {
        if (size < 4) return 0;
        size_t split = (size_t)data[1] | (size_t)data[2] << 8;
        opt.n_classes = data[3] % 5;
        body = data + 4;
        n = size - 4;
        if (split > n) split = n;
        put(files[0], body, split);
        put(files[1], body + split, n - split);
        opt.format = GF_DATA_IDX;
        break;
    }
    case KIND_CIFAR10: put(files[2], body, n); opt.format = GF_DATA_CIFAR10; break;
    case KIND_CIFAR100: put(files[3], body, n); opt.format = GF_DATA_CIFAR100; break;
    case KIND_YOLO: put(files[5], body, n); opt.format = GF_DATA_YOLO; break;
    default: put(files[6], body, n); opt.format = GF_DATA_SEGMENTATION; break;
    }
    gf_dataset *d;
    if (gf_dataset_open(root, &opt, &d)) return 0;
    gf_task task = gf_dataset_task(d);
    int64_t count = gf_dataset_size(d);
    if (count <= 0) abort(); /* an empty data set must be refused at open */
    for (int64_t i = 0; i < count && i < 4; i++) {
        gf_sample s;
        if (gf_dataset_get(d, i, &s)) continue;
        check_sample(d, &s, task);
        if (!gf_transform_apply(transform, (uint64_t)i, &s)) {
            check_sample(d, &s, task);
            float planar[3 * 6 * 6];
            if (s.image.width == 6 && s.image.height == 6) gf_transform_to_chw(transform, &s.image, planar);
            else abort(); /* the crop is 6x6 whatever the input */
        }
        gf_sample_free(&s);
    }
    gf_dataset_free(d);
    return 0;
}
