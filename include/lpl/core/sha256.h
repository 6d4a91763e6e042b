/* SHA-256 (FIPS 180-4) of bytes or of a file: the identity of models and data in
 * results.json. */
#ifndef LPL_SHA256_H
#define LPL_SHA256_H

#include "lpl/core/common.h"

LPL_BEGIN_DECLS

/* SHA-256 of bytes; hex is 64 lowercase digits + NUL. */
void lpl_sha256(const void *data, size_t n, uint8_t digest[32]);
/* The same digest as 64 lowercase hex digits and a NUL (how results.json records it). */
void lpl_sha256_hex(const void *data, size_t n, char hex[65]);
/* SHA-256 of a file, streamed. LPL_ERR_IO names the file. */
lpl_status lpl_sha256_file(const char *path, char hex[65], lpl_error *err);

LPL_END_DECLS

#endif
