/*
 * oauth2: the refresh-token grant behind oauth2.h.
 *
 * States: no token -> refreshing (one request in flight, waiters queued)
 * -> token until (expires_at - margin) -> refreshing ...  A failed refresh
 * leaves no token; the next caller starts a new one (the caller's own
 * retry policy decides when).
 */
#include "net/oauth2.h"

#include <cjson/cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/secrets.h"

typedef struct waiter {
  oauth2_token_fn cb;
  void *ud;
  struct waiter *next;
} waiter;

struct oauth2_source {
  http_client *hc;
  struct ev_loop *loop;
  char *token_url, *client_id, *secret_ref, *refresh_ref, *scope;
  long margin_s, timeout_ms;
  char *token;          /* cached access token, or NULL */
  int64_t expires_at;   /* ms */
  http_call *call;      /* the refresh in flight, or NULL */
  int closing;          /* freed by the owner while call was in flight */
  waiter *waiting, *ready; /* ready: to be told from the loop (deliver) */
  char error[300];      /* the outcome handed to `ready` waiters */
  int permanent;
  ev_timer deliver;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* application/x-www-form-urlencoded value. */
static int form_add(buf *b, const char *name, const char *value) {
  if (b->len && buf_addc(b, '&')) return -1;
  if (buf_adds(b, name) || buf_addc(b, '=')) return -1;
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '.' || *p == '_' || *p == '~';
    if (plain ? buf_addc(b, (char)*p) : buf_printf(b, "%%%02X", *p)) return -1;
  }
  return 0;
}

int oauth2_parse_token_response(long status, const char *body, char **token, long *expires_in,
                                char *why, size_t why_len, int *permanent) {
  *token = NULL;
  *expires_in = 3600;
  *permanent = 0;
  cJSON *j = body ? cJSON_Parse(body) : NULL;
  const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
  if (status == 200 && cJSON_IsString(at) && *at->valuestring) {
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    if (cJSON_IsNumber(exp) && exp->valuedouble > 0) *expires_in = (long)exp->valuedouble;
    *token = strdup(at->valuestring);
    cJSON_Delete(j);
    if (!*token) {
      snprintf(why, why_len, "out of memory");
      return -1;
    }
    return 0;
  }
  if (cJSON_IsString(err)) {
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(j, "error_description");
    /* RFC 6749 5.2: these need a person (new consent, fixed client). */
    *permanent = strcmp(err->valuestring, "invalid_grant") == 0 ||
                 strcmp(err->valuestring, "invalid_client") == 0 ||
                 strcmp(err->valuestring, "unauthorized_client") == 0 ||
                 strcmp(err->valuestring, "unsupported_grant_type") == 0;
    snprintf(why, why_len, "token endpoint: HTTP %ld %.60s%s%.160s", status, err->valuestring,
             cJSON_IsString(desc) ? ": " : "", cJSON_IsString(desc) ? desc->valuestring : "");
  } else {
    *permanent = status >= 400 && status < 500 && status != 408 && status != 429;
    snprintf(why, why_len, "token endpoint: HTTP %ld without an access_token", status);
  }
  cJSON_Delete(j);
  return -1;
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  oauth2_source *s = w->data;
  /* Take the list first: a callback may ask again (and queue anew). */
  waiter *list = s->ready;
  s->ready = NULL;
  char error[sizeof s->error];
  memcpy(error, s->error, sizeof error);
  int permanent = s->permanent;
  char *token = s->token && !error[0] ? strdup(s->token) : NULL;
  while (list) {
    waiter *w2 = list;
    list = w2->next;
    if (token)
      w2->cb(w2->ud, token, NULL, 0);
    else
      w2->cb(w2->ud, NULL, error[0] ? error : "out of memory", permanent);
    free(w2);
  }
  free(token);
}

/* Moves the waiting callbacks to `ready` and schedules their delivery. */
static void settle(oauth2_source *s, const char *error, int permanent) {
  snprintf(s->error, sizeof s->error, "%s", error ? error : "");
  s->permanent = permanent;
  waiter **tail = &s->ready;
  while (*tail) tail = &(*tail)->next;
  *tail = s->waiting;
  s->waiting = NULL;
  ev_timer_set(&s->deliver, 0., 0.);
  ev_timer_start(s->loop, &s->deliver);
}

static void release(oauth2_source *s);

static void on_token(void *ud, const http_response *r) {
  oauth2_source *s = ud;
  s->call = NULL;
  if (s->closing) { /* deferred from oauth2_source_free */
    release(s);
    return;
  }
  if (r->transport_error) {
    char why[300];
    snprintf(why, sizeof why, "token endpoint: %s",
             r->transport_error == HTTP_CANCELLED ? "cancelled" : r->error);
    settle(s, why, 0);
    return;
  }
  char *token, why[300] = "";
  long expires_in;
  int permanent;
  if (oauth2_parse_token_response(r->status, r->body, &token, &expires_in, why, sizeof why,
                                  &permanent)) {
    log_warn("oauth2 refresh failed", "client=%s error=%s", s->client_id, log_q(why));
    settle(s, why, permanent);
    return;
  }
  free(s->token);
  s->token = token;
  s->expires_at = clock_now_ms() + (int64_t)expires_in * 1000;
  settle(s, NULL, 0);
}

static int start_refresh(oauth2_source *s, perr *e) {
  char *refresh = secret_resolve(s->refresh_ref, e);
  if (!refresh) return perr_prefix(e, "refresh_token");
  char *secret = NULL;
  if (s->secret_ref && !(secret = secret_resolve(s->secret_ref, e))) {
    memset(refresh, 0, strlen(refresh));
    free(refresh);
    return perr_prefix(e, "client_secret");
  }
  buf b;
  buf_init(&b, 64 * 1024);
  int bad = form_add(&b, "grant_type", "refresh_token") ||
            form_add(&b, "refresh_token", refresh) || form_add(&b, "client_id", s->client_id) ||
            (secret && form_add(&b, "client_secret", secret)) ||
            (s->scope && form_add(&b, "scope", s->scope));
  memset(refresh, 0, strlen(refresh));
  free(refresh);
  if (secret) memset(secret, 0, strlen(secret));
  free(secret);
  if (bad) {
    buf_release(&b);
    return perr_set(e, "out of memory");
  }
  static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                        "Accept: application/json", NULL};
  http_request rq = {.method = "POST", .url = s->token_url, .headers = headers, .body = b.data,
                     .body_len = b.len, .timeout_ms = s->timeout_ms, .max_response = 64 * 1024};
  int rc = http_client_start(s->hc, &rq, on_token, s, &s->call, e);
  memset(b.data, 0, b.len);
  buf_release(&b);
  return rc;
}

int oauth2_get_token(oauth2_source *s, oauth2_token_fn cb, void *ud, perr *e) {
  waiter *w = calloc(1, sizeof *w);
  if (!w) return perr_set(e, "out of memory");
  w->cb = cb;
  w->ud = ud;
  int fresh = s->token && clock_now_ms() < s->expires_at - (int64_t)s->margin_s * 1000;
  if (fresh) {
    /* Handed over from the loop, like every answer. */
    w->next = s->ready;
    s->ready = w;
    s->error[0] = '\0';
    ev_timer_set(&s->deliver, 0., 0.);
    ev_timer_start(s->loop, &s->deliver);
    return 0;
  }
  if (!s->call) {
    free(s->token);
    s->token = NULL;
    if (start_refresh(s, e)) {
      free(w);
      return -1;
    }
  }
  w->next = s->waiting;
  s->waiting = w;
  return 0;
}

void oauth2_invalidate(oauth2_source *s) {
  free(s->token);
  s->token = NULL;
}

oauth2_source *oauth2_source_new(http_client *hc, struct ev_loop *loop, const oauth2_opts *o,
                                 perr *e) {
  if (!o->token_url || !o->client_id || !o->refresh_token_ref) {
    perr_set(e, "oauth2: token_url, client_id and refresh_token are required");
    return NULL;
  }
  oauth2_source *s = calloc(1, sizeof *s);
  if (!s) {
    perr_set(e, "out of memory");
    return NULL;
  }
  s->hc = hc;
  s->loop = loop;
  s->token_url = strdup(o->token_url);
  s->client_id = strdup(o->client_id);
  s->refresh_ref = strdup(o->refresh_token_ref);
  s->secret_ref = dup_or_null(o->client_secret_ref);
  s->scope = dup_or_null(o->scope);
  s->margin_s = o->margin_s > 0 ? o->margin_s : 60;
  s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
  ev_timer_init(&s->deliver, on_deliver, 0., 0.);
  s->deliver.data = s;
  if (!s->token_url || !s->client_id || !s->refresh_ref ||
      (o->client_secret_ref && !s->secret_ref) || (o->scope && !s->scope)) {
    oauth2_source_free(s);
    perr_set(e, "out of memory");
    return NULL;
  }
  return s;
}

static void release(oauth2_source *s) {
  free(s->token);
  free(s->token_url);
  free(s->client_id);
  free(s->refresh_ref);
  free(s->secret_ref);
  free(s->scope);
  free(s);
}

void oauth2_source_free(oauth2_source *s) {
  if (!s || s->closing) return;
  /* Everyone still waiting hears "cancelled" now: the owner is going. */
  waiter *list = s->ready;
  waiter **tail = &list;
  while (*tail) tail = &(*tail)->next;
  *tail = s->waiting;
  s->ready = s->waiting = NULL;
  ev_timer_stop(s->loop, &s->deliver);
  while (list) {
    waiter *w = list;
    list = w->next;
    w->cb(w->ud, NULL, "cancelled", 0);
    free(w);
  }
  if (s->call) {
    /* The client calls on_token later; the source goes then. */
    s->closing = 1;
    http_call_cancel(s->call);
    return;
  }
  release(s);
}
