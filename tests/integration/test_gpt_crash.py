"""Crash test (issue 4, acceptance 3): a burst of 500 events through a
recipe with a `gpt` step, the fake OpenAI server answering after 200 ms;
the daemon is killed with SIGKILL while calls are in flight (once the fake
has seen 100 requests) and restarted. Every run succeeds, and the fake saw
at most one extra call per step that was in flight at the kill: the steps
found `running` in the store right after the kill (begun, outcome not
stored) are the only ones asked again, each once."""

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from fake_server import FakeOpenAI, first_user
from promptd_test import Failure, main

EVENTS = int(os.environ.get("PROMPTD_GPT_CRASH_EVENTS", "500"))
LATENCY_MS = 200
KILL_AFTER = 100
KEY = "sk-test-crash"

RECIPE = """\
name: burst
trigger: { event: { source: burst } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      system: "You summarise orders."
      prompt: "Order {{event.n}} from {{event.who}}"
      output_schema:
        type: object
        properties:
          summary: { type: string }
          total: { type: number }
        required: [summary, total]
  - id: row
    csvfile: { path: "%s", row: ["{{event.n}}", "{{steps.q._gpt.request_id}}"] }
"""

CONFIG = """\
engine:
  concurrency: 64
  retry: { max_attempts: 10, base_ms: 20, cap_ms: 200 }
gpt: { max_in_flight: 64 }
"""


def emit_all(c, n):
    def one(i):
        payload = json.dumps({"n": i, "who": "customer %d" % i}).encode()
        rc, _, err = c.run("emit", "--source", "burst", "--event", "-", stdin=payload)
        return None if rc == 0 else err.strip()
    with ThreadPoolExecutor(max_workers=8) as ex:
        return [e for e in ex.map(one, range(n)) if e]


def body(c):
    fake = FakeOpenAI(key=KEY, log=c.path("fake.log"), args=["--latency-ms", LATENCY_MS])
    try:
        scenario(c, fake)
    finally:
        fake.stop()


def scenario(c, fake):
    out_csv = c.path("out.csv")
    c.write("recipes/burst.yaml", RECIPE % out_csv)
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("import", rc == 0, err)
    cfg = c.write("promptd.yaml", CONFIG)
    errs = emit_all(c, EVENTS)
    c.check("burst of %d events emitted" % EVENTS, not errs, str(errs[:3]))

    env = fake.env(KEY)
    daemon = c.start_daemon("--config", cfg, env=env)
    c.wait_for("%d requests at the fake" % KILL_AFTER,
               lambda: fake.stats()["total"] >= KILL_AFTER, timeout=60, interval=0.01)
    daemon.send_signal(signal.SIGKILL)
    kill_t = time.time()
    daemon.wait()
    recs = fake.requests()
    # The fake answers each request LATENCY_MS after it arrived: the ones
    # that arrived later than that before the kill were still unanswered.
    received = len(recs)
    fake_in_flight = sum(1 for r in recs if r["time"] > kill_t - LATENCY_MS / 1000.0)
    running = c.sql("SELECT json_extract(input, '$.body.messages[1].content') FROM steps "
                    "WHERE status = 'running' AND step_id = 'q'")
    running_prompts = {p for (p,) in running}
    done_before = c.sql("SELECT count(*) FROM steps WHERE status = 'succeeded' AND step_id = 'q'")[0][0]
    print("killed after %d requests: %d unanswered at the fake, %d gpt steps running in the store, "
          "%d answered and stored" % (received, fake_in_flight, len(running_prompts), done_before),
          flush=True)
    c.check("killed while calls were in flight", fake_in_flight > 0 and running_prompts,
            "%d / %d" % (fake_in_flight, len(running_prompts)))
    c.check("every unanswered request's step is running in the store",
            {first_user(r) for r in recs if r["time"] > kill_t - LATENCY_MS / 1000.0 + 0.05}
            <= running_prompts)

    daemon = c.start_daemon("--config", cfg, env=env)

    def finished():
        counts = dict(c.sql("SELECT status, count(*) FROM runs GROUP BY status"))
        return counts if counts.get("succeeded", 0) + counts.get("failed", 0) >= EVENTS else None
    counts = c.wait_for("all runs to finish", finished, timeout=120, interval=0.5)
    c.check("every run succeeded", counts.get("succeeded") == EVENTS, str(counts))

    recs = fake.requests()
    total = len(recs)
    per = {}
    for r in recs:
        per[first_user(r)] = per.get(first_user(r), 0) + 1
    again = {p for p, n in per.items() if n > 1}
    extra = total - EVENTS
    print("crash test: %d requests for %d events: %d extra calls, %d steps in flight at the kill"
          % (total, EVENTS, extra, len(running_prompts)), flush=True)
    c.check("every prompt asked", len(per) == EVENTS, str(len(per)))
    c.check("no prompt asked more than twice", max(per.values()) <= 2,
            str([(p, n) for p, n in per.items() if n > 2][:3]))
    c.check("at most one extra call per step in flight at the kill",
            total <= EVENTS + len(running_prompts),
            "%d > %d + %d" % (total, EVENTS, len(running_prompts)))
    c.check("only steps in flight at the kill were asked again", again <= running_prompts,
            str(sorted(again - running_prompts)[:3]))
    c.check("all answers 200", all(r["status"] == 200 for r in recs))
    with open(out_csv, encoding="utf-8", newline="") as f:
        rows = f.read().split("\r\n")[:-1]
    c.check("one CSV row per event", len(rows) == EVENTS and
            len({r.split(",")[0] for r in rows}) == EVENTS, str(len(rows)))
    c.check("daemon stops cleanly", c.stop_daemon(daemon) == 0)


if __name__ == "__main__":
    main("gpt-crash", body)
