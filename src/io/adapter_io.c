/* PEFT adapter files: adapter_config.json and adapter_model.safetensors. */
#include "lpl/io/adapter_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "lpl/core/files.h"
#include "lpl/core/floats.h"
#include "lpl/io/safetensors.h"

void lpl_adapter_key(int layer, lpl_site site, char part, char *buf, size_t size)
{
    char name[64];
    lpl_lora_site_module_name(layer, site, name, sizeof name);
    snprintf(buf, size, "base_model.model.%.63s.lora_%c.weight", name, part);
}

static char *config_json(const lpl_lora_config *c, const char *base_model_name, int conv1d);

char *lpl_adapter_config_json(const lpl_lora_config *c, const char *base_model_name)
{
    return config_json(c, base_model_name, 1);
}

char *lpl_adapter_config_json_for(const lpl_lora *l, const char *base_model_name)
{
    return config_json(&l->cfg, base_model_name, !lpl_cfg_is_llama(&l->model_cfg));
}

static char *config_json(const lpl_lora_config *c, const char *base_model_name, int conv1d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "peft_type", "LORA");
    cJSON_AddStringToObject(o, "task_type", "CAUSAL_LM");
    if (base_model_name && base_model_name[0])
        cJSON_AddStringToObject(o, "base_model_name_or_path", base_model_name);
    else
        cJSON_AddNullToObject(o, "base_model_name_or_path");
    cJSON_AddNumberToObject(o, "r", c->r);
    cJSON_AddNumberToObject(o, "lora_alpha", lpl_short_double(c->alpha));
    cJSON_AddNumberToObject(o, "lora_dropout", lpl_short_double(c->dropout));
    if (c->regex[0]) {
        cJSON_AddStringToObject(o, "target_modules", c->regex);
    } else {
        cJSON *t = cJSON_AddArrayToObject(o, "target_modules");
        for (int i = 0; i < c->n_targets; i++)
            cJSON_AddItemToArray(t, cJSON_CreateString(c->targets[i]));
    }
    if (c->n_layers) {
        cJSON *l = cJSON_AddArrayToObject(o, "layers_to_transform");
        for (int i = 0; i < c->n_layers; i++)
            cJSON_AddItemToArray(l, cJSON_CreateNumber(c->layers[i]));
    } else {
        cJSON_AddNullToObject(o, "layers_to_transform");
    }
    cJSON_AddNullToObject(o, "layers_pattern");
    /* GPT-2's Conv1D stores weights [in, out]; PEFT needs this flag for it (the
     * Llama family's nn.Linear does not) */
    cJSON_AddBoolToObject(o, "fan_in_fan_out", conv1d);
    cJSON_AddBoolToObject(o, "use_rslora", c->use_rslora);
    cJSON_AddStringToObject(o, "bias", "none");
    cJSON_AddBoolToObject(o, "inference_mode", 1);
    cJSON_AddBoolToObject(o, "init_lora_weights", 1);
    cJSON_AddNullToObject(o, "modules_to_save");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

static lpl_status parse_targets(const cJSON *tm, lpl_lora_config *c, lpl_error *err)
{
    c->n_targets = 0;
    c->regex[0] = '\0';
    if (cJSON_IsString(tm)) {
        if (!tm->valuestring[0] || strlen(tm->valuestring) >= sizeof c->regex)
            return lpl_fail(err, LPL_ERR_INVALID, "adapter_config.json: target_modules regex must be 1-255 characters");
        snprintf(c->regex, sizeof c->regex, "%s", tm->valuestring);
        return LPL_OK;
    }
    if (!cJSON_IsArray(tm) || cJSON_GetArraySize(tm) == 0)
        return lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: target_modules must be a non-empty list or a string");
    for (const cJSON *t = tm->child; t; t = t->next) {
        if (!cJSON_IsString(t) || strlen(t->valuestring) >= sizeof c->targets[0] || c->n_targets >= LPL_LORA_MAX_TARGETS)
            return lpl_fail(err, LPL_ERR_FORMAT,
                            "adapter_config.json: target_modules must be up to %d names of < 64 characters",
                            LPL_LORA_MAX_TARGETS);
        snprintf(c->targets[c->n_targets++], sizeof c->targets[0], "%s", t->valuestring);
    }
    return LPL_OK;
}

static lpl_status parse_layers(const cJSON *l, lpl_lora_config *c, lpl_error *err)
{
    c->n_layers = 0;
    if (!l || cJSON_IsNull(l))
        return LPL_OK;
    if (cJSON_IsNumber(l)) {
        /* checked before the conversion: a double beyond int's range has no int value */
        if (!(l->valuedouble >= 0 && l->valuedouble == floor(l->valuedouble) && l->valuedouble <= 1e6))
            return lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: layers_to_transform must be layer indices");
        c->layers[c->n_layers++] = (int)l->valuedouble;
        return LPL_OK;
    }
    if (!cJSON_IsArray(l))
        return lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: layers_to_transform must be null, an index or a list");
    for (const cJSON *it = l->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble > 1e6 || c->n_layers >= LPL_LORA_MAX_LAYERS)
            return lpl_fail(err, LPL_ERR_FORMAT,
                            "adapter_config.json: layers_to_transform must be up to %d layer indices", LPL_LORA_MAX_LAYERS);
        c->layers[c->n_layers++] = (int)it->valuedouble;
    }
    return LPL_OK;
}

lpl_status lpl_adapter_config_parse(const char *json, lpl_lora_config *c, lpl_error *err)
{
    lpl_lora_config_default(c);
    cJSON *o = cJSON_Parse(json);
    if (!o)
        return lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: malformed JSON");
    lpl_status st = LPL_OK;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(o, "peft_type");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "r");
    const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(o, "lora_alpha");
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(o, "lora_dropout");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "use_rslora");
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(o, "bias");
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "layers_pattern");
    if (!cJSON_IsObject(o))
        st = lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: not a JSON object");
    else if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA"))
        st = lpl_fail(err, LPL_ERR_UNSUPPORTED, "adapter_config.json: peft_type must be \"LORA\"");
    else if (!cJSON_IsNumber(r) || r->valuedouble < 1 || r->valuedouble != floor(r->valuedouble) || r->valuedouble > 65536)
        st = lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: r must be a positive integer");
    else if (!cJSON_IsNumber(alpha) || !(alpha->valuedouble > 0))
        st = lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: lora_alpha must be a positive number");
    else if (drop && !cJSON_IsNull(drop) && (!cJSON_IsNumber(drop) || drop->valuedouble < 0 || drop->valuedouble >= 1))
        st = lpl_fail(err, LPL_ERR_FORMAT, "adapter_config.json: lora_dropout must be in [0, 1)");
    else if (bias && cJSON_IsString(bias) && strcmp(bias->valuestring, "none"))
        st = lpl_fail(err, LPL_ERR_UNSUPPORTED, "adapter_config.json: bias \"%s\" is not supported (only \"none\")",
                      bias->valuestring);
    else if (pat && !cJSON_IsNull(pat) &&
             !(cJSON_IsString(pat) && (!strcmp(pat->valuestring, "h") || !strcmp(pat->valuestring, "layers"))))
        st = lpl_fail(err, LPL_ERR_UNSUPPORTED,
                      "adapter_config.json: layers_pattern must be null, \"h\" (GPT-2) or \"layers\" (Llama family)");
    if (!st) {
        c->r = (int)r->valuedouble;
        c->alpha = (float)alpha->valuedouble;
        c->dropout = cJSON_IsNumber(drop) ? (float)drop->valuedouble : 0.0f;
        c->use_rslora = cJSON_IsTrue(rs);
        st = parse_targets(cJSON_GetObjectItemCaseSensitive(o, "target_modules"), c, err);
    }
    if (!st)
        st = parse_layers(cJSON_GetObjectItemCaseSensitive(o, "layers_to_transform"), c, err);
    cJSON_Delete(o);
    return st;
}

/* Names, shapes and data pointers of the adapter's tensors (2 per module). */
typedef struct {
    int n;
    char (*names)[96];
    const char **name_ptrs;
    lpl_dtype *dtypes;
    int *n_dims;
    int64_t (*shape_store)[2];
    const int64_t **shapes;
    const void **data;
} tensor_list;

static void tensor_list_free(tensor_list *t)
{
    free(t->names);
    free(t->name_ptrs);
    free(t->dtypes);
    free(t->n_dims);
    free(t->shape_store);
    free(t->shapes);
    free(t->data);
}

static lpl_status tensor_list_build(const lpl_lora *l, tensor_list *t, lpl_error *err)
{
    memset(t, 0, sizeof *t);
    int n = 2 * l->n_modules;
    t->n = n;
    t->names = lpl_calloc((size_t)n, sizeof *t->names, "tensor names", err);
    t->name_ptrs = lpl_calloc((size_t)n, sizeof *t->name_ptrs, "tensor names", err);
    t->dtypes = lpl_calloc((size_t)n, sizeof *t->dtypes, "tensor types", err);
    t->n_dims = lpl_calloc((size_t)n, sizeof *t->n_dims, "tensor ranks", err);
    t->shape_store = lpl_calloc((size_t)n, sizeof *t->shape_store, "tensor shapes", err);
    t->shapes = lpl_calloc((size_t)n, sizeof *t->shapes, "tensor shapes", err);
    t->data = lpl_calloc((size_t)n, sizeof *t->data, "tensor data", err);
    if (!t->names || !t->name_ptrs || !t->dtypes || !t->n_dims || !t->shape_store || !t->shapes || !t->data) {
        tensor_list_free(t);
        return LPL_ERR_NOMEM;
    }
    int r = l->cfg.r;
    for (int i = 0; i < l->n_modules; i++) {
        const lpl_lora_module *m = &l->modules[i];
        for (int k = 0; k < 2; k++) {
            int j = 2 * i + k;
            lpl_adapter_key(m->layer, m->site, k ? 'B' : 'A', t->names[j], sizeof t->names[j]);
            t->name_ptrs[j] = t->names[j];
            t->dtypes[j] = LPL_F32;
            t->n_dims[j] = 2;
            t->shape_store[j][0] = k ? m->out : r;
            t->shape_store[j][1] = k ? r : m->in;
            t->shapes[j] = t->shape_store[j];
            t->data[j] = k ? m->B : m->A;
        }
    }
    return LPL_OK;
}

static const char *const st_meta[] = {"format", "pt", NULL};

lpl_status lpl_adapter_to_safetensors(const lpl_lora *l, void **out, size_t *size, lpl_error *err)
{
    tensor_list t;
    lpl_status st = tensor_list_build(l, &t, err);
    if (st)
        return st;
    st = lpl_safetensors_write_memory(t.n, t.name_ptrs, t.dtypes, t.n_dims, t.shapes, t.data, st_meta, out,
                                      size, err);
    tensor_list_free(&t);
    return st;
}

lpl_status lpl_adapter_save(const lpl_lora *l, const char *base_model_name, const char *dir, lpl_error *err)
{
    lpl_status st = lpl_make_dirs(dir, err);
    if (st)
        return st;
    char path[LPL_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    tensor_list t;
    st = tensor_list_build(l, &t, err);
    if (st)
        return st;
    st = lpl_safetensors_write_file(path, t.n, t.name_ptrs, t.dtypes, t.n_dims, t.shapes, t.data, st_meta, err);
    tensor_list_free(&t);
    if (st)
        return st;
    char *cfg = lpl_adapter_config_json_for(l, base_model_name);
    if (!cfg)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: adapter_config.json");
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    st = lpl_write_file_atomic(path, cfg, strlen(cfg), err);
    free(cfg);
    return st;
}

/* Copies tensor `key` of shape [rows, cols] into dst as fp32. */
static lpl_status take_tensor(const lpl_safetensors *s, const char *key, int64_t rows, int64_t cols, float *dst,
                              lpl_error *err)
{
    const lpl_st_tensor *t = lpl_safetensors_find(s, key);
    if (!t)
        return lpl_fail(err, LPL_ERR_FORMAT, "adapter_model.safetensors: missing tensor %s", key);
    if (t->unsupported || (t->dtype != LPL_F32 && t->dtype != LPL_F16 && t->dtype != LPL_BF16))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "adapter_model.safetensors: %s has an unsupported dtype", key);
    if (t->n_dims != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "adapter_model.safetensors: %s has shape [%lld, %lld], expected [%lld, %lld]", key,
                        t->n_dims > 0 ? (long long)t->shape[0] : -1LL, t->n_dims > 1 ? (long long)t->shape[1] : -1LL,
                        (long long)rows, (long long)cols);
    lpl_st_to_f32(t->dtype, t->data, dst, rows * cols);
    return LPL_OK;
}

lpl_lora *lpl_adapter_from_memory(const char *config_json, const void *st_bytes, size_t st_size,
                                  const lpl_gpt2_config *mc, lpl_error *err)
{
    lpl_lora_config c;
    if (lpl_adapter_config_parse(config_json, &c, err))
        return NULL;
    lpl_lora *l = lpl_lora_attach(&c, mc, err);
    if (!l)
        return NULL;
    lpl_safetensors *s = lpl_safetensors_open_memory(st_bytes, st_size, 0, err);
    if (!s) {
        lpl_lora_free(l);
        return NULL;
    }
    lpl_status st = LPL_OK;
    char key[96];
    for (int i = 0; !st && i < l->n_modules; i++) {
        lpl_lora_module *m = &l->modules[i];
        lpl_adapter_key(m->layer, m->site, 'A', key, sizeof key);
        st = take_tensor(s, key, c.r, m->in, m->A, err);
        lpl_adapter_key(m->layer, m->site, 'B', key, sizeof key);
        if (!st)
            st = take_tensor(s, key, m->out, c.r, m->B, err);
    }
    /* A lora tensor we did not take means the config and the weights disagree. */
    int64_t n_lora = 0;
    const lpl_st_tensor *ts = lpl_safetensors_tensors(s);
    for (int64_t i = 0; !st && i < lpl_safetensors_n_tensors(s); i++) {
        if (!strstr(ts[i].name, "lora_"))
            continue;
        n_lora++;
        if (n_lora > 2 * l->n_modules)
            st = lpl_fail(err, LPL_ERR_FORMAT,
                          "adapter_model.safetensors: tensor %s is not a module selected by adapter_config.json",
                          ts[i].name);
    }
    if (!st && n_lora != 2 * l->n_modules)
        st = lpl_fail(err, LPL_ERR_FORMAT, "adapter_model.safetensors: %lld lora tensors for %d modules",
                      (long long)n_lora, l->n_modules);
    lpl_safetensors_close(s);
    if (st) {
        lpl_lora_free(l);
        return NULL;
    }
    return l;
}

lpl_lora *lpl_adapter_load(const char *dir, const lpl_gpt2_config *mc, lpl_error *err)
{
    char path[LPL_PATH_MAX + 64];
    char *cfg = NULL, *bytes = NULL;
    size_t n_cfg, n_bytes;
    lpl_lora *l = NULL;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (lpl_read_file(path, &cfg, &n_cfg, err))
        goto done;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (lpl_read_file(path, &bytes, &n_bytes, err))
        goto done;
    l = lpl_adapter_from_memory(cfg, bytes, n_bytes, mc, err);
    if (!l && err) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        lpl_fail(err, err->code, "%s: %s", dir, msg);
    }
done:
    free(cfg);
    free(bytes);
    return l;
}
