#!/bin/bash
# loralab generate on the bundled model: greedy decoding is deterministic, a
# repetition penalty of 1 is the same as none, a strong one changes the text (the
# model's favourite loops are penalised), and a non-positive penalty is refused.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
MODEL=models/lab-small.q8_0.gguf
gen() { "$LORALAB" generate --model "$MODEL" --raw --prompt "The whale" --max-new 24 "$@"; }
a=$(gen) || fail "generate exit $?"
b=$(gen) || fail "generate exit $?"
[ "$a" = "$b" ] && ok "greedy generation is deterministic" || fail "two greedy runs differ"
c=$(gen --repetition-penalty 1) || fail "generate --repetition-penalty 1 exit $?"
[ "$a" = "$c" ] && ok "penalty 1 = off" || fail "penalty 1 changed the text"
d=$(gen --repetition-penalty 1000) || fail "generate --repetition-penalty 1000 exit $?"
[ "$a" != "$d" ] && ok "a strong penalty changes the text" || fail "penalty 1000 had no effect"
msg=$("$LORALAB" generate --model "$MODEL" --prompt x --repetition-penalty 0 2>&1 >/dev/null); rc=$?
[ "$rc" -eq 2 ] && echo "$msg" | grep -q -- "--repetition-penalty must be > 0" &&
    ok "penalty 0 refused: $msg" || fail "penalty 0: exit $rc, '$msg'"
finish
