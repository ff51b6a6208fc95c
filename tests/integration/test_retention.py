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

from promptd_test import Failure, free_port, main

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
    c.write("again.yaml", RETRY % free_port())
    for f in ("ok.yaml", "bad.yaml", "hang.yaml", "again.yaml"):
        rc, _, err = c.run("recipe", "import", f)
        c.check("import %s" % f, rc == 0, err)

    # Emitted before the daemon starts (emit needs none): the runs wait
    # queued, and their ages count from when the daemon finishes them.
    ok = [emit(c, "ok", {"n": i}, dedupe="ok-%d" % i) for i in range(30)]
    bad = [emit(c, "bad", {"n": i}) for i in range(3)]
    nomatch = [emit(c, "nobody", {"n": i}) for i in range(5)]
    # Open runs last: the newest run and event are never pruned (ids stay
    # unique), and these stay anyway.
    hang = [emit(c, "hang", {"n": i}) for i in range(2)]
    again = [emit(c, "again", {"n": 0})]
    c.check("no recipe matched the nobody events", all(r["runs"] == 0 for r in nomatch))
    ok_events = {r["event_id"] for r in ok}
    bad_events = {r["event_id"] for r in bad}
    open_events = {r["event_id"] for r in hang + again}
    nomatch_events = {r["event_id"] for r in nomatch}
    run_event = {r[0]: r[1] for r in c.sql("SELECT id, event_id FROM runs")}
    ok_runs = {k for k, v in run_event.items() if v in ok_events}
    bad_runs = {k for k, v in run_event.items() if v in bad_events}
    open_runs = {k for k, v in run_event.items() if v in open_events}
    received = {r[0]: r[1] for r in c.sql("SELECT id, received_at FROM events")}

    d = c.start_daemon("--config", c.path("promptd.yaml"))
    # Watch every run until the succeeded and failed ones are gone: when
    # each went, and its last state before.
    last, gone, ev_gone = {}, {}, {}
    bad_kept_when_ok_gone = None
    deadline = time.time() + FAILED_S + 60
    while time.time() < deadline and not (ok_runs | bad_runs) <= set(gone):
        now = time.time()
        rows = {r[0]: (r[1], r[2]) for r in c.sql("SELECT id, status, updated_at FROM runs")}
        for rid in ok_runs | bad_runs:
            if rid in rows:
                last[rid] = rows[rid]
            elif rid not in gone:
                gone[rid] = now
        present = ids(c, "events")
        for eid in ok_events | bad_events | nomatch_events:
            if eid not in present and eid not in ev_gone:
                ev_gone[eid] = now
        if bad_kept_when_ok_gone is None and ok_runs <= set(gone):
            bad_kept_when_ok_gone = {r: rows.get(r) for r in bad_runs}
            # Deduplication lasts as long as the event: a pruned key is new again.
            again_ok = emit(c, "ok", {"n": 0}, dedupe="ok-0")
            c.check("a pruned event's key is accepted again",
                    again_ok["created"] and again_ok["runs"] == 1, str(again_ok))
        time.sleep(0.2)

    c.check("every succeeded run was pruned", ok_runs <= set(gone), str(ok_runs - set(gone)))
    c.check("every failed run was pruned", bad_runs <= set(gone), str(bad_runs - set(gone)))
    c.check("each succeeded run was seen succeeded first",
            all(last.get(r, ("?",))[0] == "succeeded" for r in ok_runs),
            str({r: last.get(r) for r in ok_runs}))
    c.check("each failed run was seen failed first",
            all(last.get(r, ("?",))[0] == "failed" for r in bad_runs))
    early = lambda runs, age: {r: round(gone[r] - last[r][1] / 1000, 1) for r in runs
                               if r in gone and r in last and gone[r] - last[r][1] / 1000 < age - 0.5}
    c.check("no succeeded run went before its age", not early(ok_runs, SUCCEEDED_S),
            str(early(ok_runs, SUCCEEDED_S)))
    c.check("no failed run went before its age", not early(bad_runs, FAILED_S),
            str(early(bad_runs, FAILED_S)))
    late = [round(gone[r] - last[r][1] / 1000, 1) for r in ok_runs if r in gone and r in last]
    c.check("succeeded runs went within a few passes of their age",
            late and max(late) < SUCCEEDED_S + 6, str(late))
    c.check("failed runs were still there when the succeeded ones had gone",
            bad_kept_when_ok_gone is not None and
            all(v and v[0] == "failed" for v in bad_kept_when_ok_gone.values()),
            str(bad_kept_when_ok_gone))
    c.check("the events of pruned runs went", (ok_events | bad_events) <= set(ev_gone))
    c.check("their steps went", not ((ok_runs | bad_runs) & ids(c, "steps", "run_id")))
    c.check("unmatched events went after the succeeded age",
            nomatch_events <= set(ev_gone) and
            all(ev_gone[e] - received[e] / 1000 >= SUCCEEDED_S - 0.5 for e in nomatch_events),
            str({e: ev_gone.get(e) for e in nomatch_events}))
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
