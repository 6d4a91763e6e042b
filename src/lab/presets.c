/* The presets document (lpl/lab/presets.h), built from the tables that define them. */
#include "lpl/lab/presets.h"

#include <cJSON.h>
#include <string.h>

#include "experiment_internal.h"
#include "lpl/lab/document.h"
#include "lpl/lab/generate.h"

static cJSON *models_cjson(void)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < lpl_gpt2_preset_count(); i++) {
        lpl_gpt2_config c;
        if (lpl_gpt2_preset(lpl_gpt2_preset_name(i), &c, NULL) != LPL_OK)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", lpl_gpt2_preset_name(i));
        lpl_model_shape_add(o, &c, 1);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* A preset is part of the study when the default experiment runs it. */
static int in_study(const lpl_experiment_config *study, const char *name)
{
    for (int i = 0; i < study->n_placements; i++)
        if (!strcmp(study->placements[i].name, name))
            return 1;
    return 0;
}

static cJSON *placements_cjson(const lpl_experiment_config *study)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < lpl_placement_preset_count(); i++) {
        lpl_placement p;
        const char *name = lpl_placement_preset_name(i);
        if (lpl_placement_preset(name, &p, NULL) != LPL_OK)
            continue;
        cJSON *o = lpl_placement_to_cjson(&p);
        cJSON_AddStringToObject(o, "description", lpl_placement_preset_description(i));
        cJSON_AddBoolToObject(o, "study", in_study(study, name));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* The Llama family's presets (PEFT module names), chosen when such a model is loaded. */
static cJSON *llama_placements_cjson(void)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < lpl_placement_preset_count_arch(1); i++) {
        const char *name = lpl_placement_preset_name_arch(1, i);
        lpl_placement p;
        lpl_gpt2_config mc;
        if (lpl_placement_preset(name, &p, NULL) != LPL_OK || lpl_gpt2_preset("llama-tiny", &mc, NULL) != LPL_OK)
            continue;
        lpl_placement_retarget(&p, &mc);
        cJSON *o = lpl_placement_to_cjson(&p);
        cJSON_AddStringToObject(o, "description", lpl_placement_preset_description_arch(1, i));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *generate_cjson(void)
{
    lpl_generate_options g;
    lpl_generate_options_default(&g);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "max_new_tokens", g.max_new_tokens);
    cJSON_AddNumberToObject(o, "temperature", g.temperature);
    cJSON_AddNumberToObject(o, "top_k", g.top_k);
    cJSON_AddNumberToObject(o, "repetition_penalty", g.repetition_penalty);
    cJSON_AddNumberToObject(o, "seed", (double)g.seed);
    return o;
}

char *lpl_presets_json(void)
{
    lpl_experiment_config study, quick, saved;
    lpl_experiment_default(&study);
    quick = study;
    lpl_experiment_quick(&quick);
    lpl_experiment_saved_default(&saved);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "models", models_cjson());
    cJSON_AddItemToObject(o, "placements", placements_cjson(&study));
    cJSON_AddItemToObject(o, "llama_placements", llama_placements_cjson());
    cJSON_AddItemToObject(o, "study", lpl_experiment_to_cjson(&study));
    cJSON_AddItemToObject(o, "quick", lpl_experiment_to_cjson(&quick));
    cJSON_AddItemToObject(o, "saved", lpl_experiment_to_cjson(&saved));
    cJSON_AddItemToObject(o, "generate", generate_cjson());
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
