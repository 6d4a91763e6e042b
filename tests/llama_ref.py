#!/usr/bin/python3
"""Float64 reference for the Llama-family engine (tests/test_llama.c).

Writes a tiny random Hugging Face checkpoint (config.json, model.safetensors in f32,
bf16 or f16, one file or sharded with model.safetensors.index.json, vocab.json and
merges.txt) and ref.safetensors with what an independent implementation computes on
it in float64: the logits of a token sequence, the mean next-token loss, and the
gradient of that loss for every parameter, by autograd.

The model is written here from transformers' LlamaForCausalLM / Qwen2ForCausalLM
semantics (RMSNorm, rotate-half RoPE with rope_theta, grouped-query attention,
SwiGLU, qwen2's q/k/v biases, tied or untied lm_head), not imported from them.

  /usr/bin/python3 tests/llama_ref.py --arch llama --out DIR [--dtype bf16] [--shards 2] [--adam]
                                      [--vocab N] [--tokenizer DIR_WITH_TOKENIZER_JSON]

With --adam it also writes an all-linear LoRA adapter in PEFT's layout (DIR/adapter0)
and records the losses of 5 AdamW steps from it and the eval loss after them.

With --load DIR it works on an existing checkpoint folder instead (bench/llama_check.mjs,
full-size shapes from scripts/make_checkpoint.py):

  /usr/bin/python3 tests/llama_ref.py --load DIR --make-adapter ADIR [--r 8 --alpha 16 --seed 7]
  /usr/bin/python3 tests/llama_ref.py --load DIR --adapter ADIR --plan PLAN.json > FIGURES.json

the first writes an all-linear PEFT adapter for its shape (B not zero), the second prints
the float64 figures of a plan of token ids (check_plan): base and adapter eval loss, the
losses of AdamW steps from the adapter and the eval loss after them.
"""
import argparse
import json
import os
import shutil
import struct

import torch

DT = {"f32": (torch.float32, "F32"), "bf16": (torch.bfloat16, "BF16"), "f16": (torch.float16, "F16")}


def config_of(arch):
    c = {"model_type": arch, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320,
         "max_position_embeddings": 64, "hidden_act": "silu", "attention_dropout": 0.0}
    if arch == "llama":
        c.update(architectures=["LlamaForCausalLM"], rope_theta=10000.0, rms_norm_eps=1e-5,
                 tie_word_embeddings=False)
    else:
        c.update(architectures=["Qwen2ForCausalLM"], rope_theta=1000000.0, rms_norm_eps=1e-6,
                 tie_word_embeddings=True)
    return c


def param_shapes(c):
    """(name, shape) in LlamaForCausalLM's state-dict order."""
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = d // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", (v, d))]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [(p + "self_attn.q_proj.weight", (d, d))]
        if c["model_type"] == "qwen2":
            out += [(p + "self_attn.q_proj.bias", (d,))]
        out += [(p + "self_attn.k_proj.weight", (kv, d))]
        if c["model_type"] == "qwen2":
            out += [(p + "self_attn.k_proj.bias", (kv,))]
        out += [(p + "self_attn.v_proj.weight", (kv, d))]
        if c["model_type"] == "qwen2":
            out += [(p + "self_attn.v_proj.bias", (kv,))]
        out += [(p + "self_attn.o_proj.weight", (d, d)), (p + "mlp.gate_proj.weight", (f, d)),
                (p + "mlp.up_proj.weight", (f, d)), (p + "mlp.down_proj.weight", (d, f)),
                (p + "input_layernorm.weight", (d,)), (p + "post_attention_layernorm.weight", (d,))]
    out += [("model.norm.weight", (d,))]
    if not c["tie_word_embeddings"]:
        out += [("lm_head.weight", (v, d))]
    return out


def random_params(c, gen, dtype):
    """O(0.1) weights so every nonlinearity matters; norms near 1; rounded to dtype."""
    ps = {}
    for name, shape in param_shapes(c):
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            t = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        ps[name] = t.to(dtype).to(torch.float64)
    return ps


def rms(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


MODULES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def forward(c, p, tokens, lora=None, scaling=0.0):
    """Logits [T][V] of LlamaForCausalLM / Qwen2ForCausalLM, in float64; lora maps
    "model.layers.N.<module>" to (A [r, in], B [out, r]): PEFT's y += scaling B A x."""
    T = tokens.shape[0]
    d, H, KV = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd, eps = d // H, c["rms_norm_eps"]
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    x = p["model.embed_tokens.weight"][tokens]
    for l in range(c["num_hidden_layers"]):
        pre = f"model.layers.{l}."
        def lin(n, v, pre=pre):
            y = v @ p[pre + n + ".weight"].T + p.get(pre + n + ".bias", 0.0)
            if lora and pre + n in lora:
                A, B = lora[pre + n]
                y = y + scaling * ((v @ A.T) @ B.T)
            return y
        h = rms(x, p[pre + "input_layernorm.weight"], eps)
        q = lin("self_attn.q_proj", h).view(T, H, hd).transpose(0, 1)
        k = lin("self_attn.k_proj", h).view(T, KV, hd).transpose(0, 1)
        v = lin("self_attn.v_proj", h).view(T, KV, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        a = torch.softmax(q @ k.transpose(1, 2) / hd ** 0.5 + mask, dim=-1) @ v
        x = x + lin("self_attn.o_proj", a.transpose(0, 1).reshape(T, d))
        h = rms(x, p[pre + "post_attention_layernorm.weight"], eps)
        g = lin("mlp.gate_proj", h)
        x = x + lin("mlp.down_proj", torch.nn.functional.silu(g) * lin("mlp.up_proj", h))
    x = rms(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ head.T


def st_bytes(tensors):
    """safetensors bytes of {name: (dtype tag, raw bytes, shape)} in insertion order."""
    header, off, blobs = {}, 0, []
    for name, (tag, raw, shape) in tensors.items():
        header[name] = {"dtype": tag, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def raw_of(t, dtype):
    t = t.to(dtype).contiguous()
    if dtype == torch.bfloat16:  # numpy has no bf16: take the high halves of fp32
        return (t.to(torch.float32).view(torch.int32) >> 16).to(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_checkpoint(out, c, p, dtype, tag, shards):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    names = [n for n, _ in param_shapes(c)]
    if shards <= 1:
        with open(os.path.join(out, "model.safetensors"), "wb") as f:
            f.write(st_bytes({n: (tag, raw_of(p[n], dtype), p[n].shape) for n in names}))
    else:
        weight_map, per = {}, (len(names) + shards - 1) // shards
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = names[s * per:(s + 1) * per]
            with open(os.path.join(out, fname), "wb") as f:
                f.write(st_bytes({n: (tag, raw_of(p[n], dtype), p[n].shape) for n in part}))
            weight_map.update({n: fname for n in part})
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)
    # a byte-level vocabulary (GPT-2's byte-to-unicode map) and GPT-2's end-of-text, padded
    # to vocab_size by the importer: the GPT-2 tokenizer until tokenizer.json is read
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    vocab = {chr(ch): i for i, ch in enumerate(cs)}
    vocab["<|endoftext|>"] = 256
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")


def site_dims(c):
    """(in, out) of each linear module of a block."""
    d = c["hidden_size"]
    hd = d // c["num_attention_heads"]
    kv, f = c["num_key_value_heads"] * hd, c["intermediate_size"]
    return {"self_attn.q_proj": (d, d), "self_attn.k_proj": (d, kv), "self_attn.v_proj": (d, kv),
            "self_attn.o_proj": (d, d), "mlp.gate_proj": (d, f), "mlp.up_proj": (d, f), "mlp.down_proj": (f, d)}


def make_adapter(ad, c, gen, r, alpha, b_std=0.05):
    """An all-linear adapter (A kaiming-uniform as PEFT, B N(0, b_std) so both get
    gradients), rounded to float32 and saved in PEFT's layout in folder ad; returns
    {"model.layers.N.<module>": (A, B)} in float64 (leaves that require grad)."""
    dims = site_dims(c)
    lora, tensors = {}, {}
    for l in range(c["num_hidden_layers"]):
        for m in MODULES:
            i, o = dims[m]
            A = (torch.rand((r, i), generator=gen, dtype=torch.float64) * 2 - 1) / i ** 0.5
            B = b_std * torch.randn((o, r), generator=gen, dtype=torch.float64)
            A, B = A.float().double(), B.float().double()  # what the float32 file holds
            key = f"model.layers.{l}.{m}"
            lora[key] = (A.requires_grad_(True), B.requires_grad_(True))
            tensors[f"base_model.model.{key}.lora_A.weight"] = ("F32", raw_of(A.detach(), torch.float32), A.shape)
            tensors[f"base_model.model.{key}.lora_B.weight"] = ("F32", raw_of(B.detach(), torch.float32), B.shape)
    os.makedirs(ad, exist_ok=True)
    with open(os.path.join(ad, "adapter_model.safetensors"), "wb") as fh:
        fh.write(st_bytes(tensors))
    with open(os.path.join(ad, "adapter_config.json"), "w") as fh:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
                   "target_modules": [m.split(".")[1] for m in MODULES], "fan_in_fan_out": False,
                   "bias": "none", "layers_to_transform": None, "use_rslora": False}, fh, indent=1)
    return lora


def adamw_run(out, c, p, gen, steps=5, lr=1e-2, r=4, alpha=8.0, T=24):
    """An all-linear adapter (make_adapter) saved in PEFT's layout (out/adapter0), then
    `steps` AdamW steps (torch.optim.AdamW, float64) on random sequences, one per step;
    returns what ref.safetensors records."""
    lora = make_adapter(os.path.join(out, "adapter0"), c, gen, r, alpha)
    params = [t for ab in lora.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    V = c["vocab_size"]
    seqs = torch.randint(0, V, (steps, T + 1), generator=gen)
    ev = torch.randint(0, V, (T + 1,), generator=gen)
    losses = []
    for k in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(forward(c, p, seqs[k, :-1], lora, alpha / r), seqs[k, 1:])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        eloss = torch.nn.functional.cross_entropy(forward(c, p, ev[:-1], lora, alpha / r), ev[1:])
    f32 = lambda t: ("F32", raw_of(t.double(), torch.float32), t.shape)
    return {"adam.train_tokens": f32(seqs.double()), "adam.eval_tokens": f32(ev.double()),
            "adam.losses": f32(torch.tensor(losses, dtype=torch.float64)),
            "adam.eval_loss": f32(eloss.reshape(1)), "adam.lr": f32(torch.tensor([lr], dtype=torch.float64))}


def read_checkpoint(folder):
    """config.json and the weights (model.safetensors or the shards of
    model.safetensors.index.json; F32, F16 or BF16) of a Hugging Face Llama / Qwen2
    folder, in float64, read one tensor at a time (no safetensors package)."""
    import numpy as np
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    c.setdefault("tie_word_embeddings", False)  # LlamaConfig's and Qwen2Config's default
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) \
        else ["model.safetensors"]
    p = {}
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            header.pop("__metadata__", None)
            for key, t in header.items():
                a, b = t["data_offsets"]
                f.seek(8 + n + a)
                raw = f.read(b - a)
                if t["dtype"] == "BF16":  # the high halves of fp32
                    arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
                else:
                    arr = np.frombuffer(raw, {"F32": "<f4", "F16": "<f2"}[t["dtype"]])
                p[key] = torch.from_numpy(arr.astype(np.float64)).reshape(t["shape"])
                del raw, arr
    return c, p


def read_adapter(ad):
    """A PEFT folder make_adapter wrote: {"model.layers.N.<module>": (A, B)} in float64
    (leaves that require grad) and its scaling alpha / r."""
    import numpy as np
    with open(os.path.join(ad, "adapter_config.json")) as f:
        ac = json.load(f)
    raw = open(os.path.join(ad, "adapter_model.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    t = {k: torch.from_numpy(np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4")
                             .astype(np.float64)).reshape(v["shape"]) for k, v in header.items()}
    lora = {}
    for k in t:
        if k.endswith(".lora_A.weight"):
            key = k[len("base_model.model."):-len(".lora_A.weight")]
            lora[key] = (t[k].requires_grad_(True), t[k[:-len("lora_A.weight")] + "lora_B.weight"].requires_grad_(True))
    return lora, ac["lora_alpha"] / ac["r"]


def example_nll(c, p, ex, lora=None, scaling=0.0):
    """Summed NLL of an example's scored tokens ({"ids", "scored"}: a token is scored by
    the prediction from the tokens before it) and their number."""
    ids = torch.tensor(ex["ids"], dtype=torch.long)
    keep = torch.tensor([bool(s) for s in ex["scored"][1:]])
    nll = torch.nn.functional.cross_entropy(forward(c, p, ids[:-1], lora, scaling), ids[1:], reduction="none")
    return nll[keep].sum(), int(keep.sum())


def eval_loss(c, p, examples, lora=None, scaling=0.0):
    """Total NLL over the scored tokens of the examples / their number, as loralab eval."""
    with torch.no_grad():
        tot = [example_nll(c, p, ex, lora, scaling) for ex in examples]
    return sum(float(s) for s, _ in tot) / sum(n for _, n in tot)


def check_plan(folder, ad, plan):
    """The float64 figures of an existing checkpoint for a plan ({"eval": examples,
    "train": one example per step, "lr": per step, "weight_decay"}, examples as
    example_nll takes them): base eval loss, base loss of each training example, eval
    loss with the PEFT adapter in ad, the loss of each AdamW step from it
    (torch.optim.AdamW, betas 0.9/0.999, eps 1e-8, no clipping) and the eval loss after."""
    import resource
    import time
    t0 = time.time()
    c, p = read_checkpoint(folder)
    load_s = time.time() - t0
    lora, scaling = read_adapter(ad)
    res = {"dtype": "float64", "torch": torch.__version__, "load_s": load_s}
    res["base_eval_loss"] = eval_loss(c, p, plan["eval"])
    res["train_base_losses"] = [eval_loss(c, p, [ex]) for ex in plan["train"]]
    res["adapter_eval_loss"] = eval_loss(c, p, plan["eval"], lora, scaling)
    params = [t for ab in lora.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=plan["lr"][0], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=plan.get("weight_decay", 0.0))
    res["step_losses"] = []
    for ex, lr in zip(plan["train"], plan["lr"]):
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        s, n = example_nll(c, p, ex, lora, scaling)
        loss = s / n
        loss.backward()
        opt.step()
        res["step_losses"].append(loss.item())
    res["eval_loss_after"] = eval_loss(c, p, plan["eval"], lora, scaling)
    res["seconds"] = time.time() - t0
    res["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["llama", "qwen2"])
    ap.add_argument("--out")
    ap.add_argument("--load", metavar="DIR", help="an existing checkpoint folder instead of a tiny random one: "
                    "with --make-adapter writes an adapter for it, with --plan computes the plan's figures")
    ap.add_argument("--make-adapter", metavar="ADIR", help="with --load: an all-linear PEFT adapter (--r, --alpha, "
                    "--seed; B not zero) for the checkpoint's shape")
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--plan", help="with --load and --adapter: a JSON plan (see check_plan); prints JSON")
    ap.add_argument("--adapter", metavar="ADIR", help="the initial adapter of --plan")
    ap.add_argument("--dtype", choices=list(DT), default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--T", type=int, default=40)
    ap.add_argument("--vocab", type=int, default=0, help="vocab_size (default 320)")
    ap.add_argument("--tokenizer", help="a folder with tokenizer.json (and tokenizer_config.json): copied in, "
                    "as a Llama-family Hub folder has them; vocab.json and merges.txt are left out for llama")
    ap.add_argument("--adam", action="store_true",
                    help="also an initial adapter (DIR/adapter0) and 5 AdamW steps from it")
    a = ap.parse_args()
    if a.load:
        if a.make_adapter:
            with open(os.path.join(a.load, "config.json")) as f:
                make_adapter(a.make_adapter, json.load(f), torch.Generator().manual_seed(a.seed), a.r, a.alpha)
        if a.plan:
            if not a.adapter:
                ap.error("--plan needs --adapter")
            with open(a.plan) as f:
                print(json.dumps(check_plan(a.load, a.adapter, json.load(f))))
        return
    if not a.arch or not a.out:
        ap.error("--arch and --out are required (or --load)")
    c = config_of(a.arch)
    if a.vocab:
        c["vocab_size"] = a.vocab
    gen = torch.Generator().manual_seed(a.seed)
    dtype, tag = DT[a.dtype]
    p = random_params(c, gen, dtype)
    write_checkpoint(a.out, c, p, dtype, tag, a.shards)
    if a.tokenizer:
        # Qwen2.5's Hub folder has vocab.json + merges.txt beside tokenizer.json; the
        # Llama ones (SmolLM2's, TinyLlama's) only tokenizer.json
        for name in ("tokenizer.json", "tokenizer_config.json"):
            if os.path.exists(os.path.join(a.tokenizer, name)):
                shutil.copy(os.path.join(a.tokenizer, name), os.path.join(a.out, name))
        if a.arch == "llama":
            os.remove(os.path.join(a.out, "vocab.json"))
            os.remove(os.path.join(a.out, "merges.txt"))
    tokens = torch.randint(0, c["vocab_size"], (a.T + 1,), generator=gen)
    for t in p.values():
        t.requires_grad_(True)
    logits = forward(c, p, tokens[:-1])
    loss = torch.nn.functional.cross_entropy(logits, tokens[1:])
    loss.backward()
    ref = {"tokens": ("F32", raw_of(tokens.double(), torch.float32), tokens.shape),
           "logits": ("F32", raw_of(logits.detach(), torch.float32), logits.shape),
           "loss": ("F32", raw_of(loss.detach().reshape(1), torch.float32), (1,))}
    for n, t in p.items():
        ref["grad." + n] = ("F32", raw_of(t.grad, torch.float32), t.shape)
    if a.adam:
        base = {n: t.detach() for n, t in p.items()}
        ref.update(adamw_run(a.out, c, base, gen))
    with open(os.path.join(a.out, "ref.safetensors"), "wb") as f:
        f.write(st_bytes(ref))
    print(f"{a.arch} {a.dtype} shards={a.shards}: loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
