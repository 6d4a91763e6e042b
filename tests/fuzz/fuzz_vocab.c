/* Fuzz target: building a tokenizer from vocab.json + merges.txt text (joined by one
 * NUL byte), then encoding a fixed sample and decoding every id. */
#include "fuzz_common.h"
#include "lpl/io/tokenizer.h"
#include "../../src/io/hf_import.h"

/* The converter parses the same files with its own reader (lpl_hf_vocab_parse):
 * it must not crash either, and must agree on the token count when both accept. */
static void fuzz_vocab_hf(const uint8_t *vocab, size_t vocab_n, const uint8_t *merges, size_t merges_n,
                          const lpl_tokenizer *tok)
{
    lpl_hf_vocab v;
    memset(&v, 0, sizeof v);
    lpl_error e;
    lpl_error_clear(&e);
    int n_vocab = tok ? lpl_tokenizer_vocab_size(tok) : 1024;
    if (lpl_hf_vocab_parse((const char *)vocab, vocab_n, (const char *)merges, merges_n, n_vocab, &v, &e) == LPL_OK) {
        FUZZ_ASSERT(v.n_tokens == n_vocab, "converter vocabulary has %lld tokens, wanted %d",
                    (long long)v.n_tokens, n_vocab);
        for (int64_t i = 0; i < v.n_tokens; i++)
            FUZZ_ASSERT(v.tokens[i] != NULL, "converter token %lld is NULL", (long long)i);
    }
    lpl_hf_vocab_free(&v);
}

int lpl_fuzz_vocab(const uint8_t *data, size_t size, lpl_error *err)
{
    const uint8_t *merges;
    size_t merges_n;
    size_t vocab_n = fuzz_split(data, size, &merges, &merges_n);
    lpl_tokenizer *tok = lpl_tokenizer_from_memory((const char *)data, vocab_n, (const char *)merges,
                                                   merges_n, err);
    fuzz_vocab_hf(data, vocab_n, merges, merges_n, tok);
    if (!tok)
        return 0;
    int V = lpl_tokenizer_vocab_size(tok);
    FUZZ_ASSERT(V >= 256, "tokenizer accepted with %d tokens", V);
    int eot = lpl_tokenizer_eot(tok);
    FUZZ_ASSERT(eot >= -1 && eot < V, "eot id %d outside 0..%d", eot, V - 1);
    for (int i = 0; i < V && i < 4096; i++) {
        const char *s = lpl_tokenizer_token(tok, i);
        FUZZ_ASSERT(s != NULL, "token %d missing", i);
        FUZZ_ASSERT(lpl_tokenizer_token_id(tok, s) == i, "token %d does not map back to itself", i);
    }
    FUZZ_ASSERT(lpl_tokenizer_token(tok, V) == NULL && lpl_tokenizer_token(tok, -1) == NULL,
                "token lookup past the vocabulary returned a string");
    int nm = lpl_tokenizer_n_merges(tok);
    for (int i = 0; i < nm && i < 4096; i++)
        FUZZ_ASSERT(lpl_tokenizer_merge(tok, i) != NULL, "merge %d missing", i);

    /* A sample with letters, digits, contractions, spaces and multi-byte text must
     * round-trip with any accepted vocabulary (every byte has a token). */
    static const char sample[] = "Hello  world, it's 42!\n\tna\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac "
                                 "\xf0\x9f\x98\x80 <|endoftext|>";
    int *ids = NULL, n = 0;
    lpl_error e;
    lpl_status st = lpl_tokenizer_encode(tok, sample, sizeof sample - 1, &ids, &n, &e);
    FUZZ_ASSERT(st == LPL_OK, "encoding the sample failed: %s", e.msg);
    char *text = NULL;
    size_t len = 0;
    st = lpl_tokenizer_decode(tok, ids, n, &text, &len, &e);
    FUZZ_ASSERT(st == LPL_OK && len == sizeof sample - 1 && memcmp(text, sample, len) == 0,
                "the sample does not round-trip");
    free(ids);
    free(text);
    lpl_tokenizer_free(tok);
    return 1;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_vocab(data, size, &err);
    return 0;
}
#endif
