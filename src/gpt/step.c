/*
 * gpt/step: the `gpt` action kind (see step.h for the recipe shape and the
 * call's life).  Only this file and its siblings in src/gpt know the
 * OpenAI API; the engine sees an action kind.
 */
#include "gpt/step.h"

#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics_catalog.h"
#include "core/runtime.h"
#include "gpt/budget.h"
#include "gpt/errors.h"
#include "gpt/pricing.h"
#include "gpt/provider.h"
#include "gpt/ratelimit.h"
#include "gpt/reply.h"
#include "gpt/schema.h"
#include "net/http_client.h"

#define GPT_DEFAULT_MAX_IN_FLIGHT 32
#define GPT_MAX_RESPONSE (4u << 20)
#define GPT_QUOTA_WAIT_MS (15L * 60 * 1000)

/* ---- recipe fields ---- */

static const char *const roles[] = {"system", "developer", "user", "assistant", NULL};

static const field_spec message_fields[] = {
    {"role", FT_STRING, FIELD_REQUIRED, "system, developer, user or assistant", 0, 0, roles, NULL},
    {"content", FT_TEMPLATE, FIELD_REQUIRED, "the message text (a template)", 0, 0, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

static const field_spec gpt_fields[] = {
    {"model", FT_STRING, FIELD_REQUIRED, "model name, e.g. gpt-4o-mini", 0, 0, NULL, NULL},
    {"provider", FT_STRING, 0, "a provider from the configuration's providers: (default openai)", 0, 0, NULL, NULL},
    {"system", FT_TEMPLATE, 0, "system message, rendered without escaping", 0, 0, NULL, NULL},
    {"prompt", FT_TEMPLATE, 0, "user message, rendered without escaping", 0, 0, NULL, NULL},
    {"messages", FT_OBJECT_LIST, 0, "the whole conversation instead of system/prompt: [{role, content}]", 0, 0, NULL, message_fields},
    {"temperature", FT_NUMBER, 0, "sampling temperature, 0 to 2", 0, 2, NULL, NULL},
    {"top_p", FT_NUMBER, 0, "nucleus sampling, 0 to 1", 0, 1, NULL, NULL},
    {"max_completion_tokens", FT_INT, 0, "most tokens the reply may use", 1, 1000000, NULL, NULL},
    {"seed", FT_INT, 0, "seed for best-effort deterministic sampling", -2147483648.0, 2147483647.0, NULL, NULL},
    {"stop", FT_STRING_LIST, 0, "up to 4 sequences that end the reply", 0, 0, NULL, NULL},
    {"output_schema", FT_JSON, 0, "JSON Schema of the reply: sent as strict structured output and checked", 0, 0, NULL, NULL},
    {"schema_name", FT_STRING, 0, "name sent with output_schema (default: output)", 0, 0, NULL, NULL},
    {"cache", FT_STRING, 0, "reuse the answer to an identical request for this long, e.g. 24h", 0, 0, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

const field_spec gpt_settings_fields[] = {
    {"max_in_flight", FT_INT, 0, "GPT calls in flight at once, all recipes (default 32)", 1, 4096, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

static int valid_schema_name(const char *s) {
  size_t n = strlen(s);
  if (!n || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return 0;
  }
  return 1;
}

static int gpt_validate(const cJSON *cfg, perr *e) {
  int has_prompt = cJSON_HasObjectItem(cfg, "prompt");
  int has_messages = cJSON_HasObjectItem(cfg, "messages");
  if (has_prompt == has_messages)
    return perr_set(e, "give either prompt (with an optional system) or messages, not %s",
                    has_prompt ? "both" : "neither");
  if (has_messages && cJSON_HasObjectItem(cfg, "system"))
    return perr_set(e, "system goes with prompt; with messages, add a {role: system} message");
  if (has_messages && !cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cfg, "messages")))
    return perr_set(e, "messages: at least one message is needed");
  if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cfg, "stop")) > 4)
    return perr_set(e, "stop: at most 4 sequences");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(cfg, "schema_name");
  if (name && !valid_schema_name(name->valuestring))
    return perr_set(e, "schema_name: letters, digits, '_' and '-', at most 64");
  if (name && !cJSON_HasObjectItem(cfg, "output_schema"))
    return perr_set(e, "schema_name needs output_schema");
  const cJSON *cache = cJSON_GetObjectItemCaseSensitive(cfg, "cache");
  if (cache && gpt_duration_s(cache->valuestring) <= 0)
    return perr_set(e, "cache: expected a duration such as 30m, 24h or 7d0h, got \"%s\"",
                    cache->valuestring);
  const cJSON *schema = cJSON_GetObjectItemCaseSensitive(cfg, "output_schema");
  if (schema) {
    cJSON *strict = NULL;
    if (gpt_schema_strict(schema, &strict, e)) return -1;
    int clash = cJSON_HasObjectItem(cJSON_GetObjectItemCaseSensitive(strict, "properties"), "_gpt");
    cJSON_Delete(strict);
    if (clash) return perr_set(e, "output_schema: the property name _gpt is promptd's own");
  }
  return 0;
}

/* ---- prepare: the request exactly as it will be sent ---- */

static int add_message(cJSON *msgs, const char *role, const char *tpl, const cJSON *ctx,
                       const render_env *env, perr *e) {
  tpl_opts o = {.escape = TPL_ESCAPE_NONE, .partial = env->partial, .partial_ud = env->partial_ud};
  char *text = tpl_render_str(tpl, ctx, &o, e);
  if (!text) return -1;
  cJSON *m = cJSON_CreateObject();
  if (!m || !cJSON_AddStringToObject(m, "role", role) ||
      !cJSON_AddStringToObject(m, "content", text) || !cJSON_AddItemToArray(msgs, m)) {
    cJSON_Delete(m);
    free(text);
    return perr_set(e, "out of memory");
  }
  free(text);
  return 0;
}

static int copy_param(cJSON *body, const cJSON *cfg, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
  if (!v) return 0;
  cJSON *c = cJSON_Duplicate(v, 1);
  return c && cJSON_AddItemToObject(body, key, c) ? 0 : -1;
}

static int gpt_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                       perr *e) {
  *input = NULL;
  cJSON *in = cJSON_CreateObject(), *body = cJSON_CreateObject(), *msgs = cJSON_CreateArray();
  const cJSON *prov = cJSON_GetObjectItemCaseSensitive(cfg, "provider");
  if (!in || !body || !msgs ||
      !cJSON_AddStringToObject(in, "provider", prov ? prov->valuestring : "openai"))
    goto oom;
  const cJSON *cache = cJSON_GetObjectItemCaseSensitive(cfg, "cache");
  if (cache && !cJSON_AddNumberToObject(in, "cache_s", gpt_duration_s(cache->valuestring)))
    goto oom;
  cJSON_AddItemToObject(in, "body", body);
  if (!cJSON_AddStringToObject(
          body, "model", cJSON_GetObjectItemCaseSensitive(cfg, "model")->valuestring))
    goto oom_body;
  cJSON_AddItemToObject(body, "messages", msgs);
  const cJSON *messages = cJSON_GetObjectItemCaseSensitive(cfg, "messages");
  if (messages) {
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
      if (add_message(msgs, cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring,
                      cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring, ctx, env, e))
        goto fail;
    }
  } else {
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(cfg, "system");
    if (sys && add_message(msgs, "system", sys->valuestring, ctx, env, e)) goto fail;
    if (add_message(msgs, "user", cJSON_GetObjectItemCaseSensitive(cfg, "prompt")->valuestring,
                    ctx, env, e))
      goto fail;
  }
  if (copy_param(body, cfg, "temperature") || copy_param(body, cfg, "top_p") ||
      copy_param(body, cfg, "max_completion_tokens") || copy_param(body, cfg, "seed") ||
      copy_param(body, cfg, "stop"))
    goto oom_body;
  const cJSON *schema = cJSON_GetObjectItemCaseSensitive(cfg, "output_schema");
  if (schema) {
    cJSON *strict = NULL;
    if (gpt_schema_strict(schema, &strict, e)) goto fail;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(cfg, "schema_name");
    cJSON *rf = cJSON_AddObjectToObject(body, "response_format");
    cJSON *js = rf ? cJSON_CreateObject() : NULL;
    if (!rf || !js || !cJSON_AddStringToObject(rf, "type", "json_schema") ||
        !cJSON_AddStringToObject(js, "name", name ? name->valuestring : "output")) {
      cJSON_Delete(js);
      cJSON_Delete(strict);
      goto oom_body;
    }
    cJSON_AddItemToObject(rf, "json_schema", js);
    /* The API's strict mode takes a narrower schema than promptd checks
     * replies against (gpt_schema_wire drops what it would refuse).  When
     * they differ the full one is kept in the input for the check; when
     * they are the same (the usual case) it is not stored twice. */
    cJSON *wire = gpt_schema_wire(strict);
    if (!wire) {
      cJSON_Delete(strict);
      goto oom_body;
    }
    if (cJSON_Compare(wire, strict, 1)) {
      cJSON_Delete(strict);
    } else if (!cJSON_AddItemToObject(in, "schema", strict)) {
      cJSON_Delete(wire);
      cJSON_Delete(strict);
      goto oom_body;
    }
    cJSON_AddItemToObject(js, "schema", wire);
    if (!cJSON_AddTrueToObject(js, "strict")) goto oom_body;
  }
  *input = in;
  return 0;
oom:
  cJSON_Delete(msgs);
  cJSON_Delete(body);
oom_body:
  perr_set(e, "out of memory");
fail:
  cJSON_Delete(in);
  return -1;
}

/* ---- shared state ---- */

typedef struct gpt_call gpt_call;

typedef struct gpt_state {
  runtime *rt;
  gpt_providers providers;
  gpt_limiter *limiter;
  gpt_budget *budget;
  const cJSON *prices;
  int max_in_flight;
  int in_flight;
  gpt_call *queue_head, *queue_tail; /* waiting for an in-flight slot */
  gpt_call *live;                    /* every call not yet reported */
  struct gpt_state *newer_next;      /* budget_states, newest first */
} gpt_state;

struct gpt_call {
  gpt_state *g;
  action_call *c;
  const gpt_provider *p;
  char *url;
  char **headers;
  cJSON *body;             /* the request now (input's body, plus a repair turn) */
  const cJSON *schema;     /* the strict schema replies are checked against, or NULL */
  const char *model;       /* inside body */
  char cache_key[65];      /* "" when not caching */
  long cache_s;
  double est_tokens;
  int repaired;
  int calls;
  long long prompt_tokens, completion_tokens, cached_tokens;
  double cost_usd, latency_s;
  char request_id[128];
  http_call *http;
  ev_timer wait;
  int queued;
  gpt_call *qnext;
  gpt_call *prev, *next; /* g->live */
};

/* ---- budget metrics ---- */

/* Every live state, newest first: the newest holds the budgets in force
 * (after a reload, or again the older one when a reload was refused). */
static gpt_state *budget_states;

static void set_remaining(void *ud, const char *rname, double tokens, double usd) {
  (void)ud;
  const char *scope = rname ? "recipe" : "daemon", *name = rname ? rname : "";
  if (tokens >= 0) metric_set(METRIC_GET(&m_gpt_budget_tokens, scope, name), tokens);
  if (usd >= 0) metric_set(METRIC_GET(&m_gpt_budget_usd, scope, name), usd);
}

/* Made afresh at every scrape: only the caps configured now appear. */
static void collect_budget(void *ud) {
  (void)ud;
  gpt_state *g = budget_states;
  metric_family_release(&m_gpt_budget_tokens);
  metric_family_release(&m_gpt_budget_usd);
  if (g)
    gpt_budget_remaining(g->budget, g->rt->st, clock_now_ms(), set_remaining, NULL);
}

static int gpt_init(runtime *rt, void **state, perr *e) {
  gpt_state *g = calloc(1, sizeof *g);
  if (!g) return perr_set(e, "out of memory");
  g->rt = rt;
  const cJSON *settings = config_get_section(rt->cfg, "gpt");
  const cJSON *mif = cJSON_GetObjectItemCaseSensitive(settings, "max_in_flight");
  g->max_in_flight = cJSON_IsNumber(mif) ? (int)mif->valuedouble : GPT_DEFAULT_MAX_IN_FLIGHT;
  g->prices = config_get_section(rt->cfg, "prices");
  /* Over HTTP/1.1 each call in flight needs its own connection. */
  if (g->max_in_flight > 64 && rt->http &&
      http_client_set_max_host_connections(rt->http, g->max_in_flight, e)) {
    free(g);
    return -1;
  }
  g->limiter = gpt_limiter_new();
  g->budget = gpt_budget_new(config_get_section(rt->cfg, "budgets"));
  if (!g->limiter || !g->budget ||
      gpt_providers_load(config_get_section(rt->cfg, "providers"), &g->providers, e)) {
    if (!g->limiter || !g->budget) perr_set(e, "out of memory");
    gpt_limiter_free(g->limiter);
    gpt_budget_free(g->budget);
    free(g);
    return -1;
  }
  *state = g;
  if (!budget_states && metrics_on_scrape(collect_budget, NULL))
    log_warn("gpt: budget metrics not exported (too many collectors)", "%s", "");
  g->newer_next = budget_states;
  budget_states = g;
  return 0;
}

static void call_free(gpt_call *k) {
  gpt_state *g = k->g;
  if (k->prev)
    k->prev->next = k->next;
  else if (g->live == k)
    g->live = k->next;
  if (k->next) k->next->prev = k->prev;
  ev_timer_stop(g->rt->loop, &k->wait);
  free(k->url);
  gpt_headers_free(k->headers);
  cJSON_Delete(k->body);
  free(k);
}

/* The engine frees its HTTP client (completing calls in flight) and its
 * runs, action_calls included, before this; what is left here waited for a
 * slot or a rate-limit timer, and its action_call is gone: never touch it. */
static void gpt_shutdown(void *state) {
  gpt_state *g = state;
  gpt_state **pp = &budget_states;
  while (*pp && *pp != g) pp = &(*pp)->newer_next;
  if (*pp) *pp = g->newer_next;
  if (!budget_states) metrics_off_scrape(collect_budget, NULL);
  while (g->live) call_free(g->live);
  gpt_providers_release(&g->providers);
  gpt_limiter_free(g->limiter);
  gpt_budget_free(g->budget);
  free(g);
}

/* Budget waits count from the loop's time, as the engine's do. */
static int64_t loop_ms(struct ev_loop *loop) {
  return (int64_t)(ev_now(loop) * 1000.0);
}

static long gpt_gate(action_call *c, char *why, size_t why_len) {
  gpt_state *g = c->kind_state;
  return g ? gpt_budget_gate(g->budget, g->rt->st, c->recipe, loop_ms(c->loop), why, why_len)
           : 0;
}

/* ---- reporting ---- */

static void report(gpt_call *k, outcome_class cls, cJSON *output, const char *detail,
                   long retry_after_ms) {
  action_call *c = k->c;
  c->priv = NULL;
  call_free(k);
  action_done(c, cls, output, detail, retry_after_ms);
}

static cJSON *meta(const gpt_call *k, const gpt_reply *r) {
  cJSON *m = cJSON_CreateObject();
  if (!m) return NULL;
  cJSON_AddStringToObject(m, "model", r && r->model ? r->model : k->model);
  cJSON_AddStringToObject(m, "provider", k->p->name);
  if (r && r->finish_reason)
    cJSON_AddStringToObject(m, "finish_reason", r->finish_reason);
  else
    cJSON_AddNullToObject(m, "finish_reason");
  if (r && r->id)
    cJSON_AddStringToObject(m, "id", r->id);
  else
    cJSON_AddNullToObject(m, "id");
  if (k->request_id[0])
    cJSON_AddStringToObject(m, "request_id", k->request_id);
  else
    cJSON_AddNullToObject(m, "request_id");
  cJSON_AddNumberToObject(m, "latency_ms", (double)(long long)(k->latency_s * 1000.0));
  cJSON_AddNumberToObject(m, "prompt_tokens", (double)k->prompt_tokens);
  cJSON_AddNumberToObject(m, "completion_tokens", (double)k->completion_tokens);
  cJSON_AddNumberToObject(m, "cached_tokens", (double)k->cached_tokens);
  cJSON_AddNumberToObject(m, "cost_usd", k->cost_usd);
  cJSON_AddNumberToObject(m, "calls", k->calls);
  cJSON_AddBoolToObject(m, "repaired", k->repaired);
  cJSON_AddFalseToObject(m, "cached");
  return m;
}

/* The step's output: the reply's fields (or text) and `_gpt`. */
static void succeed(gpt_call *k, cJSON *fields, const gpt_reply *r) {
  cJSON *m = meta(k, r);
  if (!m || !cJSON_AddItemToObject(fields, "_gpt", m)) {
    cJSON_Delete(m);
    cJSON_Delete(fields);
    report(k, OUTCOME_RETRY, NULL, "out of memory building the output", 0);
    return;
  }
  if (k->cache_key[0]) {
    char *text = cJSON_PrintUnformatted(fields);
    perr e;
    int64_t now = clock_now_ms();
    if (!text || store_cache_put(k->g->rt->st, k->cache_key, text, now,
                                 now + (int64_t)k->cache_s * 1000, &e))
      log_warn("gpt: answer not cached", "step=%s error=%s", k->c->step_id,
               log_q(text ? e.msg : "out of memory"));
    free(text);
  }
  report(k, OUTCOME_OK, fields, NULL, 0);
}

/* ---- sending ---- */

static void send_call(gpt_call *k);

static void pump(gpt_state *g) {
  while (g->queue_head && g->in_flight < g->max_in_flight) {
    gpt_call *k = g->queue_head;
    g->queue_head = k->qnext;
    if (!g->queue_head) g->queue_tail = NULL;
    k->queued = 0;
    k->qnext = NULL;
    send_call(k);
  }
}

static void on_wait(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  send_call(w->data);
}

static const char *header_of(void *ud, const char *name) {
  return http_response_header(ud, name);
}

static double header_num(const http_response *r, const char *name) {
  const char *v = http_response_header(r, name);
  if (!v) return -1;
  char *end;
  double d = strtod(v, &end);
  return end == v ? -1 : d;
}

static void ask_again(gpt_call *k, const char *content, const char *why);

static void on_answer(gpt_call *k, const http_response *resp);

static void on_http_done(void *ud, const http_response *resp) {
  gpt_call *k = ud;
  gpt_state *g = k->g;
  k->http = NULL;
  g->in_flight--;
  /* The queue moves on once this answer is billed (budget ledger, rate-limit
   * headers): a call sent before that could pass a cap this one reached. */
  on_answer(k, resp);
  pump(g);
}

static void count_request(const gpt_call *k, const char *outcome) {
  metric_inc(METRIC_GET(&m_gpt_requests, k->model, k->c->recipe ? k->c->recipe : "", outcome));
}

static void on_answer(gpt_call *k, const http_response *resp) {
  gpt_state *g = k->g;
  if (resp->transport_error == HTTP_CANCELLED) {
    count_request(k, "cancelled");
    report(k, OUTCOME_CANCELLED, NULL, "cancelled", 0);
    return;
  }
  double now = ev_now(g->rt->loop);
  k->latency_s += resp->total_s;
  const char *rid = http_response_header(resp, "x-request-id");
  if (rid) snprintf(k->request_id, sizeof k->request_id, "%s", rid);
  if (!resp->transport_error) {
    gpt_ratelimit_seen seen = {
        header_num(resp, "x-ratelimit-limit-requests"),
        header_num(resp, "x-ratelimit-remaining-requests"),
        gpt_duration_s(http_response_header(resp, "x-ratelimit-reset-requests")),
        header_num(resp, "x-ratelimit-limit-tokens"),
        header_num(resp, "x-ratelimit-remaining-tokens"),
        gpt_duration_s(http_response_header(resp, "x-ratelimit-reset-tokens")),
    };
    gpt_limiter_observe(g->limiter, k->p->name, k->model, &seen, now);
  }
  gpt_verdict v;
  gpt_classify(resp->transport_error, resp->timed_out, resp->status, header_of, (void *)resp,
               resp->body, resp->body_len, &v);
  if (v.cls != OUTCOME_OK) {
    count_request(k, v.budget ? "budget" : outcome_class_name(v.cls));
    if (v.budget) {
      report(k, OUTCOME_BUDGET, NULL, v.message, GPT_QUOTA_WAIT_MS);
      return;
    }
    if (v.cls == OUTCOME_RETRY && resp->status == 429 && v.retry_after_ms > 0)
      gpt_limiter_block(g->limiter, k->p->name, k->model, (double)v.retry_after_ms / 1000.0, now);
    report(k, v.cls, NULL, v.message, v.cls == OUTCOME_RETRY ? v.retry_after_ms : 0);
    return;
  }
  gpt_reply r;
  perr e;
  if (gpt_reply_parse(resp->body, resp->body_len, &r, &e)) {
    char msg[1100];
    snprintf(msg, sizeof msg, "malformed response (HTTP %ld): %s", resp->status, e.msg);
    count_request(k, "retry");
    report(k, OUTCOME_RETRY, NULL, msg, 0);
    return;
  }
  /* Billed: record it whatever becomes of the reply. */
  double cost = gpt_cost_usd(g->prices, r.model ? r.model : k->model, r.prompt_tokens,
                             r.cached_tokens, r.completion_tokens);
  k->calls++;
  count_request(k, "ok");
  k->prompt_tokens += r.prompt_tokens;
  k->completion_tokens += r.completion_tokens;
  k->cached_tokens += r.cached_tokens;
  k->cost_usd += cost;
  action_usage_rec u = {k->p->name, k->model, 1, r.prompt_tokens, r.completion_tokens,
                        r.cached_tokens, cost};
  action_usage(k->c, &u);
  gpt_budget_spend(g->budget, k->c->recipe, r.prompt_tokens + r.completion_tokens, cost,
                   clock_now_ms());
  if (r.refusal) {
    char msg[1100];
    snprintf(msg, sizeof msg, "the model refused: %s", r.refusal);
    gpt_reply_release(&r);
    report(k, OUTCOME_FAIL, NULL, msg, 0);
    return;
  }
  const char *content = r.content ? r.content : "";
  if (!k->schema) {
    cJSON *out = cJSON_CreateObject();
    if (!out || !cJSON_AddStringToObject(out, "text", content)) {
      cJSON_Delete(out);
      gpt_reply_release(&r);
      report(k, OUTCOME_RETRY, NULL, "out of memory", 0);
      return;
    }
    succeed(k, out, &r);
    gpt_reply_release(&r);
    return;
  }
  char why[700];
  cJSON *value = cJSON_Parse(content);
  if (!value) {
    snprintf(why, sizeof why, "%s",
             r.finish_reason && strcmp(r.finish_reason, "length") == 0
                 ? "the reply was cut off at max_completion_tokens and is not complete JSON"
                 : "the reply is not valid JSON");
  } else if (gpt_schema_validate(k->schema, value, &e)) {
    snprintf(why, sizeof why, "%s", e.msg);
    cJSON_Delete(value);
    value = NULL;
  }
  if (value) {
    succeed(k, value, &r);
  } else if (!k->repaired) {
    ask_again(k, content, why);
  } else {
    char msg[1000];
    snprintf(msg, sizeof msg, "the reply does not match output_schema after a repair turn: %s; "
             "reply: %.500s", why, content);
    report(k, OUTCOME_FAIL, NULL, msg, 0);
  }
  gpt_reply_release(&r);
}

/* The repair turn: the reply and what is wrong with it, then one more try. */
static void ask_again(gpt_call *k, const char *content, const char *why) {
  cJSON *msgs = cJSON_GetObjectItemCaseSensitive(k->body, "messages");
  cJSON *a = cJSON_CreateObject(), *u = cJSON_CreateObject();
  char text[1000];
  snprintf(text, sizeof text,
           "Your reply does not match the required JSON schema: %s. Reply again with only "
           "JSON that matches the schema.",
           why);
  if (!a || !u || !cJSON_AddStringToObject(a, "role", "assistant") ||
      !cJSON_AddStringToObject(a, "content", content) ||
      !cJSON_AddStringToObject(u, "role", "user") || !cJSON_AddStringToObject(u, "content", text)) {
    cJSON_Delete(a);
    cJSON_Delete(u);
    report(k, OUTCOME_RETRY, NULL, "out of memory", 0);
    return;
  }
  cJSON_AddItemToArray(msgs, a);
  cJSON_AddItemToArray(msgs, u);
  k->repaired = 1;
  log_info("gpt: asking again, the reply did not match the schema", "run=%lld step=%s reason=%s",
           (long long)k->c->run_id, k->c->step_id, log_q(why));
  send_call(k);
}

static void send_call(gpt_call *k) {
  gpt_state *g = k->g;
  if (g->in_flight >= g->max_in_flight) {
    k->queued = 1;
    if (g->queue_tail)
      g->queue_tail->qnext = k;
    else
      g->queue_head = k;
    g->queue_tail = k;
    return;
  }
  /* The gate passed when the step began; calls answered since (while this
   * one queued or waited) may have reached a cap.  Checked again as the call
   * leaves, so only calls already in flight can pass it. */
  char why[600] = "";
  long budget_wait = gpt_budget_gate(g->budget, g->rt->st, k->c->recipe, loop_ms(g->rt->loop),
                                     why, sizeof why);
  if (budget_wait > 0) {
    report(k, OUTCOME_BUDGET, NULL, why, budget_wait);
    return;
  }
  const cJSON *limits = cJSON_GetObjectItemCaseSensitive(k->p->rate_limits, k->model);
  const cJSON *rpm = cJSON_GetObjectItemCaseSensitive(limits, "rpm");
  const cJSON *tpm = cJSON_GetObjectItemCaseSensitive(limits, "tpm");
  double wait = gpt_limiter_take(g->limiter, k->p->name, k->model,
                                 cJSON_IsNumber(rpm) ? rpm->valuedouble : 0,
                                 cJSON_IsNumber(tpm) ? tpm->valuedouble : 0, k->est_tokens,
                                 ev_now(g->rt->loop));
  if (wait > 0) {
    ev_timer_set(&k->wait, wait, 0.);
    ev_timer_start(g->rt->loop, &k->wait);
    return;
  }
  char *text = cJSON_PrintUnformatted(k->body);
  perr e;
  http_request req = {.method = "POST",
                      .url = k->url,
                      .headers = (const char *const *)k->headers,
                      .body = text,
                      .body_len = text ? strlen(text) : 0,
                      .timeout_ms = k->p->timeout_ms,
                      .max_response = GPT_MAX_RESPONSE};
  int rc = text ? http_client_start(g->rt->http, &req, on_http_done, k, &k->http, &e)
                : perr_set(&e, "out of memory");
  free(text);
  if (rc) {
    report(k, OUTCOME_RETRY, NULL, e.msg, 0);
    return;
  }
  g->in_flight++;
}

/* ---- start ---- */

static int cache_key(const char *provider, const cJSON *body, char out[65]) {
  char *text = cJSON_PrintUnformatted(body);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = text && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
           EVP_DigestUpdate(ctx, provider, strlen(provider) + 1) &&
           EVP_DigestUpdate(ctx, text, strlen(text)) && EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  free(text);
  if (!ok) return -1;
  for (unsigned i = 0; i < n && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  return 0;
}

/* A cached answer: the stored output, marked as such, at no cost. */
static int try_cache(gpt_call *k) {
  char *text = NULL;
  perr e;
  int rc = store_cache_get(k->g->rt->st, k->cache_key, clock_now_ms(), &text, &e);
  if (rc) {
    if (rc < 0) log_warn("gpt: cache not readable", "error=%s", log_q(e.msg));
    return 0;
  }
  cJSON *out = cJSON_Parse(text);
  free(text);
  cJSON *m = cJSON_GetObjectItemCaseSensitive(out, "_gpt");
  if (!out || !m) {
    cJSON_Delete(out);
    return 0;
  }
  cJSON_ReplaceItemInObjectCaseSensitive(m, "cached", cJSON_CreateTrue());
  cJSON_ReplaceItemInObjectCaseSensitive(m, "cost_usd", cJSON_CreateNumber(0));
  cJSON_ReplaceItemInObjectCaseSensitive(m, "calls", cJSON_CreateNumber(0));
  report(k, OUTCOME_OK, out, NULL, 0);
  return 1;
}

static double estimate_tokens(const cJSON *body) {
  size_t chars = 0;
  const cJSON *m;
  cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(body, "messages")) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(c)) chars += strlen(c->valuestring);
  }
  const cJSON *max = cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens");
  return (double)chars / 4.0 + (cJSON_IsNumber(max) ? max->valuedouble : 256.0);
}

static int gpt_start(action_call *c, perr *e) {
  gpt_state *g = c->kind_state;
  if (!g || !g->rt->http) return perr_set(e, "the gpt step is not initialised");
  const char *pname = cJSON_GetObjectItemCaseSensitive(c->input, "provider")->valuestring;
  const gpt_provider *p = gpt_provider_find(&g->providers, pname);
  if (!p) return perr_set(e, "no provider named %s in the configuration's providers:", pname);
  gpt_call *k = calloc(1, sizeof *k);
  if (!k) return perr_set(e, "out of memory");
  k->g = g;
  k->c = c;
  k->p = p;
  ev_timer_init(&k->wait, on_wait, 0., 0.);
  k->wait.data = k;
  k->body = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(c->input, "body"), 1);
  if (!k->body || gpt_provider_endpoint(p, &k->url, &k->headers, e)) {
    if (!k->body) perr_set(e, "out of memory");
    cJSON_Delete(k->body);
    free(k);
    return -1;
  }
  k->model = cJSON_GetObjectItemCaseSensitive(k->body, "model")->valuestring;
  k->schema = cJSON_GetObjectItemCaseSensitive(c->input, "schema");
  if (!k->schema)
    k->schema = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(k->body, "response_format"), "json_schema"),
        "schema");
  k->est_tokens = estimate_tokens(k->body);
  k->next = g->live;
  if (g->live) g->live->prev = k;
  g->live = k;
  c->priv = k;
  const cJSON *cs = cJSON_GetObjectItemCaseSensitive(c->input, "cache_s");
  if (cJSON_IsNumber(cs) && cs->valuedouble > 0 && !cache_key(p->name, k->body, k->cache_key)) {
    k->cache_s = (long)cs->valuedouble;
    if (try_cache(k)) return 0;
  }
  send_call(k);
  return 0;
}

static void gpt_cancel(action_call *c) {
  gpt_call *k = c->priv;
  if (!k) return;
  if (k->http) {
    http_call_cancel(k->http); /* reported from on_http_done */
    return;
  }
  if (k->queued) {
    gpt_call **pp = &k->g->queue_head, *prev = NULL;
    while (*pp && *pp != k) prev = *pp, pp = &(*pp)->qnext;
    if (*pp) *pp = k->qnext;
    if (k->g->queue_tail == k) k->g->queue_tail = prev;
  }
  report(k, OUTCOME_CANCELLED, NULL, "cancelled", 0);
}

const action_kind action_gpt = {
    .name = "gpt",
    .summary = "asks an OpenAI-compatible chat model; the reply's fields (or text) become steps.<id>.*",
    .guarantee = "at-most-once per attempt, stored before the next step: a crash repeats at most the call in flight",
    .fields = gpt_fields,
    .validate = gpt_validate,
    .prepare = gpt_prepare,
    .start = gpt_start,
    .cancel = gpt_cancel,
    .init = gpt_init,
    .shutdown = gpt_shutdown,
    .gate = gpt_gate,
};
