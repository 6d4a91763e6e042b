/* UTF-8 validation, file mapping and whole-file reads for the format readers. */
#include "fmt_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#define LPL_USE_MMAP 1
#endif

int lpl_utf8_valid(const uint8_t *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else goto invalid;
        if (n - i < len)
            goto invalid;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto invalid;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto invalid;
        i += len;
    }
    return 1;
invalid:
    if (bad)
        *bad = i;
    return 0;
}

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
