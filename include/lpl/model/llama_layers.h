/* The layers the Llama family adds to GPT-2's (gpt2_layers.h): RMSNorm, rotary
 * position embeddings in Hugging Face's rotate-half layout, and the SwiGLU gate.
 * Backward functions ADD into their gradient outputs (weight gradients may be
 * NULL); rows are split across the thread pool, each output written by one chunk. */
#ifndef LPL_LLAMA_LAYERS_H
#define LPL_LLAMA_LAYERS_H

#include "lpl/core/common.h"

/* out[T][C] = inp * rstd * w with rstd[t] = 1 / sqrt(mean(inp[t]^2) + eps) (HF's
 * LlamaRMSNorm); keeps rstd[T]. */
void lpl_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int T, int C, float eps);
/* dinp[T][C] += ..., dw[C] += ... (dw may be NULL; dinp may be NULL). */
void lpl_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                          const float *rstd, int T, int C);

/* The RoPE table for positions 0..T-1 and head width hd: cos[T][hd/2] then
 * sin[T][hd/2], angle t * theta^(-2i/hd) (computed in double, stored as float). */
void lpl_rope_table(float *table, int T, int hd, float theta);
/* Rotates x[T][n_heads * hd] in place, position t by its angles: for i < hd/2,
 * (x_i, x_{i+hd/2}) -> (x_i cos - x_{i+hd/2} sin, x_{i+hd/2} cos + x_i sin). */
void lpl_rope_forward(float *x, const float *table, int T, int n_heads, int hd);
/* The transpose (inverse) rotation, applied in place to a gradient. */
void lpl_rope_backward(float *dx, const float *table, int T, int n_heads, int hd);

/* h[T][F] = silu(g) * u (g and u are [T][F]). */
void lpl_swiglu_forward(float *h, const float *g, const float *u, int64_t n);
/* dg[n] += dh * u * silu'(g), du[n] += dh * silu(g). */
void lpl_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, int64_t n);

#endif
