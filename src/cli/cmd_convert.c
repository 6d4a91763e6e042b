/* loralab convert: a Hugging Face GPT-2 checkpoint directory to a GGUF model file. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/core/kernels.h"
#include "lpl/core/threads.h"
#include "lpl/io/gguf.h"
#include "lpl/io/model_io.h"
#include "lpl/io/tokenizer_json.h"

static const char *const convert_help =
    "usage: loralab convert --from HF_DIR --to FILE.gguf [--type q8_0|q4_0|f16|f32] [--name NAME]\n"
    "                       [--tokenizer tokenizer.json|DIR] [--threads N] [--quiet]\n"
    "\n"
    "Converts a Hugging Face checkpoint (GPT2LMHeadModel: GPT-2, distilgpt2, DialoGPT;\n"
    "LlamaForCausalLM / Qwen2ForCausalLM: SmolLM2, TinyLlama, Qwen2.5) to a GGUF file with\n"
    "llama.cpp's gpt2 / llama / qwen2 names and the tokenizer inside.\n"
    "\n"
    "  --from HF_DIR         directory with config.json, model.safetensors (or\n"
    "                        model.safetensors.index.json and its shards) or pytorch_model.bin,\n"
    "                        and the tokenizer: tokenizer.json (+ tokenizer_config.json) for\n"
    "                        llama/qwen2 or a folder without vocab.json, else vocab.json +\n"
    "                        merges.txt (or encoder.json + vocab.bpe)\n"
    "  --to FILE             output GGUF (written to a temporary name, then renamed)\n"
    CLI_HELP_TYPE("q8_0 (default), q4_0, f16 or f32;")
    "                        LayerNorms, biases and position embeddings stay f32\n"
    "  --name NAME           general.name (default: the directory's name)\n"
    "  --tokenizer PATH      embed this Hugging Face tokenizer.json (or a folder holding one, with\n"
    "                        its tokenizer_config.json) instead of vocab.json + merges.txt: the\n"
    "                        tokenizer.ggml.* keys as llama.cpp writes them (docs/FORMATS.md)\n"
    CLI_HELP_THREADS
    "                        (Conv1D weights are transposed and quantized on them; the file is\n"
    "                        the same whatever the count)\n"
    CLI_HELP_QUIET
    "\n"
    "Exit codes: 0 converted, 1 failed while converting, 2 bad usage or unreadable input.\n";

typedef struct {
    int quiet;
    int tty;
    int writing;   /* the output is being written: a failure now is not bad input */
} progress_state;

/* One \r-updated line on a terminal; otherwise a line at each quarter. */
static void progress(void *user, const char *stage, int64_t done, int64_t total)
{
    progress_state *p = user;
    if (!strcmp(stage, "write"))
        p->writing = 1;
    if (p->quiet)
        return;
    if (!strcmp(stage, "convert")) {
        if (p->tty)
            fprintf(stderr, "\rconvert: tensor %lld/%lld%s", (long long)done, (long long)total, done == total ? "\n" : "");
        else if ((done * 4) / total != ((done - 1) * 4) / total)
            fprintf(stderr, "convert: tensor %lld/%lld\n", (long long)done, (long long)total);
    } else if (!strcmp(stage, "write") && done == 0) {
        fprintf(stderr, "convert: writing\n");
    } else if (!strcmp(stage, "read") && done == 0) {
        fprintf(stderr, "convert: reading checkpoint\n");
    }
}

/* Rewrites the converted file with tok's tokenizer.ggml.* keys (through a temporary
 * file and rename: the file being read stays mapped until the new one is in place). */
static lpl_status embed_tokenizer(const char *path, lpl_tokenizer *tok, const char *from, int quiet,
                                  lpl_error *err)
{
    lpl_gguf *g = lpl_gguf_open(path, err);
    const lpl_gguf_tensor *te = g ? lpl_gguf_find_tensor(g, "token_embd.weight") : NULL;
    /* an embedding with more rows than tokens (Qwen2.5) gets [PAD<id>] tokens */
    if (te && te->n_dims == 2 && te->ne[1] > lpl_tokenizer_vocab_size(tok) && te->ne[1] < INT32_MAX / 2 &&
        lpl_tokenizer_pad_vocab(tok, (int)te->ne[1], err) != LPL_OK) {
        lpl_gguf_close(g);
        return err->code;
    }
    lpl_gguf_writer *w = g ? lpl_gguf_writer_new(err) : NULL;
    lpl_status st = w ? lpl_tokenizer_embed_gguf(g, tok, w, err) : err->code;
    if (st == LPL_OK)
        st = lpl_gguf_write_file(w, path, err);
    if (st == LPL_OK && !quiet)
        fprintf(stderr, "convert: tokenizer from %s (%s, pre %s, %d tokens)\n", from, lpl_tokenizer_model_name(tok),
                lpl_tokenizer_pre_name(tok), lpl_tokenizer_vocab_size(tok));
    lpl_gguf_writer_free(w);
    lpl_gguf_close(g);
    return st;
}

int lpl_cmd_convert(int argc, char **argv)
{
    cli_args a;
    const char *from = NULL, *to = NULL, *type = "q8_0", *name = NULL, *tokenizer = NULL;
    int quiet = 0, threads = 0;
    lpl_dtype t;
    cli_args_init(&a, "convert", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(convert_help, stdout);
            return LPL_EXIT_OK;
        }
        if (cli_opt(&a, "--from", &from) || cli_opt(&a, "--to", &to) || cli_opt(&a, "--type", &type) ||
            cli_opt(&a, "--name", &name) || cli_opt(&a, "--tokenizer", &tokenizer) ||
            cli_opt_int(&a, "--threads", 0, 1024, &threads))
            continue;
        if (cli_flag(&a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (a.bad)
            break;
        return cli_usage_error("convert", "unknown flag '%s' (see loralab convert --help)", cli_peek(&a));
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (!from || !to)
        return cli_usage_error("convert", "--from HF_DIR and --to FILE.gguf are required (see --help)");
    if (!lpl_matrix_type_from_name(type, &t))
        return cli_usage_error("convert", "flag --type: '%s' is not one of q8_0, q4_0, f16, f32", type);
    lpl_error err = {0};
    /* read first: a bad tokenizer.json is bad input, found before any conversion */
    lpl_tokenizer *tok = tokenizer ? lpl_tokenizer_from_json_path(tokenizer, &err) : NULL;
    if (tokenizer && !tok)
        return cli_fail("convert", err.code == LPL_ERR_NOMEM ? LPL_ERR_NOMEM : LPL_ERR_INVALID, err.msg);
    lpl_threads_init(threads, NULL); /* on failure the pool runs everything on this thread */
    progress_state ps = {quiet, isatty(2), 0};
    lpl_status st = lpl_convert_hf_dir_ex(from, to, t, name, progress, &ps, &err);
    if (st == LPL_OK && tok && (st = embed_tokenizer(to, tok, tokenizer, quiet, &err)) != LPL_OK) {
        /* no file with a tokenizer other than the one asked for */
        lpl_tokenizer_free(tok);
        remove(to);
        return cli_fail("convert", st, err.msg);
    }
    lpl_tokenizer_free(tok);
    if (st != LPL_OK) {
        int code = cli_fail("convert", st, err.msg);
        /* The checkpoint was read and converted: a disk full or read-only output is a
         * failed run (1), not bad input (2). */
        return ps.writing ? LPL_EXIT_FAILED : code;
    }
    if (!quiet)
        fprintf(stderr, "convert: wrote %s\n", to);
    return LPL_EXIT_OK;
}
