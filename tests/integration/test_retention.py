#!/usr/bin/env python3
"""Retention on a live daemon, with ages in seconds: succeeded runs, their
steps and events go after `succeeded`; failed runs stay until `failed` and
then go with their events; events no recipe matched go after `succeeded`;
running, queued and retrying runs stay however old; every pass that
deleted something logs one line with its counts, and the counts add up to
what went.  A pruned event's dedupe key is accepted again (the dedupe window
is the event's retention).  Nothing is left dangling (foreign_key_check).
A malformed duration is refused at load.

Needs $PROMPTD (the binary)."""

import json
import re
import socket
import threading
import time

from promptd_test import Failure, main

SUCCEEDED_S, FAILED_S = 5, 15

CONFIG = """\
retention: { succeeded: %ds, failed: %ds, interval: 1s, batch: 7 }
engine: { shutdown_timeout_s: 2 }
""" % (SUCCEEDED_S, FAILED_S)

OK = """\
name: ok
trigger: { event: { source: ok } }
steps:
  - id: note
    log: { message: "ok {{event.n}}" }
  - id: row
    csvfile: { path: %s, header: [n], row: ["{{event.n}}"] }
"""

BAD = """\
name: bad
trigger: { event: { source: bad } }
steps:
  - id: note
    log: { message: "bad {{event.n}}" }
  - id: row
    csvfile: { path: %s, header: [n], row: ["{{event.n}}"] }
"""

# One run hangs in its request (running); the recipe's limit keeps the
# next one queued behind it.
HANG = """\
name: hang
concurrency: 1
trigger: { event: { source: hang } }
steps:
  - id: call
    http: { url: "http://127.0.0.1:%d/hang", timeout_s: 3600 }
"""

# Connection refused is transient: retrying, with a first wait long enough
# to outlast the test.
RETRY = """\
name: again
retry: { max_attempts: 50, base_ms: 600000, cap_ms: 600000 }
trigger: { event: { source: again } }
steps:
  - id: call
    http: { url: "http://127.0.0.1:%d/none" }
"""


def emit(c, source, payload, dedupe=None):
    args = ["emit", "--source", source, "--event", "-", "--json"]
    if dedupe:
        args += ["--dedupe", dedupe]
    rc, out, err = c.run(*args, stdin=json.dumps(payload).encode())
    if rc != 0:
        raise Failure("emit exited %d: %s" % (rc, err.strip()))
    return json.loads(out)


def hanging_server():
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []

    def loop():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=loop, daemon=True).start()
    return srv, held


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ids(c, table, col="id"):
    return {r[0] for r in c.sql("SELECT %s FROM %s" % (col, table))}


def status_of(c):
    return {r[0]: r[1] for r in c.sql("SELECT id, status FROM runs")}


def pass_lines(c):
    with open(c.path("daemon.log"), encoding="utf-8", errors="replace") as f:
        text = f.read()
    return [dict(re.findall(r"(\w+)=(\S+)", l)) for l in text.splitlines()
            if 'msg="retention pass"' in l]


def bad_config(c):
    c.write("bad.yaml", "retention: { succeeded: 7x }\n")
    rc, _, err = c.run("--config", "bad.yaml", "status")
    c.check("a malformed duration is refused at load", rc == 1 and "retention.succeeded" in err
            and "bad.yaml" in err, err)
    c.write("bad2.yaml", "retention: { interval: off }\n")
    rc, _, err = c.run("--config", "bad2.yaml", "status")
    c.check("interval cannot be off", rc == 1 and "retention.interval" in err, err)


def body(c):
    bad_config(c)
    srv, held = hanging_server()
    c.write("promptd.yaml", CONFIG)
    c.write("ok.yaml", OK % c.path("ok.csv"))
    c.write("bad.yaml", BAD % c.path("missing", "bad.csv"))
    c.write("hang.yaml", HANG % srv.getsockname()[1])
    c.write("again.yaml", RETRY % closed_port())
    for f in ("ok.yaml", "bad.yaml", "hang.yaml", "again.yaml"):
        rc, _, err = c.run("recipe", "import", f)
        c.check("import %s" % f, rc == 0, err)
    d = c.start_daemon("--config", c.path("promptd.yaml"))
    c.wait_for("the daemon to serve", lambda: c.serving(d), timeout=30)

    ok = [emit(c, "ok", {"n": i}, dedupe="ok-%d" % i) for i in range(30)]
    bad = [emit(c, "bad", {"n": i}) for i in range(3)]
    nomatch = [emit(c, "nobody", {"n": i}) for i in range(5)]
    # Open runs last: the newest run and event are never pruned (ids stay
    # unique), and these stay anyway.
    hang = [emit(c, "hang", {"n": i}) for i in range(2)]
    again = [emit(c, "again", {"n": 0})]
    c.check("no recipe matched the nobody events", all(r["runs"] == 0 for r in nomatch))
    t_emitted = time.time()

    ok_events = {r["event_id"] for r in ok}
    bad_events = {r["event_id"] for r in bad}
    open_events = {r["event_id"] for r in hang + again}
    c.wait_for("ok runs to succeed and bad ones to fail", lambda: sorted(
        status_of(c).values()).count("succeeded") == 30 and
        list(status_of(c).values()).count("failed") == 3, timeout=30)
    run_event = {r[0]: r[1] for r in c.sql("SELECT id, event_id FROM runs")}
    ok_runs = {k for k, v in run_event.items() if v in ok_events}
    bad_runs = {k for k, v in run_event.items() if v in bad_events}
    open_runs = {k for k, v in run_event.items() if v in open_events}
    c.wait_for("running, queued and retrying runs", lambda: sorted(
        status_of(c)[r] for r in open_runs) == ["queued", "retrying", "running"], timeout=30)

    c.wait_for("succeeded runs to be pruned",
               lambda: not (ok_runs & set(status_of(c))), timeout=SUCCEEDED_S + 30)
    elapsed = time.time() - t_emitted
    c.check("succeeded runs went after their age, not before", elapsed >= SUCCEEDED_S - 1,
            "%.1f s" % elapsed)
    c.check("their events went", not (ok_events & ids(c, "events")))
    c.check("their steps went", not (ok_runs & ids(c, "steps", "run_id")))
    c.wait_for("unmatched events to be pruned",
               lambda: not ({r["event_id"] for r in nomatch} & ids(c, "events")), timeout=10)
    if time.time() - t_emitted < FAILED_S - 2:
        c.check("failed runs are still kept", bad_runs <= set(status_of(c)))
        c.check("with their events and steps", bad_events <= ids(c, "events") and
                bad_runs <= ids(c, "steps", "run_id"))
    else:
        c.check("the machine was fast enough to look at failed runs before their age", False,
                "%.1f s" % (time.time() - t_emitted))

    # Deduplication lasts as long as the event: a pruned key is new again.
    again_ok = emit(c, "ok", {"n": 0}, dedupe="ok-0")
    c.check("a pruned event's key is accepted again", again_ok["created"] and again_ok["runs"] == 1,
            str(again_ok))

    c.wait_for("failed runs to be pruned", lambda: not (bad_runs & set(status_of(c))),
               timeout=FAILED_S + 30)
    c.check("failed runs went after their age", time.time() - t_emitted >= FAILED_S - 1)
    c.check("with their events", not (bad_events & ids(c, "events")))
    st = status_of(c)
    c.check("open runs are all still there", sorted(st.get(r, "gone") for r in open_runs) ==
            ["queued", "retrying", "running"], str({r: st.get(r) for r in open_runs}))
    c.check("with their events", open_events <= ids(c, "events"))
    c.check("no dangling reference", c.sql("PRAGMA foreign_key_check") == [])

    time.sleep(1.5)
    lines = pass_lines(c)
    total = lambda k: sum(int(l.get(k, 0)) for l in lines)
    c.check("passes were logged", len(lines) >= 2, str(lines))
    # 30 succeeded + 3 failed runs; their 33 events and the 5 unmatched.
    # (The re-emitted ok-0 run may have been pruned meanwhile too.)
    c.check("logged run counts add up", total("runs") in (33, 34), str(total("runs")))
    c.check("logged event counts add up", total("events") in (38, 39), str(total("events")))
    c.check("logged step counts add up (2 per ok run, 2 per bad run)",
            total("steps") in (66, 68), str(total("steps")))
    c.check("small batches (batch: 7)", any(int(l["batches"]) > 1 for l in lines), str(lines))
    c.check("each pass reports the WAL checkpointed",
            all(l["wal_frames"] == l["checkpointed"] for l in lines), str(lines))

    rc = c.stop_daemon(d)
    c.check("daemon exits 0 on SIGTERM", rc == 0, "rc=%s" % rc)
    srv.close()
    for s in held:
        s.close()


if __name__ == "__main__":
    main("retention", body)
