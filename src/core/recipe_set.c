/*
 * recipe_set: compiled copies of the enabled recipes' current versions.
 * A set is immutable once loaded; the engine swaps in a new one when the
 * store's recipe generation moves, so intake never sees a half-updated list.
 */
#include "core/recipe_set.h"

#include <stdlib.h>

struct recipe_set {
  recipe **items;
  size_t n;
  int64_t generation;
};

void recipe_set_free(recipe_set *rs) {
  if (!rs) return;
  for (size_t i = 0; i < rs->n; i++) recipe_free(rs->items[i]);
  free(rs->items);
  free(rs);
}

int recipe_set_load(store *s, recipe_set **out, perr *e) {
  *out = NULL;
  recipe_set *rs = calloc(1, sizeof *rs);
  if (!rs) return perr_set(e, "out of memory");
  store_recipe *rows = NULL;
  size_t n = 0;
  /* Generation first: a change racing with the list shows up as a newer
   * generation on the next check, never as a missed one. */
  if (store_recipes_generation(s, &rs->generation, e) ||
      store_recipe_list(s, 1, &rows, &n, e)) {
    free(rs);
    return -1;
  }
  rs->items = n ? calloc(n, sizeof *rs->items) : NULL;
  if (n && !rs->items) {
    store_recipes_free(rows, n);
    free(rs);
    return perr_set(e, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    cJSON *def = cJSON_Parse(rows[i].definition);
    if (!def) {
      perr_set(e, "recipe %s version %d: stored definition is not JSON", rows[i].name,
               rows[i].version);
      goto fail;
    }
    if (recipe_compile(def, rows[i].version, rows[i].enabled, &rs->items[rs->n], e)) {
      perr_prefix(e, "recipe %s version %d", rows[i].name, rows[i].version);
      goto fail;
    }
    rs->n++;
  }
  store_recipes_free(rows, n);
  *out = rs;
  return 0;
fail:
  store_recipes_free(rows, n);
  recipe_set_free(rs);
  return -1;
}

int64_t recipe_set_generation(const recipe_set *rs) { return rs->generation; }
size_t recipe_set_count(const recipe_set *rs) { return rs->n; }
const recipe *recipe_set_at(const recipe_set *rs, size_t i) { return i < rs->n ? rs->items[i] : NULL; }
