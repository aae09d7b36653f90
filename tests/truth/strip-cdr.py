#!/usr/bin/env python3
"""strip-cdr.py IN OUT [PARTS]

Copy a raw AMI capture (plain or .xz) without its "Event: Cdr" messages, so
that the ETL is fed what an Asterisk without cdr_manager sends.  With PARTS
(> 1) the output is cut at message boundaries into OUT.1 ... OUT.PARTS of
about equal size (to feed the stream in several runs)."""
import lzma
import re
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    parts = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    opener = lzma.open if src.endswith(".xz") else open
    with opener(src, "rb") as f:
        data = f.read()
    # messages end with an empty line; keep every byte of the others
    chunks = re.split(rb"(?<=\r\n\r\n)", data)
    kept = [c for c in chunks if not c.startswith(b"Event: Cdr\r\n")]
    if parts == 1:
        with open(dst, "wb") as f:
            f.write(b"".join(kept))
        return
    total = sum(len(c) for c in kept)
    out, size, n = [], 0, 1
    for c in kept:
        out.append(c)
        size += len(c)
        if n < parts and size >= total * n / parts:
            with open(f"{dst}.{n}", "wb") as f:
                f.write(b"".join(out))
            out, n = [], n + 1
    with open(f"{dst}.{n}", "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
