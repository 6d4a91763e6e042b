/* An ablation experiment: config (the experiment JSON of docs/WASM_API.md, with the
 * study's defaults), placement presets, parameter accounting, and a run object that
 * trains and evaluates one training (a placement at a seed) after another in small
 * slices (one training step or one eval pass per call), so that a CLI loop and a browser worker drive it
 * the same way. Results come out as the results.json / results.csv / steps.jsonl
 * documents (see results section below) and adapters in PEFT layout (adapter_io.h). */
#ifndef LPL_EXPERIMENT_H
#define LPL_EXPERIMENT_H

#include "lpl/core/common.h"
#include "lpl/core/files.h"
#include "lpl/core/platform.h"
#include "lpl/core/sha256.h"
#include "lpl/io/data.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/lora.h"
#include "lpl/model/optim.h"
#include "lpl/io/tokenizer.h"
#include "lpl/lab/eval.h"

LPL_BEGIN_DECLS

#define LPL_EXP_MAX_PLACEMENTS 64   /* placements, also after a grid is expanded (grid.h) */
#define LPL_EXP_MAX_VALUES 8        /* values of r or alpha in a grid */
/* (the path limit is LPL_PATH_MAX of lpl/core/files.h) */
#define LPL_EXP_MAX_SEEDS 100

/* ------------------------------------------------------------------ config */

#define LPL_BASE_DROPOUT_CONFIG (-1.0f)

/* One placement: a name and where adapters go. Only the placement fields of lora
 * are used (targets, regex, layers); dropout and seed come from the experiment so
 * that every placement trains with the same hyper-parameters, and so do rank and
 * alpha unless r / alpha are set (> 0), which a grid does for each of its arms. */
typedef struct {
    char name[64];
    lpl_lora_config lora;
    int r;          /* > 0: this placement's rank instead of the experiment's */
    float alpha;    /* > 0: this placement's alpha instead of the experiment's */
} lpl_placement;

typedef struct {
    char model[LPL_PATH_MAX];   /* CLI only: GGUF path ("" = bundled model) */
    char train[LPL_PATH_MAX];   /* CLI only: Alpaca JSON */
    char eval[LPL_PATH_MAX];    /* CLI only: "" = split the train file */
    char preset[64];                /* model shape for accounting without weights ("" = none) */
    int n_train, n_eval;            /* records used (first n of each file); <= 0 = all */
    int max_len;                    /* tokens per example; 0 (the default) = fit the model:
                                     * its context, at most LPL_MAX_LEN_DEFAULT */
    int response_only;              /* score only response tokens */
    int r;
    float alpha, dropout;
    int rslora;
    int epochs, batch_size;
    float lr;
    lpl_schedule schedule;
    int warmup_steps;
    float weight_decay, grad_clip;  /* grad_clip <= 0: no clipping */
    uint64_t seed;                  /* seed of the first training of each placement */
    int seeds;                      /* trainings per placement, with seeds seed, seed+1, ...: each
                                     * sets LoRA init, dropout masks and data order; base and data
                                     * stay the same (default 1) */
    int max_steps;                  /* > 0: optimizer steps per training (overrides epochs) */
    int shuffle;                    /* shuffle training order each epoch (same for every placement) */
    lpl_compute compute;            /* base products: int8 (default) or f32 (gpt2.h) */
    int device;                     /* LPL_DEVICE_CPU (default) or LPL_DEVICE_WEBGPU: where the
                                     * page's worker computes training steps (hosted steps);
                                     * the native CLI runs on the CPU only */
    float base_dropout;             /* base-model dropout in training: LPL_BASE_DROPOUT_CONFIG
                                     * (default) = the model's embd/attn/resid_pdrop, as the
                                     * study trained; a rate in [0, 1) sets all three */
    /* The grid (grid.h): several values of r / alpha, and layer bands, multiply the
     * placements. Empty lists and bands <= 1 mean no such dimension. */
    int n_r_values, r_values[LPL_EXP_MAX_VALUES];
    int n_alpha_values;
    float alpha_values[LPL_EXP_MAX_VALUES];
    int bands;                      /* >= 2: split each placement's layers into that many bands */
    int n_placements;
    lpl_placement placements[LPL_EXP_MAX_PLACEMENTS];
} lpl_experiment_config;

enum { LPL_DEVICE_CPU = 0, LPL_DEVICE_WEBGPU = 1 };

/* The study's defaults: model/data paths of the bundled model and data, 100 train /
 * 20 eval, max_len 0 (the model's context, at most 256), r 16, alpha 32, dropout 0.1, 3 epochs, batch 1, lr 2e-4,
 * cosine, no warmup, no weight decay, grad_clip 1.0, seed 42, shuffle on, base dropout
 * from the model's config, compute int8
 * (docs/BENCHMARKS.md "Compute int8": eval loss within 0.5% of f32), placements
 * baseline, ffn, attn. */
void lpl_experiment_default(lpl_experiment_config *c);

/* The max_len default's cap: a model with a longer context trains on 256 tokens. */
#define LPL_MAX_LEN_DEFAULT 256

/* The tokens per example a run uses: max_len, or for 0 the model's context n_ctx
 * capped at LPL_MAX_LEN_DEFAULT. */
int lpl_experiment_max_len(int max_len, int n_ctx);

/* The defaults for a config saved by an earlier version (a results.json being resumed):
 * lpl_experiment_default with the settings added since set as runs had them before
 * they existed (base dropout 0, compute f32), so that a saved config parsed over it is
 * the run that was made. */
void lpl_experiment_saved_default(lpl_experiment_config *c);

/* The --quick variant (issue 6): 8 train / 4 eval, 1 epoch, max_len 96; other
 * fields are left as they are. */
void lpl_experiment_quick(lpl_experiment_config *c);

/* Applies an experiment JSON document on top of c (fields absent from the JSON keep
 * their value). Unknown keys, wrong types and bad values give LPL_ERR_INVALID naming
 * the key (and the placement index); malformed JSON gives LPL_ERR_FORMAT. */
lpl_status lpl_experiment_parse_json(const char *json, lpl_experiment_config *c, lpl_error *err);

/* Same from a file; LPL_ERR_IO names the file. */
lpl_status lpl_experiment_load(const char *path, lpl_experiment_config *c, lpl_error *err);

/* Checks value ranges (r >= 1, epochs >= 1, lr > 0, 0 <= dropout < 1, ...) and, when
 * mc is non-NULL, that every placement selects at least one module of that model.
 * LPL_ERR_INVALID with the field or placement at fault. */
lpl_status lpl_experiment_check(const lpl_experiment_config *c, const lpl_gpt2_config *mc,
                                lpl_error *err);

/* The config as a JSON object (malloc'd string, the same keys the parser reads), or NULL. */
char *lpl_experiment_to_json(const lpl_experiment_config *c);

/* The base-model dropout rates a run of c trains model mc with, and where they come
 * from: "set" (c->base_dropout), "model" (the model file's rates) or "assumed" (the
 * file records none, so GPT-2's 0.1; model_io.h). */
void lpl_experiment_base_dropout(const lpl_experiment_config *c, const lpl_gpt2_config *mc, lpl_gpt2_dropout *out,
                                 const char **source);

/* The same for a bare base-dropout setting (a rate, or LPL_BASE_DROPOUT_CONFIG for
 * the model's own rates), as `loralab bench --base-dropout` takes it. */
void lpl_base_dropout_rates(float setting, const lpl_gpt2_config *mc, lpl_gpt2_dropout *out, const char **source);

/* Parses a base-dropout setting: "config" or a number in [0, 1). LPL_ERR_INVALID
 * says what is wrong (the caller names the flag or key). */
lpl_status lpl_base_dropout_parse(const char *s, float *out, lpl_error *err);

/* Preset placement by name: baseline, ffn, attn, all-linear, attn-exact, mlp-exact
 * (GPT-2 module names); mlp and qv exist only in the Llama family's names.
 * LPL_ERR_INVALID lists the known names. */
lpl_status lpl_placement_preset(const char *name, lpl_placement *p, lpl_error *err);
/* When p holds a preset's targets and the model mc is of the other family, the same
 * preset in mc's module names: baseline, ffn, attn and all-linear mean every linear
 * module, the MLP, attention, every linear module in both. Other placements are left
 * as they are (a GPT-2 name then matches nothing, and selection says so). */
void lpl_placement_retarget(lpl_placement *p, const lpl_gpt2_config *mc);
/* The presets of one family (llama != 0: the Llama family's) by index. */
int lpl_placement_preset_count_arch(int llama);
const char *lpl_placement_preset_name_arch(int llama, int i);
const char *lpl_placement_preset_description_arch(int llama, int i);
/* The presets by index (0 .. count-1; NULL past the end): name and a one-line
 * description of what it adapts. */
int lpl_placement_preset_count(void);
const char *lpl_placement_preset_name(int i);
const char *lpl_placement_preset_description(int i);

/* Parses a command-line placement: a preset name, or "NAME=T1,T2[@LAYERS]" with
 * PEFT list targets and optional layers "0-3,7", or "NAME=re:REGEX" (whole-name
 * regex). LPL_ERR_INVALID explains what is wrong with spec. */
lpl_status lpl_placement_parse(const char *spec, lpl_placement *p, lpl_error *err);

/* The LoRA config placement i trains with (experiment hyper-parameters + placement). */
void lpl_experiment_lora_config(const lpl_experiment_config *c, int i, lpl_lora_config *out);
/* The same for model mc: a preset placement takes mc's module names (lpl_placement_retarget). */
void lpl_experiment_lora_config_for(const lpl_experiment_config *c, int i, const lpl_gpt2_config *mc,
                                    lpl_lora_config *out);

/* ------------------------------------------------------------------ accounting */

typedef struct {
    char name[64];
    int64_t trainable;         /* adapter parameters */
    int64_t base;              /* base model parameters (HF count) */
    int64_t total;             /* base + trainable, as PEFT prints "all params" */
    double percent;            /* 100 * trainable / total */
    double reduction_pct;      /* 100 * (1 - trainable / base): saved vs full fine-tuning */
    double reduction_factor;   /* base / trainable */
    double vs_baseline_pct;    /* 100 * (trainable / trainable of placement 0 - 1) */
    int n_modules;
    char modules[256];         /* "24×attn.c_attn, 24×attn.c_proj, 24×mlp.c_proj" */
} lpl_placement_count;

/* Accounting of placement i of c for model shape mc (no weights needed). Placement 0
 * is the reference for vs_baseline_pct unless a placement is named "baseline".
 * If selected is non-NULL it receives the n_layer * 4 selection (lora.h). */
lpl_status lpl_experiment_count(const lpl_experiment_config *c, const lpl_gpt2_config *mc, int i,
                                lpl_placement_count *out, uint8_t *selected, lpl_error *err);

/* JSON array of every placement's accounting, as lab_count returns it:
 * [{name, target_modules, layers, trainable, base, total, percent, reduction_pct,
 *   reduction_factor, vs_baseline_pct, modules, selected: [[layer, "attn.c_attn"], ...]}].
 * malloc'd; NULL with err set on an invalid placement. */
char *lpl_experiment_count_json(const lpl_experiment_config *c, const lpl_gpt2_config *mc,
                                lpl_error *err);

/* ------------------------------------------------------------------ run */

/* Where the model and data came from, recorded in results.json. Empty strings are
 * written as null. */
typedef struct {
    char model_path[LPL_PATH_MAX];
    char model_name[128];
    char model_sha256[65];
    int64_t model_bytes;
    char matrix_type[16];                 /* "q8_0", "f32", ... */
    char train_path[LPL_PATH_MAX];
    char train_sha256[65];
    char eval_path[LPL_PATH_MAX];
    char eval_sha256[65];
} lpl_run_identity;

typedef enum {
    LPL_TRAINING_PENDING = 0,
    LPL_TRAINING_RUNNING = 1,
    LPL_TRAINING_DONE = 2,
    LPL_TRAINING_FAILED = 3
} lpl_training_status;

/* What the latest unit of work did (for a progress line). */
typedef struct {
    int training;             /* index of the training (placement x seed), -1 before the first */
    char name[64];            /* its placement's name */
    int epoch, epochs;        /* 1-based epoch */
    int step, steps;          /* optimizer steps done / total in this training */
    int64_t global_step, global_steps;  /* over all trainings */
    float loss, lr;           /* last step */
    double tokens_per_s;      /* training tokens/s of this training so far */
    double elapsed_s;         /* since lpl_run_new */
    double eta_s;             /* estimate for the whole run, < 0 unknown */
    int evaluating;           /* 1 if the last unit was an eval pass */
} lpl_run_progress;

/* Table row of a training (from its result object, so the table, results.json and
 * results.csv always agree). */
typedef struct {
    char name[64];
    uint64_t seed;
    lpl_training_status status;
    char message[256];             /* failure reason */
    char modules[256];
    int64_t trainable, total;
    double percent, reduction_pct, reduction_factor, vs_baseline_pct;
    double eval_loss_before, eval_loss, perplexity, mean_sample_perplexity;
    double train_seconds, tokens_per_s;
    int64_t peak_memory_bytes;       /* the process's high-water mark when the training ended */
    int64_t placement_memory_bytes;  /* the training's own peak (docs/RESULTS.md) */
    double trainer_eval_loss;        /* after training */
    double drop_share_template, drop_share_response; /* shares of the eval NLL drop */
} lpl_training_summary;

typedef struct lpl_run lpl_run;

/* Prepares a run: checks the config against the model, takes the first n_train /
 * n_eval records (eval NULL or empty: the train set is split, n_train first then
 * n_eval), tokenizes them, allocates state. model, tok and the sets are borrowed and
 * must outlive the run; id may be NULL. NULL with err set on a bad config or data. */
lpl_run *lpl_run_new(const lpl_experiment_config *c, const lpl_gpt2_model *model,
                     const lpl_tokenizer *tok, const lpl_alpaca_set *train,
                     const lpl_alpaca_set *eval, const lpl_run_identity *id, lpl_error *err);
/* Frees the run, its adapters and events; NULL is a no-op. */
void lpl_run_free(lpl_run *r);

/* Starts training i from saved adapter weights instead of PEFT's initialisation:
 * params/n are the params of an lpl_lora attached with the same placement and rank
 * (e.g. one from lpl_adapter_load). n must match the placement's parameter count.
 * Call before the training starts. */
lpl_status lpl_run_set_init(lpl_run *r, int i, const float *params, int64_t n, lpl_error *err);

/* Trains only training i (placement x seed, see lpl_run_n_trainings) and leaves the
 * others pending: one unit of a grid (plan.h), whose result object is then the one a
 * run of every training gives, accounting and all. Call before the first step.
 * LPL_ERR_INVALID when i is out of range or the run has started. */
lpl_status lpl_run_only(lpl_run *r, int i, lpl_error *err);

/* Resumes: takes every training with status "done" or "failed" from a previous
 * results.json, matched by placement name and seed (same config apart from "seeds",
 * same model hash and data hashes where recorded, else LPL_ERR_INVALID saying what
 * differs); those trainings are skipped, so a run can also be extended to more seeds. */
lpl_status lpl_run_resume(lpl_run *r, const char *results_json, lpl_error *err);

/* One unit of work (one optimizer step, or one eval pass). Returns 1 if more remains,
 * 0 when the run is finished (or cancelled), -1 on a fatal error (err set; out of
 * memory for an event is one: no event, and so no adapter, is dropped silently). A
 * non-finite loss or gradient fails only the current training (event
 * "training_failed" with the step, placement and likely cause) and returns 1. */
int lpl_run_step(lpl_run *r, lpl_error *err);

/* Asks the run to stop before its next unit; completed trainings are kept, the
 * one in progress is dropped (it stays pending, so resume redoes it). Safe to call
 * from a signal handler or another thread (sets a C11 atomic flag). */
void lpl_run_cancel(lpl_run *r);

/* ---- Hosted training steps (docs/WASM_API.md "Hosted training"): a host (the
 * worker's WebGPU engine, or a test's CPU stand-in) computes each optimizer step
 * (forward, backward, clipping, AdamW) while the run keeps the data order, schedule,
 * dropout keys, evals (on the CPU with the adapters the host writes back, or on the
 * host too: lpl_run_host_evals), results, aggregates, seeds and resume. */

#define LPL_HOST_MAX_BATCH 64

/* One step for the host. Pointers stay valid until the next lpl_run_host_* call. */
typedef struct {
    int training;            /* index of the training (placement x seed) */
    uint64_t seed;           /* the training's seed (base dropout stream: lpl_gpt2_state_set_dropout) */
    int first_step;          /* 1: a new training starts: (re)load lora->params and zero the optimizer */
    int step;                /* optimizer steps already taken in this training */
    int total_steps;
    float lr;                /* the schedule's rate for this step */
    double grad_clip;        /* clip the global norm to this (0: none) */
    lpl_adamw_config adamw;  /* betas, eps, weight decay */
    lpl_compute compute;     /* the CPU's compute mode (the reference the host matches) */
    lpl_gpt2_dropout base_dropout; /* rates of the base-model dropout */
    const lpl_lora *lora;    /* layout, config (rank, scaling, LoRA dropout) and initial params */
    int n_examples;          /* batch size of this step (the last of an epoch may be short) */
    const lpl_example *ex[LPL_HOST_MAX_BATCH];
    /* weight of example k's mean-loss gradient in the batch gradient (its share of the
     * batch's scored tokens); with one example the host takes its gradient as is */
    float weight[LPL_HOST_MAX_BATCH];
    uint64_t base_key[LPL_HOST_MAX_BATCH]; /* lpl_gpt2_state base-dropout key of example k's forward */
    uint64_t lora_key[LPL_HOST_MAX_BATCH]; /* LoRA dropout key (lora->rng_state) of example k's forward */
    /* An eval pass (lpl_run_host_next returned 2; hosted evals only): forward only, no
     * dropout, over every example of eval_set in order. training is -1 for the base
     * model's eval (lora NULL: no adapters); else the host evaluates with the training's
     * current adapters (its own after a step; lora->params before the first step). */
    int eval_epoch;          /* 0: before training; e: after epoch e */
    const lpl_example_set *eval_set;
    int64_t eval_scored;     /* scored positions over the set: the length lpl_run_host_record_eval takes */
} lpl_run_host_step;

/* Runs the run's own units (evals, starts, ends of trainings) until a training step is
 * due, and describes it in *s: returns 1; with hosted evals, 2 when an eval pass is due
 * (described in *s, recorded with lpl_run_host_record_eval). Returns 0 when the run is finished or
 * cancelled, -1 on a fatal error (err set), as lpl_run_step. LPL_ERR_INVALID (-1) when
 * the host owes the adapters (lpl_run_host_record returned 1 and no
 * lpl_run_host_set_adapters followed), or a batch exceeds LPL_HOST_MAX_BATCH. */
int lpl_run_host_next(lpl_run *r, lpl_run_host_step *s, lpl_error *err);

/* Records the step lpl_run_host_next described: loss is the batch's mean loss over its
 * scored tokens, grad_norm the global norm before clipping, tokens the batch's tokens.
 * The run's finite and divergence guards apply (a failure fails the training, with the
 * event a CPU step gives). Returns 1 when the run now needs the adapters (an eval or
 * the end of the training is next: call lpl_run_host_set_adapters), 0 when not, -1
 * when no step was pending (err set). */
int lpl_run_host_record(lpl_run *r, float loss, double grad_norm, int tokens, lpl_error *err);

/* Hosted evals (off by default): on, lpl_run_host_next hands out the eval passes too
 * (returns 2), so that a host that keeps the adapters (the GPU) evaluates them where
 * they are and writes them back only at the end of each training: lpl_run_host_record
 * then never asks for them, lpl_run_host_record_eval does after the last eval. Call
 * before the first lpl_run_host_next. */
void lpl_run_host_evals(lpl_run *r, int on);

/* Records the eval pass lpl_run_host_next described: token_nll holds, for each example
 * of eval_set in order, the NLL of each scored position in position order (n =
 * eval_scored values). The run reduces them exactly as a CPU eval
 * (lpl_eval_add: eval loss, perplexity, per-sample and per-role stats, HF Trainer's
 * loss); a non-finite loss fails the training as a CPU eval does. Returns 1 when the
 * run now needs the adapters (the training's end is next: lpl_run_host_set_adapters),
 * 0 when not, -1 when no eval was pending or n differs (err set). */
int lpl_run_host_record_eval(lpl_run *r, const float *token_nll, int64_t n, lpl_error *err);

/* Records what the hosted steps ran on (a JSON object: the WebGPU adapter's vendor,
 * architecture, the limits requested...): results.json carries it as
 * environment.webgpu. LPL_ERR_INVALID when json is not an object. */
lpl_status lpl_run_set_device_info(lpl_run *r, const char *json, lpl_error *err);

/* Writes the host's adapters (n params in lora->params' layout) into the current
 * training. LPL_ERR_INVALID when no training runs or n differs. */
lpl_status lpl_run_host_set_adapters(lpl_run *r, const float *params, int64_t n, lpl_error *err);
/* 1 once lpl_run_cancel was called; 1 once the run is over (finished or cancelled). */
int lpl_run_cancelled(const lpl_run *r);
int lpl_run_finished(const lpl_run *r);

/* Events since the last call as a JSON array (docs/WASM_API.md), malloc'd. */
char *lpl_run_take_events(lpl_run *r);

/* What the latest unit did, for a progress line (owned by r, updated by each unit). */
const lpl_run_progress *lpl_run_get_progress(const lpl_run *r);

/* Trainings: a run trains every placement once per seed (cfg.seeds), seed-major, so
 * the index i of the functions below is a training (placement x seed), not a
 * placement; with one seed the two are the same. Number of trainings. */
int lpl_run_n_trainings(const lpl_run *r);
/* Seeds per placement (cfg.seeds). */
int lpl_run_n_seeds(const lpl_run *r);
/* Seed of training i (0 if out of range). */
uint64_t lpl_run_seed(const lpl_run *r, int i);
/* Index in cfg.placements of the placement training i trains (-1 if out of range). */
int lpl_run_placement_index(const lpl_run *r, int i);
/* Folder of training i's adapter, relative to the output folder: the placement's name,
 * or NAME/seed-S with several seeds. */
void lpl_run_adapter_dir(const lpl_run *r, int i, char *buf, size_t size);
/* Name of the placement training i trains ("" if out of range). */
const char *lpl_run_placement_name(const lpl_run *r, int i);
/* Number of trainings finished in this run or taken from resume (done or failed). */
int lpl_run_n_completed(const lpl_run *r);
/* Status of training i (pending when out of range). */
lpl_training_status lpl_run_training_status(const lpl_run *r, int i);
/* Row of the table for training i (pending ones have only name and accounting). */
lpl_status lpl_run_summary(const lpl_run *r, int i, lpl_training_summary *out, lpl_error *err);
/* "selected" modules of training i's placement (lpl_lora_describe form) */
const char *lpl_run_modules(const lpl_run *r, int i);

/* The tokenized eval examples the run evaluates on. */
const lpl_example_set *lpl_run_eval_set(const lpl_run *r);

/* Adapter of a training completed in this run (NULL otherwise, e.g. resumed ones). */
const lpl_lora *lpl_run_adapter(const lpl_run *r, int i);
/* Its LoRA config (placement + hyper-parameters). */
const lpl_lora_config *lpl_run_lora_config(const lpl_run *r, int i);

/* ------------------------------------------------------------------ results */

/* The results document (results.json), malloc'd. */
char *lpl_run_results_json(const lpl_run *r);
/* The summary table as CSV (results.csv), malloc'd. */
char *lpl_run_results_csv(const lpl_run *r);
/* Per-step records, one JSON object per line (steps.jsonl), malloc'd. */
char *lpl_run_steps_jsonl(const lpl_run *r);
/* One training's result object (as in results.json "trainings"), malloc'd, or NULL
 * if it is pending. */
char *lpl_run_training_json(const lpl_run *r, int i);

/* A results document (results.json text) with its "aggregates" recomputed from its
 * "trainings" (one object per training): how a grid's collected units and a run in
 * one process get the same aggregates. malloc'd; NULL with err set on a document
 * that is not JSON or has no "trainings" list (an older file's "placements" list is read
 * as its trainings). */
char *lpl_results_aggregate(const char *results_json, lpl_error *err);

/* results.csv and steps.jsonl made from a results document (results.json text) rather
 * than from a run, e.g. a collected grid's: the same rows and lines
 * lpl_run_results_csv / lpl_run_steps_jsonl write for the same trainings. malloc'd;
 * NULL with err set on a document that is not JSON or has no "trainings" list. */
char *lpl_results_csv(const char *results_json, lpl_error *err);
char *lpl_results_steps_jsonl(const char *results_json, lpl_error *err);

/* Writes results.json and results.csv into dir (created if missing), each via a
 * temporary file and rename (steps.jsonl: lpl_run_sync_steps). LPL_ERR_IO names the
 * file. */
lpl_status lpl_run_write_results(const lpl_run *r, const char *dir, lpl_error *err);

/* Brings dir/steps.jsonl up to date with the run (lpl_run_steps_jsonl). *known is
 * what the file is known to hold: NULL the first time, then the file is read and a
 * torn last line (no newline, or not JSON: an append cut short by a crash) is dropped
 * and its size put in *torn (may be NULL). When the file's lines begin the wanted
 * text, only the rest is appended (lpl_append_lines); otherwise (a torn line, or
 * lines of a training that will run again) the file is rewritten atomically. On
 * success *known is the new content (free it); on failure NULL, and LPL_ERR_IO
 * names the file. */
lpl_status lpl_run_sync_steps(const lpl_run *r, const char *dir, char **known, size_t *torn, lpl_error *err);

LPL_END_DECLS

#endif
