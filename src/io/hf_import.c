/* Hugging Face GPT-2 checkpoints: config.json, tensor-name mapping with shape
 * checks, Conv1D transposition and tokenizer files. See docs/FORMATS.md. */
#include "hf_import.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpl/core/utf8.h"

/* ------------------------------------------------------------------ config.json */

/* Integer-valued number of key, or def when absent (def < 0: required). */
static lpl_status cfg_int(const cJSON *j, const char *key, int def, int *out, lpl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0)
            return lpl_fail(err, LPL_ERR_FORMAT, "config.json: key '%s' is missing", key);
        *out = def;
        return LPL_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > (1 << 24))
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: '%s' must be a positive integer", key);
    *out = (int)v->valuedouble;
    return LPL_OK;
}

/* A boolean key must be absent or equal to want (we support that variant only). */
static lpl_status cfg_bool_is(const cJSON *j, const char *key, int want, lpl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v))
        return LPL_OK;
    if (!cJSON_IsBool(v))
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: '%s' must be true or false", key);
    if (cJSON_IsTrue(v) != want)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: %s = %s is not supported", key,
                        want ? "false" : "true");
    return LPL_OK;
}

/* A number key in [lo, hi), or def when absent. */
static lpl_status cfg_num(const cJSON *j, const char *key, double def, double lo, double hi, float *out,
                          lpl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        *out = (float)def;
        return LPL_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble < hi) || !((float)v->valuedouble >= lo))
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: %s must be a number in [%g, %g)", key, lo, hi);
    *out = (float)v->valuedouble;
    return LPL_OK;
}

/* LlamaConfig / Qwen2Config (transformers' names and defaults). */
static lpl_status llama_fields(const cJSON *j, lpl_gpt2_config *c, lpl_error *err)
{
    lpl_status s;
    int head_dim = 0;
    if ((s = cfg_int(j, "num_hidden_layers", -1, &c->n_layer, err)) ||
        (s = cfg_int(j, "hidden_size", -1, &c->n_embd, err)) ||
        (s = cfg_int(j, "num_attention_heads", -1, &c->n_head, err)) ||
        (s = cfg_int(j, "num_key_value_heads", c->n_head, &c->n_kv_head, err)) ||
        (s = cfg_int(j, "intermediate_size", -1, &c->n_ff, err)) ||
        (s = cfg_int(j, "vocab_size", -1, &c->n_vocab, err)) ||
        (s = cfg_int(j, "max_position_embeddings", 2048, &c->n_ctx, err)) ||
        (s = cfg_int(j, "head_dim", c->n_embd / c->n_head, &head_dim, err)))
        return s;
    if ((s = cfg_num(j, "rms_norm_eps", 1e-6, 1e-30, 1, &c->ln_eps, err)) ||
        (s = cfg_num(j, "rope_theta", 10000.0, 1e-3, 1e12, &c->rope_theta, err)) ||
        (s = cfg_num(j, "attention_dropout", 0.0, 0, 1, &c->pdrop.attn, err)))
        return s;
    c->pdrop.embd = c->pdrop.resid = 0.0f;
    c->pdrop_stated = 1;
    if (head_dim * c->n_head != c->n_embd)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: head_dim %d x %d heads is not hidden_size %d",
                        head_dim, c->n_head, c->n_embd);
    /* a context this long only sizes tables here; cap it to what a state can hold */
    if (c->n_ctx > 65536)
        c->n_ctx = 65536;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (act && !cJSON_IsNull(act) && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu")))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: hidden_act '%s' is not supported (silu is)",
                        cJSON_IsString(act) ? act->valuestring : "?");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (rs && !cJSON_IsNull(rs))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: rope_scaling is not supported (plain RoPE only)");
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings");
    if (tie && !cJSON_IsNull(tie) && !cJSON_IsBool(tie))
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: 'tie_word_embeddings' must be true or false");
    /* transformers' default is tied; Llama checkpoints that untie say so */
    c->untied = tie && cJSON_IsFalse(tie);
    if ((s = cfg_bool_is(j, "attention_bias", 0, err)) || (s = cfg_bool_is(j, "mlp_bias", 0, err)) ||
        (s = cfg_bool_is(j, "rope_interleaved", 0, err)))
        return s;
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(j, "use_sliding_window");
    if (sw && cJSON_IsTrue(sw))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: use_sliding_window = true is not supported");
    if (c->n_embd % 32 || c->n_ff % 32)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "config.json: hidden_size %d and intermediate_size %d must be multiples of 32", c->n_embd,
                        c->n_ff);
    return lpl_gpt2_config_check(c, err) == LPL_OK ? LPL_OK : LPL_ERR_UNSUPPORTED;
}

static lpl_status cfg_fields(const cJSON *j, lpl_gpt2_config *c, lpl_error *err)
{
    lpl_status s;
    int n_pos = 0, n_inner = 0;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (mt && cJSON_IsString(mt) && (!strcmp(mt->valuestring, "llama") || !strcmp(mt->valuestring, "qwen2"))) {
        c->arch = !strcmp(mt->valuestring, "llama") ? LPL_ARCH_LLAMA : LPL_ARCH_QWEN2;
        return llama_fields(j, c, err);
    }
    if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "gpt2")))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: model_type '%s' is not 'gpt2', 'llama' or 'qwen2'",
                        cJSON_IsString(mt) ? mt->valuestring : "?");
    if ((s = cfg_int(j, "n_layer", -1, &c->n_layer, err)) || (s = cfg_int(j, "n_embd", -1, &c->n_embd, err)) ||
        (s = cfg_int(j, "n_head", -1, &c->n_head, err)) || (s = cfg_int(j, "vocab_size", -1, &c->n_vocab, err)))
        return s;
    if (cJSON_GetObjectItemCaseSensitive(j, "n_positions"))
        s = cfg_int(j, "n_positions", -1, &n_pos, err);
    else
        s = cfg_int(j, "n_ctx", -1, &n_pos, err);
    if (s)
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: 'n_positions' (or 'n_ctx') must be a positive integer");
    c->n_ctx = n_pos;
    if ((s = cfg_int(j, "n_inner", 4 * c->n_embd, &n_inner, err)))
        return s;
    if (n_inner != 4 * c->n_embd)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: n_inner %d is not 4 x n_embd", n_inner);
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon");
    c->ln_eps = 1e-5f;
    if (eps && !cJSON_IsNull(eps)) {
        /* compared as float: 1e-50 would become 0 (found by tests/fuzz) */
        if (!cJSON_IsNumber(eps) || !((float)eps->valuedouble > 0 && eps->valuedouble < 1))
            return lpl_fail(err, LPL_ERR_FORMAT, "config.json: layer_norm_epsilon must be a number in (0, 1)");
        c->ln_eps = (float)eps->valuedouble;
    }
    /* dropout rates: absent ones take GPT2Config's default, 0.1, as HF would */
    const char *pk[3] = {"embd_pdrop", "attn_pdrop", "resid_pdrop"};
    float *pd[3] = {&c->pdrop.embd, &c->pdrop.attn, &c->pdrop.resid};
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, pk[k]);
        *pd[k] = 0.1f;
        if (!v || cJSON_IsNull(v))
            continue;
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1))
            return lpl_fail(err, LPL_ERR_FORMAT, "config.json: %s must be a number in [0, 1)", pk[k]);
        *pd[k] = (float)v->valuedouble;
    }
    c->pdrop_stated = 1;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "activation_function");
    if (act && !cJSON_IsNull(act) && (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu_new")))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: activation_function '%s' is not supported (gelu_new is)",
                        cJSON_IsString(act) ? act->valuestring : "?");
    if ((s = cfg_bool_is(j, "scale_attn_weights", 1, err)) ||
        (s = cfg_bool_is(j, "scale_attn_by_inverse_layer_idx", 0, err)) ||
        (s = cfg_bool_is(j, "tie_word_embeddings", 1, err)))
        return s;
    if (c->n_embd % c->n_head)
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: n_head %d does not divide n_embd %d", c->n_head, c->n_embd);
    if (c->n_embd % 32)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "config.json: n_embd %d is not a multiple of 32", c->n_embd);
    return LPL_OK;
}

lpl_status lpl_hf_parse_config(const char *json, size_t len, lpl_gpt2_config *cfg, lpl_error *err)
{
    size_t bad;
    if (!lpl_utf8_validate((const uint8_t *)json, len, &bad))
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: not valid UTF-8 (byte %zu)", bad);
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j)
        return lpl_fail(err, LPL_ERR_FORMAT, "config.json: malformed JSON");
    lpl_status s = cJSON_IsObject(j) ? cfg_fields(j, cfg, err)
                                     : lpl_fail(err, LPL_ERR_FORMAT, "config.json: not a JSON object");
    cJSON_Delete(j);
    return s;
}

/* ------------------------------------------------------------------ tensor plan */

/* Per block, in GGUF order: HF suffix, GGUF suffix, Conv1D?, matrix? */
static const struct {
    const char *hf, *gguf;
    int conv1d;
} block_map[] = {
    {"ln_1.weight", "attn_norm.weight", 0},       {"ln_1.bias", "attn_norm.bias", 0},
    {"attn.c_attn.weight", "attn_qkv.weight", 1}, {"attn.c_attn.bias", "attn_qkv.bias", 0},
    {"attn.c_proj.weight", "attn_output.weight", 1}, {"attn.c_proj.bias", "attn_output.bias", 0},
    {"ln_2.weight", "ffn_norm.weight", 0},        {"ln_2.bias", "ffn_norm.bias", 0},
    {"mlp.c_fc.weight", "ffn_up.weight", 1},      {"mlp.c_fc.bias", "ffn_up.bias", 0},
    {"mlp.c_proj.weight", "ffn_down.weight", 1},  {"mlp.c_proj.bias", "ffn_down.bias", 0},
};
#define N_BLOCK_MAP ((int)(sizeof block_map / sizeof block_map[0]))

/* Our [rows][cols] of block entry k (rows 0 for vectors). */
static void block_shape(const lpl_gpt2_config *c, int k, int64_t *rows, int64_t *cols)
{
    int64_t C = c->n_embd;
    static const int64_t out_mult[] = {1, 1, 3, 3, 1, 1, 1, 1, 4, 4, 1, 1};
    static const int64_t in_mult[] = {0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 0};
    if (in_mult[k]) {
        *rows = out_mult[k] * C;
        *cols = in_mult[k] * C;
    } else {
        *rows = 0;
        *cols = out_mult[k] * C;
    }
}

/* Slot of a HF name in the plan (-1: skipped buffer, -2: lm_head, -3: unknown,
 * -4: layer out of range); strips "transformer.". */
static int slot_of(const lpl_gpt2_config *c, const char *name, int *layer)
{
    if (!strncmp(name, "transformer.", 12))
        name += 12;
    else if (!strcmp(name, "lm_head.weight"))
        return -2;
    if (!strcmp(name, "wte.weight")) return 0;
    if (!strcmp(name, "wpe.weight")) return 1;
    if (!strcmp(name, "ln_f.weight")) return 2 + c->n_layer * N_BLOCK_MAP;
    if (!strcmp(name, "ln_f.bias")) return 3 + c->n_layer * N_BLOCK_MAP;
    if (strncmp(name, "h.", 2) || name[2] < '0' || name[2] > '9')
        return -3;
    char *end;
    long l = strtol(name + 2, &end, 10);
    if (*end != '.' || l > 100000)
        return -3;
    *layer = (int)l;
    if (!strcmp(end + 1, "attn.bias") || !strcmp(end + 1, "attn.masked_bias"))
        return -1;
    for (int k = 0; k < N_BLOCK_MAP; k++)
        if (!strcmp(end + 1, block_map[k].hf))
            return l < c->n_layer ? 2 + (int)l * N_BLOCK_MAP + k : -4;
    return -3;
}

static void describe_slot(const lpl_gpt2_config *c, int slot, lpl_hf_entry *e)
{
    int last = 2 + c->n_layer * N_BLOCK_MAP;
    e->transpose = 0;
    e->is_matrix = 0;
    if (slot == 0) {
        snprintf(e->name, sizeof e->name, "token_embd.weight");
        e->rows = c->n_vocab;
        e->cols = c->n_embd;
        e->is_matrix = 1;
    } else if (slot == 1) {
        snprintf(e->name, sizeof e->name, "position_embd.weight");
        e->rows = c->n_ctx;
        e->cols = c->n_embd;
    } else if (slot >= last) {
        snprintf(e->name, sizeof e->name, "output_norm.%s", slot == last ? "weight" : "bias");
        e->rows = 0;
        e->cols = c->n_embd;
    } else {
        int l = (slot - 2) / N_BLOCK_MAP, k = (slot - 2) % N_BLOCK_MAP;
        snprintf(e->name, sizeof e->name, "blk.%d.%s", l, block_map[k].gguf);
        block_shape(c, k, &e->rows, &e->cols);
        e->transpose = block_map[k].conv1d;
        e->is_matrix = block_map[k].conv1d;
    }
}

/* The checkpoint shape an entry needs: Conv1D stores [in, out] = [cols, rows]. */
static int shape_matches(const lpl_hf_entry *e, const lpl_st_tensor *t)
{
    if (!e->rows)
        return t->n_dims == 1 && t->shape[0] == e->cols;
    if (t->n_dims != 2)
        return 0;
    return e->transpose ? (t->shape[0] == e->cols && t->shape[1] == e->rows)
                        : (t->shape[0] == e->rows && t->shape[1] == e->cols);
}

static void shape_str(const lpl_st_tensor *t, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->n_dims && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
}

/* The checkpoint shape an entry needs, as text. */
static void expected_str(const lpl_hf_entry *e, char *buf, size_t size)
{
    if (!e->rows)
        snprintf(buf, size, "[%lld]", (long long)e->cols);
    else if (e->transpose)
        snprintf(buf, size, "[%lld, %lld]", (long long)e->cols, (long long)e->rows);
    else
        snprintf(buf, size, "[%lld, %lld]", (long long)e->rows, (long long)e->cols);
}

/* lm_head.weight must have wte's shape; its values are compared row by row as they
 * stream in (src/io/hf_stream.c). */
static lpl_status check_tied_head(const lpl_st_tensor *head, const lpl_st_tensor *wte, lpl_error *err)
{
    if (head->n_dims != 2 || head->shape[0] != wte->shape[0] || head->shape[1] != wte->shape[1])
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "lm_head.weight has a different shape from the token embedding: untied LM heads are not supported");
    return LPL_OK;
}

int64_t lpl_hf_perm_row(int64_t r, int hd)
{
    int64_t h = r / hd, k = r % hd, half = hd / 2;
    return h * hd + (k % half) * 2 + k / half;
}

/* Appends an entry to a Llama-family plan. */
static void llama_entry(lpl_hf_plan *p, const char *hf, const char *gguf, int64_t rows, int64_t cols, int perm_hd)
{
    lpl_hf_entry *e = &p->e[p->n++];
    snprintf(e->hf, sizeof e->hf, "%s", hf);
    snprintf(e->name, sizeof e->name, "%s", gguf);
    e->rows = rows;
    e->cols = cols;
    e->is_matrix = rows > 0;
    e->perm_hd = perm_hd;
}

/* HF LlamaForCausalLM / Qwen2ForCausalLM names in the GGUF order of model_io.c. */
static lpl_status llama_layout(const lpl_gpt2_config *c, lpl_hf_plan *plan, lpl_error *err)
{
    static const char *const hf_site[LPL_N_SITES] = {NULL, NULL, NULL, NULL, "self_attn.q_proj",
                                                     "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    static const char *const gguf_site[LPL_N_SITES] = {NULL, NULL, NULL, NULL, "attn_q", "attn_k",
                                                       "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    plan->e = lpl_calloc((size_t)(3 + 12 * c->n_layer), sizeof *plan->e, "conversion plan", err);
    if (!plan->e)
        return LPL_ERR_NOMEM;
    const int64_t C = c->n_embd;
    char hf[96], gg[64];
    llama_entry(plan, "model.embed_tokens.weight", "token_embd.weight", c->n_vocab, C, 0);
    for (int l = 0; l < c->n_layer; l++) {
        snprintf(hf, sizeof hf, "model.layers.%d.input_layernorm.weight", l);
        snprintf(gg, sizeof gg, "blk.%d.attn_norm.weight", l);
        llama_entry(plan, hf, gg, 0, C, 0);
        for (int s = LPL_SITE_LLAMA_FIRST; s < LPL_SITE_LLAMA_END; s++) {
            int out, in;
            lpl_site_shape(c, (lpl_site)s, &out, &in);
            if (s == LPL_SITE_GATE) {
                snprintf(hf, sizeof hf, "model.layers.%d.post_attention_layernorm.weight", l);
                snprintf(gg, sizeof gg, "blk.%d.ffn_norm.weight", l);
                llama_entry(plan, hf, gg, 0, C, 0);
            }
            int perm = c->arch == LPL_ARCH_LLAMA && (s == LPL_SITE_Q || s == LPL_SITE_K) ? lpl_cfg_head_dim(c) : 0;
            snprintf(hf, sizeof hf, "model.layers.%d.%s.weight", l, hf_site[s]);
            snprintf(gg, sizeof gg, "blk.%d.%s.weight", l, gguf_site[s]);
            llama_entry(plan, hf, gg, out, in, perm);
            if (!lpl_site_has_bias(c, (lpl_site)s))
                continue;
            snprintf(hf, sizeof hf, "model.layers.%d.%s.bias", l, hf_site[s]);
            snprintf(gg, sizeof gg, "blk.%d.%s.bias", l, gguf_site[s]);
            llama_entry(plan, hf, gg, 0, out, perm);
        }
    }
    llama_entry(plan, "model.norm.weight", "output_norm.weight", 0, C, 0);
    if (c->untied)
        llama_entry(plan, "lm_head.weight", "output.weight", c->n_vocab, C, 0);
    return LPL_OK;
}

/* Maps a Llama-family checkpoint's tensors to the plan (see lpl_hf_plan_build). */
static lpl_status llama_build(const lpl_gpt2_config *cfg, const lpl_st_tensor *t, int64_t n, lpl_hf_plan *plan,
                              lpl_error *err)
{
    lpl_status s = LPL_OK;
    char shp[128], want[64];
    for (int64_t i = 0; i < n && s == LPL_OK; i++) {
        if (strstr(t[i].name, "rotary_emb.inv_freq")) /* a buffer older checkpoints saved */
            continue;
        int slot = -1;
        for (int k = 0; k < plan->n && slot < 0; k++)
            if (!strcmp(plan->e[k].hf, t[i].name))
                slot = k;
        if (slot < 0 && !cfg->untied && !strcmp(t[i].name, "lm_head.weight")) {
            plan->head = &t[i];
            continue;
        }
        if (slot < 0)
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: unexpected tensor '%s' (not part of a %s model of this config)",
                         t[i].name, lpl_arch_name(cfg->arch));
        else if (t[i].unsupported)
            s = lpl_fail(err, LPL_ERR_UNSUPPORTED, "checkpoint: tensor '%s' has element type %s", t[i].name,
                         t[i].unsupported);
        else if (plan->e[slot].src)
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: tensor '%s' appears twice", t[i].name);
        else if (!shape_matches(&plan->e[slot], &t[i])) {
            expected_str(&plan->e[slot], want, sizeof want);
            shape_str(&t[i], shp, sizeof shp);
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: tensor '%s' has shape %s but config.json implies %s",
                         t[i].name, shp, want);
        } else
            plan->e[slot].src = &t[i];
    }
    for (int i = 0; i < plan->n && s == LPL_OK; i++)
        if (!plan->e[i].src)
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: tensor '%s' is missing", plan->e[i].hf);
    if (s == LPL_OK && plan->head)
        s = check_tied_head(plan->head, plan->e[0].src, err);
    if (s != LPL_OK)
        lpl_hf_plan_free(plan);
    return s;
}

lpl_status lpl_hf_plan_layout(const lpl_gpt2_config *cfg, lpl_hf_plan *plan, lpl_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (lpl_cfg_is_llama(cfg)) {
        plan->cfg = *cfg;
        return llama_layout(cfg, plan, err);
    }
    plan->cfg = *cfg;
    plan->n = 4 + cfg->n_layer * N_BLOCK_MAP;
    plan->e = lpl_calloc((size_t)plan->n, sizeof *plan->e, "conversion plan", err);
    if (!plan->e)
        return LPL_ERR_NOMEM;
    for (int i = 0; i < plan->n; i++)
        describe_slot(cfg, i, &plan->e[i]);
    return LPL_OK;
}

lpl_status lpl_hf_plan_build(const lpl_gpt2_config *cfg, const lpl_st_tensor *t, int64_t n, lpl_hf_plan *plan,
                             lpl_error *err)
{
    lpl_status s = LPL_OK;
    const lpl_st_tensor *head = NULL;
    char shp[128];
    if (lpl_hf_plan_layout(cfg, plan, err) != LPL_OK)
        return LPL_ERR_NOMEM;
    if (lpl_cfg_is_llama(cfg))
        return llama_build(cfg, t, n, plan, err);
    for (int64_t i = 0; i < n && s == LPL_OK; i++) {
        int layer = -1, slot = slot_of(cfg, t[i].name, &layer);
        if (slot == -1)
            continue;
        if (slot == -3) {
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: unexpected tensor '%s' (not part of GPT2LMHeadModel)", t[i].name);
        } else if (slot == -4) {
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: tensor '%s' is for layer %d but config.json has n_layer %d",
                         t[i].name, layer, cfg->n_layer);
        } else if (t[i].unsupported) {
            s = lpl_fail(err, LPL_ERR_UNSUPPORTED, "checkpoint: tensor '%s' has element type %s", t[i].name,
                         t[i].unsupported);
        } else if (slot == -2) {
            head = &t[i];
        } else if (plan->e[slot].src) {
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: tensor '%s' appears twice (with and without 'transformer.')",
                         t[i].name);
        } else if (!shape_matches(&plan->e[slot], &t[i])) {
            char want[64];
            expected_str(&plan->e[slot], want, sizeof want);
            shape_str(&t[i], shp, sizeof shp);
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: tensor '%s' has shape %s but config.json implies %s",
                         t[i].name, shp, want);
        } else {
            plan->e[slot].src = &t[i];
        }
    }
    for (int i = 0; i < plan->n && s == LPL_OK; i++)
        if (!plan->e[i].src)
            s = lpl_fail(err, LPL_ERR_FORMAT, "checkpoint: tensor for '%s' is missing", plan->e[i].name);
    plan->head = head;
    if (s == LPL_OK && head)
        s = check_tied_head(head, plan->e[0].src, err);
    if (s != LPL_OK)
        lpl_hf_plan_free(plan);
    return s;
}

void lpl_hf_plan_free(lpl_hf_plan *plan)
{
    free(plan->e);
    plan->e = NULL;
    plan->n = 0;
}

/* ------------------------------------------------------------------ tokenizer files */

void lpl_hf_vocab_free(lpl_hf_vocab *v)
{
    for (int64_t i = 0; v->tokens && i < v->n_tokens; i++)
        free(v->tokens[i]);
    for (int64_t i = 0; v->merges && i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

static lpl_status parse_vocab(const char *json, size_t len, int n_vocab, lpl_hf_vocab *v, lpl_error *err)
{
    size_t bad;
    if (!lpl_utf8_validate((const uint8_t *)json, len, &bad))
        return lpl_fail(err, LPL_ERR_FORMAT, "vocab.json: not valid UTF-8 (byte %zu)", bad);
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j)
        return lpl_fail(err, LPL_ERR_FORMAT, "vocab.json: malformed JSON");
    lpl_status s = LPL_OK;
    int n = cJSON_GetArraySize(j);
    if (!cJSON_IsObject(j) || n < 1) {
        s = lpl_fail(err, LPL_ERR_FORMAT, "vocab.json: not a non-empty JSON object of token ids");
        goto done;
    }
    if (n > n_vocab) {
        s = lpl_fail(err, LPL_ERR_FORMAT, "vocab.json has %d tokens but config.json vocab_size is %d", n, n_vocab);
        goto done;
    }
    v->tokens = lpl_calloc((size_t)n_vocab, sizeof *v->tokens, "vocabulary", err);
    if (!v->tokens) {
        s = LPL_ERR_NOMEM;
        goto done;
    }
    v->n_tokens = n_vocab;
    for (const cJSON *e = j->child; e; e = e->next) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (d < 0 || d >= n || d != floor(d)) {
            s = lpl_fail(err, LPL_ERR_FORMAT, "vocab.json: token '%s' has id %g outside 0..%d", e->string, d, n - 1);
            goto done;
        }
        int id = (int)d;
        if (v->tokens[id]) {
            s = lpl_fail(err, LPL_ERR_FORMAT, "vocab.json: id %d is given to both '%s' and '%s'", id, v->tokens[id],
                         e->string);
            goto done;
        }
        if (!(v->tokens[id] = strdup(e->string))) {
            s = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: vocabulary");
            goto done;
        }
    }
    for (int i = n; i < n_vocab; i++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", i);
        if (!(v->tokens[i] = strdup(pad))) {
            s = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: vocabulary");
            goto done;
        }
    }
done:
    cJSON_Delete(j);
    return s;
}

static lpl_status parse_merges(const char *txt, size_t len, lpl_hf_vocab *v, lpl_error *err)
{
    size_t bad;
    if (!lpl_utf8_validate((const uint8_t *)txt, len, &bad))
        return lpl_fail(err, LPL_ERR_FORMAT, "merges.txt: not valid UTF-8 (byte %zu)", bad);
    int64_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += txt[i] == '\n';
    v->merges = lpl_calloc((size_t)lines, sizeof *v->merges, "merges", err);
    if (!v->merges)
        return LPL_ERR_NOMEM;
    int64_t lineno = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(txt + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - txt) : len, l = end - i;
        lineno++;
        if (l && txt[i + l - 1] == '\r')
            l--;
        const char *line = txt + i;
        i = end + 1;
        if (l == 0 || (lineno == 1 && l >= 8 && !strncmp(line, "#version", 8)))
            continue;
        const char *sp = memchr(line, ' ', l);
        if (!sp || sp == line || sp == line + l - 1 || memchr(sp + 1, ' ', (size_t)(line + l - sp - 1)) ||
            memchr(line, '\0', l))
            return lpl_fail(err, LPL_ERR_FORMAT, "merges.txt: line %lld is not two tokens separated by one space",
                            (long long)lineno);
        char *m = malloc(l + 1);
        if (!m)
            return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: merges");
        memcpy(m, line, l);
        m[l] = '\0';
        v->merges[v->n_merges++] = m;
    }
    return LPL_OK;
}

lpl_status lpl_hf_vocab_parse(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                              int n_vocab, lpl_hf_vocab *v, lpl_error *err)
{
    memset(v, 0, sizeof *v);
    lpl_status s = parse_vocab(vocab_json, vocab_len, n_vocab, v, err);
    if (s == LPL_OK)
        s = parse_merges(merges, merges_len, v, err);
    if (s != LPL_OK)
        lpl_hf_vocab_free(v);
    return s;
}
