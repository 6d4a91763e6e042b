#!/bin/bash
# Runs loralab bench natively (compute int8 and f32), loralab bench in the wasm CLI
# under Node (int8 and f32, same build) and the PyTorch peer, alternately for several
# rounds on the same shape, then prints the ratios against the targets (issues 9, 13).
# Also DialoGPT-medium (seq 256, q8_0 base): native memory, and wasm int8 vs f32 under
# Node, alternately (the stand-in for the page in Chromium: the same V8).
#
#   bench/compare.sh [--build DIR] [--wasm-build DIR] [--rounds N] [--steps N] [--out DIR]
#                    [--no-wasm] [--no-medium] [--preset NAME --seq N]   (default dialogpt-small, 128)
#                    [--medium-rounds N]  (wasm DialoGPT-medium rounds, default 3; 0 skips)
#
# Results (one JSON per run and summary.md) go to --out (default bench/results/<timestamp>).
set -eu
cd "$(dirname "$0")/.."

BUILD=build
WASM_BUILD=build-wasm
ROUNDS=5
MEDIUM_ROUNDS=3
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
    --medium-rounds) MEDIUM_ROUNDS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --seq) SEQ=$2; shift 2 ;;
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

ARGS=(--preset $PRESET --seq $SEQ --placement $PLACEMENT --steps $STEPS --warmup $WARMUP --r 16)
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
for round in $(seq 1 "$ROUNDS"); do
    # the fp32 matmul peak is a reference, not a target: once, in the first round
    if [ "$round" = 1 ]; then
        log "round $round/$ROUNDS: fp32 matmul peak (torch.mm)"
        /usr/bin/python3 bench/torch_peer.py --peak --json >"$OUT/peak-$round.json"
    fi
    # the order inside a round alternates so that neither compute always runs first
    if [ $((round % 2)) = 1 ]; then order="int8 f32"; else order="f32 int8"; fi
    for c in $order; do
        log "round $round/$ROUNDS: native, compute $c (load $(load))"
        echo "$(load)" >"$OUT/load-native-$c-$round.txt"
        "$NATIVE" bench "${ARGS[@]}" --weights $WEIGHTS --compute $c --threads 0 --json >"$OUT/native-$c-$round.json"
    done
    if [ $WASM = 1 ]; then
        for c in $order; do
            log "round $round/$ROUNDS: wasm (node), compute $c (load $(load))"
            node --no-experimental-fetch "$NODE_CLI" bench "${ARGS[@]}" --weights $WEIGHTS --compute $c \
                --threads 0 --json >"$OUT/wasm-$c-$round.json"
        done
    fi
    log "round $round/$ROUNDS: pytorch peer (1 and all OpenBLAS threads) (load $(load))"
    /usr/bin/python3 bench/torch_peer.py "${ARGS[@]}" --json >"$OUT/peer-$round.json"
    echo "$(load)" >"$OUT/load-$round.txt"
done

if [ $MEDIUM = 1 ]; then
    log "dialogpt-medium seq 256 q8_0: native memory"
    "$NATIVE" bench --preset dialogpt-medium --seq 256 --placement baseline --weights q8_0 \
        --steps 3 --warmup 1 --threads 0 --json >"$OUT/medium-native.json"
    log "dialogpt-medium seq 256: pytorch peer memory (fp32, 2 OpenBLAS threads)"
    /usr/bin/python3 bench/torch_peer.py --preset dialogpt-medium --seq 256 --placement baseline \
        --steps 3 --warmup 1 --threads "$(nproc)" --json >"$OUT/medium-peer.json"
    if [ $WASM = 1 ]; then
        for round in $(seq 1 "$MEDIUM_ROUNDS"); do
            if [ $((round % 2)) = 1 ]; then order="int8 f32"; else order="f32 int8"; fi
            for c in $order; do
                log "medium round $round/$MEDIUM_ROUNDS: wasm (node), compute $c (load $(load))"
                node --no-experimental-fetch "$NODE_CLI" bench --preset dialogpt-medium --seq 128 \
                    --placement baseline --weights q8_0 --compute $c --steps 3 --warmup 1 --threads 0 \
                    --json >"$OUT/wmedium-$c-$round.json"
            done
        done
    fi
fi
/usr/bin/python3 bench/summarize.py "$OUT" | tee "$OUT/summary.md"
