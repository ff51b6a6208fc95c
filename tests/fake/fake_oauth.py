#!/usr/bin/env python3
"""Fake OAuth 2.0 authorization server for promptd's tests: the token
endpoint's refresh-token grant (RFC 6749 section 6) with the answers and
error bodies of section 5, and a token-introspection endpoint (RFC 7662)
that Dovecot's oauth2 passdb can be pointed at, so XOAUTH2 logins are
checked against tokens this server issued.

Usage:
  fake_oauth.py --port 0 [--client-id ID] [--client-secret S]
                [--refresh-token T[=USER]]... [--expires-in S]
Prints `listening HOST:PORT` once ready.

Endpoints:
  POST /token        form body: grant_type=refresh_token, refresh_token,
                     client_id, client_secret (or HTTP Basic).  200
                     {"access_token", "token_type": "Bearer", "expires_in",
                     "scope"}; 400 {"error": "invalid_grant" |
                     "unsupported_grant_type" | "invalid_request"}; 401
                     {"error": "invalid_client"}.
  GET|POST /introspect?token=T (or form token=T, or Authorization: Bearer T)
                     {"active": true, "username": USER, "email": USER,
                     "exp": ...} for a live token this server issued, else
                     {"active": false}.
  GET  /_fake/stats  {"refreshes": N, "introspections": N, "by_status": {...}}
  POST /_fake/fault  {"kind": "invalid_grant" | "server_error" | "drop", "count": N}
"""

import argparse
import base64
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.refresh = {}
        for spec in args.refresh_token or ["rt-test=user@example.test"]:
            tok, _, user = spec.partition("=")
            self.refresh[tok] = user or "user@example.test"
        self.expires_in = args.expires_in
        self.tokens = {}  # access token -> (user, expiry)
        self.refreshes = 0
        self.introspections = 0
        self.by_status = {}
        self.faults = []
        self.lock = threading.Lock()
        self.seq = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, doc):
        body = json.dumps(doc).encode()
        with self.server.st.lock:
            key = str(status)
            self.server.st.by_status[key] = self.server.st.by_status.get(key, 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path == "/_fake/stats":
            st = self.server.st
            with st.lock:
                doc = {"refreshes": st.refreshes, "introspections": st.introspections,
                       "by_status": dict(st.by_status)}
            return self.reply(200, doc)
        if u.path == "/introspect":
            q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
            return self.introspect(q.get("token") or self.bearer())
        self.reply(404, {"error": "not_found"})

    def bearer(self):
        a = self.headers.get("Authorization") or ""
        return a[7:] if a.lower().startswith("bearer ") else None

    def introspect(self, token):
        st = self.server.st
        with st.lock:
            st.introspections += 1
            hit = st.tokens.get(token or "")
        if hit and hit[1] > time.time():
            return self.reply(200, {"active": True, "username": hit[0], "email": hit[0],
                                    "exp": int(hit[1]), "token_type": "Bearer"})
        self.reply(200, {"active": False})

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        st = self.server.st
        if u.path == "/_fake/fault":
            n = int(self.headers.get("Content-Length") or 0)
            doc = json.loads(self.rfile.read(n) or b"{}")
            with st.lock:
                st.faults.extend([doc["kind"]] * int(doc.get("count", 1)))
            return self.reply(200, {"ok": True})
        if u.path == "/introspect":
            f = self.form()
            return self.introspect(f.get("token") or self.bearer())
        if u.path != "/token":
            return self.reply(404, {"error": "not_found"})
        f = self.form()
        with st.lock:
            st.refreshes += 1
            fault = st.faults.pop(0) if st.faults else None
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault == "server_error":
            return self.reply(500, {"error": "server_error",
                                    "error_description": "injected fault"})
        cid, secret = f.get("client_id"), f.get("client_secret")
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if f.get("grant_type") != "refresh_token":
            return self.reply(400, {"error": "unsupported_grant_type"})
        if cid != st.client_id or (st.client_secret and secret != st.client_secret):
            return self.reply(401, {"error": "invalid_client",
                                    "error_description": "The OAuth client was not found."})
        user = st.refresh.get(f.get("refresh_token", ""))
        if fault == "invalid_grant" or not user:
            return self.reply(400, {"error": "invalid_grant",
                                    "error_description": "Token has been expired or revoked."})
        with st.lock:
            st.seq += 1
            token = "at-%d-%s" % (st.seq, base64.urlsafe_b64encode(user.encode()).decode())
            st.tokens[token] = (user, time.time() + st.expires_in)
        self.reply(200, {"access_token": token, "token_type": "Bearer",
                         "expires_in": st.expires_in, "scope": f.get("scope") or "mail"})


def main(argv=None):
    p = argparse.ArgumentParser(description="Fake OAuth 2.0 token and introspection endpoints")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--client-id", default="promptd-test")
    p.add_argument("--client-secret", default="")
    p.add_argument("--refresh-token", action="append")
    p.add_argument("--expires-in", type=int, default=3599)
    args = p.parse_args(argv)
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    srv.st = State(args)
    host, port = srv.server_address[:2]
    print("listening %s:%d" % (host, port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
