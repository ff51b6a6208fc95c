/*
 * http_validate: the `http` action's cross-field checks (after the field
 * table's), and the small checks prepare and start share.  What is checked
 * and why is in http.c's opening comment; in short: header names are
 * tokens and values hold no line break, credentials are secret references
 * (Authorization refuses a literal), the Idempotency-Key and the framing
 * headers are promptd's, GET takes no body, and a body without tags in
 * JSON mode must parse already at import.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "actions/http_action.h"
#include "core/secrets.h"

const char *http_str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

int http_header_name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > 100) return 0;
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)s[i])) return 0;
  return 1;
}

/* Field values may hold tabs and any byte >= 0x20 but DEL (RFC 9110 5.5):
 * no line break can smuggle a second header. */
int http_header_value_ok(const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
  }
  return 1;
}

int http_has_tag(const char *s) { return strstr(s, "{{") != NULL; }

int http_starts_http(const char *s) {
  return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

int http_bool(const cJSON *o, const char *key, int dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static int credential_header(const char *name) {
  return strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Proxy-Authorization") == 0;
}

static int check_secret_ref(const char *where, const char *ref, perr *e) {
  if (secret_is_ref(ref)) return 0;
  return perr_set(e, "%s: expected a secret reference (env:NAME, file:/path or cred:NAME)%s", where,
                  http_has_tag(ref) ? "" : ", got a literal value (not shown)");
}

static int check_header(const cJSON *h, perr *e) {
  const char *name = h->string;
  if (!http_header_name_ok(name))
    return perr_set(e, "headers: '%.100s' is not a valid header name", name);
  if (strcasecmp(name, "Idempotency-Key") == 0)
    return perr_set(e, "headers.%s: set it with idempotency_key (it is always sent)", name);
  if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0)
    return perr_set(e, "headers.%s: computed from the body, not set by hand", name);
  if (cJSON_IsObject(h)) {
    const cJSON *f;
    cJSON_ArrayForEach(f, h) {
      if (strcmp(f->string, "secret") != 0 && strcmp(f->string, "prefix") != 0)
        return perr_set(e, "headers.%s: unknown field '%.80s' (expected secret, prefix)", name,
                        f->string);
      if (!cJSON_IsString(f))
        return perr_set(e, "headers.%s.%s: expected a string", name, f->string);
    }
    const char *ref = http_str(h, "secret"), *prefix = http_str(h, "prefix");
    char where[160];
    snprintf(where, sizeof where, "headers.%s.secret", name);
    if (!ref) return perr_set(e, "%s: required", where);
    if (check_secret_ref(where, ref, e)) return -1;
    if (prefix && !http_header_value_ok(prefix))
      return perr_set(e, "headers.%s.prefix: control characters are not allowed", name);
    return 0;
  }
  if (!cJSON_IsString(h))
    return perr_set(e,
                    "headers.%s: expected a template string, a secret reference or "
                    "{secret, prefix} (quote numbers)",
                    name);
  const char *v = h->valuestring;
  if (secret_is_ref(v)) return 0;
  if (credential_header(name) && !http_has_tag(v))
    return perr_set(e,
                    "headers.%s: a literal credential (not shown); use a secret reference, "
                    "e.g. {secret: env:TOKEN, prefix: \"Bearer \"}",
                    name);
  if (!http_header_value_ok(v))
    return perr_set(e, "headers.%s: control characters are not allowed", name);
  perr te;
  if (tpl_check(v, strlen(v), NULL, NULL, &te))
    return perr_set(e, "headers.%s: invalid template: %s", name, te.msg);
  return 0;
}

/* The Content-Type given in headers (a literal or rendered value), or NULL. */
const cJSON *http_content_type_item(const cJSON *headers) {
  const cJSON *h;
  cJSON_ArrayForEach(h, headers) {
    if (h->string && strcasecmp(h->string, "Content-Type") == 0) return h;
  }
  return NULL;
}

/* JSON mode from the json flag and the Content-Type (NULL: none given). */
int http_json_mode(const cJSON *cfg, const char *content_type) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, "json");
  if (cJSON_IsBool(j)) return cJSON_IsTrue(j);
  return !content_type || http_action_is_json_type(content_type);
}

/* Parses body as JSON; on failure says where, with the text around it. */
int http_check_json(const char *body, perr *e) {
  const char *end = NULL;
  cJSON *v = cJSON_ParseWithOpts(body, &end, 1);
  if (v) {
    cJSON_Delete(v);
    return 0;
  }
  size_t at = end && end >= body ? (size_t)(end - body) : 0;
  int line = 1, col = 1;
  for (size_t i = 0; i < at && body[i]; i++) {
    if (body[i] == '\n')
      line++, col = 1;
    else
      col++;
  }
  size_t from = at > 30 ? at - 30 : 0;
  char near[80];
  size_t n = 0;
  for (size_t i = from; body[i] && i < at + 30 && n + 1 < sizeof near; i++)
    near[n++] = (unsigned char)body[i] < 0x20 ? ' ' : body[i];
  near[n] = '\0';
  return perr_set(e,
                  "body: the rendered body is not valid JSON (line %d, column %d, near "
                  "\"%s\"); in JSON mode {{x}} belongs inside quotes, {{{x}}} inserts a "
                  "number or a sub-document",
                  line, col, near);
}

static int expect_ok(const cJSON *x, perr *e) {
  if (!x) return 0;
  if (cJSON_IsNumber(x)) {
    double d = x->valuedouble;
    if (d != (double)(long)d || d < 100 || d > 599)
      return perr_set(e, "expect: expected HTTP statuses from 100 to 599");
    return 0;
  }
  if (!cJSON_IsArray(x) || cJSON_GetArraySize(x) == 0 || cJSON_GetArraySize(x) > 64)
    return perr_set(e, "expect: expected a status or a list of 1 to 64 statuses");
  const cJSON *it;
  cJSON_ArrayForEach(it, x) {
    if (expect_ok(it, e)) return -1;
    if (cJSON_IsArray(it)) return perr_set(e, "expect: expected a flat list of statuses");
  }
  return 0;
}

int http_action_validate(const cJSON *cfg, perr *e) {
  const char *url = http_str(cfg, "url");
  const char *method = http_str(cfg, "method");
  if (!url || !*url) return perr_set(e, "url: expected an http(s) URL");
  if (!secret_is_ref(url)) {
    if (http_bool(cfg, "url_escape", 1) && !http_starts_http(url))
      return perr_set(e,
                      "url: expected to start with http:// or https:// (interpolations are "
                      "percent-encoded; url_escape: false takes a whole URL from a value)");
    if (!http_has_tag(url) && !http_starts_http(url))
      return perr_set(e, "url: expected to start with http:// or https://");
  }
  const cJSON *headers = cJSON_GetObjectItemCaseSensitive(cfg, "headers");
  if (headers && !cJSON_IsObject(headers))
    return perr_set(e, "headers: expected a mapping of header names to values");
  const cJSON *h, *h2;
  cJSON_ArrayForEach(h, headers) {
    if (check_header(h, e)) return -1;
    for (h2 = h->next; h2; h2 = h2->next)
      if (strcasecmp(h->string, h2->string) == 0)
        return perr_set(e, "headers: '%s' and '%s' name the same header", h->string, h2->string);
  }
  const char *body = http_str(cfg, "body");
  if (body && method && strcmp(method, "GET") == 0)
    return perr_set(e, "body: a GET request takes no body");
  const cJSON *ct = http_content_type_item(headers);
  if (ct && (!cJSON_IsString(ct) || secret_is_ref(ct->valuestring)))
    return perr_set(e, "headers.%s: expected a template string, not a secret", ct->string);
  /* Known now unless the Content-Type is itself a template. */
  int ct_known = !ct || !http_has_tag(ct->valuestring);
  const char *ct_text = ct ? ct->valuestring : NULL;
  if (ct_text && ct_known && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "json")) &&
      !http_action_is_json_type(ct_text))
    return perr_set(e, "json: true contradicts Content-Type \"%.80s\"", ct_text);
  /* A body without tags renders to itself: a JSON mistake shows at import. */
  if (body && !http_has_tag(body) && ct_known && http_json_mode(cfg, ct_text) &&
      http_check_json(body, e))
    return -1;
  if (expect_ok(cJSON_GetObjectItemCaseSensitive(cfg, "expect"), e)) return -1;
  const cJSON *it;
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(cfg, "response_headers")) {
    if (!cJSON_IsString(it) || !http_header_name_ok(it->valuestring))
      return perr_set(e, "response_headers: '%.100s' is not a valid header name",
                      cJSON_IsString(it) ? it->valuestring : "?");
  }
  return 0;
}
