#!/usr/bin/env python3
"""The promptd command line against the real binary: bad recipes and bad
events are refused with an error naming the problem and change nothing;
recipe import/list/show/export/enable/disable/rm; emit --dedupe; global
options before and after the command; --help and usage errors; the --json
outputs; `promptd test`, `promptd connectors` and `promptd demo`.

Needs $PROMPTD (the binary)."""

import csv
import io
import json
import os
import sqlite3
import subprocess

from promptd_test import PROMPTD, Failure, main

GOOD = """\
name: good
trigger: { event: { source: s1 } }
steps:
  - id: note
    log: { message: "hello {{event.n}}" }
  - id: row
    if: { path: event.n, gte: 0 }
    csvfile: { path: %s, header: [n, text], row: ["{{event.n}}", "{{event.text}}"] }
"""

# Recipes of the directory import listen elsewhere, so they never add runs
# to the checks on source s1.
DIR_RECIPE = GOOD.replace("name: good", "name: NAME").replace("source: s1", "source: sdir")

# name -> (file text, substrings stderr must hold besides the file name,
# expected "line:col" or None when only the file name is checked)
BAD_RECIPES = {
    "invalid-yaml": ("name: bad\ntrigger: { event: { source: s1 }\nsteps: [\n", [], "3:1"),
    "unknown-top": ("name: bad\ntrigger: { event: { source: s1 } }\ncolour: red\n"
                    "steps:\n  - id: note\n    log: { message: hi }\n",
                    ["colour", "unknown"], "3:1"),
    "unknown-step": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                     "steps:\n  - id: note\n    retries: 3\n    log: { message: hi }\n",
                     ["steps[0].retries", "unknown"], "5:5"),
    "unknown-config": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                       "steps:\n  - id: note\n    log: { message: hi, colour: red }\n",
                       ["steps[0].log.colour", "unknown"], "5:"),
    "wrong-type-row": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                       "steps:\n  - id: row\n    csvfile: { path: out.csv, row: notalist }\n",
                       ["steps[0].csvfile.row", "expected"], "5:"),
    "wrong-type-steps": ("name: bad\ntrigger: { event: { source: s1 } }\nsteps: 7\n",
                         ["steps"], "3:"),
    "wrong-type-name": ("name: [a, b]\ntrigger: { event: { source: s1 } }\n"
                        "steps:\n  - id: note\n    log: { message: hi }\n",
                        ["name"], "1:"),
    "missing-path": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                     "steps:\n  - id: row\n    csvfile: { row: [a] }\n",
                     ["steps[0].csvfile.path", "missing"], "5:"),
    "missing-trigger": ("name: bad\nsteps:\n  - id: note\n    log: { message: hi }\n",
                        ["trigger", "missing"], None),
    "missing-steps": ("name: bad\ntrigger: { event: { source: s1 } }\n",
                      ["steps"], None),
    "missing-name": ("trigger: { event: { source: s1 } }\n"
                     "steps:\n  - id: note\n    log: { message: hi }\n",
                     ["name", "missing"], None),
    "if-unknown-step": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                        "steps:\n  - id: note\n    log: { message: hi }\n"
                        "  - id: two\n    if: { path: steps.nosuch.x, eq: 1 }\n"
                        "    log: { message: hi }\n",
                        ["steps[1].if", "nosuch"], "7:"),
    "if-later-step": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                      "steps:\n  - id: one\n    if: { path: steps.two.x, eq: 1 }\n"
                      "    log: { message: hi }\n"
                      "  - id: two\n    log: { message: hi }\n",
                      ["steps[0].if", "two"], "5:"),
    "unclosed-tag": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                     "steps:\n  - id: note\n    log: { message: \"hi {{event.n\" }\n",
                     ["steps[0].log.message", "unclosed"], "5:"),
    "unclosed-section": ("name: bad\ntrigger: { event: { source: s1 } }\n"
                         "steps:\n  - id: note\n    log: { message: \"{{#event.items}}x\" }\n",
                         ["steps[0].log.message", "event.items"], "5:"),
}


def event_count(c):
    con = sqlite3.connect(c.db, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()


def dump(c):
    con = sqlite3.connect(c.db, timeout=10)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def snapshot(c):
    """What the acceptance calls 'changes nothing', plus the whole dump."""
    return (c.json("recipe", "list", "--json"), c.json("runs", "list", "--json"),
            event_count(c), dump(c))


def check_unchanged(c, what, before):
    after = snapshot(c)
    c.check(what + ": recipe list unchanged", after[0] == before[0], str(after[0]))
    c.check(what + ": runs list unchanged", after[1] == before[1], str(after[1])[:300])
    c.check(what + ": no event stored", after[2] == before[2], "%d -> %d" % (before[2], after[2]))
    diff = [l for l in after[3] if l not in before[3]] + [l for l in before[3] if l not in after[3]]
    c.check(what + ": database identical", not diff, str(diff[:3]))


def run_env(c, args, env_extra, cwd, stdin=None):
    env = dict(os.environ)
    env.pop("STATE_DIRECTORY", None)
    env.update(env_extra)
    p = subprocess.run([PROMPTD] + args, input=stdin, capture_output=True, cwd=cwd, env=env,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def bad_recipes(c):
    c.write("good.yaml", GOOD % c.path("out.csv"))
    rc, _, err = c.run("recipe", "import", "good.yaml")
    c.check("good recipe imports", rc == 0, err)
    before = snapshot(c)
    for name, (text, needles, pos) in sorted(BAD_RECIPES.items()):
        fname = "bad-%s.yaml" % name
        c.write(fname, text)
        rc, out, err = c.run("recipe", "import", fname)
        c.check("%s: exit 1" % name, rc == 1, "exit %d, stderr %r" % (rc, err))
        where = fname + ":" + (pos if pos else "")
        c.check("%s: error names file:line:col" % name,
                where in err and (pos is None or err.count(":") >= 3), repr(err))
        if pos is None:
            # Still a line and column after the file name.
            rest = err.split(fname + ":", 1)[-1]
            parts = rest.split(":")
            c.check("%s: error has line and column" % name,
                    len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit(), repr(err))
        for n in needles:
            c.check("%s: error names %r" % (name, n), n in err, repr(err))
        c.check("%s: nothing on stdout" % name, out == "", repr(out))
        # --json does not change the outcome
        rc, out, err = c.run("recipe", "import", fname, "--json")
        c.check("%s: exit 1 with --json" % name, rc == 1, "exit %d" % rc)
        check_unchanged(c, name, before)
        rc, _, _ = c.run("recipe", "show", "bad")
        c.check("%s: no recipe 'bad' stored" % name, rc == 1)

    # A tab in indentation and a non-mapping document are YAML trouble too.
    c.write("bad-list.yaml", "- a\n- b\n")
    rc, _, err = c.run("recipe", "import", "bad-list.yaml")
    c.check("a list document: exit 1 naming the file", rc == 1 and "bad-list.yaml:" in err, repr(err))
    check_unchanged(c, "list document", before)

    # A directory import where one file is bad imports nothing.
    c.write("dir/a-first.yaml", DIR_RECIPE.replace("NAME", "dir-a") % c.path("a.csv"))
    c.write("dir/b-bad.yaml", BAD_RECIPES["unknown-step"][0])
    c.write("dir/c-last.yaml", DIR_RECIPE.replace("NAME", "dir-c") % c.path("c.csv"))
    rc, out, err = c.run("recipe", "import", "dir")
    c.check("directory with one bad file: exit 1", rc == 1, "exit %d %r" % (rc, err))
    c.check("directory import names the bad file", "b-bad.yaml:5:5" in err, repr(err))
    check_unchanged(c, "directory import", before)
    for n in ("dir-a", "dir-c"):
        rc, _, _ = c.run("recipe", "show", n)
        c.check("directory import stored no %s" % n, rc == 1)

    # Two files declaring the same name: refused as a whole.
    os.remove(c.path("dir/b-bad.yaml"))
    c.write("dir/b-dup.yaml", DIR_RECIPE.replace("NAME", "dir-a") % c.path("a.csv"))
    rc, _, err = c.run("recipe", "import", "dir")
    c.check("directory with a duplicate name: exit 1", rc == 1 and "dir-a" in err, repr(err))
    check_unchanged(c, "duplicate names", before)
    os.remove(c.path("dir/b-dup.yaml"))
    rc, out, err = c.run("recipe", "import", "dir", "--json")
    c.check("fixed directory imports", rc == 0, err)
    if rc == 0:
        names = sorted(i["name"] for i in json.loads(out))
        c.check("both recipes of the directory imported", names == ["dir-a", "dir-c"], str(names))

    rc, _, err = c.run("recipe", "import", "no-such-file.yaml")
    c.check("missing file: exit 1 naming it", rc == 1 and "no-such-file.yaml" in err, repr(err))


def bad_events(c):
    before = snapshot(c)
    big = b'{"a": "' + b"x" * (1024 * 1024 + 16) + b'"}'
    cases = {
        "oversized": (big, ["larger than 1048576"]),
        "invalid UTF-8": (b'{"a": "caf\xe9 \xff"}', ["UTF-8"]),
        "overlong UTF-8": (b'{"a": "\xc0\xaf"}', ["UTF-8"]),
        "UTF-8 surrogate": (b'{"a": "\xed\xa0\x80"}', ["UTF-8"]),
        "array": (b"[1, 2, 3]", ["JSON object"]),
        "string": (b'"just a string"', ["JSON object"]),
        "number": (b"42", ["JSON object"]),
        "invalid JSON": (b'{"a": ', ["JSON"]),
        "trailing garbage": (b'{"a": 1} xyz', ["JSON"]),
        "empty": (b"", ["JSON"]),
    }
    for name, (payload, needles) in cases.items():
        path = c.path("event-%s.json" % name.replace(" ", "-"))
        with open(path, "wb") as f:
            f.write(payload)
        for via in ("file", "stdin"):
            if via == "file":
                rc, out, err = c.run("emit", "--source", "s1", "--event", path)
            else:
                rc, out, err = c.run("emit", "--source", "s1", "--event", "-", stdin=payload)
            what = "emit %s (%s)" % (name, via)
            c.check(what + ": exit 1", rc == 1, "exit %d, out %r, err %r" % (rc, out, err[:300]))
            for n in needles:
                c.check(what + ": error says %r" % n, n in err, repr(err[:300]))
            c.check(what + ": error is one short line", err.count("\n") == 1 and len(err) < 400,
                    repr(err[:400]))
    check_unchanged(c, "bad events", before)

    # Just under the limit is accepted.
    ok = b'{"a": "' + b"y" * (1024 * 1024 - 16) + b'"}'
    rc, out, err = c.run("emit", "--source", "other", "--event", "-", "--json", stdin=ok)
    c.check("an event of just under 1 MiB is accepted", rc == 0, err[:300])


def recipe_lifecycle(c):
    out_csv = c.path("out.csv")
    rc, out, err = c.run("recipe", "import", "good.yaml", "--json")
    c.check("re-import: exit 0", rc == 0, err)
    items = json.loads(out) if rc == 0 else []
    c.check("unchanged import is a no-op",
            items and items[0]["name"] == "good" and items[0]["version"] == 1
            and items[0]["changed"] is False, str(items))
    rc, out, _ = c.run("recipe", "import", "good.yaml")
    c.check("unchanged import says so", rc == 0 and "unchanged" in out, out)

    c.write("good.yaml", (GOOD % out_csv).replace("hello", "hi there"))
    rc, out, err = c.run("recipe", "import", "good.yaml", "--json")
    items = json.loads(out) if rc == 0 else []
    c.check("changed file gives version 2",
            items and items[0]["version"] == 2 and items[0]["changed"] is True, str(items) + err)

    lst = c.json("recipe", "list", "--json")
    good = [r for r in lst if r["name"] == "good"]
    c.check("recipe list --json has good v2, enabled",
            len(good) == 1 and good[0]["version"] == 2 and good[0]["enabled"] is True
            and good[0]["source"] == "s1" and good[0]["steps"] == 2, str(good))
    rc, out, _ = c.run("recipe", "list")
    c.check("recipe list (text) names good", rc == 0 and "good" in out, out)

    show = c.json("recipe", "show", "good", "--json")
    c.check("recipe show --json", show["name"] == "good" and show["version"] == 2
            and show["enabled"] is True and isinstance(show["definition"], dict)
            and "hi there" in json.dumps(show["definition"]), str(show)[:300])
    v1 = c.json("recipe", "show", "good", "--version", "1", "--json")
    c.check("recipe show --version 1", v1["version"] == 1
            and "hello" in json.dumps(v1["definition"]), str(v1)[:300])
    rc, out, err = c.run("recipe", "export", "good")
    exported = None
    try:
        exported = json.loads(out)
    except ValueError:
        pass
    c.check("recipe export prints JSON", rc == 0 and isinstance(exported, dict)
            and exported.get("name") == "good" and len(exported.get("steps", [])) == 2,
            out[:300] + err)
    # The export is a recipe again: importing it under a new name works.
    if isinstance(exported, dict):
        exported["name"] = "copy-of-good"
        c.write("copy.yaml", json.dumps(exported))
        rc, _, err = c.run("recipe", "import", "copy.yaml")
        c.check("exported definition imports again", rc == 0, err)
        c.run("recipe", "rm", "copy-of-good")
    rc, _, err = c.run("recipe", "show", "nosuch")
    c.check("recipe show of an unknown name: exit 1", rc == 1 and "nosuch" in err, err)
    for sub in ("enable", "disable", "rm", "export"):
        rc, _, err = c.run("recipe", sub, "nosuch")
        c.check("recipe %s nosuch: exit 1 naming it" % sub, rc == 1 and "nosuch" in err, err)

    # Runs record the version they used.
    rc, out, err = c.run("emit", "--source", "s1", "--event", "-", "--json",
                         stdin=b'{"n": 1, "text": "one"}')
    r = json.loads(out) if rc == 0 else {}
    c.check("emit with good enabled queues one run", r.get("runs") == 1 and r.get("created") is True,
            out + err)
    runs = c.json("runs", "list", "--recipe", "good", "--json")
    c.check("the run records version 2", runs and runs[0]["recipe_version"] == 2, str(runs)[:300])

    rc, out, err = c.run("recipe", "disable", "good")
    c.check("recipe disable", rc == 0 and "disabled" in out, err)
    c.check("recipe list shows it disabled",
            [r["enabled"] for r in c.json("recipe", "list", "--json") if r["name"] == "good"] == [False])
    before = len(c.json("runs", "list", "--json"))
    rc, out, err = c.run("emit", "--source", "s1", "--event", "-", "--json", stdin=b'{"n": 2}')
    r = json.loads(out) if rc == 0 else {}
    c.check("disabled recipe gets no run", rc == 0 and r.get("runs") == 0 and r.get("created"),
            out + err)
    c.check("runs list unchanged after emit to a disabled recipe",
            len(c.json("runs", "list", "--json")) == before)
    rc, out, err = c.run("recipe", "enable", "good")
    c.check("recipe enable", rc == 0 and "enabled" in out, err)
    rc, out, err = c.run("emit", "--source", "s1", "--event", "-", "--json", stdin=b'{"n": 3}')
    c.check("enabled again: one run", rc == 0 and json.loads(out)["runs"] == 1, out + err)

    rc, out, err = c.run("recipe", "rm", "good")
    c.check("recipe rm", rc == 0 and "removed" in out, err)
    c.check("rm'd recipe not listed",
            "good" not in [r["name"] for r in c.json("recipe", "list", "--json")])
    before = len(c.json("runs", "list", "--json"))
    rc, out, err = c.run("emit", "--source", "s1", "--event", "-", "--json", stdin=b'{"n": 4}')
    c.check("rm'd recipe gets no run", rc == 0 and json.loads(out)["runs"] == 0, out + err)
    c.check("runs list unchanged after emit to a removed recipe",
            len(c.json("runs", "list", "--json")) == before)
    rc, _, err = c.run("recipe", "show", "good")
    c.check("recipe show of a removed recipe: exit 1", rc == 1, err)
    # The runs that used it stay readable.
    rc, out, err = c.run("runs", "list", "--recipe", "good", "--json")
    c.check("runs of a removed recipe are still listed", rc == 0 and len(json.loads(out)) > 0, err)
    # Importing it again continues its version numbers.
    rc, out, err = c.run("recipe", "import", "good.yaml", "--json")
    items = json.loads(out) if rc == 0 else []
    c.check("re-import after rm continues versions",
            items and items[0]["version"] >= 2 and items[0]["name"] == "good", str(items) + err)
    rc, out, err = c.run("emit", "--source", "s1", "--event", "-", "--json", stdin=b'{"n": 5}')
    c.check("re-imported recipe gets runs again", rc == 0 and json.loads(out)["runs"] == 1, out + err)


def dedupe(c):
    n_events = event_count(c)
    n_runs = len(c.json("runs", "list", "--json"))
    rc1, out1, err1 = c.run("emit", "--source", "s1", "--event", "-", "--dedupe", "key-1", "--json",
                            stdin=b'{"n": 10}')
    rc2, out2, err2 = c.run("emit", "--source", "s1", "--event", "-", "--dedupe", "key-1", "--json",
                            stdin=b'{"n": 11}')
    c.check("emit --dedupe: both exit 0", rc1 == 0 and rc2 == 0, err1 + err2)
    if rc1 == 0 and rc2 == 0:
        a, b = json.loads(out1), json.loads(out2)
        c.check("first emit creates", a["created"] is True and a["runs"] == 1, str(a))
        c.check("second emit creates nothing", b["created"] is False and b["runs"] == 0, str(b))
        c.check("second emit reports the same event_id", a["event_id"] == b["event_id"], "%s %s" % (a, b))
    c.check("one event stored for two emits", event_count(c) == n_events + 1)
    c.check("one run queued for two emits", len(c.json("runs", "list", "--json")) == n_runs + 1)
    rc, out, _ = c.run("emit", "--source", "s1", "--event", "-", "--dedupe", "key-1", stdin=b'{"n": 1}')
    c.check("text output says nothing was added", rc == 0 and "already" in out, out)
    # The same key on another source is another event.
    rc, out, _ = c.run("emit", "--source", "s2", "--event", "-", "--dedupe", "key-1", "--json",
                       stdin=b'{"n": 1}')
    c.check("same key, other source: a new event", rc == 0 and json.loads(out)["created"] is True, out)


def global_options(c):
    a = c.path("a.db")
    rc, out, err = c.run("--db", a, "emit", "--source", "g", "--event", "-", stdin=b"{}", db=False)
    c.check("--db before the command", rc == 0 and os.path.exists(a), err)
    rc, out, err = c.run("runs", "list", "--json", "--db", a, db=False)
    c.check("--db after the command", rc == 0 and json.loads(out) == [], out + err)
    rc, out, err = c.run("--db=%s" % a, "status", "--json", db=False)
    c.check("--db=PATH form", rc == 0 and json.loads(out)["database"] == a, out + err)
    rc, out, err = c.run("status", "--json", "--db", a, db=False)
    c.check("status names the --db given after the command",
            rc == 0 and json.loads(out)["database"] == a, out + err)
    con = sqlite3.connect(a)
    c.check("the event went to --db", con.execute("SELECT count(*) FROM events").fetchone()[0] == 1)
    con.close()
    mode = os.stat(a).st_mode & 0o777
    c.check("database file is mode 0600", mode == 0o600, oct(mode))
    rc, _, err = c.run("runs", "list", "--db", db=False)
    c.check("--db without a value: exit 2", rc == 2, err)

    # STATE_DIRECTORY default; the first of a colon-separated list.
    state = c.path("state")
    os.makedirs(state)
    cwd = c.path("elsewhere")
    os.makedirs(cwd)
    rc, out, err = run_env(c, ["emit", "--source", "g", "--event", "-"],
                           {"STATE_DIRECTORY": state + ":" + c.path("second")}, cwd, stdin=b"{}")
    c.check("emit with STATE_DIRECTORY", rc == 0, err)
    c.check("default db is $STATE_DIRECTORY/promptd.db", os.path.exists(os.path.join(state, "promptd.db")))
    c.check("no db in the working directory", not os.path.exists(os.path.join(cwd, "promptd.db")))
    c.check("no db in the second state directory", not os.path.exists(c.path("second", "promptd.db")))
    rc, out, err = run_env(c, ["status", "--json"], {"STATE_DIRECTORY": state}, cwd)
    c.check("status reports the STATE_DIRECTORY db",
            rc == 0 and json.loads(out)["database"] == os.path.join(state, "promptd.db"), out + err)
    other = c.path("explicit.db")
    rc, out, err = run_env(c, ["--db", other, "status", "--json"], {"STATE_DIRECTORY": state}, cwd)
    c.check("--db wins over STATE_DIRECTORY", rc == 0 and json.loads(out)["database"] == other, out + err)
    rc, out, err = run_env(c, ["emit", "--source", "g", "--event", "-"], {}, cwd, stdin=b"{}")
    c.check("without STATE_DIRECTORY the db is ./promptd.db",
            rc == 0 and os.path.exists(os.path.join(cwd, "promptd.db")), err)


def help_and_usage(c):
    rc, out, err = c.run("--help", db=False)
    c.check("promptd --help: exit 0, usage on stdout", rc == 0 and out.startswith("usage:") and not err,
            out[:100] + err)
    for name in ("serve", "emit", "recipe", "runs", "status", "test", "template", "connectors",
                 "demo"):
        c.check("promptd --help lists %s" % name, ("  " + name + " ") in out)
    commands = [["serve"], ["emit"], ["recipe"], ["recipe", "import"], ["recipe", "list"],
                ["recipe", "show"], ["recipe", "rm"], ["runs"], ["runs", "list"], ["runs", "show"],
                ["runs", "replay"], ["status"], ["test"], ["template"], ["template", "render"],
                ["connectors"], ["demo"]]
    for cmd in commands:
        for flag in ("--help", "-h"):
            rc, out, err = c.run(*(cmd + [flag]))
            c.check("%s %s: exit 0, usage on stdout" % (" ".join(cmd), flag),
                    rc == 0 and "usage:" in out and err == "", "exit %d out %r err %r" % (rc, out[:80], err))
    # --help before the command name goes to the command too.
    rc, out, err = c.run("--db", c.db, "runs", "--help", db=False)
    c.check("runs --help after a global option", rc == 0 and "usage: promptd runs" in out, out[:80])

    rc, out, err = c.run("frobnicate")
    c.check("unknown command: exit 2", rc == 2 and "frobnicate" in err, err)
    rc, out, err = c.run(db=False)
    c.check("no command: exit 2 with usage on stderr", rc == 2 and "usage:" in err, err[:80])
    rc, out, err = c.run("--bogus", "runs", "list")
    c.check("unknown global option: exit 2", rc == 2 and "--bogus" in err, err)
    for cmd in (["serve"], ["emit", "--source", "x", "--event", "-"], ["recipe", "list"],
                ["recipe", "import", "x.yaml"], ["runs", "list"], ["runs", "show", "1"],
                ["runs", "replay", "1"], ["status"], ["test", "good.yaml", "--event", "e.json"],
                ["template", "render", "t"], ["connectors"], ["demo"]):
        rc, out, err = c.run(*(cmd + ["--bogus"]))
        c.check("%s --bogus: exit 2 naming the option" % " ".join(cmd),
                rc == 2 and "--bogus" in err, "exit %d err %r" % (rc, err))
    for args, what in ((["recipe", "frob"], "unknown recipe subcommand"),
                       (["runs", "frob"], "unknown runs subcommand"),
                       (["runs", "show"], "runs show without an id"),
                       (["runs", "show", "abc"], "runs show with a bad id"),
                       (["runs", "list", "--status", "weird"], "unknown status"),
                       (["runs", "list", "--limit", "0"], "bad limit"),
                       (["emit", "--event", "-"], "emit without --source"),
                       (["emit", "--source", "x"], "emit without --event"),
                       (["recipe", "import"], "import without a path"),
                       (["test", "good.yaml"], "test without --event"),
                       (["--log-level", "loud", "status"], "bad log level")):
        rc, _, err = c.run(*args)
        c.check(what + ": exit 2", rc == 2 and err.startswith("promptd: "), "exit %d %r" % (rc, err))


def runs_json(c):
    # A run that has executed: let the daemon run the queued ones.
    d = c.start_daemon()
    try:
        c.wait_for("queued runs to finish", lambda: all(
            r["status"] in ("succeeded", "failed") for r in c.json("runs", "list", "--json")),
            timeout=60)
    finally:
        rc = c.stop_daemon(d)
        c.check("daemon stops with 0", rc == 0, "exit %d" % rc)
    runs = c.json("runs", "list", "--json")
    c.check("runs list --json is a non-empty array", isinstance(runs, list) and runs)
    for r in runs:
        missing = [k for k in ("id", "recipe", "status", "attempt", "error") if k not in r]
        if missing:
            c.check("runs list --json fields", False, "missing %s in %s" % (missing, r))
            break
    else:
        c.check("runs list --json fields", True)
    c.check("runs list is newest first", [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True))
    ok = [r for r in runs if r["status"] == "succeeded" and r["recipe"] == "good"]
    c.check("a succeeded run of good", ok, str(runs)[:400])
    c.check("runs list --status succeeded", all(r["status"] == "succeeded"
                                                for r in c.json("runs", "list", "--status", "succeeded", "--json")))
    c.check("runs list --limit 1", len(c.json("runs", "list", "--limit", "1", "--json")) == 1)
    c.check("runs list --recipe nosuch is empty", c.json("runs", "list", "--recipe", "nosuch", "--json") == [])
    if not ok:
        return
    rid = ok[0]["id"]
    show = c.json("runs", "show", str(rid), "--json")
    steps = show.get("steps", [])
    c.check("runs show --json: run fields", show["id"] == rid and show["status"] == "succeeded"
            and show["error"] is None, str(show)[:300])
    c.check("runs show --json: event payload", isinstance(show.get("event", {}).get("payload"), dict))
    c.check("runs show --json: two steps", [s.get("id") for s in steps] == ["note", "row"], str(steps)[:300])
    for s in steps:
        c.check("step %s has input, output, attempts" % s.get("id"),
                all(k in s for k in ("input", "output", "attempts", "status", "error"))
                and s["attempts"] == 1 and s["status"] == "succeeded"
                and isinstance(s["input"], dict) and s["output"] is not None, str(s)[:300])
    if len(steps) == 2:
        c.check("step input is the rendered config", "message" in steps[0]["input"]
                and steps[0]["input"]["message"].startswith("hi there "), str(steps[0]["input"]))
    rc, out, err = c.run("runs", "show", str(rid))
    c.check("runs show (text)", rc == 0 and "note" in out and "row" in out, out[:300] + err)

    rc, out, err = c.run("runs", "replay", str(rid))
    c.check("replay of a succeeded run: exit 1 with a message",
            rc == 1 and "not failed" in err and str(rid) in err, "exit %d %r" % (rc, err))
    c.check("replay refused: run unchanged", c.json("runs", "show", str(rid), "--json") == show)
    rc, out, err = c.run("runs", "replay", "999999")
    c.check("replay of an unknown run: exit 1", rc == 1 and "999999" in err, err)
    rc, out, err = c.run("runs", "show", "999999")
    c.check("show of an unknown run: exit 1", rc == 1 and "999999" in err, err)


def dry_run(c):
    c.write("event.json", '{"n": 7, "text": "seven"}')
    for recipe in ("good.yaml", "good"):
        before = snapshot(c)
        rc, out, err = c.run("test", recipe, "--event", "event.json")
        c.check("test %s: exit 0" % recipe, rc == 0, err)
        c.check("test %s prints the rendered message" % recipe, "hi there 7" in out, out)
        c.check("test %s prints the rendered row" % recipe, '"7"' in out and '"seven"' in out, out)
        check_unchanged(c, "test " + recipe, before)
        rc, out, err = c.run("test", recipe, "--event", "event.json", "--json")
        try:
            j = json.loads(out)
        except ValueError:
            j = {}
        c.check("test %s --json parses" % recipe, rc == 0 and j.get("recipe") == "good"
                and j.get("matches") is True and len(j.get("steps", [])) == 2, out[:300] + err)
        if len(j.get("steps", [])) == 2:
            c.check("test --json step inputs", j["steps"][0]["input"]["message"] == "hi there 7"
                    and j["steps"][1]["input"].get("row") == ["7", "seven"], str(j["steps"]))
        check_unchanged(c, "test %s --json" % recipe, before)
    c.check("test wrote no CSV row", not os.path.exists(c.path("out.csv")) or
            "seven" not in open(c.path("out.csv")).read())
    # A step skipped by its if:
    c.write("neg.json", '{"n": -1}')
    j = json.loads(c.run("test", "good.yaml", "--event", "neg.json", "--json")[1])
    c.check("test shows a skipped step", j["steps"][1]["verdict"] == "skipped", str(j["steps"]))
    rc, _, err = c.run("test", "good.yaml", "--event", "event-array.json")
    c.check("test with a non-object event: exit 1", rc == 1 and "object" in err, err)
    rc, _, err = c.run("test", "bad-unknown-step.yaml", "--event", "event.json")
    c.check("test of an invalid recipe: exit 1 naming file:line:col",
            rc == 1 and "bad-unknown-step.yaml:5:5" in err, err)
    rc, _, err = c.run("test", "nosuch", "--event", "event.json")
    c.check("test of an unknown recipe: exit 1", rc == 1 and "nosuch" in err, err)


def connectors_and_demo(c):
    rc, out, err = c.run("connectors", db=False)
    c.check("connectors: exit 0", rc == 0, err)
    for kind in ("event", "log", "csvfile"):
        c.check("connectors lists %s" % kind, any(l.split()[:1] == [kind] for l in out.splitlines()), out)
    rc, out, err = c.run("connectors", "csvfile", db=False)
    c.check("connectors csvfile describes its fields", rc == 0 and "path" in out and "row" in out, out + err)
    rc, out, err = c.run("connectors", "nosuch", db=False)
    c.check("connectors nosuch: an error", rc != 0 and "nosuch" in err, err)

    rc, out, err = c.run("demo", db=False, timeout=300)
    c.check("demo: exit 0", rc == 0, err[-500:])
    c.check("demo prints the orders.csv section", "== orders.csv ==" in out, out[-500:])
    if "== orders.csv ==" in out:
        section = out.split("== orders.csv ==", 1)[1].split("==", 1)[0]
        rows = list(csv.reader(io.StringIO(section.strip())))
        c.check("orders.csv section has the header and rows",
                len(rows) >= 2 and rows[0][:2] == ["order", "customer"], section)
    sheet = out.split("== Google Sheet (fake)", 1)[1] if "== Google Sheet (fake)" in out else ""
    lines = [l for l in sheet.splitlines()[1:] if l.strip()]
    c.check("demo: forms-to-sheet added a row per form response to the fake sheet",
            len(lines) == 3 and lines[0].startswith("submitted |")
            and any("Ana Lima" in l for l in lines) and any("Tom Becker" in l for l in lines),
            sheet[:600])
    c.check("demo prints no key file", "PRIVATE KEY" not in out)


def store_and_config(c):
    # A database newer than the binary is refused and left untouched.
    newer = c.path("newer.db")
    con = sqlite3.connect(newer)
    con.execute("CREATE TABLE t (x)")
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with open(newer, "rb") as f:
        before = f.read()
    for args in (["runs", "list"], ["emit", "--source", "s1", "--event", "-"], ["status"]):
        rc, _, err = c.run("--db", newer, *args, stdin=b"{}", db=False)
        c.check("newer database refused by %s" % args[0], rc == 1 and "99" in err and "newer" in err, err)
    with open(newer, "rb") as f:
        c.check("newer database left untouched", f.read() == before)
    c.check("newer database: no WAL created", not os.path.exists(newer + "-wal"))
    rc, _, err = c.run("--db", c.dir, "runs", "list", db=False)
    c.check("--db naming a directory: exit 1", rc == 1 and c.dir in err, err)
    rc, _, err = c.run("--db", c.path("no", "such", "dir.db"), "runs", "list", db=False)
    c.check("--db in a missing directory: exit 1", rc == 1 and "dir.db" in err, err)

    # The configuration's event limit applies to emit; a bad configuration
    # names file:line:col and changes nothing.
    before = snapshot(c)
    c.write("small.conf", "engine:\n  max_event_bytes: 100\n")
    payload = json.dumps({"a": "x" * 200}).encode()
    rc, _, err = c.run("--config", "small.conf", "emit", "--source", "s1", "--event", "-", stdin=payload)
    c.check("emit over the configured max_event_bytes: exit 1", rc == 1 and "100 bytes" in err, err)
    c.write("typo.conf", "engine:\n  concurency: 3\n")
    rc, _, err = c.run("emit", "--source", "s1", "--event", "-", "--config", "typo.conf", stdin=b"{}")
    c.check("bad configuration: exit 1 naming file:line:col and the field",
            rc == 1 and "typo.conf:2:3" in err and "concurency" in err, err)
    rc, _, err = c.run("--config", "missing.conf", "emit", "--source", "s1", "--event", "-", stdin=b"{}")
    c.check("missing configuration: exit 1 naming it", rc == 1 and "missing.conf" in err, err)
    check_unchanged(c, "configuration errors", before)
    rc, out, err = c.run("--config", "small.conf", "emit", "--source", "s1", "--event", "-",
                         "--json", stdin=b'{"n": 1}')
    c.check("small event within the configured limit", rc == 0, err)


def body(c):
    bad_recipes(c)
    bad_events(c)
    recipe_lifecycle(c)
    dedupe(c)
    global_options(c)
    help_and_usage(c)
    runs_json(c)
    dry_run(c)
    store_and_config(c)
    connectors_and_demo(c)


main("cli", body)
