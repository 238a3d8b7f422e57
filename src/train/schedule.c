/* Learning-rate schedules and the range test: see schedule.h. The rates are
 * the closed forms of torch's schedulers (torch steps most of them by a
 * recursion on the previous rate, which agrees to rounding). */
#include "schedule.h"

#include "../runtime/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the rates ---- */

static double warmup_factor(const gf_schedule *s, int64_t t)
{
    if (s->warmup_steps <= 0) return 1;
    int64_t done = t < s->warmup_steps ? t : s->warmup_steps;
    return s->warmup_start + (1 - s->warmup_start) * (double)done / (double)s->warmup_steps;
}

static int64_t milestones_passed(const gf_schedule *s, int64_t t)
{
    int passed = 0;
    while (passed < s->n_milestones && s->milestones[passed] <= t) passed++;
    return passed;
}

static double anneal(const gf_schedule *s, double start, double end, double pct)
{
    if (s->anneal_linear) return (end - start) * pct + start;
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1);
}

/* One of OneCycleLR's phases: it anneals from start_lr at the previous phase's
 * end step (0 for the first) to end_lr at its own end step. */
typedef struct onecycle_phase {
    double end_step, start_lr, end_lr;
} onecycle_phase;

static double onecycle_lr(const gf_schedule *s, int64_t t)
{
    double initial = s->max_lr / s->div_factor, lowest = initial / s->final_div_factor;
    if (t > s->total_steps) return lowest;
    double total = (double)s->total_steps;
    onecycle_phase phases[3] = {{s->pct_start * total - 1, initial, s->max_lr}};
    int n = 1;
    if (s->three_phase) phases[n++] = (onecycle_phase){2 * s->pct_start * total - 2, s->max_lr, initial};
    phases[n++] = (onecycle_phase){total - 1, s->three_phase ? initial : s->max_lr, lowest};
    double start_step = 0;
    for (int i = 0;; i++) {
        if ((double)t <= phases[i].end_step || i == n - 1) {
            double pct = ((double)t - start_step) / (phases[i].end_step - start_step);
            return anneal(s, phases[i].start_lr, phases[i].end_lr, pct);
        }
        start_step = phases[i].end_step;
    }
}

/* The rate before warm-up. */
static double schedule_rate(const gf_schedule *s, int64_t t)
{
    switch (s->kind) {
    case GF_SCHEDULE_STEP: return s->base_lr * pow(s->gamma, (double)(t / s->step_size));
    case GF_SCHEDULE_MULTISTEP: return s->base_lr * pow(s->gamma, (double)milestones_passed(s, t));
    case GF_SCHEDULE_EXPONENTIAL: return s->base_lr * pow(s->gamma, (double)t);
    case GF_SCHEDULE_COSINE:
        return s->eta_min + (s->base_lr - s->eta_min) * (1 + cos(M_PI * (double)t / (double)s->t_max)) / 2;
    case GF_SCHEDULE_ONECYCLE: return onecycle_lr(s, t);
    case GF_SCHEDULE_PLATEAU: return s->state.plateau_lr;
    case GF_SCHEDULE_CONSTANT: break;
    }
    return s->base_lr;
}

double gf_schedule_lr(const gf_schedule *s)
{
    return schedule_rate(s, s->state.step) * warmup_factor(s, s->state.step);
}

static int plateau_better(const gf_schedule *s, double metric, double best)
{
    if (s->mode_max) return s->threshold_abs ? metric > best + s->threshold : metric > best * (s->threshold + 1);
    return s->threshold_abs ? metric < best - s->threshold : metric < best * (1 - s->threshold);
}

/* ReduceLROnPlateau.step, in its order. */
static void plateau_advance(gf_schedule *s, double metric)
{
    gf_schedule_state *st = &s->state;
    if (plateau_better(s, metric, st->best)) {
        st->best = metric;
        st->bad_steps = 0;
    } else {
        st->bad_steps++;
    }
    if (st->cooldown_left > 0) {
        st->cooldown_left--;
        st->bad_steps = 0;
    }
    if (st->bad_steps > s->patience) {
        double reduced = st->plateau_lr * s->factor;
        if (reduced < s->min_lr) reduced = s->min_lr;
        if (st->plateau_lr - reduced > s->eps) st->plateau_lr = reduced;
        st->cooldown_left = s->cooldown;
        st->bad_steps = 0;
    }
}

void gf_schedule_advance(gf_schedule *s, double metric)
{
    if (s->kind == GF_SCHEDULE_PLATEAU) plateau_advance(s, metric);
    s->state.step++;
}

/* ---- the state in checkpoints ---- */

int gf_schedule_state_format(const gf_schedule *s, char *buf, size_t len)
{
    const gf_schedule_state *st = &s->state;
    return snprintf(buf, len, "step=%lld lr=%.17g best=%.17g bad=%lld cooldown=%lld", (long long)st->step,
                    st->plateau_lr, st->best, (long long)st->bad_steps, (long long)st->cooldown_left);
}

gf_status gf_schedule_state_parse(gf_schedule *s, const char *text)
{
    long long step, bad, cooldown;
    double lr, best;
    int end = -1;
    if (sscanf(text, "step=%lld lr=%lf best=%lf bad=%lld cooldown=%lld%n", &step, &lr, &best, &bad, &cooldown,
               &end) != 5 || text[end] != '\0' || step < 0 || bad < 0 || cooldown < 0)
        return gf_fail(GF_ERR_INVALID,
                       "schedule state '%s' is not of the form 'step=N lr=X best=X bad=N cooldown=N'", text);
    s->state = (gf_schedule_state){step, lr, best, bad, cooldown};
    return GF_OK;
}

/* ---- parsing specs ---- */

typedef enum field_type { F_INT, F_REAL, F_MILESTONES, F_CHOICE } field_type;

typedef struct field {
    const char *name;
    field_type type;
    size_t offset;           /* of the member of gf_schedule it sets */
    const char *choices[2];  /* F_CHOICE: the words for 0 and 1 */
} field;

#define INT_FIELD(name, member) {name, F_INT, offsetof(gf_schedule, member), {NULL, NULL}}
#define REAL_FIELD(name, member) {name, F_REAL, offsetof(gf_schedule, member), {NULL, NULL}}
#define CHOICE_FIELD(name, member, no, yes) {name, F_CHOICE, offsetof(gf_schedule, member), {no, yes}}
#define MAX_FIELDS 8

typedef struct kind_desc {
    const char *name, *usage;
    gf_schedule_kind kind;
    int n_positional, n_required; /* the first fields may be given in order; the first n_required must be given */
    field fields[MAX_FIELDS];
} kind_desc;

static const kind_desc KINDS[] = {
    {"constant", "constant", GF_SCHEDULE_CONSTANT, 0, 0, {{0}}},
    {"step", "step:STEP_SIZE[:GAMMA]", GF_SCHEDULE_STEP, 2, 1,
     {INT_FIELD("step_size", step_size), REAL_FIELD("gamma", gamma)}},
    {"multistep", "multistep:M1,M2,...[:GAMMA]", GF_SCHEDULE_MULTISTEP, 2, 1,
     {{"milestones", F_MILESTONES, offsetof(gf_schedule, milestones), {NULL, NULL}}, REAL_FIELD("gamma", gamma)}},
    {"exp", "exp:GAMMA", GF_SCHEDULE_EXPONENTIAL, 1, 1, {REAL_FIELD("gamma", gamma)}},
    {"cosine", "cosine:T_MAX[:ETA_MIN]", GF_SCHEDULE_COSINE, 2, 1,
     {INT_FIELD("t_max", t_max), REAL_FIELD("eta_min", eta_min)}},
    {"onecycle", "onecycle:MAX_LR:TOTAL_STEPS[:PCT_START]", GF_SCHEDULE_ONECYCLE, 3, 2,
     {REAL_FIELD("max_lr", max_lr), INT_FIELD("total_steps", total_steps), REAL_FIELD("pct_start", pct_start),
      CHOICE_FIELD("anneal", anneal_linear, "cos", "linear"), REAL_FIELD("div_factor", div_factor),
      REAL_FIELD("final_div_factor", final_div_factor), CHOICE_FIELD("three_phase", three_phase, "0", "1")}},
    {"plateau", "plateau[:FACTOR[:PATIENCE]]", GF_SCHEDULE_PLATEAU, 2, 0,
     {REAL_FIELD("factor", factor), INT_FIELD("patience", patience), CHOICE_FIELD("mode", mode_max, "min", "max"),
      REAL_FIELD("threshold", threshold), CHOICE_FIELD("threshold_mode", threshold_abs, "rel", "abs"),
      INT_FIELD("cooldown", cooldown), REAL_FIELD("min_lr", min_lr), REAL_FIELD("eps", eps)}},
};

static const field COMMON_FIELDS[] = {INT_FIELD("warmup", warmup_steps), REAL_FIELD("warmup_start", warmup_start)};

#define SPEC_MAX 512

static const kind_desc *find_kind(const char *name)
{
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++)
        if (!strcmp(KINDS[k].name, name)) return &KINDS[k];
    return NULL;
}

static const field *find_field(const kind_desc *kind, const char *name)
{
    for (int i = 0; i < MAX_FIELDS && kind->fields[i].name; i++)
        if (!strcmp(kind->fields[i].name, name)) return &kind->fields[i];
    for (size_t i = 0; i < sizeof COMMON_FIELDS / sizeof COMMON_FIELDS[0]; i++)
        if (!strcmp(COMMON_FIELDS[i].name, name)) return &COMMON_FIELDS[i];
    return NULL;
}

static int parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno) return 0;
    *out = v;
    return 1;
}

static int parse_real(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static gf_status parse_milestones(const char *spec, char *text, gf_schedule *s)
{
    s->n_milestones = 0;
    for (char *item = text, *next; item; item = next) {
        if ((next = strchr(item, ','))) *next++ = '\0';
        int64_t m;
        if (!parse_int(item, &m) || m < 0)
            return gf_fail(GF_ERR_INVALID, "schedule '%s': milestone '%s' is not a step number (an integer >= 0)",
                           spec, item);
        if (s->n_milestones == GF_SCHEDULE_MAX_MILESTONES)
            return gf_fail(GF_ERR_INVALID, "schedule '%s': more than %d milestones", spec, GF_SCHEDULE_MAX_MILESTONES);
        if (s->n_milestones && m < s->milestones[s->n_milestones - 1])
            return gf_fail(GF_ERR_INVALID, "schedule '%s': milestones must be ascending; %lld follows %lld", spec,
                           (long long)m, (long long)s->milestones[s->n_milestones - 1]);
        s->milestones[s->n_milestones++] = m;
    }
    return GF_OK;
}

static gf_status set_field(const char *spec, const field *f, char *value, gf_schedule *s)
{
    void *member = (char *)s + f->offset;
    switch (f->type) {
    case F_INT:
        if (!parse_int(value, member))
            return gf_fail(GF_ERR_INVALID, "schedule '%s': %s is '%s'; expected an integer", spec, f->name, value);
        return GF_OK;
    case F_REAL:
        if (!parse_real(value, member))
            return gf_fail(GF_ERR_INVALID, "schedule '%s': %s is '%s'; expected a number", spec, f->name, value);
        return GF_OK;
    case F_MILESTONES: return parse_milestones(spec, value, s);
    case F_CHOICE:
        for (int i = 0; i < 2; i++)
            if (!strcmp(value, f->choices[i])) {
                *(int *)member = i;
                return GF_OK;
            }
        return gf_fail(GF_ERR_INVALID, "schedule '%s': %s is '%s'; expected %s or %s", spec, f->name, value,
                       f->choices[0], f->choices[1]);
    }
    return GF_OK;
}

/* torch's defaults; position 0. */
static void set_defaults(gf_schedule *s, gf_schedule_kind kind, double base_lr)
{
    *s = (gf_schedule){
        .kind = kind, .base_lr = base_lr, .warmup_start = 1.0 / 3, .gamma = 0.1,
        .pct_start = 0.3, .div_factor = 25, .final_div_factor = 1e4,
        .factor = 0.1, .patience = 10, .threshold = 1e-4, .eps = 1e-8,
    };
}

static void reset_state(gf_schedule *s)
{
    s->state = (gf_schedule_state){.plateau_lr = s->base_lr, .best = s->mode_max ? -INFINITY : INFINITY};
}

/* The ranges torch accepts, and the ones the formulas need. */
static gf_status validate(const char *spec, const gf_schedule *s)
{
    const char *bad = NULL;
    switch (s->kind) {
    case GF_SCHEDULE_STEP:
        if (s->step_size < 1) bad = "step_size must be >= 1";
        break;
    case GF_SCHEDULE_EXPONENTIAL:
    case GF_SCHEDULE_MULTISTEP:
        break;
    case GF_SCHEDULE_COSINE:
        if (s->t_max < 1) bad = "T_max must be >= 1";
        break;
    case GF_SCHEDULE_ONECYCLE:
        if (!(s->max_lr > 0)) bad = "max_lr must be > 0";
        else if (s->total_steps < 1) bad = "total_steps must be >= 1";
        else if (!(s->pct_start >= 0 && s->pct_start <= 1)) bad = "pct_start must be in [0, 1]";
        else if (!(s->div_factor > 0 && s->final_div_factor > 0)) bad = "div_factor and final_div_factor must be > 0";
        break;
    case GF_SCHEDULE_PLATEAU:
        if (!(s->factor >= 0 && s->factor < 1)) bad = "factor must be in [0, 1)";
        else if (s->patience < 0 || s->cooldown < 0) bad = "patience and cooldown must be >= 0";
        else if (s->threshold < 0 || s->min_lr < 0 || s->eps < 0) bad = "threshold, min_lr and eps must be >= 0";
        break;
    case GF_SCHEDULE_CONSTANT: break;
    }
    if (!bad && (s->kind == GF_SCHEDULE_STEP || s->kind == GF_SCHEDULE_MULTISTEP || s->kind == GF_SCHEDULE_EXPONENTIAL) &&
        !(s->gamma > 0))
        bad = "gamma must be > 0";
    if (!bad && s->warmup_steps < 0) bad = "warmup must be >= 0 steps";
    if (!bad && !(s->warmup_start > 0 && s->warmup_start <= 1)) bad = "warmup_start must be in (0, 1]";
    if (bad) return gf_fail(GF_ERR_INVALID, "schedule '%s': %s", spec, bad);
    return GF_OK;
}

static gf_status parse_fields(const char *spec, const kind_desc *kind, char *fields, gf_schedule *s)
{
    unsigned given = 0; /* bit i: kind->fields[i] was given */
    int position = 0;
    for (char *item = fields, *next; item; item = next) {
        if ((next = strchr(item, ':'))) *next++ = '\0';
        char *value = strchr(item, '=');
        const field *f;
        if (value) {
            *value++ = '\0';
            if (!(f = find_field(kind, item)))
                return gf_fail(GF_ERR_INVALID, "schedule '%s': %s has no parameter '%s' (%s)", spec, kind->name, item,
                               kind->usage);
        } else {
            if (position >= kind->n_positional)
                return gf_fail(GF_ERR_INVALID, "schedule '%s': unexpected '%s'; %s takes %s (name=value for the others)",
                               spec, item, kind->name, kind->usage);
            f = &kind->fields[position++];
            value = item;
        }
        if (!*value) return gf_fail(GF_ERR_INVALID, "schedule '%s': %s is empty", spec, f->name);
        gf_status st = set_field(spec, f, value, s);
        if (st) return st;
        if (f >= kind->fields && f < kind->fields + MAX_FIELDS) given |= 1u << (f - kind->fields);
    }
    for (int i = 0; i < kind->n_required; i++)
        if (!(given & (1u << i)))
            return gf_fail(GF_ERR_INVALID, "schedule '%s': %s needs %s (%s)", spec, kind->name, kind->fields[i].name,
                           kind->usage);
    return GF_OK;
}

static gf_status unknown_kind(const char *spec, const char *name)
{
    char kinds[512] = "";
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        strcat(kinds, k ? ", " : "");
        strcat(kinds, KINDS[k].usage);
    }
    return gf_fail(GF_ERR_INVALID, "schedule '%s': unknown kind '%s'; expected one of %s", spec, name, kinds);
}

gf_status gf_schedule_parse(const char *spec, double base_lr, gf_schedule *out)
{
    char text[SPEC_MAX];
    if (strlen(spec) >= sizeof text)
        return gf_fail(GF_ERR_INVALID, "schedule '%.40s...' is longer than %d characters", spec, SPEC_MAX - 1);
    strcpy(text, spec);
    char *fields = strchr(text, ':');
    if (fields) *fields++ = '\0';
    const kind_desc *kind = find_kind(text);
    if (!kind) return unknown_kind(spec, text);
    gf_schedule s;
    set_defaults(&s, kind->kind, base_lr);
    gf_status st = parse_fields(spec, kind, fields, &s);
    if (!st) st = validate(spec, &s);
    if (st) return st;
    reset_state(&s);
    *out = s;
    return GF_OK;
}

/* ---- learning-rate range test ---- */

#define RANGE_BETA 0.98
#define RANGE_DIVERGED 4.0

double gf_lr_range_at(double start_lr, double end_lr, int64_t n, int64_t i)
{
    if (n <= 1) return start_lr;
    return start_lr * pow(end_lr / start_lr, (double)i / (double)(n - 1));
}

/* The bias-corrected moving average of the losses, up to where they diverge;
 * returns how many count. */
static int smooth_losses(const double *losses, int n, double *smooth)
{
    double avg = 0, lowest = INFINITY;
    int m = 0;
    for (int i = 0; i < n && isfinite(losses[i]); i++) {
        avg = RANGE_BETA * avg + (1 - RANGE_BETA) * losses[i];
        double s = avg / (1 - pow(RANGE_BETA, i + 1));
        if (m && s > RANGE_DIVERGED * lowest) break;
        if (s < lowest) lowest = s;
        smooth[m++] = s;
    }
    return m;
}

gf_status gf_lr_range_suggest(const double *lrs, const double *losses, int n, double *suggested)
{
    for (int i = 0; i < n; i++)
        if (!(lrs[i] > 0) || (i && !(lrs[i] > lrs[i - 1])))
            return gf_fail(GF_ERR_INVALID, "range test: the learning rates must be positive and increasing (%g at %d)",
                           lrs[i], i);
    double *smooth = malloc((size_t)(n > 0 ? n : 1) * sizeof *smooth);
    if (!smooth) return gf_fail(GF_ERR_NOMEM, "out of memory");
    int m = smooth_losses(losses, n, smooth);
    if (m < 3) {
        free(smooth);
        return gf_fail(GF_ERR_INVALID, "range test: %d of %d losses before the loss diverges; at least 3 are needed", m,
                       n);
    }
    int steepest = 0;
    double steepest_slope = INFINITY;
    for (int i = 0; i < m; i++) {
        int lo = i > 0 ? i - 1 : 0, hi = i < m - 1 ? i + 1 : m - 1;
        double slope = (smooth[hi] - smooth[lo]) / (log(lrs[hi]) - log(lrs[lo]));
        if (slope < steepest_slope) steepest_slope = slope, steepest = i;
    }
    free(smooth);
    *suggested = lrs[steepest];
    return GF_OK;
}
