#!/usr/bin/python3
"""Prints deb-src entries (deb822) that mirror this machine's own Debian sources.

scripts/setup needs Debian's source package of cJSON and so a deb-src entry. Rather
than assume a mirror, it copies the machine's configured `deb` entries for its
release (same URIs, suites, components, Signed-By, options) with Types: deb-src.
Reads <apt>/sources.list and <apt>/sources.list.d/*.list and *.sources, both the
one-line and the deb822 formats; entries for other suites (third-party
repositories) and disabled ones are left out. Prints nothing, exit 1, when the
machine has no entry for its release; exit 0 with nothing when deb-src entries
exist already.

    scripts/deb_src_sources.py [--apt DIR] [--codename NAME]
"""
import argparse
import glob
import os
import re
import sys


def codename_of(os_release):
    try:
        for line in open(os_release, encoding="utf-8"):
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def one_line_entries(text):
    """Entries of a one-line sources.list: {Types, URIs, Suites, Components, options...}."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        e = {"Types": m.group(1), "URIs": m.group(3), "Suites": m.group(4), "Components": m.group(5)}
        for opt in (m.group(2) or "").split():
            k, _, v = opt.partition("=")
            key = {"signed-by": "Signed-By", "arch": "Architectures", "trusted": "Trusted"}.get(k.lower())
            if key:
                e[key] = v
        out.append(e)
    return out


def deb822_entries(text):
    """Stanzas of a .sources file as dicts (comments dropped, continuation lines joined)."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        e, last = {}, None
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and last:
                e[last] += "\n" + line
                continue
            k, _, v = line.partition(":")
            last = k.strip()
            e[last] = v.strip()
        if e.get("Types"):
            out.append(e)
    return out


def entries(apt):
    found = []
    main = os.path.join(apt, "sources.list")
    if os.path.isfile(main):
        found += one_line_entries(open(main, encoding="utf-8").read())
    for f in sorted(glob.glob(os.path.join(apt, "sources.list.d", "*.list"))):
        found += one_line_entries(open(f, encoding="utf-8").read())
    for f in sorted(glob.glob(os.path.join(apt, "sources.list.d", "*.sources"))):
        found += deb822_entries(open(f, encoding="utf-8").read())
    return [e for e in found if e.get("Enabled", "yes").lower() != "no"]


def of_release(e, codename):
    suites = e.get("Suites", "").split()
    return bool(suites) and all(s == codename or s.startswith(codename + "-") for s in suites)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--apt", default="/etc/apt", help="apt's configuration folder (default /etc/apt)")
    p.add_argument("--codename", help="the release (default VERSION_CODENAME of /etc/os-release)")
    a = p.parse_args()
    codename = a.codename or codename_of("/etc/os-release")
    if not codename:
        sys.exit("deb_src_sources: cannot tell the release (no VERSION_CODENAME in /etc/os-release); give --codename")
    found = entries(a.apt)
    if any("deb-src" in e["Types"].split() for e in found):
        return 0
    stanzas = []
    for e in found:
        if "deb" not in e["Types"].split() or not of_release(e, codename):
            continue
        s = dict(e, Types="deb-src")
        stanza = "\n".join(f"{k}: {v}" for k, v in s.items() if k != "Enabled")
        if stanza not in stanzas:
            stanzas.append(stanza)
    if not stanzas:
        print(f"deb_src_sources: no deb entry for {codename} in {a.apt}", file=sys.stderr)
        return 1
    print("\n\n".join(stanzas))
    return 0


if __name__ == "__main__":
    sys.exit(main())
