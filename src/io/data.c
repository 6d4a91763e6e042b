/* Alpaca instruction data: parsing with every problem reported, the Alpaca prompt
 * template, tokenized examples with truncation and optional response-only scoring,
 * and seeded shuffling. */
#include "lpl/io/data.h"

#include "lpl/core/utf8.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpl/core/files.h"
#include "lpl/core/rng.h"

/* The two prompts of the Alpaca project: with and without an input. */
static const char PROMPT_WITH_INPUT[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n";
static const char PROMPT_NO_INPUT[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n%s\n\n### Response:\n";

/* Problems found in a document, collected into one message of one line each; the
 * message stops growing when lpl_error's buffer is nearly full and ends with how
 * many more there were. */
typedef struct {
    char text[sizeof(((lpl_error *)0)->msg)];
    size_t used;
    int count, shown;
} problems;

#define PROBLEM_TAIL 40 /* room kept for "\n... and N more" */

static void problem(problems *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void problem(problems *p, const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->count++;
    size_t n = strlen(line);
    if (p->used + n + 1 + PROBLEM_TAIL >= sizeof p->text)
        return;
    p->used += (size_t)snprintf(p->text + p->used, sizeof p->text - p->used, "\n%s", line);
    p->shown++;
}

static lpl_status problems_report(const problems *p, lpl_error *err)
{
    if (p->count == p->shown)
        return lpl_fail(err, LPL_ERR_FORMAT, "alpaca data: %d problem%s:%s", p->count,
                        p->count == 1 ? "" : "s", p->text);
    return lpl_fail(err, LPL_ERR_FORMAT, "alpaca data: %d problems:%s\n... and %d more", p->count, p->text,
                    p->count - p->shown);
}

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

static void line_col(const char *s, size_t off, long *line, long *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

void lpl_alpaca_free(lpl_alpaca_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n && s->records; i++) {
        free(s->records[i].instruction);
        free(s->records[i].input);
        free(s->records[i].output);
    }
    free(s->records);
    s->records = NULL;
    s->n = 0;
}

/* Checks field `name` of record i: 1 if it is a usable string (or absent/null and
 * optional), else records a problem and returns 0. */
static int check_field(problems *p, const cJSON *rec, int i, const char *name, int optional)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    if (!v || (optional && cJSON_IsNull(v))) {
        if (!optional)
            problem(p, "record %d: missing \"%s\"", i, name);
        return optional;
    }
    if (!cJSON_IsString(v)) {
        problem(p, "record %d: \"%s\" is %s, not a string", i, name, json_kind(v));
        return 0;
    }
    return 1;
}

static char *dup_field(const cJSON *rec, const char *name, lpl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
    const char *s = cJSON_IsString(v) ? v->valuestring : "";
    size_t n = strlen(s);
    char *d = lpl_malloc(n + 1, "alpaca record", err);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* Copies the checked records of arr into out. */
static lpl_status copy_records(const cJSON *arr, lpl_alpaca_set *out, lpl_error *err)
{
    int n = cJSON_GetArraySize(arr), i = 0;
    out->records = lpl_calloc((size_t)n, sizeof *out->records, "alpaca records", err);
    if (!out->records)
        return LPL_ERR_NOMEM;
    for (const cJSON *rec = arr->child; rec; rec = rec->next, i++) {
        lpl_alpaca_record *r = &out->records[i];
        out->n = i + 1;
        r->instruction = dup_field(rec, "instruction", err);
        r->input = r->instruction ? dup_field(rec, "input", err) : NULL;
        r->output = r->input ? dup_field(rec, "output", err) : NULL;
        if (!r->output)
            return LPL_ERR_NOMEM;
    }
    return LPL_OK;
}

lpl_status lpl_alpaca_parse(const char *json, size_t len, lpl_alpaca_set *out, lpl_error *err)
{
    size_t bad;
    long line, col;
    out->records = NULL;
    out->n = 0;
    if (!json)
        return lpl_fail(err, LPL_ERR_INVALID, "alpaca data: no text");
    if (!lpl_utf8_validate(json, len, &bad)) {
        line_col(json, bad, &line, &col);
        return lpl_fail(err, LPL_ERR_FORMAT, "alpaca data: not valid UTF-8 at byte %zu (line %ld, column %ld)",
                        bad, line, col);
    }
    /* a UTF-8 byte-order mark (some editors write one) is not JSON: skip it */
    size_t bom = len >= 3 && !memcmp(json, "\xEF\xBB\xBF", 3) ? 3 : 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json + bom, len - bom, &end, 0);
    if (!root) {
        size_t off = end && end >= json + bom && end <= json + len ? (size_t)(end - json) : bom;
        line_col(json, off, &line, &col);
        return lpl_fail(err, LPL_ERR_FORMAT, "alpaca data: malformed JSON near byte %zu (line %ld, column %ld)",
                        off, line, col);
    }
    lpl_status st = LPL_OK;
    if (!cJSON_IsArray(root)) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "alpaca data: the document is %s, not an array of records "
                      "[{\"instruction\", \"input\", \"output\"}]", json_kind(root));
        goto done;
    }
    if (!root->child) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "alpaca data: the array has no records");
        goto done;
    }
    problems p = {.used = 0};
    int i = 0;
    for (const cJSON *rec = root->child; rec; rec = rec->next, i++) {
        if (!cJSON_IsObject(rec)) {
            problem(&p, "record %d: is %s, not an object", i, json_kind(rec));
            continue;
        }
        check_field(&p, rec, i, "instruction", 0);
        check_field(&p, rec, i, "input", 1);
        check_field(&p, rec, i, "output", 0);
    }
    if (p.count) {
        st = problems_report(&p, err);
        goto done;
    }
    st = copy_records(root, out, err);
    if (st != LPL_OK)
        lpl_alpaca_free(out);
done:
    cJSON_Delete(root);
    return st;
}

lpl_status lpl_alpaca_load(const char *path, lpl_alpaca_set *out, lpl_error *err)
{
    out->records = NULL;
    out->n = 0;
    char *buf = NULL;
    size_t n = 0;
    lpl_status st = lpl_read_file(path, &buf, &n, err);
    if (st != LPL_OK)
        return st;
    st = lpl_alpaca_parse(buf, n, out, err);
    free(buf);
    if (st != LPL_OK && err) {
        /* name the file: "data/x.json: alpaca data: ..." */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lpl_fail(err, st, "%s: %s", path, msg);
    }
    return st;
}

char *lpl_alpaca_prompt(const lpl_alpaca_record *r)
{
    const char *input = r->input ? r->input : "";
    int with_input = input[0] != '\0';
    size_t n = strlen(r->instruction) + strlen(input) +
               (with_input ? sizeof PROMPT_WITH_INPUT : sizeof PROMPT_NO_INPUT);
    char *s = malloc(n);
    if (!s)
        return NULL;
    if (with_input)
        snprintf(s, n, PROMPT_WITH_INPUT, r->instruction, input);
    else
        snprintf(s, n, PROMPT_NO_INPUT, r->instruction);
    return s;
}

const char *lpl_role_name(int role)
{
    static const char *const names[LPL_N_ROLES] = {"template", "instruction", "input", "response"};
    return role >= 0 && role < LPL_N_ROLES ? names[role] : "?";
}

/* Byte spans of a record's prompt: instruction at [ins[0], ins[1]), input at [inp[0],
 * inp[1]) (empty without input); the rest of the prompt is template. Found from the
 * template strings themselves, so they cannot drift apart from lpl_alpaca_prompt. */
static void prompt_spans(const lpl_alpaca_record *r, size_t ins[2], size_t inp[2])
{
    const char *input = r->input ? r->input : "";
    int with_input = input[0] != '\0';
    const char *tpl = with_input ? PROMPT_WITH_INPUT : PROMPT_NO_INPUT;
    const char *first = strstr(tpl, "%s");
    ins[0] = (size_t)(first - tpl);
    ins[1] = ins[0] + strlen(r->instruction);
    inp[0] = inp[1] = ins[1];
    if (with_input) {
        const char *second = strstr(first + 2, "%s");
        inp[0] = ins[1] + (size_t)(second - (first + 2));
        inp[1] = inp[0] + strlen(input);
    }
}

static uint8_t role_of_byte(size_t b, size_t prompt_len, const size_t ins[2], const size_t inp[2])
{
    if (b >= prompt_len)
        return LPL_ROLE_RESPONSE;
    if (b >= ins[0] && b < ins[1])
        return LPL_ROLE_INSTRUCTION;
    if (b >= inp[0] && b < inp[1])
        return LPL_ROLE_INPUT;
    return LPL_ROLE_TEMPLATE;
}

void lpl_examples_free(lpl_example_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n && s->ex; i++) {
        free(s->ex[i].tokens);
        free(s->ex[i].targets);
        free(s->ex[i].mask);
        free(s->ex[i].role);
    }
    free(s->ex);
    s->ex = NULL;
    s->n = 0;
}

/* Fills e from the ids of prompt + output (+ eot at ids[n-1]). A target is in the
 * response when its token holds at least one byte past the prompt, so a token that
 * straddles the prompt/response boundary is scored with the response. */
static lpl_status fill_example(lpl_example *e, const int *ids, const size_t *ends, int n,
                               const lpl_alpaca_record *rec, size_t prompt_len, int max_len, int response_only,
                               lpl_error *err)
{
    int keep = n > max_len + 1 ? max_len + 1 : n;
    e->T = keep - 1;
    e->truncated = n > max_len + 1;
    e->tokens = lpl_malloc((size_t)e->T * sizeof *e->tokens, "example tokens", err);
    e->targets = lpl_malloc((size_t)e->T * sizeof *e->targets, "example targets", err);
    e->mask = lpl_malloc((size_t)e->T, "example mask", err);
    e->role = lpl_malloc((size_t)e->T, "example roles", err);
    if (!e->tokens || !e->targets || !e->mask || !e->role)
        return LPL_ERR_NOMEM;
    size_t ins[2], inp[2];
    prompt_spans(rec, ins, inp);
    for (int j = 1; j < keep; j++) {
        size_t start = ends[j - 1], end = ends[j]; /* text bytes of token j */
        e->tokens[j - 1] = ids[j - 1];
        e->targets[j - 1] = ids[j];
        e->mask[j - 1] = (uint8_t)(!response_only || end > prompt_len || j == n - 1);
        /* end-of-text (the last id) is part of the response; other tokens go by their last byte */
        e->role[j - 1] = j == n - 1 ? LPL_ROLE_RESPONSE
                                    : role_of_byte(end > start ? end - 1 : start, prompt_len, ins, inp);
    }
    return LPL_OK;
}

lpl_status lpl_examples_build(const lpl_alpaca_set *s, const lpl_tokenizer *tok, int max_len,
                              int response_only, lpl_example_set *out, lpl_error *err)
{
    memset(out, 0, sizeof *out);
    if (max_len < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "max_len must be at least 1 (got %d)", max_len);
    int eot = lpl_tokenizer_eot(tok);
    if (eot < 0)
        return lpl_fail(err, LPL_ERR_INVALID, "the tokenizer has no <|endoftext|> token");
    out->ex = lpl_calloc((size_t)(s->n ? s->n : 1), sizeof *out->ex, "examples", err);
    if (!out->ex)
        return LPL_ERR_NOMEM;
    lpl_status st = LPL_OK;
    for (int i = 0; i < s->n && st == LPL_OK; i++) {
        char *prompt = lpl_alpaca_prompt(&s->records[i]);
        size_t np = prompt ? strlen(prompt) : 0, no = strlen(s->records[i].output);
        char *text = prompt ? malloc(np + no + 1) : NULL;
        int *ids = NULL, n = 0;
        size_t *ends = NULL;
        if (!text) {
            st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: prompt of record %d", i);
        } else {
            memcpy(text, prompt, np);
            memcpy(text + np, s->records[i].output, no + 1);
            /* the prompt and output are tokenized as one text, as the study did; with
             * BOS in front when the tokenizer's config asks (Llama-family models) */
            st = lpl_tokenizer_encode_ex(tok, text, np + no, LPL_ENCODE_SPECIAL, &ids, &n, &ends, err);
        }
        if (st == LPL_OK) {
            int *grown = realloc(ids, ((size_t)n + 1) * sizeof *ids);
            size_t *grown_ends = grown ? realloc(ends, ((size_t)n + 1) * sizeof *ends) : NULL;
            if (grown)
                ids = grown;
            if (grown_ends)
                ends = grown_ends;
            if (!grown || !grown_ends) {
                st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: tokens of record %d", i);
            } else {
                if (n == 0 || ids[n - 1] != eot) { /* unless the config already put EOS there */
                    ends[n] = np + no;
                    ids[n++] = eot;
                }
                out->n = i + 1;
                st = fill_example(&out->ex[i], ids, ends, n, &s->records[i], np, max_len, response_only, err);
            }
        } else if (st == LPL_ERR_INVALID) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            st = lpl_fail(err, st, "record %d: %s", i, msg);
        }
        if (st == LPL_OK) {
            out->n_truncated += out->ex[i].truncated;
            for (int t = 0; t < out->ex[i].T; t++)
                out->n_scored += out->ex[i].mask[t];
        }
        free(prompt);
        free(text);
        free(ids);
        free(ends);
    }
    if (st != LPL_OK)
        lpl_examples_free(out);
    return st;
}

void lpl_shuffle_indices(int *perm, int n, uint64_t seed)
{
    lpl_rng r;
    lpl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++)
        perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        /* uniform j in [0, i]: reject the first 2^64 mod (i+1) values so every
         * residue is equally likely */
        uint64_t m = (uint64_t)i + 1, x, floor = (0 - m) % m;
        do
            x = lpl_rng_next(&r);
        while (x < floor);
        int j = (int)(x % m);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}
