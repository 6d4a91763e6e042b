/* safetensors (Hugging Face): an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}
 * and the raw tensor bytes. The reader validates every offset against the file size
 * (in range, matching dtype x shape, no overlaps) before anything is returned.
 * Reads F32, F16 and BF16; writes the same (PEFT adapters are F32). */
#ifndef LPL_SAFETENSORS_H
#define LPL_SAFETENSORS_H

#include "lpl/core/common.h"

LPL_BEGIN_DECLS

#define LPL_ST_MAX_DIMS 8

/* A tensor of a checkpoint (safetensors or PyTorch), row-major in PyTorch's order:
 * shape[n_dims-1] is the contiguous dimension. data is little-endian, in place, and
 * may be unaligned (read it with memcpy or lpl_st_to_f32). */
typedef struct {
    const char *name;
    lpl_dtype dtype; /* LPL_F32, LPL_F16 or LPL_BF16 */
    int n_dims;      /* 0 for a scalar */
    int64_t shape[LPL_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
    /* Non-NULL for a tensor whose element type cannot be read (e.g. "bool", "int64"
     * buffers in a PyTorch checkpoint): data is NULL, dtype meaningless. */
    const char *unsupported;
} lpl_st_tensor;

/* The tensor called name among t[0..n) (a safetensors file's or a PyTorch state
 * dict's), or NULL. */
const lpl_st_tensor *lpl_st_find(const lpl_st_tensor *t, int64_t n, const char *name);

typedef struct lpl_safetensors lpl_safetensors;

/* Opens and validates a file (mapped read-only natively). NULL with err naming the
 * file and the problem (truncated, header length past the end, malformed JSON,
 * unknown dtype, offsets out of range / overlapping / not matching the shape). */
lpl_safetensors *lpl_safetensors_open(const char *path, lpl_error *err);
/* Same over bytes in memory; copy != 0 makes a private copy, else data must outlive it. */
lpl_safetensors *lpl_safetensors_open_memory(const void *data, size_t size, int copy, lpl_error *err);
/* Unmaps or frees the file; NULL is a no-op. */
void lpl_safetensors_close(lpl_safetensors *st);
/* Streaming: parses the header from the first n bytes of a file, before its data.
 * Tensors come with data NULL (see lpl_safetensors_data_offset). NULL and *more = 1
 * when n does not hold the whole header yet; NULL with err when it is malformed.
 * *header_len is where the data section starts. */
lpl_safetensors *lpl_safetensors_open_header(const void *data, size_t n, size_t *header_len, int *more,
                                             lpl_error *err);
/* Byte offset of tensor i (in lpl_safetensors_tensors order) within the data section. */
uint64_t lpl_safetensors_data_offset(const lpl_safetensors *st, int64_t i);

/* Tensors in file order of their data offsets. */
int64_t lpl_safetensors_n_tensors(const lpl_safetensors *st);
const lpl_st_tensor *lpl_safetensors_tensors(const lpl_safetensors *st);
/* Tensor by name, or NULL. */
const lpl_st_tensor *lpl_safetensors_find(const lpl_safetensors *st, const char *name);
/* String value of a "__metadata__" key, or NULL. */
const char *lpl_safetensors_metadata(const lpl_safetensors *st, const char *key);

/* Converts n elements of a checkpoint tensor (F32/F16/BF16) to fp32. */
void lpl_st_to_f32(lpl_dtype dtype, const void *src, float *dst, int64_t n);
/* Elements of a tensor (product of its shape). */
int64_t lpl_st_numel(const lpl_st_tensor *t);

/* Writes n tensors (names[i], dtypes[i] in F32/F16/BF16, n_dims[i], shapes[i][0..n_dims),
 * data[i] row-major) and string metadata (meta: NULL-terminated list of key, value
 * pairs, or NULL) as a safetensors file, via a temporary file and rename. */
lpl_status lpl_safetensors_write_file(const char *path, int n, const char *const *names,
                                      const lpl_dtype *dtypes, const int *n_dims,
                                      const int64_t *const *shapes, const void *const *data,
                                      const char *const *meta, lpl_error *err);
/* Same into a malloc'd buffer (*out, *size). */
lpl_status lpl_safetensors_write_memory(int n, const char *const *names, const lpl_dtype *dtypes,
                                        const int *n_dims, const int64_t *const *shapes,
                                        const void *const *data, const char *const *meta,
                                        void **out, size_t *size, lpl_error *err);

LPL_END_DECLS

#endif
