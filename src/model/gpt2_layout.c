/* The parameter layout of every architecture: where each tensor sits in the one
 * fp32 buffer of a trainable model (gpt2.h lpl_gpt2_block_offsets_of), from the
 * shapes gpt2_config.c defines. */
#include "lpl/model/gpt2.h"

/* Floats of one block: its norms and every site's weights and biases. */
static int64_t block_size(const lpl_gpt2_config *c)
{
    lpl_gpt2_block_offsets o;
    lpl_gpt2_block_offsets_of(c, -1, &o); /* -1: the relative layout, no totals (no recursion) */
    return o.end - o.ln1_w;
}

/* GPT-2: wte, wpe, blocks, ln_f.{w,b}. Llama: embed_tokens, blocks, norm, lm_head
 * when untied. Absent tensors have offset -1. */
void lpl_gpt2_top_offsets_of(const lpl_gpt2_config *c, lpl_gpt2_top_offsets *o)
{
    const int64_t C = c->n_embd;
    const int llama = lpl_cfg_is_llama(c);
    o->wte = 0;
    o->wpe = llama ? -1 : (int64_t)c->n_vocab * C;
    int64_t blocks = (int64_t)c->n_vocab * C + (llama ? 0 : (int64_t)c->n_ctx * C);
    int64_t p = blocks + (int64_t)c->n_layer * block_size(c);
    o->lnf_w = p; p += C;
    o->lnf_b = llama ? -1 : p;
    p += llama ? 0 : C;
    o->lm_head = llama && c->untied ? p : -1;
    p += llama && c->untied ? (int64_t)c->n_vocab * C : 0;
    o->total = p;
}

int64_t lpl_gpt2_block_offsets_of(const lpl_gpt2_config *c, int layer, lpl_gpt2_block_offsets *o)
{
    const int64_t C = c->n_embd;
    const int llama = lpl_cfg_is_llama(c);
    int64_t p = (int64_t)c->n_vocab * C + (llama ? 0 : (int64_t)c->n_ctx * C);
    if (layer > 0)
        p += (int64_t)layer * block_size(c);
    for (int s = 0; s < LPL_N_SITES; s++)
        o->w[s] = o->b[s] = -1;
    o->ln1_w = p; p += C;
    o->ln1_b = llama ? -1 : p;
    p += llama ? 0 : C;
    o->ln2_w = o->ln2_b = -1;
    for (int s = lpl_site_first(c); s < lpl_site_end(c); s++) {
        int out, in;
        lpl_site_shape(c, (lpl_site)s, &out, &in);
        if (s == LPL_SITE_MLP_FC || s == LPL_SITE_GATE) {
            o->ln2_w = p; p += C;
            o->ln2_b = llama ? -1 : p;
            p += llama ? 0 : C;
        }
        o->w[s] = p; p += (int64_t)out * in;
        if (lpl_site_has_bias(c, (lpl_site)s)) {
            o->b[s] = p;
            p += out;
        }
    }
    o->end = p;
    if (layer < 0)
        return 0;
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);
    return top.total;
}

int64_t lpl_gpt2_param_count(const lpl_gpt2_config *c)
{
    lpl_gpt2_top_offsets top;
    lpl_gpt2_top_offsets_of(c, &top);
    return top.total;
}

