#!/usr/bin/env python3
"""Fake Slack for promptd's tests and demo: incoming webhooks and the Web
API's chat.postMessage, with Slack's status codes, bodies and headers.

Standard library only.  A threading HTTP/1.1 server (keep-alive, Content-
Length bodies): Slack traffic from one daemon is a few messages a second,
so simplicity wins over speed here.

Usage:
  fake_slack.py --port 0 [--host H] [--token TOKEN]... [--webhook PATH]...
                [--channel NAME_OR_ID]... [--fault KIND[:COUNT]]...
                [--retry-after SECONDS] [--enforce-pacing] [--record FILE]
                [--quiet]
Prints `listening HOST:PORT` once ready, then one line per request it
receives (method, path, status, the message's text); --quiet keeps only the
first line.  SIGTERM/SIGINT stop it (exit 0).

Endpoints:
  POST /services/T.../B.../...      an incoming webhook.  With --webhook,
       only those paths exist (others: 404 no_service); without, any path
       of three segments under /services/ does.  Body: JSON, or a form
       with payload=JSON (both are what Slack accepts).
       200 text/html "ok"; errors are text/html bodies holding one error
       string with the status Slack uses (table below).
  POST /api/chat.postMessage        the Web API method.  Token from
       `Authorization: Bearer` (JSON bodies) or a `token` form field.
       --token lists valid tokens (default: any starting with "xox").
       --channel lists existing channels by name (#sales or sales) or ID
       (default: every channel exists; IDs are derived from the name).
       Always HTTP 200 application/json; charset=utf-8, {"ok": true,
       "channel", "ts", "message"} or {"ok": false, "error"}; a JSON body
       sent without a charset gets Slack's "missing_charset" warning.
       Rate limits: HTTP 429 with Retry-After and {"ok":false,"error":"ratelimited"}.
  GET  /_fake/requests[?since=SEQ]  recorded requests (JSON array)
  GET  /_fake/stats                 {total, by_status, by_fault}
  POST /_fake/faults                {"faults": [{"kind": K, "count": N,
                                     "target": "webhook"|"api"|"any",
                                     "retry_after": S}]} queued for the
                                     next matching requests
  POST /_fake/reset                 clear records, stats and faults
  GET  /_fake/health                {"ok": true}

Faults (--fault at start, or POST /_fake/faults), applied in order, each
to the next COUNT requests (default 1) of its target:
  rate_limit     429 with Retry-After (--retry-after or the fault's
                 retry_after, default 1 second)
  server_error   500 (webhook body: rollup_error; API: an HTML page)
  drop           the connection is closed without an answer
  ERROR_STRING   any Slack error string, e.g. channel_not_found,
                 invalid_payload, no_text, channel_is_archived,
                 action_prohibited, no_service, invalid_auth:
                 a webhook answers it with the status below (400 when not
                 listed); the API answers HTTP 200 {"ok": false, "error"}.
--enforce-pacing: a message that follows the previous one to the same
destination (webhook path; API token + channel) by less than one second is
answered 429, Retry-After: 1 (recorded with fault "pacing").  Slack
tolerates short bursts; this is stricter, to prove a client spaces them.

Webhook error statuses.  From Slack's changelog of 2016-05-17:
invalid_payload 400, user_not_found 400, action_prohibited 403,
channel_not_found 404, channel_is_archived 410, rollup_error 500.  Not
documented by Slack, chosen as commonly reported: no_text 400,
too_many_attachments 400, invalid_blocks 400, invalid_token 403,
posting_to_general_channel_denied 403, team_disabled 403, no_service 404,
no_service_id 404, no_team 404, no_active_hooks 404.

Recording: each request becomes {seq, time, method, path, target
("webhook", "api" or "other"), headers (lower-cased names), raw (the body
text), body (parsed JSON: the payload for webhooks and JSON API calls, the
form as a dict for form posts), status, fault (null, a kind above or
"pacing"), response (the body sent)} in memory for /_fake/requests and,
with --record FILE, as JSON lines (flushed per line).
"""

import argparse
import hashlib
import json
import re
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBHOOK_STATUS = {
    "invalid_payload": 400, "user_not_found": 400, "no_text": 400,
    "too_many_attachments": 400, "invalid_blocks": 400,
    "action_prohibited": 403, "invalid_token": 403,
    "posting_to_general_channel_denied": 403, "team_disabled": 403,
    "channel_not_found": 404, "no_service": 404, "no_service_id": 404, "no_team": 404,
    "no_active_hooks": 404,
    "channel_is_archived": 410,
    "rollup_error": 500,
}
WEBHOOK_PATH_RE = re.compile(r"^/services/[^/]+/[^/]+/[^/]+$")
CHANNEL_ID_RE = re.compile(r"^[CGD][A-Z0-9]{8,}$")
MAX_BODY = 4 * 1024 * 1024
PAGE_500 = ("<html><head><title>500 Internal Server Error</title></head>"
            "<body><h1>Internal Server Error</h1></body></html>")


def channel_id(name):
    if CHANNEL_ID_RE.match(name):
        return name
    bare = name.lstrip("#")
    return "C" + hashlib.sha1(bare.encode()).hexdigest()[:10].upper()


class Fake:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.record_file = open(args.record, "a", encoding="utf-8") if args.record else None
        self.tokens = set(args.token or [])
        self.webhooks = set(args.webhook or [])
        self.channels = set()
        for ch in args.channel or []:
            self.channels.update({ch, ch.lstrip("#"), channel_id(ch)})
        self.reset()
        for spec in args.fault or []:
            kind, _, count = spec.partition(":")
            self.faults.append({"kind": kind, "count": int(count or 1), "target": "any",
                                "retry_after": args.retry_after})

    def reset(self):
        with self.lock:
            self.records = []
            self.rec_seq = 0
            self.seq = 0
            self.faults = []
            self.by_status = {}
            self.by_fault = {}
            self.last_post = {}

    def take_fault(self, target):
        """The next queued fault for target, or None (under the lock)."""
        for f in self.faults:
            if f["target"] in ("any", target):
                f["count"] -= 1
                if f["count"] <= 0:
                    self.faults.remove(f)
                return f
        return None

    def paced_out(self, dest, now):
        """True when --enforce-pacing refuses this message (under the lock)."""
        if not self.args.enforce_pacing:
            return False
        last = self.last_post.get(dest)
        if last is not None and now - last < 1.0:
            return True
        self.last_post[dest] = now
        return False

    def record(self, rec):
        with self.lock:
            self.rec_seq += 1
            rec["seq"] = self.rec_seq
            self.records.append(rec)
            key = str(rec["status"])
            self.by_status[key] = self.by_status.get(key, 0) + 1
            if rec["fault"]:
                self.by_fault[rec["fault"]] = self.by_fault.get(rec["fault"], 0) + 1
            if self.record_file:
                self.record_file.write(json.dumps(rec) + "\n")
                self.record_file.flush()
        if not self.args.quiet:
            body = rec["body"]
            text = body.get("text") if isinstance(body, dict) else None
            blocks = body.get("blocks") if isinstance(body, dict) else None
            where = body.get("channel", "") if isinstance(body, dict) and rec["target"] == "api" else ""
            line = "%s %s -> %s%s" % (rec["method"], rec["path"], rec["status"],
                                      " [%s]" % rec["fault"] if rec["fault"] else "")
            if where:
                line += " %s" % where
            err = rec["response"] if rec["target"] == "webhook" and rec["status"] != 200 else None
            if rec["target"] == "api" and rec["response"]:
                try:
                    err = json.loads(rec["response"]).get("error")
                except ValueError:
                    err = None
            if err:
                line += " error=%s" % err
            if text is not None:
                line += " text=%s" % json.dumps(text, ensure_ascii=False)
            if blocks:
                line += " blocks=%d" % len(blocks) if isinstance(blocks, list) else " blocks=?"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "fake-slack"

    def log_message(self, fmt, *args):  # the per-request line is printed by Fake.record
        pass

    @property
    def fake(self):
        return self.server.fake

    def reply(self, status, ctype, text, extra=None):
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        return text

    def reply_json(self, status, obj, extra=None):
        return self.reply(status, "application/json; charset=utf-8", json.dumps(obj), extra)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    # ---- admin ----

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/_fake/requests":
            since = int(q.get("since", ["0"])[0])
            with self.fake.lock:
                recs = [r for r in self.fake.records if r["seq"] > since]
            self.reply_json(200, recs)
        elif url.path == "/_fake/stats":
            with self.fake.lock:
                st = {"total": len(self.fake.records), "by_status": dict(self.fake.by_status),
                      "by_fault": dict(self.fake.by_fault), "faults_queued": len(self.fake.faults)}
            self.reply_json(200, st)
        elif url.path == "/_fake/health":
            self.reply_json(200, {"ok": True})
        else:
            self.reply(404, "text/plain", "not found")

    def do_POST(self):
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            self.reply(413, "text/plain", "too large")
            return
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_fake/"):
            self.admin(path, raw)
        elif path.startswith("/services/"):
            self.webhook(path, raw)
        elif path == "/api/chat.postMessage":
            self.post_message(path, raw)
        else:
            resp = self.reply(404, "text/plain", "not found")
            self.save("other", path, raw, None, 404, None, resp)

    def admin(self, path, raw):
        try:
            cmd = json.loads(raw or b"{}")
        except ValueError:
            self.reply_json(400, {"error": "body is not JSON"})
            return
        if path == "/_fake/faults":
            with self.fake.lock:
                for f in cmd.get("faults", []):
                    self.fake.faults.append({
                        "kind": f["kind"], "count": int(f.get("count", 1)),
                        "target": f.get("target", "any"),
                        "retry_after": f.get("retry_after", self.fake.args.retry_after)})
                n = len(self.fake.faults)
            self.reply_json(200, {"ok": True, "queued": n})
        elif path == "/_fake/reset":
            self.fake.reset()
            self.reply_json(200, {"ok": True})
        else:
            self.reply(404, "text/plain", "not found")

    def save(self, target, path, raw, body, status, fault, response):
        self.fake.record({
            "seq": 0, "time": time.time(), "method": self.command, "path": path,
            "target": target, "headers": {k.lower(): v for k, v in self.headers.items()},
            "raw": raw.decode("utf-8", "replace"), "body": body, "status": status,
            "fault": fault, "response": response,
        })

    def fault_reply(self, target, f):
        """Answers an injected fault; returns (status, body sent) or None for drop."""
        kind = f["kind"]
        if kind == "drop":
            self.close_connection = True
            return None, None
        if kind == "rate_limit":
            extra = {"Retry-After": str(f.get("retry_after", 1))}
            if target == "webhook":
                return 429, self.reply(429, "text/html", "rate_limited", extra)
            return 429, self.reply_json(429, {"ok": False, "error": "ratelimited"}, extra)
        if kind == "server_error":
            if target == "webhook":
                return 500, self.reply(500, "text/html", "rollup_error")
            return 500, self.reply(500, "text/html", PAGE_500)
        if target == "webhook":
            status = WEBHOOK_STATUS.get(kind, 400)
            return status, self.reply(status, "text/html", kind)
        return 200, self.reply_json(200, {"ok": False, "error": kind})

    # ---- incoming webhooks ----

    def webhook(self, path, raw):
        now = time.time()
        body = None
        ctype = (self.headers.get("Content-Type") or "").lower()
        try:
            if ctype.startswith("application/x-www-form-urlencoded"):
                body = json.loads(urllib.parse.parse_qs(raw.decode())["payload"][0])
            else:
                body = json.loads(raw)
        except (ValueError, KeyError, UnicodeDecodeError):
            body = None
        known = WEBHOOK_PATH_RE.match(path) and (not self.fake.webhooks or path in self.fake.webhooks)
        with self.fake.lock:
            fault = self.fake.take_fault("webhook") if known else None
        status, resp, tag = None, None, fault["kind"] if fault else None
        if not known:
            status, resp = 404, self.reply(404, "text/html", "no_service")
        elif fault:
            status, resp = self.fault_reply("webhook", fault)
        elif not isinstance(body, dict):
            status, resp = 400, self.reply(400, "text/html", "invalid_payload")
        elif "blocks" in body and not isinstance(body["blocks"], list):
            status, resp = 400, self.reply(400, "text/html", "invalid_blocks")
        elif not body.get("text") and not body.get("blocks"):
            status, resp = 400, self.reply(400, "text/html", "no_text")
        else:
            with self.fake.lock:
                paced = self.fake.paced_out(path, now)
            if paced:
                tag = "pacing"
                status, resp = 429, self.reply(429, "text/html", "rate_limited",
                                               {"Retry-After": "1"})
            else:
                status, resp = 200, self.reply(200, "text/html", "ok")
        self.save("webhook", path, raw, body, status, tag, resp)

    # ---- Web API ----

    def token_ok(self, token):
        if self.fake.tokens:
            return token in self.fake.tokens
        return token.startswith("xox")

    def post_message(self, path, raw):
        now = time.time()
        ctype = (self.headers.get("Content-Type") or "").lower()
        warning = None
        body, token = None, None
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            token = auth[7:].strip()
        try:
            if ctype.startswith("application/json"):
                body = json.loads(raw)
                if "charset" not in ctype:
                    warning = "missing_charset"
            else:
                body = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
                token = token or body.get("token")
                if isinstance(body.get("blocks"), str):
                    body["blocks"] = json.loads(body["blocks"])
        except (ValueError, UnicodeDecodeError):
            body = None
        with self.fake.lock:
            fault = self.fake.take_fault("api")
        status, resp, tag = 200, None, fault["kind"] if fault else None
        if fault:
            status, resp = self.fault_reply("api", fault)
        elif not token:
            resp = self.reply_json(200, {"ok": False, "error": "not_authed"})
        elif not self.token_ok(token):
            resp = self.reply_json(200, {"ok": False, "error": "invalid_auth"})
        elif not isinstance(body, dict):
            resp = self.reply_json(200, {"ok": False, "error": "invalid_json"})
        elif not body.get("channel"):
            resp = self.reply_json(200, {"ok": False, "error": "channel_not_found"})
        elif self.fake.channels and body["channel"] not in self.fake.channels:
            resp = self.reply_json(200, {"ok": False, "error": "channel_not_found"})
        elif "blocks" in body and not isinstance(body["blocks"], list):
            resp = self.reply_json(200, {"ok": False, "error": "invalid_blocks"})
        elif not body.get("text") and not body.get("blocks"):
            resp = self.reply_json(200, {"ok": False, "error": "no_text"})
        else:
            with self.fake.lock:
                paced = self.fake.paced_out("api\n%s\n%s" % (token, body["channel"]), now)
                self.fake.seq += 1
                ts = "%d.%06d" % (int(now), self.fake.seq % 1000000)
            if paced:
                tag, status = "pacing", 429
                resp = self.reply_json(429, {"ok": False, "error": "ratelimited"},
                                       {"Retry-After": "1"})
            else:
                cid = channel_id(body["channel"])
                msg = {"type": "message", "subtype": "bot_message", "text": body.get("text", ""),
                       "ts": ts, "bot_id": "B0FAKEBOT1"}
                if body.get("blocks"):
                    msg["blocks"] = body["blocks"]
                if body.get("thread_ts"):
                    msg["thread_ts"] = body["thread_ts"]
                out = {"ok": True, "channel": cid, "ts": ts, "message": msg}
                if warning:
                    out["warning"] = warning
                    out["response_metadata"] = {"warnings": [warning]}
                resp = self.reply_json(200, out, {"X-Slack-Req-Id": hashlib.sha1(
                    ts.encode()).hexdigest()[:32]})
        self.save("api", path, raw, body, status, tag, resp)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        try:
            super().finish_request(request, client_address)
        except (ConnectionError, OSError):
            pass  # the client went away: nothing to answer


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Fake Slack: incoming webhooks and chat.postMessage")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", action="append", help="a valid bot token (repeatable)")
    ap.add_argument("--webhook", action="append", help="a webhook path that exists (repeatable)")
    ap.add_argument("--channel", action="append", help="a channel that exists (repeatable)")
    ap.add_argument("--fault", action="append", help="KIND[:COUNT] for the next requests")
    ap.add_argument("--retry-after", type=int, default=1, help="Retry-After of rate_limit faults")
    ap.add_argument("--enforce-pacing", action="store_true",
                    help="429 for a second message to one destination within 1 s")
    ap.add_argument("--record", help="append every request as a JSON line to FILE")
    ap.add_argument("--quiet", action="store_true", help="print only the listening line")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    fake = Fake(args)
    srv = Server((args.host, args.port), Handler)
    srv.fake = fake
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    sys.stdout.write("listening %s:%d\n" % (args.host, srv.server_address[1]))
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    srv.shutdown()
    srv.server_close()
    if fake.record_file:
        fake.record_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
