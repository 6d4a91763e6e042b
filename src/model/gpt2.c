/* GPT-2 model: parameter layout, random init, weight type
 * conversion, and the forward/backward of one sequence with optional LoRA, and merging adapters into the weights. */
#include "lpl/model/gpt2.h"

#include "lpl/model/gpt2_layers.h"
#include "lpl/core/kernels.h"
#include "lpl/model/lora.h"
#include "lpl/core/platform.h"
#include "lpl/core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------- parameter layout ---------------- */

static int64_t block_size(const lpl_gpt2_config *c)
{
    const int64_t C = c->n_embd;
    return 12 * C * C + 13 * C;
}

void lpl_gpt2_top_offsets_of(const lpl_gpt2_config *c, lpl_gpt2_top_offsets *o)
{
    const int64_t C = c->n_embd;
    o->wte = 0;
    o->wpe = (int64_t)c->n_vocab * C;
    int64_t blocks = o->wpe + (int64_t)c->n_ctx * C;
    o->lnf_w = blocks + (int64_t)c->n_layer * block_size(c);
    o->lnf_b = o->lnf_w + C;
    o->total = o->lnf_b + C;
}

int64_t lpl_gpt2_block_offsets_of(const lpl_gpt2_config *c, int layer, lpl_gpt2_block_offsets *o)
{
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);
    const int64_t C = c->n_embd;
    int64_t p = top.wpe + (int64_t)c->n_ctx * C + (int64_t)layer * block_size(c);
    o->ln1_w = p; p += C;
    o->ln1_b = p; p += C;
    for (int s = 0; s < LPL_N_SITES; s++) {
        int out, in;
        lpl_site_shape(c, (lpl_site)s, &out, &in);
        if (s == LPL_SITE_MLP_FC) {
            o->ln2_w = p; p += C;
            o->ln2_b = p; p += C;
        }
        o->w[s] = p; p += (int64_t)out * in;
        o->b[s] = p; p += out;
    }
    return top.total;
}

int64_t lpl_gpt2_param_count(const lpl_gpt2_config *c)
{
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);
    return top.total;
}

/* Points every tensor of m into an fp32 buffer laid out as above. */
static void point_at_params(lpl_gpt2_model *m, float *base)
{
    const lpl_gpt2_config *c = &m->cfg;
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);
    m->wte = (lpl_matrix){LPL_F32, c->n_vocab, c->n_embd, base + top.wte};
    m->wpe = base + top.wpe;
    m->lnf_w = base + top.lnf_w;
    m->lnf_b = base + top.lnf_b;
    for (int l = 0; l < c->n_layer; l++) {
        lpl_gpt2_block_offsets o;
        lpl_gpt2_block_offsets_of(c, l, &o);
        lpl_gpt2_block *b = &m->blocks[l];
        b->ln1_w = base + o.ln1_w;
        b->ln1_b = base + o.ln1_b;
        b->ln2_w = base + o.ln2_w;
        b->ln2_b = base + o.ln2_b;
        for (int s = 0; s < LPL_N_SITES; s++) {
            int out, in;
            lpl_site_shape(c, (lpl_site)s, &out, &in);
            b->w[s] = (lpl_matrix){LPL_F32, out, in, base + o.w[s]};
            b->b[s] = base + o.b[s];
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
    fill_normal(&r, m->wpe, (int64_t)cfg->n_ctx * C, 0.02f);
    /* residual projections get 0.02/sqrt(2L), as GPT-2's paper and HF do */
    float proj_std = 0.02f / sqrtf(2.0f * (float)cfg->n_layer);
    for (int l = 0; l < cfg->n_layer; l++) {
        lpl_gpt2_block *b = &m->blocks[l];
        for (int i = 0; i < C; i++)
            b->ln1_w[i] = b->ln2_w[i] = 1.0f;
        for (int s = 0; s < LPL_N_SITES; s++) {
            float std = (s == LPL_SITE_ATTN_PROJ || s == LPL_SITE_MLP_PROJ) ? proj_std : 0.02f;
            fill_normal(&r, b->w[s].data, (int64_t)b->w[s].rows * b->w[s].cols, std);
        }
    }
    for (int i = 0; i < C; i++)
        m->lnf_w[i] = 1.0f;
    return m;
}

/* Every 2-D matrix of the model, in a fixed order (wte, then each block's sites). */
static int n_matrices(const lpl_gpt2_model *m) { return 1 + LPL_N_SITES * m->cfg.n_layer; }
static lpl_matrix *matrix_at(lpl_gpt2_model *m, int i)
{
    return i == 0 ? &m->wte : &m->blocks[(i - 1) / LPL_N_SITES].w[(i - 1) % LPL_N_SITES];
}

/* The fp32 vectors (wpe, biases, layer norms) as (pointer, length) pairs. */
#define N_VECTORS(m) (3 + 8 * (m)->cfg.n_layer)
static int vector_list(lpl_gpt2_model *m, float ***ptrs, int64_t *lens)
{
    const lpl_gpt2_config *c = &m->cfg;
    int k = 0;
    ptrs[k] = &m->wpe, lens[k++] = (int64_t)c->n_ctx * c->n_embd;
    for (int l = 0; l < c->n_layer; l++) {
        lpl_gpt2_block *b = &m->blocks[l];
        ptrs[k] = &b->ln1_w, lens[k++] = c->n_embd;
        ptrs[k] = &b->ln1_b, lens[k++] = c->n_embd;
        ptrs[k] = &b->ln2_w, lens[k++] = c->n_embd;
        ptrs[k] = &b->ln2_b, lens[k++] = c->n_embd;
        for (int s = 0; s < LPL_N_SITES; s++)
            ptrs[k] = &b->b[s], lens[k++] = b->w[s].rows;
    }
    ptrs[k] = &m->lnf_w, lens[k++] = c->n_embd;
    ptrs[k] = &m->lnf_b, lens[k++] = c->n_embd;
    return k;
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
    int nv = N_VECTORS(m);
    float **sp[nv], **dp[nv];
    int64_t lens[nv];
    vector_list(m, sp, lens);
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
    int nm = n_matrices(m), nv = N_VECTORS(m);
    float **vp[nv];
    int64_t lens[nv];
    vector_list(m, vp, lens);
    /* one buffer: the fp32 vectors first, then each matrix 64-byte aligned */
    size_t total = 0;
    for (int k = 0; k < nv; k++)
        total += lpl_align64((size_t)lens[k] * sizeof(float));
    for (int i = 0; i < nm; i++) {
        const lpl_matrix *a = matrix_at(m, i);
        total += lpl_align64((size_t)a->rows * lpl_dtype_row_bytes(t, a->cols));
    }
    float *row = lpl_malloc((size_t)m->cfg.n_embd * 4 * sizeof(float), "conversion row", err);
    own_buf *o = row ? own_new(m, total, err) : NULL;
    if (!o) {
        free(row);
        return LPL_ERR_NOMEM;
    }
    /* fill a view whose blocks are the new array; m keeps pointing at the old data */
    lpl_gpt2_model view = *m;
    view.blocks = o->blocks;
    char *buf = o->buf;
    float **np[nv];
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
    take_ownership(m, o);
    m->params = NULL;
    m->n_params = 0;
    return LPL_OK;
}

/* ---------------- state ---------------- */

struct lpl_gpt2_state {
    lpl_gpt2_config cfg;
    int max_T;
    /* activations kept for backward, per layer [L][T][...] */
    float *resid;      /* [L+1][T][C]: input of each block, then input of ln_f */
    float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd; /* [L][T] */
    float *qkv;        /* [L][T][3C] */
    float *atty;       /* [L][T][C] attention output before c_proj */
    float *lse;        /* [L][H][T] */
    float *res2;       /* [L][T][C] residual after attention */
    float *fch;        /* [L][T][4C] c_fc output before gelu */
    float *lnf, *lnf_mean, *lnf_rstd; /* [T][C], [T], [T] */
    float *logits;     /* [T][V]; with targets only the scored rows, packed */
    float *nll, *ce_lse; /* [T] per scored row */
    /* recomputed / scratch */
    float *ln_buf;     /* [T][C] */
    float *gelu_buf;   /* [T][4C] */
    float *attn_scratch; /* [H][T] */
    /* backward */
    float *dres, *dC;  /* [T][C] */
    float *d3C;        /* [T][3C] */
    float *d4C_a, *d4C_b; /* [T][4C] */
    /* last forward */
    int T, has_targets, n_scored;
    int backward_done; /* backward consumed the logits of the last forward */
    int *tokens, *targets;
    int *rows, *row_targets; /* scored positions and their targets, packed */
    uint8_t *mask;
    /* full-parameter gradients */
    float *grads;
    int64_t n_grads;
    lpl_gpt2_timings tm;
    lpl_compute compute; /* base products in fp32 or int8 */
    /* base-model dropout: rates, the key stream, the last forward's key */
    lpl_gpt2_dropout drop;
    uint64_t drop_next, drop_key;
    int drop_on; /* the last forward was a training forward with some rate > 0 */
    size_t bytes;
    void *buf;
};

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
    struct { float **p; size_t n; } plan[] = {
        {&s->resid, (L + 1) * T * C}, {&s->ln1_mean, L * T}, {&s->ln1_rstd, L * T},
        {&s->ln2_mean, L * T}, {&s->ln2_rstd, L * T}, {&s->qkv, L * T * 3 * C},
        {&s->atty, L * T * C}, {&s->lse, L * H * T}, {&s->res2, L * T * C},
        {&s->fch, L * T * 4 * C}, {&s->lnf, T * C}, {&s->lnf_mean, T}, {&s->lnf_rstd, T},
        {&s->logits, T * V}, {&s->nll, T}, {&s->ce_lse, T}, {&s->ln_buf, T * C}, {&s->gelu_buf, T * 4 * C},
        {&s->attn_scratch, H * T}, {&s->dres, T * C}, {&s->dC, T * C}, {&s->d3C, T * 3 * C},
        {&s->d4C_a, T * 4 * C}, {&s->d4C_b, T * 4 * C},
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
    /* its own stream: LoRA's dropout and the data order use the same seed */
    s->drop_next = lpl_mix64(seed ^ 0x626173652d64726fULL);
    return LPL_OK;
}

uint64_t lpl_gpt2_state_dropout_key(const lpl_gpt2_state *s) { return s->drop_next; }

uint64_t lpl_gpt2_dropout_stream(lpl_gpt2_drop_site site, int layer)
{
    return (uint64_t)layer * 4u + (uint64_t)site;
}

/* x[n] *= the mask of (site, layer) of the last forward (or dst = src * mask). */
static void drop_apply(const lpl_gpt2_state *s, float *dst, const float *src, int64_t n, lpl_gpt2_drop_site site,
                       int layer, float p)
{
    const uint64_t stream = lpl_gpt2_dropout_stream(site, layer);
    for (int64_t i = 0; i < n; i++)
        dst[i] = src[i] * lpl_dropout_scale(s->drop_key, stream, (uint64_t)i, p);
}

/* The last forward's attention dropout of layer l, or NULL. */
static const lpl_attn_dropout *attn_drop(const lpl_gpt2_state *s, int l, lpl_attn_dropout *buf)
{
    if (!s->drop_on || !(s->drop.attn > 0.0f))
        return NULL;
    *buf = (lpl_attn_dropout){s->drop_key, lpl_gpt2_dropout_stream(LPL_DROP_ATTN, l), s->drop.attn};
    return buf;
}

/* Residual dropout rate of the last forward (0: none). */
static float resid_rate(const lpl_gpt2_state *s) { return s->drop_on ? s->drop.resid : 0.0f; }
lpl_compute lpl_gpt2_state_compute(const lpl_gpt2_state *s) { return s->compute; }

/* The base's linear products in the state's compute, timed on their own too (they
 * are what compute int8 changes; the component buckets hold them with the rest). */
static void base_forward(lpl_gpt2_state *s, float *Y, const float *X, const lpl_matrix *W, const float *bias,
                         int T)
{
    double t0 = lpl_now_seconds();
    if (s->compute == LPL_COMPUTE_INT8)
        lpl_linear_forward_q8(Y, X, W, bias, T, 0);
    else
        lpl_linear_forward(Y, X, W, bias, T, 0);
    s->tm.base_products += lpl_now_seconds() - t0;
}

static void base_backward_input(lpl_gpt2_state *s, float *dX, const float *dY, const lpl_matrix *W, int T)
{
    double t0 = lpl_now_seconds();
    if (s->compute == LPL_COMPUTE_INT8)
        lpl_linear_backward_input_q8(dX, dY, W, T);
    else
        lpl_linear_backward_input(dX, dY, W, T);
    s->tm.base_products += lpl_now_seconds() - t0;
}

void lpl_gpt2_get_timings(const lpl_gpt2_state *s, lpl_gpt2_timings *t) { *t = s->tm; }
void lpl_gpt2_reset_timings(lpl_gpt2_state *s) { memset(&s->tm, 0, sizeof s->tm); }

/* ---------------- forward ---------------- */

static int same_shape(const lpl_gpt2_config *a, const lpl_gpt2_config *b)
{
    return a->n_layer == b->n_layer && a->n_embd == b->n_embd && a->n_head == b->n_head &&
           a->n_ctx == b->n_ctx && a->n_vocab == b->n_vocab;
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

/* Y = X W^T + b, plus the LoRA branch when the site is adapted. */
static void site_forward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, lpl_site site,
                         float *Y, const float *X, int T, double *bucket)
{
    const lpl_gpt2_block *b = &m->blocks[l];
    double t0 = lpl_now_seconds();
    base_forward(s, Y, X, &b->w[site], b->b[site], T);
    double t1 = lpl_now_seconds();
    *bucket += t1 - t0;
    const lpl_lora_module *mod = lora ? lora->by_site[l * LPL_N_SITES + site] : NULL;
    if (mod) {
        lpl_lora_site_forward(lora, mod, Y, X, T);
        s->tm.lora += lpl_now_seconds() - t1;
    }
}

static void embed_forward(const lpl_gpt2_model *m, float *out, const int *tokens, int T)
{
    const int C = m->cfg.n_embd;
    size_t rb = lpl_dtype_row_bytes(m->wte.type, C);
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * C;
        lpl_dequantize_row(m->wte.type, (const char *)m->wte.data + (size_t)tokens[t] * rb, o, C);
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
    site_forward(m, lora, s, l, LPL_SITE_ATTN_QKV, qkv, s->ln_buf, T, &s->tm.attention);
    t0 = lpl_now_seconds();
    lpl_attn_dropout ad;
    lpl_attention_forward(atty, lse, qkv, T, (int)C, c->n_head, s->attn_scratch, attn_drop(s, l, &ad));
    s->tm.attention += lpl_now_seconds() - t0;
    site_forward(m, lora, s, l, LPL_SITE_ATTN_PROJ, s->dC, atty, T, &s->tm.attention);
    if (resid_rate(s) > 0.0f)
        drop_apply(s, s->dC, s->dC, (int64_t)TC, LPL_DROP_RESID_ATTN, l, resid_rate(s));
    lpl_residual_forward(res2, x, s->dC, (int64_t)TC);

    t0 = lpl_now_seconds();
    lpl_layernorm_forward(s->ln_buf, s->ln2_mean + l * sT, s->ln2_rstd + l * sT, res2, b->ln2_w, b->ln2_b, T,
                          (int)C, c->ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t0;
    site_forward(m, lora, s, l, LPL_SITE_MLP_FC, fch, s->ln_buf, T, &s->tm.mlp);
    t0 = lpl_now_seconds();
    lpl_gelu_forward(s->gelu_buf, fch, (int64_t)TC * 4);
    s->tm.mlp += lpl_now_seconds() - t0;
    site_forward(m, lora, s, l, LPL_SITE_MLP_PROJ, s->dC, s->gelu_buf, T, &s->tm.mlp);
    if (resid_rate(s) > 0.0f)
        drop_apply(s, s->dC, s->dC, (int64_t)TC, LPL_DROP_RESID_MLP, l, resid_rate(s));
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
        drop_apply(s, s->resid, s->resid, (int64_t)T * C, LPL_DROP_EMBD, 0, s->drop.embd);
    double t0 = lpl_now_seconds();
    s->tm.embed += t0 - start;
    for (int l = 0; l < c->n_layer; l++)
        block_forward(m, lora, s, l, T);

    t0 = lpl_now_seconds();
    const float *xf = s->resid + (size_t)c->n_layer * s->max_T * C;
    lpl_layernorm_forward(s->lnf, s->lnf_mean, s->lnf_rstd, xf, m->lnf_w, m->lnf_b, T, C, c->ln_eps);
    double t1 = lpl_now_seconds();
    s->tm.layernorm += t1 - t0;
    lpl_loss loss = {0.0, 0, 0.0f};
    if (!targets) {
        base_forward(s, s->logits, s->lnf, &m->wte, NULL, T);
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
            base_forward(s, s->logits, s->ln_buf, &m->wte, NULL, n);
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

typedef struct {
    float *ln1_w, *ln1_b, *w[LPL_N_SITES], *b[LPL_N_SITES], *ln2_w, *ln2_b;
} block_grads;

static void block_grads_of(const lpl_gpt2_state *s, int l, block_grads *g)
{
    if (!s->grads) {
        memset(g, 0, sizeof *g);
        return;
    }
    lpl_gpt2_block_offsets o;
    lpl_gpt2_block_offsets_of(&s->cfg, l, &o);
    g->ln1_w = s->grads + o.ln1_w;
    g->ln1_b = s->grads + o.ln1_b;
    g->ln2_w = s->grads + o.ln2_w;
    g->ln2_b = s->grads + o.ln2_b;
    for (int k = 0; k < LPL_N_SITES; k++) {
        g->w[k] = s->grads + o.w[k];
        g->b[k] = s->grads + o.b[k];
    }
}

/* dX = dY W (overwritten), plus weight/bias gradients and the LoRA branch backward.
 * dX NULL: nobody needs the input gradient (the lowest adapted site), skip it. */
static void site_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, const block_grads *g,
                          int l, lpl_site site, float *dX, const float *dY, const float *X, int T,
                          double *bucket)
{
    const lpl_matrix *W = &m->blocks[l].w[site];
    double t0 = lpl_now_seconds();
    if (dX) {
        memset(dX, 0, (size_t)T * W->cols * sizeof(float));
        base_backward_input(s, dX, dY, W, T);
    }
    if (g->w[site]) {
        lpl_linear_backward_weight(g->w[site], dY, X, T, W->rows, W->cols);
        lpl_bias_backward(g->b[site], dY, T, W->rows);
    }
    double t1 = lpl_now_seconds();
    *bucket += t1 - t0;
    const lpl_lora_module *mod = lora ? lora->by_site[l * LPL_N_SITES + site] : NULL;
    if (mod) {
        lpl_lora_site_backward(lora, mod, dX, dY, X, T);
        s->tm.lora += lpl_now_seconds() - t1;
    }
}

/* On entry s->dres holds d(block output); on exit d(block input). last >= 0: this is
 * the lowest layer backward reaches and nothing below site `last` (in backward order
 * mlp.c_proj, mlp.c_fc, attn.c_proj, attn.c_attn) needs a gradient, so the block stops
 * once that site's adapters have theirs (dres is then left unfinished). */
static void block_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, int T, int last)
{
    const lpl_gpt2_config *c = &m->cfg;
    const size_t C = (size_t)c->n_embd, sT = (size_t)s->max_T;
    const lpl_gpt2_block *b = &m->blocks[l];
    block_grads g;
    block_grads_of(s, l, &g);
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
    if (resid_rate(s) > 0.0f) {
        drop_apply(s, s->d3C, s->dres, (int64_t)T * C, LPL_DROP_RESID_MLP, l, resid_rate(s));
        dY = s->d3C;
    }
    site_backward(m, lora, s, &g, l, LPL_SITE_MLP_PROJ, last == LPL_SITE_MLP_PROJ ? NULL : s->d4C_a, dY,
                  s->gelu_buf, T, &s->tm.mlp);
    if (last == LPL_SITE_MLP_PROJ)
        return;
    t0 = lpl_now_seconds();
    memset(s->d4C_b, 0, T4C * sizeof(float));
    lpl_gelu_backward(s->d4C_b, fch, s->d4C_a, (int64_t)T4C);
    s->tm.mlp += lpl_now_seconds() - t0;
    site_backward(m, lora, s, &g, l, LPL_SITE_MLP_FC, last == LPL_SITE_MLP_FC ? NULL : s->dC, s->d4C_b, s->ln_buf,
                  T, &s->tm.mlp);
    if (last == LPL_SITE_MLP_FC)
        return;
    t0 = lpl_now_seconds();
    lpl_layernorm_backward(s->dres, g.ln2_w, g.ln2_b, s->dC, res2, b->ln2_w, s->ln2_mean + l * sT,
                           s->ln2_rstd + l * sT, T, (int)C);
    s->tm.layernorm += lpl_now_seconds() - t0;

    /* attention */
    dY = s->dres;
    if (resid_rate(s) > 0.0f) {
        drop_apply(s, s->d3C, s->dres, (int64_t)T * C, LPL_DROP_RESID_ATTN, l, resid_rate(s));
        dY = s->d3C;
    }
    site_backward(m, lora, s, &g, l, LPL_SITE_ATTN_PROJ, last == LPL_SITE_ATTN_PROJ ? NULL : s->dC, dY, atty,
                  T, &s->tm.attention);
    if (last == LPL_SITE_ATTN_PROJ)
        return;
    t0 = lpl_now_seconds();
    memset(s->d3C, 0, (size_t)T * 3 * C * sizeof(float));
    lpl_attn_dropout ad;
    lpl_attention_backward(s->d3C, s->dC, qkv, atty, lse, T, (int)C, c->n_head, s->attn_scratch,
                           attn_drop(s, l, &ad));
    double t1 = lpl_now_seconds();
    s->tm.attention += t1 - t0;
    lpl_layernorm_forward(s->ln_buf, s->ln1_mean + l * sT, s->ln1_rstd + l * sT, x, b->ln1_w, b->ln1_b, T,
                          (int)C, c->ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t1;
    site_backward(m, lora, s, &g, l, LPL_SITE_ATTN_QKV, last == LPL_SITE_ATTN_QKV ? NULL : s->dC, s->d3C, s->ln_buf,
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
    for (int site = 0; site < LPL_N_SITES; site++)
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
    base_backward_input(s, s->dC, s->logits, &m->wte, n);
    if (s->grads)
        lpl_linear_backward_weight(s->grads + top.wte, s->logits, s->ln_buf, n, V, C);
    /* unpack d(ln_f output) to all T rows (zero where unscored) */
    float *dlnf = s->d3C;
    memset(dlnf, 0, (size_t)T * C * sizeof(float));
    for (int k = 0; k < n; k++)
        memcpy(dlnf + (size_t)s->rows[k] * C, s->dC + (size_t)k * C, (size_t)C * sizeof(float));
    double t0 = lpl_now_seconds();
    s->tm.lm_head += t0 - start;
    memset(s->dres, 0, (size_t)T * C * sizeof(float));
    const float *xf = s->resid + (size_t)c->n_layer * s->max_T * C;
    lpl_layernorm_backward(s->dres, s->grads ? s->grads + top.lnf_w : NULL, s->grads ? s->grads + top.lnf_b : NULL,
                           dlnf, xf, m->lnf_w, s->lnf_mean, s->lnf_rstd, T, C);
    s->tm.layernorm += lpl_now_seconds() - t0;

    int lo = lowest_layer(s, lora);
    for (int l = c->n_layer - 1; l >= lo; l--)
        block_backward(m, lora, s, l, T, l == lo ? lowest_site(s, lora, l) : -1);

    if (s->grads) {
        t0 = lpl_now_seconds();
        if (s->drop_on && s->drop.embd > 0.0f) /* through the embedding dropout */
            drop_apply(s, s->dres, s->dres, (int64_t)T * C, LPL_DROP_EMBD, 0, s->drop.embd);
        size_t rb = (size_t)C;
        for (int t = 0; t < T; t++) {
            float *gw = s->grads + top.wte + (size_t)s->tokens[t] * rb;
            float *gp = s->grads + top.wpe + (size_t)t * C;
            const float *d = s->dres + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                gw[i] += d[i];
                gp[i] += d[i];
            }
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
    if (a->n_layer != b->n_layer || a->n_embd != b->n_embd || a->n_head != b->n_head)
        return lpl_fail(err, LPL_ERR_INVALID, "merge: the adapters were made for a different model shape");
    if (sign != 1 && sign != -1)
        return lpl_fail(err, LPL_ERR_INVALID, "merge: sign must be +1 (merge) or -1 (unmerge), got %d", sign);
    const int r = l->cfg.r;
    float *row = lpl_malloc((size_t)a->n_embd * 4 * sizeof(float), "merge row", err);
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
