/* Shared helpers of the fuzz targets (tests/fuzz/fuzz_<parser>.c).
 *
 * Each target defines an entry point
 *     int lpl_fuzz_<parser>(const uint8_t *data, size_t size, lpl_error *err)
 * that feeds the bytes to one parser and then exercises whatever the parser
 * returned (getters, every tensor's bytes, a round trip through the writer), so
 * that an offset or length the parser failed to check is touched and caught by
 * AddressSanitizer. It returns 1 if the parser accepted the input and 0 if it
 * refused it (err then holds the parser's message). Invariants that must hold for
 * every accepted input (a decode of an encode gives the text back, ...) abort
 * with a message: that is a finding.
 *
 * Compiled two ways: as a libFuzzer target (LLVMFuzzerTestOneInput calls the entry
 * point; scripts/fuzz) and, with LPL_FUZZ_REPLAY defined, included into the
 * CTest program tests/test_fuzz_regressions.c that replays the committed corpora
 * and regressions in the normal and sanitizer builds. */
#ifndef LPL_FUZZ_COMMON_H
#define LPL_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpl/core/common.h"

/* Aborts with a message when an invariant of an accepted input fails. */
#define FUZZ_ASSERT(cond, ...)                                                       \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__,        \
                    __LINE__, #cond);                                                \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, "\n");                                                   \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* A NUL-terminated copy of n bytes (the JSON parsers take C strings). */
static char *fuzz_cstr(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_ASSERT(s != NULL, "out of memory copying %zu bytes", n);
    if (n)
        memcpy(s, d, n);
    s[n] = '\0';
    return s;
}

/* Multi-file inputs are the files joined by one NUL byte (text formats cannot hold
 * a NUL, so the first one splits): returns the length of the first part and sets
 * *rest / *rest_n to what follows the NUL (empty if there is none). */
static size_t fuzz_split(const uint8_t *d, size_t n, const uint8_t **rest, size_t *rest_n)
{
    const uint8_t *z = n ? memchr(d, 0, n) : NULL;
    if (!z) {
        *rest = d + n;
        *rest_n = 0;
        return n;
    }
    *rest = z + 1;
    *rest_n = n - (size_t)(z - d) - 1;
    return (size_t)(z - d);
}

/* Reads a whole file (NULL if it cannot be read). */
static char *fuzz_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap + 1);
            FUZZ_ASSERT(nb != NULL, "out of memory reading %s", path);
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    *n = len;
    return buf;
}

/* Repository root: $LPL_SOURCE_DIR (CTest sets it), else the working directory. */
static const char *fuzz_root(void)
{
    const char *r = getenv("LPL_SOURCE_DIR");
    return r && *r ? r : ".";
}

#endif
