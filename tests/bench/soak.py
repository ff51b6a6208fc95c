#!/usr/bin/env python3
"""soak: promptd under steady load for minutes, with retention in seconds.

    python3 tests/bench/soak.py [--build DIR] [--minutes 10] [--rate 200]
                                [--retention 30] [--sample 5]

Starts `promptd serve` (DIR/promptd, default build-rel, a Release build; or
$PROMPTD) on a fresh database in /var/tmp with webhook recipes of two cheap
steps (log, then a CSV row; eight recipes on one path, each taking the
events of its shard, since csvfile writes one row per file at a time) and
engine.concurrency 64, and posts RATE events a second over four
keep-alive connections for MINUTES.  Retention keeps succeeded runs
RETENTION seconds (failed ones twice that) and prunes every 5 s.  Every
SAMPLE seconds it records the daemon's RSS (VmRSS), open fds
(/proc/PID/fd), and the size of the database and its WAL.

At the end it prints medians, first- and last-minute RSS, the largest
database, fd counts, request latency and what retention logged, and exits
1 when, after warm-up (--warmup; default the first minute, or twice the
retention plus 10 s when longer):
  - the last minute's median RSS is more than 10 % above the median of the
    first minute after warm-up (half the rest each, when less than two
    minutes are left),
  - the database (file + WAL) is not bounded: the largest size in the last
    third of the samples is more than 1.2 x the largest in the middle third,
  - open fds grow: the last third's smallest count exceeds the middle
    third's smallest (the largest counts include short-lived fds),
  - fewer than 95 % of the intended events were acknowledged, or any
    request failed, or the runs fell behind (more than 10 s of events
    waiting at the last sample), or the daemon did not exit 0 on SIGTERM.
Exit 2: bad arguments or no binary."""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# csvfile writes one row at a time per file (its exactly-once rule: a row
# is durable before the next begins), so the events are spread over SHARDS
# recipes by their `shard` field, each with its own file.
SHARDS = 8
RECIPE = """\
name: soak-%(k)d
trigger: { webhook: { path: /hooks/soak, dedupe: body:id } }
when: { path: event.body.shard, eq: %(k)d }
steps:
  - id: note
    log: { message: "soak {{event.body.id}}" }
  - id: row
    csvfile: { path: "%(dir)s/soak-%(k)d.csv", header: [id, kind],
               row: ["{{event.body.id}}", "{{event.body.kind}}"] }
"""

CONFIG = """\
http: { listen: "127.0.0.1:0" }
retention: { succeeded: %ds, failed: %ds, interval: 5s, batch: 500 }
engine: { shutdown_timeout_s: 10, concurrency: %d }
"""


class Sender(threading.Thread):
    """Posts events at a fixed rate on one keep-alive connection; a late
    request is sent at once (the schedule does not slip)."""

    def __init__(self, port, rate, start, end, prefix):
        super().__init__(daemon=True)
        self.port, self.rate, self.start_at, self.end = port, rate, start, end
        self.prefix = prefix
        self.acked, self.errors, self.lat = 0, [], []  # lat: (time, seconds)

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while True:
            due = self.start_at + i / self.rate
            if due >= self.end:
                break
            now = time.time()
            if due > now:
                time.sleep(due - now)
            body = json.dumps({"id": "%s-%d" % (self.prefix, i), "kind": "soak",
                               "shard": i % SHARDS, "text": "x" * 200})
            t0 = time.time()
            try:
                conn.request("POST", "/hooks/soak", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 202:
                    self.acked += 1
                else:
                    self.errors.append("HTTP %d" % r.status)
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(str(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.lat.append((t0, time.time() - t0))
            i += 1
        conn.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def pages(db):
    """(page_count, freelist_count, runs waiting to start), read in one short
    read transaction (the count walks the partial index runs_runnable)."""
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return (con.execute("PRAGMA page_count").fetchone()[0],
                    con.execute("PRAGMA freelist_count").fetchone()[0],
                    con.execute("SELECT count(*) FROM runs WHERE status = 'queued'"
                                " OR status = 'retrying' OR status = 'budget'").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return (0, 0, 0)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else 0


def wait_port(log, proc, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return None
        with open(log, encoding="utf-8", errors="replace") as f:
            m = re.search(r'msg="http server listening".* port=(\d+)', f.read())
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-rel", help="build directory (default build-rel)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=200.0, help="events per second")
    ap.add_argument("--retention", type=int, default=30, help="seconds succeeded runs are kept")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=0,
                    help="seconds before RSS, size and fds are judged (default: 60, or twice "
                         "the retention plus 10 when longer)")
    ap.add_argument("--concurrency", type=int, default=64,
                    help="engine.concurrency (default 64: each step waits for a commit, so "
                         "runs in flight, not CPU, bound the run rate)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    promptd = os.environ.get("PROMPTD") or os.path.join(a.build, "promptd")
    if not os.access(promptd, os.X_OK):
        print("soak: no %s (build first, or set $PROMPTD)" % promptd, file=sys.stderr)
        return 2
    if a.minutes <= 0 or a.rate <= 0 or a.retention < 1 or a.sample <= 0:
        print("soak: minutes, rate, retention and sample must be positive", file=sys.stderr)
        return 2
    duration = a.minutes * 60
    warmup = a.warmup or max(60.0, 2 * a.retention + 10)
    if duration < warmup + 30:
        print("soak: --minutes must leave at least 30 s after the %.0f s warm-up" % warmup,
              file=sys.stderr)
        return 2
    # RSS is compared over the first and last windows after warm-up: a
    # minute each, or halves of a shorter remainder.
    window = min(60.0, (duration - warmup) / 2)

    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    d = tempfile.mkdtemp(prefix="promptd-soak-", dir=base)
    db = os.path.join(d, "soak.db")
    log = os.path.join(d, "daemon.log")
    os.mkdir(os.path.join(d, "recipes"))
    for k in range(SHARDS):
        with open(os.path.join(d, "recipes", "soak-%d.yaml" % k), "w") as f:
            f.write(RECIPE % {"k": k, "dir": d})
    with open(os.path.join(d, "config.yaml"), "w") as f:
        f.write(CONFIG % (a.retention, 2 * a.retention, a.concurrency))
    rc = subprocess.run([promptd, "--db", db, "recipe", "import", os.path.join(d, "recipes")],
                        capture_output=True, text=True)
    if rc.returncode:
        print("soak: import failed: %s" % rc.stderr, file=sys.stderr)
        return 1
    # Under AddressSanitizer freed memory is held in a quarantine (256 MiB by
    # default) whose filling would read as RSS growth: keep it small.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), "quarantine_size_mb=16")
                                   if x)
    with open(log, "wb") as lf:
        proc = subprocess.Popen([promptd, "--db", db, "--config", os.path.join(d, "config.yaml"),
                                 "serve"], stdout=lf, stderr=lf, env=env)
    failures = []
    try:
        port = wait_port(log, proc)
        if not port:
            print("soak: the daemon did not start; see %s" % log, file=sys.stderr)
            a.keep = True
            return 1
        print("soak: %s, %.0f events/s for %.1f min, retention %d s (warm-up %.0f s), in %s"
              % (promptd, a.rate, a.minutes, a.retention, warmup, d), flush=True)
        t0 = time.time() + 0.5
        end = t0 + duration
        senders = [Sender(port, a.rate / 4, t0 + k / a.rate, end, "c%d" % k) for k in range(4)]
        for s in senders:
            s.start()
        samples = []  # (t, rss KiB, db+wal bytes, wal bytes, fds)
        backlog = []  # runs waiting to start, once a minute
        next_at = t0
        while time.time() < end:
            next_at += a.sample
            time.sleep(max(0.0, next_at - time.time()))
            if proc.poll() is not None:
                failures.append("the daemon exited early (%s)" % proc.returncode)
                break
            wal = size(db + "-wal")
            samples.append((time.time() - t0, rss_kib(proc.pid), size(db) + wal, wal,
                            len(os.listdir("/proc/%d/fd" % proc.pid))))
            s = samples[-1]
            if len(samples) % max(1, int(60 / a.sample)) == 0:
                npages, free, waiting = pages(db)
                backlog.append(waiting)
                print("  t=%4.0fs rss=%6.1f MiB db+wal=%6.1f MiB (wal %5.1f; pages %d, %d free) "
                      "fds=%d acked=%d waiting=%d"
                      % (s[0], s[1] / 1024, s[2] / 2**20, s[3] / 2**20, npages, free, s[4],
                         sum(x.acked for x in senders), waiting), flush=True)
        for s in senders:
            s.join(60)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed after 60 s"
        if code != 0:
            failures.append("the daemon exited %s on SIGTERM" % code)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    acked = sum(s.acked for s in senders)
    errors = [e for s in senders for e in s.errors]
    lat = [x for s in senders for x in s.lat]
    intended = int(a.rate * duration)
    after = [s for s in samples if s[0] >= warmup]
    first_min = [s[1] for s in samples if s[0] < 60]
    warm_min = [s[1] for s in after if s[0] < warmup + window]
    last_min = [s[1] for s in samples if s[0] >= duration - window]
    third = max(1, len(after) // 3)
    middle, last = after[third:2 * third], after[2 * third:]
    med = lambda v: statistics.median(v) if v else 0
    mib = lambda b: b / 2**20
    with open(log, encoding="utf-8", errors="replace") as f:
        passes = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in f
                  if 'msg="retention pass"' in l]
    lat_first = [x[1] for x in lat if x[0] - t0 < 60]
    lat_last = [x[1] for x in lat if x[0] - t0 >= duration - 60]

    print("\nevents:   %d acknowledged of %d intended (%.1f/s), %d errors"
          % (acked, intended, acked / duration, len(errors)))
    print("latency:  first minute p50 %.1f ms p99 %.1f ms; last minute p50 %.1f ms p99 %.1f ms"
          % (1000 * pct(lat_first, .5), 1000 * pct(lat_first, .99), 1000 * pct(lat_last, .5),
             1000 * pct(lat_last, .99)))
    print("RSS:      median %.1f MiB; first minute %.1f; after warm-up: first %.0f s %.1f, "
          "last %.0f s %.1f MiB" % (med([s[1] for s in samples]) / 1024, med(first_min) / 1024,
                                    window, med(warm_min) / 1024, window, med(last_min) / 1024))
    print("database: max %.1f MiB (file + WAL); median %.1f; max WAL %.1f MiB; "
          "middle-third max %.1f, last-third max %.1f"
          % (mib(max((s[2] for s in samples), default=0)), mib(med([s[2] for s in samples])),
             mib(max((s[3] for s in samples), default=0)),
             mib(max((s[2] for s in middle), default=0)), mib(max((s[2] for s in last), default=0))))
    print("fds:      first %d, median %d, max %d; middle third %d-%d, last third %d-%d"
          % (samples[0][4] if samples else 0, med([s[4] for s in samples]),
             max((s[4] for s in samples), default=0), min((s[4] for s in middle), default=0),
             max((s[4] for s in middle), default=0), min((s[4] for s in last), default=0),
             max((s[4] for s in last), default=0)))
    print("pruning:  %d passes logged, %d runs, %d events, %d steps; busiest pass %.1f ms"
          % (len(passes), sum(int(p.get("runs", 0)) for p in passes),
             sum(int(p.get("events", 0)) for p in passes),
             sum(int(p.get("steps", 0)) for p in passes),
             max((float(p.get("busy_ms", 0)) for p in passes), default=0)))

    if errors:
        failures.append("%d requests failed (first: %s)" % (len(errors), errors[0]))
    if acked < 0.95 * intended:
        failures.append("only %d of %d events acknowledged" % (acked, intended))
    if len(after) < 6:
        failures.append("too few samples after warm-up")
    else:
        if med(last_min) > 1.10 * med(warm_min):
            failures.append("RSS grew: %.1f -> %.1f MiB"
                            % (med(warm_min) / 1024, med(last_min) / 1024))
        if max(s[2] for s in last) > 1.2 * max(s[2] for s in middle):
            failures.append("database size not bounded: %.1f -> %.1f MiB"
                            % (mib(max(s[2] for s in middle)), mib(max(s[2] for s in last))))
        # A leaked fd stays: even the quietest moment has more.  (The largest
        # counts include short-lived ones: connections, a checkpoint's.)
        if min(s[4] for s in last) > min(s[4] for s in middle):
            failures.append("open fds grew: at least %d in the middle third, %d in the last"
                            % (min(s[4] for s in middle), min(s[4] for s in last)))
    if backlog and backlog[-1] > a.rate * 10:
        failures.append("runs do not keep up: %d waiting at the end" % backlog[-1])
    if not passes:
        failures.append("no retention pass deleted anything")
    for f in failures:
        print("FAIL: %s" % f)
    if failures or a.keep:
        print("kept %s" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)
    print("soak: %s" % ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
