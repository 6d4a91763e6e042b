/* Model shapes: the named presets (the one list the CLI, the page and the bench
 * read), the config check, and the adaptable linear sites of a block, for GPT-2 and
 * the Llama family. */
#include "lpl/model/gpt2_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int n_layer, n_embd, n_head, n_ctx, n_vocab;
    /* Llama family only (arch 0 = GPT-2 leaves the rest 0) */
    lpl_arch arch;
    int n_kv_head, n_ff;
    float rope_theta, eps;
    int untied;
} preset;

/* The Llama-family rows are the models' config.json on the Hub. */
static const preset PRESETS[] = {
    {"tiny", 2, 64, 4, 64, 512, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"lab-small", 4, 128, 4, 256, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"distilgpt2", 6, 768, 12, 1024, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"gpt2", 12, 768, 12, 1024, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"gpt2-medium", 24, 1024, 16, 1024, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"gpt2-large", 36, 1280, 20, 1024, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"dialogpt-small", 12, 768, 12, 1024, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"dialogpt-medium", 24, 1024, 16, 1024, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"dialogpt-large", 36, 1280, 20, 1024, 50257, LPL_ARCH_GPT2, 0, 0, 0.0f, 0.0f, 0},
    {"llama-tiny", 2, 64, 4, 64, 512, LPL_ARCH_LLAMA, 2, 128, 10000.0f, 1e-5f, 1},
    {"qwen2-tiny", 2, 64, 4, 64, 512, LPL_ARCH_QWEN2, 2, 128, 1000000.0f, 1e-6f, 0},
    {"smollm2-135m", 30, 576, 9, 8192, 49152, LPL_ARCH_LLAMA, 3, 1536, 100000.0f, 1e-5f, 0},
    {"smollm2-360m", 32, 960, 15, 8192, 49152, LPL_ARCH_LLAMA, 5, 2560, 100000.0f, 1e-5f, 0},
    {"qwen2.5-0.5b", 24, 896, 14, 32768, 151936, LPL_ARCH_QWEN2, 2, 4864, 1000000.0f, 1e-6f, 0},
    {"tinyllama-1.1b", 22, 2048, 32, 2048, 32000, LPL_ARCH_LLAMA, 4, 5632, 10000.0f, 1e-5f, 1},
};

const char *lpl_arch_name(lpl_arch a)
{
    static const char *names[] = {"gpt2", "llama", "qwen2"};
    return (unsigned)a < 3 ? names[a] : NULL;
}

lpl_status lpl_arch_parse(const char *name, lpl_arch *out, lpl_error *err)
{
    for (int a = 0; a < 3; a++)
        if (name && !strcmp(name, lpl_arch_name((lpl_arch)a))) {
            *out = (lpl_arch)a;
            return LPL_OK;
        }
    return lpl_fail(err, LPL_ERR_INVALID, "architecture '%s' is not one of gpt2, llama, qwen2", name ? name : "(null)");
}

int lpl_cfg_is_llama(const lpl_gpt2_config *c) { return c->arch == LPL_ARCH_LLAMA || c->arch == LPL_ARCH_QWEN2; }
int lpl_cfg_head_dim(const lpl_gpt2_config *c) { return c->n_head > 0 ? c->n_embd / c->n_head : 0; }
int lpl_cfg_kv_heads(const lpl_gpt2_config *c) { return lpl_cfg_is_llama(c) ? c->n_kv_head : c->n_head; }
int lpl_cfg_ff(const lpl_gpt2_config *c) { return lpl_cfg_is_llama(c) ? c->n_ff : 4 * c->n_embd; }

#define N_PRESETS ((int)(sizeof PRESETS / sizeof PRESETS[0]))

int lpl_gpt2_preset_count(void) { return N_PRESETS; }

const char *lpl_gpt2_preset_name(int i) { return i >= 0 && i < N_PRESETS ? PRESETS[i].name : NULL; }

void lpl_gpt2_preset_list(char *buf, size_t size)
{
    size_t k = 0;
    if (size)
        buf[0] = '\0';
    for (int i = 0; i < N_PRESETS && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%s", i ? ", " : "", PRESETS[i].name);
}

lpl_status lpl_gpt2_preset(const char *name, lpl_gpt2_config *cfg, lpl_error *err)
{
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++) {
        if (name && strcmp(name, PRESETS[i].name) == 0) {
            cfg->n_layer = PRESETS[i].n_layer;
            cfg->n_embd = PRESETS[i].n_embd;
            cfg->n_head = PRESETS[i].n_head;
            cfg->n_ctx = PRESETS[i].n_ctx;
            cfg->n_vocab = PRESETS[i].n_vocab;
            const preset *p = &PRESETS[i];
            cfg->ln_eps = 1e-5f;
            /* every GPT-2 / DialoGPT config.json sets 0.1 for all three */
            cfg->pdrop = (lpl_gpt2_dropout){0.1f, 0.1f, 0.1f};
            cfg->pdrop_stated = 1;
            cfg->arch = p->arch;
            cfg->n_kv_head = p->n_kv_head;
            cfg->n_ff = p->n_ff;
            cfg->rope_theta = p->rope_theta;
            cfg->untied = p->untied;
            if (p->arch != LPL_ARCH_GPT2) {
                cfg->ln_eps = p->eps;
                /* their configs have attention_dropout 0.0 and no other dropout */
                cfg->pdrop = (lpl_gpt2_dropout){0.0f, 0.0f, 0.0f};
            }
            return LPL_OK;
        }
    }
    char names[256];
    lpl_gpt2_preset_list(names, sizeof names);
    return lpl_fail(err, LPL_ERR_INVALID, "unknown model preset '%s' (expected %s)", name ? name : "(null)", names);
}

/* The Llama family's own fields. */
static lpl_status llama_check(const lpl_gpt2_config *c, lpl_error *err)
{
    if (c->n_kv_head < 1 || c->n_head % c->n_kv_head != 0)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "model config: num_key_value_heads = %d must divide num_attention_heads = %d",
                        c->n_kv_head, c->n_head);
    if (c->n_head > 0 && (c->n_embd / c->n_head) % 2 != 0)
        return lpl_fail(err, LPL_ERR_INVALID, "model config: head width %d must be even (RoPE rotates halves)",
                        c->n_embd / c->n_head);
    if (c->n_ff < LPL_QK || c->n_ff % LPL_QK != 0 || c->n_ff > 1 << 20)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "model config: intermediate_size = %d must be a positive multiple of %d (rows must quantize)",
                        c->n_ff, LPL_QK);
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
        return lpl_fail(err, LPL_ERR_INVALID, "model config: rope_theta = %g must be positive", c->rope_theta);
    if (c->pdrop.embd != 0.0f || c->pdrop.resid != 0.0f)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "model config: the Llama family has only attention_dropout (embedding and residual rates must be 0)");
    return LPL_OK;
}

lpl_status lpl_gpt2_config_check(const lpl_gpt2_config *c, lpl_error *err)
{
    if (c->n_layer < 1 || c->n_layer > 1024)
        return lpl_fail(err, LPL_ERR_INVALID, "model config: n_layer = %d must be in 1..1024", c->n_layer);
    if (c->n_embd < 1 || c->n_embd > 65536)
        return lpl_fail(err, LPL_ERR_INVALID, "model config: n_embd = %d must be in 1..65536", c->n_embd);
    if (c->n_head < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "model config: n_head = %d must be positive", c->n_head);
    if (c->n_embd % c->n_head != 0)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "model config: n_embd = %d is not divisible by n_head = %d", c->n_embd, c->n_head);
    if (c->n_embd % LPL_QK != 0)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "model config: n_embd = %d is not a multiple of %d (rows must quantize)",
                        c->n_embd, LPL_QK);
    if (c->n_ctx < 1 || c->n_ctx > 1 << 16)
        return lpl_fail(err, LPL_ERR_INVALID, "model config: n_ctx = %d must be in 1..65536", c->n_ctx);
    if (c->n_vocab < 1 || c->n_vocab > 1 << 24)
        return lpl_fail(err, LPL_ERR_INVALID, "model config: n_vocab = %d must be in 1..16777216", c->n_vocab);
    if (!(c->ln_eps > 0.0f) || !(c->ln_eps < 1.0f))
        return lpl_fail(err, LPL_ERR_INVALID, "model config: ln_eps = %g must be in (0, 1)", c->ln_eps);
    if (lpl_arch_name(c->arch) == NULL)
        return lpl_fail(err, LPL_ERR_INVALID, "model config: unknown architecture %d", (int)c->arch);
    if (lpl_cfg_is_llama(c)) {
        lpl_status st = llama_check(c, err);
        if (st != LPL_OK)
            return st;
    }
    const float rates[3] = {c->pdrop.embd, c->pdrop.attn, c->pdrop.resid};
    for (int k = 0; k < 3; k++)
        if (!(rates[k] >= 0.0f && rates[k] < 1.0f))
            return lpl_fail(err, LPL_ERR_INVALID, "model config: %s = %g must be in [0, 1)",
                            (const char *[]){"embd_pdrop", "attn_pdrop", "resid_pdrop"}[k], rates[k]);
    return LPL_OK;
}

const char *lpl_site_name(lpl_site s)
{
    static const char *names[LPL_N_SITES] = {
        "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj",
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    return (s >= 0 && s < LPL_N_SITES) ? names[s] : "?";
}

const char *lpl_block_prefix(const lpl_gpt2_config *cfg)
{
    return lpl_cfg_is_llama(cfg) ? "model.layers" : "transformer.h";
}

int lpl_site_first(const lpl_gpt2_config *cfg) { return lpl_cfg_is_llama(cfg) ? LPL_SITE_LLAMA_FIRST : LPL_SITE_GPT2_FIRST; }
int lpl_site_end(const lpl_gpt2_config *cfg) { return lpl_cfg_is_llama(cfg) ? LPL_SITE_LLAMA_END : LPL_SITE_GPT2_END; }

int lpl_site_has_bias(const lpl_gpt2_config *cfg, lpl_site s)
{
    if (!lpl_cfg_is_llama(cfg))
        return s < LPL_SITE_GPT2_END;
    return cfg->arch == LPL_ARCH_QWEN2 && (s == LPL_SITE_Q || s == LPL_SITE_K || s == LPL_SITE_V);
}

void lpl_site_shape(const lpl_gpt2_config *cfg, lpl_site s, int *out_features, int *in_features)
{
    const int C = cfg->n_embd, F = lpl_cfg_ff(cfg);
    const int kv = lpl_cfg_kv_heads(cfg) * lpl_cfg_head_dim(cfg);
    int out = 0, in = 0;
    switch (s) {
    case LPL_SITE_ATTN_QKV: out = 3 * C, in = C; break;
    case LPL_SITE_ATTN_PROJ: out = C, in = C; break;
    case LPL_SITE_MLP_FC: out = 4 * C, in = C; break;
    case LPL_SITE_MLP_PROJ: out = C, in = 4 * C; break;
    case LPL_SITE_Q: case LPL_SITE_O: out = C, in = C; break;
    case LPL_SITE_K: case LPL_SITE_V: out = kv, in = C; break;
    case LPL_SITE_GATE: case LPL_SITE_UP: out = F, in = C; break;
    case LPL_SITE_DOWN: out = C, in = F; break;
    default: break;
    }
    *out_features = out;
    *in_features = in;
}
