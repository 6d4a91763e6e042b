/* GPT-2 byte-level BPE: pre-tokenisation by GPT-2's rule (written out by hand, no
 * regex library), byte-to-unicode mapping, merges by rank, decode.
 *
 * Tokens are kept twice: as their vocabulary strings (the byte-to-unicode form, for
 * accessors and GGUF export) and as the raw bytes they stand for (for decoding).
 * BPE works on token ids: a pre-token starts as one id per byte and pairs of ids
 * are merged by rank until no ranked pair is left. */
#include "lpl/io/tokenizer.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode_classes.h"
#include "lpl/core/files.h"
#include "lpl/core/utf8.h"

#define EOT_TEXT "<|endoftext|>"

/* Open-addressing table from a byte string to an int (vocabulary lookup, BPE cache). */
typedef struct {
    uint32_t *slot;   /* entry index + 1, 0 = empty */
    uint32_t cap;     /* power of two */
} str_table;

/* Open-addressing table from an id pair to a merge rank. */
typedef struct {
    uint64_t *key;    /* (a << 32 | b) + 1, 0 = empty */
    int32_t *rank;
    uint32_t cap;
} pair_table;

typedef struct {
    int32_t a, b, merged;
} merge_rule;

struct lpl_tokenizer {
    int n_vocab;
    char **tok_str;            /* vocabulary strings (NUL-terminated) */
    char **tok_bytes;          /* decoded bytes of each token */
    int32_t *tok_nbytes;
    str_table vocab;           /* tok_str -> id */
    int n_merges;
    merge_rule *merges;        /* by rank */
    char **merge_str;          /* "a b" */
    pair_table pairs;
    int byte_id[256];          /* token of each single byte */
    int eot;
};

/* ---------------- hashing ---------------- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;  /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t hash_pair(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

/* Slot of the vocabulary string s[0..n) in t, or of the empty slot where it would go. */
static uint32_t vocab_slot(const lpl_tokenizer *t, const char *s, size_t n)
{
    uint32_t mask = t->vocab.cap - 1, i = hash_bytes(s, n) & mask;
    for (;;) {
        uint32_t e = t->vocab.slot[i];
        if (!e)
            return i;
        const char *k = t->tok_str[e - 1];
        if (strlen(k) == n && !memcmp(k, s, n))
            return i;
        i = (i + 1) & mask;
    }
}

static int vocab_find(const lpl_tokenizer *t, const char *s, size_t n)
{
    uint32_t e = t->vocab.slot[vocab_slot(t, s, n)];
    return e ? (int)e - 1 : -1;
}

static uint32_t pair_slot(const pair_table *p, uint64_t key)
{
    uint32_t mask = p->cap - 1, i = hash_pair(key) & mask;
    while (p->key[i] && p->key[i] != key + 1)
        i = (i + 1) & mask;
    return i;
}

static int pair_rank(const pair_table *p, int a, int b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t i = pair_slot(p, key);
    return p->key[i] ? p->rank[i] : -1;
}

/* ---------------- UTF-8 and the byte-to-unicode mapping ---------------- */

/* Decodes one code point at s[i] (i < n) of valid UTF-8; returns its length. */
static int utf8_next(const uint8_t *s, size_t n, size_t i, uint32_t *cp)
{
    uint8_t c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        *cp = (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
        return 3;
    }
    *cp = (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 |
          (uint32_t)(s[i + 2] & 0x3F) << 6 | (s[i + 3] & 0x3F);
    return 4;
}

/* GPT-2 shows every byte as a printable character: printable Latin-1 bytes stand for
 * themselves, the other 68 bytes take U+0100.. in byte order. */
static void byte_to_unicode(uint32_t map[256])
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        map[b] = printable ? (uint32_t)b : 256u + (uint32_t)n++;
    }
}

static int utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* ---------------- building a tokenizer ---------------- */

void lpl_tokenizer_free(lpl_tokenizer *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_vocab; i++) {
        if (t->tok_str)
            free(t->tok_str[i]);
        if (t->tok_bytes)
            free(t->tok_bytes[i]);
    }
    for (int i = 0; i < t->n_merges; i++)
        if (t->merge_str)
            free(t->merge_str[i]);
    free(t->tok_str);
    free(t->tok_bytes);
    free(t->tok_nbytes);
    free(t->vocab.slot);
    free(t->merges);
    free(t->merge_str);
    free(t->pairs.key);
    free(t->pairs.rank);
    free(t);
}

static lpl_tokenizer *tokenizer_new(int n_vocab, lpl_error *err)
{
    lpl_tokenizer *t = lpl_calloc(1, sizeof *t, "tokenizer", err);
    if (!t)
        return NULL;
    t->n_vocab = n_vocab;
    t->eot = -1;
    t->tok_str = lpl_calloc((size_t)n_vocab, sizeof *t->tok_str, "vocabulary", err);
    t->tok_bytes = t->tok_str ? lpl_calloc((size_t)n_vocab, sizeof *t->tok_bytes, "vocabulary", err) : NULL;
    t->tok_nbytes = t->tok_bytes ? lpl_calloc((size_t)n_vocab, sizeof *t->tok_nbytes, "vocabulary", err) : NULL;
    t->vocab.cap = pow2_at_least((uint64_t)n_vocab * 2);
    t->vocab.slot = t->tok_nbytes ? lpl_calloc(t->vocab.cap, sizeof *t->vocab.slot, "vocabulary index", err) : NULL;
    if (!t->vocab.slot) {
        lpl_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* Stores token id with vocabulary string s[0..n); refuses duplicates. */
static lpl_status set_token(lpl_tokenizer *t, int id, const char *s, size_t n, lpl_error *err)
{
    if (t->tok_str[id])
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: id %d is given twice", id);
    if (memchr(s, 0, n))
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: token %d contains a NUL character", id);
    uint32_t slot = vocab_slot(t, s, n);
    if (t->vocab.slot[slot])
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: token \"%.60s\" appears twice (ids %u and %d)",
                        t->tok_str[t->vocab.slot[slot] - 1], t->vocab.slot[slot] - 1, id);
    t->tok_str[id] = lpl_malloc(n + 1, "token", err);
    if (!t->tok_str[id])
        return LPL_ERR_NOMEM;
    memcpy(t->tok_str[id], s, n);
    t->tok_str[id][n] = '\0';
    t->vocab.slot[slot] = (uint32_t)id + 1;
    return LPL_OK;
}

/* Decoded bytes of every token; byte ids; <|endoftext|>. A character outside the
 * byte-to-unicode alphabet (only possible in added tokens) decodes to its own UTF-8. */
static lpl_status finish_vocab(lpl_tokenizer *t, lpl_error *err)
{
    uint32_t map[256];
    int16_t inverse[324];
    byte_to_unicode(map);
    memset(inverse, 0xFF, sizeof inverse);
    for (int b = 0; b < 256; b++)
        inverse[map[b]] = (int16_t)b;
    for (int id = 0; id < t->n_vocab; id++) {
        if (!t->tok_str[id])
            return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: no token has id %d (ids must be 0..%d)",
                            id, t->n_vocab - 1);
        const uint8_t *s = (const uint8_t *)t->tok_str[id];
        size_t n = strlen(t->tok_str[id]), size;
        if (!lpl_utf8_validate((const char *)s, n, &size))
            return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: token %d is not valid UTF-8", id);
        char *out = lpl_malloc(n + 1, "token bytes", err);
        if (!out)
            return LPL_ERR_NOMEM;
        size = 0;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = utf8_next(s, n, i, &cp);
            if (cp < 324 && inverse[cp] >= 0) {
                out[size++] = (char)inverse[cp];
            } else {
                memcpy(out + size, s + i, (size_t)k);
                size += (size_t)k;
            }
            i += (size_t)k;
        }
        out[size] = '\0';
        t->tok_bytes[id] = out;
        t->tok_nbytes[id] = (int32_t)size;
    }
    for (int b = 0; b < 256; b++) {
        char s[4];
        int k = utf8_put(s, map[b]);
        t->byte_id[b] = vocab_find(t, s, (size_t)k);
        if (t->byte_id[b] < 0)
            return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: the vocabulary has no token for byte 0x%02X "
                            "(not a byte-level BPE vocabulary)", b);
    }
    t->eot = vocab_find(t, EOT_TEXT, strlen(EOT_TEXT));
    return LPL_OK;
}

/* Adds merge rule "a b" as the next rank. where names its source in messages. */
static lpl_status add_merge(lpl_tokenizer *t, const char *line, size_t n, const char *where,
                            long index, lpl_error *err)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', (size_t)(line + n - sp - 1)))
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: %s %ld is not \"left right\": \"%.*s\"", where,
                        index, (int)(n > 80 ? 80 : n), line);
    size_t na = (size_t)(sp - line), nb = n - na - 1;
    int a = vocab_find(t, line, na), b = vocab_find(t, sp + 1, nb);
    char *joined = lpl_malloc(n + 1, "merge", err);
    if (!joined)
        return LPL_ERR_NOMEM;
    memcpy(joined, line, na);
    memcpy(joined + na, sp + 1, nb);
    int merged = vocab_find(t, joined, na + nb);
    memcpy(joined, line, n);
    joined[n] = '\0';
    if (a < 0 || b < 0 || merged < 0) {
        lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: %s %ld (\"%.80s\"): %s is not in the vocabulary", where,
                 index, joined, a < 0 ? "the left part" : b < 0 ? "the right part" : "the merged token");
        free(joined);
        return LPL_ERR_FORMAT;
    }
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t slot = pair_slot(&t->pairs, key);
    if (t->pairs.key[slot]) {
        /* a repeated rule can never fire again: the first (lower) rank wins */
        free(joined);
        return LPL_OK;
    }
    int r = t->n_merges++;
    t->pairs.key[slot] = key + 1;
    t->pairs.rank[slot] = r;
    t->merges[r] = (merge_rule){a, b, merged};
    t->merge_str[r] = joined;
    return LPL_OK;
}

static lpl_status alloc_merges(lpl_tokenizer *t, size_t max_merges, lpl_error *err)
{
    t->merges = lpl_calloc(max_merges, sizeof *t->merges, "merges", err);
    t->merge_str = t->merges ? lpl_calloc(max_merges, sizeof *t->merge_str, "merges", err) : NULL;
    t->pairs.cap = pow2_at_least((uint64_t)max_merges * 2);
    t->pairs.key = t->merge_str ? lpl_calloc(t->pairs.cap, sizeof *t->pairs.key, "merge index", err) : NULL;
    t->pairs.rank = t->pairs.key ? lpl_calloc(t->pairs.cap, sizeof *t->pairs.rank, "merge index", err) : NULL;
    return t->pairs.rank ? LPL_OK : LPL_ERR_NOMEM;
}

/* merges.txt: an optional "#version" first line, then one "left right" per line. */
static lpl_status load_merges_text(lpl_tokenizer *t, const char *text, size_t len, lpl_error *err)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    lpl_status st = alloc_merges(t, lines, err);
    long lineno = 0;
    for (size_t i = 0; st == LPL_OK && i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - i;
        lineno++;
        if (n && text[i + n - 1] == '\r')
            n--;
        int skip = n == 0 || (lineno == 1 && n >= 8 && !memcmp(text + i, "#version", 8));
        if (!skip)
            st = add_merge(t, text + i, n, "merges line", lineno, err);
        i = end + 1;
    }
    return st;
}

static lpl_status load_vocab_json(lpl_tokenizer **out, const char *json, size_t len, lpl_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    lpl_status st = LPL_OK;
    *out = NULL;
    if (!root)
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: vocabulary JSON is malformed at byte %ld",
                        end ? (long)(end - json) : -1L);
    if (!cJSON_IsObject(root)) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: vocabulary JSON is not an object of token: id");
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    if (n < 256) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: vocabulary has %d tokens (fewer than the 256 bytes)", n);
        goto done;
    }
    lpl_tokenizer *t = tokenizer_new(n, err);
    if (!t) {
        st = LPL_ERR_NOMEM;
        goto done;
    }
    for (cJSON *it = root->child; it && st == LPL_OK; it = it->next) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (v < 0 || v >= n || v != (double)(int)v)
            st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: vocabulary entry \"%.60s\" has no id in 0..%d",
                          it->string, n - 1);
        else
            st = set_token(t, (int)v, it->string, strlen(it->string), err);
    }
    if (st == LPL_OK)
        st = finish_vocab(t, err);
    if (st == LPL_OK)
        *out = t;
    else
        lpl_tokenizer_free(t);
done:
    cJSON_Delete(root);
    return st;
}

lpl_tokenizer *lpl_tokenizer_from_memory(const char *vocab_json, size_t vocab_len,
                                         const char *merges, size_t merges_len, lpl_error *err)
{
    lpl_tokenizer *t = NULL;
    if (!vocab_json || !merges) {
        lpl_fail(err, LPL_ERR_INVALID, "tokenizer: vocabulary or merges missing");
        return NULL;
    }
    if (load_vocab_json(&t, vocab_json, vocab_len, err) != LPL_OK)
        return NULL;
    if (load_merges_text(t, merges, merges_len, err) != LPL_OK) {
        lpl_tokenizer_free(t);
        return NULL;
    }
    return t;
}

lpl_tokenizer *lpl_tokenizer_from_files(const char *vocab_path, const char *merges_path, lpl_error *err)
{
    char *v = NULL, *m = NULL;
    size_t nv = 0, nm = 0;
    lpl_tokenizer *t = NULL;
    if (lpl_read_file(vocab_path, &v, &nv, err) == LPL_OK && lpl_read_file(merges_path, &m, &nm, err) == LPL_OK) {
        t = lpl_tokenizer_from_memory(v, nv, m, nm, err);
        if (!t && err) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            lpl_fail(err, err->code, "%s (%s, %s)", msg, vocab_path, merges_path);
        }
    }
    free(v);
    free(m);
    return t;
}

lpl_tokenizer *lpl_tokenizer_from_gguf(const lpl_gguf *g, lpl_error *err)
{
    const char *model = NULL, *s;
    size_t len;
    uint64_t n_tok = 0, n_merges = 0;
    lpl_gguf_type type;
    const void *raw;
    if (lpl_gguf_find_key(g, "tokenizer.ggml.model") >= 0) {
        if (lpl_gguf_get_str(g, "tokenizer.ggml.model", &model, &len, err) != LPL_OK)
            return NULL;
        if (len != 4 || memcmp(model, "gpt2", 4)) {
            lpl_fail(err, LPL_ERR_UNSUPPORTED, "tokenizer: GGUF tokenizer.ggml.model is \"%.*s\", not \"gpt2\"",
                     (int)(len > 40 ? 40 : len), model);
            return NULL;
        }
    }
    if (lpl_gguf_get_arr(g, "tokenizer.ggml.tokens", &type, &n_tok, &raw, err) != LPL_OK)
        return NULL;
    if (type != LPL_GGUF_STRING || n_tok < 256 || n_tok > INT32_MAX / 2) {
        lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF tokenizer.ggml.tokens must be 256.. strings");
        return NULL;
    }
    if (lpl_gguf_get_arr(g, "tokenizer.ggml.merges", &type, &n_merges, &raw, err) != LPL_OK)
        return NULL;
    if (type != LPL_GGUF_STRING || n_merges > INT32_MAX / 2) {
        lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF tokenizer.ggml.merges must be strings");
        return NULL;
    }
    lpl_tokenizer *t = tokenizer_new((int)n_tok, err);
    lpl_status st = t ? LPL_OK : LPL_ERR_NOMEM;
    for (uint64_t i = 0; st == LPL_OK && i < n_tok; i++) {
        st = lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &s, &len, err);
        if (st == LPL_OK)
            st = set_token(t, (int)i, s, len, err);
    }
    if (st == LPL_OK)
        st = finish_vocab(t, err);
    if (st == LPL_OK)
        st = alloc_merges(t, (size_t)n_merges, err);
    for (uint64_t i = 0; st == LPL_OK && i < n_merges; i++) {
        st = lpl_gguf_get_arr_str(g, "tokenizer.ggml.merges", i, &s, &len, err);
        if (st == LPL_OK)
            st = add_merge(t, s, len, "GGUF merge", (long)i, err);
    }
    if (st == LPL_OK && lpl_gguf_find_key(g, "tokenizer.ggml.eos_token_id") >= 0) {
        uint32_t eos;
        st = lpl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos, err);
        if (st == LPL_OK && eos >= n_tok)
            st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: GGUF eos_token_id %u is past the vocabulary (%d)",
                          eos, t->n_vocab);
        if (st == LPL_OK)
            t->eot = (int)eos;
    }
    if (st != LPL_OK) {
        lpl_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* ---------------- accessors ---------------- */

int lpl_tokenizer_vocab_size(const lpl_tokenizer *t) { return t->n_vocab; }
int lpl_tokenizer_eot(const lpl_tokenizer *t) { return t->eot; }
int lpl_tokenizer_n_merges(const lpl_tokenizer *t) { return t->n_merges; }

const char *lpl_tokenizer_token(const lpl_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab ? t->tok_str[id] : NULL;
}

const char *lpl_tokenizer_merge(const lpl_tokenizer *t, int i)
{
    return i >= 0 && i < t->n_merges ? t->merge_str[i] : NULL;
}

int lpl_tokenizer_token_bytes(const lpl_tokenizer *t, int id, const char **bytes)
{
    if (id < 0 || id >= t->n_vocab)
        return -1;
    if (bytes)
        *bytes = t->tok_bytes[id];
    return t->tok_nbytes[id];
}

int lpl_tokenizer_token_id(const lpl_tokenizer *t, const char *token)
{
    return token ? vocab_find(t, token, strlen(token)) : -1;
}

/* ---------------- pre-tokenisation ---------------- */

/* Class of the code point at s[i] (valid UTF-8, i < n), and its length. */
static int class_at(const uint8_t *s, size_t n, size_t i, int *len)
{
    static const uint8_t ascii[128] = {
        /* \t \n \v \f \r are whitespace; letters and digits; everything else "other" */
        ['\t'] = LPL_UC_SPACE, ['\n'] = LPL_UC_SPACE, ['\v'] = LPL_UC_SPACE, ['\f'] = LPL_UC_SPACE,
        ['\r'] = LPL_UC_SPACE, [' '] = LPL_UC_SPACE,
        ['0'] = 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        ['A'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ['a'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    };
    if (s[i] < 0x80) {
        *len = 1;
        return ascii[s[i]];
    }
    uint32_t cp;
    *len = utf8_next(s, n, i, &cp);
    return lpl_unicode_class(cp);
}

/* End of the run of code points of class cls starting at i. */
static size_t run_end(const uint8_t *s, size_t n, size_t i, int cls)
{
    int k;
    while (i < n && class_at(s, n, i, &k) == cls)
        i += (size_t)k;
    return i;
}

/* End of the "other" run ([^\s\p{L}\p{N}]+) starting at i. */
static size_t other_end(const uint8_t *s, size_t n, size_t i)
{
    return run_end(s, n, i, LPL_UC_OTHER);
}

static size_t contraction_len(const uint8_t *s, size_t n, size_t i)
{
    if (s[i] != '\'' || i + 1 >= n)
        return 0;
    uint8_t c = s[i + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd')
        return 2;
    if (i + 2 < n && ((c == 'r' && s[i + 2] == 'e') || (c == 'v' && s[i + 2] == 'e') ||
                      (c == 'l' && s[i + 2] == 'l')))
        return 3;
    return 0;
}

/* End of the pre-token starting at i (< n) under GPT-2's rule
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * tried alternative by alternative, as a backtracking regex engine would. */
static size_t pretoken_end(const uint8_t *s, size_t n, size_t i)
{
    size_t c = contraction_len(s, n, i);
    if (c)
        return i + c;
    int k, cls = class_at(s, n, i, &k);
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n) {
        int k2, next = class_at(s, n, i + 1, &k2);
        if (next != LPL_UC_SPACE) {  /* " ?" takes the space in front of a letter/number/other run */
            j = i + 1;
            cls = next;
        }
    }
    if (cls == LPL_UC_LETTER || cls == LPL_UC_NUMBER)
        return run_end(s, n, j, cls);
    if (cls == LPL_UC_OTHER)
        return other_end(s, n, j);
    /* \s+(?!\S): the whole run if it ends the text or, backing off one code point, the
     * run minus its last whitespace; a lone whitespace before non-space falls to \s+. */
    size_t last = i, e = i;
    while (e < n && class_at(s, n, e, &k) == LPL_UC_SPACE) {
        last = e;
        e += (size_t)k;
    }
    if (e == n || last == i)
        return e;
    return last;
}

int lpl_pretokenize(const char *text, size_t len, size_t *ends)
{
    const uint8_t *s = (const uint8_t *)text;
    int k = 0;
    if (!lpl_utf8_validate(text, len, NULL) || len > (size_t)INT32_MAX)
        return -1;
    for (size_t i = 0; i < len; i = ends[k++])
        ends[k] = pretoken_end(s, len, i);
    return k;
}

/* ---------------- BPE ---------------- */

typedef struct {
    int32_t rank, pos; /* merge rank of the pair whose left symbol is pos */
} heap_item;

typedef struct {
    int32_t *id, *next, *prev;   /* symbols as a linked list over positions */
    heap_item *heap, *pending;
    size_t cap;
} bpe_scratch;

static int heap_less(heap_item a, heap_item b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_item *h, int *n, heap_item x)
{
    int i = (*n)++;
    while (i > 0 && heap_less(x, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static heap_item heap_pop(heap_item *h, int *n)
{
    heap_item top = h[0], x = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c]))
            c++;
        if (!heap_less(h[c], x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    return top;
}

static lpl_status scratch_reserve(bpe_scratch *b, size_t n, lpl_error *err)
{
    if (n <= b->cap)
        return LPL_OK;
    size_t cap = n < 64 ? 64 : n;
    free(b->id), free(b->next), free(b->prev), free(b->heap), free(b->pending);
    b->id = lpl_malloc(cap * sizeof *b->id, "BPE buffers", err);
    b->next = lpl_malloc(cap * sizeof *b->next, "BPE buffers", err);
    b->prev = lpl_malloc(cap * sizeof *b->prev, "BPE buffers", err);
    /* The heap holds the n-1 initial pairs plus up to 2 per merge (stale entries are
     * only dropped when popped): at most 3n. Found by tests/fuzz (heap overflow). */
    b->heap = lpl_calloc(3 * cap, sizeof *b->heap, "BPE buffers", err);
    b->pending = lpl_calloc(3 * cap, sizeof *b->pending, "BPE buffers", err);
    b->cap = (b->id && b->next && b->prev && b->heap && b->pending) ? cap : 0;
    return b->cap ? LPL_OK : LPL_ERR_NOMEM;
}

static void push_pair(const lpl_tokenizer *t, bpe_scratch *b, int pos, heap_item *to, int *n)
{
    if (pos < 0 || b->next[pos] < 0)
        return;
    int r = pair_rank(&t->pairs, b->id[pos], b->id[b->next[pos]]);
    if (r >= 0)
        heap_push(to, n, (heap_item){r, pos});
}

/* BPE of one pre-token's bytes s[0..n): appends its ids to out (room for n).
 * As GPT-2's reference: take the lowest-ranked pair present and merge every
 * occurrence of it from left to right, then look again. The heap pops a rank's
 * occurrences in position order; pairs created meanwhile wait in `pending` until that
 * rank is done, so a pair ranked lower than its parts still waits its turn. */
static int bpe_word(const lpl_tokenizer *t, bpe_scratch *b, const uint8_t *s, int n, int32_t *out)
{
    int nh = 0, np = 0;
    for (int i = 0; i < n; i++) {
        b->id[i] = t->byte_id[s[i]];
        b->next[i] = i + 1 < n ? i + 1 : -1;
        b->prev[i] = i - 1;
    }
    for (int i = 0; i + 1 < n; i++)
        push_pair(t, b, i, b->heap, &nh);
    while (nh) {
        heap_item it = heap_pop(b->heap, &nh);
        int p = it.pos, q = b->next[p];
        const merge_rule *m = &t->merges[it.rank];
        if (b->id[p] == m->a && q >= 0 && b->id[q] == m->b) {  /* still there? */
            b->id[p] = m->merged;
            b->next[p] = b->next[q];
            if (b->next[q] >= 0)
                b->prev[b->next[q]] = p;
            b->id[q] = -1;
            push_pair(t, b, b->prev[p], b->pending, &np);
            push_pair(t, b, p, b->pending, &np);
        }
        if (!nh || b->heap[0].rank != it.rank) {
            while (np)
                heap_push(b->heap, &nh, b->pending[--np]);
        }
    }
    int k = 0;
    for (int i = 0; i >= 0; i = b->next[i])
        out[k++] = b->id[i];
    return k;
}

/* Cache of pre-token bytes -> ids for one encode call (text repeats words a lot). */
typedef struct {
    uint32_t *slot;            /* entry + 1 */
    uint32_t cap, n;
    size_t *key_off;           /* per entry: key bytes in keys, ids in ids */
    int32_t *key_len, *id_off, *id_len;
    uint8_t *keys;
    int32_t *ids;
    size_t keys_n, keys_cap, ids_n, ids_cap, ent_cap;
} bpe_cache;

static void cache_free(bpe_cache *c)
{
    free(c->slot), free(c->key_off), free(c->key_len), free(c->id_off), free(c->id_len);
    free(c->keys), free(c->ids);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return 0;
    *p = q;
    *cap = c;
    return 1;
}

/* Entry of key in the cache, or -1; *slot_out receives the probe slot. */
static int cache_find(const bpe_cache *c, const uint8_t *key, int n, uint32_t *slot_out)
{
    uint32_t mask = c->cap - 1, i = hash_bytes((const char *)key, (size_t)n) & mask;
    for (;;) {
        uint32_t e = c->slot[i];
        if (!e) {
            *slot_out = i;
            return -1;
        }
        if (c->key_len[e - 1] == n && !memcmp(c->keys + c->key_off[e - 1], key, (size_t)n))
            return (int)e - 1;
        i = (i + 1) & mask;
    }
}

static int cache_rehash(bpe_cache *c)
{
    uint32_t cap = c->cap ? c->cap * 2 : 4096;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return 0;
    free(c->slot);
    c->slot = slot;
    c->cap = cap;
    for (uint32_t e = 0; e < c->n; e++) {
        uint32_t s;
        cache_find(c, c->keys + c->key_off[e], c->key_len[e], &s);
        c->slot[s] = e + 1;
    }
    return 1;
}

static int cache_add(bpe_cache *c, uint32_t slot, const uint8_t *key, int n, const int32_t *ids, int k)
{
    size_t ec = c->ent_cap, e1 = ec, e2 = ec, e3 = ec, e4 = ec;
    if (!grow((void **)&c->key_off, &e1, c->n + 1, sizeof *c->key_off) ||
        !grow((void **)&c->key_len, &e2, c->n + 1, sizeof *c->key_len) ||
        !grow((void **)&c->id_off, &e3, c->n + 1, sizeof *c->id_off) ||
        !grow((void **)&c->id_len, &e4, c->n + 1, sizeof *c->id_len) ||
        !grow((void **)&c->keys, &c->keys_cap, c->keys_n + (size_t)n, 1) ||
        !grow((void **)&c->ids, &c->ids_cap, c->ids_n + (size_t)k, sizeof *c->ids))
        return 0;
    c->ent_cap = e1;
    memcpy(c->keys + c->keys_n, key, (size_t)n);
    memcpy(c->ids + c->ids_n, ids, (size_t)k * sizeof *ids);
    c->key_off[c->n] = c->keys_n;
    c->key_len[c->n] = n;
    c->id_off[c->n] = (int32_t)c->ids_n;
    c->id_len[c->n] = k;
    c->keys_n += (size_t)n;
    c->ids_n += (size_t)k;
    c->slot[slot] = ++c->n;
    if (c->n * 2 > c->cap)
        return cache_rehash(c);
    return 1;
}

lpl_status lpl_tokenizer_encode(const lpl_tokenizer *t, const char *text, size_t len,
                                int **ids, int *n, lpl_error *err)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t bad;
    *ids = NULL;
    *n = 0;
    if (!text && len)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: no text");
    if (!lpl_utf8_validate(text, len, &bad))
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: text is not valid UTF-8 at byte %zu (0x%02X)",
                        bad, s[bad]);
    if (len > (size_t)INT32_MAX / 2)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: text of %zu bytes is too long", len);
    /* every byte yields at most one id */
    int32_t *out = lpl_malloc((len ? len : 1) * sizeof *out, "token ids", err);
    bpe_scratch b = {0};
    bpe_cache c = {0};
    lpl_status st = out && cache_rehash(&c) ? LPL_OK : lpl_fail(err, LPL_ERR_NOMEM, "out of memory: BPE cache");
    size_t k = 0;
    for (size_t i = 0; st == LPL_OK && i < len;) {
        size_t e = pretoken_end(s, len, i);
        int m = (int)(e - i);
        if (m == 1) {
            out[k++] = t->byte_id[s[i]];
        } else {
            uint32_t slot;
            int hit = cache_find(&c, s + i, m, &slot);
            if (hit >= 0) {
                memcpy(out + k, c.ids + c.id_off[hit], (size_t)c.id_len[hit] * sizeof *out);
                k += (size_t)c.id_len[hit];
            } else if ((st = scratch_reserve(&b, (size_t)m, err)) == LPL_OK) {
                int got = bpe_word(t, &b, s + i, m, out + k);
                if (!cache_add(&c, slot, s + i, m, out + k, got))
                    st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: BPE cache");
                k += (size_t)got;
            }
        }
        i = e;
    }
    free(b.id), free(b.next), free(b.prev), free(b.heap), free(b.pending);
    cache_free(&c);
    if (st != LPL_OK) {
        free(out);
        return st;
    }
    *ids = (int *)out;
    *n = (int)k;
    return LPL_OK;
}

lpl_status lpl_tokenizer_decode(const lpl_tokenizer *t, const int *ids, int n,
                                char **text, size_t *len, lpl_error *err)
{
    size_t total = 0;
    *text = NULL;
    if (len)
        *len = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: id %d (position %d) is outside the vocabulary "
                            "(0..%d)", ids[i], i, t->n_vocab - 1);
        total += (size_t)t->tok_nbytes[ids[i]];
    }
    char *out = lpl_malloc(total + 1, "decoded text", err);
    if (!out)
        return LPL_ERR_NOMEM;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(out + k, t->tok_bytes[ids[i]], (size_t)t->tok_nbytes[ids[i]]);
        k += (size_t)t->tok_nbytes[ids[i]];
    }
    out[k] = '\0';
    *text = out;
    if (len)
        *len = k;
    return LPL_OK;
}
