#!/bin/bash
# Disk full and read-only output folders. A run's output lives on a small tmpfs
# (mounted here; we run as root). With the first placement done:
#  A. the disk is filled to its last page, a --resume takes its lock and then fails
#     writing the second placement's adapter: exit 1 naming the path and ENOSPC;
#  B. the disk keeps just room for that adapter, so results.json is the write that
#     fails;
#  C. the folder is remounted read-only under the running process (a read-only bind
#     mount): exit 1 naming the path and EROFS.
# Each time the files of the first placement stay byte-identical, no JSON is cut
# short, no temporary file is left, and once space is back (or the folder writable)
# --resume finishes with eval losses and steps.jsonl bit-for-bit those of an
# uninterrupted run. Then a torn last line in steps.jsonl (what a crash inside an
# append leaves) is dropped on --resume with a note.
# Where mounting is not possible (no CAP_SYS_ADMIN) A and B run under a file-size
# limit (ulimit -f: EFBIG instead of ENOSPC) and C is skipped; the output says which
# (LPL_TEST_NO_MOUNT=1 forces that path).
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
MNT="$T/mnt"
mkdir -p "$MNT"
cleanup() {
    mountpoint -q "$MNT/ro" 2>/dev/null && umount "$MNT/ro"
    mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
    rm -rf "$T"
}
trap cleanup EXIT
make_tiny_model "$T/tiny.gguf"
RUN=(--model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 8 --n-eval 2
     --max-len 40 --epochs 8 --r 4 --alpha 8 --threads 1 --quiet)

if [ -z "${LPL_TEST_NO_MOUNT:-}" ] && mount -t tmpfs -o size=2m tmpfs "$MNT" 2>/dev/null; then
    MODE=tmpfs
    echo "disk full simulated with a 2 MB tmpfs at $MNT"
else
    MODE=fsize
    echo "cannot mount here: disk full simulated with ulimit -f (EFBIG); read-only case skipped"
fi

"$LORALAB" ablate "${RUN[@]}" --out "$T/ref" > /dev/null 2> "$T/ref.err" || { fail "reference run: $(cat "$T/ref.err")"; finish; }

# compare.py RUN REF: every eval loss and every step line bit-for-bit equal (JSON numbers carry 17 digits)
cat > "$T/compare.py" <<'PYEOF'
import json, sys
run, ref = sys.argv[1], sys.argv[2]
a, b = json.load(open(run + "/results.json")), json.load(open(ref + "/results.json"))
assert [p["status"] for p in a["trainings"]] == ["done"] * 3, [p["status"] for p in a["trainings"]]
for p, q in zip(a["trainings"], b["trainings"]):
    assert p["eval_loss"] == q["eval_loss"], (p["name"], p["eval_loss"], q["eval_loss"])
    assert [e["eval_loss"] for e in p["evals"]] == [e["eval_loss"] for e in q["evals"]], p["name"]
    assert p["steps"]["loss"] == q["steps"]["loss"], p["name"]
assert open(run + "/steps.jsonl").read() == open(ref + "/steps.jsonl").read(), "steps.jsonl differs"
PYEOF
# intact.py RUN SUMS: results.json parses with exactly the first placement done, every
# steps.jsonl line parses and belongs to it, its adapter files are unchanged, no *.tmp
cat > "$T/intact.py" <<'PYEOF'
import hashlib, json, os, sys
run, sums = sys.argv[1], sys.argv[2]
r = json.load(open(run + "/results.json"))
status = [p["status"] for p in r["trainings"]]
done = status.count("done")
# placements done first, then pending; a fault that struck after a later placement
# finished (case C races the running process) legitimately leaves more than one done
assert 1 <= done < len(status) and status == ["done"] * done + ["pending"] * (len(status) - done), status
names = {p["name"] for p in r["trainings"][:done]}
lines = open(run + "/steps.jsonl").read().splitlines()
assert lines and all(json.loads(l)["placement"] in names for l in lines), "steps.jsonl"
for line in open(sums):
    digest, name = line.split()
    if done > 1 and not name.startswith("baseline/"):
        continue  # results and steps grew with the later placement; its adapter is checked by the resume
    assert hashlib.sha256(open(os.path.join(run, name), "rb").read()).hexdigest() == digest, name + " changed"
tmp = [f for d, _, fs in os.walk(run) for f in fs if ".tmp" in f]
assert not tmp, tmp
PYEOF

# first_placement DIR [FLAGS]: a run stopped after its first placement, and the sums of its files
first_placement() {
    "$LORALAB" ablate "${RUN[@]}" "${@:2}" --out "$1" --stop-after-trainings 1 > /dev/null 2> "$T/first.err"
    [ $? -eq 1 ] || fail "first placement run: $(cat "$T/first.err")"
    (cd "$1" && sha256sum results.json results.csv steps.jsonl baseline/adapter_model.safetensors \
        baseline/adapter_config.json) > "$T/sums"
}

# fill_leaving BYTES: fill the tmpfs until only BYTES (whole pages) are free
fill_leaving() {
    rm -f "$MNT/filler"
    local bs avail
    read -r avail bs < <(stat -f -c '%a %S' "$MNT")
    dd if=/dev/zero of="$MNT/filler" bs="$bs" count=$((avail - $1 / bs)) status=none 2>/dev/null
    read -r avail bs < <(stat -f -c '%a %S' "$MNT")
    [ $((avail * bs)) -eq "$1" ] || fail "could not leave exactly $1 bytes free (have $((avail * bs)))"
}

pages() { echo $(( ($(stat -c %s "$1") + 4095) / 4096 )); }

# expect_fault NAME DIR ERRFILE RC PATTERN: exit 1, message names a path in DIR and the reason
expect_fault() {
    local msg
    msg=$(cat "$3")
    [ "$4" -eq 1 ] && ok "$1: exit 1" || fail "$1: exit $4: $msg"
    msg=$(grep -E "^loralab ablate: $2/[^ ]+: cannot [a-z ]+: $5" "$3")
    [ -n "$msg" ] && ok "$1: $msg" || fail "$1: message: $(cat "$3")"
    $PY "$T/intact.py" "$2" "$T/sums" && ok "$1: first placement intact, no torn JSON, no temporary files" ||
        fail "$1: files damaged"
}

if [ $MODE = tmpfs ]; then
    # ---- A: disk full; one page left for the lock file, none for the adapter
    first_placement "$MNT/a"
    fill_leaving 4096
    "$LORALAB" ablate --resume "$MNT/a" --threads 1 > /dev/null 2> "$T/a.err"
    expect_fault "A disk full at the adapter" "$MNT/a" "$T/a.err" $? "No space left on device \(disk full\)"
    grep -q "adapter_model.safetensors" "$T/a.err" && ok "A: the adapter was the write that failed" || fail "A: $(cat "$T/a.err")"
    rm -f "$MNT/filler" "$MNT/a/.loralab.lock"
    "$LORALAB" ablate --resume "$MNT/a" --threads 1 > /dev/null 2> "$T/a2.err" && ok "A: --resume with space back exits 0" ||
        fail "A: resume: $(cat "$T/a2.err")"
    $PY "$T/compare.py" "$MNT/a" "$T/ref" && ok "A: resumed run equals the uninterrupted one bit for bit" || fail "A: results differ"
    rm -rf "$MNT/a"

    # ---- B: room for the lock and the second adapter, not for results.json
    first_placement "$MNT/b"
    keep=$(( 1 + $(pages "$T/ref/ffn/adapter_model.safetensors") + $(pages "$T/ref/ffn/adapter_config.json") ))
    fill_leaving $((keep * 4096))
    "$LORALAB" ablate --resume "$MNT/b" --threads 1 > /dev/null 2> "$T/b.err"
    expect_fault "B disk full at results.json" "$MNT/b" "$T/b.err" $? "No space left on device \(disk full\)"
    grep -qF "$MNT/b/results.json: cannot write" "$T/b.err" && ok "B: results.json was the write that failed" ||
        fail "B: another write failed first: $(cat "$T/b.err")"
    rm -f "$MNT/filler" "$MNT/b/.loralab.lock"
    "$LORALAB" ablate --resume "$MNT/b" --threads 1 > /dev/null 2> "$T/b2.err" && ok "B: --resume with space back exits 0" ||
        fail "B: resume: $(cat "$T/b2.err")"
    $PY "$T/compare.py" "$MNT/b" "$T/ref" && ok "B: resumed run equals the uninterrupted one bit for bit" || fail "B: results differ"
    rm -rf "$MNT/b"

    # ---- C: the folder turns read-only under a running --resume (40 epochs, so that
    # the placements left take long enough for the remount to come first; 10 under
    # ASan/UBSan, whose build runs the same steps about ten times slower)
    EC=40; [ "${LPL_TEST_SANITIZED:-0}" = 1 ] && EC=10
    "$LORALAB" ablate "${RUN[@]}" --epochs $EC --out "$T/ref40" > /dev/null 2> "$T/ref40.err" ||
        fail "reference run, $EC epochs: $(cat "$T/ref40.err")"
    first_placement "$MNT/ro" --epochs $EC
    "$LORALAB" ablate --resume "$MNT/ro" --threads 1 > /dev/null 2> "$T/c.err" &
    pid=$!
    for _ in $(seq 3000); do [ -e "$MNT/ro/.loralab.lock" ] && break; sleep 0.01; done
    # Stopped while the folder turns read-only. The lock file stays open on the tmpfs
    # itself; the bind mount over the folder is what later path lookups see.
    kill -STOP $pid
    mount --bind "$MNT/ro" "$MNT/ro" && mount -o remount,bind,ro "$MNT/ro" || fail "C: read-only bind mount"
    kill -CONT $pid
    wait $pid
    expect_fault "C read-only" "$MNT/ro" "$T/c.err" $? "Read-only file system"
    umount "$MNT/ro"
    "$LORALAB" ablate --resume "$MNT/ro" --threads 1 > /dev/null 2> "$T/c2.err" && ok "C: --resume once writable exits 0" ||
        fail "C: resume: $(cat "$T/c2.err")"
    grep -q "note: took over" "$T/c2.err" && ok "C: lock left on the read-only folder taken over" || fail "C: $(cat "$T/c2.err")"
    $PY "$T/compare.py" "$MNT/ro" "$T/ref40" && ok "C: resumed run equals the uninterrupted one bit for bit" ||
        fail "C: results differ"
else
    # ---- A/B without a mount: a file-size limit just above what the first placement wrote
    first_placement "$T/f"
    limit=$(( ($(stat -c %s "$T/f/results.json") + 1023) / 1024 + 1 ))
    (ulimit -f "$limit"; exec "$LORALAB" ablate --resume "$T/f" --threads 1 > /dev/null 2> "$T/f.err")
    expect_fault "file-size limit" "$T/f" "$T/f.err" $? "File too large"
    "$LORALAB" ablate --resume "$T/f" --threads 1 > /dev/null 2> "$T/f2.err" && ok "--resume without the limit exits 0" ||
        fail "resume: $(cat "$T/f2.err")"
    $PY "$T/compare.py" "$T/f" "$T/ref" && ok "resumed run equals the uninterrupted one bit for bit" || fail "results differ"
fi

# ---- a torn last line in steps.jsonl is dropped on --resume, with a note
first_placement "$T/torn"
printf '{"placement":"ffn","index":1,"step":1,"ep' >> "$T/torn/steps.jsonl"
"$LORALAB" ablate --resume "$T/torn" --threads 1 > /dev/null 2> "$T/torn.err" && ok "--resume over a torn line exits 0" ||
    fail "torn: $(cat "$T/torn.err")"
grep -qF "note: $T/torn/steps.jsonl ended in a torn line (41 bytes, from an interrupted write); dropped it" "$T/torn.err" &&
    ok "torn line noted: $(cat "$T/torn.err")" || fail "no note: $(cat "$T/torn.err")"
$PY "$T/compare.py" "$T/torn" "$T/ref" && ok "steps.jsonl complete and equal to the uninterrupted run's" || fail "torn: results differ"
finish
