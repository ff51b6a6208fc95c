"""recipes/forms-to-sheet.yaml end to end against the fakes: a Google Forms
response -> GPT (the fake OpenAI) -> a row in the Google Sheet (the fake
Google server, reached through the configuration's google: section),
checked cell by cell against the stored GPT answer."""

import datetime
import json
import os
import re

from fake_server import FakeGoogle, FakeOpenAI
from promptd_test import SOURCE_DIR, main

FORM, SHEET = "1FAIpQLSformsToSheet", "1SheetFormsToSheet"


def body(c):
    g = FakeGoogle(c, SHEET)
    fake = FakeOpenAI(validate=True, log=c.path("fake-openai.log"))
    try:
        g.call("POST", "/_fake/forms", {
            "formId": FORM, "info": {"title": "Contact"},
            "items": [{"itemId": "a", "title": "Your name",
                       "questionItem": {"question": {"questionId": "qa"}}},
                      {"itemId": "b", "title": "Your question",
                       "questionItem": {"question": {"questionId": "qb"}}}]})
        g.call("POST", "/_fake/sheets/" + SHEET, {"sheets": {"Responses": [
            ["submitted", "name", "question", "topic", "answer", "key"]]}})
        recipe = open(os.path.join(SOURCE_DIR, "recipes", "forms-to-sheet.yaml"),
                      encoding="utf-8").read()
        recipe = (recipe.replace("FORM_ID", FORM).replace("SHEET_ID", SHEET)
                  .replace("file:/etc/promptd/google-sa.json", "\"file:%s\"" % g.creds))
        recipe = re.sub(r"poll_s: \d+", "poll_s: 1", recipe)
        c.write("recipes/forms-to-sheet.yaml", recipe)
        c.write("config.yaml", "google: { forms_url: \"%s\", sheets_url: \"%s\" }\n"
                % (g.url, g.url))
        d = c.start_daemon("--config", c.path("config.yaml"), "--recipes", c.path("recipes"),
                           env=fake.env())
        c.wait_for("daemon serving", lambda: c.serving(d), timeout=30)
        c.wait_for("first poll", lambda: c.sql("SELECT count(*) FROM cursors")[0][0] == 1,
                   timeout=30)
        when = datetime.datetime.utcnow() + datetime.timedelta(seconds=1)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)
        g.call("POST", "/_fake/forms/%s/responses" % FORM, {"responses": [{
            "responseId": "resp-1", "createTime": stamp, "lastSubmittedTime": stamp,
            "answers": {
                "qa": {"questionId": "qa", "textAnswers": {"answers": [{"value": "Ana Lima"}]}},
                "qb": {"questionId": "qb", "textAnswers": {"answers": [
                    {"value": "Do you ship to Portugal, \"express\"?"}]}}}}]})
        c.wait_for("the row", lambda: len(g.rows_of("Responses")) == 2, timeout=60)
        c.wait_for("run done", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] == 1, timeout=30)
        answer = json.loads(c.sql("SELECT output FROM steps WHERE step_id = 'answer'")[0][0])
        run_id = c.sql("SELECT id FROM runs")[0][0]
        row = g.rows_of("Responses")[1]
        want = [stamp, "Ana Lima", "Do you ship to Portugal, \"express\"?", answer["topic"],
                answer["answer"], "promptd-%d-sheet" % run_id]
        for i, (got, exp) in enumerate(zip(row, want)):
            c.check("cell %d" % (i + 1), got == exp, "%r != %r" % (got, exp))
        c.check("row has six cells", len(row) == 6, repr(row))
        c.check("GPT requests valid", fake.stats().get("invalid", 0) == 0, repr(fake.stats()))
        rc = c.stop_daemon(d)
        c.check("exit 0", rc == 0, "exit %d" % rc)
    finally:
        fake.stop()
        g.stop()


if __name__ == "__main__":
    main("forms_to_sheet", body)
