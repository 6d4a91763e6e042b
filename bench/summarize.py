#!/usr/bin/python3
"""Summarises a bench/compare.sh result directory as a Markdown table of ratios
against the targets of issues 9 and 13. Each round's runs are paired, and the ratio reported
is the median over rounds of the per-round ratios (runs alternate, so a noisy
neighbour slows both sides of a round alike).

    /usr/bin/python3 bench/summarize.py bench/results/<run>
"""
import glob
import json
import os
import statistics
import sys

MIB = 2.0 ** 20


def load(pattern):
    """{round: json} of the files matching pattern (names end in -ROUND.json)."""
    out = {}
    for path in glob.glob(pattern):
        stem = os.path.basename(path)[:-5]
        try:
            with open(path) as f:
                out[stem.rsplit("-", 1)[1]] = json.load(f)
        except ValueError:  # a run still being written (or one that failed): left out
            pass
    return out


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def verdict(ok):
    return "**met**" if ok else "**not met**"


def spread(xs):
    return "median %.2fx, spread %.2f-%.2fx over %d rounds (%s)" % (
        med(xs), min(xs), max(xs), len(xs), ", ".join("%.2f" % x for x in xs))


def loads(d, rounds):
    out = []
    for r in rounds:
        p = os.path.join(d, "load-%s.txt" % r)
        if os.path.exists(p):
            out.append(open(p).read().split()[0])
    return out


def main():
    d = sys.argv[1]
    native, native32, wasm, wasm32, peer = (load(os.path.join(d, k + "-*.json")) for k in (
        "native-int8", "native-f32", "wasm-int8", "wasm-f32", "peer"))
    rounds = sorted(set(native) & set(native32) & set(peer), key=int)
    if not rounds:
        sys.exit("summarize: no paired native/peer runs in %s" % d)
    n0, p0 = native[rounds[0]], peer[rounds[0]]
    speed = [native[r]["tokens_per_s"] / peer[r]["tokens_per_s"] for r in rounds]
    speed32 = [native32[r]["tokens_per_s"] / peer[r]["tokens_per_s"] for r in rounds]
    int8_gain = [native[r]["tokens_per_s"] / native32[r]["tokens_per_s"] for r in rounds]
    mem = [native[r]["peak_memory_bytes"] / peer[r]["peak_rss_bytes"] for r in rounds]
    mem_delta = [native[r]["peak_memory_bytes"] / (peer[r]["peak_rss_bytes"] - peer[r]["rss_after_import_bytes"])
                 for r in rounds]
    wr = [r for r in rounds if r in wasm and r in wasm32]
    wasm_ratio = [wasm[r]["tokens_per_s"] / native[r]["tokens_per_s"] for r in wr]
    wasm_gain = [wasm[r]["tokens_per_s"] / wasm32[r]["tokens_per_s"] for r in wr]
    la = loads(d, rounds)

    print("Shape: %s, seq %d, placement %s (%s), r %d; ours %s base, peer fp32; %d alternating round(s); "
          "load average (1 min) after each round: %s on %d cores\n"
          % (n0["preset"], n0["seq"], n0["placement"], n0["modules"], n0["r"], n0["weights"], len(rounds),
             ", ".join(la) or "?", os.cpu_count() or 1))
    print("| run | s/step (median of rounds) | tokens/s | peak memory |")
    print("| --- | ---: | ---: | ---: |")
    def row(name, runs, mem_key, note=""):
        print("| %s | %.3f | %.1f | %.0f MiB%s |" % (
            name, med([x["median_s_per_step"] for x in runs]), med([x["tokens_per_s"] for x in runs]),
            med([x[mem_key] for x in runs]) / MIB, note))
    row("ours, native, compute int8 (%s, %d threads)" % (n0["build"], n0["threads"]), [native[r] for r in rounds],
        "peak_memory_bytes", " RSS")
    row("ours, native, compute f32", [native32[r] for r in rounds], "peak_memory_bytes", " RSS")
    if wr:
        w0 = wasm[wr[0]]
        for name, runs in (("int8", wasm), ("f32", wasm32)):
            row("ours, wasm under Node, compute %s (%s, %d threads)" % (name, w0["build"], w0["threads"]),
                [runs[r] for r in wr], "peak_in_use_bytes", " in use (heap %.0f MiB)" % (
                    med([runs[r]["peak_memory_bytes"] for r in wr]) / MIB))
    threads = sorted({p["threads"]["openblas"] for p in (peer[r] for r in rounds)})
    row("PyTorch %s peer (fp32, best of 1/%d OpenBLAS threads: %s)" % (
        p0["torch"], os.cpu_count() or 1, "/".join(map(str, threads))), [peer[r] for r in rounds],
        "peak_rss_bytes", " RSS")
    print()
    print("| target | measured (per-round ratios) | verdict |")
    print("| --- | --- | --- |")
    s = med(speed)
    print("| native tokens/s, default compute (int8), >= 1.5x peer | %s | %s%s |" % (
        spread(speed), verdict(s >= 1.5), "" if s >= 1.5 else ", short by %.0f%%" % (100 * (1 - s / 1.5))))
    print("| (like for like: native compute f32 vs the fp32 peer) | %s | reference |" % spread(speed32))
    print("| (native int8 vs native f32, same build) | %s | reference |" % spread(int8_gain))
    m = med(mem)
    print("| native peak memory <= 1/3 peer | %.2fx of peer RSS (%.2fx of peer RSS above its import) | %s%s |" % (
        m, med(mem_delta), verdict(m <= 1 / 3.0),
        "" if m <= 1 / 3.0 else ", over by %.0f%%" % (100 * (m * 3 - 1))))
    if wasm_gain:
        g = med(wasm_gain)
        print("| wasm under Node, int8 vs f32 same build, >= 1.4x | %s | %s |" % (spread(wasm_gain), verdict(g >= 1.4)))
        w = med(wasm_ratio)
        print("| wasm (int8) tokens/s >= 1/3 native (int8) | %s | %s%s |" % (
            spread(wasm_ratio), verdict(w >= 1 / 3.0), "" if w >= 1 / 3.0 else ", short by %.0f%%" % (100 * (1 - 3 * w))))
    wm, wm32 = load(os.path.join(d, "wmedium-int8-*.json")), load(os.path.join(d, "wmedium-f32-*.json"))
    mr = sorted(set(wm) & set(wm32), key=int)
    if mr:
        g = [wm[r]["tokens_per_s"] / wm32[r]["tokens_per_s"] for r in mr]
        print("| DialoGPT-medium shape (seq 128), wasm int8 vs f32, >= 1.4x: measured under Node (the page's "
              "engine, V8; not in Chromium) | %s; %.1f vs %.1f tokens/s | %s |" % (
                  spread(g), med([wm[r]["tokens_per_s"] for r in mr]), med([wm32[r]["tokens_per_s"] for r in mr]),
                  verdict(med(g) >= 1.4)))
    mp = os.path.join(d, "medium-native.json")
    if os.path.exists(mp):
        with open(mp) as f:
            mn = json.load(f)
        gb = mn["peak_memory_bytes"] / 1e9
        print("| DialoGPT-medium seq 256 q8_0 peak < 1 GB | %.3f GB (%.0f MiB; model %.0f MiB, state %.0f MiB; %.2f s/step) | %s |" % (
            gb, mn["peak_memory_bytes"] / MIB, mn["model_bytes"] / MIB, mn["state_bytes"] / MIB,
            mn["median_s_per_step"], verdict(gb < 1.0)))
        pp = os.path.join(d, "medium-peer.json")
        if os.path.exists(pp):
            with open(pp) as f:
                pm = json.load(f)
            print("| (peer, DialoGPT-medium seq 256 fp32) | %.3f GB, %.2f s/step | reference |" % (
                pm["peak_rss_bytes"] / 1e9, pm["median_s_per_step"]))
    print()
    print("Component split of ours, round %s (engine timers, mean s/step; share of the mean step):" % rounds[-1])
    comp = native[rounds[-1]]["components_s_per_step"]
    step = native[rounds[-1]]["mean_s_per_step"]
    print()
    print("| component | native s/step | share |%s" % (" wasm s/step | share |" if wr else ""))
    print("| --- | ---: | ---: |%s" % (" ---: | ---: |" if wr else ""))
    wcomp = wasm[wr[-1]]["components_s_per_step"] if wr else None
    wstep = wasm[wr[-1]]["mean_s_per_step"] if wr else None
    for k in ("embed", "attention", "mlp", "lora", "lm_head", "layernorm", "optimizer", "other"):
        line = "| %s | %.4f | %.1f%% |" % (k, comp.get(k, 0), 100 * comp.get(k, 0) / step)
        if wcomp:
            line += " %.4f | %.1f%% |" % (wcomp.get(k, 0), 100 * wcomp.get(k, 0) / wstep)
        print(line)
    print()
    print("Approximate work %.1f GFLOP/step: native %.1f GFLOP/s%s." % (
        n0["gflop_per_step"], med([native[r]["gflops"] for r in rounds]),
        ", wasm %.1f GFLOP/s" % med([wasm[r]["gflops"] for r in wr]) if wr else ""))
    peak = load(os.path.join(d, "peak-*.json"))
    if peak:
        best = max(p["gflops"] for p in peak.values())
        print("fp32 matmul peak (torch.mm, best over rounds of the best of 1/%d OpenBLAS threads and "
              "n = 1024..4096): %.1f GFLOP/s (per round: %s); the native step runs at %.0f%% of it."
              % (os.cpu_count() or 1, best,
                 ", ".join("%.0f" % peak[r]["gflops"] for r in sorted(peak, key=int)),
                 100 * med([native[r]["gflops"] for r in rounds]) / best))


if __name__ == "__main__":
    main()
