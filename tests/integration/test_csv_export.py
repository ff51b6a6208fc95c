"""The `csv_export` trigger with the real binary: rows of a growing export
become one event each (by key column), a record written in two parts
triggers only once complete, a file rewritten in place with more rows
triggers only the new ones, nothing repeats across a restart or a SIGKILL
mid-way, a directory's *.csv files (new ones too, and a last row without a
line ending once settled) all count, headers with spaces and dots reach
templates as written, and a missing file shows as failing in status."""

import json
import os
import signal
import time

from promptd_test import main

LEADS = """\
name: leads
trigger: { csv_export: { path: %s, key: "Submission ID", settle_s: 30 } }
steps:
  - id: row
    csvfile: { path: %s, row: ["{{event.fields.Submission ID}}", "{{event.fields.Email address}}",
                                "{{event.fields.Q1. Name}}", "{{event.line}}"] }
"""

FOLDER = """\
name: folder
trigger: { csv_export: { path: %s, settle_s: 1 } }
steps:
  - id: note
    log: { message: "row {{event.record}} of {{event.file}}" }
"""

MISSING = """\
name: missing
trigger: { csv_export: { path: %s } }
steps:
  - id: note
    log: { message: "{{event.key}}" }
"""

HEADER = "Submission ID,Timestamp,Email address,Q1. Name\r\n"


def row(i):
    return "S%03d,2026-05-01 10:%02d:00,lead%d@example.com,\"Lead, Nr. %d\"\r\n" % (i, i % 60, i, i)


def events(c, source):
    rows = c.sql("SELECT dedupe_key, payload FROM events WHERE source = ? ORDER BY id", (source,))
    return [(k, json.loads(p)) for k, p in rows]


def append(path, text):
    with open(path, "ab") as f:
        f.write(text.encode("utf-8"))


def rewrite(path, text):
    # In place: same inode, truncated and written again, as an export tool
    # overwriting its file does.
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(text.encode("utf-8"))


def body(c):
    leads = c.path("leads.csv")
    out = c.path("out.csv")
    folder = c.path("exports")
    os.makedirs(folder)
    src = "csv_export:" + leads
    c.write("recipes/leads.yaml", LEADS % (leads, out))
    c.write("recipes/folder.yaml", FOLDER % folder)
    c.write("recipes/missing.yaml", MISSING % c.path("nope.csv"))
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("import", rc == 0, err)

    with open(leads, "w", encoding="utf-8") as f:
        f.write(HEADER + row(1) + row(2))
    d = c.start_daemon()
    c.wait_for("the first two rows", lambda: len(events(c, src)) == 2, timeout=20)
    ev = events(c, src)
    c.check("keys are the Submission ID column", [k for k, _ in ev] == ["S001", "S002"], repr(ev))
    first = ev[0][1]
    c.check("event shape: fields, row, file, line, record, key",
            first["fields"]["Email address"] == "lead1@example.com"
            and first["fields"]["Q1. Name"] == "Lead, Nr. 1"
            and first["fields"]["Q1"][" Name"] == "Lead, Nr. 1"
            and first["row"][0] == "S001" and first["file"] == leads
            and first["line"] == 2 and first["record"] == 1 and first["key"] == "S001",
            repr(first))

    # A row written in two parts: nothing until its line ends.
    append(leads, row(3))
    append(leads, row(4)[:20])
    c.wait_for("row 3", lambda: len(events(c, src)) == 3, timeout=20)
    time.sleep(1.5)
    c.check("a half-written row waits", len(events(c, src)) == 3, repr(events(c, src)))
    append(leads, row(4)[20:])
    c.wait_for("row 4 once complete", lambda: len(events(c, src)) == 4, timeout=20)
    c.check("row 4 whole", events(c, src)[3][1]["fields"]["Q1. Name"] == "Lead, Nr. 4")

    # Rewritten in place: the old rows (in another order) and two new ones.
    rewrite(leads, HEADER + row(2) + row(5) + row(1) + row(3) + row(4) + row(6))
    c.wait_for("the two new rows", lambda: len(events(c, src)) == 6, timeout=20)
    time.sleep(1.5)
    keys = [k for k, _ in events(c, src)]
    c.check("a rewrite triggers only the new rows", keys == ["S%03d" % i for i in range(1, 7)],
            repr(keys))

    # Stopped, a row added meanwhile, restarted: that row once, nothing else.
    rc = c.stop_daemon(d)
    c.check("stops with exit 0", rc == 0, "exit %d" % rc)
    append(leads, row(7))
    d = c.start_daemon(log_name="daemon2.log")
    c.wait_for("the row added while stopped", lambda: len(events(c, src)) == 7, timeout=20)
    time.sleep(1.5)
    keys = [k for k, _ in events(c, src)]
    c.check("restart repeats nothing", keys == ["S%03d" % i for i in range(1, 8)], repr(keys))

    # SIGKILL while rows keep coming in pieces; restart: each row once.
    for i in range(8, 120):
        r = row(i)
        append(leads, r[:11])
        append(leads, r[11:])
        if i == 60:
            d.send_signal(signal.SIGKILL)
            d.wait()
        if i % 10 == 0:
            time.sleep(0.05)
    d = c.start_daemon(log_name="daemon3.log")
    c.wait_for("every row after the kill", lambda: len(events(c, src)) >= 119, timeout=60)
    time.sleep(1.5)
    keys = [k for k, _ in events(c, src)]
    c.check("after SIGKILL: every row exactly once", sorted(keys) == ["S%03d" % i for i in range(1, 120)],
            "%d events" % len(keys))

    # A directory: two files, then a third whose last row has no line ending.
    fsrc = "csv_export:" + folder
    with open(os.path.join(folder, "a.csv"), "w", encoding="utf-8") as f:
        f.write("\ufeffTimestamp,Email address\r\n2026-05-02 09:00,a@example.com\r\n")
    with open(os.path.join(folder, "b.csv"), "w", encoding="utf-8") as f:
        f.write("Timestamp,Email address\n2026-05-02 09:01,b@example.com\n")
    with open(os.path.join(folder, "notes.txt"), "w", encoding="utf-8") as f:
        f.write("x,y\n1,2\n")
    c.wait_for("a row from each file", lambda: len(events(c, fsrc)) == 2, timeout=20)
    with open(os.path.join(folder, "c.csv"), "w", encoding="utf-8") as f:
        f.write("Timestamp,Email address\n2026-05-02 09:02,c@example.com")
    c.wait_for("the settled last row of a new file", lambda: len(events(c, fsrc)) == 3, timeout=20)
    files = sorted(os.path.basename(p["file"]) for _, p in events(c, fsrc))
    c.check("one event per file, .txt ignored", files == ["a.csv", "b.csv", "c.csv"], repr(files))
    emails = sorted(p["fields"]["Email address"] for _, p in events(c, fsrc))
    c.check("BOM dropped from the first header",
            emails == ["a@example.com", "b@example.com", "c@example.com"], repr(emails))

    # The missing file: failing in status, saying why.
    st = c.json("status", "--json")
    miss = [t for t in st["triggers"] if t["recipe"] == "missing"]
    c.check("missing file: failing with a clear message",
            miss and miss[0]["state"] == "failing"
            and "nope.csv" in miss[0].get("last_error", "")
            and "No such file" in miss[0].get("last_error", ""), repr(miss))
    ok = [t for t in st["triggers"] if t["recipe"] == "leads"]
    c.check("the leads trigger is ok", ok and ok[0]["state"] == "ok", repr(ok))

    c.wait_for("runs done", lambda: c.sql(
        "SELECT count(*) FROM runs WHERE status NOT IN ('succeeded')")[0][0] == 0, timeout=60)
    rc = c.stop_daemon(d)
    c.check("stops with exit 0", rc == 0, "exit %d" % rc)
    with open(out, encoding="utf-8") as f:
        lines = f.read().splitlines()
    c.check("one CSV row per lead", len(lines) == 119, "%d rows" % len(lines))
    c.check("templates reach headers with spaces and dots",
            lines[0] == '"S001","lead1@example.com","Lead, Nr. 1","2"', repr(lines[:1]))


if __name__ == "__main__":
    main("csv_export", body)
