/* Private: Hugging Face GPT-2 checkpoints -> our layout. config.json parsing, the
 * HF -> GGUF tensor-name plan with shape checks (Conv1D weights [in, out] become our
 * [out, in] rows in src/io/hf_stream.c), and vocab.json/merges.txt parsing. */
#ifndef LPL_HF_IMPORT_H
#define LPL_HF_IMPORT_H

#include "lpl/core/common.h"
#include "lpl/model/gpt2.h"
#include "lpl/io/gguf.h"
#include "lpl/io/safetensors.h"
#include "lpl/io/tokenizer.h"

/* One tensor of the GGUF we write, with where it comes from. */
typedef struct {
    char name[64];             /* GGUF name, e.g. "blk.0.attn_qkv.weight" */
    const lpl_st_tensor *src;  /* checkpoint tensor */
    int transpose;             /* Conv1D [in, out] -> [out, in] */
    int64_t rows, cols;        /* our layout; rows = 0 for a vector of cols */
    int is_matrix;             /* stored in the requested matrix type (else F32) */
    char hf[96];               /* Llama family: the checkpoint name it comes from */
    int perm_hd;               /* > 0: rows go to llama.cpp's pair order for heads of this width
                                * (HF row r lands at lpl_hf_perm_row(r, perm_hd)) */
} lpl_hf_entry;

/* GGUF row of HF row r of a "llama" attn_q / attn_k with heads of width hd. */
int64_t lpl_hf_perm_row(int64_t r, int hd);

typedef struct {
    lpl_gpt2_config cfg;
    lpl_hf_entry *e;           /* in GGUF order */
    int n;
    const lpl_st_tensor *head; /* lm_head.weight, if the checkpoint has one */
} lpl_hf_plan;

/* config.json -> config. LPL_ERR_FORMAT names a missing/mistyped key,
 * LPL_ERR_UNSUPPORTED a variant we do not run (activation, untied head, ...). */
lpl_status lpl_hf_parse_config(const char *json, size_t len, lpl_gpt2_config *cfg, lpl_error *err);

/* Maps checkpoint tensors (names with or without "transformer.") to GGUF names,
 * checks every shape against cfg, skips attn.bias / attn.masked_bias, accepts an
 * lm_head.weight equal to wte (within fp16 rounding) and refuses a different one,
 * an unknown tensor, a missing or duplicated one, naming it. Tensors need no data
 * (a streamed index): the head's values are compared by the streamed importer. */
lpl_status lpl_hf_plan_build(const lpl_gpt2_config *cfg, const lpl_st_tensor *t, int64_t n,
                             lpl_hf_plan *plan, lpl_error *err);
void lpl_hf_plan_free(lpl_hf_plan *plan);
/* The plan's entries (GGUF names, shapes, kinds) from cfg alone, no sources. */
lpl_status lpl_hf_plan_layout(const lpl_gpt2_config *cfg, lpl_hf_plan *plan, lpl_error *err);


/* Tokenizer vocabulary in id order and merges in rank order. */
typedef struct {
    char **tokens;
    int64_t n_tokens;
    char **merges;
    int64_t n_merges;
} lpl_hf_vocab;

/* vocab.json / encoder.json (token -> id, ids 0..n-1 each once) and merges.txt /
 * vocab.bpe ("#version" line, then "a b" per line). Padded with "[PAD<i>]" up to
 * n_vocab; more tokens than n_vocab is an error. Non-UTF-8 text is refused. */
lpl_status lpl_hf_vocab_parse(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                              int n_vocab, lpl_hf_vocab *v, lpl_error *err);
void lpl_hf_vocab_free(lpl_hf_vocab *v);

/* Parses vocab/merges and adds the general.*, gpt2.* and tokenizer keys of a model
 * of config cfg and matrix type t to w (everything of the GGUF but its tensors). */
lpl_status lpl_hf_write_head(const lpl_gpt2_config *cfg, lpl_dtype t, const char *name, const char *vocab,
                             size_t vocab_len, const char *merges, size_t merges_len, lpl_gguf_writer *w,
                             lpl_error *err);

/* The same with a tokenizer from tokenizer.json (lpl/io/tokenizer_json.h): padded
 * with [PAD<id>] tokens up to config.json's vocab_size (tok is changed), written with
 * lpl_tokenizer_to_gguf. LPL_ERR_FORMAT when it has more tokens than vocab_size. */
lpl_status lpl_hf_write_head_tok(const lpl_gpt2_config *cfg, lpl_dtype t, const char *name,
                                 lpl_tokenizer *tok, lpl_gguf_writer *w, lpl_error *err);

#endif
