/* The arena planner never lets two buffers that live at the same time overlap,
 * and reuses memory when lifetimes allow it. */
#include "runtime/planner.h"

#include <stdio.h>
#include <stdlib.h>

static int check_no_overlap(const gf_buffer_life *b, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int time = b[i].first <= b[j].last && b[j].first <= b[i].last;
            int space = b[i].offset < b[j].offset + b[j].size && b[j].offset < b[i].offset + b[i].size;
            if (time && space && b[i].size && b[j].size) {
                printf("FAIL buffers %d [%d,%d] @%zu+%zu and %d [%d,%d] @%zu+%zu overlap\n", i, b[i].first,
                       b[i].last, b[i].offset, b[i].size, j, b[j].first, b[j].last, b[j].offset, b[j].size);
                return 0;
            }
        }
    return 1;
}

int main(void)
{
    int failures = 0;
    srand(1);
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + rand() % 60;
        gf_buffer_life b[60];
        size_t sum = 0;
        for (int i = 0; i < n; i++) {
            b[i].first = rand() % 40;
            b[i].last = b[i].first + rand() % 8;
            b[i].size = (size_t)(rand() % 5000);
            sum += (b[i].size + GF_ARENA_ALIGN - 1) / GF_ARENA_ALIGN * GF_ARENA_ALIGN;
        }
        size_t total = gf_plan_arena(b, n);
        if (!check_no_overlap(b, n)) failures++;
        for (int i = 0; i < n; i++)
            if (b[i].offset % GF_ARENA_ALIGN || b[i].offset + b[i].size > total) {
                printf("FAIL buffer %d at %zu is misaligned or past the arena's end %zu\n", i, b[i].offset, total);
                failures++;
            }
        if (total > sum) {
            printf("FAIL arena %zu is larger than all buffers together %zu\n", total, sum);
            failures++;
        }
    }
    /* A chain a -> b -> c: a and c never live together, so c reuses a's memory. */
    gf_buffer_life chain[3] = {{1000, 0, 1, 0}, {1000, 1, 2, 0}, {1000, 2, 3, 0}};
    size_t total = gf_plan_arena(chain, 3);
    if (total != 2 * 1024) {
        printf("FAIL chain of three 1000-byte buffers planned in %zu bytes, expected 2048\n", total);
        failures++;
    }
    printf("%s: planner (%d failures)\n", failures ? "FAIL" : "PASS", failures);
    return failures != 0;
}
