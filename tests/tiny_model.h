/* Shape of a tiny GPT-2 for tests that need a model config but no weights. */
#ifndef LPL_TEST_TINY_MODEL_H
#define LPL_TEST_TINY_MODEL_H

#include "lpl/model/gpt2.h"

/* 2 layers, d 32, 2 heads, context 128, GPT-2's vocabulary. */
static inline lpl_gpt2_config tiny_config(void)
{
    lpl_gpt2_config c = {2, 32, 2, 128, 50257, 1e-5f, {0, 0, 0}, 1, LPL_ARCH_GPT2, 0, 0, 0.0f, 0};
    return c;
}

#endif
