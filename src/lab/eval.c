/* Eval loss and perplexity over an example set. */
#include "lpl/lab/eval.h"

#include <math.h>
#include <string.h>

static int max_len_of(const lpl_example_set *ex)
{
    int T = 1;
    for (int i = 0; i < ex->n; i++)
        T = ex->ex[i].T > T ? ex->ex[i].T : T;
    return T;
}

lpl_status lpl_evaluate_with_state(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s,
                                   const lpl_example_set *ex, lpl_eval_result *out, lpl_error *err)
{
    memset(out, 0, sizeof *out);
    double sum_ppl = 0;
    for (int i = 0; i < ex->n; i++) {
        const lpl_example *e = &ex->ex[i];
        lpl_loss l;
        lpl_status st = lpl_gpt2_forward(m, lora, s, e->tokens, e->targets, e->mask, e->T, 0, &l, err);
        if (st)
            return st;
        if (l.n_scored == 0)
            continue;
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
    return LPL_OK;
}

lpl_status lpl_evaluate(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_example_set *ex,
                        lpl_eval_result *out, lpl_error *err)
{
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, max_len_of(ex), 0, err);
    if (!s)
        return err ? err->code : LPL_ERR_NOMEM;
    lpl_status st = lpl_evaluate_with_state(m, lora, s, ex, out, err);
    lpl_gpt2_state_free(s);
    return st;
}
