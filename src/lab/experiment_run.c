/* The ablation run: for each training (a placement at a seed), fresh adapters on the same frozen
 * base, eval before training, AdamW with schedule, clipping and gradient accumulation,
 * eval after each epoch. Work is cut into units (one optimizer step or one eval pass)
 * so that a CLI loop and a browser worker can both drive it and cancel between units. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "experiment_internal.h"
#include "lpl/lab/document.h"
#include "lpl/core/rng.h"

/* ---------------------------------------------------------------- events */

/* Queues an event. Out of memory is remembered, not ignored: the worker ships an
 * adapter only on its training's end event, so a lost event fails the run (lpl_run_step). */
static void push_event(lpl_run *r, cJSON *ev)
{
    char *s = ev ? cJSON_PrintUnformatted(ev) : NULL;
    cJSON_Delete(ev);
    if (!s) {
        r->events_lost = 1;
        return;
    }
    if (r->n_events == r->cap_events) {
        int cap = r->cap_events ? 2 * r->cap_events : 64;
        char **e = realloc(r->events, (size_t)cap * sizeof *e);
        if (!e) {
            free(s);
            r->events_lost = 1;
            return;
        }
        r->events = e;
        r->cap_events = cap;
    }
    r->events[r->n_events++] = s;
}

static cJSON *new_event(const char *type, const lpl_run *r, int with_training)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "type", type);
    if (with_training) {
        const lpl_training *p = &r->tr[r->cur];
        cJSON_AddNumberToObject(ev, "training", r->cur);
        cJSON_AddStringToObject(ev, "placement", r->cfg.placements[p->placement].name);
        cJSON_AddNumberToObject(ev, "placement_index", p->placement);
        cJSON_AddNumberToObject(ev, "seed", (double)p->seed);
    }
    return ev;
}

char *lpl_run_take_events(lpl_run *r)
{
    size_t len = 3;
    for (int i = 0; i < r->n_events; i++)
        len += strlen(r->events[i]) + 1;
    char *out = malloc(len);
    if (!out)
        return NULL;
    char *p = out;
    *p++ = '[';
    for (int i = 0; i < r->n_events; i++) {
        if (i)
            *p++ = ',';
        size_t n = strlen(r->events[i]);
        memcpy(p, r->events[i], n);
        p += n;
        free(r->events[i]);
    }
    *p++ = ']';
    *p = '\0';
    r->n_events = 0;
    return out;
}

/* ---------------------------------------------------------------- setup */

static lpl_status build_examples(const lpl_run *r, const lpl_alpaca_set *src, int first, int count,
                                 const char *what, lpl_example_set *out, lpl_error *err)
{
    lpl_alpaca_set view = {src->records + first, count};
    lpl_error e2;
    lpl_error_clear(&e2);
    lpl_status st = lpl_examples_build(&view, r->tok, r->cfg.max_len, r->cfg.response_only, out, &e2);
    if (st)
        return lpl_fail(err, st, "%s data: %s", what, e2.msg);
    return LPL_OK;
}

static int scored_tokens(const lpl_example *e)
{
    int n = 0;
    for (int t = 0; t < e->T; t++)
        n += e->mask ? e->mask[t] != 0 : 1;
    return n;
}

static lpl_status prepare_data(lpl_run *r, const lpl_alpaca_set *train, const lpl_alpaca_set *eval,
                               lpl_error *err)
{
    const lpl_experiment_config *c = &r->cfg;
    int split = !eval || eval->n == 0;
    r->train_records = train->n;
    r->eval_records = split ? train->n : eval->n;
    int n_train = c->n_train > 0 ? c->n_train : (split ? train->n - (c->n_eval > 0 ? c->n_eval : 0) : train->n);
    if (n_train < 1 || n_train > train->n)
        return lpl_fail(err, LPL_ERR_INVALID, "n_train is %d but the training data has %d records",
                        c->n_train, train->n);
    const lpl_alpaca_set *es = split ? train : eval;
    int first_eval = split ? n_train : 0;
    int avail = es->n - first_eval;
    int n_eval = c->n_eval > 0 ? c->n_eval : avail;
    if ((n_eval < 1 || n_eval > avail) && split)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "n_eval is %d but only %d records are left after the %d training records (no eval file)",
                        c->n_eval, avail, n_train);
    if (n_eval < 1 || n_eval > avail)
        return lpl_fail(err, LPL_ERR_INVALID, "n_eval is %d but the eval data has %d records", c->n_eval, avail);
    lpl_status st = build_examples(r, train, 0, n_train, "training", &r->train, err);
    if (!st)
        st = build_examples(r, es, first_eval, n_eval, "eval", &r->eval, err);
    if (st)
        return st;
    r->train_idx = lpl_malloc((size_t)n_train * sizeof(int), "training index", err);
    r->perm = lpl_malloc((size_t)n_train * sizeof(int), "training order", err);
    if (!r->train_idx || !r->perm)
        return LPL_ERR_NOMEM;
    for (int i = 0; i < r->train.n; i++) {
        if (scored_tokens(&r->train.ex[i]) > 0)
            r->train_idx[r->n_train_ex++] = i;
        else
            r->train_skipped++;
    }
    if (r->n_train_ex == 0)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "no training example has a scored token (max_len %d too short for response_only?)",
                        c->max_len);
    return LPL_OK;
}

static void plan_steps(lpl_run *r)
{
    const lpl_experiment_config *c = &r->cfg;
    r->steps_per_epoch = (r->n_train_ex + c->batch_size - 1) / c->batch_size;
    if (c->max_steps > 0) {
        r->total_steps = c->max_steps;
        r->epochs = (c->max_steps + r->steps_per_epoch - 1) / r->steps_per_epoch;
    } else {
        r->total_steps = c->epochs * r->steps_per_epoch;
        r->epochs = c->epochs;
    }
}

static lpl_status prepare_trainings(lpl_run *r, lpl_error *err)
{
    const lpl_gpt2_config *mc = &r->model->cfg;
    size_t nsel = (size_t)mc->n_layer * LPL_N_SITES;
    /* preset placements take the loaded model's module names, in the results too */
    for (int i = 0; i < r->cfg.n_placements; i++)
        lpl_placement_retarget(&r->cfg.placements[i], mc);
    for (int i = 0; i < r->n; i++) {
        lpl_training *p = &r->tr[i];
        p->placement = i % r->cfg.n_placements;
        p->seed_index = i / r->cfg.n_placements;
        p->seed = r->cfg.seed + (uint64_t)p->seed_index;
        lpl_experiment_lora_config_for(&r->cfg, p->placement, mc, &p->lcfg);
        p->lcfg.seed = p->seed;
        p->selected = lpl_calloc(nsel, 1, "placement selection", err);
        p->loss = lpl_calloc((size_t)r->total_steps, sizeof(float), "loss curve", err);
        p->lr = lpl_calloc((size_t)r->total_steps, sizeof(float), "lr curve", err);
        p->grad_norm = lpl_calloc((size_t)r->total_steps, sizeof(float), "grad-norm curve", err);
        p->tokens = lpl_calloc((size_t)r->total_steps, sizeof(int), "token counts", err);
        p->evals = lpl_calloc((size_t)r->epochs + 2, sizeof(lpl_eval_point), "eval points", err);
        if (!p->selected || !p->loss || !p->lr || !p->grad_norm || !p->tokens || !p->evals)
            return LPL_ERR_NOMEM;
        lpl_status st = lpl_experiment_count(&r->cfg, mc, p->placement, &p->count, p->selected, err);
        if (st)
            return st;
    }
    return LPL_OK;
}

lpl_run *lpl_run_new(const lpl_experiment_config *c, const lpl_gpt2_model *model,
                     const lpl_tokenizer *tok, const lpl_alpaca_set *train,
                     const lpl_alpaca_set *eval, const lpl_run_identity *id, lpl_error *err)
{
    lpl_status st = lpl_experiment_check(c, &model->cfg, err);
    if (st)
        return NULL;
    if (!train || train->n == 0) {
        lpl_fail(err, LPL_ERR_INVALID, "no training data");
        return NULL;
    }
    lpl_run *r = lpl_calloc(1, sizeof *r, "run", err);
    if (!r)
        return NULL;
    r->cfg = *c;
    r->cfg.max_len = lpl_experiment_max_len(c->max_len, model->cfg.n_ctx); /* results record the number */
    r->model = model;
    r->tok = tok;
    if (id)
        r->id = *id;
    r->n = c->n_placements * c->seeds;
    r->tr = lpl_calloc((size_t)r->n, sizeof *r->tr, "trainings", err);
    if (!r->tr) {
        free(r);
        return NULL;
    }
    r->t0 = lpl_now_seconds();
    r->prog.training = -1;
    r->prog.eta_s = -1;
    st = prepare_data(r, train, eval, err);
    if (!st) {
        plan_steps(r);
        st = prepare_trainings(r, err);
    }
    if (!st) {
        int max_T = 1;
        for (int i = 0; i < r->train.n; i++)
            max_T = r->train.ex[i].T > max_T ? r->train.ex[i].T : max_T;
        for (int i = 0; i < r->eval.n; i++)
            max_T = r->eval.ex[i].T > max_T ? r->eval.ex[i].T : max_T;
        r->state = lpl_gpt2_state_new(model, max_T, 0, err);
        if (!r->state)
            st = err ? err->code : LPL_ERR_NOMEM;
        else
            lpl_gpt2_state_set_compute(r->state, r->cfg.compute);
    }
    if (st) {
        lpl_run_free(r);
        return NULL;
    }
    r->phase = LPL_PHASE_BASE_EVAL;
    cJSON *ev = new_event("start", r, 0);
    cJSON *names = cJSON_AddArrayToObject(ev, "placements");
    for (int i = 0; i < c->n_placements; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(c->placements[i].name));
    cJSON_AddNumberToObject(ev, "seeds", c->seeds);
    cJSON_AddNumberToObject(ev, "total_steps", (double)r->total_steps * r->n);
    cJSON_AddNumberToObject(ev, "steps_per_training", r->total_steps);
    cJSON_AddNumberToObject(ev, "epochs", r->epochs);
    push_event(r, ev);
    return r;
}

static void training_release(lpl_training *p, int keep_adapter)
{
    if (!keep_adapter) {
        lpl_lora_free(p->lora);
        p->lora = NULL;
    }
}

void lpl_run_free(lpl_run *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        lpl_training *p = &r->tr[i];
        lpl_lora_free(p->lora);
        free(p->selected);
        free(p->init);
        free(p->loss);
        free(p->lr);
        free(p->grad_norm);
        free(p->tokens);
        free(p->evals);
        cJSON_Delete(p->result);
    }
    free(r->tr);
    if (r->opt_ready)
        lpl_adamw_free(&r->opt);
    free(r->accum);
    cJSON_Delete(r->device_info);
    free(r->perm);
    free(r->train_idx);
    lpl_examples_free(&r->train);
    lpl_examples_free(&r->eval);
    lpl_gpt2_state_free(r->state);
    for (int i = 0; i < r->n_events; i++)
        free(r->events[i]);
    free(r->events);
    free(r);
}

lpl_status lpl_run_set_init(lpl_run *r, int i, const float *params, int64_t n, lpl_error *err)
{
    if (i < 0 || i >= r->n)
        return lpl_fail(err, LPL_ERR_INVALID, "training index %d out of range", i);
    if (n != r->tr[i].count.trainable)
        return lpl_fail(err, LPL_ERR_INVALID,
                        "initial adapter has %lld parameters but placement '%s' needs %lld (different r, modules or layers)",
                        (long long)n, lpl_run_entry_name(r, i), (long long)r->tr[i].count.trainable);
    if (r->tr[i].status != LPL_TRAINING_PENDING || (r->cur == i && r->phase > LPL_PHASE_START))
        return lpl_fail(err, LPL_ERR_INVALID, "the training of '%s' has already started", lpl_run_entry_name(r, i));
    float *copy = lpl_malloc((size_t)n * sizeof(float), "initial adapter", err);
    if (!copy)
        return LPL_ERR_NOMEM;
    memcpy(copy, params, (size_t)n * sizeof(float));
    free(r->tr[i].init);
    r->tr[i].init = copy;
    r->tr[i].n_init = n;
    return LPL_OK;
}

/* ---------------------------------------------------------------- eval */

static void eval_point_set(lpl_eval_point *out, const lpl_eval_result *e)
{
    out->nll_sum = e->nll_sum;
    out->n_tokens = e->n_tokens;
    out->n_samples = e->n_samples;
    out->eval_loss = e->eval_loss;
    out->perplexity = e->perplexity;
    out->mean_sample_perplexity = e->mean_sample_perplexity;
    out->trainer_eval_loss = e->trainer_eval_loss;
    memcpy(out->role_nll, e->role_nll, sizeof out->role_nll);
    memcpy(out->role_tokens, e->role_tokens, sizeof out->role_tokens);
}

static lpl_status eval_pass(lpl_run *r, lpl_lora *lora, lpl_eval_point *out, lpl_error *err)
{
    lpl_eval_result e;
    memset(out, 0, sizeof *out);
    lpl_status st = lpl_evaluate_with_state(r->model, lora, r->state, &r->eval, &e, err);
    if (st)
        return st;
    eval_point_set(out, &e);
    r->n_cpu_evals++;
    return LPL_OK;
}

/* Where an eval pass ran: the CPU, or the device of the hosted steps. */
static const char *eval_device(const lpl_run *r, const lpl_eval_point *e)
{
    return e->hosted ? (r->cfg.device == LPL_DEVICE_WEBGPU ? "webgpu" : "cpu") : "cpu";
}

static void emit_eval(lpl_run *r, const lpl_eval_point *e)
{
    cJSON *ev = new_event("eval", r, 1);
    cJSON_AddNumberToObject(ev, "epoch", e->epoch);
    cJSON_AddNumberToObject(ev, "step", e->step);
    cJSON_AddNumberToObject(ev, "eval_loss", e->eval_loss);
    cJSON_AddNumberToObject(ev, "perplexity", e->perplexity);
    cJSON_AddNumberToObject(ev, "mean_sample_perplexity", e->mean_sample_perplexity);
    cJSON_AddNumberToObject(ev, "trainer_eval_loss", e->trainer_eval_loss);
    cJSON_AddStringToObject(ev, "device", eval_device(r, e));
    push_event(r, ev);
}

/* ---------------------------------------------------------------- units */

static void update_eta(lpl_run *r)
{
    lpl_run_progress *pg = &r->prog;
    pg->elapsed_s = lpl_now_seconds() - r->t0;
    int remaining_trainings = 0;
    for (int i = r->cur + 1; i < r->n; i++)
        remaining_trainings += r->tr[i].status == LPL_TRAINING_PENDING && !r->tr[i].skip;
    int64_t steps_left = (int64_t)r->total_steps - r->step + (int64_t)remaining_trainings * r->total_steps;
    int evals_here = r->cur < r->n ? r->epochs + 1 - r->tr[r->cur].n_evals : 0;
    if (evals_here < 0)
        evals_here = 0;
    int64_t evals_left = evals_here + (int64_t)remaining_trainings * r->epochs;
    if (r->n_train_units == 0) {
        pg->eta_s = -1;
        return;
    }
    double per_step = r->t_train_units / (double)r->n_train_units;
    double per_eval = r->n_eval_units ? r->t_eval_units / (double)r->n_eval_units : per_step * r->eval.n;
    pg->eta_s = per_step * (double)steps_left + per_eval * (double)evals_left;
}

/* A training's own memory: the activation state every training uses (allocated once
 * for the run, so it is counted here rather than seen as growth) plus the growth of
 * the heap over what was in use before its adapters came: adapters with their
 * gradients and LoRA activations, AdamW's moments, the gradient accumulator. Adapters
 * kept from earlier trainings are in heap_start, so the figure does not creep up
 * from one training to the next as the process high-water mark does. */
static void note_training_memory(lpl_run *r, lpl_training *p)
{
    int64_t now = lpl_heap_in_use_bytes();
    if (now > p->heap_peak)
        p->heap_peak = now;
    p->training_memory = (int64_t)lpl_gpt2_state_bytes(r->state) + (p->heap_peak - p->heap_start);
}

static void fail_training(lpl_run *r, const char *msg)
{
    lpl_training *p = &r->tr[r->cur];
    p->status = LPL_TRAINING_FAILED;
    snprintf(p->message, sizeof p->message, "%s", msg);
    p->peak_memory = lpl_peak_memory_bytes();
    note_training_memory(r, p);
    cJSON_Delete(p->result);
    p->result = lpl_run_build_result(r, r->cur);
    cJSON *ev = new_event("training_failed", r, 1);
    cJSON_AddStringToObject(ev, "message", msg);
    push_event(r, ev);
    training_release(p, 0);
    r->host_owes = 0; /* its adapters are gone: nothing to write back */
    if (r->opt_ready) {
        lpl_adamw_free(&r->opt);
        r->opt_ready = 0;
    }
    r->cur++;
    r->phase = LPL_PHASE_START;
}

static int base_eval_needed(const lpl_run *r)
{
    for (int i = 0; i < r->n; i++)
        if (r->tr[i].status == LPL_TRAINING_PENDING && !r->tr[i].init && !r->tr[i].skip)
            return 1;
    return 0;
}

/* The base model's eval is in r->base_eval (computed from t on): event and timings. */
static void base_eval_recorded(lpl_run *r, double t)
{
    r->have_base_eval = 1;
    r->t_eval_units += lpl_now_seconds() - t;
    r->n_eval_units++;
    r->prog.evaluating = 1;
    cJSON *ev = new_event("eval", r, 0);
    cJSON_AddNullToObject(ev, "placement");
    cJSON_AddNumberToObject(ev, "placement_index", -1);
    cJSON_AddNumberToObject(ev, "epoch", 0);
    cJSON_AddNumberToObject(ev, "eval_loss", r->base_eval.eval_loss);
    cJSON_AddNumberToObject(ev, "perplexity", r->base_eval.perplexity);
    cJSON_AddNumberToObject(ev, "mean_sample_perplexity", r->base_eval.mean_sample_perplexity);
    cJSON_AddStringToObject(ev, "device", eval_device(r, &r->base_eval));
    push_event(r, ev);
}

static lpl_status unit_base_eval(lpl_run *r, lpl_error *err)
{
    r->phase = LPL_PHASE_START;
    if (!base_eval_needed(r))
        return LPL_OK;
    double t = lpl_now_seconds();
    lpl_status st = eval_pass(r, NULL, &r->base_eval, err);
    if (st)
        return st;
    base_eval_recorded(r, t);
    return LPL_OK;
}

/* Attaches fresh (or saved) adapters for the current training; skips finished ones. */
static lpl_status unit_start(lpl_run *r, lpl_error *err)
{
    while (r->cur < r->n && (r->tr[r->cur].status != LPL_TRAINING_PENDING || r->tr[r->cur].skip))
        r->cur++;
    if (r->cur >= r->n) {
        r->phase = LPL_PHASE_DONE;
        return LPL_OK;
    }
    lpl_training *p = &r->tr[r->cur];
    p->heap_start = p->heap_peak = lpl_heap_in_use_bytes();
    p->lora = lpl_lora_attach(&p->lcfg, &r->model->cfg, err);
    if (!p->lora)
        return err ? err->code : LPL_ERR_INVALID;
    /* base dropout masks from the training's seed, like its LoRA init, LoRA dropout
     * and data order: every placement at one seed draws the same key sequence */
    lpl_gpt2_dropout bd;
    const char *bd_source;
    lpl_experiment_base_dropout(&r->cfg, &r->model->cfg, &bd, &bd_source);
    lpl_status st_bd = lpl_gpt2_state_set_dropout(r->state, &bd, p->seed, err);
    if (st_bd)
        return st_bd;
    if (p->init)
        memcpy(p->lora->params, p->init, (size_t)p->n_init * sizeof(float));
    lpl_adamw_config oc;
    lpl_adamw_config_default(&oc);
    oc.weight_decay = r->cfg.weight_decay;
    lpl_status st = lpl_adamw_init(&r->opt, &oc, p->lora->n_params, err);
    if (st)
        return st;
    r->opt_ready = 1;
    if (r->cfg.batch_size > 1) {
        free(r->accum);
        r->accum = lpl_malloc((size_t)p->lora->n_params * sizeof(float), "gradient accumulator", err);
        if (!r->accum)
            return LPL_ERR_NOMEM;
    }
    p->status = LPL_TRAINING_RUNNING;
    p->n_steps = 0;
    p->n_evals = 0;
    r->epoch = 1;
    r->step = 0;
    r->pos = 0;
    memset(&p->timings, 0, sizeof p->timings);
    if (r->cfg.seeds > 1)
        snprintf(r->prog.name, sizeof r->prog.name, "%s seed %llu", lpl_run_entry_name(r, r->cur),
                 (unsigned long long)p->seed);
    else
        snprintf(r->prog.name, sizeof r->prog.name, "%s", lpl_run_entry_name(r, r->cur));
    r->prog.training = r->cur;
    r->prog.epochs = r->epochs;
    r->prog.steps = r->total_steps;
    if (p->init || !r->have_base_eval) {
        r->phase = LPL_PHASE_EVAL_BEFORE;
    } else {
        p->evals[p->n_evals++] = r->base_eval;
        emit_eval(r, &r->base_eval);
        r->phase = LPL_PHASE_TRAIN;
    }
    return LPL_OK;
}

/* A training's eval pass (epoch 0: before training) is done, computed from t on with
 * status st: record it, fail the training on a non-finite loss, move on. */
static lpl_status eval_recorded(lpl_run *r, int epoch, lpl_eval_point *e, lpl_status st, double t)
{
    lpl_training *p = &r->tr[r->cur];
    if (st == LPL_ERR_NUMERIC)
        e->eval_loss = NAN; /* reported below as this training's failure */
    else if (st)
        return st;
    r->t_eval_units += lpl_now_seconds() - t;
    r->n_eval_units++;
    e->epoch = epoch;
    e->step = r->step;
    p->evals[p->n_evals++] = *e;
    r->prog.evaluating = 1;
    emit_eval(r, e);
    if (!isfinite(e->eval_loss)) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "non-finite eval loss after step %d of placement '%s' (lr %g): the learning rate is "
                 "probably too high", r->step, lpl_run_entry_name(r, r->cur), r->cfg.lr);
        fail_training(r, msg);
        return LPL_OK;
    }
    if (epoch == 0) {
        r->phase = LPL_PHASE_TRAIN;
    } else if (r->step >= r->total_steps) {
        r->phase = LPL_PHASE_FINISH;
    } else {
        r->phase = LPL_PHASE_TRAIN;
        r->epoch++;
        r->pos = 0;
    }
    return LPL_OK;
}

static lpl_status unit_eval(lpl_run *r, int epoch, lpl_error *err)
{
    double t = lpl_now_seconds();
    lpl_eval_point e;
    lpl_status st = eval_pass(r, r->tr[r->cur].lora, &e, err);
    return eval_recorded(r, epoch, &e, st, t);
}

static void start_epoch_order(lpl_run *r)
{
    int n = r->n_train_ex;
    if (r->cfg.shuffle) {
        /* The training's own seed: each seed sees its own order, every placement at that
         * seed the same one. */
        lpl_shuffle_indices(r->perm, n, r->tr[r->cur].seed * 1000003u + (uint64_t)r->epoch);
        for (int i = 0; i < n; i++)
            r->perm[i] = r->train_idx[r->perm[i]];
    } else {
        memcpy(r->perm, r->train_idx, (size_t)n * sizeof(int));
    }
}

static void add_timings(lpl_gpt2_timings *acc, const lpl_gpt2_timings *a, const lpl_gpt2_timings *b)
{
    acc->embed += b->embed - a->embed;
    acc->attention += b->attention - a->attention;
    acc->mlp += b->mlp - a->mlp;
    acc->lora += b->lora - a->lora;
    acc->lm_head += b->lm_head - a->lm_head;
    acc->layernorm += b->layernorm - a->layernorm;
    acc->total += b->total - a->total;
    acc->base_products += b->base_products - a->base_products;
}

/* Forward/backward over one batch; gradients of the token-weighted mean loss in lora->grads. */
static lpl_status batch_grads(lpl_run *r, lpl_lora *lora, int begin, int end, lpl_loss *out, int *tokens,
                              lpl_error *err)
{
    double nll = 0;
    int scored = 0;
    int total_scored = 0;
    *tokens = 0;
    for (int k = begin; k < end; k++)
        total_scored += scored_tokens(&r->train.ex[r->perm[k]]);
    int64_t np = lora->n_params;
    if (end - begin > 1)
        memset(r->accum, 0, (size_t)np * sizeof(float));
    for (int k = begin; k < end; k++) {
        const lpl_example *e = &r->train.ex[r->perm[k]];
        memset(lora->grads, 0, (size_t)np * sizeof(float));
        lpl_loss l;
        lpl_status st = lpl_gpt2_forward(r->model, lora, r->state, e->tokens, e->targets, e->mask, e->T,
                                         1, &l, err);
        if (!st)
            st = lpl_gpt2_backward(r->model, lora, r->state, err);
        if (st)
            return st;
        nll += l.nll_sum;
        scored += l.n_scored;
        *tokens += e->T;
        if (end - begin > 1) {
            /* The engine gives the gradient of this example's mean loss; weighting by its
             * share of scored tokens makes the batch gradient that of the batch mean. */
            float w = (float)l.n_scored / (float)total_scored;
            for (int64_t j = 0; j < np; j++)
                r->accum[j] += w * lora->grads[j];
        }
    }
    if (end - begin > 1)
        memcpy(lora->grads, r->accum, (size_t)np * sizeof(float));
    out->nll_sum = nll;
    out->n_scored = scored;
    out->loss = scored ? (float)(nll / scored) : 0.0f;
    return LPL_OK;
}

/* A training has diverged when it makes the model worse than guessing: one
 * step's loss above twice a uniform guess's (2 ln V), or the last three steps' mean
 * loss half a nat above both the uniform guess's and the training's loss before
 * its first step. Such a run's later numbers would be noise, so it is stopped. With the
 * bundled model and lr 1e3 the loss climbs past 12 (ln V = 10.8) within a few steps;
 * normal training of a pretrained model never comes near ln V. */
static int diverged(const lpl_run *r, const lpl_training *p, float loss, char *msg, size_t n,
                    const char *name)
{
    double uniform = log((double)r->model->cfg.n_vocab);
    double before = p->n_evals > 0 ? p->evals[0].eval_loss : uniform;
    double limit = (uniform > before ? uniform : before) + 0.5;
    if (loss > 2.0 * uniform) {
        snprintf(msg, n, "training diverged at step %d of placement '%s' (lr %g): loss %.3g is over twice "
                 "that of a uniform guess (%.3g); lower the learning rate", r->step + 1, name, r->cfg.lr,
                 (double)loss, uniform);
        return 1;
    }
    if (r->step >= 2) {
        double mean3 = (loss + p->loss[r->step - 1] + p->loss[r->step - 2]) / 3.0;
        if (mean3 > limit) {
            snprintf(msg, n, "training diverged at step %d of placement '%s' (lr %g): mean loss of the "
                     "last 3 steps %.3g is above a uniform guess's (%.3g) and the loss before training "
                     "(%.3g); lower the learning rate", r->step + 1, name, r->cfg.lr, mean3, uniform, before);
            return 1;
        }
    }
    return 0;
}

/* The examples [begin, end) of the next step (the epoch's order drawn at its start). */
static void train_batch(lpl_run *r, int *begin, int *end)
{
    if (r->pos == 0)
        start_epoch_order(r);
    *begin = r->pos;
    *end = r->pos + r->cfg.batch_size;
    if (*end > r->n_train_ex)
        *end = r->n_train_ex;
}

/* Fails the current training on a non-finite `what` ("loss", "gradient") at this
 * step; more is added to the advice. Returns 0, train_record's answer on failure. */
static int fail_non_finite(lpl_run *r, const char *what, const char *more)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "non-finite %s at step %d of placement '%s' (lr %g): the learning rate is probably too high%s", what,
             r->step + 1, lpl_run_entry_name(r, r->cur), r->cfg.lr, more);
    fail_training(r, msg);
    return 0;
}

/* Records one optimizer step computed on the CPU or by a host (lpl_run_host_*): loss is
 * the batch's mean loss, gnorm the gradient norm before clipping, lr the rate used. The
 * finite and divergence checks come first; a failure fails the training (returns 0).
 * Returns 1 when the step was recorded. Shared by both paths so that their curves,
 * events and guards are one code. */
static int train_record(lpl_run *r, float loss, double gnorm, float lr, int tokens, int end, double t_start)
{
    lpl_training *p = &r->tr[r->cur];
    const char *name = lpl_run_entry_name(r, r->cur);
    char msg[256];
    if (!isfinite(loss))
        return fail_non_finite(r, "loss", ", or the model overflowed");
    if (diverged(r, p, loss, msg, sizeof msg, name)) {
        fail_training(r, msg);
        return 0;
    }
    if (!isfinite(gnorm))
        return fail_non_finite(r, "gradient", "");
    p->loss[r->step] = loss;
    p->lr[r->step] = lr;
    p->grad_norm[r->step] = (float)gnorm;
    p->tokens[r->step] = tokens;
    p->n_steps = ++r->step;
    p->train_tokens += tokens;
    r->pos = end;
    double dt = lpl_now_seconds() - t_start;
    p->train_seconds += dt;
    r->t_train_units += dt;
    r->n_train_units++;

    lpl_run_progress *pg = &r->prog;
    pg->epoch = r->epoch;
    pg->step = r->step;
    pg->loss = loss;
    pg->lr = lr;
    pg->tokens_per_s = p->train_seconds > 0 ? (double)p->train_tokens / p->train_seconds : 0;
    pg->evaluating = 0;
    update_eta(r);
    cJSON *ev = new_event("step", r, 1);
    cJSON_AddNumberToObject(ev, "epoch", r->epoch);
    cJSON_AddNumberToObject(ev, "step", r->step);
    cJSON_AddNumberToObject(ev, "steps", r->total_steps);
    cJSON_AddNumberToObject(ev, "loss", loss);
    cJSON_AddNumberToObject(ev, "lr", lr);
    cJSON_AddNumberToObject(ev, "grad_norm", gnorm);
    cJSON_AddNumberToObject(ev, "tokens_per_s", pg->tokens_per_s);
    cJSON_AddNumberToObject(ev, "elapsed_s", pg->elapsed_s);
    cJSON_AddNumberToObject(ev, "eta_s", pg->eta_s);
    push_event(r, ev);

    if (r->pos >= r->n_train_ex || r->step >= r->total_steps)
        r->phase = LPL_PHASE_EVAL_EPOCH;
    return 1;
}

static lpl_status unit_train(lpl_run *r, lpl_error *err)
{
    lpl_training *p = &r->tr[r->cur];
    lpl_lora *lora = p->lora;
    const char *name = lpl_run_entry_name(r, r->cur);
    double t = lpl_now_seconds();
    lpl_gpt2_timings t_before, t_after;
    lpl_gpt2_get_timings(r->state, &t_before);
    int begin, end;
    train_batch(r, &begin, &end);
    lpl_loss l;
    int tokens;
    lpl_status st = batch_grads(r, lora, begin, end, &l, &tokens, err);
    if (st == LPL_ERR_NUMERIC) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "non-finite loss or gradient at step %d of placement '%s' (lr %g): the learning rate is "
                 "probably too high, or the model overflowed", r->step + 1, name, r->cfg.lr);
        fail_training(r, msg);
        return LPL_OK;
    }
    if (st)
        return st;
    double gnorm = 0;
    float lr = 0;
    if (isfinite(l.loss) && !diverged(r, p, l.loss, (char[8]){0}, 8, name)) {
        gnorm = lpl_clip_grad_norm(lora->grads, lora->n_params, r->cfg.grad_clip);
        lr = lpl_schedule_lr(r->cfg.schedule, r->cfg.lr, r->step, r->cfg.warmup_steps, r->total_steps);
        if (isfinite(gnorm))
            lpl_adamw_step(&r->opt, lora->params, lora->grads, lr);
    }
    lpl_gpt2_get_timings(r->state, &t_after);
    add_timings(&p->timings, &t_before, &t_after);
    train_record(r, l.loss, gnorm, lr, tokens, end, t);
    return LPL_OK;
}

static void unit_finish(lpl_run *r)
{
    lpl_training *p = &r->tr[r->cur];
    p->status = LPL_TRAINING_DONE;
    p->peak_memory = lpl_peak_memory_bytes();
    note_training_memory(r, p);
    cJSON_Delete(p->result);
    p->result = lpl_run_build_result(r, r->cur);
    cJSON *ev = new_event("training_done", r, 1);
    cJSON_AddItemToObject(ev, "result", cJSON_Duplicate(p->result, 1));
    push_event(r, ev);
    lpl_adamw_free(&r->opt);
    r->opt_ready = 0;
    r->cur++;
    r->phase = LPL_PHASE_START;
}

static void finish_run(lpl_run *r, int cancelled)
{
    if (r->finished)
        return;
    r->finished = 1;
    r->phase = LPL_PHASE_DONE;
    if (cancelled && r->cur < r->n && r->tr[r->cur].status == LPL_TRAINING_RUNNING) {
        lpl_training *p = &r->tr[r->cur];
        p->status = LPL_TRAINING_PENDING;
        p->n_steps = 0;
        p->n_evals = 0;
        p->train_seconds = 0;
        p->train_tokens = 0;
        training_release(p, 0);
    }
    if (r->opt_ready) {
        lpl_adamw_free(&r->opt);
        r->opt_ready = 0;
    }
    cJSON *ev = new_event("done", r, 0);
    cJSON_AddBoolToObject(ev, "cancelled", cancelled);
    push_event(r, ev);
}

static lpl_status events_lost(lpl_error *err)
{
    return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: an event of the run (a step, an eval or a training's end, "
                    "which carries its adapter to the page) could not be kept; the run stops so that no adapter is "
                    "lost unseen");
}

/* A fatal error ends the run, with an "error" event; -1 for the caller. */
static int run_fatal(lpl_run *r, lpl_error *err, lpl_status st)
{
    r->finished = 1;
    r->phase = LPL_PHASE_DONE;
    cJSON *ev = new_event("error", r, 0);
    cJSON_AddStringToObject(ev, "message", err ? err->msg : lpl_status_name(st));
    push_event(r, ev);
    return -1;
}

int lpl_run_step(lpl_run *r, lpl_error *err)
{
    if (r->finished)
        return 0;
    if (atomic_load(&r->cancel)) {
        finish_run(r, 1);
        if (r->events_lost) {
            events_lost(err);
            return -1;
        }
        return 0;
    }
    lpl_status st = LPL_OK;
    switch (r->phase) {
    case LPL_PHASE_BASE_EVAL: st = unit_base_eval(r, err); break;
    case LPL_PHASE_START: st = unit_start(r, err); break;
    case LPL_PHASE_EVAL_BEFORE: st = unit_eval(r, 0, err); break;
    case LPL_PHASE_TRAIN: st = unit_train(r, err); break;
    case LPL_PHASE_EVAL_EPOCH: st = unit_eval(r, r->epoch, err); break;
    case LPL_PHASE_FINISH: unit_finish(r); break;
    case LPL_PHASE_DONE: break;
    }
    if (r->cur < r->n && r->tr[r->cur].status == LPL_TRAINING_RUNNING) {
        int64_t heap = lpl_heap_in_use_bytes();
        if (heap > r->tr[r->cur].heap_peak)
            r->tr[r->cur].heap_peak = heap;
    }
    if (!st && r->events_lost)
        st = events_lost(err);
    if (st)
        return run_fatal(r, err, st);
    if (r->phase == LPL_PHASE_DONE) {
        finish_run(r, 0);
        if (r->events_lost) {
            events_lost(err);
            return -1;
        }
        return 0;
    }
    return 1;
}

lpl_status lpl_run_only(lpl_run *r, int i, lpl_error *err)
{
    if (i < 0 || i >= r->n)
        return lpl_fail(err, LPL_ERR_INVALID, "training %d does not exist (the run has %d)", i, r->n);
    if (r->phase != LPL_PHASE_BASE_EVAL)
        return lpl_fail(err, LPL_ERR_INVALID, "the run has already started");
    for (int k = 0; k < r->n; k++)
        r->tr[k].skip = k != i;
    return LPL_OK;
}

void lpl_run_cancel(lpl_run *r) { atomic_store(&r->cancel, 1); }
int lpl_run_cancelled(const lpl_run *r) { return atomic_load((atomic_int *)&r->cancel); }
int lpl_run_finished(const lpl_run *r) { return r->finished; }
const lpl_run_progress *lpl_run_get_progress(const lpl_run *r) { return &r->prog; }
int lpl_run_n_trainings(const lpl_run *r) { return r->n; }

int lpl_run_n_completed(const lpl_run *r)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->tr[i].status == LPL_TRAINING_DONE || r->tr[i].status == LPL_TRAINING_FAILED;
    return n;
}

lpl_training_status lpl_run_training_status(const lpl_run *r, int i)
{
    return i >= 0 && i < r->n ? r->tr[i].status : LPL_TRAINING_PENDING;
}

const char *lpl_run_modules(const lpl_run *r, int i)
{
    return i >= 0 && i < r->n ? r->tr[i].count.modules : "";
}

const lpl_example_set *lpl_run_eval_set(const lpl_run *r) { return &r->eval; }

const lpl_lora *lpl_run_adapter(const lpl_run *r, int i)
{
    if (i < 0 || i >= r->n || r->tr[i].status != LPL_TRAINING_DONE)
        return NULL;
    return r->tr[i].lora;
}

const lpl_lora_config *lpl_run_lora_config(const lpl_run *r, int i)
{
    return i >= 0 && i < r->n ? &r->tr[i].lcfg : NULL;
}

/* ---------------------------------------------------------------- resume */

/* The saved run's data file `which` ("train"/"eval") must hash as ours, where both are known. */
static lpl_status same_data(const cJSON *root, const char *which, const char *ours, lpl_error *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "data"), which);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(d, "sha256");
    if (!cJSON_IsString(sha) || !sha->valuestring[0] || !ours[0] || !strcmp(sha->valuestring, ours))
        return LPL_OK;
    return lpl_fail(err, LPL_ERR_INVALID, "resume: the saved run used other %s data (sha256 %.12s..., now %.12s...)",
                    which, sha->valuestring, ours);
}

lpl_status lpl_run_resume(lpl_run *r, const char *results_json, lpl_error *err)
{
    cJSON *root = cJSON_Parse(results_json);
    if (!root)
        return lpl_fail(err, LPL_ERR_FORMAT, "resume: results.json is not valid JSON");
    lpl_status st = LPL_OK;
    cJSON *mine = lpl_experiment_to_cjson(&r->cfg);
    lpl_experiment_config saved_default;
    lpl_experiment_saved_default(&saved_default);
    cJSON *old = lpl_experiment_to_cjson(&saved_default);
    const cJSON *theirs = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(model, "sha256");
    const cJSON *pls = lpl_results_trainings(root);
    if (!cJSON_IsObject(theirs) || !pls) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "resume: results.json has no \"config\" or \"trainings\"");
        goto done;
    }
    for (const cJSON *it = mine->child; it; it = it->next) {
        /* More (or fewer) seeds extend the same experiment: trainings are matched below
         * by placement and seed. */
        if (!strcmp(it->string, "seeds"))
            continue;
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(theirs, it->string);
        /* a setting the saved config lacks is what it was before it existed */
        if (!o)
            o = cJSON_GetObjectItemCaseSensitive(old, it->string);
        int same = o && cJSON_Compare(it, o, 1);
        if (!same) {
            st = lpl_fail(err, LPL_ERR_INVALID,
                          "resume: the saved run has a different \"%s\" (resume needs the same experiment)",
                          it->string);
            goto done;
        }
    }
    if (cJSON_IsString(sha) && r->id.model_sha256[0] && strcmp(sha->valuestring, r->id.model_sha256)) {
        st = lpl_fail(err, LPL_ERR_INVALID, "resume: the saved run used another model (sha256 %.12s..., now %.12s...)",
                      sha->valuestring, r->id.model_sha256);
        goto done;
    }
    if ((st = same_data(root, "train", r->id.train_sha256, err)) || (st = same_data(root, "eval", r->id.eval_sha256, err)))
        goto done;
    for (const cJSON *it = pls->child; it; it = it->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(it, "status");
        if (!cJSON_IsString(name) || !cJSON_IsString(status))
            continue;
        int done = !strcmp(status->valuestring, "done"), failed = !strcmp(status->valuestring, "failed");
        if (!done && !failed)
            continue;
        /* Results written before seeds existed are trainings with the first seed. */
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(it, "seed");
        uint64_t sv = cJSON_IsNumber(seed) ? (uint64_t)seed->valuedouble : r->cfg.seed;
        for (int i = 0; i < r->n; i++) {
            if (strcmp(lpl_run_entry_name(r, i), name->valuestring) || r->tr[i].seed != sv ||
                r->tr[i].status != LPL_TRAINING_PENDING)
                continue;
            r->tr[i].status = done ? LPL_TRAINING_DONE : LPL_TRAINING_FAILED;
            r->tr[i].result = cJSON_Duplicate(it, 1);
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "message");
            if (cJSON_IsString(m))
                snprintf(r->tr[i].message, sizeof r->tr[i].message, "%s", m->valuestring);
        }
    }
done:
    cJSON_Delete(mine);
    cJSON_Delete(old);
    cJSON_Delete(root);
    return st;
}

/* ---------------------------------------------------------------- hosted steps */

void lpl_run_host_evals(lpl_run *r, int on) { r->host_evals = on != 0; }

/* Hands out the eval pass due in r->phase (the base model's, or the current
 * training's after `epoch` epochs): returns 2. */
static int host_hand_eval(lpl_run *r, lpl_run_host_step *s, int epoch)
{
    memset(s, 0, sizeof *s);
    s->training = -1;
    if (r->phase != LPL_PHASE_BASE_EVAL) {
        const lpl_training *p = &r->tr[r->cur];
        s->training = r->cur;
        s->seed = p->seed;
        s->step = r->step;
        s->total_steps = r->total_steps;
        s->lora = p->lora;
    }
    s->compute = lpl_gpt2_state_compute(r->state);
    s->eval_epoch = epoch;
    s->eval_set = &r->eval;
    for (int i = 0; i < r->eval.n; i++)
        s->eval_scored += scored_tokens(&r->eval.ex[i]);
    r->host_eval_scored = s->eval_scored;
    r->host_eval_phase = r->phase;
    r->host_eval_epoch = epoch;
    r->host_pending = 2;
    r->host_t0 = lpl_now_seconds();
    return 2;
}

int lpl_run_host_next(lpl_run *r, lpl_run_host_step *s, lpl_error *err)
{
    if (r->host_pending == 1) {
        lpl_fail(err, LPL_ERR_INVALID, "hosted training: step %d was handed out and not recorded "
                 "(lpl_run_host_record)", r->step + 1);
        return -1;
    }
    if (r->host_pending == 2) {
        lpl_fail(err, LPL_ERR_INVALID, "hosted training: an eval pass was handed out and not recorded "
                 "(lpl_run_host_record_eval)");
        return -1;
    }
    for (;;) {
        if (r->finished)
            return 0;
        if (!atomic_load(&r->cancel) && r->phase == LPL_PHASE_TRAIN)
            break;
        if (r->host_evals && !atomic_load(&r->cancel)) {
            if (r->phase == LPL_PHASE_BASE_EVAL && base_eval_needed(r))
                return host_hand_eval(r, s, 0);
            if (r->phase == LPL_PHASE_EVAL_BEFORE)
                return host_hand_eval(r, s, 0);
            if (r->phase == LPL_PHASE_EVAL_EPOCH)
                return host_hand_eval(r, s, r->epoch);
        }
        if (r->host_owes && !atomic_load(&r->cancel) &&
            ((r->phase == LPL_PHASE_EVAL_EPOCH && !r->host_evals) || r->phase == LPL_PHASE_FINISH)) {
            lpl_fail(err, LPL_ERR_INVALID, "hosted training: the run needs the adapters of training %d "
                     "before its eval; write them back with lpl_run_host_set_adapters", r->cur);
            return -1;
        }
        int rc = lpl_run_step(r, err);
        if (rc <= 0)
            return rc;
    }
    lpl_training *p = &r->tr[r->cur];
    int begin, end;
    train_batch(r, &begin, &end);
    if (end - begin > LPL_HOST_MAX_BATCH) {
        lpl_fail(err, LPL_ERR_INVALID, "hosted training: batch_size %d is over the hosted limit %d",
                 r->cfg.batch_size, LPL_HOST_MAX_BATCH);
        return -1;
    }
    memset(s, 0, sizeof *s);
    s->training = r->cur;
    s->seed = p->seed;
    s->first_step = r->step == 0;
    s->step = r->step;
    s->total_steps = r->total_steps;
    s->lr = lpl_schedule_lr(r->cfg.schedule, r->cfg.lr, r->step, r->cfg.warmup_steps, r->total_steps);
    s->grad_clip = r->cfg.grad_clip;
    s->adamw = r->opt.cfg;
    s->compute = lpl_gpt2_state_compute(r->state);
    lpl_experiment_base_dropout(&r->cfg, &r->model->cfg, &s->base_dropout, &(const char *){NULL});
    if (lpl_cfg_is_llama(&r->model->cfg))
        s->base_dropout.embd = s->base_dropout.resid = 0.0f;
    s->lora = p->lora;
    s->n_examples = end - begin;
    int total_scored = 0;
    for (int k = begin; k < end; k++)
        total_scored += scored_tokens(&r->train.ex[r->perm[k]]);
    for (int k = begin; k < end; k++) {
        const lpl_example *e = &r->train.ex[r->perm[k]];
        s->ex[k - begin] = e;
        s->weight[k - begin] = end - begin > 1 ? (float)scored_tokens(e) / (float)total_scored : 1.0f;
        /* the keys the CPU's forwards would take, in the same order */
        s->base_key[k - begin] = lpl_gpt2_state_take_dropout_key(r->state);
        if (p->lora->cfg.dropout > 0.0f) {
            s->lora_key[k - begin] = p->lora->rng_state;
            p->lora->rng_state = lpl_mix64(p->lora->rng_state + 0x9e3779b97f4a7c15ULL);
        }
    }
    r->host_begin = begin;
    r->host_end = end;
    r->host_pending = 1;
    r->host_t0 = lpl_now_seconds();
    return 1;
}

int lpl_run_host_record(lpl_run *r, float loss, double grad_norm, int tokens, lpl_error *err)
{
    if (!r->host_pending) {
        lpl_fail(err, LPL_ERR_INVALID, "hosted training: no step is pending (call lpl_run_host_next first)");
        return -1;
    }
    r->host_pending = 0;
    float lr = lpl_schedule_lr(r->cfg.schedule, r->cfg.lr, r->step, r->cfg.warmup_steps, r->total_steps);
    if (!train_record(r, loss, grad_norm, lr, tokens, r->host_end, r->host_t0)) {
        r->host_owes = 0; /* the training failed: its adapters are gone */
        return 0;
    }
    r->host_owes = 1;
    /* hosted evals use the host's adapters: only the training's end needs them here */
    return r->host_evals ? r->phase == LPL_PHASE_FINISH : r->phase != LPL_PHASE_TRAIN;
}

int lpl_run_host_record_eval(lpl_run *r, const float *token_nll, int64_t n, lpl_error *err)
{
    if (r->host_pending != 2) {
        lpl_fail(err, LPL_ERR_INVALID, "hosted training: no eval pass is pending (call lpl_run_host_next first)");
        return -1;
    }
    if (n != r->host_eval_scored) {
        lpl_fail(err, LPL_ERR_INVALID, "hosted training: %lld eval token losses given, the eval set has %lld "
                 "scored tokens", (long long)n, (long long)r->host_eval_scored);
        return -1;
    }
    r->host_pending = 0;
    /* the CPU eval's own reduction (lpl_evaluate_with_state) over the host's losses */
    lpl_eval_acc acc;
    lpl_eval_begin(&acc);
    int64_t off = 0;
    for (int i = 0; i < r->eval.n; i++) {
        lpl_eval_add(&acc, &r->eval, i, token_nll + off);
        off += scored_tokens(&r->eval.ex[i]);
    }
    lpl_eval_result res;
    lpl_eval_point e;
    memset(&e, 0, sizeof e);
    lpl_status st = lpl_eval_end(&acc, &res, err);
    if (!st)
        eval_point_set(&e, &res);
    e.hosted = 1;
    r->n_host_evals++;
    if (r->host_eval_phase == LPL_PHASE_BASE_EVAL) {
        if (st)
            return run_fatal(r, err, st);
        r->phase = LPL_PHASE_START;
        r->base_eval = e;
        base_eval_recorded(r, r->host_t0);
    } else {
        st = eval_recorded(r, r->host_eval_epoch, &e, st, r->host_t0);
        if (st)
            return run_fatal(r, err, st);
    }
    if (r->events_lost)
        return run_fatal(r, err, events_lost(err));
    return r->host_owes && r->phase == LPL_PHASE_FINISH;
}

lpl_status lpl_run_host_set_adapters(lpl_run *r, const float *params, int64_t n, lpl_error *err)
{
    if (r->cur >= r->n || r->tr[r->cur].status != LPL_TRAINING_RUNNING || !r->tr[r->cur].lora)
        return lpl_fail(err, LPL_ERR_INVALID, "hosted training: no training is running to take adapters");
    lpl_lora *lora = r->tr[r->cur].lora;
    if (n != lora->n_params)
        return lpl_fail(err, LPL_ERR_INVALID, "hosted training: %lld adapter params given, training %d has %lld",
                        (long long)n, r->cur, (long long)lora->n_params);
    memmove(lora->params, params, (size_t)n * sizeof(float));
    r->host_owes = 0;
    return LPL_OK;
}

lpl_status lpl_run_set_device_info(lpl_run *r, const char *json, lpl_error *err)
{
    cJSON *o = cJSON_Parse(json ? json : "");
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return lpl_fail(err, LPL_ERR_INVALID, "device info: not a JSON object");
    }
    cJSON_Delete(r->device_info);
    r->device_info = o;
    return LPL_OK;
}
