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
 * - Partials named by templates are collected while fields are checked and
 *   read after each config (recipe_partials.c); their texts are embedded
 *   in the definition, so a stored version never depends on files that
 *   may change later.
 * - Output key order is fixed (recipe.h), configs in field-table order and
 *   partials sorted by name, so the same recipe always gives the same JSON
 *   and the same digest, whatever the key order in the file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cond.h"
#include "core/connector.h"
#include "core/fields.h"
#include "core/recipe.h"
#include "core/recipe_partials.h"
#include "core/yaml_doc.h"

#define RECIPE_NAME_MAX 64
#define STEP_ID_MAX 64
#define WHERE_MAX 384

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
    {.name = "partials",
     .type = FT_TEMPLATE_MAP,
     .help = "partials written inline, name -> template; used before partials/NAME.mustache "
             "(recipe export writes them this way)"},
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
  fields_ctx cx;
  perr *e;
  partial_set partials; /* every partial the templates name, read and checked */
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

static int resolve_partials(loader *ld, const ynode *cfg, const char *where) {
  return partial_set_resolve(&ld->partials, ld->file, cfg, where, ld->e);
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
  const ynode *inl = ynode_get(root, "partials");
  if (inl && inl->kind == YN_MAP) ld->partials.inline_map = inl;
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
  if (ld->partials.n) {
    cJSON *p = partial_set_json(&ld->partials);
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
  loader ld = {.file = file, .e = e};
  partial_set_init(&ld.partials, partials_dir);
  ld.cx.file = file;
  ld.cx.on_partial = partial_set_note;
  ld.cx.partial_ud = &ld.partials;
  int rc = load_root(&ld, root, def);
  if (rc && ld.partials.oom) oom(&ld); /* the template checker only saw a refusal */
  partial_set_release(&ld.partials);
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
