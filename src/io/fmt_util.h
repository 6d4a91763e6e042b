/* Private helpers shared by the format readers (gguf, safetensors, torch, HF import):
 * UTF-8 validation, read-only file mapping and whole-file reads. */
#ifndef LPL_FMT_UTIL_H
#define LPL_FMT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "lpl/core/common.h"

/* Is s[0..n) valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF)?
 * Returns 1, or 0 and the byte offset of the first bad sequence in *bad (may be NULL). */
int lpl_utf8_valid(const uint8_t *s, size_t n, size_t *bad);

/* A file's bytes: mapped read-only natively, read into memory under Emscripten. */
typedef struct {
    const uint8_t *data;
    size_t size;
    void *map;
    size_t map_size;
    void *buf;
} lpl_mapped;

/* Maps path; LPL_ERR_IO naming the file on failure. */
lpl_status lpl_map_file(const char *path, lpl_mapped *m, lpl_error *err);
void lpl_unmap_file(lpl_mapped *m);

/* Reads a whole file into a malloc'd NUL-terminated buffer (*len excludes the NUL). */
lpl_status lpl_read_file(const char *path, char **out, size_t *len, lpl_error *err);

#endif
