/*
 * provider_probe: `promptd doctor --network` for the `providers:` section.
 * Each provider is asked for its model list (GET /models; Azure:
 * /openai/models?api-version=), which needs a valid key and costs nothing.
 */
#include "gpt/provider_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/probe.h"
#include "core/runtime.h"
#include "gpt/provider.h"
#include "net/http_client.h"

typedef struct provider_probe {
  probe_ctx *p;
  gpt_providers providers;
  int pending;
} provider_probe;

typedef struct one_call {
  provider_probe *pp;
  char what[160];
  char *url;
  char **headers;
} one_call;

static void probe_free(provider_probe *pp) {
  gpt_providers_release(&pp->providers);
  free(pp);
}

static void call_free(one_call *c) {
  free(c->url);
  gpt_headers_free(c->headers);
  free(c);
}

static void one_done(provider_probe *pp) {
  if (--pp->pending) return;
  probe_ctx *p = pp->p;
  probe_free(pp);
  probe_finish(p);
}

/* The model list's URL: the OpenAI API and compatible servers list models
 * beside chat/completions; Azure lists them per resource, not deployment. */
static char *models_url(const gpt_provider *gp) {
  char *u = NULL;
  if (!gp->api_version) {
    if (asprintf(&u, "%s/models", gp->base_url) < 0) return NULL;
    return u;
  }
  const char *dep = strstr(gp->base_url, "/openai/deployments/");
  int keep = dep ? (int)(dep - gp->base_url) : (int)strlen(gp->base_url);
  if (asprintf(&u, "%.*s%s?api-version=%s", keep, gp->base_url, dep ? "/openai/models" : "/models",
               gp->api_version) < 0)
    return NULL;
  return u;
}

static void on_models(void *ud, const http_response *r) {
  one_call *c = ud;
  char detail[512];
  int ok = 0;
  provider_probe *pp = c->pp;
  if (r->transport_error == HTTP_CANCELLED) { /* the doctor gave up waiting: no finding */
    call_free(c);
    one_done(pp);
    return;
  }
  if (r->transport_error) {
    snprintf(detail, sizeof detail, "cannot reach %s: %s", c->url, r->error);
  } else {
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    if (r->status == 200 && cJSON_IsArray(data)) {
      ok = 1;
      snprintf(detail, sizeof detail, "reached %s: key accepted, %d models listed", c->url,
               cJSON_GetArraySize(data));
    } else {
      snprintf(detail, sizeof detail, "%s answered HTTP %ld%s%s", c->url, r->status,
               cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
    }
    cJSON_Delete(j);
  }
  probe_report(pp->p, c->what, ok, detail);
  call_free(c);
  one_done(pp);
}

static int start_one(struct runtime *rt, provider_probe *pp, const gpt_provider *gp, perr *e) {
  one_call *c = calloc(1, sizeof *c);
  if (!c) return perr_set(e, "out of memory");
  c->pp = pp;
  snprintf(c->what, sizeof c->what, "providers.%s", gp->name);
  char *chat_url = NULL;
  if (gpt_provider_endpoint(gp, &chat_url, &c->headers, e)) {
    /* The key does not resolve: a finding, not a failure to probe. */
    probe_report(pp->p, c->what, 0, e->msg);
    call_free(c);
    return 1;
  }
  free(chat_url);
  if (!(c->url = models_url(gp))) {
    call_free(c);
    return perr_set(e, "out of memory");
  }
  long ms = (long)(probe_timeout(pp->p) * 1000);
  http_request req = {.method = "GET",
                      .url = c->url,
                      .headers = (const char *const *)c->headers,
                      .timeout_ms = ms,
                      .connect_timeout_ms = ms};
  if (http_client_start(rt->http, &req, on_models, c, NULL, e)) {
    probe_report(pp->p, c->what, 0, e->msg);
    call_free(c);
    return 1;
  }
  return 0;
}

int gpt_providers_probe(struct runtime *rt, const cJSON *section, probe_ctx *p, perr *e) {
  provider_probe *pp = calloc(1, sizeof *pp);
  if (!pp) return perr_set(e, "out of memory");
  pp->p = p;
  if (gpt_providers_load(section, &pp->providers, e)) {
    free(pp);
    return -1;
  }
  /* One extra count while starting, so no early answer finishes the probe
   * before every call is started. */
  pp->pending = 1;
  for (size_t i = 0; i < pp->providers.n; i++) {
    pp->pending++;
    int rc = start_one(rt, pp, &pp->providers.v[i], e);
    if (rc) pp->pending--;
    if (rc < 0) probe_report(p, "providers", 0, e->msg);
  }
  one_done(pp);
  return 0;
}
