/*
 * mail_filter: the skip rules of mail_filter.h, read from the event alone.
 *
 * Reading only the event (not GMime's objects) keeps the rules testable
 * with hand-written JSON and lets `promptd mail parse` report exactly what
 * the trigger would decide.  Patterns are compiled per call, as
 * core/cond.c does: mail arrives a few messages a minute, and nothing has
 * to be freed between calls.
 */
#include "mail/mail_filter.h"

#include <cjson/cJSON.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/utf8.h"

/* Formats the reason and returns skip.  Reasons quote addresses and
 * patterns, which a cut could split mid-character: the result is cut back
 * to its valid UTF-8 prefix, since it ends up in JSON. */
__attribute__((format(printf, 4, 5))) static int reason(int skip, char *why, size_t len,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
  size_t bad;
  if (!utf8_valid(why, strlen(why), &bad)) why[bad] = '\0';
  return skip;
}

static const char *str_at(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *addr_of(const cJSON *ev, const char *key) {
  const char *a = str_at(cJSON_GetObjectItemCaseSensitive(ev, key), "address");
  return a ? a : "";
}

static int compile(const char *pattern, regex_t *re) {
  int flags = REG_EXTENDED | REG_NOSUB;
  if (!strncmp(pattern, "(?i)", 4)) {
    pattern += 4;
    flags |= REG_ICASE;
  }
  return regcomp(re, pattern, flags);
}

typedef struct pattern {
  const char *name;
  const char *re;
  int skip_on_match;
  int which; /* 'f' from, 't' to/cc, 's' subject */
} pattern;

static size_t patterns_of(const mail_filter *f, pattern out[6]) {
  size_t n = 0;
  if (!f) return 0;
  const pattern all[6] = {
      {"from", f->from, 0, 'f'},       {"to", f->to, 0, 't'},
      {"subject", f->subject, 0, 's'}, {"skip_from", f->skip_from, 1, 'f'},
      {"skip_to", f->skip_to, 1, 't'}, {"skip_subject", f->skip_subject, 1, 's'}};
  for (size_t i = 0; i < 6; i++)
    if (all[i].re) out[n++] = all[i];
  return n;
}

int mail_filter_check(const mail_filter *f, perr *e) {
  pattern ps[6];
  size_t n = patterns_of(f, ps);
  for (size_t i = 0; i < n; i++) {
    regex_t re;
    int rc = compile(ps[i].re, &re);
    if (rc) {
      char msg[128];
      regerror(rc, &re, msg, sizeof msg);
      return perr_set(e, "mail filter %s: bad pattern '%s': %s", ps[i].name, ps[i].re, msg);
    }
    regfree(&re);
  }
  return 0;
}

static int local_is(const char *local, size_t n, const char *word) {
  return strlen(word) == n && strncasecmp(local, word, n) == 0;
}

/* System senders RFC 3834 section 2 says not to answer. */
static int system_sender(const char *local, size_t n) {
  static const char *const exact[] = {"mailer-daemon", "mailerdaemon", "postmaster", "listserv",
                                      "majordomo"};
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
    if (local_is(local, n, exact[i])) return 1;
  if (n > 6 && strncasecmp(local, "owner-", 6) == 0) return 1;
  static const char *const suffixes[] = {"-request", "-bounce", "-bounces"};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    size_t k = strlen(suffixes[i]);
    if (n > k && strncasecmp(local + n - k, suffixes[i], k) == 0) return 1;
  }
  return 0;
}

static int noreply_sender(const char *local, size_t n) {
  char squashed[32];
  size_t k = 0;
  for (size_t i = 0; i < n && k < sizeof squashed - 1; i++) {
    char c = local[i];
    if (c == '-' || c == '_' || c == '.') continue;
    squashed[k++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  squashed[k] = '\0';
  return !strncmp(squashed, "noreply", 7) || !strncmp(squashed, "donotreply", 10) ||
         !strncmp(squashed, "donotrespond", 12);
}

/* The first token of a header value ("auto-replied; x=y" -> "auto-replied"). */
static size_t token(const char *v, const char **start) {
  while (*v == ' ' || *v == '\t') v++;
  *start = v;
  size_t n = strcspn(v, " \t;(");
  return n;
}

static int automated(const cJSON *ev, char *why, size_t len) {
  const cJSON *h = cJSON_GetObjectItemCaseSensitive(ev, "headers");
  const char *v, *t;
  size_t n;
  if ((v = str_at(h, "auto_submitted")) && (n = token(v, &t)) && !local_is(t, n, "no"))
    return reason(1, why, len, "auto-generated (Auto-Submitted: %.*s)", (int)n, t);
  if ((v = str_at(h, "x_autoreply"))) return reason(1, why, len, "auto-generated (X-Autoreply)");
  if ((v = str_at(h, "precedence")) && (n = token(v, &t)) &&
      (local_is(t, n, "bulk") || local_is(t, n, "list") || local_is(t, n, "junk") ||
       local_is(t, n, "auto_reply")))
    return reason(1, why, len, "bulk or list mail (Precedence: %.*s)", (int)n, t);
  if ((v = str_at(h, "list_id"))) return reason(1, why, len, "mailing list (List-Id: %.200s)", v);
  if ((v = str_at(h, "return_path"))) {
    const char *p = v;
    while (*p == ' ' || *p == '<' || *p == '>') p++;
    if (*p == '\0') return reason(1, why, len, "bounce or null sender (Return-Path: <>)");
  }
  const char *from = addr_of(ev, "from");
  const char *at = strrchr(from, '@');
  size_t ln = at ? (size_t)(at - from) : strlen(from);
  if (ln && system_sender(from, ln)) return reason(1, why, len, "system sender (%.200s)", from);
  if (ln && noreply_sender(from, ln)) return reason(1, why, len, "no-reply sender (%.200s)", from);
  return 0;
}

/* 1 when re matches any name or address of the recipient lists. */
static int match_people(const regex_t *re, const cJSON *list) {
  const cJSON *p;
  cJSON_ArrayForEach(p, list) {
    const char *a = str_at(p, "address"), *nm = str_at(p, "name");
    if ((a && regexec(re, a, 0, NULL, 0) == 0) || (nm && *nm && regexec(re, nm, 0, NULL, 0) == 0))
      return 1;
  }
  return 0;
}

static int pattern_matches(const regex_t *re, const cJSON *ev, int which) {
  if (which == 's') {
    const char *s = str_at(ev, "subject");
    return regexec(re, s ? s : "", 0, NULL, 0) == 0;
  }
  if (which == 't')
    return match_people(re, cJSON_GetObjectItemCaseSensitive(ev, "to")) ||
           match_people(re, cJSON_GetObjectItemCaseSensitive(ev, "cc"));
  const cJSON *from = cJSON_GetObjectItemCaseSensitive(ev, "from");
  const char *a = str_at(from, "address"), *nm = str_at(from, "name");
  return regexec(re, a ? a : "", 0, NULL, 0) == 0 ||
         (nm && *nm && regexec(re, nm, 0, NULL, 0) == 0);
}

int mail_skip_reason(const cJSON *event, const mail_filter *f, char *why, size_t len) {
  char scratch[1];
  if (!why || len == 0) {
    why = scratch;
    len = sizeof scratch;
  }
  why[0] = '\0';
  const char *from = addr_of(event, "from");
  for (size_t i = 0; f && i < f->n_own; i++)
    if (f->own[i] && *from && strcasecmp(from, f->own[i]) == 0)
      return reason(1, why, len, "sent by the account itself (%.200s)", from);
  if (!*from && !*addr_of(event, "reply_to")) return reason(1, why, len, "no sender address");
  if ((!f || !f->keep_automated) && automated(event, why, len)) return 1;

  pattern ps[6];
  size_t n = patterns_of(f, ps);
  for (size_t i = 0; i < n; i++) {
    regex_t re;
    int rc = compile(ps[i].re, &re);
    if (rc) {
      char msg[128];
      regerror(rc, &re, msg, sizeof msg);
      return reason(-1, why, len, "mail filter %s: bad pattern '%.200s': %s", ps[i].name, ps[i].re,
                    msg);
    }
    int m = pattern_matches(&re, event, ps[i].which);
    regfree(&re);
    if (m && ps[i].skip_on_match)
      return reason(1, why, len, "%s matches %.200s", ps[i].name + 5, ps[i].re);
    if (!m && !ps[i].skip_on_match)
      return reason(1, why, len, "%s does not match %.200s", ps[i].name, ps[i].re);
  }
  return 0;
}
