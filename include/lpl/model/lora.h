/* LoRA adapters on GPT-2 linear sites, placed with PEFT's rules:
 *   y = x W^T + b + scaling * B (A (dropout(x))),  scaling = alpha/r (alpha/sqrt(r) rsLoRA)
 * A is [r][in] (kaiming-uniform, bound 1/sqrt(in)), B is [out][r] (zeros).
 * Module names are "transformer.h.N.attn.c_attn" etc. A list target t matches name k
 * when k == t or k ends with "." + t (so "c_proj" matches attn.c_proj and mlp.c_proj);
 * a regex target must match the whole name (POSIX extended syntax; \d is accepted). */
#ifndef LPL_LORA_H
#define LPL_LORA_H

#include "lpl/core/common.h"
#include "lpl/model/gpt2_config.h"

LPL_BEGIN_DECLS

#define LPL_LORA_MAX_TARGETS 16
#define LPL_LORA_MAX_LAYERS 128

typedef struct {
    int r;                   /* rank, default 16 */
    float alpha;             /* default 32 */
    float dropout;           /* default 0.1 */
    int use_rslora;          /* scaling alpha/sqrt(r) */
    int n_targets;           /* list targets (PEFT target_modules as a list) */
    char targets[LPL_LORA_MAX_TARGETS][64];
    char regex[256];         /* non-empty: PEFT target_modules as a string (full match) */
    int n_layers;            /* 0 = all layers, else layers_to_transform */
    int layers[LPL_LORA_MAX_LAYERS];
    uint64_t seed;           /* initialisation and dropout masks */
} lpl_lora_config;

/* Defaults of the study: r 16, alpha 32, dropout 0.1, targets c_attn,c_proj,c_fc, seed 42. */
void lpl_lora_config_default(lpl_lora_config *c);

/* Fills selected[layer * LPL_N_SITES + site] with 1 for every module the placement
 * adapts (array of cfg->n_layer * 4). Returns LPL_ERR_INVALID when the placement matches
 * no module, a layer index is out of range, r < 1 or r exceeds a selected layer's
 * width, or the regex does not compile; the message names the problem. */
lpl_status lpl_lora_select(const lpl_lora_config *c, const lpl_gpt2_config *cfg,
                           uint8_t *selected, lpl_error *err);

typedef struct {
    int layer;
    lpl_site site;
    int in, out;
    float *A, *B;    /* [r][in], [out][r]: point into lora->params */
    float *dA, *dB;  /* point into lora->grads */
} lpl_lora_module;

typedef struct lpl_lora {
    lpl_lora_config cfg;
    lpl_gpt2_config model_cfg;
    float scaling;
    int n_modules;
    lpl_lora_module *modules;     /* in layer order, then site order */
    lpl_lora_module **by_site;    /* [n_layer * 4], NULL where not adapted */
    float *params, *grads;        /* n_params each, contiguous */
    int64_t n_params;
    uint64_t rng_state;           /* dropout masks */
    void *work;                   /* engine-private scratch for forward/backward */
} lpl_lora;

/* Creates adapters for a placement with PEFT's initialisation from cfg->seed.
 * Returns NULL with err set when the placement is invalid (see lpl_lora_select). */
lpl_lora *lpl_lora_attach(const lpl_lora_config *c, const lpl_gpt2_config *cfg, lpl_error *err);
/* Frees the adapters and their scratch; NULL is a no-op. */
void lpl_lora_free(lpl_lora *l);

/* Trainable parameter count of a placement for a config, without weights:
 * sum over selected modules of r * (in + out). Negative on an invalid placement. */
int64_t lpl_lora_param_count(const lpl_lora_config *c, const lpl_gpt2_config *cfg, lpl_error *err);

/* Writes a summary of the adapted modules, e.g. "24×attn.c_attn, 24×attn.c_proj,
 * 24×mlp.c_proj", into buf (always NUL-terminated). */
void lpl_lora_describe(const uint8_t *selected, const lpl_gpt2_config *cfg, char *buf, size_t size);

/* Frobenius norm of the learned update scaling * ||B A|| of module i. */
double lpl_lora_update_norm(const lpl_lora *l, int i);

/* Sets all adapter gradients to zero. */
void lpl_lora_zero_grads(lpl_lora *l);

/* Full module name of adapted module i, "transformer.h.N.attn.c_attn" (PEFT key stem). */
void lpl_lora_module_name(const lpl_lora *l, int i, char *buf, size_t size);

/* Name of a (layer, site) module: "transformer.h.N.<site>". */
void lpl_lora_site_module_name(int layer, lpl_site site, char *buf, size_t size);

/* ---- engine side (called by gpt2.c; public for tests) ---- */

/* Allocates per-sequence scratch for sequences up to max_T (no-op if already big
 * enough). LPL_ERR_NOMEM on failure. */
lpl_status lpl_lora_prepare(lpl_lora *l, int max_T, lpl_error *err);
/* Starts a forward: in training with dropout > 0 the dropout key becomes rng_state
 * and rng_state advances (one key per forward); otherwise no dropout. */
void lpl_lora_begin_forward(lpl_lora *l, int training);
/* Y[T][out] += scaling * B A dropout(X[T][in]); keeps A dropout(X) for backward. */
void lpl_lora_site_forward(lpl_lora *l, const lpl_lora_module *mod, float *Y, const float *X, int T);
/* Given dY of the last forward: dA, dB += gradients, dX[T][in] += gradient through the
 * branch (dX NULL: not computed). The dropout mask is the one the forward drew. */
void lpl_lora_site_backward(lpl_lora *l, const lpl_lora_module *mod, float *dX, const float *dY,
                            const float *X, int T);
/* Dropout multiplier (0 or 1/(1-p)) of element idx (= t * in + i) of the input of the
 * module at (layer, site) for the forward with dropout key `key`. */
float lpl_lora_dropout_scale(uint64_t key, int layer, lpl_site site, int64_t idx, float p);

LPL_END_DECLS

#endif
