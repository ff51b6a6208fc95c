"""XOAUTH2 for real: Dovecot's oauth2 passdb checks every login against the
fake OAuth server's introspection endpoint; promptd gets its access token
from that server's token endpoint with a refresh token and logs in with
XOAUTH2, both to poll (imap trigger) and to save a draft (email_draft).
A revoked refresh token shows in `promptd status` as a failing trigger
with the server's error, and nothing is retried in a storm."""

import json
import os
import subprocess
import sys
import urllib.request

from dovecot import Dovecot
from fake_server import stop_process
from promptd_test import SOURCE_DIR, main

FAKE = os.path.join(SOURCE_DIR, "tests", "fake", "fake_oauth.py")

RECIPE = """\
name: oauth-drafts
trigger: { imap: { account: gmail, poll_s: 1 } }
steps:
  - id: draft
    email_draft: { account: gmail, body: "Thanks, we got it.", quote: false }
"""

CONFIG = """\
mail:
  gmail:
    imap: "%s"
    ca_file: "%s"
    user: support
    address: support@shop.example
    oauth2:
      token_url: "http://127.0.0.1:%d/token"
      client_id: promptd-test
      client_secret: env:OAUTH_CLIENT_SECRET
      refresh_token: env:OAUTH_REFRESH_TOKEN
"""

MAIL = (b"From: Ana <ana@customer.example>\r\nTo: support@shop.example\r\n"
        b"Subject: Hello\r\nMessage-ID: <x1@customer.example>\r\n\r\nHi!\r\n")


def stats(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/_fake/stats" % port, timeout=10) as r:
        return json.loads(r.read())


def body(c):
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    fake = subprocess.Popen([py, FAKE, "--port", "0", "--client-secret", "cs-1",
                             "--refresh-token", "rt-support=support"],
                            stdout=subprocess.PIPE, stderr=open(c.path("oauth.log"), "ab"))
    line = fake.stdout.readline().decode()
    port = int(line.rsplit(":", 1)[1])
    try:
        with Dovecot(users={"support": "not-used-here"}, tls=True,
                     oauth2_introspection="http://127.0.0.1:%d/introspect" % port) as d:
            c.write("config.yaml", CONFIG % (d.url(tls=True), d.ca_file, port))
            c.write("recipes/r.yaml", RECIPE)
            env = {"OAUTH_CLIENT_SECRET": "cs-1", "OAUTH_REFRESH_TOKEN": "rt-support"}
            daemon = c.start_daemon("--config", c.path("config.yaml"), "--recipes",
                                    c.path("recipes"), env=env)
            c.wait_for("daemon serving", lambda: c.serving(daemon), timeout=30)
            c.wait_for("first poll over XOAUTH2", lambda: c.sql(
                "SELECT count(*) FROM cursors WHERE source = 'imap:gmail/INBOX'")[0][0] == 1,
                timeout=30)
            d.deliver("support", MAIL)
            c.wait_for("the draft", lambda: len(d.messages("support", "Drafts")) == 1, timeout=60)
            st = stats(port)
            c.check("token refreshed through the token endpoint", st["refreshes"] >= 1, repr(st))
            c.check("Dovecot checked the token by introspection", st["introspections"] >= 1,
                    repr(st))
            log = d.log()
            c.check("Dovecot saw XOAUTH2 logins", "xoauth2" in log.lower() or
                    st["introspections"] >= 2, log[-500:])
            _, flags, raw = d.messages("support", "Drafts")[0]
            c.check("draft flagged and threaded", "\\Draft" in flags
                    and b"In-Reply-To: <x1@customer.example>" in raw, repr(flags))
            rc = c.stop_daemon(daemon)
            c.check("exit 0", rc == 0, "exit %d" % rc)

            # A revoked refresh token: the trigger says so in status.
            env["OAUTH_REFRESH_TOKEN"] = "rt-revoked"
            before = stats(port)["refreshes"]
            daemon = c.start_daemon("--config", c.path("config.yaml"), log_name="daemon2.log",
                                    env=env)
            c.wait_for("failing status", lambda: any(
                t["kind"] == "imap" and t["state"] == "failing"
                for t in c.json("status", "--json")["triggers"]), timeout=30)
            t = [t for t in c.json("status", "--json")["triggers"] if t["kind"] == "imap"][0]
            c.check("status names invalid_grant", "invalid_grant" in t.get("last_error", ""),
                    repr(t))
            import time
            time.sleep(3)
            c.check("no refresh storm (backoff)", stats(port)["refreshes"] - before <= 3,
                    repr(stats(port)))
            rc = c.stop_daemon(daemon)
            c.check("exit 0 again", rc == 0, "exit %d" % rc)
            for name in ("daemon.log", "daemon2.log"):
                text = open(c.path(name), encoding="utf-8", errors="replace").read()
                c.check("no token or secret in %s" % name,
                        "cs-1" not in text and "rt-support" not in text and "at-1-" not in text)
    finally:
        stop_process(fake)


if __name__ == "__main__":
    main("email_xoauth2", body)
