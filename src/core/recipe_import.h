/*
 * recipe_import: files to stored recipe versions.  A directory import reads
 * every *.yaml / *.yml in it (not below it), validates all of them, and
 * stores them in one transaction: all or nothing.  Partials come from the
 * partials/ folder beside the files.
 */
#ifndef PROMPTD_RECIPE_IMPORT_H
#define PROMPTD_RECIPE_IMPORT_H

#include <stddef.h>

#include "core/err.h"
#include "core/store.h"

typedef struct import_item {
  char *file;
  char *name;
  int version;
  int changed;   /* 0: identical to the stored current version; nothing stored */
  int removed;   /* recipe_import_dir_sync: its file left the directory */
} import_item;

/* Inside an open transaction (the daemon's group commit) the import is a
 * savepoint: a refused import leaves the rest of the transaction alone. */
int recipe_import_path(store *s, const char *path, import_item **items, size_t *n, perr *e);
/* The directory is the truth for the recipes imported from it: imports
 * dir as recipe_import_path does and, in the same transaction, removes
 * every live recipe last imported from a file in dir (the same directory
 * by its real path) that no file there defines any more.  A removed recipe
 * starts no new run; runs already made finish with their version.  Items:
 * one per file, then one per removal (removed = 1, version = its last).
 * A file instead of a directory is imported alone, removing nothing. */
int recipe_import_dir_sync(store *s, const char *dir, import_item **items, size_t *n, perr *e);
void import_items_free(import_item *items, size_t n);

#endif
