/* Fuzz target: GGUF reader over memory, then everything built from an open GGUF
 * (the GPT-2 model and the tokenizer inside it). */
#include "fuzz_common.h"
#include "lpl/io/gguf.h"
#include "lpl/io/model_io.h"
#include "lpl/io/tokenizer.h"

/* Reads the first and last byte of n bytes, so ASan sees an out-of-range pointer. */
static unsigned fuzz_gguf_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    return n ? (unsigned)b[0] + b[n - 1] : 0;
}

/* Calls every getter on every key, as a reader of the file would. */
static void fuzz_gguf_walk_kv(const lpl_gguf *g)
{
    lpl_error e;
    int64_t n_kv = lpl_gguf_n_kv(g);
    for (int64_t i = 0; i < n_kv; i++) {
        const char *key = lpl_gguf_key(g, i);
        FUZZ_ASSERT(key != NULL, "key %lld of %lld is NULL", (long long)i, (long long)n_kv);
        FUZZ_ASSERT(lpl_gguf_find_key(g, key) >= 0, "key '%s' is listed but not found", key);
        uint32_t u;
        float f;
        const char *s;
        size_t len;
        if (lpl_gguf_get_u32(g, key, &u, &e) == LPL_OK)
            (void)u;
        if (lpl_gguf_get_f32(g, key, &f, &e) == LPL_OK)
            (void)f;
        if (lpl_gguf_get_str(g, key, &s, &len, &e) == LPL_OK)
            FUZZ_ASSERT(strlen(s) <= len, "string of key '%s' is longer than its length", key);
        lpl_gguf_type et;
        uint64_t n;
        const void *raw;
        if (lpl_gguf_get_arr(g, key, &et, &n, &raw, &e) != LPL_OK)
            continue;
        if (et == LPL_GGUF_STRING) {
            /* The first, last and one past the last element (which must be refused). */
            uint64_t probe[3] = {0, n ? n - 1 : 0, n};
            for (int k = 0; k < 3; k++) {
                lpl_status st = lpl_gguf_get_arr_str(g, key, probe[k], &s, &len, &e);
                if (probe[k] >= n)
                    FUZZ_ASSERT(st != LPL_OK, "array '%s' index %llu of %llu accepted", key,
                                (unsigned long long)probe[k], (unsigned long long)n);
                else if (st == LPL_OK)
                    fuzz_gguf_touch(s, len + 1);
            }
        } else if (raw && n) {
            static const size_t esz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
            size_t sz = (unsigned)et < sizeof esz / sizeof esz[0] ? esz[et] : 0;
            if (sz)
                fuzz_gguf_touch(raw, (size_t)n * sz);
        }
    }
}

static void fuzz_gguf_walk_tensors(const lpl_gguf *g)
{
    int64_t nt = lpl_gguf_n_tensors(g);
    for (int64_t i = 0; i < nt; i++) {
        const lpl_gguf_tensor *t = lpl_gguf_tensor_at(g, i);
        FUZZ_ASSERT(t != NULL && t->name != NULL, "tensor %lld missing", (long long)i);
        FUZZ_ASSERT(lpl_gguf_find_tensor(g, t->name) != NULL, "tensor '%s' not found by name", t->name);
        FUZZ_ASSERT(t->nbytes <= lpl_gguf_file_size(g), "tensor '%s' larger than the file", t->name);
        fuzz_gguf_touch(t->data, t->nbytes);
    }
}

int lpl_fuzz_gguf(const uint8_t *data, size_t size, lpl_error *err)
{
    lpl_gguf *g = lpl_gguf_open_memory(data, size, 0, err);
    if (!g)
        return 0;
    fuzz_gguf_walk_kv(g);
    fuzz_gguf_walk_tensors(g);

    /* What the CLI does next: the model and the tokenizer from the same file. The
     * input counts as accepted only if both load; err keeps the first refusal. */
    int ok = 1;
    lpl_gpt2_model *m = lpl_gpt2_from_gguf(g, 0, err);
    if (m) {
        FUZZ_ASSERT(m->cfg.n_layer >= 1 && m->cfg.n_embd >= 1 && m->cfg.n_vocab >= 1,
                    "model accepted with config L=%d C=%d V=%d", m->cfg.n_layer, m->cfg.n_embd,
                    m->cfg.n_vocab);
        /* `loralab merge --type q8_0` quantizes a loaded model: the weights come from
         * the file, so NaN/inf or huge values must not trip the quantizer. */
        lpl_error ce;
        lpl_error_clear(&ce);
        if (lpl_gpt2_param_count(&m->cfg) < 4000000)
            (void)lpl_gpt2_convert(m, (size & 1) ? LPL_Q4_0 : LPL_Q8_0, &ce);
        lpl_gpt2_free(m);
    } else {
        FUZZ_ASSERT(err->msg[0] != '\0', "model refused without a message");
        ok = 0;
    }
    lpl_error e;
    lpl_error_clear(&e);
    lpl_tokenizer *tok = lpl_tokenizer_from_gguf(g, ok ? err : &e);
    if (tok) {
        int ids[2] = {0, lpl_tokenizer_vocab_size(tok) - 1};
        char *text = NULL;
        size_t len = 0;
        if (lpl_tokenizer_decode(tok, ids, 2, &text, &len, &e) == LPL_OK)
            free(text);
        static const char sample[] = "Hello world, it's 2024: na\xc3\xafve caf\xc3\xa9s!";
        int *out = NULL, n_out = 0;
        if (lpl_tokenizer_encode(tok, sample, sizeof sample - 1, &out, &n_out, &e) == LPL_OK)
            free(out);
        lpl_tokenizer_free(tok);
    } else {
        ok = 0;
    }
    lpl_gguf_close(g);
    return ok;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_gguf(data, size, &err);
    return 0;
}
#endif
