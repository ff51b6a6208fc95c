/*
 * http_prepare: renders an `http` step into the request exactly as it will
 * be made, which the engine stores as the step input (and `runs show`
 * prints).  Pure: no I/O, no secret resolved; secret headers and a secret
 * URL stay references.  Escaping follows where the text goes: URL
 * interpolations percent-encoded, JSON bodies JSON-escaped (then parsed as
 * a check), headers and text bodies as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actions/http_action.h"
#include "core/buf.h"
#include "core/secrets.h"

#define HTTP_URL_MAX 8192
#define HTTP_KEY_MAX 255

/* A copy of v with every string percent-encoded (RFC 3986 unreserved kept),
 * so any tag in the URL template inserts an encoded value. */
static cJSON *url_escaped(const cJSON *v) {
  if (cJSON_IsString(v)) {
    static const char hex[] = "0123456789ABCDEF";
    buf b;
    buf_init(&b, BUF_UNLIMITED);
    for (const unsigned char *p = (const unsigned char *)v->valuestring; *p; p++) {
      unsigned char ch = *p;
      int keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '.' || ch == '_' || ch == '~';
      char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
      if (keep ? buf_addc(&b, (char)ch) : buf_add(&b, enc, 3)) return NULL;
    }
    cJSON *s = cJSON_CreateString(b.data ? b.data : "");
    buf_release(&b);
    return s;
  }
  if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return cJSON_Duplicate(v, 0);
  cJSON *out = cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject();
  const cJSON *it;
  cJSON_ArrayForEach(it, v) {
    cJSON *c = out ? url_escaped(it) : NULL;
    if (!c || !(cJSON_IsArray(v) ? cJSON_AddItemToArray(out, c)
                                 : cJSON_AddItemToObject(out, it->string, c))) {
      cJSON_Delete(c);
      cJSON_Delete(out);
      return NULL;
    }
  }
  return out;
}

static char *render(const char *tpl, const cJSON *ctx, const render_env *env, tpl_escape esc,
                    perr *e) {
  tpl_opts o = {.escape = esc,
                .partial = env ? env->partial : NULL,
                .partial_ud = env ? env->partial_ud : NULL};
  return tpl_render_str(tpl, ctx, &o, e);
}

int http_url_ok(const char *u) {
  if (!http_starts_http(u) || strlen(u) > HTTP_URL_MAX) return 0;
  const char *host = strstr(u, "://") + 3;
  if (!*host || *host == '/' || *host == '?' || *host == '#') return 0;
  for (; *u; u++)
    if ((unsigned char)*u <= 0x20 || *u == 0x7f) return 0;
  return 1;
}

static int prepare_url(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON *in,
                       perr *e) {
  const char *tpl = http_str(cfg, "url");
  if (secret_is_ref(tpl)) return cJSON_AddStringToObject(in, "url_secret", tpl) ? 0 : -2;
  cJSON *esc = NULL;
  if (http_bool(cfg, "url_escape", 1) && http_has_tag(tpl) && !(esc = url_escaped(ctx))) return -2;
  char *url = render(tpl, esc ? esc : ctx, env, TPL_ESCAPE_NONE, e);
  cJSON_Delete(esc);
  if (!url) return perr_prefix(e, "url");
  int ok = http_url_ok(url);
  if (!ok) perr_set(e, "url: \"%.200s\" is not an http(s) URL without blanks", url);
  int rc = !ok ? -1 : cJSON_AddStringToObject(in, "url", url) ? 0 : -2;
  free(url);
  return rc;
}

/* A new {name} entry appended to list (which owns it), or NULL. */
static cJSON *add_entry(cJSON *list, const char *name) {
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(list, o)) {
    cJSON_Delete(o);
    return NULL;
  }
  return cJSON_AddStringToObject(o, "name", name) ? o : NULL;
}

/* headers -> [{name, value} | {name, secret, prefix?}], in recipe order. */
static int prepare_headers(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON *in,
                           const char **content_type, perr *e) {
  cJSON *list = cJSON_AddArrayToObject(in, "headers");
  if (!list) return -2;
  const cJSON *h;
  cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(cfg, "headers")) {
    cJSON *o = add_entry(list, h->string);
    if (!o) return -2;
    const char *ref = cJSON_IsObject(h)               ? http_str(h, "secret")
                      : secret_is_ref(h->valuestring) ? h->valuestring
                                                      : NULL;
    if (ref) {
      const char *prefix = cJSON_IsObject(h) ? http_str(h, "prefix") : NULL;
      if (!cJSON_AddStringToObject(o, "secret", ref) ||
          (prefix && !cJSON_AddStringToObject(o, "prefix", prefix)))
        return -2;
      continue;
    }
    char *v = render(h->valuestring, ctx, env, TPL_ESCAPE_NONE, e);
    if (!v) return perr_prefix(e, "headers.%s", h->string);
    if (!http_header_value_ok(v)) {
      free(v);
      return perr_set(e,
                      "headers.%s: the rendered value holds a line break or control "
                      "character",
                      h->string);
    }
    cJSON *s = cJSON_AddStringToObject(o, "value", v);
    free(v);
    if (!s) return -2;
    if (strcasecmp(h->string, "Content-Type") == 0) *content_type = s->valuestring;
  }
  return 0;
}

static int prepare_body(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON *in,
                        const char *content_type, perr *e) {
  const char *tpl = http_str(cfg, "body");
  if (!tpl) return 0;
  int json = http_json_mode(cfg, content_type);
  if (json && content_type && !http_action_is_json_type(content_type))
    return perr_set(e, "json: true contradicts Content-Type \"%.80s\"", content_type);
  char *body = render(tpl, ctx, env, json ? TPL_ESCAPE_JSON : TPL_ESCAPE_NONE, e);
  if (!body) return perr_prefix(e, "body");
  if (json && http_check_json(body, e)) {
    free(body);
    return -1;
  }
  int rc =
      cJSON_AddStringToObject(in, "body", body) && cJSON_AddBoolToObject(in, "json", json) ? 0 : -2;
  free(body);
  if (rc || content_type) return rc;
  cJSON *o = add_entry(cJSON_GetObjectItemCaseSensitive(in, "headers"), "Content-Type");
  if (!o ||
      !cJSON_AddStringToObject(o, "value", json ? "application/json" : "text/plain; charset=utf-8"))
    return -2;
  return 0;
}

static int prepare_rest(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON *in,
                        perr *e) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(cfg, "expect");
  if (x) {
    cJSON *arr = cJSON_IsArray(x) ? cJSON_Duplicate(x, 1) : cJSON_CreateArray();
    if (!arr || !cJSON_AddItemToObject(in, "expect", arr)) return cJSON_Delete(arr), -2;
    if (cJSON_IsNumber(x) && !cJSON_AddItemToArray(arr, cJSON_CreateNumber(x->valuedouble)))
      return -2;
  }
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "timeout_s");
  double ms = (cJSON_IsNumber(t) ? t->valuedouble : HTTP_ACTION_DEFAULT_TIMEOUT_S) * 1000.0;
  if (!cJSON_AddNumberToObject(in, "timeout_ms", ms)) return -2;
  const char *ktpl = http_str(cfg, "idempotency_key");
  if (ktpl) {
    char *key = render(ktpl, ctx, env, TPL_ESCAPE_NONE, e);
    if (!key) return perr_prefix(e, "idempotency_key");
    size_t n = strlen(key);
    int ok = n > 0 && n <= HTTP_KEY_MAX;
    for (size_t i = 0; ok && i < n; i++) ok = key[i] > 0x20 && key[i] < 0x7f;
    if (!ok) {
      free(key);
      return perr_set(e,
                      "idempotency_key: the rendered key must be 1 to %d visible ASCII "
                      "characters",
                      HTTP_KEY_MAX);
    }
    cJSON *s = cJSON_AddStringToObject(in, "idempotency_key", key);
    free(key);
    if (!s) return -2;
  }
  const cJSON *rh = cJSON_GetObjectItemCaseSensitive(cfg, "response_headers");
  cJSON *copy = rh ? cJSON_Duplicate(rh, 1) : NULL;
  if (rh && (!copy || !cJSON_AddItemToObject(in, "response_headers", copy)))
    return cJSON_Delete(copy), -2;
  return 0;
}

/* Input: {method, url | url_secret, headers: [...], body?, json?, expect?,
 * timeout_ms, idempotency_key?, response_headers?}: the request as it
 * will be made, secrets as references. */
int http_action_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                        perr *e) {
  *input = NULL;
  if (http_action_validate(cfg, e)) return -1;
  const char *method = http_str(cfg, "method");
  const char *content_type = NULL;
  cJSON *in = cJSON_CreateObject();
  int rc = !in || !cJSON_AddStringToObject(in, "method", method ? method : "POST") ? -2 : 0;
  if (!rc) rc = prepare_url(cfg, ctx, env, in, e);
  if (!rc) rc = prepare_headers(cfg, ctx, env, in, &content_type, e);
  if (!rc) rc = prepare_body(cfg, ctx, env, in, content_type, e);
  if (!rc) rc = prepare_rest(cfg, ctx, env, in, e);
  if (rc) {
    cJSON_Delete(in);
    return rc == -2 ? perr_set(e, "out of memory") : -1;
  }
  *input = in;
  return 0;
}
