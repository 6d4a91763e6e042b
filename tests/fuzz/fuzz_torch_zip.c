/* Fuzz target: PyTorch checkpoints (zip container + restricted unpickler) over
 * memory, then every tensor's bytes.
 *
 * The reader checks data.pkl's CRC before unpickling, so mutated archives rarely
 * reach the unpickler. The first byte therefore picks the mode:
 *   even: the rest is a whole archive, read as is;
 *   odd:  the rest is data.pkl; the harness wraps it in a valid archive (correct
 *         CRC) holding storages archive/data/0..3 of 256 bytes each, so the fuzzer
 *         works on the unpickler directly. */
#include "fuzz_common.h"
#include "lpl/io/torch_zip.h"
#include "../../src/io/zip.h" /* lpl_zip_crc32 */

static unsigned fuzz_tz_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    return n ? (unsigned)b[0] + b[n - 1] : 0;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} fuzz_tz_buf;

static void fuzz_tz_put(fuzz_tz_buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, cap);
        FUZZ_ASSERT(b->p != NULL, "out of memory");
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void fuzz_tz_u16(fuzz_tz_buf *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    fuzz_tz_put(b, x, 2);
}

static void fuzz_tz_u32(fuzz_tz_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    fuzz_tz_put(b, x, 4);
}

/* A stored zip of the given entries, data aligned to 64 bytes as torch.save does. */
static fuzz_tz_buf fuzz_tz_zip(const char *const *names, const uint8_t *const *data, const size_t *sizes, int n)
{
    fuzz_tz_buf z = {0}, cd = {0};
    static const uint8_t zeros[64];
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        size_t pad = (64 - (z.n + 30 + nl + 4) % 64) % 64;
        uint32_t crc = lpl_zip_crc32(data[i], sizes[i]), off = (uint32_t)z.n;
        fuzz_tz_u32(&z, 0x04034b50);
        fuzz_tz_u16(&z, 20), fuzz_tz_u16(&z, 0), fuzz_tz_u16(&z, 0), fuzz_tz_u16(&z, 0), fuzz_tz_u16(&z, 0);
        fuzz_tz_u32(&z, crc), fuzz_tz_u32(&z, (uint32_t)sizes[i]), fuzz_tz_u32(&z, (uint32_t)sizes[i]);
        fuzz_tz_u16(&z, (unsigned)nl), fuzz_tz_u16(&z, (unsigned)(4 + pad));
        fuzz_tz_put(&z, names[i], nl);
        fuzz_tz_u16(&z, 0xFFFF), fuzz_tz_u16(&z, (unsigned)pad); /* padding extra field */
        fuzz_tz_put(&z, zeros, pad);
        fuzz_tz_put(&z, data[i], sizes[i]);
        fuzz_tz_u32(&cd, 0x02014b50);
        fuzz_tz_u16(&cd, 20), fuzz_tz_u16(&cd, 20), fuzz_tz_u16(&cd, 0), fuzz_tz_u16(&cd, 0);
        fuzz_tz_u16(&cd, 0), fuzz_tz_u16(&cd, 0);
        fuzz_tz_u32(&cd, crc), fuzz_tz_u32(&cd, (uint32_t)sizes[i]), fuzz_tz_u32(&cd, (uint32_t)sizes[i]);
        fuzz_tz_u16(&cd, (unsigned)nl), fuzz_tz_u16(&cd, 0), fuzz_tz_u16(&cd, 0), fuzz_tz_u16(&cd, 0);
        fuzz_tz_u16(&cd, 0), fuzz_tz_u32(&cd, 0), fuzz_tz_u32(&cd, off);
        fuzz_tz_put(&cd, names[i], nl);
    }
    uint32_t cd_off = (uint32_t)z.n;
    fuzz_tz_put(&z, cd.p, cd.n);
    fuzz_tz_u32(&z, 0x06054b50);
    fuzz_tz_u16(&z, 0), fuzz_tz_u16(&z, 0), fuzz_tz_u16(&z, (unsigned)n), fuzz_tz_u16(&z, (unsigned)n);
    fuzz_tz_u32(&z, (uint32_t)cd.n), fuzz_tz_u32(&z, cd_off), fuzz_tz_u16(&z, 0);
    free(cd.p);
    return z;
}

static int fuzz_tz_read(const uint8_t *data, size_t size, lpl_error *err)
{
    lpl_torch_ckpt *c = lpl_torch_open_memory(data, size, 0, err);
    if (!c) {
        FUZZ_ASSERT(err->msg[0] != '\0', "refused without a message");
        return 0;
    }
    int64_t n = lpl_torch_n_tensors(c);
    const lpl_st_tensor *ts = lpl_torch_tensors(c);
    FUZZ_ASSERT(n >= 0 && (n == 0 || ts != NULL), "bad tensor list (%lld)", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        const lpl_st_tensor *t = &ts[i];
        FUZZ_ASSERT(t->name != NULL, "tensor %lld without a name", (long long)i);
        FUZZ_ASSERT(lpl_torch_find(c, t->name) != NULL, "tensor '%s' not found by name", t->name);
        if (t->unsupported) {
            FUZZ_ASSERT(t->data == NULL, "unsupported tensor '%s' (%s) has data", t->name, t->unsupported);
            continue;
        }
        FUZZ_ASSERT(t->dtype == LPL_F32 || t->dtype == LPL_F16 || t->dtype == LPL_BF16,
                    "tensor '%s' accepted with dtype %d", t->name, (int)t->dtype);
        size_t es = t->dtype == LPL_F32 ? 4 : 2;
        int64_t numel = lpl_st_numel(t);
        FUZZ_ASSERT(numel >= 0 && (uint64_t)numel * es == t->nbytes,
                    "tensor '%s': %lld elements but %zu bytes", t->name, (long long)numel, t->nbytes);
        FUZZ_ASSERT(t->nbytes <= size, "tensor '%s' larger than the file", t->name);
        fuzz_tz_touch(t->data, t->nbytes);
        float buf[4];
        int64_t k = numel < 4 ? numel : 4;
        lpl_st_to_f32(t->dtype, t->data, buf, k);
    }
    lpl_torch_close(c);
    return 1;
}

int lpl_fuzz_torch_zip(const uint8_t *data, size_t size, lpl_error *err)
{
    if (size == 0)
        return 0;
    if (!(data[0] & 1)) {
        (void)lpl_torch_is_zip(data + 1, size - 1);
        return fuzz_tz_read(data + 1, size - 1, err);
    }
    static uint8_t storage[256];
    for (int i = 0; i < 256; i++)
        storage[i] = (uint8_t)(i * 37 + 11);
    const char *names[6] = {"archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1",
                            "archive/data/2", "archive/data/3"};
    const uint8_t *parts[6] = {data + 1, (const uint8_t *)"little", storage, storage, storage, storage};
    size_t sizes[6] = {size - 1, 6, 256, 256, 256, 256};
    fuzz_tz_buf z = fuzz_tz_zip(names, parts, sizes, 6);
    /* An exact-size copy, so reads past the archive's end are caught. */
    uint8_t *exact = malloc(z.n);
    FUZZ_ASSERT(exact != NULL, "out of memory");
    memcpy(exact, z.p, z.n);
    free(z.p);
    int ok = fuzz_tz_read(exact, z.n, err);
    free(exact);
    return ok;
}

#ifndef LPL_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lpl_error err;
    lpl_error_clear(&err);
    lpl_fuzz_torch_zip(data, size, &err);
    return 0;
}
#endif
