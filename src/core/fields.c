/*
 * fields: checking a YAML mapping against a declared field table.
 *
 * Design notes
 * - Keys are visited in document order, so the first message a user sees is
 *   the first problem in the file; required fields are checked after, at
 *   the mapping's position (a missing key has no position of its own).
 * - The JSON built lists fields in table order, not document order: two
 *   files that differ only in key order normalise to the same definition
 *   (and the same digest).
 * - Typing follows the YAML core schema through yaml_doc's readers: `7` is
 *   an integer, `"7"` is text, `~` is null.  Text fields accept any
 *   non-null scalar (a plain `7` is the text "7"); numbers and booleans
 *   must be unquoted.  Null is refused everywhere except where a mapping is
 *   expected, where an empty value (`log:`) means an empty mapping so the
 *   message names the missing required field instead.
 * - Text may not hold NUL: definitions are JSON strings handled as C
 *   strings, where a NUL would cut the value silently.
 * - A secret field never echoes what it was given unless it already looks
 *   like a reference: a literal secret pasted into a recipe must not end up
 *   in a terminal or a log through the error message.
 * - Messages: "FILE:LINE:COL: PATH: what was expected, got what".
 */
#include "core/fields.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cond.h"
#include "core/secrets.h"

#define PATH_MAX_LEN 384
#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53: beyond it a double drops digits */

const char *field_type_name(field_type t) {
  switch (t) {
    case FT_STRING: return "a string";
    case FT_TEMPLATE: return "a template string";
    case FT_SECRET: return "a secret reference (env:NAME, file:/path or cred:NAME)";
    case FT_INT: return "an integer";
    case FT_NUMBER: return "a number";
    case FT_BOOL: return "true or false";
    case FT_STRING_LIST: return "a list of strings";
    case FT_TEMPLATE_LIST: return "a list of template strings";
    case FT_TEMPLATE_MAP: return "a mapping of names to template strings";
    case FT_JSON: return "any YAML value";
    case FT_COND: return "a condition";
    case FT_OBJECT: return "a mapping";
    case FT_OBJECT_MAP: return "a mapping of names to mappings";
    case FT_OBJECT_LIST: return "a list of mappings";
  }
  return "a value";
}

static const char *file_of(const fields_ctx *cx) { return cx && cx->file ? cx->file : "<recipe>"; }

static int at(perr *e, const fields_ctx *cx, const ynode *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int at(perr *e, const fields_ctx *cx, const ynode *n, const char *path, const char *fmt,
              ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return perr_set(e, "%s:%d:%d: %s: %s", file_of(cx), n->line, n->col, path, msg);
}

static int oom(perr *e, const fields_ctx *cx) {
  return perr_set(e, "%s: out of memory checking fields", file_of(cx));
}

void fields_describe_value(const ynode *v, char *out, size_t size) {
  if (!size) return;
  if (!v || v->kind != YN_SCALAR || ynode_is_null(v)) {
    snprintf(out, size, "%s", ynode_kind_name(v));
    return;
  }
  double d = 0;
  int is_int;
  if (ynode_bool(v) >= 0 || ynode_number(v, &d, &is_int)) {
    snprintf(out, size, "%.40s", v->text);
    return;
  }
  /* A quoted, shortened copy with control characters made visible. */
  size_t o = 0;
  const size_t limit = 48;
  out[o++] = '"';
  for (size_t i = 0; i < v->len && o + 8 < size; i++) {
    if (i == limit) {
      o += (size_t)snprintf(out + o, size - o, "...");
      break;
    }
    unsigned char c = (unsigned char)v->text[i];
    if (c == '"' || c == '\\')
      o += (size_t)snprintf(out + o, size - o, "\\%c", c);
    else if (c == '\n')
      o += (size_t)snprintf(out + o, size - o, "\\n");
    else if (c < 0x20 || c == 0x7f)
      o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    else
      out[o++] = (char)c;
  }
  if (o + 2 <= size) {
    out[o++] = '"';
    out[o] = '\0';
  } else {
    out[size - 1] = '\0';
  }
}

/* Levenshtein distance of two short strings (both <= 63 bytes). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  size_t prev[64], cur[64];
  for (size_t j = 0; j <= lb; j++) prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
  }
  return prev[lb];
}

const char *fields_did_you_mean(const char *key, const char *const *names) {
  const char *best = NULL;
  size_t best_d = 3;
  if (strlen(key) > 63) return NULL;
  for (size_t i = 0; names[i]; i++) {
    if (strlen(names[i]) > 63) continue;
    size_t d = edit_distance(key, names[i]);
    /* A distance as long as the word is no typo ("a" vs "id"). */
    if (d < best_d && d < strlen(names[i])) {
      best = names[i];
      best_d = d;
    }
  }
  return best;
}

static void join_path(char *dst, size_t size, const char *where, const char *name) {
  if (where && *where)
    snprintf(dst, size, "%s.%s", where, name);
  else
    snprintf(dst, size, "%s", name);
}

/* ---- one value ---- */

static int want_text(const ynode *v, const fields_ctx *cx, const char *path, const char *what,
                     perr *e) {
  if (v->kind != YN_SCALAR || ynode_is_null(v)) {
    char got[96];
    fields_describe_value(v, got, sizeof got);
    return at(e, cx, v, path, "expected %s, got %s", what, got);
  }
  if (memchr(v->text, '\0', v->len))
    return at(e, cx, v, path, "expected %s without NUL characters", what);
  return 0;
}

static int check_template(const ynode *v, const fields_ctx *cx, const char *path, perr *e) {
  if (want_text(v, cx, path, "a template string", e)) return -1;
  perr te;
  te.msg[0] = '\0';
  if (tpl_check(v->text, v->len, cx ? cx->on_partial : NULL, cx ? cx->partial_ud : NULL, &te))
    return at(e, cx, v, path, "invalid template: %s", te.msg);
  return 0;
}

static int check_string(const field_spec *f, const ynode *v, const fields_ctx *cx, const char *path,
                        perr *e) {
  if (want_text(v, cx, path, "a string", e)) return -1;
  if (!f->choices) return 0;
  for (size_t i = 0; f->choices[i]; i++)
    if (!strcmp(f->choices[i], v->text)) return 0;
  char list[384], got[96];
  size_t o = 0;
  list[0] = '\0';
  for (size_t i = 0; f->choices[i] && o < sizeof list; i++)
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", f->choices[i]);
  fields_describe_value(v, got, sizeof got);
  const char *near = fields_did_you_mean(v->text, f->choices);
  if (near)
    return at(e, cx, v, path, "expected one of %s, got %s (did you mean '%s'?)", list, got, near);
  return at(e, cx, v, path, "expected one of %s, got %s", list, got);
}

static int check_secret(const ynode *v, const fields_ctx *cx, const char *path, perr *e) {
  const char *what = field_type_name(FT_SECRET);
  if (want_text(v, cx, path, what, e)) return -1;
  if (secret_is_ref(v->text)) return 0;
  if (!strncmp(v->text, "env:", 4) || !strncmp(v->text, "file:", 5) ||
      !strncmp(v->text, "cred:", 5))
    return at(e, cx, v, path,
              "expected %s, got \"%.80s\" (env: takes a variable name, file: an absolute path, "
              "cred: a credential name without '/')",
              what, v->text);
  return at(e, cx, v, path,
            "expected %s, got a literal value (not shown); secrets are never written into "
            "recipes",
            what);
}

static int check_number(const field_spec *f, const ynode *v, const fields_ctx *cx, const char *path,
                        int integer, double *out, perr *e) {
  char want[128], got[96];
  if (f->min < f->max) {
    if (integer)
      snprintf(want, sizeof want, "an integer from %.0f to %.0f", f->min, f->max);
    else
      snprintf(want, sizeof want, "a number from %g to %g", f->min, f->max);
  } else {
    snprintf(want, sizeof want, "%s", integer ? "an integer" : "a number");
  }
  double d = 0;
  int is_int;
  fields_describe_value(v, got, sizeof got);
  if (!ynode_number(v, &d, &is_int) || (integer && !is_int) || (!is_int && !isfinite(d)))
    return at(e, cx, v, path, "expected %s, got %s", want, got);
  if (integer && !(fabs(d) <= EXACT_INT_LIMIT))
    return at(e, cx, v, path, "expected %s, got %s (too large)", want, got);
  if (f->min < f->max && (d < f->min || d > f->max))
    return at(e, cx, v, path, "expected %s, got %s", want, got);
  *out = d;
  return 0;
}

static int json_has_nul(const ynode *v) {
  if (v->kind == YN_SCALAR) return memchr(v->text, '\0', v->len) != NULL;
  for (size_t i = 0; i < v->n; i++)
    if (json_has_nul(v->items[i])) return 1;
  return 0;
}

static int check_list(field_type item, const ynode *v, const fields_ctx *cx, const char *path,
                      cJSON **out, perr *e) {
  if (v->kind != YN_SEQ) {
    char got[96];
    fields_describe_value(v, got, sizeof got);
    return at(e, cx, v, path, "expected %s, got %s",
              field_type_name(item == FT_TEMPLATE ? FT_TEMPLATE_LIST : FT_STRING_LIST), got);
  }
  cJSON *arr = cJSON_CreateArray();
  if (!arr) return oom(e, cx);
  for (size_t i = 0; i < v->n; i++) {
    char sub[PATH_MAX_LEN];
    snprintf(sub, sizeof sub, "%s[%zu]", path, i);
    const ynode *it = v->items[i];
    int rc = item == FT_TEMPLATE ? check_template(it, cx, sub, e)
                                 : want_text(it, cx, sub, "a string", e);
    if (rc) {
      cJSON_Delete(arr);
      return -1;
    }
    cJSON *s = cJSON_CreateString(it->text);
    if (!s || !cJSON_AddItemToArray(arr, s)) {
      cJSON_Delete(s);
      cJSON_Delete(arr);
      return oom(e, cx);
    }
  }
  *out = arr;
  return 0;
}

static int check_template_map(const ynode *v, const fields_ctx *cx, const char *path, cJSON **out,
                              perr *e) {
  if (v->kind != YN_MAP) {
    char got[96];
    fields_describe_value(v, got, sizeof got);
    return at(e, cx, v, path, "expected %s, got %s", field_type_name(FT_TEMPLATE_MAP), got);
  }
  cJSON *obj = cJSON_CreateObject();
  if (!obj) return oom(e, cx);
  for (size_t i = 0; i < v->n; i++) {
    char sub[PATH_MAX_LEN];
    snprintf(sub, sizeof sub, "%s.%s", path, v->keys[i]->text);
    if (check_template(v->items[i], cx, sub, e)) {
      cJSON_Delete(obj);
      return -1;
    }
    cJSON *s = cJSON_CreateString(v->items[i]->text);
    if (!s || !cJSON_AddItemToObject(obj, v->keys[i]->text, s)) {
      cJSON_Delete(s);
      cJSON_Delete(obj);
      return oom(e, cx);
    }
  }
  *out = obj;
  return 0;
}

/* Entries of one shape: named (FT_OBJECT_MAP, e.g. `providers: { openai:
 * {...}, local: {...} }`) or in order (FT_OBJECT_LIST, e.g. messages). */
static int check_objects(const field_spec *f, const ynode *v, const fields_ctx *cx,
                         const char *path, cJSON **out, perr *e) {
  int named = f->type == FT_OBJECT_MAP;
  if (v->kind != (named ? YN_MAP : YN_SEQ)) {
    char got[96];
    fields_describe_value(v, got, sizeof got);
    return at(e, cx, v, path, "expected %s, got %s", field_type_name(f->type), got);
  }
  cJSON *all = named ? cJSON_CreateObject() : cJSON_CreateArray();
  if (!all) return oom(e, cx);
  for (size_t i = 0; i < v->n; i++) {
    char sub[PATH_MAX_LEN];
    if (named)
      snprintf(sub, sizeof sub, "%s.%s", path, v->keys[i]->text);
    else
      snprintf(sub, sizeof sub, "%s[%zu]", path, i);
    cJSON *item = NULL;
    if (fields_check(f->sub, v->items[i], cx, sub, &item, e)) {
      cJSON_Delete(all);
      return -1;
    }
    if (!(named ? cJSON_AddItemToObject(all, v->keys[i]->text, item)
                : cJSON_AddItemToArray(all, item))) {
      cJSON_Delete(item);
      cJSON_Delete(all);
      return oom(e, cx);
    }
  }
  *out = all;
  return 0;
}

int fields_check_value(const field_spec *f, const ynode *v, const fields_ctx *cx, const char *path,
                       cJSON **out, perr *e) {
  *out = NULL;
  double d = 0;
  switch (f->type) {
    case FT_STRING:
      if (check_string(f, v, cx, path, e)) return -1;
      *out = cJSON_CreateString(v->text);
      break;
    case FT_TEMPLATE:
      if (check_template(v, cx, path, e)) return -1;
      *out = cJSON_CreateString(v->text);
      break;
    case FT_SECRET:
      if (check_secret(v, cx, path, e)) return -1;
      *out = cJSON_CreateString(v->text);
      break;
    case FT_INT:
    case FT_NUMBER:
      if (check_number(f, v, cx, path, f->type == FT_INT, &d, e)) return -1;
      *out = cJSON_CreateNumber(d);
      break;
    case FT_BOOL: {
      int b = ynode_bool(v);
      if (b < 0) {
        char got[96];
        fields_describe_value(v, got, sizeof got);
        return at(e, cx, v, path, "expected true or false, got %s", got);
      }
      *out = cJSON_CreateBool(b);
      break;
    }
    case FT_STRING_LIST: return check_list(FT_STRING, v, cx, path, out, e);
    case FT_TEMPLATE_LIST: return check_list(FT_TEMPLATE, v, cx, path, out, e);
    case FT_TEMPLATE_MAP: return check_template_map(v, cx, path, out, e);
    case FT_JSON:
      if (json_has_nul(v)) return at(e, cx, v, path, "text may not contain NUL characters");
      *out = ynode_to_json(v);
      break;
    case FT_COND: return cond_parse(v, file_of(cx), path, out, e);
    case FT_OBJECT: return fields_check(f->sub, v, cx, path, out, e);
    case FT_OBJECT_MAP:
    case FT_OBJECT_LIST: return check_objects(f, v, cx, path, out, e);
  }
  if (!*out) return oom(e, cx);
  return 0;
}

/* ---- a mapping ---- */

static int unknown_key(const field_spec *tbl, const ynode *k, const fields_ctx *cx,
                       const char *path, perr *e) {
  const char *names[64];
  size_t n = 0;
  char list[512];
  size_t o = 0;
  list[0] = '\0';
  for (size_t i = 0; tbl[i].name && o < sizeof list; i++) {
    if (n < sizeof names / sizeof names[0] - 1) names[n++] = tbl[i].name;
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", tbl[i].name);
  }
  names[n] = NULL;
  const char *near = fields_did_you_mean(k->text, names);
  if (!tbl[0].name)
    return at(e, cx, k, path, "unknown field '%.80s' (this takes no fields)", k->text);
  if (near)
    return at(e, cx, k, path, "unknown field '%.80s' (did you mean '%s'? allowed here: %s)",
              k->text, near, list);
  return at(e, cx, k, path, "unknown field '%.80s' (allowed here: %s)", k->text, list);
}

int fields_check(const field_spec *tbl, const ynode *map, const fields_ctx *cx, const char *where,
                 cJSON **out, perr *e) {
  *out = NULL;
  const char *w = where && *where ? where : "";
  if (!ynode_is_null(map) && map->kind != YN_MAP) {
    char got[96];
    fields_describe_value(map, got, sizeof got);
    return at(e, cx, map, *w ? w : "(top level)", "expected a mapping, got %s", got);
  }
  size_t rows = 0;
  while (tbl[rows].name) rows++;
  cJSON **vals = calloc(rows ? rows : 1, sizeof *vals);
  if (!vals) return oom(e, cx);
  int rc = -1;
  size_t npairs = map->kind == YN_MAP ? map->n : 0;
  for (size_t i = 0; i < npairs; i++) {
    const ynode *k = map->keys[i];
    char path[PATH_MAX_LEN];
    join_path(path, sizeof path, w, k->text);
    size_t r = 0;
    while (r < rows && strcmp(tbl[r].name, k->text)) r++;
    if (r == rows) {
      unknown_key(tbl, k, cx, path, e);
      goto done;
    }
    if (tbl[r].flags & FIELD_EXTERNAL) continue;
    if (fields_check_value(&tbl[r], map->items[i], cx, path, &vals[r], e)) goto done;
  }
  for (size_t r = 0; r < rows; r++) {
    if (!(tbl[r].flags & FIELD_REQUIRED) || ynode_get(map, tbl[r].name)) continue;
    char path[PATH_MAX_LEN];
    join_path(path, sizeof path, w, tbl[r].name);
    at(e, cx, map, path, "required field is missing (%s)",
       tbl[r].help ? tbl[r].help : field_type_name(tbl[r].type));
    goto done;
  }
  cJSON *obj = cJSON_CreateObject();
  if (!obj) {
    oom(e, cx);
    goto done;
  }
  for (size_t r = 0; r < rows; r++) {
    if (!vals[r]) continue;
    if (!cJSON_AddItemToObject(obj, tbl[r].name, vals[r])) {
      cJSON_Delete(obj);
      oom(e, cx);
      goto done;
    }
    vals[r] = NULL;
  }
  *out = obj;
  rc = 0;
done:
  for (size_t r = 0; r < rows; r++) cJSON_Delete(vals[r]);
  free(vals);
  return rc;
}
