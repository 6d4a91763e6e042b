/* Fuzz target: PEFT adapter loading. The input is adapter_config.json, one NUL byte,
 * then adapter_model.safetensors. The config is parsed alone, then both are loaded
 * for a small GPT-2 shape (2 layers, width 64); an accepted adapter is written back
 * to safetensors and must load again to the same parameters. */
#include "fuzz_common.h"
#include "lpl/io/adapter_io.h"

static const lpl_gpt2_config fuzz_adapter_model = {2, 64, 2, 32, 300, 1e-5f, {0, 0, 0}, 1, LPL_ARCH_GPT2, 0, 0, 0.0f, 0};

static void fuzz_adapter_round_trip(const lpl_lora *l, const char *config)
{
    void *st = NULL;
    size_t st_n = 0;
    lpl_error e;
    lpl_error_clear(&e);
    lpl_status s = lpl_adapter_to_safetensors(l, &st, &st_n, &e);
    FUZZ_ASSERT(s == LPL_OK, "writing an accepted adapter failed: %s", e.msg);
    char *cfg = lpl_adapter_config_json(&l->cfg, "fuzz");
    FUZZ_ASSERT(cfg != NULL, "adapter_config.json of an accepted adapter is NULL");
    lpl_lora *back = lpl_adapter_from_memory(cfg, st, st_n, &fuzz_adapter_model, &e);
    FUZZ_ASSERT(back != NULL, "re-loading a written adapter failed: %s\nconfig was: %s", e.msg, config);
    FUZZ_ASSERT(back->n_params == l->n_params && back->n_modules == l->n_modules,
                "round trip changed the adapter (%lld/%d vs %lld/%d)", (long long)back->n_params,
                back->n_modules, (long long)l->n_params, l->n_modules);
    FUZZ_ASSERT(memcmp(back->params, l->params, (size_t)l->n_params * sizeof(float)) == 0,
                "round trip changed the adapter's parameters");
    lpl_lora_free(back);
    free(cfg);
    free(st);
}

int lpl_fuzz_adapter(const uint8_t *data, size_t size, lpl_error *err)
{
    const uint8_t *st;
    size_t st_n;
    size_t cfg_n = fuzz_split(data, size, &st, &st_n);
    char *cfg = fuzz_cstr(data, cfg_n);

    lpl_lora_config c;
    lpl_error e;
    lpl_error_clear(&e);
    if (lpl_adapter_config_parse(cfg, &c, &e) == LPL_OK)
        FUZZ_ASSERT(c.r >= 1, "config accepted with r=%d", c.r);

    /* The safetensors part gets its own buffer of exactly st_n bytes, so a read past
     * its end is caught even though more input bytes follow in memory. */
    uint8_t *stb = malloc(st_n ? st_n : 1);
    FUZZ_ASSERT(stb != NULL, "out of memory");
    if (st_n)
        memcpy(stb, st, st_n);
    lpl_lora *l = lpl_adapter_from_memory(cfg, stb, st_n, &fuzz_adapter_model, err);
    if (l) {
        FUZZ_ASSERT(l->n_modules >= 1 && l->n_params > 0, "empty adapter accepted");
        fuzz_adapter_round_trip(l, cfg);
        lpl_lora_free(l);
    } else {
        FUZZ_ASSERT(err->msg[0] != '\0', "refused without a message");
    }
    free(stb);
    free(cfg);
    return l != NULL;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_adapter(data, size, &err);
    return 0;
}
#endif
