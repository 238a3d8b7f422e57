#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define GF_ERROR_CAP 4096

static _Thread_local char last_error[GF_ERROR_CAP];

const char *gf_last_error(void) { return last_error; }

void gf_clear_error(void) { last_error[0] = '\0'; }

gf_status gf_fail(gf_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

gf_status gf_fail_context(gf_status status, const char *fmt, ...)
{
    char prefix[GF_ERROR_CAP], old[GF_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    snprintf(last_error, sizeof last_error, "%s: %s", prefix, old);
    return status;
}
