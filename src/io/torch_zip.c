/* PyTorch checkpoints (lpl/io/torch_zip.h): a state dict's tensors from a torch.save
 * zip (src/io/zip.h) or the legacy stream, read by the restricted unpickler
 * (src/io/pickle.h); whole files mapped or in memory, and the index of tensors and
 * storages that the streamed importer (src/io/hf_stream.c) works from. */
#include "lpl/io/torch_zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "le_bytes.h"
#include "lpl/core/files.h"
#include "pickle.h"
#include "zip.h"

int lpl_torch_is_zip(const void *data, size_t size)
{
    return size >= 4 && !memcmp(data, "PK\003\004", 4);
}

/* A storage's bytes: a zip entry, or a record of the legacy stream. */
typedef struct {
    const char *key;
    const uint8_t *data;
    size_t size;
} storage_bytes;

struct lpl_torch_ckpt {
    lpl_mapped file;
    void *copy;
    lpl_zip_archive zip;
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
static int is_contiguous(const lpl_pval *t)
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
    const lpl_zip_entry *e = lpl_zip_find(&c->zip, path);
    if (!e)
        return 0;
    out->key = key;
    out->data = e->data;
    out->size = e->size;
    return 1;
}

/* The checks and fields a tensor view needs, with or without its storage's bytes:
 * contiguous, within its storage; name, shape and type filled in, *numel its size. */
static lpl_status tensor_view(const lpl_pval *v, const char *name, lpl_st_tensor *out, int64_t *numel,
                              const char *src, lpl_error *err)
{
    const lpl_pval *s = v->storage;
    if (!is_contiguous(v))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: tensor '%s' is not contiguous", src, name);
    *numel = 1;
    for (int d = 0; d < v->n_dims; d++)
        *numel *= v->shape[d];
    if (v->offset > s->numel || *numel > s->numel - v->offset)
        return lpl_fail(err, LPL_ERR_FORMAT,
                        "%s: tensor '%s' (offset %lld, %lld elements) is out of range of its storage (%lld elements)",
                        src, name, (long long)v->offset, (long long)*numel, (long long)s->numel);
    if (!(out->name = strdup(name)))
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: tensor name");
    out->n_dims = v->n_dims;
    memcpy(out->shape, v->shape, sizeof out->shape);
    out->unsupported = s->unsupported;
    out->dtype = s->dtype;
    return LPL_OK;
}

/* Index mode: the tensor's shape and type, and its storage key and byte offset;
 * the storage is checked against the tensor when its bytes arrive. */
static lpl_status index_tensor(lpl_torch_ckpt *c, const char *name, const lpl_pval *v, lpl_st_tensor *out,
                               const char *src, lpl_error *err)
{
    const lpl_pval *s = v->storage;
    int64_t numel;
    lpl_status st = tensor_view(v, name, out, &numel, src, err);
    if (st != LPL_OK)
        return st;
    lpl_torch_ref *r = &c->refs[c->n];
    if (!(r->storage = strdup(s->s)))
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: tensor name");
    out->nbytes = s->unsupported ? 0 : (size_t)numel * s->elem;
    r->offset = (uint64_t)v->offset * s->elem;
    return LPL_OK;
}

/* Resolves one state-dict entry to a tensor view over its storage. */
static lpl_status resolve_tensor(lpl_torch_ckpt *c, const char *name, const lpl_pval *v, lpl_st_tensor *out,
                                 const char *src, lpl_error *err)
{
    if (v->k != LPL_PV_TENSOR)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: state dict entry '%s' is not a tensor", src, name);
    const lpl_pval *s = v->storage;
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
    int64_t numel;
    lpl_status st = tensor_view(v, name, out, &numel, src, err);
    if (st == LPL_OK && !s->unsupported) {
        out->data = sb.data + (size_t)v->offset * s->elem;
        out->nbytes = (size_t)numel * s->elem;
    }
    return st;
}

/* The tensors of an unpickled state dict. */
static lpl_status collect_tensors(lpl_torch_ckpt *c, const lpl_pval *root, const char *src, lpl_error *err)
{
    if (root->k != LPL_PV_DICT)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: the pickle does not hold a state dict (a dict of tensors)", src);
    c->t = lpl_calloc((size_t)(root->n / 2) + 1, sizeof *c->t, "state dict", err);
    if (!c->t)
        return LPL_ERR_NOMEM;
    if (c->index_only && !(c->refs = lpl_calloc((size_t)(root->n / 2) + 1, sizeof *c->refs, "state dict", err)))
        return LPL_ERR_NOMEM;
    for (int64_t i = 0; i + 1 < root->n; i += 2) {
        lpl_status st;
        if (root->items[i]->k != LPL_PV_STR)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: state dict has a key that is not a string", src);
        if (lpl_st_find(c->t, c->n, root->items[i]->s))
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: duplicate tensor '%s'", src, root->items[i]->s);
        if ((st = resolve_tensor(c, root->items[i]->s, root->items[i + 1], &c->t[c->n], src, err)))
            return st;
        c->n++;
    }
    return LPL_OK;
}

static lpl_status load_zip_state_dict(lpl_torch_ckpt *c, const char *src, lpl_error *err)
{
    const lpl_zip_entry *pkl = NULL;
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
    const lpl_zip_entry *bo = lpl_zip_find(&c->zip, bo_name);
    if (bo && !(bo->size == 6 && !memcmp(bo->data, "little", 6)))
        return lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: byte order is not little-endian", src);
    /* a damaged pickle is refused before it is interpreted */
    if (lpl_zip_crc32(pkl->data, pkl->size) != pkl->crc)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: %s fails its CRC check (corrupt archive)", src, pkl->name);
    lpl_unpickler u;
    lpl_unpickler_init(&u, pkl->data, pkl->size, 0, src, err);
    lpl_pval *root = lpl_unpickle(&u);
    lpl_status st = root ? collect_tensors(c, root, src, err) : (err ? err->code : LPL_ERR_FORMAT);
    lpl_unpickler_free(&u);
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

/* Key i of the legacy storage list, as its declaration in the main pickle (whose s is
 * the key); NULL, with err set, when the key has none. */
static const lpl_pval *legacy_key(const lpl_pval *keys, int64_t i, const lpl_unpickler *main_u, const char *src,
                               lpl_error *err)
{
    const lpl_pval *k = keys->items[i];
    const lpl_pval *decl = k->k == LPL_PV_STR ? lpl_unpickler_storage(main_u, k->s) : NULL;
    if (!decl)
        lpl_fail(err, LPL_ERR_FORMAT, "%s: legacy checkpoint: storage %lld has no declared type", src, (long long)i);
    return decl;
}

/* After the pickles: for each key of the list, int64 element count then the raw bytes. */
static lpl_status read_legacy_storages(lpl_torch_ckpt *c, const uint8_t *p, size_t size, size_t pos,
                                       const lpl_pval *keys, const lpl_unpickler *main_u, const char *src, lpl_error *err)
{
    if (keys->k != LPL_PV_LIST)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: legacy checkpoint: storage key list missing", src);
    c->legacy_st = lpl_calloc((size_t)keys->n + 1, sizeof *c->legacy_st, "storages", err);
    if (!c->legacy_st)
        return LPL_ERR_NOMEM;
    for (int64_t i = 0; i < keys->n; i++) {
        const lpl_pval *k = legacy_key(keys, i, main_u, src, err);
        if (!k)
            return LPL_ERR_FORMAT;
        if (size - pos < 8)
            return lpl_fail(err, LPL_ERR_FORMAT, "%s: truncated: storage '%s' header at byte %zu", src, k->s, pos);
        uint64_t numel = lpl_le64(p + pos);
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
static lpl_status legacy_order(lpl_torch_ckpt *c, const lpl_pval *keys, const lpl_unpickler *main_u, const char *src,
                               lpl_error *err)
{
    if (keys->k != LPL_PV_LIST)
        return lpl_fail(err, LPL_ERR_FORMAT, "%s: legacy checkpoint: storage key list missing", src);
    c->order = lpl_calloc((size_t)keys->n + 1, sizeof *c->order, "storages", err);
    if (!c->order)
        return LPL_ERR_NOMEM;
    for (int64_t i = 0; i < keys->n; i++) {
        const lpl_pval *k = legacy_key(keys, i, main_u, src, err);
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
    lpl_unpickler u[4];
    memset(u, 0, sizeof u);
    size_t pos = sizeof legacy_magic;
    lpl_pval *v[4] = {NULL};
    lpl_status st = LPL_OK;
    for (int i = 0; i < 4; i++) {
        lpl_unpickler_init(&u[i], p, size, pos, src, err);
        if (!(v[i] = lpl_unpickle(&u[i]))) {
            st = err ? err->code : LPL_ERR_FORMAT;
            goto done;
        }
        pos = u[i].pos;
    }
    if (v[0]->k != LPL_PV_INT || v[0]->i != 1001) {
        st = lpl_fail(err, LPL_ERR_UNSUPPORTED, "%s: legacy checkpoint protocol is not 1001", src);
        goto done;
    }
    const lpl_pval *le = lpl_pval_dict_get(v[1], "little_endian");
    if (v[1]->k != LPL_PV_DICT || (le && !(le->k == LPL_PV_BOOL && le->i))) {
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
        lpl_unpickler_free(&u[i]);
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
    if (lpl_zip_open(p, size, &c->zip, src, err) != LPL_OK || load_zip_state_dict(c, src, err) != LPL_OK)
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
    lpl_zip_close(&c->zip);
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
    return lpl_st_find(c->t, c->n, name);
}

/* ------------------------------------------------------------------ streaming import */

lpl_torch_ckpt *lpl_torch_index_pickle(const void *pkl, size_t n, lpl_error *err)
{
    lpl_torch_ckpt *c = lpl_calloc(1, sizeof *c, "torch checkpoint", err);
    if (!c)
        return NULL;
    c->index_only = 1;
    lpl_unpickler u;
    lpl_unpickler_init(&u, pkl, n, 0, "data.pkl", err);
    lpl_pval *root = lpl_unpickle(&u);
    lpl_status st = root ? collect_tensors(c, root, "data.pkl", err) : (err ? err->code : LPL_ERR_FORMAT);
    lpl_unpickler_free(&u);
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
