#!/usr/bin/env python3
"""fake_ami.py - a scripted fake Asterisk Manager Interface server for tests.

Listens on 127.0.0.1 only and replays the Event messages of a real AMI
capture (tests/../shared/captures/*/ami.raw or .xz) to whoever logs in,
with optional fault injection.  Python 3 standard library only.

Protocol (docs protocols.md section 1): banner "Asterisk Call Manager/9.0.0",
Login (plain or MD5 challenge), Events, Ping, Logoff, Command.  One thread
per connection, each driving a non-blocking socket with select(), so actions
(Ping) are answered while the event stream is being written; responses are
only ever written between two whole messages.

Delivery model: one global cursor, the index of the next event not yet
written whole to any socket.  A connection that logs in becomes the stream
owner and continues from the cursor, so a reconnecting client gets exactly
the events it has not been sent yet.  An event counts as sent (log "SENT")
once its last byte was accepted by send(); a connection that dies with a
partly written event leaves the cursor on that event, which the next
connection sends again, whole.

Log (--log FILE), one line each, flushed as written:
    CONN <n> / REFUSE <n>            connection accepted / refused
    AUTH ok|fail mode=plain|md5 conn=<n>
    FAULT <name> conn=<n> at=<global index>   a one-shot fault fired
    FAULT byte-at-a-time|slow conn=<n> ...    a mode fault applies to conn n
    SENT <global index> <len> <sha1 hex>   an event written whole
    DONE                             every event was sent
    CLOSE <n> <reason>               connection ended
The SENT lines of a connection come before its CLOSE line.  After a Logoff
the server writes "Response: Goodbye" after every event it logged as SENT
on that connection, then closes.

Command answers "core show version", and for cdrflow-collector --check
"manager show settings" (Timestamp events and Channel vars as the capture
shows them, Disabled events from --disabledevents), "manager show user NAME"
(read perm from --read-perm) and "cel show status" (Enabled when the capture
has CEL events); --no-command refuses every Command (Permission denied).

Other options: --repeat N sends the capture's events N times (global index
0 .. N*events-1); --tag-seq inserts "FakeSeq: <global index>" after each
event's first line so that repeated events differ; --list-events prints
"INDEX LEN SHA1 EVENTNAME" for each event that would be sent and exits.
Without --log the events go out in 256 KiB send() batches straight from one
buffer (over 1 GB/s on loopback).

Faults (--fault SPEC, repeatable): NAME[:key=value]..., keys after=K
(whole events sent on that connection first), conn=N|all, size=BYTES,
rate=EV_PER_S.  A one-shot fault without conn= fires once, on the first
connection that reaches its trigger; conn=all fires on every connection.
The mode faults (byte-at-a-time, slow) apply to every connection unless
conn= names one.
    disconnect-mid-event  send half of the next event, then close
    auth-fail             reject the login whatever the secret (default conn=1)
    garbage-line          a line "this is not a header" between two messages
    garbage-in-event      a colon-less line inside the next event (still SENT)
    oversized             one "Event: Oversized" message of size bytes (not SENT)
    no-pong               go silent: no more responses, no more events
    byte-at-a-time        every byte in its own send(), TCP_NODELAY
    slow                  throttle the event stream to rate events/s

Run "fake_ami.py --self-test" to check the server against a built-in client.
"""

import argparse
import bisect
import hashlib
import lzma
import os
import random
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
from array import array
from collections import deque

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
CHUNK = 256 * 1024          # bytes per send() batch in the fast path
GARBAGE_LINE = b"this is not a header\r\n"
GARBAGE_IN_EVENT = b"this line has no colon\r\n"
MAX_INPUT = 64 * 1024       # client input without a message end: drop the client
DRAIN_SECONDS = 2.0         # after shutdown(SHUT_WR), wait this long for the client's EOF

ONE_SHOT = ("disconnect-mid-event", "auth-fail", "garbage-line", "garbage-in-event",
            "oversized", "no-pong")
MODES = ("byte-at-a-time", "slow")
FAULT_NAMES = ONE_SHOT + MODES


# ---------------------------------------------------------------- capture

def read_capture(path):
    """Return (blob, offs): the Event messages of a capture concatenated and
    the offsets of their starts plus the total length (len(offs) == n + 1)."""
    if path.endswith(".xz"):
        with lzma.open(path, "rb") as f:
            data = f.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    pos = 0
    if data.startswith(b"Asterisk Call Manager/"):
        nl = data.find(b"\n")
        pos = len(data) if nl < 0 else nl + 1
    parts = []
    mv = memoryview(data)
    end_re = re.compile(rb"\r?\n\r?\n")
    n = len(data)
    while pos < n:
        # skip stray blank lines between messages
        while pos < n and data[pos] in (0x0d, 0x0a):
            pos += 1
        if pos >= n:
            break
        m = end_re.search(data, pos)
        end = n if m is None else m.end()
        if data.startswith(b"Event:", pos):
            parts.append(mv[pos:end])
        pos = end
    offs = array("Q", [0])
    total = 0
    for p in parts:
        total += len(p)
        offs.append(total)
    blob = b"".join(parts)
    return blob, offs


# ---------------------------------------------------------------- faults

class Fault:
    def __init__(self, spec):
        self.spec = spec
        bits = spec.split(":")
        self.name = bits[0]
        if self.name not in FAULT_NAMES:
            raise ValueError("unknown fault %r (known: %s)" % (self.name, ", ".join(FAULT_NAMES)))
        self.after = 0
        self.conn = None        # None, "all" or an int
        self.size = 2 * 1024 * 1024
        self.rate = 1000.0
        self.fired = False      # for one-shot faults without conn=
        for b in bits[1:]:
            if "=" not in b:
                raise ValueError("fault %r: expected key=value, got %r" % (spec, b))
            k, v = b.split("=", 1)
            if k == "after":
                self.after = int(v)
            elif k == "conn":
                self.conn = "all" if v in ("all", "*") else int(v)
            elif k == "size":
                self.size = int(v)
            elif k == "rate":
                self.rate = float(v)
            else:
                raise ValueError("fault %r: unknown key %r" % (spec, k))
        if self.name == "auth-fail" and self.conn is None:
            self.conn = 1
        if self.size < 64:
            raise ValueError("fault %r: size must be >= 64" % spec)
        if self.rate <= 0:
            raise ValueError("fault %r: rate must be > 0" % spec)

    def applies(self, n):
        if self.conn is None or self.conn == "all":
            return True
        return self.conn == n


# ---------------------------------------------------------------- helpers

def parse_message(raw):
    """Headers of a client message: dict of lower-case key -> first value."""
    h = {}
    for line in raw.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line or b":" not in line:
            continue
        k, v = line.split(b":", 1)
        k = k.strip().lower().decode("latin-1")
        if k not in h:
            h[k] = v.lstrip(b" \t").decode("latin-1")
    return h


def response(status, actionid, *pairs):
    out = ["Response: %s\r\n" % status]
    if actionid is not None:
        out.append("ActionID: %s\r\n" % actionid)
    for k, v in pairs:
        out.append("%s: %s\r\n" % (k, v))
    out.append("\r\n")
    return "".join(out).encode("latin-1")


def md5_key(challenge, secret):
    return hashlib.md5((challenge + secret).encode("latin-1")).hexdigest()


def insert_line_mid(ev, line):
    """ev with line inserted between two header lines near its middle."""
    ends = [m.end() for m in re.finditer(rb"\r?\n", ev)]
    # ends[-1] is the blank line, ends[-2] the last header line
    nhdr = len(ends) - 1
    at = ends[max(0, min(nhdr // 2, nhdr - 2))] if nhdr >= 2 else ends[0]
    return ev[:at] + line + ev[at:]


def tag_seq(ev, g):
    nl = ev.find(b"\n") + 1
    return ev[:nl] + b"FakeSeq: %d\r\n" % g + ev[nl:]


class Chunk:
    """Bytes to write whole before anything else goes out on a connection."""
    __slots__ = ("data", "pos", "after", "events", "g0", "ends", "base", "lo", "hi",
                 "evget", "done")

    def __init__(self, data, after=None):
        self.data = memoryview(data) if not isinstance(data, memoryview) else data
        self.pos = 0
        self.after = after      # None or "close"
        self.events = False
        self.done = 0

    def set_events(self, g0, ends, base, lo, hi, evget):
        self.events = True
        self.g0, self.ends, self.base, self.lo, self.hi, self.evget = g0, ends, base, lo, hi, evget

    def completed(self):
        """Number of events of the chunk written whole so far."""
        return bisect.bisect_right(self.ends, self.base + self.pos, self.lo, self.hi) - self.lo


# ---------------------------------------------------------------- server

class Server:
    def __init__(self, args):
        self.args = args
        self.blob, self.offs = read_capture(args.capture)
        self.blob_mv = memoryview(self.blob)
        self.nbase = len(self.offs) - 1
        self.total = self.nbase * max(1, args.repeat)
        self.faults = [Fault(s) for s in (args.fault or [])]
        self.lock = threading.RLock()
        self.cursor = 0
        self.inflight = None    # connection number writing an event chunk
        self.owner = None       # connection number allowed to stream
        self.done_logged = False
        self.nconn = 0
        self.active = 0
        self.stop = threading.Event()
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.tls = None
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key or None)
            self.tls = ctx
        # what "manager show settings" / "cel show status" answer: from the capture
        self.has_timestamp = re.search(rb"\nTimestamp: ", self.blob) is not None
        self.chanvars = sorted(set(m.decode("ascii", "replace") for m in
                                   re.findall(rb"\nChanVariable(?:\([^)]*\))?: ([A-Za-z0-9_]+)=", self.blob[:4 << 20])))
        self.has_cel = b"\nEvent: CEL\r" in self.blob or self.blob.startswith(b"Event: CEL\r")
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", args.port))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        if self.total == 0:
            self.log("DONE")
            self.done_logged = True

    def settings_lines(self):
        a = self.args
        return ["", "Global Settings:", "----------------",
                "  Manager (AMI):             Yes",
                "  Timestamp events:          %s" % ("Yes" if self.has_timestamp else "No"),
                "  Channel vars:              %s" % ",".join(self.chanvars),
                "  Disabled events:           %s" % (a.disabledevents or "none"),
                "  Debug:                     No"]

    # events in the (repeated) stream
    def event_bytes(self, g):
        b = g % self.nbase
        ev = self.blob_mv[self.offs[b]:self.offs[b + 1]]
        if self.args.tag_seq:
            return tag_seq(bytes(ev), g)
        return ev

    def log(self, line):
        if self.logf is None:
            return
        with self.lock:
            self.logf.write(line + "\n")
            self.logf.flush()

    def log_lines(self, lines):
        if self.logf is None or not lines:
            return
        with self.lock:
            self.logf.write("\n".join(lines) + "\n")
            self.logf.flush()

    def write_port_file(self):
        pf = self.args.port_file
        if not pf:
            return
        tmp = "%s.tmp.%d" % (pf, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % self.port)
        os.replace(tmp, pf)

    def serve_forever(self):
        self.lsock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stop.is_set():
                    break
                raise
            with self.lock:
                self.nconn += 1
                n = self.nconn
            if self.args.max_connections and n > self.args.max_connections:
                self.log("REFUSE %d" % n)
                s.close()
                continue
            self.log("CONN %d" % n)
            t = Conn(self, s, n)
            t.daemon = True
            t.start()
        self.lsock.close()

    def shutdown(self):
        self.stop.set()

    # called by a connection when events [g0+done, g0+c) were written whole
    def events_sent(self, chunk, c):
        with self.lock:
            g0 = chunk.g0
            assert self.cursor == g0 + chunk.done, (self.cursor, g0, chunk.done)
            if self.logf is not None:
                lines = []
                for k in range(chunk.done, c):
                    ev = chunk.evget(k)
                    lines.append("SENT %d %d %s" % (g0 + k, len(ev), hashlib.sha1(ev).hexdigest()))
                self.log_lines(lines)
            self.cursor = g0 + c
            if self.cursor >= self.total and not self.done_logged:
                self.done_logged = True
                self.log("DONE")


class ConnClosed(Exception):
    pass


class Conn(threading.Thread):
    def __init__(self, srv, sock, n):
        super().__init__(name="conn-%d" % n)
        self.srv, self.sock, self.n = srv, sock, n
        self.outq = deque()
        self.cur = None
        self.authed = False
        self.events_on = True
        self.silent = False
        self.closing = False        # write what is queued, then close
        self.nev = 0                # events written whole on this connection
        self.challenge = None
        self.mangle_next = False
        self.inbuf = bytearray()
        self.linger_start = None
        self.faults = [f for f in srv.faults if f.name in ONE_SHOT and f.applies(n)]
        self.byte_mode = any(f.name == "byte-at-a-time" and f.applies(n) for f in srv.faults)
        rates = [f.rate for f in srv.faults if f.name == "slow" and f.applies(n)]
        self.rate = min(rates) if rates else None
        self.tokens = 0.0
        self.tok_time = time.monotonic()
        self.reason = "?"

    # -- plumbing

    def queue(self, data, after=None):
        if self.closing:
            return
        self.outq.append(Chunk(data, after))
        if after == "close":
            self.closing = True

    def run(self):
        try:
            if self.byte_mode:
                self.srv.log("FAULT byte-at-a-time conn=%d" % self.n)
            if self.rate is not None:
                self.srv.log("FAULT slow conn=%d rate=%g" % (self.n, self.rate))
            self.setup()
            self.queue(BANNER)
            self.loop()
        except ConnClosed as e:
            self.reason = str(e) or "closed"
        except (OSError, ssl.SSLError) as e:
            self.reason = "error %s" % e
        finally:
            with self.srv.lock:
                if self.srv.inflight == self.n:
                    self.srv.inflight = None
            try:
                self.sock.close()
            except OSError:
                pass
            self.srv.log("CLOSE %d %s" % (self.n, self.reason))

    def setup(self):
        s = self.sock
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.srv.tls is not None:
            s.settimeout(5)
            s = self.srv.tls.wrap_socket(s, server_side=True)
            self.sock = s
        s.setblocking(False)

    def loop(self):
        while True:
            now = time.monotonic()
            timeout = None
            if self.cur is None:
                timeout = self.next_chunk(now)
            if self.cur is None and self.closing and not self.outq:
                self.graceful_close()
                raise ConnClosed(self.reason if self.reason != "?" else "closed by server")
            if self.srv.stop.is_set():
                raise ConnClosed("server stopping")
            wl = [self.sock] if self.cur is not None else []
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if pending:
                r, w = [self.sock], []
                if wl:
                    _, w, _ = select.select([], wl, [], 0)
            else:
                t = 0.5 if timeout is None else min(timeout, 0.5)
                r, w, _ = select.select([self.sock], wl, [], t)
            if r:
                self.do_read()
            if w and self.cur is not None:
                self.do_write()

    def graceful_close(self):
        """FIN after everything written, then wait for the client's EOF so that
        unread client input does not turn our close into a RST."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return
            try:
                d = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except (OSError, ssl.SSLError):
                return
            if not d:
                return

    # -- input

    def do_read(self):
        while True:
            try:
                d = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            if not d:
                raise ConnClosed("client closed")
            if self.silent:
                pass
            else:
                self.inbuf += d
                self.handle_input()
            if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                return

    def handle_input(self):
        buf = self.inbuf
        while True:
            # drop blank lines before a message
            i = 0
            while i < len(buf) and buf[i] in (0x0d, 0x0a):
                i += 1
            if i:
                del buf[:i]
            m = re.search(rb"\r?\n\r?\n", buf)
            if m is None:
                if len(buf) > MAX_INPUT:
                    raise ConnClosed("client input too long")
                return
            raw = bytes(buf[:m.end()])
            del buf[:m.end()]
            self.handle_action(parse_message(raw))
            if self.closing:
                return

    def handle_action(self, h):
        if self.silent:
            return
        action = h.get("action", "").lower()
        aid = h.get("actionid")
        if action == "login":
            self.do_login(h, aid)
        elif action == "challenge":
            if h.get("authtype", "").lower() != "md5":
                self.queue(response("Error", aid, ("Message", "Must specify AuthType")))
            else:
                self.challenge = "%09d" % random.randrange(100000000, 1000000000)
                self.queue(response("Success", aid, ("Challenge", self.challenge)))
        elif action == "logoff":
            self.queue(response("Goodbye", aid, ("Message", "Thanks for all the fish.")), "close")
            self.reason = "logoff"
        elif not self.authed:
            self.queue(response("Error", aid, ("Message", "Permission denied")))
        elif action == "ping":
            t = time.time()
            self.queue(response("Success", aid, ("Ping", "Pong"), ("Timestamp", "%.6f" % t)))
        elif action == "events":
            mask = h.get("eventmask", "on").strip().lower()
            self.events_on = mask != "off"
            self.queue(response("Success", aid, ("Events", "On" if self.events_on else "Off")))
        elif action == "command":
            cmd = h.get("command", "")
            out = [("Message", "Command output follows")]
            a = self.srv.args
            if a.no_command:
                self.queue(response("Error", aid, ("Message", "Permission denied")))
                return
            if cmd.startswith("core show version"):
                out.append(("Output", "Asterisk GIT-20-fake built by fake_ami.py"))
            elif cmd.strip() == "manager show settings":
                out += [("Output", line) for line in self.srv.settings_lines()]
            elif cmd.startswith("manager show user "):
                out += [("Output", ""), ("Output", "          username: %s" % cmd.split()[-1]),
                        ("Output", "            secret: <Set>"), ("Output", "         read perm: %s" % a.read_perm),
                        ("Output", "        write perm: %s" % a.read_perm)]
            elif cmd.strip() == "cel show status":
                if self.srv.has_cel:
                    out += [("Output", "CEL Logging: Enabled")]
                    out += [("Output", "CEL Tracking Event: %s" % e) for e in
                            ("CHAN_START", "CHAN_END", "ANSWER", "HANGUP", "BRIDGE_ENTER", "BRIDGE_EXIT", "LINKEDID_END")]
                    out += [("Output", "CEL Event Subscriber: Manager Event")]
                else:
                    out += [("Output", "CEL Logging: Disabled")]
            else:
                out.append(("Output", "No such command '%s' (type 'core show help %s' for other possible commands)" % (cmd, cmd)))
            self.queue(response("Success", aid, *out))
        elif action == "":
            self.queue(response("Error", aid, ("Message", "Missing action in request")))
        else:
            self.queue(response("Error", aid, ("Message", "Invalid/unknown command: %s. Use Action: ListCommands to show available commands." % h.get("action"))))

    def do_login(self, h, aid):
        a = self.srv.args
        md5 = h.get("authtype", "").lower() == "md5"
        mode = "md5" if md5 else "plain"
        ok = h.get("username") == a.username
        if md5:
            ok = ok and self.challenge is not None and h.get("key", "") == md5_key(self.challenge, a.secret)
        else:
            ok = ok and h.get("secret") == a.secret
        for f in self.faults:
            if f.name == "auth-fail" and self.claim(f):
                ok = False
                self.srv.log("FAULT auth-fail conn=%d at=%d" % (self.n, self.srv.cursor))
        if self.authed:
            self.queue(response("Success", aid, ("Message", "Already authenticated")))
            return
        if not ok:
            self.srv.log("AUTH fail mode=%s conn=%d" % (mode, self.n))
            time.sleep(a.auth_fail_delay)
            self.queue(response("Error", aid, ("Message", "Authentication failed")), "close")
            self.reason = "auth failed"
            return
        self.srv.log("AUTH ok mode=%s conn=%d" % (mode, self.n))
        self.authed = True
        ev = h.get("events")
        if ev is not None and ev.strip().lower() == "off":
            self.events_on = False
        self.queue(response("Success", aid, ("Message", "Authentication accepted")))
        with self.srv.lock:
            self.srv.owner = self.n

    def claim(self, f):
        """Take a one-shot fault; False if another connection already did."""
        with self.srv.lock:
            if f.conn == "all":
                if getattr(self, "_fired_%d" % id(f), False):
                    return False
                setattr(self, "_fired_%d" % id(f), True)
                return True
            if f.fired:
                return False
            f.fired = True
            return True

    # -- output

    def next_chunk(self, now):
        """Set self.cur to the next thing to write; return a select timeout
        hint when waiting for something other than the socket."""
        if self.outq:
            self.cur = self.outq.popleft()
            return None
        if self.closing or not self.authed or not self.events_on or self.silent:
            return None
        srv = self.srv
        with srv.lock:
            if srv.owner != self.n:
                return None
            if srv.inflight is not None and srv.inflight != self.n:
                return 0.02
            g = srv.cursor
            if g >= srv.total:
                return self.linger(now)
            # one-shot faults due now
            limit = srv.total - g
            for f in self.faults:
                if f.name == "auth-fail" or (f.conn != "all" and f.fired) \
                        or getattr(self, "_fired_%d" % id(f), False):
                    continue
                if self.nev >= f.after:
                    if not self.claim(f):
                        continue
                    if self.fire(f, g):
                        return None
                else:
                    limit = min(limit, f.after - self.nev)
            if self.silent or self.closing:
                return None
            if self.rate is not None:
                self.tokens = min(self.tokens + (now - self.tok_time) * self.rate,
                                  max(1.0, self.rate * 0.05))
                self.tok_time = now
                if self.tokens < 1.0:
                    return (1.0 - self.tokens) / self.rate
                limit = min(limit, int(self.tokens))
            if self.mangle_next:
                self.mangle_next = False
                ev = insert_line_mid(bytes(srv.event_bytes(g)), GARBAGE_IN_EVENT)
                self.make_list_chunk(g, [ev])
            elif srv.args.tag_seq:
                evs = []
                size = 0
                for k in range(limit):
                    ev = srv.event_bytes(g + k)
                    evs.append(ev)
                    size += len(ev)
                    if size >= CHUNK:
                        break
                self.make_list_chunk(g, evs)
            else:
                self.make_fast_chunk(g, limit)
            if self.rate is not None:
                self.tokens -= self.cur.hi - self.cur.lo
            srv.inflight = self.n
        return None

    def make_fast_chunk(self, g, limit):
        srv = self.srv
        offs = srv.offs
        b = g % srv.nbase
        hi_b = min(srv.nbase, b + limit)
        j = bisect.bisect_left(offs, offs[b] + CHUNK, b + 1, hi_b + 1)
        j = max(b + 1, min(j, hi_b))
        c = Chunk(srv.blob_mv[offs[b]:offs[j]])
        blob_mv = srv.blob_mv

        def evget(k, b=b):
            return blob_mv[offs[b + k]:offs[b + k + 1]]
        c.set_events(g, offs, offs[b], b + 1, j + 1, evget)
        self.cur = c

    def make_list_chunk(self, g, evs):
        ends = []
        t = 0
        for ev in evs:
            t += len(ev)
            ends.append(t)
        c = Chunk(b"".join(evs))
        c.set_events(g, ends, 0, 0, len(ends), lambda k: evs[k])
        self.cur = c

    def fire(self, f, g):
        """Apply a one-shot fault; True if it queued output (self.cur set)."""
        srv = self.srv
        srv.log("FAULT %s conn=%d at=%d" % (f.name, self.n, g))
        if f.name == "disconnect-mid-event":
            ev = bytes(srv.event_bytes(g))
            self.queue(ev[:len(ev) // 2], "close")
            self.reason = "fault disconnect-mid-event"
            self.cur = self.outq.popleft()
            return True
        if f.name == "garbage-line":
            self.queue(GARBAGE_LINE)
            self.cur = self.outq.popleft()
            return True
        if f.name == "garbage-in-event":
            self.mangle_next = True
            return False
        if f.name == "oversized":
            head = b"Event: Oversized\r\nJunk: "
            fill = f.size - len(head) - 4
            self.queue(head + b"x" * fill + b"\r\n\r\n")
            self.cur = self.outq.popleft()
            return True
        if f.name == "no-pong":
            self.silent = True
            return False
        return False

    def linger(self, now):
        lg = self.srv.args.linger
        if lg is None:
            return None
        if self.linger_start is None:
            self.linger_start = now
        left = self.linger_start + lg - now
        if left <= 0:
            self.closing = True
            self.reason = "linger expired"
            return None
        return left

    def do_write(self):
        c = self.cur
        n = len(c.data)
        try:
            if self.byte_mode:
                for _ in range(512):
                    if c.pos >= n:
                        break
                    k = self.sock.send(c.data[c.pos:c.pos + 1])
                    if k <= 0:
                        break
                    c.pos += k
            else:
                k = self.sock.send(c.data[c.pos:])
                c.pos += k
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except (OSError, ssl.SSLError) as e:
            self.progress(c)
            raise ConnClosed("write failed: %s" % e)
        self.progress(c)
        if c.pos >= n:
            self.cur = None
            if c.events:
                with self.srv.lock:
                    if self.srv.inflight == self.n:
                        self.srv.inflight = None

    def progress(self, c):
        if not c.events:
            return
        k = c.completed()
        if k > c.done:
            self.srv.events_sent(c, k)
            self.nev += k - c.done
            c.done = k


# ---------------------------------------------------------------- CLI

def list_events(args):
    blob, offs = read_capture(args.capture)
    out = sys.stdout
    n = len(offs) - 1
    for g in range(n * max(1, args.repeat)):
        b = g % n
        ev = blob[offs[b]:offs[b + 1]]
        if args.tag_seq:
            ev = tag_seq(ev, g)
        name = ev[6:ev.find(b"\n")].strip().decode("latin-1")
        out.write("%d %d %s %s\n" % (g, len(ev), hashlib.sha1(ev).hexdigest(), name))
    return 0


def build_parser():
    p = argparse.ArgumentParser(description="Scripted fake Asterisk AMI server (127.0.0.1 only).")
    p.add_argument("--capture", help="AMI capture (ami.raw or ami.raw.xz)")
    p.add_argument("--port", type=int, default=0, help="TCP port, 0 = ephemeral (default)")
    p.add_argument("--port-file", help="write the bound port to this file once listening")
    p.add_argument("--username", default="collector")
    p.add_argument("--secret", default="secret")
    p.add_argument("--tls-cert", help="PEM certificate: serve TLS")
    p.add_argument("--tls-key", help="PEM private key (default: in --tls-cert)")
    p.add_argument("--log", help="append SENT/CONN/AUTH/FAULT/DONE lines to this file")
    p.add_argument("--repeat", type=int, default=1, help="send the capture's events N times")
    p.add_argument("--tag-seq", action="store_true",
                   help="insert 'FakeSeq: <global index>' after each event's first line "
                        "(makes repeated events distinct)")
    p.add_argument("--fault", action="append", metavar="SPEC", help="inject a fault (repeatable)")
    p.add_argument("--max-connections", type=int, default=0,
                   help="close connections beyond the Nth at once (0 = no limit)")
    p.add_argument("--linger", type=float, default=None,
                   help="close a connection this many seconds after the last event (default: never)")
    p.add_argument("--auth-fail-delay", type=float, default=0.1,
                   help="seconds to wait before answering a failed login (Asterisk: 1)")
    p.add_argument("--disabledevents", default="",
                   help="what 'manager show settings' reports as Disabled events (default: none)")
    p.add_argument("--read-perm", default="system,call,log,verbose,command,agent,user,config,dtmf,reporting,cdr,"
                   "dialplan,originate,agi,cc,aoc,test,security,message,all",
                   help="read perm that 'manager show user' reports")
    p.add_argument("--no-command", action="store_true", help="refuse Action: Command (a user without write=command)")
    p.add_argument("--list-events", action="store_true",
                   help="print 'INDEX LEN SHA1 EVENTNAME' for each event that would be sent, and exit")
    p.add_argument("--self-test", action="store_true", help="run the built-in self-test and exit")
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.capture:
        p.error("--capture is required")
    try:
        for s in args.fault or []:
            Fault(s)
    except ValueError as e:
        p.error(str(e))
    if args.list_events:
        return list_events(args)
    srv = Server(args)

    def on_signal(signum, frame):
        srv.shutdown()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    srv.write_port_file()
    srv.serve_forever()
    return 0


# ---------------------------------------------------------------- self-test

class Client:
    """A minimal blocking AMI client for the self-test."""

    def __init__(self, port, tls=False, timeout=5):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        self.s = s
        self.buf = bytearray()
        self.eof = False
        self.recvs = 0
        self.banner = self.read_line()

    def fill(self):
        try:
            d = self.s.recv(1 << 20)
        except ConnectionResetError:
            d = b""
        self.recvs += 1
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read_line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                return None
        i = self.buf.index(b"\r\n") + 2
        line = bytes(self.buf[:i])
        del self.buf[:i]
        return line

    def read_msg(self):
        """Next message through its blank line, or None at EOF (partial bytes stay in buf)."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                raw = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return raw
            if not self.fill():
                return None

    def send(self, *pairs):
        self.s.sendall("".join("%s: %s\r\n" % kv for kv in pairs).encode() + b"\r\n")

    def login(self, user="collector", secret="secret", md5=False):
        if md5:
            self.send(("Action", "Challenge"), ("AuthType", "MD5"), ("ActionID", "c1"))
            r = self.read_msg()
            ch = parse_message(r)["challenge"]
            self.send(("Action", "Login"), ("AuthType", "md5"), ("Username", user),
                      ("Key", md5_key(ch, secret)), ("ActionID", "l1"))
        else:
            self.send(("Action", "Login"), ("Username", user), ("Secret", secret), ("ActionID", "l1"))
        return self.read_msg()

    def close(self):
        self.s.close()


def self_test():
    import tempfile
    import shutil
    import subprocess
    failures = []
    count = [0]

    def check(cond, what):
        count[0] += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", count[0], what))
        if not cond:
            failures.append(what)

    tmp = tempfile.mkdtemp(prefix="fake_ami_selftest.")
    try:
        # a synthetic capture: banner, a Response, events of varied sizes
        evs = []
        rnd = random.Random(7)
        for i in range(400):
            lines = [b"Event: Test%d" % (i % 7), b"Privilege: call,all", b"Timestamp: %d.%06d" % (1700000000 + i, i)]
            for k in range(rnd.randrange(1, 40)):
                lines.append(b"Key%d: %s" % (k, b"v" * rnd.randrange(0, 60)))
            evs.append(b"\r\n".join(lines) + b"\r\n\r\n")
        cap = os.path.join(tmp, "ami.raw")
        with open(cap, "wb") as f:
            f.write(BANNER + b"Response: Success\r\nActionID: x\r\nMessage: Authentication accepted\r\n\r\n")
            for i, ev in enumerate(evs):
                f.write(ev)
                if i == 50:
                    f.write(b"Response: Success\r\nActionID: p\r\nPing: Pong\r\nTimestamp: 1.2\r\n\r\n")
        with lzma.open(cap + ".xz", "wb") as f:
            f.write(open(cap, "rb").read())
        N = len(evs)

        def server(*extra, capture=cap):
            log = os.path.join(tmp, "log.%d" % rnd.randrange(1 << 30))
            args = build_parser().parse_args(["--capture", capture, "--log", log] + list(extra))
            srv = Server(args)
            t = threading.Thread(target=srv.serve_forever, daemon=True)
            t.start()
            srv.logpath = log
            return srv

        def log_of(srv):
            return open(srv.logpath).read().splitlines()

        def sent(srv):
            return [l.split() for l in log_of(srv) if l.startswith("SENT ")]

        def read_events(c, n):
            got = []
            while len(got) < n:
                m = c.read_msg()
                if m is None:
                    break
                if m.startswith(b"Event:"):
                    got.append(m)
            return got

        # capture parsing
        blob, offs = read_capture(cap)
        check(len(offs) - 1 == N and blob == b"".join(evs), "capture: only Event messages, bytes exact")
        blob2, offs2 = read_capture(cap + ".xz")
        check(blob2 == blob and list(offs2) == list(offs), "capture: .xz gives the same events")

        # plain login, whole stream, log
        srv = server()
        c = Client(srv.port)
        check(c.banner == BANNER, "banner")
        r = c.login()
        check(r == b"Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n", "plain login accepted")
        got = read_events(c, N)
        check(got == evs, "all events delivered, byte-exact, in order")
        time.sleep(0.1)
        s = sent(srv)
        check([x[1] for x in s] == [str(i) for i in range(N)], "log: SENT indexes 0..N-1")
        check([x[3] for x in s] == [hashlib.sha1(e).hexdigest() for e in evs]
              and [int(x[2]) for x in s] == [len(e) for e in evs], "log: SENT len+sha1 match")
        check("DONE" in log_of(srv) and "AUTH ok mode=plain conn=1" in log_of(srv), "log: DONE, AUTH ok")
        c.send(("Action", "Ping"), ("ActionID", "p9"))
        r = parse_message(c.read_msg())
        check(r.get("response") == "Success" and r.get("ping") == "Pong" and r.get("actionid") == "p9"
              and re.match(r"^\d+\.\d{6}$", r.get("timestamp", "")), "ping after DONE answered")
        c.send(("Action", "Events"), ("EventMask", "on"), ("ActionID", "e1"))
        r = parse_message(c.read_msg())
        check(r.get("events") == "On" and r.get("actionid") == "e1", "Events on answered")
        c.send(("Action", "Logoff"), ("ActionID", "bye"))
        r = c.read_msg()
        check(r.startswith(b"Response: Goodbye\r\nActionID: bye\r\n") and c.read_msg() is None and c.eof,
              "logoff: Goodbye then close")
        # reconnect after everything was sent: nothing more
        c = Client(srv.port)
        c.login()
        c.s.settimeout(0.3)
        try:
            extra = c.read_msg()
        except socket.timeout:
            extra = "timeout"
        check(extra == "timeout", "reconnect after DONE: no event re-sent")
        c.close()
        srv.shutdown()

        # permission denied, wrong secret, wrong user, md5
        srv = server("--secret", "s3", "--repeat", "3")
        c = Client(srv.port)
        c.send(("Action", "Ping"), ("ActionID", "x"))
        r = parse_message(c.read_msg())
        check(r.get("response") == "Error" and r.get("message") == "Permission denied", "action before login: Permission denied")
        r = c.login(secret="nope")
        check(r == b"Response: Error\r\nActionID: l1\r\nMessage: Authentication failed\r\n\r\n" and c.read_msg() is None,
              "wrong secret: Authentication failed, then close")
        c = Client(srv.port)
        r = c.login(user="other", secret="s3")
        check(b"Authentication failed" in r and c.read_msg() is None, "wrong username refused")
        c = Client(srv.port)
        r = c.login(secret="bad", md5=True)
        check(b"Authentication failed" in r and c.read_msg() is None, "md5 with wrong secret refused")
        c = Client(srv.port)
        r = c.login(secret="s3", md5=True)
        check(b"Authentication accepted" in r, "md5 login accepted")
        # ping while streaming a long (repeated) stream: answered between messages
        c.send(("Action", "Ping"), ("ActionID", "mid"))
        pong = None
        nev = 0
        while True:
            m = c.read_msg()
            if m is None:
                break
            if m.startswith(b"Response:"):
                pong = (nev, m)
                if nev >= 3 * N:
                    break
            elif m.startswith(b"Event:"):
                if m != evs[nev % N]:
                    break
                nev += 1
                if nev == 3 * N and pong is not None:
                    break
        check(pong is not None and b"ActionID: mid" in pong[1] and nev == 3 * N,
              "ping answered while streaming, --repeat 3 stream intact (%s events)" % nev)
        lg = log_of(srv)
        check("AUTH fail mode=plain conn=1" in lg and "AUTH fail mode=md5 conn=3" in lg
              and "AUTH ok mode=md5 conn=4" in lg, "log: AUTH fail/ok with mode")
        c.close()
        srv.shutdown()

        # disconnect-mid-event, resume from the cursor
        srv = server("--fault", "disconnect-mid-event:after=10")
        c = Client(srv.port)
        c.login()
        got = read_events(c, N)
        check(got == evs[:10] and c.eof and bytes(c.buf) == evs[10][:len(evs[10]) // 2],
              "disconnect-mid-event: 10 events, half of the 11th, EOF")
        c = Client(srv.port)
        c.login()
        got = read_events(c, N - 10)
        check(got == evs[10:], "reconnect resumes with the interrupted event, whole")
        time.sleep(0.1)
        s = sent(srv)
        check([int(x[1]) for x in s] == list(range(N)), "log: each event SENT once")
        check(any(l.startswith("FAULT disconnect-mid-event conn=1 at=10") for l in log_of(srv)), "log: FAULT line")
        c.close()
        srv.shutdown()

        # disconnect on every connection
        srv = server("--fault", "disconnect-mid-event:after=150:conn=all")
        allgot = []
        for k in range(3):
            c = Client(srv.port)
            c.login()
            allgot += read_events(c, N - len(allgot))
            c.close()
        check(allgot == evs, "disconnect-mid-event conn=all: 3 cuts, stream complete")
        srv.shutdown()

        # auth-fail on connection 1 only
        srv = server("--fault", "auth-fail:conn=1")
        c = Client(srv.port)
        r = c.login()
        check(b"Authentication failed" in r and c.read_msg() is None, "auth-fail: conn 1 refused with right secret")
        c = Client(srv.port)
        r = c.login()
        check(b"Authentication accepted" in r and read_events(c, N) == evs, "auth-fail: conn 2 accepted, full stream")
        c.close()
        srv.shutdown()

        # garbage line, garbage in event, oversized
        srv = server("--fault", "garbage-line:after=5", "--fault", "garbage-in-event:after=20",
                     "--fault", "oversized:after=30:size=100000")
        c = Client(srv.port)
        c.login()
        raw = bytearray()
        while raw.count(b"Event:") < N + 1 or not raw.endswith(b"\r\n\r\n"):
            if not c.fill():
                break
            raw += c.buf
            c.buf.clear()
        pre = b"".join(evs[:5])
        check(raw.find(pre + GARBAGE_LINE + evs[5]) >= 0, "garbage-line between event 5 and 6")
        mangled = insert_line_mid(evs[20], GARBAGE_IN_EVENT)
        check(mangled != evs[20] and raw.find(evs[19] + mangled + evs[21]) >= 0, "garbage-in-event inside event 21")
        big = b"Event: Oversized\r\nJunk: " + b"x" * (100000 - 28) + b"\r\n\r\n"
        check(len(big) == 100000 and raw.find(evs[29] + big + evs[30]) >= 0, "oversized message of exact size after 30 events")
        time.sleep(0.1)
        s = sent(srv)
        check(len(s) == N and s[20][3] == hashlib.sha1(mangled).hexdigest() and int(s[20][2]) == len(mangled),
              "log: mangled event SENT with its sha1, oversized not SENT")
        lg = log_of(srv)
        check(any(l.startswith("FAULT oversized") for l in lg) and any(l.startswith("FAULT garbage-line") for l in lg),
              "log: FAULT oversized / garbage-line")
        c.close()
        srv.shutdown()

        # no-pong: silent after 5 events
        srv = server("--fault", "no-pong:after=5")
        c = Client(srv.port)
        c.login()
        got = read_events(c, 5)
        c.send(("Action", "Ping"), ("ActionID", "np"))
        c.s.settimeout(1.0)
        try:
            m = c.read_msg()
        except socket.timeout:
            m = "timeout"
        check(got == evs[:5] and m == "timeout", "no-pong: no answer, no events after 5")
        c.close()
        c = Client(srv.port)
        c.login()
        check(read_events(c, N - 5) == evs[5:], "no-pong: next connection resumes at event 5")
        c.close()
        srv.shutdown()

        # byte-at-a-time
        srv = server("--fault", "byte-at-a-time", capture=cap + ".xz")
        c = Client(srv.port)
        c.login()
        t0 = time.monotonic()
        got = read_events(c, N)
        check(got == evs and c.recvs > 50, "byte-at-a-time: stream intact (%d recv calls, %.2fs)"
              % (c.recvs, time.monotonic() - t0))
        c.close()
        srv.shutdown()

        # slow
        srv = server("--fault", "slow:rate=400")
        c = Client(srv.port)
        c.login()
        t0 = time.monotonic()
        got = read_events(c, 200)
        dt = time.monotonic() - t0
        check(got == evs[:200] and 0.35 < dt < 1.5, "slow rate=400: 200 events in %.2fs" % dt)
        c.close()
        srv.shutdown()

        # tag-seq + repeat: all distinct
        srv = server("--repeat", "2", "--tag-seq")
        c = Client(srv.port)
        c.login()
        got = read_events(c, 2 * N)
        check(len(set(got)) == 2 * N and got[N + 3] == tag_seq(evs[3], N + 3), "tag-seq: repeated events distinct")
        time.sleep(0.1)
        check([x[3] for x in sent(srv)] == [hashlib.sha1(e).hexdigest() for e in got], "tag-seq: log sha1 of tagged bytes")
        c.close()
        srv.shutdown()

        # linger and max-connections
        srv = server("--linger", "0.3", "--max-connections", "1")
        c = Client(srv.port)
        c.login()
        got = read_events(c, N)
        c.s.settimeout(3)
        t0 = time.monotonic()
        m = c.read_msg()
        check(got == evs and m is None and time.monotonic() - t0 < 2, "linger: closed after the last event")
        try:
            c2 = Client(srv.port)
            refused = c2.banner is None
        except OSError:
            refused = True
        check(refused, "max-connections: 2nd connection closed before the banner")
        srv.shutdown()

        # TLS
        if shutil.which("openssl"):
            crt, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            rc = subprocess.call(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                                  "-keyout", key, "-out", crt, "-days", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if rc == 0:
                srv = server("--tls-cert", crt, "--tls-key", key)
                c = Client(srv.port, tls=True)
                r = c.login()
                c.send(("Action", "Ping"), ("ActionID", "t"))
                got = read_events(c, N)
                check(c.banner == BANNER and b"accepted" in r and got == evs, "TLS: login and stream")
                c.close()
                srv.shutdown()

        # the CLI: --port-file, --list-events, SIGTERM
        pf = os.path.join(tmp, "port")
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--capture", cap, "--port-file", pf])
        for _ in range(100):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        port = int(open(pf).read())
        c = Client(port)
        r = c.login()
        check(b"accepted" in r and read_events(c, N) == evs, "CLI: --port-file and stream")
        c.close()
        proc.terminate()
        check(proc.wait(5) == 0, "CLI: SIGTERM exits 0")
        out = subprocess.check_output([sys.executable, os.path.abspath(__file__), "--capture", cap, "--list-events"])
        lines = out.decode().splitlines()
        check(len(lines) == N and lines[1].split() == ["1", str(len(evs[1])), hashlib.sha1(evs[1]).hexdigest(), "Test1"],
              "CLI: --list-events")
        rc = subprocess.call([sys.executable, os.path.abspath(__file__), "--capture", cap, "--fault", "bogus"],
                             stderr=subprocess.DEVNULL)
        check(rc == 2, "CLI: unknown fault is a usage error")

        # throughput (no log)
        args = build_parser().parse_args(["--capture", cap, "--repeat", "2000"])
        srv = Server(args)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        c = Client(srv.port)
        c.login()
        want = len(blob) * 2000
        t0 = time.monotonic()
        got = len(c.buf)
        c.buf.clear()
        while got < want:
            d = c.s.recv(1 << 20)
            if not d:
                break
            got += len(d)
        dt = time.monotonic() - t0
        print("# throughput: %.0f MB in %.2fs = %.0f MB/s" % (want / 1e6, dt, want / 1e6 / dt))
        check(got >= want, "throughput run complete")
        c.close()
        srv.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("# passed %d failed %d" % (count[0] - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
