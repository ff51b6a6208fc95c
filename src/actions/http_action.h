/*
 * http_action: what the files of the `http` action kind share (the kind
 * itself and its recipe shape are in http.c).
 *
 *   http.c           field table, start (secrets, the call), cancel
 *   http_validate.c  validate, and the checks prepare and start reuse
 *   http_prepare.c   prepare: the request rendered, secrets as references
 *   http_result.c    classification and the step's output, pure, so both
 *                    are unit tested without a server
 *
 * Classification of a finished exchange (http_result.c):
 *
 * Classification, in order:
 *   cancelled                                  -> CANCELLED
 *   response larger than the cap               -> FAIL (a retry gets the same)
 *   timeout or other transport error           -> RETRY
 *   status in expect (default: any 2xx)        -> OK
 *   408, 409, 425, 429, 5xx                    -> RETRY, with Retry-After
 *   anything else (other 4xx, 3xx, 2xx outside expect)
 *                                              -> FAIL, "HTTP <status>: <body start>"
 * Retry-After (seconds or HTTP-date) becomes retry_after_ms, capped at
 * HTTP_ACTION_MAX_RETRY_AFTER_MS so a misconfigured server cannot park a run
 * for days; absent, the engine's own backoff applies (0).
 *
 * Output (steps.<id>.*):
 *   status   the HTTP status
 *   headers  the captured response headers, names lower-cased (see
 *            HTTP_ACTION_DEFAULT_HEADERS; a step adds more with
 *            response_headers).  Not every header: Set-Cookie and the like
 *            carry credentials that must not land in the database.
 *   body     the parsed value when the response is JSON (a JSON media type,
 *            or none given and the body starts with { or [), else the text:
 *            invalid UTF-8 replaced by U+FFFD, cut at HTTP_ACTION_TEXT_MAX
 *            bytes on a character boundary, with body_truncated: true.
 */
#ifndef PROMPTD_ACTIONS_HTTP_ACTION_H
#define PROMPTD_ACTIONS_HTTP_ACTION_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/connector.h"

#define HTTP_ACTION_TEXT_MAX (64u * 1024)
#define HTTP_ACTION_DEFAULT_TIMEOUT_S 30
#define HTTP_ACTION_EXCERPT_MAX 300
#define HTTP_ACTION_MAX_RETRY_AFTER_MS (60L * 60 * 1000)

/* NULL-terminated, lower-case. */
extern const char *const HTTP_ACTION_DEFAULT_HEADERS[];

typedef const char *(*http_result_header_fn)(void *ud, const char *name);

/* One finished exchange, as the client reported it. */
typedef struct http_result {
  int transport_error; /* 0: a status was received; else CURLcode or HTTP_CANCELLED */
  const char *error;   /* the client's message for transport errors */
  int timed_out;
  long status;
  http_result_header_fn header; /* case-insensitive lookup; may be NULL */
  void *ud;
  const char *body;
  size_t body_len;
} http_result;

typedef struct http_verdict {
  outcome_class cls;
  long retry_after_ms; /* 0: the engine's backoff */
  char message[700];   /* "" for OK */
} http_verdict;

/* expect: array of statuses, or NULL for any 2xx.  timeout_ms names the
 * limit in the timeout message.  now_s: Unix time, for HTTP-dates. */
void http_action_classify(const http_result *r, const cJSON *expect, long timeout_ms,
                          long long now_s, http_verdict *v);

/* The step's output; extra: further header names to capture (array of
 * strings, any case) or NULL.  NULL when memory ran out. */
cJSON *http_action_output(const http_result *r, const cJSON *extra);

/* 1 when a Content-Type value names JSON: application/json or any
 * type/subtype+json, parameters ignored. */
int http_action_is_json_type(const char *content_type);

/* ---- validate and shared checks (http_validate.c) ---- */

int http_action_validate(const cJSON *cfg, perr *e);
/* The string member key of o, or NULL. */
const char *http_str(const cJSON *o, const char *key);
/* The boolean member key of o, or dflt when absent. */
int http_bool(const cJSON *o, const char *key, int dflt);
int http_has_tag(const char *s);
int http_starts_http(const char *s);
int http_header_name_ok(const char *s);
/* No line break or other control character but tab (RFC 9110 5.5). */
int http_header_value_ok(const char *s);
/* The Content-Type entry of a recipe's headers mapping, or NULL. */
const cJSON *http_content_type_item(const cJSON *headers);
/* JSON mode from the json flag and the Content-Type (NULL: none given). */
int http_json_mode(const cJSON *cfg, const char *content_type);
/* 0 when body parses as JSON; else -1 with the position and nearby text. */
int http_check_json(const char *body, perr *e);

/* ---- prepare (http_prepare.c) ---- */

int http_action_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                        perr *e);
/* An http(s) URL with a host, no blanks or control characters, not too long. */
int http_url_ok(const char *u);

#endif
