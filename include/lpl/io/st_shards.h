/* Sharded safetensors checkpoints (model.safetensors.index.json naming
 * model-0000k-of-0000n.safetensors files) fed to the one streamed importer as if
 * they were a single file: the shards' headers merge into one whose offsets run on
 * past the data of the shards before, and the importer then receives that header
 * followed by each shard's data section, in shard order. Nothing is held beyond the
 * headers, so the page streams shards exactly as it streams one file. */
#ifndef LPL_ST_SHARDS_H
#define LPL_ST_SHARDS_H

#include "lpl/core/common.h"

/* The distinct shard files of an index's weight_map, sorted by name (*names is a
 * malloc'd array of malloc'd strings, freed by lpl_st_shards_free). LPL_ERR_FORMAT
 * for malformed JSON, a missing weight_map, a non-string value, or a file name with
 * a '/' or "..". */
lpl_status lpl_st_index_shards(const char *index_json, size_t len, char ***names, int *n, lpl_error *err);
/* Frees the n names and the array lpl_st_index_shards returned. */
void lpl_st_shards_free(char **names, int n);

/* Bytes of the start of a safetensors file that hold its header: 8 + the length in
 * its first 8 bytes (first8). LPL_ERR_FORMAT when the length is implausible. */
lpl_status lpl_st_header_bytes(const void *first8, uint64_t file_size, uint64_t *bytes, lpl_error *err);

/* Merges n shards' headers (heads[i]: the first lpl_st_header_bytes of shard i, whose
 * whole file is file_sizes[i] bytes) into one safetensors header, malloc'd into *out
 * (*out_len bytes, 8-byte length included). The merged data section is the shards'
 * data sections in order. A tensor name in two shards is LPL_ERR_FORMAT. */
lpl_status lpl_st_merge_headers(const void *const *heads, const uint64_t *file_sizes, int n, void **out,
                                size_t *out_len, lpl_error *err);

#endif
