"""Shared helpers for the integration tests: run the real promptd binary
against a temporary directory, start and stop the daemon, read the store."""

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

PROMPTD = os.environ.get("PROMPTD", "promptd")
SOURCE_DIR = os.environ.get("PROMPTD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


# Lines a sanitizer report always holds. Under the sanitizer build a report
# exits 1, which a bad-input check expects too, so stderr is scanned as well.
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def free_port():
    """A loopback port nobody listens on right now (for a server to start
    on, or as a connection that is refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def merged_env(env):
    """os.environ with env's variables added (a None value removes one), or
    None (inherit) when env is empty."""
    if not env:
        return None
    full = dict(os.environ)
    for k, v in env.items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    return full


class Failure(Exception):
    pass


class Case:
    """A temporary directory with a database path, and a tally of checks."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="promptd-%s-" % name)
        self.db = os.path.join(self.dir, "promptd.db")
        self.passed = 0
        self.failed = 0
        self.daemons = []

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return p

    def run(self, *args, stdin=None, db=True, timeout=120, env=None):
        """env: variables added to (or, with value None, removed from) the
        command's environment."""
        cmd = [PROMPTD] + (["--db", self.db] if db else []) + list(args)
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout,
                           cwd=self.dir, env=merged_env(env))
        err = p.stderr.decode("utf-8", "replace")
        if any(m in err for m in SANITIZER_MARKS):
            self.check("no sanitizer report from promptd %s" % " ".join(map(str, args)), False,
                       err[-3000:])
        return p.returncode, p.stdout.decode("utf-8", "replace"), err

    def json(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            raise Failure("%s exited %d: %s" % (" ".join(args), rc, err.strip()))
        return json.loads(out)

    def check(self, what, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s %s" % (what, detail), flush=True)

    def start_daemon(self, *extra, log_name="daemon.log", env=None):
        """env: variables added to (or, with value None, removed from) the
        daemon's environment."""
        log = open(self.path(log_name), "ab")
        p = subprocess.Popen([PROMPTD, "--db", self.db, "serve"] + list(extra),
                             stdout=log, stderr=log, cwd=self.dir, env=merged_env(env))
        log.close()
        self.daemons.append(p)
        return p

    def stop_daemon(self, p, sig=signal.SIGTERM, timeout=60):
        if p.poll() is None:
            p.send_signal(sig)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failure("daemon did not stop within %d s" % timeout)

    def serving(self, p):
        """True once `promptd status` names p as the daemon serving the database."""
        rc, out, _ = self.run("status", "--json")
        return rc == 0 and json.loads(out)["daemon"]["pid"] == p.pid

    def listen_port(self, log_name="daemon.log", timeout=30):
        """The port a daemon started with --listen 127.0.0.1:0 bound, read
        from its log (no race with other tests for a free port)."""
        def port():
            try:
                with open(self.path(log_name), encoding="utf-8", errors="replace") as f:
                    m = re.search(r'msg="http server listening".* port=(\d+)', f.read())
            except OSError:
                return None
            return int(m.group(1)) if m else None
        return self.wait_for("the webhook server's port", port, timeout=timeout)

    def sql(self, query, args=()):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def wait_for(self, what, fn, timeout=60, interval=0.1):
        end = time.time() + timeout
        while time.time() < end:
            v = fn()
            if v:
                return v
            time.sleep(interval)
        raise Failure("timed out waiting for %s" % what)

    def finish(self):
        for p in self.daemons:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.failed == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("kept %s for inspection" % self.dir)
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


def main(name, body):
    c = Case(name)
    try:
        body(c)
    except Failure as e:
        c.failed += 1
        print("FAIL: %s" % e, flush=True)
        for log in ("daemon.log",):
            p = c.path(log)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    tail = f.read()[-4000:].decode("utf-8", "replace")
                print("--- tail of %s ---\n%s" % (log, tail))
    c.finish()
