#!/usr/bin/python3
"""A real SMTP server for the delivery tests: aiosmtpd (Debian python3-aiosmtpd).

  smtp_server.py --port-file F --maildir DIR --log FILE --mode starttls|tls|none
                 [--cert C --key K] [--user U --password-file P] [--fail-file F]

Listens on 127.0.0.1 (port 0: any free one, written to --port-file once
listening).  --mode starttls requires STARTTLS before anything else
(require_starttls) and offers AUTH only over TLS; --mode tls is implicit TLS
(smtps).  With --user, AUTH (PLAIN or LOGIN) is required and only that user
and password pass.  Every accepted message is stored, as received, in the
Maildir DIR, and a JSON line {mail_from, rcpt_tos, tls, auth_user, file} goes
to --log.  --fail-file: when it holds "451 N" or "550 N", the next N DATA
commands are answered with that code (N decremented in the file).
"""
import argparse
import asyncio
import json
import mailbox
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--mode", choices=["starttls", "tls", "none"], default="starttls")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    ap.add_argument("--fail-file")
    a = ap.parse_args()

    box = mailbox.Maildir(a.maildir, create=True)
    password = None
    if a.password_file:
        with open(a.password_file, "rb") as f:
            password = f.readline().rstrip(b"\r\n")
    ctx = None
    if a.mode != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and a.user is not None
              and auth_data.login == a.user.encode() and auth_data.password == password)
        with open(a.log + ".auth", "a") as f:
            f.write(json.dumps({"mechanism": mechanism, "ok": ok,
                                "login": auth_data.login.decode("utf-8", "replace")
                                if isinstance(auth_data, LoginPassword) else None}) + "\n")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            if a.fail_file and os.path.exists(a.fail_file):
                with open(a.fail_file) as f:
                    parts = f.read().split()
                if len(parts) == 2 and int(parts[1]) > 0:
                    with open(a.fail_file, "w") as f:
                        f.write("%s %d\n" % (parts[0], int(parts[1]) - 1))
                    return parts[0] + (" 4.3.0 try again later" if parts[0].startswith("4")
                                       else " 5.7.1 message refused")
            key = box.add(envelope.original_content)
            tls = session.ssl is not None or a.mode == "tls"
            auth = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            with open(a.log, "a") as f:
                f.write(json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                                    "tls": tls, "auth_user": auth, "file": key}) + "\n")
            return "250 2.0.0 OK"

    kw = dict(hostname="cdrflow-test-mx", authenticator=authenticator if a.user else None,
              auth_required=bool(a.user))
    if a.mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    else:
        kw.update(auth_require_tls=False)

    async def run():
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: SMTP(Handler(), **kw), "127.0.0.1", a.port,
                                       ssl=ctx if a.mode == "tls" else None)
        port = srv.sockets[0].getsockname()[1]
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
        async with srv:
            await srv.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
