#!/usr/bin/env python3
"""`promptd template render` against the official Mustache spec and its own
options.

Every case of every spec file in $PROMPTD_SHARED_DIR/conformance/mustache/
goes through the real binary exactly as a user would run it (template file,
context file, partials folder of NAME.mustache files) and stdout must match
the expected text byte for byte.  Then the escape modes, usage errors and a
template error are checked.  Needs $PROMPTD (the binary).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SPEC_FILES = ["comments.json", "delimiters.json", "interpolation.json",
              "inverted.json", "sections.json", "partials.json"]

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, ("\n" + detail) if detail else ""))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def run(promptd, args, cwd):
    return subprocess.run([promptd] + args, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)


def render_case(promptd, work, template, data, partials, escape=None):
    """Writes one case into a fresh folder under work and renders it."""
    case = tempfile.mkdtemp(dir=work)
    write(os.path.join(case, "tpl"), template)
    write(os.path.join(case, "ctx.json"), json.dumps(data))
    pdir = os.path.join(case, "partials")
    os.mkdir(pdir)
    for name, text in (partials or {}).items():
        write(os.path.join(pdir, name + ".mustache"), text)
    args = ["template", "render", "tpl", "--context", "ctx.json",
            "--partials", "partials"]
    if escape:
        args += ["--escape", escape]
    r = run(promptd, args, case)
    shutil.rmtree(case)
    return r


def spec_cases(promptd, spec_dir, work):
    for name in SPEC_FILES:
        path = os.path.join(spec_dir, name)
        with open(path, encoding="utf-8") as f:
            tests = json.load(f)["tests"]
        if not tests:
            check(False, "%s holds no tests" % path)
        for t in tests:
            r = render_case(promptd, work, t["template"], t["data"],
                            t.get("partials"))
            want = t["expected"].encode("utf-8")
            check(r.returncode == 0 and r.stdout == want,
                  "%s / %s" % (name, t["name"]),
                  "  template: %r\n  want: %r\n  got:  %r (exit %d)\n  stderr: %s"
                  % (t["template"], want, r.stdout, r.returncode,
                     r.stderr.decode("utf-8", "replace").strip()))


def escape_modes(promptd, work):
    data = {"s": "a \"q\" & <b>\\\n\tc\u00e9\u2603", "n": 1.21, "i": 85,
            "o": {"k": [1, "x"]}}
    tpl = "{{s}}|{{{s}}}|{{n}}|{{i}}|{{o}}"
    raw = "a \"q\" & <b>\\\n\tc\u00e9\u2603"
    cases = [
        (None, "a &quot;q&quot; &amp; &lt;b&gt;\\\n\tc\u00e9\u2603|" + raw
         + "|1.21|85|{&quot;k&quot;:[1,&quot;x&quot;]}"),
        ("html", "a &quot;q&quot; &amp; &lt;b&gt;\\\n\tc\u00e9\u2603|" + raw
         + "|1.21|85|{&quot;k&quot;:[1,&quot;x&quot;]}"),
        ("none", raw + "|" + raw + "|1.21|85|{\"k\":[1,\"x\"]}"),
        ("json", "a \\\"q\\\" & <b>\\\\\\n\\tc\u00e9\u2603|" + raw
         + "|1.21|85|{\\\"k\\\":[1,\\\"x\\\"]}"),
    ]
    for esc, want in cases:
        r = render_case(promptd, work, tpl, data, None, esc)
        check(r.returncode == 0 and r.stdout == want.encode("utf-8"),
              "--escape %s" % (esc or "(default)"),
              "  want: %r\n  got:  %r\n  stderr: %s"
              % (want.encode("utf-8"), r.stdout, r.stderr))

    # A JSON body rendered with --escape json parses back to the value.
    r = render_case(promptd, work, '{"text": "{{s}}"}', data, None, "json")
    try:
        ok = r.returncode == 0 and json.loads(r.stdout)["text"] == data["s"]
    except ValueError:
        ok = False
    check(ok, "--escape json gives a valid JSON string", repr(r.stdout))


def usage_and_errors(promptd, work):
    write(os.path.join(work, "ok.mustache"), "hi {{name}}")
    write(os.path.join(work, "ctx.json"), '{"name": "Ada"}')

    r = run(promptd, ["template", "render", "ok.mustache", "--context", "ctx.json"], work)
    check(r.returncode == 0 and r.stdout == b"hi Ada", "plain render, no partials",
          repr((r.returncode, r.stdout, r.stderr)))

    for args, what in [
        (["template", "render", "ok.mustache", "--context", "ctx.json", "--bogus"],
         "unknown option"),
        (["template", "render", "ok.mustache", "--context"], "missing option value"),
        (["template", "render", "ok.mustache"], "missing --context"),
        (["template", "render", "--context", "ctx.json"], "missing TEMPLATE_FILE"),
        (["template", "render", "ok.mustache", "--context", "ctx.json", "--escape", "xml"],
         "bad --escape value"),
        (["template", "frobnicate"], "unknown subcommand"),
        (["template"], "no subcommand"),
    ]:
        r = run(promptd, args, work)
        check(r.returncode == 2 and r.stdout == b"" and r.stderr.startswith(b"promptd: "),
              "usage error (%s) exits 2 with a message" % what,
              repr((r.returncode, r.stdout, r.stderr)))

    for args in (["template", "--help"], ["template", "render", "-h"]):
        r = run(promptd, args, work)
        check(r.returncode == 0 and b"usage: promptd template render" in r.stdout,
              "%s prints usage and exits 0" % " ".join(args), repr((r.returncode, r.stderr)))

    write(os.path.join(work, "bad.mustache"), "Dear {{name}},\n\nthanks for {{order")
    r = run(promptd, ["template", "render", "bad.mustache", "--context", "ctx.json"], work)
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 1 and r.stdout == b"" and err.startswith("promptd: ")
          and "line 3, column 12" in err and "unclosed tag" in err,
          "unclosed tag exits 1 naming line and column", repr((r.returncode, err)))

    write(os.path.join(work, "bad.json"), '{"name": ')
    r = run(promptd, ["template", "render", "ok.mustache", "--context", "bad.json"], work)
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 1 and err.startswith("promptd: ") and "invalid JSON" in err,
          "bad JSON context exits 1", repr((r.returncode, err)))

    r = run(promptd, ["template", "render", "missing.mustache", "--context", "ctx.json"], work)
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 1 and err.startswith("promptd: ") and "missing.mustache" in err,
          "unreadable template exits 1 naming the file", repr((r.returncode, err)))

    # A partial that includes itself is stopped, not followed until a crash.
    os.mkdir(os.path.join(work, "loop"))
    write(os.path.join(work, "loop", "me.mustache"), "x{{>me}}")
    write(os.path.join(work, "loop.mustache"), "{{>me}}")
    r = run(promptd, ["template", "render", "loop.mustache", "--context", "ctx.json",
                      "--partials", "loop"], work)
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 1 and r.stdout == b"" and "nested more than" in err,
          "recursive partial exits 1", repr((r.returncode, err)))

    # The template may come from standard input.
    r = subprocess.run([promptd, "template", "render", "-", "--context", "ctx.json"],
                       cwd=work, input=b"{{name}}!", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    check(r.returncode == 0 and r.stdout == b"Ada!", "template from stdin",
          repr((r.returncode, r.stdout, r.stderr)))


def main():
    promptd = os.environ.get("PROMPTD")
    shared = os.environ.get("PROMPTD_SHARED_DIR")
    if not promptd or not os.access(promptd, os.X_OK):
        print("PROMPTD must name the promptd binary (got %r)" % promptd)
        return 1
    promptd = os.path.abspath(promptd)
    spec_dir = os.path.join(shared or "", "conformance", "mustache")
    if not shared or not os.path.isdir(spec_dir):
        print("the Mustache spec folder is missing: %r (set PROMPTD_SHARED_DIR)" % spec_dir)
        return 1

    work = tempfile.mkdtemp(prefix="promptd-tpl-")
    try:
        spec_cases(promptd, spec_dir, work)
        escape_modes(promptd, work)
        usage_and_errors(promptd, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
