#!/usr/bin/env python3
"""Writes tests/csv/corpus/*.csv and tests/csv/expected.json.

Each export is written here byte for byte, in the shape its form tool
produces (column names, quoting, line endings, BOM), next to the rows a
reader must find in it, spelled out by hand.  Keys and fields are worked
out by this script from those rows, independently of the C code, following
the rules at the top of src/triggers/csv_rows.h.  Run it again after
changing a file; tests/unit/test_csv_rows.c checks the C reader against
the result exactly.
"""

import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
BOM = "\ufeff"


def row_hash(cells):
    n = len(cells)
    while n and cells[n - 1] == "":
        n -= 1
    h = hashlib.sha256()
    for c in cells[:n]:
        b = c.encode("utf-8")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()


def aliases(fields, names, cells):
    """Nested objects so Mustache's dotted lookup reaches "a.b" as written."""
    for i, name in enumerate(names):
        if "." not in name or name.count(".") > 16:
            continue
        parts = name.split(".")
        if parts[0] in names:
            continue
        at = fields
        ok = True
        for p in parts[:-1]:
            if p in at and not isinstance(at[p], dict):
                ok = False
                break
            at = at.setdefault(p, {})
        if ok and parts[-1] not in at:
            at[parts[-1]] = cells[i] if i < len(cells) else ""


def events(name, names, rows, key=None):
    """rows: (line, cells); numbered in order."""
    out = []
    for n, (line, cells) in enumerate(rows, 1):
        fields = {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(names)}
        aliases(fields, names, cells)
        k = None
        if key is not None:
            i = names.index(key)
            if i < len(cells) and cells[i]:
                k = cells[i]
        out.append({"fields": fields, "row": cells, "file": name, "line": line,
                    "record": n, "key": k or row_hash(cells)})
    return out


CASES = []


def case(name, raw, names, rows, key=None, incomplete=False, open_quote=False,
         settled=None, error=None):
    """settled: (line, cells) of the trailing record a final read takes."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    exp = {"key": key, "incomplete": incomplete, "open_quote": open_quote}
    if error:
        exp["error"] = error
    else:
        exp["header"] = names
        exp["events"] = events(name, names, rows, key)
        all_rows = rows + ([settled] if settled else [])
        exp["settled"] = events(name, names, all_rows, key)[len(rows):]
    CASES.append((name, data, exp))


# Google Forms: "Timestamp" then "Email address", every question a column;
# checkbox answers joined with ", " (so quoted), CRLF as Google Sheets
# writes it, a blank row of commas left by a deleted response.
case("google-forms-leads.csv",
     "Timestamp,Email address,Full name,Company,Which products interest you?,Budget (EUR),Anything else?\r\n"
     "1/15/2026 10:23:45,laura@example.com,Laura Example,Example GmbH,\"Widgets, Gadgets\",20000,Call me after 3pm.\r\n"
     "1/15/2026 11:02:10,zoe@example.org,Zoë Müller,Café Crème SARL,Gadgets,,\r\n"
     ",,,,,,\r\n"
     "1/16/2026 08:00:01,taro@example.jp,山田 太郎,株式会社例,\"Widgets, Gadgets, Sprockets\",150000,\"Line one\r\nline two\"\r\n",
     ["Timestamp", "Email address", "Full name", "Company", "Which products interest you?",
      "Budget (EUR)", "Anything else?"],
     [(2, ["1/15/2026 10:23:45", "laura@example.com", "Laura Example", "Example GmbH",
           "Widgets, Gadgets", "20000", "Call me after 3pm."]),
      (3, ["1/15/2026 11:02:10", "zoe@example.org", "Zoë Müller", "Café Crème SARL", "Gadgets", "", ""]),
      (5, ["1/16/2026 08:00:01", "taro@example.jp", "山田 太郎", "株式会社例",
           "Widgets, Gadgets, Sprockets", "150000", "Line one\r\nline two"])])

# Google Sheets' CSV download ends without a line break: the last row
# waits until a final (settled) read.
case("google-forms-no-final-newline.csv",
     "Timestamp,Email address,Score\r\n"
     "2/1/2026 9:00:00,a@example.com,10\r\n"
     "2/1/2026 9:05:00,b@example.com,7",
     ["Timestamp", "Email address", "Score"],
     [(2, ["2/1/2026 9:00:00", "a@example.com", "10"])],
     incomplete=True, settled=(3, ["2/1/2026 9:05:00", "b@example.com", "7"]))

# Typeform: "#" (the response token) first, questions by title, then
# Start Date (UTC), Submit Date (UTC), Network ID; LF endings; an answer
# with a line break and one with quotes; a skipped question left empty.
case("typeform-responses.csv",
     "#,What's your name?,\"Rate us, 1-10\",Tell us more,Start Date (UTC),Submit Date (UTC),Network ID\n"
     "a1b2c3d4e5,Ada Lovelace,9,\"Loved it.\nWould \"\"definitely\"\" come back.\",2026-03-01 10:00:00,2026-03-01 10:02:13,1f2e3d\n"
     "f6g7h8i9j0,Grace Hopper,,,2026-03-01 11:00:00,2026-03-01 11:00:40,4c5b6a\n",
     ["#", "What's your name?", "Rate us, 1-10", "Tell us more", "Start Date (UTC)",
      "Submit Date (UTC)", "Network ID"],
     [(2, ["a1b2c3d4e5", "Ada Lovelace", "9", "Loved it.\nWould \"definitely\" come back.",
           "2026-03-01 10:00:00", "2026-03-01 10:02:13", "1f2e3d"]),
      (4, ["f6g7h8i9j0", "Grace Hopper", "", "", "2026-03-01 11:00:00", "2026-03-01 11:00:40",
           "4c5b6a"])],
     key="#")

# Tally: a UTF-8 BOM, every field quoted, CRLF; Submission ID is the key.
case("tally-submissions.csv",
     BOM + "\"Submission ID\",\"Respondent ID\",\"Submitted at\",\"Email\",\"How did you hear about us?\"\r\n"
     "\"mJxQ5a\",\"3EdX7p\",\"2026-04-02 14:11:09\",\"jo@example.com\",\"Friend\"\r\n"
     "\"nKyR6b\",\"4FeY8q\",\"2026-04-02 15:30:00\",\"søren@example.dk\",\"Søgning, LinkedIn\"\r\n",
     ["Submission ID", "Respondent ID", "Submitted at", "Email", "How did you hear about us?"],
     [(2, ["mJxQ5a", "3EdX7p", "2026-04-02 14:11:09", "jo@example.com", "Friend"]),
      (3, ["nKyR6b", "4FeY8q", "2026-04-02 15:30:00", "søren@example.dk", "Søgning, LinkedIn"])],
     key="Submission ID")

# Jotform: a BOM, "Submission Date" first, two fields both labelled
# "Name" (billing and shipping) and an unlabelled one.
case("jotform-orders.csv",
     BOM + "Submission Date,Name,E-mail,Name,,Submission ID\r\n"
     "\"Apr 5, 2026\",Ana Souza,ana@example.br,Ana Souza,gift wrap,5889012345678901234\r\n"
     "\"Apr 6, 2026\",Li Wei,li@example.cn,\"Wei, Li (office)\",,5889012345678905678\r\n",
     ["Submission Date", "Name", "E-mail", "Name 2", "Column 5", "Submission ID"],
     [(2, ["Apr 5, 2026", "Ana Souza", "ana@example.br", "Ana Souza", "gift wrap",
           "5889012345678901234"]),
      (3, ["Apr 6, 2026", "Li Wei", "li@example.cn", "Wei, Li (office)", "",
           "5889012345678905678"])],
     key="Submission ID")

# Repeats where the obvious new name is already a column.
case("duplicated-headers.csv",
     "Email,Email,Email 2,,Email\n"
     "a@x.example,b@x.example,c@x.example,d,e@x.example\n",
     ["Email", "Email 3", "Email 2", "Column 4", "Email 4"],
     [(2, ["a@x.example", "b@x.example", "c@x.example", "d", "e@x.example"])])

# Quoting edge cases: doubled quotes, a quoted CRLF and a quoted lone LF,
# spaces kept around unquoted cells, a cell that is only a quote, and an
# empty quoted cell.
case("quotes-and-newlines.csv",
     "id,text,note\r\n"
     "1,\"He said \"\"hi\"\", then left\",\"\"\r\n"
     "2,  padded  ,\"a\r\nb\nc\"\r\n"
     "3,\"\"\"\",\",\"\r\n",
     ["id", "text", "note"],
     [(2, ["1", "He said \"hi\", then left", ""]),
      (3, ["2", "  padded  ", "a\r\nb\nc"]),
      (6, ["3", "\"", ","])],
     key="id")

# Being written: the last record stops inside a quoted cell, over a line
# break.  It is not taken, not even by a final read.
case("truncated-open-quote.csv",
     "Timestamp,Email address,Message\n"
     "3/3/2026 12:00:00,x@example.com,short\n"
     "3/3/2026 12:01:00,y@example.com,\"first line\nsecond li",
     ["Timestamp", "Email address", "Message"],
     [(2, ["3/3/2026 12:00:00", "x@example.com", "short"])],
     incomplete=True, open_quote=True)

# Being written: a record cut right after the CR of its CRLF.
case("truncated-half-crlf.csv",
     "a,b\r\n1,2\r\n3,4\r",
     ["a", "b"],
     [(2, ["1", "2"])],
     incomplete=True, settled=(3, ["3", "4"]))

# The same export downloaded twice: the second has the first's rows and
# two more (test_csv_rows checks the keys overlap exactly).
REWRITE_HEAD = "Timestamp,Email address,Plan\r\n"
REWRITE_ROWS = ["5/1/2026 10:00:00,p@example.com,Pro\r\n", "5/1/2026 10:30:00,q@example.com,Free\r\n"]
REWRITE_NEW = ["5/2/2026 09:00:00,r@example.com,Team\r\n", "5/2/2026 09:15:00,s@example.com,Pro\r\n"]
case("rewritten-v1.csv", REWRITE_HEAD + "".join(REWRITE_ROWS),
     ["Timestamp", "Email address", "Plan"],
     [(2, ["5/1/2026 10:00:00", "p@example.com", "Pro"]),
      (3, ["5/1/2026 10:30:00", "q@example.com", "Free"])])
case("rewritten-v2.csv", REWRITE_HEAD + "".join(REWRITE_ROWS + REWRITE_NEW),
     ["Timestamp", "Email address", "Plan"],
     [(2, ["5/1/2026 10:00:00", "p@example.com", "Pro"]),
      (3, ["5/1/2026 10:30:00", "q@example.com", "Free"]),
      (4, ["5/2/2026 09:00:00", "r@example.com", "Team"]),
      (5, ["5/2/2026 09:15:00", "s@example.com", "Pro"])])

# Headers with dots: reachable as written through nested aliases; "Score"
# is a column itself, so "Score.total" gets no alias.
case("dotted-headers.csv",
     "Q1. Name,Q2. Email,Score,Score.total,v1.2.3\n"
     "Ada,ada@example.com,5,42,x\n",
     ["Q1. Name", "Q2. Email", "Score", "Score.total", "v1.2.3"],
     [(2, ["Ada", "ada@example.com", "5", "42", "x"])])

# Ragged rows and old Mac line endings (lone CR): short rows get "" in
# fields, long rows keep their extra cells in row only.  The CR ending the
# file may be half a CRLF, so the last row waits for a settled read.
case("ragged-cr.csv",
     "name,city,zip\rAnn,Oslo\rBo,Bergen,5003,extra\r\rCy\r",
     ["name", "city", "zip"],
     [(2, ["Ann", "Oslo"]), (3, ["Bo", "Bergen", "5003", "extra"])],
     incomplete=True, settled=(5, ["Cy"]))

# Not UTF-8: Windows-1252 bytes and a NUL become U+FFFD, one per byte.
case("invalid-utf8.csv",
     b"name,note\r\nJos\xe9,caf\xe9\x00ok\r\n",
     ["name", "note"],
     [(2, ["Jos\ufffd", "caf\ufffd\ufffdok"])])

# Excel's "Unicode text" is UTF-16: refused with a message.
case("utf16.csv", "\ufeffa,b\r\n1,2\r\n".encode("utf-16-le"), [], [],
     error="UTF-16")


def main():
    corpus = os.path.join(HERE, "corpus")
    os.makedirs(corpus, exist_ok=True)
    expected = {}
    for name, data, exp in CASES:
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
        expected[name] = exp
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
