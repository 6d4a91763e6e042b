/* Fuzz target: experiment config JSON (and the same text as a command-line
 * placement spec), then the range check, parameter accounting for DialoGPT-medium's
 * shape, and a to_json / parse round trip that must reproduce the config. */
#include "fuzz_common.h"
#include "lpl/lab/experiment.h"

static const lpl_gpt2_config fuzz_exp_model = {24, 1024, 16, 1024, 50257, 1e-5f, {0.1f, 0.1f, 0.1f}, 1, LPL_ARCH_GPT2, 0, 0, 0.0f, 0};

/* The config printed and parsed again must print the same. */
static void fuzz_exp_round_trip(const lpl_experiment_config *c)
{
    char *js = lpl_experiment_to_json(c);
    FUZZ_ASSERT(js != NULL, "to_json of an accepted config returned NULL");
    lpl_experiment_config *c2 = malloc(sizeof *c2);
    FUZZ_ASSERT(c2 != NULL, "out of memory");
    lpl_experiment_default(c2);
    lpl_error e;
    lpl_error_clear(&e);
    lpl_status st = lpl_experiment_parse_json(js, c2, &e);
    FUZZ_ASSERT(st == LPL_OK, "the printed config does not parse: %s\n%s", e.msg, js);
    char *js2 = lpl_experiment_to_json(c2);
    FUZZ_ASSERT(js2 != NULL && strcmp(js, js2) == 0, "round trip changed the config:\n%s\n%s", js,
                js2 ? js2 : "(null)");
    free(js2);
    free(c2);
    free(js);
}

static void fuzz_exp_count(const lpl_experiment_config *c)
{
    lpl_error e;
    lpl_error_clear(&e);
    if (lpl_experiment_check(c, &fuzz_exp_model, &e) != LPL_OK) {
        FUZZ_ASSERT(e.msg[0] != '\0', "check failed without a message");
        return;
    }
    /* One flag per layer and site of every architecture (LPL_N_SITES), not GPT-2's four. */
    uint8_t sel[24 * LPL_N_SITES];
    for (int i = 0; i < c->n_placements; i++) {
        lpl_placement_count cnt;
        lpl_status st = lpl_experiment_count(c, &fuzz_exp_model, i, &cnt, sel, &e);
        FUZZ_ASSERT(st == LPL_OK, "count of checked placement %d failed: %s", i, e.msg);
        FUZZ_ASSERT(cnt.trainable > 0 && cnt.total == cnt.base + cnt.trainable,
                    "placement %d: trainable %lld base %lld total %lld", i, (long long)cnt.trainable,
                    (long long)cnt.base, (long long)cnt.total);
    }
    char *cj = lpl_experiment_count_json(c, &fuzz_exp_model, &e);
    FUZZ_ASSERT(cj != NULL, "count_json of a checked config failed: %s", e.msg);
    free(cj);
}

int lpl_fuzz_experiment(const uint8_t *data, size_t size, lpl_error *err)
{
    char *text = fuzz_cstr(data, size);
    if (size < 512) {
        lpl_placement p;
        lpl_error e;
        lpl_error_clear(&e);
        if (lpl_placement_parse(text, &p, &e) == LPL_OK)
            FUZZ_ASSERT(p.name[0] != '\0', "placement without a name from \"%s\"", text);
    }
    lpl_experiment_config *c = malloc(sizeof *c);
    FUZZ_ASSERT(c != NULL, "out of memory");
    lpl_experiment_default(c);
    int ok = lpl_experiment_parse_json(text, c, err) == LPL_OK;
    if (ok) {
        FUZZ_ASSERT(c->n_placements >= 1 && c->n_placements <= LPL_EXP_MAX_PLACEMENTS,
                    "%d placements accepted", c->n_placements);
        fuzz_exp_count(c);
        fuzz_exp_round_trip(c);
    } else {
        FUZZ_ASSERT(err->msg[0] != '\0', "refused without a message");
    }
    free(c);
    free(text);
    return ok;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_experiment(data, size, &err);
    return 0;
}
#endif
