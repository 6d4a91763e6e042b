/* Shared status codes, error context and element types of LoRA Placement Lab.
 * Library functions never print, exit or abort: they return an lpl_status and
 * leave a message naming the file, field or flag at fault in an lpl_error. */
#ifndef LPL_COMMON_H
#define LPL_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The library's exported functions: each public header wraps its declarations in
 * LPL_BEGIN_DECLS / LPL_END_DECLS, which give them C linkage for a C++ program and
 * default visibility (exported from a shared build made with -fvisibility=hidden).
 * LPL_API marks a single declaration the same way. */
#if defined(_WIN32) && defined(LPL_SHARED)
#if defined(LPL_BUILDING)
#define LPL_API __declspec(dllexport)
#else
#define LPL_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define LPL_API __attribute__((visibility("default")))
#else
#define LPL_API
#endif
#if defined(__GNUC__) && !defined(_WIN32)
#define LPL_VISIBILITY_PUSH_ _Pragma("GCC visibility push(default)")
#define LPL_VISIBILITY_POP_ _Pragma("GCC visibility pop")
#else
#define LPL_VISIBILITY_PUSH_
#define LPL_VISIBILITY_POP_
#endif
#ifdef __cplusplus
#define LPL_BEGIN_DECLS extern "C" { LPL_VISIBILITY_PUSH_
#define LPL_END_DECLS LPL_VISIBILITY_POP_ }
#else
#define LPL_BEGIN_DECLS LPL_VISIBILITY_PUSH_
#define LPL_END_DECLS LPL_VISIBILITY_POP_
#endif

LPL_BEGIN_DECLS

typedef enum {
    LPL_OK = 0,
    LPL_ERR_INVALID = 1,     /* bad argument, impossible config, bad user input */
    LPL_ERR_IO = 2,          /* file could not be opened, read or written */
    LPL_ERR_FORMAT = 3,      /* file content is malformed, truncated or unsupported */
    LPL_ERR_NOMEM = 4,       /* allocation failed or a size is too large to allocate */
    LPL_ERR_NUMERIC = 5,     /* non-finite loss or gradient */
    LPL_ERR_CANCELLED = 6,   /* the caller asked to stop */
    LPL_ERR_UNSUPPORTED = 7  /* valid but not implemented (e.g. a dtype we do not read) */
} lpl_status;

typedef struct {
    lpl_status code;
    char msg[512];
} lpl_error;

/* Records code and a printf-style message in err (which may be NULL); returns code.
 * The arguments may include err->msg itself (a message that wraps the previous one). */
lpl_status lpl_fail(lpl_error *err, lpl_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clears err to LPL_OK with an empty message. */
void lpl_error_clear(lpl_error *err);

/* Short name of a status code ("invalid input", "out of memory", ...). */
const char *lpl_status_name(lpl_status code);

/* malloc/calloc that record "out of memory: <what> (<n> bytes)" in err and return NULL
 * on failure or on a size that overflows. Free with free(). */
void *lpl_malloc(size_t n, const char *what, lpl_error *err);
/* Zeroed count * size bytes; the product is checked for overflow before allocating. */
void *lpl_calloc(size_t count, size_t size, const char *what, lpl_error *err);

/* Element types, numbered as ggml/GGUF number them. */
typedef enum {
    LPL_F32 = 0,
    LPL_F16 = 1,
    LPL_Q4_0 = 2,
    LPL_Q8_0 = 8,
    LPL_BF16 = 30
} lpl_dtype;

#define LPL_QK 32 /* weights per Q8_0 / Q4_0 block */

#define LPL_PI 3.14159265358979323846

/* n rounded up to a multiple of 64 bytes (a cache line, and SIMD-aligned). */
static inline size_t lpl_align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* A 2-D weight matrix W[rows][cols], row-major, rows contiguous. For linear layers
 * rows = output features and cols = input features (the layout of llama.cpp's GGUF
 * files, i.e. the transpose of GPT-2's Conv1D [in, out]); quantized types need
 * cols % 32 == 0 and quantize along each row. */
typedef struct {
    lpl_dtype type;
    int rows;
    int cols;
    void *data;
} lpl_matrix;

LPL_END_DECLS

#endif
