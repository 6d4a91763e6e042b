#!/bin/bash
# bench/torch_peer.py's Llama family is the model our C core runs: a tiny random llama
# (untied, f32) and qwen2 (tied, q/k/v biases, bf16 in two shards) checkpoint in Hugging
# Face layout (tests/llama_ref.py, with an all-linear PEFT adapter whose B is not zero)
# converts to an f32 GGUF; `loralab eval --adapter --json --tokens` gives the C core's
# loss for every scored token of three Alpaca examples, of the base and with the
# adapter, and the peer, loading the same safetensors, computes the loss of the same
# ids (float64): each token and the mean agree to 1e-5 relative, both ways. The same
# comparison with the peer reading another rope_theta must fail (the check sees RoPE),
# and a GPT-2 folder is refused with a clear message. Then the peer's
# training step runs on the llama-tiny and qwen2-tiny presets (wiring only, no timing):
# PEFT's modules, LoRA and base parameter counts equal loralab bench's.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
if ! $PY -c "import torch" 2> /dev/null; then
    echo "skipped: $PY has no torch (Debian's python3-torch); the PyTorch peer cannot run"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# OPENBLAS_NUM_THREADS=1 with --threads 1: the peer runs in this process, no child
PEER=(env LORALAB="$LORALAB" OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $PY bench/torch_peer.py)
$PY tests/llama_ref.py --arch llama --dtype f32 --adam --out "$T/llama" > /dev/null &&
    $PY tests/llama_ref.py --arch qwen2 --dtype bf16 --shards 2 --adam --out "$T/qwen2" > /dev/null ||
    { fail "could not write the checkpoints"; finish; }

# compare C.json PEER.json TOL: exits 0 when the scored tokens are the same and every
# loss and the mean, of the base and with the adapter, agree within TOL relative (3:
# they do not; 1: a malformed document);
# prints what it found
compare() {
    $PY - "$@" <<'PYEOF'
import json, sys
c, p, tol = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
assert len(c["examples"]) == 3 and p["n_tokens"] == c["n_tokens"] > 100, (len(c["examples"]), p["n_tokens"])
assert p["adapter_modules"] == 14, p["adapter_modules"]
# the adapter changes the loss: the LoRA branch is exercised, not a zero B
assert abs(c["eval_loss_adapter"] - c["eval_loss"]) > 1e-3, (c["eval_loss_adapter"], c["eval_loss"])
out, good = [], True
for s in ("", "_adapter"):
    worst = 0.0
    assert len(p["token_losses" + s]) == 3, "examples"
    for ex, got in zip(c["examples"], p["token_losses" + s]):
        assert len(ex["tokens"]) == len(got), "tokens per example"
        for t, x in zip(ex["tokens"], got):
            assert (t["loss" + s] is None) == (x is None), "scored tokens differ"
            if x is not None:
                worst = max(worst, abs(t["loss" + s] - x) / abs(x))
    rel = abs(c["eval_loss" + s] - p["eval_loss" + s]) / p["eval_loss" + s]
    good = good and rel <= tol and worst <= tol
    out.append("%s: C core %.7f, peer %.7f, mean rel %.1e, worst token rel %.1e"
               % (s[1:] or "base", c["eval_loss" + s], p["eval_loss" + s], rel, worst))
print("%d tokens; %s" % (p["n_tokens"], "; ".join(out)))
sys.exit(0 if good else 3)  # 3: out of tolerance (a failed assertion exits 1)
PYEOF
}

for arch in llama qwen2; do
    "$LORALAB" convert --from "$T/$arch" --to "$T/$arch.gguf" --type f32 --quiet ||
        { fail "$arch: convert"; continue; }
    "$LORALAB" eval --model "$T/$arch.gguf" --adapter "$T/$arch/adapter0" --eval data/alpaca_eval.json --n-eval 3 \
        --max-len 48 --threads 1 --json --tokens > "$T/$arch.c.json" || { fail "$arch: loralab eval"; continue; }
    "${PEER[@]}" --check "$T/$arch" --check-adapter "$T/$arch/adapter0" --check-tokens "$T/$arch.c.json" \
        > "$T/$arch.peer.json" 2> "$T/err" ||
        { fail "$arch: torch_peer --check: $(cat "$T/err")"; continue; }
    got=$(compare "$T/$arch.c.json" "$T/$arch.peer.json" 1e-5 2>&1) && ok "$arch: peer = C core ($got)" ||
        fail "$arch: peer and C core differ: $got"
done

# the check is sensitive: the peer reading rope_theta 500000 instead of 10000 must disagree
cp -r "$T/llama" "$T/llama-theta"
$PY -c "import json, sys; p = sys.argv[1]; c = json.load(open(p)); c['rope_theta'] = 500000.0; json.dump(c, open(p, 'w'))" \
    "$T/llama-theta/config.json"
"${PEER[@]}" --check "$T/llama-theta" --check-adapter "$T/llama/adapter0" --check-tokens "$T/llama.c.json" \
    > "$T/theta.peer.json" &&
    got=$(compare "$T/llama.c.json" "$T/theta.peer.json" 1e-3 2>&1)
[ $? -eq 3 ] && ok "another rope_theta is caught ($got)" || fail "a wrong rope_theta passed: $got"

# bad input: a GPT-2 folder is not a Llama checkpoint
"${PEER[@]}" --check tests/fixtures/tiny-gpt2 --check-tokens "$T/llama.c.json" > /dev/null 2> "$T/err"
[ $? -ne 0 ] && grep -q "model_type 'gpt2' is not llama or qwen2" "$T/err" && ok "a GPT-2 folder is refused" ||
    fail "GPT-2 folder: $(cat "$T/err")"

# the training step's wiring on the tiny presets: PEFT's modules and both counts as loralab bench
for preset in llama-tiny qwen2-tiny; do
    for pl in all-linear $([ $preset = llama-tiny ] && echo qv); do
        "$LORALAB" bench --preset $preset --max-len 16 --placement $pl --timed-steps 1 --warmup 0 --threads 1 \
            --json > "$T/c.json" 2> "$T/err" || { fail "$preset $pl: loralab bench: $(cat "$T/err")"; continue; }
        "${PEER[@]}" --preset $preset --max-len 16 --placement $pl --timed-steps 2 --warmup 1 --threads 1 --json \
            > "$T/p.json" 2> "$T/err" || { fail "$preset $pl: torch_peer: $(cat "$T/err")"; continue; }
        got=$($PY - "$T/c.json" "$T/p.json" <<'PYEOF'
import json, math, sys
c, p = (json.load(open(f)) for f in sys.argv[1:3])
assert p["arch"] == c["preset"].split("-")[0], p["arch"]
assert p["modules"] == c["n_modules"] and p["lora_params"] == c["lora_params"], (p["modules"], c["n_modules"], p["lora_params"], c["lora_params"])
assert p["base_params"] == c["base_params"], (p["base_params"], c["base_params"])
assert p["base_dropout"] == 0.0 and math.isfinite(p["final_loss"]) and p["tokens_per_s"] > 0, p
print("%d modules, %d LoRA and %d base parameters, loss %.3f" % (p["modules"], p["lora_params"], p["base_params"], p["final_loss"]))
PYEOF
) && ok "$preset $pl: peer step ($got)" || fail "$preset $pl: $got"
    done
done
finish
