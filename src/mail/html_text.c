/*
 * html_text: HTML -> readable text in one pass, no DOM.
 *
 * Output is driven by three pieces of pending state rather than written
 * eagerly: a collapsed space, a number of owed line ends (0-2) and whether
 * the current output line has text.  They are settled only when the next
 * visible text arrives (settle()), which is what keeps the output free of
 * leading blank lines, trailing spaces and runs of empty lines however the
 * markup nests its blocks.
 *
 * Elements whose content is never shown (script, style, template) are
 * skipped up to their end tag as raw text, as a browser does.  head and
 * title only hide text until they close or body opens, so a document that
 * forgets </head> still shows its body.
 *
 * The input is clean UTF-8 (mail_clean); bytes >= 0x80 are copied as they
 * come, and decoded references are encoded here, so the output stays
 * clean.  The only place a sequence could be cut is the limit, which cuts
 * at a character boundary.
 */
#include "mail/html_text.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mail/mail_text.h"

#define MAX_HREF 1024
#define MAX_QUOTE_PREFIX 8 /* deeper quotes are still quotes; the prefix stops growing */

typedef struct conv {
  buf *out;
  size_t base;  /* out->len when the call started */
  size_t limit; /* cap on out->len */
  int full;     /* the limit was reached */
  int failed;   /* the buf failed */
  int space;
  int newlines;
  int line_open;
  int quote;
  int pre;
  int hidden;
  int in_link;
  size_t label_at; /* out->len where the link's label starts */
  char href[MAX_HREF + 1];
  size_t href_len;
} conv;

static void add(conv *c, const char *s, size_t n) {
  if (c->full || c->failed) return;
  if (n > c->limit - c->out->len) {
    n = mail_utf8_cut(s, n, c->limit - c->out->len);
    c->full = 1;
  }
  if (n && buf_add(c->out, s, n)) c->failed = 1;
}

/* Writes the pending breaks or space before visible text. */
static void settle(conv *c) {
  if (c->out->len > c->base) {
    if (c->newlines) {
      add(c, "\n\n", (size_t)c->newlines);
      c->line_open = 0;
    } else if (c->space && c->line_open) {
      add(c, " ", 1);
    }
  }
  c->newlines = 0;
  c->space = 0;
  if (!c->line_open) {
    for (int q = 0; q < c->quote && q < MAX_QUOTE_PREFIX; q++) add(c, ">", 1);
    if (c->quote) add(c, " ", 1);
    c->line_open = 1;
  }
}

static void block(conv *c, int lines) {
  if (c->newlines < lines) c->newlines = lines;
  c->space = 0;
}

static int is_ws(unsigned char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

/* Visible text: whitespace collapses (outside pre), the rest is copied. */
static void text(conv *c, const char *s, size_t n) {
  if (c->hidden) return;
  size_t i = 0;
  while (i < n && !c->full && !c->failed) {
    unsigned char ch = (unsigned char)s[i];
    if (is_ws(ch)) {
      if (c->pre && ch == '\n') {
        c->newlines = c->newlines < 2 ? c->newlines + 1 : 2;
      } else if (c->pre && ch != '\r') {
        settle(c);
        add(c, " ", 1);
      } else if (!c->pre) {
        c->space = 1;
      }
      i++;
      continue;
    }
    size_t run = i;
    while (run < n && !is_ws((unsigned char)s[run])) run++;
    settle(c);
    add(c, s + i, run - i);
    i = run;
  }
}

/* Code points 0x80-0x9F in a numeric reference mean Windows-1252 (HTML5). */
static const uint16_t cp1252_c1[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

/* The references mail actually uses; 0 means "renders as nothing". */
static const struct {
  const char *name;
  uint32_t cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},     {"apos", '\''},
    {"nbsp", ' '},     {"ensp", ' '},     {"emsp", ' '},      {"thinsp", ' '},   {"copy", 0xA9},
    {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"sbquo", 0x201A},  {"ldquo", 0x201C}, {"rdquo", 0x201D},
    {"bdquo", 0x201E}, {"laquo", 0xAB},   {"raquo", 0xBB},    {"bull", 0x2022},  {"middot", 0xB7},
    {"euro", 0x20AC},  {"pound", 0xA3},   {"yen", 0xA5},      {"cent", 0xA2},    {"sect", 0xA7},
    {"para", 0xB6},    {"deg", 0xB0},     {"plusmn", 0xB1},   {"times", 0xD7},   {"divide", 0xF7},
    {"iexcl", 0xA1},   {"iquest", 0xBF},  {"shy", 0},         {"zwnj", 0},       {"zwj", 0},
    {"agrave", 0xE0},  {"aacute", 0xE1},  {"acirc", 0xE2},    {"auml", 0xE4},    {"ccedil", 0xE7},
    {"egrave", 0xE8},  {"eacute", 0xE9},  {"ecirc", 0xEA},    {"euml", 0xEB},    {"iacute", 0xED},
    {"icirc", 0xEE},   {"iuml", 0xEF},    {"ntilde", 0xF1},   {"oacute", 0xF3},  {"ocirc", 0xF4},
    {"ouml", 0xF6},    {"uacute", 0xFA},  {"ucirc", 0xFB},    {"uuml", 0xFC},    {"szlig", 0xDF},
    {"Agrave", 0xC0},  {"Aacute", 0xC1},  {"Auml", 0xC4},     {"Ccedil", 0xC7},  {"Eacute", 0xC9},
    {"Egrave", 0xC8},  {"Ouml", 0xD6},    {"Uuml", 0xDC},     {"Ntilde", 0xD1},  {"oslash", 0xF8},
    {"aring", 0xE5},   {"aelig", 0xE6},   {"larr", 0x2190},   {"rarr", 0x2192},  {"check", 0x2713},
    {"star", 0x2606},
};

static int is_alnum(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int hexval(unsigned char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* A character reference at s ("&..."): its length, or 0 when it is not
 * one (the '&' is then literal).  *cp is 0 for "renders as nothing". */
static size_t entity(const char *s, size_t n, uint32_t *cp) {
  const unsigned char *p = (const unsigned char *)s;
  if (n < 3) return 0;
  if (p[1] == '#') {
    size_t i = 2;
    int hex = i < n && (p[i] == 'x' || p[i] == 'X');
    if (hex) i++;
    uint32_t v = 0;
    size_t digits = 0;
    for (; i < n; i++, digits++) {
      int d = hex ? hexval(p[i]) : (p[i] >= '0' && p[i] <= '9' ? p[i] - '0' : -1);
      if (d < 0) break;
      if (v <= 0x10FFFF) v = v * (hex ? 16u : 10u) + (uint32_t)d; /* past it: stays invalid */
    }
    if (digits == 0) return 0;
    if (i < n && p[i] == ';') i++;
    if (v >= 0x80 && v <= 0x9F)
      v = cp1252_c1[v - 0x80];
    else if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
      v = 0xFFFD;
    else if ((v < 0x20 && v != '\t' && v != '\n' && v != '\r' && v != '\f') || v == 0x7F)
      v = 0; /* controls are dropped from text, as mail_clean does */
    *cp = v;
    return i;
  }
  size_t i = 1;
  while (i < n && i <= 8 && is_alnum(p[i])) i++;
  if (i >= n || p[i] != ';' || i == 1) return 0;
  for (size_t k = 0; k < sizeof entities / sizeof entities[0]; k++) {
    if (strlen(entities[k].name) == i - 1 && memcmp(entities[k].name, s + 1, i - 1) == 0) {
      *cp = entities[k].cp;
      return i + 1;
    }
  }
  return 0;
}

static size_t encode(uint32_t cp, char out[4]) {
  buf b;
  buf_init(&b, 4);
  size_t n = 0;
  if (mail_utf8_put(&b, cp) == 0) {
    n = b.len;
    memcpy(out, b.data, n);
  }
  buf_release(&b);
  return n;
}

/* Case-insensitive search for "</name" from s; its offset or n. */
static size_t find_end_tag(const char *s, size_t n, const char *name) {
  size_t k = strlen(name);
  for (size_t i = 0; i + 2 + k <= n; i++)
    if (s[i] == '<' && s[i + 1] == '/' && strncasecmp(s + i + 2, name, k) == 0) return i;
  return n;
}

static int name_is(const char *name, const char *const *set) {
  for (; *set; set++)
    if (strcmp(name, *set) == 0) return 1;
  return 0;
}

static void end_link(conv *c) {
  if (!c->in_link) return;
  c->in_link = 0;
  if (c->hidden || c->full || c->failed || c->label_at > c->out->len || c->href_len == 0) return;
  const char *label = c->out->data ? c->out->data + c->label_at : "";
  size_t ln = c->out->len - c->label_at;
  while (ln && is_ws((unsigned char)*label)) label++, ln--;
  while (ln && is_ws((unsigned char)label[ln - 1])) ln--;
  const char *h = c->href;
  size_t hn = c->href_len;
  if (ln == 0 || h[0] == '#' || strncasecmp(h, "javascript:", 11) == 0 ||
      strncasecmp(h, "cid:", 4) == 0)
    return;
  const char *bare = h;
  if (strncasecmp(h, "mailto:", 7) == 0)
    bare = h + 7;
  else if (strncasecmp(h, "https://", 8) == 0)
    bare = h + 8;
  else if (strncasecmp(h, "http://", 7) == 0)
    bare = h + 7;
  size_t bn = hn - (size_t)(bare - h);
  if ((ln == hn && !memcmp(label, h, hn)) || (ln == bn && !strncasecmp(label, bare, bn)) ||
      (ln + 1 == bn && bare[bn - 1] == '/' && !strncasecmp(label, bare, ln)))
    return;
  settle(c);
  add(c, " (", 2);
  add(c, h, hn);
  add(c, ")", 1);
}

static void start_link(conv *c, const char *href, size_t n) {
  end_link(c);
  c->href_len = 0;
  /* Entity-decoded and whitespace-free: hrefs are often wrapped. */
  for (size_t i = 0; i < n;) {
    char enc[4];
    size_t en = 1;
    const char *piece = href + i;
    uint32_t cp;
    size_t used = href[i] == '&' ? entity(href + i, n - i, &cp) : 0;
    if (used) {
      en = cp ? encode(cp, enc) : 0;
      piece = enc;
      i += used;
    } else {
      i++;
    }
    if (en == 1 && is_ws((unsigned char)piece[0])) continue;
    if (c->href_len + en > MAX_HREF) {
      c->href_len = 0; /* a URL that long is noise to a reader */
      break;
    }
    memcpy(c->href + c->href_len, piece, en);
    c->href_len += en;
  }
  c->href[c->href_len] = '\0';
  c->in_link = 1;
  c->label_at = c->out->len; /* settle() may add a break first: end_link trims it */
}

static const char *const blocks1[] = {
    "address", "article", "aside",    "caption",    "center",  "dd",      "details", "div",
    "dl",      "dt",      "fieldset", "figcaption", "figure",  "footer",  "form",    "header",
    "hr",      "main",    "nav",      "ol",         "section", "summary", "table",   "tbody",
    "tfoot",   "thead",   "tr",       "ul",         "body",    "html",    NULL};
static const char *const blocks2[] = {"p", "h1", "h2", "h3", "h4", "h5", "h6", NULL};
static const char *const raw_text[] = {"script", "style",  "template", "noscript", "textarea",
                                       "iframe", "object", "svg",      NULL};

static void open_tag(conv *c, const char *name, const char *href, size_t href_n) {
  if (!strcmp(name, "br")) {
    c->newlines = c->newlines < 2 ? c->newlines + 1 : 2;
    c->space = 0;
  } else if (!strcmp(name, "head") || !strcmp(name, "title")) {
    if (c->hidden < 8) c->hidden++;
  } else if (!strcmp(name, "li")) {
    block(c, 1);
    if (!c->hidden) {
      settle(c);
      add(c, "- ", 2);
    }
  } else if (!strcmp(name, "blockquote")) {
    block(c, 1);
    if (c->quote < 1000) c->quote++;
  } else if (!strcmp(name, "pre")) {
    block(c, 1);
    c->pre++;
  } else if (!strcmp(name, "td") || !strcmp(name, "th")) {
    c->space = 1;
  } else if (!strcmp(name, "a")) {
    if (href)
      start_link(c, href, href_n);
    else
      end_link(c);
  } else if (name_is(name, blocks2)) {
    block(c, 2);
  } else if (name_is(name, blocks1)) {
    if (!strcmp(name, "body")) c->hidden = 0;
    block(c, 1);
  }
}

static void close_tag(conv *c, const char *name) {
  if (!strcmp(name, "head") || !strcmp(name, "title")) {
    if (c->hidden) c->hidden--;
  } else if (!strcmp(name, "blockquote")) {
    block(c, 1);
    if (c->quote) c->quote--;
  } else if (!strcmp(name, "pre")) {
    block(c, 1);
    if (c->pre) c->pre--;
  } else if (!strcmp(name, "a")) {
    end_link(c);
  } else if (!strcmp(name, "li")) {
    block(c, 1);
  } else if (name_is(name, blocks2)) {
    block(c, 2);
  } else if (name_is(name, blocks1)) {
    block(c, 1);
  }
}

/* Parses the tag at s[0] == '<' (s[1] is a letter, or '/' and a letter);
 * returns the bytes it spans. */
static size_t tag(conv *c, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 1;
  int closing = p[1] == '/';
  if (closing) i++;
  char name[16];
  size_t nl = 0;
  while (i < n && (is_alnum(p[i]) || p[i] == '-' || p[i] == ':')) {
    if (nl < sizeof name - 1) {
      unsigned char ch = p[i];
      name[nl++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    i++;
  }
  name[nl] = '\0';
  const char *href = NULL;
  size_t href_n = 0;
  while (i < n && p[i] != '>') {
    if (is_ws(p[i]) || p[i] == '/') {
      i++;
      continue;
    }
    size_t an = i;
    while (i < n && !is_ws(p[i]) && p[i] != '=' && p[i] != '>' && p[i] != '/') i++;
    size_t alen = i - an;
    while (i < n && is_ws(p[i])) i++;
    if (i >= n || p[i] != '=') continue;
    i++;
    while (i < n && is_ws(p[i])) i++;
    size_t vs, ve;
    if (i < n && (p[i] == '"' || p[i] == '\'')) {
      unsigned char q = p[i++];
      vs = i;
      while (i < n && p[i] != q) i++;
      ve = i;
      if (i < n) i++;
    } else {
      vs = i;
      while (i < n && !is_ws(p[i]) && p[i] != '>') i++;
      ve = i;
    }
    if (alen == 4 && strncasecmp(s + an, "href", 4) == 0 && !href) {
      href = s + vs;
      href_n = ve - vs;
    }
  }
  if (i < n) i++; /* the '>' */
  if (closing) {
    close_tag(c, name);
    return i;
  }
  open_tag(c, name, !strcmp(name, "a") ? (href ? href : "") : NULL, href_n);
  if (name_is(name, raw_text) && (i < 2 || s[i - 2] != '/')) {
    size_t end = find_end_tag(s + i, n - i, name);
    i += end;
  }
  return i;
}

/* Skips "<!-- ... -->", "<!DOCTYPE ...>", "<?...>"; returns the bytes. */
static size_t skip_markup(const char *s, size_t n) {
  if (n >= 4 && !memcmp(s, "<!--", 4)) {
    for (size_t i = 4; i + 3 <= n; i++)
      if (!memcmp(s + i, "-->", 3)) return i + 3;
    return n;
  }
  const char *gt = memchr(s, '>', n);
  return gt ? (size_t)(gt - s) + 1 : n;
}

static int is_alpha(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

int html_to_text(buf *out, const char *html, size_t n, size_t limit) {
  conv c;
  memset(&c, 0, sizeof c);
  c.out = out;
  c.base = out->len;
  c.limit = limit < out->len ? out->len : limit;
  size_t i = 0;
  while (i < n && !c.full && !c.failed) {
    unsigned char ch = (unsigned char)html[i];
    if (ch == '<' && i + 1 < n) {
      unsigned char nx = (unsigned char)html[i + 1];
      if (nx == '!' || nx == '?') {
        i += skip_markup(html + i, n - i);
        continue;
      }
      if (is_alpha(nx) || (nx == '/' && i + 2 < n && is_alpha((unsigned char)html[i + 2]))) {
        i += tag(&c, html + i, n - i);
        continue;
      }
    }
    if (ch == '&') {
      uint32_t cp;
      size_t used = entity(html + i, n - i, &cp);
      if (used) {
        char enc[4];
        size_t en = cp ? encode(cp, enc) : 0;
        text(&c, enc, en);
        i += used;
        continue;
      }
    }
    size_t run = i + 1;
    while (run < n && html[run] != '<' && html[run] != '&') run++;
    text(&c, html + i, run - i);
    i = run;
  }
  if (c.failed) return -1;
  return c.full ? 1 : 0;
}
