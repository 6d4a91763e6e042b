/* Experiment config, accounting, the sliced run, resume and results documents. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "tiny_fixture.h"
#include "lpl/lab/experiment.h"
#include "lpl/lab/report.h"
#include "lpl/core/kernels.h"
#include "lpl/io/model_io.h"
#include "tiny_model.h"

/* realloc that fails on request (test_event_oom): every realloc of the process, the
 * run's event queue and cJSON's printer among them, goes through it. Not under
 * AddressSanitizer, which has its own realloc. */
#if defined(__SANITIZE_ADDRESS__)
#define LPL_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LPL_UNDER_ASAN 1
#endif
#endif
#if defined(__GLIBC__) && !defined(LPL_UNDER_ASAN)
#define LPL_FAIL_REALLOC 1
extern void *__libc_realloc(void *p, size_t n);
static int fail_realloc;
void *realloc(void *p, size_t n) { return fail_realloc && n ? NULL : __libc_realloc(p, n); }
#endif

/* ---------------------------------------------------------------- sha256 */

static void test_sha256(void)
{
    char hex[65];
    lpl_sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "empty: %s", hex);
    lpl_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "abc: %s", hex);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    lpl_sha256_hex(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "448 bits: %s", hex);
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    lpl_sha256_hex(a, 1000000, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hex);
    /* the streamed file version agrees, across its 64 KiB read boundary */
    const char *path = "build-test-sha.bin";
    lpl_error err;
    CHECK(lpl_write_file_atomic(path, a, 200003, &err) == LPL_OK, "%s", err.msg);
    char hex2[65], hex3[65];
    lpl_sha256_hex(a, 200003, hex2);
    CHECK(lpl_sha256_file(path, hex3, &err) == LPL_OK && !strcmp(hex2, hex3), "file hash %s vs %s", hex3, hex2);
    remove(path);
    CHECK(lpl_sha256_file("no/such/file", hex3, &err) == LPL_ERR_IO && strstr(err.msg, "no/such/file"), "%s", err.msg);
    free(a);
}

/* ---------------------------------------------------------------- config */

static void test_config(void)
{
    lpl_experiment_config c;
    lpl_experiment_default(&c);
    CHECK(c.r == 16 && c.alpha == 32 && fabsf(c.dropout - 0.1f) < 1e-7f && c.epochs == 3 && c.batch_size == 1,
          "study defaults");
    CHECK(c.lr == 2e-4f && c.schedule == LPL_SCHED_COSINE && c.n_train == 100 && c.n_eval == 20 && c.max_len == 0,
          "study defaults 2");
    /* max_len 0 fits the model: its context, at most 256; a number is kept */
    CHECK(lpl_experiment_max_len(0, 128) == 128 && lpl_experiment_max_len(0, 1024) == 256 &&
              lpl_experiment_max_len(40, 64) == 40, "max_len default fits the model");
    {
        lpl_experiment_config one = c;
        lpl_error e1;
        CHECK(lpl_experiment_parse_json("{\"max_len\": 1}", &one, &e1) == LPL_OK &&
                  lpl_experiment_check(&one, NULL, &e1) == LPL_ERR_INVALID && strstr(e1.msg, "max_len"),
              "max_len 1 refused: %s", e1.msg);
    }
    CHECK(c.n_placements == 3 && !strcmp(c.placements[0].name, "baseline") && !strcmp(c.placements[1].name, "ffn") &&
              !strcmp(c.placements[2].name, "attn"), "default placements");
    CHECK(c.placements[0].lora.n_targets == 3 && !strcmp(c.placements[0].lora.targets[1], "c_proj"), "baseline targets");

    const char *doc =
        "{\"model\": \"m.gguf\", \"n_train\": 10, \"n_eval\": 5, \"max_len\": 64, \"response_only\": true,"
        " \"r\": 8, \"alpha\": 16, \"dropout\": 0.05, \"rslora\": true, \"epochs\": 2, \"batch_size\": 4,"
        " \"lr\": 1e-3, \"schedule\": \"linear\", \"warmup_steps\": 3, \"weight_decay\": 0.01, \"grad_clip\": 0.5,"
        " \"seed\": 7, \"max_steps\": 11,"
        " \"placements\": [\"ffn\", {\"name\": \"custom\", \"target_modules\": [\"attn.c_attn\"], \"layers\": [0, 1]},"
        "   {\"name\": \"regex\", \"target_modules\": \".*\\\\.h\\\\.[0-3]\\\\.mlp\\\\.c_fc\"}]}";
    lpl_error err;
    lpl_error_clear(&err);
    CHECK(lpl_experiment_parse_json(doc, &c, &err) == LPL_OK, "parse: %s", err.msg);
    CHECK(!strcmp(c.model, "m.gguf") && c.n_train == 10 && c.n_eval == 5 && c.max_len == 64 && c.response_only,
          "parsed data fields");
    CHECK(c.r == 8 && c.alpha == 16 && c.dropout == 0.05f && c.rslora && c.epochs == 2 && c.batch_size == 4,
          "parsed lora fields");
    CHECK(c.lr == 1e-3f && c.schedule == LPL_SCHED_LINEAR && c.warmup_steps == 3 && c.weight_decay == 0.01f &&
              c.grad_clip == 0.5f && c.seed == 7 && c.max_steps == 11, "parsed training fields");
    CHECK(c.n_placements == 3 && !strcmp(c.placements[1].name, "custom") && c.placements[1].lora.n_layers == 2 &&
              c.placements[1].lora.layers[1] == 1, "custom placement");
    CHECK(!strcmp(c.placements[2].lora.regex, ".*\\.h\\.[0-3]\\.mlp\\.c_fc"), "regex placement: %s",
          c.placements[2].lora.regex);
    CHECK(!strcmp(c.train, "data/alpaca_train.json"), "absent keys keep their value");

    /* round trip through to_json */
    char *js = lpl_experiment_to_json(&c);
    lpl_experiment_config c2;
    lpl_experiment_default(&c2);
    CHECK(js && lpl_experiment_parse_json(js, &c2, &err) == LPL_OK, "reparse: %s", err.msg);
    char *js2 = lpl_experiment_to_json(&c2);
    CHECK(js && js2 && !strcmp(js, js2), "to_json round trip");
    CHECK(js && strstr(js, "\"lr\":\t0.001"), "lr printed short: %s", js ? js : "");
    free(js);
    free(js2);

    struct { const char *json; const char *expect; } bad[] = {
        {"{\"epochz\": 3}", "unknown key \"epochz\""},
        {"{\"r\": 1.5}", "\"r\" must be an integer"},
        {"{\"r\": \"16\"}", "\"r\" must be an integer"},
        {"{\"schedule\": \"cosinus\"}", "cosinus"},
        {"{\"placements\": [\"attention\"]}", "unknown placement preset 'attention'"},
        {"{\"placements\": []}", "\"placements\" is empty"},
        {"{\"placements\": [{\"name\": \"x\", \"target_modules\": 3}]}", "placements[0].target_modules"},
        {"{\"placements\": [{\"name\": \"a/b\", \"target_modules\": [\"c_fc\"]}]}", "placements[0].name"},
        {"{\"r\": 16,", "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lpl_experiment_default(&c2);
        lpl_error_clear(&err);
        lpl_status st = lpl_experiment_parse_json(bad[i].json, &c2, &err);
        CHECK(st != LPL_OK && strstr(err.msg, bad[i].expect), "%s -> '%s'", bad[i].json, err.msg);
    }

    lpl_placement p;
    CHECK(lpl_placement_parse("x=attn.c_attn,mlp.c_fc@0-2,5", &p, &err) == LPL_OK, "%s", err.msg);
    CHECK(!strcmp(p.name, "x") && p.lora.n_targets == 2 && p.lora.n_layers == 4 && p.lora.layers[3] == 5,
          "cli placement");
    CHECK(lpl_placement_parse("y=re:.*c_fc", &p, &err) == LPL_OK && !strcmp(p.lora.regex, ".*c_fc"), "cli regex");
    CHECK(lpl_placement_parse("z=c_fc@3-1", &p, &err) == LPL_ERR_INVALID && strstr(err.msg, "layers"), "%s", err.msg);

    lpl_experiment_default(&c2);
    c2.dropout = 1.0f;
    CHECK(lpl_experiment_check(&c2, NULL, &err) == LPL_ERR_INVALID && strstr(err.msg, "dropout"), "%s", err.msg);
    lpl_experiment_default(&c2);
    lpl_gpt2_config tc = tiny_config();
    c2.max_len = 512;
    CHECK(lpl_experiment_check(&c2, &tc, &err) == LPL_ERR_INVALID && strstr(err.msg, "context"), "%s", err.msg);
    lpl_experiment_default(&c2);
    c2.max_len = 64;
    lpl_placement_parse("far=c_fc@7", &c2.placements[0], &err);
    CHECK(lpl_experiment_check(&c2, &tc, &err) == LPL_ERR_INVALID && strstr(err.msg, "far"), "layer out of range: %s",
          err.msg);
}

/* ---------------------------------------------------------------- accounting */

static void test_count(void)
{
    lpl_experiment_config c;
    lpl_experiment_default(&c);
    lpl_gpt2_config mc;
    lpl_error err;
    CHECK(lpl_gpt2_preset("dialogpt-medium", &mc, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gpt2_param_count(&mc) == 354823168LL, "dialogpt-medium params %lld",
          (long long)lpl_gpt2_param_count(&mc));
    const int64_t want[3] = {6291456, 1966080, 4325376};
    const double pct[3] = {1.74, 0.55, 1.20};
    for (int i = 0; i < 3; i++) {
        lpl_placement_count cnt;
        CHECK(lpl_experiment_count(&c, &mc, i, &cnt, NULL, &err) == LPL_OK, "%s", err.msg);
        CHECK(cnt.trainable == want[i], "%s trainable %lld", cnt.name, (long long)cnt.trainable);
        CHECK(fabs(cnt.percent - pct[i]) < 0.005, "%s percent %.4f", cnt.name, cnt.percent);
        CHECK(cnt.total == 354823168LL + want[i], "%s total", cnt.name);
    }
    lpl_placement_count cnt;
    lpl_experiment_count(&c, &mc, 2, &cnt, NULL, &err);
    CHECK(strstr(cnt.modules, "24×mlp.c_proj") && strstr(cnt.modules, "24×attn.c_attn") && cnt.n_modules == 72,
          "attn modules: %s", cnt.modules);
    CHECK(fabs(cnt.vs_baseline_pct - 100.0 * (4325376.0 / 6291456.0 - 1)) < 1e-9, "vs baseline %.4f",
          cnt.vs_baseline_pct);
    lpl_experiment_count(&c, &mc, 1, &cnt, NULL, &err);
    CHECK(!strcmp(cnt.modules, "24×mlp.c_fc"), "ffn modules: %s", cnt.modules);

    /* exact paths: attention only = 24 * 16 * ((1024 + 3072) + (1024 + 1024)) */
    lpl_placement_preset("attn-exact", &c.placements[0], &err);
    lpl_placement_preset("mlp-exact", &c.placements[1], &err);
    lpl_placement_preset("all-linear", &c.placements[2], &err);
    const int64_t exact[3] = {2359296, 3932160, 6291456};
    for (int i = 0; i < 3; i++) {
        lpl_experiment_count(&c, &mc, i, &cnt, NULL, &err);
        CHECK(cnt.trainable == exact[i], "%s trainable %lld", cnt.name, (long long)cnt.trainable);
    }
    char *js = lpl_experiment_count_json(&c, &mc, &err);
    cJSON *arr = js ? cJSON_Parse(js) : NULL;
    CHECK(cJSON_GetArraySize(arr) == 3, "count json array");
    cJSON *first = cJSON_GetArrayItem(arr, 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(first, "selected")) == 48, "attn-exact selects 48 modules");
    cJSON_Delete(arr);
    free(js);
}

/* ---------------------------------------------------------------- runs */

typedef tiny_fixture fixture;

static int fixture_init(fixture *f)
{
    lpl_error err;
    lpl_error_clear(&err);
    CHECK(tiny_fixture_init(f, "test_experiment", LPL_F32, &err) == LPL_OK, "tiny fixture: %s", err.msg);
    return f->model && f->tok && f->train.n > 8 && f->eval.n > 4;
}

static void small_config(lpl_experiment_config *c)
{
    tiny_fixture_config(c);
    c->n_train = 4;
    c->max_len = 40;
    c->dropout = 0.0f;
    /* no base dropout either: checks below compare training losses with eval losses */
    c->base_dropout = 0.0f;
}

/* Runs to the end, returning the number of events of each type seen. */
typedef struct {
    int start, step, eval, done_p, failed_p, done, cancelled;
} event_counts;

static void count_events(lpl_run *r, event_counts *ec)
{
    char *s = lpl_run_take_events(r);
    cJSON *arr = cJSON_Parse(s);
    CHECK(cJSON_IsArray(arr), "events are a JSON array");
    for (cJSON *e = arr ? arr->child : NULL; e; e = e->next) {
        const char *t = cJSON_GetObjectItem(e, "type")->valuestring;
        /* one word per concept: a training's events name the training and its placement */
        if (!strcmp(t, "step") || !strcmp(t, "training_done") || !strcmp(t, "training_failed"))
            CHECK(cJSON_IsNumber(cJSON_GetObjectItem(e, "training")) &&
                      cJSON_IsNumber(cJSON_GetObjectItem(e, "placement_index")) &&
                      cJSON_IsString(cJSON_GetObjectItem(e, "placement")) && !cJSON_GetObjectItem(e, "run") &&
                      !cJSON_GetObjectItem(e, "index"),
                  "%s event: training, placement_index, placement (no run, no index)", t);
        ec->start += !strcmp(t, "start");
        ec->step += !strcmp(t, "step");
        ec->eval += !strcmp(t, "eval");
        ec->done_p += !strcmp(t, "training_done");
        ec->failed_p += !strcmp(t, "training_failed");
        if (!strcmp(t, "done")) {
            ec->done++;
            ec->cancelled += cJSON_IsTrue(cJSON_GetObjectItem(e, "cancelled"));
        }
    }
    cJSON_Delete(arr);
    free(s);
}

static int drive(lpl_run *r, event_counts *ec, int cancel_after_done)
{
    lpl_error err;
    lpl_error_clear(&err);
    int rc, guard = 0;
    while ((rc = lpl_run_step(r, &err)) > 0 && guard++ < 100000) {
        count_events(r, ec);
        if (cancel_after_done && lpl_run_n_completed(r) >= cancel_after_done)
            lpl_run_cancel(r);
    }
    count_events(r, ec);
    CHECK(rc == 0, "run ended with %d: %s", rc, err.msg);
    return rc;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_run(fixture *f)
{
    lpl_experiment_config c;
    small_config(&c);
    lpl_error err;
    lpl_error_clear(&err);
    lpl_run *r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    CHECK(r != NULL, "run_new: %s", err.msg);
    if (!r)
        return;
    event_counts ec = {0};
    drive(r, &ec, 0);
    /* 4 examples, batch 1: 4 steps per epoch, 2 epochs, 2 placements */
    CHECK(ec.start == 1 && ec.step == 16 && ec.done_p == 2 && ec.done == 1 && !ec.cancelled, "events %d %d %d %d",
          ec.start, ec.step, ec.done_p, ec.done);
    CHECK(ec.eval == 1 + 2 * 3, "eval events %d (base + per placement before + 2 epochs)", ec.eval);

    char *js = lpl_run_results_json(r);
    cJSON *root = cJSON_Parse(js);
    CHECK(root != NULL, "results.json parses");
    cJSON *pls = cJSON_GetObjectItem(root, "trainings");
    for (int i = 0; i < 2; i++) {
        cJSON *p = cJSON_GetArrayItem(pls, i);
        double before = jnum(p, "eval_loss_before"), after = jnum(p, "eval_loss");
        CHECK(!strcmp(cJSON_GetObjectItem(p, "status")->valuestring, "done"), "placement %d done", i);
        CHECK(after < before, "placement %d: eval loss %.5f after training, %.5f before", i, after, before);
        CHECK_CLOSE(jnum(p, "perplexity"), exp(after), 0, 1e-12, "perplexity == exp(eval loss)");
        cJSON *loss = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "steps"), "loss");
        cJSON *lr = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "steps"), "lr");
        CHECK(cJSON_GetArraySize(loss) == 8 && cJSON_GetArraySize(lr) == 8, "8 steps recorded");
        for (int k = 0; k < 8; k++) {
            float want = lpl_schedule_lr(LPL_SCHED_COSINE, c.lr, k, 0, 8);
            CHECK_CLOSE(cJSON_GetArrayItem(lr, k)->valuedouble, want, 0, 1e-6, "cosine lr per step");
        }
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(p, "evals")) == 3, "evals before + 2 epochs");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(p, "update_norms")) ==
                  (int)jnum(p, "n_modules"), "one update norm per module");
        CHECK(jnum(p, "tokens_per_s") > 0 && jnum(p, "train_seconds") > 0, "throughput recorded");
    }
    cJSON *p0 = cJSON_GetArrayItem(pls, 0);
    CHECK(jnum(p0, "n_modules") == 8 && jnum(cJSON_GetArrayItem(pls, 1), "n_modules") == 4, "modules per placement");
    CHECK(jnum(cJSON_GetObjectItem(root, "model"), "params") == (double)lpl_gpt2_param_count(&f->model->cfg),
          "model params in results");

    /* the final eval loss is the token-weighted loss of the trained adapter, recomputed here */
    const lpl_lora *l = lpl_run_adapter(r, 0);
    lpl_example_set ex;
    lpl_alpaca_set ev3 = {f->eval.records, 2};
    CHECK(lpl_examples_build(&ev3, f->tok, c.max_len, 0, &ex, &err) == LPL_OK, "%s", err.msg);
    double nll = 0, sum_ppl = 0;
    int64_t ntok = 0;
    lpl_gpt2_state *s = lpl_gpt2_state_new(f->model, c.max_len, 0, &err);
    for (int i = 0; i < ex.n; i++) {
        lpl_loss ls;
        lpl_gpt2_forward(f->model, (lpl_lora *)l, s, ex.ex[i].tokens, ex.ex[i].targets, ex.ex[i].mask, ex.ex[i].T, 0,
                         &ls, &err);
        nll += ls.nll_sum;
        ntok += ls.n_scored;
        sum_ppl += exp(ls.nll_sum / ls.n_scored);
    }
    CHECK_CLOSE(jnum(p0, "eval_loss"), nll / (double)ntok, 0, 1e-12, "eval loss = total NLL / total tokens");
    CHECK_CLOSE(jnum(p0, "mean_sample_perplexity"), sum_ppl / ex.n, 0, 1e-12, "mean of per-sample perplexities");
    lpl_gpt2_state_free(s);
    lpl_examples_free(&ex);

    /* summary (table) agrees with the CSV */
    char *csv = lpl_run_results_csv(r);
    lpl_training_summary sum;
    lpl_run_summary(r, 0, &sum, &err);
    char want[64];
    snprintf(want, sizeof want, "baseline,42,done,%.6f,%.6f,%.6f", sum.eval_loss_before, sum.eval_loss, sum.perplexity);
    CHECK(csv && strstr(csv, want), "csv has '%s'", want);
    char *steps = lpl_run_steps_jsonl(r);
    int lines = 0;
    for (char *q = steps; q && *q; q++)
        lines += *q == '\n';
    CHECK(lines == 16, "steps.jsonl has %d lines", lines);

    /* same seed, same losses */
    c.n_placements = 1;
    c.placements[0] = c.placements[1];
    lpl_run *r2 = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    event_counts ec2 = {0};
    drive(r2, &ec2, 0);
    lpl_training_summary s2;
    lpl_run_summary(r2, 0, &s2, &err);
    lpl_run_summary(r, 1, &sum, &err);
    CHECK(s2.eval_loss == sum.eval_loss, "deterministic: %.9g vs %.9g", s2.eval_loss, sum.eval_loss);
    lpl_run_free(r2);

    free(steps);
    free(csv);
    cJSON_Delete(root);
    free(js);
    lpl_run_free(r);
}

static void test_resume(fixture *f)
{
    lpl_experiment_config c;
    small_config(&c);
    c.epochs = 1;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_run_identity id = {0};
    snprintf(id.model_sha256, sizeof id.model_sha256, "%s", "abc123");
    snprintf(id.train_sha256, sizeof id.train_sha256, "%s", "feed01");
    lpl_run *r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, &id, &err);
    event_counts ec = {0};
    drive(r, &ec, 1);
    CHECK(ec.cancelled == 1 && ec.done_p == 1, "cancelled after the first placement");
    CHECK(lpl_run_training_status(r, 0) == LPL_TRAINING_DONE && lpl_run_training_status(r, 1) == LPL_TRAINING_PENDING,
          "first kept, second pending");
    char *saved = lpl_run_results_json(r);
    char *first = lpl_run_training_json(r, 0);

    lpl_run *r2 = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, &id, &err);
    CHECK(lpl_run_resume(r2, saved, &err) == LPL_OK, "resume: %s", err.msg);
    CHECK(lpl_run_n_completed(r2) == 1, "one placement taken from the saved run");
    event_counts ec2 = {0};
    drive(r2, &ec2, 0);
    CHECK(ec2.done_p == 1 && ec2.step == 4, "resume trains only the rest (%d placements, %d steps)", ec2.done_p,
          ec2.step);
    char *again = lpl_run_training_json(r2, 0);
    CHECK(first && again && !strcmp(first, again), "resumed placement kept verbatim");
    CHECK(lpl_run_training_status(r2, 1) == LPL_TRAINING_DONE, "second placement done after resume");

    /* a different config is refused, naming the field */
    c.r = 8;
    lpl_run *r3 = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, &id, &err);
    CHECK(lpl_run_resume(r3, saved, &err) == LPL_ERR_INVALID && strstr(err.msg, "\"r\""), "%s", err.msg);
    c.r = 4;
    lpl_run_identity other = id;
    snprintf(other.model_sha256, sizeof other.model_sha256, "%s", "def456");
    lpl_run *r4 = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, &other, &err);
    CHECK(lpl_run_resume(r4, saved, &err) == LPL_ERR_INVALID && strstr(err.msg, "model"), "%s", err.msg);
    /* so is other training data (what the page's resume relies on: same file name, new content) */
    lpl_run_identity other_data = id;
    snprintf(other_data.train_sha256, sizeof other_data.train_sha256, "%s", "beef02");
    lpl_run *r5 = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, &other_data, &err);
    CHECK(lpl_run_resume(r5, saved, &err) == LPL_ERR_INVALID && strstr(err.msg, "other train data (sha256 feed01"),
          "%s", err.msg);
    lpl_run_free(r3);
    lpl_run_free(r4);
    lpl_run_free(r5);
    free(first);
    free(again);
    free(saved);
    lpl_run_free(r2);
    lpl_run_free(r);
}

/* A results document as written before issue 25: its trainings under "placements". */
static char *old_format(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    cJSON *t = cJSON_DetachItemFromObjectCaseSensitive(doc, "trainings");
    CHECK(t && cJSON_IsArray(t) && !cJSON_GetObjectItem(doc, "placements"), "new files: \"trainings\" only");
    cJSON_AddItemToObject(doc, "placements", t);
    char *out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return out;
}

/* Old results.json files stay readable: resume, the CSV and steps made from a
 * document, the aggregates and the report check read their "placements" list as the
 * trainings, and what is written from them uses the new key. */
static void test_old_results(fixture *f)
{
    lpl_experiment_config c;
    small_config(&c);
    c.epochs = 1;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_run *r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    event_counts ec = {0};
    drive(r, &ec, 1);
    char *now = lpl_run_results_json(r), *old = old_format(now);
    char *first = lpl_run_training_json(r, 0);

    lpl_run *r2 = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    CHECK(lpl_run_resume(r2, old, &err) == LPL_OK, "resume from an old file: %s", err.msg);
    CHECK(lpl_run_n_completed(r2) == 1 && lpl_run_training_status(r2, 0) == LPL_TRAINING_DONE &&
              lpl_run_training_status(r2, 1) == LPL_TRAINING_PENDING,
          "the old file's done training taken, the other pending");
    char *again = lpl_run_training_json(r2, 0);
    CHECK(first && again && !strcmp(first, again), "the old file's training kept verbatim");

    char *csv_now = lpl_results_csv(now, &err), *csv_old = lpl_results_csv(old, &err);
    CHECK(csv_now && csv_old && !strcmp(csv_now, csv_old), "results.csv of an old file = of the new one: %s", err.msg);
    char *st_now = lpl_results_steps_jsonl(now, &err), *st_old = lpl_results_steps_jsonl(old, &err);
    CHECK(st_now && st_old && !strcmp(st_now, st_old) && strlen(st_now) > 0, "steps.jsonl of an old file: %s", err.msg);

    char *agg_now = lpl_results_aggregate(now, &err), *agg_old = lpl_results_aggregate(old, &err);
    cJSON *a_now = agg_now ? cJSON_Parse(agg_now) : NULL, *a_old = agg_old ? cJSON_Parse(agg_old) : NULL;
    CHECK(a_now && a_old, "aggregate an old file: %s", err.msg);
    if (a_now && a_old) {
        CHECK(cJSON_Compare(cJSON_GetObjectItem(a_now, "aggregates"), cJSON_GetObjectItem(a_old, "aggregates"), 1),
              "same aggregates from the old file");
        CHECK(cJSON_Compare(cJSON_GetObjectItem(a_now, "trainings"), cJSON_GetObjectItem(a_old, "trainings"), 1) &&
                  !cJSON_GetObjectItem(a_old, "placements"),
              "rewritten under \"trainings\", no top-level \"placements\" left");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(a_old, "config"), "placements")) == 2,
              "the config keeps its placements");
    }
    CHECK(lpl_report_check_results(old, strlen(old), &err) == LPL_OK, "report accepts an old file: %s", err.msg);
    CHECK(lpl_results_csv("{\"format\":\"loralab-results\"}", &err) == NULL && strstr(err.msg, "\"trainings\""),
          "neither key: %s", err.msg);

    cJSON_Delete(a_now);
    cJSON_Delete(a_old);
    free(agg_now);
    free(agg_old);
    free(st_now);
    free(st_old);
    free(csv_now);
    free(csv_old);
    free(again);
    free(first);
    free(old);
    free(now);
    lpl_run_free(r2);
    lpl_run_free(r);
}

/* Runs c to the end and returns its results document (parsed). */
static cJSON *run_to_doc(const lpl_experiment_config *c, fixture *f)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_run *r = lpl_run_new(c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    CHECK(r != NULL, "run_new: %s", err.msg);
    if (!r)
        return NULL;
    event_counts ec = {0};
    drive(r, &ec, 0);
    char *js = lpl_run_results_json(r);
    cJSON *doc = cJSON_Parse(js);
    free(js);
    lpl_run_free(r);
    return doc;
}

/* Two seeds in one process: trainings are seed-major, each seed's training is the one a
 * single-seed run with that seed gives, and the aggregates recomputed from separately
 * run seeds (what a grid's collect does) equal the one-process aggregates. */
static void test_seeds(fixture *f)
{
    lpl_experiment_config c;
    small_config(&c);
    c.epochs = 1;
    c.seeds = 2;
    cJSON *both = run_to_doc(&c, f);
    c.seeds = 1;
    cJSON *s42 = run_to_doc(&c, f);
    c.seed = 43;
    cJSON *s43 = run_to_doc(&c, f);
    if (!both || !s42 || !s43)
        goto done;
    cJSON *pls = cJSON_GetObjectItem(both, "trainings");
    CHECK(cJSON_GetArraySize(pls) == 4, "2 placements x 2 seeds = %d trainings", cJSON_GetArraySize(pls));
    const double want_seed[] = {42, 42, 43, 43};
    for (int i = 0; i < 4; i++) {
        cJSON *p = cJSON_GetArrayItem(pls, i);
        CHECK(jnum(p, "seed") == want_seed[i] && jnum(p, "index") == i % 2, "training %d: seed %g index %g", i,
              jnum(p, "seed"), jnum(p, "index"));
        cJSON *single = cJSON_GetArrayItem(cJSON_GetObjectItem(i < 2 ? s42 : s43, "trainings"), i % 2);
        CHECK(jnum(p, "eval_loss") == jnum(single, "eval_loss"), "training %d equals its single-seed run: %.9g vs %.9g",
              i, jnum(p, "eval_loss"), jnum(single, "eval_loss"));
    }
    CHECK(jnum(cJSON_GetArrayItem(pls, 0), "eval_loss") != jnum(cJSON_GetArrayItem(pls, 2), "eval_loss"),
          "the seed changes the result");

    /* collect: the per-seed documents' trainings in one list, aggregated again */
    cJSON *merged = cJSON_CreateObject();
    cJSON *mp = cJSON_AddArrayToObject(merged, "trainings");
    for (int k = 0; k < 2; k++) {
        cJSON *src = cJSON_GetObjectItem(k ? s43 : s42, "trainings");
        for (cJSON *it = src->child; it; it = it->next)
            cJSON_AddItemToArray(mp, cJSON_Duplicate(it, 1));
    }
    char *text = cJSON_PrintUnformatted(merged);
    lpl_error err;
    lpl_error_clear(&err);
    char *agg = lpl_results_aggregate(text, &err);
    cJSON *ad = agg ? cJSON_Parse(agg) : NULL;
    CHECK(ad != NULL, "aggregate: %s", err.msg);
    const cJSON *a1 = cJSON_GetObjectItem(cJSON_GetObjectItem(ad, "aggregates"), "placements");
    const cJSON *a2 = cJSON_GetObjectItem(cJSON_GetObjectItem(both, "aggregates"), "placements");
    CHECK(cJSON_GetArraySize(a1) == 2 && cJSON_GetArraySize(a2) == 2, "one aggregate per placement");
    for (int i = 0; i < 2; i++) {
        const cJSON *m1 = cJSON_GetObjectItem(cJSON_GetArrayItem(a1, i), "metrics");
        const cJSON *m2 = cJSON_GetObjectItem(cJSON_GetArrayItem(a2, i), "metrics");
        const cJSON *e1 = cJSON_GetObjectItem(m1, "eval_loss"), *e2 = cJSON_GetObjectItem(m2, "eval_loss");
        CHECK(cJSON_Compare(e1, e2, 1), "collected eval_loss aggregate of placement %d equals the one-process one", i);
        CHECK(jnum(e1, "n") == 2 && cJSON_GetArraySize(cJSON_GetObjectItem(e1, "ci95")) == 2, "2 seeds, an interval");
    }
    const cJSON *pd = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(a2, 1), "paired"), "eval_loss");
    cJSON *t0 = cJSON_GetArrayItem(pls, 0), *t1 = cJSON_GetArrayItem(pls, 1);
    cJSON *t2 = cJSON_GetArrayItem(pls, 2), *t3 = cJSON_GetArrayItem(pls, 3);
    double d0 = jnum(t1, "eval_loss") - jnum(t0, "eval_loss"), d1 = jnum(t3, "eval_loss") - jnum(t2, "eval_loss");
    CHECK_CLOSE(jnum(pd, "mean"), 0.5 * (d0 + d1), 1e-15, 1e-12, "paired mean = mean of per-seed differences");
    CHECK(lpl_results_aggregate("{\"trainings\": 3}", &err) == NULL && strstr(err.msg, "trainings"), "%s", err.msg);
    CHECK(lpl_results_aggregate("{", &err) == NULL && err.code == LPL_ERR_FORMAT, "%s", err.msg);
    cJSON_Delete(ad);
    free(agg);
    free(text);
    cJSON_Delete(merged);
done:
    cJSON_Delete(both);
    cJSON_Delete(s42);
    cJSON_Delete(s43);
}

static void test_failures(fixture *f)
{
    lpl_experiment_config c;
    small_config(&c);
    c.epochs = 1;
    c.lr = 1e30f;
    c.grad_clip = 0;
    lpl_error err;
    lpl_error_clear(&err);
    lpl_run *r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    event_counts ec = {0};
    drive(r, &ec, 0);
    CHECK(ec.failed_p == 2 && ec.done == 1, "both placements fail, the run finishes (%d failed)", ec.failed_p);
    lpl_training_summary s;
    lpl_run_summary(r, 1, &s, &err);
    CHECK(s.status == LPL_TRAINING_FAILED && strstr(s.message, "non-finite") && strstr(s.message, "attn-exact") &&
              strstr(s.message, "learning rate"), "message: %s", s.message);
    lpl_run_free(r);

    /* impossible data requests */
    small_config(&c);
    c.n_train = 100000;
    CHECK(!lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err) && strstr(err.msg, "n_train"), "%s",
          err.msg);
    small_config(&c);
    c.n_eval = 0;
    c.n_train = f->train.n;
    /* no eval file and nothing left to split off */
    CHECK(!lpl_run_new(&c, f->model, f->tok, &f->train, NULL, NULL, &err) && strstr(err.msg, "n_eval"), "%s",
          err.msg);
    /* split: no eval set given, the train file provides both */
    small_config(&c);
    c.epochs = 1;
    lpl_run *r2 = lpl_run_new(&c, f->model, f->tok, &f->train, NULL, NULL, &err);
    CHECK(r2 != NULL, "split run: %s", err.msg);
    lpl_run_free(r2);
}

static void test_batch(fixture *f)
{
    /* batch 3 over 4 examples: 2 steps per epoch (3 + 1); loss of a step is over all its tokens */
    lpl_experiment_config c;
    small_config(&c);
    c.batch_size = 3;
    c.epochs = 1;
    c.n_placements = 1;
    c.shuffle = 0;
    lpl_error err;
    lpl_run *r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    event_counts ec = {0};
    drive(r, &ec, 0);
    CHECK(ec.step == 2, "batch 3 gives %d steps", ec.step);
    char *pj = lpl_run_training_json(r, 0);
    cJSON *p = cJSON_Parse(pj);
    double first_loss = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "steps"), "loss"), 0)->valuedouble;
    /* the first step's loss is the base model's token-weighted loss over examples 0..2 */
    lpl_example_set ex;
    lpl_alpaca_set tr3 = {f->train.records, 3};
    lpl_examples_build(&tr3, f->tok, c.max_len, 0, &ex, &err);
    lpl_eval_result er;
    CHECK(lpl_evaluate(f->model, NULL, &ex, &er, &err) == LPL_OK, "%s", err.msg);
    CHECK_CLOSE(first_loss, er.eval_loss, 0, 1e-5, "batch loss = token-weighted mean");
    lpl_examples_free(&ex);
    cJSON_Delete(p);
    free(pj);
    lpl_run_free(r);
}

/* An event that cannot be queued (out of memory) fails the run with a message: the
 * worker ships an adapter only with its training's end event, so dropping events
 * silently could lose one. */
static void test_event_oom(fixture *f)
{
#ifdef LPL_FAIL_REALLOC
    lpl_experiment_config c;
    small_config(&c);
    lpl_error err;
    lpl_error_clear(&err);
    lpl_run *r = lpl_run_new(&c, f->model, f->tok, &f->train, &f->eval, NULL, &err);
    CHECK(r != NULL, "run_new: %s", err.msg);
    if (!r)
        return;
    int rc = 1;
    for (int i = 0; i < 4 && rc > 0; i++) { /* base eval, start, eval before, a step */
        rc = lpl_run_step(r, &err);
        free(lpl_run_take_events(r));
    }
    CHECK(rc == 1, "the run is under way: %d %s", rc, err.msg);
    fail_realloc = 1;
    rc = lpl_run_step(r, &err);
    fail_realloc = 0;
    CHECK(rc == -1 && err.code == LPL_ERR_NOMEM && strstr(err.msg, "out of memory"),
          "a lost event fails the run: rc %d, %s", rc, err.msg);
    CHECK(lpl_run_finished(r), "the run is over");
    printf("event out of memory: %s\n", err.msg);
    lpl_run_free(r);
#else
    (void)f;
#endif
}

int main(void)
{
    test_sha256();
    test_config();
    test_count();
    fixture f;
    if (fixture_init(&f)) {
        test_run(&f);
        test_resume(&f);
        test_old_results(&f);
        test_seeds(&f);
        test_failures(&f);
        test_batch(&f);
        test_event_oom(&f);
    }
    tiny_fixture_free(&f);
    return check_report("test_experiment");
}
