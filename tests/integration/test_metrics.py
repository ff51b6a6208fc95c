"""The admin listener: /healthz, /readyz and /metrics on their own port
(--admin-listen 127.0.0.1:0, the port read from the log), 404 and 405 for
anything else. A mixed workload through the webhook server (events,
redeliveries, bad signatures, bad JSON, a wrong method; GPT steps against
the fake OpenAI server that succeed, fail for good, or fail once and are
retried), then: `promtool check metrics` accepts the scrape, and its
counters equal what the store says (events per source, runs per recipe and
status, step attempts, GPT calls, tokens and cost from `promptd usage`,
budget left) and what the test sent (redeliveries, rejections, retries).
Last, /readyz answers 503 while the daemon stops (a slow GPT call keeps it
stopping) and /healthz still 200; the daemon exits 0 on SIGTERM."""

import hashlib
import hmac
import http.client
import json
import re
import shutil
import signal
import subprocess
import time

from fake_server import FakeOpenAI
from promptd_test import Failure, main

SECRET = "metrics-hook-secret"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

RECIPES = {
    "lead.yaml": """\
name: lead
trigger:
  webhook: { path: /hooks/lead, verify: github, secret: env:HOOK_SECRET,
             dedupe: header:Idempotency-Key }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      system: "Qualify the lead."
      prompt: "{{event.body.text}}"
  - id: note
    log: { message: "lead {{event.body.n}}" }
""",
    "plain.yaml": """\
name: plain
trigger: { webhook: { path: /hooks/plain } }
steps:
  - id: note
    log: { message: "plain {{event.body.n}}" }
""",
}

CONFIG = """\
engine:
  retry: { max_attempts: 5, base_ms: 20, cap_ms: 100 }
budgets:
  daily_tokens: 1000000
  recipes:
    lead: { daily_usd: 5 }
"""


def http_call(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), dict(
            (k.lower(), v) for k, v in r.getheaders())
    finally:
        conn.close()


def parse_metrics(text):
    """{(name, frozenset(labels)): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            raise Failure("unparsable metrics line: %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples, name, **labels):
    """Sum over the series of name whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def body(c):
    for name, text in RECIPES.items():
        c.write("recipes/" + name, text)
    c.write("promptd.yaml", CONFIG)
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("recipes imported", rc == 0, err)

    rc, _, err = c.run("serve", "--admin-listen", "no-such-host:1", "--listen", "127.0.0.1:0")
    c.check("a bad admin address is refused at start", rc != 0 and "admin listener" in err,
            err[-500:])

    with FakeOpenAI(log=c.path("fake.log")) as fake:
        env = dict(fake.env("sk-test"), HOOK_SECRET=SECRET)
        p = c.start_daemon("--config", c.path("promptd.yaml"), "--listen", "127.0.0.1:0",
                           "--admin-listen", "127.0.0.1:0", env=env)
        hook_port = c.listen_port()

        def admin():
            try:
                with open(c.path("daemon.log"), encoding="utf-8", errors="replace") as f:
                    m = re.search(r'msg="admin server listening".* port=(\d+)', f.read())
            except OSError:
                return None
            return int(m.group(1)) if m else None
        port = c.wait_for("the admin listener's port", admin, timeout=30)
        c.check("admin and webhook ports differ", port != hook_port)
        scenario(c, p, fake, hook_port, port)
        stopping(c, p, fake, hook_port, port)


def scenario(c, p, fake, hook_port, port):
    st, text, _ = http_call(port, "GET", "/healthz")
    c.check("healthz 200 ok", st == 200 and text.strip() == "ok", "%d %r" % (st, text))
    st, text, _ = http_call(port, "GET", "/readyz")
    c.check("readyz 200 while serving", st == 200, "%d %r" % (st, text))
    st, _, _ = http_call(port, "GET", "/nope")
    c.check("unknown path 404", st == 404, str(st))
    st, _, hdr = http_call(port, "POST", "/metrics", body=b"x")
    c.check("POST /metrics 405 with Allow", st == 405 and "GET" in hdr.get("allow", ""),
            "%d %r" % (st, hdr))

    def lead(n, text, key, good_sig=True):
        b = json.dumps({"n": n, "text": text}).encode()
        sig = hmac.new(SECRET.encode(), b, hashlib.sha256).hexdigest()
        if not good_sig:
            sig = "0" * 64
        return http_call(hook_port, "POST", "/hooks/lead", b, {
            "Content-Type": "application/json", "Idempotency-Key": key,
            "X-Hub-Signature-256": "sha256=" + sig, "X-GitHub-Event": "lead"})[0]

    def plain(n, raw=None, method="POST"):
        b = raw if raw is not None else json.dumps({"n": n}).encode()
        return http_call(hook_port, method, "/hooks/plain", b,
                         {"Content-Type": "application/json"})[0]

    sent = []
    for i in range(6):
        sent.append(("lead ok", lead(i, "Lead number %d" % i, "k%d" % i), 202))
    for i in range(6, 8):  # fail once with a 500, then succeed on the retry
        sent.append(("lead retried", lead(i, "Lead %d [[fake:fail-first=1:server_error]]" % i,
                                          "k%d" % i), 202))
    for i in range(8, 10):  # a permanent 400: the run fails
        sent.append(("lead failing", lead(i, "Lead %d [[fake:fault=bad_request]]" % i, "k%d" % i),
                     202))
    for i in (0, 3, 8):
        sent.append(("lead redelivered", lead(i, "again", "k%d" % i), 202))
    for i in range(2):
        sent.append(("lead bad signature", lead(100 + i, "forged", "f%d" % i, good_sig=False), 401))
    for i in range(5):
        sent.append(("plain ok", plain(i), 202))
    for raw in (b"{not json", b'{"n": '):
        sent.append(("plain bad JSON", plain(0, raw=raw), 400))
    sent.append(("plain wrong method", plain(0, method="PUT"), 405))
    for what, got, want in sent:
        c.check("%s answered %d" % (what, want), got == want, "got %d" % got)

    def settled():
        rows = c.sql("SELECT count(*) FROM runs WHERE status NOT IN ('succeeded', 'failed')")
        return rows[0][0] == 0 and c.sql("SELECT count(*) FROM runs")[0][0] == 15
    c.wait_for("every run to finish", settled, timeout=90)
    # The settled runs' rows are committed before their in-memory drop; a
    # scrape shows nothing in flight once the engine has let them go.
    def scrape():
        st, text, hdr = http_call(port, "GET", "/metrics")
        if st != 200:
            raise Failure("/metrics answered %d" % st)
        s = parse_metrics(text)
        return (text, hdr, s) if value(s, "promptd_runs_in_flight") == 0 else None
    text, hdr, s = c.wait_for("no run in flight", scrape, timeout=30)
    with open(c.path("metrics.txt"), "w", encoding="utf-8") as f:
        f.write(text)

    c.check("content type is the 0.0.4 text format",
            hdr.get("content-type", "").startswith("text/plain; version=0.0.4"), str(hdr))
    pt = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                        timeout=60)
    c.check("promtool check metrics passes", pt.returncode == 0,
            (pt.stdout + pt.stderr).decode("utf-8", "replace")[-2000:])

    # Events: stored per source (the store), redeliveries and refusals (as sent).
    stored = dict(c.sql("SELECT source, count(*) FROM events GROUP BY source"))
    for src in ("webhook:/hooks/lead", "webhook:/hooks/plain"):
        c.check("events received for %s equal the store" % src,
                value(s, "promptd_events_received_total", source=src) == stored.get(src, -1),
                "%r vs %r" % (value(s, "promptd_events_received_total", source=src), stored))
    c.check("10 lead and 5 plain events stored",
            stored == {"webhook:/hooks/lead": 10, "webhook:/hooks/plain": 5}, str(stored))
    c.check("3 redeliveries counted",
            value(s, "promptd_events_deduplicated_total", source="webhook:/hooks/lead") == 3)
    c.check("2 bad signatures counted", value(s, "promptd_events_rejected_total",
                                              source="webhook:/hooks/lead", reason="signature") == 2)
    c.check("2 bad JSON bodies counted", value(s, "promptd_events_rejected_total",
                                               source="webhook:/hooks/plain", reason="invalid") == 2)
    c.check("1 wrong method counted", value(s, "promptd_events_rejected_total",
                                            source="webhook:/hooks/plain", reason="method") == 1)

    # Runs by recipe and status, against the store.
    runs = {(r, st): n for r, st, n in c.sql(
        "SELECT recipe, status, count(*) FROM runs GROUP BY recipe, status")}
    c.check("runs in the store as expected",
            runs == {("lead", "succeeded"): 8, ("lead", "failed"): 2, ("plain", "succeeded"): 5},
            str(runs))
    for (recipe, status), n in runs.items():
        got = value(s, "promptd_runs_finished_total", recipe=recipe, status=status)
        c.check("runs finished %s/%s equal the store" % (recipe, status), got == n,
                "%r vs %r" % (got, n))
    c.check("no other finished series",
            total(s, "promptd_runs_finished_total") == sum(runs.values()))
    retries = c.sql("SELECT coalesce(sum(attempts - 1), 0) FROM steps WHERE step_id = 'q'"
                    " AND status = 'succeeded'")[0][0]
    c.check("2 retried GPT steps in the store", retries == 2, str(retries))
    c.check("runs started: each run once, plus each resume after a retry",
            total(s, "promptd_runs_started_total") == sum(runs.values()) + retries,
            str(total(s, "promptd_runs_started_total")))
    c.check("step retries per kind",
            value(s, "promptd_step_retries_total", kind="gpt") == retries and
            total(s, "promptd_step_retries_total") == retries)
    gpt_attempts = c.sql("SELECT sum(attempts) FROM steps WHERE step_id = 'q'")[0][0]
    log_attempts = c.sql("SELECT sum(attempts) FROM steps WHERE step_id = 'note'")[0][0]
    c.check("gpt step durations: one observation per attempt in the store",
            value(s, "promptd_step_duration_seconds_count", kind="gpt") == gpt_attempts,
            "%r vs %r" % (value(s, "promptd_step_duration_seconds_count", kind="gpt"),
                          gpt_attempts))
    c.check("log step durations: one observation per attempt in the store",
            value(s, "promptd_step_duration_seconds_count", kind="log") == log_attempts)
    c.check("histogram +Inf bucket equals its count",
            value(s, "promptd_step_duration_seconds_bucket", kind="gpt", le="+Inf") ==
            gpt_attempts)
    c.check("queue empty", value(s, "promptd_runs_waiting") == 0)

    # GPT: calls, tokens and cost against `promptd usage`; requests against the fake.
    usage = c.json("usage", "--json")
    rows = {(r["recipe"], r["model"]): r for r in usage["rows"]}
    c.check("usage has one recipe/model row", len(rows) == 1, str(usage))
    for (recipe, model), r in rows.items():
        lab = dict(model=model, recipe=recipe)
        c.check("GPT billed calls equal usage calls",
                value(s, "promptd_gpt_requests_total", outcome="ok", **lab) == r["calls"],
                "%r vs %r" % (value(s, "promptd_gpt_requests_total", outcome="ok", **lab), r))
        c.check("prompt tokens equal usage",
                value(s, "promptd_gpt_prompt_tokens_total", **lab) == r["prompt_tokens"])
        c.check("completion tokens equal usage",
                value(s, "promptd_gpt_completion_tokens_total", **lab) == r["completion_tokens"])
        c.check("cost equals usage", abs(value(s, "promptd_gpt_cost_usd_total", **lab) -
                                         r["cost_usd"]) < 1e-9,
                "%r vs %r" % (value(s, "promptd_gpt_cost_usd_total", **lab), r["cost_usd"]))
        c.check("transient and permanent errors counted",
                value(s, "promptd_gpt_requests_total", outcome="retry", **lab) == 2 and
                value(s, "promptd_gpt_requests_total", outcome="fail", **lab) == 2)
    c.check("8 billed calls", usage["total"]["calls"] == 8, str(usage["total"]))
    stats = fake.stats()
    c.check("every request the fake saw is counted once",
            total(s, "promptd_gpt_requests_total") == stats["total"],
            "%r vs %r" % (total(s, "promptd_gpt_requests_total"), stats))
    tokens = usage["total"]["prompt_tokens"] + usage["total"]["completion_tokens"]
    c.check("daily token budget left", value(s, "promptd_gpt_budget_remaining_tokens",
                                             scope="daemon", recipe="") == 1000000 - tokens,
            str(value(s, "promptd_gpt_budget_remaining_tokens", scope="daemon", recipe="")))
    c.check("recipe USD budget left",
            abs(value(s, "promptd_gpt_budget_remaining_usd", scope="recipe", recipe="lead") -
                (5 - usage["total"]["cost_usd"])) < 1e-9)
    c.check("only configured caps exported",
            ("promptd_gpt_budget_remaining_usd", frozenset({("scope", "daemon"), ("recipe", "")}))
            not in s)

    # Store commits and the process.
    c.check("store commits timed", value(s, "promptd_store_commit_seconds_count") > 0)
    c.check("process metrics read", value(s, "process_resident_memory_bytes") > 1e6 and
            value(s, "process_open_fds") > 3 and
            abs(value(s, "process_start_time_seconds") - time.time()) < 600 and
            value(s, "process_cpu_seconds_total") > 0, str([k for k in s if k[0].startswith("process")]))


def stopping(c, p, fake, hook_port, port):
    """A GPT call held 3 s by the fake keeps the daemon stopping that long:
    /readyz says so while /healthz still answers."""
    fake.config(latency_ms=3000)
    b = json.dumps({"n": 50, "text": "slow lead"}).encode()
    sig = hmac.new(SECRET.encode(), b, hashlib.sha256).hexdigest()
    st = http_call(hook_port, "POST", "/hooks/lead", b, {
        "Content-Type": "application/json", "Idempotency-Key": "slow",
        "X-Hub-Signature-256": "sha256=" + sig})[0]
    c.check("slow event accepted", st == 202, str(st))

    def in_flight():
        s = parse_metrics(http_call(port, "GET", "/metrics")[1])
        return value(s, "promptd_runs_in_flight") == 1
    c.wait_for("the slow run in flight", in_flight, timeout=30)
    p.send_signal(signal.SIGTERM)
    seen = None
    end = time.time() + 10
    while time.time() < end and p.poll() is None:
        try:
            st, text, _ = http_call(port, "GET", "/readyz", timeout=5)
        except OSError:
            break
        if st == 503:
            seen = (st, text, http_call(port, "GET", "/healthz", timeout=5)[0])
            break
        time.sleep(0.05)
    c.check("readyz 503 while stopping, healthz still 200",
            seen is not None and "stopping" in seen[1] and seen[2] == 200, repr(seen))
    try:
        rc = p.wait(timeout=60)  # a second SIGTERM would stop it at once
    except subprocess.TimeoutExpired:
        raise Failure("the daemon did not stop within 60 s of SIGTERM")
    c.check("daemon exits 0 after SIGTERM", rc == 0, "rc=%s" % rc)
    with open(c.path("daemon.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    c.check("no sanitizer report", "Sanitizer" not in log and "runtime error" not in log,
            log[-3000:])
    # The step in flight finished and was stored; the run's next step waits
    # for the next start.
    c.check("the slow step finished before exit",
            c.sql("SELECT s.status FROM steps s JOIN runs r ON r.id = s.run_id"
                  " JOIN events e ON e.id = r.event_id"
                  " WHERE e.dedupe_key = 'slow' AND s.step_id = 'q'") == [("succeeded",)])


if __name__ == "__main__":
    main("metrics", body)
