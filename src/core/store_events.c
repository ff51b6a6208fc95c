/*
 * store_events: intake's side of the store, events and trigger cursors.
 *
 * store_event_insert is half of the hot path (store_run_insert is the other):
 * one cached INSERT ... ON CONFLICT DO NOTHING.  One row changed means a new
 * event (its rowid is the id); none means (source, dedupe_key) was already
 * stored, and only then a second statement looks the existing id up.  Not
 * RETURNING: SQLite buffers returned rows in an ephemeral table, whose
 * open and close cost a fifth of the insert.  The payload
 * is bound without a copy (SQLITE_STATIC): SQLite copies it into the page
 * once, during the step.
 *
 * A poll trigger's cursor is written in the same transaction as the events
 * the poll produced, so after a crash a poll is repeated whole or not at all.
 */
#include <stdlib.h>
#include <string.h>

#include "core/store_internal.h"

void store_event_release(store_event *ev) {
  if (!ev) return;
  free(ev->source);
  free(ev->dedupe_key);
  free(ev->payload);
  memset(ev, 0, sizeof *ev);
}

static int find_event(store *s, const char *source, const char *dedupe_key, int64_t *id,
                      perr *e) {
  sqlite3_stmt *st = store_stmt(
      s, ST_EVENT_FIND, "SELECT id FROM events WHERE source = ?1 AND dedupe_key = ?2", e);
  if (!st) return -1;
  int rc = SQLITE_MISUSE;
  if (sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_bind_text(st, 2, dedupe_key, -1, SQLITE_STATIC) == SQLITE_OK)
    rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
  else if (rc == SQLITE_DONE) perr_set(e, "store: event (%s, %s) vanished during insert", source, dedupe_key);
  else store_fail(s, "look up duplicate event", e);
  store_stmt_done(st);
  return rc == SQLITE_ROW ? 0 : -1;
}

int store_event_insert(store *s, const char *source, const char *dedupe_key, const char *payload,
                       size_t payload_len, int64_t now, int64_t *event_id, int *created, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_EVENT_INSERT,
                                "INSERT INTO events (source, dedupe_key, payload, received_at)"
                                " VALUES (?1, ?2, ?3, ?4)"
                                " ON CONFLICT (source, dedupe_key) DO NOTHING",
                                e);
  if (!st) return -1;
  int rc = SQLITE_MISUSE;
  if (sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_bind_text(st, 2, dedupe_key, -1, SQLITE_STATIC) == SQLITE_OK &&
      sqlite3_bind_text64(st, 3, payload, (sqlite3_uint64)payload_len, SQLITE_STATIC,
                          SQLITE_UTF8) == SQLITE_OK &&
      sqlite3_bind_int64(st, 4, now) == SQLITE_OK)
    rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) {
    store_fail(s, "insert event", e);
    store_stmt_done(st);
    return -1;
  }
  store_stmt_done(st);
  if (sqlite3_changes(s->db) == 1) {
    *event_id = sqlite3_last_insert_rowid(s->db);
    *created = 1;
    return 0;
  }
  *created = 0;
  return find_event(s, source, dedupe_key, event_id, e);
}

int store_event_get(store *s, int64_t id, store_event *out, perr *e) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = store_stmt(
      s, ST_EVENT_GET,
      "SELECT id, source, dedupe_key, payload, received_at FROM events WHERE id = ?1", e);
  if (!st) return -1;
  int rc = SQLITE_MISUSE, ret = 0;
  if (sqlite3_bind_int64(st, 1, id) == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->id = sqlite3_column_int64(st, 0);
    out->received_at = sqlite3_column_int64(st, 4);
    if (store_col_text(st, 1, &out->source) || store_col_text(st, 2, &out->dedupe_key) ||
        store_col_text(st, 3, &out->payload)) {
      store_event_release(out);
      ret = perr_set(e, "store: get event: out of memory");
    }
  } else if (rc == SQLITE_DONE) {
    ret = 1;
  } else {
    ret = store_fail(s, "get event", e);
  }
  store_stmt_done(st);
  return ret;
}

int store_cursor_get(store *s, const char *source, char **cursor, perr *e) {
  *cursor = NULL;
  sqlite3_stmt *st =
      store_stmt(s, ST_CURSOR_GET, "SELECT cursor FROM cursors WHERE source = ?1", e);
  if (!st) return -1;
  int rc = SQLITE_MISUSE, ret = 0;
  if (sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (store_col_text(st, 0, cursor)) ret = perr_set(e, "store: get cursor: out of memory");
  } else if (rc == SQLITE_DONE) {
    ret = 1;
  } else {
    ret = store_fail(s, "get cursor", e);
  }
  store_stmt_done(st);
  return ret;
}

int store_cursor_set(store *s, const char *source, const char *cursor, int64_t now, perr *e) {
  if (!source || !cursor) return perr_set(e, "store: set cursor: source and cursor are required");
  sqlite3_stmt *st = store_stmt(s, ST_CURSOR_SET,
                                "INSERT INTO cursors (source, cursor, updated_at)"
                                " VALUES (?1, ?2, ?3) ON CONFLICT (source) DO UPDATE"
                                " SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 2, cursor, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 3, now)) {
    store_fail(s, "set cursor", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "set cursor", e);
}

int store_trigger_health_set(store *s, const char *source, const char *error, int64_t now,
                             perr *e) {
  sqlite3_stmt *st = store_stmt(
      s, ST_HEALTH_SET,
      "INSERT INTO trigger_health (source, last_success, last_attempt, last_error, failing_since)"
      " VALUES (?1, CASE WHEN ?3 IS NULL THEN ?2 END, ?2, ?3, CASE WHEN ?3 IS NULL THEN NULL"
      " ELSE ?2 END)"
      " ON CONFLICT (source) DO UPDATE SET last_attempt = ?2, last_error = ?3,"
      " last_success = CASE WHEN ?3 IS NULL THEN ?2 ELSE last_success END,"
      " failing_since = CASE WHEN ?3 IS NULL THEN NULL ELSE coalesce(failing_since, ?2) END",
      e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 2, now) ||
      sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC)) {
    store_fail(s, "set trigger health", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "set trigger health", e);
}

int store_trigger_health_get(store *s, const char *source, store_trigger_health *out, perr *e) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = store_stmt(s, ST_HEALTH_GET,
                                "SELECT coalesce(last_success, 0), last_attempt,"
                                " coalesce(failing_since, 0), last_error"
                                " FROM trigger_health WHERE source = ?1",
                                e);
  if (!st) return -1;
  int rc = SQLITE_MISUSE, ret = 0;
  if (sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->last_success = sqlite3_column_int64(st, 0);
    out->last_attempt = sqlite3_column_int64(st, 1);
    out->failing_since = sqlite3_column_int64(st, 2);
    if (store_col_text(st, 3, &out->last_error))
      ret = perr_set(e, "store: trigger health: out of memory");
  } else if (rc == SQLITE_DONE) {
    ret = 1;
  } else {
    ret = store_fail(s, "get trigger health", e);
  }
  store_stmt_done(st);
  return ret;
}

void store_trigger_health_release(store_trigger_health *h) {
  if (!h) return;
  free(h->last_error);
  memset(h, 0, sizeof *h);
}
