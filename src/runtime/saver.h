/* Saving with more than the model: what training checkpoints need. */
#ifndef GF_SAVER_H
#define GF_SAVER_H

#include "graft.h"

#include <stdio.h>

/* gf_model_save, plus `n_tensors` extra initializers (optimizer state, say: referenced
 * by no node) and `n_meta` metadata_props entries. Their names must differ from every
 * value of the graph and from each other; an extra key replaces the model's own entry
 * of that key. Nothing is copied: the pointers must stay valid during the call. */
gf_status gf_model_save_extra(const gf_model *m, const char *path, int n_tensors, const char *const *names,
                              const gf_tensor *const *tensors, int n_meta, const char *const *keys,
                              const char *const *values);

/* Replaces `path` atomically with what `fill` puts into the stream (it returns 0
 * or an errno value): a temporary beside it, fsynced, renamed over it, the folder
 * fsynced. On failure `path` is as it was, no temporary is left, and the message
 * names `path` and the reason (ENOSPC, EFBIG, ...). */
gf_status gf_write_atomically(const char *path, int (*fill)(FILE *f, void *ctx), void *ctx);

#endif
