/*
 * admin_server: the handler behind admin_server.h.  It answers every
 * request inside the handler (nothing waits), so a request never outlives
 * the call that delivered it.
 */
#include "net/admin_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics_catalog.h"
#include "core/runtime.h"
#include "net/http_server.h"

const field_spec admin_config_fields[] = {
    {.name = "listen",
     .type = FT_STRING,
     .help = "ADDR:PORT (or a bare PORT on " ADMIN_DEFAULT_ADDR ") of the admin listener: "
             "/healthz, /readyz, /metrics; unauthenticated, keep it on loopback; "
             "serve --admin-listen overrides"},
    {.name = NULL},
};

/* Far above any real registry; a runaway label set cannot take memory. */
#define MAX_METRICS_BYTES (64u * 1024 * 1024)
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct admin_server {
  engine *en;
  http_server *srv;
};

const char *admin_listen_address(const config *cfg, const char *flag) {
  if (flag) return flag;
  const cJSON *sec = config_get_section(cfg, "admin");
  const cJSON *l = sec ? cJSON_GetObjectItemCaseSensitive(sec, "listen") : NULL;
  return cJSON_IsString(l) ? l->valuestring : NULL;
}

static void collect_engine(void *ud) {
  admin_server *a = ud;
  metric_set(METRIC_SOLO(&m_runs_in_flight), (double)engine_active(a->en));
  /* Counted afresh (one indexed count): engine_backlog is an upper bound
   * for admission control, up to a second stale. */
  int64_t n;
  perr e;
  if (store_runs_count_waiting(engine_runtime(a->en)->st, &n, &e) == 0)
    metric_set(METRIC_SOLO(&m_runs_waiting), (double)n);
  else
    log_warn("metrics: cannot count waiting runs", "error=%s", log_q(e.msg));
}

static void reply_text(http_req *req, unsigned status, const char *text) {
  http_req_reply(req, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

static void serve_metrics(http_req *req) {
  buf b;
  buf_init(&b, MAX_METRICS_BYTES);
  if (metrics_scrape(&b)) {
    buf_release(&b);
    log_error("metrics not rendered: out of memory or over the size cap", "max_bytes=%u",
              MAX_METRICS_BYTES);
    reply_text(req, 500, "metrics could not be rendered\n");
    return;
  }
  http_req_reply(req, 200, METRICS_TYPE, b.data ? b.data : "", b.len, NULL);
  buf_release(&b);
}

static void serve_ready(admin_server *a, http_req *req) {
  const char *failed = engine_failed(a->en);
  char msg[300];
  if (failed)
    snprintf(msg, sizeof msg, "not ready: stopped after a store failure: %.200s\n", failed);
  else if (engine_stopping(a->en))
    snprintf(msg, sizeof msg, "not ready: stopping\n");
  else
    snprintf(msg, sizeof msg, "ready\n");
  reply_text(req, failed || engine_stopping(a->en) ? 503 : 200, msg);
}

static void on_request(void *ud, http_req *req) {
  admin_server *a = ud;
  const char *path = http_req_path(req), *method = http_req_method(req);
  int metrics = strcmp(path, "/metrics") == 0, health = strcmp(path, "/healthz") == 0,
      ready = strcmp(path, "/readyz") == 0;
  if (!metrics && !health && !ready) {
    reply_text(req, 404, "not found: the admin listener serves /healthz, /readyz, /metrics\n");
    return;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    static const char *const allow[] = {"Allow: GET, HEAD", NULL};
    static const char msg[] = "method not allowed: use GET or HEAD\n";
    http_req_reply(req, 405, "text/plain; charset=utf-8", msg, sizeof msg - 1, allow);
    return;
  }
  if (health)
    reply_text(req, 200, "ok\n");
  else if (ready)
    serve_ready(a, req);
  else
    serve_metrics(req);
}

admin_server *admin_server_new(engine *en, const char *listen, perr *e) {
  char addr[300];
  size_t digits = strspn(listen, "0123456789");
  if (digits && listen[digits] == '\0') {
    long port = strtol(listen, NULL, 10);
    if (digits > 5 || port > 65535) {
      perr_set(e, "admin listener: port %s is out of range (0-65535)", listen);
      return NULL;
    }
    snprintf(addr, sizeof addr, ADMIN_DEFAULT_ADDR ":%ld", port);
    listen = addr;
  }
  admin_server *a = calloc(1, sizeof *a);
  if (!a) {
    perr_set(e, "out of memory");
    return NULL;
  }
  a->en = en;
  http_server_opts o = {
      .listen = listen, .max_body = 4096, .max_connections = 64, .idle_timeout_s = 30};
  if (!(a->srv = http_server_new(engine_loop(en), &o, on_request, a, e))) {
    perr_prefix(e, "admin listener");
    free(a);
    return NULL;
  }
  if (metrics_on_scrape(collect_engine, a) || metrics_on_scrape(metrics_process_collect, a)) {
    admin_server_free(a);
    perr_set(e, "admin listener: too many metric collectors");
    return NULL;
  }
  log_info("admin server listening", "address=%s port=%d", log_q(listen), http_server_port(a->srv));
  return a;
}

int admin_server_port(const admin_server *a) { return http_server_port(a->srv); }

void admin_server_free(admin_server *a) {
  if (!a) return;
  metrics_off_scrape(collect_engine, a);
  metrics_off_scrape(metrics_process_collect, a);
  http_server_free(a->srv);
  free(a);
}
