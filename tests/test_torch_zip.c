/* PyTorch zip checkpoints: the committed fixtures (fp32 and fp16, DialoGPT-style),
 * archives and pickles built here byte by byte (a valid state dict, then every kind
 * of hostile or broken one: forbidden globals, opcodes, compression, CRC, storages
 * out of range, non-contiguous tensors, truncation), each refused with its reason; the
 * fp16 fixture rewritten with zip64 records reads the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lpl/core/kernels.h"
#include "lpl/io/safetensors.h"
#include "lpl/io/torch_zip.h"

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put8(bytes *b, uint8_t v) { put(b, &v, 1); }
static void put16(bytes *b, uint16_t v) { put(b, &v, 2); }
static void put32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void puts_(bytes *b, const char *s) { put(b, s, strlen(s)); }

/* ---------------------------------------------------------------- pickles */

static void p_global(bytes *b, const char *mod, const char *name)
{
    put8(b, 'c');
    puts_(b, mod);
    put8(b, '\n');
    puts_(b, name);
    put8(b, '\n');
}
static void p_str(bytes *b, const char *s)
{
    put8(b, 'X');
    put32(b, (uint32_t)strlen(s));
    puts_(b, s);
}
static void p_int(bytes *b, int32_t v)
{
    put8(b, 'J');
    put32(b, (uint32_t)v);
}

typedef struct {
    const char *storage_type; /* "FloatStorage" */
    const char *key;          /* storage key "0" */
    int numel;                /* storage size in the persistent id */
    int offset;
    int size0, size1, stride0, stride1;
    int stop;                 /* end with STOP */
} tensor_spec;

static const tensor_spec good = {"FloatStorage", "0", 6, 0, 2, 3, 3, 1, 1};

/* OrderedDict([("w", _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()))]) */
static void p_state_dict(bytes *b, const tensor_spec *s)
{
    put(b, "\x80\x02", 2);
    p_global(b, "collections", "OrderedDict");
    put(b, ")R(", 3);
    p_str(b, "w");
    p_global(b, "torch._utils", "_rebuild_tensor_v2");
    put(b, "((", 2);
    p_str(b, "storage");
    p_global(b, "torch", s->storage_type);
    p_str(b, s->key);
    p_str(b, "cpu");
    p_int(b, s->numel);
    put(b, "tQ", 2);
    p_int(b, s->offset);
    put8(b, '(');
    p_int(b, s->size0);
    p_int(b, s->size1);
    put(b, "t(", 2);
    p_int(b, s->stride0);
    p_int(b, s->stride1);
    put(b, "t\x89", 2);
    p_global(b, "collections", "OrderedDict");
    put(b, ")RtRu", 5);
    if (s->stop)
        put8(b, '.');
}

/* ---------------------------------------------------------------- zip */

static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

typedef struct {
    const char *name;
    const uint8_t *data;
    size_t size;
    uint16_t method;
    int bad_crc;
} zentry;

static void zip_build(bytes *z, const zentry *e, int n)
{
    uint32_t offs[8];
    for (int i = 0; i < n; i++) {
        offs[i] = (uint32_t)z->n;
        uint32_t crc = crc32_ref(e[i].data, e[i].size) ^ (e[i].bad_crc ? 1u : 0u);
        put32(z, 0x04034b50); put16(z, 20); put16(z, 0); put16(z, e[i].method); put16(z, 0); put16(z, 0);
        put32(z, crc); put32(z, (uint32_t)e[i].size); put32(z, (uint32_t)e[i].size);
        put16(z, (uint16_t)strlen(e[i].name)); put16(z, 0);
        puts_(z, e[i].name);
        put(z, e[i].data, e[i].size);
    }
    uint32_t cd = (uint32_t)z->n;
    for (int i = 0; i < n; i++) {
        uint32_t crc = crc32_ref(e[i].data, e[i].size) ^ (e[i].bad_crc ? 1u : 0u);
        put32(z, 0x02014b50); put16(z, 20); put16(z, 20); put16(z, 0); put16(z, e[i].method);
        put16(z, 0); put16(z, 0); put32(z, crc); put32(z, (uint32_t)e[i].size); put32(z, (uint32_t)e[i].size);
        put16(z, (uint16_t)strlen(e[i].name)); put16(z, 0); put16(z, 0); put16(z, 0); put16(z, 0);
        put32(z, 0); put32(z, offs[i]);
        puts_(z, e[i].name);
    }
    uint32_t cd_size = (uint32_t)z->n - cd;
    put32(z, 0x06054b50); put16(z, 0); put16(z, 0); put16(z, (uint16_t)n); put16(z, (uint16_t)n);
    put32(z, cd_size); put32(z, cd); put16(z, 0);
}

static const float six[6] = {1, 2, 3, 4, 5, 6};

/* An archive with the given pickle and one 6-float storage "0"; method/crc of data.pkl. */
static void make_ckpt(bytes *z, const bytes *pkl, uint16_t method, int bad_crc)
{
    zentry e[3] = {
        {"archive/data.pkl", pkl->p, pkl->n, method, bad_crc},
        {"archive/data/0", (const uint8_t *)six, sizeof six, 0, 0},
        {"archive/version", (const uint8_t *)"3\n", 2, 0, 0},
    };
    zip_build(z, e, 3);
}

static void expect_fail_bytes(const bytes *z, const char *want, const char *what)
{
    lpl_error err = {0};
    lpl_torch_ckpt *c = lpl_torch_open_memory(z->p, z->n, 0, &err);
    CHECK(c == NULL, "%s: opened", what);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
    lpl_torch_close(c);
}

static void expect_fail_spec(const tensor_spec *s, const char *want, const char *what)
{
    bytes pk = {0}, z = {0};
    p_state_dict(&pk, s);
    make_ckpt(&z, &pk, 0, 0);
    expect_fail_bytes(&z, want, what);
    free(pk.p);
    free(z.p);
}

/* A pickle naming a global, then calling it. */
static void expect_forbidden(const char *mod, const char *name, int stack_global)
{
    bytes pk = {0}, z = {0};
    put(&pk, "\x80\x02", 2);
    if (stack_global) {
        put8(&pk, 0x8c); put8(&pk, (uint8_t)strlen(mod)); puts_(&pk, mod);
        put8(&pk, 0x8c); put8(&pk, (uint8_t)strlen(name)); puts_(&pk, name);
        put8(&pk, 0x93);
    } else {
        p_global(&pk, mod, name);
    }
    p_str(&pk, "echo pwned");
    put(&pk, "\x85R.", 3);
    make_ckpt(&z, &pk, 0, 0);
    char want[128];
    snprintf(want, sizeof want, "global '%s.%s'", mod, name);
    expect_fail_bytes(&z, want, want);
    free(pk.p);
    free(z.p);
}

static void test_valid(void)
{
    bytes pk = {0}, z = {0};
    p_state_dict(&pk, &good);
    make_ckpt(&z, &pk, 0, 0);
    lpl_error err = {0};
    lpl_torch_ckpt *c = lpl_torch_open_memory(z.p, z.n, 1, &err);
    CHECK(c != NULL, "valid crafted checkpoint: %s", err.msg);
    if (c) {
        const lpl_st_tensor *t = lpl_torch_find(c, "w");
        CHECK(lpl_torch_n_tensors(c) == 1 && t && t->dtype == LPL_F32 && t->n_dims == 2 && t->shape[0] == 2 &&
              t->shape[1] == 3 && t->nbytes == 24 && !memcmp(t->data, six, 24), "tensor w");
        lpl_torch_close(c);
    }
    /* offset into the storage */
    tensor_spec s = good;
    s.offset = 3;
    s.size0 = 1;
    bytes pk2 = {0}, z2 = {0};
    p_state_dict(&pk2, &s);
    make_ckpt(&z2, &pk2, 0, 0);
    c = lpl_torch_open_memory(z2.p, z2.n, 0, &err);
    float first = 0;
    if (c)
        memcpy(&first, lpl_torch_tensors(c)[0].data, 4); /* storages in this archive are not aligned */
    CHECK(c && lpl_torch_tensors(c)[0].nbytes == 12 && first == 4.0f, "storage offset: %s", err.msg);
    lpl_torch_close(c);
    /* every truncation of the archive is refused */
    int opened = 0;
    for (size_t n = 0; n < z.n; n++) {
        c = lpl_torch_open_memory(z.p, n, 0, &err);
        opened += c != NULL;
        lpl_torch_close(c);
    }
    CHECK(opened == 0, "%d truncated archives opened", opened);
    free(pk.p);
    free(z.p);
    free(pk2.p);
    free(z2.p);
}

static void test_hostile(void)
{
    expect_forbidden("os", "system", 0);
    expect_forbidden("builtins", "eval", 0);
    expect_forbidden("posix", "system", 1);
    expect_forbidden("torch.storage", "_load_from_bytes", 0);
    expect_forbidden("torch", "load", 1);
    expect_forbidden("collections", "defaultdict", 0);

    /* opcodes outside the state-dict subset: INST, OBJ, EXT1 */
    const char *ops[] = {"\x80\x02i os\nsystem\n.", "\x80\x02(o.", "\x80\x02\x82\x01."};
    const char *want[] = {"opcode 0x69", "opcode 0x6f", "opcode 0x82"};
    for (int i = 0; i < 3; i++) {
        bytes pk = {0}, z = {0};
        puts_(&pk, ops[i]);
        pk.n = i == 2 ? 5 : pk.n;
        make_ckpt(&z, &pk, 0, 0);
        expect_fail_bytes(&z, want[i], want[i]);
        free(pk.p);
        free(z.p);
    }

    /* REDUCE on a storage type */
    {
        bytes pk = {0}, z = {0};
        put(&pk, "\x80\x02", 2);
        p_global(&pk, "torch", "FloatStorage");
        put(&pk, ")R.", 3);
        make_ckpt(&z, &pk, 0, 0);
        expect_fail_bytes(&z, "cannot be called", "storage call");
        free(pk.p);
        free(z.p);
    }
    /* a list at the top */
    {
        bytes pk = {0}, z = {0};
        put(&pk, "\x80\x02].", 4);
        make_ckpt(&z, &pk, 0, 0);
        expect_fail_bytes(&z, "does not hold a state dict", "top-level list");
        free(pk.p);
        free(z.p);
    }
    /* a string that is not UTF-8 */
    {
        bytes pk = {0}, z = {0};
        put(&pk, "\x80\x02X\x02\x00\x00\x00\xc3\x28.", 11);
        make_ckpt(&z, &pk, 0, 0);
        expect_fail_bytes(&z, "not valid UTF-8", "non-UTF-8 string");
        free(pk.p);
        free(z.p);
    }
    /* memo reference never stored */
    {
        bytes pk = {0}, z = {0};
        put(&pk, "\x80\x02h\x05.", 5);
        make_ckpt(&z, &pk, 0, 0);
        expect_fail_bytes(&z, "memo index not set", "memo get");
        free(pk.p);
        free(z.p);
    }

    tensor_spec s = good;
    s.stop = 0;
    expect_fail_spec(&s, "truncated", "no STOP");
    s = good;
    s.stride0 = 1;
    s.stride1 = 2;
    expect_fail_spec(&s, "'w' is not contiguous", "strided");
    s = good;
    s.offset = 2;
    expect_fail_spec(&s, "out of range of its storage", "offset past storage");
    s = good;
    s.numel = 20;
    expect_fail_spec(&s, "claims 20 elements but holds 24 bytes", "storage size");
    s = good;
    s.key = "7";
    expect_fail_spec(&s, "'archive/data/7' of tensor 'w' is missing", "missing storage");
    s = good;
    s.storage_type = "Float8Storage";
    expect_fail_spec(&s, "global 'torch.Float8Storage'", "unknown storage type");

    /* the zip container */
    bytes pk = {0}, z = {0};
    p_state_dict(&pk, &good);
    make_ckpt(&z, &pk, 8, 0);
    expect_fail_bytes(&z, "compressed (method 8)", "deflated entry");
    z.n = 0;
    make_ckpt(&z, &pk, 0, 1);
    expect_fail_bytes(&z, "fails its CRC check", "crc");
    z.n = 0;
    make_ckpt(&z, &pk, 0, 0);
    z.p[z.n - 22] = 'X'; /* EOCD signature */
    expect_fail_bytes(&z, "no end-of-central-directory record", "no eocd");
    z.n = 0;
    make_ckpt(&z, &pk, 0, 0);
    memset(z.p + z.n - 6, 0x7f, 4); /* central directory offset */
    expect_fail_bytes(&z, "central directory", "cd offset");
    bytes notzip = {0};
    puts_(&notzip, "\x80\x02}q\x00.");
    expect_fail_bytes(&notzip, "not a PyTorch checkpoint", "neither zip nor legacy");
    free(notzip.p);
    /* no data.pkl */
    z.n = 0;
    zentry only[1] = {{"archive/data/0", (const uint8_t *)six, sizeof six, 0, 0}};
    zip_build(&z, only, 1);
    expect_fail_bytes(&z, "no data.pkl", "no pickle");
    free(pk.p);
    free(z.p);
}

/* The committed DialoGPT-style checkpoints against the safetensors fixture. */
static void test_fixtures(void)
{
    lpl_error err = {0};
    lpl_safetensors *st = lpl_safetensors_open("tests/fixtures/tiny-gpt2/model.safetensors", &err);
    lpl_torch_ckpt *b32 = lpl_torch_open("tests/fixtures/tiny-gpt2-bin32/pytorch_model.bin", &err);
    CHECK(b32 != NULL, "bin32: %s", err.msg);
    lpl_torch_ckpt *b16 = lpl_torch_open("tests/fixtures/tiny-gpt2-bin16/pytorch_model.bin", &err);
    CHECK(b16 != NULL, "bin16: %s", err.msg);
    if (!st || !b32 || !b16)
        goto done;
    CHECK(lpl_torch_n_tensors(b32) == 33 && lpl_torch_n_tensors(b16) == 33, "33 tensors (28 + buffers + lm_head)");
    int compared = 0;
    for (int64_t i = 0; i < lpl_safetensors_n_tensors(st); i++) {
        const lpl_st_tensor *s = &lpl_safetensors_tensors(st)[i];
        if (strstr(s->name, ".attn.bias"))
            continue;
        char name[128];
        snprintf(name, sizeof name, "transformer.%s", s->name);
        const lpl_st_tensor *a = lpl_torch_find(b32, name), *h = lpl_torch_find(b16, name);
        CHECK(a && a->dtype == LPL_F32 && a->nbytes == s->nbytes && !memcmp(a->data, s->data, s->nbytes),
              "bin32 %s equals safetensors", name);
        CHECK(h && h->dtype == LPL_F16 && h->n_dims == s->n_dims && h->shape[0] == s->shape[0], "bin16 %s", name);
        if (h && h->dtype == LPL_F16) {
            int64_t n = lpl_st_numel(s), bad = 0;
            for (int64_t k = 0; k < n; k++) {
                uint16_t v;
                memcpy(&v, (const uint8_t *)h->data + 2 * k, 2);
                bad += v != lpl_fp32_to_fp16(((const float *)s->data)[k]);
            }
            CHECK(bad == 0, "bin16 %s: %lld elements differ from fp16(f32)", name, (long long)bad);
        }
        compared++;
    }
    CHECK(compared == 28, "compared %d", compared);
    const lpl_st_tensor *t = lpl_torch_find(b32, "transformer.h.0.attn.bias");
    CHECK(t && t->unsupported && !strcmp(t->unsupported, "uint8") && t->data == NULL && t->n_dims == 4,
          "uint8 attn.bias is listed as unsupported");
    t = lpl_torch_find(b16, "transformer.h.1.attn.bias");
    CHECK(t && !t->unsupported && t->dtype == LPL_F16, "fp16 attn.bias");
    t = lpl_torch_find(b32, "transformer.h.1.attn.masked_bias");
    float mb = 0;
    if (t && t->data)
        memcpy(&mb, t->data, 4);
    CHECK(t && t->n_dims == 0 && t->nbytes == 4 && mb == -1e4f, "scalar masked_bias");
    t = lpl_torch_find(b32, "lm_head.weight");
    CHECK(t && t->data != lpl_torch_find(b32, "transformer.wte.weight")->data, "lm_head is an untied copy");
done:
    lpl_safetensors_close(st);
    lpl_torch_close(b32);
    lpl_torch_close(b16);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*n);
    if (fread(p, 1, *n, f) != *n)
        *n = 0;
    fclose(f);
    return p;
}

/* The legacy (pre-1.6) stream: same tensors as the zip fixture, truncations and a
 * forbidden global refused. */
static void test_legacy(void)
{
    lpl_error err = {0};
    size_t n = 0;
    uint8_t *p = read_all("tests/fixtures/tiny-gpt2-legacy16/pytorch_model.bin", &n);
    CHECK(p && n > 1000 && lpl_torch_is_legacy(p, n) && !lpl_torch_is_zip(p, n), "legacy fixture");
    if (!p)
        return;
    lpl_torch_ckpt *leg = lpl_torch_open_memory(p, n, 0, &err);
    lpl_torch_ckpt *zip = lpl_torch_open("tests/fixtures/tiny-gpt2-bin16/pytorch_model.bin", &err);
    CHECK(leg && zip, "open: %s", err.msg);
    if (leg && zip) {
        CHECK(lpl_torch_n_tensors(leg) == lpl_torch_n_tensors(zip), "same tensor count");
        int same = 0;
        for (int64_t i = 0; i < lpl_torch_n_tensors(zip); i++) {
            const lpl_st_tensor *z = &lpl_torch_tensors(zip)[i], *l = lpl_torch_find(leg, z->name);
            same += l && l->dtype == z->dtype && l->nbytes == z->nbytes && l->n_dims == z->n_dims &&
                    !memcmp(l->data, z->data, z->nbytes);
        }
        CHECK(same == 33, "%d of 33 tensors identical to the zip checkpoint", same);
    }
    lpl_torch_close(leg);
    lpl_torch_close(zip);
    /* truncations: every prefix through the first pickles, then samples (ASan time) */
    int opened = 0, tried = 0;
    for (size_t k = 0; k < n; k += k < 600 ? 1 : k < 8000 ? 11 : 997) {
        lpl_torch_ckpt *c = lpl_torch_open_memory(p, k, 0, &err);
        opened += c != NULL;
        tried++;
        lpl_torch_close(c);
    }
    CHECK(opened == 0, "%d of %d truncated legacy files opened", opened, tried);
    /* a legacy file whose state dict names posix.system */
    size_t at = 0;
    for (size_t k = 0; k + 24 <= n && !at; k++)
        if (!memcmp(p + k, "collections\nOrderedDict\n", 24))
            at = k;
    CHECK(at > 0, "OrderedDict global in the legacy pickle");
    memcpy(p + at, "posix\nsystem\n", 13);
    lpl_torch_ckpt *c = lpl_torch_open_memory(p, n, 0, &err);
    CHECK(!c && strstr(err.msg, "global 'posix.system'"), "legacy hostile global: %s", err.msg);
    lpl_torch_close(c);
    free(p);
}

/* The fp16 zip rewritten with zip64 records (sizes, offsets and counts in zip64 fields
 * only): the same tensors, and refused when cut before its end records. */
static void test_zip64(void)
{
    lpl_error err = {0};
    size_t n = 0;
    uint8_t *p = read_all("tests/fixtures/tiny-gpt2-bin16-zip64/pytorch_model.bin", &n);
    CHECK(p && n > 1000 && lpl_torch_is_zip(p, n), "zip64 fixture");
    if (!p)
        return;
    lpl_torch_ckpt *z64 = lpl_torch_open_memory(p, n, 0, &err);
    CHECK(z64 != NULL, "zip64: %s", err.msg);
    lpl_torch_ckpt *zip = lpl_torch_open("tests/fixtures/tiny-gpt2-bin16/pytorch_model.bin", &err);
    if (z64 && zip) {
        int same = 0;
        for (int64_t i = 0; i < lpl_torch_n_tensors(zip); i++) {
            const lpl_st_tensor *z = &lpl_torch_tensors(zip)[i], *w = lpl_torch_find(z64, z->name);
            same += w && w->dtype == z->dtype && w->nbytes == z->nbytes && !memcmp(w->data, z->data, z->nbytes);
        }
        CHECK(lpl_torch_n_tensors(z64) == 33 && same == 33, "%d of 33 tensors identical to the zip's", same);
    }
    lpl_torch_close(z64);
    lpl_torch_close(zip);
    /* the last 98 bytes are the zip64 record (56), its locator (20) and the end record (22) */
    for (size_t cut = 1; cut <= 98; cut++) {
        lpl_torch_ckpt *c = lpl_torch_open_memory(p, n - cut, 0, &err);
        CHECK(c == NULL, "zip64 cut %zu bytes short opened", cut);
        lpl_torch_close(c);
    }
    free(p);
}

int main(void)
{
    test_valid();
    test_hostile();
    test_fixtures();
    test_legacy();
    test_zip64();
    return check_report("test_torch_zip");
}
