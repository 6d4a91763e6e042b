/* Gradient checks. An independent double-precision GPT-2 (+ LoRA) written here with
 * plain loops is the reference: its forward must match the engine's loss, and
 * central finite differences of its loss (step 1e-5 in double, so truncation and
 * rounding errors are ~1e-10) must match the engine's float32 backward.
 *
 * Tolerance for a gradient entry g against finite difference f:
 *   |g - f| <= 2e-3 * max|f over the checked set| + 1e-2 * |f|
 * (float32 forward/backward through two blocks; observed errors are ~1e-5 relative).
 * Each layer's backward is checked the same way against its own double reference.
 *
 * Compute int8 (Q8_0 base products on int8 codes) is held to the same exact
 * finite differences, at TOL_INT8_ABS / TOL_INT8_REL: every base product quantizes
 * one operand per block of 32 with step d = max|x| / 127, a rounding error of
 * RMS d / sqrt(12), about 0.6% of a row's RMS for Gaussian-like rows (1-1.6% with
 * outliers, tests/test_kernels_q8.c). A gradient entry passes through about ten such
 * products (forward and backward of two blocks and the LM head), whose errors add
 * in quadrature to a few percent: 4e-2 of the set's largest |fd| plus 1e-1 of the
 * entry leaves room for the worst of 24 samples, and is still far below what a
 * wrong gradient gives (a sign or a missing term is O(1) relative). The loss itself
 * must match the exact reference within 1e-2 relative (TOL_INT8_LOSS). */
#include "check.h"
#include "lpl/model/gpt2.h"
#include "lpl/model/gpt2_layers.h"
#include "lpl/core/kernels.h"
#include "lpl/model/lora.h"
#include "lpl/model/optim.h"
#include "lpl/core/threads.h"
#include "lpl/core/rng.h"

#include <string.h>

#define FD_EPS 1e-5
#define TOL_ABS 2e-3
#define TOL_REL 1e-2
#define TOL_INT8_ABS 4e-2
#define TOL_INT8_REL 1e-1
#define TOL_INT8_LOSS 1e-2

/* Base products of the checks below: f32, or int8 for the compute-int8 cases. */
static lpl_compute g_compute = LPL_COMPUTE_F32;

/* Sequence length of the adapter checks; one case uses 40 so that the attention's
 * 32-query blocks (src/gpt2_layers.c) are crossed. */
static int adapter_T = 12;

/* Base-model dropout of the adapter and full-parameter checks (0: off). */
static lpl_gpt2_dropout g_bdrop = {0, 0, 0};

/* ---------------- a tiny config ---------------- */

static lpl_gpt2_config tiny_cfg(void)
{
    lpl_gpt2_config c = {.n_layer = 2, .n_embd = 32, .n_head = 4, .n_ctx = 48, .n_vocab = 64, .ln_eps = 1e-5f};
    return c;
}

/* A random model with O(0.1) weights so every nonlinearity is exercised. */
static lpl_gpt2_model *make_model(uint64_t seed, lpl_dtype t)
{
    lpl_gpt2_config c = tiny_cfg();
    lpl_error err;
    lpl_gpt2_model *m = lpl_gpt2_create_random(&c, seed, &err);
    if (!m)
        return NULL;
    lpl_rng r;
    lpl_rng_seed(&r, seed + 1);
    for (int64_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.1f * lpl_rng_normal(&r);
    if (t != LPL_F32 && lpl_gpt2_convert(m, t, &err) != LPL_OK) {
        lpl_gpt2_free(m);
        return NULL;
    }
    return m;
}

/* ---------------- double reference ---------------- */

typedef struct {
    lpl_gpt2_config c;
    double *wte, *wpe, *lnf_w, *lnf_b;
    double *ln1_w[4], *ln1_b[4], *w[4][LPL_N_SITES], *b[4][LPL_N_SITES], *ln2_w[4], *ln2_b[4];
    /* LoRA */
    double *A[4][LPL_N_SITES], *B[4][LPL_N_SITES];
    int r;
    double scaling, p;
    uint64_t key;
    int dropout_on;
    /* base-model dropout (gpt2.h lpl_gpt2_state_set_dropout): rates and the forward's key */
    lpl_gpt2_dropout bd;
    uint64_t bkey;
    /* buffers */
    double *x, *h, *qkv, *att, *tmp, *f, *g, *logits;
} ref_model;

static double *dup_vec(const float *v, int64_t n)
{
    double *d = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        d[i] = v[i];
    return d;
}

static double *dup_matrix(const lpl_matrix *m)
{
    double *d = malloc((size_t)m->rows * m->cols * sizeof(double));
    float *row = malloc((size_t)m->cols * sizeof(float));
    size_t rb = lpl_dtype_row_bytes(m->type, m->cols);
    for (int r = 0; r < m->rows; r++) {
        lpl_dequantize_row(m->type, (const char *)m->data + (size_t)r * rb, row, m->cols);
        for (int i = 0; i < m->cols; i++)
            d[(size_t)r * m->cols + i] = row[i];
    }
    free(row);
    return d;
}

static void ref_build(ref_model *R, const lpl_gpt2_model *m, const lpl_lora *l)
{
    memset(R, 0, sizeof *R);
    const lpl_gpt2_config *c = &m->cfg;
    R->c = *c;
    const int C = c->n_embd, T = c->n_ctx;
    R->wte = dup_matrix(&m->wte);
    R->wpe = dup_vec(m->wpe, (int64_t)c->n_ctx * C);
    R->lnf_w = dup_vec(m->lnf_w, C);
    R->lnf_b = dup_vec(m->lnf_b, C);
    for (int L = 0; L < c->n_layer; L++) {
        const lpl_gpt2_block *b = &m->blocks[L];
        R->ln1_w[L] = dup_vec(b->ln1_w, C);
        R->ln1_b[L] = dup_vec(b->ln1_b, C);
        R->ln2_w[L] = dup_vec(b->ln2_w, C);
        R->ln2_b[L] = dup_vec(b->ln2_b, C);
        for (int s = 0; s < LPL_SITE_GPT2_END; s++) {
            R->w[L][s] = dup_matrix(&b->w[s]);
            R->b[L][s] = dup_vec(b->b[s], b->w[s].rows);
        }
    }
    if (l) {
        R->r = l->cfg.r;
        R->scaling = l->scaling;
        R->p = l->cfg.dropout;
        for (int i = 0; i < l->n_modules; i++) {
            const lpl_lora_module *mod = &l->modules[i];
            R->A[mod->layer][mod->site] = dup_vec(mod->A, (int64_t)R->r * mod->in);
            R->B[mod->layer][mod->site] = dup_vec(mod->B, (int64_t)R->r * mod->out);
        }
    }
    R->x = calloc((size_t)T * C, sizeof(double));
    R->h = calloc((size_t)T * C, sizeof(double));
    R->qkv = calloc((size_t)T * 3 * C, sizeof(double));
    R->att = calloc((size_t)T * C, sizeof(double));
    R->tmp = calloc((size_t)T * C, sizeof(double));
    R->f = calloc((size_t)T * 4 * C, sizeof(double));
    R->g = calloc((size_t)T * 4 * C, sizeof(double));
    R->logits = calloc((size_t)T * c->n_vocab, sizeof(double));
}

static void ref_free(ref_model *R)
{
    free(R->wte), free(R->wpe), free(R->lnf_w), free(R->lnf_b);
    for (int L = 0; L < R->c.n_layer; L++) {
        free(R->ln1_w[L]), free(R->ln1_b[L]), free(R->ln2_w[L]), free(R->ln2_b[L]);
        for (int s = 0; s < LPL_N_SITES; s++)
            free(R->w[L][s]), free(R->b[L][s]), free(R->A[L][s]), free(R->B[L][s]);
    }
    free(R->x), free(R->h), free(R->qkv), free(R->att), free(R->tmp), free(R->f), free(R->g), free(R->logits);
}

static void ref_layernorm(double *out, const double *x, const double *w, const double *b, int T, int C, double eps)
{
    for (int t = 0; t < T; t++) {
        const double *xr = x + (size_t)t * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++)
            m += xr[i];
        m /= C;
        for (int i = 0; i < C; i++)
            v += (xr[i] - m) * (xr[i] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + eps);
        for (int i = 0; i < C; i++)
            out[(size_t)t * C + i] = (xr[i] - m) * rs * w[i] + b[i];
    }
}

static double ref_gelu(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* The base dropout multiplier of element idx at (site, layer), 1 when off. */
static double ref_bdrop(const ref_model *R, lpl_gpt2_drop_site site, int layer, uint64_t idx)
{
    float p = site == LPL_DROP_EMBD ? R->bd.embd : site == LPL_DROP_ATTN ? R->bd.attn : R->bd.resid;
    return p > 0 ? lpl_dropout_scale(R->bkey, lpl_gpt2_dropout_stream(site, layer), idx, p) : 1.0;
}

/* out[T][C] from qkv[T][3C], causal softmax(q.k / sqrt(hd)) v per head; with a
 * dropout (drop non-NULL) each probability times its multiplier. */
static void ref_attention_drop(double *out, const double *qkv, int T, int C, int H, const lpl_attn_dropout *drop)
{
    int hd = C / H;
    double *p = malloc((size_t)T * sizeof(double));
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            double mx = -1e300, sum = 0;
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int d = 0; d < hd; d++)
                    s += qkv[(size_t)i * 3 * C + h * hd + d] * qkv[(size_t)j * 3 * C + C + h * hd + d];
                p[j] = s / sqrt((double)hd);
                if (p[j] > mx)
                    mx = p[j];
            }
            for (int j = 0; j <= i; j++)
                sum += (p[j] = exp(p[j] - mx));
            for (int j = 0; j <= i && drop; j++)
                p[j] *= lpl_dropout_scale(drop->key, drop->stream, (uint64_t)h << 32 | (uint64_t)i << 16 | (uint64_t)j,
                                          drop->p);
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int j = 0; j <= i; j++)
                    o += p[j] / sum * qkv[(size_t)j * 3 * C + 2 * C + h * hd + d];
                out[(size_t)i * C + h * hd + d] = o;
            }
        }
    free(p);
}

static void ref_attention(double *out, const double *qkv, int T, int C, int H)
{
    ref_attention_drop(out, qkv, T, C, H, NULL);
}

/* Y[T][out] = X W^T + b + scaling * B A dropout(X). */
static void ref_linear(const ref_model *R, int L, lpl_site s, double *Y, const double *X, int T)
{
    int out, in;
    lpl_site_shape(&R->c, s, &out, &in);
    const double *W = R->w[L][s], *b = R->b[L][s];
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int i = 0; i < in; i++)
                acc += X[(size_t)t * in + i] * W[(size_t)o * in + i];
            Y[(size_t)t * out + o] = acc;
        }
    const double *A = R->A[L][s], *B = R->B[L][s];
    if (!A)
        return;
    double *u = malloc((size_t)R->r * sizeof(double));
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < R->r; k++) {
            double acc = 0;
            for (int i = 0; i < in; i++) {
                double keep = R->dropout_on ? lpl_lora_dropout_scale(R->key, L, s, (int64_t)t * in + i, (float)R->p) : 1.0;
                acc += A[(size_t)k * in + i] * X[(size_t)t * in + i] * keep;
            }
            u[k] = acc;
        }
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int k = 0; k < R->r; k++)
                acc += B[(size_t)o * R->r + k] * u[k];
            Y[(size_t)t * out + o] += R->scaling * acc;
        }
    }
    free(u);
}

/* Mean NLL over scored positions. */
static double ref_loss(ref_model *R, const int *tok, const int *tgt, const uint8_t *mask, int T)
{
    const lpl_gpt2_config *c = &R->c;
    const int C = c->n_embd, V = c->n_vocab;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++)
            R->x[(size_t)t * C + i] = (R->wte[(size_t)tok[t] * C + i] + R->wpe[(size_t)t * C + i]) *
                                      ref_bdrop(R, LPL_DROP_EMBD, 0, (uint64_t)t * C + i);
    for (int L = 0; L < c->n_layer; L++) {
        ref_layernorm(R->h, R->x, R->ln1_w[L], R->ln1_b[L], T, C, c->ln_eps);
        ref_linear(R, L, LPL_SITE_ATTN_QKV, R->qkv, R->h, T);
        lpl_attn_dropout ad = {R->bkey, lpl_gpt2_dropout_stream(LPL_DROP_ATTN, L), R->bd.attn};
        ref_attention_drop(R->att, R->qkv, T, C, c->n_head, R->bd.attn > 0 ? &ad : NULL);
        ref_linear(R, L, LPL_SITE_ATTN_PROJ, R->tmp, R->att, T);
        for (int i = 0; i < T * C; i++)
            R->x[i] += R->tmp[i] * ref_bdrop(R, LPL_DROP_RESID_ATTN, L, (uint64_t)i);
        ref_layernorm(R->h, R->x, R->ln2_w[L], R->ln2_b[L], T, C, c->ln_eps);
        ref_linear(R, L, LPL_SITE_MLP_FC, R->f, R->h, T);
        for (int i = 0; i < T * 4 * C; i++)
            R->g[i] = ref_gelu(R->f[i]);
        ref_linear(R, L, LPL_SITE_MLP_PROJ, R->tmp, R->g, T);
        for (int i = 0; i < T * C; i++)
            R->x[i] += R->tmp[i] * ref_bdrop(R, LPL_DROP_RESID_MLP, L, (uint64_t)i);
    }
    ref_layernorm(R->h, R->x, R->lnf_w, R->lnf_b, T, C, c->ln_eps);
    double total = 0;
    int n = 0;
    for (int t = 0; t < T; t++) {
        if (mask && !mask[t])
            continue;
        double mx = -1e300, sum = 0;
        double *z = R->logits + (size_t)t * V;
        for (int v = 0; v < V; v++) {
            double acc = 0;
            for (int i = 0; i < C; i++)
                acc += R->h[(size_t)t * C + i] * R->wte[(size_t)v * C + i];
            z[v] = acc;
            if (acc > mx)
                mx = acc;
        }
        for (int v = 0; v < V; v++)
            sum += exp(z[v] - mx);
        total += mx + log(sum) - z[tgt[t]];
        n++;
    }
    return total / n;
}

static double fd(ref_model *R, double *param, const int *tok, const int *tgt, const uint8_t *mask, int T)
{
    double keep = *param;
    *param = keep + FD_EPS;
    double lp = ref_loss(R, tok, tgt, mask, T);
    *param = keep - FD_EPS;
    double lm = ref_loss(R, tok, tgt, mask, T);
    *param = keep;
    return (lp - lm) / (2 * FD_EPS);
}

/* Compares analytic gradients g[idx[k]] with finite differences of params p[idx[k]];
 * returns the largest error relative to the largest |fd|. */
static double compare_set(const char *what, ref_model *R, double *p, const float *g, const int64_t *idx, int n,
                          const int *tok, const int *tgt, const uint8_t *mask, int T)
{
    double f[64], scale = 0, worst = 0;
    for (int k = 0; k < n; k++) {
        f[k] = fd(R, p + idx[k], tok, tgt, mask, T);
        if (fabs(f[k]) > scale)
            scale = fabs(f[k]);
    }
    CHECK(scale > 1e-7, "%s: finite differences are all ~0 (%g): the check would be vacuous", what, scale);
    int i8 = g_compute == LPL_COMPUTE_INT8;
    double tabs = i8 ? TOL_INT8_ABS : TOL_ABS, trel = i8 ? TOL_INT8_REL : TOL_REL;
    for (int k = 0; k < n; k++) {
        double e = fabs(g[idx[k]] - f[k]);
        CHECK(e <= tabs * scale + trel * fabs(f[k]), "%s[%lld]: analytic %.9g vs finite difference %.9g",
              what, (long long)idx[k], g[idx[k]], f[k]);
        if (e / scale > worst)
            worst = e / scale;
    }
    return worst;
}

/* n sample indices in [0, len), spread out, deterministic. */
static int sample_indices(int64_t *idx, int n, int64_t len, lpl_rng *r)
{
    if (len <= n) {
        for (int64_t i = 0; i < len; i++)
            idx[i] = i;
        return (int)len;
    }
    for (int k = 0; k < n; k++)
        idx[k] = (int64_t)(lpl_rng_next(r) % (uint64_t)len);
    return n;
}

static void make_sequence(int *tok, int *tgt, uint8_t *mask, int T, int V, uint64_t seed)
{
    lpl_rng r;
    lpl_rng_seed(&r, seed);
    for (int t = 0; t < T; t++) {
        tok[t] = (int)(lpl_rng_next(&r) % (uint64_t)V);
        tgt[t] = (int)(lpl_rng_next(&r) % (uint64_t)V);
        mask[t] = (t % 3) != 1; /* some positions are not scored */
    }
}

/* ---------------- end-to-end adapter gradients ---------------- */

static double worst_seen = 0;

static void check_adapters(const char *label, lpl_dtype type, const char *const *targets, int n_targets,
                           const char *regex, const int *layers, int n_layers, float dropout, int expect_modules)
{
    lpl_error err;
    lpl_gpt2_model *m = make_model(11, type);
    CHECK(m != NULL, "%s: model", label);
    if (!m)
        return;
    lpl_lora_config lc;
    lpl_lora_config_default(&lc);
    lc.r = 4;
    lc.alpha = 8;
    lc.dropout = dropout;
    lc.n_targets = n_targets;
    for (int i = 0; i < n_targets; i++)
        snprintf(lc.targets[i], sizeof lc.targets[i], "%s", targets[i]);
    if (regex)
        snprintf(lc.regex, sizeof lc.regex, "%s", regex);
    lc.n_layers = n_layers;
    for (int i = 0; i < n_layers; i++)
        lc.layers[i] = layers[i];
    lpl_lora *l = lpl_lora_attach(&lc, &m->cfg, &err);
    CHECK(l != NULL, "%s: attach: %s", label, err.msg);
    if (!l) {
        lpl_gpt2_free(m);
        return;
    }
    CHECK(l->n_modules == expect_modules, "%s: %d modules, expected %d", label, l->n_modules, expect_modules);
    /* B = 0 would make dA vanish: give B values so every path carries gradient */
    lpl_rng r;
    lpl_rng_seed(&r, 5);
    for (int i = 0; i < l->n_modules; i++)
        for (int64_t j = 0; j < (int64_t)lc.r * l->modules[i].out; j++)
            l->modules[i].B[j] = 0.3f * lpl_rng_normal(&r);

    const int T = adapter_T;
    int tok[48], tgt[48];
    uint8_t mask[48];
    make_sequence(tok, tgt, mask, T, m->cfg.n_vocab, 3);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, 48, 0, &err);
    lpl_gpt2_state_set_compute(s, g_compute);
    CHECK(lpl_gpt2_state_set_dropout(s, &g_bdrop, 77, &err) == LPL_OK, "%s: set dropout: %s", label, err.msg);
    ref_model R;
    ref_build(&R, m, l);
    R.dropout_on = dropout > 0;
    R.key = l->rng_state; /* the key the next training forward will use */
    R.bd = g_bdrop;
    R.bkey = lpl_gpt2_state_dropout_key(s);
    lpl_loss loss;
    lpl_lora_zero_grads(l);
    lpl_status st = lpl_gpt2_forward(m, l, s, tok, tgt, mask, T, 1, &loss, &err);
    CHECK(st == LPL_OK, "%s: forward: %s", label, err.msg);
    st = lpl_gpt2_backward(m, l, s, &err);
    CHECK(st == LPL_OK, "%s: backward: %s", label, err.msg);
    double ref = ref_loss(&R, tok, tgt, mask, T);
    if (g_compute == LPL_COMPUTE_INT8) {
        CHECK_CLOSE(loss.loss, ref, 0, TOL_INT8_LOSS, "engine loss (int8) vs double reference");
        /* and int8 really ran: the loss is not the f32 one to the last bits */
        CHECK(fabs(loss.loss - ref) > 1e-6 * fabs(ref), "%s: int8 loss %.9g equals the exact one", label, loss.loss);
    } else {
        CHECK_CLOSE(loss.loss, ref, 0, 1e-5, "engine loss vs double reference");
    }
    if (g_bdrop.embd > 0 || g_bdrop.attn > 0 || g_bdrop.resid > 0) {
        /* the masks really dropped: an eval forward (no dropout) gives another loss */
        lpl_loss plain;
        CHECK(lpl_gpt2_forward(m, l, s, tok, tgt, mask, T, 0, &plain, &err) == LPL_OK, "%s: eval forward", label);
        CHECK(fabs(plain.loss - loss.loss) > 1e-3, "%s: base dropout left the loss at %.6g", label, loss.loss);
    }

    for (int i = 0; i < l->n_modules; i++) {
        const lpl_lora_module *mod = &l->modules[i];
        char what[128];
        int64_t idx[24];
        int n = sample_indices(idx, 24, (int64_t)lc.r * mod->in, &r);
        snprintf(what, sizeof what, "%s: layer %d %s dA", label, mod->layer, lpl_site_name(mod->site));
        double w = compare_set(what, &R, R.A[mod->layer][mod->site], mod->dA, idx, n, tok, tgt, mask, T);
        n = sample_indices(idx, 24, (int64_t)lc.r * mod->out, &r);
        snprintf(what, sizeof what, "%s: layer %d %s dB", label, mod->layer, lpl_site_name(mod->site));
        double w2 = compare_set(what, &R, R.B[mod->layer][mod->site], mod->dB, idx, n, tok, tgt, mask, T);
        if (w > worst_seen) worst_seen = w;
        if (w2 > worst_seen) worst_seen = w2;
    }
    ref_free(&R);
    lpl_gpt2_state_free(s);
    lpl_lora_free(l);
    lpl_gpt2_free(m);
}

/* ---------------- full-parameter gradients ---------------- */

typedef struct {
    const char *name;
    double *ref;
    int64_t off, len;
} kind;

static void check_full_params(void)
{
    lpl_error err;
    lpl_gpt2_model *m = make_model(21, LPL_F32);
    const int T = 10;
    int tok[48], tgt[48];
    uint8_t mask[48];
    make_sequence(tok, tgt, mask, T, m->cfg.n_vocab, 8);
    lpl_gpt2_state *s = lpl_gpt2_state_new(m, 48, 1, &err);
    CHECK(s && lpl_gpt2_state_grads(s), "full-gradient state: %s", err.msg);
    lpl_gpt2_zero_grads(s);
    CHECK(lpl_gpt2_state_set_dropout(s, &g_bdrop, 5, &err) == LPL_OK, "full grads: set dropout: %s", err.msg);
    const uint64_t bkey = lpl_gpt2_state_dropout_key(s);
    lpl_loss loss;
    CHECK(lpl_gpt2_forward(m, NULL, s, tok, tgt, mask, T, 1, &loss, &err) == LPL_OK, "forward: %s", err.msg);
    CHECK(lpl_gpt2_backward(m, NULL, s, &err) == LPL_OK, "backward: %s", err.msg);
    const float *g = lpl_gpt2_state_grads(s);
    ref_model R;
    ref_build(&R, m, NULL);
    R.bd = g_bdrop;
    R.bkey = bkey;
    CHECK_CLOSE(loss.loss, ref_loss(&R, tok, tgt, mask, T), 0, 1e-5, "full model loss vs reference");

    lpl_rng r;
    lpl_rng_seed(&r, 9);
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(&m->cfg, &top);
    const int C = m->cfg.n_embd;
    kind kinds[32];
    int nk = 0;
    /* wte rows of tokens that occur get both the embedding and the LM-head gradient */
    kinds[nk++] = (kind){"wte (used rows)", R.wte + (int64_t)tok[2] * C, top.wte + (int64_t)tok[2] * C, C};
    kinds[nk++] = (kind){"wte (all)", R.wte, top.wte, (int64_t)m->cfg.n_vocab * C};
    kinds[nk++] = (kind){"wpe", R.wpe, top.wpe, (int64_t)T * C};
    kinds[nk++] = (kind){"ln_f.weight", R.lnf_w, top.lnf_w, C};
    kinds[nk++] = (kind){"ln_f.bias", R.lnf_b, top.lnf_b, C};
    for (int L = 0; L < m->cfg.n_layer; L++) {
        lpl_gpt2_block_offsets o;
        lpl_gpt2_block_offsets_of(&m->cfg, L, &o);
        kinds[nk++] = (kind){"ln_1.weight", R.ln1_w[L], o.ln1_w, C};
        kinds[nk++] = (kind){"ln_1.bias", R.ln1_b[L], o.ln1_b, C};
        kinds[nk++] = (kind){"ln_2.weight", R.ln2_w[L], o.ln2_w, C};
        kinds[nk++] = (kind){"ln_2.bias", R.ln2_b[L], o.ln2_b, C};
        for (int st = 0; st < LPL_SITE_GPT2_END; st++) {
            int out, in;
            lpl_site_shape(&m->cfg, (lpl_site)st, &out, &in);
            kinds[nk++] = (kind){lpl_site_name((lpl_site)st), R.w[L][st], o.w[st], (int64_t)out * in};
            kinds[nk++] = (kind){"bias", R.b[L][st], o.b[st], out};
        }
    }
    for (int k = 0; k < nk; k++) {
        int64_t idx[16];
        int n = sample_indices(idx, 16, kinds[k].len, &r);
        char what[96];
        snprintf(what, sizeof what, "full grads %s #%d", kinds[k].name, k);
        double w = compare_set(what, &R, kinds[k].ref, g + kinds[k].off, idx, n, tok, tgt, mask, T);
        if (w > worst_seen)
            worst_seen = w;
    }
    ref_free(&R);
    lpl_gpt2_state_free(s);
    lpl_gpt2_free(m);
}

/* ---------------- layer by layer ---------------- */

static double max_diff(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void fill(float *x, int64_t n, lpl_rng *r, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * lpl_rng_normal(r);
}

/* Checks d/dx sum(f(x) * R) for a layer given as a double function of its input. */
typedef void (*ref_fn)(double *out, const double *in, void *ctx);

static void check_layer(const char *what, ref_fn f, void *ctx, const float *x, int64_t nin, const float *Rw,
                        int64_t nout, const float *dx)
{
    double *xin = dup_vec(x, nin), *out = malloc((size_t)nout * sizeof(double));
    double scale = 0;
    double *fdv = malloc((size_t)nin * sizeof(double));
    for (int64_t i = 0; i < nin; i++) {
        double keep = xin[i], lp = 0, lm = 0;
        xin[i] = keep + FD_EPS;
        f(out, xin, ctx);
        for (int64_t j = 0; j < nout; j++)
            lp += out[j] * Rw[j];
        xin[i] = keep - FD_EPS;
        f(out, xin, ctx);
        for (int64_t j = 0; j < nout; j++)
            lm += out[j] * Rw[j];
        xin[i] = keep;
        fdv[i] = (lp - lm) / (2 * FD_EPS);
        if (fabs(fdv[i]) > scale)
            scale = fabs(fdv[i]);
    }
    int bad = 0;
    for (int64_t i = 0; i < nin; i++)
        if (!(fabs(dx[i] - fdv[i]) <= 1e-4 * scale + 1e-3 * fabs(fdv[i])) && bad++ < 5)
            CHECK(0, "%s: d[%lld] analytic %.9g vs finite difference %.9g", what, (long long)i, dx[i], fdv[i]);
    CHECK(bad == 0 && scale > 0, "%s: %d mismatches (scale %g)", what, bad, scale);
    free(xin), free(out), free(fdv);
}

typedef struct { const double *w, *b; int T, C, H; } layer_ctx;

static void ref_ln_fn(double *out, const double *in, void *p)
{
    layer_ctx *c = p;
    ref_layernorm(out, in, c->w, c->b, c->T, c->C, 1e-5);
}
static void ref_gelu_fn(double *out, const double *in, void *p)
{
    layer_ctx *c = p;
    for (int i = 0; i < c->T * c->C; i++)
        out[i] = ref_gelu(in[i]);
}
static void ref_attn_fn(double *out, const double *in, void *p)
{
    layer_ctx *c = p;
    ref_attention(out, in, c->T, c->C, c->H);
}
static const lpl_attn_dropout g_attn_drop = {1234, 7, 0.3f};
static void ref_attn_drop_fn(double *out, const double *in, void *p)
{
    layer_ctx *c = p;
    ref_attention_drop(out, in, c->T, c->C, c->H, &g_attn_drop);
}
typedef struct { int T, V; const int *tgt; const uint8_t *mask; } ce_ctx_t;
static void ref_ce_fn(double *out, const double *in, void *p)
{
    ce_ctx_t *c = p;
    for (int t = 0; t < c->T; t++) {
        const double *z = in + (size_t)t * c->V;
        double mx = z[0], s = 0;
        for (int v = 1; v < c->V; v++)
            if (z[v] > mx)
                mx = z[v];
        for (int v = 0; v < c->V; v++)
            s += exp(z[v] - mx);
        out[t] = (c->mask[t]) ? mx + log(s) - z[c->tgt[t]] : 0;
    }
}

static void check_layers(void)
{
    lpl_rng r;
    lpl_rng_seed(&r, 77);
    const int T = 7, C = 32, H = 4, V = 50;
    float x[7 * 96], y[7 * 96], Rw[7 * 96], dx[7 * 96], w[32], b[32], dw[32], db[32], mean[7], rstd[7];

    /* layer norm: input, gain and bias gradients */
    fill(x, T * C, &r, 1.5f);
    fill(w, C, &r, 1.0f);
    fill(b, C, &r, 1.0f);
    fill(Rw, T * C, &r, 1.0f);
    lpl_layernorm_forward(y, mean, rstd, x, w, b, T, C, 1e-5f);
    memset(dx, 0, sizeof dx);
    memset(dw, 0, sizeof dw);
    memset(db, 0, sizeof db);
    lpl_layernorm_backward(dx, dw, db, Rw, x, w, mean, rstd, T, C);
    double *wd = dup_vec(w, C), *bd = dup_vec(b, C);
    layer_ctx lc = {wd, bd, T, C, H};
    check_layer("layernorm dinp", ref_ln_fn, &lc, x, T * C, Rw, T * C, dx);
    /* gains: d/dw sum(y R) = sum_t R xhat, bias: sum_t R */
    for (int i = 0; i < C; i++) {
        double gw = 0, gb = 0;
        for (int t = 0; t < T; t++) {
            gw += Rw[t * C + i] * (x[t * C + i] - mean[t]) * rstd[t];
            gb += Rw[t * C + i];
        }
        CHECK_CLOSE(dw[i], gw, 1e-5, 1e-4, "layernorm dw");
        CHECK_CLOSE(db[i], gb, 1e-5, 1e-4, "layernorm db");
    }

    /* gelu */
    fill(x, T * C, &r, 2.0f);
    memset(dx, 0, sizeof dx);
    lpl_gelu_forward(y, x, T * C);
    for (int i = 0; i < T * C; i++)
        CHECK_CLOSE(y[i], ref_gelu(x[i]), 1e-6, 1e-5, "gelu forward");
    lpl_gelu_backward(dx, x, Rw, T * C);
    check_layer("gelu dinp", ref_gelu_fn, &lc, x, T * C, Rw, T * C, dx);

    /* attention: qkv [T][3C] -> out [T][C] */
    float qkv[7 * 96], lse[4 * 7], scratch[4 * 7], att[7 * 32];
    fill(qkv, T * 3 * C, &r, 1.0f);
    lpl_attention_forward(att, lse, qkv, T, C, H, scratch, NULL);
    double *qd = dup_vec(qkv, T * 3 * C), refo[7 * 32];
    ref_attention(refo, qd, T, C, H);
    for (int i = 0; i < T * C; i++)
        CHECK_CLOSE(att[i], refo[i], 1e-6, 1e-5, "attention forward");
    memset(dx, 0, sizeof dx);
    lpl_attention_backward(dx, Rw, qkv, att, lse, T, C, H, scratch, NULL);
    check_layer("attention dqkv", ref_attn_fn, &lc, qkv, T * 3 * C, Rw, T * C, dx);

    /* attention dropout: the reference multiplies by the same hashed multipliers */
    float att_nodrop[7 * 32];
    memcpy(att_nodrop, att, sizeof att);
    lpl_attention_forward(att, lse, qkv, T, C, H, scratch, &g_attn_drop);
    ref_attention_drop(refo, qd, T, C, H, &g_attn_drop);
    for (int i = 0; i < T * C; i++)
        CHECK_CLOSE(att[i], refo[i], 1e-6, 1e-5, "attention forward with dropout");
    CHECK(max_diff(att, att_nodrop, T * C) > 1e-3, "attention dropout changed nothing");
    memset(dx, 0, sizeof dx);
    lpl_attention_backward(dx, Rw, qkv, att, lse, T, C, H, scratch, &g_attn_drop);
    check_layer("attention dqkv with dropout", ref_attn_drop_fn, &lc, qkv, T * 3 * C, Rw, T * C, dx);
    free(qd);

    /* cross-entropy with a mask */
    float logits[7 * 50], dl[7 * 50], nll[7];
    int tgt[7];
    uint8_t mask[7] = {1, 0, 1, 1, 0, 1, 1};
    fill(logits, T * V, &r, 2.0f);
    for (int t = 0; t < T; t++)
        tgt[t] = (int)(lpl_rng_next(&r) % V);
    float ce_lse[7];
    lpl_crossentropy_forward(nll, ce_lse, logits, tgt, mask, T, V);
    ce_ctx_t cc = {T, V, tgt, mask};
    double *ld = dup_vec(logits, T * V), refn[7];
    ref_ce_fn(refn, ld, &cc);
    for (int t = 0; t < T; t++)
        CHECK_CLOSE(nll[t], refn[t], 1e-6, 1e-5, "cross-entropy forward");
    float ones[7];
    for (int t = 0; t < T; t++)
        ones[t] = 0.25f; /* backward scale */
    lpl_crossentropy_backward(dl, logits, NULL, tgt, mask, T, V, 0.25f);
    check_layer("cross-entropy dlogits", ref_ce_fn, &cc, logits, T * V, ones, T, dl);
    float dl2[7 * 50];
    lpl_crossentropy_backward(dl2, logits, ce_lse, tgt, mask, T, V, 0.25f);
    CHECK(max_diff(dl, dl2, T * V) < 1e-7, "cross-entropy backward with the forward's lse");
    free(ld), free(wd), free(bd);
}

int main(void)
{
    lpl_threads_init(2, NULL);
    check_layers();

    static const char *const all4[] = {"c_attn", "c_proj", "c_fc"};
    const char *site_paths[LPL_N_SITES] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
    for (int q = 0; q < 2; q++) {
        lpl_dtype t = q ? LPL_Q8_0 : LPL_F32;
        char label[64];
        for (int s = 0; s < LPL_SITE_GPT2_END; s++) {
            snprintf(label, sizeof label, "%s %s", q ? "q8_0" : "f32", site_paths[s]);
            check_adapters(label, t, &site_paths[s], 1, NULL, NULL, 0, 0.0f, 2);
        }
        snprintf(label, sizeof label, "%s all sites", q ? "q8_0" : "f32");
        check_adapters(label, t, all4, 3, NULL, NULL, 0, 0.0f, 8);
        int layer1[] = {1}, layer0[] = {0};
        static const char *const mix[] = {"c_attn", "mlp.c_proj"};
        snprintf(label, sizeof label, "%s mixed, layer 1", q ? "q8_0" : "f32");
        check_adapters(label, t, mix, 2, NULL, layer1, 1, 0.0f, 2);
        static const char *const mix2[] = {"attn.c_proj", "c_fc"};
        snprintf(label, sizeof label, "%s mixed, layer 0", q ? "q8_0" : "f32");
        check_adapters(label, t, mix2, 2, NULL, layer0, 1, 0.0f, 2);
        snprintf(label, sizeof label, "%s regex", q ? "q8_0" : "f32");
        check_adapters(label, t, NULL, 0, "transformer\\.h\\.(0\\.attn\\.c_attn|1\\.mlp\\.c_\\w+)", NULL, 0, 0.0f,
                       3);
    }
    /* dropout: the reference applies the same masks (same key) */
    check_adapters("f32 all sites, dropout 0.3", LPL_F32, all4, 3, NULL, NULL, 0, 0.3f, 8);
    check_adapters("q8_0 mixed, dropout 0.5", LPL_Q8_0, (const char *const[]){"c_proj"}, 1, NULL, NULL, 0, 0.5f, 4);

    adapter_T = 40;
    check_adapters("f32 all sites, T=40 (two attention blocks)", LPL_F32, all4, 3, NULL, NULL, 0, 0.0f, 8);
    check_adapters("q8_0 c_attn, T=40, dropout 0.3", LPL_Q8_0, (const char *const[]){"c_attn"}, 1, NULL, NULL, 0, 0.3f, 2);
    adapter_T = 12;

    /* base-model dropout (embedding, attention probabilities, residual branches) with
     * the forward's masks rebuilt by the reference from the same key */
    g_bdrop = (lpl_gpt2_dropout){0.2f, 0.3f, 0.25f};
    check_adapters("f32 all sites, base dropout", LPL_F32, all4, 3, NULL, NULL, 0, 0.0f, 8);
    check_adapters("f32 all sites, base + LoRA dropout", LPL_F32, all4, 3, NULL, NULL, 0, 0.3f, 8);
    check_adapters("q8_0 mixed, base dropout", LPL_Q8_0, (const char *const[]){"c_attn", "mlp.c_proj"}, 2, NULL,
                   NULL, 0, 0.1f, 4);
    adapter_T = 40;
    check_adapters("f32 all sites, T=40, base dropout", LPL_F32, all4, 3, NULL, NULL, 0, 0.0f, 8);
    adapter_T = 12;
    g_bdrop = (lpl_gpt2_dropout){0, 0, 0};

    printf("largest gradient error relative to the set's largest |fd| (f32): %.3g\n", worst_seen);

    /* compute int8: the same checks on the Q8_0 base, at the int8 tolerances */
    g_compute = LPL_COMPUTE_INT8;
    worst_seen = 0;
    check_adapters("int8 all sites", LPL_Q8_0, all4, 3, NULL, NULL, 0, 0.0f, 8);
    check_adapters("int8 mixed, layer 0", LPL_Q8_0, (const char *const[]){"attn.c_proj", "c_fc"}, 2, NULL,
                   (const int[]){0}, 1, 0.0f, 2);
    check_adapters("int8 mixed, dropout 0.5", LPL_Q8_0, (const char *const[]){"c_proj"}, 1, NULL, NULL, 0, 0.5f, 4);
    adapter_T = 40;
    check_adapters("int8 all sites, T=40", LPL_Q8_0, all4, 3, NULL, NULL, 0, 0.0f, 8);
    adapter_T = 12;
    g_bdrop = (lpl_gpt2_dropout){0.2f, 0.3f, 0.25f};
    check_adapters("int8 all sites, base dropout", LPL_Q8_0, all4, 3, NULL, NULL, 0, 0.1f, 8);
    g_bdrop = (lpl_gpt2_dropout){0, 0, 0};
    g_compute = LPL_COMPUTE_F32;
    printf("largest gradient error relative to the set's largest |fd| (int8): %.3g\n", worst_seen);

    check_full_params();
    g_bdrop = (lpl_gpt2_dropout){0.2f, 0.3f, 0.25f}; /* embedding dropout reaches wte/wpe */
    check_full_params();
    return check_report("test_gradcheck");
}
