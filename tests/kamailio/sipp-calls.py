#!/usr/bin/env python3
"""sipp-calls.py MSGFILE... - what SIPp did, from its -trace_msg files.

One line per Call-ID: "callid final invite_epoch answer_epoch end_epoch",
where final is the final response code the caller got for its INVITE,
answer_epoch is when it got the 200 (or -), end_epoch when it sent the BYE
(answered calls), else when it got the final response.  Times are SIPp's own
stamps (the "---- YYYY-MM-DD HH:MM:SS.us" line before each message), local
time of the SIPp process: run it with TZ=UTC.
"""
import calendar
import re
import sys
import time

STAMP = re.compile(r"^-{5,} (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d(?:\.\d+)?)")


def epoch(s):
    s = " ".join(s.split())
    frac = 0.0
    if "." in s:
        s, f = s.split(".", 1)
        frac = float("0." + f)
    return calendar.timegm(time.strptime(s, "%Y-%m-%d %H:%M:%S")) + frac


calls = {}
for path in sys.argv[1:]:
    stamp = None
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    i = 0
    while i < len(lines):
        m = STAMP.match(lines[i])
        if m:
            stamp = epoch(m.group(1))
            i += 1
            continue
        line = lines[i]
        if ("message sent" in line or "message received" in line) and stamp is not None:
            sent = "sent" in line
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            first = lines[j].strip() if j < len(lines) else ""
            k = j
            callid = cseq = None
            while k < len(lines) and lines[k].strip() and not STAMP.match(lines[k]):
                h = lines[k].strip()
                if h.lower().startswith("call-id:"):
                    callid = h.split(":", 1)[1].strip()
                elif h.lower().startswith("cseq:"):
                    cseq = h.split(":", 1)[1].strip()
                k += 1
            if callid:
                c = calls.setdefault(callid, {"final": None, "invite": None, "answer": None, "end": None})
                if sent and first.startswith("INVITE ") and c["invite"] is None:
                    c["invite"] = stamp
                elif sent and first.startswith("BYE "):
                    c["end"] = stamp
                elif not sent and first.startswith("SIP/2.0 ") and cseq and cseq.endswith("INVITE"):
                    code = int(first.split()[1])
                    if code >= 200 and c["final"] is None:
                        c["final"] = code
                        if code == 200:
                            c["answer"] = stamp
                        else:
                            c["end"] = stamp
            i = k
            continue
        i += 1
for callid, c in sorted(calls.items(), key=lambda kv: kv[1]["invite"] or 0):
    def f(v):
        return "-" if v is None else "%.6f" % v
    print(callid, c["final"] if c["final"] else "-", f(c["invite"]), f(c["answer"]), f(c["end"]))
