#!/usr/bin/python3
"""PyTorch CPU peer for `loralab bench`: one LoRA training step of GPT-2 in fp32.

A hand-written GPT-2 (HF GPT2LMHeadModel semantics: pre-LayerNorm blocks, fused
c_attn, causal attention, gelu_new, tied LM head) with LoRA as PEFT applies it:
y = x W^T + b + (alpha/r) * B(A(dropout(x))), A kaiming-uniform, B zeros, base frozen,
AdamW on the adapters only. Random weights, random tokens: only speed and memory
matter here. Run with Debian's interpreter (/usr/bin/python3, python3-torch 1.13)
and libopenblas0-pthread installed.

Thread handling (see /work/shared/DESIGN.md): OpenBLAS keeps its own pool sized by
OPENBLAS_NUM_THREADS when the library loads, so every thread count is measured in a
fresh child process with that variable set and torch's OpenMP pool at 1; the report
is the faster run. `--threads N` runs one configuration in this process instead.

    /usr/bin/python3 bench/torch_peer.py --preset dialogpt-small --max-len 128 --json
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
    # GPT-2 shapes only: the peer does not model the Llama family (llama, qwen2) yet
    shapes = {m["name"]: {k: m[k] for k in ("n_layer", "n_embd", "n_head", "n_ctx", "n_vocab")} for m in doc["models"]
              if m.get("arch", "gpt2") == "gpt2"}
    return shapes, {p["name"]: p["target_modules"] for p in doc["placements"]}


# Shapes (n_ctx only bounds --seq) and placements as PEFT target lists (suffix matching).
PRESETS, PLACEMENTS = load_presets()
SITES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


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


def base_pdrop(args):
    """The base dropout rate: every preset's config sets 0.1 (embd, attn, resid)."""
    if args.base_dropout == "config":
        return 0.1
    p = float(args.base_dropout)
    if not 0 <= p < 1:
        raise SystemExit("torch_peer.py: --base-dropout %s is not config or a rate in [0, 1)" % args.base_dropout)
    return p


def run_step_bench(args, threads):
    """Times training steps in this process; returns the result dict."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)  # OpenMP pool for elementwise ops; BLAS threads come from the env
    rss_import = rss_kib("VmRSS")
    cfg = dict(PRESETS[args.preset])
    if args.seq > cfg["n_ctx"]:
        sys.exit("torch_peer: --max-len %d exceeds n_ctx %d of %s" % (args.seq, cfg["n_ctx"], args.preset))
    targets = PLACEMENTS.get(args.placement, args.placement.split(","))
    base, lora = build_model(torch, cfg, targets, args.r, args.alpha, args.dropout, args.seed)
    if not lora:
        sys.exit("torch_peer: placement %r matches no module" % args.placement)
    params = [t for ab in lora.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed + 1)
    seq = torch.randint(0, cfg["n_vocab"], (args.seq + 1,), generator=g)
    tokens, tgt = seq[:-1], seq[1:]
    scaling = args.alpha / args.r
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = forward_loss(torch, F, cfg, base, lora, tokens, tgt, scaling, args.dropout, base_pdrop(args))
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
        "seq": args.seq,
        "placement": args.placement,
        "r": args.r,
        "weights": "f32",
        "threads": {"openblas": threads, "torch": torch.get_num_threads()},
        "modules": len(lora),
        "lora_params": n_lora,
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
                   help="a preset (%s) or a comma list of PEFT targets" % ", ".join(PLACEMENTS))
    p.add_argument("--r", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--base-dropout", default="config",
                   help="config (the preset's 0.1, as loralab bench) or a rate in [0, 1) for all three")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0,
                   help="run once with this many OpenBLAS threads (0: try 1 and all, report the faster)")
    p.add_argument("--peak", action="store_true", help="measure torch.mm GFLOP/s instead")
    p.add_argument("--peak-sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()

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
