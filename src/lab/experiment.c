/* Experiment config: defaults of the study, the experiment JSON, placement presets
 * and command-line placements, and parameter accounting per placement. */
#include "experiment_internal.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void lpl_experiment_default(lpl_experiment_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "models/lab-small.q8_0.gguf");
    snprintf(c->train, sizeof c->train, "data/alpaca_train.json");
    snprintf(c->eval, sizeof c->eval, "data/alpaca_eval.json");
    c->n_train = 100;
    c->n_eval = 20;
    c->max_len = 0;
    c->r = 16;
    c->alpha = 32.0f;
    c->dropout = 0.1f;
    c->epochs = 3;
    c->batch_size = 1;
    c->lr = 2e-4f;
    c->schedule = LPL_SCHED_COSINE;
    c->grad_clip = 1.0f;
    c->seed = 42;
    c->seeds = 1;
    c->shuffle = 1;
    c->compute = LPL_COMPUTE_INT8;
    c->base_dropout = LPL_BASE_DROPOUT_CONFIG;
    const char *names[] = {"baseline", "ffn", "attn"};
    for (int i = 0; i < 3; i++)
        lpl_placement_preset(names[i], &c->placements[i], NULL);
    c->n_placements = 3;
}

int lpl_experiment_max_len(int max_len, int n_ctx)
{
    if (max_len > 0)
        return max_len;
    return n_ctx < LPL_MAX_LEN_DEFAULT ? n_ctx : LPL_MAX_LEN_DEFAULT;
}

void lpl_experiment_saved_default(lpl_experiment_config *c)
{
    lpl_experiment_default(c);
    c->max_len = LPL_MAX_LEN_DEFAULT; /* results.json always recorded the number used */
    c->base_dropout = 0.0f;
    c->compute = LPL_COMPUTE_F32;
}

void lpl_experiment_quick(lpl_experiment_config *c)
{
    c->n_train = 8;
    c->n_eval = 4;
    c->epochs = 1;
    c->max_len = 96;
}

/* ---------------------------------------------------------------- placements */

typedef struct {
    const char *name;
    const char *targets[8];
    const char *description;
} preset_def;

static const preset_def presets[] = {
    {"baseline", {"c_attn", "c_proj", "c_fc", NULL}, "PEFT c_attn, c_proj, c_fc (the study’s “all”)"},
    {"ffn", {"c_fc", NULL}, "PEFT c_fc (the study’s “feed-forward only”)"},
    {"attn", {"c_attn", "c_proj", NULL}, "PEFT c_attn, c_proj (the study’s “attention only”)"},
    {"all-linear", {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}, "all four linear modules"},
    {"attn-exact", {"attn.c_attn", "attn.c_proj", NULL}, "attn.c_attn, attn.c_proj only"},
    {"mlp-exact", {"mlp.c_fc", "mlp.c_proj", NULL}, "mlp.c_fc, mlp.c_proj only"},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

/* The Llama family's presets, in PEFT's module names. The study's three names mean
 * the same there (baseline = every linear module, ffn = the MLP, attn = attention),
 * so an experiment's placements follow the loaded model's architecture. */
#define LLAMA_ALL {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", NULL}
static const preset_def llama_presets[] = {
    {"all-linear", LLAMA_ALL, "all seven linear modules (PEFT's all-linear)"},
    {"attn", {"q_proj", "k_proj", "v_proj", "o_proj", NULL}, "attention: q_proj, k_proj, v_proj, o_proj"},
    {"mlp", {"gate_proj", "up_proj", "down_proj", NULL}, "MLP: gate_proj, up_proj, down_proj"},
    {"qv", {"q_proj", "v_proj", NULL}, "q_proj, v_proj (the LoRA paper's original choice)"},
    {"baseline", LLAMA_ALL, "the study's “all”: every linear module"},
    {"ffn", {"gate_proj", "up_proj", "down_proj", NULL}, "the study's “feed-forward only”: the MLP"},
};
#define N_LLAMA_PRESETS ((int)(sizeof llama_presets / sizeof llama_presets[0]))

static const preset_def *find_preset(const preset_def *table, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(name, table[i].name))
            return &table[i];
    return NULL;
}

/* 1 when p's list targets are exactly preset d's. */
static int targets_are(const lpl_placement *p, const preset_def *d)
{
    int n = 0;
    while (n < 8 && d->targets[n])
        n++;
    if (p->lora.regex[0] || p->lora.n_targets != n)
        return 0;
    for (int k = 0; k < n; k++)
        if (strcmp(p->lora.targets[k], d->targets[k]))
            return 0;
    return 1;
}

static void set_targets(lpl_lora_config *lc, const preset_def *d)
{
    lc->n_targets = 0;
    for (int k = 0; k < 8 && d->targets[k]; k++)
        snprintf(lc->targets[lc->n_targets++], sizeof lc->targets[0], "%s", d->targets[k]);
}

void lpl_placement_retarget(lpl_placement *p, const lpl_gpt2_config *mc)
{
    int llama = lpl_cfg_is_llama(mc);
    const preset_def *other = llama ? find_preset(presets, N_PRESETS, p->name)
                                    : find_preset(llama_presets, N_LLAMA_PRESETS, p->name);
    const preset_def *mine = llama ? find_preset(llama_presets, N_LLAMA_PRESETS, p->name)
                                   : find_preset(presets, N_PRESETS, p->name);
    if (other && mine && targets_are(p, other))
        set_targets(&p->lora, mine);
}

int lpl_placement_preset_count_arch(int llama) { return llama ? N_LLAMA_PRESETS : N_PRESETS; }

const char *lpl_placement_preset_name_arch(int llama, int i)
{
    return i >= 0 && i < lpl_placement_preset_count_arch(llama) ? (llama ? llama_presets : presets)[i].name : NULL;
}

const char *lpl_placement_preset_description_arch(int llama, int i)
{
    return i >= 0 && i < lpl_placement_preset_count_arch(llama) ? (llama ? llama_presets : presets)[i].description
                                                                 : NULL;
}

int lpl_placement_preset_count(void) { return N_PRESETS; }

const char *lpl_placement_preset_name(int i) { return i >= 0 && i < N_PRESETS ? presets[i].name : NULL; }

const char *lpl_placement_preset_description(int i)
{
    return i >= 0 && i < N_PRESETS ? presets[i].description : NULL;
}

static void placement_clear(lpl_placement *p)
{
    memset(p, 0, sizeof *p);
    lpl_lora_config_default(&p->lora);
    p->lora.n_targets = 0;
    p->lora.regex[0] = '\0';
    p->lora.n_layers = 0;
}

lpl_status lpl_placement_preset(const char *name, lpl_placement *p, lpl_error *err)
{
    const preset_def *d = find_preset(presets, N_PRESETS, name);
    if (!d)
        d = find_preset(llama_presets, N_LLAMA_PRESETS, name);
    if (!d)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "unknown placement preset '%s' (known: baseline, ffn, attn, all-linear, "
                        "attn-exact, mlp-exact; for Llama-family models also mlp, qv; or NAME=TARGETS[@LAYERS])",
                        name);
    placement_clear(p);
    snprintf(p->name, sizeof p->name, "%s", name);
    set_targets(&p->lora, d);
    return LPL_OK;
}

static int valid_name(const char *s)
{
    if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

/* "0-3,7" -> layers; returns 0 on a syntax error. */
static int parse_layers(const char *s, lpl_lora_config *lc)
{
    lc->n_layers = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10);
        /* the JSON reader's bound; also keeps l++ below from overflowing (tests/fuzz) */
        if (end == s || a < 0 || a > 100000)
            return 0;
        long b = a;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            if (end == s + 1 || b < a || b > 100000)
                return 0;
            s = end;
        }
        for (long l = a; l <= b; l++) {
            if (lc->n_layers >= LPL_LORA_MAX_LAYERS)
                return 0;
            lc->layers[lc->n_layers++] = (int)l;
        }
        if (*s == ',')
            s++;
        else if (*s)
            return 0;
    }
    return lc->n_layers > 0;
}

lpl_status lpl_placement_parse(const char *spec, lpl_placement *p, lpl_error *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq)
        return lpl_placement_preset(spec, p, err);
    placement_clear(p);
    size_t nlen = (size_t)(eq - spec);
    if (nlen == 0 || nlen >= sizeof p->name)
        return lpl_fail(err, LPL_ERR_INVALID, "placement '%s': name before '=' must be 1-63 characters", spec);
    memcpy(p->name, spec, nlen);
    p->name[nlen] = '\0';
    if (!valid_name(p->name))
        return lpl_fail(err, LPL_ERR_INVALID,
                        "placement '%s': name may only use letters, digits, '-', '_' and '.'", spec);
    const char *body = eq + 1;
    if (!strncmp(body, "re:", 3)) {
        if (strlen(body + 3) == 0 || strlen(body + 3) >= sizeof p->lora.regex)
            return lpl_fail(err, LPL_ERR_INVALID, "placement '%s': regex must be 1-255 characters", spec);
        snprintf(p->lora.regex, sizeof p->lora.regex, "%s", body + 3);
        return LPL_OK;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", body);
    char *at = strchr(buf, '@');
    if (at) {
        *at = '\0';
        if (!parse_layers(at + 1, &p->lora))
            return lpl_fail(err, LPL_ERR_INVALID,
                            "placement '%s': layers after '@' must look like 0-3,7", spec);
    }
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (p->lora.n_targets >= LPL_LORA_MAX_TARGETS || strlen(tok) >= sizeof p->lora.targets[0])
            return lpl_fail(err, LPL_ERR_INVALID, "placement '%s': too many or too long targets", spec);
        snprintf(p->lora.targets[p->lora.n_targets++], sizeof p->lora.targets[0], "%s", tok);
    }
    if (p->lora.n_targets == 0)
        return lpl_fail(err, LPL_ERR_INVALID, "placement '%s': no target modules after '='", spec);
    return LPL_OK;
}

void lpl_experiment_lora_config(const lpl_experiment_config *c, int i, lpl_lora_config *out)
{
    const lpl_placement *p = &c->placements[i];
    *out = p->lora;
    out->r = p->r > 0 ? p->r : c->r;
    out->alpha = p->alpha > 0 ? p->alpha : c->alpha;
    out->dropout = c->dropout;
    out->use_rslora = c->rslora;
    out->seed = c->seed;
}

void lpl_experiment_lora_config_for(const lpl_experiment_config *c, int i, const lpl_gpt2_config *mc,
                                    lpl_lora_config *out)
{
    lpl_experiment_lora_config(c, i, out);
    lpl_placement p = c->placements[i];
    lpl_placement_retarget(&p, mc);
    out->n_targets = p.lora.n_targets;
    memcpy(out->targets, p.lora.targets, sizeof out->targets);
}

/* ---------------------------------------------------------------- JSON in */

static lpl_status get_int(const cJSON *v, const char *key, int lo, int hi, int *out, lpl_error *err)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"%s\" must be an integer", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"%s\" is %g, must be in [%d, %d]", key,
                        v->valuedouble, lo, hi);
    *out = (int)v->valuedouble;
    return LPL_OK;
}

static lpl_status get_float(const cJSON *v, const char *key, float *out, lpl_error *err)
{
    /* |x| > FLT_MAX would become inf in the float field (found by tests/fuzz). */
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > FLT_MAX)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"%s\" must be a finite number", key);
    *out = (float)v->valuedouble;
    return LPL_OK;
}

static lpl_status get_bool(const cJSON *v, const char *key, int *out, lpl_error *err)
{
    if (!cJSON_IsBool(v))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(v);
    return LPL_OK;
}

static lpl_status get_path(const cJSON *v, const char *key, char *out, size_t size, lpl_error *err)
{
    if (cJSON_IsNull(v)) {
        out[0] = '\0';
        return LPL_OK;
    }
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"%s\" must be a string (a path)", key);
    snprintf(out, size, "%s", v->valuestring);
    return LPL_OK;
}

/* A placement's own "r" and "alpha" (what a grid's arms carry); absent = the experiment's. */
static lpl_status parse_placement_rank(const cJSON *o, int idx, lpl_placement *p, lpl_error *err)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "r");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "alpha");
    char key[48];
    snprintf(key, sizeof key, "placements[%d].r", idx);
    lpl_status st = r && !cJSON_IsNull(r) ? get_int(r, key, 1, 1 << 16, &p->r, err) : LPL_OK;
    snprintf(key, sizeof key, "placements[%d].alpha", idx);
    if (!st && a && !cJSON_IsNull(a)) {
        st = get_float(a, key, &p->alpha, err);
        if (!st && !(p->alpha > 0))
            st = lpl_fail(err, LPL_ERR_INVALID, "experiment: \"%s\" must be > 0", key);
    }
    return st;
}

static lpl_status parse_placement_object(const cJSON *o, int idx, lpl_placement *p, lpl_error *err)
{
    placement_clear(p);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(o, "target_modules");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!layers)
        layers = cJSON_GetObjectItemCaseSensitive(o, "layers_to_transform");
    for (const cJSON *it = o->child; it; it = it->next)
        if (strcmp(it->string, "name") && strcmp(it->string, "target_modules") &&
            strcmp(it->string, "layers") && strcmp(it->string, "layers_to_transform") &&
            strcmp(it->string, "r") && strcmp(it->string, "alpha"))
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: placements[%d]: unknown key \"%s\"",
                            idx, it->string);
    lpl_status st = parse_placement_rank(o, idx, p, err);
    if (st)
        return st;
    if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof p->name || !valid_name(name->valuestring))
        return lpl_fail(err, LPL_ERR_INVALID,
                        "experiment: placements[%d].name must be a string of letters, digits, '-', '_', '.'", idx);
    snprintf(p->name, sizeof p->name, "%s", name->valuestring);
    if (cJSON_IsString(tm)) {
        if (!tm->valuestring[0] || strlen(tm->valuestring) >= sizeof p->lora.regex)
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: placements[%d].target_modules regex must be 1-255 characters", idx);
        snprintf(p->lora.regex, sizeof p->lora.regex, "%s", tm->valuestring);
    } else if (cJSON_IsArray(tm)) {
        for (const cJSON *t = tm->child; t; t = t->next) {
            if (!cJSON_IsString(t) || strlen(t->valuestring) >= sizeof p->lora.targets[0] ||
                p->lora.n_targets >= LPL_LORA_MAX_TARGETS)
                return lpl_fail(err, LPL_ERR_INVALID,
                                "experiment: placements[%d].target_modules must be up to %d strings of < 64 characters",
                                idx, LPL_LORA_MAX_TARGETS);
            snprintf(p->lora.targets[p->lora.n_targets++], sizeof p->lora.targets[0], "%s", t->valuestring);
        }
        if (p->lora.n_targets == 0)
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: placements[%d].target_modules is empty", idx);
    } else {
        return lpl_fail(err, LPL_ERR_INVALID,
                        "experiment: placements[%d].target_modules must be a list of names or a regex string", idx);
    }
    if (layers && !cJSON_IsNull(layers)) {
        if (!cJSON_IsArray(layers))
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: placements[%d].layers must be a list of layer indices", idx);
        for (const cJSON *l = layers->child; l; l = l->next) {
            if (!cJSON_IsNumber(l) || l->valuedouble < 0 || l->valuedouble != floor(l->valuedouble) ||
                l->valuedouble > 100000 || p->lora.n_layers >= LPL_LORA_MAX_LAYERS)
                return lpl_fail(err, LPL_ERR_INVALID,
                                "experiment: placements[%d].layers must be up to %d non-negative integers", idx,
                                LPL_LORA_MAX_LAYERS);
            p->lora.layers[p->lora.n_layers++] = (int)l->valuedouble;
        }
        if (p->lora.n_layers == 0)
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: placements[%d].layers is empty (use null for all layers)", idx);
    }
    return LPL_OK;
}

static lpl_status parse_placements(const cJSON *v, lpl_experiment_config *c, lpl_error *err)
{
    if (!cJSON_IsArray(v))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"placements\" must be a list");
    int n = 0;
    for (const cJSON *it = v->child; it; it = it->next, n++) {
        if (n >= LPL_EXP_MAX_PLACEMENTS)
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: more than %d placements", LPL_EXP_MAX_PLACEMENTS);
        lpl_status st;
        if (cJSON_IsString(it))
            st = lpl_placement_preset(it->valuestring, &c->placements[n], err);
        else if (cJSON_IsObject(it))
            st = parse_placement_object(it, n, &c->placements[n], err);
        else
            st = lpl_fail(err, LPL_ERR_INVALID, "experiment: placements[%d] must be a preset name or an object", n);
        if (st)
            return st;
    }
    if (n == 0)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"placements\" is empty");
    c->n_placements = n;
    return LPL_OK;
}

/* "r": a rank, or a list of ranks (a grid dimension; one value is just the rank). */
static lpl_status parse_r(const cJSON *v, lpl_experiment_config *c, lpl_error *err)
{
    if (!cJSON_IsArray(v)) {
        c->n_r_values = 0;
        return get_int(v, "r", 1, 1 << 16, &c->r, err);
    }
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > LPL_EXP_MAX_VALUES)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"r\" as a list needs 1 to %d ranks", LPL_EXP_MAX_VALUES);
    int k = 0;
    for (const cJSON *it = v->child; it; it = it->next, k++) {
        lpl_status st = get_int(it, "r", 1, 1 << 16, &c->r_values[k], err);
        if (st)
            return st;
    }
    c->r = c->r_values[0];
    c->n_r_values = n > 1 ? n : 0;
    return LPL_OK;
}

/* "alpha": a value, or a list of values (a grid dimension). */
static lpl_status parse_alpha(const cJSON *v, lpl_experiment_config *c, lpl_error *err)
{
    if (!cJSON_IsArray(v)) {
        c->n_alpha_values = 0;
        return get_float(v, "alpha", &c->alpha, err);
    }
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > LPL_EXP_MAX_VALUES)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"alpha\" as a list needs 1 to %d values",
                        LPL_EXP_MAX_VALUES);
    int k = 0;
    for (const cJSON *it = v->child; it; it = it->next, k++) {
        lpl_status st = get_float(it, "alpha", &c->alpha_values[k], err);
        if (st)
            return st;
    }
    c->alpha = c->alpha_values[0];
    c->n_alpha_values = n > 1 ? n : 0;
    return LPL_OK;
}

static lpl_status apply_key(const cJSON *v, lpl_experiment_config *c, lpl_error *err)
{
    const char *k = v->string;
    if (!strcmp(k, "model")) return get_path(v, k, c->model, sizeof c->model, err);
    if (!strcmp(k, "train")) return get_path(v, k, c->train, sizeof c->train, err);
    if (!strcmp(k, "eval")) return get_path(v, k, c->eval, sizeof c->eval, err);
    if (!strcmp(k, "preset")) return get_path(v, k, c->preset, sizeof c->preset, err);
    if (!strcmp(k, "n_train")) return get_int(v, k, 0, 10000000, &c->n_train, err);
    if (!strcmp(k, "n_eval")) return get_int(v, k, 0, 10000000, &c->n_eval, err);
    if (!strcmp(k, "max_len")) return get_int(v, k, 0, 1 << 20, &c->max_len, err);
    if (!strcmp(k, "response_only")) return get_bool(v, k, &c->response_only, err);
    if (!strcmp(k, "r")) return parse_r(v, c, err);
    if (!strcmp(k, "alpha")) return parse_alpha(v, c, err);
    if (!strcmp(k, "bands")) return get_int(v, k, 0, LPL_LORA_MAX_LAYERS, &c->bands, err);
    if (!strcmp(k, "dropout")) return get_float(v, k, &c->dropout, err);
    if (!strcmp(k, "rslora")) return get_bool(v, k, &c->rslora, err);
    if (!strcmp(k, "epochs")) return get_int(v, k, 1, 100000, &c->epochs, err);
    if (!strcmp(k, "batch_size")) return get_int(v, k, 1, 1 << 16, &c->batch_size, err);
    if (!strcmp(k, "lr")) return get_float(v, k, &c->lr, err);
    if (!strcmp(k, "warmup_steps")) return get_int(v, k, 0, 1 << 30, &c->warmup_steps, err);
    if (!strcmp(k, "weight_decay")) return get_float(v, k, &c->weight_decay, err);
    if (!strcmp(k, "grad_clip")) return get_float(v, k, &c->grad_clip, err);
    if (!strcmp(k, "max_steps")) return get_int(v, k, 0, 1 << 30, &c->max_steps, err);
    if (!strcmp(k, "shuffle")) return get_bool(v, k, &c->shuffle, err);
    if (!strcmp(k, "seeds")) return get_int(v, k, 1, LPL_EXP_MAX_SEEDS, &c->seeds, err);
    if (!strcmp(k, "placements")) return parse_placements(v, c, err);
    if (!strcmp(k, "base_dropout")) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "config")) {
            c->base_dropout = LPL_BASE_DROPOUT_CONFIG;
            return LPL_OK;
        }
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1))
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"base_dropout\" must be \"config\" or a number in [0, 1)");
        c->base_dropout = (float)v->valuedouble;
        return LPL_OK;
    }
    if (!strcmp(k, "device")) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, "cpu"))
            c->device = LPL_DEVICE_CPU;
        else if (cJSON_IsString(v) && !strcmp(v->valuestring, "webgpu"))
            c->device = LPL_DEVICE_WEBGPU;
        else
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"device\" must be \"cpu\" or \"webgpu\"");
        return LPL_OK;
    }
    if (!strcmp(k, "compute")) {
        if (!cJSON_IsString(v))
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"compute\" must be \"int8\" or \"f32\"");
        lpl_status st = lpl_compute_parse(v->valuestring, &c->compute, err);
        if (st != LPL_OK)
            lpl_fail(err, st, "experiment: \"compute\": '%s' is not one of int8, f32", v->valuestring);
        return st;
    }
    if (!strcmp(k, "schedule")) {
        if (!cJSON_IsString(v))
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"schedule\" must be \"constant\", \"linear\" or \"cosine\"");
        return lpl_schedule_parse(v->valuestring, &c->schedule, err);
    }
    if (!strcmp(k, "seed")) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) ||
            v->valuedouble > 9007199254740992.0)
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: \"seed\" must be a non-negative integer");
        c->seed = (uint64_t)v->valuedouble;
        return LPL_OK;
    }
    /* Free-text keys a person may leave in a config. */
    if (!strcmp(k, "name") || !strcmp(k, "description") || !strcmp(k, "comment"))
        return LPL_OK;
    return lpl_fail(err, LPL_ERR_INVALID, "experiment: unknown key \"%s\"", k);
}

lpl_status lpl_experiment_parse_json(const char *json, lpl_experiment_config *c, lpl_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 0);
    if (!root) {
        long pos = end ? (long)(end - json) : -1;
        return lpl_fail(err, LPL_ERR_FORMAT, "experiment: malformed JSON near byte %ld", pos);
    }
    lpl_status st = LPL_OK;
    if (!cJSON_IsObject(root))
        st = lpl_fail(err, LPL_ERR_INVALID, "experiment: the document must be a JSON object");
    for (const cJSON *it = root->child; !st && it; it = it->next)
        st = apply_key(it, c, err);
    cJSON_Delete(root);
    return st;
}

lpl_status lpl_experiment_load(const char *path, lpl_experiment_config *c, lpl_error *err)
{
    char *text = NULL;
    size_t n = 0;
    lpl_status st = lpl_read_file(path, &text, &n, err);
    if (st)
        return st;
    st = lpl_experiment_parse_json(text, c, err);
    free(text);
    if (st) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lpl_fail(err, st, "%s: %s", path, msg);
    }
    return st;
}

/* ---------------------------------------------------------------- checks */

lpl_status lpl_experiment_check(const lpl_experiment_config *c, const lpl_gpt2_config *mc, lpl_error *err)
{
    if (c->r < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: r must be >= 1 (got %d)", c->r);
    for (int k = 0; k < c->n_r_values; k++)
        if (c->r_values[k] < 1)
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: r must be >= 1 (got %d)", c->r_values[k]);
    for (int k = 0; k < c->n_alpha_values; k++)
        if (!(c->alpha_values[k] > 0))
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: alpha must be > 0 (got %g)", c->alpha_values[k]);
    if (c->bands < 0 || c->bands > LPL_LORA_MAX_LAYERS)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: bands must be in [0, %d] (got %d)", LPL_LORA_MAX_LAYERS,
                        c->bands);
    if (!(c->alpha > 0))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: alpha must be > 0 (got %g)", c->alpha);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: dropout must be in [0, 1) (got %g)", c->dropout);
    if (c->base_dropout != LPL_BASE_DROPOUT_CONFIG && !(c->base_dropout >= 0 && c->base_dropout < 1))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: base_dropout must be \"config\" or in [0, 1) (got %g)",
                        c->base_dropout);
    if (c->epochs < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: epochs must be >= 1 (got %d)", c->epochs);
    if (c->batch_size < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: batch_size must be >= 1 (got %d)", c->batch_size);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: lr must be > 0 (got %g)", c->lr);
    if (!(c->weight_decay >= 0))
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: weight_decay must be >= 0 (got %g)", c->weight_decay);
    if (c->max_len == 1 || c->max_len < 0)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: max_len must be 0 (the model's context, at most %d) "
                        "or >= 2 (got %d)", LPL_MAX_LEN_DEFAULT, c->max_len);
    if (mc && c->max_len > mc->n_ctx)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: max_len %d exceeds the model's context of %d tokens",
                        c->max_len, mc->n_ctx);
    if (c->warmup_steps < 0 || c->max_steps < 0)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: warmup_steps and max_steps must be >= 0");
    if (c->n_placements < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: no placements");
    if (c->seeds < 1 || c->seeds > LPL_EXP_MAX_SEEDS)
        return lpl_fail(err, LPL_ERR_INVALID, "experiment: seeds must be 1 to %d (got %d)", LPL_EXP_MAX_SEEDS,
                        c->seeds);
    for (int i = 0; i < c->n_placements; i++) {
        if (!valid_name(c->placements[i].name))
            return lpl_fail(err, LPL_ERR_INVALID, "experiment: placement %d has an invalid name '%s'", i,
                            c->placements[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->placements[i].name, c->placements[j].name))
                return lpl_fail(err, LPL_ERR_INVALID, "experiment: placement name '%s' is used twice",
                                c->placements[i].name);
        if (!mc)
            continue;
        lpl_lora_config lc;
        lpl_experiment_lora_config_for(c, i, mc, &lc);
        lpl_error e2;
        lpl_error_clear(&e2);
        if (lpl_lora_param_count(&lc, mc, &e2) < 0)
            return lpl_fail(err, LPL_ERR_INVALID, "placement '%s': %s", c->placements[i].name, e2.msg);
    }
    return LPL_OK;
}

/* ---------------------------------------------------------------- JSON out */

static const char *schedule_name(lpl_schedule s)
{
    return s == LPL_SCHED_CONSTANT ? "constant" : s == LPL_SCHED_LINEAR ? "linear" : "cosine";
}

/* {name, target_modules, layers} of a placement as cJSON. */
cJSON *lpl_placement_to_cjson(const lpl_placement *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    if (p->lora.regex[0]) {
        cJSON_AddStringToObject(o, "target_modules", p->lora.regex);
    } else {
        cJSON *t = cJSON_AddArrayToObject(o, "target_modules");
        for (int i = 0; i < p->lora.n_targets; i++)
            cJSON_AddItemToArray(t, cJSON_CreateString(p->lora.targets[i]));
    }
    if (p->lora.n_layers) {
        cJSON *l = cJSON_AddArrayToObject(o, "layers");
        for (int i = 0; i < p->lora.n_layers; i++)
            cJSON_AddItemToArray(l, cJSON_CreateNumber(p->lora.layers[i]));
    } else {
        cJSON_AddNullToObject(o, "layers");
    }
    if (p->r > 0)
        cJSON_AddNumberToObject(o, "r", p->r);
    if (p->alpha > 0)
        cJSON_AddNumberToObject(o, "alpha", lpl_short_double(p->alpha));
    return o;
}

cJSON *lpl_experiment_to_cjson(const lpl_experiment_config *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "train", c->train);
    cJSON_AddStringToObject(o, "eval", c->eval);
    if (c->preset[0])
        cJSON_AddStringToObject(o, "preset", c->preset);
    cJSON_AddNumberToObject(o, "n_train", c->n_train);
    cJSON_AddNumberToObject(o, "n_eval", c->n_eval);
    cJSON_AddNumberToObject(o, "max_len", c->max_len);
    cJSON_AddBoolToObject(o, "response_only", c->response_only);
    if (c->n_r_values > 0) {
        cJSON *a = cJSON_AddArrayToObject(o, "r");
        for (int k = 0; k < c->n_r_values; k++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(c->r_values[k]));
    } else {
        cJSON_AddNumberToObject(o, "r", c->r);
    }
    if (c->n_alpha_values > 0) {
        cJSON *a = cJSON_AddArrayToObject(o, "alpha");
        for (int k = 0; k < c->n_alpha_values; k++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(lpl_short_double(c->alpha_values[k])));
    } else {
        cJSON_AddNumberToObject(o, "alpha", lpl_short_double(c->alpha));
    }
    if (c->bands > 1)
        cJSON_AddNumberToObject(o, "bands", c->bands);
    cJSON_AddNumberToObject(o, "dropout", lpl_short_double(c->dropout));
    cJSON_AddBoolToObject(o, "rslora", c->rslora);
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "batch_size", c->batch_size);
    cJSON_AddNumberToObject(o, "lr", lpl_short_double(c->lr));
    cJSON_AddStringToObject(o, "schedule", schedule_name(c->schedule));
    cJSON_AddNumberToObject(o, "warmup_steps", c->warmup_steps);
    cJSON_AddNumberToObject(o, "weight_decay", lpl_short_double(c->weight_decay));
    cJSON_AddNumberToObject(o, "grad_clip", lpl_short_double(c->grad_clip));
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddNumberToObject(o, "seeds", c->seeds);
    cJSON_AddNumberToObject(o, "max_steps", c->max_steps);
    cJSON_AddBoolToObject(o, "shuffle", c->shuffle);
    cJSON_AddStringToObject(o, "compute", lpl_compute_name(c->compute));
    cJSON_AddStringToObject(o, "device", c->device == LPL_DEVICE_WEBGPU ? "webgpu" : "cpu");
    if (c->base_dropout == LPL_BASE_DROPOUT_CONFIG)
        cJSON_AddStringToObject(o, "base_dropout", "config");
    else
        cJSON_AddNumberToObject(o, "base_dropout", lpl_short_double(c->base_dropout));
    cJSON *pl = cJSON_AddArrayToObject(o, "placements");
    for (int i = 0; i < c->n_placements; i++)
        cJSON_AddItemToArray(pl, lpl_placement_to_cjson(&c->placements[i]));
    return o;
}

char *lpl_experiment_to_json(const lpl_experiment_config *c)
{
    cJSON *o = lpl_experiment_to_cjson(c);
    char *s = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---------------------------------------------------------------- base dropout */

void lpl_experiment_base_dropout(const lpl_experiment_config *c, const lpl_gpt2_config *mc, lpl_gpt2_dropout *out,
                                 const char **source)
{
    lpl_base_dropout_rates(c->base_dropout, mc, out, source);
}

void lpl_base_dropout_rates(float setting, const lpl_gpt2_config *mc, lpl_gpt2_dropout *out, const char **source)
{
    if (setting != LPL_BASE_DROPOUT_CONFIG) {
        *out = (lpl_gpt2_dropout){setting, setting, setting};
        *source = "set";
        return;
    }
    *out = mc->pdrop;
    *source = mc->pdrop_stated ? "model" : "assumed";
}

lpl_status lpl_base_dropout_parse(const char *s, float *out, lpl_error *err)
{
    if (s && !strcmp(s, "config")) {
        *out = LPL_BASE_DROPOUT_CONFIG;
        return LPL_OK;
    }
    char *end = NULL;
    double v = s && *s ? strtod(s, &end) : NAN;
    if (!end || *end || !(v >= 0 && v < 1))
        return lpl_fail(err, LPL_ERR_INVALID, "'%s' is not \"config\" or a rate in [0, 1)", s ? s : "(null)");
    *out = (float)v;
    return LPL_OK;
}

/* ---------------------------------------------------------------- accounting */

static int reference_placement(const lpl_experiment_config *c)
{
    for (int i = 0; i < c->n_placements; i++)
        if (!strcmp(c->placements[i].name, "baseline"))
            return i;
    return 0;
}

lpl_status lpl_experiment_count(const lpl_experiment_config *c, const lpl_gpt2_config *mc, int i,
                                lpl_placement_count *out, uint8_t *selected, lpl_error *err)
{
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= c->n_placements)
        return lpl_fail(err, LPL_ERR_INVALID, "placement index %d out of range", i);
    snprintf(out->name, sizeof out->name, "%s", c->placements[i].name);
    lpl_lora_config lc;
    lpl_experiment_lora_config_for(c, i, mc, &lc);
    size_t nsel = (size_t)mc->n_layer * LPL_N_SITES;
    uint8_t *sel = selected ? selected : lpl_calloc(nsel, 1, "placement selection", err);
    if (!sel)
        return LPL_ERR_NOMEM;
    lpl_error e2;
    lpl_error_clear(&e2);
    lpl_status st = lpl_lora_select(&lc, mc, sel, &e2);
    if (st) {
        lpl_fail(err, st, "placement '%s': %s", c->placements[i].name, e2.msg);
        goto done;
    }
    out->trainable = lpl_lora_param_count(&lc, mc, &e2);
    if (out->trainable < 0) {
        st = lpl_fail(err, LPL_ERR_INVALID, "placement '%s': %s", c->placements[i].name, e2.msg);
        goto done;
    }
    for (size_t k = 0; k < nsel; k++)
        out->n_modules += sel[k] != 0;
    lpl_lora_describe(sel, mc, out->modules, sizeof out->modules);
    out->base = lpl_gpt2_param_count(mc);
    out->total = out->base + out->trainable;
    out->percent = out->total ? 100.0 * (double)out->trainable / (double)out->total : 0;
    out->reduction_pct = out->base ? 100.0 * (1.0 - (double)out->trainable / (double)out->base) : 0;
    out->reduction_factor = out->trainable ? (double)out->base / (double)out->trainable : 0;
    int ref = reference_placement(c);
    if (ref == i) {
        out->vs_baseline_pct = 0;
    } else {
        lpl_lora_config rc;
        lpl_experiment_lora_config_for(c, ref, mc, &rc);
        int64_t rt = lpl_lora_param_count(&rc, mc, &e2);
        out->vs_baseline_pct = rt > 0 ? 100.0 * ((double)out->trainable / (double)rt - 1.0) : 0;
    }
done:
    if (!selected)
        free(sel);
    return st;
}

/* [[layer, "attn.c_attn"], ...] of a selection (llama: "self_attn.q_proj", ...). */
cJSON *lpl_selection_to_cjson(const uint8_t *sel, const lpl_gpt2_config *mc)
{
    cJSON *a = cJSON_CreateArray();
    for (int l = 0; l < mc->n_layer; l++)
        for (int s = 0; s < LPL_N_SITES; s++) {
            if (!sel[l * LPL_N_SITES + s])
                continue;
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateNumber(l));
            cJSON_AddItemToArray(pair, cJSON_CreateString(lpl_site_name((lpl_site)s)));
            cJSON_AddItemToArray(a, pair);
        }
    return a;
}

/* Adds the accounting fields of cnt to object o. */
void lpl_count_add_to_cjson(cJSON *o, const lpl_placement_count *cnt)
{
    cJSON_AddNumberToObject(o, "trainable", (double)cnt->trainable);
    cJSON_AddNumberToObject(o, "base", (double)cnt->base);
    cJSON_AddNumberToObject(o, "total", (double)cnt->total);
    cJSON_AddNumberToObject(o, "percent", cnt->percent);
    cJSON_AddNumberToObject(o, "reduction_pct", cnt->reduction_pct);
    cJSON_AddNumberToObject(o, "reduction_factor", cnt->reduction_factor);
    cJSON_AddNumberToObject(o, "vs_baseline_pct", cnt->vs_baseline_pct);
    cJSON_AddNumberToObject(o, "n_modules", cnt->n_modules);
    cJSON_AddStringToObject(o, "modules", cnt->modules);
}

char *lpl_experiment_count_json(const lpl_experiment_config *c, const lpl_gpt2_config *mc, lpl_error *err)
{
    cJSON *arr = cJSON_CreateArray();
    uint8_t *sel = lpl_calloc((size_t)mc->n_layer * LPL_N_SITES, 1, "placement selection", err);
    char *out = NULL;
    if (!arr || !sel)
        goto done;
    for (int i = 0; i < c->n_placements; i++) {
        lpl_placement_count cnt;
        if (lpl_experiment_count(c, mc, i, &cnt, sel, err))
            goto done;
        cJSON *o = lpl_placement_to_cjson(&c->placements[i]);
        lpl_count_add_to_cjson(o, &cnt);
        cJSON_AddItemToObject(o, "selected", lpl_selection_to_cjson(sel, mc));
        cJSON_AddItemToArray(arr, o);
    }
    out = cJSON_PrintUnformatted(arr);
    if (!out)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: accounting JSON");
done:
    free(sel);
    cJSON_Delete(arr);
    return out;
}
