/*
 * google_auth: the service-account and authorized-user grants behind
 * google_auth.h.
 *
 * States (as oauth2.c): no token -> exchanging (one request in flight,
 * waiters queued; start_exchange) -> token until expires_at - margin
 * (on_token) -> exchanging ...  A failed exchange leaves no token; the next
 * caller starts a new one, on its own retry schedule.  Answers, even a
 * cached token, reach callers from the `deliver` timer (settle, on_deliver),
 * never from inside google_auth_token.  google_auth_free during an exchange
 * marks `closing` and the object goes when the cancelled call reports
 * (release).
 *
 * Why not an oauth2_source for authorized users: oauth2_opts takes secret
 * references for the refresh token and client secret, while here both sit
 * inside the one credentials JSON; and the JWT grant needs the same cache
 * and queue anyway.  What must agree between the two modules -- reading the
 * token endpoint's answer and which errors are permanent -- is shared
 * through oauth2_parse_token_response.
 *
 * Secrets: the resolved JSON, the key, the refresh token, the assertion and
 * the request body are wiped before they are freed; only the client_email
 * or client_id (public identifiers) appear in messages and logs.
 */
#include "net/google_auth.h"

#include <cjson/cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/secrets.h"
#include "net/jwt.h"
#include "net/oauth2.h"

#define MARGIN_S 60
#define TIMEOUT_MS 30000
#define LIFETIME_S 3600 /* Google's maximum for an assertion */

enum { KIND_NONE, KIND_SERVICE_ACCOUNT, KIND_AUTHORIZED_USER };

typedef struct waiter {
  google_token_fn cb;
  void *ud;
  struct waiter *next;
} waiter;

struct google_auth {
  http_client *hc;
  struct ev_loop *loop;
  char *cred_ref, *scope, *token_uri_override, *subject;
  int kind;           /* of the credentials the exchange in flight used */
  char who[200];      /* client_email or client_id, for messages */
  char *token;        /* cached access token, or NULL */
  int64_t expires_at; /* ms */
  http_call *call;    /* the exchange in flight, or NULL */
  int closing;        /* freed by the owner while call was in flight */
  waiter *waiting, *ready;
  char error[600]; /* the outcome handed to `ready` waiters */
  int permanent;
  ev_timer deliver;
};

static void wipe(char *s) {
  if (s) memset(s, 0, strlen(s));
}

/* cJSON_Delete frees without clearing: the key and tokens would linger. */
static void json_wipe(cJSON *j) {
  for (; j; j = j->next) {
    wipe(j->valuestring);
    json_wipe(j->child);
  }
}

static void json_wipe_delete(cJSON *j) {
  json_wipe(j);
  cJSON_Delete(j);
}

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

char *google_jwt_assertion(const char *client_email, const char *private_key_pem, const char *scope,
                           const char *aud, const char *subject, int64_t now_s, perr *e) {
  if (!client_email || !*client_email || !private_key_pem || !scope || !*scope || !aud) {
    perr_set(e, "service account: client_email, private_key, scope and audience are required");
    return NULL;
  }
  /* Claim order as in Google's documentation, for readable test output. */
  cJSON *c = cJSON_CreateObject();
  if (!c || !cJSON_AddStringToObject(c, "iss", client_email) ||
      !cJSON_AddStringToObject(c, "scope", scope) || !cJSON_AddStringToObject(c, "aud", aud) ||
      !cJSON_AddNumberToObject(c, "exp", (double)(now_s + LIFETIME_S)) ||
      !cJSON_AddNumberToObject(c, "iat", (double)now_s) ||
      (subject && *subject && !cJSON_AddStringToObject(c, "sub", subject))) {
    cJSON_Delete(c);
    perr_set(e, "out of memory");
    return NULL;
  }
  char *claims = cJSON_PrintUnformatted(c);
  cJSON_Delete(c);
  if (!claims) {
    perr_set(e, "out of memory");
    return NULL;
  }
  char *jwt = jwt_sign_rs256(claims, private_key_pem, e);
  free(claims);
  if (!jwt) perr_prefix(e, "service account %.120s", client_email);
  return jwt;
}

static const char *str_field(const cJSON *j, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
  return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

/* The service-account request: the assertion, posted to *url. */
static int service_account_body(google_auth *a, const cJSON *j, buf *body, char **url, perr *e) {
  const char *email = str_field(j, "client_email"), *key = str_field(j, "private_key");
  const char *aud = str_field(j, "token_uri");
  if (!email || !key)
    return perr_set(e, "%s: a service_account key needs client_email and private_key", a->cred_ref);
  snprintf(a->who, sizeof a->who, "service account %s", email);
  if (!a->scope) return perr_set(e, "%s: a service account needs a scope", a->who);
  if (!aud) aud = GOOGLE_TOKEN_URI;
  char *jwt = google_jwt_assertion(email, key, a->scope, aud, a->subject, (int64_t)time(NULL), e);
  if (!jwt) return -1;
  int bad = form_add(body, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer") ||
            form_add(body, "assertion", jwt);
  wipe(jwt);
  free(jwt);
  *url = strdup(a->token_uri_override ? a->token_uri_override : aud);
  if (bad || !*url) return perr_set(e, "out of memory");
  return 0;
}

static int authorized_user_body(google_auth *a, const cJSON *j, buf *body, char **url, perr *e) {
  const char *id = str_field(j, "client_id"), *secret = str_field(j, "client_secret");
  const char *refresh = str_field(j, "refresh_token"), *uri = str_field(j, "token_uri");
  if (!id || !secret || !refresh)
    return perr_set(e,
                    "%s: an authorized_user file needs client_id, client_secret and "
                    "refresh_token",
                    a->cred_ref);
  snprintf(a->who, sizeof a->who, "authorized user (client %s)", id);
  int bad = form_add(body, "grant_type", "refresh_token") ||
            form_add(body, "refresh_token", refresh) || form_add(body, "client_id", id) ||
            form_add(body, "client_secret", secret) ||
            (a->scope && form_add(body, "scope", a->scope));
  *url = strdup(a->token_uri_override ? a->token_uri_override : uri ? uri : GOOGLE_TOKEN_URI);
  if (bad || !*url) return perr_set(e, "out of memory");
  return 0;
}

/* Resolves the credentials and builds the token request. */
static int build_request(google_auth *a, buf *body, char **url, perr *e) {
  *url = NULL;
  char *text = secret_resolve(a->cred_ref, e);
  if (!text) return perr_prefix(e, "google credentials");
  cJSON *j = cJSON_Parse(text);
  wipe(text);
  free(text);
  const char *type = str_field(j, "type");
  int rc;
  a->kind = KIND_NONE;
  if (!cJSON_IsObject(j)) {
    rc = perr_set(e, "%s: not a JSON credentials file", a->cred_ref);
  } else if (type && strcmp(type, "service_account") == 0) {
    a->kind = KIND_SERVICE_ACCOUNT;
    rc = service_account_body(a, j, body, url, e);
  } else if (type && strcmp(type, "authorized_user") == 0) {
    a->kind = KIND_AUTHORIZED_USER;
    rc = authorized_user_body(a, j, body, url, e);
  } else {
    rc = perr_set(e,
                  "%s: \"type\" is %s%.40s%s; promptd reads service_account and "
                  "authorized_user credentials",
                  a->cred_ref, type ? "\"" : "", type ? type : "missing", type ? "\"" : "");
  }
  json_wipe_delete(j);
  if (rc) {
    free(*url);
    *url = NULL;
  }
  return rc;
}

/* What a person should do about a permanent refusal, by grant and words. */
static const char *hint(const google_auth *a, const char *why) {
  int grant = strstr(why, "invalid_grant") != NULL;
  if (a->kind == KIND_AUTHORIZED_USER)
    return grant ? " (the user must re-authorize: the refresh token expired or was revoked)" : "";
  if (grant && strstr(why, "Signature"))
    return " (the private key does not match the service account: the key was deleted or "
           "replaced; download a new key file)";
  if (grant && (strstr(why, "iat") || strstr(why, "exp") || strstr(why, "timeframe")))
    return " (the JWT's iat/exp are outside the server's window: check this machine's clock)";
  if (strstr(why, "unauthorized_client") && a->subject)
    return " (domain-wide delegation: allow this client for these scopes in the Admin console)";
  if (strstr(why, "invalid_scope"))
    return " (a scope is misspelt or not available to this account)";
  if (grant || strstr(why, "invalid_client"))
    return " (the service account is disabled or deleted, or the key file is not its own)";
  return "";
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  google_auth *a = w->data;
  /* Take the list first: a callback may ask again (and queue anew). */
  waiter *list = a->ready;
  a->ready = NULL;
  char error[sizeof a->error];
  memcpy(error, a->error, sizeof error);
  int permanent = a->permanent;
  char *token = a->token && !error[0] ? strdup(a->token) : NULL;
  while (list) {
    waiter *next = list->next;
    if (token)
      list->cb(list->ud, token, NULL, 0);
    else
      list->cb(list->ud, NULL, error[0] ? error : "out of memory", permanent);
    free(list);
    list = next;
  }
  if (token) wipe(token);
  free(token);
}

static void schedule(google_auth *a) {
  ev_timer_set(&a->deliver, 0., 0.);
  ev_timer_start(a->loop, &a->deliver);
}

/* Hands the outcome to everyone waiting, from the loop. */
static void settle(google_auth *a, const char *error, int permanent) {
  snprintf(a->error, sizeof a->error, "%s", error ? error : "");
  a->permanent = permanent;
  waiter **tail = &a->ready;
  while (*tail) tail = &(*tail)->next;
  *tail = a->waiting;
  a->waiting = NULL;
  schedule(a);
}

static void release(google_auth *a);

static void on_token(void *ud, const http_response *r) {
  google_auth *a = ud;
  a->call = NULL;
  if (a->closing) { /* deferred from google_auth_free */
    release(a);
    return;
  }
  char why[300] = "", msg[sizeof a->error];
  if (r->transport_error) {
    snprintf(msg, sizeof msg, "google token for %s: token endpoint: %s", a->who,
             r->transport_error == HTTP_CANCELLED ? "cancelled" : r->error);
    settle(a, msg, 0);
    return;
  }
  char *token;
  long expires_in;
  int permanent;
  if (oauth2_parse_token_response(r->status, r->body, &token, &expires_in, why, sizeof why,
                                  &permanent)) {
    /* Google answers invalid_scope for scopes the account can never get:
     * as hopeless as invalid_grant, though RFC 6749 leaves it unranked. */
    if (strstr(why, " invalid_scope")) permanent = 1;
    snprintf(msg, sizeof msg, "google token for %s: %s%s", a->who, why,
             permanent ? hint(a, why) : "");
    log_warn("google token refused", "who=%s error=%s", log_q(a->who), log_q(why));
    settle(a, msg, permanent);
    return;
  }
  if (a->token) wipe(a->token);
  free(a->token);
  a->token = token;
  a->expires_at = clock_now_ms() + (int64_t)expires_in * 1000;
  settle(a, NULL, 0);
}

static int start_exchange(google_auth *a, perr *e) {
  buf body;
  buf_init(&body, 64 * 1024);
  char *url;
  if (build_request(a, &body, &url, e)) {
    if (body.data) wipe(body.data);
    buf_release(&body);
    return -1;
  }
  static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                        "Accept: application/json", NULL};
  http_request rq = {.method = "POST",
                     .url = url,
                     .headers = headers,
                     .body = body.data,
                     .body_len = body.len,
                     .timeout_ms = TIMEOUT_MS,
                     .max_response = 64 * 1024};
  int rc = http_client_start(a->hc, &rq, on_token, a, &a->call, e);
  if (rc) perr_prefix(e, "google token for %s", a->who);
  wipe(body.data);
  buf_release(&body);
  free(url);
  return rc;
}

int google_auth_token(google_auth *a, google_token_fn cb, void *ud, perr *e) {
  waiter *w = calloc(1, sizeof *w);
  if (!w) return perr_set(e, "out of memory");
  w->cb = cb;
  w->ud = ud;
  if (a->token && clock_now_ms() < a->expires_at - (int64_t)MARGIN_S * 1000) {
    w->next = a->ready;
    a->ready = w;
    a->error[0] = '\0';
    schedule(a);
    return 0;
  }
  if (!a->call) {
    google_auth_invalidate(a);
    if (start_exchange(a, e)) {
      free(w);
      return -1;
    }
  }
  w->next = a->waiting;
  a->waiting = w;
  return 0;
}

void google_auth_invalidate(google_auth *a) {
  if (a->token) wipe(a->token);
  free(a->token);
  a->token = NULL;
}

/* NULL, "" and blanks all mean "not given". */
static int given(const char *s) { return s && s[strspn(s, " \t\r\n")] != '\0'; }

google_auth *google_auth_new(http_client *hc, struct ev_loop *loop, const char *credentials_ref,
                             const char *scope, const char *token_uri_override, const char *subject,
                             perr *e) {
  if (!secret_is_ref(credentials_ref)) {
    perr_set(e,
             "google credentials: \"%.200s\" is not a secret reference (expected "
             "file:/path, env:NAME or cred:NAME)",
             credentials_ref ? credentials_ref : "");
    return NULL;
  }
  google_auth *a = calloc(1, sizeof *a);
  if (!a) {
    perr_set(e, "out of memory");
    return NULL;
  }
  a->hc = hc;
  a->loop = loop;
  a->cred_ref = strdup(credentials_ref);
  a->scope = given(scope) ? strdup(scope) : NULL;
  a->token_uri_override = given(token_uri_override) ? strdup(token_uri_override) : NULL;
  a->subject = given(subject) ? strdup(subject) : NULL;
  snprintf(a->who, sizeof a->who, "%s", credentials_ref);
  ev_timer_init(&a->deliver, on_deliver, 0., 0.);
  a->deliver.data = a;
  if (!a->cred_ref || (given(scope) && !a->scope) ||
      (given(token_uri_override) && !a->token_uri_override) || (given(subject) && !a->subject)) {
    release(a);
    perr_set(e, "out of memory");
    return NULL;
  }
  return a;
}

static void release(google_auth *a) {
  google_auth_invalidate(a);
  free(a->cred_ref);
  free(a->scope);
  free(a->token_uri_override);
  free(a->subject);
  free(a);
}

void google_auth_free(google_auth *a) {
  if (!a || a->closing) return;
  /* Everyone still waiting hears "cancelled" now: the owner is going. */
  waiter *list = a->ready;
  waiter **tail = &list;
  while (*tail) tail = &(*tail)->next;
  *tail = a->waiting;
  a->ready = a->waiting = NULL;
  ev_timer_stop(a->loop, &a->deliver);
  while (list) {
    waiter *next = list->next;
    list->cb(list->ud, NULL, "cancelled", 0);
    free(list);
    list = next;
  }
  if (a->call) {
    a->closing = 1;
    http_call_cancel(a->call);
    return;
  }
  release(a);
}
