/*
 * trigger `webhook`: events from HTTP requests to promptd's own server.
 *
 *   trigger:
 *     webhook:
 *       path: /hooks/leads              # the URL path this recipe answers
 *       methods: [POST]                 # default POST; GET for verification handshakes
 *       verify: github                  # or stripe, slack, typeform, { hmac: {...} }
 *       secret: env:LEADS_SECRET        # required with verify (and only with it)
 *       dedupe: header:X-GitHub-Delivery   # or body:PATH (a dotted path into the JSON body)
 *       map: typeform                   # also put form answers in event.fields
 *
 * The kind is passive as far as the engine is concerned: it opens nothing
 * per recipe.  One HTTP server (webhook_router.c) serves every webhook
 * recipe and routes each request by path through the engine's current
 * recipe set, so importing or disabling a recipe changes routing without a
 * restart.  Events are ingested under the source "webhook:<path>", so
 * `promptd emit --source webhook:/hooks/leads` can replay one by hand.
 *
 * Paths are restricted to a small alphabet: they become event source names
 * (shown in logs unquoted, typed on command lines) and are compared byte
 * for byte against MHD's percent-decoded request path.
 */
#include <stdlib.h>
#include <string.h>

#include "core/connector.h"
#include "triggers/webhook_route.h"
#include "triggers/webhook_verify.h"

static const char *const method_choices[] = {"POST", "GET", "PUT", NULL};
static const char *const map_choices[] = {"typeform", NULL};

static const field_spec webhook_fields[] = {
    {.name = "path",
     .type = FT_STRING,
     .flags = FIELD_REQUIRED,
     .help = "URL path answered, e.g. /hooks/leads (starts with /; A-Z a-z 0-9 . _ - / ~)"},
    {.name = "methods",
     .type = FT_STRING_LIST,
     .help = "HTTP methods accepted: POST (default), GET, PUT"},
    {.name = "verify", .type = FT_JSON, .help = WEBHOOK_VERIFY_HELP},
    {.name = "secret",
     .type = FT_SECRET,
     .help = "shared secret for verify (env:NAME, file:/path or cred:NAME)"},
    {.name = "dedupe",
     .type = FT_STRING,
     .help = "idempotency key: header:NAME or body:PATH; a redelivery gets the first event's id"},
    {.name = "map",
     .type = FT_STRING,
     .choices = map_choices,
     .help = "body mapping: typeform puts form_response answers in event.fields by title"},
    {.name = NULL},
};

static int path_char_ok(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-' || c == '/' || c == '~';
}

static int validate_path(const char *p, perr *e) {
  size_t n = strlen(p);
  if (n < 2 || p[0] != '/')
    return perr_set(e, "path: expected a URL path starting with / such as /hooks/leads, got "
                       "\"%.64s\"", p);
  if (n > WEBHOOK_PATH_MAX)
    return perr_set(e, "path: expected at most %d characters, got %zu", WEBHOOK_PATH_MAX, n);
  for (size_t i = 0; i < n; i++)
    if (!path_char_ok(p[i]))
      return perr_set(e, "path: character %zu is not one of A-Z a-z 0-9 . _ - / ~", i + 1);
  if (strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../") ||
      (n >= 2 && strcmp(p + n - 2, "/.") == 0) || (n >= 3 && strcmp(p + n - 3, "/..") == 0))
    return perr_set(e, "path: empty, . or .. segments are not allowed, got \"%s\"", p);
  return 0;
}

static int validate_dedupe(const char *d, perr *e) {
  if (strncmp(d, "header:", 7) == 0) {
    const char *h = d + 7;
    if (!*h) return perr_set(e, "dedupe: header: needs a header name, e.g. header:Idempotency-Key");
    for (; *h; h++)
      if (!((*h >= 'A' && *h <= 'Z') || (*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') ||
            *h == '-' || *h == '_'))
        return perr_set(e, "dedupe: \"%.64s\" is not a header name (A-Z a-z 0-9 - _)", d + 7);
    return 0;
  }
  if (strncmp(d, "body:", 5) == 0) {
    if (!d[5] || d[5] == '.' || d[strlen(d) - 1] == '.')
      return perr_set(e, "dedupe: body: needs a dotted path into the JSON body, e.g. body:id");
    return 0;
  }
  return perr_set(e, "dedupe: expected header:NAME or body:PATH, got \"%.64s\"", d);
}

static int webhook_validate(const cJSON *cfg, perr *e) {
  const cJSON *path = cJSON_GetObjectItemCaseSensitive(cfg, "path");
  if (!cJSON_IsString(path)) return perr_set(e, "path: expected a string");
  if (validate_path(path->valuestring, e)) return -1;
  const cJSON *methods = cJSON_GetObjectItemCaseSensitive(cfg, "methods"), *m;
  if (methods && cJSON_GetArraySize(methods) == 0)
    return perr_set(e, "methods: expected at least one of POST, GET, PUT");
  cJSON_ArrayForEach(m, methods) {
    int ok = 0;
    for (size_t i = 0; method_choices[i] && cJSON_IsString(m); i++)
      ok |= strcmp(m->valuestring, method_choices[i]) == 0;
    if (!ok)
      return perr_set(e, "methods: expected POST, GET or PUT, got \"%.32s\"",
                      cJSON_IsString(m) ? m->valuestring : "?");
  }
  const cJSON *verify = cJSON_GetObjectItemCaseSensitive(cfg, "verify");
  const cJSON *secret = cJSON_GetObjectItemCaseSensitive(cfg, "secret");
  if (verify && webhook_verify_validate(verify, e)) return -1;
  if (verify && !secret)
    return perr_set(e, "secret: required with verify (e.g. secret: env:LEADS_SECRET)");
  if (secret && !verify)
    return perr_set(e, "secret: given without verify; name the signature scheme "
                       "(verify: github, stripe, slack, typeform or { hmac: ... })");
  const cJSON *dedupe = cJSON_GetObjectItemCaseSensitive(cfg, "dedupe");
  if (cJSON_IsString(dedupe) && validate_dedupe(dedupe->valuestring, e)) return -1;
  return 0;
}

static char *webhook_source(const cJSON *cfg) {
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(cfg, "path");
  if (!cJSON_IsString(p)) return NULL;
  size_t n = strlen(p->valuestring);
  char *s = malloc(sizeof WEBHOOK_SOURCE_PREFIX + n);
  if (!s) return NULL;
  memcpy(s, WEBHOOK_SOURCE_PREFIX, sizeof WEBHOOK_SOURCE_PREFIX - 1);
  memcpy(s + sizeof WEBHOOK_SOURCE_PREFIX - 1, p->valuestring, n + 1);
  return s;
}

const trigger_kind trigger_webhook = {
    .name = "webhook",
    .summary = "HTTP requests to promptd's server (http.listen or serve --listen): signed, "
               "deduplicated, answered 202 once durable",
    .fields = webhook_fields,
    .flags = TRIGGER_PASSIVE | TRIGGER_HTTP,
    .validate = webhook_validate,
    .source = webhook_source,
};
