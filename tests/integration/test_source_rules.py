"""Rules a reviewer should not have to check by eye: no banned C functions
(unbounded or unsafe), and SQL only in the store module (src/core/store*)."""

import os
import re
import sys

SRC = os.path.join(os.environ.get("PROMPTD_SOURCE_DIR", "."), "src")

BANNED = re.compile(r"\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|atoi|atol|atof|gets|"
                    r"system|tmpnam|mktemp)\s*\(")
# Words that only a SQL statement would put inside a C string.
SQL = re.compile(r'"[^"\n]*\b(SELECT\s+\S+\s+FROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|'
                 r'CREATE\s+TABLE|PRAGMA\s+\w+)', re.IGNORECASE)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


passed = failed = 0
for root, _, files in os.walk(SRC):
    for name in sorted(files):
        if not name.endswith((".c", ".h")):
            continue
        path = os.path.join(root, name)
        rel = os.path.relpath(path, SRC)
        with open(path, encoding="utf-8") as f:
            code = strip_comments(f.read())
        problems = []
        for n, line in enumerate(code.split("\n"), 1):
            m = BANNED.search(line)
            if m:
                problems.append("%s:%d: banned function %s()" % (rel, n, m.group(1)))
            if not rel.startswith("core/store") and SQL.search(line):
                problems.append("%s:%d: SQL outside the store module" % (rel, n))
        for p in problems:
            print("FAIL:", p)
        if problems:
            failed += 1
        else:
            passed += 1

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or not passed else 0)
