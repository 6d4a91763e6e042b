/* A process-wide pool of worker threads with a parallel-for. Natively and under
 * Emscripten with -pthread it runs work on several threads; in the single-threaded
 * wasm build (no __EMSCRIPTEN_PTHREADS__) everything runs on the caller. */
#ifndef LPL_THREADS_H
#define LPL_THREADS_H

#include "lpl/core/common.h"

LPL_BEGIN_DECLS

/* Body of a parallel loop: process indices [begin, end). */
typedef void (*lpl_range_fn)(void *ctx, int begin, int end);

/* Starts (or resizes to) n threads including the caller; n <= 0 means all cores.
 * Returns LPL_OK, or an error if threads cannot be created (the pool then keeps
 * running everything on the caller, which is always correct). */
lpl_status lpl_threads_init(int n, lpl_error *err);

/* Number of threads parallel loops use (>= 1). */
int lpl_threads_count(void);

/* Number of distinct threads that have executed parallel-for work since start
 * (used by tests to show that more than one thread really ran). */
int lpl_threads_used(void);

/* Stops the worker threads. */
void lpl_threads_shutdown(void);

/* Splits [0, n) into contiguous chunks of at least min_chunk indices and runs fn on
 * them in parallel, returning when all are done. Called from inside a parallel loop
 * it runs serially. Chunking never changes results: every output element must be
 * computed by one chunk. */
void lpl_parallel_for(int n, int min_chunk, lpl_range_fn fn, void *ctx);

LPL_END_DECLS

#endif
