/* Version and build, monotonic time, peak memory, heap in use. */
#include "lpl/core/platform.h"

#include <malloc.h>
#include <time.h>

#ifdef __EMSCRIPTEN__
#include <emscripten/heap.h>
#else
#include <sys/resource.h>
#endif

const char *lpl_build_name(void)
{
#if defined(__EMSCRIPTEN_PTHREADS__) && defined(__wasm_relaxed_simd__)
    return "wasm relaxed-simd threads";
#elif defined(__EMSCRIPTEN_PTHREADS__)
    return "wasm threads";
#elif defined(__EMSCRIPTEN__)
    return "wasm single-thread";
#else
    return "native";
#endif
}

double lpl_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int64_t lpl_peak_memory_bytes(void)
{
#ifdef __EMSCRIPTEN__
    /* Wasm memory only grows, so its current size is the heap's high-water mark. */
    return (int64_t)emscripten_get_heap_size();
#else
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        return (int64_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
    return 0;
#endif
}

int64_t lpl_heap_in_use_bytes(void)
{
#if defined(__EMSCRIPTEN__)
    return (int64_t)mallinfo().uordblks;
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (int64_t)(mi.uordblks + mi.hblkhd); /* small blocks in use + mmap'd large ones */
#else
    return 0;
#endif
}

void lpl_utc_timestamp(char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    if (!strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tmv) && cap)
        out[0] = '\0';
}
