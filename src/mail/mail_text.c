/*
 * mail_text: UTF-8 cleaning, charset conversion, format=flowed, quote and
 * signature trimming, snippets.
 *
 * Everything downstream (cJSON, templates, the GPT request) assumes clean
 * UTF-8, so the one place that looks at raw body bytes is mail_clean: every
 * other function here either produces code points through mail_utf8_put or
 * copies runs that mail_clean already let through.
 *
 * Charset conversion goes through iconv with a byte-at-a-time recovery:
 * an invalid sequence costs one U+FFFD and one byte, never the rest of the
 * body.  Charset names come from the message, so only plain names reach
 * iconv_open (glibc reads "//" suffixes in a name as conversion flags).
 *
 * Quote trimming works on lines and is deliberately conservative: it
 * drops what is unambiguously history (">" lines, the attribution just
 * before them, a signature, an Outlook "Original Message" block) and keeps
 * everything else, because a reply drafted without part of the question is
 * worse than one drafted with a little extra history.
 */
#include "mail/mail_text.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REPLACEMENT 0xFFFDu

size_t mail_utf8_next(const char *s, size_t n, uint32_t *cp) {
  const unsigned char *p = (const unsigned char *)s;
  if (n == 0) return 0;
  unsigned c = p[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, min = 0x80, v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, min = 0x800, v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, v = c & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (p[k] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

int mail_utf8_put(buf *out, uint32_t cp) {
  char b[4];
  size_t n;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = REPLACEMENT;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return buf_add(out, b, n);
}

static int is_plain_byte(unsigned char c, int mode) {
  if (c >= 0x20 && c < 0x7F) return mode == MAIL_CLEAN_BODY || c != ' ';
  return mode == MAIL_CLEAN_BODY && (c == '\n' || c == '\t');
}

int mail_clean(buf *out, const char *s, size_t n, int mode) {
  const unsigned char *p = (const unsigned char *)s;
  size_t start_len = out->len;
  int space = 0; /* LINE mode: a whitespace run is pending */
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && is_plain_byte(p[run], mode)) run++;
    if (run > i) {
      if (space && out->len > start_len && buf_addc(out, ' ')) return -1;
      space = 0;
      if (buf_add(out, s + i, run - i)) return -1;
      i = run;
      continue;
    }
    unsigned c = p[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (mode == MAIL_CLEAN_LINE) {
        space = 1;
      } else if (c == '\r') { /* CRLF and a lone CR both end a line */
        if (buf_addc(out, '\n')) return -1;
        if (i + 1 < n && p[i + 1] == '\n') i++;
      }
      i++;
      continue;
    }
    if (c < 0x80) { /* remaining C0 controls and DEL */
      i++;
      continue;
    }
    uint32_t cp;
    size_t len = mail_utf8_next(s + i, n - i, &cp);
    int bad = len == 0;
    if (bad) {
      cp = REPLACEMENT;
      len = 1;
    }
    i += len;
    if ((cp >= 0x80 && cp <= 0x9F) || cp == 0xFEFF) continue;
    if (space && out->len > start_len && buf_addc(out, ' ')) return -1;
    space = 0;
    if (bad ? mail_utf8_put(out, cp) : buf_add(out, s + i - len, len)) return -1;
  }
  return 0;
}

/* Lower-cased copy of a charset name when it is a plain one; 0 otherwise. */
static int plain_charset(const char *cs, char *low, size_t size) {
  size_t n = strlen(cs);
  if (n == 0 || n >= size) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = cs[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.' || c == ':'))
      return 0;
    low[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  low[n] = '\0';
  return 1;
}

/* Names mail uses that iconv does not know, or reads more narrowly than
 * senders mean. */
static const char *charset_alias(const char *low) {
  static const struct {
    const char *from, *to;
  } aliases[] = {
      {"iso-8859-1", "WINDOWS-1252"},
      {"iso8859-1", "WINDOWS-1252"},
      {"iso_8859-1", "WINDOWS-1252"},
      {"latin1", "WINDOWS-1252"},
      {"l1", "WINDOWS-1252"},
      {"ks_c_5601-1987", "CP949"},
      {"x-sjis", "SHIFT_JIS"},
      {"gb2312", "GB18030"},
      {"gbk", "GB18030"},
      {"x-gbk", "GB18030"},
      {"iso-8859-8-i", "ISO-8859-8"},
      {"x-mac-roman", "MACINTOSH"},
  };
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(low, aliases[i].from) == 0) return aliases[i].to;
  return low;
}

static int is_utf8_or_ascii(const char *low) {
  return !strcmp(low, "utf-8") || !strcmp(low, "utf8") || !strcmp(low, "us-ascii") ||
         !strcmp(low, "ascii") || !strcmp(low, "ansi_x3.4-1968") ||
         !strcmp(low, "unicode-1-1-utf-8");
}

static int convert(buf *out, iconv_t cd, const char *s, size_t n) {
  buf tmp;
  buf_init(&tmp, out->max);
  char chunk[4096];
  char *in = (char *)s; /* iconv's prototype; it does not write through it */
  size_t left = n;
  int rc = 0;
  while (left > 0 && rc == 0) {
    char *o = chunk;
    size_t room = sizeof chunk;
    size_t r = iconv(cd, &in, &left, &o, &room);
    int err = errno;
    if (buf_add(&tmp, chunk, sizeof chunk - room)) rc = -1;
    if (rc || r != (size_t)-1 || err == E2BIG) continue;
    if (mail_utf8_put(&tmp, REPLACEMENT)) rc = -1;
    if (err == EILSEQ) {
      in++;
      left--;
    } else {
      break; /* EINVAL: a sequence cut off by the end of the part */
    }
  }
  if (rc == 0) {
    char *o = chunk;
    size_t room = sizeof chunk;
    iconv(cd, NULL, NULL, &o, &room); /* back to the initial shift state */
    if (buf_add(&tmp, chunk, sizeof chunk - room)) rc = -1;
  }
  if (rc == 0 && tmp.len) rc = mail_clean(out, tmp.data, tmp.len, MAIL_CLEAN_BODY);
  buf_release(&tmp);
  return rc;
}

static int convert_from(buf *out, const char *iconv_name, const char *s, size_t n) {
  iconv_t cd = iconv_open("UTF-8", iconv_name);
  if (cd == (iconv_t)-1) return 1;
  int rc = convert(out, cd, s, n);
  iconv_close(cd);
  return rc;
}

int mail_to_utf8(buf *out, const char *charset, const char *s, size_t n) {
  char low[48];
  int declared = charset && plain_charset(charset, low, sizeof low);
  if (declared && !strcmp(low, "utf-8")) return mail_clean(out, s, n, MAIL_CLEAN_BODY);
  if (declared && !is_utf8_or_ascii(low)) {
    int rc = convert_from(out, charset_alias(low), s, n);
    if (rc <= 0) return rc;
    /* iconv does not know it: treated as undeclared below */
  }
  uint32_t cp;
  size_t i = 0;
  while (i < n) {
    size_t len = mail_utf8_next(s + i, n - i, &cp);
    if (len == 0) break;
    i += len;
  }
  if (i == n) return mail_clean(out, s, n, MAIL_CLEAN_BODY);
  int rc = convert_from(out, "WINDOWS-1252", s, n);
  return rc > 0 ? mail_clean(out, s, n, MAIL_CLEAN_BODY) : rc;
}

/* ---- lines ---- */

typedef struct line {
  const char *s;
  size_t n;
} line;

/* Splits s at '\n' into *lines (malloc'd by buf); the count, or -1. */
static long split_lines(const char *s, size_t n, buf *store) {
  long count = 0;
  size_t i = 0;
  while (i <= n) {
    const char *nl = i < n ? memchr(s + i, '\n', n - i) : NULL;
    size_t end = nl ? (size_t)(nl - s) : n;
    line l = {s + i, end - i};
    if (buf_add(store, &l, sizeof l)) return -1;
    count++;
    if (!nl) break;
    i = end + 1;
  }
  return count;
}

int mail_unflow(buf *out, const char *s, size_t n, int delsp) {
  buf store;
  buf_init(&store, BUF_UNLIMITED);
  long count = split_lines(s, n, &store);
  if (count < 0) return -1;
  const line *ls = (const line *)(void *)store.data;
  int prev_soft = 0;
  size_t prev_depth = 0;
  int rc = 0;
  for (long k = 0; k < count && rc == 0; k++) {
    const char *p = ls[k].s;
    size_t len = ls[k].n, depth = 0;
    while (depth < len && p[depth] == '>') depth++;
    p += depth;
    len -= depth;
    if (len && p[0] == ' ') p++, len--; /* space-stuffing */
    int sig = len == 3 && !memcmp(p, "-- ", 3);
    if (!(prev_soft && depth == prev_depth)) {
      if (k > 0 && buf_addc(out, '\n')) rc = -1;
      for (size_t d = 0; rc == 0 && d < depth; d++)
        if (buf_addc(out, '>')) rc = -1;
      if (rc == 0 && depth && buf_addc(out, ' ')) rc = -1;
    }
    if (rc == 0 && buf_add(out, p, len)) rc = -1;
    prev_soft = !sig && len && p[len - 1] == ' ';
    if (rc == 0 && prev_soft && delsp) out->data[--out->len] = '\0';
    prev_depth = depth;
  }
  buf_release(&store);
  return rc;
}

static int blank(const line *l) {
  for (size_t i = 0; i < l->n; i++)
    if (l->s[i] != ' ' && l->s[i] != '\t') return 0;
  return 1;
}

static int quoted(const line *l) { return l->n && l->s[0] == '>'; }

/* Length without trailing blanks. */
static size_t rtrim(const line *l) {
  size_t n = l->n;
  while (n && (l->s[n - 1] == ' ' || l->s[n - 1] == '\t')) n--;
  return n;
}

static int starts_ci(const line *l, const char *prefix) {
  size_t k = strlen(prefix);
  return l->n >= k && strncasecmp(l->s, prefix, k) == 0;
}

static int contains_ci(const char *s, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (strncasecmp(s + i, needle, k) == 0) return 1;
  return 0;
}

static int is_signature(const line *l) {
  return (l->n == 3 && !memcmp(l->s, "-- ", 3)) || (l->n == 2 && !memcmp(l->s, "--", 2));
}

/* "-----Original Message-----" and its translations, or a rule of
 * underscores, as Outlook puts above the quoted message. */
static int is_outlook_rule(const line *l) {
  static const char *const names[] = {"original message",    "ursprüngliche nachricht",
                                      "message d'origine",   "mensaje original",
                                      "messaggio originale", "oorspronkelijk bericht"};
  size_t n = rtrim(l);
  if (n >= 8 && l->s[0] == '_') {
    size_t u = 0;
    while (u < n && l->s[u] == '_') u++;
    return u == n;
  }
  if (n < 4 || l->s[0] != '-' || l->s[1] != '-') return 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (contains_ci(l->s, n, names[i])) return 1;
  return 0;
}

/* An attribution line: "On <date>, <name> wrote:" and its translations. */
static int is_attribution(const line *l) {
  static const char *const verbs[] = {"wrote",    "écrit",   "schrieb",    "escribió", "scritto",
                                      "schreef",  "skrev",   "napisał",    "написал",  "kirjoitti",
                                      "escreveu", "writes:", "geschrieben"};
  size_t n = rtrim(l);
  if (n < 6 || l->s[n - 1] != ':' || quoted(l)) return 0;
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    if (contains_ci(l->s, n, verbs[i])) return 1;
  return 0;
}

/* The first line of an attribution that a mail client wrapped in two. */
static int is_attribution_start(const line *l) {
  static const char *const starts[] = {"On ", "Le ", "Am ",  "El ",    "Il ",
                                       "Op ", "Em ", "Den ", "W dniu "};
  for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
    if (starts_ci(l, starts[i])) return 1;
  return 0;
}

/* From: then Sent:/Date: within three lines: Outlook's header block
 * without a rule above it. */
static int is_outlook_header(const line *ls, long k, long end) {
  if (!starts_ci(&ls[k], "From:")) return 0;
  for (long j = k + 1; j < end && j <= k + 3; j++)
    if (starts_ci(&ls[j], "Sent:") || starts_ci(&ls[j], "Date:")) return 1;
  return 0;
}

/* Appends lines[from, to) with blank runs collapsed and the ends trimmed;
 * keep[k] == 0 skips line k. */
static int emit_lines(buf *out, const line *ls, long from, long to, const unsigned char *keep) {
  int pending_blank = 0, any = 0;
  for (long k = from; k < to; k++) {
    if (keep && !keep[k]) continue;
    if (blank(&ls[k])) {
      pending_blank = any;
      continue;
    }
    if (any && buf_adds(out, pending_blank ? "\n\n" : "\n")) return -1;
    if (buf_add(out, ls[k].s, rtrim(&ls[k]))) return -1;
    pending_blank = 0;
    any = 1;
  }
  return 0;
}

int mail_trim_quoted(buf *out, const char *s, size_t n) {
  buf store;
  buf_init(&store, BUF_UNLIMITED);
  long count = split_lines(s, n, &store);
  if (count < 0) return -1;
  const line *ls = (const line *)(void *)store.data;
  long end = count;
  int content = 0; /* a non-blank, unquoted line came before line k */
  for (long k = 0; k < end; k++) {
    if (is_signature(&ls[k]) ||
        ((is_outlook_rule(&ls[k]) || is_outlook_header(ls, k, end)) && content)) {
      end = k;
      break;
    }
    if (!blank(&ls[k]) && !quoted(&ls[k])) content = 1;
  }
  unsigned char *keep = NULL;
  int rc = 0;
  if (end > 0) {
    keep = malloc((size_t)end);
    if (!keep) {
      buf_release(&store);
      return -1;
    }
    memset(keep, 1, (size_t)end);
  }
  for (long k = 0; k < end; k++) {
    if (quoted(&ls[k])) {
      keep[k] = 0;
      continue;
    }
    if (!is_attribution(&ls[k])) continue;
    long j = k + 1;
    while (j < end && blank(&ls[j])) j++;
    if (j < end && !quoted(&ls[j])) continue; /* not introducing a quote */
    keep[k] = 0;
    long prev = k - 1;
    if (prev >= 0 && !blank(&ls[prev]) && !quoted(&ls[prev]) && !is_attribution_start(&ls[k]) &&
        is_attribution_start(&ls[prev]))
      keep[prev] = 0;
  }
  size_t before = out->len;
  rc = emit_lines(out, ls, 0, end, keep);
  if (rc == 0 && out->len == before) rc = emit_lines(out, ls, 0, count, NULL);
  free(keep);
  buf_release(&store);
  return rc;
}

int mail_snippet(buf *out, const char *s, size_t n, size_t max_chars) {
  size_t chars = 0, i = 0;
  int space = 0;
  while (i < n) {
    uint32_t cp;
    size_t len = mail_utf8_next(s + i, n - i, &cp);
    if (len == 0) {
      cp = REPLACEMENT;
      len = 1;
    }
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0xA0) {
      space = chars > 0;
      i += len;
      continue;
    }
    if (chars + (space ? 1 : 0) >= max_chars) return buf_adds(out, "\xE2\x80\xA6");
    if (space && buf_addc(out, ' ')) return -1;
    chars += space ? 1 : 0;
    space = 0;
    if (mail_utf8_put(out, cp)) return -1;
    chars++;
    i += len;
  }
  return 0;
}

size_t mail_utf8_cut(const char *s, size_t n, size_t max) {
  if (n <= max) return n;
  size_t k = max;
  while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
  return k;
}
