/* Hugging Face checkpoint -> GGUF for the CLI and lab_convert_hf (declared in
 * lpl/io/model_io.h): both feed the one streamed importer (lpl/io/hf_stream.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "lpl/core/files.h"
#include "lpl/io/hf_stream.h"
#include "lpl/io/model_io.h"
#include "lpl/io/st_shards.h"
#include "hf_import.h"

/* A file or buffer is fed in order, its end first so a torch.save zip's directory is
 * known. */
#define FEED_CHUNK ((size_t)4 << 20)
#define TAIL_BYTES ((size_t)1 << 20)

lpl_status lpl_convert_hf_memory(const char *config_json, size_t config_len,
                                 const void *checkpoint_bytes, size_t checkpoint_len,
                                 const char *vocab_json, size_t vocab_len,
                                 const char *merges_txt, size_t merges_len,
                                 lpl_dtype t, void **out, size_t *out_size, lpl_error *err)
{
    lpl_hf_stream *s = lpl_hf_stream_new(config_json, config_len, vocab_json, vocab_len, merges_txt, merges_len, t,
                                         NULL, 0, err);
    if (!s)
        return err && err->code ? err->code : LPL_ERR_NOMEM;
    size_t tail = checkpoint_len < TAIL_BYTES ? checkpoint_len : TAIL_BYTES;
    const uint8_t *p = checkpoint_bytes;
    lpl_status st = lpl_hf_stream_zip_tail(s, p + checkpoint_len - tail, tail, checkpoint_len, err);
    if (st == LPL_OK)
        st = lpl_hf_stream_feed(s, p, checkpoint_len, err);
    if (st == LPL_OK)
        st = lpl_hf_stream_finish(s, out, out_size, err);
    lpl_hf_stream_free(s);
    return st;
}

/* Reads dir/a, or dir/b when a does not exist. */
static lpl_status read_either(const char *dir, const char *a, const char *b, char **buf, size_t *len, lpl_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, a);
    FILE *f = fopen(path, "rb");
    if (!f && b)
        snprintf(path, sizeof path, "%s/%s", dir, b);
    if (f)
        fclose(f);
    lpl_status st = lpl_read_file(path, buf, len, err);
    if (st != LPL_OK && b)
        lpl_fail(err, st, "%s: neither %s nor %s could be read (%s)", dir, a, b, err ? err->msg : "");
    return st;
}

static int file_exists(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Reads dir/tokenizer.json into *buf when the folder's tokenizer is to come from it:
 * a Llama-family model (Qwen2.5's folder has vocab.json + merges.txt too, but only
 * tokenizer.json holds its special tokens and pre-tokenizer), or any folder without
 * vocab.json / encoder.json. GPT-2 folders keep vocab.json + merges.txt. *buf stays
 * NULL when not. */
static lpl_status read_tokenizer_json(const char *dir, const char *config, size_t config_len, char **buf,
                                      size_t *len, lpl_error *err)
{
    lpl_gpt2_config cfg = {0};
    *buf = NULL;
    if (!file_exists(dir, "tokenizer.json"))
        return LPL_OK;
    int llama = lpl_hf_parse_config(config, config_len, &cfg, NULL) == LPL_OK && lpl_cfg_is_llama(&cfg);
    if (!llama && (file_exists(dir, "vocab.json") || file_exists(dir, "encoder.json")))
        return LPL_OK;
    return read_either(dir, "tokenizer.json", NULL, buf, len, err);
}

/* The model name from a directory path: its last component. */
static void dir_basename(const char *dir, char *out, size_t size)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    snprintf(out, size, "%.*s", (int)(n - b), dir + b);
}

/* Opens model.safetensors, else pytorch_model.bin, of dir. */
static FILE *open_dir_checkpoint(const char *dir, char *path, size_t size, lpl_error *err)
{
    snprintf(path, size, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(path, size, "%s/pytorch_model.bin", dir);
        f = fopen(path, "rb");
    }
    if (!f)
        lpl_fail(err, LPL_ERR_IO, "%s: no model.safetensors, model.safetensors.index.json or pytorch_model.bin", dir);
    return f;
}

/* Streams the open checkpoint f (of path) into s, its end first; reports tensors done. */
static lpl_status stream_file(lpl_hf_stream *s, FILE *f, const char *path, lpl_progress_fn fn, void *user,
                              lpl_error *err)
{
    lpl_status st = LPL_OK;
    uint8_t *buf = lpl_malloc(FEED_CHUNK, "read buffer", err);
    if (!buf)
        return LPL_ERR_NOMEM;
    /* off_t, not long: a 3 GB checkpoint is past 2^31 where long is 32 bits (wasm) */
    if (fseeko(f, 0, SEEK_END) != 0) {
        free(buf);
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot seek", path);
    }
    off_t size = ftello(f);
    size_t tail = size >= 0 && (uint64_t)size < TAIL_BYTES ? (size_t)size : TAIL_BYTES;
    if (size < 0 || fseeko(f, size - (off_t)tail, SEEK_SET) != 0 || fread(buf, 1, tail, f) != tail ||
        fseeko(f, 0, SEEK_SET))
        st = lpl_fail(err, LPL_ERR_IO, "%s: cannot read", path);
    if (st == LPL_OK)
        st = lpl_hf_stream_zip_tail(s, buf, tail, (uint64_t)size, err);
    int shown = 0;
    for (size_t n; st == LPL_OK && (n = fread(buf, 1, FEED_CHUNK, f)) > 0;) {
        st = lpl_hf_stream_feed(s, buf, n, err);
        int done, total;
        uint64_t bytes;
        lpl_hf_stream_progress(s, &done, &total, &bytes);
        while (fn && shown < done)
            fn(user, "convert", ++shown, total);
    }
    if (st == LPL_OK && ferror(f))
        st = lpl_fail(err, LPL_ERR_IO, "%s: read error", path);
    free(buf);
    return st;
}

/* Reads bytes [off, off + n) of a file into buf. */
static lpl_status read_at(FILE *f, const char *path, uint64_t off, void *buf, size_t n, lpl_error *err)
{
    if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(buf, 1, n, f) != n)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot read", path);
    return LPL_OK;
}

/* A sharded checkpoint (dir/model.safetensors.index.json): the shards' merged header,
 * then each shard's data section (st_shards.h). */
static lpl_status stream_shards(lpl_hf_stream *s, const char *dir, const char *index, size_t index_len,
                                lpl_progress_fn fn, void *user, lpl_error *err)
{
    char **names = NULL, path[4096];
    int n = 0, shown = 0;
    lpl_status st = lpl_st_index_shards(index, index_len, &names, &n, err);
    if (st != LPL_OK)
        return st;
    FILE **f = calloc((size_t)n, sizeof *f);
    void **heads = calloc((size_t)n, sizeof *heads);
    uint64_t *sizes = calloc((size_t)n, sizeof *sizes), *starts = calloc((size_t)n, sizeof *starts);
    uint8_t *buf = lpl_malloc(FEED_CHUNK, "read buffer", err), first[8];
    void *merged = NULL;
    size_t merged_len = 0;
    if (!f || !heads || !sizes || !starts || !buf)
        st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: shards");
    for (int i = 0; i < n && st == LPL_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!(f[i] = fopen(path, "rb")) || fseeko(f[i], 0, SEEK_END) != 0) {
            st = lpl_fail(err, LPL_ERR_IO, "%s: cannot open (a shard named by model.safetensors.index.json)", path);
            break;
        }
        off_t size = ftello(f[i]);
        sizes[i] = size > 0 ? (uint64_t)size : 0;
        if ((st = read_at(f[i], path, 0, first, sizeof first, err)) ||
            (st = lpl_st_header_bytes(first, sizes[i], &starts[i], err)))
            break;
        if (!(heads[i] = lpl_malloc((size_t)starts[i], "shard header", err))) {
            st = LPL_ERR_NOMEM;
            break;
        }
        st = read_at(f[i], path, 0, heads[i], (size_t)starts[i], err);
    }
    if (st == LPL_OK)
        st = lpl_st_merge_headers((const void *const *)heads, sizes, n, &merged, &merged_len, err);
    uint64_t total = merged_len;
    for (int i = 0; i < n; i++)
        total += sizes[i] - starts[i];
    if (st == LPL_OK && (st = lpl_hf_stream_zip_tail(s, merged, merged_len, total, err)) == LPL_OK)
        st = lpl_hf_stream_feed(s, merged, merged_len, err);
    for (int i = 0; i < n && st == LPL_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (fseeko(f[i], (off_t)starts[i], SEEK_SET) != 0)
            st = lpl_fail(err, LPL_ERR_IO, "%s: cannot seek", path);
        for (size_t k; st == LPL_OK && (k = fread(buf, 1, FEED_CHUNK, f[i])) > 0;) {
            st = lpl_hf_stream_feed(s, buf, k, err);
            int done, all;
            uint64_t bytes;
            lpl_hf_stream_progress(s, &done, &all, &bytes);
            while (fn && shown < done)
                fn(user, "convert", ++shown, all);
        }
        if (st == LPL_OK && ferror(f[i]))
            st = lpl_fail(err, LPL_ERR_IO, "%s: read error", path);
    }
    for (int i = 0; i < n; i++) {
        if (f && f[i])
            fclose(f[i]);
        if (heads)
            free(heads[i]);
    }
    free(f), free(heads), free(sizes), free(starts), free(buf), free(merged);
    lpl_st_shards_free(names, n);
    return st;
}

/* Names the checkpoint file in a message that does not already. */
static lpl_status name_file(lpl_status st, const char *path, lpl_error *err)
{
    if (st != LPL_OK && err && strncmp(err->msg, path, strlen(path))) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lpl_fail(err, st, "%s: %s", path, msg);
    }
    return st;
}

lpl_status lpl_convert_hf_dir_ex(const char *hf_dir, const char *out_path, lpl_dtype t,
                                 const char *name, lpl_progress_fn fn, void *user, lpl_error *err)
{
    char base[256], path[4096];
    char *config = NULL, *vocab = NULL, *merges = NULL, *index = NULL, *tok_json = NULL, *tok_config = NULL;
    size_t config_len = 0, vocab_len = 0, merges_len = 0, index_len = 0, out_size = 0, tok_json_len = 0,
           tok_config_len = 0;
    void *out = NULL;
    lpl_hf_stream *s = NULL;
    FILE *f = NULL;
    lpl_status st;
    dir_basename(hf_dir, base, sizeof base);
    if ((st = read_either(hf_dir, "config.json", NULL, &config, &config_len, err)) != LPL_OK)
        goto done;
    if ((st = read_tokenizer_json(hf_dir, config, config_len, &tok_json, &tok_json_len, err)) != LPL_OK)
        goto done;
    if (tok_json)
        read_either(hf_dir, "tokenizer_config.json", NULL, &tok_config, &tok_config_len, NULL);
    else if ((st = read_either(hf_dir, "vocab.json", "encoder.json", &vocab, &vocab_len, err)) ||
             (st = read_either(hf_dir, "merges.txt", "vocab.bpe", &merges, &merges_len, err)))
        goto done;
    if (fn)
        fn(user, "read", 0, 1);
    /* a sharded checkpoint has no model.safetensors, only its index */
    snprintf(path, sizeof path, "%s/model.safetensors", hf_dir);
    FILE *single = fopen(path, "rb");
    if (single)
        fclose(single);
    else if (read_either(hf_dir, "model.safetensors.index.json", NULL, &index, &index_len, NULL) == LPL_OK)
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", hf_dir);
    if (!index && !(f = open_dir_checkpoint(hf_dir, path, sizeof path, err))) {
        st = LPL_ERR_IO;
        goto done;
    }
    if (!(s = tok_json ? lpl_hf_stream_new_json(config, config_len, tok_json, tok_json_len, tok_config,
                                                tok_config_len, t, name && *name ? name : base, 0, err)
                       : lpl_hf_stream_new(config, config_len, vocab, vocab_len, merges, merges_len, t,
                                           name && *name ? name : base, 0, err))) {
        st = err && err->code ? err->code : LPL_ERR_NOMEM;
        goto done;
    }
    st = index ? stream_shards(s, hf_dir, index, index_len, fn, user, err) : stream_file(s, f, path, fn, user, err);
    if (st == LPL_OK)
        st = lpl_hf_stream_finish(s, &out, &out_size, err);
    if ((st = name_file(st, path, err)) != LPL_OK)
        goto done;
    if (fn)
        fn(user, "write", 0, 1);
    st = lpl_write_file_atomic(out_path, out, out_size, err);
    if (st == LPL_OK && fn)
        fn(user, "write", 1, 1);
done:
    if (f)
        fclose(f);
    lpl_hf_stream_free(s);
    free(out);
    free(config);
    free(vocab);
    free(merges);
    free(index);
    free(tok_json);
    free(tok_config);
    return st;
}

lpl_status lpl_convert_hf_dir(const char *hf_dir, const char *out_path, lpl_dtype t, lpl_error *err)
{
    return lpl_convert_hf_dir_ex(hf_dir, out_path, t, NULL, NULL, NULL, err);
}
