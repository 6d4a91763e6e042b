/* Everything the lab offers by name, as one JSON document, so that the CLI, the page
 * (through the wasm API) and the benchmarks read one list instead of keeping copies. */
#ifndef LPL_PRESETS_H
#define LPL_PRESETS_H

/* {"models": [{name, n_layer, n_embd, n_head, n_ctx, n_vocab}],
 *  "placements": [{name, description, target_modules, study}],
 *  "study": experiment defaults, "quick": the same after --quick, "saved": the
 *  defaults a saved run's missing settings take (lpl_experiment_saved_default),
 *  "generate": {max_new_tokens, temperature, top_k, repetition_penalty, seed}}
 * malloc'd; NULL only when memory runs out. */
char *lpl_presets_json(void);

#endif
