/* The run tests' fixture (tiny_fixture.h). */
#include "tiny_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lpl_status tiny_fixture_init(tiny_fixture *f, const char *name, lpl_dtype t, lpl_error *err)
{
    memset(f, 0, sizeof *f);
    char path[512];
    const char *b = getenv("LPL_BUILD_DIR");
    snprintf(path, sizeof path, "%s/%s.gguf", b ? b : ".", name);
    lpl_gguf *g = NULL;
    if (lpl_convert_hf_dir("tests/fixtures/tiny-gpt2", path, t, err) == LPL_OK)
        g = lpl_gguf_open(path, err);
    if (g) {
        f->model = lpl_gpt2_from_gguf(g, 1, err);
        f->tok = f->model ? lpl_tokenizer_from_gguf(g, err) : NULL;
        lpl_gguf_close(g);
    }
    remove(path);
    if (!f->model || !f->tok)
        return err->code ? err->code : LPL_ERR_FORMAT;
    lpl_status st = lpl_alpaca_load("data/alpaca_train.json", &f->train, err);
    return st != LPL_OK ? st : lpl_alpaca_load("data/alpaca_eval.json", &f->eval, err);
}

void tiny_fixture_config(lpl_experiment_config *c)
{
    lpl_experiment_default(c);
    c->n_eval = 2;
    c->epochs = 2;
    c->lr = 5e-3f;
    c->r = 4;
    c->alpha = 8;
    lpl_placement_preset("baseline", &c->placements[0], NULL);
    lpl_placement_preset("attn-exact", &c->placements[1], NULL);
    c->n_placements = 2;
}

void tiny_fixture_free(tiny_fixture *f)
{
    lpl_gpt2_free(f->model);
    lpl_tokenizer_free(f->tok);
    lpl_alpaca_free(&f->train);
    lpl_alpaca_free(&f->eval);
}
