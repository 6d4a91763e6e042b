/* The fixture of the run tests (test_experiment, test_run_host): the HF model
 * tests/fixtures/tiny-gpt2 (2 layers, d 64, context 64, 512-token BPE) converted to a
 * GGUF, its tokenizer, and the Alpaca train and eval sets of data/. Small enough that
 * a step takes a few milliseconds. Paths are relative to the source tree (the tests'
 * working directory). */
#ifndef LPL_TINY_FIXTURE_H
#define LPL_TINY_FIXTURE_H

#include "lpl/io/model_io.h"
#include "lpl/io/data.h"
#include "lpl/lab/experiment.h"

typedef struct {
    lpl_gpt2_model *model;
    lpl_tokenizer *tok;
    lpl_alpaca_set train, eval;
} tiny_fixture;

/* Loads f (zeroed first), converting through $LPL_BUILD_DIR/<name>.gguf (removed
 * afterwards) with weights of type t. LPL_OK, or the first error in err with f loaded
 * only in part (tiny_fixture_free it either way). */
lpl_status tiny_fixture_init(tiny_fixture *f, const char *name, lpl_dtype t, lpl_error *err);

/* The small study both tests start from: the defaults with 2 eval examples, 2 epochs
 * at lr 5e-3, r 4, alpha 8, and the placements baseline and attn-exact. */
void tiny_fixture_config(lpl_experiment_config *c);

/* Frees what tiny_fixture_init loaded. */
void tiny_fixture_free(tiny_fixture *f);

#endif
