/* LoRA placement and accounting: PEFT's matching rules (suffix, exact, regex,
 * layers_to_transform), the published DialoGPT-medium r=16 numbers, refusals with
 * messages naming the problem, PEFT initialisation, scaling, dropout masks, norms. */
#include "check.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/lora.h"
#include "lpl/model/optim.h"
#include "lpl/core/rng.h"

#include <string.h>

static lpl_gpt2_config preset(const char *name)
{
    lpl_gpt2_config c;
    lpl_error err;
    if (lpl_gpt2_preset(name, &c, &err) != LPL_OK)
        fprintf(stderr, "preset %s: %s\n", name, err.msg);
    return c;
}

static lpl_lora_config targets(int n, const char *const *t)
{
    lpl_lora_config c;
    lpl_lora_config_default(&c);
    c.n_targets = n;
    for (int i = 0; i < n; i++)
        snprintf(c.targets[i], sizeof c.targets[i], "%s", t[i]);
    return c;
}

#define TARGETS(...) targets(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *), (const char *[]){__VA_ARGS__})

static void test_study_numbers(void)
{
    lpl_gpt2_config med = preset("dialogpt-medium");
    const int64_t base = lpl_gpt2_param_count(&med);
    CHECK(base == 354823168, "dialogpt-medium base params %lld", (long long)base);
    struct { lpl_lora_config c; int64_t want; double pct; const char *desc; } cases[] = {
        {TARGETS("c_attn", "c_proj", "c_fc"), 6291456, 1.74,
         "24\xc3\x97" "attn.c_attn, 24\xc3\x97" "attn.c_proj, 24\xc3\x97" "mlp.c_fc, 24\xc3\x97" "mlp.c_proj"},
        {TARGETS("c_fc"), 1966080, 0.55, "24\xc3\x97" "mlp.c_fc"},
        {TARGETS("c_attn", "c_proj"), 4325376, 1.20,
         "24\xc3\x97" "attn.c_attn, 24\xc3\x97" "attn.c_proj, 24\xc3\x97" "mlp.c_proj"},
        /* exact module paths: what the study meant */
        {TARGETS("attn.c_attn", "attn.c_proj"), 24 * 16 * (1024 + 3072 + 1024 + 1024), 0.66,
         "24\xc3\x97" "attn.c_attn, 24\xc3\x97" "attn.c_proj"},
        {TARGETS("mlp.c_fc", "mlp.c_proj"), 24 * 16 * 2 * (1024 + 4096), 1.10,
         "24\xc3\x97" "mlp.c_fc, 24\xc3\x97" "mlp.c_proj"},
        {TARGETS("mlp.c_fc"), 1966080, 0.55, "24\xc3\x97" "mlp.c_fc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lpl_error err;
        cases[i].c.r = 16;
        int64_t n = lpl_lora_param_count(&cases[i].c, &med, &err);
        CHECK(n == cases[i].want, "case %zu: %lld trainable, want %lld", i, (long long)n, (long long)cases[i].want);
        double pct = 100.0 * (double)n / (double)(base + n);
        CHECK(fabs(pct - cases[i].pct) < 0.005, "case %zu: %.4f%% want %.2f%%", i, pct, cases[i].pct);
        uint8_t sel[24 * LPL_N_SITES];
        CHECK(lpl_lora_select(&cases[i].c, &med, sel, &err) == LPL_OK, "select: %s", err.msg);
        char desc[256];
        lpl_lora_describe(sel, &med, desc, sizeof desc);
        CHECK(strcmp(desc, cases[i].desc) == 0, "case %zu: describe '%s' want '%s'", i, desc, cases[i].desc);
    }
    /* the study's numbers as percentages printed with two decimals */
    char buf[32];
    snprintf(buf, sizeof buf, "%.2f%%", 100.0 * 6291456.0 / (354823168.0 + 6291456.0));
    CHECK(strcmp(buf, "1.74%") == 0, "%s", buf);
}

static void test_matching(void)
{
    lpl_gpt2_config c = preset("gpt2");
    lpl_error err;
    uint8_t sel[12 * LPL_N_SITES];

    /* "c_proj" matches both attn.c_proj and mlp.c_proj, never c_attn or c_fc */
    lpl_lora_config lc = TARGETS("c_proj");
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_OK, "c_proj: %s", err.msg);
    int ok = 1;
    for (int l = 0; l < 12; l++)
        ok &= sel[l * LPL_N_SITES + 0] == 0 && sel[l * LPL_N_SITES + 1] == 1 && sel[l * LPL_N_SITES + 2] == 0 &&
              sel[l * LPL_N_SITES + 3] == 1;
    CHECK(ok, "c_proj selects attn.c_proj and mlp.c_proj in every layer");

    /* layers_to_transform */
    lc = TARGETS("c_fc", "attn.c_proj");
    lc.n_layers = 2;
    lc.layers[0] = 0;
    lc.layers[1] = 11;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_OK, "layers: %s", err.msg);
    char desc[256];
    lpl_lora_describe(sel, &c, desc, sizeof desc);
    CHECK(strcmp(desc, "2\xc3\x97" "attn.c_proj [layers 0 11], 2\xc3\x97" "mlp.c_fc [layers 0 11]") == 0, "describe '%s'",
          desc);
    lc.r = 8;
    CHECK(lpl_lora_param_count(&lc, &c, &err) == 2 * 8 * (768 + 768 + 768 + 3072), "layer-selected count");

    /* a full module name matches exactly, and PEFT lets it bypass layers_to_transform */
    lc = TARGETS("transformer.h.3.attn.c_attn", "c_fc");
    lc.n_layers = 1;
    lc.layers[0] = 5;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_OK, "exact: %s", err.msg);
    int n = 0;
    for (int i = 0; i < 12 * LPL_N_SITES; i++)
        n += sel[i];
    CHECK(n == 2 && sel[3 * LPL_N_SITES + 0] && sel[5 * LPL_N_SITES + 2], "exact name + layer 5 c_fc: %d modules", n);

    /* a partial word is not a suffix match: "proj" does not match "c_proj" */
    lc = TARGETS("proj");
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "'proj' matches no module"),
          "partial name refused: %s", err.msg);

    /* regex: full match, \d accepted */
    lpl_lora_config_default(&lc);
    lc.n_targets = 0;
    snprintf(lc.regex, sizeof lc.regex, "%s", "transformer\\.h\\.\\d+\\.attn\\.c_attn");
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_OK, "regex: %s", err.msg);
    lpl_lora_describe(sel, &c, desc, sizeof desc);
    CHECK(strcmp(desc, "12\xc3\x97" "attn.c_attn") == 0, "regex describe '%s'", desc);
    snprintf(lc.regex, sizeof lc.regex, "%s", ".*\\.(1|10)\\.mlp\\..*");
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_OK, "regex 2: %s", err.msg);
    lpl_lora_describe(sel, &c, desc, sizeof desc);
    CHECK(strcmp(desc, "2\xc3\x97" "mlp.c_fc [layers 1 10], 2\xc3\x97" "mlp.c_proj [layers 1 10]") == 0,
          "regex 2 describe '%s'", desc);
    /* not a full match */
    snprintf(lc.regex, sizeof lc.regex, "%s", "c_attn");
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "matches no module"),
          "regex must match the whole name: %s", err.msg);
}

static void test_refusals(void)
{
    lpl_gpt2_config c = preset("tiny");
    lpl_error err;
    uint8_t sel[64 * LPL_N_SITES];
    lpl_lora_config lc = TARGETS("c_attn", "c_fcc");
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "'c_fcc' matches no module"),
          "typo target: %s", err.msg);
    CHECK(lpl_lora_param_count(&lc, &c, &err) < 0, "count refuses too");
    CHECK(lpl_lora_attach(&lc, &c, &err) == NULL && strstr(err.msg, "c_fcc"), "attach refuses too");

    lc = TARGETS("c_attn");
    lc.r = c.n_embd + 1;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "r = 65") &&
              strstr(err.msg, "width 64") && strstr(err.msg, "transformer.h.0.attn.c_attn"),
          "r too large: %s", err.msg);
    lc.r = 0;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "r = 0"), "r = 0: %s", err.msg);

    lc = TARGETS("c_fc");
    lc.n_layers = 1;
    lc.layers[0] = c.n_layer;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "layer 2"),
          "layer out of range: %s", err.msg);

    lpl_lora_config_default(&lc);
    lc.n_targets = 0;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "no target"), "no targets: %s",
          err.msg);
    snprintf(lc.regex, sizeof lc.regex, "%s", "transformer.h.([0-9]");
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "does not compile"),
          "bad regex: %s", err.msg);
    snprintf(lc.regex, sizeof lc.regex, "%s", ".*c_fc");
    lc.n_layers = 1;
    lc.layers[0] = 0;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "layers_to_transform"),
          "regex with layers: %s", err.msg);
    lc = TARGETS("c_fc");
    lc.dropout = 1.0f;
    CHECK(lpl_lora_select(&lc, &c, sel, &err) == LPL_ERR_INVALID && strstr(err.msg, "dropout"), "dropout 1: %s",
          err.msg);
}

static void test_attach(void)
{
    lpl_gpt2_config c = preset("tiny");
    lpl_error err;
    lpl_lora_config lc = TARGETS("c_attn", "c_proj", "c_fc");
    lc.r = 8;
    lpl_lora *l = lpl_lora_attach(&lc, &c, &err);
    CHECK(l != NULL, "attach: %s", err.msg);
    if (!l)
        return;
    CHECK(l->n_modules == 8, "modules %d", l->n_modules);
    CHECK(l->n_params == lpl_lora_param_count(&lc, &c, &err), "params agree with count");
    CHECK_CLOSE(l->scaling, 32.0 / 8.0, 0, 1e-7, "scaling alpha/r");
    int order_ok = 1;
    for (int i = 0; i < l->n_modules; i++) {
        const lpl_lora_module *m = &l->modules[i];
        order_ok &= m->layer == i / 4 && (int)m->site == i % 4 && l->by_site[m->layer * LPL_N_SITES + (i % 4)] == m;
        double bound = 1.0 / sqrt((double)m->in), amax = 0, bmax = 0, mean = 0;
        for (int j = 0; j < lc.r * m->in; j++) {
            amax = fmax(amax, fabs(m->A[j]));
            mean += m->A[j];
        }
        for (int j = 0; j < lc.r * m->out; j++)
            bmax = fmax(bmax, fabs(m->B[j]));
        CHECK(amax <= bound && amax > 0.9 * bound, "A within kaiming bound: max %g bound %g", amax, bound);
        CHECK(fabs(mean / (lc.r * m->in)) < 0.1 * bound, "A centred");
        CHECK(bmax == 0.0, "B starts at zero");
    }
    CHECK(order_ok, "modules in layer order then site order, by_site consistent");
    char name[96];
    lpl_lora_module_name(l, 5, name, sizeof name);
    CHECK(strcmp(name, "transformer.h.1.attn.c_proj") == 0, "module name %s", name);

    /* same seed, same init; another seed, another init */
    lpl_lora *l2 = lpl_lora_attach(&lc, &c, &err);
    CHECK(memcmp(l->params, l2->params, (size_t)l->n_params * sizeof(float)) == 0, "deterministic init");
    lc.seed = 7;
    lpl_lora *l3 = lpl_lora_attach(&lc, &c, &err);
    CHECK(memcmp(l->params, l3->params, (size_t)l->n_params * sizeof(float)) != 0, "seed changes init");

    /* update norm equals scaling * ||B A||_F computed directly */
    lpl_rng r;
    lpl_rng_seed(&r, 1);
    for (int64_t j = 0; j < l->n_params; j++)
        l->params[j] = lpl_rng_normal(&r) * 0.1f;
    const lpl_lora_module *m = &l->modules[2];
    double ss = 0;
    for (int o = 0; o < m->out; o++)
        for (int i = 0; i < m->in; i++) {
            double v = 0;
            for (int k = 0; k < lc.r; k++)
                v += (double)m->B[o * lc.r + k] * m->A[k * m->in + i];
            ss += v * v;
        }
    CHECK_CLOSE(lpl_lora_update_norm(l, 2), l->scaling * sqrt(ss), 0, 1e-9, "update norm");
    lpl_lora_free(l);
    lpl_lora_free(l2);
    lpl_lora_free(l3);

    lc.use_rslora = 1;
    lc.r = 16;
    l = lpl_lora_attach(&lc, &c, &err);
    CHECK(l && fabs(l->scaling - 32.0 / 4.0) < 1e-6, "rsLoRA scaling alpha/sqrt(r)");
    lpl_lora_free(l);
}

static void test_dropout_masks(void)
{
    const float p = 0.1f;
    int zeros = 0, n = 200000, bad = 0;
    for (int i = 0; i < n; i++) {
        float s = lpl_lora_dropout_scale(1234, 3, LPL_SITE_MLP_FC, i, p);
        zeros += s == 0.0f;
        bad += s != 0.0f && s != 1.0f / (1.0f - p);
    }
    CHECK(bad == 0, "scales are 0 or 1/(1-p)");
    CHECK(fabs((double)zeros / n - p) < 0.005, "drop fraction %g", (double)zeros / n);
    int differ = 0;
    for (int i = 0; i < 1000; i++)
        differ += lpl_lora_dropout_scale(1234, 3, LPL_SITE_MLP_FC, i, 0.5f) !=
                  lpl_lora_dropout_scale(1234, 2, LPL_SITE_MLP_FC, i, 0.5f);
    CHECK(differ > 400, "different modules get different masks (%d of 1000 differ)", differ);
    CHECK(lpl_lora_dropout_scale(99, 0, LPL_SITE_ATTN_QKV, 5, 0.0f) == 1.0f, "p = 0 keeps everything");
}

int main(void)
{
    test_study_numbers();
    test_matching();
    test_refusals();
    test_attach();
    test_dropout_masks();
    return check_report("test_lora");
}
