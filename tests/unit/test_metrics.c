/*
 * metrics: the exact exposition text of a small registry (HELP and TYPE
 * lines, label escaping, histogram buckets cumulative with +Inf, _sum and
 * _count, value formatting), series identity (same labels, same series;
 * many series through table growth), and the catalog's scrape (every
 * family valid, collectors run and removed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "core/metrics_catalog.h"

static const char *const l_src[] = {"source", NULL};
static const char *const l_two[] = {"model", "outcome", NULL};
static const double bounds[] = {0.1, 0.5, 2};

static char *render(metric_family *const *fams) {
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  assert_int_equal(metrics_render(fams, &b), 0);
  return buf_detach(&b, NULL);
}

static void test_exact_text(void **state) {
  (void)state;
  metric_family events = {.name = "t_events_total",
                          .help = "Events seen.\nSecond line with a \\ backslash and \"quotes\".",
                          .type = METRIC_COUNTER,
                          .labels = l_src};
  metric_family depth = {.name = "t_queue_depth", .help = "Queue depth.", .type = METRIC_GAUGE};
  metric_family empty = {
      .name = "t_calls_total", .help = "Calls.", .type = METRIC_COUNTER, .labels = l_two};
  metric_family lat = {.name = "t_latency_seconds",
                       .help = "Latency.",
                       .type = METRIC_HISTOGRAM,
                       .labels = l_src,
                       .bounds = bounds,
                       .nbounds = 3};
  metric_inc(METRIC_GET(&events, "webhook:/a"));
  metric_add(METRIC_GET(&events, "webhook:/a"), 2);
  metric_inc(METRIC_GET(&events, "we\"ird\\path\nx"));
  metric_set(METRIC_GET(&depth, NULL), 0.25);
  metric_series *h = METRIC_GET(&lat, "x");
  metric_observe(h, 0.1); /* on a bound: counted in that bucket (le is <=) */
  metric_observe(h, 0.3);
  metric_observe(h, 1.5);
  metric_observe(h, 7);
  metric_observe(METRIC_GET(&lat, "y"), 0.01);
  metric_family *fams[] = {&events, &depth, &empty, &lat, NULL};
  char *text = render(fams);
  const char *want =
      "# HELP t_events_total Events seen.\\nSecond line with a \\\\ backslash and \"quotes\".\n"
      "# TYPE t_events_total counter\n"
      "t_events_total{source=\"webhook:/a\"} 3\n"
      "t_events_total{source=\"we\\\"ird\\\\path\\nx\"} 1\n"
      "# HELP t_queue_depth Queue depth.\n"
      "# TYPE t_queue_depth gauge\n"
      "t_queue_depth 0.25\n"
      "# HELP t_calls_total Calls.\n"
      "# TYPE t_calls_total counter\n"
      "# HELP t_latency_seconds Latency.\n"
      "# TYPE t_latency_seconds histogram\n"
      "t_latency_seconds_bucket{source=\"x\",le=\"0.1\"} 1\n"
      "t_latency_seconds_bucket{source=\"x\",le=\"0.5\"} 2\n"
      "t_latency_seconds_bucket{source=\"x\",le=\"2\"} 3\n"
      "t_latency_seconds_bucket{source=\"x\",le=\"+Inf\"} 4\n"
      "t_latency_seconds_sum{source=\"x\"} 8.9\n"
      "t_latency_seconds_count{source=\"x\"} 4\n"
      "t_latency_seconds_bucket{source=\"y\",le=\"0.1\"} 1\n"
      "t_latency_seconds_bucket{source=\"y\",le=\"0.5\"} 1\n"
      "t_latency_seconds_bucket{source=\"y\",le=\"2\"} 1\n"
      "t_latency_seconds_bucket{source=\"y\",le=\"+Inf\"} 1\n"
      "t_latency_seconds_sum{source=\"y\"} 0.01\n"
      "t_latency_seconds_count{source=\"y\"} 1\n";
  assert_string_equal(text, want);
  free(text);
  for (size_t i = 0; fams[i]; i++) metric_family_release(fams[i]);
  /* Released families render their header only, and can be used again. */
  metric_inc(METRIC_GET(&events, "again"));
  metric_family *one[] = {&events, NULL};
  text = render(one);
  assert_non_null(strstr(text, "t_events_total{source=\"again\"} 1\n"));
  assert_null(strstr(text, "webhook:/a"));
  free(text);
  metric_family_release(&events);
}

static void test_values(void **state) {
  (void)state;
  metric_family g = {.name = "t_value", .help = "Values.", .type = METRIC_GAUGE, .labels = l_src};
  metric_set(METRIC_GET(&g, "big"), 12345678901234.0);
  metric_set(METRIC_GET(&g, "third"), 1.0 / 3.0);
  metric_set(METRIC_GET(&g, "neg"), -2.5);
  metric_set(METRIC_GET(&g, "inf"), INFINITY);
  metric_set(METRIC_GET(&g, "nan"), NAN);
  metric_set(METRIC_GET(&g, "tiny"), 1e-7);
  metric_family *fams[] = {&g, NULL};
  char *text = render(fams);
  assert_non_null(strstr(text, "t_value{source=\"big\"} 12345678901234\n"));
  assert_non_null(strstr(text, "t_value{source=\"third\"} 0.33333333333333331\n"));
  assert_non_null(strstr(text, "t_value{source=\"neg\"} -2.5\n"));
  assert_non_null(strstr(text, "t_value{source=\"inf\"} +Inf\n"));
  assert_non_null(strstr(text, "t_value{source=\"nan\"} NaN\n"));
  assert_non_null(strstr(text, "t_value{source=\"tiny\"} 1e-07\n"));
  free(text);
  metric_family_release(&g);
}

static void test_identity_and_growth(void **state) {
  (void)state;
  metric_family f = {
      .name = "t_calls_total", .help = "Calls.", .type = METRIC_COUNTER, .labels = l_two};
  /* ("ab","c") and ("a","bc") are different series. */
  metric_series *a = METRIC_GET(&f, "ab", "c"), *b = METRIC_GET(&f, "a", "bc");
  assert_non_null(a);
  assert_ptr_not_equal(a, b);
  assert_ptr_equal(METRIC_GET(&f, "ab", "c"), a);
  char name[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "m%d", i);
    metric_add(METRIC_GET(&f, name, "ok"), i);
  }
  /* Pointers stay valid while the table grows. */
  assert_ptr_equal(METRIC_GET(&f, "ab", "c"), a);
  assert_int_equal(f.nseries, 1002);
  for (int i = 0; i < 1000; i += 97) {
    snprintf(name, sizeof name, "m%d", i);
    assert_true(METRIC_GET(&f, name, "ok")->value == (double)i);
  }
  const char *values[] = {"x", NULL};
  assert_null(metric_get(&f, values)); /* a missing value is no series */
  metric_inc(NULL);                    /* and updates to no series are ignored */
  metric_observe(NULL, 1);
  metric_family_release(&f);
}

static int calls;
static void collect(void *ud) {
  calls++;
  metric_set(METRIC_SOLO(&m_runs_in_flight), *(double *)ud);
}

static void test_catalog_scrape(void **state) {
  (void)state;
  double v = 7;
  assert_int_equal(metrics_on_scrape(collect, &v), 0);
  assert_int_equal(metrics_on_scrape(metrics_process_collect, NULL), 0);
  metric_inc(METRIC_GET(&m_events_received, "event:x"));
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  assert_int_equal(metrics_scrape(&b), 0);
  assert_int_equal(calls, 1);
  assert_non_null(strstr(b.data, "\npromptd_runs_in_flight 7\n"));
  assert_non_null(strstr(b.data, "\npromptd_events_received_total{source=\"event:x\"} 1\n"));
  assert_non_null(
      strstr(b.data, "\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "));
  assert_non_null(strstr(b.data, "\nprocess_open_fds "));
  assert_non_null(strstr(b.data, "\nprocess_resident_memory_bytes "));
  assert_non_null(strstr(b.data, "\nprocess_start_time_seconds "));
  /* Every counter's name ends in _total, every family has HELP and TYPE. */
  for (const char *p = b.data; (p = strstr(p, "# TYPE ")); p++) {
    char name[128], type[32];
    assert_int_equal(sscanf(p, "# TYPE %127s %31s", name, type), 2);
    if (strcmp(type, "counter") == 0) assert_string_equal(name + strlen(name) - 6, "_total");
    char help[160];
    snprintf(help, sizeof help, "# HELP %s ", name);
    assert_non_null(strstr(b.data, help));
  }
  metrics_off_scrape(collect, &v);
  metrics_off_scrape(metrics_process_collect, NULL);
  buf_reset(&b);
  assert_int_equal(metrics_scrape(&b), 0);
  assert_int_equal(calls, 1);
  buf_release(&b);
  metrics_catalog_release();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_text),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_identity_and_growth),
      cmocka_unit_test(test_catalog_scrape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
