/* Hosted training steps (lpl_run_host_*): a host that computes each step on the CPU
 * with its own state, adapters and optimizer, from nothing but what the hooks hand out
 * (examples, weights, dropout keys, lr, AdamW settings), must reproduce a normal run
 * bit for bit: losses, grad norms and eval losses. With hosted evals the host also runs
 * the eval passes (per-token losses back to the run, adapters written back only at
 * each training's end), and every eval number must still be the CPU run's. That checks
 * the hooks independently of any GPU engine, which drives the same hooks from the
 * worker. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "tiny_fixture.h"
#include "lpl/io/model_io.h"
#include "lpl/lab/experiment.h"

typedef tiny_fixture fixture;

static int fixture_init(fixture *f)
{
    lpl_error err;
    lpl_error_clear(&err);
    int ok = tiny_fixture_init(f, "test_run_host", LPL_Q8_0, &err) == LPL_OK;
    CHECK(ok, "tiny fixture: %s", err.msg);
    /* the first eval records share the prompt template over the first 64 tokens; a record
     * with an input differs inside them, so per-example eval numbers differ too */
    if (f->eval.n > 6) {
        lpl_alpaca_record t = f->eval.records[1];
        f->eval.records[1] = f->eval.records[6];
        f->eval.records[6] = t;
    }
    return ok;
}

static void config(lpl_experiment_config *c, int batch)
{
    tiny_fixture_config(c);
    c->n_train = 5;
    c->max_len = 64;        /* the model's context: the eval examples differ (fixture_init) */
    c->dropout = 0.1f;      /* LoRA dropout and base dropout on: the keys must match */
    c->base_dropout = 0.1f;
    c->batch_size = batch;  /* 2 over 5 examples: a short last batch */
    c->seeds = 2;
}

/* With_init: training 1 starts from saved adapters (lpl_run_set_init, B nonzero), so its
 * eval before training is a pass of its own, with those adapters. */
static int with_init;

static void set_init(lpl_run *r, fixture *f)
{
    if (!with_init)
        return;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_lora *l = lpl_lora_attach(lpl_run_lora_config(r, 1), &f->model->cfg, &err);
    CHECK(l != NULL, "init lora: %s", err.msg);
    if (!l)
        return;
    for (int64_t k = 0; k < l->n_params; k++)
        l->params[k] = 0.02f * sinf((float)k * 0.7f);
    CHECK(lpl_run_set_init(r, 1, l->params, l->n_params, &err) == LPL_OK, "set init: %s", err.msg);
    lpl_lora_free(l);
}

/* A run of c over the fixture, with its saved adapters when with_init; NULL (a failed
 * check) when it cannot start. */
static lpl_run *new_run(const lpl_experiment_config *c, fixture *f, lpl_error *err)
{
    lpl_error_clear(err);
    lpl_run *r = lpl_run_new(c, f->model, f->tok, &f->train, &f->eval, NULL, err);
    CHECK(r != NULL, "run: %s", err->msg);
    if (r)
        set_init(r, f);
    return r;
}

static char *run_cpu(const lpl_experiment_config *c, fixture *f)
{
    lpl_error err;
    lpl_run *r = new_run(c, f, &err);
    if (!r)
        return NULL;
    int rc;
    while ((rc = lpl_run_step(r, &err)) > 0)
        free(lpl_run_take_events(r));
    CHECK(rc == 0, "cpu run: %s", err.msg);
    char *js = lpl_run_results_json(r);
    lpl_run_free(r);
    return js;
}

/* The host's eval pass: forward only over the eval set with its adapters (NULL: the
 * base model), per-token losses handed back. */
static int host_eval(lpl_run *r, fixture *f, lpl_gpt2_state *st, lpl_lora *lora, const lpl_run_host_step *s,
                     lpl_error *err)
{
    float *nll = malloc((size_t)(s->eval_scored > 0 ? s->eval_scored : 1) * sizeof(float));
    int64_t off = 0;
    lpl_gpt2_state_set_compute(st, s->compute);
    for (int i = 0; i < s->eval_set->n && nll; i++) {
        const lpl_example *e = &s->eval_set->ex[i];
        lpl_loss l;
        CHECK(lpl_gpt2_forward(f->model, lora, st, e->tokens, e->targets, e->mask, e->T, 0, &l, err) == LPL_OK,
              "eval forward: %s", err->msg);
        CHECK(off + l.n_scored <= s->eval_scored, "eval: %lld scored tokens handed out, more computed",
              (long long)s->eval_scored);
        if (off + l.n_scored <= s->eval_scored)
            memcpy(nll + off, lpl_gpt2_token_nll(st), (size_t)l.n_scored * sizeof(float));
        off += l.n_scored;
    }
    CHECK(off == s->eval_scored, "eval: %lld scored tokens computed, %lld handed out", (long long)off,
          (long long)s->eval_scored);
    int want = lpl_run_host_record_eval(r, nll, off, err);
    free(nll);
    return want;
}

/* The host: its own state, adapters and AdamW; only the hooks' data. With evals, it
 * runs the eval passes too (lpl_run_host_evals). */
static char *run_hosted(const lpl_experiment_config *c, fixture *f, int evals, int *n_steps, int *n_evals)
{
    lpl_error err;
    lpl_run *r = new_run(c, f, &err);
    if (!r)
        return NULL;
    lpl_gpt2_state *st = lpl_gpt2_state_new(f->model, c->max_len, 0, &err);
    lpl_lora *lora = NULL;
    lpl_adamw opt;
    memset(&opt, 0, sizeof opt);
    float *accum = NULL;
    lpl_run_host_step s;
    int rc;
    int host_training = -1; /* whose adapters `lora` holds */
    *n_steps = *n_evals = 0;
    lpl_run_host_evals(r, evals);
    while ((rc = lpl_run_host_next(r, &s, &err)) > 0) {
        free(lpl_run_take_events(r));
        if (rc == 2 || s.first_step) {
            CHECK(evals || rc == 1, "an eval handed out without hosted evals");
            CHECK(rc == 1 || s.eval_set == lpl_run_eval_set(r), "the eval set is the run's");
        }
        if (rc == 2 && s.training != host_training && s.training >= 0) {
            /* an eval before the training's first step: its initial adapters */
            lpl_lora_free(lora);
            lora = lpl_lora_attach(&s.lora->cfg, &f->model->cfg, &err);
            CHECK(lora && lora->n_params == s.lora->n_params, "host lora: %s", err.msg);
            memcpy(lora->params, s.lora->params, (size_t)lora->n_params * sizeof(float));
            host_training = s.training;
        }
        if (rc == 2) {
            (*n_evals)++;
            int want = host_eval(r, f, st, s.training >= 0 ? lora : NULL, &s, &err);
            CHECK(want >= 0, "record eval: %s", err.msg);
            CHECK(want == 0 || (s.training >= 0 && s.step == s.total_steps), "adapters wanted only at the end");
            if (want == 1)
                CHECK(lpl_run_host_set_adapters(r, lora->params, lora->n_params, &err) == LPL_OK, "set: %s", err.msg);
            continue;
        }
        if (s.first_step) {
            lpl_lora_free(lora);
            lpl_adamw_free(&opt);
            free(accum);
            lora = lpl_lora_attach(&s.lora->cfg, &f->model->cfg, &err);
            CHECK(lora && lora->n_params == s.lora->n_params, "host lora: %s", err.msg);
            memcpy(lora->params, s.lora->params, (size_t)lora->n_params * sizeof(float));
            lpl_adamw_init(&opt, &s.adamw, lora->n_params, &err);
            accum = calloc((size_t)lora->n_params, sizeof(float));
            lpl_gpt2_state_set_compute(st, s.compute);
            lpl_gpt2_state_set_dropout(st, &s.base_dropout, 0, &err);
            host_training = s.training;
        }
        int64_t np = lora->n_params;
        double nll = 0;
        int scored = 0, tokens = 0;
        memset(accum, 0, (size_t)np * sizeof(float));
        for (int k = 0; k < s.n_examples; k++) {
            const lpl_example *e = s.ex[k];
            memset(lora->grads, 0, (size_t)np * sizeof(float));
            lpl_gpt2_state_use_dropout_key(st, s.base_key[k]);
            lora->rng_state = s.lora_key[k];
            lpl_loss l;
            CHECK(lpl_gpt2_forward(f->model, lora, st, e->tokens, e->targets, e->mask, e->T, 1, &l, &err) == LPL_OK,
                  "forward: %s", err.msg);
            CHECK(lpl_gpt2_backward(f->model, lora, st, &err) == LPL_OK, "backward: %s", err.msg);
            nll += l.nll_sum;
            scored += l.n_scored;
            tokens += e->T;
            if (s.n_examples > 1)
                for (int64_t j = 0; j < np; j++)
                    accum[j] += s.weight[k] * lora->grads[j];
        }
        if (s.n_examples > 1)
            memcpy(lora->grads, accum, (size_t)np * sizeof(float));
        float loss = scored ? (float)(nll / scored) : 0.0f;
        double gnorm = lpl_clip_grad_norm(lora->grads, np, s.grad_clip);
        lpl_adamw_step(&opt, lora->params, lora->grads, s.lr);
        (*n_steps)++;
        int want = lpl_run_host_record(r, loss, gnorm, tokens, &err);
        CHECK(want >= 0, "record: %s", err.msg);
        CHECK(!evals || want == 0, "hosted evals: a step never asks for the adapters (the last eval does)");
        if (want == 1)
            CHECK(lpl_run_host_set_adapters(r, lora->params, np, &err) == LPL_OK, "set: %s", err.msg);
    }
    CHECK(rc == 0, "hosted run: %s", err.msg);
    char *js = lpl_run_results_json(r);
    lpl_lora_free(lora);
    lpl_adamw_free(&opt);
    free(accum);
    lpl_gpt2_state_free(st);
    lpl_run_free(r);
    return js;
}

/* Every number of an eval point, equal to the bit (roles included); the values compared. */
static int same_eval_point(const cJSON *a, const cJSON *b, const char *what, int training)
{
    const char *keys[] = {"epoch", "step", "eval_loss", "perplexity", "mean_sample_perplexity", "nll_sum",
                          "n_tokens", "n_samples", "trainer_eval_loss"};
    int n = 0;
    CHECK(cJSON_IsObject(a) && cJSON_IsObject(b), "%s training %d: eval points", what, training);
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const cJSON *x = cJSON_GetObjectItem(a, keys[k]), *y = cJSON_GetObjectItem(b, keys[k]);
        CHECK(cJSON_IsNumber(x) && cJSON_IsNumber(y) && x->valuedouble == y->valuedouble,
              "%s training %d eval %s: cpu %.17g, hosted %.17g", what, training, keys[k],
              x ? x->valuedouble : NAN, y ? y->valuedouble : NAN);
        n++;
    }
    const cJSON *ra = cJSON_GetObjectItem(a, "roles"), *rb = cJSON_GetObjectItem(b, "roles");
    for (const cJSON *x = ra ? ra->child : NULL; x; x = x->next) {
        const cJSON *y = cJSON_GetObjectItem(rb, x->string);
        double xa = cJSON_GetObjectItem(x, "nll_sum")->valuedouble;
        const cJSON *yn = cJSON_GetObjectItem(y, "nll_sum");
        CHECK(yn && xa == yn->valuedouble, "%s training %d role %s nll_sum", what, training, x->string);
        n++;
    }
    return n;
}

/* Exact equality of every training's step losses, grad norms, lrs and eval points. */
static void compare(const char *a, const char *b, const char *what)
{
    cJSON *ra = cJSON_Parse(a), *rb = cJSON_Parse(b);
    const cJSON *pa = cJSON_GetObjectItem(ra, "trainings"), *pb = cJSON_GetObjectItem(rb, "trainings");
    CHECK(cJSON_GetArraySize(pa) == 4 && cJSON_GetArraySize(pb) == 4, "%s: 4 trainings each", what);
    int compared = 0;
    for (int i = 0; i < cJSON_GetArraySize(pa) && i < cJSON_GetArraySize(pb); i++) {
        const cJSON *xa = cJSON_GetArrayItem(pa, i), *xb = cJSON_GetArrayItem(pb, i);
        const char *curves[] = {"loss", "grad_norm", "lr"};
        for (int c = 0; c < 3; c++) {
            const cJSON *ca = cJSON_GetObjectItem(cJSON_GetObjectItem(xa, "steps"), curves[c]);
            const cJSON *cb = cJSON_GetObjectItem(cJSON_GetObjectItem(xb, "steps"), curves[c]);
            CHECK(cJSON_GetArraySize(ca) > 0 && cJSON_GetArraySize(ca) == cJSON_GetArraySize(cb),
                  "%s training %d %s: %d vs %d steps", what, i, curves[c], cJSON_GetArraySize(ca),
                  cJSON_GetArraySize(cb));
            for (int k = 0; k < cJSON_GetArraySize(ca) && k < cJSON_GetArraySize(cb); k++) {
                double va = cJSON_GetArrayItem(ca, k)->valuedouble, vb = cJSON_GetArrayItem(cb, k)->valuedouble;
                CHECK(va == vb, "%s training %d %s[%d]: cpu %.9g, hosted %.9g", what, i, curves[c], k, va, vb);
                compared++;
            }
        }
        double ea = cJSON_GetObjectItem(xa, "eval_loss")->valuedouble;
        double eb = cJSON_GetObjectItem(xb, "eval_loss")->valuedouble;
        CHECK(ea == eb && isfinite(ea), "%s training %d eval_loss: cpu %.9g, hosted %.9g", what, i, ea, eb);
        const cJSON *va = cJSON_GetObjectItem(xa, "evals"), *vb = cJSON_GetObjectItem(xb, "evals");
        CHECK(cJSON_GetArraySize(va) == 3 && cJSON_GetArraySize(vb) == 3, "%s training %d: %d and %d eval points",
              what, i, cJSON_GetArraySize(va), cJSON_GetArraySize(vb));
        for (int k = 0; k < cJSON_GetArraySize(va) && k < cJSON_GetArraySize(vb); k++)
            compared += same_eval_point(cJSON_GetArrayItem(va, k), cJSON_GetArrayItem(vb, k), what, i);
    }
    compared += same_eval_point(cJSON_GetObjectItem(ra, "base_eval"), cJSON_GetObjectItem(rb, "base_eval"), what, -1);
    CHECK(compared > 20, "%s: %d values compared", what, compared);
    cJSON_Delete(ra);
    cJSON_Delete(rb);
}

static void test_same_as_cpu(fixture *f, int batch)
{
    lpl_experiment_config c;
    config(&c, batch);
    char *a = run_cpu(&c, f);
    for (int evals = 0; evals < 2; evals++) {
        int n = 0, ne = 0;
        char *b = run_hosted(&c, f, evals, &n, &ne);
        CHECK(n == 2 * 2 * 2 * ((5 + batch - 1) / batch), "batch %d: hosted steps %d", batch, n);
        /* the base model's eval, then one per epoch for each of the 4 trainings (and one
         * before training for the one with saved adapters) */
        CHECK(ne == (evals ? 1 + 4 * 2 + with_init : 0), "batch %d: %d hosted evals", batch, ne);
        char what[48];
        snprintf(what, sizeof what, "batch %d%s%s", batch, evals ? ", hosted evals" : "", with_init ? ", init" : "");
        if (a && b)
            compare(a, b, what);
        cJSON *rb = b ? cJSON_Parse(b) : NULL;
        const cJSON *dev = cJSON_GetObjectItem(cJSON_GetObjectItem(rb, "environment"), "eval_device");
        const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(rb, "trainings"), 0);
        const cJSON *d0 = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(p0, "evals"), 1), "device");
        if (evals)
            CHECK(cJSON_IsString(dev) && !strcmp(dev->valuestring, "cpu") && cJSON_IsString(d0),
                  "%s: environment.eval_device and the eval points' device", what);
        else
            CHECK(!dev && !d0, "%s: CPU evals leave the results as they were", what);
        cJSON_Delete(rb);
        free(b);
    }
    free(a);
}

/* Misuse gets a message: recording without a step, skipping the write-back. */
static void test_protocol(fixture *f)
{
    lpl_experiment_config c;
    config(&c, 5);
    c.epochs = 1;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_run *r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    CHECK(lpl_run_host_record(r, 1.0f, 1.0, 10, &err) == -1 && strstr(err.msg, "no step is pending"), "%s", err.msg);
    lpl_run_host_step s;
    CHECK(lpl_run_host_next(r, &s, &err) == 1 && s.first_step && s.n_examples == 5, "first step");
    CHECK(lpl_run_host_next(r, &s, &err) == -1 && strstr(err.msg, "not recorded"), "%s", err.msg);
    CHECK(lpl_run_host_record(r, 3.0f, 1.0, 10, &err) == 1, "last step of the epoch wants adapters");
    CHECK(lpl_run_host_next(r, &s, &err) == -1 && strstr(err.msg, "lpl_run_host_set_adapters"), "%s", err.msg);
    float one = 0;
    CHECK(lpl_run_host_set_adapters(r, &one, 1, &err) == LPL_ERR_INVALID && strstr(err.msg, "params given"), "%s",
          err.msg);
    lpl_run_free(r);

    /* hosted evals: the base eval comes first; a wrong count and a skipped record are refused */
    r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    lpl_run_host_evals(r, 1);
    CHECK(lpl_run_host_record_eval(r, &one, 1, &err) == -1 && strstr(err.msg, "no eval pass is pending"), "%s",
          err.msg);
    CHECK(lpl_run_host_next(r, &s, &err) == 2 && s.training == -1 && !s.lora && s.eval_scored > 0,
          "the base model's eval first");
    CHECK(lpl_run_host_next(r, &s, &err) == -1 && strstr(err.msg, "lpl_run_host_record_eval"), "%s", err.msg);
    CHECK(lpl_run_host_record_eval(r, &one, 1, &err) == -1 && strstr(err.msg, "scored tokens"), "%s", err.msg);
    float *nan = malloc((size_t)s.eval_scored * sizeof(float));
    for (int64_t k = 0; k < s.eval_scored; k++)
        nan[k] = k ? 1.0f : NAN;
    /* a non-finite base eval is fatal, as on the CPU (no training to fail) */
    CHECK(lpl_run_host_record_eval(r, nan, s.eval_scored, &err) == -1 && strstr(err.msg, "not finite"), "%s",
          err.msg);
    CHECK(lpl_run_finished(r), "the run ended");
    free(nan);
    lpl_run_free(r);
}

int main(void)
{
    fixture f;
    if (fixture_init(&f)) {
        test_same_as_cpu(&f, 1);
        test_same_as_cpu(&f, 2);
        with_init = 1;
        test_same_as_cpu(&f, 1);
        with_init = 0;
        test_protocol(&f);
    }
    tiny_fixture_free(&f);
    return check_report("run_host");
}
