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

typedef struct one_call {
  probe_ctx *p;
  char what[160];
  char *url;
  char **headers;
} one_call;

static void call_free(one_call *c) {
  free(c->url);
  gpt_headers_free(c->headers);
  free(c);
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
  probe_ctx *p = c->p;
  char detail[512];
  int ok = 0;
  if (r->transport_error == HTTP_CANCELLED) { /* the doctor gave up waiting: no finding */
    call_free(c);
    probe_release(p);
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
  probe_report(p, c->what, ok, detail);
  call_free(c);
  probe_release(p);
}

/* One provider: a finding now (its key does not resolve, the call cannot
 * start) or a call held until it answers. */
static void start_one(struct runtime *rt, probe_ctx *p, const gpt_provider *gp) {
  char what[160];
  snprintf(what, sizeof what, "providers.%s", gp->name);
  perr e;
  one_call *c = calloc(1, sizeof *c);
  if (!c) {
    probe_report(p, what, 0, "out of memory");
    return;
  }
  c->p = p;
  memcpy(c->what, what, sizeof what);
  char *chat_url = NULL;
  if (gpt_provider_endpoint(gp, &chat_url, &c->headers, &e)) {
    probe_report(p, what, 0, e.msg);
    call_free(c);
    return;
  }
  free(chat_url);
  if (!(c->url = models_url(gp))) {
    probe_report(p, what, 0, "out of memory");
    call_free(c);
    return;
  }
  long ms = (long)(probe_timeout(p) * 1000);
  http_request req = {.method = "GET",
                      .url = c->url,
                      .headers = (const char *const *)c->headers,
                      .timeout_ms = ms,
                      .connect_timeout_ms = ms};
  probe_hold(p);
  if (http_client_start(rt->http, &req, on_models, c, NULL, &e)) {
    probe_release(p);
    probe_report(p, what, 0, e.msg);
    call_free(c);
  }
}

int gpt_providers_probe(struct runtime *rt, const cJSON *section, probe_ctx *p, perr *e) {
  gpt_providers providers;
  if (gpt_providers_load(section, &providers, e)) return -1;
  /* Each call copies what it needs: the providers go now. */
  for (size_t i = 0; i < providers.n; i++) start_one(rt, p, &providers.v[i]);
  gpt_providers_release(&providers);
  return 0;
}
