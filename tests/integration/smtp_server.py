#!/usr/bin/env python3
"""A real SMTP server for the tests (Debian's python3-aiosmtpd): AUTH
PLAIN/LOGIN with one user, messages saved whole (as received, one file
each) into a directory, and scripted refusals per recipient address:

  smtp_server.py --port 0 --dir DIR --user U --password P
                 [--reject ADDR=CODE] [--defer ADDR=N]
                 [--tls-cert PEM --tls-key PEM]
--reject answers RCPT for ADDR with CODE (e.g. 550); --defer answers
451 the first N times ADDR is given.  Prints `listening HOST:PORT`."""

import argparse
import os
import sys
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, directory, reject, defer):
        self.dir = directory
        self.reject = reject
        self.defer = defer
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "%s 5.1.1 <%s>: Recipient address rejected" % (self.reject[address], address)
        if self.defer.get(address, 0) > 0:
            self.defer[address] -= 1
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        name = os.path.join(self.dir, "%03d-%d.eml" % (self.n, int(time.time() * 1000)))
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(name + ".env", "w") as f:
            f.write("%s\n%s\n" % (envelope.mail_from, " ".join(envelope.rcpt_tos)))
        os.rename(name + ".tmp", name)
        print("received %s from %s to %s" % (os.path.basename(name), envelope.mail_from,
                                             ",".join(envelope.rcpt_tos)), flush=True)
        return "250 2.0.0 Ok: queued as %d" % self.n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--defer", action="append", default=[])
    p.add_argument("--tls-cert", help="PEM cert (with --tls-key): require STARTTLS")
    p.add_argument("--tls-key")
    a = p.parse_args()
    reject = dict(r.split("=", 1) for r in a.reject)
    defer = {k: int(v) for k, v in (d.split("=", 1) for d in a.defer)}

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == a.user
              and auth_data.password.decode() == a.password)
        return AuthResult(success=ok, handled=False)

    # Plain-text AUTH on loopback is what this test server is for.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    port = a.port
    if port == 0:
        import socket
        s = socket.socket()
        s.bind((a.host, 0))
        port = s.getsockname()[1]
        s.close()
    tls = {}
    if a.tls_cert:
        import ssl
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        tls = {"tls_context": ctx, "require_starttls": True}
    c = Controller(Handler(a.dir, reject, defer), hostname=a.host, port=port,
                   authenticator=authenticator, auth_required=True,
                   auth_require_tls=bool(a.tls_cert), **tls)
    c.start()
    print("listening %s:%d" % (a.host, port), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        c.stop()


if __name__ == "__main__":
    sys.exit(main())
