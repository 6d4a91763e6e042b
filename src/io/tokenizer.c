/* BPE tokenizers: building one (GPT-2's files and GGUF here; tokenizer.json in
 * tokenizer_json.c), encoding, decoding and writing to GGUF.
 *
 * Tokens are kept twice: as their vocabulary strings (the byte-to-unicode form for
 * byte-level BPE, U+2581 for spaces in SentencePiece style; for accessors and GGUF
 * export) and as the raw bytes they stand for (for decoding). BPE works on token
 * ids: a pre-token starts as one id per byte (byte-level) or per character
 * (SentencePiece style), and pairs of ids are merged by rank until no ranked pair
 * is left. */
#include "lpl/io/tokenizer.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_build.h"
#include "unicode_classes.h"
#include "unicode_norm.h"
#include "lpl/core/files.h"
#include "lpl/core/utf8.h"

#define EOT_TEXT "<|endoftext|>"
#define SPM_SPACE "\xE2\x96\x81" /* U+2581, SentencePiece's mark for a space */

/* ---------------- hashing ---------------- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
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

int lpl_tok_find(const lpl_tokenizer *t, const char *s, size_t n)
{
    uint32_t e = t->vocab.slot[vocab_slot(t, s, n)];
    return e ? (int)e - 1 : -1;
}

static uint32_t pair_slot(const lpl_pair_table *p, uint64_t key)
{
    uint32_t mask = p->cap - 1, i = hash_pair(key) & mask;
    while (p->key[i] && p->key[i] != key + 1)
        i = (i + 1) & mask;
    return i;
}

static int pair_rank(const lpl_pair_table *p, int a, int b)
{
    if (!p->cap)
        return -1;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t i = pair_slot(p, key);
    return p->key[i] ? p->rank[i] : -1;
}

/* ---------------- UTF-8 and the byte-to-unicode mapping ---------------- */

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

/* Byte value of a SentencePiece byte token "<0xXX>" (upper-case hex), or -1. */
static int byte_token_value(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    return hi && lo && s[3] && s[4] ? (int)((hi - hex) * 16 + (lo - hex)) : -1;
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
    free(t->tok_type);
    free(t->vocab.slot);
    free(t->merges);
    free(t->merge_str);
    free(t->pairs.key);
    free(t->pairs.rank);
    free(t->added);
    free(t);
}

lpl_tokenizer *lpl_tok_new(lpl_tokenizer_kind kind, int n_vocab, lpl_error *err)
{
    lpl_tokenizer *t = lpl_calloc(1, sizeof *t, "tokenizer", err);
    if (!t)
        return NULL;
    t->kind = kind;
    t->pre = kind == LPL_TOKENIZER_SPM_BPE ? LPL_PRE_NONE : LPL_PRE_GPT2;
    t->n_vocab = n_vocab;
    t->bos = t->eos = t->unk = t->pad = -1;
    t->tok_str = lpl_calloc((size_t)n_vocab, sizeof *t->tok_str, "vocabulary", err);
    t->tok_bytes = t->tok_str ? lpl_calloc((size_t)n_vocab, sizeof *t->tok_bytes, "vocabulary", err) : NULL;
    t->tok_nbytes = t->tok_bytes ? lpl_calloc((size_t)n_vocab, sizeof *t->tok_nbytes, "vocabulary", err) : NULL;
    t->tok_type = t->tok_nbytes ? lpl_calloc((size_t)n_vocab, 1, "vocabulary", err) : NULL;
    t->vocab.cap = pow2_at_least((uint64_t)n_vocab * 2);
    t->vocab.slot = t->tok_type ? lpl_calloc(t->vocab.cap, sizeof *t->vocab.slot, "vocabulary index", err) : NULL;
    if (!t->vocab.slot) {
        lpl_tokenizer_free(t);
        return NULL;
    }
    return t;
}

lpl_status lpl_tok_set(lpl_tokenizer *t, int id, const char *s, size_t n, int type, lpl_error *err)
{
    if (id < 0 || id >= t->n_vocab)
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: id %d is outside 0..%d", id, t->n_vocab - 1);
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
    t->tok_type[id] = (uint8_t)type;
    t->vocab.slot[slot] = (uint32_t)id + 1;
    return LPL_OK;
}


/* Bytes of a byte-level token: each character of the byte-to-unicode alphabet stands
 * for its byte; any other character (only possible in added tokens) for its UTF-8. */
static size_t byte_level_bytes(const uint8_t *s, size_t n, const int16_t inverse[324], char *out)
{
    size_t size = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = lpl_utf8_next(s, n, i, &cp);
        if (cp < 324 && inverse[cp] >= 0) {
            out[size++] = (char)inverse[cp];
        } else {
            memcpy(out + size, s + i, (size_t)k);
            size += (size_t)k;
        }
        i += (size_t)k;
    }
    return size;
}

/* Bytes of a SentencePiece-style token: <0xXX> is byte XX, U+2581 a space. */
static size_t spm_bytes(const char *s, size_t n, char *out)
{
    int b = byte_token_value(s, n);
    if (b >= 0) {
        out[0] = (char)b;
        return 1;
    }
    size_t size = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(s + i, SPM_SPACE, 3)) {
            out[size++] = ' ';
            i += 3;
        } else {
            out[size++] = s[i++];
        }
    }
    return size;
}

static lpl_status token_bytes_of(lpl_tokenizer *t, int id, const int16_t inverse[324], lpl_error *err)
{
    const char *s = t->tok_str[id];
    size_t n = strlen(s), size;
    if (!lpl_utf8_validate(s, n, &size))
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: token %d is not valid UTF-8", id);
    char *out = lpl_malloc(n + 1, "token bytes", err);
    if (!out)
        return LPL_ERR_NOMEM;
    if (lpl_tok_is_added_type(t->tok_type[id])) {
        memcpy(out, s, n);
        size = n;
    } else if (t->kind == LPL_TOKENIZER_BYTE_BPE) {
        size = byte_level_bytes((const uint8_t *)s, n, inverse, out);
    } else {
        size = spm_bytes(s, n, out);
    }
    out[size] = '\0';
    t->tok_bytes[id] = out;
    t->tok_nbytes[id] = (int32_t)size;
    return LPL_OK;
}

/* Byte-level: the token of each byte, all 256 required. SentencePiece style: the
 * <0xXX> tokens, typed as bytes, when present. */
static lpl_status find_byte_tokens(lpl_tokenizer *t, const uint32_t map[256], lpl_error *err)
{
    for (int b = 0; b < 256; b++) {
        char s[8];
        if (t->kind == LPL_TOKENIZER_SPM_BPE) {
            snprintf(s, sizeof s, "<0x%02X>", b);
            t->byte_id[b] = lpl_tok_find(t, s, 6);
            if (t->byte_id[b] >= 0 && t->tok_type[t->byte_id[b]] == LPL_TOKEN_NORMAL)
                t->tok_type[t->byte_id[b]] = LPL_TOKEN_BYTE;
            continue;
        }
        int k = utf8_put(s, map[b]);
        t->byte_id[b] = lpl_tok_find(t, s, (size_t)k);
        if (t->byte_id[b] < 0)
            return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: the vocabulary has no token for byte 0x%02X "
                            "(not a byte-level BPE vocabulary)", b);
    }
    return LPL_OK;
}

/* Whether s has a U+2581 right after another character (a token that spans the
 * start of a word). */
static int mark_inside(const char *s)
{
    for (const char *p = strstr(s, SPM_SPACE); p; p = strstr(p + 3, SPM_SPACE))
        if (p > s && (p - s < 3 || memcmp(p - 3, SPM_SPACE, 3)))
            return 1;
    return 0;
}

lpl_status lpl_tok_finish_vocab(lpl_tokenizer *t, lpl_error *err)
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
        lpl_status st = token_bytes_of(t, id, inverse, err);
        if (st != LPL_OK)
            return st;
    }
    t->spm_words = t->kind == LPL_TOKENIZER_SPM_BPE;
    for (int id = 0; t->spm_words && id < t->n_vocab; id++)
        t->spm_words = !mark_inside(t->tok_str[id]);
    return find_byte_tokens(t, map, err);
}

lpl_status lpl_tok_add_merge(lpl_tokenizer *t, const char *a_s, size_t na, const char *b_s, size_t nb,
                             const char *where, long index, lpl_error *err)
{
    int a = lpl_tok_find(t, a_s, na), b = lpl_tok_find(t, b_s, nb);
    char *joined = lpl_malloc(na + nb + 2, "merge", err);
    if (!joined)
        return LPL_ERR_NOMEM;
    memcpy(joined, a_s, na);
    memcpy(joined + na, b_s, nb);
    int merged = lpl_tok_find(t, joined, na + nb);
    memcpy(joined, a_s, na);
    joined[na] = ' ';
    memcpy(joined + na + 1, b_s, nb);
    joined[na + nb + 1] = '\0';
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
    t->merges[r] = (lpl_merge_rule){a, b, merged};
    t->merge_str[r] = joined;
    return LPL_OK;
}

lpl_status lpl_tok_add_merge_line(lpl_tokenizer *t, const char *line, size_t n, const char *where, long index,
                                 lpl_error *err)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', (size_t)(line + n - sp - 1)))
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: %s %ld is not \"left right\": \"%.*s\"", where,
                        index, (int)(n > 80 ? 80 : n), line);
    return lpl_tok_add_merge(t, line, (size_t)(sp - line), sp + 1, (size_t)(line + n - sp - 1), where, index, err);
}

lpl_status lpl_tok_alloc_merges(lpl_tokenizer *t, size_t max_merges, lpl_error *err)
{
    t->merges = lpl_calloc(max_merges ? max_merges : 1, sizeof *t->merges, "merges", err);
    t->merge_str = t->merges ? lpl_calloc(max_merges ? max_merges : 1, sizeof *t->merge_str, "merges", err) : NULL;
    t->pairs.cap = pow2_at_least((uint64_t)max_merges * 2);
    t->pairs.key = t->merge_str ? lpl_calloc(t->pairs.cap, sizeof *t->pairs.key, "merge index", err) : NULL;
    t->pairs.rank = t->pairs.key ? lpl_calloc(t->pairs.cap, sizeof *t->pairs.rank, "merge index", err) : NULL;
    if (!t->pairs.rank) {
        t->pairs.cap = 0;
        return LPL_ERR_NOMEM;
    }
    return LPL_OK;
}

/* Grows every per-token array to n entries (the new ones zeroed) and the vocabulary
 * index to fit them. */
static lpl_status grow_vocab(lpl_tokenizer *t, int n, lpl_error *err)
{
    size_t old = (size_t)t->n_vocab, add = (size_t)(n - t->n_vocab);
    char **str = realloc(t->tok_str, (size_t)n * sizeof *str);
    if (str)
        t->tok_str = str;
    char **bytes = str ? realloc(t->tok_bytes, (size_t)n * sizeof *bytes) : NULL;
    if (bytes)
        t->tok_bytes = bytes;
    int32_t *nb = bytes ? realloc(t->tok_nbytes, (size_t)n * sizeof *nb) : NULL;
    if (nb)
        t->tok_nbytes = nb;
    uint8_t *type = nb ? realloc(t->tok_type, (size_t)n) : NULL;
    if (type)
        t->tok_type = type;
    uint32_t cap = pow2_at_least((uint64_t)n * 2);
    uint32_t *slot = type ? calloc(cap, sizeof *slot) : NULL;
    if (!slot)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: vocabulary of %d tokens", n);
    memset(t->tok_str + old, 0, add * sizeof *str);
    memset(t->tok_bytes + old, 0, add * sizeof *bytes);
    memset(t->tok_nbytes + old, 0, add * sizeof *nb);
    memset(t->tok_type + old, 0, add);
    free(t->vocab.slot);
    t->vocab.slot = slot;
    t->vocab.cap = cap;
    for (int id = 0; id < t->n_vocab; id++)
        t->vocab.slot[vocab_slot(t, t->tok_str[id], strlen(t->tok_str[id]))] = (uint32_t)id + 1;
    t->n_vocab = n;
    return LPL_OK;
}

lpl_status lpl_tokenizer_pad_vocab(lpl_tokenizer *t, int n, lpl_error *err)
{
    int first = t->n_vocab;
    if (n < t->n_vocab || n > INT32_MAX / 2)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: cannot pad a vocabulary of %d tokens to %d", t->n_vocab, n);
    if (n == t->n_vocab)
        return LPL_OK;
    lpl_status st = grow_vocab(t, n, err);
    for (int id = first; st == LPL_OK && id < n; id++) {
        char name[32];
        int len = snprintf(name, sizeof name, "[PAD%d]", id);
        st = lpl_tok_set(t, id, name, (size_t)len, LPL_TOKEN_UNUSED, err);
        if (st == LPL_OK) {
            t->tok_bytes[id] = malloc((size_t)len + 1);
            if (!t->tok_bytes[id])
                st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: padding tokens");
            else
                memcpy(t->tok_bytes[id], name, (size_t)len + 1), t->tok_nbytes[id] = len;
        }
    }
    return st;
}

lpl_status lpl_tok_add_added(lpl_tokenizer *t, int id, int lstrip, int rstrip, lpl_error *err)
{
    if (id < 0 || id >= t->n_vocab || !t->tok_str[id] || !t->tok_str[id][0])
        return lpl_fail(err, LPL_ERR_FORMAT, "tokenizer: added token id %d has no text", id);
    lpl_added *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: added tokens");
    t->added = a;
    /* longest first, so that the first match at a position is the longest */
    size_t len = strlen(t->tok_str[id]);
    int i = t->n_added++;
    while (i > 0 && strlen(t->tok_str[a[i - 1].id]) < len) {
        a[i] = a[i - 1];
        i--;
    }
    a[i] = (lpl_added){id, (uint8_t)!!lstrip, (uint8_t)!!rstrip};
    uint8_t c = (uint8_t)t->tok_str[id][0];
    t->added_first[c >> 3] |= (uint8_t)(1u << (c & 7));
    return LPL_OK;
}

/* ---------------- GPT-2's vocab.json and merges.txt ---------------- */

/* merges.txt: an optional "#version" first line, then one "left right" per line. */
static lpl_status load_merges_text(lpl_tokenizer *t, const char *text, size_t len, lpl_error *err)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    lpl_status st = lpl_tok_alloc_merges(t, lines, err);
    long lineno = 0;
    for (size_t i = 0; st == LPL_OK && i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - i;
        lineno++;
        if (n && text[i + n - 1] == '\r')
            n--;
        int skip = n == 0 || (lineno == 1 && n >= 8 && !memcmp(text + i, "#version", 8));
        if (!skip)
            st = lpl_tok_add_merge_line(t, text + i, n, "merges line", lineno, err);
        i = end + 1;
    }
    return st;
}

void lpl_tok_gpt2_specials(lpl_tokenizer *t)
{
    int eot = lpl_tok_find(t, EOT_TEXT, strlen(EOT_TEXT));
    if (eot >= 0)
        t->tok_type[eot] = LPL_TOKEN_CONTROL;
    t->bos = t->eos = eot;
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
    lpl_tokenizer *t = lpl_tok_new(LPL_TOKENIZER_BYTE_BPE, n, err);
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
            st = lpl_tok_set(t, (int)v, it->string, strlen(it->string), LPL_TOKEN_NORMAL, err);
    }
    if (st == LPL_OK) {
        lpl_tok_gpt2_specials(t);
        st = lpl_tok_finish_vocab(t, err);
    }
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

/* ---------------- accessors ---------------- */

int lpl_tokenizer_vocab_size(const lpl_tokenizer *t) { return t->n_vocab; }
int lpl_tokenizer_eot(const lpl_tokenizer *t) { return t->eos; }
int lpl_tokenizer_n_merges(const lpl_tokenizer *t) { return t->n_merges; }
lpl_tokenizer_kind lpl_tokenizer_kind_of(const lpl_tokenizer *t) { return t->kind; }
int lpl_tokenizer_bos(const lpl_tokenizer *t) { return t->bos; }
int lpl_tokenizer_eos(const lpl_tokenizer *t) { return t->eos; }
int lpl_tokenizer_unk(const lpl_tokenizer *t) { return t->unk; }
int lpl_tokenizer_add_bos(const lpl_tokenizer *t) { return t->add_bos && t->bos >= 0; }
int lpl_tokenizer_add_eos(const lpl_tokenizer *t) { return t->add_eos && t->eos >= 0; }
int lpl_tokenizer_n_added(const lpl_tokenizer *t) { return t->n_added; }

const char *lpl_tokenizer_model_name(const lpl_tokenizer *t)
{
    return t->kind == LPL_TOKENIZER_SPM_BPE ? "llama" : "gpt2";
}

const char *lpl_tokenizer_pre_name(const lpl_tokenizer *t)
{
    return lpl_pre_name(t->pre);
}

int lpl_tokenizer_token_type(const lpl_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab ? t->tok_type[id] : 0;
}

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
    return token ? lpl_tok_find(t, token, strlen(token)) : -1;
}

/* ---------------- pre-tokenisation ---------------- */

static int pretokenize_rule(lpl_pre_rule rule, const char *text, size_t len, size_t *ends)
{
    lpl_pre_scan sc;
    int k = 0;
    if (!lpl_utf8_validate(text, len, NULL) || len > (size_t)INT32_MAX)
        return -1;
    lpl_pre_begin(&sc, rule, (const uint8_t *)text, len);
    for (size_t i = 0; i < len; i = ends[k++])
        ends[k] = lpl_pre_next(&sc, i);
    return k;
}

int lpl_pretokenize(const char *text, size_t len, size_t *ends)
{
    return pretokenize_rule(LPL_PRE_GPT2, text, len, ends);
}

int lpl_tokenizer_pretokenize(const lpl_tokenizer *t, const char *text, size_t len, size_t *ends)
{
    return pretokenize_rule(t->pre, text, len, ends);
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

/* BPE over the n symbols already in b->id: appends the result to out (room for n).
 * As GPT-2's reference: take the lowest-ranked pair present and merge every
 * occurrence of it from left to right, then look again. The heap pops a rank's
 * occurrences in position order; pairs created meanwhile wait in `pending` until that
 * rank is done, so a pair ranked lower than its parts still waits its turn. (For
 * merges learnt by BPE a new pair always ranks after its parts, and this equals
 * Hugging Face's one-pair-at-a-time order.) */
static int bpe_merge(const lpl_tokenizer *t, bpe_scratch *b, int n, int32_t *out)
{
    int nh = 0, np = 0;
    for (int i = 0; i < n; i++) {
        b->next[i] = i + 1 < n ? i + 1 : -1;
        b->prev[i] = i - 1;
    }
    for (int i = 0; i + 1 < n; i++)
        push_pair(t, b, i, b->heap, &nh);
    while (nh) {
        heap_item it = heap_pop(b->heap, &nh);
        int p = it.pos, q = b->next[p];
        const lpl_merge_rule *m = &t->merges[it.rank];
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

/* ---------------- encoding ---------------- */

typedef struct {
    const lpl_tokenizer *t;
    bpe_scratch b;
    bpe_cache c;
    int32_t *ids;
    size_t n, cap;
    char *tmp; /* normalized text; a pre-token in vocabulary form */
    size_t tmp_cap;
    size_t *ends; /* token end offsets in the text, when asked for */
    size_t ends_cap;
    lpl_error *err;
} encoder;

static lpl_status reserve_ids(encoder *e, size_t more)
{
    return grow((void **)&e->ids, &e->cap, e->n + more, sizeof *e->ids)
               ? LPL_OK : lpl_fail(e->err, LPL_ERR_NOMEM, "out of memory: token ids");
}

static lpl_status reserve_tmp(encoder *e, size_t n)
{
    return grow((void **)&e->tmp, &e->tmp_cap, n, 1) ? LPL_OK : lpl_fail(e->err, LPL_ERR_NOMEM, "out of memory: text");
}

/* ignore_merges: the id of a byte-level pre-token that is a token as a whole, or -1. */
static int whole_piece_id(encoder *e, const uint8_t *s, int m)
{
    uint32_t map[256];
    size_t k = 0;
    if (reserve_tmp(e, (size_t)m * 2) != LPL_OK)
        return -1;
    byte_to_unicode(map);
    for (int i = 0; i < m; i++)
        k += (size_t)utf8_put(e->tmp + k, map[s[i]]);
    return lpl_tok_find(e->t, e->tmp, k);
}

/* One byte-level pre-token s[0..m). */
static lpl_status encode_piece(encoder *e, const uint8_t *s, int m)
{
    const lpl_tokenizer *t = e->t;
    lpl_status st = reserve_ids(e, (size_t)m);
    int whole = st == LPL_OK && t->ignore_merges && m > 1 ? whole_piece_id(e, s, m) : -1;
    uint32_t slot;
    if (st != LPL_OK)
        return st;
    if (m == 1 || whole >= 0) {
        e->ids[e->n++] = m == 1 ? t->byte_id[s[0]] : whole;
        return LPL_OK;
    }
    int hit = cache_find(&e->c, s, m, &slot);
    if (hit >= 0) {
        memcpy(e->ids + e->n, e->c.ids + e->c.id_off[hit], (size_t)e->c.id_len[hit] * sizeof *e->ids);
        e->n += (size_t)e->c.id_len[hit];
        return LPL_OK;
    }
    if ((st = scratch_reserve(&e->b, (size_t)m, e->err)) != LPL_OK)
        return st;
    for (int i = 0; i < m; i++)
        e->b.id[i] = t->byte_id[s[i]];
    int got = bpe_merge(t, &e->b, m, e->ids + e->n);
    if (!cache_add(&e->c, slot, s, m, e->ids + e->n, got))
        return lpl_fail(e->err, LPL_ERR_NOMEM, "out of memory: BPE cache");
    e->n += (size_t)got;
    return LPL_OK;
}

static lpl_status encode_byte_level(encoder *e, const uint8_t *s, size_t n)
{
    lpl_pre_scan sc;
    lpl_status st = LPL_OK;
    lpl_pre_begin(&sc, e->t->pre, s, n);
    for (size_t i = 0; st == LPL_OK && i < n;) {
        size_t end = lpl_pre_next(&sc, i);
        st = encode_piece(e, s + i, (int)(end - i));
        i = end;
    }
    return st;
}

/* SentencePiece style: whether this piece gets a leading U+2581. */
static int spm_prepends(const lpl_tokenizer *t, const uint8_t *s, size_t n, int at_start)
{
    int starts_marked = s[0] == ' ' || (n >= 3 && !memcmp(s, SPM_SPACE, 3));
    switch (t->prepend) {
    case LPL_PREPEND_ALWAYS: return 1;
    case LPL_PREPEND_META: return !starts_marked;
    case LPL_PREPEND_META_FIRST: return at_start && !starts_marked;
    case LPL_PREPEND_NONE: break;
    }
    return 0;
}

/* Initial symbols of SentencePiece-style text u[0..n): one per character in the
 * vocabulary, else its <0xXX> bytes, else the unknown token. Returns the count, or
 * -1 with err set. */
static int spm_symbols(encoder *e, const uint8_t *u, size_t n)
{
    const lpl_tokenizer *t = e->t;
    int k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = lpl_utf8_next(u, n, i, &cp), id = lpl_tok_find(t, (const char *)u + i, (size_t)len);
        int bytes_ok = t->byte_fallback;
        for (int j = 0; j < len && bytes_ok; j++)
            bytes_ok = t->byte_id[u[i + (size_t)j]] >= 0;
        if (id >= 0) {
            e->b.id[k++] = id;
        } else if (bytes_ok) {
            for (int j = 0; j < len; j++)
                e->b.id[k++] = t->byte_id[u[i + (size_t)j]];
        } else if (t->unk >= 0) {
            e->b.id[k++] = t->unk;
        } else {
            lpl_fail(e->err, LPL_ERR_FORMAT, "tokenizer: character U+%04X has no token, and the vocabulary has "
                     "neither byte fallback nor an unknown token", cp);
            return -1;
        }
        i += (size_t)len;
    }
    return k;
}

/* BPE of SentencePiece-style text u[0..n) (already with U+2581), through the cache
 * when cache is set. */
static lpl_status spm_piece(encoder *e, const uint8_t *u, size_t n, int cache)
{
    uint32_t slot = 0;
    int hit = cache && n < (size_t)INT32_MAX ? cache_find(&e->c, u, (int)n, &slot) : -1;
    if (hit >= 0) {
        memcpy(e->ids + e->n, e->c.ids + e->c.id_off[hit], (size_t)e->c.id_len[hit] * sizeof *e->ids);
        e->n += (size_t)e->c.id_len[hit];
        return LPL_OK;
    }
    lpl_status st = scratch_reserve(&e->b, n, e->err);
    if (st != LPL_OK)
        return st;
    int m = spm_symbols(e, u, n);
    if (m < 0)
        return e->err ? e->err->code : LPL_ERR_FORMAT;
    int got = bpe_merge(e->t, &e->b, m, e->ids + e->n);
    if (cache && !cache_add(&e->c, slot, u, (int)n, e->ids + e->n, got))
        return lpl_fail(e->err, LPL_ERR_NOMEM, "out of memory: BPE cache");
    e->n += (size_t)got;
    return LPL_OK;
}

static lpl_status encode_spm(encoder *e, const uint8_t *s, size_t n, int at_start)
{
    const lpl_tokenizer *t = e->t;
    lpl_status st = reserve_tmp(e, 3 * n + 3);
    size_t k = 0;
    if (st != LPL_OK)
        return st;
    if (spm_prepends(t, s, n, at_start)) {
        memcpy(e->tmp, SPM_SPACE, 3);
        k = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e->tmp + k, SPM_SPACE, 3);
            k += 3;
        } else {
            e->tmp[k++] = (char)s[i];
        }
    }
    int whole = t->ignore_merges ? lpl_tok_find(t, e->tmp, k) : -1;
    if ((st = reserve_ids(e, k)) != LPL_OK)
        return st;
    if (whole >= 0) {
        e->ids[e->n++] = whole;
        return LPL_OK;
    }
    if (!t->spm_words)
        return spm_piece(e, (const uint8_t *)e->tmp, k, 0);
    /* No token has a U+2581 after another character, so no merge crosses the start
     * of a word: BPE word by word gives the same ids, faster (words repeat) */
    const uint8_t *u = (const uint8_t *)e->tmp;
    size_t start = 0;
    int prev_mark = 0;
    for (size_t i = 0; st == LPL_OK && i < k;) {
        int mark = i + 3 <= k && !memcmp(u + i, SPM_SPACE, 3);
        if (mark && !prev_mark && i > start) {
            st = spm_piece(e, u + start, i - start, 1);
            start = i;
        }
        prev_mark = mark;
        uint32_t cp;
        i += (size_t)lpl_utf8_next(u, k, i, &cp);
    }
    return st == LPL_OK ? spm_piece(e, u + start, k - start, 1) : st;
}

/* Text between added tokens: normalizer, then the kind's pre-tokenisation and BPE. */
static lpl_status encode_section(encoder *e, const uint8_t *s, size_t n, int at_start)
{
    uint8_t *norm = NULL;
    size_t nn = 0;
    lpl_status st = LPL_OK;
    if (n == 0)
        return LPL_OK;
    if (e->t->nfc) {
        if (lpl_nfc(s, n, &norm, &nn) != 0)
            return lpl_fail(e->err, LPL_ERR_NOMEM, "out of memory: NFC");
        s = norm;
        n = nn;
    }
    if (n)
        st = e->t->kind == LPL_TOKENIZER_BYTE_BPE ? encode_byte_level(e, s, n) : encode_spm(e, s, n, at_start);
    free(norm);
    return st;
}

/* Start of the code point that ends before i (i > 0). */
static size_t prev_cp(const uint8_t *s, size_t i)
{
    do
        i--;
    while (i > 0 && (s[i] & 0xC0) == 0x80);
    return i;
}

static int space_at(const uint8_t *s, size_t n, size_t i, int *len)
{
    uint32_t cp;
    *len = lpl_utf8_next(s, n, i, &cp);
    return lpl_unicode_class(cp) == LPL_UC_SPACE;
}

/* The next added token at or after i: its index in t->added (and *at), or -1. The
 * longest token wins at a position (t->added is sorted longest first). */
static int next_added(const lpl_tokenizer *t, const uint8_t *s, size_t n, size_t i, size_t *at)
{
    for (; i < n; i++) {
        if (!(t->added_first[s[i] >> 3] >> (s[i] & 7) & 1))
            continue;
        for (int a = 0; a < t->n_added; a++) {
            size_t len = (size_t)t->tok_nbytes[t->added[a].id];
            if (len <= n - i && !memcmp(s + i, t->tok_bytes[t->added[a].id], len)) {
                *at = i;
                return a;
            }
        }
    }
    return -1;
}

/* Offsets of the ids from `from` on, which encode text [pos, end): each token's
 * decoded bytes follow the text, less the one space a prepended U+2581 adds. */
static lpl_status section_ends(encoder *e, size_t from, const uint8_t *s, size_t pos, size_t end)
{
    const lpl_tokenizer *t = e->t;
    if (!e->ends)
        return LPL_OK;
    if (!grow((void **)&e->ends, &e->ends_cap, e->n, sizeof *e->ends))
        return lpl_fail(e->err, LPL_ERR_NOMEM, "out of memory: token offsets");
    size_t at = pos, extra = t->kind == LPL_TOKENIZER_SPM_BPE && end > pos &&
                                    spm_prepends(t, s + pos, end - pos, pos == 0);
    for (size_t i = from; i < e->n; i++) {
        size_t nb = (size_t)t->tok_nbytes[e->ids[i]], take = nb < extra ? nb : extra;
        extra -= take;
        at += nb - take;
        e->ends[i] = at < end ? at : end;
    }
    if (e->n > from)
        e->ends[e->n - 1] = end;
    return LPL_OK;
}

static lpl_status push_id(encoder *e, int id, size_t end)
{
    lpl_status st = reserve_ids(e, 1);
    if (st == LPL_OK && e->ends && !grow((void **)&e->ends, &e->ends_cap, e->n + 1, sizeof *e->ends))
        st = lpl_fail(e->err, LPL_ERR_NOMEM, "out of memory: token offsets");
    if (st != LPL_OK)
        return st;
    if (e->ends)
        e->ends[e->n] = end;
    e->ids[e->n++] = id;
    return LPL_OK;
}

static lpl_status encode_all(encoder *e, const uint8_t *s, size_t len)
{
    const lpl_tokenizer *t = e->t;
    lpl_status st = LPL_OK;
    int k;
    for (size_t pos = 0; st == LPL_OK && pos < len;) {
        size_t at = len, end, from = e->n;
        int a = t->n_added ? next_added(t, s, len, pos, &at) : -1;
        end = at;
        if (a >= 0 && t->added[a].lstrip)
            while (end > pos && space_at(s, len, prev_cp(s, end), &k))
                end = prev_cp(s, end);
        st = encode_section(e, s + pos, end - pos, pos == 0);
        if (st == LPL_OK)
            st = section_ends(e, from, s, pos, end);
        if (a < 0 || st != LPL_OK)
            break;
        pos = at + (size_t)t->tok_nbytes[t->added[a].id];
        if ((st = push_id(e, t->added[a].id, pos)) != LPL_OK)
            break;
        if (t->added[a].rstrip)
            while (pos < len && space_at(s, len, pos, &k))
                pos += (size_t)k;
    }
    return st;
}

lpl_status lpl_tokenizer_encode_ex(const lpl_tokenizer *t, const char *text, size_t len, int flags,
                                   int **ids, int *n, size_t **ends, lpl_error *err)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t bad;
    *ids = NULL;
    *n = 0;
    if (ends)
        *ends = NULL;
    if (!text && len)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: no text");
    if (!lpl_utf8_validate(text, len, &bad))
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: text is not valid UTF-8 at byte %zu (0x%02X)",
                        bad, s[bad]);
    if (len > (size_t)INT32_MAX / 4)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: text of %zu bytes is too long", len);
    encoder e = {.t = t, .err = err};
    lpl_status st = cache_rehash(&e.c) ? reserve_ids(&e, len + 3) : lpl_fail(err, LPL_ERR_NOMEM, "out of memory: BPE cache");
    if (st == LPL_OK && ends && !grow((void **)&e.ends, &e.ends_cap, len + 3, sizeof *e.ends))
        st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: token offsets");
    if (st == LPL_OK && (flags & LPL_ENCODE_SPECIAL) && lpl_tokenizer_add_bos(t))
        st = push_id(&e, t->bos, 0);
    if (st == LPL_OK)
        st = encode_all(&e, s, len);
    if (st == LPL_OK && (flags & LPL_ENCODE_SPECIAL) && lpl_tokenizer_add_eos(t))
        st = push_id(&e, t->eos, len);
    free(e.b.id), free(e.b.next), free(e.b.prev), free(e.b.heap), free(e.b.pending);
    cache_free(&e.c);
    free(e.tmp);
    if (st == LPL_OK && e.n > (size_t)INT32_MAX)
        st = lpl_fail(err, LPL_ERR_INVALID, "tokenizer: text gives too many tokens");
    if (st != LPL_OK) {
        free(e.ids);
        free(e.ends);
        return st;
    }
    *ids = (int *)e.ids;
    *n = (int)e.n;
    if (ends)
        *ends = e.ends;
    return LPL_OK;
}

lpl_status lpl_tokenizer_encode(const lpl_tokenizer *t, const char *text, size_t len,
                                int **ids, int *n, lpl_error *err)
{
    return lpl_tokenizer_encode_ex(t, text, len, 0, ids, n, NULL, err);
}

/* ---------------- decoding ---------------- */

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
    /* the space the prepended U+2581 became (decoder Strip(" ", 1, 0) / Metaspace) */
    size_t skip = t->strip_space && k && out[0] == ' ' ? 1 : 0;
    memmove(out, out + skip, k - skip);
    k -= skip;
    out[k] = '\0';
    *text = out;
    if (len)
        *len = k;
    return LPL_OK;
}
