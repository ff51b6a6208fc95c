/*
 * store: opening the database, migrations, transactions, the statement
 * cache.  The other store_*.c files hold one table family each:
 *   store_recipes.c  recipes, recipe_versions (and the generation counter)
 *   store_events.c   events, cursors             (intake's side)
 *   store_runs.c     runs                        (the scheduler's side)
 *   store_steps.c    steps
 *
 * NOTES ON THE DESIGN OF THE STORE
 *
 * Tables (schema/001_init.sql has every column):
 *   meta             key -> integer; recipes_generation is bumped by SQL
 *                    triggers on every write to recipes, so any process's
 *                    import is seen by a daemon with one read.
 *   recipes          head per name: current_version, enabled, removed, source.
 *   recipe_versions  (name, version) -> definition JSON + digest.  Kept
 *                    forever: runs name the version they started with.
 *   events           (source, dedupe_key) unique; payload JSON.
 *   runs             event x recipe version; status, attempt, next_attempt_at.
 *   steps            (run_id, position) -> one row per step begun or skipped.
 *   cursors          poll position per trigger source.
 *   usage            GPT tokens and cost per day/provider/model/recipe.
 *   response_cache   answers kept for steps that opt in to caching.
 *
 * Run states (runs.status) and the function performing each transition:
 *
 *   queued --claim--> running --step ok, more steps--> running
 *     ^                 |  \--last step ok----------> succeeded
 *     |                 |--transient error--------> retrying --time--> (claimed again)
 *     |                 |--permanent / exhausted--> failed
 *     |                 |--budget spent / quota---> budget --window--> (claimed again)
 *     |                 '--crash or shutdown------> (found running at start: queued)
 *     '------------- runs replay (from failed or budget)
 *
 *   created queued ........................ store_run_insert (intake)
 *   claim, ok, retrying, failed ........... store_run_update (engine)
 *   found running at daemon start -> queued store_runs_requeue_running
 *   failed/budget -> queued ............... store_run_replay
 *   A run is runnable when queued, or retrying/budget with next_attempt_at <= now
 *   (store_runs_runnable walks the partial index runs_runnable).
 *
 * Step rows: running -> succeeded | skipped | failed.
 *   store_step_begin   creates the row or starts another attempt
 *                      (attempts + 1, status running, finished_at 0)
 *   store_step_finish  ends the attempt; status running means "a retry is
 *                      pending", and a step skipped by `if` gets its row
 *                      here without having begun
 *   store_run_replay   deletes the failed row so the step runs afresh
 *   The next step of a run is the first position without a succeeded or
 *   skipped row; a row still `running` after a crash is an attempt whose
 *   outcome is unknown (its `state` tells the step kind how to recover).
 *
 * Opening: the file is created 0600 by open(2) before SQLite sees it (SQLite
 * would create it with the umask's mode; its -wal and -shm files copy the
 * main file's mode).  Nothing is written before the schema version check:
 * a database from a newer promptd is refused and left byte for byte as it
 * was.  Then journal_mode=WAL, synchronous=FULL, and every migration above
 * PRAGMA user_version in one BEGIN IMMEDIATE transaction that also sets
 * user_version; the version is read again under that lock because another
 * process may have migrated meanwhile.
 *
 * Concurrency: one daemon and any number of CLI processes share the file.
 * Writers take the lock at BEGIN IMMEDIATE (never a read that later upgrades
 * to a write, which SQLite can only fail with SQLITE_BUSY) and wait up to
 * the 5 s busy timeout.  A daemon notices outside commits with
 * store_data_version, which changes only for other connections' commits.
 *
 * Speed: intake is store_event_insert + store_run_insert per event inside
 * one caller-owned transaction per loop iteration; each is a single cached
 * statement (the event insert reports a duplicate by returning no row, and
 * only then looks the old id up).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/metrics_catalog.h"
#include "core/schema.h"
#include "core/store_internal.h"

/* One name for every savepoint: SQLite nests savepoints of the same name
 * and RELEASE / ROLLBACK TO act on the innermost, which is exactly a stack. */
#define STORE_SAVEPOINT "promptd_sp"

/* ---- helpers shared by store*.c ---- */

sqlite3_stmt *store_stmt(store *s, enum store_stmt_id id, const char *sql, perr *e) {
  if (s->stmt[id]) return s->stmt[id];
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK) {
    perr_set(e, "store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return NULL;
  }
  s->stmt[id] = st;
  return st;
}

void store_stmt_done(sqlite3_stmt *st) {
  if (!st) return;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

int store_fail(store *s, const char *what, perr *e) {
  return perr_set(e, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

int store_step_done(store *s, sqlite3_stmt *st, const char *what, perr *e) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) store_fail(s, what, e);
  store_stmt_done(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

int store_col_text(sqlite3_stmt *st, int col, char **out) {
  *out = NULL;
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
  const unsigned char *t = sqlite3_column_text(st, col);
  if (!t) return -1; /* conversion ran out of memory */
  size_t n = (size_t)sqlite3_column_bytes(st, col);
  char *p = malloc(n + 1);
  if (!p) return -1;
  memcpy(p, t, n);
  p[n] = '\0';
  *out = p;
  return 0;
}

int store_grow(void **v, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t ncap = *cap ? *cap : 8;
  while (ncap < need) {
    if (ncap > ((size_t)-1) / 2 / elem) return -1;
    ncap *= 2;
  }
  void *p = realloc(*v, ncap * elem);
  if (!p) return -1;
  *v = p;
  *cap = ncap;
  return 0;
}

/* A statement run once (PRAGMAs at open, migrations): not worth caching. */
static int exec_once(store *s, const char *sql, const char *what, perr *e) {
  char *msg = NULL;
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    perr_set(e, "store: %s failed on %s: %s", what, s->path, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

/* An integer PRAGMA's value (user_version, data_version) via the cache. */
static int pragma_int(store *s, enum store_stmt_id id, const char *sql, const char *what,
                      int64_t *v, perr *e) {
  sqlite3_stmt *st = store_stmt(s, id, sql, e);
  if (!st) return -1;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *v = sqlite3_column_int64(st, 0);
  else store_fail(s, what, e);
  store_stmt_done(st);
  return rc == SQLITE_ROW ? 0 : -1;
}

static int read_user_version(store *s, int *v, perr *e) {
  int64_t x = 0;
  char what[512];
  snprintf(what, sizeof what, "read the schema version of %s", s->path);
  if (pragma_int(s, ST_USER_VERSION, "PRAGMA user_version", what, &x, e)) return -1;
  *v = (int)x;
  return 0;
}

/* ---- opening ---- */

/* The newest migration compiled in, after checking the table's order (a
 * build mistake must not silently skip a migration). */
static int newest_migration(int *newest, perr *e) {
  if (schema_migration_count < 1) return perr_set(e, "store: no schema migrations compiled in");
  for (int i = 1; i < schema_migration_count; i++)
    if (schema_migrations[i].version <= schema_migrations[i - 1].version)
      return perr_set(e, "store: migrations %s and %s are not strictly increasing",
                      schema_migrations[i - 1].name, schema_migrations[i].name);
  *newest = schema_migrations[schema_migration_count - 1].version;
  return 0;
}

static int refuse_newer(const char *path, int have, int newest, perr *e) {
  return perr_set(e,
                  "database %s has schema version %d, newer than this promptd (knows up to %d): "
                  "upgrade promptd or use another database",
                  path, have, newest);
}

/* Creates the file 0600 when absent, so the database (and the -wal/-shm
 * files SQLite derives from its mode) is never readable by others. */
static int ensure_file(const char *path, int readonly, perr *e) {
  struct stat sb;
  if (stat(path, &sb) == 0) {
    if (!S_ISREG(sb.st_mode)) return perr_set(e, "store: %s is not a regular file", path);
    return 0;
  }
  if (errno != ENOENT) return perr_set(e, "store: cannot stat %s: %s", path, strerror(errno));
  if (readonly) return perr_set(e, "store: database %s does not exist", path);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return 0; /* another process created it just now */
    return perr_set(e, "store: cannot create database %s: %s", path, strerror(errno));
  }
  /* The umask may have taken bits away; the mode is 0600, not less. */
  int rc = fchmod(fd, 0600);
  int err = errno;
  close(fd);
  if (rc) return perr_set(e, "store: cannot set mode 0600 on %s: %s", path, strerror(err));
  return 0;
}

static int journal_mode_row(void *arg, int ncol, char **vals, char **names) {
  (void)names;
  if (ncol > 0 && vals[0]) snprintf(arg, 16, "%s", vals[0]);
  return 0;
}

static int set_wal(store *s, perr *e) {
  char mode[16] = "";
  char *msg = NULL;
  int rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", journal_mode_row, mode, &msg);
  if (rc != SQLITE_OK) {
    perr_set(e, "store: cannot set journal_mode=WAL on %s: %s", s->path,
             msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return -1;
  }
  /* WAL is what lets the daemon read while a CLI writes; without it every
   * writer would block every reader. */
  if (strcasecmp(mode, "wal") != 0)
    return perr_set(e, "store: database %s cannot use WAL journaling (journal_mode is %s)",
                    s->path, mode);
  return 0;
}

static int migrate(store *s, int newest, perr *e) {
  if (exec_once(s, "BEGIN IMMEDIATE", "start migration", e)) return -1;
  int have;
  if (read_user_version(s, &have, e)) goto fail;
  /* Checked again under the write lock: a newer promptd may have
   * upgraded the file between our first look and now. */
  if (have > newest) {
    refuse_newer(s->path, have, newest, e);
    goto fail;
  }
  for (int i = 0; i < schema_migration_count; i++) {
    const struct schema_migration *m = &schema_migrations[i];
    if (m->version <= have) continue;
    char what[256];
    snprintf(what, sizeof what, "migration %s", m->name);
    if (exec_once(s, m->sql, what, e)) goto fail;
  }
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d", newest);
  if (exec_once(s, sql, "set schema version", e)) goto fail;
  if (exec_once(s, "COMMIT", "commit migration", e)) goto fail;
  return 0;
fail:
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}

int store_open(store **out, const char *path, unsigned flags, perr *e) {
  *out = NULL;
  if (!path || !*path) return perr_set(e, "store: no database path given");
  int readonly = (flags & STORE_READONLY) != 0;
  int newest = 0;
  if (newest_migration(&newest, e)) return -1;
  if (ensure_file(path, readonly, e)) return -1;

  store *s = calloc(1, sizeof *s);
  if (!s) return perr_set(e, "store: out of memory");
  s->flags = flags;
  s->path = strdup(path);
  if (!s->path) {
    free(s);
    return perr_set(e, "store: out of memory");
  }
  /* No SQLITE_OPEN_CREATE: the file exists now, and creating it here would
   * bypass the 0600 mode.  NOMUTEX: a store belongs to one thread. */
  int oflags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
  if (rc != SQLITE_OK) {
    perr_set(e, "store: cannot open database %s: %s", path,
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    store_close(s);
    return -1;
  }
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, 5000);
  /* Connection settings only: none of these writes to the file. */
  if (exec_once(s, "PRAGMA foreign_keys = ON", "enable foreign keys", e)) goto fail;

  int have;
  if (read_user_version(s, &have, e)) goto fail;
  if (have > newest) {
    refuse_newer(path, have, newest, e);
    goto fail;
  }
  if (readonly) {
    if (have < newest) {
      perr_set(e,
               "database %s has schema version %d, older than this promptd (needs %d): "
               "open it once without read-only access to upgrade it",
               path, have, newest);
      goto fail;
    }
    *out = s;
    return 0;
  }
  if (set_wal(s, e)) goto fail;
  if (exec_once(s, "PRAGMA synchronous = FULL", "set synchronous", e)) goto fail;
  if (have < newest && migrate(s, newest, e)) goto fail;
  *out = s;
  return 0;
fail:
  store_close(s);
  return -1;
}

void store_close(store *s) {
  if (!s) return;
  for (size_t i = 0; i < ST__COUNT; i++) sqlite3_finalize(s->stmt[i]);
  /* With every statement finalized sqlite3_close cannot be busy; an open
   * transaction is rolled back by it. */
  if (s->db) sqlite3_close(s->db);
  free(s->path);
  free(s);
}

const char *store_path(const store *s) { return s->path; }

/* ---- transactions ---- */

static int simple(store *s, enum store_stmt_id id, const char *sql, const char *what, perr *e) {
  sqlite3_stmt *st = store_stmt(s, id, sql, e);
  if (!st) return -1;
  return store_step_done(s, st, what, e);
}

int store_in_txn(const store *s) { return !sqlite3_get_autocommit(s->db); }

int store_begin(store *s, perr *e) {
  if (store_in_txn(s)) return perr_set(e, "store: begin: a transaction is already open");
  /* SQLite would start the transaction and fail only at the first write. */
  if (s->flags & STORE_READONLY)
    return perr_set(e, "store: begin: database %s is open read-only", s->path);
  return simple(s, ST_BEGIN, "BEGIN IMMEDIATE", "begin transaction", e);
}

int store_commit(store *s, perr *e) {
  if (!store_in_txn(s)) return perr_set(e, "store: commit: no transaction is open");
  double t0 = metrics_now_s();
  int rc = simple(s, ST_COMMIT, "COMMIT", "commit", e);
  metric_observe(METRIC_SOLO(&m_store_commit), metrics_now_s() - t0);
  if (rc == 0) return 0;
  /* A failed COMMIT may leave the transaction open; roll back so the caller
   * has one outcome to handle: nothing was stored. */
  store_rollback(s);
  return -1;
}

void store_rollback(store *s) {
  if (!store_in_txn(s)) return;
  simple(s, ST_ROLLBACK, "ROLLBACK", "rollback", NULL);
}

int store_savepoint(store *s, perr *e) {
  /* Outside BEGIN IMMEDIATE a SAVEPOINT would open a deferred transaction,
   * whose later upgrade to a write can fail with SQLITE_BUSY at once. */
  if (!store_in_txn(s)) return perr_set(e, "store: savepoint: no transaction is open");
  return simple(s, ST_SAVEPOINT, "SAVEPOINT " STORE_SAVEPOINT, "savepoint", e);
}

int store_savepoint_release(store *s, perr *e) {
  return simple(s, ST_SAVEPOINT_RELEASE, "RELEASE " STORE_SAVEPOINT, "release savepoint", e);
}

void store_savepoint_rollback(store *s) {
  /* ROLLBACK TO keeps the savepoint on the stack; RELEASE pops it. */
  if (simple(s, ST_SAVEPOINT_ROLLBACK, "ROLLBACK TO " STORE_SAVEPOINT, "rollback to savepoint",
             NULL) == 0)
    store_savepoint_release(s, NULL);
}

int store_atomic_begin(store *s, int *own, perr *e) {
  *own = !store_in_txn(s);
  return *own ? store_begin(s, e) : store_savepoint(s, e);
}

int store_atomic_end(store *s, int own, int rc, perr *e) {
  if (rc < 0) {
    if (own) store_rollback(s);
    else store_savepoint_rollback(s);
    return rc;
  }
  if (own) return store_commit(s, e) ? -1 : rc;
  if (store_savepoint_release(s, e)) {
    store_savepoint_rollback(s);
    return -1;
  }
  return rc;
}

/* ---- database-wide facts ---- */

int store_data_version(store *s, int64_t *v, perr *e) {
  return pragma_int(s, ST_DATA_VERSION, "PRAGMA data_version", "read data_version", v, e);
}

int store_recipes_generation(store *s, int64_t *gen, perr *e) {
  return pragma_int(s, ST_GENERATION,
                    "SELECT value FROM meta WHERE key = 'recipes_generation'",
                    "read recipes generation", gen, e);
}

int store_schema_version(store *s, int *v, perr *e) { return read_user_version(s, v, e); }

int store_integrity_check(store *s, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_INTEGRITY_CHECK, "PRAGMA integrity_check", e);
  if (!st) return -1;
  char report[768] = "";
  size_t len = 0;
  int rc, ok = 0, rows = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *line = (const char *)sqlite3_column_text(st, 0);
    if (!line) line = "";
    if (rows++ == 0 && strcmp(line, "ok") == 0) ok = 1;
    if (len < sizeof report - 1) {
      int w = snprintf(report + len, sizeof report - len, "%s%s", len ? "; " : "", line);
      if (w > 0) len += (size_t)w;
      if (len > sizeof report - 1) len = sizeof report - 1;
    }
  }
  if (rc != SQLITE_DONE) {
    store_fail(s, "integrity check", e);
    store_stmt_done(st);
    return -1;
  }
  store_stmt_done(st);
  if (!ok) return perr_set(e, "store: integrity check of %s failed: %s", s->path, report);
  return 0;
}
