#!/usr/bin/env python3
"""systemd/ as shipped:

- `systemd-analyze verify` is clean on promptd.service and promptd.socket
  (on a copy whose ExecStart= is the binary under test, since verify needs
  an executable there), and does fail on a broken copy (so its verdict is
  read correctly);
- `systemd-analyze security --offline=yes` on the shipped unit: exposure
  2.0 or less, with the directives issue 8 asks for among the passed checks;
- the sysusers.d snippet makes a system user promptd without a login shell;
- the example configuration loads, and it is found through
  $CONFIGURATION_DIRECTORY when --config is not given.

Needs $PROMPTD (the binary) and systemd-analyze (Debian's systemd)."""

import os
import re
import shutil
import subprocess

from promptd_test import PROMPTD, SOURCE_DIR, Failure, main

UNIT_DIR = os.path.join(SOURCE_DIR, "systemd")
MAX_EXPOSURE = 2.0


def analyze(*args, cwd=None):
    if not shutil.which("systemd-analyze"):
        raise Failure("systemd-analyze not found (apt-get install systemd)")
    p = subprocess.run(["systemd-analyze"] + list(args), capture_output=True, text=True,
                       timeout=120, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def unit_copy(c, name, binary):
    with open(os.path.join(UNIT_DIR, name), encoding="utf-8") as f:
        text = f.read()
    text = text.replace("ExecStart=/usr/bin/promptd ", "ExecStart=%s " % os.path.abspath(binary))
    return c.write(os.path.join("units", name), text)


def verify(c):
    svc = unit_copy(c, "promptd.service", PROMPTD)
    sock = unit_copy(c, "promptd.socket", PROMPTD)
    with open(svc, encoding="utf-8") as f:
        c.check("the copy runs the binary under test", "ExecStart=%s serve" % os.path.abspath(PROMPTD)
                in f.read())
    rc, out = analyze("verify", svc, sock, cwd=c.path("units"))
    c.check("systemd-analyze verify is clean", rc == 0 and out.strip() == "", "rc=%d\n%s" % (rc, out))

    # The same check on a unit with a typo and a missing binary must fail.
    with open(svc, encoding="utf-8") as f:
        broken = f.read().replace("Type=notify", "Type=notfy").replace(
            os.path.abspath(PROMPTD), c.path("no-such-promptd"))
    bad = c.write("broken/promptd.service", broken)
    rc, out = analyze("verify", bad, cwd=c.path("broken"))
    c.check("verify fails on a broken unit", rc != 0 and "no-such-promptd" in out,
            "rc=%d\n%s" % (rc, out))


def security(c):
    rc, out = analyze("security", "--offline=yes", "--no-pager",
                      os.path.join(UNIT_DIR, "promptd.service"))
    m = re.search(r"Overall exposure level for promptd\.service: (\d+\.\d+)", out)
    c.check("systemd-analyze security gives an exposure", m is not None, out[-2000:])
    if not m:
        return
    exposure = float(m.group(1))
    print("exposure %.1f" % exposure)
    c.check("exposure %.1f <= %.1f" % (exposure, MAX_EXPOSURE), exposure <= MAX_EXPOSURE, out)
    passed = {line.split()[1] for line in out.splitlines() if line.startswith("✓")}
    for d in ("NoNewPrivileges=", "ProtectSystem=", "ProtectHome=", "PrivateTmp=", "PrivateDevices=",
              "MemoryDenyWriteExecute=", "LockPersonality=", "SystemCallArchitectures=",
              "RestrictNamespaces=~user", "ProtectKernelTunables=", "ProtectControlGroups=",
              "ProtectClock=", "ProtectHostname=", "ProtectProc=", "ProcSubset=", "RestrictRealtime=",
              "RestrictSUIDSGID=", "RemoveIPC=", "UMask=", "PrivateUsers=", "User=/DynamicUser=",
              "CapabilityBoundingSet=~CAP_SYS_ADMIN", "SystemCallFilter=~@privileged",
              "SystemCallFilter=~@resources", "RestrictAddressFamilies=~AF_PACKET"):
        c.check("security check %s passes" % d, d in passed)

    with open(os.path.join(UNIT_DIR, "promptd.service"), encoding="utf-8") as f:
        unit = f.read()
    for line in ("Type=notify", "NotifyAccess=main", "Restart=on-failure", "StateDirectory=promptd",
                 "ConfigurationDirectory=promptd", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ExecStart=/usr/bin/promptd serve"):
        c.check("unit has %s" % line, re.search(r"^%s$" % re.escape(line), unit, re.M))
    wd = re.search(r"^WatchdogSec=(\d+)s$", unit, re.M)
    c.check("unit has a watchdog", wd and int(wd.group(1)) >= 10, repr(wd))


def sysusers(c):
    root = c.path("root")
    os.makedirs(os.path.join(root, "etc"))
    p = subprocess.run(["systemd-sysusers", "--root", root,
                        os.path.join(UNIT_DIR, "promptd.sysusers")],
                       capture_output=True, text=True, timeout=60)
    c.check("systemd-sysusers takes the snippet", p.returncode == 0, p.stderr)
    with open(os.path.join(root, "etc", "passwd"), encoding="utf-8") as f:
        users = [line.split(":") for line in f.read().splitlines()]
    mine = [u for u in users if u[0] == "promptd"]
    c.check("user promptd made", len(mine) == 1, repr(users))
    if mine:
        uid, home, shell = int(mine[0][2]), mine[0][5], mine[0][6]
        c.check("a system user", 0 < uid < 1000, "uid %d" % uid)
        c.check("no login shell", shell.endswith("nologin"), shell)
        c.check("home is the state directory", home == "/var/lib/promptd", home)


def config(c):
    example = os.path.join(UNIT_DIR, "promptd.yaml")
    rc, out, err = c.run("--config", example, "status")
    c.check("the example configuration loads", rc == 0, err)

    # Found without --config through $CONFIGURATION_DIRECTORY, as systemd sets it.
    confdir = c.path("etc-promptd")
    os.makedirs(confdir)
    env = dict(os.environ, CONFIGURATION_DIRECTORY=confdir)

    def status():
        p = subprocess.run([PROMPTD, "--db", c.db, "status"], capture_output=True, text=True,
                           timeout=60, env=env, cwd=c.dir)
        return p.returncode, p.stderr
    rc, err = status()
    c.check("no promptd.yaml there: runs without a configuration", rc == 0, err)
    c.write("etc-promptd/promptd.yaml", "http: { listne: 1 }\n")
    rc, err = status()
    c.check("a promptd.yaml there is read (its error reported)",
            rc != 0 and "promptd.yaml" in err and "listne" in err, "rc=%d %s" % (rc, err))
    shutil.copy(example, os.path.join(confdir, "promptd.yaml"))
    rc, err = status()
    c.check("the example as $CONFIGURATION_DIRECTORY/promptd.yaml", rc == 0, err)


def body(c):
    verify(c)
    security(c)
    sysusers(c)
    config(c)


if __name__ == "__main__":
    main("systemd_unit", body)
