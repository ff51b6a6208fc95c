/*
 * gpt/schema: strict-mode import check and run-time validation (see
 * schema.h for the subset and the message formats).
 *
 * Both halves walk the schema recursively, keeping the current location in
 * a fixed path buffer: a segment is appended before descending and the
 * length restored after, on success and failure alike, so a message always
 * names where the walk stood.  Paths longer than the buffer are cut (the
 * head of a path is the useful part).
 *
 * The import check works on a copy it is free to modify (the normalisation
 * is done in place), and deletes the copy on any refusal: one owner, one
 * error path.  References are followed only to answer "does this allow
 * null?" (a bounded number of hops); the walk itself visits each $defs
 * entry once where it is defined, so recursive schemas terminate.
 *
 * Validation follows $ref as it meets it; a reference chain that never
 * consumes a piece of the value (a: {$ref: b}, b: {$ref: a}) is cut after
 * MAX_REF_HOPS hops instead of recursing forever.
 */
#include "gpt/schema.h"

#include <math.h>
#include <stdarg.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

enum {
  T_STRING = 1 << 0,
  T_NUMBER = 1 << 1,
  T_INTEGER = 1 << 2,
  T_BOOLEAN = 1 << 3,
  T_OBJECT = 1 << 4,
  T_ARRAY = 1 << 5,
  T_NULL = 1 << 6,
};

static const char *const type_names[] = {"string", "number", "integer", "boolean",
                                         "object", "array",  "null"};

/* OpenAI's published limits for strict schemas. */
enum {
  MAX_PROPERTIES = 5000,
  MAX_NESTING = 10,
  MAX_ENUM_VALUES = 1000,
  MAX_TOTAL_CHARS = 120000,
  BIG_ENUM = 250,
  BIG_ENUM_CHARS = 15000,
  MAX_REF_HOPS = 64,
};

/* ---- shared helpers ---------------------------------------------------- */

typedef struct path {
  char s[512];
  size_t len;
} path;

/* Appends a, b and c (NULLs skipped); returns the length to restore. */
static size_t path_add(path *p, const char *a, const char *b, const char *c) {
  size_t old = p->len;
  const char *parts[3] = {a, b, c};
  for (int i = 0; i < 3; i++) {
    for (const char *x = parts[i]; x && *x && p->len < sizeof p->s - 1; x++) p->s[p->len++] = *x;
  }
  p->s[p->len] = '\0';
  return old;
}

static void path_pop(path *p, size_t old) {
  p->len = old;
  p->s[old] = '\0';
}

/* A member name as a path segment: .name when it reads as a word,
 * ["name"] otherwise (spaces, dots, empty). */
static size_t path_key(path *p, const char *key) {
  int plain = key[0] != '\0';
  for (const char *c = key; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '_' || *c == '-' || *c == '$'))
      plain = 0;
  return plain ? path_add(p, ".", key, NULL) : path_add(p, "[\"", key, "\"]");
}

static size_t path_index(path *p, int i) {
  char n[16];
  snprintf(n, sizeof n, "%d", i);
  return path_add(p, "[", n, "]");
}

static int type_bit(const char *name) {
  for (int i = 0; i < 7; i++)
    if (strcmp(name, type_names[i]) == 0) return 1 << i;
  return 0;
}

static int is_integral(const cJSON *v) {
  return cJSON_IsNumber(v) && isfinite(v->valuedouble) && floor(v->valuedouble) == v->valuedouble;
}

/* Does v have one of the types in mask?  (An integral number is both an
 * integer and a number, as in JSON Schema.) */
static int type_matches(const cJSON *v, int mask) {
  if (cJSON_IsString(v)) return mask & T_STRING;
  if (cJSON_IsNumber(v)) return (mask & T_NUMBER) || ((mask & T_INTEGER) && is_integral(v));
  if (cJSON_IsBool(v)) return mask & T_BOOLEAN;
  if (cJSON_IsNull(v)) return mask & T_NULL;
  if (cJSON_IsObject(v)) return mask & T_OBJECT;
  if (cJSON_IsArray(v)) return mask & T_ARRAY;
  return 0;
}

/* Resolves a local reference: "#" or a JSON pointer "#/a/b" from the root
 * (~1 is "/", ~0 is "~").  NULL when it does not resolve or is not local. */
static const cJSON *resolve_ref(const cJSON *root, const char *ref) {
  if (ref[0] != '#') return NULL;
  const cJSON *at = root;
  const char *s = ref + 1;
  while (*s == '/') {
    s++;
    char seg[256];
    size_t n = 0;
    while (*s && *s != '/') {
      char c = *s++;
      if (c == '~' && (*s == '0' || *s == '1')) c = *s++ == '0' ? '~' : '/';
      if (n + 1 >= sizeof seg) return NULL;
      seg[n++] = c;
    }
    seg[n] = '\0';
    if (cJSON_IsObject(at)) {
      at = cJSON_GetObjectItemCaseSensitive(at, seg);
    } else if (cJSON_IsArray(at)) {
      char *end;
      long i = strtol(seg, &end, 10);
      if (!n || *end || i < 0 || i > 1000000) return NULL;
      at = cJSON_GetArrayItem(at, (int)i);
    } else {
      return NULL;
    }
    if (!at) return NULL;
  }
  return *s ? NULL : at;
}

/* A short rendering of a value for messages: strings quoted and cut at 40
 * characters, numbers as written, containers by kind only (a reply's whole
 * object would drown the message). */
static void render(const cJSON *v, char *out, size_t size) {
  if (cJSON_IsString(v)) {
    size_t o = 0, chars = 0;
    const unsigned char *s = (const unsigned char *)v->valuestring;
    out[o++] = '"';
    for (; *s; s++) {
      /* Cut only before a character starts, leaving room for the longest
       * character or escape plus the closing ..." so nothing is split; the
       * second bound stops a run of stray continuation bytes (cJSON does
       * not check UTF-8). */
      if ((*s & 0xC0) != 0x80 ? (++chars > 40 || o + 16 > size) : o + 8 > size) break;
      if (*s == '"' || *s == '\\') {
        out[o++] = '\\';
        out[o++] = (char)*s;
      } else if (*s < 0x20) {
        o += (size_t)snprintf(out + o, size - o, "\\u%04x", *s);
      } else {
        out[o++] = (char)*s;
      }
    }
    if (*s) {
      memcpy(out + o, "...", 3);
      o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
  } else if (cJSON_IsNumber(v)) {
    snprintf(out, size, "%.15g", v->valuedouble);
  } else if (cJSON_IsBool(v)) {
    snprintf(out, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
  } else if (cJSON_IsNull(v)) {
    snprintf(out, size, "null");
  } else if (cJSON_IsObject(v)) {
    snprintf(out, size, "an object");
  } else if (cJSON_IsArray(v)) {
    snprintf(out, size, "an array");
  } else {
    snprintf(out, size, "nothing");
  }
}

/* "integer", "string or null" ... for a type mask. */
static void mask_names(int mask, char *out, size_t size) {
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < 7; i++) {
    if (!(mask & (1 << i))) continue;
    o += (size_t)snprintf(out + o, o < size ? size - o : 0, "%s%s", o ? " or " : "",
                          type_names[i]);
    if (o >= size) break;
  }
}

/* The type mask a schema's "type" declares; 0 when it has none, -1 when it
 * is malformed or names an unknown type. */
static int schema_types(const cJSON *s) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
  if (!t) return 0;
  if (cJSON_IsString(t)) return type_bit(t->valuestring) ? type_bit(t->valuestring) : -1;
  if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0) return -1;
  int mask = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, t) {
    if (!cJSON_IsString(x) || !type_bit(x->valuestring)) return -1;
    mask |= type_bit(x->valuestring);
  }
  return mask;
}

/* ---- strict-mode import check ----------------------------------------- */

typedef struct strict_cx {
  cJSON *root;
  perr *e;
  path p;
  int props, enums;
  long chars;
} strict_cx;

static int refuse(strict_cx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(strict_cx *cx, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return perr_set(cx->e, "%s: %s", cx->p.s, msg);
}

/* Why a keyword is refused, and what to write instead. */
static const char *refusal_hint(const char *k) {
  static const struct {
    const char *kw, *hint;
  } hints[] = {
      {"allOf", "merge the subschemas into one object"},
      {"oneOf", "use anyOf"},
      {"not", "describe the exclusion in description"},
      {"if", "use anyOf of the alternatives"},
      {"then", "use anyOf of the alternatives"},
      {"else", "use anyOf of the alternatives"},
      {"dependentRequired", "make every property required (null when absent)"},
      {"dependentSchemas", "use anyOf of the alternatives"},
      {"patternProperties", "list the properties explicitly"},
      {"propertyNames", "list the properties explicitly"},
      {"minProperties", "list the properties explicitly"},
      {"maxProperties", "list the properties explicitly"},
      {"unevaluatedProperties", "use additionalProperties: false"},
      {"unevaluatedItems", "describe the items with items"},
      {"prefixItems", "use items with one schema (or an object with named fields)"},
      {"additionalItems", "use items with one schema"},
      {"contains", "describe it in description"},
      {"minContains", "describe it in description"},
      {"maxContains", "describe it in description"},
      {"uniqueItems", "describe it in description"},
      {"default", "describe the default in description"},
      {"examples", "put examples in description"},
      {"nullable", "use a type union such as [\"string\", \"null\"]"},
      {"$schema", "remove it"},
      {"$id", "remove it; references are local (#/$defs/NAME)"},
      {"$anchor", "use #/$defs/NAME references"},
      {"$dynamicRef", "use #/$defs/NAME references"},
      {"$dynamicAnchor", "use #/$defs/NAME references"},
      {"contentEncoding", "describe it in description"},
      {"contentMediaType", "describe it in description"},
  };
  for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++)
    if (strcmp(k, hints[i].kw) == 0) return hints[i].hint;
  return NULL;
}

static int known_keyword(const char *k) {
  static const char *const kws[] = {
      "type",      "description", "title",   "properties",       "required",
      "additionalProperties",     "items",   "enum",             "const",
      "anyOf",     "$ref",        "$defs",   "definitions",      "pattern",
      "format",    "minimum",     "maximum", "exclusiveMinimum", "exclusiveMaximum",
      "multipleOf", "minItems",   "maxItems", "minLength",       "maxLength",
  };
  for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
    if (strcmp(k, kws[i]) == 0) return 1;
  return 0;
}

static int allows_null(const cJSON *root, const cJSON *s, int hops) {
  if (!cJSON_IsObject(s) || hops > 16) return 0;
  int mask = schema_types(s);
  if (mask > 0 && (mask & T_NULL)) return 1;
  const cJSON *x;
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
  cJSON_ArrayForEach(x, en) if (cJSON_IsNull(x)) return 1;
  if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "const"))) return 1;
  cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(s, "anyOf")) {
    if (allows_null(root, x, hops + 1)) return 1;
  }
  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
  if (cJSON_IsString(ref)) return allows_null(root, resolve_ref(root, ref->valuestring), hops + 1);
  return 0;
}

/* The refusal for a property left out of required that cannot be null. */
static int refuse_optional(strict_cx *cx, const char *name, const cJSON *s) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
  char fix[300];
  if (cJSON_IsString(t)) {
    snprintf(fix, sizeof fix, "type [\"%s\", \"null\"]", t->valuestring);
  } else if (cJSON_IsArray(t)) {
    size_t o = 0;
    const cJSON *x;
    o += (size_t)snprintf(fix, sizeof fix, "type [");
    cJSON_ArrayForEach(x, t) {
      if (o < sizeof fix)
        o += (size_t)snprintf(fix + o, sizeof fix - o, "\"%s\", ", x->valuestring);
    }
    if (o < sizeof fix) snprintf(fix + o, sizeof fix - o, "\"null\"]");
  } else if (cJSON_GetObjectItemCaseSensitive(s, "anyOf")) {
    snprintf(fix, sizeof fix, "{\"type\": \"null\"} added to its anyOf");
  } else {
    snprintf(fix, sizeof fix, "anyOf: [<its schema>, {\"type\": \"null\"}]");
  }
  return refuse(cx,
                "not in required, and strict mode requires every property; add \"%s\" to "
                "required (with %s if it may be absent)",
                name, fix);
}

static int check_node(strict_cx *cx, cJSON *s, int depth, int is_root);

static int check_child(strict_cx *cx, cJSON *s, int depth, const char *seg) {
  size_t old = path_add(&cx->p, seg, NULL, NULL);
  int rc = check_node(cx, s, depth, 0);
  if (!rc) path_pop(&cx->p, old);
  return rc;
}

static int check_count(strict_cx *cx, const cJSON *s, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k);
  if (v && (!is_integral(v) || v->valuedouble < 0))
    return refuse(cx, "%s must be a non-negative integer", k);
  return 0;
}

static int check_object(strict_cx *cx, cJSON *s, int depth) {
  if (depth > MAX_NESTING)
    return refuse(cx, "objects nested more than %d levels deep; strict mode allows %d",
                  MAX_NESTING, MAX_NESTING);
  cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
  if (!cJSON_IsObject(props))
    return refuse(cx,
                  "an object needs properties in strict mode (a free-form object cannot be "
                  "expressed); list its properties");
  cJSON *ap = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
  if (!ap) {
    if (!cJSON_AddFalseToObject(s, "additionalProperties")) return perr_set(cx->e, "out of memory");
  } else if (!cJSON_IsFalse(ap)) {
    return refuse(cx,
                  "additionalProperties must be false in strict mode; list every property "
                  "instead");
  }
  cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
  if (!req) {
    if (!(req = cJSON_AddArrayToObject(s, "required"))) return perr_set(cx->e, "out of memory");
  } else if (!cJSON_IsArray(req)) {
    return refuse(cx, "required must be a list of property names");
  }
  int i = 0;
  const cJSON *r;
  cJSON_ArrayForEach(r, req) {
    size_t old = path_add(&cx->p, ".required", NULL, NULL);
    path_index(&cx->p, i++);
    if (!cJSON_IsString(r)) return refuse(cx, "expected a property name");
    if (!cJSON_GetObjectItemCaseSensitive(props, r->valuestring))
      return refuse(cx, "\"%s\" is not among the properties", r->valuestring);
    path_pop(&cx->p, old);
  }

  size_t at_props = path_add(&cx->p, ".properties", NULL, NULL);
  cJSON *prop;
  cJSON_ArrayForEach(prop, props) {
    cx->props++;
    cx->chars += (long)strlen(prop->string);
    size_t old = path_key(&cx->p, prop->string);
    if (check_node(cx, prop, depth, 0)) return -1;
    int listed = 0;
    cJSON_ArrayForEach(r, req) {
      if (cJSON_IsString(r) && strcmp(r->valuestring, prop->string) == 0) listed = 1;
    }
    if (!listed) {
      if (!allows_null(cx->root, prop, 0)) return refuse_optional(cx, prop->string, prop);
      /* Optional and nullable: strict mode wants it listed; null means absent. */
      cJSON *name = cJSON_CreateString(prop->string);
      if (!name || !cJSON_AddItemToArray(req, name)) {
        cJSON_Delete(name);
        return perr_set(cx->e, "out of memory");
      }
    }
    path_pop(&cx->p, old);
  }
  path_pop(&cx->p, at_props);
  return 0;
}

static int check_enum(strict_cx *cx, const cJSON *en, int mask) {
  if (!cJSON_IsArray(en) || cJSON_GetArraySize(en) == 0)
    return refuse(cx, "enum must be a non-empty list");
  int i = 0, n = 0;
  long chars = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, en) {
    size_t old = path_add(&cx->p, ".enum", NULL, NULL);
    path_index(&cx->p, i++);
    if (cJSON_IsObject(x) || cJSON_IsArray(x))
      return refuse(cx, "enum values must be strings, numbers, booleans or null");
    if (mask > 0 && !type_matches(x, mask)) {
      char got[64], want[64];
      render(x, got, sizeof got);
      mask_names(mask, want, sizeof want);
      return refuse(cx, "%s does not match the type (%s)", got, want);
    }
    if (cJSON_IsString(x)) chars += (long)strlen(x->valuestring);
    path_pop(&cx->p, old);
    n++;
  }
  if (n > BIG_ENUM && chars > BIG_ENUM_CHARS)
    return refuse(cx,
                  "an enum of %d values totals %ld characters; strict mode allows %d when an "
                  "enum has more than %d values",
                  n, chars, BIG_ENUM_CHARS, BIG_ENUM);
  cx->enums += n;
  cx->chars += chars;
  return 0;
}

static int check_node(strict_cx *cx, cJSON *s, int depth, int is_root) {
  if (!cJSON_IsObject(s)) {
    char got[64];
    render(s, got, sizeof got);
    return refuse(cx, "expected a schema (an object with a type), got %s", got);
  }
  const cJSON *kw;
  cJSON_ArrayForEach(kw, s) {
    const char *k = kw->string;
    const char *hint = refusal_hint(k);
    if (hint) return refuse(cx, "\"%s\" is not supported in strict mode; %s", k, hint);
    if (!known_keyword(k))
      return refuse(cx, "unknown keyword \"%s\" (strict mode supports type, properties, "
                        "required, items, enum, const, anyOf, $ref, $defs and the type-specific "
                        "limits)", k);
    if ((!strcmp(k, "description") || !strcmp(k, "title") || !strcmp(k, "pattern")) &&
        !cJSON_IsString(kw))
      return refuse(cx, "%s must be a string", k);
    if ((!strcmp(k, "minimum") || !strcmp(k, "maximum") || !strcmp(k, "exclusiveMinimum") ||
         !strcmp(k, "exclusiveMaximum") || !strcmp(k, "multipleOf")) &&
        !cJSON_IsNumber(kw))
      return refuse(cx, "%s must be a number", k);
    if ((!strcmp(k, "$defs") || !strcmp(k, "definitions")) && !is_root)
      return refuse(cx, "%s is only supported at the root of the schema", k);
  }
  if (check_count(cx, s, "minItems") || check_count(cx, s, "maxItems") ||
      check_count(cx, s, "minLength") || check_count(cx, s, "maxLength"))
    return -1;

  int mask = schema_types(s);
  if (mask < 0) {
    char got[64];
    render(cJSON_GetObjectItemCaseSensitive(s, "type"), got, sizeof got);
    return refuse(cx,
                  "type %s is not supported (expected string, number, integer, boolean, "
                  "object, array, null, or a list of them)",
                  got);
  }
  cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
  cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
  const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");

  if (is_root && (mask != T_OBJECT || ref || any))
    return refuse(cx,
                  "the root must be a schema with type: object (strict mode allows no other "
                  "type, union or anyOf at the root)");
  if (ref) {
    if (!cJSON_IsString(ref)) return refuse(cx, "$ref must be a string");
    if (ref->valuestring[0] != '#')
      return refuse(cx, "$ref \"%s\": only local references (\"#\", \"#/$defs/NAME\") are "
                        "supported", ref->valuestring);
    if (!resolve_ref(cx->root, ref->valuestring))
      return refuse(cx, "$ref \"%s\" does not resolve", ref->valuestring);
    cJSON_ArrayForEach(kw, s) {
      if (strcmp(kw->string, "$ref") && strcmp(kw->string, "description") &&
          strcmp(kw->string, "title"))
        return refuse(cx, "$ref cannot be combined with \"%s\" in strict mode", kw->string);
    }
    return 0;
  }
  if (!mask && !any && !en && !cn)
    return refuse(cx, "missing type (strict mode needs a type, enum, const, anyOf or $ref)");
  if (any) {
    if (!cJSON_IsArray(any) || cJSON_GetArraySize(any) == 0)
      return refuse(cx, "anyOf must be a non-empty list of schemas");
    int i = 0;
    cJSON *alt;
    cJSON_ArrayForEach(alt, any) {
      size_t old = path_add(&cx->p, ".anyOf", NULL, NULL);
      path_index(&cx->p, i++);
      if (check_node(cx, alt, depth, 0)) return -1;
      path_pop(&cx->p, old);
    }
  }
  if (en && check_enum(cx, en, mask)) return -1;
  if (cn) {
    char got[64];
    render(cn, got, sizeof got);
    if (cJSON_IsObject(cn) || cJSON_IsArray(cn))
      return refuse(cx, "const must be a string, number, boolean or null");
    if (mask > 0 && !type_matches(cn, mask))
      return refuse(cx, "const %s does not match the type", got);
    if (cJSON_IsString(cn)) cx->chars += (long)strlen(cn->valuestring);
  }
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
  if (fmt) {
    static const char *const formats[] = {"date-time", "time", "date",  "duration", "email",
                                          "hostname",  "ipv4", "ipv6",  "uuid"};
    int ok = 0;
    for (size_t i = 0; cJSON_IsString(fmt) && i < sizeof formats / sizeof formats[0]; i++)
      if (strcmp(fmt->valuestring, formats[i]) == 0) ok = 1;
    if (!ok) {
      char got[64];
      render(fmt, got, sizeof got);
      return refuse(cx, "format %s is not supported in strict mode (supported: date-time, "
                        "time, date, duration, email, hostname, ipv4, ipv6, uuid)", got);
    }
  }

  int is_obj = mask & T_OBJECT, is_arr = mask & T_ARRAY;
  if (!is_obj && (cJSON_GetObjectItemCaseSensitive(s, "properties") ||
                  cJSON_GetObjectItemCaseSensitive(s, "required") ||
                  cJSON_GetObjectItemCaseSensitive(s, "additionalProperties")))
    return refuse(cx, "properties, required and additionalProperties need type: object");
  if (!is_arr && cJSON_GetObjectItemCaseSensitive(s, "items"))
    return refuse(cx, "items needs type: array");
  if (is_obj && check_object(cx, s, depth + 1)) return -1;
  if (is_arr) {
    cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (!items) return refuse(cx, "an array needs items (the schema of its elements)");
    if (check_child(cx, items, depth, ".items")) return -1;
  }

  if (is_root) {
    const char *defkeys[] = {"$defs", "definitions"};
    for (int d = 0; d < 2; d++) {
      cJSON *defs = cJSON_GetObjectItemCaseSensitive(s, defkeys[d]);
      if (!defs) continue;
      size_t old = path_add(&cx->p, ".", defkeys[d], NULL);
      if (!cJSON_IsObject(defs)) return refuse(cx, "expected an object of named schemas");
      cJSON *def;
      cJSON_ArrayForEach(def, defs) {
        cx->chars += (long)strlen(def->string);
        size_t o2 = path_key(&cx->p, def->string);
        if (check_node(cx, def, depth, 0)) return -1;
        path_pop(&cx->p, o2);
      }
      path_pop(&cx->p, old);
    }
    if (cx->props > MAX_PROPERTIES)
      return refuse(cx, "%d object properties in total; strict mode allows at most %d",
                    cx->props, MAX_PROPERTIES);
    if (cx->enums > MAX_ENUM_VALUES)
      return refuse(cx, "%d enum values in total; strict mode allows at most %d", cx->enums,
                    MAX_ENUM_VALUES);
    if (cx->chars > MAX_TOTAL_CHARS)
      return refuse(cx,
                    "property names, definition names, enum and const values total %ld "
                    "characters; strict mode allows at most %d",
                    cx->chars, MAX_TOTAL_CHARS);
  }
  return 0;
}

int gpt_schema_strict(const cJSON *schema, cJSON **out, perr *e) {
  *out = NULL;
  strict_cx cx = {.e = e};
  path_add(&cx.p, "output_schema", NULL, NULL);
  if (!cJSON_IsObject(schema)) {
    char got[64];
    render(schema, got, sizeof got);
    return refuse(&cx, "expected a JSON Schema object, got %s", got);
  }
  cx.root = cJSON_Duplicate(schema, 1);
  if (!cx.root) return perr_set(e, "out of memory");
  if (check_node(&cx, cx.root, 0, 1)) {
    cJSON_Delete(cx.root);
    return -1;
  }
  *out = cx.root;
  return 0;
}

/* ---- the copy sent to the API ------------------------------------------ */

static void strip_local(cJSON *s) {
  if (!cJSON_IsObject(s)) return;
  cJSON_DeleteItemFromObjectCaseSensitive(s, "minLength");
  cJSON_DeleteItemFromObjectCaseSensitive(s, "maxLength");
  cJSON *x;
  cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(s, "properties")) strip_local(x);
  cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(s, "anyOf")) strip_local(x);
  cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(s, "$defs")) strip_local(x);
  cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(s, "definitions")) strip_local(x);
  strip_local(cJSON_GetObjectItemCaseSensitive(s, "items"));
}

cJSON *gpt_schema_wire(const cJSON *strict) {
  cJSON *w = cJSON_Duplicate(strict, 1);
  strip_local(w);
  return w;
}

/* ---- run-time validation ----------------------------------------------- */

typedef struct val_cx {
  const cJSON *root;
  perr *e; /* NULL while trying anyOf alternatives */
  path p;
  int hops;
} val_cx;

static int fail(val_cx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(val_cx *cx, const char *fmt, ...) {
  if (!cx->e) return -1;
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return perr_set(cx->e, "%s: %s", cx->p.s, msg);
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++;
  return n;
}

/* JSON Schema patterns are ECMA-262; POSIX ERE lacks the shorthand
 * classes, so \d \w \s (and negations) are spelled out.  Anything else that
 * ERE cannot take (lookaround, lazy quantifiers) fails to compile and the
 * pattern is then not checked: best effort, never a false refusal. */
static char *ere_from_ecma(const char *pat) {
  buf b;
  buf_init(&b, 65536);
  int in_class = 0;
  for (const char *c = pat; *c; c++) {
    if (*c == '\\' && c[1]) {
      const char *rep = NULL;
      switch (c[1]) {
        case 'd': rep = in_class ? "0-9" : "[0-9]"; break;
        case 'D': rep = in_class ? NULL : "[^0-9]"; break;
        case 'w': rep = in_class ? "[:alnum:]_" : "[[:alnum:]_]"; break;
        case 'W': rep = in_class ? NULL : "[^[:alnum:]_]"; break;
        case 's': rep = in_class ? "[:space:]" : "[[:space:]]"; break;
        case 'S': rep = in_class ? NULL : "[^[:space:]]"; break;
        default: break;
      }
      if (rep) {
        buf_adds(&b, rep);
      } else {
        buf_addc(&b, c[0]);
        buf_addc(&b, c[1]);
      }
      c++;
      continue;
    }
    if (*c == '[' && !in_class) in_class = 1;
    else if (*c == ']' && in_class) in_class = 0;
    buf_addc(&b, *c);
  }
  return buf_detach(&b, NULL);
}

/* 1 match, 0 no match, -1 the pattern cannot be checked here. */
static int pattern_matches(const char *pat, const char *s) {
  char *ere = ere_from_ecma(pat);
  if (!ere) return -1;
  regex_t re;
  int rc = regcomp(&re, ere, REG_EXTENDED | REG_NOSUB);
  free(ere);
  if (rc) return -1;
  rc = regexec(&re, s, 0, NULL, 0);
  regfree(&re);
  return rc == 0 ? 1 : rc == REG_NOMATCH ? 0 : -1;
}

static int validate(val_cx *cx, const cJSON *s, const cJSON *v);

static int type_fail(val_cx *cx, int mask, const cJSON *v) {
  char want[96], got[64];
  mask_names(mask, want, sizeof want);
  render(v, got, sizeof got);
  return fail(cx, "expected %s, got %s", want, got);
}

static int validate_any(val_cx *cx, const cJSON *any, const cJSON *v) {
  perr *saved = cx->e;
  const cJSON *alt, *only = NULL;
  int n = 0, typed = 0, mask = 0, all_typed = 1;
  cx->e = NULL;
  cJSON_ArrayForEach(alt, any) {
    size_t old = cx->p.len;
    int rc = validate(cx, alt, v);
    path_pop(&cx->p, old);
    if (rc == 0) {
      cx->e = saved;
      return 0;
    }
    n++;
    /* Which alternatives had the right type at least: the error of the only
     * such one is the useful message. */
    const cJSON *t = alt;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(t, "$ref");
    if (cJSON_IsString(ref)) t = resolve_ref(cx->root, ref->valuestring);
    int m = cJSON_IsObject(t) ? schema_types(t) : 0;
    if (m > 0) {
      mask |= m;
      if (type_matches(v, m)) typed++, only = alt;
    } else {
      all_typed = 0;
    }
  }
  cx->e = saved;
  if (typed == 1) return validate(cx, only, v);
  if (all_typed && !typed) return type_fail(cx, mask, v);
  char got[64];
  render(v, got, sizeof got);
  return fail(cx, "matches none of the %d anyOf alternatives, got %s", n, got);
}

static int validate_number(val_cx *cx, const cJSON *s, const cJSON *v) {
  double x = v->valuedouble;
  char got[64];
  render(v, got, sizeof got);
  const cJSON *k;
  if (cJSON_IsNumber(k = cJSON_GetObjectItemCaseSensitive(s, "minimum")) && x < k->valuedouble)
    return fail(cx, "expected >= %.15g, got %s", k->valuedouble, got);
  if (cJSON_IsNumber(k = cJSON_GetObjectItemCaseSensitive(s, "maximum")) && x > k->valuedouble)
    return fail(cx, "expected <= %.15g, got %s", k->valuedouble, got);
  if (cJSON_IsNumber(k = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum")) &&
      x <= k->valuedouble)
    return fail(cx, "expected > %.15g, got %s", k->valuedouble, got);
  if (cJSON_IsNumber(k = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum")) &&
      x >= k->valuedouble)
    return fail(cx, "expected < %.15g, got %s", k->valuedouble, got);
  if (cJSON_IsNumber(k = cJSON_GetObjectItemCaseSensitive(s, "multipleOf")) &&
      k->valuedouble > 0) {
    double q = x / k->valuedouble;
    /* Tolerance for decimal fractions such as 0.1 that doubles cannot hold. */
    if (fabs(q - nearbyint(q)) > 1e-9 * fmax(1.0, fabs(q)))
      return fail(cx, "expected a multiple of %.15g, got %s", k->valuedouble, got);
  }
  return 0;
}

static int validate_string(val_cx *cx, const cJSON *s, const cJSON *v) {
  size_t n = utf8_chars(v->valuestring);
  const cJSON *k;
  if (is_integral(k = cJSON_GetObjectItemCaseSensitive(s, "minLength")) &&
      (double)n < k->valuedouble)
    return fail(cx, "expected at least %.0f characters, got %zu", k->valuedouble, n);
  if (is_integral(k = cJSON_GetObjectItemCaseSensitive(s, "maxLength")) &&
      (double)n > k->valuedouble)
    return fail(cx, "expected at most %.0f characters, got %zu", k->valuedouble, n);
  k = cJSON_GetObjectItemCaseSensitive(s, "pattern");
  if (cJSON_IsString(k) && pattern_matches(k->valuestring, v->valuestring) == 0) {
    char got[64];
    render(v, got, sizeof got);
    return fail(cx, "expected a string matching /%s/, got %s", k->valuestring, got);
  }
  return 0;
}

static int validate_array(val_cx *cx, const cJSON *s, const cJSON *v) {
  int n = cJSON_GetArraySize(v);
  const cJSON *k;
  if (is_integral(k = cJSON_GetObjectItemCaseSensitive(s, "minItems")) &&
      (double)n < k->valuedouble)
    return fail(cx, "expected at least %.0f item%s, got %d", k->valuedouble,
                k->valuedouble == 1 ? "" : "s", n);
  if (is_integral(k = cJSON_GetObjectItemCaseSensitive(s, "maxItems")) &&
      (double)n > k->valuedouble)
    return fail(cx, "expected at most %.0f item%s, got %d", k->valuedouble,
                k->valuedouble == 1 ? "" : "s", n);
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
  if (!items) return 0;
  int i = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, v) {
    size_t old = path_index(&cx->p, i++);
    int saved = cx->hops;
    cx->hops = 0; /* a piece of the value was consumed: not a reference loop */
    int rc = validate(cx, items, x);
    cx->hops = saved;
    if (rc) return -1;
    path_pop(&cx->p, old);
  }
  return 0;
}

static int validate_object(val_cx *cx, const cJSON *s, const cJSON *v) {
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
  const cJSON *ap = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
  const cJSON *r, *x;
  cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "required")) {
    if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
      return fail(cx, "missing required property \"%s\"", r->valuestring);
  }
  cJSON_ArrayForEach(x, v) {
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(props, x->string);
    if (!sub) {
      if (cJSON_IsFalse(ap)) return fail(cx, "unexpected property \"%s\"", x->string);
      if (!cJSON_IsObject(ap)) continue;
      sub = ap;
    }
    size_t old = path_key(&cx->p, x->string);
    int saved = cx->hops;
    cx->hops = 0;
    int rc = validate(cx, sub, x);
    cx->hops = saved;
    if (rc) return -1;
    path_pop(&cx->p, old);
  }
  return 0;
}

static int validate(val_cx *cx, const cJSON *s, const cJSON *v) {
  if (cJSON_IsTrue(s)) return 0;
  if (cJSON_IsFalse(s)) return fail(cx, "no value is allowed here");
  if (!cJSON_IsObject(s)) return 0;

  const cJSON *ref = cJSON_GetObjectItemCaseSensitive(s, "$ref");
  if (cJSON_IsString(ref)) {
    const cJSON *t = resolve_ref(cx->root, ref->valuestring);
    if (!t) return fail(cx, "schema reference %s does not resolve", ref->valuestring);
    if (cx->hops >= MAX_REF_HOPS)
      return fail(cx, "schema references loop without describing a value (%s)",
                  ref->valuestring);
    cx->hops++;
    int rc = validate(cx, t, v);
    cx->hops--;
    if (rc) return -1;
  }
  int mask = schema_types(s);
  if (mask > 0 && !type_matches(v, mask)) return type_fail(cx, mask, v);

  const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
  if (cJSON_IsArray(en)) {
    int found = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, en) if (cJSON_Compare(x, v, 1)) found = 1;
    if (!found) {
      char list[300], one[64], got[64];
      size_t o = 0;
      int i = 0;
      list[0] = '\0';
      cJSON_ArrayForEach(x, en) {
        if (i++ == 8) {
          o += (size_t)snprintf(list + o, o < sizeof list ? sizeof list - o : 0, ", ...");
          break;
        }
        render(x, one, sizeof one);
        o += (size_t)snprintf(list + o, o < sizeof list ? sizeof list - o : 0, "%s%s",
                              i > 1 ? ", " : "", one);
      }
      render(v, got, sizeof got);
      return fail(cx, "expected one of %s, got %s", list, got);
    }
  }
  const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
  if (cn && !cJSON_Compare(cn, v, 1)) {
    char want[64], got[64];
    render(cn, want, sizeof want);
    render(v, got, sizeof got);
    return fail(cx, "expected %s, got %s", want, got);
  }
  const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
  if (cJSON_IsArray(any) && cJSON_GetArraySize(any) > 0 && validate_any(cx, any, v)) return -1;

  if (cJSON_IsNumber(v)) return validate_number(cx, s, v);
  if (cJSON_IsString(v)) return validate_string(cx, s, v);
  if (cJSON_IsArray(v)) return validate_array(cx, s, v);
  if (cJSON_IsObject(v)) return validate_object(cx, s, v);
  return 0;
}

int gpt_schema_validate(const cJSON *schema, const cJSON *value, perr *e) {
  val_cx cx = {.root = schema, .e = e};
  path_add(&cx.p, "$", NULL, NULL);
  return validate(&cx, schema, value);
}
