/* PEFT adapter files: key names, shapes, config fields, round trip, and the errors a
 * mismatched or damaged adapter gives. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "check.h"
#include "lpl/io/adapter_io.h"
#include "lpl/lab/experiment.h"
#include "lpl/io/safetensors.h"
#include "tiny_model.h"

static const char *tmpdir(void)
{
    static char dir[256];
    const char *b = getenv("LPL_BUILD_DIR");
    snprintf(dir, sizeof dir, "%s/test_adapter_io.tmp", b ? b : ".");
    return dir;
}

static void fill(lpl_lora *l, float scale)
{
    for (int64_t i = 0; i < l->n_params; i++)
        l->params[i] = scale * sinf(0.37f * (float)i + 0.1f);
}

static void test_round_trip(void)
{
    lpl_gpt2_config mc = tiny_config();
    lpl_lora_config c;
    lpl_lora_config_default(&c);
    c.r = 4;
    c.alpha = 8;
    c.n_layers = 1;
    c.layers[0] = 1;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_lora *l = lpl_lora_attach(&c, &mc, &err);
    CHECK(l != NULL, "attach: %s", err.msg);
    if (!l)
        return;
    fill(l, 0.5f);
    const char *dir = tmpdir();
    CHECK(lpl_adapter_save(l, "tiny-test", dir, &err) == LPL_OK, "save: %s", err.msg);

    char path[512];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *text;
    size_t n;
    CHECK(lpl_read_file(path, &text, &n, &err) == LPL_OK, "%s", err.msg);
    cJSON *o = cJSON_Parse(text);
    CHECK(o != NULL, "config is JSON");
    CHECK(!strcmp(cJSON_GetObjectItem(o, "peft_type")->valuestring, "LORA"), "peft_type");
    CHECK(!strcmp(cJSON_GetObjectItem(o, "task_type")->valuestring, "CAUSAL_LM"), "task_type");
    CHECK(!strcmp(cJSON_GetObjectItem(o, "bias")->valuestring, "none"), "bias");
    CHECK(!strcmp(cJSON_GetObjectItem(o, "base_model_name_or_path")->valuestring, "tiny-test"), "base model");
    CHECK(cJSON_GetObjectItem(o, "r")->valuedouble == 4 && cJSON_GetObjectItem(o, "lora_alpha")->valuedouble == 8,
          "r, alpha");
    CHECK(cJSON_GetObjectItem(o, "lora_dropout")->valuedouble == 0.1, "dropout printed as 0.1");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "fan_in_fan_out")), "fan_in_fan_out true");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "use_rslora")), "use_rslora");
    cJSON *tm = cJSON_GetObjectItem(o, "target_modules");
    CHECK(cJSON_GetArraySize(tm) == 3 && !strcmp(cJSON_GetArrayItem(tm, 0)->valuestring, "c_attn"), "targets");
    cJSON *lt = cJSON_GetObjectItem(o, "layers_to_transform");
    CHECK(cJSON_GetArraySize(lt) == 1 && cJSON_GetArrayItem(lt, 0)->valuedouble == 1, "layers_to_transform");
    cJSON_Delete(o);
    free(text);

    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    lpl_safetensors *st = lpl_safetensors_open(path, &err);
    CHECK(st != NULL, "safetensors opens: %s", err.msg);
    if (st) {
        /* layer 1 only, sites c_attn, attn.c_proj, mlp.c_proj (c_proj matches both), mlp.c_fc */
        CHECK(lpl_safetensors_n_tensors(st) == 8, "8 tensors, got %lld", (long long)lpl_safetensors_n_tensors(st));
        struct { const char *key; int64_t r0, r1; } want[] = {
            {"base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", 4, 32},
            {"base_model.model.transformer.h.1.attn.c_attn.lora_B.weight", 96, 4},
            {"base_model.model.transformer.h.1.attn.c_proj.lora_A.weight", 4, 32},
            {"base_model.model.transformer.h.1.attn.c_proj.lora_B.weight", 32, 4},
            {"base_model.model.transformer.h.1.mlp.c_fc.lora_A.weight", 4, 32},
            {"base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight", 128, 4},
            {"base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight", 4, 128},
            {"base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight", 32, 4},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            const lpl_st_tensor *t = lpl_safetensors_find(st, want[i].key);
            CHECK(t && t->dtype == LPL_F32 && t->n_dims == 2 && t->shape[0] == want[i].r0 && t->shape[1] == want[i].r1,
                  "%s [%lld, %lld]", want[i].key, (long long)want[i].r0, (long long)want[i].r1);
        }
        const lpl_st_tensor *a = lpl_safetensors_find(st, want[0].key);
        CHECK(a && !memcmp(a->data, l->modules[0].A, 4 * 32 * sizeof(float)), "A bytes are the adapter's");
        lpl_safetensors_close(st);
    }

    lpl_lora *back = lpl_adapter_load(dir, &mc, &err);
    CHECK(back != NULL, "load: %s", err.msg);
    if (back) {
        CHECK(back->n_params == l->n_params && back->cfg.r == 4 && back->cfg.alpha == 8 && back->n_modules == 4,
              "same shape after load");
        CHECK(!memcmp(back->params, l->params, (size_t)l->n_params * sizeof(float)), "same weights after load");
        CHECK(back->scaling == l->scaling, "same scaling");
    }
    lpl_lora_free(back);

    /* the model shape must fit: a wider model rejects the adapter, naming the tensor */
    lpl_gpt2_config wide = mc;
    wide.n_embd = 64;
    back = lpl_adapter_load(dir, &wide, &err);
    CHECK(!back && strstr(err.msg, "lora_A.weight") && strstr(err.msg, "shape"), "wrong shape: %s", err.msg);
    lpl_lora_free(back);

    /* a tensor missing from the file */
    void *bytes;
    size_t size;
    const char *names[1] = {"base_model.model.transformer.h.1.attn.c_attn.lora_A.weight"};
    lpl_dtype dt[1] = {LPL_F32};
    int nd[1] = {2};
    int64_t shp[2] = {4, 32};
    const int64_t *shapes[1] = {shp};
    const void *data[1] = {l->modules[0].A};
    CHECK(lpl_safetensors_write_memory(1, names, dt, nd, shapes, data, NULL, &bytes, &size, &err) == LPL_OK, "%s",
          err.msg);
    char *cfg = lpl_adapter_config_json(&l->cfg, NULL);
    back = lpl_adapter_from_memory(cfg, bytes, size, &mc, &err);
    CHECK(!back && strstr(err.msg, "missing tensor") && strstr(err.msg, "attn.c_attn.lora_B"), "missing: %s", err.msg);
    lpl_lora_free(back);
    free(bytes);

    /* config errors */
    back = lpl_adapter_from_memory("{\"peft_type\": \"IA3\", \"r\": 4}", "", 0, &mc, &err);
    CHECK(!back && strstr(err.msg, "peft_type"), "%s", err.msg);
    back = lpl_adapter_from_memory("{\"peft_type\": \"LORA\", \"r\": 0, \"lora_alpha\": 8, \"target_modules\": [\"c_fc\"]}",
                                   "", 0, &mc, &err);
    CHECK(!back && strstr(err.msg, "r must be"), "%s", err.msg);
    back = lpl_adapter_from_memory("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"c_fc\"], "
                                   "\"bias\": \"all\"}", "", 0, &mc, &err);
    CHECK(!back && strstr(err.msg, "bias"), "%s", err.msg);
    back = lpl_adapter_load("no/such/adapter", &mc, &err);
    CHECK(!back && strstr(err.msg, "no/such/adapter/adapter_config.json"), "%s", err.msg);
    free(cfg);
    lpl_lora_free(l);
}

static void test_regex_config(void)
{
    lpl_lora_config c, back;
    lpl_lora_config_default(&c);
    c.n_targets = 0;
    snprintf(c.regex, sizeof c.regex, "%s", ".*\\.h\\.[0-1]\\.mlp\\.c_fc");
    c.use_rslora = 1;
    char *js = lpl_adapter_config_json(&c, "m");
    lpl_error err;
    CHECK(lpl_adapter_config_parse(js, &back, &err) == LPL_OK, "%s", err.msg);
    CHECK(!strcmp(back.regex, c.regex) && back.n_targets == 0 && back.use_rslora && back.r == 16 && back.alpha == 32,
          "regex config round trip");
    free(js);
}

/* layers_to_transform as one number: an index is taken, anything else refused by name
 * (2e22 once reached an int conversion first: undefined behaviour, found by fuzz_adapter) */
static void test_single_layer(void)
{
    const char *head = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"target_modules\":[\"c_attn\"],\"layers_to_transform\":";
    const char *bad[] = {"2.08333e+22", "-1", "1.5", "1e7"};
    char js[256];
    lpl_lora_config c;
    lpl_error err;
    snprintf(js, sizeof js, "%s3}", head);
    CHECK(lpl_adapter_config_parse(js, &c, &err) == LPL_OK && c.n_layers == 1 && c.layers[0] == 3, "layer 3: %s",
          err.msg);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(js, sizeof js, "%s%s}", head, bad[i]);
        lpl_error_clear(&err);
        CHECK(lpl_adapter_config_parse(js, &c, &err) == LPL_ERR_FORMAT && strstr(err.msg, "layers_to_transform"),
              "layers_to_transform %s refused: %s", bad[i], err.msg);
    }
}

int main(void)
{
    test_round_trip();
    test_regex_config();
    test_single_layer();
    return check_report("test_adapter_io");
}
