/* loralab eval: eval loss and perplexity of a base model or base + adapter on a data file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/io/adapter_io.h"
#include "lpl/core/threads.h"

static const char *const help =
    "usage: loralab eval [--model FILE] [--adapter DIR] [--eval FILE] [flags]\n\n"
    "Eval loss (total NLL / scored tokens), perplexity = exp(eval loss), and the mean of\n"
    "per-example perplexities, of the base model or base + a PEFT adapter.\n\n"
    CLI_HELP_MODEL
    "  --adapter DIR         PEFT adapter folder (adapter_config.json + adapter_model.safetensors)\n"
    CLI_HELP_EVAL("")
    CLI_HELP_N_EVAL
    CLI_HELP_MAX_LEN_FIT
    "  --response-only       score only the response tokens\n"
    CLI_HELP_JSON("the result, with trainer_eval_loss and the loss per token role")
    "  --tokens              with --json: every token of every example with its id, text, role\n"
    "                        (template, instruction, input, response), whether it is scored, its\n"
    "                        loss under the base model (loss) and with the adapter (loss_adapter)\n"
    CLI_HELP_THREADS;

int lpl_cmd_eval(int argc, char **argv)
{
    lpl_experiment_config d; /* the same defaults as ablate and train, found beside the program */
    lpl_experiment_default(&d);
    cli_resolve_defaults(&d);
    const char *model = d.model, *adapter = NULL, *data = d.eval;
    int n = 0, max_len = d.max_len, response_only = 0, json = 0, tokens = 0, threads = 0;
    cli_args a;
    cli_args_init(&a, "eval", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(help, stdout);
            return LPL_EXIT_OK;
        }
        /* --data and --n: hidden aliases of --eval and --n-eval for one release */
        if (cli_opt(&a, "--model", &model) || cli_opt(&a, "--adapter", &adapter) || cli_opt(&a, "--eval", &data) ||
            cli_opt(&a, "--data", &data) || cli_opt_int(&a, "--n-eval", 0, 10000000, &n) ||
            cli_opt_int(&a, "--n", 0, 10000000, &n) || cli_opt_max_len(&a, &max_len) ||
            cli_opt_int(&a, "--threads", 0, 1024, &threads))
            continue;
        if (cli_flag(&a, "--response-only")) {
            response_only = 1;
            continue;
        }
        if (cli_flag(&a, "--json")) {
            json = 1;
            continue;
        }
        if (cli_flag(&a, "--tokens")) {
            tokens = 1;
            continue;
        }
        return cli_usage_error("eval", "unknown flag '%s' (see loralab eval --help)", cli_peek(&a));
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (tokens && !json)
        return cli_usage_error("eval", "--tokens prints JSON: give --json with it");
    lpl_threads_init(threads, NULL);
    lpl_error err;
    lpl_error_clear(&err);
    cli_model m;
    lpl_alpaca_set set = {0};
    lpl_example_set ex = {0};
    lpl_lora *lora = NULL;
    int code = LPL_EXIT_OK;
    lpl_status st = cli_model_load(model, 0, &m, &err);
    if (st)
        return cli_fail("eval", st, err.msg);
    max_len = lpl_experiment_max_len(max_len, m.model->cfg.n_ctx);
    if (max_len > m.model->cfg.n_ctx) { /* refused, as train and ablate refuse it */
        code = cli_usage_error("eval", "--max-len %d exceeds the model's context of %d tokens", max_len,
                               m.model->cfg.n_ctx);
        goto done;
    }
    if (adapter && !(lora = lpl_adapter_load(adapter, &m.model->cfg, &err))) {
        code = cli_fail("eval", err.code ? err.code : LPL_ERR_FORMAT, err.msg);
        goto done;
    }
    if ((st = cli_data_load(data, "--eval", &set, NULL, &err))) {
        code = cli_fail("eval", st, err.msg);
        goto done;
    }
    if (n > set.n) {
        code = cli_usage_error("eval", "--n-eval %d but %s has %d records", n, data, set.n);
        goto done;
    }
    lpl_alpaca_set view = {set.records, n > 0 ? n : set.n};
    int n_records = view.n;
    st = lpl_examples_build(&view, m.tok, max_len, response_only, &ex, &err);
    lpl_eval_result r;
    if (!st && tokens) {
        const char *names[1] = {"adapter"};
        /* lpl_evaluate's states compute in f32: the token view does the same, so its
         * losses average to the eval loss `eval --json` prints */
        char *view = lpl_token_view_json(m.model, m.tok, &lora, names, lora ? 1 : 0, &ex, 0, ex.n, LPL_COMPUTE_F32, &err);
        if (view)
            printf("%s\n", view);
        free(view);
        st = view ? LPL_OK : err.code;
        if (st)
            code = cli_fail("eval", st, err.msg);
        goto done;
    }
    if (!st)
        st = lpl_evaluate(m.model, lora, &ex, &r, &err);
    if (st) {
        code = cli_fail("eval", st, err.msg);
        goto done;
    }
    if (json) {
        printf("{\"eval_loss\": %.9g, \"perplexity\": %.9g, \"mean_sample_perplexity\": %.9g, "
               "\"trainer_eval_loss\": %.9g, \"n_tokens\": %lld, \"n_samples\": %d, \"records\": %d, \"roles\": {",
               r.eval_loss, r.perplexity, r.mean_sample_perplexity, r.trainer_eval_loss, (long long)r.n_tokens,
               r.n_samples, n_records);
        for (int k = 0; k < LPL_N_ROLES; k++)
            printf("%s\"%s\": {\"n_tokens\": %lld, \"nll_sum\": %.9g}", k ? ", " : "", lpl_role_name(k),
                   (long long)r.role_tokens[k], r.role_nll[k]);
        printf("}}\n");
    } else {
        printf("eval_loss %.7g perplexity %.7g mean_sample_perplexity %.7g tokens %lld samples %d\n", r.eval_loss,
               r.perplexity, r.mean_sample_perplexity, (long long)r.n_tokens, r.n_samples);
        printf("trainer_eval_loss %.7g (HF Trainer: mean of per-batch token means, batches of %d)\n",
               r.trainer_eval_loss, LPL_TRAINER_EVAL_BATCH);
        for (int k = 0; k < LPL_N_ROLES; k++)
            if (r.role_tokens[k])
                printf("  %-12s %6lld tokens  loss %.4f\n", lpl_role_name(k), (long long)r.role_tokens[k],
                       r.role_nll[k] / (double)r.role_tokens[k]);
    }
done:
    lpl_examples_free(&ex);
    lpl_lora_free(lora);
    lpl_alpaca_free(&set);
    cli_model_free(&m);
    return code;
}
