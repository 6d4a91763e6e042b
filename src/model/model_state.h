/* The per-sequence state of the model engine (activations, gradients, dropout
 * keys, timings) and the pieces every architecture's block uses: the frozen base's
 * products in the state's compute, a site's forward and backward with its LoRA
 * branch, and the base dropout masks. Private to src/model/ (gpt2.c, llama.c). */
#ifndef LPL_MODEL_STATE_H
#define LPL_MODEL_STATE_H

#include "lpl/model/gpt2.h"
#include "lpl/model/gpt2_layers.h"
#include "lpl/model/lora.h"

struct lpl_gpt2_state {
    lpl_gpt2_config cfg;
    int max_T;
    /* activations kept for backward, per layer [L][T][...] */
    float *resid;      /* [L+1][T][C]: input of each block, then input of ln_f */
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; /* [L][T] */
    float *qkv;        /* [L][T][3C] (GPT-2, rows q|k|v); llama: [L] blocks of q [T][C],
                        * k [T][KV hd], v [T][KV hd], q and k after RoPE */
    float *atty;       /* [L][T][C] attention output before c_proj */
    float *lse;        /* [L][H][T] */
    float *res2;       /* [L][T][C] residual after attention */
    float *fch;        /* [L][T][4C] c_fc output before gelu; llama: [L] blocks of gate
                        * [T][F] then up [T][F] */
    float *lnf, *lnf_mean, *lnf_rstd; /* [T][C], [T], [T] */
    float *logits;     /* [T][V]; with targets only the scored rows, packed */
    float *nll, *ce_lse; /* [T] per scored row */
    /* recomputed / scratch */
    float *ln_buf;     /* [T][C] */
    float *gelu_buf;   /* [T][4C]; llama: silu(gate) * up [T][F] */
    float *rope;       /* llama: cos [max_T][hd/2] then sin [max_T][hd/2] */
    float *attn_scratch; /* [H][T] */
    /* backward */
    float *dres, *dC;  /* [T][C] */
    float *d3C;        /* [T][3C]; llama: [T][C + 2 KV hd] */
    float *d4C_a, *d4C_b; /* [T][4C]; llama: [T][2F] */
    /* last forward */
    int T, has_targets, n_scored;
    int backward_done; /* backward consumed the logits of the last forward */
    int *tokens, *targets;
    int *rows, *row_targets; /* scored positions and their targets, packed */
    uint8_t *mask;
    /* full-parameter gradients */
    float *grads;
    int64_t n_grads;
    lpl_gpt2_timings tm;
    lpl_compute compute; /* base products in fp32 or int8 */
    /* base-model dropout: rates, the key stream, the last forward's key */
    lpl_gpt2_dropout drop;
    uint64_t drop_next, drop_key;
    int drop_on; /* the last forward was a training forward with some rate > 0 */
    size_t bytes;
    void *buf;
};


/* dst[n] = src[n] * the mask of (site, layer) of the last forward (dst may be src). */
void lpl_ms_drop_apply(const lpl_gpt2_state *s, float *dst, const float *src, int64_t n, lpl_gpt2_drop_site site,
                       int layer, float p);
/* The last forward's attention dropout of layer l (filled into buf), or NULL. */
const lpl_attn_dropout *lpl_ms_attn_drop(const lpl_gpt2_state *s, int l, lpl_attn_dropout *buf);
/* Residual dropout rate of the last forward (0: none). */
float lpl_ms_resid_rate(const lpl_gpt2_state *s);

/* Y = X W^T + bias (bias may be NULL) in the state's compute, timed as base_products. */
void lpl_ms_base_forward(lpl_gpt2_state *s, float *Y, const float *X, const lpl_matrix *W, const float *bias,
                         int T);
/* dX += dY W in the state's compute. */
void lpl_ms_base_backward_input(lpl_gpt2_state *s, float *dX, const float *dY, const lpl_matrix *W, int T);

/* Y = X W^T + b of block l's site, plus its LoRA branch when adapted; time into *bucket. */
void lpl_ms_site_forward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, lpl_site site,
                         float *Y, const float *X, int T, double *bucket);

/* Full-parameter gradient pointers of one block (all NULL without full gradients;
 * NULL too for tensors the architecture lacks). */
typedef struct {
    float *ln1_w, *ln1_b, *w[LPL_N_SITES], *b[LPL_N_SITES], *ln2_w, *ln2_b;
} lpl_ms_block_grads;
void lpl_ms_block_grads_of(const lpl_gpt2_state *s, int l, lpl_ms_block_grads *g);

/* dX = dY W (overwritten), plus weight/bias gradients and the LoRA branch backward.
 * dX NULL: nobody needs the input gradient (the lowest adapted site), skip it. */
void lpl_ms_site_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, const lpl_ms_block_grads *g,
                          int l, lpl_site site, float *dX, const float *dY, const float *X, int T, double *bucket);

#endif
