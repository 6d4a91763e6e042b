/* Process-wide thread pool with a parallel-for.
 *
 * Workers are created once (lpl_threads_init, or lazily by the first parallel loop)
 * and sleep on a condition variable between loops. A loop is cut into chunks that
 * the caller and the workers take from a shared counter; the caller then sleeps
 * until every worker has left the loop. Under Emscripten the workers come from the
 * prewarmed pthread pool (-sPTHREAD_POOL_SIZE=8), so we never ask for more than 8
 * threads including the caller, and all of them are created at init: creating a
 * pthread while the caller blocks would deadlock there. Blocking waits are fine
 * in a Web Worker, which is where the module runs. */
#include "lpl/core/threads.h"

#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define LPL_SERIAL_POOL 1
#endif

#ifdef LPL_SERIAL_POOL

/* Single-threaded wasm build: everything runs on the caller. */
static int g_used;

lpl_status lpl_threads_init(int n, lpl_error *err)
{
    (void)n;
    (void)err;
    return LPL_OK;
}

int lpl_threads_count(void) { return 1; }
int lpl_threads_used(void) { return g_used; }
void lpl_threads_shutdown(void) {}

void lpl_parallel_for(int n, int min_chunk, lpl_range_fn fn, void *ctx)
{
    (void)min_chunk;
    if (n <= 0)
        return;
    g_used = 1;
    fn(ctx, 0, n);
}

#else

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#ifdef __EMSCRIPTEN__
#include <emscripten/threading.h>
#endif

#define LPL_MAX_THREADS 64
#ifdef __EMSCRIPTEN__
#define LPL_PLATFORM_MAX_THREADS 8 /* = -sPTHREAD_POOL_SIZE of the threaded module */
#else
#define LPL_PLATFORM_MAX_THREADS LPL_MAX_THREADS
#endif

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* workers wait here for a new loop or stop */
    pthread_cond_t done;      /* the caller waits here for workers to finish */
    pthread_mutex_t submit;   /* one loop at a time from outside the pool */
    pthread_t tid[LPL_MAX_THREADS];
    atomic_int nthreads;      /* including the caller; 0 = not started */
    int nworkers_started;
    int stop;
    unsigned long generation; /* bumped for each loop */
    unsigned long start_generation; /* generation when the workers were created */
    int busy;                 /* workers still inside the current loop */
    /* the current loop */
    lpl_range_fn fn;
    void *ctx;
    int n, chunk, nchunks;
    atomic_int next_chunk;
} pool_t;

static pool_t g_pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
    .submit = PTHREAD_MUTEX_INITIALIZER,
};
static atomic_int g_used;
static _Thread_local int t_inside_loop; /* set while this thread runs loop chunks */
static _Thread_local int t_counted;     /* this thread has been counted in g_used */

static int cores_available(void)
{
#ifdef __EMSCRIPTEN__
    int n = emscripten_num_logical_cores();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n > 0 ? (int)n : 1;
}

static void note_thread_used(void)
{
    if (!t_counted) {
        t_counted = 1;
        atomic_fetch_add(&g_used, 1);
    }
}

/* Takes chunks of the current loop until none is left. */
static void run_chunks(pool_t *p)
{
    int c;
    t_inside_loop = 1;
    while ((c = atomic_fetch_add(&p->next_chunk, 1)) < p->nchunks) {
        int begin = c * p->chunk;
        int end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
        note_thread_used();
        p->fn(p->ctx, begin, end);
    }
    t_inside_loop = 0;
}

static void *worker_main(void *arg)
{
    pool_t *p = arg;
    /* not p->generation: a loop may already have started before this thread runs */
    unsigned long seen = p->start_generation;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        run_chunks(p);
        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void stop_workers(pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nworkers_started; i++)
        pthread_join(p->tid[i], NULL);
    p->nworkers_started = 0;
    p->stop = 0;
    p->nthreads = 0;
}

/* Starts n-1 workers; on failure keeps those that started. Caller holds submit. */
static lpl_status start_workers(pool_t *p, int n, lpl_error *err)
{
    lpl_status st = LPL_OK;
    if (p->nthreads)
        stop_workers(p);
    int nw = 0;
    p->start_generation = p->generation;
    for (; nw < n - 1; nw++) {
        if (pthread_create(&p->tid[nw], NULL, worker_main, p) != 0) {
            st = lpl_fail(err, LPL_ERR_UNSUPPORTED,
                          "thread pool: could only start %d of %d threads", nw + 1, n);
            break;
        }
    }
    p->nworkers_started = nw;
    p->nthreads = nw + 1;
    return st;
}

static int clamp_threads(int n)
{
    if (n <= 0)
        n = cores_available();
    if (n > LPL_PLATFORM_MAX_THREADS)
        n = LPL_PLATFORM_MAX_THREADS;
    return n;
}

lpl_status lpl_threads_init(int n, lpl_error *err)
{
    pool_t *p = &g_pool;
    n = clamp_threads(n);
    pthread_mutex_lock(&p->submit);
    lpl_status st = LPL_OK;
    if (p->nthreads != n)
        st = start_workers(p, n, err);
    pthread_mutex_unlock(&p->submit);
    return st;
}

/* Lock-free: kernels ask from inside parallel loops, while the caller holds submit. */
int lpl_threads_count(void)
{
    int n = atomic_load(&g_pool.nthreads);
    return n ? n : clamp_threads(0);
}

int lpl_threads_used(void)
{
    return atomic_load(&g_used);
}

void lpl_threads_shutdown(void)
{
    pool_t *p = &g_pool;
    pthread_mutex_lock(&p->submit);
    if (p->nthreads)
        stop_workers(p);
    pthread_mutex_unlock(&p->submit);
}

static void run_serial(int n, lpl_range_fn fn, void *ctx)
{
    int outer = t_inside_loop;
    t_inside_loop = 1;
    note_thread_used();
    fn(ctx, 0, n);
    t_inside_loop = outer;
}

void lpl_parallel_for(int n, int min_chunk, lpl_range_fn fn, void *ctx)
{
    pool_t *p = &g_pool;
    if (n <= 0)
        return;
    if (min_chunk < 1)
        min_chunk = 1;
    if (t_inside_loop || n < 2 * min_chunk) {
        run_serial(n, fn, ctx);
        return;
    }
    pthread_mutex_lock(&p->submit);
    if (!p->nthreads)
        start_workers(p, clamp_threads(0), NULL); /* on failure: fewer threads, still correct */
    if (p->nthreads == 1) {
        pthread_mutex_unlock(&p->submit);
        run_serial(n, fn, ctx);
        return;
    }
    /* a few chunks per thread so that a thread slowed by the OS does not hold all */
    int chunk = (n + 4 * p->nthreads - 1) / (4 * p->nthreads);
    if (chunk < min_chunk)
        chunk = min_chunk;

    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = chunk;
    p->nchunks = (n + chunk - 1) / chunk;
    atomic_store(&p->next_chunk, 0);
    p->busy = p->nworkers_started;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    run_chunks(p);

    pthread_mutex_lock(&p->lock);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->submit);
}

#endif
