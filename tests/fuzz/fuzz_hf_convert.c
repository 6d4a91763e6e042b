/* Fuzz target: the whole Hugging Face -> GGUF conversion from memory, as the browser
 * runs it. The input is config.json, vocab.json and merges.txt, each followed by one
 * NUL byte, then the checkpoint bytes (safetensors or a PyTorch zip). A converted
 * model must open again as a GGUF with a model and a tokenizer. */
#include "fuzz_common.h"
#include "lpl/io/model_io.h"
#include "lpl/io/tokenizer.h"

/* The converter's output must be readable by our own reader. */
static void fuzz_conv_check_output(const void *out, size_t out_n)
{
    lpl_error e;
    lpl_error_clear(&e);
    lpl_gguf *g = lpl_gguf_open_memory(out, out_n, 0, &e);
    FUZZ_ASSERT(g != NULL, "converted GGUF does not open: %s", e.msg);
    lpl_gpt2_model *m = lpl_gpt2_from_gguf(g, 0, &e);
    FUZZ_ASSERT(m != NULL, "converted GGUF has no usable model: %s", e.msg);
    lpl_tokenizer *tok = lpl_tokenizer_from_gguf(g, &e);
    /* A converted vocabulary may lack byte tokens (then the tokenizer refuses it,
     * with a message); what matters is that the refusal is clean. */
    if (!tok)
        FUZZ_ASSERT(e.msg[0] != '\0', "tokenizer refused without a message");
    lpl_tokenizer_free(tok);
    lpl_gpt2_free(m);
    lpl_gguf_close(g);
}

int lpl_fuzz_hf_convert(const uint8_t *data, size_t size, lpl_error *err)
{
    const uint8_t *p[4];
    size_t n[4];
    p[0] = data;
    n[0] = fuzz_split(data, size, &p[1], &n[1]);
    n[1] = fuzz_split(p[1], n[1], &p[2], &n[2]);
    n[2] = fuzz_split(p[2], n[2], &p[3], &n[3]);
    /* Each part in a buffer of its own exact size. */
    uint8_t *copy[4];
    for (int i = 0; i < 4; i++) {
        copy[i] = malloc(n[i] ? n[i] : 1);
        FUZZ_ASSERT(copy[i] != NULL, "out of memory");
        if (n[i])
            memcpy(copy[i], p[i], n[i]);
    }
    void *out = NULL;
    size_t out_n = 0;
    lpl_status st = lpl_convert_hf_memory((const char *)copy[0], n[0], copy[3], n[3], (const char *)copy[1], n[1],
                                          (const char *)copy[2], n[2], LPL_Q8_0, &out, &out_n, err);
    if (st == LPL_OK)
        fuzz_conv_check_output(out, out_n);
    else
        FUZZ_ASSERT(err->msg[0] != '\0', "refused without a message");
    free(out);
    for (int i = 0; i < 4; i++)
        free(copy[i]);
    return st == LPL_OK;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_hf_convert(data, size, &err);
    return 0;
}
#endif
