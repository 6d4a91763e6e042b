/* Private to experiment.c, experiment_run.c and results.c: the run's state and the
 * cJSON builders they share. */
#ifndef LPL_EXPERIMENT_INTERNAL_H
#define LPL_EXPERIMENT_INTERNAL_H

#include <cJSON.h>
#include <stdatomic.h>

#include "lpl/core/floats.h"
#include "lpl/lab/experiment.h"

cJSON *lpl_placement_to_cjson(const lpl_placement *p);
cJSON *lpl_experiment_to_cjson(const lpl_experiment_config *c);
cJSON *lpl_selection_to_cjson(const uint8_t *sel, const lpl_gpt2_config *mc);
void lpl_count_add_to_cjson(cJSON *o, const lpl_placement_count *cnt);

/* One eval pass. */
typedef struct {
    int epoch;                  /* 0 = before training */
    int step;                   /* optimizer steps done when it ran */
    double nll_sum;
    int64_t n_tokens;
    int n_samples;
    double eval_loss, perplexity, mean_sample_perplexity;
    double trainer_eval_loss;
    double role_nll[LPL_N_ROLES];
    int64_t role_tokens[LPL_N_ROLES];
    int hosted;                 /* computed by the host (lpl_run_host_evals), not the CPU */
} lpl_eval_point;

/* One training: placement `placement` of the config with seed `seed`. The run holds
 * n_placements x seeds of them, seed-major (every placement at the first seed, then
 * every placement at the next), so early results already compare placements. */
typedef struct {
    int placement;               /* index into cfg.placements */
    int seed_index;              /* 0 .. cfg.seeds - 1 */
    uint64_t seed;               /* cfg.seed + seed_index */
    int skip;                    /* not trained in this run (lpl_run_only: a grid unit runs one) */
    lpl_training_status status;
    char message[256];
    lpl_lora_config lcfg;
    lpl_placement_count count;
    uint8_t *selected;           /* n_layer * 4 */
    lpl_lora *lora;              /* while running and after completion */
    float *init;                 /* optional starting weights */
    int64_t n_init;
    /* curves, one entry per optimizer step */
    float *loss, *lr, *grad_norm;
    int *tokens;
    int n_steps;
    lpl_eval_point *evals;
    int n_evals;
    double train_seconds;
    int64_t train_tokens;
    int64_t peak_memory;         /* process high-water mark when it ended */
    int64_t heap_start;          /* heap in use before its adapters were attached */
    int64_t heap_peak;           /* highest heap in use seen after its units */
    int64_t training_memory;     /* state bytes + heap_peak - heap_start */
    lpl_gpt2_timings timings;
    cJSON *result;               /* result object once done/failed */
} lpl_training;

typedef enum {
    LPL_PHASE_BASE_EVAL,   /* eval of the base model, shared as every fresh training's "before" */
    LPL_PHASE_START,       /* attach adapters of the current training */
    LPL_PHASE_EVAL_BEFORE, /* only when the training starts from saved weights */
    LPL_PHASE_TRAIN,
    LPL_PHASE_EVAL_EPOCH,
    LPL_PHASE_FINISH,
    LPL_PHASE_DONE
} lpl_run_phase;

struct lpl_run {
    lpl_experiment_config cfg;
    const lpl_gpt2_model *model;
    const lpl_tokenizer *tok;
    lpl_run_identity id;
    lpl_example_set train, eval;
    int train_records, eval_records;  /* records in the files */
    int train_skipped;                /* examples without a scored token */
    int *train_idx;                   /* usable training examples */
    int n_train_ex;
    lpl_gpt2_state *state;
    int n;                            /* trainings: cfg.n_placements x cfg.seeds */
    lpl_training *tr;                 /* the n trainings, seed-major */
    int steps_per_epoch, total_steps, epochs;
    /* cursor */
    lpl_run_phase phase;
    int cur, epoch, step, pos;
    int *perm;
    lpl_adamw opt;
    int opt_ready;
    float *accum;
    /* hosted steps (lpl_run_host_*) */
    int host_pending;               /* a step (1) or an eval (2) was handed out and not recorded */
    int host_evals;                 /* lpl_run_host_evals: the host runs the eval passes */
    int n_host_evals, n_cpu_evals;  /* eval passes of this session, by where they ran */
    int64_t host_eval_scored;       /* the pending eval's scored positions */
    int host_eval_phase, host_eval_epoch; /* the pending eval's phase and epoch */
    int host_owes;                  /* adapters changed on the host and are not written back */
    int host_begin, host_end;
    double host_t0;
    cJSON *device_info;             /* lpl_run_set_device_info: results' environment.webgpu */
    lpl_eval_point base_eval;
    int have_base_eval;
    atomic_int cancel;              /* set by lpl_run_cancel: from a signal handler or another thread */
    int events_lost;                /* push_event ran out of memory: the run fails at its next check */
    int finished;
    /* timing */
    double t0, t_train_units, t_eval_units;
    int64_t n_train_units, n_eval_units;
    lpl_run_progress prog;
    /* events: JSON texts of objects */
    char **events;
    int n_events, cap_events;
};


/* Name of the placement training i belongs to. */
const char *lpl_run_entry_name(const lpl_run *r, int i);
/* The result object of training i (built from its run state). */
cJSON *lpl_run_build_result(const lpl_run *r, int i);
/* The "aggregates" object of a results document from its "trainings" list (one
 * object per training): per placement and metric mean, std, ci95 and values over
 * seeds, paired differences against the baseline matched by seed, and a verdict. */
cJSON *lpl_aggregates_cjson(const cJSON *trainings);
/* The environment object (build, threads, SIMD). */
cJSON *lpl_environment_cjson(void);

#endif
