#!/usr/bin/env python3
"""Write a large realistic AMI byte stream to stdout for the ETL benchmark:
the real captures' Event frames, repeated with every uniqueid/linkedid
renumbered per repetition (so each repetition is a distinct set of calls).

  gen-stream.py --events N CAPTURE...   (plain or .xz)
"""
import argparse
import lzma
import sys


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
    ap.add_argument("captures", nargs="+")
    a = ap.parse_args()
    base = []
    for c in a.captures:
        base.extend(events_of(c))
    blob = b"".join(base)
    out = sys.stdout.buffer
    out.write(b"Asterisk Call Manager/9.0.0\r\n")
    written, rep = 0, 0
    while written < a.events:
        # "lab-1795288510.8" -> "r0001-1795288510.8": new ids for every repetition
        out.write(blob.replace(b"lab-", b"r%04d-" % rep))
        written += len(base)
        rep += 1
    out.flush()
    print(f"gen-stream: {written} events in {rep} repetitions", file=sys.stderr)


if __name__ == "__main__":
    main()
