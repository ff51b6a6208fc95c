"""sheets_append with columns: (cells by header name, laid out in the
sheet's order after reading its header row) and with the credentials and
endpoint taken from the configuration's google: section; a name that is
not a header fails the run with the reason; row and columns together are
refused at import."""

import json

from fake_server import FakeGoogle
from promptd_test import main

SHEET = "1SheetColumns"
RECIPE = """\
name: cols
trigger: { event: { source: cols } }
steps:
  - id: sheet
    sheets_append:
      spreadsheet_id: %s
      range: Leads
      columns: { Score: "{{event.n}}", Name: "{{event.name}}"%s }
"""


def body(c):
    g = FakeGoogle(c, SHEET)
    try:
        g.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Leads": [
            ["Name", "Email", "Score"]]}})
        c.write("bad/r.yaml", RECIPE % (SHEET, "") + "      row: [\"x\"]\n")
        rc, _, err = c.run("recipe", "import", c.path("bad"))
        c.check("row and columns together refused", rc == 1 and "one of them" in err, err)
        c.write("recipes/r.yaml", RECIPE % (SHEET, ""))
        c.write("config.yaml", "google: { sheets_url: \"%s\", credentials: \"file:%s\" }\n"
                % (g.url, g.creds))
        rc, _, err = c.run("recipe", "import", c.path("recipes"))
        c.check("import", rc == 0, err)
        c.run("emit", "--source", "cols", "--event", "-",
              stdin=json.dumps({"n": 7, "name": "Ana"}).encode())
        d = c.start_daemon("--config", c.path("config.yaml"))
        c.wait_for("run done", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0] == 1,
            timeout=60)
        c.check("row under the named headers, in the sheet's order",
                g.rows_of("Leads")[1:] == [["Ana", "", "7"]], repr(g.rows_of("Leads")))
        c.write("recipes/r.yaml", RECIPE % (SHEET, ", Phone: \"x\""))
        rc, _, err = c.run("recipe", "import", c.path("recipes"))
        c.run("emit", "--source", "cols", "--event", "-",
              stdin=json.dumps({"n": 8, "name": "Bo"}).encode())
        c.wait_for("second run done", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')")[0][0] == 2,
            timeout=60)
        err = c.sql("SELECT last_error FROM runs ORDER BY id DESC LIMIT 1")[0][0] or ""
        c.check("unknown header: failed with the reason", "\"Phone\" is not a header" in err, err)
        c.check("nothing appended for it", len(g.rows_of("Leads")) == 2)
        rc = c.stop_daemon(d)
        c.check("exit 0", rc == 0, "exit %d" % rc)
    finally:
        g.stop()


if __name__ == "__main__":
    main("sheets_columns", body)
