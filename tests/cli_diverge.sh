#!/bin/bash
# Numerical guard (issue 8): on the bundled model, a learning rate of 1e3 makes the
# study's baseline placement diverge; the run stops that placement with a message
# naming the step, the placement and the learning rate, and the other placement (one
# adapted module, which survives that rate) still trains and reports results.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MODEL=models/lab-small.q8_0.gguf
[ -f "$MODEL" ] || { echo "FAIL: bundled model $MODEL missing" >&2; exit 1; }

"$LORALAB" ablate --model "$MODEL" --quick --lr 1e3 --placement baseline --placement 'one=mlp.c_proj@0' \
    --out "$T/run" --quiet >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 1 ] && ok "exit 1 when a placement failed" || fail "exit code $rc, want 1"
grep -q "1 training(s) failed" "$T/err" && ok "stderr says one training failed" || fail "stderr: $(cat "$T/err")"
grep -q "training diverged at step [0-9]* of placement 'baseline' (lr 1000)" "$T/out" &&
    ok "table names the diverged placement, step and lr" || fail "no divergence message in: $(cat "$T/out")"
$PY - "$T/run/results.json" <<'PY' && ok "results.json: baseline failed with message, 'one' done with finite eval loss" || fail "results.json content"
import json, math, sys
d = json.load(open(sys.argv[1]))
p = {x["name"]: x for x in d["trainings"]}
b, o = p["baseline"], p["one"]
assert b["status"] == "failed" and "diverged" in b["message"] and "lower the learning rate" in b["message"], b
assert o["status"] == "done" and math.isfinite(o["eval_loss"]), o
assert abs(o["perplexity"] - math.exp(o["eval_loss"])) < 1e-6 * o["perplexity"]
PY
[ -f "$T/run/one/adapter_model.safetensors" ] && ok "surviving placement's adapter written" || fail "no adapter for 'one'"
[ ! -f "$T/run/baseline/adapter_model.safetensors" ] && ok "no adapter for the diverged placement" ||
    fail "a diverged placement must not leave an adapter"
finish
