/*
 * imap_parse: response parsing and command writing for imap_client (see
 * imap_parse.h for what each function accepts and returns).
 *
 * Two layers, both literal-aware:
 *   next_resp  cuts the transcript into responses.  A line ending in {n}
 *              is followed by n literal bytes that belong to the same
 *              response, then the response continues to the next CRLF.
 *   lex_next   splits one response into tokens: atoms, quoted strings,
 *              literals, parentheses.  Quoted strings and literals carry
 *              their exact bytes (quoted ones still escaped: tok_dup
 *              unescapes), so a name is never cut at a space or a quote.
 *
 * Everything is bounded by the input length; nothing here reads past the
 * transcript or trusts a length the server sent beyond what it delivered.
 */
#include "net/imap_parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct resp {
  const char *p, *end; /* without the final CRLF; literals inside */
} resp;

/* Length of a literal announced at the end of line [p, p+n): "{12}" or the
 * non-synchronising "{12+}".  1 when there is one. */
static int literal_at_end(const char *p, size_t n, size_t *len) {
  if (n < 3 || p[n - 1] != '}') return 0;
  size_t i = n - 1;
  if (i > 0 && p[i - 1] == '+') i--;
  size_t digits_end = i;
  while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9') i--;
  if (i == digits_end || i == 0 || p[i - 1] != '{' || digits_end - i > 9) return 0;
  size_t v = 0;
  for (size_t k = i; k < digits_end; k++) v = v * 10 + (size_t)(p[k] - '0');
  *len = v;
  return 1;
}

/* The response starting at *pos; 0 at the end of the input.  A truncated
 * literal makes the rest of the input one last response. */
static int next_resp(const char *s, size_t n, size_t *pos, resp *r) {
  if (*pos >= n) return 0;
  size_t i = *pos;
  r->p = s + i;
  for (;;) {
    const char *nl = memchr(s + i, '\n', n - i);
    if (!nl) {
      r->end = s + n;
      *pos = n;
      return 1;
    }
    size_t lf = (size_t)(nl - s);
    size_t ce = lf > i && s[lf - 1] == '\r' ? lf - 1 : lf;
    size_t lit;
    if (literal_at_end(s + i, ce - i, &lit)) {
      size_t after = lf + 1;
      if (lit > n - after) {
        r->end = s + n;
        *pos = n;
        return 1;
      }
      i = after + lit;
      continue;
    }
    r->end = s + ce;
    *pos = lf + 1;
    return 1;
  }
}

enum tok_type { T_END, T_ATOM, T_QUOTED, T_LITERAL, T_LP, T_RP, T_BAD };

typedef struct tok {
  enum tok_type t;
  const char *p; /* atom text, quoted content (still escaped), literal bytes */
  size_t n;
} tok;

typedef struct lex {
  const char *p, *end;
} lex;

static void lex_init(lex *x, const resp *r) {
  x->p = r->p;
  x->end = r->end;
}

static int is_atom_end(char c) {
  return c == ' ' || c == '(' || c == ')' || c == '"' || c == '\r' || c == '\n' || c == '{';
}

static tok lex_next(lex *x) {
  tok t = {T_END, NULL, 0};
  while (x->p < x->end && (*x->p == ' ' || *x->p == '\r' || *x->p == '\n')) x->p++;
  if (x->p >= x->end) return t;
  const char *p = x->p;
  if (*p == '(' || *p == ')') {
    t.t = *p == '(' ? T_LP : T_RP;
    t.p = p;
    t.n = 1;
    x->p = p + 1;
    return t;
  }
  if (*p == '"') {
    const char *q = p + 1;
    while (q < x->end && *q != '"') q += (*q == '\\' && q + 1 < x->end) ? 2 : 1;
    if (q >= x->end) {
      t.t = T_BAD;
      return t;
    }
    t.t = T_QUOTED;
    t.p = p + 1;
    t.n = (size_t)(q - (p + 1));
    x->p = q + 1;
    return t;
  }
  if (*p == '{') {
    const char *q = p + 1;
    size_t v = 0, digits = 0;
    while (q < x->end && *q >= '0' && *q <= '9' && digits < 10) {
      v = v * 10 + (size_t)(*q - '0');
      q++;
      digits++;
    }
    if (q < x->end && *q == '+') q++;
    if (!digits || q >= x->end || *q != '}') {
      t.t = T_BAD;
      return t;
    }
    q++;
    if (q < x->end && *q == '\r') q++;
    if (q >= x->end || *q != '\n' || v > (size_t)(x->end - (q + 1))) {
      t.t = T_BAD;
      return t;
    }
    t.t = T_LITERAL;
    t.p = q + 1;
    t.n = v;
    x->p = q + 1 + v;
    return t;
  }
  const char *q = p;
  while (q < x->end && !is_atom_end(*q)) q++;
  t.t = T_ATOM;
  t.p = p;
  t.n = (size_t)(q - p);
  x->p = q;
  return t;
}

static int tok_is(const tok *t, const char *word) {
  size_t n = strlen(word);
  return t->t == T_ATOM && t->n == n && strncasecmp(t->p, word, n) == 0;
}

static int is_string(const tok *t) {
  return t->t == T_ATOM || t->t == T_QUOTED || t->t == T_LITERAL;
}

/* A NUL-terminated copy of a string token, quoted strings unescaped. */
static char *tok_dup(const tok *t) {
  char *out = malloc(t->n + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (t->t == T_QUOTED && t->p[i] == '\\' && i + 1 < t->n) i++;
    out[o++] = t->p[i];
  }
  out[o] = '\0';
  return out;
}

static int tok_u32(const tok *t, uint32_t *v) {
  if (t->t != T_ATOM || t->n == 0 || t->n > 10) return -1;
  uint64_t x = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (t->p[i] < '0' || t->p[i] > '9') return -1;
    x = x * 10 + (uint64_t)(t->p[i] - '0');
  }
  if (x > UINT32_MAX) return -1;
  *v = (uint32_t)x;
  return 0;
}

/* Skips one value: a token, or a parenthesised list with what it nests. */
static int skip_value(lex *x, tok first) {
  if (first.t == T_RP || first.t == T_END || first.t == T_BAD) return -1;
  if (first.t != T_LP) return 0;
  int depth = 1;
  while (depth > 0) {
    tok t = lex_next(x);
    if (t.t == T_END || t.t == T_BAD) return -1;
    if (t.t == T_LP) depth++;
    if (t.t == T_RP) depth--;
  }
  return 0;
}

static int is_tagged(const resp *r) { return r->p < r->end && *r->p != '*' && *r->p != '+'; }

/* An untagged response whose second token is word: the lexer is left
 * after it. */
static int untagged_is(const resp *r, lex *x, const char *word) {
  lex_init(x, r);
  tok t = lex_next(x);
  if (!tok_is(&t, "*")) return 0;
  t = lex_next(x);
  return tok_is(&t, word);
}

/* ---- slicing ------------------------------------------------------------ */

size_t imap_last_command(const char *s, size_t n) {
  size_t pos = 0, prev = 0, last = 0;
  resp r;
  while (next_resp(s, n, &pos, &r)) {
    if (is_tagged(&r)) {
      prev = last;
      last = pos;
    }
  }
  return prev;
}

/* The status and text of the last tagged line, refusals only when asked. */
static const char *last_tagged(const char *s, size_t n, int refusals, size_t *len) {
  size_t pos = 0;
  resp r;
  const char *found = NULL;
  while (next_resp(s, n, &pos, &r)) {
    if (!is_tagged(&r)) continue;
    const char *p = r.p;
    while (p < r.end && *p != ' ') p++;
    while (p < r.end && *p == ' ') p++;
    size_t rest = (size_t)(r.end - p);
    if (refusals && !((rest >= 2 && strncasecmp(p, "NO", 2) == 0) ||
                      (rest >= 3 && strncasecmp(p, "BAD", 3) == 0)))
      continue;
    found = p;
    *len = rest;
  }
  return found;
}

const char *imap_last_tagged(const char *s, size_t n, size_t *len) {
  return last_tagged(s, n, 0, len);
}

const char *imap_last_refusal(const char *s, size_t n, size_t *len) {
  return last_tagged(s, n, 1, len);
}

/* ---- EXAMINE / SELECT, STATUS -------------------------------------------- */

/* "[NAME n]" at x's position: 1 and *v when the code is name. */
static int resp_code_u32(const lex *x, const char *name, uint32_t *v, int *bad) {
  const char *p = x->p;
  while (p < x->end && *p == ' ') p++;
  size_t nl = strlen(name);
  if ((size_t)(x->end - p) < nl + 2 || *p != '[' || strncasecmp(p + 1, name, nl) != 0 ||
      p[1 + nl] != ' ')
    return 0;
  p += nl + 2;
  uint64_t acc = 0;
  size_t digits = 0;
  while (p < x->end && *p >= '0' && *p <= '9' && digits < 11) {
    acc = acc * 10 + (uint64_t)(*p - '0');
    p++;
    digits++;
  }
  if (!digits || acc > UINT32_MAX || p >= x->end || *p != ']') {
    *bad = 1;
    return 0;
  }
  *v = (uint32_t)acc;
  return 1;
}

int imap_parse_select(const char *s, size_t n, imap_mailbox_info *out, perr *e) {
  memset(out, 0, sizeof *out);
  size_t pos = 0;
  resp r;
  while (next_resp(s, n, &pos, &r)) {
    lex x;
    lex_init(&x, &r);
    tok t = lex_next(&x);
    if (!tok_is(&t, "*")) continue;
    t = lex_next(&x);
    if (tok_is(&t, "OK")) {
      int bad = 0;
      uint32_t v;
      if (resp_code_u32(&x, "UIDVALIDITY", &v, &bad)) {
        out->uidvalidity = v;
        out->has_uidvalidity = 1;
      } else if (resp_code_u32(&x, "UIDNEXT", &v, &bad)) {
        out->uidnext = v;
        out->has_uidnext = 1;
      }
      if (bad) return perr_set(e, "malformed response code in \"%.*s\"", (int)(r.end - r.p), r.p);
      continue;
    }
    uint32_t num;
    if (tok_u32(&t, &num) == 0) {
      tok what = lex_next(&x);
      if (tok_is(&what, "EXISTS")) {
        out->exists = num;
        out->has_exists = 1;
      }
    }
  }
  return 0;
}

int imap_parse_status(const char *s, size_t n, imap_mailbox_info *out, perr *e) {
  memset(out, 0, sizeof *out);
  size_t pos = 0;
  resp r;
  while (next_resp(s, n, &pos, &r)) {
    lex x;
    if (!untagged_is(&r, &x, "STATUS")) continue;
    tok name = lex_next(&x);
    tok lp = lex_next(&x);
    if (!is_string(&name) || lp.t != T_LP) goto bad;
    for (;;) {
      tok k = lex_next(&x);
      if (k.t == T_RP) break;
      tok v = lex_next(&x);
      uint32_t num;
      if (k.t != T_ATOM || tok_u32(&v, &num)) goto bad;
      if (tok_is(&k, "MESSAGES")) {
        out->exists = num;
        out->has_exists = 1;
      } else if (tok_is(&k, "UIDNEXT")) {
        out->uidnext = num;
        out->has_uidnext = 1;
      } else if (tok_is(&k, "UIDVALIDITY")) {
        out->uidvalidity = num;
        out->has_uidvalidity = 1;
      }
    }
    continue;
  bad:
    return perr_set(e, "malformed STATUS response \"%.*s\"", (int)(r.end - r.p), r.p);
  }
  return 0;
}

/* ---- SEARCH ------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int imap_parse_search(const char *s, size_t n, uint32_t **uids, size_t *count, perr *e) {
  *uids = NULL;
  *count = 0;
  uint32_t *v = NULL;
  size_t len = 0, cap = 0;
  size_t pos = 0;
  resp r;
  while (next_resp(s, n, &pos, &r)) {
    lex x;
    if (!untagged_is(&r, &x, "SEARCH")) continue;
    for (;;) {
      tok t = lex_next(&x);
      if (t.t == T_END) break;
      if (t.t == T_LP) { /* "(MODSEQ n)" from CONDSTORE servers */
        if (skip_value(&x, t)) goto bad;
        continue;
      }
      uint32_t num;
      if (tok_u32(&t, &num) || num == 0) goto bad;
      if (len == cap) {
        size_t ncap = cap ? cap * 2 : 16;
        uint32_t *nv = realloc(v, ncap * sizeof *nv);
        if (!nv) {
          free(v);
          return perr_set(e, "out of memory");
        }
        v = nv;
        cap = ncap;
      }
      v[len++] = num;
    }
    continue;
  bad:
    free(v);
    return perr_set(e, "malformed SEARCH response \"%.*s\"",
                    (int)(r.end - r.p > 200 ? 200 : r.end - r.p), r.p);
  }
  if (len) {
    qsort(v, len, sizeof *v, cmp_u32);
    size_t o = 1;
    for (size_t i = 1; i < len; i++)
      if (v[i] != v[o - 1]) v[o++] = v[i];
    len = o;
  }
  *uids = v;
  *count = len;
  return 0;
}

/* ---- LIST --------------------------------------------------------------- */

static const struct {
  const char *name;
  unsigned bit;
} list_attrs[] = {
    {"\\Noselect", IMAP_ATTR_NOSELECT},
    {"\\NonExistent", IMAP_ATTR_NOSELECT},
    {"\\HasChildren", IMAP_ATTR_HASCHILDREN},
    {"\\Drafts", IMAP_ATTR_DRAFTS},
    {"\\Sent", IMAP_ATTR_SENT},
    {"\\Trash", IMAP_ATTR_TRASH},
    {"\\Junk", IMAP_ATTR_JUNK},
    {"\\Archive", IMAP_ATTR_ARCHIVE},
    {"\\All", IMAP_ATTR_ALL},
    {"\\Flagged", IMAP_ATTR_FLAGGED},
};

void imap_folders_free(imap_folder *f, size_t count) {
  for (size_t i = 0; f && i < count; i++) free(f[i].name);
  free(f);
}

int imap_parse_list(const char *s, size_t n, imap_folder **out, size_t *count, perr *e) {
  *out = NULL;
  *count = 0;
  imap_folder *f = NULL;
  size_t len = 0, cap = 0;
  size_t pos = 0;
  resp r;
  while (next_resp(s, n, &pos, &r)) {
    lex x;
    if (!untagged_is(&r, &x, "LIST")) continue;
    tok t = lex_next(&x);
    if (t.t != T_LP) goto bad;
    unsigned attrs = 0;
    for (;;) {
      t = lex_next(&x);
      if (t.t == T_RP) break;
      if (t.t != T_ATOM) goto bad;
      for (size_t i = 0; i < sizeof list_attrs / sizeof list_attrs[0]; i++)
        if (tok_is(&t, list_attrs[i].name)) attrs |= list_attrs[i].bit;
    }
    tok delim = lex_next(&x);
    tok name = lex_next(&x);
    if (!(tok_is(&delim, "NIL") || (delim.t == T_QUOTED && delim.n >= 1 && delim.n <= 2)) ||
        !is_string(&name))
      goto bad;
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      imap_folder *nf = realloc(f, ncap * sizeof *nf);
      if (!nf) goto oom;
      f = nf;
      cap = ncap;
    }
    imap_folder *d = &f[len];
    d->name = tok_dup(&name);
    if (!d->name) goto oom;
    d->delim = delim.t == T_QUOTED ? delim.p[delim.n - 1] : 0;
    d->attrs = attrs;
    len++;
    continue;
  bad:
    imap_folders_free(f, len);
    return perr_set(e, "malformed LIST response \"%.*s\"",
                    (int)(r.end - r.p > 200 ? 200 : r.end - r.p), r.p);
  }
  *out = f;
  *count = len;
  return 0;
oom:
  imap_folders_free(f, len);
  return perr_set(e, "out of memory");
}

const imap_folder *imap_folder_find(const imap_folder *f, size_t count, unsigned attr) {
  for (size_t i = 0; i < count; i++)
    if ((f[i].attrs & attr) && !(f[i].attrs & IMAP_ATTR_NOSELECT)) return &f[i];
  return NULL;
}

/* ---- FETCH flags, APPENDUID --------------------------------------------- */

static const struct {
  const char *name;
  unsigned bit;
} sys_flags[] = {
    {"\\Seen", IMAP_FLAG_SEEN},       {"\\Answered", IMAP_FLAG_ANSWERED},
    {"\\Flagged", IMAP_FLAG_FLAGGED}, {"\\Deleted", IMAP_FLAG_DELETED},
    {"\\Draft", IMAP_FLAG_DRAFT},     {"\\Recent", IMAP_FLAG_RECENT},
};

int imap_parse_fetch_flags(const char *s, size_t n, uint32_t uid, unsigned *flags, perr *e) {
  int found = 0, fetches = 0;
  unsigned only_flags = 0;
  int only_has_flags = 0;
  size_t pos = 0;
  resp r;
  *flags = 0;
  while (next_resp(s, n, &pos, &r)) {
    lex x;
    lex_init(&x, &r);
    tok t = lex_next(&x);
    if (!tok_is(&t, "*")) continue;
    uint32_t seq;
    t = lex_next(&x);
    if (tok_u32(&t, &seq)) continue;
    t = lex_next(&x);
    if (!tok_is(&t, "FETCH")) continue;
    if (lex_next(&x).t != T_LP) goto bad;
    uint32_t got_uid = 0;
    unsigned f = 0;
    int has_flags = 0;
    for (;;) {
      tok k = lex_next(&x);
      if (k.t == T_RP) break;
      if (k.t != T_ATOM) goto bad;
      tok v = lex_next(&x);
      if (tok_is(&k, "UID")) {
        if (tok_u32(&v, &got_uid)) goto bad;
      } else if (tok_is(&k, "FLAGS")) {
        if (v.t != T_LP) goto bad;
        has_flags = 1;
        for (;;) {
          tok fl = lex_next(&x);
          if (fl.t == T_RP) break;
          if (fl.t != T_ATOM) goto bad;
          for (size_t i = 0; i < sizeof sys_flags / sizeof sys_flags[0]; i++)
            if (tok_is(&fl, sys_flags[i].name)) f |= sys_flags[i].bit;
        }
      } else if (skip_value(&x, v)) {
        goto bad;
      }
    }
    fetches++;
    if (got_uid == uid && has_flags) {
      *flags = f;
      found = 1;
    } else if (!got_uid) {
      only_flags = f;
      only_has_flags = has_flags;
    }
    continue;
  bad:
    return perr_set(e, "malformed FETCH response \"%.*s\"",
                    (int)(r.end - r.p > 200 ? 200 : r.end - r.p), r.p);
  }
  if (!found && fetches == 1 && only_has_flags) {
    *flags = only_flags;
    found = 1;
  }
  return found;
}

int imap_parse_appenduid(const char *s, size_t n, uint32_t *uidvalidity, uint32_t *uid) {
  size_t len = 0;
  const char *p = imap_last_tagged(s, n, &len);
  if (!p || len < 3 || strncasecmp(p, "OK ", 3) != 0) return 0;
  resp r = {p + 3, p + len};
  lex x;
  lex_init(&x, &r);
  while (x.p < x.end && *x.p == ' ') x.p++;
  if (x.end - x.p < 11 || strncasecmp(x.p, "[APPENDUID ", 11) != 0) return 0;
  x.p += 11;
  tok a = lex_next(&x);
  tok b = lex_next(&x);
  if (b.t == T_ATOM && b.n > 1 && b.p[b.n - 1] == ']')
    b.n--;
  else
    return 0;
  uint32_t v, u;
  if (tok_u32(&a, &v) || tok_u32(&b, &u)) return 0;
  *uidvalidity = v;
  *uid = u;
  return 1;
}

/* ---- writers ------------------------------------------------------------ */

int imap_put_quoted(buf *b, const char *s) {
  if (strpbrk(s, "\r\n")) return -1;
  if (buf_addc(b, '"')) return -1;
  for (const char *p = s; *p; p++) {
    if ((*p == '"' || *p == '\\') && buf_addc(b, '\\')) return -1;
    if (buf_addc(b, *p)) return -1;
  }
  return buf_addc(b, '"');
}

int imap_put_flags(buf *b, unsigned flags) {
  if (buf_addc(b, '(')) return -1;
  int first = 1;
  for (size_t i = 0; i < sizeof sys_flags / sizeof sys_flags[0]; i++) {
    if (!(flags & sys_flags[i].bit) || sys_flags[i].bit == IMAP_FLAG_RECENT) continue;
    if ((!first && buf_addc(b, ' ')) || buf_adds(b, sys_flags[i].name)) return -1;
    first = 0;
  }
  return buf_addc(b, ')');
}

int imap_put_since(buf *b, int year, int month, int day) {
  static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31) return -1;
  return buf_printf(b, "SINCE %d-%s-%04d", day, mon[month - 1], year);
}

int imap_put_url_mailbox(buf *b, const char *name) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '_' || *p == '~';
    if (plain) {
      if (buf_addc(b, (char)*p)) return -1;
    } else if (buf_addc(b, '%') || buf_addc(b, hex[*p >> 4]) || buf_addc(b, hex[*p & 15])) {
      return -1;
    }
  }
  return 0;
}

int imap_put_custom(buf *b, const char *cmd) {
  for (const char *p = cmd; *p; p++) {
    if (*p == '%' ? buf_adds(b, "%25") : buf_addc(b, *p)) return -1;
  }
  return 0;
}
