/* Models in and out of GGUF with llama.cpp's names ("gpt2", "llama", "qwen2"
 * architectures), and the Hugging Face checkpoint -> GGUF conversion (file and
 * in-memory).
 *
 * Llama family: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v (with .bias in
 * qwen2), attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm and, when
 * untied, output. llama.cpp's "llama" runs RoPE on adjacent pairs, so its converter
 * permutes the rows of attn_q and attn_k from HF's rotate-half order; we do the same
 * on writing and undo it on reading ("qwen2" uses rotate-half and is not permuted).
 *
 * Layout in GGUF (ggml order, ne[0] contiguous):
 *   token_embd.weight     [C, V]   (rows = tokens; also the tied LM head)
 *   position_embd.weight  [C, n_ctx]   always F32
 *   blk.N.attn_qkv.weight [C, 3C]  rows = out features, as lpl_matrix
 *   ...ffn_up [C, 4C], ffn_down [4C, C], attn_output [C, C]
 *   norms and biases      [C] or [out]  always F32
 * A tied head is not stored as output.weight. */
#include "lpl/io/model_io.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpl/core/utf8.h"
#include "hf_import.h"
#include "lpl/io/tokenizer.h"
#include "lpl/core/kernels.h"
#include "lpl/core/files.h"

/* ------------------------------------------------------------------ ownership */

/* Everything a model built here owns: a list of heap blocks freed together. */
typedef struct {
    void **ptrs;
    int n, cap;
} owned_list;

static void owned_release(void *p)
{
    owned_list *o = p;
    if (!o)
        return;
    for (int i = 0; i < o->n; i++)
        free(o->ptrs[i]);
    free(o->ptrs);
    free(o);
}

/* Allocates n bytes owned by o (freed by owned_release); NULL with err on failure. */
static void *owned_alloc(owned_list *o, size_t n, const char *what, lpl_error *err)
{
    if (o->n == o->cap) {
        int cap = o->cap ? o->cap * 2 : 64;
        void **p = realloc(o->ptrs, (size_t)cap * sizeof *p);
        if (!p) {
            lpl_fail(err, LPL_ERR_NOMEM, "out of memory: model ownership list");
            return NULL;
        }
        o->ptrs = p;
        o->cap = cap;
    }
    void *b = lpl_calloc(1, n, what, err);
    if (b)
        o->ptrs[o->n++] = b;
    return b;
}

/* ------------------------------------------------------------------ names */

static const char *const site_gguf[LPL_N_SITES] = {"attn_qkv", "attn_output", "ffn_up", "ffn_down",
                                                    "attn_q", "attn_k", "attn_v", "attn_output",
                                                    "ffn_gate", "ffn_up", "ffn_down"};

const char *lpl_gguf_site_name(lpl_site s)
{
    return (unsigned)s < LPL_N_SITES ? site_gguf[s] : NULL;
}

static void site_shape(const lpl_gpt2_config *c, lpl_site s, int *out, int *in) { lpl_site_shape(c, s, out, in); }

/* The row of HF's rotate-half order that lands at GGUF row r of a "llama" attn_q or
 * attn_k (llama.cpp's converter: per head, rows (half j, index i) move to 2 i + j). */
static int rope_row_from_hf(int r, int hd)
{
    int h = r / hd, k = r % hd;
    return h * hd + (k % 2) * (hd / 2) + k / 2;
}

/* 1 when site s of cfg is stored with llama.cpp's pair permutation. */
static int site_permuted(const lpl_gpt2_config *c, lpl_site s)
{
    return c->arch == LPL_ARCH_LLAMA && (s == LPL_SITE_Q || s == LPL_SITE_K);
}

/* ------------------------------------------------------------------ config */

static lpl_status check_config(const lpl_gpt2_config *c, const char *src, lpl_error *err)
{
    if (c->n_layer < 1 || c->n_layer > 1024)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: block_count %d is out of range", src, c->n_layer);
    if (c->n_embd < 1 || c->n_embd > (1 << 16) || c->n_embd % 32)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: embedding_length %d must be a positive multiple of 32",
                        src, c->n_embd);
    if (c->n_head < 1 || c->n_embd % c->n_head)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: head_count %d does not divide embedding_length %d",
                        src, c->n_head, c->n_embd);
    if (c->n_ctx < 1 || c->n_ctx > (1 << 20))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: context_length %d is out of range", src, c->n_ctx);
    if (c->n_vocab < 1 || c->n_vocab > (1 << 24))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: vocabulary size %d is out of range", src, c->n_vocab);
    if (!(c->ln_eps > 0.0f && c->ln_eps < 1.0f))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: layer_norm_epsilon %g is out of range", src, (double)c->ln_eps);
    return LPL_OK;
}

/* The dropout keys this project writes (HF's names: GGUF's gpt2 architecture has none). */
static const char *const pdrop_keys[3] = {"gpt2.embd_pdrop", "gpt2.attn_pdrop", "gpt2.resid_pdrop"};

/* "<arch>.<suffix>" into buf. */
static const char *arch_key(char *buf, size_t size, const lpl_gpt2_config *c, const char *suffix)
{
    snprintf(buf, size, "%s.%s", lpl_arch_name(c->arch), suffix);
    return buf;
}

/* The Llama family's keys (llama.cpp's names; attention_dropout is ours: HF's rate,
 * absent from llama.cpp's files, where it means HF's default 0). */
static lpl_status read_llama_config(const lpl_gguf *g, lpl_gpt2_config *c, lpl_error *err)
{
    char k[96];
    uint32_t L, C, H, KV, T, F;
    if (lpl_gguf_get_u32(g, arch_key(k, sizeof k, c, "block_count"), &L, err) ||
        lpl_gguf_get_u32(g, arch_key(k, sizeof k, c, "embedding_length"), &C, err) ||
        lpl_gguf_get_u32(g, arch_key(k, sizeof k, c, "attention.head_count"), &H, err) ||
        lpl_gguf_get_u32(g, arch_key(k, sizeof k, c, "context_length"), &T, err) ||
        lpl_gguf_get_u32(g, arch_key(k, sizeof k, c, "feed_forward_length"), &F, err) ||
        lpl_gguf_get_f32(g, arch_key(k, sizeof k, c, "attention.layer_norm_rms_epsilon"), &c->ln_eps, err))
        return LPL_ERR_FORMAT;
    KV = H;
    if (lpl_gguf_find_key(g, arch_key(k, sizeof k, c, "attention.head_count_kv")) >= 0 &&
        lpl_gguf_get_u32(g, k, &KV, err))
        return LPL_ERR_FORMAT;
    c->rope_theta = 10000.0f; /* llama.cpp's default when the key is absent */
    if (lpl_gguf_find_key(g, arch_key(k, sizeof k, c, "rope.freq_base")) >= 0 &&
        lpl_gguf_get_f32(g, k, &c->rope_theta, err))
        return LPL_ERR_FORMAT;
    c->pdrop = (lpl_gpt2_dropout){0.0f, 0.0f, 0.0f};
    if (lpl_gguf_find_key(g, arch_key(k, sizeof k, c, "attention_dropout")) >= 0 &&
        lpl_gguf_get_f32(g, k, &c->pdrop.attn, err))
        return LPL_ERR_FORMAT;
    c->pdrop_stated = 1;
    if (L > 1024 || C > 65536 || H > 65536 || KV > 65536 || T > (1u << 20) || F > (1u << 20))
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: %s sizes out of range", lpl_arch_name(c->arch));
    c->n_layer = (int)L;
    c->n_embd = (int)C;
    c->n_head = (int)H;
    c->n_kv_head = (int)KV;
    /* a longer context only sizes tables here; cap it to what a state can hold, as the
     * config.json path does */
    c->n_ctx = T > 65536 ? 65536 : (int)T;
    c->n_ff = (int)F;
    c->untied = lpl_gguf_find_tensor(g, "output.weight") != NULL;
    if (lpl_gguf_find_key(g, arch_key(k, sizeof k, c, "rope.dimension_count")) >= 0) {
        uint32_t rd;
        if (lpl_gguf_get_u32(g, k, &rd, err))
            return LPL_ERR_FORMAT;
        if (H == 0 || rd != C / H)
            return lpl_fail(err, LPL_ERR_UNSUPPORTED, "gguf: %s = %u: only RoPE over the whole head (%u) is supported",
                            k, rd, H ? C / H : 0);
    }
    return LPL_OK;
}

/* Reads the three dropout rates; a file without them (llama.cpp's converter and
 * files written before the keys existed) gets GPT-2's 0.1 with pdrop_stated = 0. */
static lpl_status read_pdrop(const lpl_gguf *g, lpl_gpt2_config *c, lpl_error *err)
{
    float *dst[3] = {&c->pdrop.embd, &c->pdrop.attn, &c->pdrop.resid};
    int found = 0;
    for (int k = 0; k < 3; k++) {
        *dst[k] = 0.1f;
        if (lpl_gguf_find_key(g, pdrop_keys[k]) < 0)
            continue;
        if (lpl_gguf_get_f32(g, pdrop_keys[k], dst[k], err))
            return LPL_ERR_FORMAT;
        if (!(*dst[k] >= 0.0f && *dst[k] < 1.0f))
            return lpl_fail(err, LPL_ERR_FORMAT, "gguf: %s = %g must be in [0, 1)", pdrop_keys[k], (double)*dst[k]);
        found++;
    }
    c->pdrop_stated = found == 3;
    return LPL_OK;
}

static lpl_status read_config(const lpl_gguf *g, lpl_gpt2_config *c, lpl_error *err)
{
    lpl_status st_pd;
    const char *arch;
    size_t len;
    uint32_t L, C, H, T, F;
    if (lpl_gguf_get_str(g, "general.architecture", &arch, &len, err) != LPL_OK)
        return LPL_ERR_FORMAT;
    if (lpl_arch_parse(arch, &c->arch, NULL) != LPL_OK)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "gguf: general.architecture is '%s', expected 'gpt2', 'llama' or 'qwen2'", arch);
    if (lpl_cfg_is_llama(c)) {
        if ((st_pd = read_llama_config(g, c, err)) != LPL_OK)
            return st_pd;
        goto vocab;
    }
    if (lpl_gguf_get_u32(g, "gpt2.block_count", &L, err) || lpl_gguf_get_u32(g, "gpt2.embedding_length", &C, err) ||
        lpl_gguf_get_u32(g, "gpt2.attention.head_count", &H, err) ||
        lpl_gguf_get_u32(g, "gpt2.context_length", &T, err) ||
        lpl_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &c->ln_eps, err))
        return LPL_ERR_FORMAT;
    if (L > INT32_MAX || C > INT32_MAX || H > INT32_MAX || T > INT32_MAX)
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: gpt2 sizes out of range");
    c->n_layer = (int)L;
    c->n_embd = (int)C;
    c->n_head = (int)H;
    c->n_ctx = (int)T;
    if (lpl_gguf_find_key(g, "gpt2.feed_forward_length") >= 0) {
        if (lpl_gguf_get_u32(g, "gpt2.feed_forward_length", &F, err))
            return LPL_ERR_FORMAT;
        if ((uint64_t)F != 4 * (uint64_t)C)
            return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                            "gguf: gpt2.feed_forward_length %u is not 4 x embedding_length (%u)", F, C);
    }
    if ((st_pd = read_pdrop(g, c, err)) != LPL_OK)
        return st_pd;
vocab:;
    const lpl_gguf_tensor *te = lpl_gguf_find_tensor(g, "token_embd.weight");
    if (!te)
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: tensor 'token_embd.weight' is missing");
    if (te->n_dims != 2 || te->ne[1] > INT32_MAX)
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: tensor 'token_embd.weight' must be 2-D");
    c->n_vocab = (int)te->ne[1];
    uint64_t n_tokens;
    if (lpl_gguf_find_key(g, "tokenizer.ggml.tokens") >= 0 &&
        lpl_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n_tokens, NULL, err) == LPL_OK &&
        n_tokens != (uint64_t)c->n_vocab)
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: tokenizer.ggml.tokens has %llu tokens but token_embd.weight has %d rows",
                        (unsigned long long)n_tokens, c->n_vocab);
    lpl_status st = check_config(c, "gguf", err);
    if (st == LPL_OK && lpl_cfg_is_llama(c) && lpl_gpt2_config_check(c, err) != LPL_OK)
        return LPL_ERR_FORMAT;
    return st;
}

/* ------------------------------------------------------------------ from GGUF */

typedef struct {
    const lpl_gguf *g;
    owned_list *own;
    int copy;
    lpl_error *err;
} loader;

/* Finds a tensor and checks its shape (ne0 = cols, ne1 = rows; rows 0 for 1-D). */
static const lpl_gguf_tensor *want_tensor(loader *ld, const char *name, int64_t cols, int64_t rows)
{
    const lpl_gguf_tensor *t = lpl_gguf_find_tensor(ld->g, name);
    if (!t) {
        lpl_fail(ld->err, LPL_ERR_FORMAT, "gguf: tensor '%s' is missing", name);
        return NULL;
    }
    int ok = rows ? (t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows)
                  : (t->n_dims == 1 && t->ne[0] == cols);
    if (!ok) {
        if (rows)
            lpl_fail(ld->err, LPL_ERR_FORMAT, "gguf: tensor '%s' has shape [%lld, %lld], the config needs [%lld, %lld]",
                     name, (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1), (long long)cols,
                     (long long)rows);
        else
            lpl_fail(ld->err, LPL_ERR_FORMAT, "gguf: tensor '%s' has %d dims / %lld elements, the config needs [%lld]",
                     name, t->n_dims, (long long)t->ne[0], (long long)cols);
        return NULL;
    }
    return t;
}

/* fp32 data of a tensor: in place when F32, aligned and not copying; else a converted copy. */
static float *load_f32(loader *ld, const char *name, int64_t cols, int64_t rows)
{
    const lpl_gguf_tensor *t = want_tensor(ld, name, cols, rows);
    if (!t)
        return NULL;
    int64_t r = rows ? rows : 1;
    if (t->type == LPL_F32 && !ld->copy && (uintptr_t)t->data % sizeof(float) == 0)
        return (float *)t->data;
    float *dst = owned_alloc(ld->own, (size_t)(r * cols) * sizeof(float), name, ld->err);
    if (!dst)
        return NULL;
    size_t rb = lpl_dtype_row_bytes(t->type, cols);
    for (int64_t i = 0; i < r; i++)
        lpl_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)i * rb, dst + i * cols, cols);
    return dst;
}

/* A weight matrix [rows][cols] of f32/f16/q8_0/q4_0, in place unless copying (bf16 -> f32). */
static int load_matrix(loader *ld, const char *name, int rows, int cols, lpl_matrix *m)
{
    const lpl_gguf_tensor *t = want_tensor(ld, name, cols, rows);
    if (!t)
        return 0;
    m->rows = rows;
    m->cols = cols;
    size_t align = t->type == LPL_F32 ? 4 : 2;
    if (t->type == LPL_BF16 || (uintptr_t)t->data % align) {
        m->type = LPL_F32;
        m->data = load_f32(ld, name, cols, rows);
        return m->data != NULL;
    }
    m->type = t->type;
    if (!ld->copy) {
        m->data = (void *)t->data;
        return 1;
    }
    m->data = owned_alloc(ld->own, t->nbytes, name, ld->err);
    if (!m->data)
        return 0;
    memcpy(m->data, t->data, t->nbytes);
    return 1;
}

/* An untied output.weight is only acceptable when it is token_embd byte for byte. */
static int check_output_head(const lpl_gguf *g, lpl_error *err)
{
    const lpl_gguf_tensor *o = lpl_gguf_find_tensor(g, "output.weight");
    if (!o)
        return 1;
    const lpl_gguf_tensor *e = lpl_gguf_find_tensor(g, "token_embd.weight");
    if (o->type == e->type && o->n_dims == e->n_dims && o->ne[0] == e->ne[0] && o->ne[1] == e->ne[1] &&
        !memcmp(o->data, e->data, e->nbytes))
        return 1;
    lpl_fail(err, LPL_ERR_UNSUPPORTED,
             "gguf: an untied output.weight (different from token_embd.weight) is not supported");
    return 0;
}

/* Undoes llama.cpp's pair permutation of a loaded attn_q / attn_k (into a copy). */
static int unpermute_rows(loader *ld, const char *name, lpl_matrix *m, int hd)
{
    size_t rb = lpl_dtype_row_bytes(m->type, m->cols);
    uint8_t *dst = owned_alloc(ld->own, rb * (size_t)m->rows, name, ld->err);
    if (!dst)
        return 0;
    for (int r = 0; r < m->rows; r++)
        memcpy(dst + (size_t)rope_row_from_hf(r, hd) * rb, (const uint8_t *)m->data + (size_t)r * rb, rb);
    m->data = dst;
    return 1;
}

static int load_llama_block(loader *ld, int l, lpl_gpt2_block *b, const lpl_gpt2_config *c)
{
    char name[96];
    snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
    if (!(b->ln1_w = load_f32(ld, name, c->n_embd, 0)))
        return 0;
    snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
    if (!(b->ln2_w = load_f32(ld, name, c->n_embd, 0)))
        return 0;
    for (int s = LPL_SITE_LLAMA_FIRST; s < LPL_SITE_LLAMA_END; s++) {
        int out, in;
        site_shape(c, (lpl_site)s, &out, &in);
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, site_gguf[s]);
        if (!load_matrix(ld, name, out, in, &b->w[s]))
            return 0;
        if (site_permuted(c, (lpl_site)s) && !unpermute_rows(ld, name, &b->w[s], lpl_cfg_head_dim(c)))
            return 0;
        if (!lpl_site_has_bias(c, (lpl_site)s))
            continue;
        snprintf(name, sizeof name, "blk.%d.%s.bias", l, site_gguf[s]);
        if (!(b->b[s] = load_f32(ld, name, out, 0)))
            return 0;
    }
    return 1;
}

static int load_block(loader *ld, int l, lpl_gpt2_block *b, const lpl_gpt2_config *c)
{
    if (lpl_cfg_is_llama(c))
        return load_llama_block(ld, l, b, c);
    char name[96];
    int C = c->n_embd;
#define F32V(dst, suffix, n)                                             \
    do {                                                                 \
        snprintf(name, sizeof name, "blk.%d.%s", l, suffix);             \
        if (!((dst) = load_f32(ld, name, (n), 0)))                       \
            return 0;                                                    \
    } while (0)
    F32V(b->ln1_w, "attn_norm.weight", C);
    F32V(b->ln1_b, "attn_norm.bias", C);
    F32V(b->ln2_w, "ffn_norm.weight", C);
    F32V(b->ln2_b, "ffn_norm.bias", C);
    for (int s = LPL_SITE_GPT2_FIRST; s < LPL_SITE_GPT2_END; s++) {
        int out, in;
        site_shape(c, (lpl_site)s, &out, &in);
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, site_gguf[s]);
        if (!load_matrix(ld, name, out, in, &b->w[s]))
            return 0;
        snprintf(name, sizeof name, "blk.%d.%s.bias", l, site_gguf[s]);
        if (!(b->b[s] = load_f32(ld, name, out, 0)))
            return 0;
    }
#undef F32V
    return 1;
}

lpl_gpt2_model *lpl_gpt2_from_gguf(const lpl_gguf *g, int copy, lpl_error *err)
{
    lpl_gpt2_config cfg = {0};
    if (read_config(g, &cfg, err) != LPL_OK || (!lpl_cfg_is_llama(&cfg) && !check_output_head(g, err)))
        return NULL;
    lpl_gpt2_model *m = lpl_calloc(1, sizeof *m, "model", err);
    owned_list *own = lpl_calloc(1, sizeof *own, "model", err);
    if (!m || !own) {
        free(m);
        free(own);
        return NULL;
    }
    m->cfg = cfg;
    m->owned = own;
    m->release = owned_release;
    loader ld = {g, own, copy, err};
    m->blocks = owned_alloc(own, (size_t)cfg.n_layer * sizeof *m->blocks, "model blocks", err);
    const int llama = lpl_cfg_is_llama(&cfg);
    if (!m->blocks || !load_matrix(&ld, "token_embd.weight", cfg.n_vocab, cfg.n_embd, &m->wte) ||
        (!llama && !(m->wpe = load_f32(&ld, "position_embd.weight", cfg.n_embd, cfg.n_ctx))) ||
        !(m->lnf_w = load_f32(&ld, "output_norm.weight", cfg.n_embd, 0)) ||
        (!llama && !(m->lnf_b = load_f32(&ld, "output_norm.bias", cfg.n_embd, 0))) ||
        (cfg.untied && !load_matrix(&ld, "output.weight", cfg.n_vocab, cfg.n_embd, &m->lm_head)))
        goto fail;
    for (int l = 0; l < cfg.n_layer; l++)
        if (!load_block(&ld, l, &m->blocks[l], &cfg))
            goto fail;
    return m;
fail:
    owned_release(own);
    free(m);
    return NULL;
}

/* ------------------------------------------------------------------ to GGUF */

/* Adds matrix m converted to type t (same type: raw copy); perm_hd > 0 writes the
 * rows in llama.cpp's pair order for heads of that width. */
static lpl_status add_matrix_perm(lpl_gguf_writer *w, const char *name, const lpl_matrix *m, lpl_dtype t,
                                  int perm_hd, lpl_error *err);

static lpl_status add_matrix(lpl_gguf_writer *w, const char *name, const lpl_matrix *m, lpl_dtype t,
                             lpl_error *err)
{
    return add_matrix_perm(w, name, m, t, 0, err);
}

static lpl_status add_matrix_perm(lpl_gguf_writer *w, const char *name, const lpl_matrix *m, lpl_dtype t,
                                  int perm_hd, lpl_error *err)
{
    int64_t ne[2] = {m->cols, m->rows};
    size_t src_rb = lpl_dtype_row_bytes(m->type, m->cols), dst_rb = lpl_dtype_row_bytes(t, m->cols);
    if (!src_rb)
        return lpl_fail(err, LPL_ERR_INVALID, "%s: matrix type %s with %d columns cannot be stored", name,
                        lpl_dtype_name(m->type), m->cols);
    if (!dst_rb)
        return lpl_fail(err, LPL_ERR_INVALID, "%s: cannot convert %d columns to %s (needs a multiple of 32)",
                        name, m->cols, lpl_dtype_name(t));
    if (m->type == t && !perm_hd)
        return lpl_gguf_add_tensor(w, name, t, 2, ne, m->data, err);
    uint8_t *dst = lpl_malloc(dst_rb * (size_t)m->rows, name, err);
    float *row = lpl_malloc((size_t)m->cols * sizeof(float), name, err);
    lpl_status st = dst && row ? LPL_OK : LPL_ERR_NOMEM;
    for (int r = 0; st == LPL_OK && r < m->rows; r++) {
        int from = perm_hd ? rope_row_from_hf(r, perm_hd) : r;
        lpl_dequantize_row(m->type, (const uint8_t *)m->data + (size_t)from * src_rb, row, m->cols);
        st = lpl_convert_row(t, row, dst + (size_t)r * dst_rb, m->cols, err);
    }
    if (st == LPL_OK)
        st = lpl_gguf_add_tensor(w, name, t, 2, ne, dst, err);
    free(dst);
    free(row);
    return st;
}

static lpl_status add_vec(lpl_gguf_writer *w, const char *name, const float *v, int64_t cols, int64_t rows,
                          lpl_error *err)
{
    int64_t ne[2] = {cols, rows};
    return lpl_gguf_add_tensor(w, name, LPL_F32, rows ? 2 : 1, ne, v, err);
}

static lpl_status add_llama_block(lpl_gguf_writer *w, int l, const lpl_gpt2_block *b, const lpl_gpt2_config *c,
                                  lpl_dtype t, lpl_error *err)
{
    char name[96];
    lpl_status st;
    snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
    if ((st = add_vec(w, name, b->ln1_w, c->n_embd, 0, err)) != LPL_OK)
        return st;
    for (int s = LPL_SITE_LLAMA_FIRST; s < LPL_SITE_LLAMA_END; s++) {
        if (s == LPL_SITE_GATE) {
            snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
            if ((st = add_vec(w, name, b->ln2_w, c->n_embd, 0, err)) != LPL_OK)
                return st;
        }
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, site_gguf[s]);
        int perm = site_permuted(c, (lpl_site)s) ? lpl_cfg_head_dim(c) : 0;
        if ((st = add_matrix_perm(w, name, &b->w[s], t, perm, err)) != LPL_OK)
            return st;
        if (!b->b[s])
            continue;
        snprintf(name, sizeof name, "blk.%d.%s.bias", l, site_gguf[s]);
        if ((st = add_vec(w, name, b->b[s], b->w[s].rows, 0, err)) != LPL_OK)
            return st;
    }
    return LPL_OK;
}

static lpl_status add_block(lpl_gguf_writer *w, int l, const lpl_gpt2_block *b, const lpl_gpt2_config *c,
                            lpl_dtype t, lpl_error *err)
{
    char name[96];
    lpl_status st;
    if (lpl_cfg_is_llama(c))
        return add_llama_block(w, l, b, c, t, err);
#define VEC(suffix, ptr, n)                                              \
    do {                                                                 \
        snprintf(name, sizeof name, "blk.%d.%s", l, suffix);             \
        if ((st = add_vec(w, name, (ptr), (n), 0, err)) != LPL_OK)       \
            return st;                                                   \
    } while (0)
    VEC("attn_norm.weight", b->ln1_w, c->n_embd);
    VEC("attn_norm.bias", b->ln1_b, c->n_embd);
    for (int s = LPL_SITE_GPT2_FIRST; s < LPL_SITE_GPT2_END; s++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, site_gguf[s]);
        if ((st = add_matrix(w, name, &b->w[s], t, err)) != LPL_OK)
            return st;
        snprintf(name, sizeof name, "blk.%d.%s.bias", l, site_gguf[s]);
        if ((st = add_vec(w, name, b->b[s], b->w[s].rows, 0, err)) != LPL_OK)
            return st;
        if (s == LPL_SITE_ATTN_PROJ) {
            VEC("ffn_norm.weight", b->ln2_w, c->n_embd);
            VEC("ffn_norm.bias", b->ln2_b, c->n_embd);
        }
    }
#undef VEC
    return LPL_OK;
}

/* llama.cpp's general.file_type for the matrix type. */
static uint32_t file_type_of(lpl_dtype t)
{
    switch (t) {
    case LPL_F16: return 1;
    case LPL_Q4_0: return 2;
    case LPL_Q8_0: return 7;
    default: return 0;
    }
}

static lpl_status add_tokenizer(lpl_gguf_writer *w, const char *const *tokens, int64_t n_tokens,
                                const char *const *merges, int64_t n_merges, lpl_error *err)
{
    lpl_status st;
    int32_t *types = lpl_malloc((size_t)n_tokens * sizeof(int32_t), "token types", err);
    if (!types)
        return LPL_ERR_NOMEM;
    int64_t eot = -1;
    for (int64_t i = 0; i < n_tokens; i++) {
        int special = tokens[i] && !strcmp(tokens[i], "<|endoftext|>");
        types[i] = special ? 3 : 1; /* llama.cpp: 1 normal, 3 control */
        if (special && eot < 0)
            eot = i;
    }
    if ((st = lpl_gguf_set_str(w, "tokenizer.ggml.model", "gpt2", err)) ||
        (st = lpl_gguf_set_str(w, "tokenizer.ggml.pre", "gpt-2", err)) ||
        (st = lpl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, (uint64_t)n_tokens, err)) ||
        (st = lpl_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n_tokens, err)) ||
        (st = lpl_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)n_merges, err)))
        goto done;
    if (eot >= 0 && ((st = lpl_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eot, err)) ||
                     (st = lpl_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eot, err))))
        goto done;
done:
    free(types);
    return st;
}

/* The Llama family's <arch>.* keys, as llama.cpp's converter writes them. */
static lpl_status write_llama_metadata(lpl_gguf_writer *w, const lpl_gpt2_config *c, lpl_error *err)
{
    char k[96];
    lpl_status st;
    if ((st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "context_length"), (uint32_t)c->n_ctx, err)) ||
        (st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "embedding_length"), (uint32_t)c->n_embd, err)) ||
        (st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "feed_forward_length"), (uint32_t)c->n_ff, err)) ||
        (st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "block_count"), (uint32_t)c->n_layer, err)) ||
        (st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "attention.head_count"), (uint32_t)c->n_head, err)) ||
        (st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "attention.head_count_kv"), (uint32_t)c->n_kv_head,
                               err)) ||
        (st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "rope.dimension_count"),
                               (uint32_t)lpl_cfg_head_dim(c), err)) ||
        (st = lpl_gguf_set_f32(w, arch_key(k, sizeof k, c, "rope.freq_base"), c->rope_theta, err)) ||
        (st = lpl_gguf_set_f32(w, arch_key(k, sizeof k, c, "attention.layer_norm_rms_epsilon"), c->ln_eps, err)) ||
        (st = lpl_gguf_set_u32(w, arch_key(k, sizeof k, c, "vocab_size"), (uint32_t)c->n_vocab, err)) ||
        (st = lpl_gguf_set_f32(w, arch_key(k, sizeof k, c, "attention_dropout"), c->pdrop.attn, err)))
        return st;
    return LPL_OK;
}

/* general.* and <arch>.* keys. */
static lpl_status write_metadata(lpl_gguf_writer *w, const lpl_gpt2_config *c, lpl_dtype t, const char *name,
                                 lpl_error *err)
{
    lpl_status st;
    if (lpl_cfg_is_llama(c)) {
        const char *arch = lpl_arch_name(c->arch);
        if ((st = lpl_gguf_set_str(w, "general.architecture", arch, err)) ||
            (st = lpl_gguf_set_str(w, "general.name", name && *name ? name : arch, err)) ||
            (st = lpl_gguf_set_u32(w, "general.file_type", file_type_of(t), err)) ||
            (t != LPL_F32 && t != LPL_F16 && (st = lpl_gguf_set_u32(w, "general.quantization_version", 2, err))))
            return st;
        return write_llama_metadata(w, c, err);
    }
    if ((st = lpl_gguf_set_str(w, "general.architecture", "gpt2", err)) ||
        (st = lpl_gguf_set_str(w, "general.name", name && *name ? name : "gpt2", err)) ||
        (st = lpl_gguf_set_u32(w, "general.file_type", file_type_of(t), err)) ||
        (t != LPL_F32 && t != LPL_F16 && (st = lpl_gguf_set_u32(w, "general.quantization_version", 2, err))) ||
        (st = lpl_gguf_set_u32(w, "gpt2.context_length", (uint32_t)c->n_ctx, err)) ||
        (st = lpl_gguf_set_u32(w, "gpt2.embedding_length", (uint32_t)c->n_embd, err)) ||
        (st = lpl_gguf_set_u32(w, "gpt2.feed_forward_length", (uint32_t)(4 * c->n_embd), err)) ||
        (st = lpl_gguf_set_u32(w, "gpt2.block_count", (uint32_t)c->n_layer, err)) ||
        (st = lpl_gguf_set_u32(w, "gpt2.attention.head_count", (uint32_t)c->n_head, err)) ||
        (st = lpl_gguf_set_f32(w, "gpt2.attention.layer_norm_epsilon", c->ln_eps, err)))
        return st;
    /* only rates the source stated: an assumed 0.1 must stay recognisable as assumed */
    if (c->pdrop_stated &&
        ((st = lpl_gguf_set_f32(w, pdrop_keys[0], c->pdrop.embd, err)) ||
         (st = lpl_gguf_set_f32(w, pdrop_keys[1], c->pdrop.attn, err)) ||
         (st = lpl_gguf_set_f32(w, pdrop_keys[2], c->pdrop.resid, err))))
        return st;
    return LPL_OK;
}

static int matrix_type_ok(lpl_dtype t)
{
    return t == LPL_F32 || t == LPL_F16 || t == LPL_Q8_0 || t == LPL_Q4_0;
}

lpl_status lpl_gpt2_to_gguf(const lpl_gpt2_model *m, lpl_dtype t, const char *name,
                            const char *const *tokens, int64_t n_tokens,
                            const char *const *merges, int64_t n_merges,
                            lpl_gguf_writer *w, lpl_error *err)
{
    const lpl_gpt2_config *c = &m->cfg;
    lpl_status st;
    if (!matrix_type_ok(t))
        return lpl_fail(err, LPL_ERR_INVALID, "gguf: matrix type must be f32, f16, q8_0 or q4_0");
    if ((st = check_config(c, "model", err)) != LPL_OK)
        return LPL_ERR_INVALID;
    if (tokens && n_tokens != c->n_vocab)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer has %lld tokens but the model's vocabulary is %d",
                        (long long)n_tokens, c->n_vocab);
    if ((st = write_metadata(w, c, t, name, err)) != LPL_OK)
        return st;
    if (tokens && (st = add_tokenizer(w, tokens, n_tokens, merges, n_merges, err)) != LPL_OK)
        return st;
    if ((st = add_matrix(w, "token_embd.weight", &m->wte, t, err)) ||
        (m->wpe && (st = add_vec(w, "position_embd.weight", m->wpe, c->n_embd, c->n_ctx, err))))
        return st;
    for (int l = 0; l < c->n_layer; l++)
        if ((st = add_block(w, l, &m->blocks[l], c, t, err)) != LPL_OK)
            return st;
    if ((st = add_vec(w, "output_norm.weight", m->lnf_w, c->n_embd, 0, err)) ||
        (m->lnf_b && (st = add_vec(w, "output_norm.bias", m->lnf_b, c->n_embd, 0, err))) ||
        (m->lm_head.data && (st = add_matrix(w, "output.weight", &m->lm_head, t, err))))
        return st;
    return LPL_OK;
}

/* ------------------------------------------------------------------ HF -> GGUF */

lpl_status lpl_hf_write_head(const lpl_gpt2_config *cfg, lpl_dtype t, const char *name, const char *vocab,
                             size_t vocab_len, const char *merges, size_t merges_len, lpl_gguf_writer *w,
                             lpl_error *err)
{
    lpl_hf_vocab voc = {0};
    lpl_status st;
    if (!matrix_type_ok(t))
        return lpl_fail(err, LPL_ERR_INVALID, "convert: type must be f32, f16, q8_0 or q4_0");
    if ((st = check_config(cfg, "config.json", err)) ||
        (st = lpl_hf_vocab_parse(vocab, vocab_len, merges, merges_len, cfg->n_vocab, &voc, err)) ||
        (st = write_metadata(w, cfg, t, name, err)) ||
        (st = add_tokenizer(w, (const char *const *)voc.tokens, voc.n_tokens, (const char *const *)voc.merges,
                            voc.n_merges, err)))
        goto done;
done:
    lpl_hf_vocab_free(&voc);
    return st;
}

lpl_status lpl_hf_write_head_tok(const lpl_gpt2_config *cfg, lpl_dtype t, const char *name, lpl_tokenizer *tok,
                                 lpl_gguf_writer *w, lpl_error *err)
{
    lpl_status st;
    if (!matrix_type_ok(t))
        return lpl_fail(err, LPL_ERR_INVALID, "convert: type must be f32, f16, q8_0 or q4_0");
    if ((st = check_config(cfg, "config.json", err)) != LPL_OK)
        return st;
    int n = lpl_tokenizer_vocab_size(tok);
    if (n > cfg->n_vocab)
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer.json has %d tokens but config.json vocab_size is %d", n,
                        cfg->n_vocab);
    /* an embedding with more rows than tokens (Qwen2.5: 151,936 for 151,665) gets
     * [PAD<id>] tokens, as llama.cpp's converter writes them */
    if (n < cfg->n_vocab && (st = lpl_tokenizer_pad_vocab(tok, cfg->n_vocab, err)) != LPL_OK)
        return st;
    if ((st = write_metadata(w, cfg, t, name, err)) != LPL_OK)
        return st;
    return lpl_tokenizer_to_gguf(tok, w, err);
}
