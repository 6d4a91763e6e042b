#!/bin/bash
# The library as an outside C program sees it: `cmake --install` of the build into a
# fresh prefix gives liblpl.a, the public headers and lpl.pc, and none of the
# internals (simd.h, kernels.h: src/internal/); a program that includes only
# <lpl/...> builds with `pkg-config --cflags --libs --static lpl` (as C, and its
# headers also compile as C++), runs, and trains one step on the installed model and data.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
BUILD="$(cd "$(dirname "$LORALAB")" && pwd)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P="$T/prefix"

cmake --install "$BUILD" --prefix "$P" > "$T/install.log" 2>&1 && ok "cmake --install into $P" ||
    { fail "cmake --install: $(tail -5 "$T/install.log")"; finish; }
LIBDIR=$(dirname "$(find "$P" -name liblpl.a | head -n1)")
[ -f "$LIBDIR/liblpl.a" ] && [ -f "$LIBDIR/pkgconfig/lpl.pc" ] && ok "liblpl.a and lpl.pc installed in $LIBDIR" ||
    fail "no liblpl.a or pkgconfig/lpl.pc under $P"
[ -f "$P/include/lpl/lab/experiment.h" ] && ok "public headers installed" || fail "no include/lpl/lab/experiment.h"
[ -z "$(find "$P/include" -name simd.h -o -name kernels.h -o -name dir_lock.h)" ] && ok "no internal header installed" ||
    fail "internal headers installed: $(find "$P/include" -name simd.h -o -name kernels.h -o -name dir_lock.h)"

export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
FLAGS=$(pkg-config --cflags --libs --static lpl) || fail "pkg-config lpl"
# The sanitizer build's library needs the sanitizers' runtime in the program too.
grep -q __asan_init "$LORALAB" && FLAGS="$FLAGS -fsanitize=address,undefined"
cc -std=c11 -Wall -Werror -o "$T/train_one_step" tests/install/train_one_step.c $FLAGS 2> "$T/cc.log" &&
    ok "an outside program builds with: cc ... \$(pkg-config --cflags --libs --static lpl)" || fail "cc: $(cat "$T/cc.log")"
for h in $(cd "$P/include" && find lpl -name '*.h' | sort); do echo "#include <$h>"; done > "$T/all.cc"
echo 'int main() { return 0; }' >> "$T/all.cc"
c++ -std=c++11 -fsyntax-only $(pkg-config --cflags lpl) "$T/all.cc" 2> "$T/cxx.log" &&
    ok "every public header compiles as C++ (extern \"C\" guards)" || fail "C++: $(head -5 "$T/cxx.log")"

"$T/train_one_step" "$P/share/loralab/models/lab-small.q8_0.gguf" "$P/share/loralab/data/alpaca_train.json" \
    > "$T/run.out" 2> "$T/run.err" && ok "trained one step: $(head -n1 "$T/run.out")" || fail "train_one_step: $(cat "$T/run.err")"
grep -q '^trained 1 step(s) with lpl' "$T/run.out" && $PY -c 'import json,math,sys
e = json.loads(open(sys.argv[1]).readline())
assert e["type"] == "step" and math.isfinite(e["loss"]) and e["loss"] > 0, e' "$T/run.out" &&
    ok "the step event has a finite loss" || fail "unexpected output: $(cat "$T/run.out")"
finish
