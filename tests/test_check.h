/* CHECK(cond, printf-args): counts and reports a failed check, and goes on. For the C
 * test programs that end with "N check(s) failed" or "all checks passed". */
#ifndef GRAFT_TEST_CHECK_H
#define GRAFT_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);      \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
            failures++;                                               \
        }                                                             \
    } while (0)

#endif
