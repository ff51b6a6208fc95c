/*
 * gpt limits: rate-limit buckets (local limits, the server's headers,
 * 429 blocks), duration strings, prices, daily budgets and providers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt/budget.h"
#include "gpt/pricing.h"
#include "gpt/provider.h"
#include "gpt/ratelimit.h"
#include "testutil.h"

static void test_durations(void **state) {
  (void)state;
  assert_true(fabs(gpt_duration_s("6m0s") - 360) < 1e-9);
  assert_true(fabs(gpt_duration_s("1s") - 1) < 1e-9);
  assert_true(fabs(gpt_duration_s("20ms") - 0.02) < 1e-9);
  assert_true(fabs(gpt_duration_s("1h2m3.5s") - 3723.5) < 1e-9);
  assert_true(fabs(gpt_duration_s("2.5") - 2.5) < 1e-9);
  assert_true(gpt_duration_s("") < 0);
  assert_true(gpt_duration_s("soon") < 0);
  assert_true(gpt_duration_s("5x") < 0);
  assert_true(gpt_duration_s(NULL) < 0);
}

static void test_bucket_local_limits(void **state) {
  (void)state;
  gpt_limiter *l = gpt_limiter_new();
  /* 60 requests a minute: a burst of 60 goes; the bucket refills at 90 %
   * of the limit (headroom against jitter), so the 61st waits 1/0.9 s. */
  for (int i = 0; i < 60; i++) assert_true(gpt_limiter_take(l, "p", "m", 60, 0, 10, 100.0) == 0);
  double wait = gpt_limiter_take(l, "p", "m", 60, 0, 10, 100.0);
  assert_true(fabs(wait - 60.0 / 54.0) < 1e-9);
  /* A second later it is not back yet; 1.12 s later it is. */
  assert_true(gpt_limiter_take(l, "p", "m", 60, 0, 10, 101.0) > 0);
  assert_true(gpt_limiter_take(l, "p", "m", 60, 0, 10, 101.12) == 0);
  /* Tokens: 6,000 a minute (90 a second paced); 5,000 go, the next 2,000
   * wait for 1,000 more = 11.1 s. */
  assert_true(gpt_limiter_take(l, "p", "t", 0, 6000, 5000, 0.0) == 0);
  wait = gpt_limiter_take(l, "p", "t", 0, 6000, 2000, 0.0);
  assert_true(fabs(wait - 1000.0 / 90.0) < 1e-6);
  /* Another model of the same provider has its own bucket; no limits: never waits. */
  for (int i = 0; i < 1000; i++) assert_true(gpt_limiter_take(l, "p", "free", 0, 0, 1e6, 0) == 0);
  gpt_limiter_free(l);
}

static void test_bucket_headers_and_blocks(void **state) {
  (void)state;
  gpt_limiter *l = gpt_limiter_new();
  /* The server says none left and the limit is back in 2 s, limit unknown:
   * blocked for the 2 s even without local limits. */
  gpt_ratelimit_seen none_left = {-1, 0, 2.0, -1, 5000, 1.0};
  gpt_limiter_observe(l, "p", "m", &none_left, 10.0);
  double wait = gpt_limiter_take(l, "p", "m", 0, 0, 10, 10.5);
  assert_true(fabs(wait - 1.5) < 1e-9);
  assert_true(gpt_limiter_take(l, "p", "m", 0, 0, 10, 12.0) == 0);
  /* With the limit known (120 a minute: one back every 0.5 s), the wait is
   * for one request, not for the whole 60 s reset. */
  gpt_ratelimit_seen paced = {120, 0, 60.0, -1, -1, -1};
  gpt_limiter_observe(l, "p", "q", &paced, 30.0);
  wait = gpt_limiter_take(l, "p", "q", 0, 0, 1, 30.0);
  assert_true(fabs(wait - 0.5) < 1e-9);
  /* Without configured limits the bucket paces to the limit the server
   * reported: 120 a minute allows a burst of 120, then one every 0.5 s
   * (0.5 / 0.9 with the headroom). */
  gpt_ratelimit_seen told = {120, 119, 0.5, -1, -1, -1};
  gpt_limiter_observe(l, "p", "learn", &told, 40.0);
  int burst = 0;
  while (gpt_limiter_take(l, "p", "learn", 0, 0, 1, 40.0) == 0) burst++;
  assert_int_equal(burst, 119);
  assert_true(fabs(gpt_limiter_take(l, "p", "learn", 0, 0, 1, 40.0) - 60.0 / 108.0) < 1e-9);
  /* Remaining 3 caps a local bucket of 100. */
  assert_true(gpt_limiter_take(l, "p", "n", 100, 0, 1, 20.0) == 0);
  gpt_ratelimit_seen three = {-1, 3, 30.0, -1, -1, -1};
  gpt_limiter_observe(l, "p", "n", &three, 20.0);
  int went = 0;
  while (gpt_limiter_take(l, "p", "n", 100, 0, 1, 20.0) == 0) went++;
  assert_int_equal(went, 3);
  /* A 429's retry time blocks the bucket. */
  gpt_limiter_block(l, "p", "z", 5.0, 50.0);
  assert_true(fabs(gpt_limiter_take(l, "p", "z", 0, 0, 1, 51.0) - 4.0) < 1e-9);
  gpt_limiter_free(l);
}

static void test_prices(void **state) {
  (void)state;
  /* Defaults by longest prefix: the dated name finds gpt-4o-mini, not gpt-4o. */
  double c = gpt_cost_usd(NULL, "gpt-4o-mini-2024-07-18", 1000000, 0, 1000000);
  assert_true(fabs(c - (0.15 + 0.60)) < 1e-9);
  /* Cached tokens are part of the prompt, at the cached rate. */
  c = gpt_cost_usd(NULL, "gpt-4o-mini", 1000000, 500000, 0);
  assert_true(fabs(c - (0.5 * 0.15 + 0.5 * 0.075)) < 1e-9);
  /* Configured prices win; an unknown model costs nothing. */
  cJSON *prices = cJSON_Parse("{\"gpt-4o-mini\": {\"input\": 1, \"output\": 2}}");
  c = gpt_cost_usd(prices, "gpt-4o-mini-2024-07-18", 1000000, 1000000, 1000000);
  assert_true(fabs(c - 3.0) < 1e-9); /* cached_input defaults to input */
  assert_true(gpt_cost_usd(prices, "llama3.1:8b", 1000, 0, 1000) == 0);
  assert_false(gpt_has_price(prices, "llama3.1:8b"));
  assert_true(gpt_has_price(prices, "gpt-4o"));
  cJSON_Delete(prices);
}

static void test_budget(void **state) {
  (void)state;
  cJSON *cfg = cJSON_Parse("{\"daily_tokens\": 1000, \"recipes\": {\"leads\": {\"daily_usd\": 0.5}}}");
  gpt_budget *b = gpt_budget_new(cfg);
  cJSON_Delete(cfg);
  char why[256];
  int64_t noon = 20784LL * 86400000LL + 12 * 3600 * 1000LL; /* a UTC noon */
  assert_int_equal(gpt_budget_gate(b, NULL, "leads", noon, why, sizeof why), 0);
  gpt_budget_spend(b, "leads", 400, 0.4, noon);
  assert_int_equal(gpt_budget_gate(b, NULL, "leads", noon, why, sizeof why), 0);
  gpt_budget_spend(b, "leads", 100, 0.2, noon);
  /* leads is over its USD cap: wait until the next UTC midnight (12 h). */
  assert_int_equal(gpt_budget_gate(b, NULL, "leads", noon, why, sizeof why), 12 * 3600 * 1000L);
  assert_non_null(strstr(why, "recipe leads"));
  /* Another recipe still has room under the global token cap... */
  assert_int_equal(gpt_budget_gate(b, NULL, "other", noon, why, sizeof why), 0);
  gpt_budget_spend(b, "other", 500, 0.01, noon);
  /* ...until the global cap of 1,000 tokens is reached. */
  assert_true(gpt_budget_gate(b, NULL, "other", noon, why, sizeof why) > 0);
  assert_non_null(strstr(why, "daily token budget"));
  /* The next day starts from zero. */
  assert_int_equal(gpt_budget_gate(b, NULL, "leads", noon + 86400000LL, why, sizeof why), 0);
  gpt_budget_free(b);
  /* No budgets configured: never waits. */
  b = gpt_budget_new(NULL);
  assert_int_equal(gpt_budget_gate(b, NULL, "leads", noon, why, sizeof why), 0);
  gpt_budget_free(b);
}

static void test_providers(void **state) {
  (void)state;
  setenv("OPENAI_API_KEY", "sk-env", 1);
  setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/", 1);
  setenv("AZ_KEY", "az-secret", 1);
  cJSON *sec = cJSON_Parse(
      "{\"azure\": {\"base_url\": \"https://x.openai.azure.com/openai/deployments/d\","
      " \"api_version\": \"2024-10-21\", \"api_key\": \"env:AZ_KEY\"},"
      " \"local\": {\"base_url\": \"http://127.0.0.1:11434/v1\"},"
      " \"broken\": {\"api_key\": \"env:NO_SUCH_VARIABLE_HERE\"}}");
  gpt_providers ps;
  perr e;
  assert_int_equal(gpt_providers_load(sec, &ps, &e), 0);
  cJSON_Delete(sec);
  char *url, **h;
  /* openai from the environment, trailing slash dropped, Bearer key. */
  const gpt_provider *p = gpt_provider_find(&ps, "openai");
  assert_non_null(p);
  assert_int_equal(gpt_provider_endpoint(p, &url, &h, &e), 0);
  assert_string_equal(url, "http://127.0.0.1:9/v1/chat/completions");
  assert_string_equal(h[1], "Authorization: Bearer sk-env");
  free(url);
  gpt_headers_free(h);
  /* Azure: api-version query and api-key header. */
  assert_int_equal(gpt_provider_endpoint(gpt_provider_find(&ps, "azure"), &url, &h, &e), 0);
  assert_string_equal(url,
                      "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21");
  assert_string_equal(h[1], "api-key: az-secret");
  free(url);
  gpt_headers_free(h);
  /* A local server with no key sends none. */
  assert_int_equal(gpt_provider_endpoint(gpt_provider_find(&ps, "local"), &url, &h, &e), 0);
  assert_null(h[1]);
  free(url);
  gpt_headers_free(h);
  /* A key that cannot be resolved fails the call, naming the reference only. */
  assert_int_equal(gpt_provider_endpoint(gpt_provider_find(&ps, "broken"), &url, &h, &e), -1);
  assert_non_null(strstr(e.msg, "env:NO_SUCH_VARIABLE_HERE"));
  assert_null(gpt_provider_find(&ps, "nope"));
  gpt_providers_release(&ps);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_durations),  cmocka_unit_test(test_bucket_local_limits),
      cmocka_unit_test(test_bucket_headers_and_blocks), cmocka_unit_test(test_prices),
      cmocka_unit_test(test_budget),     cmocka_unit_test(test_providers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
