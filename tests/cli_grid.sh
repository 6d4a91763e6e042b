#!/bin/bash
# A grid planned, run as units in parallel processes (xargs -P) and collected gives the
# same numbers, bit for bit, as the same grid run in one process; count lists every
# arm with its parameters; units are idempotent (finished: skipped; interrupted:
# cleared and run again), locked against a second process, and refuse files whose
# sha256 differs from the plan's; collect lists missing units and exits 1 without
# --partial; clear refusals for an unknown unit and a different plan in the folder.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
HOLDER=
trap '[ -n "$HOLDER" ] && kill -9 "$HOLDER" 2>/dev/null; rm -rf "$T"' EXIT
make_tiny_model "$T/tiny.gguf"
D="$PWD/data"
# Absolute paths: a plan records them so, and the one-process run must have the same config.
SMALL=(--model "$T/tiny.gguf" --train "$D/alpaca_train.json" --eval "$D/alpaca_eval.json" --n-train 4 --n-eval 2
       --max-len 40 --epochs 1 --lr 5e-3 --alpha 8 --dropout 0.1)
GRID=(--placements baseline,attn-exact --bands 2 --r 2,4 --seeds 2)

# ---- count: every arm (2 placements x 2 bands x 2 r = 8), params = r * (in + out) per module
out=$("$LORALAB" count --model "$T/tiny.gguf" "${GRID[@]}" 2>&1) || fail "count grid exit $?: $out"
echo "$out"
$PY - "$out" <<'PYEOF' && ok "count lists the 8 arms with r * (in + out) per adapted module" || fail "count of the grid"
import sys
lines = [l.split() for l in sys.argv[1].splitlines() if l[:1].isalpha() and "." in l.split()[0]]
io = {"attn.c_attn": 64 + 192, "attn.c_proj": 64 + 64, "mlp.c_fc": 64 + 256, "mlp.c_proj": 256 + 64}
want = {}
for p, mods in (("baseline", list(io)), ("attn-exact", ["attn.c_attn", "attn.c_proj"])):
    for band in ("L0-0", "L1-1"):
        for r in (2, 4):
            want["%s.%s.r%d" % (p, band, r)] = r * sum(io[m] for m in mods)
got = {l[0]: int(l[1].replace(",", "")) for l in lines}
assert got == want, (got, want)
PYEOF

# ---- plan: 8 arms x 2 seeds = 16 units, listed on stdout
"$LORALAB" ablate --plan --out "$T/g" "${SMALL[@]}" "${GRID[@]}" > "$T/units.tsv" 2> "$T/plan.err"
rc=$?
[ $rc -eq 0 ] && ok "plan exit 0" || { fail "plan exit $rc: $(cat "$T/plan.err")"; finish; }
cat "$T/plan.err"
[ "$(wc -l < "$T/units.tsv")" -eq 16 ] && ok "16 units listed" || fail "units listed: $(cat "$T/units.tsv")"
ls "$T/g"/units 2>/dev/null | grep -q . && fail "--plan trained something" || ok "--plan trains nothing"
$PY - "$T/g/plan.json" "$T/units.tsv" "$T/tiny.gguf" "$D/alpaca_train.json" <<'PYEOF' && ok "plan.json: config, units in order with ids, sha256 of model and data" || fail "plan.json content"
import hashlib, json, sys
plan = json.load(open(sys.argv[1]))
listed = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
assert plan["format"] == "loralab-plan"
sha = lambda f: hashlib.sha256(open(f, "rb").read()).hexdigest()
assert plan["model"]["sha256"] == sha(sys.argv[3]) and plan["data"]["train"]["sha256"] == sha(sys.argv[4])
units = plan["units"]
assert [u["index"] for u in units] == list(range(16))
assert [[str(u["index"]), u["id"], u["name"]] for u in units] == listed
assert len(set(u["id"] for u in units)) == 16 and all(len(u["id"]) == 16 for u in units)
# seed-major, arms in placement, band, r order
assert units[0]["name"] == "baseline.L0-0.r2.s42" and units[1]["name"] == "baseline.L0-0.r4.s42", units[:2]
assert units[8]["name"] == "baseline.L0-0.r2.s43" and units[15]["name"] == "attn-exact.L1-1.r4.s43"
arms = plan["config"]["placements"]
assert len(arms) == 8 and arms[2]["layers"] == [1] and arms[1]["r"] == 4 and plan["config"]["seeds"] == 2
PYEOF
"$LORALAB" ablate --plan --out "$T/g" "${SMALL[@]}" "${GRID[@]}" > /dev/null 2> "$T/again.err" &&
    grep -q "plan unchanged" "$T/again.err" && ok "the same plan again is accepted unchanged" ||
    fail "re-plan: $(cat "$T/again.err")"
"$LORALAB" ablate --plan --out "$T/g" "${SMALL[@]}" --r 8 > /dev/null 2> "$T/other.err"
rc=$?
[ $rc -eq 2 ] && grep -q "already holds a plan of another grid" "$T/other.err" && ok "another grid into the folder refused" ||
    fail "other plan exit $rc: $(cat "$T/other.err")"

# ---- refusals of --unit
"$LORALAB" ablate --unit 16 --out "$T/g" 2> "$T/e1" ; rc=$?
[ $rc -eq 2 ] && grep -q "has no such unit (16 units: 0-15" "$T/e1" && ok "unknown unit index refused: $(cat "$T/e1")" ||
    fail "unit 16 exit $rc: $(cat "$T/e1")"
"$LORALAB" ablate --unit nonsense --out "$T/g" 2> "$T/e2" ; rc=$?
[ $rc -eq 2 ] && grep -q "no such unit" "$T/e2" && ok "unknown unit name refused" || fail "unit nonsense exit $rc: $(cat "$T/e2")"
"$LORALAB" ablate --unit 0 --out "$T/g" --r 8 2> "$T/e3" ; rc=$?
[ $rc -eq 2 ] && grep -q "experiment flags belong to --plan" "$T/e3" && ok "experiment flags with --unit refused" ||
    fail "--unit --r exit $rc: $(cat "$T/e3")"
cp "$T/tiny.gguf" "$T/other.gguf" && printf 'x' >> "$T/other.gguf"
"$LORALAB" ablate --unit 0 --out "$T/g" --model "$T/other.gguf" --quiet 2> "$T/e4" ; rc=$?
[ $rc -eq 2 ] && grep -q "other.gguf has sha256 .* but $T/g/plan.json was made with" "$T/e4" &&
    ok "a model with another sha256 refused: $(cat "$T/e4")" || fail "mismatched model exit $rc: $(cat "$T/e4")"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); d[0]["output"]+=" (edited)"; json.dump(d, open(sys.argv[2],"w"))' \
    "$D/alpaca_train.json" "$T/train2.json"
"$LORALAB" ablate --unit 0 --out "$T/g" --train "$T/train2.json" --quiet 2> "$T/e5" ; rc=$?
[ $rc -eq 2 ] && grep -q "train2.json has sha256" "$T/e5" && ok "training data with another sha256 refused" ||
    fail "mismatched data exit $rc: $(cat "$T/e5")"
ls "$T/g"/units 2>/dev/null | grep -q . && fail "a refused unit left a folder" || ok "refused units wrote nothing"

# ---- collect before anything ran: every unit missing, nothing written
"$LORALAB" collect "$T/g" > /dev/null 2> "$T/c0" ; rc=$?
[ $rc -eq 1 ] && grep -q "16 of 16 units missing" "$T/c0" && [ ! -e "$T/g/results.json" ] &&
    ok "collect with missing units: exit 1, nothing written" || fail "collect of nothing exit $rc: $(cat "$T/c0")"

# ---- a unit already running (its folder's lock held by another live process) is refused
U0=$(cut -f2 "$T/units.tsv" | head -n1)
mkdir -p "$T/g/units/$U0"
$PY - "$T/g/units/$U0/.loralab.lock" "$(hostname)" <<'PYEOF' &
import fcntl, json, os, sys, time
f = open(sys.argv[1], "w")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
f.write(json.dumps({"pid": os.getpid(), "host": sys.argv[2], "since": "2026-01-01T00:00:00Z"}) + "\n")
f.flush()
time.sleep(60)
PYEOF
HOLDER=$!
for _ in $(seq 1 100); do [ -s "$T/g/units/$U0/.loralab.lock" ] && break; sleep 0.05; done
"$LORALAB" ablate --unit 0 --out "$T/g" --threads 1 --quiet 2> "$T/e6" ; rc=$?
[ $rc -eq 1 ] && grep -q "units/$U0 is in use by pid $HOLDER on" "$T/e6" && ok "a running unit refused: $(cat "$T/e6")" ||
    fail "running unit exit $rc: $(cat "$T/e6")"
kill -9 "$HOLDER"; wait "$HOLDER" 2>/dev/null; HOLDER=

# ---- an interrupted unit (dead holder, partial files) is cleared and run again
mkdir -p "$T/g/units/$U0/baseline.L0-0.r2"
echo "partial" > "$T/g/units/$U0/baseline.L0-0.r2/adapter_model.safetensors"
echo '{"truncated' > "$T/g/units/$U0/results.json"
"$LORALAB" ablate --unit 0 --out "$T/g" --threads 1 --quiet 2> "$T/u0" ; rc=$?
[ $rc -eq 0 ] && ok "interrupted unit 0 run again: exit 0" || fail "unit 0 after interruption exit $rc: $(cat "$T/u0")"
grep -q "took over" "$T/u0" && ok "stale lock of the dead holder taken over" || fail "no takeover note: $(cat "$T/u0")"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["trainings"][0]["status"]=="done"' \
    "$T/g/units/$U0/results.json" && ok "unit 0 done" || fail "unit 0 results"
grep -q partial -r "$T/g/units/$U0" && fail "partial files of the interrupted run left" || ok "partial files cleared"
[ -e "$T/g/units/$U0/.loralab.lock" ] && fail "unit left its lock file" || ok "lock released"
before=$(stat -c %Y.%s "$T/g/units/$U0/results.json"; sha256sum "$T/g/units/$U0/results.json")
"$LORALAB" ablate --unit "$(sed -n 1p "$T/units.tsv" | cut -f3)" --out "$T/g" --threads 1 2> "$T/u0b" ; rc=$?
[ $rc -eq 0 ] && grep -q "already done" "$T/u0b" && ok "finished unit skipped (by name): $(cat "$T/u0b")" ||
    fail "second run of unit 0 exit $rc: $(cat "$T/u0b")"
[ "$before" = "$(stat -c %Y.%s "$T/g/units/$U0/results.json"; sha256sum "$T/g/units/$U0/results.json")" ] &&
    ok "its results untouched" || fail "a skipped unit rewrote its results"

# ---- units 1-5 in parallel processes; collect --partial; --list
seq 1 5 | xargs -P 2 -I{} "$LORALAB" ablate --unit {} --out "$T/g" --threads 1 --quiet || fail "xargs units 1-5"
"$LORALAB" collect "$T/g" --list > "$T/list" || fail "collect --list exit $?"
[ "$(grep -c $'\tdone$' "$T/list")" -eq 6 ] && [ "$(grep -c $'\tmissing$' "$T/list")" -eq 10 ] &&
    ok "collect --list: 6 done, 10 missing" || fail "list: $(cat "$T/list")"
"$LORALAB" collect "$T/g" --partial 2> "$T/c1" ; rc=$?
[ $rc -eq 0 ] && grep -q "10 of 16 units missing" "$T/c1" && grep -q "attn-exact.L1-1.r4.s43" "$T/c1" &&
    ok "collect --partial: exit 0, lists the missing units" || fail "collect --partial exit $rc: $(cat "$T/c1")"
$PY -c '
import json,sys; d=json.load(open(sys.argv[1])); s=[p["status"] for p in d["trainings"]]
assert s[:6]==["done"]*6 and s[6:]==["pending"]*10, s
assert d["collected"]["done"]==6 and len(d["collected"]["missing"])==10' "$T/g/results.json" &&
    ok "partial results: 6 done, 10 pending" || fail "partial results.json"

# ---- the rest with xargs -P 2, then collect; compare with the grid in one process
cut -f1 "$T/units.tsv" | xargs -P 2 -I{} "$LORALAB" ablate --unit {} --out "$T/g" --threads 1 --quiet ||
    fail "xargs all units"
"$LORALAB" collect "$T/g" 2> "$T/c2" ; rc=$?
[ $rc -eq 0 ] && grep -q "16 of 16 units (16 done, 0 failed)" "$T/c2" && ok "collect: $(cat "$T/c2")" ||
    fail "collect exit $rc: $(cat "$T/c2")"
"$LORALAB" ablate "${SMALL[@]}" "${GRID[@]}" --threads 2 --quiet --out "$T/one" > "$T/one.txt" 2> "$T/one.err" ||
    fail "grid in one process: $(cat "$T/one.err")"
$PY tests/lib_grid.py same "$T/one" "$T/g" && ok "units + collect = one process, bit for bit" ||
    fail "units + collect differ from one process"
$PY -c '
import json,sys; d=json.load(open(sys.argv[1]))
assert len(d["trainings"])==16 and d["config"]["seeds"]==2 and d["aggregates"]' "$T/g/results.json" &&
    ok "collected results carry aggregates over seeds" || fail "aggregates missing"

# ---- units written before issue 25 (their trainings under "placements") collect the same
cp -r "$T/g" "$T/old" && rm -f "$T/old/results.json" "$T/old/results.csv" "$T/old/steps.jsonl"
$PY -c '
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/units/*/results.json"):
    d = json.load(open(f)); d["placements"] = d.pop("trainings"); json.dump(d, open(f, "w"))' "$T/old"
"$LORALAB" collect "$T/old" 2> "$T/c3" && $PY tests/lib_grid.py same "$T/one" "$T/old" &&
    ok "old-format units + collect = one process" || fail "old-format units: $(cat "$T/c3")"
finish
