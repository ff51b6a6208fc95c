#include "core/recipe_import.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/recipe.h"

void import_items_free(import_item *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(items[i].file);
    free(items[i].name);
  }
  free(items);
}

static int is_recipe_file(const char *name) {
  size_t n = strlen(name);
  if (name[0] == '.') return 0;
  return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
         (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of recipe files in dir (malloc'd paths). */
static int list_dir(const char *dir, char ***out, size_t *n, perr *e) {
  DIR *d = opendir(dir);
  if (!d) return perr_set(e, "cannot open directory %s: %s", dir, strerror(errno));
  char **v = NULL;
  size_t cnt = 0, cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d))) {
    if (!is_recipe_file(de->d_name)) continue;
    if (cnt == cap) {
      cap = cap ? cap * 2 : 16;
      char **p = realloc(v, cap * sizeof *p);
      if (!p) {
        rc = perr_set(e, "out of memory");
        break;
      }
      v = p;
    }
    size_t len = strlen(dir) + strlen(de->d_name) + 2;
    if (!(v[cnt] = malloc(len))) {
      rc = perr_set(e, "out of memory");
      break;
    }
    snprintf(v[cnt++], len, "%s/%s", dir, de->d_name);
  }
  closedir(d);
  if (rc) {
    for (size_t i = 0; i < cnt; i++) free(v[i]);
    free(v);
    return -1;
  }
  if (cnt) qsort(v, cnt, sizeof *v, cmp_str);
  *out = v;
  *n = cnt;
  return 0;
}

static char *partials_dir_for(const char *file) {
  char *copy = strdup(file);
  if (!copy) return NULL;
  const char *dir = dirname(copy);
  size_t len = strlen(dir) + sizeof "/partials";
  char *out = malloc(len);
  if (out) snprintf(out, len, "%s/partials", dir);
  free(copy);
  return out;
}

/* The event source a definition's trigger matches. */
static char *source_of(const cJSON *def, perr *e) {
  cJSON *copy = cJSON_Duplicate(def, 1);
  recipe *r;
  if (!copy || recipe_compile(copy, 0, 1, &r, e)) return NULL;
  char *src = strdup(r->source);
  recipe_free(r);
  return src;
}

/* 1 when file sits directly in the directory whose real path is dir_real. */
static int file_in_dir(const char *file, const char *dir_real) {
  char *copy = strdup(file);
  if (!copy) return 0;
  char *real = realpath(dirname(copy), NULL);
  int same = real && strcmp(real, dir_real) == 0;
  free(real);
  free(copy);
  return same;
}

/* Removes the recipes dir no longer defines (recipe_import_dir_sync),
 * appending one item per removal to *items (n of them so far). */
static int remove_missing(store *s, const char *dir, import_item **items, size_t *n, perr *e) {
  char *dir_real = realpath(dir, NULL);
  if (!dir_real) return perr_set(e, "cannot resolve %s: %s", dir, strerror(errno));
  store_recipe *live = NULL;
  size_t nlive = 0, nfiles = *n;
  int rc = store_recipe_list(s, 0, &live, &nlive, e);
  for (size_t i = 0; i < nlive && !rc; i++) {
    const store_recipe *r = &live[i];
    int defined = 0;
    for (size_t k = 0; k < nfiles && !defined; k++) defined = strcmp((*items)[k].name, r->name) == 0;
    /* A recipe whose name moved to another file of dir is still defined. */
    if (defined || !r->file || !file_in_dir(r->file, dir_real)) continue;
    import_item *grown = realloc(*items, (*n + 1) * sizeof *grown);
    if (!grown) {
      rc = perr_set(e, "out of memory");
      break;
    }
    *items = grown;
    import_item *it = &grown[*n];
    memset(it, 0, sizeof *it);
    it->file = strdup(r->file);
    it->name = strdup(r->name);
    it->version = r->current;
    it->removed = 1;
    (*n)++;
    if (!it->file || !it->name)
      rc = perr_set(e, "out of memory");
    else if (store_recipe_remove(s, r->name, e) < 0)
      rc = -1;
  }
  store_recipes_free(live, nlive);
  free(dir_real);
  return rc;
}

/* Its own transaction, or a savepoint inside the caller's. */
static int atomic_begin(store *s, int *own, perr *e) {
  *own = !store_in_txn(s);
  return *own ? store_begin(s, e) : store_savepoint(s, e);
}

static int atomic_end(store *s, int own, int failed, perr *e) {
  if (failed) {
    if (own)
      store_rollback(s);
    else
      store_savepoint_rollback(s);
    return -1;
  }
  if (own) return store_commit(s, e);
  if (store_savepoint_release(s, e)) {
    store_savepoint_rollback(s);
    return -1;
  }
  return 0;
}

static int import(store *s, const char *path, int sync, import_item **items_out, size_t *n_out,
                  perr *e) {
  *items_out = NULL;
  *n_out = 0;
  struct stat sb;
  if (stat(path, &sb)) return perr_set(e, "cannot read %s: %s", path, strerror(errno));
  char **files = NULL;
  size_t nfiles = 0;
  if (S_ISDIR(sb.st_mode)) {
    if (list_dir(path, &files, &nfiles, e)) return -1;
    if (!nfiles) {
      free(files);
      return perr_set(e, "%s holds no recipe files (*.yaml, *.yml)", path);
    }
  } else {
    files = malloc(sizeof *files);
    if (!files || !(files[0] = strdup(path))) {
      free(files);
      return perr_set(e, "out of memory");
    }
    nfiles = 1;
  }
  cJSON **defs = calloc(nfiles, sizeof *defs);
  import_item *items = calloc(nfiles, sizeof *items);
  size_t nitems = nfiles;
  int rc = -1;
  if (!defs || !items) {
    perr_set(e, "out of memory");
    goto out;
  }
  /* Validate everything before storing anything. */
  for (size_t i = 0; i < nfiles; i++) {
    char *pdir = partials_dir_for(files[i]);
    int bad = !pdir || recipe_load_file(files[i], pdir, &defs[i], e);
    free(pdir);
    if (bad) goto out;
    const char *name = cJSON_GetObjectItemCaseSensitive(defs[i], "name")->valuestring;
    for (size_t k = 0; k < i; k++) {
      if (strcmp(items[k].name, name) == 0) {
        perr_set(e, "%s: recipe name '%s' is also used by %s", files[i], name, items[k].file);
        goto out;
      }
    }
    items[i].file = strdup(files[i]);
    items[i].name = strdup(name);
    if (!items[i].file || !items[i].name) {
      perr_set(e, "out of memory");
      goto out;
    }
  }
  int own;
  if (atomic_begin(s, &own, e)) goto out;
  int64_t now = clock_now_ms();
  int bad = 0;
  for (size_t i = 0; i < nfiles && !bad; i++) {
    char *text = cJSON_PrintUnformatted(defs[i]);
    char *digest = recipe_digest(defs[i]);
    char *src = source_of(defs[i], e);
    if (!text || !digest)
      bad = perr_set(e, "out of memory");
    else
      bad = !src || store_recipe_put(s, items[i].name, text, digest, src, files[i], now,
                                     &items[i].version, &items[i].changed, e);
    /* `enabled: false` in the file wins over the store's default for a
     * new version; otherwise enable/disable stays the operator's. */
    if (!bad && items[i].changed && !recipe_def_enabled(defs[i]))
      bad = store_recipe_set_enabled(s, items[i].name, 0, e) != 0;
    free(text);
    free(digest);
    free(src);
  }
  if (!bad && sync && S_ISDIR(sb.st_mode)) bad = remove_missing(s, path, &items, &nitems, e) != 0;
  if (atomic_end(s, own, bad, e)) goto out;
  rc = 0;
out:
  for (size_t i = 0; i < nfiles; i++) {
    if (defs) cJSON_Delete(defs[i]);
    free(files[i]);
  }
  free(files);
  free(defs);
  if (rc) {
    import_items_free(items, items ? nitems : 0);
  } else {
    *items_out = items;
    *n_out = nitems;
  }
  return rc;
}

int recipe_import_path(store *s, const char *path, import_item **items, size_t *n, perr *e) {
  return import(s, path, 0, items, n, e);
}

int recipe_import_dir_sync(store *s, const char *dir, import_item **items, size_t *n, perr *e) {
  return import(s, dir, 1, items, n, e);
}
