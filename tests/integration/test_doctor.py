"""promptd doctor: config, secrets (never printed), store, recipes, and with
--network each provider, Google credential and mail account reached for
real (the fake OpenAI and Google servers, a real Dovecot)."""

import json
import os

from dovecot import Dovecot
from fake_server import FakeGoogle, FakeOpenAI
from promptd_test import free_port, main

SECRET = "s3cret-Value-9f2c"
RECIPE = """\
name: doctor-check
trigger:
  webhook: { path: /hooks/doctor, verify: github, secret: env:DOCTOR_HOOK_SECRET }
steps:
  - id: post
    http:
      url: "http://127.0.0.1:9/x"
      method: POST
      headers: { Authorization: "Bearer {{event.token}}" }
      body: "{{event.text}}"
"""


def findings(c, out):
    try:
        return json.loads(out)
    except ValueError:
        c.check("doctor --json prints JSON", False, out[:300])
        return {"ok": None, "checks": []}


def status_of(report, check, name_part):
    return [x["status"] for x in report["checks"]
            if x["check"] == check and name_part in x["name"]]


def body(c):
    # No database yet: a warning, not a failure.
    rc, out, err = c.run("doctor")
    c.check("no database: exit 0", rc == 0, out + err)
    c.check("no database: warned", "warn  store" in out and "serve creates it" in out, out)

    # A configuration that does not load fails with its position.
    c.write("bad.yaml", "engine:\n  concurrency: many\n")
    rc, out, err = c.run("--config", c.path("bad.yaml"), "doctor")
    c.check("bad config: exit 1", rc == 1, out + err)
    c.check("bad config: FILE:LINE:COL named", "bad.yaml:2:" in out and "concurrency" in out, out)

    # Secrets in the configuration and in recipes: resolved, never printed.
    c.write("secret.txt", SECRET + "\n")
    c.write("good.yaml", "providers:\n  local:\n    base_url: http://127.0.0.1:%d/v1\n"
            "    api_key: file:%s\n" % (free_port(), c.path("secret.txt")))
    c.write("recipes/doctor.yaml", RECIPE)
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("recipe imported", rc == 0, err)
    rc, out, err = c.run("--config", c.path("good.yaml"), "doctor",
                         env={"DOCTOR_HOOK_SECRET": None})
    c.check("missing env secret: exit 1", rc == 1, out + err)
    c.check("missing env secret named with its field",
            "fail  secret   recipe doctor-check: trigger.webhook.secret (env:DOCTOR_HOOK_SECRET)"
            in out, out)
    c.check("file secret resolves",
            "ok    secret   config: providers.local.api_key (file:" in out, out)
    c.check("store ok", "ok    store" in out and "integrity_check ok" in out, out)
    c.check("recipes compile", "1 enabled recipe compiles" in out, out)
    c.check("a template's Bearer text is no secret", "Authorization" not in out, out)

    rc, out, err = c.run("--config", c.path("good.yaml"), "doctor", "--json",
                         env={"DOCTOR_HOOK_SECRET": SECRET})
    rep = findings(c, out)
    c.check("all set: exit 0", rc == 0 and rep["ok"] is True, out + err)
    c.check("json fields", all(set(x) == {"check", "name", "status", "detail"}
                               for x in rep["checks"]) and rep["checks"], out[:400])
    c.check("json: both secrets ok", status_of(rep, "secret", "DOCTOR_HOOK_SECRET") == ["ok"] and
            status_of(rep, "secret", "providers.local.api_key") == ["ok"], out[:600])
    c.check("no secret value printed", SECRET not in out + err)

    # An empty secret is refused (as it would be at run time).
    c.write("empty.txt", "\n")
    c.write("empty.yaml", "providers:\n  local:\n    base_url: http://127.0.0.1:9/v1\n"
            "    api_key: file:%s\n" % c.path("empty.txt"))
    rc, out, err = c.run("--config", c.path("empty.yaml"), "doctor",
                         env={"DOCTOR_HOOK_SECRET": SECRET})
    c.check("empty secret: fail, exit 1", rc == 1 and "fail  secret" in out and "empty" in out,
            out + err)

    # Network: providers against the fake OpenAI (right key, wrong key, no
    # server), Google credentials against the fake Google token endpoint, a
    # mail account against a real Dovecot (right and wrong password).
    fake = FakeOpenAI(key="sk-right-key-123456", log=c.path("fake.log"))
    google = FakeGoogle(c)
    try:
        with Dovecot(users={"support": "pw-Doctor-1"}) as d:
            c.write("net.yaml", """\
providers:
  openai: { base_url: "%s", api_key: env:OPENAI_API_KEY }
  wrongkey: { base_url: "%s", api_key: env:WRONG_KEY }
  nobody: { base_url: "http://127.0.0.1:%d/v1", api_key: env:WRONG_KEY }
google:
  credentials: "file:%s"
mail:
  support:
    imap: "%s"
    starttls: false
    user: support
    password: env:MAIL_PW
  badpw:
    imap: "%s"
    starttls: false
    user: support
    password: env:WRONG_KEY
""" % (fake.base_url, fake.base_url, free_port(), google.creds, d.url(), d.url()))
            env = {"OPENAI_API_KEY": "sk-right-key-123456", "WRONG_KEY": "sk-wrong-key-000000",
                   "MAIL_PW": "pw-Doctor-1", "DOCTOR_HOOK_SECRET": SECRET}
            rc, out, err = c.run("--config", c.path("net.yaml"), "doctor", "--network",
                                 "--timeout", "10", "--json", env=env)
            rep = findings(c, out)
            c.check("network: some failed, exit 1", rc == 1 and rep["ok"] is False, out + err)
            c.check("provider with the right key reached",
                    status_of(rep, "network", "providers.openai") == ["ok"], out)
            c.check("wrong key refused (the server's 401)",
                    status_of(rep, "network", "providers.wrongkey") == ["fail"] and
                    "HTTP 401" in out and "Incorrect API key" in out, out)
            c.check("unreachable provider fails",
                    status_of(rep, "network", "providers.nobody") == ["fail"] and
                    "cannot reach" in out, out)
            c.check("google credentials exchanged",
                    status_of(rep, "network", "google.credentials") == ["ok"], out)
            c.check("mail account logged in",
                    status_of(rep, "network", "mail.support") == ["ok"] and "INBOX holds" in out,
                    out)
            c.check("wrong mail password refused",
                    status_of(rep, "network", "mail.badpw") == ["fail"], out)
            c.check("no key or password printed", "sk-right-key-123456" not in out + err and
                    "pw-Doctor-1" not in out + err and "sk-wrong-key-000000" not in out + err)
            models = [r for r in fake.requests() if r["path"].endswith("/models")]
            c.check("providers asked GET /v1/models (2 reached the fake)",
                    len(models) == 2 and all(r["method"] == "GET" for r in models), repr(models)[:300])
            c.check("nothing posted to the model", not [r for r in fake.requests()
                                                        if r["method"] == "POST"])

            # Everything right: green.
            c.write("net-ok.yaml", """\
providers:
  openai: { base_url: "%s", api_key: env:OPENAI_API_KEY }
mail:
  support: { imap: "%s", starttls: false, user: support, password: env:MAIL_PW }
""" % (fake.base_url, d.url()))
            rc, out, err = c.run("--config", c.path("net-ok.yaml"), "doctor", "--network", env=env)
            c.check("network all well: exit 0", rc == 0 and "doctor: all is well" in out, out + err)
    finally:
        google.stop()
        fake.stop()

    # A damaged database fails the store check.
    c.write("broken.db", "this is not a database file at all" * 200)
    rc, out, err = c.run("--db", c.path("broken.db"), "doctor", db=False)
    c.check("damaged database: exit 1", rc == 1 and "fail  store" in out, out + err)

    # Usage errors.
    rc, _, err = c.run("doctor", "--bogus")
    c.check("unknown option: exit 2", rc == 2 and "--bogus" in err, err)
    rc, _, err = c.run("doctor", "--timeout", "0")
    c.check("bad timeout: exit 2", rc == 2, err)
    rc, out, _ = c.run("doctor", "--help")
    c.check("--help explains the checks", rc == 0 and "--network" in out and "Exit status" in out)


if __name__ == "__main__":
    main("doctor", body)
