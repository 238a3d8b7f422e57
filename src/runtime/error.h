/* Per-thread error messages behind gf_last_error(). */
#ifndef GF_ERROR_H
#define GF_ERROR_H

#include "graft.h"

/* Sets the message and returns `status`, so a failure reads
 *   return gf_fail(GF_ERR_SHAPE, "input X has %d channels, W expects %d", c, wc); */
gf_status gf_fail(gf_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Puts context in front of the current message: "node 'Conv_3' (Conv): <message>". */
gf_status gf_fail_context(gf_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void gf_clear_error(void);

#endif
