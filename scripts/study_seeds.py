#!/usr/bin/env python3
"""The study re-run on the bundled model with several seeds, as the README reports it.

Runs `loralab ablate --seeds N` (the study's settings: r 16, alpha 32, dropout 0.1,
3 epochs, lr 2e-4, cosine, 100 train / 20 eval records) unless --from DIR points at
a finished run, then prints Markdown: the seed-resolved ranking (eval loss mean and
95% t-interval per placement, paired differences against the baseline with their
verdicts) and what the drop in eval loss is made of (share per token role), with
the commit, the machine and the load it ran under.

    scripts/study_seeds.py [--seeds 5] [--base-dropout config|X] [--out DIR] [--from DIR]
                           [--loralab build/loralab]
"""
import argparse
import json
import os
import platform
import subprocess
import sys

ROLES = ("template", "instruction", "input", "response")


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return "%s, %d cores, %s %s; load average %.1f when the run finished" % (
        cpu, os.cpu_count() or 0, platform.system(), platform.release(), load)


def pct(x):
    """A share as a whole percentage, without a "-0"."""
    return "%d" % round(100 * x) if round(100 * x) != 0 else "0"


def fmt_ci(m):
    return "%.3f [%.3f, %.3f]" % (m["mean"], m["ci95"][0], m["ci95"][1]) if m.get("ci95") else "%.3f" % m["mean"]


def report(res, commit, where):
    ag = res["aggregates"]
    seeds = res["seeds"]
    pls = ag["placements"]
    out = []
    bd = res.get("base_dropout") or {"setting": 0, "embd_pdrop": 0, "attn_pdrop": 0, "resid_pdrop": 0,
                                     "source": "none (before base dropout existed)"}
    out.append("Commit %s; %s; %s seeds (%s); %d train / %d eval records; base dropout %s (embd/attn/resid %g/%g/%g, %s); "
               "wall %.0f s."
               % (commit, where, len(seeds), ", ".join(map(str, seeds)), res["data"]["train"]["used"],
                  res["data"]["eval"]["used"], bd["setting"], bd["embd_pdrop"], bd["attn_pdrop"], bd["resid_pdrop"],
                  bd["source"], res["wall_seconds"]))
    out.append("")
    out.append("| placement | eval loss, mean [95% t-interval] | − baseline, paired by seed | verdict |")
    out.append("| --- | ---: | ---: | --- |")
    ranked = sorted(pls, key=lambda a: a["metrics"]["eval_loss"]["mean"])
    for a in ranked:
        d = (a.get("paired") or {}).get("eval_loss")
        diff = "%+.3f [%.3f, %.3f]" % (d["mean"], d["ci95"][0], d["ci95"][1]) if d and d.get("ci95") else "—"
        verdict = ("resolved" if d["resolved"] else "unresolved at %d seeds" % d["n"]) if d else "(reference)"
        out.append("| %s | %s | %s | %s |" % (a["name"], fmt_ci(a["metrics"]["eval_loss"]), diff, verdict))
    by_seed = {}
    for p in res.get("trainings", res.get("placements", [])):  # "placements": files before issue 25
        if p["status"] == "done":
            by_seed.setdefault(p["seed"], {})[p["name"]] = p["eval_loss"]
    order = [a["name"] for a in ranked]
    same = sum(1 for v in by_seed.values() if sorted(v, key=v.get) == order)
    out.append("")
    out.append("The order %s by eval loss holds at %d of %d seeds." % (" < ".join(order), same, len(by_seed)))
    out.append("")
    out.append("What the drop in total eval NLL is made of (share per token role, mean [95% t-interval] over seeds):")
    out.append("")
    out.append("| placement | " + " | ".join(ROLES) + " |")
    out.append("| --- |" + " ---: |" * len(ROLES))
    for a in pls:
        cells = []
        for r in ROLES:
            m = a["metrics"].get("drop_share_" + r)
            cells.append("%s%% [%s, %s]" % (pct(m["mean"]), pct(m["ci95"][0]), pct(m["ci95"][1]))
                         if m and m.get("ci95") else ("%s%%" % pct(m["mean"]) if m else "—"))
        out.append("| %s | %s |" % (a["name"], " | ".join(cells)))
    base = res["base_eval"]
    n = base["n_tokens"]
    out.append("")
    out.append("Scored eval tokens per role: " + ", ".join(
        "%s %d (%.0f%%)" % (r, base["roles"][r]["n_tokens"], 100.0 * base["roles"][r]["n_tokens"] / n) for r in ROLES)
        + "; %d in all." % n)
    out.append("Base model: eval_loss %.3f, trainer_eval_loss %.3f (HF Trainer: batches of 8, mean of per-batch "
               "token means)." % (base["eval_loss"], base["trainer_eval_loss"]))
    return "\n".join(out)


def load_run(src):
    """results.json of a finished run and the notes written beside it."""
    res = json.load(open(os.path.join(src, "results.json")))
    def note(name, missing):
        try:
            return open(os.path.join(src, name)).read().strip()
        except OSError:
            return missing
    return res, note("commit.txt", "unknown commit"), note("machine.txt", "unknown machine")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="results/study-seeds")
    ap.add_argument("--from", dest="src", default=None, help="report on a finished run instead of running")
    ap.add_argument("--loralab", default="build/loralab")
    ap.add_argument("--base-dropout", default="config", help="passed to ablate (default config, as ablate)")
    ap.add_argument("--threads", default="0", help="passed to ablate (0: all cores)")
    a = ap.parse_args()
    src = a.src
    if not src:
        src = a.out
        os.makedirs(src, exist_ok=True)
        # The commit the program was built from, noted before the run (the tree may move on).
        commit = sh("git", "rev-parse", "--short", "HEAD")
        if sh("git", "status", "--porcelain", "--untracked-files=no"):
            commit += "+changes"
        with open(os.path.join(src, "commit.txt"), "w") as f:
            f.write(commit + "\n")
        subprocess.run([a.loralab, "ablate", "--seeds", str(a.seeds), "--base-dropout", a.base_dropout,
                        "--threads", a.threads, "--out", src, "--quiet"], check=True, stdout=sys.stderr)
        with open(os.path.join(src, "machine.txt"), "w") as f:
            f.write(machine() + "\n")
    print(report(*load_run(src)))


if __name__ == "__main__":
    main()
