/* The layers of GPT-2 as plain forward/backward pairs (llm.c style). Backward
 * functions ADD into their gradient outputs; weight-gradient pointers may be NULL
 * when the weights are frozen. Every output element is computed by one thread in a
 * fixed order, so results do not depend on the thread count. Used by gpt2.c and
 * exposed for the gradient-check tests and benchmarks. */
#ifndef LPL_GPT2_LAYERS_H
#define LPL_GPT2_LAYERS_H

#include "lpl/core/common.h"

/* out[T][C] = (inp - mean) * rstd * w + b; also keeps mean[T] and rstd[T]. */
void lpl_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int T, int C, float eps);
/* dinp[T][C] += ..., dw[C] += ..., db[C] += ... (dw/db may be NULL). */
void lpl_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int T, int C);

/* out[n] = gelu_new(inp[n]) (tanh approximation). */
void lpl_gelu_forward(float *out, const float *inp, int64_t n);
/* dinp[n] += dout[n] * gelu_new'(inp[n]). */
void lpl_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);
/* out[n] = tanh(x[n]) by the vectorised approximation gelu_new uses (within ~2 ulp
 * of the exact value; exactly +-1 for |x| >= ~9.1; NaN stays NaN). */
void lpl_tanh_row(float *out, const float *x, int64_t n);

/* Dropout on the attention probabilities (HF's attn_dropout): the probability of
 * query i for key j in head h is multiplied by lpl_dropout_scale(key, stream,
 * h << 32 | i << 16 | j, p) (rng.h), after the softmax and before the product with V.
 * The backward regenerates the same multipliers from the hash; nothing is stored. */
typedef struct {
    uint64_t key, stream;
    float p;
} lpl_attn_dropout;

/* Causal multi-head attention. qkv is [T][3C] (q | k | v, head h at columns h*hd),
 * out is [T][C], lse[H][T] keeps the log-sum-exp of each row of scaled scores so
 * backward can rebuild the probabilities without storing [H][T][T].
 * scratch holds H*T floats. drop NULL or p = 0: no dropout. */
void lpl_attention_forward(float *out, float *lse, const float *qkv, int T, int C, int H,
                           float *scratch, const lpl_attn_dropout *drop);
/* dqkv[T][3C] += gradient given dout[T][C] and the forward's qkv, out and lse; drop
 * must be the forward's. */
void lpl_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out,
                            const float *lse, int T, int C, int H, float *scratch,
                            const lpl_attn_dropout *drop);

/* Causal grouped-query attention (Llama family) on separate q [T][H hd], k and v
 * [T][KV hd] (head h uses key/value head h / (H / KV)); out [T][H hd], lse [H][T],
 * scratch H*T floats, dropout as above. Same kernels as lpl_attention_forward. */
void lpl_attention_gqa_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                               int T, int H, int KV, int hd, float *scratch, const lpl_attn_dropout *drop);
/* dq, dk, dv += gradients given dout and the forward's q, k, v, out and lse. */
void lpl_attention_gqa_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                const float *k, const float *v, const float *out, const float *lse, int T,
                                int H, int KV, int hd, float *scratch, const lpl_attn_dropout *drop);

/* nll[t] = -log softmax(logits[t])[targets[t]] for rows with mask[t] != 0 (mask NULL =
 * all rows), 0 elsewhere. lse (may be NULL) receives each scored row's log-sum-exp. */
void lpl_crossentropy_forward(float *nll, float *lse, const float *logits, const int *targets,
                              const uint8_t *mask, int T, int V);
/* dlogits[t] = scale * (softmax(logits[t]) - onehot(targets[t])) on scored rows, 0 on
 * the others (overwrites; dlogits may equal logits). lse from the forward saves two
 * passes over each row; NULL recomputes it. */
void lpl_crossentropy_backward(float *dlogits, const float *logits, const float *lse,
                               const int *targets, const uint8_t *mask, int T, int V, float scale);

/* out[n] = a[n] + b[n] (out may alias a). */
void lpl_residual_forward(float *out, const float *a, const float *b, int64_t n);

#endif
