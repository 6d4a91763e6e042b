/* safetensors reader (validated against the file size before use) and writer. */
#include "lpl/io/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lpl/core/utf8.h"
#include "lpl/core/kernels.h"
#include "lpl/core/files.h"
#include "le_bytes.h"

/* The header of a real checkpoint is a few tens of KB; this bounds hostile input. */
#define ST_MAX_HEADER (100u << 20)

typedef struct {
    char *key, *value;
} st_meta;

struct lpl_safetensors {
    lpl_mapped file;
    void *copy;
    const uint8_t *base;
    size_t size;
    int64_t n;
    lpl_st_tensor *t;
    int64_t n_meta;
    st_meta *meta;
    int header_only;   /* streaming: no data section, offsets kept instead */
    uint64_t *offsets;
};

/* ------------------------------------------------------------------ dtypes */

static int dtype_from_name(const char *s, lpl_dtype *t)
{
    if (!strcmp(s, "F32")) { *t = LPL_F32; return 1; }
    if (!strcmp(s, "F16")) { *t = LPL_F16; return 1; }
    if (!strcmp(s, "BF16")) { *t = LPL_BF16; return 1; }
    return 0;
}

static const char *dtype_to_name(lpl_dtype t)
{
    switch (t) {
    case LPL_F32: return "F32";
    case LPL_F16: return "F16";
    case LPL_BF16: return "BF16";
    default: return NULL;
    }
}

/* Other dtypes the format defines: named as unsupported rather than unknown. */
static int dtype_known_other(const char *s)
{
    static const char *other[] = {"F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL",
                                  "F8_E4M3", "F8_E5M2"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (!strcmp(s, other[i]))
            return 1;
    return 0;
}

static size_t dtype_size(lpl_dtype t) { return t == LPL_F32 ? 4 : 2; }

int64_t lpl_st_numel(const lpl_st_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->shape[d];
    return n;
}

void lpl_st_to_f32(lpl_dtype dtype, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    if (dtype == LPL_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    if (dtype == LPL_F16) {
        lpl_fp16_to_fp32_row(p, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = lpl_bf16_to_fp32(h);
    }
}

/* ------------------------------------------------------------------ reader */

/* Non-negative integer JSON number that is exactly an integer. */
static int json_u64(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j))
        return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d))
        return 0;
    *v = (uint64_t)d;
    return 1;
}

static lpl_status parse_metadata(lpl_safetensors *st, const cJSON *m, const char *src, lpl_error *err)
{
    if (!cJSON_IsObject(m))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: __metadata__ is not an object", src);
    if (st->meta) /* a second one would replace the first mid-count (found by tests/fuzz) */
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: __metadata__ appears twice", src);
    int n = cJSON_GetArraySize(m);
    st->meta = lpl_calloc((size_t)n + 1, sizeof *st->meta, "safetensors metadata", err);
    if (!st->meta)
        return LPL_ERR_NOMEM;
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", src, e->string);
        st_meta *mm = &st->meta[st->n_meta++];
        mm->key = strdup(e->string);
        mm->value = strdup(e->valuestring);
        if (!mm->key || !mm->value)
            return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: safetensors metadata");
    }
    return LPL_OK;
}

/* One header entry into t and its data offset into *offset (64-bit: a streamed file's
 * offsets pass 4 GiB where size_t and pointers are 32 bits, as in wasm). */
static lpl_status parse_tensor(lpl_safetensors *st, const cJSON *e, lpl_st_tensor *t, uint64_t *offset,
                               uint64_t data_size, const char *src, lpl_error *err)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: entry '%s' is not an object", src, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: tensor '%s' has no dtype string", src, name);
    if (!dtype_from_name(dt->valuestring, &t->dtype)) {
        if (dtype_known_other(dt->valuestring))
            return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s (only F32, F16 and BF16 are read)",
                            src, name, dt->valuestring);
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", src, name, dt->valuestring);
    }
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > LPL_ST_MAX_DIMS)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: tensor '%s' shape must be an array of at most %d integers",
                        src, name, LPL_ST_MAX_DIMS);
    uint64_t numel = 1;
    t->n_dims = 0;
    for (const cJSON *d = sh->child; d; d = d->next) {
        uint64_t v;
        if (!json_u64(d, &v) || v > ((uint64_t)1 << 40))
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: tensor '%s' has a bad shape entry", src, name);
        t->shape[t->n_dims++] = (int64_t)v;
        if (v && numel > (UINT64_MAX >> 2) / v)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: tensor '%s' is impossibly large", src, name);
        numel *= v;
    }
    uint64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_u64(of->child, &b) ||
        !json_u64(of->child->next, &en))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: tensor '%s' data_offsets must be [begin, end]", src, name);
    if (b > en || en > data_size)
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "%s: tensor '%s' data_offsets [%llu, %llu] are out of range (the data has %llu bytes)",
                        src, name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_size);
    if (en - b != numel * dtype_size(t->dtype))
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "%s: tensor '%s' spans %llu bytes but %s x shape needs %llu", src, name,
                        (unsigned long long)(en - b), dt->valuestring,
                        (unsigned long long)(numel * dtype_size(t->dtype)));
    t->name = strdup(name);
    if (!t->name)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: tensor name");
    if (en - b > SIZE_MAX)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: tensor '%s' has %llu bytes, more than this build can address",
                        src, name, (unsigned long long)(en - b));
    *offset = b; /* data is resolved after the overlap check */
    t->nbytes = (size_t)(en - b);
    return LPL_OK;
}

typedef struct {
    uint64_t off;
    int64_t i;
} by_offset;

static int cmp_offset(const void *a, const void *b)
{
    const by_offset *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* ties (empty tensors) keep header order */
}

/* Puts st->t and st->offsets in data order (the names move with their tensors). */
static lpl_status sort_by_offset(lpl_safetensors *st, lpl_error *err)
{
    size_t n = (size_t)st->n + 1;
    by_offset *k = lpl_calloc(n, sizeof *k, "safetensors order", err);
    lpl_st_tensor *t = k ? lpl_calloc(n, sizeof *t, "safetensors tensors", err) : NULL;
    uint64_t *o = t ? lpl_calloc(n, sizeof *o, "safetensors offsets", err) : NULL;
    if (!o) {
        free(k);
        free(t);
        return LPL_ERR_NOMEM;
    }
    for (int64_t i = 0; i < st->n; i++)
        k[i] = (by_offset){st->offsets[i], i};
    qsort(k, (size_t)st->n, sizeof *k, cmp_offset);
    for (int64_t i = 0; i < st->n; i++) {
        t[i] = st->t[k[i].i];
        o[i] = k[i].off;
    }
    free(st->t);
    free(st->offsets);
    free(k);
    st->t = t;
    st->offsets = o;
    return LPL_OK;
}

static lpl_status parse(lpl_safetensors *st, const char *src, lpl_error *err)
{
    uint64_t hlen;
    if (st->size < 8)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: %zu bytes, the header length alone needs 8", src,
                        st->size);
    hlen = lpl_le64(st->base);
    if (hlen > st->size - 8)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", src,
                        (unsigned long long)hlen, st->size);
    if (hlen < 2 || hlen > ST_MAX_HEADER)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: header length %llu is implausible", src, (unsigned long long)hlen);
    const char *h = (const char *)st->base + 8;
    size_t bad;
    if (!lpl_utf8_validate((const uint8_t *)h, (size_t)hlen, &bad))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %zu)", src, bad);
    cJSON *j = cJSON_ParseWithLength(h, (size_t)hlen);
    if (!j)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: header is not valid JSON", src);
    lpl_status s = LPL_OK;
    /* streaming: the data section is still to come; its end is checked as it arrives */
    uint64_t data_size = st->header_only ? UINT64_MAX : (uint64_t)(st->size - 8 - (size_t)hlen);
    if (!cJSON_IsObject(j)) {
        s = lpl_fail(err, LPL_ERR_FORMAT, "%s: header is not a JSON object", src);
        goto done;
    }
    int n = cJSON_GetArraySize(j);
    st->t = lpl_calloc((size_t)n + 1, sizeof *st->t, "safetensors tensors", err);
    st->offsets = st->t ? lpl_calloc((size_t)n + 1, sizeof *st->offsets, "safetensors offsets", err) : NULL;
    if (!st->offsets) {
        s = LPL_ERR_NOMEM;
        goto done;
    }
    for (const cJSON *e = j->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if ((s = parse_metadata(st, e, src, err)) != LPL_OK)
                goto done;
            continue;
        }
        for (int64_t i = 0; i < st->n; i++)
            if (!strcmp(st->t[i].name, e->string)) {
                s = lpl_fail(err, LPL_ERR_FORMAT, "%s: duplicate tensor '%s'", src, e->string);
                goto done;
            }
        lpl_st_tensor *t = &st->t[st->n];
        if ((s = parse_tensor(st, e, t, &st->offsets[st->n], data_size, src, err)) != LPL_OK) {
            free((char *)t->name);
            t->name = NULL;
            goto done;
        }
        st->n++;
    }
    if ((s = sort_by_offset(st, err)) != LPL_OK)
        goto done;
    for (int64_t i = 1; i < st->n; i++) {
        if (st->t[i].nbytes && st->offsets[i - 1] + st->t[i - 1].nbytes > st->offsets[i]) {
            s = lpl_fail(err, LPL_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", src, st->t[i - 1].name,
                         st->t[i].name);
            goto done;
        }
    }
    for (int64_t i = 0; !st->header_only && i < st->n; i++)
        st->t[i].data = st->base + 8 + hlen + st->offsets[i];
done:
    cJSON_Delete(j);
    return s;
}

static lpl_safetensors *finish_open(lpl_safetensors *st, const char *src, lpl_error *err)
{
    if (parse(st, src, err) != LPL_OK) {
        lpl_safetensors_close(st);
        return NULL;
    }
    return st;
}

lpl_safetensors *lpl_safetensors_open(const char *path, lpl_error *err)
{
    lpl_safetensors *st = lpl_calloc(1, sizeof *st, "safetensors", err);
    if (!st)
        return NULL;
    if (lpl_map_file(path, &st->file, err) != LPL_OK) {
        free(st);
        return NULL;
    }
    st->base = st->file.data;
    st->size = st->file.size;
    return finish_open(st, path, err);
}

lpl_safetensors *lpl_safetensors_open_memory(const void *data, size_t size, int copy, lpl_error *err)
{
    lpl_safetensors *st = lpl_calloc(1, sizeof *st, "safetensors", err);
    if (!st)
        return NULL;
    if (copy) {
        if (!(st->copy = lpl_malloc(size, "safetensors copy", err))) {
            free(st);
            return NULL;
        }
        memcpy(st->copy, data, size);
        data = st->copy;
    }
    st->base = data;
    st->size = size;
    return finish_open(st, "<memory>", err);
}

lpl_safetensors *lpl_safetensors_open_header(const void *data, size_t n, size_t *header_len, int *more,
                                             lpl_error *err)
{
    uint64_t hlen = 0;
    *more = 0;
    if (n >= 8)
        hlen = lpl_le64(data);
    if (n < 8 || (hlen <= ST_MAX_HEADER && n - 8 < hlen)) {
        *more = 1;
        return NULL;
    }
    lpl_safetensors *st = lpl_calloc(1, sizeof *st, "safetensors", err);
    if (!st)
        return NULL;
    st->header_only = 1;
    st->base = data;
    st->size = hlen <= ST_MAX_HEADER ? 8 + (size_t)hlen : n;
    *header_len = st->size;
    return finish_open(st, "model.safetensors", err);
}

uint64_t lpl_safetensors_data_offset(const lpl_safetensors *st, int64_t i)
{
    return st->offsets[i];
}

void lpl_safetensors_close(lpl_safetensors *st)
{
    if (!st)
        return;
    for (int64_t i = 0; i < st->n; i++)
        free((char *)st->t[i].name);
    free(st->t);
    for (int64_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    free(st->offsets);
    lpl_unmap_file(&st->file);
    free(st->copy);
    free(st);
}

int64_t lpl_safetensors_n_tensors(const lpl_safetensors *st) { return st->n; }
const lpl_st_tensor *lpl_safetensors_tensors(const lpl_safetensors *st) { return st->t; }

const lpl_st_tensor *lpl_st_find(const lpl_st_tensor *t, int64_t n, const char *name)
{
    for (int64_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name))
            return &t[i];
    return NULL;
}

const lpl_st_tensor *lpl_safetensors_find(const lpl_safetensors *st, const char *name)
{
    return lpl_st_find(st->t, st->n, name);
}

const char *lpl_safetensors_metadata(const lpl_safetensors *st, const char *key)
{
    for (int64_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[i].key, key))
            return st->meta[i].value;
    return NULL;
}

/* ------------------------------------------------------------------ writer */

/* JSON header (padded with spaces to a multiple of 8, as the reference writer does)
 * and the total data size. */
static char *build_header(int n, const char *const *names, const lpl_dtype *dtypes, const int *n_dims,
                          const int64_t *const *shapes, const char *const *meta, size_t *hlen,
                          size_t *data_size, lpl_error *err)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: safetensors header"), NULL;
    if (meta && meta[0]) {
        cJSON *m = cJSON_AddObjectToObject(j, "__metadata__");
        for (int i = 0; m && meta[i] && meta[i + 1]; i += 2)
            cJSON_AddStringToObject(m, meta[i], meta[i + 1]);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const char *dn = dtype_to_name(dtypes[i]);
        if (!dn || n_dims[i] < 0 || n_dims[i] > LPL_ST_MAX_DIMS || !names[i] || !strcmp(names[i], "__metadata__")) {
            cJSON_Delete(j);
            return lpl_fail(err, LPL_ERR_INVALID, "safetensors writer: tensor %d ('%s') has a bad dtype, rank or name",
                            i, names[i] ? names[i] : "?"), NULL;
        }
        uint64_t nb = dtype_size(dtypes[i]);
        double shape[LPL_ST_MAX_DIMS];
        for (int d = 0; d < n_dims[i]; d++) {
            nb *= (uint64_t)shapes[i][d];
            shape[d] = (double)shapes[i][d];
        }
        cJSON *e = cJSON_AddObjectToObject(j, names[i]);
        double offs[2] = {(double)off, (double)(off + nb)};
        if (!e || !cJSON_AddStringToObject(e, "dtype", dn) ||
            !cJSON_AddItemToObject(e, "shape", cJSON_CreateDoubleArray(shape, n_dims[i])) ||
            !cJSON_AddItemToObject(e, "data_offsets", cJSON_CreateDoubleArray(offs, 2))) {
            cJSON_Delete(j);
            return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: safetensors header"), NULL;
        }
        off += nb;
    }
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!txt)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: safetensors header"), NULL;
    size_t len = strlen(txt), padded = (len + 7) / 8 * 8;
    char *h = realloc(txt, padded + 1);
    if (!h) {
        free(txt);
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: safetensors header"), NULL;
    }
    memset(h + len, ' ', padded - len);
    h[padded] = '\0';
    *hlen = padded;
    *data_size = (size_t)off;
    return h;
}

lpl_status lpl_safetensors_write_memory(int n, const char *const *names, const lpl_dtype *dtypes,
                                        const int *n_dims, const int64_t *const *shapes,
                                        const void *const *data, const char *const *meta,
                                        void **out, size_t *size, lpl_error *err)
{
    size_t hlen, dsize;
    char *h = build_header(n, names, dtypes, n_dims, shapes, meta, &hlen, &dsize, err);
    if (!h)
        return err ? err->code : LPL_ERR_NOMEM;
    uint8_t *buf = lpl_malloc(8 + hlen + dsize, "safetensors file", err);
    if (!buf) {
        free(h);
        return LPL_ERR_NOMEM;
    }
    uint64_t hl = hlen;
    memcpy(buf, &hl, 8);
    memcpy(buf + 8, h, hlen);
    size_t pos = 8 + hlen;
    for (int i = 0; i < n; i++) {
        size_t nb = dtype_size(dtypes[i]);
        for (int d = 0; d < n_dims[i]; d++)
            nb *= (size_t)shapes[i][d];
        if (nb)
            memcpy(buf + pos, data[i], nb);
        pos += nb;
    }
    free(h);
    *out = buf;
    *size = pos;
    return LPL_OK;
}

lpl_status lpl_safetensors_write_file(const char *path, int n, const char *const *names,
                                      const lpl_dtype *dtypes, const int *n_dims,
                                      const int64_t *const *shapes, const void *const *data,
                                      const char *const *meta, lpl_error *err)
{
    void *buf;
    size_t size;
    lpl_status s = lpl_safetensors_write_memory(n, names, dtypes, n_dims, shapes, data, meta, &buf, &size, err);
    if (s != LPL_OK)
        return s;
    s = lpl_write_file_atomic(path, buf, size, err);
    free(buf);
    return s;
}
