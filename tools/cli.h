/* Helpers shared by the graft subcommands: flag parsing, JSON text, errors.
 * Conventions: a library failure prints "graft: <message>" and exits 1; a usage
 * mistake prints what is wrong and a hint to --help, and exits 2. */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "graft.h"

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_stats(int argc, char **argv);

/* Prints "graft: <gf_last_error()>" to stderr; returns 1 for `return cli_fail();`. */
int cli_fail(void);
/* Prints "graft CMD: <message>" and a --help hint to stderr, exits 2. */
void cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

int cli_is_help(const char *arg);
/* If argv[*i] is `flag` (as "--flag VALUE" or "--flag=VALUE"), stores the value,
 * advances *i past it and returns 1; a missing value is a usage error. */
int cli_flag(const char *cmd, int argc, char **argv, int *i, const char *flag, const char **value);
int cli_int(const char *cmd, const char *flag, const char *text, int min, int max);
double cli_double(const char *cmd, const char *flag, const char *text, double min, double max);
/* Exactly n comma-separated numbers. */
void cli_floats(const char *cmd, const char *flag, const char *text, float *out, int n);

/* Writes s as a JSON string literal, quotes included. */
void cli_json_string(FILE *f, const char *s);
/* "[1,3,224,224]" with symbolic dims by name ("[batch,3,224,224]"); "?" where unknown. */
void cli_io_shape(const gf_io_info *io, char *buf, size_t len);
/* "HxW" or "N" (N x N) for --size; a usage error otherwise. */
void cli_size(const char *cmd, const char *text, int *height, int *width);

/* The concrete shape used when a command has no real data: a symbolic or
 * unknown first dim is `batch`; unknown dims from the third on are spatial:
 * the last one `width`, the others `height`. Returns GF_OK or fails (unknown
 * rank). `t->data` is left NULL. */
gf_status cli_concrete_shape(const gf_io_info *io, int batch, int height, int width, gf_tensor *t);
double cli_now_ms(void);

/* --device cpu, cuda or cuda:N into the session options; a usage error otherwise. */
void cli_device(const char *cmd, const char *text, gf_session_options *opt);
/* --devices cuda:0,cuda:1,... (launch.c): data parallel, one process per device. Sets
 * *rank and opt (the device and the process group) for this process to train, and
 * returns 0; or, where this process launched the others and waited for them, or failed,
 * sets *rank -1 and returns the exit status. A usage error for a bad list. */
int cli_devices(const char *cmd, const char *list, char **argv, gf_session_options *opt, int *rank);

/* The seed that draws graft train's --val-limit subset and graft eval's --limit subset
 * from the same --seed, so that the two score the same samples. */
static inline uint64_t cli_val_subset_seed(uint64_t seed) { return seed ^ 2; }

#endif
