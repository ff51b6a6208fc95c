/*
 * gpt/errors: classification of a finished exchange (see errors.h).
 *
 * Order of decisions, as in the SDKs' retry logic:
 *   1. no status (transport error or timeout)   -> RETRY
 *   2. 2xx                                      -> OK
 *   3. 429 with insufficient_quota              -> FAIL + budget (promptd's rule)
 *   4. x-should-retry: true / false             -> RETRY / FAIL
 *   5. 408, 409, 429, >= 500                    -> RETRY
 *   6. anything else                            -> FAIL
 * retry_after_ms is filled for every non-2xx response that carries it.
 *
 * Error bodies come from OpenAI ({"error": {"message", "type", "code"}}) or
 * from compatible servers, some of which send {"error": "text"} or
 * {"message": "text"}; all three give the message.  A body that is not JSON
 * (a proxy's HTML page) is not quoted: "HTTP 502" says as much and cannot
 * flood the run's error column.
 */
#include "gpt/errors.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- retry-after ------------------------------------------------------ */

/* A non-negative decimal (fractions allowed, as the SDKs allow them) with
 * nothing but blanks around it; -1 otherwise. */
static double parse_nonneg(const char *s) {
  if (!s) return -1;
  while (*s == ' ' || *s == '\t') s++;
  if (!isdigit((unsigned char)*s) && *s != '.') return -1;
  char *end = NULL;
  double d = strtod(s, &end);
  if (end == s) return -1;
  while (*end == ' ' || *end == '\t') end++;
  if (*end || !isfinite(d) || d < 0) return -1;
  return d;
}

static long ms_from(double ms) {
  if (ms > 2147483647.0) return 2147483647L; /* keeps long arithmetic safe on 32-bit */
  return (long)ceil(ms);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the usual era-based
 * computation; valid for any year the header could carry). */
static long long days_from_civil(long long y, int m, int d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int month_of(const char *s) {
  static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  for (int i = 0; i < 12; i++)
    if (strncasecmp(s, names + 3 * i, 3) == 0) return i + 1;
  return 0;
}

static const char *digits(const char *s, int min, int max, int *out) {
  int n = 0, v = 0;
  while (isdigit((unsigned char)s[n]) && n < max) v = v * 10 + (s[n++] - '0');
  if (n < min) return NULL;
  *out = v;
  return s + n;
}

static const char *hms(const char *s, int *h, int *mi, int *se) {
  if (!(s = digits(s, 2, 2, h)) || *s++ != ':') return NULL;
  if (!(s = digits(s, 2, 2, mi)) || *s++ != ':') return NULL;
  return digits(s, 2, 2, se);
}

/* The three HTTP-date forms RFC 9110 asks recipients to accept:
 *   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
 *   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
 *   asctime      Sun Nov  6 08:49:37 1994
 * Written by hand because strptime's %a/%b follow the process locale. */
static int parse_http_date(const char *s, long long *out) {
  int d, mo, y, h, mi, se;
  while (*s == ' ') s++;
  while (isalpha((unsigned char)*s)) s++; /* weekday, not checked */
  if (*s == ',') s++;
  if (*s++ != ' ') return -1;
  while (*s == ' ') s++;
  if (isdigit((unsigned char)*s)) {
    if (!(s = digits(s, 1, 2, &d))) return -1;
    char sep = *s++;
    if (sep != ' ' && sep != '-') return -1;
    if (!(mo = month_of(s))) return -1;
    s += 3;
    if (*s++ != sep) return -1;
    const char *ys = s;
    if (!(s = digits(s, 2, 4, &y))) return -1;
    if (s - ys == 2) y += y < 70 ? 2000 : 1900; /* RFC 850's two-digit years */
    if (*s++ != ' ' || !(s = hms(s, &h, &mi, &se))) return -1;
    while (*s == ' ') s++;
    if (*s && strcasecmp(s, "GMT") != 0 && strcasecmp(s, "UTC") != 0) return -1;
  } else {
    if (!(mo = month_of(s))) return -1;
    s += 3;
    while (*s == ' ') s++;
    if (!(s = digits(s, 1, 2, &d)) || *s++ != ' ' || !(s = hms(s, &h, &mi, &se))) return -1;
    if (*s++ != ' ' || !(s = digits(s, 4, 4, &y))) return -1;
    while (*s == ' ') s++;
    if (*s) return -1;
  }
  if (d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -1;
  *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
  return 0;
}

long gpt_retry_after_ms(gpt_header_fn header, void *ud, long long now_s) {
  if (!header) return -1;
  /* retry-after-ms first: OpenAI's own, more precise than whole seconds. */
  double ms = parse_nonneg(header(ud, "retry-after-ms"));
  if (ms >= 0) return ms_from(ms);
  const char *ra = header(ud, "retry-after");
  if (!ra) return -1;
  double s = parse_nonneg(ra);
  if (s >= 0) return ms_from(s * 1000.0);
  long long when;
  if (parse_http_date(ra, &when) != 0) return -1;
  if (when <= now_s) return 0; /* already past: go now */
  return ms_from((double)(when - now_s) * 1000.0);
}

/* ---- the error body --------------------------------------------------- */

static const char *str_item(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* Copies s into dst (size n) cutting at a UTF-8 character boundary, so a
 * long non-ASCII message never ends in half a character. */
static void copy_cut(char *dst, size_t n, const char *s) {
  size_t len = strlen(s);
  if (len >= n) {
    len = n - 1;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
  }
  memcpy(dst, s, len);
  dst[len] = '\0';
}

/* message, code and type from the body, pointing into the returned tree
 * (the caller deletes it); all NULL when the body says nothing usable. */
static cJSON *read_body(const char *body, size_t len, const char **msg, const char **code,
                        const char **type) {
  *msg = *code = *type = NULL;
  if (!body || !len) return NULL;
  cJSON *root = cJSON_ParseWithLength(body, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return NULL;
  }
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (cJSON_IsObject(err)) {
    *msg = str_item(err, "message");
    *code = str_item(err, "code");
    *type = str_item(err, "type");
  } else if (cJSON_IsString(err) && err->valuestring[0]) {
    *msg = err->valuestring;
  } else {
    *msg = str_item(root, "message");
  }
  return root;
}

void gpt_classify(int transport_error, int timed_out, long status, gpt_header_fn header, void *ud,
                  const char *body, size_t len, gpt_verdict *v) {
  memset(v, 0, sizeof *v);
  v->retry_after_ms = -1;
  if (timed_out) {
    v->cls = OUTCOME_RETRY;
    copy_cut(v->message, sizeof v->message, "request timed out");
    return;
  }
  if (transport_error || status <= 0) {
    v->cls = OUTCOME_RETRY;
    snprintf(v->message, sizeof v->message, "connection error (transport error %d)",
             transport_error);
    return;
  }
  if (status >= 200 && status < 300) {
    v->cls = OUTCOME_OK;
    return;
  }

  const char *msg, *code, *type;
  cJSON *root = read_body(body, len, &msg, &code, &type);
  int quota = status == 429 && ((code && strcmp(code, "insufficient_quota") == 0) ||
                                (type && strcmp(type, "insufficient_quota") == 0));
  const char *should = header ? header(ud, "x-should-retry") : NULL;
  if (quota) {
    v->cls = OUTCOME_FAIL;
    v->budget = 1;
  } else if (should && strcasecmp(should, "true") == 0) {
    v->cls = OUTCOME_RETRY;
  } else if (should && strcasecmp(should, "false") == 0) {
    v->cls = OUTCOME_FAIL;
  } else if (status == 408 || status == 409 || status == 429 || status >= 500) {
    v->cls = OUTCOME_RETRY;
  } else {
    v->cls = OUTCOME_FAIL;
  }
  v->retry_after_ms = gpt_retry_after_ms(header, ud, (long long)time(NULL));

  if (msg) {
    char suffix[160] = "";
    if (code)
      snprintf(suffix, sizeof suffix, " (code: %s)", code);
    else if (type)
      snprintf(suffix, sizeof suffix, " (type: %s)", type);
    /* The API's words first, cut if need be so the code always shows. */
    size_t room = sizeof v->message - strlen(suffix);
    copy_cut(v->message, room, msg);
    size_t used = strlen(v->message);
    memcpy(v->message + used, suffix, strlen(suffix) + 1);
  } else {
    snprintf(v->message, sizeof v->message, "HTTP %ld", status);
  }
  cJSON_Delete(root);
}
