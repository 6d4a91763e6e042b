/* GPT-2 model: presets and parameter counts, refusals, LoRA identities (B = 0,
 * merge/unmerge), learning (loss driven near zero), determinism across runs and
 * thread counts, weight conversion, loss definition, timings. */
#include "check.h"
#include "lpl/model/gpt2.h"
#include "lpl/core/kernels.h"
#include "lpl/model/lora.h"
#include "lpl/model/optim.h"
#include "lpl/core/threads.h"
#include "lpl/core/rng.h"

#include <string.h>

static void test_presets(void)
{
    struct { const char *name; int64_t params; } want[] = {
        {"gpt2", 124439808},          {"dialogpt-small", 124439808}, {"distilgpt2", 81912576},
        {"gpt2-medium", 354823168},   {"dialogpt-medium", 354823168}, {"gpt2-large", 774030080},
        {"dialogpt-large", 774030080},
    };
    lpl_error err;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        lpl_gpt2_config c;
        CHECK(lpl_gpt2_preset(want[i].name, &c, &err) == LPL_OK, "%s: %s", want[i].name, err.msg);
        CHECK(lpl_gpt2_config_check(&c, &err) == LPL_OK, "%s checks", want[i].name);
        CHECK(lpl_gpt2_param_count(&c) == want[i].params, "%s: %lld params, want %lld", want[i].name,
              (long long)lpl_gpt2_param_count(&c), (long long)want[i].params);
    }
    lpl_gpt2_config c;
    CHECK(lpl_gpt2_preset("tiny", &c, &err) == LPL_OK && c.n_embd % 32 == 0, "tiny");
    CHECK(lpl_gpt2_preset("lab-small", &c, &err) == LPL_OK && c.n_vocab == 50257, "lab-small");
    CHECK(lpl_gpt2_preset("gpt3", &c, &err) == LPL_ERR_INVALID && strstr(err.msg, "'gpt3'"), "unknown: %s", err.msg);

    lpl_gpt2_preset("tiny", &c, &err);
    c.n_head = 5;
    CHECK(lpl_gpt2_config_check(&c, &err) == LPL_ERR_INVALID && strstr(err.msg, "not divisible by n_head"),
          "n_embd %% n_head: %s", err.msg);
    CHECK(lpl_gpt2_create_random(&c, 1, &err) == NULL && strstr(err.msg, "n_head"), "create refuses");
    lpl_gpt2_preset("tiny", &c, &err);
    c.n_embd = 48;
    c.n_head = 4;
    CHECK(lpl_gpt2_config_check(&c, &err) == LPL_ERR_INVALID && strstr(err.msg, "multiple of 32"), "%s", err.msg);
    c.n_embd = 64;
    c.n_layer = 0;
    CHECK(lpl_gpt2_config_check(&c, &err) == LPL_ERR_INVALID && strstr(err.msg, "n_layer"), "%s", err.msg);
}

static lpl_gpt2_model *tiny_model(uint64_t seed)
{
    lpl_gpt2_config c;
    lpl_error err;
    lpl_gpt2_preset("tiny", &c, &err);
    lpl_gpt2_model *m = lpl_gpt2_create_random(&c, seed, &err);
    /* larger-than-init weights so adapters and conversions visibly matter */
    lpl_rng r;
    lpl_rng_seed(&r, seed ^ 99);
    for (int64_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.05f * lpl_rng_normal(&r);
    /* token embeddings of GPT-2's scale (norm ~4): with ln_f frozen, adapters can
     * only reach confident predictions if the tied head has that range */
    for (int64_t i = 0; i < (int64_t)c.n_vocab * c.n_embd; i++)
        ((float *)m->wte.data)[i] *= 8.0f;
    return m;
}

static void seq(int *tok, int *tgt, int T, int V, uint64_t seed)
{
    lpl_rng r;
    lpl_rng_seed(&r, seed);
    for (int t = 0; t < T; t++)
        tok[t] = (int)(lpl_rng_next(&r) % (uint64_t)V);
    for (int t = 0; t < T; t++)
        tgt[t] = t + 1 < T ? tok[t + 1] : (int)(lpl_rng_next(&r) % (uint64_t)V);
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_refusals(void)
{
    lpl_gpt2_model *m = tiny_model(1);
    lpl_error err;
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, 32, 0, &err);
    int tok[80] = {0}, tgt[80] = {0};
    lpl_loss loss;
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, 0, 0, &loss, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "T = 0"),
          "T = 0: %s", err.msg);
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, 65, 0, &loss, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "n_ctx = 64"),
          "T > n_ctx: %s", err.msg);
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, 33, 0, &loss, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "max_T = 32"),
          "T > max_T: %s", err.msg);
    tok[3] = 512;
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, 8, 0, &loss, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "token id 512 at position 3"),
          "token out of range: %s", err.msg);
    tok[3] = 0;
    tgt[5] = -1;
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, 8, 0, &loss, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "target id -1 at position 5"),
          "target out of range: %s", err.msg);
    uint8_t mask[8] = {1, 1, 1, 1, 1, 0, 1, 1};
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, mask, 8, 0, &loss, &err) == LPL_OK, "unscored bad target is ignored");
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, 8, 0, &loss, &err) == LPL_OK, "no targets");
    CHECK(lpl_gpt2_backward(m, NULL, s, &err) == LPL_ERR_INVALID && strstr(err.msg, "no targets"),
          "backward without targets: %s", err.msg);
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, mask, 8, 1, &loss, &err) == LPL_OK, "forward with targets");
    CHECK(lpl_gpt2_backward(m, NULL, s, &err) == LPL_OK, "backward");
    CHECK(lpl_gpt2_backward(m, NULL, s, &err) == LPL_ERR_INVALID && strstr(err.msg, "already run"),
          "second backward refused: %s", err.msg);
    CHECK(lpl_gpt2_state_new(m, 65, 0, &err) == NULL && strstr(err.msg, "max_T"), "state too long: %s", err.msg);
    lpl_gpt2_state_free(s);
    lpl_gpt2_convert(m, LPL_Q8_0, &err);
    CHECK(m->params == NULL, "quantized model has no trainable params");
    CHECK(lpl_gpt2_state_new(m, 8, 1, &err) == NULL && strstr(err.msg, "fp32 trainable"), "full grads on q8_0: %s",
          err.msg);
    lpl_gpt2_free(m);
}

/* The loss is the mean over scored positions of -log softmax(logits)[target]. */
static void test_loss_definition(void)
{
    lpl_gpt2_model *m = tiny_model(2);
    lpl_error err;
    const int T = 10, V = m->cfg.n_vocab;
    int tok[10], tgt[10];
    uint8_t mask[10] = {0, 0, 0, 1, 1, 1, 0, 1, 1, 1};
    seq(tok, tgt, T, V, 4);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, 0, &err);
    lpl_loss loss;
    float *z = malloc((size_t)T * V * sizeof(float));
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, NULL, &err) == LPL_OK, "forward without targets");
    memcpy(z, lpl_gpt2_logits(s), (size_t)T * V * sizeof(float));
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, mask, T, 0, &loss, &err) == LPL_OK, "forward");
    /* with targets the logits hold the scored rows only, packed */
    CHECK(memcmp(lpl_gpt2_logits(s), z + 3 * V, (size_t)3 * V * sizeof(float)) == 0 &&
              memcmp(lpl_gpt2_logits(s) + 3 * V, z + 7 * V, (size_t)3 * V * sizeof(float)) == 0,
          "packed scored rows equal the full logits' rows");
    double sum = 0;
    for (int t = 0; t < T; t++) {
        if (!mask[t])
            continue;
        double mx = -1e30, e = 0;
        for (int v = 0; v < V; v++)
            mx = fmax(mx, z[t * V + v]);
        for (int v = 0; v < V; v++)
            e += exp(z[t * V + v] - mx);
        sum += mx + log(e) - z[t * V + tgt[t]];
    }
    CHECK(loss.n_scored == 6, "scored %d", loss.n_scored);
    CHECK_CLOSE(loss.nll_sum, sum, 1e-5, 1e-6, "nll sum");
    CHECK_CLOSE(loss.loss, sum / 6, 1e-6, 1e-6, "mean loss");
    /* causal: logits at position 2 do not depend on later tokens */
    tok[6] = (tok[6] + 1) % V;
    lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, NULL, &err);
    CHECK(memcmp(z, lpl_gpt2_logits(s), (size_t)6 * V * sizeof(float)) == 0, "causal: rows 0-5 ignore token 6");
    CHECK(memcmp(z + 6 * V, lpl_gpt2_logits(s) + 6 * V, (size_t)V * sizeof(float)) != 0, "row 6 sees token 6");
    free(z);
    lpl_gpt2_state_free(s);
    lpl_gpt2_free(m);
}

static lpl_lora *all_sites(const lpl_gpt2_config *c, int r, float dropout, uint64_t seed)
{
    lpl_lora_config lc;
    lpl_lora_config_default(&lc);
    lc.r = r;
    lc.dropout = dropout;
    lc.seed = seed;
    lpl_error err;
    return lpl_lora_attach(&lc, c, &err);
}

static void test_lora_identities(void)
{
    lpl_gpt2_model *m = tiny_model(3);
    lpl_error err;
    const int T = 16, V = m->cfg.n_vocab;
    const int64_t NL = (int64_t)T * V;
    int tok[16], tgt[16];
    seq(tok, tgt, T, V, 5);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, 0, &err);
    float *base = malloc(NL * sizeof(float)), *adapted = malloc(NL * sizeof(float));
    lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, NULL, &err);
    memcpy(base, lpl_gpt2_logits(s), NL * sizeof(float));

    lpl_lora *l = all_sites(&m->cfg, 8, 0.1f, 42);
    /* B = 0: the adapted model is the base model, bit for bit, even in training mode */
    lpl_gpt2_forward(m, l, s, tok, NULL, NULL, T, 1, NULL, &err);
    CHECK(memcmp(base, lpl_gpt2_logits(s), NL * sizeof(float)) == 0, "B = 0 gives the base logits");

    lpl_rng r;
    lpl_rng_seed(&r, 8);
    for (int i = 0; i < l->n_modules; i++)
        for (int j = 0; j < l->cfg.r * l->modules[i].out; j++)
            l->modules[i].B[j] = 0.05f * lpl_rng_normal(&r);
    lpl_gpt2_forward(m, l, s, tok, NULL, NULL, T, 0, NULL, &err);
    memcpy(adapted, lpl_gpt2_logits(s), NL * sizeof(float));
    double moved = max_abs_diff(adapted, base, NL);
    CHECK(moved > 1e-2, "a non-zero B changes the logits (%g)", moved);

    float *w0 = malloc((size_t)m->n_params * sizeof(float));
    memcpy(w0, m->params, (size_t)m->n_params * sizeof(float));
    CHECK(lpl_gpt2_merge_lora(m, l, 1, &err) == LPL_OK, "merge: %s", err.msg);
    lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, NULL, &err);
    double d = max_abs_diff(lpl_gpt2_logits(s), adapted, NL);
    CHECK(d < 1e-4, "merged base == adapter forward (max diff %g)", d);
    CHECK(lpl_gpt2_merge_lora(m, l, -1, &err) == LPL_OK, "unmerge");
    double dw = max_abs_diff(m->params, w0, m->n_params);
    CHECK(dw < 1e-6, "unmerge restores the weights (max diff %g)", dw);
    lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, NULL, &err);
    d = max_abs_diff(lpl_gpt2_logits(s), base, NL);
    CHECK(d < 1e-4, "unmerged base logits (max diff %g)", d);

    /* merging into a Q8_0 base is lossy but lands near the adapted model */
    lpl_gpt2_convert(m, LPL_Q8_0, &err);
    lpl_gpt2_forward(m, l, s, tok, NULL, NULL, T, 0, NULL, &err);
    memcpy(adapted, lpl_gpt2_logits(s), NL * sizeof(float));
    lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, NULL, &err);
    double before = max_abs_diff(lpl_gpt2_logits(s), adapted, NL);
    CHECK(lpl_gpt2_merge_lora(m, l, 1, &err) == LPL_OK, "merge q8_0: %s", err.msg);
    lpl_gpt2_forward(m, NULL, s, tok, NULL, NULL, T, 0, NULL, &err);
    double after = max_abs_diff(lpl_gpt2_logits(s), adapted, NL);
    CHECK(after < 0.2 * before, "q8_0 merge: %g from the adapter forward (was %g unmerged)", after, before);

    free(w0), free(base), free(adapted);
    lpl_lora_free(l);
    lpl_gpt2_state_free(s);
    lpl_gpt2_free(m);
}

static void test_conversion(void)
{
    lpl_gpt2_model *m = tiny_model(4);
    lpl_error err;
    const int T = 12, V = m->cfg.n_vocab;
    int tok[12], tgt[12];
    seq(tok, tgt, T, V, 6);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, 0, &err);
    lpl_loss l32, l16, l8, lback;
    lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, T, 0, &l32, &err);
    CHECK(lpl_gpt2_convert(m, LPL_F16, &err) == LPL_OK && m->wte.type == LPL_F16 &&
              m->blocks[1].w[LPL_SITE_MLP_PROJ].type == LPL_F16,
          "to f16");
    lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, T, 0, &l16, &err);
    CHECK(lpl_gpt2_convert(m, LPL_Q8_0, &err) == LPL_OK && m->blocks[0].w[0].type == LPL_Q8_0, "to q8_0");
    lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, T, 0, &l8, &err);
    CHECK_CLOSE(l16.loss, l32.loss, 0, 1e-3, "f16 loss near f32");
    CHECK_CLOSE(l8.loss, l32.loss, 0, 1e-2, "q8_0 loss near f32");
    CHECK(l8.loss != l32.loss, "q8_0 is really quantized");
    CHECK(lpl_gpt2_make_trainable(m, &err) == LPL_OK && m->params && m->wte.type == LPL_F32, "make trainable");
    lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, T, 0, &lback, &err);
    CHECK(lback.loss == l8.loss, "dequantised model computes what the q8_0 one did (%.9g vs %.9g)", lback.loss,
          l8.loss);
    CHECK(lpl_gpt2_convert(m, LPL_BF16, &err) == LPL_ERR_INVALID && strstr(err.msg, "bf16"), "bf16 target: %s",
          err.msg);
    lpl_gpt2_state_free(s);
    lpl_gpt2_free(m);
}

/* Trains LoRA adapters (or the full model) on one sequence; returns the last loss
 * and fills losses[0..steps). */
static float train(lpl_gpt2_model *m, lpl_lora *l, int steps, float lr, float *losses)
{
    lpl_error err;
    const int T = 16, V = m->cfg.n_vocab;
    int tok[16], tgt[16];
    seq(tok, tgt, T, V, 12);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, l == NULL, &err);
    float *params = l ? l->params : m->params;
    float *grads = l ? l->grads : lpl_gpt2_state_grads(s);
    int64_t n = l ? l->n_params : m->n_params;
    lpl_adamw o;
    lpl_adamw_init(&o, NULL, n, &err);
    lpl_loss loss = {0};
    for (int i = 0; i < steps; i++) {
        if (l)
            lpl_lora_zero_grads(l);
        else
            lpl_gpt2_zero_grads(s);
        if (lpl_gpt2_forward(m, l, s, tok, tgt, NULL, T, 1, &loss, &err) != LPL_OK ||
            lpl_gpt2_backward(m, l, s, &err) != LPL_OK) {
            CHECK(0, "train step: %s", err.msg);
            break;
        }
        lpl_clip_grad_norm(grads, n, 1.0);
        lpl_adamw_step(&o, params, grads, lpl_schedule_lr(LPL_SCHED_CONSTANT, lr, i, 0, steps));
        if (losses)
            losses[i] = loss.loss;
    }
    lpl_adamw_free(&o);
    lpl_gpt2_state_free(s);
    return loss.loss;
}

static void test_learning(void)
{
    lpl_error err;
    float losses[300];
    lpl_gpt2_model *m = tiny_model(5);
    lpl_lora *l = all_sites(&m->cfg, 8, 0.0f, 42);
    float last = train(m, l, 300, 1e-2f, losses);
    CHECK(losses[0] > 5.0f && last < 0.05f, "LoRA memorises one sequence: %.4f -> %.4f", losses[0], last);
    lpl_lora_free(l);
    lpl_gpt2_free(m);

    /* the same on a Q8_0 base */
    m = tiny_model(5);
    lpl_gpt2_convert(m, LPL_Q8_0, &err);
    l = all_sites(&m->cfg, 8, 0.0f, 42);
    last = train(m, l, 300, 1e-2f, losses);
    CHECK(last < 0.05f, "LoRA on q8_0: %.4f -> %.4f", losses[0], last);
    lpl_lora_free(l);
    lpl_gpt2_free(m);

    m = tiny_model(6);
    last = train(m, NULL, 200, 3e-3f, losses);
    CHECK(losses[0] > 5.0f && last < 0.05f, "full fine-tuning memorises one sequence: %.4f -> %.4f", losses[0], last);
    lpl_gpt2_free(m);
}

static void test_determinism(void)
{
    float a[20], b[20], c[20], d[20];
    for (int run = 0; run < 4; run++) {
        lpl_threads_init(run == 2 ? 1 : 2, NULL);
        lpl_gpt2_model *m = tiny_model(7);
        lpl_lora *l = all_sites(&m->cfg, 4, 0.1f, run == 3 ? 43 : 42);
        train(m, l, 20, 5e-3f, run == 0 ? a : run == 1 ? b : run == 2 ? c : d);
        lpl_lora_free(l);
        lpl_gpt2_free(m);
    }
    lpl_threads_init(2, NULL);
    CHECK(memcmp(a, b, sizeof a) == 0, "two runs with one seed give the same losses");
    CHECK(memcmp(a, c, sizeof a) == 0, "1 and 2 threads give the same losses");
    CHECK(memcmp(a, d, sizeof a) != 0, "another seed gives other losses");
    CHECK(a[19] < a[0], "loss decreases (%.4f -> %.4f)", a[0], a[19]);
}

/* The backward stops in the lowest adapted layer once its lowest adapted site has its
 * gradients (no input gradient, no LayerNorm backward below it), and keeps the
 * dropout mask of the forward instead of hashing again. LoRA gradients must be
 * bitwise those of a backward that runs everything: a state with full gradients
 * (which always runs to the embeddings), same adapters, same dropout key. */
static void test_backward_stops_early(void)
{
    static const char *const targets[][2] = {
        {"mlp.c_proj", NULL}, {"c_fc", NULL}, {"attn.c_proj", NULL}, {"c_attn", NULL}, {"c_attn", "c_fc"},
    };
    static const int first_layer[] = {0, 1, 0, 1, 0};
    lpl_gpt2_model *m = tiny_model(21);
    lpl_error err;
    const int T = 20;
    int tok[20], tgt[20];
    seq(tok, tgt, T, m->cfg.n_vocab, 8);
    for (int k = 0; k < 5; k++) {
        lpl_lora_config lc;
        lpl_lora_config_default(&lc);
        lc.r = 4;
        lc.dropout = 0.25f;
        lc.n_targets = targets[k][1] ? 2 : 1;
        for (int i = 0; i < lc.n_targets; i++)
            snprintf(lc.targets[i], sizeof lc.targets[i], "%s", targets[k][i]);
        lc.n_layers = m->cfg.n_layer - first_layer[k];
        for (int i = 0; i < lc.n_layers; i++)
            lc.layers[i] = first_layer[k] + i;
        lpl_lora *l = lpl_lora_attach(&lc, &m->cfg, &err);
        CHECK(l != NULL, "attach: %s", err.msg);
        if (!l)
            continue;
        lpl_rng r;
        lpl_rng_seed(&r, 40 + k);
        for (int64_t i = 0; i < l->n_params; i++) /* B != 0 so every path carries gradient */
            l->params[i] += 0.1f * lpl_rng_normal(&r);
        float *g_full = malloc(sizeof(float) * (size_t)l->n_params);
        uint64_t key = l->rng_state;
        for (int full = 1; full >= 0; full--) {
            lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, full, &err);
            l->rng_state = key;
            lpl_lora_zero_grads(l);
            lpl_loss loss;
            CHECK(lpl_gpt2_forward(m, l, s, tok, tgt, NULL, T, 1, &loss, &err) == LPL_OK, "%s", err.msg);
            CHECK(lpl_gpt2_backward(m, l, s, &err) == LPL_OK, "%s", err.msg);
            if (full) {
                memcpy(g_full, l->grads, sizeof(float) * (size_t)l->n_params);
            } else {
                int64_t nz = 0;
                for (int64_t i = 0; i < l->n_params; i++)
                    nz += g_full[i] != 0.0f;
                CHECK(nz > l->n_params / 2, "%s: only %lld non-zero gradients", targets[k][0], (long long)nz);
                CHECK(memcmp(g_full, l->grads, sizeof(float) * (size_t)l->n_params) == 0,
                      "%s from layer %d: LoRA gradients differ from the full backward's (max %g)", targets[k][0],
                      first_layer[k], max_abs_diff(g_full, l->grads, l->n_params));
            }
            lpl_gpt2_state_free(s);
        }
        free(g_full);
        lpl_lora_free(l);
    }
    lpl_gpt2_free(m);
}

static void test_state_and_timings(void)
{
    lpl_gpt2_model *m = tiny_model(8);
    lpl_error err;
    lpl_gpt2_state *s16 = lpl_gpt2_state_new(m, 16, 0, &err), *s32 = lpl_gpt2_state_new(m, 32, 0, &err);
    lpl_gpt2_state *sf = lpl_gpt2_state_new(m, 16, 1, &err);
    CHECK(lpl_gpt2_state_bytes(s16) > 16 * 512 * 4 && lpl_gpt2_state_bytes(s32) > lpl_gpt2_state_bytes(s16),
          "state bytes grow with max_T");
    CHECK(lpl_gpt2_state_bytes(sf) >= lpl_gpt2_state_bytes(s16) + (size_t)m->n_params * 4, "full grads counted");
    CHECK(lpl_gpt2_state_max_T(s32) == 32, "max_T");
    int tok[16], tgt[16];
    seq(tok, tgt, 16, m->cfg.n_vocab, 1);
    lpl_lora *l = all_sites(&m->cfg, 4, 0.1f, 1);
    lpl_loss loss;
    lpl_gpt2_forward(m, l, s16, tok, tgt, NULL, 16, 1, &loss, &err);
    lpl_gpt2_backward(m, l, s16, &err);
    lpl_gpt2_timings t;
    lpl_gpt2_get_timings(s16, &t);
    double parts = t.embed + t.attention + t.mlp + t.lora + t.lm_head + t.layernorm;
    CHECK(t.total > 0 && t.attention > 0 && t.mlp > 0 && t.lora > 0 && t.lm_head > 0, "timings recorded");
    CHECK(parts <= t.total * 1.0001 + 1e-6, "components (%g) within total (%g)", parts, t.total);
    lpl_gpt2_reset_timings(s16);
    lpl_gpt2_get_timings(s16, &t);
    CHECK(t.total == 0, "reset");
    lpl_lora_free(l);
    lpl_gpt2_state_free(s16), lpl_gpt2_state_free(s32), lpl_gpt2_state_free(sf);
    lpl_gpt2_free(m);
}

/* Base dropout: rates 0 give the very same bits as a state that never had dropout
 * (today's losses and gradients), forwards with training = 0 never drop, and a
 * training forward with rates > 0 takes a new mask each time from its seed. */
static void test_base_dropout(void)
{
    lpl_gpt2_model *m = tiny_model(4);
    lpl_error err;
    const int T = 16, V = m->cfg.n_vocab;
    int tok[16], tgt[16];
    seq(tok, tgt, T, V, 9);
    lpl_gpt2_state *plain = lpl_gpt2_state_new(m, T, 0, &err), *zero = lpl_gpt2_state_new(m, T, 0, &err);
    lpl_gpt2_state *on = lpl_gpt2_state_new(m, T, 0, &err);
    CHECK(lpl_gpt2_state_set_dropout(zero, &(lpl_gpt2_dropout){0, 0, 0}, 42, &err) == LPL_OK, "rates 0");
    CHECK(lpl_gpt2_state_set_dropout(on, &(lpl_gpt2_dropout){0.1f, 0.1f, 0.1f}, 42, &err) == LPL_OK, "rates 0.1");
    CHECK(lpl_gpt2_state_set_dropout(on, &(lpl_gpt2_dropout){0.1f, 1.0f, 0.1f}, 42, &err) == LPL_ERR_INVALID &&
              strstr(err.msg, "attention"), "rate 1 refused: %s", err.msg);
    lpl_lora *la = all_sites(&m->cfg, 4, 0.1f, 7), *lb = all_sites(&m->cfg, 4, 0.1f, 7);
    for (int64_t i = 0; i < la->n_params; i++) /* B != 0 so the adapters matter */
        la->params[i] = lb->params[i] = 0.01f * (float)((i * 37) % 11 - 5);
    lpl_loss a, b, c, d;
    for (int step = 0; step < 2; step++) {
        lpl_lora_zero_grads(la);
        lpl_lora_zero_grads(lb);
        CHECK(lpl_gpt2_forward(m, la, plain, tok, tgt, NULL, T, 1, &a, &err) == LPL_OK &&
                  lpl_gpt2_backward(m, la, plain, &err) == LPL_OK, "plain step");
        CHECK(lpl_gpt2_forward(m, lb, zero, tok, tgt, NULL, T, 1, &b, &err) == LPL_OK &&
                  lpl_gpt2_backward(m, lb, zero, &err) == LPL_OK, "zero-rate step");
        CHECK(a.nll_sum == b.nll_sum, "rates 0: loss %.9g vs %.9g without dropout", b.loss, a.loss);
        CHECK(!memcmp(la->grads, lb->grads, (size_t)la->n_params * sizeof(float)), "rates 0: same gradients");
    }
    CHECK(lpl_gpt2_forward(m, NULL, on, tok, tgt, NULL, T, 1, &c, &err) == LPL_OK, "training forward");
    CHECK(lpl_gpt2_forward(m, NULL, on, tok, tgt, NULL, T, 1, &d, &err) == LPL_OK, "training forward 2");
    CHECK(lpl_gpt2_forward(m, NULL, on, tok, tgt, NULL, T, 0, &a, &err) == LPL_OK, "eval forward");
    CHECK(lpl_gpt2_forward(m, NULL, plain, tok, tgt, NULL, T, 0, &b, &err) == LPL_OK, "eval forward, plain");
    CHECK(a.nll_sum == b.nll_sum, "eval never drops: %.9g vs %.9g", a.loss, b.loss);
    CHECK(c.nll_sum != a.nll_sum && d.nll_sum != c.nll_sum, "training forwards drop, a new mask each: %g %g %g",
          c.loss, d.loss, a.loss);
    /* the same seed restarts the same key sequence */
    lpl_gpt2_state_set_dropout(on, &(lpl_gpt2_dropout){0.1f, 0.1f, 0.1f}, 42, &err);
    CHECK(lpl_gpt2_forward(m, NULL, on, tok, tgt, NULL, T, 1, &a, &err) == LPL_OK && a.nll_sum == c.nll_sum,
          "seed 42 again: %.9g vs %.9g", a.loss, c.loss);
    lpl_lora_free(la);
    lpl_lora_free(lb);
    lpl_gpt2_state_free(plain);
    lpl_gpt2_state_free(zero);
    lpl_gpt2_state_free(on);
    lpl_gpt2_free(m);
}

int main(void)
{
    lpl_threads_init(2, NULL);
    test_presets();
    test_refusals();
    test_loss_definition();
    test_lora_identities();
    test_conversion();
    test_learning();
    test_determinism();
    test_state_and_timings();
    test_backward_stops_early();
    test_base_dropout();
    lpl_threads_shutdown();
    return check_report("test_gpt2");
}
