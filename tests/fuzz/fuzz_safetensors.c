/* Fuzz target: safetensors reader over memory (header JSON, offsets, dtypes), then
 * every tensor's bytes, the fp32 conversion and a write/re-read round trip. */
#include "fuzz_common.h"
#include "lpl/io/safetensors.h"

static unsigned fuzz_st_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    return n ? (unsigned)b[0] + b[n - 1] : 0;
}

static size_t fuzz_st_elem(lpl_dtype t)
{
    return t == LPL_F32 ? 4 : (t == LPL_F16 || t == LPL_BF16) ? 2 : 0;
}

/* Checks one accepted tensor against what the header promised and converts a few
 * elements from each end. */
static void fuzz_st_check_tensor(const lpl_safetensors *st, const lpl_st_tensor *t, size_t size)
{
    FUZZ_ASSERT(t->name != NULL, "tensor without a name");
    FUZZ_ASSERT(lpl_safetensors_find(st, t->name) != NULL, "tensor '%s' not found by name", t->name);
    size_t es = fuzz_st_elem(t->dtype);
    FUZZ_ASSERT(es != 0, "tensor '%s' accepted with dtype %d", t->name, (int)t->dtype);
    FUZZ_ASSERT(t->n_dims >= 0 && t->n_dims <= LPL_ST_MAX_DIMS, "tensor '%s' has %d dims", t->name,
                t->n_dims);
    int64_t numel = lpl_st_numel(t);
    FUZZ_ASSERT(numel >= 0 && (uint64_t)numel * es == t->nbytes,
                "tensor '%s': %lld elements of %zu bytes but nbytes %zu", t->name, (long long)numel,
                es, t->nbytes);
    FUZZ_ASSERT(t->nbytes <= size, "tensor '%s' larger than the file", t->name);
    fuzz_st_touch(t->data, t->nbytes);
    float buf[4];
    int64_t k = numel < 4 ? numel : 4;
    lpl_st_to_f32(t->dtype, t->data, buf, k);
    if (k)
        lpl_st_to_f32(t->dtype, (const uint8_t *)t->data + t->nbytes - (size_t)k * es, buf, k);
}

/* Writes the accepted tensors back out and reads the result: the writer must take
 * whatever the reader accepts, and the reader must accept what the writer wrote. */
static void fuzz_st_round_trip(const lpl_safetensors *st)
{
    int64_t n = lpl_safetensors_n_tensors(st);
    const lpl_st_tensor *ts = lpl_safetensors_tensors(st);
    if (n > 64)
        return;
    const char *names[64];
    lpl_dtype dtypes[64];
    int n_dims[64];
    const int64_t *shapes[64];
    const void *data[64];
    for (int64_t i = 0; i < n; i++) {
        names[i] = ts[i].name;
        dtypes[i] = ts[i].dtype;
        n_dims[i] = ts[i].n_dims;
        shapes[i] = ts[i].shape;
        data[i] = ts[i].data;
    }
    void *out = NULL;
    size_t out_n = 0;
    lpl_error e;
    lpl_error_clear(&e);
    if (lpl_safetensors_write_memory((int)n, names, dtypes, n_dims, shapes, data, NULL, &out, &out_n,
                                     &e) != LPL_OK)
        return; /* e.g. a name the writer will not write; not a crash */
    lpl_safetensors *back = lpl_safetensors_open_memory(out, out_n, 0, &e);
    FUZZ_ASSERT(back != NULL, "re-reading a written file failed: %s", e.msg);
    FUZZ_ASSERT(lpl_safetensors_n_tensors(back) == n, "round trip changed the tensor count");
    for (int64_t i = 0; i < n; i++) {
        const lpl_st_tensor *b = lpl_safetensors_find(back, ts[i].name);
        FUZZ_ASSERT(b && b->nbytes == ts[i].nbytes && b->dtype == ts[i].dtype &&
                        (b->nbytes == 0 || memcmp(b->data, ts[i].data, b->nbytes) == 0),
                    "round trip changed tensor '%s'", ts[i].name);
    }
    lpl_safetensors_close(back);
    free(out);
}

int lpl_fuzz_safetensors(const uint8_t *data, size_t size, lpl_error *err)
{
    lpl_safetensors *st = lpl_safetensors_open_memory(data, size, 0, err);
    if (!st)
        return 0;
    int64_t n = lpl_safetensors_n_tensors(st);
    const lpl_st_tensor *ts = lpl_safetensors_tensors(st);
    FUZZ_ASSERT(n >= 0 && (n == 0 || ts != NULL), "bad tensor list (%lld)", (long long)n);
    for (int64_t i = 0; i < n; i++)
        fuzz_st_check_tensor(st, &ts[i], size);
    const char *fmt = lpl_safetensors_metadata(st, "format");
    if (fmt)
        (void)strlen(fmt);
    fuzz_st_round_trip(st);
    lpl_safetensors_close(st);
    return 1;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_safetensors(data, size, &err);
    return 0;
}
#endif
