"""The `slack` step against the fake Slack (tests/fake/fake_slack.py),
driving the real binary: `promptd emit` events, `promptd serve` runs them.

Webhook text exactly as expected (Slack escaping of {{x}}, markup through
{{{x}}}), Block Kit with templated strings (structure kept, mrkdwn escaped,
URLs and plain_text not), chat.postMessage with a bearer token and channel
and a threaded reply from the first message's ts (the token and the
webhook URL never reach the database, `runs show` or the log), Slack's
error strings failing the run without a retry, 429 + Retry-After honoured,
500 / a dropped connection retried, one message per second per
destination (checked by the fake's --enforce-pacing too), and SIGTERM
while steps wait for their slot: exit 0 within the shutdown timeout, the
waiting steps run after the restart."""

import json
import os
import signal
import time

from fake_server import FakeSlack
from promptd_test import Failure, main

SOURCE_DIR = os.environ.get("PROMPTD_SOURCE_DIR",
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

TOKEN = "xoxb-1111-2222-SeCrEtBoTtOkEn0123"
WRONG_TOKEN = "xoxb-9999-8888-NotTheRightOne"
HOOK_PATH = "/services/T000AAAA/B000BBBB/SeCrEtHoOkPaTh0123456789"
ERR_PATH = "/services/T000AAAA/B000CCCC/ErRoRsHoOk0123456789"
PACE_PATH = "/services/T000AAAA/B000DDDD/PaCeHoOk0123456789"
PACE2_PATH = "/services/T000AAAA/B000EEEE/PaCeHoOkTwo0123456789"
SECRETS = (TOKEN, WRONG_TOKEN, "SeCrEtHoOkPaTh", "ErRoRsHoOk", "PaCeHoOk")


def slack_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


CONFIG = """\
engine:
  concurrency: 32
  retry: { max_attempts: 5, base_ms: 20, cap_ms: 200 }
  # Half-way between two paced posts: SIGTERM follows an answer, so a 1 s
  # timeout would land on the next answer's commit every time.
  shutdown_timeout_s: 1.5
"""

RECIPES = {
    "hook-text": """\
name: hook-text
trigger: { event: { source: hook-text } }
steps:
  - id: notify
    slack:
      webhook_url: env:SLACK_SALES_URL
      text: "{{{event.mention}}} New lead {{event.name}} ({{event.score}}/10)"
""",
    "hook-blocks": """\
name: hook-blocks
trigger: { event: { source: hook-blocks } }
steps:
  - id: notify
    slack:
      webhook_url: env:SLACK_SALES_URL
      text: "{{event.name}} left a {{event.stars}} star review for your property."
      blocks:
        - type: section
          text: { type: mrkdwn, text: "{{event.name}} left the following review for your property:" }
        - type: section
          block_id: "section-{{event.id}}"
          text:
            type: mrkdwn
            text: "<{{{event.url}}}|{{event.hotel}}> \\n :star: \\n {{event.review}}"
          accessory:
            type: image
            image_url: "{{event.image}}"
            alt_text: "{{event.hotel}} image"
        - type: section
          fields:
            - { type: mrkdwn, text: "*Average Rating*\\n{{event.avg}}" }
        - type: context
          elements:
            - { type: plain_text, text: "by {{event.name}}", emoji: true }
""",
    "api-post": """\
name: api-post
trigger: { event: { source: api-post } }
steps:
  - id: post
    slack:
      token: env:SLACK_BOT_TOKEN
      channel: "{{event.channel}}"
      text: "Hot lead: {{event.name}}"
      username: promptd
      icon_emoji: ":robot_face:"
      api_url: "%(api)s"
  - id: reply
    slack:
      token: env:SLACK_BOT_TOKEN
      channel: "{{steps.post.channel}}"
      thread_ts: "{{steps.post.ts}}"
      text: "Details for {{event.name}}"
      api_url: "%(api)s/"
""",
    "api-wrong": """\
name: api-wrong
trigger: { event: { source: api-wrong } }
steps:
  - id: post
    slack:
      token: env:SLACK_WRONG_TOKEN
      channel: "#sales"
      text: "never posted"
      api_url: "%(api)s"
""",
    "hook-err": """\
name: hook-err
trigger: { event: { source: hook-err } }
steps:
  - id: notify
    slack:
      webhook_url: env:SLACK_ERR_URL
      text: "case {{event.case}}"
""",
    "pace": """\
name: pace
trigger: { event: { source: pace } }
steps:
  - id: notify
    slack: { webhook_url: env:SLACK_PACE_URL, text: "pace {{event.n}}" }
""",
    "pace2": """\
name: pace2
trigger: { event: { source: pace2 } }
steps:
  - id: notify
    slack: { webhook_url: env:SLACK_PACE2_URL, text: "pace2 {{event.n}}" }
""",
}

REFUSED = {
    "both.yaml": ("slack: { webhook_url: env:A, token: env:B, channel: x, text: hi }",
                  "not both"),
    "neither.yaml": ("slack: { text: hi }", "not neither"),
    "nochannel.yaml": ("slack: { token: env:B, text: hi }", "token needs channel"),
    "hookchannel.yaml": ("slack: { webhook_url: env:A, channel: x, text: hi }",
                         "channel goes with token"),
    "notext.yaml": ("slack: { webhook_url: env:A }", "text, blocks or both"),
    "literal.yaml": ("slack: { webhook_url: \"https://hooks.slack.com/services/T/B/X\", text: hi }",
                     "secret"),
    "badblocks.yaml": ("slack: { webhook_url: env:A, blocks: [{ type: section, text: "
                       "{ type: mrkdwn, text: \"{{#open}}\" } }] }", "blocks[0].text.text"),
}


# ---------------------------------------------------------------- helpers

def emit(c, source, payload):
    rc, out, err = c.run("emit", "--source", source, "--event", "-", "--json",
                         stdin=json.dumps(payload).encode())
    if rc != 0:
        raise Failure("emit %s: %s" % (source, err.strip()))
    return json.loads(out)["event_id"]


def runs_by_event(c):
    return {r["event_id"]: r for r in c.json("runs", "list", "--limit", "100000", "--json")}


def settled(c, event_id, statuses=("succeeded", "failed"), timeout=60):
    def done():
        r = runs_by_event(c).get(event_id)
        return r if r and r["status"] in statuses else None
    return c.wait_for("run of event %d to settle" % event_id, done, timeout=timeout)


def show(c, run_id):
    rc, out, err = c.run("runs", "show", str(run_id), "--json")
    if rc != 0:
        raise Failure("runs show %s: %s" % (run_id, err))
    return json.loads(out), out


def recs(fake, path=None, text_prefix=None):
    out = []
    for r in fake.requests():
        if path and r["path"] != path:
            continue
        body = r.get("body")
        if text_prefix is not None and not (isinstance(body, dict)
                                            and str(body.get("text", "")).startswith(text_prefix)):
            continue
        out.append(r)
    return out


def store_bytes(c):
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = c.db + suffix
        if os.path.exists(p):
            with open(p, "rb") as f:
                data += f.read()
    return data


def no_secrets(c, what, text):
    for s in SECRETS:
        c.check("%s holds no secret (%s...)" % (what, s[:8]), s.encode() not in text
                if isinstance(text, bytes) else s not in text)


# ---------------------------------------------------------------- scenarios

def body(c):
    fake = FakeSlack(["--token", TOKEN, "--channel", "#sales", "--channel", "#leads",
                      "--webhook", HOOK_PATH, "--webhook", ERR_PATH, "--webhook", PACE_PATH,
                      "--webhook", PACE2_PATH, "--enforce-pacing",
                      "--record", c.path("fake-requests.jsonl")], log=c.path("fake.log"))
    try:
        env = {"SLACK_SALES_URL": fake.url + HOOK_PATH, "SLACK_ERR_URL": fake.url + ERR_PATH,
               "SLACK_PACE_URL": fake.url + PACE_PATH, "SLACK_PACE2_URL": fake.url + PACE2_PATH,
               "SLACK_BOT_TOKEN": TOKEN, "SLACK_WRONG_TOKEN": WRONG_TOKEN}
        refusals(c)
        for name, text in RECIPES.items():
            c.write("recipes/%s.yaml" % name, text % {"api": fake.url + "/api"})
        rc, _, err = c.run("recipe", "import", c.path("recipes"))
        c.check("recipes import", rc == 0, err)
        cfg = c.write("promptd.yaml", CONFIG)

        pacing(c, fake, cfg, env)
        daemon = c.start_daemon("--config", cfg, env=env)
        c.wait_for("daemon", lambda: c.serving(daemon), timeout=30)
        webhook_text(c, fake)
        webhook_blocks(c, fake)
        post_message(c, fake)
        errors(c, fake)
        transient(c, fake)
        rc = c.stop_daemon(daemon)
        c.check("daemon exits 0", rc == 0, "exit %d" % rc)
        with open(c.path("daemon.log"), "rb") as f:
            no_secrets(c, "daemon log", f.read())
        no_secrets(c, "database file", store_bytes(c))
        shutdown_while_waiting(c, fake, cfg, env)
        st = fake.stats()
        c.check("no message broke the fake's one-per-second rule",
                "pacing" not in st["by_fault"], str(st))
    finally:
        fake.stop()


def refusals(c):
    for fname, (step, word) in REFUSED.items():
        text = "name: r\ntrigger: { event: { source: r } }\nsteps:\n  - id: s\n    %s\n" % step
        path = c.write("refused/" + fname, text)
        rc, out, err = c.run("recipe", "import", path)
        c.check("import refuses " + fname, rc != 0, out + err)
        c.check("refusal of %s says %r" % (fname, word), word in err, err)


def webhook_text(c, fake):
    ev = emit(c, "hook-text", {"name": 'Ann <b> & "Co"', "score": 8, "mention": "<@U024BE7LH>"})
    r = settled(c, ev)
    c.check("webhook text run succeeded", r["status"] == "succeeded", str(r))
    got = recs(fake, HOOK_PATH)
    c.check("one webhook request", len(got) == 1, str(got))
    if not got:
        return
    req = got[0]
    want = {"text": '<@U024BE7LH> New lead Ann &lt;b&gt; &amp; "Co" (8/10)'}
    c.check("webhook body exactly as expected", json.loads(req["raw"]) == want, req["raw"])
    c.check("webhook JSON content type",
            req["headers"].get("content-type") == "application/json; charset=utf-8",
            str(req["headers"]))
    c.check("no authorization header on a webhook", "authorization" not in req["headers"])
    s, text = show(c, r["id"])
    step = s["steps"][0]
    c.check("input keeps the reference",
            step["input"] == {"webhook_url": "env:SLACK_SALES_URL", "body": want},
            json.dumps(step["input"]))
    c.check("webhook output {ok: true}", step["output"] == {"ok": True}, str(step["output"]))
    no_secrets(c, "runs show (webhook)", text)


def webhook_blocks(c, fake):
    with open(os.path.join(os.environ.get("PROMPTD_SHARED_DIR", os.path.join(
            SOURCE_DIR, "..", "shared")), "conformance", "examples",
            "slack-webhook-blocks.json"), encoding="utf-8") as f:
        doc = json.load(f)
    event = {"id": 567, "name": "Danny <Torrence>", "stars": 1, "hotel": "Overlook & Co",
             "url": "https://example.com/h?x=1&y=2",
             "review": "Doors had too many axe holes, guest in room 237 was far too rowdy.",
             "image": doc["blocks"][1]["accessory"]["image_url"] + "?a=1&b=2", "avg": "1.0"}
    ev = emit(c, "hook-blocks", event)
    r = settled(c, ev)
    c.check("blocks run succeeded", r["status"] == "succeeded", str(r))
    e = slack_escape
    want = {
        "text": "%s left a 1 star review for your property." % e(event["name"]),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "%s left the following "
                                         "review for your property:" % e(event["name"])}},
            {"type": "section", "block_id": "section-567",
             "text": {"type": "mrkdwn", "text": "<%s|%s> \n :star: \n %s" % (
                 event["url"], e(event["hotel"]), e(event["review"]))},
             "accessory": {"type": "image", "image_url": event["image"],
                           "alt_text": "Overlook & Co image"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Average Rating*\n1.0"}]},
            {"type": "context", "elements": [{"type": "plain_text", "text": "by Danny <Torrence>",
                                              "emoji": True}]},
        ],
    }
    # The shape is the documented example's, block for block.
    c.check("blocks follow the documented example's shape",
            [b["type"] for b in want["blocks"][:3]] == [b["type"] for b in doc["blocks"]])
    got = [q for q in recs(fake, HOOK_PATH) if isinstance(q["body"], dict) and "blocks" in q["body"]]
    c.check("one blocks request", len(got) == 1, str(len(got)))
    if got:
        c.check("blocks body exactly as expected", json.loads(got[0]["raw"]) == want,
                "%s\n!=\n%s" % (got[0]["raw"], json.dumps(want)))


def post_message(c, fake):
    ev = emit(c, "api-post", {"name": "Ann", "channel": "#sales"})
    r = settled(c, ev)
    c.check("chat.postMessage run succeeded", r["status"] == "succeeded", str(r))
    got = recs(fake, "/api/chat.postMessage")
    c.check("two API requests (post, threaded reply)", len(got) == 2, str(len(got)))
    if len(got) != 2:
        return
    first, second = got
    for q in got:
        c.check("bearer token sent", q["headers"].get("authorization") == "Bearer " + TOKEN,
                str(q["headers"].get("authorization")))
        c.check("API content type",
                q["headers"].get("content-type") == "application/json; charset=utf-8",
                str(q["headers"]))
    c.check("first body exactly as expected",
            json.loads(first["raw"]) == {"channel": "#sales", "text": "Hot lead: Ann",
                                         "username": "promptd", "icon_emoji": ":robot_face:"},
            first["raw"])
    answer = json.loads(first["response"])
    c.check("second replies in the thread",
            json.loads(second["raw"]) == {"channel": answer["channel"], "text": "Details for Ann",
                                          "thread_ts": answer["ts"]}, second["raw"])
    s, text = show(c, r["id"])
    c.check("output {ts, channel} as Slack answered",
            s["steps"][0]["output"] == {"ts": answer["ts"], "channel": answer["channel"]},
            str(s["steps"][0]["output"]))
    inp = s["steps"][0]["input"]
    c.check("input: URL, token reference, body",
            inp.get("url") == fake.url + "/api/chat.postMessage"
            and inp.get("token") == "env:SLACK_BOT_TOKEN", json.dumps(inp))
    c.check("trailing slash of api_url dropped",
            s["steps"][1]["input"].get("url") == fake.url + "/api/chat.postMessage")
    no_secrets(c, "runs show (chat.postMessage)", text)


def failed_with(c, ev, word, what):
    r = settled(c, ev)
    c.check("%s: run failed" % what, r["status"] == "failed", str(r))
    s, _ = show(c, r["id"])
    err = json.dumps(s)
    c.check("%s: the run's error names %s" % (what, word), word in err, err[:600])


def errors(c, fake):
    cases = ["channel_not_found", "invalid_payload", "channel_is_archived", "action_prohibited",
             "no_service", "posting_to_general_channel_denied"]
    for n, word in enumerate(cases):
        fake.faults({"kind": word, "target": "webhook"})
        ev = emit(c, "hook-err", {"case": n})
        failed_with(c, ev, word, "webhook " + word)
        c.check("webhook %s: not retried" % word,
                len(recs(fake, ERR_PATH, "case %d" % n)) == 1)
    ev = emit(c, "api-post", {"name": "Nobody", "channel": "#nowhere"})
    failed_with(c, ev, "channel_not_found", "API unknown channel")
    c.check("API channel_not_found: not retried",
            len(recs(fake, "/api/chat.postMessage", "Hot lead: Nobody")) == 1)
    ev = emit(c, "api-wrong", {})
    failed_with(c, ev, "invalid_auth", "API wrong token")
    wrong = recs(fake, "/api/chat.postMessage", "never posted")
    c.check("API invalid_auth: not retried", len(wrong) == 1, str(len(wrong)))
    if wrong:
        c.check("the wrong token was sent as a bearer token",
                wrong[0]["headers"].get("authorization") == "Bearer " + WRONG_TOKEN)


def transient(c, fake):
    # 429 with Retry-After: 2, then success; the engine's own backoff here
    # is at most 200 ms, so a 2 s gap is the header's doing.
    fake.faults({"kind": "rate_limit", "target": "webhook", "retry_after": 2})
    ev = emit(c, "hook-err", {"case": "429"})
    r = settled(c, ev)
    c.check("429 then success", r["status"] == "succeeded", str(r))
    got = recs(fake, ERR_PATH, "case 429")
    c.check("429: two requests", len(got) == 2, str(len(got)))
    if len(got) == 2:
        gap = got[1]["time"] - got[0]["time"]
        c.check("429: retried no sooner than Retry-After (2 s)", gap >= 2.0, "%.3f s" % gap)
        c.check("429: retried soon after Retry-After", gap < 5.0, "%.3f s" % gap)
        c.check("429 answered with Retry-After", got[0]["status"] == 429)
    for kind in ("server_error", "drop"):
        fake.faults({"kind": kind, "target": "webhook"})
        ev = emit(c, "hook-err", {"case": kind})
        r = settled(c, ev)
        c.check("%s then success" % kind, r["status"] == "succeeded", str(r))
        c.check("%s: two requests" % kind, len(recs(fake, ERR_PATH, "case " + kind)) == 2)
    fake.faults({"kind": "rate_limit", "target": "api", "retry_after": 1})
    ev = emit(c, "api-post", {"name": "Bea", "channel": "#leads"})
    r = settled(c, ev)
    c.check("API 429 then success", r["status"] == "succeeded", str(r))
    got = recs(fake, "/api/chat.postMessage", "Hot lead: Bea")
    c.check("API 429: two requests", len(got) == 2, str(len(got)))
    if len(got) == 2:
        gap = got[1]["time"] - got[0]["time"]
        c.check("API 429: retried no sooner than Retry-After (1 s)", gap >= 1.0, "%.3f s" % gap)


def times(fake, path, prefix):
    return sorted(q["time"] for q in recs(fake, path, prefix) if q["status"] == 200)


def pacing(c, fake, cfg, env):
    # Queued before the daemon starts, so every run begins at once and the
    # pacer alone spaces them.
    evs = [emit(c, "pace", {"n": n}) for n in range(5)]
    evs += [emit(c, "pace2", {"n": n}) for n in range(3)]
    daemon = c.start_daemon("--config", cfg, env=env, log_name="pace.log")
    for ev in evs:
        r = settled(c, ev, timeout=60)
        c.check("paced run %d succeeded" % ev, r["status"] == "succeeded", str(r))
    rc = c.stop_daemon(daemon)
    c.check("pacing daemon exits 0", rc == 0, "exit %d" % rc)
    a, b = times(fake, PACE_PATH, "pace "), times(fake, PACE2_PATH, "pace2 ")
    c.check("5 + 3 paced messages", len(a) == 5 and len(b) == 3, "%d %d" % (len(a), len(b)))
    for name, ts in (("first", a), ("second", b)):
        gaps = [y - x for x, y in zip(ts, ts[1:])]
        c.check("%s destination: messages at least 1 s apart" % name,
                all(g >= 1.0 for g in gaps), str(["%.3f" % g for g in gaps]))
    if a and b:
        # One pacer for both would need 7 s for the 8 messages.
        span = max(a[-1], b[-1]) - min(a[0], b[0])
        c.check("destinations are paced independently", span < 6.0, "%.2f s" % span)


def shutdown_while_waiting(c, fake, cfg, env):
    c.db = c.path("shutdown.db")
    rc, _, err = c.run("recipe", "import", c.path("recipes", "pace.yaml"))
    c.check("import into the second database", rc == 0, err)
    n_events = 8
    evs = [emit(c, "pace", {"n": 100 + n}) for n in range(n_events)]
    daemon = c.start_daemon("--config", cfg, env=env, log_name="shutdown.log")
    c.wait_for("two paced messages", lambda: len(recs(fake, PACE_PATH, "pace 10")) >= 2,
               timeout=30, interval=0.05)
    started = time.time()
    rc = c.stop_daemon(daemon, sig=signal.SIGTERM, timeout=30)
    took = time.time() - started
    c.check("SIGTERM while steps wait: exit 0", rc == 0, "exit %d" % rc)
    # shutdown_timeout_s is 1.5: the waiting steps are cancelled then, not
    # drained at one a second (which would take 6 s more).
    c.check("SIGTERM while steps wait: stops promptly", took < 4.0, "%.2f s" % took)
    sent = len(recs(fake, PACE_PATH, "pace 10"))
    left = [r for r in runs_by_event(c).values() if r["status"] != "succeeded"]
    c.check("some steps were still waiting", len(left) > 0 and sent < n_events,
            "sent %d, left %d" % (sent, len(left)))
    c.check("no run failed at shutdown", all(r["status"] != "failed" for r in left), str(left))
    # The pacer lives in memory: a restart within a second of the last post
    # could send the next one sooner (Slack tolerates that; the strict fake
    # would not).
    time.sleep(1.0)
    daemon = c.start_daemon("--config", cfg, env=env, log_name="shutdown2.log")
    for ev in evs:
        r = settled(c, ev, timeout=60)
        c.check("run %d succeeded after the restart" % ev, r["status"] == "succeeded", str(r))
    rc = c.stop_daemon(daemon)
    c.check("second stop exits 0", rc == 0, "exit %d" % rc)
    texts = [q["body"]["text"] for q in recs(fake, PACE_PATH, "pace 10") if q["status"] == 200]
    c.check("every message posted after the restart",
            sorted(set(texts)) == sorted("pace %d" % (100 + n) for n in range(n_events)),
            str(sorted(texts)))
    c.check("at most one repeated (a post cut off at shutdown)", len(texts) <= n_events + 1,
            str(len(texts)))


main("slack", body)
