/* The restricted unpickler (pickle.h): the opcodes a state dict's pickle uses, over
 * plain values. */
#include "pickle.h"

#include <stdlib.h>
#include <string.h>

#include "le_bytes.h"
#include "lpl/core/utf8.h"

void lpl_unpickler_init(lpl_unpickler *u, const void *p, size_t n, size_t pos, const char *src, lpl_error *err)
{
    memset(u, 0, sizeof *u);
    u->p = p;
    u->n = n;
    u->pos = pos;
    u->src = src;
    u->err = err;
}

static lpl_pval *v_new(lpl_unpickler *u, lpl_pval_kind k)
{
    lpl_pval *v = calloc(1, sizeof *v);
    if (!v) {
        lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler");
        return NULL;
    }
    v->k = k;
    v->next_alloc = u->all;
    u->all = v;
    return v;
}

void lpl_unpickler_free(lpl_unpickler *u)
{
    for (lpl_pval *v = u->all; v;) {
        lpl_pval *nx = v->next_alloc;
        free(v->s);
        free(v->items);
        free(v);
        v = nx;
    }
    u->all = NULL;
    free(u->stack);
    free(u->memo);
}

static int v_append(lpl_unpickler *u, lpl_pval *c, lpl_pval *x)
{
    if (c->n == c->cap) {
        int64_t cap = c->cap ? c->cap * 2 : 8;
        lpl_pval **it = realloc(c->items, (size_t)cap * sizeof *it);
        if (!it)
            return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
        c->items = it;
        c->cap = cap;
    }
    c->items[c->n++] = x;
    return 1;
}

static int bad(lpl_unpickler *u, const char *what)
{
    lpl_fail(u->err, LPL_ERR_FORMAT, "%s: %s at byte %zu", u->src, what, u->pos);
    return 0;
}

static int push(lpl_unpickler *u, lpl_pval *v)
{
    if (!v)
        return 0;
    if (u->sp == u->stack_cap) {
        int64_t cap = u->stack_cap ? u->stack_cap * 2 : 64;
        lpl_pval **s = realloc(u->stack, (size_t)cap * sizeof *s);
        if (!s)
            return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
        u->stack = s;
        u->stack_cap = cap;
    }
    u->stack[u->sp++] = v;
    return 1;
}

static lpl_pval *pop(lpl_unpickler *u)
{
    if (u->sp == 0 || u->stack[u->sp - 1]->k == LPL_PV_MARK) {
        bad(u, "pickle stack underflow");
        return NULL;
    }
    return u->stack[--u->sp];
}

/* Index of the topmost mark, or -1 with err set. */
static int64_t find_mark(lpl_unpickler *u)
{
    for (int64_t i = u->sp - 1; i >= 0; i--)
        if (u->stack[i]->k == LPL_PV_MARK)
            return i;
    bad(u, "pickle has no mark");
    return -1;
}

static int need(lpl_unpickler *u, size_t k)
{
    if (k <= u->n - u->pos)
        return 1;
    u->short_input = 1;
    return bad(u, "pickle is truncated");
}

/* Resolves "module name" to an allowed global, or refuses naming it. */
static lpl_pval *make_global(lpl_unpickler *u, const char *mod, const char *name)
{
    static const struct { const char *name; lpl_dtype t; size_t elem; const char *unsupported; } storages[] = {
        {"FloatStorage", LPL_F32, 4, NULL},     {"HalfStorage", LPL_F16, 2, NULL},
        {"BFloat16Storage", LPL_BF16, 2, NULL}, {"BoolStorage", LPL_F32, 1, "bool"},
        {"ByteStorage", LPL_F32, 1, "uint8"},   {"LongStorage", LPL_F32, 8, "int64"},
        {"IntStorage", LPL_F32, 4, "int32"},    {"DoubleStorage", LPL_F32, 8, "float64"},
    };
    lpl_pval *v = NULL;
    if (!strcmp(mod, "collections") && !strcmp(name, "OrderedDict")) {
        if ((v = v_new(u, LPL_PV_GLOBAL)))
            v->g = LPL_PG_ORDERED_DICT;
        return v;
    }
    if (!strcmp(mod, "torch._utils") && !strcmp(name, "_rebuild_tensor_v2")) {
        if ((v = v_new(u, LPL_PV_GLOBAL)))
            v->g = LPL_PG_REBUILD_TENSOR_V2;
        return v;
    }
    if (!strcmp(mod, "torch"))
        for (size_t i = 0; i < sizeof storages / sizeof storages[0]; i++)
            if (!strcmp(name, storages[i].name)) {
                if ((v = v_new(u, LPL_PV_GLOBAL))) {
                    v->g = LPL_PG_STORAGE;
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
static char *read_line(lpl_unpickler *u)
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

static int op_global(lpl_unpickler *u)
{
    char *mod = read_line(u);
    char *name = mod ? read_line(u) : NULL;
    int ok = name && push(u, make_global(u, mod, name));
    free(mod);
    free(name);
    return ok;
}

static int op_stack_global(lpl_unpickler *u)
{
    lpl_pval *name = pop(u), *mod = name ? pop(u) : NULL;
    if (!mod)
        return 0;
    if (mod->k != LPL_PV_STR || name->k != LPL_PV_STR)
        return bad(u, "STACK_GLOBAL needs two strings");
    return push(u, make_global(u, mod->s, name->s));
}

static int op_string(lpl_unpickler *u, size_t lenbytes)
{
    if (!need(u, lenbytes))
        return 0;
    uint64_t len = lenbytes == 1 ? u->p[u->pos] : lenbytes == 4 ? lpl_le32(u->p + u->pos) : lpl_le64(u->p + u->pos);
    u->pos += lenbytes;
    if (len > u->n - u->pos) {
        u->short_input = 1;
        return bad(u, "string runs past the end of the pickle");
    }
    if (!lpl_utf8_validate(u->p + u->pos, (size_t)len, NULL))
        return bad(u, "string is not valid UTF-8");
    lpl_pval *v = v_new(u, LPL_PV_STR);
    if (!v || !(v->s = malloc((size_t)len + 1)))
        return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
    memcpy(v->s, u->p + u->pos, (size_t)len);
    v->s[len] = '\0';
    if (strlen(v->s) != len)
        return bad(u, "string contains a NUL byte");
    u->pos += (size_t)len;
    return push(u, v);
}

static int op_int(lpl_unpickler *u, int64_t x)
{
    lpl_pval *v = v_new(u, LPL_PV_INT);
    if (v)
        v->i = x;
    return push(u, v);
}

static int op_long1(lpl_unpickler *u)
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

static int op_tuple_n(lpl_unpickler *u, int64_t k)
{
    if (u->sp < k)
        return bad(u, "pickle stack underflow");
    lpl_pval *t = v_new(u, LPL_PV_TUPLE);
    if (!t)
        return 0;
    for (int64_t i = u->sp - k; i < u->sp; i++) {
        if (u->stack[i]->k == LPL_PV_MARK)
            return bad(u, "pickle stack underflow");
        if (!v_append(u, t, u->stack[i]))
            return 0;
    }
    u->sp -= k;
    return push(u, t);
}

static int op_tuple_mark(lpl_unpickler *u)
{
    int64_t m = find_mark(u);
    if (m < 0)
        return 0;
    int64_t k = u->sp - m - 1;
    lpl_pval *t = v_new(u, LPL_PV_TUPLE);
    if (!t)
        return 0;
    for (int64_t i = m + 1; i < u->sp; i++)
        if (!v_append(u, t, u->stack[i]))
            return 0;
    u->sp -= k + 1;
    return push(u, t);
}

static int memo_put(lpl_unpickler *u, uint64_t idx)
{
    if (u->sp == 0 || u->stack[u->sp - 1]->k == LPL_PV_MARK)
        return bad(u, "memo store with an empty stack");
    if (idx > u->n)
        return bad(u, "memo index out of range");
    if ((int64_t)idx >= u->memo_cap) {
        int64_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= (int64_t)idx)
            cap *= 2;
        lpl_pval **m = realloc(u->memo, (size_t)cap * sizeof *m);
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

static int memo_get(lpl_unpickler *u, uint64_t idx)
{
    if ((int64_t)idx >= u->memo_cap || !u->memo[idx])
        return bad(u, "memo index not set");
    return push(u, u->memo[idx]);
}

static int op_setitems(lpl_unpickler *u, int single)
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
    if (dict_at < 0 || u->stack[dict_at]->k != LPL_PV_DICT)
        return bad(u, "SETITEM(S) target is not a dict");
    if ((u->sp - first) % 2)
        return bad(u, "SETITEMS with an odd number of items");
    lpl_pval *d = u->stack[dict_at];
    for (int64_t i = first; i < u->sp; i++) {
        if (u->stack[i]->k == LPL_PV_MARK)
            return bad(u, "unexpected mark");
        if (!v_append(u, d, u->stack[i]))
            return 0;
    }
    u->sp = single ? dict_at + 1 : m;
    return 1;
}

static int op_appends(lpl_unpickler *u, int single)
{
    int64_t m = single ? u->sp - 2 : find_mark(u);
    if (m < 0)
        return single ? bad(u, "pickle stack underflow") : 0;
    int64_t list_at = single ? m : m - 1;
    if (list_at < 0 || u->stack[list_at]->k != LPL_PV_LIST)
        return bad(u, "APPEND(S) target is not a list");
    for (int64_t i = m + 1; i < u->sp; i++)
        if (!v_append(u, u->stack[list_at], u->stack[i]))
            return 0;
    u->sp = single ? list_at + 1 : m;
    return 1;
}

/* ('storage', <storage type>, key, location, numel) -> a storage reference. */
static int op_binpersid(lpl_unpickler *u)
{
    lpl_pval *pid = pop(u);
    if (!pid)
        return 0;
    if (pid->k == LPL_PV_TUPLE && pid->n == 6 && pid->items[5]->k != LPL_PV_NONE)
        return bad(u, "storage views in persistent ids are not supported");
    if (pid->k != LPL_PV_TUPLE || (pid->n != 5 && pid->n != 6) || pid->items[0]->k != LPL_PV_STR ||
        strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->k != LPL_PV_GLOBAL || pid->items[1]->g != LPL_PG_STORAGE || pid->items[2]->k != LPL_PV_STR ||
        pid->items[4]->k != LPL_PV_INT || pid->items[4]->i < 0)
        return bad(u, "persistent id is not ('storage', type, key, location, size[, view])");
    lpl_pval *s = v_new(u, LPL_PV_STORAGE);
    if (!s || !(s->s = strdup(pid->items[2]->s)))
        return lpl_fail(u->err, LPL_ERR_NOMEM, "out of memory: unpickler"), 0;
    s->dtype = pid->items[1]->dtype;
    s->elem = pid->items[1]->elem;
    s->unsupported = pid->items[1]->unsupported;
    s->numel = pid->items[4]->i;
    return push(u, s);
}

static int int_tuple(const lpl_pval *t, int64_t *out, int *n)
{
    if (t->k != LPL_PV_TUPLE || t->n > LPL_ST_MAX_DIMS)
        return 0;
    for (int64_t i = 0; i < t->n; i++) {
        if (t->items[i]->k != LPL_PV_INT || t->items[i]->i < 0 || t->items[i]->i > ((int64_t)1 << 40))
            return 0;
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return 1;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static lpl_pval *rebuild_tensor(lpl_unpickler *u, const lpl_pval *args)
{
    int n_size, n_stride;
    lpl_pval *t = NULL;
    if (args->k != LPL_PV_TUPLE || args->n < 6 || args->n > 7 || args->items[0]->k != LPL_PV_STORAGE ||
        args->items[1]->k != LPL_PV_INT || args->items[1]->i < 0) {
        bad(u, "_rebuild_tensor_v2 arguments are malformed");
        return NULL;
    }
    if (!(t = v_new(u, LPL_PV_TENSOR)))
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

static int op_reduce(lpl_unpickler *u)
{
    lpl_pval *args = pop(u), *fn = args ? pop(u) : NULL;
    if (!fn)
        return 0;
    if (fn->k != LPL_PV_GLOBAL)
        return bad(u, "REDUCE of something that is not an allowed global");
    if (fn->g == LPL_PG_ORDERED_DICT) {
        if (args->k != LPL_PV_TUPLE || args->n != 0)
            return bad(u, "OrderedDict() with arguments");
        return push(u, v_new(u, LPL_PV_DICT));
    }
    if (fn->g == LPL_PG_REBUILD_TENSOR_V2)
        return push(u, rebuild_tensor(u, args));
    return bad(u, "a storage type cannot be called");
}

/* BUILD: state on a dict (OrderedDict's _metadata) is accepted and ignored. */
static int op_build(lpl_unpickler *u)
{
    lpl_pval *state = pop(u);
    if (!state)
        return 0;
    if (u->sp == 0 || u->stack[u->sp - 1]->k != LPL_PV_DICT)
        return bad(u, "BUILD on something other than a dict");
    return 1;
}

/* Runs the pickle to STOP; returns the result value or NULL with err set. */
lpl_pval *lpl_unpickle(lpl_unpickler *u)
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
        case '(': ok = push(u, v_new(u, LPL_PV_MARK)); break;
        case '}': ok = push(u, v_new(u, LPL_PV_DICT)); break;
        case ']': ok = push(u, v_new(u, LPL_PV_LIST)); break;
        case ')': ok = push(u, v_new(u, LPL_PV_TUPLE)); break;
        case 'N': ok = push(u, v_new(u, LPL_PV_NONE)); break;
        case 0x88: case 0x89: {
            lpl_pval *v = v_new(u, LPL_PV_BOOL);
            if (v)
                v->i = op == 0x88;
            ok = push(u, v);
            break;
        }
        case 'K': ok = need(u, 1) && op_int(u, u->p[u->pos]); u->pos += ok; break;
        case 'M': ok = need(u, 2) && op_int(u, lpl_le16(u->p + u->pos)); u->pos += ok ? 2 : 0; break;
        case 'J': ok = need(u, 4) && op_int(u, (int32_t)lpl_le32(u->p + u->pos)); u->pos += ok ? 4 : 0; break;
        case 0x8a: ok = op_long1(u); break;
        case 'G': {
            ok = need(u, 8);
            if (ok) {
                uint64_t b = 0;
                for (int i = 0; i < 8; i++)
                    b = b << 8 | u->p[u->pos + i];
                lpl_pval *v = v_new(u, LPL_PV_FLOAT);
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
        case 'r': ok = need(u, 4) && memo_put(u, lpl_le32(u->p + u->pos)); u->pos += ok ? 4 : 0; break;
        case 0x94: ok = memo_put(u, (uint64_t)u->memo_len); break;
        case 'h': ok = need(u, 1) && memo_get(u, u->p[u->pos]); u->pos += ok; break;
        case 'j': ok = need(u, 4) && memo_get(u, lpl_le32(u->p + u->pos)); u->pos += ok ? 4 : 0; break;
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

/* Value of key in a dict value, or NULL. */
const lpl_pval *lpl_pval_dict_get(const lpl_pval *d, const char *key)
{
    for (int64_t i = 0; d->k == LPL_PV_DICT && i + 1 < d->n; i += 2)
        if (d->items[i]->k == LPL_PV_STR && !strcmp(d->items[i]->s, key))
            return d->items[i + 1];
    return NULL;
}

/* The storage type (element size) a key was declared with in the main pickle. */
const lpl_pval *lpl_unpickler_storage(const lpl_unpickler *u, const char *key)
{
    for (const lpl_pval *v = u->all; v; v = v->next_alloc)
        if (v->k == LPL_PV_STORAGE && !strcmp(v->s, key))
            return v;
    return NULL;
}
