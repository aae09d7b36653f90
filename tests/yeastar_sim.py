#!/usr/bin/env python3
"""yeastar_sim.py - a Yeastar P-Series PBX's OpenAPI, as published, for tests.

Written from Yeastar's developer guide (P-Series "API Events", "Get Access
Token", "Refresh Access Token", "Monitor Events via WebSocket", "Monitor
Events via Webhook", the event pages 30007/30008/30011/30012, and the
S-Series "NewCdr" push).  Python standard library only.

What it serves (127.0.0.1:--port, path prefix /openapi/v1.0):
  POST get_token      {"username","password"} (Client ID / Secret), header
                      User-Agent: OpenAPI -> {"errcode":0,"errmsg":"SUCCESS",
                      "access_token_expire_time":TTL,"access_token":...,
                      "refresh_token_expire_time":...,"refresh_token":...}
  POST refresh_token  {"refresh_token"} -> a new pair; the old access token
                      dies.  --reject-refresh N refuses the Nth refresh.
  GET  subscribe?access_token=T   the WebSocket (RFC 6455, text frames):
                      {"topic_list":[...]} -> {"errcode":0,"errmsg":"SUCCESS"};
                      "heartbeat" -> "heartbeat response"; a socket with no
                      message from the client for --idle-timeout seconds is
                      closed (the PBX's 60 s rule, scaled); a socket whose
                      token chain has no live access token is closed (token
                      expiry).
Events are envelopes {"type":ID,"sn":SN,"msg":"<JSON encoded as a string>"},
sent only for subscribed IDs; the CDR status is spelled ANSWERD.

Scenarios (--scenario):
  websocket  subscription, heartbeat over a quiet period, token renewal
             across several expiries, a refused refresh (the collector must
             get a new token and reconnect), a burst of events (some sent in
             fragments), malformed messages, a disconnect in the middle of a
             message (that event is sent whole again after the reconnect, as
             the test wants every event exactly once).
  serve      the API only, no events, until killed (for --check).
  s-series   the S-Series API v2 (POST /api/v2.0.0/login with the MD5 of the
             password and the push URL, heartbeat?token=T keeping the token
             alive); NewCdr and ExtensionStatus pushed to that URL while the
             token lives, with a quiet period longer than its life.
  webhook    POSTs to --target (the collector's listener): P-Series
             envelopes, S-Series NewCdr pushes with their misspelled fields,
             X-Signature = base64(HMAC-SHA256(--webhook-secret, body)); one
             with a wrong signature, one not JSON, one GET (all refused).

At the end it writes --out: one line per event the collector must have
stored, "<sha1 of the exact bytes> <json of the bytes>", and --stats: a JSON
object with what happened (tokens issued, refreshes, sessions, idle and
expiry closes, heartbeats answered).
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import socket
import string
import struct
import sys
import threading
import time
import urllib.parse

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SN = "3631A2124XXX"


def log(*a):
    print("sim:", *a, file=sys.stderr, flush=True)


def token():
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Condition()
        self.chains = {}  # refresh token -> chain id
        self.access = {}  # access token -> (chain id, expiry)
        self.chain_access = {}  # chain id -> current access token
        self.next_chain = 1
        self.refreshes = 0
        self.gets = 0
        self.session = None  # the subscribed WebSocket session
        self.sessions = 0
        self.idle_closes = 0
        self.expiry_closes = 0
        self.heartbeats = 0
        self.refused = 0
        self.s_token = None  # S-Series login
        self.s_until = 0
        self.s_target = None

    def issue(self, chain):
        at, rt = token(), token()
        ttl = self.args.token_ttl
        self.access[at] = (chain, time.monotonic() + ttl)
        self.chain_access[chain] = at
        self.chains[rt] = chain
        return {"errcode": 0, "errmsg": "SUCCESS", "access_token_expire_time": int(ttl), "access_token": at,
                "refresh_token_expire_time": 86400, "refresh_token": rt}

    def chain_alive(self, chain):
        at = self.chain_access.get(chain)
        return at is not None and self.access.get(at, (0, 0))[1] > time.monotonic()


def read_http(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    hdr = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdr[k.strip().lower()] = v.strip()
    n = int(hdr.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        rest += chunk
    return method, target, hdr, rest[:n]


def http_reply(sock, code, obj):
    body = json.dumps(obj).encode()
    sock.sendall(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                 % (code, len(body)) + body)


def ws_frame(payload, opcode=1, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        h = struct.pack("!BB", b0, n)
    elif n < 65536:
        h = struct.pack("!BBH", b0, 126, n)
    else:
        h = struct.pack("!BBQ", b0, 127, n)
    return h + payload


class Session:
    """One WebSocket connection of the collector."""

    def __init__(self, st, sock, chain):
        self.st, self.sock, self.chain = st, sock, chain
        self.topics = set()
        self.last_rx = time.monotonic()
        self.closed = False
        self.wlock = threading.Lock()

    def send(self, text, fragments=1):
        data = text.encode() if isinstance(text, str) else text
        with self.wlock:
            if fragments <= 1:
                self.sock.sendall(ws_frame(data))
            else:
                step = max(1, len(data) // fragments)
                parts = [data[i:i + step] for i in range(0, len(data), step)]
                for i, p in enumerate(parts):
                    self.sock.sendall(ws_frame(p, 1 if i == 0 else 0, i == len(parts) - 1))
                    time.sleep(0.01)

    def cut(self, text):
        """The header of a whole frame, half its payload, then the TCP connection dies."""
        data = text.encode()
        frame = ws_frame(data)
        with self.wlock:
            self.sock.sendall(frame[:len(frame) - len(data) // 2])
            time.sleep(0.2)
            self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.st.lock:
            if self.st.session is self:
                self.st.session = None
            self.st.lock.notify_all()

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            c = self.sock.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def run(self):
        threading.Thread(target=self.watch, daemon=True).start()
        try:
            while not self.closed:
                h = self.recv_exact(2)
                op, ln = h[0] & 0x0F, h[1] & 0x7F
                if ln == 126:
                    ln = struct.unpack("!H", self.recv_exact(2))[0]
                elif ln == 127:
                    ln = struct.unpack("!Q", self.recv_exact(8))[0]
                mask = self.recv_exact(4) if h[1] & 0x80 else b"\0\0\0\0"
                p = bytes(b ^ mask[i % 4] for i, b in enumerate(self.recv_exact(ln)))
                self.last_rx = time.monotonic()
                if op == 8:
                    break
                if op == 9:
                    with self.wlock:
                        self.sock.sendall(ws_frame(p, 10))
                    continue
                if op != 1:
                    continue
                text = p.decode()
                if text == "heartbeat":
                    with self.st.lock:
                        self.st.heartbeats += 1
                    self.send("heartbeat response")
                    continue
                try:
                    req = json.loads(text)
                    topics = req["topic_list"]
                except (ValueError, KeyError, TypeError):
                    self.send(json.dumps({"errcode": 10002, "errmsg": "INVALID PARAMETER"}))
                    continue
                self.topics = set(int(t) for t in topics)
                self.send(json.dumps({"errcode": 0, "errmsg": "SUCCESS"}))
                with self.st.lock:
                    if self.st.session and self.st.session is not self:
                        self.st.session.close()
                    self.st.session = self
                    self.st.lock.notify_all()
        except (EOFError, OSError):
            pass
        self.close()

    def watch(self):
        while not self.closed:
            time.sleep(0.1)
            if time.monotonic() - self.last_rx > self.st.args.idle_timeout:
                log("closing a WebSocket idle for", self.st.args.idle_timeout, "s")
                with self.st.lock:
                    self.st.idle_closes += 1
                self.close()
            elif not self.st.chain_alive(self.chain):
                log("closing a WebSocket whose access token expired")
                with self.st.lock:
                    self.st.expiry_closes += 1
                self.close()


def handle(st, sock):
    try:
        req = read_http(sock)
        if not req:
            return
        method, target, hdr, body = req
        u = urllib.parse.urlsplit(target)
        if u.path.startswith("/api/v2.0.0/"):
            return s_series_api(st, sock, method, u, body)
        prefix = "/openapi/v1.0/"
        if not u.path.startswith(prefix):
            return http_reply(sock, 404, {"errcode": 404, "errmsg": "NOT FOUND"})
        what = u.path[len(prefix):]
        if what == "subscribe" and method == "GET" and hdr.get("upgrade", "").lower() == "websocket":
            at = urllib.parse.parse_qs(u.query).get("access_token", [""])[0]
            with st.lock:
                ok = at in st.access and st.access[at][1] > time.monotonic()
                chain = st.access.get(at, (None,))[0]
            if not ok:
                return http_reply(sock, 401, {"errcode": 10004, "errmsg": "ACCESS TOKEN EXPIRED"})
            key = hdr["sec-websocket-key"]
            acc = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
            with st.lock:
                st.sessions += 1
            Session(st, sock, chain).run()
            return
        if method != "POST" or hdr.get("user-agent") != "OpenAPI":
            return http_reply(sock, 400, {"errcode": 10001, "errmsg": "INVALID REQUEST"})
        try:
            j = json.loads(body)
        except ValueError:
            return http_reply(sock, 200, {"errcode": 10002, "errmsg": "INVALID PARAMETER"})
        with st.lock:
            if what == "get_token":
                if j.get("username") != st.args.client_id or j.get("password") != st.args.secret:
                    st.refused += 1
                    return http_reply(sock, 200, {"errcode": 20004, "errmsg": "LOGIN FAILED"})
                st.gets += 1
                chain = st.next_chain
                st.next_chain += 1
                return http_reply(sock, 200, st.issue(chain))
            if what == "refresh_token":
                chain = st.chains.pop(j.get("refresh_token"), None)
                st.refreshes += 1
                if chain is None or st.refreshes == st.args.reject_refresh:
                    log("refusing refresh", st.refreshes)
                    st.refused += 1
                    return http_reply(sock, 200, {"errcode": 10005, "errmsg": "REFRESH TOKEN INVALID"})
                old = st.chain_access.get(chain)
                st.access.pop(old, None)
                return http_reply(sock, 200, st.issue(chain))
        return http_reply(sock, 404, {"errcode": 404, "errmsg": "NOT FOUND"})
    finally:
        try:
            sock.close()
        except OSError:
            pass


def s_series_api(st, sock, method, u, body):
    """The S-Series API v2: login (MD5 password, the push target), heartbeat."""
    what = u.path[len("/api/v2.0.0/"):]
    try:
        j = json.loads(body)
    except ValueError:
        log("S-Series %s: the body is not JSON: %r" % (what, body[:200]))
        return http_reply(sock, 200, {"status": "Failed", "errno": "10002"})
    with st.lock:
        if what == "login":
            md5 = hashlib.md5(st.args.secret.encode()).hexdigest()
            if j.get("username") != st.args.client_id or j.get("password") != md5 or j.get("urltag") != "1":
                st.refused += 1
                return http_reply(sock, 200, {"status": "Failed", "errno": "20002"})
            st.gets += 1
            st.s_token = token()
            st.s_until = time.monotonic() + st.args.token_ttl
            st.s_target = j["url"]
            st.lock.notify_all()
            return http_reply(sock, 200, {"status": "Success", "token": st.s_token})
        if what == "heartbeat":
            t = urllib.parse.parse_qs(u.query).get("token", [""])[0]
            if t != st.s_token or time.monotonic() > st.s_until:
                st.refused += 1
                return http_reply(sock, 200, {"status": "Failed", "errno": "10004"})
            st.heartbeats += 1
            st.s_until = time.monotonic() + st.args.token_ttl
            return http_reply(sock, 200, {"status": "Success"})
    return http_reply(sock, 404, {"status": "Failed", "errno": "404"})


def s_series_scenario(st):
    """Push NewCdr and ExtensionStatus events to the logged-in target while
    its token lives (a quiet period longer than the token's life in the
    middle: only the heartbeat keeps the pushes coming)."""
    expected = []

    def target(timeout=30):
        end = time.monotonic() + timeout
        with st.lock:
            while st.s_target is None or time.monotonic() > st.s_until:
                left = end - time.monotonic()
                if left <= 0:
                    raise SystemExit("sim: no live S-Series login")
                st.lock.wait(min(left, 0.1))
            return st.s_target

    def push(m):
        url = target()
        hostport, _, path = url.partition("/")
        host, port = hostport.rsplit(":", 1)
        body = json.dumps(m, indent=1)
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("POST", "/" + path, body=body.encode(), headers={"Content-Type": "application/json",
                                                                  "User-Agent": "WebAPI"})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 200:
            raise SystemExit("sim: S-Series push refused: HTTP %d" % r.status)
        expected.append(body)

    base = int(time.time()) - 7200
    for k in range(2):
        for i in range(10):
            n = 700 + k * 10 + i
            t = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base + n * 13))
            status = ["ANSWERED", "NO ANSWER", "BUSY"][i % 3]
            push({"event": "NewCdr", "callid": "1571897%03d.%d" % (n, n), "timestart": t, "callfrom": "1023",
                  "callto": "0049301234%03d" % n, "callduraction": str(10 + i), "talkduraction": str(5 + i) if status == "ANSWERED" else "0",
                  "srctrunkname": "", "dsttrcunkname": "S-Carrier", "pincode": "", "status": status,
                  "type": "Outbound", "recording": "", "didnumber": "", "agentringtime": "0", "sn": "369451090405"})
        push({"event": "ExtensionStatus", "extension": "1023", "status": ["Busy", "Idle"][k], "sn": "369451090405"})
        if k == 0:
            time.sleep(st.args.token_ttl * 2)  # quiet: the token lives on heartbeats only
    return expected


def serve(st, port):
    """Listen now (before --ready is written), accept in a thread."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)

    def accept():
        while True:
            s, _ = srv.accept()
            threading.Thread(target=handle, args=(st, s), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()


# ------------------------------------------------------------ events

def envelope(ev_type, msg, spaced=False):
    inner = json.dumps(msg, separators=(",", ":"))
    if spaced:  # as the guide prints it: spaces and newlines around the envelope
        return '{\n    "type": %d,\n    "sn": "%s",\n    "msg": %s\n}' % (ev_type, SN, json.dumps(inner))
    return json.dumps({"type": ev_type, "sn": SN, "msg": inner}, separators=(",", ":"))


STATUSES = ["ANSWERD", "NO ANSWER", "BUSY", "VOICEMAIL", "ANSWERD", "ANSWERD"]


def cdr(i, start, kind=None):
    """One 30012 CDR; returns (msg, expected leg)."""
    kind = kind or ["internal", "inbound", "outbound"][i % 3]
    status = STATUSES[i % len(STATUSES)]
    call_dur = 5 + i % 50
    talk = (call_dur - 3) if status in ("ANSWERD", "VOICEMAIL") else 0
    src_trunk = dst_trunk = did = ""
    if kind == "internal":
        frm, to = str(2000 + i % 20), str(2100 + i % 30)
    elif kind == "inbound":
        frm, to, src_trunk, did = "+4420794600%02d" % (i % 100), str(2000 + i % 20), "SIP-Carrier-In", "442071234%03d" % (i % 1000)
    else:
        frm, to, dst_trunk = str(2000 + i % 20), "0049301234%04d" % i, "Carrier Out"
    t = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(start))
    msg = {"call_id": "1651057476.%d" % (1000 + i), "time_start": t, "call_from": frm, "call_to": to,
           "call_duration": call_dur, "talk_duration": talk, "src_trunk_name": src_trunk,
           "dst_trunk_name": dst_trunk, "pin_code": "", "status": status, "type": kind.capitalize(),
           "recording": "2022%04d-%s.wav" % (i, kind) if talk else "", "did_number": did, "agent_ring_time": 0}
    return msg


def websocket_scenario(st, out):
    args = st.args
    expected = []

    def wait_session(timeout=30):
        end = time.monotonic() + timeout
        with st.lock:
            while st.session is None or not st.session.topics:
                left = end - time.monotonic()
                if left <= 0:
                    raise SystemExit("sim: no subscribed session")
                st.lock.wait(left)
            return st.session

    def send(text, ev_type=None, fragments=1, stored=True):
        while True:
            s = wait_session()
            if ev_type is not None and ev_type not in s.topics:
                return
            try:
                s.send(text, fragments)
            except OSError:
                continue  # it died: send it again on the next session
            if stored:
                expected.append(text)
            return

    base = int(time.time()) - 3600
    i = 0
    s1 = wait_session()
    # the first events, one of each kind, as the guide prints them
    send(envelope(30008, {"extension": "2002", "status": "Ringing"}, spaced=True), 30008)
    send(envelope(30011, {"call_id": "1651057476.999", "members": [
        {"extension": {"number": "2005", "channel_id": "PJSIP/2005-00000001", "member_status": "ALERT", "call_path": ""}},
        {"extension": {"number": "2002", "channel_id": "PJSIP/2002-00000002", "member_status": "RING", "call_path": ""}}]}), 30011)
    send(envelope(30008, {"extension": "2002", "status": "Busy"}), 30008)
    send(envelope(30007, {"extension": "2010", "kind": "Sip", "status": "Registered", "registered_ip": "192.0.2.10"}), 30007)
    send(envelope(30012, cdr(i, base, "internal"), spaced=True), 30012)
    i += 1
    send(envelope(30008, {"extension": "2002", "status": "Idle"}), 30008)
    # malformed: not JSON, a reply-shaped object, msg that is not JSON (stored: it is an event as received)
    s1.send("{\"type\":30012,\"sn\":\"%s\",\"msg\":" % SN)   # truncated JSON: never stored
    s1.send("\x00\x01 not json at all")
    big = cdr(i, base, "internal")
    big["recording"] = "x" * (1200 * 1024)  # over the collector's max_event_size (1 MiB): dropped whole
    s1.send(envelope(30012, big), fragments=4)
    send(json.dumps({"type": 30012, "sn": SN, "msg": "{\"call_id\": broken"}), 30012)
    # a quiet period longer than the idle timeout: the heartbeat keeps it open
    time.sleep(args.idle_timeout + 1.5)
    # a burst, some in fragments
    for k in range(args.burst):
        send(envelope(30012, cdr(i, base + i * 7)), 30012, fragments=3 if k % 10 == 0 else 1)
        if k % 25 == 0:
            send(envelope(30008, {"extension": str(2000 + k % 20), "status": ["Ringing", "Busy", "Idle"][k % 3]}), 30008)
        i += 1
    # events across token renewals and the refused refresh (the collector
    # must then get a new token; this socket dies with the old chain)
    end = time.monotonic() + args.token_ttl * 3
    while time.monotonic() < end:
        send(envelope(30012, cdr(i, base + i * 7)), 30012)
        i += 1
        time.sleep(0.2)
    # a disconnect in the middle of a message; that event again, whole, after the reconnect
    s = wait_session()
    text = envelope(30012, cdr(i, base + i * 7))
    i += 1
    s.cut(text)
    send(text, 30012)
    for _ in range(20):
        send(envelope(30012, cdr(i, base + i * 7)), 30012)
        i += 1
    return expected


def webhook_scenario(st, out):
    args = st.args
    host, port = args.target.rsplit(":", 1)
    expected = []
    key = args.webhook_secret.encode()

    def post(body, sig=None, method="POST", path=None):
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        if sig is None:
            sig = base64.b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode()
        c.request(method, path or args.webhook_path, body=body.encode() if method == "POST" else None,
                  headers={"Content-Type": "application/json", "User-Agent": "WebAPI", "X-Signature": sig})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    def must(status, want, what):
        if status != want:
            raise SystemExit("sim: %s: HTTP %d, want %d" % (what, status, want))

    base = int(time.time()) - 7200
    for i in range(args.burst):
        body = envelope(30012, cdr(500 + i, base + i * 11))
        must(post(body), 200, "a CDR")
        expected.append(body)
    body = envelope(30008, {"extension": "3001", "status": "Ringing"})
    must(post(body), 200, "30008")
    expected.append(body)
    # the S-Series push: flat, misspelled, strings for numbers
    s_series = [
        {"event": "NewCdr", "callid": "1571897930.5", "timestart": "2019-10-23 22:18:50", "callfrom": "1023",
         "callto": "2023", "callduraction": "19", "talkduraction": "14", "srctrunkname": "", "dsttrcunkname": "",
         "pincode": "", "status": "ANSWERED", "type": "Internal",
         "recording": "20191024201242-1571897930.5-203-201-Internal.wav", "didnumber": "", "agentringtime": "0",
         "sn": "369451090405"},
        {"event": "NewCdr", "callid": "1571897931.6", "timestart": "2019-10-23 22:20:01", "callfrom": "1023",
         "callto": "0049301234999", "callduraction": "30", "talkduraction": "21", "srctrunkname": "",
         "dsttrcunkname": "S-Carrier", "pincode": "7788", "status": "ANSWERED", "type": "Outbound",
         "recording": "", "didnumber": "", "agentringtime": "0", "sn": "369451090405"},
        {"event": "NewCdr", "callid": "1571897932.7", "timestart": "2019-10-23 22:21:00", "callfrom": "+442079460011",
         "callto": "1023", "callduraction": "12", "talkduraction": "0", "srctrunkname": "S-In",
         "dsttrcunkname": "", "pincode": "", "status": "NO ANSWER", "type": "Inbound", "recording": "",
         "didnumber": "442071234567", "agentringtime": "0", "sn": "369451090405"},
    ]
    for m in s_series:
        body = json.dumps(m, indent=1)  # a body with newlines: stored byte for byte
        must(post(body), 200, "S-Series NewCdr")
        expected.append(body)
    # refused: a wrong signature, not JSON, a GET, another path
    must(post(envelope(30012, cdr(900, base)), sig="AAAA" + "B" * 40), 401, "a wrong signature")
    must(post("this is not json"), 400, "a body that is not JSON")
    must(post("", method="GET"), 405, "a GET")
    must(post(envelope(30012, cdr(901, base)), path="/elsewhere"), 404, "another path")
    return expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=["websocket", "webhook", "serve", "s-series"], required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--client-id", default="UEnH9Dmv6uBJEXsYcag1trNfQThYXXXX")
    ap.add_argument("--secret", default="")
    ap.add_argument("--token-ttl", type=float, default=4)
    ap.add_argument("--idle-timeout", type=float, default=3)
    ap.add_argument("--reject-refresh", type=int, default=2)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--target", default="")
    ap.add_argument("--webhook-path", default="/yeastar")
    ap.add_argument("--webhook-secret", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--ready", default="")
    args = ap.parse_args()
    if args.secret == "":
        args.secret = os.environ.get("YEASTAR_SIM_SECRET", "")
    st = State(args)
    if args.scenario == "serve":  # the API only, no events, until killed (cdrflow-collector --check)
        serve(st, args.port)
        if args.ready:
            open(args.ready, "w").close()
        while True:
            time.sleep(3600)
    if args.scenario == "s-series":
        serve(st, args.port)
        if args.ready:
            open(args.ready, "w").close()
        expected = s_series_scenario(st)
    elif args.scenario == "websocket":
        serve(st, args.port)
        if args.ready:
            open(args.ready, "w").close()
        expected = websocket_scenario(st, args.out)
        time.sleep(1.0)
    else:
        expected = webhook_scenario(st, args.out)
    with open(args.out, "w") as f:
        for e in expected:
            f.write("%s %s\n" % (hashlib.sha1(e.encode()).hexdigest(), json.dumps(e)))
    with st.lock:
        stats = {"gets": st.gets, "refreshes": st.refreshes, "sessions": st.sessions,
                 "idle_closes": st.idle_closes, "expiry_closes": st.expiry_closes,
                 "heartbeats": st.heartbeats, "refused": st.refused, "events": len(expected)}
    with open(args.stats, "w") as f:
        json.dump(stats, f)
    log("done:", stats)


if __name__ == "__main__":
    main()
