/* One writer per output folder: a lock file DIR/.loralab.lock that records who
 * holds the folder (pid, host, start time) and is held with a kernel record lock
 * (fcntl F_SETLK) for as long as the process keeps it. The kernel drops the record
 * lock when the holder dies, even by SIGKILL, so a lock file left behind by a dead
 * process is stale and the next run takes it over. On file systems without record
 * locks the recorded pid is checked instead: the lock is stale when its host is
 * this host and that pid is gone. */
#ifndef LPL_DIR_LOCK_H
#define LPL_DIR_LOCK_H

#include <stdint.h>

#include "lpl/core/common.h"

#define LPL_DIR_LOCK_NAME ".loralab.lock"
#define LPL_DIR_LOCK_PATH_MAX 4096

typedef struct {
    char path[LPL_DIR_LOCK_PATH_MAX]; /* DIR/.loralab.lock */
    int fd;                           /* open while held, -1 otherwise */
    int held;
    long stale_pid;                   /* > 0: a stale lock of this pid was taken over */
    char stale_host[256];
} lpl_dir_lock;

/* Takes the lock on DIR, which must exist. On success the lock file holds this
 * process's pid, host and start time (UTC). Returns LPL_ERR_IO with
 * "DIR is in use by pid N on HOST since T" when another live process holds it,
 * or LPL_ERR_IO naming the lock file when it cannot be created or written. */
lpl_status lpl_dir_lock_acquire(lpl_dir_lock *lock, const char *dir, lpl_error *err);

/* Removes the lock file and lets go of the lock; safe on a lock never taken. */
void lpl_dir_lock_release(lpl_dir_lock *lock);

#endif
