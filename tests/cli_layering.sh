#!/bin/bash
# The source tree keeps its layers (src/README.md): scripts/check-layers.mjs over the
# real tree and the built library (includes and nm symbols), then over a small tree
# made here with one upward include, one private header used across folders and one
# call cycle and one public header that includes an internal one, which it must
# reject naming each.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
LIB="$(dirname "$LORALAB")/liblpl.a"

out=$(node scripts/check-layers.mjs --archive "$LIB" 2>&1) && ok "tree: $out" || fail "the tree breaks its layering:
$out"

mkdir -p "$T/src/core" "$T/src/model" "$T/src/io" "$T/include/lpl/core" "$T/include/lpl/model"
printf 'int ping(int);\n' >"$T/include/lpl/model/ping.h"
printf 'int pong(int);\n' >"$T/include/lpl/model/pong.h"
printf '#include "lpl/model/pong.h"\nint ping(int n) { return n ? pong(n - 1) : 0; }\n' >"$T/src/model/ping.c"
printf '#include "lpl/model/ping.h"\nint pong(int n) { return n ? ping(n - 1) : 1; }\n' >"$T/src/model/pong.c"
printf '#include "lpl/model/ping.h"\nint low(void) { return ping(3); }\n' >"$T/src/core/low.c"
printf 'int secret;\n' >"$T/src/model/private.h"
# an internal cross-layer header (src/internal/lpl/) included by a public one
mkdir -p "$T/src/internal/lpl/core"
printf 'int fast(int);\n' >"$T/src/internal/lpl/core/fast.h"
printf '#include "lpl/core/fast.h"\nint api(int);\n' >"$T/include/lpl/core/api.h"
printf '#include "../model/private.h"\nint peek(void) { return secret; }\n' >"$T/src/io/peek.c"
for f in ping pong; do cc -c -I"$T/include" "$T/src/model/$f.c" -o "$T/$f.c.o" || fail "cc $f"; done
cc -c -I"$T/include" "$T/src/core/low.c" -o "$T/low.c.o" || fail "cc low"
ar rcs "$T/lib.a" "$T/ping.c.o" "$T/pong.c.o" "$T/low.c.o"
bad=$(node scripts/check-layers.mjs --root "$T" --archive "$T/lib.a" 2>&1)
code=$?
echo "$bad"
[ "$code" -eq 1 ] && ok "a broken tree exits 1" || fail "a broken tree exits $code"
echo "$bad" | grep -q 'src/core/low.c:1: #include "lpl/model/ping.h": core (layer 1) may not include model (layer 2)' &&
    ok "upward include named" || fail "upward include not reported"
echo "$bad" | grep -q 'src/io/peek.c:1: #include "../model/private.h": a private header of src/model/' &&
    ok "private header across folders named" || fail "private header not reported"
echo "$bad" | grep -q 'include/lpl/core/api.h:1: #include "lpl/core/fast.h": a public header may include only public headers' &&
    ok "public header including an internal one named" || fail "public header including an internal one not reported"
echo "$bad" | grep -q 'call cycle between modules (nm lib.a): model/ping <-> model/pong' &&
    ok "call cycle named" || fail "call cycle not reported"
echo "$bad" | grep -q 'core/low calls ping of model/ping: core may not use model' &&
    ok "upward call named" || fail "upward call not reported"
node scripts/check-layers.mjs --bogus >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad usage exits 2" || fail "bad usage does not exit 2"
finish
