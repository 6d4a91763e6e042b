/* plan.json of a grid, and the merge of its units' results documents (see plan.h). */
#include "lpl/lab/plan.h"
#include "lpl/core/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "experiment_internal.h"
#include "lpl/lab/document.h"

/* What a unit's numbers depend on besides the config: the bytes of model and data. */
static void files_key(const lpl_plan *p, char *buf, size_t size)
{
    snprintf(buf, size, "model:%s;train:%s;eval:%s", p->model_sha256, p->train_sha256, p->eval_sha256);
}

lpl_status lpl_plan_unit(const lpl_plan *p, int k, lpl_grid_unit *u, lpl_error *err)
{
    char files[256];
    files_key(p, files, sizeof files);
    return lpl_grid_unit_get(&p->config, k, files, u, err);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v && v[0])
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *file_cjson(const char *path, const char *sha)
{
    cJSON *o = cJSON_CreateObject();
    add_str_or_null(o, "path", path);
    add_str_or_null(o, "sha256", sha);
    return o;
}

static cJSON *unit_cjson(const lpl_plan *p, const lpl_grid_unit *u)
{
    const lpl_placement *pl = &p->config.placements[u->arm];
    lpl_lora_config lc;
    lpl_experiment_lora_config(&p->config, u->arm, &lc);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", u->index);
    cJSON_AddStringToObject(o, "id", u->id);
    cJSON_AddStringToObject(o, "name", u->name);
    cJSON_AddStringToObject(o, "placement", pl->name);
    cJSON_AddNumberToObject(o, "seed", (double)u->seed);
    cJSON_AddNumberToObject(o, "r", lc.r);
    cJSON_AddNumberToObject(o, "alpha", lc.alpha);
    char folder[32];
    snprintf(folder, sizeof folder, "units/%s", u->id);
    cJSON_AddStringToObject(o, "folder", folder);
    return o;
}

char *lpl_plan_to_json(const lpl_plan *p, const lpl_experiment_config *grid, lpl_error *err)
{
    cJSON *root = lpl_document_new("loralab-plan");
    cJSON_AddItemToObject(root, "grid", lpl_experiment_to_cjson(grid));
    cJSON_AddItemToObject(root, "config", lpl_experiment_to_cjson(&p->config));
    cJSON *model = file_cjson(p->config.model, p->model_sha256);
    cJSON_AddNumberToObject(model, "bytes", (double)p->model_bytes);
    cJSON_AddItemToObject(root, "model", model);
    cJSON *data = cJSON_AddObjectToObject(root, "data");
    cJSON_AddItemToObject(data, "train", file_cjson(p->config.train, p->train_sha256));
    if (p->config.eval[0])
        cJSON_AddItemToObject(data, "eval", file_cjson(p->config.eval, p->eval_sha256));
    else
        cJSON_AddNullToObject(data, "eval");
    cJSON *units = cJSON_AddArrayToObject(root, "units");
    char *out = NULL;
    for (int k = 0; k < p->n_units; k++) {
        lpl_grid_unit u;
        if (lpl_plan_unit(p, k, &u, err))
            goto done;
        cJSON_AddItemToArray(units, unit_cjson(p, &u));
    }
    out = cJSON_Print(root);
    if (!out)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: plan.json");
done:
    cJSON_Delete(root);
    return out;
}

/* A sha256 string of 64 hex digits at obj.key ("" allowed when optional and null). */
static lpl_status get_sha(const cJSON *obj, const char *what, int optional, char out[65], lpl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "sha256");
    out[0] = '\0';
    if (optional && (!obj || cJSON_IsNull(obj) || cJSON_IsNull(v)))
        return LPL_OK;
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 64)
        return lpl_fail(err, LPL_ERR_FORMAT, "plan.json: %s.sha256 must be 64 hex digits", what);
    memcpy(out, v->valuestring, 65);
    return LPL_OK;
}

/* The units the file lists must be the ones the config gives, id for id. */
static lpl_status check_units(const lpl_plan *p, const cJSON *units, lpl_error *err)
{
    if (!cJSON_IsArray(units))
        return lpl_fail(err, LPL_ERR_FORMAT, "plan.json: no \"units\" list");
    if (cJSON_GetArraySize(units) != p->n_units)
        return lpl_fail(err, LPL_ERR_INVALID, "plan.json lists %d units but its config gives %d: was it edited?",
                        cJSON_GetArraySize(units), p->n_units);
    int k = 0;
    for (const cJSON *it = units->child; it; it = it->next, k++) {
        lpl_grid_unit u;
        lpl_status st = lpl_plan_unit(p, k, &u, err);
        if (st)
            return st;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, u.id))
            return lpl_fail(err, LPL_ERR_INVALID,
                            "plan.json: unit %d has id %s but its config gives %s (plan edited, or written by "
                            "another version of loralab): make a new plan", k,
                            cJSON_IsString(id) ? id->valuestring : "(none)", u.id);
    }
    return LPL_OK;
}

lpl_status lpl_plan_parse(const char *json, lpl_plan *p, lpl_error *err)
{
    memset(p, 0, sizeof *p);
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return lpl_fail(err, LPL_ERR_FORMAT, "plan.json is not valid JSON");
    lpl_status st = LPL_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    char *text = NULL;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "loralab-plan") || !cJSON_IsObject(cfg)) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "not a loralab plan (no \"format\": \"loralab-plan\" and \"config\")");
        goto done;
    }
    text = cJSON_PrintUnformatted(cfg);
    lpl_experiment_default(&p->config);
    if (!text || (st = lpl_experiment_parse_json(text, &p->config, err)))
        goto done;
    if (lpl_grid_has_dims(&p->config)) {
        st = lpl_fail(err, LPL_ERR_INVALID, "plan.json: \"config\" still has grid dimensions (it must be expanded)");
        goto done;
    }
    if ((st = get_sha(model, "model", 0, p->model_sha256, err)) ||
        (st = get_sha(cJSON_GetObjectItemCaseSensitive(data, "train"), "data.train", 0, p->train_sha256, err)) ||
        (st = get_sha(cJSON_GetObjectItemCaseSensitive(data, "eval"), "data.eval", 1, p->eval_sha256, err)))
        goto done;
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(model, "bytes");
    p->model_bytes = cJSON_IsNumber(bytes) ? (int64_t)bytes->valuedouble : 0;
    p->n_units = lpl_grid_n_units(&p->config);
    st = check_units(p, cJSON_GetObjectItemCaseSensitive(root, "units"), err);
done:
    free(text);
    cJSON_Delete(root);
    return st;
}

/* ---------------------------------------------------------------- units' results */

/* Training k of a results document, checked to be unit u's. */
static lpl_status unit_training(const lpl_grid_unit *u, cJSON *doc, const cJSON **out, lpl_error *err)
{
    const cJSON *pls = lpl_results_trainings(doc);
    const cJSON *t = pls ? cJSON_GetArrayItem(pls, u->index) : NULL;
    if (!t)
        return lpl_fail(err, LPL_ERR_FORMAT, "unit %d (%s): its results.json has no training %d", u->index, u->name,
                        u->index);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(t, "seed");
    /* The arm name is the unit name without its ".sSEED" suffix. */
    size_t len = strlen(u->name), n = cJSON_IsString(name) ? strlen(name->valuestring) : 0;
    if (!cJSON_IsString(name) || n >= len || strncmp(u->name, name->valuestring, n) || u->name[n] != '.' ||
        (cJSON_IsNumber(seed) && (uint64_t)seed->valuedouble != u->seed))
        return lpl_fail(err, LPL_ERR_FORMAT, "unit %d (%s): its results.json holds another training (%s): "
                        "a folder of another plan?", u->index, u->name,
                        cJSON_IsString(name) ? name->valuestring : "unnamed");
    *out = t;
    return LPL_OK;
}

lpl_status lpl_unit_state_of(const lpl_grid_unit *u, const char *results_json, lpl_unit_state *state,
                             lpl_error *err)
{
    *state = LPL_UNIT_MISSING;
    if (!results_json)
        return LPL_OK;
    cJSON *doc = cJSON_Parse(results_json);
    if (!doc)
        return lpl_fail(err, LPL_ERR_FORMAT, "unit %d (%s): results.json is not valid JSON", u->index, u->name);
    const cJSON *t;
    lpl_status st = unit_training(u, doc, &t, err);
    if (!st) {
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(t, "status");
        if (cJSON_IsString(status) && !strcmp(status->valuestring, "done"))
            *state = LPL_UNIT_DONE;
        else if (cJSON_IsString(status) && !strcmp(status->valuestring, "failed"))
            *state = LPL_UNIT_FAILED;
    }
    cJSON_Delete(doc);
    return st;
}

static double num_or(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Puts unit k's training into the frame's trainings; adds up time and memory. */
static lpl_status merge_unit(const lpl_grid_unit *u, cJSON *doc, cJSON *frame_pls, double *wall, double *peak,
                             lpl_unit_state *state, lpl_error *err)
{
    const cJSON *t;
    lpl_status st = unit_training(u, doc, &t, err);
    if (st)
        return st;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(t, "status");
    int done = cJSON_IsString(status) && !strcmp(status->valuestring, "done");
    int failed = cJSON_IsString(status) && !strcmp(status->valuestring, "failed");
    *state = done ? LPL_UNIT_DONE : failed ? LPL_UNIT_FAILED : LPL_UNIT_MISSING;
    if (*state == LPL_UNIT_MISSING)
        return LPL_OK;
    cJSON_ReplaceItemInArray(frame_pls, u->index, cJSON_Duplicate(t, 1));
    *wall += num_or(doc, "wall_seconds", 0);
    double pm = num_or(doc, "process_peak_memory_bytes", 0);
    *peak = pm > *peak ? pm : *peak;
    return LPL_OK;
}

static cJSON *collected_cjson(const lpl_plan *p, const lpl_collect_report *rep, const lpl_unit_state *states)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "units", rep->n_units);
    cJSON_AddNumberToObject(o, "done", rep->n_done);
    cJSON_AddNumberToObject(o, "failed", rep->n_failed);
    cJSON *miss = cJSON_AddArrayToObject(o, "missing");
    for (int k = 0; k < p->n_units; k++) {
        lpl_grid_unit u;
        if (states[k] != LPL_UNIT_MISSING || lpl_plan_unit(p, k, &u, NULL))
            continue;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddNumberToObject(m, "index", k);
        cJSON_AddStringToObject(m, "id", u.id);
        cJSON_AddStringToObject(m, "name", u.name);
        cJSON_AddItemToArray(miss, m);
    }
    return o;
}

char *lpl_plan_collect(const lpl_plan *p, const char *const *docs, lpl_collect_report *rep, lpl_error *err)
{
    memset(rep, 0, sizeof *rep);
    rep->n_units = p->n_units;
    lpl_unit_state *states = lpl_calloc((size_t)p->n_units, sizeof *states, "unit states", err);
    cJSON *frame = NULL;
    char *text = NULL, *out = NULL;
    double wall = 0, peak = 0;
    if (!states)
        return NULL;
    for (int k = 0; k < p->n_units; k++) {
        if (!docs[k])
            continue;
        lpl_grid_unit u;
        cJSON *doc = cJSON_Parse(docs[k]);
        if (!doc || lpl_plan_unit(p, k, &u, err)) {
            if (!doc)
                lpl_fail(err, LPL_ERR_FORMAT, "unit %d: results.json is not valid JSON", k);
            cJSON_Delete(doc);
            goto done;
        }
        if (!frame)
            frame = cJSON_Duplicate(doc, 1);
        lpl_status st = merge_unit(&u, doc, lpl_results_trainings(frame), &wall, &peak,
                                   &states[k], err);
        cJSON_Delete(doc);
        if (st)
            goto done;
    }
    for (int k = 0; k < p->n_units; k++) {
        rep->n_done += states[k] == LPL_UNIT_DONE;
        rep->n_failed += states[k] == LPL_UNIT_FAILED;
        rep->n_missing += states[k] == LPL_UNIT_MISSING;
    }
    if (!frame || rep->n_done + rep->n_failed == 0) {
        lpl_fail(err, LPL_ERR_INVALID, "no unit of the plan has finished yet (%d units)", p->n_units);
        goto done;
    }
    /* Delete-then-add rather than replace: a key missing from the frame would leak the new item. */
    cJSON_DeleteItemFromObjectCaseSensitive(frame, "wall_seconds");
    cJSON_AddNumberToObject(frame, "wall_seconds", wall);
    cJSON_DeleteItemFromObjectCaseSensitive(frame, "process_peak_memory_bytes");
    cJSON_AddNumberToObject(frame, "process_peak_memory_bytes", peak);
    cJSON_DeleteItemFromObjectCaseSensitive(frame, "collected");
    cJSON_AddItemToObject(frame, "collected", collected_cjson(p, rep, states));
    text = cJSON_PrintUnformatted(frame);
    if (!text) {
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: collected results");
        goto done;
    }
    out = lpl_results_aggregate(text, err);
done:
    free(text);
    cJSON_Delete(frame);
    free(states);
    return out;
}
