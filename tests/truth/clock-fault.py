#!/usr/bin/env python3
"""clock-fault.py IN OUT MODE [N|EVENT]

Copy a raw AMI capture (plain or .xz), without its "Event: Cdr" messages,
with hostile Timestamp headers, to test what cdrflow does with a PBX clock
that misbehaves.  The event changed is the N-th with a Timestamp, or the
middle one named EVENT (e.g. BridgeEnter), or the middle one.  MODE:

  future    the event is stamped one year ahead (a clock that jumped)
  backwards the event is stamped one hour back
  negative  the event is stamped -1234.5
  garbage   the event's Timestamp is "not-a-time"
  missing   the event has no Timestamp header
  step      from event N on, every Timestamp is one hour ahead (a clock set)
  stepback  from event N on, every Timestamp is one hour back (a clock set back)
  every10   every tenth Timestamp is garbage
  none      every Timestamp header is removed (timestampevents = no)

Prints the changed event's Event and Uniqueid on stderr."""
import lzma
import re
import sys

MODES = ("future", "backwards", "negative", "garbage", "missing", "step", "stepback", "every10", "none")


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[3] not in MODES:
        sys.exit(__doc__)
    src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    opener = lzma.open if src.endswith(".xz") else open
    with opener(src, "rb") as f:
        data = f.read()
    chunks = [c for c in re.split(rb"(?<=\r\n\r\n)", data) if not c.startswith(b"Event: Cdr\r\n")]
    stamped = [i for i, c in enumerate(chunks) if c.startswith(b"Event: ") and b"\r\nTimestamp: " in c]
    k = len(stamped) // 2
    if len(sys.argv) == 5 and sys.argv[4].isdigit():
        k = int(sys.argv[4])
    elif len(sys.argv) == 5:
        named = [j for j, i in enumerate(stamped) if chunks[i].startswith(b"Event: %s\r\n" % sys.argv[4].encode())]
        k = named[len(named) // 2]
    target = stamped[k]
    ts = re.compile(rb"\r\nTimestamp: ([^\r]*)")

    def shift(c, delta):
        return ts.sub(lambda m: b"\r\nTimestamp: %.6f" % (float(m.group(1)) + delta), c, count=1)

    for j, i in enumerate(stamped):
        c = chunks[i]
        if mode == "none":
            c = ts.sub(b"", c, count=1)
        elif mode == "step" and j >= k:
            c = shift(c, 3600)
        elif mode == "stepback" and j >= k:
            c = shift(c, -3600)
        elif mode == "every10":
            if j % 10 == 9:
                c = ts.sub(b"\r\nTimestamp: ???", c, count=1)
        elif i == target:
            if mode == "future":
                c = shift(c, 365 * 86400)
            elif mode == "backwards":
                c = shift(c, -3600)
            elif mode == "negative":
                c = ts.sub(b"\r\nTimestamp: -1234.500000", c, count=1)
            elif mode == "garbage":
                c = ts.sub(b"\r\nTimestamp: not-a-time", c, count=1)
            elif mode == "missing":
                c = ts.sub(b"", c, count=1)
        chunks[i] = c
    t = chunks[target]
    ev = re.search(rb"^Event: ([^\r]*)", t)
    uid = re.search(rb"\r\nUniqueid: ([^\r]*)", t, re.I)
    sys.stderr.write("%s %s %s\n" % (mode, ev.group(1).decode() if ev else "?", uid.group(1).decode() if uid else "-"))
    with open(dst, "wb") as f:
        f.write(b"".join(chunks))


if __name__ == "__main__":
    main()
