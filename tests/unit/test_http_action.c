/*
 * action `http`: validate (field errors), prepare (URL percent-encoding,
 * JSON escaping and the JSON check, secrets kept as references, defaults),
 * classification and the output (http_result.c), and start's refusal of an
 * unresolvable secret before anything is sent.  The exchange itself is in
 * tests/integration/test_http_action.py.
 *
 * action_done is replaced by a recorder linked into this program.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actions/http_action.h"
#include "core/connector.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/http_client.h"

extern const action_kind action_http;
static const action_kind *K = &action_http;

static int g_done_calls;

void action_done(action_call *c, outcome_class cls, cJSON *output, const char *detail,
                 long retry_after_ms) {
  (void)c, (void)cls, (void)detail, (void)retry_after_ms;
  g_done_calls++;
  cJSON_Delete(output);
}

/* ---- validate ---- */

static void refused(const char *cfg_text, const char *word) {
  cJSON *cfg = cJSON_Parse(cfg_text);
  assert_non_null(cfg);
  perr e = {{0}};
  if (K->validate(cfg, &e) != -1) fail_msg("accepted: %s", cfg_text);
  if (!strstr(e.msg, word)) fail_msg("message for %s lacks '%s': %s", cfg_text, word, e.msg);
  cJSON_Delete(cfg);
}

static void accepted(const char *cfg_text) {
  cJSON *cfg = cJSON_Parse(cfg_text);
  assert_non_null(cfg);
  perr e = {{0}};
  if (K->validate(cfg, &e) != 0) fail_msg("refused %s: %s", cfg_text, e.msg);
  cJSON_Delete(cfg);
}

static void test_validate(void **state) {
  (void)state;
  accepted("{\"url\":\"https://x.example/a/{{event.id}}\"}");
  accepted("{\"url\":\"env:HOOK_URL\"}");
  accepted("{\"url\":\"{{steps.a.url}}\",\"url_escape\":false}");
  accepted(
      "{\"url\":\"https://x\",\"headers\":{\"Authorization\":{\"secret\":\"env:T\","
      "\"prefix\":\"Bearer \"},\"X-Key\":\"file:/etc/k\",\"X-A\":\"{{event.a}}\"}}");
  accepted("{\"url\":\"https://x\",\"headers\":{\"Authorization\":\"Bearer {{steps.t.tok}}\"}}");
  accepted("{\"url\":\"https://x\",\"expect\":204}");
  accepted(
      "{\"url\":\"https://x\",\"body\":\"a=b\",\"headers\":{\"Content-Type\":"
      "\"application/x-www-form-urlencoded\"}}");

  refused("{\"url\":\"\"}", "url");
  refused("{\"url\":\"ftp://x/\"}", "http://");
  refused("{\"url\":\"{{steps.a.url}}\"}", "url_escape");
  refused("{\"url\":\"https://x\",\"headers\":{\"Bad Name\":\"v\"}}", "header name");
  refused("{\"url\":\"https://x\",\"headers\":{\"idempotency-key\":\"v\"}}", "idempotency_key");
  refused("{\"url\":\"https://x\",\"headers\":{\"Content-Length\":\"3\"}}", "computed");
  refused("{\"url\":\"https://x\",\"headers\":{\"Authorization\":\"Bearer abc\"}}",
          "literal credential");
  refused("{\"url\":\"https://x\",\"headers\":{\"X\":{\"prefix\":\"B \"}}}", "secret: required");
  refused("{\"url\":\"https://x\",\"headers\":{\"X\":{\"secret\":\"tok123\"}}}", "not shown");
  refused("{\"url\":\"https://x\",\"headers\":{\"X\":{\"secret\":\"env:T\",\"sufix\":\"\"}}}",
          "unknown field");
  refused("{\"url\":\"https://x\",\"headers\":{\"X\":5}}", "quote numbers");
  refused("{\"url\":\"https://x\",\"headers\":{\"X-A\":\"1\",\"x-a\":\"2\"}}", "same header");
  refused("{\"url\":\"https://x\",\"headers\":{\"X\":\"{{#a}}\"}}", "invalid template");
  refused("{\"url\":\"https://x\",\"method\":\"GET\",\"body\":\"{}\"}", "GET");
  refused("{\"url\":\"https://x\",\"body\":\"{\\\"a\\\": }\"}", "not valid JSON");
  refused(
      "{\"url\":\"https://x\",\"json\":true,\"body\":\"x\",\"headers\":{\"Content-Type\":"
      "\"text/plain\"}}",
      "contradicts");
  refused("{\"url\":\"https://x\",\"headers\":{\"content-type\":\"env:CT\"}}", "not a secret");
  /* A templated Content-Type decides the mode only at prepare. */
  accepted(
      "{\"url\":\"https://x\",\"body\":\"a=b\",\"headers\":{\"Content-Type\":"
      "\"{{event.ct}}\"}}");
  refused("{\"url\":\"https://x\",\"expect\":[200,700]}", "100 to 599");
  refused("{\"url\":\"https://x\",\"expect\":[]}", "1 to 64");
  refused("{\"url\":\"https://x\",\"expect\":[200.5]}", "100 to 599");
  refused("{\"url\":\"https://x\",\"response_headers\":[\"a b\"]}", "response_headers");
}

/* ---- prepare ---- */

static cJSON *prep(const char *cfg_text, const cJSON *ctx, perr *e) {
  cJSON *cfg = cJSON_Parse(cfg_text);
  assert_non_null(cfg);
  cJSON *in = NULL;
  int rc = K->prepare(cfg, ctx, NULL, &in, e);
  cJSON_Delete(cfg);
  assert_true(rc == 0 ? in != NULL : in == NULL);
  return in;
}

static const char *header_value(const cJSON *in, const char *name) {
  const cJSON *h;
  cJSON_ArrayForEach(h, cJSON_GetObjectItem(in, "headers")) {
    if (strcasecmp(cJSON_GetObjectItem(h, "name")->valuestring, name) == 0) {
      const cJSON *v = cJSON_GetObjectItem(h, "value");
      return v ? v->valuestring : NULL;
    }
  }
  return NULL;
}

static void test_prepare(void **state) {
  (void)state;
  cJSON *ctx = cJSON_Parse(
      "{\"event\":{\"id\":\"a/b?c d&e\",\"name\":\"Zo\\u00eb \\\"Q\\\"\\\\\\nx\\u0001\","
      "\"score\":7,\"tags\":[\"a\",\"b\"],\"bad\":\"x\\r\\nEvil: 1\"},\"run\":{\"id\":12}}");
  perr e = {{0}};

  cJSON *in = prep(
      "{\"url\":\"https://crm.example/l/{{event.id}}?n={{{event.name}}}\","
      "\"headers\":{\"Authorization\":{\"secret\":\"env:CRM_T\",\"prefix\":\"Bearer \"},"
      "\"X-Key\":\"env:CRM_K\",\"X-Run\":\"{{run.id}}\"},"
      "\"body\":\"{\\\"name\\\": \\\"{{event.name}}\\\", \\\"score\\\": {{event.score}}, "
      "\\\"tags\\\": {{{event.tags}}}}\",\"expect\":201}",
      ctx, &e);
  assert_non_null(in);
  assert_string_equal(cJSON_GetObjectItem(in, "method")->valuestring, "POST");
  /* Both tag forms are percent-encoded in the URL. */
  assert_string_equal(cJSON_GetObjectItem(in, "url")->valuestring,
                      "https://crm.example/l/a%2Fb%3Fc%20d%26e?n=Zo%C3%AB%20%22Q%22%5C%0Ax%01");
  const char *body = cJSON_GetObjectItem(in, "body")->valuestring;
  cJSON *parsed = cJSON_Parse(body);
  assert_non_null(parsed);
  assert_string_equal(cJSON_GetObjectItem(parsed, "name")->valuestring,
                      "Zo\xc3\xab \"Q\"\\\nx\x01");
  assert_int_equal(cJSON_GetObjectItem(parsed, "score")->valueint, 7);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(parsed, "tags")), 2);
  cJSON_Delete(parsed);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(in, "json")));
  assert_string_equal(header_value(in, "Content-Type"), "application/json");
  assert_string_equal(header_value(in, "X-Run"), "12");
  /* Secrets stay references; nothing resolved at prepare. */
  const cJSON *auth = cJSON_GetArrayItem(cJSON_GetObjectItem(in, "headers"), 0);
  assert_string_equal(cJSON_GetObjectItem(auth, "secret")->valuestring, "env:CRM_T");
  assert_string_equal(cJSON_GetObjectItem(auth, "prefix")->valuestring, "Bearer ");
  assert_null(cJSON_GetObjectItem(auth, "value"));
  assert_null(header_value(in, "X-Key"));
  const cJSON *x = cJSON_GetObjectItem(in, "expect");
  assert_true(cJSON_IsArray(x) && cJSON_GetArraySize(x) == 1);
  assert_int_equal(cJSON_GetArrayItem(x, 0)->valueint, 201);
  assert_int_equal((int)cJSON_GetObjectItem(in, "timeout_ms")->valuedouble, 30000);
  assert_null(cJSON_GetObjectItem(in, "idempotency_key"));
  cJSON_Delete(in);

  /* Text mode: no escaping, its own content type, a rendered key. */
  cJSON *ctx2 =
      cJSON_Parse("{\"event\":{\"u\":\"http://h:8/p?q=1\",\"name\":\"a\\\"b\",\"score\":3}}");
  in = prep(
      "{\"url\":\"{{{event.u}}}\",\"url_escape\":false,\"method\":\"PATCH\",\"json\":false,"
      "\"body\":\"{{event.name}}\",\"idempotency_key\":\"lead-{{event.score}}\","
      "\"timeout_s\":5}",
      ctx2, &e);
  cJSON_Delete(ctx2);
  assert_non_null(in);
  assert_string_equal(cJSON_GetObjectItem(in, "url")->valuestring, "http://h:8/p?q=1");
  assert_string_equal(cJSON_GetObjectItem(in, "body")->valuestring, "a\"b");
  assert_string_equal(header_value(in, "Content-Type"), "text/plain; charset=utf-8");
  assert_string_equal(cJSON_GetObjectItem(in, "idempotency_key")->valuestring, "lead-3");
  assert_int_equal((int)cJSON_GetObjectItem(in, "timeout_ms")->valuedouble, 5000);
  cJSON_Delete(in);

  /* A body that renders invalid JSON: a clear permanent error. */
  in = prep("{\"url\":\"https://x\",\"body\":\"{\\\"n\\\": {{event.name}}}\"}", ctx, &e);
  assert_null(in);
  assert_non_null(strstr(e.msg, "not valid JSON"));
  assert_non_null(strstr(e.msg, "line 1"));

  /* A line break from the event cannot smuggle a header. */
  in = prep("{\"url\":\"https://x\",\"headers\":{\"X-A\":\"{{event.bad}}\"}}", ctx, &e);
  assert_null(in);
  assert_non_null(strstr(e.msg, "X-A"));

  /* url_escape: false still needs an http(s) URL without blanks. */
  in = prep("{\"url\":\"{{event.id}}\",\"url_escape\":false}", ctx, &e);
  assert_null(in);
  assert_non_null(strstr(e.msg, "url"));

  /* A secret URL is stored as its reference. */
  in = prep("{\"url\":\"env:HOOK\",\"method\":\"DELETE\"}", ctx, &e);
  assert_non_null(in);
  assert_null(cJSON_GetObjectItem(in, "url"));
  assert_string_equal(cJSON_GetObjectItem(in, "url_secret")->valuestring, "env:HOOK");
  assert_null(cJSON_GetObjectItem(in, "body"));
  cJSON_Delete(in);

  /* A rendered key must be a header-safe token. */
  in = prep("{\"url\":\"https://x\",\"idempotency_key\":\"{{event.id}}\"}", ctx, &e);
  assert_null(in);
  assert_non_null(strstr(e.msg, "idempotency_key"));
  cJSON_Delete(ctx);
}

/* ---- classification and output ---- */

typedef struct fake_headers {
  const char *const *kv; /* name, value, ..., NULL */
} fake_headers;

static const char *fake_header(void *ud, const char *name) {
  const fake_headers *h = ud;
  for (size_t i = 0; h->kv && h->kv[i]; i += 2)
    if (strcasecmp(h->kv[i], name) == 0) return h->kv[i + 1];
  return NULL;
}

static http_verdict classify(long status, const char *const *kv, const char *body,
                             const char *expect) {
  fake_headers h = {kv};
  http_result r = {0, "", 0, status, fake_header, &h, body, body ? strlen(body) : 0};
  cJSON *x = expect ? cJSON_Parse(expect) : NULL;
  http_verdict v;
  http_action_classify(&r, x, 30000, 1700000000LL, &v);
  cJSON_Delete(x);
  return v;
}

static void test_classify(void **state) {
  (void)state;
  http_verdict v = classify(201, NULL, "{}", "[200,201]");
  assert_int_equal(v.cls, OUTCOME_OK);
  v = classify(204, NULL, "", NULL);
  assert_int_equal(v.cls, OUTCOME_OK);
  v = classify(204, NULL, "", "[201]");
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_non_null(strstr(v.message, "HTTP 204 (not among the expected statuses)"));
  v = classify(404, NULL, "", "[200,404]");
  assert_int_equal(v.cls, OUTCOME_OK);

  static const char *const ra2[] = {"Retry-After", "2", NULL};
  v = classify(503, ra2, "busy", NULL);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_int_equal(v.retry_after_ms, 2000);
  assert_string_equal(v.message, "HTTP 503: busy");
  /* 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT. */
  static const char *const date[] = {"retry-after", "Tue, 14 Nov 2023 22:13:25 GMT", NULL};
  v = classify(429, date, NULL, NULL);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_int_equal(v.retry_after_ms, 5000);
  static const char *const huge[] = {"Retry-After", "864000", NULL};
  v = classify(429, huge, NULL, NULL);
  assert_int_equal(v.retry_after_ms, HTTP_ACTION_MAX_RETRY_AFTER_MS);
  static const long transient[] = {408, 409, 425, 429, 500, 502, 504, 599};
  for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++) {
    v = classify(transient[i], NULL, NULL, NULL);
    assert_int_equal(v.cls, OUTCOME_RETRY);
    assert_int_equal(v.retry_after_ms, 0);
  }
  /* Retry-After on a permanent error changes nothing. */
  v = classify(400, ra2, "{\"error\": \"name\\nis required\"}", NULL);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_int_equal(v.retry_after_ms, 0);
  assert_string_equal(v.message, "HTTP 400: {\"error\": \"name\\nis required\"}");
  v = classify(422, NULL, "line1\nline2\r\n", NULL);
  assert_string_equal(v.message, "HTTP 422: line1 line2  ");
  static const char *const loc[] = {"Location", "https://new.example/x", NULL};
  v = classify(301, loc, NULL, NULL);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_non_null(strstr(v.message, "https://new.example/x"));

  /* The excerpt is capped, cut on a character boundary. */
  char big[2000];
  memset(big, 'a', sizeof big);
  memcpy(big + HTTP_ACTION_EXCERPT_MAX - 1, "\xc3\xa9", 2);
  big[sizeof big - 1] = '\0';
  v = classify(403, NULL, big, NULL);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  size_t n = strlen(v.message);
  assert_true(n < 10 + HTTP_ACTION_EXCERPT_MAX + 4);
  assert_string_equal(v.message + n - 4, "a...");

  /* Transport results. */
  http_result r = {7, "Failed to connect", 0, 0, NULL, NULL, "", 0};
  http_action_classify(&r, NULL, 30000, 0, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_string_equal(v.message, "connection error: Failed to connect");
  r = (http_result){28, "Timeout", 1, 0, NULL, NULL, "", 0};
  http_action_classify(&r, NULL, 5000, 0, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_string_equal(v.message, "request timed out after 5000 ms");
  r = (http_result){HTTP_CANCELLED, "cancelled", 0, 0, NULL, NULL, "", 0};
  http_action_classify(&r, NULL, 5000, 0, &v);
  assert_int_equal(v.cls, OUTCOME_CANCELLED);
  r = (http_result){23 /* CURLE_WRITE_ERROR */,
                    "response body larger than 1048576 bytes",
                    0,
                    0,
                    NULL,
                    NULL,
                    "",
                    0};
  http_action_classify(&r, NULL, 5000, 0, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_non_null(strstr(v.message, "larger than"));
}

static void test_output(void **state) {
  (void)state;
  static const char *const kv[] = {"Content-Type",
                                   "application/vnd.api+json; charset=utf-8",
                                   "X-Lead-Score",
                                   "9",
                                   "Set-Cookie",
                                   "sid=secret",
                                   "ETag",
                                   "\"v1\"",
                                   NULL};
  fake_headers h = {kv};
  const char *body = "{\"id\": \"lead-1\", \"n\": [1, 2]}";
  http_result r = {0, "", 0, 201, fake_header, &h, body, strlen(body)};
  cJSON *extra = cJSON_Parse("[\"X-Lead-Score\"]");
  cJSON *out = http_action_output(&r, extra);
  assert_non_null(out);
  assert_int_equal(cJSON_GetObjectItem(out, "status")->valueint, 201);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "body"), "id")->valuestring,
                      "lead-1");
  const cJSON *hdrs = cJSON_GetObjectItem(out, "headers");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(hdrs, "x-lead-score")->valuestring, "9");
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(hdrs, "etag")->valuestring, "\"v1\"");
  assert_non_null(cJSON_GetObjectItemCaseSensitive(hdrs, "content-type"));
  assert_null(cJSON_GetObjectItemCaseSensitive(hdrs, "set-cookie"));
  assert_null(cJSON_GetObjectItem(out, "body_truncated"));
  cJSON_Delete(out);
  cJSON_Delete(extra);

  /* JSON-looking text under a text type stays text. */
  static const char *const text[] = {"Content-Type", "text/plain", NULL};
  h.kv = text;
  r = (http_result){0, "", 0, 200, fake_header, &h, "{\"a\":1}", 7};
  out = http_action_output(&r, NULL);
  assert_string_equal(cJSON_GetObjectItem(out, "body")->valuestring, "{\"a\":1}");
  cJSON_Delete(out);

  /* No type: parsed when it starts like JSON. */
  h.kv = NULL;
  r.body = " [1]";
  r.body_len = 4;
  out = http_action_output(&r, NULL);
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(out, "body")));
  cJSON_Delete(out);

  /* Long text: capped on a boundary, invalid bytes replaced, flagged. */
  size_t len = HTTP_ACTION_TEXT_MAX + 100;
  char *big = malloc(len);
  assert_non_null(big);
  memset(big, 'x', len);
  big[0] = '\xff';
  memcpy(big + HTTP_ACTION_TEXT_MAX, "\xe2\x9c\x93", 3);
  r = (http_result){0, "", 0, 200, NULL, NULL, big, len};
  out = http_action_output(&r, NULL);
  const char *s = cJSON_GetObjectItem(out, "body")->valuestring;
  assert_memory_equal(s, "\xef\xbf\xbdxx", 5);
  assert_true(strlen(s) <= HTTP_ACTION_TEXT_MAX);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(out, "body_truncated")));
  cJSON_Delete(out);
  free(big);

  assert_true(http_action_is_json_type("application/json"));
  assert_true(http_action_is_json_type(" Application/JSON ; charset=utf-8"));
  assert_true(http_action_is_json_type("application/problem+json"));
  assert_false(http_action_is_json_type("text/plain"));
  assert_false(http_action_is_json_type("+json"));
  assert_false(http_action_is_json_type("application/jsonx"));
}

/* ---- start: secrets resolved before anything is sent ---- */

static void test_start_secret_missing(void **state) {
  (void)state;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  perr e = {{0}};
  http_client *hc = http_client_new(loop, &e);
  assert_non_null(hc);
  runtime rt = {.loop = loop, .http = hc};
  unsetenv("PROMPTD_TEST_NO_SUCH");
  cJSON *in = cJSON_Parse(
      "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/\",\"headers\":"
      "[{\"name\":\"Authorization\",\"secret\":\"env:PROMPTD_TEST_NO_SUCH\"}],"
      "\"timeout_ms\":1000}");
  action_call c = {.loop = loop, .input = in, .run_id = 3, .step_id = "crm", .rt = &rt};
  g_done_calls = 0;
  assert_int_equal(K->start(&c, &e), -1);
  assert_non_null(strstr(e.msg, "PROMPTD_TEST_NO_SUCH"));
  assert_int_equal(g_done_calls, 0);
  assert_int_equal(http_client_in_flight(hc), 0);

  /* A secret holding a line break is refused, and its value not shown. */
  setenv("PROMPTD_TEST_BAD", "abc\r\nEvil: 1", 1);
  cJSON_Delete(in);
  in = cJSON_Parse(
      "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:9/\",\"headers\":"
      "[{\"name\":\"X-K\",\"secret\":\"env:PROMPTD_TEST_BAD\"}]}");
  c.input = in;
  assert_int_equal(K->start(&c, &e), -1);
  assert_non_null(strstr(e.msg, "line break"));
  assert_null(strstr(e.msg, "Evil"));
  unsetenv("PROMPTD_TEST_BAD");
  cJSON_Delete(in);
  http_client_free(hc);
  ev_loop_destroy(loop);
  log_redact_clear();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validate),
      cmocka_unit_test(test_prepare),
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_output),
      cmocka_unit_test(test_start_secret_missing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
