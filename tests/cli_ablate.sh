#!/bin/bash
# loralab ablate end to end on the tiny model: result files agree with the printed
# table, perplexity == exp(eval loss), every placement lowers eval loss, adapters are
# PEFT files that reload (eval --adapter, train --init-adapter) with the same eval loss,
# an interrupted run keeps its first placement and --resume finishes, and Ctrl-C stops
# a run cleanly.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
make_tiny_model "$T/tiny.gguf"
DATA=(--train data/alpaca_train.json --eval data/alpaca_eval.json)
SMALL=(--model "$T/tiny.gguf" "${DATA[@]}" --n-train 4 --n-eval 2 --max-len 40 --epochs 2 --lr 5e-3 --r 4 --alpha 8
       --dropout 0 --threads 1)

# ---- a full small ablation
"$LORALAB" ablate "${SMALL[@]}" --out "$T/run" > "$T/table.txt" 2> "$T/err.txt"
rc=$?
cat "$T/table.txt"
[ $rc -eq 0 ] && ok "ablate exit 0" || { fail "ablate exit $rc: $(cat "$T/err.txt")"; finish; }
for f in results.json results.csv steps.jsonl baseline/adapter_config.json baseline/adapter_model.safetensors \
         ffn/adapter_model.safetensors attn/adapter_model.safetensors; do
    [ -s "$T/run/$f" ] && ok "$f exists" || fail "$f missing"
done
ls "$T/run" | grep -q '\.tmp$' && fail "temporary files left behind" || ok "no temporary files"

$PY - "$T/run" "$T/table.txt" <<'PYEOF' && ok "files agree with the table; metrics consistent; PEFT layout" || fail "result checks"
import csv, json, math, struct, sys
run, table = sys.argv[1], open(sys.argv[2]).read().splitlines()
res = json.load(open(run + "/results.json"))
rows = {r["placement"]: r for r in csv.DictReader(open(run + "/results.csv"))}
names = [p["name"] for p in res["trainings"]]
assert names == ["baseline", "ffn", "attn"], names
assert res["model"]["sha256"] and len(res["model"]["sha256"]) == 64
assert len(res["data"]["train"]["sha256"]) == 64 and res["data"]["train"]["used"] == 4
assert res["config"]["r"] == 4 and res["config"]["lr"] == 0.005
cells = {l.split("  ")[0].strip(): l for l in table}
def table_row(label):
    line = next(l for l in table if l.startswith(label + " ") and not l.startswith(label + " before"))
    return line[len(label):].replace("*", " ").split()
ev = table_row("eval loss"); pp = table_row("perplexity")
for i, p in enumerate(res["trainings"]):
    n = p["name"]
    assert p["status"] == "done", p["status"]
    assert p["eval_loss"] < p["eval_loss_before"], (n, p["eval_loss"], p["eval_loss_before"])
    assert abs(p["perplexity"] - math.exp(p["eval_loss"])) <= 1e-12 * p["perplexity"], n
    for e in p["evals"]:
        assert abs(e["perplexity"] - math.exp(e["eval_loss"])) <= 1e-12 * e["perplexity"]
        assert abs(e["eval_loss"] - e["nll_sum"] / e["n_tokens"]) <= 1e-12 * e["eval_loss"]
    assert len(p["evals"]) == 3 and [e["epoch"] for e in p["evals"]] == [0, 1, 2]
    assert len(p["steps"]["loss"]) == 8 == len(p["steps"]["lr"])
    r = rows[n]
    assert abs(float(r["eval_loss"]) - p["eval_loss"]) < 1e-6 and abs(float(r["perplexity"]) - p["perplexity"]) < 1e-5 * p["perplexity"]
    assert int(r["trainable_params"]) == p["trainable"]
    assert ev[i] == "%.4f" % p["eval_loss"], (ev[i], p["eval_loss"])
    assert pp[i] == "%.3f" % p["perplexity"], (pp[i], p["perplexity"])
    assert len(p["update_norms"]) == p["n_modules"] and all(u["norm"] > 0 for u in p["update_norms"])
    # PEFT safetensors, read with an independent parser
    raw = open("%s/%s/adapter_model.safetensors" % (run, n), "rb").read()
    hlen = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + hlen]); hdr.pop("__metadata__", None)
    want = {}
    for layer, mod in p["selected"]:
        i_n, o_n = {"attn.c_attn": (64, 192), "attn.c_proj": (64, 64), "mlp.c_fc": (64, 256), "mlp.c_proj": (256, 64)}[mod]
        base = "base_model.model.transformer.h.%d.%s." % (layer, mod)
        want[base + "lora_A.weight"] = [4, i_n]
        want[base + "lora_B.weight"] = [o_n, 4]
    assert {k: v["shape"] for k, v in hdr.items()} == want, (n, sorted(hdr))
    assert all(v["dtype"] == "F32" for v in hdr.values())
    cfg = json.load(open("%s/%s/adapter_config.json" % (run, n)))
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["lora_alpha"] == 8 and cfg["fan_in_fan_out"] is True
    assert cfg["task_type"] == "CAUSAL_LM" and cfg["target_modules"] == p["target_modules"]
attn = res["trainings"][2]
assert any(m == "mlp.c_proj" for _, m in attn["selected"]), "attn adapts mlp.c_proj (PEFT suffix rule)"
lines = open(run + "/steps.jsonl").read().splitlines()
assert len(lines) == 24 and json.loads(lines[0])["placement"] == "baseline"
PYEOF
grep -q "attn: 2×attn.c_attn, 2×attn.c_proj, 2×mlp.c_proj" "$T/table.txt" && ok "modules per placement printed" ||
    fail "modules line for attn missing"

# ---- adapters reload with the same eval loss
saved=$($PY -c "import json,sys; print('%.7g' % json.load(open(sys.argv[1]))['trainings'][1]['eval_loss'])" "$T/run/results.json")
got=$("$LORALAB" eval --model "$T/tiny.gguf" --adapter "$T/run/ffn" --eval data/alpaca_eval.json --n-eval 2 --max-len 40 --threads 1 |
      awk '/^eval_loss / {print $2}')
[ "$got" = "$saved" ] && ok "eval --adapter reproduces $saved" || fail "eval --adapter gave $got, results.json $saved"
before=$("$LORALAB" train "${SMALL[@]}" --init-adapter "$T/run/ffn" --steps 1 --out "$T/train" --quiet |
         awk '/^eval_loss_before/ {print $2}')
[ "$before" = "$saved" ] && ok "train --init-adapter starts at $saved" || fail "train --init-adapter started at $before, want $saved"
[ -s "$T/train/adapter_model.safetensors" ] && ok "train wrote its adapter" || fail "train wrote no adapter"

# ---- merge: base + adapter as one GGUF evaluates like base with the adapter
"$LORALAB" merge --model "$T/tiny.gguf" --adapter "$T/run/ffn" --out "$T/merged.gguf" --type f32 > /dev/null ||
    fail "merge exit $?"
merged=$("$LORALAB" eval --model "$T/merged.gguf" --eval data/alpaca_eval.json --n-eval 2 --max-len 40 --threads 1 | awk '/^eval_loss / {print $2}')
$PY -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-5 * abs(b))" "$merged" "$saved" &&
    ok "merged model eval $merged = adapter eval $saved" || fail "merged model eval $merged, adapter eval $saved"

# ---- generate: greedy and seeded sampling are reproducible; the adapter changes the model
G=(generate --model "$T/tiny.gguf" --prompt "The colour of" --raw --max-new 8 --threads 1 --quiet)
g1=$("$LORALAB" "${G[@]}" --greedy) && g2=$("$LORALAB" "${G[@]}" --greedy) && [ "$g1" = "$g2" ] && ok "greedy generation reproducible" ||
    fail "greedy generation: '$g1' vs '$g2'"
s1=$("$LORALAB" "${G[@]}" --temperature 1.5 --top-k 50 --seed 7)
s2=$("$LORALAB" "${G[@]}" --temperature 1.5 --top-k 50 --seed 7)
[ "$s1" = "$s2" ] && ok "seeded sampling reproducible" || fail "seeded sampling: '$s1' vs '$s2'"
"$LORALAB" "${G[@]}" --adapter "$T/run/baseline" > /dev/null && ok "generate with an adapter" || fail "generate --adapter exit $?"

# ---- interrupted after the first placement, then --resume
"$LORALAB" ablate "${SMALL[@]}" --epochs 1 --out "$T/int" --stop-after-trainings 1 > /dev/null 2> "$T/int.err"
rc=$?
[ $rc -eq 1 ] && ok "interrupted run exits 1" || fail "interrupted run exit $rc"
grep -q "ablate --resume $T/int" "$T/int.err" && ok "says how to resume" || fail "no resume hint: $(cat "$T/int.err")"
[ -s "$T/int/baseline/adapter_model.safetensors" ] && ok "first adapter kept" || fail "first adapter missing"
[ -e "$T/int/ffn" ] && fail "second placement should not have output yet" || ok "second placement not written"
$PY -c "
import json,sys; r=json.load(open(sys.argv[1]))
assert [p['status'] for p in r['trainings']] == ['done','pending','pending'], [p['status'] for p in r['trainings']]
json.dump(r['trainings'][0], open(sys.argv[2], 'w'))
# resume a folder as written before issue 25: its trainings under \"placements\"
r['placements'] = r.pop('trainings'); json.dump(r, open(sys.argv[1], 'w'))" "$T/int/results.json" "$T/first.json" &&
    ok "results keep the first training" || fail "results.json after interrupt"
"$LORALAB" ablate --resume "$T/int" --quiet > /dev/null 2> "$T/res.err"
rc=$?
[ $rc -eq 0 ] && ok "resume exit 0" || fail "resume exit $rc: $(cat "$T/res.err")"
$PY -c "
import json,sys; r=json.load(open(sys.argv[1])); first=json.load(open(sys.argv[2]))
assert [p['status'] for p in r['trainings']] == ['done']*3
assert r['trainings'][0] == first, 'resumed training changed'
assert 'placements' not in r, 'rewritten with the new key'
assert all(p['eval_loss'] < p['eval_loss_before'] for p in r['trainings'])" "$T/int/results.json" "$T/first.json" &&
    ok "resume (of an older results.json) finished the rest and kept the first as it was" || fail "results after resume"
[ -s "$T/int/attn/adapter_model.safetensors" ] && ok "resumed adapters written" || fail "attn adapter missing after resume"
"$LORALAB" ablate "${SMALL[@]}" --out "$T/int" > /dev/null 2>&1
[ $? -eq 2 ] && ok "refuses to overwrite a finished run" || fail "ablate into a folder with results.json should exit 2"

# ---- Ctrl-C: a long run stops between steps, exits 1 and says so
"$LORALAB" ablate "${SMALL[@]}" --steps 100000 --out "$T/sig" > /dev/null 2> "$T/sig.err" &
pid=$!
# The first progress line comes from inside the training loop, after the handler is set.
for _ in $(seq 200); do grep -q "^baseline: " "$T/sig.err" && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 1 ] && ok "SIGINT exit 1" || fail "SIGINT exit $rc"
grep -q "interrupted" "$T/sig.err" && ok "SIGINT reported" || fail "no interrupt message: $(cat "$T/sig.err")"
finish
