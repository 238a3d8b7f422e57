/* graft — load ONNX models, run them, finetune them, export them back.
 *
 * The public C API. Every fallible call returns GF_OK (0) or a non-zero status;
 * gf_last_error() then returns a message that names the file, node, op and what
 * was expected. Messages are per thread. */
#ifndef GRAFT_H
#define GRAFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRAFT_VERSION "0.1.0"

typedef enum gf_status {
    GF_OK = 0,
    GF_ERR_IO,          /* a file could not be opened, read or written */
    GF_ERR_PARSE,       /* a file is not what it claims to be */
    GF_ERR_INVALID,     /* a graph, attribute or argument is invalid */
    GF_ERR_UNSUPPORTED, /* valid, but graft cannot do it (yet) */
    GF_ERR_SHAPE,       /* shapes or dtypes do not fit together */
    GF_ERR_NOMEM,       /* an allocation failed or a size is absurd */
    GF_ERR_RUNTIME,     /* a kernel or device failed while running */
} gf_status;

const char *gf_last_error(void);

/* Element types; the numbers are ONNX's TensorProto.DataType values. */
typedef enum gf_dtype {
    GF_UNDEFINED = 0,
    GF_FLOAT = 1,
    GF_UINT8 = 2,
    GF_INT8 = 3,
    GF_UINT16 = 4,
    GF_INT16 = 5,
    GF_INT32 = 6,
    GF_INT64 = 7,
    GF_STRING = 8,
    GF_BOOL = 9,
    GF_FLOAT16 = 10,
    GF_DOUBLE = 11,
    GF_UINT32 = 12,
    GF_UINT64 = 13,
    GF_BFLOAT16 = 16,
} gf_dtype;

size_t gf_dtype_size(gf_dtype t);    /* 0 for types graft cannot hold */
const char *gf_dtype_name(gf_dtype t);

#define GF_MAX_RANK 8

/* A dense, contiguous, row-major tensor in host memory. `data` is owned when
 * `owns_data` is set; otherwise it points into memory that outlives the tensor
 * (a mapped model file, a session's arena). */
typedef struct gf_tensor {
    gf_dtype dtype;
    int rank;
    int64_t dims[GF_MAX_RANK];
    void *data;
    int owns_data;
} gf_tensor;

int64_t gf_tensor_numel(const gf_tensor *t);
size_t gf_tensor_nbytes(const gf_tensor *t);
/* A new tensor with zeroed, owned storage. */
gf_status gf_tensor_new(gf_tensor **out, gf_dtype dtype, int rank, const int64_t *dims);
void gf_tensor_free(gf_tensor *t);
/* Shape as text, "[1,3,224,224]", into buf; returns buf. */
char *gf_shape_str(const gf_tensor *t, char *buf, size_t len);

/* ONNX TensorProto files (the ONNX test-data format). */
gf_status gf_tensor_read_pb(const char *path, gf_tensor **out, char **name);
gf_status gf_tensor_write_pb(const char *path, const gf_tensor *t, const char *name);

/* ---- models ---- */

typedef struct gf_model gf_model;

gf_status gf_model_load(const char *path, gf_model **out);
/* From memory; external data is refused. */
gf_status gf_model_load_buffer(const void *data, size_t len, gf_model **out);
void gf_model_free(gf_model *m);
/* Writes the model's graph as an ONNX file: nodes, attributes, initializers as they are
 * now (after training, the updated ones), inputs, outputs, opsets. The file is replaced
 * atomically: written to a temporary beside it, synced, then renamed over `path`, so a
 * failure (a full disk, say) leaves any existing file as it was. */
gf_status gf_model_save(const gf_model *m, const char *path);

typedef struct gf_io_info {
    const char *name;
    gf_dtype dtype;
    int rank;               /* -1 when unknown */
    const int64_t *dims;    /* -1 for a symbolic or unknown dim */
    const char *const *dim_names; /* symbolic names, NULL entries where none */
} gf_io_info;

int gf_model_num_inputs(const gf_model *m);   /* graph inputs that are not initializers */
int gf_model_num_outputs(const gf_model *m);
gf_io_info gf_model_input(const gf_model *m, int i);
gf_io_info gf_model_output(const gf_model *m, int i);

typedef struct gf_model_summary {
    int64_t ir_version;
    const char *producer;          /* "pytorch 1.13.1", or "" */
    int n_opsets;
    const char *const *opset_domains;  /* "" for the default domain */
    const int64_t *opset_versions;
    int n_nodes;
    int n_op_types;
    const char *const *op_types;   /* sorted by count, largest first */
    const int *op_counts;
    int64_t n_params;              /* elements of float initializers */
    int64_t param_bytes;           /* bytes of all initializers */
} gf_model_summary;

/* Valid as long as the model. */
gf_status gf_model_summary_get(gf_model *m, gf_model_summary *out);

/* ---- sessions ---- */

typedef enum gf_device { GF_DEVICE_CPU = 0, GF_DEVICE_CUDA = 1 } gf_device;

/* Data parallel training: one process per GPU, each on its share of every epoch's
 * batches (gf_loader_options.shard), all holding the same weights. After each backward
 * pass the gradients, and BatchNormalization's new running statistics, are averaged
 * over every process (an NCCL all-reduce on the GPU), so that every process takes the
 * same step. The processes may be on several machines: NCCL finds its peers from the
 * unique id that every process is given. */
#define GF_NCCL_ID_BYTES 128
typedef struct gf_data_parallel {
    int world_size;             /* the processes; 0 or 1: this one alone, nothing is averaged */
    int rank;                   /* this one's, 0 .. world_size - 1 */
    int local_rank;             /* its place among those on this machine: which of --devices it takes */
    unsigned char nccl_id[GF_NCCL_ID_BYTES];  /* ncclUniqueId, the same in every process */
} gf_data_parallel;

/* The process group a launcher described in the environment, or world_size 1 when none
 * did. Rank and size come from GRAFT_RANK, GRAFT_WORLD_SIZE and GRAFT_LOCAL_RANK (what
 * `graft train --devices` sets for its children), else from MPI's (Open MPI's
 * OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK, MPICH's PMI_RANK/PMI_SIZE/MPI_LOCALRANKID) or
 * Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID). The NCCL id comes from
 * GRAFT_NCCL_ID (hex), else from the file GRAFT_NCCL_ID_FILE names (on a file system all
 * machines share): rank 0 writes it, the others wait for it up to
 * GRAFT_NCCL_ID_TIMEOUT seconds (default 300). Fails naming the variable that is wrong. */
gf_status gf_data_parallel_from_env(gf_data_parallel *out);
/* A new NCCL unique id (ncclGetUniqueId); fails where this build or machine has no NCCL. */
gf_status gf_nccl_unique_id(unsigned char id[GF_NCCL_ID_BYTES]);
/* The id as 2 * GF_NCCL_ID_BYTES lower-case hex digits and a NUL, and back (fails on
 * anything else, naming `what`). */
void gf_nccl_id_to_hex(const unsigned char id[GF_NCCL_ID_BYTES], char hex[2 * GF_NCCL_ID_BYTES + 1]);
gf_status gf_nccl_id_from_hex(const char *hex, const char *what, unsigned char id[GF_NCCL_ID_BYTES]);

typedef struct gf_session_options {
    gf_device device;
    int device_index;
    int num_threads;        /* 0: one per core */
    int profile;            /* collect per-node times */
    gf_data_parallel parallel;  /* training on several GPUs (zeroed: one process) */
} gf_session_options;

typedef struct gf_session gf_session;

gf_status gf_session_new(gf_model *m, const gf_session_options *opt, gf_session **out);
void gf_session_free(gf_session *s);

/* Runs the model. `inputs` are in the order of gf_model_input; shapes may differ
 * from the last run (symbolic batch, other image sizes): the session replans.
 * `outputs` receives new tensors owned by the caller, in graph-output order. */
gf_status gf_session_run(gf_session *s, const gf_tensor *const *inputs, gf_tensor **outputs);
/* On a GPU, starts copying a coming run's inputs to the device on a copy stream of
 * their own, so that the copy overlaps the work of the runs before it (a training
 * loop stages batch k + 1, then runs batch k). The run whose inputs are these same
 * tensors (the same data, the same size) uses the copies; until that run their data
 * must not change. NULL entries are not staged; copies no run takes are dropped two
 * stages later. Copies from page-locked memory (gf_loader_options.pinned) leave the
 * CPU free. Does nothing on the CPU, or before the session's first run. */
gf_status gf_session_stage(gf_session *s, const gf_tensor *const *inputs);

/* Plans for these input shapes without running; used by `graft info`. */
gf_status gf_session_plan(gf_session *s, const gf_tensor *const *input_shapes);
size_t gf_session_arena_bytes(const gf_session *s);   /* planned peak of activations */
double gf_session_flops(const gf_session *s);          /* multiply-adds x2 of the last plan */

typedef struct gf_op_time {
    const char *op_type;
    int count;
    double ms;              /* total over all runs since the last reset */
} gf_op_time;
/* Per-op-type totals, largest first; valid until the next run. */
int gf_session_profile(const gf_session *s, const gf_op_time **times);
void gf_session_profile_reset(gf_session *s);

const char *gf_backends(void);  /* "cpu" or "cpu, cuda" */

/* ---- training ---- */

typedef enum gf_optimizer {
    GF_OPTIM_SGD = 0,
    GF_OPTIM_ADAM,
    GF_OPTIM_ADAMW,
    GF_OPTIM_RMSPROP,
    GF_OPTIM_ASGD,
} gf_optimizer;

/* Hyper-parameters with PyTorch's meanings and (from gf_train_defaults) defaults. */
typedef struct gf_optim_options {
    gf_optimizer kind;
    double lr;
    double weight_decay;        /* L2 for SGD/Adam/RMSprop/ASGD, decoupled for AdamW */
    double momentum, dampening; /* SGD, RMSprop (momentum) */
    int nesterov;               /* SGD */
    double beta1, beta2, eps;   /* Adam, AdamW; eps also RMSprop */
    int amsgrad;                /* Adam, AdamW */
    double alpha;               /* RMSprop's smoothing constant */
    int centered;               /* RMSprop */
    double asgd_lambd, asgd_alpha, asgd_t0;
    double clip_norm;           /* clip the gradients' global L2 norm to this; 0: no clipping */
} gf_optim_options;

typedef enum gf_loss_kind {
    GF_LOSS_CROSS_ENTROPY = 0,  /* softmax cross-entropy on logits; per pixel for [N,C,H,W] */
    GF_LOSS_NLL,                /* on log-probabilities */
    GF_LOSS_MSE,
    GF_LOSS_L1,
    GF_LOSS_BCE_WITH_LOGITS,
    GF_LOSS_YOLOV3,             /* YOLOv3's box, objectness and class terms over every output (a head
                                   each), against [T, 6] targets (image, class, cx, cy, w, h) */
} gf_loss_kind;

typedef struct gf_loss_options {
    gf_loss_kind kind;
    double label_smoothing;     /* cross-entropy */
    int64_t ignore_index;       /* cross-entropy, NLL: targets with this label count for nothing */
    const float *class_weights; /* cross-entropy, NLL: one per class, or NULL */
    int n_class_weights;
    const float *anchors;       /* YOLOv3: (w, h) in input pixels, the same number for each head, head
                                   by head (strides 32, 16, 8); NULL: YOLOv3's nine */
    int n_anchor_values;
} gf_loss_options;

/* YOLOv3's nine anchors, (w, h) in input pixels, by head of stride 32, 16 and 8. */
extern const float gf_yolov3_anchors[18];

/* Parameters whose names match `pattern` (a glob) train with their own learning rate
 * (lr_scale times the schedule's) and weight decay (negative: the optimizer's). */
typedef struct gf_param_group {
    const char *pattern;
    double lr_scale;
    double weight_decay;
} gf_param_group;

typedef struct gf_train_options {
    gf_optim_options optim;
    gf_loss_options loss;
    /* Which float initializers train. With no `trainable` patterns every parameter does
     * (weights and biases of Conv, Gemm, MatMul, BatchNormalization, ...); `freeze`
     * patterns and `freeze_before` (a node name: everything that feeds it) exclude. */
    const char *const *trainable;
    int n_trainable;
    const char *const *freeze;
    int n_freeze;
    const char *freeze_before;
    const gf_param_group *groups;
    int n_groups;
    uint64_t seed;              /* Dropout masks */
    /* > 0: every BatchNormalization's running statistics take this share of each batch's
     * (PyTorch's `momentum`, 1 - ONNX's), instead of the model's own; 0: the model's. */
    double bn_momentum;
    gf_session_options session;
} gf_train_options;

void gf_train_defaults(gf_train_options *o, gf_optimizer kind);

/* Replaces the classifier that makes the model's first output (the last Gemm, MatMul
 * or 1x1 Conv before it) with a freshly initialised one of n_classes outputs, as
 * PyTorch initialises nn.Linear, seeded. Its weight and bias keep their names. */
gf_status gf_model_replace_head(gf_model *m, int n_classes, uint64_t seed);

typedef struct gf_trainer gf_trainer;

/* A trainer updates the model's own initializers: after training, gf_model_save
 * writes the trained model and new sessions of the model run it. The model must
 * outlive the trainer. The training graph is built at the first step. */
gf_status gf_trainer_new(gf_model *m, const gf_train_options *opt, gf_trainer **out);
void gf_trainer_free(gf_trainer *t);

/* One step on one batch: forward, loss, backward, update. `inputs` in the order of
 * gf_model_input; `targets` the labels (int64 class indices for cross-entropy, of the
 * model output's shape for MSE/L1/BCE). *loss receives the loss of this step's forward
 * pass, before its update. A non-finite loss stops with a message naming the step and
 * the first node whose output was not finite, and leaves the parameters unchanged. */
gf_status gf_trainer_step(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *targets, double *loss);
/* On a GPU, copies a coming step's inputs and targets ahead while the steps before it
 * run (gf_session_stage says how); gf_fit stages each batch one step early. */
gf_status gf_trainer_stage(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *targets);
/* Validation: the loss and the model's outputs (new tensors for the caller, in graph-output
 * order: room for gf_model_num_outputs) in eval form — BatchNormalization on its running
 * statistics, Dropout passing through — on the weights as they are now, training nothing. */
gf_status gf_trainer_evaluate(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *targets, double *loss,
                              gf_tensor **outputs);
/* On a GPU (gf_session_options.device) the weights, running statistics and optimizer
 * state stay on the device between steps; this copies them into the model's
 * initializers. gf_trainer_evaluate, gf_trainer_save_checkpoint and gf_trainer_free do
 * it themselves; call it before gf_model_save while the trainer lives. A no-op on the
 * CPU, where the model's storage is updated in place. */
gf_status gf_trainer_sync_model(gf_trainer *t);
/* The model's first output from the last step's forward pass (training mode); NULL before. */
const gf_tensor *gf_trainer_output(const gf_trainer *t);
/* The learning rate of the next steps (the base; groups scale it). Setting one ends
 * any schedule. */
void gf_trainer_set_lr(gf_trainer *t, double lr);
double gf_trainer_lr(const gf_trainer *t);
/* A learning-rate schedule over the optimizer's lr, torch.optim.lr_scheduler's to the
 * letter (README, "Schedules", gives the spec's grammar: "cosine:100", "step:30:0.1",
 * "onecycle:0.1:1000", "plateau:0.1:5", any with ":warmup=N"). gf_trainer_lr follows it;
 * the caller moves it on after each step or each epoch, as it chooses, as PyTorch's
 * scheduler.step(); `metric` feeds reduce-on-plateau (the validation loss, say).
 * Checkpoints keep its position; set it before resuming. */
gf_status gf_trainer_set_schedule(gf_trainer *t, const char *spec);
void gf_trainer_schedule_step(gf_trainer *t, double metric);
/* ---- LR range test ----
 * Rate i (0 .. n-1) of an exponential ramp: start * (end / start)^(i / (n - 1)). */
double gf_lr_range_at(double start_lr, double end_lr, int64_t n, int64_t i);

/* The suggested rate from the test's (lr, loss) pairs (lrs positive, increasing):
 * the losses smoothed by a bias-corrected moving average (beta 0.98, as fastai),
 * cut before the first non-finite loss or the first smoothed loss above 4 times
 * the lowest before it (divergence), then the lr where the smoothed loss falls
 * fastest against log(lr) (central differences, one-sided at the ends: the
 * "steepest" suggestion of fastai and torch-lr-finder). Fails with fewer than 3
 * points before divergence. */
gf_status gf_lr_range_suggest(const double *lrs, const double *losses, int n, double *suggested);

/* Changes what trains, as in gf_train_options (the patterns must outlive the trainer),
 * from the next step on: gradual unfreezing. The training graph is rebuilt; parameters
 * that went on training keep their optimizer state, new ones start fresh. */
gf_status gf_trainer_set_trainable(gf_trainer *t, const char *const *trainable, int n_trainable,
                                   const char *const *freeze, int n_freeze, const char *freeze_before);
int64_t gf_trainer_steps_done(const gf_trainer *t);
/* The trainable parameters' names, once the first step has built the graph. */
int gf_trainer_num_params(const gf_trainer *t);
const char *gf_trainer_param_name(const gf_trainer *t, int i);

/* A checkpoint is an ONNX file: the model with its current weights and running
 * statistics (so it also runs as a model), the optimizer's state, the step count,
 * and the caller's own n key/value strings (epoch, data order, schedule), written
 * atomically. Resuming (before the first step) from a checkpoint of this model and
 * optimizer continues exactly where it stopped; one of another model is refused,
 * naming the difference. */
gf_status gf_trainer_save_checkpoint(gf_trainer *t, const char *path, int n, const char *const *keys,
                                     const char *const *values);
gf_status gf_trainer_load_checkpoint(gf_trainer *t, const char *path);
/* A value the loaded checkpoint's writer stored under key; NULL when none. */
const char *gf_trainer_checkpoint_value(const gf_trainer *t, const char *key);

/* ---- data: images for classification ---- */

/* 8-bit pixels, row-major, channels interleaved (RGB or grey). */
typedef struct gf_image {
    int width, height, channels;
    uint8_t *pixels;            /* owned; width * height * channels bytes */
} gf_image;

/* Decodes a JPEG or PNG file (told apart by content, not by name) into `channels`
 * 8-bit channels: 3 for RGB, 1 for grey. 16-bit, palette and alpha PNGs are
 * converted. A truncated or foreign file fails with a message naming it. */
gf_status gf_image_load(const char *path, int channels, gf_image *out);
void gf_image_free(gf_image *img);
/* Scales so the shorter side is `shorter` (the longer one keeps the aspect ratio,
 * rounded down), bilinear with antialiasing when shrinking, as Pillow's BILINEAR. */
gf_status gf_image_resize_shorter(const gf_image *img, int shorter, gf_image *out);
gf_status gf_image_resize(const gf_image *img, int width, int height, gf_image *out);
/* The centered width x height window; fails when the image is smaller. */
gf_status gf_image_center_crop(const gf_image *img, int width, int height, gf_image *out);
/* Planar float, channel-major: dst[c][y][x] = (pixel / 255 - mean[c]) / std[c]. */
void gf_image_to_chw(const gf_image *img, const float *mean, const float *std, float *dst);

/* ---- data: datasets, transforms, loader ---- */

/* What a data set's samples are for, and so what the loader's targets are. */
typedef enum gf_task {
    GF_TASK_CLASSIFY = 0,       /* a class per image: targets int64 [N] */
    GF_TASK_SEGMENT,            /* a class per pixel: targets int64 [N, H, W] */
    GF_TASK_DETECT,             /* boxes: targets float32 [T, 6] */
} gf_task;

typedef enum gf_data_format {
    GF_DATA_AUTO = 0,
    GF_DATA_FOLDER,             /* "folder": one subfolder of images per class */
    GF_DATA_IDX,                /* "idx": MNIST, Fashion-MNIST */
    GF_DATA_CIFAR10,            /* "cifar10": the binary version */
    GF_DATA_CIFAR100,           /* "cifar100": the binary version */
    GF_DATA_SEGMENTATION,       /* "segmentation": images and class-index masks */
    GF_DATA_YOLO,               /* "yolo": images and YOLO box labels */
} gf_data_format;

const char *gf_data_format_name(gf_data_format f);
/* The format named as gf_data_format_name names it; GF_ERR_INVALID otherwise. */
gf_status gf_data_format_parse(const char *name, gf_data_format *out);

/* Mask pixels that are no class: padding added by transforms, and VOC's "void"
 * border. Segmentation losses and metrics should ignore it (ignore_index 255). */
#define GF_MASK_IGNORE 255

typedef struct gf_dataset_options {
    gf_data_format format;      /* GF_DATA_AUTO: told apart by what the path holds */
    int channels;               /* 3 (RGB) or 1 (grey); 0: 1 for IDX, 3 otherwise */
    /* > 0: every label (class folder, label byte, mask value other than GF_MASK_IGNORE,
     * box class) must be below it. 0: the data set's own count (class folders, the
     * largest label + 1, CIFAR's 10 or 100, the lines of classes.txt; masks are then
     * checked only against classes.txt, when there is one). */
    int n_classes;
    /* A part of the data: IDX "train" (default) or "t10k" (also "test"); CIFAR "train"
     * (default) or "test"; a folder of images: its subfolder; segmentation and YOLO: a
     * subfolder of images/ (and masks/, labels/), e.g. "val". NULL: the default. */
    const char *subset;
    /* A sample whose file cannot be read or decoded is skipped with a warning on stderr
     * (once per file) instead of failing: the loader puts the next good sample in its
     * place, gf_dataset_stats leaves it out. */
    int skip_bad;
} gf_dataset_options;

typedef struct gf_dataset gf_dataset;

/* Opens a data set (`opt` may be NULL: all defaults). Layouts, samples in the order given:
 *   folder        DIR/CLASS/.../NAME.{jpg,jpeg,png} (any case): class k is the k-th
 *                 subfolder name in byte order, each class's images in the order of
 *                 their paths, as torchvision's ImageFolder. A class folder without
 *                 images fails.
 *   idx           DIR/SUBSET-images-idx3-ubyte with DIR/SUBSET-labels-idx1-ubyte, either
 *                 or both gzipped (.gz), or the path of an images file, whose labels file
 *                 is the one named with "labels-idx1" for "images-idx3": uint8 [N, H, W]
 *                 and uint8 [N]. Read whole at open.
 *   cifar10       DIR/data_batch_1.bin .. data_batch_5.bin (those there, "train") or
 *                 DIR/test_batch.bin ("test"), or one .bin file: records of a label byte
 *                 and 32x32 R, G and B planes. Class names from batches.meta.txt.
 *   cifar100      DIR/train.bin or DIR/test.bin, or one of them: coarse and fine label
 *                 bytes, then the planes. Fine labels; names from fine_label_names.txt.
 *   segmentation  DIR/images/.../STEM.{jpg,jpeg,png}, each with DIR/masks/.../STEM.png at
 *                 the same place under masks/: a grey (8-bit, or 16-bit with values below
 *                 256) or palette PNG whose values (palette indices, not colours) are
 *                 classes, the size of its image. An image without a mask fails; masks
 *                 without images are ignored.
 *   yolo          DIR/images/.../STEM.{jpg,jpeg,png} with DIR/labels/.../STEM.txt: a line
 *                 "class cx cy w h" per box, centre and size normalised to [0, 1]; blank
 *                 lines are skipped and an image without a labels file has no boxes.
 *                 Every labels file is read at open.
 *   Segmentation and YOLO take class names, one a line, from DIR/classes.txt if there.
 *   Names starting with '.' are skipped everywhere, files and folders alike (where
 *   ImageFolder would take a .ipynb_checkpoints folder for a class).
 * GF_DATA_AUTO: a file is IDX (its magic number, gzipped or not) or CIFAR (data_batch_*,
 * test_batch: 10; train.bin, test.bin: 100); a folder holding an IDX images file or
 * CIFAR files (or a subfolder cifar-10-batches-bin or cifar-100-binary holding them) is
 * that; one with images/ and masks/ is segmentation, images/ and labels/ YOLO; any
 * other folder is a folder of class folders. Failures name the file, and the line of a
 * text file: no images, an empty class folder, a label outside n_classes, a malformed
 * label line, a file shorter than its header or its records say. */
gf_status gf_dataset_open(const char *path, const gf_dataset_options *opt, gf_dataset **out);
/* Free the splits of a data set before it. */
void gf_dataset_free(gf_dataset *d);
gf_data_format gf_dataset_format(const gf_dataset *d);
gf_task gf_dataset_task(const gf_dataset *d);
int64_t gf_dataset_size(const gf_dataset *d);
int gf_dataset_channels(const gf_dataset *d);
/* 0 when unknown (segmentation without classes.txt or n_classes). */
int gf_dataset_num_classes(const gf_dataset *d);
/* Class k's name (a folder name, a line of a names file); NULL when it has none. */
const char *gf_dataset_class_name(const gf_dataset *d, int k);
/* Classification: sample i's class; -1 for other tasks. */
int64_t gf_dataset_label(const gf_dataset *d, int64_t i);
/* The file sample i comes from: its image, or the IDX/CIFAR file holding it. */
const char *gf_dataset_path(const gf_dataset *d, int64_t i);

/* Splits d at random into two views of it: round(val_ratio * size) samples go to *val,
 * the rest to *train, each keeping d's order; the same seed splits the same way. A ratio
 * that leaves either side empty fails. The views borrow d: free them first. */
gf_status gf_dataset_split(const gf_dataset *d, double val_ratio, uint64_t seed, gf_dataset **train,
                           gf_dataset **val);
/* A view of d's first n samples (1 <= n <= size), in d's order; it borrows d. */
gf_status gf_dataset_head(const gf_dataset *d, int64_t n, gf_dataset **out);

/* One sample, owned by the caller (gf_sample_free). */
typedef struct gf_sample {
    gf_image image;             /* the data set's channels */
    int64_t label;              /* classification: the class; -1 otherwise */
    gf_image mask;              /* segmentation: 1 channel of classes, the image's size; else empty */
    int n_boxes;                /* detection: boxes[k * 5 ..] = class, cx, cy, w, h, normalised */
    float *boxes;
    const char *path;           /* as gf_dataset_path; valid as long as the data set */
} gf_sample;

/* Reads and decodes sample i, whatever skip_bad says. */
gf_status gf_dataset_get(const gf_dataset *d, int64_t i, gf_sample *out);
void gf_sample_free(gf_sample *s);

/* Per-channel mean and standard deviation (population) of the pixels of every sample,
 * in ToTensor's units (0..1), counted exactly (the same for any num_threads; 0: one per
 * core). mean and std hold gf_dataset_channels(d) values; *pixels (may be NULL) receives
 * the pixels counted per channel. These are what normalize wants. */
gf_status gf_dataset_stats(const gf_dataset *d, int num_threads, double *mean, double *std, int64_t *pixels);

/* A transform pipeline, from a spec a flag can carry: steps separated by commas, each a
 * name and its parameters separated by colons, e.g. "resize:256,center-crop:224" or
 * "random-resized-crop:224,hflip,rotate:15,color-jitter:0.4:0.4:0.4,normalize:imagenet".
 * Each step does what the torchvision transform named beside it does to a PIL image,
 * to within one grey level; the random ones draw their parameters as its get_params does.
 *   resize:S            Resize(S): the shorter side to S (Pillow's antialiased bilinear)
 *   resize:HxW          Resize((H, W))
 *   center-crop:S|HxW   CenterCrop; an image smaller than the crop is padded as torchvision pads it
 *   random-resized-crop:S[:SMIN:SMAX[:RMIN:RMAX]]
 *                       RandomResizedCrop(S, scale=(SMIN, SMAX), ratio=(RMIN, RMAX)); by default
 *                       (0.08, 1) and (3/4, 4/3); 10 tries, then the central crop
 *   random-crop:S[:PAD]  RandomCrop(S, padding=PAD)
 *   hflip[:P]           RandomHorizontalFlip(P), P = 0.5 by default
 *   rotate:D            RandomRotation(D, interpolation=BILINEAR): counter-clockwise by an
 *                       angle in [-D, D] degrees about the centre
 *   affine:D[:T[:SMIN:SMAX[:SHEAR]]]
 *                       RandomAffine(D, translate=(T, T), scale=(SMIN, SMAX),
 *                       shear=(-SHEAR, SHEAR), interpolation=BILINEAR); T = 0, scale 1, shear 0
 *   color-jitter:B:C:S[:H]  ColorJitter(B, C, S, H): brightness, contrast, saturation
 *                       factors and a hue shift, applied in a random order
 *   grey-to-rgb         (or gray-to-rgb) a grey image's level in three channels; RGB passes
 *   normalize:imagenet | normalize:M:S | normalize:M1:M2:M3:S1:S2:S3 | normalize:auto
 *                       the last step: (pixel / 255 - mean) / std per channel (M:S for every
 *                       channel); auto: the data set's own (gf_dataset_stats), computed by the
 *                       loader unless gf_transform_set_normalize gave them. Without a
 *                       normalize step, pixel / 255 (ToTensor).
 * Padding and the area a rotation or affine map brings in are 0. Masks follow every
 * geometric step by nearest neighbour (Pillow's NEAREST), padded with GF_MASK_IGNORE;
 * boxes follow as the bounding box of their transformed corners, clipped to the image,
 * and a step that cuts the image drops the boxes left under 2 pixels wide or high, with
 * under 10% of their area or an aspect over 100 (Ultralytics' box_candidates). Colour
 * steps leave masks and boxes alone. A malformed spec fails naming the step. */
typedef struct gf_transform gf_transform;

gf_status gf_transform_parse(const char *spec, gf_transform **out);
void gf_transform_free(gf_transform *t);
/* 1 when the spec says normalize:auto and no values have been set. */
int gf_transform_wants_stats(const gf_transform *t);
/* Sets normalize's mean and std (n = 1: every channel; or one per channel), as
 * normalize:auto leaves them to be set (from the training set, say, for validation). */
gf_status gf_transform_set_normalize(gf_transform *t, int n, const float *mean, const float *std);
/* Applies the steps before normalize to s in place, drawing from a generator seeded
 * with seed (the same seed, the same result). t may be NULL: nothing to do. */
gf_status gf_transform_apply(const gf_transform *t, uint64_t seed, gf_sample *s);
/* img as planar floats normalised as the spec's normalize step says (dst: C * H * W);
 * fails when its channels do not fit the mean and std, or normalize:auto is unset. */
gf_status gf_transform_to_chw(const gf_transform *t, const gf_image *img, float *dst);

/* Batches on worker threads (pthreads) that decode and transform ahead of the consumer.
 * Sample k of epoch e (k its place in that epoch's order) is transformed with a seed
 * made from (seed, e, k), and each epoch's order from (seed, e), so the batches are the
 * same whatever the number of workers or their timing. */
typedef struct gf_loader_options {
    int batch_size;             /* >= 1 */
    int shuffle;                /* a new random order every epoch; 0: the data set's order */
    /* Classification: draw each of an epoch's samples at random with replacement, with
     * weights inverse to the frequency of its class (torch's WeightedRandomSampler), so
     * every class comes equally often. Implies shuffle. */
    int balanced;
    int drop_last;              /* leave out each epoch's last batch when it is short */
    int num_workers;            /* 0: one per core */
    int prefetch;               /* batches made ahead of the consumer; 0: 2 per worker */
    uint64_t seed;
    /* Data parallel: this process's share of each epoch, as torch's DistributedSampler
     * but by whole batches: of the epoch's batches (the same order in every process, from
     * the same seed) it takes numbers shard, shard + n_shards, ..., the same count in each
     * process (batches past the last full round are left out). n_shards 0 or 1: all. */
    int shard, n_shards;
    /* Images and class or mask targets in page-locked memory, for a GPU to copy without
     * the CPU (gf_trainer_stage); ordinary memory where it cannot be pinned (no GPU, a
     * CPU-only build). Each buffer is pinned once and used again by later batches. */
    int pinned;
} gf_loader_options;

/* A batch owned by the caller (gf_batch_free). Targets by task: int64 [N] classes;
 * int64 [N, H, W] masks (GF_MASK_IGNORE where no class, padding included); float32
 * [T, 6] rows (image index in the batch, class, cx, cy, w, h normalised), the targets
 * YoloV3Loss takes. */
typedef struct gf_batch {
    gf_tensor *images;          /* float32 [N, C, H, W] */
    gf_tensor *targets;
    int64_t epoch, index;       /* its place: batch `index` of epoch `epoch` */
    int64_t *samples;           /* the N data set indices it holds (substitutes for skipped ones) */
    struct gf_host_pool *pool;  /* a pinned loader's: where gf_batch_free gives the memory back */
} gf_batch;

typedef struct gf_loader gf_loader;

/* The loader borrows d and t (t may be NULL: no transforms, pixel / 255): both must
 * outlive it. With normalize:auto unset, it first computes d's statistics. One thread
 * consumes: calls next, position and seek. */
gf_status gf_loader_new(const gf_dataset *d, const gf_transform *t, const gf_loader_options *opt,
                        gf_loader **out);
void gf_loader_free(gf_loader *l);
int64_t gf_loader_batches_per_epoch(const gf_loader *l);
/* The next batch; after an epoch's last one comes the next epoch's first. A batch that
 * fails (a file, samples of different sizes, ...: the message names the samples) is
 * passed over all the same: the next call gives the one after it. */
gf_status gf_loader_next(gf_loader *l, gf_batch *out);
/* The place of the batch the next gf_loader_next returns, to store in a checkpoint. */
void gf_loader_position(const gf_loader *l, int64_t *epoch, int64_t *index);
/* Goes on from batch `index` of epoch `epoch` (work made ahead is dropped). */
gf_status gf_loader_seek(gf_loader *l, int64_t epoch, int64_t index);
void gf_batch_free(gf_batch *b);

/* ---- evaluation: metrics and report images ---- */

/* Metrics accumulate batch by batch (add), then report over everything added. An add
 * that fails (a shape, a label out of range, a non-finite value: the message names it)
 * adds nothing. A predicted class is the argmax of its logits, ties going to the lower
 * class index as numpy's and torch's argmax. */

/* Classification: logits [N, C], int64 labels [N]. */
typedef struct gf_class_metrics gf_class_metrics;

/* n_classes in [1, 32768]; top_k in [1, n_classes]. */
gf_status gf_class_metrics_new(int n_classes, int top_k, gf_class_metrics **out);
void gf_class_metrics_free(gf_class_metrics *m);
void gf_class_metrics_reset(gf_class_metrics *m);
/* logits float32 [N, n_classes]; labels int64 [N], each in [0, n_classes). A sample is
 * a top-k hit when fewer than k classes outrank its true class, ranking by logit and
 * then by lower index (so top-1 is the argmax). */
gf_status gf_class_metrics_add(gf_class_metrics *m, const gf_tensor *logits, const gf_tensor *labels);

typedef struct gf_class_report {
    int n_classes, top_k;
    int64_t samples;
    double accuracy;            /* top-1 */
    double top_k_accuracy;
    const int64_t *confusion;   /* [C][C]: row = true class, column = predicted class */
    const int64_t *support;     /* [C]: samples of each true class */
    /* Per class as scikit-learn's precision_recall_fscore_support with zero_division=0:
     * precision 0 for a class never predicted, recall 0 for one never true, F1 0 where
     * precision + recall is 0. Recall is the per-class accuracy. */
    const double *precision, *recall, *f1;
    /* Macro: the plain mean over the classes that occur as truth or as prediction (the
     * classes sklearn's default `labels` holds); weighted: the mean weighted by support. */
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
} gf_class_report;

/* The report's arrays stay valid until the next call on m. With no samples, all 0. */
void gf_class_metrics_report(gf_class_metrics *m, gf_class_report *out);

/* Segmentation: per-pixel classes against int64 masks [N, H, W]. */
typedef struct gf_seg_metrics gf_seg_metrics;

/* n_classes in [1, 32768]. Mask pixels equal to ignore_index (255 by convention; it
 * must not be a class) count for nothing. */
gf_status gf_seg_metrics_new(int n_classes, int64_t ignore_index, gf_seg_metrics **out);
void gf_seg_metrics_free(gf_seg_metrics *m);
void gf_seg_metrics_reset(gf_seg_metrics *m);
/* pred: float32 logits [N, n_classes, H, W] or an int64 class map [N, H, W] with values
 * in [0, n_classes); mask int64 [N, H, W], each value in [0, n_classes) or ignore_index. */
gf_status gf_seg_metrics_add(gf_seg_metrics *m, const gf_tensor *pred, const gf_tensor *mask);

typedef struct gf_seg_report {
    int n_classes;
    int64_t pixels;             /* counted ones: the mask is not ignore_index */
    double pixel_accuracy;      /* correct / counted; 0 when none is counted */
    /* IoU_c = TP / (TP + FP + FN) over the counted pixels; NaN for a class absent from
     * both truth and prediction. mean_iou averages the others (np.nanmean of iou),
     * NaN when no class is present; n_present is how many it averages. */
    const double *iou;          /* [C] */
    double mean_iou;
    int n_present;
    const int64_t *confusion;   /* [C][C]: row = true class, column = predicted class */
} gf_seg_report;

/* The report's arrays stay valid until the next call on m. */
void gf_seg_metrics_report(gf_seg_metrics *m, gf_seg_report *out);

/* Detection. A box is its centre and size normalised to the image (0..1), as the
 * loader's targets [T, 6] = (image index, class, cx, cy, w, h) are. */
typedef struct gf_detection {
    int64_t image;              /* index in the batch */
    int cls;
    float score;                /* confidence; gf_image_draw_boxes shows none when < 0 */
    float cx, cy, w, h;
} gf_detection;

typedef struct gf_detections {
    int64_t n_images;           /* the batch size, images with no detection included */
    int64_t count;
    gf_detection *items;        /* owned: by image, each image's by descending score */
} gf_detections;

void gf_detections_free(gf_detections *d);

/* Non-maximum suppression per image and class, as torchvision.ops.nms applied to each
 * (image, class) group: in descending score order (ties: the earlier first), a box is
 * dropped when its IoU with a box kept before it in its group exceeds iou_threshold.
 * The survivors stay in d[0..*n), by image and then descending score. */
gf_status gf_nms(gf_detection *d, int64_t *n, double iou_threshold);

typedef struct gf_yolo_options {
    int n_heads;                /* 1 to 8 */
    int n_anchors;              /* A, per head */
    const float *anchors;       /* n_heads * A * (w, h) in input pixels, head by head (YoloV3Loss's attribute) */
    const int *strides;         /* n_heads; NULL: 32, 16, 8 (up to three heads) */
    int input_width, input_height;  /* pixels: each head's grid times its stride */
    double conf_threshold;      /* keep a box when its confidence is above (0.001 for mAP, 0.25 to show) */
    double iou_threshold;       /* NMS per class (0.45, say) */
    int max_per_image;          /* keep the best this many after NMS; 0: all */
} gf_yolo_options;

/* Decodes YOLOv3 heads p_l [N, A * (5 + K), H_l, W_l] (channel a * (5 + K) + c holding
 * tx, ty, tw, th, objectness, K class logits of anchor a, as YoloV3Loss reads them):
 *   cx = (x + 2 sigmoid(tx) - 0.5) * stride / input_width    (x the cell's column)
 *   w  = (2 sigmoid(tw))^2 * anchor_w / input_width,  cy and h alike,
 * class = the argmax of the class logits, confidence = sigmoid(objectness) times
 * sigmoid(that logit) (with K = 1, which the loss does not train, sigmoid(objectness)).
 * Boxes above conf_threshold go through gf_nms. Non-finite head values fail. */
gf_status gf_yolo_detect(const gf_tensor *const *heads, const gf_yolo_options *opt, gf_detections *out);

/* mAP over a data set: average precision per class at one IoU threshold (0.5: mAP@0.5),
 * as PASCAL VOC 2010+ computes it: each class's detections in descending score order
 * (ties: in the order added) are matched to the ground-truth box of their image and class
 * with the highest IoU; one with IoU >= the threshold whose box is not yet taken is a
 * true positive, any other a false positive. AP is the area under the precision-recall
 * curve with precision made monotone (all-point interpolation, VOC 2010+'s, not the
 * 11-point VOC 2007 one nor COCO's 101 points); IoU on the normalised boxes, no "+1". */
typedef struct gf_det_metrics gf_det_metrics;

gf_status gf_det_metrics_new(int n_classes, double iou_threshold, gf_det_metrics **out);
void gf_det_metrics_free(gf_det_metrics *m);
void gf_det_metrics_reset(gf_det_metrics *m);
/* One batch: its detections (image indices in [0, d->n_images)) and its ground truth,
 * float32 [T, 6] rows (image index in the batch, class, cx, cy, w, h); targets may be
 * NULL when the batch has none. Image indices count on from the batches added before. */
gf_status gf_det_metrics_add(gf_det_metrics *m, const gf_detections *d, const gf_tensor *targets);

typedef struct gf_det_report {
    int n_classes;
    int64_t images;
    double map;                 /* mean AP over the classes with ground truth; NaN when none has */
    int n_with_truth;
    const double *ap;           /* [K]; NaN for a class with no ground truth (0 when it has but none is found) */
    const int64_t *n_truth;     /* [K] ground-truth boxes */
    const int64_t *n_detections; /* [K] */
} gf_det_report;

/* The report's arrays stay valid until the next call on m. */
gf_status gf_det_metrics_report(gf_det_metrics *m, gf_det_report *out);

/* Report images are gf_images (RGB) drawn by graft, with a built-in 5x7 pixel font
 * (descenders below) for printable ASCII; other bytes show as '?'. */

/* Writes a 1- or 3-channel image as an 8-bit PNG, atomically: to a temporary beside
 * `path`, synced, then renamed over it, so an existing file is never left half-written. */
gf_status gf_image_save_png(const gf_image *img, const char *path);

typedef struct gf_series {
    const char *name;           /* in the legend */
    const double *x;            /* NULL: 1, 2, ..., n (epochs) */
    const double *y;            /* a NaN or infinite y leaves a gap */
    int n;
} gf_series;

typedef struct gf_chart {
    const char *title, *x_label, *y_label;  /* NULL or "": none */
    const gf_series *series;
    int n_series;               /* 1 to 10 */
    int width, height;          /* pixels, at least 240 x 160; 0 x 0: 640 x 400 */
} gf_chart;

/* Where a chart put its data. The plot area spans columns left..right and rows
 * top..bottom (a black frame just outside it); x maps linearly from x_min at column
 * `left` to x_max at `right`, y from y_min at row `bottom` to y_max at `top`. Ticks sit
 * at x_min, x_min + x_step, ... x_max (and the same for y), each labelled with its value. */
typedef struct gf_chart_layout {
    int left, top, right, bottom;
    double x_min, x_max, x_step, y_min, y_max, y_step;
} gf_chart_layout;

/* Draws a line chart into a new RGB image: white, grid lines at the ticks, each series
 * a 2-pixel line in matplotlib's tab10 colours (series i: #1f77b4, #ff7f0e, #2ca02c,
 * #d62728, #9467bd, #8c564b, #e377c2, #7f7f7f, #bcbd22, #17becf), a legend to the right
 * of the plot area. Axis ranges are 1, 2 or 5 times a power of ten around the data
 * (whole steps for whole-number x). layout may be NULL. */
gf_status gf_plot_lines(const gf_chart *chart, gf_image *out, gf_chart_layout *layout);

/* Where a heat map put its cells: cell (row i, column j) covers columns
 * left + j * cell .. left + (j + 1) * cell - 1 and rows top + i * cell ... alike. */
typedef struct gf_heatmap_layout {
    int left, top, cell;
} gf_heatmap_layout;

/* Draws a confusion matrix [n][n] (n up to 2048; row = true class, column = predicted)
 * as a heat map into a new RGB image: each cell's colour goes from white (0) to dark
 * blue (the largest value) as its value does, the values printed in the cells when the
 * largest fits in one; class labels (n strings, or NULL for the indices) name the rows
 * and columns when the cells are tall enough for text. normalize: each row divided by
 * its sum (the share of each true class predicted as each class). title and layout may
 * be NULL. */
gf_status gf_plot_confusion(const int64_t *confusion, int n, const char *const *labels, const char *title,
                            int normalize, gf_image *out, gf_heatmap_layout *layout);

/* Class c's colour in overlays: PASCAL VOC's colour map (class 0 black, 1 dark red,
 * 2 dark green, ...; the bits of c spread over R, G and B). */
void gf_class_color(int c, uint8_t rgb[3]);

/* Blends class colours over an RGB image: at each pixel whose mask value is a class
 * (not ignore_index), p = floor((1 - alpha) p + alpha colour + 0.5) per channel.
 * mask: int64 [H, W] or [1, H, W], the image's size; negative classes fail. */
gf_status gf_image_draw_mask(gf_image *img, const gf_tensor *mask, double alpha, int64_t ignore_index);

/* Draws boxes on an RGB image, the last first so the first ends on top: each an outline
 * in its class colour, 2 pixels wide inside columns x0 = lround((cx - w / 2) * width) to
 * x1 = lround((cx + w / 2) * width) - 1 and rows alike (clipped to the image), and above
 * it (inside, at the image's top edge) a label on the class colour: the class name
 * (labels[cls] when cls < n_labels, else the index) and the score to two decimals,
 * when it is >= 0. */
gf_status gf_image_draw_boxes(gf_image *img, const gf_detection *d, int64_t n, const char *const *labels,
                              int n_labels);

/* ---- fitting: epochs over data sets ---- */

/* Epochs of training over a loader, each followed by a pass over a validation loader
 * (gf_trainer_evaluate), keeping the best model, a CSV log, plots and checkpoints. An
 * epoch's score ranks epochs: top-1 accuracy (classification) or mean IoU
 * (segmentation), of the validation set, or of the training batches when there is none;
 * mAP@0.5 (detection, the model's outputs its YOLOv3 heads) of the validation set. */
typedef struct gf_fit_options {
    int epochs;                 /* the epochs to have done, a resumed run's included */
    gf_task task;
    int n_classes;
    int64_t ignore_index;       /* segmentation: mask pixels that count for nothing (GF_MASK_IGNORE) */
    const gf_yolo_options *yolo;/* detection: how the heads decode (the input size is each batch's) */
    int sched_per_epoch;        /* a schedule moves on after each epoch (on the validation loss,
                                   which reduce-on-plateau watches); 0: after each step */
    int early_stop;             /* stop after this many epochs without a better score; 0: never */
    const char *best_path;      /* the model, written whenever its score is the best yet (atomically:
                                   the previous best stays whole until the new one is); when no
                                   epoch has a score, the last epoch's */
    const char *checkpoint_path;/* written at each epoch's end; resume with gf_trainer_load_checkpoint */
    const char *log_path;       /* CSV, an epoch a row: epoch, train_loss, train_SCORE, val_loss,
                                   val_SCORE, lr, seconds, data_wait_s (SCORE: top1, miou or
                                   map50; data_wait_s: the training pass's time waiting for the
                                   loader, which is near 0 when it keeps ahead) */
    const char *plot_dir;       /* loss.png, score.png and lr.png, redrawn at each epoch's end */
    int progress;               /* a progress bar on stderr (rate, ETA) and a line an epoch */
} gf_fit_options;

typedef struct gf_fit_result {
    int epochs_run;             /* by this call */
    int epochs_done;            /* in all, a resumed run's included */
    int best_epoch;             /* 1-based; 0 when no epoch had a score */
    double best_score;
    double last_train_loss, last_train_score, last_val_loss, last_val_score;  /* NaN where none */
    double last_data_wait_share;/* of the last training pass, the share spent waiting for data
                                   (NaN when that epoch was run by an earlier, resumed call) */
    int stopped_early;
} gf_fit_result;

/* Trains t on `train` (and scores on `val`, which may be NULL) until o->epochs are
 * done. After gf_trainer_load_checkpoint of a checkpoint gf_fit wrote, it goes on at
 * the epoch after the one it ended (seeking `train` there), as if never stopped. */
gf_status gf_fit(gf_trainer *t, gf_loader *train, gf_loader *val, const gf_fit_options *o, gf_fit_result *out);

#ifdef __cplusplus
}
#endif
#endif
