/*
 * recipe_partials: collecting, reading and checking a recipe's partials.
 *
 * Design notes
 * - Names are collected by the template checker's callback (each template
 *   reports each of its partials once); a name already in the set is not
 *   added again, so partials that name each other terminate: the set only
 *   grows and every name is read once.
 * - Depth counts distinct names along a chain (recipe template -> p1 ->
 *   p2 ...); a new name beyond RECIPE_PARTIAL_DEPTH is an error.  Rendering
 *   has its own bound (template.h max_depth) for cycles among known names.
 * - A partial name becomes a file name, so it is restricted to letters,
 *   digits, '-', '_' and '.', not starting with '.': "../x" or "a/b" can
 *   never leave the folder.  A file is regular, at most
 *   RECIPE_PARTIAL_MAX bytes, without NUL (it is stored as a JSON string),
 *   and kept byte for byte (a trailing newline is part of the partial, as
 *   with other Mustache implementations reading files).
 * - Errors point at the recipe template that led to the partial.  The
 *   callback does not know which field it runs for, so on the error path
 *   the config is walked again to find the first template naming the
 *   root of the chain.
 */
#include "core/recipe_partials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/template.h"

#define NAME_MAX_LEN 128
#define WHERE_MAX 384
#define NO_PARENT SIZE_MAX

void partial_set_init(partial_set *ps, const char *dir) {
  memset(ps, 0, sizeof *ps);
  ps->dir = dir;
  ps->cur_depth = 1;
  ps->cur_parent = NO_PARENT;
}

void partial_set_release(partial_set *ps) {
  for (size_t i = 0; i < ps->n; i++) {
    free(ps->names[i]);
    free(ps->texts[i]);
  }
  free(ps->names);
  free(ps->texts);
  free(ps->parent);
  free(ps->depth);
  free(ps->too_deep);
  partial_set_init(ps, ps->dir);
}

int partial_set_note(void *ud, const char *name) {
  partial_set *ps = ud;
  for (size_t i = 0; i < ps->n; i++)
    if (!strcmp(ps->names[i], name)) return 0;
  if (ps->cur_depth > RECIPE_PARTIAL_DEPTH) {
    free(ps->too_deep);
    ps->too_deep = strdup(name);
    if (!ps->too_deep) ps->oom = 1;
    return -1;
  }
  if (ps->n == ps->cap) {
    /* Each array is replaced as soon as it has grown, so a failure part
     * way leaves every pointer valid (cap is raised only when all grew). */
    size_t nc = ps->cap ? ps->cap * 2 : 8;
    char **nn = realloc(ps->names, nc * sizeof *nn);
    if (nn) ps->names = nn;
    char **nt = realloc(ps->texts, nc * sizeof *nt);
    if (nt) ps->texts = nt;
    size_t *np = realloc(ps->parent, nc * sizeof *np);
    if (np) ps->parent = np;
    int *nd = realloc(ps->depth, nc * sizeof *nd);
    if (nd) ps->depth = nd;
    if (!nn || !nt || !np || !nd) {
      ps->oom = 1;
      return -1;
    }
    ps->cap = nc;
  }
  char *copy = strdup(name);
  if (!copy) {
    ps->oom = 1;
    return -1;
  }
  ps->names[ps->n] = copy;
  ps->texts[ps->n] = NULL;
  ps->parent[ps->n] = ps->cur_parent;
  ps->depth[ps->n] = ps->cur_depth;
  ps->n++;
  return 0;
}

/* ---- pointing at the template that named a partial ---- */

typedef struct finder {
  const char *name;
  int hit;
} finder;

static int finder_cb(void *ud, const char *name) {
  finder *f = ud;
  if (strcmp(f->name, name)) return 0;
  f->hit = 1;
  return -1; /* found: stop the check */
}

static const ynode *find_user(const ynode *n, const char *name, const char *path, char *out,
                              size_t size) {
  if (n->kind == YN_SCALAR) {
    finder f = {name, 0};
    tpl_check(n->text, n->len, finder_cb, &f, NULL);
    if (!f.hit) return NULL;
    snprintf(out, size, "%s", path);
    return n;
  }
  for (size_t i = 0; i < n->n; i++) {
    char sub[WHERE_MAX];
    if (n->kind == YN_MAP)
      snprintf(sub, sizeof sub, "%s.%s", path, n->keys[i]->text);
    else
      snprintf(sub, sizeof sub, "%s[%zu]", path, i);
    const ynode *hit = find_user(n->items[i], name, sub, out, size);
    if (hit) return hit;
  }
  return NULL;
}

/* "partial 'inner' (included by 'mid' <- 'sig')" */
static void partial_label(const partial_set *ps, size_t i, char *out, size_t size) {
  size_t o = (size_t)snprintf(out, size, "partial '%s'", ps->names[i]);
  const char *sep = " (included by ";
  for (size_t p = ps->parent[i]; p != NO_PARENT && o < size; p = ps->parent[p]) {
    o += (size_t)snprintf(out + o, size - o, "%s'%s'", sep, ps->names[p]);
    sep = " <- ";
  }
  if (ps->parent[i] != NO_PARENT && o < size) snprintf(out + o, size - o, ")");
}

typedef struct where_ctx {
  const char *file;
  const ynode *cfg;
  const char *where;
  perr *e;
} where_ctx;

static int partial_error(const partial_set *ps, size_t i, const where_ctx *w, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int partial_error(const partial_set *ps, size_t i, const where_ctx *w, const char *fmt,
                         ...) {
  size_t root = i;
  while (ps->parent[root] != NO_PARENT) root = ps->parent[root];
  char path[WHERE_MAX], label[512], msg[768];
  const ynode *user = find_user(w->cfg, ps->names[root], w->where, path, sizeof path);
  if (!user) {
    user = w->cfg;
    snprintf(path, sizeof path, "%s", w->where);
  }
  partial_label(ps, i, label, sizeof label);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return perr_set(w->e, "%s:%d:%d: %s: %s %s", w->file, user->line, user->col, path, label, msg);
}

/* ---- reading ---- */

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > NAME_MAX_LEN || s[0] == '.') return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* A regular file, capped, without NUL.  NULL with *err an errno value
 * (EFBIG: too large, EILSEQ: holds NUL, EINVAL: not a regular file). */
static char *read_partial(const char *path, size_t *len, int *err) {
  *err = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return NULL;
  }
  struct stat st;
  char *text = NULL;
  if (fstat(fd, &st)) {
    *err = errno;
  } else if (!S_ISREG(st.st_mode)) {
    *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  } else if (st.st_size > (off_t)RECIPE_PARTIAL_MAX) {
    *err = EFBIG;
  } else if (!(text = malloc((size_t)st.st_size + 1))) {
    *err = ENOMEM;
  } else {
    size_t n = 0, want = (size_t)st.st_size;
    while (n < want) {
      ssize_t r = read(fd, text + n, want - n);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) *err = errno;
      if (r <= 0) break;
      n += (size_t)r;
    }
    text[n] = '\0';
    *len = n;
    if (!*err && memchr(text, '\0', n)) *err = EILSEQ;
  }
  close(fd);
  if (*err) {
    free(text);
    return NULL;
  }
  return text;
}

int partial_set_resolve(partial_set *ps, const char *file, const ynode *cfg, const char *where,
                        perr *e) {
  where_ctx w = {file, cfg, where, e};
  while (ps->resolved < ps->n) {
    size_t i = ps->resolved;
    const char *name = ps->names[i];
    if (!name_ok(name))
      return partial_error(ps, i, &w,
                           "cannot name a file in the partials folder (use letters, digits, "
                           "'-', '_' and '.', not starting with '.')");
    char path[4096];
    int err = 0;
    size_t len = 0;
    char *text = NULL;
    const ynode *inl = ynode_get(ps->inline_map, name);
    if (inl && inl->kind == YN_SCALAR) {
      snprintf(path, sizeof path, "partials.%s", name);
      if (!(text = strdup(inl->text))) return perr_set(e, "%s: out of memory", file);
      len = strlen(text);
    } else if (!ps->dir) {
      return partial_error(ps, i, &w,
                           "is used, but no partials folder is set (partials are read from "
                           "NAME.mustache files in a partials/ folder beside the recipes)");
    } else {
      snprintf(path, sizeof path, "%s/%s.mustache", ps->dir, name);
      text = read_partial(path, &len, &err);
    }
    if (!text) {
      if (err == ENOENT) return partial_error(ps, i, &w, "not found: expected the file %s", path);
      if (err == EFBIG)
        return partial_error(ps, i, &w, "is too large: %s exceeds %u KiB", path,
                             RECIPE_PARTIAL_MAX >> 10);
      if (err == EILSEQ)
        return partial_error(ps, i, &w, "cannot be used: %s contains a NUL byte", path);
      if (err == EINVAL)
        return partial_error(ps, i, &w, "cannot be used: %s is not a regular file", path);
      return partial_error(ps, i, &w, "cannot be read: %s: %s", path, strerror(err));
    }
    ps->texts[i] = text;
    ps->resolved++;
    /* Names found in this partial's text are one level deeper. */
    ps->cur_depth = ps->depth[i] + 1;
    ps->cur_parent = i;
    perr te;
    te.msg[0] = '\0';
    int rc = tpl_check(text, len, partial_set_note, ps, &te);
    ps->cur_depth = 1;
    ps->cur_parent = NO_PARENT;
    if (rc) {
      if (ps->oom) return perr_set(e, "%s: out of memory", file);
      if (ps->too_deep)
        return partial_error(ps, i, &w, "includes '%s', nesting partials deeper than %d levels",
                             ps->too_deep, RECIPE_PARTIAL_DEPTH);
      return partial_error(ps, i, &w, "(%s) is not a valid template: %s", path, te.msg);
    }
  }
  return 0;
}

static int cmp_index_by_name(const void *a, const void *b, void *ud) {
  char **names = ud;
  return strcmp(names[*(const size_t *)a], names[*(const size_t *)b]);
}

cJSON *partial_set_json(const partial_set *ps) {
  cJSON *obj = cJSON_CreateObject();
  size_t *order = malloc((ps->n ? ps->n : 1) * sizeof *order);
  if (!obj || !order) {
    cJSON_Delete(obj);
    free(order);
    return NULL;
  }
  for (size_t i = 0; i < ps->n; i++) order[i] = i;
  qsort_r(order, ps->n, sizeof *order, cmp_index_by_name, ps->names);
  for (size_t i = 0; i < ps->n; i++) {
    size_t j = order[i];
    if (!ps->texts[j] || !cJSON_AddStringToObject(obj, ps->names[j], ps->texts[j])) {
      cJSON_Delete(obj);
      obj = NULL;
      break;
    }
  }
  free(order);
  return obj;
}
