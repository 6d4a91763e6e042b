/* Error context and checked allocation. */
#include "lpl/core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lpl_status lpl_fail(lpl_error *err, lpl_status code, const char *fmt, ...)
{
    if (err) {
        /* Formatted apart first: callers may pass err->msg itself as an argument. */
        char msg[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        memcpy(err->msg, msg, sizeof msg);
        err->code = code;
    }
    return code;
}

void lpl_error_clear(lpl_error *err)
{
    if (err) {
        err->code = LPL_OK;
        err->msg[0] = '\0';
    }
}

const char *lpl_status_name(lpl_status code)
{
    switch (code) {
    case LPL_OK: return "ok";
    case LPL_ERR_INVALID: return "invalid input";
    case LPL_ERR_IO: return "i/o error";
    case LPL_ERR_FORMAT: return "bad file format";
    case LPL_ERR_NOMEM: return "out of memory";
    case LPL_ERR_NUMERIC: return "numerical error";
    case LPL_ERR_CANCELLED: return "cancelled";
    case LPL_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown error";
}

void *lpl_malloc(size_t n, const char *what, lpl_error *err)
{
    void *p = n ? malloc(n) : malloc(1);
    if (!p)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: %s (%zu bytes)", what, n);
    return p;
}

void *lpl_calloc(size_t count, size_t size, const char *what, lpl_error *err)
{
    if (size && count > SIZE_MAX / size) {
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: %s (%zu x %zu bytes overflows)", what, count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: %s (%zu bytes)", what, count * size);
    return p;
}
