#!/bin/bash
# One writer per output folder on a file system without record locks. A preloaded
# shim (tests/support/no_record_locks.c) makes fcntl's record locks fail with
# ENOLCK, so dir_lock falls back to the pid recorded in DIR/.loralab.lock:
#  - while a run holds the folder, a second writer exits 1 naming pid, host, time;
#  - after the holder is killed with SIGKILL, its pid is gone: the next --resume
#    takes the lock file over with a note and finishes;
#  - a lock file from another host cannot be checked from here, so it counts as
#    held and the run is refused without touching it.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
HOLDER=
trap '[ -n "$HOLDER" ] && kill -9 "$HOLDER" 2>/dev/null; rm -rf "$T"' EXIT
CC=${CC:-cc}
"$CC" -shared -fPIC -O1 -o "$T/no_record_locks.so" "$(dirname "$0")/support/no_record_locks.c" -ldl ||
    { echo "FAIL: cannot build the shim with $CC" >&2; exit 1; }
# An ASan build wants its runtime first; the shim only wraps fcntl.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
nolocks() { env LD_PRELOAD="$T/no_record_locks.so" "$@"; }

make_tiny_model "$T/tiny.gguf"
RUN=(--model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 8 --n-eval 2
     --max-len 40 --epochs 20 --r 4 --alpha 8 --dropout 0 --threads 1 --quiet)
LOCK="$T/run/.loralab.lock"
HOST=$(hostname)
wait_for() { for _ in $(seq 1 $(($2 * 20))); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }

# The shim really takes record locks away (else this test would prove nothing).
$PY - "$T/no_record_locks.so" <<'PYEOF' && ok "the shim makes F_SETLK fail with ENOLCK" || fail "the shim does not act"
import ctypes, errno, fcntl, os, sys, tempfile
ctypes.CDLL(sys.argv[1], mode=os.RTLD_GLOBAL)
# Python's fcntl module calls the C library's fcntl directly; call the shim's instead.
shim = ctypes.CDLL(sys.argv[1], use_errno=True)
fd = os.open(tempfile.mktemp(), os.O_RDWR | os.O_CREAT)
lk = (ctypes.c_char * 64)()   # struct flock: l_type F_WRLCK (1) first, the rest 0
lk[0] = 1
assert shim.fcntl(fd, fcntl.F_SETLK, lk) == -1 and ctypes.get_errno() == errno.ENOLCK
PYEOF

env LD_PRELOAD="$T/no_record_locks.so" "$LORALAB" ablate "${RUN[@]}" --out "$T/run" > /dev/null 2> "$T/holder.err" &
HOLDER=$!
wait_for "$LOCK" 30 && ok "lock file written without record locks" || { fail "no lock file: $(cat "$T/holder.err")"; finish; }
for _ in $(seq 1 40); do grep -q '"pid"' "$LOCK" 2>/dev/null && break; sleep 0.05; done
SINCE=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["since"])' "$LOCK")
WANT="$T/run is in use by pid $HOLDER on $HOST since $SINCE"
nolocks "$LORALAB" train "${RUN[@]}" --out "$T/run" > /dev/null 2> "$T/second.err"
rc=$?
[ $rc -eq 1 ] && grep -qF "loralab train: $WANT" "$T/second.err" && ok "second writer refused: $(cat "$T/second.err")" ||
    fail "second writer: exit $rc: $(cat "$T/second.err")"
grep -q "\"pid\":$HOLDER" "$LOCK" && ok "the refused process left the lock file alone" || fail "lock file changed: $(cat "$LOCK")"

wait_for "$T/run/results.json" 60 || fail "holder never completed a placement: $(cat "$T/holder.err")"
kill -9 "$HOLDER"
wait "$HOLDER" 2>/dev/null
HOLDER=
nolocks "$LORALAB" ablate --resume "$T/run" --threads 1 > /dev/null 2> "$T/takeover.err"
rc=$?
[ $rc -eq 0 ] && ok "--resume after SIGKILL exits 0" || fail "--resume exit $rc: $(cat "$T/takeover.err")"
grep -qF "note: took over $LOCK, left by pid" "$T/takeover.err" && ok "takeover noted: $(grep -F 'took over' "$T/takeover.err")" ||
    fail "no takeover note: $(cat "$T/takeover.err")"
[ ! -e "$LOCK" ] && ok "finished run removed its lock file" || fail "lock file left behind"

# A holder on another host cannot be checked: refused, lock file untouched.
mkdir -p "$T/other"
OTHER='{"pid":4242,"host":"elsewhere.example","since":"2026-01-01T00:00:00Z"}'
echo "$OTHER" > "$T/other/.loralab.lock"
nolocks "$LORALAB" train "${RUN[@]}" --epochs 1 --out "$T/other" > /dev/null 2> "$T/other.err"
rc=$?
[ $rc -eq 1 ] && grep -qF "$T/other is in use by pid 4242 on elsewhere.example since 2026-01-01T00:00:00Z" "$T/other.err" &&
    ok "a lock file from another host counts as held" || fail "other host: exit $rc: $(cat "$T/other.err")"
[ "$(cat "$T/other/.loralab.lock")" = "$OTHER" ] && [ ! -e "$T/other/results.json" ] && ok "and nothing was written" ||
    fail "the other host's folder changed"
finish
