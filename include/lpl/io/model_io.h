/* GPT-2 models in and out of GGUF (llama.cpp "gpt2" architecture names), and
 * Hugging Face checkpoints (config.json + model.safetensors | pytorch_model.bin +
 * vocab.json/merges.txt or encoder.json/vocab.bpe) converted to GGUF. */
#ifndef LPL_MODEL_IO_H
#define LPL_MODEL_IO_H

#include "lpl/core/common.h"
#include "lpl/io/gguf.h"
#include "lpl/model/gpt2.h"

LPL_BEGIN_DECLS

/* Builds a model whose tensors point into an open GGUF (which must outlive the
 * model unless copy != 0). Checks every tensor's presence, type and shape against
 * the config in the file; LPL_ERR_FORMAT names the first mismatch. */
lpl_gpt2_model *lpl_gpt2_from_gguf(const lpl_gguf *g, int copy, lpl_error *err);

/* Writes a model (matrices converted to type t: f32, f16, q8_0, q4_0) with its
 * tokenizer vocabulary (tokens[n_tokens] in GPT-2's byte-to-unicode form, merges
 * "a b" strings) to a GGUF writer. name is general.name. */
lpl_status lpl_gpt2_to_gguf(const lpl_gpt2_model *m, lpl_dtype t, const char *name,
                            const char *const *tokens, int64_t n_tokens,
                            const char *const *merges, int64_t n_merges,
                            lpl_gguf_writer *w, lpl_error *err);

/* Converts a Hugging Face GPT-2 checkpoint directory to a GGUF file of matrix type t. */
lpl_status lpl_convert_hf_dir(const char *hf_dir, const char *out_path, lpl_dtype t, lpl_error *err);

/* Same from bytes in memory (the browser): config.json text, the checkpoint bytes
 * (safetensors or a PyTorch zip, detected from content), vocab.json and merges.txt
 * text. Writes a malloc'd GGUF into *out, *out_size. */
lpl_status lpl_convert_hf_memory(const char *config_json, size_t config_len,
                                 const void *checkpoint, size_t checkpoint_len,
                                 const char *vocab_json, size_t vocab_len,
                                 const char *merges_txt, size_t merges_len,
                                 lpl_dtype t, void **out, size_t *out_size, lpl_error *err);

/* GGUF tensor stem of a site: "attn_qkv", "attn_output", "ffn_up", "ffn_down". */
const char *lpl_gguf_site_name(lpl_site s);

/* Progress of a conversion: stage ("read", "convert", "write"), done of total units. */
typedef void (*lpl_progress_fn)(void *user, const char *stage, int64_t done, int64_t total);

/* lpl_convert_hf_dir with a progress callback (fn may be NULL) and general.name. */
lpl_status lpl_convert_hf_dir_ex(const char *hf_dir, const char *out_path, lpl_dtype t,
                                 const char *name, lpl_progress_fn fn, void *user, lpl_error *err);

LPL_END_DECLS

#endif
