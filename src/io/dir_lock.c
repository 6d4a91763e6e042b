/* One writer per output folder (see include/lpl/io/dir_lock.h). The record lock
 * decides who holds the folder; the file's content only says who that is, so a
 * message can name the holder and a stale file can be recognised. */
#include "lpl/io/dir_lock.h"
#include "lpl/core/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

typedef struct {
    long pid;
    char host[256];
    char since[40];
} lock_owner;

typedef enum { LOCK_TAKEN, LOCK_BUSY, LOCK_UNSUPPORTED, LOCK_ERROR } lock_result;

static void this_host(char *buf, size_t size)
{
    if (gethostname(buf, size) != 0)
        snprintf(buf, size, "%s", "unknown");
    buf[size - 1] = '\0';
}

/* Write lock over the whole file, without waiting. */
static lock_result try_lock(int fd)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) == 0)
        return LOCK_TAKEN;
    if (errno == EACCES || errno == EAGAIN)
        return LOCK_BUSY;
    if (errno == ENOLCK || errno == EINVAL || errno == EOPNOTSUPP)
        return LOCK_UNSUPPORTED;
    return LOCK_ERROR;
}

/* Parses the owner recorded in the lock file; 0 when the file is empty or not ours. */
static int read_owner(int fd, lock_owner *o)
{
    char buf[1024];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(root, "pid");
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(root, "host");
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(root, "since");
    int ok = cJSON_IsNumber(pid) && pid->valuedouble > 0 && cJSON_IsString(host) && cJSON_IsString(since);
    if (ok) {
        o->pid = (long)pid->valuedouble;
        snprintf(o->host, sizeof o->host, "%s", host->valuestring);
        snprintf(o->since, sizeof o->since, "%s", since->valuestring);
    }
    cJSON_Delete(root);
    return ok;
}

/* The holder of a busy lock has just taken it and may not have written its name yet. */
static int read_owner_patiently(int fd, lock_owner *o)
{
    for (int i = 0; i < 20; i++) {
        if (read_owner(fd, o))
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Without record locks: alive unless it ran on this host and its pid is gone. A
 * holder on another host cannot be checked from here, so it counts as alive. */
static int owner_alive(const lock_owner *o)
{
    char host[256];
    this_host(host, sizeof host);
    if (strcmp(host, o->host) != 0)
        return 1;
    return kill((pid_t)o->pid, 0) == 0 || errno == EPERM;
}

static lpl_status in_use(const char *dir, const lock_owner *o, lpl_error *err)
{
    return lpl_fail(err, LPL_ERR_IO, "%s is in use by pid %ld on %s since %s", dir, o->pid, o->host, o->since);
}

static lpl_status write_owner(lpl_dir_lock *lock, lpl_error *err)
{
    char host[256], since[40], text[512];
    this_host(host, sizeof host);
    lpl_utc_timestamp(since, sizeof since);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddStringToObject(o, "host", host);
    cJSON_AddStringToObject(o, "since", since);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: lock file content");
    int n = snprintf(text, sizeof text, "%s\n", s);
    free(s);
    if (ftruncate(lock->fd, 0) != 0 || pwrite(lock->fd, text, (size_t)n, 0) != n)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot write lock file: %s", lock->path, strerror(errno));
    return LPL_OK;
}

/* 1 if fd is still the file at path: a holder releasing the lock unlinks the file
 * while we may have it open, and a lock on an unlinked file guards nothing. */
static int still_linked(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

lpl_status lpl_dir_lock_acquire(lpl_dir_lock *lock, const char *dir, lpl_error *err)
{
    memset(lock, 0, sizeof *lock);
    lock->fd = -1;
    if ((size_t)snprintf(lock->path, sizeof lock->path, "%s/%s", dir, LPL_DIR_LOCK_NAME) >= sizeof lock->path)
        return lpl_fail(err, LPL_ERR_INVALID, "%s: folder name too long for a lock file", dir);
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = open(lock->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return lpl_fail(err, LPL_ERR_IO, "%s: cannot create lock file: %s", lock->path, strerror(errno));
        lock_owner o = {0};
        lock_result r = try_lock(fd);
        if (r == LOCK_ERROR) {
            int e = errno;
            close(fd);
            return lpl_fail(err, LPL_ERR_IO, "%s: cannot lock: %s", lock->path, strerror(e));
        }
        if (r == LOCK_BUSY) {
            int known = read_owner_patiently(fd, &o);
            close(fd);
            if (!known)
                return lpl_fail(err, LPL_ERR_IO, "%s is in use (%s is locked by a process that did not say who it is)",
                                dir, lock->path);
            return in_use(dir, &o, err);
        }
        int had_owner = read_owner(fd, &o);
        if (r == LOCK_UNSUPPORTED && had_owner && owner_alive(&o)) {
            close(fd);
            return in_use(dir, &o, err);
        }
        if (!still_linked(fd, lock->path)) {
            close(fd);
            continue;
        }
        lock->fd = fd;
        lock->held = 1;
        if (had_owner) {
            lock->stale_pid = o.pid;
            snprintf(lock->stale_host, sizeof lock->stale_host, "%s", o.host);
        }
        lpl_status st = write_owner(lock, err);
        if (st) {
            lpl_dir_lock_release(lock);
            return st;
        }
        return LPL_OK;
    }
    return lpl_fail(err, LPL_ERR_IO, "%s: lock file keeps being replaced by other processes", lock->path);
}

void lpl_dir_lock_release(lpl_dir_lock *lock)
{
    if (!lock || !lock->held)
        return;
    /* Unlink while still holding the record lock, so nobody locks a file about to vanish. */
    unlink(lock->path);
    close(lock->fd);
    lock->fd = -1;
    lock->held = 0;
}
