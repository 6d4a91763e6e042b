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
# Makes the tiny test model at $1: the HF fixture tests/fixtures/tiny-gpt2 (2 layers,
# d 64, 4 heads, context 64, 512-token byte-level BPE) converted to an f32 GGUF.
make_tiny_model() {
    "$LORALAB" convert --from tests/fixtures/tiny-gpt2 --to "$1" --type f32 --quiet ||
        { echo "FAIL: could not convert the tiny fixture" >&2; exit 1; }
}
