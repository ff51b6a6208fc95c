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
} import_item;

int recipe_import_path(store *s, const char *path, import_item **items, size_t *n, perr *e);
void import_items_free(import_item *items, size_t n);

#endif
