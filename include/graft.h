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

typedef struct gf_session_options {
    gf_device device;
    int device_index;
    int num_threads;        /* 0: one per core */
    int profile;            /* collect per-node times */
} gf_session_options;

typedef struct gf_session gf_session;

gf_status gf_session_new(gf_model *m, const gf_session_options *opt, gf_session **out);
void gf_session_free(gf_session *s);

/* Runs the model. `inputs` are in the order of gf_model_input; shapes may differ
 * from the last run (symbolic batch, other image sizes): the session replans.
 * `outputs` receives new tensors owned by the caller, in graph-output order. */
gf_status gf_session_run(gf_session *s, const gf_tensor *const *inputs, gf_tensor **outputs);

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
} gf_loss_kind;

typedef struct gf_loss_options {
    gf_loss_kind kind;
    double label_smoothing;     /* cross-entropy */
    int64_t ignore_index;       /* cross-entropy, NLL: targets with this label count for nothing */
    const float *class_weights; /* cross-entropy, NLL: one per class, or NULL */
    int n_class_weights;
} gf_loss_options;

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
/* Validation: the loss and the model's first output (a new tensor for the caller) in
 * eval form — BatchNormalization on its running statistics, Dropout passing through —
 * on the weights as they are now, training nothing. */
gf_status gf_trainer_evaluate(gf_trainer *t, const gf_tensor *const *inputs, const gf_tensor *targets, double *loss,
                              gf_tensor **output);
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

#ifdef __cplusplus
}
#endif
#endif
