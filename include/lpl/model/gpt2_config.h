/* GPT-2 shapes: config, named presets, the config check, and the four linear sites
 * of a block that LoRA can adapt. */
#ifndef LPL_GPT2_CONFIG_H
#define LPL_GPT2_CONFIG_H

#include "lpl/core/common.h"

/* Dropout rates of HF's GPT2Config (embd_pdrop, attn_pdrop, resid_pdrop), which a
 * model in train mode applies; the engine applies them only when asked (gpt2.h
 * lpl_gpt2_state_set_dropout). */
typedef struct {
    float embd, attn, resid;
} lpl_gpt2_dropout;

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
} lpl_gpt2_config;

/* The presets by index (0 .. count-1; NULL past the end), and their names joined
 * by ", " into buf (truncated to size). */
int lpl_gpt2_preset_count(void);
const char *lpl_gpt2_preset_name(int i);
void lpl_gpt2_preset_list(char *buf, size_t size);

/* Fills cfg from a preset name: "tiny" (test shape), "lab-small" (the bundled model's
 * shape), "distilgpt2", "gpt2", "gpt2-medium", "gpt2-large", "dialogpt-small",
 * "dialogpt-medium", "dialogpt-large". LPL_ERR_INVALID names an unknown preset. */
lpl_status lpl_gpt2_preset(const char *name, lpl_gpt2_config *cfg, lpl_error *err);

/* Checks a config (positive sizes, n_embd % n_head == 0, n_embd % 32 == 0 so rows
 * can be quantized, ...). Returns LPL_ERR_INVALID with the offending field. */
lpl_status lpl_gpt2_config_check(const lpl_gpt2_config *cfg, lpl_error *err);

/* The four linear sites of a block, in PEFT/HF module naming. */
typedef enum {
    LPL_SITE_ATTN_QKV = 0,  /* transformer.h.N.attn.c_attn  [3C][C] */
    LPL_SITE_ATTN_PROJ = 1, /* transformer.h.N.attn.c_proj  [C][C]  */
    LPL_SITE_MLP_FC = 2,    /* transformer.h.N.mlp.c_fc     [4C][C] */
    LPL_SITE_MLP_PROJ = 3,  /* transformer.h.N.mlp.c_proj   [C][4C] */
    LPL_N_SITES = 4
} lpl_site;

/* "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj". */
const char *lpl_site_name(lpl_site s);
/* Output and input width of a site for a config. */
void lpl_site_shape(const lpl_gpt2_config *cfg, lpl_site s, int *out_features, int *in_features);

#endif
