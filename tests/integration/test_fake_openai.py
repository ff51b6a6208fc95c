"""The fake OpenAI server (tests/fake/fake_openai.py) speaks the real API's
shapes: the conformance examples are accepted by --validate and its replies
validate against the OpenAPI document in ../shared/conformance/openai/;
json_schema replies conform to the request's schema; markers, the repair-turn
rule, seeded faults at their configured rates, rate-limit headers, recording,
keep-alive, hanging requests that leak nothing, and a clean stop."""

import glob
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys

from promptd_test import Failure, main

from jsonschema import Draft202012Validator

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("PROMPTD_SOURCE_DIR", os.path.join(HERE, "..", ".."))
SHARED = os.environ.get("PROMPTD_SHARED_DIR") or os.path.join(SOURCE_DIR, "..", "shared")
FAKE = os.path.join(SOURCE_DIR, "tests", "fake", "fake_openai.py")
DOC = os.path.join(SHARED, "conformance", "openai", "chat-completions.openapi.json")
EXAMPLES = os.path.join(SHARED, "conformance", "examples")
KEY = "sk-proj-fakeKEY0123456789abcdefXYZ"
DURATION_RE = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?(ms|us|s))$")

with open(DOC, encoding="utf-8") as f:
    _doc = json.load(f)


def component(name):
    return Draft202012Validator(dict(_doc, **{"$ref": "#/components/schemas/" + name}))


RESPONSE = component("CreateChatCompletionResponse")
ERROR = component("ErrorResponse")
REQUEST = component("CreateChatCompletionRequest")


def errors_of(validator, doc):
    return ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
            for e in validator.iter_errors(doc)]


class Fake:
    def __init__(self, c, *args):
        self.proc = subprocess.Popen([sys.executable, FAKE, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=open(c.path("fake.log"), "ab"))
        line = self.proc.stdout.readline().decode()
        m = re.match(r"^listening 127\.0\.0\.1:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise Failure("fake did not say where it listens: %r" % line)
        self.port = int(m.group(1))
        self.conn = self.connect()

    def connect(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def call(self, method, path, body=None, headers=None, conn=None):
        conn = conn or self.conn
        hdrs = {"content-type": "application/json"}
        hdrs.update(headers or {})
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        try:
            js = json.loads(raw)
        except ValueError:
            js = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, js, raw

    def chat(self, body, key=KEY, path="/v1/chat/completions", conn=None, headers=None):
        h = {"authorization": "Bearer " + key} if key else {}
        h.update(headers or {})
        return self.call("POST", path, body, h, conn)

    def control(self, method, what, body=None):
        status, _, js, raw = self.call(method, "/_fake/" + what, body)
        if status != 200:
            raise Failure("/_fake/%s answered %d: %s" % (what, status, raw[:200]))
        return js

    def stop(self):
        self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def user(text, model="gpt-4o-mini", **extra):
    return dict({"model": model, "messages": [{"role": "user", "content": text}]}, **extra)


def schema_request(schema, text, name="out"):
    return user(text, response_format={"type": "json_schema", "json_schema": {
        "name": name, "strict": True, "schema": schema}})


NESTED = {
    "type": "object", "additionalProperties": False,
    "required": ["score", "label", "tags", "contact", "choice", "ratio", "note", "items"],
    "properties": {
        "score": {"type": "integer", "minimum": 10, "maximum": 20},
        "label": {"type": "string", "enum": ["hot", "warm", "cold"]},
        "tags": {"type": "array", "minItems": 3, "items": {"type": "string", "maxLength": 12}},
        "contact": {"$ref": "#/$defs/contact"},
        "choice": {"anyOf": [{"type": "integer", "minimum": 100}, {"type": "null"}]},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "note": {"type": ["string", "null"], "minLength": 5},
        "items": {"type": "array", "minItems": 2, "maxItems": 2,
                  "items": {"type": "object", "additionalProperties": False,
                            "required": ["sku", "qty"],
                            "properties": {"sku": {"type": "string"},
                                           "qty": {"type": "integer", "minimum": 1}}}},
    },
    "$defs": {"contact": {"type": "object", "additionalProperties": False,
                          "required": ["name", "email", "vip"],
                          "properties": {"name": {"type": "string"},
                                         "email": {"type": "string", "format": "email"},
                                         "vip": {"type": "boolean"}}}},
}


def check_success(c, what, status, headers, js, request=None):
    c.check("%s: 200" % what, status == 200, "got %s %s" % (status, js))
    if status != 200 or js is None:
        return
    errs = errors_of(RESPONSE, js)
    c.check("%s: response validates against CreateChatCompletionResponse" % what, not errs,
            str(errs[:3]))
    c.check("%s: id chatcmpl-" % what, js["id"].startswith("chatcmpl-"), js["id"])
    c.check("%s: object" % what, js["object"] == "chat.completion")
    msg = js["choices"][0]["message"]
    c.check("%s: message shape" % what, msg["role"] == "assistant" and "refusal" in msg, str(msg))
    u = js["usage"]
    c.check("%s: usage adds up" % what,
            u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
            and "cached_tokens" in u["prompt_tokens_details"]
            and "reasoning_tokens" in u["completion_tokens_details"], str(u))
    c.check("%s: x-request-id" % what, headers.get("x-request-id", "").startswith("req_"))
    c.check("%s: openai-processing-ms" % what, headers.get("openai-processing-ms", "").isdigit())
    c.check("%s: content-type" % what, headers.get("content-type") == "application/json")
    for h in ("limit-requests", "limit-tokens", "remaining-requests", "remaining-tokens"):
        c.check("%s: x-ratelimit-%s" % (what, h), headers.get("x-ratelimit-" + h, "").isdigit(),
                str(headers.get("x-ratelimit-" + h)))
    for h in ("reset-requests", "reset-tokens"):
        c.check("%s: x-ratelimit-%s" % (what, h),
                DURATION_RE.match(headers.get("x-ratelimit-" + h, "")) is not None,
                str(headers.get("x-ratelimit-" + h)))
    if request is not None:
        text = "".join(m["content"] for m in request["messages"] if isinstance(m["content"], str))
        c.check("%s: prompt_tokens = ceil(chars/4)" % what,
                u["prompt_tokens"] == max(1, (len(text) + 3) // 4), str(u))


def check_error(c, what, status, js, want_status, want_type=None, want_code=None):
    c.check("%s: status %d" % (what, want_status), status == want_status, "got %s %s" % (status, js))
    if js is None:
        c.check("%s: JSON body" % what, False)
        return
    errs = errors_of(ERROR, js)
    c.check("%s: body validates against ErrorResponse" % what, not errs, str(errs[:3]))
    e = js.get("error", {})
    if want_type:
        c.check("%s: type %s" % (what, want_type), e.get("type") == want_type, str(e))
    if want_code is not None:
        c.check("%s: code %s" % (what, want_code), e.get("code") == want_code, str(e))


def conforms(schema, content):
    try:
        value = json.loads(content)
    except (TypeError, ValueError) as e:
        return ["not JSON: %s" % e]
    return errors_of(Draft202012Validator(schema), value)


def body(c):
    record = c.path("requests.jsonl")
    fake = Fake(c, "--validate", "--key", KEY, "--record", record, "--seed", "7")
    try:
        scenario(c, fake, record)
    finally:
        if fake.proc.poll() is None:
            fake.proc.kill()
            fake.proc.wait()


def scenario(c, fake, record):
    # -- the conformance examples: accepted by --validate, answered in shape
    examples = sorted(glob.glob(os.path.join(EXAMPLES, "openai-chat-completion-request*.json")))
    c.check("request examples found", len(examples) >= 2, str(examples))
    for path in examples:
        with open(path, encoding="utf-8") as f:
            req = json.load(f)
        name = os.path.basename(path)
        c.check("%s validates (test's own check)" % name, not errors_of(REQUEST, req))
        status, headers, js, _ = fake.chat(req)
        check_success(c, name, status, headers, js, req)
        rf = req.get("response_format", {})
        if status == 200 and rf.get("type") == "json_schema":
            errs = conforms(rf["json_schema"]["schema"], js["choices"][0]["message"]["content"])
            c.check("%s: content conforms to the request's schema" % name, not errs, str(errs))
    st = fake.control("GET", "stats")
    c.check("examples: zero invalid requests", st["invalid"] == 0, str(st))
    with open(os.path.join(EXAMPLES, "openai-chat-completion-response.json")) as f:
        c.check("response example validates (test's own check)", not errors_of(RESPONSE, json.load(f)))
    for ex in glob.glob(os.path.join(EXAMPLES, "openai-error-*.json")):
        with open(ex) as f:
            c.check("%s validates against ErrorResponse" % os.path.basename(ex),
                    not errors_of(ERROR, json.load(f)))

    # -- models, determinism
    status, _, js, _ = fake.chat(user("Hello there"))
    c.check("gpt-4o-mini answered as its dated name", js["model"] == "gpt-4o-mini-2024-07-18", js["model"])
    status2, h2, js2, _ = fake.chat(user("Hello there"))
    c.check("same request, same content and usage",
            js["choices"][0]["message"]["content"] == js2["choices"][0]["message"]["content"]
            and js["usage"] == js2["usage"])
    c.check("ids differ", js["id"] != js2["id"])
    _, _, js3, _ = fake.chat(user("Something else"))
    c.check("another request, another content",
            js3["choices"][0]["message"]["content"] != js["choices"][0]["message"]["content"])
    _, _, js4, _ = fake.chat(user("hi", model="my-local-model"))
    c.check("unknown model echoed", js4["model"] == "my-local-model", js4["model"])

    # -- structured output
    for i in range(5):
        req = schema_request(NESTED, "lead number %d" % i)
        status, headers, js, _ = fake.chat(req)
        check_success(c, "nested schema %d" % i, status, headers, js)
        errs = conforms(NESTED, js["choices"][0]["message"]["content"])
        c.check("nested schema %d: content conforms" % i, not errs, str(errs))

    # -- authentication
    status, _, js, _ = fake.chat(user("hi"), key="sk-wrong-0123456789abcdef")
    check_error(c, "wrong key", status, js, 401, "invalid_request_error", "invalid_api_key")
    c.check("wrong key masked", "sk-wrong-0123456789abcdef" not in js["error"]["message"]
            and "Incorrect API key provided" in js["error"]["message"])
    status, _, js, _ = fake.chat(user("hi"), key=None)
    check_error(c, "missing key", status, js, 401, "invalid_request_error")
    azure = "/openai/deployments/mini/chat/completions?api-version=2024-10-21"
    req = {"messages": [{"role": "user", "content": "hi from azure"}]}
    status, headers, js, _ = fake.chat(req, key=None, path=azure, headers={"api-key": KEY})
    check_success(c, "azure with api-key", status, headers, js)
    status, _, js, _ = fake.chat(req, path=azure)
    check_error(c, "azure with bearer only", status, js, 401)
    recs = fake.control("GET", "requests")
    c.check("azure query recorded", recs[-2]["query"] == "api-version=2024-10-21", str(recs[-2]))

    # -- --validate rejects an invalid body like the API does
    before = fake.control("GET", "stats")["invalid"]
    status, _, js, _ = fake.chat({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 5}]})
    check_error(c, "invalid body", status, js, 400, "invalid_request_error")
    status, _, js, _ = fake.chat({"model": "gpt-4o-mini"})
    check_error(c, "missing messages", status, js, 400, "invalid_request_error",
                "missing_required_parameter")
    status, _, js, _ = fake.chat(b"{not json")
    check_error(c, "unparsable body", status, js, 400, "invalid_request_error")
    after = fake.control("GET", "stats")
    c.check("invalid bodies counted", after["invalid"] == before + 2, str(after))
    last = fake.control("GET", "requests")[-2]
    c.check("invalid body recorded with its errors", last["status"] == 400 and last["errors"], str(last))
    status, _, js, _ = fake.call("POST", "/v1/embeddings", {"input": "x"})
    check_error(c, "unknown URL", status, js, 404, "invalid_request_error")

    # -- markers and the repair-turn rule
    status, headers, js, _ = fake.chat(schema_request(NESTED, "please [[fake:refuse]]"))
    check_success(c, "refuse", status, headers, js)
    m = js["choices"][0]["message"]
    c.check("refuse: refusal text, content null", m["content"] is None and m["refusal"], str(m))
    status, headers, js, _ = fake.chat(user("long story [[fake:finish-length]]"))
    check_success(c, "finish-length", status, headers, js)
    c.check("finish-length: finish_reason length", js["choices"][0]["finish_reason"] == "length")
    status, _, js, _ = fake.chat(user("x" * 400, max_completion_tokens=3))
    c.check("max_completion_tokens caps the reply",
            js["choices"][0]["finish_reason"] in ("stop", "length")
            and js["usage"]["completion_tokens"] <= 3, str(js["usage"]))

    first = schema_request(NESTED, "score this [[fake:invalid-json]]")
    status, headers, js, _ = fake.chat(first)
    check_success(c, "invalid-json first try", status, headers, js)
    bad = js["choices"][0]["message"]["content"]
    c.check("invalid-json: first reply does not conform", conforms(NESTED, bad) != [], bad)
    repair = dict(first, messages=first["messages"] + [
        {"role": "assistant", "content": bad},
        {"role": "user", "content": "Your reply did not match the schema: 'score' is a required "
                                    "property. Reply again with JSON that conforms."}])
    status, headers, js, _ = fake.chat(repair)
    check_success(c, "repair turn", status, headers, js)
    errs = conforms(NESTED, js["choices"][0]["message"]["content"])
    c.check("invalid-json: the repair turn's reply conforms", not errs, str(errs))
    again = schema_request(NESTED, "score this [[fake:invalid-json-always]]")
    again["messages"] += repair["messages"][1:]
    status, _, js, _ = fake.chat(again)
    c.check("invalid-json-always: still invalid after the repair turn",
            conforms(NESTED, js["choices"][0]["message"]["content"]) != [])

    ff = user("flaky [[fake:fail-first=2:server_error]]")
    got = [fake.chat(ff)[0] for _ in range(3)]
    c.check("fail-first=2: 500, 500, 200", got == [500, 500, 200], str(got))
    status, headers, js, _ = fake.chat(user("[[fake:fault=rate_limit]]"))
    check_error(c, "fault=rate_limit", status, js, 429, None, "rate_limit_exceeded")
    c.check("fault=rate_limit: retry headers",
            headers.get("retry-after-ms", "").isdigit() and int(headers.get("retry-after", "0")) >= 1,
            str(headers))

    # -- quota
    fake.control("POST", "config", {"quota_exceeded": True})
    status, headers, js, _ = fake.chat(user("hi"))
    check_error(c, "quota", status, js, 429, "insufficient_quota", "insufficient_quota")
    c.check("quota: no retry-after", "retry-after" not in headers and "retry-after-ms" not in headers)
    fake.control("POST", "config", {"quota_exceeded": False})

    # -- rate-limit headers and enforcement
    fake.control("POST", "config", {"ratelimit_requests": 60, "ratelimit_tokens": 100000})
    rem = []
    for _ in range(3):
        _, headers, _, _ = fake.chat(user("count me"))
        rem.append(int(headers["x-ratelimit-remaining-requests"]))
    c.check("remaining-requests decrements", rem[0] > rem[1] > rem[2] and rem[0] <= 59, str(rem))
    c.check("limit header follows config", headers["x-ratelimit-limit-requests"] == "60")
    fake.control("POST", "config", {"ratelimit_enforce": True, "ratelimit_requests": 3})
    statuses = []
    for _ in range(6):
        status, headers, js, _ = fake.chat(user("burst"))
        statuses.append(status)
    c.check("enforced limit answers 429", 429 in statuses, str(statuses))
    if 429 in statuses:
        check_error(c, "enforced limit", status, js, 429, None, "rate_limit_exceeded")
        c.check("enforced limit: retry-after-ms", headers.get("retry-after-ms", "").isdigit())
    fake.control("POST", "config", {"ratelimit_enforce": False, "ratelimit_requests": 10000,
                                    "ratelimit_tokens": 2000000})

    # -- recording
    recs = fake.control("GET", "requests")
    with open(record, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    c.check("record file has every request", len(lines) == len(recs) and len(lines) > 30,
            "%d vs %d" % (len(lines), len(recs)))
    c.check("record file matches /_fake/requests", lines == recs)
    r0 = recs[0]
    c.check("record: method, path, lower-cased headers, body, status",
            r0["method"] == "POST" and r0["path"] == "/v1/chat/completions"
            and r0["headers"].get("authorization") == "Bearer " + KEY
            and r0["body"]["messages"] and r0["status"] == 200 and "time" in r0, str(r0)[:300])
    st = fake.control("GET", "stats")
    c.check("stats total", st["total"] == len(recs), str(st))
    c.check("stats per status", sum(st["by_status"].values()) == st["total"]
            and st["by_status"].get("401") == 3, str(st))
    fake.control("POST", "reset")
    c.check("reset clears", fake.control("GET", "requests") == []
            and fake.control("GET", "stats")["total"] == 0)

    # -- keep-alive: several requests on one connection
    conn = fake.connect()
    base = fake.control("GET", "stats")["connections_total"]
    for i in range(5):
        status, _, _, _ = fake.chat(user("keep %d" % i), conn=conn)
        c.check("keep-alive request %d" % i, status == 200)
    c.check("keep-alive: one connection for five requests",
            fake.control("GET", "stats")["connections_total"] == base + 1)
    conn.close()
    # Expect: 100-continue, as libcurl sends for larger bodies
    payload = json.dumps(user("y" * 2000)).encode()
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\n"
              b"content-type: application/json\r\nexpect: 100-continue\r\ncontent-length: %d\r\n\r\n"
              % (KEY.encode(), len(payload)))
    interim = s.recv(100)
    c.check("100 Continue sent", interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), repr(interim))
    s.sendall(payload)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    c.check("answer after 100 Continue", data.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
            or data.find(b"HTTP/1.1 200 OK") >= 0, repr(data[:80]))
    s.close()

    # -- faults at their configured rates, seeded and reproducible
    fake.control("POST", "reset")
    fake.control("POST", "config", {"seed": 11, "error_rate": 0.3, "timeout_rate": 0.05,
                                    "malformed_rate": 0.05, "hang_ms": 30})
    n = 1000
    kinds = {}
    bad_bodies = []
    conn = fake.connect()
    for i in range(n):
        try:
            status, headers, js, raw = fake.chat(user("event %d" % i), conn=conn)
        except (http.client.HTTPException, ConnectionError, socket.timeout):
            kinds["hung"] = kinds.get("hung", 0) + 1
            conn.close()
            conn = fake.connect()
            continue
        if status == 200 and js is not None and not errors_of(RESPONSE, js):
            kinds["ok"] = kinds.get("ok", 0) + 1
        elif status == 200:
            kinds["malformed"] = kinds.get("malformed", 0) + 1
        else:
            kinds[status] = kinds.get(status, 0) + 1
            if js is None or errors_of(ERROR, js):
                bad_bodies.append(raw[:100])
            if status == 429 and not (headers.get("retry-after-ms") and headers.get("retry-after")):
                bad_bodies.append(b"429 without retry headers")
            if status == 503 and headers.get("x-should-retry") == "true":
                kinds["should_retry"] = kinds.get("should_retry", 0) + 1
    conn.close()
    errs = kinds.get(429, 0) + kinds.get(500, 0) + kinds.get(503, 0)
    c.check("error rate about 30%", 250 <= errs <= 350, str(kinds))
    for code in (429, 500, 503):
        c.check("%d among the errors" % code, 60 <= kinds.get(code, 0) <= 140, str(kinds))
    c.check("timeouts about 5%", 25 <= kinds.get("hung", 0) <= 75, str(kinds))
    c.check("malformed about 5%", 25 <= kinds.get("malformed", 0) <= 75, str(kinds))
    c.check("some 503 carry x-should-retry", kinds.get("should_retry", 0) > 0, str(kinds))
    c.check("error bodies are ErrorResponse, 429 has retry headers", not bad_bodies, str(bad_bodies[:3]))
    st = fake.control("GET", "stats")
    c.check("stats count the faults", st["by_fault"].get("timeout") == kinds.get("hung")
            and st["by_fault"].get("malformed") == kinds.get("malformed")
            and st["total"] == n, str(st))
    seq1 = [r["fault"] for r in fake.control("GET", "requests")]
    fake.control("POST", "reset")
    fake.control("POST", "config", {"seed": 11})
    conn = fake.connect()
    for i in range(200):
        try:
            fake.chat(user("event %d" % i), conn=conn)
        except (http.client.HTTPException, ConnectionError, socket.timeout):
            conn.close()
            conn = fake.connect()
    conn.close()
    seq2 = [r["fault"] for r in fake.control("GET", "requests")]
    c.check("same seed, same fault sequence", seq1[:200] == seq2, "%s vs %s" % (seq1[:20], seq2[:20]))

    # -- a request that hangs until the client gives up leaks nothing
    fake.control("POST", "config", {"error_rate": 0, "timeout_rate": 1.0, "malformed_rate": 0,
                                    "hang_ms": 600000})
    for i in range(3):
        conn = fake.connect(timeout=0.3)
        try:
            fake.chat(user("hang %d" % i), conn=conn)
            c.check("hanging request gets no answer", False)
        except (socket.timeout, TimeoutError):
            pass
        conn.close()
    fake.control("POST", "config", {"timeout_rate": 0})

    def settled():
        st = fake.control("GET", "stats")
        return st if st["hanging"] == 0 and st["open_connections"] == 1 else None
    try:
        c.wait_for("hung connections to close", settled, timeout=10)
        c.check("hung connections released", True)
    except Failure as e:
        c.check("hung connections released", False, "%s %s" % (e, fake.control("GET", "stats")))

    # -- a clean stop
    before = sum(1 for _ in open(record))
    fake.chat(user("last one"))
    rc = fake.stop()
    c.check("SIGTERM: exit 0", rc == 0, "exit %s" % rc)
    c.check("record file flushed", sum(1 for _ in open(record)) == before + 1)


main("fake_openai", body)
