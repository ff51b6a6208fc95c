/*
 * action `http`: one request to any HTTP endpoint.
 *
 *   - id: crm
 *     http:
 *       method: POST                  # GET, POST (default), PUT, PATCH, DELETE
 *       url: "https://crm.example/api/leads/{{event.body.id}}"
 *       headers:
 *         X-Source: "promptd {{run.recipe}}"              # a template
 *         X-Api-Key: env:CRM_KEY                          # a secret reference
 *         Authorization: { secret: env:CRM_TOKEN, prefix: "Bearer " }
 *       body: |
 *         {"name": "{{event.body.name}}", "score": {{steps.qualify.score}}}
 *       json: true                    # default: true unless Content-Type says otherwise
 *       expect: [200, 201]            # default: any 2xx
 *       timeout_s: 30
 *       idempotency_key: "lead-{{event.body.id}}"   # default promptd-<run id>-<step id>
 *       response_headers: [X-Lead-Score]            # captured besides the usual ones
 *
 * URL.  Every interpolation in `url`, {{x}} and {{{x}}} alike, is
 * percent-encoded (all but RFC 3986 unreserved characters), so a value from
 * an event cannot add path segments, a query or a fragment ("../admin",
 * "x?all=1").  The literal part must then start with http:// or https://.
 * `url_escape: false` takes values as they are (a whole URL from an earlier
 * step); the rendered URL is then only checked for scheme and blanks.
 * `url` may instead be exactly a secret reference (an incoming-webhook URL
 * is itself the credential): resolved at start, never stored.
 *
 * Secrets.  A header value that is exactly a reference (env:, file:,
 * cred:), or a mapping {secret: REF, prefix: TEXT} for "Bearer "-style
 * values, is stored in the step input as the reference and resolved in
 * start() each attempt; the value goes into curl's header list and is wiped
 * from our copies as soon as curl has its own.  secret_resolve registers it
 * with log_redact.  Authorization and Proxy-Authorization refuse a literal
 * value (a template without tags): secrets are never written into recipes.
 *
 * Body.  In JSON mode (json: true, or no json: and either no Content-Type
 * or a JSON one) interpolations are JSON-escaped, so {{x}} belongs inside
 * quotes; {{{x}}} inserts a value raw, for numbers or whole sub-documents
 * ({{{event.body}}}).  The rendered body must parse as JSON, or prepare
 * fails the run with the position and the text around it.  Content-Type
 * defaults to application/json (JSON mode) or text/plain; charset=utf-8;
 * it may be a template but not a secret.  GET takes no body.
 *
 * Idempotency.  Every request carries Idempotency-Key: by default
 * "promptd-<run id>-<step id>", identical across retries, restarts and
 * `runs replay` of the same run, so a receiver that honours the header
 * drops repeats.  Run ids are per database: a receiver shared by several
 * databases should get an explicit idempotency_key built from the event's
 * own identity.  The guarantee is at-least-once: a crash after the request
 * left and before its outcome was stored sends it again, with the same key.
 *
 * Life of a call: prepare (pure) renders everything into the input the
 * engine stores; start resolves secrets, hands the request to the
 * runtime's http_client and returns; on_done classifies (http_result.c)
 * and reports exactly once; cancel stops the transfer, which then reports
 * CANCELLED through on_done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "actions/http_action.h"
#include "core/connector.h"
#include "core/runtime.h"
#include "core/secrets.h"
#include "net/http_client.h"

#define HTTP_MAX_RESPONSE (1u << 20)

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

static const field_spec http_fields[] = {
    {"method", FT_STRING, 0, "GET, POST, PUT, PATCH or DELETE (default POST)", 0, 0, methods, NULL},
    {"url", FT_TEMPLATE, FIELD_REQUIRED,
     "http(s) URL, a template whose interpolations are percent-encoded; or a secret reference", 0,
     0, NULL, NULL},
    {"url_escape", FT_BOOL, 0, "percent-encode interpolations in url (default true)", 0, 0, NULL,
     NULL},
    {"headers", FT_JSON, 0, "name: template, secret reference, or {secret: REF, prefix: TEXT}", 0,
     0, NULL, NULL},
    {"body", FT_TEMPLATE, 0, "request body, a template (JSON-escaped in JSON mode)", 0, 0, NULL,
     NULL},
    {"json", FT_BOOL, 0,
     "the body is JSON: escape interpolations, check it parses (default: unless Content-Type "
     "says otherwise)",
     0, 0, NULL, NULL},
    {"expect", FT_JSON, 0, "status or list of statuses that count as success (default any 2xx)", 0,
     0, NULL, NULL},
    {"timeout_s", FT_INT, 0, "whole request limit in seconds (default 30)", 1, 3600, NULL, NULL},
    {"idempotency_key", FT_TEMPLATE, 0,
     "Idempotency-Key value, a template (default promptd-<run id>-<step id>)", 0, 0, NULL, NULL},
    {"response_headers", FT_STRING_LIST, 0,
     "response headers to keep in the output besides the usual ones", 0, 0, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

/* ---- start ---- */

typedef struct http_step {
  action_call *c;
  http_call *http;
  long timeout_ms;
} http_step;

/* Overwrites a string holding a secret before it is freed. */
static void wipe_free(char *s) {
  if (!s) return;
  explicit_bzero(s, strlen(s));
  free(s);
}

static void free_lines(char **lines) {
  for (size_t i = 0; lines && lines[i]; i++) wipe_free(lines[i]);
  free(lines);
}

static char *header_line(const char *name, const char *prefix, const char *value) {
  size_t n = strlen(name) + 2 + strlen(prefix) + strlen(value) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s: %s%s", name, prefix, value);
  return s;
}

static int has_line(char **lines, size_t n, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < n; i++)
    if (strncasecmp(lines[i], name, len) == 0 && lines[i][len] == ':') return 1;
  return 0;
}

/* "Name: value" lines for curl, secrets resolved; NULL with e set. */
static char **build_headers(const action_call *c, perr *e) {
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(c->input, "headers");
  size_t cap = (size_t)cJSON_GetArraySize(list) + 3, n = 0;
  char **lines = calloc(cap, sizeof *lines);
  if (!lines) return perr_set(e, "out of memory"), NULL;
  const cJSON *h;
  cJSON_ArrayForEach(h, list) {
    const char *name = http_str(h, "name"), *ref = http_str(h, "secret");
    const char *prefix = http_str(h, "prefix"), *value = http_str(h, "value");
    if (!name || (!ref && !value)) goto bad_input;
    if (ref) {
      char *secret = secret_resolve(ref, e);
      if (!secret) goto fail;
      if (!http_header_value_ok(secret)) {
        wipe_free(secret);
        perr_set(e, "headers.%s: the value of %s holds a line break or control character", name,
                 ref);
        goto fail;
      }
      lines[n] = header_line(name, prefix ? prefix : "", secret);
      wipe_free(secret);
    } else {
      lines[n] = header_line(name, "", value);
    }
    if (!lines[n++]) goto oom;
  }
  const char *key = http_str(c->input, "idempotency_key");
  char dflt[160];
  if (!key) {
    snprintf(dflt, sizeof dflt, "promptd-%lld-%s", (long long)c->run_id, c->step_id);
    key = dflt;
  }
  if (!(lines[n++] = header_line("Idempotency-Key", "", key))) goto oom;
  if (!has_line(lines, n, "User-Agent") &&
      !(lines[n++] = header_line("User-Agent", "", "promptd/" PROMPTD_VERSION)))
    goto oom;
  return lines;
bad_input:
  perr_set(e, "http: the step input has a malformed header");
  goto fail;
oom:
  perr_set(e, "out of memory");
fail:
  free_lines(lines);
  return NULL;
}

static const char *header_of(void *ud, const char *name) { return http_response_header(ud, name); }

static void on_done(void *ud, const http_response *resp) {
  http_step *k = ud;
  action_call *c = k->c;
  http_result r = {resp->transport_error, resp->error, resp->timed_out, resp->status, header_of,
                   (void *)resp,          resp->body,  resp->body_len};
  http_verdict v;
  http_action_classify(&r, cJSON_GetObjectItemCaseSensitive(c->input, "expect"), k->timeout_ms,
                       (long long)time(NULL), &v);
  c->priv = NULL;
  free(k);
  if (v.cls != OUTCOME_OK) {
    action_done(c, v.cls, NULL, v.message, v.retry_after_ms);
    return;
  }
  cJSON *out =
      http_action_output(&r, cJSON_GetObjectItemCaseSensitive(c->input, "response_headers"));
  /* Delivered: report success even without the output, rather than a
   * retry that would send it again. */
  action_done(c, OUTCOME_OK, out, NULL, 0);
}

static int http_start(action_call *c, perr *e) {
  if (!c->rt || !c->rt->http) return perr_set(e, "http: no HTTP client");
  const char *method = http_str(c->input, "method"), *url = http_str(c->input, "url");
  const char *url_ref = http_str(c->input, "url_secret"), *body = http_str(c->input, "body");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(c->input, "timeout_ms");
  if (!method || (!url && !url_ref))
    return perr_set(e, "http: the step input has no method or url");
  char *secret_url = NULL;
  if (url_ref) {
    if (!(secret_url = secret_resolve(url_ref, e))) return perr_prefix(e, "url");
    if (!http_url_ok(secret_url)) {
      wipe_free(secret_url);
      return perr_set(e, "url: the value of %s is not an http(s) URL without blanks", url_ref);
    }
  }
  char **lines = build_headers(c, e);
  http_step *k = lines ? calloc(1, sizeof *k) : NULL;
  if (!k) {
    wipe_free(secret_url);
    free_lines(lines);
    return lines ? perr_set(e, "out of memory") : -1;
  }
  k->c = c;
  k->timeout_ms = cJSON_IsNumber(t) ? (long)t->valuedouble : HTTP_ACTION_DEFAULT_TIMEOUT_S * 1000L;
  http_request req = {.method = method,
                      .url = secret_url ? secret_url : url,
                      .headers = (const char *const *)lines,
                      .body = body,
                      .body_len = body ? strlen(body) : 0,
                      .timeout_ms = k->timeout_ms,
                      .connect_timeout_ms = k->timeout_ms < 10000 ? k->timeout_ms : 10000,
                      .max_response = HTTP_MAX_RESPONSE};
  perr he;
  int rc = http_client_start(c->rt->http, &req, on_done, k, &k->http, &he);
  /* curl copied the URL, the header lines and the body. */
  wipe_free(secret_url);
  free_lines(lines);
  if (rc) {
    free(k);
    /* The client's message names the URL, which may be the secret. */
    action_done(c, OUTCOME_RETRY, NULL, url_ref ? "cannot start the request" : he.msg, 0);
    return 0;
  }
  c->priv = k;
  return 0;
}

static void http_cancel(action_call *c) {
  http_step *k = c->priv;
  if (k && k->http) http_call_cancel(k->http); /* reported by on_done */
}

const action_kind action_http = {
    .name = "http",
    .summary =
        "sends one HTTP request (JSON by default); status, headers and body become "
        "steps.<id>.*",
    .guarantee =
        "at-least-once, with an Idempotency-Key (same run and step, same key) the "
        "receiver can use to drop repeats",
    .fields = http_fields,
    .validate = http_action_validate,
    .prepare = http_action_prepare,
    .start = http_start,
    .cancel = http_cancel,
};
