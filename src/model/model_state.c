/* The model engine's per-sequence pieces shared by the GPT-2 and Llama blocks
 * (model_state.h). */
#include "model_state.h"

#include "lpl/core/kernels.h"
#include "lpl/core/platform.h"
#include "lpl/core/rng.h"

#include <string.h>

/* base + off, or NULL for an absent tensor (off < 0). */
static float *at(float *base, int64_t off) { return off < 0 ? NULL : base + off; }

/* x[n] *= the mask of (site, layer) of the last forward (or dst = src * mask). */
void lpl_ms_drop_apply(const lpl_gpt2_state *s, float *dst, const float *src, int64_t n, lpl_gpt2_drop_site site,
                       int layer, float p)
{
    const uint64_t stream = lpl_gpt2_dropout_stream(site, layer);
    for (int64_t i = 0; i < n; i++)
        dst[i] = src[i] * lpl_dropout_scale(s->drop_key, stream, (uint64_t)i, p);
}

/* The last forward's attention dropout of layer l, or NULL. */
const lpl_attn_dropout *lpl_ms_attn_drop(const lpl_gpt2_state *s, int l, lpl_attn_dropout *buf)
{
    if (!s->drop_on || !(s->drop.attn > 0.0f))
        return NULL;
    *buf = (lpl_attn_dropout){s->drop_key, lpl_gpt2_dropout_stream(LPL_DROP_ATTN, l), s->drop.attn};
    return buf;
}

/* Residual dropout rate of the last forward (0: none). */
float lpl_ms_resid_rate(const lpl_gpt2_state *s) { return s->drop_on ? s->drop.resid : 0.0f; }
/* The base's linear products in the state's compute, timed on their own too (they
 * are what compute int8 changes; the component buckets hold them with the rest). */
void lpl_ms_base_forward(lpl_gpt2_state *s, float *Y, const float *X, const lpl_matrix *W, const float *bias,
                         int T)
{
    double t0 = lpl_now_seconds();
    if (s->compute == LPL_COMPUTE_INT8)
        lpl_linear_forward_q8(Y, X, W, bias, T, 0);
    else
        lpl_linear_forward(Y, X, W, bias, T, 0);
    s->tm.base_products += lpl_now_seconds() - t0;
}

void lpl_ms_base_backward_input(lpl_gpt2_state *s, float *dX, const float *dY, const lpl_matrix *W, int T)
{
    double t0 = lpl_now_seconds();
    if (s->compute == LPL_COMPUTE_INT8)
        lpl_linear_backward_input_q8(dX, dY, W, T);
    else
        lpl_linear_backward_input(dX, dY, W, T);
    s->tm.base_products += lpl_now_seconds() - t0;
}

/* Y = X W^T + b, plus the LoRA branch when the site is adapted. */
void lpl_ms_site_forward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, lpl_site site,
                         float *Y, const float *X, int T, double *bucket)
{
    const lpl_gpt2_block *b = &m->blocks[l];
    double t0 = lpl_now_seconds();
    lpl_ms_base_forward(s, Y, X, &b->w[site], b->b[site], T);
    double t1 = lpl_now_seconds();
    *bucket += t1 - t0;
    const lpl_lora_module *mod = lora ? lora->by_site[l * LPL_N_SITES + site] : NULL;
    if (mod) {
        lpl_lora_site_forward(lora, mod, Y, X, T);
        s->tm.lora += lpl_now_seconds() - t1;
    }
}

void lpl_ms_block_grads_of(const lpl_gpt2_state *s, int l, lpl_ms_block_grads *g)
{
    if (!s->grads) {
        memset(g, 0, sizeof *g);
        return;
    }
    lpl_gpt2_block_offsets o;
    lpl_gpt2_block_offsets_of(&s->cfg, l, &o);
    g->ln1_w = at(s->grads, o.ln1_w);
    g->ln1_b = at(s->grads, o.ln1_b);
    g->ln2_w = at(s->grads, o.ln2_w);
    g->ln2_b = at(s->grads, o.ln2_b);
    for (int k = 0; k < LPL_N_SITES; k++) {
        g->w[k] = at(s->grads, o.w[k]);
        g->b[k] = at(s->grads, o.b[k]);
    }
}

/* dX = dY W (overwritten), plus weight/bias gradients and the LoRA branch backward.
 * dX NULL: nobody needs the input gradient (the lowest adapted site), skip it. */
void lpl_ms_site_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, const lpl_ms_block_grads *g,
                          int l, lpl_site site, float *dX, const float *dY, const float *X, int T,
                          double *bucket)
{
    const lpl_matrix *W = &m->blocks[l].w[site];
    double t0 = lpl_now_seconds();
    if (dX) {
        memset(dX, 0, (size_t)T * W->cols * sizeof(float));
        lpl_ms_base_backward_input(s, dX, dY, W, T);
    }
    if (g->w[site]) {
        lpl_linear_backward_weight(g->w[site], dY, X, T, W->rows, W->cols);
        if (g->b[site])
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


uint64_t lpl_gpt2_dropout_stream(lpl_gpt2_drop_site site, int layer)
{
    return (uint64_t)layer * 4u + (uint64_t)site;
}
