#!/usr/bin/env python3
"""metric-agree.py DOC QDIR RDIR: the same metric gives the same figure.

DOC is docs/metrics.md; its "## The metric dictionary" table names, per
metric, the `cdrflow-query stats` column and the report cells
(`template/section/column`) that show it.  QDIR holds the query stats CSVs:
day.csv (--by day, one day), tenant.csv (--by tenant), day-TENANT.csv (--by
day --tenant TENANT).  RDIR holds the report CSVs of that day: all/ (no
parameter) and TENANT/ (--param tenant=TENANT), named
TEMPLATE-...-SECTION.csv.

A section of one row without a tenant column (KPIs) must equal the day row
(all/) and each tenant's day row (TENANT/).  A section with a tenant
column must, summed per tenant, equal the --by tenant row; money summed
over several rounded rows may differ by half a cent per row.  A cell
marked "(per ...)" is keyed by something stats has not: skipped.  Prints
one line per comparison; exit 1 on the first difference.
"""
import csv
import glob
import os
import re
import sys
from decimal import Decimal


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def dictionary(doc):
    rows, inside = [], False
    for line in open(doc, encoding="utf-8"):
        if line.startswith("## "):
            inside = line.strip() == "## The metric dictionary"
            continue
        if not inside or not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != 4 or cells[0] == "metric":
            continue
        qcol = re.findall(r"`([a-z_]+)`", cells[2])
        cols = [(m.group(1), m.group(2) is not None)
                for m in re.finditer(r"`([^`/]+/[^`/]+/[^`]+)`( \(per [^)]*\))?", cells[3])]
        rows.append((cells[0], qcol[0] if qcol else None, cols))
    if not rows:
        fail("no metric dictionary table in " + doc)
    return rows


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def num(text):
    return Decimal(text) if text not in ("", None) else None


def section_csv(rdir, template, section):
    hits = glob.glob(os.path.join(rdir, template + "-*-" + section + ".csv"))
    if len(hits) != 1:
        fail("%s: want one CSV of %s/%s, found %d" % (rdir, template, section, len(hits)))
    return read_csv(hits[0])


def tenant_only(rdir, day, qdir, tenants, metric, qcol, template, section, col):
    for t in tenants:
        qrow = read_csv(os.path.join(qdir, "day-%s.csv" % t))[0]
        rrows = section_csv(os.path.join(rdir, t), template, section)
        if len(rrows) != 1:
            fail("%s: %s/%s/%s of %s has %d rows, want 1" % (metric, template, section, col, t, len(rrows)))
        got, want = num(rrows[0][col]), num(qrow[qcol])
        if got != want:
            fail("%s (%s): %s/%s/%s = %s, query stats %s = %s" % (metric, t, template, section, col, got, qcol, want))
    print("ok %s: %s/%s/%s = stats --by day %s (%d tenants; the template is per tenant)"
          % (metric, template, section, col, qcol, len(tenants)))


def main(argv):
    if len(argv) != 4:
        fail(__doc__)
    doc, qdir, rdir = argv[1:]
    day = read_csv(os.path.join(qdir, "day.csv"))
    by_tenant = {r["tenant"]: r for r in read_csv(os.path.join(qdir, "tenant.csv"))}
    tenants = [t for t in sorted(by_tenant) if t and os.path.isdir(os.path.join(rdir, t))]
    if len(day) != 1 or not tenants:
        fail("want one day row and at least one tenant with its reports")
    checked = 0
    for metric, qcol, cells in dictionary(doc):
        if qcol is None:
            continue
        for cell, per_other in cells:
            if per_other:
                print("skip %s %s (keyed by what stats has not)" % (metric, cell))
                continue
            template, section, col = cell.split("/", 2)
            if not glob.glob(os.path.join(rdir, "all", template + "-*-" + section + ".csv")):
                # a template for one tenant only (tenant-statement): its tenants' runs
                tenant_only(rdir, day, qdir, tenants, metric, qcol, template, section, col)
                checked += len(tenants)
                continue
            rows = section_csv(os.path.join(rdir, "all"), template, section)
            if rows and col not in rows[0]:
                fail("%s: %s has no column %r" % (metric, cell, col))
            if rows and "tenant" in rows[0]:
                sums, counts = {}, {}
                for r in rows:
                    t = "" if r["tenant"] == "(none)" else r["tenant"]
                    v = num(r[col])
                    sums[t] = sums.get(t, Decimal(0)) + (v or 0)
                    counts[t] = counts.get(t, 0) + 1
                for t, v in sums.items():
                    want = num(by_tenant.get(t, {}).get(qcol)) or Decimal(0)
                    slack = Decimal("0.005") * counts[t] if counts[t] > 1 and "." in str(v) else 0
                    if abs(v - want) > slack:
                        fail("%s, tenant %r: %s = %s, query stats %s = %s" % (metric, t, cell, v, qcol, want))
                    checked += 1
                print("ok %s: %s = stats --by tenant %s" % (metric, cell, qcol))
                continue
            pairs = [("all", day[0])]
            for t in tenants:
                pairs.append((t, read_csv(os.path.join(qdir, "day-%s.csv" % t))[0]))
            for run, qrow in pairs:
                rrows = section_csv(os.path.join(rdir, run), template, section)
                if len(rrows) != 1:
                    fail("%s: %s has %d rows, want 1" % (metric, cell, len(rrows)))
                got, want = num(rrows[0][col]), num(qrow[qcol])
                if got != want:
                    fail("%s (%s): %s = %s, query stats %s = %s" % (metric, run, cell, got, qcol, want))
                checked += 1
            print("ok %s: %s = stats --by day %s (all and %d tenants)" % (metric, cell, qcol, len(tenants)))
    if checked == 0:
        fail("nothing compared")
    print("%d figures agree" % checked)


if __name__ == "__main__":
    main(sys.argv)
