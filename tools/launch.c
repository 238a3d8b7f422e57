/* graft train --devices cuda:0,cuda:1,...: data parallel training, one process per GPU.
 *
 * Started by hand, graft is its own launcher: it makes an NCCL id, starts itself once
 * per device with GRAFT_RANK, GRAFT_WORLD_SIZE, GRAFT_LOCAL_RANK and GRAFT_NCCL_ID set,
 * and waits for them all; when one fails it stops the others. Started by an MPI or
 * Slurm launcher (one process per GPU, on one or many machines: its rank variables are
 * set), each process trains on devices[its local rank], and the processes find each
 * other through GRAFT_NCCL_ID_FILE (gf_data_parallel_from_env says how). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "runtime/device.h"

#define MAX_DEVICES 64

/* "cuda:0,cuda:1" into device indices; a usage error for anything else. */
static int parse_devices(const char *cmd, const char *list, int *index)
{
    int n = 0;
    char text[1024];
    if (snprintf(text, sizeof text, "%s", list) >= (int)sizeof text) cli_usage_error(cmd, "--devices is too long");
    for (char *save = NULL, *name = strtok_r(text, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (n == MAX_DEVICES) cli_usage_error(cmd, "--devices: at most %d devices", MAX_DEVICES);
        if (gf_cuda_parse_device(name, &index[n])) cli_usage_error(cmd, "--devices: %s", gf_last_error());
        if (index[n] < 0) cli_usage_error(cmd, "--devices lists CUDA devices (cuda:N), not '%s'", name);
        for (int k = 0; k < n; k++)
            if (index[k] == index[n]) cli_usage_error(cmd, "--devices names cuda:%d twice", index[n]);
        n++;
    }
    if (!n) cli_usage_error(cmd, "--devices is a list such as cuda:0,cuda:1");
    return n;
}

static void stop_all(const pid_t *pids, int n)
{
    for (int k = 0; k < n; k++)
        if (pids[k] > 0) kill(pids[k], SIGTERM);
}

/* Starts this program once per device and waits for all; the exit status. */
static int launch(char **argv, const int *index, int n)
{
    unsigned char id[GF_NCCL_ID_BYTES];
    char hex[2 * GF_NCCL_ID_BYTES + 1], self[PATH_MAX];
    if (gf_nccl_unique_id(id)) return cli_fail();
    gf_nccl_id_to_hex(id, hex);
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) snprintf(self, sizeof self, "%s", argv[0]);
    else self[len] = '\0';
    pid_t pids[MAX_DEVICES] = {0};
    for (int r = 0; r < n; r++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "graft: cannot start the process of cuda:%d: %s\n", index[r], strerror(errno));
            stop_all(pids, r);
            while (wait(NULL) > 0) {}
            return 1;
        }
        if (pid == 0) {
            char num[16];
            snprintf(num, sizeof num, "%d", r);
            setenv("GRAFT_RANK", num, 1);
            setenv("GRAFT_LOCAL_RANK", num, 1);
            snprintf(num, sizeof num, "%d", n);
            setenv("GRAFT_WORLD_SIZE", num, 1);
            setenv("GRAFT_NCCL_ID", hex, 1);
            execv(self, argv);
            fprintf(stderr, "graft: cannot run %s: %s\n", self, strerror(errno));
            _exit(127);
        }
        pids[r] = pid;
    }
    int rc = 0, left = n;
    while (left > 0) {
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) break;
        int r = 0;
        while (r < n && pids[r] != pid) r++;
        if (r == n) continue;
        pids[r] = 0;
        left--;
        int failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        if (failed && !rc) { /* the first failure: the others would wait for it forever */
            if (WIFEXITED(status)) fprintf(stderr, "graft: rank %d (cuda:%d) exited with status %d; stopping the others\n",
                                           r, index[r], WEXITSTATUS(status));
            else fprintf(stderr, "graft: rank %d (cuda:%d) was killed by signal %d; stopping the others\n", r, index[r],
                         WTERMSIG(status));
            rc = 1;
            stop_all(pids, n);
        }
    }
    return rc;
}

int cli_devices(const char *cmd, const char *list, char **argv, gf_session_options *opt, int *rank)
{
    *rank = -1;
    int index[MAX_DEVICES], n = parse_devices(cmd, list, index), count;
    if (gf_cuda_devices(&count)) return cli_fail();
    for (int k = 0; k < n; k++)
        if (index[k] >= count) {
            gf_fail(GF_ERR_INVALID, "--devices: cuda:%d does not exist: this machine has %d CUDA device%s", index[k],
                    count, count == 1 ? "" : "s");
            return cli_fail();
        }
    gf_data_parallel dp;
    if (gf_data_parallel_from_env(&dp)) return cli_fail();
    if (dp.world_size == 1 && n > 1) return launch(argv, index, n);
    if (dp.local_rank >= n) {
        gf_fail(GF_ERR_INVALID, "--devices lists %d devices, and this process is number %d on its machine", n,
                dp.local_rank);
        return cli_fail();
    }
    opt->device = GF_DEVICE_CUDA;
    opt->device_index = index[dp.local_rank];
    opt->parallel = dp;
    *rank = dp.rank;
    return 0;
}
