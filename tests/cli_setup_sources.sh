#!/bin/bash
# scripts/setup's deb-src entry is a copy of the machine's own apt sources: checked on
# sample configurations in a temp folder (never /etc): deb822 and one-line files,
# a mirror of our own, third-party repositories and disabled entries.
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
S=scripts/deb_src_sources.py

mkdir -p "$T/a/sources.list.d"
cat >"$T/a/sources.list.d/debian.sources" <<'SRC'
Types: deb
# a comment
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://old.example.org/debian
Suites: bookworm
Components: main
Enabled: no
SRC
cat >"$T/a/sources.list.d/nodesource.sources" <<'SRC'
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
SRC
echo 'deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main' >"$T/a/sources.list.d/google.list"
out=$($PY $S --apt "$T/a" --codename bookworm) || fail "deb822 sample: exit $?"
expected='Types: deb-src
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
[ "$out" = "$expected" ] && ok "deb822: the machine's mirrors copied as deb-src; third-party and disabled left out" ||
    fail "deb822 sample gave:
$out"

mkdir -p "$T/b"
printf '%s\n' '# one-line format' 'deb [arch=amd64 signed-by=/k.gpg] http://ftp.example.net/debian bookworm main non-free' \
    'deb http://ftp.example.net/debian bullseye main' >"$T/b/sources.list"
out=$($PY $S --apt "$T/b" --codename bookworm)
expected='Types: deb-src
URIs: http://ftp.example.net/debian
Suites: bookworm
Components: main non-free
Architectures: amd64
Signed-By: /k.gpg'
[ "$out" = "$expected" ] && ok "one-line sources.list: options kept, other releases left out" || fail "one-line sample gave:
$out"

echo 'deb-src http://ftp.example.net/debian bookworm main' >>"$T/b/sources.list"
out=$($PY $S --apt "$T/b" --codename bookworm); code=$?
[ "$code" -eq 0 ] && [ -z "$out" ] && ok "a deb-src entry already there: nothing to add" || fail "existing deb-src: exit $code '$out'"

mkdir -p "$T/c"
$PY $S --apt "$T/c" --codename bookworm >/dev/null 2>"$T/err"; code=$?
[ "$code" -eq 1 ] && grep -q "no deb entry for bookworm" "$T/err" && ok "no source for the release: says so, exit 1" ||
    fail "empty apt folder: exit $code"
finish
