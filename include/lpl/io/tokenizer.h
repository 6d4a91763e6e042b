/* The lab's one tokenizer interface: BPE tokenizers of two kinds, built from GPT-2's
 * vocab.json + merges.txt, from a GGUF's tokenizer.ggml.* keys, or from Hugging
 * Face's tokenizer.json (lpl/io/tokenizer_json.h).
 *  - byte-level BPE (GGUF model "gpt2"): a pre-tokenisation rule cuts the text
 *    (GPT-2's, SmolLM's digits-apart, Qwen2's, Llama 3's; GGUF tokenizer.ggml.pre),
 *    each piece's bytes are merged by rank. GPT-2, SmolLM2, Qwen2.5.
 *  - SentencePiece-style BPE (GGUF model "llama"): spaces become U+2581, a U+2581 is
 *    put in front, characters are merged by rank, characters outside the vocabulary
 *    fall back to <0xXX> byte tokens. TinyLlama, Llama 2.
 * Added tokens (special tokens such as <|im_start|>) are split out of the text before
 * BPE, as Hugging Face's tokenizers do. <|endoftext|> is id 50256 in GPT-2's
 * vocabulary; GPT-2 tokenizers keep OpenAI's rule that the literal text is not special. */
#ifndef LPL_TOKENIZER_H
#define LPL_TOKENIZER_H

#include "lpl/core/common.h"
#include "lpl/io/gguf.h"

LPL_BEGIN_DECLS

typedef struct lpl_tokenizer lpl_tokenizer;

typedef enum {
    LPL_TOKENIZER_BYTE_BPE = 0, /* GGUF tokenizer.ggml.model "gpt2" */
    LPL_TOKENIZER_SPM_BPE = 1   /* GGUF tokenizer.ggml.model "llama" */
} lpl_tokenizer_kind;

/* Token types, as llama.cpp's tokenizer.ggml.token_type. */
enum {
    LPL_TOKEN_NORMAL = 1,
    LPL_TOKEN_UNKNOWN = 2,
    LPL_TOKEN_CONTROL = 3,
    LPL_TOKEN_USER_DEFINED = 4,
    LPL_TOKEN_UNUSED = 5,
    LPL_TOKEN_BYTE = 6
};

/* From vocab.json (or encoder.json) and merges.txt (or vocab.bpe) contents. */
lpl_tokenizer *lpl_tokenizer_from_memory(const char *vocab_json, size_t vocab_len,
                                         const char *merges, size_t merges_len, lpl_error *err);
/* From files on disk. */
lpl_tokenizer *lpl_tokenizer_from_files(const char *vocab_path, const char *merges_path, lpl_error *err);
/* From the tokenizer.ggml.* keys of a GGUF (model "gpt2" with pre "gpt-2", "smollm",
 * "qwen2" or "llama-bpe"; or model "llama" with tokenizer.ggml.merges, as
 * lpl_tokenizer_to_gguf writes it). LPL_ERR_FORMAT names the key at fault. */
lpl_tokenizer *lpl_tokenizer_from_gguf(const lpl_gguf *g, lpl_error *err);
/* Frees the tokenizer; NULL is a no-op. */
void lpl_tokenizer_free(lpl_tokenizer *t);

/* Number of token ids (valid ids are 0 .. size-1). */
int lpl_tokenizer_vocab_size(const lpl_tokenizer *t);
int lpl_tokenizer_eot(const lpl_tokenizer *t);  /* id of <|endoftext|>, or the EOS token; -1 if none */
/* Byte-level or SentencePiece-style BPE. */
lpl_tokenizer_kind lpl_tokenizer_kind_of(const lpl_tokenizer *t);
/* GGUF names: tokenizer.ggml.model ("gpt2", "llama") and tokenizer.ggml.pre. */
const char *lpl_tokenizer_model_name(const lpl_tokenizer *t);
const char *lpl_tokenizer_pre_name(const lpl_tokenizer *t);
/* Special ids from the config (-1 if none) and whether the model expects BOS/EOS
 * around a text (tokenizer_config.json add_bos_token, or the post-processor). */
int lpl_tokenizer_bos(const lpl_tokenizer *t);
int lpl_tokenizer_eos(const lpl_tokenizer *t);
int lpl_tokenizer_unk(const lpl_tokenizer *t);
int lpl_tokenizer_add_bos(const lpl_tokenizer *t);
int lpl_tokenizer_add_eos(const lpl_tokenizer *t);
/* LPL_TOKEN_* type of id, 0 if out of range. */
int lpl_tokenizer_token_type(const lpl_tokenizer *t, int id);
/* Number of added tokens encoding splits out of text (0 for GPT-2's files). */
int lpl_tokenizer_n_added(const lpl_tokenizer *t);
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

/* Encodes UTF-8 text: added tokens split out, then normalizer, pre-tokenisation and
 * BPE. No BOS/EOS is added (see lpl_tokenizer_add_bos). For GPT-2's own files the
 * literal "<|endoftext|>" is NOT special: it is encoded as text, as GPT-2's encoder
 * does. *ids is malloc'd. LPL_ERR_INVALID on invalid UTF-8 (the message names the
 * byte offset); LPL_ERR_FORMAT if a character has no token and the vocabulary has
 * neither byte fallback nor an unknown token. Safe to call from several threads at
 * once: the BPE cache lives for one call. */
lpl_status lpl_tokenizer_encode(const lpl_tokenizer *t, const char *text, size_t len,
                                int **ids, int *n, lpl_error *err);
/* lpl_tokenizer_encode with options. LPL_ENCODE_SPECIAL puts BOS/EOS around the
 * ids when the tokenizer's config asks (lpl_tokenizer_add_bos/_add_eos). When ends is
 * non-NULL, *ends (malloc'd, n entries) receives for each id the byte offset in text
 * where its token ends: BOS ends at 0, EOS at len; inside a piece that NFC changed,
 * or for an unknown token, the offsets are those of the piece's end or clamped to
 * it. The study uses them to give each token the role of its last byte. */
enum { LPL_ENCODE_SPECIAL = 1 };
lpl_status lpl_tokenizer_encode_ex(const lpl_tokenizer *t, const char *text, size_t len, int flags,
                                   int **ids, int *n, size_t **ends, lpl_error *err);
/* Splits UTF-8 text into GPT-2's pre-tokens (the pieces BPE runs on, one match of
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * each, with \s = Unicode White_Space as in Python's regex module): writes the end
 * offset of each piece to ends (room for len entries) and returns their count, or
 * -1 on invalid UTF-8. */
int lpl_pretokenize(const char *text, size_t len, size_t *ends);
/* The same under t's own rule (the whole text is one piece for SentencePiece-style
 * tokenizers; added tokens are not split out here). */
int lpl_tokenizer_pretokenize(const lpl_tokenizer *t, const char *text, size_t len, size_t *ends);
/* Decodes ids to bytes (*text malloc'd, NUL-terminated), as Hugging Face's decoder
 * does without skipping special tokens or cleaning up spaces; a SentencePiece-style
 * tokenizer drops the one leading space its prepended U+2581 became.
 * LPL_ERR_INVALID on an id out of range. */
lpl_status lpl_tokenizer_decode(const lpl_tokenizer *t, const int *ids, int n,
                                char **text, size_t *len, lpl_error *err);

/* Pads the vocabulary to n tokens with "[PAD<id>]" tokens of type unused, as
 * llama.cpp's converter does when a model's embedding has more rows than its
 * tokenizer has tokens (Qwen2.5: 151936 rows, 151665 tokens). LPL_ERR_INVALID if n
 * is smaller; on any failure t must be freed. */
lpl_status lpl_tokenizer_pad_vocab(lpl_tokenizer *t, int n, lpl_error *err);

/* Writes the tokenizer.ggml.* keys as llama.cpp does: model, pre, tokens,
 * token_type, merges, scores (SentencePiece-style: minus the rank of the merge
 * that makes each token), bos/eos/unk/padding ids, add_bos_token/add_eos_token. */
lpl_status lpl_tokenizer_to_gguf(const lpl_tokenizer *t, lpl_gguf_writer *w, lpl_error *err);
/* Fills w with src's keys and tensors, its tokenizer.ggml.* keys replaced by t's (a
 * model converted without its tokenizer, or with another one). Integer keys are
 * written as u32 and floats as f32; arrays of other than strings, int32 or f32 are
 * refused. LPL_ERR_INVALID if t's vocabulary does not match token_embd.weight. */
lpl_status lpl_tokenizer_embed_gguf(const lpl_gguf *src, const lpl_tokenizer *t, lpl_gguf_writer *w, lpl_error *err);

LPL_END_DECLS

#endif
