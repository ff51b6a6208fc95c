"""The gpt step's input, as `promptd test` renders it (no call is made):
the request body carries the strict schema the API accepts; the schema
replies are checked against is stored beside it only when it says more
(string lengths, which strict mode does not take)."""

import json

from promptd_test import main

RECIPE = """\
name: %s
trigger: { event: { source: s } }
steps:
  - id: ask
    gpt:
      model: gpt-4o-mini
      prompt: "Lead {{event.name}}"
      output_schema:
        type: object
        properties:
          summary: { type: string%s }
        required: [summary]
"""


def render(c, name, extra):
    c.write("%s.yaml" % name, RECIPE % (name, extra))
    c.write("event.json", '{"name": "Ana"}')
    rc, out, err = c.run("test", c.path("%s.yaml" % name), "--event", c.path("event.json"),
                         "--json")
    c.check("dry run of %s" % name, rc == 0, err)
    return json.loads(out)["steps"][0]["input"]


def body(c):
    plain = render(c, "plain", "")
    wire = plain["body"]["response_format"]["json_schema"]
    c.check("strict mode on", wire["strict"] is True, str(wire))
    c.check("additionalProperties false added", wire["schema"]["additionalProperties"] is False,
            str(wire))
    c.check("prompt rendered", plain["body"]["messages"][-1]["content"] == "Lead Ana",
            str(plain["body"]["messages"]))
    c.check("no second copy of the schema", "schema" not in plain, str(plain.keys()))

    sized = render(c, "sized", ", minLength: 3, maxLength: 80")
    sent = sized["body"]["response_format"]["json_schema"]["schema"]["properties"]["summary"]
    kept = sized.get("schema", {}).get("properties", {}).get("summary", {})
    c.check("lengths not sent to the API", "minLength" not in sent and "maxLength" not in sent,
            str(sent))
    c.check("lengths kept for the reply check", kept.get("minLength") == 3 and
            kept.get("maxLength") == 80, str(sized.get("schema")))


main("gpt-input", body)
