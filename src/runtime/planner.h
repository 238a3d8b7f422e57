/* Memory planning: places buffers with known sizes and lifetimes in one arena
 * so that buffers alive at the same time never overlap. */
#ifndef GF_PLANNER_H
#define GF_PLANNER_H

#include <stddef.h>

typedef struct gf_buffer_life {
    size_t size;     /* bytes */
    int first, last; /* steps at which it is written first and read last, inclusive */
    size_t offset;   /* set by gf_plan_arena */
} gf_buffer_life;

#define GF_ARENA_ALIGN 64

/* Sets every buffer's offset; returns the arena's size, or (size_t)-1 when
 * out of memory. Greedy by size, largest first, lowest offset that fits. */
size_t gf_plan_arena(gf_buffer_life *bufs, int n);

#endif
