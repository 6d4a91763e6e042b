/* loralab collect: merges the finished units of a planned grid into one results.json,
 * results.csv and steps.jsonl, with the aggregates a run in one process computes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_grid.h"
#include "cli_util.h"
#include "commands.h"
#include "lpl/core/files.h"

static const char *const help =
    "usage: loralab collect DIR [--partial] [--list] [--quiet]\n\n"
    "Merges the units of the grid planned in DIR (loralab ablate --plan --out DIR) that have\n"
    "finished (loralab ablate --unit K --out DIR) into DIR/results.json, results.csv and\n"
    "steps.jsonl, with the same aggregates (mean, 95% t-interval, paired differences against\n"
    "the baseline by seed) as the grid run in one process. Lists the units that are missing\n"
    "(never run, running, or interrupted) or failed.\n\n"
    "  --partial   write the results even if units are missing (their entries stay pending)\n"
    "  --list      only list the units: K, id, name, state (done, failed, missing, started)\n"
    "  --quiet     no progress or summary on stderr\n\n"
    "exit: 0 all units collected; 1 a unit is missing (without --partial nothing is written)\n"
    "or failed; 2 no plan in DIR, or a unit result that cannot be read.\n";

typedef struct {
    const char *dir;
    int partial, list, quiet;
} collect_opts;

static int parse(int argc, char **argv, collect_opts *o)
{
    cli_args a;
    cli_args_init(&a, "collect", argc, argv);
    while (cli_peek(&a)) {
        const char *s = cli_peek(&a);
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(help, stdout);
            return -1;
        }
        if (cli_flag(&a, "--partial"))
            o->partial = 1;
        else if (cli_flag(&a, "--list"))
            o->list = 1;
        else if (cli_flag(&a, "--quiet"))
            o->quiet = 1;
        else if (s[0] == '-')
            return cli_usage_error("collect", "unknown flag '%s' (see loralab collect --help)", s);
        else if (o->dir)
            return cli_usage_error("collect", "one folder only (got '%s' and '%s')", o->dir, s);
        else {
            o->dir = s;
            a.i++;
        }
    }
    if (!o->dir)
        return cli_usage_error("collect", "which folder? usage: loralab collect DIR (see --help)");
    return 0;
}

/* Each unit's results.json text (NULL when it has none) and its state. */
static int read_units(const char *dir, const lpl_plan *p, char **docs, lpl_unit_state *states, int *started)
{
    for (int k = 0; k < p->n_units; k++) {
        lpl_grid_unit u;
        lpl_error err;
        lpl_error_clear(&err);
        char path[LPL_PATH_MAX + 64];
        struct stat sb;
        size_t n;
        if (lpl_plan_unit(p, k, &u, &err))
            return cli_fail("collect", err.code, err.msg);
        snprintf(path, sizeof path, "%s/units/%s/%s", dir, u.id, LPL_DIR_LOCK_NAME);
        started[k] = stat(path, &sb) == 0;
        cli_unit_results_path(dir, &u, path, sizeof path);
        if (stat(path, &sb) != 0)
            continue;
        if (lpl_read_file(path, &docs[k], &n, &err) || lpl_unit_state_of(&u, docs[k], &states[k], &err))
            return cli_fail("collect", err.code ? err.code : LPL_ERR_FORMAT, err.msg);
        if (states[k] == LPL_UNIT_MISSING) {
            free(docs[k]); /* written by an interrupted unit: its training is still pending */
            docs[k] = NULL;
        }
    }
    return 0;
}

static const char *state_name(lpl_unit_state s, int started)
{
    return s == LPL_UNIT_DONE ? "done" : s == LPL_UNIT_FAILED ? "failed" : started ? "started" : "missing";
}

static void list_units(const lpl_plan *p, const lpl_unit_state *states, const int *started, FILE *f,
                       int only_unfinished)
{
    for (int k = 0; k < p->n_units; k++) {
        lpl_grid_unit u;
        if (lpl_plan_unit(p, k, &u, NULL) || (only_unfinished && states[k] == LPL_UNIT_DONE))
            continue;
        fprintf(f, "%s%d\t%s\t%s\t%s\n", only_unfinished ? "  " : "", k, u.id, u.name,
                state_name(states[k], started[k]));
    }
}

/* Writes the merged document and the table and steps made from it. */
static lpl_status write_collected(const char *dir, const char *json, lpl_error *err)
{
    char path[LPL_PATH_MAX + 32];
    char *csv = lpl_results_csv(json, err), *steps = csv ? lpl_results_steps_jsonl(json, err) : NULL;
    lpl_status st = !csv || !steps ? (err->code ? err->code : LPL_ERR_NOMEM) : LPL_OK;
    if (!st) {
        snprintf(path, sizeof path, "%s/results.json", dir);
        st = lpl_write_file_atomic(path, json, strlen(json), err);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/results.csv", dir);
        st = lpl_write_file_atomic(path, csv, strlen(csv), err);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/steps.jsonl", dir);
        st = lpl_write_file_atomic(path, steps, strlen(steps), err);
    }
    free(csv);
    free(steps);
    return st;
}

static int collect(const collect_opts *o, const lpl_plan *p, char **docs, const lpl_unit_state *states,
                   const int *started)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_collect_report rep;
    int missing = 0, failed = 0;
    for (int k = 0; k < p->n_units; k++) {
        missing += states[k] == LPL_UNIT_MISSING;
        failed += states[k] == LPL_UNIT_FAILED;
    }
    if (missing || failed) {
        fprintf(stderr, "loralab collect: %d of %d units missing, %d failed:\n", missing, p->n_units, failed);
        list_units(p, states, started, stderr, 1);
    }
    if (missing && !o->partial) {
        fprintf(stderr, "loralab collect: nothing written; run the missing units (loralab ablate --unit K --out %s) "
                        "or collect what there is with --partial\n", o->dir);
        return LPL_EXIT_FAILED;
    }
    char *json = lpl_plan_collect(p, (const char *const *)docs, &rep, &err);
    if (!json)
        return cli_fail("collect", err.code ? err.code : LPL_ERR_INVALID, err.msg);
    lpl_status st = write_collected(o->dir, json, &err);
    free(json);
    if (st)
        return cli_fail("collect", st, err.msg);
    if (!o->quiet)
        fprintf(stderr, "loralab collect: %d of %d units (%d done, %d failed) merged into %s/results.json, "
                        "results.csv, steps.jsonl\n", rep.n_done + rep.n_failed, rep.n_units, rep.n_done,
                rep.n_failed, o->dir);
    return failed ? LPL_EXIT_FAILED : LPL_EXIT_OK;
}

int lpl_cmd_collect(int argc, char **argv)
{
    collect_opts o = {0};
    int code = parse(argc, argv, &o);
    if (code)
        return code < 0 ? LPL_EXIT_OK : code;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_plan *p = calloc(1, sizeof *p);
    if (!p)
        return cli_fail("collect", LPL_ERR_NOMEM, "out of memory: plan");
    lpl_status st = cli_plan_read(o.dir, p, &err);
    if (st) {
        free(p);
        return cli_fail("collect", st, err.msg);
    }
    char **docs = calloc((size_t)p->n_units, sizeof *docs);
    lpl_unit_state *states = calloc((size_t)p->n_units, sizeof *states);
    int *started = calloc((size_t)p->n_units, sizeof *started);
    lpl_dir_lock lock = {0};
    if (!docs || !states || !started) {
        code = cli_fail("collect", LPL_ERR_NOMEM, "out of memory: units");
        goto done;
    }
    /* One collect at a time writes DIR (the lock a run in one process takes too). */
    if (!o.list && (code = cli_lock_out("collect", o.dir, 0, &lock)))
        goto done;
    if ((code = read_units(o.dir, p, docs, states, started)))
        goto done;
    if (o.list)
        list_units(p, states, started, stdout, 0);
    else
        code = collect(&o, p, docs, states, started);
done:
    lpl_dir_lock_release(&lock);
    for (int k = 0; docs && k < p->n_units; k++)
        free(docs[k]);
    free(docs);
    free(states);
    free(started);
    free(p);
    return code;
}
