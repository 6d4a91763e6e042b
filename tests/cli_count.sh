#!/bin/bash
# loralab count: the study's numbers for DialoGPT-medium, PEFT's suffix rule made
# visible, exact-path presets, layer selection, JSON output, and a GGUF model file.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

out=$("$LORALAB" count --preset dialogpt-medium) || fail "count --preset dialogpt-medium exit $?"
echo "$out"
line() { echo "$out" | grep -E "^$1 "; }
for spec in "baseline 6,291,456 1.74%" "ffn 1,966,080 0.55%" "attn 4,325,376 1.20%"; do
    set -- $spec
    l=$(line "$1")
    case "$l" in *" $2 "*"$3"*) ok "$1: $2 $3" ;; *) fail "$1 line '$l' lacks $2 / $3" ;; esac
done
line attn | grep -q "24×mlp.c_proj" && ok "attn includes 24 mlp.c_proj" || fail "attn line does not show 24×mlp.c_proj"
line ffn | grep -q "mlp.c_proj" && fail "ffn must not adapt mlp.c_proj" || ok "ffn is mlp.c_fc only"
echo "$out" | grep -q "note: 'attn' also adapts 24 mlp modules" && ok "suffix-rule note" || fail "no note about attn adapting mlp.c_proj"

# exact paths and layer selection: attention only = 24 * 16 * (4096 + 2048); c_fc on 4 layers = 4 * 16 * 5120
out=$("$LORALAB" count --preset dialogpt-medium --placements attn-exact,mlp-exact,all-linear --placement 'first4=c_fc@0-3') ||
    fail "count exact presets exit $?"
echo "$out"
for spec in "attn-exact 2,359,296" "mlp-exact 3,932,160" "all-linear 6,291,456" "first4 327,680"; do
    set -- $spec
    line "$1" | grep -q " $2 " && ok "$1 = $2" || fail "$1 should have $2 trainable: $(line "$1")"
done
line first4 | grep -q "4×mlp.c_fc" && ok "first4 adapts 4 modules" || fail "first4 modules: $(line first4)"

# JSON output, checked by an independent parser
"$LORALAB" count --preset dialogpt-medium --json > "$T/count.json" || fail "count --json exit $?"
$PY - "$T/count.json" <<'PYEOF' && ok "count --json" || fail "count --json content"
import json, sys
a = json.load(open(sys.argv[1]))
want = {"baseline": 6291456, "ffn": 1966080, "attn": 4325376}
assert [p["name"] for p in a] == ["baseline", "ffn", "attn"], a
for p in a:
    assert p["trainable"] == want[p["name"]], p
    assert p["total"] == 354823168 + p["trainable"], p
    assert abs(p["percent"] - 100 * p["trainable"] / p["total"]) < 1e-9
sel = [tuple(s) for s in a[2]["selected"]]
assert len(sel) == 72 and (0, "mlp.c_proj") in sel and (23, "attn.c_attn") in sel, sel[:5]
assert not any(m == "mlp.c_fc" for _, m in sel)
PYEOF

# rank flag and a GGUF file (only its config is needed)
"$LORALAB" count --preset dialogpt-medium --r 8 | grep -E "^baseline " | grep -q " 3,145,728 " && ok "r=8 halves the count" ||
    fail "r=8 baseline should be 3,145,728"
make_tiny_model "$T/tiny.gguf"
out=$("$LORALAB" count --model "$T/tiny.gguf") || fail "count --model exit $?"
echo "$out"
# tiny: 2 layers * 16 * ((64+192) + (64+64) + (64+256) + (256+64)) = 32,768
line baseline | grep -q " 32,768 " && ok "count on a GGUF file" || fail "tiny baseline should be 32,768"

# --presets: the one list of model shapes and placements (page and bench read it).
"$LORALAB" count --presets >"$T/presets.json" || fail "count --presets exit $?"
$PY - "$T/presets.json" <<'PYEOF' && ok "count --presets: shapes, placements, study and quick settings" || fail "count --presets document"
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["name"]: x for x in d["models"]}
assert m["dialogpt-medium"] == {"name": "dialogpt-medium", "n_layer": 24, "n_embd": 1024, "n_head": 16, "n_ctx": 1024,
                                "n_vocab": 50257, "arch": "gpt2", "params": 354823168}, m
s = m["smollm2-135m"]
assert (s["arch"], s["n_layer"], s["n_embd"], s["n_head"], s["n_kv_head"], s["n_ff"], s["n_vocab"], s["tied"],
        s["rope_theta"], s["params"]) == ("llama", 30, 576, 9, 3, 1536, 49152, True, 100000, 134515008), s
assert m["qwen2.5-0.5b"]["qkv_bias"] and m["qwen2.5-0.5b"]["params"] == 494032768 and not m["tinyllama-1.1b"]["tied"]
lp = {x["name"]: x["target_modules"] for x in d["llama_placements"]}
assert lp["qv"] == ["q_proj", "v_proj"] and lp["mlp"] == ["gate_proj", "up_proj", "down_proj"] and len(lp["all-linear"]) == 7, lp
p = {x["name"]: x for x in d["placements"]}
assert sorted(p) == ["all-linear", "attn", "attn-exact", "baseline", "ffn", "mlp-exact"], sorted(p)
assert p["attn"]["target_modules"] == ["c_attn", "c_proj"] and p["attn"]["study"] and not p["attn-exact"]["study"]
assert (d["study"]["n_train"], d["study"]["n_eval"], d["study"]["epochs"], d["study"]["max_len"]) == (100, 20, 3, 0)  # 0: the model's context, at most 256
assert (d["quick"]["n_train"], d["quick"]["n_eval"], d["quick"]["epochs"], d["quick"]["max_len"]) == (8, 4, 1, 96)
assert d["generate"]["repetition_penalty"] == 1 and d["generate"]["max_new_tokens"] == 64
PYEOF
finish
