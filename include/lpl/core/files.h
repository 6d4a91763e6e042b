/* Whole files in and out: one reader, one mapping, one atomic writer, mkdir -p.
 * A file is written under a temporary name beside its target and renamed over it
 * only once every byte is out, so a failed or interrupted write never leaves a
 * truncated file where a good one was. */
#ifndef LPL_FILES_H
#define LPL_FILES_H

#include <stdint.h>
#include <stdio.h>

#include "lpl/core/common.h"

LPL_BEGIN_DECLS

/* Longest path the library builds or keeps (bytes, NUL included). */
#define LPL_PATH_MAX 1024

/* Reads a whole regular file into a malloc'd NUL-terminated buffer (*len, which may
 * be NULL, excludes the NUL). LPL_ERR_IO names the file; LPL_ERR_NOMEM. */
lpl_status lpl_read_file(const char *path, char **out, size_t *len, lpl_error *err);

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
/* Releases a mapping from lpl_map_file; a zeroed m is a no-op. */
void lpl_unmap_file(lpl_mapped *m);

/* A file being written: f is open on tmp; commit or abandon it with lpl_file_commit. */
typedef struct {
    FILE *f;
    char *tmp;
    const char *path;
} lpl_file_out;

/* Opens "<path>.tmp<pid>" for writing. LPL_ERR_IO names the file; LPL_ERR_NOMEM. */
lpl_status lpl_file_begin(lpl_file_out *o, const char *path, lpl_error *err);

/* Flushes, fsyncs and closes the temporary file and, if ok and every write succeeded,
 * renames it to the target; otherwise removes it, leaving the target as it was.
 * ok = 0 means the caller's last write just failed (errno still says why). On a
 * failure LPL_ERR_IO names the target and the reason ("cannot write: No space left
 * on device (disk full); the previous version, if any, is unchanged"). */
lpl_status lpl_file_commit(lpl_file_out *o, int ok, lpl_error *err);

/* Writes n bytes to path through lpl_file_begin/commit: path then holds the old or the
 * new content, never a part. LPL_ERR_IO names path and the reason. */
lpl_status lpl_write_file_atomic(const char *path, const void *data, size_t n, lpl_error *err);

/* Appends text (whole lines) to path with one write per line, then fsync. If a write
 * fails the file is cut back to its old length, so it gains all the lines or none;
 * only a crash inside a write (or a failed cut) leaves a torn last line. LPL_ERR_IO
 * names path and the reason. */
lpl_status lpl_append_lines(const char *path, const char *text, size_t n, lpl_error *err);

/* mkdir -p. LPL_ERR_IO names the directory that could not be made. */
lpl_status lpl_make_dirs(const char *dir, lpl_error *err);

LPL_END_DECLS

#endif
