/* Private helpers shared by the format readers (gguf, safetensors, torch, HF import):
 * UTF-8 validation (file mapping and reading live in lpl/core/files.h). */
#ifndef LPL_FMT_UTIL_H
#define LPL_FMT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "lpl/core/common.h"

/* Is s[0..n) valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF)?
 * Returns 1, or 0 and the byte offset of the first bad sequence in *bad (may be NULL). */
int lpl_utf8_valid(const uint8_t *s, size_t n, size_t *bad);

#endif
