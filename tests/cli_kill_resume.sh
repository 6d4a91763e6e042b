#!/bin/bash
# SIGKILL during the quick ablation on the bundled model (models/lab-small.q8_0.gguf,
# the study's three placements; the tiny fixture under AddressSanitizer): killed once
# during the second placement and once during the third, each time continued with
# --resume, the run ends with the eval losses (before, per epoch, final), the training
# losses, steps.jsonl and the adapters bit for bit those of an uninterrupted run. Killed
# before its first training ends, the run is continued the same way.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$T"' EXIT
# More records than --quick's 8 so that a placement lasts well over the 0.2 s between
# seeing one placement done and the kill (on a fast machine --quick's took 0.15 s).
RUN=(--quick --model models/lab-small.q8_0.gguf --n-train 32 --threads 1 --quiet)
# Under AddressSanitizer training runs several times slower: the tiny fixture model
# (context 64) keeps the test near a minute there; the kills and the checks are the same.
if grep -q __asan_init "$LORALAB"; then
    make_tiny_model "$T/tiny.gguf"
    RUN=(--quick --model "$T/tiny.gguf" --max-len 40 --n-train 96 --threads 1 --quiet)
fi

"$LORALAB" ablate "${RUN[@]}" --out "$T/ref" > /dev/null 2> "$T/ref.err" || { fail "reference run: $(cat "$T/ref.err")"; finish; }

# done_count DIR: placements marked done in DIR/results.json (0 if none yet)
done_count() {
    $PY -c 'import json,sys
try: print(sum(p["status"] == "done" for p in json.load(open(sys.argv[1]))["trainings"]))
except (OSError, ValueError): print(0)' "$1/results.json"
}

# kill_after N CMD...: start CMD, SIGKILL it 0.2 s after N placements are done
kill_after() {
    local n=$1
    shift
    "$@" > /dev/null 2> "$T/killed.err" &
    pid=$!
    for _ in $(seq 1200); do [ "$(done_count "$T/run")" -ge "$n" ] && break; sleep 0.05; done
    sleep 0.2
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    local rc=$?
    pid=
    [ $rc -eq 137 ] && ok "killed with SIGKILL after $(done_count "$T/run") training(s)" ||
        fail "run ended by itself (exit $rc) before the kill: $(cat "$T/killed.err")"
}

kill_after 1 "$LORALAB" ablate "${RUN[@]}" --out "$T/run"
kill_after 2 "$LORALAB" ablate --resume "$T/run" --threads 1 --quiet
"$LORALAB" ablate --resume "$T/run" --threads 1 --quiet > /dev/null 2> "$T/last.err" && ok "last --resume exit 0" ||
    fail "last --resume: $(cat "$T/last.err")"

# Killed before its first training ends (the OOM killer, a preempted job): the folder
# already says what --resume needs. steps.jsonl appears once the run has started.
"$LORALAB" ablate "${RUN[@]}" --out "$T/early" > /dev/null 2> "$T/early.err" &
pid=$!
for _ in $(seq 1200); do [ -e "$T/early/steps.jsonl" ] && break; sleep 0.02; done
kill -9 "$pid"
wait "$pid" 2>/dev/null
rc=$?
pid=
[ $rc -eq 137 ] && [ "$(done_count "$T/early")" -eq 0 ] && ok "killed with SIGKILL before the first training ended" ||
    fail "early kill: exit $rc, $(done_count "$T/early") done: $(cat "$T/early.err")"
"$LORALAB" ablate --resume "$T/early" --threads 1 --quiet > /dev/null 2> "$T/early-resume.err" &&
    ok "--resume after an early kill exit 0" || fail "--resume after an early kill: $(cat "$T/early-resume.err")"

# A folder with no results.json: refused with a message that says so once.
mkdir -p "$T/empty"
"$LORALAB" ablate --resume "$T/empty" --quiet > /dev/null 2> "$T/empty.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -o 'no results.json' "$T/empty.err" | wc -l)" -eq 1 ] && ok "no results.json: exit 2, said once" ||
    fail "no results.json: exit $rc: $(cat "$T/empty.err")"

for d in run early; do
$PY - "$T/$d" "$T/ref" <<'PYEOF' && ok "$d: eval losses, training losses and steps.jsonl bit for bit equal to the uninterrupted run" || fail "resumed run $d differs"
import json, sys
run, ref = sys.argv[1], sys.argv[2]
a, b = json.load(open(run + "/results.json")), json.load(open(ref + "/results.json"))
assert [p["name"] for p in a["trainings"]] == ["baseline", "ffn", "attn"]
assert [p["status"] for p in a["trainings"]] == ["done"] * 3
for p, q in zip(a["trainings"], b["trainings"]):
    for k in ("eval_loss_before", "eval_loss", "perplexity"):
        assert p[k] == q[k], (p["name"], k, p[k], q[k])
    assert [e["eval_loss"] for e in p["evals"]] == [e["eval_loss"] for e in q["evals"]], p["name"]
    assert p["steps"]["loss"] == q["steps"]["loss"], p["name"]
    print("%-8s eval loss %.17g (uninterrupted %.17g)" % (p["name"], p["eval_loss"], q["eval_loss"]))
assert open(run + "/steps.jsonl").read() == open(ref + "/steps.jsonl").read(), "steps.jsonl differs"
PYEOF
for p in baseline ffn attn; do
    cmp -s "$T/$d/$p/adapter_model.safetensors" "$T/ref/$p/adapter_model.safetensors" && ok "$d: $p adapter byte-identical" ||
        fail "$d: $p adapter differs"
done
done
finish
