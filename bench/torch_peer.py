#!/usr/bin/python3
"""PyTorch CPU peer for `loralab bench`: one LoRA training step of GPT-2 or a Llama-family model in fp32.

A hand-written GPT-2 (HF GPT2LMHeadModel semantics: pre-LayerNorm blocks, fused
c_attn, causal attention, gelu_new, tied LM head) and a hand-written Llama / Qwen2
(LlamaForCausalLM / Qwen2ForCausalLM semantics: RMSNorm, rotate-half RoPE with
rope_theta, grouped-query attention, SwiGLU MLP, qwen2's q/k/v biases, tied or untied
head), with LoRA as PEFT applies it: y = x W^T + b + (alpha/r) * B(A(dropout(x))),
A kaiming-uniform, B zeros, base frozen, AdamW on the adapters only. The preset's
arch (`loralab count --presets`) picks the model and the placement names (GPT-2's
c_attn, ... or PEFT's q_proj ... down_proj). Random weights, random tokens: only speed
and memory matter here; `--check DIR --check-tokens FILE` is the correctness side: the
Llama block's float64 loss on a Hugging Face checkpoint for the ids `loralab eval --json
--tokens` scored (tests/cli_torch_peer_llama.sh sets it beside the C core's). Run with
Debian's interpreter (/usr/bin/python3, python3-torch 1.13) and libopenblas0-pthread.

Thread handling (see /work/shared/DESIGN.md): OpenBLAS keeps its own pool sized by
OPENBLAS_NUM_THREADS when the library loads, so every thread count is measured in a
fresh child process with that variable set and torch's OpenMP pool at 1; the report
is the faster run. `--threads N` runs one configuration in this process instead.

    /usr/bin/python3 bench/torch_peer.py --preset dialogpt-small --max-len 128 --json
    /usr/bin/python3 bench/torch_peer.py --preset smollm2-135m --placement all-linear --json
    /usr/bin/python3 bench/torch_peer.py --check CHECKPOINT_DIR --check-tokens eval-tokens.json
    /usr/bin/python3 bench/torch_peer.py --peak
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

def load_presets():
    """Model shapes and placements from `loralab count --presets` (the library's one
    list): $LORALAB, else $LPL_BUILD_DIR/loralab, else build/loralab of this checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = os.environ.get("LORALAB") or os.path.join(os.environ.get("LPL_BUILD_DIR") or os.path.join(root, "build"),
                                                    "loralab")
    try:
        out = subprocess.run([exe, "count", "--presets"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("torch_peer: cannot read the presets from %s count --presets (%s); build loralab or set LORALAB"
                 % (exe, e))
    doc = json.loads(out)
    # every model with its arch's fields (llama / qwen2: n_kv_head, n_ff, rope_theta,
    # rms_norm_eps, tied, qkv_bias); placements by arch: GPT-2's and the Llama family's
    # (PEFT's module names), as loralab bench resolves --placement for the preset
    shapes = {m["name"]: m for m in doc["models"]}
    placements = {"gpt2": {p["name"]: p["target_modules"] for p in doc["placements"]},
                  "llama": {p["name"]: p["target_modules"] for p in doc.get("llama_placements", [])}}
    return shapes, placements


def family(cfg):
    """gpt2 or llama (qwen2 is a Llama with q/k/v biases)."""
    return "llama" if cfg.get("arch", "gpt2") in ("llama", "qwen2") else "gpt2"


# Shapes (n_ctx only bounds --seq) and placements as PEFT target lists (suffix matching).
PRESETS, PLACEMENTS = load_presets()
SITES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
LLAMA_SITES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def peft_matches(name, targets):
    """PEFT's list rule: k == t or k ends with "." + t."""
    return any(name == t or name.endswith("." + t) for t in targets)


def rss_kib(field):
    """VmRSS / VmHWM of this process in KiB from /proc (0 if unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def build_model(torch, cfg, targets, r, alpha, dropout, seed):
    """Frozen base tensors and trainable LoRA tensors, keyed by module path."""
    g = torch.Generator().manual_seed(seed)
    L, C, V = cfg["n_layer"], cfg["n_embd"], cfg["n_vocab"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=g).mul_(std)

    base = {
        "wte": normal(V, C),
        "wpe": normal(cfg["n_ctx"], C, std=0.01),
        "lnf_w": torch.ones(C),
        "lnf_b": torch.zeros(C),
        "blocks": [],
    }
    lora = {}
    shapes = {"attn.c_attn": (3 * C, C), "attn.c_proj": (C, C),
              "mlp.c_fc": (4 * C, C), "mlp.c_proj": (C, 4 * C)}
    proj_std = 0.02 / math.sqrt(2 * L)
    for layer in range(L):
        blk = {"ln1_w": torch.ones(C), "ln1_b": torch.zeros(C),
               "ln2_w": torch.ones(C), "ln2_b": torch.zeros(C)}
        for site in SITES:
            out_f, in_f = shapes[site]
            std = proj_std if site.endswith("c_proj") else 0.02
            blk[site] = (normal(out_f, in_f, std=std), torch.zeros(out_f))  # [out, in] as nn.Linear
            name = "transformer.h.%d.%s" % (layer, site)
            if peft_matches(name, targets):
                bound = 1.0 / math.sqrt(in_f)  # kaiming_uniform_(a=sqrt(5)) on [r, in]
                A = torch.rand(r, in_f, generator=g).mul_(2 * bound).sub_(bound)
                B = torch.zeros(out_f, r)
                lora[(layer, site)] = (A.requires_grad_(), B.requires_grad_())
        base["blocks"].append(blk)
    return base, lora


def linear(F, x, w, b, ab, scaling, dropout, training):
    """Base linear plus the LoRA branch of PEFT's lora.Linear.forward."""
    y = F.linear(x, w, b)
    if ab is not None:
        A, B = ab
        y = y + F.linear(F.linear(F.dropout(x, dropout, training), A), B) * scaling
    return y


def forward_loss(torch, F, cfg, base, lora, tokens, targets, scaling, dropout, pdrop=0.0):
    """Mean cross-entropy of GPT-2 over one sequence (batch 1), in train mode: LoRA
    dropout, and base dropout pdrop where HF's GPT-2 has it (embeddings, attention
    probabilities, the two residual branches)."""
    T = tokens.shape[0]
    C, H = cfg["n_embd"], cfg["n_head"]
    D = C // H
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = F.dropout(base["wte"][tokens] + base["wpe"][:T], pdrop, True)
    for layer, blk in enumerate(base["blocks"]):
        def lin(site, inp):
            w, b = blk[site]
            return linear(F, inp, w, b, lora.get((layer, site)), scaling, dropout, True)
        h = F.layer_norm(x, (C,), blk["ln1_w"], blk["ln1_b"], 1e-5)
        q, k, v = lin("attn.c_attn", h).split(C, dim=1)
        q = q.view(T, H, D).transpose(0, 1)
        k = k.view(T, H, D).transpose(0, 1)
        v = v.view(T, H, D).transpose(0, 1)
        att = F.dropout(torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D) + mask, dim=-1), pdrop, True)
        a = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + F.dropout(lin("attn.c_proj", a), pdrop, True)
        h = F.layer_norm(x, (C,), blk["ln2_w"], blk["ln2_b"], 1e-5)
        x = x + F.dropout(lin("mlp.c_proj", F.gelu(lin("mlp.c_fc", h), approximate="tanh")), pdrop, True)
    x = F.layer_norm(x, (C,), base["lnf_w"], base["lnf_b"], 1e-5)
    logits = F.linear(x, base["wte"])
    return F.cross_entropy(logits, targets)


# ---------------------------------------------------------------- Llama family
# LlamaForCausalLM / Qwen2ForCausalLM semantics, written here (transformers is not
# imported): RMSNorm, RoPE in the rotate-half layout with rope_theta, grouped-query
# attention (each KV head serves n_head / n_kv_head query heads, as HF's repeat_kv),
# SwiGLU MLP down(silu(gate(x)) * up(x)), qwen2's q/k/v biases, tied or untied head.


def llama_shapes(cfg):
    """[out, in] of each linear of one block, as nn.Linear holds it."""
    C, Fd = cfg["n_embd"], cfg["n_ff"]
    kv = cfg["n_kv_head"] * (C // cfg["n_head"])
    return {"self_attn.q_proj": (C, C), "self_attn.k_proj": (kv, C), "self_attn.v_proj": (kv, C),
            "self_attn.o_proj": (C, C), "mlp.gate_proj": (Fd, C), "mlp.up_proj": (Fd, C), "mlp.down_proj": (C, Fd)}


def llama_has_bias(cfg, site):
    """Qwen2 has biases on q, k and v only; Llama none."""
    return bool(cfg.get("qkv_bias")) and site in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")


def build_llama(torch, cfg, targets, r, seed):
    """Random frozen base as HF's _init_weights (normal 0.02, norms 1, biases 0) and
    PEFT's LoRA tensors on the modules the targets match (PEFT's suffix rule on
    model.layers.N.<module>)."""
    g = torch.Generator().manual_seed(seed)
    L, C, V = cfg["n_layer"], cfg["n_embd"], cfg["n_vocab"]

    def normal(*shape):
        return torch.randn(*shape, generator=g).mul_(0.02)

    base = {"embed": normal(V, C), "norm": torch.ones(C), "lm_head": None if cfg["tied"] else normal(V, C),
            "blocks": []}
    lora = {}
    shapes = llama_shapes(cfg)
    for layer in range(L):
        blk = {"input_layernorm": torch.ones(C), "post_attention_layernorm": torch.ones(C)}
        for site in LLAMA_SITES:
            out_f, in_f = shapes[site]
            blk[site] = (normal(out_f, in_f), torch.zeros(out_f) if llama_has_bias(cfg, site) else None)
            if peft_matches("model.layers.%d.%s" % (layer, site), targets):
                bound = 1.0 / math.sqrt(in_f)  # kaiming_uniform_(a=sqrt(5)) on [r, in]
                A = torch.rand(r, in_f, generator=g).mul_(2 * bound).sub_(bound)
                lora[(layer, site)] = (A.requires_grad_(), torch.zeros(out_f, r).requires_grad_())
        base["blocks"].append(blk)
    return base, lora


def rms_norm(torch, x, w, eps):
    """LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * w (no mean subtraction, no bias)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(torch, x):
    """HF's rotate_half: (x1, x2) -> (-x2, x1) on the two halves of the head."""
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_tables(torch, T, D, theta, dtype):
    """cos and sin [T, D] of HF's LlamaRotaryEmbedding: the frequencies theta^(-2i/D)
    for i < D/2, repeated for both halves (rotate-half layout, not interleaved pairs).
    Made in float64 and rounded once to the model's dtype."""
    inv = 1.0 / theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat((ang, ang), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def llama_forward_loss(torch, F, cfg, base, lora, tokens, targets, scaling, dropout, pdrop=0.0, training=True,
                       reduction="mean"):
    """Cross-entropy of a Llama / Qwen2 model over one sequence (batch 1): LoRA dropout
    and the config's attention_dropout (pdrop, on the attention probabilities: the
    family's only base dropout) when training."""
    T = tokens.shape[0]
    C, H, KV, eps = cfg["n_embd"], cfg["n_head"], cfg["n_kv_head"], cfg["rms_norm_eps"]
    D = C // H
    dtype = base["embed"].dtype
    cos, sin = rope_tables(torch, T, D, cfg["rope_theta"], dtype)
    mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)
    x = base["embed"][tokens]
    for layer, blk in enumerate(base["blocks"]):
        def lin(site, inp):
            w, b = blk[site]
            return linear(F, inp, w, b, lora.get((layer, site)), scaling, dropout, training)
        h = rms_norm(torch, x, blk["input_layernorm"], eps)
        q = lin("self_attn.q_proj", h).view(T, H, D).transpose(0, 1)
        k = lin("self_attn.k_proj", h).view(T, KV, D).transpose(0, 1)
        v = lin("self_attn.v_proj", h).view(T, KV, D).transpose(0, 1)
        q = q * cos + rotate_half(torch, q) * sin
        k = k * cos + rotate_half(torch, k) * sin
        # repeat_kv: query head j reads KV head j // (H / KV)
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        att = F.dropout(torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D) + mask, dim=-1), pdrop, training)
        a = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + lin("self_attn.o_proj", a)
        h = rms_norm(torch, x, blk["post_attention_layernorm"], eps)
        x = x + lin("mlp.down_proj", F.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h))
    x = rms_norm(torch, x, base["norm"], eps)
    logits = F.linear(x, base["embed"] if base["lm_head"] is None else base["lm_head"])
    return F.cross_entropy(logits, targets, reduction=reduction)


ST_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def read_safetensors(torch, path, dtype):
    """{name: tensor in dtype} of one .safetensors file (the format is an 8-byte
    little-endian header length, a JSON header of dtype, shape and data_offsets, then
    the raw data); read here so the peer needs only torch."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        if t["dtype"] not in ST_DTYPES:
            sys.exit("torch_peer: %s: tensor %s has dtype %s (expected F32, F16, BF16 or F64)"
                     % (path, name, t["dtype"]))
        a, b = t["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        x = torch.frombuffer(buf, dtype=getattr(torch, ST_DTYPES[t["dtype"]])) if buf else torch.zeros(0)
        out[name] = x.reshape(t["shape"]).to(dtype)
    return out


def load_llama_checkpoint(torch, folder, dtype):
    """A Hugging Face Llama / Qwen2 folder (config.json, model.safetensors or the shards
    of model.safetensors.index.json) as the peer's (cfg, base) in dtype."""
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    arch = c.get("model_type")
    if arch not in ("llama", "qwen2"):
        sys.exit("torch_peer: %s: model_type %r is not llama or qwen2" % (folder, arch))
    index = os.path.join(folder, "model.safetensors.index.json")
    files = ["model.safetensors"]
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    p = {}
    for name in files:
        p.update(read_safetensors(torch, os.path.join(folder, name), dtype))
    C, H = c["hidden_size"], c["num_attention_heads"]
    if c.get("head_dim", C // H) * H != C:
        sys.exit("torch_peer: %s: head_dim %s times %d heads is not hidden_size %d" % (folder, c["head_dim"], H, C))
    cfg = {"arch": arch, "n_layer": c["num_hidden_layers"], "n_embd": C, "n_head": H,
           "n_kv_head": c.get("num_key_value_heads", H), "n_ff": c["intermediate_size"], "n_vocab": c["vocab_size"],
           "n_ctx": c.get("max_position_embeddings", 2048), "rope_theta": float(c.get("rope_theta", 10000.0)),
           "rms_norm_eps": float(c.get("rms_norm_eps", 1e-6)), "tied": bool(c.get("tie_word_embeddings", False)),
           "qkv_bias": arch == "qwen2"}
    base = {"embed": p["model.embed_tokens.weight"], "norm": p["model.norm.weight"],
            "lm_head": None if cfg["tied"] else p["lm_head.weight"], "blocks": []}
    for layer in range(cfg["n_layer"]):
        pre = "model.layers.%d." % layer
        blk = {n: p[pre + n + ".weight"] for n in ("input_layernorm", "post_attention_layernorm")}
        for site in LLAMA_SITES:
            blk[site] = (p[pre + site + ".weight"], p.get(pre + site + ".bias") if llama_has_bias(cfg, site) else None)
        base["blocks"].append(blk)
    return cfg, base


def load_peft_adapter(torch, folder, cfg, dtype):
    """A PEFT LoRA adapter folder as the peer's {(layer, site): (A, B)} and its scaling
    (lora_alpha / r, or / sqrt(r) with use_rslora). The modules PEFT's suffix rule picks
    from target_modules (and layers_to_transform) must be the ones the file holds."""
    with open(os.path.join(folder, "adapter_config.json")) as f:
        ac = json.load(f)
    t = read_safetensors(torch, os.path.join(folder, "adapter_model.safetensors"), dtype)
    targets, layers = ac["target_modules"], ac.get("layers_to_transform")
    if isinstance(targets, str):
        sys.exit("torch_peer: %s: target_modules as a regular expression is not supported" % folder)
    if isinstance(layers, int):
        layers = [layers]
    lora, want = {}, set()
    for layer in range(cfg["n_layer"]):
        for site in LLAMA_SITES:
            key = "base_model.model.model.layers.%d.%s" % (layer, site)
            if peft_matches(key[len("base_model.model."):], targets) and (layers is None or layer in layers):
                want.add(key)
                if key + ".lora_A.weight" not in t:
                    sys.exit("torch_peer: %s: PEFT targets %s but the file has no %s.lora_A.weight" % (folder, site, key))
                lora[(layer, site)] = (t[key + ".lora_A.weight"], t[key + ".lora_B.weight"])
    extra = sorted(k for k in t if k.rsplit(".", 2)[0] not in want)
    if extra:
        sys.exit("torch_peer: %s: tensors of modules target_modules does not pick: %s" % (folder, ", ".join(extra[:3])))
    r = ac["r"]
    return lora, ac["lora_alpha"] / (math.sqrt(r) if ac.get("use_rslora") else r)


def run_check(args):
    """The peer's Llama forward on a checkpoint (float64) for the token sequences of a
    `loralab eval --json --tokens` document: the loss of every scored token (a token is
    scored by the prediction from the tokens before it) and their mean, of the base and,
    with --check-adapter, of base + that PEFT adapter, to set beside what the C core
    computed on the same weights and ids."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    cfg, base = load_llama_checkpoint(torch, args.check, torch.float64)
    models = {"": ({}, 0.0)}
    if args.check_adapter:
        models["_adapter"] = load_peft_adapter(torch, args.check_adapter, cfg, torch.float64)
    with open(args.check_tokens) as f:
        doc = json.load(f)
    res = {"peer": "pytorch-check", "torch": torch.__version__, "arch": cfg["arch"], "dtype": "float64"}
    for suffix, (lora, scaling) in models.items():
        per_example, total, n = [], 0.0, 0
        with torch.no_grad():
            for ex in doc["examples"]:
                ids = torch.tensor([t["id"] for t in ex["tokens"]], dtype=torch.long)
                losses = llama_forward_loss(torch, F, cfg, base, lora, ids[:-1], ids[1:], scaling, 0.0, 0.0, False,
                                            "none")
                got = [float(losses[i - 1]) if t["scored"] and i > 0 else None for i, t in enumerate(ex["tokens"])]
                per_example.append(got)
                total += sum(x for x in got if x is not None)
                n += sum(x is not None for x in got)
        res["n_tokens"] = n
        res["eval_loss" + suffix] = total / n if n else None
        res["token_losses" + suffix] = per_example
        if suffix:
            res["adapter_modules"] = len(lora)
    return res

def base_pdrop(args, cfg):
    """The base dropout rate: every GPT-2 preset's config sets 0.1 (embd, attn, resid);
    the Llama-family presets' configs have attention_dropout 0.0 (and no other)."""
    if args.base_dropout == "config":
        return 0.1 if family(cfg) == "gpt2" else 0.0
    p = float(args.base_dropout)
    if not 0 <= p < 1:
        raise SystemExit("torch_peer.py: --base-dropout %s is not config or a rate in [0, 1)" % args.base_dropout)
    return p


def base_params(base):
    """Elements of the frozen base (the tied head counted once, as loralab count does)."""
    n = 0
    for v in base.values():
        for t in (v if isinstance(v, list) else [v]):
            for x in (t.values() if isinstance(t, dict) else [t]):
                for y in (x if isinstance(x, tuple) else (x,)):
                    n += y.numel() if y is not None else 0
    return n


def run_step_bench(args, threads):
    """Times training steps in this process; returns the result dict."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)  # OpenMP pool for elementwise ops; BLAS threads come from the env
    rss_import = rss_kib("VmRSS")
    cfg = dict(PRESETS[args.preset])
    if args.seq > cfg["n_ctx"]:
        sys.exit("torch_peer: --max-len %d exceeds n_ctx %d of %s" % (args.seq, cfg["n_ctx"], args.preset))
    fam = family(cfg)
    targets = PLACEMENTS[fam].get(args.placement, args.placement.split(","))
    if fam == "llama":
        base, lora = build_llama(torch, cfg, targets, args.r, args.seed)
        step_loss = llama_forward_loss
    else:
        base, lora = build_model(torch, cfg, targets, args.r, args.alpha, args.dropout, args.seed)
        step_loss = forward_loss
    if not lora:
        sys.exit("torch_peer: placement %r matches no module" % args.placement)
    params = [t for ab in lora.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed + 1)
    seq = torch.randint(0, cfg["n_vocab"], (args.seq + 1,), generator=g)
    tokens, tgt = seq[:-1], seq[1:]
    scaling = args.alpha / args.r
    pdrop = base_pdrop(args, cfg)
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = step_loss(torch, F, cfg, base, lora, tokens, tgt, scaling, args.dropout, pdrop)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
            losses.append(float(loss))
    med = statistics.median(times)
    n_lora = sum(t.numel() for t in params)
    return {
        "peer": "pytorch",
        "torch": torch.__version__,
        "preset": args.preset,
        "arch": cfg.get("arch", "gpt2"),
        "seq": args.seq,
        "placement": args.placement,
        "r": args.r,
        "weights": "f32",
        "base_dropout": pdrop,
        "threads": {"openblas": threads, "torch": torch.get_num_threads()},
        "modules": len(lora),
        "lora_params": n_lora,
        "base_params": base_params(base),
        "steps": args.steps,
        "warmup": args.warmup,
        "median_s_per_step": med,
        "min_s_per_step": min(times),
        "tokens_per_s": args.seq / med,
        "peak_rss_bytes": rss_kib("VmHWM") * 1024,
        "rss_after_import_bytes": rss_import * 1024,
        "final_loss": losses[-1],
    }


def run_peak(args, threads):
    """GFLOP/s of torch.mm on n x n fp32 matrices (best of several repetitions)."""
    import torch
    torch.set_num_threads(1)
    out = []
    for n in args.peak_sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        reps = max(3, int(2e10 / (2.0 * n ** 3)))  # ~20 GFLOP per size
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        out.append({"n": n, "gflops": 2.0 * n ** 3 / best / 1e9})
    return {"peer": "pytorch-mm", "torch": torch.__version__,
            "threads": {"openblas": threads, "torch": 1}, "sizes": out,
            "gflops": max(s["gflops"] for s in out)}


def child(args, threads):
    """Runs this script with --threads in a fresh process so OPENBLAS_NUM_THREADS applies."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    cmd += ["--threads", str(threads), "--json"]  # argparse keeps the last --threads
    res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(res.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="dialogpt-small", choices=sorted(PRESETS))
    # --max-len and --timed-steps as loralab bench spells them (--seq, --steps: old spellings)
    p.add_argument("--max-len", "--seq", dest="seq", type=int, default=128)
    p.add_argument("--timed-steps", "--steps", dest="steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--placement", default="baseline",
                   help="a preset of the model's family (GPT-2: %s; Llama, Qwen2: %s) or a comma list of "
                   "PEFT targets" % (", ".join(PLACEMENTS["gpt2"]), ", ".join(PLACEMENTS["llama"])))
    p.add_argument("--r", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--base-dropout", default="config",
                   help="config (as loralab bench: GPT-2 presets 0.1, Llama-family presets 0) or a rate in "
                   "[0, 1) (GPT-2: embeddings, attention, residuals; Llama family: attention only)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0,
                   help="run once with this many OpenBLAS threads (0: try 1 and all, report the faster)")
    p.add_argument("--peak", action="store_true", help="measure torch.mm GFLOP/s instead")
    p.add_argument("--peak-sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--check", metavar="DIR",
                   help="correctness, not speed: a Hugging Face Llama / Qwen2 checkpoint folder whose loss the "
                   "peer computes (float64) on the token ids of --check-tokens; prints JSON")
    p.add_argument("--check-tokens", metavar="FILE", help="a `loralab eval --json --tokens` document")
    p.add_argument("--check-adapter", metavar="DIR", help="with --check: also the loss with this PEFT LoRA adapter")
    args = p.parse_args()

    if args.check or args.check_tokens:
        if not (args.check and args.check_tokens):
            p.error("--check and --check-tokens go together")
        print(json.dumps(run_check(args)))
        return

    if args.threads > 0:
        if os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
            res = child(args, args.threads)  # the variable must be set before torch loads
        else:
            res = (run_peak if args.peak else run_step_bench)(args, args.threads)
        tried = [res]
    else:
        counts = sorted({1, os.cpu_count() or 1})
        tried = [child(args, n) for n in counts]
        key = (lambda d: d["gflops"]) if args.peak else (lambda d: d["tokens_per_s"])
        res = dict(max(tried, key=key))
        res["tried"] = [{"threads": d["threads"], "value": key(d)} for d in tried]
    res["machine"] = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()}
    if args.json:
        print(json.dumps(res))
    elif args.peak:
        for d in tried:
            print("torch.mm fp32, %d OpenBLAS thread(s): %s" % (
                d["threads"]["openblas"],
                ", ".join("n=%d %.1f GFLOP/s" % (s["n"], s["gflops"]) for s in d["sizes"])))
        print("peak: %.1f GFLOP/s" % res["gflops"])
    else:
        for d in tried:
            print("%d OpenBLAS thread(s): %.4f s/step, %.1f tokens/s, peak RSS %.1f MiB" % (
                d["threads"]["openblas"], d["median_s_per_step"], d["tokens_per_s"],
                d["peak_rss_bytes"] / 2 ** 20))
        print("peer (%s, seq %d, %s, r %d): %.4f s/step, %.1f tokens/s, peak RSS %.1f MiB" % (
            res["preset"], res["seq"], res["placement"], res["r"], res["median_s_per_step"],
            res["tokens_per_s"], res["peak_rss_bytes"] / 2 ** 20))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
