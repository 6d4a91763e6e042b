#!/bin/bash
# Token view and roles on the bundled model and data: `eval --tokens --json` lists every
# token; the scored tokens' losses average to eval_loss (base, and with an adapter to
# eval_loss_adapter = what `eval --adapter` reports); roles partition the scored tokens
# and the tokens of each role spell out exactly the record's instruction, input and
# output; trainer_eval_loss is recomputed from the token losses in batches of 8; a
# placement's drop shares add up to 1.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$LORALAB" eval --n-eval 12 --json > "$T/plain.json" 2> "$T/err" || fail "eval --json: $(cat "$T/err")"
"$LORALAB" eval --n-eval 12 --tokens --json > "$T/tokens.json" 2> "$T/err" || fail "eval --tokens --json: $(cat "$T/err")"
$PY - "$T/plain.json" "$T/tokens.json" data/alpaca_eval.json <<'PYEOF' && ok "token losses average to eval_loss; roles partition the scored tokens and spell the records" || fail "token view checks"
import json, sys
plain, view, recs = (json.load(open(f)) for f in sys.argv[1:4])
exs = view["examples"]
assert len(exs) == 12 and view["models"] == ["base"]
scored = [t for e in exs for t in e["tokens"] if t["scored"]]
assert len(scored) == view["n_tokens"] == plain["n_tokens"]
mean = sum(t["loss"] for t in scored) / len(scored)
assert abs(mean - view["eval_loss"]) <= 1e-9 * mean, (mean, view["eval_loss"])
assert abs(view["eval_loss"] - plain["eval_loss"]) <= 1e-7 * mean, (view["eval_loss"], plain["eval_loss"])
roles = ("template", "instruction", "input", "response")
assert all(t["role"] in roles for e in exs for t in e["tokens"])
assert sum(view["roles"][r]["n_tokens"] for r in roles) == len(scored)
for r in roles:
    n = sum(1 for t in scored if t["role"] == r)
    assert n == view["roles"][r]["n_tokens"] == plain["roles"][r]["n_tokens"], r
    if n:
        lr = sum(t["loss"] for t in scored if t["role"] == r) / n
        assert abs(lr - plain["roles"][r]["nll_sum"] / n) <= 1e-6 * lr, r
assert all(t["loss"] is None for e in exs for t in e["tokens"] if not t["scored"])
checked = 0
for e in exs:
    rec = recs[e["index"]]
    text = {r: "".join(t["text"] for t in e["tokens"] if t["role"] == r) for r in roles}
    if not all(ord(c) < 128 for c in rec["instruction"] + rec.get("input", "") + rec["output"]):
        continue  # a token may hold part of a character; the text then has U+FFFD
    assert text["instruction"] == rec["instruction"], (text["instruction"], rec["instruction"])
    assert text["input"] == rec.get("input", ""), (text["input"], rec.get("input"))
    assert text["response"] == rec["output"] + "<|endoftext|>", text["response"]
    assert text["template"].startswith("Below is an instruction")
    checked += 1
assert checked >= 8, checked
# HF Trainer: batches of 8 examples, each batch's token mean counted once per example
tl, w = 0.0, 0
for b in range(0, 12, 8):
    toks = [t for e in exs[b:b + 8] for t in e["tokens"] if t["scored"]]
    k = len(exs[b:b + 8])
    tl += k * sum(t["loss"] for t in toks) / len(toks)
    w += k
assert abs(tl / w - plain["trainer_eval_loss"]) <= 1e-6 * mean, (tl / w, plain["trainer_eval_loss"])
assert abs(plain["trainer_eval_loss"] - plain["eval_loss"]) > 1e-6, "12 examples in batches 8 + 4 should differ"
PYEOF

# ---- with an adapter trained on the tiny model
make_tiny_model "$T/tiny.gguf"
"$LORALAB" train --model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 4 \
    --n-eval 3 --max-len 40 --epochs 1 --lr 5e-3 --r 4 --alpha 8 --threads 1 --quiet --out "$T/ad" > /dev/null 2> "$T/err" ||
    fail "train: $(cat "$T/err")"
E=(--model "$T/tiny.gguf" --n-eval 3 --max-len 40)
"$LORALAB" eval "${E[@]}" --adapter "$T/ad" --json > "$T/ap.json" 2> "$T/err" || fail "eval --adapter: $(cat "$T/err")"
"$LORALAB" eval "${E[@]}" --json > "$T/bp.json" 2> "$T/err" || fail "eval base: $(cat "$T/err")"
"$LORALAB" eval "${E[@]}" --adapter "$T/ad" --tokens --json > "$T/at.json" 2> "$T/err" || fail "eval --tokens --adapter: $(cat "$T/err")"
$PY - "$T/ap.json" "$T/bp.json" "$T/at.json" "$T/ad/results.json" <<'PYEOF' && ok "with --adapter: loss and loss_adapter average to the base and adapter eval losses; drop shares sum to 1" || fail "adapter token view checks"
import json, sys
ap, bp, at, res = (json.load(open(f)) for f in sys.argv[1:5])
assert at["models"] == ["base", "adapter"]
sc = [t for e in at["examples"] for t in e["tokens"] if t["scored"]]
for key, want in (("loss", bp["eval_loss"]), ("loss_adapter", ap["eval_loss"])):
    m = sum(t[key] for t in sc) / len(sc)
    assert abs(m - want) <= 1e-6 * want, (key, m, want)
assert abs(at["eval_loss_adapter"] - ap["eval_loss"]) <= 1e-6 * ap["eval_loss"]
p = res["trainings"][0]
shares = [p.get("drop_share_" + r, 0.0) for r in ("template", "instruction", "input", "response")]
assert abs(sum(shares) - 1) < 1e-9, shares
e0, e1 = p["evals"][0], p["evals"][-1]
for r in ("template", "instruction", "response"):
    if e0["roles"][r]["n_tokens"]:
        want = (e0["roles"][r]["nll_sum"] - e1["roles"][r]["nll_sum"]) / (e0["nll_sum"] - e1["nll_sum"])
        assert abs(p["drop_share_" + r] - want) < 1e-9, r
assert sum(e1["roles"][r]["n_tokens"] for r in e1["roles"]) == e1["n_tokens"]
PYEOF
"$LORALAB" eval --tokens > /dev/null 2> "$T/err"
[ $? -eq 2 ] && grep -q -- "--json" "$T/err" && ok "--tokens without --json refused" || fail "--tokens alone: $(cat "$T/err")"
finish
