/*
 * gpt/errors: the SDKs' retry rules on the saved OpenAI error bodies, the
 * insufficient_quota budget case, x-should-retry overriding the status,
 * retry-after-ms / retry-after (seconds and the three HTTP-date forms),
 * bodies from compatible servers, and transport errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gpt/errors.h"
#include "testutil.h"

/* Response headers for a test: name/value pairs, NULL-terminated. */
static const char *hdr(void *ud, const char *name) {
  const char *const *h = ud;
  for (; h && h[0]; h += 2)
    if (strcasecmp(h[0], name) == 0) return h[1];
  return NULL;
}

static char *example(const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/conformance/examples/%s", PROMPTD_SHARED_DIR, name);
  char *s = tu_read_file(path, len);
  if (!s) fail_msg("cannot read %s", path);
  return s;
}

static void classify_file(const char *file, long status, const char *const *h, gpt_verdict *v) {
  size_t len;
  char *body = example(file, &len);
  gpt_classify(0, 0, status, hdr, (void *)h, body, len, v);
  free(body);
}

static void t_401_invalid_key(void **st) {
  (void)st;
  gpt_verdict v;
  classify_file("openai-error-401-invalid-api-key.json", 401, NULL, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_int_equal(v.budget, 0);
  assert_int_equal(v.retry_after_ms, -1);
  assert_string_equal(v.message,
                      "Incorrect API key provided: sk-VKMIs***************************************"
                      "wjh3. You can find your API key at "
                      "https://platform.openai.com/account/api-keys. (code: invalid_api_key)");
}

static void t_429_rate_limit(void **st) {
  (void)st;
  static const char *const h[] = {"Retry-After-Ms", "6", "retry-after", "1", NULL};
  gpt_verdict v;
  classify_file("openai-error-429-rate-limit.json", 429, h, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_int_equal(v.budget, 0);
  assert_int_equal(v.retry_after_ms, 6); /* the ms header wins */
  assert_non_null(strstr(v.message, "Rate limit reached for 10KTPM-200RPM"));
  assert_non_null(strstr(v.message, "(code: rate_limit_exceeded)"));
}

static void t_429_insufficient_quota(void **st) {
  (void)st;
  gpt_verdict v;
  classify_file("openai-error-429-insufficient-quota.json", 429, NULL, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_int_equal(v.budget, 1);
  assert_non_null(strstr(v.message, "You exceeded your current quota"));
  assert_non_null(strstr(v.message, "(code: insufficient_quota)"));
  /* Even when the server says retry: waiting does not top up an account. */
  static const char *const h[] = {"x-should-retry", "true", NULL};
  classify_file("openai-error-429-insufficient-quota.json", 429, h, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_int_equal(v.budget, 1);
  /* Older bodies: code null, type insufficient_quota. */
  const char *old = "{\"error\":{\"message\":\"You exceeded your current quota\","
                    "\"type\":\"insufficient_quota\",\"param\":null,\"code\":null}}";
  gpt_classify(0, 0, 429, NULL, NULL, old, strlen(old), &v);
  assert_int_equal(v.budget, 1);
  assert_string_equal(v.message, "You exceeded your current quota (type: insufficient_quota)");
  /* Only a 429 is about quota. */
  gpt_classify(0, 0, 400, NULL, NULL, old, strlen(old), &v);
  assert_int_equal(v.budget, 0);
  assert_int_equal(v.cls, OUTCOME_FAIL);
}

static void t_status_table(void **st) {
  (void)st;
  static const struct {
    long status;
    outcome_class cls;
  } cases[] = {
      {200, OUTCOME_OK},    {201, OUTCOME_OK},    {400, OUTCOME_FAIL},  {401, OUTCOME_FAIL},
      {403, OUTCOME_FAIL},  {404, OUTCOME_FAIL},  {408, OUTCOME_RETRY}, {409, OUTCOME_RETRY},
      {410, OUTCOME_FAIL},  {422, OUTCOME_FAIL},  {429, OUTCOME_RETRY}, {500, OUTCOME_RETRY},
      {502, OUTCOME_RETRY}, {503, OUTCOME_RETRY}, {504, OUTCOME_RETRY}, {599, OUTCOME_RETRY},
      {302, OUTCOME_FAIL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gpt_verdict v;
    gpt_classify(0, 0, cases[i].status, NULL, NULL, NULL, 0, &v);
    if (v.cls != cases[i].cls) fail_msg("status %ld: class %d", cases[i].status, (int)v.cls);
    char want[32] = "";
    if (cases[i].cls != OUTCOME_OK) snprintf(want, sizeof want, "HTTP %ld", cases[i].status);
    assert_string_equal(v.message, want);
    assert_int_equal(v.retry_after_ms, -1);
  }
}

static void t_should_retry_overrides(void **st) {
  (void)st;
  static const char *const yes[] = {"X-Should-Retry", "true", NULL};
  static const char *const no[] = {"x-should-retry", "false", NULL};
  static const char *const junk[] = {"x-should-retry", "maybe", NULL};
  gpt_verdict v;
  gpt_classify(0, 0, 400, hdr, (void *)yes, NULL, 0, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  gpt_classify(0, 0, 503, hdr, (void *)no, NULL, 0, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  gpt_classify(0, 0, 429, hdr, (void *)no, NULL, 0, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  gpt_classify(0, 0, 503, hdr, (void *)junk, NULL, 0, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  gpt_classify(0, 0, 200, hdr, (void *)no, NULL, 0, &v); /* a 2xx is a 2xx */
  assert_int_equal(v.cls, OUTCOME_OK);
}

static void t_retry_after_forms(void **st) {
  (void)st;
  gpt_verdict v;
  static const char *const ms[] = {"retry-after-ms", "1500.5", NULL};
  gpt_classify(0, 0, 429, hdr, (void *)ms, NULL, 0, &v);
  assert_int_equal(v.retry_after_ms, 1501);
  static const char *const secs[] = {"Retry-After", "20", NULL};
  gpt_classify(0, 0, 503, hdr, (void *)secs, NULL, 0, &v);
  assert_int_equal(v.retry_after_ms, 20000);
  static const char *const frac[] = {"retry-after", "0.25", NULL};
  gpt_classify(0, 0, 503, hdr, (void *)frac, NULL, 0, &v);
  assert_int_equal(v.retry_after_ms, 250);
  static const char *const bad_ms[] = {"retry-after-ms", "soon", "retry-after", "3", NULL};
  gpt_classify(0, 0, 503, hdr, (void *)bad_ms, NULL, 0, &v);
  assert_int_equal(v.retry_after_ms, 3000);
  static const char *const neg[] = {"retry-after", "-5", NULL};
  gpt_classify(0, 0, 503, hdr, (void *)neg, NULL, 0, &v);
  assert_int_equal(v.retry_after_ms, -1);
  static const char *const past[] = {"retry-after", "Sun, 06 Nov 1994 08:49:37 GMT", NULL};
  gpt_classify(0, 0, 503, hdr, (void *)past, NULL, 0, &v);
  assert_int_equal(v.retry_after_ms, 0);
  static const char *const garbage[] = {"retry-after", "Someday, 99 Foo 1994", NULL};
  gpt_classify(0, 0, 503, hdr, (void *)garbage, NULL, 0, &v);
  assert_int_equal(v.retry_after_ms, -1);

  /* A date two minutes ahead, formatted as the server would. */
  time_t later = time(NULL) + 120;
  struct tm tm;
  gmtime_r(&later, &tm);
  char date[64];
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  const char *fut[] = {"retry-after", date, NULL};
  gpt_classify(0, 0, 503, hdr, (void *)fut, NULL, 0, &v);
  assert_true(v.retry_after_ms > 117000 && v.retry_after_ms <= 120000);
}

static void t_http_date_forms(void **st) {
  (void)st;
  /* 1994-11-06 08:49:37 UTC is 784111777; "now" is 10 s before it. */
  const long long now = 784111767;
  const char *forms[] = {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                         "Sun Nov  6 08:49:37 1994"};
  for (int i = 0; i < 3; i++) {
    const char *h[] = {"retry-after", forms[i], NULL};
    long ms = gpt_retry_after_ms(hdr, (void *)h, now);
    if (ms != 10000) fail_msg("%s: %ld", forms[i], ms);
  }
  assert_int_equal(gpt_retry_after_ms(NULL, NULL, now), -1);
  const char *none[] = {NULL};
  assert_int_equal(gpt_retry_after_ms(hdr, (void *)none, now), -1);
}

static void t_transport(void **st) {
  (void)st;
  gpt_verdict v;
  gpt_classify(7, 0, 0, NULL, NULL, NULL, 0, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_string_equal(v.message, "connection error (transport error 7)");
  gpt_classify(28, 1, 0, NULL, NULL, NULL, 0, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_string_equal(v.message, "request timed out");
  assert_int_equal(v.retry_after_ms, -1);
  gpt_classify(0, 1, 200, NULL, NULL, "{}", 2, &v); /* timed out mid-body */
  assert_int_equal(v.cls, OUTCOME_RETRY);
}

static void t_other_bodies(void **st) {
  (void)st;
  gpt_verdict v;
  const char *html = "<html><body>502 Bad Gateway</body></html>";
  gpt_classify(0, 0, 502, NULL, NULL, html, strlen(html), &v);
  assert_string_equal(v.message, "HTTP 502");
  const char *plain = "{\"error\":\"model 'llama9' not found\"}"; /* Ollama-style */
  gpt_classify(0, 0, 404, NULL, NULL, plain, strlen(plain), &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_string_equal(v.message, "model 'llama9' not found");
  const char *msg = "{\"message\":\"bad request\"}";
  gpt_classify(0, 0, 400, NULL, NULL, msg, strlen(msg), &v);
  assert_string_equal(v.message, "bad request");
  const char *trunc = "{\"error\":{\"message\":\"cut of";
  gpt_classify(0, 0, 500, NULL, NULL, trunc, strlen(trunc), &v);
  assert_string_equal(v.message, "HTTP 500");
  assert_int_equal(v.cls, OUTCOME_RETRY);
  const char *empty = "{\"error\":{\"message\":\"\",\"code\":\"x\"}}";
  gpt_classify(0, 0, 400, NULL, NULL, empty, strlen(empty), &v);
  assert_string_equal(v.message, "HTTP 400");
}

static void t_long_message_keeps_code(void **st) {
  (void)st;
  char body[3000];
  size_t o = (size_t)snprintf(body, sizeof body, "{\"error\":{\"message\":\"");
  for (int i = 0; i < 1000; i++) {
    memcpy(body + o, "\xc3\xa9", 2); /* é: a cut must not split it */
    o += 2;
  }
  snprintf(body + o, sizeof body - o, "\",\"code\":\"too_long\"}}");
  gpt_verdict v;
  gpt_classify(0, 0, 400, NULL, NULL, body, strlen(body), &v);
  size_t n = strlen(v.message);
  assert_true(n < sizeof v.message);
  assert_string_equal(v.message + n - strlen(" (code: too_long)"), " (code: too_long)");
  assert_int_equal(((n - strlen(" (code: too_long)")) % 2), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(t_401_invalid_key),
      cmocka_unit_test(t_429_rate_limit),
      cmocka_unit_test(t_429_insufficient_quota),
      cmocka_unit_test(t_status_table),
      cmocka_unit_test(t_should_retry_overrides),
      cmocka_unit_test(t_retry_after_forms),
      cmocka_unit_test(t_http_date_forms),
      cmocka_unit_test(t_transport),
      cmocka_unit_test(t_other_bodies),
      cmocka_unit_test(t_long_message_keeps_code),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
