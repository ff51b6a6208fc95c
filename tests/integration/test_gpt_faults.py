"""Fault test (issue 4, acceptance 2): 1,000 events through a recipe with a
`gpt` step while the fake OpenAI server answers 30 % of requests with a
transient error (429, 500, 503 in equal shares) and lets 5 % time out
(promptd's provider timeout: 2 s). With enough retries every run succeeds;
the API calls stay under a bound derived from the fault rate (each call
succeeds with p = 0.65, so about 1000 / 0.65 = 1540 are expected); every
prompt got exactly one 200 (a step that succeeded is never called again),
and each run's output names that 200's request id."""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fake_server import FakeOpenAI, first_user
from promptd_test import Failure, main

EVENTS = int(os.environ.get("PROMPTD_FAULT_EVENTS", "1000"))
ERROR_RATE, TIMEOUT_RATE = 0.30, 0.05
KEY = "sk-test-faults"

RECIPE = """\
name: faulty
trigger: { event: { source: faulty } }
steps:
  - id: q
    gpt:
      model: gpt-4o-mini
      system: "You classify support tickets."
      prompt: "Ticket {{event.n}}: {{event.text}}"
      output_schema:
        type: object
        properties:
          label: { type: string, enum: [billing, bug, other] }
          urgency: { type: integer, minimum: 1, maximum: 5 }
        required: [label, urgency]
"""

CONFIG = """\
engine:
  concurrency: 128
  retry: { max_attempts: 15, base_ms: 20, cap_ms: 250 }
gpt: { max_in_flight: 128 }
providers:
  openai: { base_url: "%s", api_key: "env:OPENAI_API_KEY", timeout_s: 2 }
"""


def emit_all(c, n):
    def one(i):
        payload = json.dumps({"n": i, "text": "my invoice %d is wrong" % i}).encode()
        rc, _, err = c.run("emit", "--source", "faulty", "--event", "-", stdin=payload)
        return None if rc == 0 else err.strip()
    with ThreadPoolExecutor(max_workers=8) as ex:
        errs = [e for e in ex.map(one, range(n)) if e]
    return errs


def body(c):
    fake = FakeOpenAI(validate=True, key=KEY, log=c.path("fake.log"),
                      args=["--error-rate", ERROR_RATE, "--timeout-rate", TIMEOUT_RATE,
                            "--seed", 4])
    try:
        scenario(c, fake)
    finally:
        fake.stop()


def scenario(c, fake):
    c.write("recipes/faulty.yaml", RECIPE)
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("import", rc == 0, err)
    cfg = c.write("promptd.yaml", CONFIG % fake.base_url)
    t0 = time.time()
    daemon = c.start_daemon("--config", cfg, env={"OPENAI_API_KEY": KEY,
                                                  "OPENAI_BASE_URL": None})
    c.wait_for("daemon", lambda: c.serving(daemon), timeout=30)
    errs = emit_all(c, EVENTS)
    c.check("all events emitted", not errs, str(errs[:3]))
    print("emitted %d events in %.1f s" % (EVENTS, time.time() - t0), flush=True)

    def finished():
        rows = c.sql("SELECT status, count(*) FROM runs GROUP BY status")
        counts = dict(rows)
        done = counts.get("succeeded", 0) + counts.get("failed", 0)
        return counts if done >= EVENTS else None
    counts = c.wait_for("all runs to finish", finished, timeout=240, interval=0.5)
    took = time.time() - t0
    c.check("all %d runs succeeded" % EVENTS, counts.get("succeeded") == EVENTS, str(counts))
    if counts.get("failed"):
        print("failed runs:", c.sql("SELECT id, last_error FROM runs WHERE status='failed' LIMIT 5"))

    recs = fake.requests()
    st = fake.stats()
    total = st["total"]
    expected = EVENTS / (1.0 - ERROR_RATE - TIMEOUT_RATE)
    bound = 1800 * EVENTS // 1000
    print("fault test: %d runs in %.1f s, %d API calls (expected about %.0f, bound %d); "
          "by fault %s; by status %s" % (EVENTS, took, total, expected, bound,
                                         json.dumps(st["by_fault"], sort_keys=True),
                                         json.dumps(st["by_status"], sort_keys=True)), flush=True)
    c.check("no records dropped", st["dropped_records"] == 0 and len(recs) == total)
    c.check("API calls within the bound", total <= bound, "%d > %d" % (total, bound))
    c.check("every request valid", st["invalid"] == 0)
    c.check("faults were injected", st["by_fault"].get("timeout", 0) > 0
            and st["by_fault"].get("rate_limit", 0) > 0
            and st["by_fault"].get("server_error", 0) > 0
            and st["by_fault"].get("overloaded", 0) > 0, str(st["by_fault"]))

    by_prompt = {}
    for r in recs:
        by_prompt.setdefault(first_user(r), []).append(r)
    c.check("every event's prompt was asked", len(by_prompt) == EVENTS, str(len(by_prompt)))
    ok_ids = {}
    bad = []
    for prompt, rs in by_prompt.items():
        oks = [r for r in rs if r["status"] == 200]
        rs.sort(key=lambda r: r["seq"])
        if len(oks) != 1 or rs[-1]["status"] != 200:
            bad.append((prompt, [(r["status"], r["fault"]) for r in rs]))
        elif oks:
            ok_ids[prompt] = oks[0]["request_id"]
    c.check("each prompt got exactly one 200, and no call after it", not bad, str(bad[:3]))

    rows = c.sql("SELECT json_extract(s.input, '$.body.messages[1].content'), "
                 "json_extract(s.output, '$._gpt.request_id') FROM steps s "
                 "JOIN runs r ON r.id = s.run_id WHERE s.status = 'succeeded'")
    mismatch = [(p, rid, ok_ids.get(p)) for p, rid in rows if ok_ids.get(p) != rid]
    c.check("each run's output is its one 200's", len(rows) == EVENTS and not mismatch,
            "%d rows, %s" % (len(rows), mismatch[:3]))
    usage = c.json("usage", "--json")["total"]
    c.check("usage counts one billed call per run", usage["calls"] == EVENTS, str(usage))
    c.check("daemon stops cleanly", c.stop_daemon(daemon) == 0)


if __name__ == "__main__":
    main("gpt-faults", body)
