/*
 * action `slack`: posts one message, through an incoming webhook or as a
 * bot with chat.postMessage.
 *
 *   - id: notify
 *     slack:
 *       webhook_url: env:SLACK_SALES_URL     # an incoming webhook, or
 *       token: env:SLACK_BOT_TOKEN           # a bot token, with
 *       channel: "#sales"                    #   where to post (template)
 *       text: "New lead {{event.body.name}} ({{steps.qualify.score}}/10)"
 *       blocks: [ ... ]                      # Block Kit; every string a template
 *       thread_ts: "{{steps.first.ts}}"      # token only: reply in a thread
 *       username: promptd                    # optional; icon_emoji: ":robot_face:"
 *       api_url: https://slack.com/api       # token only: the Web API's base
 *
 * The input (what prepare renders, stored with the step) is the request as
 * it will be made, secrets left as references:
 *   webhook: {"webhook_url": "env:X", "body": {...}}
 *   token:   {"url": "<api_url>/chat.postMessage", "token": "env:Y",
 *             "body": {"channel": "<rendered>", ...}}
 * start() resolves the references (so a secret is never in the database,
 * and a rotated one is picked up by the next attempt), waits for the
 * destination's slot in the pacer, then POSTs the body as JSON (UTF-8,
 * with `Authorization: Bearer` for the Web API).  Output: {ok: true} for a
 * webhook (it answers nothing more), {ts, channel} for chat.postMessage,
 * so a later step can answer in the thread.  Classification: slack.h.
 *
 * Escaping: Slack reads &, < and > in message text as markup (<!channel>,
 * <url|label>), so {{x}} in text and in Block Kit mrkdwn text escapes
 * exactly those three; {{{x}}} inserts markup on purpose.  Other strings
 * (channel, plain_text, URLs, ids) are rendered as is: escaping would
 * corrupt them and Slack does not parse them.
 *
 * Pacing: Slack allows about one message per second per channel (per
 * webhook) and answers bursts with 429.  The kind's state holds a pacer
 * (slack_pacer.c) keyed by a digest of the destination: the webhook URL, or
 * API URL + token + channel.  One message per destination is in flight;
 * the next leaves a second after its answer, so arrivals at Slack are at
 * least a second apart and a channel gets its messages in order.  A call
 * waiting for its slot is still in flight to the engine; cancel() takes it
 * out of the line at once.  A 429 holds the whole destination for its
 * Retry-After.  The pacer is in memory: right after a restart the first
 * message may follow the last one before it by less than a second.
 *
 * A call's life:  start -> [waiting in the pacer] -> sent -> answered ->
 * reported; cancel() at either of the first two stages reports CANCELLED
 * exactly once (a sent call through the HTTP client's cancel).
 *
 * Guarantee: at-least-once.  Slack has no idempotency key: an answer lost
 * after Slack posted the message (a timeout, a crash) posts it again.
 */
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/slack.h"
#include "core/connector.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/secrets.h"
#include "net/http_client.h"

#define SLACK_INTERVAL_S 1.0
#define SLACK_TIMEOUT_MS 30000L
#define SLACK_MAX_RESPONSE (1u << 20)

static const field_spec slack_fields[] = {
    {"webhook_url", FT_SECRET, 0,
     "incoming webhook URL (the URL is the credential, so only a reference); or token", 0, 0, NULL,
     NULL},
    {"token", FT_SECRET, 0, "bot token (xoxb-...) for chat.postMessage; needs channel", 0, 0, NULL,
     NULL},
    {"channel", FT_TEMPLATE, 0, "with token: channel name (#sales) or ID (C0123456789), a template",
     0, 0, NULL, NULL},
    {"text", FT_TEMPLATE, 0,
     "message text (mrkdwn), a template; {{x}} escapes & < >, {{{x}}} inserts markup", 0, 0, NULL,
     NULL},
    {"blocks", FT_JSON, 0,
     "Block Kit blocks (a list, at most 50); every string is a template, the structure is kept", 0,
     0, NULL, NULL},
    {"thread_ts", FT_TEMPLATE, 0,
     "with token: ts of the message to reply to, e.g. {{steps.first.ts}} (empty: no thread)", 0, 0,
     NULL, NULL},
    {"username", FT_TEMPLATE, 0, "name shown as the sender, where the app may set it", 0, 0, NULL,
     NULL},
    {"icon_emoji", FT_STRING, 0, "emoji shown as the sender's icon, e.g. :robot_face:", 0, 0, NULL,
     NULL},
    {"api_url", FT_STRING, 0, "with token: Web API base URL (default " SLACK_DEFAULT_API_URL ")", 0,
     0, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

/* ---- shared state and calls ---- */

typedef struct slack_call slack_call;

typedef struct slack_state {
  runtime *rt;
  slack_pacer *pacer;
  slack_call *live; /* every call not yet reported */
} slack_state;

struct slack_call {
  slack_waiter w; /* first: the pacer hands it back to on_slot */
  slack_state *s;
  action_call *c;
  int webhook;
  int granted; /* holds the destination's slot: released in call_free */
  unsigned char key[SLACK_KEY_LEN];
  char *url;  /* resolved: for a webhook, a secret */
  char *auth; /* "Authorization: Bearer ..." or NULL */
  char *body;
  http_call *http;
  slack_call *prev, *next;
};

static int slack_init(runtime *rt, void **state, perr *e) {
  slack_state *s = calloc(1, sizeof *s);
  if (!s || !(s->pacer = slack_pacer_new(rt->loop, SLACK_INTERVAL_S))) {
    free(s);
    return perr_set(e, "out of memory");
  }
  s->rt = rt;
  *state = s;
  return 0;
}

static void wipe_free(char *p) {
  if (!p) return;
  memset(p, 0, strlen(p));
  free(p);
}

static void call_free(slack_call *k) {
  slack_state *s = k->s;
  if (k->prev)
    k->prev->next = k->next;
  else if (s->live == k)
    s->live = k->next;
  if (k->next) k->next->prev = k->prev;
  slack_pacer_forget(s->pacer, &k->w);
  if (k->granted) slack_pacer_release(s->pacer, k->key);
  wipe_free(k->url);
  wipe_free(k->auth);
  free(k->body);
  free(k);
}

/* The engine frees its HTTP client (completing sent calls) before this;
 * what is left waited in the pacer for runs the engine has dropped, so the
 * action_calls are not touched. */
static void slack_shutdown(void *state) {
  slack_state *s = state;
  slack_pacer_free(s->pacer);
  s->pacer = NULL;
  while (s->live) {
    slack_call *k = s->live;
    s->live = k->next;
    wipe_free(k->url);
    wipe_free(k->auth);
    free(k->body);
    free(k);
  }
  free(s);
}

static void report(slack_call *k, outcome_class cls, cJSON *output, const char *detail,
                   long retry_after_ms) {
  action_call *c = k->c;
  c->priv = NULL;
  call_free(k);
  action_done(c, cls, output, detail, retry_after_ms);
}

static cJSON *success_output(const slack_call *k, const slack_verdict *v) {
  cJSON *out = cJSON_CreateObject();
  if (!out) return NULL;
  int ok = k->webhook ? cJSON_AddTrueToObject(out, "ok") != NULL
                      : cJSON_AddStringToObject(out, "ts", v->ts) &&
                            cJSON_AddStringToObject(out, "channel", v->channel);
  if (!ok) {
    cJSON_Delete(out);
    return NULL;
  }
  return out;
}

static void on_http_done(void *ud, const http_response *r) {
  slack_call *k = ud;
  k->http = NULL;
  if (r->transport_error == HTTP_CANCELLED) {
    report(k, OUTCOME_CANCELLED, NULL, "cancelled", 0);
    return;
  }
  if (r->transport_error) {
    char detail[600];
    /* curl's words name a host, rarely a whole URL; a webhook URL is a
     * secret, so a message holding it is replaced. */
    if (r->timed_out)
      snprintf(detail, sizeof detail, "request timed out after %ld ms", SLACK_TIMEOUT_MS);
    else if (r->error && *r->error && !strstr(r->error, k->url))
      snprintf(detail, sizeof detail, "connection error: %s", r->error);
    else
      snprintf(detail, sizeof detail, "connection error (curl %d)", r->transport_error);
    report(k, OUTCOME_RETRY, NULL, detail, 0);
    return;
  }
  slack_verdict v;
  const char *ra = http_response_header(r, "retry-after");
  if (k->webhook)
    slack_classify_webhook(r->status, ra, r->body, r->body_len, &v);
  else
    slack_classify_api(r->status, ra, r->body, r->body_len, &v);
  if (v.cls == OUTCOME_RETRY && v.retry_after_ms > 0)
    slack_pacer_hold(k->s->pacer, k->key, (double)v.retry_after_ms / 1000.0);
  if (v.cls != OUTCOME_OK) {
    report(k, v.cls, NULL, v.detail, v.retry_after_ms > 0 ? v.retry_after_ms : 0);
    return;
  }
  cJSON *out = success_output(k, &v);
  /* Posted: a retry would post twice, so the output is dropped rather than
   * the success when memory runs out. */
  report(k, OUTCOME_OK, out, NULL, 0);
}

static void send_call(slack_call *k) {
  const char *headers[] = {"Content-Type: application/json; charset=utf-8", k->auth, NULL};
  http_request req = {.method = "POST",
                      .url = k->url,
                      .headers = headers,
                      .body = k->body,
                      .body_len = strlen(k->body),
                      .timeout_ms = SLACK_TIMEOUT_MS,
                      .max_response = SLACK_MAX_RESPONSE};
  perr e;
  if (http_client_start(k->s->rt->http, &req, on_http_done, k, &k->http, &e))
    report(k, OUTCOME_RETRY, NULL, e.msg, 0);
}

static void on_slot(slack_waiter *w) {
  slack_call *k = (slack_call *)w;
  k->granted = 1;
  send_call(k);
}

/* The destination's digest: the secret parts never stay in memory longer
 * than the call. */
static int dest_key(const char *kind, const char *url, const char *token, const char *channel,
                    unsigned char key[SLACK_KEY_LEN]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
           EVP_DigestUpdate(ctx, kind, strlen(kind) + 1) &&
           EVP_DigestUpdate(ctx, url, strlen(url) + 1) &&
           (!token || EVP_DigestUpdate(ctx, token, strlen(token) + 1)) &&
           (!channel || EVP_DigestUpdate(ctx, channel, strlen(channel) + 1)) &&
           EVP_DigestFinal_ex(ctx, key, &n) && n == SLACK_KEY_LEN;
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : -1;
}

static const char *in_str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Fills k's url, auth and key from the input, resolving the secret. */
static int resolve(slack_call *k, const cJSON *input, perr *e) {
  const char *hook = in_str(input, "webhook_url");
  if (hook) {
    k->webhook = 1;
    if (!(k->url = secret_resolve(hook, e))) return perr_prefix(e, "webhook_url");
    if (!slack_is_http_url(k->url))
      return perr_set(e, "webhook_url %s: the value is not an http:// or https:// URL", hook);
    return dest_key("webhook", k->url, NULL, NULL, k->key) ? perr_set(e, "out of memory") : 0;
  }
  const char *url = in_str(input, "url"), *ref = in_str(input, "token");
  const char *channel = in_str(cJSON_GetObjectItemCaseSensitive(input, "body"), "channel");
  if (!url || !ref || !channel) return perr_set(e, "slack: input has no url, token or channel");
  if (!(k->url = strdup(url))) return perr_set(e, "out of memory");
  char *token = secret_resolve(ref, e);
  if (!token) return perr_prefix(e, "token");
  size_t n = strlen(token) + sizeof "Authorization: Bearer ";
  k->auth = malloc(n);
  int rc = !k->auth || dest_key("api", url, token, channel, k->key);
  if (k->auth) snprintf(k->auth, n, "Authorization: Bearer %s", token);
  wipe_free(token);
  return rc ? perr_set(e, "out of memory") : 0;
}

static int slack_start(action_call *c, perr *e) {
  slack_state *s = c->kind_state;
  if (!s || !s->rt->http) return perr_set(e, "the slack step is not initialised");
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(c->input, "body");
  if (!cJSON_IsObject(body)) return perr_set(e, "slack: input has no body");
  slack_call *k = calloc(1, sizeof *k);
  if (!k) return perr_set(e, "out of memory");
  k->s = s;
  k->c = c;
  k->w.go = on_slot;
  if (resolve(k, c->input, e) ||
      (!(k->body = cJSON_PrintUnformatted(body)) && perr_set(e, "out of memory"))) {
    wipe_free(k->url);
    wipe_free(k->auth);
    free(k->body);
    free(k);
    return -1;
  }
  k->next = s->live;
  if (s->live) s->live->prev = k;
  s->live = k;
  c->priv = k;
  int now = slack_pacer_take(s->pacer, k->key, &k->w);
  k->granted = now == 1;
  if (now == 0) {
    log_debug("slack: waiting for the destination's slot", "run=%lld step=%s waiting=%zu",
              (long long)c->run_id, c->step_id, slack_pacer_waiting(s->pacer, k->key));
    return 0;
  }
  send_call(k);
  return 0;
}

static void slack_cancel(action_call *c) {
  slack_call *k = c->priv;
  if (!k) return;
  if (k->http) {
    http_call_cancel(k->http); /* reported from on_http_done */
    return;
  }
  report(k, OUTCOME_CANCELLED, NULL, "cancelled while waiting to post", 0);
}

const action_kind action_slack = {
    .name = "slack",
    .summary =
        "posts a message to Slack: an incoming webhook, or chat.postMessage with a bot "
        "token; {ts, channel} become steps.<id>.*",
    .guarantee =
        "at-least-once (Slack has no idempotency key: a lost answer or a crash after "
        "posting posts again)",
    .fields = slack_fields,
    .validate = slack_validate,
    .prepare = slack_prepare,
    .start = slack_start,
    .cancel = slack_cancel,
    .init = slack_init,
    .shutdown = slack_shutdown,
};
