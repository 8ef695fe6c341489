"""An aiosmtpd handler for the notifier's tests (tests/notify.rs).

Run by the real aiosmtpd server (Debian's python3-aiosmtpd):

    PYTHONPATH=tests/data /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:PORT \
        [--tlscert C --tlskey K | --smtpscert C --smtpskey K] \
        -c smtp_sink.Sink OUTDIR [auth=USER:PASSWORD]

Each message received is parsed with Python's own `email` package (an
independent reader of what orderwatch wrote) and written to OUTDIR as one JSON
file: the envelope, whether the session was encrypted, the login, the decoded
headers and the MIME parts. Recipients starting with `reject` are refused with
550 (permanent), those starting with `later` with 451 (transient). With
`auth=`, AUTH PLAIN and LOGIN accept exactly those credentials.
"""

import base64
import email
import email.policy
import json
import os
import time

from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir, auth=None):
        self.outdir = outdir
        self.auth = auth
        self.count = 0

    @classmethod
    def from_cli(cls, parser, *args):
        if not args:
            parser.error("smtp_sink.Sink usage: OUTDIR [auth=USER:PASSWORD]")
        auth = None
        for a in args[1:]:
            if a.startswith("auth="):
                user, _, password = a[len("auth="):].partition(":")
                auth = (user, password)
            else:
                parser.error(f"smtp_sink.Sink: unknown argument {a!r}")
        os.makedirs(args[0], exist_ok=True)
        return cls(args[0], auth)

    def _check(self, user, password):
        ok = self.auth is not None and (user.decode(), password.decode()) == self.auth
        return AuthResult(success=ok, auth_data=LoginPassword(user, password))

    async def auth_PLAIN(self, server, args):
        if len(args) == 1:
            data = await server.challenge_auth("")
            if data is MISSING:
                return AuthResult(success=False)
        else:
            data = base64.b64decode(args[1])
        _, user, password = data.split(b"\0")
        return self._check(user, password)

    async def auth_LOGIN(self, server, args):
        if len(args) == 1:
            user = await server.challenge_auth("Username:")
        else:
            user = base64.b64decode(args[1])
        if user is MISSING:
            return AuthResult(success=False)
        password = await server.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False)
        return self._check(user, password)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 <%s>: no such user here" % address
        if address.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({
                "content_type": part.get_content_type(),
                "charset": part.get_content_charset(),
                "content": part.get_content(),
            })
        ssl_object = server.transport.get_extra_info("ssl_object")
        login = None
        if session.authenticated and session.auth_data is not None:
            login = session.auth_data.login.decode()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": ssl_object.version() if ssl_object is not None else None,
            "login": login,
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "parts": parts,
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        self.count += 1
        name = "%d-%d-%d.json" % (time.time_ns(), os.getpid(), self.count)
        tmp = os.path.join(self.outdir, "." + name)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, os.path.join(self.outdir, name))
        return "250 Message accepted for delivery"
