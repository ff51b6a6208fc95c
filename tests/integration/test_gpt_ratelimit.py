"""Client-side rate limits: a burst of events against a server that
enforces its requests-per-minute limit.  With the provider's
`rate_limits:` set to the server's limit, promptd paces its calls and the
server answers (almost) no 429.  Without them, promptd learns the limit
from the x-ratelimit-* headers of the first answers: only calls sent before
any answer came back can meet a 429, and there is no retry storm.  Every
run succeeds either way."""

import os
import time

from fake_server import FakeOpenAI, wait_until
from promptd_test import main

RPM = 120          # the server's limit: a burst of 120, then 2 a second
EVENTS = 150       # 30 past the burst

RECIPE = """\
name: burst
trigger: { event: { source: burst } }
steps:
  - id: ask
    gpt:
      model: gpt-4o-mini
      prompt: "Event {{event.n}}"
"""

CONFIG = """\
engine:
  concurrency: 64
  retry: { max_attempts: 30, base_ms: 100, cap_ms: 2000 }
gpt: { max_in_flight: 64 }
providers:
  openai:
    base_url: "%s"
    api_key: env:OPENAI_API_KEY
%s"""


def burst(c, name, limits):
    c.db = c.path("%s.db" % name)
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("import", rc == 0, err)
    for n in range(EVENTS):
        rc, _, err = c.run("emit", "--source", "burst", "--event", "-",
                           stdin=('{"n": %d}' % n).encode())
        if rc:
            c.check("emit", False, err)
    # A fresh server: a full window of RPM requests.
    fake = FakeOpenAI(args=("--ratelimit-requests", RPM, "--ratelimit-enforce"),
                      log=c.path("fake-%s.log" % name))
    try:
        return drive(c, fake, name, limits)
    finally:
        fake.stop()


def drive(c, fake, name, limits):
    c.write("%s.yaml" % name, CONFIG % (fake.base_url, limits))
    daemon = c.start_daemon("--config", c.path("%s.yaml" % name), env={"OPENAI_API_KEY": "sk-t"},
                            log_name="%s.log" % name)
    t0 = time.time()
    wait_until("%s: every run to succeed" % name,
               lambda: c.sql("SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0]
               == EVENTS, timeout=120)
    took = time.time() - t0
    rc = c.stop_daemon(daemon)
    c.check("%s: daemon exits 0" % name, rc == 0, "exit %d" % rc)
    stats = fake.stats()
    throttled = stats["by_status"].get("429", 0)
    print("%s: %d requests, %d answered 429, %.1f s" % (name, stats["total"], throttled, took),
          flush=True)
    return throttled, stats["total"]


def body(c):
    c.write("recipes/burst.yaml", RECIPE)
    paced, total = burst(c, "paced", "    rate_limits: { gpt-4o-mini: { rpm: %d } }\n" % RPM)
    c.check("configured: at most a couple of 429s", paced <= 3, "%d" % paced)
    c.check("configured: no retry storm", total <= EVENTS + 3, "%d requests" % total)
    learned, total = burst(c, "learned", "")
    # Before the first answer nothing is known: at most the first wave of
    # calls in flight (64) can be refused, and each is retried once paced.
    c.check("learned: 429s bounded by the first wave", learned <= 64, "%d" % learned)
    c.check("learned: no retry storm", total <= EVENTS + 64, "%d requests" % total)


main("gpt-ratelimit", body)
