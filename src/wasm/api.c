/* The wasm API (docs/WASM_API.md): what the Web Worker and the Node tests call.
 * One module instance holds one model, one dataset and one run. Returned strings
 * are owned here and stay valid until the next call of the same function.
 * Natively (no __EMSCRIPTEN__) the file compiles too, for quick checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "lpl/io/adapter_io.h"
#include "lpl/io/hf_stream.h"
#include "lpl/lab/experiment.h"
#include "lpl/lab/grid.h"
#include "lpl/core/kernels.h"
#include "lpl/io/model_io.h"
#include "lpl/core/threads.h"
#include "lpl/lab/generate.h"
#include "lpl/lab/document.h"
#include "lpl/lab/presets.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#include <emscripten/heap.h>
#include <malloc.h>
#define LAB_EXPORT EMSCRIPTEN_KEEPALIVE
#else
#define LAB_EXPORT
#endif

/* ---------------------------------------------------------------- module state */

static struct {
    lpl_error err;
    /* model */
    uint8_t *model_bytes;
    size_t model_size;
    lpl_gguf *gguf;
    lpl_gpt2_model *model;
    lpl_tokenizer *tok;
    lpl_run_identity id;
    /* data */
    lpl_alpaca_set train, eval;
    int have_data, have_eval;
    /* run */
    lpl_experiment_config cfg;
    lpl_run *run;
    /* streamed import in progress */
    lpl_hf_stream *import;
    /* outputs */
    void *buffer;
    size_t buffer_size;
    char *str_info, *str_count, *str_estimate, *str_events, *str_results, *str_csv, *str_adapter_cfg,
        *str_generate, *str_memory, *str_presets, *str_tokens, *str_import, *str_tensors, *str_host;
    lpl_run_host_step host;
} g;

/* Replaces the kept string *slot by s (which may be NULL) and returns it or "". */
static const char *keep(char **slot, char *s)
{
    free(*slot);
    *slot = s;
    return s ? s : "";
}

static int fail_code(lpl_status st)
{
    return st ? (int)st : (int)LPL_ERR_INVALID;
}

static void set_buffer(void *p, size_t n)
{
    free(g.buffer);
    g.buffer = p;
    g.buffer_size = n;
}

LAB_EXPORT const char *lab_last_error(void) { return g.err.msg; }

/* The presets document of lpl/lab/presets.h (models, placements, study and quick
 * settings, generation defaults): the page's lists and defaults come from here. */
LAB_EXPORT const char *lab_presets(void) { return keep(&g.str_presets, lpl_presets_json()); }
LAB_EXPORT uint8_t *lab_buffer_ptr(void) { return g.buffer; }
LAB_EXPORT size_t lab_buffer_size(void) { return g.buffer_size; }

LAB_EXPORT int lab_init(int threads)
{
    lpl_error_clear(&g.err);
    return (int)lpl_threads_init(threads, &g.err);
}

/* ---------------------------------------------------------------- model */

static void free_run(void)
{
    lpl_run_free(g.run);
    g.run = NULL;
}

static void free_model(void)
{
    free_run();
    lpl_tokenizer_free(g.tok);
    lpl_gpt2_free(g.model);
    lpl_gguf_close(g.gguf);
    free(g.model_bytes);
    g.tok = NULL;
    g.model = NULL;
    g.gguf = NULL;
    g.model_bytes = NULL;
    g.model_size = 0;
    /* The model's part of the identity only: data loaded before the model keeps its
     * sha256 (the page loads both at once, in either order). */
    g.id.model_path[0] = g.id.model_name[0] = g.id.model_sha256[0] = g.id.matrix_type[0] = '\0';
    g.id.model_bytes = 0;
}

LAB_EXPORT int lab_load_model(uint8_t *gguf, size_t n)
{
    lpl_error_clear(&g.err);
    free_model();
    g.model_bytes = gguf; /* ours from now on, whatever happens */
    g.model_size = n;
    g.gguf = lpl_gguf_open_memory(gguf, n, 0, &g.err);
    if (g.gguf)
        g.model = lpl_gpt2_from_gguf(g.gguf, 0, &g.err);
    if (g.model)
        g.tok = lpl_tokenizer_from_gguf(g.gguf, &g.err);
    if (!g.tok) {
        lpl_status st = g.err.code;
        free_model();
        return fail_code(st);
    }
    lpl_sha256_hex(gguf, n, g.id.model_sha256);
    const char *name = NULL;
    size_t len = 0;
    lpl_error e2;
    if (lpl_gguf_get_str(g.gguf, "general.name", &name, &len, &e2) == LPL_OK)
        snprintf(g.id.model_name, sizeof g.id.model_name, "%.*s", (int)len, name);
    g.id.model_bytes = (int64_t)n;
    snprintf(g.id.matrix_type, sizeof g.id.matrix_type, "%s", lpl_dtype_name(g.model->blocks[0].w[0].type));
    return 0;
}

LAB_EXPORT const char *lab_model_info(void)
{
    if (!g.model) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no model loaded");
        return keep(&g.str_info, NULL);
    }
    const lpl_gpt2_config *c = &g.model->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", g.id.model_name);
    lpl_model_shape_add(o, c, 1);
    cJSON_AddStringToObject(o, "matrix_type", g.id.matrix_type);
    cJSON_AddNumberToObject(o, "file_bytes", (double)g.model_size);
    cJSON_AddStringToObject(o, "sha256", g.id.model_sha256);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return keep(&g.str_info, s);
}

LAB_EXPORT int lab_convert_hf(const char *config_json, const uint8_t *ckpt, size_t ckpt_len, const char *vocab_json,
                              const char *merges_txt, const char *type)
{
    lpl_error_clear(&g.err);
    lpl_dtype t;
    if (!lpl_matrix_type_from_name(type, &t))
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "type '%s': expected q8_0, f16, f32 or q4_0", type ? type : "");
    if (!config_json || !ckpt || !vocab_json || !merges_txt)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "convert: config, checkpoint, vocab and merges are all needed");
    void *out = NULL;
    size_t n = 0;
    lpl_status st = lpl_convert_hf_memory(config_json, strlen(config_json), ckpt, ckpt_len, vocab_json,
                                          strlen(vocab_json), merges_txt, strlen(merges_txt), t, &out, &n, &g.err);
    if (st)
        return (int)st;
    set_buffer(out, n);
    return 0;
}

/* ---------------------------------------------------------------- streamed import */

static int64_t heap_available(void);

LAB_EXPORT void lab_import_abort(void)
{
    lpl_hf_stream_free(g.import);
    g.import = NULL;
}

/* What an import of this config needs at its peak and what the heap can give (a
 * loaded model counts as available: the import replaces it). */
LAB_EXPORT const char *lab_import_check(const char *config_json, const char *type)
{
    lpl_error_clear(&g.err);
    lpl_dtype t;
    if (!lpl_matrix_type_from_name(type, &t)) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "type '%s': expected q8_0, f16, f32 or q4_0", type ? type : "");
        return keep(&g.str_import, NULL);
    }
    int64_t gguf = 0, need = config_json ? lpl_hf_stream_need(config_json, strlen(config_json), t, &gguf, &g.err) : -1;
    if (need < 0) {
        if (!config_json)
            lpl_fail(&g.err, LPL_ERR_INVALID, "import: no config.json");
        return keep(&g.str_import, NULL);
    }
    int64_t avail = heap_available();
    char buf[160];
    snprintf(buf, sizeof buf, "{\"bytes_needed\":%lld,\"gguf_bytes\":%lld,\"bytes_available\":%lld}", (long long)need,
             (long long)gguf, (long long)(avail < 0 ? -1 : avail + (int64_t)g.model_size));
    return keep(&g.str_import, strdup(buf));
}

/* Both ways to begin: vocab.json + merges.txt, or tokenizer.json (+ tokenizer_config.json). */
static int import_begin(const char *config_json, const char *vocab_json, const char *merges_txt,
                        const char *tokenizer_json, const char *tokenizer_config, const char *type, const char *name)
{
    lpl_error_clear(&g.err);
    lab_import_abort();
    lpl_dtype t;
    if (!lpl_matrix_type_from_name(type, &t))
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "type '%s': expected q8_0, f16, f32 or q4_0", type ? type : "");
    int64_t need = lpl_hf_stream_need(config_json, strlen(config_json), t, NULL, &g.err);
    if (need < 0)
        return fail_code(g.err.code);
    int64_t avail = heap_available();
    /* the loaded model is replaced anyway: give its memory back only if it is needed */
    if (avail >= 0 && need > avail && g.model) {
        free_model();
        avail = heap_available();
    }
    if (tokenizer_json)
        g.import = lpl_hf_stream_new_json(config_json, strlen(config_json), tokenizer_json, strlen(tokenizer_json),
                                          tokenizer_config, tokenizer_config ? strlen(tokenizer_config) : 0, t, name,
                                          avail, &g.err);
    else
        g.import = lpl_hf_stream_new(config_json, strlen(config_json), vocab_json, strlen(vocab_json), merges_txt,
                                     strlen(merges_txt), t, name, avail, &g.err);
    return g.import ? 0 : fail_code(g.err.code);
}

LAB_EXPORT int lab_import_begin(const char *config_json, const char *vocab_json, const char *merges_txt,
                                const char *type, const char *name)
{
    if (!config_json || !vocab_json || !merges_txt) {
        lpl_error_clear(&g.err);
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "import: config, vocab and merges are all needed");
    }
    return import_begin(config_json, vocab_json, merges_txt, NULL, NULL, type, name);
}

/* lab_import_begin for a Llama-family folder: the tokenizer from tokenizer.json and
 * (optional, NULL) tokenizer_config.json, padded to config.json's vocab_size. */
LAB_EXPORT int lab_import_begin_json(const char *config_json, const char *tokenizer_json,
                                     const char *tokenizer_config, const char *type, const char *name)
{
    if (!config_json || !tokenizer_json) {
        lpl_error_clear(&g.err);
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "import: config.json and tokenizer.json are both needed");
    }
    return import_begin(config_json, NULL, NULL, tokenizer_json, tokenizer_config, type, name);
}

LAB_EXPORT int lab_import_zip_tail(const uint8_t *tail, size_t n, double file_size)
{
    lpl_error_clear(&g.err);
    if (!g.import)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no import in progress (lab_import_begin)");
    if (!(file_size >= (double)n && file_size < 9007199254740992.0))
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "zip tail: file size %.0f is impossible", file_size);
    return (int)lpl_hf_stream_zip_tail(g.import, tail, n, (uint64_t)file_size, &g.err);
}

LAB_EXPORT int lab_import_feed(const uint8_t *data, size_t n)
{
    lpl_error_clear(&g.err);
    if (!g.import)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no import in progress (lab_import_begin)");
    lpl_status st = lpl_hf_stream_feed(g.import, data, n, &g.err);
    if (st)
        lab_import_abort();
    return (int)st;
}

LAB_EXPORT const char *lab_import_progress(void)
{
    char buf[256];
    int done = 0, total = 0;
    uint64_t bytes = 0;
    int64_t held = 0, held_peak = 0;
    if (g.import) {
        lpl_hf_stream_progress(g.import, &done, &total, &bytes);
        lpl_hf_stream_held(g.import, &held, &held_peak);
    }
    snprintf(buf, sizeof buf,
             "{\"tensors_done\":%d,\"tensors_total\":%d,\"bytes\":%llu,\"format\":\"%s\",\"held_bytes\":%lld,"
             "\"held_peak_bytes\":%lld}",
             done, total, (unsigned long long)bytes, g.import ? lpl_hf_stream_format(g.import) : "", (long long)held,
             (long long)held_peak);
    return keep(&g.str_import, strdup(buf));
}

LAB_EXPORT int lab_import_finish(void)
{
    lpl_error_clear(&g.err);
    if (!g.import)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no import in progress (lab_import_begin)");
    void *out = NULL;
    size_t n = 0;
    lpl_status st = lpl_hf_stream_finish(g.import, &out, &n, &g.err);
    lab_import_abort();
    if (st)
        return (int)st;
    return lab_load_model(out, n); /* in place: the module owns the converted model */
}

LAB_EXPORT uint8_t *lab_model_ptr(void) { return g.model_bytes; }
LAB_EXPORT size_t lab_model_size(void) { return g.model_size; }

/* ---------------------------------------------------------------- data */

LAB_EXPORT int lab_set_data(const char *train_json, const char *eval_json)
{
    lpl_error_clear(&g.err);
    free_run();
    lpl_alpaca_free(&g.train);
    lpl_alpaca_free(&g.eval);
    g.have_data = g.have_eval = 0;
    g.id.train_sha256[0] = g.id.eval_sha256[0] = g.id.train_path[0] = g.id.eval_path[0] = '\0';
    if (!train_json)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no training data");
    lpl_status st = lpl_alpaca_parse(train_json, strlen(train_json), &g.train, &g.err);
    if (st) {
        char msg[sizeof g.err.msg];
        snprintf(msg, sizeof msg, "%s", g.err.msg);
        return (int)lpl_fail(&g.err, st, "training data: %s", msg);
    }
    lpl_sha256_hex(train_json, strlen(train_json), g.id.train_sha256);
    if (eval_json && eval_json[0]) {
        st = lpl_alpaca_parse(eval_json, strlen(eval_json), &g.eval, &g.err);
        if (st) {
            char msg[sizeof g.err.msg];
            snprintf(msg, sizeof msg, "%s", g.err.msg);
            lpl_alpaca_free(&g.train);
            return (int)lpl_fail(&g.err, st, "eval data: %s", msg);
        }
        lpl_sha256_hex(eval_json, strlen(eval_json), g.id.eval_sha256);
        g.have_eval = 1;
    }
    g.have_data = 1;
    return 0;
}

/* Names the data just set (file names, a URL): results.json's data.train.path and
 * data.eval.path, beside their sha256. NULL or "" leaves a name empty (null). */
LAB_EXPORT void lab_set_data_names(const char *train_name, const char *eval_name)
{
    snprintf(g.id.train_path, sizeof g.id.train_path, "%s", train_name ? train_name : "");
    snprintf(g.id.eval_path, sizeof g.id.eval_path, "%s", eval_name ? eval_name : "");
}

/* ---------------------------------------------------------------- experiment */

/* The experiment of the JSON on top of the study's defaults. */
static lpl_status experiment_from(const char *json, lpl_experiment_config *c)
{
    lpl_experiment_default(c);
    if (json && json[0])
        return lpl_experiment_parse_json(json, c, &g.err);
    return LPL_OK;
}

LAB_EXPORT const char *lab_count(const char *experiment_json)
{
    lpl_error_clear(&g.err);
    lpl_experiment_config c;
    if (experiment_from(experiment_json, &c))
        return keep(&g.str_count, NULL);
    lpl_gpt2_config mc;
    if (c.preset[0]) {
        if (lpl_gpt2_preset(c.preset, &mc, &g.err))
            return keep(&g.str_count, NULL);
    } else if (g.model) {
        mc = g.model->cfg;
    } else {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no model loaded and no \"preset\" in the experiment");
        return keep(&g.str_count, NULL);
    }
    c.max_len = lpl_experiment_max_len(c.max_len, mc.n_ctx);
    if (c.max_len > mc.n_ctx)
        c.max_len = mc.n_ctx; /* counting does not depend on it */
    /* A grid (r / alpha lists, bands) is counted arm by arm, as the CLI counts it. */
    lpl_experiment_config grid = c;
    if (lpl_experiment_check(&grid, NULL, &g.err) || lpl_grid_expand(&grid, mc.n_layer, &c, &g.err) ||
        lpl_experiment_check(&c, &mc, &g.err))
        return keep(&g.str_count, NULL);
    return keep(&g.str_count, lpl_experiment_count_json(&c, &mc, &g.err));
}

static int64_t heap_available(void)
{
#ifdef __EMSCRIPTEN__
    /* The heap can grow to its maximum; what malloc already handed out is taken. */
    size_t max = emscripten_get_heap_max();
    struct mallinfo mi = mallinfo();
    return (int64_t)max - (int64_t)mi.uordblks;
#else
    return -1;
#endif
}

/* Bytes a run needs beyond the loaded model: activations and their gradients for the
 * longest sequence, logits, and for every placement its adapter (weights, gradients,
 * two AdamW moments while training; weights and gradients kept afterwards). */
static int64_t run_bytes(const lpl_experiment_config *c, const lpl_gpt2_config *mc, lpl_error *err)
{
    int64_t T = lpl_experiment_max_len(c->max_len, mc->n_ctx), C = mc->n_embd, L = mc->n_layer, H = mc->n_head, V = mc->n_vocab;
    int64_t act = T * L * 20 * C + L * H * T * T + 2 * T * V;
    int64_t bytes = 2 * 4 * act;
    int64_t max_trainable = 0, kept = 0;
    for (int i = 0; i < c->n_placements; i++) {
        lpl_lora_config lc;
        lpl_experiment_lora_config_for(c, i, mc, &lc);
        int64_t n = lpl_lora_param_count(&lc, mc, err);
        if (n < 0)
            return -1;
        max_trainable = n > max_trainable ? n : max_trainable;
        kept += 8 * n;
    }
    return bytes + 16 * max_trainable + kept;
}

LAB_EXPORT const char *lab_estimate(const char *experiment_json)
{
    lpl_error_clear(&g.err);
    lpl_experiment_config c;
    if (experiment_from(experiment_json, &c))
        return keep(&g.str_estimate, NULL);
    lpl_gpt2_config mc;
    int64_t model_bytes = (int64_t)g.model_size;
    if (c.preset[0]) {
        if (lpl_gpt2_preset(c.preset, &mc, &g.err))
            return keep(&g.str_estimate, NULL);
        if (!g.model) /* Q8_0 weights: 34 bytes per 32 */
            model_bytes = lpl_gpt2_param_count(&mc) * 34 / 32;
    } else if (g.model) {
        mc = g.model->cfg;
    } else {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no model loaded and no \"preset\" in the experiment");
        return keep(&g.str_estimate, NULL);
    }
    int64_t need = run_bytes(&c, &mc, &g.err);
    if (need < 0)
        return keep(&g.str_estimate, NULL);
    int64_t avail = heap_available();
    char buf[192];
    /* A loaded model is already in the heap; a preset's is still to come. */
    int64_t total = need + (g.model && !c.preset[0] ? 0 : model_bytes);
    snprintf(buf, sizeof buf, "{\"bytes_needed\":%lld,\"bytes_available\":%lld,\"model_bytes\":%lld}",
             (long long)total, (long long)avail, (long long)model_bytes);
    return keep(&g.str_estimate, strdup(buf));
}

LAB_EXPORT int lab_ablate_start(const char *experiment_json)
{
    lpl_error_clear(&g.err);
    free_run();
    if (!g.model)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no model loaded (lab_load_model)");
    if (!g.have_data)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no data (lab_set_data)");
    lpl_experiment_config grid;
    lpl_status st = experiment_from(experiment_json, &grid);
    if (!st)
        st = lpl_experiment_check(&grid, NULL, &g.err);
    /* A grid runs as its arms, in the order a plan gives them (lpl/lab/grid.h). */
    if (!st)
        st = lpl_grid_expand(&grid, g.model->cfg.n_layer, &g.cfg, &g.err);
    if (st)
        return (int)st;
    /* Paths mean nothing here: record what the data really was. */
    snprintf(g.cfg.model, sizeof g.cfg.model, "%s", g.id.model_name);
    g.cfg.train[0] = '\0';
    g.cfg.eval[0] = '\0';
    snprintf(g.id.model_path, sizeof g.id.model_path, "%s", g.id.model_name);
    g.run = lpl_run_new(&g.cfg, g.model, g.tok, &g.train, g.have_eval ? &g.eval : NULL, &g.id, &g.err);
    return g.run ? 0 : fail_code(g.err.code);
}

/* After lab_ablate_start: takes the completed trainings of an earlier run of the
 * same experiment (a results document: its "config", "model" and "trainings") so
 * that only the rest is trained. Refuses another config, model or data. */
LAB_EXPORT int lab_ablate_resume(const char *results_json)
{
    lpl_error_clear(&g.err);
    if (!g.run)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
    return (int)lpl_run_resume(g.run, results_json, &g.err);
}

LAB_EXPORT int lab_ablate_step(void)
{
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return -1;
    }
    lpl_error_clear(&g.err);
    return lpl_run_step(g.run, &g.err);
}

LAB_EXPORT void lab_ablate_cancel(void)
{
    if (g.run)
        lpl_run_cancel(g.run);
}

/* ---------------------------------------------------------------- hosted steps (WebGPU) */

static const char *dtype_name(lpl_dtype t)
{
    return t == LPL_Q8_0 ? "q8_0" : t == LPL_F32 ? "f32" : "unsupported";
}

static cJSON *matrix_cjson(const lpl_matrix *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", dtype_name(m->type));
    cJSON_AddNumberToObject(o, "rows", m->rows);
    cJSON_AddNumberToObject(o, "cols", m->cols);
    cJSON_AddNumberToObject(o, "ptr", (double)(uintptr_t)m->data);
    cJSON_AddNumberToObject(o, "bytes", (double)lpl_dtype_row_bytes(m->type, m->cols) * m->rows);
    return o;
}

static cJSON *floats_cjson(const float *p, int64_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ptr", (double)(uintptr_t)p);
    cJSON_AddNumberToObject(o, "n", (double)(p ? n : 0));
    return o;
}

/* The loaded model's config and tensors where they live in the wasm heap, in the
 * layout of web/gpu/API.md's opts.tensors (matrices {type, rows, cols, ptr, bytes},
 * vectors {ptr, n}): the worker uploads them to the GPU from here, so the shapes have
 * one definition (the C model). "" with lab_last_error when no model is loaded. */
LAB_EXPORT const char *lab_model_tensors(void)
{
    lpl_error_clear(&g.err);
    if (!g.model) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no model loaded (lab_load_model)");
        return keep(&g.str_tensors, NULL);
    }
    const lpl_gpt2_config *c = &g.model->cfg;
    cJSON *root = cJSON_CreateObject();
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    lpl_model_shape_add(cfg, c, 0);
    cJSON_AddNumberToObject(cfg, "ln_eps", c->ln_eps);
    int64_t C = c->n_embd;
    cJSON *t = cJSON_AddObjectToObject(root, "tensors");
    cJSON_AddItemToObject(t, "wte", matrix_cjson(&g.model->wte));
    cJSON_AddItemToObject(t, "wpe", floats_cjson(g.model->wpe, (int64_t)c->n_ctx * C));
    cJSON_AddItemToObject(t, "lnf_w", floats_cjson(g.model->lnf_w, C));
    cJSON_AddItemToObject(t, "lnf_b", floats_cjson(g.model->lnf_b, C));
    if (g.model->lm_head.data)
        cJSON_AddItemToObject(t, "lm_head", matrix_cjson(&g.model->lm_head));
    cJSON *blocks = cJSON_AddArrayToObject(t, "blocks");
    for (int l = 0; l < c->n_layer; l++) {
        const lpl_gpt2_block *b = &g.model->blocks[l];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "ln1_w", floats_cjson(b->ln1_w, C));
        cJSON_AddItemToObject(o, "ln1_b", floats_cjson(b->ln1_b, C));
        cJSON_AddItemToObject(o, "ln2_w", floats_cjson(b->ln2_w, C));
        cJSON_AddItemToObject(o, "ln2_b", floats_cjson(b->ln2_b, C));
        cJSON *w = cJSON_AddArrayToObject(o, "w"), *bb = cJSON_AddArrayToObject(o, "b");
        for (int s = 0; s < LPL_N_SITES; s++) {
            cJSON_AddItemToArray(w, b->w[s].data ? matrix_cjson(&b->w[s]) : cJSON_CreateNull());
            cJSON_AddItemToArray(bb, floats_cjson(b->b[s], b->w[s].rows));
        }
        cJSON_AddItemToArray(blocks, o);
    }
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return keep(&g.str_tensors, js);
}

static void hex64(char *buf, uint64_t v) { snprintf(buf, 19, "0x%016llx", (unsigned long long)v); }

/* Hosted training (docs/WASM_API.md "Hosted training"): runs the run's own units
 * until a training step is due. 1: lab_host_step describes it; 2 (hosted evals,
 * lab_host_evals): an eval pass is due, lab_host_step describes it; 0: the run is
 * finished or cancelled; -1: error (lab_last_error), as lab_ablate_step. */
LAB_EXPORT int lab_host_next(void)
{
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return -1;
    }
    lpl_error_clear(&g.err);
    return lpl_run_host_next(g.run, &g.host, &g.err);
}

static cJSON *host_lora_cjson(const lpl_lora *l)
{
    char hex[20];
    cJSON *lo = cJSON_CreateObject();
    cJSON_AddNumberToObject(lo, "r", l->cfg.r);
    cJSON_AddNumberToObject(lo, "alpha", l->cfg.alpha);
    cJSON_AddNumberToObject(lo, "scaling", l->scaling);
    cJSON_AddNumberToObject(lo, "dropout", l->cfg.dropout);
    hex64(hex, l->cfg.seed);
    cJSON_AddStringToObject(lo, "seed", hex);
    cJSON_AddNumberToObject(lo, "n_params", (double)l->n_params);
    cJSON_AddNumberToObject(lo, "params_ptr", (double)(uintptr_t)l->params);
    cJSON *mods = cJSON_AddArrayToObject(lo, "modules");
    for (int i = 0; i < l->n_modules; i++) {
        const lpl_lora_module *m = &l->modules[i];
        cJSON *mo = cJSON_CreateObject();
        cJSON_AddNumberToObject(mo, "layer", m->layer);
        cJSON_AddNumberToObject(mo, "site", (int)m->site);
        cJSON_AddNumberToObject(mo, "in", m->in);
        cJSON_AddNumberToObject(mo, "out", m->out);
        cJSON_AddItemToArray(mods, mo);
    }
    return lo;
}

static cJSON *host_example_cjson(const lpl_example *e)
{
    cJSON *eo = cJSON_CreateObject();
    cJSON_AddNumberToObject(eo, "T", e->T);
    cJSON_AddNumberToObject(eo, "tokens_ptr", (double)(uintptr_t)e->tokens);
    cJSON_AddNumberToObject(eo, "targets_ptr", (double)(uintptr_t)e->targets);
    cJSON_AddNumberToObject(eo, "mask_ptr", (double)(uintptr_t)e->mask);
    return eo;
}

/* The eval pass lab_host_next handed out (it returned 2), as JSON: kind "eval",
 * training (-1: the base model, no lora), epoch, n_scored, compute, lora (as a step's,
 * when a training's) and examples [{T, tokens_ptr, targets_ptr, mask_ptr}]: the whole
 * eval set in order. */
static const char *host_eval_json(const lpl_run_host_step *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "eval");
    cJSON_AddNumberToObject(o, "training", s->training);
    cJSON_AddNumberToObject(o, "epoch", s->eval_epoch);
    cJSON_AddNumberToObject(o, "step", s->step);
    cJSON_AddNumberToObject(o, "total_steps", s->total_steps);
    cJSON_AddNumberToObject(o, "n_scored", (double)s->eval_scored);
    cJSON_AddStringToObject(o, "compute", lpl_compute_name(s->compute));
    if (s->lora) {
        char hex[20];
        hex64(hex, s->seed);
        cJSON_AddStringToObject(o, "seed", hex);
        cJSON_AddItemToObject(o, "lora", host_lora_cjson(s->lora));
    } else {
        cJSON_AddNullToObject(o, "lora");
    }
    cJSON *ex = cJSON_AddArrayToObject(o, "examples");
    for (int i = 0; i < s->eval_set->n; i++)
        cJSON_AddItemToArray(ex, host_example_cjson(&s->eval_set->ex[i]));
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return keep(&g.str_host, js);
}

/* The step lab_host_next handed out, as JSON: kind "step", training, seed, first_step, step, lr,
 * grad_clip, adamw, base_dropout, lora {r, alpha, scaling, dropout, seed, n_params,
 * params_ptr, modules} and examples [{T, tokens_ptr, targets_ptr, mask_ptr, weight,
 * base_key, lora_key}] (pointers into the wasm heap, keys as 0x hex strings); or the
 * eval pass (host_eval_json) when lab_host_next returned 2. */
LAB_EXPORT const char *lab_host_step(void)
{
    const lpl_run_host_step *s = &g.host;
    if (g.run && s->eval_set)
        return host_eval_json(s);
    if (!g.run || !s->lora)
        return keep(&g.str_host, NULL);
    char hex[20];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "step");
    cJSON_AddNumberToObject(o, "training", s->training);
    hex64(hex, s->seed);
    cJSON_AddStringToObject(o, "seed", hex);
    cJSON_AddBoolToObject(o, "first_step", s->first_step);
    cJSON_AddNumberToObject(o, "step", s->step);
    cJSON_AddNumberToObject(o, "total_steps", s->total_steps);
    cJSON_AddNumberToObject(o, "lr", s->lr);
    cJSON_AddNumberToObject(o, "grad_clip", s->grad_clip);
    cJSON *a = cJSON_AddObjectToObject(o, "adamw");
    cJSON_AddNumberToObject(a, "beta1", s->adamw.beta1);
    cJSON_AddNumberToObject(a, "beta2", s->adamw.beta2);
    cJSON_AddNumberToObject(a, "eps", s->adamw.eps);
    cJSON_AddNumberToObject(a, "weight_decay", s->adamw.weight_decay);
    cJSON_AddStringToObject(o, "compute", lpl_compute_name(s->compute));
    cJSON *d = cJSON_AddObjectToObject(o, "base_dropout");
    cJSON_AddNumberToObject(d, "embd", s->base_dropout.embd);
    cJSON_AddNumberToObject(d, "attn", s->base_dropout.attn);
    cJSON_AddNumberToObject(d, "resid", s->base_dropout.resid);
    cJSON_AddItemToObject(o, "lora", host_lora_cjson(s->lora));
    cJSON *ex = cJSON_AddArrayToObject(o, "examples");
    for (int k = 0; k < s->n_examples; k++) {
        const lpl_example *e = s->ex[k];
        cJSON *eo = host_example_cjson(e);
        cJSON_AddNumberToObject(eo, "weight", s->weight[k]);
        hex64(hex, s->base_key[k]);
        cJSON_AddStringToObject(eo, "base_key", hex);
        hex64(hex, s->lora_key[k]);
        cJSON_AddStringToObject(eo, "lora_key", hex);
        cJSON_AddItemToArray(ex, eo);
    }
    char *js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return keep(&g.str_host, js);
}

/* Records the handed-out step (lpl_run_host_record): 1 = write the adapters back
 * (lab_host_set_adapters) before the next lab_host_next, 0 = not, -1 = error. */
LAB_EXPORT int lab_host_record(float loss, double grad_norm, int tokens)
{
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return -1;
    }
    lpl_error_clear(&g.err);
    return lpl_run_host_record(g.run, loss, grad_norm, tokens, &g.err);
}

/* Hosted evals on (1) or off (0, the default): lpl_run_host_evals. 0, or -1 without a run. */
LAB_EXPORT int lab_host_evals(int on)
{
    lpl_error_clear(&g.err);
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return -1;
    }
    lpl_run_host_evals(g.run, on);
    return 0;
}

/* Records the handed-out eval pass (lpl_run_host_record_eval): n floats at nll (a
 * buffer the caller allocated in the heap), the NLL of every scored position of every
 * eval example in order. 1 = write the adapters back (the training's end is next),
 * 0 = not, -1 = error (lab_last_error). */
LAB_EXPORT int lab_host_record_eval(const float *nll, double n)
{
    lpl_error_clear(&g.err);
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return -1;
    }
    return lpl_run_host_record_eval(g.run, nll, (int64_t)n, &g.err);
}

/* Copies n floats at params (a buffer the caller allocated in the heap) into the
 * current training's adapters. 0 or an lpl_status (lab_last_error). */
LAB_EXPORT int lab_host_set_adapters(const float *params, double n)
{
    lpl_error_clear(&g.err);
    if (!g.run)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
    return (int)lpl_run_host_set_adapters(g.run, params, (int64_t)n, &g.err);
}

/* The device the hosted steps run on, a JSON object (results' environment.webgpu). */
LAB_EXPORT int lab_set_device_info(const char *json)
{
    lpl_error_clear(&g.err);
    if (!g.run)
        return (int)lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
    return (int)lpl_run_set_device_info(g.run, json, &g.err);
}

LAB_EXPORT const char *lab_events(void)
{
    if (!g.run)
        return keep(&g.str_events, strdup("[]"));
    return keep(&g.str_events, lpl_run_take_events(g.run));
}

LAB_EXPORT const char *lab_results_json(void)
{
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return keep(&g.str_results, NULL);
    }
    return keep(&g.str_results, lpl_run_results_json(g.run));
}

LAB_EXPORT const char *lab_results_csv(void)
{
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return keep(&g.str_csv, NULL);
    }
    return keep(&g.str_csv, lpl_run_results_csv(g.run));
}

/* Adapter of training i (its position in results.json "trainings"). */
static const lpl_lora *training_adapter(int training)
{
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no run (lab_ablate_start)");
        return NULL;
    }
    const lpl_lora *l = lpl_run_adapter(g.run, training);
    if (!l)
        lpl_fail(&g.err, LPL_ERR_INVALID, "training %d has no completed adapter", training);
    return l;
}

LAB_EXPORT int lab_adapter(int training)
{
    lpl_error_clear(&g.err);
    const lpl_lora *l = training_adapter(training);
    if (!l)
        return (int)g.err.code;
    void *out = NULL;
    size_t n = 0;
    lpl_status st = lpl_adapter_to_safetensors(l, &out, &n, &g.err);
    if (st)
        return (int)st;
    set_buffer(out, n);
    return 0;
}

LAB_EXPORT const char *lab_adapter_config(int training)
{
    lpl_error_clear(&g.err);
    const lpl_lora *l = training_adapter(training);
    if (!l)
        return keep(&g.str_adapter_cfg, NULL);
    return keep(&g.str_adapter_cfg, lpl_adapter_config_json_for(l, g.id.model_name));
}

/* ---------------------------------------------------------------- generate, memory */

static int json_int(const cJSON *o, const char *k, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : def;
}

LAB_EXPORT const char *lab_generate(const char *request_json)
{
    lpl_error_clear(&g.err);
    if (!g.model) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "no model loaded");
        return keep(&g.str_generate, NULL);
    }
    cJSON *req = cJSON_Parse(request_json ? request_json : "");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(req, "prompt");
    if (!cJSON_IsString(prompt)) {
        cJSON_Delete(req);
        lpl_fail(&g.err, LPL_ERR_INVALID, "generate: request needs a \"prompt\" string");
        return keep(&g.str_generate, NULL);
    }
    lpl_generate_options o;
    lpl_generate_options_default(&o);
    o.max_new_tokens = json_int(req, "max_new_tokens", o.max_new_tokens);
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(req, "repetition_penalty");
    if (cJSON_IsNumber(rp) && rp->valuedouble > 0)
        o.repetition_penalty = (float)rp->valuedouble;
    o.top_k = json_int(req, "top_k", 0);
    o.min_new_tokens = json_int(req, "min_new_tokens", 0);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    if (cJSON_IsNumber(t))
        o.temperature = (float)t->valuedouble;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(req, "seed");
    if (cJSON_IsNumber(seed) && seed->valuedouble >= 0)
        o.seed = (uint64_t)seed->valuedouble;
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(req, "raw");
    o.alpaca = !cJSON_IsTrue(raw);
    int training = json_int(req, "training", -1); /* whose adapter; -1: the base model */
    lpl_lora *lora = NULL;
    char *text = NULL, *out = NULL;
    if (training >= 0 && !(lora = (lpl_lora *)training_adapter(training)))
        goto done;
    if (lpl_generate(g.model, lora, g.tok, prompt->valuestring, &o, &text, &g.err))
        goto done;
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "text", text);
    out = cJSON_PrintUnformatted(res);
    cJSON_Delete(res);
done:
    free(text);
    cJSON_Delete(req);
    return keep(&g.str_generate, out);
}

/* {example (index into the eval set, default 0), trainings: [trainings whose adapters to
 * compare with the base]} -> lpl_token_view_json of that example (losses keyed by the
 * placement's name, NAME-seedS when a name repeats). */
LAB_EXPORT const char *lab_token_view(const char *request_json)
{
    lpl_error_clear(&g.err);
    if (!g.run) {
        lpl_fail(&g.err, LPL_ERR_INVALID, "token view: no run (run an ablation first)");
        return keep(&g.str_tokens, NULL);
    }
    cJSON *req = cJSON_Parse(request_json ? request_json : "");
    const cJSON *trainings = cJSON_GetObjectItemCaseSensitive(req, "trainings");
    int n = cJSON_GetArraySize(trainings), example = json_int(req, "example", 0);
    lpl_lora **ads = calloc((size_t)n + 1, sizeof *ads);
    char (*names)[96] = calloc((size_t)n + 1, sizeof *names);
    const char **name_ptrs = calloc((size_t)n + 1, sizeof *name_ptrs);
    char *out = NULL;
    if (!ads || !names || !name_ptrs) {
        lpl_fail(&g.err, LPL_ERR_NOMEM, "out of memory: token view");
        goto done;
    }
    for (int k = 0; k < n; k++) {
        int i = (int)cJSON_GetArrayItem(trainings, k)->valuedouble;
        if (!(ads[k] = (lpl_lora *)training_adapter(i)))
            goto done;
        snprintf(names[k], sizeof names[k], "%s", lpl_run_placement_name(g.run, i));
        for (int j = 0; j < k; j++)
            if (!strcmp(names[j], names[k]))
                snprintf(names[k], sizeof names[k], "%s-seed%llu", lpl_run_placement_name(g.run, i),
                         (unsigned long long)lpl_run_seed(g.run, i));
        name_ptrs[k] = names[k];
    }
    out = lpl_token_view_json(g.model, g.tok, ads, name_ptrs, n, lpl_run_eval_set(g.run), example, 1,
                              g.cfg.compute, &g.err);
done:
    free(ads);
    free(names);
    free(name_ptrs);
    cJSON_Delete(req);
    return keep(&g.str_tokens, out);
}

LAB_EXPORT const char *lab_memory(void)
{
    char buf[128];
    int64_t heap = 0;
#ifdef __EMSCRIPTEN__
    heap = (int64_t)mallinfo().uordblks;
#endif
    snprintf(buf, sizeof buf, "{\"heap_bytes\":%lld,\"peak_bytes\":%lld}", (long long)heap,
             (long long)lpl_peak_memory_bytes());
    return keep(&g.str_memory, strdup(buf));
}
