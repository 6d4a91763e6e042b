#!/bin/bash
# Compute int8 against f32 on the bundled model: a reduced study (24 train / 10 eval
# records, 3 epochs, the three study placements) run once with each compute. Every
# eval loss (per placement, before training and after every epoch) must agree within
# 0.5% relative, the placements must come out in the same order, and int8 must
# really have run (the losses are not bit-identical). The full study's comparison
# is `bench/report --only study` (docs/BENCHMARKS.md). Also: --compute is recorded in
# results.json, and a bad value is a usage error.
# Under ASan/UBSan (LPL_TEST_SANITIZED=1, set by CMake) the same two studies run with
# 12 / 6 records and 1 epoch: every code path of the full run (both computes, every
# placement, eval before and after an epoch) under a sixth of the steps; the 0.5%
# agreement and the order still hold there (margins between placements ~0.02, int8
# differences ~1e-4), and the native build checks them at full size.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
EPOCHS=3
STUDY=(--n-train 24 --n-eval 10 --epochs $EPOCHS --threads 2)
if [ "${LPL_TEST_SANITIZED:-0}" = 1 ]; then
    EPOCHS=1
    STUDY=(--n-train 12 --n-eval 6 --epochs $EPOCHS --threads 2)
fi
for c in int8 f32; do
    "$LORALAB" ablate "${STUDY[@]}" --compute "$c" --out "$T/$c" > "$T/$c.txt" 2> "$T/$c.err"
    rc=$?
    [ $rc -eq 0 ] && ok "ablate --compute $c exit 0" || { fail "ablate --compute $c exit $rc: $(tail -3 "$T/$c.err")"; finish; }
done
$PY - "$T/int8/results.json" "$T/f32/results.json" "$EPOCHS" <<'PYEOF' && ok "int8 eval losses within 0.5% of f32, same order" || fail "int8 vs f32"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["config"]["compute"] == "int8" and b["config"]["compute"] == "f32", (a["config"].get("compute"), b["config"].get("compute"))
worst, differ = 0.0, False
for pa, pb in zip(a["trainings"], b["trainings"]):
    assert pa["name"] == pb["name"]
    ea, eb = pa["evals"], pb["evals"]
    assert len(ea) == len(eb) == int(sys.argv[3]) + 1, (len(ea), len(eb))
    for x, y in zip(ea, eb):
        rel = abs(x["eval_loss"] - y["eval_loss"]) / y["eval_loss"]
        worst = max(worst, rel)
        differ |= x["eval_loss"] != y["eval_loss"]
        print(f'{pa["name"]:9s} epoch {x["epoch"]}: int8 {x["eval_loss"]:.5f} f32 {y["eval_loss"]:.5f} rel {rel:.2e}')
        assert rel <= 0.005, f'{pa["name"]} epoch {x["epoch"]}: {rel:.4f} relative'
order = lambda r: [p["name"] for p in sorted(r["trainings"], key=lambda p: p["eval_loss"])]
print("order int8:", order(a), "f32:", order(b), f"worst relative difference {worst:.2e}")
assert order(a) == order(b)
assert differ, "int8 and f32 gave bit-identical eval losses: int8 did not run"
PYEOF
"$LORALAB" ablate --compute fp16 --out "$T/bad" > /dev/null 2> "$T/bad.err"
rc=$?
[ $rc -eq 2 ] && grep -q "compute" "$T/bad.err" && ok "--compute fp16 is a usage error naming the flag" ||
    fail "--compute fp16: exit $rc, $(cat "$T/bad.err")"
echo '{"compute": "int4"}' > "$T/bad.json"
"$LORALAB" ablate --config "$T/bad.json" --out "$T/bad2" > /dev/null 2> "$T/bad2.err"
rc=$?
[ $rc -eq 2 ] && grep -q '"compute"' "$T/bad2.err" && ok "experiment JSON compute int4 refused, naming the key" ||
    fail "JSON compute int4: exit $rc, $(cat "$T/bad2.err")"
finish
