/*
 * webhook_router: the request path of webhook_router.h.
 *
 * Ownership: an http_req belongs to the server until the handler gets it,
 * then to the handler until http_req_reply.  A request waiting for its
 * commit is owned by its `pending` record, which the engine's ingest
 * callback consumes exactly once (after the commit, or from engine_free
 * with ok = 0), so every request is answered exactly once.
 */
#include "triggers/webhook_router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics_catalog.h"
#include "core/recipe_set.h"
#include "core/secrets.h"
#include "core/service.h"
#include "net/http_server.h"
#include "triggers/webhook_route.h"
#include "triggers/webhook_verify.h"

const field_spec webhook_http_fields[] = {
    {.name = "listen",
     .type = FT_STRING,
     .help = "ADDR:PORT the webhook server listens on (default " WEBHOOK_DEFAULT_LISTEN
             "; serve --listen overrides)"},
    {.name = "max_body_bytes",
     .type = FT_INT,
     .min = 1,
     .max = 64 * 1024 * 1024,
     .help = "larger request bodies are answered 413 (default 1048576)"},
    {.name = "max_header_bytes",
     .type = FT_INT,
     .min = 4096,
     .max = 1024 * 1024,
     .help = "memory for one request's line and headers (default 8192)"},
    {.name = "max_connections",
     .type = FT_INT,
     .min = 1,
     .max = 65536,
     .help = "open connections at once (default 1024)"},
    {.name = "idle_timeout_s",
     .type = FT_INT,
     .min = 1,
     .max = 3600,
     .help = "a connection silent this long is closed; drops slow clients (default 30)"},
    {.name = "max_queue",
     .type = FT_INT,
     .min = 1,
     .max = 100000000,
     .help = "runs waiting to start above which webhooks get 503 + Retry-After (default 100000)"},
    {.name = "queue_retry_after_s",
     .type = FT_INT,
     .min = 1,
     .max = 3600,
     .help = "Retry-After sent with that 503 (default 5)"},
    {.name = NULL},
};

struct webhook_router {
  engine *en;
  http_server *srv;
  long max_queue;
  long retry_after_s;
};

typedef struct pending {
  webhook_router *r;
  http_req *req;
} pending;

static long cfg_int(const cJSON *sec, const char *name, long dflt) {
  const cJSON *v = sec ? cJSON_GetObjectItemCaseSensitive(sec, name) : NULL;
  return cJSON_IsNumber(v) ? (long)v->valuedouble : dflt;
}

int webhook_router_wanted(const engine *en) {
  const recipe_set *rs = engine_recipes(en);
  for (size_t i = 0; rs && i < recipe_set_count(rs); i++)
    if (recipe_set_at(rs, i)->trigger->flags & TRIGGER_HTTP) return 1;
  return 0;
}

/* ---- request collection ---- */

typedef struct kv_list {
  webhook_kv *v;
  size_t n, cap;
  int oom;
} kv_list;

static void kv_add(void *ud, const char *name, const char *value) {
  kv_list *l = ud;
  if (l->oom) return;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    webhook_kv *p = realloc(l->v, cap * sizeof *p);
    if (!p) {
      l->oom = 1;
      return;
    }
    l->v = p;
    l->cap = cap;
  }
  l->v[l->n++] = (webhook_kv){name, value};
}

static const char *req_header(void *ud, const char *name) { return http_req_header(ud, name); }

/* ---- answers ---- */

static void on_ingested(void *ud, int ok, const intake_result *res, const char *err) {
  pending *p = ud;
  if (!ok) {
    http_req_reply_error(p->req, 503, err ? err : "the event could not be stored");
  } else {
    char body[160];
    int n = snprintf(body, sizeof body, "{\"event_id\":%lld,\"runs\":%d,\"duplicate\":%s}",
                     (long long)res->event_id, res->runs, res->created ? "false" : "true");
    http_req_reply(p->req, 202, "application/json", body, (size_t)n, NULL);
  }
  free(p);
}

static void reply_status(http_req *req, int status, const char *why) {
  http_req_reply_error(req, (unsigned)status, why);
}

/* Slack checks a new Events API URL with a signed url_verification request
 * and expects its challenge back; it is not an event. */
static int slack_handshake(http_req *req, const webhook_verifier *v) {
  if (strcmp(webhook_verifier_name(v), "slack") != 0) return 0;
  size_t len;
  const char *body = http_req_body(req, &len);
  cJSON *j = cJSON_ParseWithLength(body, len);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
  const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "challenge");
  int is = cJSON_IsString(type) && strcmp(type->valuestring, "url_verification") == 0 &&
           cJSON_IsString(ch);
  if (is) {
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "challenge", ch->valuestring);
    char *text = cJSON_PrintUnformatted(out);
    if (text)
      http_req_reply(req, 200, "application/json", text, strlen(text), NULL);
    else
      reply_status(req, 500, "out of memory");
    free(text);
    cJSON_Delete(out);
  }
  cJSON_Delete(j);
  return is;
}

/* 0: every recipe on the path that names a scheme accepts the request;
 * else the status already sent (401, 500).  *handled: a handshake was
 * answered. */
static int check_signatures(http_req *req, const recipe *const *routes, size_t n, int *handled) {
  size_t len;
  const char *body = http_req_body(req, &len);
  for (size_t i = 0; i < n; i++) {
    const cJSON *verify = cJSON_GetObjectItemCaseSensitive(routes[i]->trigger_cfg, "verify");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(routes[i]->trigger_cfg, "secret");
    if (!verify) continue;
    perr e;
    webhook_verifier *v = webhook_verifier_new(verify, &e);
    char *secret = v && cJSON_IsString(ref) ? secret_resolve(ref->valuestring, &e) : NULL;
    if (!secret) {
      log_error("webhook refused: cannot check its signature", "recipe=%s error=%s",
                routes[i]->name, log_q(e.msg));
      webhook_verifier_free(v);
      reply_status(req, 500, "the recipe's signature secret is not available");
      return 500;
    }
    char why[200] = "";
    int bad = webhook_verify(v, secret, strlen(secret), req_header, req, body, len,
                             (int64_t)time(NULL), why, sizeof why);
    size_t slen = strlen(secret);
    memset(secret, 0, slen);
    free(secret);
    if (bad) {
      log_warn("webhook refused: signature", "path=%s recipe=%s scheme=%s reason=%s",
               http_req_path(req), routes[i]->name, webhook_verifier_name(v), log_q(why));
      webhook_verifier_free(v);
      char msg[260];
      snprintf(msg, sizeof msg, "signature check failed: %s", why);
      reply_status(req, 401, msg);
      return 401;
    }
    if (i == 0 && slack_handshake(req, v)) {
      webhook_verifier_free(v);
      *handled = 1;
      return 0;
    }
    webhook_verifier_free(v);
  }
  return 0;
}

/* The enabled recipes whose webhook trigger answers path (name order). */
static size_t find_routes(const engine *en, const char *path, const recipe **out, size_t max) {
  const recipe_set *rs = engine_recipes(en);
  size_t n = 0, plen = strlen(path), pre = sizeof WEBHOOK_SOURCE_PREFIX - 1;
  for (size_t i = 0; rs && i < recipe_set_count(rs) && n < max; i++) {
    const recipe *r = recipe_set_at(rs, i);
    if ((r->trigger->flags & TRIGGER_HTTP) && strlen(r->source) == pre + plen &&
        memcmp(r->source, WEBHOOK_SOURCE_PREFIX, pre) == 0 && strcmp(r->source + pre, path) == 0)
      out[n++] = r;
  }
  return n;
}

#define MAX_ROUTES 32

static void on_request(void *ud, http_req *req) {
  webhook_router *r = ud;
  const char *path = http_req_path(req), *method = http_req_method(req);
  const recipe *routes[MAX_ROUTES];
  size_t n = find_routes(r->en, path, routes, MAX_ROUTES);
  if (n == 0) {
    reply_status(req, 404, "no webhook recipe answers this path");
    return;
  }
  if (!webhook_method_allowed(routes[0]->trigger_cfg, method)) {
    char allow[64], hdr[80], msg[120];
    webhook_allow_list(routes[0]->trigger_cfg, allow, sizeof allow);
    snprintf(hdr, sizeof hdr, "Allow: %s", allow);
    snprintf(msg, sizeof msg, "{\"error\":\"method %s not allowed; use %s\"}",
             strlen(method) < 16 ? method : "?", allow);
    const char *const extra[] = {hdr, NULL};
    http_req_reply(req, 405, "application/json", msg, strlen(msg), extra);
    metric_inc(METRIC_GET(&m_events_rejected, routes[0]->source, "method"));
    return;
  }
  if ((long)engine_backlog(r->en) >= r->max_queue) {
    char hdr[48];
    snprintf(hdr, sizeof hdr, "Retry-After: %ld", r->retry_after_s);
    const char *const extra[] = {hdr, NULL};
    static const char busy[] = "{\"error\":\"queue full: too many runs waiting; retry later\"}";
    http_req_reply(req, 503, "application/json", busy, sizeof busy - 1, extra);
    metric_inc(METRIC_GET(&m_events_rejected, routes[0]->source, "busy"));
    return;
  }
  int handled = 0;
  const char *source = routes[0]->source;
  int refused = check_signatures(req, routes, n, &handled);
  if (refused) {
    metric_inc(METRIC_GET(&m_events_rejected, source, refused == 401 ? "signature" : "unavailable"));
    return;
  }
  if (handled) return;

  kv_list headers = {0}, query = {0};
  http_req_each_header(req, kv_add, &headers);
  http_req_each_query(req, kv_add, &query);
  if (headers.oom || query.oom) {
    free(headers.v);
    free(query.v);
    reply_status(req, 500, "out of memory");
    return;
  }
  webhook_request rq = {.method = method, .path = path, .headers = headers.v,
                        .nheaders = headers.n, .query = query.v, .nquery = query.n};
  rq.body = http_req_body(req, &rq.body_len);
  char *payload, *dedupe, why[240];
  cJSON *event;
  size_t len;
  int st = webhook_event_make(routes[0]->trigger_cfg, &rq, &event, &payload, &len, &dedupe, why,
                              sizeof why);
  free(headers.v);
  free(query.v);
  if (st) {
    log_info("webhook refused", "path=%s status=%d reason=%s", path, st, log_q(why));
    metric_inc(METRIC_GET(&m_events_rejected, source, st == 413 ? "too_large" : "invalid"));
    reply_status(req, st, why);
    return;
  }
  pending *p = malloc(sizeof *p);
  perr e;
  if (!p) {
    reply_status(req, 500, "out of memory");
  } else {
    *p = (pending){r, req};
    if (engine_ingest_parsed(r->en, routes[0]->source, dedupe, event, payload, len, on_ingested,
                             p, &e)) {
      free(p);
      int busy = strstr(e.msg, "shutting down") != NULL, big = strstr(e.msg, "over the limit") != NULL;
      log_info("webhook refused", "path=%s error=%s", path, log_q(e.msg));
      reply_status(req, busy ? 503 : big ? 413 : 400, e.msg);
    }
  }
  cJSON_Delete(event);
  free(payload);
  free(dedupe);
}

webhook_router *webhook_router_new(engine *en, const config *cfg, const char *listen, perr *e) {
  const cJSON *sec = config_get_section(cfg, "http");
  const cJSON *l = sec ? cJSON_GetObjectItemCaseSensitive(sec, "listen") : NULL;
  if (!listen) listen = cJSON_IsString(l) ? l->valuestring : WEBHOOK_DEFAULT_LISTEN;
  webhook_router *r = calloc(1, sizeof *r);
  if (!r) {
    perr_set(e, "out of memory");
    return NULL;
  }
  r->en = en;
  r->max_queue = cfg_int(sec, "max_queue", 100000);
  r->retry_after_s = cfg_int(sec, "queue_retry_after_s", 5);
  /* Under promptd.socket systemd holds the address; --listen and
   * http.listen then only matter when the daemon runs without it. */
  int fd = service_listen_fd();
  if (fd >= 0) log_info("webhook server uses the socket systemd passed", "fd=%d", fd);
  http_server_opts o = {
      .listen = listen,
      .listen_fd = fd,
      .max_body = (size_t)cfg_int(sec, "max_body_bytes", 1024 * 1024),
      .max_header = (size_t)cfg_int(sec, "max_header_bytes", 8 * 1024),
      .max_connections = (unsigned)cfg_int(sec, "max_connections", 1024),
      .idle_timeout_s = (unsigned)cfg_int(sec, "idle_timeout_s", 30),
  };
  r->srv = http_server_new(engine_loop(en), &o, on_request, r, e);
  if (!r->srv) {
    free(r);
    return NULL;
  }
  return r;
}

int webhook_router_port(const webhook_router *r) { return http_server_port(r->srv); }

void webhook_router_free(webhook_router *r) {
  if (!r) return;
  http_server_free(r->srv);
  free(r);
}
