/* The pieces every JSON document the lab writes shares: its header and the model's
 * shape (results.json, plan.json, the wasm module's model info, the presets). */
#ifndef LPL_DOCUMENT_H
#define LPL_DOCUMENT_H

#include <cJSON.h>

#include "lpl/model/gpt2_config.h"

/* A new document {"format": format, "version": 1, "written": UTC time}; NULL when out
 * of memory. */
cJSON *lpl_document_new(const char *format);

/* Adds n_layer, n_embd, n_head, n_ctx and n_vocab of c to o, and "params" (the base
 * parameter count) when with_params != 0. */
void lpl_model_shape_add(cJSON *o, const lpl_gpt2_config *c, int with_params);

/* The "base_dropout" object of results.json and of `loralab bench --json`: the setting
 * ("config" or the rate), the three rates model mc trains with under it and their
 * "source" (lpl_base_dropout_rates), with a "note" when GPT-2's rates are assumed. */
cJSON *lpl_base_dropout_cjson(float setting, const lpl_gpt2_config *mc);

/* The "trainings" list of a results document (one object per placement and seed), or
 * NULL when it has none. Files written before the rename of issue 25 call that list
 * "placements": it is moved to "trainings" in doc, so every reader and every document
 * written from doc sees one name. The one place that knows the old key. */
cJSON *lpl_results_trainings(cJSON *doc);

#endif
