"""The `schedule` trigger, the first active trigger kind: one event per
tick on the epoch-aligned grid, the cursor committed with the event, a
missed tick fired once after downtime, nothing repeated across SIGKILL,
the instance replaced when its recipe changes and stopped when it is
disabled, and its health in `promptd status`."""

import json
import signal
import time

from promptd_test import main

RECIPE = """\
name: tick
trigger: { schedule: { every: %s } }
steps:
  - id: row
    csvfile: { path: %s, row: ["{{event.scheduled_at}}", "{{event.missed}}"] }
"""


def ticks(c):
    rows = c.sql("SELECT dedupe_key, payload FROM events ORDER BY id")
    return [(int(k), json.loads(p)) for k, p in rows]


def body(c):
    csv = c.path("ticks.csv")
    # Bad schedules are refused at import, naming the field.
    for every, want in (("0s", "every:"), ("5x", "every:"), ("1s, offset: 2s", "offset:")):
        c.write("bad/tick.yaml", RECIPE % (every, csv))
        rc, _, err = c.run("recipe", "import", c.path("bad", "tick.yaml"))
        c.check("bad schedule %r refused" % every, rc == 1 and want in err, err)

    c.write("recipes/tick.yaml", RECIPE % ("1s", csv))
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("import", rc == 0, err)
    d = c.start_daemon()
    c.wait_for("three ticks", lambda: len(ticks(c)) >= 3, timeout=20)
    rc = c.stop_daemon(d)
    c.check("stops with exit 0", rc == 0, "exit %d" % rc)
    t = ticks(c)
    keys = [k for k, _ in t]
    c.check("ticks on the 1 s grid, consecutive", all(k % 1000 == 0 for k in keys)
            and all(b - a == 1000 for a, b in zip(keys, keys[1:])), repr(keys))
    c.check("first start fires only future ticks (missed 0)",
            all(p["missed"] == 0 for _, p in t), repr(t))
    cursor = c.sql("SELECT cursor FROM cursors WHERE source = 'schedule:1+0'")
    c.check("cursor is the last tick", cursor == [(str(keys[-1]),)], repr(cursor))

    # Down for a while: the latest missed tick fires once at start.
    time.sleep(3.2)
    d = c.start_daemon(log_name="daemon2.log")
    c.wait_for("catch-up tick", lambda: len(ticks(c)) > len(t), timeout=20)
    after = ticks(c)[len(t)]
    c.check("catch-up fires once with the number skipped",
            after[1]["missed"] >= 2 and after[0] - keys[-1] == (after[1]["missed"] + 1) * 1000,
            repr(after))
    c.wait_for("ticking again", lambda: len(ticks(c)) >= len(t) + 3, timeout=20)

    # SIGKILL, restart at once: no tick twice.
    d.send_signal(signal.SIGKILL)
    d.wait()
    d = c.start_daemon(log_name="daemon3.log")
    n = len(ticks(c))
    c.wait_for("ticks after the kill", lambda: len(ticks(c)) >= n + 2, timeout=20)
    keys = [k for k, _ in ticks(c)]
    c.check("no tick stored twice", len(keys) == len(set(keys)), repr(keys))
    c.check("every tick made one run", c.sql("SELECT count(*) FROM runs")[0][0] == len(keys))

    st = c.json("status", "--json")
    trig = st["triggers"][0] if st.get("triggers") else {}
    c.check("status: schedule ok with its last success",
            trig.get("state") == "ok" and trig.get("last_success"), repr(trig))

    # A changed schedule replaces the instance; disabling stops it.
    c.write("recipes/tick.yaml", RECIPE % ("2s", csv))
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("import v2", rc == 0, err)
    c.wait_for("a tick of the new schedule", lambda: c.sql(
        "SELECT count(*) FROM events WHERE source = 'schedule:2+0'")[0][0] >= 1, timeout=20)
    rc, _, err = c.run("recipe", "disable", "tick")
    c.check("disable", rc == 0, err)
    time.sleep(1.0)  # the daemon notices within its 0.25 s poll
    n = len(ticks(c))
    time.sleep(2.5)
    c.check("disabled recipe: no more ticks", len(ticks(c)) == n, "%d -> %d" % (n, len(ticks(c))))
    rc = c.stop_daemon(d)
    c.check("stops with exit 0", rc == 0, "exit %d" % rc)
    with open(c.path("daemon3.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    c.check("old instance stopped, new one started",
            "trigger stopped" in log and "source=schedule:2+0" in log, "")
    c.wait_for("runs done", lambda: c.sql(
        "SELECT count(*) FROM runs WHERE status != 'succeeded'")[0][0] == 0, timeout=10)
    with open(csv, encoding="utf-8") as f:
        rows = f.read().splitlines()
    c.check("one CSV row per tick", len(rows) == len(ticks(c)), "%d rows, %d ticks"
            % (len(rows), len(ticks(c))))


if __name__ == "__main__":
    main("schedule", body)
