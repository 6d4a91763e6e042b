/* Whole-file read and mapping, write-then-rename, mkdir -p. */
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

lpl_status lpl_map_file(const char *path, lpl_mapped *m, lpl_error *err)
{
    static const uint8_t empty[1];
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lpl_fail(err, LPL_ERR_IO, "%s: not a regular file", path);
    }
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
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lpl_fail(err, LPL_ERR_IO, "%s: not a regular file", path);
    }
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
        lpl_status st = lpl_fail(err, LPL_ERR_IO, "%s: cannot create: %s", o->tmp, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return st;
    }
    return LPL_OK;
}

lpl_status lpl_file_commit(lpl_file_out *o, int ok, lpl_error *err)
{
    lpl_status st = LPL_OK;
    int wrote = fflush(o->f) == 0 && !ferror(o->f);
    int closed = fclose(o->f) == 0;
    if (ok && !(wrote && closed))
        st = lpl_fail(err, LPL_ERR_IO, "%s: write failed: %s", o->tmp, strerror(errno));
    else if (!ok)
        st = LPL_ERR_IO;
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
    if (!ok)
        lpl_fail(err, LPL_ERR_IO, "%s: write failed: %s", o.tmp, strerror(errno));
    return lpl_file_commit(&o, ok, err);
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
