/* graft train: the options, and training on a data set (epochs, validation, the best
 * model kept: gf_fit). Training on tensors is train_tensors.c. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "runtime/error.h"

static const char train_usage[] =
    "usage: graft train MODEL --data DIR [--val DIR | --val-split R] [--out finetuned.onnx] [options]\n"
    "       graft train MODEL --inputs X.pb --labels Y.pb [--out trained.onnx] [options]\n"
    "\n"
    "Finetunes MODEL (its BatchNormalization on batch statistics, its Dropout dropping) and\n"
    "writes it back as ONNX. On a data set (--data: a folder of class folders, IDX files such\n"
    "as Fashion-MNIST, CIFAR-10/100 batches, or images with masks for segmentation) it runs\n"
    "epochs, scores each on the validation set (top-1, or mean IoU for segmentation) and\n"
    "keeps the best. On tensors (--inputs/--labels: ONNX TensorProto files, the samples\n"
    "along the first axis) it runs steps, for exact reproductions.\n"
    "\n"
    "data set:  --data DIR  --format folder|idx|cifar10|cifar100|segmentation (auto)  --subset S\n"
    "           --val DIR (its --val-subset S; DIR may be --data's own)  --val-split R (held out of --data)\n"
    "           --limit N  --val-limit N (a seeded random N of the samples)  --classes N (default:\n"
    "           the data set's; a new head when the model's differs)  --transform SPEC (as both\n"
    "           sets are prepared; default: none)  --augment SPEC (the training set's, instead)\n"
    "           --balanced (classes drawn equally often)  --skip-bad (skip unreadable images)\n"
    "           --epochs E (10)  --batch B (32)  --workers W  --early-stop N (epochs without a\n"
    "           better score)  --plots DIR (loss.png, score.png, lr.png)  --log epochs.csv\n"
    "           --checkpoint ckpt.onnx (each epoch)  --resume ckpt.onnx\n"
    "           detection (images/ + labels/ in YOLO's format): the model's outputs are its YOLOv3\n"
    "           heads, trained with YOLOv3's loss, scored by mAP@0.5; --anchors W,H,... (YOLOv3's nine)\n"
    "tensors:   --inputs X.pb --labels Y.pb  --steps N (default: one epoch)  --batch B (32)\n"
    "           --no-shuffle  --log steps.csv (step,epoch,loss,lr[,accuracy])\n"
    "           --checkpoint ckpt.onnx (at the end, and every --checkpoint-every N steps)\n"
    "           --resume ckpt.onnx (--steps counts from the start of the first run)\n"
    "           --find-lr [START:END[:STEPS]] (the LR range test: prints each rate's loss and the\n"
    "           suggested rate, writes no model; 1e-7:10:100)  --unfreeze-at STEP\n"
    "optimizer: --optim sgd|adam|adamw|rmsprop|asgd (sgd)  --lr LR  --momentum M  --dampening D\n"
    "           --nesterov  --weight-decay WD  --betas B1,B2  --eps E  --amsgrad  --alpha A\n"
    "           --centered  --clip-norm N  --seed S\n"
    "loss:      --loss cross-entropy|nll|mse|l1|bce|yolov3 (cross-entropy; yolov3 for a detection\n"
    "           set, over every output, with --anchors)  --label-smoothing S\n"
    "           --ignore-index I (segmentation: 255, the masks' no-class value)\n"
    "schedule:  --sched SPEC (constant, step:N[:G], multistep:M1,M2[:G], exp:G, cosine:T[:MIN],\n"
    "           onecycle:MAX_LR:TOTAL[:PCT], plateau[:FACTOR[:PATIENCE]]; any with :warmup=N)\n"
    "           --sched-unit step|epoch (what a schedule position is: step on tensors, epoch on data)\n"
    "model:     --replace-head N (a new N-class classifier, initialised as PyTorch does)\n"
    "           --bn-momentum M (BatchNormalization's running statistics take M of each batch's,\n"
    "           as PyTorch's momentum; default: the model's own)\n"
    "what:      --trainable GLOB  --freeze GLOB (parameter names; repeatable)\n"
    "           --freeze-before NODE (freeze everything feeding that node)\n"
    "           --group GLOB:LR_SCALE[:WEIGHT_DECAY] (parameters matching train at LR_SCALE times\n"
    "           the rate, with their own weight decay; repeatable, the first match wins)\n"
    "output:    --out FILE  --threads T  --quiet  --json (a summary object on stdout at the end)\n"
    "device:    --device cpu|cuda|cuda:N (where the training graph runs; default cpu)\n"
    "           --devices cuda:0,cuda:1,... (data parallel: a process per GPU, each taking its share\n"
    "           of every epoch in batches of --batch, gradients averaged over NCCL; README,\n"
    "           \"Several GPUs\", says how to launch it with MPI across machines)\n"
    "\n"
    "Transform specs: 'resize:256,center-crop:224,normalize:imagenet',\n"
    "'random-resized-crop:224,hflip,rotate:15,color-jitter:0.4:0.4:0.4,normalize:imagenet',\n"
    "'grey-to-rgb,resize:64x64,normalize:auto' (README, \"Data\"). Weight decay applies to\n"
    "every trainable parameter, as in PyTorch.\n";

#include "train_args.h"



static gf_optimizer parse_optimizer(const char *v)
{
    static const char *const names[] = {"sgd", "adam", "adamw", "rmsprop", "asgd"};
    for (int k = 0; k < 5; k++)
        if (!strcmp(v, names[k])) return (gf_optimizer)k;
    cli_usage_error("train", "--optim is one of sgd, adam, adamw, rmsprop, asgd, not '%s'", v);
}

static gf_loss_kind parse_loss(const char *v)
{
    static const char *const names[] = {"cross-entropy", "nll", "mse", "l1", "bce", "yolov3"};
    for (int k = 0; k < 6; k++)
        if (!strcmp(v, names[k])) return (gf_loss_kind)k;
    cli_usage_error("train", "--loss is one of cross-entropy, nll, mse, l1, bce, yolov3, not '%s'", v);
}

/* GLOB:LR_SCALE[:WEIGHT_DECAY]; the glob is everything before the last one or two fields. */
static void parse_group(const char *v, train_args *a)
{
    if (a->n_groups == MAX_PATTERNS) cli_usage_error("train", "too many --group options");
    char text[256];
    if (snprintf(text, sizeof text, "%s", v) >= (int)sizeof text) cli_usage_error("train", "--group '%s' is too long", v);
    gf_param_group *g = &a->groups[a->n_groups];
    g->weight_decay = -1;
    char *last = strrchr(text, ':');
    if (!last || last == text) cli_usage_error("train", "--group is GLOB:LR_SCALE[:WEIGHT_DECAY], not '%s'", v);
    *last = 0;
    char *before = strrchr(text, ':');
    char *end;
    double x = strtod(last + 1, &end);
    if (*end || last[1] == 0 || x < 0) cli_usage_error("train", "--group '%s': '%s' is not a number >= 0", v, last + 1);
    if (before && before != text) {
        double scale = strtod(before + 1, &end);
        if (!*end && before[1] && scale >= 0) { /* GLOB:SCALE:WD */
            *before = 0;
            g->lr_scale = scale;
            g->weight_decay = x;
        } else g->lr_scale = x;
    } else g->lr_scale = x;
    snprintf(a->group_patterns[a->n_groups], sizeof a->group_patterns[0], "%s", text);
    g->pattern = a->group_patterns[a->n_groups++];
}

/* START:END[:STEPS] for --find-lr. */
static void parse_find_lr(const char *v, train_args *a)
{
    char *end;
    a->find_lr_start = strtod(v, &end);
    if (*end == ':') a->find_lr_end = strtod(end + 1, &end);
    if (*end == ':') a->find_lr_steps = (int)strtol(end + 1, &end, 10);
    if (*end || !(a->find_lr_start > 0) || !(a->find_lr_end > a->find_lr_start) || a->find_lr_steps < 3)
        cli_usage_error("train", "--find-lr is START:END[:STEPS] with 0 < START < END and STEPS >= 3, not '%s'", v);
}

/* --optim first: its defaults apply, then the flags that override them. */
static void parse_args(int argc, char **argv, train_args *a)
{
    const char *v;
    gf_optimizer kind = GF_OPTIM_SGD;
    for (int i = 1; i < argc; i++)
        if (cli_flag("train", argc, argv, &i, "--optim", &v)) kind = parse_optimizer(v);
    *a = (train_args){.batch = 32, .shuffle = 1, .find_lr_start = 1e-7, .find_lr_end = 10, .find_lr_steps = 100};
    gf_train_defaults(&a->opt, kind);
    gf_optim_options *o = &a->opt.optim;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(train_usage, stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--no-shuffle")) a->shuffle = 0;
        else if (!strcmp(argv[i], "--nesterov")) o->nesterov = 1;
        else if (!strcmp(argv[i], "--amsgrad")) o->amsgrad = 1;
        else if (!strcmp(argv[i], "--centered")) o->centered = 1;
        else if (!strcmp(argv[i], "--quiet")) a->quiet = 1;
        else if (!strcmp(argv[i], "--json")) a->json = 1;
        else if (!strcmp(argv[i], "--balanced")) a->balanced = 1;
        else if (!strcmp(argv[i], "--skip-bad")) a->skip_bad = 1;
        else if (cli_flag("train", argc, argv, &i, "--data", &v)) a->data = v;
        else if (cli_flag("train", argc, argv, &i, "--val", &v)) a->val = v;
        else if (cli_flag("train", argc, argv, &i, "--format", &v)) a->format = v;
        else if (cli_flag("train", argc, argv, &i, "--subset", &v)) a->subset = v;
        else if (cli_flag("train", argc, argv, &i, "--val-subset", &v)) a->val_subset = v;
        else if (cli_flag("train", argc, argv, &i, "--transform", &v)) a->transform = v;
        else if (cli_flag("train", argc, argv, &i, "--augment", &v)) a->augment = v;
        else if (cli_flag("train", argc, argv, &i, "--plots", &v)) a->plots = v;
        else if (cli_flag("train", argc, argv, &i, "--val-split", &v)) a->val_split = cli_double("train", "--val-split", v, 0, 1);
        else if (cli_flag("train", argc, argv, &i, "--classes", &v)) a->classes = cli_int("train", "--classes", v, 1, 1 << 24);
        else if (cli_flag("train", argc, argv, &i, "--epochs", &v)) a->epochs = cli_int("train", "--epochs", v, 1, 100000);
        else if (cli_flag("train", argc, argv, &i, "--early-stop", &v)) a->early_stop = cli_int("train", "--early-stop", v, 1, 100000);
        else if (cli_flag("train", argc, argv, &i, "--workers", &v)) a->workers = cli_int("train", "--workers", v, 0, 256);
        else if (cli_flag("train", argc, argv, &i, "--limit", &v)) a->limit = cli_int("train", "--limit", v, 1, 1 << 30);
        else if (cli_flag("train", argc, argv, &i, "--val-limit", &v)) a->val_limit = cli_int("train", "--val-limit", v, 1, 1 << 30);
        else if (cli_flag("train", argc, argv, &i, "--anchors", &v)) {
            int n = 1;
            for (const char *p = v; *p; p++) n += *p == ',';
            if (n % 2 || n > 64) cli_usage_error("train", "--anchors takes pairs of width,height (at most 32 pairs)");
            cli_floats("train", "--anchors", v, a->anchors, n);
            a->n_anchor_values = n;
        }
        else if (!strcmp(argv[i], "--find-lr") && (i + 1 == argc || argv[i + 1][0] == '-' ||
                                                    !strchr(argv[i + 1], ':'))) a->find_lr = 1;
        else if (cli_flag("train", argc, argv, &i, "--find-lr", &v)) {
            a->find_lr = 1;
            parse_find_lr(v, a);
        } else if (cli_flag("train", argc, argv, &i, "--sched", &v)) a->sched = v;
        else if (cli_flag("train", argc, argv, &i, "--sched-unit", &v)) {
            if (strcmp(v, "step") && strcmp(v, "epoch")) cli_usage_error("train", "--sched-unit is step or epoch, not '%s'", v);
            a->sched_per_epoch = !strcmp(v, "epoch");
            a->sched_unit_given = 1;
        } else if (cli_flag("train", argc, argv, &i, "--group", &v)) parse_group(v, a);
        else if (cli_flag("train", argc, argv, &i, "--unfreeze-at", &v))
            a->unfreeze_at = cli_int("train", "--unfreeze-at", v, 1, 1 << 30);
        else if (cli_flag("train", argc, argv, &i, "--optim", &v)) continue;
        else if (cli_flag("train", argc, argv, &i, "--inputs", &v)) a->inputs = v;
        else if (cli_flag("train", argc, argv, &i, "--labels", &v)) a->labels = v;
        else if (cli_flag("train", argc, argv, &i, "--out", &v)) a->out = v;
        else if (cli_flag("train", argc, argv, &i, "--log", &v)) a->log = v;
        else if (cli_flag("train", argc, argv, &i, "--checkpoint", &v)) a->checkpoint = v;
        else if (cli_flag("train", argc, argv, &i, "--checkpoint-every", &v))
            a->checkpoint_every = cli_int("train", "--checkpoint-every", v, 1, 1 << 30);
        else if (cli_flag("train", argc, argv, &i, "--resume", &v)) a->resume = v;
        else if (cli_flag("train", argc, argv, &i, "--replace-head", &v))
            a->replace_head = cli_int("train", "--replace-head", v, 1, 1 << 24);
        else if (cli_flag("train", argc, argv, &i, "--bn-momentum", &v))
            a->opt.bn_momentum = cli_double("train", "--bn-momentum", v, 1e-6, 1);
        else if (cli_flag("train", argc, argv, &i, "--steps", &v)) a->steps = cli_int("train", "--steps", v, 1, 1 << 30);
        else if (cli_flag("train", argc, argv, &i, "--batch", &v)) a->batch = cli_int("train", "--batch", v, 1, 1 << 20);
        else if (cli_flag("train", argc, argv, &i, "--threads", &v)) a->threads = cli_int("train", "--threads", v, 0, 4096);
        else if (cli_flag("train", argc, argv, &i, "--device", &v)) {
            cli_device("train", v, &a->opt.session);
            a->device_given = 1;
        } else if (cli_flag("train", argc, argv, &i, "--devices", &v)) a->devices = v;
        else if (cli_flag("train", argc, argv, &i, "--seed", &v)) a->seed = (uint64_t)cli_double("train", "--seed", v, 0, 1e15);
        else if (cli_flag("train", argc, argv, &i, "--lr", &v)) o->lr = cli_double("train", "--lr", v, 0, 1e6);
        else if (cli_flag("train", argc, argv, &i, "--momentum", &v)) o->momentum = cli_double("train", "--momentum", v, 0, 1);
        else if (cli_flag("train", argc, argv, &i, "--dampening", &v)) o->dampening = cli_double("train", "--dampening", v, 0, 1);
        else if (cli_flag("train", argc, argv, &i, "--weight-decay", &v)) o->weight_decay = cli_double("train", "--weight-decay", v, 0, 1e6);
        else if (cli_flag("train", argc, argv, &i, "--eps", &v)) o->eps = cli_double("train", "--eps", v, 0, 1);
        else if (cli_flag("train", argc, argv, &i, "--alpha", &v)) o->alpha = cli_double("train", "--alpha", v, 0, 1);
        else if (cli_flag("train", argc, argv, &i, "--clip-norm", &v)) o->clip_norm = cli_double("train", "--clip-norm", v, 0, 1e12);
        else if (cli_flag("train", argc, argv, &i, "--betas", &v)) {
            float betas[2];
            cli_floats("train", "--betas", v, betas, 2);
            o->beta1 = betas[0];
            o->beta2 = betas[1];
        } else if (cli_flag("train", argc, argv, &i, "--loss", &v)) a->opt.loss.kind = parse_loss(v);
        else if (cli_flag("train", argc, argv, &i, "--label-smoothing", &v))
            a->opt.loss.label_smoothing = cli_double("train", "--label-smoothing", v, 0, 1);
        else if (cli_flag("train", argc, argv, &i, "--ignore-index", &v))
            a->opt.loss.ignore_index = (int64_t)cli_double("train", "--ignore-index", v, -1e15, 1e15);
        else if (cli_flag("train", argc, argv, &i, "--trainable", &v)) {
            if (a->n_trainable == MAX_PATTERNS) cli_usage_error("train", "too many --trainable patterns");
            a->trainable[a->n_trainable++] = v;
        } else if (cli_flag("train", argc, argv, &i, "--freeze", &v)) {
            if (a->n_freeze == MAX_PATTERNS) cli_usage_error("train", "too many --freeze patterns");
            a->freeze[a->n_freeze++] = v;
        } else if (cli_flag("train", argc, argv, &i, "--freeze-before", &v)) a->freeze_before = v;
        else if (argv[i][0] == '-' && argv[i][1]) cli_usage_error("train", "unknown option '%s'", argv[i]);
        else if (a->model) cli_usage_error("train", "one model at a time ('%s' and '%s')", a->model, argv[i]);
        else a->model = argv[i];
    }
    if (!a->model) cli_usage_error("train", "which model?");
    if (!a->data && (!a->inputs || !a->labels))
        cli_usage_error("train", "train on a data set (--data DIR) or on tensors (--inputs X.pb --labels Y.pb)");
    if (a->data && (a->inputs || a->labels)) cli_usage_error("train", "--data or --inputs/--labels, not both");
    if (a->data && (a->find_lr || a->steps || a->unfreeze_at || a->checkpoint_every))
        cli_usage_error("train", "--find-lr, --steps, --unfreeze-at and --checkpoint-every are for training on tensors");
    if (!a->data && (a->val || a->val_split > 0 || a->epochs || a->augment || a->transform || a->plots))
        cli_usage_error("train", "--val, --val-split, --epochs, --transform, --augment and --plots need --data");
    if (a->val && a->val_split > 0) cli_usage_error("train", "--val or --val-split, not both");
    if (a->devices && a->device_given) cli_usage_error("train", "--device or --devices, not both");
    if (a->devices && !a->data) cli_usage_error("train", "--devices (data parallel) trains on a data set (--data)");
    if (a->data && !a->sched_unit_given) a->sched_per_epoch = 1;
    if (a->data && !a->epochs) a->epochs = 10;
    a->opt.trainable = a->trainable;
    a->opt.n_trainable = a->n_trainable;
    a->opt.freeze = a->freeze;
    a->opt.n_freeze = a->n_freeze;
    a->opt.freeze_before = a->freeze_before;
    a->opt.groups = a->groups;
    a->opt.n_groups = a->n_groups;
    a->opt.seed = a->seed;
    if (a->find_lr && (a->resume || a->sched))
        cli_usage_error("train", "--find-lr sets the rates itself: it goes with neither --resume nor --sched");
    a->opt.session.num_threads = a->threads;
}


/* ---- on a data set ---- */

typedef struct data_run {
    gf_dataset *sets[6];        /* roots and views, freed in reverse: views first */
    int n_sets;
    gf_dataset *train, *val;
    gf_transform *train_transform, *val_transform;
    gf_loader *train_loader, *val_loader;
    gf_model *model;
    gf_trainer *trainer;
} data_run;

static gf_status open_set(data_run *r, const train_args *a, const char *path, const char *subset, int channels,
                          gf_dataset **out)
{
    gf_dataset_options o = {.n_classes = a->classes, .subset = subset, .skip_bad = a->skip_bad, .channels = channels};
    gf_status st = a->format ? gf_data_format_parse(a->format, &o.format) : GF_OK;
    if (!st) st = gf_dataset_open(path, &o, out);
    if (!st) r->sets[r->n_sets++] = *out;
    return st;
}

/* A seeded random `limit` of d's samples, or d itself. */
static gf_status take(data_run *r, gf_dataset *d, int limit, uint64_t seed, gf_dataset **out)
{
    int64_t n = gf_dataset_size(d);
    *out = d;
    if (!limit || limit >= n) return GF_OK;
    gf_dataset *rest;
    gf_status st = gf_dataset_split(d, (double)limit / (double)n, seed, &rest, out);
    if (!st) {
        r->sets[r->n_sets++] = rest;
        r->sets[r->n_sets++] = *out;
    }
    return st;
}

static gf_status open_sets(data_run *r, const train_args *a, int channels)
{
    gf_dataset *train;
    gf_status st = open_set(r, a, a->data, a->subset, channels, &train);
    if (!st && a->val_split > 0) {
        gf_dataset *fit, *held;
        if (!(st = gf_dataset_split(train, a->val_split, a->seed, &fit, &held))) {
            r->sets[r->n_sets++] = fit;
            r->sets[r->n_sets++] = held;
            train = fit;
            r->val = held;
        }
    } else if (!st && a->val) {
        st = open_set(r, a, a->val, a->val_subset, channels, &r->val);
    }
    if (!st) st = take(r, train, a->limit, a->seed ^ 1, &r->train);
    if (!st && r->val) st = take(r, r->val, a->val_limit, cli_val_subset_seed(a->seed), &r->val);
    return st;
}

/* The transforms; normalize:auto takes the training set's statistics for both. */
static gf_status make_transforms(data_run *r, const train_args *a)
{
    gf_status st = a->transform ? gf_transform_parse(a->transform, &r->val_transform) : GF_OK;
    const char *train_spec = a->augment ? a->augment : a->transform;
    if (!st && train_spec) st = gf_transform_parse(train_spec, &r->train_transform);
    int wants = (r->val_transform && gf_transform_wants_stats(r->val_transform)) ||
                (r->train_transform && gf_transform_wants_stats(r->train_transform));
    if (st || !wants) return st;
    double mean[3], std[3];
    float m[3], s[3];
    int c = gf_dataset_channels(r->train);
    if ((st = gf_dataset_stats(r->train, a->threads, mean, std, NULL))) return st;
    for (int k = 0; k < c; k++) m[k] = (float)mean[k], s[k] = (float)std[k];
    if (!a->quiet) fprintf(stderr, "normalize:auto: the training set's mean %.4f std %.4f (channel 0)\n", mean[0], std[0]);
    if (r->val_transform && gf_transform_wants_stats(r->val_transform))
        st = gf_transform_set_normalize(r->val_transform, c, m, s);
    if (!st && r->train_transform && gf_transform_wants_stats(r->train_transform))
        st = gf_transform_set_normalize(r->train_transform, c, m, s);
    return st;
}

/* A detector's outputs are its YOLOv3 heads; the anchors say how many boxes each cell has. */
static gf_status yolo_setup(data_run *r, train_args *a, gf_yolo_options *y, int *n_classes)
{
    int heads = gf_model_num_outputs(r->model), values = a->n_anchor_values ? a->n_anchor_values : 18;
    if (heads > 8 || values % (2 * heads))
        return gf_fail(GF_ERR_INVALID, "%s: %d outputs and %d anchor values do not make YOLO heads (--anchors)", a->model,
                       heads, values);
    *y = (gf_yolo_options){.n_heads = heads, .n_anchors = values / (2 * heads),
                           .anchors = a->n_anchor_values ? a->anchors : gf_yolov3_anchors,
                           .conf_threshold = 0.001, .iou_threshold = 0.45, .max_per_image = 300};
    gf_io_info head = gf_model_output(r->model, 0);
    int own = head.rank == 4 && head.dims[1] > 0 ? (int)(head.dims[1] / y->n_anchors) - 5 : -1;
    *n_classes = a->classes ? a->classes : gf_dataset_num_classes(r->train);
    if (own > 0 && *n_classes > own)
        return gf_fail(GF_ERR_INVALID, "%s: its heads predict %d classes, %s has %d (a detector's head is not replaced)",
                       a->model, own, a->data, *n_classes);
    if (own > 0) *n_classes = own;
    if (a->opt.loss.kind == GF_LOSS_CROSS_ENTROPY) a->opt.loss.kind = GF_LOSS_YOLOV3;
    a->opt.loss.anchors = y->anchors;
    a->opt.loss.n_anchor_values = values;
    return GF_OK;
}

/* The head the data set needs: --replace-head N, or a new one when the model's classes differ. */
static gf_status fit_head(data_run *r, const train_args *a, int *n_classes)
{
    int classes = a->replace_head ? a->replace_head : a->classes ? a->classes : gf_dataset_num_classes(r->train);
    gf_io_info out = gf_model_output(r->model, 0);
    int64_t has = out.rank >= 2 ? out.dims[1] : -1;
    *n_classes = classes;
    if (classes < 1) return gf_fail(GF_ERR_INVALID, "%s: how many classes? (--classes N)", a->data);
    if (!a->replace_head && has == classes) return GF_OK;
    if (!a->quiet && !a->replace_head)
        fprintf(stderr, "%s makes %lld classes, %s has %d: a new %d-class head\n", a->model, (long long)has, a->data,
                classes, classes);
    return gf_model_replace_head(r->model, classes, a->seed);
}

/* "key": value, with null for what was not measured (NaN). */
static void json_number(const char *key, const char *suffix, double v, int last)
{
    printf("\"%s%s\": ", key, suffix);
    isnan(v) ? printf("null") : printf("%.9g", v);
    printf(last ? "" : ", ");
}

static void print_fit(const train_args *a, const gf_fit_result *f, gf_task task, double seconds)
{
    const char *score = task == GF_TASK_SEGMENT ? "miou" : task == GF_TASK_DETECT ? "map50" : "top1";
    if (a->json) {
        printf("{\"epochs\": %d, \"best_epoch\": %d, ", f->epochs_done, f->best_epoch);
        json_number("best_", score, f->best_epoch ? f->best_score : NAN, 0);
        json_number("train_loss", "", f->last_train_loss, 0);
        json_number("train_", score, f->last_train_score, 0);
        json_number("val_loss", "", f->last_val_loss, 0);
        json_number("val_", score, f->last_val_score, 0);
        json_number("data_wait", "", f->last_data_wait_share, 0);
        printf("\"stopped_early\": %s, \"seconds\": %.3f}\n", f->stopped_early ? "true" : "false", seconds);
    } else if (!a->quiet) {
        fprintf(stderr, "%d epochs in %.1f s%s; best %s %.4f at epoch %d\n", f->epochs_run, seconds,
                f->stopped_early ? " (stopped early)" : "", score, f->best_score, f->best_epoch);
    }
}

static int train_on_data(train_args *a)
{
    data_run r = {0};
    gf_status st = gf_model_load(a->model, &r.model);
    if (!st && gf_model_num_inputs(r.model) != 1)
        st = gf_fail(GF_ERR_UNSUPPORTED, "%s: training from the command line takes models with one input (this one has %d)",
                     a->model, gf_model_num_inputs(r.model));
    gf_io_info in = st ? (gf_io_info){0} : gf_model_input(r.model, 0);
    int channels = in.rank == 4 && in.dims[1] > 0 ? (int)in.dims[1] : 0, n_classes = 0;
    if (!st) st = open_sets(&r, a, channels);
    gf_task task = st ? GF_TASK_CLASSIFY : gf_dataset_task(r.train);
    gf_yolo_options yolo;
    if (!st) st = task == GF_TASK_DETECT ? yolo_setup(&r, a, &yolo, &n_classes) : fit_head(&r, a, &n_classes);
    if (!st) st = make_transforms(&r, a);
    if (!st && task == GF_TASK_SEGMENT && a->opt.loss.ignore_index == -100) a->opt.loss.ignore_index = GF_MASK_IGNORE;
    const gf_data_parallel *dp = &a->opt.session.parallel;
    int on_gpu = a->opt.session.device == GF_DEVICE_CUDA;
    gf_loader_options lo = {.batch_size = a->batch, .shuffle = 1, .balanced = a->balanced, .drop_last = 1,
                            .num_workers = a->workers, .seed = a->seed, .shard = dp->rank,
                            .n_shards = dp->world_size, .pinned = on_gpu};
    if (!st) st = gf_loader_new(r.train, r.train_transform, &lo, &r.train_loader);
    if (!st && r.val) {
        gf_loader_options vo = {.batch_size = a->batch, .num_workers = a->workers, .seed = a->seed, .pinned = on_gpu};
        st = gf_loader_new(r.val, r.val_transform, &vo, &r.val_loader);
    }
    if (!st) st = gf_trainer_new(r.model, &a->opt, &r.trainer);
    if (!st && a->sched) st = gf_trainer_set_schedule(r.trainer, a->sched);
    if (!st && a->resume) st = gf_trainer_load_checkpoint(r.trainer, a->resume);
    gf_fit_options fo = {.epochs = a->epochs, .task = task, .n_classes = n_classes,
                         .ignore_index = a->opt.loss.ignore_index, .yolo = task == GF_TASK_DETECT ? &yolo : NULL,
                         .sched_per_epoch = a->sched_per_epoch,
                         .early_stop = a->early_stop, .best_path = a->out, .checkpoint_path = a->checkpoint,
                         .log_path = a->log, .plot_dir = a->plots, .progress = !a->quiet && !a->json};
    gf_fit_result res;
    double t0 = cli_now_ms();
    if (!st) st = gf_fit(r.trainer, r.train_loader, r.val_loader, &fo, &res);
    if (!st) print_fit(a, &res, task, (cli_now_ms() - t0) / 1e3);
    if (!st && a->out && !a->quiet && !a->json) fprintf(stderr, "wrote %s (epoch %d)\n", a->out, res.best_epoch);
    int rc = st ? cli_fail() : 0;
    gf_trainer_free(r.trainer);
    gf_loader_free(r.train_loader);
    gf_loader_free(r.val_loader);
    gf_transform_free(r.train_transform);
    gf_transform_free(r.val_transform);
    while (r.n_sets) gf_dataset_free(r.sets[--r.n_sets]);
    gf_model_free(r.model);
    return rc;
}

/* Every process of a data parallel run trains the same way on its own share; rank 0
 * alone speaks and writes the model, checkpoints, log and plots. Each draws its own
 * Dropout masks; the new head (a->seed) is the same in all. */
static void share_work(train_args *a, int rank)
{
    a->opt.seed = a->seed + (uint64_t)rank * 0x9e3779b97f4a7c15ull;
    if (rank == 0) return;
    a->quiet = 1;
    a->json = 0;
    a->out = a->log = a->checkpoint = a->plots = NULL;
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    parse_args(argc, argv, &a);
    if (a.devices) {
        int rank, rc = cli_devices("train", a.devices, argv, &a.opt.session, &rank);
        if (rank < 0) return rc;
        if (a.opt.session.parallel.world_size > 1) share_work(&a, rank);
    }
    return a.data ? train_on_data(&a) : train_on_tensors(&a);
}
