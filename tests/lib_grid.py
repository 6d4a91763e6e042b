"""Helpers for the grid tests (tests/cli_grid.sh, tests/cli_slurm.sh).

python3 tests/lib_grid.py same ONE_DIR COLLECTED_DIR
    The results of a grid run in one process and the same grid run as units and
    collected must carry the same numbers, bit for bit: results.json equal once the
    measurements of the machine (times, memory, environment, when written) are set
    aside, steps.jsonl byte-identical, results.csv equal but for its timing columns.
    Prints what differs and exits 1 if anything does.
"""
import csv
import json
import sys

# What a machine measures rather than what training computes.
VOLATILE = {"train_seconds", "tokens_per_s", "peak_memory_bytes", "placement_memory_bytes",
            "process_peak_memory_bytes", "timings", "wall_seconds", "written", "environment", "collected"}
VOLATILE_CSV = {"train_seconds", "tokens_per_s", "peak_memory_bytes", "placement_memory_bytes",
                "process_peak_memory_bytes"}


def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k not in VOLATILE}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o


def diff(a, b, path, out):
    if type(a) is not type(b):
        out.append("%s: %r vs %r" % (path, a, b))
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append("%s.%s: only in %s" % (path, k, "one-process" if k in a else "collected"))
            else:
                diff(a[k], b[k], path + "." + k, out)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append("%s: %d vs %d entries" % (path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, "%s[%d]" % (path, i), out)
    elif a != b:
        out.append("%s: %r vs %r" % (path, a, b))


def same(one, col):
    out = []
    a = json.load(open(one + "/results.json"))
    b = json.load(open(col + "/results.json"))
    diff(strip(a), strip(b), "results", out)
    if open(one + "/steps.jsonl", "rb").read() != open(col + "/steps.jsonl", "rb").read():
        out.append("steps.jsonl differs")
    ra = list(csv.DictReader(open(one + "/results.csv")))
    rb = list(csv.DictReader(open(col + "/results.csv")))
    keep = lambda rows: [{k: v for k, v in r.items() if k not in VOLATILE_CSV} for r in rows]
    if keep(ra) != keep(rb):
        out.append("results.csv differs beyond its timing columns")
    n = len(a.get("trainings", []))
    done = sum(p.get("status") == "done" for p in b.get("trainings", []))
    if n == 0 or done != n:
        out.append("expected every training done in the collected results, got %d of %d" % (done, n))
    for line in out[:20]:
        print("DIFF " + line)
    if out:
        return 1
    print("same numbers: %d trainings (%d done), aggregates, steps.jsonl, results.csv" % (n, done))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "same":
        sys.exit(same(sys.argv[2], sys.argv[3]))
    print(__doc__)
    sys.exit(2)
