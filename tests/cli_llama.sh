#!/bin/bash
# The Llama family end to end through the CLI: a tiny random llama (untied) and qwen2
# (tied, q/k/v biases) checkpoint in Hugging Face layout (tests/llama_ref.py, bf16,
# sharded for qwen2) converts to GGUF with llama.cpp's names; count shows the four
# PEFT placements; ablate trains all-linear, attn, mlp and qv, every one lowering the
# eval loss, and saves PEFT adapters with model.layers keys (fan_in_fan_out false);
# an adapter reloads with the same eval loss; merge writes a GGUF whose eval loss is
# the adapter's; compute int8 on the q8_0 model ends within 0.5% of f32 compute.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 tests/llama_ref.py --arch llama --dtype bf16 --out "$T/llama" > /dev/null &&
    /usr/bin/python3 tests/llama_ref.py --arch qwen2 --dtype bf16 --shards 2 --out "$T/qwen2" > /dev/null ||
    { fail "could not write the checkpoints (python3-torch)"; finish; }
DATA=(--train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 4 --n-eval 2 --max-len 48 --epochs 2
      --lr 5e-3 --r 4 --alpha 8 --dropout 0 --threads 1 --base-dropout 0)
for arch in llama qwen2; do
    "$LORALAB" convert --from "$T/$arch" --to "$T/$arch.gguf" --type q8_0 --quiet &&
        ok "$arch: convert" || { fail "$arch: convert"; continue; }
    # an independent GGUF reader sees llama.cpp's names and keys
    node --input-type=module - "$T/$arch.gguf" "$arch" <<'JSEOF' && ok "$arch: @huggingface/gguf reads llama.cpp's keys and names" || fail "$arch: GGUF keys or names"
import { gguf } from '@huggingface/gguf';
const [path, arch] = process.argv.slice(2);
const { metadata: m, tensorInfos: t } = await gguf(path, { allowLocalFile: true });
const want = { 'general.architecture': arch, [`${arch}.block_count`]: 2, [`${arch}.embedding_length`]: 64,
  [`${arch}.feed_forward_length`]: 128, [`${arch}.attention.head_count`]: 4, [`${arch}.attention.head_count_kv`]: 2,
  [`${arch}.rope.dimension_count`]: 16, [`${arch}.rope.freq_base`]: arch === 'llama' ? 10000 : 1000000 };
for (const [k, v] of Object.entries(want)) if (m[k] !== v) throw new Error(`${k} = ${m[k]}, want ${v}`);
const eps = m[`${arch}.attention.layer_norm_rms_epsilon`];
if (Math.abs(eps - (arch === 'llama' ? 1e-5 : 1e-6)) > 1e-9) throw new Error(`eps ${eps}`);
const names = new Set(t.map((x) => x.name));
const need = ['token_embd.weight', 'output_norm.weight', 'blk.1.attn_q.weight', 'blk.1.attn_k.weight', 'blk.1.attn_v.weight',
  'blk.1.attn_output.weight', 'blk.1.attn_norm.weight', 'blk.1.ffn_norm.weight', 'blk.1.ffn_gate.weight',
  'blk.1.ffn_up.weight', 'blk.1.ffn_down.weight'];
if (arch === 'llama') need.push('output.weight'); else need.push('blk.0.attn_q.bias', 'blk.0.attn_k.bias', 'blk.0.attn_v.bias');
for (const n of need) if (!names.has(n)) throw new Error(`missing ${n}`);
if (arch === 'qwen2' && names.has('output.weight')) throw new Error('a tied model wrote output.weight');
const k = t.find((x) => x.name === 'blk.0.attn_k.weight');
if (Number(k.shape[0]) !== 64 || Number(k.shape[1]) !== 32) throw new Error(`attn_k shape ${k.shape}`);
JSEOF
    "$LORALAB" count --model "$T/$arch.gguf" --placements all-linear,attn,mlp,qv > "$T/$arch.count" 2>&1
    grep -q "^qv .*2×self_attn.q_proj, 2×self_attn.v_proj$" "$T/$arch.count" &&
        grep -q "^all-linear .*2×mlp.down_proj$" "$T/$arch.count" && ok "$arch: count names PEFT's modules" ||
        fail "$arch: count: $(cat "$T/$arch.count")"
    for c in f32 int8; do
        "$LORALAB" ablate --model "$T/$arch.gguf" "${DATA[@]}" --compute $c --placements all-linear,attn,mlp,qv \
            --out "$T/run-$arch-$c" > "$T/table-$arch-$c.txt" 2> "$T/err.txt" && ok "$arch: ablate --compute $c" ||
            fail "$arch: ablate --compute $c: $(cat "$T/err.txt")"
    done
    $PY - "$T/run-$arch-f32" "$T/run-$arch-int8" "$arch" <<'PYEOF' && ok "$arch: every placement learns; PEFT files; int8 within 0.5%" || fail "$arch: result checks"
import json, struct, sys
f32, i8, arch = (json.load(open(d + "/results.json")) for d in sys.argv[1:3]), None, sys.argv[3]
f32, i8 = list(f32)
seen = {}
for p, q in zip(f32["trainings"], i8["trainings"]):
    n = p["name"]
    assert p["status"] == "done" and p["eval_loss"] < p["eval_loss_before"], (n, p["eval_loss"], p["eval_loss_before"])
    assert abs(q["eval_loss"] - p["eval_loss"]) <= 5e-3 * p["eval_loss"], (n, q["eval_loss"], p["eval_loss"])
    raw = open("%s/%s/adapter_model.safetensors" % (sys.argv[1], n), "rb").read()
    hdr = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]]); hdr.pop("__metadata__", None)
    want = {}
    for layer, mod in p["selected"]:
        i_n, o_n = {"self_attn.q_proj": (64, 64), "self_attn.k_proj": (64, 32), "self_attn.v_proj": (64, 32),
                    "self_attn.o_proj": (64, 64), "mlp.gate_proj": (64, 128), "mlp.up_proj": (64, 128),
                    "mlp.down_proj": (128, 64)}[mod]
        base = "base_model.model.model.layers.%d.%s." % (layer, mod)
        want[base + "lora_A.weight"] = [4, i_n]
        want[base + "lora_B.weight"] = [o_n, 4]
    assert {k: v["shape"] for k, v in hdr.items()} == want, (n, sorted(hdr))
    cfg = json.load(open("%s/%s/adapter_config.json" % (sys.argv[1], n)))
    assert cfg["fan_in_fan_out"] is False and cfg["target_modules"] == p["target_modules"], cfg
    seen[n] = sorted(set(m for _, m in p["selected"]))
assert seen["qv"] == ["self_attn.q_proj", "self_attn.v_proj"], seen
assert seen["mlp"] == ["mlp.down_proj", "mlp.gate_proj", "mlp.up_proj"], seen
assert len(seen["all-linear"]) == 7 and len(seen["attn"]) == 4, seen
PYEOF
    # the saved adapter reloads with the same eval loss; merged into the base, the same again
    want=$($PY -c "import json,sys; p=[p for p in json.load(open(sys.argv[1]))['trainings'] if p['name']=='qv'][0]; print(p['eval_loss'])" "$T/run-$arch-f32/results.json")
    got=$("$LORALAB" eval --model "$T/$arch.gguf" --adapter "$T/run-$arch-f32/qv" --eval data/alpaca_eval.json \
          --n-eval 2 --max-len 48 --threads 1 2>&1 | sed -n 's/^eval_loss \([0-9.]*\).*/\1/p')
    $PY -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-5 * b)" \
        "${got:-0}" "$want" && ok "$arch: adapter reloads (eval loss $got)" || fail "$arch: reloaded eval loss '$got', want $want"
    "$LORALAB" merge --model "$T/$arch.gguf" --adapter "$T/run-$arch-f32/qv" --out "$T/$arch-merged.gguf" --type f32 \
        > /dev/null 2>&1 && ok "$arch: merge" || fail "$arch: merge"
    merged=$("$LORALAB" eval --model "$T/$arch-merged.gguf" --eval data/alpaca_eval.json --n-eval 2 --max-len 48 \
             --threads 1 2>&1 | sed -n 's/^eval_loss \([0-9.]*\).*/\1/p')
    $PY -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 2e-2 * b)" \
        "${merged:-0}" "$want" && ok "$arch: merged model's eval loss $merged ~ $want (q8_0 base requantized)" ||
        fail "$arch: merged eval loss '$merged', adapter's $want"
done
finish
