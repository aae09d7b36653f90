#!/usr/bin/env python3
"""cdr-diff.py [--label NAME] [--max-near-pct P] [--caveat-legs N] ORACLE.csv OURS.csv

Compare rebuilt CDR rows with the Master.csv Asterisk wrote for the same
calls (cdr_csv with loguniqueid, loguserfield and newcdrcolumns: 21 fields)
on every column but sequence (Asterisk's process-wide counter).  Rows are
paired by (uniqueid, dstchannel), then by the fewest differing columns.
Each oracle row is
  identical  every column equal;
  near       only start/answer/end/duration/billsec differ, by at most 1 s:
             a second boundary no AMI data decides (see docs/cdr-engine.md),
             listed with both rows' times as evidence;
  differs    anything else;
  missing    no row of ours;
and rows of ours left unpaired are extra.  Prints the legs that are not
identical, then one line
  <label>: legs=N identical=I near=B differs=D missing=M extra=X
and exits 0 when differs, missing and extra are 0 and near is at most P %
of the legs (default 1.5), 1 otherwise.  --caveat-legs N accepts up to N
legs that differ in lastapp/lastdata only: legs the ETL warned it could
not know (an Originate to an application with no OriginateResponse)."""
import csv
import datetime
import sys

FIELDS = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
          "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield",
          "peeraccount", "linkedid", "sequence"]
JUDGED = FIELDS[:-1]
TIMES = {"start", "answer", "end", "duration", "billsec"}
APP = {"lastapp", "lastdata"}


def load(path):
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = []
        for rec in csv.reader(f):
            if not rec:
                continue
            if len(rec) != len(FIELDS):
                sys.exit(f"{path}: expected {len(FIELDS)} fields, got {len(rec)}: {rec}")
            rows.append(dict(zip(FIELDS, rec)))
        return rows


def epoch(s):
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").timestamp() if s else None


def within_1s(o, r, k):
    if k in ("duration", "billsec"):
        return abs(int(o[k]) - int(r[k])) <= 1
    a, b = epoch(o[k]), epoch(r[k])
    return a is not None and b is not None and abs(a - b) <= 1


def leg(o):
    return f"{o['channel']} -> {o['dstchannel'] or '-'} uid={o['uniqueid']}"


def main():
    args = sys.argv[1:]
    label, max_near, caveats = "cdr", 1.5, 0
    while args and args[0].startswith("--"):
        if args[0] == "--label" and len(args) > 1:
            label, args = args[1], args[2:]
        elif args[0] == "--max-near-pct" and len(args) > 1:
            max_near, args = float(args[1]), args[2:]
        elif args[0] == "--caveat-legs" and len(args) > 1:
            caveats, args = int(args[1]), args[2:]
        else:
            sys.exit(__doc__)
    if len(args) != 2:
        sys.exit(__doc__)
    oracle, ours = load(args[0]), load(args[1])
    pool = {}
    for i, r in enumerate(ours):
        pool.setdefault((r["uniqueid"], r["dstchannel"]), []).append(i)
    used = set()
    identical = near = differs = missing = caveat = 0
    for o in oracle:
        cands = [i for i in pool.get((o["uniqueid"], o["dstchannel"]), []) if i not in used]
        if not cands:
            missing += 1
            print(f"  MISSING  {leg(o)} {o['disposition']} start={o['start']} dur={o['duration']} "
                  f"bill={o['billsec']} app={o['lastapp']}({o['lastdata']})")
            continue
        best = min(cands, key=lambda i: (sum(ours[i][k] != o[k] for k in JUDGED),
                                         abs(int(ours[i]["duration"] or 0) - int(o["duration"] or 0))))
        used.add(best)
        r = ours[best]
        diff = [k for k in JUDGED if r[k] != o[k]]
        what = ", ".join(f"{k} ours={r[k]!r} asterisk={o[k]!r}" for k in diff)
        if not diff:
            identical += 1
        elif set(diff) <= TIMES and all(within_1s(o, r, k) for k in diff):
            near += 1
            print(f"  NEAR     {leg(o)}: {what} (asterisk start {o['start']} answer {o['answer'] or '-'} "
                  f"end {o['end']}; ours start {r['start']} answer {r['answer'] or '-'} end {r['end']})")
        elif set(diff) <= APP and caveat < caveats:
            caveat += 1
            print(f"  CAVEAT   {leg(o)}: {what} (warned by the ETL)")
        else:
            differs += 1
            print(f"  DIFFERS  {leg(o)}: {what}")
    extra = [r for i, r in enumerate(ours) if i not in used]
    for r in extra:
        print(f"  EXTRA    {leg(r)} {r['disposition']} start={r['start']} dur={r['duration']} "
              f"app={r['lastapp']}({r['lastdata']})")
    print(f"{label}: legs={len(oracle)} identical={identical} near={near} caveat={caveat} differs={differs} "
          f"missing={missing} extra={len(extra)}")
    ok = not differs and not missing and not extra and near * 100 <= max_near * max(len(oracle), 1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
