/* graft: the command-line tool. Dispatches to one subcommand per file. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"info", cmd_info, "inputs, outputs, ops, parameters, FLOPs and memory of a model"},
    {"run", cmd_run, "run a model on .pb tensors or classify images"},
    {"bench", cmd_bench, "latency and throughput, with a per-op profile"},
    {"train", cmd_train, "finetune on a data set or on tensors; writes the model as ONNX"},
    {"eval", cmd_eval, "accuracy, per-class scores, confusion, mIoU or mAP on a data set"},
    {"stats", cmd_stats, "per-channel mean and std of a data set, for normalize"},
};

static void help(FILE *f)
{
    fprintf(f, "usage: graft COMMAND MODEL [options]\n\ncommands:\n");
    for (size_t k = 0; k < sizeof commands / sizeof *commands; k++)
        fprintf(f, "  %-6s %s\n", commands[k].name, commands[k].summary);
    fprintf(f, "\n'graft COMMAND --help' describes a command's options; --json gives machine-readable output.\n"
               "graft --version prints the version and the backends.\n");
}

int main(int argc, char **argv)
{
    /* A file-size limit (ulimit -f) then fails the write with EFBIG, which the saver
     * reports naming the file, instead of killing the process mid-write. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("graft %s (backends: %s)\n", GRAFT_VERSION, gf_backends());
        return 0;
    }
    if (!strcmp(cmd, "help") || cli_is_help(cmd)) {
        if (!strcmp(cmd, "help") && argc > 2) {
            for (size_t k = 0; k < sizeof commands / sizeof *commands; k++)
                if (!strcmp(argv[2], commands[k].name)) {
                    char *args[] = {argv[2], "--help", NULL};
                    return commands[k].run(2, args);
                }
        }
        help(stdout);
        return 0;
    }
    for (size_t k = 0; k < sizeof commands / sizeof *commands; k++)
        if (!strcmp(cmd, commands[k].name)) return commands[k].run(argc - 1, argv + 1);
    fprintf(stderr, "graft: unknown command '%s'\n", cmd);
    help(stderr);
    return 2;
}
