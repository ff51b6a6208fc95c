/*
 * store_prune: retention, deleting what is old enough, a batch at a time.
 *
 * What goes, and what each deletion takes with it (see schema/):
 *   runs     succeeded ones finished (updated_at) before the succeeded
 *            cutoff, failed ones before the failed cutoff; queued, running,
 *            retrying and budget runs never (only the two final states are
 *            in the index the search walks).  A run's steps rows go first
 *            (steps.run_id references runs).
 *   events   an event goes with its last run.  Events that never had a run
 *            (no recipe matched) go once received before the succeeded
 *            cutoff: a walk in id order from a position kept in meta
 *            (prune_events_after), stopping at the first event younger
 *            than the cutoff, so each event is looked at about once.
 *   response_cache  rows past expires_at.
 * Untouched: recipes and recipe_versions (runs name them; small), usage
 * (daily totals, budgets read them), cursors and trigger_health (one row
 * per source, not per event).
 *
 * The newest row of runs and of events is never deleted: SQLite gives a
 * new row max(id) + 1, so keeping the newest keeps ids from being handed
 * out twice (a `runs show 12` today and another run 12 tomorrow).
 *
 * Deduplication: the unique (source, dedupe_key) lives on the event row,
 * so a redelivery of a pruned event's key is accepted as new.  The dedupe
 * window is the event's retention (at least the succeeded age).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store_internal.h"

#define PRUNE_EVENTS_KEY "prune_events_after"

typedef struct victim {
  int64_t run, event;
} victim;

static int bind_fail(store *s, sqlite3_stmt *st, const char *what, perr *e) {
  store_fail(s, what, e);
  store_stmt_done(st);
  return -1;
}

/* Up to max runs of one final status finished before `before`. */
static int find_runs(store *s, const char *status, int64_t before, size_t max, victim *out,
                     size_t *n, perr *e) {
  /* The index's condition is repeated word for word: SQLite uses a partial
   * index only for a WHERE clause that contains it. */
  sqlite3_stmt *st = store_stmt(s, ST_PRUNE_FIND_RUNS,
                                "SELECT id, event_id FROM runs INDEXED BY runs_finished"
                                " WHERE (status = 'succeeded' OR status = 'failed')"
                                " AND status = ?1 AND updated_at < ?2"
                                " AND id < (SELECT max(id) FROM runs)"
                                " ORDER BY status, updated_at LIMIT ?3",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC) ||
      sqlite3_bind_int64(st, 2, before) || sqlite3_bind_int64(st, 3, (sqlite3_int64)max))
    return bind_fail(s, st, "find runs to prune", e);
  int rc;
  *n = 0;
  while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    out[*n].run = sqlite3_column_int64(st, 0);
    out[*n].event = sqlite3_column_int64(st, 1);
    (*n)++;
  }
  if (*n < max && rc != SQLITE_DONE) return bind_fail(s, st, "find runs to prune", e);
  store_stmt_done(st);
  return 0;
}

/* Runs a cached one-id DELETE; *changed = rows deleted. */
static int delete_by_id(store *s, enum store_stmt_id id, const char *sql, int64_t key,
                        const char *what, int64_t *changed, perr *e) {
  sqlite3_stmt *st = store_stmt(s, id, sql, e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, key)) return bind_fail(s, st, what, e);
  if (store_step_done(s, st, what, e)) return -1;
  *changed += sqlite3_changes(s->db);
  return 0;
}

static int delete_run(store *s, const victim *v, store_prune_counts *c, perr *e) {
  int64_t runs = 0;
  if (delete_by_id(s, ST_PRUNE_STEPS, "DELETE FROM steps WHERE run_id = ?1", v->run,
                   "prune steps", &c->steps, e) ||
      delete_by_id(s, ST_PRUNE_RUN, "DELETE FROM runs WHERE id = ?1", v->run, "prune run", &runs,
                   e))
    return -1;
  c->runs += runs;
  /* Another recipe's run of the same event may still be kept. */
  return delete_by_id(s, ST_PRUNE_EVENT_IF_ORPHAN,
                      "DELETE FROM events WHERE id = ?1"
                      " AND NOT EXISTS (SELECT 1 FROM runs WHERE event_id = ?1)"
                      " AND id < (SELECT max(id) FROM events)",
                      v->event, "prune event", &c->events, e);
}

static int prune_runs(store *s, const char *status, int64_t before, size_t max,
                      store_prune_counts *c, int *more, perr *e) {
  if (before <= 0 || max == 0) return 0;
  victim *v = malloc(max * sizeof *v);
  if (!v) return perr_set(e, "store: out of memory");
  size_t n = 0;
  int rc = find_runs(s, status, before, max, v, &n, e);
  for (size_t i = 0; rc == 0 && i < n; i++) rc = delete_run(s, &v[i], c, e);
  free(v);
  if (rc == 0 && n == max) *more = 1;
  return rc;
}

static int meta_get(store *s, int64_t *v, perr *e) {
  sqlite3_stmt *st =
      store_stmt(s, ST_PRUNE_META_GET, "SELECT value FROM meta WHERE key = '" PRUNE_EVENTS_KEY "'", e);
  if (!st) return -1;
  int rc = sqlite3_step(st);
  *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return bind_fail(s, st, "read the prune position", e);
  store_stmt_done(st);
  return 0;
}

static int meta_set(store *s, int64_t v, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_PRUNE_META_SET,
                                "INSERT INTO meta (key, value) VALUES ('" PRUNE_EVENTS_KEY "', ?1)"
                                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, v)) return bind_fail(s, st, "save the prune position", e);
  return store_step_done(s, st, "save the prune position", e);
}

/* The walk over events that have no run: up to max events looked at. */
static int prune_runless_events(store *s, int64_t before, size_t max, store_prune_counts *c,
                                int *more, perr *e) {
  if (before <= 0 || max == 0) return 0;
  int64_t after;
  if (meta_get(s, &after, e)) return -1;
  sqlite3_stmt *st = store_stmt(s, ST_PRUNE_WALK_EVENTS,
                                "SELECT id, received_at,"
                                " EXISTS (SELECT 1 FROM runs WHERE event_id = events.id),"
                                " id = (SELECT max(id) FROM events)"
                                " FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, after) || sqlite3_bind_int64(st, 2, (sqlite3_int64)max))
    return bind_fail(s, st, "walk events to prune", e);
  int64_t *ids = malloc(max * sizeof *ids);
  if (!ids) {
    store_stmt_done(st);
    return perr_set(e, "store: out of memory");
  }
  size_t n = 0, seen = 0;
  int rc, stopped = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    /* Ids grow with time: the first young event ends this walk; the newest
     * stays (see the top). */
    if (sqlite3_column_int64(st, 1) >= before || sqlite3_column_int(st, 3)) {
      stopped = 1;
      break;
    }
    seen++;
    after = id;
    /* An event with runs goes with its last run. */
    if (!sqlite3_column_int(st, 2)) ids[n++] = id;
  }
  if (!stopped && rc != SQLITE_DONE) {
    free(ids);
    return bind_fail(s, st, "walk events to prune", e);
  }
  store_stmt_done(st);
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < n; i++)
    ret = delete_by_id(s, ST_PRUNE_EVENT, "DELETE FROM events WHERE id = ?1", ids[i],
                       "prune event", &c->events, e);
  free(ids);
  if (ret == 0 && seen) ret = meta_set(s, after, e);
  if (ret == 0 && !stopped && seen == max) *more = 1;
  return ret;
}

static int prune_cache(store *s, int64_t now, size_t max, store_prune_counts *c, int *more,
                       perr *e) {
  if (now <= 0 || max == 0) return 0;
  sqlite3_stmt *st = store_stmt(s, ST_PRUNE_CACHE,
                                "DELETE FROM response_cache WHERE key IN"
                                " (SELECT key FROM response_cache WHERE expires_at <= ?1 LIMIT ?2)",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, now) || sqlite3_bind_int64(st, 2, (sqlite3_int64)max))
    return bind_fail(s, st, "prune the response cache", e);
  if (store_step_done(s, st, "prune the response cache", e)) return -1;
  int64_t n = sqlite3_changes(s->db);
  c->cache += n;
  if ((size_t)n == max) *more = 1;
  return 0;
}

int store_prune_batch(store *s, const store_prune_rules *r, store_prune_counts *c, int *more,
                      perr *e) {
  *more = 0;
  size_t max = r->batch > 0 ? (size_t)r->batch : 0;
  int own;
  if (store_atomic_begin(s, &own, e)) return -1;
  int64_t before_runs = c->runs;
  int rc = prune_runs(s, "succeeded", r->succeeded_before, max, c, more, e);
  size_t left = max - (size_t)(c->runs - before_runs);
  if (rc == 0) rc = prune_runs(s, "failed", r->failed_before, left, c, more, e);
  if (rc == 0) rc = prune_runless_events(s, r->succeeded_before, max, c, more, e);
  if (rc == 0) rc = prune_cache(s, r->cache_now, max, c, more, e);
  return store_atomic_end(s, own, rc, e);
}

int store_wal_setup(store *s, int64_t journal_size_limit, perr *e) {
  /* Checkpoint on commit once the WAL holds 1000 pages (SQLite's default,
   * set here so a build with another default cannot leave it off), and cut
   * the file back after a checkpoint: one burst must not leave a large WAL
   * behind for good. */
  if (sqlite3_wal_autocheckpoint(s->db, 1000) != SQLITE_OK)
    return store_fail(s, "set wal_autocheckpoint", e);
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %lld", (long long)journal_size_limit);
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return store_fail(s, "set journal_size_limit", e);
  return 0;
}

int store_wal_checkpoint(store *s, int *wal_frames, int *checkpointed, perr *e) {
  *wal_frames = *checkpointed = 0;
  /* A connection of its own: a checkpoint cannot run on a connection with
   * a transaction open, and under steady load the daemon's almost always
   * has one (the group commit's).  PASSIVE never waits: it copies what no
   * reader still needs and says how far it got. */
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  /* A connection opens the WAL at its first read; before that a checkpoint
   * finds no WAL and does nothing. */
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, wal_frames, checkpointed);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY)
    perr_set(e, "store: checkpoint of %s: %s", s->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  sqlite3_close(db);
  if (*wal_frames < 0) *wal_frames = 0;
  if (*checkpointed < 0) *checkpointed = 0;
  return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : -1;
}
