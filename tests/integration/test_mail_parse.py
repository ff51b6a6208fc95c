"""promptd mail parse on every message of tests/mail/corpus: the --json
output has the fixed shape ({"event", "skip", "skip_reason"} with the event
fields the IMAP trigger hands to recipes) and the values in
tests/mail/expected.json; the human output, --help, filter options, and
the errors for unreadable input and bad usage."""

import json
import os
import unicodedata

from promptd_test import SOURCE_DIR, main

CORPUS = os.path.join(SOURCE_DIR, "tests", "mail", "corpus")
EXPECTED = os.path.join(SOURCE_DIR, "tests", "mail", "expected.json")

EVENT_KEYS = {"from", "reply_to", "to", "cc", "subject", "date", "message_id", "in_reply_to",
              "references", "text", "full_text", "text_truncated", "full_text_truncated",
              "body_type", "snippet", "attachments", "headers", "size"}
HEADER_KEYS = {"auto_submitted", "precedence", "list_id", "return_path", "x_autoreply"}


def is_person(p):
    return (isinstance(p, dict) and set(p) == {"name", "address"}
            and isinstance(p["name"], str) and isinstance(p["address"], str))


def clean(s):
    """Strings of the event hold no control characters but newline and tab."""
    return all(c in "\n\t" or unicodedata.category(c) != "Cc" for c in s)


def check_shape(c, name, out):
    c.check("%s: top-level keys" % name, set(out) == {"event", "skip", "skip_reason"}, sorted(out))
    ev = out["event"]
    c.check("%s: event keys" % name, set(ev) == EVENT_KEYS, sorted(set(ev) ^ EVENT_KEYS))
    c.check("%s: skip is a bool" % name, isinstance(out["skip"], bool))
    c.check("%s: skip_reason matches skip" % name,
            (isinstance(out["skip_reason"], str) and out["skip_reason"]) if out["skip"]
            else out["skip_reason"] is None, out["skip_reason"])
    c.check("%s: from" % name, is_person(ev["from"]), ev["from"])
    c.check("%s: reply_to" % name, ev["reply_to"] is None or is_person(ev["reply_to"]))
    for k in ("to", "cc"):
        c.check("%s: %s" % (name, k), isinstance(ev[k], list) and all(map(is_person, ev[k])))
    for k in ("subject", "text", "full_text", "snippet"):
        c.check("%s: %s is a clean string" % (name, k), isinstance(ev[k], str) and clean(ev[k]))
    for k in ("date", "message_id", "in_reply_to", "body_type"):
        c.check("%s: %s string or null" % (name, k), ev[k] is None or isinstance(ev[k], str))
    c.check("%s: references" % name,
            isinstance(ev["references"], list) and all(isinstance(r, str) for r in ev["references"]))
    c.check("%s: text within 64 KiB" % name, len(ev["text"].encode()) <= 65536)
    c.check("%s: snippet short" % name, len(ev["snippet"]) <= 201)
    c.check("%s: headers" % name, set(ev["headers"]) == HEADER_KEYS and all(
        v is None or isinstance(v, str) for v in ev["headers"].values()))
    for a in ev["attachments"]:
        c.check("%s: attachment shape" % name,
                set(a) == {"filename", "content_type", "size", "inline"}
                and (a["filename"] is None or isinstance(a["filename"], str))
                and isinstance(a["content_type"], str) and isinstance(a["size"], int)
                and isinstance(a["inline"], bool), a)
    c.check("%s: size" % name, ev["size"] == os.path.getsize(os.path.join(CORPUS, name)))


def check_expected(c, name, out, exp):
    ev = out["event"]
    if "subject" in exp:
        c.check("%s: subject" % name, ev["subject"] == exp["subject"], repr(ev["subject"]))
    if "subject_contains" in exp:
        c.check("%s: subject" % name, exp["subject_contains"] in ev["subject"], repr(ev["subject"]))
    for k, v in exp.get("from", {}).items():
        c.check("%s: from.%s" % (name, k), ev["from"][k] == v, repr(ev["from"][k]))
    if "text" in exp:
        c.check("%s: text" % name, ev["text"] == exp["text"], repr(ev["text"]))
    for s in exp.get("text_contains", []):
        c.check("%s: text holds %r" % (name, s), s in ev["text"], repr(ev["text"]))
    for s in exp.get("text_excludes", []):
        c.check("%s: text lacks %r" % (name, s), s not in ev["text"], repr(ev["text"]))
    for s in exp.get("full_text_contains", []):
        c.check("%s: full_text holds %r" % (name, s), s in ev["full_text"], repr(ev["full_text"]))
    c.check("%s: skip" % name, out["skip"] == exp["skip"], out["skip_reason"])
    if exp.get("skip_reason"):
        c.check("%s: skip_reason" % name, exp["skip_reason"] in (out["skip_reason"] or ""),
                out["skip_reason"])
    c.check("%s: attachments" % name, len(ev["attachments"]) == exp["attachments"],
            ev["attachments"])
    for i, want in enumerate(exp.get("attachment_list", [])):
        got = ev["attachments"][i] if i < len(ev["attachments"]) else {}
        for k, v in want.items():
            c.check("%s: attachment %d %s" % (name, i, k), got.get(k) == v, got)
    c.check("%s: message_id" % name, ev["message_id"] == exp["message_id"], ev["message_id"])
    for k in ("date", "in_reply_to", "references", "reply_to", "to", "cc", "body_type"):
        if k in exp:
            c.check("%s: %s" % (name, k), ev[k] == exp[k], repr(ev[k]))


def body(c):
    with open(EXPECTED, encoding="utf-8") as f:
        doc = json.load(f)
    account = doc["account"]
    names = sorted(n for n in os.listdir(CORPUS) if n.endswith(".eml"))
    c.check("corpus of at least 30 messages", len(names) >= 30, len(names))
    c.check("every message has an expectation", set(names) == set(doc["messages"]),
            sorted(set(names) ^ set(doc["messages"])))
    for name in names:
        path = os.path.join(CORPUS, name)
        rc, out, err = c.run("mail", "parse", path, "--json", "--account", account, db=False)
        c.check("%s: exit 0" % name, rc == 0, err)
        if rc != 0:
            continue
        parsed = json.loads(out)
        check_shape(c, name, parsed)
        if name in doc["messages"]:
            check_expected(c, name, parsed, doc["messages"][name])

    # Human output: the headers and the prompt text, and the skip decision.
    rc, out, err = c.run("mail", "parse", os.path.join(CORPUS, "15-gmail-reply-quoted.eml"), db=False)
    c.check("human output exit 0", rc == 0, err)
    c.check("human output names the sender", "Oliver Grant <oliver.grant@example.co.uk>" in out, out)
    c.check("human output shows the trimmed text", "can I change the delivery address" in out
            and "restart the router" not in out, out)
    c.check("human output says kept", "Skip:        no" in out, out)
    rc, out, _ = c.run("mail", "parse", os.path.join(CORPUS, "18-auto-reply.eml"), db=False)
    c.check("human output says why skipped", rc == 0 and "yes: auto-generated" in out, out)

    # Filter options.
    one = os.path.join(CORPUS, "01-plain-utf8.eml")
    rc, out, _ = c.run("mail", "parse", one, "--json", "--subject", "(?i)^refund", db=False)
    j = json.loads(out) if rc == 0 else {}
    c.check("--subject skips a non-matching subject", j.get("skip") is True
            and "subject does not match" in (j.get("skip_reason") or ""), out)
    rc, out, _ = c.run("mail", "parse", one, "--json", "--from", "@example\\.org$", db=False)
    c.check("--from keeps a matching sender", rc == 0 and json.loads(out)["skip"] is False, out)
    rc, out, _ = c.run("mail", "parse", os.path.join(CORPUS, "22-precedence-bulk.eml"), "--json",
                       "--keep-automated", db=False)
    c.check("--keep-automated keeps bulk mail", rc == 0 and json.loads(out)["skip"] is False, out)
    rc, out, err = c.run("mail", "parse", one, "--from", "([", db=False)
    c.check("bad pattern: exit 1 naming it", rc == 1 and "from" in err and "([" in err, err)

    # Standard input, help, errors.
    with open(one, "rb") as f:
        raw = f.read()
    rc, out, _ = c.run("mail", "parse", "-", "--json", stdin=raw, db=False)
    c.check("reads standard input", rc == 0 and json.loads(out)["event"]["subject"]
            == "Question about my order #4521", out)
    rc, out, _ = c.run("mail", "parse", "--help", db=False)
    c.check("--help", rc == 0 and "promptd mail parse FILE.eml" in out and "--json" in out, out)
    rc, out, _ = c.run("--help", db=False)
    c.check("listed in promptd --help", rc == 0 and "\n  mail " in out, out)
    rc, _, err = c.run("mail", "parse", c.path("missing.eml"), db=False)
    c.check("unreadable file: exit 1 with the reason", rc == 1 and "missing.eml" in err
            and "No such file" in err, err)
    rc, _, err = c.run("mail", "parse", db=False)
    c.check("missing file argument: exit 2", rc == 2 and "FILE.eml" in err, err)
    rc, _, err = c.run("mail", "frobnicate", db=False)
    c.check("unknown subcommand: exit 2", rc == 2, err)
    rc, _, err = c.run("mail", "parse", one, "--bogus", db=False)
    c.check("unknown option: exit 2", rc == 2 and "--bogus" in err, err)


if __name__ == "__main__":
    main("mail_parse", body)
