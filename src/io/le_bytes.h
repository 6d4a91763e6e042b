/* Private: little-endian integers read from bytes. Zip records, pickle operands, the
 * legacy torch stream and safetensors' header length are little-endian whatever the
 * host is; reading them byte by byte needs no alignment either. */
#ifndef LPL_LE_BYTES_H
#define LPL_LE_BYTES_H

#include <stdint.h>

static inline uint16_t lpl_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static inline uint32_t lpl_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t lpl_le64(const uint8_t *p) { return lpl_le32(p) | (uint64_t)lpl_le32(p + 4) << 32; }

#endif
