#!/bin/bash
# Bad flags, missing files and impossible configs: exit code 2 and one line on stderr
# that names the flag or file and the problem.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
make_tiny_model "$T/tiny.gguf"
M=(--model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json --quick --max-len 40 --quiet --out "$T/out")
echo '{"epochz": 3}' > "$T/bad_key.json"
echo '{"r": 16,' > "$T/broken.json"
echo '[{"instruction": "x"}]' > "$T/no_output.json"
echo 'not a model' > "$T/notgguf.gguf"

# expect CODE PATTERN -- args...
expect() {
    local code=$1 pattern=$2
    shift 3
    "$LORALAB" "$@" > "$T/stdout" 2> "$T/stderr"
    local rc=$? lines
    lines=$(wc -l < "$T/stderr")
    if [ $rc -ne "$code" ]; then
        fail "loralab $* -> exit $rc (want $code): $(cat "$T/stderr")"
    elif [ "$lines" -ne 1 ]; then
        fail "loralab $* -> $lines lines on stderr (want 1): $(cat "$T/stderr")"
    elif ! grep -q -- "$pattern" "$T/stderr"; then
        fail "loralab $* -> '$(cat "$T/stderr")' lacks '$pattern'"
    else
        ok "$(cat "$T/stderr")"
    fi
}

expect 2 "unknown command 'ablat'" -- ablat
expect 2 "unknown flag '--bogus'" -- ablate --bogus
expect 2 "flag --lr: 'abc' is not a number" -- ablate --lr abc
expect 2 "flag --r: '0' is not an integer" -- ablate --r 0
expect 2 "flag --epochs needs a value" -- ablate --epochs
expect 2 "unknown placement preset 'attention'" -- ablate --placements attention
expect 2 "flag --schedule" -- ablate --schedule cosinus
expect 2 "missing.json" -- ablate --config "$T/missing.json"
expect 2 "unknown key \"epochz\"" -- ablate --config "$T/bad_key.json"
expect 2 "bad_key.json" -- ablate --config "$T/bad_key.json"
expect 2 "malformed JSON" -- ablate --config "$T/broken.json"
expect 2 "$T/none.gguf" -- ablate "${M[@]}" --model "$T/none.gguf"
expect 2 "notgguf.gguf" -- ablate "${M[@]}" --model "$T/notgguf.gguf"
expect 2 "--train.*nodata.json" -- ablate "${M[@]}" --train "$T/nodata.json"
expect 2 "--train" -- ablate "${M[@]}" --train "$T/no_output.json"
expect 2 "max_len 1000 exceeds the model's context of 64" -- ablate "${M[@]}" --max-len 1000
expect 2 "n_train is 100000" -- ablate "${M[@]}" --n-train 100000
expect 2 "placement 'far'" -- ablate "${M[@]}" --placement 'far=c_fc@9'
expect 2 "dropout must be in" -- ablate "${M[@]}" --dropout 1.5
expect 2 "no results.json" -- ablate --resume "$T/nothing"
expect 2 "--resume reuses the saved config" -- ablate --resume "$T/x" --config "$T/bad_key.json"
expect 2 "adapter_config.json" -- train "${M[@]}" --init-adapter "$T/noadapter"
expect 2 "flag --adapter needs a value" -- eval --adapter
expect 2 "$T/noadapter" -- eval --model "$T/tiny.gguf" --max-len 64 --adapter "$T/noadapter"
expect 2 "--n-eval 1000" -- eval --model "$T/tiny.gguf" --max-len 64 --n-eval 1000
expect 2 "unknown model preset 'gpt5'" -- count --preset gpt5
expect 2 "give --preset or --model" -- count --preset gpt2 --model "$T/tiny.gguf"
expect 2 "--prompt TEXT is required" -- generate --model "$T/tiny.gguf"
expect 2 "--model, --adapter and --out are required" -- merge --model "$T/tiny.gguf"
expect 2 "--type 'q3'" -- merge --model "$T/tiny.gguf" --adapter x --out y --type q3

for cmd in ablate train eval count generate merge; do
    "$LORALAB" $cmd --help > "$T/help" 2>&1 && grep -q "usage: loralab $cmd" "$T/help" && ok "$cmd --help" ||
        fail "$cmd --help"
done
finish
