/* Minimal test helpers: every failed check is counted and printed, and the test
 * program exits non-zero if any check failed. */
#ifndef LPL_TEST_CHECK_H
#define LPL_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lpl/core/files.h"

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        check_count++;                                                          \
        if (!(cond)) {                                                          \
            check_failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol, what)                                     \
    do {                                                                        \
        double _a = (a), _b = (b);                                              \
        CHECK(fabs(_a - _b) <= (atol) + (rtol) * fabs(_b) && !isnan(_a),        \
              "%s: got %.9g want %.9g", what, _a, _b);                          \
    } while (0)

/* A test input file's bytes, NUL-terminated (lpl_read_file); p = NULL, n = 0 and a
 * failed check when it cannot be read. */
typedef struct {
    char *p;
    size_t n;
} check_blob;

static inline check_blob check_slurp(const char *path)
{
    check_blob b = {0};
    lpl_error err = {0};
    if (lpl_read_file(path, &b.p, &b.n, &err) != LPL_OK) {
        CHECK(0, "cannot read %s: %s", path, err.msg);
        b.p = NULL, b.n = 0;
    }
    return b;
}

static inline int check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
