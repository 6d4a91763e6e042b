/* GPT-2 (HF GPT2LMHeadModel) model: config, weights, forward and backward for one
 * sequence, with optional LoRA adapters on the four linear sites of each block.
 * Shapes: T tokens, C = n_embd, V = n_vocab, L = n_layer, H = n_head. */
#ifndef LPL_GPT2_H
#define LPL_GPT2_H

#include "lpl/core/common.h"
#include "lpl/model/gpt2_config.h"

LPL_BEGIN_DECLS

/* Base parameter count as HF counts it (LM head tied to wte, counted once). */
int64_t lpl_gpt2_param_count(const lpl_gpt2_config *cfg);

/* One block. Llama: ln1_w / ln2_w are input_layernorm / post_attention_layernorm
 * (RMSNorm, no bias: ln1_b = ln2_b = NULL). Sites the architecture lacks have a
 * NULL matrix; sites without a bias have b NULL. */
typedef struct {
    float *ln1_w, *ln1_b;          /* [C] */
    lpl_matrix w[LPL_N_SITES];      /* indexed by lpl_site; rows = out, cols = in */
    float *b[LPL_N_SITES];          /* biases [out] */
    float *ln2_w, *ln2_b;          /* [C] */
} lpl_gpt2_block;

typedef struct {
    lpl_gpt2_config cfg;
    lpl_matrix wte;          /* [V][C] token embedding, also the tied LM head */
    float *wpe;              /* [n_ctx][C]; NULL for llama (RoPE) */
    lpl_gpt2_block *blocks;  /* [L] */
    float *lnf_w, *lnf_b;    /* [C]; llama: model.norm, lnf_b NULL */
    lpl_matrix lm_head;      /* [V][C] when cfg.untied (llama), else data NULL: wte */
    /* Full-parameter training: when all tensors are fp32 and live in one buffer,
     * params points at it (n_params floats) and the pointers above point into it. */
    float *params;
    int64_t n_params;
    void *owned;             /* allocations and mappings released by lpl_gpt2_free */
    void (*release)(void *owned);
} lpl_gpt2_model;

/* A model with GPT-2's initialisation (normal 0.02, residual projections scaled by
 * 1/sqrt(2L), zero biases, unit LayerNorm gains) from a seed, all fp32 in one
 * buffer (trainable). Returns NULL with err set on a bad config or no memory. */
lpl_gpt2_model *lpl_gpt2_create_random(const lpl_gpt2_config *cfg, uint64_t seed, lpl_error *err);

/* Converts every 2-D matrix (wte and the four sites of each block) to type t
 * (f32, f16, q8_0, q4_0). A model converted away from f32 is no longer trainable
 * in full (params becomes NULL) but still trains LoRA adapters. */
lpl_status lpl_gpt2_convert(lpl_gpt2_model *m, lpl_dtype t, lpl_error *err);

/* Makes every tensor fp32 in one contiguous params buffer (dequantising if needed). */
lpl_status lpl_gpt2_make_trainable(lpl_gpt2_model *m, lpl_error *err);

/* Releases a model: release(owned) if set (it frees everything the model points to,
 * the blocks array included), then the malloc'd struct itself. NULL is fine.
 * lpl_gpt2_convert / make_trainable replace blocks, owned and release. */
void lpl_gpt2_free(lpl_gpt2_model *m);

/* Offset (in floats) of each tensor in the contiguous params layout, which follows
 * HF's state-dict order: wte, wpe, then per block ln_1.{w,b}, c_attn.{w,b},
 * attn.c_proj.{w,b}, ln_2.{w,b}, c_fc.{w,b}, mlp.c_proj.{w,b}, then ln_f.{w,b}.
 * Llama: embed_tokens, per block input_layernorm, q/k/v (each with its bias in
 * qwen2), o, post_attention_layernorm, gate, up, down, then norm and (untied)
 * lm_head. Matrices are stored [out][in] (rows = out). Absent tensors: -1. */
typedef struct {
    int64_t ln1_w, ln1_b, w[LPL_N_SITES], b[LPL_N_SITES], ln2_w, ln2_b;
    int64_t end; /* one past the block's last float */
} lpl_gpt2_block_offsets;
/* Fills the offsets of block `layer` (0-based) and returns the total float count;
 * top-level offsets come from lpl_gpt2_top_offsets. */
int64_t lpl_gpt2_block_offsets_of(const lpl_gpt2_config *cfg, int layer, lpl_gpt2_block_offsets *o);
typedef struct {
    int64_t wte, wpe, lnf_w, lnf_b, lm_head, total;
} lpl_gpt2_top_offsets;
/* Fills the offsets of the tensors outside the blocks, and the total float count. */
void lpl_gpt2_top_offsets_of(const lpl_gpt2_config *cfg, lpl_gpt2_top_offsets *o);

struct lpl_lora; /* see lora.h */

/* Activations and gradients for sequences of up to max_T tokens, allocated once.
 * full_grads != 0 also allocates a gradient buffer matching model->params. */
typedef struct lpl_gpt2_state lpl_gpt2_state;
lpl_gpt2_state *lpl_gpt2_state_new(const lpl_gpt2_model *m, int max_T, int full_grads, lpl_error *err);
/* Frees the state; NULL is a no-op. */
void lpl_gpt2_state_free(lpl_gpt2_state *s);
/* Bytes held by the state (activations + gradients). */
size_t lpl_gpt2_state_bytes(const lpl_gpt2_state *s);

typedef struct {
    double nll_sum;   /* sum of -log p(target) over scored tokens */
    int n_scored;     /* number of scored tokens */
    float loss;       /* nll_sum / n_scored (0 when nothing is scored) */
} lpl_loss;

/* Forward pass over tokens[0..T). If targets is non-NULL, computes cross-entropy of
 * targets[t] at position t over positions with mask[t] != 0 (mask NULL = all) and
 * keeps what backward needs. lora may be NULL. training != 0 applies LoRA dropout.
 * Returns LPL_ERR_INVALID for T < 1, T > max_T or n_ctx, or a token id out of range. */
lpl_status lpl_gpt2_forward(const lpl_gpt2_model *m, struct lpl_lora *lora, lpl_gpt2_state *s,
                            const int *tokens, const int *targets, const uint8_t *mask, int T,
                            int training, lpl_loss *out, lpl_error *err);

/* Logits of the last forward: [T][V] when it had no targets; with targets only the
 * scored positions' rows are computed (the LM head is the largest product), packed
 * in position order: [n_scored][V] (all T rows when mask was NULL). Backward
 * overwrites them with their gradient, to save a [T][V] buffer. */
const float *lpl_gpt2_logits(const lpl_gpt2_state *s);

/* -log p(target) of each scored position of the last forward with targets, in
 * position order (n_scored values, as counted in its lpl_loss). Valid until the next
 * forward or backward. */
const float *lpl_gpt2_token_nll(const lpl_gpt2_state *s);

/* Backward of the last forward (which must have had targets): the gradient of the
 * mean loss over scored tokens is ADDED to lora's gradients (if lora) and, when the
 * state has full gradients, to the full gradient buffer. One backward per forward:
 * a second call is refused. With no scored token it adds nothing. */
lpl_status lpl_gpt2_backward(const lpl_gpt2_model *m, struct lpl_lora *lora, lpl_gpt2_state *s,
                             lpl_error *err);

/* Full-parameter gradient buffer (n_params floats, same layout as model->params), or NULL. */
float *lpl_gpt2_state_grads(lpl_gpt2_state *s);
/* Sets the full-parameter gradients (if any) to zero. */
void lpl_gpt2_zero_grads(lpl_gpt2_state *s);
/* Largest sequence length the state was allocated for. */
int lpl_gpt2_state_max_T(const lpl_gpt2_state *s);

/* How the frozen base's Q8_0 products run: fp32 (weights dequantised while packing)
 * or int8 (activations and output gradients quantized per block of 32, int32 sums;
 * kernels.h lpl_linear_*_q8). LoRA branches, LayerNorm, attention, softmax, the loss
 * and the optimizer are fp32 either way; non-Q8_0 weights always run in fp32. */
typedef enum { LPL_COMPUTE_F32 = 0, LPL_COMPUTE_INT8 = 1 } lpl_compute;
/* "f32" or "int8". */
const char *lpl_compute_name(lpl_compute c);
/* Parses "f32" or "int8"; LPL_ERR_INVALID names the bad value. */
lpl_status lpl_compute_parse(const char *s, lpl_compute *out, lpl_error *err);
/* Sets the compute of later forward/backward calls on s (new states: f32). */
void lpl_gpt2_state_set_compute(lpl_gpt2_state *s, lpl_compute c);
/* The compute mode later calls on s use. */
lpl_compute lpl_gpt2_state_compute(const lpl_gpt2_state *s);

/* Base-model dropout of the training forwards on s, as HF's GPT-2 in train mode:
 * d->embd on wte + wpe, d->attn on the attention probabilities, d->resid on the
 * output of attn.c_proj and of mlp.c_proj (LoRA branch included) before each residual
 * add. Forwards with training = 0 never drop. Each training forward takes the next
 * key of a stream started from seed, and its masks are a counter-based hash of (key,
 * lpl_gpt2_drop_site, layer, element) that backward regenerates: no mask is stored.
 * A new state has all rates 0 (off). LPL_ERR_INVALID when a rate is outside [0, 1).
 * The Llama family has only the attention's (attention_dropout): its embd and resid
 * rates are set to 0. */
lpl_status lpl_gpt2_state_set_dropout(lpl_gpt2_state *s, const lpl_gpt2_dropout *d, uint64_t seed,
                                      lpl_error *err);
/* The key the next training forward on s will take (for checks that rebuild its masks). */
uint64_t lpl_gpt2_state_dropout_key(const lpl_gpt2_state *s);
/* Takes the key the next training forward would take and advances the stream, as a
 * training forward does; 0 (stream unchanged) when every rate is 0. For a host that
 * computes the forward elsewhere (a GPU) with the same masks. */
uint64_t lpl_gpt2_state_take_dropout_key(lpl_gpt2_state *s);
/* Makes key the one the next training forward on s takes (a host replaying keys). */
void lpl_gpt2_state_use_dropout_key(lpl_gpt2_state *s, uint64_t key);

typedef enum {
    LPL_DROP_EMBD = 0,       /* idx = t * C + i of the embedding sum (layer 0) */
    LPL_DROP_ATTN = 1,       /* idx = h << 32 | i << 16 | j (query i, key j) */
    LPL_DROP_RESID_ATTN = 2, /* idx = t * C + i of attn.c_proj's output */
    LPL_DROP_RESID_MLP = 3   /* idx = t * C + i of mlp.c_proj's output */
} lpl_gpt2_drop_site;
/* The mask stream of (site, layer) for lpl_dropout_scale (rng.h): a forward with key
 * multiplies element idx there by lpl_dropout_scale(key, stream, idx, rate). */
uint64_t lpl_gpt2_dropout_stream(lpl_gpt2_drop_site site, int layer);

/* Seconds spent per component since the state was created or reset. base_products is
 * the part of attention, mlp and lm_head spent in the frozen base's linear products
 * (forward and input gradient: what compute int8 changes), not a further share of total. */
typedef struct {
    double embed, attention, mlp, lora, lm_head, layernorm, total;
    double base_products;
} lpl_gpt2_timings;
/* Reads the timings of s into *t; reset starts them again from zero. */
void lpl_gpt2_get_timings(const lpl_gpt2_state *s, lpl_gpt2_timings *t);
void lpl_gpt2_reset_timings(lpl_gpt2_state *s);

/* Adds (sign +1) or removes (sign -1) the update scaling * B A of every adapter of l
 * to the weights it adapts, requantising them if they are quantized. LPL_ERR_INVALID
 * when l was made for another shape or sign is not +-1; LPL_ERR_NOMEM. */
lpl_status lpl_gpt2_merge_lora(lpl_gpt2_model *m, const struct lpl_lora *l, int sign, lpl_error *err);

LPL_END_DECLS

#endif
