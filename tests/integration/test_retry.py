"""Retries: a transient error (ENOSPC: the CSV lives on a tiny tmpfs that a
filler file has filled) makes the run `retrying` with backoff; once space is
freed the next attempt succeeds, writing the row once. With max_attempts
reached the run fails with the reason, and `runs replay` resumes it at that
step. Mounting needs root (as in CI); elsewhere the test says it skipped."""

import os
import subprocess
import sys

from promptd_test import Failure, main

RECIPE = """\
name: {name}
trigger: {{ event: {{ source: {name} }} }}
retry: {{ max_attempts: {attempts}, base_ms: 100, cap_ms: 400 }}
steps:
  - id: before
    log: {{ message: "event {{{{event.n}}}}" }}
  - id: row
    csvfile: {{ path: {path}, row: ["{{{{event.n}}}}"] }}
"""


def run_of(c, recipe):
    runs = c.json("runs", "list", "--recipe", recipe, "--json")
    return runs[0] if runs else None


def body(c):
    disk = c.path("disk")
    os.mkdir(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", disk], check=True)
    try:
        scenario(c, disk)
    finally:
        for p in c.daemons:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["umount", disk], check=False)


def scenario(c, disk):
    flaky = os.path.join(disk, "flaky.csv")
    doomed = os.path.join(disk, "doomed.csv")
    with open(os.path.join(disk, "filler"), "wb") as f:
        try:
            f.write(b"x" * 65536)
        except OSError:
            pass  # the disk is full now, which is the point
    c.write("recipes/flaky.yaml", RECIPE.format(name="flaky", attempts=50, path=flaky))
    c.write("recipes/doomed.yaml", RECIPE.format(name="doomed", attempts=3, path=doomed))
    rc, _, err = c.run("recipe", "import", c.path("recipes"))
    c.check("import", rc == 0, err)
    daemon = c.start_daemon()
    for name in ("flaky", "doomed"):
        rc, _, err = c.run("emit", "--source", name, "--event", "-", stdin=b'{"n": 7}')
        c.check("emit " + name, rc == 0, err)

    # doomed: gives up after max_attempts, then replay resumes at the step.
    d = c.wait_for("doomed to fail",
                   lambda: (lambda r: r if r["status"] == "failed" else None)(run_of(c, "doomed")),
                   timeout=30)
    c.check("failure says it gave up", "gave up after 3 attempts" in (d["error"] or ""), str(d))
    c.check("failure names the step", "step row" in (d["error"] or ""), str(d))
    # flaky: retrying with a growing attempt count and the device's error.
    r = c.wait_for("flaky to retry twice",
                   lambda: (lambda r: r if r and r["status"] in ("retrying", "running")
                            and r["attempt"] >= 2 else None)(run_of(c, "flaky")), timeout=30)
    c.check("transient error recorded", "No space left on device" in (r["error"] or ""), str(r))
    os.unlink(os.path.join(disk, "filler"))
    r = c.wait_for("flaky to succeed",
                   lambda: (lambda r: r if r["status"] == "succeeded" else None)(run_of(c, "flaky")),
                   timeout=30)
    with open(flaky, newline="") as f:
        c.check("row written once after the retries", f.read() == '"7"\r\n')
    show = c.json("runs", "show", str(r["id"]), "--json")
    c.check("earlier step ran once", show["steps"][0]["attempts"] == 1, str(show["steps"][0]))
    c.check("retried step counted its attempts", show["steps"][1]["attempts"] >= 3,
            str(show["steps"][1]))

    rc, out, err = c.run("runs", "replay", str(d["id"]))
    c.check("replay accepted", rc == 0, err)
    r = c.wait_for("doomed to succeed after replay",
                   lambda: (lambda r: r if r["status"] == "succeeded" else None)(run_of(c, "doomed")),
                   timeout=30)
    show = c.json("runs", "show", str(r["id"]), "--json")
    c.check("replay did not repeat the earlier step", show["steps"][0]["attempts"] == 1,
            str(show["steps"][0]))
    with open(doomed, newline="") as f:
        c.check("replayed row written once", f.read() == '"7"\r\n')
    rc = c.stop_daemon(daemon)
    c.check("daemon exits 0", rc == 0, "exit %d" % rc)


if os.geteuid() != 0:
    print("skipped: mounting the small tmpfs this test fills needs root")
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)
main("retry", body)
