/* LoRA adapters: placement with PEFT's matching rules, PEFT initialisation, the
 * adapter branch forward/backward used by gpt2.c, merge/unmerge, and reporting. */
#include "lpl/model/lora.h"

#include "lpl/core/kernels.h"
#include "lpl/core/rng.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lpl_lora_config_default(lpl_lora_config *c)
{
    memset(c, 0, sizeof *c);
    c->r = 16;
    c->alpha = 32.0f;
    c->dropout = 0.1f;
    c->n_targets = 3;
    strcpy(c->targets[0], "c_attn");
    strcpy(c->targets[1], "c_proj");
    strcpy(c->targets[2], "c_fc");
    c->seed = 42;
}

void lpl_lora_site_module_name(int layer, lpl_site site, char *buf, size_t size)
{
    /* the site says the architecture: GPT-2's under transformer.h, Llama's under model.layers */
    snprintf(buf, size, "%s.%d.%s", site >= LPL_SITE_LLAMA_FIRST ? "model.layers" : "transformer.h", layer,
             lpl_site_name(site));
}

/* An example of the adaptable names, for messages. */
static const char *names_hint(const lpl_gpt2_config *cfg)
{
    return lpl_cfg_is_llama(cfg) ? "model.layers.N.self_attn.q_proj, .k_proj, .v_proj, .o_proj, "
                                   ".mlp.gate_proj, .up_proj, .down_proj"
                                 : "transformer.h.N.attn.c_attn, .attn.c_proj, .mlp.c_fc, .mlp.c_proj";
}

void lpl_lora_module_name(const lpl_lora *l, int i, char *buf, size_t size)
{
    lpl_lora_site_module_name(l->modules[i].layer, l->modules[i].site, buf, size);
}

/* ---------------- placement ---------------- */

/* Python-style regex to POSIX ERE anchored as a full match: \d, \w, \s become
 * bracket classes and (?: becomes a plain group. */
static int translate_regex(const char *re, char *out, size_t size)
{
    size_t k = 0;
#define PUT(str)                                        \
    do {                                                \
        const char *_s = (str);                         \
        size_t _n = strlen(_s);                         \
        if (k + _n + 1 > size)                          \
            return -1;                                  \
        memcpy(out + k, _s, _n);                        \
        k += _n;                                        \
    } while (0)
    PUT("^(");
    for (const char *p = re; *p; p++) {
        if (p[0] == '\\' && p[1] == 'd') {
            PUT("[0-9]");
            p++;
        } else if (p[0] == '\\' && p[1] == 'w') {
            PUT("[A-Za-z0-9_]");
            p++;
        } else if (p[0] == '\\' && p[1] == 's') {
            PUT("[[:space:]]");
            p++;
        } else if (p[0] == '(' && p[1] == '?' && p[2] == ':') {
            PUT("(");
            p += 2;
        } else {
            char one[2] = {*p, 0};
            PUT(one);
        }
    }
    PUT(")$");
    out[k] = 0;
    return 0;
#undef PUT
}

static int ends_with_dot(const char *name, const char *t)
{
    size_t n = strlen(name), m = strlen(t);
    return n > m && name[n - m - 1] == '.' && strcmp(name + n - m, t) == 0;
}

static lpl_status check_basic(const lpl_lora_config *c, const lpl_gpt2_config *cfg, lpl_error *err)
{
    if (c->r < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "lora: r = %d must be at least 1", c->r);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return lpl_fail(err, LPL_ERR_INVALID, "lora: dropout = %g must be in [0, 1)", c->dropout);
    if (!isfinite(c->alpha))
        return lpl_fail(err, LPL_ERR_INVALID, "lora: alpha is not finite");
    if (c->n_targets < 0 || c->n_targets > LPL_LORA_MAX_TARGETS)
        return lpl_fail(err, LPL_ERR_INVALID, "lora: %d targets (at most %d)", c->n_targets, LPL_LORA_MAX_TARGETS);
    if (c->n_layers < 0 || c->n_layers > LPL_LORA_MAX_LAYERS)
        return lpl_fail(err, LPL_ERR_INVALID, "lora: %d layers_to_transform (at most %d)", c->n_layers,
                        LPL_LORA_MAX_LAYERS);
    if (c->regex[0] && c->n_targets > 0)
        return lpl_fail(err, LPL_ERR_INVALID, "lora: give target modules either as a list or as a regex, not both");
    if (!c->regex[0] && c->n_targets == 0)
        return lpl_fail(err, LPL_ERR_INVALID, "lora: the placement has no target modules");
    /* PEFT refuses layers_to_transform with a regex target; so do we */
    if (c->regex[0] && c->n_layers > 0)
        return lpl_fail(err, LPL_ERR_INVALID, "lora: layers_to_transform cannot be used with a regex target");
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] < 0 || c->layers[i] >= cfg->n_layer)
            return lpl_fail(err, LPL_ERR_INVALID, "lora: layer %d in layers_to_transform is out of range 0..%d",
                            c->layers[i], cfg->n_layer - 1);
    for (int i = 0; i < c->n_targets; i++)
        if (!c->targets[i][0])
            return lpl_fail(err, LPL_ERR_INVALID, "lora: target %d is empty", i);
    return LPL_OK;
}

static int layer_selected(const lpl_lora_config *c, int layer)
{
    if (c->n_layers == 0)
        return 1;
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] == layer)
            return 1;
    return 0;
}

/* List targets, as PEFT's check_target_module_exists: an exact name match selects
 * the module whatever the layer filter; a suffix match ("." + target) is subject to
 * layers_to_transform. */
static lpl_status select_list(const lpl_lora_config *c, const lpl_gpt2_config *cfg, uint8_t *sel, lpl_error *err)
{
    char name[96];
    for (int t = 0; t < c->n_targets; t++) {
        int hits = 0;
        for (int l = 0; l < cfg->n_layer; l++) {
            for (int s = lpl_site_first(cfg); s < lpl_site_end(cfg); s++) {
                lpl_lora_site_module_name(l, (lpl_site)s, name, sizeof name);
                int exact = strcmp(name, c->targets[t]) == 0;
                if (exact || (ends_with_dot(name, c->targets[t]) && layer_selected(c, l))) {
                    sel[l * LPL_N_SITES + s] = 1;
                    hits++;
                }
            }
        }
        if (!hits)
            return lpl_fail(err, LPL_ERR_INVALID,
                            "lora: target '%s' matches no module (adaptable modules are %s%s)", c->targets[t],
                            names_hint(cfg), c->n_layers ? " in the selected layers" : "");
    }
    return LPL_OK;
}

/* glibc's regcomp copies the tree under a repetition once per repeat, so stacked or
 * nested repetitions ("a++++...", "((a+)+)+", "(a{30}){30}") grow exponentially: a
 * 120-character pattern took over 2 GB (found by tests/fuzz). Module names need
 * little: the product over repetition operators of their count (2 for * + ?, the
 * upper bound of {m,n}) must stay within 256, with at most 8 operators and none stacked
 * on another. It runs on
 * the translated pattern, where \d has become [0-9] and may close a bracket early. */
static int regex_too_costly(const char *re)
{
    double cost = 1;
    int in_bracket = 0, n_ops = 0, after_op = 0;
    for (const char *p = re; *p; p++) {
        int op = 0;
        /* POSIX brackets take a backslash literally, so check the bracket first. */
        if (in_bracket) {
            in_bracket = *p != ']';
        } else if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '[') {
            in_bracket = 1;
            if (p[1] == ']' || (p[1] == '^' && p[2] == ']'))
                p += p[1] == ']' ? 1 : 2;
        } else if (*p == '*' || *p == '+' || *p == '?') {
            cost *= 2;
            op = 1;
        } else if (*p == '{') {
            long hi = 2;
            const char *q = p + 1;
            for (; *q && *q != '}'; q++)
                if (*q >= '0' && *q <= '9' && (q[-1] < '0' || q[-1] > '9'))
                    hi = strtol(q, NULL, 10);
            cost *= hi > 2 ? (double)hi : 2;
            op = 1;
            if (*q)
                p = q;
        }
        /* Stacked repetitions ("a+*+") mean nothing more than one, and are what makes
         * regcomp take seconds (found by tests/fuzz). */
        if (op && after_op)
            return 1;
        after_op = op;
        n_ops += op;
        if (cost > 256 || n_ops > 8)
            return 1;
    }
    return 0;
}

static lpl_status select_regex(const lpl_lora_config *c, const lpl_gpt2_config *cfg, uint8_t *sel, lpl_error *err)
{
    char pattern[600];
    if (translate_regex(c->regex, pattern, sizeof pattern) != 0)
        return lpl_fail(err, LPL_ERR_INVALID, "lora: target regex is too long");
    if (regex_too_costly(pattern))
        return lpl_fail(err, LPL_ERR_INVALID,
                        "lora: target regex '%s' repeats too much (regcomp would need exponential memory)",
                        c->regex);
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[160];
        regerror(rc, &re, why, sizeof why);
        return lpl_fail(err, LPL_ERR_INVALID, "lora: target regex '%s' does not compile: %s", c->regex, why);
    }
    char name[96];
    int hits = 0;
    for (int l = 0; l < cfg->n_layer; l++) {
        for (int s = lpl_site_first(cfg); s < lpl_site_end(cfg); s++) {
            lpl_lora_site_module_name(l, (lpl_site)s, name, sizeof name);
            if (regexec(&re, name, 0, NULL, 0) == 0) {
                sel[l * LPL_N_SITES + s] = 1;
                hits++;
            }
        }
    }
    regfree(&re);
    if (!hits)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "lora: target regex '%s' matches no module (names look like %s.0.%s)", c->regex,
                        lpl_block_prefix(cfg), lpl_site_name((lpl_site)lpl_site_first(cfg)));
    return LPL_OK;
}

lpl_status lpl_lora_select(const lpl_lora_config *c, const lpl_gpt2_config *cfg, uint8_t *selected,
                           lpl_error *err)
{
    lpl_status st = lpl_gpt2_config_check(cfg, err);
    if (st == LPL_OK)
        st = check_basic(c, cfg, err);
    if (st != LPL_OK)
        return st;
    memset(selected, 0, (size_t)cfg->n_layer * LPL_N_SITES);
    st = c->regex[0] ? select_regex(c, cfg, selected, err) : select_list(c, cfg, selected, err);
    if (st != LPL_OK)
        return st;
    for (int i = 0; i < cfg->n_layer * LPL_N_SITES; i++) {
        if (!selected[i])
            continue;
        int out, in;
        lpl_site_shape(cfg, (lpl_site)(i % LPL_N_SITES), &out, &in);
        int width = out < in ? out : in;
        if (c->r > width) {
            char name[96];
            lpl_lora_site_module_name(i / LPL_N_SITES, (lpl_site)(i % LPL_N_SITES), name, sizeof name);
            return lpl_fail(err, LPL_ERR_INVALID, "lora: r = %d is larger than the width %d of %s", c->r, width,
                            name);
        }
    }
    return LPL_OK;
}

int64_t lpl_lora_param_count(const lpl_lora_config *c, const lpl_gpt2_config *cfg, lpl_error *err)
{
    if (lpl_gpt2_config_check(cfg, err) != LPL_OK)
        return -1;
    uint8_t *sel = lpl_malloc((size_t)cfg->n_layer * LPL_N_SITES, "lora selection", err);
    if (!sel)
        return -1;
    int64_t n = -1;
    if (lpl_lora_select(c, cfg, sel, err) == LPL_OK) {
        n = 0;
        for (int i = 0; i < cfg->n_layer * LPL_N_SITES; i++) {
            int out, in;
            lpl_site_shape(cfg, (lpl_site)(i % LPL_N_SITES), &out, &in);
            if (sel[i])
                n += (int64_t)c->r * (in + out);
        }
    }
    free(sel);
    return n;
}

/* ---------------- creation ---------------- */

typedef struct {
    int max_T, max_in;
    float *u;     /* [n_modules][max_T][r]: A . dropout(x) of the last forward */
    float *xd;    /* [max_T][max_in] dropped-out input */
    float *us;    /* [max_T][r] scaled u */
    float *du;    /* [max_T][r] */
    float *dxd;   /* [max_T][max_in] */
    uint64_t *mask;     /* dropout keep-bits of the last forward, per module [T][in] */
    size_t *mask_off;   /* [n_modules] word offset of each module's bits */
    uint64_t key; /* dropout key of the last forward */
    int dropout_on;
} lora_work;


lpl_lora *lpl_lora_attach(const lpl_lora_config *c, const lpl_gpt2_config *cfg, lpl_error *err)
{
    if (lpl_gpt2_config_check(cfg, err) != LPL_OK)
        return NULL;
    const int nsite = cfg->n_layer * LPL_N_SITES;
    uint8_t *sel = lpl_malloc((size_t)nsite, "lora selection", err);
    if (!sel)
        return NULL;
    if (lpl_lora_select(c, cfg, sel, err) != LPL_OK) {
        free(sel);
        return NULL;
    }
    lpl_lora *l = lpl_calloc(1, sizeof *l, "lora", err);
    if (!l) {
        free(sel);
        return NULL;
    }
    l->cfg = *c;
    l->model_cfg = *cfg;
    l->scaling = c->use_rslora ? c->alpha / sqrtf((float)c->r) : c->alpha / (float)c->r;
    for (int i = 0; i < nsite; i++) {
        if (sel[i]) {
            int out, in;
            lpl_site_shape(cfg, (lpl_site)(i % LPL_N_SITES), &out, &in);
            l->n_modules++;
            l->n_params += (int64_t)c->r * (in + out);
        }
    }
    l->modules = lpl_calloc((size_t)l->n_modules, sizeof *l->modules, "lora modules", err);
    l->by_site = lpl_calloc((size_t)nsite, sizeof *l->by_site, "lora site table", err);
    l->params = l->modules ? lpl_calloc((size_t)l->n_params, sizeof(float), "lora parameters", err) : NULL;
    l->grads = l->params ? lpl_calloc((size_t)l->n_params, sizeof(float), "lora gradients", err) : NULL;
    l->work = lpl_calloc(1, sizeof(lora_work), "lora scratch", err);
    if (!l->modules || !l->by_site || !l->params || !l->grads || !l->work) {
        free(sel);
        lpl_lora_free(l);
        return NULL;
    }
    /* PEFT: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0 */
    lpl_rng rng;
    lpl_rng_seed(&rng, c->seed);
    int64_t off = 0;
    int k = 0;
    for (int i = 0; i < nsite; i++) {
        if (!sel[i])
            continue;
        lpl_lora_module *m = &l->modules[k++];
        m->layer = i / LPL_N_SITES;
        m->site = (lpl_site)(i % LPL_N_SITES);
        lpl_site_shape(cfg, m->site, &m->out, &m->in);
        m->A = l->params + off;
        m->dA = l->grads + off;
        off += (int64_t)c->r * m->in;
        m->B = l->params + off;
        m->dB = l->grads + off;
        off += (int64_t)c->r * m->out;
        float bound = 1.0f / sqrtf((float)m->in);
        for (int64_t j = 0; j < (int64_t)c->r * m->in; j++)
            m->A[j] = (2.0f * lpl_rng_uniform(&rng) - 1.0f) * bound;
        l->by_site[i] = m;
    }
    l->rng_state = lpl_mix64(c->seed ^ 0x6c6f72612d64726fULL); /* separate stream for dropout */
    free(sel);
    return l;
}

static void work_release(lora_work *w)
{
    free(w->u);
    free(w->xd);
    free(w->us);
    free(w->du);
    free(w->dxd);
    free(w->mask);
    free(w->mask_off);
    w->mask = NULL;
    w->mask_off = NULL;
    w->u = w->xd = w->us = w->du = w->dxd = NULL;
    w->max_T = 0;
}

void lpl_lora_free(lpl_lora *l)
{
    if (!l)
        return;
    if (l->work) {
        work_release(l->work);
        free(l->work);
    }
    free(l->modules);
    free(l->by_site);
    free(l->params);
    free(l->grads);
    free(l);
}

void lpl_lora_zero_grads(lpl_lora *l)
{
    memset(l->grads, 0, (size_t)l->n_params * sizeof(float));
}

/* ---------------- branch forward / backward ---------------- */

lpl_status lpl_lora_prepare(lpl_lora *l, int max_T, lpl_error *err)
{
    lora_work *w = l->work;
    if (w->max_T >= max_T)
        return LPL_OK;
    work_release(w);
    const size_t T = (size_t)max_T, r = (size_t)l->cfg.r;
    int max_in = 0;
    for (int i = 0; i < l->n_modules; i++)
        if (l->modules[i].in > max_in)
            max_in = l->modules[i].in;
    w->u = lpl_malloc((size_t)l->n_modules * T * r * sizeof(float), "lora activations", err);
    w->xd = lpl_malloc(T * (size_t)max_in * sizeof(float), "lora dropout input", err);
    w->us = lpl_malloc(T * r * sizeof(float), "lora scratch", err);
    w->du = lpl_malloc(T * r * sizeof(float), "lora scratch", err);
    w->dxd = lpl_malloc(T * (size_t)max_in * sizeof(float), "lora scratch", err);
    /* the forward's dropout mask, one bit per branch input element, so the backward
     * does not hash every element again (twice: for dA's input and for dX) */
    size_t words = 0;
    w->mask_off = lpl_malloc((size_t)l->n_modules * sizeof(size_t) + 1, "lora dropout mask", err);
    for (int i = 0; w->mask_off && i < l->n_modules; i++) {
        w->mask_off[i] = words;
        words += (T * (size_t)l->modules[i].in + 63) / 64;
    }
    if (l->cfg.dropout > 0.0f && w->mask_off)
        w->mask = lpl_malloc(words * sizeof(uint64_t) + 8, "lora dropout mask", err);
    if (!w->u || !w->xd || !w->us || !w->du || !w->dxd || !w->mask_off || (l->cfg.dropout > 0.0f && !w->mask)) {
        work_release(w);
        return LPL_ERR_NOMEM;
    }
    w->max_T = max_T;
    w->max_in = max_in;
    return LPL_OK;
}

void lpl_lora_begin_forward(lpl_lora *l, int training)
{
    lora_work *w = l->work;
    w->dropout_on = training && l->cfg.dropout > 0.0f;
    if (w->dropout_on) {
        w->key = l->rng_state;
        l->rng_state = lpl_mix64(l->rng_state + 0x9e3779b97f4a7c15ULL);
    }
}

float lpl_lora_dropout_scale(uint64_t key, int layer, lpl_site site, int64_t idx, float p)
{
    /* GPT-2 keeps its streams layer * 4 + site (the masks its results were made with);
     * the Llama sites get streams of their own above 2^40 */
    uint64_t stream = site < LPL_SITE_GPT2_END ? (uint64_t)(layer * 4 + (int)site)
                                               : (1ULL << 40) + (uint64_t)layer * 16 + (uint64_t)site;
    return lpl_dropout_scale(key, stream, (uint64_t)idx, p);
}

/* The branch input: X itself, or X with this forward's dropout mask applied. The
 * forward draws the mask (and keeps it as bits); the backward reads the bits. Both
 * multiply by the same 0 or 1/(1-p), so xd is bitwise the same either way. */
static const float *branch_input(const lpl_lora *l, const lpl_lora_module *mod, const float *X, int T, int draw)
{
    const lora_work *w = l->work;
    if (!w->dropout_on)
        return X;
    const int64_t n = (int64_t)T * mod->in;
    const float p = l->cfg.dropout, keep = 1.0f / (1.0f - p);
    uint64_t *bits = w->mask + w->mask_off[mod - l->modules];
    if (draw) {
        memset(bits, 0, (size_t)(n + 63) / 64 * sizeof(uint64_t));
        for (int64_t i = 0; i < n; i++) {
            float sc = lpl_lora_dropout_scale(w->key, mod->layer, mod->site, i, p);
            if (sc != 0.0f)
                bits[i >> 6] |= 1ull << (i & 63);
            w->xd[i] = X[i] * sc;
        }
    } else {
        for (int64_t i = 0; i < n; i++)
            w->xd[i] = X[i] * ((bits[i >> 6] >> (i & 63)) & 1 ? keep : 0.0f);
    }
    return w->xd;
}

void lpl_lora_site_forward(lpl_lora *l, const lpl_lora_module *mod, float *Y, const float *X, int T)
{
    lora_work *w = l->work;
    const int r = l->cfg.r;
    float *u = w->u + (size_t)(mod - l->modules) * w->max_T * r;
    const float *x = branch_input(l, mod, X, T, 1);
    lpl_matmul_nt(u, x, mod->A, T, r, mod->in, 0);
    for (int64_t i = 0; i < (int64_t)T * r; i++)
        w->us[i] = u[i] * l->scaling;
    lpl_matmul_nt(Y, w->us, mod->B, T, mod->out, r, 1);
}

void lpl_lora_site_backward(lpl_lora *l, const lpl_lora_module *mod, float *dX, const float *dY,
                            const float *X, int T)
{
    lora_work *w = l->work;
    const int r = l->cfg.r;
    const float *u = w->u + (size_t)(mod - l->modules) * w->max_T * r;
    for (int64_t i = 0; i < (int64_t)T * r; i++)
        w->us[i] = u[i] * l->scaling;
    /* dB += dY^T (s u);  du = s dY B;  dA += du^T x;  dx = du A */
    lpl_matmul_tn(mod->dB, dY, w->us, mod->out, r, T, 1);
    lpl_matmul_nn(w->du, dY, mod->B, T, r, mod->out, 0);
    for (int64_t i = 0; i < (int64_t)T * r; i++)
        w->du[i] *= l->scaling;
    const float *x = branch_input(l, mod, X, T, 0);
    lpl_matmul_tn(mod->dA, w->du, x, r, mod->in, T, 1);
    if (!dX) /* the lowest adapted site: nobody needs the input gradient */
        return;
    lpl_matmul_nn(w->dxd, w->du, mod->A, T, mod->in, r, 0);
    const int64_t n = (int64_t)T * mod->in;
    if (w->dropout_on) {
        const uint64_t *bits = w->mask + w->mask_off[mod - l->modules];
        const float keep = 1.0f / (1.0f - l->cfg.dropout);
        for (int64_t i = 0; i < n; i++)
            dX[i] += w->dxd[i] * ((bits[i >> 6] >> (i & 63)) & 1 ? keep : 0.0f);
    } else {
        for (int64_t i = 0; i < n; i++)
            dX[i] += w->dxd[i];
    }
}

/* ---------------- merge and reporting ---------------- */

void lpl_lora_describe(const uint8_t *selected, const lpl_gpt2_config *cfg, char *buf, size_t size)
{
    size_t k = 0;
    if (size == 0)
        return;
    buf[0] = 0;
#define APPEND(...)                                                           \
    do {                                                                      \
        if (k < size) {                                                       \
            int _w = snprintf(buf + k, size - k, __VA_ARGS__);                \
            k += _w > 0 ? (size_t)_w : 0;                                     \
        }                                                                     \
    } while (0)
    int any = 0;
    for (int s = 0; s < LPL_N_SITES; s++) {
        int count = 0;
        for (int l = 0; l < cfg->n_layer; l++)
            count += selected[l * LPL_N_SITES + s] != 0;
        if (!count)
            continue;
        APPEND("%s%d\xc3\x97%s", any ? ", " : "", count, lpl_site_name((lpl_site)s));
        any = 1;
        if (count < cfg->n_layer) {
            APPEND(" [layers");
            for (int l = 0; l < cfg->n_layer; l++)
                if (selected[l * LPL_N_SITES + s])
                    APPEND(" %d", l);
            APPEND("]");
        }
    }
    if (!any)
        APPEND("none");
#undef APPEND
}

/* ||B A||_F^2 = sum_ab (B^T B)_ab (A A^T)_ab, so only r x r products are formed. */
double lpl_lora_update_norm(const lpl_lora *l, int i)
{
    const lpl_lora_module *m = &l->modules[i];
    const int r = l->cfg.r;
    double ss = 0.0;
    for (int a = 0; a < r; a++) {
        for (int b = 0; b < r; b++) {
            double g1 = 0.0, g2 = 0.0;
            for (int o = 0; o < m->out; o++)
                g1 += (double)m->B[(size_t)o * r + a] * m->B[(size_t)o * r + b];
            for (int j = 0; j < m->in; j++)
                g2 += (double)m->A[(size_t)a * m->in + j] * m->A[(size_t)b * m->in + j];
            ss += g1 * g2;
        }
    }
    return fabs((double)l->scaling) * sqrt(ss > 0.0 ? ss : 0.0);
}
