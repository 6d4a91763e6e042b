#!/bin/bash
# Seeds: `ablate --quick --seeds 3` on the bundled model writes every seed's training and,
# per placement and metric, mean / std / 95% t-interval / values, and paired differences
# against the baseline matched by seed; all are recomputed here from the per-seed
# results (t quantile for 2 degrees of freedom in closed form). The table shows
# mean +- half-interval and the verdicts. --resume works per (placement, seed) and can
# extend a run to more seeds.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$LORALAB" ablate --quick --seeds 3 --out "$T/q" --quiet > "$T/table.txt" 2> "$T/err.txt"
rc=$?
cat "$T/table.txt"
[ $rc -eq 0 ] && ok "ablate --quick --seeds 3 exit 0" || { fail "exit $rc: $(cat "$T/err.txt")"; finish; }
for p in baseline ffn attn; do for s in 42 43 44; do
    [ -s "$T/q/$p/seed-$s/adapter_model.safetensors" ] || fail "adapter $p/seed-$s missing"
done; done
ok "one adapter per placement and seed"

$PY - "$T/q" "$T/table.txt" <<'PYEOF' && ok "aggregates and paired differences agree with the per-seed results" || fail "aggregate checks"
import csv, json, math, sys
run, table = sys.argv[1], open(sys.argv[2]).read()
d = json.load(open(run + "/results.json"))
assert d["seeds"] == [42, 43, 44] and d["config"]["seeds"] == 3
pls = d["trainings"]
assert [(p["name"], p["seed"]) for p in pls] == [(n, s) for s in (42, 43, 44) for n in ("baseline", "ffn", "attn")]
assert all(p["status"] == "done" for p in pls)
assert len(list(csv.DictReader(open(run + "/results.csv")))) == 9
by = {(p["name"], p["seed"]): p for p in pls}
# t_{0.975} with 2 degrees of freedom: t / sqrt(2 + t^2) = 0.95
t2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
def describe(v):
    n = len(v); m = sum(v) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    h = t2 * sd / math.sqrt(n)
    return m, sd, m - h, m + h
def close(a, b): return abs(a - b) <= 1e-9 * max(1.0, abs(b))
ag = d["aggregates"]
assert ag["baseline"] == "baseline" and ag["seeds"] == [42, 43, 44]
assert [a["name"] for a in ag["placements"]] == ["baseline", "ffn", "attn"]
distinct = set()
for a in ag["placements"]:
    n = a["name"]
    for key in ("eval_loss", "perplexity", "mean_sample_perplexity", "train_seconds", "tokens_per_s"):
        v = [by[(n, s)][key] for s in (42, 43, 44)]
        got = a["metrics"][key]
        assert got["values"] == v and got["n"] == 3, (n, key)
        m, sd, lo, hi = describe(v)
        assert close(got["mean"], m) and close(got["std"], sd), (n, key, got, m, sd)
        assert close(got["ci95"][0], lo) and close(got["ci95"][1], hi), (n, key, got["ci95"], lo, hi)
        if n != "baseline":
            diff = [by[(n, s)][key] - by[("baseline", s)][key] for s in (42, 43, 44)]
            pd = a["paired"][key]
            m, sd, lo, hi = describe(diff)
            assert all(close(x, y) for x, y in zip(pd["values"], diff)), (n, key)
            assert close(pd["mean"], m) and close(pd["ci95"][0], lo) and close(pd["ci95"][1], hi), (n, key)
            assert pd["resolved"] == (lo > 0 or hi < 0)
    distinct.add(tuple(a["metrics"]["eval_loss"]["values"]))
    if n == "baseline":
        assert a["paired"] is None and a["verdict"] is None
    else:
        pd = a["paired"]["eval_loss"]
        word = "resolved" if pd["resolved"] else "unresolved at 3 seeds"
        want = "%s \u2212 baseline: %+.3f nats [%.3f, %.3f], %s" % (n, pd["mean"], pd["ci95"][0], pd["ci95"][1], word)
        assert a["verdict"] == want, (a["verdict"], want)
        assert want in table, "verdict not printed: " + want
    assert len(set(a["metrics"]["eval_loss"]["values"])) == 3, "seeds gave identical losses"
# table: mean +- half-interval
base = ag["placements"][0]["metrics"]["eval_loss"]
cell = "%.4f \u00b1 %.4f" % (base["mean"], (base["ci95"][1] - base["ci95"][0]) / 2)
assert cell in table, "table cell " + cell
assert "over 3 seeds" in table
PYEOF

# ---- resume per (placement, seed), then more seeds
make_tiny_model "$T/tiny.gguf"
SMALL=(--model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 4 --n-eval 2
       --max-len 40 --epochs 1 --lr 5e-3 --r 4 --alpha 8 --placements baseline,ffn --threads 1)
"$LORALAB" ablate "${SMALL[@]}" --seeds 2 --out "$T/r" --stop-after-trainings 3 > /dev/null 2> "$T/r.err"
[ $? -eq 1 ] && ok "interrupted after 3 trainings" || fail "interrupted run: $(cat "$T/r.err")"
cp "$T/r/results.json" "$T/first.json"
"$LORALAB" ablate --resume "$T/r" --seeds 3 --quiet > "$T/r.table" 2> "$T/r2.err"
[ $? -eq 0 ] && ok "resume with --seeds 3 exit 0" || fail "resume: $(cat "$T/r2.err")"
$PY - "$T/first.json" "$T/r/results.json" <<'PYEOF' && ok "resume kept the 3 finished trainings and ran the other 3" || fail "resume checks"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
done_a = [p for p in a["trainings"] if p["status"] == "done"]
assert [(p["name"], p["seed"]) for p in done_a] == [("baseline", 42), ("ffn", 42), ("baseline", 43)], done_a
pb = {(p["name"], p["seed"]): p for p in b["trainings"]}
assert len(pb) == 6 and all(p["status"] == "done" for p in pb.values())
for p in done_a:
    q = pb[(p["name"], p["seed"])]
    assert q["steps"] == p["steps"] and q["eval_loss"] == p["eval_loss"], p["name"]
assert b["seeds"] == [42, 43, 44] and b["aggregates"]["placements"][1]["metrics"]["eval_loss"]["n"] == 3
PYEOF
"$LORALAB" ablate "${SMALL[@]}" --seeds 0 --out "$T/bad" > /dev/null 2> "$T/bad.err"
[ $? -eq 2 ] && grep -q -- "--seeds" "$T/bad.err" && ok "--seeds 0 refused naming the flag" || fail "--seeds 0: $(cat "$T/bad.err")"
finish
