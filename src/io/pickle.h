/* Private: a restricted unpickler for PyTorch state dicts (src/io/torch_zip.c). It is
 * a small stack machine over plain values; it knows a handful of globals only as tags
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch storage types) and
 * never imports or calls anything. Any other global is refused with its name. */
#ifndef LPL_PICKLE_H
#define LPL_PICKLE_H

#include "lpl/core/common.h"
#include "lpl/io/safetensors.h"

/* What a value is. */
typedef enum {
    LPL_PV_NONE, LPL_PV_BOOL, LPL_PV_INT, LPL_PV_FLOAT, LPL_PV_STR, LPL_PV_TUPLE, LPL_PV_LIST, LPL_PV_DICT,
    LPL_PV_GLOBAL, LPL_PV_STORAGE, LPL_PV_TENSOR, LPL_PV_MARK
} lpl_pval_kind;

/* The globals a state dict may name. They are tags: nothing is imported or called. */
typedef enum {
    LPL_PG_ORDERED_DICT, LPL_PG_REBUILD_TENSOR_V2, LPL_PG_STORAGE
} lpl_pglobal;

/* A value on the pickle stack. Every value belongs to its unpickler and is freed with it. */
typedef struct lpl_pval lpl_pval;
struct lpl_pval {
    lpl_pval_kind k;
    int64_t i;         /* int, bool */
    double f;
    char *s;           /* str; storage key */
    lpl_pval **items;  /* tuple/list elements; dict: key, value, key, value, ... */
    int64_t n, cap;
    lpl_pglobal g;     /* LPL_PV_GLOBAL */
    lpl_dtype dtype;   /* LPL_PV_GLOBAL storage type / LPL_PV_STORAGE */
    const char *unsupported; /* storage types we skip (bool, uint8, int64, ...) */
    size_t elem;       /* bytes per element of a storage type */
    int64_t numel;     /* LPL_PV_STORAGE */
    /* LPL_PV_TENSOR */
    lpl_pval *storage;
    int64_t offset;
    int n_dims;
    int64_t shape[LPL_ST_MAX_DIMS], stride[LPL_ST_MAX_DIMS];
    lpl_pval *next_alloc; /* every value, for freeing */
};

/* The machine: the pickle's bytes, the stack and the memo. */
typedef struct {
    const uint8_t *p;
    size_t n, pos;
    const char *src;
    lpl_error *err;
    lpl_pval *all;
    lpl_pval **stack;
    int64_t sp, stack_cap;
    lpl_pval **memo;
    int64_t memo_cap, memo_len;
    int short_input; /* failed because the bytes ended (streaming: wait for more) */
} lpl_unpickler;

/* Starts an unpickler over p[pos..n); src names the input in messages. */
void lpl_unpickler_init(lpl_unpickler *u, const void *p, size_t n, size_t pos, const char *src, lpl_error *err);
/* Runs the pickle to its STOP: the result, u->pos just past it. NULL with err set on a
 * malformed or forbidden pickle; u->short_input says the bytes ended first. */
lpl_pval *lpl_unpickle(lpl_unpickler *u);
/* Frees every value the unpickler made (results too). */
void lpl_unpickler_free(lpl_unpickler *u);

/* The value of key in a dict value, or NULL. */
const lpl_pval *lpl_pval_dict_get(const lpl_pval *d, const char *key);
/* The storage named key among the persistent ids the pickle declared, or NULL. */
const lpl_pval *lpl_unpickler_storage(const lpl_unpickler *u, const char *key);

#endif
