"""Crash test: 1,000 events are emitted while the daemon is killed with
SIGKILL at random moments and restarted each time. At the end every event
has exactly one run, every run has succeeded, and the CSV holds each row
exactly once (csvfile's exactly-once recovery)."""

import csv
import os
import random
import signal
import threading
import time

from promptd_test import Failure, main

EVENTS = int(os.environ.get("PROMPTD_CRASH_EVENTS", "1000"))

RECIPE = """\
name: crash-csv
trigger: { event: { source: crash } }
steps:
  - id: note
    log: { message: "event {{event.n}}" }
  - id: shout
    if: { path: event.n, gte: 0 }
    log: { message: "{{event.text}}", level: info }
  - id: row
    if: { path: event.n, gte: 0 }
    csvfile: { path: %s, header: [n, text], row: ["{{event.n}}", "{{event.text}}"] }
"""


def body(c):
    seed = int(os.environ.get("PROMPTD_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    print("crash test: %d events, seed %d" % (EVENTS, seed), flush=True)
    out_csv = c.path("out.csv")
    c.write("recipes/crash-csv.yaml", RECIPE % out_csv)
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("recipe import", rc == 0, err)

    emitted = []
    emit_errors = []

    def emitter():
        for n in range(EVENTS):
            # Quotes, commas and a newline exercise the CSV quoting too.
            text = 'row %d, "quoted"\nline two' % n if n % 7 == 0 else "row %d" % n
            payload = ('{"n": %d, "text": %s}' % (n, __import__("json").dumps(text))).encode()
            rc, _, err = c.run("emit", "--source", "crash", "--event", "-",
                               "--dedupe", "crash-%d" % n, stdin=payload)
            if rc != 0:
                emit_errors.append(err)
            emitted.append(n)

    t = threading.Thread(target=emitter)
    t.start()
    kills = 0
    daemon = c.start_daemon()
    # Kill at random moments while events arrive, then a few more times while
    # the backlog drains.
    while t.is_alive() or kills < 12:
        time.sleep(rng.uniform(0.02, 0.6))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        kills += 1
        daemon = c.start_daemon()
    t.join()
    c.check("every emit succeeded", not emit_errors, "; ".join(emit_errors[:3]))

    def all_done():
        rows = c.sql("SELECT status, count(*) FROM runs GROUP BY status")
        counts = dict(rows)
        return counts.get("succeeded", 0) == EVENTS and sum(counts.values()) == EVENTS

    try:
        c.wait_for("all runs to succeed", all_done, timeout=300)
    except Failure:
        print("run counts:", c.sql("SELECT status, count(*) FROM runs GROUP BY status"))
        raise
    c.wait_for("the daemon to serve", lambda: c.serving(daemon))
    rc = c.stop_daemon(daemon)
    c.check("daemon exits 0 on SIGTERM", rc == 0, "exit %d" % rc)
    print("killed the daemon %d times" % kills, flush=True)

    events = c.sql("SELECT count(*) FROM events")[0][0]
    c.check("one event per emit", events == EVENTS, "%d events" % events)
    per_event = c.sql("SELECT count(*) FROM runs GROUP BY event_id HAVING count(*) != 1")
    c.check("exactly one run per event", not per_event, str(per_event[:5]))
    statuses = c.sql("SELECT status, count(*) FROM runs GROUP BY status")
    c.check("every run succeeded", statuses == [("succeeded", EVENTS)], str(statuses))

    with open(out_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    c.check("header once, first", rows and rows[0] == ["n", "text"], str(rows[:1]))
    ns = [int(r[0]) for r in rows[1:]]
    c.check("CSV has one row per event", len(ns) == EVENTS, "%d rows" % len(ns))
    c.check("each row exactly once", sorted(ns) == list(range(EVENTS)),
            "missing %s, repeated %s" % (sorted(set(range(EVENTS)) - set(ns))[:10],
                                         sorted({n for n in ns if ns.count(n) > 1})[:10]))
    for r in rows[1:]:
        n = int(r[0])
        want = 'row %d, "quoted"\nline two' % n if n % 7 == 0 else "row %d" % n
        if r[1] != want:
            c.check("row text intact", False, repr(r))
            break
    else:
        c.check("row text intact", True)


main("crash", body)
