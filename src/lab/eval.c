/* Eval loss and perplexity over an example set. */
#include "lpl/lab/eval.h"

#include <math.h>
#include <string.h>

int lpl_examples_max_T(const lpl_example_set *ex)
{
    int T = 1;
    for (int i = 0; i < ex->n; i++)
        T = ex->ex[i].T > T ? ex->ex[i].T : T;
    return T;
}

/* Adds the example's scored positions to the per-role sums: nll holds one value per
 * scored position, in position order. */
static void add_roles(lpl_eval_result *out, const lpl_example *e, const float *nll)
{
    int k = 0;
    for (int t = 0; t < e->T; t++) {
        if (e->mask && !e->mask[t])
            continue;
        int role = e->role ? e->role[t] : LPL_ROLE_RESPONSE;
        out->role_nll[role] += nll[k++];
        out->role_tokens[role]++;
    }
}

void lpl_eval_begin(lpl_eval_acc *a)
{
    memset(a, 0, sizeof *a);
}

void lpl_eval_add(lpl_eval_acc *a, const lpl_example_set *ex, int i, const float *token_nll)
{
    const lpl_example *e = &ex->ex[i];
    lpl_eval_result *out = &a->res;
    /* the forward's own sum (gpt2.c): in double, in position order */
    double nll_sum = 0;
    int n_scored = 0;
    for (int t = 0; t < e->T; t++)
        n_scored += e->mask ? e->mask[t] != 0 : 1;
    for (int k = 0; k < n_scored; k++)
        nll_sum += token_nll[k];
    a->batch_nll += nll_sum;
    a->batch_tokens += n_scored;
    int batch_end = (i + 1) % LPL_TRAINER_EVAL_BATCH == 0 || i + 1 == ex->n;
    if (batch_end && a->batch_tokens > 0) {
        int in_batch = i % LPL_TRAINER_EVAL_BATCH + 1;
        a->trainer_sum += in_batch * (a->batch_nll / (double)a->batch_tokens);
        a->trainer_examples += in_batch;
    }
    if (batch_end)
        a->batch_nll = 0, a->batch_tokens = 0;
    if (n_scored == 0)
        return;
    add_roles(out, e, token_nll);
    out->nll_sum += nll_sum;
    out->n_tokens += n_scored;
    out->n_samples++;
    a->sum_ppl += exp(nll_sum / n_scored);
}

lpl_status lpl_eval_end(lpl_eval_acc *a, lpl_eval_result *out, lpl_error *err)
{
    *out = a->res;
    if (out->n_tokens == 0)
        return lpl_fail(err, LPL_ERR_INVALID, "no eval example has a scored token");
    out->eval_loss = out->nll_sum / (double)out->n_tokens;
    out->perplexity = exp(out->eval_loss);
    out->mean_sample_perplexity = a->sum_ppl / out->n_samples;
    out->trainer_eval_loss = a->trainer_sum / a->trainer_examples;
    if (!isfinite(out->nll_sum))
        return lpl_fail(err, LPL_ERR_NUMERIC, "eval: the loss is not finite (%g)", out->nll_sum);
    return LPL_OK;
}

lpl_status lpl_evaluate_with_state(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s,
                                   const lpl_example_set *ex, lpl_eval_result *out, lpl_error *err)
{
    memset(out, 0, sizeof *out);
    lpl_eval_acc a;
    lpl_eval_begin(&a);
    for (int i = 0; i < ex->n; i++) {
        const lpl_example *e = &ex->ex[i];
        lpl_status st = lpl_gpt2_forward(m, lora, s, e->tokens, e->targets, e->mask, e->T, 0, NULL, err);
        if (st)
            return st;
        lpl_eval_add(&a, ex, i, lpl_gpt2_token_nll(s));
    }
    return lpl_eval_end(&a, out, err);
}

lpl_status lpl_evaluate(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_example_set *ex,
                        lpl_eval_result *out, lpl_error *err)
{
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, lpl_examples_max_T(ex), 0, err);
    if (!s)
        return err ? err->code : LPL_ERR_NOMEM;
    lpl_status st = lpl_evaluate_with_state(m, lora, s, ex, out, err);
    lpl_gpt2_state_free(s);
    return st;
}
