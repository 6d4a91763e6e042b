/* The C reference for the WebGPU engine's tests (tests/gpu) and bench/gpu_check.mjs.
 * Writes <out>.bin (raw sections) and prints a JSON manifest naming each section's
 * offset, byte count and type, so Node can load the very bytes the C core used.
 *
 *   gpu_ref step OUT L C H CTX V T NB STEPS LR R ALPHA LORA_P EMBD_P ATTN_P RESID_P CLIP SEED
 *     A random GPT-2 (Q8_0 weights, perturbed biases and norms), LoRA on all four
 *     sites with random B, STEPS AdamW steps of NB examples of T tokens (first T/4
 *     rows unscored), exactly as src/lab/experiment_run.c's batch_grads + clip + AdamW.
 *     Sections: tensors, lora params before, per-step losses and grad norms, the first
 *     step's clipped gradients, final params, the eval loss of the first batch after.
 *   gpu_ref kernels OUT M N K
 *     Q8_0 W [N][K] whose rows' scales differ by 40x, X [M][K], dY [M][N]; Y = X W^T + b
 *     (lpl_linear_forward), dX = dY W (lpl_linear_backward_input), layernorm forward
 *     and backward, gelu forward and backward on X.
 * The per-kernel modes below each write random inputs and the C core's outputs for one
 * WebGPU kernel (tests/browser/gpu_kernels.test.mjs); seeds make them reproducible:
 *   gpu_ref matf32 OUT M N K ALPHA SEED   fp32 products nt, nn, tn (lpl_matmul_*) as
 *     C0 + alpha * product, and an f32 lpl_linear_forward with bias
 *   gpu_ref attn OUT T C H P KEY STREAM SEED   lpl_attention_forward/backward, dropout p
 *   gpu_ref dropout OUT N P KEY STREAM     lpl_dropout_scale(KEY, STREAM, i, P), i < N
 *   gpu_ref embed OUT T C V SEED           token + position embedding of a Q8_0 and an
 *     f32 wte (lpl_dequantize_row, as gpt2.c's embed_forward)
 *   gpu_ref ce OUT N V SCALE SEED          lpl_crossentropy_forward/backward on all rows
 *   gpu_ref adamw OUT N CLIP LR WD SEED    two steps of lpl_clip_grad_norm + lpl_adamw_step
 * Exit status 1 with a message on stderr for bad arguments or a failure. */
#include "lpl/core/kernels.h"
#include "lpl/core/rng.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/gpt2_layers.h"
#include "lpl/model/lora.h"
#include "lpl/model/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *bin;
static long bin_off;
static int n_sec;

static void section(const char *name, const char *type, const void *p, size_t bytes)
{
    fwrite(p, 1, bytes, bin);
    printf("%s\"%s\": {\"offset\": %ld, \"bytes\": %zu, \"type\": \"%s\"}", n_sec++ ? ",\n" : "", name, bin_off,
           bytes, type);
    size_t pad = (8 - bytes % 8) % 8;
    static const char z[8];
    fwrite(z, 1, pad, bin);
    bin_off += (long)(bytes + pad);
}

static void die(const char *what, const lpl_error *e)
{
    fprintf(stderr, "gpu_ref: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static void fill(lpl_rng *r, float *x, int64_t n, float mean, float std)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = mean + std * lpl_rng_normal(r);
}

static void matrix_section(const char *name, const lpl_matrix *m)
{
    size_t rb = lpl_dtype_row_bytes(m->type, m->cols);
    section(name, m->type == LPL_Q8_0 ? "q8_0" : "f32", m->data, rb * (size_t)m->rows);
}

typedef struct {
    int *tokens, *targets;
    uint8_t *mask;
} example;

static int cmd_step(int argc, char **argv)
{
    if (argc != 20) {
        fprintf(stderr, "usage: gpu_ref step OUT L C H CTX V T NB STEPS LR R ALPHA LORA_P EMBD_P ATTN_P RESID_P CLIP SEED\n");
        return 1;
    }
    lpl_error err = {0};
    lpl_gpt2_config cfg = {atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atoi(argv[7]), 1e-5f,
                           {0, 0, 0}, 1, LPL_ARCH_GPT2, 0, 0, 0.0f, 0};
    const int T = atoi(argv[8]), NB = atoi(argv[9]), STEPS = atoi(argv[10]);
    const float lr = (float)atof(argv[11]);
    const int R = atoi(argv[12]);
    const float alpha = (float)atof(argv[13]), lora_p = (float)atof(argv[14]);
    lpl_gpt2_dropout drop = {(float)atof(argv[15]), (float)atof(argv[16]), (float)atof(argv[17])};
    const double clip = atof(argv[18]);
    const uint64_t seed = strtoull(argv[19], NULL, 10);
    lpl_gpt2_model *m = lpl_gpt2_create_random(&cfg, seed, &err);
    if (!m)
        die("model", &err);
    const int C = cfg.n_embd;
    lpl_rng rng;
    lpl_rng_seed(&rng, seed + 1);
    for (int l = 0; l < cfg.n_layer; l++) {
        lpl_gpt2_block *b = &m->blocks[l];
        fill(&rng, b->ln1_w, C, 1.0f, 0.1f);
        fill(&rng, b->ln1_b, C, 0.0f, 0.05f);
        fill(&rng, b->ln2_w, C, 1.0f, 0.1f);
        fill(&rng, b->ln2_b, C, 0.0f, 0.05f);
        for (int s = 0; s < 4; s++)
            fill(&rng, b->b[s], b->w[s].rows, 0.0f, 0.02f);
    }
    fill(&rng, m->lnf_w, C, 1.0f, 0.1f);
    fill(&rng, m->lnf_b, C, 0.0f, 0.05f);
    if (lpl_gpt2_convert(m, LPL_Q8_0, &err))
        die("convert", &err);
    lpl_lora_config lc;
    lpl_lora_config_default(&lc);
    lc.r = R;
    lc.alpha = alpha;
    lc.dropout = lora_p;
    lc.n_targets = 3;
    lc.seed = seed + 7;
    lpl_lora *lora = lpl_lora_attach(&lc, &cfg, &err);
    if (!lora)
        die("lora", &err);
    for (int i = 0; i < lora->n_modules; i++)
        fill(&rng, lora->modules[i].B, (int64_t)lora->modules[i].out * R, 0.0f, 0.02f);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, T, 0, &err);
    if (!s)
        die("state", &err);
    if (lpl_gpt2_state_set_dropout(s, &drop, seed + 11, &err))
        die("dropout", &err);

    char path[4096];
    snprintf(path, sizeof path, "%s.bin", argv[2]);
    bin = fopen(path, "wb");
    if (!bin)
        die("cannot write the output", NULL);
    printf("{\"config\": {\"n_layer\": %d, \"n_embd\": %d, \"n_head\": %d, \"n_ctx\": %d, \"n_vocab\": %d},\n",
           cfg.n_layer, C, cfg.n_head, cfg.n_ctx, cfg.n_vocab);
    printf("\"T\": %d, \"NB\": %d, \"steps\": %d, \"lr\": %.9g, \"r\": %d, \"scaling\": %.9g, \"lora_dropout\": %.9g,\n", T,
           NB, STEPS, lr, R, lora->scaling, lora_p);
    printf("\"dropout\": {\"embd\": %.9g, \"attn\": %.9g, \"resid\": %.9g}, \"clip\": %.9g, \"base_seed\": \"%llu\", "
           "\"lora_seed\": \"%llu\",\n", drop.embd, drop.attn, drop.resid, clip, (unsigned long long)(seed + 11),
           (unsigned long long)lc.seed);
    printf("\"modules\": [");
    for (int i = 0; i < lora->n_modules; i++)
        printf("%s{\"layer\": %d, \"site\": %d, \"in\": %d, \"out\": %d}", i ? ", " : "", lora->modules[i].layer,
               (int)lora->modules[i].site, lora->modules[i].in, lora->modules[i].out);
    printf("],\n\"sections\": {\n");
    matrix_section("wte", &m->wte);
    section("wpe", "f32", m->wpe, (size_t)cfg.n_ctx * C * 4);
    section("lnf_w", "f32", m->lnf_w, (size_t)C * 4);
    section("lnf_b", "f32", m->lnf_b, (size_t)C * 4);
    char name[64];
    for (int l = 0; l < cfg.n_layer; l++) {
        lpl_gpt2_block *b = &m->blocks[l];
        snprintf(name, sizeof name, "h%d.ln1_w", l), section(name, "f32", b->ln1_w, (size_t)C * 4);
        snprintf(name, sizeof name, "h%d.ln1_b", l), section(name, "f32", b->ln1_b, (size_t)C * 4);
        snprintf(name, sizeof name, "h%d.ln2_w", l), section(name, "f32", b->ln2_w, (size_t)C * 4);
        snprintf(name, sizeof name, "h%d.ln2_b", l), section(name, "f32", b->ln2_b, (size_t)C * 4);
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "h%d.w%d", l, k), matrix_section(name, &b->w[k]);
            snprintf(name, sizeof name, "h%d.b%d", l, k), section(name, "f32", b->b[k], (size_t)b->w[k].rows * 4);
        }
    }
    section("params0", "f32", lora->params, (size_t)lora->n_params * 4);

    /* the batches: random tokens, targets the next token, first T/4 rows unscored
     * (the prompt); example k of step i has T - (k % 3) tokens */
    const int nex = NB * STEPS;
    example *ex = calloc((size_t)nex, sizeof *ex);
    int *lens = calloc((size_t)nex, sizeof(int));
    int *all_tok = calloc((size_t)nex * T, sizeof(int)), *all_tg = calloc((size_t)nex * T, sizeof(int));
    uint8_t *all_mask = calloc((size_t)nex * T, 1);
    for (int e = 0; e < nex; e++) {
        int Te = T - (e % 3);
        if (Te < 1)
            Te = 1;
        lens[e] = Te;
        ex[e].tokens = all_tok + (size_t)e * T;
        ex[e].targets = all_tg + (size_t)e * T;
        ex[e].mask = all_mask + (size_t)e * T;
        for (int t = 0; t < Te; t++) {
            ex[e].tokens[t] = (int)(lpl_rng_next(&rng) % (uint64_t)cfg.n_vocab);
            ex[e].targets[t] = (int)(lpl_rng_next(&rng) % (uint64_t)cfg.n_vocab);
            ex[e].mask[t] = t >= Te / 4;
        }
    }
    section("lens", "i32", lens, (size_t)nex * 4);
    section("tokens", "i32", all_tok, (size_t)nex * T * 4);
    section("targets", "i32", all_tg, (size_t)nex * T * 4);
    section("mask", "u8", all_mask, (size_t)nex * T);

    lpl_adamw opt;
    lpl_adamw_config ac;
    lpl_adamw_config_default(&ac);
    if (lpl_adamw_init(&opt, &ac, lora->n_params, &err))
        die("adamw", &err);
    float *accum = calloc((size_t)lora->n_params, sizeof(float));
    float *losses = calloc((size_t)STEPS, sizeof(float)), *norms = calloc((size_t)STEPS, sizeof(float));
    float *grads1 = calloc((size_t)lora->n_params, sizeof(float));
    for (int st = 0; st < STEPS; st++) {
        double nll = 0;
        int scored = 0, total = 0;
        for (int k = 0; k < NB; k++)
            for (int t = 0; t < lens[st * NB + k]; t++)
                total += ex[st * NB + k].mask[t];
        memset(accum, 0, (size_t)lora->n_params * 4);
        for (int k = 0; k < NB; k++) {
            example *e = &ex[st * NB + k];
            lpl_lora_zero_grads(lora);
            lpl_loss l;
            if (lpl_gpt2_forward(m, lora, s, e->tokens, e->targets, e->mask, lens[st * NB + k], 1, &l, &err) ||
                lpl_gpt2_backward(m, lora, s, &err))
                die("step", &err);
            nll += l.nll_sum;
            scored += l.n_scored;
            float w = (float)l.n_scored / (float)total;
            for (int64_t j = 0; j < lora->n_params; j++)
                accum[j] += w * lora->grads[j];
        }
        memcpy(lora->grads, accum, (size_t)lora->n_params * 4);
        losses[st] = (float)(nll / scored);
        norms[st] = (float)lpl_clip_grad_norm(lora->grads, lora->n_params, clip);
        if (st == 0)
            memcpy(grads1, lora->grads, (size_t)lora->n_params * 4);
        lpl_adamw_step(&opt, lora->params, lora->grads, lr);
    }
    section("losses", "f32", losses, (size_t)STEPS * 4);
    section("norms", "f32", norms, (size_t)STEPS * 4);
    section("grads1", "f32", grads1, (size_t)lora->n_params * 4);
    section("params_final", "f32", lora->params, (size_t)lora->n_params * 4);
    double enll = 0;
    int esc = 0;
    for (int k = 0; k < NB; k++) {
        lpl_loss l;
        if (lpl_gpt2_forward(m, lora, s, ex[k].tokens, ex[k].targets, ex[k].mask, lens[k], 0, &l, &err))
            die("eval", &err);
        enll += l.nll_sum;
        esc += l.n_scored;
    }
    float eval = (float)(enll / esc);
    section("eval", "f32", &eval, 4);
    printf("\n}}\n");
    fclose(bin);
    return 0;
}

static int cmd_kernels(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: gpu_ref kernels OUT M N K\n");
        return 1;
    }
    const int M = atoi(argv[3]), N = atoi(argv[4]), K = atoi(argv[5]);
    if (M < 1 || N < 1 || K < 32 || K % 32) {
        fprintf(stderr, "gpu_ref kernels: M, N >= 1 and K a positive multiple of 32\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.bin", argv[2]);
    bin = fopen(path, "wb");
    if (!bin)
        die("cannot write the output", NULL);
    lpl_rng r;
    lpl_rng_seed(&r, 1234);
    float *w = malloc((size_t)N * K * 4), *x = malloc((size_t)M * K * 4), *dy = malloc((size_t)M * N * 4);
    float *b = malloc((size_t)N * 4), *y = calloc((size_t)M * N, 4), *dx = calloc((size_t)M * K, 4);
    for (int n = 0; n < N; n++) /* rows whose scales differ by 40x */
        fill(&r, w + (size_t)n * K, K, 0.0f, n % 2 ? 0.05f : 0.05f / 40.0f);
    fill(&r, x, (int64_t)M * K, 0.0f, 1.0f);
    fill(&r, dy, (int64_t)M * N, 0.0f, 1.0f);
    fill(&r, b, N, 0.0f, 0.1f);
    lpl_block_q8_0 *q = malloc((size_t)N * K / 32 * sizeof *q);
    lpl_quantize_q8_0(w, q, (int64_t)N * K);
    lpl_matrix W = {LPL_Q8_0, N, K, q};
    lpl_linear_forward(y, x, &W, b, M, 0);
    lpl_linear_backward_input(dx, dy, &W, M);
    /* layernorm on x (rows of K), gelu on x */
    float *lw = malloc((size_t)K * 4), *lb = malloc((size_t)K * 4), *ly = malloc((size_t)M * K * 4);
    float *mean = malloc((size_t)M * 4), *rstd = malloc((size_t)M * 4), *ldx = calloc((size_t)M * K, 4);
    float *g = malloc((size_t)M * K * 4), *gd = calloc((size_t)M * K, 4), *dout = malloc((size_t)M * K * 4);
    fill(&r, lw, K, 1.0f, 0.2f);
    fill(&r, lb, K, 0.0f, 0.2f);
    fill(&r, dout, (int64_t)M * K, 0.0f, 1.0f);
    lpl_layernorm_forward(ly, mean, rstd, x, lw, lb, M, K, 1e-5f);
    lpl_layernorm_backward(ldx, NULL, NULL, dout, x, lw, mean, rstd, M, K);
    for (int64_t i = 0; i < (int64_t)M * K; i++)
        x[i] *= 3.0f; /* gelu over a wider range, both tails */
    lpl_gelu_forward(g, x, (int64_t)M * K);
    lpl_gelu_backward(gd, x, dout, (int64_t)M * K);
    for (int64_t i = 0; i < (int64_t)M * K; i++)
        x[i] /= 3.0f;
    printf("{\"M\": %d, \"N\": %d, \"K\": %d, \"sections\": {\n", M, N, K);
    section("w", "q8_0", q, (size_t)N * K / 32 * sizeof *q);
    section("x", "f32", x, (size_t)M * K * 4);
    section("dy", "f32", dy, (size_t)M * N * 4);
    section("b", "f32", b, (size_t)N * 4);
    section("y", "f32", y, (size_t)M * N * 4);
    section("dx", "f32", dx, (size_t)M * K * 4);
    section("ln_w", "f32", lw, (size_t)K * 4);
    section("ln_b", "f32", lb, (size_t)K * 4);
    section("ln_y", "f32", ly, (size_t)M * K * 4);
    section("ln_dout", "f32", dout, (size_t)M * K * 4);
    section("ln_dx", "f32", ldx, (size_t)M * K * 4);
    section("gelu_y", "f32", g, (size_t)M * K * 4);
    section("gelu_dx", "f32", gd, (size_t)M * K * 4);
    printf("\n}}\n");
    fclose(bin);
    return 0;
}

/* Opens OUT.bin for the sections and starts the JSON manifest. */
static void open_out(const char *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.bin", out);
    bin = fopen(path, "wb");
    if (!bin)
        die("cannot write the output", NULL);
    printf("{\"sections\": {\n");
}

static void close_out(void)
{
    printf("\n}}\n");
    fclose(bin);
}

static float *fvec(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!p)
        die("out of memory", NULL);
    return p;
}

/* Rows of x [rows][cols] with standard deviations spread over 40x (0.05 .. 2). */
static void fill_rows_spread(lpl_rng *r, float *x, int rows, int cols)
{
    for (int i = 0; i < rows; i++)
        fill(r, x + (size_t)i * cols, cols, 0.0f, i % 2 ? 2.0f : 0.05f);
}

static int cmd_matf32(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: gpu_ref matf32 OUT M N K ALPHA SEED\n");
        return 1;
    }
    const int M = atoi(argv[3]), N = atoi(argv[4]), K = atoi(argv[5]);
    const float alpha = (float)atof(argv[6]);
    if (M < 1 || N < 1 || K < 1) {
        fprintf(stderr, "gpu_ref matf32: M, N, K >= 1\n");
        return 1;
    }
    lpl_rng r;
    lpl_rng_seed(&r, strtoull(argv[7], NULL, 10));
    float *a = fvec((int64_t)M * K), *at = fvec((int64_t)K * M), *bt = fvec((int64_t)N * K);
    float *bn = fvec((int64_t)K * N), *c0 = fvec((int64_t)M * N), *bias = fvec(N);
    fill_rows_spread(&r, a, M, K);
    for (int i = 0; i < M; i++) /* the same matrix stored transposed, for tn */
        for (int k = 0; k < K; k++)
            at[(size_t)k * M + i] = a[(size_t)i * K + k];
    fill_rows_spread(&r, bt, N, K);
    fill(&r, bn, (int64_t)K * N, 0.0f, 1.0f);
    fill(&r, c0, (int64_t)M * N, 0.0f, 1.0f);
    fill(&r, bias, N, 0.0f, 0.5f);
    float *tmp = fvec((int64_t)M * N), *nt = fvec((int64_t)M * N), *nn = fvec((int64_t)M * N);
    float *tn = fvec((int64_t)M * N), *lin = fvec((int64_t)M * N);
    float *outs[3] = {nt, nn, tn};
    for (int v = 0; v < 3; v++) {
        if (v == 0)
            lpl_matmul_nt(tmp, a, bt, M, N, K, 0);
        else if (v == 1)
            lpl_matmul_nn(tmp, a, bn, M, N, K, 0);
        else
            lpl_matmul_tn(tmp, at, bn, M, N, K, 0);
        for (int64_t i = 0; i < (int64_t)M * N; i++)
            outs[v][i] = alpha * tmp[i] + c0[i];
    }
    lpl_matrix W = {LPL_F32, N, K, bt};
    lpl_linear_forward(lin, a, &W, bias, M, 0);
    open_out(argv[2]);
    section("a", "f32", a, (size_t)M * K * 4);
    section("at", "f32", at, (size_t)K * M * 4);
    section("bt", "f32", bt, (size_t)N * K * 4);
    section("bn", "f32", bn, (size_t)K * N * 4);
    section("c0", "f32", c0, (size_t)M * N * 4);
    section("bias", "f32", bias, (size_t)N * 4);
    section("nt", "f32", nt, (size_t)M * N * 4);
    section("nn", "f32", nn, (size_t)M * N * 4);
    section("tn", "f32", tn, (size_t)M * N * 4);
    section("lin", "f32", lin, (size_t)M * N * 4);
    close_out();
    return 0;
}

static int cmd_attn(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: gpu_ref attn OUT T C H P KEY STREAM SEED\n");
        return 1;
    }
    const int T = atoi(argv[3]), C = atoi(argv[4]), H = atoi(argv[5]);
    if (T < 1 || H < 1 || C < H || C % H) {
        fprintf(stderr, "gpu_ref attn: T >= 1 and C a positive multiple of H\n");
        return 1;
    }
    lpl_attn_dropout d = {strtoull(argv[7], NULL, 10), strtoull(argv[8], NULL, 10), (float)atof(argv[6])};
    lpl_rng r;
    lpl_rng_seed(&r, strtoull(argv[9], NULL, 10));
    float *qkv = fvec((int64_t)T * 3 * C), *dout = fvec((int64_t)T * C), *out = fvec((int64_t)T * C);
    float *lse = fvec((int64_t)H * T), *scratch = fvec((int64_t)H * T), *dqkv = fvec((int64_t)T * 3 * C);
    fill(&r, qkv, (int64_t)T * 3 * C, 0.0f, 1.5f); /* peaked and flat rows of scores */
    fill(&r, dout, (int64_t)T * C, 0.0f, 1.0f);
    lpl_attention_forward(out, lse, qkv, T, C, H, scratch, &d);
    lpl_attention_backward(dqkv, dout, qkv, out, lse, T, C, H, scratch, &d);
    open_out(argv[2]);
    section("qkv", "f32", qkv, (size_t)T * 3 * C * 4);
    section("dout", "f32", dout, (size_t)T * C * 4);
    section("out", "f32", out, (size_t)T * C * 4);
    section("lse", "f32", lse, (size_t)H * T * 4);
    section("dqkv", "f32", dqkv, (size_t)T * 3 * C * 4);
    close_out();
    return 0;
}

static int cmd_dropout(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: gpu_ref dropout OUT N P KEY STREAM\n");
        return 1;
    }
    const int64_t N = atoll(argv[3]);
    const float p = (float)atof(argv[4]);
    const uint64_t key = strtoull(argv[5], NULL, 10), stream = strtoull(argv[6], NULL, 10);
    if (N < 1 || stream >= (1u << 24)) {
        fprintf(stderr, "gpu_ref dropout: N >= 1 and STREAM < 2^24\n");
        return 1;
    }
    float *mask = fvec(N);
    for (int64_t i = 0; i < N; i++)
        mask[i] = lpl_dropout_scale(key, stream, (uint64_t)i, p);
    open_out(argv[2]);
    section("mask", "f32", mask, (size_t)N * 4);
    close_out();
    return 0;
}

static int cmd_embed(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: gpu_ref embed OUT T C V SEED\n");
        return 1;
    }
    const int T = atoi(argv[3]), C = atoi(argv[4]), V = atoi(argv[5]);
    if (T < 1 || V < 2 || C < 32 || C % 32) {
        fprintf(stderr, "gpu_ref embed: T >= 1, V >= 2, C a positive multiple of 32\n");
        return 1;
    }
    lpl_rng r;
    lpl_rng_seed(&r, strtoull(argv[6], NULL, 10));
    float *w = fvec((int64_t)V * C), *wpe = fvec((int64_t)T * C);
    fill_rows_spread(&r, w, V, C);
    fill(&r, wpe, (int64_t)T * C, 0.0f, 0.1f);
    lpl_block_q8_0 *q = malloc((size_t)V * C / 32 * sizeof *q);
    if (!q)
        die("out of memory", NULL);
    lpl_quantize_q8_0(w, q, (int64_t)V * C);
    int32_t *tok = malloc((size_t)T * 4);
    for (int t = 0; t < T; t++) /* the first and last rows of the vocabulary included */
        tok[t] = t == 0 ? V - 1 : t == 1 ? 0 : (int32_t)(lpl_rng_next(&r) % (uint64_t)V);
    float *oq = fvec((int64_t)T * C), *of = fvec((int64_t)T * C);
    const size_t rbq = lpl_dtype_row_bytes(LPL_Q8_0, C);
    for (int t = 0; t < T; t++) {
        lpl_dequantize_row(LPL_Q8_0, (const char *)q + (size_t)tok[t] * rbq, oq + (size_t)t * C, C);
        lpl_dequantize_row(LPL_F32, w + (size_t)tok[t] * C, of + (size_t)t * C, C);
        lpl_residual_forward(oq + (size_t)t * C, oq + (size_t)t * C, wpe + (size_t)t * C, C);
        lpl_residual_forward(of + (size_t)t * C, of + (size_t)t * C, wpe + (size_t)t * C, C);
    }
    open_out(argv[2]);
    section("wq", "q8_0", q, (size_t)V * rbq);
    section("wf", "f32", w, (size_t)V * C * 4);
    section("wpe", "f32", wpe, (size_t)T * C * 4);
    section("tokens", "i32", tok, (size_t)T * 4);
    section("out_q8", "f32", oq, (size_t)T * C * 4);
    section("out_f32", "f32", of, (size_t)T * C * 4);
    close_out();
    return 0;
}

static int cmd_ce(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: gpu_ref ce OUT N V SCALE SEED\n");
        return 1;
    }
    const int N = atoi(argv[3]), V = atoi(argv[4]);
    const float scale = (float)atof(argv[5]);
    if (N < 1 || V < 2) {
        fprintf(stderr, "gpu_ref ce: N >= 1, V >= 2\n");
        return 1;
    }
    lpl_rng r;
    lpl_rng_seed(&r, strtoull(argv[6], NULL, 10));
    float *logits = fvec((int64_t)N * V);
    for (int i = 0; i < N; i++) /* flat to sharply peaked rows: std 0.1 .. 20 */
        fill(&r, logits + (size_t)i * V, V, (float)i, i % 3 == 0 ? 0.1f : i % 3 == 1 ? 3.0f : 20.0f);
    int32_t *tg = malloc((size_t)N * 4);
    for (int i = 0; i < N; i++)
        tg[i] = i == 0 ? V - 1 : i == 1 ? 0 : (int32_t)(lpl_rng_next(&r) % (uint64_t)V);
    float *nll = fvec(N), *lse = fvec(N), *dl = fvec((int64_t)N * V);
    lpl_crossentropy_forward(nll, lse, logits, tg, NULL, N, V);
    lpl_crossentropy_backward(dl, logits, lse, tg, NULL, N, V, scale);
    open_out(argv[2]);
    section("logits", "f32", logits, (size_t)N * V * 4);
    section("targets", "i32", tg, (size_t)N * 4);
    section("nll", "f32", nll, (size_t)N * 4);
    section("dlogits", "f32", dl, (size_t)N * V * 4);
    close_out();
    return 0;
}

static int cmd_adamw(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: gpu_ref adamw OUT N CLIP LR WD SEED\n");
        return 1;
    }
    const int64_t N = atoll(argv[3]);
    const double clip = atof(argv[4]);
    const float lr = (float)atof(argv[5]);
    lpl_error err = {0};
    lpl_adamw_config ac;
    lpl_adamw_config_default(&ac);
    ac.weight_decay = (float)atof(argv[6]);
    lpl_adamw opt;
    if (N < 1 || lpl_adamw_init(&opt, &ac, N, &err))
        die("adamw", &err);
    lpl_rng r;
    lpl_rng_seed(&r, strtoull(argv[7], NULL, 10));
    float *p = fvec(N), *g1 = fvec(N), *g2 = fvec(N);
    fill(&r, p, N, 0.0f, 0.1f);
    fill(&r, g1, N, 0.0f, 0.05f);
    fill(&r, g2, N, 0.0f, 0.002f); /* a small second gradient: clipped in one step only */
    open_out(argv[2]);
    section("p0", "f32", p, (size_t)N * 4);
    section("g1", "f32", g1, (size_t)N * 4);
    section("g2", "f32", g2, (size_t)N * 4);
    float norms[2];
    float *gs[2] = {g1, g2};
    char name[32];
    for (int s = 0; s < 2; s++) {
        norms[s] = (float)lpl_clip_grad_norm(gs[s], N, clip);
        lpl_adamw_step(&opt, p, gs[s], lr);
        snprintf(name, sizeof name, "g%d_clipped", s + 1), section(name, "f32", gs[s], (size_t)N * 4);
        snprintf(name, sizeof name, "p%d", s + 1), section(name, "f32", p, (size_t)N * 4);
        snprintf(name, sizeof name, "m%d", s + 1), section(name, "f32", opt.m, (size_t)N * 4);
        snprintf(name, sizeof name, "v%d", s + 1), section(name, "f32", opt.v, (size_t)N * 4);
    }
    section("norms", "f32", norms, sizeof norms);
    close_out();
    lpl_adamw_free(&opt);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"step", cmd_step},   {"kernels", cmd_kernels}, {"matf32", cmd_matf32}, {"attn", cmd_attn},
                {"dropout", cmd_dropout}, {"embed", cmd_embed},   {"ce", cmd_ce},         {"adamw", cmd_adamw}};
    for (size_t i = 0; argc >= 2 && i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc, argv);
    fprintf(stderr, "usage: gpu_ref step|kernels|matf32|attn|dropout|embed|ce|adamw OUT ...\n");
    return 1;
}
