/* Fuzz target: GPT-2 BPE encode and decode with the real GPT-2 vocabulary.
 * The first byte picks the mode, the rest is the payload:
 *   0: encode the payload as UTF-8 text; valid text must encode and decode back to
 *      itself, invalid text must be refused with LPL_ERR_INVALID;
 *   1: decode the payload as little-endian int32 ids (any value, out-of-range ones
 *      must be refused);
 *   2: decode the payload as little-endian uint16 ids modulo vocab + 1 (mostly valid
 *      ids, so decoding succeeds and its output is re-encoded). */
#include "fuzz_gpt2_tokenizer.h"
#include "lpl/core/utf8.h"

/* Decodes ids; if the bytes are valid UTF-8 they must re-encode to the same bytes
 * (the ids may differ: BPE is canonical on text, not on ids). */
static int fuzz_tok_decode(const lpl_tokenizer *tok, const int *ids, int n, lpl_error *err)
{
    int V = lpl_tokenizer_vocab_size(tok);
    int in_range = 1;
    for (int i = 0; i < n; i++)
        in_range &= ids[i] >= 0 && ids[i] < V;
    char *text = NULL;
    size_t len = 0;
    lpl_status st = lpl_tokenizer_decode(tok, ids, n, &text, &len, err);
    FUZZ_ASSERT((st == LPL_OK) == in_range, "decode returned %d for ids %s range: %s", (int)st,
                in_range ? "in" : "out of", err->msg);
    if (st != LPL_OK)
        return 0;
    FUZZ_ASSERT(text != NULL && text[len] == '\0', "decoded text not NUL-terminated");
    size_t bad;
    if (lpl_utf8_validate(text, len, &bad)) {
        int *ids2 = NULL, n2 = 0;
        lpl_error e;
        st = lpl_tokenizer_encode(tok, text, len, &ids2, &n2, &e);
        FUZZ_ASSERT(st == LPL_OK, "re-encoding decoded text failed: %s", e.msg);
        char *text2 = NULL;
        size_t len2 = 0;
        st = lpl_tokenizer_decode(tok, ids2, n2, &text2, &len2, &e);
        FUZZ_ASSERT(st == LPL_OK && len2 == len && memcmp(text, text2, len) == 0,
                    "decode(encode(decode(ids))) differs (%zu vs %zu bytes)", len2, len);
        free(ids2);
        free(text2);
    }
    free(text);
    return 1;
}

static int fuzz_tok_encode(const lpl_tokenizer *tok, const uint8_t *d, size_t n, lpl_error *err)
{
    size_t bad = 0;
    int valid = lpl_utf8_validate((const char *)d, n, &bad);
    int *ids = NULL, n_ids = 0;
    lpl_status st = lpl_tokenizer_encode(tok, (const char *)d, n, &ids, &n_ids, err);
    if (!valid) {
        FUZZ_ASSERT(st == LPL_ERR_INVALID && bad < n, "invalid UTF-8 (byte %zu) gave status %d", bad,
                    (int)st);
        return 0;
    }
    FUZZ_ASSERT(st == LPL_OK, "valid UTF-8 refused: %s", err->msg);
    FUZZ_ASSERT(n_ids >= 0 && (size_t)n_ids <= n, "%d ids for %zu bytes", n_ids, n);
    char *text = NULL;
    size_t len = 0;
    st = lpl_tokenizer_decode(tok, ids, n_ids, &text, &len, err);
    FUZZ_ASSERT(st == LPL_OK, "decoding encoded ids failed: %s", err->msg);
    FUZZ_ASSERT(len == n && (n == 0 || memcmp(text, d, n) == 0), "decode(encode(text)) != text");
    free(ids);
    free(text);
    return 1;
}

int lpl_fuzz_tokenizer(const uint8_t *data, size_t size, lpl_error *err)
{
    const lpl_tokenizer *tok = fuzz_gpt2_tokenizer();
    if (size == 0)
        return 0;
    int mode = data[0] % 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (mode == 0)
        return fuzz_tok_encode(tok, p, n, err);
    size_t w = mode == 1 ? 4 : 2;
    int count = (int)(n / w);
    int *ids = malloc((size_t)(count ? count : 1) * sizeof *ids);
    FUZZ_ASSERT(ids != NULL, "out of memory");
    int V = lpl_tokenizer_vocab_size(tok);
    for (int i = 0; i < count; i++) {
        if (mode == 1) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            ids[i] = (int)(int32_t)u;
        } else {
            ids[i] = (int)(((unsigned)p[2 * i] | (unsigned)p[2 * i + 1] << 8) % (unsigned)(V + 1));
        }
    }
    int ok = fuzz_tok_decode(tok, ids, count, err);
    free(ids);
    return ok;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_tokenizer(data, size, &err);
    return 0;
}
#endif
