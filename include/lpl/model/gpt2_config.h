/* Model shapes for every architecture the lab runs (GPT-2, and the Llama family:
 * llama, qwen2): config, named presets, the config check, and the linear sites of a
 * block that LoRA can adapt. This is the one place that says which sites each
 * architecture has and what shape they are; gpt2.c lays the parameters out from it. */
#ifndef LPL_GPT2_CONFIG_H
#define LPL_GPT2_CONFIG_H

#include "lpl/core/common.h"

LPL_BEGIN_DECLS

/* Dropout rates of HF's GPT2Config (embd_pdrop, attn_pdrop, resid_pdrop), which a
 * model in train mode applies; the engine applies them only when asked (gpt2.h
 * lpl_gpt2_state_set_dropout). */
typedef struct {
    float embd, attn, resid;
} lpl_gpt2_dropout;

/* Architectures, as Hugging Face's model_type / llama.cpp's general.architecture. */
typedef enum {
    LPL_ARCH_GPT2 = 0,  /* LayerNorm, learned positions, fused c_attn, GELU MLP, tied head */
    LPL_ARCH_LLAMA = 1, /* RMSNorm, RoPE (rotate-half), grouped-query attention, SwiGLU */
    LPL_ARCH_QWEN2 = 2  /* llama plus biases on q_proj, k_proj, v_proj */
} lpl_arch;

/* "gpt2", "llama", "qwen2" (NULL past the end). */
const char *lpl_arch_name(lpl_arch a);
/* Parses an architecture name; LPL_ERR_INVALID names the bad value. */
lpl_status lpl_arch_parse(const char *name, lpl_arch *out, lpl_error *err);

typedef struct {
    int n_layer;
    int n_embd;
    int n_head;
    int n_ctx;     /* maximum sequence length (position embeddings) */
    int n_vocab;
    float ln_eps;  /* 1e-5 for GPT-2 */
    lpl_gpt2_dropout pdrop; /* the model's own dropout rates (0.1 each for GPT-2) */
    int pdrop_stated;       /* 1: the model file (or preset) states pdrop; 0: it does not
                             * and pdrop holds GPT-2's 0.1, assumed by the loader */
    /* Llama family (all 0 for GPT-2, which a zeroed config is): */
    lpl_arch arch;
    int n_kv_head;          /* num_key_value_heads (grouped-query attention) */
    int n_ff;               /* intermediate_size of the SwiGLU MLP */
    float rope_theta;       /* RoPE base frequency (rope_theta) */
    int untied;             /* 1: lm_head is its own matrix (tie_word_embeddings false) */
} lpl_gpt2_config;

/* Attention head width (n_embd / n_head), key/value heads (n_head for GPT-2) and the
 * MLP's hidden width (4 n_embd for GPT-2, n_ff for llama). */
int lpl_cfg_head_dim(const lpl_gpt2_config *cfg);
int lpl_cfg_kv_heads(const lpl_gpt2_config *cfg);
int lpl_cfg_ff(const lpl_gpt2_config *cfg);
/* 1 when the architecture is of the Llama family (llama, qwen2). */
int lpl_cfg_is_llama(const lpl_gpt2_config *cfg);

/* The presets by index (0 .. count-1; NULL past the end), and their names joined
 * by ", " into buf (truncated to size). */
int lpl_gpt2_preset_count(void);
const char *lpl_gpt2_preset_name(int i);
void lpl_gpt2_preset_list(char *buf, size_t size);

/* Fills cfg from a preset name: "tiny" (test shape), "lab-small" (the bundled model's
 * shape), "distilgpt2", "gpt2", "gpt2-medium", "gpt2-large", "dialogpt-small",
 * "dialogpt-medium", "dialogpt-large"; Llama family: "llama-tiny", "qwen2-tiny" (test
 * shapes), "smollm2-135m", "smollm2-360m", "qwen2.5-0.5b", "tinyllama-1.1b" (their
 * config.json). LPL_ERR_INVALID names an unknown preset. */
lpl_status lpl_gpt2_preset(const char *name, lpl_gpt2_config *cfg, lpl_error *err);

/* Checks a config (positive sizes, n_embd % n_head == 0, n_embd % 32 == 0 so rows
 * can be quantized; for llama also n_head % n_kv_head == 0, an even head width,
 * n_ff % 32 == 0, rope_theta > 0). Returns LPL_ERR_INVALID with the offending field. */
lpl_status lpl_gpt2_config_check(const lpl_gpt2_config *cfg, lpl_error *err);

/* The linear sites of a block, in PEFT/HF module naming. GPT-2 has sites
 * [LPL_SITE_GPT2_FIRST, LPL_SITE_GPT2_END), the Llama family the seven after them;
 * arrays indexed by site (the block's weights, the adapters' by_site) are
 * LPL_N_SITES wide and leave the other architecture's entries empty. The order within
 * an architecture is the forward order (backward meets them in reverse). */
typedef enum {
    LPL_SITE_ATTN_QKV = 0,  /* transformer.h.N.attn.c_attn  [3C][C] */
    LPL_SITE_ATTN_PROJ = 1, /* transformer.h.N.attn.c_proj  [C][C]  */
    LPL_SITE_MLP_FC = 2,    /* transformer.h.N.mlp.c_fc     [4C][C] */
    LPL_SITE_MLP_PROJ = 3,  /* transformer.h.N.mlp.c_proj   [C][4C] */
    LPL_SITE_Q = 4,         /* model.layers.N.self_attn.q_proj  [H hd][C] */
    LPL_SITE_K = 5,         /* model.layers.N.self_attn.k_proj  [KV hd][C] */
    LPL_SITE_V = 6,         /* model.layers.N.self_attn.v_proj  [KV hd][C] */
    LPL_SITE_O = 7,         /* model.layers.N.self_attn.o_proj  [C][H hd] */
    LPL_SITE_GATE = 8,      /* model.layers.N.mlp.gate_proj     [F][C] */
    LPL_SITE_UP = 9,        /* model.layers.N.mlp.up_proj       [F][C] */
    LPL_SITE_DOWN = 10,     /* model.layers.N.mlp.down_proj     [C][F] */
    LPL_N_SITES = 11
} lpl_site;
#define LPL_SITE_GPT2_FIRST LPL_SITE_ATTN_QKV
#define LPL_SITE_GPT2_END (LPL_SITE_MLP_PROJ + 1)
#define LPL_SITE_LLAMA_FIRST LPL_SITE_Q
#define LPL_SITE_LLAMA_END (LPL_SITE_DOWN + 1)

/* The sites of cfg's architecture are [lpl_site_first(cfg), lpl_site_end(cfg)). */
int lpl_site_first(const lpl_gpt2_config *cfg);
int lpl_site_end(const lpl_gpt2_config *cfg);
/* 1 when site s has a bias in cfg's architecture (every GPT-2 site; q, k, v in qwen2). */
int lpl_site_has_bias(const lpl_gpt2_config *cfg, lpl_site s);

/* "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"; "self_attn.q_proj", ...,
 * "mlp.down_proj". */
const char *lpl_site_name(lpl_site s);
/* The module path of a block: "transformer.h" (GPT-2) or "model.layers" (llama). */
const char *lpl_block_prefix(const lpl_gpt2_config *cfg);
/* Output and input width of a site for a config. */
void lpl_site_shape(const lpl_gpt2_config *cfg, lpl_site s, int *out_features, int *in_features);

LPL_END_DECLS

#endif
