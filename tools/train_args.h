/* The options of graft train, shared by its two modes: on tensors (train_tensors.c)
 * and on data sets (cmd_train.c). */
#ifndef GRAFT_TRAIN_ARGS_H
#define GRAFT_TRAIN_ARGS_H

#include <stdint.h>

#include "graft.h"

#define MAX_PATTERNS 64

typedef struct train_args {
    const char *model, *inputs, *labels, *out, *log, *freeze_before, *checkpoint, *resume, *sched;
    /* data sets */
    const char *data, *val, *format, *subset, *val_subset, *transform, *augment, *plots;
    const char *devices;        /* --devices: data parallel over these GPUs */
    int device_given;
    double val_split;
    int classes, epochs, early_stop, workers, balanced, skip_bad, limit, val_limit, sched_unit_given;
    float anchors[64];
    int n_anchor_values;
    const char *trainable[MAX_PATTERNS], *freeze[MAX_PATTERNS];
    int n_trainable, n_freeze;
    gf_param_group groups[MAX_PATTERNS];
    char group_patterns[MAX_PATTERNS][256];
    int n_groups;
    int steps, batch, shuffle, threads, quiet, replace_head, checkpoint_every, unfreeze_at, sched_per_epoch;
    int find_lr, find_lr_steps, json;
    double find_lr_start, find_lr_end;
    uint64_t seed;
    gf_train_options opt;
} train_args;

/* graft train on the tensors of --inputs and --labels; returns the exit status. */
int train_on_tensors(train_args *a);

#endif
