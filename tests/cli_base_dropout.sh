#!/bin/bash
# --base-dropout config|X (ablate, train, bench, the experiment JSON): "config" reads
# the model's own embd/attn/resid_pdrop (HF config.json -> GGUF -> results.json), a
# file without them gets GPT-2's 0.1 marked "assumed", a number sets all three; eval
# never drops; the same seed gives the same run; bad values exit 2 naming the flag.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# ---- a checkpoint whose config.json sets three different rates
mkdir -p "$T/hf"
cp tests/fixtures/tiny-gpt2/{model.safetensors,vocab.json,merges.txt} "$T/hf/"
$PY - tests/fixtures/tiny-gpt2/config.json "$T/hf/config.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(embd_pdrop=0.05, attn_pdrop=0.15, resid_pdrop=0.2)
json.dump(c, open(sys.argv[2], "w"))
PYEOF
"$LORALAB" convert --from "$T/hf" --to "$T/drop.gguf" --type f32 --quiet || fail "convert"
make_tiny_model "$T/tiny.gguf"

SMALL=(--train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 3 --n-eval 2 --max-len 32 --steps 3
       --lr 5e-3 --r 4 --alpha 8 --threads 1 --placements baseline --quiet)
run() { # run NAME MODEL FLAGS...: an ablation into $T/NAME
    local name=$1 model=$2
    shift 2
    "$LORALAB" ablate --model "$model" "${SMALL[@]}" "$@" --out "$T/$name" >/dev/null 2>"$T/$name.err" ||
        fail "ablate $name: $(cat "$T/$name.err")"
}
run model "$T/drop.gguf"
run model-again "$T/drop.gguf"
run zero "$T/drop.gguf" --base-dropout 0
run set "$T/drop.gguf" --base-dropout 0.3
run seed2 "$T/drop.gguf" --seed 43
run bundled models/lab-small.q8_0.gguf

$PY - "$T" <<'PYEOF' && ok "config reads the model's rates; 0 and X as set; eval never drops; seeds repeat" || fail "results"
import json, sys
T = sys.argv[1]
res = {k: json.load(open(f"{T}/{k}/results.json")) for k in ["model", "model-again", "zero", "set", "seed2", "bundled"]}
def bd(k): return res[k]["base_dropout"]
def loss(k): return res[k]["trainings"][0]["eval_loss"]
def curve(k): return res[k]["trainings"][0]["steps"]["loss"]
m = bd("model")
assert m["setting"] == "config" and m["source"] == "model", m
assert (m["embd_pdrop"], m["attn_pdrop"], m["resid_pdrop"]) == (0.05, 0.15, 0.2), m
assert res["model"]["config"]["base_dropout"] == "config"
z = bd("zero")
assert z["source"] == "set" and z["embd_pdrop"] == z["attn_pdrop"] == z["resid_pdrop"] == 0, z
s = bd("set")
assert s["source"] == "set" and s["embd_pdrop"] == s["attn_pdrop"] == s["resid_pdrop"] == 0.3, s
b = bd("bundled")
assert b["source"] == "assumed" and b["embd_pdrop"] == b["attn_pdrop"] == b["resid_pdrop"] == 0.1, b
assert "0.1" in b["note"], b
# the training losses see the masks; the base eval (no training) never does
assert curve("model") != curve("zero") and curve("set") != curve("zero") and curve("set") != curve("model")
assert res["model"]["base_eval"]["eval_loss"] == res["zero"]["base_eval"]["eval_loss"] == res["set"]["base_eval"]["eval_loss"]
# one seed, one run: the masks come from the seed; another seed draws others
assert curve("model") == curve("model-again") and loss("model") == loss("model-again")
assert curve("seed2") != curve("model")
PYEOF

# ---- resuming a run written before base dropout and compute int8 existed: it trained
# without base dropout, in fp32
$PY - "$T/zero/results.json" "$T/old.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
del r["config"]["base_dropout"], r["base_dropout"], r["config"]["compute"]
json.dump(r, open(sys.argv[2], "w"))
PYEOF
mkdir -p "$T/old-run" && cp "$T/old.json" "$T/old-run/results.json"
"$LORALAB" ablate --model "$T/drop.gguf" "${SMALL[@]}" --base-dropout config --compute f32 --resume "$T/old-run" \
    --out "$T/old-run" >/dev/null 2>"$T/err" && fail "resume of a dropout-free run with base dropout config was accepted" ||
    { grep -q '"base_dropout"' "$T/err" && ok "resume refuses other base dropout, naming it" || fail "resume message: $(cat "$T/err")"; }
"$LORALAB" ablate --model "$T/drop.gguf" --resume "$T/old-run" --quiet >/dev/null 2>"$T/err" &&
    $PY -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['base_dropout']['setting']==0 and r['config']['compute']=='f32', r['config']" "$T/old-run/results.json" &&
    ok "a run from before base dropout and compute resumes as it trained (base dropout 0, f32)" || fail "resume of an old run: $(cat "$T/err")"

# ---- the rates live in the GGUF under HF's names
"$LORALAB" inspect "$T/drop.gguf" --json >"$T/inspect.json" 2>&1 || fail "inspect"
$PY - "$T/inspect.json" <<'PYEOF' && ok "GGUF keeps gpt2.embd_pdrop / attn_pdrop / resid_pdrop" || fail "GGUF keys"
import json, math, sys
cfg = json.load(open(sys.argv[1]))["config"]
for k, v in [("embd_pdrop", 0.05), ("attn_pdrop", 0.15), ("resid_pdrop", 0.2)]:
    assert abs(cfg[k] - v) < 1e-7, (k, cfg)
PYEOF
"$LORALAB" inspect models/lab-small.q8_0.gguf --json >"$T/inspect0.json" 2>&1 || fail "inspect bundled"
$PY -c "import json,sys; assert 'embd_pdrop' not in json.load(open(sys.argv[1]))['config']" "$T/inspect0.json" &&
    ok "the bundled model records no rates (so config assumes GPT-2's 0.1)" || fail "bundled model rates"

# ---- the experiment JSON takes the same setting
printf '{"base_dropout": 0.3}' >"$T/exp.json"
run json "$T/drop.gguf" --config "$T/exp.json"
$PY -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['base_dropout']['resid_pdrop']==0.3" \
    "$T/json/results.json" && ok "experiment JSON base_dropout 0.3" || fail "experiment JSON base_dropout"

# ---- bad values: exit 2 naming the flag (or the key)
for v in 1.5 abc -0.1 1; do
    for cmd in ablate train bench; do
        "$LORALAB" $cmd --base-dropout "$v" >/dev/null 2>"$T/err"; rc=$?
        [ $rc -eq 2 ] && grep -q -- "--base-dropout" "$T/err" && ok "$cmd --base-dropout $v: exit 2" ||
            fail "$cmd --base-dropout $v: exit $rc: $(cat "$T/err")"
    done
done
printf '{"base_dropout": 2}' >"$T/bad.json"
"$LORALAB" ablate --model "$T/drop.gguf" "${SMALL[@]}" --config "$T/bad.json" --out "$T/bad" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'base_dropout' "$T/err" && ok "experiment JSON base_dropout 2: exit 2" ||
    fail "experiment JSON base_dropout 2: exit $rc: $(cat "$T/err")"
for cmd in ablate train bench; do
    "$LORALAB" $cmd --help | grep -q -- "--base-dropout config|X" && ok "$cmd --help lists --base-dropout" ||
        fail "$cmd --help has no --base-dropout"
done
finish
