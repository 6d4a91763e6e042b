/* Text generation (greedy, temperature, top-k, repetition penalty). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lpl/lab/generate.h"
#include "lpl/io/data.h"
#include "lpl/core/rng.h"

void lpl_generate_options_default(lpl_generate_options *o)
{
    /* greedy over the whole vocabulary, no repetition penalty, no minimum length */
    *o = (lpl_generate_options){.max_new_tokens = 64, .repetition_penalty = 1.0f, .seed = 42, .alpaca = 1};
}

typedef struct {
    float logit;
    int id;
} cand;

static int cand_desc(const void *a, const void *b)
{
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    return x < y ? 1 : x > y ? -1 : ((const cand *)a)->id - ((const cand *)b)->id;
}

/* Picks the next token from logits[V]: argmax when greedy, else a sample of the top-k
 * (or all) tokens at the temperature. cands is V entries of scratch. */
static int pick(const float *logits, int V, const lpl_generate_options *o, lpl_rng *rng, cand *cands)
{
    if (o->temperature <= 0) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best])
                best = v;
        return best;
    }
    for (int v = 0; v < V; v++) {
        cands[v].logit = logits[v];
        cands[v].id = v;
    }
    int k = V;
    if (o->top_k > 0 && o->top_k < V) {
        qsort(cands, (size_t)V, sizeof *cands, cand_desc);
        k = o->top_k;
    }
    float mx = cands[0].logit;
    for (int i = 1; i < k; i++)
        mx = cands[i].logit > mx ? cands[i].logit : mx;
    double sum = 0;
    for (int i = 0; i < k; i++)
        sum += exp((double)(cands[i].logit - mx) / o->temperature);
    double u = (double)lpl_rng_uniform(rng) * sum, acc = 0;
    for (int i = 0; i < k; i++) {
        acc += exp((double)(cands[i].logit - mx) / o->temperature);
        if (u < acc)
            return cands[i].id;
    }
    return cands[k - 1].id;
}

static char *wrap_prompt(const char *prompt, const lpl_generate_options *o)
{
    if (!o->alpaca)
        return strdup(prompt);
    lpl_alpaca_record rec = {(char *)prompt, (char *)"", (char *)""};
    return lpl_alpaca_prompt(&rec);
}

lpl_status lpl_generate(const lpl_gpt2_model *m, lpl_lora *lora, const lpl_tokenizer *tok,
                        const char *prompt, const lpl_generate_options *o, char **text, lpl_error *err)
{
    *text = NULL;
    const int V = m->cfg.n_vocab, n_ctx = m->cfg.n_ctx;
    char *full = wrap_prompt(prompt, o);
    if (!full)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: prompt");
    int *ids = NULL, n = 0;
    /* BOS in front when the tokenizer's config asks (Llama-family models) */
    lpl_status st = lpl_tokenizer_encode_ex(tok, full, strlen(full), LPL_ENCODE_SPECIAL, &ids, &n, NULL, err);
    if (st == LPL_OK && n > 0 && lpl_tokenizer_add_eos(tok) && ids[n - 1] == lpl_tokenizer_eos(tok))
        n--; /* a prompt is continued, not closed */
    free(full);
    if (st)
        return st;
    int cap = n + (o->max_new_tokens > 0 ? o->max_new_tokens : 0);
    if (cap > n_ctx)
        cap = n_ctx;
    if (n == 0 || n >= n_ctx) {
        free(ids);
        return lpl_fail(err, LPL_ERR_INVALID, "prompt is %d tokens; the model's context is %d", n, n_ctx);
    }
    int *seq = lpl_malloc((size_t)cap * sizeof(int), "generation buffer", err);
    cand *cands = lpl_malloc((size_t)V * sizeof(cand), "sampling scratch", err);
    float *penalised = lpl_malloc((size_t)V * sizeof(float), "sampling scratch", err);
    uint8_t *seen = lpl_malloc((size_t)V, "sampling scratch", err);
    lpl_gpt2_state *s = seq && cands && penalised && seen ? lpl_gpt2_state_new(m, cap, 0, err) : NULL;
    if (!s) {
        st = err ? err->code : LPL_ERR_NOMEM;
        goto done;
    }
    memcpy(seq, ids, (size_t)n * sizeof(int));
    int n_prompt = n, eot = lpl_tokenizer_eot(tok);
    lpl_rng rng;
    lpl_rng_seed(&rng, o->seed);
    /* No KV cache: each token reruns the whole prefix, which is fine at these lengths. */
    while (n < cap) {
        lpl_loss unused;
        st = lpl_gpt2_forward(m, lora, s, seq, NULL, NULL, n, 0, &unused, err);
        if (st)
            goto done;
        const float *row = lpl_gpt2_logits(s) + (size_t)(n - 1) * V;
        if (o->repetition_penalty != 1.0f && o->repetition_penalty > 0) {
            /* Small models fall into loops of one token (often "\n"); penalising what is
             * already in the sequence is the transformers library's remedy. */
            memcpy(penalised, row, (size_t)V * sizeof(float));
            memset(seen, 0, (size_t)V);
            for (int i = 0; i < n; i++) {
                int id = seq[i];
                if (seen[id])
                    continue; /* once per distinct token, as transformers does */
                seen[id] = 1;
                float l = penalised[id];
                penalised[id] = l > 0 ? l / o->repetition_penalty : l * o->repetition_penalty;
            }
            row = penalised;
        }
        if (n - n_prompt < o->min_new_tokens && eot >= 0) {
            /* transformers' min_new_tokens: end-of-text is impossible until then */
            if (row != penalised)
                memcpy(penalised, row, (size_t)V * sizeof(float));
            penalised[eot] = -INFINITY;
            row = penalised;
        }
        int next = pick(row, V, o, &rng, cands);
        if (next == eot)
            break;
        seq[n++] = next;
    }
    size_t len;
    st = lpl_tokenizer_decode(tok, seq + n_prompt, n - n_prompt, text, &len, err);
done:
    lpl_gpt2_state_free(s);
    free(cands);
    free(penalised);
    free(seen);
    free(seq);
    free(ids);
    return st;
}
