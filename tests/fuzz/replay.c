/* Runs a fuzz target over files: the findings kept in tests/fuzz/regressions/<target>
 * are replayed by every build, with or without libFuzzer (under the sanitizers in
 * tools/test.sh). Each file must run to its end without a crash; the target itself
 * decides what else must hold. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 1;
}

static int replay_tree(const char *path)
{
    struct stat sb;
    if (stat(path, &sb)) {
        perror(path);
        exit(1);
    }
    if (!S_ISDIR(sb.st_mode)) return replay(path);
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        exit(1);
    }
    int count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char child[4096];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        count += replay_tree(child);
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int count = 0;
    for (int i = 1; i < argc; i++) count += replay_tree(argv[i]);
    printf("replayed %d inputs without a crash\n", count);
    return 0;
}
