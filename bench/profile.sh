#!/bin/bash
# Profiles the training steps of `loralab bench` (not its setup) with perf and prints
# the hottest symbols, self time, with the engine's own component split.
#
#   bench/profile.sh [--build DIR] [loralab bench options...]
#   bench/profile.sh --build build --preset dialogpt-small --max-len 128 --timed-steps 3
#
# The setup (drawing random weights) is skipped by delaying perf by the setup time of
# a one-step dry run. Needs perf (linux-perf) and permission to use it.
set -eu
cd "$(dirname "$0")/.."
BUILD=build
if [ "${1:-}" = "--build" ]; then
    BUILD=$2
    shift 2
fi
BIN=$BUILD/loralab
command -v perf >/dev/null || { echo "profile.sh: perf not found" >&2; exit 2; }
[ -x "$BIN" ] || { echo "profile.sh: $BIN not built" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

setup_ms=$("$BIN" bench "$@" --timed-steps 1 --warmup 0 --json |
    /usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)["setup_s"] * 1000 * 1.3 + 500))')
perf record -q -D "$setup_ms" -o "$tmp/perf.data" "$BIN" bench "$@" >"$tmp/bench.txt" 2>/dev/null
cat "$tmp/bench.txt"
echo
echo "perf (self time, symbols over 1%; setup skipped by a ${setup_ms} ms delay):"
perf report -i "$tmp/perf.data" --no-children --percent-limit 1 --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | awk '{ printf "  %7s  %-18s %s\n", $1, $3, $5 }'
