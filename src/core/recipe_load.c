/*
 * recipe_load: a recipe YAML file -> its normalised JSON definition.
 *
 * Design notes
 * - Everything a recipe can say is checked here, at import, so a stored
 *   definition is always one the engine can run: declared field tables for
 *   the recipe, each step, the trigger's and each action's config (via
 *   fields.c), then each kind's own validate() for cross-field rules.
 * - A step is a mapping of the step fields (id, if, retry) plus exactly
 *   one key naming an action kind.  A trigger is a mapping with exactly
 *   one key naming a trigger kind.  Kinds come from connectors.c only.
 * - Step ids: a lowercase letter, then lowercase letters, digits or '_',
 *   at most 64 characters ([a-z][a-z0-9_]{0,63}).  They appear in paths
 *   (steps.ID.field) and templates ({{steps.ID.field}}), so they are kept
 *   to what reads unambiguously there: no '.', no '-', never a bare number
 *   (jpath.h would take a numeric segment as an array index).
 * - Data flow between steps is checked: an `if` may only read steps that
 *   ran before it (steps.ID where ID is an earlier step); `when` runs
 *   before any step and may not read steps at all.  Templates may name any
 *   step: a missing one renders empty, which is Mustache's rule.
 * - Partials: every name a template names ({{> sig}}) is read from
 *   PARTIALS_DIR/NAME.mustache, syntax-checked, and its own partials
 *   followed, each name once (so mutual recursion terminates), to a depth
 *   of RECIPE_PARTIAL_DEPTH.  The texts are embedded in the definition:
 *   a stored version never depends on files that may change later.
 *   A problem with a partial is reported at the template that names it
 *   (found again by a walk of that config, on the error path only).
 * - Output key order is fixed (recipe.h), configs in field-table order and
 *   partials sorted by name, so the same recipe always gives the same JSON
 *   and the same digest, whatever the key order in the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cond.h"
#include "core/connector.h"
#include "core/fields.h"
#include "core/recipe.h"
#include "core/yaml_doc.h"

#define RECIPE_NAME_MAX 64
#define STEP_ID_MAX 64
#define RECIPE_PARTIAL_DEPTH 16
#define PARTIAL_FILE_MAX (1u << 20)
#define PARTIAL_NAME_MAX 128
#define WHERE_MAX 384
#define NO_PARENT SIZE_MAX

static const field_spec retry_fields[] = {
    {.name = "max_attempts",
     .type = FT_INT,
     .help = "tries of one step in all, 1-100 (default: the engine's)",
     .min = 1,
     .max = 100},
    {.name = "base_ms",
     .type = FT_INT,
     .help = "backoff before the first retry in milliseconds, doubled each try, 1-3600000",
     .min = 1,
     .max = 3600000},
    {.name = "cap_ms",
     .type = FT_INT,
     .help = "longest backoff in milliseconds, 1-86400000",
     .min = 1,
     .max = 86400000},
    {.name = NULL},
};

static const field_spec recipe_fields[] = {
    {.name = "name",
     .type = FT_STRING,
     .flags = FIELD_REQUIRED,
     .help = "the recipe's name: lowercase letters, digits, '-' and '_', at most 64"},
    {.name = "description", .type = FT_STRING, .help = "what the recipe is for, one line"},
    {.name = "enabled",
     .type = FT_BOOL,
     .help = "whether a newly imported recipe starts enabled (default true)"},
    {.name = "trigger",
     .type = FT_OBJECT,
     .flags = FIELD_REQUIRED | FIELD_EXTERNAL,
     .help = "exactly one trigger kind and its settings, e.g. { event: { source: NAME } }"},
    {.name = "when", .type = FT_COND, .help = "filter on the event; runs only when it holds"},
    {.name = "concurrency",
     .type = FT_INT,
     .help = "most runs of this recipe at once, 1-1000 (default: the engine's limit)",
     .min = 1,
     .max = 1000},
    {.name = "retry",
     .type = FT_OBJECT,
     .sub = retry_fields,
     .help = "retry policy for every step: max_attempts, base_ms, cap_ms"},
    {.name = "steps",
     .type = FT_JSON,
     .flags = FIELD_REQUIRED | FIELD_EXTERNAL,
     .help = "the steps, in order: each an id, one action, optional if and retry"},
    {.name = NULL},
};

static const field_spec step_fields[] = {
    {.name = "id",
     .type = FT_STRING,
     .flags = FIELD_REQUIRED,
     .help = "the step's id: a lowercase letter, then lowercase letters, digits or '_'"},
    {.name = "if", .type = FT_COND, .help = "run the step only when this holds"},
    {.name = "retry",
     .type = FT_OBJECT,
     .sub = retry_fields,
     .help = "this step's retry policy, overriding the recipe's"},
    {.name = NULL},
};

static const field_spec no_fields[] = {{.name = NULL}};

typedef struct loader {
  const char *file;
  const char *partials_dir;
  fields_ctx cx;
  perr *e;
  /* Partials found so far; [0, resolved) have been read and checked. */
  char **names;
  char **texts;
  size_t *parent;
  int *depth;
  size_t n, cap, resolved;
  /* What the name callback is collecting for, and why it stopped. */
  int cur_depth;
  size_t cur_parent;
  char *too_deep; /* the name past the depth limit */
  int oom;
} loader;

static int at(loader *ld, const ynode *n, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int at(loader *ld, const ynode *n, const char *where, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return perr_set(ld->e, "%s:%d:%d: %s: %s", ld->file, n->line, n->col, where, msg);
}

static int oom(loader *ld) { return perr_set(ld->e, "%s: out of memory", ld->file); }

static void loader_release(loader *ld) {
  for (size_t i = 0; i < ld->n; i++) {
    free(ld->names[i]);
    free(ld->texts[i]);
  }
  free(ld->names);
  free(ld->texts);
  free(ld->parent);
  free(ld->depth);
  free(ld->too_deep);
}

/* ---- partials ---- */

static int on_partial(void *ud, const char *name) {
  loader *ld = ud;
  for (size_t i = 0; i < ld->n; i++)
    if (!strcmp(ld->names[i], name)) return 0;
  if (ld->cur_depth > RECIPE_PARTIAL_DEPTH) {
    free(ld->too_deep);
    ld->too_deep = strdup(name);
    if (!ld->too_deep) ld->oom = 1;
    return -1;
  }
  if (ld->n == ld->cap) {
    size_t nc = ld->cap ? ld->cap * 2 : 8;
    char **nn = realloc(ld->names, nc * sizeof *nn);
    if (nn) ld->names = nn;
    char **nt = realloc(ld->texts, nc * sizeof *nt);
    if (nt) ld->texts = nt;
    size_t *np = realloc(ld->parent, nc * sizeof *np);
    if (np) ld->parent = np;
    int *nd = realloc(ld->depth, nc * sizeof *nd);
    if (nd) ld->depth = nd;
    if (!nn || !nt || !np || !nd) {
      ld->oom = 1;
      return -1;
    }
    ld->cap = nc;
  }
  char *copy = strdup(name);
  if (!copy) {
    ld->oom = 1;
    return -1;
  }
  ld->names[ld->n] = copy;
  ld->texts[ld->n] = NULL;
  ld->parent[ld->n] = ld->cur_parent;
  ld->depth[ld->n] = ld->cur_depth;
  ld->n++;
  return 0;
}

/* Finding, on the error path, the template that names a partial. */
typedef struct finder {
  const char *name;
  int hit;
} finder;

static int finder_cb(void *ud, const char *name) {
  finder *f = ud;
  if (strcmp(f->name, name)) return 0;
  f->hit = 1;
  return -1; /* stop the check: found */
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
static void partial_label(const loader *ld, size_t i, char *out, size_t size) {
  size_t o = (size_t)snprintf(out, size, "partial '%s'", ld->names[i]);
  const char *sep = " (included by ";
  for (size_t p = ld->parent[i]; p != NO_PARENT && o < size; p = ld->parent[p]) {
    o += (size_t)snprintf(out + o, size - o, "%s'%s'", sep, ld->names[p]);
    sep = " <- ";
  }
  if (ld->parent[i] != NO_PARENT && o < size) snprintf(out + o, size - o, ")");
}

/* The message of a partial problem, pointing at the template (in cfg)
 * that led to it. */
static int partial_error(loader *ld, size_t i, const ynode *cfg, const char *where, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));
static int partial_error(loader *ld, size_t i, const ynode *cfg, const char *where, const char *fmt,
                         ...) {
  size_t root = i;
  while (ld->parent[root] != NO_PARENT) root = ld->parent[root];
  char path[WHERE_MAX], label[512], msg[768];
  const ynode *user = find_user(cfg, ld->names[root], where, path, sizeof path);
  if (!user) {
    user = cfg;
    snprintf(path, sizeof path, "%s", where);
  }
  partial_label(ld, i, label, sizeof label);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return at(ld, user, path, "%s %s", label, msg);
}

static int partial_name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > PARTIAL_NAME_MAX || s[0] == '.') return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* Reads a partial file: a regular file, capped, without NUL.  On failure
 * returns NULL with *err an errno value, or EFBIG / EILSEQ. */
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
  } else if (st.st_size > (off_t)PARTIAL_FILE_MAX) {
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

/* Reads and checks every partial collected but not yet read, following
 * their own partials.  cfg/where: the config whose templates named them. */
static int resolve_partials(loader *ld, const ynode *cfg, const char *where) {
  while (ld->resolved < ld->n) {
    size_t i = ld->resolved;
    const char *name = ld->names[i];
    if (!partial_name_ok(name))
      return partial_error(ld, i, cfg, where,
                           "cannot name a file in the partials folder (use letters, digits, "
                           "'-', '_' and '.', not starting with '.')");
    if (!ld->partials_dir)
      return partial_error(ld, i, cfg, where,
                           "is used, but no partials folder is set (partials are read from "
                           "NAME.mustache files in a partials/ folder beside the recipes)");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.mustache", ld->partials_dir, name);
    int err;
    size_t len = 0;
    char *text = read_partial(path, &len, &err);
    if (!text) {
      if (err == ENOENT)
        return partial_error(ld, i, cfg, where, "not found: expected the file %s", path);
      if (err == EFBIG)
        return partial_error(ld, i, cfg, where, "is too large: %s exceeds %u KiB", path,
                             PARTIAL_FILE_MAX >> 10);
      if (err == EILSEQ)
        return partial_error(ld, i, cfg, where, "cannot be used: %s contains a NUL byte", path);
      if (err == EINVAL)
        return partial_error(ld, i, cfg, where, "cannot be used: %s is not a regular file", path);
      return partial_error(ld, i, cfg, where, "cannot be read: %s: %s", path, strerror(err));
    }
    ld->texts[i] = text;
    ld->resolved++;
    ld->cur_depth = ld->depth[i] + 1;
    ld->cur_parent = i;
    perr te;
    te.msg[0] = '\0';
    int rc = tpl_check(text, len, on_partial, ld, &te);
    ld->cur_depth = 1;
    ld->cur_parent = NO_PARENT;
    if (rc) {
      if (ld->oom) return oom(ld);
      if (ld->too_deep)
        return partial_error(ld, i, cfg, where,
                             "includes '%s', nesting partials deeper than %d levels", ld->too_deep,
                             RECIPE_PARTIAL_DEPTH);
      return partial_error(ld, i, cfg, where, "(%s) is not a valid template: %s", path, te.msg);
    }
  }
  return 0;
}

/* ---- names, ids and references ---- */

static int name_ok(const char *s, size_t max, int allow_dash, int digit_first) {
  size_t n = strlen(s);
  if (!n || n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9' && (i || digit_first)) ||
             (i && (c == '_' || (allow_dash && c == '-')));
    if (!ok) return 0;
  }
  return 1;
}

/* Calls fn on each `path:` scalar of a (validated) condition node. */
typedef int (*path_fn)(loader *ld, const ynode *path, void *ud);

static int walk_cond_paths(loader *ld, const ynode *n, path_fn fn, void *ud) {
  if (n->kind != YN_MAP) return 0;
  for (size_t i = 0; i < n->n; i++) {
    const char *k = n->keys[i]->text;
    const ynode *v = n->items[i];
    int r = 0;
    if (!strcmp(k, "path") && v->kind == YN_SCALAR)
      r = fn(ld, v, ud);
    else if (!strcmp(k, "not"))
      r = walk_cond_paths(ld, v, fn, ud);
    else if ((!strcmp(k, "all") || !strcmp(k, "any")) && v->kind == YN_SEQ)
      for (size_t j = 0; j < v->n && !r; j++) r = walk_cond_paths(ld, v->items[j], fn, ud);
    if (r) return r;
  }
  return 0;
}

static int when_path(loader *ld, const ynode *p, void *ud) {
  (void)ud;
  if (strncmp(p->text, "steps", 5) || (p->text[5] && p->text[5] != '.')) return 0;
  return at(ld, p, "when",
            "reads '%.80s', but `when` is checked before any step runs; use `if:` on a step to "
            "test a step's result",
            p->text);
}

typedef struct step_refs {
  const ynode *steps; /* the steps list */
  size_t index;       /* the step whose `if` is checked */
  const char *where;  /* "steps[2].if" */
} step_refs;

static const char *step_id_text(const ynode *step) {
  const ynode *id = ynode_get(step, "id");
  return id && id->kind == YN_SCALAR ? id->text : NULL;
}

static int if_path(loader *ld, const ynode *p, void *ud) {
  const step_refs *sr = ud;
  if (strncmp(p->text, "steps", 5) || (p->text[5] && p->text[5] != '.')) return 0;
  const char *id = p->text[5] ? p->text + 6 : "";
  size_t idlen = strcspn(id, ".");
  char before[512];
  size_t o = 0;
  before[0] = '\0';
  for (size_t j = 0; j < sr->index && o < sizeof before; j++) {
    const char *t = step_id_text(sr->steps->items[j]);
    if (!t) continue;
    if (strlen(t) == idlen && !memcmp(t, id, idlen)) return 0; /* an earlier step */
    o += (size_t)snprintf(before + o, sizeof before - o, "%s%s", o ? ", " : "", t);
  }
  char ctx[560];
  if (sr->index == 0)
    snprintf(ctx, sizeof ctx, "(no steps run before this one)");
  else
    snprintf(ctx, sizeof ctx, "(steps before this one: %s)", before);
  if (!idlen) return at(ld, p, sr->where, "reads '%.80s' without naming a step %s", p->text, ctx);
  for (size_t j = sr->index; j < sr->steps->n; j++) {
    const char *t = step_id_text(sr->steps->items[j]);
    if (!t || strlen(t) != idlen || memcmp(t, id, idlen)) continue;
    if (j == sr->index)
      return at(ld, p, sr->where,
                "refers to its own step '%.*s'; `if` is checked before the step runs %s",
                (int)idlen, id, ctx);
    return at(ld, p, sr->where, "refers to step '%.*s', which runs after this one %s", (int)idlen,
              id, ctx);
  }
  return at(ld, p, sr->where, "refers to unknown step '%.*s' %s", (int)(idlen > 80 ? 80 : idlen),
            id, ctx);
}

static int check_retry(loader *ld, const ynode *node, const cJSON *retry, const char *where) {
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(retry, "base_ms");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(retry, "cap_ms");
  if (cJSON_IsNumber(b) && cJSON_IsNumber(c) && b->valuedouble > c->valuedouble)
    return at(ld, node, where, "base_ms (%.0f) is larger than cap_ms (%.0f)", b->valuedouble,
              c->valuedouble);
  return 0;
}

/* Appends "a, b, c" of every kind name to a fixed buffer. */
static void kind_list(char *out, size_t size, int triggers) {
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; o < size; i++) {
    const char *n = triggers ? (connectors_triggers[i] ? connectors_triggers[i]->name : NULL)
                             : (connectors_actions[i] ? connectors_actions[i]->name : NULL);
    if (!n) break;
    o += (size_t)snprintf(out + o, size - o, "%s%s", i ? ", " : "", n);
  }
}

static const char *kind_did_you_mean(const char *key, int triggers, int with_step_fields) {
  const char *names[80];
  size_t n = 0;
  if (with_step_fields)
    for (size_t i = 0; step_fields[i].name && n < 20; i++) names[n++] = step_fields[i].name;
  for (size_t i = 0; n < 79; i++) {
    const char *k = triggers ? (connectors_triggers[i] ? connectors_triggers[i]->name : NULL)
                             : (connectors_actions[i] ? connectors_actions[i]->name : NULL);
    if (!k) break;
    names[n++] = k;
  }
  names[n] = NULL;
  return fields_did_you_mean(key, names);
}

/* ---- trigger ---- */

static int load_trigger(loader *ld, const ynode *t, cJSON **out) {
  char kinds[512];
  kind_list(kinds, sizeof kinds, 1);
  *out = NULL;
  if (t->kind != YN_MAP || t->n == 0) {
    char got[96];
    fields_describe_value(t, got, sizeof got);
    return at(ld, t, "trigger", "expected a mapping with one trigger kind (available: %s), got %s",
              kinds, t->kind == YN_MAP ? "an empty mapping" : got);
  }
  const ynode *k = t->keys[0];
  char where[WHERE_MAX];
  snprintf(where, sizeof where, "trigger.%s", k->text);
  const trigger_kind *kind = connectors_trigger(k->text);
  if (!kind) {
    const char *near = kind_did_you_mean(k->text, 1, 0);
    if (near)
      return at(ld, k, where, "unknown trigger kind '%.80s' (did you mean '%s'? available: %s)",
                k->text, near, kinds);
    return at(ld, k, where, "unknown trigger kind '%.80s' (available: %s)", k->text, kinds);
  }
  if (t->n > 1) {
    snprintf(where, sizeof where, "trigger.%s", t->keys[1]->text);
    return at(ld, t->keys[1], where, "a recipe has exactly one trigger; this one already has '%s'",
              kind->name);
  }
  cJSON *cfg = NULL;
  if (fields_check(kind->fields ? kind->fields : no_fields, t->items[0], &ld->cx, where, &cfg,
                   ld->e))
    return -1;
  perr ve;
  ve.msg[0] = '\0';
  if (kind->validate && kind->validate(cfg, &ve)) {
    cJSON_Delete(cfg);
    return at(ld, t->items[0], where, "%s", ve.msg);
  }
  if (resolve_partials(ld, t->items[0], where)) {
    cJSON_Delete(cfg);
    return -1;
  }
  cJSON *obj = cJSON_CreateObject();
  if (!obj || !cJSON_AddItemToObject(obj, kind->name, cfg)) {
    cJSON_Delete(obj);
    cJSON_Delete(cfg);
    return oom(ld);
  }
  *out = obj;
  return 0;
}

/* ---- steps ---- */

static int add_item(cJSON *obj, const char *key, cJSON *item) {
  if (!item) return 0;
  if (!cJSON_AddItemToObject(obj, key, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

static int load_step(loader *ld, const ynode *steps, size_t i, cJSON **out) {
  const ynode *s = steps->items[i];
  char where[WHERE_MAX], sub[WHERE_MAX];
  snprintf(where, sizeof where, "steps[%zu]", i);
  *out = NULL;
  if (s->kind != YN_MAP) {
    char got[96];
    fields_describe_value(s, got, sizeof got);
    return at(ld, s, where, "expected a step (a mapping with an id and one action), got %s", got);
  }
  cJSON *vals[3] = {NULL, NULL, NULL}; /* id, if, retry: step_fields order */
  cJSON *cfg = NULL;
  const ynode *action_key = NULL;
  const action_kind *kind = NULL;
  int rc = -1;
  for (size_t k = 0; k < s->n; k++) {
    const ynode *key = s->keys[k];
    snprintf(sub, sizeof sub, "%s.%s", where, key->text);
    size_t r = 0;
    while (step_fields[r].name && strcmp(step_fields[r].name, key->text)) r++;
    if (step_fields[r].name) {
      if (fields_check_value(&step_fields[r], s->items[k], &ld->cx, sub, &vals[r], ld->e))
        goto done;
      continue;
    }
    const action_kind *ak = connectors_action(key->text);
    if (!ak) {
      char kinds[512];
      kind_list(kinds, sizeof kinds, 0);
      const char *near = kind_did_you_mean(key->text, 0, 1);
      if (near)
        at(ld, key, sub,
           "unknown field or action '%.80s' (did you mean '%s'? fields: id, if, retry; "
           "actions: %s)",
           key->text, near, kinds);
      else
        at(ld, key, sub, "unknown field or action '%.80s' (fields: id, if, retry; actions: %s)",
           key->text, kinds);
      goto done;
    }
    if (action_key) {
      at(ld, key, sub, "a step has exactly one action; this one already has '%s' (at %d:%d)",
         kind->name, action_key->line, action_key->col);
      goto done;
    }
    action_key = key;
    kind = ak;
  }
  const ynode *idn = ynode_get(s, "id");
  if (!idn) {
    snprintf(sub, sizeof sub, "%s.id", where);
    at(ld, s, sub, "required field is missing (%s)", step_fields[0].help);
    goto done;
  }
  snprintf(sub, sizeof sub, "%s.id", where);
  if (!name_ok(idn->text, STEP_ID_MAX, 0, 0)) {
    char got[96];
    fields_describe_value(idn, got, sizeof got);
    at(ld, idn, sub,
       "expected a step id: a lowercase letter, then lowercase letters, digits or '_' "
       "(at most %d), got %s",
       STEP_ID_MAX, got);
    goto done;
  }
  for (size_t j = 0; j < i; j++) {
    const ynode *other = ynode_get(steps->items[j], "id");
    if (other && !strcmp(other->text, idn->text)) {
      at(ld, idn, sub, "duplicate step id '%s' (already used by steps[%zu] at %d:%d)", idn->text, j,
         other->line, other->col);
      goto done;
    }
  }
  if (!action_key) {
    char kinds[512];
    kind_list(kinds, sizeof kinds, 0);
    at(ld, s, where, "missing the action: a step needs one key naming an action (%s)", kinds);
    goto done;
  }
  const ynode *ifn = ynode_get(s, "if");
  if (ifn) {
    snprintf(sub, sizeof sub, "%s.if", where);
    step_refs sr = {steps, i, sub};
    if (walk_cond_paths(ld, ifn, if_path, &sr)) goto done;
  }
  const ynode *retn = ynode_get(s, "retry");
  if (retn) {
    snprintf(sub, sizeof sub, "%s.retry", where);
    if (check_retry(ld, retn, vals[2], sub)) goto done;
  }
  const ynode *cfgn = ynode_get(s, kind->name);
  snprintf(sub, sizeof sub, "%s.%s", where, kind->name);
  if (fields_check(kind->fields ? kind->fields : no_fields, cfgn, &ld->cx, sub, &cfg, ld->e))
    goto done;
  perr ve;
  ve.msg[0] = '\0';
  if (kind->validate && kind->validate(cfg, &ve)) {
    at(ld, cfgn, sub, "%s", ve.msg);
    goto done;
  }
  if (resolve_partials(ld, cfgn, sub)) goto done;
  cJSON *obj = cJSON_CreateObject();
  if (!obj) {
    oom(ld);
    goto done;
  }
  for (size_t r = 0; r < 3; r++) {
    cJSON *v = vals[r];
    vals[r] = NULL;
    if (add_item(obj, step_fields[r].name, v)) {
      cJSON_Delete(obj);
      oom(ld);
      goto done;
    }
  }
  cJSON *c = cfg;
  cfg = NULL;
  if (add_item(obj, kind->name, c)) {
    cJSON_Delete(obj);
    oom(ld);
    goto done;
  }
  *out = obj;
  rc = 0;
done:
  for (size_t r = 0; r < 3; r++) cJSON_Delete(vals[r]);
  cJSON_Delete(cfg);
  return rc;
}

static int load_steps(loader *ld, const ynode *steps, cJSON **out) {
  *out = NULL;
  if (steps->kind != YN_SEQ || steps->n == 0) {
    char got[96];
    fields_describe_value(steps, got, sizeof got);
    return at(ld, steps, "steps", "expected a non-empty list of steps, got %s",
              steps->kind == YN_SEQ ? "an empty list" : got);
  }
  cJSON *arr = cJSON_CreateArray();
  if (!arr) return oom(ld);
  for (size_t i = 0; i < steps->n; i++) {
    cJSON *st = NULL;
    if (load_step(ld, steps, i, &st)) {
      cJSON_Delete(arr);
      return -1;
    }
    if (!cJSON_AddItemToArray(arr, st)) {
      cJSON_Delete(st);
      cJSON_Delete(arr);
      return oom(ld);
    }
  }
  *out = arr;
  return 0;
}

/* ---- the recipe ---- */

static int cmp_index_by_name(const void *a, const void *b, void *ud) {
  char **names = ud;
  return strcmp(names[*(const size_t *)a], names[*(const size_t *)b]);
}

static cJSON *partials_json(loader *ld) {
  cJSON *obj = cJSON_CreateObject();
  size_t *order = malloc((ld->n ? ld->n : 1) * sizeof *order);
  if (!obj || !order) {
    cJSON_Delete(obj);
    free(order);
    return NULL;
  }
  for (size_t i = 0; i < ld->n; i++) order[i] = i;
  qsort_r(order, ld->n, sizeof *order, cmp_index_by_name, ld->names);
  for (size_t i = 0; i < ld->n; i++) {
    size_t j = order[i];
    if (!cJSON_AddStringToObject(obj, ld->names[j], ld->texts[j])) {
      cJSON_Delete(obj);
      obj = NULL;
      break;
    }
  }
  free(order);
  return obj;
}

/* Moves key from src to dst (when present); -1 on OOM. */
static int move_item(cJSON *dst, cJSON *src, const char *key) {
  cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(src, key);
  return add_item(dst, key, it);
}

static int load_root(loader *ld, const ynode *root, cJSON **def) {
  cJSON *top = NULL, *trigger = NULL, *steps = NULL, *out = NULL;
  if (root->kind != YN_MAP) {
    char got[96];
    fields_describe_value(root, got, sizeof got);
    return perr_set(ld->e,
                    "%s:%d:%d: expected a recipe (a mapping with name, trigger and steps), got %s",
                    ld->file, root->line, root->col, got);
  }
  if (fields_check(recipe_fields, root, &ld->cx, "", &top, ld->e)) return -1;
  const ynode *name = ynode_get(root, "name");
  if (!name_ok(name->text, RECIPE_NAME_MAX, 1, 1)) {
    char got[96];
    fields_describe_value(name, got, sizeof got);
    at(ld, name, "name",
       "expected a name of lowercase letters, digits, '-' and '_', starting with a letter or "
       "digit (at most %d), got %s",
       RECIPE_NAME_MAX, got);
    goto fail;
  }
  const ynode *when = ynode_get(root, "when");
  if (when && walk_cond_paths(ld, when, when_path, NULL)) goto fail;
  const ynode *retry = ynode_get(root, "retry");
  if (retry && check_retry(ld, retry, cJSON_GetObjectItemCaseSensitive(top, "retry"), "retry"))
    goto fail;
  if (load_trigger(ld, ynode_get(root, "trigger"), &trigger)) goto fail;
  if (load_steps(ld, ynode_get(root, "steps"), &steps)) goto fail;

  out = cJSON_CreateObject();
  if (!out || move_item(out, top, "name") || move_item(out, top, "description") ||
      move_item(out, top, "enabled"))
    goto oom;
  cJSON *t = trigger;
  trigger = NULL;
  if (add_item(out, "trigger", t) || move_item(out, top, "when") ||
      move_item(out, top, "concurrency") || move_item(out, top, "retry"))
    goto oom;
  cJSON *s = steps;
  steps = NULL;
  if (add_item(out, "steps", s)) goto oom;
  if (ld->n) {
    cJSON *p = partials_json(ld);
    if (!p || add_item(out, "partials", p)) goto oom;
  }
  cJSON_Delete(top);
  *def = out;
  return 0;
oom:
  oom(ld);
fail:
  cJSON_Delete(out);
  cJSON_Delete(top);
  cJSON_Delete(trigger);
  cJSON_Delete(steps);
  return -1;
}

static int load(const ynode *root, const char *file, const char *partials_dir, cJSON **def,
                perr *e) {
  loader ld = {
      .file = file, .partials_dir = partials_dir, .e = e, .cur_depth = 1, .cur_parent = NO_PARENT};
  ld.cx.file = file;
  ld.cx.on_partial = on_partial;
  ld.cx.partial_ud = &ld;
  int rc = load_root(&ld, root, def);
  if (rc && ld.oom) oom(&ld);
  loader_release(&ld);
  return rc;
}

int recipe_load_file(const char *path, const char *partials_dir, cJSON **def, perr *e) {
  ynode *root = NULL;
  *def = NULL;
  if (ydoc_load_file(path, &root, e)) return -1;
  int rc = load(root, path, partials_dir, def, e);
  ynode_free(root);
  return rc;
}

int recipe_load_string(const char *text, size_t len, const char *name, const char *partials_dir,
                       cJSON **def, perr *e) {
  ynode *root = NULL;
  const char *file = name ? name : "<recipe>";
  *def = NULL;
  if (ydoc_load_string(text, len, file, &root, e)) return -1;
  int rc = load(root, file, partials_dir, def, e);
  ynode_free(root);
  return rc;
}
