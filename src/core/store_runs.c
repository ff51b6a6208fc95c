/*
 * store_runs: the runs table, the scheduler's side of the store.
 *
 * The run state machine is drawn at the top of store.c (and store.h).
 * Runnable means: status queued, or retrying/budget with next_attempt_at
 * <= now.
 * A queued run's next_attempt_at is the time it became queued, so one order
 * (next_attempt_at, id) serves both: due retries and fresh runs interleave
 * by the time they became due, oldest first.  The partial index
 * runs_runnable holds only queued, retrying and budget rows, so the scheduler's
 * query reads a handful of index entries however many runs have finished.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_internal.h"

void store_run_release(store_run *r) {
  if (!r) return;
  free(r->recipe);
  free(r->status);
  free(r->last_error);
  memset(r, 0, sizeof *r);
}

void store_runs_free(store_run *v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) store_run_release(&v[i]);
  free(v);
}

/* The columns every run query returns, in read_run's order. */
#define RUN_COLS                                                                        \
  "id, event_id, recipe, recipe_version, status, attempt, next_attempt_at, last_error," \
  " created_at, updated_at"

static int read_run(sqlite3_stmt *st, store_run *r) {
  memset(r, 0, sizeof *r);
  r->id = sqlite3_column_int64(st, 0);
  r->event_id = sqlite3_column_int64(st, 1);
  r->recipe_version = sqlite3_column_int(st, 3);
  r->attempt = sqlite3_column_int(st, 5);
  r->next_attempt_at = sqlite3_column_int64(st, 6);
  r->created_at = sqlite3_column_int64(st, 8);
  r->updated_at = sqlite3_column_int64(st, 9);
  if (store_col_text(st, 2, &r->recipe) || store_col_text(st, 4, &r->status) ||
      store_col_text(st, 7, &r->last_error)) {
    store_run_release(r);
    return -1;
  }
  return 0;
}

/* Steps an already bound statement and collects every row. */
static int read_runs(store *s, sqlite3_stmt *st, const char *what, store_run **out, size_t *n,
                     perr *e) {
  store_run *v = NULL;
  size_t len = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (store_grow((void **)&v, &cap, len + 1, sizeof *v) || read_run(st, &v[len])) {
      perr_set(e, "store: %s: out of memory", what);
      goto fail;
    }
    len++;
  }
  if (rc != SQLITE_DONE) {
    store_fail(s, what, e);
    goto fail;
  }
  store_stmt_done(st);
  *out = v;
  *n = len;
  return 0;
fail:
  store_stmt_done(st);
  store_runs_free(v, len);
  return -1;
}

int store_run_insert(store *s, int64_t event_id, const char *recipe, int version, int64_t now,
                     int64_t *run_id, perr *e) {
  sqlite3_stmt *st =
      store_stmt(s, ST_RUN_INSERT,
                 "INSERT INTO runs (event_id, recipe, recipe_version, status, attempt,"
                 " next_attempt_at, created_at, updated_at)"
                 " VALUES (?1, ?2, ?3, 'queued', 0, ?4, ?4, ?4)",
                 e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, event_id) || sqlite3_bind_text(st, 2, recipe, -1, SQLITE_STATIC) ||
      sqlite3_bind_int(st, 3, version) || sqlite3_bind_int64(st, 4, now)) {
    store_fail(s, "insert run", e);
    store_stmt_done(st);
    return -1;
  }
  if (store_step_done(s, st, "insert run", e)) return -1;
  /* Same connection, no statement in between: the id of this insert. */
  *run_id = sqlite3_last_insert_rowid(s->db);
  return 0;
}

int store_run_get(store *s, int64_t id, store_run *out, perr *e) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = store_stmt(s, ST_RUN_GET, "SELECT " RUN_COLS " FROM runs WHERE id = ?1", e);
  if (!st) return -1;
  int rc = SQLITE_MISUSE, ret = 0;
  if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (read_run(st, out)) ret = perr_set(e, "store: get run: out of memory");
  } else if (rc == SQLITE_DONE) {
    ret = 1;
  } else {
    ret = store_fail(s, "get run", e);
  }
  store_stmt_done(st);
  return ret;
}

int store_runs_of_event(store *s, int64_t event_id, store_run **out, size_t *n, perr *e) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = store_stmt(
      s, ST_RUNS_OF_EVENT, "SELECT " RUN_COLS " FROM runs WHERE event_id = ?1 ORDER BY id", e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, event_id)) {
    store_fail(s, "runs of event", e);
    store_stmt_done(st);
    return -1;
  }
  return read_runs(s, st, "runs of event", out, n, e);
}

static int excluded(int64_t id, const int64_t *exclude, size_t nexclude) {
  for (size_t i = 0; i < nexclude; i++)
    if (exclude[i] == id) return 1;
  return 0;
}

int store_runs_runnable(store *s, int64_t now, const int64_t *exclude, size_t nexclude,
                        size_t max, int64_t *ids, size_t *n, perr *e) {
  *n = 0;
  if (max == 0) return 0;
  /* The exclusions (runs the engine already holds, at most its concurrency
   * limit) are filtered here rather than in SQL: asking for max + nexclude
   * rows is enough, and the statement stays one cached text.  INDEXED BY:
   * without ANALYZE statistics the planner may pick another index and sort
   * the whole backlog; this order must come straight from the index. */
  sqlite3_stmt *st = store_stmt(s, ST_RUNS_RUNNABLE,
                                "SELECT id FROM runs INDEXED BY runs_runnable"
                                " WHERE (status = 'queued' OR status = 'retrying'"
                                " OR status = 'budget')"
                                " AND (status = 'queued' OR next_attempt_at <= ?1)"
                                " ORDER BY next_attempt_at, id LIMIT ?2",
                                e);
  if (!st) return -1;
  int64_t limit = (int64_t)max + (int64_t)nexclude;
  if (limit < 0 || max > (size_t)INT64_MAX || nexclude > (size_t)INT64_MAX) limit = INT64_MAX;
  if (sqlite3_bind_int64(st, 1, now) || sqlite3_bind_int64(st, 2, limit)) {
    store_fail(s, "find runnable runs", e);
    store_stmt_done(st);
    return -1;
  }
  int rc = SQLITE_DONE;
  while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    if (!excluded(id, exclude, nexclude)) ids[(*n)++] = id;
  }
  if (*n < max && rc != SQLITE_DONE) {
    store_fail(s, "find runnable runs", e);
    store_stmt_done(st);
    *n = 0;
    return -1;
  }
  store_stmt_done(st);
  return 0;
}

/* A single nullable integer from an already prepared statement: 1 for NULL. */
static int one_int64(store *s, sqlite3_stmt *st, const char *what, int64_t *v, perr *e) {
  int rc = sqlite3_step(st), ret = 0;
  if (rc == SQLITE_ROW) {
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) ret = 1;
    else *v = sqlite3_column_int64(st, 0);
  } else if (rc == SQLITE_DONE) {
    ret = 1;
  } else {
    ret = store_fail(s, what, e);
  }
  store_stmt_done(st);
  return ret;
}

int store_runs_next_wakeup(store *s, int64_t *at, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_RUNS_NEXT_WAKEUP,
                                "SELECT min(next_attempt_at) FROM runs INDEXED BY runs_waiting"
                                " WHERE status IN ('retrying', 'budget')",
                                e);
  if (!st) return -1;
  return one_int64(s, st, "next retry time", at, e);
}

int store_runs_count_waiting(store *s, int64_t *n, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_RUNS_COUNT_WAITING,
                                "SELECT count(*) FROM runs INDEXED BY runs_runnable"
                                " WHERE status = 'queued' OR status = 'retrying'"
                                " OR status = 'budget'",
                                e);
  if (!st) return -1;
  *n = 0;
  return one_int64(s, st, "count waiting runs", n, e) < 0 ? -1 : 0;
}

int store_runs_oldest_runnable(store *s, int64_t now, int64_t *created_at, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_RUNS_OLDEST,
                                "SELECT min(created_at) FROM runs INDEXED BY runs_runnable"
                                " WHERE (status = 'queued' OR status = 'retrying'"
                                " OR status = 'budget')"
                                " AND (status = 'queued' OR next_attempt_at <= ?1)",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, now)) {
    store_fail(s, "oldest runnable run", e);
    store_stmt_done(st);
    return -1;
  }
  return one_int64(s, st, "oldest runnable run", created_at, e);
}

int store_run_update(store *s, int64_t id, const char *status, int attempt,
                     int64_t next_attempt_at, const char *error, int64_t now, perr *e) {
  if (!status || !*status) return perr_set(e, "store: update run %lld: no status", (long long)id);
  sqlite3_stmt *st = store_stmt(s, ST_RUN_UPDATE,
                                "UPDATE runs SET status = ?2, attempt = ?3, next_attempt_at = ?4,"
                                " last_error = ?5, updated_at = ?6 WHERE id = ?1",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, id) || sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC) ||
      sqlite3_bind_int(st, 3, attempt) || sqlite3_bind_int64(st, 4, next_attempt_at) ||
      sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 6, now)) {
    store_fail(s, "update run", e);
    store_stmt_done(st);
    return -1;
  }
  if (store_step_done(s, st, "update run", e)) return -1;
  return sqlite3_changes(s->db) == 0 ? 1 : 0;
}

int store_runs_requeue_running(store *s, int64_t now, int *n, perr *e) {
  *n = 0;
  /* next_attempt_at is left as it was (when the run last became due, in
   * the past), so a requeued run keeps its place ahead of newer work. */
  sqlite3_stmt *st = store_stmt(
      s, ST_RUNS_REQUEUE,
      "UPDATE runs SET status = 'queued', updated_at = ?1 WHERE status = 'running'", e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, now)) {
    store_fail(s, "requeue running runs", e);
    store_stmt_done(st);
    return -1;
  }
  if (store_step_done(s, st, "requeue running runs", e)) return -1;
  *n = sqlite3_changes(s->db);
  return 0;
}

int store_runs_list(store *s, const char *status, const char *recipe, int limit, store_run **out,
                    size_t *n, perr *e) {
  *out = NULL;
  *n = 0;
  if (limit <= 0) limit = 100;
  /* Four texts rather than "?1 IS NULL OR status = ?1", which keeps SQLite
   * from using either index.  Each keeps the parameter numbers ?1..?3
   * (unused ones may still be bound), so one bind sequence serves all. */
  sqlite3_stmt *st;
  if (status && recipe)
    st = store_stmt(s, ST_RUNS_LIST_BOTH,
                    "SELECT " RUN_COLS " FROM runs WHERE status = ?1 AND recipe = ?2"
                    " ORDER BY id DESC LIMIT ?3",
                    e);
  else if (status)
    st = store_stmt(s, ST_RUNS_LIST_STATUS,
                    "SELECT " RUN_COLS " FROM runs WHERE status = ?1 ORDER BY id DESC LIMIT ?3",
                    e);
  else if (recipe)
    st = store_stmt(s, ST_RUNS_LIST_RECIPE,
                    "SELECT " RUN_COLS " FROM runs WHERE recipe = ?2 ORDER BY id DESC LIMIT ?3",
                    e);
  else
    st = store_stmt(s, ST_RUNS_LIST_ALL,
                    "SELECT " RUN_COLS " FROM runs ORDER BY id DESC LIMIT ?3", e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 2, recipe, -1, SQLITE_STATIC) || sqlite3_bind_int(st, 3, limit)) {
    store_fail(s, "list runs", e);
    store_stmt_done(st);
    return -1;
  }
  return read_runs(s, st, "list runs", out, n, e);
}

int store_runs_count_by_status(store *s, store_status_count *out, size_t max, size_t *n,
                               perr *e) {
  *n = 0;
  sqlite3_stmt *st = store_stmt(
      s, ST_RUNS_COUNT, "SELECT status, count(*) FROM runs GROUP BY status ORDER BY status", e);
  if (!st) return -1;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n >= max) continue; /* keep stepping: the caller's array is full */
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out[*n].status, sizeof out[*n].status, "%s", t ? (const char *)t : "");
    out[*n].count = sqlite3_column_int64(st, 1);
    (*n)++;
  }
  if (rc != SQLITE_DONE) {
    store_fail(s, "count runs", e);
    store_stmt_done(st);
    *n = 0;
    return -1;
  }
  store_stmt_done(st);
  return 0;
}

/* replay's work inside its transaction or savepoint. */
static int replay(store *s, int64_t id, int64_t now, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_RUN_STATUS, "SELECT status FROM runs WHERE id = ?1", e);
  if (!st) return -1;
  int rc = SQLITE_MISUSE, ret = 0;
  if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const unsigned char *status = sqlite3_column_text(st, 0);
    /* failed: resumes at the failed step; budget: the caller says the
     * account or the cap has room again, so it should not wait longer. */
    if (!status || (strcmp((const char *)status, "failed") != 0 &&
                    strcmp((const char *)status, "budget") != 0))
      ret = 2;
  } else if (rc == SQLITE_DONE) {
    ret = 1;
  } else {
    ret = store_fail(s, "replay run", e);
  }
  store_stmt_done(st);
  if (ret) return ret;

  /* Only the failed step's row goes: succeeded steps keep their outputs, so
   * a replay never pays again for GPT calls that worked. */
  st = store_stmt(s, ST_STEPS_DELETE_FAILED,
                  "DELETE FROM steps WHERE run_id = ?1 AND status = 'failed'", e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, id)) {
    store_fail(s, "replay run", e);
    store_stmt_done(st);
    return -1;
  }
  if (store_step_done(s, st, "replay run: delete failed step", e)) return -1;

  st = store_stmt(s, ST_RUN_REPLAY,
                  "UPDATE runs SET status = 'queued', attempt = 0, last_error = NULL,"
                  " next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
                  e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, id) || sqlite3_bind_int64(st, 2, now)) {
    store_fail(s, "replay run", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "replay run", e);
}

int store_run_replay(store *s, int64_t id, int64_t now, perr *e) {
  int own;
  if (store_atomic_begin(s, &own, e)) return -1;
  int rc = replay(s, id, now, e);
  return store_atomic_end(s, own, rc, e);
}
