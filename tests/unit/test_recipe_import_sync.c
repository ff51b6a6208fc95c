/*
 * recipe_import_dir_sync: the directory is the truth for the recipes
 * imported from it.  A file taken away removes its recipe (versions stay);
 * a recipe that moved to another file of the directory stays; recipes from
 * other places are left alone; a broken file refuses everything; inside an
 * open transaction the import is a savepoint, so a refusal leaves the
 * caller's other writes in place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/recipe_import.h"
#include "testutil.h"

static char *g_dir;
static char g_rdir[4200], g_other[4200];
static store *g_store;

#define RECIPE(name, msg)                                                              \
  "name: " name "\ntrigger: { event: { source: " name " } }\n"                       \
  "steps:\n  - id: a\n    log: { message: \"" msg "\" }\n"

static void put(const char *dir, const char *file, const char *text) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  assert_int_equal(tu_write_file(path, text), 0);
}

static void drop(const char *dir, const char *file) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  assert_int_equal(unlink(path), 0);
}

/* Imports g_rdir; the number of items with removed set, or -1 refused. */
static int sync_dir(perr *e) {
  import_item *items = NULL;
  size_t n = 0;
  if (recipe_import_dir_sync(g_store, g_rdir, &items, &n, e)) return -1;
  int removed = 0;
  for (size_t i = 0; i < n; i++) removed += items[i].removed;
  import_items_free(items, n);
  return removed;
}

/* 1 live, 0 removed, -1 unknown; *version: the head's current version. */
static int live(const char *name, int *version) {
  store_recipe r;
  perr e;
  int rc = store_recipe_get(g_store, name, 0, &r, &e);
  if (rc == 0) {
    *version = r.version;
    store_recipe_release(&r);
    return 1;
  }
  assert_int_equal(rc, 1);
  /* Removed or never there: version 1 is kept for the runs that used it. */
  rc = store_recipe_get(g_store, name, 1, &r, &e);
  if (rc == 0) store_recipe_release(&r);
  return rc == 0 ? 0 : -1;
}

static int setup(void **state) {
  (void)state;
  log_set_level(LOG_WARN);
  g_dir = tu_tempdir();
  snprintf(g_rdir, sizeof g_rdir, "%s/recipes", g_dir);
  snprintf(g_other, sizeof g_other, "%s/other", g_dir);
  char db[4300];
  snprintf(db, sizeof db, "%s/t.db", g_dir);
  perr e;
  if (mkdir(g_rdir, 0700) || mkdir(g_other, 0700)) return -1;
  return store_open(&g_store, db, 0, &e);
}

static int teardown(void **state) {
  (void)state;
  store_close(g_store);
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

static void test_removal_and_moves(void **state) {
  (void)state;
  perr e;
  int v = 0;
  put(g_rdir, "a.yaml", RECIPE("a", "one"));
  put(g_rdir, "b.yaml", RECIPE("b", "one"));
  put(g_other, "c.yaml", RECIPE("c", "one"));
  assert_int_equal(sync_dir(&e), 0);
  /* c comes from elsewhere: a directory sync never removes it. */
  import_item *items = NULL;
  size_t n = 0;
  char cpath[4400];
  snprintf(cpath, sizeof cpath, "%s/c.yaml", g_other);
  assert_int_equal(recipe_import_path(g_store, cpath, &items, &n, &e), 0);
  import_items_free(items, n);

  /* b's file goes: b is removed, its version kept; a and c stay. */
  drop(g_rdir, "b.yaml");
  assert_int_equal(sync_dir(&e), 1);
  assert_int_equal(live("b", &v), 0);
  assert_int_equal(live("a", &v), 1);
  assert_int_equal(live("c", &v), 1);
  /* Again: nothing more to remove. */
  assert_int_equal(sync_dir(&e), 0);

  /* a moves to another file of the directory, unchanged: it stays. */
  drop(g_rdir, "a.yaml");
  put(g_rdir, "renamed.yml", RECIPE("a", "one"));
  assert_int_equal(sync_dir(&e), 0);
  assert_int_equal(live("a", &v), 1);
  assert_int_equal(v, 1);

  /* b's file back: b live again with its old version (same definition). */
  put(g_rdir, "b.yaml", RECIPE("b", "one"));
  assert_int_equal(sync_dir(&e), 0);
  assert_int_equal(live("b", &v), 1);
  assert_int_equal(v, 1);
}

static void test_broken_file_refuses_all(void **state) {
  (void)state;
  perr e;
  int v = 0;
  put(g_rdir, "a.yaml", RECIPE("a", "one"));
  put(g_rdir, "b.yaml", RECIPE("b", "one"));
  assert_int_equal(sync_dir(&e), 0);
  /* a changed, b's file gone, and a broken file: nothing of it is stored. */
  put(g_rdir, "a.yaml", RECIPE("a", "two"));
  drop(g_rdir, "b.yaml");
  put(g_rdir, "z.yaml", "name: z\ntrigger: [oops\n");
  assert_int_equal(sync_dir(&e), -1);
  assert_non_null(strstr(e.msg, "z.yaml:"));
  assert_int_equal(live("a", &v), 1);
  assert_int_equal(v, 1);
  assert_int_equal(live("b", &v), 1);
  /* Fixed: a gets version 2 and b goes, in one import. */
  drop(g_rdir, "z.yaml");
  assert_int_equal(sync_dir(&e), 1);
  assert_int_equal(live("a", &v), 1);
  assert_int_equal(v, 2);
  assert_int_equal(live("b", &v), 0);
}

/* The daemon imports inside its group transaction: a refused import rolls
 * back its savepoint only. */
static void test_savepoint_inside_a_transaction(void **state) {
  (void)state;
  perr e;
  int v = 0;
  put(g_rdir, "a.yaml", RECIPE("a", "one"));
  assert_int_equal(sync_dir(&e), 0);
  assert_int_equal(store_begin(g_store, &e), 0);
  /* The caller's own write in the open transaction. */
  assert_int_equal(store_cursor_set(g_store, "src", "cursor-1", 1, &e), 0);
  put(g_rdir, "b.yaml", RECIPE("b", "one"));
  put(g_rdir, "z.yaml", "name: z\nsteps: 3\n");
  assert_int_equal(sync_dir(&e), -1);
  assert_true(store_in_txn(g_store));
  drop(g_rdir, "z.yaml");
  put(g_rdir, "a.yaml", RECIPE("a", "two"));
  assert_int_equal(sync_dir(&e), 0);
  assert_true(store_in_txn(g_store));
  assert_int_equal(store_commit(g_store, &e), 0);
  char *cur = NULL;
  assert_int_equal(store_cursor_get(g_store, "src", &cur, &e), 0);
  assert_string_equal(cur, "cursor-1");
  free(cur);
  assert_int_equal(live("a", &v), 1);
  assert_int_equal(v, 2);
  assert_int_equal(live("b", &v), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_removal_and_moves, setup, teardown),
      cmocka_unit_test_setup_teardown(test_broken_file_refuses_all, setup, teardown),
      cmocka_unit_test_setup_teardown(test_savepoint_inside_a_transaction, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
