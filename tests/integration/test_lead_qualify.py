"""The lead-qualification recipe end to end, as shipped in recipes/: curl
posts signed leads to `promptd serve`'s webhook server on loopback; each is
answered 202 once durable; GPT (the fake OpenAI) scores it; a hot lead
reaches the fake Slack as exactly the message the recipe's template makes
of the stored GPT answer; every lead lands once in leads.csv.  Unsigned
and badly signed posts get 401 and create nothing."""

import csv
import hashlib
import hmac
import json
import os
import shutil
import subprocess

from fake_server import FakeOpenAI, FakeSlack
from promptd_test import SOURCE_DIR, main

SECRET = "lead-form-secret-\u00e9"  # non-ASCII on purpose: bytes are signed, not characters
HOOK = "/services/T0LEAD/B0LEAD/LeadHookSecretPath"
LEADS = [
    {"name": "Maria Rossi", "company": "Rossi Logistica", "email": "maria@rossi.example",
     "message": "We run 40 trucks and need route planning for all drivers before March."},
    {"name": "Tom Becker", "company": "Becker & Sohn", "email": "tom@becker.example",
     "message": "Just curious what it costs."},
    {"name": "Aiko Tanaka", "company": "Tanaka Foods", "email": "aiko@tanaka.example",
     "message": "Our team of 12 needs a demo next week, budget approved."},
    {"name": "Lucas \"Luc\" Moreau", "company": "Moreau, Architectes", "email": "lucas@moreau.example",
     "message": "Can you integrate with our CRM?\nWe are 30 people."},
    {"name": "Priya Nair", "company": "Nair Health", "email": "priya@nair.example",
     "message": "Looking for a vendor for 200 clinic staff, decision this quarter."},
    {"name": "Jan Novak", "company": "Novak s.r.o.", "email": "jan@novak.example",
     "message": "Send me a price list please."},
]


def curl(url, body, headers):
    cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", url,
           "--data-binary", "@-"]
    for k, v in headers.items():
        cmd += ["-H", "%s: %s" % (k, v)]
    p = subprocess.run(cmd, input=body, capture_output=True, timeout=30)
    text = p.stdout.decode("utf-8", "replace")
    out, _, code = text.rpartition("\n")
    return int(code or 0), out


def sign(body):
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def body(c):
    if not shutil.which("curl"):
        c.check("curl is installed (scripts/install-deps.sh --test)", False)
        return
    fake = FakeOpenAI(validate=True, log=c.path("fake-openai.log"))
    slack = FakeSlack(["--webhook", HOOK, "--enforce-pacing"], log=c.path("fake-slack.log"))
    try:
        c.write("recipes/lead-qualify.yaml",
                open(os.path.join(SOURCE_DIR, "recipes", "lead-qualify.yaml"),
                     encoding="utf-8").read())
        c.write("config.yaml", "http: { listen: \"127.0.0.1:0\" }\n")
        env = dict(fake.env(), LEADS_SECRET=SECRET, SLACK_SALES_URL=slack.url + HOOK)
        daemon = c.start_daemon("--config", c.path("config.yaml"), "--recipes",
                                c.path("recipes"), env=env)
        port = c.listen_port()
        c.wait_for("daemon serving", lambda: c.serving(daemon), timeout=30)
        url = "http://127.0.0.1:%d/hooks/leads" % port

        # Refused first: nothing may be created by these.
        raw = json.dumps(LEADS[0]).encode()
        st, out = curl(url, raw, {"Content-Type": "application/json"})
        c.check("unsigned lead: 401", st == 401, "%d %s" % (st, out))
        st, out = curl(url, raw, {"Content-Type": "application/json",
                                  "X-Signature-256": sign(raw + b" ")})
        c.check("badly signed lead: 401", st == 401, "%d %s" % (st, out))
        st, out = curl(url, raw, {"Content-Type": "application/json",
                                  "X-Signature-256": sign(raw).replace("sha256=", "sha1=")})
        c.check("wrong prefix: 401", st == 401, "%d %s" % (st, out))
        c.check("refused leads created nothing",
                c.sql("SELECT count(*) FROM events")[0][0] == 0
                and c.sql("SELECT count(*) FROM runs")[0][0] == 0)

        ids = {}
        for i, lead in enumerate(LEADS):
            raw = json.dumps(lead).encode()
            st, out = curl(url, raw, {"Content-Type": "application/json",
                                      "X-Signature-256": sign(raw), "Idempotency-Key": "lead-%d" % i})
            doc = json.loads(out) if st == 202 else {}
            c.check("signed lead %d: 202 with its event id" % i,
                    st == 202 and doc.get("runs") == 1 and doc.get("duplicate") is False,
                    "%d %s" % (st, out))
            if doc:
                ids[i] = doc["event_id"]
                # Durable before the answer: the event and its run are there now.
                c.check("lead %d durable at 202" % i, c.sql(
                    "SELECT count(*) FROM runs WHERE event_id = ?", (doc["event_id"],))[0][0] == 1)
        raw = json.dumps(LEADS[0]).encode()
        st, out = curl(url, raw, {"Content-Type": "application/json",
                                  "X-Signature-256": sign(raw), "Idempotency-Key": "lead-0"})
        c.check("redelivered lead: 202 with the first event id, nothing new",
                st == 202 and json.loads(out) == {"event_id": ids.get(0), "runs": 0,
                                                  "duplicate": True}, out)

        c.wait_for("every run finished", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0]
            == len(LEADS), timeout=90)
        failed = c.sql("SELECT id, last_error FROM runs WHERE status != 'succeeded'")
        c.check("every run succeeded", not failed, repr(failed))

        # What Slack must have received: the recipe's text, rendered from each
        # hot lead's stored GPT answer.
        expected = []
        for i, lead in enumerate(LEADS):
            rows = c.sql("SELECT s.output FROM steps s JOIN runs r ON r.id = s.run_id"
                         " WHERE r.event_id = ? AND s.step_id = 'qualify'", (ids.get(i),))
            q = json.loads(rows[0][0]) if rows else {}
            notify = c.sql("SELECT s.status FROM steps s JOIN runs r ON r.id = s.run_id"
                           " WHERE r.event_id = ? AND s.step_id = 'notify'", (ids.get(i),))
            hot = q.get("score", 0) >= 7
            c.check("lead %d: notify %s" % (i, "ran" if hot else "skipped"),
                    notify == [("succeeded" if hot else "skipped",)], repr((q, notify)))
            if hot:
                expected.append(
                    "Hot lead %d/10: %s, %s (%s people). %s Next: %s."
                    % (q["score"], lead["name"], lead["company"].replace("&", "&amp;"),
                       q["company_size"], q["summary"], q["next_step"]))
        got = [r["body"].get("text") for r in slack.requests()
               if r["path"] == HOOK and r["status"] == 200]
        c.check("some leads were hot (the test covers the Slack path)", len(expected) >= 1,
                repr(expected))
        c.check("Slack received exactly the expected messages",
                sorted(got) == sorted(expected), "\n got %r\nwant %r" % (got, expected))
        c.check("no Slack request refused", all(r["status"] == 200 for r in slack.requests()),
                repr([r["status"] for r in slack.requests()]))

        with open(c.path("leads.csv"), encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        c.check("leads.csv: header once", rows[:1] == [["name", "company", "email", "score",
                                                        "company_size", "next_step", "summary"]],
                repr(rows[:1]))
        c.check("leads.csv: one row per lead, fields intact",
                sorted(r[:3] for r in rows[1:]) == sorted(
                    [l["name"], l["company"], l["email"]] for l in LEADS), repr(rows))
        c.check("every request the fake OpenAI saw was valid", fake.stats().get("invalid", 0) == 0,
                repr(fake.stats()))
        rc = c.stop_daemon(daemon)
        c.check("daemon exits 0", rc == 0, "exit %d" % rc)
        with open(c.path("daemon.log"), encoding="utf-8", errors="replace") as f:
            log = f.read()
        c.check("the secret and the Slack URL are not in the log",
                SECRET not in log and "LeadHookSecretPath" not in log, "")
    finally:
        fake.stop()
        slack.stop()


if __name__ == "__main__":
    main("lead_qualify", body)
