/* What the program asks of the platform: the version and build it is, a monotonic
 * clock, and the process's peak memory. */
#ifndef LPL_PLATFORM_H
#define LPL_PLATFORM_H

#include "lpl/core/common.h"

#include <stddef.h>
#include <stdint.h>

LPL_BEGIN_DECLS

#define LPL_VERSION "0.1.0"

/* "native", "wasm threads" or "wasm single-thread". */
const char *lpl_build_name(void);

/* Seconds on a monotonic clock (for durations only). */
double lpl_now_seconds(void);

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SSZ" into out (cap >= 21); out is "" if it does not fit. */
void lpl_utc_timestamp(char *out, size_t cap);

/* Peak memory of the process so far in bytes (native: max RSS; wasm: heap size
 * high-water). 0 if unknown. */
int64_t lpl_peak_memory_bytes(void);

/* Heap bytes in use now (native glibc: mallinfo2 in-use + mmap'd blocks; wasm:
 * dlmalloc's in-use bytes); 0 where unknown. */
int64_t lpl_heap_in_use_bytes(void);

LPL_END_DECLS

#endif
