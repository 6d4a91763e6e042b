/* loralab generate: a response to a prompt from the base model or base + adapter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/io/adapter_io.h"
#include "lpl/core/threads.h"
#include "lpl/lab/generate.h"

static const char *const help =
    "usage: loralab generate [--model FILE] [--adapter DIR] --prompt TEXT [flags]\n\n"
    CLI_HELP_MODEL
    "  --adapter DIR         PEFT adapter folder\n"
    "  --prompt TEXT         the instruction (wrapped in the Alpaca template unless --raw)\n"
    "  --raw                 use the prompt as it is\n"
    "  --max-new N           new tokens at most (default 64)\n"
    "By default the answer is sampled with a seed, so that a small model writes text rather\n"
    "than repeating its most likely token; the settings used are printed on stderr.\n"
    "  --temperature X       sampling temperature (default 0.8; 0 = greedy)\n"
    "  --top-k K             sample among the K most likely tokens (default 40; 0 = all)\n"
    "  --repetition-penalty X  divide the logits of tokens already in the text by X\n"
    "                        (as transformers' generate; default 1.3; 1 = off)\n"
    "  --seed N              sampling seed (default 42)\n"
    "  --min-new N           no end-of-text before N new tokens (default 8; 0 = off)\n"
    "  --greedy              most likely tokens: defaults become temperature 0, top-k 0,\n"
    "                        penalty 1, min-new 0 (flags given still apply)\n"
    "  --quiet               no progress or settings on stderr\n";

int lpl_cmd_generate(int argc, char **argv)
{
    lpl_experiment_config d; /* the default model, found beside the program */
    lpl_experiment_default(&d);
    cli_resolve_defaults(&d);
    const char *model = d.model, *adapter = NULL, *prompt = NULL;
    int threads = 0, quiet = 0;
    lpl_generate_options go;
    lpl_generate_options_default(&go);
    int greedy = 0;
    for (int i = 1; i < argc; i++)
        greedy |= !strcmp(argv[i], "--greedy");
    if (!greedy) {
        /* the page's side-by-side defaults (web/panels/compare.js) */
        go.temperature = 0.8f;
        go.top_k = 40;
        go.repetition_penalty = 1.3f;
        go.min_new_tokens = 8;
    }
    cli_args a;
    cli_args_init(&a, "generate", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(help, stdout);
            return LPL_EXIT_OK;
        }
        if (cli_opt(&a, "--model", &model) || cli_opt(&a, "--adapter", &adapter) || cli_opt(&a, "--prompt", &prompt) ||
            cli_opt_int(&a, "--max-new", 0, 1 << 20, &go.max_new_tokens) ||
            cli_opt_float(&a, "--temperature", &go.temperature) || cli_opt_int(&a, "--top-k", 0, 1 << 30, &go.top_k) ||
            cli_opt_float(&a, "--repetition-penalty", &go.repetition_penalty) ||
            cli_opt_int(&a, "--min-new", 0, 1 << 20, &go.min_new_tokens) ||
            cli_opt_u64(&a, "--seed", &go.seed) || cli_opt_int(&a, "--threads", 0, 1024, &threads))
            continue;
        if (cli_flag(&a, "--raw")) {
            go.alpaca = 0;
            continue;
        }
        if (cli_flag(&a, "--greedy"))
            continue; /* seen above: it chose the defaults */
        if (cli_flag(&a, "--quiet")) {
            quiet = 1;
            continue;
        }
        return cli_usage_error("generate", "unknown flag '%s' (see loralab generate --help)", cli_peek(&a));
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (!prompt || !prompt[0])
        return cli_usage_error("generate", "--prompt TEXT is required");
    if (go.temperature < 0)
        return cli_usage_error("generate", "--temperature must be >= 0");
    if (!(go.repetition_penalty > 0))
        return cli_usage_error("generate", "--repetition-penalty must be > 0");
    if (!quiet && go.temperature > 0)
        fprintf(stderr, "loralab generate: sampling, temperature %g, top-k %d, repetition penalty %g, min new %d, "
                        "seed %llu (--greedy for the most likely tokens)\n", go.temperature, go.top_k,
                go.repetition_penalty, go.min_new_tokens, (unsigned long long)go.seed);
    else if (!quiet)
        fprintf(stderr, "loralab generate: greedy, repetition penalty %g, min new %d\n", go.repetition_penalty,
                go.min_new_tokens);
    lpl_threads_init(threads, NULL);
    lpl_error err;
    lpl_error_clear(&err);
    cli_model m;
    lpl_lora *lora = NULL;
    char *text = NULL;
    int code = LPL_EXIT_OK;
    lpl_status st = cli_model_load(model, 0, &m, &err);
    if (st)
        return cli_fail("generate", st, err.msg);
    if (adapter && !(lora = lpl_adapter_load(adapter, &m.model->cfg, &err))) {
        code = cli_fail("generate", err.code ? err.code : LPL_ERR_FORMAT, err.msg);
        goto done;
    }
    st = lpl_generate(m.model, lora, m.tok, prompt, &go, &text, &err);
    if (st) {
        code = cli_fail("generate", st, err.msg);
        goto done;
    }
    printf("%s\n", text);
done:
    free(text);
    lpl_lora_free(lora);
    cli_model_free(&m);
    return code;
}
