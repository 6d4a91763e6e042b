#!/bin/bash
# One flag vocabulary: walks every command's --help and checks that each shared flag
# is spelled and described alike everywhere, that no help offers an old spelling,
# that usage lines read "usage: loralab CMD", that numbers are parsed strictly in
# every command, that an unknown flag is reported in one wording, and that the old
# spellings still work as hidden aliases.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

cmds=$("$LORALAB" --help | awk '/^commands:/ {on = 1; next} on && NF {print $1}')
[ "$(echo "$cmds" | wc -w)" -ge 11 ] && ok "commands: $(echo $cmds)" || fail "command list: $cmds"
for c in $cmds; do
    "$LORALAB" "$c" --help >"$T/$c.help" 2>&1 || fail "$c --help exits $?"
done
$PY - "$T" $cmds <<'PYEOF' && ok "shared flags spelled and described alike in every --help" || fail "flag vocabulary"
import re, sys
d, cmds = sys.argv[1], sys.argv[2:]
# flag -> the words its description starts with, wherever a command offers it
canon = {"--model": "GGUF model", "--train": "Alpaca JSON training data", "--eval": "Alpaca JSON eval data",
         "--n-train": "records used", "--n-eval": "records used", "--max-len": "tokens per example",
         "--steps": "optimizer steps", "--type": "type of the weight matrices", "--threads": "worker threads",
         "--out": "output", "--quiet": "no progress", "--json": "print", "--seeds": "train every placement"}
old = ["--data", "--n", "--weights", "--seq", "--batch"]
bad, seen = [], {}
for c in cmds:
    text = open(f"{d}/{c}.help").read()
    if not text.startswith(f"usage: loralab {c}"):
        bad.append(f"{c}: first line is not 'usage: loralab {c} ...'")
    for line in text.splitlines():
        m = re.match(r"^  ((?:--[\w-]+(?: [A-Z][\w.|]*)?(?:, )?)+)\s{2,}(\S.*)$", line)
        if not m:
            continue
        for flag in re.findall(r"--[\w-]+", m.group(1)):
            seen.setdefault(flag, set()).add(c)
            want = canon.get(flag)
            if want and not m.group(2).startswith(want):
                bad.append(f"{c}: {flag} is described '{m.group(2)}', elsewhere '{want} ...'")
    for o in old:
        if re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", text):
            bad.append(f"{c}: --help offers the old spelling {o}")
for f in ["--model", "--max-len", "--threads", "--type", "--steps", "--eval"]:
    if len(seen.get(f, ())) < 2:
        bad.append(f"{f} is offered by {sorted(seen.get(f, ()))} only")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF

# Strict numbers, one parser: a malformed value is refused with the flag named.
expect_bad_number() { # cmd flag value
    out=$("$LORALAB" "$@" 2>&1); code=$?
    [ "$code" -eq 2 ] && echo "$out" | grep -q "flag $2: '$3'" && ok "$1 $2 $3 refused" ||
        fail "$1 $2 $3: exit $code, '$out'"
}
expect_bad_number pretrain --threads x --corpus . --out "$T/x.gguf"
expect_bad_number pretrain --lr 1e-3x --corpus . --out "$T/x.gguf"
expect_bad_number pretrain --seed -1 --corpus . --out "$T/x.gguf"
expect_bad_number bench --threads 2x
expect_bad_number bench --timed-steps 0
expect_bad_number eval --max-len 12abc
expect_bad_number ablate --n-train x
expect_bad_number train --steps 1.5
expect_bad_number generate --max-new x --prompt hi

# One wording for an unknown flag, in every command.
for c in $cmds; do
    out=$("$LORALAB" "$c" --bogus-flag </dev/null 2>&1); code=$?
    [ "$code" -eq 2 ] && [ "$out" = "loralab $c: unknown flag '--bogus-flag' (see loralab $c --help)" ] ||
        fail "$c --bogus-flag: exit $code, '$out'"
done
ok "every command says \"unknown flag '--bogus-flag' (see loralab CMD --help)\" and exits 2"

# eval refuses a --max-len beyond the model's context, as train does.
make_tiny_model "$T/tiny.gguf"
for c in eval train; do
    extra=(); [ "$c" = train ] && extra=(--out "$T/o-train")
    out=$("$LORALAB" "$c" --model "$T/tiny.gguf" --max-len 65 "${extra[@]}" 2>&1); code=$?
    [ "$code" -eq 2 ] && echo "$out" | grep -q "exceeds the model's context of 64 tokens" &&
        ok "$c refuses --max-len 65 on a 64-token model" || fail "$c --max-len 65: exit $code, $out"
done

# Old spellings still work (hidden aliases for one release).
new=$("$LORALAB" eval --model "$T/tiny.gguf" --eval data/alpaca_eval.json --n-eval 2 --max-len 32 --threads 1)
old=$("$LORALAB" eval --model "$T/tiny.gguf" --data data/alpaca_eval.json --n 2 --max-len 32 --threads 1)
[ -n "$new" ] && [ "$new" = "$old" ] && ok "eval --data/--n = --eval/--n-eval" || fail "eval aliases: '$new' vs '$old'"
a=$("$LORALAB" bench --preset tiny --type f32 --max-len 8 --timed-steps 1 --warmup 0 --threads 1 --json) &&
b=$("$LORALAB" bench --preset tiny --weights f32 --seq 8 --steps 1 --warmup 0 --threads 1 --json) &&
    [ "$($PY -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(a["seq"]==b["seq"]==8 and a["weights"]==b["weights"]=="f32" and a["steps"]==b["steps"]==1)' "$a" "$b")" = True ] &&
    ok "bench --weights/--seq/--steps = --type/--max-len/--timed-steps" || fail "bench aliases"
finish
