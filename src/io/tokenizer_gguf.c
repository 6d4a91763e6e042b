/* A tokenizer in and out of GGUF: llama.cpp's tokenizer.ggml.* keys (model, pre,
 * tokens, token_type, merges, scores, special ids and flags). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_build.h"
#include "lpl/io/gguf.h"
#include "lpl/io/tokenizer.h"

/* Optional u32 key into *out (left alone when absent); fails if it is past the vocabulary. */
static lpl_status gguf_opt_id(const lpl_gguf *g, const char *key, int n_vocab, int *out, lpl_error *err)
{
    uint32_t v;
    if (lpl_gguf_find_key(g, key) < 0)
        return LPL_OK;
    lpl_status st = lpl_gguf_get_u32(g, key, &v, err);
    if (st == LPL_OK && v >= (uint32_t)n_vocab)
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF %s %u is past the vocabulary (%d)", key, v, n_vocab);
    if (st == LPL_OK)
        *out = (int)v;
    return st;
}

static lpl_status gguf_opt_flag(const lpl_gguf *g, const char *key, int *out, lpl_error *err)
{
    uint32_t v;
    if (lpl_gguf_find_key(g, key) < 0)
        return LPL_OK;
    lpl_status st = lpl_gguf_get_u32(g, key, &v, err);
    if (st == LPL_OK)
        *out = v != 0;
    return st;
}

/* tokenizer.ggml.model and .pre: the kind and the pre-tokenisation rule. */
static lpl_status gguf_kind(const lpl_gguf *g, lpl_tokenizer_kind *kind, int *pre, lpl_error *err)
{
    const char *model = NULL, *s;
    size_t len;
    *kind = LPL_TOKENIZER_BYTE_BPE;
    *pre = LPL_PRE_GPT2;
    if (lpl_gguf_find_key(g, "tokenizer.ggml.model") < 0)
        return LPL_OK; /* the lab's first GGUFs: GPT-2's */
    lpl_status st = lpl_gguf_get_str(g, "tokenizer.ggml.model", &model, &len, err);
    if (st != LPL_OK)
        return st;
    if (!strcmp(model, "llama")) {
        *kind = LPL_TOKENIZER_SPM_BPE;
        *pre = LPL_PRE_NONE;
        return LPL_OK;
    }
    if (strcmp(model, "gpt2"))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "tokenizer: GGUF tokenizer.ggml.model is \"%.40s\" "
                        "(supported: \"gpt2\" byte-level BPE, \"llama\" SentencePiece-style BPE)", model);
    if (lpl_gguf_find_key(g, "tokenizer.ggml.pre") < 0)
        return LPL_OK;
    if ((st = lpl_gguf_get_str(g, "tokenizer.ggml.pre", &s, &len, err)) != LPL_OK)
        return st;
    *pre = lpl_pre_from_name(s);
    if (*pre < 0 || *pre == LPL_PRE_NONE)
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF tokenizer.ggml.pre is \"%.40s\" "
                        "(supported: \"gpt-2\", \"smollm\", \"qwen2\", \"llama-bpe\")", s);
    return LPL_OK;
}

/* Checks a GGUF array key: its element type and length n. */
static lpl_status gguf_arr(const lpl_gguf *g, const char *key, lpl_gguf_type want, uint64_t n, const void **raw,
                           lpl_error *err)
{
    lpl_gguf_type type;
    uint64_t got;
    lpl_status st = lpl_gguf_get_arr(g, key, &type, &got, raw, err);
    if (st == LPL_OK && (type != want || got != n))
        st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF %s must be %llu %s", key, (unsigned long long)n,
                      want == LPL_GGUF_INT32 ? "int32 values (one per token)" : "values");
    return st;
}

static lpl_status gguf_tokens(lpl_tokenizer *t, const lpl_gguf *g, lpl_error *err)
{
    const void *types = NULL;
    const char *s;
    size_t len;
    lpl_status st = LPL_OK;
    if (lpl_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0)
        st = gguf_arr(g, "tokenizer.ggml.token_type", LPL_GGUF_INT32, (uint64_t)t->n_vocab, &types, err);
    for (int i = 0; st == LPL_OK && i < t->n_vocab; i++) {
        int32_t type = LPL_TOKEN_NORMAL;
        if (types)
            memcpy(&type, (const char *)types + 4 * (size_t)i, 4);
        if (type < LPL_TOKEN_NORMAL || type > LPL_TOKEN_BYTE)
            return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF tokenizer.ggml.token_type[%d] is %d (1..6)", i, type);
        st = lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)i, &s, &len, err);
        if (st == LPL_OK)
            st = lpl_tok_set(t, i, s, len, type, err);
    }
    return st;
}

typedef struct {
    float score;
    int id;
} scored_token;

/* Higher score first, then lower id. */
static int by_score(const void *pa, const void *pb)
{
    const scored_token *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Merges of each normal token, best score first: every split into two tokens, left
 * part shortest first. SentencePiece (and llama.cpp) merge the adjacent pair whose
 * join scores highest; BPE by these ranks does the same, as Hugging Face's
 * converter of Llama's tokenizer lists its merges. */
static lpl_status scored_merges(lpl_tokenizer *t, const float *scores, lpl_error *err)
{
    scored_token *order = lpl_malloc((size_t)t->n_vocab * sizeof *order, "token order", err);
    size_t max = 0;
    int n = 0;
    if (!order)
        return LPL_ERR_NOMEM;
    for (int id = 0; id < t->n_vocab; id++) {
        if (t->tok_type[id] != LPL_TOKEN_NORMAL || !t->tok_str[id][0])
            continue;
        order[n++] = (scored_token){scores[id], id};
        max += strlen(t->tok_str[id]) - 1;
    }
    qsort(order, (size_t)n, sizeof *order, by_score);
    lpl_status st = lpl_tok_alloc_merges(t, max, err);
    for (int i = 0; st == LPL_OK && i < n; i++) {
        const char *s = t->tok_str[order[i].id];
        size_t len = strlen(s);
        for (size_t p = 1; st == LPL_OK && p < len; p++) {
            if (((uint8_t)s[p] & 0xC0) == 0x80)
                continue; /* inside a character */
            if (lpl_tok_find(t, s, p) >= 0 && lpl_tok_find(t, s + p, len - p) >= 0)
                st = lpl_tok_add_merge(t, s, p, s + p, len - p, "GGUF scored token", (long)order[i].id, err);
        }
    }
    free(order);
    return st;
}

static lpl_status gguf_merges(lpl_tokenizer *t, const lpl_gguf *g, lpl_error *err)
{
    lpl_gguf_type type;
    uint64_t n = 0;
    const char *s;
    size_t len;
    const void *raw = NULL;
    if (lpl_gguf_find_key(g, "tokenizer.ggml.merges") < 0 && t->kind == LPL_TOKENIZER_SPM_BPE) {
        /* llama.cpp's converter writes SentencePiece scores, no merges */
        if (lpl_gguf_find_key(g, "tokenizer.ggml.scores") < 0)
            return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF \"llama\" vocabulary has neither "
                            "tokenizer.ggml.merges nor tokenizer.ggml.scores");
        lpl_status st = gguf_arr(g, "tokenizer.ggml.scores", LPL_GGUF_FLOAT32, (uint64_t)t->n_vocab, &raw, err);
        float *scores = st == LPL_OK ? lpl_malloc((size_t)t->n_vocab * sizeof *scores, "token scores", err) : NULL;
        if (scores) {
            memcpy(scores, raw, (size_t)t->n_vocab * sizeof *scores);
            st = scored_merges(t, scores, err);
        }
        free(scores);
        return scores ? st : st != LPL_OK ? st : LPL_ERR_NOMEM;
    }
    if (lpl_gguf_find_key(g, "tokenizer.ggml.merges") < 0)
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF has no tokenizer.ggml.merges");
    lpl_status st = lpl_gguf_get_arr(g, "tokenizer.ggml.merges", &type, &n, NULL, err);
    if (st == LPL_OK && (type != LPL_GGUF_STRING || n > INT32_MAX / 2))
        st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF tokenizer.ggml.merges must be strings");
    if (st == LPL_OK)
        st = lpl_tok_alloc_merges(t, (size_t)n, err);
    for (uint64_t i = 0; st == LPL_OK && i < n; i++) {
        st = lpl_gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s, &len, err);
        if (st == LPL_OK)
            st = lpl_tok_add_merge_line(t, s, len, "GGUF merge", (long)i, err);
    }
    return st;
}

/* Control and user-defined tokens are split out of text, except for GPT-2's own
 * vocabulary, whose end of text stays text (OpenAI's encoder). */
static lpl_status gguf_added(lpl_tokenizer *t, lpl_error *err)
{
    if (t->kind == LPL_TOKENIZER_BYTE_BPE && t->pre == LPL_PRE_GPT2)
        return LPL_OK;
    lpl_status st = LPL_OK;
    for (int i = 0; st == LPL_OK && i < t->n_vocab; i++)
        if (lpl_tok_is_added_type(t->tok_type[i]) && t->tok_str[i][0])
            st = lpl_tok_add_added(t, i, 0, 0, err);
    return st;
}

static lpl_status gguf_specials(lpl_tokenizer *t, const lpl_gguf *g, lpl_error *err)
{
    lpl_status st;
    int prefix = 1;
    if ((st = gguf_opt_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err)) ||
        (st = gguf_opt_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err)) ||
        (st = gguf_opt_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk, err)) ||
        (st = gguf_opt_id(g, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad, err)) ||
        (st = gguf_opt_flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) ||
        (st = gguf_opt_flag(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err)) ||
        (st = gguf_opt_flag(g, "tokenizer.ggml.add_space_prefix", &prefix, err)))
        return st;
    if (t->kind == LPL_TOKENIZER_SPM_BPE) {
        t->byte_fallback = 1;
        t->prepend = prefix ? LPL_PREPEND_ALWAYS : LPL_PREPEND_NONE;
        t->strip_space = prefix;
    }
    return LPL_OK;
}

lpl_tokenizer *lpl_tokenizer_from_gguf(const lpl_gguf *g, lpl_error *err)
{
    lpl_tokenizer_kind kind = LPL_TOKENIZER_BYTE_BPE;
    int pre = LPL_PRE_GPT2;
    uint64_t n_tok = 0;
    lpl_gguf_type type;
    lpl_status st = gguf_kind(g, &kind, &pre, err);
    if (st != LPL_OK)
        return NULL;
    if (lpl_gguf_find_key(g, "tokenizer.ggml.tokens") < 0 ||
        lpl_gguf_get_arr(g, "tokenizer.ggml.tokens", &type, &n_tok, NULL, err) != LPL_OK ||
        type != LPL_GGUF_STRING || n_tok < 1 || n_tok > INT32_MAX / 2) {
        lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF tokenizer.ggml.tokens must be a non-empty string array");
        return NULL;
    }
    lpl_tokenizer *t = lpl_tok_new(kind, (int)n_tok, err);
    if (!t)
        return NULL;
    t->pre = (lpl_pre_rule)pre;
    /* GGUF has no key for the normalizer: Qwen2's tokenizer.json has NFC */
    t->nfc = pre == LPL_PRE_QWEN2;
    if ((st = gguf_tokens(t, g, err)) == LPL_OK && kind == LPL_TOKENIZER_BYTE_BPE && pre == LPL_PRE_GPT2)
        lpl_tok_gpt2_specials(t);
    if (st == LPL_OK)
        st = gguf_specials(t, g, err);
    if (st == LPL_OK)
        st = lpl_tok_finish_vocab(t, err);
    if (st == LPL_OK)
        st = gguf_merges(t, g, err);
    if (st == LPL_OK)
        st = gguf_added(t, err);
    if (st != LPL_OK) {
        lpl_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* SentencePiece scores for llama.cpp: minus the rank of the first merge that makes
 * a token (its merge by highest score then equals ours by lowest rank); below all of
 * them for the rest, which no merge makes. */
static float *spm_scores(const lpl_tokenizer *t, lpl_error *err)
{
    float *scores = lpl_malloc((size_t)t->n_vocab * sizeof *scores, "token scores", err);
    if (!scores)
        return NULL;
    for (int id = 0; id < t->n_vocab; id++)
        scores[id] = -(float)t->n_merges - (float)id;
    for (int r = t->n_merges - 1; r >= 0; r--)
        scores[t->merges[r].merged] = -(float)r;
    return scores;
}

static lpl_status gguf_put_id(lpl_gguf_writer *w, const char *key, int id, lpl_error *err)
{
    return id >= 0 ? lpl_gguf_set_u32(w, key, (uint32_t)id, err) : LPL_OK;
}

lpl_status lpl_tokenizer_to_gguf(const lpl_tokenizer *t, lpl_gguf_writer *w, lpl_error *err)
{
    int32_t *types = lpl_malloc((size_t)t->n_vocab * sizeof *types, "token types", err);
    float *scores = types && t->kind == LPL_TOKENIZER_SPM_BPE ? spm_scores(t, err) : NULL;
    lpl_status st = types && (scores || t->kind != LPL_TOKENIZER_SPM_BPE) ? LPL_OK : LPL_ERR_NOMEM;
    for (int i = 0; st == LPL_OK && i < t->n_vocab; i++)
        types[i] = t->tok_type[i];
    if (st == LPL_OK &&
        ((st = lpl_gguf_set_str(w, "tokenizer.ggml.model", lpl_tokenizer_model_name(t), err)) ||
         (st = lpl_gguf_set_str(w, "tokenizer.ggml.pre", lpl_tokenizer_pre_name(t), err)) ||
         (st = lpl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)t->tok_str,
                                    (uint64_t)t->n_vocab, err)) ||
         (scores && (st = lpl_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)t->n_vocab, err))) ||
         (st = lpl_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)t->n_vocab, err)) ||
         (st = lpl_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)t->merge_str,
                                    (uint64_t)t->n_merges, err)) ||
         (st = gguf_put_id(w, "tokenizer.ggml.bos_token_id", t->bos, err)) ||
         (st = gguf_put_id(w, "tokenizer.ggml.eos_token_id", t->eos, err)) ||
         (st = gguf_put_id(w, "tokenizer.ggml.unknown_token_id", t->unk, err)) ||
         (st = gguf_put_id(w, "tokenizer.ggml.padding_token_id", t->pad, err)) ||
         (st = lpl_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos, err)) ||
         (st = lpl_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos, err))))
        goto done;
    if (t->kind == LPL_TOKENIZER_SPM_BPE)
        st = lpl_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", t->prepend != LPL_PREPEND_NONE, err);
done:
    free(types);
    free(scores);
    return st;
}


/* ---------------- another GGUF with this tokenizer ---------------- */

/* Copies one key/value of g that is not the tokenizer's to w. */
static lpl_status copy_kv(const lpl_gguf *g, int64_t i, lpl_gguf_writer *w, lpl_error *err)
{
    const char *key = lpl_gguf_key(g, i), *s;
    lpl_gguf_type type = lpl_gguf_kv_type(g, i), elem;
    uint32_t u;
    float f;
    size_t len;
    uint64_t n;
    const void *raw;
    lpl_status st;
    switch (type) {
    case LPL_GGUF_BOOL:
        if ((st = lpl_gguf_get_u32(g, key, &u, err)) == LPL_OK)
            st = lpl_gguf_set_bool(w, key, (int)u, err);
        return st;
    case LPL_GGUF_UINT8: case LPL_GGUF_UINT16: case LPL_GGUF_UINT32: case LPL_GGUF_INT8: case LPL_GGUF_INT16:
    case LPL_GGUF_INT32: case LPL_GGUF_UINT64: case LPL_GGUF_INT64:
        if ((st = lpl_gguf_get_u32(g, key, &u, err)) == LPL_OK)
            st = lpl_gguf_set_u32(w, key, u, err);
        return st;
    case LPL_GGUF_FLOAT32: case LPL_GGUF_FLOAT64:
        if ((st = lpl_gguf_get_f32(g, key, &f, err)) == LPL_OK)
            st = lpl_gguf_set_f32(w, key, f, err);
        return st;
    case LPL_GGUF_STRING:
        if ((st = lpl_gguf_get_str(g, key, &s, &len, err)) == LPL_OK)
            st = lpl_gguf_set_str(w, key, s, err);
        return st;
    default:
        break;
    }
    st = lpl_gguf_get_arr(g, key, &elem, &n, &raw, err);
    if (st != LPL_OK || n > INT32_MAX)
        return st != LPL_OK ? st : lpl_fail(err, LPL_ERR_FORMAT, "gguf: key '%s' is too long to copy", key);
    if (elem == LPL_GGUF_INT32 || elem == LPL_GGUF_FLOAT32) {
        void *copy = lpl_malloc((size_t)n * 4 + 4, "GGUF array", err);
        if (!copy)
            return LPL_ERR_NOMEM;
        memcpy(copy, raw, (size_t)n * 4);
        st = elem == LPL_GGUF_INT32 ? lpl_gguf_set_arr_i32(w, key, copy, n, err) : lpl_gguf_set_arr_f32(w, key, copy, n, err);
        free(copy);
        return st;
    }
    if (elem != LPL_GGUF_STRING)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "gguf: key '%s' is an array of a type this copy does not write", key);
    const char **v = lpl_malloc((size_t)n * sizeof *v + 1, "GGUF array", err);
    for (uint64_t k = 0; v && st == LPL_OK && k < n; k++)
        st = lpl_gguf_get_arr_str(g, key, k, &v[k], &len, err);
    if (v && st == LPL_OK)
        st = lpl_gguf_set_arr_str(w, key, v, n, err);
    free((void *)v);
    return v ? st : LPL_ERR_NOMEM;
}

lpl_status lpl_tokenizer_embed_gguf(const lpl_gguf *src, const lpl_tokenizer *t, lpl_gguf_writer *w, lpl_error *err)
{
    const lpl_gguf_tensor *te = lpl_gguf_find_tensor(src, "token_embd.weight");
    if (te && te->n_dims == 2 && te->ne[1] != t->n_vocab)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer has %d tokens but token_embd.weight has %lld rows", t->n_vocab,
                        (long long)te->ne[1]);
    lpl_status st = LPL_OK;
    for (int64_t i = 0; st == LPL_OK && i < lpl_gguf_n_kv(src); i++)
        if (strncmp(lpl_gguf_key(src, i), "tokenizer.ggml.", 15))
            st = copy_kv(src, i, w, err);
    if (st == LPL_OK)
        st = lpl_tokenizer_to_gguf(t, w, err);
    for (int64_t i = 0; st == LPL_OK && i < lpl_gguf_n_tensors(src); i++) {
        const lpl_gguf_tensor *x = lpl_gguf_tensor_at(src, i);
        st = lpl_gguf_add_tensor(w, x->name, x->type, x->n_dims, x->ne, x->data, err);
    }
    return st;
}
