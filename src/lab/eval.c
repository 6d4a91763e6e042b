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

lpl_status lpl_evaluate_with_state(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s,
                                   const lpl_example_set *ex, lpl_eval_result *out, lpl_error *err)
{
    memset(out, 0, sizeof *out);
    double sum_ppl = 0;
    /* HF Trainer: a batch's loss is its token mean; it is repeated once per example of
     * the batch and the repeats are averaged. */
    double batch_nll = 0, trainer_sum = 0;
    int64_t batch_tokens = 0;
    int trainer_examples = 0;
    for (int i = 0; i < ex->n; i++) {
        const lpl_example *e = &ex->ex[i];
        lpl_loss l;
        lpl_status st = lpl_gpt2_forward(m, lora, s, e->tokens, e->targets, e->mask, e->T, 0, &l, err);
        if (st)
            return st;
        batch_nll += l.nll_sum;
        batch_tokens += l.n_scored;
        int batch_end = (i + 1) % LPL_TRAINER_EVAL_BATCH == 0 || i + 1 == ex->n;
        if (batch_end && batch_tokens > 0) {
            int in_batch = i % LPL_TRAINER_EVAL_BATCH + 1;
            trainer_sum += in_batch * (batch_nll / (double)batch_tokens);
            trainer_examples += in_batch;
        }
        if (batch_end)
            batch_nll = 0, batch_tokens = 0;
        if (l.n_scored == 0)
            continue;
        add_roles(out, e, lpl_gpt2_token_nll(s));
        out->nll_sum += l.nll_sum;
        out->n_tokens += l.n_scored;
        out->n_samples++;
        sum_ppl += exp(l.nll_sum / l.n_scored);
    }
    if (out->n_tokens == 0)
        return lpl_fail(err, LPL_ERR_INVALID, "no eval example has a scored token");
    out->eval_loss = out->nll_sum / (double)out->n_tokens;
    out->perplexity = exp(out->eval_loss);
    out->mean_sample_perplexity = sum_ppl / out->n_samples;
    out->trainer_eval_loss = trainer_sum / trainer_examples;
    return LPL_OK;
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
