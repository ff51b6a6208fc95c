"""sheets_append against the fake Google server (token endpoint checking the
service account's RS256 JWT, Sheets values.get / values.append): rows land
cell by cell; 429 (Retry-After), 503 and an expired token are retried; a
burst of 300 appends with id_column, SIGKILLed several times, leaves each
row in the sheet exactly once; a recipe's bad credentials fail clearly."""

import json
import os
import random
import signal

from fake_server import FakeGoogle
from promptd_test import main

SHEET = "1SheetIdForTests"
N = 300

RECIPE = """\
name: rows
trigger: { event: { source: rows } }
retry: { max_attempts: 10, base_ms: 100, cap_ms: 2000 }
steps:
  - id: sheet
    sheets_append:
      spreadsheet_id: %s
      range: "Leads!A:C"
      credentials: file:%s
      row: ["{{event.name}}", "{{event.n}}"]
      id_column: 3
      base_url: "%s"
"""


def emit(c, n, name):
    rc, _, err = c.run("emit", "--source", "rows", "--event", "-",
                       stdin=json.dumps({"n": n, "name": name}).encode())
    c.check("emit %d" % n, rc == 0, err)


def done(c):
    return c.sql("SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0]


def body(c):
    fake = FakeGoogle(c, SHEET)
    try:
        fake.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Leads": [["name", "n", "key"]]}})
        c.write("recipes/rows.yaml", RECIPE % (SHEET, fake.creds, fake.url))
        rc, _, err = c.run("recipe", "import", c.path("recipes"))
        c.check("import", rc == 0, err)

        # Cells as rendered, faults retried.
        fake.call("POST", "/_fake/fault", {"kind": "429", "count": 1, "target": "api",
                                           "retry_after": 1})
        emit(c, 0, "Zoë \"Z\" Müller, Ltd.")
        d = c.start_daemon()
        c.wait_for("first row", lambda: done(c) == 1, timeout=60)
        rows = fake.rows()
        c.check("row appended cell by cell", rows[1:] == [["Zoë \"Z\" Müller, Ltd.", "0",
                                                           "promptd-1-sheet"]], repr(rows))
        fake.call("POST", "/_fake/fault", {"kind": "503", "count": 2, "target": "api"})
        fake.call("POST", "/_fake/expire_tokens", {})
        emit(c, 1, "Second")
        c.wait_for("second row", lambda: done(c) == 2, timeout=60)
        st = c.sql("SELECT status FROM runs ORDER BY id")
        c.check("retried past 503 and an expired token", st == [("succeeded",), ("succeeded",)],
                repr(st))
        stats = fake.call("GET", "/_fake/stats")
        c.check("token exchanged again after expiry", stats["jwt_grants"] >= 2, repr(stats))
        c.check("claims as a service account", stats["last_claims"].get("iss") == FakeGoogle.EMAIL and
                "spreadsheets" in stats["last_claims"].get("scope", ""), repr(stats["last_claims"]))

        # A burst with SIGKILLs: each row exactly once.
        for n in range(2, N + 2):
            emit(c, n, "Lead %d" % n)
        rng = random.Random(11)
        for k in range(3):
            target = 2 + rng.randint(40, 80) * (k + 1)
            c.wait_for("%d rows" % target, lambda: len(fake.rows()) - 1 >= target, timeout=180)
            d.send_signal(signal.SIGKILL)
            d.wait()
            d = c.start_daemon(log_name="daemon%d.log" % (k + 2))
        c.wait_for("all %d runs" % (N + 2), lambda: done(c) == N + 2, timeout=300)
        rows = fake.rows()[1:]
        keys = [r[2] for r in rows]
        c.check("each row exactly once after 3 kills", len(keys) == N + 2 and
                len(set(keys)) == N + 2, "%d rows, %d distinct" % (len(keys), len(set(keys))))
        c.check("every run succeeded", c.sql(
            "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] == N + 2)
        rc = c.stop_daemon(d)
        c.check("exit 0", rc == 0, "exit %d" % rc)

        # Deterministically, the window a kill may hit: the row appended,
        # the step not yet committed (left running).  The next start
        # repeats the step, which finds its key and appends nothing.
        run_id = c.sql("SELECT run_id FROM steps ORDER BY run_id DESC LIMIT 1")[0][0]
        con = __import__("sqlite3").connect(c.db)
        with con:
            con.execute("UPDATE steps SET status = 'running', output = NULL, finished_at = 0"
                        " WHERE run_id = ?", (run_id,))
            con.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run_id,))
        con.close()
        d = c.start_daemon(log_name="daemon-resume.log")
        c.wait_for("resumed run done", lambda: c.sql(
            "SELECT status FROM runs WHERE id = ?", (run_id,))[0][0] == "succeeded", timeout=60)
        out = json.loads(c.sql("SELECT output FROM steps WHERE run_id = ?", (run_id,))[0][0])
        c.check("repeated step found its row", out.get("already_there") is True, repr(out))
        c.check("still each row once", len(fake.rows()) - 1 == N + 2, "%d" % (len(fake.rows()) - 1))
        rc = c.stop_daemon(d)
        c.check("exit 0 (resume)", rc == 0, "exit %d" % rc)
        log = "".join(open(c.path(f), encoding="utf-8", errors="replace").read()
                      for f in os.listdir(c.dir) if f.startswith("daemon"))
        c.check("private key never logged", "PRIVATE KEY" not in log)

        # Unusable credentials: the run fails and says why.
        c.write("bad.json", json.dumps({"type": "external_account"}))
        c.write("recipes/rows.yaml", RECIPE % (SHEET, c.path("bad.json"), fake.url))
        c.run("recipe", "import", c.path("recipes"))
        emit(c, 999, "Bad")
        d = c.start_daemon(log_name="daemon-bad.log")
        c.wait_for("bad run done", lambda: done(c) == N + 3, timeout=60)
        err = c.sql("SELECT last_error FROM runs ORDER BY id DESC LIMIT 1")[0][0] or ""
        c.check("bad credentials: a clear error", "external_account" in err, err)
        rc = c.stop_daemon(d)
        c.check("exit 0 (bad)", rc == 0, "exit %d" % rc)
    finally:
        fake.stop()


if __name__ == "__main__":
    main("sheets_append", body)
