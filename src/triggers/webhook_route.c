/*
 * webhook_route: request -> event, as described in webhook_route.h.  Every
 * refusal happens here, before anything is stored: the router only
 * forwards the status and the reason.
 */
#include "triggers/webhook_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/jpath.h"
#include "core/utf8.h"
#include "triggers/typeform_map.h"

const char *webhook_header(const webhook_request *rq, const char *name) {
  for (size_t i = 0; i < rq->nheaders; i++)
    if (strcasecmp(rq->headers[i].name, name) == 0) return rq->headers[i].value;
  return NULL;
}

int webhook_method_allowed(const cJSON *cfg, const char *method) {
  const cJSON *methods = cJSON_GetObjectItemCaseSensitive(cfg, "methods"), *m;
  if (!methods) return strcmp(method, "POST") == 0;
  cJSON_ArrayForEach(m, methods) if (cJSON_IsString(m) && strcmp(m->valuestring, method) == 0)
      return 1;
  return 0;
}

void webhook_allow_list(const cJSON *cfg, char *out, size_t len) {
  const cJSON *methods = cJSON_GetObjectItemCaseSensitive(cfg, "methods"), *m;
  size_t at = 0;
  out[0] = '\0';
  if (!methods) {
    snprintf(out, len, "POST");
    return;
  }
  cJSON_ArrayForEach(m, methods) {
    if (!cJSON_IsString(m) || at >= len) continue;
    int n = snprintf(out + at, len - at, "%s%s", at ? ", " : "", m->valuestring);
    if (n > 0) at += (size_t)n;
  }
}

static int fail(char *why, size_t why_len, int status, const char *msg) {
  snprintf(why, why_len, "%s", msg);
  return status;
}

/* Adds name=value to obj; a repeated name turns the value into a list. */
static int add_repeatable(cJSON *obj, const char *name, const char *value) {
  cJSON *v = cJSON_CreateString(value);
  if (!v) return -1;
  cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!old) {
    cJSON_AddItemToObject(obj, name, v);
    return 0;
  }
  if (cJSON_IsArray(old)) {
    cJSON_AddItemToArray(old, v);
    return 0;
  }
  cJSON *list = cJSON_CreateArray();
  if (!list) {
    cJSON_Delete(v);
    return -1;
  }
  cJSON_AddItemToArray(list, cJSON_Duplicate(old, 1));
  cJSON_AddItemToArray(list, v);
  cJSON_ReplaceItemInObjectCaseSensitive(obj, name, list);
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..n) into a new string, `+` as space.  NULL with
 * *bad set when a %XX is malformed or decodes to NUL. */
static char *form_decode(const char *s, size_t n, int *bad) {
  char *out = malloc(n + 1);
  size_t o = 0;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      out[o++] = ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        free(out);
        *bad = 1;
        return NULL;
      }
      out[o++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

static int parse_form(const char *body, size_t len, cJSON **out, char *why, size_t why_len) {
  cJSON *obj = cJSON_CreateObject();
  if (!obj) return fail(why, why_len, 500, "out of memory");
  size_t i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && body[end] != '&') end++;
    size_t eq = i;
    while (eq < end && body[eq] != '=') eq++;
    if (end > i) {
      int bad = 0;
      char *name = form_decode(body + i, eq - i, &bad);
      char *value = name ? form_decode(body + eq + (eq < end), end - eq - (eq < end), &bad)
                         : NULL;
      int rc = 0;
      if (!name || !value)
        rc = bad ? fail(why, why_len, 400, "form body: malformed percent-encoding")
                 : fail(why, why_len, 500, "out of memory");
      else if (!utf8_valid(name, strlen(name), NULL) || !utf8_valid(value, strlen(value), NULL))
        rc = fail(why, why_len, 400, "form body: a name or value is not valid UTF-8");
      else if (add_repeatable(obj, name, value))
        rc = fail(why, why_len, 500, "out of memory");
      free(name);
      free(value);
      if (rc) {
        cJSON_Delete(obj);
        return rc;
      }
    }
    i = end + 1;
  }
  *out = obj;
  return 0;
}

/* Media type (lower-cased, parameters dropped) and whether the charset, if
 * any, is one promptd reads.  0 for an empty or non-ASCII type: it is
 * quoted in the answer, which must stay valid UTF-8. */
static int media_type(const char *ct, char *type, size_t len, int *charset_ok) {
  size_t n = 0;
  while (*ct == ' ' || *ct == '\t') ct++;
  while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t' && n + 1 < len) {
    if ((unsigned char)ct[n] < 0x21 || (unsigned char)ct[n] > 0x7e) return 0;
    type[n] = (char)((ct[n] >= 'A' && ct[n] <= 'Z') ? ct[n] + 32 : ct[n]);
    n++;
  }
  type[n] = '\0';
  *charset_ok = 1;
  const char *cs = strcasestr(ct, "charset=");
  if (cs) {
    cs += 8;
    if (*cs == '"') cs++;
    *charset_ok = strncasecmp(cs, "utf-8", 5) == 0 || strncasecmp(cs, "utf8", 4) == 0 ||
                  strncasecmp(cs, "us-ascii", 8) == 0;
  }
  return n > 0;
}

static int is_json_type(const char *t) {
  size_t n = strlen(t);
  return strcmp(t, "application/json") == 0 ||
         (strncmp(t, "application/", 12) == 0 && n > 17 && strcmp(t + n - 5, "+json") == 0);
}

/* Nesting depth of a parsed value (cJSON bounds it at CJSON_NESTING_LIMIT,
 * so the recursion is bounded too). */
static int json_depth(const cJSON *j, int d) {
  int deepest = d;
  if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
    deepest = d + 1;
    for (const cJSON *c = j->child; c; c = c->next) {
      int k = json_depth(c, d + 1);
      if (k > deepest) deepest = k;
    }
  }
  return deepest;
}

static int parse_body(const webhook_request *rq, cJSON **out, char *why, size_t why_len) {
  const char *ct = webhook_header(rq, "Content-Type");
  if (rq->body_len == 0 && (!ct || !*ct)) {
    *out = cJSON_CreateNull();
    return *out ? 0 : fail(why, why_len, 500, "out of memory");
  }
  char type[96];
  int charset_ok;
  if (!ct || !media_type(ct, type, sizeof type, &charset_ok))
    return fail(why, why_len, 415, "a body needs a Content-Type: application/json, "
                                   "application/x-www-form-urlencoded or text/plain");
  int json = is_json_type(type), form = strcmp(type, "application/x-www-form-urlencoded") == 0,
      text = strncmp(type, "text/", 5) == 0;
  if (!json && !form && !text) {
    snprintf(why, why_len, "unsupported Content-Type %.64s: send application/json, "
                           "application/x-www-form-urlencoded or text/plain", type);
    return 415;
  }
  if (!charset_ok) return fail(why, why_len, 415, "unsupported charset: send UTF-8");
  if (memchr(rq->body, '\0', rq->body_len)) return fail(why, why_len, 400, "body holds a NUL byte");
  if (form) return parse_form(rq->body, rq->body_len, out, why, why_len);
  size_t bad;
  if (!utf8_valid(rq->body, rq->body_len, &bad)) {
    snprintf(why, why_len, "body is not valid UTF-8 (byte %zu)", bad + 1);
    return 400;
  }
  if (text) {
    *out = cJSON_CreateString(rq->body);
    return *out ? 0 : fail(why, why_len, 500, "out of memory");
  }
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(rq->body, rq->body_len, &end, 0);
  if (!j) {
    snprintf(why, why_len, "body is not valid JSON (near byte %zu)",
             end && end >= rq->body ? (size_t)(end - rq->body) + 1 : (size_t)1);
    return 400;
  }
  for (; end && end < rq->body + rq->body_len; end++)
    if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n') {
      cJSON_Delete(j);
      return fail(why, why_len, 400, "body is not valid JSON (text after the value)");
    }
  /* The event wraps the body one level deeper, and must parse back. */
  if (json_depth(j, 0) > WEBHOOK_BODY_MAX_DEPTH) {
    cJSON_Delete(j);
    snprintf(why, why_len, "body is nested more than %d levels deep", WEBHOOK_BODY_MAX_DEPTH);
    return 400;
  }
  *out = j;
  return 0;
}

static int credential_header(const char *name) {
  return strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Proxy-Authorization") == 0 ||
         strcasecmp(name, "Cookie") == 0;
}

static cJSON *headers_object(const webhook_request *rq) {
  cJSON *h = cJSON_CreateObject();
  for (size_t i = 0; h && i < rq->nheaders; i++) {
    if (credential_header(rq->headers[i].name)) continue;
    /* Whole names, lower-cased (ASCII only, so UTF-8 stays intact); the
     * server's header memory bounds their length. */
    char *name = strdup(rq->headers[i].name);
    for (char *p = name; p && *p; p++)
      if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    int bad = !name || add_repeatable(h, name, rq->headers[i].value);
    free(name);
    if (bad) {
      cJSON_Delete(h);
      return NULL;
    }
  }
  return h;
}

static char *dedupe_key(const cJSON *cfg, const webhook_request *rq, const cJSON *body) {
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(cfg, "dedupe");
  if (!cJSON_IsString(d)) return NULL;
  if (strncmp(d->valuestring, "header:", 7) == 0) {
    const char *v = webhook_header(rq, d->valuestring + 7);
    return v && *v ? strdup(v) : NULL;
  }
  const cJSON *v = strncmp(d->valuestring, "body:", 5) == 0 ? jpath_get(body, d->valuestring + 5)
                                                             : NULL;
  if (cJSON_IsString(v) && *v->valuestring) return strdup(v->valuestring);
  if (cJSON_IsNumber(v)) return cJSON_PrintUnformatted(v);
  return NULL;
}

int webhook_event_build(const cJSON *cfg, const webhook_request *rq, char **payload, size_t *len,
                        char **dedupe, char *why, size_t why_len) {
  cJSON *ev = NULL;
  int st = webhook_event_make(cfg, rq, &ev, payload, len, dedupe, why, why_len);
  cJSON_Delete(ev);
  return st;
}

int webhook_event_make(const cJSON *cfg, const webhook_request *rq, cJSON **event, char **payload,
                       size_t *len, char **dedupe, char *why, size_t why_len) {
  *event = NULL;
  *payload = NULL;
  *dedupe = NULL;
  *len = 0;
  for (size_t i = 0; i < rq->nheaders; i++)
    if (!utf8_valid(rq->headers[i].value, strlen(rq->headers[i].value), NULL) ||
        !utf8_valid(rq->headers[i].name, strlen(rq->headers[i].name), NULL))
      return fail(why, why_len, 400, "a header is not valid UTF-8");
  for (size_t i = 0; i < rq->nquery; i++)
    if (!utf8_valid(rq->query[i].value, strlen(rq->query[i].value), NULL) ||
        !utf8_valid(rq->query[i].name, strlen(rq->query[i].name), NULL))
      return fail(why, why_len, 400, "a query argument is not valid UTF-8");
  cJSON *body = NULL;
  int st = parse_body(rq, &body, why, why_len);
  if (st) return st;
  cJSON *ev = cJSON_CreateObject(), *headers = headers_object(rq), *query = cJSON_CreateObject();
  int oom = !ev || !headers || !query;
  for (size_t i = 0; !oom && i < rq->nquery; i++)
    oom = add_repeatable(query, rq->query[i].name, rq->query[i].value) != 0;
  if (oom) {
    cJSON_Delete(ev);
    cJSON_Delete(headers);
    cJSON_Delete(query);
    cJSON_Delete(body);
    return fail(why, why_len, 500, "out of memory");
  }
  cJSON_AddStringToObject(ev, "method", rq->method);
  cJSON_AddStringToObject(ev, "path", rq->path);
  cJSON_AddItemToObject(ev, "headers", headers);
  cJSON_AddItemToObject(ev, "query", query);
  cJSON_AddItemToObject(ev, "body", body);
  const cJSON *map = cJSON_GetObjectItemCaseSensitive(cfg, "map");
  if (cJSON_IsString(map) && strcmp(map->valuestring, "typeform") == 0) {
    perr e;
    cJSON *fields = typeform_fields(body, &e);
    if (!fields) {
      cJSON_Delete(ev);
      snprintf(why, why_len, "typeform body: %s", e.msg);
      return 400;
    }
    cJSON_AddItemToObject(ev, "fields", fields);
  }
  *dedupe = dedupe_key(cfg, rq, body);
  *payload = cJSON_PrintUnformatted(ev);
  if (!*payload) {
    cJSON_Delete(ev);
    free(*dedupe);
    *dedupe = NULL;
    return fail(why, why_len, 500, "out of memory");
  }
  *event = ev;
  *len = strlen(*payload);
  return 0;
}
