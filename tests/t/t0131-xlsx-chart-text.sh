#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='XLSX charts: titles, axis titles and series names with <, &, ", ]]>, _xHHHH_, a leading = and control characters come back intact'
. "$(dirname "$0")/../lib/test-lib.sh"
DEMO=$CDRFLOW_BUILD/tests/report-render-demo
[ -x "$DEMO" ] || bail_out "no $DEMO (run make test-programs)"
test_have_prereq PYTHON || bail_out "python3 is needed to read the XLSX back"

# The text, as report-render-demo --chart-text decodes it (\xHH, \r, \t, \n).
TEXT='=SUM(A1) <b> & "q" ]]> Bob_x0041_ \x01\x08\x0b\x1f\r\tend \xef\xbf\xbf Zürich'

# Every chart XML parsed (a control character would make it invalid XML);
# each title, axis title and series name followed to its cell on the
# Summary sheet and decoded as ECMA-376 ST_Xstring (_xHHHH_), and the
# chart's cached copy of it (when the writer keeps one) decoded the same.
cat >"$TRASH/charttext.py" <<'PY'
import re, sys, zipfile
import xml.etree.ElementTree as ET
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
z = zipfile.ZipFile(sys.argv[1])
def xs(s):
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), s or "")
shared = []
if "xl/sharedStrings.xml" in z.namelist():
    for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(S + "si"):
        shared.append(xs("".join(t.text or "" for t in si.iter(S + "t"))))
cells = {}
for c in ET.fromstring(z.read("xl/worksheets/sheet1.xml")).iter(S + "c"):
    if c.get("t") == "s":
        cells[c.get("r")] = shared[int(c.find(S + "v").text)]
    elif c.get("t") == "inlineStr":
        cells[c.get("r")] = xs("".join(t.text or "" for t in c.iter(S + "t")))
def text(tx, what):
    if tx is None:
        return None
    if list(tx.iter(A + "t")):
        sys.exit("%s is a DrawingML text run, not a cell" % what)
    f = tx.find(C + "strRef/" + C + "f").text
    m = re.fullmatch(r"Summary!\$([A-Z]+)\$(\d+)", f)
    if not m:
        sys.exit("%s refers to %s" % (what, f))
    v = cells.get(m.group(1) + m.group(2))
    cache = [xs(x.text) for x in tx.iter(C + "v")]
    if cache and cache != [v]:
        sys.exit("%s: cached %r, cell %r" % (what, cache, v))
    return v
n = 0
for name in sorted(x for x in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", x)):
    root = ET.fromstring(z.read(name))  # fails on a control character
    n += 1
    ch = root.find(C + "chart")
    print("%d title %r" % (n, text(ch.find(C + "title/" + C + "tx"), name + " title")))
    for ax in ("valAx", "catAx"):
        for a in ch.iter(C + ax):
            t = text(a.find(C + "title/" + C + "tx"), name + " " + ax)
            if t is not None:
                print("%d %s %r" % (n, ax, t))
    for i, s in enumerate(ch.iter(C + "ser")):
        print("%d series%d %r" % (n, i, text(s.find(C + "tx"), name + " series")))
PY

test_expect_success 'render the demo report with tricky chart texts (normal and constant-memory XLSX)' '
	mkdir -p r cm &&
	"$DEMO" --rows 20 --formats xlsx --chart-text "$TEXT" r >out &&
	"$DEMO" --rows 20 --formats xlsx --constant-memory --chart-text "$TEXT" cm >out
'

test_expect_success 'every chart text read back with zipfile + XML is exactly the text given' '
	"$PYTHON" - "$TEXT" >want <<-\PY &&
	import sys
	t = sys.argv[1].encode().decode("unicode_escape").encode("latin-1").decode()
	# charts 1 and 2 share the hour data block: its first series column is named "TEXT[1]"
	for k, rest in ((1, ["valAx", "catAx=hour", "series0=[1]", "series1=not answered"]),
	                (2, ["valAx", "catAx=hour", "series0=[1]", "series1=not answered"]),
	                (3, ["valAx", "catAx=hour", "series0=cost"]), (4, ["series0"])):
	    v = "%s[%d]" % (t, k)
	    print("%d title %r" % (k, v))
	    for r in rest:
	        name, _, fixed = r.partition("=")
	        print("%d %s %r" % (k, name, t + fixed if fixed.startswith("[") else fixed or v))
	PY
	for x in r cm; do
		"$PYTHON" "$TRASH/charttext.py" $x/report.xlsx >got.$x &&
		test_cmp want got.$x || return 1
	done &&
	grep -q "\\\\x01" want && grep -q "\\\\r" want && grep -q "_x0041_" want && grep -q "=SUM" want
'

test_expect_success 'the texts are cells on the Summary sheet: a leading = is text, not a formula' '
	unzip -p r/report.xlsx xl/worksheets/sheet1.xml >s1.xml &&
	! grep -q "<f>" s1.xml &&
	unzip -p r/report.xlsx xl/sharedStrings.xml | grep -q "_x0001__x0008__x000B__x001F__x000D_"
'

test_done
