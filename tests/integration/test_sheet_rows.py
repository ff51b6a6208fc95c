"""The sheet_rows trigger against the fake Google server: the first start
takes the rows already there as seen; rows appended below trigger once; a
row inserted above the others triggers and the rows it pushed down do not;
a deleted row and a restart trigger nothing; fields come from the header
row (repeated and empty headers made unique)."""

import json
import time

from fake_server import FakeGoogle
from promptd_test import main

SHEET = "1SheetRowsTrigger"
RECIPE = """\
name: rows-in
trigger:
  sheet_rows: { spreadsheet_id: %s, range: "Leads", key: "ID", credentials: "file:%s",
                poll_s: 1 }
steps:
  - id: note
    log: { message: "{{event.fields.Name}}" }
"""
HEADER = ["ID", "Name", "Email", "Email", ""]


def events(c):
    return [json.loads(p) for (p,) in c.sql("SELECT payload FROM events ORDER BY id")]


def body(c):
    g = FakeGoogle(c, SHEET)
    try:
        rows = [HEADER, ["1", "Ann", "a@x", "a2@x", "n"], ["2", "Bo", "b@x"]]
        g.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Leads": rows}})
        c.write("recipes/r.yaml", RECIPE % (SHEET, g.creds))
        c.write("config.yaml", "google: { sheets_url: \"%s\" }\n" % g.url)
        d = c.start_daemon("--config", c.path("config.yaml"), "--recipes", c.path("recipes"))
        c.wait_for("daemon serving", lambda: c.serving(d), timeout=30)
        c.wait_for("first poll", lambda: c.sql("SELECT count(*) FROM cursors")[0][0] == 1,
                   timeout=30)
        time.sleep(1.5)
        c.check("first start: existing rows are not new", events(c) == [], repr(events(c)))

        rows += [["3", "Cy", "c@x"], ["4", "Di", "d@x"]]
        g.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Leads": rows}})
        c.wait_for("two appended rows", lambda: len(events(c)) == 2, timeout=30)
        e = events(c)[0]
        # Sheets leaves trailing empty cells out, the header row's too.
        c.check("fields from the header", e["fields"] == {"ID": "3", "Name": "Cy", "Email": "c@x",
                                                          "Email 2": ""}, repr(e["fields"]))
        c.check("row and row number", e["row"] == ["3", "Cy", "c@x"] and e["row_number"] == 4,
                repr(e))

        rows.insert(1, ["9", "Inserted", "i@x"])
        g.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Leads": rows}})
        c.wait_for("the inserted row", lambda: len(events(c)) == 3, timeout=30)
        c.check("only the inserted row triggered", events(c)[2]["fields"]["Name"] == "Inserted",
                repr(events(c)[2]))
        del rows[2]
        g.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Leads": rows}})
        time.sleep(2.5)
        c.check("a deleted row triggers nothing", len(events(c)) == 3, "%d" % len(events(c)))
        rc = c.stop_daemon(d)
        c.check("stop", rc == 0, "exit %d" % rc)
        d = c.start_daemon("--config", c.path("config.yaml"), log_name="daemon2.log")
        time.sleep(3)
        c.check("restart triggers nothing", len(events(c)) == 3, "%d" % len(events(c)))
        rows.append(["5", "Ed", "e@x"])
        g.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Leads": rows}})
        c.wait_for("the next row", lambda: len(events(c)) == 4, timeout=30)
        rc = c.stop_daemon(d)
        c.check("final stop", rc == 0, "exit %d" % rc)
    finally:
        g.stop()


if __name__ == "__main__":
    main("sheet_rows", body)
