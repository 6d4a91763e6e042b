/* The Llama-family block (llama, qwen2) on the shared engine state: forward and
 * backward of one block, called by gpt2.c's sequence loop. Private to src/model/. */
#ifndef LPL_LLAMA_H
#define LPL_LLAMA_H

#include "model_state.h"

/* Block l over resid[l] -> resid[l+1] (T tokens), keeping what backward needs. */
void lpl_llama_block_forward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, int T);

/* On entry s->dres holds d(block output); on exit d(block input). last is as in
 * gpt2.c's block_backward: -1 computes everything, else the lowest adapted site of
 * the lowest layer backward reaches, where it stops once that site has its gradients. */
void lpl_llama_block_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, int T, int last);

#endif
