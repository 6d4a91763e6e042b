/* GGUF reader and writer: round trips of every value type and tensor type, files
 * crafted byte by byte for the types the writer does not emit, and corrupt files
 * (truncated, lengths past the end, bad offsets, unknown types) refused with a
 * message naming the problem. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lpl/io/gguf.h"
#include "lpl/core/kernels.h"

/* ---------------------------------------------------------------- byte builder */

typedef struct {
    uint8_t p[8192];
    size_t n;
} buf;

static void put(buf *b, const void *s, size_t n) { memcpy(b->p + b->n, s, n); b->n += n; }
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void put_header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}

static size_t find_bytes(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(p + i, s, k))
            return i;
    return (size_t)-1;
}

/* Opens bytes expecting failure; checks the message contains want. */
static void expect_fail(const void *p, size_t n, const char *want, const char *what)
{
    lpl_error err = {0};
    lpl_gguf *g = lpl_gguf_open_memory(p, n, 1, &err);
    CHECK(g == NULL, "%s: opened a bad file", what);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
    CHECK(err.code != LPL_OK, "%s: no error code", what);
    lpl_gguf_close(g);
}

/* ---------------------------------------------------------------- a reference file */

static float f32_data[3 * 5];
static uint16_t f16_data[2 * 4];
static float q_src[2 * 64];

/* A file with every writer value type and F32/F16/Q8_0/Q4_0 tensors, in memory. */
static void *make_file(size_t *size)
{
    lpl_error err = {0};
    lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
    const char *strs[] = {"a", "", "héllo", "\xc4\xa0the"};
    int32_t ints[] = {-1, 0, 7, 2147483647};
    float fl[] = {0.5f, -2.0f};
    CHECK(lpl_gguf_set_str(w, "general.architecture", "gpt2", &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_u32(w, "u32", 4000000000u, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_i32(w, "i32", -5, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_i32(w, "i32pos", 77, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_f32(w, "f32", 1.25f, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_bool(w, "flag", 1, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_str(w, "replaced", "first", &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_str(w, "replaced", "second", &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_arr_str(w, "strs", strs, 4, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_arr_i32(w, "ints", ints, 4, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_arr_f32(w, "floats", fl, 2, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_set_arr_str(w, "empty", NULL, 0, &err) == LPL_OK, "%s", err.msg);
    for (int i = 0; i < 15; i++)
        f32_data[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < 8; i++)
        f16_data[i] = lpl_fp32_to_fp16((float)i / 8);
    for (int i = 0; i < 128; i++)
        q_src[i] = (float)((i * 37) % 23) - 11.0f;
    lpl_block_q8_0 q8[4];
    lpl_block_q4_0 q4[4];
    lpl_quantize_q8_0(q_src, q8, 128);
    lpl_quantize_q4_0(q_src, q4, 128);
    int64_t ne_f32[2] = {5, 3}, ne_f16[2] = {4, 2}, ne_q[2] = {64, 2}, ne_1[1] = {15};
    CHECK(lpl_gguf_add_tensor(w, "t.f32", LPL_F32, 2, ne_f32, f32_data, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_add_tensor(w, "t.f16", LPL_F16, 2, ne_f16, f16_data, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_add_tensor(w, "t.q8", LPL_Q8_0, 2, ne_q, q8, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_add_tensor(w, "t.q4", LPL_Q4_0, 2, ne_q, q4, &err) == LPL_OK, "%s", err.msg);
    CHECK(lpl_gguf_add_tensor(w, "t.vec", LPL_F32, 1, ne_1, f32_data, &err) == LPL_OK, "%s", err.msg);
    /* writer refusals */
    CHECK(lpl_gguf_add_tensor(w, "t.vec", LPL_F32, 1, ne_1, f32_data, &err) == LPL_ERR_INVALID &&
          strstr(err.msg, "duplicate tensor 't.vec'"), "duplicate: %s", err.msg);
    int64_t ne_bad[2] = {33, 1};
    CHECK(lpl_gguf_add_tensor(w, "t.bad", LPL_Q8_0, 2, ne_bad, q8, &err) == LPL_ERR_INVALID, "q8 with 33 cols");
    CHECK(lpl_gguf_set_str(w, "bad", "\xff\xfe", &err) == LPL_ERR_INVALID && strstr(err.msg, "UTF-8"),
          "non-UTF-8 value: %s", err.msg);
    void *out = NULL;
    CHECK(lpl_gguf_write_memory(w, &out, size, &err) == LPL_OK, "%s", err.msg);
    lpl_gguf_writer_free(w);
    return out;
}

static void test_round_trip(const void *p, size_t size)
{
    lpl_error err = {0};
    lpl_gguf *g = lpl_gguf_open_memory(p, size, 0, &err);
    CHECK(g != NULL, "open: %s", err.msg);
    if (!g)
        return;
    uint32_t u;
    float f;
    const char *s;
    size_t len;
    CHECK(lpl_gguf_version(g) == 3, "version");
    CHECK(lpl_gguf_file_size(g) == size, "file size");
    CHECK(lpl_gguf_n_kv(g) == 11, "n_kv %lld", (long long)lpl_gguf_n_kv(g));
    CHECK(lpl_gguf_get_u32(g, "u32", &u, &err) == LPL_OK && u == 4000000000u, "u32");
    CHECK(lpl_gguf_get_u32(g, "i32pos", &u, &err) == LPL_OK && u == 77, "i32 read as u32");
    CHECK(lpl_gguf_get_u32(g, "i32", &u, &err) == LPL_ERR_FORMAT && strstr(err.msg, "does not fit"),
          "negative as u32: %s", err.msg);
    CHECK(lpl_gguf_get_u32(g, "flag", &u, &err) == LPL_OK && u == 1, "bool");
    CHECK(lpl_gguf_get_f32(g, "f32", &f, &err) == LPL_OK && f == 1.25f, "f32");
    CHECK(lpl_gguf_get_f32(g, "u32", &f, &err) == LPL_ERR_FORMAT && strstr(err.msg, "'u32' is uint32"),
          "type mismatch: %s", err.msg);
    CHECK(lpl_gguf_get_u32(g, "nope", &u, &err) == LPL_ERR_FORMAT && strstr(err.msg, "'nope' is missing"),
          "missing: %s", err.msg);
    CHECK(lpl_gguf_get_str(g, "replaced", &s, &len, &err) == LPL_OK && !strcmp(s, "second") && len == 6,
          "replaced key keeps the last value");
    CHECK(lpl_gguf_kv_type(g, lpl_gguf_find_key(g, "strs")) == LPL_GGUF_ARRAY, "array type");
    lpl_gguf_type et;
    uint64_t n;
    const void *raw;
    CHECK(lpl_gguf_get_arr(g, "strs", &et, &n, &raw, &err) == LPL_OK && et == LPL_GGUF_STRING && n == 4 && !raw,
          "string array");
    CHECK(lpl_gguf_get_arr_str(g, "strs", 2, &s, &len, &err) == LPL_OK && !strcmp(s, "héllo") && len == 6,
          "string element");
    CHECK(lpl_gguf_get_arr_str(g, "strs", 1, &s, &len, &err) == LPL_OK && !strcmp(s, "") && len == 0, "empty el");
    CHECK(lpl_gguf_get_arr_str(g, "strs", 4, &s, &len, &err) == LPL_ERR_INVALID, "index past end");
    CHECK(lpl_gguf_get_arr(g, "ints", &et, &n, &raw, &err) == LPL_OK && et == LPL_GGUF_INT32 && n == 4, "ints");
    int32_t iv[4];
    memcpy(iv, raw, sizeof iv);
    CHECK(iv[0] == -1 && iv[3] == 2147483647, "int values");
    CHECK(lpl_gguf_get_arr(g, "empty", &et, &n, &raw, &err) == LPL_OK && n == 0, "empty array");
    CHECK(lpl_gguf_n_tensors(g) == 5, "n_tensors");
    const lpl_gguf_tensor *t = lpl_gguf_find_tensor(g, "t.f32");
    CHECK(t && t->type == LPL_F32 && t->n_dims == 2 && t->ne[0] == 5 && t->ne[1] == 3 && t->nbytes == 60 &&
          !memcmp(t->data, f32_data, 60), "f32 tensor");
    t = lpl_gguf_find_tensor(g, "t.f16");
    CHECK(t && t->type == LPL_F16 && t->nbytes == 16 && !memcmp(t->data, f16_data, 16), "f16 tensor");
    t = lpl_gguf_find_tensor(g, "t.q8");
    CHECK(t && t->type == LPL_Q8_0 && t->nbytes == 4 * 34, "q8 tensor");
    if (t) {
        float row[64];
        lpl_dequantize_row(LPL_Q8_0, t->data, row, 64);
        CHECK_CLOSE(row[5], q_src[5], 0.05, 0, "q8 value");
    }
    t = lpl_gguf_find_tensor(g, "t.q4");
    CHECK(t && t->type == LPL_Q4_0 && t->nbytes == 4 * 18, "q4 tensor");
    for (int64_t i = 0; i < lpl_gguf_n_tensors(g); i++) {
        t = lpl_gguf_tensor_at(g, i);
        CHECK(t->offset % 32 == 0, "tensor %s offset %llu not aligned", t->name, (unsigned long long)t->offset);
        CHECK(((const uint8_t *)t->data - (const uint8_t *)p) % 32 == 0, "data section alignment");
    }
    CHECK(lpl_gguf_find_tensor(g, "none") == NULL, "missing tensor");
    lpl_gguf_close(g);
}

static void test_file_io(const void *p, size_t size)
{
    char path[] = "/tmp/lpl_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    lpl_error err = {0};
    lpl_gguf_writer *w = lpl_gguf_writer_new(&err);
    int64_t ne[1] = {15};
    lpl_gguf_set_str(w, "general.architecture", "gpt2", &err);
    lpl_gguf_add_tensor(w, "v", LPL_F32, 1, ne, f32_data, &err);
    CHECK(lpl_gguf_write_file(w, path, &err) == LPL_OK, "write_file: %s", err.msg);
    lpl_gguf_writer_free(w);
    lpl_gguf *g = lpl_gguf_open(path, &err);
    CHECK(g && lpl_gguf_n_tensors(g) == 1 && !memcmp(lpl_gguf_tensor_at(g, 0)->data, f32_data, 60), "reopen: %s",
          err.msg);
    lpl_gguf_close(g);
    /* a truncated file on disk */
    CHECK(truncate(path, 40) == 0, "truncate");
    g = lpl_gguf_open(path, &err);
    CHECK(!g && strstr(err.msg, path) && strstr(err.msg, "truncated"), "truncated file: %s", err.msg);
    unlink(path);
    g = lpl_gguf_open(path, &err);
    CHECK(!g && err.code == LPL_ERR_IO && strstr(err.msg, "cannot open"), "missing file: %s", err.msg);
    (void)p;
    (void)size;
}

/* Every scalar type, a nested array, alignment key: crafted by hand. */
static void test_crafted_types(void)
{
    buf b = {.n = 0};
    put_header(&b, 3, 0, 9);
    put_str(&b, "u8"); put_u32(&b, LPL_GGUF_UINT8); put(&b, "\xfa", 1);
    put_str(&b, "i8"); put_u32(&b, LPL_GGUF_INT8); put(&b, "\xfa", 1);
    put_str(&b, "u16"); put_u32(&b, LPL_GGUF_UINT16); put(&b, "\x34\x12", 2);
    put_str(&b, "i16"); put_u32(&b, LPL_GGUF_INT16); put(&b, "\xff\xff", 2);
    put_str(&b, "u64"); put_u32(&b, LPL_GGUF_UINT64); put_u64(&b, 5000000000ull);
    put_str(&b, "i64"); put_u32(&b, LPL_GGUF_INT64); put_u64(&b, 42);
    double d = 0.125;
    put_str(&b, "f64"); put_u32(&b, LPL_GGUF_FLOAT64); put(&b, &d, 8);
    /* array of 2 arrays of uint16 */
    put_str(&b, "nested"); put_u32(&b, LPL_GGUF_ARRAY); put_u32(&b, LPL_GGUF_ARRAY); put_u64(&b, 2);
    put_u32(&b, LPL_GGUF_UINT16); put_u64(&b, 1); put(&b, "\x01\x00", 2);
    put_u32(&b, LPL_GGUF_UINT16); put_u64(&b, 0);
    put_str(&b, "general.alignment"); put_u32(&b, LPL_GGUF_UINT32); put_u32(&b, 64);
    lpl_error err = {0};
    lpl_gguf *g = lpl_gguf_open_memory(b.p, b.n, 0, &err);
    CHECK(g != NULL, "crafted: %s", err.msg);
    if (!g)
        return;
    uint32_t u;
    float f;
    CHECK(lpl_gguf_get_u32(g, "u8", &u, &err) == LPL_OK && u == 250, "u8");
    CHECK(lpl_gguf_get_u32(g, "i8", &u, &err) == LPL_ERR_FORMAT, "i8 -6 does not fit u32");
    CHECK(lpl_gguf_get_u32(g, "u16", &u, &err) == LPL_OK && u == 0x1234, "u16");
    CHECK(lpl_gguf_get_u32(g, "i16", &u, &err) == LPL_ERR_FORMAT, "i16 -1");
    CHECK(lpl_gguf_get_u32(g, "u64", &u, &err) == LPL_ERR_FORMAT && strstr(err.msg, "does not fit"), "u64 big");
    CHECK(lpl_gguf_get_u32(g, "i64", &u, &err) == LPL_OK && u == 42, "i64");
    CHECK(lpl_gguf_get_f32(g, "f64", &f, &err) == LPL_OK && f == 0.125f, "f64");
    lpl_gguf_type et;
    uint64_t n;
    const void *raw;
    CHECK(lpl_gguf_get_arr(g, "nested", &et, &n, &raw, &err) == LPL_OK && et == LPL_GGUF_ARRAY && n == 2 && !raw,
          "nested array");
    lpl_gguf_close(g);

    /* alignment other than 32: the data section and offsets follow it */
    buf c = {.n = 0};
    put_header(&c, 3, 1, 1);
    put_str(&c, "general.alignment"); put_u32(&c, LPL_GGUF_UINT32); put_u32(&c, 64);
    put_str(&c, "t"); put_u32(&c, 1); put_u64(&c, 4); put_u32(&c, LPL_F32); put_u64(&c, 0);
    size_t start = (c.n + 63) / 64 * 64;
    memset(c.p + c.n, 0, start - c.n);
    c.n = start;
    float four[4] = {1, 2, 3, 4};
    put(&c, four, 16);
    g = lpl_gguf_open_memory(c.p, c.n, 0, &err);
    CHECK(g && lpl_gguf_tensor_at(g, 0)->data == c.p + start && !memcmp(lpl_gguf_tensor_at(g, 0)->data, four, 16), "alignment 64: %s", err.msg);
    lpl_gguf_close(g);
}

/* ---------------------------------------------------------------- corrupt files */

/* Every prefix shorter than the end of the last tensor's data (the final padding is
 * optional) must be refused. */
static void test_truncations(const uint8_t *p, size_t size)
{
    lpl_error err = {0};
    lpl_gguf *full = lpl_gguf_open_memory(p, size, 0, &err);
    const lpl_gguf_tensor *last = full ? lpl_gguf_find_tensor(full, "t.vec") : NULL;
    CHECK(last != NULL, "t.vec");
    if (!last)
        return;
    size = (size_t)((const uint8_t *)last->data - p) + last->nbytes;
    lpl_gguf_close(full);
    int opened = 0, named = 0;
    for (size_t n = 0; n < size; n++) {
        lpl_gguf *g = lpl_gguf_open_memory(p, n, 0, &err);
        opened += g != NULL;
        named += !g && (strstr(err.msg, "truncated") || strstr(err.msg, "past the end") ||
                        strstr(err.msg, "out of range") || strstr(err.msg, "more than") ||
                        strstr(err.msg, "not a GGUF"));
        lpl_gguf_close(g);
    }
    CHECK(opened == 0, "%d truncated prefixes opened", opened);
    CHECK(named == (int)size, "only %d of %zu truncations named the problem", named, size);
}

static void test_corruptions(const uint8_t *p, size_t size)
{
    uint8_t *c = malloc(size);
    size_t at;
#define RESET() memcpy(c, p, size)
    RESET();
    c[0] = 'X';
    expect_fail(c, size, "not a GGUF file", "magic");

    RESET();
    c[4] = 1;
    expect_fail(c, size, "version 1 is not supported", "version");

    RESET();
    memset(c + 16, 0xff, 8); /* n_kv */
    expect_fail(c, size, "more than a", "huge kv count");

    RESET();
    at = find_bytes(c, size, "general.architecture") - 8; /* key length */
    memset(c + at, 0x7f, 8);
    expect_fail(c, size, "past the end of the file", "key length past end");

    RESET();
    at = find_bytes(c, size, "u32") + 3; /* value type */
    c[at] = 99;
    expect_fail(c, size, "unknown value type 99", "unknown kv type");

    RESET();
    at = find_bytes(c, size, "ints") + 4 + 4 + 4; /* type ARRAY, elem type, then count */
    memset(c + at, 0x7f, 8);
    expect_fail(c, size, "runs past the end", "array count past end");

    RESET();
    at = find_bytes(c, size, "strs") + 4 + 4 + 4 + 8; /* first element's length */
    memset(c + at, 0x7f, 7);
    expect_fail(c, size, "past the end of the file", "array string length");

    RESET();
    at = find_bytes(c, size, "f32\x06") ; /* key "f32" then type FLOAT32 */
    c[at + 1] = 0xff; /* "f\xff2": invalid UTF-8 key */
    expect_fail(c, size, "not valid UTF-8", "non-UTF-8 key");

    RESET();
    at = find_bytes(c, size, "t.f16") + 5; /* n_dims */
    c[at] = 5;
    expect_fail(c, size, "has 5 dimensions", "n_dims");

    RESET();
    at = find_bytes(c, size, "t.f16") + 5 + 4 + 16; /* type */
    c[at] = 99;
    expect_fail(c, size, "'t.f16' has ggml type 99", "tensor type");

    RESET();
    at = find_bytes(c, size, "t.q8") + 4 + 4; /* ne[0] = 64 -> 48 */
    c[at] = 48;
    expect_fail(c, size, "not a multiple of 32", "q8 row length");

    RESET();
    at = find_bytes(c, size, "t.vec") + 5 + 4 + 8 + 4; /* offset */
    memset(c + at, 0, 8);
    c[at + 4] = 1; /* 2^32 */
    expect_fail(c, size, "out of range", "offset out of range");

    RESET();
    at = find_bytes(c, size, "t.vec") + 5 + 4 + 8 + 4;
    c[at] += 4;
    expect_fail(c, size, "not a multiple of the alignment", "misaligned offset");

    RESET();
    at = find_bytes(c, size, "t.vec") + 5 + 4 + 8 + 4;
    memset(c + at, 0, 8); /* same offset as t.f32 */
    expect_fail(c, size, "overlap", "overlapping tensors");

    RESET();
    at = find_bytes(c, size, "t.q4");
    c[at + 3] = '8'; /* "t.q8" twice */
    expect_fail(c, size, "duplicate tensor 't.q8'", "duplicate tensor");

    RESET();
    at = find_bytes(c, size, "i32pos");
    memcpy(c + at, "i32\0", 4); /* NUL inside a key makes it "i32" -> duplicate of i32 */
    expect_fail(c, size, "duplicate key 'i32'", "duplicate key");

    RESET();
    at = find_bytes(c, size, "t.f32") + 5 + 4; /* ne[0] huge */
    memset(c + at, 0xff, 7);
    expect_fail(c, size, "dimension 0", "huge dimension");
#undef RESET
    free(c);

    /* general.alignment of the wrong type or not a power of two */
    buf b = {.n = 0};
    put_header(&b, 3, 0, 1);
    put_str(&b, "general.alignment"); put_u32(&b, LPL_GGUF_UINT32); put_u32(&b, 48);
    expect_fail(b.p, b.n, "not a power of two", "alignment 48");
    buf b2 = {.n = 0};
    put_header(&b2, 3, 0, 1);
    put_str(&b2, "general.alignment"); put_u32(&b2, LPL_GGUF_FLOAT32); put_u32(&b2, 0);
    expect_fail(b2.p, b2.n, "general.alignment must be uint32", "alignment type");
    /* nested arrays beyond the depth limit */
    buf b3 = {.n = 0};
    put_header(&b3, 3, 0, 1);
    put_str(&b3, "deep"); put_u32(&b3, LPL_GGUF_ARRAY);
    for (int i = 0; i < 8; i++) {
        put_u32(&b3, LPL_GGUF_ARRAY);
        put_u64(&b3, 1);
    }
    put_u32(&b3, LPL_GGUF_UINT8); put_u64(&b3, 0);
    expect_fail(b3.p, b3.n, "nested deeper", "deep nesting");
}

int main(void)
{
    size_t size = 0;
    uint8_t *p = make_file(&size);
    CHECK(p != NULL && size > 0, "writer produced nothing");
    if (p) {
        test_round_trip(p, size);
        test_truncations(p, size);
        test_corruptions(p, size);
    }
    test_file_io(p, size);
    test_crafted_types();
    free(p);
    return check_report("test_gguf");
}
