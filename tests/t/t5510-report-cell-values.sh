#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='XLSX keeps every text value intact (no guard quote, _xHHHH_ escaped); the CSV guard only where a formula would run'
. "$(dirname "$0")/../lib/test-lib.sh"
DEMO=$CDRFLOW_BUILD/tests/report-render-demo
[ -x "$DEMO" ] || bail_out "no $DEMO (run make test-programs)"
test_have_prereq PYTHON || skip_all "python3 is needed to read the XLSX back"

# The dst values the demo writes (tests/report/report-render-demo.c,
# dst_of), as a spreadsheet must show them.
cat >"$TRASH/want.txt" <<'EOF2'
=HYPERLINK("http://evil.invalid","x")
+49 30 1234567
-minus-start
@SUM(A1:A9)
Zürich ☎ Straße
+447700900123
Bob_x0041_ caller
-42
EOF2

# Read the Calls sheet's dst column back with zipfile + an XML parser and
# decode ST_Xstring (_xHHHH_) as Excel and LibreOffice do.
cat >"$TRASH/readback.py" <<'PY'
import re, sys, zipfile
import xml.etree.ElementTree as ET
M = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
z = zipfile.ZipFile(sys.argv[1])
def xs(s):
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), s)
shared = []
if "xl/sharedStrings.xml" in z.namelist():
    for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(M + "si"):
        shared.append(xs("".join(t.text or "" for t in si.iter(M + "t"))))
out = []
for c in ET.fromstring(z.read("xl/worksheets/sheet2.xml")).iter(M + "c"):
    if not re.fullmatch(r"C\d+", c.get("r")) or c.get("r") == "C1":
        continue
    if c.find(M + "f") is not None:
        sys.exit("a formula in " + c.get("r"))
    if c.get("t") == "s":
        out.append(shared[int(c.find(M + "v").text)])
    elif c.get("t") == "inlineStr":
        out.append(xs("".join(t.text or "" for t in c.iter(M + "t"))))
    else:
        sys.exit("dst cell %s is not a string" % c.get("r"))
for v in sorted(set(out)):
    print(v.replace("\n", "\\n"))
PY

test_expect_success 'render the demo report (XLSX and CSV; XLSX also in constant-memory mode)' '
	mkdir -p r cm && "$DEMO" --rows 200 --formats xlsx,csv r >out 2>err &&
	"$DEMO" --rows 200 --formats xlsx --constant-memory cm >out 2>err &&
	test -s r/report.xlsx && test -s r/report.csv && test -s cm/report.xlsx
'

test_expect_success 'XLSX read back (zipfile + XML): every tricky value exactly as written, none quoted' '
	for x in r cm; do
		"$PYTHON" "$TRASH/readback.py" $x/report.xlsx >got.$x || return 1
		while IFS= read -r v; do
			grep -qxF -- "$v" got.$x || { echo "missing or altered in $x XLSX: $v"; return 1; }
		done <"$TRASH/want.txt"
		! grep -q "^'"'"'" got.$x || return 1
	done &&
	unzip -p r/report.xlsx xl/sharedStrings.xml | grep -q "Bob_x005F_x0041_ caller"
'

test_expect_success 'CSV: formulas guarded, an E.164 number and a negative number left alone' '
	"$PYTHON" - r/report.csv <<-\PY
	import csv, sys
	dst = {r[2] for r in list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))[1:]}
	assert "+447700900123" in dst and "\x27+447700900123" not in dst, "E.164 number mangled"
	assert "-42" in dst, "negative number mangled"
	assert "\x27=HYPERLINK(\"http://evil.invalid\",\"x\")" in dst, "formula not guarded"
	assert "\x27+49 30 1234567" in dst and "\x27@SUM(A1:A9)" in dst and "\x27-minus-start" in dst
	assert "Bob_x0041_ caller" in dst
	PY
'

test_done
