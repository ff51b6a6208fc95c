#!/usr/bin/env python3
"""Fake OpenAI Chat Completions server for promptd's tests and benchmarks.

Standard library only (python3-jsonschema is imported only with --validate).
An asyncio protocol with a small HTTP/1.1 parser (keep-alive, Content-Length
bodies, Expect: 100-continue; no chunked request bodies), so that it keeps up
with a benchmark of well over a thousand requests per second.

Usage:
  fake_openai.py --port 0 [--host H] [--latency-ms N] [--latency-jitter-ms N]
                 [--seed S] [--validate] [--record FILE] [--key KEY]
                 [--error-rate F] [--timeout-rate F] [--malformed-rate F]
                 [--quota-exceeded] [--ratelimit-requests N]
                 [--ratelimit-tokens N] [--ratelimit-enforce]
                 [--max-records N]
Prints `listening 127.0.0.1:PORT` once ready; SIGTERM/SIGINT stop it (exit 0).

Endpoints:
  POST <any prefix>/chat/completions   e.g. /v1/chat/completions, or Azure's
       /openai/deployments/NAME/chat/completions?api-version=... (the Azure
       form authenticates with `api-key:`, the others with
       `Authorization: Bearer`; only checked when --key is given).
  GET  <any prefix>/models                a short model list (key checked as above)
  GET  /_fake/config, POST /_fake/config   read / change the settings below
  GET  /_fake/requests[?since=SEQ]         recorded requests (JSON array)
  GET  /_fake/stats                        counts per status and fault
  POST /_fake/reset                        clear records, stats, counters
  GET  /_fake/health                       {"ok": true}

Settings (flags at start; JSON names for POST /_fake/config): error_rate,
timeout_rate, malformed_rate (fractions 0..1, one seeded draw per request),
quota_exceeded (bool), latency_ms, latency_jitter_ms, ratelimit_requests,
ratelimit_tokens (per minute), ratelimit_enforce (bool), hang_ms (how long a
"timeout" request is held before the fake closes the connection itself;
default 600000), seed (re-seeds the RNG).

Replies (deterministic: a function of the request):
  model        the requested model, known aliases as their dated snapshot
               ("gpt-4o-mini" -> "gpt-4o-mini-2024-07-18"); others echoed;
               Azure requests without "model" use the deployment name.
  content      plain requests: "Fake reply <8 hex digits> to: <last user message>";
               response_format json_schema: a JSON document conforming to the
               schema (every property of an object, integers within
               minimum/maximum, enum, const, string formats and lengths,
               arrays with minItems, anyOf/oneOf first branch, allOf merged,
               $ref into $defs/definitions; "pattern" is not honoured);
               json_object: {"reply": "..."}.
  usage        prompt_tokens = ceil(chars / 4) over the text of all messages
               (at least 1); completion_tokens = ceil(len(reply) / 4) per
               choice; cached_tokens = prompt_tokens rounded down to 128 when
               a prompt of 1,024+ tokens is seen again. max_completion_tokens
               (or max_tokens) caps the reply: content cut, finish "length".
  headers      content-type, x-request-id "req_...", openai-processing-ms,
               openai-version, x-ratelimit-{limit,remaining,reset}-{requests,
               tokens}: a bucket per minute refilling continuously, charged 1
               request and prompt_tokens + max_completion_tokens tokens; resets
               formatted like the API ("6ms", "1.5s", "6m0s").

Errors, with the API's bodies ({"error": {message, type, param, code}}):
  401 wrong key: invalid_request_error / invalid_api_key (key masked);
      missing key: the API's "You didn't provide an API key" (code null)
  400 body not JSON, or (--validate) not a CreateChatCompletionRequest:
      invalid_request_error with the validation message; recorded "errors"
  429 quota_exceeded: type and code insufficient_quota, no retry headers
  429 injected or enforced rate limit: code rate_limit_exceeded, with
      retry-after-ms and retry-after (seconds, at least 1) headers
  500 server_error; 503 server_error, half of them with x-should-retry: true
  timeout: no answer; the fake holds the request until the client closes the
      connection (or hang_ms passes, then it closes it), leaking nothing
  malformed: 200 with a truncated or broken JSON body (Content-Length right)
Order of checks: auth, JSON, --validate, quota, rate limit, injected fault.
One seeded draw per request picks the fault: timeout below timeout_rate,
then error_rate (429/500/503 in equal shares), then malformed_rate.

Magic markers (in user messages):
  [[fake:refuse]]           last user message: message.refusal, content null
  [[fake:finish-length]]    last user message: finish_reason "length", the
                            content cut to half (so JSON replies are truncated)
  [[fake:invalid-json]]     the repair-turn rule: the reply does not conform
                            (first required property left out; or a value of
                            the wrong type) while the first user message that
                            carries the marker is the last user message; as
                            soon as any user message follows it (the client's
                            repair turn) the reply conforms.
  [[fake:invalid-json-always]]  anywhere: the reply never conforms
  [[fake:fault=KIND]]       last user message: this request gets fault KIND
  [[fake:fail-first=N:KIND]] last user message: the first N requests with
                            this exact body get fault KIND, later ones succeed
  KIND: rate_limit (429), server_error (500), overloaded (503), timeout,
        malformed, quota (429 insufficient_quota), bad_request (400)

Recording: each chat request becomes one JSON line {seq, time, method, path,
query, headers (lower-cased), body (parsed JSON, else the text), status (null
for a timeout), fault (null or one of the kinds above, "auth",
"invalid_request", "ratelimit" when enforced), request_id, errors (with
--validate, when invalid), usage and reply (the response's usage and its
first choice's message, on well-formed 200s)} in --record FILE (flushed per
line) and in memory (the newest --max-records) for GET /_fake/requests.
/_fake/stats gives {total, by_status, by_fault, invalid, open_connections,
connections_total, hanging, dropped_records}.
"""

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import re
import signal
import sys
import time
import zlib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REASONS = {200: "OK", 100: "Continue", 400: "Bad Request", 401: "Unauthorized",
           404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
           413: "Payload Too Large", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024

DATED_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
}
DATED_RE = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")

FAULT_KINDS = ("rate_limit", "server_error", "overloaded", "timeout", "malformed",
               "quota", "bad_request")
KIND_ALIASES = {"429": "rate_limit", "500": "server_error", "503": "overloaded",
                "400": "bad_request", "insufficient_quota": "quota"}
MARK_FAULT_RE = re.compile(r"\[\[fake:fault=([a-z0-9_]+)\]\]")
MARK_FAIL_FIRST_RE = re.compile(r"\[\[fake:fail-first=(\d+):([a-z0-9_]+)\]\]")

MSG_500 = "The server had an error while processing your request. Sorry about that!"
MSG_503 = "The server is overloaded or not ready yet."
MSG_QUOTA = ("You exceeded your current quota, please check your plan and billing details. "
             "For more information on this error, read the docs: "
             "https://platform.openai.com/docs/guides/error-codes/api-errors.")
MSG_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an "
              "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
              "or as the password field (with blank username) if you're accessing the API "
              "from your browser and are prompted for a username and password. You can "
              "obtain an API key from https://platform.openai.com/account/api-keys.")
MSG_BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON. If you have trouble figuring "
                "out how to fix this, please contact us through our help center at "
                "help.openai.com.)")
# What GET /models lists.
MODEL_LIST = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini")
REFUSAL = "I'm sorry, but I can't assist with that request."

DEFAULTS = {
    "error_rate": 0.0,
    "timeout_rate": 0.0,
    "malformed_rate": 0.0,
    "quota_exceeded": False,
    "latency_ms": 0.0,
    "latency_jitter_ms": 0.0,
    "ratelimit_requests": 10000,
    "ratelimit_tokens": 2000000,
    "ratelimit_enforce": False,
    "hang_ms": 600000.0,
}


def error_body(message, etype, param=None, code=None):
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def go_duration(seconds):
    """Format a duration the way the API's x-ratelimit-reset-* headers do
    (Go's time.Duration): "0s", "20ms", "1s", "1.5s", "6m0s", "1h2m3s"."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        ms = seconds * 1000.0
        if ms < 1:
            return "%dus" % max(1, int(round(ms * 1000)))
        return ("%.3f" % ms).rstrip("0").rstrip(".") + "ms"
    total_ms = int(round(seconds * 1000))
    h, rem = divmod(total_ms, 3600000)
    m, rem = divmod(rem, 60000)
    s = rem / 1000.0
    s_txt = ("%.3f" % s).rstrip("0").rstrip(".") + "s"
    if h:
        return "%dh%dm%s" % (h, m, s_txt)
    if m:
        return "%dm%s" % (m, s_txt)
    return s_txt


class Bucket:
    """A per-minute limit as the API reports it: a bucket that refills
    continuously at limit/60 per second (so one request against a limit of
    5,000 RPM resets in "12ms")."""

    def __init__(self, limit):
        self.limit = max(1, int(limit))
        self.used = 0.0
        self.t = time.monotonic()

    def set_limit(self, limit):
        self.limit = max(1, int(limit))

    def _drain(self, now):
        rate = self.limit / 60.0
        self.used = max(0.0, self.used - (now - self.t) * rate)
        self.t = now

    def would_exceed(self, cost, now):
        self._drain(now)
        return self.used + cost > self.limit

    def take(self, cost, now):
        self._drain(now)
        self.used += cost

    def remaining(self):
        return max(0, int(self.limit - self.used))

    def reset_s(self):
        return self.used / (self.limit / 60.0)

    def wait_for(self, cost):
        """Seconds until `cost` fits."""
        over = self.used + cost - self.limit
        return max(0.0, over / (self.limit / 60.0))


# ---------------------------------------------------------------- JSON values

def _h(seed, path):
    return zlib.crc32(path.encode("utf-8"), seed) & 0xFFFFFFFF


def _resolve(ref, root):
    if not ref.startswith("#"):
        return {}
    node = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.get(part, {})
    return node


def _merge_all_of(schema, root):
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for sub in schema["allOf"]:
        if isinstance(sub, dict) and "$ref" in sub:
            sub = _resolve(sub["$ref"], root)
        if not isinstance(sub, dict):
            continue
        for k, v in sub.items():
            if k == "properties":
                out.setdefault("properties", {}).update(v)
            elif k == "required":
                out["required"] = list(dict.fromkeys(out.get("required", []) + list(v)))
            else:
                out.setdefault(k, v)
    return out


def _gen_string(schema, seed, path, name):
    fmt = schema.get("format")
    h = _h(seed, path)
    if fmt == "date-time":
        s = "2025-%02d-%02dT%02d:%02d:00Z" % (h % 12 + 1, h % 28 + 1, h % 24, h % 60)
    elif fmt == "date":
        s = "2025-%02d-%02d" % (h % 12 + 1, h % 28 + 1)
    elif fmt == "time":
        s = "%02d:%02d:00" % (h % 24, h % 60)
    elif fmt == "email":
        s = "user%d@example.com" % (h % 1000)
    elif fmt in ("uri", "url"):
        s = "https://example.com/%08x" % h
    elif fmt == "uuid":
        d = hashlib.md5(("%d:%s" % (seed, path)).encode()).hexdigest()
        s = "%s-%s-4%s-8%s-%s" % (d[:8], d[8:12], d[13:16], d[17:20], d[20:32])
    else:
        label = name if name else "value"
        s = "%s %08x" % (label.replace("_", " "), h)
    lo = schema.get("minLength", 0)
    hi = schema.get("maxLength")
    if len(s) < lo:
        s = s + "x" * (lo - len(s))
    if hi is not None and len(s) > hi:
        s = s[:hi]
    return s


def _gen_int(schema, h):
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    if isinstance(xlo, (int, float)) and not isinstance(xlo, bool):
        v = math.floor(xlo) + 1
        lo = v if lo is None else max(lo, v)
    if isinstance(xhi, (int, float)) and not isinstance(xhi, bool):
        v = math.ceil(xhi) - 1
        hi = v if hi is None else min(hi, v)
    lo = None if lo is None else math.ceil(lo)
    hi = None if hi is None else math.floor(hi)
    if lo is not None and hi is not None:
        v = lo + h % (hi - lo + 1) if hi >= lo else lo
    elif lo is not None:
        v = lo + h % 100
    elif hi is not None:
        v = hi - h % 100
    else:
        v = h % 100
    m = schema.get("multipleOf")
    if isinstance(m, int) and m > 0:
        up = v + (-v) % m
        down = v - v % m
        if hi is None or up <= hi:
            v = up
        elif lo is None or down >= lo:
            v = down
    return int(v)


def _gen_number(schema, h):
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    frac = 0.1 + (h % 800) / 1000.0
    if lo is not None and hi is not None:
        v = lo + (hi - lo) * frac
    elif lo is not None:
        v = lo + 1 + frac * 10
    elif hi is not None:
        v = hi - 1 - frac * 10
    else:
        v = frac * 100
    v = round(v, 3)
    if lo is not None and v <= lo and "exclusiveMinimum" in schema:
        v = (lo + (hi if hi is not None else lo + 2)) / 2.0
    return v


def gen_value(schema, root, seed, path="$", name="", depth=0):
    """A JSON value that conforms to `schema` (the subset structured outputs
    use), chosen deterministically from `seed` and the position."""
    if depth > 32 or schema is True or not isinstance(schema, dict):
        return _gen_string({}, seed, path, name)
    if "$ref" in schema:
        target = _resolve(schema["$ref"], root)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        if rest and isinstance(target, dict):
            target = dict(target, **rest)
        return gen_value(target, root, seed, path, name, depth + 1)
    if "allOf" in schema:
        return gen_value(_merge_all_of(schema, root), root, seed, path, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    h = _h(seed, path)
    if "enum" in schema and schema["enum"]:
        return schema["enum"][h % len(schema["enum"])]
    for key in ("anyOf", "oneOf"):
        if key in schema and schema[key]:
            rest = {k: v for k, v in schema.items() if k != key}
            branch = schema[key][0]
            if rest and isinstance(branch, dict):
                branch = dict(rest, **branch)
            return gen_value(branch, root, seed, path, name, depth + 1)
    t = schema.get("type")
    if isinstance(t, list):
        non_null = [x for x in t if x != "null"]
        t = non_null[0] if non_null else "null"
    if t is None:
        if "properties" in schema or "required" in schema:
            t = "object"
        elif "items" in schema or "prefixItems" in schema:
            t = "array"
        else:
            t = "string"
    if t == "object":
        props = schema.get("properties", {})
        out = {}
        for k, sub in props.items():
            out[k] = gen_value(sub, root, seed, path + "." + k, k, depth + 1)
        for k in schema.get("required", []):
            if k not in out:
                extra = schema.get("additionalProperties")
                sub = extra if isinstance(extra, dict) else {}
                out[k] = gen_value(sub, root, seed, path + "." + k, k, depth + 1)
        return out
    if t == "array":
        prefix = schema.get("prefixItems", [])
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems")
        n = max(lo, 1, len(prefix))
        if hi is not None:
            n = min(n, hi)
        items = schema.get("items", {})
        out = []
        for i in range(n):
            sub = prefix[i] if i < len(prefix) else items
            if sub is False:
                break
            out.append(gen_value(sub, root, seed, "%s[%d]" % (path, i), name, depth + 1))
        if schema.get("uniqueItems"):
            seen, uniq = set(), []
            for v in out:
                key = json.dumps(v, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    uniq.append(v)
            out = uniq
        return out
    if t == "integer":
        return _gen_int(schema, h)
    if t == "number":
        return _gen_number(schema, h)
    if t == "boolean":
        return h % 2 == 0
    if t == "null":
        return None
    return _gen_string(schema, seed, path, name)


def break_value(value, schema, root):
    """A value that does not conform: a required property left out, or else a
    value of the wrong type."""
    s = schema
    for _ in range(8):
        if isinstance(s, dict) and "$ref" in s:
            s = _resolve(s["$ref"], root)
        elif isinstance(s, dict) and "allOf" in s:
            s = _merge_all_of(s, root)
        else:
            break
    if isinstance(value, dict) and isinstance(s, dict) and s.get("required"):
        broken = dict(value)
        broken.pop(s["required"][0], None)
        return broken
    if isinstance(value, (dict, list)):
        return "not the requested object"
    return {"unexpected": value}


# ------------------------------------------------------------------- requests

def message_text(m):
    c = m.get("content") if isinstance(m, dict) else None
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(p.get("text", "") for p in c if isinstance(p, dict)
                       and isinstance(p.get("text"), str))
    return ""


def dated_model(model):
    if not isinstance(model, str) or not model:
        return "gpt-4o-mini-2024-07-18"
    if model in DATED_MODELS:
        return DATED_MODELS[model]
    return model


def tokens_of(text_len):
    return max(1, (text_len + 3) // 4)


class Fake:
    def __init__(self, args):
        self.cfg = dict(DEFAULTS)
        for k in DEFAULTS:
            v = getattr(args, k, None)
            if v is not None:
                self.cfg[k] = v
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.key = args.key
        self.max_records = args.max_records
        self.record_file = open(args.record, "a", encoding="utf-8") if args.record else None
        self.validator = None
        self.valid_shapes = set()
        if args.validate:
            self._load_validator()
        self.req_bucket = Bucket(self.cfg["ratelimit_requests"])
        self.tok_bucket = Bucket(self.cfg["ratelimit_tokens"])
        self.conns = set()
        self.conns_total = 0
        self.hanging = 0
        self.counter = 0
        self.seen_prompts = set()
        self.fail_counts = {}
        self._date = (0, b"")
        self._id_prefixes()
        self.reset()

    # -- state
    def reset(self):
        self.records = []
        self.seq = 0
        self.dropped = 0
        self.by_status = {}
        self.by_fault = {}
        self.invalid = 0
        self.seen_prompts = set()
        self.fail_counts = {}

    def _load_validator(self):
        from jsonschema import Draft202012Validator
        shared = os.environ.get("PROMPTD_SHARED_DIR") or os.path.join(REPO_ROOT, "..", "shared")
        path = os.path.join(shared, "conformance", "openai", "chat-completions.openapi.json")
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        self.validator = Draft202012Validator(
            dict(doc, **{"$ref": "#/components/schemas/CreateChatCompletionRequest"}))
        self.doc_path = path

    def validate(self, body):
        """Validation errors of a request body. Bodies already found valid are
        remembered by their shape: the schema puts no constraint on a
        message's string content, so messages whose content is a string are
        keyed with it blanked (the benchmark's bodies differ only there)."""
        msgs = body.get("messages")
        norm = body
        if isinstance(msgs, list):
            norm = dict(body, messages=[
                dict(m, content="") if isinstance(m, dict) and isinstance(m.get("content"), str)
                else m for m in msgs])
        try:
            key = json.dumps(norm, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            key = None
        if key is not None and key in self.valid_shapes:
            return []
        errs = list(self.validator.iter_errors(body))
        if not errs and key is not None:
            if len(self.valid_shapes) > 10000:
                self.valid_shapes.clear()
            self.valid_shapes.add(key)
        return errs

    def set_config(self, changes):
        if not isinstance(changes, dict):
            raise ValueError("config body must be a JSON object")
        for k, v in changes.items():  # check everything before changing anything
            if k == "seed":
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError("seed must be an integer")
                continue
            if k not in DEFAULTS:
                raise ValueError("unknown setting %r" % k)
            d = DEFAULTS[k]
            if isinstance(d, bool):
                if not isinstance(v, bool):
                    raise ValueError("%s must be a boolean" % k)
            elif not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise ValueError("%s must be a non-negative number" % k)
            elif k.endswith("_rate") and v > 1:
                raise ValueError("%s must be between 0 and 1" % k)
        for k, v in changes.items():
            if k == "seed":
                self.seed = v
                self.rng = random.Random(v)
                self._id_prefixes()
            else:
                self.cfg[k] = v
        self.req_bucket.set_limit(self.cfg["ratelimit_requests"])
        self.tok_bucket.set_limit(self.cfg["ratelimit_tokens"])

    def config_view(self):
        return dict(self.cfg, seed=self.seed)

    def date_header(self):
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode())
        return self._date[1]

    def _id_prefixes(self):
        r = random.Random("ids:%s:%d" % (self.seed, os.getpid()))
        alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        self.cmpl_prefix = "chatcmpl-" + "".join(r.choice(alnum) for _ in range(20))
        self.req_prefix = "req_%016x" % r.getrandbits(64)

    def next_completion_id(self):
        self.counter += 1
        return "%s%09d" % (self.cmpl_prefix, self.counter)

    def next_request_id(self):
        self.counter += 1
        return "%s%016x" % (self.req_prefix, self.counter)

    def record(self, rec):
        self.seq += 1
        rec["seq"] = self.seq
        st = "none" if rec.get("status") is None else str(rec["status"])
        self.by_status[st] = self.by_status.get(st, 0) + 1
        f = rec.get("fault") or "none"
        self.by_fault[f] = self.by_fault.get(f, 0) + 1
        if rec.get("errors"):
            self.invalid += 1
        line = json.dumps(rec, separators=(",", ":"))
        if len(self.records) >= self.max_records:
            del self.records[:max(1, self.max_records // 10)]
            self.dropped = self.seq - len(self.records) - 1
        self.records.append((rec["seq"], line))
        if self.record_file:
            self.record_file.write(line + "\n")
            self.record_file.flush()

    def records_json(self, since=0):
        return ("[" + ",".join(line for seq, line in self.records if seq > since) + "]").encode()

    def stats(self):
        return {"total": self.seq, "by_status": self.by_status, "by_fault": self.by_fault,
                "invalid": self.invalid, "dropped_records": self.dropped,
                "open_connections": len(self.conns), "connections_total": self.conns_total,
                "hanging": self.hanging}

    # -- chat completions
    def auth_error(self, path, headers):
        """The 401 body for a request without the right key, or None. Azure
        paths (/openai/...) authenticate with `api-key:`, others with Bearer."""
        if self.key is None:
            return None
        if path.startswith("/openai/") or "/openai/deployments/" in path:
            given = headers.get("api-key")
        else:
            auth = headers.get("authorization", "")
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if not given:
            return error_body(MSG_NO_KEY, "invalid_request_error")
        if given != self.key:
            masked = given[:8] + "*" * max(0, len(given) - 12) + given[-4:] \
                if len(given) > 12 else given[:3] + "*" * max(0, len(given) - 3)
            msg = ("Incorrect API key provided: %s. You can find your API key at "
                   "https://platform.openai.com/account/api-keys." % masked)
            return error_body(msg, "invalid_request_error", None, "invalid_api_key")
        return None

    def handle_models(self, path, headers):
        """GET <prefix>/models: the model list, as the real API shapes it."""
        denied = self.auth_error(path, headers)
        if denied:
            return 401, denied
        return 200, {"object": "list",
                     "data": [{"id": m, "object": "model", "created": 1721172741,
                               "owned_by": "system"} for m in MODEL_LIST]}

    def handle_chat(self, req):
        """Returns (status, headers list, body bytes, fault, extra record fields)
        or a fault 'timeout' with status None."""
        path, headers = req["path"], req["headers"]
        now_mono = time.monotonic()
        rec_extra = {}
        azure = "/openai/deployments/" in path
        denied = self.auth_error(path, headers)
        if denied:
            return 401, [], denied, "auth", rec_extra
        body = req["json"]
        if body is None or not isinstance(body, dict):
            return 400, [], error_body(MSG_BAD_JSON, "invalid_request_error"), "invalid_request", rec_extra
        if self.validator is not None:
            checked = body
            if azure and "model" not in body:  # Azure names the model by its deployment
                checked = dict(body, model=path.split("/openai/deployments/", 1)[1].split("/", 1)[0])
            errs = self.validate(checked)
            if errs:
                rec_extra["errors"] = [
                    {"path": "/".join(str(p) for p in e.absolute_path), "message": e.message}
                    for e in errs]
                return (400, [], self._validation_error(errs), "invalid_request", rec_extra)
        if body.get("stream"):
            return 400, [], error_body("The fake server does not implement stream: true.",
                                       "invalid_request_error", "stream"), "invalid_request", rec_extra
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            if msgs is None:
                e = error_body("Missing required parameter: 'messages'.", "invalid_request_error",
                               "messages", "missing_required_parameter")
            else:
                e = error_body("Invalid 'messages': empty array. Expected an array with minimum "
                               "length 1, but got an empty array instead.",
                               "invalid_request_error", "messages", "empty_array")
            return 400, [], e, "invalid_request", rec_extra
        model = body.get("model")
        if model is None and azure:
            model = path.split("/openai/deployments/", 1)[1].split("/", 1)[0]
        if not isinstance(model, str) or not model:
            return 400, [], error_body("Missing required parameter: 'model'.", "invalid_request_error",
                                       "model", "missing_required_parameter"), "invalid_request", rec_extra

        users = [message_text(m) for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
        last_user = users[-1] if users else ""
        texts = [message_text(m) for m in msgs if isinstance(m, dict)]
        all_text = "".join(texts)
        prompt_tokens = tokens_of(len(all_text))

        # forced faults from markers
        forced = None
        if "[[fake:" in last_user:
            m = MARK_FAULT_RE.search(last_user)
            if m:
                forced = KIND_ALIASES.get(m.group(1), m.group(1))
            m = MARK_FAIL_FIRST_RE.search(last_user)
            if m:
                key = hashlib.sha1(req["raw_body"]).hexdigest()
                n = self.fail_counts.get(key, 0)
                self.fail_counts[key] = n + 1
                if n < int(m.group(1)):
                    forced = KIND_ALIASES.get(m.group(2), m.group(2))

        if self.cfg["quota_exceeded"] or forced == "quota":
            return 429, [], error_body(MSG_QUOTA, "insufficient_quota", None,
                                       "insufficient_quota"), "quota", rec_extra

        # rate limits (reported always, enforced with ratelimit_enforce)
        max_out = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        est_tokens = prompt_tokens + (max_out if isinstance(max_out, int) else 0)
        rl_headers = None
        if self.cfg["ratelimit_enforce"]:
            over_r = self.req_bucket.would_exceed(1, now_mono)
            over_t = self.tok_bucket.would_exceed(est_tokens, now_mono)
            if over_r or over_t:
                wait = max(self.req_bucket.wait_for(1) if over_r else 0,
                           self.tok_bucket.wait_for(est_tokens) if over_t else 0)
                kind = "requests" if over_r else "tokens"
                lim = self.req_bucket if over_r else self.tok_bucket
                used = int(lim.used)
                short = "RPM" if over_r else "TPM"
                msg = ("Rate limit reached for %s in organization org-fake on %s per min (%s): "
                       "Limit %d, Used %d, Requested %d. Please try again in %s. Visit "
                       "https://platform.openai.com/account/rate-limits to learn more."
                       % (model, kind, short, lim.limit, used, 1 if over_r else est_tokens,
                          go_duration(wait)))
                hdrs = self._rl_headers() + self._retry_headers(wait)
                return 429, hdrs, error_body(msg, kind, None, "rate_limit_exceeded"), \
                    "ratelimit", rec_extra
        self.req_bucket.take(1, now_mono)
        self.tok_bucket.take(est_tokens, now_mono)
        rl_headers = self._rl_headers()

        # injected faults: one seeded draw per request
        fault = forced
        if fault is None:
            c = self.cfg
            r = self.rng.random()
            if r < c["timeout_rate"]:
                fault = "timeout"
            elif r < c["timeout_rate"] + c["error_rate"]:
                fault = ("rate_limit", "server_error", "overloaded")[self.rng.randrange(3)]
            elif r < c["timeout_rate"] + c["error_rate"] + c["malformed_rate"]:
                fault = "malformed"
        if fault == "timeout":
            return None, [], None, "timeout", rec_extra
        if fault == "rate_limit":
            wait_ms = 20 + self.rng.randrange(480)
            msg = ("Rate limit reached for %s in organization org-fake on requests per min (RPM): "
                   "Limit %d, Used %d, Requested 1. Please try again in %dms. Visit "
                   "https://platform.openai.com/account/rate-limits to learn more."
                   % (model, self.req_bucket.limit, self.req_bucket.limit, wait_ms))
            return 429, rl_headers + self._retry_headers(wait_ms / 1000.0), \
                error_body(msg, "requests", None, "rate_limit_exceeded"), "rate_limit", rec_extra
        if fault == "server_error":
            return 500, [], error_body(MSG_500, "server_error"), "server_error", rec_extra
        if fault == "overloaded":
            hdrs = [(b"x-should-retry", b"true")] if self.rng.random() < 0.5 else []
            return 503, hdrs, error_body(MSG_503, "server_error"), "overloaded", rec_extra
        if fault == "bad_request":
            return 400, [], error_body("Invalid value for 'messages': injected by the fake.",
                                       "invalid_request_error", "messages", "invalid_value"), \
                "bad_request", rec_extra

        resp = self._completion(body, model, msgs, users, last_user, all_text, prompt_tokens)
        if fault == "malformed":
            raw = json.dumps(resp).encode()
            if self.rng.random() < 0.5:
                raw = raw[:max(1, len(raw) // 2)]
            else:
                raw = b'{"id": "' + resp["id"].encode() + b'", "object": "chat.completion", "choices": [{,]}'
            return 200, rl_headers, raw, "malformed", rec_extra
        rec_extra["usage"] = resp["usage"]
        rec_extra["reply"] = resp["choices"][0]["message"]
        return 200, rl_headers, resp, None, rec_extra

    def _rl_headers(self):
        rq, tk = self.req_bucket, self.tok_bucket
        return [(b"x-ratelimit-limit-requests", str(rq.limit).encode()),
                (b"x-ratelimit-limit-tokens", str(tk.limit).encode()),
                (b"x-ratelimit-remaining-requests", str(rq.remaining()).encode()),
                (b"x-ratelimit-remaining-tokens", str(tk.remaining()).encode()),
                (b"x-ratelimit-reset-requests", go_duration(rq.reset_s()).encode()),
                (b"x-ratelimit-reset-tokens", go_duration(tk.reset_s()).encode())]

    @staticmethod
    def _retry_headers(wait_s):
        ms = max(1, int(math.ceil(wait_s * 1000)))
        return [(b"retry-after-ms", str(ms).encode()),
                (b"retry-after", str(max(1, int(math.ceil(ms / 1000.0)))).encode())]

    @staticmethod
    def _validation_error(errs):
        from jsonschema.exceptions import best_match
        e = best_match(errs)
        parts = list(e.absolute_path)
        param = ""
        for p in parts:
            param += "[%d]" % p if isinstance(p, int) else ("." if param else "") + str(p)
        if e.validator == "required":
            m = re.search(r"'([^']+)' is a required property", e.message)
            name = m.group(1) if m else "?"
            full = (param + "." if param else "") + name
            return error_body("Missing required parameter: '%s'." % full, "invalid_request_error",
                              full, "missing_required_parameter")
        if e.validator == "additionalProperties":
            m = re.search(r"\('([^']+)'", e.message)
            name = m.group(1) if m else "?"
            return error_body("Unrecognized request argument supplied: %s" % name,
                              "invalid_request_error", None, None)
        code = "invalid_type" if e.validator == "type" else "invalid_value"
        return error_body("Invalid value for '%s': %s" % (param or "body", e.message),
                          "invalid_request_error", param or None, code)

    def _completion(self, body, model, msgs, users, last_user, all_text, prompt_tokens):
        digest = zlib.crc32(all_text.encode("utf-8", "replace"),
                            zlib.crc32(" ".join(str(m.get("role")) for m in msgs
                                                if isinstance(m, dict)).encode()))
        rseed = body.get("seed")
        seed = (digest ^ (rseed if isinstance(rseed, int) else 0)) & 0xFFFFFFFF
        rf = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
        refusal = None
        finish = "stop"
        content = None
        if "[[fake:refuse]]" in last_user:
            refusal = REFUSAL
        else:
            schema = None
            if rf.get("type") == "json_schema":
                js = rf.get("json_schema") or {}
                schema = js.get("schema") if isinstance(js.get("schema"), dict) else {}
            invalid = False
            if "[[fake:invalid-json-always]]" in all_text:
                invalid = True
            elif "[[fake:invalid-json]]" in all_text:
                marked = [i for i, u in enumerate(users) if "[[fake:invalid-json]]" in u]
                invalid = bool(marked) and marked[0] == len(users) - 1
            if schema is not None:
                value = gen_value(schema, schema, seed)
                if invalid:
                    value = break_value(value, schema, schema)
                content = json.dumps(value, ensure_ascii=False)
            elif rf.get("type") == "json_object":
                value = {"reply": "fake reply %08x" % seed}
                content = json.dumps(value) if not invalid else '{"reply": '
            else:
                echo = " ".join(last_user.split())
                if len(echo) > 60:
                    echo = echo[:57] + "..."
                content = "Fake reply %08x to: %s" % (seed, echo) if echo else \
                    "Fake reply %08x." % seed
                if invalid:
                    content = "not json {"
            if "[[fake:finish-length]]" in last_user:
                finish = "length"
                content = content[:max(1, len(content) // 2)]
        out_text = content if content is not None else refusal
        completion_tokens = tokens_of(len(out_text))
        max_out = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(max_out, int) and max_out > 0 and completion_tokens > max_out and content:
            content = content[:max_out * 4]
            completion_tokens = max_out
            finish = "length"
        cached = 0
        if prompt_tokens >= 1024:
            key = hashlib.sha1(all_text.encode("utf-8", "replace")).digest()
            if key in self.seen_prompts:
                cached = (prompt_tokens // 128) * 128
            else:
                self.seen_prompts.add(key)
        n = body.get("n") if isinstance(body.get("n"), int) and body.get("n") > 1 else 1
        cid = self.next_completion_id()
        choice = {"index": 0,
                  "message": {"role": "assistant", "content": content, "refusal": refusal,
                              "annotations": []},
                  "logprobs": None, "finish_reason": finish}
        choices = [dict(choice, index=i) for i in range(n)]
        tier = body.get("service_tier")
        if tier not in ("flex", "priority", "scale"):
            tier = "default"
        return {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": dated_model(model),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens * n,
                "total_tokens": prompt_tokens + completion_tokens * n,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0},
            },
            "service_tier": tier,
            "system_fingerprint": "fp_%010x" % (zlib.crc32(dated_model(model).encode()) * 977 % (1 << 40)),
        }


class Conn(asyncio.Protocol):
    __slots__ = ("fake", "transport", "buf", "busy", "timer", "closed", "hanging", "continued")

    def __init__(self, fake):
        self.fake = fake
        self.transport = None
        self.buf = bytearray()
        self.busy = False
        self.timer = None
        self.closed = False
        self.hanging = False
        self.continued = False

    def connection_made(self, transport):
        self.transport = transport
        self.fake.conns.add(self)
        self.fake.conns_total += 1

    def connection_lost(self, exc):
        self.closed = True
        self.fake.conns.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.hanging:
            self.hanging = False
            self.fake.hanging -= 1
        self.buf = bytearray()

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self.process()

    def process(self):
        while not self.busy and not self.closed:
            buf = self.buf
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self.fail(400)
                return
            head = bytes(buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self.fail(400)
                return
            method, target, version = parts
            headers = {}
            for line in lines[1:]:
                k, sep, v = line.partition(":")
                if not sep:
                    self.fail(400)
                    return
                k = k.strip().lower()
                v = v.strip()
                headers[k] = headers[k] + ", " + v if k in headers else v
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.fail(411)
                return
            try:
                clen = int(headers.get("content-length", "0"))
            except ValueError:
                self.fail(400)
                return
            if clen < 0 or clen > MAX_BODY:
                self.fail(413)
                return
            total = end + 4 + clen
            if len(buf) < total:
                if (not self.continued and
                        headers.get("expect", "").lower() == "100-continue"):
                    self.continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            raw_body = bytes(buf[end + 4:total])
            del buf[:total]
            conn_hdr = headers.get("connection", "").lower()
            keep = ("close" not in conn_hdr) if version == "HTTP/1.1" else ("keep-alive" in conn_hdr)
            path, _, query = target.partition("?")
            self.busy = True
            self.dispatch(method, path, query, headers, raw_body, keep)

    def fail(self, status):
        body = json.dumps(error_body(REASONS.get(status, "Bad Request"), "invalid_request_error")).encode()
        self.send(status, [], body, False)

    def send(self, status, extra, body, keep):
        if self.closed:
            return
        f = self.fake
        head = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, "Unknown").encode()),
                b"date: " + f.date_header(),
                b"content-type: application/json",
                b"content-length: " + str(len(body)).encode(),
                b"connection: " + (b"keep-alive" if keep else b"close")]
        for k, v in extra:
            head.append(k + b": " + v)
        head.append(b"")
        head.append(b"")
        self.transport.write(b"\r\n".join(head) + body)
        if not keep:
            self.transport.close()
            self.closed = True
            return
        self.busy = False
        if self.buf:
            self.process()

    def dispatch(self, method, path, query, headers, raw_body, keep):
        f = self.fake
        if path.startswith("/_fake/"):
            status, body = self.control(method, path, query, raw_body)
            self.send(status, [], body if isinstance(body, bytes) else json.dumps(body).encode(), keep)
            return
        if path.endswith("/models") and method == "GET":
            status, body = f.handle_models(path, headers)
            f.record({"time": time.time(), "method": method, "path": path, "query": query,
                      "headers": headers, "body": None, "status": status, "fault": None,
                      "request_id": None})
            self.send(status, [], json.dumps(body).encode(), keep)
            return
        if not path.endswith("/chat/completions"):
            msg = "Invalid URL (%s %s)" % (method, path)
            self.send(404, [], json.dumps(error_body(msg, "invalid_request_error")).encode(), keep)
            return
        if method != "POST":
            self.send(405, [], json.dumps(error_body(
                "Invalid method for URL (%s %s)" % (method, path), "invalid_request_error")).encode(), keep)
            return
        t0 = time.time()
        try:
            js = json.loads(raw_body) if raw_body else None
        except ValueError:
            js = None
        req = {"path": path, "query": query, "headers": headers, "json": js, "raw_body": raw_body}
        status, extra, body, fault, rec_extra = f.handle_chat(req)
        request_id = f.next_request_id()
        rec = {"time": t0, "method": method, "path": path, "query": query, "headers": headers,
               "body": js if js is not None else raw_body.decode("utf-8", "replace"),
               "status": status, "fault": fault, "request_id": request_id if status else None}
        rec.update(rec_extra)
        f.record(rec)
        loop = asyncio.get_running_loop()
        if status is None:  # timeout fault: hold the request, answer nothing
            self.hanging = True
            f.hanging += 1
            self.timer = loop.call_later(f.cfg["hang_ms"] / 1000.0, self.give_up)
            return
        lat = f.cfg["latency_ms"]
        jit = f.cfg["latency_jitter_ms"]
        if jit:
            lat += f.rng.uniform(-jit, jit)
        lat = max(0.0, lat)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra = list(extra) + [(b"openai-processing-ms", str(int(lat) + 1).encode()),
                               (b"openai-version", b"2020-10-01"),
                               (b"x-request-id", request_id.encode())]
        if lat <= 0:
            self.send(status, extra, payload, keep)
        else:
            self.timer = loop.call_later(lat / 1000.0, self.delayed, status, extra, payload, keep)

    def delayed(self, status, extra, payload, keep):
        self.timer = None
        self.send(status, extra, payload, keep)

    def give_up(self):
        self.timer = None
        if not self.closed:
            self.transport.close()

    def control(self, method, path, query, raw_body):
        f = self.fake
        try:
            if path == "/_fake/config":
                if method == "POST":
                    f.set_config(json.loads(raw_body or b"{}"))
                return 200, f.config_view()
            if path == "/_fake/requests" and method == "GET":
                since = 0
                for kv in query.split("&"):
                    k, _, v = kv.partition("=")
                    if k == "since" and v:
                        since = int(v)
                return 200, f.records_json(since)
            if path == "/_fake/stats" and method == "GET":
                return 200, f.stats()
            if path == "/_fake/reset" and method == "POST":
                f.reset()
                return 200, {"ok": True}
            if path == "/_fake/health":
                return 200, {"ok": True}
        except (ValueError, TypeError) as e:
            return 400, error_body(str(e), "invalid_request_error")
        return 404, error_body("Invalid URL (%s %s)" % (method, path), "invalid_request_error")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Fake OpenAI Chat Completions server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--validate", action="store_true")
    p.add_argument("--record")
    p.add_argument("--key")
    p.add_argument("--max-records", type=int, default=100000)
    p.add_argument("--latency-ms", dest="latency_ms", type=float)
    p.add_argument("--latency-jitter-ms", dest="latency_jitter_ms", type=float)
    p.add_argument("--error-rate", dest="error_rate", type=float)
    p.add_argument("--timeout-rate", dest="timeout_rate", type=float)
    p.add_argument("--malformed-rate", dest="malformed_rate", type=float)
    p.add_argument("--quota-exceeded", dest="quota_exceeded", action="store_true", default=None)
    p.add_argument("--ratelimit-requests", dest="ratelimit_requests", type=int)
    p.add_argument("--ratelimit-tokens", dest="ratelimit_tokens", type=int)
    p.add_argument("--ratelimit-enforce", dest="ratelimit_enforce", action="store_true", default=None)
    p.add_argument("--hang-ms", dest="hang_ms", type=float)
    return p.parse_args(argv)


async def serve(args):
    fake = Fake(args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(fake), args.host, args.port,
                                      backlog=1024, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write("listening %s:%d\n" % (args.host, port))
    sys.stdout.flush()
    await stop.wait()
    server.close()
    for c in list(fake.conns):
        if c.transport is not None:
            c.transport.close()
    await asyncio.sleep(0)
    if fake.record_file:
        fake.record_file.close()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import gc
        gc.freeze()
    except AttributeError:
        pass
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
