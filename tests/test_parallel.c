/* Data parallel's process group without GPUs: the ranks each launcher's variables give
 * (graft's own, Open MPI's, MPICH's, Slurm's), the NCCL id in hex and through a shared
 * file, the mistakes refused with the variable named, and a trainer on the CPU refusing
 * a group of more than one. */
#include "graft.h"
#include "test_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static const char *const all_vars[] = {
    "GRAFT_RANK", "GRAFT_WORLD_SIZE", "GRAFT_LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "SLURM_PROCID", "SLURM_NTASKS",
    "SLURM_LOCALID", "GRAFT_NCCL_ID", "GRAFT_NCCL_ID_FILE", "GRAFT_NCCL_ID_TIMEOUT",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof *all_vars; i++) unsetenv(all_vars[i]);
}

/* A made-up id, and its hex. */
static void sample_id(unsigned char *id, char *hex)
{
    for (int i = 0; i < GF_NCCL_ID_BYTES; i++) id[i] = (unsigned char)(i * 37 + 11);
    gf_nccl_id_to_hex(id, hex);
}

/* Fails, and the message holds `text`. */
static void expect_refused(const char *text, const char *what)
{
    gf_data_parallel dp;
    gf_status st = gf_data_parallel_from_env(&dp);
    CHECK(st != GF_OK, "%s: accepted", what);
    CHECK(st == GF_OK || strstr(gf_last_error(), text), "%s: the message '%s' lacks '%s'", what, gf_last_error(), text);
}

static void test_hex(void)
{
    unsigned char id[GF_NCCL_ID_BYTES], back[GF_NCCL_ID_BYTES];
    char hex[2 * GF_NCCL_ID_BYTES + 1];
    sample_id(id, hex);
    CHECK(strlen(hex) == 2 * GF_NCCL_ID_BYTES && !strncmp(hex, "0b30", 4), "hex of the id: %.8s...", hex);
    CHECK(gf_nccl_id_from_hex(hex, "x", back) == GF_OK && !memcmp(id, back, sizeof id), "hex does not round-trip");
    hex[7] = 'g';
    CHECK(gf_nccl_id_from_hex(hex, "GRAFT_NCCL_ID", back) != GF_OK && strstr(gf_last_error(), "'g' at 7"),
          "a bad digit: %s", gf_last_error());
    CHECK(gf_nccl_id_from_hex("abcd", "GRAFT_NCCL_ID", back) != GF_OK && strstr(gf_last_error(), "not 4"),
          "a short id: %s", gf_last_error());
}

static void test_launchers(void)
{
    unsigned char id[GF_NCCL_ID_BYTES];
    char hex[2 * GF_NCCL_ID_BYTES + 1];
    sample_id(id, hex);
    gf_data_parallel dp;

    clear_env();
    CHECK(gf_data_parallel_from_env(&dp) == GF_OK && dp.world_size == 1 && dp.rank == 0, "no launcher: one process");

    static const char *const sets[][3] = {
        {"GRAFT_RANK", "GRAFT_WORLD_SIZE", "GRAFT_LOCAL_RANK"},
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
        {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
    };
    for (int k = 0; k < 4; k++) {
        clear_env();
        setenv(sets[k][0], "5", 1);
        setenv(sets[k][1], "8", 1);
        setenv(sets[k][2], "1", 1);
        setenv("GRAFT_NCCL_ID", hex, 1);
        gf_status st = gf_data_parallel_from_env(&dp);
        CHECK(st == GF_OK && dp.world_size == 8 && dp.rank == 5 && dp.local_rank == 1 && !memcmp(dp.nccl_id, id, sizeof id),
              "%s: st %d size %d rank %d local %d (%s)", sets[k][1], (int)st, dp.world_size, dp.rank, dp.local_rank,
              st ? gf_last_error() : "");
    }

    clear_env();
    setenv("GRAFT_WORLD_SIZE", "1", 1);
    setenv("GRAFT_RANK", "0", 1);
    CHECK(gf_data_parallel_from_env(&dp) == GF_OK && dp.world_size == 1, "a group of one needs no id");

    clear_env();
    setenv("GRAFT_WORLD_SIZE", "2", 1);
    expect_refused("GRAFT_WORLD_SIZE is set but GRAFT_RANK is not", "no rank");
    setenv("GRAFT_RANK", "2", 1);
    expect_refused("GRAFT_RANK='2' is not a number from 0 to 1", "a rank past the size");
    setenv("GRAFT_RANK", "1x", 1);
    expect_refused("GRAFT_RANK='1x'", "not a number");
    setenv("GRAFT_RANK", "1", 1);
    expect_refused("need GRAFT_NCCL_ID or GRAFT_NCCL_ID_FILE", "no id");
    setenv("GRAFT_NCCL_ID", "00ff", 1);
    expect_refused("GRAFT_NCCL_ID: an NCCL id is 256 hex digits", "a bad id");
    clear_env();
}

/* Rank 1 waits for the file; rank 0 refuses one an earlier job left. */
static void test_id_file(void)
{
    char dir[] = "/tmp/graft-parallel-XXXXXX", path[256];
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    snprintf(path, sizeof path, "%s/nccl-id", dir);
    unsigned char id[GF_NCCL_ID_BYTES];
    char hex[2 * GF_NCCL_ID_BYTES + 1];
    sample_id(id, hex);
    gf_data_parallel dp;

    clear_env();
    setenv("GRAFT_WORLD_SIZE", "2", 1);
    setenv("GRAFT_RANK", "1", 1);
    setenv("GRAFT_NCCL_ID_FILE", path, 1);
    setenv("GRAFT_NCCL_ID_TIMEOUT", "0", 1);
    expect_refused("rank 0 has not written", "no file yet");
    FILE *f = fopen(path, "w");
    fprintf(f, "%s\n", hex);
    fclose(f);
    CHECK(gf_data_parallel_from_env(&dp) == GF_OK && !memcmp(dp.nccl_id, id, sizeof id), "rank 1 reads the id: %s",
          gf_last_error());

    setenv("GRAFT_RANK", "0", 1);
    expect_refused("is already there", "rank 0 and an old file");
    remove(path);
    /* Rank 0 makes the id: where NCCL loads (a CUDA build), it writes it for the others. */
    gf_status st = gf_data_parallel_from_env(&dp);
    if (st == GF_OK) {
        setenv("GRAFT_RANK", "1", 1);
        gf_data_parallel other;
        CHECK(gf_data_parallel_from_env(&other) == GF_OK && !memcmp(dp.nccl_id, other.nccl_id, sizeof id),
              "rank 1 does not read the id rank 0 wrote");
        remove(path);
    } else {
        CHECK(strstr(gf_last_error(), "NCCL") != NULL, "rank 0 without NCCL: '%s' does not say NCCL", gf_last_error());
        CHECK(access(path, F_OK) != 0, "rank 0 wrote a file without an id");
        printf("(this build or machine has no NCCL: %s)\n", gf_last_error());
    }
    clear_env();
    rmdir(dir);
}

static void test_trainer_refuses_cpu(const char *model_path)
{
    gf_model *m;
    if (gf_model_load(model_path, &m)) {
        CHECK(0, "loading %s: %s", model_path, gf_last_error());
        return;
    }
    gf_train_options o;
    gf_train_defaults(&o, GF_OPTIM_SGD);
    o.session.parallel.world_size = 2;
    gf_trainer *t = NULL;
    gf_status st = gf_trainer_new(m, &o, &t);
    CHECK(st != GF_OK && strstr(gf_last_error(), "CUDA devices: this trainer's session is on the CPU"),
          "a CPU trainer of 2 processes: %s", st ? gf_last_error() : "accepted");
    gf_trainer_free(t);
    gf_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_parallel MODEL.onnx\n");
        return 2;
    }
    test_hex();
    test_launchers();
    test_id_file();
    test_trainer_refuses_cpu(argv[1]);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("data parallel process groups: all checks passed\n");
    return failures ? 1 : 0;
}
