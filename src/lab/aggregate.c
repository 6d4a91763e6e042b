/* Seed aggregates of a results document: per placement and metric the mean, standard
 * deviation, 95% t-interval and the per-seed values, and paired differences against
 * the baseline matched by seed, with a one-line verdict. Built only from the
 * per-training objects of "trainings", so a run in one process and a grid collected
 * from many units get the same numbers (docs/RESULTS.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment_internal.h"
#include "lpl/lab/document.h"
#include "lpl/lab/stats.h"

#define LEVEL 0.95

/* Metrics aggregated over seeds, with the unit a verdict names. */
static const struct {
    const char *key, *unit;
} metrics[] = {
    {"eval_loss", "nats"},
    {"trainer_eval_loss", "nats"},
    {"perplexity", ""},
    {"mean_sample_perplexity", ""},
    {"eval_loss_template", "nats"},
    {"eval_loss_instruction", "nats"},
    {"eval_loss_input", "nats"},
    {"eval_loss_response", "nats"},
    {"drop_share_template", ""},
    {"drop_share_instruction", ""},
    {"drop_share_input", ""},
    {"drop_share_response", ""},
    {"train_seconds", "s"},
    {"tokens_per_s", "tokens/s"},
    {"placement_memory_bytes", "bytes"},
    {"process_peak_memory_bytes", "bytes"},
};
#define N_METRICS ((int)(sizeof metrics / sizeof metrics[0]))

static double num_or_nan(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str_or_null(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void add_num_or_null(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *number_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

static cJSON *summary_cjson(const lpl_stats_summary *s, const double *values, int n_values)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", s->n);
    add_num_or_null(o, "mean", s->mean);
    add_num_or_null(o, "std", s->std);
    if (isfinite(s->lo)) {
        cJSON *ci = cJSON_AddArrayToObject(o, "ci95");
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(s->lo));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(s->hi));
    } else {
        cJSON_AddNullToObject(o, "ci95");
    }
    cJSON_AddItemToObject(o, "values", number_array(values, n_values));
    return o;
}

/* The distinct seeds of done trainings, ascending. */
static int collect_seeds(const cJSON *pls, double *seeds, int cap)
{
    int n = 0;
    for (const cJSON *it = pls ? pls->child : NULL; it; it = it->next) {
        const char *status = str_or_null(it, "status");
        double s = num_or_nan(it, "seed");
        if (!status || strcmp(status, "done") || isnan(s))
            continue;
        int k = 0;
        while (k < n && seeds[k] < s)
            k++;
        if (k < n && seeds[k] == s)
            continue;
        if (n == cap)
            break;
        memmove(seeds + k + 1, seeds + k, (size_t)(n - k) * sizeof *seeds);
        seeds[k] = s;
        n++;
    }
    return n;
}

/* values[k] = metric of placement `name` at seeds[k] (NAN where that training is not done). */
static void metric_by_seed(const cJSON *pls, const char *name, const char *key, const double *seeds, int n_seeds,
                           double *values)
{
    for (int k = 0; k < n_seeds; k++)
        values[k] = NAN;
    for (const cJSON *it = pls->child; it; it = it->next) {
        const char *nm = str_or_null(it, "name"), *status = str_or_null(it, "status");
        if (!nm || strcmp(nm, name) || !status || strcmp(status, "done"))
            continue;
        double s = num_or_nan(it, "seed");
        for (int k = 0; k < n_seeds; k++)
            if (seeds[k] == s)
                values[k] = num_or_nan(it, key);
    }
}

/* Drops NANs, keeping the order. */
static int compact(const double *v, int n, double *out)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            out[m++] = v[i];
    return m;
}

static void verdict_text(char *buf, size_t size, const char *name, const char *baseline, const char *unit,
                         const lpl_stats_summary *d)
{
    char interval[96] = "";
    if (isfinite(d->lo))
        snprintf(interval, sizeof interval, " [%.3f, %.3f]", d->lo, d->hi);
    const char *sp = unit[0] ? " " : "";
    if (lpl_stats_resolved(d))
        snprintf(buf, size, "%s \xe2\x88\x92 %s: %+.3f%s%s%s, resolved", name, baseline, d->mean, sp, unit, interval);
    else
        snprintf(buf, size, "%s \xe2\x88\x92 %s: %+.3f%s%s%s, unresolved at %d seed%s", name, baseline, d->mean, sp,
                 unit, interval, d->n, d->n == 1 ? "" : "s");
}

static cJSON *placement_aggregate(const cJSON *pls, const char *name, int index, const char *baseline,
                                  const double *seeds, int n_seeds, double *buf)
{
    double *values = buf, *base = buf + n_seeds, *dense = buf + 2 * n_seeds;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "index", index);
    metric_by_seed(pls, name, "eval_loss", seeds, n_seeds, values);
    int m = 0;
    for (int k = 0; k < n_seeds; k++)
        if (!isnan(values[k]))
            dense[m++] = seeds[k];
    cJSON_AddItemToObject(o, "seeds", number_array(dense, m));
    cJSON *ms = cJSON_AddObjectToObject(o, "metrics");
    int is_base = !strcmp(name, baseline);
    cJSON *paired = is_base ? NULL : cJSON_CreateObject();
    if (paired)
        cJSON_AddStringToObject(paired, "against", baseline);
    char verdict[256] = "";
    for (int j = 0; j < N_METRICS; j++) {
        metric_by_seed(pls, name, metrics[j].key, seeds, n_seeds, values);
        int n = compact(values, n_seeds, dense);
        if (n == 0)
            continue;
        lpl_stats_summary s;
        lpl_stats_summarize(dense, n, LEVEL, &s);
        cJSON_AddItemToObject(ms, metrics[j].key, summary_cjson(&s, dense, n));
        if (!paired)
            continue;
        metric_by_seed(pls, baseline, metrics[j].key, seeds, n_seeds, base);
        lpl_stats_summary d;
        int nd = lpl_stats_paired(values, base, n_seeds, LEVEL, &d, dense);
        if (nd == 0)
            continue;
        cJSON *pd = summary_cjson(&d, dense, nd);
        cJSON_AddBoolToObject(pd, "resolved", lpl_stats_resolved(&d));
        cJSON_AddItemToObject(paired, metrics[j].key, pd);
        if (!strcmp(metrics[j].key, "eval_loss"))
            verdict_text(verdict, sizeof verdict, name, baseline, metrics[j].unit, &d);
    }
    if (paired)
        cJSON_AddItemToObject(o, "paired", paired);
    else
        cJSON_AddNullToObject(o, "paired");
    if (verdict[0])
        cJSON_AddStringToObject(o, "verdict", verdict);
    else
        cJSON_AddNullToObject(o, "verdict");
    return o;
}

/* The placement the others are compared with: the one named "baseline", else the first. */
static const char *baseline_name(const cJSON *pls)
{
    const char *first = NULL;
    for (const cJSON *it = pls->child; it; it = it->next) {
        const char *nm = str_or_null(it, "name");
        if (nm && !strcmp(nm, "baseline"))
            return nm;
        if (nm && !first)
            first = nm;
    }
    return first;
}

cJSON *lpl_aggregates_cjson(const cJSON *pls)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "level", LEVEL);
    int cap = cJSON_GetArraySize(pls) + 1;
    double *seeds = malloc((size_t)cap * sizeof *seeds);
    double *buf = malloc((size_t)cap * 3 * sizeof *buf);
    const char *baseline = cJSON_IsArray(pls) ? baseline_name(pls) : NULL;
    if (!seeds || !buf || !baseline) {
        free(seeds);
        free(buf);
        cJSON_AddNullToObject(out, "baseline");
        cJSON_AddArrayToObject(out, "placements");
        return out;
    }
    int n_seeds = collect_seeds(pls, seeds, cap);
    cJSON_AddStringToObject(out, "baseline", baseline);
    cJSON_AddItemToObject(out, "seeds", number_array(seeds, n_seeds));
    cJSON *arr = cJSON_AddArrayToObject(out, "placements");
    int index = 0;
    for (const cJSON *it = pls->child; it; it = it->next) {
        const char *nm = str_or_null(it, "name");
        int seen = 0;
        for (const cJSON *b = pls->child; nm && b != it; b = b->next)
            seen |= str_or_null(b, "name") && !strcmp(str_or_null(b, "name"), nm);
        if (!nm || seen)
            continue;
        cJSON_AddItemToArray(arr, placement_aggregate(pls, nm, index++, baseline, seeds, n_seeds, buf));
    }
    free(seeds);
    free(buf);
    return out;
}

char *lpl_results_aggregate(const char *results_json, lpl_error *err)
{
    cJSON *root = cJSON_Parse(results_json);
    if (!root) {
        lpl_fail(err, LPL_ERR_FORMAT, "results: not valid JSON");
        return NULL;
    }
    const cJSON *pls = lpl_results_trainings(root);
    if (!pls) {
        cJSON_Delete(root);
        lpl_fail(err, LPL_ERR_FORMAT, "results: no \"trainings\" list");
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "aggregates");
    cJSON_AddItemToObject(root, "aggregates", lpl_aggregates_cjson(pls));
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        lpl_fail(err, LPL_ERR_NOMEM, "out of memory: results document");
    return s;
}
