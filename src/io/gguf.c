/* GGUF v3 reader and writer.
 *
 * Reader: the whole header (key/values and tensor infos) is parsed and validated
 * against the file size before anything is returned: every length is checked
 * against the bytes that remain, counts are bounded by what the file can hold
 * before anything is allocated, tensor offsets must be aligned, inside the data
 * section and must not overlap. Strings are copied out NUL-terminated; numeric
 * values and tensor data stay in the mapping.
 *
 * Writer: key/values are serialised when set (a later set of the same key
 * replaces the earlier one); tensors are copied; the file is written in one pass
 * with 32-byte alignment. */
#include "lpl/io/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lpl/core/utf8.h"
#include "lpl/core/files.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ARRAY_DEPTH 4

/* ------------------------------------------------------------------ types */

/* Bytes per element of scalar GGUF value types; 0 for string/array/unknown. */
static size_t gguf_scalar_size(uint32_t t)
{
    switch (t) {
    case LPL_GGUF_UINT8: case LPL_GGUF_INT8: case LPL_GGUF_BOOL: return 1;
    case LPL_GGUF_UINT16: case LPL_GGUF_INT16: return 2;
    case LPL_GGUF_UINT32: case LPL_GGUF_INT32: case LPL_GGUF_FLOAT32: return 4;
    case LPL_GGUF_UINT64: case LPL_GGUF_INT64: case LPL_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *gguf_type_name(uint32_t t)
{
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32",
                                  "float32", "bool", "string", "array", "uint64", "int64",
                                  "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Tensor element types this project reads, with their block size and block bytes. */
static int tensor_type_layout(uint32_t t, int64_t *block, size_t *block_bytes)
{
    switch (t) {
    case LPL_F32: *block = 1; *block_bytes = 4; return 1;
    case LPL_F16: *block = 1; *block_bytes = 2; return 1;
    case LPL_BF16: *block = 1; *block_bytes = 2; return 1;
    case LPL_Q8_0: *block = 32; *block_bytes = 34; return 1;
    case LPL_Q4_0: *block = 32; *block_bytes = 18; return 1;
    default: return 0;
    }
}

/* ------------------------------------------------------------------ reader */

typedef struct {
    char *key;
    lpl_gguf_type type;
    lpl_gguf_type elem_type; /* arrays */
    uint64_t n;              /* array length (1 for a scalar) */
    const uint8_t *raw;      /* scalar value or numeric array elements, in the file */
    char **strs;             /* string value (n = 1) or string array elements */
    size_t *lens;
    char *chars;             /* one allocation holding all of strs */
} gguf_kv;

struct lpl_gguf {
    const uint8_t *base;
    size_t size;
    void *owned_copy;    /* private copy (open_memory with copy) */
    lpl_mapped file;     /* lpl_gguf_open's mapping */
    uint32_t version;
    uint64_t alignment;
    size_t data_start;
    int64_t n_kv;
    gguf_kv *kv;
    int64_t n_tensors;
    lpl_gguf_tensor *tensors;
};

typedef struct {
    const uint8_t *p;
    size_t size;
    size_t pos;
    const char *src;
    lpl_error *err;
} reader;

static int rd_need(reader *r, size_t n, const char *what)
{
    if (n <= r->size - r->pos)
        return 1;
    lpl_fail(r->err, LPL_ERR_FORMAT, "%s: truncated: %s at byte %zu needs %zu bytes but only %zu remain",
             r->src, what, r->pos, n, r->size - r->pos);
    return 0;
}

/* Copies the next n bytes (a little-endian value on every platform the lab runs on). */
static int rd_bytes(reader *r, void *v, size_t n, const char *what)
{
    if (!rd_need(r, n, what))
        return 0;
    memcpy(v, r->p + r->pos, n);
    r->pos += n;
    return 1;
}

static int rd_u32(reader *r, uint32_t *v, const char *what) { return rd_bytes(r, v, 4, what); }
static int rd_u64(reader *r, uint64_t *v, const char *what) { return rd_bytes(r, v, 8, what); }

/* Reads a GGUF string (u64 length + bytes) and returns a view into the file. */
static int rd_str_view(reader *r, const uint8_t **s, size_t *len, const char *what)
{
    uint64_t n;
    if (!rd_u64(r, &n, what))
        return 0;
    if (n > r->size - r->pos) {
        lpl_fail(r->err, LPL_ERR_FORMAT,
                 "%s: %s at byte %zu claims %llu bytes, past the end of the file (%zu bytes remain)",
                 r->src, what, r->pos - 8, (unsigned long long)n, r->size - r->pos);
        return 0;
    }
    if (!lpl_utf8_validate(r->p + r->pos, (size_t)n, NULL)) {
        lpl_fail(r->err, LPL_ERR_FORMAT, "%s: %s at byte %zu is not valid UTF-8", r->src, what, r->pos);
        return 0;
    }
    *s = r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return 1;
}

static char *dup_n(const uint8_t *s, size_t n, lpl_error *err)
{
    char *d = lpl_malloc(n + 1, "gguf string", err);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Skips (validating bounds) one array body: elem type already read. Nested arrays
 * are allowed by the format; we validate and skip them but expose only flat ones. */
static int rd_skip_array(reader *r, uint32_t elem, int depth, const char *key)
{
    uint64_t n;
    if (depth > GGUF_MAX_ARRAY_DEPTH)
        return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: key '%s': arrays nested deeper than %d",
                        r->src, key, GGUF_MAX_ARRAY_DEPTH), 0;
    if (!rd_u64(r, &n, "array length"))
        return 0;
    size_t es = gguf_scalar_size(elem);
    if (es) {
        if (n > (r->size - r->pos) / es)
            return lpl_fail(r->err, LPL_ERR_FORMAT,
                            "%s: key '%s': array of %llu %s elements runs past the end of the file",
                            r->src, key, (unsigned long long)n, gguf_type_name(elem)), 0;
        r->pos += (size_t)(n * es);
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (elem == LPL_GGUF_STRING) {
            const uint8_t *s;
            size_t len;
            if (!rd_str_view(r, &s, &len, "array string"))
                return 0;
        } else if (elem == LPL_GGUF_ARRAY) {
            uint32_t sub;
            if (!rd_u32(r, &sub, "nested array type") || !rd_skip_array(r, sub, depth + 1, key))
                return 0;
        } else {
            return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: key '%s': unknown array element type %u",
                            r->src, key, elem), 0;
        }
    }
    return 1;
}

/* Reads a string array of n elements into one allocation of NUL-terminated copies. */
static int rd_str_array(reader *r, gguf_kv *kv)
{
    size_t start = r->pos, total = 0;
    uint64_t n = kv->n;
    /* every element needs at least its 8-byte length */
    if (n > (r->size - r->pos) / 8)
        return lpl_fail(r->err, LPL_ERR_FORMAT,
                        "%s: key '%s': array of %llu strings runs past the end of the file",
                        r->src, kv->key, (unsigned long long)n), 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *s;
        size_t len;
        if (!rd_str_view(r, &s, &len, "array string"))
            return 0;
        total += len + 1;
    }
    kv->strs = lpl_calloc((size_t)n ? (size_t)n : 1, sizeof(char *), "gguf string array", r->err);
    kv->lens = lpl_calloc((size_t)n ? (size_t)n : 1, sizeof(size_t), "gguf string array", r->err);
    char *chars = kv->chars = lpl_malloc(total, "gguf string array", r->err);
    if (!kv->strs || !kv->lens || !chars)
        return 0;
    r->pos = start;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *s;
        size_t len;
        rd_str_view(r, &s, &len, "array string"); /* validated above */
        memcpy(chars, s, len);
        chars[len] = '\0';
        kv->strs[i] = chars;
        kv->lens[i] = len;
        chars += len + 1;
    }
    return 1;
}

static int rd_kv(reader *r, gguf_kv *kv)
{
    const uint8_t *s;
    size_t len;
    uint32_t t;
    if (!rd_str_view(r, &s, &len, "key"))
        return 0;
    if (!(kv->key = dup_n(s, len, r->err)))
        return 0;
    if (!rd_u32(r, &t, "value type"))
        return 0;
    kv->type = (lpl_gguf_type)t;
    kv->n = 1;
    if (t == LPL_GGUF_STRING) {
        return rd_str_array(r, kv);
    } else if (t == LPL_GGUF_ARRAY) {
        uint32_t elem;
        uint64_t n;
        if (!rd_u32(r, &elem, "array element type"))
            return 0;
        kv->elem_type = (lpl_gguf_type)elem;
        size_t at = r->pos;
        if (!rd_u64(r, &n, "array length"))
            return 0;
        kv->n = n;
        if (elem == LPL_GGUF_STRING)
            return rd_str_array(r, kv);
        if (!gguf_scalar_size(elem) && elem != LPL_GGUF_ARRAY)
            return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: key '%s': unknown array element type %u",
                            r->src, kv->key, elem), 0;
        r->pos = at;
        kv->raw = r->p + at + 8;
        return rd_skip_array(r, elem, 1, kv->key);
    }
    size_t es = gguf_scalar_size(t);
    if (!es)
        return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: key '%s' has unknown value type %u",
                        r->src, kv->key, t), 0;
    if (!rd_need(r, es, kv->key))
        return 0;
    kv->raw = r->p + r->pos;
    r->pos += es;
    return 1;
}

static int rd_tensor_info(reader *r, lpl_gguf_tensor *t)
{
    const uint8_t *s;
    size_t len;
    uint32_t nd, type;
    if (!rd_str_view(r, &s, &len, "tensor name"))
        return 0;
    char *name = dup_n(s, len, r->err);
    if (!name)
        return 0;
    t->name = name;
    if (!rd_u32(r, &nd, "tensor dimension count"))
        return 0;
    if (nd < 1 || nd > 4)
        return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (1 to 4 allowed)",
                        r->src, name, nd), 0;
    t->n_dims = (int)nd;
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v;
        if (!rd_u64(r, &v, "tensor shape"))
            return 0;
        if (v < 1 || v > ((uint64_t)1 << 40))
            return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: tensor '%s' dimension %u is %llu",
                            r->src, name, d, (unsigned long long)v), 0;
        t->ne[d] = (int64_t)v;
    }
    if (!rd_u32(r, &type, "tensor type"))
        return 0;
    int64_t block;
    size_t block_bytes;
    if (!tensor_type_layout(type, &block, &block_bytes))
        return lpl_fail(r->err, LPL_ERR_UNSUPPORTED,
                        "%s: tensor '%s' has ggml type %u, which is not supported "
                        "(f32, f16, bf16, q8_0, q4_0 are)", r->src, name, type), 0;
    t->type = (lpl_dtype)type;
    if (t->ne[0] % block)
        return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: tensor '%s' row length %lld is not a multiple of %lld",
                        r->src, name, (long long)t->ne[0], (long long)block), 0;
    /* elements are bounded (each ne <= 2^40, product checked) so size fits in u64 */
    uint64_t nb = (uint64_t)(t->ne[0] / block) * block_bytes;
    for (int d = 1; d < 4; d++) {
        if ((uint64_t)t->ne[d] > (UINT64_MAX >> 1) / nb)
            return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: tensor '%s' is impossibly large", r->src, name), 0;
        nb *= (uint64_t)t->ne[d];
    }
    if (nb > SIZE_MAX)
        return lpl_fail(r->err, LPL_ERR_FORMAT, "%s: tensor '%s' is too large for this machine", r->src, name), 0;
    t->nbytes = (size_t)nb;
    return rd_u64(r, &t->offset, "tensor offset");
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    uint64_t x = (*(const lpl_gguf_tensor *const *)a)->offset, y = (*(const lpl_gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that stands twice in names[0..n) (sorted in place), or NULL. */
static const char *sorted_duplicate(const char **names, size_t n)
{
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i]))
            return names[i];
    return NULL;
}

/* Duplicate keys and tensor names, tensor placement inside the data section. */
static lpl_status check_layout(lpl_gguf *g, const char *src, lpl_error *err)
{
    lpl_status st = LPL_OK;
    size_t nk = (size_t)g->n_kv, nt = (size_t)g->n_tensors;
    size_t nn = nk > nt ? nk : nt;
    const char **names = lpl_calloc(nn ? nn : 1, sizeof *names, "gguf name index", err);
    const lpl_gguf_tensor **ts = lpl_calloc(nt ? nt : 1, sizeof *ts, "gguf tensor index", err);
    const char *dup;
    if (!names || !ts) {
        st = LPL_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < nk; i++)
        names[i] = g->kv[i].key;
    if ((dup = sorted_duplicate(names, nk))) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "%s: duplicate key '%s'", src, dup);
        goto done;
    }
    for (size_t i = 0; i < nt; i++)
        names[i] = g->tensors[i].name;
    if ((dup = sorted_duplicate(names, nt))) {
        st = lpl_fail(err, LPL_ERR_FORMAT, "%s: duplicate tensor '%s'", src, dup);
        goto done;
    }
    for (size_t i = 0; i < nt; i++)
        ts[i] = &g->tensors[i];
    size_t data_size = g->size - g->data_start;
    qsort(ts, nt, sizeof *ts, cmp_tensor_offset);
    for (size_t i = 0; i < nt; i++) {
        const lpl_gguf_tensor *t = ts[i];
        if (t->offset % g->alignment) {
            st = lpl_fail(err, LPL_ERR_FORMAT, "%s: tensor '%s' offset %llu is not a multiple of the alignment %llu",
                          src, t->name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto done;
        }
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            st = lpl_fail(err, LPL_ERR_FORMAT,
                          "%s: tensor '%s' data [%llu, +%zu) is out of range: the data section has %zu bytes",
                          src, t->name, (unsigned long long)t->offset, t->nbytes, data_size);
            goto done;
        }
        if (i > 0 && ts[i - 1]->offset + ts[i - 1]->nbytes > t->offset) {
            st = lpl_fail(err, LPL_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section",
                          src, ts[i - 1]->name, t->name);
            goto done;
        }
    }
    for (size_t i = 0; i < nt; i++)
        g->tensors[i].data = g->base + g->data_start + g->tensors[i].offset;
done:
    free(names);
    free(ts);
    return st;
}

static lpl_status parse(lpl_gguf *g, const char *src, lpl_error *err)
{
    reader r = {g->base, g->size, 0, src, err};
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: not a GGUF file (magic bytes missing)", src);
    r.pos = 4;
    if (!rd_u32(&r, &version, "version"))
        return err ? err->code : LPL_ERR_FORMAT;
    if (version != 2 && version != 3)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2 and 3 are)", src, version);
    g->version = version;
    if (!rd_u64(&r, &n_tensors, "tensor count") || !rd_u64(&r, &n_kv, "key/value count"))
        return err ? err->code : LPL_ERR_FORMAT;
    /* a key/value takes at least 13 bytes, a tensor info at least 32 */
    if (n_kv > (g->size - r.pos) / 13 || n_tensors > (g->size - r.pos) / 32)
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "%s: truncated or corrupt: header claims %llu key/values and %llu tensors, more than a %zu-byte file can hold",
                        src, (unsigned long long)n_kv, (unsigned long long)n_tensors, g->size);
    g->kv = lpl_calloc((size_t)n_kv ? (size_t)n_kv : 1, sizeof *g->kv, "gguf key/values", err);
    g->tensors = lpl_calloc((size_t)n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors, "gguf tensors", err);
    if (!g->kv || !g->tensors)
        return LPL_ERR_NOMEM;
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = (int64_t)i + 1; /* so close() frees what was read */
        if (!rd_kv(&r, &g->kv[i]))
            return err ? err->code : LPL_ERR_FORMAT;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = (int64_t)i + 1;
        if (!rd_tensor_info(&r, &g->tensors[i]))
            return err ? err->code : LPL_ERR_FORMAT;
    }
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = lpl_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        uint32_t a;
        if (g->kv[ai].type != LPL_GGUF_UINT32)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: general.alignment must be uint32", src);
        memcpy(&a, g->kv[ai].raw, 4);
        if (a == 0 || (a & (a - 1)) || a > 65536)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: general.alignment %u is not a power of two up to 65536", src, a);
        g->alignment = a;
    }
    size_t start = r.pos + (size_t)((g->alignment - r.pos % g->alignment) % g->alignment);
    if (n_tensors > 0 && start > g->size)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: the data section would start at byte %zu of %zu",
                        src, start, g->size);
    g->data_start = start < g->size ? start : g->size;
    return check_layout(g, src, err);
}

/* Opens over g->base/g->size (already set); on error releases g. */
static lpl_gguf *finish_open(lpl_gguf *g, const char *src, lpl_error *err)
{
    if (parse(g, src, err) != LPL_OK) {
        lpl_gguf_close(g);
        return NULL;
    }
    return g;
}

lpl_gguf *lpl_gguf_open_memory(const void *data, size_t size, int copy, lpl_error *err)
{
    if (!data && size)
        return lpl_fail(err, LPL_ERR_INVALID, "gguf: NULL buffer"), NULL;
    lpl_gguf *g = lpl_calloc(1, sizeof *g, "gguf", err);
    if (!g)
        return NULL;
    if (copy) {
        g->owned_copy = lpl_malloc(size, "gguf copy", err);
        if (!g->owned_copy) {
            free(g);
            return NULL;
        }
        if (size)
            memcpy(g->owned_copy, data, size);
        g->base = g->owned_copy;
    } else {
        g->base = data;
    }
    g->size = size;
    return finish_open(g, "<memory>", err);
}

lpl_gguf *lpl_gguf_open(const char *path, lpl_error *err)
{
    lpl_gguf *g = lpl_calloc(1, sizeof *g, "gguf", err);
    if (!g)
        return NULL;
    if (lpl_map_file(path, &g->file, err) != LPL_OK) {
        free(g);
        return NULL;
    }
    g->base = g->file.data;
    g->size = g->file.size;
    return finish_open(g, path, err);
}

void lpl_gguf_close(lpl_gguf *g)
{
    if (!g)
        return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].chars);
        free(g->kv[i].strs);
        free(g->kv[i].lens);
    }
    free(g->kv);
    for (int64_t i = 0; i < g->n_tensors; i++)
        free((char *)g->tensors[i].name);
    free(g->tensors);
    lpl_unmap_file(&g->file);
    free(g->owned_copy);
    free(g);
}

uint32_t lpl_gguf_version(const lpl_gguf *g) { return g->version; }
size_t lpl_gguf_file_size(const lpl_gguf *g) { return g->size; }
int64_t lpl_gguf_n_kv(const lpl_gguf *g) { return g->n_kv; }

const char *lpl_gguf_key(const lpl_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

lpl_gguf_type lpl_gguf_kv_type(const lpl_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? g->kv[i].type : (lpl_gguf_type)-1;
}

int64_t lpl_gguf_find_key(const lpl_gguf *g, const char *key)
{
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && !strcmp(g->kv[i].key, key))
            return i;
    return -1;
}

static const gguf_kv *find_kv(const lpl_gguf *g, const char *key, lpl_error *err)
{
    int64_t i = lpl_gguf_find_key(g, key);
    if (i < 0) {
        lpl_fail(err, LPL_ERR_FORMAT, "gguf: key '%s' is missing", key);
        return NULL;
    }
    return &g->kv[i];
}

/* The value of key when it has the given type; NULL (missing, or of another type:
 * "expected <what>") with err set otherwise. */
static const gguf_kv *find_kv_of(const lpl_gguf *g, const char *key, lpl_gguf_type type, const char *what,
                                 lpl_error *err)
{
    const gguf_kv *kv = find_kv(g, key, err);
    if (kv && kv->type != type) {
        lpl_fail(err, LPL_ERR_FORMAT, "gguf: key '%s' is %s, expected %s", key, gguf_type_name(kv->type), what);
        return NULL;
    }
    return kv;
}

/* Integer value of a scalar of any integer type (bool too); 0 if not an integer. */
static int kv_int(const gguf_kv *kv, int64_t *lo, uint64_t *hi, int *is_neg)
{
    uint8_t b[8];
    size_t es = gguf_scalar_size(kv->type);
    if (!es || kv->type == LPL_GGUF_FLOAT32 || kv->type == LPL_GGUF_FLOAT64)
        return 0;
    memcpy(b, kv->raw, es);
    int64_t s = 0;
    uint64_t u = 0;
    switch (kv->type) {
    case LPL_GGUF_UINT8: case LPL_GGUF_BOOL: u = b[0]; break;
    case LPL_GGUF_INT8: s = (int8_t)b[0]; break;
    case LPL_GGUF_UINT16: { uint16_t v; memcpy(&v, b, 2); u = v; break; }
    case LPL_GGUF_INT16: { int16_t v; memcpy(&v, b, 2); s = v; break; }
    case LPL_GGUF_UINT32: { uint32_t v; memcpy(&v, b, 4); u = v; break; }
    case LPL_GGUF_INT32: { int32_t v; memcpy(&v, b, 4); s = v; break; }
    case LPL_GGUF_UINT64: memcpy(&u, b, 8); break;
    case LPL_GGUF_INT64: memcpy(&s, b, 8); break;
    default: return 0;
    }
    int signed_type = kv->type == LPL_GGUF_INT8 || kv->type == LPL_GGUF_INT16 ||
                      kv->type == LPL_GGUF_INT32 || kv->type == LPL_GGUF_INT64;
    *is_neg = signed_type && s < 0;
    *hi = signed_type ? (uint64_t)(s < 0 ? 0 : s) : u;
    *lo = s;
    return 1;
}

lpl_status lpl_gguf_get_u32(const lpl_gguf *g, const char *key, uint32_t *out, lpl_error *err)
{
    const gguf_kv *kv = find_kv(g, key, err);
    if (!kv)
        return LPL_ERR_FORMAT;
    int64_t s;
    uint64_t u;
    int neg;
    if (!kv_int(kv, &s, &u, &neg))
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: key '%s' is %s, expected an integer", key,
                        gguf_type_name(kv->type));
    if (neg || u > UINT32_MAX)
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: key '%s' value does not fit in uint32", key);
    *out = (uint32_t)u;
    return LPL_OK;
}

lpl_status lpl_gguf_get_f32(const lpl_gguf *g, const char *key, float *out, lpl_error *err)
{
    const gguf_kv *kv = find_kv(g, key, err);
    if (!kv)
        return LPL_ERR_FORMAT;
    if (kv->type == LPL_GGUF_FLOAT32) {
        memcpy(out, kv->raw, 4);
    } else if (kv->type == LPL_GGUF_FLOAT64) {
        double d;
        memcpy(&d, kv->raw, 8);
        *out = (float)d;
    } else {
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: key '%s' is %s, expected float32", key,
                        gguf_type_name(kv->type));
    }
    return LPL_OK;
}

lpl_status lpl_gguf_get_str(const lpl_gguf *g, const char *key, const char **s, size_t *len, lpl_error *err)
{
    const gguf_kv *kv = find_kv_of(g, key, LPL_GGUF_STRING, "string", err);
    if (!kv)
        return LPL_ERR_FORMAT;
    *s = kv->strs[0];
    if (len)
        *len = kv->lens[0];
    return LPL_OK;
}

lpl_status lpl_gguf_get_arr(const lpl_gguf *g, const char *key, lpl_gguf_type *elem_type,
                            uint64_t *n, const void **raw, lpl_error *err)
{
    const gguf_kv *kv = find_kv_of(g, key, LPL_GGUF_ARRAY, "an array", err);
    if (!kv)
        return LPL_ERR_FORMAT;
    if (elem_type)
        *elem_type = kv->elem_type;
    if (n)
        *n = kv->n;
    if (raw)
        *raw = kv->elem_type == LPL_GGUF_STRING || kv->elem_type == LPL_GGUF_ARRAY ? NULL : kv->raw;
    return LPL_OK;
}

lpl_status lpl_gguf_get_arr_str(const lpl_gguf *g, const char *key, uint64_t i, const char **s,
                                size_t *len, lpl_error *err)
{
    const gguf_kv *kv = find_kv(g, key, err);
    if (!kv)
        return LPL_ERR_FORMAT;
    if (kv->type != LPL_GGUF_ARRAY || kv->elem_type != LPL_GGUF_STRING)
        return lpl_fail(err, LPL_ERR_FORMAT, "gguf: key '%s' is not an array of strings", key);
    if (i >= kv->n)
        return lpl_fail(err, LPL_ERR_INVALID, "gguf: key '%s': index %llu out of range (%llu elements)",
                        key, (unsigned long long)i, (unsigned long long)kv->n);
    *s = kv->strs[i];
    if (len)
        *len = kv->lens[i];
    return LPL_OK;
}

int64_t lpl_gguf_n_tensors(const lpl_gguf *g) { return g->n_tensors; }

const lpl_gguf_tensor *lpl_gguf_tensor_at(const lpl_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const lpl_gguf_tensor *lpl_gguf_find_tensor(const lpl_gguf *g, const char *name)
{
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

/* ------------------------------------------------------------------ writer */

typedef struct {
    char *key;
    uint8_t *val; /* serialised value: type, then payload */
    size_t val_len;
} wkv;

typedef struct {
    char *name;
    int n_dims;
    int64_t ne[4];
    lpl_dtype type;
    void *data;
    size_t nbytes;
} wtensor;

struct lpl_gguf_writer {
    wkv *kv;
    int64_t n_kv, cap_kv;
    wtensor *t;
    int64_t n_t, cap_t;
};

/* A growable byte buffer for serialising values. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int failed;
} bytes;

static void by_put(bytes *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (n > cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void by_u32(bytes *b, uint32_t v) { by_put(b, &v, 4); }
static void by_u64(bytes *b, uint64_t v) { by_put(b, &v, 8); }
static void by_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    by_u64(b, n);
    by_put(b, s, n);
}

lpl_gguf_writer *lpl_gguf_writer_new(lpl_error *err)
{
    return lpl_calloc(1, sizeof(lpl_gguf_writer), "gguf writer", err);
}

void lpl_gguf_writer_free(lpl_gguf_writer *w)
{
    if (!w)
        return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    free(w->kv);
    for (int64_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w);
}

/* Stores a serialised value under key (replacing an earlier one); takes b's buffer. */
static lpl_status put_kv(lpl_gguf_writer *w, const char *key, bytes *b, lpl_error *err)
{
    if (b->failed) {
        free(b->p);
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: gguf value of '%s'", key);
    }
    if (!key || !*key || !lpl_utf8_validate(key, strlen(key), NULL)) {
        free(b->p);
        return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: key must be non-empty UTF-8");
    }
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val);
            w->kv[i].val = b->p;
            w->kv[i].val_len = b->len;
            return LPL_OK;
        }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *kv = realloc(w->kv, (size_t)cap * sizeof *kv);
        if (!kv) {
            free(b->p);
            return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: gguf key/values");
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(b->p);
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: gguf key");
    }
    w->kv[w->n_kv++] = (wkv){k, b->p, b->len};
    return LPL_OK;
}

static lpl_status set_scalar(lpl_gguf_writer *w, const char *key, lpl_gguf_type t, const void *v,
                             lpl_error *err)
{
    bytes b = {0};
    by_u32(&b, t);
    by_put(&b, v, gguf_scalar_size(t));
    return put_kv(w, key, &b, err);
}

lpl_status lpl_gguf_set_u32(lpl_gguf_writer *w, const char *key, uint32_t v, lpl_error *err)
{
    return set_scalar(w, key, LPL_GGUF_UINT32, &v, err);
}

lpl_status lpl_gguf_set_i32(lpl_gguf_writer *w, const char *key, int32_t v, lpl_error *err)
{
    return set_scalar(w, key, LPL_GGUF_INT32, &v, err);
}

lpl_status lpl_gguf_set_f32(lpl_gguf_writer *w, const char *key, float v, lpl_error *err)
{
    return set_scalar(w, key, LPL_GGUF_FLOAT32, &v, err);
}

lpl_status lpl_gguf_set_bool(lpl_gguf_writer *w, const char *key, int v, lpl_error *err)
{
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, LPL_GGUF_BOOL, &b, err);
}

lpl_status lpl_gguf_set_str(lpl_gguf_writer *w, const char *key, const char *v, lpl_error *err)
{
    if (!v || !lpl_utf8_validate(v, strlen(v), NULL))
        return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: value of '%s' is not valid UTF-8", key);
    bytes b = {0};
    by_u32(&b, LPL_GGUF_STRING);
    by_str(&b, v);
    return put_kv(w, key, &b, err);
}

lpl_status lpl_gguf_set_arr_str(lpl_gguf_writer *w, const char *key, const char *const *v,
                                uint64_t n, lpl_error *err)
{
    bytes b = {0};
    by_u32(&b, LPL_GGUF_ARRAY);
    by_u32(&b, LPL_GGUF_STRING);
    by_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i] || !lpl_utf8_validate(v[i], strlen(v[i]), NULL)) {
            free(b.p);
            return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: '%s'[%llu] is not valid UTF-8", key,
                            (unsigned long long)i);
        }
        by_str(&b, v[i]);
    }
    return put_kv(w, key, &b, err);
}

static lpl_status set_arr_num(lpl_gguf_writer *w, const char *key, lpl_gguf_type t, const void *v,
                              uint64_t n, lpl_error *err)
{
    size_t es = gguf_scalar_size(t);
    if (n > SIZE_MAX / es)
        return lpl_fail(err, LPL_ERR_NOMEM, "gguf writer: array '%s' too large", key);
    bytes b = {0};
    by_u32(&b, LPL_GGUF_ARRAY);
    by_u32(&b, t);
    by_u64(&b, n);
    by_put(&b, v, (size_t)n * es);
    return put_kv(w, key, &b, err);
}

lpl_status lpl_gguf_set_arr_i32(lpl_gguf_writer *w, const char *key, const int32_t *v, uint64_t n,
                                lpl_error *err)
{
    return set_arr_num(w, key, LPL_GGUF_INT32, v, n, err);
}

lpl_status lpl_gguf_set_arr_f32(lpl_gguf_writer *w, const char *key, const float *v, uint64_t n,
                                lpl_error *err)
{
    return set_arr_num(w, key, LPL_GGUF_FLOAT32, v, n, err);
}

/* Validates a tensor's description and computes its byte size. */
static lpl_status tensor_desc(const lpl_gguf_writer *w, const char *name, lpl_dtype type, int n_dims,
                              const int64_t *ne, wtensor *t, lpl_error *err)
{
    int64_t block;
    size_t block_bytes;
    if (!name || !*name || !lpl_utf8_validate(name, strlen(name), NULL))
        return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: tensor name must be non-empty UTF-8");
    if (!tensor_type_layout(type, &block, &block_bytes))
        return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: tensor '%s': unsupported type %d", name, (int)type);
    if (n_dims < 1 || n_dims > 4)
        return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: tensor '%s': %d dimensions", name, n_dims);
    for (int64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: duplicate tensor '%s'", name);
    memset(t, 0, sizeof *t);
    t->n_dims = n_dims;
    t->type = type;
    for (int d = 0; d < 4; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    uint64_t nb = 1;
    for (int d = 0; d < 4; d++) {
        if (t->ne[d] < 1 || t->ne[d] > ((int64_t)1 << 40) || (d == 0 && t->ne[0] % block))
            return lpl_fail(err, LPL_ERR_INVALID, "gguf writer: tensor '%s': bad dimension %d = %lld",
                            name, d, (long long)t->ne[d]);
        uint64_t f = d == 0 ? (uint64_t)(t->ne[0] / block) * block_bytes : (uint64_t)t->ne[d];
        if (f > SIZE_MAX / nb)
            return lpl_fail(err, LPL_ERR_NOMEM, "gguf writer: tensor '%s' too large", name);
        nb *= f;
    }
    t->nbytes = (size_t)nb;
    return LPL_OK;
}

lpl_status lpl_gguf_add_tensor_take(lpl_gguf_writer *w, const char *name, lpl_dtype type, int n_dims,
                                    const int64_t *ne, void *data, lpl_error *err)
{
    wtensor t;
    lpl_status st = tensor_desc(w, name, type, n_dims, ne, &t, err);
    if (st != LPL_OK) {
        free(data);
        return st;
    }
    if (w->n_t == w->cap_t) {
        int64_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            free(data);
            return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: gguf tensor list");
        }
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) {
        free(data);
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: gguf tensor name");
    }
    t.data = data;
    w->t[w->n_t++] = t;
    return LPL_OK;
}

lpl_status lpl_gguf_add_tensor(lpl_gguf_writer *w, const char *name, lpl_dtype type, int n_dims,
                               const int64_t *ne, const void *data, lpl_error *err)
{
    wtensor t;
    lpl_status st = tensor_desc(w, name, type, n_dims, ne, &t, err);
    if (st != LPL_OK)
        return st;
    void *copy = lpl_malloc(t.nbytes, name, err);
    if (!copy)
        return LPL_ERR_NOMEM;
    memcpy(copy, data, t.nbytes);
    return lpl_gguf_add_tensor_take(w, name, type, n_dims, ne, copy, err);
}

/* Header (everything before the data section, padded), with tensor offsets assigned. */
static lpl_status build_header(const lpl_gguf_writer *w, bytes *h, uint64_t *offsets, uint64_t *data_size,
                               lpl_error *err)
{
    uint64_t off = 0;
    by_put(h, GGUF_MAGIC, 4);
    by_u32(h, 3);
    by_u64(h, (uint64_t)w->n_t);
    by_u64(h, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv; i++) {
        by_str(h, w->kv[i].key);
        by_put(h, w->kv[i].val, w->kv[i].val_len);
    }
    for (int64_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        by_str(h, t->name);
        by_u32(h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            by_u64(h, (uint64_t)t->ne[d]);
        by_u32(h, (uint32_t)t->type);
        by_u64(h, off);
        offsets[i] = off;
        off += (t->nbytes + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
    }
    static const uint8_t zeros[GGUF_DEFAULT_ALIGNMENT];
    by_put(h, zeros, (GGUF_DEFAULT_ALIGNMENT - h->len % GGUF_DEFAULT_ALIGNMENT) % GGUF_DEFAULT_ALIGNMENT);
    *data_size = off;
    if (h->failed)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: gguf header");
    return LPL_OK;
}

/* Output sink: a FILE or a memory buffer of the exact final size. */
typedef struct {
    FILE *f;
    uint8_t *mem;
    size_t pos;
} sink;

static int sink_put(sink *s, const void *p, size_t n)
{
    static const uint8_t zeros[4096];
    if (!p) { /* a tensor to be filled in later: zeros */
        for (size_t k = 0; k < n; k += sizeof zeros)
            if (!sink_put(s, zeros, n - k < sizeof zeros ? n - k : sizeof zeros))
                return 0;
        return 1;
    }
    if (s->f)
        return fwrite(p, 1, n, s->f) == n;
    memcpy(s->mem + s->pos, p, n);
    s->pos += n;
    return 1;
}

static int emit(const lpl_gguf_writer *w, const bytes *h, sink *s)
{
    static const uint8_t zeros[GGUF_DEFAULT_ALIGNMENT];
    if (!sink_put(s, h->p, h->len))
        return 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        size_t pad = (GGUF_DEFAULT_ALIGNMENT - w->t[i].nbytes % GGUF_DEFAULT_ALIGNMENT) % GGUF_DEFAULT_ALIGNMENT;
        if (!sink_put(s, w->t[i].data, w->t[i].nbytes) || !sink_put(s, zeros, pad))
            return 0;
    }
    return 1;
}

lpl_status lpl_gguf_add_tensor_empty(lpl_gguf_writer *w, const char *name, lpl_dtype type, int n_dims,
                                     const int64_t *ne, lpl_error *err)
{
    return lpl_gguf_add_tensor_take(w, name, type, n_dims, ne, NULL, err);
}

int64_t lpl_gguf_writer_n_tensors(const lpl_gguf_writer *w) { return w->n_t; }

lpl_status lpl_gguf_write_memory(lpl_gguf_writer *w, void **out, size_t *size, lpl_error *err)
{
    return lpl_gguf_write_memory_ex(w, out, size, NULL, err);
}

/* The header into *h (freed on failure) and the data section's size; with tensor_at,
 * where each tensor's data starts in the file. */
static lpl_status header_at(const lpl_gguf_writer *w, bytes *h, uint64_t *data_size, size_t *tensor_at,
                            lpl_error *err)
{
    uint64_t *offsets = lpl_calloc((size_t)w->n_t + 1, sizeof *offsets, "gguf offsets", err);
    if (!offsets)
        return LPL_ERR_NOMEM;
    lpl_status st = build_header(w, h, offsets, data_size, err);
    for (int64_t i = 0; tensor_at && st == LPL_OK && i < w->n_t; i++)
        tensor_at[i] = h->len + (size_t)offsets[i];
    free(offsets);
    if (st != LPL_OK) {
        free(h->p);
        h->p = NULL;
    }
    return st;
}

lpl_status lpl_gguf_write_memory_ex(lpl_gguf_writer *w, void **out, size_t *size, size_t *tensor_at,
                                    lpl_error *err)
{
    bytes h = {0};
    uint64_t data_size;
    lpl_status st = header_at(w, &h, &data_size, tensor_at, err);
    if (st != LPL_OK)
        return st;
    if (data_size > SIZE_MAX - h.len) {
        free(h.p);
        return lpl_fail(err, LPL_ERR_NOMEM, "gguf writer: file too large for memory");
    }
    size_t total = h.len + (size_t)data_size;
    sink s = {NULL, lpl_malloc(total, "gguf file in memory", err), 0};
    if (!s.mem) {
        free(h.p);
        return LPL_ERR_NOMEM;
    }
    emit(w, &h, &s);
    free(h.p);
    *out = s.mem;
    *size = total;
    return LPL_OK;
}

lpl_status lpl_gguf_write_file(lpl_gguf_writer *w, const char *path, lpl_error *err)
{
    bytes h = {0};
    uint64_t data_size;
    lpl_status st = header_at(w, &h, &data_size, NULL, err);
    if (st != LPL_OK)
        return st;
    lpl_file_out out;
    st = lpl_file_begin(&out, path, err);
    if (st == LPL_OK) {
        sink s = {out.f, NULL, 0};
        int ok = emit(w, &h, &s);
        st = lpl_file_commit(&out, ok, err);
    }
    free(h.p);
    return st;
}
