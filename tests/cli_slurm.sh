#!/bin/bash
# A real one-node Slurm cluster on this machine (munged, slurmctld, slurmd from Debian's
# slurm-wlm and munge, a minimal slurm.conf in a temporary folder): scripts/slurm/submit
# plans a 6-unit grid (3 placements x 2 seeds, --quick, on the bundled model), runs it
# as an array job of scripts/slurm/ablate.sbatch, and collect runs after it
# (--dependency=afterok); the collected results equal, bit for bit, the same grid run
# in one process. The daemons are stopped by their pids whatever happens (trap).
# Skips (exit 0, "SKIP: reason") only where the daemons cannot run, e.g. not root.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
. "$(dirname "$0")/lib_slurm.sh"
if ! why=$(slurm_can_run); then
    echo "SKIP: no Slurm test on this machine: $why"
    exit 0
fi
T=$(mktemp -d /tmp/lpl-slurm.XXXXXX)
cleanup() {
    [ -n "${SLURM_CONF:-}" ] && scancel --quiet --user="$(id -un)" 2>/dev/null
    slurm_stop
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

slurm_start "$T/cluster" && ok "one-node cluster up: $(sinfo -h -o '%P %T %N %c CPUs')" ||
    { fail "cluster did not start"; finish; }

LORALAB_ABS="$(cd "$(dirname "$LORALAB")" && pwd)/$(basename "$LORALAB")"
MODEL="$PWD/models/lab-small.q8_0.gguf" EXTRA=()
# Under AddressSanitizer training runs several times slower: the tiny fixture model
# keeps this test within a couple of minutes there (the daemons and the flow are the same).
if grep -q __asan_init "$LORALAB_ABS"; then
    make_tiny_model "$T/tiny.gguf"
    MODEL="$T/tiny.gguf" EXTRA=(--max-len 40)
fi
GRID=(--quick --seeds 2 --model "$MODEL" --train "$PWD/data/alpaca_train.json" --eval "$PWD/data/alpaca_eval.json"
      "${EXTRA[@]}")

# ---- submit: plan, array of 6 units (1 CPU each, so both cores run units at once), collect after
ids=$(LORALAB="$LORALAB_ABS" timeout 300 scripts/slurm/submit "$T/grid" --cpus 1 --wait -- "${GRID[@]}" 2> "$T/submit.err")
rc=$?
cat "$T/submit.err"
[ $rc -eq 0 ] && ok "submit --wait: array and collect jobs ($ids) finished, exit 0" ||
    { fail "submit exit $rc; logs: $(tail -n 5 "$T/grid/logs/"*.out 2>/dev/null)"; finish; }
array=${ids%% *}
for k in 0 1 2 3 4 5; do
    grep -q "ablate.sbatch: unit $k of $T/grid on $(hostname -s), 1 thread(s)" "$T/grid/logs/unit-$k.out" ||
        fail "unit $k did not run as array task $k: $(cat "$T/grid/logs/unit-$k.out" 2>/dev/null)"
done
ok "6 array tasks ran units 0-5 with SLURM_CPUS_PER_TASK threads"
state=$(scontrol show job "$array" 2>/dev/null | grep -c "JobState=COMPLETED")
[ "$state" -eq 6 ] && ok "slurmctld reports the 6 array tasks COMPLETED" || fail "array job state: $(scontrol show job "$array" | grep JobState)"
grep -q "6 of 6 units (6 done, 0 failed) merged" "$T/grid/logs/collect.out" && ok "collect job merged 6 units" ||
    fail "collect log: $(cat "$T/grid/logs/collect.out")"

# ---- the same grid in one process
"$LORALAB" ablate "${GRID[@]}" --threads 2 --quiet --out "$T/one" > /dev/null 2> "$T/one.err" ||
    fail "one-process run: $(cat "$T/one.err")"
$PY tests/lib_grid.py same "$T/one" "$T/grid" && ok "Slurm units + collect = one process, bit for bit" ||
    fail "Slurm results differ from the one-process run"

# ---- resubmitting runs nothing again: every unit is skipped, collect runs again
ids=$(LORALAB="$LORALAB_ABS" timeout 180 scripts/slurm/submit "$T/grid" --cpus 1 --wait 2> "$T/resubmit.err")
rc=$?
[ $rc -eq 0 ] && grep -q "already done" "$T/grid/logs/unit-0.out" && ok "resubmitted plan: units skipped, collect ok" ||
    fail "resubmit exit $rc: $(cat "$T/resubmit.err") $(cat "$T/grid/logs/unit-0.out")"
finish
