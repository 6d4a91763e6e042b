/* loralab ablate: train and compare LoRA placements on one base model and dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cJSON.h>

#include "cli_grid.h"
#include "cli_util.h"
#include "commands.h"
#include "lpl/core/threads.h"
#include "lpl/lab/grid.h"

static const char *const help =
    "usage: loralab ablate [--config experiment.json] [--quick] [flags]\n"
    "       loralab ablate --resume DIR\n"
    "       loralab ablate --plan --out DIR [--config experiment.json] [--quick] [flags]\n"
    "       loralab ablate --unit K --out DIR [--model F] [--train F] [--eval F] [--threads N]\n\n"
    "For each placement: fresh adapters (same seed) on the same frozen base, eval before\n"
    "training, train, eval after each epoch. Defaults are the study's (r 16, alpha 32,\n"
    "dropout 0.1, 3 epochs, batch 1, lr 2e-4, cosine, placements baseline, ffn, attn).\n\n"
    "run:\n"
    "  --config FILE         experiment JSON (docs/WASM_API.md); flags override it\n"
    "  --quick               8 train / 4 eval records, 1 epoch, max_len 96\n"
    CLI_HELP_OUT("DIR             output folder (default results/<timestamp>); one process")
    "                        at a time writes it (DIR/.loralab.lock names the holder)\n"
    "  --resume DIR          continue an interrupted run in DIR (its config is reused)\n"
    CLI_HELP_THREADS
    CLI_HELP_QUIET
    "grid over processes and machines (README: \"Running a grid on a Slurm cluster\"):\n"
    "  --plan                write DIR/plan.json (the expanded grid, its units in a fixed order\n"
    "                        with ids, the model and data sha256) and list the units; trains nothing\n"
    "  --unit K              run unit K (index, id or name) of DIR/plan.json into DIR/units/<id>/;\n"
    "                        a finished unit is skipped, an interrupted one starts afresh, two\n"
    "                        processes never run the same unit, and files whose sha256 differs\n"
    "                        from the plan's are refused (--model/--train/--eval: other copies)\n"
    "  then: loralab collect DIR   (merges the units into results.json, results.csv)\n";

typedef struct {
    const char *config, *resume, *out, *unit;
    int quick, threads, quiet, stop_after, help, plan;
} ablate_opts;

/* First pass: options that decide where the config comes from. */
static int first_pass(int argc, char **argv, ablate_opts *o)
{
    cli_args a;
    cli_args_init(&a, "ablate", argc, argv);
    while (cli_peek(&a)) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h"))
            o->help = 1;
        else if (cli_flag(&a, "--quick"))
            o->quick = 1;
        else if (cli_flag(&a, "--plan"))
            o->plan = 1;
        else if (!cli_opt(&a, "--config", &o->config) && !cli_opt(&a, "--resume", &o->resume) &&
                 !cli_opt(&a, "--unit", &o->unit))
            a.i++;
    }
    return a.bad;
}

static int second_pass(int argc, char **argv, ablate_opts *o, lpl_experiment_config *c)
{
    cli_args a;
    const char *ignored;
    cli_args_init(&a, "ablate", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--quick") || cli_opt(&a, "--config", &ignored) || cli_opt(&a, "--resume", &ignored) ||
            cli_flag(&a, "--plan"))
            continue;
        if (cli_experiment_flag(&a, c) || cli_opt(&a, "--out", &o->out) ||
            cli_opt_int(&a, "--threads", 0, 1024, &o->threads) ||
            cli_opt_int(&a, "--stop-after-trainings", 0, 1000, &o->stop_after))
            continue;
        if (cli_flag(&a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        return cli_usage_error("ablate", "unknown flag '%s' (see loralab ablate --help)", cli_peek(&a));
    }
    return a.bad ? LPL_EXIT_USAGE : 0;
}

/* --unit K --out DIR: only where the unit's files are and how to run it; what it
 * trains is fixed by the plan. */
static int run_unit(int argc, char **argv, const ablate_opts *o)
{
    cli_unit_options u = {0};
    const char *out = NULL, *ignored;
    cli_args a;
    cli_args_init(&a, "ablate", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_opt(&a, "--unit", &ignored) || cli_opt(&a, "--out", &out) || cli_opt(&a, "--model", &u.model) ||
            cli_opt(&a, "--train", &u.train) || cli_opt(&a, "--eval", &u.eval) ||
            cli_opt_int(&a, "--threads", 0, 1024, &u.threads))
            continue;
        if (cli_flag(&a, "--quiet")) {
            u.quiet = 1;
            continue;
        }
        return cli_usage_error("ablate", "--unit runs a unit as DIR/plan.json defines it; '%s' does not go with it "
                               "(experiment flags belong to --plan)", cli_peek(&a));
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (!out)
        return cli_usage_error("ablate", "--unit %s needs --out DIR (the folder with plan.json)", o->unit);
    return cli_ablate_unit(out, o->unit, &u);
}

/* The config of a previous run in DIR/results.json. */
static lpl_status resume_config(const char *dir, lpl_experiment_config *c, char **results, lpl_error *err)
{
    char path[LPL_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/results.json", dir);
    size_t n;
    lpl_status st = lpl_read_file(path, results, &n, err);
    if (st)
        return lpl_fail(err, st, "--resume %s: no results.json to resume from (%s)", dir, err->msg);
    cJSON *root = cJSON_Parse(*results);
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    char *text = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    cJSON_Delete(root);
    if (!text)
        return lpl_fail(err, LPL_ERR_FORMAT, "--resume %s: results.json has no \"config\"", dir);
    lpl_experiment_saved_default(c);
    st = lpl_experiment_parse_json(text, c, err);
    free(text);
    return st;
}

static void default_out(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    strftime(buf, size, "results/%Y%m%d-%H%M%S", &tmv);
}

static int run_ablation(const ablate_opts *o, const lpl_experiment_config *grid, const char *results_json)
{
    lpl_error err;
    lpl_error_clear(&err);
    cli_model m;
    lpl_alpaca_set train = {0}, eval = {0};
    lpl_run *run = NULL;
    int code = LPL_EXIT_OK;
    lpl_status st = cli_model_load(grid->model, 0, &m, &err);
    if (st)
        return cli_fail("ablate", st, err.msg);
    /* A grid runs in one process as its arms in plan order (grid.h). */
    lpl_experiment_config *c = malloc(sizeof *c);
    if (!c || lpl_grid_expand(grid, m.model->cfg.n_layer, c, &err)) {
        code = cli_fail("ablate", c ? err.code : LPL_ERR_NOMEM, c ? err.msg : "out of memory: config");
        goto done;
    }
    st = cli_data_load(c->train, "--train", &train, m.id.train_sha256, &err);
    if (!st && c->eval[0])
        st = cli_data_load(c->eval, "--eval", &eval, m.id.eval_sha256, &err);
    if (st) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    snprintf(m.id.train_path, sizeof m.id.train_path, "%s", c->train);
    snprintf(m.id.eval_path, sizeof m.id.eval_path, "%s", c->eval);
    if (c->device == LPL_DEVICE_WEBGPU) {
        code = cli_fail("ablate", LPL_ERR_INVALID, "device \"webgpu\" runs in the browser page only (the page's worker drives the GPU); the command line trains on the CPU: use \"device\": \"cpu\"");
        goto done;
    }
    run = lpl_run_new(c, m.model, m.tok, &train, c->eval[0] ? &eval : NULL, &m.id, &err);
    if (!run) {
        code = cli_fail("ablate", err.code ? err.code : LPL_ERR_INVALID, err.msg);
        goto done;
    }
    if (results_json && (st = lpl_run_resume(run, results_json, &err))) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    if (!o->quiet) {
        fprintf(stderr, "loralab ablate: model %s (%s), %d trainings, results in %s/\n", c->model,
                m.id.model_name[0] ? m.id.model_name : "unnamed", lpl_run_n_trainings(run), o->out);
        cli_note_base_dropout("ablate", c, &m.model->cfg);
        if (lpl_run_n_completed(run))
            fprintf(stderr, "loralab ablate: resuming, %d training(s) already complete\n", lpl_run_n_completed(run));
    }
    cli_drive_options d = {o->out, 0, o->stop_after, 0, o->quiet, m.id.model_name[0] ? m.id.model_name : c->model, "ablate"};
    cli_install_sigint();
    st = cli_drive_run(run, &d, &err);
    cli_print_table(stdout, run);
    fflush(stdout);
    int n = lpl_run_n_trainings(run), done_n = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        done_n += lpl_run_training_status(run, i) == LPL_TRAINING_DONE;
        failed += lpl_run_training_status(run, i) == LPL_TRAINING_FAILED;
    }
    if (st == LPL_ERR_CANCELLED) {
        fprintf(stderr, "loralab ablate: interrupted; %d of %d trainings complete in %s/; continue with: "
                        "loralab ablate --resume %s\n", done_n + failed, n, o->out, o->out);
        code = LPL_EXIT_FAILED;
    } else if (st) {
        code = cli_fail("ablate", st, err.msg);
        if (code == LPL_EXIT_USAGE)
            code = LPL_EXIT_FAILED;
    } else if (failed) {
        fprintf(stderr, "loralab ablate: %d training(s) failed (see the table); results in %s/\n", failed, o->out);
        code = LPL_EXIT_FAILED;
    } else if (!o->quiet) {
        fprintf(stderr, "loralab ablate: done; results.json, results.csv, steps.jsonl and adapters in %s/\n", o->out);
    }
done:
    free(c);
    lpl_run_free(run);
    lpl_alpaca_free(&train);
    lpl_alpaca_free(&eval);
    cli_model_free(&m);
    return code;
}

int lpl_cmd_ablate(int argc, char **argv)
{
    ablate_opts o = {0};
    if (first_pass(argc, argv, &o))
        return LPL_EXIT_USAGE;
    if (o.help) {
        printf("%s\n%s", help, cli_experiment_flags_help);
        return LPL_EXIT_OK;
    }
    if (o.unit && (o.plan || o.resume || o.config || o.quick))
        return cli_usage_error("ablate", "--unit takes its experiment from the plan: no --plan, --resume, --config "
                               "or --quick with it");
    if (o.unit)
        return run_unit(argc, argv, &o);
    if (o.plan && o.resume)
        return cli_usage_error("ablate", "--plan makes a new plan; it does not go with --resume");
    lpl_experiment_config c;
    lpl_experiment_default(&c);
    cli_resolve_defaults(&c); /* models/ and data/ beside the program, not the cwd */
    lpl_error err;
    lpl_error_clear(&err);
    char *results_json = NULL;
    int code = LPL_EXIT_OK;
    lpl_dir_lock lock = {0};
    if (o.resume && o.config)
        return cli_usage_error("ablate", "--resume reuses the saved config; do not combine it with --config");
    if (o.resume) {
        /* Lock before reading: the config and completed trainings must not change under us. */
        struct stat sb;
        if (stat(o.resume, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return cli_usage_error("ablate", "--resume %s: no such folder, so no results.json to resume from", o.resume);
        if ((code = cli_lock_out("ablate", o.resume, 0, &lock)))
            return code;
        lpl_status st = resume_config(o.resume, &c, &results_json, &err);
        if (st) {
            code = cli_fail("ablate", st, err.msg);
            goto done;
        }
    } else {
        if (o.quick)
            lpl_experiment_quick(&c);
        if (o.config && lpl_experiment_load(o.config, &c, &err))
            return cli_fail("ablate", err.code, err.msg);
    }
    if ((code = second_pass(argc, argv, &o, &c)))
        goto done;
    if (o.plan) {
        if (!o.out) {
            code = cli_usage_error("ablate", "--plan needs --out DIR (where plan.json and the units go)");
            goto done;
        }
        if (lpl_experiment_check(&c, NULL, &err)) {
            code = cli_fail("ablate", err.code, err.msg);
            goto done;
        }
        code = cli_ablate_plan(o.out, &c, o.quiet);
        goto done;
    }
    char out[LPL_PATH_MAX];
    if (o.resume)
        o.out = o.resume;
    if (!o.out) {
        default_out(out, sizeof out);
        o.out = out;
    }
    lpl_status st = lpl_experiment_check(&c, NULL, &err);
    if (st) {
        code = cli_fail("ablate", st, err.msg);
        goto done;
    }
    if (!o.resume) {
        char path[LPL_PATH_MAX + 32];
        if ((code = cli_lock_out("ablate", o.out, 1, &lock)))
            goto done;
        struct stat sb;
        snprintf(path, sizeof path, "%s/results.json", o.out);
        if (stat(path, &sb) == 0) {
            code = cli_usage_error("ablate", "--out %s already holds results.json; use --resume %s or another --out",
                                   o.out, o.out);
            goto done;
        }
    }
    lpl_threads_init(o.threads, NULL);
    code = run_ablation(&o, &c, results_json);
done:
    lpl_dir_lock_release(&lock);
    free(results_json);
    return code;
}
