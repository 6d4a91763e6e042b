/* GPT-2 shapes: the named presets (the one list the CLI, the page and the bench
 * read), the config check, and the four adaptable linear sites of a block. */
#include "lpl/model/gpt2_config.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int n_layer, n_embd, n_head, n_ctx, n_vocab;
} preset;

static const preset PRESETS[] = {
    {"tiny", 2, 64, 4, 64, 512},
    {"lab-small", 4, 128, 4, 256, 50257},
    {"distilgpt2", 6, 768, 12, 1024, 50257},
    {"gpt2", 12, 768, 12, 1024, 50257},
    {"gpt2-medium", 24, 1024, 16, 1024, 50257},
    {"gpt2-large", 36, 1280, 20, 1024, 50257},
    {"dialogpt-small", 12, 768, 12, 1024, 50257},
    {"dialogpt-medium", 24, 1024, 16, 1024, 50257},
    {"dialogpt-large", 36, 1280, 20, 1024, 50257},
};

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
            cfg->ln_eps = 1e-5f;
            /* every GPT-2 / DialoGPT config.json sets 0.1 for all three */
            cfg->pdrop = (lpl_gpt2_dropout){0.1f, 0.1f, 0.1f};
            cfg->pdrop_stated = 1;
            return LPL_OK;
        }
    }
    char names[256];
    lpl_gpt2_preset_list(names, sizeof names);
    return lpl_fail(err, LPL_ERR_INVALID, "unknown model preset '%s' (expected %s)", name ? name : "(null)", names);
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
    const float rates[3] = {c->pdrop.embd, c->pdrop.attn, c->pdrop.resid};
    for (int k = 0; k < 3; k++)
        if (!(rates[k] >= 0.0f && rates[k] < 1.0f))
            return lpl_fail(err, LPL_ERR_INVALID, "model config: %s = %g must be in [0, 1)",
                            (const char *[]){"embd_pdrop", "attn_pdrop", "resid_pdrop"}[k], rates[k]);
    return LPL_OK;
}

const char *lpl_site_name(lpl_site s)
{
    static const char *names[LPL_N_SITES] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
    return (s >= 0 && s < LPL_N_SITES) ? names[s] : "?";
}

void lpl_site_shape(const lpl_gpt2_config *cfg, lpl_site s, int *out_features, int *in_features)
{
    const int C = cfg->n_embd;
    static const int out_mul[LPL_N_SITES] = {3, 1, 4, 1}, in_mul[LPL_N_SITES] = {1, 1, 1, 4};
    *out_features = out_mul[s] * C;
    *in_features = in_mul[s] * C;
}
