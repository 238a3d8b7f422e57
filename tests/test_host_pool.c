/* The pool of page-locked batch buffers (src/data/host_pool.c), on an allocator that
 * counts: buffers are used again once given back, the smallest that fits is taken, a
 * failed allocation stops the pool trying, and the pool frees everything exactly once,
 * when its creator and every buffer out have let go (batches may outlive their loader).
 * The loader's use of it is checked in test_data_datasets.py. */
#include "data/host_pool.h"

#include <stdlib.h>

#include "test_check.h"

static int allocs, frees, fail_next;

static gf_status counting_alloc(size_t bytes, void **out)
{
    if (fail_next) {
        *out = NULL;
        return GF_ERR_NOMEM;
    }
    allocs++;
    *out = malloc(bytes);
    return *out ? GF_OK : GF_ERR_NOMEM;
}

static void counting_free(void *p)
{
    frees++;
    free(p);
}

static const host_allocator counting = {counting_alloc, counting_free};

static void reuse_and_fit(void)
{
    gf_host_pool *p = host_pool_new(&counting);
    void *a = host_pool_take(p, 1000), *b = host_pool_take(p, 4000);
    CHECK(a && b && a != b && allocs == 2, "two buffers out: %d allocations", allocs);
    host_pool_give(p, a);
    host_pool_give(p, b);
    void *c = host_pool_take(p, 900);
    CHECK(c == a && allocs == 2, "900 bytes should reuse the 1000-byte buffer (the smallest that fits)");
    void *d = host_pool_take(p, 3000);
    CHECK(d == b && allocs == 2, "3000 bytes should reuse the 4000-byte buffer");
    void *e = host_pool_take(p, 100);
    CHECK(e && e != a && e != b && allocs == 3, "with every buffer out a new one is made");
    host_pool_give(p, c);
    host_pool_give(p, d);
    host_pool_give(p, e);
    host_pool_give(p, e); /* given back twice: ignored */
    host_pool_release(p);
    CHECK(frees == allocs, "released with nothing out: %d of %d buffers freed", frees, allocs);
}

static void outlives_creator(void)
{
    allocs = frees = 0;
    gf_host_pool *p = host_pool_new(&counting);
    void *a = host_pool_take(p, 64);
    host_pool_release(p);
    CHECK(frees == 0, "a buffer out keeps the pool");
    ((char *)a)[63] = 1; /* still ours (AddressSanitizer would say otherwise) */
    host_pool_give(p, a);
    CHECK(frees == 1, "the last buffer back frees the pool: %d freed", frees);
}

static void stops_after_failure(void)
{
    allocs = frees = 0;
    gf_host_pool *p = host_pool_new(&counting);
    fail_next = 1;
    CHECK(!host_pool_take(p, 64), "a failed allocation gives no buffer");
    fail_next = 0;
    CHECK(!host_pool_take(p, 64) && allocs == 0, "after a failure the pool stops trying");
    host_pool_release(p);
    CHECK(frees == 0, "nothing to free");
}

int main(void)
{
    reuse_and_fit();
    outlives_creator();
    stops_after_failure();
    if (failures) printf("%d check(s) failed\n", failures);
    else printf("all checks passed\n");
    return failures != 0;
}
