"""The email-draft-replies recipe against a real Dovecot started by the
test: mail delivered to INBOX becomes a GPT-written reply in Drafts,
threaded (To, Subject, In-Reply-To, References), flagged \\Draft and
unseen, with the body the fake OpenAI returned; robots and the account's
own mail trigger nothing; a draft step interrupted after its APPEND (the
step left running, as a SIGKILL before the commit leaves it) adds no
second draft; mail delivered while promptd is stopped is processed once
each after start, and the first start ignores older mail."""

import email
import email.policy
import json
import os
import re
import signal

from dovecot import Dovecot
from fake_server import FakeOpenAI
from promptd_test import SOURCE_DIR, main

CONFIG = """\
mail:
  support:
    imap: "%s"
    ca_file: "%s"
    user: support
    password: env:SUPPORT_MAIL_PASSWORD
    address: support@shop.example
    name: Shop Support
engine: { retry: { base_ms: 200 } }
"""


def mail(n, sender="Kim Lee <kim@customer.example>", extra=""):
    return ("From: %s\r\nTo: Shop <support@shop.example>\r\nSubject: Order %d is late\r\n"
            "Message-ID: <m%d@customer.example>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
            "%sContent-Type: text/plain; charset=utf-8\r\n\r\nWhere is order %d?\r\n"
            % (sender, n, n, extra, n)).encode()


def drafts(d):
    out = []
    for uid, flags, raw in d.messages("support", "Drafts"):
        out.append((uid, flags, email.message_from_bytes(raw, policy=email.policy.default)))
    return out


def body(c):
    recipe = open(os.path.join(SOURCE_DIR, "recipes", "email-draft-replies.yaml"),
                  encoding="utf-8").read()
    recipe = re.sub(r"poll_s: \d+", "poll_s: 1", recipe)
    c.write("recipes/email-draft-replies.yaml", recipe)
    fake = FakeOpenAI(log=c.path("fake.log"))
    with Dovecot(users={"support": "pw-Support-1"}, tls=True) as d:
        c.write("config.yaml", CONFIG % (d.url(tls=True), d.ca_file))
        env = dict(fake.env(), SUPPORT_MAIL_PASSWORD="pw-Support-1")
        d.deliver("support", mail(1))  # before the first start: must not trigger
        daemon = c.start_daemon("--config", c.path("config.yaml"), "--recipes",
                                c.path("recipes"), env=env)
        c.wait_for("daemon serving", lambda: c.serving(daemon), timeout=30)
        c.wait_for("first poll (cursor set)", lambda: c.sql(
            "SELECT count(*) FROM cursors WHERE source = 'imap:support/INBOX'")[0][0] == 1,
            timeout=30)
        d.deliver("support", mail(2))
        d.deliver("support", mail(3, extra="Auto-Submitted: auto-replied\r\n"))
        d.deliver("support", mail(4, sender="Shop Support <support@shop.example>"))
        d.deliver("support", mail(5, sender="MAILER-DAEMON <mailer-daemon@customer.example>"))
        c.wait_for("one draft", lambda: len(drafts(d)) >= 1, timeout=60)
        c.wait_for("run done", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] >= 1, timeout=30)
        events = [json.loads(p) for (p,) in c.sql("SELECT payload FROM events ORDER BY id")]
        c.check("only the customer's new mail became an event",
                [e["subject"] for e in events] == ["Order 2 is late"], repr(events)[:300])
        ds = drafts(d)
        c.check("exactly one draft", len(ds) == 1, repr([str(m["Subject"]) for _, _, m in ds]))
        uid, flags, m = ds[0]
        c.check("draft flagged \\Draft and unseen", "\\Draft" in flags and "\\Seen" not in flags,
                repr(flags))
        c.check("To: the sender", str(m["To"]) == "Kim Lee <kim@customer.example>", str(m["To"]))
        c.check("Subject: Re: once", str(m["Subject"]) == "Re: Order 2 is late", str(m["Subject"]))
        c.check("In-Reply-To", str(m["In-Reply-To"]) == "<m2@customer.example>")
        c.check("References", str(m["References"]) == "<m2@customer.example>")
        c.check("From: the account", str(m["From"]) == "Shop Support <support@shop.example>",
                str(m["From"]))
        step = c.sql("SELECT output FROM steps WHERE step_id = 'write' AND status = 'succeeded'")
        gpt_text = json.loads(step[0][0])["text"] if step else None
        text = m.get_body(("plain",)).get_content()
        c.check("body is the fake OpenAI's reply, original quoted",
                gpt_text and text.startswith(gpt_text.strip()[:40]) and "> Where is order 2?" in text,
                repr((gpt_text, text))[:400])
        log = open(c.path("daemon.log"), encoding="utf-8", errors="replace").read()
        for why in ("auto-replied", "sent by the account itself", "mailer-daemon"):
            c.check("skipped with a reason: %s" % why, re.search(
                r"imap message skipped.*reason=.*%s" % re.escape(why), log, re.I) is not None)

        # A draft step interrupted after its APPEND: the row still running,
        # as a SIGKILL before the commit leaves it.  The next start repeats
        # the step, which finds the draft by its Message-ID.
        rc = c.stop_daemon(daemon)
        c.check("exit 0", rc == 0, "exit %d" % rc)
        run_id = c.sql("SELECT run_id FROM steps WHERE step_id = 'draft'")[0][0]
        con = __import__("sqlite3").connect(c.db)
        with con:
            con.execute("UPDATE steps SET status = 'running', output = NULL, finished_at = 0"
                        " WHERE run_id = ? AND step_id = 'draft'", (run_id,))
            con.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run_id,))
        con.close()

        # Meanwhile, mail arrives while promptd is stopped.
        for n in range(10, 70):
            d.deliver("support", mail(n))
        # Real SIGKILLs while drafts are being appended: some land between
        # an APPEND and its step's commit; each draft must still exist once.
        for k, at in enumerate((8, 25)):
            daemon = c.start_daemon("--config", c.path("config.yaml"),
                                    log_name="daemon-kill%d.log" % k, env=env)
            c.wait_for("%d drafts" % at, lambda: len(d.messages("support", "Drafts")) >= at,
                       timeout=120)
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
        daemon = c.start_daemon("--config", c.path("config.yaml"), log_name="daemon2.log", env=env)
        c.wait_for("all runs done", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0] == 61,
            timeout=240)
        out = json.loads(c.sql("SELECT output FROM steps WHERE run_id = ? AND step_id = 'draft'",
                               (run_id,))[0][0])
        c.check("repeated draft step found its draft", out.get("already_there") is True, repr(out))
        subjects = sorted(str(m["Subject"]) for _, _, m in drafts(d))
        want = sorted(["Re: Order 2 is late"] + ["Re: Order %d is late" % n for n in range(10, 70)])
        c.check("one draft per message, none twice", subjects == want,
                "%d drafts" % len(subjects))
        failed = c.sql("SELECT last_error FROM runs WHERE status = 'failed'")
        c.check("no run failed", not failed, repr(failed))
        keys = [k for (k,) in c.sql("SELECT dedupe_key FROM events")]
        c.check("each message one event", len(keys) == len(set(keys)) == 61, "%d" % len(keys))
        st = c.json("status", "--json")
        t = [x for x in st["triggers"] if x["kind"] == "imap"]
        c.check("status: imap trigger ok", t and t[0]["state"] == "ok", repr(t))
        rc = c.stop_daemon(daemon)
        c.check("exit 0 again", rc == 0, "exit %d" % rc)
        # A poller silent for longer than its limit (a stopped daemon, a
        # hung poll) is failing in status even without an error recorded.
        con = __import__("sqlite3").connect(c.db)
        with con:
            con.execute("UPDATE trigger_health SET last_success = last_success - 3600000")
        con.close()
        t = [x for x in c.json("status", "--json")["triggers"] if x["kind"] == "imap"]
        c.check("status: silent for an hour is failing", t and t[0]["state"] == "failing", repr(t))
        for name in ("daemon.log", "daemon2.log"):
            c.check("password not logged (%s)" % name,
                    "pw-Support-1" not in open(c.path(name), encoding="utf-8",
                                               errors="replace").read())
    fake.stop()


if __name__ == "__main__":
    main("email_draft", body)
