/* Whole-file read and mapping, write-then-rename, line appends, mkdir -p. */
#include "lpl/core/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef __EMSCRIPTEN__
#include <sys/mman.h>
#define LPL_USE_MMAP 1
#endif

/* Reads exactly n bytes from fd into dst. */
static int read_all(int fd, void *dst, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = read(fd, (char *)dst + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return 0;
        got += (size_t)k;
    }
    return 1;
}

/* Opens path for reading; refuses what is not a regular file (a folder, a device). */
static lpl_status open_regular(const char *path, int *fd, struct stat *sb, lpl_error *err)
{
    *fd = open(path, O_RDONLY);
    if (*fd < 0)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(*fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close(*fd);
        return lpl_fail(err, LPL_ERR_IO, "%s: not a regular file", path);
    }
    return LPL_OK;
}

lpl_status lpl_map_file(const char *path, lpl_mapped *m, lpl_error *err)
{
    static const uint8_t empty[1];
    memset(m, 0, sizeof *m);
    int fd;
    struct stat sb;
    lpl_status st = open_regular(path, &fd, &sb, err);
    if (st)
        return st;
    m->size = (size_t)sb.st_size;
    m->data = empty;
    if (m->size == 0) {
        close(fd);
        return LPL_OK;
    }
#ifdef LPL_USE_MMAP
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    m->map = p;
    m->map_size = m->size;
    m->data = p;
#else
    m->buf = lpl_malloc(m->size, path, err);
    if (!m->buf) {
        close(fd);
        return LPL_ERR_NOMEM;
    }
    int ok = read_all(fd, m->buf, m->size);
    close(fd);
    if (!ok) {
        free(m->buf);
        m->buf = NULL;
        return lpl_fail(err, LPL_ERR_IO, "%s: read failed", path);
    }
    m->data = m->buf;
#endif
    return LPL_OK;
}

void lpl_unmap_file(lpl_mapped *m)
{
#ifdef LPL_USE_MMAP
    if (m->map)
        munmap(m->map, m->map_size);
#endif
    free(m->buf);
    memset(m, 0, sizeof *m);
}

lpl_status lpl_read_file(const char *path, char **out, size_t *len, lpl_error *err)
{
    int fd;
    struct stat sb;
    lpl_status st = open_regular(path, &fd, &sb, err);
    if (st)
        return st;
    size_t n = (size_t)sb.st_size;
    char *buf = lpl_malloc(n + 1, path, err);
    if (!buf) {
        close(fd);
        return LPL_ERR_NOMEM;
    }
    int ok = read_all(fd, buf, n);
    close(fd);
    if (!ok) {
        free(buf);
        return lpl_fail(err, LPL_ERR_IO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return LPL_OK;
}

/* "cannot write" naming the target, the reason and what the failure leaves behind;
 * ENOSPC and EROFS get a hint because a user can fix them (free space, remount) and
 * then --resume. */
static lpl_status write_failed(lpl_error *err, const char *path, int e, const char *left)
{
    const char *hint = e == ENOSPC ? " (disk full)" : e == EROFS ? " (read-only file system)" : "";
    return lpl_fail(err, LPL_ERR_IO, "%s: cannot write: %s%s; %s", path, strerror(e), hint, left);
}

static const char *const kept = "the previous version, if any, is unchanged";

lpl_status lpl_file_begin(lpl_file_out *o, const char *path, lpl_error *err)
{
    memset(o, 0, sizeof *o);
    size_t len = strlen(path) + 32;
    o->tmp = lpl_malloc(len, "temporary path", err);
    if (!o->tmp)
        return LPL_ERR_NOMEM;
    /* The pid keeps two processes writing the same target from sharing a temp file. */
    snprintf(o->tmp, len, "%s.tmp%ld", path, (long)getpid());
    o->path = path;
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        lpl_status st = write_failed(err, path, errno, kept);
        free(o->tmp);
        o->tmp = NULL;
        return st;
    }
    return LPL_OK;
}

lpl_status lpl_file_commit(lpl_file_out *o, int ok, lpl_error *err)
{
    int e = ok ? 0 : (errno ? errno : EIO);
    if (fflush(o->f) != 0 || ferror(o->f))
        e = e ? e : (errno ? errno : EIO);
    /* fsync before rename: otherwise a crash can leave the new name on empty data. */
    if (!e && fsync(fileno(o->f)) != 0 && errno != EINVAL)
        e = errno;
    if (fclose(o->f) != 0 && !e)
        e = errno ? errno : EIO;
    lpl_status st = LPL_OK;
    if (e)
        st = write_failed(err, o->path, e, kept);
    else if (rename(o->tmp, o->path) != 0)
        st = lpl_fail(err, LPL_ERR_IO, "%s: cannot rename to %s: %s", o->tmp, o->path, strerror(errno));
    if (st != LPL_OK)
        remove(o->tmp);
    free(o->tmp);
    memset(o, 0, sizeof *o);
    return st;
}

lpl_status lpl_write_file_atomic(const char *path, const void *data, size_t n, lpl_error *err)
{
    lpl_file_out o;
    lpl_status st = lpl_file_begin(&o, path, err);
    if (st != LPL_OK)
        return st;
    int ok = n == 0 || fwrite(data, 1, n, o.f) == n;
    return lpl_file_commit(&o, ok, err);
}

/* Writes all n bytes with write(2), retrying short writes; 0 or an errno. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 && errno ? errno : ENOSPC;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

lpl_status lpl_append_lines(const char *path, const char *text, size_t n, lpl_error *err)
{
    if (n == 0)
        return LPL_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return write_failed(err, path, errno, "nothing was appended");
    struct stat sb;
    off_t before = fstat(fd, &sb) == 0 ? sb.st_size : -1;
    int e = 0;
    /* One write per line: an interruption between lines leaves whole lines only. */
    for (const char *p = text, *end = text + n; p < end && !e;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        e = write_all(fd, p, len);
        p += len;
    }
    if (!e && fsync(fd) != 0 && errno != EINVAL)
        e = errno;
    const char *left = "nothing was appended";
    if (e && (before < 0 || ftruncate(fd, before) != 0))
        left = "its last line may be torn (dropped on --resume)";
    close(fd);
    return e ? write_failed(err, path, e, left) : LPL_OK;
}

static lpl_status make_one(const char *dir, lpl_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    return LPL_OK;
}

lpl_status lpl_make_dirs(const char *dir, lpl_error *err)
{
    char *buf = strdup(dir);
    if (!buf)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: directory name");
    lpl_status st = LPL_OK;
    for (char *p = buf + 1; *p && st == LPL_OK; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        st = make_one(buf, err);
        *p = '/';
    }
    if (st == LPL_OK)
        st = make_one(buf, err);
    free(buf);
    return st;
}
