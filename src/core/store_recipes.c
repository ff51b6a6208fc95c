/*
 * store_recipes: recipe heads and their versions.
 *
 * A recipe is a head row (recipes) pointing at its current version in
 * recipe_versions.  Versions are never deleted: a run names the version it
 * started with and finishes with that definition even after an import or a
 * removal.  Removal sets the head's removed flag instead of deleting it, so
 * an import under the same name later continues the numbering (a run's
 * (recipe, version) must never name two different definitions).
 *
 * Every write to recipes bumps meta.recipes_generation through SQL
 * triggers (schema/001_init.sql); this file never touches the counter.
 */
#include <stdlib.h>
#include <string.h>

#include "core/store_internal.h"

void store_recipe_release(store_recipe *r) {
  if (!r) return;
  free(r->name);
  free(r->definition);
  free(r->digest);
  free(r->source);
  free(r->file);
  memset(r, 0, sizeof *r);
}

void store_recipes_free(store_recipe *v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) store_recipe_release(&v[i]);
  free(v);
}

/* The columns every recipe query returns, in read_recipe's order. */
#define RECIPE_COLS                                                                      \
  "v.name, v.version, r.current_version, r.enabled AND NOT r.removed, v.definition, " \
  "v.digest, v.source, r.file, v.created_at"

static int read_recipe(sqlite3_stmt *st, store_recipe *r) {
  memset(r, 0, sizeof *r);
  r->version = sqlite3_column_int(st, 1);
  r->current = sqlite3_column_int(st, 2);
  r->enabled = sqlite3_column_int(st, 3);
  r->created_at = sqlite3_column_int64(st, 8);
  if (store_col_text(st, 0, &r->name) || store_col_text(st, 4, &r->definition) ||
      store_col_text(st, 5, &r->digest) || store_col_text(st, 6, &r->source) ||
      store_col_text(st, 7, &r->file)) {
    store_recipe_release(r);
    return -1;
  }
  return 0;
}

/* The head of name: 1 when there is none. */
struct head {
  int current, removed, max_version;
  char digest[72]; /* hex SHA-256 is 64 */
};

static int get_head(store *s, const char *name, struct head *h, perr *e) {
  sqlite3_stmt *st = store_stmt(
      s, ST_RECIPE_HEAD,
      "SELECT r.current_version, r.removed, v.digest,"
      " (SELECT max(version) FROM recipe_versions WHERE name = ?1)"
      " FROM recipes r LEFT JOIN recipe_versions v"
      " ON v.name = r.name AND v.version = r.current_version WHERE r.name = ?1",
      e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK) {
    store_fail(s, "look up recipe", e);
    store_stmt_done(st);
    return -1;
  }
  int rc = sqlite3_step(st), out = 0;
  if (rc == SQLITE_ROW) {
    h->current = sqlite3_column_int(st, 0);
    h->removed = sqlite3_column_int(st, 1);
    const unsigned char *d = sqlite3_column_text(st, 2);
    size_t n = d ? (size_t)sqlite3_column_bytes(st, 2) : 0;
    if (n >= sizeof h->digest) n = sizeof h->digest - 1; /* longer never equals a SHA-256 */
    if (d) memcpy(h->digest, d, n);
    h->digest[n] = '\0';
    h->max_version = sqlite3_column_int(st, 3);
  } else if (rc == SQLITE_DONE) {
    out = 1;
  } else {
    out = store_fail(s, "look up recipe", e);
  }
  store_stmt_done(st);
  return out;
}

static int insert_version(store *s, const char *name, int version, const char *definition,
                          const char *digest, const char *source, int64_t now, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_RECIPE_VERSION_INSERT,
                                "INSERT INTO recipe_versions"
                                " (name, version, definition, digest, source, created_at)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) ||
      sqlite3_bind_int(st, 2, version) ||
      sqlite3_bind_text(st, 3, definition, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 4, digest, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 5, source, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 6, now)) {
    store_fail(s, "store recipe version", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "store recipe version", e);
}

static int insert_head(store *s, const char *name, const char *source, const char *file,
                       int64_t now, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_RECIPE_HEAD_INSERT,
                                "INSERT INTO recipes"
                                " (name, current_version, enabled, removed, source, file, updated_at)"
                                " VALUES (?1, 1, 1, 0, ?2, ?3, ?4)",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 4, now)) {
    store_fail(s, "store recipe", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "store recipe", e);
}

/* Points the head at version; a removed recipe comes back enabled, as a new
 * one would (SET expressions all see the row as it was). */
static int update_head(store *s, const char *name, int version, const char *source,
                       const char *file, int64_t now, perr *e) {
  sqlite3_stmt *st = store_stmt(s, ST_RECIPE_HEAD_UPDATE,
                                "UPDATE recipes SET current_version = ?2, source = ?3, file = ?4,"
                                " enabled = CASE WHEN removed THEN 1 ELSE enabled END,"
                                " removed = 0, updated_at = ?5 WHERE name = ?1",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) || sqlite3_bind_int(st, 2, version) ||
      sqlite3_bind_text(st, 3, source, -1, SQLITE_STATIC) ||
      sqlite3_bind_text(st, 4, file, -1, SQLITE_STATIC) || sqlite3_bind_int64(st, 5, now)) {
    store_fail(s, "update recipe", e);
    store_stmt_done(st);
    return -1;
  }
  return store_step_done(s, st, "update recipe", e);
}

static int put(store *s, const char *name, const char *definition, const char *digest,
               const char *source, const char *file, int64_t now, int *version, int *changed,
               perr *e) {
  struct head h = {0};
  int rc = get_head(s, name, &h, e);
  if (rc < 0) return -1;
  if (rc == 1) {
    /* Head first: recipe_versions.name references it. */
    if (insert_head(s, name, source, file, now, e) ||
        insert_version(s, name, 1, definition, digest, source, now, e))
      return -1;
    *version = 1;
    *changed = 1;
    return 0;
  }
  if (strcmp(h.digest, digest) == 0) {
    *version = h.current;
    *changed = h.removed;
    /* Unchanged: no write at all, so the generation stays and a daemon does
     * not reload.  A removed recipe imported unchanged comes back with the
     * version it had. */
    if (!h.removed) return 0;
    return update_head(s, name, h.current, source, file, now, e);
  }
  if (h.max_version >= 2147483647) return perr_set(e, "store: recipe %s has too many versions", name);
  int v = h.max_version + 1;
  if (insert_version(s, name, v, definition, digest, source, now, e) ||
      update_head(s, name, v, source, file, now, e))
    return -1;
  *version = v;
  *changed = 1;
  return 0;
}

int store_recipe_put(store *s, const char *name, const char *definition, const char *digest,
                     const char *source, const char *file, int64_t now, int *version,
                     int *changed, perr *e) {
  int v = 0, c = 0;
  if (!name || !*name || !definition || !digest || !source)
    return perr_set(e, "store: recipe put: name, definition, digest and source are required");
  int own;
  if (store_atomic_begin(s, &own, e)) return -1;
  int rc = put(s, name, definition, digest, source, file, now, &v, &c, e);
  rc = store_atomic_end(s, own, rc, e);
  if (rc < 0) return perr_prefix(e, "recipe %s", name);
  if (version) *version = v;
  if (changed) *changed = c;
  return 0;
}

int store_recipe_get(store *s, const char *name, int version, store_recipe *out, perr *e) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  if (version == 0)
    st = store_stmt(s, ST_RECIPE_GET_CURRENT,
                    "SELECT " RECIPE_COLS " FROM recipes r JOIN recipe_versions v"
                    " ON v.name = r.name AND v.version = r.current_version"
                    " WHERE r.name = ?1 AND r.removed = 0",
                    e);
  else
    st = store_stmt(s, ST_RECIPE_GET_VERSION,
                    "SELECT " RECIPE_COLS " FROM recipe_versions v JOIN recipes r"
                    " ON r.name = v.name WHERE v.name = ?1 AND v.version = ?2",
                    e);
  if (!st) return -1;
  if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) ||
      (version != 0 && sqlite3_bind_int(st, 2, version))) {
    store_fail(s, "get recipe", e);
    store_stmt_done(st);
    return -1;
  }
  int rc = sqlite3_step(st), out_rc = 0;
  if (rc == SQLITE_ROW) {
    if (read_recipe(st, out)) out_rc = perr_set(e, "store: get recipe %s: out of memory", name);
  } else if (rc == SQLITE_DONE) {
    out_rc = 1;
  } else {
    out_rc = store_fail(s, "get recipe", e);
  }
  store_stmt_done(st);
  return out_rc;
}

int store_recipe_list(store *s, int enabled_only, store_recipe **out, size_t *n, perr *e) {
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = store_stmt(s, ST_RECIPE_LIST,
                                "SELECT " RECIPE_COLS " FROM recipes r JOIN recipe_versions v"
                                " ON v.name = r.name AND v.version = r.current_version"
                                " WHERE r.removed = 0 AND (?1 = 0 OR r.enabled = 1)"
                                " ORDER BY r.name",
                                e);
  if (!st) return -1;
  if (sqlite3_bind_int(st, 1, enabled_only ? 1 : 0)) {
    store_fail(s, "list recipes", e);
    store_stmt_done(st);
    return -1;
  }
  store_recipe *v = NULL;
  size_t len = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (store_grow((void **)&v, &cap, len + 1, sizeof *v) || read_recipe(st, &v[len])) {
      perr_set(e, "store: list recipes: out of memory");
      goto fail;
    }
    len++;
  }
  if (rc != SQLITE_DONE) {
    store_fail(s, "list recipes", e);
    goto fail;
  }
  store_stmt_done(st);
  *out = v;
  *n = len;
  return 0;
fail:
  store_stmt_done(st);
  store_recipes_free(v, len);
  return -1;
}

/* An UPDATE of one head by name: 1 when no live recipe has that name. */
static int update_named(store *s, sqlite3_stmt *st, const char *name, const char *what, perr *e) {
  if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC)) {
    store_fail(s, what, e);
    store_stmt_done(st);
    return -1;
  }
  if (store_step_done(s, st, what, e)) return -1;
  return sqlite3_changes(s->db) == 0 ? 1 : 0;
}

int store_recipe_set_enabled(store *s, const char *name, int enabled, perr *e) {
  sqlite3_stmt *st = store_stmt(
      s, ST_RECIPE_SET_ENABLED,
      "UPDATE recipes SET enabled = ?2 WHERE name = ?1 AND removed = 0", e);
  if (!st) return -1;
  if (sqlite3_bind_int(st, 2, enabled ? 1 : 0)) {
    store_fail(s, "enable recipe", e);
    store_stmt_done(st);
    return -1;
  }
  return update_named(s, st, name, enabled ? "enable recipe" : "disable recipe", e);
}

int store_recipe_remove(store *s, const char *name, perr *e) {
  sqlite3_stmt *st = store_stmt(
      s, ST_RECIPE_REMOVE, "UPDATE recipes SET removed = 1 WHERE name = ?1 AND removed = 0", e);
  if (!st) return -1;
  return update_named(s, st, name, "remove recipe", e);
}
