/* loralab train: train one placement and save its adapter (PEFT layout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/io/adapter_io.h"
#include "lpl/core/threads.h"
#include "lpl/lab/grid.h"

static const char *const help =
    "usage: loralab train [--config experiment.json] [--quick] [--out DIR] [flags]\n\n"
    "Trains one placement (the first of the config; default baseline) and writes its\n"
    "adapter (adapter_config.json + adapter_model.safetensors) with results.json,\n"
    "results.csv and steps.jsonl into DIR. Each step and eval is printed on stdout.\n\n"
    CLI_HELP_OUT("DIR             output folder (default results/train-<timestamp>); one")
    "                        process at a time writes it (DIR/.loralab.lock)\n"
    "  --init-adapter DIR    start from a saved PEFT adapter (its placement, r, alpha\n"
    "                        and dropout replace --placement, --r, --alpha, --dropout)\n"
    "  --config FILE, --quick   as for ablate\n"
    CLI_HELP_THREADS
    CLI_HELP_QUIET;

typedef struct {
    const char *config, *out, *init;
    int quick, threads, quiet, help;
} train_opts;

static int parse(int argc, char **argv, train_opts *o, lpl_experiment_config *c, int pass)
{
    cli_args a;
    const char *ignored;
    cli_args_init(&a, "train", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (pass == 0) {
            if (cli_flag(&a, "--help") || cli_flag(&a, "-h"))
                o->help = 1;
            else if (cli_flag(&a, "--quick"))
                o->quick = 1;
            else if (!cli_opt(&a, "--config", &o->config) && !cli_opt(&a, "--init-adapter", &o->init))
                a.i++;
            continue;
        }
        if (cli_flag(&a, "--quick") || cli_opt(&a, "--config", &ignored) || cli_opt(&a, "--init-adapter", &ignored))
            continue;
        if (cli_experiment_flag(&a, c) || cli_opt(&a, "--out", &o->out) ||
            cli_opt_int(&a, "--threads", 0, 1024, &o->threads))
            continue;
        if (cli_flag(&a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        return cli_usage_error("train", "unknown flag '%s' (see loralab train --help)", cli_peek(&a));
    }
    return a.bad ? LPL_EXIT_USAGE : 0;
}

/* The placement and hyper-parameters of a saved adapter become the run's. */
static lpl_status adopt_adapter(const lpl_lora *l, lpl_experiment_config *c)
{
    lpl_placement *p = &c->placements[0];
    c->n_placements = 1;
    snprintf(p->name, sizeof p->name, "%s", "adapter");
    p->lora = l->cfg;
    c->r = l->cfg.r;
    c->alpha = l->cfg.alpha;
    c->dropout = l->cfg.dropout;
    c->rslora = l->cfg.use_rslora;
    return LPL_OK;
}

static int train(const train_opts *o, lpl_experiment_config *c)
{
    lpl_error err;
    lpl_error_clear(&err);
    cli_model m;
    lpl_alpaca_set tr = {0}, ev = {0};
    lpl_run *run = NULL;
    lpl_lora *init = NULL;
    int code = LPL_EXIT_OK;
    lpl_status st = cli_model_load(c->model, 0, &m, &err);
    if (st)
        return cli_fail("train", st, err.msg);
    if (o->init) {
        init = lpl_adapter_load(o->init, &m.model->cfg, &err);
        if (!init) {
            code = cli_fail("train", err.code ? err.code : LPL_ERR_FORMAT, err.msg);
            goto done;
        }
        adopt_adapter(init, c);
    }
    c->n_placements = 1;
    st = cli_data_load(c->train, "--train", &tr, m.id.train_sha256, &err);
    if (!st && c->eval[0])
        st = cli_data_load(c->eval, "--eval", &ev, m.id.eval_sha256, &err);
    if (st) {
        code = cli_fail("train", st, err.msg);
        goto done;
    }
    snprintf(m.id.train_path, sizeof m.id.train_path, "%s", c->train);
    snprintf(m.id.eval_path, sizeof m.id.eval_path, "%s", c->eval);
    if (c->device == LPL_DEVICE_WEBGPU) {
        code = cli_fail("train", LPL_ERR_INVALID, "device \"webgpu\" runs in the browser page only (the page's worker drives the GPU); the command line trains on the CPU: use \"device\": \"cpu\"");
        goto done;
    }
    run = lpl_run_new(c, m.model, m.tok, &tr, c->eval[0] ? &ev : NULL, &m.id, &err);
    if (!run || (init && (st = lpl_run_set_init(run, 0, init->params, init->n_params, &err)))) {
        code = cli_fail("train", err.code ? err.code : LPL_ERR_INVALID, err.msg);
        goto done;
    }
    if (!o->quiet) {
        fprintf(stderr, "loralab train: placement %s (%s) on %s, output in %s/\n", c->placements[0].name,
                lpl_run_modules(run, 0), c->model, o->out);
        cli_note_base_dropout("train", c, &m.model->cfg);
    }
    cli_drive_options d = {o->out, 1, 0, 1, o->quiet, m.id.model_name[0] ? m.id.model_name : c->model, "train"};
    cli_install_sigint();
    st = cli_drive_run(run, &d, &err);
    lpl_training_summary s;
    lpl_run_summary(run, 0, &s, NULL);
    if (st == LPL_ERR_CANCELLED) {
        fprintf(stderr, "loralab train: interrupted; nothing saved\n");
        code = LPL_EXIT_FAILED;
    } else if (st) {
        code = cli_fail("train", st, err.msg);
        if (code == LPL_EXIT_USAGE)
            code = LPL_EXIT_FAILED;
    } else if (s.status == LPL_TRAINING_FAILED) {
        code = cli_fail("train", LPL_ERR_NUMERIC, s.message);
    } else {
        printf("eval_loss_before %.7g eval_loss %.7g perplexity %.7g mean_sample_perplexity %.7g\n",
               s.eval_loss_before, s.eval_loss, s.perplexity, s.mean_sample_perplexity);
        printf("modules: %s\ntrainable %lld (%.2f%% of %lld)\n", s.modules, (long long)s.trainable, s.percent,
               (long long)s.total);
    }
done:
    lpl_lora_free(init);
    lpl_run_free(run);
    lpl_alpaca_free(&tr);
    lpl_alpaca_free(&ev);
    cli_model_free(&m);
    return code;
}

int lpl_cmd_train(int argc, char **argv)
{
    train_opts o = {0};
    lpl_experiment_config c;
    lpl_experiment_default(&c);
    cli_resolve_defaults(&c); /* models/ and data/ beside the program, not the cwd */
    if (parse(argc, argv, &o, &c, 0))
        return LPL_EXIT_USAGE;
    if (o.help) {
        printf("%s\n%s", help, cli_experiment_flags_help);
        return LPL_EXIT_OK;
    }
    lpl_error err;
    lpl_error_clear(&err);
    if (o.quick)
        lpl_experiment_quick(&c);
    if (o.config && lpl_experiment_load(o.config, &c, &err))
        return cli_fail("train", err.code, err.msg);
    int code = parse(argc, argv, &o, &c, 1);
    if (code)
        return code;
    char out[LPL_PATH_MAX];
    if (!o.out) {
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        strftime(out, sizeof out, "results/train-%Y%m%d-%H%M%S", &tmv);
        o.out = out;
    }
    if (lpl_grid_has_dims(&c))
        return cli_usage_error("train", "train runs one placement: a grid (several --r or --alpha values, --bands) "
                               "goes to loralab ablate");
    c.n_placements = 1;
    lpl_status st = lpl_experiment_check(&c, NULL, &err);
    if (st)
        return cli_fail("train", st, err.msg);
    lpl_dir_lock lock = {0};
    if ((code = cli_lock_out("train", o.out, 1, &lock)))
        return code;
    lpl_threads_init(o.threads, NULL);
    code = train(&o, &c);
    lpl_dir_lock_release(&lock);
    return code;
}
