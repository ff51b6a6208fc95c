/*
 * template: the Mustache engine behind every prompt, message and body a
 * recipe renders.
 *
 * DESIGN
 *
 * A template is compiled into a flat array of nodes (text, escaped variable,
 * raw variable, section, inverted section, partial) and then walked.  Two
 * passes keep the hard parts apart: the parser alone deals with delimiters
 * and the standalone-line rules, so the renderer never looks at raw syntax.
 *
 *   source --parse()--> tree { node[] } --render_range()--> buf
 *
 * Parsing is a single forward scan with no recursion: open sections sit on
 * a fixed stack (at most MAX_NESTING deep) and each section node records the
 * index one past its last child (end), so a section's children are simply
 * nodes[i + 1 .. end).  Names and text point into the source, which must
 * outlive the tree; nothing is copied.
 *
 * Standalone tags (comment, section open/close, inverted, partial, set
 * delimiter) that are alone on their line, apart from spaces and tabs, take
 * the whole line with them: the parser trims the whitespace before the tag
 * from the preceding text node and skips past the line end ("\n" or "\r\n",
 * or the end of the source).  Because the check looks at the source itself,
 * another tag on the same line (even one that renders nothing) makes both
 * tags inline, as the spec requires.
 *
 * Partials are indented the way the spec's reference does it: the
 * whitespace before a standalone partial tag is inserted at the start of
 * every line of the partial's *source* before it is parsed, so standalone
 * lines inside it still vanish and nested partials accumulate indentation.
 * Each (name, indent) pair is parsed once per render call and cached in the
 * render state; the cache owns the indented copies.  Set delimiters never
 * leak into or out of a partial: every source starts with {{ }}.
 *
 * Names: "." is the top of the context stack; "a.b.c" finds "a" in the
 * innermost context object that has it, then descends without searching
 * again (a broken chain is a miss, never a fall-back to an outer context).
 * After the first segment, a decimal segment indexes an array, as jpath
 * does for recipe paths ("event.items.0.sku").
 *
 * Truthiness for sections: missing, null, false, "" and [] are false;
 * everything else (0 included: a score of 0 is still a score) is true.
 * A non-empty array repeats the section once per element with the element
 * pushed; any other true value is pushed once.
 *
 * Values: strings as is, numbers in the shortest form that reads back to
 * the same double (integral values below 1e21 without a decimal point or
 * exponent), true/false, null/missing as "", objects and arrays as compact
 * JSON (cJSON's printer) and then escaped like any text.
 *
 * Bounds: partial nesting is limited by max_depth and the bytes this call
 * appends by max_output, on top of out's own cap.  Section nesting inside
 * one source is limited to MAX_NESTING, so the renderer's recursion is at
 * most MAX_NESTING * (max_depth + 1) frames.  On any render error the bytes
 * this call appended are removed again (unless the buffer itself failed and
 * released everything), so a caller sees either the whole output or none.
 *
 * Errors name where: "line L, column C: what" for the template itself and
 * "partial 'x', line L, column C: what" inside a partial.  Columns count
 * UTF-8 characters, 1-based.  Partial syntax errors are reported against
 * the partial's own text, not its indented copy.
 */
#include "core/template.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_OUTPUT ((size_t)1 << 20)
#define DEFAULT_MAX_DEPTH 16
#define MAX_NESTING 256
#define MAX_DELIM 16

typedef enum { N_TEXT, N_ESC, N_RAW, N_SECTION, N_INVERTED, N_PARTIAL } node_kind;

typedef struct node {
  node_kind kind;
  const char *s; /* text, or the tag's name */
  size_t len;
  size_t at;  /* offset in the source, for messages */
  size_t end; /* sections: index one past the last child */
  const char *indent; /* standalone partials: the whitespace before the tag */
  size_t indent_len;
} node;

typedef struct tree {
  node *v;
  size_t n, cap;
  const char *src;
  size_t len;
} tree;

/* ---- positions ---------------------------------------------------------- */

static void line_col(const char *src, size_t at, size_t *line, size_t *col) {
  size_t l = 1, c = 1;
  for (size_t i = 0; i < at; i++) {
    unsigned char ch = (unsigned char)src[i];
    if (ch == '\n') {
      l++;
      c = 1;
    } else if ((ch & 0xC0) != 0x80) {
      c++;
    }
  }
  *line = l;
  *col = c;
}

/* Formats "[partial 'x', ]line L, column C: " + what into e. */
static int where_err(perr *e, const char *pname, const char *src, size_t at, const char *what) {
  size_t l, c;
  line_col(src, at, &l, &c);
  if (pname) return perr_set(e, "partial '%s', line %zu, column %zu: %s", pname, l, c, what);
  return perr_set(e, "line %zu, column %zu: %s", l, c, what);
}

/* ---- parser ------------------------------------------------------------- */

static void tree_free(tree *t) {
  free(t->v);
  t->v = NULL;
  t->n = t->cap = 0;
}

static node *tree_push(tree *t, node_kind k, const char *s, size_t len, size_t at) {
  if (t->n == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 16;
    node *p = realloc(t->v, ncap * sizeof *p);
    if (!p) return NULL;
    t->v = p;
    t->cap = ncap;
  }
  node *nd = &t->v[t->n++];
  memset(nd, 0, sizeof *nd);
  nd->kind = k;
  nd->s = s;
  nd->len = len;
  nd->at = at;
  return nd;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static void trim(const char **s, size_t *n) {
  while (*n && is_space(**s)) (*s)++, (*n)--;
  while (*n && is_space((*s)[*n - 1])) (*n)--;
}

/* Splits "OPEN CLOSE" into two delimiters; 0 when well formed. */
static int parse_delims(const char *s, size_t n, char *o, size_t *olen, char *c, size_t *clen) {
  trim(&s, &n);
  size_t i = 0;
  while (i < n && !is_space(s[i])) i++;
  size_t a = i;
  while (i < n && is_space(s[i])) i++;
  const char *s2 = s + i;
  size_t b = n - i;
  if (a == 0 || b == 0 || a > MAX_DELIM || b > MAX_DELIM) return -1;
  for (size_t k = 0; k < b; k++)
    if (is_space(s2[k])) return -1;
  if (memchr(s, '=', a) || memchr(s2, '=', b)) return -1;
  memcpy(o, s, a);
  *olen = a;
  memcpy(c, s2, b);
  *clen = b;
  return 0;
}

/* The message of a parse error; pname prefixes errors inside partials. */
static int parse(const char *src, size_t len, const char *pname, tree *t, perr *e) {
  char otag[MAX_DELIM] = "{{", ctag[MAX_DELIM + 1] = "}}";
  size_t olen = 2, clen = 2;
  size_t open[MAX_NESTING];
  size_t depth = 0;
  size_t pos = 0; /* where text resumes */
  char what[256];

  t->v = NULL;
  t->n = t->cap = 0;
  t->src = src;
  t->len = len;

  for (;;) {
    const char *o = pos < len ? memmem(src + pos, len - pos, otag, olen) : NULL;
    if (!o) {
      if (pos < len && !tree_push(t, N_TEXT, src + pos, len - pos, pos)) goto oom;
      break;
    }
    size_t at = (size_t)(o - src);
    size_t p = at + olen;
    char type = p < len ? src[p] : '\0';
    if (type && strchr("!#^/>=&{", type))
      p++;
    else
      type = '\0';

    /* A triple mustache ends in "}" + ctag and a delimiter change in
     * "=" + ctag; both are searched as one string. */
    char close[MAX_DELIM + 1];
    size_t closelen = 0;
    if (type == '{' || type == '=') close[closelen++] = type == '{' ? '}' : '=';
    memcpy(close + closelen, ctag, clen);
    closelen += clen;
    const char *c = p <= len ? memmem(src + p, len - p, close, closelen) : NULL;
    if (!c) {
      snprintf(what, sizeof what, "unclosed tag '%.*s'", (int)olen, otag);
      where_err(e, pname, src, at, what);
      goto fail;
    }
    const char *name = src + p;
    size_t nlen = (size_t)(c - name);
    size_t after = (size_t)(c - src) + closelen;
    trim(&name, &nlen);

    /* Standalone: only blanks between the line start and the tag, and
     * between the tag and the line end. */
    size_t text_end = at, next = after;
    const char *indent = NULL;
    size_t indent_len = 0;
    if (type && type != '&' && type != '{') {
      size_t ls = at;
      while (ls > pos && is_blank(src[ls - 1])) ls--;
      if (ls == 0 || src[ls - 1] == '\n') {
        size_t q = after;
        while (q < len && is_blank(src[q])) q++;
        int eol = 0;
        if (q == len) {
          eol = 1;
        } else if (src[q] == '\n') {
          eol = 1;
          q++;
        } else if (src[q] == '\r' && q + 1 < len && src[q + 1] == '\n') {
          eol = 1;
          q += 2;
        }
        if (eol) {
          text_end = ls;
          next = q;
          indent = src + ls;
          indent_len = at - ls;
        }
      }
    }
    if (text_end > pos && !tree_push(t, N_TEXT, src + pos, text_end - pos, pos)) goto oom;
    pos = next;

    if (type != '!' && type != '=' && nlen == 0) {
      where_err(e, pname, src, at, "empty tag name");
      goto fail;
    }
    switch (type) {
    case '!':
      break;
    case '=':
      if (parse_delims(name, nlen, otag, &olen, ctag, &clen)) {
        where_err(e, pname, src, at,
                  "bad delimiter change (expected two delimiters without spaces or '=', "
                  "like {{=<% %>=}})");
        goto fail;
      }
      break;
    case '#':
    case '^':
      if (depth == MAX_NESTING) {
        snprintf(what, sizeof what, "sections nested more than %d deep", MAX_NESTING);
        where_err(e, pname, src, at, what);
        goto fail;
      }
      if (!tree_push(t, type == '#' ? N_SECTION : N_INVERTED, name, nlen, at)) goto oom;
      open[depth++] = t->n - 1;
      break;
    case '/': {
      if (depth == 0) {
        snprintf(what, sizeof what, "'/%.*s' closes no open section", (int)nlen, name);
        where_err(e, pname, src, at, what);
        goto fail;
      }
      node *sec = &t->v[open[depth - 1]];
      if (sec->len != nlen || memcmp(sec->s, name, nlen) != 0) {
        size_t l, col;
        line_col(src, sec->at, &l, &col);
        snprintf(what, sizeof what,
                 "mismatched section close '/%.*s': the open section is '%.*s' "
                 "(line %zu, column %zu)",
                 (int)nlen, name, (int)sec->len, sec->s, l, col);
        where_err(e, pname, src, at, what);
        goto fail;
      }
      sec->end = t->n;
      depth--;
      break;
    }
    case '>': {
      node *nd = tree_push(t, N_PARTIAL, name, nlen, at);
      if (!nd) goto oom;
      nd->indent = indent;
      nd->indent_len = indent_len;
      break;
    }
    default:
      if (!tree_push(t, type ? N_RAW : N_ESC, name, nlen, at)) goto oom;
      break;
    }
  }
  if (depth) {
    const node *sec = &t->v[open[depth - 1]];
    snprintf(what, sizeof what, "unclosed section '%.*s'", (int)sec->len, sec->s);
    where_err(e, pname, src, sec->at, what);
    goto fail;
  }
  return 0;

oom:
  perr_set(e, "out of memory parsing a template");
fail:
  tree_free(t);
  return -1;
}

/* ---- render state ------------------------------------------------------- */

typedef struct pcache {
  struct pcache *next;
  char *name;
  char *indent;
  size_t indent_len;
  char *owned; /* the indented copy of the partial's text, when indented */
  tree t;
} pcache;

typedef struct rstate {
  const tpl_opts *o;
  tpl_escape esc;
  size_t max_output;
  int max_depth;
  buf *out;
  size_t start; /* out->len when the call began */
  perr *e;
  const cJSON **stack;
  size_t sn, scap;
  pcache *cache;
  /* where the node being rendered lives, for messages */
  const char *pname;
  const tree *cur;
  size_t at;
} rstate;

static int render_err(rstate *st, const char *what) {
  return where_err(st->e, st->pname, st->cur->src, st->at, what);
}

static int put(rstate *st, const char *s, size_t n) {
  if (n == 0) return 0;
  if (n > st->max_output - (st->out->len - st->start)) {
    char what[128];
    snprintf(what, sizeof what, "rendered output exceeds %zu bytes", st->max_output);
    return render_err(st, what);
  }
  size_t room = st->out->failed ? 0 : st->out->max - st->out->len;
  if (buf_add(st->out, s, n)) {
    if (n > room) return render_err(st, "rendered output exceeds the buffer's limit");
    return render_err(st, "out of memory rendering a template");
  }
  return 0;
}

static int put_escaped(rstate *st, const char *s, size_t n) {
  if (st->esc == TPL_ESCAPE_NONE) return put(st, s, n);
  size_t run = 0; /* start of the pending unescaped run */
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    const char *rep = NULL;
    char hex[8];
    if (st->esc == TPL_ESCAPE_HTML) {
      switch (ch) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      default: break;
      }
    } else {
      switch (ch) {
      case '"': rep = "\\\""; break;
      case '\\': rep = "\\\\"; break;
      case '\n': rep = "\\n"; break;
      case '\r': rep = "\\r"; break;
      case '\t': rep = "\\t"; break;
      case '\b': rep = "\\b"; break;
      case '\f': rep = "\\f"; break;
      default:
        if (ch < 0x20) {
          snprintf(hex, sizeof hex, "\\u%04x", (unsigned)ch);
          rep = hex;
        }
        break;
      }
    }
    if (!rep) continue;
    if (put(st, s + run, i - run) || put(st, rep, strlen(rep))) return -1;
    run = i + 1;
  }
  return put(st, s + run, n - run);
}

/* Shortest text that reads back as the same double; integers plain. */
static void format_number(double d, char *out, size_t n) {
  if (isnan(d) || isinf(d)) {
    snprintf(out, n, "null"); /* what cJSON prints for them */
    return;
  }
  if (d == 0) {
    snprintf(out, n, "0"); /* no "-0" */
    return;
  }
  if (d == floor(d) && fabs(d) < 1e21) {
    snprintf(out, n, "%.0f", d);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, d);
    if (strtod(out, NULL) == d) return;
  }
}

static int put_value(rstate *st, const cJSON *v, int raw) {
  if (!v || cJSON_IsNull(v) || cJSON_IsInvalid(v)) return 0;
  if (cJSON_IsString(v) || cJSON_IsRaw(v)) {
    const char *s = v->valuestring ? v->valuestring : "";
    return raw ? put(st, s, strlen(s)) : put_escaped(st, s, strlen(s));
  }
  if (cJSON_IsNumber(v)) {
    char num[64];
    format_number(v->valuedouble, num, sizeof num);
    return put(st, num, strlen(num)); /* digits never need escaping */
  }
  if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? put(st, "true", 4) : put(st, "false", 5);
  char *json = cJSON_PrintUnformatted(v);
  if (!json) return render_err(st, "out of memory rendering a value as JSON");
  int r = raw ? put(st, json, strlen(json)) : put_escaped(st, json, strlen(json));
  cJSON_free(json);
  return r;
}

/* ---- lookup ------------------------------------------------------------- */

static const cJSON *member(const cJSON *obj, const char *s, size_t n) {
  const cJSON *c;
  cJSON_ArrayForEach(c, obj) {
    if (c->string && strlen(c->string) == n && memcmp(c->string, s, n) == 0) return c;
  }
  return NULL;
}

static const cJSON *element(const cJSON *arr, const char *s, size_t n) {
  if (n == 0 || n > 9) return NULL;
  int idx = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return NULL;
    idx = idx * 10 + (s[i] - '0');
  }
  return cJSON_GetArrayItem(arr, idx);
}

static const cJSON *lookup(const rstate *st, const char *name, size_t n) {
  if (n == 1 && name[0] == '.') return st->sn ? st->stack[st->sn - 1] : NULL;
  const char *dot = memchr(name, '.', n);
  size_t seg = dot ? (size_t)(dot - name) : n;
  const cJSON *v = NULL;
  for (size_t i = st->sn; i-- > 0 && !v;)
    if (cJSON_IsObject(st->stack[i])) v = member(st->stack[i], name, seg);
  while (v && dot) {
    const char *s = dot + 1;
    size_t rest = n - (size_t)(s - name);
    dot = memchr(s, '.', rest);
    seg = dot ? (size_t)(dot - s) : rest;
    if (cJSON_IsObject(v))
      v = member(v, s, seg);
    else if (cJSON_IsArray(v))
      v = element(v, s, seg);
    else
      v = NULL;
  }
  return v;
}

static int truthy(const cJSON *v) {
  if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v) || cJSON_IsInvalid(v)) return 0;
  if (cJSON_IsArray(v)) return v->child != NULL;
  if (cJSON_IsString(v)) return v->valuestring && v->valuestring[0];
  return 1;
}

static int push(rstate *st, const cJSON *v) {
  if (st->sn == st->scap) {
    size_t ncap = st->scap ? st->scap * 2 : 16;
    const cJSON **p = realloc(st->stack, ncap * sizeof *p);
    if (!p) return render_err(st, "out of memory rendering a section");
    st->stack = p;
    st->scap = ncap;
  }
  st->stack[st->sn++] = v;
  return 0;
}

/* ---- partials ----------------------------------------------------------- */

/* The partial's text with indent inserted at the start of every line. */
static char *indent_text(const char *s, size_t n, const char *ind, size_t ilen, size_t *outlen) {
  size_t lines = 1;
  for (size_t i = 0; i + 1 < n; i++)
    if (s[i] == '\n') lines++;
  if (lines > (SIZE_MAX - n - 1) / ilen) return NULL;
  size_t total = n + lines * ilen;
  char *p = malloc(total + 1);
  if (!p) return NULL;
  size_t k = 0;
  memcpy(p, ind, ilen);
  k = ilen;
  for (size_t i = 0; i < n; i++) {
    p[k++] = s[i];
    if (s[i] == '\n' && i + 1 < n) {
      memcpy(p + k, ind, ilen);
      k += ilen;
    }
  }
  p[k] = '\0';
  *outlen = k;
  return p;
}

static void cache_free(pcache *c) {
  while (c) {
    pcache *next = c->next;
    tree_free(&c->t);
    free(c->name);
    free(c->indent);
    free(c->owned);
    free(c);
    c = next;
  }
}

/* The parsed partial for (name, indent), parsing it on first use; *out is
 * NULL when the partial does not exist. */
static int partial_tree(rstate *st, const node *nd, const char *name, const tree **out) {
  *out = NULL;
  for (pcache *c = st->cache; c; c = c->next) {
    if (strcmp(c->name, name) == 0 && c->indent_len == nd->indent_len &&
        memcmp(c->indent, nd->indent ? nd->indent : "", nd->indent_len) == 0) {
      *out = &c->t;
      return 0;
    }
  }
  size_t plen = 0;
  const char *ptxt = st->o->partial ? st->o->partial(st->o->partial_ud, name, &plen) : NULL;
  if (!ptxt) return 0;

  pcache *c = calloc(1, sizeof *c);
  if (!c) return render_err(st, "out of memory loading a partial");
  c->name = strdup(name);
  c->indent = malloc(nd->indent_len + 1);
  c->indent_len = nd->indent_len;
  if (!c->name || !c->indent) goto oom;
  if (nd->indent_len) memcpy(c->indent, nd->indent, nd->indent_len);
  c->indent[nd->indent_len] = '\0';

  const char *src = ptxt;
  size_t slen = plen;
  if (nd->indent_len && plen) {
    c->owned = indent_text(ptxt, plen, nd->indent, nd->indent_len, &slen);
    if (!c->owned) goto oom;
    src = c->owned;
  }
  if (parse(src, slen, name, &c->t, st->e)) {
    /* Report against the text the author wrote, not the indented copy. */
    if (c->owned) {
      tree raw;
      if (parse(ptxt, plen, name, &raw, st->e) == 0) tree_free(&raw);
    }
    cache_free(c);
    return -1;
  }
  c->next = st->cache;
  st->cache = c;
  *out = &c->t;
  return 0;

oom:
  cache_free(c);
  return render_err(st, "out of memory loading a partial");
}

/* ---- renderer ----------------------------------------------------------- */

static int render_tree(rstate *st, const tree *t, const char *pname, int depth);

/* Points error messages at nd; done again after anything that may have
 * rendered other nodes (a partial's name is freed when it returns). */
static void here(rstate *st, const tree *t, const char *pname, const node *nd) {
  st->cur = t;
  st->pname = pname;
  st->at = nd->at;
}

static int render_range(rstate *st, const tree *t, const char *pname, int depth, size_t from,
                        size_t to) {
  for (size_t i = from; i < to; i++) {
    const node *nd = &t->v[i];
    here(st, t, pname, nd);
    switch (nd->kind) {
    case N_TEXT:
      if (put(st, nd->s, nd->len)) return -1;
      break;
    case N_ESC:
    case N_RAW:
      if (put_value(st, lookup(st, nd->s, nd->len), nd->kind == N_RAW)) return -1;
      break;
    case N_SECTION: {
      const cJSON *v = lookup(st, nd->s, nd->len);
      if (cJSON_IsArray(v)) {
        const cJSON *item;
        cJSON_ArrayForEach(item, v) {
          here(st, t, pname, nd);
          if (push(st, item)) return -1;
          int r = render_range(st, t, pname, depth, i + 1, nd->end);
          st->sn--;
          if (r) return -1;
        }
      } else if (truthy(v)) {
        if (push(st, v)) return -1;
        int r = render_range(st, t, pname, depth, i + 1, nd->end);
        st->sn--;
        if (r) return -1;
      }
      i = nd->end - 1;
      break;
    }
    case N_INVERTED:
      if (!truthy(lookup(st, nd->s, nd->len)) &&
          render_range(st, t, pname, depth, i + 1, nd->end))
        return -1;
      i = nd->end - 1;
      break;
    case N_PARTIAL: {
      char *name = mem_dup_str(nd->s, nd->len);
      if (!name) return render_err(st, "out of memory loading a partial");
      if (depth >= st->max_depth) {
        char what[256];
        snprintf(what, sizeof what,
                 "partial '%s' nested more than %d deep (does a partial include itself?)", name,
                 st->max_depth);
        free(name);
        return render_err(st, what);
      }
      const tree *pt;
      int r = partial_tree(st, nd, name, &pt);
      if (r == 0 && pt) r = render_tree(st, pt, name, depth + 1);
      free(name);
      if (r) return -1;
      break;
    }
    }
  }
  return 0;
}

static int render_tree(rstate *st, const tree *t, const char *pname, int depth) {
  return render_range(st, t, pname, depth, 0, t->n);
}

/* ---- public ------------------------------------------------------------- */

int tpl_render(const char *src, size_t len, const cJSON *ctx, const tpl_opts *o, buf *out,
               perr *e) {
  static const tpl_opts defaults;
  if (!o) o = &defaults;
  if (out->failed) return perr_set(e, "output buffer already failed");
  tree t;
  if (parse(src, len, NULL, &t, e)) return -1;

  rstate st;
  memset(&st, 0, sizeof st);
  st.o = o;
  st.esc = o->escape;
  st.max_output = o->max_output ? o->max_output : DEFAULT_MAX_OUTPUT;
  st.max_depth = o->max_depth > 0 ? o->max_depth : DEFAULT_MAX_DEPTH;
  st.out = out;
  st.start = out->len;
  st.e = e;
  st.cur = &t;

  int r = 0;
  if (ctx) r = push(&st, ctx);
  if (r == 0) r = render_tree(&st, &t, NULL, 0);
  if (r && !out->failed && out->data) {
    out->len = st.start;
    out->data[out->len] = '\0';
  }
  free(st.stack);
  cache_free(st.cache);
  tree_free(&t);
  return r ? -1 : 0;
}

int tpl_check(const char *src, size_t len, tpl_name_fn on_partial, void *ud, perr *e) {
  tree t;
  if (parse(src, len, NULL, &t, e)) return -1;
  int r = 0;
  for (size_t i = 0; i < t.n && on_partial && r == 0; i++) {
    const node *nd = &t.v[i];
    if (nd->kind != N_PARTIAL) continue;
    int seen = 0; /* each name once, in order of first use */
    for (size_t j = 0; j < i && !seen; j++)
      seen = t.v[j].kind == N_PARTIAL && t.v[j].len == nd->len &&
             memcmp(t.v[j].s, nd->s, nd->len) == 0;
    if (seen) continue;
    char *name = mem_dup_str(nd->s, nd->len);
    if (!name) {
      r = perr_set(e, "out of memory checking a template");
      break;
    }
    /* The callback may explain itself through e (via ud); if it does not,
     * say which partial it refused and where. */
    if (e) e->msg[0] = '\0';
    if (on_partial(ud, name)) {
      if (!e || !e->msg[0]) {
        char what[256];
        snprintf(what, sizeof what, "partial '%s' was rejected", name);
        where_err(e, NULL, src, nd->at, what);
      }
      r = -1;
    }
    free(name);
  }
  tree_free(&t);
  return r;
}

char *tpl_render_str(const char *src, const cJSON *ctx, const tpl_opts *o, perr *e) {
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  if (tpl_render(src, strlen(src), ctx, o, &b, e)) {
    buf_release(&b);
    return NULL;
  }
  char *s = buf_detach(&b, NULL);
  if (!s) perr_set(e, "out of memory rendering a template");
  return s;
}
