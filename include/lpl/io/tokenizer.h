/* GPT-2 byte-level BPE tokenizer: GPT-2's pre-tokenisation rule with Unicode letter
 * and number classes, byte-to-unicode mapping, merges by rank, decode.
 * <|endoftext|> is id 50256 in GPT-2's vocabulary. */
#ifndef LPL_TOKENIZER_H
#define LPL_TOKENIZER_H

#include "lpl/core/common.h"
#include "lpl/io/gguf.h"

typedef struct lpl_tokenizer lpl_tokenizer;

/* From vocab.json (or encoder.json) and merges.txt (or vocab.bpe) contents. */
lpl_tokenizer *lpl_tokenizer_from_memory(const char *vocab_json, size_t vocab_len,
                                         const char *merges, size_t merges_len, lpl_error *err);
/* From files on disk. */
lpl_tokenizer *lpl_tokenizer_from_files(const char *vocab_path, const char *merges_path, lpl_error *err);
/* From tokenizer.ggml.tokens / tokenizer.ggml.merges of a GGUF. */
lpl_tokenizer *lpl_tokenizer_from_gguf(const lpl_gguf *g, lpl_error *err);
void lpl_tokenizer_free(lpl_tokenizer *t);

int lpl_tokenizer_vocab_size(const lpl_tokenizer *t);
int lpl_tokenizer_eot(const lpl_tokenizer *t);  /* id of <|endoftext|> */
/* Token string (byte-to-unicode form) of id, or NULL. */
const char *lpl_tokenizer_token(const lpl_tokenizer *t, int id);
/* Merge rule i as "a b", or NULL; count of merges. */
int lpl_tokenizer_n_merges(const lpl_tokenizer *t);
const char *lpl_tokenizer_merge(const lpl_tokenizer *t, int i);
/* The bytes token id stands for (what decode emits for it): returns their count and
 * points *bytes (if non-NULL) at them; -1 if id is out of range. */
int lpl_tokenizer_token_bytes(const lpl_tokenizer *t, int id, const char **bytes);
/* Id of a vocabulary string (byte-to-unicode form, e.g. "\xc4\xa0the"), or -1. */
int lpl_tokenizer_token_id(const lpl_tokenizer *t, const char *token);

/* Encodes UTF-8 text (the literal "<|endoftext|>" is NOT special: it is encoded as
 * text, as GPT-2's encoder does). *ids is malloc'd. LPL_ERR_INVALID on invalid UTF-8
 * (the message names the byte offset). Safe to call from several threads at once:
 * the BPE cache lives for one call. */
lpl_status lpl_tokenizer_encode(const lpl_tokenizer *t, const char *text, size_t len,
                                int **ids, int *n, lpl_error *err);
/* Splits UTF-8 text into GPT-2's pre-tokens (the pieces BPE runs on, one match of
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * each, with \s = Unicode White_Space as in Python's regex module): writes the end
 * offset of each piece to ends (room for len entries) and returns their count, or
 * -1 on invalid UTF-8. */
int lpl_pretokenize(const char *text, size_t len, size_t *ends);
/* Decodes ids to bytes (*text malloc'd, NUL-terminated). LPL_ERR_INVALID on an id out of range. */
lpl_status lpl_tokenizer_decode(const lpl_tokenizer *t, const int *ids, int n,
                                char **text, size_t *len, lpl_error *err);

#endif
