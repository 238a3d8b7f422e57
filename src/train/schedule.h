/* Learning-rate schedules and the LR range test: plain arithmetic, no graph.
 *
 * A schedule gives the learning rate at each position t (0 first; t counts the
 * gf_schedule_advance calls): the trainer reads gf_schedule_lr, trains, then
 * advances, as PyTorch's scheduler.step() follows optimizer.step(). Each kind is
 * torch.optim.lr_scheduler's namesake with its defaults, in closed form:
 *
 *   constant    base_lr
 *   step        base_lr * gamma^floor(t / step_size)                       StepLR
 *   multistep   base_lr * gamma^(number of milestones <= t)                MultiStepLR
 *   exp         base_lr * gamma^t                                          ExponentialLR
 *   cosine      eta_min + (base_lr - eta_min) * (1 + cos(pi t / T_max)) / 2  CosineAnnealingLR
 *   onecycle    OneCycleLR's two (or three) phases from max_lr / div_factor up to max_lr
 *               and down to max_lr / div_factor / final_div_factor (base_lr unused);
 *               past total_steps the last rate holds (torch raises)    OneCycleLR
 *   plateau     base_lr, times factor (not below min_lr, and only when that lowers it by
 *               more than eps) when the metric has not improved for more than `patience`
 *               advances, then `cooldown` advances without counting   ReduceLROnPlateau
 *
 * Warm-up (any kind): the rate is multiplied by
 *   warmup_start + (1 - warmup_start) * min(t, warmup) / warmup
 * i.e. torch's LinearLR(start_factor=warmup_start, end_factor=1, total_iters=warmup)
 * chained with the schedule (ChainedScheduler semantics: both run from t = 0).
 *
 * Text specs: KIND[:FIELD]..., each FIELD a value for the kind's next positional
 * parameter or NAME=VALUE for any parameter (warmup=N and warmup_start=F for every kind):
 *
 *   constant
 *   step:STEP_SIZE[:GAMMA=0.1]                      "step:10:0.1"
 *   multistep:M1,M2,...[:GAMMA=0.1]                 "multistep:30,60:0.1" (ascending)
 *   exp:GAMMA                                       "exp:0.95"
 *   cosine:T_MAX[:ETA_MIN=0]                        "cosine:100"
 *   onecycle:MAX_LR:TOTAL_STEPS[:PCT_START=0.3]     "onecycle:0.1:1000"
 *       named: anneal=cos|linear, div_factor=25, final_div_factor=1e4, three_phase=0|1
 *   plateau[:FACTOR=0.1[:PATIENCE=10]]              "plateau:0.1:5"
 *       named: mode=min|max, threshold=1e-4, threshold_mode=rel|abs, cooldown=0,
 *              min_lr=0, eps=1e-8
 *   warm-up on any: "cosine:100:warmup=5:warmup_start=0.1" (warmup_start defaults to 1/3)
 *
 * Errors quote the spec and name the bad part. */
#ifndef GF_SCHEDULE_H
#define GF_SCHEDULE_H

#include "graft.h"

#include <stddef.h>
#include <stdint.h>

#define GF_SCHEDULE_MAX_MILESTONES 32

typedef enum gf_schedule_kind {
    GF_SCHEDULE_CONSTANT,
    GF_SCHEDULE_STEP,
    GF_SCHEDULE_MULTISTEP,
    GF_SCHEDULE_EXPONENTIAL,
    GF_SCHEDULE_COSINE,
    GF_SCHEDULE_ONECYCLE,
    GF_SCHEDULE_PLATEAU,
} gf_schedule_kind;

/* Where a schedule is: what a checkpoint keeps. */
typedef struct gf_schedule_state {
    int64_t step;               /* advances so far */
    double plateau_lr;          /* plateau: the current rate */
    double best;                /* plateau: the best metric so far */
    int64_t bad_steps;          /* plateau: advances without improvement */
    int64_t cooldown_left;      /* plateau: advances left without counting */
} gf_schedule_state;

typedef struct gf_schedule {
    gf_schedule_kind kind;
    double base_lr;
    int64_t warmup_steps;       /* 0: no warm-up */
    double warmup_start;        /* the warm-up's first factor, in (0, 1] */
    int64_t step_size;          /* step */
    double gamma;               /* step, multistep, exp */
    int n_milestones;           /* multistep, ascending */
    int64_t milestones[GF_SCHEDULE_MAX_MILESTONES];
    int64_t t_max;              /* cosine */
    double eta_min;
    double max_lr;              /* onecycle */
    int64_t total_steps;
    double pct_start;
    int anneal_linear;          /* 0: cos, 1: linear */
    double div_factor, final_div_factor;
    int three_phase;
    double factor;              /* plateau */
    int64_t patience;
    int mode_max;               /* 0: min, 1: max */
    double threshold;
    int threshold_abs;          /* 0: rel, 1: abs */
    int64_t cooldown;
    double min_lr, eps;
    gf_schedule_state state;
} gf_schedule;

/* Parses a spec (grammar above) for an optimizer whose lr is base_lr; position 0. */
gf_status gf_schedule_parse(const char *spec, double base_lr, gf_schedule *s);

/* The rate at the current position. */
double gf_schedule_lr(const gf_schedule *s);
/* Moves to the next position; `metric` feeds reduce-on-plateau (others ignore it). */
void gf_schedule_advance(gf_schedule *s, double metric);

/* The state as one line of text for a checkpoint
 * ("step=N lr=X best=X bad=N cooldown=N", doubles exact), and back onto a
 * schedule parsed from the same spec. Returns what snprintf returns. */
int gf_schedule_state_format(const gf_schedule *s, char *buf, size_t len);
gf_status gf_schedule_state_parse(gf_schedule *s, const char *text);

/* The LR range test (gf_lr_range_at, gf_lr_range_suggest) is public: graft.h. */

#endif
