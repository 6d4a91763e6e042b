/* tokenizer.json reader: checks the document's shape field by field, recognises the
 * normalizer / pre-tokenizer / decoder combinations of the models the lab supports,
 * and builds the tokenizer through tokenizer_build.h. */
#include "lpl/io/tokenizer_json.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer_build.h"
#include "lpl/core/files.h"

#define TJ "tokenizer.json: "
#define SPM_SPACE "\xE2\x96\x81"
#define MAX_VOCAB (1 << 24)

/* The Split regexes of the byte-level tokenizers the lab knows, as tokenizer.json has them. */
static const char QWEN2_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *type_of(const cJSON *o)
{
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : "";
}

static int is_type(const cJSON *o, const char *type)
{
    return cJSON_IsObject(o) && !strcmp(type_of(o), type);
}

/* o[key] as a bool; def when absent or null; -1 when of another type. */
static int get_bool(const cJSON *o, const char *key, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return def;
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* o[key] as a string, or NULL. */
static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int absent_or_null(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0]);
}

/* A whole non-negative number below limit, or -1. */
static int as_id(const cJSON *v, int limit)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    return d >= 0 && d < limit && d == (double)(int)d ? (int)d : -1;
}

/* ---------------- which tokenizer: the kind and its text rules ---------------- */

/* ByteLevel pre-tokenizer: use_regex must be as the position wants it. */
static lpl_status check_byte_level(const cJSON *p, int want_regex, lpl_error *err)
{
    if (get_bool(p, "add_prefix_space", 0) != 0)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer ByteLevel add_prefix_space must be false");
    if (get_bool(p, "use_regex", 1) != want_regex)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer ByteLevel use_regex must be %s here",
                        want_regex ? "true" : "false");
    return LPL_OK;
}

static lpl_status split_rule(const cJSON *split, lpl_pre_rule *rule, lpl_error *err)
{
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(split, "pattern");
    const char *re = get_str(pat, "Regex"), *behavior = get_str(split, "behavior");
    if (!re)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer Split.pattern must be {\"Regex\": ...}");
    if (!behavior || strcmp(behavior, "Isolated") || get_bool(split, "invert", 0) != 0)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer Split must have behavior \"Isolated\" and invert false");
    if (!strcmp(re, QWEN2_RE))
        *rule = LPL_PRE_QWEN2;
    else if (!strcmp(re, LLAMA3_RE))
        *rule = LPL_PRE_LLAMA3;
    else if (!strcmp(re, GPT2_RE))
        *rule = LPL_PRE_GPT2;
    else
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer Split regex \"%.120s\" is not one this lab knows "
                        "(GPT-2's, Qwen2's or Llama 3's)", re);
    return LPL_OK;
}

static lpl_status metaspace(lpl_tokenizer *t, const cJSON *p, lpl_error *err)
{
    const char *rep = get_str(p, "replacement"), *scheme = get_str(p, "prepend_scheme");
    if (!rep || strcmp(rep, SPM_SPACE))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer Metaspace.replacement must be \"\xE2\x96\x81\"");
    if (get_bool(p, "split", 1) != 0)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer Metaspace.split must be false (words split on "
                        "\xE2\x96\x81 are not supported)");
    if (!scheme)
        t->prepend = get_bool(p, "add_prefix_space", 1) == 1 ? LPL_PREPEND_META : LPL_PREPEND_NONE;
    else if (!strcmp(scheme, "always"))
        t->prepend = LPL_PREPEND_META;
    else if (!strcmp(scheme, "first"))
        t->prepend = LPL_PREPEND_META_FIRST;
    else if (!strcmp(scheme, "never"))
        t->prepend = LPL_PREPEND_NONE;
    else
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer Metaspace.prepend_scheme \"%.40s\" is unknown", scheme);
    return LPL_OK;
}

static lpl_status pre_tokenizer(lpl_tokenizer *t, const cJSON *p, lpl_error *err)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
    if (t->kind == LPL_TOKENIZER_SPM_BPE)
        return !p || cJSON_IsNull(p) ? LPL_OK : metaspace(t, p, err);
    if (is_type(p, "ByteLevel")) {
        t->pre = LPL_PRE_GPT2;
        return check_byte_level(p, 1, err);
    }
    if (is_type(p, "Sequence") && cJSON_GetArraySize(list) == 2) {
        const cJSON *a = cJSON_GetArrayItem(list, 0), *b = cJSON_GetArrayItem(list, 1);
        if (is_type(a, "Digits") && is_type(b, "ByteLevel")) {
            if (get_bool(a, "individual_digits", 0) != 1)
                return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer Digits.individual_digits must be true");
            t->pre = LPL_PRE_SMOLLM;
            return check_byte_level(b, 1, err);
        }
        if (is_type(a, "Split") && is_type(b, "ByteLevel")) {
            lpl_status st = split_rule(a, &t->pre, err);
            return st != LPL_OK ? st : check_byte_level(b, 0, err);
        }
    }
    return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer of type \"%.40s\" is not one this lab knows (ByteLevel; "
                    "Sequence of Digits + ByteLevel or Split + ByteLevel; Metaspace)", type_of(p));
}

/* Prepend("▁") + Replace(" " -> "▁"), in either order. */
static lpl_status spm_normalizer(lpl_tokenizer *t, const cJSON *list, lpl_error *err)
{
    int replace = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(it, "pattern");
        const char *prep = get_str(it, "prepend"), *from = get_str(pat, "String"), *to = get_str(it, "content");
        if (is_type(it, "Prepend") && prep && !strcmp(prep, SPM_SPACE))
            t->prepend = LPL_PREPEND_ALWAYS;
        else if (is_type(it, "Replace") && from && to && !strcmp(from, " ") && !strcmp(to, SPM_SPACE))
            replace = 1;
        else
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "normalizer step \"%.40s\" is not one this lab knows "
                            "(Prepend \"\xE2\x96\x81\", Replace \" \" by \"\xE2\x96\x81\", NFC)", type_of(it));
    }
    if (!replace)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "normalizer Sequence has no Replace \" \" by \"\xE2\x96\x81\"");
    return LPL_OK;
}

static lpl_status normalizer(lpl_tokenizer *t, const cJSON *n, lpl_error *err)
{
    if (!n || cJSON_IsNull(n))
        return LPL_OK;
    if (is_type(n, "NFC") && t->kind == LPL_TOKENIZER_BYTE_BPE) {
        t->nfc = 1;
        return LPL_OK;
    }
    if (is_type(n, "Sequence") && t->kind == LPL_TOKENIZER_SPM_BPE)
        return spm_normalizer(t, cJSON_GetObjectItemCaseSensitive(n, "normalizers"), err);
    return lpl_fail(err, LPL_ERR_FORMAT, TJ "normalizer of type \"%.40s\" is not supported with this pre_tokenizer "
                    "(null or NFC for byte-level BPE; Sequence of Prepend and Replace for SentencePiece style)",
                    type_of(n));
}

static lpl_status spm_decoder_step(lpl_tokenizer *t, const cJSON *d, lpl_error *err)
{
    const char *ty = type_of(d);
    if (!strcmp(ty, "Strip")) {
        const char *content = get_str(d, "content");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(d, "start");
        if (!content || strcmp(content, " ") || as_id(start, 2) < 0)
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "decoder Strip must strip at most one \" \" at the start");
        t->strip_space = as_id(start, 2);
    } else if (!strcmp(ty, "Metaspace")) {
        const char *scheme = get_str(d, "prepend_scheme");
        t->strip_space = !scheme || strcmp(scheme, "never");
    } else if (strcmp(ty, "Replace") && strcmp(ty, "ByteFallback") && strcmp(ty, "Fuse")) {
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "decoder \"%.40s\" is not one this lab knows for SentencePiece-style "
                        "BPE (Replace, ByteFallback, Fuse, Strip, Metaspace)", ty);
    }
    return LPL_OK;
}

static lpl_status decoder(lpl_tokenizer *t, const cJSON *d, lpl_error *err)
{
    if (!d || cJSON_IsNull(d))
        return LPL_OK;
    if (t->kind == LPL_TOKENIZER_BYTE_BPE)
        return is_type(d, "ByteLevel") ? LPL_OK
                   : lpl_fail(err, LPL_ERR_FORMAT, TJ "decoder of type \"%.40s\" with a ByteLevel pre_tokenizer "
                              "(expected ByteLevel)", type_of(d));
    if (!is_type(d, "Sequence"))
        return spm_decoder_step(t, d, err);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "decoders")) {
        lpl_status st = spm_decoder_step(t, it, err);
        if (st != LPL_OK)
            return st;
    }
    return LPL_OK;
}

/* Byte-level when a ByteLevel pre-tokenizer is there (alone or in a Sequence);
 * SentencePiece style when the normalizer or pre-tokenizer puts in U+2581. */
static lpl_status detect_kind(const cJSON *root, lpl_tokenizer_kind *kind, lpl_error *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *it;
    if (is_type(p, "ByteLevel")) {
        *kind = LPL_TOKENIZER_BYTE_BPE;
        return LPL_OK;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"))
        if (is_type(it, "ByteLevel")) {
            *kind = LPL_TOKENIZER_BYTE_BPE;
            return LPL_OK;
        }
    if (is_type(p, "Metaspace") || is_type(n, "Sequence") || is_type(n, "Replace")) {
        *kind = LPL_TOKENIZER_SPM_BPE;
        return LPL_OK;
    }
    return lpl_fail(err, LPL_ERR_FORMAT, TJ "pre_tokenizer \"%.40s\" with normalizer \"%.40s\": neither byte-level BPE "
                    "(a ByteLevel pre_tokenizer) nor SentencePiece style (a \xE2\x96\x81 normalizer or Metaspace)",
                    p && !cJSON_IsNull(p) ? type_of(p) : "null", n && !cJSON_IsNull(n) ? type_of(n) : "null");
}

/* ---------------- vocabulary, added tokens, merges ---------------- */

static lpl_status check_model(const cJSON *model, lpl_error *err)
{
    if (!cJSON_IsObject(model))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "\"model\" is missing or not an object");
    const char *ty = type_of(model);
    if (*ty && strcmp(ty, "BPE"))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.type is \"%.40s\" (only \"BPE\" is supported)", ty);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(model, "vocab")))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.vocab is missing or not an object of token: id");
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(model, "merges")))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.merges is missing or not an array");
    if (!absent_or_null(model, "continuing_subword_prefix") || !absent_or_null(model, "end_of_word_suffix"))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.continuing_subword_prefix / end_of_word_suffix are not supported");
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.dropout must be null (BPE dropout is for training tokenizers)");
    if (get_bool(model, "byte_fallback", 0) < 0 || get_bool(model, "ignore_merges", 0) < 0 ||
        get_bool(model, "fuse_unk", 0) < 0)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.byte_fallback, ignore_merges and fuse_unk must be booleans");
    return LPL_OK;
}

/* One past the largest id of model.vocab and added_tokens. */
static lpl_status count_ids(const cJSON *vocab, const cJSON *added, int *n, lpl_error *err)
{
    const cJSON *it;
    int top = -1;
    cJSON_ArrayForEach(it, vocab) {
        int id = as_id(it, MAX_VOCAB);
        if (id < 0)
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.vocab entry \"%.60s\" has no id in 0..%d", it->string,
                            MAX_VOCAB - 1);
        top = id > top ? id : top;
    }
    cJSON_ArrayForEach(it, added) {
        int id = as_id(cJSON_GetObjectItemCaseSensitive(it, "id"), MAX_VOCAB);
        if (id < 0 || !get_str(it, "content"))
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "added_tokens entry needs an id in 0..%d and a content string",
                            MAX_VOCAB - 1);
        top = id > top ? id : top;
    }
    if (top < 0)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.vocab is empty");
    *n = top + 1;
    return LPL_OK;
}

static lpl_status set_vocab(lpl_tokenizer *t, const cJSON *vocab, lpl_error *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        lpl_status st = lpl_tok_set(t, as_id(it, MAX_VOCAB), it->string, strlen(it->string), LPL_TOKEN_NORMAL, err);
        if (st != LPL_OK)
            return st;
    }
    return LPL_OK;
}

/* Added tokens may repeat a vocabulary entry (same id, same text) or extend it. */
static lpl_status set_added(lpl_tokenizer *t, const cJSON *added, lpl_error *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, added) {
        int id = as_id(cJSON_GetObjectItemCaseSensitive(it, "id"), MAX_VOCAB), special = get_bool(it, "special", 0);
        const char *content = get_str(it, "content");
        int type = special == 1 ? LPL_TOKEN_CONTROL : LPL_TOKEN_USER_DEFINED;
        if (special < 0 || get_bool(it, "lstrip", 0) < 0 || get_bool(it, "rstrip", 0) < 0)
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "added token \"%.60s\": special, lstrip, rstrip must be booleans",
                            content);
        if (!content[0])
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "added token %d has an empty content", id);
        if (get_bool(it, "single_word", 0) != 0)
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "added token \"%.60s\": single_word is not supported", content);
        if (get_bool(it, "normalized", !special) == 1 && t->kind == LPL_TOKENIZER_SPM_BPE)
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "added token \"%.60s\": normalized true is not supported with "
                            "SentencePiece-style normalizers", content);
        if (t->tok_str[id] && strcmp(t->tok_str[id], content))
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "added token %d is \"%.60s\" but model.vocab has \"%.60s\" there",
                            id, content, t->tok_str[id]);
        lpl_status st = t->tok_str[id] ? LPL_OK : lpl_tok_set(t, id, content, strlen(content), type, err);
        if (st != LPL_OK)
            return st;
        t->tok_type[id] = (uint8_t)type;
    }
    return LPL_OK;
}

static lpl_status split_out_added(lpl_tokenizer *t, const cJSON *added, lpl_error *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, added) {
        int id = as_id(cJSON_GetObjectItemCaseSensitive(it, "id"), MAX_VOCAB);
        lpl_status st = lpl_tok_add_added(t, id, get_bool(it, "lstrip", 0), get_bool(it, "rstrip", 0), err);
        if (st != LPL_OK)
            return st;
    }
    return LPL_OK;
}

/* merges: "a b" strings (older files) or ["a", "b"] pairs (newer ones). */
static lpl_status set_merges(lpl_tokenizer *t, const cJSON *merges, lpl_error *err)
{
    const cJSON *it;
    long i = 0;
    lpl_status st = lpl_tok_alloc_merges(t, (size_t)cJSON_GetArraySize(merges), err);
    cJSON_ArrayForEach(it, merges) {
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (st != LPL_OK)
            return st;
        if (cJSON_IsString(it)) {
            const char *sp = strchr(it->valuestring, ' ');
            if (sp && sp != it->valuestring && sp[1] && !strchr(sp + 1, ' ')) {
                a = it->valuestring, na = (size_t)(sp - a);
                b = sp + 1, nb = strlen(b);
            }
        } else if (cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring, na = strlen(a);
            b = cJSON_GetArrayItem(it, 1)->valuestring, nb = strlen(b);
        }
        if (!a || !na || !nb)
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.merges[%ld] is neither \"left right\" nor [left, right]", i);
        st = lpl_tok_add_merge(t, a, na, b, nb, "model.merges", i++, err);
    }
    return st;
}

/* ---------------- special tokens: post-processor and configs ---------------- */

/* TemplateProcessing "single": a special token before $A is BOS, one after it EOS. */
static lpl_status template_specials(lpl_tokenizer *t, const cJSON *pp, int *bos, int *eos, lpl_error *err)
{
    const cJSON *it, *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    int seen_a = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pp, "single")) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        if (cJSON_GetObjectItemCaseSensitive(it, "Sequence")) {
            seen_a = 1;
            continue;
        }
        const char *name = get_str(sp, "id");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(specials, name ? name : ""),
                                                            "ids");
        int id = as_id(cJSON_GetArrayItem(ids, 0), t->n_vocab);
        if (!name || id < 0 || cJSON_GetArraySize(ids) != 1)
            return lpl_fail(err, LPL_ERR_FORMAT, TJ "post_processor.single names a special token without one id "
                            "in the vocabulary in special_tokens");
        if (seen_a)
            t->add_eos = 1, *eos = id;
        else
            t->add_bos = 1, *bos = id;
    }
    return LPL_OK;
}

static lpl_status post_processor(lpl_tokenizer *t, const cJSON *pp, int *bos, int *eos, lpl_error *err)
{
    if (!pp || cJSON_IsNull(pp) || is_type(pp, "ByteLevel"))
        return LPL_OK;
    if (is_type(pp, "TemplateProcessing"))
        return template_specials(t, pp, bos, eos, err);
    if (is_type(pp, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pp, "processors")) {
            lpl_status st = post_processor(t, it, bos, eos, err);
            if (st != LPL_OK)
                return st;
        }
        return LPL_OK;
    }
    return lpl_fail(err, LPL_ERR_FORMAT, TJ "post_processor \"%.40s\" is not supported (TemplateProcessing, "
                    "ByteLevel, Sequence)", type_of(pp));
}

/* tokenizer_config.json's key: a token given as a string or {"content": ...}. Sets
 * *id (-1 for null); returns 0 when the key is absent. */
static int config_token(const lpl_tokenizer *t, const cJSON *cfg, const char *key, int *id, lpl_error *err,
                        lpl_status *st)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v)
        return 0;
    if (cJSON_IsNull(v)) {
        *id = -1;
        return 1;
    }
    const char *s = cJSON_IsString(v) ? v->valuestring : get_str(v, "content");
    if (!s) {
        *st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer_config.json: %s must be a string, {\"content\": ...} or null", key);
        return 1;
    }
    *id = lpl_tok_find(t, s, strlen(s));
    if (*id < 0)
        *st = lpl_fail(err, LPL_ERR_FORMAT, "tokenizer_config.json: %s \"%.60s\" is not in the vocabulary", key, s);
    return 1;
}

/* config.json's bos_token_id / eos_token_id: a number or a list (the first counts). */
static int model_config_id(const lpl_tokenizer *t, const cJSON *cfg, const char *key, int *id, lpl_error *err,
                           lpl_status *st)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsArray(v))
        v = cJSON_GetArrayItem(v, 0);
    *id = as_id(v, t->n_vocab);
    if (*id < 0)
        *st = lpl_fail(err, LPL_ERR_FORMAT, "config.json: %s must be an id in 0..%d", key, t->n_vocab - 1);
    return 1;
}

/* Where BOS/EOS come from, first that speaks: tokenizer_config.json, config.json,
 * the post-processor's template, then the usual token names. */
static lpl_status specials(lpl_tokenizer *t, const cJSON *root, const cJSON *tcfg, const cJSON *mcfg, lpl_error *err)
{
    int tpl_bos = -1, tpl_eos = -1, flag;
    lpl_status st = post_processor(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), &tpl_bos, &tpl_eos, err);
    const char *unk = get_str(cJSON_GetObjectItemCaseSensitive(root, "model"), "unk_token");
    if (st != LPL_OK)
        return st;
    int byte_level = t->kind == LPL_TOKENIZER_BYTE_BPE;
    t->bos = tpl_bos >= 0 ? tpl_bos : lpl_tok_find(t, byte_level ? "<|endoftext|>" : "<s>", byte_level ? 13 : 3);
    t->eos = tpl_eos >= 0 ? tpl_eos : lpl_tok_find(t, byte_level ? "<|endoftext|>" : "</s>", byte_level ? 13 : 4);
    if (unk && (t->unk = lpl_tok_find(t, unk, strlen(unk))) < 0)
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "model.unk_token \"%.60s\" is not in the vocabulary", unk);
    if (!config_token(t, tcfg, "bos_token", &t->bos, err, &st))
        model_config_id(t, mcfg, "bos_token_id", &t->bos, err, &st);
    if (st == LPL_OK && !config_token(t, tcfg, "eos_token", &t->eos, err, &st))
        model_config_id(t, mcfg, "eos_token_id", &t->eos, err, &st);
    if (st == LPL_OK)
        config_token(t, tcfg, "pad_token", &t->pad, err, &st);
    if (st == LPL_OK && (flag = get_bool(tcfg, "add_bos_token", -2)) != -2)
        t->add_bos = flag == 1;
    if (st == LPL_OK && (flag = get_bool(tcfg, "add_eos_token", -2)) != -2)
        t->add_eos = flag == 1;
    return st;
}

/* ---------------- the whole document ---------------- */

static lpl_status build(lpl_tokenizer **out, const cJSON *root, const cJSON *tcfg, const cJSON *mcfg, lpl_error *err)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    lpl_tokenizer_kind kind;
    int n = 0;
    lpl_status st;
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return lpl_fail(err, LPL_ERR_FORMAT, TJ "added_tokens must be an array");
    if ((st = check_model(model, err)) || (st = detect_kind(root, &kind, err)) ||
        (st = count_ids(cJSON_GetObjectItemCaseSensitive(model, "vocab"), added, &n, err)))
        return st;
    lpl_tokenizer *t = lpl_tok_new(kind, n, err);
    if (!t)
        return LPL_ERR_NOMEM;
    t->byte_fallback = get_bool(model, "byte_fallback", 0) == 1;
    t->ignore_merges = get_bool(model, "ignore_merges", 0) == 1;
    if ((st = normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err)) ||
        (st = pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), err)) ||
        (st = decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), err)) ||
        (st = set_vocab(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), err)) ||
        (st = set_added(t, added, err)) || (st = lpl_tok_finish_vocab(t, err)) ||
        (st = set_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges"), err)) ||
        (st = split_out_added(t, added, err)) || (st = specials(t, root, tcfg, mcfg, err))) {
        lpl_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LPL_OK;
}

/* Parses an optional JSON object; NULL text gives NULL. */
static lpl_status parse_opt(const char *text, size_t len, const char *name, cJSON **out, lpl_error *err)
{
    const char *end = NULL;
    *out = NULL;
    if (!text)
        return LPL_OK;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: malformed JSON at byte %ld", name, end ? (long)(end - text) : -1L);
    if (!cJSON_IsObject(*out))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: not a JSON object", name);
    return LPL_OK;
}

lpl_tokenizer *lpl_tokenizer_from_json(const char *tokenizer_json, size_t len,
                                       const char *tokenizer_config, size_t config_len,
                                       const char *model_config, size_t model_config_len, lpl_error *err)
{
    cJSON *root = NULL, *tcfg = NULL, *mcfg = NULL;
    lpl_tokenizer *t = NULL;
    if (!tokenizer_json) {
        lpl_fail(err, LPL_ERR_INVALID, TJ "no text");
        return NULL;
    }
    if (parse_opt(tokenizer_json, len, "tokenizer.json", &root, err) == LPL_OK &&
        parse_opt(tokenizer_config, config_len, "tokenizer_config.json", &tcfg, err) == LPL_OK &&
        parse_opt(model_config, model_config_len, "config.json", &mcfg, err) == LPL_OK)
        build(&t, root, tcfg, mcfg, err);
    cJSON_Delete(root);
    cJSON_Delete(tcfg);
    cJSON_Delete(mcfg);
    return t;
}

/* Reads dir/name if it exists (*text NULL when it does not). */
static lpl_status read_beside(const char *dir, const char *name, char **text, size_t *len, lpl_error *err)
{
    char path[4096];
    struct stat sb;
    *text = NULL;
    *len = 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return lpl_fail(err, LPL_ERR_INVALID, "tokenizer: path too long: %s", dir);
    if (stat(path, &sb) != 0)
        return LPL_OK;
    return lpl_read_file(path, text, len, err);
}

lpl_tokenizer *lpl_tokenizer_from_json_path(const char *path, lpl_error *err)
{
    char dir[4096], *files[3] = {NULL, NULL, NULL};
    size_t lens[3] = {0, 0, 0};
    struct stat sb;
    lpl_tokenizer *t = NULL;
    if (!path || stat(path, &sb) != 0) {
        lpl_fail(err, LPL_ERR_IO, "tokenizer: cannot find %s", path ? path : "(null)");
        return NULL;
    }
    snprintf(dir, sizeof dir, "%s", path);
    if (!S_ISDIR(sb.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    lpl_status st = S_ISDIR(sb.st_mode) ? read_beside(dir, "tokenizer.json", &files[0], &lens[0], err)
                                         : lpl_read_file(path, &files[0], &lens[0], err);
    if (st == LPL_OK && !files[0])
        st = lpl_fail(err, LPL_ERR_IO, "tokenizer: %s has no tokenizer.json", path);
    if (st == LPL_OK && (st = read_beside(dir, "tokenizer_config.json", &files[1], &lens[1], err)) == LPL_OK &&
        (st = read_beside(dir, "config.json", &files[2], &lens[2], err)) == LPL_OK)
        t = lpl_tokenizer_from_json(files[0], lens[0], files[1], lens[1], files[2], lens[2], err);
    if (!t && err && st == LPL_OK) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lpl_fail(err, err->code, "%s (%s)", msg, path);
    }
    for (int i = 0; i < 3; i++)
        free(files[i]);
    return t;
}
