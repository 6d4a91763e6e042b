/* Evaluation: eval loss = total NLL over all scored tokens / their number, and
 * perplexity = exp(eval loss) over the same tokens (docs: DESIGN "Metrics"). */
#ifndef LPL_EVAL_H
#define LPL_EVAL_H

#include "lpl/core/common.h"
#include "lpl/io/data.h"
#include "lpl/io/tokenizer.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/lora.h"

LPL_BEGIN_DECLS

typedef struct {
    double nll_sum;            /* over all scored tokens */
    int64_t n_tokens;          /* scored tokens */
    int n_samples;             /* examples with at least one scored token */
    double eval_loss;          /* nll_sum / n_tokens */
    double perplexity;         /* exp(eval_loss) */
    double mean_sample_perplexity; /* mean over samples of exp(sample loss); usually above
                                  * perplexity (Jensen) and dominated by the worst sample */
    double trainer_eval_loss;  /* the eval loss an HF Trainer logs: examples in batches of
                                * LPL_TRAINER_EVAL_BATCH in order, each batch's token-mean loss
                                * counted once per example of the batch, averaged (= the mean
                                * over batches when every batch is full) */
    double role_nll[LPL_N_ROLES];     /* nll_sum split by token role (data.h) */
    int64_t role_tokens[LPL_N_ROLES]; /* scored tokens per role; they sum to n_tokens */
} lpl_eval_result;

/* HF Trainer's default per_device_eval_batch_size. */
#define LPL_TRAINER_EVAL_BATCH 8

/* Eval loss of the model (with lora if non-NULL, no dropout) over examples.
 * LPL_ERR_INVALID if no example has a scored token. */
lpl_status lpl_evaluate(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_example_set *ex,
                        lpl_eval_result *out, lpl_error *err);

/* lpl_evaluate over a state the caller keeps (the run reuses its training state);
 * s must hold the longest example. */
lpl_status lpl_evaluate_with_state(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s,
                                   const lpl_example_set *ex, lpl_eval_result *out, lpl_error *err);

/* The reduction of an eval pass, on its own so that per-token losses computed
 * elsewhere (a hosted eval: the WebGPU engine) give the same numbers as
 * lpl_evaluate_with_state, which uses it: begin, add every example in order with
 * the NLL of its scored positions (position order, as lpl_gpt2_token_nll), end. */
typedef struct {
    lpl_eval_result res;
    double sum_ppl, batch_nll, trainer_sum;
    int64_t batch_tokens;
    int trainer_examples;
} lpl_eval_acc;

void lpl_eval_begin(lpl_eval_acc *a);
void lpl_eval_add(lpl_eval_acc *a, const lpl_example_set *ex, int i, const float *token_nll);
/* LPL_ERR_INVALID if no example has a scored token, LPL_ERR_NUMERIC if the sum is not
 * finite (*out is filled either way). */
lpl_status lpl_eval_end(lpl_eval_acc *a, lpl_eval_result *out, lpl_error *err);

/* Longest example of a set (at least 1): the T a state for it needs. */
int lpl_examples_max_T(const lpl_example_set *ex);

/* -log p(target) of every position of every example, without dropout, with the base's
 * products computed as compute says: out holds the sum of the examples' T values,
 * example after example, NAN where a target is not scored. Errors as lpl_evaluate. */
lpl_status lpl_token_losses(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_example_set *ex,
                            lpl_compute compute, float *out, lpl_error *err);

/* The token view of examples [first, first + count) of ex as a JSON document:
 * {"eval_loss", "n_tokens", "roles": {ROLE: {n_tokens, loss, ...}}, "models": [names],
 *  "examples": [{"index", "tokens": [{"id", "text", "role", "scored", "loss", "loss_NAME"...}]}]}.
 * "loss" is the base model's; "loss_NAME" that with adapters[k] (named names[k]); eval_loss
 * and the roles are over the whole set, for the base and each adapter ("eval_loss_NAME").
 * The first token of an example predicts nothing and is listed unscored. malloc'd JSON
 * or NULL with err set. */
char *lpl_token_view_json(const lpl_gpt2_model *m, const lpl_tokenizer *tok, lpl_lora *const *adapters,
                          const char *const *names, int n_adapters, const lpl_example_set *ex, int first,
                          int count, lpl_compute compute, lpl_error *err);

LPL_END_DECLS

#endif
