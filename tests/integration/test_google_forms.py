"""The google_forms trigger against the fake Google server: 200 responses,
many sharing a lastSubmittedTime, some arriving between polls with the same
instant as the last one taken, listed over several pages, each become
exactly one event with fields keyed by question title and id; a restart
and SIGKILLs during polling repeat and skip nothing; an edited response
(new lastSubmittedTime) is a new event; older responses than the first
start do not trigger."""

import datetime
import json
import signal

from fake_server import FakeGoogle
from promptd_test import main

FORM = "1FAIpQLSfakeFormForTests"

RECIPE = """\
name: forms
trigger:
  google_forms: { form_id: %s, credentials: "file:%s", poll_s: 1, page_size: 7,
                  base_url: "%s" }
steps:
  - id: note
    log: { message: "{{event.fields.Your name}} -> {{event.fields.Company}}" }
"""


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def response(rid, when, name):
    return {"responseId": rid, "createTime": iso(when), "lastSubmittedTime": iso(when),
            "respondentEmail": "%s@example.test" % rid,
            "answers": {"q1": {"questionId": "q1", "textAnswers": {"answers": [{"value": name}]}},
                        "q2": {"questionId": "q2", "textAnswers": {"answers": [
                            {"value": "Co %s" % rid}]}},
                        "q3": {"questionId": "q3", "textAnswers": {"answers": [
                            {"value": "A"}, {"value": "B"}]}}}}


def events(c):
    return [json.loads(p) for (p,) in c.sql("SELECT payload FROM events ORDER BY id")]


def body(c):
    g = FakeGoogle(c)
    try:
        g.call("POST", "/_fake/forms", {
            "formId": FORM, "info": {"title": "Leads"},
            "items": [{"itemId": "i1", "title": "Your name",
                       "questionItem": {"question": {"questionId": "q1"}}},
                      {"itemId": "i2", "title": "Company",
                       "questionItem": {"question": {"questionId": "q2"}}},
                      {"itemId": "i3", "title": "Interests",
                       "questionItem": {"question": {"questionId": "q3"}}}]})
        past = datetime.datetime.utcnow() - datetime.timedelta(hours=1)
        g.call("POST", "/_fake/forms/%s/responses" % FORM,
               {"responses": [response("old", past, "Before start")]})
        c.write("recipes/forms.yaml", RECIPE % (FORM, g.creds, g.url))
        rc, _, err = c.run("recipe", "import", c.path("recipes"))
        c.check("import", rc == 0, err)
        d = c.start_daemon()
        c.wait_for("daemon serving", lambda: c.serving(d), timeout=30)
        c.wait_for("first cursor", lambda: c.sql(
            "SELECT count(*) FROM cursors WHERE source = ?", ("google_forms:" + FORM,))[0][0],
            timeout=30)

        # 200 responses in five bursts; every fourth shares its instant with
        # the one before; the first of each later burst shares the instant
        # of the previous burst's last response.
        base = datetime.datetime.utcnow() + datetime.timedelta(seconds=2)
        made, when = [], base
        for burst in range(5):
            batch = []
            for i in range(40):
                n = burst * 40 + i
                if n % 4 != 0 and not (i == 0 and burst > 0):
                    when = when + datetime.timedelta(milliseconds=3)
                batch.append(response("r%03d" % n, when, "Person %d" % n))
            g.call("POST", "/_fake/forms/%s/responses" % FORM, {"responses": batch})
            made += batch
            if burst == 2:  # a SIGKILL while responses are coming in
                c.wait_for("some events", lambda: len(events(c)) >= 60, timeout=60)
                d.send_signal(signal.SIGKILL)
                d.wait()
                d = c.start_daemon(log_name="daemon2.log")
            else:
                c.wait_for("burst %d taken" % burst, lambda: len(events(c)) >= len(made) - 20,
                           timeout=60)
        c.wait_for("all 200", lambda: len(events(c)) >= 200, timeout=120)
        evs = events(c)
        ids = [e["response_id"] for e in evs]
        c.check("each response exactly once", len(ids) == 200 and len(set(ids)) == 200,
                "%d events, %d distinct" % (len(ids), len(set(ids))))
        c.check("older than the first start: not triggered", "old" not in ids)
        e0 = next(e for e in evs if e["response_id"] == "r005")
        c.check("fields by title and by id", e0["fields"].get("Your name") == "Person 5" and
                e0["fields"].get("q2") == "Co r005" and e0["fields"].get("Company") == "Co r005",
                repr(e0["fields"]))
        c.check("several answers as a list", e0["fields"].get("Interests") == ["A", "B"],
                repr(e0["fields"]))
        c.check("respondent email", e0.get("respondent_email") == "r005@example.test")

        # Restart: nothing repeats.
        rc = c.stop_daemon(d)
        c.check("stop", rc == 0, "exit %d" % rc)
        d = c.start_daemon(log_name="daemon3.log")
        c.wait_for("a poll after restart", lambda: "forms" in open(
            c.path("daemon3.log"), encoding="utf-8", errors="replace").read(), timeout=30)
        import time
        time.sleep(3)
        c.check("restart repeats nothing", len(events(c)) == 200, "%d" % len(events(c)))

        # An edited response is submitted again: a new event.
        edited = response("r010", datetime.datetime.utcnow() + datetime.timedelta(seconds=1),
                          "Person 10 (edited)")
        g.call("POST", "/_fake/forms/%s/responses" % FORM, {"responses": [edited]})
        c.wait_for("the edit", lambda: len(events(c)) == 201, timeout=60)
        c.check("edit carries the new answer", events(c)[-1]["fields"]["Your name"] ==
                "Person 10 (edited)", repr(events(c)[-1]["fields"]))
        c.wait_for("runs done", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] == 201, timeout=60)
        st = [t for t in c.json("status", "--json")["triggers"] if t["kind"] == "google_forms"]
        c.check("status ok", st and st[0]["state"] == "ok", repr(st))
        rc = c.stop_daemon(d)
        c.check("final stop", rc == 0, "exit %d" % rc)
    finally:
        g.stop()


if __name__ == "__main__":
    main("google_forms", body)
