#!/bin/bash
# loralab bench: a tiny-preset run prints valid JSON whose fields agree with the shape
# (adapter parameter count, module count, tokens/s = seq / median, initial loss near
# ln(vocab) for GPT-2's random init, q8_0 base 2-4x smaller than f32), and bad
# usage exits 2 with a reason. No timing assertions.
set -u
LORALAB=${1:?usage: cli_bench.sh path/to/loralab}
PY=/usr/bin/python3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # name expected-exit cmd...
    local name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL $name: exit $rc, expected $want"; sed 's/^/  /' "$tmp/err" | head -5; fail=1
        return 1
    fi
    return 0
}

for w in q8_0 f32; do
    if run "bench tiny $w" 0 "$LORALAB" bench --preset tiny --max-len 16 --timed-steps 3 --warmup 1 \
        --type $w --threads 2 --json; then
        cp "$tmp/out" "$tmp/$w.json"
    fi
done
run "bench tiny ffn" 0 "$LORALAB" bench --preset tiny --max-len 8 --timed-steps 1 --warmup 0 \
    --placement ffn --r 4 --json && cp "$tmp/out" "$tmp/ffn.json"

if [ -s "$tmp/q8_0.json" ] && [ -s "$tmp/f32.json" ] && [ -s "$tmp/ffn.json" ]; then
    $PY - "$tmp/q8_0.json" "$tmp/f32.json" "$tmp/ffn.json" <<'PYEOF' || fail=1
import json, math, sys
q8, f32, ffn = (json.load(open(p)) for p in sys.argv[1:4])
bad = []
def check(cond, what):
    if not cond:
        bad.append(what)
fields = ["command", "build", "preset", "config", "seq", "placement", "modules", "n_modules",
          "weights", "threads", "r", "lora_params", "base_params", "steps", "warmup",
          "median_s_per_step", "min_s_per_step", "mean_s_per_step", "tokens_per_s",
          "gflop_per_step", "memory_kind", "peak_memory_bytes", "model_bytes", "state_bytes",
          "first_loss", "last_loss", "components_s_per_step"]
for d in (q8, f32, ffn):
    for f in fields:
        check(f in d, "field %s missing" % f)
if not bad:
    c = q8["config"]
    L, C, V = c["n_layer"], c["n_embd"], c["n_vocab"]
    check(q8["command"] == "bench" and q8["preset"] == "tiny" and q8["seq"] == 16, "echoed options")
    check(q8["steps"] == 3 and q8["warmup"] == 1 and q8["weights"] == "q8_0", "echoed steps/weights")
    # baseline adapts all four sites: r * (in + out) summed = r * 16C per layer
    check(q8["n_modules"] == 4 * L, "baseline modules %d != 4L" % q8["n_modules"])
    check(q8["lora_params"] == 16 * 16 * C * L, "baseline lora_params %d" % q8["lora_params"])
    check(ffn["n_modules"] == L and ffn["lora_params"] == 4 * 5 * C * L, "ffn r4 lora_params %d" % ffn["lora_params"])
    check("mlp.c_fc" in ffn["modules"] and "attn" not in ffn["modules"], "ffn modules %r" % ffn["modules"])
    for d in (q8, f32, ffn):
        med = d["median_s_per_step"]
        check(0 < d["min_s_per_step"] <= med, "min <= median")
        check(abs(d["tokens_per_s"] - d["seq"] / med) <= 1e-6 * d["tokens_per_s"], "tokens/s = seq/median")
        check(d["peak_memory_bytes"] >= d["model_bytes"] > 0, "peak memory covers the model")
        check(all(v >= 0 for v in d["components_s_per_step"].values()), "component times >= 0")
        # the base products are timed inside attention, mlp and lm_head: a part of them
        cp = d["components_s_per_step"]
        check(0 < d.get("base_products_s_per_step", -1) <= cp["attention"] + cp["mlp"] + cp["lm_head"],
              "base products %r within attention+mlp+lm_head" % d.get("base_products_s_per_step"))
        check(math.isfinite(d["last_loss"]), "finite loss")
    # GPT-2's init gives near-uniform predictions: loss close to ln(V)
    for d in (q8, f32):
        check(abs(d["first_loss"] - math.log(V)) < 0.5, "first loss %.3f vs ln V %.3f" % (d["first_loss"], math.log(V)))
    ratio = f32["model_bytes"] / q8["model_bytes"]
    check(2.0 < ratio < 4.0, "f32/q8_0 model bytes ratio %.2f" % ratio)
for b in bad:
    print("FAIL json:", b)
sys.exit(1 if bad else 0)
PYEOF
fi

run "help" 0 "$LORALAB" bench --help && grep -q -- "--placement" "$tmp/out" || { echo "FAIL help text"; fail=1; }
run "unknown preset" 2 "$LORALAB" bench --preset nope --json && true
grep -q "nope" "$tmp/err" || { echo "FAIL unknown preset not named"; fail=1; }
run "bad steps" 2 "$LORALAB" bench --steps 0
run "bad type" 2 "$LORALAB" bench --type q3
run "unknown option" 2 "$LORALAB" bench --frobnicate 1
run "bad placement" 2 "$LORALAB" bench --preset tiny --placement nowhere
run "max-len over context" 2 "$LORALAB" bench --preset tiny --max-len 100000

[ $fail = 0 ] && echo "cli_bench: ok"
exit $fail
