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

typedef struct lpl_torch_ckpt lpl_torch_ckpt;

/* Opens a pytorch_model.bin (mapped read-only natively). NULL with err naming the
 * file and the problem (not a zip, compressed or encrypted entry, truncated,
 * forbidden pickle global or opcode, storage out of range, non-contiguous tensor). */
lpl_torch_ckpt *lpl_torch_open(const char *path, lpl_error *err);
/* Same over bytes in memory; copy != 0 makes a private copy, else data must outlive it. */
lpl_torch_ckpt *lpl_torch_open_memory(const void *data, size_t size, int copy, lpl_error *err);
void lpl_torch_close(lpl_torch_ckpt *c);

/* Tensors of the state dict, in pickle order; data points into the storages. */
int64_t lpl_torch_n_tensors(const lpl_torch_ckpt *c);
const lpl_st_tensor *lpl_torch_tensors(const lpl_torch_ckpt *c);
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

/* A zip local file header read from the front of a stream. */
typedef struct {
    int complete;        /* 0: more bytes needed */
    int end;             /* the central directory starts here: no more entries */
    char name[256];
    size_t header_len;   /* bytes before the entry's data */
    uint64_t size;
    uint32_t crc;
    int sizes_later;     /* size and crc are 0 here: they follow the data (and are in the directory) */
} lpl_zip_local;

/* Reads the local header at data[0..n): out->complete = 0 when n is too short;
 * LPL_ERR_FORMAT / LPL_ERR_UNSUPPORTED for a bad signature, a compressed or
 * encrypted entry. */
lpl_status lpl_zip_local_header(const void *data, size_t n, lpl_zip_local *out, lpl_error *err);
/* The central directory of a zip, read from the file's last n bytes (torch.save
 * writes entry sizes only there and after each entry's data, so a streamed reader
 * fetches the end first: HTTP Range, File.slice). */
typedef struct {
    char name[256];
    uint64_t offset;     /* of the local header */
    uint64_t size;
    uint32_t crc;
} lpl_zip_dir_entry;
typedef struct {
    lpl_zip_dir_entry *e;
    int64_t n;
    uint64_t cd_off;     /* where the directory starts: the end of the last entry's bytes */
} lpl_zip_dir;
/* LPL_ERR_FORMAT when the tail holds no (whole) directory. Free with lpl_zip_dir_free. */
lpl_status lpl_zip_read_tail(const void *tail, size_t n, uint64_t file_size, lpl_zip_dir *dir, lpl_error *err);
void lpl_zip_dir_free(lpl_zip_dir *dir);
/* CRC-32 (IEEE) of p[0..n). */
uint32_t lpl_zip_crc32(const void *p, size_t n);

#endif
