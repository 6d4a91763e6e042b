/* Streamed Hugging Face import (include/lpl/io/hf_stream.h). A small state machine
 * reads the checkpoint's framing as it arrives (safetensors header; zip local headers,
 * data.pkl and storages; legacy pickles and storage records) and routes the bytes of
 * each storage to per-tensor sinks, which convert rows straight into the GGUF laid
 * out in memory at the start. Conv1D weights are held whole (they must be
 * transposed), one at a time; everything else goes row by row. */
#include "lpl/io/hf_stream.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_import.h"
#include "lpl/core/kernels.h"
#include "lpl/core/threads.h"
#include "lpl/io/gguf.h"
#include "lpl/io/safetensors.h"
#include "lpl/io/tokenizer_json.h"
#include "lpl/io/torch_zip.h"
#include "le_bytes.h"
#include "zip.h"

#define PICKLE_MAX ((size_t)64 << 20) /* data.pkl / legacy pickles: a few hundred KB in practice */
#define PICKLE_STEP ((size_t)64 << 10)
#define TILE 32                       /* rows of a transposed tensor converted together */
/* A tile's rows lie (cols + TILE_PAD) floats apart: with cols a power of two, rows
 * exactly 4 KB apart share one L1 set, and the column-by-column fill of 32 of them
 * evicted itself on every store. */
#define TILE_PAD 16
#define TILE_FLOATS(cols) ((size_t)TILE * (size_t)((cols) + TILE_PAD))

typedef enum {
    S_DETECT, S_ST_LEN, S_ST_HEADER, S_ST_DATA,
    S_ZIP_LOCAL, S_ZIP_PKL, S_ZIP_BYTEORDER, S_ZIP_STORAGE, S_ZIP_SKIP,
    S_LEG_PICKLES, S_LEG_HEAD, S_LEG_STORAGE,
    S_TAIL, S_FAILED
} state;

typedef enum { K_SKIP, K_ENTRY, K_HEAD } sink_kind;

/* Where the bytes of one checkpoint tensor go. */
typedef struct {
    sink_kind kind;
    const lpl_st_tensor *t;
    const char *skey;      /* storage key (NULL: the safetensors data section) */
    uint64_t begin, end;   /* byte range in its storage */
    uint64_t got;          /* bytes received */
    int entry;             /* plan entry (K_ENTRY) */
    int64_t rows, cols;    /* as converted (rows >= 1) */
    size_t es;             /* bytes per source element */
    uint8_t *held;         /* transposed: the whole tensor; else one partial row */
    size_t held_len;
    int64_t row;           /* rows converted */
} sink;

struct lpl_hf_stream {
    lpl_gpt2_config cfg;
    lpl_dtype type;
    lpl_hf_plan plan;      /* layout first; mapped to the checkpoint once indexed */
    uint8_t *out;          /* the GGUF file */
    size_t out_size;
    size_t *at;            /* data offset of each plan entry in out */
    int done, indexed;
    state st;
    uint64_t pos;          /* checkpoint bytes fed */
    const char *format;
    /* framing buffer (headers, pickles) */
    uint8_t *buf;
    size_t len, cap, want;
    /* current storage / zip entry */
    char cur_key[256];
    uint64_t cur_off, remaining;
    uint32_t crc;
    char prefix[256];
    int have_pkl;
    lpl_zip_dir dir;        /* from the file's end, when the caller gave it */
    uint64_t gap;           /* bytes between this zip entry's data and the next header */
    int64_t leg_i;
    /* the checkpoint's index */
    lpl_safetensors *sf;
    lpl_torch_ckpt *pt;
    sink *sinks;
    int64_t n_sinks;
    /* scratch */
    float *row, *tile, col[TILE];
    int64_t max_cols;
    uint64_t *wte_hash, *head_hash; /* per row, when the checkpoint has an lm_head */
    /* bytes held beyond the GGUF and the fixed scratch: framing buffer, tensors and
     * rows in flight, per-thread tiles, the index (lpl_hf_stream_held) */
    int64_t held, held_peak;
};

/* Counts n more (or, negative, fewer) bytes held. */
static void hold(lpl_hf_stream *s, int64_t n)
{
    s->held += n;
    if (s->held > s->held_peak)
        s->held_peak = s->held;
}

/* ------------------------------------------------------------------ sizes */

/* GGUF type and data bytes of plan entry e. */
static lpl_dtype entry_type(const lpl_hf_entry *e, lpl_dtype t)
{
    return e->is_matrix && t != LPL_F32 ? t : LPL_F32;
}

static size_t entry_bytes(const lpl_hf_entry *e, lpl_dtype t)
{
    int64_t rows = e->rows ? e->rows : 1;
    return lpl_dtype_row_bytes(entry_type(e, t), e->cols) * (size_t)rows;
}

/* Peak bytes beyond the GGUF: the largest transposed tensor at fp32, the tile and row
 * scratch, the tied-head row hashes, and an allowance for the tokenizer and index. */
static int64_t extra_bytes(const lpl_hf_plan *p)
{
    int64_t held = 0, cols = 0;
    for (int i = 0; i < p->n; i++) {
        const lpl_hf_entry *e = &p->e[i];
        int64_t n = (e->rows ? e->rows : 1) * e->cols * 4;
        if (e->transpose && n > held)
            held = n;
        cols = e->cols > cols ? e->cols : cols;
    }
    return held + (int64_t)TILE_FLOATS(cols) * 4 + 2 * cols * 4 + 2 * (int64_t)p->cfg.n_vocab * 8 + ((int64_t)24 << 20);
}

int64_t lpl_hf_stream_need(const char *config_json, size_t config_len, lpl_dtype t, int64_t *gguf_bytes,
                           lpl_error *err)
{
    lpl_gpt2_config cfg = {0};
    lpl_hf_plan plan = {0};
    if (lpl_hf_parse_config(config_json, config_len, &cfg, err) || lpl_hf_plan_layout(&cfg, &plan, err))
        return -1;
    int64_t g = 0;
    for (int i = 0; i < plan.n; i++)
        g += (int64_t)(entry_bytes(&plan.e[i], t) + 31) / 32 * 32;
    int64_t need = g + extra_bytes(&plan);
    lpl_hf_plan_free(&plan);
    if (gguf_bytes)
        *gguf_bytes = g;
    return need;
}

/* ------------------------------------------------------------------ setup */

/* The tokenizer's files: vocab.json + merges.txt, or tokenizer.json (json set). */
typedef struct {
    const char *vocab, *merges, *json, *json_config;
    size_t vocab_len, merges_len, json_len, json_config_len;
} tok_files;

static lpl_status lay_out(lpl_hf_stream *s, const tok_files *tf, const char *config_json, size_t config_len,
                          const char *name, lpl_error *err)
{
    lpl_gguf_writer *w = lpl_gguf_writer_new(err);
    if (!w)
        return LPL_ERR_NOMEM;
    lpl_status st;
    if (tf->json) {
        lpl_tokenizer *tok = lpl_tokenizer_from_json(tf->json, tf->json_len, tf->json_config, tf->json_config_len,
                                                     config_json, config_len, err);
        st = tok ? lpl_hf_write_head_tok(&s->cfg, s->type, name, tok, w, err) : err->code ? err->code : LPL_ERR_NOMEM;
        lpl_tokenizer_free(tok);
    } else {
        st = lpl_hf_write_head(&s->cfg, s->type, name, tf->vocab, tf->vocab_len, tf->merges, tf->merges_len, w, err);
    }
    for (int i = 0; i < s->plan.n && st == LPL_OK; i++) {
        const lpl_hf_entry *e = &s->plan.e[i];
        int64_t ne[2] = {e->cols, e->rows};
        st = lpl_gguf_add_tensor_empty(w, e->name, entry_type(e, s->type), e->rows ? 2 : 1, ne, err);
    }
    if (st == LPL_OK && !(s->at = lpl_calloc((size_t)s->plan.n, sizeof *s->at, "tensor offsets", err)))
        st = LPL_ERR_NOMEM;
    if (st == LPL_OK)
        st = lpl_gguf_write_memory_ex(w, (void **)&s->out, &s->out_size, s->at, err);
    lpl_gguf_writer_free(w);
    return st;
}

static lpl_hf_stream *stream_new(const char *config_json, size_t config_len, const tok_files *tf, lpl_dtype t,
                                 const char *name, int64_t limit, lpl_error *err)
{
    int64_t gguf = 0, need = lpl_hf_stream_need(config_json, config_len, t, &gguf, err);
    if (need < 0)
        return NULL;
    if (limit > 0 && need > limit) {
        double mb = 1024.0 * 1024.0;
        lpl_fail(err, LPL_ERR_NOMEM,
                 "importing this model needs about %.0f MB at its peak (the converted model %.0f MB, the largest "
                 "tensor and buffers %.0f MB) but only %.0f MB are available",
                 need / mb, gguf / mb, (need - gguf) / mb, limit / mb);
        return NULL;
    }
    lpl_hf_stream *s = lpl_calloc(1, sizeof *s, "import", err);
    if (!s)
        return NULL;
    s->type = t;
    s->format = "";
    if (lpl_hf_parse_config(config_json, config_len, &s->cfg, err) || lpl_hf_plan_layout(&s->cfg, &s->plan, err))
        goto fail;
    for (int i = 0; i < s->plan.n; i++)
        s->max_cols = s->plan.e[i].cols > s->max_cols ? s->plan.e[i].cols : s->max_cols;
    if (!(s->row = lpl_malloc((size_t)s->max_cols * sizeof(float), "import row", err)) ||
        !(s->tile = lpl_malloc(TILE_FLOATS(s->max_cols) * sizeof(float), "import tile", err)))
        goto fail;
    if (lay_out(s, tf, config_json, config_len, name, err) != LPL_OK)
        goto fail;
    return s;
fail:
    lpl_hf_stream_free(s);
    return NULL;
}

lpl_hf_stream *lpl_hf_stream_new(const char *config_json, size_t config_len, const char *vocab_json,
                                 size_t vocab_len, const char *merges_txt, size_t merges_len, lpl_dtype t,
                                 const char *name, int64_t limit, lpl_error *err)
{
    tok_files tf = {.vocab = vocab_json, .vocab_len = vocab_len, .merges = merges_txt, .merges_len = merges_len};
    return stream_new(config_json, config_len, &tf, t, name, limit, err);
}

lpl_hf_stream *lpl_hf_stream_new_json(const char *config_json, size_t config_len, const char *tokenizer_json,
                                      size_t tokenizer_len, const char *tokenizer_config, size_t tokenizer_config_len,
                                      lpl_dtype t, const char *name, int64_t limit, lpl_error *err)
{
    if (!tokenizer_json) {
        lpl_fail(err, LPL_ERR_INVALID, "import: no tokenizer.json");
        return NULL;
    }
    tok_files tf = {.json = tokenizer_json, .json_len = tokenizer_len, .json_config = tokenizer_config,
                    .json_config_len = tokenizer_config ? tokenizer_config_len : 0};
    return stream_new(config_json, config_len, &tf, t, name, limit, err);
}

void lpl_hf_stream_free(lpl_hf_stream *s)
{
    if (!s)
        return;
    for (int64_t i = 0; i < s->n_sinks; i++)
        free(s->sinks[i].held);
    free(s->sinks);
    lpl_safetensors_close(s->sf);
    lpl_zip_dir_free(&s->dir);
    lpl_torch_close(s->pt);
    lpl_hf_plan_free(&s->plan);
    free(s->out);
    free(s->at);
    free(s->buf);
    free(s->row);
    free(s->tile);
    free(s->wte_hash);
    free(s->head_hash);
    free(s);
}

void lpl_hf_stream_progress(const lpl_hf_stream *s, int *done, int *total, uint64_t *bytes)
{
    *done = s->done;
    *total = s->plan.n;
    *bytes = s->pos;
}

const char *lpl_hf_stream_format(const lpl_hf_stream *s) { return s->format; }

void lpl_hf_stream_held(const lpl_hf_stream *s, int64_t *now, int64_t *peak)
{
    *now = s->held;
    *peak = s->held_peak;
}

/* ------------------------------------------------------------------ sinks */

/* Row hash of fp16-rounded values: lm_head is tied when every row matches wte's
 * exactly or after rounding both to fp16 (the rule of lpl_hf_plan_build). */
static uint64_t row_hash(const float *f, int64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (int64_t i = 0; i < n; i++) {
        uint16_t b = lpl_fp32_to_fp16(f[i]);
        if (b == 0x8000)
            b = 0; /* -0 == +0 */
        h = (h ^ b) * 1099511628211ull;
    }
    return h;
}

/* Row r of a sink, as fp32 in our layout, into the GGUF (or the head's hashes). */
static lpl_status put_row(lpl_hf_stream *s, sink *k, int64_t r, const float *f, lpl_error *err)
{
    if (k->kind == K_HEAD) {
        s->head_hash[r] = row_hash(f, k->cols);
        return LPL_OK;
    }
    const lpl_hf_entry *e = &s->plan.e[k->entry];
    /* NaN/inf weights are a broken checkpoint, and quantizing them is undefined */
    for (int64_t j = 0; j < k->cols; j++)
        if (!isfinite(f[j]))
            return lpl_fail(err, LPL_ERR_FORMAT,
                            "checkpoint: tensor for '%s' has a non-finite value (%g) at element %lld", e->name,
                            (double)f[j], (long long)(r * k->cols + j));
    if (k->entry == 0 && s->wte_hash)
        s->wte_hash[r] = row_hash(f, k->cols);
    uint8_t *dst = s->out + s->at[k->entry];
    lpl_dtype t = entry_type(e, s->type);
    if (e->perm_hd) /* a "llama" attn_q / attn_k row in llama.cpp's pair order */
        r = lpl_hf_perm_row(e->rows ? r : 0, e->perm_hd);
    if (e->perm_hd && !e->rows) { /* a bias: one row, permute its elements */
        float *dst_f = (float *)dst;
        for (int64_t j = 0; j < k->cols; j++)
            dst_f[lpl_hf_perm_row(j, e->perm_hd)] = f[j];
        return LPL_OK;
    }
    if (t == LPL_F32) {
        memcpy(dst + (size_t)(r * k->cols) * 4, f, (size_t)k->cols * 4);
        return LPL_OK;
    }
    size_t rb = lpl_dtype_row_bytes(t, k->cols);
    return lpl_convert_row(t, f, dst + (size_t)r * rb, k->cols, err);
}

/* Tiles [t0, t1) of a held Conv1D tensor [cols][rows] -> our rows (TILE rows per
 * tile), with the caller's scratch: tile (TILE_FLOATS(cols)) and col (TILE floats).
 * Stops at the first failing row; *bad is the tile it failed in. */
static lpl_status transpose_tiles(lpl_hf_stream *s, sink *k, int64_t t0, int64_t t1, float *tile, float *col,
                                  int64_t *bad, lpl_error *err)
{
    lpl_status st = LPL_OK;
    for (int64_t t = t0; t < t1 && st == LPL_OK; t++) {
        int64_t r0 = t * TILE, n = k->rows - r0 < TILE ? k->rows - r0 : TILE, ld = k->cols + TILE_PAD;
        for (int64_t c = 0; c < k->cols; c++) {
            lpl_st_to_f32(k->t->dtype, k->held + (size_t)(c * k->rows + r0) * k->es, col, n);
            for (int64_t j = 0; j < n; j++)
                tile[j * ld + c] = col[j];
        }
        for (int64_t j = 0; j < n && st == LPL_OK; j++)
            st = put_row(s, k, r0 + j, tile + j * ld, err);
        if (st != LPL_OK)
            *bad = t;
    }
    return st;
}

/* A transposed tensor's tiles shared out over the thread pool. Each chunk has its own
 * scratch and error; a chunk that fails notes its tile, and the caller converts the
 * first failing tile again on its own, so the message is the one a single thread
 * gives. Every row is written by one chunk: the bytes do not depend on the threads. */
typedef struct {
    lpl_hf_stream *s;
    sink *k;
    int64_t *first_bad;  /* per chunk start tile: the tile that failed, or -1 */
} tiles_job;

static void tiles_chunk(void *ctx, int begin, int end)
{
    tiles_job *j = ctx;
    lpl_error e;
    lpl_error_clear(&e);
    float *tile = malloc(sizeof(float) * (TILE_FLOATS(j->k->cols) + TILE));
    int64_t bad = begin;
    if (!tile || transpose_tiles(j->s, j->k, begin, end, tile, tile + TILE_FLOATS(j->k->cols), &bad, &e) != LPL_OK)
        j->first_bad[begin] = bad;
    free(tile);
}

static lpl_status put_transposed(lpl_hf_stream *s, sink *k, lpl_error *err)
{
    int64_t n_tiles = (k->rows + TILE - 1) / TILE, bad = -1;
    int64_t *first_bad = n_tiles <= INT_MAX ? malloc(sizeof(int64_t) * (size_t)n_tiles) : NULL;
    if (first_bad && lpl_threads_count() > 1) {
        for (int64_t t = 0; t < n_tiles; t++)
            first_bad[t] = -1;
        tiles_job job = {s, k, first_bad};
        /* each thread's chunk allocates a tile of its own while it runs */
        int64_t tiles = (int64_t)lpl_threads_count() * (int64_t)(TILE_FLOATS(k->cols) + TILE) * 4 +
                        n_tiles * (int64_t)sizeof(int64_t);
        hold(s, tiles);
        lpl_parallel_for((int)n_tiles, 1, tiles_chunk, &job);
        hold(s, -tiles);
        for (int64_t t = 0; t < n_tiles && bad < 0; t++)
            bad = first_bad[t];
        free(first_bad);
        if (bad < 0)
            return LPL_OK;
        return transpose_tiles(s, k, bad, n_tiles, s->tile, s->col, &bad, err);
    }
    free(first_bad);
    return transpose_tiles(s, k, 0, n_tiles, s->tile, s->col, &bad, err);
}

static lpl_status put_source_row(lpl_hf_stream *s, sink *k, const uint8_t *src, lpl_error *err)
{
    lpl_st_to_f32(k->t->dtype, src, s->row, k->cols);
    return put_row(s, k, k->row++, s->row, err);
}

/* n more bytes of sink k's tensor. */
static lpl_status sink_feed(lpl_hf_stream *s, sink *k, const uint8_t *p, size_t n, lpl_error *err)
{
    lpl_status st = LPL_OK;
    size_t total = (size_t)(k->end - k->begin);
    int transpose = k->kind == K_ENTRY && s->plan.e[k->entry].transpose;
    if (transpose) {
        if (!k->held && !(k->held = lpl_malloc(total, k->t->name, err)))
            return LPL_ERR_NOMEM;
        if (k->got == 0)
            hold(s, (int64_t)total);
        memcpy(k->held + k->got, p, n);
    } else {
        size_t row_in = (size_t)k->cols * k->es;
        if (!k->held) {
            if (!(k->held = lpl_malloc(row_in, k->t->name, err)))
                return LPL_ERR_NOMEM;
            hold(s, (int64_t)row_in);
        }
        for (size_t i = 0; i < n && st == LPL_OK;) {
            if (k->held_len == 0 && n - i >= row_in) {
                st = put_source_row(s, k, p + i, err);
                i += row_in;
                continue;
            }
            size_t c = row_in - k->held_len < n - i ? row_in - k->held_len : n - i;
            memcpy(k->held + k->held_len, p + i, c);
            k->held_len += c;
            i += c;
            if (k->held_len == row_in) {
                st = put_source_row(s, k, k->held, err);
                k->held_len = 0;
            }
        }
    }
    k->got += n;
    if (st == LPL_OK && k->got == total) {
        if (transpose)
            st = put_transposed(s, k, err);
        free(k->held);
        k->held = NULL;
        hold(s, -(int64_t)(transpose ? total : (size_t)k->cols * k->es));
        s->done += k->kind == K_ENTRY;
    }
    return st;
}

/* Bytes [off, off+n) of a storage (key NULL: the safetensors data section). */
static lpl_status storage_data(lpl_hf_stream *s, const char *key, uint64_t off, const uint8_t *p, size_t n,
                               lpl_error *err)
{
    lpl_status st = LPL_OK;
    for (int64_t i = 0; i < s->n_sinks && st == LPL_OK; i++) {
        sink *k = &s->sinks[i];
        if (k->kind == K_SKIP || (key ? !k->skey || strcmp(k->skey, key) : k->skey != NULL))
            continue;
        uint64_t a = off > k->begin ? off : k->begin, b = off + n < k->end ? off + n : k->end;
        if (a < b && a == k->begin + k->got)
            st = sink_feed(s, k, p + (a - off), (size_t)(b - a), err);
    }
    return st;
}

/* A storage of size bytes starts: every tensor in it must fit. */
static lpl_status storage_begin(lpl_hf_stream *s, const char *key, uint64_t size, lpl_error *err)
{
    snprintf(s->cur_key, sizeof s->cur_key, "%s", key);
    s->cur_off = 0;
    s->remaining = size;
    for (int64_t i = 0; i < s->n_sinks; i++) {
        const sink *k = &s->sinks[i];
        if (k->kind != K_SKIP && k->skey && !strcmp(k->skey, key) && k->end > size)
            return lpl_fail(err, LPL_ERR_FORMAT,
                            "checkpoint: storage '%s' holds %llu bytes but tensor '%s' needs bytes [%llu, %llu)", key,
                            (unsigned long long)size, k->t->name, (unsigned long long)k->begin,
                            (unsigned long long)k->end);
    }
    return LPL_OK;
}

/* The checkpoint's tensors are known: map them to the plan and make their sinks.
 * skeys/begins give each tensor's storage and offset. */
static lpl_status make_sinks(lpl_hf_stream *s, const lpl_st_tensor *t, int64_t n, const lpl_torch_ref *refs,
                             lpl_error *err)
{
    lpl_hf_plan_free(&s->plan);
    lpl_status st = lpl_hf_plan_build(&s->cfg, t, n, &s->plan, err);
    if (st != LPL_OK)
        return st;
    if (!(s->sinks = lpl_calloc((size_t)n + 1, sizeof *s->sinks, "import sinks", err)))
        return LPL_ERR_NOMEM;
    s->n_sinks = n;
    hold(s, (n + 1) * (int64_t)sizeof *s->sinks);
    if (s->plan.head && (!(s->wte_hash = lpl_calloc((size_t)s->cfg.n_vocab, 8, "head check", err)) ||
                         !(s->head_hash = lpl_calloc((size_t)s->cfg.n_vocab, 8, "head check", err))))
        return LPL_ERR_NOMEM;
    if (s->plan.head)
        hold(s, 2 * 8 * (int64_t)s->cfg.n_vocab);
    for (int64_t i = 0; i < n; i++) {
        sink *k = &s->sinks[i];
        k->t = &t[i];
        k->skey = refs ? refs[i].storage : NULL;
        k->begin = refs ? refs[i].offset : lpl_safetensors_data_offset(s->sf, i);
        k->end = k->begin + t[i].nbytes;
        k->es = t[i].dtype == LPL_F32 ? 4 : 2;
        if (&t[i] == s->plan.head) {
            k->kind = K_HEAD;
            k->rows = t[i].shape[0];
            k->cols = t[i].shape[1];
        }
        for (int e = 0; e < s->plan.n && k->kind == K_SKIP; e++)
            if (s->plan.e[e].src == &t[i]) {
                k->kind = K_ENTRY;
                k->entry = e;
                k->rows = s->plan.e[e].rows ? s->plan.e[e].rows : 1;
                k->cols = s->plan.e[e].cols;
            }
    }
    s->indexed = 1;
    return LPL_OK;
}

/* ------------------------------------------------------------------ framing */

/* Appends p to the framing buffer up to want bytes; returns the bytes taken. */
static size_t fill(lpl_hf_stream *s, const uint8_t *p, size_t n, size_t want, lpl_error *err)
{
    if (s->len >= want)
        return 0;
    size_t k = want - s->len < n ? want - s->len : n;
    if (s->len + k > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + k)
            cap *= 2;
        uint8_t *b = realloc(s->buf, cap);
        if (!b) {
            lpl_fail(err, LPL_ERR_NOMEM, "out of memory: import buffer (%zu bytes)", cap);
            return SIZE_MAX;
        }
        hold(s, (int64_t)cap - (int64_t)s->cap);
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, k);
    s->len += k;
    return k;
}

static lpl_status feed_inner(lpl_hf_stream *s, const uint8_t *p, size_t n, lpl_error *err);

/* Feeds the framing buffer from byte off again (what a header parse did not use). */
static lpl_status refeed(lpl_hf_stream *s, size_t off, lpl_error *err)
{
    uint8_t *b = s->buf;
    size_t n = s->len, cap = s->cap;
    s->buf = NULL;
    s->len = s->cap = 0;
    lpl_status st = off < n ? feed_inner(s, b + off, n - off, err) : LPL_OK;
    free(b);
    hold(s, -(int64_t)cap);
    return st;
}

/* After a header or pickle: the framing buffer goes back to the size of a zip local
 * header, so a large pickle is not held through the rest of the file. */
static void shrink_buf(lpl_hf_stream *s)
{
    if (s->len == 0 && s->cap > 4096) {
        free(s->buf);
        s->buf = NULL;
        hold(s, -(int64_t)s->cap);
        s->cap = 0;
    }
}

static lpl_status detect(lpl_hf_stream *s, lpl_error *err)
{
    if (lpl_torch_is_zip(s->buf, s->len)) {
        s->st = S_ZIP_LOCAL;
        s->format = "pytorch zip";
    } else if (lpl_torch_is_legacy(s->buf, s->len)) {
        s->st = S_LEG_PICKLES;
        s->format = "pytorch legacy";
    } else {
        s->st = S_ST_LEN;
        s->format = "safetensors";
    }
    return refeed(s, 0, err);
}

static lpl_status st_header(lpl_hf_stream *s, lpl_error *err)
{
    size_t hlen = 0;
    int more = 0;
    if (!(s->sf = lpl_safetensors_open_header(s->buf, s->len, &hlen, &more, err)))
        return more ? lpl_fail(err, LPL_ERR_FORMAT, "model.safetensors: header is incomplete") : err->code;
    lpl_status st = make_sinks(s, lpl_safetensors_tensors(s->sf), lpl_safetensors_n_tensors(s->sf), NULL, err);
    s->len = 0;
    shrink_buf(s);
    s->cur_off = 0;
    s->st = S_ST_DATA;
    return st;
}

/* Bytes of the zip local header at the front of the buffer, as far as known. */
static size_t zip_want(const uint8_t *b, size_t n)
{
    if (n < 4)
        return 4;
    if (b[2] != 3 || b[3] != 4) /* central directory or garbage: decided now */
        return n;
    if (n < 30)
        return 30;
    return 30 + (size_t)lpl_le16(b + 26) + lpl_le16(b + 28);
}

/* The current zip entry's data has ended: skip its data descriptor, if any. */
static void entry_done(lpl_hf_stream *s)
{
    s->remaining = s->gap;
    s->gap = 0;
    s->st = s->remaining ? S_ZIP_SKIP : S_ZIP_LOCAL;
}

/* Size, crc and trailing gap of a local entry from the central directory. */
static lpl_status zip_sizes(lpl_hf_stream *s, lpl_zip_local *z, lpl_error *err)
{
    s->gap = 0;
    if (!s->dir.n) {
        if (z->sizes_later)
            return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                            "pytorch_model.bin: zip entry '%s' has its size only in the directory at the end of the "
                            "file; the streamed import needs that end first (HTTP Range requests or a local file)",
                            z->name);
        return LPL_OK;
    }
    const lpl_zip_dir_entry *d = NULL;
    for (int64_t i = 0; i < s->dir.n && !d; i++)
        if (!strcmp(s->dir.e[i].name, z->name))
            d = &s->dir.e[i];
    if (!d)
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: zip entry '%s' is not in the central directory",
                        z->name);
    uint64_t next = s->dir.cd_off, data_end = d->offset + z->header_len + d->size;
    for (int64_t i = 0; i < s->dir.n; i++)
        if (s->dir.e[i].offset > d->offset && s->dir.e[i].offset < next)
            next = s->dir.e[i].offset;
    if (next < data_end)
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: zip entry '%s' overlaps the next one", z->name);
    z->size = d->size;
    z->crc = d->crc;
    s->gap = next - data_end;
    return LPL_OK;
}

lpl_status lpl_hf_stream_zip_tail(lpl_hf_stream *s, const void *tail, size_t n, uint64_t file_size, lpl_error *err)
{
    lpl_error ignored;
    hold(s, -s->dir.n * (int64_t)sizeof *s->dir.e);
    lpl_zip_dir_free(&s->dir);
    if (n > file_size)
        return lpl_fail(err, LPL_ERR_INVALID, "zip tail: %zu bytes of a %llu-byte file", n,
                        (unsigned long long)file_size);
    if (lpl_zip_read_tail(tail, n, file_size, &s->dir, &ignored) != LPL_OK)
        lpl_zip_dir_free(&s->dir); /* not a zip (or not its whole directory): stream without it */
    hold(s, s->dir.n * (int64_t)sizeof *s->dir.e);
    return LPL_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static lpl_status zip_entry_begin(lpl_hf_stream *s, const lpl_zip_local *z, lpl_error *err)
{
    char name[300];
    snprintf(s->cur_key, sizeof s->cur_key, "%s", z->name);
    s->remaining = z->size;
    s->crc = z->crc;
    s->st = S_ZIP_SKIP;
    if (!s->have_pkl && (!strcmp(z->name, "data.pkl") || ends_with(z->name, "/data.pkl"))) {
        if (z->size > PICKLE_MAX || z->size == 0)
            return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: %s has an implausible size (%llu bytes)",
                            z->name, (unsigned long long)z->size);
        snprintf(s->prefix, sizeof s->prefix, "%.*s", (int)(strlen(z->name) - 8), z->name);
        s->want = (size_t)z->size;
        s->st = S_ZIP_PKL;
        return LPL_OK;
    }
    snprintf(name, sizeof name, "%sbyteorder", s->prefix);
    if (s->have_pkl && !strcmp(z->name, name)) {
        if (z->size > 16)
            return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: byteorder entry is too long");
        s->want = (size_t)z->size;
        s->st = S_ZIP_BYTEORDER;
        return LPL_OK;
    }
    snprintf(name, sizeof name, "%sdata/", s->prefix);
    if (s->have_pkl && !strncmp(z->name, name, strlen(name))) {
        s->st = S_ZIP_STORAGE;
        return storage_begin(s, z->name + strlen(name), z->size, err);
    }
    if (!s->have_pkl && strstr(z->name, "data/"))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "pytorch_model.bin: storage '%s' comes before data.pkl; reading this archive needs the whole "
                        "file (not streamed)", z->name);
    return LPL_OK;
}

static lpl_status zip_pkl(lpl_hf_stream *s, lpl_error *err)
{
    if (lpl_zip_crc32(s->buf, s->len) != s->crc)
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: %s fails its CRC check (corrupt archive)", s->cur_key);
    if (!(s->pt = lpl_torch_index_pickle(s->buf, s->len, err)))
        return err->code ? err->code : LPL_ERR_FORMAT;
    s->have_pkl = 1;
    s->len = 0;
    shrink_buf(s);
    entry_done(s);
    return make_sinks(s, lpl_torch_tensors(s->pt), lpl_torch_n_tensors(s->pt), lpl_torch_refs(s->pt), err);
}

static lpl_status leg_pickles(lpl_hf_stream *s, lpl_error *err)
{
    size_t used = 0;
    int more = 0;
    lpl_error e2;
    lpl_error_clear(&e2);
    s->pt = lpl_torch_index_legacy(s->buf, s->len, &used, &more, &e2);
    if (!s->pt) {
        if (!more) {
            *err = e2;
            return e2.code ? e2.code : LPL_ERR_FORMAT;
        }
        if (s->len >= PICKLE_MAX)
            return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: the pickles run past %zu MB", PICKLE_MAX >> 20);
        return LPL_OK; /* wait for more */
    }
    lpl_status st = make_sinks(s, lpl_torch_tensors(s->pt), lpl_torch_n_tensors(s->pt), lpl_torch_refs(s->pt), err);
    s->st = S_LEG_HEAD;
    s->leg_i = 0;
    return st ? st : refeed(s, used, err);
}

/* A legacy storage record's 8-byte element count is in the buffer. */
static lpl_status leg_head(lpl_hf_stream *s, lpl_error *err)
{
    const lpl_torch_storage *o = &lpl_torch_storages(s->pt)[s->leg_i];
    uint64_t numel = lpl_le64(s->buf);
    s->len = 0;
    if (numel > ((uint64_t)1 << 40))
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: storage '%s' claims %llu elements", o->key,
                        (unsigned long long)numel);
    s->st = S_LEG_STORAGE;
    return storage_begin(s, o->key, numel * o->elem, err);
}

/* Storage bytes of the current zip entry or legacy record; returns bytes used. */
static size_t storage_bytes(lpl_hf_stream *s, const uint8_t *p, size_t n, lpl_status *st, lpl_error *err)
{
    size_t k = s->remaining < n ? (size_t)s->remaining : n;
    *st = storage_data(s, s->cur_key, s->cur_off, p, k, err);
    s->cur_off += k;
    s->remaining -= k;
    return k;
}

/* One step of the framing machine over p[0..n): returns bytes used (may be 0 after a
 * state change that needs no input). */
static size_t step(lpl_hf_stream *s, const uint8_t *p, size_t n, lpl_status *st, lpl_error *err)
{
    size_t used = 0;
    switch (s->st) {
    case S_DETECT:
        used = fill(s, p, n, 15, err);
        if (used != SIZE_MAX && s->len == 15)
            *st = detect(s, err);
        break;
    case S_ST_LEN:
        used = fill(s, p, n, 8, err);
        if (used != SIZE_MAX && s->len == 8) {
            uint64_t h = lpl_le64(s->buf);
            if (h < 2 || h > (100u << 20))
                *st = lpl_fail(err, LPL_ERR_FORMAT, "model.safetensors: header length %llu is implausible",
                               (unsigned long long)h);
            s->want = 8 + (size_t)h;
            s->st = S_ST_HEADER;
        }
        break;
    case S_ST_HEADER:
        used = fill(s, p, n, s->want, err);
        if (used != SIZE_MAX && s->len == s->want)
            *st = st_header(s, err);
        break;
    case S_ST_DATA:
        *st = storage_data(s, NULL, s->cur_off, p, n, err);
        s->cur_off += n;
        used = n;
        break;
    case S_ZIP_LOCAL: {
        size_t want = zip_want(s->buf, s->len);
        used = fill(s, p, n, want, err);
        if (used == SIZE_MAX || zip_want(s->buf, s->len) > s->len)
            break;
        lpl_zip_local z;
        if ((*st = lpl_zip_local_header(s->buf, s->len, &z, err)) != LPL_OK)
            break;
        s->len = 0;
        if (z.end)
            s->st = S_TAIL;
        else if ((*st = zip_sizes(s, &z, err)) == LPL_OK)
            *st = zip_entry_begin(s, &z, err);
        break;
    }
    case S_ZIP_PKL:
        used = fill(s, p, n, s->want, err);
        if (used != SIZE_MAX && s->len == s->want)
            *st = zip_pkl(s, err);
        break;
    case S_ZIP_BYTEORDER:
        used = fill(s, p, n, s->want, err);
        if (used != SIZE_MAX && s->len == s->want) {
            if (!(s->len == 6 && !memcmp(s->buf, "little", 6)))
                *st = lpl_fail(err, LPL_ERR_UNSUPPORTED, "pytorch_model.bin: byte order is not little-endian");
            s->len = 0;
            entry_done(s);
        }
        break;
    case S_ZIP_STORAGE:
    case S_LEG_STORAGE:
        used = storage_bytes(s, p, n, st, err);
        if (s->remaining == 0 && s->st == S_LEG_STORAGE)
            s->leg_i++;
        if (s->remaining == 0 && s->st == S_ZIP_STORAGE)
            entry_done(s);
        else if (s->remaining == 0)
            s->st = S_LEG_HEAD;
        break;
    case S_ZIP_SKIP:
        used = s->remaining < n ? (size_t)s->remaining : n;
        s->remaining -= used;
        if (s->remaining == 0)
            entry_done(s);
        break;
    case S_LEG_PICKLES:
        used = fill(s, p, n, s->len + PICKLE_STEP, err);
        if (used != SIZE_MAX)
            *st = leg_pickles(s, err);
        break;
    case S_LEG_HEAD:
        if (s->leg_i == lpl_torch_n_storages(s->pt)) {
            s->st = S_TAIL;
            break;
        }
        used = fill(s, p, n, 8, err);
        if (used != SIZE_MAX && s->len == 8)
            *st = leg_head(s, err);
        break;
    case S_TAIL:
        used = n;
        break;
    case S_FAILED:
        *st = lpl_fail(err, LPL_ERR_INVALID, "import: an earlier error stopped this import");
        break;
    }
    if (used == SIZE_MAX) {
        *st = LPL_ERR_NOMEM;
        used = 0;
    }
    /* a storage or entry of zero bytes ends without input */
    if (*st == LPL_OK && s->remaining == 0 && (s->st == S_ZIP_STORAGE || s->st == S_ZIP_SKIP))
        entry_done(s);
    if (*st == LPL_OK && s->remaining == 0 && s->st == S_LEG_STORAGE) {
        s->leg_i++;
        s->st = S_LEG_HEAD;
    }
    return used;
}

static lpl_status feed_inner(lpl_hf_stream *s, const uint8_t *p, size_t n, lpl_error *err)
{
    lpl_status st = LPL_OK;
    while (n > 0 && st == LPL_OK) {
        size_t used = step(s, p, n, &st, err);
        p += used;
        n -= used;
    }
    return st;
}

lpl_status lpl_hf_stream_feed(lpl_hf_stream *s, const void *data, size_t n, lpl_error *err)
{
    if (s->st == S_FAILED)
        return lpl_fail(err, LPL_ERR_INVALID, "import: an earlier error stopped this import");
    s->pos += n;
    lpl_status st = feed_inner(s, data, n, err);
    if (st != LPL_OK)
        s->st = S_FAILED;
    return st;
}

/* ------------------------------------------------------------------ finish */

static lpl_status check_complete(lpl_hf_stream *s, lpl_error *err)
{
    if (s->st == S_FAILED)
        return lpl_fail(err, LPL_ERR_INVALID, "import: an earlier error stopped this import");
    if (!s->indexed)
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "checkpoint: the file ended after %llu bytes, before its tensors were listed (%s)",
                        (unsigned long long)s->pos, *s->format ? s->format : "too short to be a checkpoint");
    for (int64_t i = 0; i < s->n_sinks; i++) {
        const sink *k = &s->sinks[i];
        if (k->kind != K_SKIP && k->got < k->end - k->begin)
            return lpl_fail(err, LPL_ERR_FORMAT,
                            "checkpoint: the file ended before tensor '%s' was complete (%llu of %llu bytes arrived)",
                            k->t->name, (unsigned long long)k->got, (unsigned long long)(k->end - k->begin));
    }
    for (int64_t r = 0; s->head_hash && r < s->cfg.n_vocab; r++)
        if (s->head_hash[r] != s->wte_hash[r])
            return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                            "lm_head.weight differs from the token embedding (row %lld): untied LM heads are not "
                            "supported", (long long)r);
    return LPL_OK;
}

lpl_status lpl_hf_stream_finish(lpl_hf_stream *s, void **out, size_t *size, lpl_error *err)
{
    lpl_status st = check_complete(s, err);
    if (st != LPL_OK) {
        s->st = S_FAILED;
        return st;
    }
    *out = s->out;
    *size = s->out_size;
    s->out = NULL;
    return LPL_OK;
}
