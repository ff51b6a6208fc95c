"""imap_client against a real Dovecot this test configures and starts on
loopback (tests/integration/dovecot.py), driven by tests/tools/imap_probe
(one libev loop, one client, operations chained from callbacks).  Every
result is checked against what the server holds, read back with Python's
imaplib: UIDs, exact message bytes, flags, folders.  The probe exits 0 only
when its loop ended with no watcher left."""

import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dovecot  # noqa: E402
from promptd_test import PROMPTD, SANITIZER_MARKS, Failure, main  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.abspath(PROMPTD)), "imap_probe")

# Bytes an IMAP parser could mistake for protocol: tagged and untagged lines,
# a literal marker, a long line, 8-bit text, a lone LF inside.
TRICKY = (b"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\n"
          b"Subject: =?UTF-8?B?SGVsbG8=?=\r\nMessage-ID: <tricky-1@example.com>\r\n"
          b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
          b"A001 OK not the end\r\n* SEARCH 1 2 3\r\n* 9 FETCH (BODY[] {5}\r\n"
          + b"x" * 20000 + b"\r\n" + "caf\u00e9 \u2713\r\n".encode() + b"lone\nlf\r\n.\r\n)\r\n")


def message(n, msgid=None):
    return (b"From: sender%d@example.com\r\nTo: alice@example.com\r\nSubject: message %d\r\n"
            b"Message-ID: %s\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody %d\r\n"
            % (n, n, (msgid or "<m%d@example.com>" % n).encode(), n))


class Probe:
    def __init__(self, case, dc, url=None, user="alice", password="secret", extra=()):
        self.case = case
        self.base = [PROBE, "--url", url or dc.url(), "--user", user, "--password", password]
        self.base += list(extra)

    def run(self, *commands):
        """commands: lists of words; returns the parsed result lines."""
        argv = list(self.base)
        for i, c in enumerate(commands):
            if i:
                argv.append("+")
            argv += [str(w) for w in c]
        p = subprocess.run(argv, capture_output=True, timeout=180)
        err = p.stderr.decode("utf-8", "replace")
        self.case.check("imap_probe exits 0 with a clean loop (%s)" % commands[0][0],
                        p.returncode == 0, "rc=%d %s" % (p.returncode, err[-2000:]))
        self.case.check("no sanitizer report", not any(m in err for m in SANITIZER_MARKS),
                        err[-3000:])
        out = [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]
        if len(out) != len(commands) and commands[-1][0] != "free-midway":
            raise Failure("expected %d results, got %r (stderr %s)" % (len(commands), out, err))
        return out


def flags_of(dc, user, mailbox, uid):
    for u, flags, _ in dc.messages(user, mailbox):
        if u == uid:
            return flags - {"\\Recent"}
    return None


def body(c):
    if not dovecot.available():
        raise Failure("dovecot is not installed (scripts/install-deps.sh --test)")
    if not os.path.exists(PROBE):
        raise Failure("no imap_probe beside %s" % PROMPTD)

    with dovecot.Dovecot(users={"alice": "secret", "bob": "hunter2"}, tls=True) as dc:
        try:
            plain_cases(c, dc)
            tls_cases(c, dc)
        except Failure:
            print("--- dovecot log ---\n%s" % dc.log()[-4000:])
            raise


def plain_cases(c, dc):
    pr = Probe(c, dc)
    uv = dc.uidvalidity("alice")

    # Empty INBOX, then three deliveries.
    r = pr.run(["examine", "INBOX"])[0]
    c.check("examine ok", r["rc"] == "ok", r)
    c.check("examine uidvalidity matches the server", r.get("uidvalidity") == uv, (r, uv))
    c.check("empty inbox: uidnext 1, exists 0", r.get("uidnext") == 1 and r.get("exists") == 0, r)

    sent = [message(1), message(2), TRICKY]
    uids = [dc.deliver("alice", m) for m in sent]
    c.check("deliveries got UIDs 1..3", uids == [1, 2, 3], uids)
    today = datetime.date.today()
    fetched = c.path("fetched-%d.eml")
    res = pr.run(["examine", "INBOX"],
                 ["status", "INBOX"],
                 ["search", "INBOX", "uid_from=1"],
                 ["search", "INBOX", "uid_from=2"],
                 ["search", "INBOX", "uid_from=4"],
                 ["search", "INBOX", "since=%s" % (today - datetime.timedelta(days=1))],
                 ["search", "INBOX", "header=Message-ID:<m2@example.com>"],
                 ["fetch", "INBOX", uv, 1, fetched % 1],
                 ["fetch", "INBOX", uv, 3, fetched % 3],
                 ["fetch", "INBOX", 0, 2, fetched % 2])
    ex, st, s1, s2, s4, since, hdr, f1, f3, f2 = res
    c.check("examine after delivery", (ex.get("uidnext"), ex.get("exists")) == (4, 3), ex)
    c.check("status agrees", (st.get("uidvalidity"), st.get("uidnext"), st.get("exists")) ==
            (uv, 4, 3), st)
    c.check("UID 1:* finds all three", s1.get("uids") == [1, 2, 3], s1)
    c.check("UID 2:* finds two", s2.get("uids") == [2, 3], s2)
    c.check("UID 4:* finds none (not the last message)", s4.get("uids") == [], s4)
    c.check("SINCE yesterday finds all three", since.get("uids") == [1, 2, 3], since)
    c.check("HEADER Message-ID finds one", hdr.get("uids") == [2], hdr)
    # Exactly what the server stores (Dovecot turns the lone LF into CRLF).
    stored = {u: raw for u, _, raw in dc.messages("alice", "INBOX")}
    c.check("the server kept the first two as sent", stored[1] == sent[0] and stored[2] == sent[1])
    for n, f in ((1, f1), (2, f2), (3, f3)):
        c.check("fetch %d ok" % n, f["rc"] == "ok" and f.get("bytes") == len(stored[n]), f)
        with open(fetched % n, "rb") as fp:
            got = fp.read()
        c.check("fetch %d returns the exact bytes" % n, got == stored[n],
                "%d bytes vs %d" % (len(got), len(stored[n])))
    seen = [flags_of(dc, "alice", "INBOX", u) for u in (1, 2, 3)]
    c.check("fetching left every message unseen", all(f == set() for f in seen), seen)

    # Failures: UIDVALIDITY changed, no such UID, too big, no such mailbox.
    res = pr.run(["fetch", "INBOX", uv + 1, 1, c.path("x.eml")],
                 ["fetch", "INBOX", uv, 99, c.path("x.eml")],
                 ["examine", "Nope"],
                 ["search", "Nope", "uid_from=1"],
                 ["append", "Nope", c.path("fetched-1.eml")])
    c.check("stale UIDVALIDITY is gone", res[0]["rc"] == "gone" and "UIDVALIDITY" in
            res[0]["error"], res[0])
    c.check("missing UID is gone", res[1]["rc"] == "gone", res[1])
    for r in res[2:]:
        c.check("missing mailbox is refused with the server's words",
                r["rc"] == "refused" and "server:" in r["error"], r)
    small = Probe(c, dc, extra=["--max-message", "1000"]).run(
        ["fetch", "INBOX", uv, 3, c.path("x.eml")], ["fetch", "INBOX", uv, 1, c.path("y.eml")])
    c.check("message over the cap is too_big", small[0]["rc"] == "too_big", small[0])
    c.check("the session survives a refused fetch", small[1]["rc"] == "ok", small[1])

    # The draft flow: find Drafts, APPEND, find it by Message-ID, fix flags.
    draft = (b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: Re: message 2\r\n"
             b"Message-ID: <draft-7%41@promptd.local>\r\nIn-Reply-To: <m2@example.com>\r\n"
             b"\r\nThanks!\r\n")
    draft_file = c.write("draft.eml", draft.decode())
    lst, app, found = pr.run(["list"], ["append", "Drafts", draft_file],
                             ["search", "Drafts", "header=Message-ID:<draft-7%41@promptd.local>"])
    c.check("LIST finds Drafts by SPECIAL-USE", lst.get("drafts") == "Drafts", lst)
    names = sorted(f["name"] for f in lst.get("folders", []))
    c.check("LIST names every folder", names == ["Drafts", "INBOX", "Sent", "Trash"], names)
    c.check("append ok with APPENDUID", app["rc"] == "ok" and app.get("uid") == 1, app)
    c.check("APPENDUID's uidvalidity is Drafts'",
            app.get("uidvalidity") == dc.uidvalidity("alice", "Drafts"), app)
    c.check("search by Message-ID finds exactly the draft", found.get("uids") == [app.get("uid")],
            found)
    c.check("libcurl stored it \\Seen", flags_of(dc, "alice", "Drafts", 1) == {"\\Seen"})
    add, rm, again = pr.run(["store", "Drafts", 1, "add", "Draft"],
                            ["store", "Drafts", 1, "remove", "Seen"],
                            ["search", "Drafts", "header=Message-ID:<draft-7%41@promptd.local>"])
    c.check("store +FLAGS reports both flags",
            add["rc"] == "ok" and set(add.get("flags", [])) == {"\\Seen", "\\Draft"}, add)
    c.check("store -FLAGS reports \\Draft only",
            rm["rc"] == "ok" and rm.get("flags") == ["\\Draft"], rm)
    c.check("the draft ends \\Draft and unseen", flags_of(dc, "alice", "Drafts", 1) == {"\\Draft"})
    c.check("still exactly one draft", again.get("uids") == [1], again)
    drafts = dc.messages("alice", "Drafts")
    c.check("the draft's bytes are what was appended", len(drafts) == 1 and drafts[0][2] == draft)

    # STORE after an EXAMINE of the same mailbox on the same connection: the
    # store's own SELECT makes it writable again.
    ex, st = pr.run(["examine", "Drafts"], ["store", "Drafts", 1, "add", "Flagged"])
    c.check("store after examine works", st["rc"] == "ok" and "\\Flagged" in st.get("flags", []),
            st)

    # A name needing quotes and percent-encoding, and one in modified UTF-7.
    m = dc.imap("alice")
    for name in ('Odd "Box" 100%', "Caf&AOk-"):
        typ, data = m.create('"%s"' % name.replace("\\", "\\\\").replace('"', '\\"'))
        c.check("created %s" % name, typ == "OK", data)
    m.logout()
    odd_msg = message(9, "<odd%20id@example.com>")
    dc.deliver("alice", odd_msg, mailbox='"Odd \\"Box\\" 100%"')
    dc.deliver("alice", message(10), mailbox="Caf&AOk-")
    odd_uv = dc.uidvalidity("alice", 'Odd \\"Box\\" 100%')
    res = pr.run(["examine", 'Odd "Box" 100%'],
                 ["search", 'Odd "Box" 100%', "header=Message-ID:<odd%20id@example.com>"],
                 ["fetch", 'Odd "Box" 100%', odd_uv, 1, c.path("odd.eml")],
                 ["list"],
                 ["examine", "Caf&AOk-"])
    c.check("examine an odd name", res[0]["rc"] == "ok" and res[0].get("exists") == 1, res[0])
    c.check("search in an odd name, '%' in the key", res[1].get("uids") == [1], res[1])
    with open(c.path("odd.eml"), "rb") as fp:
        c.check("fetch from an odd name", res[2]["rc"] == "ok" and fp.read() == odd_msg, res[2])
    names = [f["name"] for f in res[3].get("folders", [])]
    c.check("LIST keeps names as sent", 'Odd "Box" 100%' in names and "Caf&AOk-" in names, names)
    c.check("examine a UTF-7 name", res[4]["rc"] == "ok" and res[4].get("exists") == 1, res[4])

    # Queueing and cancellation, and freeing the client mid-operation.
    res = pr.run(["burst", 5, "INBOX"], ["free-midway", "INBOX"])
    c.check("burst: the cancelled one reports cancelled, the rest ok",
            sorted(res[0].get("results", [])) == ["cancelled", "ok", "ok", "ok", "ok"], res[0])
    c.check("free-midway: both reported cancelled inside the free",
            [r["rc"] for r in res[1:]] == ["cancelled", "cancelled"], res[1:])

    # Another user's session next to alice's, then a wrong password.
    r = Probe(c, dc, user="bob", password="hunter2").run(["examine", "INBOX"])[0]
    c.check("second user logs in", r["rc"] == "ok" and r.get("exists") == 0, r)
    r = Probe(c, dc, password="wrong").run(["examine", "INBOX"])[0]
    c.check("wrong password is a login error", r["rc"] == "login" and r["curl_code"] == 67, r)
    c.check("login error names the refusal", "AUTHENTICATIONFAILED" in r["error"] or
            "Authentication failed" in r["error"], r)
    r = Probe(c, dc, url="imap://127.0.0.1:%d" % dovecot.free_port()).run(["examine", "INBOX"])[0]
    c.check("connection refused is a transport error", r["rc"] == "transport", r)


def tls_cases(c, dc):
    ca = ["--ca", dc.ca_file]
    r = Probe(c, dc, extra=["--starttls"] + ca).run(["examine", "INBOX"], ["status", "Drafts"])
    c.check("STARTTLS with the CA file", r[0]["rc"] == "ok" and r[0].get("exists") == 3, r[0])
    c.check("STARTTLS session reused", r[1]["rc"] == "ok", r[1])
    r = Probe(c, dc, url=dc.url(tls=True), extra=ca).run(
        ["examine", "INBOX"], ["fetch", "INBOX", 0, 1, c.path("tls.eml")])
    c.check("IMAPS with the CA file", r[0]["rc"] == "ok" and r[0].get("exists") == 3, r[0])
    with open(c.path("tls.eml"), "rb") as fp:
        c.check("fetch over IMAPS", r[1]["rc"] == "ok" and fp.read() == message(1), r[1])
    r = Probe(c, dc, url=dc.url(tls=True)).run(["examine", "INBOX"])[0]
    c.check("self-signed certificate refused without the CA file", r["rc"] == "tls", r)
    r = Probe(c, dc, url=dc.url(tls=True), extra=["--insecure"]).run(["examine", "INBOX"])[0]
    c.check("insecure accepts it", r["rc"] == "ok", r)


if __name__ == "__main__":
    main("imap_client", body)
