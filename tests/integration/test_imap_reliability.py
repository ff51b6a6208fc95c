"""The imap trigger's promises under stress, against a real Dovecot: 500
messages delivered while promptd is stopped are each processed once after
start; SIGKILLs during that catch-up repeat and skip nothing (the UID
cursor commits with each event); a UIDVALIDITY change (the mailbox
rebuilt, its UIDs renumbered) triggers nothing old, and new mail after it
triggers as usual."""

import glob
import os
import random
import signal
import time

from dovecot import Dovecot
from promptd_test import main

N = 500

RECIPE = """\
name: bulk
trigger: { imap: { account: bulk, poll_s: 20 } }   # a backlog must not wait for polls
steps:
  - id: note
    log: { message: "mail {{event.subject}}" }
"""

CONFIG = """\
mail:
  bulk:
    imap: "%s"
    starttls: false
    user: bulk
    password: env:BULK_PASSWORD
"""


def mail(n):
    return ("From: Customer %d <c%d@customer.example>\r\nTo: bulk@shop.example\r\n"
            "Subject: Message %d\r\nMessage-ID: <b%d@customer.example>\r\n\r\nBody %d\r\n"
            % (n, n, n, n, n)).encode()


def events(c):
    return c.sql("SELECT dedupe_key FROM events")


def body(c):
    with Dovecot(users={"bulk": "pw-bulk"}) as d:
        c.write("config.yaml", CONFIG % d.url())
        c.write("recipes/r.yaml", RECIPE)
        env = {"BULK_PASSWORD": "pw-bulk"}
        daemon = c.start_daemon("--config", c.path("config.yaml"), "--recipes",
                                c.path("recipes"), env=env)
        c.wait_for("daemon serving", lambda: c.serving(daemon), timeout=30)
        c.wait_for("first poll", lambda: c.sql(
            "SELECT count(*) FROM cursors WHERE source = 'imap:bulk/INBOX'")[0][0] == 1,
            timeout=30)
        rc = c.stop_daemon(daemon)
        c.check("stop", rc == 0, "exit %d" % rc)

        m = d.imap("bulk")
        for n in range(N):
            m.append("INBOX", None, None, mail(n))
        m.logout()

        # Catch up, SIGKILLed twice on the way.
        rng = random.Random(7)
        kills = 0
        for attempt in range(3):
            daemon = c.start_daemon("--config", c.path("config.yaml"), env=env,
                                    log_name="daemon%d.log" % attempt)
            if attempt < 2:
                target = rng.randint(60, 200) * (attempt + 1)
                c.wait_for("some events", lambda: len(events(c)) >= target, timeout=120)
                daemon.send_signal(signal.SIGKILL)
                daemon.wait()
                kills += 1
        c.wait_for("all %d events" % N, lambda: len(events(c)) >= N, timeout=300)
        keys = [k for (k,) in events(c)]
        uids = sorted(int(k.split(":")[1]) for k in keys)
        c.check("every message exactly once after %d kills" % kills,
                len(keys) == N and len(set(keys)) == N, "%d events, %d distinct"
                % (len(keys), len(set(keys))))
        c.check("no gap in the UIDs", uids == list(range(uids[0], uids[0] + N)),
                "%d..%d" % (uids[0], uids[-1]))
        c.wait_for("runs done", lambda: c.sql(
            "SELECT count(*) FROM runs WHERE status = 'succeeded'")[0][0] == N, timeout=120)
        rc = c.stop_daemon(daemon)
        c.check("stop after catch-up", rc == 0, "exit %d" % rc)

        # A rebuilt mailbox: Dovecot forgets its UID list and starts a new
        # UIDVALIDITY, renumbering every message.
        before = d.uidvalidity("bulk")
        d.stop()
        for f in glob.glob(os.path.join(d.dir, "mail", "bulk", "dovecot*")):
            os.remove(f)
        time.sleep(1.1)  # UIDVALIDITY is a timestamp: make the new one differ
        d._start()
        after = d.uidvalidity("bulk")
        c.check("UIDVALIDITY changed", after != before, "%d -> %d" % (before, after))
        daemon = c.start_daemon("--config", c.path("config.yaml"), env=env,
                                log_name="daemon-uidv.log")
        c.wait_for("the new UIDVALIDITY seen", lambda: c.sql(
            "SELECT cursor FROM cursors WHERE source = 'imap:bulk/INBOX'")[0][0].startswith(
                "%d:" % after), timeout=60)
        time.sleep(2)
        c.check("nothing old triggered", len(events(c)) == N, "%d events" % len(events(c)))
        d.deliver("bulk", mail(N + 1))
        c.wait_for("the new message", lambda: len(events(c)) == N + 1, timeout=60)
        rc = c.stop_daemon(daemon)
        c.check("final stop", rc == 0, "exit %d" % rc)
        log = open(c.path("daemon-uidv.log"), encoding="utf-8", errors="replace").read()
        c.check("UIDVALIDITY change logged", "UIDVALIDITY changed" in log)


if __name__ == "__main__":
    main("imap_reliability", body)
