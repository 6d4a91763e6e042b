/* loralab merge: base + adapter written as one GGUF model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/io/adapter_io.h"
#include "lpl/core/kernels.h"
#include "lpl/io/model_io.h"

static const char *const help =
    "usage: loralab merge --model FILE --adapter DIR --out FILE.gguf [--type f32|f16|q8_0|q4_0]\n\n"
    "Adds scaling * B A to the base weights (in fp32) and writes the merged model with its\n"
    "tokenizer.\n\n"
    "  --model FILE          GGUF model to merge into\n"
    "  --adapter DIR         PEFT adapter folder (adapter_config.json + adapter_model.safetensors)\n"
    CLI_HELP_OUT("FILE            output GGUF (written to a temporary name, then renamed)")
    CLI_HELP_TYPE("f32, f16, q8_0 or q4_0 (default: the input model's)");

static lpl_status write_merged(const cli_model *m, lpl_dtype t, const char *name, const char *out, lpl_error *err)
{
    int nt = lpl_tokenizer_vocab_size(m->tok), nm = lpl_tokenizer_n_merges(m->tok);
    const char **tokens = calloc((size_t)nt + 1, sizeof *tokens);
    const char **merges = calloc((size_t)nm + 1, sizeof *merges);
    lpl_gguf_writer *w = NULL;
    lpl_status st = LPL_OK;
    if (!tokens || !merges) {
        st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: tokenizer lists");
        goto done;
    }
    for (int i = 0; i < nt; i++)
        tokens[i] = lpl_tokenizer_token(m->tok, i);
    for (int i = 0; i < nm; i++)
        merges[i] = lpl_tokenizer_merge(m->tok, i);
    w = lpl_gguf_writer_new(err);
    if (!w) {
        st = err->code;
        goto done;
    }
    st = lpl_gpt2_to_gguf(m->model, t, name, tokens, nt, merges, nm, w, err);
    if (!st)
        st = lpl_gguf_write_file(w, out, err);
done:
    lpl_gguf_writer_free(w);
    free(tokens);
    free(merges);
    return st;
}

int lpl_cmd_merge(int argc, char **argv)
{
    const char *model = NULL, *adapter = NULL, *out = NULL, *type = NULL;
    cli_args a;
    cli_args_init(&a, "merge", argc, argv);
    while (cli_peek(&a) && !a.bad) {
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(help, stdout);
            return LPL_EXIT_OK;
        }
        if (cli_opt(&a, "--model", &model) || cli_opt(&a, "--adapter", &adapter) || cli_opt(&a, "--out", &out) ||
            cli_opt(&a, "--type", &type))
            continue;
        return cli_usage_error("merge", "unknown flag '%s' (see loralab merge --help)", cli_peek(&a));
    }
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (!model || !adapter || !out)
        return cli_usage_error("merge", "--model, --adapter and --out are required");
    lpl_dtype t = LPL_F32;
    if (type && !lpl_matrix_type_from_name(type, &t))
        return cli_usage_error("merge", "--type '%s': expected f32, f16, q8_0 or q4_0", type);
    lpl_error err;
    lpl_error_clear(&err);
    cli_model m;
    lpl_lora *lora = NULL;
    int code = LPL_EXIT_OK;
    lpl_status st = cli_model_load(model, 1, &m, &err);
    if (st)
        return cli_fail("merge", st, err.msg);
    if (!type)
        t = m.model->blocks[0].w[0].type;
    lora = lpl_adapter_load(adapter, &m.model->cfg, &err);
    if (!lora) {
        code = cli_fail("merge", err.code ? err.code : LPL_ERR_FORMAT, err.msg);
        goto done;
    }
    /* Merge in fp32 so the only rounding is the final conversion to --type. */
    st = lpl_gpt2_make_trainable(m.model, &err);
    if (!st)
        st = lpl_gpt2_merge_lora(m.model, lora, +1, &err);
    char name[200];
    snprintf(name, sizeof name, "%s+lora", m.id.model_name[0] ? m.id.model_name : "model");
    if (!st)
        st = write_merged(&m, t, name, out, &err);
    if (st) {
        /* Model and adapter were read: whatever fails now (merging, a disk full or
         * read-only output) is a failed run. */
        cli_fail("merge", st, err.msg);
        code = LPL_EXIT_FAILED;
        goto done;
    }
    printf("wrote %s (%s, %d adapted modules merged)\n", out, lpl_dtype_name(t), lora->n_modules);
done:
    lpl_lora_free(lora);
    cli_model_free(&m);
    return code;
}
