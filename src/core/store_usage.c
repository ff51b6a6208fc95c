/*
 * store_usage: GPT usage (per step, and per day/provider/model/recipe for
 * reports and budgets) and the opt-in response cache.
 *
 * store_usage_add writes the step row and the day's totals in one call, so
 * both land in the same transaction as the step's outcome: a report never
 * disagrees with the steps it sums.
 */
#include <stdlib.h>
#include <string.h>

#include "core/store_internal.h"

void store_usage_rows_free(store_usage_row *v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) {
    free(v[i].recipe);
    free(v[i].model);
  }
  free(v);
}

int store_usage_add(store *s, int64_t run_id, int position, const char *day,
                    const char *provider, const char *model, const char *recipe, int64_t calls,
                    int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens,
                    double cost_usd, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_USAGE_STEP,
                                "UPDATE steps SET prompt_tokens = prompt_tokens + ?3,"
                                " completion_tokens = completion_tokens + ?4,"
                                " cached_tokens = cached_tokens + ?5, cost_usd = cost_usd + ?6"
                                " WHERE run_id = ?1 AND position = ?2",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_int64(st, 1, run_id) || sqlite3_bind_int(st, 2, position) ||
      sqlite3_bind_int64(st, 3, prompt_tokens) || sqlite3_bind_int64(st, 4, completion_tokens) ||
      sqlite3_bind_int64(st, 5, cached_tokens) || sqlite3_bind_double(st, 6, cost_usd)) {
    store_fail(s, "record step usage", e);
    store_stmt_done(st);
    return -1;
  }
  if (store_step_done(s, st, "record step usage", e)) return -1;
  st = store_stmt(s, ST_USAGE_DAY_ADD,
                  "INSERT INTO usage (day, provider, model, recipe, requests, prompt_tokens,"
                  " completion_tokens, cached_tokens, cost_usd)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                  " ON CONFLICT (day, provider, model, recipe) DO UPDATE SET"
                  " requests = requests + excluded.requests,"
                  " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
                  " completion_tokens = completion_tokens + excluded.completion_tokens,"
                  " cached_tokens = cached_tokens + excluded.cached_tokens,"
                  " cost_usd = cost_usd + excluded.cost_usd",
                  e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 2, provider, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 3, model, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 4, recipe, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 5, calls) ||
      sqlite3_bind_int64(st, 6, prompt_tokens) || sqlite3_bind_int64(st, 7, completion_tokens) ||
      sqlite3_bind_int64(st, 8, cached_tokens) || sqlite3_bind_double(st, 9, cost_usd)) {
    store_fail(s, "record usage", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "record usage", e);
}

int store_usage_report(store *s, const char *since_day, const char *recipe,
                       store_usage_row **out, size_t *n, perr *e) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = store_stmt(
      s, ST_USAGE_REPORT,
      "SELECT recipe, model, sum(requests), sum(prompt_tokens), sum(completion_tokens),"
      " sum(cached_tokens), sum(cost_usd) FROM usage"
      " WHERE (?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR recipe = ?2)"
      " GROUP BY recipe, model ORDER BY recipe, model",
      e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, since_day, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 2, recipe, -1, SQLITE_STATIC)) {
    store_fail(s, "usage report", e);
    store_stmt_done(st);
    return -1;
  }
  store_usage_row *v = NULL;
  size_t cnt = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (cnt == cap) {
      cap = cap ? cap * 2 : 16;
      store_usage_row *p = realloc(v, cap * sizeof *p);
      if (!p) goto oom;
      v = p;
    }
    store_usage_row *r = &v[cnt];
    memset(r, 0, sizeof *r);
    cnt++;
    if (store_col_text(st, 0, &r->recipe) || store_col_text(st, 1, &r->model)) goto oom;
    r->calls = sqlite3_column_int64(st, 2);
    r->prompt_tokens = sqlite3_column_int64(st, 3);
    r->completion_tokens = sqlite3_column_int64(st, 4);
    r->cached_tokens = sqlite3_column_int64(st, 5);
    r->cost_usd = sqlite3_column_double(st, 6);
  }
  if (rc != SQLITE_DONE) {
    store_fail(s, "usage report", e);
    store_stmt_done(st);
    store_usage_rows_free(v, cnt);
    return -1;
  }
  store_stmt_done(st);
  *out = v;
  *n = cnt;
  return 0;
oom:
  store_stmt_done(st);
  store_usage_rows_free(v, cnt);
  return perr_set(e, "store: usage report: out of memory");
}

int store_usage_day(store *s, const char *day, const char *recipe, int64_t *tokens,
                    double *cost_usd, perr *e) {
  *tokens = 0;
  *cost_usd = 0;
  sqlite3_stmt *st =
      recipe ? store_stmt(s, ST_USAGE_DAY_RECIPE,
                          "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0),"
                          " coalesce(sum(cost_usd), 0) FROM usage WHERE day = ?1 AND recipe = ?2",
                          e)
             : store_stmt(s, ST_USAGE_DAY_ALL,
                          "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0),"
                          " coalesce(sum(cost_usd), 0) FROM usage WHERE day = ?1",
                          e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC) ||
      (recipe && sqlite3_bind_text(st, 2, recipe, -1, SQLITE_STATIC))) {
    store_fail(s, "usage of a day", e);
    store_stmt_done(st);
    return -1;
  }
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *tokens = sqlite3_column_int64(st, 0);
    *cost_usd = sqlite3_column_double(st, 1);
  }
  int ret = rc == SQLITE_ROW ? 0 : store_fail(s, "usage of a day", e);
  store_stmt_done(st);
  return ret;
}

int store_cache_get(store *s, const char *key, int64_t now, char **response, perr *e) {
  *response = NULL;
  sqlite3_stmt *st = store_stmt(
      s, ST_CACHE_GET, "SELECT response FROM response_cache WHERE key = ?1 AND expires_at > ?2",
      e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 2, now)) {
    store_fail(s, "read the response cache", e);
    store_stmt_done(st);
    return -1;
  }
  int rc = sqlite3_step(st), ret = 1;
  if (rc == SQLITE_ROW) {
    ret = store_col_text(st, 0, response) ? perr_set(e, "store: cache: out of memory") : 0;
  } else if (rc != SQLITE_DONE) {
    ret = store_fail(s, "read the response cache", e);
  }
  store_stmt_done(st);
  return ret;
}

int store_cache_put(store *s, const char *key, const char *response, int64_t now,
                    int64_t expires_at, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_CACHE_PUT,
                                "INSERT INTO response_cache (key, response, created_at, expires_at)"
                                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET"
                                " response = excluded.response, created_at = excluded.created_at,"
                                " expires_at = excluded.expires_at",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 2, response, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 3, now) ||
      sqlite3_bind_int64(st, 4, expires_at)) {
    store_fail(s, "write the response cache", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "write the response cache", e);
}
