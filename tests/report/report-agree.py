#!/usr/bin/env python3
"""report-agree.py - check that cdrflow-report's PDF and XLSX show the figures
of its CSV files (tests/t/t5200-report-run.sh).

  report-agree.py xlsx-table XLSX SHEET_NO CSV   sheet SHEET_NO (1-based) = the CSV
  report-agree.py xlsx-kpis XLSX CSV             Summary KPI rows = the one-row CSV
  report-agree.py pdf-rows PDF_TEXT CSV [--durations a,b] [--percents c,d]
                                                 every CSV row is a line of the PDF
  report-agree.py csv-get CSV KEYCOL KEYVAL COL  print one cell (KEYCOL may be "-": first row)

Headers: the CSV has the column names, the XLSX the template's labels
(columns: label:, docs/report.md); a header agrees when the XLSX shows the
label the template in $CDRFLOW_TEMPLATES (the CSV file's name starts with
the template's) gives that name.

XLSX numbers are compared by type as docs/report-formats.md defines them:
durations are days (x 86400 = the CSV seconds), percents ratios (x 100 =
the CSV points), timestamps Excel serial dates (= the CSV time).  Exit 1
with the first difference on stderr.
"""
import csv
import datetime
import glob
import os
import re
import sys
import zipfile
import xml.etree.ElementTree as ET

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(1)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def col_index(ref):
    n = 0
    for ch in re.match(r"[A-Z]+", ref).group(0):
        n = n * 26 + ord(ch) - 64
    return n - 1


def sheet_rows(path, sheet_no):
    z = zipfile.ZipFile(path)
    shared = []
    if "xl/sharedStrings.xml" in z.namelist():
        for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", NS):
            shared.append(xstring("".join(t.text or "" for t in si.iter("{%s}t" % NS["m"]))))
    root = ET.fromstring(z.read("xl/worksheets/sheet%d.xml" % sheet_no))
    rows = {}
    for r in root.iter("{%s}row" % NS["m"]):
        cells = {}
        for c in r.findall("m:c", NS):
            t = c.get("t")
            v = c.find("m:v", NS)
            if t == "s":
                val = shared[int(v.text)]
            elif t == "inlineStr":
                val = xstring("".join(x.text or "" for x in c.iter("{%s}t" % NS["m"])))
            elif v is None:
                val = None
            else:
                val = float(v.text)
            cells[col_index(c.get("r"))] = val
        rows[int(r.get("r"))] = cells
    return rows


def xstring(s):
    """Decode ECMA-376 ST_Xstring escapes (_xHHHH_) as a spreadsheet does."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), s)


def agree(csv_cell, x):
    """Does XLSX value x stand for the CSV text csv_cell?"""
    if csv_cell == "":
        return x is None or x == ""
    if isinstance(x, str):
        # XLSX keeps text intact; the CSV guards a would-be formula with "'"
        return x == csv_cell or ("'" + x == csv_cell and x[:1] in "=+-@\t\r")
    if x is None:
        return False
    if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", csv_cell):
        t = datetime.datetime(1899, 12, 30) + datetime.timedelta(days=x)
        return t.replace(microsecond=0) == datetime.datetime.strptime(csv_cell, "%Y-%m-%d %H:%M:%S") or \
            (t + datetime.timedelta(milliseconds=1)).replace(microsecond=0) == \
            datetime.datetime.strptime(csv_cell, "%Y-%m-%d %H:%M:%S")
    try:
        c = float(csv_cell)
    except ValueError:
        return False
    if abs(x - c) < 1e-9:
        return True
    if abs(x * 86400 - c) < 1e-6:  # duration
        return True
    decimals = len(csv_cell.split(".")[1]) if "." in csv_cell else 0
    return abs(x * 100 - c) <= 0.5 * 10 ** -decimals + 1e-9  # percent, rounded as the CSV shows it


def labels_of(csv_path):
    """{column name: label} of every section of the CSV's template."""
    d = os.environ.get("CDRFLOW_TEMPLATES")
    if not d:
        return {}
    import yaml
    base = os.path.basename(csv_path)
    names = sorted((os.path.basename(p)[:-5] for p in glob.glob(os.path.join(d, "*.yaml"))), key=len, reverse=True)
    for n in names:
        if base.startswith(n + "-"):
            t = yaml.safe_load(open(os.path.join(d, n + ".yaml"), encoding="utf-8"))
            out = {}
            for s in t.get("sections", []):
                for c in s.get("columns", []) or []:
                    if c.get("label"):
                        out[str(c["name"])] = c["label"]
            return out
    return {}


def xlsx_table(xlsx, sheet_no, csv_path):
    rows = sheet_rows(xlsx, int(sheet_no))
    data = read_csv(csv_path)
    if len(rows) != len(data):
        fail("%s sheet %s has %d rows, %s has %d" % (xlsx, sheet_no, len(rows), csv_path, len(data)))
    for i, crow in enumerate(data):
        xrow = rows.get(i + 1)
        if xrow is None:
            fail("sheet %s: no row %d" % (sheet_no, i + 1))
        for j, cell in enumerate(crow):
            if i == 0 and xrow.get(j) == labels_of(csv_path).get(cell):
                continue
            if not agree(cell, xrow.get(j)):
                fail("sheet %s row %d col %d: xlsx %r, csv %r" % (sheet_no, i + 1, j + 1, xrow.get(j), cell))
    print("xlsx sheet %s = %s (%d rows)" % (sheet_no, csv_path, len(data) - 1))


def xlsx_kpis(xlsx, csv_path):
    rows = sheet_rows(xlsx, 1)
    labels, values = read_csv(csv_path)[:2]
    kv = {}
    for r in rows.values():
        if isinstance(r.get(0), str) and 1 in r:
            kv.setdefault(r[0], r[1])
    lmap = labels_of(csv_path)
    for lab, val in zip(labels, values):
        lab = lab if lab in kv else lmap.get(lab, lab)
        if lab not in kv:
            fail("Summary has no KPI %r" % lab)
        if not agree(val, kv[lab]):
            fail("KPI %r: xlsx %r, csv %r" % (lab, kv[lab], val))
    print("xlsx KPIs = %s (%d)" % (csv_path, len(labels)))


def display(cell, kind):
    if cell == "":
        return []
    if kind == "duration":
        s = int(cell)
        return ["%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)]
    if kind == "percent":
        return [cell + "%"]
    return cell.split()


def pdf_rows(text_path, csv_path, opts):
    durations = set(opts.get("--durations", "").split(",")) - {""}
    percents = set(opts.get("--percents", "").split(",")) - {""}
    lines = [l.split() for l in open(text_path, encoding="utf-8").read().splitlines()]
    data = read_csv(csv_path)
    head = data[0]
    for row in data[1:]:
        want = []
        for h, cell in zip(head, row):
            want += display(cell, "duration" if h in durations else "percent" if h in percents else "")
        if not any(" ".join(want) in " ".join(l) for l in lines):
            fail("PDF has no line with %r (row of %s)" % (" ".join(want), csv_path))
    print("pdf shows the %d rows of %s" % (len(data) - 1, csv_path))


def csv_get(csv_path, keycol, keyval, col):
    data = read_csv(csv_path)
    head = data[0]
    for row in data[1:]:
        if keycol == "-" or row[head.index(keycol)] == keyval:
            print(row[head.index(col)])
            return
    fail("%s: no row with %s = %s" % (csv_path, keycol, keyval))


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "xlsx-table":
        xlsx_table(*args)
    elif cmd == "xlsx-kpis":
        xlsx_kpis(*args)
    elif cmd == "pdf-rows":
        opts = dict(zip(args[2::2], args[3::2]))
        pdf_rows(args[0], args[1], opts)
    elif cmd == "csv-get":
        csv_get(*args)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
