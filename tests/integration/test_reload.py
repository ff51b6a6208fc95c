#!/usr/bin/env python3
"""SIGHUP reload under load: events stream in the whole time through
`promptd emit` (runs made by that process) and through webhooks (runs made
by the daemon's own intake) while the daemon reloads

  (a) a changed recipe, with several SIGHUPs in quick succession: every
      event gets exactly one run, runs created before the reload have
      version 1 and runs created after it version 2, and each run did what
      its own version says (also runs still queued at the reload and runs
      retried after it);
  (b) a broken recipe file: refused with the file and position logged, the
      version unchanged, the daemon still serving;
  (c) a removed recipe file: no new runs for it, its queued runs finish;
  (d) a broken configuration: refused with FILE:LINE:COL, the old one kept
      (log level and the provider's base_url unchanged);
  (e) a changed configuration: applied (log level warn silences the info
      lines, the provider's base_url moves to a second fake OpenAI and the
      next GPT steps go there).

Then SIGTERM: exit 0, no sanitizer report.  Needs $PROMPTD."""

import datetime
import http.client
import json
import os
import re
import signal
import threading
import time

from fake_server import FakeOpenAI
from promptd_test import SANITIZER_MARKS, Failure, main

KEY = "sk-test-reload-0123456789"

CONFIG = """\
engine:
  concurrency: %(conc)d
  retry: { max_attempts: 10, base_ms: 20, cap_ms: 200 }
log: { level: %(level)s }
providers:
  p: { base_url: "%(base)s", api_key: "env:OPENAI_API_KEY", timeout_s: 10 }
%(extra)s"""

# The marker in the CSV row is part of the definition: a run that wrote
# "v2" ran version 2's steps.
LOAD = """\
name: %(name)s
trigger: %(trigger)s
steps:
  - id: q
    gpt:
      provider: p
      model: gpt-4o-mini
      system: "Reload test %(marker)s."
      prompt: "event {{%(n)s}}"
  - id: row
    csvfile: { path: "%(csv)s", header: [n, marker, version], row: ["{{%(n)s}}", "%(marker)s", "{{run.recipe_version}}"] }
"""

GONE = """\
name: gone
trigger: { event: { source: gone } }
steps:
  - id: q
    gpt:
      provider: p
      model: gpt-4o-mini
      system: "Reload test gone."
      prompt: "gone {{event.n}}"
  - id: row
    csvfile: { path: "%(csv)s", header: [n], row: ["{{event.n}}"] }
"""


def emit_recipe(marker, csv):
    return LOAD % {"name": "loadr", "trigger": "{ event: { source: load } }",
                   "marker": marker, "csv": csv, "n": "event.n"}


def hook_recipe(marker, csv):
    return LOAD % {"name": "hook", "trigger": "{ webhook: { path: /hooks/load } }",
                   "marker": marker, "csv": csv, "n": "event.body.n"}


class Load:
    """Emits events to source `load` from a thread until stopped (or, with
    port, posts them to the webhook /hooks/load); records each
    acknowledgement with its time."""

    def __init__(self, c, port=None):
        self.c = c
        self.port = port
        self.acks = []       # (n, event_id, runs, t_sent, t_acked)
        self.errors = []
        self.stop_flag = threading.Event()
        self.n = 0
        self.t = threading.Thread(target=self.loop, daemon=True)

    def post(self, n):
        t0 = time.time()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/hooks/load", body=json.dumps({"n": n}),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        if r.status != 202:
            self.errors.append("webhook %d: %d %r" % (n, r.status, data[:200]))
            return None
        j = json.loads(data)
        return (n, j["event_id"], j["runs"], t0, time.time())

    def emit(self, source, n):
        t0 = time.time()
        rc, out, err = self.c.run("emit", "--source", source, "--event", "-", "--json",
                                  stdin=json.dumps({"n": n}).encode())
        if rc != 0:
            self.errors.append("emit %s %d: rc %d %s" % (source, n, rc, err.strip()))
            return None
        j = json.loads(out)
        return (n, j["event_id"], j["runs"], t0, time.time())

    def loop(self):
        while not self.stop_flag.is_set():
            self.n += 1
            a = self.post(self.n) if self.port else self.emit("load", self.n)
            if a:
                self.acks.append(a)
            if self.port:
                time.sleep(0.05)  # about the rate the runs drain at

    def start(self):
        self.t.start()

    def stop(self):
        self.stop_flag.set()
        self.t.join(120)


def ts(line):
    m = re.search(r'ts=(\S+)Z', line)
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def log_text(c):
    with open(c.path("daemon.log"), encoding="utf-8", errors="replace") as f:
        return f.read()


def log_lines_after(c, pos, pattern):
    return [l for l in log_text(c)[pos:].splitlines() if re.search(pattern, l)]


def wait_log(c, pos, pattern, what, timeout=60):
    return c.wait_for(what, lambda: log_lines_after(c, pos, pattern), timeout=timeout)


def current_version(c, name):
    rows = c.sql("SELECT current_version, removed FROM recipes WHERE name = ?", (name,))
    return rows[0] if rows else None


def csv_rows(path):
    import csv
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def terminal(c):
    rows = c.sql("SELECT count(*) FROM runs WHERE status NOT IN ('succeeded', 'failed')")
    return rows[0][0] == 0


def check_versions(c, what, acks, csv_path, t_hup, t_reloaded):
    """Exactly one run per acknowledged event, one CSV row each, every row
    written by the version its run names, versions by creation time."""
    runs = {}
    for rid, ev, recipe, version, status in c.sql(
            "SELECT id, event_id, recipe, recipe_version, status FROM runs"):
        runs.setdefault(ev, []).append((rid, recipe, version, status))
    one_run = all(len(runs.get(a[1], [])) == 1 and a[2] == 1 for a in acks)
    c.check("%s: every event has exactly one run" % what, one_run,
            [(a, runs.get(a[1])) for a in acks if len(runs.get(a[1], [])) != 1][:5])
    c.check("%s: every run succeeded" % what,
            all(r[3] == "succeeded" for a in acks for r in runs.get(a[1], [])))
    by_n = {}
    for n, marker, version in csv_rows(csv_path):
        by_n.setdefault(int(n), []).append((marker, int(version)))
    c.check("%s: one CSV row per event" % what, sorted(by_n) == sorted(a[0] for a in acks)
            and all(len(v) == 1 for v in by_n.values()), (len(by_n), len(acks)))
    c.check("%s: each run did what its own version says" % what,
            all(m == "v%d" % v for vs in by_n.values() for m, v in vs),
            [(n, vs) for n, vs in by_n.items() if any(m != "v%d" % v for m, v in vs)][:5])
    before = [a for a in acks if a[4] < t_hup]
    after = [a for a in acks if a[3] > t_reloaded]
    ver = {a[1]: runs[a[1]][0][2] for a in acks if a[1] in runs}
    c.check("%s: runs created before the reload have version 1" % what,
            before and all(ver.get(a[1]) == 1 for a in before),
            [(a, ver.get(a[1])) for a in before if ver.get(a[1]) != 1][:5])
    c.check("%s: runs created after the reload have version 2" % what,
            after and all(ver.get(a[1]) == 2 for a in after),
            [(a, ver.get(a[1])) for a in after if ver.get(a[1]) != 2][:5])
    print("%s: %d events, %d before the reload, %d after, versions %s" % (
        what, len(acks), len(before), len(after),
        {v: sum(1 for x in ver.values() if x == v) for v in set(ver.values())}))


def body(c):
    fa = FakeOpenAI(validate=True, key=KEY, log=c.path("fake-a.log"))
    fb = FakeOpenAI(validate=True, key=KEY, log=c.path("fake-b.log"))
    try:
        run(c, fa, fb)
    finally:
        fa.stop()
        fb.stop()


def write_config(c, name, **kw):
    v = {"conc": 2, "level": "info", "base": "", "extra": ""}
    v.update(kw)
    return c.write(name, CONFIG % v)


def run(c, fa, fb):
    # Slow replies and a few 5xx: runs queue behind concurrency 2 and some
    # are retried, so the reload finds runs queued, in flight and retrying.
    fa.config(latency_ms=40, error_rate=0.1)
    fb.config(latency_ms=10)
    load_csv, hook_csv, gone_csv = c.path("load.csv"), c.path("hook.csv"), c.path("gone.csv")
    cfg = write_config(c, "promptd.yaml", base=fa.base_url)
    rdir = c.path("recipes")
    c.write("recipes/loadr.yaml", emit_recipe("v1", load_csv))
    c.write("recipes/hook.yaml", hook_recipe("v1", hook_csv))
    c.write("recipes/gone.yaml", GONE % {"csv": gone_csv})
    rc, out, err = c.run("serve", "--help")
    c.check("serve --help documents SIGHUP", rc == 0 and "SIGHUP" in out and "reload" in out, out)

    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": None}
    d = c.start_daemon("--config", cfg, "--recipes", rdir, "--listen", "127.0.0.1:0", env=env)
    c.wait_for("the daemon serving", lambda: c.serving(d))
    load, hooks = Load(c), Load(c, c.listen_port())
    load.start()
    hooks.start()
    c.wait_for("load under way", lambda: len(load.acks) >= 10 and len(hooks.acks) >= 10)

    # ---- (a) a changed recipe, several SIGHUPs at once ----
    gone_before = [load.emit("gone", 1000 + i) for i in range(6)]
    # A burst, so runs of version 1 are still queued when version 2 comes.
    burst = Load(c, hooks.port)
    burst.acks = [burst.post(100000 + i) for i in range(30)]
    pos = len(log_text(c))
    c.write("recipes/loadr.yaml", emit_recipe("v2", load_csv))
    c.write("recipes/hook.yaml", hook_recipe("v2", hook_csv))
    acked_before = len(load.acks)
    t_hup = time.time()
    for _ in range(5):
        d.send_signal(signal.SIGHUP)
        time.sleep(0.01)
    wait_log(c, pos, r'msg="recipe reloaded" recipe=loadr version=2', "loadr version 2")
    line = wait_log(c, pos, r'msg="recipe reloaded" recipe=hook version=2', "hook version 2")[0]
    reload_ms = int(ts(line) * 1000)
    c.wait_for("the reloads done", lambda: not log_lines_after(c, pos, r'msg="reloading"')
               or len(log_lines_after(c, pos, r'msg="reload done"')) ==
               len(log_lines_after(c, pos, r'msg="reloading"')))
    t_reloaded = time.time()
    c.check("one new version for several SIGHUPs",
            len(log_lines_after(c, pos, r'msg="recipe reloaded"')) == 2,
            log_lines_after(c, pos, r'recipe'))
    c.check("daemon alive after quick SIGHUPs", d.poll() is None)
    # The log line comes just before the commit that stores it.
    c.wait_for("the store's loadr at version 2", lambda: current_version(c, "loadr") == (2, 0))
    c.wait_for("load after the reload", lambda: len(load.acks) >= acked_before + 10)

    # ---- (b) a broken recipe file ----
    pos = len(log_text(c))
    c.write("recipes/loadr.yaml", emit_recipe("v3", load_csv) + "  - id: [oops\n")
    d.send_signal(signal.SIGHUP)
    refused = wait_log(c, pos, r'msg="reload refused" part=recipes', "the broken recipe refused")
    c.check("refusal names the file and position",
            re.search(r'loadr\.yaml:\d+:\d+', refused[0]) is not None, refused[0])
    c.check("version unchanged after the broken recipe", current_version(c, "loadr") == (2, 0),
            current_version(c, "loadr"))
    n_before = len(load.acks)
    c.wait_for("still serving after the broken recipe", lambda: len(load.acks) >= n_before + 5)
    c.check("no emit failed", not load.errors, load.errors[:3])
    # Back to version 2's text: unchanged, no new version.
    c.write("recipes/loadr.yaml", emit_recipe("v2", load_csv))

    # ---- (c) a removed recipe file ----
    gone_queued = [load.emit("gone", 2000 + i) for i in range(6)]
    pos = len(log_text(c))
    os.unlink(c.path("recipes", "gone.yaml"))
    d.send_signal(signal.SIGHUP)
    wait_log(c, pos, r'msg="recipe removed" recipe=gone version=1', "gone removed")
    c.wait_for("gone marked removed", lambda: current_version(c, "gone") == (1, 1))
    c.check("loadr not touched by the removal",
            not log_lines_after(c, pos, r'msg="recipe (reloaded|removed)" recipe=loadr'))
    gone_after = [load.emit("gone", 3000 + i) for i in range(3)]
    c.check("no run for events after the removal",
            all(a and a[2] == 0 for a in gone_after), gone_after)

    # ---- (d) a broken configuration ----
    fb_count0 = fb.stats()["total"]
    pos = len(log_text(c))
    write_config(c, "promptd.yaml", base=fb.base_url, level="warn",
                 extra="engine_typo: { concurrency: 3 }\n")
    d.send_signal(signal.SIGHUP)
    refused = wait_log(c, pos, r'msg="reload refused" part=config', "the broken config refused")
    c.check("config refusal names FILE:LINE:COL",
            re.search(r'promptd\.yaml:\d+:\d+', refused[0]) is not None, refused[0])
    n_now = len(load.acks)
    c.wait_for("runs after the broken config",
               lambda: len(log_lines_after(c, pos, r'msg="run succeeded" .*recipe=loadr')) >= 5)
    c.wait_for("load after the broken config", lambda: len(load.acks) >= n_now + 5)
    c.check("old provider kept after the broken config", fb.stats()["total"] == fb_count0,
            fb.stats())

    # ---- (e) a changed configuration ----
    pos = len(log_text(c))
    write_config(c, "promptd.yaml", base=fb.base_url, level="warn", conc=3)
    d.send_signal(signal.SIGHUP)
    applied = wait_log(c, pos, r'msg="config reloaded"', "the new config applied")
    c.check("config reloaded names what changed",
            "engine.concurrency" in applied[0] and "log.level" in applied[0]
            and "providers" in applied[0], applied[0])
    c.wait_for("GPT steps at the new base_url", lambda: fb.stats()["total"] >= 10)
    succeeded0 = c.sql("SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0]
    c.wait_for("runs still succeeding", lambda: c.sql(
        "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] >= succeeded0 + 10)
    after_applied = log_text(c)[pos:].split(applied[0], 1)[1]
    late = [l for l in after_applied.splitlines() if "level=info" in l]
    c.check("log level warn applied: no info line after `config reloaded`", not late, late[:5])

    load.stop()
    hooks.stop()
    c.check("no emit failed", not load.errors, load.errors[:3])
    c.check("no webhook failed", not hooks.errors, hooks.errors[:3])
    c.wait_for("every run finished", lambda: terminal(c), timeout=120)
    c.check("burst acknowledged", all(burst.acks), burst.errors)
    hook_acks = [a for a in hooks.acks + burst.acks if a]
    for what, acks, path in (("emit", load.acks, load_csv), ("webhook", hook_acks, hook_csv)):
        check_versions(c, what, acks, path, t_hup, t_reloaded)

    # Runs of version 1 that were still waiting when version 2 came.
    v1_late = c.sql("SELECT count(*) FROM runs r JOIN steps s ON s.run_id = r.id"
                    " WHERE r.recipe_version = 1 AND s.position = 0"
                    " AND s.started_at > ?", (reload_ms,))[0][0]
    c.check("some version-1 runs started after the reload (queued at it)", v1_late > 0, v1_late)
    print("version-1 runs started after the reload: %d" % v1_late)
    retried = c.sql("SELECT count(*) FROM runs r JOIN steps s ON s.run_id = r.id"
                    " WHERE s.position = 0 AND s.attempts > 1")[0][0]
    c.check("some runs were retried", retried > 0, retried)
    runs = {}
    for rid, ev, recipe, version, status in c.sql(
            "SELECT id, event_id, recipe, recipe_version, status FROM runs"):
        runs.setdefault(ev, []).append((rid, recipe, version, status))
    gone_rows = sorted(int(r[0]) for r in csv_rows(gone_csv))
    c.check("gone's runs made before the removal all finished",
            gone_rows == sorted(a[0] for a in gone_before + gone_queued if a), gone_rows)
    c.check("gone's runs have version 1", all(
        r[2] == 1 for a in gone_before + gone_queued for r in runs.get(a[1], [])))

    pos = len(log_text(c))
    rc = c.stop_daemon(d)
    c.check("daemon exits 0 on SIGTERM", rc == 0, rc)
    text = log_text(c)
    c.check("no sanitizer report", not any(m in text for m in SANITIZER_MARKS),
            text[-3000:])


if __name__ == "__main__":
    main("reload", body)
