"""The `http` action against a receiver this test starts (stdlib HTTP server
in a thread, recording every request).

The request: exact method, path (event values percent-encoded into the
URL), headers (Idempotency-Key promptd-<run>-<step>, secret headers resolved),
a JSON body whose interpolated text holds quotes, a newline, a backslash and
non-ASCII, equal to the stored step input. The response: status, chosen
headers and the parsed JSON body reach a later csvfile step. Retries: 503
then 200 (one extra call, the same key), 429 with Retry-After: 1 (waited
for, although the recipe's backoff is 50 ms); 400 fails the run with the
status and the start of the body, after one call. A body rendering invalid
JSON fails before any call. A timeout is retried; SIGTERM with a request in
flight cancels it and the restarted daemon sends it again with the same key.
Secrets: the token is nowhere in the database
files, `runs show` or the daemon's log. Import refuses literal credentials,
GET bodies and a literal body that is not JSON."""

import glob
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from promptd_test import SANITIZER_MARKS, Failure, main

TOKEN = "tok-SECRET-7f3a9c11d2"
API_KEY = "key-SECRET-55aa0e"
NAME = 'Zoë "Q" O\'Brien\\\nline two ✓'

RETRY = "retry: { max_attempts: 5, base_ms: 50, cap_ms: 200 }"

RECIPES = {
    "lead": """\
name: lead
trigger: { event: { source: lead } }
%(retry)s
steps:
  - id: crm
    http:
      url: "%(base)s/api/leads/{{event.body.id}}?src={{run.recipe}}"
      headers:
        Authorization: { secret: env:CRM_TOKEN, prefix: "Bearer " }
        X-Api-Key: env:CRM_KEY
        X-Source: "promptd {{run.recipe}}"
      body: |
        {"name": "{{event.body.name}}", "score": {{{event.body.score}}}, "tags": {{{event.body.tags}}}}
      expect: [201]
      response_headers: [X-Lead-Score]
  - id: row
    csvfile:
      path: "%(csv)s"
      row: ["{{steps.crm.body.id}}", "{{steps.crm.status}}", "{{steps.crm.headers.x-lead-score}}", "{{steps.crm.body.received.name}}"]
""",
    "flaky": """\
name: flaky
trigger: { event: { source: flaky } }
%(retry)s
steps:
  - id: push
    http:
      method: PUT
      url: "%(base)s/flaky/{{event.n}}"
      body: '{"n": {{{event.n}}}}'
  - id: note
    log: { message: "flaky done {{steps.push.body.id}}" }
""",
    "limited": """\
name: limited
trigger: { event: { source: limited } }
%(retry)s
steps:
  - id: push
    http: { url: "%(base)s/limited/{{event.n}}", body: '{"n": {{{event.n}}}}' }
""",
    "bad": """\
name: bad
trigger: { event: { source: bad } }
%(retry)s
steps:
  - id: push
    http: { url: "%(base)s/bad", body: '{"n": {{{event.n}}}}' }
""",
    "badjson": """\
name: badjson
trigger: { event: { source: badjson } }
%(retry)s
steps:
  - id: push
    http: { url: "%(base)s/never", body: '{"name": {{event.name}}}' }
""",
    "slow": """\
name: slow
trigger: { event: { source: slow } }
%(retry)s
steps:
  - id: push
    http: { url: "%(base)s/slow/{{event.n}}", body: '{"n": {{{event.n}}}}', timeout_s: 1 }
""",
    "hang": """\
name: hang
trigger: { event: { source: hang } }
%(retry)s
steps:
  - id: push
    http: { url: "%(base)s/hang/{{event.n}}", body: '{"n": {{{event.n}}}}' }
""",
    "fetch": """\
name: fetch
trigger: { event: { source: fetch } }
steps:
  - id: get
    http: { method: GET, url: "%(base)s/text?q={{event.q}}", timeout_s: 5 }
""",
}

REFUSED = {
    "literal.yaml": ("""\
name: literal
trigger: { event: { source: x } }
steps:
  - id: a
    http: { url: "http://127.0.0.1:1/", headers: { Authorization: "Bearer abc123" } }
""", "Authorization"),
    "getbody.yaml": ("""\
name: getbody
trigger: { event: { source: x } }
steps:
  - id: a
    http: { method: GET, url: "http://127.0.0.1:1/", body: "{}" }
""", "GET"),
    "notjson.yaml": ("""\
name: notjson
trigger: { event: { source: x } }
steps:
  - id: a
    http: { url: "http://127.0.0.1:1/", body: "{name: 1}" }
""", "not valid JSON"),
    "badkey.yaml": ("""\
name: badkey
trigger: { event: { source: x } }
steps:
  - id: a
    http: { url: "http://127.0.0.1:1/", headers: { Idempotency-Key: "x" } }
""", "idempotency_key"),
}


class Receiver:
    """Records every request; answers by path."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log = []
        self.hits = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rec = {"method": self.command, "path": self.path, "body": body,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "t": time.time()}
                with outer.lock:
                    outer.log.append(rec)
                    key = self.path
                    outer.hits[key] = outer.hits.get(key, 0) + 1
                    hit = outer.hits[key]
                status, headers, out = outer.answer(rec, hit)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                try:
                    self.wfile.write(out)
                except OSError:
                    pass  # the client gave up (timeout, cancel): expected here

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def answer(rec, hit):
        js = {"Content-Type": "application/json; charset=utf-8"}
        p = rec["path"]
        if p.startswith("/api/leads/"):
            got = json.loads(rec["body"])
            return 201, dict(js, **{"X-Lead-Score": "9", "Set-Cookie": "sid=private"}), \
                json.dumps({"id": "lead-42", "received": got}).encode()
        if p.startswith("/flaky/"):
            if hit == 1:
                return 503, {"Content-Type": "text/plain"}, b"busy, try later"
            return 200, js, b'{"id": "flaky-ok"}'
        if p.startswith("/limited/"):
            if hit == 1:
                return 429, {"Retry-After": "1"}, b""
            return 202, js, b'{"queued": true}'
        if p == "/bad":
            return 400, js, b'{"error": "name is required"}'
        if p.startswith("/slow/") and hit == 1:
            time.sleep(2.5)
            return 200, js, b'{"late": true}'
        if p.startswith("/hang/") and hit == 1:
            time.sleep(4)
            return 200, js, b'{"late": true}'
        if p.startswith("/slow/") or p.startswith("/hang/"):
            return 200, js, b'{"id": "second"}'
        if p.startswith("/text"):
            return 200, {"Content-Type": "text/plain"}, b"plain answer\n"
        return 404, {}, b"no such path"

    def requests(self, prefix):
        with self.lock:
            return [r for r in self.log if r["path"].startswith(prefix)]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def emit(c, source, payload):
    rc, out, err = c.run("emit", "--source", source, "--event", "-", "--json",
                         stdin=json.dumps(payload).encode())
    if rc != 0:
        raise Failure("emit %s: %s" % (source, err.strip()))
    return json.loads(out)["event_id"]


def settled(c, event_id, timeout=60):
    def done():
        for r in c.json("runs", "list", "--limit", "1000", "--json"):
            if r["event_id"] == event_id and r["status"] in ("succeeded", "failed"):
                return r
        return None
    return c.wait_for("run of event %d to settle" % event_id, done, timeout=timeout)


def show(c, run_id):
    return c.json("runs", "show", str(run_id), "--json")


def body(c):
    rcv = Receiver()
    try:
        scenario(c, rcv)
    finally:
        rcv.stop()


def scenario(c, rcv):
    csv = c.path("leads.csv")
    for name, text in RECIPES.items():
        c.write("recipes/%s.yaml" % name, text % {"base": rcv.base, "csv": csv, "retry": RETRY})
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("recipes import", rc == 0, err)

    for fname, (text, word) in REFUSED.items():
        path = c.write("refused/" + fname, text)
        rc, out, err = c.run("recipe", "import", path)
        c.check("import refuses " + fname, rc != 0, out + err)
        c.check("refusal of %s names %s" % (fname, word), word in err, err)
        c.check("refusal of %s shows no literal token" % fname, "abc123" not in err, err)

    cfg = c.write("promptd.yaml", "engine: { shutdown_timeout_s: 0.5 }\n")
    env = {"CRM_TOKEN": TOKEN, "CRM_KEY": API_KEY}
    daemon = c.start_daemon("--config", cfg, env=env)
    c.wait_for("daemon", lambda: c.serving(daemon), timeout=30)

    # -- the request as made, the response into a later step
    ev = emit(c, "lead", {"body": {"id": "a/b?c d", "name": NAME, "score": 8,
                                   "tags": ["hot", "b2b"]}})
    r = settled(c, ev)
    c.check("lead run succeeded", r["status"] == "succeeded", str(r))
    recs = rcv.requests("/api/leads/")
    c.check("lead: one request", len(recs) == 1, str(len(recs)))
    rec = recs[0]
    c.check("method POST", rec["method"] == "POST", rec["method"])
    c.check("path with the id percent-encoded", rec["path"] == "/api/leads/a%2Fb%3Fc%20d?src=lead",
            rec["path"])
    h = rec["headers"]
    c.check("Idempotency-Key promptd-<run>-<step>",
            h.get("idempotency-key") == "promptd-%d-crm" % r["id"], str(h))
    c.check("Authorization resolved with its prefix", h.get("authorization") == "Bearer " + TOKEN)
    c.check("X-Api-Key resolved", h.get("x-api-key") == API_KEY)
    c.check("templated header", h.get("x-source") == "promptd lead", str(h))
    c.check("JSON content type by default", h.get("content-type") == "application/json", str(h))
    c.check("a User-Agent", (h.get("user-agent") or "").startswith("promptd/"), str(h))
    try:
        sent = json.loads(rec["body"])
    except ValueError:
        sent = None
    c.check("body is JSON with the escaped name and raw values",
            sent == {"name": NAME, "score": 8, "tags": ["hot", "b2b"]}, repr(rec["body"]))
    s = show(c, r["id"])
    step = s["steps"][0]
    c.check("stored input body is what was sent",
            step["input"]["body"].encode() == rec["body"], repr(step["input"]["body"]))
    c.check("stored input keeps the reference, not the value",
            {"name": "Authorization", "secret": "env:CRM_TOKEN", "prefix": "Bearer "}
            in step["input"]["headers"], str(step["input"]["headers"]))
    out = step["output"]
    c.check("output status", out["status"] == 201, str(out))
    c.check("output body parsed", out["body"]["id"] == "lead-42", str(out))
    c.check("output headers lower-cased, chosen ones only",
            out["headers"].get("x-lead-score") == "9" and "set-cookie" not in out["headers"]
            and out["headers"].get("content-type", "").startswith("application/json"),
            str(out["headers"]))
    with open(csv, newline="", encoding="utf-8") as f:
        row = f.read()
    want = '"lead-42","201","9","%s"\r\n' % NAME.replace('"', '""')
    c.check("later step used steps.crm.*", row == want, repr(row))

    # -- 503 then 200: one extra call, the same key
    ev = emit(c, "flaky", {"n": 1})
    r = settled(c, ev)
    c.check("flaky run succeeded", r["status"] == "succeeded", str(r))
    recs = rcv.requests("/flaky/1")
    c.check("flaky: two calls", len(recs) == 2, str(len(recs)))
    keys = {x["headers"].get("idempotency-key") for x in recs}
    c.check("flaky: the same key both times", keys == {"promptd-%d-push" % r["id"]}, str(keys))
    c.check("flaky: PUT", all(x["method"] == "PUT" for x in recs))
    s = show(c, r["id"])
    c.check("flaky: two attempts", s["steps"][0]["attempts"] == 2, str(s["steps"][0]))
    c.check("flaky: later step saw the body", s["steps"][1]["output"]["message"] ==
            "flaky done flaky-ok", str(s["steps"][1]))

    # -- 429 with Retry-After: 1
    ev = emit(c, "limited", {"n": 1})
    r = settled(c, ev)
    c.check("limited run succeeded", r["status"] == "succeeded", str(r))
    recs = rcv.requests("/limited/1")
    c.check("limited: two calls", len(recs) == 2, str(len(recs)))
    if len(recs) == 2:
        gap = recs[1]["t"] - recs[0]["t"]
        c.check("Retry-After: 1 honoured (backoff alone is 50 ms)", gap >= 0.95, "%.3f s" % gap)
        c.check("limited: same key", recs[0]["headers"].get("idempotency-key") ==
                recs[1]["headers"].get("idempotency-key"))

    # -- 400: failed at once, with the status and the body's start
    ev = emit(c, "bad", {"n": 1})
    r = settled(c, ev)
    c.check("bad run failed", r["status"] == "failed", str(r))
    c.check("failure names the status and the body",
            "HTTP 400" in (r["error"] or "") and "name is required" in (r["error"] or ""), str(r))
    c.check("bad: one call, no retry", len(rcv.requests("/bad")) == 1)

    # -- a body that renders invalid JSON: failed before any call
    ev = emit(c, "badjson", {"name": "Ann"})
    r = settled(c, ev)
    c.check("badjson run failed", r["status"] == "failed", str(r))
    c.check("badjson says why", "not valid JSON" in (r["error"] or ""), str(r))
    c.check("badjson: nothing sent", not rcv.requests("/never"))

    # -- a timeout is transient: retried, same key
    ev = emit(c, "slow", {"n": 1})
    r = settled(c, ev)
    c.check("slow run succeeded after a timeout", r["status"] == "succeeded", str(r))
    recs = rcv.requests("/slow/1")
    c.check("slow: two calls, same key", len(recs) == 2 and
            recs[0]["headers"].get("idempotency-key") == recs[1]["headers"].get("idempotency-key"),
            str(len(recs)))
    s = show(c, r["id"])
    c.check("slow: the timeout was the first attempt's error",
            s["steps"][0]["attempts"] == 2, str(s["steps"][0]))

    # -- SIGTERM with a request in flight: cancelled, sent again after a
    #    restart with the same key
    ev = emit(c, "hang", {"n": 1})
    c.wait_for("the hanging request", lambda: rcv.requests("/hang/1"), timeout=30)
    rc = c.stop_daemon(daemon, timeout=20)
    c.check("daemon stops with a request in flight", rc == 0, "exit %d" % rc)
    daemon = c.start_daemon("--config", cfg, env=env)
    r = settled(c, ev)
    c.check("hang run succeeded after the restart", r["status"] == "succeeded", str(r))
    recs = rcv.requests("/hang/1")
    keys = [x["headers"].get("idempotency-key") for x in recs]
    c.check("hang: sent again after the restart with the same key",
            len(recs) == 2 and keys == ["promptd-%d-push" % r["id"]] * 2, str(keys))

    # -- GET without a body; text answer
    ev = emit(c, "fetch", {"q": "a&b"})
    r = settled(c, ev)
    c.check("fetch run succeeded", r["status"] == "succeeded", str(r))
    recs = rcv.requests("/text")
    c.check("GET with encoded query", len(recs) == 1 and recs[0]["method"] == "GET"
            and recs[0]["path"] == "/text?q=a%26b" and recs[0]["body"] == b"",
            str([(x["method"], x["path"]) for x in recs]))
    c.check("text body kept as text", show(c, r["id"])["steps"][0]["output"]["body"] ==
            "plain answer\n")

    # -- secrets: nowhere but in the requests
    everything = ""
    for run in c.json("runs", "list", "--limit", "1000", "--json"):
        rc, o, _ = c.run("runs", "show", str(run["id"]), "--json")
        everything += o
        rc, o, _ = c.run("runs", "show", str(run["id"]))
        everything += o
    c.check("runs show never shows the secrets", TOKEN not in everything and
            API_KEY not in everything)
    rc = c.stop_daemon(daemon)
    c.check("daemon exits 0", rc == 0, "exit %d" % rc)
    for path in glob.glob(c.db + "*"):
        with open(path, "rb") as f:
            data = f.read()
        c.check("%s holds no secret" % os.path.basename(path),
                TOKEN.encode() not in data and API_KEY.encode() not in data)
    with open(c.path("daemon.log"), "rb") as f:
        log = f.read()
    c.check("daemon log holds no secret", TOKEN.encode() not in log and API_KEY.encode() not in log)
    text = log.decode("utf-8", "replace")
    c.check("no sanitizer report from the daemon", not any(m in text for m in SANITIZER_MARKS),
            text[-3000:])


main("http_action", body)
