#!/usr/bin/env python3
"""`promptd serve` speaking systemd's notify protocol to a NOTIFY_SOCKET this
test owns (a unix datagram socket), and socket activation:

- READY=1 arrives only once the webhook listener is bound: a connection
  made the moment READY=1 arrives is accepted and answered, and no request
  sent while the daemon was starting was answered before READY=1;
- STATUS= lines with the queue depth every few seconds;
- WATCHDOG=1 every WATCHDOG_USEC/2; the test hook (PROMPTD_TEST_HOOKS=1,
  SIGUSR2) blocks the loop and the pings stop for the stall, then resume;
- STOPPING=1 at SIGTERM, exit 0;
- a listening socket passed as fd 3 (LISTEN_FDS=1, LISTEN_PID) serves
  webhooks though no recipe had a webhook at start; anything else is
  refused at start.

Needs $PROMPTD (the binary)."""

import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

from promptd_test import PROMPTD, SANITIZER_MARKS, Failure, free_port, main

HOOK = """\
name: hook
trigger: { webhook: { path: /hooks/n } }
steps:
  - id: note
    log: { message: "got {{event.body.n}}" }
"""

WATCHDOG_USEC = 1000000  # pings expected every 0.5 s
STALL_S = 2.5


# The kernel stamps each datagram as it is queued (wall clock), so the order
# of a notification and an HTTP answer does not depend on which of this
# test's threads wakes first.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class Notifications:
    """Collects what the daemon sends to NOTIFY_SOCKET with the kernel's
    arrival times (time.time() scale)."""

    def __init__(self, path, on_message=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.2)
        self.path = path
        self.on_message = on_message
        self.messages = []  # (arrival time, {key: value})
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.done:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            t = time.time()
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    t = sec + nsec / 1e9
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            if self.on_message:
                self.on_message(t, fields)
            with self.lock:
                self.messages.append((t, fields))

    def times(self, key):
        with self.lock:
            return [t for t, f in self.messages if key in f]

    def values(self, key):
        with self.lock:
            return [f[key] for _, f in self.messages if key in f]

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


def post(port, path, body, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def spawn(c, db, args, env, log_name, prefix="", pass_fds=()):
    """Starts promptd through sh so that variables naming the child's own pid
    (WATCHDOG_PID, LISTEN_PID) can be set to $$ before exec."""
    full = dict(os.environ)
    full.update(env)
    cmd = prefix + 'bin="$0" db="$1"; shift; exec "$bin" --db "$db" serve "$@"'
    log = open(c.path(log_name), "ab")
    p = subprocess.Popen(["sh", "-c", cmd, PROMPTD, db] + args, stdout=log, stderr=log,
                         cwd=c.dir, env=full, pass_fds=pass_fds)
    log.close()
    c.daemons.append(p)
    return p


def log_text(c, name):
    with open(c.path(name), encoding="utf-8", errors="replace") as f:
        return f.read()


def check_clean_log(c, name):
    text = log_text(c, name)
    c.check("no sanitizer report in %s" % name, not any(m in text for m in SANITIZER_MARKS),
            text[-3000:])


def intervals(ts):
    return [b - a for a, b in zip(ts, ts[1:])]


def notify_and_watchdog(c):
    c.write("recipes/hook.yaml", HOOK)
    port = free_port()
    ready = threading.Event()
    at_ready = {}

    def on_message(t, fields):
        # Connect the moment READY=1 arrives: the listener must be bound.
        if "READY" in fields and not ready.is_set():
            try:
                at_ready["status"] = post(port, "/hooks/n", {"n": 1})[0]
            except OSError as e:
                at_ready["error"] = str(e)
            ready.set()

    n = Notifications(c.path("notify.sock"), on_message)
    answers = []  # (time the answer was read, status) for requests sent while starting
    stop_probe = threading.Event()

    def probe():
        while not stop_probe.is_set() and not ready.is_set():
            try:
                st = post(port, "/hooks/n", {"n": 0}, timeout=30)[0]
                answers.append((time.time(), st))
            except OSError:
                time.sleep(0.005)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    env = {"NOTIFY_SOCKET": c.path("notify.sock"), "WATCHDOG_USEC": str(WATCHDOG_USEC),
           "PROMPTD_TEST_HOOKS": "1", "PROMPTD_TEST_STALL_S": str(STALL_S)}
    p = spawn(c, c.db, ["--recipes", c.path("recipes"), "--listen", "127.0.0.1:%d" % port], env,
              "daemon.log", prefix="WATCHDOG_PID=$$ export WATCHDOG_PID; ")
    try:
        if not ready.wait(60):
            raise Failure("no READY=1 within 60 s")
        ready_t = n.times("READY")[0]
        c.check("the webhook listener answered at READY=1", at_ready.get("status") == 202,
                repr(at_ready))
        stop_probe.set()
        prober.join(35)
        early = [(t, st) for t, st in answers if t < ready_t]
        c.check("no request answered before READY=1", not early, repr(early))
        c.check("MAINPID in the READY message", n.values("MAINPID")[:1] == [str(p.pid)],
                repr(n.values("MAINPID")))
        c.check("the store was migrated before READY=1", c.sql("SELECT count(*) FROM recipes")[0][0] >= 1)

        # Pings every WATCHDOG_USEC/2 while the loop runs; STATUS every 5 s.
        time.sleep(6)
        pings = [t for t in n.times("WATCHDOG") if t > ready_t]
        gaps = intervals(pings)
        half = WATCHDOG_USEC / 2e6
        c.check("watchdog pings keep coming", len(pings) >= 9, "%d pings" % len(pings))
        # The median holds the interval; the bound on the largest gap leaves
        # room for a loaded machine (the suite runs in parallel).
        median = sorted(gaps)[len(gaps) // 2] if gaps else 0
        c.check("watchdog pings every WATCHDOG_USEC/2",
                gaps and half * 0.8 < median < half * 1.2 and max(gaps) < half * 2,
                "gaps %s" % [round(g, 3) for g in gaps])
        status = [s for s in n.values("STATUS") if s.startswith("serving:")]
        c.check("STATUS lines with the queue depth",
                any(re.fullmatch(r"serving: \d+ runs in flight, \d+ waiting", s) for s in status),
                repr(n.values("STATUS")))

        # The test hook blocks the loop: no pings for the stall, then again.
        before = time.time()
        p.send_signal(signal.SIGUSR2)
        time.sleep(STALL_S + 3)
        after = [t for t in n.times("WATCHDOG") if t > before]
        gaps = intervals([before] + after)
        c.check("the pings stop while the loop is blocked",
                gaps and max(gaps) >= STALL_S - 0.3, "gaps %s" % [round(g, 3) for g in gaps])
        resumed = [t for t in after if t > before + STALL_S]
        c.check("the pings resume after the stall", len(resumed) >= 4,
                "%d pings after the stall" % len(resumed))
        c.check("the stall was the test hook", "test hook: blocking the loop" in log_text(c, "daemon.log"))

        stop_t = time.time()
        rc = c.stop_daemon(p)
        c.check("exit 0 after SIGTERM", rc == 0, "rc=%d" % rc)
        time.sleep(0.3)
        stopping = [t for t in n.times("STOPPING") if t >= stop_t]
        c.check("STOPPING=1 at SIGTERM", len(stopping) == 1, repr(n.values("STOPPING")))
        c.check("the webhook posted at READY=1 was stored",
                c.sql("SELECT count(*) FROM events")[0][0] >= 1)
    finally:
        stop_probe.set()
        n.close()
    check_clean_log(c, "daemon.log")

    # Outside systemd (no NOTIFY_SOCKET) nothing is sent and nothing breaks.
    rc, out, err = c.run("serve", "--help")
    c.check("serve --help still works", rc == 0)


def activation_prefix(fd):
    """Shell words that put fd at 3 in the child, as systemd passes it (the
    original number closed), and name the child in LISTEN_PID."""
    move = "" if fd == 3 else "exec 3<&%d %d<&-; " % (fd, fd)
    return move + "LISTEN_FDS=1 LISTEN_PID=$$ export LISTEN_FDS LISTEN_PID; "


def socket_activation(c):
    db = c.path("activated.db")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    fd = lsock.fileno()
    n = Notifications(c.path("notify2.sock"))
    prefix = activation_prefix(fd)
    p = spawn(c, db, [], {"NOTIFY_SOCKET": c.path("notify2.sock")}, "activated.log",
              prefix=prefix, pass_fds=(fd,))
    lsock.close()  # the daemon holds the only copy now
    try:
        c.wait_for("READY=1 from the socket-activated daemon", lambda: n.times("READY"), 60)
        text = log_text(c, "activated.log")
        c.check("the server took fd 3", re.search(r'http server listening.*address="?fd 3', text),
                text[-2000:])
        st, _ = post(port, "/hooks/n", {"n": 1})
        c.check("no webhook recipe yet: 404 from the activated server", st == 404, "got %d" % st)
        c.write("recipes2/hook.yaml", HOOK)
        rc, out, err = c.run("--db", db, "recipe", "import", c.path("recipes2/hook.yaml"), db=False)
        c.check("recipe imported beside the daemon", rc == 0, err)

        def accepted():
            return post(port, "/hooks/n", {"n": 2})[0] == 202
        c.wait_for("202 on the activated socket once the recipe is in", accepted, 30, 0.3)
        rc = c.stop_daemon(p)
        c.check("socket-activated daemon exits 0", rc == 0, "rc=%d" % rc)
    finally:
        n.close()
    check_clean_log(c, "activated.log")

    # A datagram socket is not a listener: refused at start, exit 1.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    fd = u.fileno()
    prefix = activation_prefix(fd)
    p = spawn(c, c.path("bad.db"), [], {}, "bad.log", prefix=prefix, pass_fds=(fd,))
    u.close()
    rc = p.wait(60)
    text = log_text(c, "bad.log")
    c.check("a datagram socket is refused", rc == 1 and "not a listening TCP socket" in text,
            "rc=%d %s" % (rc, text[-1000:]))


def body(c):
    notify_and_watchdog(c)
    socket_activation(c)


if __name__ == "__main__":
    main("notify", body)
