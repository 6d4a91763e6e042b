/* Fuzz target: Alpaca JSON records, then prompts and token sequences built from
 * them with the GPT-2 tokenizer (both scoring modes, a short max_len so that
 * truncation is exercised). */
#include "fuzz_gpt2_tokenizer.h"
#include "lpl/io/data.h"

static void fuzz_alpaca_check_examples(const lpl_example_set *es, int max_len, int response_only)
{
    int64_t scored = 0;
    int truncated = 0;
    for (int i = 0; i < es->n; i++) {
        const lpl_example *x = &es->ex[i];
        FUZZ_ASSERT(x->T >= 1 && x->T <= max_len, "example %d has T=%d (max_len %d)", i, x->T, max_len);
        for (int t = 0; t < x->T; t++) {
            FUZZ_ASSERT(x->tokens[t] >= 0 && x->tokens[t] < 50257 && x->targets[t] >= 0 &&
                            x->targets[t] < 50257 && x->mask[t] <= 1,
                        "example %d position %d: token %d target %d mask %d", i, t, x->tokens[t],
                        x->targets[t], x->mask[t]);
            if (t + 1 < x->T)
                FUZZ_ASSERT(x->targets[t] == x->tokens[t + 1], "targets are not the shifted tokens");
            scored += x->mask[t];
        }
        truncated += x->truncated != 0;
        /* The last target of an untruncated example is <|endoftext|>, always scored. */
        if (!x->truncated)
            FUZZ_ASSERT(x->targets[x->T - 1] == 50256 && x->mask[x->T - 1] == 1,
                        "example %d does not end with a scored <|endoftext|>", i);
        (void)response_only;
    }
    FUZZ_ASSERT(scored == es->n_scored, "n_scored %lld but masks sum to %lld", (long long)es->n_scored,
                (long long)scored);
    FUZZ_ASSERT(truncated == es->n_truncated, "n_truncated %d but %d flagged", es->n_truncated, truncated);
}

int lpl_fuzz_alpaca(const uint8_t *data, size_t size, lpl_error *err)
{
    lpl_alpaca_set set = {0};
    if (lpl_alpaca_parse((const char *)data, size, &set, err) != LPL_OK) {
        FUZZ_ASSERT(err->code != LPL_OK && err->msg[0], "refused without a message");
        lpl_alpaca_free(&set);
        return 0;
    }
    for (int i = 0; i < set.n; i++) {
        const lpl_alpaca_record *r = &set.records[i];
        FUZZ_ASSERT(r->instruction && r->input && r->output, "record %d has a NULL field", i);
        char *p = lpl_alpaca_prompt(r);
        FUZZ_ASSERT(p != NULL && strstr(p, r->instruction) != NULL, "prompt %d lacks the instruction", i);
        free(p);
    }
    const lpl_tokenizer *tok = fuzz_gpt2_tokenizer();
    static const int lens[2] = {64, 7};
    for (int k = 0; k < 2; k++) {
        lpl_example_set es = {0};
        lpl_error e;
        lpl_error_clear(&e);
        /* JSON may carry bytes that are not UTF-8 (cJSON does not check): refusing
         * them here with a message is fine, crashing is not. */
        lpl_status st = lpl_examples_build(&set, tok, lens[k], k, &es, &e);
        if (st != LPL_OK) {
            FUZZ_ASSERT(e.msg[0] != '\0', "building examples failed without a message");
            lpl_examples_free(&es);
            continue;
        }
        FUZZ_ASSERT(es.n == set.n, "%d examples for %d records", es.n, set.n);
        fuzz_alpaca_check_examples(&es, lens[k], k);
        lpl_examples_free(&es);
    }
    lpl_alpaca_free(&set);
    return 1;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_alpaca(data, size, &err);
    return 0;
}
#endif
