# A one-node Slurm cluster for tests (sourced; named lib_ so CTest does not run it).
# slurm_start FOLDER writes a munge key and a minimal slurm.conf for this host into
# FOLDER, starts munged, slurmctld and slurmd there (own socket, ports, spool, state
# and pid files, so it touches nothing of the machine's own munge or Slurm), exports
# SLURM_CONF, and waits until the node is idle. slurm_stop stops exactly the daemons
# it started, by the pids in their pid files. slurm_can_run says why not, if it cannot.

slurm_can_run() {
    [ "$(id -u)" -eq 0 ] || { echo "not root: munged, slurmctld and slurmd need root here"; return 1; }
    local b
    for b in munged slurmctld slurmd sbatch sinfo squeue scontrol; do
        command -v "$b" >/dev/null || { echo "$b not installed (Debian packages slurm-wlm and munge)"; return 1; }
    done
    return 0
}

# A TCP port with nothing listening on it or the next one.
slurm_free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -ltnH 2>/dev/null | awk '{print $4}' | grep -qE ":($p|$((p + 1)))\$"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

SLURM_TEST_DIR=""
slurm_start() {
    local d="$1" host port cpus mem i
    SLURM_TEST_DIR="$d"
    host=$(hostname -s)
    port=$(slurm_free_port) || { echo "no free port for slurmctld" >&2; return 1; }
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
    mkdir -p "$d/munge" "$d/spool" "$d/state" "$d/log"
    chmod 755 "$d"
    chmod 700 "$d/munge"
    head -c 1024 /dev/urandom > "$d/munge/munge.key"
    chmod 400 "$d/munge/munge.key"
    # --force: munged refuses to run as root otherwise.
    munged --force --key-file="$d/munge/munge.key" --socket="$d/munge/munge.sock" \
        --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" --seed-file="$d/munge/seed" ||
        { echo "munged did not start: $(tail -n 3 "$d/log/munged.log" 2>/dev/null)" >&2; return 1; }
    cat > "$d/slurm.conf" <<CONF
ClusterName=lpltest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=1
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=lab Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$d/slurm.conf"
    slurmctld -f "$d/slurm.conf" || { echo "slurmctld did not start: $(tail -n 5 "$d/log/slurmctld.log")" >&2; return 1; }
    slurmd -f "$d/slurm.conf" || { echo "slurmd did not start: $(tail -n 5 "$d/log/slurmd.log")" >&2; return 1; }
    for i in $(seq 1 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
            return 0
        fi
        sleep 0.5
    done
    echo "the node did not become idle within 30 s: $(sinfo 2>&1 | tail -n 2)" >&2
    return 1
}

# Stops the daemons started by slurm_start (slurmd first), waiting up to 10 s each.
slurm_stop() {
    local d="$SLURM_TEST_DIR" f pid i
    [ -n "$d" ] || return 0
    for f in "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munge/munged.pid"; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || continue
        for i in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -9 "$pid" 2>/dev/null
    done
    SLURM_TEST_DIR=""
}
