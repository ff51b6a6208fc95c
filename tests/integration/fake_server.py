"""Runs tests/fake/fake_openai.py for an integration test: started on port 0
(the port is read from its `listening` line), controlled over HTTP through
its /_fake/* endpoints, stopped at the end.

    with FakeOpenAI(validate=True, key="sk-test") as fake:
        env = fake.env("sk-test")          # OPENAI_API_KEY, OPENAI_BASE_URL
        ...
        fake.requests()                    # recorded requests (list of dicts)
        fake.stats()                       # {total, by_status, by_fault, ...}
        fake.config(error_rate=0.3)        # change settings at run time
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

SOURCE_DIR = os.environ.get("PROMPTD_SOURCE_DIR",
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FAKE = os.path.join(SOURCE_DIR, "tests", "fake", "fake_openai.py")


class FakeOpenAI:
    def __init__(self, validate=False, key=None, record=None, args=(), log=None):
        cmd = [sys.executable, FAKE, "--port", "0"]
        if validate:
            cmd.append("--validate")
        if key is not None:
            cmd += ["--key", key]
        if record:
            cmd += ["--record", record]
        cmd += [str(a) for a in args]
        env = dict(os.environ)
        shared = os.environ.get("PROMPTD_SHARED_DIR")
        if shared:
            env["PROMPTD_SHARED_DIR"] = shared
        self.log = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, env=env)
        line = self._readline(20)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError("fake_openai.py did not start: %r" % line)
        host, _, port = line.split(" ", 1)[1].strip().rpartition(":")
        self.host, self.port = host, int(port)
        self.url = "http://%s:%d" % (self.host, self.port)
        self.base_url = self.url + "/v1"

    def _readline(self, timeout):
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()))
        t.daemon = True
        t.start()
        t.join(timeout)
        return out[0].decode("utf-8", "replace") if out else ""

    def env(self, key="sk-test"):
        """The environment the SDKs (and promptd's default provider) read."""
        return {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": self.base_url}

    def _call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def config(self, **changes):
        if changes:
            return self._call("POST", "/_fake/config", changes)
        return self._call("GET", "/_fake/config")

    def requests(self, since=0):
        return self._call("GET", "/_fake/requests?since=%d" % since if since else "/_fake/requests",
                          timeout=120)

    def stats(self):
        return self._call("GET", "/_fake/stats")

    def reset(self):
        return self._call("POST", "/_fake/reset", {})

    def stop(self):
        stop_process(self.proc)
        if self.log is not subprocess.DEVNULL:
            self.log.close()
            self.log = subprocess.DEVNULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def last_user(rec):
    """The last user message of a recorded request (its text), or ""."""
    body = rec.get("body")
    if not isinstance(body, dict):
        return ""
    users = [m.get("content") for m in body.get("messages") or []
             if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else ""


def first_user(rec):
    body = rec.get("body")
    if not isinstance(body, dict):
        return ""
    for m in body.get("messages") or []:
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def stop_process(proc):
    """SIGTERM, then SIGKILL after 10 s; closes its stdout pipe."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


def wait_until(what, fn, timeout=60, interval=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError("timed out waiting for %s" % what)


FAKE_SLACK = os.path.join(SOURCE_DIR, "tests", "fake", "fake_slack.py")


class FakeSlack:
    """Runs tests/fake/fake_slack.py on port 0; its stdout (one line per
    request) is copied to a log file so the pipe never fills.

        slack = FakeSlack(["--webhook", "/services/T/B/X"], log=path)
        slack.url                      # http://127.0.0.1:PORT
        slack.requests()               # recorded requests (list of dicts)
        slack.faults({"kind": "rate_limit", "count": 1})
    """

    def __init__(self, args=(), log=None):
        cmd = [sys.executable, FAKE_SLACK, "--port", "0"] + [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError("fake_slack.py did not start: %r" % line)
        self.url = "http://" + line.split(" ", 1)[1].strip()
        self.log = open(log, "ab") if log else None
        self.pump = threading.Thread(target=self._drain, daemon=True)
        self.pump.start()

    def _drain(self):
        for line in self.proc.stdout:
            if self.log:
                self.log.write(line)
                self.log.flush()

    _call = FakeOpenAI._call

    def requests(self):
        return self._call("GET", "/_fake/requests")

    def stats(self):
        return self._call("GET", "/_fake/stats")

    def faults(self, *faults):
        return self._call("POST", "/_fake/faults", {"faults": list(faults)})

    def stop(self):
        stop_process(self.proc)
        if self.log:
            self.log.close()
            self.log = None


FAKE_GOOGLE = os.path.join(SOURCE_DIR, "tests", "fake", "fake_google.py")


class FakeGoogle:
    """tests/fake/fake_google.py with a fresh service-account key: .url, .creds
    (the key JSON's path), .call(method, path, body) for the admin API."""

    EMAIL = "promptd-test@example-project.iam.gserviceaccount.com"

    def __init__(self, c, sheet=None):
        self.sheet = sheet
        key = c.path("sa-key.pem")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True,
                       capture_output=True, timeout=60)
        mod = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                             capture_output=True, timeout=60).stdout.decode().strip()
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        self.proc = subprocess.Popen([py, FAKE_GOOGLE, "--port", "0", "--client-email", self.EMAIL,
                                      "--public-key-n", mod.split("=", 1)[-1]],
                                     stdout=subprocess.PIPE,
                                     stderr=open(c.path("fake-google.log"), "ab"))
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening "):
            raise RuntimeError("fake_google.py did not start: %r" % line)
        self.url = "http://" + line.split(" ", 1)[1].strip()
        with open(key, encoding="ascii") as f:
            pem = f.read()
        self.creds = c.write("sa.json", json.dumps({
            "type": "service_account", "project_id": "example-project",
            "private_key_id": "k1", "private_key": pem, "client_email": self.EMAIL,
            "client_id": "1", "token_uri": self.url + "/token"}))

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def rows(self):
        return self.rows_of("Leads")

    def rows_of(self, title):
        return self.call("GET", "/_fake/sheets/" + self.sheet)["sheets"][title]

    def stop(self):
        stop_process(self.proc)
