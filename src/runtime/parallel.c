/* The process group of data parallel training (graft.h, gf_data_parallel): who this
 * process is, read from what its launcher put in the environment, and the NCCL id that
 * lets the processes find each other, passed as hex or through a shared file. */
#include "graft.h"

#include "device.h"
#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One launcher's names for (rank, size, local rank); local may be NULL (then 0 on
 * every machine but where the launcher says more). */
typedef struct rank_vars {
    const char *rank, *size, *local;
} rank_vars;

static const rank_vars launchers[] = {
    {"GRAFT_RANK", "GRAFT_WORLD_SIZE", "GRAFT_LOCAL_RANK"},
    {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
    {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
    {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
};

/* The variable as a number in [lo, hi]; *out untouched when it is not set. */
static gf_status env_int(const char *name, long lo, long hi, int *out)
{
    const char *v = getenv(name);
    if (!v) return GF_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi)
        return gf_fail(GF_ERR_INVALID, "%s='%s' is not a number from %ld to %ld", name, v, lo, hi);
    *out = (int)n;
    return GF_OK;
}

void gf_nccl_id_to_hex(const unsigned char id[GF_NCCL_ID_BYTES], char hex[2 * GF_NCCL_ID_BYTES + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < GF_NCCL_ID_BYTES; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 15];
    }
    hex[2 * GF_NCCL_ID_BYTES] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

gf_status gf_nccl_id_from_hex(const char *hex, const char *what, unsigned char id[GF_NCCL_ID_BYTES])
{
    size_t n = strlen(hex);
    if (n != 2 * GF_NCCL_ID_BYTES)
        return gf_fail(GF_ERR_INVALID, "%s: an NCCL id is %d hex digits, not %zu", what, 2 * GF_NCCL_ID_BYTES, n);
    for (int i = 0; i < GF_NCCL_ID_BYTES; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return gf_fail(GF_ERR_INVALID, "%s: '%c' at %d is not a hex digit", what,
                                             hi < 0 ? hex[2 * i] : hex[2 * i + 1], hi < 0 ? 2 * i : 2 * i + 1);
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    return GF_OK;
}

gf_status gf_nccl_unique_id(unsigned char id[GF_NCCL_ID_BYTES]) { return gf_cuda_nccl_unique_id(id); }

/* Rank 0 makes the id and writes it whole (a temporary file renamed into place). One
 * already there would be an earlier job's, which the other ranks may have read. */
static gf_status write_id_file(const char *path, unsigned char *id)
{
    if (access(path, F_OK) == 0)
        return gf_fail(GF_ERR_INVALID, "GRAFT_NCCL_ID_FILE %s is already there: name a new file for each job (with "
                                       "the job's id in it), or remove it before every rank starts", path);
    gf_status st = gf_nccl_unique_id(id);
    if (st) return st;
    char hex[2 * GF_NCCL_ID_BYTES + 1], tmp[PATH_MAX];
    gf_nccl_id_to_hex(id, hex);
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp)
        return gf_fail(GF_ERR_INVALID, "GRAFT_NCCL_ID_FILE: the path is too long");
    FILE *f = fopen(tmp, "w");
    if (!f) return gf_fail(GF_ERR_IO, "GRAFT_NCCL_ID_FILE: cannot write %s: %s", tmp, strerror(errno));
    int bad = fprintf(f, "%s\n", hex) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        st = gf_fail(GF_ERR_IO, "GRAFT_NCCL_ID_FILE: cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return st;
    }
    return GF_OK;
}

/* The other ranks wait for the file to appear (it appears whole). */
static gf_status read_id_file(const char *path, unsigned char *id)
{
    int timeout = 300;
    gf_status st = env_int("GRAFT_NCCL_ID_TIMEOUT", 0, 86400, &timeout);
    if (st) return st;
    for (long waited_ms = 0;; waited_ms += 100) {
        FILE *f = fopen(path, "r");
        if (f) {
            char line[2 * GF_NCCL_ID_BYTES + 8] = "";
            int got = fgets(line, sizeof line, f) != NULL;
            fclose(f);
            line[strcspn(line, "\n")] = '\0';
            if (!got) return gf_fail(GF_ERR_INVALID, "GRAFT_NCCL_ID_FILE %s is empty", path);
            return gf_nccl_id_from_hex(line, path, id);
        }
        if (errno != ENOENT) return gf_fail(GF_ERR_IO, "GRAFT_NCCL_ID_FILE: cannot read %s: %s", path, strerror(errno));
        if (waited_ms >= timeout * 1000L)
            return gf_fail(GF_ERR_IO, "GRAFT_NCCL_ID_FILE: rank 0 has not written %s in %d s", path, timeout);
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
}

gf_status gf_data_parallel_from_env(gf_data_parallel *out)
{
    memset(out, 0, sizeof *out);
    out->world_size = 1;
    const rank_vars *l = NULL;
    for (size_t i = 0; i < sizeof launchers / sizeof *launchers && !l; i++)
        if (getenv(launchers[i].size)) l = &launchers[i];
    if (!l) return GF_OK;
    gf_status st = env_int(l->size, 1, 1 << 20, &out->world_size);
    if (!st && !getenv(l->rank)) st = gf_fail(GF_ERR_INVALID, "%s is set but %s is not", l->size, l->rank);
    if (!st) st = env_int(l->rank, 0, out->world_size - 1, &out->rank);
    if (!st) st = env_int(l->local, 0, out->world_size - 1, &out->local_rank);
    if (st || out->world_size == 1) return st;

    const char *hex = getenv("GRAFT_NCCL_ID"), *file = getenv("GRAFT_NCCL_ID_FILE");
    if (hex) return gf_nccl_id_from_hex(hex, "GRAFT_NCCL_ID", out->nccl_id);
    if (!file || !*file)
        return gf_fail(GF_ERR_INVALID, "%s=%d processes need GRAFT_NCCL_ID or GRAFT_NCCL_ID_FILE (a path all of them "
                                       "can read) to find each other", l->size, out->world_size);
    return out->rank == 0 ? write_id_file(file, out->nccl_id) : read_id_file(file, out->nccl_id);
}
