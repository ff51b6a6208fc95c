/*
 * cond: parsing, evaluating and describing `when:` / `if:` conditions.
 *
 * Design notes
 * - A condition is either a leaf { path: P, OP: V } with exactly one
 *   operator, or exactly one combinator: all: [..], any: [..] (non-empty)
 *   or not: {..}.  Mixing the two forms is refused rather than given an
 *   implied "and": one reading per condition.
 * - Paths are dotted (jpath.h) and start at one of the context roots the
 *   engine provides (ROOTS below); a path starting anywhere else could
 *   never match, so it is an import error.
 * - Operand types are settled at parse time with the YAML core schema
 *   (`gte: 7` is a number, `eq: "7"` a string), then stored as JSON, so
 *   evaluation never re-reads YAML.  eq/ne accept any value; lt..gte a
 *   number or a string; contains any scalar; exists a boolean; regex a
 *   string, compiled here once to reject a bad one at import.
 * - Regexes are POSIX ERE (regex.h).  A leading "(?i)" is not ERE syntax;
 *   it is stripped and means REG_ICASE.  Evaluation compiles again
 *   (regex_t cannot live in JSON); conditions are evaluated once per event
 *   and recipe, so this stays small next to the fsync per batch.
 * - Evaluation never fails: a malformed stored condition is false.
 */
#include "core/cond.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jpath.h"

/* The context roots conditions may read (the engine's render context). */
static const char *const ROOTS[] = {"event", "steps", "run", NULL};

static const char *const OPS[] = {"eq",  "ne",       "lt",    "lte",    "gt",
                                  "gte", "contains", "regex", "exists", NULL};
static const char *const ALLOWED =
    "path, eq, ne, lt, lte, gt, gte, contains, regex, exists, all, any, not";

#define MAX_WHERE 384

static int in_list(const char *const *list, const char *s) {
  for (size_t i = 0; list[i]; i++)
    if (!strcmp(list[i], s)) return 1;
  return 0;
}

static int at(perr *e, const char *file, const ynode *n, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int at(perr *e, const char *file, const ynode *n, const char *where, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return perr_set(e, "%s:%d:%d: %s: %s", file, n->line, n->col, where, msg);
}

/* Compiles pattern with the (?i) convention; 0 or a regcomp error code. */
static int compile_re(const char *pattern, regex_t *re) {
  int flags = REG_EXTENDED | REG_NOSUB;
  if (!strncmp(pattern, "(?i)", 4)) {
    pattern += 4;
    flags |= REG_ICASE;
  }
  return regcomp(re, pattern, flags);
}

static int check_path(const ynode *v, const char *file, const char *where, perr *e) {
  if (v->kind != YN_SCALAR || ynode_is_null(v))
    return at(e, file, v, where, "expected a dotted path such as event.body.email, got %s",
              ynode_kind_name(v));
  const char *s = v->text;
  if (memchr(s, '\0', v->len) || !*s || s[0] == '.' || s[v->len - 1] == '.' || strstr(s, ".."))
    return at(e, file, v, where, "expected a dotted path such as event.body.email, got \"%.80s\"",
              s);
  size_t root_len = strcspn(s, ".");
  for (size_t i = 0; ROOTS[i]; i++)
    if (strlen(ROOTS[i]) == root_len && !memcmp(ROOTS[i], s, root_len)) return 0;
  return at(e, file, v, where, "a path starts with event, steps or run, got \"%.80s\"", s);
}

static int has_nul(const ynode *v) {
  if (v->kind == YN_SCALAR) return memchr(v->text, '\0', v->len) != NULL;
  for (size_t i = 0; i < v->n; i++)
    if (has_nul(v->items[i])) return 1;
  return 0;
}

static int parse_operand(const char *op, const ynode *v, const char *file, const char *where,
                         cJSON **out, perr *e) {
  *out = NULL;
  /* Stored as JSON strings read as C strings: a NUL would cut the value. */
  if (has_nul(v)) return at(e, file, v, where, "a value may not contain a NUL character");
  if (!strcmp(op, "exists")) {
    int b = ynode_bool(v);
    if (b < 0) return at(e, file, v, where, "expected true or false, got %s", ynode_kind_name(v));
    *out = cJSON_CreateBool(b);
  } else if (!strcmp(op, "regex")) {
    if (v->kind != YN_SCALAR || ynode_is_null(v))
      return at(e, file, v, where, "expected a regular expression string, got %s",
                ynode_kind_name(v));
    regex_t re;
    int rc = compile_re(v->text, &re);
    if (rc) {
      char why[256];
      regerror(rc, &re, why, sizeof why);
      return at(e, file, v, where, "invalid regular expression \"%.80s\": %s", v->text, why);
    }
    regfree(&re);
    *out = cJSON_CreateString(v->text);
  } else if (!strcmp(op, "lt") || !strcmp(op, "lte") || !strcmp(op, "gt") || !strcmp(op, "gte")) {
    double d;
    int is_int;
    if (v->kind != YN_SCALAR || ynode_is_null(v) || ynode_bool(v) >= 0)
      return at(e, file, v, where, "expected a number or a string, got %s", ynode_kind_name(v));
    if (ynode_number(v, &d, &is_int) && !isfinite(d))
      return at(e, file, v, where, "expected a finite number, got %.40s", v->text);
    *out = ynode_to_json(v);
  } else if (!strcmp(op, "contains")) {
    if (v->kind != YN_SCALAR)
      return at(e, file, v, where, "expected a string or a single value, got %s",
                ynode_kind_name(v));
    *out = ynode_to_json(v);
  } else { /* eq, ne */
    *out = ynode_to_json(v);
  }
  if (!*out) return perr_set(e, "%s: out of memory", file);
  return 0;
}

static int parse_node(const ynode *n, const char *file, const char *where, cJSON **out, perr *e);

static int parse_list(const ynode *v, const char *file, const char *where, cJSON **out, perr *e) {
  if (v->kind != YN_SEQ || v->n == 0)
    return at(e, file, v, where, "expected a non-empty list of conditions, got %s",
              v->kind == YN_SEQ ? "an empty list" : ynode_kind_name(v));
  cJSON *arr = cJSON_CreateArray();
  if (!arr) return perr_set(e, "%s: out of memory", file);
  for (size_t i = 0; i < v->n; i++) {
    char sub[MAX_WHERE];
    snprintf(sub, sizeof sub, "%s[%zu]", where, i);
    cJSON *c = NULL;
    if (parse_node(v->items[i], file, sub, &c, e)) {
      cJSON_Delete(arr);
      return -1;
    }
    if (!cJSON_AddItemToArray(arr, c)) {
      cJSON_Delete(c);
      cJSON_Delete(arr);
      return perr_set(e, "%s: out of memory", file);
    }
  }
  *out = arr;
  return 0;
}

static int parse_node(const ynode *n, const char *file, const char *where, cJSON **out, perr *e) {
  *out = NULL;
  if (n->kind != YN_MAP)
    return at(e, file, n, where,
              "expected a condition (a mapping such as { path: event.x, eq: 1 }), got %s",
              ynode_kind_name(n));
  const ynode *path = NULL, *pathk = NULL, *opv = NULL, *opk = NULL, *comb = NULL, *combk = NULL;
  for (size_t i = 0; i < n->n; i++) {
    const ynode *k = n->keys[i];
    char sub[MAX_WHERE];
    snprintf(sub, sizeof sub, "%s.%.80s", where, k->text);
    if (!strcmp(k->text, "path")) {
      pathk = k;
      path = n->items[i];
    } else if (in_list(OPS, k->text)) {
      if (opk)
        return at(e, file, k, sub,
                  "one operator per condition (this one already has '%s'); combine conditions "
                  "with all: [...]",
                  opk->text);
      opk = k;
      opv = n->items[i];
    } else if (!strcmp(k->text, "all") || !strcmp(k->text, "any") || !strcmp(k->text, "not")) {
      if (combk)
        return at(e, file, k, sub, "'%s' cannot be combined with '%s' in one condition", k->text,
                  combk->text);
      combk = k;
      comb = n->items[i];
    } else {
      return at(e, file, k, sub, "unknown condition key '%.80s' (allowed: %s)", k->text, ALLOWED);
    }
  }
  if (combk) {
    const ynode *other = opk ? opk : pathk;
    if (other)
      return at(e, file, other, where, "'%s' cannot be combined with '%s' in one condition",
                combk->text, other->text);
    char sub[MAX_WHERE];
    snprintf(sub, sizeof sub, "%s.%s", where, combk->text);
    cJSON *inner = NULL;
    if (!strcmp(combk->text, "not")) {
      if (parse_node(comb, file, sub, &inner, e)) return -1;
    } else if (parse_list(comb, file, sub, &inner, e)) {
      return -1;
    }
    cJSON *obj = cJSON_CreateObject();
    if (!obj || !cJSON_AddItemToObject(obj, combk->text, inner)) {
      cJSON_Delete(obj);
      cJSON_Delete(inner);
      return perr_set(e, "%s: out of memory", file);
    }
    *out = obj;
    return 0;
  }
  if (!opk)
    return at(e, file, n, where,
              "missing an operator (one of: eq, ne, lt, lte, gt, gte, contains, regex, exists) "
              "or all/any/not");
  if (!path) {
    char sub[MAX_WHERE];
    snprintf(sub, sizeof sub, "%s.path", where);
    return at(e, file, n, sub, "required field is missing (what the '%s' operator tests)",
              opk->text);
  }
  char sub[MAX_WHERE];
  snprintf(sub, sizeof sub, "%s.path", where);
  if (check_path(path, file, sub, e)) return -1;
  snprintf(sub, sizeof sub, "%s.%s", where, opk->text);
  cJSON *val = NULL;
  if (parse_operand(opk->text, opv, file, sub, &val, e)) return -1;
  cJSON *obj = cJSON_CreateObject();
  if (!obj || !cJSON_AddStringToObject(obj, "path", path->text) ||
      !cJSON_AddItemToObject(obj, opk->text, val)) {
    cJSON_Delete(obj); /* val was not attached: every failure above is before or at adding it */
    cJSON_Delete(val);
    return perr_set(e, "%s: out of memory", file);
  }
  *out = obj;
  return 0;
}

int cond_parse(const ynode *n, const char *file, const char *where, cJSON **out, perr *e) {
  return parse_node(n, file ? file : "<recipe>", where ? where : "condition", out, e);
}

/* ---- evaluation ---- */

static int cmp_order(const cJSON *a, const cJSON *b, int *res) {
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) {
    *res = a->valuedouble < b->valuedouble ? -1 : a->valuedouble > b->valuedouble ? 1 : 0;
    return 1;
  }
  if (cJSON_IsString(a) && cJSON_IsString(b) && a->valuestring && b->valuestring) {
    int c = strcmp(a->valuestring, b->valuestring); /* bytewise: unsigned char compare */
    *res = c < 0 ? -1 : c > 0 ? 1 : 0;
    return 1;
  }
  return 0;
}

static int eval_regex(const cJSON *v, const cJSON *pat) {
  if (!cJSON_IsString(v) || !cJSON_IsString(pat) || !v->valuestring || !pat->valuestring) return 0;
  regex_t re;
  if (compile_re(pat->valuestring, &re)) return 0;
  int m = regexec(&re, v->valuestring, 0, NULL, 0) == 0;
  regfree(&re);
  return m;
}

static int eval_contains(const cJSON *v, const cJSON *x) {
  if (cJSON_IsString(v)) {
    if (!cJSON_IsString(x) || !v->valuestring || !x->valuestring) return 0;
    return strstr(v->valuestring, x->valuestring) != NULL;
  }
  if (cJSON_IsArray(v)) {
    const cJSON *it;
    cJSON_ArrayForEach(it, v) if (cJSON_Compare(it, x, 1)) return 1;
  }
  return 0;
}

static int eval_leaf(const cJSON *c, const cJSON *ctx) {
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "path");
  if (!cJSON_IsString(p) || !p->valuestring) return 0;
  const cJSON *op = NULL;
  for (const cJSON *it = c->child; it; it = it->next)
    if (it->string && strcmp(it->string, "path")) {
      if (op) return 0; /* malformed: two operators */
      op = it;
    }
  if (!op) return 0;
  const cJSON *v = jpath_get(ctx, p->valuestring);
  const char *name = op->string;
  if (!strcmp(name, "exists")) {
    if (!cJSON_IsBool(op)) return 0;
    return cJSON_IsTrue(op) ? v != NULL : v == NULL;
  }
  if (!strcmp(name, "ne")) return !v || !cJSON_Compare(v, op, 1);
  if (!v) return 0;
  if (!strcmp(name, "eq")) return cJSON_Compare(v, op, 1) ? 1 : 0;
  if (!strcmp(name, "contains")) return eval_contains(v, op);
  if (!strcmp(name, "regex")) return eval_regex(v, op);
  int r;
  if (!strcmp(name, "lt")) return cmp_order(v, op, &r) && r < 0;
  if (!strcmp(name, "lte")) return cmp_order(v, op, &r) && r <= 0;
  if (!strcmp(name, "gt")) return cmp_order(v, op, &r) && r > 0;
  if (!strcmp(name, "gte")) return cmp_order(v, op, &r) && r >= 0;
  return 0;
}

static int eval_depth(const cJSON *c, const cJSON *ctx, int depth) {
  if (!cJSON_IsObject(c) || !c->child || depth > 64) return 0;
  const cJSON *k = c->child;
  if (k->string && !c->child->next) {
    if (!strcmp(k->string, "all") || !strcmp(k->string, "any")) {
      if (!cJSON_IsArray(k) || !k->child) return 0;
      int is_all = !strcmp(k->string, "all");
      const cJSON *it;
      cJSON_ArrayForEach(it, k) {
        int r = eval_depth(it, ctx, depth + 1);
        if (is_all && !r) return 0;
        if (!is_all && r) return 1;
      }
      return is_all;
    }
    if (!strcmp(k->string, "not")) {
      if (!cJSON_IsObject(k) || !k->child) return 0; /* malformed stays false */
      return !eval_depth(k, ctx, depth + 1);
    }
  }
  return eval_leaf(c, ctx);
}

int cond_eval(const cJSON *c, const cJSON *ctx) { return eval_depth(c, ctx, 0); }

int cond_paths(const cJSON *c, int (*fn)(void *ud, const char *path), void *ud) {
  if (!cJSON_IsObject(c)) return 0;
  for (const cJSON *k = c->child; k; k = k->next) {
    if (!k->string) continue;
    int r = 0;
    if (!strcmp(k->string, "path") && cJSON_IsString(k)) {
      r = fn(ud, k->valuestring);
    } else if (!strcmp(k->string, "not")) {
      r = cond_paths(k, fn, ud);
    } else if ((!strcmp(k->string, "all") || !strcmp(k->string, "any")) && cJSON_IsArray(k)) {
      const cJSON *it;
      cJSON_ArrayForEach(it, k) if ((r = cond_paths(it, fn, ud)) != 0) break;
    }
    if (r) return r;
  }
  return 0;
}

/* ---- description ---- */

static int describe_value(const cJSON *v, buf *out) {
  char *s = cJSON_PrintUnformatted(v);
  if (!s) return -1;
  int r = buf_adds(out, s);
  cJSON_free(s);
  return r;
}

static int describe(const cJSON *c, buf *out, int nested) {
  if (!cJSON_IsObject(c) || !c->child) return buf_adds(out, "(invalid condition)");
  const cJSON *k = c->child;
  if (k->string && !k->next && (!strcmp(k->string, "all") || !strcmp(k->string, "any"))) {
    const char *sep = !strcmp(k->string, "all") ? " and " : " or ";
    if (nested && buf_addc(out, '(')) return -1;
    int first = 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, k) {
      if (!first && buf_adds(out, sep)) return -1;
      if (describe(it, out, 1)) return -1;
      first = 0;
    }
    return nested ? buf_addc(out, ')') : 0;
  }
  if (k->string && !k->next && !strcmp(k->string, "not")) {
    if (buf_adds(out, "not (") || describe(k, out, 0)) return -1;
    return buf_addc(out, ')');
  }
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(c, "path");
  const cJSON *op = NULL;
  for (const cJSON *it = c->child; it; it = it->next)
    if (it->string && strcmp(it->string, "path")) op = it;
  if (!cJSON_IsString(p) || !op) return buf_adds(out, "(invalid condition)");
  if (buf_adds(out, p->valuestring)) return -1;
  static const struct {
    const char *op, *sym;
  } syms[] = {{"eq", " == "},
              {"ne", " != "},
              {"lt", " < "},
              {"lte", " <= "},
              {"gt", " > "},
              {"gte", " >= "},
              {"contains", " contains "},
              {"regex", " =~ "}};
  if (!strcmp(op->string, "exists"))
    return buf_adds(out, cJSON_IsTrue(op) ? " exists" : " does not exist");
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
    if (!strcmp(op->string, syms[i].op)) {
      if (buf_adds(out, syms[i].sym)) return -1;
      if (!strcmp(op->string, "regex") && cJSON_IsString(op))
        return buf_printf(out, "/%s/", op->valuestring);
      return describe_value(op, out);
    }
  return buf_adds(out, " (unknown operator)");
}

int cond_describe(const cJSON *c, buf *out) { return describe(c, out, 0); }
