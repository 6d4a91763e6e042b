/* Tokenizers from Hugging Face's tokenizer.json, with the special tokens of
 * tokenizer_config.json and config.json. What is read (docs/FORMATS.md):
 *  - model BPE (vocab, merges as "a b" strings or [a, b] pairs, byte_fallback,
 *    ignore_merges, unk_token) and added_tokens;
 *  - byte-level: pre_tokenizer ByteLevel (GPT-2's rule), Sequence[Digits(individual),
 *    ByteLevel] (SmolLM2), Sequence[Split(Qwen2's or Llama 3's regex), ByteLevel];
 *    normalizer null or NFC; decoder ByteLevel;
 *  - SentencePiece style: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] or
 *    pre_tokenizer Metaspace; decoder Replace/ByteFallback/Fuse/Strip or Metaspace
 *    (TinyLlama, Llama 2);
 *  - post_processor TemplateProcessing (BOS/EOS around a text), ByteLevel, Sequence.
 * Anything else is refused with a message naming the field. */
#ifndef LPL_TOKENIZER_JSON_H
#define LPL_TOKENIZER_JSON_H

#include "lpl/io/tokenizer.h"

/* From the texts of tokenizer.json and, each optional (NULL), tokenizer_config.json
 * (bos_token, eos_token, unk_token, pad_token, add_bos_token, add_eos_token) and
 * config.json (bos_token_id, eos_token_id, used for what tokenizer_config.json does
 * not say). NULL with err set (LPL_ERR_FORMAT naming the file and field) on failure. */
lpl_tokenizer *lpl_tokenizer_from_json(const char *tokenizer_json, size_t len,
                                       const char *tokenizer_config, size_t config_len,
                                       const char *model_config, size_t model_config_len, lpl_error *err);

/* From a tokenizer.json file, or a folder holding one; tokenizer_config.json and
 * config.json in the same folder are read when present. */
lpl_tokenizer *lpl_tokenizer_from_json_path(const char *path, lpl_error *err);

#endif
