#include "cli.h"

#include "runtime/device.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/error.h"

int cli_fail(void)
{
    fprintf(stderr, "graft: %s\n", gf_last_error());
    return 1;
}

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "graft %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'graft %s --help'.\n", cmd);
    exit(2);
}

int cli_is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

int cli_flag(const char *cmd, int argc, char **argv, int *i, const char *flag, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(flag);
    if (strncmp(arg, flag, n)) return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n]) return 0;
    if (*i + 1 >= argc) cli_usage_error(cmd, "%s needs a value", flag);
    *value = argv[++*i];
    return 1;
}

int cli_int(const char *cmd, const char *flag, const char *text, int min, int max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        cli_usage_error(cmd, "%s wants a whole number from %d to %d, not '%s'", flag, min, max, text);
    return (int)v;
}

double cli_double(const char *cmd, const char *flag, const char *text, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= min && v <= max))
        cli_usage_error(cmd, "%s wants a number from %g to %g, not '%s'", flag, min, max, text);
    return v;
}

void cli_floats(const char *cmd, const char *flag, const char *text, float *out, int n)
{
    const char *p = text;
    for (int k = 0; k < n; k++) {
        char *end;
        errno = 0;
        out[k] = strtof(p, &end);
        if (errno || end == p || (k + 1 < n ? *end != ',' : *end != 0))
            cli_usage_error(cmd, "%s wants %d comma-separated numbers, not '%s'", flag, n, text);
        p = end + 1;
    }
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_io_shape(const gf_io_info *io, char *buf, size_t len)
{
    if (io->rank < 0) {
        snprintf(buf, len, "?");
        return;
    }
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < io->rank && at < len; d++) {
        const char *sep = d ? "," : "";
        if (io->dims[d] >= 0) at += (size_t)snprintf(buf + at, len - at, "%s%lld", sep, (long long)io->dims[d]);
        else if (io->dim_names && io->dim_names[d]) at += (size_t)snprintf(buf + at, len - at, "%s%s", sep, io->dim_names[d]);
        else at += (size_t)snprintf(buf + at, len - at, "%s?", sep);
    }
    if (at < len) snprintf(buf + at, len - at, "]");
}

void cli_size(const char *cmd, const char *text, int *height, int *width)
{
    char *end;
    errno = 0;
    long h = strtol(text, &end, 10), w = h;
    if (!errno && end != text && (*end == 'x' || *end == 'X')) {
        const char *rest = end + 1;
        w = strtol(rest, &end, 10);
        if (end == rest) w = 0;
    }
    if (errno || end == text || *end || h < 1 || w < 1 || h > 65536 || w > 65536)
        cli_usage_error(cmd, "--size wants HEIGHTxWIDTH or one number, each from 1 to 65536, not '%s'", text);
    *height = (int)h;
    *width = (int)w;
}

gf_status cli_concrete_shape(const gf_io_info *io, int batch, int height, int width, gf_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (io->rank < 0 || io->rank > GF_MAX_RANK)
        return gf_fail(GF_ERR_UNSUPPORTED, "input '%s' has no known rank; give real data with 'graft run --input'",
                       io->name);
    t->dtype = io->dtype;
    t->rank = io->rank;
    for (int d = 0; d < io->rank; d++) {
        if (io->dims[d] >= 0) t->dims[d] = io->dims[d];
        else if (d == 0) t->dims[d] = batch;
        else if (io->rank >= 3 && d >= 2) t->dims[d] = d == io->rank - 1 ? width : height; /* spatial */
        else t->dims[d] = batch;
    }
    return GF_OK;
}

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void cli_device(const char *cmd, const char *text, gf_session_options *opt)
{
    int index;
    if (gf_cuda_parse_device(text, &index)) cli_usage_error(cmd, "%s", gf_last_error());
    opt->device = index < 0 ? GF_DEVICE_CPU : GF_DEVICE_CUDA;
    opt->device_index = index < 0 ? 0 : index;
}
