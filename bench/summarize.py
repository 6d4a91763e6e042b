#!/usr/bin/python3
"""Summarises a bench/compare.sh result directory as a Markdown table of ratios
against the targets of issue 9. Each round's runs are paired, and the ratio reported
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
    out = {}
    for path in glob.glob(pattern):
        stem = os.path.basename(path)[:-5]
        with open(path) as f:
            out[stem.rsplit("-", 1)[1]] = json.load(f)
    return out


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def verdict(ok):
    return "**met**" if ok else "**not met**"


def main():
    d = sys.argv[1]
    native, wasm, peer = (load(os.path.join(d, k + "-*.json")) for k in ("native", "wasm", "peer"))
    rounds = sorted(set(native) & set(peer), key=int)
    if not rounds:
        sys.exit("summarize: no paired native/peer runs in %s" % d)
    n0, p0 = native[rounds[0]], peer[rounds[0]]
    speed = [native[r]["tokens_per_s"] / peer[r]["tokens_per_s"] for r in rounds]
    mem = [native[r]["peak_memory_bytes"] / peer[r]["peak_rss_bytes"] for r in rounds]
    mem_delta = [native[r]["peak_memory_bytes"] / (peer[r]["peak_rss_bytes"] - peer[r]["rss_after_import_bytes"])
                 for r in rounds]
    wr = [r for r in rounds if r in wasm]
    wasm_ratio = [wasm[r]["tokens_per_s"] / native[r]["tokens_per_s"] for r in wr]

    print("Shape: %s, seq %d, placement %s (%s), r %d; ours %s base, peer fp32; %d round(s)\n"
          % (n0["preset"], n0["seq"], n0["placement"], n0["modules"], n0["r"], n0["weights"], len(rounds)))
    print("| run | s/step (median of rounds) | tokens/s | peak memory |")
    print("| --- | ---: | ---: | ---: |")
    def row(name, runs, mem_key, note=""):
        print("| %s | %.3f | %.1f | %.0f MiB%s |" % (
            name, med([x["median_s_per_step"] for x in runs]), med([x["tokens_per_s"] for x in runs]),
            med([x[mem_key] for x in runs]) / MIB, note))
    row("ours, native (%s, %d threads)" % (n0["build"], n0["threads"]), [native[r] for r in rounds],
        "peak_memory_bytes", " RSS")
    if wr:
        w0 = wasm[wr[0]]
        row("ours, wasm under Node (%s, %d threads)" % (w0["build"], w0["threads"]), [wasm[r] for r in wr],
            "peak_in_use_bytes", " in use (heap %.0f MiB)" % (
                med([wasm[r]["peak_memory_bytes"] for r in wr]) / MIB))
    threads = sorted({p["threads"]["openblas"] for p in (peer[r] for r in rounds)})
    row("PyTorch %s peer (fp32, best of 1/%d OpenBLAS threads: %s)" % (
        p0["torch"], os.cpu_count() or 1, "/".join(map(str, threads))), [peer[r] for r in rounds],
        "peak_rss_bytes", " RSS")
    print()
    print("| target | measured | verdict |")
    print("| --- | ---: | --- |")
    s = med(speed)
    print("| native tokens/s >= 1.5x peer | %.2fx (rounds: %s) | %s%s |" % (
        s, ", ".join("%.2f" % x for x in speed), verdict(s >= 1.5),
        "" if s >= 1.5 else ", short by %.0f%%" % (100 * (1 - s / 1.5))))
    m = med(mem)
    print("| native peak memory <= 1/3 peer | %.2fx of peer RSS (%.2fx of peer RSS above its import) | %s%s |" % (
        m, med(mem_delta), verdict(m <= 1 / 3.0),
        "" if m <= 1 / 3.0 else ", over by %.0f%%" % (100 * (m * 3 - 1))))
    if wasm_ratio:
        w = med(wasm_ratio)
        print("| wasm tokens/s >= 1/3 native | %.2fx | %s%s |" % (
            w, verdict(w >= 1 / 3.0), "" if w >= 1 / 3.0 else ", short by %.0f%%" % (100 * (1 - 3 * w))))
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
