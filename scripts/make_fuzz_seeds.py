#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Every file is built here from first principles (a small GGUF / safetensors writer,
torch.save for PyTorch checkpoints, hand-written pickles for the hostile ones), so the
seeds do not depend on the project's own writers. Names carry the expectation the
replay test (tests/test_fuzz_regressions.c) checks:
  ok-*   the whole chain of the target must accept the file,
  bad-*  some stage must refuse it (tests/fuzz/expected.tsv names the message),
  other  no expectation beyond "no crash, no leak, no broken invariant".

Run with the system python (it needs python3-torch and numpy):
    /usr/bin/python3 scripts/make_fuzz_seeds.py
The output is deterministic, so re-running it leaves git clean."""
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
NUL = b"\x00"


def put(target, name, data):
    put_file(target, name, data)


def put_file(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- GPT-2 byte map

def byte_to_unicode():
    """GPT-2's reversible map from bytes to printable code points."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cps = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            cps.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, cps)}


B2U = byte_to_unicode()
# A small byte-level vocabulary: the 256 bytes, a few merged tokens, end-of-text.
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")]


def tiny_vocab():
    toks = [B2U[b] for b in range(256)]
    for a, b in MERGES:
        toks.append(a + b)
    toks.append("<|endoftext|>")
    return toks


# ---------------------------------------------------------------- GGUF

GG_U8, GG_I8, GG_U16, GG_I16, GG_U32, GG_I32, GG_F32, GG_BOOL, GG_STR, GG_ARR, GG_U64, GG_I64, GG_F64 = range(13)
T_F32, T_F16, T_Q4_0, T_Q8_0 = 0, 1, 2, 8
SCALAR_FMT = {GG_U8: "<B", GG_I8: "<b", GG_U16: "<H", GG_I16: "<h", GG_U32: "<I", GG_I32: "<i",
              GG_F32: "<f", GG_BOOL: "<B", GG_U64: "<Q", GG_I64: "<q", GG_F64: "<d"}


def gstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gvalue(t, v):
    if t == GG_STR:
        return gstr(v)
    if t == GG_ARR:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        return out + b"".join(gvalue(et, x) for x in items)
    return struct.pack(SCALAR_FMT[t], v)


def q8_0(w):
    """ggml Q8_0: per block of 32, an fp16 scale d = max|x| / 127 and round(x / d)."""
    w = w.reshape(-1, 32).astype(np.float32)
    out = bytearray()
    for blk in w:
        amax = float(np.abs(blk).max())
        d = amax / 127.0
        q = np.zeros(32, np.int8) if d == 0 else np.clip(np.round(blk / d), -127, 127).astype(np.int8)
        out += np.float16(d).tobytes() + q.tobytes()
    return bytes(out)


def tensor_bytes(t, arr):
    if t == T_F32:
        return arr.astype("<f4").tobytes()
    if t == T_F16:
        return arr.astype("<f2").tobytes()
    if t == T_Q8_0:
        return q8_0(arr)
    raise ValueError(t)


def gguf(kvs, tensors, version=3, align=32, n_tensors=None, n_kv=None):
    """kvs: [(key, type, value)]; tensors: [(name, type, ne (ggml order), bytes, offset or None)]."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    for k, t, v in kvs:
        head += gstr(k) + struct.pack("<I", t) + gvalue(t, v)
    data = b""
    infos = b""
    for name, t, ne, raw, off in tensors:
        if off is None:
            data += b"\x00" * (-len(data) % align)
            off = len(data)
            data += raw
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", t, off)
    head += infos
    head += b"\x00" * (-len(head) % align)
    return head + data


def tiny_gpt2_gguf(mat_type=T_Q8_0, L=1, C=32, H=2, T=16, extra_kv=(), drop=None, reshape=None, poison=None):
    rng = np.random.default_rng(7)
    toks = tiny_vocab()
    V = len(toks)
    kvs = [("general.architecture", GG_STR, "gpt2"), ("general.name", GG_STR, "fuzz-tiny"),
           ("general.alignment", GG_U32, 32),
           ("gpt2.block_count", GG_U32, L), ("gpt2.embedding_length", GG_U32, C),
           ("gpt2.feed_forward_length", GG_U32, 4 * C), ("gpt2.attention.head_count", GG_U32, H),
           ("gpt2.context_length", GG_U32, T), ("gpt2.attention.layer_norm_epsilon", GG_F32, 1e-5),
           ("tokenizer.ggml.model", GG_STR, "gpt2"),
           ("tokenizer.ggml.tokens", GG_ARR, (GG_STR, toks)),
           ("tokenizer.ggml.merges", GG_ARR, (GG_STR, [a + " " + b for a, b in MERGES])),
           ("tokenizer.ggml.eos_token_id", GG_U32, V - 1)] + list(extra_kv)
    tensors = []

    def add(name, t, shape_rows_cols):
        if drop and name == drop:
            return
        rows, cols = shape_rows_cols
        arr = (rng.standard_normal(rows * cols) * 0.02).astype(np.float32)
        ne = [cols] if rows == 0 else [cols, rows]
        if reshape and name in reshape:
            ne = reshape[name]
        n = int(np.prod(ne))
        arr = np.resize(arr, n) if n else arr[:0]
        if poison and name == poison:
            arr[3], arr[7], arr[40] = np.nan, np.inf, -3e38
        tensors.append((name, t, ne, tensor_bytes(t, arr), None))

    add("token_embd.weight", mat_type, (V, C))
    add("position_embd.weight", T_F32, (T, C))
    for l in range(L):
        p = "blk.%d." % l
        for n in ("attn_norm", "ffn_norm"):
            add(p + n + ".weight", T_F32, (0, C))
            add(p + n + ".bias", T_F32, (0, C))
        for site, (o, i) in (("attn_qkv", (3 * C, C)), ("attn_output", (C, C)),
                             ("ffn_up", (4 * C, C)), ("ffn_down", (C, 4 * C))):
            add(p + site + ".weight", mat_type, (o, i))
            add(p + site + ".bias", T_F32, (0, o))
    add("output_norm.weight", T_F32, (0, C))
    add("output_norm.bias", T_F32, (0, C))
    return gguf(kvs, tensors)


def make_gguf():
    t = "gguf"
    good = tiny_gpt2_gguf()
    put(t, "ok-tiny-gpt2-q8_0.gguf", good)
    put(t, "ok-tiny-gpt2-f16.gguf", tiny_gpt2_gguf(T_F16))
    # Loads (weights are not checked), then `merge --type q8_0` quantizes NaN/inf.
    put(t, "nan-weights-f32.gguf", tiny_gpt2_gguf(T_F32, poison="blk.0.attn_qkv.weight"))
    kvs = [("u8", GG_U8, 7), ("i8", GG_I8, -7), ("u16", GG_U16, 700), ("i16", GG_I16, -700),
           ("u32", GG_U32, 70000), ("i32", GG_I32, -70000), ("f32", GG_F32, 0.5), ("bool", GG_BOOL, 1),
           ("str", GG_STR, "h\u00e9llo"), ("u64", GG_U64, 1 << 40), ("i64", GG_I64, -(1 << 40)),
           ("f64", GG_F64, 0.25), ("arr.i32", GG_ARR, (GG_I32, [1, -2, 3])),
           ("arr.str", GG_ARR, (GG_STR, ["a", "", "ccc"])),
           ("arr.nested", GG_ARR, (GG_ARR, [(GG_U8, [1, 2]), (GG_U8, [])]))]
    put(t, "kv-all-types.gguf", gguf(kvs, [("v", T_F32, [4], b"\x00" * 16, None)]))
    put(t, "bad-truncated.gguf", good[: len(good) // 3])
    put(t, "bad-truncated-data.gguf", good[:-40])
    put(t, "bad-magic.gguf", b"GGUX" + good[4:200])
    put(t, "bad-version.gguf", gguf([], [], version=99))
    put(t, "bad-huge-tensor-count.gguf", gguf([], [], n_tensors=1 << 62))
    put(t, "bad-huge-kv-count.gguf", gguf([], [], n_kv=(1 << 64) - 1))
    huge_str = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 60) + b"key"
    put(t, "bad-huge-key-length.gguf", huge_str)
    huge_arr = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("a") + struct.pack("<IIQ", GG_ARR, GG_U64, 1 << 61)
    put(t, "bad-huge-array.gguf", huge_arr)
    put(t, "bad-tensor-offset-past-end.gguf", gguf([], [("w", T_F32, [8], b"", 1 << 40)]))
    put(t, "bad-tensor-unaligned.gguf", gguf([], [("w", T_F32, [8], b"\x00" * 64, 4)]) + b"\x00" * 64)
    put(t, "bad-tensor-overlap.gguf",
        gguf([], [("a", T_F32, [8], b"\x00" * 32, 0), ("b", T_F32, [8], b"\x00" * 32, 0)]) + b"\x00" * 32)
    put(t, "bad-tensor-unknown-type.gguf", gguf([], [("w", 99, [8], b"\x00" * 32, None)]))
    put(t, "bad-tensor-huge-shape.gguf", gguf([], [("w", T_F32, [1 << 40, 1 << 40], b"", 0)]))
    put(t, "bad-tensor-five-dims.gguf", gguf([], [("w", T_F32, [1, 1, 1, 1, 1], b"\x00" * 4, None)]))
    put(t, "bad-duplicate-tensor.gguf",
        gguf([], [("w", T_F32, [8], b"\x00" * 32, None), ("w", T_F32, [8], b"\x00" * 32, None)]))
    put(t, "bad-key-not-utf8.gguf", gguf([(b"k\xff", GG_U8, 1)], []))
    put(t, "bad-shape-mismatch.gguf", tiny_gpt2_gguf(reshape={"blk.0.ffn_up.weight": [32, 96]}))
    put(t, "bad-missing-tensor.gguf", tiny_gpt2_gguf(drop="blk.0.attn_output.bias"))
    put(t, "bad-config-head-count.gguf", tiny_gpt2_gguf(H=5))
    put(t, "bad-not-gpt2.gguf", gguf([("general.architecture", GG_STR, "llama")], []))


# ---------------------------------------------------------------- safetensors

def safetensors(entries, meta=None, header_len=None, pad=True):
    """entries: [(name, dtype, shape, raw bytes or None, offsets or None)]."""
    header = OrderedDict()
    if meta is not None:
        header["__metadata__"] = meta
    data = b""
    for name, dtype, shape, raw, offs in entries:
        if offs is None:
            offs = [len(data), len(data) + len(raw)]
            data += raw
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": offs}
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    n = len(h) if header_len is None else header_len
    return struct.pack("<Q", n) + h + data


def f32(*vals):
    return np.array(vals, "<f4").tobytes()


def make_safetensors():
    t = "safetensors"
    good = safetensors([("a.weight", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6), None),
                        ("b", "F16", [4], np.array([1, -2, 0.5, 65504], "<f2").tobytes(), None),
                        ("c", "BF16", [2], b"\x80\x3f\x00\xc0", None),
                        ("scalar", "F32", [], f32(3.5), None),
                        ("empty", "F32", [0, 4], b"", None)],
                       meta={"format": "pt"})
    put(t, "ok-small.safetensors", good)
    put(t, "ok-empty.safetensors", safetensors([]))
    put(t, "bad-truncated.safetensors", good[:-5])
    put(t, "bad-short.safetensors", b"\x10\x00\x00")
    put(t, "bad-header-length-past-end.safetensors", safetensors([], header_len=1 << 40))
    put(t, "bad-header-length-huge.safetensors", safetensors([], header_len=(1 << 64) - 1))
    put(t, "bad-malformed-json.safetensors", struct.pack("<Q", 8) + b'{"a":{"d')
    put(t, "bad-header-not-object.safetensors", struct.pack("<Q", 8) + b"[1,2,3] ")
    put(t, "bad-unknown-dtype.safetensors", safetensors([("q", "I8", [4], b"\x01\x02\x03\x04", None)]))
    put(t, "bad-offsets-out-of-range.safetensors", safetensors([("x", "F32", [2], None, [0, 1 << 40])]))
    put(t, "bad-offsets-reversed.safetensors", safetensors([("x", "F32", [0], f32(), [8, 0])]) + b"\x00" * 8)
    put(t, "bad-offsets-overlap.safetensors",
        safetensors([("x", "F32", [2], None, [0, 8]), ("y", "F32", [2], None, [4, 12])]) + b"\x00" * 12)
    put(t, "bad-shape-mismatch.safetensors", safetensors([("x", "F32", [3], None, [0, 8])]) + b"\x00" * 8)
    put(t, "bad-shape-huge.safetensors",
        safetensors([("x", "F32", [1 << 31, 1 << 31, 1 << 31], None, [0, 8])]) + b"\x00" * 8)
    put(t, "bad-shape-negative.safetensors", safetensors([("x", "F32", [-2], None, [0, 8])]) + b"\x00" * 8)
    no_offsets = b'{"x":{"dtype":"F32","shape":[1]}}'
    put(t, "bad-missing-offsets.safetensors", struct.pack("<Q", len(no_offsets)) + no_offsets + b"\x00" * 4)
    put(t, "gap-in-data.safetensors", safetensors([("x", "F32", [1], None, [4, 8])]) + b"\x00" * 8)
    bad_name = b'{"\xff\xfe":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    put(t, "bad-non-utf8-name.safetensors", struct.pack("<Q", len(bad_name)) + bad_name + b"\x00" * 4)


# ---------------------------------------------------------------- PyTorch zip

def torch_save_bytes(obj):
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def rezip(src, replace=None, compress=None, drop=None):
    """Copies a zip, replacing the bytes of entries whose name ends with a key of
    replace, compressing the named entry, or dropping one."""
    zin = zipfile.ZipFile(io.BytesIO(src))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if drop and info.filename.endswith(drop):
                continue
            for k, v in (replace or {}).items():
                if info.filename.endswith(k):
                    data = v
            zi = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED if compress and info.filename.endswith(compress) \
                else zipfile.ZIP_STORED
            z.writestr(zi, data)
    return out.getvalue()


def evil_pickle(module, name, arg):
    """A protocol-2 pickle that calls module.name(arg) when loaded by pickle.load."""
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + b"X"
            + struct.pack("<I", len(arg)) + arg.encode() + b"\x85R.")


def zip64_short():
    """A 50-byte zip whose zip64 end-of-central-directory record starts at byte 4:
    the record's fields (up to byte 60) lie past the end of the file."""
    rec = b"PK\x03\x04" + struct.pack("<I", 0x06064B50)
    loc = struct.pack("<IIQI", 0x07064B50, 0, 4, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return rec + loc + eocd


def make_torch():
    import torch
    torch.manual_seed(0)
    t = "torch_zip"

    def put(target, name, data):
        """Mode byte of fuzz_torch_zip.c: 0 = a whole archive, 1 = data.pkl alone."""
        put_file(target, name, (b"\x01" if name.endswith(".pkl") else b"\x00") + data)

    sd = OrderedDict()
    sd["transformer.wte.weight"] = torch.randn(4, 3)
    sd["transformer.h.0.attn.c_attn.weight"] = torch.randn(3, 9).half()
    sd["transformer.h.0.ln_1.bias"] = torch.zeros(3, dtype=torch.bfloat16)
    sd["transformer.h.0.attn.c_attn.bias"] = torch.randn(9)
    good = torch_save_bytes(sd)
    put(t, "ok-state-dict.bin", good)
    # Shared storage, views with offsets, a transposed (non-contiguous) slice.
    base = torch.arange(24, dtype=torch.float32)
    shared = OrderedDict([("lm_head.weight", base.view(4, 6)), ("transformer.wte.weight", base.view(4, 6)),
                          ("tail", base[12:])])
    put(t, "ok-shared-storage.bin", torch_save_bytes(shared))
    put(t, "noncontiguous.bin", torch_save_bytes(OrderedDict([("t", base.view(4, 6).t())])))
    # DialoGPT ships attn.bias / attn.masked_bias buffers (bool/uint8 and a scalar).
    buffers = OrderedDict([("h.0.attn.bias", torch.tril(torch.ones(1, 1, 4, 4, dtype=torch.uint8))),
                           ("h.0.attn.masked_bias", torch.tensor(-1e4)),
                           ("h.0.ln_1.weight", torch.ones(4))])
    put(t, "gpt2-buffers.bin", torch_save_bytes(buffers))
    put(t, "plain-dict.bin", torch_save_bytes({"w": torch.ones(2)}))
    put(t, "bad-os-system.bin", rezip(good, replace={"data.pkl": evil_pickle("os", "system", "echo pwned")}))
    put(t, "bad-builtins-eval.bin",
        rezip(good, replace={"data.pkl": evil_pickle("builtins", "eval", "__import__('os').system('id')")}))
    put(t, "bad-posix-system.bin", rezip(good, replace={"data.pkl": evil_pickle("posix", "system", "id")}))
    put(t, "bad-not-zip.bin", b"\x80\x02}q\x00.")
    put(t, "bad-truncated.bin", good[: len(good) // 2])
    put(t, "bad-truncated-tail.bin", good[:-10])
    put(t, "bad-compressed.bin", rezip(good, compress="data.pkl"))
    put(t, "bad-storage-short.bin", rezip(good, replace={"data/0": b"\x00" * 8}))
    put(t, "bad-storage-missing.bin", rezip(good, drop="data/1"))
    put(t, "bad-pickle-truncated.bin", rezip(good, replace={"data.pkl": b"\x80\x02}q\x00(X"}))
    put(t, "bad-pickle-empty.bin", rezip(good, replace={"data.pkl": b""}))
    put(t, "bad-zip64-record-past-end.bin", zip64_short())
    # data.pkl alone (the harness wraps it with storages "0".."3" of 256 bytes).
    pkl = zipfile.ZipFile(io.BytesIO(good)).read("archive/data.pkl")
    put(t, "ok-state-dict.pkl", pkl)
    put(t, "bad-os-system.pkl", evil_pickle("os", "system", "echo pwned"))
    put(t, "bad-subprocess.pkl", evil_pickle("subprocess", "check_output", "id"))
    put(t, "bad-load-from-bytes.pkl", evil_pickle("torch.storage", "_load_from_bytes", "x"))
    put(t, "bad-not-a-dict.pkl", pickle.dumps([1, 2, 3], protocol=2))
    put(t, "bad-storage-key-missing.pkl", pkl.replace(b"X\x01\x00\x00\x000", b"X\x01\x00\x00\x009"))


# ---------------------------------------------------------------- JSON targets

def make_alpaca():
    t = "alpaca"
    put(t, "ok-two-records.json", json.dumps([
        {"instruction": "Name a colour.", "input": "", "output": "Blue."},
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}]))
    with open(os.path.join(ROOT, "data", "alpaca_train.json"), encoding="utf-8") as f:
        recs = json.load(f)[:3]
    put(t, "ok-bundled-head.json", json.dumps(recs, ensure_ascii=False, indent=1))
    put(t, "ok-no-input-key.json", '[{"instruction":"Say hi.","output":"Hi!"}]')
    put(t, "ok-markup.json", json.dumps([{"instruction": "<script>alert(1)</script>",
                                          "input": "<img src=x onerror=alert(2)>",
                                          "output": "&lt;b&gt; \u00e9\u65e5\U0001F600"}], ensure_ascii=False))
    put(t, "bad-empty-array.json", "[]")
    put(t, "ok-long-output.json", json.dumps([{"instruction": "Repeat.", "input": "",
                                               "output": "word " * 200}]))
    put(t, "bad-malformed.json", '[{"instruction": "x", "output": "y"')
    put(t, "bad-not-array.json", '{"instruction": "x", "output": "y"}')
    put(t, "bad-missing-output.json", '[{"instruction": "x", "input": ""}]')
    put(t, "bad-missing-instruction.json", '[{"input": "", "output": "y"}]')
    put(t, "bad-number-field.json", '[{"instruction": 42, "output": "y"}]')
    put(t, "bad-record-not-object.json", '[{"instruction":"a","output":"b"}, "text", null]')
    put(t, "bad-non-utf8.json", b'[{"instruction": "caf\xe9", "output": "y"}]')
    put(t, "nul-escape.json", '[{"instruction": "a\\u0000b", "output": "y"}]')
    put(t, "bad-empty.json", "")


def make_experiment():
    t = "experiment"
    study = OrderedDict([("model", "models/dialogpt-medium-q8_0.gguf"), ("train", "data/alpaca_train.json"),
                         ("eval", "data/alpaca_eval.json"), ("n_train", 100), ("n_eval", 20),
                         ("max_len", 256), ("r", 16), ("alpha", 32), ("dropout", 0.1), ("epochs", 3),
                         ("batch_size", 1), ("lr", 2e-4), ("schedule", "cosine"), ("seed", 42),
                         ("placements", ["baseline", "ffn", "attn"])])
    put(t, "ok-study.json", json.dumps(study, indent=1))
    mixed = OrderedDict([("response_only", True), ("rslora", True), ("grad_clip", 0.5), ("warmup_steps", 2),
                         ("weight_decay", 0.01), ("max_steps", 5), ("shuffle", False), ("preset", "tiny"),
                         ("placements", ["attn-exact",
                                         {"name": "mlp-lower", "target_modules": ["mlp.c_fc", "mlp.c_proj"],
                                          "layers": [0, 1, 2]},
                                         {"name": "re", "target_modules": r".*\.h\.\d+\.attn\.c_attn"},
                                         {"name": "all", "target_modules": ["c_attn", "c_proj", "c_fc"],
                                          "layers_to_transform": None}])])
    put(t, "ok-mixed-placements.json", json.dumps(mixed, indent=1))
    put(t, "ok-diverge-lr-1e3.json", json.dumps({"lr": 1e3, "max_steps": 3, "placements": ["baseline", "ffn"]}))
    put(t, "ok-empty-object.json", "{}")
    put(t, "spec-layers.txt", "lower=attn.c_attn,mlp.c_fc@0-3,7")
    put(t, "spec-regex.txt", r"qkv=re:.*\.h\.(0|1)\.attn\.c_attn")
    put(t, "bad-malformed.json", '{"lr": 2e-4,')
    put(t, "bad-not-object.json", "[1, 2]")
    put(t, "bad-unknown-key.json", '{"learning_rate": 0.001}')
    put(t, "bad-lr-string.json", '{"lr": "fast"}')
    put(t, "bad-r-zero.json", '{"r": 0}')
    put(t, "bad-epochs-fraction.json", '{"epochs": 1.5}')
    put(t, "bad-unknown-preset.json", '{"placements": ["everything"]}')
    put(t, "bad-too-many-placements.json", json.dumps({"placements": ["ffn"] * 65}))
    put(t, "bad-empty-targets.json", '{"placements": [{"name": "x", "target_modules": []}]}')
    put(t, "bad-placement-name.json", '{"placements": [{"name": "a b<", "target_modules": ["c_fc"]}]}')
    put(t, "bad-layer-negative.json", '{"placements": [{"name": "x", "target_modules": ["c_fc"], "layers": [-1]}]}')
    put(t, "bad-schedule.json", '{"schedule": "exponential"}')
    put(t, "bad-alpha-overflow.json", '{"alpha": 1e300}')
    put(t, "bad-path-too-long.json", json.dumps({"model": "m" * 2000}))


def make_tokenizer():
    t = "tokenizer"
    put(t, "ok-text-english.txt", b"\x00" + "Hello world! It's 2024, isn't it?\n\n  Indented.".encode())
    put(t, "ok-text-unicode.txt", b"\x00" + "naïve café — 日本語 😀 Ελληνικά\t\r\n".encode())
    put(t, "ok-text-endoftext.txt", b"\x00" + b"<|endoftext|> is plain text here")
    put(t, "ok-text-empty.txt", b"\x00")
    put(t, "ok-text-nul.txt", b"\x00a\x00b")
    put(t, "ok-ids-i32.bin", b"\x01" + struct.pack("<6i", 15496, 995, 0, 50256, 220, 13))
    put(t, "ok-ids-u16.bin", b"\x02" + struct.pack("<5H", 100, 200, 300, 65535, 7))
    put(t, "ok-ids-byte-tokens.bin", b"\x01" + struct.pack("<3i", 171, 254, 251))
    put(t, "bad-text-invalid-byte.txt", b"\x00abc\xffdef")
    put(t, "bad-text-overlong.txt", b"\x00\xc0\xaf")
    put(t, "bad-text-surrogate.txt", b"\x00\xed\xa0\x80")
    put(t, "bad-text-past-max.txt", b"\x00\xf4\x90\x80\x80")
    put(t, "bad-text-truncated-seq.txt", b"\x00ok \xe6\x97")
    put(t, "bad-ids-negative.bin", b"\x01" + struct.pack("<2i", 5, -1))
    put(t, "bad-ids-past-vocab.bin", b"\x01" + struct.pack("<2i", 50257, 5))
    put(t, "bad-ids-int-min.bin", b"\x01" + struct.pack("<i", -2 ** 31))


def make_vocab():
    t = "vocab"
    toks = tiny_vocab()
    vocab = json.dumps({s: i for i, s in enumerate(toks)}, ensure_ascii=False).encode()
    merges = ("#version: 0.2\n" + "\n".join(a + " " + b for a, b in MERGES) + "\n").encode()
    put(t, "ok-tiny.txt", vocab + NUL + merges)
    put(t, "ok-crlf-merges.txt", vocab + NUL + merges.replace(b"\n", b"\r\n"))
    put(t, "ok-no-merges.txt", vocab + NUL)
    put(t, "bad-malformed-json.txt", vocab[:-3] + NUL + merges)
    put(t, "bad-not-object.txt", b"[1,2,3]" + NUL + merges)
    put(t, "bad-too-few-tokens.txt", b'{"a": 0, "b": 1}' + NUL)
    missing = {s: i for i, s in enumerate(toks) if s != B2U[ord("q")]}
    missing["qq"] = toks.index(B2U[ord("q")])
    put(t, "bad-missing-byte.txt", json.dumps(missing, ensure_ascii=False).encode() + NUL)
    dup = {s: i for i, s in enumerate(toks)}
    dup["zz"] = 3
    put(t, "bad-duplicate-id.txt", json.dumps(dup, ensure_ascii=False).encode() + NUL)
    gap = {s: (i if i < 100 else i + 1) for i, s in enumerate(toks)}
    put(t, "bad-id-gap.txt", json.dumps(gap, ensure_ascii=False).encode() + NUL)
    put(t, "bad-id-not-number.txt", vocab[:-1] + b', "x": "7"}' + NUL)
    put(t, "bad-merge-not-in-vocab.txt", vocab + NUL + b"Q Z\n")
    put(t, "bad-merge-no-space.txt", vocab + NUL + b"he\n")


def make_adapter():
    t = "adapter"
    L, C, r = 2, 64, 4
    cfg = OrderedDict([("peft_type", "LORA"), ("task_type", "CAUSAL_LM"), ("r", r), ("lora_alpha", 8),
                       ("lora_dropout", 0.0), ("target_modules", ["c_attn"]), ("fan_in_fan_out", True),
                       ("bias", "none"), ("use_rslora", False), ("layers_to_transform", None),
                       ("base_model_name_or_path", "fuzz")])
    rng = np.random.default_rng(1)

    def tensors(dtype="F32", skip=None, bad_shape=None, extra=None, layers=range(L)):
        ents = []
        for l in layers:
            for part, shape in (("lora_A", [r, C]), ("lora_B", [3 * C, r])):
                key = "base_model.model.transformer.h.%d.attn.c_attn.%s.weight" % (l, part)
                if key == skip:
                    continue
                if key == bad_shape:
                    shape = [shape[0] + 1, shape[1]]
                n = shape[0] * shape[1]
                vals = rng.standard_normal(n).astype(np.float32) * 0.1
                raw = vals.astype("<f4").tobytes() if dtype == "F32" else vals.astype("<f2").tobytes()
                ents.append((key, dtype, shape, raw, None))
        if extra:
            ents.append((extra, "F32", [r, C], np.zeros(r * C, "<f4").tobytes(), None))
        return safetensors(ents, meta={"format": "pt"})

    cj = json.dumps(cfg, indent=2).encode()
    put(t, "ok-c_attn.txt", cj + NUL + tensors())
    put(t, "ok-c_attn-f16.txt", cj + NUL + tensors("F16"))
    one = dict(cfg, layers_to_transform=[1])
    put(t, "ok-layer-1.txt", json.dumps(one).encode() + NUL + tensors(layers=[1]))
    put(t, "bad-missing-b.txt",
        cj + NUL + tensors(skip="base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"))
    put(t, "bad-wrong-shape.txt",
        cj + NUL + tensors(bad_shape="base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"))
    put(t, "bad-extra-tensor.txt",
        cj + NUL + tensors(extra="base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight"))
    put(t, "bad-peft-type.txt", json.dumps(dict(cfg, peft_type="PREFIX_TUNING")).encode() + NUL + tensors())
    put(t, "bad-bias.txt", json.dumps(dict(cfg, bias="all")).encode() + NUL + tensors())
    put(t, "bad-r-mismatch.txt", json.dumps(dict(cfg, r=8)).encode() + NUL + tensors())
    put(t, "bad-layer-out-of-range.txt",
        json.dumps(dict(cfg, layers_to_transform=[5])).encode() + NUL + tensors())
    put(t, "bad-malformed-config.txt", cj[:20] + NUL + tensors())
    put(t, "bad-missing-r.txt", json.dumps({k: v for k, v in cfg.items() if k != "r"}).encode() + NUL + tensors())
    put(t, "bad-safetensors-truncated.txt", cj + NUL + tensors()[:100])
    put(t, "bad-no-safetensors.txt", cj)


HF_CONFIG = OrderedDict([("architectures", ["GPT2LMHeadModel"]), ("model_type", "gpt2"),
                         ("activation_function", "gelu_new"), ("n_layer", 1), ("n_embd", 32), ("n_head", 2),
                         ("n_positions", 16), ("n_ctx", 16), ("vocab_size", len(tiny_vocab())),
                         ("layer_norm_epsilon", 1e-5), ("tie_word_embeddings", True),
                         ("scale_attn_weights", True)])


def make_hf_config():
    t = "hf_config"
    put(t, "ok-tiny.json", json.dumps(HF_CONFIG, indent=2))
    dialogpt = OrderedDict([("activation_function", "gelu_new"), ("architectures", ["GPT2LMHeadModel"]),
                            ("attn_pdrop", 0.1), ("bos_token_id", 50256), ("embd_pdrop", 0.1),
                            ("eos_token_id", 50256), ("initializer_range", 0.02), ("layer_norm_epsilon", 1e-05),
                            ("model_type", "gpt2"), ("n_ctx", 1024), ("n_embd", 1024), ("n_head", 16),
                            ("n_layer", 24), ("n_positions", 1024), ("resid_pdrop", 0.1),
                            ("summary_activation", None), ("task_specific_params", {"conversational": {
                                "max_length": 1000}}), ("vocab_size", 50257)])
    put(t, "ok-dialogpt-medium.json", json.dumps(dialogpt, indent=2))
    put(t, "ok-n_ctx-only.json", json.dumps({"n_layer": 2, "n_embd": 64, "n_head": 4, "n_ctx": 32,
                                             "vocab_size": 300}))
    drop = lambda k: json.dumps({a: b for a, b in HF_CONFIG.items() if a != k})
    put(t, "bad-missing-n_layer.json", drop("n_layer"))
    put(t, "bad-missing-positions.json", json.dumps({a: b for a, b in HF_CONFIG.items()
                                                     if a not in ("n_positions", "n_ctx")}))
    put(t, "bad-n_embd-string.json", json.dumps(dict(HF_CONFIG, n_embd="32")))
    put(t, "bad-n_layer-zero.json", json.dumps(dict(HF_CONFIG, n_layer=0)))
    put(t, "bad-n_layer-huge.json", json.dumps(dict(HF_CONFIG, n_layer=1 << 40)))
    put(t, "bad-head-not-divisor.json", json.dumps(dict(HF_CONFIG, n_head=5)))
    put(t, "bad-n_embd-not-32.json", json.dumps(dict(HF_CONFIG, n_embd=48, n_head=3)))
    put(t, "bad-model-type.json", json.dumps(dict(HF_CONFIG, model_type="llama")))
    put(t, "bad-activation.json", json.dumps(dict(HF_CONFIG, activation_function="relu")))
    put(t, "bad-untied.json", json.dumps(dict(HF_CONFIG, tie_word_embeddings=False)))
    put(t, "bad-n_inner.json", json.dumps(dict(HF_CONFIG, n_inner=100)))
    put(t, "bad-eps.json", json.dumps(dict(HF_CONFIG, layer_norm_epsilon=-1)))
    put(t, "bad-malformed.json", '{"n_layer": 1, ')
    put(t, "bad-not-object.json", "[]")
    put(t, "bad-non-utf8.json", b'{"model_type": "gpt\xff2"}')


def hf_state_dict(L=1, C=32, T=16, V=None, conv=True):
    """GPT-2 tensors in HF naming and Conv1D layout [in, out], float32 numpy."""
    V = V or len(tiny_vocab())
    rng = np.random.default_rng(3)
    r = lambda *s: (rng.standard_normal(s) * 0.02).astype(np.float32)
    sd = OrderedDict([("transformer.wte.weight", r(V, C)), ("transformer.wpe.weight", r(T, C))])
    for l in range(L):
        p = "transformer.h.%d." % l
        sd[p + "ln_1.weight"] = np.ones(C, np.float32)
        sd[p + "ln_1.bias"] = np.zeros(C, np.float32)
        sd[p + "attn.c_attn.weight"] = r(C, 3 * C)
        sd[p + "attn.c_attn.bias"] = r(3 * C)
        sd[p + "attn.c_proj.weight"] = r(C, C)
        sd[p + "attn.c_proj.bias"] = r(C)
        sd[p + "ln_2.weight"] = np.ones(C, np.float32)
        sd[p + "ln_2.bias"] = np.zeros(C, np.float32)
        sd[p + "mlp.c_fc.weight"] = r(C, 4 * C)
        sd[p + "mlp.c_fc.bias"] = r(4 * C)
        sd[p + "mlp.c_proj.weight"] = r(4 * C, C)
        sd[p + "mlp.c_proj.bias"] = r(C)
    sd["transformer.ln_f.weight"] = np.ones(C, np.float32)
    sd["transformer.ln_f.bias"] = np.zeros(C, np.float32)
    return sd


def st_of(sd, dtype="F32"):
    np_t = {"F32": "<f4", "F16": "<f2"}[dtype]
    return safetensors([(k, dtype, list(v.shape), v.astype(np_t).tobytes(), None) for k, v in sd.items()],
                       meta={"format": "pt"})


def make_hf_convert():
    """Small checkpoints (64-token vocabulary, fp16 mostly) to keep the corpus light:
    the converter pads the vocabulary to vocab_size, the GGUF tokenizer may refuse a
    vocabulary without byte tokens, which the target allows."""
    import torch
    t = "hf_convert"
    V = 64
    toks = tiny_vocab()[:V]
    vocab = json.dumps({s: i for i, s in enumerate(toks)}, ensure_ascii=False).encode()
    merges = b"#version: 0.2\n! \"\n"
    conf = dict(HF_CONFIG, vocab_size=V)
    cfg = json.dumps(conf).encode()
    head = lambda c=cfg, v=vocab, m=merges: c + NUL + v + NUL + m + NUL
    sd = hf_state_dict(V=V)
    f16 = lambda d: st_of(d, "F16")
    put(t, "ok-safetensors-f32.bin", head() + st_of(sd))
    put(t, "ok-safetensors-f16.bin", head() + f16(sd))
    tsd = OrderedDict((k, torch.from_numpy(v).half()) for k, v in sd.items())
    tsd["transformer.h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 16, 16, dtype=torch.uint8))
    tsd["transformer.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    tsd["lm_head.weight"] = tsd["transformer.wte.weight"]
    put(t, "ok-torch-f16-with-buffers.bin", head() + torch_save_bytes(tsd))
    short = OrderedDict((k[len("transformer."):], v) for k, v in sd.items())
    put(t, "ok-names-without-prefix.bin", head() + f16(short))
    missing = OrderedDict((k, v) for k, v in sd.items() if k != "transformer.h.0.mlp.c_fc.bias")
    put(t, "bad-missing-tensor.bin", head() + f16(missing))
    wrong = OrderedDict(sd)
    wrong["transformer.h.0.attn.c_attn.weight"] = np.zeros((3 * 32, 32), np.float32)
    put(t, "bad-conv1d-not-transposed.bin", head() + f16(wrong))
    extra = OrderedDict(sd)
    extra["transformer.h.1.ln_1.weight"] = np.ones(32, np.float32)
    put(t, "bad-extra-layer.bin", head() + f16(extra))
    untied = OrderedDict(sd)
    untied["lm_head.weight"] = np.ones_like(sd["transformer.wte.weight"])
    put(t, "bad-untied-head.bin", head() + f16(untied))
    put(t, "bad-config-mismatch.bin", head(c=json.dumps(dict(conf, n_embd=64)).encode()) + f16(sd))
    put(t, "bad-vocab-too-large.bin", head(c=json.dumps(dict(conf, vocab_size=32)).encode()) +
        f16(hf_state_dict(V=32)))
    put(t, "bad-vocab-not-utf8.bin", head(v=vocab[:-1] + b', "\xff": 63}') + f16(sd))
    put(t, "merge-unknown-token.bin", head(m=b"#version: 0.2\nzz yy\n") + f16(sd))
    put(t, "bad-checkpoint-truncated.bin", head() + f16(sd)[:-100])
    put(t, "bad-checkpoint-empty.bin", head())


def main():
    makers = {"hf_config": make_hf_config, "hf_convert": make_hf_convert, "gguf": make_gguf, "safetensors": make_safetensors, "torch_zip": make_torch,
              "alpaca": make_alpaca, "experiment": make_experiment, "tokenizer": make_tokenizer,
              "vocab": make_vocab, "adapter": make_adapter}
    only = sys.argv[1:] or list(makers)
    for name in only:
        makers[name]()
        print("seeds: %s: %d files" % (name, len(os.listdir(os.path.join(OUT, name)))))


if __name__ == "__main__":
    main()
