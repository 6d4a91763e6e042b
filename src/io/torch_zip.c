/* PyTorch zip checkpoints: a zip central-directory reader (stored entries only, as
 * torch.save writes them; zip64 records understood) and a restricted unpickler for
 * state dicts. The unpickler is a small stack machine over plain values; it knows
 * a handful of globals only as tags (a dict constructor, a tensor-rebuild record,
 * storage types) and never calls or imports anything. */
#include "lpl/io/torch_zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lpl/core/utf8.h"
#include "lpl/core/files.h"

/* ================================================================== zip */

typedef struct {
    char *name;
    const uint8_t *data;
    size_t size;
    uint32_t crc;
} zip_entry;

typedef struct {
    zip_entry *e;
    int64_t n;
} zip_dir;

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

int lpl_torch_is_zip(const void *data, size_t size)
{
    return size >= 4 && !memcmp(data, "PK\003\004", 4);
}

static void zip_free(zip_dir *z)
{
    for (int64_t i = 0; i < z->n; i++)
        free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

/* Finds the end-of-central-directory record in p, which holds the file's bytes
 * [base, base + size) (base 0: the whole file); fills the directory's count, size and
 * absolute offset, and checks the directory lies within p. */
static lpl_status zip_find_cd(const uint8_t *p, size_t size, uint64_t base, uint64_t *count, uint64_t *cd_size,
                              uint64_t *cd_off, const char *src, lpl_error *err)
{
    if (size < 22)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: too short for a zip archive", src);
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0, eocd = SIZE_MAX;
    for (size_t i = size - 22 + 1; i-- > lo;)
        if (rd32(p + i) == 0x06054b50 && i + 22 + rd16(p + i + 20) == size) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated or not a zip: no end-of-central-directory record", src);
    const uint8_t *e = p + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", src);
    *count = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    if (*count == 0xFFFF || *cd_size == 0xFFFFFFFF || *cd_off == 0xFFFFFFFF) {
        /* zip64: a locator just before the record points at the zip64 record */
        if (eocd < 20 || rd32(p + eocd - 20) != 0x07064b50)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: zip64 locator missing", src);
        uint64_t z64 = rd64(p + eocd - 20 + 8);
        if (z64 < base || size < 56 || z64 - base > size - 56 || rd32(p + (z64 - base)) != 0x06064b50) /* size < 56: found by tests/fuzz */
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: zip64 end-of-central-directory record out of range", src);
        z64 -= base;
        *count = rd64(p + z64 + 32);
        *cd_size = rd64(p + z64 + 40);
        *cd_off = rd64(p + z64 + 48);
    }
    if (*cd_off < base || *cd_off - base > size || *cd_size > size - (*cd_off - base))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: central directory [%llu, +%llu) is out of range (file has %llu bytes)",
                        src, (unsigned long long)*cd_off, (unsigned long long)*cd_size,
                        (unsigned long long)(base + size));
    if (*count > *cd_size / 46)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: central directory claims %llu entries, more than it can hold", src,
                        (unsigned long long)*count);
    return LPL_OK;
}

/* Zip64 extended information (extra id 1): replaces the 32-bit fields that are all ones. */
static void zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *loff)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = rd16(x + i), len = rd16(x + i + 2);
        if (i + 4 + len > xlen)
            return;
        if (id == 1) {
            const uint8_t *q = x + i + 4, *end = q + len;
            if (*usize == 0xFFFFFFFF && q + 8 <= end) { *usize = rd64(q); q += 8; }
            if (*csize == 0xFFFFFFFF && q + 8 <= end) { *csize = rd64(q); q += 8; }
            if (*loff == 0xFFFFFFFF && q + 8 <= end) { *loff = rd64(q); }
            return;
        }
        i += 4 + (size_t)len;
    }
}

/* One central-directory entry at p[*pos]: validates its local header and data range. */
static lpl_status zip_entry_read(const uint8_t *p, size_t size, size_t cd_end, size_t *pos, zip_entry *out,
                                 const char *src, lpl_error *err)
{
    size_t c = *pos;
    if (cd_end - c < 46 || rd32(p + c) != 0x02014b50)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: bad central directory entry at byte %zu", src, c);
    uint16_t flags = rd16(p + c + 8), method = rd16(p + c + 10);
    uint64_t csize = rd32(p + c + 20), usize = rd32(p + c + 24), loff = rd32(p + c + 42);
    size_t nlen = rd16(p + c + 28), xlen = rd16(p + c + 30), clen = rd16(p + c + 32);
    if (cd_end - c - 46 < nlen + xlen + clen)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: central directory entry at byte %zu runs past its end", src, c);
    const uint8_t *name = p + c + 46;
    zip64_extra(name + nlen, xlen, &usize, &csize, &loff);
    *pos = c + 46 + nlen + xlen + clen;
    out->name = lpl_malloc(nlen + 1, "zip entry name", err);
    if (!out->name)
        return LPL_ERR_NOMEM;
    memcpy(out->name, name, nlen);
    out->name[nlen] = '\0';
    if (strlen(out->name) != nlen || !lpl_utf8_validate(name, nlen, NULL))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: zip entry name at byte %zu is not valid UTF-8", src, c);
    if (flags & 1)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", src, out->name);
    if (method != 0)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "%s: zip entry '%s' is compressed (method %u); only stored entries (as torch.save writes) are supported",
                        src, out->name, method);
    if (csize != usize)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: stored zip entry '%s' has different sizes", src, out->name);
    if (loff > size || size - loff < 30 || rd32(p + loff) != 0x04034b50)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: local header of '%s' at byte %llu is missing or out of range", src,
                        out->name, (unsigned long long)loff);
    size_t data = (size_t)loff + 30 + rd16(p + loff + 26) + rd16(p + loff + 28);
    if (data > size || usize > size - data)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: data of '%s' [%zu, +%llu) runs past the end (%zu bytes)",
                        src, out->name, data, (unsigned long long)usize, size);
    out->data = p + data;
    out->size = (size_t)usize;
    out->crc = rd32(p + c + 16);
    return LPL_OK;
}

static lpl_status zip_open(const uint8_t *p, size_t size, zip_dir *z, const char *src, lpl_error *err)
{
    uint64_t count = 0, cd_size = 0, cd_off = 0;
    lpl_status s = zip_find_cd(p, size, 0, &count, &cd_size, &cd_off, src, err);
    if (s != LPL_OK)
        return s;
    z->e = lpl_calloc((size_t)count + 1, sizeof *z->e, "zip directory", err);
    if (!z->e)
        return LPL_ERR_NOMEM;
    size_t pos = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    for (uint64_t i = 0; i < count; i++) {
        z->n = (int64_t)i + 1;
        if ((s = zip_entry_read(p, size, end, &pos, &z->e[i], src, err)) != LPL_OK)
            return s;
    }
    return LPL_OK;
}

static const zip_entry *zip_find(const zip_dir *z, const char *name)
{
    for (int64_t i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name))
            return &z->e[i];
    return NULL;
}

/* CRC-32 (IEEE), to check data.pkl before parsing it. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* ================================================================== unpickler */

typedef enum {
    V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR, V_MARK
} vkind;

/* The globals a state dict may name. They are tags: nothing is imported or called. */
typedef enum {
    G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_STORAGE
} gkind;

typedef struct value value;
struct value {
    vkind k;
    int64_t i;         /* int, bool */
    double f;
    char *s;           /* str; storage key */
    value **items;     /* tuple/list elements; dict: key, value, key, value, ... */
    int64_t n, cap;
    gkind g;           /* V_GLOBAL */
    lpl_dtype dtype;   /* V_GLOBAL storage type / V_STORAGE */
    const char *unsupported; /* storage types we skip (bool, uint8, int64, ...) */
    size_t elem;       /* bytes per element of a storage type */
    int64_t numel;     /* V_STORAGE */
    /* V_TENSOR */
    value *storage;
    int64_t offset;
    int n_dims;
    int64_t shape[LPL_ST_MAX_DIMS], stride[LPL_ST_MAX_DIMS];
    value *next_alloc; /* every value, for freeing */
};

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    const char *src;
    lpl_error *err;
    value *all;
    value **stack;
    int64_t sp, stack_cap;
    value **memo;
    int64_t memo_cap, memo_len;
    int short_input; /* failed because the bytes ended (streaming: wait for more) */
} unpickler;

static value *v_new(unpickler *u, vkind k)
{
    value *v = calloc(1, sizeof *v);
    if (!v) {
        lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler");
        return NULL;
    }
    v->k = k;
    v->next_alloc = u->all;
    u->all = v;
    return v;
}

static void v_free_all(unpickler *u)
{
    for (value *v = u->all; v;) {
        value *nx = v->next_alloc;
        free(v->s);
        free(v->items);
        free(v);
        v = nx;
    }
    u->all = NULL;
    free(u->stack);
    free(u->memo);
}

static int v_append(unpickler *u, value *c, value *x)
{
    if (c->n == c->cap) {
        int64_t cap = c->cap ? c->cap * 2 : 8;
        value **it = realloc(c->items, (size_t)cap * sizeof *it);
        if (!it)
            return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
        c->items = it;
        c->cap = cap;
    }
    c->items[c->n++] = x;
    return 1;
}

static int bad(unpickler *u, const char *what)
{
    lpl_fail(u->err, LPL_ERR_FORMAT, "%s: %s at byte %zu", u->src, what, u->pos);
    return 0;
}

static int push(unpickler *u, value *v)
{
    if (!v)
        return 0;
    if (u->sp == u->stack_cap) {
        int64_t cap = u->stack_cap ? u->stack_cap * 2 : 64;
        value **s = realloc(u->stack, (size_t)cap * sizeof *s);
        if (!s)
            return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
        u->stack = s;
        u->stack_cap = cap;
    }
    u->stack[u->sp++] = v;
    return 1;
}

static value *pop(unpickler *u)
{
    if (u->sp == 0 || u->stack[u->sp - 1]->k == V_MARK) {
        bad(u, "pickle stack underflow");
        return NULL;
    }
    return u->stack[--u->sp];
}

/* Index of the topmost mark, or -1 with err set. */
static int64_t find_mark(unpickler *u)
{
    for (int64_t i = u->sp - 1; i >= 0; i--)
        if (u->stack[i]->k == V_MARK)
            return i;
    bad(u, "pickle has no mark");
    return -1;
}

static int need(unpickler *u, size_t k)
{
    if (k <= u->n - u->pos)
        return 1;
    u->short_input = 1;
    return bad(u, "pickle is truncated");
}

/* Resolves "module name" to an allowed global, or refuses naming it. */
static value *make_global(unpickler *u, const char *mod, const char *name)
{
    static const struct { const char *name; lpl_dtype t; size_t elem; const char *unsupported; } storages[] = {
        {"FloatStorage", LPL_F32, 4, NULL},     {"HalfStorage", LPL_F16, 2, NULL},
        {"BFloat16Storage", LPL_BF16, 2, NULL}, {"BoolStorage", LPL_F32, 1, "bool"},
        {"ByteStorage", LPL_F32, 1, "uint8"},   {"LongStorage", LPL_F32, 8, "int64"},
        {"IntStorage", LPL_F32, 4, "int32"},    {"DoubleStorage", LPL_F32, 8, "float64"},
    };
    value *v = NULL;
    if (!strcmp(mod, "collections") && !strcmp(name, "OrderedDict")) {
        if ((v = v_new(u, V_GLOBAL)))
            v->g = G_ORDERED_DICT;
        return v;
    }
    if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_tensor_v2")) {
        if ((v = v_new(u, V_GLOBAL)))
            v->g = G_REBUILD_TENSOR_V2;
        return v;
    }
    if (!strcmp(mod, "torch"))
        for (size_t i = 0; i < sizeof storages / sizeof storages[0]; i++)
            if (!strcmp(name, storages[i].name)) {
                if ((v = v_new(u, V_GLOBAL))) {
                    v->g = G_STORAGE;
                    v->dtype = storages[i].t;
                    v->elem = storages[i].elem;
                    v->unsupported = storages[i].unsupported;
                }
                return v;
            }
    lpl_fail(u->err, LPL_ERR_FORMAT,
             "%s: the pickle names the global '%s.%s', which is not allowed in a state dict "
             "(only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch storage types are)",
             u->src, mod, name);
    return NULL;
}

/* A newline-terminated ASCII line of the GLOBAL opcode. */
static char *read_line(unpickler *u)
{
    const uint8_t *nl = memchr(u->p + u->pos, '\n', u->n - u->pos);
    if (!nl && u->n - u->pos <= 256)
        u->short_input = 1;
    if (!nl || nl - (u->p + u->pos) > 256) {
        bad(u, "bad GLOBAL operand");
        return NULL;
    }
    size_t len = (size_t)(nl - (u->p + u->pos));
    char *s = malloc(len + 1);
    if (!s) {
        lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler");
        return NULL;
    }
    memcpy(s, u->p + u->pos, len);
    s[len] = '\0';
    u->pos += len + 1;
    return s;
}

static int op_global(unpickler *u)
{
    char *mod = read_line(u);
    char *name = mod ? read_line(u) : NULL;
    int ok = name && push(u, make_global(u, mod, name));
    free(mod);
    free(name);
    return ok;
}

static int op_stack_global(unpickler *u)
{
    value *name = pop(u), *mod = name ? pop(u) : NULL;
    if (!mod)
        return 0;
    if (mod->k != V_STR || name->k != V_STR)
        return bad(u, "STACK_GLOBAL needs two strings");
    return push(u, make_global(u, mod->s, name->s));
}

static int op_string(unpickler *u, size_t lenbytes)
{
    if (!need(u, lenbytes))
        return 0;
    uint64_t len = lenbytes == 1 ? u->p[u->pos] : lenbytes == 4 ? rd32(u->p + u->pos) : rd64(u->p + u->pos);
    u->pos += lenbytes;
    if (len > u->n - u->pos) {
        u->short_input = 1;
        return bad(u, "string runs past the end of the pickle");
    }
    if (!lpl_utf8_validate(u->p + u->pos, (size_t)len, NULL))
        return bad(u, "string is not valid UTF-8");
    value *v = v_new(u, V_STR);
    if (!v || !(v->s = malloc((size_t)len + 1)))
        return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
    memcpy(v->s, u->p + u->pos, (size_t)len);
    v->s[len] = '\0';
    if (strlen(v->s) != len)
        return bad(u, "string contains a NUL byte");
    u->pos += (size_t)len;
    return push(u, v);
}

static int op_int(unpickler *u, int64_t x)
{
    value *v = v_new(u, V_INT);
    if (v)
        v->i = x;
    return push(u, v);
}

static int op_long1(unpickler *u)
{
    if (!need(u, 1))
        return 0;
    size_t k = u->p[u->pos++];
    if (k > 8 || !need(u, k))
        return bad(u, "LONG1 integer too large");
    uint64_t x = 0;
    for (size_t i = 0; i < k; i++)
        x |= (uint64_t)u->p[u->pos + i] << (8 * i);
    if (k > 0 && k < 8 && (u->p[u->pos + k - 1] & 0x80))
        x |= ~(uint64_t)0 << (8 * k); /* sign-extend */
    u->pos += k;
    return op_int(u, (int64_t)x);
}

static int op_tuple_n(unpickler *u, int64_t k)
{
    if (u->sp < k)
        return bad(u, "pickle stack underflow");
    value *t = v_new(u, V_TUPLE);
    if (!t)
        return 0;
    for (int64_t i = u->sp - k; i < u->sp; i++) {
        if (u->stack[i]->k == V_MARK)
            return bad(u, "pickle stack underflow");
        if (!v_append(u, t, u->stack[i]))
            return 0;
    }
    u->sp -= k;
    return push(u, t);
}

static int op_tuple_mark(unpickler *u)
{
    int64_t m = find_mark(u);
    if (m < 0)
        return 0;
    int64_t k = u->sp - m - 1;
    value *t = v_new(u, V_TUPLE);
    if (!t)
        return 0;
    for (int64_t i = m + 1; i < u->sp; i++)
        if (!v_append(u, t, u->stack[i]))
            return 0;
    u->sp -= k + 1;
    return push(u, t);
}

static int memo_put(unpickler *u, uint64_t idx)
{
    if (u->sp == 0 || u->stack[u->sp - 1]->k == V_MARK)
        return bad(u, "memo store with an empty stack");
    if (idx > u->n)
        return bad(u, "memo index out of range");
    if ((int64_t)idx >= u->memo_cap) {
        int64_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= (int64_t)idx)
            cap *= 2;
        value **m = realloc(u->memo, (size_t)cap * sizeof *m);
        if (!m)
            return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
        memset(m + u->memo_cap, 0, (size_t)(cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    u->memo[idx] = u->stack[u->sp - 1];
    if ((int64_t)idx >= u->memo_len)
        u->memo_len = (int64_t)idx + 1;
    return 1;
}

static int memo_get(unpickler *u, uint64_t idx)
{
    if ((int64_t)idx >= u->memo_cap || !u->memo[idx])
        return bad(u, "memo index not set");
    return push(u, u->memo[idx]);
}

static int op_setitems(unpickler *u, int single)
{
    int64_t m;
    if (single) {
        if (u->sp < 3)
            return bad(u, "pickle stack underflow");
        m = u->sp - 3;
    } else if ((m = find_mark(u)) < 0) {
        return 0;
    }
    int64_t first = single ? m + 1 : m + 1, dict_at = single ? m : m - 1;
    if (dict_at < 0 || u->stack[dict_at]->k != V_DICT)
        return bad(u, "SETITEM(S) target is not a dict");
    if ((u->sp - first) % 2)
        return bad(u, "SETITEMS with an odd number of items");
    value *d = u->stack[dict_at];
    for (int64_t i = first; i < u->sp; i++) {
        if (u->stack[i]->k == V_MARK)
            return bad(u, "unexpected mark");
        if (!v_append(u, d, u->stack[i]))
            return 0;
    }
    u->sp = single ? dict_at + 1 : m;
    return 1;
}

static int op_appends(unpickler *u, int single)
{
    int64_t m = single ? u->sp - 2 : find_mark(u);
    if (m < 0)
        return single ? bad(u, "pickle stack underflow") : 0;
    int64_t list_at = single ? m : m - 1;
    if (list_at < 0 || u->stack[list_at]->k != V_LIST)
        return bad(u, "APPEND(S) target is not a list");
    for (int64_t i = m + 1; i < u->sp; i++)
        if (!v_append(u, u->stack[list_at], u->stack[i]))
            return 0;
    u->sp = single ? list_at + 1 : m;
    return 1;
}

/* ('storage', <storage type>, key, location, numel) -> a storage reference. */
static int op_binpersid(unpickler *u)
{
    value *pid = pop(u);
    if (!pid)
        return 0;
    if (pid->k == V_TUPLE && pid->n == 6 && pid->items[5]->k != V_NONE)
        return bad(u, "storage views in persistent ids are not supported");
    if (pid->k != V_TUPLE || (pid->n != 5 && pid->n != 6) || pid->items[0]->k != V_STR ||
        strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->k != V_GLOBAL || pid->items[1]->g != G_STORAGE || pid->items[2]->k != V_STR ||
        pid->items[4]->k != V_INT || pid->items[4]->i < 0)
        return bad(u, "persistent id is not ('storage', type, key, location, size[, view])");
    value *s = v_new(u, V_STORAGE);
    if (!s || !(s->s = strdup(pid->items[2]->s)))
        return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
    s->dtype = pid->items[1]->dtype;
    s->elem = pid->items[1]->elem;
    s->unsupported = pid->items[1]->unsupported;
    s->numel = pid->items[4]->i;
    return push(u, s);
}

static int int_tuple(const value *t, int64_t *out, int *n)
{
    if (t->k != V_TUPLE || t->n > LPL_ST_MAX_DIMS)
        return 0;
    for (int64_t i = 0; i < t->n; i++) {
        if (t->items[i]->k != V_INT || t->items[i]->i < 0 || t->items[i]->i > ((int64_t)1 << 40))
            return 0;
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return 1;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static value *rebuild_tensor(unpickler *u, const value *args)
{
    int n_size, n_stride;
    value *t = NULL;
    if (args->k != V_TUPLE || args->n < 6 || args->n > 7 || args->items[0]->k != V_STORAGE ||
        args->items[1]->k != V_INT || args->items[1]->i < 0) {
        bad(u, "_rebuild_tensor_v2 arguments are malformed");
        return NULL;
    }
    if (!(t = v_new(u, V_TENSOR)))
        return NULL;
    t->storage = args->items[0];
    t->offset = args->items[1]->i;
    if (!int_tuple(args->items[2], t->shape, &n_size) || !int_tuple(args->items[3], t->stride, &n_stride) ||
        n_size != n_stride) {
        bad(u, "_rebuild_tensor_v2 size/stride are malformed");
        return NULL;
    }
    t->n_dims = n_size;
    return t;
}

static int op_reduce(unpickler *u)
{
    value *args = pop(u), *fn = args ? pop(u) : NULL;
    if (!fn)
        return 0;
    if (fn->k != V_GLOBAL)
        return bad(u, "REDUCE of something that is not an allowed global");
    if (fn->g == G_ORDERED_DICT) {
        if (args->k != V_TUPLE || args->n != 0)
            return bad(u, "OrderedDict() with arguments");
        return push(u, v_new(u, V_DICT));
    }
    if (fn->g == G_REBUILD_TENSOR_V2)
        return push(u, rebuild_tensor(u, args));
    return bad(u, "a storage type cannot be called");
}

/* BUILD: state on a dict (OrderedDict's _metadata) is accepted and ignored. */
static int op_build(unpickler *u)
{
    value *state = pop(u);
    if (!state)
        return 0;
    if (u->sp == 0 || u->stack[u->sp - 1]->k != V_DICT)
        return bad(u, "BUILD on something other than a dict");
    return 1;
}

/* Runs the pickle to STOP; returns the result value or NULL with err set. */
static value *unpickle(unpickler *u)
{
    while (u->pos < u->n) {
        uint8_t op = u->p[u->pos++];
        int ok;
        switch (op) {
        case 0x80: ok = need(u, 1) && u->p[u->pos] <= 5 ? (u->pos++, 1) : bad(u, "unsupported pickle protocol"); break;
        case 0x95: ok = need(u, 8) ? (u->pos += 8, 1) : 0; break; /* FRAME */
        case '.':
            if (u->sp != 1)
                return bad(u, "pickle ends with a malformed stack"), NULL;
            return u->stack[0];
        case '(': ok = push(u, v_new(u, V_MARK)); break;
        case '}': ok = push(u, v_new(u, V_DICT)); break;
        case ']': ok = push(u, v_new(u, V_LIST)); break;
        case ')': ok = push(u, v_new(u, V_TUPLE)); break;
        case 'N': ok = push(u, v_new(u, V_NONE)); break;
        case 0x88: case 0x89: {
            value *v = v_new(u, V_BOOL);
            if (v)
                v->i = op == 0x88;
            ok = push(u, v);
            break;
        }
        case 'K': ok = need(u, 1) && op_int(u, u->p[u->pos]); u->pos += ok; break;
        case 'M': ok = need(u, 2) && op_int(u, rd16(u->p + u->pos)); u->pos += ok ? 2 : 0; break;
        case 'J': ok = need(u, 4) && op_int(u, (int32_t)rd32(u->p + u->pos)); u->pos += ok ? 4 : 0; break;
        case 0x8a: ok = op_long1(u); break;
        case 'G': {
            ok = need(u, 8);
            if (ok) {
                uint64_t b = 0;
                for (int i = 0; i < 8; i++)
                    b = b << 8 | u->p[u->pos + i];
                value *v = v_new(u, V_FLOAT);
                if (v)
                    memcpy(&v->f, &b, 8);
                u->pos += 8;
                ok = push(u, v);
            }
            break;
        }
        case 'X': ok = op_string(u, 4); break;
        case 0x8c: ok = op_string(u, 1); break;
        case 0x8d: ok = op_string(u, 8); break;
        case 'q': ok = need(u, 1) && memo_put(u, u->p[u->pos]); u->pos += ok; break;
        case 'r': ok = need(u, 4) && memo_put(u, rd32(u->p + u->pos)); u->pos += ok ? 4 : 0; break;
        case 0x94: ok = memo_put(u, (uint64_t)u->memo_len); break;
        case 'h': ok = need(u, 1) && memo_get(u, u->p[u->pos]); u->pos += ok; break;
        case 'j': ok = need(u, 4) && memo_get(u, rd32(u->p + u->pos)); u->pos += ok ? 4 : 0; break;
        case 'c': ok = op_global(u); break;
        case 0x93: ok = op_stack_global(u); break;
        case 't': ok = op_tuple_mark(u); break;
        case 0x85: ok = op_tuple_n(u, 1); break;
        case 0x86: ok = op_tuple_n(u, 2); break;
        case 0x87: ok = op_tuple_n(u, 3); break;
        case 'Q': ok = op_binpersid(u); break;
        case 'R': ok = op_reduce(u); break;
        case 's': ok = op_setitems(u, 1); break;
        case 'u': ok = op_setitems(u, 0); break;
        case 'a': ok = op_appends(u, 1); break;
        case 'e': ok = op_appends(u, 0); break;
        case 'b': ok = op_build(u); break;
        default:
            u->pos--;
            lpl_fail(u->err, LPL_ERR_FORMAT,
                     "%s: pickle opcode 0x%02x at byte %zu is not allowed in a state dict", u->src, op, u->pos);
            return NULL;
        }
        if (!ok)
            return NULL;
    }
    u->short_input = 1;
    bad(u, "pickle is truncated (no STOP)");
    return NULL;
}

/* ================================================================== checkpoint */

/* A storage's bytes: a zip entry, or a record of the legacy stream. */
typedef struct {
    const char *key;
    const uint8_t *data;
    size_t size;
} storage_bytes;

struct lpl_torch_ckpt {
    lpl_mapped file;
    void *copy;
    zip_dir zip;
    int legacy;
    storage_bytes *legacy_st; /* legacy format: storages by key */
    int64_t n_legacy_st;
    char prefix[256];         /* zip format: "<prefix>/" of data.pkl */
    int64_t n;
    lpl_st_tensor *t;
    /* index only (streaming import): no storage bytes, where each tensor lives */
    int index_only;
    lpl_torch_ref *refs;      /* parallel to t */
    lpl_torch_storage *order; /* legacy: storages in file order */
    int64_t n_order;
    size_t consumed;          /* legacy: bytes of the pickles */
    int short_input;          /* index failed because the bytes ended */
};

/* Does the tensor use its storage row-major and densely? */
static int is_contiguous(const value *t)
{
    int64_t expect = 1;
    for (int d = t->n_dims - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect)
            return 0;
        expect *= t->shape[d];
    }
    return 1;
}

/* Finds the bytes of storage key; fills where (a name for messages). */
static int find_storage(const lpl_torch_ckpt *c, const char *key, storage_bytes *out, char *where, size_t wsize)
{
    if (c->legacy) {
        snprintf(where, wsize, "storage '%s'", key);
        for (int64_t i = 0; i < c->n_legacy_st; i++)
            if (!strcmp(c->legacy_st[i].key, key)) {
                *out = c->legacy_st[i];
                return 1;
            }
        return 0;
    }
    char path[512];
    snprintf(path, sizeof path, "%sdata/%s", c->prefix, key);
    snprintf(where, wsize, "storage '%s'", path);
    const zip_entry *e = zip_find(&c->zip, path);
    if (!e)
        return 0;
    out->key = key;
    out->data = e->data;
    out->size = e->size;
    return 1;
}

/* Index mode: the tensor's shape and type, and its storage key and byte offset;
 * the storage is checked against the tensor when its bytes arrive. */
static lpl_status index_tensor(lpl_torch_ckpt *c, const char *name, const value *v, lpl_st_tensor *out,
                               const char *src, lpl_error *err)
{
    const value *s = v->storage;
    if (!is_contiguous(v))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: tensor '%s' is not contiguous", src, name);
    int64_t numel = 1;
    for (int d = 0; d < v->n_dims; d++)
        numel *= v->shape[d];
    if (v->offset > s->numel || numel > s->numel - v->offset)
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "%s: tensor '%s' (offset %lld, %lld elements) is out of range of its storage (%lld elements)",
                        src, name, (long long)v->offset, (long long)numel, (long long)s->numel);
    lpl_torch_ref *r = &c->refs[c->n];
    if (!(out->name = strdup(name)) || !(r->storage = strdup(s->s)))
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: tensor name");
    out->n_dims = v->n_dims;
    memcpy(out->shape, v->shape, sizeof out->shape);
    out->unsupported = s->unsupported;
    out->dtype = s->dtype;
    out->nbytes = s->unsupported ? 0 : (size_t)numel * s->elem;
    r->offset = (uint64_t)v->offset * s->elem;
    return LPL_OK;
}

/* Resolves one state-dict entry to a tensor view over its storage. */
static lpl_status resolve_tensor(lpl_torch_ckpt *c, const char *name, const value *v, lpl_st_tensor *out,
                                 const char *src, lpl_error *err)
{
    if (v->k != V_TENSOR)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: state dict entry '%s' is not a tensor", src, name);
    const value *s = v->storage;
    storage_bytes sb;
    char where[600];
    if (c->index_only)
        return index_tensor(c, name, v, out, src, err);
    if (!find_storage(c, s->s, &sb, where, sizeof where))
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: %s of tensor '%s' is missing from the %s", src, where, name,
                        c->legacy ? "file" : "archive");
    if ((uint64_t)s->numel > sb.size / s->elem)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: %s claims %lld elements but holds %zu bytes", src, where,
                        (long long)s->numel, sb.size);
    if (!is_contiguous(v))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: tensor '%s' is not contiguous", src, name);
    int64_t numel = 1;
    for (int d = 0; d < v->n_dims; d++)
        numel *= v->shape[d];
    if (v->offset > s->numel || numel > s->numel - v->offset)
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "%s: tensor '%s' (offset %lld, %lld elements) is out of range of its storage (%lld elements)",
                        src, name, (long long)v->offset, (long long)numel, (long long)s->numel);
    if (!(out->name = strdup(name)))
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: tensor name");
    out->n_dims = v->n_dims;
    memcpy(out->shape, v->shape, sizeof out->shape);
    out->unsupported = s->unsupported;
    out->dtype = s->dtype;
    if (!s->unsupported) {
        out->data = sb.data + (size_t)v->offset * s->elem;
        out->nbytes = (size_t)numel * s->elem;
    }
    return LPL_OK;
}

/* The tensors of an unpickled state dict. */
static lpl_status collect_tensors(lpl_torch_ckpt *c, const value *root, const char *src, lpl_error *err)
{
    if (root->k != V_DICT)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: the pickle does not hold a state dict (a dict of tensors)", src);
    c->t = lpl_calloc((size_t)(root->n / 2) + 1, sizeof *c->t, "state dict", err);
    if (!c->t)
        return LPL_ERR_NOMEM;
    if (c->index_only && !(c->refs = lpl_calloc((size_t)(root->n / 2) + 1, sizeof *c->refs, "state dict", err)))
        return LPL_ERR_NOMEM;
    for (int64_t i = 0; i + 1 < root->n; i += 2) {
        lpl_status st;
        if (root->items[i]->k != V_STR)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: state dict has a key that is not a string", src);
        for (int64_t k = 0; k < c->n; k++)
            if (!strcmp(c->t[k].name, root->items[i]->s))
                return lpl_fail(err, LPL_ERR_FORMAT, "%s: duplicate tensor '%s'", src, root->items[i]->s);
        if ((st = resolve_tensor(c, root->items[i]->s, root->items[i + 1], &c->t[c->n], src, err)))
            return st;
        c->n++;
    }
    return LPL_OK;
}

static lpl_status load_zip_state_dict(lpl_torch_ckpt *c, const char *src, lpl_error *err)
{
    const zip_entry *pkl = NULL;
    for (int64_t i = 0; i < c->zip.n && !pkl; i++) {
        const char *nm = c->zip.e[i].name, *sl = strrchr(nm, '/');
        if (!strcmp(sl ? sl + 1 : nm, "data.pkl"))
            pkl = &c->zip.e[i];
    }
    if (!pkl)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: archive has no data.pkl (not a torch.save checkpoint)", src);
    size_t plen = strlen(pkl->name) - strlen("data.pkl");
    if (plen >= sizeof c->prefix)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: archive prefix too long", src);
    memcpy(c->prefix, pkl->name, plen);
    c->prefix[plen] = '\0';
    char bo_name[300];
    snprintf(bo_name, sizeof bo_name, "%sbyteorder", c->prefix);
    const zip_entry *bo = zip_find(&c->zip, bo_name);
    if (bo && !(bo->size == 6 && !memcmp(bo->data, "little", 6)))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: byte order is not little-endian", src);
    /* a damaged pickle is refused before it is interpreted */
    if (crc32_of(pkl->data, pkl->size) != pkl->crc)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: %s fails its CRC check (corrupt archive)", src, pkl->name);
    unpickler u = {pkl->data, pkl->size, 0, src, err, NULL, NULL, 0, 0, NULL, 0, 0, 0};
    value *root = unpickle(&u);
    lpl_status st = root ? collect_tensors(c, root, src, err) : (err ? err->code : LPL_ERR_FORMAT);
    v_free_all(&u);
    return st;
}

/* ------------------------------------------------------------------ legacy (torch < 1.6) */

/* The first pickle of a legacy file: the magic number 0x1950a86a20f9469cfc6c as LONG1. */
static const uint8_t legacy_magic[15] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                         0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

int lpl_torch_is_legacy(const void *data, size_t size)
{
    return size >= sizeof legacy_magic && !memcmp(data, legacy_magic, sizeof legacy_magic);
}

/* Value of key in a dict value, or NULL. */
static const value *dict_get(const value *d, const char *key)
{
    for (int64_t i = 0; d->k == V_DICT && i + 1 < d->n; i += 2)
        if (d->items[i]->k == V_STR && !strcmp(d->items[i]->s, key))
            return d->items[i + 1];
    return NULL;
}

/* The storage type (element size) a key was declared with in the main pickle. */
static const value *declared_storage(const unpickler *u, const char *key)
{
    for (const value *v = u->all; v; v = v->next_alloc)
        if (v->k == V_STORAGE && !strcmp(v->s, key))
            return v;
    return NULL;
}

/* Key i of the legacy storage list, as its declaration in the main pickle (whose s is
 * the key); NULL, with err set, when the key has none. */
static const value *legacy_key(const value *keys, int64_t i, const unpickler *main_u, const char *src,
                               lpl_error *err)
{
    const value *k = keys->items[i];
    const value *decl = k->k == V_STR ? declared_storage(main_u, k->s) : NULL;
    if (!decl)
        lpl_fail(err, LPL_ERR_FORMAT, "%s: legacy checkpoint: storage %lld has no declared type", src, (long long)i);
    return decl;
}

/* After the pickles: for each key of the list, int64 element count then the raw bytes. */
static lpl_status read_legacy_storages(lpl_torch_ckpt *c, const uint8_t *p, size_t size, size_t pos,
                                       const value *keys, const unpickler *main_u, const char *src, lpl_error *err)
{
    if (keys->k != V_LIST)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: legacy checkpoint: storage key list missing", src);
    c->legacy_st = lpl_calloc((size_t)keys->n + 1, sizeof *c->legacy_st, "storages", err);
    if (!c->legacy_st)
        return LPL_ERR_NOMEM;
    for (int64_t i = 0; i < keys->n; i++) {
        const value *k = legacy_key(keys, i, main_u, src, err);
        if (!k)
            return LPL_ERR_FORMAT;
        if (size - pos < 8)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: storage '%s' header at byte %zu", src, k->s, pos);
        uint64_t numel = rd64(p + pos);
        pos += 8;
        if (numel > (size - pos) / k->elem)
            return lpl_fail(err, LPL_ERR_FORMAT,
                            "%s: truncated: storage '%s' of %llu elements runs past the end of the file", src, k->s,
                            (unsigned long long)numel);
        storage_bytes *sb = &c->legacy_st[c->n_legacy_st++];
        sb->key = strdup(k->s);
        if (!sb->key)
            return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: storage key");
        sb->data = p + pos;
        sb->size = (size_t)numel * k->elem;
        pos += sb->size;
    }
    return LPL_OK;
}

/* Index mode: the storage keys in file order with their element sizes. */
static lpl_status legacy_order(lpl_torch_ckpt *c, const value *keys, const unpickler *main_u, const char *src,
                               lpl_error *err)
{
    if (keys->k != V_LIST)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: legacy checkpoint: storage key list missing", src);
    c->order = lpl_calloc((size_t)keys->n + 1, sizeof *c->order, "storages", err);
    if (!c->order)
        return LPL_ERR_NOMEM;
    for (int64_t i = 0; i < keys->n; i++) {
        const value *k = legacy_key(keys, i, main_u, src, err);
        if (!k)
            return LPL_ERR_FORMAT;
        if (!(c->order[i].key = strdup(k->s)))
            return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: storage key");
        c->order[i].elem = k->elem;
        c->n_order = i + 1;
    }
    return LPL_OK;
}

/* magic, protocol version, system info, the state dict, the storage keys, storages. */
static lpl_status load_legacy(lpl_torch_ckpt *c, const uint8_t *p, size_t size, const char *src, lpl_error *err)
{
    unpickler u[4];
    memset(u, 0, sizeof u);
    size_t pos = sizeof legacy_magic;
    value *v[4] = {NULL};
    lpl_status st = LPL_OK;
    for (int i = 0; i < 4; i++) {
        u[i] = (unpickler){p, size, pos, src, err, NULL, NULL, 0, 0, NULL, 0, 0, 0};
        if (!(v[i] = unpickle(&u[i]))) {
            st = err ? err->code : LPL_ERR_FORMAT;
            goto done;
        }
        pos = u[i].pos;
    }
    if (v[0]->k != V_INT || v[0]->i != 1001) {
        st = lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: legacy checkpoint protocol is not 1001", src);
        goto done;
    }
    const value *le = dict_get(v[1], "little_endian");
    if (v[1]->k != V_DICT || (le && !(le->k == V_BOOL && le->i))) {
        st = lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: legacy checkpoint is not little-endian", src);
        goto done;
    }
    if (c->index_only) {
        c->consumed = pos;
        st = legacy_order(c, v[3], &u[2], src, err);
    } else {
        st = read_legacy_storages(c, p, size, pos, v[3], &u[2], src, err);
    }
    if (st == LPL_OK)
        st = collect_tensors(c, v[2], src, err);
done:
    for (int i = 0; i < 4 && c->index_only && st != LPL_OK; i++)
        c->short_input |= u[i].short_input;
    for (int i = 0; i < 4; i++)
        v_free_all(&u[i]);
    return st;
}

int lpl_torch_is_checkpoint(const void *data, size_t size)
{
    return lpl_torch_is_zip(data, size) || lpl_torch_is_legacy(data, size);
}

static lpl_torch_ckpt *open_bytes(lpl_torch_ckpt *c, const uint8_t *p, size_t size, const char *src,
                                  lpl_error *err)
{
    if (lpl_torch_is_legacy(p, size)) {
        c->legacy = 1;
        if (load_legacy(c, p, size, src, err) != LPL_OK)
            goto fail;
        return c;
    }
    if (!lpl_torch_is_zip(p, size)) {
        lpl_fail(err, LPL_ERR_FORMAT, "%s: not a PyTorch checkpoint (neither a zip archive nor the legacy format)", src);
        goto fail;
    }
    if (zip_open(p, size, &c->zip, src, err) != LPL_OK || load_zip_state_dict(c, src, err) != LPL_OK)
        goto fail;
    return c;
fail:
    lpl_torch_close(c);
    return NULL;
}

lpl_torch_ckpt *lpl_torch_open(const char *path, lpl_error *err)
{
    lpl_torch_ckpt *c = lpl_calloc(1, sizeof *c, "torch checkpoint", err);
    if (!c)
        return NULL;
    if (lpl_map_file(path, &c->file, err) != LPL_OK) {
        free(c);
        return NULL;
    }
    return open_bytes(c, c->file.data, c->file.size, path, err);
}

lpl_torch_ckpt *lpl_torch_open_memory(const void *data, size_t size, int copy, lpl_error *err)
{
    lpl_torch_ckpt *c = lpl_calloc(1, sizeof *c, "torch checkpoint", err);
    if (!c)
        return NULL;
    if (copy) {
        if (!(c->copy = lpl_malloc(size, "torch checkpoint copy", err))) {
            free(c);
            return NULL;
        }
        memcpy(c->copy, data, size);
        data = c->copy;
    }
    return open_bytes(c, data, size, "<memory>", err);
}

void lpl_torch_close(lpl_torch_ckpt *c)
{
    if (!c)
        return;
    for (int64_t i = 0; i < c->n; i++) {
        free((char *)c->t[i].name);
        if (c->refs)
            free((char *)c->refs[i].storage);
    }
    free(c->t);
    free(c->refs);
    for (int64_t i = 0; i < c->n_order; i++)
        free((char *)c->order[i].key);
    free(c->order);
    zip_free(&c->zip);
    for (int64_t i = 0; i < c->n_legacy_st; i++)
        free((char *)c->legacy_st[i].key);
    free(c->legacy_st);
    lpl_unmap_file(&c->file);
    free(c->copy);
    free(c);
}

int64_t lpl_torch_n_tensors(const lpl_torch_ckpt *c) { return c->n; }
const lpl_st_tensor *lpl_torch_tensors(const lpl_torch_ckpt *c) { return c->t; }

const lpl_st_tensor *lpl_torch_find(const lpl_torch_ckpt *c, const char *name)
{
    for (int64_t i = 0; i < c->n; i++)
        if (!strcmp(c->t[i].name, name))
            return &c->t[i];
    return NULL;
}

/* ------------------------------------------------------------------ streaming import */

lpl_torch_ckpt *lpl_torch_index_pickle(const void *pkl, size_t n, lpl_error *err)
{
    lpl_torch_ckpt *c = lpl_calloc(1, sizeof *c, "torch checkpoint", err);
    if (!c)
        return NULL;
    c->index_only = 1;
    unpickler u = {pkl, n, 0, "data.pkl", err, NULL, NULL, 0, 0, NULL, 0, 0, 0};
    value *root = unpickle(&u);
    lpl_status st = root ? collect_tensors(c, root, "data.pkl", err) : (err ? err->code : LPL_ERR_FORMAT);
    v_free_all(&u);
    if (st != LPL_OK) {
        lpl_torch_close(c);
        return NULL;
    }
    return c;
}

lpl_torch_ckpt *lpl_torch_index_legacy(const void *p, size_t n, size_t *consumed, int *more, lpl_error *err)
{
    *more = 0;
    lpl_torch_ckpt *c = lpl_calloc(1, sizeof *c, "torch checkpoint", err);
    if (!c)
        return NULL;
    c->index_only = 1;
    c->legacy = 1;
    if (n < sizeof legacy_magic || load_legacy(c, p, n, "pytorch_model.bin", err) != LPL_OK) {
        *more = n < sizeof legacy_magic || c->short_input;
        lpl_torch_close(c);
        return NULL;
    }
    *consumed = c->consumed;
    return c;
}

const lpl_torch_ref *lpl_torch_refs(const lpl_torch_ckpt *c) { return c->refs; }
int64_t lpl_torch_n_storages(const lpl_torch_ckpt *c) { return c->n_order; }
const lpl_torch_storage *lpl_torch_storages(const lpl_torch_ckpt *c) { return c->order; }

uint32_t lpl_zip_crc32(const void *p, size_t n) { return crc32_of(p, n); }

lpl_status lpl_zip_local_header(const void *data, size_t n, lpl_zip_local *out, lpl_error *err)
{
    const uint8_t *p = data;
    memset(out, 0, sizeof *out);
    if (n < 4)
        return LPL_OK;
    uint32_t sig = rd32(p);
    if (sig == 0x02014b50 || sig == 0x06054b50 || sig == 0x06064b50) {
        out->complete = 1;
        out->end = 1; /* the central directory: no more entries */
        return LPL_OK;
    }
    if (sig != 0x04034b50)
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: no zip entry where one should start");
    if (n < 30)
        return LPL_OK;
    uint16_t flags = rd16(p + 6), method = rd16(p + 8);
    uint64_t csize = rd32(p + 18), usize = rd32(p + 22), loff = 0;
    size_t nlen = rd16(p + 26), xlen = rd16(p + 28);
    if (n < 30 + nlen + xlen)
        return LPL_OK;
    if (nlen >= sizeof out->name || memchr(p + 30, '\0', nlen) || !lpl_utf8_validate(p + 30, nlen, NULL))
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: a zip entry name is not valid UTF-8 or too long");
    memcpy(out->name, p + 30, nlen);
    out->name[nlen] = '\0';
    zip64_extra(p + 30 + nlen, xlen, &usize, &csize, &loff);
    if (flags & 1)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "pytorch_model.bin: zip entry '%s' is encrypted", out->name);
    if (method != 0)
        return lpl_fail(err, LPL_ERR_UNSUPPORTED,
                        "pytorch_model.bin: zip entry '%s' is compressed (method %u); only stored entries are supported",
                        out->name, method);
    out->sizes_later = (flags & 8) != 0; /* torch.save: sizes in the central directory only */
    if (csize != usize && !out->sizes_later)
        return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: stored zip entry '%s' has different sizes", out->name);
    out->complete = 1;
    out->header_len = 30 + nlen + xlen;
    out->size = usize;
    out->crc = rd32(p + 14);
    return LPL_OK;
}

lpl_status lpl_zip_read_tail(const void *tail, size_t n, uint64_t file_size, lpl_zip_dir *dir, lpl_error *err)
{
    const uint8_t *p = tail;
    uint64_t count = 0, cd_size = 0, cd_off = 0, base = file_size - n;
    memset(dir, 0, sizeof *dir);
    if (n > file_size)
        return lpl_fail(err, LPL_ERR_INVALID, "zip tail: %zu bytes of a %llu-byte file", n, (unsigned long long)file_size);
    lpl_status s = zip_find_cd(p, n, base, &count, &cd_size, &cd_off, "pytorch_model.bin (its end)", err);
    if (s != LPL_OK)
        return s;
    if (!(dir->e = lpl_calloc((size_t)count + 1, sizeof *dir->e, "zip directory", err)))
        return LPL_ERR_NOMEM;
    dir->cd_off = cd_off;
    size_t c = (size_t)(cd_off - base), end = c + (size_t)cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - c < 46 || rd32(p + c) != 0x02014b50)
            return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: bad central directory entry %llu",
                            (unsigned long long)i);
        uint64_t csize = rd32(p + c + 20), usize = rd32(p + c + 24), loff = rd32(p + c + 42);
        size_t nlen = rd16(p + c + 28), xlen = rd16(p + c + 30), clen = rd16(p + c + 32);
        if (end - c - 46 < nlen + xlen + clen || nlen >= sizeof dir->e[i].name)
            return lpl_fail(err, LPL_ERR_FORMAT, "pytorch_model.bin: central directory entry %llu is malformed",
                            (unsigned long long)i);
        zip64_extra(p + c + 46 + nlen, xlen, &usize, &csize, &loff);
        lpl_zip_dir_entry *d = &dir->e[i];
        memcpy(d->name, p + c + 46, nlen);
        d->name[nlen] = '\0';
        d->offset = loff;
        d->size = usize;
        d->crc = rd32(p + c + 16);
        dir->n = (int64_t)i + 1;
        c += 46 + nlen + xlen + clen;
    }
    return LPL_OK;
}

void lpl_zip_dir_free(lpl_zip_dir *dir)
{
    free(dir->e);
    memset(dir, 0, sizeof *dir);
}
