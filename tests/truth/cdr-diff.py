#!/usr/bin/env python3
"""cdr-diff.py [--label NAME] ORACLE.csv OURS.csv: rows paired by (uniqueid, dstchannel), judged on every
Master.csv column but sequence: identical, near (only times off by <= 1 s), differs, missing, extra."""
import csv, sys, datetime
FIELDS = ["accountcode","src","dst","dcontext","clid","channel","dstchannel","lastapp","lastdata","start","answer","end","duration","billsec","disposition","amaflags","uniqueid","userfield","peeraccount","linkedid","sequence"]
ALL = FIELDS[:-1]
TIME = {"start","answer","end","duration","billsec"}
def load(p):
    with open(p, newline="", encoding="utf-8", errors="replace") as f:
        return [dict(zip(FIELDS, r)) for r in csv.reader(f) if r]
def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").timestamp() if s else None
def near(o, r, k):
    if k in ("duration","billsec"): return abs(int(o[k]) - int(r[k])) <= 1
    a, b = ts(o[k]), ts(r[k])
    return a is not None and b is not None and abs(a-b) <= 1
args = sys.argv[1:]; label="x"; verbose=False
while args[0].startswith("--"):
    if args[0]=="--label": label=args[1]; args=args[2:]
    elif args[0]=="--verbose": verbose=True; args=args[1:]
oracle, ours = load(args[0]), load(args[1])
pool = {}
for i, r in enumerate(ours): pool.setdefault((r["uniqueid"], r["dstchannel"]), []).append(i)
used=set(); ident=nr=miss=0; diffs=[]
for o in oracle:
    c=[i for i in pool.get((o["uniqueid"],o["dstchannel"]),[]) if i not in used]
    if not c:
        miss+=1; print(f"  MISSING {o['channel']} -> {o['dstchannel'] or '-'} {o['disposition']} {o['start']} dur={o['duration']} bill={o['billsec']} app={o['lastapp']}({o['lastdata']}) uf={o['userfield']} uid={o['uniqueid']}"); continue
    b=min(c,key=lambda i:(sum(ours[i][k]!=o[k] for k in ALL), abs(int(ours[i]["duration"] or 0)-int(o["duration"]))))
    used.add(b); r=ours[b]
    d=[k for k in ALL if r[k]!=o[k]]
    if not d: ident+=1
    elif set(d)<=TIME and all(near(o,r,k) for k in d):
        nr+=1; print(f"  NEAR {o['channel']} -> {o['dstchannel'] or '-'} uid={o['uniqueid']}: "+", ".join(f"{k} ours={r[k]} ast={o[k]}" for k in d))
    else:
        diffs.append(1); print(f"  DIFFERS {o['channel']} -> {o['dstchannel'] or '-'} uid={o['uniqueid']}: "+", ".join(f"{k} ours={r[k]!r} ast={o[k]!r}" for k in d))
extra=[r for i,r in enumerate(ours) if i not in used]
for r in extra: print(f"  EXTRA {r['channel']} -> {r['dstchannel'] or '-'} {r['disposition']} {r['start']} dur={r['duration']} app={r['lastapp']}({r['lastdata']}) uid={r['uniqueid']}")
print(f"{label}: legs={len(oracle)} identical={ident} near={nr} differs={len(diffs)} missing={miss} extra={len(extra)}")
