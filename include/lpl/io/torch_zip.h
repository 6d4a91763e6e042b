/* PyTorch checkpoints as torch.save writes them since 1.6: a zip archive (stored
 * entries) holding <prefix>/data.pkl and one raw file per storage, <prefix>/data/<key>;
 * and the legacy stream of earlier versions (magic, protocol and system-info pickles,
 * the state-dict pickle, a pickled list of storage keys, then each storage as an
 * int64 element count and raw bytes), which the 2019 DialoGPT checkpoints use.
 * data.pkl is read by a restricted unpickler that understands only what a state
 * dict needs: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch.{Float,Half,BFloat16}Storage and persistent ids naming storages. Any other
 * global (os.system, builtins.eval, torch.storage._load_from_bytes, ...) is refused
 * with its name; nothing is ever executed. */
#ifndef LPL_TORCH_ZIP_H
#define LPL_TORCH_ZIP_H

#include "lpl/core/common.h"
#include "lpl/io/safetensors.h"

LPL_BEGIN_DECLS

typedef struct lpl_torch_ckpt lpl_torch_ckpt;

/* Opens a pytorch_model.bin (mapped read-only natively). NULL with err naming the
 * file and the problem (not a zip, compressed or encrypted entry, truncated,
 * forbidden pickle global or opcode, storage out of range, non-contiguous tensor). */
lpl_torch_ckpt *lpl_torch_open(const char *path, lpl_error *err);
/* Same over bytes in memory; copy != 0 makes a private copy, else data must outlive it. */
lpl_torch_ckpt *lpl_torch_open_memory(const void *data, size_t size, int copy, lpl_error *err);
/* Unmaps or frees the checkpoint; NULL is a no-op. */
void lpl_torch_close(lpl_torch_ckpt *c);

/* Tensors of the state dict, in pickle order; data points into the storages. */
int64_t lpl_torch_n_tensors(const lpl_torch_ckpt *c);
const lpl_st_tensor *lpl_torch_tensors(const lpl_torch_ckpt *c);
/* Tensor by state-dict name, or NULL. */
const lpl_st_tensor *lpl_torch_find(const lpl_torch_ckpt *c, const char *name);

/* Does this look like a zip archive (local file header magic)? */
int lpl_torch_is_zip(const void *data, size_t size);
/* Does this start like a legacy (torch < 1.6) checkpoint (the pickled magic number)? */
int lpl_torch_is_legacy(const void *data, size_t size);
/* Either of the two. */
int lpl_torch_is_checkpoint(const void *data, size_t size);

/* ---- streaming import: the tensors without their bytes, for a reader that sees
 * the file once, in order. Tensors come with data NULL and nbytes set. */

/* Where a tensor lives: its storage key and byte offset inside that storage. */
typedef struct {
    const char *storage;
    uint64_t offset;
} lpl_torch_ref;

/* A storage of a legacy file, in file order, with its element size. */
typedef struct {
    const char *key;
    size_t elem;
} lpl_torch_storage;

/* Tensors of a zip checkpoint's data.pkl (the caller checks its CRC). NULL with err
 * on a malformed or forbidden pickle. Close with lpl_torch_close. */
lpl_torch_ckpt *lpl_torch_index_pickle(const void *pkl, size_t n, lpl_error *err);
/* Tensors of a legacy file from its first n bytes: the pickles up to the storage key
 * list. *consumed is where the storages start. NULL and *more = 1 when the pickles
 * do not end within n bytes; NULL and *more = 0 with err when they are malformed. */
lpl_torch_ckpt *lpl_torch_index_legacy(const void *p, size_t n, size_t *consumed, int *more, lpl_error *err);
/* Per tensor (parallel to lpl_torch_tensors) where it lives; index mode only. */
const lpl_torch_ref *lpl_torch_refs(const lpl_torch_ckpt *c);
/* Legacy index: the storages in file order. */
int64_t lpl_torch_n_storages(const lpl_torch_ckpt *c);
const lpl_torch_storage *lpl_torch_storages(const lpl_torch_ckpt *c);

LPL_END_DECLS

#endif
