"""The `gpt` step against the fake OpenAI server (tests/fake/fake_openai.py,
run with --validate and an API key).

Requests: every body promptd sends is a valid CreateChatCompletionRequest
(the shared OpenAPI schema) and equals the step input `runs show` stores,
with strict structured output. Replies: fields reach later steps, `_gpt`
carries model, finish_reason, request id, usage and cost; text without a
schema. Repair turn, refusal, transient faults (retried, N+1 requests),
permanent ones (no retry, the API's message verbatim), insufficient_quota
(status `budget`, replay), the response cache, `promptd usage` against the
fake's figures, import-time refusals, Azure's URL and header, and daily
token budgets (overshoot bounded by the calls in flight, status `budget`
until the next UTC midnight or a raised cap)."""

import datetime
import json
import os
import signal
import urllib.error
import urllib.request

from fake_server import FakeOpenAI, first_user
from promptd_test import Failure, main

KEY = "sk-test-0123456789abcdef"
WRONG_KEY = "sk-wrong-9876543210fedcba"
REFUSAL = "I'm sorry, but I can't assist with that request."
MSG_QUOTA = ("You exceeded your current quota, please check your plan and billing details. "
             "For more information on this error, read the docs: "
             "https://platform.openai.com/docs/guides/error-codes/api-errors.")
MSG_400 = "Invalid value for 'messages': injected by the fake."

SCHEMA = """\
      output_schema:
        type: object
        properties:
          score: { type: integer, minimum: 0, maximum: 100 }
          why: { type: string }
        required: [score, why]
"""

CONFIG = """\
engine:
  concurrency: 16
  retry: { max_attempts: 8, base_ms: 20, cap_ms: 200 }
providers:
  slow: { base_url: "%(base)s", api_key: "env:OPENAI_API_KEY", timeout_s: 2 }
  wrongkey: { base_url: "%(base)s", api_key: "env:PROMPTD_WRONG_KEY" }
  azure:
    base_url: "%(root)s/openai/deployments/mydep"
    api_version: 2024-10-21
    api_key: "env:OPENAI_API_KEY"
"""

RECIPES = {
    # fields reach a later step
    "score": """\
name: score
trigger: { event: { source: score } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      system: "Recipe score."
      prompt: "Lead: {{event.name}}"
%(schema)s  - id: row
    csvfile: { path: "%(csv)s", row: ["{{steps.q.score}}", "{{steps.q.why}}", "{{steps.q._gpt.request_id}}"] }
""",
    # the prompt is the event's text: markers pick the fake's behaviour
    "ask": """\
name: ask
trigger: { event: { source: ask } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      system: "Recipe ask."
      prompt: "{{event.text}}"
%(schema)s""",
    "plain": """\
name: plain
trigger: { event: { source: plain } }
steps:
  - id: p
    gpt:
      model: gpt-4o-mini
      messages:
        - { role: developer, content: "Recipe plain." }
        - { role: user, content: "{{event.text}}" }
      temperature: 0.2
      max_completion_tokens: 200
  - id: row
    csvfile: { path: "%(plain_csv)s", row: ["{{steps.p.text}}"] }
""",
    "slow": """\
name: slow
trigger: { event: { source: slow } }
steps:
  - id: q
    gpt:
      provider: slow
      model: gpt-4o-mini
      system: "Recipe slow."
      prompt: "{{event.text}}"
%(schema)s""",
    "wrong": """\
name: wrong
trigger: { event: { source: wrong } }
steps:
  - id: q
    gpt:
      provider: wrongkey
      model: gpt-4o-mini
      system: "Recipe wrong."
      prompt: "{{event.text}}"
""",
    "azure": """\
name: azure
trigger: { event: { source: azure } }
steps:
  - id: q
    gpt:
      provider: azure
      model: gpt-4o-mini
      system: "Recipe azure."
      prompt: "{{event.text}}"
%(schema)s""",
    "cached": """\
name: cached
trigger: { event: { source: cached } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      system: "Recipe cached."
      prompt: "{{event.text}}"
      cache: 1h
%(schema)s""",
}

REFUSED = {
    "optional.yaml": ("""\
name: optional
trigger: { event: { source: x } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      prompt: "hi"
      output_schema:
        type: object
        properties: { a: { type: string }, b: { type: integer } }
        required: [a]
""", "output_schema"),
    "allof.yaml": ("""\
name: allof
trigger: { event: { source: x } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      prompt: "hi"
      output_schema:
        allOf:
          - { type: object, properties: { a: { type: string } }, required: [a] }
""", "output_schema"),
    "both.yaml": ("""\
name: both
trigger: { event: { source: x } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      prompt: "hi"
      messages: [{ role: user, content: "hi" }]
""", "prompt"),
}


# ---------------------------------------------------------------- helpers

def emit(c, source, payload):
    rc, out, err = c.run("emit", "--source", source, "--event", "-", "--json",
                         stdin=json.dumps(payload).encode())
    if rc != 0:
        raise Failure("emit %s: %s" % (source, err.strip()))
    return json.loads(out)["event_id"]


def run_for_event(c, event_id):
    for r in c.json("runs", "list", "--limit", "100000", "--json"):
        if r["event_id"] == event_id:
            return r
    return None


def settled(c, event_id, statuses=("succeeded", "failed", "budget"), timeout=60):
    def done():
        r = run_for_event(c, event_id)
        return r if r and r["status"] in statuses else None
    return c.wait_for("run of event %d to settle" % event_id, done, timeout=timeout)


def show(c, run_id):
    return c.json("runs", "show", str(run_id), "--json")


def recs_with(fake, text):
    """Recorded chat requests whose first user message is text."""
    return [r for r in fake.requests() if first_user(r) == text]


def usage_tokens(recs):
    calls = pt = ct = cached = 0
    for r in recs:
        u = r.get("usage")
        if u:
            calls += 1
            pt += u["prompt_tokens"]
            ct += u["completion_tokens"]
            cached += u["prompt_tokens_details"]["cached_tokens"]
    return calls, pt, ct, cached


def direct_error(fake, key, text):
    """The API's error message for a request, asked directly (for the
    verbatim check)."""
    body = json.dumps({"model": "gpt-4o-mini",
                       "messages": [{"role": "user", "content": text}]}).encode()
    req = urllib.request.Request(fake.base_url + "/chat/completions", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + key})
    try:
        urllib.request.urlopen(req, timeout=10).read()
    except urllib.error.HTTPError as e:
        return json.loads(e.read())["error"]["message"]
    raise Failure("expected an error from the fake")


def next_utc_midnight():
    now = datetime.datetime.now(datetime.timezone.utc)
    d = (now + datetime.timedelta(days=1)).date()
    return "%sT00:00:00.000Z" % d.isoformat()


# ---------------------------------------------------------------- scenarios

def body(c):
    fake = FakeOpenAI(validate=True, key=KEY, log=c.path("fake.log"))
    try:
        behaviour(c, fake)
    finally:
        fake.stop()
    budget_db = c.path("budget.db")
    c.db = budget_db
    fake = FakeOpenAI(validate=True, key=KEY, log=c.path("fake-budget.log"))
    try:
        budget(c, fake)
    finally:
        fake.stop()


def behaviour(c, fake):
    csv = c.path("score.csv")
    plain_csv = c.path("plain.csv")
    subst = {"schema": SCHEMA, "csv": csv, "plain_csv": plain_csv}
    for name, text in RECIPES.items():
        c.write("recipes/%s.yaml" % name, text % subst)
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("recipes import", rc == 0, err)
    cfg = c.write("promptd.yaml", CONFIG % {"base": fake.base_url, "root": fake.url})
    env = dict(fake.env(KEY), PROMPTD_WRONG_KEY=WRONG_KEY)
    daemon = c.start_daemon("--config", cfg, env=env)
    c.wait_for("daemon", lambda: c.serving(daemon), timeout=30)

    # -- import-time refusals
    for fname, (text, word) in REFUSED.items():
        path = c.write("refused/" + fname, text)
        rc, out, err = c.run("recipe", "import", path)
        c.check("import refuses " + fname, rc != 0, out + err)
        c.check("refusal of %s names %s" % (fname, word), word in err, err)
    rc, out, _ = c.run("recipe", "list")
    c.check("refused recipes not stored",
            all(n not in out for n in ("optional", "allof", "both")), out)

    # -- fields reach later steps, the request exactly as stored
    ev = emit(c, "score", {"name": "Ann Example"})
    r = settled(c, ev)
    c.check("score run succeeded", r["status"] == "succeeded", str(r))
    s = show(c, r["id"])
    step = s["steps"][0]
    recs = recs_with(fake, "Lead: Ann Example")
    c.check("score: one request", len(recs) == 1, str(len(recs)))
    rec = recs[0]
    sent = step["input"]["body"]
    c.check("recorded body equals the stored input body", rec["body"] == sent,
            "%s\n!=\n%s" % (json.dumps(rec["body"]), json.dumps(sent)))
    rf = sent.get("response_format", {})
    js = rf.get("json_schema", {})
    c.check("response_format json_schema", rf.get("type") == "json_schema", str(rf))
    c.check("strict true", js.get("strict") is True, str(rf))
    c.check("additionalProperties false added",
            js.get("schema", {}).get("additionalProperties") is False, str(rf))
    c.check("request valid", not rec.get("errors") and rec["status"] == 200, str(rec))
    c.check("bearer auth", rec["headers"].get("authorization") == "Bearer " + KEY,
            str(rec["headers"]))
    out = step["output"]
    reply = json.loads(rec["reply"]["content"])
    c.check("output fields are the reply's", out.get("score") == reply["score"]
            and out.get("why") == reply["why"], "%s vs %s" % (out, reply))
    g = out.get("_gpt", {})
    c.check("_gpt.model is the returned model", g.get("model") == "gpt-4o-mini-2024-07-18", str(g))
    c.check("_gpt.finish_reason", g.get("finish_reason") == "stop", str(g))
    c.check("_gpt.request_id is the fake's x-request-id", g.get("request_id") == rec["request_id"],
            "%s vs %s" % (g.get("request_id"), rec["request_id"]))
    c.check("_gpt usage", g.get("prompt_tokens") == rec["usage"]["prompt_tokens"]
            and g.get("completion_tokens") == rec["usage"]["completion_tokens"]
            and g.get("cached_tokens") == 0 and g.get("calls") == 1, str(g))
    # gpt-4o-mini list price: 0.15 in, 0.60 out per million
    want_cost = (rec["usage"]["prompt_tokens"] * 0.15 + rec["usage"]["completion_tokens"] * 0.60) / 1e6
    c.check("_gpt.cost_usd", abs(g.get("cost_usd", -1) - want_cost) < 1e-12,
            "%s vs %s" % (g.get("cost_usd"), want_cost))
    c.check("_gpt not cached", g.get("cached") is False, str(g))
    with open(csv, encoding="utf-8", newline="") as f:
        row = f.read()
    c.check("csvfile got steps.q.score", row == '"%d","%s","%s"\r\n' %
            (reply["score"], reply["why"], rec["request_id"]), repr(row))

    # -- without output_schema: text
    ev = emit(c, "plain", {"text": "Summarise order 1234."})
    r = settled(c, ev)
    c.check("plain run succeeded", r["status"] == "succeeded", str(r))
    s = show(c, r["id"])
    recs = [x for x in fake.requests() if x["body"]["messages"][0]["content"] == "Recipe plain."]
    c.check("plain: one request", len(recs) == 1, str(len(recs)))
    if recs:
        c.check("plain: body as stored", recs[0]["body"] == s["steps"][0]["input"]["body"],
                "%s vs %s" % (recs[0]["body"], s["steps"][0]["input"]["body"]))
        c.check("plain: no response_format", "response_format" not in recs[0]["body"])
        c.check("plain: parameters sent", recs[0]["body"].get("temperature") == 0.2
                and recs[0]["body"].get("max_completion_tokens") == 200, str(recs[0]["body"]))
        text = recs[0]["reply"]["content"]
        c.check("steps.p.text is the reply", s["steps"][0]["output"].get("text") == text,
                str(s["steps"][0]["output"]))
        with open(plain_csv, encoding="utf-8", newline="") as f:
            c.check("text reaches the next step", f.read() == '"%s"\r\n' % text)

    # -- repair turn
    t = "repair me [[fake:invalid-json]]"
    r = settled(c, emit(c, "ask", {"text": t}))
    c.check("repair: run succeeded", r["status"] == "succeeded", str(r))
    recs = recs_with(fake, t)
    c.check("repair: exactly 2 requests", len(recs) == 2, str(len(recs)))
    if len(recs) == 2:
        first, second = recs
        m2 = second["body"]["messages"]
        c.check("repair: second request is the first plus the reply and a user message",
                m2[:-2] == first["body"]["messages"] and m2[-2]["role"] == "assistant"
                and m2[-2]["content"] == first["reply"]["content"] and m2[-1]["role"] == "user",
                json.dumps(m2))
        c.check("repair: the user message carries the validation error",
                "does not match the required JSON schema" in m2[-1]["content"]
                and "score" in m2[-1]["content"], m2[-1]["content"])
        g = show(c, r["id"])["steps"][0]["output"]["_gpt"]
        calls, pt, ct, _ = usage_tokens(recs)
        c.check("repair: usage counts both calls", g["calls"] == 2 and g["prompt_tokens"] == pt
                and g["completion_tokens"] == ct and g["repaired"] is True, str(g))
    t = "never right [[fake:invalid-json-always]]"
    r = settled(c, emit(c, "ask", {"text": t}))
    c.check("invalid always: failed", r["status"] == "failed", str(r))
    recs = recs_with(fake, t)
    c.check("invalid always: 2 requests", len(recs) == 2, str(len(recs)))
    c.check("invalid always: error says after a repair turn",
            "after a repair turn" in (r["error"] or ""), str(r["error"]))
    if recs:
        c.check("invalid always: error carries the reply",
                recs[-1]["reply"]["content"][:500] in (r["error"] or ""),
                "%r not in %r" % (recs[-1]["reply"]["content"], r["error"]))

    # -- refusal
    t = "do something bad [[fake:refuse]]"
    r = settled(c, emit(c, "ask", {"text": t}))
    c.check("refusal: failed", r["status"] == "failed", str(r))
    c.check("refusal: error carries the text", REFUSAL in (r["error"] or ""), str(r["error"]))
    c.check("refusal: one request", len(recs_with(fake, t)) == 1)

    # -- transient faults: retried, N+1 requests
    transient = [("ask", "server_error"), ("ask", "rate_limit"), ("ask", "overloaded"),
                 ("ask", "malformed"), ("slow", "timeout")]
    evs = {}
    for source, kind in transient:
        t = "transient %s [[fake:fail-first=2:%s]]" % (kind, kind)
        evs[kind] = (t, emit(c, source, {"text": t}))
    for kind, (t, ev) in evs.items():
        r = settled(c, ev, timeout=90)
        c.check("%s: run succeeded after retries" % kind, r["status"] == "succeeded", str(r))
        recs = recs_with(fake, t)
        c.check("%s: exactly 3 requests" % kind, len(recs) == 3, str(len(recs)))
        c.check("%s: 2 faults then 200" % kind,
                [x["fault"] for x in recs] == [kind, kind, None] and recs[-1]["status"] == 200,
                str([(x["fault"], x["status"]) for x in recs]))
        s = show(c, r["id"])
        c.check("%s: step attempts 3" % kind, s["steps"][0]["attempts"] == 3, str(s["steps"][0]))
        c.check("%s: request id of the answered call" % kind,
                s["steps"][0]["output"]["_gpt"]["request_id"] == recs[-1]["request_id"])

    # -- permanent: no retry, the API's message verbatim
    t = "broken [[fake:fail-first=1:bad_request]]"
    r = settled(c, emit(c, "ask", {"text": t}))
    c.check("bad_request: failed", r["status"] == "failed", str(r))
    c.check("bad_request: message verbatim", MSG_400 in (r["error"] or ""), str(r["error"]))
    c.check("bad_request: one request", len(recs_with(fake, t)) == 1)
    t = "who am I"
    msg_401 = direct_error(fake, WRONG_KEY, "probe")
    r = settled(c, emit(c, "wrong", {"text": t}))
    c.check("401: failed", r["status"] == "failed", str(r))
    c.check("401: message verbatim", msg_401 in (r["error"] or ""),
            "%r not in %r" % (msg_401, r["error"]))
    recs = recs_with(fake, t)
    c.check("401: one request", len(recs) == 1 and recs[0]["status"] == 401, str(recs))

    # -- insufficient_quota: budget, then replay
    t = "no money [[fake:fail-first=1:quota]]"
    r = settled(c, emit(c, "ask", {"text": t}))
    c.check("quota: status budget", r["status"] == "budget", str(r))
    c.check("quota: the API's message", MSG_QUOTA in (r["error"] or ""), str(r["error"]))
    c.check("quota: one request, no retry", len(recs_with(fake, t)) == 1)
    rc, _, err = c.run("runs", "replay", str(r["id"]))
    c.check("quota: replay accepted", rc == 0, err)
    r = c.wait_for("quota run to succeed after replay",
                   lambda: (lambda x: x if x["status"] == "succeeded" else None)(
                       c.json("runs", "show", str(r["id"]), "--json")), timeout=30)
    c.check("quota: 2 requests in all", len(recs_with(fake, t)) == 2)

    # -- cache
    t = "cache me please"
    r1 = settled(c, emit(c, "cached", {"text": t, "n": 1}))
    r2 = settled(c, emit(c, "cached", {"text": t, "n": 2}))
    c.check("cache: both succeeded", r1["status"] == r2["status"] == "succeeded", "%s %s" % (r1, r2))
    c.check("cache: one API request", len(recs_with(fake, t)) == 1, str(len(recs_with(fake, t))))
    o1 = show(c, r1["id"])["steps"][0]["output"]
    o2 = show(c, r2["id"])["steps"][0]["output"]
    c.check("cache: first not cached", o1["_gpt"]["cached"] is False, str(o1))
    c.check("cache: second cached at no cost", o2["_gpt"]["cached"] is True
            and o2["_gpt"]["cost_usd"] == 0, str(o2))
    c.check("cache: same answer", o1["score"] == o2["score"] and o1["why"] == o2["why"])

    # -- Azure
    t = "azure hello"
    r = settled(c, emit(c, "azure", {"text": t}))
    c.check("azure: succeeded", r["status"] == "succeeded", str(r))
    recs = recs_with(fake, t)
    c.check("azure: one request", len(recs) == 1)
    if recs:
        h = recs[0]["headers"]
        c.check("azure: deployment path", recs[0]["path"] ==
                "/openai/deployments/mydep/chat/completions", recs[0]["path"])
        c.check("azure: api-version query", recs[0]["query"] == "api-version=2024-10-21",
                recs[0]["query"])
        c.check("azure: api-key header", h.get("api-key") == KEY and "authorization" not in h,
                str(h))

    # -- every request valid
    st = fake.stats()
    allrecs = fake.requests()
    c.check("no invalid request recorded", st["invalid"] == 0
            and not any(x.get("errors") for x in allrecs),
            str([x.get("errors") for x in allrecs if x.get("errors")]))
    c.check("no request refused as invalid",
            not any(x["fault"] == "invalid_request" for x in allrecs))

    # -- usage against the fake's figures
    u = c.json("usage", "--json")
    calls, pt, ct, cached = usage_tokens(allrecs)
    tot = u["total"]
    c.check("usage total matches the fake", (tot["calls"], tot["prompt_tokens"],
            tot["completion_tokens"], tot["cached_tokens"]) == (calls, pt, ct, cached),
            "%s vs %s" % (tot, (calls, pt, ct, cached)))
    c.check("usage total shape", set(tot) == {"calls", "prompt_tokens", "completion_tokens",
                                                "cached_tokens", "cost_usd"}, str(tot))
    c.check("usage rows shape", u["rows"] and all(
        set(row) == {"recipe", "model", "calls", "prompt_tokens", "completion_tokens",
                     "cached_tokens", "cost_usd"} for row in u["rows"]), str(u["rows"]))
    want_cost = sum((x["usage"]["prompt_tokens"] * 0.15 + x["usage"]["completion_tokens"] * 0.60)
                    / 1e6 for x in allrecs if x.get("usage"))
    c.check("usage cost", abs(tot["cost_usd"] - want_cost) < 1e-9,
            "%s vs %s" % (tot["cost_usd"], want_cost))
    c.check("usage rows sum to the total", sum(row["calls"] for row in u["rows"]) == tot["calls"]
            and sum(row["prompt_tokens"] for row in u["rows"]) == tot["prompt_tokens"])
    ask = [x for x in allrecs if x["body"]["messages"][0]["content"] == "Recipe ask."]
    ua = c.json("usage", "--recipe", "ask", "--json")
    acalls, apt, act, _ = usage_tokens(ask)
    c.check("usage --recipe filters", [r["recipe"] for r in ua["rows"]] == ["ask"]
            and (ua["total"]["calls"], ua["total"]["prompt_tokens"],
                 ua["total"]["completion_tokens"]) == (acalls, apt, act), str(ua))
    today = datetime.datetime.now(datetime.timezone.utc).date()
    us = c.json("usage", "--since", today.isoformat(), "--json")
    c.check("usage --since today: everything", us["total"] == tot, "%s vs %s" % (us["total"], tot))
    us = c.json("usage", "--since", (today + datetime.timedelta(days=1)).isoformat(), "--json")
    c.check("usage --since tomorrow: nothing", us["rows"] == [] and us["total"]["calls"] == 0,
            str(us))

    c.check("daemon stops cleanly", c.stop_daemon(daemon) == 0)


BUDGET_RECIPE = """\
name: capped
trigger: { event: { source: capped } }
steps:
  - id: p
    gpt:
      model: gpt-4o-mini
      system: "Recipe capped."
      prompt: "{{event.text}}"
      max_completion_tokens: 40
"""

BUDGET_CONFIG = """\
engine:
  concurrency: 16
  retry: { max_attempts: 5, base_ms: 20, cap_ms: 100 }
gpt: { max_in_flight: %(mif)d }
budgets: { daily_tokens: %(cap)d }
"""


def budget(c, fake):
    cap, mif, events = 100, 1, 20
    fake.config(latency_ms=50)
    c.write("budget/capped.yaml", BUDGET_RECIPE)
    rc, _, err = c.run("recipe", "import", c.path("budget"))
    c.check("budget: import", rc == 0, err)
    cfg = c.path("budget.yaml")
    c.write("budget.yaml", BUDGET_CONFIG % {"mif": mif, "cap": cap})
    daemon = c.start_daemon("--config", cfg, env=fake.env(KEY), log_name="daemon-budget.log")
    c.wait_for("budget daemon", lambda: c.serving(daemon), timeout=30)
    evs = [emit(c, "capped", {"text": "Budget event number %02d, please summarise it." % i})
           for i in range(events)]
    runs = [settled(c, ev, timeout=60) for ev in evs]
    recs = fake.requests()
    per_call = max([x["usage"]["total_tokens"] for x in recs if x.get("usage")] or [0])
    billed = c.json("usage", "--json")["total"]
    billed_tokens = billed["prompt_tokens"] + billed["completion_tokens"]
    ok = [r for r in runs if r["status"] == "succeeded"]
    waiting = [r for r in runs if r["status"] == "budget"]
    print("budget: cap %d tokens, %d calls of at most %d tokens, %d billed, %d runs waiting"
          % (cap, len(recs), per_call, billed_tokens, len(waiting)), flush=True)
    c.check("budget: none failed", len(ok) + len(waiting) == events,
            str([(r["status"], r["error"]) for r in runs]))
    c.check("budget: some runs wait", len(waiting) > 0)
    c.check("budget: billed tokens reached the cap", billed_tokens >= cap, str(billed_tokens))
    c.check("budget: billed usage within cap + in-flight bound",
            billed_tokens <= cap + mif * per_call,
            "%d > %d + %d x %d" % (billed_tokens, cap, mif, per_call))
    fake_tokens = sum(x["usage"]["total_tokens"] for x in recs if x.get("usage"))
    c.check("budget: usage equals the fake's", fake_tokens == billed_tokens,
            "%d vs %d" % (fake_tokens, billed_tokens))
    c.check("budget: waiting runs made no request", len(recs) == len(ok),
            "%d requests, %d succeeded" % (len(recs), len(ok)))
    midnight = next_utc_midnight()
    c.check("budget: next_attempt_at is the next UTC midnight",
            all(r["next_attempt_at"] == midnight for r in waiting),
            "%s vs %s" % ([r["next_attempt_at"] for r in waiting], midnight))
    c.check("budget: reason names the cap",
            all("daily token budget" in (r["error"] or "") for r in waiting),
            str([r["error"] for r in waiting][:2]))

    # A raised cap: restart with it, replay the waiting runs.
    c.check("budget: daemon stops", c.stop_daemon(daemon) == 0)
    c.write("budget.yaml", BUDGET_CONFIG % {"mif": mif, "cap": 1000000})
    daemon = c.start_daemon("--config", cfg, env=fake.env(KEY), log_name="daemon-budget.log")
    c.wait_for("budget daemon again", lambda: c.serving(daemon), timeout=30)
    for r in waiting:
        rc, _, err = c.run("runs", "replay", str(r["id"]))
        c.check("budget: replay %d" % r["id"], rc == 0, err)
    for ev in evs:
        r = settled(c, ev, statuses=("succeeded", "failed"), timeout=60)
        c.check("budget: run %d succeeded after the raise" % r["id"], r["status"] == "succeeded",
                str(r))
    recs = fake.requests()
    c.check("budget: one request per run in all", len(recs) == events
            and len({first_user(x) for x in recs}) == events, str(len(recs)))
    c.check("budget: all requests valid", fake.stats()["invalid"] == 0)
    c.check("budget: daemon stops cleanly", c.stop_daemon(daemon) == 0)


if __name__ == "__main__":
    main("gpt", body)
