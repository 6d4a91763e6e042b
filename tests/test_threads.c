/* Thread pool tests: every index runs exactly once, chunks respect min_chunk, nested
 * loops run serially on the calling thread, more than one thread really works,
 * resizing, shutdown and lazy restart. */
#include "check.h"
#include "lpl/core/threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

enum { N_IDX = 10007 };

typedef struct {
    atomic_int hits[N_IDX];
    atomic_int calls, short_chunks, nested_wrong;
    int min_chunk, n;
} cover_ctx;

static void cover(void *arg, int begin, int end)
{
    cover_ctx *c = arg;
    atomic_fetch_add(&c->calls, 1);
    if (end - begin < c->min_chunk && end != c->n)
        atomic_fetch_add(&c->short_chunks, 1);
    for (int i = begin; i < end; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void test_cover(int threads, int n, int min_chunk)
{
    static cover_ctx c;
    memset(&c, 0, sizeof c);
    c.min_chunk = min_chunk;
    c.n = n;
    lpl_threads_init(threads, NULL);
    lpl_parallel_for(n, min_chunk, cover, &c);
    int bad = -1;
    for (int i = 0; i < N_IDX && bad < 0; i++)
        if (atomic_load(&c.hits[i]) != (i < n))
            bad = i;
    CHECK(bad < 0, "threads=%d n=%d: index %d ran %d times", threads, n, bad,
          bad >= 0 ? atomic_load(&c.hits[bad]) : 0);
    CHECK(atomic_load(&c.short_chunks) == 0, "threads=%d n=%d: chunk below min_chunk %d", threads,
          n, min_chunk);
    CHECK(n == 0 ? atomic_load(&c.calls) == 0 : atomic_load(&c.calls) >= 1, "calls %d",
          atomic_load(&c.calls));
}

/* Each chunk waits (up to 5 s) until two different threads have entered the loop:
 * it only finishes quickly if a worker really runs alongside the caller. */
typedef struct {
    atomic_int entered;
    atomic_uintptr_t first;
} meet_ctx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void meet(void *arg, int begin, int end)
{
    meet_ctx *c = arg;
    uintptr_t me = (uintptr_t)pthread_self(), expected = 0;
    if (!atomic_compare_exchange_strong(&c->first, &expected, me) && expected != me)
        atomic_store(&c->entered, 2);
    double t0 = now_s();
    while (atomic_load(&c->entered) < 2 && now_s() - t0 < 5.0)
        ;
}

static void test_really_parallel(void)
{
    meet_ctx c;
    atomic_init(&c.entered, 0);
    atomic_init(&c.first, 0);
    lpl_threads_init(2, NULL);
    lpl_parallel_for(8, 1, meet, &c);
    CHECK(atomic_load(&c.entered) == 2, "no second thread entered the loop within 5 s");
    CHECK(lpl_threads_used() >= 2, "threads used %d", lpl_threads_used());
}

typedef struct {
    pthread_t outer;
    atomic_int wrong, inner_calls;
} nest_ctx;

static void inner(void *arg, int begin, int end)
{
    nest_ctx *c = arg;
    atomic_fetch_add(&c->inner_calls, 1);
    if (begin != 0 || end != 100)
        atomic_fetch_add(&c->wrong, 1);
}

static void outer(void *arg, int begin, int end)
{
    nest_ctx *c = arg;
    for (int i = begin; i < end; i++) {
        if (lpl_threads_count() != 2) /* must not block inside a loop (kernels ask) */
            atomic_fetch_add(&c->wrong, 1);
        lpl_parallel_for(100, 1, inner, c); /* must run serially, in one call */
    }
}

static void test_nested(void)
{
    nest_ctx c;
    atomic_init(&c.wrong, 0);
    atomic_init(&c.inner_calls, 0);
    lpl_threads_init(2, NULL);
    lpl_parallel_for(16, 1, outer, &c);
    CHECK(atomic_load(&c.inner_calls) == 16, "inner calls %d", atomic_load(&c.inner_calls));
    CHECK(atomic_load(&c.wrong) == 0, "nested loop was split");
}

int main(void)
{
    /* before init: lazy start on the first loop */
    CHECK(lpl_threads_count() >= 1, "count %d", lpl_threads_count());
    test_cover(0, 1000, 1);
    lpl_error err;
    CHECK(lpl_threads_init(3, &err) == LPL_OK, "init 3: %s", err.msg);
    CHECK(lpl_threads_count() == 3, "count %d after init(3)", lpl_threads_count());
    int shapes[][2] = {{0, 1}, {1, 1}, {2, 1}, {7, 3}, {100, 7}, {N_IDX, 1}, {N_IDX, 64}, {5, 100}};
    for (int t = 1; t <= 4; t++)
        for (int s = 0; s < 8; s++)
            test_cover(t, shapes[s][0], shapes[s][1]);
    test_really_parallel();
    test_nested();
    /* many short loops in a row: no lost wake-ups */
    for (int i = 0; i < 2000; i++)
        test_cover(2, 64, 1);
    lpl_threads_init(1, NULL);
    CHECK(lpl_threads_count() == 1, "count %d after init(1)", lpl_threads_count());
    test_cover(1, 5000, 1);
    lpl_threads_shutdown();
    test_cover(0, 3000, 2); /* restarts lazily */
    CHECK(lpl_threads_count() >= 1, "count after restart");
    CHECK(lpl_threads_init(1000, &err) == LPL_OK, "init 1000: %s", err.msg);
    CHECK(lpl_threads_count() <= 64, "count %d not clamped", lpl_threads_count());
    lpl_threads_shutdown();
    return check_report("test_threads");
}
