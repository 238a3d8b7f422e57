#include "planner.h"

#include <stdlib.h>

static int larger_first(const void *a, const void *b, void *base)
{
    const gf_buffer_life *x = (const gf_buffer_life *)base + *(const int *)a;
    const gf_buffer_life *y = (const gf_buffer_life *)base + *(const int *)b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

static size_t align_up(size_t n) { return (n + GF_ARENA_ALIGN - 1) / GF_ARENA_ALIGN * GF_ARENA_ALIGN; }

static int overlap_in_time(const gf_buffer_life *a, const gf_buffer_life *b)
{
    return a->first <= b->last && b->first <= a->last;
}

size_t gf_plan_arena(gf_buffer_life *bufs, int n)
{
    int *order = malloc(((size_t)n + 1) * sizeof(int));
    int *placed = malloc(((size_t)n + 1) * sizeof(int)); /* indices, kept sorted by offset */
    if (!order || !placed) {
        free(order);
        free(placed);
        return (size_t)-1;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, larger_first, bufs);
    size_t total = 0;
    int n_placed = 0;
    for (int k = 0; k < n; k++) {
        gf_buffer_life *b = &bufs[order[k]];
        size_t need = align_up(b->size), at = 0;
        /* Walk the placed buffers in offset order, skipping past those that
         * live at the same time and would overlap. */
        for (int p = 0; p < n_placed; p++) {
            const gf_buffer_life *o = &bufs[placed[p]];
            if (!overlap_in_time(b, o)) continue;
            size_t o_end = o->offset + align_up(o->size);
            if (at + need <= o->offset) break;
            if (o_end > at) at = o_end;
        }
        b->offset = at;
        if (at + need > total) total = at + need;
        int p = n_placed++;
        for (; p > 0 && bufs[placed[p - 1]].offset > at; p--) placed[p] = placed[p - 1];
        placed[p] = order[k];
    }
    free(order);
    free(placed);
    return total;
}
