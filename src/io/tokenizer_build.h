/* The tokenizer's insides, for the readers that build one (tokenizer.c reads
 * vocab.json/merges.txt and GGUF, tokenizer_json.c reads tokenizer.json). Private to
 * src/io. */
#ifndef LPL_TOKENIZER_BUILD_H
#define LPL_TOKENIZER_BUILD_H

#include "lpl/io/tokenizer.h"
#include "pretokenize.h"

/* Open-addressing table from a byte string to an int (vocabulary lookup). */
typedef struct {
    uint32_t *slot; /* entry index + 1, 0 = empty */
    uint32_t cap;   /* power of two */
} lpl_str_table;

/* Open-addressing table from an id pair to a merge rank. */
typedef struct {
    uint64_t *key; /* (a << 32 | b) + 1, 0 = empty */
    int32_t *rank;
    uint32_t cap;
} lpl_pair_table;

typedef struct {
    int32_t a, b, merged;
} lpl_merge_rule;

/* How SentencePiece-style text gets its word-start mark. */
typedef enum {
    LPL_PREPEND_NONE,
    LPL_PREPEND_ALWAYS,    /* normalizer Prepend("▁"): every piece between added tokens */
    LPL_PREPEND_META,      /* Metaspace prepend_scheme "always": unless it starts with ▁ */
    LPL_PREPEND_META_FIRST /* Metaspace "first": only the piece at the start of the text */
} lpl_prepend;

/* An added token split out of the text before BPE. */
typedef struct {
    int32_t id;
    uint8_t lstrip, rstrip; /* swallow the whitespace on that side */
} lpl_added;

struct lpl_tokenizer {
    lpl_tokenizer_kind kind;
    int n_vocab;
    char **tok_str;       /* vocabulary strings (NUL-terminated) */
    char **tok_bytes;     /* what decoding each token emits */
    int32_t *tok_nbytes;
    uint8_t *tok_type;    /* LPL_TOKEN_* */
    lpl_str_table vocab;  /* tok_str -> id */
    int n_merges;
    lpl_merge_rule *merges; /* by rank */
    char **merge_str;       /* "a b" */
    lpl_pair_table pairs;
    int byte_id[256];       /* byte-level: token of each byte; SentencePiece: <0xXX> or -1 */
    lpl_pre_rule pre;
    int nfc;                /* normalizer NFC before pre-tokenisation */
    int byte_fallback;      /* SentencePiece: unknown characters become <0xXX> tokens */
    int ignore_merges;      /* a pre-token that is in the vocabulary is taken whole */
    lpl_prepend prepend;
    int strip_space;        /* decoding drops one leading space (decoder Strip / Metaspace) */
    int spm_words;          /* SentencePiece style: no token spans a word start, BPE may go word by word */
    int bos, eos, unk, pad;
    int add_bos, add_eos;
    int n_added;
    lpl_added *added;       /* longest content first */
    uint8_t added_first[32]; /* bit set of the first bytes of added tokens */
};

/* A tokenizer of n_vocab empty slots, of the given kind. */
lpl_tokenizer *lpl_tok_new(lpl_tokenizer_kind kind, int n_vocab, lpl_error *err);
/* Stores token id with string s[0..n) and type; refuses a second id for one string
 * and a second string for one id. */
lpl_status lpl_tok_set(lpl_tokenizer *t, int id, const char *s, size_t n, int type, lpl_error *err);
/* Id of s[0..n) in the vocabulary, or -1. */
int lpl_tok_find(const lpl_tokenizer *t, const char *s, size_t n);
/* After every id is set: checks there are no gaps, works out each token's bytes
 * and the byte tokens. */
lpl_status lpl_tok_finish_vocab(lpl_tokenizer *t, lpl_error *err);
/* Room for up to max merge rules. */
lpl_status lpl_tok_alloc_merges(lpl_tokenizer *t, size_t max, lpl_error *err);
/* Adds merge rule (a, b) as the next rank; where/index name its source in messages. */
lpl_status lpl_tok_add_merge(lpl_tokenizer *t, const char *a, size_t na, const char *b, size_t nb,
                             const char *where, long index, lpl_error *err);
/* Adds merge rule "a b" (merges.txt, GGUF lines): split at its one space. */
lpl_status lpl_tok_add_merge_line(lpl_tokenizer *t, const char *line, size_t n, const char *where, long index,
                                  lpl_error *err);
/* GPT-2's end of text is its BOS and EOS; it is a control token but stays text in
 * encoding (no added tokens). */
void lpl_tok_gpt2_specials(lpl_tokenizer *t);

/* Added tokens (control, user-defined) decode to their own text. */
static inline int lpl_tok_is_added_type(int type)
{
    return type == LPL_TOKEN_CONTROL || type == LPL_TOKEN_USER_DEFINED;
}

/* Marks id as an added token that encoding splits out of the text. */
lpl_status lpl_tok_add_added(lpl_tokenizer *t, int id, int lstrip, int rstrip, lpl_error *err);

#endif
