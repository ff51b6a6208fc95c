/*
 * yaml_doc: libyaml's event stream folded into a ynode tree.
 *
 * Design notes
 * - The whole file is read into memory first (capped at YDOC_MAX_FILE), so
 *   one code path serves files and strings, and a reader error (bad UTF-8),
 *   which libyaml reports as a byte offset only, can still be turned into a
 *   line and column by counting through the text.
 * - The tree is built by a recursive descent over events, bounded by
 *   YDOC_MAX_DEPTH so a hostile file of "[[[[..." cannot exhaust the stack
 *   (libyaml 0.2.5 has no nesting limit of its own).
 * - Refused, each with the position of the offending token: aliases and
 *   anchors (a recipe should read top to bottom without jumps), tags other
 *   than the standard !!str/!!seq/!!map (they would bypass the field
 *   tables' typing), non-scalar mapping keys, duplicate keys (the second
 *   one would silently win in most loaders), keys holding NUL, and more
 *   than one document per file.
 * - Positions are 1-based; libyaml's marks are 0-based.
 * - Scalars stay text.  `plain` records that the scalar was unquoted and
 *   untagged, which is what lets the YAML core schema make it a number,
 *   bool or null (ynode_to_json, and the field tables).
 *
 * Ownership: every ynode and its text/arrays belong to the root returned;
 * ynode_free releases the whole tree and accepts half-built nodes.
 */
#include "core/yaml_doc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YDOC_MAX_FILE (4u << 20) /* recipes are small; a cap keeps a mistake cheap */
#define YDOC_MAX_DEPTH 64

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_SEQ "tag:yaml.org,2002:seq"
#define TAG_MAP "tag:yaml.org,2002:map"

typedef struct ybuilder {
  yaml_parser_t parser;
  const char *name;
  const unsigned char *text;
  size_t len;
  perr *e;
} ybuilder;

void ynode_free(ynode *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n; i++) {
    if (n->items) ynode_free(n->items[i]);
    if (n->keys) ynode_free(n->keys[i]);
  }
  free(n->items);
  free(n->keys);
  free(n->text);
  free(n);
}

static int oom(ybuilder *b) { return perr_set(b->e, "%s: out of memory reading YAML", b->name); }

/* Line and column of a byte offset, for reader errors that carry no mark.
 * Columns count characters (UTF-8 lead bytes), as libyaml's marks do. */
static void offset_position(const ybuilder *b, size_t off, int *line, int *col) {
  int l = 1, c = 1;
  if (off > b->len) off = b->len;
  for (size_t i = 0; i < off; i++) {
    if (b->text[i] == '\n') {
      l++;
      c = 1;
    } else if ((b->text[i] & 0xC0) != 0x80) {
      c++;
    }
  }
  *line = l;
  *col = c;
}

static int parser_error(ybuilder *b) {
  yaml_parser_t *p = &b->parser;
  if (p->error == YAML_MEMORY_ERROR) return oom(b);
  if (p->error == YAML_READER_ERROR) {
    int line, col;
    offset_position(b, p->problem_offset, &line, &col);
    return perr_set(b->e, "%s:%d:%d: %s", b->name, line, col,
                    p->problem ? p->problem : "cannot read the text");
  }
  int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->context)
    return perr_set(b->e, "%s:%d:%d: %s (%s started at %d:%d)", b->name, line, col, problem,
                    p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
  return perr_set(b->e, "%s:%d:%d: %s", b->name, line, col, problem);
}

static int next_event(ybuilder *b, yaml_event_t *ev) {
  if (!yaml_parser_parse(&b->parser, ev)) return parser_error(b);
  return 0;
}

static int at_error(ybuilder *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int at_error(ybuilder *b, const yaml_mark_t *m, const char *fmt, ...) {
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return perr_set(b->e, "%s:%d:%d: %s", b->name, (int)m->line + 1, (int)m->column + 1, what);
}

/* Anchors and non-standard tags are refused where they appear. */
static int check_props(ybuilder *b, const yaml_event_t *ev, const yaml_char_t *anchor,
                       const yaml_char_t *tag, const char *allowed_tag) {
  if (anchor)
    return at_error(b, &ev->start_mark,
                    "anchor '&%.100s': anchors and aliases are not supported; repeat the value",
                    (const char *)anchor);
  if (tag && strcmp((const char *)tag, allowed_tag) != 0)
    return at_error(b, &ev->start_mark,
                    "tag '%.100s' is not supported; write the value without a tag",
                    (const char *)tag);
  return 0;
}

static ynode *new_node(ynode_kind kind, const yaml_mark_t *m) {
  ynode *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->kind = kind;
  n->line = (int)m->line + 1;
  n->col = (int)m->column + 1;
  return n;
}

static int push_child(ynode *parent, ynode *key, ynode *val, size_t *cap) {
  if (parent->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    ynode **items = realloc(parent->items, nc * sizeof *items);
    if (!items) return -1;
    parent->items = items;
    if (parent->kind == YN_MAP) {
      ynode **keys = realloc(parent->keys, nc * sizeof *keys);
      if (!keys) return -1;
      parent->keys = keys;
    }
    *cap = nc;
  }
  parent->items[parent->n] = val;
  if (parent->kind == YN_MAP) parent->keys[parent->n] = key;
  parent->n++;
  return 0;
}

static int build_node(ybuilder *b, yaml_event_t *ev, int depth, ynode **out);

static int build_scalar(ybuilder *b, yaml_event_t *ev, ynode **out) {
  if (check_props(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag, TAG_STR)) return -1;
  ynode *n = new_node(YN_SCALAR, &ev->start_mark);
  if (!n) return oom(b);
  n->len = ev->data.scalar.length;
  n->text = malloc(n->len + 1);
  if (!n->text) {
    ynode_free(n);
    return oom(b);
  }
  if (n->len) memcpy(n->text, ev->data.scalar.value, n->len);
  n->text[n->len] = '\0';
  /* A !!str tag turns a plain scalar into text, like quotes do. */
  n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
  *out = n;
  return 0;
}

static int build_seq(ybuilder *b, yaml_event_t *start, int depth, ynode **out) {
  if (check_props(b, start, start->data.sequence_start.anchor, start->data.sequence_start.tag,
                  TAG_SEQ))
    return -1;
  ynode *n = new_node(YN_SEQ, &start->start_mark);
  if (!n) return oom(b);
  size_t cap = 0;
  for (;;) {
    yaml_event_t ev;
    if (next_event(b, &ev)) goto fail;
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    ynode *item = NULL;
    int rc = build_node(b, &ev, depth + 1, &item);
    yaml_event_delete(&ev);
    if (rc) goto fail;
    if (push_child(n, NULL, item, &cap)) {
      ynode_free(item);
      oom(b);
      goto fail;
    }
  }
  *out = n;
  return 0;
fail:
  ynode_free(n);
  return -1;
}

static int build_map(ybuilder *b, yaml_event_t *start, int depth, ynode **out) {
  if (check_props(b, start, start->data.mapping_start.anchor, start->data.mapping_start.tag,
                  TAG_MAP))
    return -1;
  ynode *n = new_node(YN_MAP, &start->start_mark);
  if (!n) return oom(b);
  size_t cap = 0;
  for (;;) {
    yaml_event_t ev;
    if (next_event(b, &ev)) goto fail;
    if (ev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    if (ev.type != YAML_SCALAR_EVENT) {
      /* An alias key gets the alias message; anything else is a complex key. */
      if (ev.type == YAML_ALIAS_EVENT)
        build_node(b, &ev, depth + 1, NULL);
      else if (ev.type == YAML_MAPPING_START_EVENT &&
               ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE &&
               start->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE)
        /* `message: {{event.n}}` reads as a mapping inside a mapping: the
         * classic unquoted-template mistake, so say so. */
        at_error(b, &ev.start_mark,
                 "a mapping key must be a plain string, not a list or mapping (a value that "
                 "starts with '{{' must be quoted: \"{{...}}\")");
      else
        at_error(b, &ev.start_mark, "a mapping key must be a plain string, not a list or mapping");
      yaml_event_delete(&ev);
      goto fail;
    }
    ynode *key = NULL;
    int rc = build_scalar(b, &ev, &key);
    yaml_event_delete(&ev);
    if (rc) goto fail;
    if (memchr(key->text, '\0', key->len)) {
      perr_set(b->e, "%s:%d:%d: a mapping key may not contain a NUL character", b->name, key->line,
               key->col);
      ynode_free(key);
      goto fail;
    }
    for (size_t i = 0; i < n->n; i++) {
      const ynode *k = n->keys[i];
      if (k->len == key->len && memcmp(k->text, key->text, k->len) == 0) {
        perr_set(b->e, "%s:%d:%d: duplicate key '%.100s' (first at %d:%d)", b->name, key->line,
                 key->col, key->text, k->line, k->col);
        ynode_free(key);
        goto fail;
      }
    }
    ynode *val = NULL;
    if (next_event(b, &ev)) {
      ynode_free(key);
      goto fail;
    }
    rc = build_node(b, &ev, depth + 1, &val);
    yaml_event_delete(&ev);
    if (rc) {
      ynode_free(key);
      goto fail;
    }
    if (push_child(n, key, val, &cap)) {
      ynode_free(key);
      ynode_free(val);
      oom(b);
      goto fail;
    }
  }
  *out = n;
  return 0;
fail:
  ynode_free(n);
  return -1;
}

/* Builds the node that starts with ev (which the caller deletes). */
static int build_node(ybuilder *b, yaml_event_t *ev, int depth, ynode **out) {
  if (depth > YDOC_MAX_DEPTH)
    return perr_set(b->e, "%s:%d:%d: nested deeper than %d levels", b->name,
                    (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1, YDOC_MAX_DEPTH);
  switch (ev->type) {
    case YAML_SCALAR_EVENT: return build_scalar(b, ev, out);
    case YAML_SEQUENCE_START_EVENT: return build_seq(b, ev, depth, out);
    case YAML_MAPPING_START_EVENT: return build_map(b, ev, depth, out);
    case YAML_ALIAS_EVENT:
      return at_error(b, &ev->start_mark,
                      "alias '*%.100s': anchors and aliases are not supported; repeat the value",
                      (const char *)ev->data.alias.anchor);
    default: return at_error(b, &ev->start_mark, "unexpected YAML event");
  }
}

int ydoc_load_string(const char *text, size_t len, const char *name, ynode **root, perr *e) {
  ybuilder b = {
      .name = name ? name : "<string>", .text = (const unsigned char *)text, .len = len, .e = e};
  ynode *doc = NULL;
  yaml_event_t ev;
  *root = NULL;
  if (!yaml_parser_initialize(&b.parser)) return oom(&b);
  yaml_parser_set_input_string(&b.parser, b.text, len);

  if (next_event(&b, &ev)) goto fail; /* STREAM-START */
  yaml_event_delete(&ev);
  if (next_event(&b, &ev)) goto fail;
  if (ev.type == YAML_STREAM_END_EVENT) {
    /* An empty file is an empty (null) document, as in YAML itself; the
     * caller's type check then says what was expected. */
    doc = new_node(YN_SCALAR, &ev.start_mark);
    yaml_event_delete(&ev);
    if (!doc || !(doc->text = calloc(1, 1))) {
      oom(&b);
      goto fail;
    }
    doc->line = doc->col = 1;
    doc->plain = 1;
    yaml_parser_delete(&b.parser);
    *root = doc;
    return 0;
  }
  yaml_event_delete(&ev); /* DOCUMENT-START */
  if (next_event(&b, &ev)) goto fail;
  int rc = build_node(&b, &ev, 1, &doc);
  yaml_event_delete(&ev);
  if (rc) goto fail;
  if (next_event(&b, &ev)) goto fail; /* DOCUMENT-END */
  yaml_event_delete(&ev);
  if (next_event(&b, &ev)) goto fail;
  if (ev.type != YAML_STREAM_END_EVENT) {
    at_error(&b, &ev.start_mark, "only one YAML document per file; a second one starts here");
    yaml_event_delete(&ev);
    goto fail;
  }
  yaml_event_delete(&ev);
  yaml_parser_delete(&b.parser);
  *root = doc;
  return 0;
fail:
  yaml_parser_delete(&b.parser);
  ynode_free(doc);
  return -1;
}

int ydoc_load_file(const char *path, ynode **root, perr *e) {
  *root = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return perr_set(e, "%s: %s", path, strerror(errno));
  size_t cap = 0, n = 0;
  char *text = NULL;
  int err = 0, too_big = 0;
  for (;;) {
    if (n == cap) {
      if (cap == YDOC_MAX_FILE) {
        /* Full at the cap: one more byte means the file is over it. */
        too_big = fgetc(f) != EOF;
        break;
      }
      size_t nc = cap ? cap * 2 : 4096;
      if (nc > YDOC_MAX_FILE) nc = YDOC_MAX_FILE;
      char *t = realloc(text, nc);
      if (!t) {
        err = ENOMEM;
        break;
      }
      text = t;
      cap = nc;
    }
    size_t r = fread(text + n, 1, cap - n, f);
    n += r;
    if (r == 0) {
      if (ferror(f)) err = errno ? errno : EIO;
      break;
    }
  }
  fclose(f);
  if (too_big) {
    free(text);
    return perr_set(e, "%s: larger than %u MiB; a recipe is expected to be small", path,
                    YDOC_MAX_FILE >> 20);
  }
  if (err) {
    free(text);
    return perr_set(e, "%s: %s", path, strerror(err));
  }
  int rc = ydoc_load_string(text ? text : "", n, path, root, e);
  free(text);
  return rc;
}

const ynode *ynode_get(const ynode *map, const char *key) {
  if (!map || map->kind != YN_MAP) return NULL;
  size_t kl = strlen(key);
  for (size_t i = 0; i < map->n; i++)
    if (map->keys[i]->len == kl && memcmp(map->keys[i]->text, key, kl) == 0) return map->items[i];
  return NULL;
}

/* YAML 1.2 core schema resolution of plain scalars. */
static int is_null_text(const char *s) {
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int bool_text(const char *s) {
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return 1;
  if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return 0;
  return -1;
}

static int all_in(const char *s, const char *set) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!strchr(set, *s)) return 0;
  return 1;
}

/* 1 and *v when s is a core-schema integer (decimal, 0o octal, 0x hex). */
static int int_text(const char *s, double *v) {
  const char *p = s;
  int neg = 0;
  unsigned long long base = 10;
  if (!strncmp(s, "0o", 2) && all_in(s + 2, "01234567")) {
    base = 8;
    p = s + 2;
  } else if (!strncmp(s, "0x", 2) && all_in(s + 2, "0123456789abcdefABCDEF")) {
    base = 16;
    p = s + 2;
  } else {
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (!all_in(p, "0123456789")) return 0;
  }
  errno = 0;
  char *end;
  unsigned long long u = strtoull(p, &end, (int)base);
  if (errno || *end) {
    *v = neg ? -HUGE_VAL : HUGE_VAL;
    return 1;
  }
  *v = neg ? -(double)u : (double)u;
  return 1;
}

/* 1 and *v when s is a core-schema float; .inf/.nan are recognised but
 * reported as not finite through *v. */
static int float_text(const char *s, double *v) {
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
    *v = *s == '-' ? -HUGE_VAL : HUGE_VAL;
    return 1;
  }
  if (p == s && (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))) {
    *v = NAN;
    return 1;
  }
  /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
  const char *q = p;
  size_t digits = 0;
  while (*q >= '0' && *q <= '9') q++, digits++;
  if (*q == '.') {
    q++;
    size_t frac = 0;
    while (*q >= '0' && *q <= '9') q++, frac++;
    if (!digits && !frac) return 0;
  } else if (!digits) {
    return 0;
  }
  if (*q == 'e' || *q == 'E') {
    q++;
    if (*q == '-' || *q == '+') q++;
    if (!(*q >= '0' && *q <= '9')) return 0;
    while (*q >= '0' && *q <= '9') q++;
  }
  if (*q) return 0;
  char *end;
  *v = strtod(s, &end);
  return 1;
}

/* Integers beyond 2^53 would silently lose digits as a JSON number. */
#define EXACT_LIMIT 9007199254740992.0

static cJSON *scalar_to_json(const ynode *n) {
  if (!n->plain) return cJSON_CreateString(n->text);
  if (is_null_text(n->text)) return cJSON_CreateNull();
  int bv = bool_text(n->text);
  if (bv >= 0) return cJSON_CreateBool(bv);
  double v;
  if (int_text(n->text, &v)) {
    if (fabs(v) <= EXACT_LIMIT) return cJSON_CreateNumber(v);
    return cJSON_CreateString(n->text);
  }
  if (float_text(n->text, &v) && isfinite(v)) return cJSON_CreateNumber(v);
  return cJSON_CreateString(n->text);
}

cJSON *ynode_to_json(const ynode *n) {
  if (!n) return NULL;
  if (n->kind == YN_SCALAR) return scalar_to_json(n);
  cJSON *out = n->kind == YN_MAP ? cJSON_CreateObject() : cJSON_CreateArray();
  if (!out) return NULL;
  for (size_t i = 0; i < n->n; i++) {
    cJSON *child = ynode_to_json(n->items[i]);
    if (!child) {
      cJSON_Delete(out);
      return NULL;
    }
    if (n->kind == YN_MAP) {
      if (!cJSON_AddItemToObject(out, n->keys[i]->text, child)) {
        cJSON_Delete(child);
        cJSON_Delete(out);
        return NULL;
      }
    } else if (!cJSON_AddItemToArray(out, child)) {
      cJSON_Delete(child);
      cJSON_Delete(out);
      return NULL;
    }
  }
  return out;
}

const char *ynode_kind_name(const ynode *n) {
  if (!n) return "nothing";
  switch (n->kind) {
    case YN_MAP: return "a mapping";
    case YN_SEQ: return "a list";
    case YN_SCALAR: break;
  }
  if (!n->plain) return "a string";
  if (is_null_text(n->text)) return "null";
  if (bool_text(n->text) >= 0) return "a boolean";
  double v;
  if (int_text(n->text, &v)) return "an integer";
  if (float_text(n->text, &v)) return "a number";
  return "a string";
}

int ynode_is_null(const ynode *n) {
  return n && n->kind == YN_SCALAR && n->plain && is_null_text(n->text);
}

int ynode_bool(const ynode *n) {
  if (!n || n->kind != YN_SCALAR || !n->plain) return -1;
  return bool_text(n->text);
}

int ynode_number(const ynode *n, double *v, int *is_int) {
  if (!n || n->kind != YN_SCALAR || !n->plain) return 0;
  if (int_text(n->text, v)) {
    *is_int = 1;
    return 1;
  }
  if (float_text(n->text, v)) {
    *is_int = 0;
    return 1;
  }
  return 0;
}
