"""email_send against a real SMTP server on loopback (aiosmtpd): the reply
is parsed back and checked (envelope, To, Subject, threading headers,
Auto-Submitted, body); a refused recipient fails the run with the server's
reply, a deferral (451) is retried, a wrong password fails, and a recipe
without auto_send: true is refused at import."""

import email
import email.policy
import glob
import json
import os
import signal
import subprocess
import sys
import threading

from fake_server import stop_process
from promptd_test import SOURCE_DIR, main

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_server.py")
CORPUS = os.path.join(SOURCE_DIR, "tests", "mail", "corpus")

RECIPE = """\
name: autoreply
trigger: { event: { source: mail } }
steps:
  - id: send
    email_send:
      account: support
      body: "Hello {{event.from.name}}, thanks for writing about {{event.subject}}."
      quote: true
      auto_send: true
"""

CONFIG = """\
mail:
  support:
    smtp: "smtp://127.0.0.1:%d"
    starttls: false
    user: support@shop.example
    password: env:SMTP_TEST_PASSWORD
    name: Shop Support
engine: { retry: { base_ms: 200, max_attempts: 4 } }
"""


class Smtp:
    def __init__(self, directory, *extra):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.proc = subprocess.Popen(
            ["/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable, SERVER,
             "--port", "0", "--dir", directory, "--user", "support@shop.example", "--password",
             "s3cret"] + list(extra), stdout=subprocess.PIPE,
            stderr=open(os.path.join(directory, "..", "smtp.log"), "ab"))
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening "):
            raise RuntimeError("smtp_server.py did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def messages(self):
        return sorted(glob.glob(os.path.join(self.dir, "*.eml")))

    def stop(self):
        stop_process(self.proc)


def event_of(c, name):
    rc, out, err = c.run("mail", "parse", "--json", os.path.join(CORPUS, name))
    if rc != 0:
        raise RuntimeError(err)
    return json.loads(out)["event"]


def body(c):
    # Opt-in is required.
    c.write("bad/r.yaml", RECIPE.replace("      auto_send: true\n", "      auto_send: false\n"))
    rc, _, err = c.run("recipe", "import", c.path("bad"))
    c.check("auto_send false refused at import", rc == 1 and "auto_send" in err, err)

    smtp = Smtp(c.path("inbox"), "--reject", "nobody@kunde.example=550",
                "--defer", "later@kunde.example=1")
    try:
        c.write("config.yaml", CONFIG % smtp.port)
        c.write("recipes/r.yaml", RECIPE)
        rc, _, err = c.run("recipe", "import", c.path("recipes"))
        c.check("import", rc == 0, err)
        names = sorted(os.listdir(CORPUS))
        ev = event_of(c, next(n for n in names if n.endswith(".eml")))
        orig = dict(ev)
        ev["from"] = {"name": "Jörg Müller", "address": "joerg@kunde.example"}
        ev["reply_to"] = None
        ev["message_id"] = ev.get("message_id") or "orig.1@kunde.example"
        c.run("emit", "--source", "mail", "--event", "-", stdin=json.dumps(ev).encode())
        refused = dict(ev, **{"from": {"name": "", "address": "nobody@kunde.example"}})
        c.run("emit", "--source", "mail", "--event", "-", stdin=json.dumps(refused).encode())
        later = dict(ev, **{"from": {"name": "", "address": "later@kunde.example"}})
        c.run("emit", "--source", "mail", "--event", "-", stdin=json.dumps(later).encode())
        d = c.start_daemon("--config", c.path("config.yaml"),
                           env={"SMTP_TEST_PASSWORD": "s3cret"})
        c.wait_for("runs finished", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0] == 3,
            timeout=60)
        runs = dict(c.sql("SELECT event_id, status FROM runs"))
        c.check("first and deferred succeeded, refused failed",
                sorted(runs.values()) == ["failed", "succeeded", "succeeded"], repr(runs))
        err = c.sql("SELECT last_error FROM runs WHERE status = 'failed'")
        c.check("refusal names the server's reply", err and "550" in (err[0][0] or "")
                and "nobody@kunde.example" in err[0][0], repr(err))
        msgs = smtp.messages()
        c.check("two messages delivered", len(msgs) == 2, repr(msgs))
        by_to = {}
        for m in msgs:
            with open(m, "rb") as f:
                p = email.message_from_bytes(f.read(), policy=email.policy.default)
            with open(m + ".env") as f:
                env_from, env_to = f.read().splitlines()[:2]
            by_to[str(p["To"])] = (p, env_from, env_to)
        got = by_to.get("Jörg Müller <joerg@kunde.example>")
        c.check("reply to the sender", got is not None, repr(list(by_to)))
        if got:
            p, env_from, env_to = got
            c.check("envelope", env_from == "<support@shop.example>" or
                    env_from == "support@shop.example", env_from)
            c.check("envelope recipient", env_to == "joerg@kunde.example", env_to)
            c.check("From", str(p["From"]) == "Shop Support <support@shop.example>", str(p["From"]))
            subj = orig.get("subject") or ""
            c.check("Subject is Re: once", str(p["Subject"]).startswith("Re: ")
                    and not str(p["Subject"]).lower().startswith("re: re:"), str(p["Subject"]))
            c.check("In-Reply-To", str(p["In-Reply-To"]) == "<%s>" % ev["message_id"],
                    str(p["In-Reply-To"]))
            c.check("References end with the original",
                    str(p["References"]).split()[-1] == "<%s>" % ev["message_id"],
                    str(p["References"]))
            c.check("Auto-Submitted: auto-replied", str(p["Auto-Submitted"]) == "auto-replied")
            text = p.get_body(("plain",)).get_content()
            c.check("body rendered", "Hello Jörg Müller, thanks for writing about" in text
                    and subj[:20] in text, text[:300])
            c.check("original quoted", "\n> " in text or text.rstrip().endswith(">"), text[-300:])
            out = json.loads(c.sql("SELECT output FROM steps WHERE step_id = 'send' AND "
                                   "status = 'succeeded' LIMIT 1")[0][0])
            c.check("step output names the Message-ID",
                    str(p["Message-ID"]) == "<%s>" % out["message_id"], repr(out))
        attempts = c.sql("SELECT s.attempts FROM steps s JOIN runs r ON r.id = s.run_id JOIN "
                         "events e ON e.id = r.event_id WHERE e.payload LIKE '%later@%'")
        c.check("deferred recipient: retried once", attempts == [(2,)], repr(attempts))
        rc = c.stop_daemon(d)
        c.check("exit 0", rc == 0, "exit %d" % rc)

        # A wrong password fails the run (a login refusal will not heal).
        rc, _, err = c.run("emit", "--source", "mail", "--event", "-",
                           stdin=json.dumps(dict(ev, message_id="second@kunde.example")).encode())
        d = c.start_daemon("--config", c.path("config.yaml"), log_name="daemon2.log",
                           env={"SMTP_TEST_PASSWORD": "wrong"})
        c.wait_for("run finished", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0] == 4,
            timeout=60)
        err = c.sql("SELECT last_error FROM runs ORDER BY id DESC LIMIT 1")[0][0] or ""
        c.check("wrong password: failed with the login error", "ogin" in err or "535" in err, err)
        c.check("password never in the log", "s3cret" not in open(c.path("daemon.log")).read())
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=30)
    finally:
        smtp.stop()

    # STARTTLS required by the server, verified against its certificate.
    key, cert = c.path("smtp-key.pem"), c.path("smtp-cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    smtp = Smtp(c.path("inbox-tls"), "--tls-cert", cert, "--tls-key", key)
    try:
        c.write("config-tls.yaml", (CONFIG % smtp.port).replace(
            "    starttls: false\n", "    starttls: true\n    ca_file: \"%s\"\n" % cert))
        c.run("emit", "--source", "mail", "--event", "-",
              stdin=json.dumps(dict(ev, message_id="tls@kunde.example")).encode())
        d = c.start_daemon("--config", c.path("config-tls.yaml"), log_name="daemon3.log",
                           env={"SMTP_TEST_PASSWORD": "s3cret"})
        c.wait_for("STARTTLS run finished", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0] == 5,
            timeout=60)
        last = c.sql("SELECT status, last_error FROM runs ORDER BY id DESC LIMIT 1")[0]
        c.check("sent over STARTTLS", last[0] == "succeeded" and len(smtp.messages()) == 1,
                repr(last))
        rc = c.stop_daemon(d)
        c.check("exit 0 (tls)", rc == 0, "exit %d" % rc)
    finally:
        smtp.stop()


if __name__ == "__main__":
    main("email_send", body)
