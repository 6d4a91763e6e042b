/* Fuzz target: Hugging Face config.json of a GPT-2 model, then the config checks
 * and parameter count the importer applies to an accepted config. */
#include "fuzz_common.h"
#include "lpl/model/gpt2.h"
#include "../../src/io/hf_import.h"

int lpl_fuzz_hf_config(const uint8_t *data, size_t size, lpl_error *err)
{
    lpl_gpt2_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (lpl_hf_parse_config((const char *)data, size, &cfg, err) != LPL_OK) {
        FUZZ_ASSERT(err->msg[0] != '\0', "refused without a message");
        return 0;
    }
    FUZZ_ASSERT(cfg.n_layer >= 1 && cfg.n_embd >= 1 && cfg.n_head >= 1 && cfg.n_ctx >= 1 && cfg.n_vocab >= 1,
                "accepted config L=%d C=%d H=%d T=%d V=%d", cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_ctx,
                cfg.n_vocab);
    FUZZ_ASSERT(cfg.n_embd % cfg.n_head == 0, "n_head %d does not divide n_embd %d", cfg.n_head, cfg.n_embd);
    FUZZ_ASSERT(cfg.ln_eps > 0.0f && cfg.ln_eps < 1.0f, "layer_norm_epsilon %g", (double)cfg.ln_eps);
    lpl_error e;
    lpl_error_clear(&e);
    if (lpl_gpt2_config_check(&cfg, &e) == LPL_OK)
        FUZZ_ASSERT(lpl_gpt2_param_count(&cfg) > 0, "parameter count overflowed for L=%d C=%d V=%d T=%d",
                    cfg.n_layer, cfg.n_embd, cfg.n_vocab, cfg.n_ctx);
    return 1;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_hf_config(data, size, &err);
    return 0;
}
#endif
