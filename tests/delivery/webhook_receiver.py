#!/usr/bin/env python3
"""A webhook receiver for the delivery tests (Python's http.server).

  webhook_receiver.py --port-file F --secret-file S --log FILE [--fail-file F]

Checks every POST the way docs/delivery.md tells a receiver to:
X-Cdrflow-Signature must be "sha256=" + hex HMAC-SHA256(secret,
X-Cdrflow-Timestamp + "." + body) (constant-time compare) and the timestamp
within 300 s of now, else 401.  Content-Type must be application/json and the
body valid JSON, else 400; Idempotency-Key is required, else 400.
Accepted requests are answered 200 and logged as JSON lines
{key, status: "new"|"duplicate", ts, signature, sha256, body}; a key seen before is not
stored twice (status "duplicate").  Every request, failed or not, is counted
in FILE.requests (one line: the key and the HTTP status sent).

--fail-file: when it holds "STATUS N", the next N requests get STATUS
(e.g. "500 3", "503 1", "400 1"), N is decremented in the file.
SIGTERM stops it.
"""
import argparse
import hashlib
import hmac
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

lock = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--fail-file")
    a = ap.parse_args()
    with open(a.secret_file, "rb") as f:
        secret = f.readline().rstrip(b"\r\n")
    seen = set()
    if os.path.exists(a.log):
        with open(a.log) as f:
            for line in f:
                seen.add(json.loads(line)["key"])

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, text, key=""):
            with open(a.log + ".requests", "a") as f:
                f.write("%s %d\n" % (key or "-", code))
            body = (text + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                if a.fail_file and os.path.exists(a.fail_file):
                    with open(a.fail_file) as f:
                        parts = f.read().split()
                    if len(parts) == 2 and int(parts[1]) > 0:
                        with open(a.fail_file, "w") as f:
                            f.write("%s %d\n" % (parts[0], int(parts[1]) - 1))
                        return self.reply(int(parts[0]), "told to fail", key)
            ts = self.headers.get("X-Cdrflow-Timestamp", "")
            sig = self.headers.get("X-Cdrflow-Signature", "")
            want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
                return self.reply(401, "stale or missing timestamp", key)
            if not hmac.compare_digest(sig, want):
                return self.reply(401, "bad signature", key)
            if self.headers.get("Content-Type") != "application/json":
                return self.reply(400, "not application/json", key)
            if not key:
                return self.reply(400, "no Idempotency-Key", key)
            try:
                json.loads(body)
            except ValueError:
                return self.reply(400, "body is not JSON", key)
            with lock:
                status = "duplicate" if key in seen else "new"
                seen.add(key)
                with open(a.log, "a") as f:
                    f.write(json.dumps({"key": key, "status": status, "ts": ts, "signature": sig,
                                        "sha256": hashlib.sha256(body).hexdigest(),
                                        "body": body.decode("utf-8")}) + "\n")
            self.reply(200, status, key)

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
