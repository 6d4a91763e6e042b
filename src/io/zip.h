/* Private: zip archives as torch.save writes them (stored entries only; zip64 records
 * understood). src/io/torch_zip.c reads a whole archive in memory; the streamed
 * importer (src/io/hf_stream.c) reads local headers as they arrive and the central
 * directory from the file's end. */
#ifndef LPL_ZIP_H
#define LPL_ZIP_H

#include "lpl/core/common.h"

/* ---- a whole archive in memory */

typedef struct {
    char *name;
    const uint8_t *data; /* into the archive's bytes */
    size_t size;
    uint32_t crc;
} lpl_zip_entry;

typedef struct {
    lpl_zip_entry *e;
    int64_t n;
} lpl_zip_archive;

/* Reads the central directory of p[0..size) and checks every entry's local header and
 * data range. LPL_ERR_FORMAT (truncated, out of range, bad name) or LPL_ERR_UNSUPPORTED
 * (compressed, encrypted, multi-disk), naming src; close z even then. */
lpl_status lpl_zip_open(const uint8_t *p, size_t size, lpl_zip_archive *z, const char *src, lpl_error *err);
void lpl_zip_close(lpl_zip_archive *z);
/* The entry called name, or NULL. */
const lpl_zip_entry *lpl_zip_find(const lpl_zip_archive *z, const char *name);

/* ---- streamed: the front of the file as it arrives, and its end */

/* A zip local file header read from the front of a stream. */
typedef struct {
    int complete;        /* 0: more bytes needed */
    int end;             /* the central directory starts here: no more entries */
    char name[256];
    size_t header_len;   /* bytes before the entry's data */
    uint64_t size;
    uint32_t crc;
    int sizes_later;     /* size and crc are 0 here: they follow the data (and are in the directory) */
} lpl_zip_local;

/* Reads the local header at data[0..n): out->complete = 0 when n is too short;
 * LPL_ERR_FORMAT / LPL_ERR_UNSUPPORTED for a bad signature, a compressed or
 * encrypted entry. */
lpl_status lpl_zip_local_header(const void *data, size_t n, lpl_zip_local *out, lpl_error *err);

/* The central directory of a zip, read from the file's last n bytes (torch.save
 * writes entry sizes only there and after each entry's data, so a streamed reader
 * fetches the end first: HTTP Range, File.slice). */
typedef struct {
    char name[256];
    uint64_t offset;     /* of the local header */
    uint64_t size;
    uint32_t crc;
} lpl_zip_dir_entry;
typedef struct {
    lpl_zip_dir_entry *e;
    int64_t n;
    uint64_t cd_off;     /* where the directory starts: the end of the last entry's bytes */
} lpl_zip_dir;
/* LPL_ERR_FORMAT when the tail holds no (whole) directory. Free with lpl_zip_dir_free. */
lpl_status lpl_zip_read_tail(const void *tail, size_t n, uint64_t file_size, lpl_zip_dir *dir, lpl_error *err);
void lpl_zip_dir_free(lpl_zip_dir *dir);

/* CRC-32 (IEEE) of p[0..n). */
uint32_t lpl_zip_crc32(const void *p, size_t n);

#endif
