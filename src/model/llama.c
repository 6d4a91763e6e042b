/* One Llama-family block, forward and backward:
 *   h = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))), n1 = rms(x)
 *   y = h + down_proj(silu(gate_proj(n2)) * up_proj(n2)),                 n2 = rms(h)
 * with grouped-query attention, HF's rotate-half RoPE and qwen2's q/k/v biases (the
 * sites' biases). The linear sites run through the same products, int8 path and LoRA
 * branches as GPT-2's (model_state.c). */
#include "llama.h"

#include "lpl/core/platform.h"
#include "lpl/model/llama_layers.h"

#include <string.h>

/* Where block l keeps its activations in the state (see model_state.h). */
typedef struct {
    float *x, *xo, *q, *k, *v, *atty, *lse, *res2, *g, *u, *rstd1, *rstd2;
    int C, H, KV, hd, kvd, F;
} llama_view;

static void view_of(const lpl_gpt2_state *s, int l, llama_view *v)
{
    const lpl_gpt2_config *c = &s->cfg;
    const size_t sT = (size_t)s->max_T, C = (size_t)c->n_embd;
    v->C = c->n_embd;
    v->H = c->n_head;
    v->KV = c->n_kv_head;
    v->hd = lpl_cfg_head_dim(c);
    v->kvd = v->KV * v->hd;
    v->F = c->n_ff;
    v->x = s->resid + (size_t)l * sT * C;
    v->xo = s->resid + (size_t)(l + 1) * sT * C;
    v->q = s->qkv + (size_t)l * sT * (C + 2 * (size_t)v->kvd);
    v->k = v->q + sT * C;
    v->v = v->k + sT * (size_t)v->kvd;
    v->atty = s->atty + (size_t)l * sT * C;
    v->lse = s->lse + (size_t)l * c->n_head * sT;
    v->res2 = s->res2 + (size_t)l * sT * C;
    v->g = s->fch + (size_t)l * sT * 2 * (size_t)v->F;
    v->u = v->g + sT * (size_t)v->F;
    v->rstd1 = s->ln1_rstd + (size_t)l * sT;
    v->rstd2 = s->ln2_rstd + (size_t)l * sT;
}

void lpl_llama_block_forward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, int T)
{
    const lpl_gpt2_block *b = &m->blocks[l];
    const float eps = m->cfg.ln_eps;
    llama_view v;
    view_of(s, l, &v);
    const size_t TC = (size_t)T * v.C;

    double t0 = lpl_now_seconds();
    lpl_rmsnorm_forward(s->ln_buf, v.rstd1, v.x, b->ln1_w, T, v.C, eps);
    s->tm.layernorm += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_Q, v.q, s->ln_buf, T, &s->tm.attention);
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_K, v.k, s->ln_buf, T, &s->tm.attention);
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_V, v.v, s->ln_buf, T, &s->tm.attention);
    t0 = lpl_now_seconds();
    lpl_rope_forward(v.q, s->rope, T, v.H, v.hd);
    lpl_rope_forward(v.k, s->rope, T, v.KV, v.hd);
    lpl_attn_dropout ad;
    lpl_attention_gqa_forward(v.atty, v.lse, v.q, v.k, v.v, T, v.H, v.KV, v.hd, s->attn_scratch,
                              lpl_ms_attn_drop(s, l, &ad));
    s->tm.attention += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_O, s->dC, v.atty, T, &s->tm.attention);
    lpl_residual_forward(v.res2, v.x, s->dC, (int64_t)TC);

    t0 = lpl_now_seconds();
    lpl_rmsnorm_forward(s->ln_buf, v.rstd2, v.res2, b->ln2_w, T, v.C, eps);
    s->tm.layernorm += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_GATE, v.g, s->ln_buf, T, &s->tm.mlp);
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_UP, v.u, s->ln_buf, T, &s->tm.mlp);
    t0 = lpl_now_seconds();
    lpl_swiglu_forward(s->gelu_buf, v.g, v.u, (int64_t)T * v.F);
    s->tm.mlp += lpl_now_seconds() - t0;
    lpl_ms_site_forward(m, lora, s, l, LPL_SITE_DOWN, s->dC, s->gelu_buf, T, &s->tm.mlp);
    lpl_residual_forward(v.xo, v.res2, s->dC, (int64_t)TC);
}

static void add_into(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* The MLP half: dres = d(block output) on entry, d(res2) on exit when the backward
 * goes on below (returns 0), else returns 1 (the lowest site's gradients are done). */
static int mlp_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, const lpl_ms_block_grads *g,
                        int l, int T, int last, const llama_view *v)
{
    const lpl_gpt2_block *b = &m->blocks[l];
    const size_t TF = (size_t)T * v->F, TC = (size_t)T * v->C;
    /* rebuild the norm's output and the gate product instead of storing them */
    double t0 = lpl_now_seconds();
    lpl_rmsnorm_forward(s->ln_buf, v->rstd2, v->res2, b->ln2_w, T, v->C, m->cfg.ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t0;
    t0 = lpl_now_seconds();
    lpl_swiglu_forward(s->gelu_buf, v->g, v->u, (int64_t)TF);
    s->tm.mlp += lpl_now_seconds() - t0;
    float *dh = s->d4C_a;
    lpl_ms_site_backward(m, lora, s, g, l, LPL_SITE_DOWN, last == LPL_SITE_DOWN ? NULL : dh, s->dres, s->gelu_buf,
                         T, &s->tm.mlp);
    if (last == LPL_SITE_DOWN)
        return 1;
    float *dg = s->d4C_b, *du = s->d4C_b + TF;
    t0 = lpl_now_seconds();
    memset(dg, 0, 2 * TF * sizeof(float));
    lpl_swiglu_backward(dg, du, dh, v->g, v->u, (int64_t)TF);
    s->tm.mlp += lpl_now_seconds() - t0;
    /* gate and up read the same input: its gradient is needed only below them */
    const int below = last == -1 || last < LPL_SITE_GATE;
    lpl_ms_site_backward(m, lora, s, g, l, LPL_SITE_UP, below ? s->dC : NULL, du, s->ln_buf, T, &s->tm.mlp);
    if (last == LPL_SITE_UP)
        return 1;
    lpl_ms_site_backward(m, lora, s, g, l, LPL_SITE_GATE, below ? s->d4C_a : NULL, dg, s->ln_buf, T, &s->tm.mlp);
    if (!below)
        return 1;
    t0 = lpl_now_seconds();
    add_into(s->dC, s->d4C_a, TC);
    lpl_rmsnorm_backward(s->dres, g->ln2_w, s->dC, v->res2, b->ln2_w, v->rstd2, T, v->C);
    s->tm.layernorm += lpl_now_seconds() - t0;
    return 0;
}

void lpl_llama_block_backward(const lpl_gpt2_model *m, lpl_lora *lora, lpl_gpt2_state *s, int l, int T, int last)
{
    const lpl_gpt2_block *b = &m->blocks[l];
    lpl_ms_block_grads g;
    lpl_ms_block_grads_of(s, l, &g);
    llama_view v;
    view_of(s, l, &v);
    if (mlp_backward(m, lora, s, &g, l, T, last, &v))
        return;

    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_O, last == LPL_SITE_O ? NULL : s->dC, s->dres, v.atty, T,
                         &s->tm.attention);
    if (last == LPL_SITE_O)
        return;
    const size_t TC = (size_t)T * v.C, Tkv = (size_t)T * v.kvd;
    float *dq = s->d3C, *dk = dq + TC, *dv = dk + Tkv;
    double t0 = lpl_now_seconds();
    memset(dq, 0, (TC + 2 * Tkv) * sizeof(float));
    lpl_attn_dropout ad;
    lpl_attention_gqa_backward(dq, dk, dv, s->dC, v.q, v.k, v.v, v.atty, v.lse, T, v.H, v.KV, v.hd,
                               s->attn_scratch, lpl_ms_attn_drop(s, l, &ad));
    lpl_rope_backward(dq, s->rope, T, v.H, v.hd);
    lpl_rope_backward(dk, s->rope, T, v.KV, v.hd);
    double t1 = lpl_now_seconds();
    s->tm.attention += t1 - t0;
    lpl_rmsnorm_forward(s->ln_buf, v.rstd1, v.x, b->ln1_w, T, v.C, m->cfg.ln_eps);
    s->tm.layernorm += lpl_now_seconds() - t1;
    /* q, k and v read the same input: its gradient is needed only below the block */
    const int below = last == -1;
    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_V, below ? s->dC : NULL, dv, s->ln_buf, T, &s->tm.attention);
    if (last == LPL_SITE_V)
        return;
    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_K, below ? s->d4C_a : NULL, dk, s->ln_buf, T,
                         &s->tm.attention);
    if (below)
        add_into(s->dC, s->d4C_a, TC);
    if (last == LPL_SITE_K)
        return;
    lpl_ms_site_backward(m, lora, s, &g, l, LPL_SITE_Q, below ? s->d4C_a : NULL, dq, s->ln_buf, T,
                         &s->tm.attention);
    if (!below)
        return;
    add_into(s->dC, s->d4C_a, TC);
    t0 = lpl_now_seconds();
    lpl_rmsnorm_backward(s->dres, g.ln1_w, s->dC, v.x, b->ln1_w, v.rstd1, T, v.C);
    s->tm.layernorm += lpl_now_seconds() - t0;
}
