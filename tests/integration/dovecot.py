"""A real Dovecot (Debian's dovecot-imapd) for the integration tests, run by
the test itself: its own config, users, maildirs, sockets and logs in a
temporary directory, listening on loopback ports picked at start.  Nothing
of the system's Dovecot is used or touched: base_dir and state_dir are ours,
so a system Dovecot that happens to run (port 143, /run/dovecot) does not
matter.

    with Dovecot(users={"alice": "secret"}, tls=True) as d:
        d.port, d.tls_port, d.ca_file            # plain+STARTTLS port, IMAPS port, cert
        d.url(), d.url(tls=True)                 # imap://127.0.0.1:P, imaps://...
        d.deliver("alice", raw_bytes)            # APPEND to INBOX, unseen
        d.messages("alice", "Drafts")            # [(uid, {flags}, bytes)], by UID
        d.uidvalidity("alice", "INBOX")
        d.log()                                  # Dovecot's log so far

Runs as root (CI) or as an ordinary user.  As an ordinary user every
Dovecot process and the mail belong to that user.  As root, Dovecot's own
rules apply: login processes run as dovenull and mail is accessed as
nobody (Dovecot refuses uid 0 for both); the rest runs as root.
"""

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from promptd_test import free_port  # noqa: F401 (tests use dovecot.free_port)

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def available():
    """True when the dovecot binary is installed."""
    return os.path.exists(DOVECOT) and os.access(DOVECOT, os.X_OK)


class Dovecot:
    def __init__(self, users=None, tls=False, workdir=None, oauth2_introspection=None):
        """oauth2_introspection: an RFC 7662 endpoint URL; XOAUTH2 and
        OAUTHBEARER logins are then checked there (Dovecot's oauth2 passdb,
        POSTing the token), beside the passwords of `users`."""
        self.users = dict(users or {"alice": "secret"})
        self.oauth2 = oauth2_introspection
        self.tls = tls
        self.owns_dir = workdir is None
        # Under root, dovenull must be able to walk to the sockets in here:
        # a workdir's parents must be traversable (mkdtemp's /tmp/... is).
        self.dir = workdir or tempfile.mkdtemp(prefix="promptd-dovecot-")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.ca_file = None
        self.proc = None
        me = pwd.getpwuid(os.getuid())
        self.sys_user = me.pw_name
        self.sys_group = grp.getgrgid(os.getgid()).gr_name
        # Login processes refuse to run as root: there they get Debian's
        # unprivileged dovenull, which must be able to reach the sockets.
        self.login_user = self.sys_user
        # Dovecot never accesses mail as uid 0 either: under root the
        # maildirs belong to nobody.
        self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
        if os.getuid() == 0:
            self.login_user = "dovenull" if _user_exists("dovenull") else "nobody"
            nobody = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
            os.chmod(self.dir, 0o711)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self._write_config()
        self._start()

    # ---- setup -------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _make_cert(self):
        key, cert = self.path("key.pem"), self.path("cert.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-nodes", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o600)
        self.ca_file = cert
        return key, cert

    def _write_config(self):
        for d in ("run", "state", "mail", "home"):
            os.makedirs(self.path(d), exist_ok=True)
        for d in ("mail", "home"):
            if os.getuid() == 0:
                os.chown(self.path(d), self.mail_uid, self.mail_gid)
        with open(self.path("passwd"), "w", encoding="utf-8") as f:
            for name, password in self.users.items():
                f.write("%s:{PLAIN}%s\n" % (name, password))
        uid, gid = self.mail_uid, self.mail_gid
        mechanisms = "plain login"
        oauth2_passdb = ""
        if self.oauth2:
            with open(self.path("oauth2.conf.ext"), "w", encoding="utf-8") as f:
                f.write("introspection_url = %s\nintrospection_mode = post\n"
                        "username_attribute = username\nactive_attribute = active\n"
                        "active_value = true\ntls_ca_cert_file = /etc/ssl/certs/ca-certificates.crt\n"
                        % self.oauth2)
            mechanisms += " xoauth2 oauthbearer"
            oauth2_passdb = ("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                             "  args = %s\n}\n" % self.path("oauth2.conf.ext"))
        ssl_lines = ["ssl = no"]
        if self.tls:
            key, cert = self._make_cert()
            ssl_lines = ["ssl = yes", "ssl_cert = <%s" % cert, "ssl_key = <%s" % key,
                         "ssl_min_protocol = TLSv1.2"]
            if os.path.exists("/usr/share/dovecot/dh.pem"):
                ssl_lines.append("ssl_dh = </usr/share/dovecot/dh.pem")
        tls_listener = ""
        if self.tls:
            tls_listener = ("  inet_listener imaps {\n    address = 127.0.0.1\n"
                            "    port = %d\n    ssl = yes\n  }\n" % self.tls_port)
        text = """# Written by tests/integration/dovecot.py for one test run.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
debug_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
# Every process runs as the user running the test (root in CI), except
# the login processes under root (see Dovecot.__init__).
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = 0
first_valid_gid = 0
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
{ssl}
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
mail_location = maildir:{d}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
}}
# No chroot: it needs root and adds nothing to a test.
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
{tls_listener}}}
service anvil {{
  chroot =
}}
""".format(d=self.dir, user=self.sys_user, group=self.sys_group, uid=uid, gid=gid,
           login_user=self.login_user, mechanisms=mechanisms, oauth2_passdb=oauth2_passdb,
           ssl="\n".join(ssl_lines), port=self.port, tls_listener=tls_listener)
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(text)

    def _start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=open(self.path("dovecot.out"), "ab"),
                                     stderr=subprocess.STDOUT)
        end = time.time() + 30
        ports = [self.port] + ([self.tls_port] if self.tls else [])
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited %d: %s" % (self.proc.returncode, self.log()))
            if all(self._accepts(p) for p in ports):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("dovecot did not listen within 30 s: %s" % self.log())

    @staticmethod
    def _accepts(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    # ---- use ---------------------------------------------------------------

    def url(self, tls=False):
        return "imaps://127.0.0.1:%d" % self.tls_port if tls else "imap://127.0.0.1:%d" % self.port

    def log(self):
        out = []
        for name in ("dovecot.out", "dovecot.log"):
            p = self.path(name)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return "".join(out)

    def imap(self, user):
        """A logged-in imaplib connection (plain IMAP on the loopback port)."""
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        m.login(user, self.users[user])
        return m

    def deliver(self, user, raw, mailbox="INBOX", flags=""):
        """APPENDs raw (bytes) to mailbox: UIDs follow delivery order.
        Returns the new message's UID (Dovecot answers APPENDUID)."""
        m = self.imap(user)
        try:
            typ, data = m.append(mailbox, flags or None, None, raw)
            if typ != "OK":
                raise RuntimeError("APPEND failed: %r" % data)
            code = data[0].decode() if data and data[0] else ""
            # "[APPENDUID <uidvalidity> <uid>] Append completed."
            if "APPENDUID" in code:
                return int(code.split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
            return None
        finally:
            m.logout()

    def uidvalidity(self, user, mailbox="INBOX"):
        m = self.imap(user)
        try:
            typ, data = m.status('"%s"' % mailbox, "(UIDVALIDITY UIDNEXT MESSAGES)")
            if typ != "OK":
                raise RuntimeError("STATUS failed: %r" % data)
            words = data[0].decode().split("(", 1)[1].rstrip(")").split()
            return int(dict(zip(words[::2], words[1::2]))["UIDVALIDITY"])
        finally:
            m.logout()

    def messages(self, user, mailbox="INBOX"):
        """[(uid, set of flags, raw bytes)] in UID order, read without
        changing any flag (EXAMINE, BODY.PEEK)."""
        m = self.imap(user)
        try:
            typ, _ = m.select('"%s"' % mailbox, readonly=True)
            if typ != "OK":
                raise RuntimeError("EXAMINE %s failed" % mailbox)
            typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            out = []
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head = item[0].decode()
                uid = int(head.split("UID ", 1)[1].split()[0])
                flags = set(head.split("FLAGS (", 1)[1].split(")", 1)[0].split())
                out.append((uid, flags, item[1]))
            out.sort(key=lambda t: t[0])
            return out
        finally:
            m.logout()

    # ---- teardown ----------------------------------------------------------

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.cleanup()
        else:
            self.stop()
            print("kept %s for inspection" % self.dir)
        return False
