#!/bin/bash
# Runs loralab bench natively, loralab bench in the wasm CLI under Node, and the PyTorch
# peer, alternately for a few rounds on the same shape, then prints the ratios against
# the targets of issue 9. Also measures DialoGPT-medium (seq 256, q8_0 base) memory.
#
#   bench/compare.sh [--build DIR] [--wasm-build DIR] [--rounds N] [--timed-steps N] [--out DIR]
#                    [--no-wasm] [--no-medium] [--preset NAME --max-len N]   (default dialogpt-small, 128)
#
# Results (one JSON per run and summary.md) go to --out (default bench/results/<timestamp>).
set -eu
cd "$(dirname "$0")/.."

BUILD=build
WASM_BUILD=build-wasm
ROUNDS=3
STEPS=10
WARMUP=2
OUT=""
WASM=1
MEDIUM=1
PRESET=dialogpt-small
SEQ=128
PLACEMENT=baseline
WEIGHTS=q8_0
while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --wasm-build) WASM_BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --timed-steps|--steps) STEPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --max-len|--seq) SEQ=$2; shift 2 ;;
    --no-wasm) WASM=0; shift ;;
    --no-medium) MEDIUM=0; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$OUT" ] || OUT=bench/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
NATIVE=$BUILD/loralab
NODE_CLI=$WASM_BUILD/loralab_node.js
[ -x "$NATIVE" ] || { echo "compare.sh: $NATIVE not built" >&2; exit 2; }
if [ $WASM = 1 ] && [ ! -f "$NODE_CLI" ]; then
    echo "compare.sh: $NODE_CLI not built (use --no-wasm to skip)" >&2; exit 2
fi

ARGS=(--preset $PRESET --max-len $SEQ --placement $PLACEMENT --timed-steps $STEPS --warmup $WARMUP --r 16)
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS: fp32 matmul peak (torch.mm)"
    /usr/bin/python3 bench/torch_peer.py --peak --json >"$OUT/peak-$round.json"
    log "round $round/$ROUNDS: native"
    "$NATIVE" bench "${ARGS[@]}" --type $WEIGHTS --threads 0 --json >"$OUT/native-$round.json"
    if [ $WASM = 1 ]; then
        log "round $round/$ROUNDS: wasm (node)"
        node --no-experimental-fetch "$NODE_CLI" bench "${ARGS[@]}" --type $WEIGHTS --threads 0 \
            --json >"$OUT/wasm-$round.json"
    fi
    log "round $round/$ROUNDS: pytorch peer (1 and all OpenBLAS threads)"
    /usr/bin/python3 bench/torch_peer.py "${ARGS[@]}" --json >"$OUT/peer-$round.json"
done

if [ $MEDIUM = 1 ]; then
    log "dialogpt-medium seq 256 q8_0: native memory"
    "$NATIVE" bench --preset dialogpt-medium --max-len 256 --placement baseline --type q8_0 \
        --timed-steps 3 --warmup 1 --threads 0 --json >"$OUT/medium-native.json"
    log "dialogpt-medium seq 256: pytorch peer memory (fp32, 2 OpenBLAS threads)"
    /usr/bin/python3 bench/torch_peer.py --preset dialogpt-medium --max-len 256 --placement baseline \
        --timed-steps 3 --warmup 1 --threads "$(nproc)" --json >"$OUT/medium-peer.json"
fi
/usr/bin/python3 bench/summarize.py "$OUT" | tee "$OUT/summary.md"
