/*
 * store_usage: usage lands on the step row and in the day totals in one
 * call; reports sum per recipe and model; a day's totals feed budgets; the
 * response cache honours expiry; waiting-for-budget runs are runnable when
 * due and can be replayed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store.h"
#include "testutil.h"

static char *g_dir;
static store *g_st;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  char db[4200];
  snprintf(db, sizeof db, "%s/u.db", g_dir);
  perr e;
  return store_open(&g_st, db, 0, &e);
}

static int teardown(void **state) {
  (void)state;
  store_close(g_st);
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

/* A recipe, an event and a run with one begun step: what usage hangs on. */
static int64_t make_run(const char *recipe) {
  perr e;
  int version, changed;
  int64_t ev, run;
  int created;
  char key[64];
  snprintf(key, sizeof key, "k-%s", recipe);
  assert_int_equal(store_recipe_put(g_st, recipe, "{}", recipe, "src", NULL, 1, &version, &changed, &e), 0);
  assert_int_equal(store_event_insert(g_st, "src", key, "{}", 2, 1, &ev, &created, &e), 0);
  assert_int_equal(store_run_insert(g_st, ev, recipe, version, 1, &run, &e), 0);
  assert_int_equal(store_step_begin(g_st, run, 0, "ask", "{}", NULL, 1, &e), 0);
  return run;
}

static void test_usage_add_and_report(void **state) {
  (void)state;
  perr e;
  int64_t a = make_run("leads"), b = make_run("reviews");
  assert_int_equal(store_usage_add(g_st, a, 0, "2026-11-26", "openai", "gpt-4o-mini", "leads", 1,
                                   100, 20, 50, 0.001, &e), 0);
  assert_int_equal(store_usage_add(g_st, a, 0, "2026-11-27", "openai", "gpt-4o-mini", "leads", 2,
                                   300, 40, 0, 0.002, &e), 0);
  assert_int_equal(store_usage_add(g_st, b, 0, "2026-11-27", "openai", "gpt-4o", "reviews", 1,
                                   10, 5, 0, 0.5, &e), 0);
  store_step *steps;
  size_t n;
  assert_int_equal(store_steps_of_run(g_st, a, &steps, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(steps[0].prompt_tokens, 400);
  assert_int_equal(steps[0].completion_tokens, 60);
  assert_int_equal(steps[0].cached_tokens, 50);
  assert_true(steps[0].cost_usd > 0.00299 && steps[0].cost_usd < 0.00301);
  store_steps_free(steps, n);

  store_usage_row *rows;
  assert_int_equal(store_usage_report(g_st, NULL, NULL, &rows, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_string_equal(rows[0].recipe, "leads");
  assert_int_equal(rows[0].calls, 3);
  assert_int_equal(rows[0].prompt_tokens, 400);
  assert_string_equal(rows[1].model, "gpt-4o");
  store_usage_rows_free(rows, n);
  /* --since and --recipe */
  assert_int_equal(store_usage_report(g_st, "2026-11-27", "leads", &rows, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(rows[0].calls, 2);
  store_usage_rows_free(rows, n);

  int64_t tokens;
  double cost;
  assert_int_equal(store_usage_day(g_st, "2026-11-27", NULL, &tokens, &cost, &e), 0);
  assert_int_equal(tokens, 340 + 15);
  assert_true(cost > 0.5019 && cost < 0.5021);
  assert_int_equal(store_usage_day(g_st, "2026-11-27", "leads", &tokens, &cost, &e), 0);
  assert_int_equal(tokens, 340);
  assert_int_equal(store_usage_day(g_st, "2026-01-01", NULL, &tokens, &cost, &e), 0);
  assert_int_equal(tokens, 0);
}

static void test_cache_expiry(void **state) {
  (void)state;
  perr e;
  char *v;
  assert_int_equal(store_cache_get(g_st, "k", 100, &v, &e), 1);
  assert_int_equal(store_cache_put(g_st, "k", "{\"text\":\"a\"}", 100, 200, &e), 0);
  assert_int_equal(store_cache_get(g_st, "k", 150, &v, &e), 0);
  assert_string_equal(v, "{\"text\":\"a\"}");
  free(v);
  assert_int_equal(store_cache_get(g_st, "k", 200, &v, &e), 1); /* expired */
  assert_int_equal(store_cache_put(g_st, "k", "{\"text\":\"b\"}", 300, 400, &e), 0);
  assert_int_equal(store_cache_get(g_st, "k", 350, &v, &e), 0);
  assert_string_equal(v, "{\"text\":\"b\"}");
  free(v);
}

static void test_budget_runs(void **state) {
  (void)state;
  perr e;
  int64_t run = make_run("leads");
  assert_int_equal(store_run_update(g_st, run, "budget", 1, 5000, "daily cap reached", 10, &e), 0);
  int64_t ids[4], at;
  size_t n;
  assert_int_equal(store_runs_runnable(g_st, 4000, NULL, 0, 4, ids, &n, &e), 0);
  assert_int_equal(n, 0);
  assert_int_equal(store_runs_next_wakeup(g_st, &at, &e), 0);
  assert_int_equal(at, 5000);
  assert_int_equal(store_runs_runnable(g_st, 5000, NULL, 0, 4, ids, &n, &e), 0);
  assert_int_equal(n, 1);
  /* replay resumes a budget run now */
  assert_int_equal(store_run_replay(g_st, run, 20, &e), 0);
  store_run r;
  assert_int_equal(store_run_get(g_st, run, &r, &e), 0);
  assert_string_equal(r.status, "queued");
  store_run_release(&r);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {T(test_usage_add_and_report), T(test_cache_expiry),
                                     T(test_budget_runs)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
