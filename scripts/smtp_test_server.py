#!/usr/bin/python3
"""A real SMTP server for the mail destination's tests (MailDestinationTests): aiosmtpd
(Debian python3-aiosmtpd) on 127.0.0.1, optionally with STARTTLS or implicit TLS from a
certificate and key, and AUTH accepting exactly one user and password. Every message it
takes is written to OUTBOX/<n>.json (envelope and content). It writes OUTBOX/ready once
it listens and runs until SIGTERM.

    smtp_test_server.py --port P --outbox DIR [--starttls | --implicit-tls] --cert C --key K
                        [--user U --password-file F] [--mechanisms PLAIN,LOGIN]
                        [--refuse ADDRESS ...]
"""
import argparse
import asyncio
import json
import os
import signal
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Outbox:
    def __init__(self, folder, refused):
        self.folder = folder
        self.refused = set(refused)
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.original_content.decode("utf-8", "replace"),
            # STARTTLS sets session.ssl; implicit TLS shows only on the transport.
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": session.authenticated,
        }
        path = os.path.join(self.folder, "%d.json" % self.count)
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 stored as %d" % self.count


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)
    return check


def main():
    # The test runner may start us with SIGTERM blocked (a mask inherited from its thread):
    # unblock it, or stopping by PID would wait for SIGKILL.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password-file")
    parser.add_argument("--mechanisms", default="PLAIN,LOGIN")
    parser.add_argument("--refuse", action="append", default=[])
    args = parser.parse_args()

    context = None
    if args.starttls or args.implicit_tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    kwargs = {}
    if args.user:
        with open(args.password_file) as source:
            password = source.read().strip()
        kwargs["authenticator"] = authenticator(args.user, password)
        kwargs["auth_required"] = True
        excluded = {"PLAIN", "LOGIN"} - set(args.mechanisms.split(","))
        if excluded:
            kwargs["auth_exclude_mechanism"] = sorted(excluded)
        # Over implicit TLS aiosmtpd's STARTTLS check does not know the session is encrypted.
        kwargs["auth_require_tls"] = not args.implicit_tls
    if args.starttls:
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True

    controller = Controller(
        Outbox(args.outbox, args.refuse), hostname="127.0.0.1", port=args.port,
        ssl_context=context if args.implicit_tls else None, server_hostname="localhost",
        ready_timeout=10, **kwargs)
    controller.start()
    with open(os.path.join(args.outbox, "ready"), "w") as out:
        out.write(str(os.getpid()))

    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
