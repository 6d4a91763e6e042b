# Helpers shared by tests/cli_*.sh (sourced; named lib_ so CTest does not run it). $LORALAB is the program under test.
set -u
PY=/usr/bin/python3
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
finish() {
    if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed" >&2; exit 1; fi
    echo "all checks passed"
}
# Makes the tiny test model (2 layers, d 32, real GPT-2 tokenizer) at $1 with the
# test_experiment program built next to loralab.
make_tiny_model() {
    local maker
    maker="$(dirname "$LORALAB")/test_experiment"
    if [ ! -x "$maker" ]; then echo "FAIL: $maker not built" >&2; exit 1; fi
    "$maker" --make-model "$1" || { echo "FAIL: could not make the tiny model" >&2; exit 1; }
}
