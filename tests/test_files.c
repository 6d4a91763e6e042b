/* The writers of core/files under a real write failure: a file-size limit
 * (RLIMIT_FSIZE, SIGXFSZ ignored) makes write(2) stop part way and then fail with
 * EFBIG. lpl_write_file_atomic leaves the target as it was and no temporary file;
 * lpl_append_lines cuts a half-written append back, so the file gains all the lines
 * or none; both name the target and the reason. A write into a missing folder names
 * it too. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "lpl/core/files.h"

static char dir[64];

static int temporaries_left(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void check_content(const char *path, const char *want, const char *what)
{
    char *got = NULL;
    size_t n = 0;
    lpl_error err;
    CHECK(lpl_read_file(path, &got, &n, &err) == LPL_OK, "%s: %s", what, err.msg);
    CHECK(got && n == strlen(want) && !memcmp(got, want, n), "%s: got '%s'", what, got ? got : "(none)");
    free(got);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/lpl-files-%ld", (long)getpid());
    lpl_error err;
    lpl_error_clear(&err);
    CHECK(lpl_make_dirs(dir, &err) == LPL_OK, "%s", err.msg);
    char path[128], log[128], missing[160];
    snprintf(path, sizeof path, "%s/results.json", dir);
    snprintf(log, sizeof log, "%s/steps.jsonl", dir);
    snprintf(missing, sizeof missing, "%s/no/such/folder/x.json", dir);

    const char *old = "{\"version\":1}\n";
    CHECK(lpl_write_file_atomic(path, old, strlen(old), &err) == LPL_OK, "%s", err.msg);
    const char *lines = "{\"step\":1}\n{\"step\":2}\n";
    CHECK(lpl_append_lines(log, lines, strlen(lines), &err) == LPL_OK, "%s", err.msg);

    /* From here on no file may grow past 64 bytes. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {64, 64};
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit: %s", strerror(errno));

    char big[200];
    memset(big, 'x', sizeof big);
    big[0] = '"';
    big[sizeof big - 2] = '"';
    big[sizeof big - 1] = '\n';
    CHECK(lpl_write_file_atomic(path, big, sizeof big, &err) == LPL_ERR_IO, "too big a file written");
    char want[256];
    snprintf(want, sizeof want, "%s: cannot write: %s; the previous version, if any, is unchanged", path,
             strerror(EFBIG));
    CHECK(!strcmp(err.msg, want), "message: %s", err.msg);
    check_content(path, old, "target after a failed atomic write");
    CHECK(temporaries_left() == 0, "a temporary file is left");

    /* 22 bytes in the log: the first new line fits, the second is cut at the limit. */
    const char *more = "{\"step\":3,\"loss\":1.5}\n{\"step\":4,\"loss\":1.25}\n";
    CHECK(lpl_append_lines(log, more, strlen(more), &err) == LPL_ERR_IO, "append past the limit succeeded");
    snprintf(want, sizeof want, "%s: cannot write: %s; nothing was appended", log, strerror(EFBIG));
    CHECK(!strcmp(err.msg, want), "message: %s", err.msg);
    check_content(log, lines, "log after a failed append");

    lim.rlim_cur = lim.rlim_max = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &lim); /* raising needs privilege; the rest stays small */
    CHECK(lpl_write_file_atomic(missing, old, strlen(old), &err) == LPL_ERR_IO, "write into a missing folder");
    CHECK(strstr(err.msg, missing) == err.msg && strstr(err.msg, "No such file or directory"), "message: %s", err.msg);

    remove(path);
    remove(log);
    rmdir(dir);
    return check_report("test_files");
}
