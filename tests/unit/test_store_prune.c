/*
 * store_prune: which rows retention deletes and which it keeps.  Succeeded
 * runs go after their age, failed ones after theirs, open runs (queued,
 * running, retrying, budget) never; steps go with their run, an event with
 * its last run, events without runs after the succeeded age; the newest run
 * and event stay (their ids are never handed out twice); batches stop at
 * the limit and say so; nothing left dangles (PRAGMA foreign_key_check).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/retention.h"
#include "core/store.h"
#include "testutil.h"

static char *g_dir;
static char g_db[4200];
static store *g_st;
static int g_version;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  snprintf(g_db, sizeof g_db, "%s/p.db", g_dir);
  perr e;
  int changed;
  if (store_open(&g_st, g_db, 0, &e)) return -1;
  return store_recipe_put(g_st, "r", "{}", "d1", "src", NULL, 1, &g_version, &changed, &e);
}

static int teardown(void **state) {
  (void)state;
  store_close(g_st);
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

static int64_t event_at(const char *key, int64_t received_at) {
  perr e;
  int64_t id;
  int created;
  assert_int_equal(store_event_insert(g_st, "src", key, "{}", 2, received_at, &id, &created, &e), 0);
  assert_true(created);
  return id;
}

/* A run of ev with one step row, left in status as of updated_at. */
static int64_t run_of(int64_t ev, const char *status, int64_t updated_at) {
  perr e;
  int64_t run;
  assert_int_equal(store_run_insert(g_st, ev, "r", g_version, updated_at - 1, &run, &e), 0);
  assert_int_equal(store_step_begin(g_st, run, 0, "a", "{}", NULL, updated_at - 1, &e), 0);
  assert_int_equal(store_step_finish(g_st, run, 0, "a", "succeeded", "{}", NULL, updated_at, 1, &e), 0);
  assert_int_equal(store_run_update(g_st, run, status, 0, 0, NULL, updated_at, &e), 0);
  return run;
}

static int run_exists(int64_t id) {
  store_run r;
  perr e;
  int rc = store_run_get(g_st, id, &r, &e);
  assert_true(rc >= 0);
  if (rc == 0) store_run_release(&r);
  return rc == 0;
}

static int event_exists(int64_t id) {
  store_event ev;
  perr e;
  int rc = store_event_get(g_st, id, &ev, &e);
  assert_true(rc >= 0);
  if (rc == 0) store_event_release(&ev);
  return rc == 0;
}

static size_t steps_of(int64_t run) {
  store_step *v;
  size_t n;
  perr e;
  assert_int_equal(store_steps_of_run(g_st, run, &v, &n, &e), 0);
  store_steps_free(v, n);
  return n;
}

/* Prunes until done; returns the totals. */
static store_prune_counts prune_all(int64_t succeeded_before, int64_t failed_before, int batch,
                                    int *calls) {
  store_prune_rules r = {succeeded_before, failed_before, 0, batch};
  store_prune_counts c = {0, 0, 0, 0};
  perr e;
  int more = 1;
  *calls = 0;
  while (more) {
    assert_int_equal(store_prune_batch(g_st, &r, &c, &more, &e), 0);
    assert_true(++*calls < 1000);
  }
  return c;
}

/* Nothing refers to a deleted row. */
static void assert_consistent(void) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void test_rules(void **state) {
  (void)state;
  int64_t e_ok = event_at("ok", 90), r_ok = run_of(e_ok, "succeeded", 100);
  int64_t e_fail = event_at("fail", 90), r_fail = run_of(e_fail, "failed", 100);
  /* Open runs, however old: never. */
  static const char *const open[] = {"queued", "running", "retrying", "budget"};
  int64_t e_open[4], r_open[4];
  for (int i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof key, "open%d", i);
    e_open[i] = event_at(key, 1);
    r_open[i] = run_of(e_open[i], open[i], 2);
  }
  /* One event, two recipes' runs: it stays while one is kept. */
  int64_t e_two = event_at("two", 90);
  int64_t r_two_ok = run_of(e_two, "succeeded", 100), r_two_fail = run_of(e_two, "failed", 100);
  int64_t e_none_old = event_at("none-old", 100), e_none_new = event_at("none-new", 5000);
  int64_t e_new = event_at("new", 4000), r_new = run_of(e_new, "succeeded", 4000);

  int calls;
  store_prune_counts c = prune_all(1000, 50, 500, &calls);
  assert_int_equal(calls, 1);
  assert_int_equal(c.runs, 2);
  assert_int_equal(c.steps, 2);
  assert_int_equal(c.events, 2); /* e_ok, e_none_old */
  assert_false(run_exists(r_ok));
  assert_false(event_exists(e_ok));
  assert_int_equal(steps_of(r_ok), 0);
  assert_false(run_exists(r_two_ok));
  assert_true(event_exists(e_two) && run_exists(r_two_fail));
  assert_false(event_exists(e_none_old));
  assert_true(event_exists(e_none_new));
  assert_true(run_exists(r_fail) && event_exists(e_fail) && steps_of(r_fail) == 1);
  assert_true(run_exists(r_new) && event_exists(e_new));
  for (int i = 0; i < 4; i++) assert_true(run_exists(r_open[i]) && event_exists(e_open[i]));
  assert_consistent();

  /* The failed age passes: failed runs go, and the event of two with them. */
  c = prune_all(1000, 500, 500, &calls);
  assert_int_equal(c.runs, 2);
  assert_int_equal(c.events, 2);
  assert_false(run_exists(r_fail) || event_exists(e_fail));
  assert_false(run_exists(r_two_fail) || event_exists(e_two));
  for (int i = 0; i < 4; i++) assert_true(run_exists(r_open[i]) && event_exists(e_open[i]));

  /* Off (0) keeps; open runs stay even when everything else is old. */
  c = prune_all(0, 0, 500, &calls);
  assert_int_equal(c.runs + c.events + c.steps, 0);
  c = prune_all(1000000, 1000000, 500, &calls);
  assert_true(run_exists(r_new) && event_exists(e_new)); /* the newest of each */
  assert_false(event_exists(e_none_new));
  for (int i = 0; i < 4; i++) assert_true(run_exists(r_open[i]) && event_exists(e_open[i]));
  assert_consistent();
}

static void test_newest_kept_and_batches(void **state) {
  (void)state;
  int64_t runs[7], evs[7];
  for (int i = 0; i < 7; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    evs[i] = event_at(key, 10 + i);
    runs[i] = run_of(evs[i], "succeeded", 20 + i);
  }
  int calls;
  store_prune_counts c = prune_all(1000, 1000, 2, &calls);
  assert_int_equal(c.runs, 6);
  assert_int_equal(c.events, 6);
  assert_true(calls >= 3); /* 2 per call */
  for (int i = 0; i < 6; i++) assert_false(run_exists(runs[i]) || event_exists(evs[i]));
  assert_true(run_exists(runs[6]) && event_exists(evs[6]));
  /* A new run gets a new id, not one pruned. */
  int64_t e8 = event_at("k8", 30), r8 = run_of(e8, "succeeded", 40);
  assert_true(r8 > runs[6] && e8 > evs[6]);
  assert_consistent();
}

static void test_runless_events_walk(void **state) {
  (void)state;
  /* Events no recipe matched, some old, then a young one, then old again
   * (a clock step back): the walk stops at the young one and goes on from
   * there once it is old too. */
  int64_t ids[6];
  int64_t at[6] = {10, 20, 30, 3000, 40, 50};
  for (int i = 0; i < 6; i++) {
    char key[16];
    snprintf(key, sizeof key, "n%d", i);
    ids[i] = event_at(key, at[i]);
  }
  int calls;
  store_prune_counts c = prune_all(1000, 1000, 500, &calls);
  assert_int_equal(c.events, 3);
  assert_true(event_exists(ids[3]) && event_exists(ids[4]) && event_exists(ids[5]));
  c = prune_all(4000, 4000, 500, &calls);
  assert_int_equal(c.events, 2); /* not the newest */
  assert_true(event_exists(ids[5]));
  /* Batches of 2 over 20 events. */
  for (int i = 0; i < 20; i++) {
    char key[16];
    snprintf(key, sizeof key, "m%d", i);
    event_at(key, 100 + i);
  }
  c = prune_all(4000, 4000, 2, &calls);
  assert_int_equal(c.events, 20); /* ids[5] and 19 of these; the last stays */
  assert_true(calls >= 10);
  assert_consistent();
}

static void test_cache_and_others_untouched(void **state) {
  (void)state;
  perr e;
  assert_int_equal(store_cache_put(g_st, "old", "{}", 10, 100, &e), 0);
  assert_int_equal(store_cache_put(g_st, "live", "{}", 10, 10000, &e), 0);
  assert_int_equal(store_cursor_set(g_st, "src", "c1", 5, &e), 0);
  assert_int_equal(store_trigger_health_set(g_st, "src", NULL, 5, &e), 0);
  int64_t ev = event_at("u", 5), run = run_of(ev, "succeeded", 6);
  assert_int_equal(store_usage_add(g_st, run, 0, "2026-01-01", "openai", "m", "r", 1, 10, 5, 0, 0.01, &e), 0);
  run_of(event_at("last", 7000), "succeeded", 7000); /* the newest run and event stay */
  store_prune_rules r = {1000, 1000, 500, 500};
  store_prune_counts c = {0, 0, 0, 0};
  int more;
  assert_int_equal(store_prune_batch(g_st, &r, &c, &more, &e), 0);
  assert_int_equal(c.cache, 1);
  assert_int_equal(c.runs, 1);
  char *v;
  assert_int_equal(store_cache_get(g_st, "old", 50, &v, &e), 1);
  assert_int_equal(store_cache_get(g_st, "live", 50, &v, &e), 0);
  free(v);
  assert_int_equal(store_cursor_get(g_st, "src", &v, &e), 0);
  assert_string_equal(v, "c1");
  free(v);
  store_trigger_health h;
  assert_int_equal(store_trigger_health_get(g_st, "src", &h, &e), 0);
  store_trigger_health_release(&h);
  int64_t tokens;
  double cost;
  assert_int_equal(store_usage_day(g_st, "2026-01-01", NULL, &tokens, &cost, &e), 0);
  assert_int_equal(tokens, 15);
  assert_consistent();
}

static void test_inside_a_transaction(void **state) {
  (void)state;
  perr e;
  int64_t ev = event_at("t", 5);
  run_of(ev, "succeeded", 6);
  run_of(event_at("t2", 9000), "succeeded", 9000);
  /* Within the caller's transaction (the engine's group commit), a failed
   * batch would roll back to its savepoint only; a good one commits with
   * the caller. */
  assert_int_equal(store_begin(g_st, &e), 0);
  store_prune_rules r = {1000, 1000, 0, 500};
  store_prune_counts c = {0, 0, 0, 0};
  int more;
  assert_int_equal(store_prune_batch(g_st, &r, &c, &more, &e), 0);
  assert_true(store_in_txn(g_st));
  store_rollback(g_st);
  assert_true(event_exists(ev));
  assert_int_equal(store_begin(g_st, &e), 0);
  assert_int_equal(store_prune_batch(g_st, &r, &c, &more, &e), 0);
  assert_int_equal(store_commit(g_st, &e), 0);
  assert_false(event_exists(ev));
  int frames, done;
  assert_int_equal(store_wal_checkpoint(g_st, &frames, &done, &e), 0);
  assert_true(frames > 0 && frames == done);
  /* It works with a transaction open, as the engine's nearly always is. */
  event_at("t3", 9500);
  assert_int_equal(store_begin(g_st, &e), 0);
  event_at("t4", 9600);
  assert_int_equal(store_wal_checkpoint(g_st, &frames, &done, &e), 0);
  assert_true(frames > 0 && frames == done);
  assert_int_equal(store_commit(g_st, &e), 0);
}

static void test_durations(void **state) {
  (void)state;
  assert_int_equal(retention_parse_duration("30s"), 30000);
  assert_int_equal(retention_parse_duration("15m"), 900000);
  assert_int_equal(retention_parse_duration("12h"), 43200000);
  assert_int_equal(retention_parse_duration("7d"), 604800000LL);
  assert_int_equal(retention_parse_duration("off"), 0);
  assert_int_equal(retention_parse_duration("0"), 0);
  static const char *const bad[] = {"", "7", "d", "-1d", "+1d", "1w", "1dd", "99999d", " 1d", "1.5h"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(retention_parse_duration(bad[i]), -1);
  retention_config rc;
  perr e;
  assert_int_equal(retention_config_parse(NULL, &rc, &e), 0);
  assert_int_equal(rc.succeeded_ms, 7 * 86400000LL);
  assert_int_equal(rc.failed_ms, 30 * 86400000LL);
  cJSON *sec = cJSON_Parse("{\"interval\": \"off\"}");
  assert_int_equal(retention_config_parse(sec, &rc, &e), -1);
  assert_non_null(strstr(e.msg, "retention.interval"));
  cJSON_Delete(sec);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {T(test_rules), T(test_newest_kept_and_batches),
                                     T(test_runless_events_walk), T(test_cache_and_others_untouched),
                                     T(test_inside_a_transaction), T(test_durations)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
