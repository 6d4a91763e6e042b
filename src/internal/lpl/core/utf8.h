/* UTF-8 validation (strict: what Python's and the browsers' decoders accept). */
#ifndef LPL_UTF8_H
#define LPL_UTF8_H

#include <stddef.h>

/* 1 if text[0..len) is valid UTF-8 (no overlong forms, surrogates or values past
 * U+10FFFF); otherwise 0 with the offset of the first bad byte in *bad_offset
 * (which may be NULL). */
int lpl_utf8_validate(const void *text, size_t len, size_t *bad_offset);

#endif
