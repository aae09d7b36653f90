#!/usr/bin/env python3
"""rtcp-digest.py CAPTURE

An independent reading of the RTCPSent/RTCPReceived events of a raw AMI
capture (plain or .xz), for t4100: one line per (uniqueid, direction)
  uniqueid direction blocks mean_iajitter_ts mean_fraction_lost_pct sr_clock_hz
where direction is rx for RTCPSent report blocks and tx for RTCPReceived
ones, and sr_clock_hz is the RTP clock the sender reports of that event type
imply (delta SentRTP / delta SentNTP between the first and last SR; 0 if
fewer than two)."""
import lzma
import sys
from collections import defaultdict


def messages(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    for msg in data.split("\r\n\r\n"):
        fields = {}
        for line in msg.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep and key not in fields:
                fields[key] = value
        yield fields


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    jit = defaultdict(list)
    frac = defaultdict(list)
    srs = defaultdict(list)
    for f in messages(sys.argv[1]):
        ev = f.get("Event")
        if ev not in ("RTCPSent", "RTCPReceived") or not f.get("Uniqueid"):
            continue
        key = (f["Uniqueid"], "rx" if ev == "RTCPSent" else "tx")
        for i in range(int(f.get("ReportCount", "0"))):
            if f"Report{i}IAJitter" in f:
                jit[key].append(int(f[f"Report{i}IAJitter"]))
                frac[key].append(int(f[f"Report{i}FractionLost"]) * 100.0 / 256)
        if f.get("PT", "").startswith("200") and "SentNTP" in f:
            srs[key].append((float(f["SentNTP"]), int(f["SentRTP"])))
    for key in sorted(set(jit) | set(srs)):
        j, fl, sr = jit.get(key, []), frac.get(key, []), srs.get(key, [])
        clock = 0.0
        if len(sr) >= 2 and sr[-1][0] - sr[0][0] >= 1:
            clock = ((sr[-1][1] - sr[0][1]) % 2**32) / (sr[-1][0] - sr[0][0])
        print(key[0], key[1], len(j), sum(j) / len(j) if j else 0, sum(fl) / len(fl) if fl else 0, round(clock))


main()
