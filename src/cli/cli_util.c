/* Shared pieces of the loralab subcommands (see cli_util.h). */
#include "cli_util.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "commands.h"
#include "lpl/io/adapter_io.h"
#include "lpl/core/kernels.h"
#include "lpl/io/model_io.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loralab %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return LPL_EXIT_USAGE;
}

int cli_exit_code(lpl_status st)
{
    switch (st) {
    case LPL_OK: return LPL_EXIT_OK;
    case LPL_ERR_INVALID:
    case LPL_ERR_IO:
    case LPL_ERR_FORMAT:
    case LPL_ERR_UNSUPPORTED: return LPL_EXIT_USAGE;
    default: return LPL_EXIT_FAILED;
    }
}

int cli_fail(const char *cmd, lpl_status st, const char *msg)
{
    /* Keep it to one line: multi-line library messages are joined with "; ". */
    fprintf(stderr, "loralab %s: ", cmd);
    for (const char *p = msg; *p; p++) {
        if (*p == '\n') {
            if (p[1])
                fputs("; ", stderr);
        } else {
            fputc(*p, stderr);
        }
    }
    fputc('\n', stderr);
    return cli_exit_code(st);
}

/* ---------------------------------------------------------------- shipped files */

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

const char *cli_find_resource(const char *rel, char *buf, size_t size)
{
    char exe[LPL_PATH_MAX];
    ssize_t n = rel[0] == '/' ? -1 : readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return rel;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return rel;
    *slash = '\0';
    static const char *const under[] = {"", "/..", "/../share/loralab"};
    for (size_t i = 0; i < sizeof under / sizeof under[0]; i++) {
        if ((size_t)snprintf(buf, size, "%s%s/%s", exe, under[i], rel) < size && is_file(buf))
            return buf;
    }
    return rel;
}

static void resolve_default(char *path, size_t size, const char *deflt)
{
    char buf[LPL_PATH_MAX];
    if (strcmp(path, deflt))
        return;
    const char *found = cli_find_resource(deflt, buf, sizeof buf);
    if (found != deflt)
        snprintf(path, size, "%s", found);
}

void cli_resolve_defaults(lpl_experiment_config *c)
{
    lpl_experiment_config d;
    lpl_experiment_default(&d);
    resolve_default(c->model, sizeof c->model, d.model);
    resolve_default(c->train, sizeof c->train, d.train);
    resolve_default(c->eval, sizeof c->eval, d.eval);
}

/* ---------------------------------------------------------------- flags */

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv)
{
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->cmd = cmd;
    a->bad = 0;
}

const char *cli_peek(const cli_args *a)
{
    return a->i < a->argc ? a->argv[a->i] : NULL;
}

int cli_flag(cli_args *a, const char *name)
{
    const char *s = cli_peek(a);
    if (!s || strcmp(s, name))
        return 0;
    a->i++;
    return 1;
}

int cli_opt(cli_args *a, const char *name, const char **val)
{
    const char *s = cli_peek(a);
    size_t n = strlen(name);
    if (!s || strncmp(s, name, n))
        return 0;
    if (s[n] == '=') {
        *val = s + n + 1;
        a->i++;
        return 1;
    }
    if (s[n] != '\0')
        return 0;
    if (a->i + 1 >= a->argc) {
        cli_usage_error(a->cmd, "flag %s needs a value", name);
        a->bad = 1;
        a->i++;
        *val = NULL;
        return 1;
    }
    *val = a->argv[a->i + 1];
    a->i += 2;
    return 1;
}

/* One reader for the numeric flags, storing into out: kind 'i', an integer in [lo, hi]
 * (out is an int *); 'u', a non-negative integer (uint64_t *); 'f', a finite number
 * (float *). Returns 0 when the next argument is not flag name, else 1; a missing or
 * bad value is a usage error (reported) and leaves *out as it was. */
static int opt_number(cli_args *a, const char *name, char kind, long lo, long hi, void *out)
{
    long l = 0;
    unsigned long long u = 0;
    double f = 0;
    const char *v;
    if (!cli_opt(a, name, &v))
        return 0;
    if (!v)
        return 1;
    char *end;
    int ok;
    errno = 0;
    if (kind == 'i') {
        l = strtol(v, &end, 10);
        ok = !errno && l >= lo && l <= hi;
    } else if (kind == 'u') {
        u = strtoull(v, &end, 10);
        ok = !errno && v[0] != '-';
    } else {
        f = strtod(v, &end);
        ok = isfinite(f);
    }
    if (ok && end != v && !*end) {
        if (kind == 'i')
            *(int *)out = (int)l;
        else if (kind == 'u')
            *(uint64_t *)out = (uint64_t)u;
        else
            *(float *)out = (float)f;
        return 1;
    }
    if (kind == 'i')
        cli_usage_error(a->cmd, "flag %s: '%s' is not an integer in [%ld, %ld]", name, v, lo, hi);
    else
        cli_usage_error(a->cmd, "flag %s: '%s' is not a %s", name, v, kind == 'u' ? "non-negative integer" : "number");
    a->bad = 1;
    return 1;
}

int cli_opt_int(cli_args *a, const char *name, int lo, int hi, int *out) { return opt_number(a, name, 'i', lo, hi, out); }

int cli_parsed(cli_args *a, const char *name, lpl_status st, const lpl_error *err)
{
    if (st) {
        cli_usage_error(a->cmd, "flag %s: %s", name, err->msg);
        a->bad = 1;
    }
    return 1;
}

int cli_opt_max_len(cli_args *a, int *out)
{
    int v = *out;
    if (!cli_opt_int(a, "--max-len", 0, 1 << 20, &v))
        return 0;
    if (!a->bad && v == 1) {
        cli_usage_error(a->cmd, "flag --max-len: 1 leaves no token to predict; give 0 (fit the model) or >= 2");
        a->bad = 1;
    }
    *out = v;
    return 1;
}

int cli_opt_float(cli_args *a, const char *name, float *out) { return opt_number(a, name, 'f', 0, 0, out); }

/* "V" or "V1,V2,..." of up to max numbers (integers in [lo, hi] when is_int, else
 * finite numbers > lo); 1 if the flag was name. *n = count, 0 on a bad value. */
static int opt_number_list(cli_args *a, const char *name, int is_int, double lo, double hi, double *out, int max,
                           int *n)
{
    const char *v;
    if (!cli_opt(a, name, &v))
        return 0;
    *n = 0;
    if (!v)
        return 1;
    const char *s = v;
    while (*n < max) {
        char *end;
        errno = 0;
        double x = is_int ? (double)strtol(s, &end, 10) : strtod(s, &end);
        if (end == s || errno || !isfinite(x) || (is_int ? x < lo : x <= lo) || x > hi || (*end && *end != ','))
            break;
        out[(*n)++] = x;
        if (!*end)
            return 1;
        s = end + 1;
    }
    if (is_int)
        cli_usage_error(a->cmd, "flag %s: '%s' is not an integer in [%g, %g] or a list of up to %d (4,8,16)", name, v,
                        lo, hi, max);
    else
        cli_usage_error(a->cmd, "flag %s: '%s' is not a number > %g or a list of up to %d (16,32)", name, v, lo, max);
    a->bad = 1;
    *n = 0;
    return 1;
}

/* --r N[,N2,...] (integers) and --alpha X[,X2,...]: one value, or a list that is a grid
 * dimension (its first value is also the experiment's). One reader for both, so the
 * two grid dimensions cannot drift apart. */
static int opt_grid_dim(cli_args *a, lpl_experiment_config *c, int is_r)
{
    double v[LPL_EXP_MAX_VALUES];
    int n;
    if (!opt_number_list(a, is_r ? "--r" : "--alpha", is_r, is_r ? 1 : 0, is_r ? 65536 : 3.4e38, v,
                         LPL_EXP_MAX_VALUES, &n))
        return 0;
    for (int k = 0; k < n; k++) {
        if (is_r)
            c->r_values[k] = (int)v[k];
        else
            c->alpha_values[k] = (float)v[k];
    }
    if (n > 0 && is_r)
        c->r = c->r_values[0];
    else if (n > 0)
        c->alpha = c->alpha_values[0];
    *(is_r ? &c->n_r_values : &c->n_alpha_values) = n > 1 ? n : 0;
    return 1;
}

int cli_opt_u64(cli_args *a, const char *name, uint64_t *out) { return opt_number(a, name, 'u', 0, 0, out); }

static int set_path(cli_args *a, const char *flag, char *dst, size_t size)
{
    const char *v;
    if (!cli_opt(a, flag, &v))
        return 0;
    if (v && strlen(v) >= size) {
        cli_usage_error(a->cmd, "flag %s: path too long", flag);
        a->bad = 1;
    } else if (v) {
        snprintf(dst, size, "%s", v);
    }
    return 1;
}

/* Placement flags replace the default list the first time one is given. */
static int placements_given;

static void add_placement(cli_args *a, lpl_experiment_config *c, const char *spec)
{
    if (!placements_given) {
        c->n_placements = 0;
        placements_given = 1;
    }
    if (c->n_placements >= LPL_EXP_MAX_PLACEMENTS) {
        cli_usage_error(a->cmd, "too many placements (at most %d)", LPL_EXP_MAX_PLACEMENTS);
        a->bad = 1;
        return;
    }
    lpl_error err;
    lpl_error_clear(&err);
    if (lpl_placement_parse(spec, &c->placements[c->n_placements], &err)) {
        cli_usage_error(a->cmd, "flag --placement: %s", err.msg);
        a->bad = 1;
        return;
    }
    c->n_placements++;
}

int cli_experiment_flag(cli_args *a, lpl_experiment_config *c)
{
    const char *v;
    if (set_path(a, "--model", c->model, sizeof c->model) || set_path(a, "--train", c->train, sizeof c->train) ||
        set_path(a, "--eval", c->eval, sizeof c->eval))
        return 1;
    if (cli_opt_int(a, "--n-train", 0, 10000000, &c->n_train) || cli_opt_int(a, "--n-eval", 0, 10000000, &c->n_eval) ||
        cli_opt_max_len(a, &c->max_len) || opt_grid_dim(a, c, 1) || opt_grid_dim(a, c, 0) ||
        cli_opt_int(a, "--bands", 0, LPL_LORA_MAX_LAYERS, &c->bands) || cli_opt_float(a, "--dropout", &c->dropout) ||
        cli_opt_int(a, "--epochs", 1, 100000, &c->epochs) || cli_opt_int(a, "--batch-size", 1, 65536, &c->batch_size) ||
        cli_opt_float(a, "--lr", &c->lr) || cli_opt_int(a, "--warmup-steps", 0, 1 << 30, &c->warmup_steps) ||
        cli_opt_float(a, "--weight-decay", &c->weight_decay) || cli_opt_float(a, "--grad-clip", &c->grad_clip) ||
        cli_opt_u64(a, "--seed", &c->seed) || cli_opt_int(a, "--max-steps", 0, 1 << 30, &c->max_steps) ||
        cli_opt_int(a, "--steps", 0, 1 << 30, &c->max_steps) ||
        cli_opt_int(a, "--seeds", 1, LPL_EXP_MAX_SEEDS, &c->seeds))
        return 1;
    if (cli_flag(a, "--rslora")) {
        c->rslora = 1;
        return 1;
    }
    if (cli_flag(a, "--response-only")) {
        c->response_only = 1;
        return 1;
    }
    if (cli_flag(a, "--no-shuffle")) {
        c->shuffle = 0;
        return 1;
    }
    lpl_error err;
    if (cli_opt(a, "--base-dropout", &v))
        return cli_parsed(a, "--base-dropout", v ? lpl_base_dropout_parse(v, &c->base_dropout, &err) : LPL_OK, &err);
    if (cli_opt(a, "--compute", &v))
        return cli_parsed(a, "--compute", v ? lpl_compute_parse(v, &c->compute, &err) : LPL_OK, &err);
    if (cli_opt(a, "--schedule", &v))
        return cli_parsed(a, "--schedule", v ? lpl_schedule_parse(v, &c->schedule, &err) : LPL_OK, &err);
    if (cli_opt(a, "--placement", &v)) {
        if (v)
            add_placement(a, c, v);
        return 1;
    }
    if (cli_opt(a, "--placements", &v)) {
        if (!v)
            return 1;
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", v);
        if (strchr(buf, '=')) {
            cli_usage_error(a->cmd, "flag --placements takes preset names (a,b,c); give custom ones with --placement NAME=...");
            a->bad = 1;
            return 1;
        }
        for (char *t = strtok(buf, ","); t && !a->bad; t = strtok(NULL, ","))
            add_placement(a, c, t);
        return 1;
    }
    return 0;
}

void cli_note_base_dropout(const char *cmd, const lpl_experiment_config *c, const lpl_gpt2_config *mc)
{
    lpl_gpt2_dropout d;
    const char *source;
    lpl_experiment_base_dropout(c, mc, &d, &source);
    fprintf(stderr, "loralab %s: base dropout embd/attn/resid %g/%g/%g in training (%s)\n", cmd, d.embd, d.attn,
            d.resid, !strcmp(source, "model")    ? "the model's config"
                     : !strcmp(source, "set") ? "--base-dropout"
                                              : "the model file records none: GPT-2's 0.1 assumed");
}

const char *const cli_experiment_flags_help =
    "model and data:\n"
    CLI_HELP_MODEL
    CLI_HELP_TRAIN
    CLI_HELP_EVAL("; \"\" splits --train")
    "  --n-train N, --n-eval N   records used, the first N of each file (default 100 / 20; 0 = all)\n"
    CLI_HELP_MAX_LEN_FIT
    "  --response-only       score only the response tokens\n"
    "LoRA and training:\n"
    "  --r N  --alpha X  --dropout X  --rslora     (default 16, 32, 0.1)\n"
    CLI_HELP_BASE_DROPOUT
    "  --epochs N  --batch-size N  --lr X          (default 3, 1, 2e-4)\n"
    "  --schedule constant|linear|cosine  --warmup-steps N  --weight-decay X  --grad-clip X\n"
    "  --seed N              initialisation, dropout and data order (default 42)\n"
    "  --seeds N             train every placement N times (seeds N, N+1, ...) and report\n"
    "                        mean, 95% t-interval and paired differences (default 1)\n"
    CLI_HELP_STEPS("per training (overrides --epochs)")
    "  --no-shuffle          keep the data order\n"
    "  --compute int8|f32    frozen Q8_0 base products on int8 codes (default) or in fp32\n"
    "placements:\n"
    "  --placements a,b,c    presets: baseline ffn attn all-linear attn-exact mlp-exact\n"
    "  --placement SPEC      a preset, NAME=T1,T2[@LAYERS] (PEFT suffix rule; layers like 0-3,7)\n"
    "                        or NAME=re:REGEX (whole-name regex); repeat for several\n"
    "grid (placements x bands x r x alpha are arms, arms x seeds are units; ablate --plan):\n"
    "  --r N1,N2,...  --alpha X1,X2,...   several ranks / alphas\n"
    "  --bands K             split each placement's layers into K bands (first, middle, last ... K-th)\n";

/* ---------------------------------------------------------------- model and data */

lpl_status cli_model_load(const char *path, int copy, cli_model *m, lpl_error *err)
{
    memset(m, 0, sizeof *m);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lpl_fail(err, LPL_ERR_IO, "%s: cannot open model: %s", path, strerror(errno));
    m->gguf = lpl_gguf_open(path, err);
    if (!m->gguf)
        return err->code ? err->code : LPL_ERR_FORMAT;
    m->model = lpl_gpt2_from_gguf(m->gguf, copy, err);
    if (!m->model)
        goto fail;
    m->tok = lpl_tokenizer_from_gguf(m->gguf, err);
    if (!m->tok)
        goto fail;
    if (lpl_sha256_file(path, m->id.model_sha256, err))
        goto fail;
    snprintf(m->id.model_path, sizeof m->id.model_path, "%s", path);
    const char *name = NULL;
    size_t len = 0;
    lpl_error e2;
    if (lpl_gguf_get_str(m->gguf, "general.name", &name, &len, &e2) == LPL_OK)
        snprintf(m->id.model_name, sizeof m->id.model_name, "%.*s", (int)len, name);
    m->id.model_bytes = (int64_t)lpl_gguf_file_size(m->gguf);
    snprintf(m->id.matrix_type, sizeof m->id.matrix_type, "%s", lpl_dtype_name(m->model->blocks[0].w[0].type));
    return LPL_OK;
fail:;
    lpl_status st = err->code ? err->code : LPL_ERR_FORMAT;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    if (!strstr(msg, path))
        lpl_fail(err, st, "%s: %s", path, msg);
    cli_model_free(m);
    return st;
}

void cli_model_free(cli_model *m)
{
    lpl_tokenizer_free(m->tok);
    lpl_gpt2_free(m->model);
    lpl_gguf_close(m->gguf);
    memset(m, 0, sizeof *m);
}

lpl_status cli_data_load(const char *path, const char *flag, lpl_alpaca_set *out, char sha[65], lpl_error *err)
{
    memset(out, 0, sizeof *out);
    lpl_status st = lpl_alpaca_load(path, out, err);
    if (!st && sha)
        st = lpl_sha256_file(path, sha, err);
    if (st) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        if (strstr(msg, path))
            lpl_fail(err, st, "%s: %s", flag, msg);
        else
            lpl_fail(err, st, "%s %s: %s", flag, path, msg);
        lpl_alpaca_free(out);
    }
    return st;
}

/* ---------------------------------------------------------------- formatting */

const char *cli_group(int64_t n, char *buf, size_t size)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n));
    size_t len = strlen(digits), o = 0;
    if (n < 0 && o + 1 < size)
        buf[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

const char *cli_bytes(int64_t n, char *buf, size_t size)
{
    double x = (double)n;
    if (x >= 1e9)
        snprintf(buf, size, "%.2f GB", x / 1e9);
    else if (x >= 1e6)
        snprintf(buf, size, "%.1f MB", x / 1e6);
    else if (x >= 1e3)
        snprintf(buf, size, "%.1f kB", x / 1e3);
    else
        snprintf(buf, size, "%lld B", (long long)n);
    return buf;
}

const char *cli_duration(double s, char *buf, size_t size)
{
    if (s < 0 || !isfinite(s))
        snprintf(buf, size, "?");
    else if (s < 60)
        snprintf(buf, size, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, size, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, size, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
    return buf;
}

/* ---------------------------------------------------------------- progress */

void cli_progress_init(cli_progress *p, int quiet)
{
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
    p->last = -1e9;
    p->width = 0;
}

void cli_progress_update(cli_progress *p, const lpl_run_progress *pg, int force)
{
    if (p->quiet || pg->training < 0)
        return;
    double now = lpl_now_seconds();
    double every = p->tty ? 0.1 : 5.0;
    if (!force && now - p->last < every)
        return;
    p->last = now;
    char el[32], eta[32], line[256];
    int n;
    if (pg->step == 0)
        n = snprintf(line, sizeof line, "%s: evaluating before training, %s elapsed", pg->name,
                     cli_duration(pg->elapsed_s, el, sizeof el));
    else
        n = snprintf(line, sizeof line, "%s: epoch %d/%d step %d/%d loss %.4f %.0f tok/s %s elapsed, ETA %s%s",
                     pg->name, pg->epoch, pg->epochs, pg->step, pg->steps, pg->loss, pg->tokens_per_s,
                     cli_duration(pg->elapsed_s, el, sizeof el), cli_duration(pg->eta_s, eta, sizeof eta),
                     pg->evaluating ? " (eval)" : "");
    if (p->tty) {
        int pad = p->width > n ? p->width - n : 0;
        fprintf(stderr, "\r%s%*s", line, pad, "");
        p->width = n;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->tty && p->width && !p->quiet) {
        fputc('\n', stderr);
        p->width = 0;
    }
}

/* ---------------------------------------------------------------- table */

typedef enum { BEST_NONE, BEST_MIN, BEST_MAX } best_kind;

typedef struct {
    const char *label;
    best_kind best;
} row_def;

/* Rows of the table, in order. */
enum {
    ROW_LOSS_BEFORE, ROW_LOSS, ROW_PPL, ROW_MSPPL, ROW_TRAINER, ROW_TEMPLATE, ROW_RESPONSE, ROW_PARAMS, ROW_PCT,
    ROW_REDUCTION, ROW_VS_BASE, ROW_TIME, ROW_TPS, ROW_MEM, ROW_ADAPTER_MEM, ROW_PROCESS_MEM, N_ROWS
};

static const struct {
    const char *label;
    best_kind best;
    const char *key; /* result key averaged over seeds ("" = the same at every seed) */
} rows[N_ROWS] = {
    [ROW_LOSS_BEFORE] = {"eval loss before", BEST_NONE, ""},
    [ROW_LOSS] = {"eval loss", BEST_MIN, "eval_loss"},
    [ROW_PPL] = {"perplexity", BEST_MIN, "perplexity"},
    [ROW_MSPPL] = {"mean sample perplexity", BEST_MIN, "mean_sample_perplexity"},
    [ROW_TRAINER] = {"trainer eval loss (HF)", BEST_MIN, "trainer_eval_loss"},
    [ROW_TEMPLATE] = {"drop from template", BEST_NONE, "drop_share_template"},
    [ROW_RESPONSE] = {"drop from response", BEST_NONE, "drop_share_response"},
    [ROW_PARAMS] = {"trainable params", BEST_MIN, ""},
    [ROW_PCT] = {"% of total", BEST_MIN, ""},
    [ROW_REDUCTION] = {"parameter reduction", BEST_MAX, ""},
    [ROW_VS_BASE] = {"vs baseline", BEST_NONE, ""},
    [ROW_TIME] = {"training time", BEST_MIN, "train_seconds"},
    [ROW_TPS] = {"tokens/s", BEST_MAX, "tokens_per_s"},
    [ROW_MEM] = {"placement memory", BEST_MIN, "placement_memory_bytes"},
    [ROW_ADAPTER_MEM] = {"adapter + AdamW memory", BEST_MIN, ""},
    [ROW_PROCESS_MEM] = {"process peak (RSS)", BEST_NONE, "process_peak_memory_bytes"},
};

static double row_value(const lpl_training_summary *s, int row)
{
    int done = s->status == LPL_TRAINING_DONE;
    switch (row) {
    case ROW_LOSS_BEFORE: return s->eval_loss_before;
    case ROW_LOSS: return s->eval_loss;
    case ROW_PPL: return s->perplexity;
    case ROW_MSPPL: return s->mean_sample_perplexity;
    case ROW_TRAINER: return s->trainer_eval_loss;
    case ROW_TEMPLATE: return s->drop_share_template;
    case ROW_RESPONSE: return s->drop_share_response;
    case ROW_PARAMS: return (double)s->trainable;
    case ROW_PCT: return s->percent;
    case ROW_REDUCTION: return s->reduction_pct;
    case ROW_VS_BASE: return s->vs_baseline_pct;
    case ROW_TIME: return done ? s->train_seconds : NAN;
    case ROW_TPS: return done ? s->tokens_per_s : NAN;
    case ROW_MEM: return done ? (double)s->placement_memory_bytes : NAN;
    case ROW_ADAPTER_MEM: return 16.0 * (double)s->trainable; /* weights, gradients, two AdamW moments */
    case ROW_PROCESS_MEM: return done ? (double)s->peak_memory_bytes : NAN;
    }
    return NAN;
}

static void format_cell(int row, double v, double half, const lpl_training_summary *s, char *buf, size_t size)
{
    char tmp[48], h[48] = "";
    if (isnan(v)) {
        snprintf(buf, size, "-");
        return;
    }
    switch (row) {
    case ROW_LOSS_BEFORE: case ROW_LOSS: case ROW_TRAINER: snprintf(buf, size, "%.4f", v); break;
    case ROW_PPL: case ROW_MSPPL: snprintf(buf, size, "%.3f", v); break;
    case ROW_TEMPLATE: case ROW_RESPONSE: snprintf(buf, size, "%.0f%%", 100 * v); break;
    case ROW_PARAMS: snprintf(buf, size, "%s", cli_group((int64_t)v, tmp, sizeof tmp)); break;
    case ROW_PCT: snprintf(buf, size, "%.2f%%", v); break;
    case ROW_REDUCTION: snprintf(buf, size, "%.2f%% (%.0fx)", v, s->reduction_factor); break;
    case ROW_VS_BASE: snprintf(buf, size, "%+.1f%%", v); break;
    case ROW_TIME: cli_duration(v, buf, size); break;
    case ROW_TPS: snprintf(buf, size, "%.0f", v); break;
    default: cli_bytes((int64_t)v, buf, size); break;
    }
    if (isnan(half))
        return;
    /* mean +- half the 95% interval, in the row's own units */
    switch (row) {
    case ROW_LOSS: case ROW_TRAINER: snprintf(h, sizeof h, " ± %.4f", half); break;
    case ROW_PPL: case ROW_MSPPL: snprintf(h, sizeof h, " ± %.3f", half); break;
    case ROW_TEMPLATE: case ROW_RESPONSE: snprintf(h, sizeof h, " ± %.0f%%", 100 * half); break;
    case ROW_TIME: snprintf(h, sizeof h, " ± %.1fs", half); break;
    case ROW_TPS: snprintf(h, sizeof h, " ± %.0f", half); break;
    case ROW_MEM: case ROW_PROCESS_MEM: snprintf(h, sizeof h, " ± %s", cli_bytes((int64_t)half, tmp, sizeof tmp)); break;
    }
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s", h);
}

/* The aggregate object of placement `name` in a results document, or NULL. */
static const cJSON *find_aggregate(const cJSON *doc, const char *name)
{
    const cJSON *ag = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "aggregates"), "placements");
    for (const cJSON *it = ag ? ag->child : NULL; it; it = it->next) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return it;
    }
    return NULL;
}

/* Mean and half interval of metric key in an aggregate (both left as they are when the
 * aggregate has no such metric; half NAN without an interval). */
static void aggregate_metric(const cJSON *agg, const char *key, double *mean, double *half)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(agg, "metrics"), key);
    const cJSON *mu = cJSON_GetObjectItemCaseSensitive(m, "mean");
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(m, "ci95");
    if (!cJSON_IsNumber(mu))
        return;
    *mean = mu->valuedouble;
    if (cJSON_GetArraySize(ci) == 2)
        *half = 0.5 * (cJSON_GetArrayItem(ci, 1)->valuedouble - cJSON_GetArrayItem(ci, 0)->valuedouble);
}

void cli_print_table(FILE *f, const lpl_run *r)
{
    int seeds = lpl_run_n_seeds(r);
    int n = lpl_run_n_trainings(r) / seeds; /* placements; trainings 0..n-1 are the first seed's */
    lpl_training_summary *s = calloc((size_t)n, sizeof *s);
    double *mean = calloc((size_t)n * N_ROWS, sizeof *mean), *half = calloc((size_t)n * N_ROWS, sizeof *half);
    char *json = lpl_run_results_json(r);
    cJSON *doc = json ? cJSON_Parse(json) : NULL;
    free(json);
    if (!s || !mean || !half || !doc)
        goto done;
    for (int i = 0; i < n; i++) {
        lpl_run_summary(r, i, &s[i], NULL);
        /* A placement counts as done when any of its seeds is. */
        for (int k = 1; k < seeds && s[i].status != LPL_TRAINING_DONE; k++)
            if (lpl_run_training_status(r, i + k * n) == LPL_TRAINING_DONE)
                s[i].status = LPL_TRAINING_DONE;
        const cJSON *agg = find_aggregate(doc, s[i].name);
        for (int row = 0; row < N_ROWS; row++) {
            mean[i * N_ROWS + row] = row_value(&s[i], row);
            half[i * N_ROWS + row] = NAN;
            if (seeds > 1 && rows[row].key[0] && agg)
                aggregate_metric(agg, rows[row].key, &mean[i * N_ROWS + row], &half[i * N_ROWS + row]);
        }
    }
    const int lw = 24;
    int cw = seeds > 1 ? 22 : 16;
    for (int i = 0; i < n; i++)
        if ((int)strlen(s[i].name) + 2 > cw)
            cw = (int)strlen(s[i].name) + 2;
    if (seeds > 1)
        fprintf(f, "mean ± half the 95%% t-interval over %d seeds\n", seeds);
    fprintf(f, "%-*s", lw, "");
    for (int i = 0; i < n; i++)
        fprintf(f, "%*s", cw, s[i].name);
    fputc('\n', f);
    for (int row = 0; row < N_ROWS; row++) {
        int best = -1;
        int n_done = 0;
        for (int i = 0; i < n; i++) {
            double v = mean[i * N_ROWS + row];
            if (s[i].status != LPL_TRAINING_DONE || isnan(v))
                continue;
            n_done++;
            double b = best >= 0 ? mean[best * N_ROWS + row] : 0;
            if (best < 0 || (rows[row].best == BEST_MIN && v < b) || (rows[row].best == BEST_MAX && v > b))
                best = i;
        }
        fprintf(f, "%-*s", lw, rows[row].label);
        for (int i = 0; i < n; i++) {
            char cell[96], out[104];
            format_cell(row, mean[i * N_ROWS + row], half[i * N_ROWS + row], &s[i], cell, sizeof cell);
            int mark = rows[row].best != BEST_NONE && n_done > 1 && i == best;
            snprintf(out, sizeof out, "%s%s", cell, mark ? " *" : "  ");
            /* "±" is two bytes but one column */
            fprintf(f, "%*s", cw + (strstr(out, "\xc2\xb1") ? 1 : 0), out);
        }
        fputc('\n', f);
    }
    fprintf(f, "(* best in the row; perplexity = exp(eval loss) over all scored eval tokens; "
               "mean sample perplexity = mean of exp(per-example loss), dominated by the worst examples; "
               "trainer eval loss = mean of per-batch token means over batches of %d, as an HF Trainer logs it; "
               "drop from template / response = share of the fall in total eval NLL on those tokens; "
               "placement memory = activations + this placement's adapters, gradients and optimizer; "
               "process peak = the whole program's high-water mark, which only grows)\n\n"
               "modules adapted:\n", LPL_TRAINER_EVAL_BATCH);
    for (int i = 0; i < n; i++) {
        fprintf(f, "  %s: %s", s[i].name, s[i].modules);
        if (s[i].status == LPL_TRAINING_FAILED)
            fprintf(f, "   [failed: %s]", s[i].message);
        else if (s[i].status == LPL_TRAINING_PENDING)
            fprintf(f, "   [not run]");
        fputc('\n', f);
    }
    int header = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(find_aggregate(doc, s[i].name), "verdict");
        if (!cJSON_IsString(v))
            continue;
        if (!header++)
            fprintf(f, "\neval loss against the baseline, paired by seed (mean [95%% t-interval]):\n");
        fprintf(f, "  %s\n", v->valuestring);
    }
done:
    cJSON_Delete(doc);
    free(s);
    free(mean);
    free(half);
}

/* ---------------------------------------------------------------- output folder */

int cli_lock_out(const char *cmd, const char *dir, int create, lpl_dir_lock *lock)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_status st = create ? lpl_make_dirs(dir, &err) : LPL_OK;
    if (!st)
        st = lpl_dir_lock_acquire(lock, dir, &err);
    if (st) {
        cli_fail(cmd, st, err.msg);
        return LPL_EXIT_FAILED;
    }
    if (lock->stale_pid > 0)
        fprintf(stderr, "loralab %s: note: took over %s, left by pid %ld on %s, which is gone\n", cmd, lock->path,
                lock->stale_pid, lock->stale_host);
    return 0;
}

/* ---------------------------------------------------------------- driving a run */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    interrupted = 1;
    /* A second Ctrl-C ends the program at once. */
    signal(sig, SIG_DFL);
}

void cli_install_sigint(void)
{
    interrupted = 0;
    signal(SIGINT, on_sigint);
}

int cli_interrupted(void) { return interrupted != 0; }

static void print_events(const char *json)
{
    cJSON *arr = cJSON_Parse(json);
    for (const cJSON *ev = arr ? arr->child : NULL; ev; ev = ev->next) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
        if (!cJSON_IsString(type))
            continue;
#define NUM(k) (cJSON_GetObjectItemCaseSensitive(ev, k) ? cJSON_GetObjectItemCaseSensitive(ev, k)->valuedouble : 0)
        if (!strcmp(type->valuestring, "step"))
            printf("step %d/%d loss %.7g lr %.7g\n", (int)NUM("step"), (int)NUM("steps"), NUM("loss"), NUM("lr"));
        /* a training's evals, not the shared base eval (which belongs to no training) */
        else if (!strcmp(type->valuestring, "eval") && cJSON_GetObjectItemCaseSensitive(ev, "training"))
            printf("eval epoch %d loss %.7g perplexity %.7g mean_sample_perplexity %.7g\n", (int)NUM("epoch"),
                   NUM("eval_loss"), NUM("perplexity"), NUM("mean_sample_perplexity"));
#undef NUM
    }
    fflush(stdout);
    cJSON_Delete(arr);
}

/* After each completed training: its adapter, then the results that mark it
 * complete (a failure before that leaves it pending for --resume), then its steps
 * (derived from the results, so --resume can append any it missed). */
static lpl_status save_completed(lpl_run *r, const cli_drive_options *o, uint8_t *saved, char **steps,
                                 lpl_error *err)
{
    int n = lpl_run_n_trainings(r);
    for (int i = 0; i < n; i++) {
        const lpl_lora *l = lpl_run_adapter(r, i);
        if (saved[i] || !l)
            continue;
        char dir[LPL_PATH_MAX + 160], rel[160];
        lpl_run_adapter_dir(r, i, rel, sizeof rel);
        if (o->adapter_in_out && lpl_run_n_seeds(r) > 1)
            snprintf(dir, sizeof dir, "%s/seed-%llu", o->out, (unsigned long long)lpl_run_seed(r, i));
        else if (o->adapter_in_out)
            snprintf(dir, sizeof dir, "%s", o->out);
        else
            snprintf(dir, sizeof dir, "%s/%s", o->out, rel);
        lpl_status st = lpl_adapter_save(l, o->base_model_name, dir, err);
        if (st)
            return st;
        saved[i] = 1;
    }
    lpl_status st = lpl_run_write_results(r, o->out, err);
    return st ? st : lpl_run_sync_steps(r, o->out, steps, NULL, err);
}

/* steps.jsonl as the run starts: what a resumed run restored, without a torn line. */
static lpl_status start_steps(lpl_run *r, const cli_drive_options *o, char **steps, lpl_error *err)
{
    size_t torn = 0;
    lpl_status st = lpl_run_sync_steps(r, o->out, steps, &torn, err);
    if (!st && torn)
        fprintf(stderr, "loralab %s: note: %s/steps.jsonl ended in a torn line (%zu bytes, from an interrupted "
                        "write); dropped it\n", o->cmd ? o->cmd : "run", o->out, torn);
    return st;
}

lpl_status cli_drive_run(lpl_run *r, const cli_drive_options *o, lpl_error *err)
{
    cli_progress prog;
    cli_progress_init(&prog, o->quiet);
    int n = lpl_run_n_trainings(r);
    uint8_t *saved = lpl_calloc((size_t)n, 1, "saved adapters", err);
    if (!saved)
        return LPL_ERR_NOMEM;
    int completed = lpl_run_n_completed(r);
    char *steps = NULL;
    /* results.json (config, identity, every training pending) before anything else:
     * a run killed at any point after this can be continued with --resume. A resumed
     * run already has it; rewriting it first would only make a full disk fail earlier. */
    char results_path[LPL_PATH_MAX + 16];
    snprintf(results_path, sizeof results_path, "%s/results.json", o->out);
    lpl_status st = access(results_path, F_OK) == 0 ? LPL_OK : lpl_run_write_results(r, o->out, err);
    if (!st)
        st = start_steps(r, o, &steps, err);
    int rc = 0;
    while (!st && (rc = lpl_run_step(r, err)) > 0) {
        char *ev = lpl_run_take_events(r);
        if (ev && o->print_steps)
            print_events(ev);
        free(ev);
        if (cli_interrupted())
            lpl_run_cancel(r);
        cli_progress_update(&prog, lpl_run_get_progress(r), 0);
        if (lpl_run_n_completed(r) != completed) {
            completed = lpl_run_n_completed(r);
            st = save_completed(r, o, saved, &steps, err);
            if (st)
                break;
            if (o->stop_after > 0 && completed >= o->stop_after && completed < n)
                lpl_run_cancel(r);
        }
    }
    char *ev = lpl_run_take_events(r);
    if (ev && o->print_steps)
        print_events(ev);
    free(ev);
    cli_progress_end(&prog);
    if (!st && rc < 0)
        st = err->code ? err->code : LPL_ERR_INVALID;
    if (!st)
        st = save_completed(r, o, saved, &steps, err);
    free(steps);
    free(saved);
    if (st)
        return st;
    return lpl_run_cancelled(r) ? LPL_ERR_CANCELLED : LPL_OK;
}
