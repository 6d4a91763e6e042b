/* loralab ablate --plan and --unit: a grid planned once, then run unit by unit in any
 * number of processes (Slurm array tasks, xargs -P, GNU parallel) that share DIR. */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_grid.h"
#include "cli_util.h"
#include "commands.h"
#include "lpl/core/threads.h"
#include "lpl/core/files.h"
#include "lpl/core/sha256.h"
#include "lpl/io/model_io.h"

void cli_unit_results_path(const char *dir, const lpl_grid_unit *u, char *buf, size_t size)
{
    snprintf(buf, size, "%s/units/%s/results.json", dir, u->id);
}

lpl_status cli_plan_read(const char *dir, lpl_plan *p, lpl_error *err)
{
    char path[LPL_PATH_MAX + 32], *text = NULL;
    size_t n;
    snprintf(path, sizeof path, "%s/plan.json", dir);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lpl_fail(err, LPL_ERR_IO, "%s: no plan (make one with loralab ablate --plan --out %s)", path, dir);
    lpl_status st = lpl_read_file(path, &text, &n, err);
    if (!st)
        st = lpl_plan_parse(text, p, err);
    free(text);
    if (st && !strstr(err->msg, path)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lpl_fail(err, st, "%s: %s", path, msg);
    }
    return st;
}

/* ---------------------------------------------------------------- --plan */

/* The absolute path of an existing file (so units find it from any working folder). */
static lpl_status abs_file(const char *what, char *path, size_t size, lpl_error *err)
{
    char buf[PATH_MAX];
    if (!realpath(path, buf))
        return lpl_fail(err, LPL_ERR_IO, "%s %s: %s", what, path, strerror(errno));
    if (strlen(buf) >= size)
        return lpl_fail(err, LPL_ERR_INVALID, "%s %s: absolute path too long", what, path);
    snprintf(path, size, "%s", buf);
    return LPL_OK;
}

/* Expands the grid for the model's layers, checks it, and hashes model and data. */
static lpl_status make_plan(const lpl_experiment_config *grid, lpl_plan *p, lpl_error *err)
{
    lpl_experiment_config *g = malloc(sizeof *g);
    if (!g)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: plan");
    *g = *grid;
    lpl_gguf *gguf = NULL;
    lpl_gpt2_model *m = NULL;
    struct stat sb;
    lpl_status st = abs_file("--model", g->model, sizeof g->model, err);
    if (!st)
        st = abs_file("--train", g->train, sizeof g->train, err);
    if (!st && g->eval[0])
        st = abs_file("--eval", g->eval, sizeof g->eval, err);
    if (st)
        goto done;
    gguf = lpl_gguf_open(g->model, err);
    m = gguf ? lpl_gpt2_from_gguf(gguf, 0, err) : NULL;
    if (!m) {
        st = err->code ? err->code : LPL_ERR_FORMAT;
        goto done;
    }
    if ((st = lpl_grid_expand(g, m->cfg.n_layer, &p->config, err)) ||
        (st = lpl_experiment_check(&p->config, &m->cfg, err)))
        goto done;
    p->n_units = lpl_grid_n_units(&p->config);
    p->model_bytes = stat(g->model, &sb) == 0 ? (int64_t)sb.st_size : 0;
    if ((st = lpl_sha256_file(g->model, p->model_sha256, err)) ||
        (st = lpl_sha256_file(g->train, p->train_sha256, err)))
        goto done;
    if (g->eval[0])
        st = lpl_sha256_file(g->eval, p->eval_sha256, err);
done:
    lpl_gpt2_free(m);
    lpl_gguf_close(gguf);
    free(g);
    return st;
}

/* 1 if the plan already in dir has exactly p's units (same ids), 0 if there is none;
 * prints why and returns -1 when dir holds something else. */
static int existing_plan(const char *dir, const lpl_plan *p)
{
    char path[LPL_PATH_MAX + 32];
    struct stat sb;
    snprintf(path, sizeof path, "%s/plan.json", dir);
    if (stat(path, &sb) != 0) {
        snprintf(path, sizeof path, "%s/results.json", dir);
        if (stat(path, &sb) == 0) {
            cli_usage_error("ablate", "--out %s holds the results of a run in one process; plan into another folder",
                            dir);
            return -1;
        }
        return 0;
    }
    lpl_plan *old = malloc(sizeof *old);
    lpl_error err;
    lpl_error_clear(&err);
    int same = old && !cli_plan_read(dir, old, &err) && old->n_units == p->n_units &&
               !strcmp(old->model_sha256, p->model_sha256) && !strcmp(old->train_sha256, p->train_sha256) &&
               !strcmp(old->eval_sha256, p->eval_sha256);
    if (same) {
        for (int k = 0; k < p->n_units && same; k++) {
            lpl_grid_unit a, b;
            same = !lpl_plan_unit(old, k, &a, NULL) && !lpl_plan_unit(p, k, &b, NULL) &&
                   !strcmp(a.id, b.id);
        }
    }
    if (!same)
        cli_usage_error("ablate", "--out %s already holds a plan of another grid (%s%d units); use another --out, or "
                        "delete %s/plan.json and %s/units/ to start over", dir, err.msg[0] ? "unreadable; " : "",
                        old && !err.msg[0] ? old->n_units : 0, dir, dir);
    free(old);
    return same ? 1 : -1;
}

static void print_units(const lpl_plan *p)
{
    for (int k = 0; k < p->n_units; k++) {
        lpl_grid_unit u;
        if (!lpl_plan_unit(p, k, &u, NULL))
            printf("%d\t%s\t%s\n", k, u.id, u.name);
    }
}

int cli_ablate_plan(const char *dir, const lpl_experiment_config *grid, int quiet)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_plan *p = calloc(1, sizeof *p);
    lpl_dir_lock lock = {0};
    char *json = NULL;
    int code = LPL_EXIT_OK, same;
    if (!p)
        return cli_fail("ablate", LPL_ERR_NOMEM, "out of memory: plan");
    lpl_status st = make_plan(grid, p, &err);
    if (!st && !(json = lpl_plan_to_json(p, grid, &err)))
        st = err.code ? err.code : LPL_ERR_NOMEM;
    if (st) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    if ((code = cli_lock_out("ablate", dir, 1, &lock)))
        goto done;
    if ((same = existing_plan(dir, p)) < 0) {
        code = LPL_EXIT_USAGE;
        goto done;
    }
    char path[LPL_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/plan.json", dir);
    if (!same && (st = lpl_write_file_atomic(path, json, strlen(json), &err))) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    print_units(p);
    if (!quiet)
        fprintf(stderr,
                "loralab ablate: %s %s: %d units (%d arms x %d seeds); run unit K (0-%d) with\n"
                "  loralab ablate --unit K --out %s\n"
                "then merge them with: loralab collect %s\n",
                same ? "plan unchanged in" : "plan written to", path, p->n_units, p->config.n_placements,
                p->n_units / p->config.n_placements, p->n_units - 1, dir, dir);
done:
    lpl_dir_lock_release(&lock);
    free(json);
    free(p);
    return code;
}

/* ---------------------------------------------------------------- --unit */

/* Unit K by index, id or name; -1 (message printed) if the plan has no such unit. */
static int find_unit(const char *dir, const lpl_plan *p, const char *key, lpl_grid_unit *u)
{
    int digits = key[0] != '\0';
    for (const char *s = key; *s; s++)
        digits &= isdigit((unsigned char)*s) != 0;
    if (digits) {
        long k = strtol(key, NULL, 10);
        if (k >= 0 && k < p->n_units && !lpl_plan_unit(p, (int)k, u, NULL))
            return (int)k;
    } else {
        for (int k = 0; k < p->n_units; k++)
            if (!lpl_plan_unit(p, k, u, NULL) && (!strcmp(u->id, key) || !strcmp(u->name, key)))
                return k;
    }
    cli_usage_error("ablate", "--unit %s: %s/plan.json has no such unit (%d units: 0-%d, or an id or name from "
                    "loralab collect %s --list)", key, dir, p->n_units, p->n_units - 1, dir);
    return -1;
}

/* Says (and returns LPL_ERR_INVALID) when a file's sha256 is not the plan's. */
static lpl_status same_file(const char *what, const char *path, const char *have, const char *want, const char *dir,
                            lpl_error *err)
{
    if (!strcmp(have, want))
        return LPL_OK;
    return lpl_fail(err, LPL_ERR_INVALID,
                    "%s %s has sha256 %.16s..., but %s/plan.json was made with %.16s...: refusing to run a unit "
                    "on other files (give the planned file with %s, or make a new plan)", what, path, have, dir,
                    want, what);
}

static int keep_lock(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    if (ftw->level == 0 || (ftw->level == 1 && !strcmp(path + ftw->base, LPL_DIR_LOCK_NAME)))
        return 0;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Empties a unit folder left by an interrupted run (all but the lock we hold). */
static lpl_status clear_unit(const char *udir, lpl_error *err)
{
    if (nftw(udir, keep_lock, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot clear the interrupted unit's files: %s", udir, strerror(errno));
    return LPL_OK;
}

/* 0 to go on; -1 when the unit is done already (skip), LPL_EXIT_FAILED when it failed
 * earlier. Said even with --quiet: a resubmitted array's logs should show why nothing ran. */
static int finished_before(const char *udir, const lpl_grid_unit *u)
{
    char path[LPL_PATH_MAX + 96], *text = NULL;
    size_t n;
    struct stat sb;
    snprintf(path, sizeof path, "%s/results.json", udir);
    if (stat(path, &sb) != 0)
        return 0;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_unit_state state = LPL_UNIT_MISSING;
    lpl_status st = lpl_read_file(path, &text, &n, &err);
    if (!st)
        st = lpl_unit_state_of(u, text, &state, &err);
    free(text);
    if (st)
        return 0; /* unreadable: treated as interrupted, and run again */
    if (state == LPL_UNIT_DONE) {
        fprintf(stderr, "loralab ablate: unit %d (%s) is already done in %s/; skipping\n", u->index, u->name, udir);
        return -1;
    }
    if (state == LPL_UNIT_FAILED) {
        fprintf(stderr, "loralab ablate: unit %d (%s) ran before and failed (see %s); not running it again\n",
                u->index, u->name, path);
        return LPL_EXIT_FAILED;
    }
    return 0;
}

typedef struct {
    cli_model m;
    lpl_alpaca_set train, eval;
    lpl_experiment_config *cfg;
} unit_inputs;

static void unit_inputs_free(unit_inputs *in)
{
    cli_model_free(&in->m);
    lpl_alpaca_free(&in->train);
    lpl_alpaca_free(&in->eval);
    free(in->cfg);
}

/* Loads the unit's model and data and checks them against the plan. */
static lpl_status load_inputs(const char *dir, const lpl_plan *p, const cli_unit_options *o, unit_inputs *in,
                              lpl_error *err)
{
    in->cfg = malloc(sizeof *in->cfg);
    if (!in->cfg)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: unit config");
    *in->cfg = p->config;
    lpl_experiment_config *c = in->cfg;
    if (o->model)
        snprintf(c->model, sizeof c->model, "%s", o->model);
    if (o->train)
        snprintf(c->train, sizeof c->train, "%s", o->train);
    if (o->eval)
        snprintf(c->eval, sizeof c->eval, "%s", o->eval);
    if (!c->eval[0] != !p->config.eval[0])
        return lpl_fail(err, LPL_ERR_INVALID, "--eval: the plan %s a separate eval file",
                        p->config.eval[0] ? "has" : "splits the training file instead of");
    lpl_status st = cli_model_load(c->model, 0, &in->m, err);
    if (!st)
        st = same_file("--model", c->model, in->m.id.model_sha256, p->model_sha256, dir, err);
    if (!st)
        st = cli_data_load(c->train, "--train", &in->train, in->m.id.train_sha256, err);
    if (!st)
        st = same_file("--train", c->train, in->m.id.train_sha256, p->train_sha256, dir, err);
    if (!st && c->eval[0]) {
        st = cli_data_load(c->eval, "--eval", &in->eval, in->m.id.eval_sha256, err);
        if (!st)
            st = same_file("--eval", c->eval, in->m.id.eval_sha256, p->eval_sha256, dir, err);
    }
    snprintf(in->m.id.train_path, sizeof in->m.id.train_path, "%s", c->train);
    snprintf(in->m.id.eval_path, sizeof in->m.id.eval_path, "%s", c->eval);
    return st;
}

/* Trains unit u (training u->index of the plan's run) into udir. */
static int train_unit(const char *udir, const lpl_grid_unit *u, unit_inputs *in, const cli_unit_options *o)
{
    lpl_error err;
    lpl_error_clear(&err);
    if (in->cfg->device == LPL_DEVICE_WEBGPU)
        return cli_fail("ablate", LPL_ERR_INVALID, "device \"webgpu\" runs in the browser page only (the page's worker drives the GPU); the command line trains on the CPU: use \"device\": \"cpu\"");
    lpl_run *run = lpl_run_new(in->cfg, in->m.model, in->m.tok, &in->train, in->cfg->eval[0] ? &in->eval : NULL,
                               &in->m.id, &err);
    if (!run)
        return cli_fail("ablate", err.code ? err.code : LPL_ERR_INVALID, err.msg);
    int code = LPL_EXIT_OK;
    lpl_status st = lpl_run_only(run, u->index, &err);
    if (st) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "loralab ablate: unit %d (%s) into %s/\n", u->index, u->name, udir);
    cli_drive_options d = {udir, 0, 0, 0, o->quiet,
                           in->m.id.model_name[0] ? in->m.id.model_name : in->cfg->model, "ablate"};
    cli_install_sigint();
    st = cli_drive_run(run, &d, &err);
    lpl_training_status ps = lpl_run_training_status(run, u->index);
    if (st == LPL_ERR_CANCELLED) {
        fprintf(stderr, "loralab ablate: unit %d (%s) interrupted; running it again starts it afresh\n", u->index,
                u->name);
        code = LPL_EXIT_FAILED;
    } else if (st) {
        code = cli_fail("ablate", st, err.msg);
        if (code == LPL_EXIT_USAGE)
            code = LPL_EXIT_FAILED;
    } else if (ps == LPL_TRAINING_FAILED) {
        lpl_training_summary s;
        lpl_run_summary(run, u->index, &s, NULL);
        fprintf(stderr, "loralab ablate: unit %d (%s) failed: %s\n", u->index, u->name, s.message);
        code = LPL_EXIT_FAILED;
    } else if (!o->quiet) {
        lpl_training_summary s;
        lpl_run_summary(run, u->index, &s, NULL);
        fprintf(stderr, "loralab ablate: unit %d (%s) done: eval loss %.4f -> %.4f\n", u->index, u->name,
                s.eval_loss_before, s.eval_loss);
    }
done:
    lpl_run_free(run);
    return code;
}

int cli_ablate_unit(const char *dir, const char *key, const cli_unit_options *o)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_plan *p = calloc(1, sizeof *p);
    unit_inputs in;
    memset(&in, 0, sizeof in);
    lpl_dir_lock lock = {0};
    lpl_grid_unit u;
    int code = LPL_EXIT_OK;
    if (!p)
        return cli_fail("ablate", LPL_ERR_NOMEM, "out of memory: plan");
    lpl_status st = cli_plan_read(dir, p, &err);
    if (st) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    if (find_unit(dir, p, key, &u) < 0) {
        code = LPL_EXIT_USAGE;
        goto done;
    }
    if ((st = load_inputs(dir, p, o, &in, &err))) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    char udir[LPL_PATH_MAX + 64];
    snprintf(udir, sizeof udir, "%s/units/%s", dir, u.id);
    if ((code = cli_lock_out("ablate", udir, 1, &lock)))
        goto done;
    if ((code = finished_before(udir, &u))) {
        code = code < 0 ? LPL_EXIT_OK : code;
        goto done;
    }
    if ((st = clear_unit(udir, &err))) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    lpl_threads_init(o->threads, NULL);
    code = train_unit(udir, &u, &in, o);
done:
    lpl_dir_lock_release(&lock);
    unit_inputs_free(&in);
    free(p);
    return code;
}
