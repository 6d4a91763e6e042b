/* Text generation: greedy or sampled (temperature, top-k), with transformers'
 * repetition penalty, from the model and optionally one adapter. */
#ifndef LPL_GENERATE_H
#define LPL_GENERATE_H

#include "lpl/core/common.h"
#include "lpl/io/tokenizer.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/lora.h"

LPL_BEGIN_DECLS

typedef struct {
    int max_new_tokens;   /* default 64 */
    float temperature;    /* <= 0: greedy */
    int top_k;            /* 0: whole vocabulary */
    uint64_t seed;
    int alpaca;           /* wrap the prompt in the Alpaca template (instruction, no input) */
    float repetition_penalty; /* as transformers' generate: logits of tokens already in the
                                 sequence are divided (if > 0) or multiplied (if < 0) by it;
                                 1 = off (default) */
    int min_new_tokens;   /* as transformers' generate: end-of-text cannot be picked before
                             this many new tokens (default 0) */
} lpl_generate_options;

/* Fills o with the library's generation defaults (sampling, length, penalty). */
void lpl_generate_options_default(lpl_generate_options *o);

/* Continues prompt with the model (and lora if non-NULL) until end-of-text, the
 * context is full, or max_new_tokens; *text (malloc'd) is the continuation only. */
lpl_status lpl_generate(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_tokenizer *tok,
                        const char *prompt, const lpl_generate_options *o, char **text,
                        lpl_error *err);

LPL_END_DECLS

#endif
