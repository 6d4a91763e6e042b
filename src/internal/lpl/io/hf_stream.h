/* Streamed Hugging Face import: a GPT-2 checkpoint (model.safetensors, a PyTorch zip
 * or a legacy pytorch_model.bin) arrives as a byte stream in file order, in chunks of
 * any size, and each tensor is converted (Q8_0 etc.) straight into its place in a GGUF
 * file built in memory. At its peak the importer holds the GGUF, one tensor (only
 * Conv1D weights, which must be transposed, are held whole; others go row by row)
 * and a buffer the size of the largest header or pickle. The same bytes come out
 * whatever the chunking. It is the project's one importer: lpl_convert_hf_memory and
 * lpl_convert_hf_dir (loralab convert) feed it too. */
#ifndef LPL_HF_STREAM_H
#define LPL_HF_STREAM_H

#include "lpl/core/common.h"

typedef struct lpl_hf_stream lpl_hf_stream;

/* Bytes the import of this config would hold at its peak (GGUF, largest held tensor
 * at 4 bytes per element, buffers), and the GGUF's size. -1 with err on a bad config. */
int64_t lpl_hf_stream_need(const char *config_json, size_t config_len, lpl_dtype t, int64_t *gguf_bytes,
                           lpl_error *err);

/* Starts an import: parses config.json and the tokenizer files, lays out the GGUF
 * (matrices of type t) and allocates it. limit > 0 refuses with LPL_ERR_NOMEM and a
 * message giving what it needs and what is available when the peak exceeds limit.
 * name is general.name (NULL: "gpt2"). NULL with err on failure. */
lpl_hf_stream *lpl_hf_stream_new(const char *config_json, size_t config_len, const char *vocab_json,
                                 size_t vocab_len, const char *merges_txt, size_t merges_len, lpl_dtype t,
                                 const char *name, int64_t limit, lpl_error *err);

/* The same with the tokenizer from a Hugging Face tokenizer.json and, optional (NULL),
 * its tokenizer_config.json (Llama-family folders have these instead of vocab.json +
 * merges.txt); config.json's bos/eos ids fill what they do not say. The vocabulary is
 * padded with [PAD<id>] tokens up to config.json's vocab_size; more tokens than that
 * is LPL_ERR_FORMAT. */
lpl_hf_stream *lpl_hf_stream_new_json(const char *config_json, size_t config_len, const char *tokenizer_json,
                                      size_t tokenizer_len, const char *tokenizer_config, size_t tokenizer_config_len,
                                      lpl_dtype t, const char *name, int64_t limit, lpl_error *err);

/* Optional, before the first feed: the checkpoint's last n bytes (of file_size).
 * torch.save's zip gives entry sizes only in its central directory, at the end; with
 * it the zip streams from the front. Bytes that do not end a zip are ignored. */
lpl_status lpl_hf_stream_zip_tail(lpl_hf_stream *s, const void *tail, size_t n, uint64_t file_size, lpl_error *err);

/* The next n bytes of the checkpoint. LPL_ERR_FORMAT / LPL_ERR_UNSUPPORTED naming the
 * tensor, storage or offset at fault; after an error the stream only accepts free. */
lpl_status lpl_hf_stream_feed(lpl_hf_stream *s, const void *data, size_t n, lpl_error *err);

/* The checkpoint has ended: checks every tensor arrived whole and the LM head is tied,
 * then hands over the GGUF (malloc'd; *out, *size). LPL_ERR_FORMAT names what is missing. */
lpl_status lpl_hf_stream_finish(lpl_hf_stream *s, void **out, size_t *size, lpl_error *err);

/* Progress: GGUF tensors complete and in all, checkpoint bytes consumed. */
void lpl_hf_stream_progress(const lpl_hf_stream *s, int *done, int *total, uint64_t *bytes);

/* Bytes the import holds beyond the GGUF and its fixed scratch, now and at most so
 * far: the framing buffer (a header, data.pkl or the legacy pickles while they are
 * read), the tensors in flight (a Conv1D weight whole, which must be transposed; of
 * any other tensor one partial row), the per-thread transpose tiles, and the index
 * (sinks, zip directory, the LM-head check). It depends on the model's widths and
 * tensor count, not on the order of the storages or the file's size. */
void lpl_hf_stream_held(const lpl_hf_stream *s, int64_t *now, int64_t *peak);

/* Format seen so far: "safetensors", "pytorch zip", "pytorch legacy" or "" (not yet known). */
const char *lpl_hf_stream_format(const lpl_hf_stream *s);

void lpl_hf_stream_free(lpl_hf_stream *s);

#endif
