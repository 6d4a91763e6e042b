#!/bin/bash
# Disk full while writing a GGUF: `convert` and `merge` write their output to a
# temporary name and rename it, so a write that fails for want of space must
#  - exit 1 with a message naming the output and the cause (ENOSPC, or EFBIG under
#    a file-size limit where mounting is not possible),
#  - leave an existing file of the same name byte-identical,
#  - leave no temporary file behind;
# and once space is back, the same command succeeds.
# The output folder is a small tmpfs (we run as root); without CAP_SYS_ADMIN (or with
# LPL_TEST_NO_MOUNT=1) a file-size limit (ulimit -f) stands in for the full disk.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
MNT="$T/mnt"
mkdir -p "$MNT"
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
    rm -rf "$T"
}
trap cleanup EXIT

# An adapter to merge: a few steps on the tiny model.
make_tiny_model "$T/tiny.gguf"
"$LORALAB" train --model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json \
    --n-train 4 --n-eval 2 --max-len 32 --steps 2 --r 4 --alpha 8 --threads 1 --quiet --out "$T/run" >/dev/null ||
    { echo "FAIL: could not train the adapter to merge" >&2; exit 1; }
ADAPTER=$(dirname "$(find "$T/run" -name adapter_config.json | head -1)")
[ -n "$ADAPTER" ] || { echo "FAIL: the training wrote no adapter" >&2; exit 1; }

# The output folder holds a small q4_0 model ("what the user already has"); the new
# f32 output (about 560 KB) cannot fit beside it.
"$LORALAB" convert --from tests/fixtures/tiny-gpt2 --to "$T/old.gguf" --type q4_0 --quiet || exit 1
OLD_SIZE=$(stat -c %s "$T/old.gguf")
if [ -z "${LPL_TEST_NO_MOUNT:-}" ] && mount -t tmpfs -o size=$((OLD_SIZE + 200 * 1024)) tmpfs "$MNT" 2>/dev/null; then
    MODE=tmpfs CAUSE='No space left on device'
    echo "disk full simulated with a $((OLD_SIZE / 1024 + 200)) KB tmpfs at $MNT"
else
    MODE=fsize CAUSE='File too large'
    echo "cannot mount here: disk full simulated with ulimit -f (EFBIG)"
fi
OUT="$MNT/model.gguf"
cp "$T/old.gguf" "$OUT"
SUM=$(sha256sum < "$OUT")

# Runs "$@" with the disk full: exit status in $rc, stderr in $err.
run_full() {
    if [ "$MODE" = tmpfs ]; then
        err=$("$@" 2>&1 >/dev/null); rc=$?
    else
        err=$( (ulimit -f $(( (OLD_SIZE + 200 * 1024) / 1024 )); "$@") 2>&1 >/dev/null); rc=$?
    fi
}

check_refused() {   # $1: what ran
    [ "$rc" -eq 1 ] && ok "$1: exit 1 on a full disk" || fail "$1: exit $rc on a full disk (want 1): $err"
    case "$err" in
        *"$OUT"*"$CAUSE"* | *"$CAUSE"*"$OUT"* | *"$MNT"*"$CAUSE"*) ok "$1: the message names the output and the cause" ;;
        *) fail "$1: the message does not name $OUT and '$CAUSE': $err" ;;
    esac
    [ "$(sha256sum < "$OUT")" = "$SUM" ] && ok "$1: the existing $OUT is byte-identical" ||
        fail "$1: the existing file changed"
    left=$(find "$MNT" -mindepth 1 ! -name model.gguf | head -3)
    [ -z "$left" ] && ok "$1: no temporary file left" || fail "$1: left behind: $left"
}

run_full "$LORALAB" convert --from tests/fixtures/tiny-gpt2 --to "$OUT" --type f32 --quiet
check_refused convert
run_full "$LORALAB" merge --model "$T/tiny.gguf" --adapter "$ADAPTER" --out "$OUT" --type f32
check_refused merge

# Space is back: the same commands succeed and replace the file with a loadable model.
if [ "$MODE" = tmpfs ]; then umount "$MNT"; fi
OUT="$T/model.gguf"
cp "$T/old.gguf" "$OUT"
"$LORALAB" merge --model "$T/tiny.gguf" --adapter "$ADAPTER" --out "$OUT" --type f32 >/dev/null 2>&1 &&
    "$LORALAB" count --model "$OUT" >/dev/null 2>&1 &&
    [ "$(stat -c %s "$OUT")" -gt "$OLD_SIZE" ] && ok "with space, merge replaces the file with a loadable f32 model" ||
    fail "with space, merge did not write a loadable model"
finish
