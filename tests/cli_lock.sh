#!/bin/bash
# One writer per output folder, with two real processes: while an ablation runs in
# DIR, a second ablate, a train and an ablate --resume into DIR exit 1 with
# "DIR is in use by pid N on HOST since T" and write nothing; after the holder is
# killed with SIGKILL its lock file is stale and --resume takes it over (with a
# note) and finishes; a finished run leaves no lock file behind.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
HOLDER=
trap '[ -n "$HOLDER" ] && kill -9 "$HOLDER" 2>/dev/null; rm -rf "$T"' EXIT
make_tiny_model "$T/tiny.gguf"
RUN=(--model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 8 --n-eval 2
     --max-len 40 --epochs 20 --r 4 --alpha 8 --dropout 0 --threads 1 --quiet)
LOCK="$T/run/.loralab.lock"
HOST=$(hostname)

wait_for() { # wait_for FILE SECONDS: 0 once FILE exists
    for _ in $(seq 1 $(($2 * 20))); do [ -e "$1" ] && return 0; sleep 0.05; done
    return 1
}

"$LORALAB" ablate "${RUN[@]}" --out "$T/run" > "$T/holder.out" 2> "$T/holder.err" &
HOLDER=$!
wait_for "$LOCK" 30 && ok "lock file appears while the run starts" || { fail "no lock file: $(cat "$T/holder.err")"; finish; }
$PY - "$LOCK" "$HOLDER" "$HOST" <<'PYEOF' && ok "lock file names pid, host and start time" || fail "lock file content: $(cat "$LOCK")"
import json, sys, re
o = json.load(open(sys.argv[1]))
assert o["pid"] == int(sys.argv[2]) and o["host"] == sys.argv[3], o
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", o["since"]), o
PYEOF
SINCE=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["since"])' "$LOCK")
WANT="$T/run is in use by pid $HOLDER on $HOST since $SINCE"

# ---- a second writer is refused, whichever command it is
"$LORALAB" ablate "${RUN[@]}" --out "$T/run" > /dev/null 2> "$T/second.err"
rc=$?
[ $rc -eq 1 ] && ok "second ablate exits 1" || fail "second ablate exit $rc: $(cat "$T/second.err")"
grep -qF "loralab ablate: $WANT" "$T/second.err" && ok "message: $(cat "$T/second.err")" || fail "message: $(cat "$T/second.err")"
"$LORALAB" train "${RUN[@]}" --out "$T/run" > /dev/null 2> "$T/train.err"
rc=$?
[ $rc -eq 1 ] && grep -qF "loralab train: $WANT" "$T/train.err" && ok "train into the same folder refused" ||
    fail "train exit $rc: $(cat "$T/train.err")"
wait_for "$T/run/results.json" 60 || fail "holder never completed a placement: $(cat "$T/holder.err")"
kill -0 "$HOLDER" 2>/dev/null || fail "holder finished too early to test --resume against it"
"$LORALAB" ablate --resume "$T/run" --threads 1 --quiet > /dev/null 2> "$T/resume.err"
rc=$?
[ $rc -eq 1 ] && grep -qF "$WANT" "$T/resume.err" && ok "--resume of a running folder refused" ||
    fail "resume exit $rc: $(cat "$T/resume.err")"
[ "$(cat "$LOCK" 2>/dev/null)" != "" ] && grep -q "\"pid\":$HOLDER" "$LOCK" && ok "refused processes left the lock alone" ||
    fail "lock file changed: $(cat "$LOCK")"

# ---- SIGKILL leaves a stale lock file; --resume takes it over and finishes
kill -9 "$HOLDER"
wait "$HOLDER" 2>/dev/null
HOLDER=
[ -e "$LOCK" ] && ok "SIGKILL leaves the lock file behind" || fail "lock file vanished on SIGKILL"
"$LORALAB" ablate --resume "$T/run" --threads 1 > /dev/null 2> "$T/takeover.err"
rc=$?
[ $rc -eq 0 ] && ok "--resume after SIGKILL exits 0" || fail "--resume exit $rc: $(cat "$T/takeover.err")"
grep -qF "note: took over $LOCK, left by pid" "$T/takeover.err" && ok "takeover noted" ||
    fail "no takeover note: $(cat "$T/takeover.err")"
[ ! -e "$LOCK" ] && ok "finished run removed its lock file" || fail "lock file left behind: $(cat "$LOCK")"
$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert [p["status"] for p in r["trainings"]]==["done"]*3' \
    "$T/run/results.json" && ok "resumed run complete" || fail "resumed run incomplete"

# ---- a lock file naming a dead pid on this host (no record lock held) is stale too
mkdir -p "$T/train"
echo "{\"pid\":999999999,\"host\":\"$HOST\",\"since\":\"2020-01-01T00:00:00Z\"}" > "$T/train/.loralab.lock"
"$LORALAB" train "${RUN[@]}" --epochs 1 --out "$T/train" > /dev/null 2> "$T/stale.err"
rc=$?
[ $rc -eq 0 ] && grep -qF "left by pid 999999999 on $HOST, which is gone" "$T/stale.err" && ok "stale lock file taken over by train" ||
    fail "train over a stale lock: exit $rc: $(cat "$T/stale.err")"
[ ! -e "$T/train/.loralab.lock" ] && ok "train removed its lock file" || fail "train left its lock file"
finish
