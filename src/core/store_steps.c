/*
 * store_steps: one row per step of a run that began (or was skipped).
 *
 * Both writes are single upserts on (run_id, position), so each is atomic
 * without a transaction of its own and costs one statement:
 *   store_step_begin   a new attempt: attempts + 1, status running, the
 *                      attempt's input and exactly-once state, no output or
 *                      error yet, finished_at 0
 *   store_step_finish  the attempt's end: status, output, error, timings
 * The engine commits a step's finish before it begins the next step, which
 * is what lets a restart resume at the first unfinished step.
 */
#include <stdlib.h>
#include <string.h>

#include "core/store_internal.h"

void store_step_release(store_step *st) {
  if (!st) return;
  free(st->step_id);
  free(st->status);
  free(st->input);
  free(st->output);
  free(st->state);
  free(st->error);
  memset(st, 0, sizeof *st);
}

void store_steps_free(store_step *v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) store_step_release(&v[i]);
  free(v);
}

static int read_step(sqlite3_stmt *q, store_step *st) {
  memset(st, 0, sizeof *st);
  st->run_id = sqlite3_column_int64(q, 0);
  st->position = sqlite3_column_int(q, 1);
  st->attempts = sqlite3_column_int(q, 4);
  st->started_at = sqlite3_column_int64(q, 9);
  st->finished_at = sqlite3_column_int64(q, 10);
  st->duration_ms = sqlite3_column_int64(q, 11);
  st->prompt_tokens = sqlite3_column_int64(q, 12);
  st->completion_tokens = sqlite3_column_int64(q, 13);
  st->cached_tokens = sqlite3_column_int64(q, 14);
  st->cost_usd = sqlite3_column_double(q, 15);
  if (store_col_text(q, 2, &st->step_id) || store_col_text(q, 3, &st->status) ||
      store_col_text(q, 5, &st->input) || store_col_text(q, 6, &st->output) ||
      store_col_text(q, 7, &st->state) || store_col_text(q, 8, &st->error)) {
    store_step_release(st);
    return -1;
  }
  return 0;
}

int store_steps_of_run(store *s, int64_t run_id, store_step **out, size_t *n, perr *e) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *q = store_stmt(s, ST_STEPS_OF_RUN,
                               "SELECT run_id, position, step_id, status, attempts, input, output,"
                               " state, error, started_at, finished_at, duration_ms,"
                               " prompt_tokens, completion_tokens, cached_tokens, cost_usd"
                               " FROM steps WHERE run_id = ?1 ORDER BY position",
                               e);
  if (!q) return -1;
  if (sqlite3_bind_int64(q, 1, run_id)) {
    store_fail(s, "steps of run", e);
    store_stmt_done(q);
    return -1;
  }
  store_step *v = NULL;
  size_t len = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (store_grow((void **)&v, &cap, len + 1, sizeof *v) || read_step(q, &v[len])) {
      perr_set(e, "store: steps of run: out of memory");
      goto fail;
    }
    len++;
  }
  if (rc != SQLITE_DONE) {
    store_fail(s, "steps of run", e);
    goto fail;
  }
  store_stmt_done(q);
  *out = v;
  *n = len;
  return 0;
fail:
  store_stmt_done(q);
  store_steps_free(v, len);
  return -1;
}

int store_step_begin(store *s, int64_t run_id, int position, const char *step_id,
                     const char *input, const char *state, int64_t now, perr *e) {
  if (!step_id) return perr_set(e, "store: begin step: no step id");
  sqlite3_stmt *q = store_stmt(
      s, ST_STEP_BEGIN,
      "INSERT INTO steps (run_id, position, step_id, status, attempts, input, output, state,"
      " error, started_at, finished_at, duration_ms)"
      " VALUES (?1, ?2, ?3, 'running', 1, ?4, NULL, ?5, NULL, ?6, 0, 0)"
      " ON CONFLICT (run_id, position) DO UPDATE SET step_id = excluded.step_id,"
      " status = 'running', attempts = attempts + 1, input = excluded.input, output = NULL,"
      " state = excluded.state, error = NULL, started_at = excluded.started_at,"
      " finished_at = 0",
      e);
  if (!q) return -1;
  if (sqlite3_bind_int64(q, 1, run_id) || sqlite3_bind_int(q, 2, position) ||
      sqlite3_bind_text(q, 3, step_id, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(q, 4, input, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(q, 5, state, -1, SQLITE_STATIC) || sqlite3_bind_int64(q, 6, now)) {
    store_fail(s, "begin step", e);
    store_stmt_done(q);
    return -1;
  }
  return store_step_done(s, q, "begin step", e);
}

static int valid_step_status(const char *status) {
  static const char *const ok[] = {"running", "succeeded", "skipped", "failed"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp(status, ok[i]) == 0) return 1;
  return 0;
}

int store_step_finish(store *s, int64_t run_id, int position, const char *step_id,
                      const char *status, const char *output, const char *error, int64_t now,
                      int64_t duration_ms, perr *e) {
  if (!step_id) return perr_set(e, "store: finish step: no step id");
  if (!status || !valid_step_status(status))
    return perr_set(e, "store: finish step %s: status \"%s\" is not running, succeeded, skipped "
                       "or failed", step_id, status ? status : "(null)");
  /* The insert branch is a step that never began (skipped by its `if`):
   * zero attempts, started and finished now. */
  sqlite3_stmt *q = store_stmt(
      s, ST_STEP_FINISH,
      "INSERT INTO steps (run_id, position, step_id, status, attempts, output, error,"
      " started_at, finished_at, duration_ms)"
      " VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?7, ?8)"
      " ON CONFLICT (run_id, position) DO UPDATE SET status = excluded.status,"
      " output = excluded.output, error = excluded.error,"
      " finished_at = excluded.finished_at, duration_ms = excluded.duration_ms",
      e);
  if (!q) return -1;
  if (sqlite3_bind_int64(q, 1, run_id) || sqlite3_bind_int(q, 2, position) ||
      sqlite3_bind_text(q, 3, step_id, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(q, 4, status, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(q, 5, output, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(q, 6, error, -1, SQLITE_STATIC) || sqlite3_bind_int64(q, 7, now) ||
      sqlite3_bind_int64(q, 8, duration_ms)) {
    store_fail(s, "finish step", e);
    store_stmt_done(q);
    return -1;
  }
  return store_step_done(s, q, "finish step", e);
}
