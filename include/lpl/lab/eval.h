/* Evaluation: eval loss = total NLL over all scored tokens / their number, and
 * perplexity = exp(eval loss) over the same tokens (docs: DESIGN "Metrics"). */
#ifndef LPL_EVAL_H
#define LPL_EVAL_H

#include "lpl/core/common.h"
#include "lpl/io/data.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/lora.h"

typedef struct {
    double nll_sum;            /* over all scored tokens */
    int64_t n_tokens;          /* scored tokens */
    int n_samples;             /* examples with at least one scored token */
    double eval_loss;          /* nll_sum / n_tokens */
    double perplexity;         /* exp(eval_loss) */
    double mean_sample_perplexity; /* mean over samples of exp(sample loss); usually above
                                  * perplexity (Jensen) and dominated by the worst sample */
} lpl_eval_result;

/* Eval loss of the model (with lora if non-NULL, no dropout) over examples.
 * LPL_ERR_INVALID if no example has a scored token. */
lpl_status lpl_evaluate(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_example_set *ex,
                        lpl_eval_result *out, lpl_error *err);

/* lpl_evaluate over a state the caller keeps (the run reuses its training state);
 * s must hold the longest example. */
lpl_status lpl_evaluate_with_state(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s,
                                   const lpl_example_set *ex, lpl_eval_result *out, lpl_error *err);

#endif
