#!/usr/bin/env bash
# loralab convert / inspect: help, exit codes, messages and output on the fixtures.
set -u
BIN="$1"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1" >&2; fail=1; fi; }

"$BIN" convert --help >"$TMP/help" 2>&1; rc=$?
check "convert --help exits 0" "[ $rc -eq 0 ] && grep -q -- '--type' '$TMP/help'"
"$BIN" inspect --help >"$TMP/help" 2>&1; rc=$?
check "inspect --help exits 0" "[ $rc -eq 0 ] && grep -q -- '--json' '$TMP/help'"

"$BIN" convert --from tests/fixtures/tiny-gpt2 >"$TMP/out" 2>"$TMP/err"; rc=$?
check "missing --to is usage (2)" "[ $rc -eq 2 ] && grep -q -- '--to FILE.gguf' '$TMP/err'"
"$BIN" convert --from tests/fixtures/tiny-gpt2 --to "$TMP/x.gguf" --type q5_1 2>"$TMP/err"; rc=$?
check "bad --type is usage (2)" "[ $rc -eq 2 ] && grep -q \"flag --type: 'q5_1'\" '$TMP/err'"
"$BIN" convert --from tests/fixtures/tiny-gpt2 --to "$TMP/x.gguf" --bogus 2>"$TMP/err"; rc=$?
check "unknown flag is usage (2)" "[ $rc -eq 2 ] && grep -q \"unknown flag '--bogus'\" '$TMP/err'"
"$BIN" convert --from "$TMP/nowhere" --to "$TMP/x.gguf" 2>"$TMP/err"; rc=$?
check "missing directory (2) names config.json" "[ $rc -eq 2 ] && grep -q 'config.json' '$TMP/err'"
check "no output file after a failure" "[ ! -e '$TMP/x.gguf' ]"

# a checkpoint that is not one: the message names the file
mkdir "$TMP/bad"
cp tests/fixtures/tiny-gpt2/config.json tests/fixtures/tiny-gpt2/vocab.json tests/fixtures/tiny-gpt2/merges.txt "$TMP/bad/"
head -c 1000 tests/fixtures/tiny-gpt2/model.safetensors >"$TMP/bad/model.safetensors"
"$BIN" convert --from "$TMP/bad" --to "$TMP/x.gguf" 2>"$TMP/err"; rc=$?
check "truncated checkpoint (2) named" "[ $rc -eq 2 ] && grep -q 'model.safetensors' '$TMP/err'"

"$BIN" convert --from tests/fixtures/tiny-gpt2-bin32 --to "$TMP/m.gguf" --type f16 2>"$TMP/err"; rc=$?
check "convert bin32 -> f16 exits 0" "[ $rc -eq 0 ] && grep -q 'wrote' '$TMP/err'"
"$BIN" inspect "$TMP/m.gguf" >"$TMP/out"; rc=$?
check "inspect exits 0" "[ $rc -eq 0 ]"
check "inspect shows config" "grep -q 'n_layer=2 n_embd=64 n_head=4 n_ctx=64' '$TMP/out'"
check "inspect shows tokenizer" "grep -q '512 tokens, 255 merges, end-of-text id 511' '$TMP/out'"
check "inspect shows f16 matrices" "grep -Eq 'blk.1.ffn_down.weight +f16 +\[256, 64\]' '$TMP/out'"
"$BIN" inspect "$TMP/m.gguf" --json >"$TMP/json"; rc=$?
check "inspect --json exits 0" "[ $rc -eq 0 ] && grep -q '\"n_params\":' '$TMP/json'"
"$BIN" inspect tests/fixtures/tiny-gpt2/model.safetensors 2>"$TMP/err"; rc=$?
check "inspect of a non-GGUF file (2)" "[ $rc -eq 2 ] && grep -q 'not a GGUF file' '$TMP/err'"
"$BIN" inspect 2>"$TMP/err"; rc=$?
check "inspect without a file (2)" "[ $rc -eq 2 ]"
exit $fail
