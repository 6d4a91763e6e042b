/* Token view: the loss of every token of eval examples, with its role in the Alpaca
 * prompt, for the base model and any number of adapters. It shows what training
 * changed token by token (the page's "What was learned" panel, `loralab eval
 * --tokens --json`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment_internal.h"
#include "lpl/core/utf8.h"

lpl_status lpl_token_losses(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_example_set *ex,
                            lpl_compute compute, float *out, lpl_error *err)
{
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, lpl_examples_max_T(ex), 0, err);
    if (!s)
        return err ? err->code : LPL_ERR_NOMEM;
    lpl_gpt2_state_set_compute(s, compute);
    lpl_status st = LPL_OK;
    size_t o = 0;
    for (int i = 0; i < ex->n && !st; i++) {
        const lpl_example *e = &ex->ex[i];
        lpl_loss l;
        st = lpl_gpt2_forward(m, lora, s, e->tokens, e->targets, e->mask, e->T, 0, &l, err);
        const float *nll = lpl_gpt2_token_nll(s);
        int k = 0;
        for (int t = 0; t < e->T && !st; t++)
            out[o + (size_t)t] = e->mask && !e->mask[t] ? NAN : nll[k++];
        o += (size_t)e->T;
    }
    lpl_gpt2_state_free(s);
    return st;
}

static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* {ROLE: {n_tokens, loss (base), loss_NAME...}} and the overall eval losses, from the
 * per-token losses of every model (losses[0] the base). */
static void add_summary(cJSON *root, const lpl_example_set *ex, float *const *losses, const char *const *names,
                        int n_models)
{
    cJSON *roles = cJSON_AddObjectToObject(root, "roles");
    for (int role = -1; role < LPL_N_ROLES; role++) {
        cJSON *o = role < 0 ? root : cJSON_AddObjectToObject(roles, lpl_role_name(role));
        for (int k = 0; k < n_models; k++) {
            double sum = 0;
            int64_t n = 0;
            size_t p = 0;
            for (int i = 0; i < ex->n; i++) {
                const lpl_example *e = &ex->ex[i];
                for (int t = 0; t < e->T; t++, p++)
                    if (!isnan(losses[k][p]) && (role < 0 || e->role[t] == role)) {
                        sum += losses[k][p];
                        n++;
                    }
            }
            char key[96];
            snprintf(key, sizeof key, "%s%s%s", role < 0 ? "eval_loss" : "loss", k ? "_" : "", k ? names[k - 1] : "");
            if (k == 0)
                cJSON_AddNumberToObject(o, "n_tokens", (double)n);
            add_num(o, key, n ? sum / (double)n : NAN);
        }
    }
}

/* text with every byte that is not part of valid UTF-8 replaced by U+FFFD (a token
 * may hold part of a character), so the JSON stays valid; malloc'd or NULL. */
static char *utf8_clean(const char *text, size_t len)
{
    char *out = malloc(3 * len + 1), *o = out;
    if (!out)
        return NULL;
    while (len > 0) {
        size_t bad = len;
        int ok = lpl_utf8_validate(text, len, &bad);
        size_t good = ok ? len : bad;
        memcpy(o, text, good);
        o += good;
        if (ok)
            break;
        memcpy(o, "\xEF\xBF\xBD", 3);
        o += 3;
        text += good + 1;
        len -= good + 1;
    }
    *o = '\0';
    return out;
}

static cJSON *token_cjson(const lpl_tokenizer *tok, int id, int role, int scored, float *const *losses,
                          const char *const *names, int n_models, size_t p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", id);
    /* the token's own bytes: a SentencePiece-style token keeps the space its U+2581
     * stands for, which decoding one token alone would strip */
    const char *text = NULL;
    char *clean = NULL;
    int len = lpl_tokenizer_token_bytes(tok, id, &text);
    if (len >= 0)
        clean = utf8_clean(text, (size_t)len);
    cJSON_AddStringToObject(o, "text", clean ? clean : "");
    free(clean);
    cJSON_AddStringToObject(o, "role", lpl_role_name(role));
    cJSON_AddBoolToObject(o, "scored", scored);
    for (int k = 0; k < n_models; k++) {
        char key[96];
        snprintf(key, sizeof key, "loss%s%s", k ? "_" : "", k ? names[k - 1] : "");
        add_num(o, key, losses && scored ? losses[k][p] : NAN);
    }
    return o;
}

char *lpl_token_view_json(const lpl_gpt2_model *m, const lpl_tokenizer *tok, lpl_lora *const *adapters,
                          const char *const *names, int n_adapters, const lpl_example_set *ex, int first,
                          int count, lpl_compute compute, lpl_error *err)
{
    if (first < 0 || count < 0 || first + count > ex->n) {
        lpl_fail(err, LPL_ERR_INVALID, "token view: examples %d..%d asked, the set has %d", first,
                 first + count - 1, ex->n);
        return NULL;
    }
    int n_models = 1 + n_adapters;
    size_t total = 0;
    for (int i = 0; i < ex->n; i++)
        total += (size_t)ex->ex[i].T;
    float **losses = lpl_calloc((size_t)n_models, sizeof *losses, "token losses", err);
    char *out = NULL;
    lpl_status st = losses ? LPL_OK : LPL_ERR_NOMEM;
    for (int k = 0; k < n_models && !st; k++) {
        losses[k] = lpl_malloc((total ? total : 1) * sizeof(float), "token losses", err);
        st = losses[k] ? lpl_token_losses(m, k ? adapters[k - 1] : NULL, ex, compute, losses[k], err) : LPL_ERR_NOMEM;
    }
    if (st)
        goto done;
    cJSON *root = cJSON_CreateObject();
    cJSON *models = cJSON_AddArrayToObject(root, "models");
    cJSON_AddItemToArray(models, cJSON_CreateString("base"));
    for (int k = 0; k < n_adapters; k++)
        cJSON_AddItemToArray(models, cJSON_CreateString(names[k]));
    add_summary(root, ex, losses, names, n_models);
    cJSON *exs = cJSON_AddArrayToObject(root, "examples");
    size_t p = 0;
    for (int i = 0; i < first + count; i++) {
        const lpl_example *e = &ex->ex[i];
        if (i >= first) {
            cJSON *eo = cJSON_CreateObject();
            cJSON_AddNumberToObject(eo, "index", i);
            cJSON *toks = cJSON_AddArrayToObject(eo, "tokens");
            /* the first token predicts nothing; an Alpaca prompt starts with template text */
            cJSON_AddItemToArray(toks, token_cjson(tok, e->tokens[0], LPL_ROLE_TEMPLATE, 0, NULL, names, n_models, 0));
            for (int t = 0; t < e->T; t++)
                cJSON_AddItemToArray(toks, token_cjson(tok, e->targets[t], e->role[t], !e->mask || e->mask[t], losses,
                                                       names, n_models, p + (size_t)t));
            cJSON_AddItemToArray(exs, eo);
        }
        p += (size_t)e->T;
    }
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!out)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: token view");
done:
    for (int k = 0; losses && k < n_models; k++)
        free(losses[k]);
    free(losses);
    return out;
}
