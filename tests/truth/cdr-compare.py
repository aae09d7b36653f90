#!/usr/bin/env python3
"""Compare rebuilt CDR rows with the Master.csv Asterisk wrote for the same calls.

usage: cdr-compare.py [--label NAME] [--verbose] ORACLE.csv OURS.csv

Both files are cdr_csv rows with loguniqueid, loguserfield and newcdrcolumns
(21 fields).  Rows are paired by (uniqueid, dstchannel) and then by start
time.  The fields the truth test judges are compared exactly; a leg whose
only difference is 1 s of duration/billsec is a "boundary" leg (an answer or
end within ~1 ms of a second boundary, which no AMI data can decide: see
cdr-reconstruction.md) and is listed with its evidence.  Prints one summary
line:  <label>: legs=N matched=M boundary=B missing=X extra=Y
and exits 0 when every leg matches exactly or is a boundary leg, 1 otherwise.
"""
import csv
import sys

FIELDS = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
          "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield",
          "peeraccount", "linkedid", "sequence"]
JUDGED = ["src", "dst", "dcontext", "channel", "dstchannel", "disposition", "duration", "billsec",
          "accountcode", "uniqueid", "linkedid"]
ALSO = ["lastapp", "lastdata", "userfield", "peeraccount", "clid", "amaflags"]


def load(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for rec in csv.reader(f):
            if not rec:
                continue
            if len(rec) != len(FIELDS):
                sys.exit(f"{path}: expected {len(FIELDS)} fields, got {len(rec)}: {rec}")
            rows.append(dict(zip(FIELDS, rec)))
    return rows


def main():
    args = sys.argv[1:]
    label, verbose = "cdr", False
    while args and args[0].startswith("--"):
        if args[0] == "--label":
            label = args[1]
            args = args[2:]
        elif args[0] == "--verbose":
            verbose = True
            args = args[1:]
        else:
            sys.exit(__doc__)
    if len(args) != 2:
        sys.exit(__doc__)
    oracle, ours = load(args[0]), load(args[1])
    pool = {}
    for i, r in enumerate(ours):
        pool.setdefault((r["uniqueid"], r["dstchannel"]), []).append(i)
    used = set()
    matched = boundary = missing = 0
    bad = []
    bounds = []
    for o in oracle:
        cands = [i for i in pool.get((o["uniqueid"], o["dstchannel"]), []) if i not in used]
        if not cands:
            missing += 1
            bad.append(("missing", o, None, []))
            continue
        # closest duration first (rows of one pair differ by when they started)
        best = min(cands, key=lambda i: (sum(ours[i][k] != o[k] for k in JUDGED),
                                         abs(int(ours[i]["duration"]) - int(o["duration"]))))
        used.add(best)
        r = ours[best]
        diff = [k for k in JUDGED if r[k] != o[k]]
        also = [k for k in ALSO if r[k] != o[k]]
        if not diff:
            matched += 1
            if also and verbose:
                print(f"  note {o['channel']} -> {o['dstchannel']}: " +
                      ", ".join(f"{k} ours={r[k]!r} asterisk={o[k]!r}" for k in also))
        elif set(diff) <= {"duration", "billsec"} and all(abs(int(r[k]) - int(o[k])) == 1 for k in diff):
            boundary += 1
            bounds.append((o, r, diff))
        else:
            bad.append(("differs", o, r, diff))
    extra = [r for i, r in enumerate(ours) if i not in used]
    for kind, o, r, diff in bad:
        if kind == "missing":
            print(f"  MISSING  {o['channel']} -> {o['dstchannel'] or '-'} {o['disposition']} "
                  f"dur={o['duration']} bill={o['billsec']} app={o['lastapp']} uid={o['uniqueid']}")
        else:
            print(f"  DIFFERS  {o['channel']} -> {o['dstchannel'] or '-'} uid={o['uniqueid']}: " +
                  ", ".join(f"{k} ours={r[k]!r} asterisk={o[k]!r}" for k in diff))
    for r in extra:
        print(f"  EXTRA    {r['channel']} -> {r['dstchannel'] or '-'} {r['disposition']} "
              f"dur={r['duration']} bill={r['billsec']} app={r['lastapp']} uid={r['uniqueid']}")
    for o, r, diff in bounds:
        print(f"  BOUNDARY {o['channel']} -> {o['dstchannel'] or '-'} uid={o['uniqueid']}: " +
              ", ".join(f"{k} ours={r[k]} asterisk={o[k]}" for k in diff) +
              f" (start {r['start']}, answer {r['answer'] or '-'}, end {r['end']})")
    print(f"{label}: legs={len(oracle)} matched={matched} boundary={boundary} missing={missing} "
          f"extra={len(extra)} differs={len(bad) - missing}")
    sys.exit(0 if not bad and not extra else 1)


if __name__ == "__main__":
    main()
