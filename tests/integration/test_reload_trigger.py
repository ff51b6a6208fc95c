#!/usr/bin/env python3
"""SIGHUP and an active trigger: a google_forms trigger takes its
credentials from the configuration's google: section, read when it starts.
Started with credentials the fake refuses, it fails; a reload with the
right ones restarts it and the form's responses arrive, while a changed
http.listen is reported as taking effect only at restart.  A recipe change
(poll_s) replaces the trigger too.  SIGTERM: exit 0, no sanitizer report.
Needs $PROMPTD and openssl."""

import datetime
import json
import signal

from fake_server import FakeGoogle
from promptd_test import SANITIZER_MARKS, main

FORM = "1FAIpQLSreloadFormForTests"

CONFIG = """\
http: { listen: "%(listen)s" }
google: { credentials: "file:%(creds)s", forms_url: "%(url)s" }
"""

RECIPE = """\
name: forms
trigger:
  google_forms: { form_id: %s, poll_s: %d }
steps:
  - id: note
    log: { message: "response {{event.fields.Your name}}" }
"""


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def response(rid, when, name):
    return {"responseId": rid, "createTime": iso(when), "lastSubmittedTime": iso(when),
            "answers": {"q1": {"questionId": "q1",
                               "textAnswers": {"answers": [{"value": name}]}}}}


def log_text(c):
    with open(c.path("daemon.log"), encoding="utf-8", errors="replace") as f:
        return f.read()


def after(c, pos, needle):
    return [l for l in log_text(c)[pos:].splitlines() if needle in l]


def body(c):
    g = FakeGoogle(c)
    try:
        run(c, g)
    finally:
        g.stop()


def run(c, g):
    g.call("POST", "/_fake/forms", {
        "formId": FORM, "info": {"title": "Leads"},
        "items": [{"itemId": "i1", "title": "Your name",
                   "questionItem": {"question": {"questionId": "q1"}}}]})
    with open(g.creds, encoding="utf-8") as f:
        key = json.load(f)
    key["client_email"] = "someone-else@example-project.iam.gserviceaccount.com"
    bad = c.write("bad-sa.json", json.dumps(key))
    cfg = c.write("promptd.yaml", CONFIG % {"listen": "127.0.0.1:0", "creds": bad, "url": g.url})
    c.write("recipes/forms.yaml", RECIPE % (FORM, 1))
    d = c.start_daemon("--config", cfg, "--recipes", c.path("recipes"))
    c.wait_for("daemon serving", lambda: c.serving(d), timeout=30)
    c.wait_for("the trigger failing with the refused credentials",
               lambda: after(c, 0, 'msg="trigger failing"'), timeout=30)
    when = datetime.datetime.utcnow() + datetime.timedelta(seconds=1)
    g.call("POST", "/_fake/forms/%s/responses" % FORM,
           {"responses": [response("r1", when, "Ada")]})

    pos = len(log_text(c))
    c.write("promptd.yaml", CONFIG % {"listen": "127.0.0.1:1", "creds": g.creds, "url": g.url})
    d.send_signal(signal.SIGHUP)
    c.wait_for("config reloaded", lambda: after(c, pos, 'msg="config reloaded"'))
    c.check("google named as changed", "google" in after(c, pos, 'msg="config reloaded"')[0],
            after(c, pos, 'msg="config reloaded"'))
    c.check("http.listen reported as taking effect at restart",
            after(c, pos, 'http.listen changed: takes effect at restart'), log_text(c)[pos:])
    c.check("the trigger restarted", after(c, pos, 'msg="trigger restarting with the new'),
            log_text(c)[pos:])
    c.wait_for("the response ingested with the new credentials", lambda: c.sql(
        "SELECT count(*) FROM events WHERE source = ?", ("google_forms:" + FORM,))[0][0] == 1,
        timeout=30)
    c.wait_for("its run succeeded", lambda: after(c, pos, 'response Ada'), timeout=30)

    # A recipe change replaces the trigger instance as well.
    pos = len(log_text(c))
    c.write("recipes/forms.yaml", RECIPE % (FORM, 2))
    d.send_signal(signal.SIGHUP)
    c.wait_for("recipe reloaded", lambda: after(c, pos, 'msg="recipe reloaded" recipe=forms version=2'))
    c.wait_for("trigger replaced", lambda: after(c, pos, 'msg="trigger started"'))
    c.check("config unchanged on the second reload", after(c, pos, 'msg="config unchanged"'))
    when = datetime.datetime.utcnow() + datetime.timedelta(seconds=1)
    g.call("POST", "/_fake/forms/%s/responses" % FORM,
           {"responses": [response("r2", when, "Grace")]})
    c.wait_for("the next response after the recipe change", lambda: after(c, pos, 'response Grace'),
               timeout=30)
    c.check("each response once", c.sql(
        "SELECT count(*) FROM events WHERE source = ?", ("google_forms:" + FORM,))[0][0] == 2)

    rc = c.stop_daemon(d)
    c.check("daemon exits 0 on SIGTERM", rc == 0, rc)
    text = log_text(c)
    c.check("no sanitizer report", not any(m in text for m in SANITIZER_MARKS), text[-3000:])


if __name__ == "__main__":
    main("reload_trigger", body)
