#!/usr/bin/env python3
"""check_mail.py MESSAGE --subject S --to ADDR,ADDR... [--html] ATTACHMENT...

Parses one received message with Python's email module and checks it the way
a mail reader would see it: the decoded Subject, the To addresses, a
multipart/mixed with a text/plain (and with --html a text/html) body, and one
attachment per ATTACHMENT argument, in order, with the file's base name, the
content type its extension calls for and exactly its bytes (sha256).  Every
line of the raw message ends in CRLF and is at most 78 characters, base64
body lines at most 76.  Prints one line per attachment; exits 1 on the first
mismatch.
"""
import argparse
import email
import email.policy
import hashlib
import os
import sys

TYPES = {".pdf": "application/pdf", ".csv": "text/csv",
         ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def fail(msg):
    print("check_mail: " + msg)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("message")
    ap.add_argument("--subject", required=True)
    ap.add_argument("--to", required=True, help="comma-separated addresses")
    ap.add_argument("--html", action="store_true")
    ap.add_argument("attachments", nargs="*")
    a = ap.parse_intermixed_args()
    raw = open(a.message, "rb").read()
    # Maildir stores what the server got; lines end in LF there when the
    # server converted them, so check the CRLF rule on the raw lines as sent
    lines = raw.split(b"\n")
    for i, line in enumerate(lines[:-1]):
        if not line.endswith(b"\r"):
            fail("line %d does not end in CRLF" % (i + 1))
        if len(line) - 1 > 78:
            fail("line %d is %d characters long" % (i + 1, len(line) - 1))
    m = email.message_from_bytes(raw, policy=email.policy.default)
    if str(m["Subject"]) != a.subject:
        fail("subject %r, want %r" % (str(m["Subject"]), a.subject))
    got_to = [ad.addr_spec for ad in m["To"].addresses]
    if got_to != a.to.split(","):
        fail("To %r, want %r" % (got_to, a.to))
    if m.get_content_type() != "multipart/mixed":
        fail("top-level type " + m.get_content_type())
    if m["MIME-Version"] != "1.0" or not m["Date"] or not m["Message-ID"]:
        fail("MIME-Version, Date or Message-ID missing")
    body = m.get_body(preferencelist=("plain",))
    if body is None or not body.get_content().strip():
        fail("no text/plain body")
    if a.html:
        h = m.get_body(preferencelist=("html",))
        if h is None or "<" not in h.get_content():
            fail("no text/html body")
    atts = list(m.iter_attachments())
    if a.html is False and any(p.get_content_type() == "text/html" for p in atts):
        fail("an HTML part counted as an attachment")
    atts = [p for p in atts if p.get_content_disposition() == "attachment"]
    if len(atts) != len(a.attachments):
        fail("%d attachments, want %d" % (len(atts), len(a.attachments)))
    for p, path in zip(atts, a.attachments):
        name = os.path.basename(path)
        if p.get_filename() != name:
            fail("filename %r, want %r" % (p.get_filename(), name))
        want = TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")
        if p.get_content_type() != want:
            fail("%s: type %s, want %s" % (name, p.get_content_type(), want))
        if want == "text/csv" and p.get_param("charset") != "utf-8":
            fail("%s: charset %r" % (name, p.get_param("charset")))
        if p["Content-Transfer-Encoding"] != "base64":
            fail("%s: not base64" % name)
        data = p.get_payload(decode=True)
        sent = open(path, "rb").read()
        if hashlib.sha256(data).hexdigest() != hashlib.sha256(sent).hexdigest():
            fail("%s: %d bytes received differ from the %d bytes sent" % (name, len(data), len(sent)))
        enc = p.get_payload(decode=False).split("\n")
        if any(len(line.rstrip("\r")) > 76 for line in enc):
            fail("%s: base64 line longer than 76" % name)
        print("attachment %s %s %d bytes sha256 %s" % (name, p.get_content_type(), len(data),
                                                       hashlib.sha256(data).hexdigest()))


if __name__ == "__main__":
    main()
