/*
 * http_result: classification and output of the `http` action (see
 * http_action.h for the rules).
 *
 * Retry-After parsing is gpt/errors' (seconds or any of the three
 * HTTP-date forms, locale-independent): one parser for every caller.
 *
 * Text that reaches a run's error column (the body excerpt) has control
 * characters flattened to spaces and is cut on a UTF-8 boundary, so a
 * receiver's HTML error page can neither flood nor garble `runs show`.
 */
#include "actions/http_action.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "gpt/errors.h"
#include "net/http_client.h"

const char *const HTTP_ACTION_DEFAULT_HEADERS[] = {
    "content-type", "content-length", "content-location", "location",
    "etag",         "last-modified",  "retry-after",      "link",
    "x-request-id", "request-id",     "idempotency-key",  "idempotent-replayed",
    NULL,
};

int http_action_is_json_type(const char *ct) {
  if (!ct) return 0;
  while (*ct == ' ' || *ct == '\t') ct++;
  size_t n = strcspn(ct, ";");
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
  if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) return 1;
  const char *slash = memchr(ct, '/', n);
  return slash && n >= 5 && (size_t)(slash - ct) < n - 5 &&
         strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Appends at most max bytes of s (len), cut on a character boundary, with
 * invalid sequences as U+FFFD and, when flatten, control characters as
 * spaces.  Returns 1 when something was left out. */
static int add_text(buf *b, const char *s, size_t len, size_t max, int flatten) {
  size_t start = b->len;
  size_t i = 0;
  while (i < len) {
    size_t bad = len - i;
    if (utf8_valid(s + i, len - i, &bad)) bad = len - i;
    /* s[i .. i+bad) is valid; copy it whole characters at a time. */
    size_t run = bad;
    if (b->len - start + run > max) {
      run = max - (b->len - start);
      while (run > 0 && ((unsigned char)s[i + run] & 0xC0) == 0x80) run--;
    }
    for (size_t j = 0; j < run; j++) {
      char ch = s[i + j];
      if (flatten && ((unsigned char)ch < 0x20 || ch == 0x7f)) ch = ' ';
      if (buf_addc(b, ch)) return 1;
    }
    i += run;
    if (run < bad) return 1; /* the cap */
    if (i >= len) break;
    if (b->len - start + 3 > max) return 1;
    if (buf_add(b, "\xEF\xBF\xBD", 3)) return 1;
    i++;
  }
  return 0;
}

static int in_expect(const cJSON *expect, long status) {
  if (!cJSON_IsArray(expect)) return status >= 200 && status < 300;
  const cJSON *it;
  cJSON_ArrayForEach(it, expect) {
    if (cJSON_IsNumber(it) && (long)it->valuedouble == status) return 1;
  }
  return 0;
}

static int transient_status(long status) {
  return status == 408 || status == 409 || status == 425 || status == 429 || status >= 500;
}

void http_action_classify(const http_result *r, const cJSON *expect, long timeout_ms,
                          long long now_s, http_verdict *v) {
  memset(v, 0, sizeof *v);
  if (r->transport_error == HTTP_CANCELLED) {
    v->cls = OUTCOME_CANCELLED;
    snprintf(v->message, sizeof v->message, "cancelled");
    return;
  }
  if (r->transport_error == CURLE_WRITE_ERROR || r->transport_error == CURLE_FILESIZE_EXCEEDED) {
    /* The client's cap: the receiver answered, but with more than a step
     * output may hold.  Sending again would get the same answer. */
    v->cls = OUTCOME_FAIL;
    snprintf(v->message, sizeof v->message, "%s (the request was delivered)",
             r->error && *r->error ? r->error : "response too large");
    return;
  }
  if (r->timed_out) {
    v->cls = OUTCOME_RETRY;
    snprintf(v->message, sizeof v->message, "request timed out after %ld ms", timeout_ms);
    return;
  }
  if (r->transport_error || r->status <= 0) {
    v->cls = OUTCOME_RETRY;
    snprintf(v->message, sizeof v->message, "connection error: %s",
             r->error && *r->error ? r->error : "no HTTP status received");
    return;
  }
  if (in_expect(expect, r->status)) {
    v->cls = OUTCOME_OK;
    return;
  }
  v->cls = transient_status(r->status) ? OUTCOME_RETRY : OUTCOME_FAIL;
  if (v->cls == OUTCOME_RETRY) {
    long ms = gpt_retry_after_ms(r->header, r->ud, now_s);
    v->retry_after_ms = ms < 0                                ? 0
                        : ms > HTTP_ACTION_MAX_RETRY_AFTER_MS ? HTTP_ACTION_MAX_RETRY_AFTER_MS
                                                              : ms;
  }
  buf m;
  buf_init(&m, sizeof v->message - 1);
  buf_printf(&m, "HTTP %ld", r->status);
  if (r->status >= 200 && r->status < 300) buf_adds(&m, " (not among the expected statuses)");
  const char *loc =
      r->status >= 300 && r->status < 400 && r->header ? r->header(r->ud, "location") : NULL;
  if (loc) {
    /* Redirects are not followed: a changed endpoint is the recipe's to fix. */
    buf_adds(&m, " (redirect to ");
    add_text(&m, loc, strlen(loc), 200, 1);
    buf_adds(&m, "; redirects are not followed)");
  }
  if (r->body_len) {
    buf_adds(&m, ": ");
    if (add_text(&m, r->body, r->body_len, HTTP_ACTION_EXCERPT_MAX, 1)) buf_adds(&m, "...");
  }
  snprintf(v->message, sizeof v->message, "%s", m.data ? m.data : "");
  if (!m.data) snprintf(v->message, sizeof v->message, "HTTP %ld", r->status);
  buf_release(&m);
}

/* ---- output ---- */

static int add_header(cJSON *hdrs, const http_result *r, const char *name) {
  char lower[128];
  size_t n = strlen(name);
  if (n >= sizeof lower) return 0;
  for (size_t i = 0; i <= n; i++) lower[i] = (char)tolower((unsigned char)name[i]);
  if (cJSON_HasObjectItem(hdrs, lower)) return 0;
  const char *v = r->header ? r->header(r->ud, lower) : NULL;
  if (!v) return 0;
  buf b;
  buf_init(&b, 8192);
  add_text(&b, v, strlen(v), 8192, 1);
  cJSON *s = b.data ? cJSON_CreateString(b.data) : cJSON_CreateString("");
  buf_release(&b);
  if (!s || !cJSON_AddItemToObject(hdrs, lower, s)) {
    cJSON_Delete(s);
    return -1;
  }
  return 0;
}

static cJSON *parse_json_body(const http_result *r) {
  if (!r->body_len) return NULL;
  const char *ct = r->header ? r->header(r->ud, "content-type") : NULL;
  if (ct) {
    if (!http_action_is_json_type(ct)) return NULL;
  } else {
    size_t i = 0;
    while (i < r->body_len && isspace((unsigned char)r->body[i])) i++;
    if (i == r->body_len || (r->body[i] != '{' && r->body[i] != '[')) return NULL;
  }
  return cJSON_ParseWithLength(r->body, r->body_len);
}

cJSON *http_action_output(const http_result *r, const cJSON *extra) {
  cJSON *out = cJSON_CreateObject();
  cJSON *hdrs = out && cJSON_AddNumberToObject(out, "status", (double)r->status)
                    ? cJSON_AddObjectToObject(out, "headers")
                    : NULL;
  if (!hdrs) goto oom;
  for (size_t i = 0; HTTP_ACTION_DEFAULT_HEADERS[i]; i++)
    if (add_header(hdrs, r, HTTP_ACTION_DEFAULT_HEADERS[i])) goto oom;
  const cJSON *it;
  cJSON_ArrayForEach(it, extra) {
    if (cJSON_IsString(it) && add_header(hdrs, r, it->valuestring)) goto oom;
  }
  cJSON *body = parse_json_body(r);
  if (body) {
    cJSON_AddItemToObject(out, "body", body);
    return out;
  }
  buf b;
  buf_init(&b, HTTP_ACTION_TEXT_MAX + 4);
  int cut = add_text(&b, r->body ? r->body : "", r->body_len, HTTP_ACTION_TEXT_MAX, 0);
  if (b.failed) goto oom;
  cJSON *s = cJSON_CreateString(b.data ? b.data : "");
  buf_release(&b);
  if (!s) goto oom;
  cJSON_AddItemToObject(out, "body", s);
  if (cut && !cJSON_AddTrueToObject(out, "body_truncated")) goto oom;
  return out;
oom:
  cJSON_Delete(out);
  return NULL;
}
