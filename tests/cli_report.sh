#!/bin/bash
# loralab report: a results folder becomes one self-contained HTML file holding the
# results document byte for byte (escaped so nothing in it can end its script), the
# renderer and the template, with no address or file reference; the same input and
# SOURCE_DATE_EPOCH give the same bytes; missing or corrupt results get a clear
# message, exit 2 and no file.
LORALAB="$1"
. "$(dirname "$0")/lib_cli.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
make_tiny_model "$T/tiny.gguf"
"$LORALAB" ablate --model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json --n-train 3 \
    --n-eval 2 --max-len 40 --epochs 1 --lr 5e-3 --r 2 --alpha 4 --threads 1 --seeds 2 --quiet --out "$T/run" \
    > /dev/null 2> "$T/err.txt" || { fail "ablate: $(cat "$T/err.txt")"; finish; }

out=$("$LORALAB" report "$T/run" 2> "$T/err.txt")
rc=$?
[ $rc -eq 0 ] && ok "report exit 0" || fail "report exit $rc: $(cat "$T/err.txt")"
[ "$out" = "$T/run/report.html" ] && ok "prints the path written" || fail "printed '$out'"
[ -s "$T/run/report.html" ] && ok "DIR/report.html written" || fail "no report.html"
ls "$T/run" | grep -q '\.tmp' && fail "temporary file left" || ok "no temporary file"

$PY - "$T/run" web/report_template.html web/report.js <<'PYEOF' && ok "the results, renderer and template are inside; nothing is referenced" || fail "report content"
import json, re, sys
run, tmpl, renderer = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
html = open(run + "/report.html").read()
raw = open(run + "/results.json").read()
m = re.search(r'<script type="application/json" id="lab-results">(.*?)</script>', html, re.S)
assert m, "no results element"
assert m.group(1).replace("\\u003c", "<") == raw, "the results document is not embedded byte for byte"
meta = json.loads(re.search(r'id="lab-meta">(.*?)</script>', html, re.S).group(1))
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["written"]), meta
assert renderer in html, "the renderer is not embedded verbatim"
head = tmpl.split("@@LAB_RESULTS@@")[0]
assert html.startswith(head), "the template's head is not the file's"
assert "@@LAB_" not in html.replace(renderer, ""), "a slot left unfilled"
# No file or address: no src/href attributes, no CSS url() or @import, and no http(s)
# address besides the SVG namespace the renderer names elements with.
outside = html.replace(renderer, "")
assert not re.search(r"\b(src|href)\s*=", outside, re.I), re.search(r"\b(src|href)\s*=", outside, re.I)
assert not re.search(r"url\(|@import", outside, re.I)
addrs = set(re.findall(r"https?://[^\s'\"`)]+", html))
assert addrs <= {"http://www.w3.org/2000/svg"}, addrs
assert html.count("</script>") == 4, html.count("</script>")
PYEOF

# A grid collected from its units (as after a Slurm array) reports the same way.
"$LORALAB" ablate --plan --out "$T/grid" --model "$T/tiny.gguf" --train data/alpaca_train.json --eval data/alpaca_eval.json \
    --n-train 2 --n-eval 2 --max-len 40 --epochs 1 --r 2 --alpha 4 --placements baseline,attn --bands 2 --quiet > "$T/units.txt" &&
    while IFS=$'\t' read -r k _; do "$LORALAB" ablate --unit "$k" --out "$T/grid" --threads 1 --quiet || exit 1; done < "$T/units.txt" &&
    "$LORALAB" collect "$T/grid" --quiet && "$LORALAB" report "$T/grid" --quiet &&
    $PY - "$T/grid" <<'PYEOF' && ok "a collected grid (4 units, 2 bands) reports its arms" || fail "report of a collected grid"
import json, re, sys
html = open(sys.argv[1] + "/report.html").read()
doc = json.loads(re.search(r'id="lab-results">(.*?)</script>', html, re.S).group(1))
assert doc == json.load(open(sys.argv[1] + "/results.json"))
assert doc["collected"]["units"] == 4, doc.get("collected")
assert [p["name"] for p in doc["trainings"]] == ["baseline.L0-0", "baseline.L1-1", "attn.L0-0", "attn.L1-1"]
PYEOF

# Same input and time: same bytes; a results.json path and --out work too.
SOURCE_DATE_EPOCH=0 "$LORALAB" report "$T/run/results.json" --out "$T/a.html" --quiet &&
    SOURCE_DATE_EPOCH=0 "$LORALAB" report "$T/run" --out "$T/b.html" --quiet &&
    cmp -s "$T/a.html" "$T/b.html" && grep -q '{"written": "1970-01-01T00:00:00Z"}' "$T/a.html" &&
    ok "reproducible with SOURCE_DATE_EPOCH; a results.json path and --out" || fail "reproducible report"

# A results document whose strings carry markup cannot end the results element.
$PY - "$T/run/results.json" "$T/evil/results.json" <<'PYEOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
d["model"]["name"] = "</script><script>window.__pwn = 1</script><!--"
os.makedirs(os.path.dirname(sys.argv[2]))
json.dump(d, open(sys.argv[2], "w"))
PYEOF
"$LORALAB" report "$T/evil" --quiet && ! grep -q '</script><script>window.__pwn' "$T/evil/report.html" &&
    grep -q '\\u003c/script>\\u003cscript>window.__pwn' "$T/evil/report.html" &&
    ok "markup in the results is escaped" || fail "markup in results"

# Bad input: a clear message, exit 2, nothing written.
expect_bad() { # name, expected message (regex), args...
    local name="$1" msg="$2"; shift 2
    "$LORALAB" report "$@" > "$T/out.txt" 2> "$T/err.txt"
    local rc=$?
    if [ $rc -eq 2 ] && grep -Eq "$msg" "$T/err.txt"; then ok "$name: exit 2, $(head -c 160 "$T/err.txt")"
    else fail "$name: exit $rc, stderr: $(cat "$T/err.txt")"; fi
}
mkdir -p "$T/empty" "$T/corrupt" "$T/plan" "$T/none"
expect_bad "no results.json" "empty/results.json: no results to report \(the folder has no results.json" "$T/empty"
expect_bad "no such folder" "nowhere: no results to report" "$T/nowhere"
head -c 300 "$T/run/results.json" > "$T/corrupt/results.json"
expect_bad "truncated results.json" "corrupt/results.json: not JSON \(parsing stopped at byte [0-9]+ of 300\)" "$T/corrupt"
echo '{"format": "loralab-plan", "units": []}' > "$T/plan/results.json"
expect_bad "another document" 'not a loralab results document \(no "format": "loralab-results"\)' "$T/plan"
echo '{"format": "loralab-results", "placements": []}' > "$T/none/results.json"  # an older file's key, empty
expect_bad "no trainings" "a results document with no trainings" "$T/none"
for d in empty corrupt plan none; do [ -e "$T/$d/report.html" ] && fail "$d: a report was written"; done
expect_bad "no folder given" "which results\?"
expect_bad "unknown flag" "unknown flag '--bogus'" "$T/run" --bogus
"$LORALAB" report "$T/run" --out "$T/no/such/dir/r.html" > /dev/null 2> "$T/err.txt"
rc=$?
[ $rc -eq 2 ] && grep -q "no/such/dir/r.html: cannot write" "$T/err.txt" && ok "unwritable --out: exit 2 naming the file" ||
    fail "unwritable --out: exit $rc: $(cat "$T/err.txt")"
"$LORALAB" report --help | grep -q "usage: loralab report DIR" && ok "--help" || fail "--help"
"$LORALAB" --help | grep -q "^  report " && ok "listed in loralab --help" || fail "not in loralab --help"
finish
