#!/usr/bin/env python3
"""spool-grow.py SRC_NODE_DIR DST_NODE_DIR STEP NSTEPS

Copy a collector node directory as it looked part-way through: the first
STEP/NSTEPS of its records (every segment before, a prefix of the one that
holds the cut), cut only between two reads (records with different receive
times), as a live reader may find it.  Used to load a live spool in steps."""
import os
import struct
import sys


def records(path):
    with open(path, "rb") as f:
        b = f.read()
    off = 128
    while off + 32 <= len(b):
        total, _crc, _seq, recv = struct.unpack_from("<IIQQ", b, off)
        yield off, total, recv
        off += total


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    src, dst, step, nsteps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    segs = sorted(s for s in os.listdir(src) if s.endswith(".seg"))
    allrec = [(s, off, total, recv) for s in segs for off, total, recv in records(os.path.join(src, s))]
    cut = len(allrec) * step // nsteps
    while 0 < cut < len(allrec) and allrec[cut][3] == allrec[cut - 1][3]:
        cut += 1  # never inside one read
    os.makedirs(dst, exist_ok=True)
    keep = {}
    for s, off, total, _ in allrec[:cut]:
        keep[s] = off + total
    for s in segs:
        if s not in keep:
            continue
        with open(os.path.join(src, s), "rb") as f:
            data = f.read(keep[s])
        with open(os.path.join(dst, s), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
