#!/usr/bin/env python3
"""The study with and without base-model dropout, as docs/RESULTS.md reports it.

Takes two finished seeded runs of the study on the bundled model, made by
scripts/study_seeds.py with `--base-dropout config` and `--base-dropout 0`, and prints
Markdown: eval loss per placement under each setting (mean and 95% t-interval over
seeds), the difference config - 0 paired by seed, the ranking under each, and each
placement's own peak memory, with the commits and machines the runs name.

    scripts/study_seeds.py --seeds 5 --base-dropout config --out A
    scripts/study_seeds.py --seeds 5 --base-dropout 0 --out B
    scripts/base_dropout_compare.py --config A --zero B
"""
import argparse
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study_seeds import load_run  # noqa: E402

# Two-sided 95% quantiles of Student's t (0.975 one-sided) for 1..10 degrees of freedom.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def interval(values):
    """mean, lo, hi: the 95% t-interval of the mean (no interval for one value)."""
    m = statistics.fmean(values)
    if len(values) < 2 or len(values) - 1 > len(T975):
        return m, None, None
    h = T975[len(values) - 2] * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - h, m + h


def fmt(iv):
    m, lo, hi = iv
    return "%.3f [%.3f, %.3f]" % (m, lo, hi) if lo is not None else "%.3f" % m


def by_seed(res, key):
    """{placement: {seed: value}} over the run's finished trainings."""
    out = {}
    for p in res.get("trainings", res.get("placements", [])):  # "placements": files before issue 25
        if p["status"] == "done":
            out.setdefault(p["name"], {})[p["seed"]] = p[key]
    return out


def ranking(losses):
    return " < ".join(sorted(losses, key=lambda n: statistics.fmean(losses[n].values())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="run with --base-dropout config")
    ap.add_argument("--zero", required=True, help="run with --base-dropout 0")
    a = ap.parse_args()
    cfg, cfg_commit, cfg_where = load_run(a.config)
    zero, zero_commit, zero_where = load_run(a.zero)
    for res, want in ((cfg, "config"), (zero, 0)):
        if res["base_dropout"]["setting"] != want:
            sys.exit("base_dropout_compare.py: expected a run with base dropout %s, got %s" %
                     (want, res["base_dropout"]["setting"]))
    bd = cfg["base_dropout"]
    lc, lz = by_seed(cfg, "eval_loss"), by_seed(zero, "eval_loss")
    mc, mz = by_seed(cfg, "placement_memory_bytes"), by_seed(zero, "placement_memory_bytes")
    print("Run `config`: commit %s; %s; wall %.0f s. Run `0`: commit %s; %s; wall %.0f s." % (
        cfg_commit, cfg_where, cfg["wall_seconds"], zero_commit, zero_where, zero["wall_seconds"]))
    print("Both: %d train / %d eval records, %d epochs, seeds %s. `config` gave embd/attn/resid_pdrop "
          "%g/%g/%g (%s%s)." % (cfg["data"]["train"]["used"], cfg["data"]["eval"]["used"], cfg["schedule"]["epochs"],
                                ", ".join(map(str, cfg["seeds"])), bd["embd_pdrop"], bd["attn_pdrop"],
                                bd["resid_pdrop"], bd["source"], ": " + bd["note"] if bd.get("note") else ""))
    print()
    print("| placement | eval loss, `--base-dropout config` | eval loss, `--base-dropout 0` | config − 0, paired by seed "
          "| placement peak memory, config / 0 (median) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in lc:
        seeds = sorted(set(lc[name]) & set(lz.get(name, {})))
        diff = interval([lc[name][s] - lz[name][s] for s in seeds]) if seeds else (float("nan"), None, None)
        print("| %s | %s | %s | %s | %.1f / %.1f MB |" % (
            name, fmt(interval(list(lc[name].values()))), fmt(interval(list(lz[name].values()))),
            ("%+.3f [%+.3f, %+.3f]" % diff) if diff[1] is not None else "%+.3f" % diff[0],
            statistics.median(mc[name].values()) / 1e6, statistics.median(mz[name].values()) / 1e6))
    print()
    same = lambda res, losses: sum(1 for s in res["seeds"]
                                   if sorted(losses, key=lambda n: losses[n][s]) == ranking(losses).split(" < "))
    print("Ranking by mean eval loss: config %s (at %d of %d seeds); 0 %s (at %d of %d seeds)." % (
        ranking(lc), same(cfg, lc), len(cfg["seeds"]), ranking(lz), same(zero, lz), len(zero["seeds"])))
    print("Eval loss before training: %.3f under both (evaluation never drops)." % cfg["base_eval"]["eval_loss"]
          if cfg["base_eval"]["eval_loss"] == zero["base_eval"]["eval_loss"] else
          "Eval loss before training differs (%.6f vs %.6f): evaluation should never drop." % (
              cfg["base_eval"]["eval_loss"], zero["base_eval"]["eval_loss"]))


if __name__ == "__main__":
    main()
