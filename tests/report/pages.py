#!/usr/bin/env python3
"""pages.py - what a person sees in the rendered reports (tests/t/t5710).

  pages.py ink PNG_OR_PGM...       every image has ink in its content area
                                   (between 10 % and 90 % of its height)
  pages.py headers HTML...         no table header or tile label is a raw
                                   column name (lower-case snake_case)
  pages.py has-text PDFTEXT STRING  STRING is in the text in logical order
                                   (pdftotext's bidi marks and the line
                                   breaks of wrapped cells left out)
  pages.py tile HTML LABEL          print the value of the tile LABEL
  pages.py dom-in-pdf DOM PDFTEXT  every table cell and tile value of the
                                   HTML (as chromium --dump-dom gives it) is
                                   in the PDF's text (pdftotext -raw)

Exit 1 with the first problem on stderr.  PNG: 8-bit RGB/RGBA/grey,
non-interlaced (what chromium and pdftoppm write); PGM: binary P5.
"""
import html.parser
import re
import struct
import sys
import zlib


def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(1)


def read_pgm(data):
    parts = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    w, h = int(parts.group(1)), int(parts.group(2))
    px = data[parts.end():]
    return w, h, 1, [px[y * w:(y + 1) * w] for y in range(h)]


def read_png(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and inter == 0, "unsupported PNG"
            bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def ink(paths):
    for p in paths:
        data = open(p, "rb").read()
        w, h, bpp, rows = read_pgm(data) if data[:2] == b"P5" else read_png(data)
        dark = 0
        for y in range(h // 10, h * 9 // 10):
            r = rows[y]
            for x in range(0, w * bpp, bpp):
                if r[x] < 160:
                    dark += 1
        if dark < 50:
            fail("%s: blank (%d dark pixels in the content area)" % (p, dark))
        print("%s: %d dark pixels" % (p, dark))


class Cells(html.parser.HTMLParser):
    """th texts, tile labels, td texts and tile values."""

    def __init__(self):
        super().__init__()
        self.heads, self.values, self.stack, self.buf = [], [], [], None

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        kind = None
        if tag == "th" or (tag == "div" and cls == "l"):
            kind = "head"
        elif tag == "td" or (tag == "div" and cls == "v"):
            kind = "value"
        if tag in ("svg", "style", "script"):
            kind = "skip"
        self.stack.append((tag, kind))
        if kind in ("head", "value"):
            self.buf = []

    def handle_endtag(self, tag):
        while self.stack:
            t, kind = self.stack.pop()
            if kind in ("head", "value") and self.buf is not None:
                text = " ".join("".join(self.buf).split())
                (self.heads if kind == "head" else self.values).append(text)
                self.buf = None
            if t == tag:
                break

    def handle_data(self, data):
        if self.buf is not None and not any(k == "skip" for _, k in self.stack):
            self.buf.append(data)


def parse(path):
    c = Cells()
    c.feed(open(path, encoding="utf-8").read())
    return c


def headers(paths):
    raw = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
    n = 0
    for p in paths:
        c = parse(p)
        if not c.heads:
            fail("%s: no headers found" % p)
        for h in c.heads:
            if raw.match(h):
                fail("%s: raw column name %r as a header" % (p, h))
            n += 1
    print("%d headers, none raw" % n)


def dom_in_pdf(dom, pdftext):
    text = open(pdftext, encoding="utf-8").read()
    words = set(text.split())
    joined = "".join(text.split())  # a text cell wrapped inside a word
    c = parse(dom)
    if not c.values:
        fail("%s: no cells" % dom)
    checked = 0
    for v in c.values:
        for tok in v.split():
            if re.match(r"^-?[0-9][0-9:.,%]*$", tok):
                if tok not in words and tok not in joined:
                    fail("%s: figure %r (cell %r) is not in the PDF" % (dom, tok, v))
                checked += 1
    if checked == 0:
        fail("%s: no figures" % dom)
    print("%s: %d figures, all in the PDF" % (dom, checked))


def has_text(path, s):
    t = open(path, encoding="utf-8").read()
    t = "".join(c for c in t if c not in "\u202a\u202b\u202c\u202d\u202e\u200e\u200f" and not c.isspace())
    if "".join(s.split()) not in t:
        fail("%s: no %r" % (path, s))
    print("%s has %s" % (path, s))


def tile(path, label):
    c = Tiles()
    c.feed(open(path, encoding="utf-8").read())
    if label not in c.tiles:
        fail("%s: no tile %r (%s)" % (path, label, sorted(c.tiles)))
    print(c.tiles[label])


class Tiles(html.parser.HTMLParser):
    """{label: value} of the KPI tiles."""

    def __init__(self):
        super().__init__()
        self.tiles, self.cls, self.buf, self.label = {}, None, [], None

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class")
        if tag == "div" and cls in ("l", "v"):
            self.cls, self.buf = cls, []

    def handle_endtag(self, tag):
        if tag == "div" and self.cls:
            text = " ".join("".join(self.buf).split())
            if self.cls == "l":
                self.label = text
            else:
                self.tiles[self.label] = text
            self.cls = None

    def handle_data(self, data):
        if self.cls:
            self.buf.append(data)


def main(argv):
    if len(argv) < 3:
        fail(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "ink":
        ink(args)
    elif cmd == "headers":
        headers(args)
    elif cmd == "tile":
        tile(*args)
    elif cmd == "has-text":
        has_text(*args)
    elif cmd == "dom-in-pdf":
        dom_in_pdf(*args)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
