#!/bin/bash
# Defaults fit the model: on the tiny fixture (context 64) every command runs with its
# default --max-len, which is the model's context capped at 256 (bench and pretrain:
# at 128), and results.json records the number used. An explicit --max-len over the
# context is still refused, and 1 is refused alike by the flag and the JSON key.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
make_tiny_model "$T/tiny.gguf"

"$LORALAB" eval --model "$T/tiny.gguf" --n-eval 2 --json > "$T/eval.json" 2> "$T/eval.err" &&
    ok "eval with the default --max-len on a 64-token model" || fail "eval: $(cat "$T/eval.err")"

"$LORALAB" train --model "$T/tiny.gguf" --n-train 2 --n-eval 1 --epochs 1 --max-steps 1 --threads 1 --quiet \
    --out "$T/train" > /dev/null 2> "$T/train.err" && ok "train with the default --max-len" ||
    fail "train: $(cat "$T/train.err")"
$PY -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; assert c["max_len"] == 64, c["max_len"]' \
    "$T/train/results.json" && ok "results.json records max_len 64 (the model's context)" ||
    fail "results.json max_len is not 64"

"$LORALAB" ablate --model "$T/tiny.gguf" --n-train 2 --n-eval 1 --epochs 1 --max-steps 1 --placement ffn \
    --threads 1 --quiet --out "$T/ablate" > /dev/null 2> "$T/ablate.err" && ok "ablate with the default --max-len" ||
    fail "ablate: $(cat "$T/ablate.err")"

"$LORALAB" count --model "$T/tiny.gguf" > /dev/null 2> "$T/count.err" && ok "count with the default --max-len" ||
    fail "count: $(cat "$T/count.err")"

"$LORALAB" eval --model "$T/tiny.gguf" --max-len 65 > /dev/null 2> "$T/over.err"
rc=$?
[ $rc -eq 2 ] && grep -q "exceeds the model's context of 64" "$T/over.err" && ok "--max-len 65 refused: $(cat "$T/over.err")" ||
    fail "--max-len 65: exit $rc: $(cat "$T/over.err")"

"$LORALAB" train --model "$T/tiny.gguf" --max-len 1 --quiet --out "$T/one" > /dev/null 2> "$T/one.err"
rc1=$?
echo '{"max_len": 1}' > "$T/one.json"
"$LORALAB" train --model "$T/tiny.gguf" --config "$T/one.json" --quiet --out "$T/one-json" > /dev/null 2> "$T/one-json.err"
rc2=$?
[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && ok "max_len 1 refused by the flag and by the JSON key" ||
    fail "max_len 1: flag exit $rc1 ($(cat "$T/one.err")), JSON exit $rc2 ($(cat "$T/one-json.err"))"
finish
