/* The shared pieces of the lab's JSON documents (lpl/lab/document.h). */
#include "lpl/lab/document.h"

#include "lpl/core/platform.h"
#include "lpl/core/floats.h"
#include "lpl/lab/experiment.h"
#include "lpl/model/gpt2.h"

#include <string.h>

cJSON *lpl_base_dropout_cjson(float setting, const lpl_gpt2_config *mc)
{
    lpl_gpt2_dropout d;
    const char *source;
    lpl_base_dropout_rates(setting, mc, &d, &source);
    cJSON *o = cJSON_CreateObject();
    if (setting == LPL_BASE_DROPOUT_CONFIG)
        cJSON_AddStringToObject(o, "setting", "config");
    else
        cJSON_AddNumberToObject(o, "setting", lpl_short_double(setting));
    cJSON_AddNumberToObject(o, "embd_pdrop", lpl_short_double(d.embd));
    cJSON_AddNumberToObject(o, "attn_pdrop", lpl_short_double(d.attn));
    cJSON_AddNumberToObject(o, "resid_pdrop", lpl_short_double(d.resid));
    cJSON_AddStringToObject(o, "source", source);
    if (!strcmp(source, "assumed"))
        cJSON_AddStringToObject(o, "note", "the model file records no dropout rates; GPT-2's 0.1 assumed");
    return o;
}

cJSON *lpl_document_new(const char *format)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", format);
    cJSON_AddNumberToObject(root, "version", 1);
    char when[32];
    lpl_utc_timestamp(when, sizeof when);
    cJSON_AddStringToObject(root, "written", when);
    return root;
}

void lpl_model_shape_add(cJSON *o, const lpl_gpt2_config *c, int with_params)
{
    cJSON_AddNumberToObject(o, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(o, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(o, "n_head", c->n_head);
    cJSON_AddNumberToObject(o, "n_ctx", c->n_ctx);
    cJSON_AddNumberToObject(o, "n_vocab", c->n_vocab);
    cJSON_AddStringToObject(o, "arch", lpl_arch_name(c->arch));
    if (lpl_cfg_is_llama(c)) {
        cJSON_AddNumberToObject(o, "n_kv_head", c->n_kv_head);
        cJSON_AddNumberToObject(o, "n_ff", c->n_ff);
        cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
        cJSON_AddNumberToObject(o, "rms_norm_eps", c->ln_eps);
        cJSON_AddBoolToObject(o, "tied", !c->untied);
        cJSON_AddBoolToObject(o, "qkv_bias", c->arch == LPL_ARCH_QWEN2);
    }
    if (with_params)
        cJSON_AddNumberToObject(o, "params", (double)lpl_gpt2_param_count(c));
}

cJSON *lpl_results_trainings(cJSON *doc)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "trainings");
    if (cJSON_IsArray(t))
        return t;
    /* Only the document's own list: "config" and "aggregates" keep theirs ("placements"
     * there are placements). */
    cJSON *old = cJSON_GetObjectItemCaseSensitive(doc, "placements");
    if (t || !cJSON_IsArray(old))
        return NULL;
    cJSON_DetachItemViaPointer(doc, old);
    if (!cJSON_AddItemToObject(doc, "trainings", old)) {
        cJSON_Delete(old); /* out of memory for the key: the reader reports no trainings */
        return NULL;
    }
    return old;
}
