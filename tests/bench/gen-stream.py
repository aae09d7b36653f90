#!/usr/bin/env python3
"""Write a large realistic AMI byte stream to stdout for the ETL benchmark:
the real captures' Event frames, repeated with every uniqueid/linkedid
renumbered per repetition (so each repetition is a distinct set of calls)
and its Timestamp headers moved on by the captures' span (so each comes
after the one before).

  gen-stream.py --events N [--first-rep K] CAPTURE...   (plain or .xz)

--first-rep K starts at repetition K: the calls that follow a stream of K
repetitions (the same PBX later), for a second load into a warehouse that
holds the first.
"""
import argparse
import lzma
import re
import sys

TS = re.compile(rb"(?<=\r\nTimestamp: )[0-9]+\.[0-9]+")


def events_of(path):
    data = open(path, "rb").read()
    if data[:6] == b"\xfd7zXZ\x00":
        data = lzma.decompress(data)
    out = []
    for msg in data.split(b"\r\n\r\n"):
        if msg.startswith(b"Event: "):
            out.append(msg + b"\r\n\r\n")
        elif b"\r\nEvent: " in msg[:200] and msg.startswith(b"Asterisk Call Manager"):
            out.append(msg.split(b"\r\n", 1)[1] + b"\r\n\r\n")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--first-rep", type=int, default=0)
    ap.add_argument("captures", nargs="+")
    a = ap.parse_args()
    # the captures in the order they were recorded (their first Timestamp):
    # one clock moving forward, not back at every capture
    caps = [events_of(c) for c in a.captures]
    def first_stamp(evs):
        for e in evs:
            m = TS.search(b"\r\n" + e)
            if m:
                return float(m.group(0))
        return 0.0
    caps.sort(key=first_stamp)
    base = [e for evs in caps for e in evs]
    blob = b"".join(base)
    # every repetition happens after the one before, as a PBX's traffic
    # does: its Timestamp headers move on by the span of the captures (a
    # stream whose clock went back at every repetition would be a clock
    # fault, and time-windowed analytics would see every repetition at once)
    stamps = [float(m) for m in TS.findall(blob)]
    span = (max(stamps) - min(stamps) + 60.0) if stamps else 0.0
    out = sys.stdout.buffer
    out.write(b"Asterisk Call Manager/9.0.0\r\n")
    written, rep = 0, a.first_rep
    while written < a.events:
        # "lab-1795288510.8" -> "r0001-1795288510.8": new ids for every repetition
        shift = rep * span
        chunk = blob.replace(b"lab-", b"r%04d-" % rep)
        if shift:
            chunk = TS.sub(lambda m: b"%.6f" % (float(m.group(0)) + shift), chunk)
        out.write(chunk)
        written += len(base)
        rep += 1
    out.flush()
    print(f"gen-stream: {written} events in {rep - a.first_rep} repetitions", file=sys.stderr)


if __name__ == "__main__":
    main()
