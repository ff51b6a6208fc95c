/*
 * Unit tests of the store (src/core/store*.c) against real database files
 * in a temporary directory.  Where a setting belongs to the store's own
 * connection (synchronous, foreign_keys, busy_timeout) the test reads it
 * through store_internal.h; everything visible in the file is checked
 * through a second, independent sqlite3 connection.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/schema.h"
#include "core/store.h"
#include "core/store_internal.h"
#include "testutil.h"

struct fx {
  char *dir;
  char path[4096];
  store *s;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  if (!f) return -1;
  f->dir = tu_tempdir();
  if (!f->dir) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof f->path, "%s/promptd.db", f->dir);
  perr e = {{0}};
  if (store_open(&f->s, f->path, 0, &e)) {
    fprintf(stderr, "store_open: %s\n", e.msg);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  store_close(f->s);
  tu_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static int newest_version(void) { return schema_migrations[schema_migration_count - 1].version; }

/* A second connection, as another process would have. */
static sqlite3 *raw_open(const char *path) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void raw_text(sqlite3 *db, const char *sql, char *out, size_t len) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  const unsigned char *t = sqlite3_column_text(st, 0);
  snprintf(out, len, "%s", t ? (const char *)t : "");
  sqlite3_finalize(st);
}

static void raw_exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", sql, msg ? msg : "");
  sqlite3_free(msg);
  assert_int_equal(rc, SQLITE_OK);
}

/* Recipe "r" (source "src") and one event, enough for runs to reference. */
static int64_t seed(store *s, const char *key) {
  perr e = {{0}};
  int v, changed;
  assert_int_equal(store_recipe_put(s, "r", "{\"name\":\"r\"}", "d1", "src", NULL, 1, &v, &changed,
                                    &e),
                   0);
  int64_t id;
  int created;
  assert_int_equal(store_event_insert(s, "src", key, "{}", 2, 1, &id, &created, &e), 0);
  return id;
}

/* ---- opening ---- */

static void test_open_creates_0600(void **state) {
  struct fx *f = *state;
  struct stat sb;
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_string_equal(store_path(f->s), f->path);
  int v = -1;
  perr e = {{0}};
  assert_int_equal(store_schema_version(f->s, &v, &e), 0);
  assert_int_equal(v, newest_version());

  /* The WAL file SQLite derives from the database gets the same mode. */
  seed(f->s, "k");
  char wal[4200];
  snprintf(wal, sizeof wal, "%s-wal", f->path);
  assert_int_equal(stat(wal, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_open_mode_despite_umask(void **state) {
  (void)state;
  char *dir = tu_tempdir();
  assert_non_null(dir);
  char path[4200];
  snprintf(path, sizeof path, "%s/u.db", dir);
  mode_t old = umask(0277); /* would leave the file read-only for its owner */
  store *s = NULL;
  perr e = {{0}};
  int rc = store_open(&s, path, 0, &e);
  umask(old);
  if (rc) fprintf(stderr, "%s\n", e.msg);
  assert_int_equal(rc, 0);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  store_close(s);
  tu_rmtree(dir);
  free(dir);
}

static void test_settings_applied(void **state) {
  struct fx *f = *state;
  sqlite3 *db = raw_open(f->path);
  char mode[16];
  raw_text(db, "PRAGMA journal_mode", mode, sizeof mode);
  assert_string_equal(mode, "wal");
  assert_int_equal(raw_int(db, "PRAGMA user_version"), newest_version());
  /* Every table of the schema is there. */
  static const char *const tables[] = {"meta",  "recipes", "recipe_versions", "events",
                                       "runs",  "steps",   "cursors",         "usage"};
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='%s'",
             tables[i]);
    assert_int_equal(raw_int(db, sql), 1);
  }
  assert_int_equal(raw_int(db, "SELECT value FROM meta WHERE key='recipes_generation'"), 0);
  sqlite3_close(db);

  /* Per-connection settings, read on the store's own connection. */
  sqlite3 *own = f->s->db;
  assert_int_equal(raw_int(own, "PRAGMA synchronous"), 2); /* FULL */
  assert_int_equal(raw_int(own, "PRAGMA foreign_keys"), 1);
  assert_int_equal(raw_int(own, "PRAGMA busy_timeout"), 5000);

  /* Foreign keys are enforced: a run of a missing event is refused. */
  perr e = {{0}};
  seed(f->s, "k");
  int64_t run;
  assert_int_equal(store_run_insert(f->s, 999, "r", 1, 5, &run, &e), -1);
  assert_non_null(strstr(e.msg, "insert run"));
  assert_non_null(strstr(e.msg, "FOREIGN KEY"));
}

struct holder {
  const char *path;
  int ms;
};

/* Holds the write lock for a while from another connection. */
static void *hold_lock(void *arg) {
  struct holder *h = arg;
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(h->path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) return NULL;
  sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  struct timespec ts = {0, (long)h->ms * 1000000L};
  nanosleep(&ts, NULL);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_busy_timeout_waits(void **state) {
  struct fx *f = *state;
  /* The holder takes the lock before we ask: a shared flag is not needed
   * when it keeps the lock 400 ms and we start 100 ms later. */
  struct holder h = {f->path, 400};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, hold_lock, &h), 0);
  struct timespec ts = {0, 100 * 1000000L};
  nanosleep(&ts, NULL);
  double t0 = now_s();
  perr e = {{0}};
  int rc = store_begin(f->s, &e);
  double waited = now_s() - t0;
  pthread_join(t, NULL);
  if (rc) fprintf(stderr, "%s\n", e.msg);
  assert_int_equal(rc, 0);
  assert_true(waited > 0.15);
  store_rollback(f->s);
}

static void test_migrations_idempotent(void **state) {
  struct fx *f = *state;
  seed(f->s, "k1");
  int64_t gen0;
  perr e = {{0}};
  assert_int_equal(store_recipes_generation(f->s, &gen0, &e), 0);
  store_close(f->s);
  f->s = NULL;
  /* Reopened twice, and once while another handle is open: nothing is
   * applied again and nothing is lost. */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(store_open(&f->s, f->path, 0, &e), 0);
    store *other = NULL;
    assert_int_equal(store_open(&other, f->path, 0, &e), 0);
    store_close(other);
    int v;
    assert_int_equal(store_schema_version(f->s, &v, &e), 0);
    assert_int_equal(v, newest_version());
    int64_t gen;
    assert_int_equal(store_recipes_generation(f->s, &gen, &e), 0);
    assert_int_equal(gen, gen0);
    store_recipe r;
    assert_int_equal(store_recipe_get(f->s, "r", 0, &r, &e), 0);
    store_recipe_release(&r);
    store_close(f->s);
    f->s = NULL;
  }
  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM events"), 1);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM meta"), 1);
  sqlite3_close(db);
  assert_int_equal(store_open(&f->s, f->path, 0, &e), 0);
}

/* A migration that fails half way leaves nothing of itself behind: it ran
 * in one transaction with the user_version update. */
static void test_failed_migration_rolls_back(void **state) {
  (void)state;
  char *dir = tu_tempdir();
  assert_non_null(dir);
  char path[4200];
  snprintf(path, sizeof path, "%s/clash.db", dir);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  /* 001 creates meta first and fails later, on this table. */
  raw_exec(db, "CREATE TABLE events (x TEXT)");
  sqlite3_close(db);
  store *s = NULL;
  perr e = {{0}};
  assert_int_equal(store_open(&s, path, 0, &e), -1);
  assert_null(s);
  assert_non_null(strstr(e.msg, schema_migrations[0].name));
  assert_non_null(strstr(e.msg, "events"));
  db = raw_open(path);
  assert_int_equal(raw_int(db, "PRAGMA user_version"), 0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'meta'"), 0);
  sqlite3_close(db);
  tu_rmtree(dir);
  free(dir);
}

/* Processes starting together on a fresh file: one migrates, the others
 * wait for its lock, see the new version and apply nothing. */
static void test_concurrent_first_open(void **state) {
  (void)state;
  char *dir = tu_tempdir();
  assert_non_null(dir);
  char path[4200];
  snprintf(path, sizeof path, "%s/race.db", dir);
  enum { KIDS = 4 };
  pid_t kids[KIDS];
  for (int i = 0; i < KIDS; i++) {
    kids[i] = fork();
    assert_true(kids[i] >= 0);
    if (kids[i] == 0) {
      store *s = NULL;
      perr e = {{0}};
      int rc = store_open(&s, path, 0, &e);
      if (rc) fprintf(stderr, "child: %s\n", e.msg);
      int64_t id;
      int created;
      char key[16];
      snprintf(key, sizeof key, "k%d", i);
      if (!rc) rc = store_event_insert(s, "src", key, "{}", 2, 1, &id, &created, &e);
      store_close(s);
      _exit(rc ? 1 : 0);
    }
  }
  for (int i = 0; i < KIDS; i++) {
    int status = 0;
    assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  sqlite3 *db = raw_open(path);
  assert_int_equal(raw_int(db, "PRAGMA user_version"), newest_version());
  assert_int_equal(raw_int(db, "SELECT count(*) FROM events"), KIDS);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM meta"), 1);
  sqlite3_close(db);
  tu_rmtree(dir);
  free(dir);
}

static unsigned char *read_all(const char *path, size_t *len) {
  return (unsigned char *)tu_read_file(path, len);
}

static void test_newer_schema_refused(void **state) {
  (void)state;
  char *dir = tu_tempdir();
  assert_non_null(dir);
  char path[4200], wal[4300], shm[4300];
  snprintf(path, sizeof path, "%s/new.db", dir);
  snprintf(wal, sizeof wal, "%s-wal", path);
  snprintf(shm, sizeof shm, "%s-shm", path);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  raw_exec(db, "CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('from promptd 7');"
               "PRAGMA user_version = 7;");
  sqlite3_close(db);
  size_t len0, len1;
  unsigned char *before = read_all(path, &len0);
  assert_non_null(before);
  struct stat sb0, sb1;
  assert_int_equal(stat(path, &sb0), 0);

  for (unsigned flags = 0; flags <= STORE_READONLY; flags += STORE_READONLY) {
    store *s = (store *)1;
    perr e = {{0}};
    assert_int_equal(store_open(&s, path, flags, &e), -1);
    assert_null(s);
    char want[4400];
    snprintf(want, sizeof want,
             "database %s has schema version 7, newer than this promptd (knows up to %d): "
             "upgrade promptd or use another database",
             path, newest_version());
    assert_string_equal(e.msg, want);
  }
  unsigned char *after = read_all(path, &len1);
  assert_non_null(after);
  assert_int_equal(len0, len1);
  assert_memory_equal(before, after, len0);
  assert_int_equal(stat(path, &sb1), 0);
  assert_int_equal(sb0.st_mtim.tv_sec, sb1.st_mtim.tv_sec);
  assert_int_equal(sb0.st_mtim.tv_nsec, sb1.st_mtim.tv_nsec);
  /* Not even switched to WAL: no -wal or -shm file appeared. */
  assert_int_equal(stat(wal, &sb1), -1);
  assert_int_equal(stat(shm, &sb1), -1);
  free(before);
  free(after);
  tu_rmtree(dir);
  free(dir);
}

static void test_not_a_database(void **state) {
  (void)state;
  char *dir = tu_tempdir();
  assert_non_null(dir);
  char path[4200];
  snprintf(path, sizeof path, "%s/junk.db", dir);
  const char *junk = "this is not a database file, it is a text file long enough to matter....."
                     "...........................................................................";
  assert_int_equal(tu_write_file(path, junk), 0);
  store *s = NULL;
  perr e = {{0}};
  assert_int_equal(store_open(&s, path, 0, &e), -1);
  assert_non_null(strstr(e.msg, path));
  assert_non_null(strstr(e.msg, "not a database"));
  char *after = tu_read_file(path, NULL);
  assert_string_equal(after, junk);
  free(after);
  tu_rmtree(dir);
  free(dir);
}

static void test_readonly(void **state) {
  struct fx *f = *state;
  perr e = {{0}};
  int64_t ev = seed(f->s, "k");
  store_close(f->s);
  f->s = NULL;

  store *ro = NULL;
  assert_int_equal(store_open(&ro, f->path, STORE_READONLY, &e), 0);
  store_event got;
  assert_int_equal(store_event_get(ro, ev, &got, &e), 0);
  assert_string_equal(got.dedupe_key, "k");
  store_event_release(&got);
  int64_t id;
  int created;
  assert_int_equal(store_event_insert(ro, "src", "k2", "{}", 2, 2, &id, &created, &e), -1);
  assert_non_null(strstr(e.msg, "readonly"));
  assert_int_equal(store_begin(ro, &e), -1);
  store_close(ro);

  /* Absent: refused and not created. */
  char absent[4200];
  snprintf(absent, sizeof absent, "%s/absent.db", f->dir);
  assert_int_equal(store_open(&ro, absent, STORE_READONLY, &e), -1);
  assert_non_null(strstr(e.msg, "does not exist"));
  struct stat sb;
  assert_int_equal(stat(absent, &sb), -1);

  /* Pending migrations: refused, nothing applied. */
  char empty[4200];
  snprintf(empty, sizeof empty, "%s/empty.db", f->dir);
  assert_int_equal(tu_write_file(empty, ""), 0);
  assert_int_equal(store_open(&ro, empty, STORE_READONLY, &e), -1);
  assert_non_null(strstr(e.msg, "schema version 0, older than this promptd"));
  assert_int_equal(stat(empty, &sb), 0);
  assert_int_equal(sb.st_size, 0);

  assert_int_equal(store_open(&f->s, f->path, 0, &e), 0);
}

/* ---- recipes ---- */

static int64_t generation(store *s) {
  int64_t g = -1;
  perr e = {{0}};
  assert_int_equal(store_recipes_generation(s, &g, &e), 0);
  return g;
}

static void test_recipes(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  int v = 0, changed = 0;
  int64_t g0 = generation(s);

  assert_int_equal(store_recipe_put(s, "lead", "{\"v\":1}", "aa", "hooks", "/r/lead.yaml", 10, &v,
                                    &changed, &e),
                   0);
  assert_int_equal(v, 1);
  assert_int_equal(changed, 1);
  int64_t g1 = generation(s);
  assert_true(g1 > g0);

  /* Unchanged: a no-op, generation untouched. */
  assert_int_equal(store_recipe_put(s, "lead", "{\"v\":1}", "aa", "hooks", "/r/lead.yaml", 20, &v,
                                    &changed, &e),
                   0);
  assert_int_equal(v, 1);
  assert_int_equal(changed, 0);
  assert_int_equal(generation(s), g1);

  /* Changed: version 2. */
  assert_int_equal(store_recipe_put(s, "lead", "{\"v\":2}", "bb", "hooks2", "/r/lead.yaml", 30, &v,
                                    &changed, &e),
                   0);
  assert_int_equal(v, 2);
  assert_int_equal(changed, 1);
  int64_t g2 = generation(s);
  assert_true(g2 > g1);

  store_recipe r;
  assert_int_equal(store_recipe_get(s, "lead", 0, &r, &e), 0);
  assert_string_equal(r.name, "lead");
  assert_int_equal(r.version, 2);
  assert_int_equal(r.current, 2);
  assert_int_equal(r.enabled, 1);
  assert_string_equal(r.definition, "{\"v\":2}");
  assert_string_equal(r.digest, "bb");
  assert_string_equal(r.source, "hooks2");
  assert_string_equal(r.file, "/r/lead.yaml");
  assert_int_equal(r.created_at, 30);
  store_recipe_release(&r);
  assert_null(r.name);

  assert_int_equal(store_recipe_get(s, "lead", 1, &r, &e), 0);
  assert_int_equal(r.version, 1);
  assert_int_equal(r.current, 2);
  assert_string_equal(r.definition, "{\"v\":1}");
  assert_string_equal(r.source, "hooks");
  assert_int_equal(r.created_at, 10);
  store_recipe_release(&r);
  assert_int_equal(store_recipe_get(s, "lead", 3, &r, &e), 1);
  assert_int_equal(store_recipe_get(s, "nope", 0, &r, &e), 1);

  /* A second recipe without a file; list is by name. */
  assert_int_equal(store_recipe_put(s, "alpha", "{}", "cc", "x", NULL, 40, &v, &changed, &e), 0);
  store_recipe *list;
  size_t n;
  assert_int_equal(store_recipe_list(s, 0, &list, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_string_equal(list[0].name, "alpha");
  assert_null(list[0].file);
  assert_string_equal(list[1].name, "lead");
  assert_int_equal(list[1].version, 2);
  store_recipes_free(list, n);

  /* Disable / enable: listed or not, generation bumped each time. */
  int64_t g3 = generation(s);
  assert_int_equal(store_recipe_set_enabled(s, "lead", 0, &e), 0);
  int64_t g4 = generation(s);
  assert_true(g4 > g3);
  assert_int_equal(store_recipe_list(s, 1, &list, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_string_equal(list[0].name, "alpha");
  store_recipes_free(list, n);
  assert_int_equal(store_recipe_get(s, "lead", 0, &r, &e), 0);
  assert_int_equal(r.enabled, 0);
  store_recipe_release(&r);
  /* A disabled recipe changed stays disabled. */
  assert_int_equal(store_recipe_put(s, "lead", "{\"v\":3}", "dd", "hooks", NULL, 50, &v, &changed,
                                    &e),
                   0);
  assert_int_equal(v, 3);
  assert_int_equal(store_recipe_get(s, "lead", 0, &r, &e), 0);
  assert_int_equal(r.enabled, 0);
  assert_null(r.file);
  store_recipe_release(&r);
  assert_int_equal(store_recipe_set_enabled(s, "lead", 1, &e), 0);
  assert_true(generation(s) > g4);
  assert_int_equal(store_recipe_set_enabled(s, "nope", 1, &e), 1);

  /* Remove: gone from get(0) and lists, versions kept for runs. */
  int64_t g5 = generation(s);
  assert_int_equal(store_recipe_remove(s, "lead", &e), 0);
  assert_true(generation(s) > g5);
  assert_int_equal(store_recipe_get(s, "lead", 0, &r, &e), 1);
  assert_int_equal(store_recipe_get(s, "lead", 2, &r, &e), 0);
  assert_string_equal(r.definition, "{\"v\":2}");
  assert_int_equal(r.enabled, 0);
  store_recipe_release(&r);
  assert_int_equal(store_recipe_list(s, 0, &list, &n, &e), 0);
  assert_int_equal(n, 1);
  store_recipes_free(list, n);
  assert_int_equal(store_recipe_remove(s, "lead", &e), 1);
  assert_int_equal(store_recipe_set_enabled(s, "lead", 1, &e), 1);
  assert_int_equal(store_recipe_remove(s, "nope", &e), 1);

  /* Imported again with a new definition: numbering continues, enabled. */
  assert_int_equal(store_recipe_put(s, "lead", "{\"v\":4}", "ee", "hooks", NULL, 60, &v, &changed,
                                    &e),
                   0);
  assert_int_equal(v, 4);
  assert_int_equal(changed, 1);
  assert_int_equal(store_recipe_get(s, "lead", 0, &r, &e), 0);
  assert_int_equal(r.version, 4);
  assert_int_equal(r.enabled, 1);
  store_recipe_release(&r);

  /* Removed then imported unchanged: back with the same version. */
  assert_int_equal(store_recipe_remove(s, "lead", &e), 0);
  int64_t g6 = generation(s);
  assert_int_equal(store_recipe_put(s, "lead", "{\"v\":4}", "ee", "hooks", NULL, 70, &v, &changed,
                                    &e),
                   0);
  assert_int_equal(v, 4);
  assert_int_equal(changed, 1);
  assert_true(generation(s) > g6);
  assert_int_equal(store_recipe_get(s, "lead", 0, &r, &e), 0);
  assert_int_equal(r.enabled, 1);
  store_recipe_release(&r);

  /* Missing required arguments. */
  assert_int_equal(store_recipe_put(s, "x", NULL, "d", "s", NULL, 1, &v, &changed, &e), -1);
  assert_non_null(strstr(e.msg, "required"));
}

static void test_recipe_put_rolls_back_in_txn(void **state) {
  struct fx *f = *state;
  perr e = {{0}};
  int v, changed;
  assert_int_equal(store_begin(f->s, &e), 0);
  assert_int_equal(store_recipe_put(f->s, "t", "{}", "d", "s", NULL, 1, &v, &changed, &e), 0);
  /* Inside the caller's transaction put used a savepoint, not its own
   * transaction: the caller is still in control. */
  assert_true(store_in_txn(f->s));
  store_rollback(f->s);
  store_recipe r;
  assert_int_equal(store_recipe_get(f->s, "t", 0, &r, &e), 1);
  assert_int_equal(generation(f->s), 0);
}

/* ---- events ---- */

static void test_event_dedupe(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  int64_t a, b, c, d1, d2;
  int created = -1;
  /* Only the first len bytes are the payload. */
  const char *payload = "{\"n\":1}TRAILING";
  assert_int_equal(store_event_insert(s, "src", "k1", payload, 7, 100, &a, &created, &e), 0);
  assert_int_equal(created, 1);
  assert_int_equal(store_event_insert(s, "src", "k1", "{\"n\":2}", 7, 200, &b, &created, &e), 0);
  assert_int_equal(created, 0);
  assert_int_equal(b, a);
  /* Same key, other source: a different event. */
  assert_int_equal(store_event_insert(s, "other", "k1", "{}", 2, 300, &c, &created, &e), 0);
  assert_int_equal(created, 1);
  assert_true(c != a);
  /* No key: never a duplicate. */
  assert_int_equal(store_event_insert(s, "src", NULL, "{}", 2, 400, &d1, &created, &e), 0);
  assert_int_equal(created, 1);
  assert_int_equal(store_event_insert(s, "src", NULL, "{}", 2, 400, &d2, &created, &e), 0);
  assert_int_equal(created, 1);
  assert_true(d1 != d2);

  store_event ev;
  assert_int_equal(store_event_get(s, a, &ev, &e), 0);
  assert_int_equal(ev.id, a);
  assert_string_equal(ev.source, "src");
  assert_string_equal(ev.dedupe_key, "k1");
  assert_string_equal(ev.payload, "{\"n\":1}");
  assert_int_equal(ev.received_at, 100);
  store_event_release(&ev);
  assert_int_equal(store_event_get(s, d1, &ev, &e), 0);
  assert_null(ev.dedupe_key);
  store_event_release(&ev);
  assert_int_equal(store_event_get(s, 99999, &ev, &e), 1);
}

/* ---- runs ---- */

static int64_t add_run(store *s, int64_t ev, int64_t now) {
  perr e = {{0}};
  int64_t id;
  assert_int_equal(store_run_insert(s, ev, "r", 1, now, &id, &e), 0);
  return id;
}

static void test_run_insert_get(void **state) {
  struct fx *f = *state;
  perr e = {{0}};
  int64_t ev = seed(f->s, "k");
  int64_t id = add_run(f->s, ev, 123);
  store_run r;
  assert_int_equal(store_run_get(f->s, id, &r, &e), 0);
  assert_int_equal(r.id, id);
  assert_int_equal(r.event_id, ev);
  assert_string_equal(r.recipe, "r");
  assert_int_equal(r.recipe_version, 1);
  assert_string_equal(r.status, "queued");
  assert_int_equal(r.attempt, 0);
  assert_int_equal(r.next_attempt_at, 123);
  assert_null(r.last_error);
  assert_int_equal(r.created_at, 123);
  assert_int_equal(r.updated_at, 123);
  store_run_release(&r);
  assert_int_equal(store_run_get(f->s, id + 100, &r, &e), 1);

  /* A run must name a stored recipe version. */
  int64_t bad;
  assert_int_equal(store_run_insert(f->s, ev, "r", 7, 1, &bad, &e), -1);
  assert_int_equal(store_run_insert(f->s, ev, "zz", 1, 1, &bad, &e), -1);

  int64_t id2 = add_run(f->s, ev, 124);
  store_run *v;
  size_t n;
  assert_int_equal(store_runs_of_event(f->s, ev, &v, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_int_equal(v[0].id, id);
  assert_int_equal(v[1].id, id2);
  store_runs_free(v, n);
  assert_int_equal(store_runs_of_event(f->s, ev + 1000, &v, &n, &e), 0);
  assert_int_equal(n, 0);
  store_runs_free(v, n);
}

static void test_runs_runnable(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  int64_t ev = seed(s, "k");
  int64_t r1 = add_run(s, ev, 100), r2 = add_run(s, ev, 200), r3 = add_run(s, ev, 300);
  int64_t ids[8];
  size_t n;

  assert_int_equal(store_runs_runnable(s, 1000, NULL, 0, 8, ids, &n, &e), 0);
  assert_int_equal(n, 3);
  assert_int_equal(ids[0], r1);
  assert_int_equal(ids[1], r2);
  assert_int_equal(ids[2], r3);

  /* Exclusions: the engine already holds r1. */
  int64_t ex[] = {r1};
  assert_int_equal(store_runs_runnable(s, 1000, ex, 1, 8, ids, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_int_equal(ids[0], r2);
  assert_int_equal(ids[1], r3);
  assert_int_equal(store_runs_runnable(s, 1000, ex, 1, 1, ids, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ids[0], r2);
  assert_int_equal(store_runs_runnable(s, 1000, NULL, 0, 0, ids, &n, &e), 0);
  assert_int_equal(n, 0);

  /* No retrying run: no wake-up. */
  int64_t at;
  assert_int_equal(store_runs_next_wakeup(s, &at, &e), 1);

  /* r2 waits for a retry at 2000. */
  assert_int_equal(store_run_update(s, r2, "retrying", 1, 2000, "timeout", 500, &e), 0);
  assert_int_equal(store_runs_runnable(s, 1000, NULL, 0, 8, ids, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_int_equal(ids[0], r1);
  assert_int_equal(ids[1], r3);
  assert_int_equal(store_runs_next_wakeup(s, &at, &e), 0);
  assert_int_equal(at, 2000);
  assert_int_equal(store_runs_runnable(s, 2000, NULL, 0, 8, ids, &n, &e), 0);
  assert_int_equal(n, 3);
  assert_int_equal(ids[2], r2); /* due at 2000: after those due at 100, 300 */

  store_run r;
  assert_int_equal(store_run_get(s, r2, &r, &e), 0);
  assert_string_equal(r.status, "retrying");
  assert_int_equal(r.attempt, 1);
  assert_string_equal(r.last_error, "timeout");
  assert_int_equal(r.updated_at, 500);
  store_run_release(&r);

  /* Running and finished runs are not runnable; NULL error clears. */
  assert_int_equal(store_run_update(s, r1, "running", 0, 100, NULL, 600, &e), 0);
  assert_int_equal(store_run_update(s, r3, "succeeded", 0, 300, NULL, 600, &e), 0);
  assert_int_equal(store_runs_runnable(s, 1000, NULL, 0, 8, ids, &n, &e), 0);
  assert_int_equal(n, 0);
  assert_int_equal(store_run_update(s, r2, "running", 1, 2000, NULL, 600, &e), 0);
  assert_int_equal(store_run_get(s, r2, &r, &e), 0);
  assert_null(r.last_error);
  store_run_release(&r);
  assert_int_equal(store_run_update(s, 9999, "running", 0, 0, NULL, 1, &e), 1);

  /* A queued run is runnable even if its time lies ahead (only retrying
   * runs wait for theirs). */
  int64_t r4 = add_run(s, ev, 5000);
  assert_int_equal(store_runs_runnable(s, 1000, NULL, 0, 8, ids, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ids[0], r4);
}

static void test_runs_requeue_running(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  int64_t ev = seed(s, "k");
  int64_t r1 = add_run(s, ev, 1), r2 = add_run(s, ev, 2), r3 = add_run(s, ev, 3);
  assert_int_equal(store_run_update(s, r1, "running", 2, 1, NULL, 10, &e), 0);
  assert_int_equal(store_run_update(s, r2, "running", 0, 2, NULL, 10, &e), 0);
  assert_int_equal(store_run_update(s, r3, "succeeded", 0, 3, NULL, 10, &e), 0);
  assert_int_equal(store_step_begin(s, r1, 0, "a", NULL, NULL, 5, &e), 0);
  assert_int_equal(store_step_finish(s, r1, 0, "a", "succeeded", "{}", NULL, 6, 1, &e), 0);
  int n = -1;
  assert_int_equal(store_runs_requeue_running(s, 20, &n, &e), 0);
  assert_int_equal(n, 2);
  store_run r;
  assert_int_equal(store_run_get(s, r1, &r, &e), 0);
  assert_string_equal(r.status, "queued");
  assert_int_equal(r.attempt, 2);
  assert_int_equal(r.updated_at, 20);
  store_run_release(&r);
  assert_int_equal(store_run_get(s, r3, &r, &e), 0);
  assert_string_equal(r.status, "succeeded");
  store_run_release(&r);
  store_step *steps;
  size_t ns;
  assert_int_equal(store_steps_of_run(s, r1, &steps, &ns, &e), 0);
  assert_int_equal(ns, 1); /* kept: the run resumes after it */
  store_steps_free(steps, ns);
  assert_int_equal(store_runs_requeue_running(s, 30, &n, &e), 0);
  assert_int_equal(n, 0);
}

static void test_run_replay(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  int64_t ev = seed(s, "k");
  int64_t id = add_run(s, ev, 1);
  assert_int_equal(store_run_replay(s, 4242, 50, &e), 1);
  assert_int_equal(store_run_replay(s, id, 50, &e), 2); /* queued, not failed */

  assert_int_equal(store_step_begin(s, id, 0, "a", "{\"in\":0}", NULL, 2, &e), 0);
  assert_int_equal(store_step_finish(s, id, 0, "a", "succeeded", "{\"out\":0}", NULL, 3, 1, &e), 0);
  assert_int_equal(store_step_begin(s, id, 1, "b", "{\"in\":1}", NULL, 4, &e), 0);
  assert_int_equal(store_step_finish(s, id, 1, "b", "failed", NULL, "HTTP 400", 5, 1, &e), 0);
  assert_int_equal(store_run_update(s, id, "failed", 3, 4, "step b: HTTP 400", 6, &e), 0);

  assert_int_equal(store_run_replay(s, id, 100, &e), 0);
  store_run r;
  assert_int_equal(store_run_get(s, id, &r, &e), 0);
  assert_string_equal(r.status, "queued");
  assert_int_equal(r.attempt, 0);
  assert_null(r.last_error);
  assert_int_equal(r.next_attempt_at, 100);
  assert_int_equal(r.updated_at, 100);
  store_run_release(&r);
  store_step *steps;
  size_t n;
  assert_int_equal(store_steps_of_run(s, id, &steps, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(steps[0].position, 0);
  assert_string_equal(steps[0].output, "{\"out\":0}");
  store_steps_free(steps, n);
  assert_int_equal(store_run_replay(s, id, 100, &e), 2);
}

static void test_runs_list(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  int v, changed;
  int64_t ev = seed(s, "k");
  assert_int_equal(store_recipe_put(s, "q", "{}", "dq", "src", NULL, 1, &v, &changed, &e), 0);
  int64_t ids[5];
  for (int i = 0; i < 5; i++) ids[i] = add_run(s, ev, i);
  int64_t qid;
  assert_int_equal(store_run_insert(s, ev, "q", 1, 9, &qid, &e), 0);
  assert_int_equal(store_run_update(s, ids[1], "failed", 0, 0, "x", 10, &e), 0);
  assert_int_equal(store_run_update(s, qid, "failed", 0, 0, "y", 10, &e), 0);

  store_run *list;
  size_t n;
  assert_int_equal(store_runs_list(s, NULL, NULL, 0, &list, &n, &e), 0);
  assert_int_equal(n, 6);
  assert_int_equal(list[0].id, qid); /* newest first */
  assert_int_equal(list[5].id, ids[0]);
  store_runs_free(list, n);
  assert_int_equal(store_runs_list(s, NULL, NULL, 2, &list, &n, &e), 0);
  assert_int_equal(n, 2);
  store_runs_free(list, n);
  assert_int_equal(store_runs_list(s, "failed", NULL, 0, &list, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_int_equal(list[0].id, qid);
  assert_int_equal(list[1].id, ids[1]);
  store_runs_free(list, n);
  assert_int_equal(store_runs_list(s, NULL, "q", 0, &list, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(list[0].id, qid);
  store_runs_free(list, n);
  assert_int_equal(store_runs_list(s, "failed", "r", 0, &list, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(list[0].id, ids[1]);
  store_runs_free(list, n);
  assert_int_equal(store_runs_list(s, "succeeded", NULL, 0, &list, &n, &e), 0);
  assert_int_equal(n, 0);
  store_runs_free(list, n);
}

static void test_counts_and_oldest(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  store_status_count c[8];
  size_t n = 99;
  assert_int_equal(store_runs_count_by_status(s, c, 8, &n, &e), 0);
  assert_int_equal(n, 0);
  int64_t at;
  assert_int_equal(store_runs_oldest_runnable(s, 1000, &at, &e), 1);

  int64_t ev = seed(s, "k");
  int64_t r1 = add_run(s, ev, 100), r2 = add_run(s, ev, 200);
  add_run(s, ev, 300);
  int64_t r4 = add_run(s, ev, 400);
  assert_int_equal(store_run_update(s, r1, "retrying", 1, 5000, "later", 150, &e), 0);
  assert_int_equal(store_run_update(s, r4, "succeeded", 0, 400, NULL, 450, &e), 0);
  assert_int_equal(store_runs_count_by_status(s, c, 8, &n, &e), 0);
  assert_int_equal(n, 3);
  assert_string_equal(c[0].status, "queued");
  assert_int_equal(c[0].count, 2);
  assert_string_equal(c[1].status, "retrying");
  assert_int_equal(c[1].count, 1);
  assert_string_equal(c[2].status, "succeeded");
  assert_int_equal(c[2].count, 1);
  assert_int_equal(store_runs_count_by_status(s, c, 1, &n, &e), 0);
  assert_int_equal(n, 1);

  /* r1 retrying not yet due: the oldest runnable is r2. */
  assert_int_equal(store_runs_oldest_runnable(s, 1000, &at, &e), 0);
  assert_int_equal(at, 200);
  assert_int_equal(store_runs_oldest_runnable(s, 5000, &at, &e), 0);
  assert_int_equal(at, 100);
  (void)r2;
}

/* ---- steps ---- */

static void test_steps(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  int64_t ev = seed(s, "k");
  int64_t run = add_run(s, ev, 1);

  assert_int_equal(store_step_begin(s, run, 0, "qualify", "{\"p\":1}", "{\"off\":7}", 10, &e), 0);
  store_step *v;
  size_t n;
  assert_int_equal(store_steps_of_run(s, run, &v, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(v[0].run_id, run);
  assert_int_equal(v[0].position, 0);
  assert_string_equal(v[0].step_id, "qualify");
  assert_string_equal(v[0].status, "running");
  assert_int_equal(v[0].attempts, 1);
  assert_string_equal(v[0].input, "{\"p\":1}");
  assert_string_equal(v[0].state, "{\"off\":7}");
  assert_null(v[0].output);
  assert_null(v[0].error);
  assert_int_equal(v[0].started_at, 10);
  assert_int_equal(v[0].finished_at, 0);
  assert_int_equal(v[0].prompt_tokens, 0);
  assert_true(v[0].cost_usd == 0.0);
  store_steps_free(v, n);

  /* A transient failure: the row stays running, with the error. */
  assert_int_equal(store_step_finish(s, run, 0, "qualify", "running", NULL, "HTTP 503", 15, 5, &e),
                   0);
  assert_int_equal(store_steps_of_run(s, run, &v, &n, &e), 0);
  assert_string_equal(v[0].status, "running");
  assert_string_equal(v[0].error, "HTTP 503");
  assert_int_equal(v[0].finished_at, 15);
  assert_int_equal(v[0].duration_ms, 5);
  store_steps_free(v, n);

  /* The next attempt: attempts 2, error cleared, new input. */
  assert_int_equal(store_step_begin(s, run, 0, "qualify", "{\"p\":2}", NULL, 20, &e), 0);
  assert_int_equal(store_steps_of_run(s, run, &v, &n, &e), 0);
  assert_int_equal(v[0].attempts, 2);
  assert_null(v[0].error);
  assert_string_equal(v[0].input, "{\"p\":2}");
  assert_null(v[0].state);
  assert_int_equal(v[0].started_at, 20);
  assert_int_equal(v[0].finished_at, 0);
  store_steps_free(v, n);
  assert_int_equal(store_step_finish(s, run, 0, "qualify", "succeeded", "{\"score\":9}", NULL, 30,
                                     10, &e),
                   0);

  /* A step skipped by its `if` never began: its row comes from finish. */
  assert_int_equal(store_step_finish(s, run, 1, "notify", "skipped", NULL, NULL, 31, 0, &e), 0);
  assert_int_equal(store_steps_of_run(s, run, &v, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_string_equal(v[0].status, "succeeded");
  assert_string_equal(v[0].output, "{\"score\":9}");
  assert_int_equal(v[0].attempts, 2);
  assert_int_equal(v[0].duration_ms, 10);
  assert_int_equal(v[1].position, 1);
  assert_string_equal(v[1].step_id, "notify");
  assert_string_equal(v[1].status, "skipped");
  assert_int_equal(v[1].attempts, 0);
  assert_int_equal(v[1].started_at, 31);
  assert_int_equal(v[1].finished_at, 31);
  store_steps_free(v, n);

  assert_int_equal(store_step_finish(s, run, 2, "x", "done", NULL, NULL, 1, 0, &e), -1);
  assert_non_null(strstr(e.msg, "\"done\""));
  /* A step of a missing run is refused by the foreign key. */
  assert_int_equal(store_step_begin(s, run + 50, 0, "a", NULL, NULL, 1, &e), -1);
  assert_int_equal(store_steps_of_run(s, run + 50, &v, &n, &e), 0);
  assert_int_equal(n, 0);
  store_steps_free(v, n);
}

/* ---- cursors ---- */

static void test_cursors(void **state) {
  struct fx *f = *state;
  perr e = {{0}};
  char *c = (char *)"x";
  assert_int_equal(store_cursor_get(f->s, "imap:inbox", &c, &e), 1);
  assert_null(c);
  assert_int_equal(store_cursor_set(f->s, "imap:inbox", "uid:41", 5, &e), 0);
  assert_int_equal(store_cursor_get(f->s, "imap:inbox", &c, &e), 0);
  assert_string_equal(c, "uid:41");
  free(c);
  assert_int_equal(store_cursor_set(f->s, "imap:inbox", "uid:42", 6, &e), 0);
  assert_int_equal(store_cursor_get(f->s, "imap:inbox", &c, &e), 0);
  assert_string_equal(c, "uid:42");
  free(c);
  assert_int_equal(store_cursor_get(f->s, "other", &c, &e), 1);
}

/* ---- transactions and change detection ---- */

static void test_data_version(void **state) {
  struct fx *f = *state;
  perr e = {{0}};
  store *other = NULL;
  assert_int_equal(store_open(&other, f->path, 0, &e), 0);
  int64_t v0, v1, v2;
  assert_int_equal(store_data_version(f->s, &v0, &e), 0);
  /* Our own commit does not move our data_version... */
  seed(f->s, "mine");
  assert_int_equal(store_data_version(f->s, &v1, &e), 0);
  assert_int_equal(v1, v0);
  /* ...another connection's does, and so does its recipe generation. */
  int64_t g0 = generation(f->s);
  int v, changed;
  assert_int_equal(store_recipe_put(other, "o", "{}", "do", "s", NULL, 1, &v, &changed, &e), 0);
  assert_int_equal(store_data_version(f->s, &v2, &e), 0);
  assert_true(v2 != v1);
  assert_true(generation(f->s) > g0);
  store_close(other);
}

static void test_savepoint_rollback(void **state) {
  struct fx *f = *state;
  store *s = f->s;
  perr e = {{0}};
  assert_false(store_in_txn(s));
  assert_int_equal(store_savepoint(s, &e), -1); /* needs a transaction */
  assert_int_equal(store_commit(s, &e), -1);
  assert_non_null(strstr(e.msg, "no transaction"));

  assert_int_equal(store_begin(s, &e), 0);
  assert_true(store_in_txn(s));
  assert_int_equal(store_begin(s, &e), -1);
  assert_non_null(strstr(e.msg, "already open"));
  int64_t kept, dropped, nested;
  int created;
  assert_int_equal(store_event_insert(s, "src", "kept", "{}", 2, 1, &kept, &created, &e), 0);
  assert_int_equal(store_savepoint(s, &e), 0);
  assert_int_equal(store_event_insert(s, "src", "dropped", "{}", 2, 1, &dropped, &created, &e), 0);
  /* Nested savepoints of the same name: the inner one released, the outer
   * one rolled back takes both. */
  assert_int_equal(store_savepoint(s, &e), 0);
  assert_int_equal(store_event_insert(s, "src", "nested", "{}", 2, 1, &nested, &created, &e), 0);
  assert_int_equal(store_savepoint_release(s, &e), 0);
  store_savepoint_rollback(s);
  assert_true(store_in_txn(s));
  assert_int_equal(store_savepoint(s, &e), 0);
  int64_t inner;
  assert_int_equal(store_event_insert(s, "src", "inner", "{}", 2, 1, &inner, &created, &e), 0);
  assert_int_equal(store_savepoint_release(s, &e), 0);
  assert_int_equal(store_commit(s, &e), 0);
  assert_false(store_in_txn(s));

  store_event ev;
  assert_int_equal(store_event_get(s, kept, &ev, &e), 0);
  store_event_release(&ev);
  assert_int_equal(store_event_get(s, inner, &ev, &e), 0);
  store_event_release(&ev);
  sqlite3 *db = raw_open(f->path);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM events WHERE dedupe_key IN ('dropped','nested')"),
                   0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM events"), 2);
  sqlite3_close(db);

  /* A whole transaction rolled back leaves nothing either. */
  assert_int_equal(store_begin(s, &e), 0);
  assert_int_equal(store_event_insert(s, "src", "gone", "{}", 2, 1, &dropped, &created, &e), 0);
  store_rollback(s);
  assert_false(store_in_txn(s));
  assert_int_equal(store_event_get(s, dropped, &ev, &e), 1);
  store_rollback(s); /* harmless without a transaction */
}

static void test_integrity_check(void **state) {
  struct fx *f = *state;
  perr e = {{0}};
  seed(f->s, "k");
  assert_int_equal(store_integrity_check(f->s, &e), 0);
}

static void test_close_null(void **state) {
  (void)state;
  store_close(NULL);
  store_recipe_release(NULL);
  store_recipes_free(NULL, 0);
  store_event_release(NULL);
  store_run_release(NULL);
  store_runs_free(NULL, 0);
  store_step_release(NULL);
  store_steps_free(NULL, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_creates_0600, setup, teardown),
      cmocka_unit_test(test_open_mode_despite_umask),
      cmocka_unit_test_setup_teardown(test_settings_applied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_busy_timeout_waits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup, teardown),
      cmocka_unit_test(test_failed_migration_rolls_back),
      cmocka_unit_test(test_concurrent_first_open),
      cmocka_unit_test(test_newer_schema_refused),
      cmocka_unit_test(test_not_a_database),
      cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recipes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recipe_put_rolls_back_in_txn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_dedupe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_insert_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runs_runnable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runs_requeue_running, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runs_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_counts_and_oldest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_steps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cursors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_savepoint_rollback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_integrity_check, setup, teardown),
      cmocka_unit_test(test_close_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
