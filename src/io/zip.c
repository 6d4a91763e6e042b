/* Zip archives as torch.save writes them: stored (uncompressed) entries, zip64 records
 * understood. Two readers: one over a whole archive in memory (the central directory,
 * each entry checked against its local header), and the pieces a streamed reader needs
 * (a local header at the front of the stream, the central directory from the file's
 * end). */
#include "zip.h"

#include <stdlib.h>
#include <string.h>

#include "le_bytes.h"
#include "lpl/core/utf8.h"

void lpl_zip_close(lpl_zip_archive *z)
{
    for (int64_t i = 0; i < z->n; i++)
        free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

/* Finds the end-of-central-directory record in p, which holds the file's bytes
 * [base, base + size) (base 0: the whole file); fills the directory's count, size and
 * absolute offset, and checks the directory lies within p. */
static lpl_status zip_find_cd(const uint8_t *p, size_t size, uint64_t base, uint64_t *count, uint64_t *cd_size,
                              uint64_t *cd_off, const char *src, lpl_error *err)
{
    if (size < 22)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: too short for a zip archive", src);
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0, eocd = SIZE_MAX;
    for (size_t i = size - 22 + 1; i-- > lo;)
        if (lpl_le32(p + i) == 0x06054b50 && i + 22 + lpl_le16(p + i + 20) == size) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated or not a zip: no end-of-central-directory record", src);
    const uint8_t *e = p + eocd;
    if (lpl_le16(e + 4) != 0 || lpl_le16(e + 6) != 0)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", src);
    *count = lpl_le16(e + 10);
    *cd_size = lpl_le32(e + 12);
    *cd_off = lpl_le32(e + 16);
    if (*count == 0xFFFF || *cd_size == 0xFFFFFFFF || *cd_off == 0xFFFFFFFF) {
        /* zip64: a locator just before the record points at the zip64 record */
        if (eocd < 20 || lpl_le32(p + eocd - 20) != 0x07064b50)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: zip64 locator missing", src);
        uint64_t z64 = lpl_le64(p + eocd - 20 + 8);
        if (z64 < base || size < 56 || z64 - base > size - 56 || lpl_le32(p + (z64 - base)) != 0x06064b50) /* size < 56: found by tests/fuzz */
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: zip64 end-of-central-directory record out of range", src);
        z64 -= base;
        *count = lpl_le64(p + z64 + 32);
        *cd_size = lpl_le64(p + z64 + 40);
        *cd_off = lpl_le64(p + z64 + 48);
    }
    if (*cd_off < base || *cd_off - base > size || *cd_size > size - (*cd_off - base))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: central directory [%llu, +%llu) is out of range (file has %llu bytes)",
                        src, (unsigned long long)*cd_off, (unsigned long long)*cd_size,
                        (unsigned long long)(base + size));
    if (*count > *cd_size / 46)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: central directory claims %llu entries, more than it can hold", src,
                        (unsigned long long)*count);
    return LPL_OK;
}

/* Zip64 extended information (extra id 1): replaces the 32-bit fields that are all ones. */
static void zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *loff)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = lpl_le16(x + i), len = lpl_le16(x + i + 2);
        if (i + 4 + len > xlen)
            return;
        if (id == 1) {
            const uint8_t *q = x + i + 4, *end = q + len;
            if (*usize == 0xFFFFFFFF && q + 8 <= end) { *usize = lpl_le64(q); q += 8; }
            if (*csize == 0xFFFFFFFF && q + 8 <= end) { *csize = lpl_le64(q); q += 8; }
            if (*loff == 0xFFFFFFFF && q + 8 <= end) { *loff = lpl_le64(q); }
            return;
        }
        i += 4 + (size_t)len;
    }
}

/* One central-directory entry at p[*pos]: validates its local header and data range. */
static lpl_status zip_entry_read(const uint8_t *p, size_t size, size_t cd_end, size_t *pos, lpl_zip_entry *out,
                                 const char *src, lpl_error *err)
{
    size_t c = *pos;
    if (cd_end - c < 46 || lpl_le32(p + c) != 0x02014b50)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: bad central directory entry at byte %zu", src, c);
    uint16_t flags = lpl_le16(p + c + 8), method = lpl_le16(p + c + 10);
    uint64_t csize = lpl_le32(p + c + 20), usize = lpl_le32(p + c + 24), loff = lpl_le32(p + c + 42);
    size_t nlen = lpl_le16(p + c + 28), xlen = lpl_le16(p + c + 30), clen = lpl_le16(p + c + 32);
    if (cd_end - c - 46 < nlen + xlen + clen)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: central directory entry at byte %zu runs past its end", src, c);
    const uint8_t *name = p + c + 46;
    zip64_extra(name + nlen, xlen, &usize, &csize, &loff);
    *pos = c + 46 + nlen + xlen + clen;
    out->name = lpl_malloc(nlen + 1, "zip entry name", err);
    if (!out->name)
        return LPL_ERR_NOMEM;
    memcpy(out->name, name, nlen);
    out->name[nlen] = '\0';
    if (strlen(out->name) != nlen || !lpl_utf8_validate(name, nlen, NULL))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: zip entry name at byte %zu is not valid UTF-8", src, c);
    if (flags & 1)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", src, out->name);
    if (method != 0)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "%s: zip entry '%s' is compressed (method %u); only stored entries (as torch.save writes) are supported",
                        src, out->name, method);
    if (csize != usize)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: stored zip entry '%s' has different sizes", src, out->name);
    if (loff > size || size - loff < 30 || lpl_le32(p + loff) != 0x04034b50)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: local header of '%s' at byte %llu is missing or out of range", src,
                        out->name, (unsigned long long)loff);
    size_t data = (size_t)loff + 30 + lpl_le16(p + loff + 26) + lpl_le16(p + loff + 28);
    if (data > size || usize > size - data)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: data of '%s' [%zu, +%llu) runs past the end (%zu bytes)",
                        src, out->name, data, (unsigned long long)usize, size);
    out->data = p + data;
    out->size = (size_t)usize;
    out->crc = lpl_le32(p + c + 16);
    return LPL_OK;
}

lpl_status lpl_zip_open(const uint8_t *p, size_t size, lpl_zip_archive *z, const char *src, lpl_error *err)
{
    uint64_t count = 0, cd_size = 0, cd_off = 0;
    lpl_status s = zip_find_cd(p, size, 0, &count, &cd_size, &cd_off, src, err);
    if (s != LPL_OK)
        return s;
    z->e = lpl_calloc((size_t)count + 1, sizeof *z->e, "zip directory", err);
    if (!z->e)
        return LPL_ERR_NOMEM;
    size_t pos = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    for (uint64_t i = 0; i < count; i++) {
        z->n = (int64_t)i + 1;
        if ((s = zip_entry_read(p, size, end, &pos, &z->e[i], src, err)) != LPL_OK)
            return s;
    }
    return LPL_OK;
}

const lpl_zip_entry *lpl_zip_find(const lpl_zip_archive *z, const char *name)
{
    for (int64_t i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name))
            return &z->e[i];
    return NULL;
}

/* CRC-32 (IEEE), to check data.pkl before parsing it. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* ------------------------------------------------------------------ streaming */

uint32_t lpl_zip_crc32(const void *p, size_t n) { return crc32_of(p, n); }

lpl_status lpl_zip_local_header(const void *data, size_t n, lpl_zip_local *out, lpl_error *err)
{
    const uint8_t *p = data;
    memset(out, 0, sizeof *out);
    if (n < 4)
        return LPL_OK;
    uint32_t sig = lpl_le32(p);
    if (sig == 0x02014b50 || sig == 0x06054b50 || sig == 0x06064b50) {
        out->complete = 1;
        out->end = 1; /* the central directory: no more entries */
        return LPL_OK;
    }
    if (sig != 0x04034b50)
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: no zip entry where one should start");
    if (n < 30)
        return LPL_OK;
    uint16_t flags = lpl_le16(p + 6), method = lpl_le16(p + 8);
    uint64_t csize = lpl_le32(p + 18), usize = lpl_le32(p + 22), loff = 0;
    size_t nlen = lpl_le16(p + 26), xlen = lpl_le16(p + 28);
    if (n < 30 + nlen + xlen)
        return LPL_OK;
    if (nlen >= sizeof out->name || memchr(p + 30, '\0', nlen) || !lpl_utf8_validate(p + 30, nlen, NULL))
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: a zip entry name is not valid UTF-8 or too long");
    memcpy(out->name, p + 30, nlen);
    out->name[nlen] = '\0';
    zip64_extra(p + 30 + nlen, xlen, &usize, &csize, &loff);
    if (flags & 1)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "pytorch_model.bin: zip entry '%s' is encrypted", out->name);
    if (method != 0)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "pytorch_model.bin: zip entry '%s' is compressed (method %u); only stored entries are supported",
                        out->name, method);
    out->sizes_later = (flags & 8) != 0; /* torch.save: sizes in the central directory only */
    if (csize != usize && !out->sizes_later)
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: stored zip entry '%s' has different sizes", out->name);
    out->complete = 1;
    out->header_len = 30 + nlen + xlen;
    out->size = usize;
    out->crc = lpl_le32(p + 14);
    return LPL_OK;
}

lpl_status lpl_zip_read_tail(const void *tail, size_t n, uint64_t file_size, lpl_zip_dir *dir, lpl_error *err)
{
    const uint8_t *p = tail;
    uint64_t count = 0, cd_size = 0, cd_off = 0, base = file_size - n;
    memset(dir, 0, sizeof *dir);
    if (n > file_size)
        return lpl_fail(err, LPL_ERR_INVALID, "zip tail: %zu bytes of a %llu-byte file", n, (unsigned long long)file_size);
    lpl_status s = zip_find_cd(p, n, base, &count, &cd_size, &cd_off, "pytorch_model.bin (its end)", err);
    if (s != LPL_OK)
        return s;
    if (!(dir->e = lpl_calloc((size_t)count + 1, sizeof *dir->e, "zip directory", err)))
        return LPL_ERR_NOMEM;
    dir->cd_off = cd_off;
    size_t c = (size_t)(cd_off - base), end = c + (size_t)cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - c < 46 || lpl_le32(p + c) != 0x02014b50)
            return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: bad central directory entry %llu",
                            (unsigned long long)i);
        uint64_t csize = lpl_le32(p + c + 20), usize = lpl_le32(p + c + 24), loff = lpl_le32(p + c + 42);
        size_t nlen = lpl_le16(p + c + 28), xlen = lpl_le16(p + c + 30), clen = lpl_le16(p + c + 32);
        if (end - c - 46 < nlen + xlen + clen || nlen >= sizeof dir->e[i].name)
            return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: central directory entry %llu is malformed",
                            (unsigned long long)i);
        zip64_extra(p + c + 46 + nlen, xlen, &usize, &csize, &loff);
        lpl_zip_dir_entry *d = &dir->e[i];
        memcpy(d->name, p + c + 46, nlen);
        d->name[nlen] = '\0';
        d->offset = loff;
        d->size = usize;
        d->crc = lpl_le32(p + c + 16);
        dir->n = (int64_t)i + 1;
        c += 46 + nlen + xlen + clen;
    }
    return LPL_OK;
}

void lpl_zip_dir_free(lpl_zip_dir *dir)
{
    free(dir->e);
    memset(dir, 0, sizeof *dir);
}
