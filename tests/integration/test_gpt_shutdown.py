"""SIGTERM while GPT calls are in flight: the daemon stops taking new
steps, lets the calls in flight finish and stores their answers, exits 0;
the next start resumes each run after its stored step, so no call is made
twice."""

import signal
import time

from fake_server import FakeOpenAI, wait_until
from promptd_test import main

EVENTS = 6

RECIPE = """\
name: slow
trigger: { event: { source: slow } }
steps:
  - id: ask
    gpt:
      model: gpt-4o-mini
      prompt: "Event {{event.n}}"
  - id: row
    csvfile: { path: %s, row: ["{{event.n}}", "{{steps.ask.text}}"] }
"""


def body(c):
    fake = FakeOpenAI(args=("--latency-ms", "1500"), log=c.path("fake.log"))
    try:
        c.write("recipes/slow.yaml", RECIPE % c.path("out.csv"))
        rc, _, err = c.run("recipe", "import", c.path("recipes"))
        c.check("import", rc == 0, err)
        for n in range(EVENTS):
            rc, _, err = c.run("emit", "--source", "slow", "--event", "-",
                               stdin=('{"n": %d}' % n).encode())
            c.check("emit", rc == 0, err)
        daemon = c.start_daemon(env=fake.env())
        wait_until("all calls in flight", lambda: fake.stats()["total"] >= EVENTS, timeout=30)
        started = time.time()
        rc = c.stop_daemon(daemon, sig=signal.SIGTERM, timeout=30)
        took = time.time() - started
        c.check("exit 0 after SIGTERM", rc == 0, "exit %d" % rc)
        c.check("waited for the calls in flight, not the shutdown timeout", took < 10,
                "%.1f s" % took)
        steps = c.sql("SELECT status, count(*) FROM steps WHERE step_id = 'ask' GROUP BY status")
        c.check("every answer in flight was stored", steps == [("succeeded", EVENTS)], str(steps))
        running = c.sql("SELECT count(*) FROM runs WHERE status = 'running'")[0][0]
        c.check("no run left running", running == 0, str(running))

        daemon = c.start_daemon(env=fake.env(), log_name="daemon2.log")
        wait_until("all runs succeeded",
                   lambda: c.sql("SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0]
                   == EVENTS, timeout=60)
        rc = c.stop_daemon(daemon)
        c.check("second stop exits 0", rc == 0, "exit %d" % rc)
        c.check("no call made twice", fake.stats()["total"] == EVENTS, str(fake.stats()))
        with open(c.path("out.csv"), encoding="utf-8") as f:
            rows = f.read().splitlines()
        c.check("one row per event", len(rows) == EVENTS, str(rows))
    finally:
        fake.stop()


main("gpt-shutdown", body)
