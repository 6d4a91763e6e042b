#!/bin/bash
# 7-bit activations (the int8 products of the relaxed dot, which the relaxed-SIMD wasm
# build has with -DLPL_RELAXED_DOT=ON and kernels_test_rx keeps) against f32 on the
# bundled model: loralab_qa7 is the CLI built with LPL_QA_MAX=63, the codes the
# relaxed dot's 7-bit operand needs (src/internal/lpl/core/simd.h). Its integer sums
# are exact, so this machine's CPU computes the same codes and block sums as any
# browser running the relaxed build. The reduced study of cli_compute.sh (24 train /
# 10 eval records, 3 epochs, three placements) once with 7-bit int8 and once with
# f32: every eval loss within 0.5% relative (compute int8's rule), the same order of
# placements, and 7-bit really ran (its losses differ from 8-bit int8's).
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
QA7="$(dirname "$LORALAB")/loralab_qa7"
[ -x "$QA7" ] || { fail "$QA7 not built (cmake --build build --target loralab_qa7)"; finish; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
STUDY=(--n-train 24 --n-eval 10 --epochs 3 --threads 2)
for run in "qa7:$QA7:int8" "int8:$LORALAB:int8" "f32:$LORALAB:f32"; do
    IFS=: read -r name exe compute <<< "$run"
    "$exe" ablate "${STUDY[@]}" --compute "$compute" --out "$T/$name" > "$T/$name.txt" 2> "$T/$name.err"
    rc=$?
    [ $rc -eq 0 ] && ok "$name: ablate exit 0" || { fail "$name: ablate exit $rc: $(tail -3 "$T/$name.err")"; finish; }
done
$PY - "$T/qa7/results.json" "$T/f32/results.json" "$T/int8/results.json" <<'PYEOF' && ok "7-bit int8 eval losses within 0.5% of f32, same order" || fail "7-bit int8 vs f32"
import json, sys
a, b, c = (json.load(open(p)) for p in sys.argv[1:4])
worst, worst8, differ = 0.0, 0.0, False
for pa, pb, pc in zip(a["trainings"], b["trainings"], c["trainings"]):
    assert pa["name"] == pb["name"] == pc["name"]
    for x, y, z in zip(pa["evals"], pb["evals"], pc["evals"]):
        rel = abs(x["eval_loss"] - y["eval_loss"]) / y["eval_loss"]
        rel8 = abs(z["eval_loss"] - y["eval_loss"]) / y["eval_loss"]
        worst, worst8 = max(worst, rel), max(worst8, rel8)
        differ |= x["eval_loss"] != z["eval_loss"]
        print(f'{pa["name"]:9s} epoch {x["epoch"]}: 7-bit {x["eval_loss"]:.5f} 8-bit {z["eval_loss"]:.5f} '
              f'f32 {y["eval_loss"]:.5f} rel 7-bit {rel:.2e} 8-bit {rel8:.2e}')
        assert rel <= 0.005, f'{pa["name"]} epoch {x["epoch"]}: {rel:.4f} relative'
order = lambda r: [p["name"] for p in sorted(r["trainings"], key=lambda p: p["eval_loss"])]
print("order 7-bit:", order(a), "f32:", order(b))
print(f"worst relative difference to f32: 7-bit {worst:.2e}, 8-bit {worst8:.2e} (limit 5e-3)")
assert order(a) == order(b)
assert differ, "7-bit and 8-bit int8 gave identical eval losses: LPL_QA_MAX=63 did not take effect"
PYEOF
finish
