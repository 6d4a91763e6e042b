/* Results of a run as documents: results.json (config, model and data identity with
 * sha256, environment, per training everything measured), results.csv (the table)
 * and steps.jsonl. */
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "experiment_internal.h"
#include "lpl/lab/document.h"
#include "lpl/core/platform.h"
#include "lpl/core/files.h"
#include "lpl/core/kernels.h"
#include "lpl/core/simd.h"
#include "lpl/core/threads.h"

/* ---------------------------------------------------------------- names of a run's entries
 * (here, not in experiment_run.c, because the documents name things and the run loop
 * already calls into this file: the dependency stays one way) */

const char *lpl_run_placement_name(const lpl_run *r, int i)
{
    return i >= 0 && i < r->n ? r->cfg.placements[r->tr[i].placement].name : "";
}

const char *lpl_run_entry_name(const lpl_run *r, int i) { return lpl_run_placement_name(r, i); }

int lpl_run_n_seeds(const lpl_run *r) { return r->cfg.seeds; }

uint64_t lpl_run_seed(const lpl_run *r, int i) { return i >= 0 && i < r->n ? r->tr[i].seed : 0; }

int lpl_run_placement_index(const lpl_run *r, int i) { return i >= 0 && i < r->n ? r->tr[i].placement : -1; }

void lpl_run_adapter_dir(const lpl_run *r, int i, char *buf, size_t size)
{
    if (r->cfg.seeds > 1)
        snprintf(buf, size, "%s/seed-%llu", lpl_run_placement_name(r, i), (unsigned long long)lpl_run_seed(r, i));
    else
        snprintf(buf, size, "%s", lpl_run_placement_name(r, i));
}

/* ---------------------------------------------------------------- environment */

cJSON *lpl_environment_cjson(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "program", "loralab " LPL_VERSION);
    cJSON_AddStringToObject(o, "build", lpl_build_name());
    cJSON_AddNumberToObject(o, "threads", lpl_threads_count());
    cJSON_AddStringToObject(o, "simd", LPL_SIMD_NAME);
#ifdef __VERSION__
    cJSON_AddStringToObject(o, "compiler", __VERSION__);
#endif
    return o;
}

/* ---------------------------------------------------------------- training result */

static cJSON *float_array(const float *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* The device of the hosted steps and evals (lpl_run_host_evals). */
static const char *host_device(const lpl_run *r)
{
    return r->cfg.device == LPL_DEVICE_WEBGPU ? "webgpu" : "cpu";
}

static cJSON *eval_point_cjson(const lpl_run *r, const lpl_eval_point *e)
{
    cJSON *o = cJSON_CreateObject();
    if (e->hosted) /* a CPU eval's point stays as it always was */
        cJSON_AddStringToObject(o, "device", host_device(r));
    cJSON_AddNumberToObject(o, "epoch", e->epoch);
    cJSON_AddNumberToObject(o, "step", e->step);
    cJSON_AddNumberToObject(o, "eval_loss", e->eval_loss);
    cJSON_AddNumberToObject(o, "perplexity", e->perplexity);
    cJSON_AddNumberToObject(o, "mean_sample_perplexity", e->mean_sample_perplexity);
    cJSON_AddNumberToObject(o, "nll_sum", e->nll_sum);
    cJSON_AddNumberToObject(o, "n_tokens", (double)e->n_tokens);
    cJSON_AddNumberToObject(o, "n_samples", e->n_samples);
    cJSON_AddNumberToObject(o, "trainer_eval_loss", e->trainer_eval_loss);
    cJSON *roles = cJSON_AddObjectToObject(o, "roles");
    for (int k = 0; k < LPL_N_ROLES; k++) {
        cJSON *ro = cJSON_AddObjectToObject(roles, lpl_role_name(k));
        cJSON_AddNumberToObject(ro, "nll_sum", e->role_nll[k]);
        cJSON_AddNumberToObject(ro, "n_tokens", (double)e->role_tokens[k]);
        if (e->role_tokens[k])
            cJSON_AddNumberToObject(ro, "loss", e->role_nll[k] / (double)e->role_tokens[k]);
        else
            cJSON_AddNullToObject(ro, "loss");
    }
    return o;
}

/* Per-role eval loss of e as top-level keys eval_loss_ROLE + suffix (roles with tokens). */
static void add_role_losses(cJSON *o, const lpl_eval_point *e, const char *suffix)
{
    for (int k = 0; k < LPL_N_ROLES; k++) {
        if (!e->role_tokens[k])
            continue;
        char key[64];
        snprintf(key, sizeof key, "eval_loss_%s%s", lpl_role_name(k), suffix);
        cJSON_AddNumberToObject(o, key, e->role_nll[k] / (double)e->role_tokens[k]);
    }
}

/* What the drop in total eval NLL is made of: drop_share_ROLE = the role's NLL drop over
 * the total NLL drop (the shares sum to 1; the token sets are the same before and after). */
static void add_drop_shares(cJSON *o, const lpl_eval_point *before, const lpl_eval_point *after)
{
    double total = before->nll_sum - after->nll_sum;
    if (!(fabs(total) > 0))
        return;
    for (int k = 0; k < LPL_N_ROLES; k++) {
        if (!before->role_tokens[k])
            continue;
        char key[64];
        snprintf(key, sizeof key, "drop_share_%s", lpl_role_name(k));
        cJSON_AddNumberToObject(o, key, (before->role_nll[k] - after->role_nll[k]) / total);
    }
}

static cJSON *timings_cjson(const lpl_gpt2_timings *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "embed", t->embed);
    cJSON_AddNumberToObject(o, "attention", t->attention);
    cJSON_AddNumberToObject(o, "mlp", t->mlp);
    cJSON_AddNumberToObject(o, "lora", t->lora);
    cJSON_AddNumberToObject(o, "lm_head", t->lm_head);
    cJSON_AddNumberToObject(o, "layernorm", t->layernorm);
    cJSON_AddNumberToObject(o, "base_products", t->base_products);
    cJSON_AddNumberToObject(o, "total", t->total);
    return o;
}

static cJSON *update_norms_cjson(const lpl_lora *l)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; l && i < l->n_modules; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", l->modules[i].layer);
        cJSON_AddStringToObject(o, "module", lpl_site_name(l->modules[i].site));
        cJSON_AddNumberToObject(o, "norm", lpl_lora_update_norm(l, i));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static const char *status_name(lpl_training_status s)
{
    switch (s) {
    case LPL_TRAINING_PENDING: return "pending";
    case LPL_TRAINING_RUNNING: return "running";
    case LPL_TRAINING_DONE: return "done";
    case LPL_TRAINING_FAILED: return "failed";
    }
    return "pending";
}

static void add_final_metrics(cJSON *o, const lpl_training *p)
{
    const lpl_eval_point *first = p->n_evals ? &p->evals[0] : NULL;
    const lpl_eval_point *last = p->n_evals ? &p->evals[p->n_evals - 1] : NULL;
    if (first) {
        cJSON_AddNumberToObject(o, "eval_loss_before", first->eval_loss);
        cJSON_AddNumberToObject(o, "perplexity_before", first->perplexity);
        cJSON_AddNumberToObject(o, "mean_sample_perplexity_before", first->mean_sample_perplexity);
        cJSON_AddNumberToObject(o, "trainer_eval_loss_before", first->trainer_eval_loss);
        add_role_losses(o, first, "_before");
    }
    if (last && p->status == LPL_TRAINING_DONE) {
        cJSON_AddNumberToObject(o, "eval_loss", last->eval_loss);
        cJSON_AddNumberToObject(o, "perplexity", last->perplexity);
        cJSON_AddNumberToObject(o, "mean_sample_perplexity", last->mean_sample_perplexity);
        cJSON_AddNumberToObject(o, "trainer_eval_loss", last->trainer_eval_loss);
        add_role_losses(o, last, "");
        add_drop_shares(o, first, last);
    }
}

cJSON *lpl_run_build_result(const lpl_run *r, int i)
{
    const lpl_training *p = &r->tr[i];
    const lpl_gpt2_config *mc = &r->model->cfg;
    cJSON *o = lpl_placement_to_cjson(&r->cfg.placements[p->placement]);
    cJSON_AddNumberToObject(o, "index", p->placement);
    cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    cJSON_AddNumberToObject(o, "seed_index", p->seed_index);
    cJSON_AddStringToObject(o, "status", status_name(p->status));
    if (p->message[0])
        cJSON_AddStringToObject(o, "message", p->message);
    else
        cJSON_AddNullToObject(o, "message");
    lpl_count_add_to_cjson(o, &p->count);
    cJSON_AddItemToObject(o, "selected", lpl_selection_to_cjson(p->selected, mc));
    add_final_metrics(o, p);
    cJSON_AddNumberToObject(o, "steps_done", p->n_steps);
    cJSON_AddNumberToObject(o, "train_seconds", p->train_seconds);
    cJSON_AddNumberToObject(o, "train_tokens", (double)p->train_tokens);
    cJSON_AddNumberToObject(o, "tokens_per_s", p->train_seconds > 0 ? (double)p->train_tokens / p->train_seconds : 0);
    cJSON_AddNumberToObject(o, "placement_memory_bytes", (double)p->training_memory);
    cJSON_AddNumberToObject(o, "process_peak_memory_bytes", (double)p->peak_memory);
    /* What the placement itself adds: adapter weights, gradients and AdamW's two moments. */
    cJSON_AddNumberToObject(o, "adapter_memory_bytes", 16.0 * (double)p->count.trainable);
    cJSON *ev = cJSON_AddArrayToObject(o, "evals");
    for (int k = 0; k < p->n_evals; k++)
        cJSON_AddItemToArray(ev, eval_point_cjson(r, &p->evals[k]));
    cJSON *st = cJSON_AddObjectToObject(o, "steps");
    cJSON_AddItemToObject(st, "loss", float_array(p->loss, p->n_steps));
    cJSON_AddItemToObject(st, "lr", float_array(p->lr, p->n_steps));
    cJSON_AddItemToObject(st, "grad_norm", float_array(p->grad_norm, p->n_steps));
    cJSON *tk = cJSON_AddArrayToObject(st, "tokens");
    for (int k = 0; k < p->n_steps; k++)
        cJSON_AddItemToArray(tk, cJSON_CreateNumber(p->tokens[k]));
    cJSON_AddItemToObject(o, "timings", timings_cjson(&p->timings));
    cJSON_AddItemToObject(o, "update_norms", update_norms_cjson(p->status == LPL_TRAINING_DONE ? p->lora : NULL));
    if (p->status == LPL_TRAINING_DONE) {
        char dir[160];
        lpl_run_adapter_dir(r, i, dir, sizeof dir);
        cJSON_AddStringToObject(o, "adapter", dir);
    } else
        cJSON_AddNullToObject(o, "adapter");
    return o;
}

/* The result object of training i: the stored one, or a pending stub with accounting. */
static cJSON *training_cjson(const lpl_run *r, int i)
{
    const lpl_training *p = &r->tr[i];
    if (p->result)
        return cJSON_Duplicate(p->result, 1);
    cJSON *o = lpl_placement_to_cjson(&r->cfg.placements[p->placement]);
    cJSON_AddNumberToObject(o, "index", p->placement);
    cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    cJSON_AddNumberToObject(o, "seed_index", p->seed_index);
    cJSON_AddStringToObject(o, "status", "pending");
    lpl_count_add_to_cjson(o, &p->count);
    return o;
}

char *lpl_run_training_json(const lpl_run *r, int i)
{
    if (i < 0 || i >= r->n || !r->tr[i].result)
        return NULL;
    return cJSON_PrintUnformatted(r->tr[i].result);
}

/* ---------------------------------------------------------------- documents */

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v && v[0])
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *model_cjson(const lpl_run *r)
{
    const lpl_gpt2_config *mc = &r->model->cfg;
    cJSON *o = cJSON_CreateObject();
    add_str_or_null(o, "name", r->id.model_name);
    add_str_or_null(o, "path", r->id.model_path);
    add_str_or_null(o, "sha256", r->id.model_sha256);
    cJSON_AddNumberToObject(o, "file_bytes", (double)r->id.model_bytes);
    add_str_or_null(o, "matrix_type", r->id.matrix_type[0] ? r->id.matrix_type : lpl_dtype_name(r->model->wte.type));
    lpl_model_shape_add(o, mc, 1);
    return o;
}

/* The base-model dropout the trainings used: rates and where they came from. */
static cJSON *dataset_cjson(const char *path, const char *sha, int records, const lpl_example_set *s)
{
    cJSON *o = cJSON_CreateObject();
    add_str_or_null(o, "path", path);
    add_str_or_null(o, "sha256", sha);
    cJSON_AddNumberToObject(o, "records", records);
    cJSON_AddNumberToObject(o, "used", s->n);
    int64_t tokens = 0;
    for (int i = 0; i < s->n; i++)
        tokens += s->ex[i].T;
    cJSON_AddNumberToObject(o, "tokens", (double)tokens);
    cJSON_AddNumberToObject(o, "scored_tokens", (double)s->n_scored);
    cJSON_AddNumberToObject(o, "truncated", s->n_truncated);
    return o;
}

/* Aggregates of the numbers as results.json prints them, not of the doubles in memory:
 * cJSON prints 15 significant digits when they read back within an epsilon, so
 * anyone who recomputes the aggregates from the document (lpl_results_aggregate, e.g.
 * collect merging a grid's units) gets exactly these. */
static cJSON *aggregates_as_printed(const cJSON *pl)
{
    char *text = cJSON_PrintUnformatted(pl);
    cJSON *printed = text ? cJSON_Parse(text) : NULL;
    cJSON *agg = lpl_aggregates_cjson(printed ? printed : pl);
    cJSON_Delete(printed);
    free(text);
    return agg;
}

static cJSON *results_cjson(const lpl_run *r)
{
    cJSON *root = lpl_document_new("loralab-results");
    cJSON_AddItemToObject(root, "config", lpl_experiment_to_cjson(&r->cfg));
    cJSON_AddItemToObject(root, "model", model_cjson(r));
    cJSON_AddItemToObject(root, "base_dropout", lpl_base_dropout_cjson(r->cfg.base_dropout, &r->model->cfg));
    cJSON *data = cJSON_AddObjectToObject(root, "data");
    cJSON *tr = dataset_cjson(r->id.train_path, r->id.train_sha256, r->train_records, &r->train);
    cJSON_AddNumberToObject(tr, "skipped_unscored", r->train_skipped);
    cJSON_AddItemToObject(data, "train", tr);
    cJSON_AddItemToObject(data, "eval", dataset_cjson(r->id.eval_path, r->id.eval_sha256, r->eval_records, &r->eval));
    cJSON *env = lpl_environment_cjson();
    if (env && r->device_info)
        cJSON_AddItemToObject(env, "webgpu", cJSON_Duplicate(r->device_info, 1));
    /* where this session's eval passes ran, once any ran on the host (CPU-only runs
     * keep the environment they always had) */
    if (env && r->n_host_evals)
        cJSON_AddStringToObject(env, "eval_device", r->n_cpu_evals ? "mixed" : host_device(r));
    cJSON_AddItemToObject(root, "environment", env);
    cJSON *sched = cJSON_AddObjectToObject(root, "schedule");
    cJSON_AddNumberToObject(sched, "steps_per_epoch", r->steps_per_epoch);
    cJSON_AddNumberToObject(sched, "epochs", r->epochs);
    cJSON_AddNumberToObject(sched, "steps_per_training", r->total_steps);
    if (r->have_base_eval)
        cJSON_AddItemToObject(root, "base_eval", eval_point_cjson(r, &r->base_eval));
    else
        cJSON_AddNullToObject(root, "base_eval");
    cJSON_AddNumberToObject(root, "wall_seconds", lpl_now_seconds() - r->t0);
    cJSON_AddNumberToObject(root, "process_peak_memory_bytes", (double)lpl_peak_memory_bytes());
    cJSON *seeds = cJSON_AddArrayToObject(root, "seeds");
    for (int k = 0; k < r->cfg.seeds; k++)
        cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)(r->cfg.seed + (uint64_t)k)));
    cJSON *pl = cJSON_AddArrayToObject(root, "trainings");
    for (int i = 0; i < r->n; i++)
        cJSON_AddItemToArray(pl, training_cjson(r, i));
    cJSON_AddItemToObject(root, "aggregates", aggregates_as_printed(pl));
    return root;
}

char *lpl_run_results_json(const lpl_run *r)
{
    cJSON *root = results_cjson(r);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

/* ---------------------------------------------------------------- summary, CSV */

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static lpl_training_status status_of(const cJSON *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "status");
    const char *t = cJSON_IsString(v) ? v->valuestring : "";
    return !strcmp(t, "done") ? LPL_TRAINING_DONE : !strcmp(t, "failed") ? LPL_TRAINING_FAILED
           : !strcmp(t, "running") ? LPL_TRAINING_RUNNING : LPL_TRAINING_PENDING;
}

/* A table row from a training's result object (what lpl_run_summary and the CSV of a
 * results document both read). */
static void summary_from_cjson(const cJSON *o, lpl_training_summary *s)
{
    memset(s, 0, sizeof *s);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (cJSON_IsString(name))
        snprintf(s->name, sizeof s->name, "%s", name->valuestring);
    double seed = num(o, "seed");
    s->seed = isnan(seed) ? 0 : (uint64_t)seed;
    s->status = status_of(o);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
    if (cJSON_IsString(m))
        snprintf(s->message, sizeof s->message, "%s", m->valuestring);
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(o, "modules");
    if (cJSON_IsString(mods))
        snprintf(s->modules, sizeof s->modules, "%s", mods->valuestring);
    s->trainable = (int64_t)num(o, "trainable");
    s->total = (int64_t)num(o, "total");
    s->percent = num(o, "percent");
    s->reduction_pct = num(o, "reduction_pct");
    s->reduction_factor = num(o, "reduction_factor");
    s->vs_baseline_pct = num(o, "vs_baseline_pct");
    s->eval_loss_before = num(o, "eval_loss_before");
    s->eval_loss = num(o, "eval_loss");
    s->perplexity = num(o, "perplexity");
    s->mean_sample_perplexity = num(o, "mean_sample_perplexity");
    s->train_seconds = num(o, "train_seconds");
    s->tokens_per_s = num(o, "tokens_per_s");
    double pm = num(o, "process_peak_memory_bytes"), plm = num(o, "placement_memory_bytes");
    s->peak_memory_bytes = isnan(pm) ? 0 : (int64_t)pm;
    s->placement_memory_bytes = isnan(plm) ? 0 : (int64_t)plm;
    s->trainer_eval_loss = num(o, "trainer_eval_loss");
    s->drop_share_template = num(o, "drop_share_template");
    s->drop_share_response = num(o, "drop_share_response");
}

lpl_status lpl_run_summary(const lpl_run *r, int i, lpl_training_summary *s, lpl_error *err)
{
    if (i < 0 || i >= r->n)
        return lpl_fail(err, LPL_ERR_INVALID, "training index %d out of range", i);
    cJSON *o = training_cjson(r, i);
    if (!o)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: training summary");
    summary_from_cjson(o, s);
    snprintf(s->name, sizeof s->name, "%s", lpl_run_entry_name(r, i));
    s->seed = r->tr[i].seed;
    s->status = r->tr[i].status;
    cJSON_Delete(o);
    return LPL_OK;
}

/* Appends printf output to a growing buffer; returns 0 on no memory. */
typedef struct {
    char *s;
    size_t len, cap;
} strbuf;

static int sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return 0;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return 0;
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 1;
}

/* A number for CSV: empty when unknown. */
static void csv_num(strbuf *b, double v, const char *fmt)
{
    if (isnan(v))
        sb_printf(b, ",");
    else {
        sb_printf(b, ",");
        sb_printf(b, fmt, v);
    }
}

static void csv_header(strbuf *b)
{
    sb_printf(b, "placement,seed,status,eval_loss_before,eval_loss,perplexity,mean_sample_perplexity,"
                 "trainable_params,total_params,percent_trainable,train_seconds,tokens_per_s,"
                 "placement_memory_bytes,process_peak_memory_bytes,reduction_pct,vs_baseline_pct,trainer_eval_loss,"
                 "drop_share_template,drop_share_response,modules\n");
}

static void csv_row(strbuf *b, const lpl_training_summary *row)
{
    const lpl_training_summary s = *row;
    sb_printf(b, "%s,%llu,%s", s.name, (unsigned long long)s.seed, status_name(s.status));
    csv_num(b, s.eval_loss_before, "%.6f");
    csv_num(b, s.eval_loss, "%.6f");
    csv_num(b, s.perplexity, "%.6f");
    csv_num(b, s.mean_sample_perplexity, "%.6f");
    sb_printf(b, ",%lld,%lld", (long long)s.trainable, (long long)s.total);
    csv_num(b, s.percent, "%.4f");
    csv_num(b, s.status == LPL_TRAINING_PENDING ? NAN : s.train_seconds, "%.3f");
    csv_num(b, s.status == LPL_TRAINING_PENDING ? NAN : s.tokens_per_s, "%.1f");
    if (s.status == LPL_TRAINING_PENDING)
        sb_printf(b, ",,");
    else
        sb_printf(b, ",%lld,%lld", (long long)s.placement_memory_bytes, (long long)s.peak_memory_bytes);
    csv_num(b, s.reduction_pct, "%.4f");
    csv_num(b, s.vs_baseline_pct, "%.4f");
    csv_num(b, s.trainer_eval_loss, "%.6f");
    csv_num(b, s.drop_share_template, "%.6f");
    csv_num(b, s.drop_share_response, "%.6f");
    sb_printf(b, ",\"%s\"\n", s.modules);
}

char *lpl_run_results_csv(const lpl_run *r)
{
    strbuf b = {0};
    csv_header(&b);
    for (int i = 0; i < r->n; i++) {
        lpl_training_summary s;
        if (!lpl_run_summary(r, i, &s, NULL))
            csv_row(&b, &s);
    }
    return b.s;
}

/* The "trainings" list of a results document, parsed; NULL with err set if none. */
static cJSON *parse_results(const char *json, const cJSON **pls, lpl_error *err)
{
    cJSON *doc = cJSON_Parse(json);
    *pls = doc ? lpl_results_trainings(doc) : NULL;
    if (!doc || !*pls) {
        cJSON_Delete(doc);
        lpl_fail(err, LPL_ERR_FORMAT, "results document %s", doc ? "has no \"trainings\" list" : "is not valid JSON");
        return NULL;
    }
    return doc;
}

char *lpl_results_csv(const char *json, lpl_error *err)
{
    const cJSON *pls;
    cJSON *doc = parse_results(json, &pls, err);
    if (!doc)
        return NULL;
    strbuf b = {0};
    csv_header(&b);
    for (const cJSON *it = pls->child; it; it = it->next) {
        lpl_training_summary s;
        summary_from_cjson(it, &s);
        csv_row(&b, &s);
    }
    cJSON_Delete(doc);
    if (!b.s)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: results.csv");
    return b.s;
}

/* The steps.jsonl lines of one training's result object. */
static void steps_lines(strbuf *b, const cJSON *o, const char *name, int index, uint64_t seed, int steps_per_epoch)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "steps");
    const cJSON *loss = cJSON_GetObjectItemCaseSensitive(st, "loss");
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(st, "lr");
    const cJSON *gn = cJSON_GetObjectItemCaseSensitive(st, "grad_norm");
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(st, "tokens");
    int n = cJSON_GetArraySize(loss);
    for (int k = 0; k < n; k++) {
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "placement", name);
        cJSON_AddNumberToObject(line, "index", index);
        cJSON_AddNumberToObject(line, "seed", (double)seed);
        cJSON_AddNumberToObject(line, "step", k + 1);
        cJSON_AddNumberToObject(line, "epoch", k / steps_per_epoch + 1);
        cJSON_AddItemToObject(line, "loss", cJSON_Duplicate(cJSON_GetArrayItem(loss, k), 0));
        cJSON_AddItemToObject(line, "lr", cJSON_Duplicate(cJSON_GetArrayItem(lr, k), 0));
        cJSON_AddItemToObject(line, "grad_norm", cJSON_Duplicate(cJSON_GetArrayItem(gn, k), 0));
        cJSON_AddItemToObject(line, "tokens", cJSON_Duplicate(cJSON_GetArrayItem(tk, k), 0));
        char *s = cJSON_PrintUnformatted(line);
        if (s)
            sb_printf(b, "%s\n", s);
        free(s);
        cJSON_Delete(line);
    }
}

char *lpl_run_steps_jsonl(const lpl_run *r)
{
    strbuf b = {0};
    sb_printf(&b, "%s", "");
    for (int i = 0; i < r->n; i++) {
        cJSON *o = training_cjson(r, i);
        steps_lines(&b, o, lpl_run_entry_name(r, i), r->tr[i].placement, r->tr[i].seed, r->steps_per_epoch);
        cJSON_Delete(o);
    }
    return b.s;
}

char *lpl_results_steps_jsonl(const char *json, lpl_error *err)
{
    const cJSON *pls;
    cJSON *doc = parse_results(json, &pls, err);
    if (!doc)
        return NULL;
    const cJSON *sched = cJSON_GetObjectItemCaseSensitive(doc, "schedule");
    double spe = num(sched, "steps_per_epoch");
    strbuf b = {0};
    sb_printf(&b, "%s", "");
    for (const cJSON *it = pls->child; it; it = it->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        double index = num(it, "index"), seed = num(it, "seed");
        steps_lines(&b, it, cJSON_IsString(name) ? name->valuestring : "", isnan(index) ? 0 : (int)index,
                    isnan(seed) ? 0 : (uint64_t)seed, isnan(spe) || spe < 1 ? 1 : (int)spe);
    }
    cJSON_Delete(doc);
    if (!b.s)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: steps.jsonl");
    return b.s;
}

/* ---------------------------------------------------------------- writing */

static lpl_status write_text(const char *dir, const char *name, char *text, lpl_error *err)
{
    if (!text)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: %s", name);
    char path[LPL_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lpl_status st = lpl_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}

lpl_status lpl_run_write_results(const lpl_run *r, const char *dir, lpl_error *err)
{
    lpl_status st = lpl_make_dirs(dir, err);
    if (!st)
        st = write_text(dir, "results.json", lpl_run_results_json(r), err);
    if (!st)
        st = write_text(dir, "results.csv", lpl_run_results_csv(r), err);
    return st;
}

/* Length of text without a torn last line (one without its newline, or not JSON). */
static size_t whole_lines(const char *text, size_t n)
{
    if (n == 0)
        return 0;
    size_t start = n - 1; /* start of the last line */
    while (start > 0 && text[start - 1] != '\n')
        start--;
    if (text[n - 1] != '\n')
        return start;
    cJSON *last = cJSON_ParseWithLength(text + start, n - start);
    int ok = cJSON_IsObject(last);
    cJSON_Delete(last);
    return ok ? n : start;
}

lpl_status lpl_run_sync_steps(const lpl_run *r, const char *dir, char **known, size_t *torn, lpl_error *err)
{
    char path[LPL_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/steps.jsonl", dir);
    char *want = lpl_run_steps_jsonl(r);
    if (!want)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: steps.jsonl");
    char *have = *known;
    size_t have_n = have ? strlen(have) : 0, torn_n = 0;
    lpl_error ignored;
    if (!have && lpl_read_file(path, &have, &have_n, &ignored) == LPL_OK) {
        size_t whole = whole_lines(have, have_n);
        torn_n = have_n - whole;
        have[have_n = whole] = '\0';
    }
    size_t want_n = strlen(want);
    lpl_status st;
    /* Append when the file holds whole lines that start what we want; rewrite when a
     * torn line must go or lines of a training that is to be re-run are there. */
    if (have && !torn_n && have_n <= want_n && !memcmp(have, want, have_n))
        st = lpl_append_lines(path, want + have_n, want_n - have_n, err);
    else
        st = lpl_write_file_atomic(path, want, want_n, err);
    free(have);
    *known = NULL;
    if (torn)
        *torn = torn_n;
    if (st) {
        free(want);
        return st;
    }
    *known = want;
    return LPL_OK;
}
