/* safetensors: writer/reader round trip (F32, F16, BF16, metadata, scalars), the
 * committed fixture, and corrupt headers refused with a message naming the problem. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lpl/core/kernels.h"
#include "lpl/io/safetensors.h"

/* A file from a header text and n data bytes (0..n-1). */
static uint8_t *make_raw(const char *header, size_t data_bytes, size_t *size)
{
    uint64_t hl = strlen(header);
    *size = 8 + hl + data_bytes;
    uint8_t *p = malloc(*size);
    memcpy(p, &hl, 8);
    memcpy(p + 8, header, hl);
    for (size_t i = 0; i < data_bytes; i++)
        p[8 + hl + i] = (uint8_t)i;
    return p;
}

static void expect_header_fail(const char *header, size_t data_bytes, const char *want)
{
    size_t size;
    uint8_t *p = make_raw(header, data_bytes, &size);
    lpl_error err = {0};
    lpl_safetensors *st = lpl_safetensors_open_memory(p, size, 0, &err);
    CHECK(st == NULL, "opened bad header %s", header);
    CHECK(strstr(err.msg, want) != NULL, "header %s: message '%s' lacks '%s'", header, err.msg, want);
    lpl_safetensors_close(st);
    free(p);
}

static void test_round_trip(void)
{
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    uint16_t h[4], bf[3];
    for (int i = 0; i < 4; i++)
        h[i] = lpl_fp32_to_fp16((float)i - 1.5f);
    bf[0] = 0x3f80; /* 1.0 */
    bf[1] = 0xc000; /* -2.0 */
    bf[2] = 0x4049; /* 3.140625 */
    float scalar = 42.0f;
    const char *names[] = {"a.weight", "h", "bf", "s"};
    lpl_dtype types[] = {LPL_F32, LPL_F16, LPL_BF16, LPL_F32};
    int nd[] = {2, 1, 1, 0};
    int64_t sa[] = {2, 3}, sh[] = {4}, sb[] = {3};
    const int64_t *shapes[] = {sa, sh, sb, NULL};
    const void *data[] = {a, h, bf, &scalar};
    const char *meta[] = {"format", "pt", "note", "héllo", NULL};
    void *out;
    size_t size;
    lpl_error err = {0};
    CHECK(lpl_safetensors_write_memory(4, names, types, nd, shapes, data, meta, &out, &size, &err) == LPL_OK,
          "write: %s", err.msg);
    uint64_t hl;
    memcpy(&hl, out, 8);
    CHECK(hl % 8 == 0, "header padded to 8 (%llu)", (unsigned long long)hl);
    lpl_safetensors *st = lpl_safetensors_open_memory(out, size, 1, &err);
    free(out);
    CHECK(st != NULL, "open: %s", err.msg);
    if (!st)
        return;
    CHECK(lpl_safetensors_n_tensors(st) == 4, "n");
    const lpl_st_tensor *t = lpl_safetensors_find(st, "a.weight");
    CHECK(t && t->dtype == LPL_F32 && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->nbytes == 24 &&
          !memcmp(t->data, a, 24) && lpl_st_numel(t) == 6, "f32 tensor");
    float f[4];
    t = lpl_safetensors_find(st, "h");
    CHECK(t && t->dtype == LPL_F16, "f16");
    if (t) {
        lpl_st_to_f32(t->dtype, t->data, f, 4);
        CHECK(f[0] == -1.5f && f[3] == 1.5f, "f16 values %g %g", f[0], f[3]);
    }
    t = lpl_safetensors_find(st, "bf");
    CHECK(t && t->dtype == LPL_BF16, "bf16");
    if (t) {
        lpl_st_to_f32(t->dtype, t->data, f, 3);
        CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 3.140625f, "bf16 values");
    }
    t = lpl_safetensors_find(st, "s");
    CHECK(t && t->n_dims == 0 && lpl_st_numel(t) == 1 && t->nbytes == 4, "scalar");
    CHECK(lpl_safetensors_metadata(st, "format") && !strcmp(lpl_safetensors_metadata(st, "format"), "pt"), "meta");
    CHECK(lpl_safetensors_metadata(st, "note") && !strcmp(lpl_safetensors_metadata(st, "note"), "héllo"), "meta2");
    CHECK(lpl_safetensors_metadata(st, "x") == NULL, "no meta");
    CHECK(lpl_safetensors_find(st, "zzz") == NULL, "missing");
    lpl_safetensors_close(st);

    /* through a file, via temp + rename */
    char path[] = "/tmp/lpl_test_st_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(lpl_safetensors_write_file(path, 4, names, types, nd, shapes, data, NULL, &err) == LPL_OK, "%s", err.msg);
    st = lpl_safetensors_open(path, &err);
    CHECK(st && lpl_safetensors_n_tensors(st) == 4 && lpl_safetensors_metadata(st, "format") == NULL,
          "file round trip: %s", err.msg);
    lpl_safetensors_close(st);
    CHECK(truncate(path, 100) == 0, "truncate");
    st = lpl_safetensors_open(path, &err);
    CHECK(!st && strstr(err.msg, path) && strstr(err.msg, "runs past the end"), "truncated file: %s", err.msg);
    unlink(path);

    /* writer refuses a dtype it cannot write */
    lpl_dtype badt[] = {LPL_Q8_0};
    CHECK(lpl_safetensors_write_memory(1, names, badt, nd, shapes, data, NULL, &out, &size, &err) == LPL_ERR_INVALID,
          "q8 in safetensors");
}

static void test_fixture(void)
{
    lpl_error err = {0};
    lpl_safetensors *st = lpl_safetensors_open("tests/fixtures/tiny-gpt2/model.safetensors", &err);
    CHECK(st != NULL, "fixture: %s", err.msg);
    if (!st)
        return;
    CHECK(lpl_safetensors_n_tensors(st) == 30, "fixture has %lld tensors", (long long)lpl_safetensors_n_tensors(st));
    const lpl_st_tensor *t = lpl_safetensors_find(st, "wte.weight");
    CHECK(t && t->dtype == LPL_F32 && t->n_dims == 2 && t->shape[0] == 512 && t->shape[1] == 64, "wte");
    t = lpl_safetensors_find(st, "h.1.attn.c_attn.weight");
    CHECK(t && t->shape[0] == 64 && t->shape[1] == 192, "Conv1D [in, out]");
    t = lpl_safetensors_find(st, "h.0.attn.bias");
    CHECK(t && t->n_dims == 4 && t->shape[3] == 64, "attn.bias buffer");
    CHECK(!strcmp(lpl_safetensors_metadata(st, "format"), "pt"), "metadata");
    lpl_safetensors_close(st);
}

static void test_corrupt(void)
{
    /* truncated and header-length problems */
    lpl_error err = {0};
    uint8_t tiny[5] = {1, 0, 0, 0, 0};
    lpl_safetensors *st = lpl_safetensors_open_memory(tiny, 5, 0, &err);
    CHECK(!st && strstr(err.msg, "truncated"), "5 bytes: %s", err.msg);
    uint8_t big[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    st = lpl_safetensors_open_memory(big, 16, 0, &err);
    CHECK(!st && strstr(err.msg, "header length 4294967295 runs past the end"), "header past end: %s", err.msg);

    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t size;
    uint8_t *p = make_raw(ok, 8, &size);
    st = lpl_safetensors_open_memory(p, size, 0, &err);
    CHECK(st != NULL, "minimal file: %s", err.msg);
    lpl_safetensors_close(st);
    int opened = 0;
    for (size_t n = 0; n < size; n++) {
        st = lpl_safetensors_open_memory(p, n, 0, &err);
        opened += st != NULL;
        lpl_safetensors_close(st);
    }
    CHECK(opened == 0, "%d truncated prefixes opened", opened);
    free(p);

    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "not valid JSON");
    expect_header_fail("[1,2]", 0, "not a JSON object");
    expect_header_fail("{\"a\xff\":{}}", 0, "not valid UTF-8");
    expect_header_fail("{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                       "tensor 'a' has unknown dtype 'F99'");
    expect_header_fail("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                       "dtype I64 (only F32, F16 and BF16");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8,
                       "[0, 16] are out of range");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,4]}}", 8, "out of range");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
                       "spans 8 bytes but F32 x shape needs 12");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                       16, "overlap");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                       16, "duplicate tensor 'a'");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "bad shape");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "bad shape");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets must be");
    expect_header_fail("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "no dtype");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                       "at most 8");
    expect_header_fail("{\"__metadata__\":{\"k\":1}}", 0, "value of 'k' is not a string");
    expect_header_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}",
                       8, "impossibly large");
}

int main(void)
{
    test_round_trip();
    test_fixture();
    test_corrupt();
    return check_report("test_safetensors");
}
