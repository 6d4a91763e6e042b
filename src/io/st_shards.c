/* Sharded safetensors as one stream (include/lpl/io/st_shards.h). */
#include "lpl/io/st_shards.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "lpl/io/safetensors.h"

#define MAX_HEADER ((uint64_t)100 << 20) /* the format's own limit on the JSON header */

void lpl_st_shards_free(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

lpl_status lpl_st_index_shards(const char *index_json, size_t len, char ***names, int *n, lpl_error *err)
{
    *names = NULL;
    *n = 0;
    cJSON *j = cJSON_ParseWithLength(index_json, len);
    if (!j)
        return lpl_fail(err, LPL_ERR_FORMAT, "model.safetensors.index.json: malformed JSON");
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    lpl_status st = LPL_OK;
    if (!cJSON_IsObject(map) || !map->child)
        st = lpl_fail(err, LPL_ERR_FORMAT, "model.safetensors.index.json: no weight_map object");
    int cap = 0;
    char **out = NULL;
    for (const cJSON *e = map ? map->child : NULL; st == LPL_OK && e; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') ||
            strstr(e->valuestring, "..")) {
            st = lpl_fail(err, LPL_ERR_FORMAT, "model.safetensors.index.json: tensor '%s' maps to a bad file name",
                          e->string ? e->string : "?");
            break;
        }
        int seen = 0;
        for (int i = 0; i < *n && !seen; i++)
            seen = !strcmp(out[i], e->valuestring);
        if (seen)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            char **p = realloc(out, (size_t)cap * sizeof *p);
            if (!p) {
                st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: shard list");
                break;
            }
            out = p;
        }
        if (!(out[*n] = strdup(e->valuestring))) {
            st = lpl_fail(err, LPL_ERR_NOMEM, "out of memory: shard list");
            break;
        }
        (*n)++;
    }
    cJSON_Delete(j);
    if (st != LPL_OK) {
        lpl_st_shards_free(out, *n);
        *n = 0;
        return st;
    }
    qsort(out, (size_t)*n, sizeof *out, cmp_str);
    *names = out;
    return LPL_OK;
}

lpl_status lpl_st_header_bytes(const void *first8, uint64_t file_size, uint64_t *bytes, lpl_error *err)
{
    const uint8_t *p = first8;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | p[i];
    if (h < 2 || h > MAX_HEADER || h + 8 > file_size)
        return lpl_fail(err, LPL_ERR_FORMAT, "safetensors shard: header length %llu does not fit a %llu-byte file",
                        (unsigned long long)h, (unsigned long long)file_size);
    *bytes = h + 8;
    return LPL_OK;
}

static const char *dtype_tag(const lpl_st_tensor *t)
{
    if (t->unsupported)
        return t->unsupported;
    return t->dtype == LPL_F32 ? "F32" : t->dtype == LPL_F16 ? "F16" : "BF16";
}

/* Adds shard i's tensors to the merged header, their offsets moved by base. */
static lpl_status add_shard(cJSON *root, const lpl_safetensors *st, uint64_t base, int i, lpl_error *err)
{
    const lpl_st_tensor *t = lpl_safetensors_tensors(st);
    for (int64_t k = 0; k < lpl_safetensors_n_tensors(st); k++) {
        if (cJSON_GetObjectItemCaseSensitive(root, t[k].name))
            return lpl_fail(err, LPL_ERR_FORMAT, "safetensors shard %d: tensor '%s' is also in an earlier shard", i + 1,
                            t[k].name);
        cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        uint64_t b = base + lpl_safetensors_data_offset(st, k);
        cJSON_AddStringToObject(o, "dtype", dtype_tag(&t[k]));
        for (int d = 0; d < t[k].n_dims; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[k].shape[d]));
        cJSON_AddItemToObject(o, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)b));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(b + t[k].nbytes)));
        cJSON_AddItemToObject(o, "data_offsets", offs);
        cJSON_AddItemToObject(root, t[k].name, o);
    }
    return LPL_OK;
}

lpl_status lpl_st_merge_headers(const void *const *heads, const uint64_t *file_sizes, int n, void **out,
                                size_t *out_len, lpl_error *err)
{
    *out = NULL;
    *out_len = 0;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: merged header");
    lpl_status st = LPL_OK;
    uint64_t base = 0;
    for (int i = 0; i < n && st == LPL_OK; i++) {
        uint64_t hb = 0;
        if ((st = lpl_st_header_bytes(heads[i], file_sizes[i], &hb, err)) != LPL_OK)
            break;
        size_t header_len;
        int more = 0;
        lpl_safetensors *sf = lpl_safetensors_open_header(heads[i], (size_t)hb, &header_len, &more, err);
        if (!sf) {
            st = more ? lpl_fail(err, LPL_ERR_FORMAT, "safetensors shard %d: header is cut short", i + 1)
                      : LPL_ERR_FORMAT;
            break;
        }
        st = add_shard(root, sf, base, i, err);
        lpl_safetensors_close(sf);
        base += file_sizes[i] - header_len;
    }
    char *json = st == LPL_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (st != LPL_OK)
        return st;
    if (!json)
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: merged header");
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    uint8_t *buf = malloc(8 + padded);
    if (!buf) {
        free(json);
        return lpl_fail(err, LPL_ERR_NOMEM, "out of memory: merged header");
    }
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, json, jl);
    memset(buf + 8 + jl, ' ', padded - jl);
    free(json);
    *out = buf;
    *out_len = 8 + padded;
    return LPL_OK;
}
