/* loralab report: a results folder (from ablate, or collect after a grid) as one
 * self-contained HTML file, the same file the page's "Download report" writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "report_assets.h"
#include "lpl/core/files.h"
#include "lpl/lab/report.h"

static const char *const help =
    "usage: loralab report DIR|results.json [--out FILE] [--quiet]\n\n"
    "Writes a self-contained HTML report of a results folder (loralab ablate --out DIR, or\n"
    "loralab collect DIR after a grid): the settings, the model, data and environment, where\n"
    "each placement's adapters go (drawn on one transformer block and its layers), the\n"
    "curves, the table with 95% intervals and the verdicts. The file opens offline in any\n"
    "browser, with no server: the page's \"Download report\" writes the same file.\n\n"
    CLI_HELP_OUT("FILE            output file (default DIR/report.html)")
    CLI_HELP_QUIET "                        (and the path written is not printed)\n\n"
    "The time written into the report is now, or SOURCE_DATE_EPOCH when set.\n"
    "exit: 0 written; 2 no results.json, one that is not a loralab results document, or a\n"
    "report that cannot be written where --out says.\n";

typedef struct {
    const char *src, *out;
    int quiet;
} report_opts;

static int parse(int argc, char **argv, report_opts *o)
{
    cli_args a;
    cli_args_init(&a, "report", argc, argv);
    while (cli_peek(&a)) {
        const char *s = cli_peek(&a);
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(help, stdout);
            return -1;
        }
        if (cli_opt(&a, "--out", &o->out))
            continue;
        if (a.bad)
            return LPL_EXIT_USAGE;
        if (cli_flag(&a, "--quiet"))
            o->quiet = 1;
        else if (s[0] == '-')
            return cli_usage_error("report", "unknown flag '%s' (see loralab report --help)", s);
        else if (o->src)
            return cli_usage_error("report", "one folder only (got '%s' and '%s')", o->src, s);
        else {
            o->src = s;
            a.i++;
        }
    }
    if (!o->src)
        return cli_usage_error("report", "which results? usage: loralab report DIR (see --help)");
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SSZ" of now, or of SOURCE_DATE_EPOCH (reproducible files). */
static void written_time(char *buf, size_t size)
{
    const char *env = getenv("SOURCE_DATE_EPOCH");
    char *end = NULL;
    long long v = env && *env ? strtoll(env, &end, 10) : -1;
    time_t t = end && !*end && v >= 0 ? (time_t)v : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int lpl_cmd_report(int argc, char **argv)
{
    report_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? LPL_EXIT_OK : rc;
    struct stat sb;
    int is_dir = stat(o.src, &sb) == 0 && S_ISDIR(sb.st_mode);
    char in[LPL_PATH_MAX + 16], out[LPL_PATH_MAX + 16], when[32];
    if (is_dir)
        snprintf(in, sizeof in, "%s/results.json", o.src);
    else
        snprintf(in, sizeof in, "%s", o.src);
    if (o.out)
        snprintf(out, sizeof out, "%s", o.out);
    else if (is_dir)
        snprintf(out, sizeof out, "%s/report.html", o.src);
    else
        snprintf(out, sizeof out, "report.html");
    lpl_error err;
    lpl_error_clear(&err);
    char *json = NULL;
    size_t len = 0;
    if (lpl_read_file(in, &json, &len, &err)) {
        fprintf(stderr, "loralab report: %s: no results to report (%s)\n", in,
                is_dir ? "the folder has no results.json: run loralab ablate --out DIR, or collect a grid" : err.msg);
        return LPL_EXIT_USAGE;
    }
    written_time(when, sizeof when);
    char *html = lpl_report_html(lpl_report_template, lpl_report_renderer, json, len, when, &err);
    free(json);
    if (!html) {
        fprintf(stderr, "loralab report: %s: %s\n", in, err.msg);
        return err.code == LPL_ERR_FORMAT ? LPL_EXIT_USAGE : LPL_EXIT_FAILED;
    }
    lpl_status st = lpl_write_file_atomic(out, html, strlen(html), &err);
    free(html);
    if (st)
        return cli_fail("report", st, err.msg);
    if (!o.quiet)
        printf("%s\n", out);
    return LPL_EXIT_OK;
}
