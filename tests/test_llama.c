/* The Llama-family engine (llama, qwen2) against two independent references.
 *
 * 1. A float64 PyTorch implementation (tests/llama_ref.py, written from
 *    transformers' semantics) makes a tiny random checkpoint in Hugging Face layout
 *    (f32, bf16 and sharded bf16/f16 safetensors) and the logits, mean loss and every
 *    parameter's gradient on a token sequence. The checkpoint goes through the real
 *    import (lpl_convert_hf_dir -> GGUF -> lpl_gpt2_from_gguf); the engine's logits
 *    must match within LOGIT_TOL, the loss within 1e-5 relative, and each gradient
 *    tensor within GRAD_ABS * max|ref| + GRAD_REL * |ref| per entry (float32 through
 *    two blocks: observed errors are ~1e-6 relative).
 * 2. Central finite differences of the engine's own loss: sampled entries of every
 *    tensor of a model with O(0.1) weights, and of all-linear LoRA adapters, with and
 *    without attention dropout. Steps 1e-2 and 5e-3 combined by Richardson (the
 *    h^2 error cancels; adapters with O(0.1) B have enough curvature that a plain
 *    1e-2 difference is off by 2x); the float32 loss's rounding (~1e-6) over 1e-2
 *    leaves ~1.5e-4: FD_ABS + FD_REL * |fd|.
 *    From an all-linear PEFT adapter the reference writes, five AdamW steps give the
 *    reference's losses (1e-5 relative) and eval loss after them (within 1e-4).
 * 3. The backward that stops early (LoRA on one site) gives the same adapter
 *    gradients as the full one, for every site; GGUF out and back in is lossless;
 *    compute int8 on a Q8_0 base stays within 0.5% of f32 compute on the loss. */
#include "check.h"
#include "lpl/core/rng.h"
#include "lpl/core/threads.h"
#include "lpl/io/gguf.h"
#include "lpl/io/hf_stream.h"
#include "lpl/io/model_io.h"
#include "lpl/io/safetensors.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/llama_layers.h"
#include "lpl/model/lora.h"
#include "lpl/model/optim.h"
#include "lpl/io/adapter_io.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOGIT_TOL 2e-4
#define GRAD_ABS 1e-4
#define GRAD_REL 1e-3
#define FD_H 1e-2f
#define FD_ABS 3e-4
#define FD_REL 5e-2

/* ---------------- helpers ---------------- */

static int run(const char *cmd)
{
    int rc = system(cmd);
    CHECK(rc == 0, "command failed (%d): %s", rc, cmd);
    return rc == 0;
}

/* Float pointer into params (or grads) of a HF tensor name, and its length; NULL if unknown. */
static float *hf_tensor(const lpl_gpt2_model *m, float *base, const char *name, int64_t *len)
{
    const lpl_gpt2_config *c = &m->cfg;
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);
    const int64_t C = c->n_embd, V = c->n_vocab;
    if (!strcmp(name, "model.embed_tokens.weight"))
        return *len = V * C, base + top.wte;
    if (!strcmp(name, "model.norm.weight"))
        return *len = C, base + top.lnf_w;
    if (!strcmp(name, "lm_head.weight"))
        return top.lm_head < 0 ? NULL : (*len = V * C, base + top.lm_head);
    int l;
    char rest[96];
    if (sscanf(name, "model.layers.%d.%95s", &l, rest) != 2 || l < 0 || l >= c->n_layer)
        return NULL;
    lpl_gpt2_block_offsets o;
    lpl_gpt2_block_offsets_of(c, l, &o);
    if (!strcmp(rest, "input_layernorm.weight"))
        return *len = C, base + o.ln1_w;
    if (!strcmp(rest, "post_attention_layernorm.weight"))
        return *len = C, base + o.ln2_w;
    for (int s = LPL_SITE_LLAMA_FIRST; s < LPL_SITE_LLAMA_END; s++) {
        size_t n = strlen(lpl_site_name((lpl_site)s));
        if (strncmp(rest, lpl_site_name((lpl_site)s), n))
            continue;
        int out, in;
        lpl_site_shape(c, (lpl_site)s, &out, &in);
        if (!strcmp(rest + n, ".weight"))
            return *len = (int64_t)out * in, base + o.w[s];
        if (!strcmp(rest + n, ".bias") && o.b[s] >= 0)
            return *len = out, base + o.b[s];
    }
    return NULL;
}

static lpl_gpt2_model *load_gguf(const char *path)
{
    lpl_error err = {0};
    lpl_gguf *g = lpl_gguf_open(path, &err);
    CHECK(g != NULL, "open %s: %s", path, err.msg);
    if (!g)
        return NULL;
    lpl_gpt2_model *m = lpl_gpt2_from_gguf(g, 1, &err);
    CHECK(m != NULL, "load %s: %s", path, err.msg);
    lpl_gguf_close(g);
    if (m && lpl_gpt2_make_trainable(m, &err) != LPL_OK) {
        CHECK(0, "trainable: %s", err.msg);
        lpl_gpt2_free(m);
        return NULL;
    }
    return m;
}

/* ---------------- 1. against the float64 PyTorch reference ---------------- */

static float *ref_floats(const lpl_safetensors *ref, const char *name, int64_t *n)
{
    const lpl_st_tensor *t = lpl_safetensors_find(ref, name);
    CHECK(t != NULL, "reference has no %s", name);
    if (!t)
        return NULL;
    *n = lpl_st_numel(t);
    float *f = malloc((size_t)*n * sizeof(float));
    lpl_st_to_f32(t->dtype, t->data, f, *n);
    return f;
}

/* AdamW from the reference's initial adapter (read as a PEFT folder): the loss of
 * every step within 1e-5 relative, the eval loss after them within 1e-4. */
static void check_adamw(const char *dir, const lpl_gpt2_model *m, const lpl_safetensors *ref)
{
    int64_t n_tok, n_ev, n_loss, n1;
    float *tok_f = ref_floats(ref, "adam.train_tokens", &n_tok), *ev_f = ref_floats(ref, "adam.eval_tokens", &n_ev);
    float *losses = ref_floats(ref, "adam.losses", &n_loss), *ev_loss = ref_floats(ref, "adam.eval_loss", &n1);
    float *lr = ref_floats(ref, "adam.lr", &n1);
    char ad[600];
    snprintf(ad, sizeof ad, "%s/adapter0", dir);
    lpl_error err = {0};
    lpl_lora *l = lpl_adapter_load(ad, &m->cfg, &err);
    CHECK(l != NULL, "%s: PEFT adapter: %s", ad, err.msg);
    if (!tok_f || !ev_f || !losses || !ev_loss || !lr || !l)
        goto done;
    CHECK(l->n_modules == 7 * m->cfg.n_layer, "%s: %d modules", ad, l->n_modules);
    const int steps = (int)n_loss, n = (int)(n_tok / steps), T = n - 1;
    int *tok = malloc((size_t)n_tok * sizeof(int)), *ev = malloc((size_t)n_ev * sizeof(int));
    for (int64_t i = 0; i < n_tok; i++)
        tok[i] = (int)tok_f[i];
    for (int64_t i = 0; i < n_ev; i++)
        ev[i] = (int)ev_f[i];
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, 0, &err);
    lpl_adamw opt;
    lpl_adamw_init(&opt, NULL, l->n_params, &err);
    lpl_loss loss;
    for (int k = 0; k < steps; k++) {
        CHECK(lpl_gpt2_forward(m, l, s, tok + (size_t)k * n, tok + (size_t)k * n + 1, NULL, T, 1, &loss, &err) ==
                  LPL_OK, "adam forward: %s", err.msg);
        CHECK_CLOSE(loss.loss, losses[k], 0, 1e-5, "AdamW step loss vs reference");
        lpl_lora_zero_grads(l);
        CHECK(lpl_gpt2_backward(m, l, s, &err) == LPL_OK, "adam backward: %s", err.msg);
        lpl_adamw_step(&opt, l->params, l->grads, lr[0]);
    }
    CHECK(lpl_gpt2_forward(m, l, s, ev, ev + 1, NULL, (int)n_ev - 1, 0, &loss, &err) == LPL_OK, "eval: %s", err.msg);
    CHECK(fabs(loss.loss - ev_loss[0]) <= 1e-4, "%s: eval loss after %d AdamW steps %.7f, reference %.7f", dir, steps,
          loss.loss, ev_loss[0]);
    printf("%s: %d AdamW steps from the PEFT adapter, eval loss %.7f vs %.7f (first step loss %.6f)\n", dir, steps,
           loss.loss, ev_loss[0], losses[0]);
    lpl_adamw_free(&opt);
    lpl_gpt2_state_free(s);
    free(tok), free(ev);
done:
    lpl_lora_free(l);
    free(tok_f), free(ev_f), free(losses), free(ev_loss), free(lr);
}

static void check_against_torch(const char *tmp, const char *arch, const char *dtype, int shards)
{
    char dir[512], cmd[1400], gg[600];
    snprintf(dir, sizeof dir, "%s/%s-%s-%d", tmp, arch, dtype, shards);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/llama_ref.py --arch %s --dtype %s --shards %d --out %s%s >/dev/null",
             arch, dtype, shards, dir, shards == 1 ? " --adam" : "");
    if (!run(cmd))
        return;
    snprintf(gg, sizeof gg, "%s/model.gguf", dir);
    lpl_error err = {0};
    lpl_status st = lpl_convert_hf_dir(dir, gg, LPL_F32, &err);
    CHECK(st == LPL_OK, "%s: convert: %s", dir, err.msg);
    if (st != LPL_OK)
        return;
    lpl_gpt2_model *m = load_gguf(gg);
    snprintf(cmd, sizeof cmd, "%s/ref.safetensors", dir);
    lpl_safetensors *ref = lpl_safetensors_open(cmd, &err);
    CHECK(ref != NULL, "ref: %s", err.msg);
    if (!m || !ref)
        goto done;
    CHECK(m->cfg.arch == (strcmp(arch, "llama") ? LPL_ARCH_QWEN2 : LPL_ARCH_LLAMA) && m->cfg.n_kv_head == 2 &&
              m->cfg.n_ff == 128 && (m->cfg.untied == !strcmp(arch, "llama")),
          "%s: config read back (arch %d, kv %d, ff %d, untied %d)", dir, m->cfg.arch, m->cfg.n_kv_head, m->cfg.n_ff,
          m->cfg.untied);
    const lpl_st_tensor *tt = lpl_safetensors_find(ref, "tokens"), *tl = lpl_safetensors_find(ref, "logits");
    const lpl_st_tensor *tloss = lpl_safetensors_find(ref, "loss");
    int n = (int)lpl_st_numel(tt), T = n - 1, V = m->cfg.n_vocab;
    float *ftok = malloc((size_t)n * 4), *rlog = malloc((size_t)T * V * 4), rloss;
    int *tok = malloc((size_t)n * sizeof(int));
    lpl_st_to_f32(tt->dtype, tt->data, ftok, n);
    lpl_st_to_f32(tl->dtype, tl->data, rlog, (int64_t)T * V);
    lpl_st_to_f32(tloss->dtype, tloss->data, &rloss, 1);
    for (int i = 0; i < n; i++)
        tok[i] = (int)ftok[i];
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, 1, &err);
    CHECK(s != NULL, "state: %s", err.msg);
    lpl_loss loss;
    st = lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, &loss, &err);
    CHECK(st == LPL_OK, "forward: %s", err.msg);
    double worst = 0;
    const float *lg = lpl_gpt2_logits(s);
    for (int64_t i = 0; i < (int64_t)T * V; i++)
        worst = fmax(worst, fabs(lg[i] - rlog[i]));
    CHECK(worst <= LOGIT_TOL, "%s: logits differ from the float64 reference by %g (tol %g)", dir, worst, LOGIT_TOL);
    st = lpl_gpt2_forward(m, NULL, s, tok, tok + 1, NULL, T, 1, &loss, &err);
    CHECK(st == LPL_OK, "forward: %s", err.msg);
    CHECK_CLOSE(loss.loss, rloss, 0, 1e-5, "loss vs reference");
    lpl_gpt2_zero_grads(s);
    st = lpl_gpt2_backward(m, NULL, s, &err);
    CHECK(st == LPL_OK, "backward: %s", err.msg);
    int n_checked = 0;
    double worst_rel = 0;
    for (int64_t k = 0; k < lpl_safetensors_n_tensors(ref); k++) {
        const lpl_st_tensor *t = &lpl_safetensors_tensors(ref)[k];
        if (strncmp(t->name, "grad.", 5))
            continue;
        int64_t len = 0;
        float *g = hf_tensor(m, lpl_gpt2_state_grads(s), t->name + 5, &len);
        CHECK(g && len == lpl_st_numel(t), "%s: tensor %s has no counterpart", dir, t->name + 5);
        if (!g || len != lpl_st_numel(t))
            continue;
        float *r = malloc((size_t)len * 4);
        lpl_st_to_f32(t->dtype, t->data, r, len);
        double mx = 0, bad = 0;
        for (int64_t i = 0; i < len; i++)
            mx = fmax(mx, fabs(r[i]));
        for (int64_t i = 0; i < len; i++) {
            double e = fabs(g[i] - r[i]) - (GRAD_ABS * mx + GRAD_REL * fabs(r[i]));
            bad = fmax(bad, e);
            worst_rel = fmax(worst_rel, fabs(g[i] - r[i]) / (mx > 0 ? mx : 1));
        }
        CHECK(bad <= 0 && mx > 0, "%s: gradient of %s off the reference (max |ref| %g, excess %g)", dir, t->name + 5,
              mx, bad);
        n_checked++;
        free(r);
    }
    CHECK(n_checked >= 20, "%s: only %d gradients compared", dir, n_checked);
    printf("%s: logits max diff %.2e, loss %.7f vs %.7f, %d gradient tensors, worst %.2e of max\n", dir, worst,
           loss.loss, rloss, n_checked, worst_rel);
    lpl_gpt2_state_free(s);
    free(ftok), free(rlog), free(tok);
    if (shards == 1)
        check_adamw(dir, m, ref);
done:
    lpl_safetensors_close(ref);
    lpl_gpt2_free(m);
}

/* ---------------- 2. finite differences ---------------- */

static lpl_gpt2_model *random_model(const char *preset, uint64_t seed)
{
    lpl_gpt2_config c;
    lpl_error err = {0};
    lpl_gpt2_preset(preset, &c, &err);
    c.n_vocab = 96; /* a smaller head keeps the loss's rounding small */
    lpl_gpt2_model *m = lpl_gpt2_create_random(&c, seed, &err);
    CHECK(m != NULL, "create %s: %s", preset, err.msg);
    lpl_rng r;
    lpl_rng_seed(&r, seed + 1);
    for (int64_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.1f * lpl_rng_normal(&r);
    return m;
}

static void sequence(int *tok, int n, int V, uint64_t seed)
{
    lpl_rng r;
    lpl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++)
        tok[i] = (int)(lpl_rng_next(&r) % (uint64_t)V);
}

typedef struct {
    lpl_gpt2_model *m;
    lpl_lora *l;
    lpl_gpt2_state *s;
    const int *tok;
    int T;
    float pattn; /* attention dropout (re-keyed before each forward) */
} fd_case;

static double loss_of(fd_case *f)
{
    lpl_error err = {0};
    lpl_loss loss;
    if (f->pattn > 0) {
        lpl_gpt2_dropout d = {0, f->pattn, 0};
        lpl_gpt2_state_set_dropout(f->s, &d, 99, &err);
    }
    lpl_status st = lpl_gpt2_forward(f->m, f->l, f->s, f->tok, f->tok + 1, NULL, f->T, 1, &loss, &err);
    CHECK(st == LPL_OK, "fd forward: %s", err.msg);
    return loss.nll_sum / loss.n_scored;
}

/* Checks 4 sampled entries of p[0..n) whose gradient is g against central differences. */
static void fd_check(fd_case *f, const char *what, float *p, const float *g, int64_t n, lpl_rng *r)
{
    for (int k = 0; k < 4; k++) {
        int64_t i = (int64_t)(lpl_rng_next(r) % (uint64_t)n);
        float keep = p[i];
        double d[2];
        for (int k2 = 0; k2 < 2; k2++) {
            float h = k2 ? FD_H / 2 : FD_H;
            p[i] = keep + h;
            double up = loss_of(f);
            p[i] = keep - h;
            double dn = loss_of(f);
            d[k2] = (up - dn) / ((double)(keep + h) - (double)(keep - h));
        }
        p[i] = keep;
        double fd = (4.0 * d[1] - d[0]) / 3.0; /* Richardson: the h^2 term cancels */
        CHECK(fabs(g[i] - fd) <= FD_ABS + FD_REL * fabs(fd), "%s[%lld]: backward %.6g, finite difference %.6g", what,
              (long long)i, g[i], fd);
    }
}

static void check_fd(const char *preset, float pattn)
{
    lpl_gpt2_model *m = random_model(preset, 11);
    if (!m)
        return;
    lpl_error err = {0};
    const int T = 36; /* past one 32-row attention block */
    int tok[37];
    sequence(tok, T + 1, m->cfg.n_vocab, 5);
    lpl_lora_config lc;
    lpl_lora_config_default(&lc);
    lc.r = 4;
    lc.alpha = 4.0f; /* scaling 1: with 8, B A moves q and k so far that the loss curves within a step */
    lc.dropout = 0.0f;
    lc.n_targets = 7;
    const char *all[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    for (int i = 0; i < 7; i++)
        snprintf(lc.targets[i], sizeof lc.targets[i], "%s", all[i]);
    lpl_lora *l = lpl_lora_attach(&lc, &m->cfg, &err);
    CHECK(l != NULL, "attach: %s", err.msg);
    lpl_rng r;
    lpl_rng_seed(&r, 3);
    for (int64_t i = 0; l && i < l->n_params; i++) /* B away from 0 so A has gradients too */
        l->params[i] += 0.1f * lpl_rng_normal(&r);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, 1, &err);
    fd_case f = {m, l, s, tok, T, pattn};
    loss_of(&f);
    lpl_gpt2_zero_grads(s);
    lpl_lora_zero_grads(l);
    CHECK(lpl_gpt2_backward(m, l, s, &err) == LPL_OK, "backward: %s", err.msg);
    float *g = malloc((size_t)m->n_params * 4), *gl = malloc((size_t)l->n_params * 4);
    memcpy(g, lpl_gpt2_state_grads(s), (size_t)m->n_params * 4);
    memcpy(gl, l->grads, (size_t)l->n_params * 4);
    char what[160];
    static const char *names[] = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                                  "model.layers.0.input_layernorm.weight",
                                  "model.layers.1.post_attention_layernorm.weight"};
    for (int k = 0; k < 5; k++) {
        int64_t len;
        float *p = hf_tensor(m, m->params, names[k], &len);
        if (!p)
            continue;
        snprintf(what, sizeof what, "%s %s", preset, names[k]);
        fd_check(&f, what, p, g + (p - m->params), len, &r);
    }
    for (int layer = 0; layer < m->cfg.n_layer; layer++)
        for (int st = LPL_SITE_LLAMA_FIRST; st < LPL_SITE_LLAMA_END; st++) {
            lpl_gpt2_block_offsets o;
            lpl_gpt2_block_offsets_of(&m->cfg, layer, &o);
            int out, in;
            lpl_site_shape(&m->cfg, (lpl_site)st, &out, &in);
            snprintf(what, sizeof what, "%s layer %d %s%s", preset, layer, lpl_site_name((lpl_site)st),
                     pattn > 0 ? " (attention dropout)" : "");
            fd_check(&f, what, m->params + o.w[st], g + o.w[st], (int64_t)out * in, &r);
            if (o.b[st] >= 0)
                fd_check(&f, what, m->params + o.b[st], g + o.b[st], out, &r);
        }
    for (int i = 0; l && i < l->n_modules; i++) {
        const lpl_lora_module *mod = &l->modules[i];
        snprintf(what, sizeof what, "%s lora %d.%s A", preset, mod->layer, lpl_site_name(mod->site));
        fd_check(&f, what, mod->A, gl + (mod->A - l->params), (int64_t)lc.r * mod->in, &r);
        snprintf(what, sizeof what, "%s lora %d.%s B", preset, mod->layer, lpl_site_name(mod->site));
        fd_check(&f, what, mod->B, gl + (mod->B - l->params), (int64_t)lc.r * mod->out, &r);
    }
    free(g), free(gl);
    lpl_gpt2_state_free(s);
    lpl_lora_free(l);
    lpl_gpt2_free(m);
}

/* ---------------- 3. early stop, GGUF round trip, compute int8 ---------------- */

/* Adapter gradients of a one-site placement with and without full gradients. */
static void check_early_stop(const char *preset)
{
    lpl_gpt2_model *m = random_model(preset, 21);
    if (!m)
        return;
    lpl_error err = {0};
    const int T = 20;
    int tok[21];
    sequence(tok, T + 1, m->cfg.n_vocab, 9);
    lpl_gpt2_state *sf = lpl_gpt2_state_new(m, T, 1, &err), *sl = lpl_gpt2_state_new(m, T, 0, &err);
    for (int st = LPL_SITE_LLAMA_FIRST; st < LPL_SITE_LLAMA_END; st++) {
        lpl_lora_config lc;
        lpl_lora_config_default(&lc);
        lc.r = 4;
        lc.dropout = 0;
        lc.n_targets = 1;
        snprintf(lc.targets[0], sizeof lc.targets[0], "%s", lpl_site_name((lpl_site)st));
        lc.n_layers = 1;
        lc.layers[0] = 1;
        lpl_lora *l = lpl_lora_attach(&lc, &m->cfg, &err);
        CHECK(l && l->n_modules == 1, "attach %s: %s", lc.targets[0], err.msg);
        if (!l)
            continue;
        for (int64_t i = 0; i < l->n_params; i++)
            l->params[i] += 0.05f * (float)((i * 7919) % 13 - 6);
        float *a = malloc((size_t)l->n_params * 4);
        lpl_loss loss;
        lpl_gpt2_forward(m, l, sf, tok, tok + 1, NULL, T, 1, &loss, &err);
        lpl_gpt2_zero_grads(sf);
        lpl_lora_zero_grads(l);
        lpl_gpt2_backward(m, l, sf, &err);
        memcpy(a, l->grads, (size_t)l->n_params * 4);
        lpl_gpt2_forward(m, l, sl, tok, tok + 1, NULL, T, 1, &loss, &err);
        lpl_lora_zero_grads(l);
        lpl_gpt2_backward(m, l, sl, &err);
        double d = 0, mx = 0;
        for (int64_t i = 0; i < l->n_params; i++) {
            d = fmax(d, fabs(a[i] - l->grads[i]));
            mx = fmax(mx, fabs(a[i]));
        }
        CHECK(d <= 1e-6 * mx && mx > 0, "%s %s: early-stopped backward differs by %g (max %g)", preset,
              lc.targets[0], d, mx);
        free(a);
        lpl_lora_free(l);
    }
    lpl_gpt2_state_free(sf);
    lpl_gpt2_state_free(sl);
    lpl_gpt2_free(m);
}

/* GGUF out and in (f32: the same logits bit for bit; llama's q/k permutation undone),
 * and compute int8 on a Q8_0 copy within 0.5% of its f32 compute. */
static void check_gguf_and_int8(const char *tmp, const char *preset)
{
    lpl_gpt2_model *m = random_model(preset, 31);
    if (!m)
        return;
    lpl_error err = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp, preset);
    lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
    CHECK(lpl_gpt2_to_gguf(m, LPL_F32, preset, NULL, 0, NULL, 0, w, &err) == LPL_OK, "to gguf: %s", err.msg);
    CHECK(lpl_gguf_write_file(w, path, &err) == LPL_OK, "write: %s", err.msg);
    lpl_gguf_writer_free(w);
    lpl_gpt2_model *b = load_gguf(path);
    const int T = 24;
    int tok[25];
    sequence(tok, T + 1, m->cfg.n_vocab, 4);
    if (b) {
        CHECK(b->n_params == m->n_params && !memcmp(b->params, m->params, (size_t)m->n_params * 4),
              "%s: GGUF round trip changed the weights", preset);
    }
    lpl_gpt2_model *q = load_gguf(path);
    if (q && lpl_gpt2_convert(q, LPL_Q8_0, &err) == LPL_OK) {
        lpl_gpt2_state *s = lpl_gpt2_state_new(q, T, 0, &err);
        lpl_loss a, c;
        lpl_gpt2_forward(q, NULL, s, tok, tok + 1, NULL, T, 0, &a, &err);
        lpl_gpt2_state_set_compute(s, LPL_COMPUTE_INT8);
        lpl_gpt2_forward(q, NULL, s, tok, tok + 1, NULL, T, 0, &c, &err);
        CHECK(fabs(c.loss - a.loss) <= 5e-3 * a.loss, "%s: compute int8 loss %g vs f32 %g (over 0.5%%)", preset,
              c.loss, a.loss);
        printf("%s: q8_0 loss f32 compute %.6f, int8 compute %.6f\n", preset, a.loss, c.loss);
        lpl_gpt2_state_free(s);
    }
    lpl_gpt2_free(q);
    lpl_gpt2_free(b);
    lpl_gpt2_free(m);
}

/* Parameter counts of the real configs (their model cards / PEFT's print). */
static void check_counts(void)
{
    static const struct { const char *preset; int64_t n; } want[] = {
        {"smollm2-135m", 134515008}, {"smollm2-360m", 361821120}, {"qwen2.5-0.5b", 494032768},
        {"tinyllama-1.1b", 1100048384}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        lpl_gpt2_config c;
        lpl_error err = {0};
        CHECK(lpl_gpt2_preset(want[i].preset, &c, &err) == LPL_OK, "preset %s: %s", want[i].preset, err.msg);
        CHECK(lpl_gpt2_param_count(&c) == want[i].n, "%s: %lld parameters, want %lld", want[i].preset,
              (long long)lpl_gpt2_param_count(&c), (long long)want[i].n);
    }
}

/* The config.json files of the real models (as on the Hub) are read, and the GGUF they
 * lay out holds exactly their parameters: Q8_0 matrices (34 bytes per 32 weights)
 * plus fp32 norms and biases, plus the header. */
static void check_real_configs(void)
{
    static const struct { const char *name, *json; int64_t params, vectors; } cfgs[] = {
        {"SmolLM2-135M",
         "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0, "
         "\"bos_token_id\": 0, \"eos_token_id\": 0, \"hidden_act\": \"silu\", \"hidden_size\": 576, "
         "\"initializer_range\": 0.041666666666666664, \"intermediate_size\": 1536, \"is_llama_config\": true, "
         "\"max_position_embeddings\": 8192, \"model_type\": \"llama\", \"num_attention_heads\": 9, "
         "\"num_hidden_layers\": 30, \"num_key_value_heads\": 3, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, "
         "\"rope_interleaved\": false, \"rope_scaling\": null, \"rope_theta\": 100000, \"tie_word_embeddings\": true, "
         "\"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.40.1\", \"use_cache\": true, \"vocab_size\": 49152}",
         134515008, 576 * 61},
        {"Qwen2.5-0.5B",
         "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": 151643, "
         "\"eos_token_id\": 151643, \"hidden_act\": \"silu\", \"hidden_size\": 896, \"initializer_range\": 0.02, "
         "\"intermediate_size\": 4864, \"max_position_embeddings\": 32768, \"max_window_layers\": 24, "
         "\"model_type\": \"qwen2\", \"num_attention_heads\": 14, \"num_hidden_layers\": 24, "
         "\"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"sliding_window\": 32768, "
         "\"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\", \"use_cache\": true, "
         "\"use_sliding_window\": false, \"vocab_size\": 151936}",
         494032768, 896 * 49 + 24 * (896 + 2 * 128)},
        {"TinyLlama-1.1B-Chat-v1.0",
         "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"bos_token_id\": 1, "
         "\"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": 2048, \"initializer_range\": 0.02, "
         "\"intermediate_size\": 5632, \"max_position_embeddings\": 2048, \"model_type\": \"llama\", "
         "\"num_attention_heads\": 32, \"num_hidden_layers\": 22, \"num_key_value_heads\": 4, \"pretraining_tp\": 1, "
         "\"rms_norm_eps\": 1e-05, \"rope_scaling\": null, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false, "
         "\"torch_dtype\": \"bfloat16\", \"use_cache\": true, \"vocab_size\": 32000}",
         1100048384, 2048 * 45},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        lpl_error err = {0};
        int64_t gguf = 0, need = lpl_hf_stream_need(cfgs[i].json, strlen(cfgs[i].json), LPL_Q8_0, &gguf, &err);
        CHECK(need > 0, "%s: config.json refused: %s", cfgs[i].name, err.msg);
        int64_t matrices = cfgs[i].params - cfgs[i].vectors, want = matrices / 32 * 34 + 4 * cfgs[i].vectors;
        CHECK(gguf >= want && gguf <= want + (1 << 20), "%s: GGUF of %lld bytes, the parameters need %lld + header",
              cfgs[i].name, (long long)gguf, (long long)want);
    }
    /* variants we do not run are named */
    static const struct { const char *json, *want; } bad[] = {
        {"{\"model_type\": \"llama\", \"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
         "\"intermediate_size\": 128, \"vocab_size\": 320, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}",
         "rope_scaling"},
        {"{\"model_type\": \"llama\", \"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
         "\"intermediate_size\": 128, \"vocab_size\": 320, \"num_key_value_heads\": 3}",
         "num_key_value_heads = 3 must divide"},
        {"{\"model_type\": \"llama\", \"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
         "\"intermediate_size\": 128, \"vocab_size\": 320, \"hidden_act\": \"gelu\"}",
         "hidden_act 'gelu'"},
        {"{\"model_type\": \"qwen2\", \"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, "
         "\"intermediate_size\": 128, \"vocab_size\": 320, \"use_sliding_window\": true}",
         "use_sliding_window"},
        {"{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 128, "
         "\"vocab_size\": 320}",
         "'num_hidden_layers' is missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lpl_error err = {0};
        int64_t gguf;
        CHECK(lpl_hf_stream_need(bad[i].json, strlen(bad[i].json), LPL_Q8_0, &gguf, &err) < 0 &&
                  strstr(err.msg, bad[i].want),
              "bad config %zu: message '%s' lacks '%s'", i, err.msg, bad[i].want);
    }
}

int main(void)
{
    lpl_threads_init(2, NULL);
    char tmp[] = "/tmp/test_llama.XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    check_counts();
    check_real_configs();
    check_against_torch(tmp, "llama", "f32", 1);
    check_against_torch(tmp, "qwen2", "f32", 1);
    check_against_torch(tmp, "llama", "bf16", 2);
    check_against_torch(tmp, "qwen2", "f16", 3);
    check_fd("llama-tiny", 0.0f);
    check_fd("qwen2-tiny", 0.0f);
    check_fd("llama-tiny", 0.3f);
    check_early_stop("llama-tiny");
    check_early_stop("qwen2-tiny");
    check_gguf_and_int8(tmp, "llama-tiny");
    check_gguf_and_int8(tmp, "qwen2-tiny");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return check_report("test_llama");
}
