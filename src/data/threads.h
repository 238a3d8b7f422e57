/* What the data side's worker threads share: how many to start, and carrying a
 * failure's message from the thread it happened on (messages are per thread). */
#ifndef GF_DATA_THREADS_H
#define GF_DATA_THREADS_H

#include <stdio.h>
#include <unistd.h>

#include "graft.h"
#include "runtime/error.h"

/* asked, or one per core; at least 1 and at most `work` (when work >= 1). */
static inline int data_threads(int asked, int64_t work)
{
    long n = asked > 0 ? asked : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (work >= 1 && n > work) n = (long)work;
    return (int)n;
}

typedef struct carried_error {
    gf_status status;
    char message[1024];
} carried_error;

/* Keeps status and this thread's message; returns status. */
static inline gf_status carry_error(carried_error *e, gf_status status)
{
    e->status = status;
    snprintf(e->message, sizeof e->message, "%s", status ? gf_last_error() : "");
    return status;
}

/* Sets the message on this thread; returns the status. */
static inline gf_status raise_error(const carried_error *e)
{
    return e->status ? gf_fail(e->status, "%s", e->message) : GF_OK;
}

#endif
