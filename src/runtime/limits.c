#include "limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>

static size_t memory_limit = SIZE_MAX;
static pthread_once_t memory_once = PTHREAD_ONCE_INIT;

static void lower_to(size_t *limit, unsigned long long v)
{
    if (v > 0 && v < *limit) *limit = (size_t)v;
}

/* GRAFT_MEMORY_LIMIT: bytes, or a number with K, M or G (powers of 1024); 0 if unset or
 * not such a number (a warning then: a budget that silently did nothing would mislead). */
static unsigned long long memory_limit_from_env(void)
{
    const char *text = getenv("GRAFT_MEMORY_LIMIT");
    if (!text || !*text) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (shift) end++;
    if (errno || end == text || *end || v == 0 || v > (~0ull >> shift)) {
        fprintf(stderr, "graft: warning: GRAFT_MEMORY_LIMIT='%s' is not a number of bytes (such as 512M or 4G); "
                        "ignored\n", text);
        return 0;
    }
    return v << shift;
}

static void find_memory_limit(void)
{
    size_t limit = SIZE_MAX;
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        lower_to(&limit, ((unsigned long long)si.totalram + si.totalswap) * (si.mem_unit ? si.mem_unit : 1));
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) lower_to(&limit, rl.rlim_cur);
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) lower_to(&limit, rl.rlim_cur);
    /* cgroup v2 (containers): "max" or a number of bytes */
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    unsigned long long v;
    if (f) {
        if (fscanf(f, "%llu", &v) == 1) lower_to(&limit, v);
        fclose(f);
    }
    lower_to(&limit, memory_limit_from_env());
    memory_limit = limit;
}

size_t gf_memory_limit(void)
{
    pthread_once(&memory_once, find_memory_limit);
    return memory_limit;
}

char *gf_bytes_str(double bytes, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%.0f bytes", bytes);
        return buf;
    }
    int u = -1;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, len, "%.1f %s", bytes, units[u]);
    return buf;
}
