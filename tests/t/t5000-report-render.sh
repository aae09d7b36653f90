#!/usr/bin/env bash
# shellcheck disable=SC2016  # test bodies are single-quoted on purpose: eval'ed later
test_description='report writers: PDF, CSV and XLSX from one dataset, and they agree'
. "$(dirname "$0")/../lib/test-lib.sh"
DEMO=$CDRFLOW_BUILD/tests/report-render-demo
[ -x "$DEMO" ] || bail_out "no $DEMO (run make $DEMO)"
for t in pdfinfo pdftotext pdftoppm pdffonts unzip; do
	command -v $t >/dev/null 2>&1 || skip_all "$t is not installed (poppler-utils, unzip)"
done
command -v "$PYTHON" >/dev/null 2>&1 || skip_all "$PYTHON is not installed"

# kv FILE KEY: the value of KEY=... in the demo's output
kv() { sed -n "s/^$2=//p" "$1"; }

test_expect_success 'the demo renders all three formats from 500 rows' '
	mkdir a4 &&
	"$DEMO" --rows 500 a4 >a4.out 2>err &&
	test ! -s err &&
	test -s a4/report.pdf && test -s a4/report.csv && test -s a4/report.xlsx &&
	test "$(kv a4.out rows)" = 500
'

test_expect_success 'PDF: A4, page count in the footer matches the file, every page is not blank' '
	pdfinfo a4/report.pdf >info &&
	grep -q "Page size: *595.276 x 841.89 pts (A4)" info &&
	pages=$(sed -n "s/^Pages: *//p" info) &&
	test "$pages" -gt 2 &&
	pdftotext -layout a4/report.pdf a4.txt &&
	test "$(grep -c "page [0-9]* / $pages\$" a4.txt)" = "$pages" &&
	grep -q "page $pages / $pages" a4.txt &&
	pdftoppm -r 30 -gray a4/report.pdf pg &&
	test "$(ls pg-*.pgm | wc -l)" = "$pages" &&
	"$PYTHON" - pg-*.pgm <<-\PY
	import sys
	for f in sys.argv[1:]:
	    data = open(f, "rb").read()
	    # binary PGM: P5 <w> <h> <max> then w*h bytes
	    parts = data.split(None, 4)
	    w, h = int(parts[1]), int(parts[2])
	    px = parts[4][-w * h:]
	    dark = sum(1 for b in px if b < 200)
	    print(f, w, h, dark)
	    if dark < 200:
	        sys.exit(f + ": looks blank")
	PY
'

test_expect_success 'PDF: DejaVu Sans is embedded; vector text (pdftotext finds it)' '
	pdffonts a4/report.pdf >fonts &&
	grep -q "DejaVuSans-Bold .* yes yes" fonts &&
	grep -q "DejaVuSans .* yes yes" fonts &&
	! grep -v -e DejaVu -e "^name" -e "^---" fonts &&
	grep -q "Calls per hour" a4.txt &&
	grep -q "Calls by disposition" a4.txt &&
	grep -q "Calls (continued)" a4.txt &&
	grep -q "ANSWERED 381 (76.2%)" a4.txt
'

test_expect_success 'PDF: Letter paper' '
	mkdir letter &&
	"$DEMO" --rows 500 --paper letter --formats pdf letter >letter.out &&
	pdfinfo letter/report.pdf >linfo &&
	grep -q "Page size: *612 x 792 pts (letter)" linfo
'

test_expect_success 'CSV: RFC 4180 with CRLF, typed cells, injection guarded' '
	"$PYTHON" - a4/report.csv <<-\PY
	import csv, sys
	raw = open(sys.argv[1], "rb").read()
	assert raw.endswith(b"\r\n"), "no final CRLF"
	# every LF that ends a record is preceded by CR (the one quoted bare LF aside)
	rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
	assert rows[0] == ["start", "src", "dst", "disposition", "duration", "billsec", "cost", "mos"], rows[0]
	assert len(rows) == 502, len(rows)
	dst = [r[2] for r in rows[1:]]
	assert "\x27=HYPERLINK(\"http://evil.invalid\",\"x\")" in dst
	assert "\x27+49 30 1234567" in dst and "\x27@SUM(A1:A9)" in dst and "\x27-minus-start" in dst
	assert "\x27\ttab-start" in dst
	assert "comma, \"quoted\"\nsecond line" in dst
	assert "Zürich ☎ Straße" in dst
	assert "+447700900123" in dst and "-42" in dst, "a signed number was guarded"
	import re
	assert not any(d[:1] in "=+-@\t\r" and d and not re.fullmatch(r"[+-][0-9]+", d) for d in dst), "an unguarded cell"
	# NULL mos is an empty unquoted field
	assert b",3.08\r\n" in raw and b",\r\n" in raw
	PY
'

test_expect_success 'XLSX: a valid zip with typed, frozen, filtered sheets and four native charts' '
	unzip -tq a4/report.xlsx &&
	unzip -p a4/report.xlsx xl/workbook.xml >wb.xml &&
	grep -q "name=\"Summary\"" wb.xml && grep -q "name=\"Calls\"" wb.xml &&
	unzip -p a4/report.xlsx xl/worksheets/sheet2.xml >calls.xml &&
	grep -q "state=\"frozen\"" calls.xml &&
	grep -q "<autoFilter ref=\"A1:H502\"/>" calls.xml &&
	grep -q "<cols><col min=\"1\"" calls.xml &&
	unzip -p a4/report.xlsx xl/styles.xml >styles.xml &&
	grep -q "formatCode=\"yyyy-mm-dd hh:mm:ss\"" styles.xml &&
	grep -q "formatCode=\"\[h\]:mm:ss\"" styles.xml &&
	test "$(unzip -l a4/report.xlsx | grep -c "xl/charts/chart[0-9]*.xml")" = 4 &&
	unzip -p a4/report.xlsx xl/charts/chart1.xml | grep -q "<c:barDir val=\"col\"/>" &&
	unzip -p a4/report.xlsx xl/charts/chart2.xml | grep -q "<c:grouping val=\"stacked\"/>" &&
	unzip -p a4/report.xlsx xl/charts/chart3.xml | grep -q "<c:lineChart>" &&
	unzip -p a4/report.xlsx xl/charts/chart4.xml | grep -q "<c:doughnutChart>" &&
	unzip -p a4/report.xlsx xl/sharedStrings.xml >ss.xml &&
	grep -q "<t>=HYPERLINK" ss.xml && ! grep -q "<t>&apos;=\|<t>'"'"'=" ss.xml &&
	! grep -q "<f>" calls.xml
'

# The figures, read back from each file by its own means.
cat >figures.py <<-\PY
import csv, re, subprocess, sys, zipfile
which, path = sys.argv[1], sys.argv[2]
if which == "csv":
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    body, total = rows[1:-1], rows[-1]
    assert total[1] == "TOTAL"
    print("rows", len(body))
    print("billsec.sum", sum(int(r[5]) for r in body))
    print("billsec.total", total[5])
    print("cost.total", total[6])
elif which == "xlsx":
    z = zipfile.ZipFile(path)
    ss = re.findall(r"<si><t[^>]*>(.*?)</t></si>", z.read("xl/sharedStrings.xml").decode(), re.S) \
        if "xl/sharedStrings.xml" in z.namelist() else []
    def cells(sheet):
        x = z.read(sheet).decode()
        out = {}
        for ref, attrs, body in re.findall(r"<c r=\"([A-Z]+[0-9]+)\"([^>]*?)(?:/>|>(.*?)</c>)", x, re.S):
            v = re.search(r"<v>(.*?)</v>", body or "")
            t = re.search(r"<t[^>]*>(.*?)</t>", body or "")
            if 't="s"' in attrs and v: out[ref] = ss[int(v.group(1))]
            elif t: out[ref] = t.group(1)
            elif v: out[ref] = v.group(1)
        return out
    s1, s2 = cells("xl/worksheets/sheet1.xml"), cells("xl/worksheets/sheet2.xml")
    last = max(int(re.sub("[A-Z]", "", k)) for k in s2)
    assert s2["B%d" % last] == "TOTAL"
    print("rows", last - 2)
    print("billsec.sum", sum(int(float(s2["F%d" % r])) for r in range(2, last)))
    print("billsec.total", s2["F%d" % last])
    print("cost.total", s2["G%d" % last])
    kpi = {s1["A%d" % r]: s1.get("B%d" % r) for r in range(1, 12) if "A%d" % r in s1}
    print("kpi.Calls", kpi["Calls"])
    print("kpi.Cost", kpi["Cost"])
    print("kpi.Billed time.days", kpi["Billed time"])
PY

test_expect_success 'consistency: the totals are the same figures in CSV, XLSX and PDF' '
	"$PYTHON" figures.py csv a4/report.csv >csv.fig &&
	"$PYTHON" figures.py xlsx a4/report.xlsx >xlsx.fig &&
	cat csv.fig xlsx.fig &&
	grep "^rows\|^billsec\|^cost" xlsx.fig >xlsx.common &&
	test_cmp csv.fig xlsx.common &&
	test "$(sed -n "s/^cost.total //p" csv.fig)" = "$(kv a4.out kpi.Cost)" &&
	test "$(sed -n "s/^billsec.sum //p" csv.fig)" = "$(kv a4.out "kpi.Billed time")" &&
	test "$(sed -n "s/^kpi.Cost //p" xlsx.fig)" = "$(kv a4.out kpi.Cost)" &&
	test "$(sed -n "s/^kpi.Calls //p" xlsx.fig)" = 500 &&
	"$PYTHON" -c "import sys; d = float(sys.argv[1]); assert round(d * 86400) == int(sys.argv[2]), (d, sys.argv[2])" \
		"$(sed -n "s/^kpi.Billed time.days //p" xlsx.fig)" "$(kv a4.out "kpi.Billed time")" &&
	# the PDF shows the KPI tiles and the TOTAL row with the same figures
	cost=$(kv a4.out kpi.Cost) &&
	grep -q "^ *500  .* 381  .* $(kv a4.out "display.Billed time")  .* $cost\$" a4.txt &&
	grep -q "TOTAL  .* $(kv a4.out "kpi.Billed time")  *$cost\$" a4.txt &&
	grep -q "$(kv a4.out "display.Billed time")" a4.txt &&
	grep -q "$(kv a4.out "display.Answer rate")" a4.txt
'

test_expect_success 'XLSX constant_memory: the same cells' '
	mkdir cm &&
	"$DEMO" --rows 500 --constant-memory --formats xlsx cm >cm.out &&
	"$PYTHON" figures.py xlsx cm/report.xlsx >cm.fig &&
	test_cmp xlsx.fig cm.fig
'

test_expect_success 'a bad option is a usage error' '
	test_exit_code 64 "$DEMO" --paper a3 x 2>err &&
	grep -q "a4 or letter" err
'

test_done
