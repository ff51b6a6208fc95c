#!/usr/bin/env python3
"""Fake Google for promptd's tests: the OAuth 2.0 token endpoint (service
account JWT bearer grant with a real RS256 check, and the refresh-token
grant), Forms (forms.get, forms.responses.list/get) and Sheets
(spreadsheets.values.get/append), answering with Google's response and
error shapes.  Standard library only: the RS256 check is the RSA public-key
operation and a comparison with the PKCS#1 v1.5 DigestInfo encoding.

Usage:
  fake_google.py --port 0
      [--client-email EMAIL --public-key-n HEX [--public-key-e N]]
      [--audience URL]            JWT aud to accept (default: this /token URL)
      [--delegate USER]...        subjects a service account may impersonate
      [--client-id ID --client-secret S --refresh-token T]...
      [--expires-in S] [--max-skew S]
Prints `listening HOST:PORT` once ready.  `--public-key-n` takes the hex
modulus as `openssl rsa -noout -modulus` prints it ("Modulus=" optional).

Token endpoint: POST /token (form body)
  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
      header alg RS256; signature checked with the public key; iss = the
      client email; aud = the audience; scope present; iat not in the future
      and exp not in the past (beyond --max-skew), exp - iat <= 3600; sub
      (when present) among --delegate.
  grant_type=refresh_token&refresh_token&client_id&client_secret
  200 {"access_token", "expires_in", "token_type": "Bearer"}; errors as
  Google sends them: 400 {"error": "invalid_grant", "error_description"},
  401 {"error": "invalid_client" | "unauthorized_client", ...},
  400 {"error": "invalid_scope" | "unsupported_grant_type", ...}.

APIs, all needing `Authorization: Bearer <a token issued here>` (401
UNAUTHENTICATED otherwise, 403 PERMISSION_DENIED without a fitting scope):
  GET  /v1/forms/{formId}
  GET  /v1/forms/{formId}/responses?filter=timestamp > T|>= T&pageSize&pageToken
       -> {"responses": [...], "nextPageToken"} (formId left out of list
       items, as Google does; ordered by lastSubmittedTime)
  GET  /v1/forms/{formId}/responses/{responseId}
  GET  /v4/spreadsheets/{id}/values/{range}?majorDimension&valueRenderOption
       -> {"range", "majorDimension", "values"} (values absent when empty)
  POST /v4/spreadsheets/{id}/values/{range}:append?valueInputOption=RAW|
       USER_ENTERED&insertDataOption=OVERWRITE|INSERT_ROWS
       body {"majorDimension": "ROWS", "values": [[...]]}
       -> {"spreadsheetId", "tableRange", "updates": {"spreadsheetId",
       "updatedRange", "updatedRows", "updatedColumns", "updatedCells"}}
  Errors: {"error": {"code", "message", "status"}}.

Admin (no token needed):
  POST /_fake/forms                       a Form JSON (formId required)
  POST /_fake/forms/{formId}/responses    {"responses": [FormResponse...]}
                                          responseId, createTime and
                                          lastSubmittedTime filled if absent
  POST /_fake/sheets/{id}                 {"sheets": {"Title": [[row]...]}}
  GET  /_fake/sheets/{id}                 the same shape, read back
  POST /_fake/fault  {"kind": "429" | "503" | "invalid_grant" | "drop",
                      "count": N, "target": "api" | "token",
                      "retry_after": S}   the next N requests to target fail
  POST /_fake/expire_tokens               every issued token stops working
  POST /_fake/clock  {"skew_s": S}        the token endpoint's clock runs S
                                          seconds ahead (negative: behind)
  GET  /_fake/stats  {"token_requests", "jwt_grants", "refresh_grants",
                      "issued", "api_requests", "by_status", "last_claims",
                      "appends": [{"range", "valueInputOption",
                      "insertDataOption"}]}
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# DER of DigestInfo { sha256, NULL } up to the 32-byte digest (RFC 8017 9.2).
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
SHORT_LIVED = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
               "reasonable timeframe. Check your iat and exp values in the JWT claim.")
DELEGATION = ("Client is unauthorized to retrieve access tokens using this method, or client "
              "not authorized for any of the scopes requested.")
UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access "
                   "token, login cookie or other valid authentication credential. See "
                   "https://developers.google.com/identity/sign-in/web/devconsole-project.")
# Scopes that open each API (any one suffices), as Google's reference lists them.
SCOPES = {
    "forms": ["https://www.googleapis.com/auth/forms.body",
              "https://www.googleapis.com/auth/forms.body.readonly",
              "https://www.googleapis.com/auth/forms.responses.readonly",
              "https://www.googleapis.com/auth/drive",
              "https://www.googleapis.com/auth/drive.readonly",
              "https://www.googleapis.com/auth/drive.file"],
    "sheets": ["https://www.googleapis.com/auth/spreadsheets",
               "https://www.googleapis.com/auth/spreadsheets.readonly",
               "https://www.googleapis.com/auth/drive",
               "https://www.googleapis.com/auth/drive.readonly",
               "https://www.googleapis.com/auth/drive.file"],
}
WRITE_SCOPES = ["https://www.googleapis.com/auth/spreadsheets",
                "https://www.googleapis.com/auth/drive",
                "https://www.googleapis.com/auth/drive.file"]


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def rs256_ok(n, e, signing_input, sig):
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 8.2.2)."""
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_PREFIX + hashlib.sha256(signing_input).digest()
    want = b"\x00\x01" + b"\xff" * (k - 3 - len(t)) + b"\x00" + t
    return hmac.compare_digest(em, want)


def rfc3339(t):
    """Seconds since the epoch -> Google's Zulu form with microseconds."""
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(s):
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z", s)
    if not m:
        return None
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    base = base.replace(tzinfo=datetime.timezone.utc).timestamp()
    # Nanoseconds kept as an integer pair so ">" and ">=" compare exactly.
    frac = int((m.group(2) or ".0")[1:].ljust(9, "0"))
    return (int(base), frac)


def col_name(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def col_index(s):
    n = 0
    for ch in s.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


class ApiError(Exception):
    def __init__(self, code, message, status):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def bad_range(r):
    return ApiError(400, "Unable to parse range: %s" % r, "INVALID_ARGUMENT")


class Sheet:
    ROWS, COLS = 1000, 26  # a new Google sheet's grid

    def __init__(self, rows):
        self.rows = [list(r) for r in rows]


class State:
    def __init__(self, args):
        self.args = args
        self.email = args.client_email
        n = (args.public_key_n or "").strip()
        if n.lower().startswith("modulus="):
            n = n[8:]
        self.n = int(n, 16) if n else None
        self.e = args.public_key_e
        self.audience = args.audience
        self.delegates = set(args.delegate or [])
        self.client_id, self.client_secret = args.client_id, args.client_secret
        self.refresh_tokens = set(args.refresh_token or [])
        self.expires_in = args.expires_in
        self.max_skew = args.max_skew
        self.skew = 0
        self.tokens = {}  # token -> {"exp", "scope", "who"}
        self.forms, self.responses, self.sheets = {}, {}, {}
        self.faults = []  # (target, kind, retry_after)
        self.stats = {"token_requests": 0, "jwt_grants": 0, "refresh_grants": 0, "issued": 0,
                      "api_requests": 0, "by_status": {}, "last_claims": None, "appends": []}
        self.seq = 0
        self.lock = threading.Lock()

    def now(self):
        return time.time() + self.skew

    def fault(self, target):
        with self.lock:
            for i, f in enumerate(self.faults):
                if f[0] == target:
                    return self.faults.pop(i)
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    @property
    def st(self):
        return self.server.st

    def reply(self, status, doc, headers=()):
        body = json.dumps(doc).encode()
        with self.st.lock:
            key = str(status)
            self.st.stats["by_status"][key] = self.st.stats["by_status"].get(key, 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def api_error(self, err, headers=()):
        self.reply(err.code, {"error": {"code": err.code, "message": err.message,
                                        "status": err.status}}, headers)

    def body(self):
        # Read once, up front in route(): an early answer (a fault, a 401)
        # must not leave the body on a keep-alive connection, where it would
        # prefix the next request.
        if getattr(self, "_body", None) is None:
            n = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(n) if n else b""
        return self._body

    def json_body(self):
        raw = self.body()
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")

    def drop(self):
        self.close_connection = True
        self.connection.shutdown(2)

    # ---- routing ----

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("POST")

    def route(self, method):
        self._body = None
        self.body()
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/_fake/"):
                return self.admin(method, path[len("/_fake/"):])
            if path == "/token" and method == "POST":
                return self.token()
            return self.api(method, path, q)
        except ApiError as err:
            self.api_error(err)

    # ---- token endpoint ----

    def oauth_error(self, status, error, desc):
        self.reply(status, {"error": error, "error_description": desc})

    def token(self):
        st = self.st
        raw = self.body().decode("utf-8", "replace")
        f = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        with st.lock:
            st.stats["token_requests"] += 1
        fault = st.fault("token")
        if fault:
            kind = fault[1]
            if kind == "drop":
                return self.drop()
            if kind == "invalid_grant":
                return self.oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            if kind == "429":
                return self.oauth_error(429, "rate_limit_exceeded", "Rate limit exceeded.")
            return self.oauth_error(503, "temporarily_unavailable",
                                    "The service is currently unavailable.")
        grant = f.get("grant_type")
        if grant == JWT_BEARER:
            return self.jwt_grant(f.get("assertion") or "")
        if grant == "refresh_token":
            return self.refresh_grant(f)
        self.oauth_error(400, "unsupported_grant_type", "Invalid grant_type: %s" % (grant or ""))

    def jwt_grant(self, assertion):
        st = self.st
        with st.lock:
            st.stats["jwt_grants"] += 1
        parts = assertion.split(".")
        if len(parts) != 3:
            return self.oauth_error(400, "invalid_request", "Invalid JWT: malformed assertion.")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return self.oauth_error(400, "invalid_grant", "Invalid JWT: undecodable part.")
        with st.lock:
            st.stats["last_claims"] = claims
        if header.get("alg") != "RS256":
            return self.oauth_error(400, "invalid_grant", "Invalid JWT: alg must be RS256.")
        if st.n is None or claims.get("iss") != st.email:
            return self.oauth_error(400, "invalid_grant", "Invalid grant: account not found")
        if not rs256_ok(st.n, st.e, (parts[0] + "." + parts[1]).encode(), sig):
            return self.oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != st.audience:
            return self.oauth_error(400, "invalid_grant",
                                    "Invalid JWT: Failed audience check. The expected value was "
                                    "%s but the actual value was %s" %
                                    (st.audience, claims.get("aud")))
        now = st.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (not isinstance(iat, int) or not isinstance(exp, int) or iat > now + st.max_skew
                or exp < now - st.max_skew or exp - iat > 3600 or exp <= iat):
            return self.oauth_error(400, "invalid_grant", SHORT_LIVED)
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.strip():
            return self.oauth_error(400, "invalid_scope",
                                    "Invalid OAuth scope or ID token audience provided.")
        sub = claims.get("sub")
        if sub is not None and sub not in st.delegates:
            return self.oauth_error(401, "unauthorized_client", DELEGATION)
        self.issue(scope.split(), sub or st.email)

    def refresh_grant(self, f):
        st = self.st
        with st.lock:
            st.stats["refresh_grants"] += 1
        if not st.client_id or f.get("client_id") != st.client_id or \
                f.get("client_secret") != st.client_secret:
            return self.oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if f.get("refresh_token") not in st.refresh_tokens:
            return self.oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        scope = (f.get("scope") or " ".join(sorted(set(SCOPES["forms"] + SCOPES["sheets"]))))
        self.issue(scope.split(), "user:" + st.client_id)

    def issue(self, scopes, who):
        st = self.st
        with st.lock:
            st.seq += 1
            st.stats["issued"] += 1
            token = "ya29.fake-%d-%s" % (st.seq, hashlib.sha256(
                ("%s/%d" % (who, st.seq)).encode()).hexdigest()[:16])
            st.tokens[token] = {"exp": time.time() + st.expires_in, "scopes": set(scopes),
                                "who": who}
        self.reply(200, {"access_token": token, "expires_in": st.expires_in,
                         "token_type": "Bearer"})

    # ---- APIs ----

    def authorize(self, api, write):
        a = self.headers.get("Authorization") or ""
        token = a[7:] if a.lower().startswith("bearer ") else None
        with self.st.lock:
            t = self.st.tokens.get(token or "")
        if not t or t["exp"] <= time.time():
            raise ApiError(401, UNAUTHENTICATED, "UNAUTHENTICATED")
        allowed = WRITE_SCOPES if write else SCOPES[api]
        if not t["scopes"] & set(allowed):
            raise ApiError(403, "Request had insufficient authentication scopes.",
                           "PERMISSION_DENIED")

    def api(self, method, path, q):
        st = self.st
        with st.lock:
            st.stats["api_requests"] += 1
        m = re.fullmatch(r"/v1/forms/([^/]+)(/responses(?:/([^/]+))?)?", path)
        s = re.fullmatch(r"/v4/spreadsheets/([^/]+)/values/(.+)", path)
        if not (m and method == "GET") and not s:
            raise ApiError(404, "Method not found.", "NOT_FOUND")
        append = bool(s) and s.group(2).endswith(":append")
        if s and (method == "POST") != append:
            raise ApiError(404, "Method not found.", "NOT_FOUND")
        try:
            self.authorize("forms" if m else "sheets", append)
        except ApiError as err:
            hdr = [("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", '
                    'error="invalid_token"')] if err.code == 401 else []
            return self.api_error(err, hdr)
        fault = st.fault("api")
        if fault:
            if fault[1] == "drop":
                return self.drop()
            if fault[1] == "429":
                svc = "forms.googleapis.com" if m else "sheets.googleapis.com"
                return self.api_error(ApiError(
                    429, "Quota exceeded for quota metric 'Read requests' and limit 'Read "
                    "requests per minute per user' of service '%s' for consumer "
                    "'project_number:000000000000'." % svc, "RESOURCE_EXHAUSTED"),
                    [("Retry-After", str(fault[2]))] if fault[2] else [])
            return self.api_error(ApiError(503, "The service is currently unavailable.",
                                           "UNAVAILABLE"))
        if m:
            form_id = urllib.parse.unquote(m.group(1))
            if not m.group(2):
                return self.reply(200, self.form(form_id))
            if m.group(3):
                return self.reply(200, self.response(form_id, urllib.parse.unquote(m.group(3))))
            return self.reply(200, self.list_responses(form_id, q))
        sid = urllib.parse.unquote(s.group(1))
        rng = urllib.parse.unquote(s.group(2)[:-len(":append")] if append else s.group(2))
        if append:
            return self.reply(200, self.values_append(sid, rng, q, self.json_body()))
        return self.reply(200, self.values_get(sid, rng, q))

    # ---- Forms ----

    def form(self, form_id):
        with self.st.lock:
            f = self.st.forms.get(form_id)
        if f is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return f

    def response(self, form_id, rid):
        self.form(form_id)
        with self.st.lock:
            for r in self.st.responses.get(form_id, []):
                if r["responseId"] == rid:
                    return r
        raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")

    def list_responses(self, form_id, q):
        self.form(form_id)
        flt = q.get("filter", "")
        cut = None
        if flt.strip():
            fm = re.fullmatch(r"\s*timestamp\s*(>=|>)\s*(\S+)\s*", flt)
            t = parse_rfc3339(fm.group(2)) if fm else None
            if t is None:
                raise ApiError(400, "Invalid filter: %s" % flt, "INVALID_ARGUMENT")
            cut = (fm.group(1), t)
        try:
            size = int(q.get("pageSize") or 0)
        except ValueError:
            raise ApiError(400, "Invalid value at 'page_size' (TYPE_INT32)", "INVALID_ARGUMENT")
        if size < 0:
            raise ApiError(400, "page_size must not be negative", "INVALID_ARGUMENT")
        size = min(size or 5000, 5000)
        offset = 0
        if q.get("pageToken"):
            try:
                tok = json.loads(b64url_decode(q["pageToken"]))
                offset = int(tok["offset"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise ApiError(400, "Invalid page token.", "INVALID_ARGUMENT")
            if tok.get("filter") != flt:
                raise ApiError(400, "The filter must be the same as in the request that "
                               "returned the page token.", "INVALID_ARGUMENT")
        with self.st.lock:
            rs = list(self.st.responses.get(form_id, []))
        rs.sort(key=lambda r: parse_rfc3339(r["lastSubmittedTime"]))
        if cut:
            op, t = cut
            rs = [r for r in rs if (parse_rfc3339(r["lastSubmittedTime"]) > t if op == ">"
                                    else parse_rfc3339(r["lastSubmittedTime"]) >= t)]
        page = rs[offset:offset + size]
        doc = {}
        if page:
            doc["responses"] = [{k: v for k, v in r.items() if k != "formId"} for r in page]
        if offset + size < len(rs):
            doc["nextPageToken"] = base64.urlsafe_b64encode(json.dumps(
                {"offset": offset + size, "filter": flt}).encode()).decode().rstrip("=")
        return doc

    # ---- Sheets ----

    def parse_range(self, sid, rng):
        with self.st.lock:
            book = self.st.sheets.get(sid)
        if book is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        quoted = re.fullmatch(r"'((?:[^']|'')+)'(?:!(.*))?", rng)
        if quoted:
            title, cells = quoted.group(1).replace("''", "'"), quoted.group(2) or ""
        elif "!" in rng:
            title, cells = rng.split("!", 1)
        elif rng in book:
            title, cells = rng, ""
        else:
            title, cells = next(iter(book)), rng
        if title not in book:
            raise bad_range(rng)
        c = re.fullmatch(r"([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?", cells)
        if not c or (cells and not (c.group(1) or c.group(2))):
            raise bad_range(rng)
        c0 = col_index(c.group(1)) if c.group(1) else 0
        r0 = int(c.group(2)) - 1 if c.group(2) else 0
        if cells and c.group(3) is None and c.group(4) is None:
            c1, r1 = c0, r0  # a single cell
        else:
            c1 = col_index(c.group(3)) if c.group(3) else Sheet.COLS - 1
            r1 = int(c.group(4)) - 1 if c.group(4) else Sheet.ROWS - 1
        if c0 > c1 or r0 > r1 or r0 < 0:
            raise bad_range(rng)
        return book, title, (c0, r0, c1, r1)

    @staticmethod
    def a1(title, c0, r0, c1, r1):
        t = title if re.fullmatch(r"[A-Za-z0-9_]+", title) else \
            "'" + title.replace("'", "''") + "'"
        return "%s!%s%d:%s%d" % (t, col_name(c0), r0 + 1, col_name(c1), r1 + 1)

    @staticmethod
    def formatted(v):
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    def values_get(self, sid, rng, q):
        book, title, (c0, r0, c1, r1) = self.parse_range(sid, rng)
        render = q.get("valueRenderOption", "FORMATTED_VALUE")
        with self.st.lock:
            rows = [list(r[c0:c1 + 1]) for r in book[title].rows[r0:r1 + 1]]
        rows = [[self.formatted(v) if render == "FORMATTED_VALUE" else v for v in r]
                for r in rows]
        # Google trims trailing empty cells and rows.
        for r in rows:
            while r and r[-1] in ("", None):
                r.pop()
        while rows and not rows[-1]:
            rows.pop()
        major = q.get("majorDimension", "ROWS")
        if major == "COLUMNS":
            width = max((len(r) for r in rows), default=0)
            rows = [[r[i] if i < len(r) else "" for r in rows] for i in range(width)]
            for r in rows:
                while r and r[-1] == "":
                    r.pop()
        doc = {"range": self.a1(title, c0, r0, c1, r1), "majorDimension": major}
        if rows:
            doc["values"] = rows
        return doc

    @staticmethod
    def user_entered(v):
        if isinstance(v, str):
            if re.fullmatch(r"-?\d+", v):
                return int(v)
            if re.fullmatch(r"-?\d*\.\d+", v):
                return float(v)
            if v.upper() in ("TRUE", "FALSE"):
                return v.upper() == "TRUE"
        return v

    def values_append(self, sid, rng, q, body):
        book, title, (c0, r0, c1, r1) = self.parse_range(sid, rng)
        vio = q.get("valueInputOption")
        if vio not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "'valueInputOption' is required but not specified"
                           if not vio else "Invalid valueInputOption: %s" % vio,
                           "INVALID_ARGUMENT")
        ido = q.get("insertDataOption", "OVERWRITE")
        if ido not in ("OVERWRITE", "INSERT_ROWS"):
            raise ApiError(400, "Invalid insertDataOption: %s" % ido, "INVALID_ARGUMENT")
        values = body.get("values")
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise ApiError(400, "Invalid values: a list of rows is required", "INVALID_ARGUMENT")
        if body.get("majorDimension", "ROWS") == "COLUMNS":
            width = max((len(r) for r in values), default=0)
            values = [[r[i] if i < len(r) else "" for r in values] for i in range(width)]
        if vio == "USER_ENTERED":
            values = [[self.user_entered(v) for v in r] for r in values]
        with self.st.lock:
            sheet = book[title]
            # The table: from the range's first row down to the last row
            # holding anything in the range's columns.
            last = -1
            for i in range(r0, len(sheet.rows)):
                if any(v not in ("", None) for v in sheet.rows[i][c0:c1 + 1]):
                    last = i
            start = last + 1 if last >= 0 else r0
            width = max((len(r) for r in values), default=0)
            for i, row in enumerate(values):
                at = start + i
                while len(sheet.rows) <= at:
                    sheet.rows.append([])
                if ido == "INSERT_ROWS" and at < len(sheet.rows) and any(sheet.rows[at]):
                    sheet.rows.insert(at, [])
                dest = sheet.rows[at]
                while len(dest) < c0 + len(row):
                    dest.append("")
                dest[c0:c0 + len(row)] = row
            self.st.stats["appends"].append({"spreadsheetId": sid, "range": rng,
                                             "valueInputOption": vio, "insertDataOption": ido})
            table_width = max([len(r) - c0 for r in sheet.rows[r0:last + 1]] + [0])
        doc = {"spreadsheetId": sid}
        if last >= 0:
            doc["tableRange"] = self.a1(title, c0, r0, c0 + max(table_width, 1) - 1, last)
        updates = {"spreadsheetId": sid}
        if values and width:
            updates.update({
                "updatedRange": self.a1(title, c0, start, c0 + width - 1, start + len(values) - 1),
                "updatedRows": len(values), "updatedColumns": width,
                "updatedCells": sum(len(r) for r in values)})
        doc["updates"] = updates
        return doc

    # ---- admin ----

    def admin(self, method, what):
        st = self.st
        if what == "stats" and method == "GET":
            with st.lock:
                doc = json.loads(json.dumps(st.stats))
            return self.reply(200, doc)
        if method == "GET":
            m = re.fullmatch(r"sheets/([^/]+)", what)
            if m:
                sid = urllib.parse.unquote(m.group(1))
                with st.lock:
                    book = st.sheets.get(sid)
                    doc = {"sheets": {t: [list(r) for r in s.rows] for t, s in book.items()}} \
                        if book is not None else None
                if doc is None:
                    raise ApiError(404, "no such spreadsheet", "NOT_FOUND")
                return self.reply(200, doc)
            raise ApiError(404, "no such admin endpoint", "NOT_FOUND")
        doc = self.json_body()
        if what == "forms":
            fid = doc.get("formId")
            if not fid:
                raise ApiError(400, "formId is required", "INVALID_ARGUMENT")
            doc.setdefault("revisionId", "00000001")
            doc.setdefault("responderUri",
                           "https://docs.google.com/forms/d/e/%s/viewform" % fid)
            doc.setdefault("info", {"title": fid, "documentTitle": fid})
            with st.lock:
                st.forms[fid] = doc
                st.responses.setdefault(fid, [])
            return self.reply(200, {"ok": True})
        m = re.fullmatch(r"forms/([^/]+)/responses", what)
        if m:
            fid = urllib.parse.unquote(m.group(1))
            with st.lock:
                if fid not in st.forms:
                    raise ApiError(404, "seed the form first", "NOT_FOUND")
                for r in doc.get("responses", []):
                    st.seq += 1
                    now = rfc3339(time.time())
                    r.setdefault("responseId", "ACYDBN%08d" % st.seq)
                    r.setdefault("createTime", r.get("lastSubmittedTime", now))
                    r.setdefault("lastSubmittedTime", r["createTime"])
                    r.setdefault("answers", {})
                    r["formId"] = fid
                    st.responses[fid].append(r)
            return self.reply(200, {"ok": True})
        m = re.fullmatch(r"sheets/([^/]+)", what)
        if m:
            sid = urllib.parse.unquote(m.group(1))
            sheets = doc.get("sheets") or {"Sheet1": []}
            with st.lock:
                st.sheets[sid] = {t: Sheet(rows) for t, rows in sheets.items()}
            return self.reply(200, {"ok": True})
        if what == "fault":
            kind = str(doc.get("kind", ""))
            if kind not in ("429", "503", "invalid_grant", "drop"):
                raise ApiError(400, "kind: 429, 503, invalid_grant or drop", "INVALID_ARGUMENT")
            target = doc.get("target", "token" if kind == "invalid_grant" else "api")
            with st.lock:
                st.faults.extend([(target, kind, int(doc.get("retry_after", 0)))] *
                                 int(doc.get("count", 1)))
            return self.reply(200, {"ok": True})
        if what == "expire_tokens":
            with st.lock:
                for t in st.tokens.values():
                    t["exp"] = 0
            return self.reply(200, {"ok": True})
        if what == "clock":
            with st.lock:
                st.skew = int(doc.get("skew_s", 0))
            return self.reply(200, {"ok": True})
        raise ApiError(404, "no such admin endpoint", "NOT_FOUND")


def main(argv=None):
    p = argparse.ArgumentParser(description="Fake Google token endpoint, Forms and Sheets")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--client-email")
    p.add_argument("--public-key-n")
    p.add_argument("--public-key-e", type=int, default=65537)
    p.add_argument("--audience")
    p.add_argument("--delegate", action="append")
    p.add_argument("--client-id")
    p.add_argument("--client-secret", default="")
    p.add_argument("--refresh-token", action="append")
    p.add_argument("--expires-in", type=int, default=3599)
    p.add_argument("--max-skew", type=int, default=60)
    args = p.parse_args(argv)
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    host, port = srv.server_address[:2]
    if not args.audience:
        args.audience = "http://%s:%d/token" % (host, port)
    srv.st = State(args)
    print("listening %s:%d" % (host, port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
