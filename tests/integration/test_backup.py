#!/usr/bin/env python3
"""`promptd backup FILE` while the daemon takes a stream of webhook events
and runs them: every copy finishes, opens, passes integrity_check, is one
self-contained file (rollback journal, no -wal beside it) and is a
consistent snapshot (every run's event and every step's run exist, every
event has its run: intake commits them together), holds at least what was
acknowledged before it started, and `promptd --db COPY runs list` reads it.
Bad targets are refused with a clear message and exit 1 (usage errors 2),
leaving nothing behind.

Needs $PROMPTD (the binary)."""

import glob
import http.client
import json
import os
import sqlite3
import threading
import time

from promptd_test import main

RECIPE = """\
name: stream
trigger: { webhook: { path: /hooks/stream, dedupe: body:id } }
steps:
  - id: note
    log: { message: "event {{event.body.id}}" }
  - id: row
    csvfile: { path: %s, header: [id], row: ["{{event.body.id}}"] }
"""

FIELDS = {"file", "bytes", "pages", "page_size", "schema_version", "integrity", "events", "runs",
          "ms"}


class Writer(threading.Thread):
    """Posts events as fast as the daemon answers, counting the 202s."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.acked, self.errors, self.stop = port, 0, [], False

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        while not self.stop:
            body = json.dumps({"id": "e%d" % n, "pad": "x" * 200})
            try:
                conn.request("POST", "/hooks/stream", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 202:
                    self.acked += 1
                    n += 1
                elif r.status != 503:
                    self.errors.append(r.status)
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(str(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.close()


def check_copy(c, path, acked_before, source_version):
    c.check("%s: no -wal or -journal beside the copy" % path,
            not os.path.exists(path + "-wal") and not os.path.exists(path + "-journal"))
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        q = lambda sql: con.execute(sql).fetchall()
        c.check("%s: integrity ok" % path, q("PRAGMA integrity_check") == [("ok",)])
        c.check("%s: rollback journal mode" % path, q("PRAGMA journal_mode")[0][0] == "delete")
        c.check("%s: schema version of the source" % path,
                q("PRAGMA user_version")[0][0] == source_version)
        c.check("%s: no dangling reference" % path, q("PRAGMA foreign_key_check") == [])
        c.check("%s: every run's event exists" % path,
                q("SELECT count(*) FROM runs WHERE event_id NOT IN (SELECT id FROM events)")
                == [(0,)])
        c.check("%s: every step's run exists" % path,
                q("SELECT count(*) FROM steps WHERE run_id NOT IN (SELECT id FROM runs)") == [(0,)])
        c.check("%s: every event has its run (one snapshot)" % path,
                q("SELECT count(*) FROM events WHERE id NOT IN (SELECT event_id FROM runs)")
                == [(0,)])
        events = q("SELECT count(*) FROM events")[0][0]
        c.check("%s: holds what was acknowledged before it began" % path, events >= acked_before,
                "%d events, %d acknowledged" % (events, acked_before))
        return events
    finally:
        con.close()


def refusals(c):
    c.write("exists.db", "not a database")
    rc, _, err = c.run("backup", "exists.db")
    c.check("an existing file is refused", rc == 1 and "exists" in err and "--force" in err, err)
    with open(c.path("exists.db")) as f:
        c.check("and left as it was", f.read() == "not a database")
    os.mkdir(c.path("adir"))
    rc, _, err = c.run("backup", "adir")
    c.check("a directory is refused", rc == 1 and "directory" in err, err)
    rc, _, err = c.run("backup", "--force", "adir")
    c.check("a directory is refused even with --force", rc == 1 and "directory" in err, err)
    rc, _, err = c.run("backup", c.path("nowhere", "x.db"))
    c.check("a missing directory is refused", rc == 1 and "nowhere" in err, err)
    rc, _, err = c.run("backup", "--force", c.db)
    c.check("the database itself is refused", rc == 1 and "database itself" in err, err)
    rc, _, err = c.run("backup")
    c.check("no FILE: usage error", rc == 2 and "FILE" in err, err)
    rc, _, err = c.run("backup", "a.db", "b.db")
    c.check("two files: usage error", rc == 2, err)
    rc, _, err = c.run("backup", "--bogus", "a.db")
    c.check("unknown option: usage error", rc == 2, err)
    rc, _, err = c.run("--db", c.path("absent.db"), "backup", "a.db", db=False)
    c.check("a missing source database is refused", rc == 1 and "absent.db" in err, err)
    rc, out, _ = c.run("backup", "--help")
    c.check("--help says what it does", rc == 0 and "--force" in out and "snapshot" in out, out)
    c.check("nothing left behind by refusals",
            not glob.glob(c.path("*.tmp-*")) and not os.path.exists(c.path("a.db")))


def prefill(c, n):
    """n old events with a succeeded run each, so a copy takes a while."""
    now = int(time.time() * 1000)  # recent: retention leaves them alone
    con = sqlite3.connect(c.db)
    try:
        version = con.execute("SELECT current_version FROM recipes WHERE name = 'stream'").fetchone()[0]
        con.executemany("INSERT INTO events (id, source, dedupe_key, payload, received_at)"
                        " VALUES (?, 'old', ?, ?, ?)",
                        ((i, "old%d" % i, json.dumps({"pad": "y" * 600}), now)
                         for i in range(1, n + 1)))
        con.executemany("INSERT INTO runs (event_id, recipe, recipe_version, status,"
                        " next_attempt_at, created_at, updated_at)"
                        " VALUES (?, 'stream', ?, 'succeeded', 0, ?, ?)",
                        ((i, version, now, now) for i in range(1, n + 1)))
        con.commit()
    finally:
        con.close()


def body(c):
    c.write("stream.yaml", RECIPE % c.path("stream.csv"))
    rc, _, err = c.run("recipe", "import", "stream.yaml")
    c.check("import", rc == 0, err)
    prefill(c, 60000)
    d = c.start_daemon("--listen", "127.0.0.1:0")
    port = c.listen_port()
    w = Writer(port)
    w.start()
    c.wait_for("events to flow", lambda: w.acked >= 200, timeout=60)
    source_version = c.sql("PRAGMA user_version")[0][0]

    counts = []
    for i in range(3):
        acked = w.acked
        t0 = time.time()
        rc, out, err = c.run("backup", "--json", "copy%d.db" % i, timeout=120)
        during = w.acked - acked
        c.check("backup %d under load: exit 0" % i, rc == 0, err)
        if rc != 0:
            continue
        info = json.loads(out)
        c.check("backup %d: the JSON fields" % i, set(info) == FIELDS, str(info))
        path = c.path("copy%d.db" % i)
        c.check("backup %d: bytes is the file's size" % i,
                info["bytes"] == os.path.getsize(path) == info["pages"] * info["page_size"],
                str(info))
        c.check("backup %d: integrity ok, schema version" % i,
                info["integrity"] == "ok" and info["schema_version"] == source_version, str(info))
        events = check_copy(c, path, acked, source_version)
        c.check("backup %d: its counts are the copy's" % i, info["events"] == events, str(info))
        c.check("backup %d: the daemon kept taking events meanwhile" % i, during > 0,
                "%d events acknowledged during %d ms" % (during, info["ms"]))
        print("backup %d: %d bytes in %d ms, %d events acknowledged meanwhile"
              % (i, info["bytes"], info["ms"], during))
        counts.append(events)
        rc, out, err = c.run("--db", path, "runs", "list", "--json", "--limit", "5", db=False)
        c.check("backup %d: runs list reads the copy" % i, rc == 0 and len(json.loads(out)) == 5,
                err)
        time.sleep(0.5)
    c.check("later copies hold more", counts == sorted(counts) and len(set(counts)) == len(counts),
            str(counts))

    rc, out, err = c.run("backup", "copy0.db")
    c.check("a second backup to the same file is refused", rc == 1 and "exists" in err, err)
    rc, out, err = c.run("backup", "--force", "copy0.db")
    c.check("--force replaces it", rc == 0 and "integrity ok" in out, out + err)
    refusals(c)

    w.stop = True
    w.join(30)
    c.check("the writer saw no errors", not w.errors, str(w.errors[:5]))
    rc = c.stop_daemon(d)
    c.check("daemon exits 0 on SIGTERM", rc == 0, "rc=%s" % rc)


if __name__ == "__main__":
    main("backup", body)
