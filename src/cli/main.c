/* loralab: command-line shell over the LoRA Placement Lab library. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "lpl/core/platform.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static void usage(FILE *f, const command *cmds, int n)
{
    fprintf(f, "loralab %s - LoRA Placement Lab: where should LoRA adapters go?\n\n"
               "usage: loralab <command> [options]   (loralab <command> --help for details)\n\n"
               "commands:\n", LPL_VERSION);
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
}

int main(int argc, char **argv)
{
    const command cmds[] = {
        {"ablate", lpl_cmd_ablate, "train and compare LoRA placements on one base model and dataset"},
        {"collect", lpl_cmd_collect, "merge the units of a planned grid (ablate --plan / --unit) into results"},
        {"report", lpl_cmd_report, "write a results folder as one self-contained HTML report"},
        {"train", lpl_cmd_train, "train one placement and save its adapter (PEFT layout)"},
        {"eval", lpl_cmd_eval, "eval loss and perplexity of a base model or base + adapter"},
        {"count", lpl_cmd_count, "trainable-parameter accounting per placement (no weights needed)"},
        {"generate", lpl_cmd_generate, "respond to a prompt with the base model or an adapter"},
        {"merge", lpl_cmd_merge, "write base + adapter merged as a GGUF model"},
        {"convert", lpl_cmd_convert, "convert a Hugging Face GPT-2 checkpoint to GGUF"},
        {"inspect", lpl_cmd_inspect, "show a GGUF model's config, tokenizer and tensors"},
        {"tokenize", lpl_cmd_tokenize, "GPT-2 BPE: text on stdin to ids (or --decode)"},
        {"bench", lpl_cmd_bench, "time training steps on a preset shape with random weights"},
        {"pretrain", lpl_cmd_pretrain, "full-parameter pretraining of a small GPT-2 on text"},
    };
    int n = (int)(sizeof cmds / sizeof cmds[0]);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout, cmds, n);
        return argc < 2 ? LPL_EXIT_USAGE : LPL_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("loralab %s\n", LPL_VERSION);
        return LPL_EXIT_OK;
    }
#ifdef SIGXFSZ
    /* Past a file-size limit (ulimit -f) a write then fails with EFBIG, which the
     * writers report and recover from, instead of the signal killing the program. */
    signal(SIGXFSZ, SIG_IGN);
#endif
    for (int i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name))
            continue;
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "loralab: unknown command '%s' (try loralab --help)\n", argv[1]);
    return LPL_EXIT_USAGE;
}
