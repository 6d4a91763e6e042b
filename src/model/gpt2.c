/* GPT-2 model: parameter layout, random init, weight type
 * conversion, and the forward/backward of one sequence with optional LoRA, and merging adapters into the weights. */
#include "lpl/model/gpt2.h"

#include "lpl/model/gpt2_layers.h"
#include "lpl/core/kernels.h"
#include "lpl/model/lora.h"
#include "lpl/core/platform.h"
#include "lpl/core/rng.h"
#include "lpl/model/llama_layers.h"
#include "llama.h"
#include "model_state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* base + off, or NULL for an absent tensor (off < 0). */
static float *at(float *base, int64_t off) { return off < 0 ? NULL : base + off; }

/* Points every tensor of m into an fp32 buffer laid out as above. */
static void point_at_params(lpl_gpt2_model *m, float *base)
{
    const lpl_gpt2_config *c = &m->cfg;
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);
    m->wte = (lpl_matrix){LPL_F32, c->n_vocab, c->n_embd, base + top.wte};
    m->wpe = at(base, top.wpe);
    m->lnf_w = base + top.lnf_w;
    m->lnf_b = at(base, top.lnf_b);
    m->lm_head = top.lm_head < 0 ? (lpl_matrix){LPL_F32, 0, 0, NULL}
                                 : (lpl_matrix){LPL_F32, c->n_vocab, c->n_embd, base + top.lm_head};
    for (int l = 0; l < c->n_layer; l++) {
        lpl_gpt2_block_offsets o;
        lpl_gpt2_block_offsets_of(c, l, &o);
        lpl_gpt2_block *b = &m->blocks[l];
        memset(b, 0, sizeof *b);
        b->ln1_w = base + o.ln1_w;
        b->ln1_b = at(base, o.ln1_b);
        b->ln2_w = base + o.ln2_w;
        b->ln2_b = at(base, o.ln2_b);
        for (int s = lpl_site_first(c); s < lpl_site_end(c); s++) {
            int out, in;
            lpl_site_shape(c, (lpl_site)s, &out, &in);
            b->w[s] = (lpl_matrix){LPL_F32, out, in, base + o.w[s]};
            b->b[s] = at(base, o.b[s]);
        }
    }
    m->params = base;
    m->n_params = top.total;
}

/* ---------------- creation, conversion, release ---------------- */

/* What a model made here owns: one tensor buffer and the blocks array. */
typedef struct {
    void *buf;
    lpl_gpt2_block *blocks;
} own_buf;

static void own_release(void *p)
{
    own_buf *o = p;
    if (o) {
        free(o->buf);
        free(o->blocks);
        free(o);
    }
}

/* Replaces what m owns by buf and blocks (already filled in), releasing the old. */
static void take_ownership(lpl_gpt2_model *m, own_buf *o)
{
    if (m->release)
        m->release(m->owned);
    m->blocks = o->blocks;
    m->owned = o;
    m->release = own_release;
}

/* A fresh own_buf with a blocks array copied from m; NULL on no memory. */
static own_buf *own_new(const lpl_gpt2_model *m, size_t bytes, lpl_error *err)
{
    own_buf *o = lpl_calloc(1, sizeof *o, "model", err);
    if (!o)
        return NULL;
    o->blocks = lpl_calloc((size_t)m->cfg.n_layer, sizeof *o->blocks, "model blocks", err);
    o->buf = o->blocks ? lpl_calloc(1, bytes, "model weights", err) : NULL;
    if (!o->buf) {
        own_release(o);
        return NULL;
    }
    if (m->blocks)
        memcpy(o->blocks, m->blocks, (size_t)m->cfg.n_layer * sizeof *o->blocks);
    return o;
}

void lpl_gpt2_free(lpl_gpt2_model *m)
{
    if (!m)
        return;
    if (m->release)
        m->release(m->owned);
    free(m);
}

static void fill_normal(lpl_rng *r, float *x, int64_t n, float std)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = lpl_rng_normal(r) * std;
}

lpl_gpt2_model *lpl_gpt2_create_random(const lpl_gpt2_config *cfg, uint64_t seed, lpl_error *err)
{
    if (lpl_gpt2_config_check(cfg, err) != LPL_OK)
        return NULL;
    lpl_gpt2_model *m = lpl_calloc(1, sizeof *m, "model", err);
    if (!m)
        return NULL;
    m->cfg = *cfg;
    own_buf *o = own_new(m, (size_t)lpl_gpt2_param_count(cfg) * sizeof(float), err);
    if (!o) {
        free(m);
        return NULL;
    }
    take_ownership(m, o);
    point_at_params(m, o->buf);

    const int C = cfg->n_embd;
    lpl_rng r;
    lpl_rng_seed(&r, seed);
    fill_normal(&r, m->wte.data, (int64_t)cfg->n_vocab * C, 0.02f);
    if (m->wpe)
        fill_normal(&r, m->wpe, (int64_t)cfg->n_ctx * C, 0.02f);
    /* GPT-2: residual projections get 0.02/sqrt(2L), as GPT-2's paper and HF do;
     * HF's Llama initialises every linear with 0.02 */
    float proj_std = lpl_cfg_is_llama(cfg) ? 0.02f : 0.02f / sqrtf(2.0f * (float)cfg->n_layer);
    for (int l = 0; l < cfg->n_layer; l++) {
        lpl_gpt2_block *b = &m->blocks[l];
        for (int i = 0; i < C; i++)
            b->ln1_w[i] = b->ln2_w[i] = 1.0f;
        for (int s = lpl_site_first(cfg); s < lpl_site_end(cfg); s++) {
            float std = (s == LPL_SITE_ATTN_PROJ || s == LPL_SITE_MLP_PROJ) ? proj_std : 0.02f;
            fill_normal(&r, b->w[s].data, (int64_t)b->w[s].rows * b->w[s].cols, std);
        }
    }
    for (int i = 0; i < C; i++)
        m->lnf_w[i] = 1.0f;
    if (m->lm_head.data)
        fill_normal(&r, m->lm_head.data, (int64_t)cfg->n_vocab * C, 0.02f);
    return m;
}

/* Every 2-D matrix of the model, in a fixed order (wte, then each block's sites,
 * then an untied lm_head). */
static int sites_per_block(const lpl_gpt2_model *m) { return lpl_site_end(&m->cfg) - lpl_site_first(&m->cfg); }
static int n_matrices(const lpl_gpt2_model *m)
{
    return 1 + sites_per_block(m) * m->cfg.n_layer + (m->lm_head.data != NULL);
}
static lpl_matrix *matrix_at(lpl_gpt2_model *m, int i)
{
    const int ns = sites_per_block(m);
    if (i == 0)
        return &m->wte;
    if (i > ns * m->cfg.n_layer)
        return &m->lm_head;
    return &m->blocks[(i - 1) / ns].w[lpl_site_first(&m->cfg) + (i - 1) % ns];
}

/* The fp32 vectors (wpe, biases, norms) as (pointer, length) pairs; absent ones
 * (NULL) are left out. */
#define N_VECTORS(m) (3 + (4 + LPL_N_SITES) * (m)->cfg.n_layer)
static int vector_list(lpl_gpt2_model *m, float ***ptrs, int64_t *lens)
{
    const lpl_gpt2_config *c = &m->cfg;
    int k = 0;
#define ADD(p, n) do { if (p) { ptrs[k] = &(p); lens[k++] = (n); } } while (0)
    ADD(m->wpe, (int64_t)c->n_ctx * c->n_embd);
    for (int l = 0; l < c->n_layer; l++) {
        lpl_gpt2_block *b = &m->blocks[l];
        ADD(b->ln1_w, c->n_embd);
        ADD(b->ln1_b, c->n_embd);
        ADD(b->ln2_w, c->n_embd);
        ADD(b->ln2_b, c->n_embd);
        for (int s = lpl_site_first(c); s < lpl_site_end(c); s++)
            ADD(b->b[s], b->w[s].rows);
    }
    ADD(m->lnf_w, c->n_embd);
    ADD(m->lnf_b, c->n_embd);
#undef ADD
    return k;
}


/* The widest input of any matrix (a row buffer for conversions and merging). */
static int widest_row(const lpl_gpt2_config *c)
{
    int ff = lpl_cfg_ff(c);
    return ff > c->n_embd ? ff : c->n_embd;
}

lpl_status lpl_gpt2_make_trainable(lpl_gpt2_model *m, lpl_error *err)
{
    if (m->params)
        return LPL_OK;
    own_buf *o = own_new(m, (size_t)lpl_gpt2_param_count(&m->cfg) * sizeof(float), err);
    if (!o)
        return LPL_ERR_NOMEM;
    lpl_gpt2_model view = *m;
    view.blocks = o->blocks;
    point_at_params(&view, o->buf);
    for (int i = 0; i < n_matrices(m); i++) {
        const lpl_matrix *src = matrix_at(m, i);
        lpl_matrix *dst = matrix_at(&view, i);
        size_t rb = lpl_dtype_row_bytes(src->type, src->cols);
        for (int r = 0; r < src->rows; r++)
            lpl_dequantize_row(src->type, (const char *)src->data + (size_t)r * rb,
                               (float *)dst->data + (size_t)r * src->cols, src->cols);
    }
    float **sp[N_VECTORS(m)], **dp[N_VECTORS(m)];
    int64_t lens[N_VECTORS(m)];
    int nv = vector_list(m, sp, lens);
    vector_list(&view, dp, lens);
    for (int k = 0; k < nv; k++)
        memcpy(*dp[k], *sp[k], (size_t)lens[k] * sizeof(float));
    take_ownership(m, o);
    point_at_params(m, o->buf);
    return LPL_OK;
}

lpl_status lpl_gpt2_convert(lpl_gpt2_model *m, lpl_dtype t, lpl_error *err)
{
    if (t == LPL_F32)
        return lpl_gpt2_make_trainable(m, err);
    if (t != LPL_F16 && t != LPL_Q8_0 && t != LPL_Q4_0)
        return lpl_fail(err, LPL_ERR_INVALID, "cannot convert model weights to type %s (expected f32, f16, q8_0 or q4_0)",
                        lpl_dtype_name(t));
    int nm = n_matrices(m);
    float **vp[N_VECTORS(m)];
    int64_t lens[N_VECTORS(m)];
    int nv = vector_list(m, vp, lens);
    /* one buffer: the fp32 vectors first, then each matrix 64-byte aligned */
    size_t total = 0;
    for (int k = 0; k < nv; k++)
        total += lpl_align64((size_t)lens[k] * sizeof(float));
    for (int i = 0; i < nm; i++) {
        const lpl_matrix *a = matrix_at(m, i);
        total += lpl_align64((size_t)a->rows * lpl_dtype_row_bytes(t, a->cols));
    }
    float *row = lpl_malloc((size_t)widest_row(&m->cfg) * sizeof(float), "conversion row", err);
    own_buf *o = row ? own_new(m, total, err) : NULL;
    if (!o) {
        free(row);
        return LPL_ERR_NOMEM;
    }
    /* fill a view whose blocks are the new array; m keeps pointing at the old data */
    lpl_gpt2_model view = *m;
    view.blocks = o->blocks;
    char *buf = o->buf;
    float **np[N_VECTORS(m)];
    vector_list(&view, np, lens);
    size_t off = 0;
    for (int k = 0; k < nv; k++) {
        memcpy(buf + off, *vp[k], (size_t)lens[k] * sizeof(float));
        *np[k] = (float *)(buf + off);
        off += lpl_align64((size_t)lens[k] * sizeof(float));
    }
    for (int i = 0; i < nm; i++) {
        lpl_matrix *a = matrix_at(&view, i);
        size_t src_rb = lpl_dtype_row_bytes(a->type, a->cols), dst_rb = lpl_dtype_row_bytes(t, a->cols);
        for (int r = 0; r < a->rows; r++) {
            lpl_dequantize_row(a->type, (const char *)a->data + (size_t)r * src_rb, row, a->cols);
            lpl_convert_row(t, row, buf + off + (size_t)r * dst_rb, a->cols, NULL);
        }
        a->type = t;
        a->data = buf + off;
        off += lpl_align64((size_t)a->rows * dst_rb);
    }
    free(row);
    m->wte = view.wte;
    m->wpe = view.wpe;
    m->lnf_w = view.lnf_w;
    m->lnf_b = view.lnf_b;
    m->lm_head = view.lm_head;
    take_ownership(m, o);
    m->params = NULL;
    m->n_params = 0;
    return LPL_OK;
}

/* ---------------- state ---------------- */

lpl_gpt2_state *lpl_gpt2_state_new(const lpl_gpt2_model *m, int max_T, int full_grads, lpl_error *err)
{
    const lpl_gpt2_config *c = &m->cfg;
    if (max_T < 1 || max_T > c->n_ctx) {
        lpl_fail(err, LPL_ERR_INVALID, "state: max_T = %d must be in 1..n_ctx (%d)", max_T, c->n_ctx);
        return NULL;
    }
    if (full_grads && !m->params) {
        lpl_fail(err, LPL_ERR_INVALID,
                 "state: full-parameter gradients need an fp32 trainable model (lpl_gpt2_make_trainable)");
        return NULL;
    }
    lpl_gpt2_state *s = lpl_calloc(1, sizeof *s, "model state", err);
    if (!s)
        return NULL;
    s->cfg = *c;
    s->max_T = max_T;
    const size_t T = (size_t)max_T, C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    const size_t H = (size_t)c->n_head, V = (size_t)c->n_vocab;
    /* row widths: q|k|v, the MLP's stored pre-activations, its hidden layer, and the
     * MLP-sized backward buffers (which llama also uses for [T][C] sums) */
    const int llama = lpl_cfg_is_llama(c);
    const size_t kvd = (size_t)lpl_cfg_kv_heads(c) * lpl_cfg_head_dim(c), F = (size_t)lpl_cfg_ff(c);
    const size_t QKV = llama ? C + 2 * kvd : 3 * C, FF = llama ? 2 * F : 4 * C, HID = llama ? F : 4 * C;
    const size_t D4 = FF > C ? FF : C;
    struct { float **p; size_t n; } plan[] = {
        {&s->resid, (L + 1) * T * C}, {&s->ln1_mean, L * T}, {&s->ln1_rstd, L * T},
        {&s->ln2_mean, L * T}, {&s->ln2_rstd, L * T}, {&s->qkv, L * T * QKV},
        {&s->atty, L * T * C}, {&s->lse, L * H * T}, {&s->res2, L * T * C},
        {&s->fch, L * T * FF}, {&s->lnf, T * C}, {&s->lnf_mean, T}, {&s->lnf_rstd, T},
        {&s->logits, T * V}, {&s->nll, T}, {&s->ce_lse, T}, {&s->ln_buf, T * C}, {&s->gelu_buf, T * HID},
        {&s->attn_scratch, H * T}, {&s->dres, T * C}, {&s->dC, T * C}, {&s->d3C, T * QKV},
        {&s->d4C_a, T * D4}, {&s->d4C_b, T * D4}, {&s->rope, llama ? T * (size_t)lpl_cfg_head_dim(c) : 0},
        {&s->grads, full_grads ? (size_t)m->n_params : 0},
    };
    size_t nplan = sizeof plan / sizeof plan[0];
    size_t total = 0;
    for (size_t i = 0; i < nplan; i++)
        total += lpl_align64(plan[i].n * sizeof(float));
    size_t ints = lpl_align64(T * 4 * sizeof(int)) + lpl_align64(T);
    s->buf = lpl_calloc(1, total + ints, "model activations", err);
    if (!s->buf) {
        free(s);
        return NULL;
    }
    char *p = s->buf;
    for (size_t i = 0; i < nplan; i++) {
        *plan[i].p = (float *)p;
        p += lpl_align64(plan[i].n * sizeof(float));
    }
    s->tokens = (int *)p;
    s->targets = s->tokens + T;
    s->rows = s->targets + T;
    s->row_targets = s->rows + T;
    s->mask = (uint8_t *)(p + lpl_align64(T * 4 * sizeof(int)));
    if (!full_grads)
        s->grads = NULL;
    s->n_grads = full_grads ? m->n_params : 0;
    s->bytes = sizeof *s + total + ints;
    if (llama)
        lpl_rope_table(s->rope, max_T, lpl_cfg_head_dim(c), c->rope_theta);
    return s;
}

void lpl_gpt2_state_free(lpl_gpt2_state *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s);
}

size_t lpl_gpt2_state_bytes(const lpl_gpt2_state *s) { return s ? s->bytes : 0; }
int lpl_gpt2_state_max_T(const lpl_gpt2_state *s) { return s->max_T; }
const float *lpl_gpt2_logits(const lpl_gpt2_state *s) { return s->logits; }
const float *lpl_gpt2_token_nll(const lpl_gpt2_state *s) { return s->nll; }
float *lpl_gpt2_state_grads(lpl_gpt2_state *s) { return s->grads; }

void lpl_gpt2_zero_grads(lpl_gpt2_state *s)
{
    if (s->grads)
        memset(s->grads, 0, (size_t)s->n_grads * sizeof(float));
}

const char *lpl_compute_name(lpl_compute c) { return c == LPL_COMPUTE_INT8 ? "int8" : "f32"; }

lpl_status lpl_compute_parse(const char *s, lpl_compute *out, lpl_error *err)
{
    if (s && !strcmp(s, "f32"))
        *out = LPL_COMPUTE_F32;
    else if (s && !strcmp(s, "int8"))
        *out = LPL_COMPUTE_INT8;
    else
        return lpl_fail(err, LPL_ERR_INVALID, "compute: '%s' is not one of f32, int8", s ? s : "(null)");
    return LPL_OK;
}

void lpl_gpt2_state_set_compute(lpl_gpt2_state *s, lpl_compute c) { s->compute = c; }

lpl_status lpl_gpt2_state_set_dropout(lpl_gpt2_state *s, const lpl_gpt2_dropout *d, uint64_t seed,
                                      lpl_error *err)
{
    const float r[3] = {d->embd, d->attn, d->resid};
    for (int k = 0; k < 3; k++)
        if (!(r[k] >= 0.0f && r[k] < 1.0f))
            return lpl_fail(err, LPL_ERR_INVALID, "base dropout: %s rate %g must be in [0, 1)",
                            (const char *[]){"embedding", "attention", "residual"}[k], r[k]);
    s->drop = *d;
    if (lpl_cfg_is_llama(&s->cfg)) /* HF's Llama and Qwen2 have attention_dropout only */
        s->drop.embd = s->drop.resid = 0.0f;
    /* its own stream: LoRA's dropout and the data order use the same seed */
    s->drop_next = lpl_mix64(seed ^ 0x626173652d64726fULL);
    return LPL_OK;
}

uint64_t lpl_gpt2_state_dropout_key(const lpl_gpt2_state *s) { return s->drop_next; }

uint64_t lpl_gpt2_state_take_dropout_key(lpl_gpt2_state *s)
{
    if (!(s->drop.embd > 0.0f || s->drop.attn > 0.0f || s->drop.resid > 0.0f))
        return 0;
    uint64_t key = s->drop_next; /* as lpl_gpt2_forward with training = 1 */
    s->drop_next = lpl_mix64(s->drop_next + 0x9e3779b97f4a7c15ULL);
    return key;
}

void lpl_gpt2_state_use_dropout_key(lpl_gpt2_state *s, uint64_t key) { s->drop_next = key; }


lpl_compute lpl_gpt2_state_compute(const lpl_gpt2_state *s) { return s->compute; }

void lpl_gpt2_get_timings(const lpl_gpt2_state *s, lpl_gpt2_timings *t) { *t = s->tm; }
void lpl_gpt2_reset_timings(lpl_gpt2_state *s) { memset(&s->tm, 0, sizeof s->tm); }

/* ---------------- forward ---------------- */

static int same_shape(const lpl_gpt2_config *a, const lpl_gpt2_config *b)
{
    return a->n_layer == b->n_layer && a->n_embd == b->n_embd && a->n_head == b->n_head &&
           a->n_ctx == b->n_ctx && a->n_vocab == b->n_vocab && a->arch == b->arch &&
           a->n_kv_head == b->n_kv_head && a->n_ff == b->n_ff;
}

static lpl_status check_inputs(const lpl_gpt2_model *m, const lpl_lora *lora, const lpl_gpt2_state *s,
                               const int *tokens, const int *targets, const uint8_t *mask, int T,
                               lpl_error *err)
{
    const lpl_gpt2_config *c = &m->cfg;
    if (!same_shape(c, &s->cfg))
        return lpl_fail(err, LPL_ERR_INVALID, "forward: the state was made for a different model shape");
    if (lora && !same_shape(c, &lora->model_cfg))
        return lpl_fail(err, LPL_ERR_INVALID, "forward: the adapters were made for a different model shape");
    if (T < 1)
        return lpl_fail(err, LPL_ERR_INVALID, "forward: sequence length T = %d (an empty sequence cannot be run)", T);
    if (T > c->n_ctx)
        return lpl_fail(err, LPL_ERR_INVALID, "forward: sequence length T = %d exceeds the model context n_ctx = %d",
                        T, c->n_ctx);
    if (T > s->max_T)
        return lpl_fail(err, LPL_ERR_INVALID, "forward: sequence length T = %d exceeds the state's max_T = %d",
                        T, s->max_T);
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= c->n_vocab)
            return lpl_fail(err, LPL_ERR_INVALID, "forward: token id %d at position %d is out of range [0, %d)",
                            tokens[t], t, c->n_vocab);
        if (targets && (!mask || mask[t]) && (targets[t] < 0 || targets[t] >= c->n_vocab))
            return lpl_fail(err, LPL_ERR_INVALID, "forward: target id %d at position %d is out of range [0, %d)",
                            targets[t], t, c->n_vocab);
    }
    return LPL_OK;
}

/* The LM head: an untied lm_head, else the token embedding. */
static const lpl_matrix *lm_head_of(const lpl_gpt2_model *m) { return m->lm_head.data ? &m->lm_head : &m->wte; }

static void embed_forward(const lpl_gpt2_model *m, float *out, const int *tokens, int T)
{
    const int C = m->cfg.n_embd;
    size_t rb = lpl_dtype_row_bytes(m->wte.type, C);
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * C;
        lpl_dequantize_row(m->wte.type, (const char *)m->wte.data + (size_t)tokens[t] * rb, o, C);
        if (!m->wpe) /* llama: positions come from RoPE */
            continue;
        const float *pe = m->wpe + (size_t)t * C;
        for (int i = 0; i < C; i++)
            o[i] += pe[i];
    }
}

static void block_forward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, int T)
{
    const lpl_gpt2_config *c = &m->cfg;
    const size_t C = (size_t)c->n_embd, TC = (size_t)T * C;
    const size_t sT = (size_t)s->max_T;
    const lpl_gpt2_block *b = &m->blocks[l];
    float *x = s->resid + (size_t)l * sT * C, *xo = s->resid + (size_t)(l + 1) * sT * C;
    float *qkv = s->qkv + (size_t)l * sT * 3 * C, *atty = s->atty + (size_t)l * sT * C;
    float *res2 = s->res2 + (size_t)l * sT * C, *fch = s->fch + (size_t)l * sT * 4 * C;
    float *lse = s->lse + (size_t)l * c->n_head * sT;

    double t0 = lpl_now_seconds();
    lpl_layernorm_forward(s->ln_buf, s->ln1_mean + l * sT, s->ln1_rstd + l * sT, x, b->ln1_w, b->ln1_b, T,
                          (int)C, c->ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_ATTN_QKV, qkv, s->ln_buf, T, &s->tm.attention);
    t0 = lpl_now_seconds();
    lpl_attn_dropout ad;
    lpl_attention_forward(atty, lse, qkv, T, (int)C, c->n_head, s->attn_scratch, lpl_ms_attn_drop(s, l, &ad));
    s->tm.attention += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_ATTN_PROJ, s->dC, atty, T, &s->tm.attention);
    if (lpl_ms_resid_rate(s) > 0.0f)
        lpl_ms_drop_apply(s, s->dC, s->dC, (int64_t)TC, LPL_DROP_RESID_ATTN, l, lpl_ms_resid_rate(s));
    lpl_residual_forward(res2, x, s->dC, (int64_t)TC);

    t0 = lpl_now_seconds();
    lpl_layernorm_forward(s->ln_buf, s->ln2_mean + l * sT, s->ln2_rstd + l * sT, res2, b->ln2_w, b->ln2_b, T,
                          (int)C, c->ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_MLP_FC, fch, s->ln_buf, T, &s->tm.mlp);
    t0 = lpl_now_seconds();
    lpl_gelu_forward(s->gelu_buf, fch, (int64_t)TC * 4);
    s->tm.mlp += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_MLP_PROJ, s->dC, s->gelu_buf, T, &s->tm.mlp);
    if (lpl_ms_resid_rate(s) > 0.0f)
        lpl_ms_drop_apply(s, s->dC, s->dC, (int64_t)TC, LPL_DROP_RESID_MLP, l, lpl_ms_resid_rate(s));
    lpl_residual_forward(xo, res2, s->dC, (int64_t)TC);
}

lpl_status lpl_gpt2_forward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, const int *tokens,
                            const int *targets, const uint8_t *mask, int T, int training, lpl_loss *out,
                            lpl_error *err)
{
    lpl_status st = check_inputs(m, lora, s, tokens, targets, mask, T, err);
    if (st != LPL_OK)
        return st;
    if (lora && (st = lpl_lora_prepare(lora, s->max_T, err)) != LPL_OK)
        return st;
    const lpl_gpt2_config *c = &m->cfg;
    const int C = c->n_embd, V = c->n_vocab;
    double start = lpl_now_seconds();

    s->T = T;
    s->has_targets = targets != NULL;
    s->backward_done = 0;
    memcpy(s->tokens, tokens, (size_t)T * sizeof(int));
    if (lora)
        lpl_lora_begin_forward(lora, training);
    s->drop_on = training && (s->drop.embd > 0.0f || s->drop.attn > 0.0f || s->drop.resid > 0.0f);
    if (s->drop_on) { /* one key per training forward; backward reuses it */
        s->drop_key = s->drop_next;
        s->drop_next = lpl_mix64(s->drop_next + 0x9e3779b97f4a7c15ULL);
    }

    embed_forward(m, s->resid, tokens, T);
    if (s->drop_on && s->drop.embd > 0.0f)
        lpl_ms_drop_apply(s, s->resid, s->resid, (int64_t)T * C, LPL_DROP_EMBD, 0, s->drop.embd);
    double t0 = lpl_now_seconds();
    s->tm.embed += t0 - start;
    const int llama = lpl_cfg_is_llama(c);
    for (int l = 0; l < c->n_layer; l++) {
        if (llama)
            lpl_llama_block_forward(m, lora, s, l, T);
        else
            block_forward(m, lora, s, l, T);
    }

    t0 = lpl_now_seconds();
    const float *xf = s->resid + (size_t)c->n_layer * s->max_T * C;
    if (llama)
        lpl_rmsnorm_forward(s->lnf, s->lnf_rstd, xf, m->lnf_w, T, C, c->ln_eps);
    else
        lpl_layernorm_forward(s->lnf, s->lnf_mean, s->lnf_rstd, xf, m->lnf_w, m->lnf_b, T, C, c->ln_eps);
    const lpl_matrix *head = lm_head_of(m);
    double t1 = lpl_now_seconds();
    s->tm.layernorm += t1 - t0;
    lpl_loss loss = {0.0, 0, 0.0f};
    if (!targets) {
        lpl_ms_base_forward(s, s->logits, s->lnf, head, NULL, T);
    } else {
        /* the LM head is the largest product: run it on scored rows only */
        memcpy(s->targets, targets, (size_t)T * sizeof(int));
        int n = 0;
        for (int t = 0; t < T; t++) {
            s->mask[t] = mask ? (mask[t] != 0) : 1;
            if (s->mask[t]) {
                s->rows[n] = t;
                s->row_targets[n] = targets[t];
                memcpy(s->ln_buf + (size_t)n * C, s->lnf + (size_t)t * C, (size_t)C * sizeof(float));
                n++;
            }
        }
        if (n > 0) {
            lpl_ms_base_forward(s, s->logits, s->ln_buf, head, NULL, n);
            lpl_crossentropy_forward(s->nll, s->ce_lse, s->logits, s->row_targets, NULL, n, V);
        }
        for (int k = 0; k < n; k++)
            loss.nll_sum += s->nll[k];
        loss.n_scored = n;
        loss.loss = n ? (float)(loss.nll_sum / n) : 0.0f;
    }
    s->n_scored = loss.n_scored;
    double end = lpl_now_seconds();
    s->tm.lm_head += end - t1;
    s->tm.total += end - start;
    if (out)
        *out = loss;
    if (targets && !isfinite(loss.nll_sum))
        return lpl_fail(err, LPL_ERR_NUMERIC, "forward: the loss is not finite (%g)", loss.nll_sum);
    return LPL_OK;
}

/* ---------------- backward ---------------- */

/* On entry s->dres holds d(block output); on exit d(block input). last >= 0: this is
 * the lowest layer backward reaches and nothing below site `last` (in backward order
 * mlp.c_proj, mlp.c_fc, attn.c_proj, attn.c_attn) needs a gradient, so the block stops
 * once that site's adapters have theirs (dres is then left unfinished). */
static void block_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, int T, int last)
{
    const lpl_gpt2_config *c = &m->cfg;
    const size_t C = (size_t)c->n_embd, sT = (size_t)s->max_T;
    const lpl_gpt2_block *b = &m->blocks[l];
    lpl_ms_block_grads g;
    lpl_ms_block_grads_of(s, l, &g);
    float *x = s->resid + (size_t)l * sT * C;
    float *qkv = s->qkv + (size_t)l * sT * 3 * C, *atty = s->atty + (size_t)l * sT * C;
    float *res2 = s->res2 + (size_t)l * sT * C, *fch = s->fch + (size_t)l * sT * 4 * C;
    float *lse = s->lse + (size_t)l * c->n_head * sT;
    const size_t T4C = (size_t)T * 4 * C;

    /* MLP: rebuild ln_2 output and gelu output instead of storing them */
    double t0 = lpl_now_seconds();
    lpl_layernorm_forward(s->ln_buf, s->ln2_mean + l * sT, s->ln2_rstd + l * sT, res2, b->ln2_w, b->ln2_b, T,
                          (int)C, c->ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t0;
    t0 = lpl_now_seconds();
    lpl_gelu_forward(s->gelu_buf, fch, (int64_t)T4C);
    s->tm.mlp += lpl_now_seconds() - t0;
    /* residual dropout: the site's output gradient is dres times the forward's mask
     * (in d3C, which is free until the attention's backward) */
    const float *dY = s->dres;
    if (lpl_ms_resid_rate(s) > 0.0f) {
        lpl_ms_drop_apply(s, s->d3C, s->dres, (int64_t)T * C, LPL_DROP_RESID_MLP, l, lpl_ms_resid_rate(s));
        dY = s->d3C;
    }
    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_MLP_PROJ, last == LPL_SITE_MLP_PROJ ? NULL : s->d4C_a, dY,
                  s->gelu_buf, T, &s->tm.mlp);
    if (last == LPL_SITE_MLP_PROJ)
        return;
    t0 = lpl_now_seconds();
    memset(s->d4C_b, 0, T4C * sizeof(float));
    lpl_gelu_backward(s->d4C_b, fch, s->d4C_a, (int64_t)T4C);
    s->tm.mlp += lpl_now_seconds() - t0;
    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_MLP_FC, last == LPL_SITE_MLP_FC ? NULL : s->dC, s->d4C_b, s->ln_buf,
                  T, &s->tm.mlp);
    if (last == LPL_SITE_MLP_FC)
        return;
    t0 = lpl_now_seconds();
    lpl_layernorm_backward(s->dres, g.ln2_w, g.ln2_b, s->dC, res2, b->ln2_w, s->ln2_mean + l * sT,
                           s->ln2_rstd + l * sT, T, (int)C);
    s->tm.layernorm += lpl_now_seconds() - t0;

    /* attention */
    dY = s->dres;
    if (lpl_ms_resid_rate(s) > 0.0f) {
        lpl_ms_drop_apply(s, s->d3C, s->dres, (int64_t)T * C, LPL_DROP_RESID_ATTN, l, lpl_ms_resid_rate(s));
        dY = s->d3C;
    }
    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_ATTN_PROJ, last == LPL_SITE_ATTN_PROJ ? NULL : s->dC, dY, atty,
                  T, &s->tm.attention);
    if (last == LPL_SITE_ATTN_PROJ)
        return;
    t0 = lpl_now_seconds();
    memset(s->d3C, 0, (size_t)T * 3 * C * sizeof(float));
    lpl_attn_dropout ad;
    lpl_attention_backward(s->d3C, s->dC, qkv, atty, lse, T, (int)C, c->n_head, s->attn_scratch,
                           lpl_ms_attn_drop(s, l, &ad));
    double t1 = lpl_now_seconds();
    s->tm.attention += t1 - t0;
    lpl_layernorm_forward(s->ln_buf, s->ln1_mean + l * sT, s->ln1_rstd + l * sT, x, b->ln1_w, b->ln1_b, T,
                          (int)C, c->ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t1;
    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_ATTN_QKV, last == LPL_SITE_ATTN_QKV ? NULL : s->dC, s->d3C, s->ln_buf,
                  T, &s->tm.attention);
    if (last == LPL_SITE_ATTN_QKV)
        return;
    t0 = lpl_now_seconds();
    lpl_layernorm_backward(s->dres, g.ln1_w, g.ln1_b, s->dC, x, b->ln1_w, s->ln1_mean + l * sT,
                           s->ln1_rstd + l * sT, T, (int)C);
    s->tm.layernorm += lpl_now_seconds() - t0;
}

/* Lowest layer the backward must reach: 0 with full gradients, else the lowest
 * adapted layer (nothing below it has a trainable parameter). */
static int lowest_layer(const lpl_gpt2_state *s, const lpl_lora *lora)
{
    if (s->grads)
        return 0;
    if (!lora)
        return s->cfg.n_layer;
    for (int i = 0; i < s->cfg.n_layer * LPL_N_SITES; i++)
        if (lora->by_site[i])
            return i / LPL_N_SITES;
    return s->cfg.n_layer;
}

/* In the lowest layer backward reaches: the adapted site the backward meets last
 * (the lowest site index), or -1 when everything must be computed (full gradients). */
static int lowest_site(const lpl_gpt2_state *s, const lpl_lora *lora, int l)
{
    if (s->grads || !lora)
        return -1;
    for (int site = lpl_site_first(&s->cfg); site < lpl_site_end(&s->cfg); site++)
        if (lora->by_site[l * LPL_N_SITES + site])
            return site;
    return -1;
}

lpl_status lpl_gpt2_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, lpl_error *err)
{
    if (!s->has_targets)
        return lpl_fail(err, LPL_ERR_INVALID, "backward: the last forward had no targets");
    if (s->backward_done)
        return lpl_fail(err, LPL_ERR_INVALID, "backward: already run for the last forward (run forward again)");
    if (lora && !same_shape(&m->cfg, &lora->model_cfg))
        return lpl_fail(err, LPL_ERR_INVALID, "backward: the adapters were made for a different model shape");
    if (s->n_scored == 0)
        return LPL_OK;
    const lpl_gpt2_config *c = &m->cfg;
    const int T = s->T, C = c->n_embd, V = c->n_vocab;
    double start = lpl_now_seconds();
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);

    /* LM head on the packed scored rows: the logits buffer becomes dlogits */
    const int n = s->n_scored;
    lpl_crossentropy_backward(s->logits, s->logits, s->ce_lse, s->row_targets, NULL, n, V, 1.0f / (float)n);
    memset(s->dC, 0, (size_t)n * C * sizeof(float));
    lpl_ms_base_backward_input(s, s->dC, s->logits, lm_head_of(m), n);
    if (s->grads)
        lpl_linear_backward_weight(s->grads + (top.lm_head >= 0 ? top.lm_head : top.wte), s->logits, s->ln_buf, n,
                                   V, C);
    /* unpack d(ln_f output) to all T rows (zero where unscored) */
    float *dlnf = s->d3C;
    memset(dlnf, 0, (size_t)T * C * sizeof(float));
    for (int k = 0; k < n; k++)
        memcpy(dlnf + (size_t)s->rows[k] * C, s->dC + (size_t)k * C, (size_t)C * sizeof(float));
    double t0 = lpl_now_seconds();
    s->tm.lm_head += t0 - start;
    memset(s->dres, 0, (size_t)T * C * sizeof(float));
    const float *xf = s->resid + (size_t)c->n_layer * s->max_T * C;
    const int llama = lpl_cfg_is_llama(c);
    if (llama)
        lpl_rmsnorm_backward(s->dres, s->grads ? s->grads + top.lnf_w : NULL, dlnf, xf, m->lnf_w, s->lnf_rstd, T, C);
    else
        lpl_layernorm_backward(s->dres, s->grads ? s->grads + top.lnf_w : NULL,
                               s->grads ? s->grads + top.lnf_b : NULL, dlnf, xf, m->lnf_w, s->lnf_mean,
                               s->lnf_rstd, T, C);
    s->tm.layernorm += lpl_now_seconds() - t0;

    int lo = lowest_layer(s, lora);
    for (int l = c->n_layer - 1; l >= lo; l--) {
        int last = l == lo ? lowest_site(s, lora, l) : -1;
        if (llama)
            lpl_llama_block_backward(m, lora, s, l, T, last);
        else
            block_backward(m, lora, s, l, T, last);
    }

    if (s->grads) {
        t0 = lpl_now_seconds();
        if (s->drop_on && s->drop.embd > 0.0f) /* through the embedding dropout */
            lpl_ms_drop_apply(s, s->dres, s->dres, (int64_t)T * C, LPL_DROP_EMBD, 0, s->drop.embd);
        size_t rb = (size_t)C;
        for (int t = 0; t < T; t++) {
            float *gw = s->grads + top.wte + (size_t)s->tokens[t] * rb;
            float *gp = top.wpe >= 0 ? s->grads + top.wpe + (size_t)t * C : NULL;
            const float *d = s->dres + (size_t)t * C;
            for (int i = 0; i < C; i++)
                gw[i] += d[i];
            if (gp)
                for (int i = 0; i < C; i++)
                    gp[i] += d[i];
        }
        s->tm.embed += lpl_now_seconds() - t0;
    }
    s->backward_done = 1;
    s->tm.total += lpl_now_seconds() - start;
    return LPL_OK;
}

/* ---------------- merging adapters into the weights ---------------- */

lpl_status lpl_gpt2_merge_lora(lpl_gpt2_model *m, const lpl_lora *l, int sign, lpl_error *err)
{
    const lpl_gpt2_config *a = &m->cfg, *b = &l->model_cfg;
    if (a->n_layer != b->n_layer || a->n_embd != b->n_embd || a->n_head != b->n_head || a->arch != b->arch ||
        a->n_kv_head != b->n_kv_head || a->n_ff != b->n_ff)
        return lpl_fail(err, LPL_ERR_INVALID, "merge: the adapters were made for a different model shape");
    if (sign != 1 && sign != -1)
        return lpl_fail(err, LPL_ERR_INVALID, "merge: sign must be +1 (merge) or -1 (unmerge), got %d", sign);
    const int r = l->cfg.r;
    float *row = lpl_malloc((size_t)widest_row(a) * sizeof(float), "merge row", err);
    if (!row)
        return LPL_ERR_NOMEM;
    const float k = (float)sign * l->scaling;
    for (int i = 0; i < l->n_modules; i++) {
        const lpl_lora_module *mod = &l->modules[i];
        lpl_matrix *W = &m->blocks[mod->layer].w[mod->site];
        size_t rb = lpl_dtype_row_bytes(W->type, W->cols);
        for (int o = 0; o < mod->out; o++) {
            char *dst = (char *)W->data + (size_t)o * rb;
            lpl_dequantize_row(W->type, dst, row, W->cols);
            for (int j = 0; j < r; j++)
                lpl_axpy(row, k * mod->B[(size_t)o * r + j], mod->A + (size_t)j * mod->in, mod->in);
            if (W->type == LPL_F32)
                memcpy(dst, row, (size_t)W->cols * sizeof(float));
            else if (lpl_convert_row(W->type, row, dst, W->cols, err) != LPL_OK) {
                free(row);
                return err ? err->code : LPL_ERR_INVALID;
            }
        }
    }
    free(row);
    return LPL_OK;
}
