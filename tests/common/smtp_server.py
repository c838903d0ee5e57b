#!/usr/bin/python3
"""A real SMTP server for sitewatch's tests (aiosmtpd, loopback only).

Run by tests/common/smtp.rs with Debian's /usr/bin/python3 (which sees
python3-aiosmtpd 1.4.x; a pyenv python on PATH usually does not).

    smtp_server.py (--plain | --starttls CERT KEY | --implicit-tls CERT KEY)
                   --maildir DIR [--port N] [--auth USER:PASS]
                   [--fail-first N CODE] [--fail-stage data|rcpt]

Listens on 127.0.0.1, on --port N or (default) a port chosen by the kernel,
and prints exactly one line "READY <port>" on stdout once it accepts
connections. Binding an explicit port that is taken exits with status 2 and
a message on stderr (never silently picks another port).

Modes:
  --plain          no TLS at all.
  --starttls       EHLO offers STARTTLS and every command other than
                   EHLO/NOOP/STARTTLS/QUIT is refused with 530 until the
                   client has upgraded (require_starttls=True).
  --implicit-tls   TLS from the first byte (SMTPS, as on port 465); no
                   STARTTLS is offered.
  CERT is a PEM chain (leaf first), KEY a PEM private key.

--auth USER:PASS   AUTH PLAIN and LOGIN are offered (after TLS in the TLS
                   modes, at once with --plain) and required before MAIL
                   (530 5.7.0 otherwise). Wrong credentials get
                   "535 5.7.8 Authentication credentials invalid".
--fail-first N CODE
                   The first N attempts at the chosen stage are answered with
                   CODE (e.g. 451 or 550) instead of being accepted. Stage
                   "data" (default): after the message body, at the final dot;
                   stage "rcpt": each RCPT TO counts as one attempt.

Every accepted message is written to DIR as NNNNNN.eml (the raw bytes as
received, after dot-unstuffing) with a sidecar NNNNNN.json:
  {"mail_from": str, "rcpt_tos": [str], "tls": bool,
   "authenticated": false | "<user>", "peer": [host, port]}
The .json is written first and the .eml is renamed into place last, so a
reader that lists *.eml only ever sees complete messages. Refusals (fail-first
and failed AUTH) are appended as JSON lines to DIR/rejections.jsonl.

Stops cleanly on SIGTERM/SIGINT, when stdin reaches EOF (the test process
died), or after 10 minutes in any case.
"""

import argparse
import hmac
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

SELF_TIMEOUT_SECONDS = 600


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plain", action="store_true")
    mode.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    mode.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--maildir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--fail-first", nargs=2, type=int, metavar=("N", "CODE"))
    p.add_argument("--fail-stage", choices=("data", "rcpt"), default="data")
    p.add_argument("--hostname", default="smtp.sitewatch.test")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth wants USER:PASS")
    if args.fail_first is not None:
        n, code = args.fail_first
        if n < 0 or not 400 <= code <= 599:
            p.error("--fail-first wants N >= 0 and a 4xx or 5xx CODE")
    return args


def is_tls(server):
    """True if the session runs over TLS (STARTTLS or implicit)."""
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class Maildir:
    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.lock = threading.Lock()
        self.seq = 0

    def deliver(self, raw, meta):
        with self.lock:
            self.seq += 1
            stem = os.path.join(self.path, "%06d" % self.seq)
        with open(stem + ".json", "w", encoding="utf-8") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        tmp = stem + ".eml.tmp"
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, stem + ".eml")

    def reject(self, record):
        with self.lock:
            with open(os.path.join(self.path, "rejections.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


class FailFirst:
    """Counts attempts at one stage; the first N get CODE."""

    def __init__(self, n, code):
        self.remaining = n
        self.total = n
        self.code = code
        self.lock = threading.Lock()

    def next_failure(self):
        """The reply line for this attempt, or None if it should succeed."""
        with self.lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            attempt = self.total - self.remaining
        klass = self.code // 100
        return "%d %d.0.0 sitewatch test: fail-first %d/%d" % (
            self.code, klass, attempt, self.total)


class Handler:
    def __init__(self, maildir, fail, stage):
        self.maildir = maildir
        self.fail = fail
        self.stage = stage

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fail is not None and self.stage == "rcpt":
            status = self.fail.next_failure()
            if status is not None:
                self.maildir.reject({
                    "stage": "rcpt", "reply": status,
                    "mail_from": envelope.mail_from, "rcpt_tos": [address],
                })
                return status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fail is not None and self.stage == "data":
            status = self.fail.next_failure()
            if status is not None:
                self.maildir.reject({
                    "stage": "data", "reply": status,
                    "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                })
                return status
        user = False
        if session.authenticated:
            data = session.auth_data
            login = getattr(data, "login", b"")
            user = login.decode("utf-8", "replace") if isinstance(login, bytes) else str(login)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": is_tls(server),
            "authenticated": user,
            "peer": list(session.peer) if session.peer else None,
        }
        self.maildir.deliver(envelope.original_content, meta)
        return "250 2.0.0 Message accepted for delivery"


def make_authenticator(user, password, maildir):
    want_user = user.encode("utf-8")
    want_pass = password.encode("utf-8")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, want_user)
            and hmac.compare_digest(auth_data.password, want_pass)
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        login = getattr(auth_data, "login", b"")
        maildir.reject({
            "stage": "auth", "reply": "535 5.7.8 Authentication credentials invalid",
            "mechanism": mechanism,
            "user": login.decode("utf-8", "replace") if isinstance(login, bytes) else None,
        })
        # handled=False: smtp_AUTH then sends "535 5.7.8 ...". With the
        # default handled=True it sends nothing at all and the client waits.
        return AuthResult(success=False, handled=False)

    return authenticator


class BoundController(Controller):
    """A Controller serving on a socket we bound ourselves (so port 0 works:
    the stock Controller would try to connect to port 0 in _trigger_server)."""

    def __init__(self, handler, sock, **kwargs):
        self._sock = sock
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def _create_server(self):
        return self.loop.create_server(
            self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def server_tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def main(argv):
    args = parse_args(argv)
    # aiosmtpd warns about choices made on purpose here (AUTH without its
    # STARTTLS check in --implicit-tls/--plain; its own use of the deprecated
    # Session.login_data).
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="smtp_server: %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
        and "auth_require_tls == False" not in record.getMessage())

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR only skips TIME_WAIT leftovers of a stopped server (needed
    # to restart on the same port); binding a port someone still listens on
    # fails with EADDRINUSE on Linux all the same.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as e:
        print("smtp_server: cannot bind 127.0.0.1:%d: %s" % (args.port, e), file=sys.stderr)
        return 2
    sock.listen(64)
    port = sock.getsockname()[1]

    maildir = Maildir(args.maildir)
    fail = FailFirst(*args.fail_first) if args.fail_first else None
    handler = Handler(maildir, fail, args.fail_stage)

    smtp_kwargs = {
        "server_hostname": args.hostname,
        "ready_timeout": 10.0,
    }
    implicit_ctx = None
    if args.starttls:
        smtp_kwargs["tls_context"] = server_tls_context(*args.starttls)
        smtp_kwargs["require_starttls"] = True
    elif args.implicit_tls:
        implicit_ctx = server_tls_context(*args.implicit_tls)
    if args.auth is not None:
        user, password = args.auth.split(":", 1)
        smtp_kwargs["authenticator"] = make_authenticator(user, password, maildir)
        smtp_kwargs["auth_required"] = True
        # With STARTTLS, aiosmtpd's own check (auth only after STARTTLS) is
        # right. With implicit TLS it does not know the socket is already TLS
        # (it only tracks STARTTLS) and would answer 538, so turn it off;
        # plain mode has no TLS to wait for.
        smtp_kwargs["auth_require_tls"] = bool(args.starttls)

    controller = BoundController(handler, sock, ssl_context=implicit_ctx, **smtp_kwargs)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin():
        # EOF on stdin: the test process that started us is gone. (os.read,
        # not sys.stdin: a daemon thread blocked in a buffered reader makes
        # interpreter shutdown abort.)
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    controller.start()
    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()

    stopped_by_timeout = not stop.wait(SELF_TIMEOUT_SECONDS)
    if stopped_by_timeout:
        print("smtp_server: self-timeout after %d s, exiting" % SELF_TIMEOUT_SECONDS,
              file=sys.stderr)
    controller.stop()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation: the stdin watcher may still be blocked
    # in read(), and everything worth keeping is already on disk.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
