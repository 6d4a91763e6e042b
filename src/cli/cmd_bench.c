/* loralab bench: times LoRA training steps (forward + backward + AdamW) on a preset
 * shape with random weights, so speed and memory can be measured without a checkpoint
 * and compared with bench/torch_peer.py on the same shape. Natively and in the wasm
 * CLI under Node. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "lpl/lab/experiment.h"
#include "lpl/model/gpt2.h"
#include "lpl/core/kernels.h"
#include "lpl/model/lora.h"
#include "lpl/model/optim.h"
#include "lpl/core/threads.h"
#include "lpl/core/platform.h"
#include "lpl/core/rng.h"
#include "lpl/lab/document.h"

#ifdef __EMSCRIPTEN__
#include <emscripten/heap.h>
#include <malloc.h>
#else
#include <sys/resource.h>
#endif

typedef struct {
    const char *preset, *placement, *weights, *compute;
    int seq, steps, warmup, threads, r, json;
    float alpha, dropout, lr;
    uint64_t seed;
    float base_dropout; /* LPL_BASE_DROPOUT_CONFIG: the preset's (GPT-2's 0.1) */
} bench_opts;

typedef struct {
    double median, min, mean;            /* seconds per step */
    double optimizer;                    /* seconds per step in AdamW */
    lpl_gpt2_timings comp;               /* per step */
    double setup_s;
    int64_t setup_peak, peak, in_use_peak, model_bytes, state_bytes;
    float first_loss, last_loss;
    int64_t lora_params, base_params;
    int n_modules, threads;
    lpl_gpt2_config cfg;
    char modules[512];
    double gflop;                        /* approximate work of one step */
} bench_result;

static void help(FILE *f)
{
    fprintf(f,
            "usage: loralab bench [--preset NAME] [--max-len N] [--timed-steps N] [--warmup N]\n"
            "                     [--placement P] [--type f32|q8_0|q4_0|f16] [--threads N]\n"
            "                     [--compute int8|f32] [--r N] [--alpha A] [--dropout P]\n"
            "                     [--base-dropout config|X] [--seed N] [--json]\n\n"
            "Times full LoRA training steps (forward + backward + AdamW on the adapters) of a\n"
            "GPT-2 or Llama-family shape with random weights and random tokens, and prints the median seconds\n"
            "per step, tokens/s, peak memory during training and the time per component.\n\n"
            "  --preset NAME         a model shape by name (loralab count --presets lists them;\n"
            "                        default dialogpt-small)\n"
            CLI_HELP_MAX_LEN("(default 0: the\n"
            "                        context, at most 128; one example per step)")
            "  --timed-steps N       optimizer steps timed (default 10)\n"
            "  --warmup N            untimed optimizer steps first (default 2)\n"
            "  --placement P         baseline (default), ffn, attn, all-linear, attn-exact, mlp-exact\n"
            "                        (Llama family: all-linear, attn, mlp, qv), or NAME=T1,T2[@LAYERS]\n"
            CLI_HELP_TYPE("f32, f16, q8_0 (default) or q4_0 (the frozen base)")
            CLI_HELP_THREADS
            "  --compute int8|f32    arithmetic of the quantized base products (default int8)\n"
            "  --r N                 LoRA rank (default 16); --alpha (32), --dropout (0.1)\n"
            CLI_HELP_BASE_DROPOUT
            "  --seed N              weights, adapters, tokens and dropout (default 42)\n"
            CLI_HELP_JSON("one object on stdout instead of the table,")
            "  --help                this text\n\n"
            "Quantized base matrices are drawn one row at a time, so the fp32 weights never\n"
            "exist at once (as when a quantized GGUF is loaded). Peak memory is the process's\n"
            "resident-set high-water mark natively (VmHWM); under Emscripten the wasm heap\n"
            "size and the largest in-use heap seen around forward and backward.\n");
}

/* One flag of bench; 1 if it was. --weights, --seq and --steps are the hidden old
 * spellings of --type, --max-len and --timed-steps, read for one release. */
static int bench_flag(cli_args *a, bench_opts *o)
{
    const char *v;
    if (cli_flag(a, "--json")) {
        o->json = 1;
        return 1;
    }
    lpl_error err;
    if (cli_opt(a, "--base-dropout", &v))
        return cli_parsed(a, "--base-dropout", v ? lpl_base_dropout_parse(v, &o->base_dropout, &err) : LPL_OK, &err);
    return cli_opt(a, "--preset", &o->preset) || cli_opt(a, "--placement", &o->placement) ||
           cli_opt(a, "--compute", &o->compute) ||
           cli_opt(a, "--type", &o->weights) || cli_opt(a, "--weights", &o->weights) ||
           cli_opt_max_len(a, &o->seq) || cli_opt_int(a, "--seq", 2, 1 << 20, &o->seq) ||
           cli_opt_int(a, "--timed-steps", 1, 1 << 30, &o->steps) ||
           cli_opt_int(a, "--steps", 1, 1 << 30, &o->steps) || cli_opt_int(a, "--warmup", 0, 1 << 30, &o->warmup) ||
           cli_opt_int(a, "--threads", 0, 1024, &o->threads) || cli_opt_int(a, "--r", 1, 65536, &o->r) ||
           cli_opt_float(a, "--alpha", &o->alpha) || cli_opt_float(a, "--dropout", &o->dropout) ||
           cli_opt_u64(a, "--seed", &o->seed);
}

/* Returns 0 on success, else LPL_EXIT_USAGE after printing one line. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){"dialogpt-small", "baseline", "q8_0", "int8", 0, 10, 2, 0, 16, 0, 32.0f, 0.1f,
                      2e-4f, 42, LPL_BASE_DROPOUT_CONFIG};
    cli_args a;
    cli_args_init(&a, "bench", argc, argv);
    while (cli_peek(&a) && !a.bad)
        if (!bench_flag(&a, o))
            return cli_usage_error("bench", "unknown flag '%s' (see loralab bench --help)", cli_peek(&a));
    if (a.bad)
        return LPL_EXIT_USAGE;
    if (!(o->dropout >= 0 && o->dropout < 1))
        return cli_usage_error("bench", "flag --dropout: %g is not in [0, 1)", o->dropout);
    lpl_gpt2_config cfg;
    if (o->seq == 0) /* the default fits the preset (an unknown preset is reported later) */
        o->seq = lpl_gpt2_preset(o->preset, &cfg, NULL) == LPL_OK && cfg.n_ctx < 128 ? cfg.n_ctx : 128;
    return 0;
}

/* ------------------------------------------------------------ memory */

#ifdef __EMSCRIPTEN__
static int64_t g_heap_in_use_peak;

/* Bytes malloc has handed out right now; training allocates nothing per step, so
 * sampling around each phase of a step finds its high-water mark. */
static void memory_sample(void)
{
    int64_t used = (int64_t)mallinfo().uordblks;
    if (used > g_heap_in_use_peak)
        g_heap_in_use_peak = used;
}

/* The wasm memory only grows, so its size is the process-level high-water mark. */
static int64_t memory_peak(void) { return (int64_t)emscripten_get_heap_size(); }
static int64_t memory_in_use_peak(void) { return g_heap_in_use_peak; }
static const char *memory_kind(void) { return "wasm-heap"; }
#else
static void memory_sample(void) {}

static int64_t proc_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t n = strlen(field);
    int64_t v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            v = strtoll(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int64_t memory_peak(void)
{
    int64_t kib = proc_status_kib("VmHWM");
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib * 1024;
}

static int64_t memory_in_use_peak(void) { return memory_peak(); }
static const char *memory_kind(void) { return "rss"; }
#endif

/* ------------------------------------------------------------ the benchmark */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Bytes of the frozen base as stored (matrices in their type, the rest fp32). */
static int64_t model_bytes(const lpl_gpt2_model *m)
{
    const lpl_gpt2_config *c = &m->cfg;
    int64_t C = c->n_embd, bytes = (int64_t)lpl_dtype_row_bytes(m->wte.type, C) * c->n_vocab;
    if (m->lm_head.data)
        bytes += (int64_t)lpl_dtype_row_bytes(m->lm_head.type, C) * c->n_vocab;
    bytes += 4 * ((m->wpe ? (int64_t)c->n_ctx * C : 0) + 2 * C);
    for (int l = 0; l < c->n_layer; l++)
        for (int s = lpl_site_first(c); s < lpl_site_end(c); s++) {
            const lpl_matrix *w = &m->blocks[l].w[s];
            bytes += (int64_t)lpl_dtype_row_bytes(w->type, w->cols) * w->rows;
            bytes += m->blocks[l].b[s] ? 4 * w->rows : 0;
        }
    return bytes + 4 * (int64_t)c->n_layer * (lpl_cfg_is_llama(c) ? 2 : 4) * C;
}

/* Multiply-adds x2 of one step: base linears and tied head forward and input-gradient,
 * LoRA branches forward and both gradients, causal attention (half of T x T) x3. */
static double step_gflop(const lpl_gpt2_config *c, const lpl_lora *l, int T)
{
    double C = c->n_embd, lin = (double)c->n_vocab * C;
    for (int s = lpl_site_first(c); s < lpl_site_end(c); s++) {
        int out, in;
        lpl_site_shape(c, (lpl_site)s, &out, &in);
        lin += (double)out * in * c->n_layer;
    }
    double att = 2.0 * (double)T * T * C * c->n_layer; /* QK^T and PV, causal half, x2 flops */
    double lora = 0;
    for (int i = 0; i < l->n_modules; i++)
        lora += (double)l->cfg.r * (l->modules[i].in + l->modules[i].out);
    return (2.0 * T * lin * 2 + 2.0 * T * lora * 3 + att * 3) / 1e9;
}

/* A random model whose matrices are made directly in type t, one row at a time, so
 * that (as when a quantized GGUF is loaded) the fp32 weights never exist at once:
 * otherwise the wasm heap, which never shrinks, would keep their size. Same standard
 * deviations as GPT-2's init (lpl_gpt2_create_random) but uniform draws, which are
 * several times cheaper to make than normal ones for 355M weights. */
typedef struct {
    lpl_gpt2_block *blocks;
    void *buf;
} typed_own;

static void typed_release(void *p)
{
    typed_own *o = p;
    if (o) {
        free(o->blocks);
        free(o->buf);
        free(o);
    }
}


static size_t typed_bytes(const lpl_gpt2_config *c, lpl_dtype t)
{
    size_t C = (size_t)c->n_embd;
    size_t n = lpl_align64(lpl_dtype_row_bytes(t, c->n_embd) * (size_t)c->n_vocab);
    n += lpl_align64(4 * (size_t)c->n_ctx * C) + 2 * lpl_align64(4 * C);
    for (int s = 0; s < LPL_N_SITES; s++) {
        int out, in;
        lpl_site_shape(c, (lpl_site)s, &out, &in);
        n += (size_t)c->n_layer * (lpl_align64(lpl_dtype_row_bytes(t, in) * (size_t)out) + lpl_align64(4 * (size_t)out));
    }
    return n + (size_t)c->n_layer * 4 * lpl_align64(4 * C);
}

/* Carves n bytes from *cur (64-byte aligned pieces of one zeroed buffer). */
static void *carve(char **cur, size_t n)
{
    void *p = *cur;
    *cur += lpl_align64(n);
    return p;
}

static void fill_typed(lpl_matrix *w, lpl_dtype t, int rows, int cols, float std, char **cur,
                       lpl_rng *rng, float *row)
{
    size_t rb = lpl_dtype_row_bytes(t, cols);
    float half_width = std * sqrtf(3.0f); /* uniform on [-a, a] has std a / sqrt(3) */
    *w = (lpl_matrix){t, rows, cols, carve(cur, rb * (size_t)rows)};
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < cols; i++)
            row[i] = (2.0f * lpl_rng_uniform(rng) - 1.0f) * half_width;
        lpl_convert_row(t, row, (char *)w->data + (size_t)r * rb, cols, NULL);
    }
}

static void fill_ones(float *x, int n)
{
    for (int i = 0; i < n; i++)
        x[i] = 1.0f;
}

static lpl_gpt2_model *random_model_typed(const lpl_gpt2_config *c, lpl_dtype t, uint64_t seed,
                                          lpl_error *err)
{
    if (lpl_gpt2_config_check(c, err) != LPL_OK)
        return NULL;
    const int C = c->n_embd;
    lpl_gpt2_model *m = lpl_calloc(1, sizeof *m, "model", err);
    typed_own *o = m ? lpl_calloc(1, sizeof *o, "model", err) : NULL;
    float *row = o ? lpl_malloc(sizeof(float) * 4 * (size_t)C, "init row", err) : NULL;
    if (row) {
        o->blocks = lpl_calloc((size_t)c->n_layer, sizeof *o->blocks, "model blocks", err);
        o->buf = o->blocks ? lpl_calloc(1, typed_bytes(c, t), "model weights", err) : NULL;
    }
    if (!row || !o->buf) {
        free(row);
        typed_release(o);
        free(m);
        return NULL;
    }
    m->cfg = *c;
    m->blocks = o->blocks;
    m->owned = o;
    m->release = typed_release;
    lpl_rng rng;
    lpl_rng_seed(&rng, seed);
    char *cur = o->buf;
    fill_typed(&m->wte, t, c->n_vocab, C, 0.02f, &cur, &rng, row);
    m->wpe = carve(&cur, 4 * (size_t)c->n_ctx * C);
    for (int64_t i = 0; i < (int64_t)c->n_ctx * C; i++)
        m->wpe[i] = lpl_rng_normal(&rng) * 0.02f;
    m->lnf_w = carve(&cur, 4 * (size_t)C);
    m->lnf_b = carve(&cur, 4 * (size_t)C);
    fill_ones(m->lnf_w, C);
    float proj_std = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    for (int l = 0; l < c->n_layer; l++) {
        lpl_gpt2_block *b = &m->blocks[l];
        b->ln1_w = carve(&cur, 4 * (size_t)C);
        b->ln1_b = carve(&cur, 4 * (size_t)C);
        b->ln2_w = carve(&cur, 4 * (size_t)C);
        b->ln2_b = carve(&cur, 4 * (size_t)C);
        fill_ones(b->ln1_w, C);
        fill_ones(b->ln2_w, C);
        for (int s = 0; s < LPL_N_SITES; s++) {
            int out, in;
            lpl_site_shape(c, (lpl_site)s, &out, &in);
            float std = (s == LPL_SITE_ATTN_PROJ || s == LPL_SITE_MLP_PROJ) ? proj_std : 0.02f;
            fill_typed(&b->w[s], t, out, in, std, &cur, &rng, row);
            b->b[s] = carve(&cur, 4 * (size_t)out);
        }
    }
    free(row);
    return m;
}

typedef struct {
    lpl_gpt2_model *model;
    lpl_lora *lora;
    lpl_gpt2_state *state;
    lpl_adamw opt;
    int *tokens, *targets;
    double *times;
} bench_ctx;

static void ctx_free(bench_ctx *b)
{
    lpl_adamw_free(&b->opt);
    lpl_gpt2_state_free(b->state);
    lpl_lora_free(b->lora);
    lpl_gpt2_free(b->model);
    free(b->tokens);
    free(b->targets);
    free(b->times);
}

/* Builds the random model (converted to the requested type), the adapters, the
 * state, the optimizer and a random token sequence. */
static lpl_status setup(const bench_opts *o, lpl_dtype wtype, bench_ctx *b, bench_result *res,
                        lpl_error *err)
{
    lpl_gpt2_config cfg;
    lpl_placement pl;
    lpl_status st = lpl_gpt2_preset(o->preset, &cfg, err);
    if (st == LPL_OK && o->seq > cfg.n_ctx)
        st = lpl_fail(err, LPL_ERR_INVALID, "--max-len %d exceeds the context of %s (%d)", o->seq,
                      o->preset, cfg.n_ctx);
    if (st == LPL_OK)
        st = lpl_placement_parse(o->placement, &pl, err);
    if (st != LPL_OK)
        return st;
    lpl_placement_retarget(&pl, &cfg);
    lpl_lora_config lc = pl.lora;
    lc.r = o->r;
    lc.alpha = o->alpha;
    lc.dropout = o->dropout;
    lc.seed = o->seed;
    uint8_t *sel = lpl_calloc((size_t)cfg.n_layer * LPL_N_SITES, 1, "placement", err);
    if (!sel)
        return err->code;
    st = lpl_lora_select(&lc, &cfg, sel, err);
    if (st == LPL_OK)
        lpl_lora_describe(sel, &cfg, res->modules, sizeof res->modules);
    free(sel);
    if (st != LPL_OK)
        return st;

    /* the Llama family is made in fp32 and converted (its fp32 weights exist once) */
    const int llama = lpl_cfg_is_llama(&cfg);
    b->model = wtype == LPL_F32 || llama ? lpl_gpt2_create_random(&cfg, o->seed, err)
                                         : random_model_typed(&cfg, wtype, o->seed, err);
    if (!b->model)
        return err->code;
    if (llama && wtype != LPL_F32 && (st = lpl_gpt2_convert(b->model, wtype, err)) != LPL_OK)
        return st;
    if (!(b->lora = lpl_lora_attach(&lc, &cfg, err)))
        return err->code;
    if (!(b->state = lpl_gpt2_state_new(b->model, o->seq, 0, err)))
        return err->code;
    lpl_compute compute;
    if ((st = lpl_compute_parse(o->compute, &compute, err)) != LPL_OK)
        return st;
    lpl_gpt2_state_set_compute(b->state, compute);
    lpl_gpt2_dropout bd;
    const char *source;
    lpl_base_dropout_rates(o->base_dropout, &cfg, &bd, &source);
    if ((st = lpl_gpt2_state_set_dropout(b->state, &bd, o->seed, err)) != LPL_OK)
        return st;
    lpl_adamw_config ac;
    lpl_adamw_config_default(&ac);
    if ((st = lpl_adamw_init(&b->opt, &ac, b->lora->n_params, err)) != LPL_OK)
        return st;
    b->tokens = lpl_malloc(sizeof(int) * (size_t)o->seq, "tokens", err);
    b->targets = lpl_malloc(sizeof(int) * (size_t)o->seq, "targets", err);
    b->times = lpl_malloc(sizeof(double) * (size_t)o->steps, "step times", err);
    if (!b->tokens || !b->targets || !b->times)
        return err->code;
    lpl_rng rng;
    lpl_rng_seed(&rng, o->seed + 1);
    int prev = (int)(lpl_rng_next(&rng) % (uint64_t)cfg.n_vocab);
    for (int t = 0; t < o->seq; t++) {
        b->tokens[t] = prev;
        prev = (int)(lpl_rng_next(&rng) % (uint64_t)cfg.n_vocab);
        b->targets[t] = prev;
    }
    res->cfg = cfg;
    res->lora_params = b->lora->n_params;
    res->base_params = lpl_gpt2_param_count(&cfg);
    res->n_modules = b->lora->n_modules;
    res->model_bytes = model_bytes(b->model);
    res->state_bytes = (int64_t)lpl_gpt2_state_bytes(b->state);
    res->gflop = step_gflop(&cfg, b->lora, o->seq);
    return LPL_OK;
}

/* One training step; adds the optimizer's time to *opt_s. */
static lpl_status train_step(const bench_opts *o, bench_ctx *b, float *loss_out, double *opt_s,
                             lpl_error *err)
{
    lpl_loss loss;
    memset(b->lora->grads, 0, sizeof(float) * (size_t)b->lora->n_params);
    lpl_status st = lpl_gpt2_forward(b->model, b->lora, b->state, b->tokens, b->targets, NULL,
                                     o->seq, 1, &loss, err);
    memory_sample();
    if (st == LPL_OK)
        st = lpl_gpt2_backward(b->model, b->lora, b->state, err);
    memory_sample();
    if (st != LPL_OK)
        return st;
    double t0 = lpl_now_seconds();
    lpl_adamw_step(&b->opt, b->lora->params, b->lora->grads, o->lr);
    *opt_s += lpl_now_seconds() - t0;
    *loss_out = loss.loss;
    return LPL_OK;
}

static lpl_status run(const bench_opts *o, lpl_dtype wtype, bench_result *res, lpl_error *err)
{
    bench_ctx b = {0};
    double t0 = lpl_now_seconds(), opt_s = 0;
    lpl_status st = setup(o, wtype, &b, res, err);
    res->setup_s = lpl_now_seconds() - t0;
    memory_sample();
    res->setup_peak = memory_peak();
    for (int i = 0; st == LPL_OK && i < o->warmup + o->steps; i++) {
        if (i == o->warmup) {
            lpl_gpt2_reset_timings(b.state);
            opt_s = 0;
        }
        float loss = 0;
        double ts = lpl_now_seconds();
        st = train_step(o, &b, &loss, &opt_s, err);
        if (i >= o->warmup)
            b.times[i - o->warmup] = lpl_now_seconds() - ts;
        if (i == 0)
            res->first_loss = loss;
        res->last_loss = loss;
    }
    if (st == LPL_OK) {
        res->peak = memory_peak();
        res->in_use_peak = memory_in_use_peak();
        double sum = 0;
        for (int i = 0; i < o->steps; i++)
            sum += b.times[i];
        qsort(b.times, (size_t)o->steps, sizeof(double), cmp_double);
        res->median = o->steps % 2 ? b.times[o->steps / 2]
                                   : 0.5 * (b.times[o->steps / 2 - 1] + b.times[o->steps / 2]);
        res->min = b.times[0];
        res->mean = sum / o->steps;
        res->optimizer = opt_s / o->steps;
        lpl_gpt2_get_timings(b.state, &res->comp);
        double *c[] = {&res->comp.embed, &res->comp.attention, &res->comp.mlp, &res->comp.lora,
                       &res->comp.lm_head, &res->comp.layernorm, &res->comp.total,
                       &res->comp.base_products};
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++)
            *c[k] /= o->steps;
    }
    ctx_free(&b);
    return st;
}

/* ------------------------------------------------------------ output */

static const char *build_name(void)
{
#if defined(__EMSCRIPTEN__) && defined(__wasm_relaxed_simd__)
    return "wasm simd128 relaxed";
#elif defined(__EMSCRIPTEN__)
    return "wasm simd128";
#elif defined(__AVX512F__)
    return "native avx512";
#elif defined(__AVX2__)
    return "native avx2";
#elif defined(__SSE2__)
    return "native sse";
#else
    return "native scalar";
#endif
}

/* One number of the JSON line, by name. */
typedef struct {
    const char *key;
    double value;
} named_number;

static void add_numbers(cJSON *o, const named_number *n, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cJSON_AddNumberToObject(o, n[i].key, n[i].value);
}

static void add_components(cJSON *o, const bench_result *r)
{
    const lpl_gpt2_timings *c = &r->comp;
    double other = r->mean - c->total - r->optimizer;
    const named_number parts[] = {
        {"embed", c->embed}, {"attention", c->attention}, {"mlp", c->mlp}, {"lora", c->lora},
        {"lm_head", c->lm_head}, {"layernorm", c->layernorm}, {"optimizer", r->optimizer},
        {"other", other > 0 ? other : 0}, {"model_total", c->total},
    };
    add_numbers(cJSON_AddObjectToObject(o, "components_s_per_step"), parts, sizeof parts / sizeof parts[0]);
    /* inside attention, mlp and lm_head above: not another share of the step */
    cJSON_AddNumberToObject(o, "base_products_s_per_step", c->base_products);
}

static int print_json(const bench_opts *o, const bench_result *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "command", "bench");
    cJSON_AddStringToObject(j, "build", build_name());
    cJSON_AddStringToObject(j, "preset", o->preset);
    lpl_model_shape_add(cJSON_AddObjectToObject(j, "config"), &r->cfg, 0);
    cJSON_AddStringToObject(j, "placement", o->placement);
    cJSON_AddStringToObject(j, "modules", r->modules);
    cJSON_AddStringToObject(j, "weights", o->weights);
    cJSON_AddStringToObject(j, "compute", o->compute);
    cJSON_AddStringToObject(j, "memory_kind", memory_kind());
    cJSON_AddItemToObject(j, "base_dropout", lpl_base_dropout_cjson(o->base_dropout, &r->cfg));
    const named_number nums[] = {
        {"seq", o->seq}, {"n_modules", r->n_modules}, {"threads", r->threads}, {"r", o->r},
        {"lora_params", (double)r->lora_params}, {"base_params", (double)r->base_params},
        {"steps", o->steps}, {"warmup", o->warmup},
        {"median_s_per_step", r->median}, {"min_s_per_step", r->min}, {"mean_s_per_step", r->mean},
        {"tokens_per_s", o->seq / r->median}, {"gflop_per_step", r->gflop}, {"gflops", r->gflop / r->median},
        {"peak_memory_bytes", (double)r->peak}, {"peak_in_use_bytes", (double)r->in_use_peak},
        {"setup_peak_memory_bytes", (double)r->setup_peak}, {"model_bytes", (double)r->model_bytes},
        {"state_bytes", (double)r->state_bytes}, {"setup_s", r->setup_s},
        {"first_loss", r->first_loss}, {"last_loss", r->last_loss},
    };
    add_numbers(j, nums, sizeof nums / sizeof nums[0]);
    add_components(j, r);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return LPL_EXIT_FAILED;
    puts(s);
    free(s);
    return LPL_EXIT_OK;
}

static void print_row(const char *name, double s, double step)
{
    printf("  %-10s %9.4f s  %5.1f%%\n", name, s, step > 0 ? 100.0 * s / step : 0.0);
}

static void print_table(const bench_opts *o, const bench_result *r)
{
    const double mib = 1024.0 * 1024.0;
    const lpl_gpt2_timings *c = &r->comp;
    printf("loralab bench (%s): %s, seq %d, %s weights, compute %s, placement %s, r %d, %d thread(s)\n",
           build_name(), o->preset, o->seq, o->weights, o->compute, o->placement, o->r, r->threads);
    printf("adapted:     %s (%d modules, %lld trainable of %lld base params)\n", r->modules,
           r->n_modules, (long long)r->lora_params, (long long)r->base_params);
    printf("step:        median %.4f s, min %.4f s, mean %.4f s over %d steps (%d warmup)\n",
           r->median, r->min, r->mean, o->steps, o->warmup);
    printf("throughput:  %.1f tokens/s, ~%.1f GFLOP/s (%.2f GFLOP/step)\n", o->seq / r->median,
           r->gflop / r->median, r->gflop);
    printf("memory:      peak %.1f MiB (%s), in use %.1f MiB, model %.1f MiB, state %.1f MiB, "
           "setup peak %.1f MiB\n", r->peak / mib, memory_kind(), r->in_use_peak / mib,
           r->model_bytes / mib, r->state_bytes / mib, r->setup_peak / mib);
    printf("loss:        %.4f (first step) -> %.4f (last step)\n", r->first_loss, r->last_loss);
    printf("time per step by component (engine timers, mean over the timed steps):\n");
    print_row("embed", c->embed, r->mean);
    print_row("attention", c->attention, r->mean);
    print_row("mlp", c->mlp, r->mean);
    print_row("lora", c->lora, r->mean);
    print_row("lm_head", c->lm_head, r->mean);
    print_row("layernorm", c->layernorm, r->mean);
    print_row("optimizer", r->optimizer, r->mean);
    double other = r->mean - c->total - r->optimizer;
    print_row("other", other > 0 ? other : 0, r->mean);
    printf("of which the frozen base's linear products (within attention, mlp, lm_head; what --compute changes):\n");
    print_row("base", c->base_products, r->mean);
}

int lpl_cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(stdout);
            return LPL_EXIT_OK;
        }
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    lpl_dtype wtype;
    if (!lpl_matrix_type_from_name(o.weights, &wtype)) {
        fprintf(stderr, "loralab bench: --type must be f32, f16, q8_0 or q4_0, not '%s'\n", o.weights);
        return LPL_EXIT_USAGE;
    }
    lpl_error err;
    lpl_error_clear(&err);
    if (lpl_threads_init(o.threads, &err) != LPL_OK)
        fprintf(stderr, "loralab bench: warning: %s (running on one thread)\n", err.msg);
    bench_result res;
    memset(&res, 0, sizeof res);
    res.threads = lpl_threads_count();
    lpl_status st = run(&o, wtype, &res, &err);
    lpl_threads_shutdown();
    if (st != LPL_OK) {
        fprintf(stderr, "loralab bench: %s\n", err.msg);
        return st == LPL_ERR_INVALID ? LPL_EXIT_USAGE : LPL_EXIT_FAILED;
    }
    if (o.json)
        return print_json(&o, &res);
    print_table(&o, &res);
    return LPL_EXIT_OK;
}
