#!/usr/bin/env python3
"""What base-model dropout costs per training step, measured side by side.

Runs `loralab bench --json` with `--base-dropout config` (GPT-2's 0.1 on the
embeddings, attention probabilities and residual branches) and `--base-dropout 0`
in alternating order for N rounds, and prints Markdown: the median seconds per step of
each, the ratio config / 0 per round (median and range), with the commit, the machine
and the load average.

    bench/base_dropout_cost.py [--rounds 5] [--preset dialogpt-small] [--max-len 128]
                               [--timed-steps 5] [--loralab build/loralab]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--preset", default="dialogpt-small")
    ap.add_argument("--max-len", default="128")
    ap.add_argument("--timed-steps", default="5")
    ap.add_argument("--loralab", default="build/loralab")
    a = ap.parse_args()
    commit = sh("git", "rev-parse", "--short", "HEAD")
    load0 = os.getloadavg()[0]
    times = {"config": [], "0": []}
    for k in range(a.rounds):
        order = ["config", "0"] if k % 2 == 0 else ["0", "config"]
        for setting in order:
            out = sh(a.loralab, "bench", "--preset", a.preset, "--max-len", a.max_len, "--timed-steps",
                     a.timed_steps, "--warmup", "1", "--base-dropout", setting, "--json")
            times[setting].append(json.loads(out)["median_s_per_step"])
    ratios = [c / z for c, z in zip(times["config"], times["0"])]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("Commit %s; %s, %d cores, %s %s; load average %.1f before, %.1f after (shared machine: other "
          "engineers' builds ran at the same time)." % (commit, cpu, os.cpu_count() or 0, platform.system(),
                                                        platform.release(), load0, os.getloadavg()[0]))
    print()
    print("`loralab bench --preset %s --max-len %s --timed-steps %s`, %d alternating rounds:" % (
        a.preset, a.max_len, a.timed_steps, a.rounds))
    print()
    print("| base dropout | median s/step (median over rounds) | range |")
    print("| --- | ---: | ---: |")
    for s in ("config", "0"):
        print("| %s | %.3f | %.3f–%.3f |" % (s, statistics.median(times[s]), min(times[s]), max(times[s])))
    print()
    print("Step time config / 0 per round: median **%.3f**, range %.3f–%.3f." % (
        statistics.median(ratios), min(ratios), max(ratios)))


if __name__ == "__main__":
    main()
