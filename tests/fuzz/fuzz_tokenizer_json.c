/* Fuzz target: Hugging Face tokenizer.json (with tokenizer_config.json), then what
 * the lab does with an accepted tokenizer. The input is up to three parts joined by
 * NUL bytes: tokenizer.json, tokenizer_config.json (may be empty: none), and a text.
 * An accepted tokenizer encodes the text (if it is UTF-8) with and without BOS/EOS and
 * offsets, decodes the ids, and goes through a vocabulary-only GGUF and back, which
 * must give the same ids. */
#include "fuzz_common.h"
#include "lpl/core/utf8.h"
#include "lpl/io/gguf.h"
#include "lpl/io/tokenizer.h"
#include "lpl/io/tokenizer_json.h"

/* Encodes text with t; returns the ids (malloc'd) or NULL if encoding refused it. */
static int *fuzz_tj_encode(const lpl_tokenizer *t, const uint8_t *text, size_t n, int *count)
{
    int *ids = NULL, *ids2 = NULL, n2 = 0;
    size_t *ends = NULL;
    lpl_error e;
    lpl_error_clear(&e);
    if (lpl_tokenizer_encode(t, (const char *)text, n, &ids, count, &e) != LPL_OK) {
        FUZZ_ASSERT(e.msg[0] != '\0', "encode refused without a message");
        return NULL;
    }
    FUZZ_ASSERT(lpl_tokenizer_encode_ex(t, (const char *)text, n, LPL_ENCODE_SPECIAL, &ids2, &n2, &ends, &e) == LPL_OK,
                "encode_ex failed where encode did not: %s", e.msg);
    FUZZ_ASSERT(n2 >= *count && n2 <= *count + 2, "%d ids with BOS/EOS for %d without", n2, *count);
    for (int i = 0; i < n2; i++)
        FUZZ_ASSERT(ends[i] <= n && (i == 0 || ends[i] >= ends[i - 1]), "offset %zu of id %d (text %zu bytes)",
                    ends[i], i, n);
    free(ids2);
    free(ends);
    char *back = NULL;
    size_t len = 0;
    FUZZ_ASSERT(lpl_tokenizer_decode(t, ids, *count, &back, &len, &e) == LPL_OK, "decode of encoded ids: %s", e.msg);
    free(back);
    return ids;
}

/* The tokenizer through a vocabulary-only GGUF: it must load and encode the same. */
static void fuzz_tj_gguf(const lpl_tokenizer *t, const uint8_t *text, size_t n, const int *ids, int count)
{
    lpl_error e;
    lpl_error_clear(&e);
    lpl_gguf_writer *w = lpl_gguf_writer_new(&e);
    void *buf = NULL;
    size_t size = 0;
    FUZZ_ASSERT(w && lpl_tokenizer_to_gguf(t, w, &e) == LPL_OK && lpl_gguf_write_memory(w, &buf, &size, &e) == LPL_OK,
                "writing the tokenizer to GGUF: %s", e.msg);
    lpl_gguf *g = lpl_gguf_open_memory(buf, size, 0, &e);
    FUZZ_ASSERT(g != NULL, "reading our GGUF: %s", e.msg);
    lpl_tokenizer *t2 = lpl_tokenizer_from_gguf(g, &e);
    /* GGUF keeps neither lstrip/rstrip nor Metaspace's "first" scheme: only a
     * tokenizer without them must come back; then the ids must agree */
    if (t2 && ids) {
        int *ids2 = NULL, n2 = 0;
        if (lpl_tokenizer_encode(t2, (const char *)text, n, &ids2, &n2, &e) == LPL_OK && lpl_tokenizer_n_added(t2) == 0 &&
            lpl_tokenizer_n_added(t) == 0 && !strcmp(lpl_tokenizer_pre_name(t2), lpl_tokenizer_pre_name(t)) &&
            lpl_tokenizer_kind_of(t) == LPL_TOKENIZER_BYTE_BPE)
            FUZZ_ASSERT(n2 == count && !memcmp(ids2, ids, (size_t)count * sizeof *ids), "GGUF tokenizer encodes "
                        "differently (%d vs %d ids)", n2, count);
        free(ids2);
    }
    lpl_tokenizer_free(t2);
    lpl_gguf_close(g);
    free(buf);
    lpl_gguf_writer_free(w);
}

int lpl_fuzz_tokenizer_json(const uint8_t *data, size_t size, lpl_error *err)
{
    const uint8_t *rest, *text;
    size_t rest_n, text_n;
    size_t json_n = fuzz_split(data, size, &rest, &rest_n);
    size_t cfg_n = fuzz_split(rest, rest_n, &text, &text_n);
    lpl_tokenizer *t = lpl_tokenizer_from_json((const char *)data, json_n, cfg_n ? (const char *)rest : NULL, cfg_n,
                                               NULL, 0, err);
    if (!t) {
        FUZZ_ASSERT(err->msg[0] != '\0', "refused without a message");
        return 0;
    }
    FUZZ_ASSERT(lpl_tokenizer_vocab_size(t) >= 1, "empty vocabulary accepted");
    int count = 0, *ids = lpl_utf8_validate(text, text_n, NULL) ? fuzz_tj_encode(t, text, text_n, &count) : NULL;
    fuzz_tj_gguf(t, text, text_n, ids, count);
    free(ids);
    lpl_tokenizer_free(t);
    return 1;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_tokenizer_json(data, size, &err);
    return 0;
}
#endif
