/* GGUF v3 reader and writer (the llama.cpp container). The reader validates the
 * whole header against the file size before anything is used; tensor data is
 * accessed in place (mmap natively, or a caller-provided memory buffer). */
#ifndef LPL_GGUF_H
#define LPL_GGUF_H

#include "lpl/core/common.h"

LPL_BEGIN_DECLS

typedef enum {
    LPL_GGUF_UINT8 = 0, LPL_GGUF_INT8 = 1, LPL_GGUF_UINT16 = 2, LPL_GGUF_INT16 = 3,
    LPL_GGUF_UINT32 = 4, LPL_GGUF_INT32 = 5, LPL_GGUF_FLOAT32 = 6, LPL_GGUF_BOOL = 7,
    LPL_GGUF_STRING = 8, LPL_GGUF_ARRAY = 9, LPL_GGUF_UINT64 = 10, LPL_GGUF_INT64 = 11,
    LPL_GGUF_FLOAT64 = 12
} lpl_gguf_type;

typedef struct {
    const char *name;
    int n_dims;
    int64_t ne[4];        /* ggml order: ne[0] is the contiguous dimension */
    lpl_dtype type;
    uint64_t offset;      /* relative to the data section */
    const void *data;     /* resolved pointer */
    size_t nbytes;
} lpl_gguf_tensor;

typedef struct lpl_gguf lpl_gguf;

/* Opens and validates a GGUF file (mapped read-only). NULL with err set (naming the
 * file and the problem) on a missing, truncated or malformed file. */
lpl_gguf *lpl_gguf_open(const char *path, lpl_error *err);
/* Same over bytes in memory; copy != 0 makes a private copy, else data must outlive it. */
lpl_gguf *lpl_gguf_open_memory(const void *data, size_t size, int copy, lpl_error *err);
/* Unmaps or frees the file; NULL is a no-op. */
void lpl_gguf_close(lpl_gguf *g);

/* Header facts: format version, size in bytes, number of key/values, and key i
 * with its value type (i in 0 .. n_kv-1). */
uint32_t lpl_gguf_version(const lpl_gguf *g);
size_t lpl_gguf_file_size(const lpl_gguf *g);
int64_t lpl_gguf_n_kv(const lpl_gguf *g);
const char *lpl_gguf_key(const lpl_gguf *g, int64_t i);
lpl_gguf_type lpl_gguf_kv_type(const lpl_gguf *g, int64_t i);
/* Index of a key, or -1. */
int64_t lpl_gguf_find_key(const lpl_gguf *g, const char *key);
/* Typed getters: LPL_ERR_FORMAT if the key is missing or has another type. Integer
 * getters accept any integer type whose value fits. */
lpl_status lpl_gguf_get_u32(const lpl_gguf *g, const char *key, uint32_t *out, lpl_error *err);
lpl_status lpl_gguf_get_f32(const lpl_gguf *g, const char *key, float *out, lpl_error *err);
lpl_status lpl_gguf_get_str(const lpl_gguf *g, const char *key, const char **s, size_t *len, lpl_error *err);
/* Arrays: element type and length; string elements by index (NUL-terminated copies);
 * numeric arrays as a pointer to the raw little-endian elements inside the file (may
 * be unaligned: read with memcpy; NULL for string arrays). */
lpl_status lpl_gguf_get_arr(const lpl_gguf *g, const char *key, lpl_gguf_type *elem_type,
                            uint64_t *n, const void **raw, lpl_error *err);
lpl_status lpl_gguf_get_arr_str(const lpl_gguf *g, const char *key, uint64_t i, const char **s,
                                size_t *len, lpl_error *err);

/* Tensor infos in file order: their count, and info i (NULL out of range). */
int64_t lpl_gguf_n_tensors(const lpl_gguf *g);
const lpl_gguf_tensor *lpl_gguf_tensor_at(const lpl_gguf *g, int64_t i);
/* Tensor by name, or NULL. */
const lpl_gguf_tensor *lpl_gguf_find_tensor(const lpl_gguf *g, const char *name);

/* Writer: collects key/values and tensors, then writes a v3 file with 32-byte alignment. */
typedef struct lpl_gguf_writer lpl_gguf_writer;
/* An empty writer; NULL with err set when out of memory. */
lpl_gguf_writer *lpl_gguf_writer_new(lpl_error *err);
/* Frees the writer and every tensor it holds; NULL is a no-op. */
void lpl_gguf_writer_free(lpl_gguf_writer *w);
/* Key/values, in the order set (a key set twice keeps its first place, with the new
 * value); strings and arrays are copied. */
lpl_status lpl_gguf_set_u32(lpl_gguf_writer *w, const char *key, uint32_t v, lpl_error *err);
lpl_status lpl_gguf_set_i32(lpl_gguf_writer *w, const char *key, int32_t v, lpl_error *err);
lpl_status lpl_gguf_set_f32(lpl_gguf_writer *w, const char *key, float v, lpl_error *err);
lpl_status lpl_gguf_set_bool(lpl_gguf_writer *w, const char *key, int v, lpl_error *err);
lpl_status lpl_gguf_set_str(lpl_gguf_writer *w, const char *key, const char *v, lpl_error *err);
lpl_status lpl_gguf_set_arr_str(lpl_gguf_writer *w, const char *key, const char *const *v,
                                uint64_t n, lpl_error *err);
lpl_status lpl_gguf_set_arr_i32(lpl_gguf_writer *w, const char *key, const int32_t *v, uint64_t n,
                                lpl_error *err);
lpl_status lpl_gguf_set_arr_f32(lpl_gguf_writer *w, const char *key, const float *v, uint64_t n,
                                lpl_error *err);
/* Adds a tensor; data (nbytes for its type and shape) is copied. */
lpl_status lpl_gguf_add_tensor(lpl_gguf_writer *w, const char *name, lpl_dtype type, int n_dims,
                               const int64_t *ne, const void *data, lpl_error *err);
/* Same, but takes ownership of data (malloc'd, freed by the writer even on error):
 * saves a copy of large converted tensors. */
lpl_status lpl_gguf_add_tensor_take(lpl_gguf_writer *w, const char *name, lpl_dtype type, int n_dims,
                                    const int64_t *ne, void *data, lpl_error *err);
/* A tensor whose bytes are not there yet: written as zeros, to be filled in place
 * (the streaming importer quantizes straight into the file in memory). */
lpl_status lpl_gguf_add_tensor_empty(lpl_gguf_writer *w, const char *name, lpl_dtype type, int n_dims,
                                     const int64_t *ne, lpl_error *err);
/* Number of tensors added so far. */
int64_t lpl_gguf_writer_n_tensors(const lpl_gguf_writer *w);
/* Writes to path via a temporary file and rename (never a half-written file). */
lpl_status lpl_gguf_write_file(lpl_gguf_writer *w, const char *path, lpl_error *err);
/* Writes into a malloc'd buffer (*out, *size), for the browser. */
lpl_status lpl_gguf_write_memory(lpl_gguf_writer *w, void **out, size_t *size, lpl_error *err);
/* Same, and the byte offset of each tensor's data in *out, in the order added
 * (tensor_at has lpl_gguf_writer_n_tensors entries; may be NULL). */
lpl_status lpl_gguf_write_memory_ex(lpl_gguf_writer *w, void **out, size_t *size, size_t *tensor_at,
                                    lpl_error *err);

LPL_END_DECLS

#endif
