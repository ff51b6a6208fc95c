/*
 * engine: group commit (every intake of one loop iteration committed once,
 * acknowledged only after), limits on runs in flight, resume at the first
 * unfinished step, and a clean shutdown.  Runs the real engine on a libev
 * loop against a real store, with the log and csvfile actions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ev.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/engine.h"
#include "core/log.h"
#include "core/recipe_import.h"
#include "testutil.h"

static char *g_dir;
static char g_db[4200];
static store *g_store;
static struct ev_loop *g_loop;

static void import_recipe(const char *yaml) {
  char path[4300];
  snprintf(path, sizeof path, "%s/r.yaml", g_dir);
  assert_int_equal(tu_write_file(path, yaml), 0);
  import_item *items = NULL;
  size_t n = 0;
  perr e;
  if (recipe_import_path(g_store, path, &items, &n, &e)) fail_msg("import: %s", e.msg);
  import_items_free(items, n);
}

static int setup(void **state) {
  (void)state;
  log_set_level(LOG_WARN);
  g_dir = tu_tempdir();
  snprintf(g_db, sizeof g_db, "%s/t.db", g_dir);
  perr e;
  if (store_open(&g_store, g_db, 0, &e)) return -1;
  g_loop = ev_loop_new(EVFLAG_AUTO);
  return g_loop ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  /* The engine left nothing behind on the loop: no active watcher. */
  int left = ev_run(g_loop, EVRUN_NOWAIT);
  store_close(g_store);
  ev_loop_destroy(g_loop);
  tu_rmtree(g_dir);
  free(g_dir);
  return left ? -1 : 0;
}

/* A second connection, as another process would see the database. */
static long long count_outside(const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

/* ---- group commit ---- */

typedef struct acks {
  int n, ok, inside;
  long long visible_at_first; /* events another connection saw at the first ack */
  int64_t first_id;
  int64_t ids[64];
} acks;

static int g_in_ingest;

static void on_ack(void *ud, int ok, const intake_result *r, const char *err) {
  (void)err;
  acks *a = ud;
  if (g_in_ingest) a->inside++;
  if (a->n == 0) a->visible_at_first = count_outside("SELECT count(*) FROM events");
  a->ids[a->n++] = r->event_id;
  a->ok += ok;
}

typedef struct burst {
  engine *en;
  acks *a;
  ev_timer t;
} burst;

static void on_burst(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  burst *b = w->data;
  perr e;
  char key[16], payload[64];
  g_in_ingest = 1;
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "k%d", i % 40); /* the last 10 repeat earlier keys */
    snprintf(payload, sizeof payload, "{\"n\": %d}", i);
    if (engine_ingest(b->en, "burst", key, payload, strlen(payload), on_ack, b->a, &e))
      fail_msg("ingest: %s", e.msg);
  }
  g_in_ingest = 0;
  /* Refused at once, never called back. */
  assert_int_equal(engine_ingest(b->en, "burst", NULL, "[1]", 3, on_ack, b->a, &e), -1);
  assert_non_null(strstr(e.msg, "JSON object"));
}

static void on_stopped(void *ud) { ev_break((struct ev_loop *)ud, EVBREAK_ALL); }

static void shutdown_when_idle(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  engine *en = w->data;
  if (engine_idle(en)) {
    ev_timer_stop(loop, w);
    engine_shutdown(en, on_stopped, loop);
  }
}

static void run_until_idle(engine *en) {
  ev_timer idle;
  ev_timer_init(&idle, shutdown_when_idle, 0.02, 0.02);
  idle.data = en;
  ev_timer_start(g_loop, &idle);
  ev_run(g_loop, 0);
  ev_timer_stop(g_loop, &idle);
}

static void test_group_commit(void **state) {
  (void)state;
  import_recipe("name: burst\ntrigger: { event: { source: burst } }\n"
                "steps:\n  - id: note\n    log: { message: \"{{event.n}}\" }\n");
  perr e;
  engine *en = engine_new(g_loop, g_store, NULL, &e);
  assert_non_null(en);
  assert_int_equal(engine_start(en, &e), 0);
  acks a = {0};
  burst b = {en, &a, {0}};
  ev_timer_init(&b.t, on_burst, 0., 0.);
  b.t.data = &b;
  ev_timer_start(g_loop, &b.t);
  run_until_idle(en);
  assert_null(engine_failed(en));
  engine_free(en);
  assert_int_equal(a.n, 50);
  assert_int_equal(a.ok, 50);
  assert_int_equal(a.inside, 0);
  /* Durable before the first acknowledgement: all 40 distinct events. */
  assert_int_equal(a.visible_at_first, 40);
  for (int i = 40; i < 50; i++) assert_int_equal(a.ids[i], a.ids[i - 40]);
  assert_int_equal(count_outside("SELECT count(*) FROM runs WHERE status = 'succeeded'"), 40);
}

/* ---- limits ---- */

typedef struct sampler {
  engine *en;
  size_t max_active;
  ev_check w;
} sampler;

static void on_check(struct ev_loop *loop, ev_check *w, int revents) {
  (void)loop, (void)revents;
  sampler *s = w->data;
  if (engine_active(s->en) > s->max_active) s->max_active = engine_active(s->en);
}

static void emit_n(const char *source, int n) {
  perr e;
  recipe_set *rs;
  assert_int_equal(recipe_set_load(g_store, &rs, &e), 0);
  assert_int_equal(store_begin(g_store, &e), 0);
  for (int i = 0; i < n; i++) {
    char payload[64];
    snprintf(payload, sizeof payload, "{\"n\": %d}", i);
    intake_result r;
    if (intake_event(g_store, rs, source, NULL, payload, strlen(payload), 0, 1, &r, &e))
      fail_msg("intake: %s", e.msg);
  }
  assert_int_equal(store_commit(g_store, &e), 0);
  recipe_set_free(rs);
}

static size_t run_with_limit(int global) {
  config cfg;
  config_init(&cfg);
  perr e;
  assert_int_equal(config_load(&cfg, NULL, &e), 0);
  cfg.engine.concurrency = global;
  engine *en = engine_new(g_loop, g_store, &cfg, &e);
  assert_int_equal(engine_start(en, &e), 0);
  sampler s = {en, 0, {0}};
  ev_check_init(&s.w, on_check);
  s.w.data = &s;
  ev_check_start(g_loop, &s.w);
  run_until_idle(en);
  ev_check_stop(g_loop, &s.w);
  assert_null(engine_failed(en));
  engine_free(en);
  config_release(&cfg);
  return s.max_active;
}

static void test_global_limit(void **state) {
  (void)state;
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "name: many\ntrigger: { event: { source: many } }\nsteps:\n"
           "  - id: a\n    log: { message: \"{{event.n}}\" }\n"
           "  - id: b\n    log: { message: \"{{event.n}}\" }\n");
  import_recipe(yaml);
  emit_n("many", 30);
  size_t max = run_with_limit(3);
  assert_true(max >= 2); /* it does run several at once */
  assert_true(max <= 3);
  assert_int_equal(count_outside("SELECT count(*) FROM runs WHERE status = 'succeeded'"), 30);
}

static void test_recipe_limit(void **state) {
  (void)state;
  import_recipe("name: single\ntrigger: { event: { source: one } }\nconcurrency: 1\n"
                "steps:\n  - id: a\n    log: { message: \"{{event.n}}\" }\n");
  emit_n("one", 10);
  assert_int_equal(run_with_limit(8), 1);
  assert_int_equal(count_outside("SELECT count(*) FROM runs WHERE status = 'succeeded'"), 10);
}

/* ---- resume and shutdown ---- */

typedef struct stopper {
  engine *en;
  ev_check w;
} stopper;

/* Asks for shutdown as soon as any step has succeeded. */
static void stop_after_first_step(struct ev_loop *loop, ev_check *w, int revents) {
  (void)revents;
  stopper *s = w->data;
  if (count_outside("SELECT count(*) FROM steps WHERE status = 'succeeded'") > 0) {
    ev_check_stop(loop, w);
    engine_shutdown(s->en, on_stopped, loop);
  }
}

static void test_shutdown_and_resume(void **state) {
  (void)state;
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "name: three\ntrigger: { event: { source: three } }\nsteps:\n"
           "  - id: a\n    log: { message: \"a {{event.n}}\" }\n"
           "  - id: b\n    log: { message: \"b {{event.n}}\" }\n"
           "  - id: c\n    csvfile: { path: %s/out.csv, row: [\"{{event.n}}\"] }\n",
           g_dir);
  import_recipe(yaml);
  emit_n("three", 5);
  perr e;
  engine *en = engine_new(g_loop, g_store, NULL, &e);
  assert_int_equal(engine_start(en, &e), 0);
  stopper s = {en, {0}};
  ev_check_init(&s.w, stop_after_first_step);
  s.w.data = &s;
  ev_check_start(g_loop, &s.w);
  ev_run(g_loop, 0);
  assert_null(engine_failed(en));
  engine_free(en);
  /* Stopped part way: nothing is left `running`, and some work remains. */
  assert_int_equal(count_outside("SELECT count(*) FROM runs WHERE status = 'running'"), 0);
  long long done = count_outside("SELECT count(*) FROM runs WHERE status = 'succeeded'");
  assert_true(done < 5);

  en = engine_new(g_loop, g_store, NULL, &e);
  assert_int_equal(engine_start(en, &e), 0);
  run_until_idle(en);
  engine_free(en);
  assert_int_equal(count_outside("SELECT count(*) FROM runs WHERE status = 'succeeded'"), 5);
  /* Every step ran exactly once: resume starts at the first unfinished one. */
  assert_int_equal(count_outside("SELECT count(*) FROM steps WHERE attempts != 1"), 0);
  assert_int_equal(count_outside("SELECT count(*) FROM steps"), 15);
  char path[4300];
  snprintf(path, sizeof path, "%s/out.csv", g_dir);
  size_t len;
  char *csv = tu_read_file(path, &len);
  assert_non_null(csv);
  int lines = 0;
  for (size_t i = 0; i < len; i++) lines += csv[i] == '\n';
  assert_int_equal(lines, 5);
  free(csv);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_group_commit),
      T(test_global_limit),
      T(test_recipe_limit),
      T(test_shutdown_and_resume),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
