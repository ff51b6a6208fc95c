/*
 * action `email_send`: sends the reply to the triggering mail over SMTP,
 * without a person reading it first.  Opt-in per recipe: the step must say
 * `auto_send: true`, so a recipe never mails customers by accident.
 *
 *   - id: send
 *     email_send:
 *       account: support          # needs smtp: in the mail account
 *       body: "{{steps.write.text}}"
 *       quote: false              # default true
 *       auto_send: true           # required
 *
 * The message is email_reply.h's with `Auto-Submitted: auto-replied`
 * (RFC 3834), so other robots do not answer it.  libcurl speaks SMTP on the
 * shared multi (http_client_start_easy): smtps:// is implicit TLS,
 * smtp:// with the account's starttls (default on) requires STARTTLS;
 * AUTH with the password (PLAIN/LOGIN) or an XOAUTH2 token.
 *
 * Classification: a 4xx reply and connection trouble retry; a 5xx reply
 * (mailbox unknown, relaying denied) and refused logins fail with the
 * server's words.  Guarantee: at-least-once -- SMTP cannot take a message
 * back or recognise it twice; a crash after the server accepted it and
 * before the step committed sends it again, with the same Message-ID.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/email_common.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/http_client.h"

static const field_spec send_fields[] = {
    {.name = "account", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "mail account name in the configuration's mail: section (needs smtp:)"},
    {.name = "body", .type = FT_TEMPLATE, .flags = FIELD_REQUIRED,
     .help = "the reply text, a template rendered without escaping"},
    {.name = "quote", .type = FT_BOOL, .help = "append the quoted original (default true)"},
    {.name = "auto_send", .type = FT_BOOL, .flags = FIELD_REQUIRED,
     .help = "must be true: this step mails the sender without a person checking"},
    {.name = NULL},
};

static int send_validate(const cJSON *cfg, perr *e) {
  if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "auto_send")))
    return perr_set(e, "auto_send: email_send mails the sender with nobody checking the text; "
                       "write auto_send: true to mean it (or use email_draft)");
  return 0;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

typedef struct send_call {
  action_call *c;
  mail_account acct;
  email_login *login;
  email_built msg;
  size_t sent;            /* upload position */
  struct curl_slist *rcpt;
  char from[600];
  http_call *http;
  int cancelled;
} send_call;

static void call_free(send_call *s) {
  s->c->priv = NULL;
  email_login_free(s->login);
  email_built_release(&s->msg);
  curl_slist_free_all(s->rcpt);
  free(s);
}

static void finish(send_call *s, outcome_class cls, cJSON *out, const char *detail) {
  action_call *c = s->c;
  call_free(s);
  action_done(c, cls, out, detail, 0);
}

static size_t read_cb(char *dst, size_t size, size_t n, void *ud) {
  send_call *s = ud;
  size_t want = size * n, left = s->msg.raw_len - s->sent;
  if (want > left) want = left;
  memcpy(dst, s->msg.raw + s->sent, want);
  s->sent += want;
  return want;
}

/* The server's last refusal (a 4xx or 5xx line) from the transcript, else
 * its last line: libcurl sends QUIT after a failure, whose "221" says
 * nothing about why. */
static void last_reply(const http_response *r, char *out, size_t len) {
  size_t n;
  const char *t = http_response_raw_headers(r, &n);
  const char *pick = NULL, *last = NULL;
  size_t pick_len = 0, last_len = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && t[j] != '\n') j++;
    size_t k = j;
    while (k > i && (t[k - 1] == '\r' || t[k - 1] == '\n')) k--;
    if (k - i >= 3 && t[i] >= '1' && t[i] <= '5') {
      last = t + i, last_len = k - i;
      if (t[i] == '4' || t[i] == '5') pick = t + i, pick_len = k - i;
    }
    i = j + 1;
  }
  if (!pick) pick = last, pick_len = last_len;
  snprintf(out, len, "%.*s", pick ? (int)(pick_len > 300 ? 300 : pick_len) : 0, pick ? pick : "");
}

static void on_sent(void *ud, const http_response *r) {
  send_call *s = ud;
  s->http = NULL;
  char reply[320];
  last_reply(r, reply, sizeof reply);
  if (r->transport_error == HTTP_CANCELLED) return finish(s, OUTCOME_CANCELLED, NULL, "cancelled");
  if (r->transport_error) {
    char msg[800];
    if (reply[0])
      snprintf(msg, sizeof msg, "smtp: %s (server: %s)", r->error, reply);
    else
      snprintf(msg, sizeof msg, "smtp: %s", r->error);
    /* The reply code decides: 5xx will not change, 4xx and silence may. */
    long code = strtol(reply, NULL, 10);
    outcome_class cls = r->transport_error == CURLE_LOGIN_DENIED || code >= 500 ? OUTCOME_FAIL
                                                                               : OUTCOME_RETRY;
    return finish(s, cls, NULL, msg);
  }
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "message_id", s->msg.message_id);
  cJSON_AddStringToObject(out, "to", s->msg.to ? s->msg.to : "");
  cJSON_AddStringToObject(out, "subject", s->msg.subject);
  cJSON_AddStringToObject(out, "server_reply", reply);
  log_info("email sent", "run=%lld to=%s", (long long)s->c->run_id, s->msg.to ? s->msg.to : "");
  finish(s, OUTCOME_OK, out, NULL);
}

static void on_login(void *ud, const char *password, const char *bearer, const char *error,
                     int permanent) {
  send_call *s = ud;
  if (s->cancelled) return finish(s, OUTCOME_CANCELLED, NULL, "cancelled");
  if (error) return finish(s, permanent ? OUTCOME_FAIL : OUTCOME_RETRY, NULL, error);
  CURL *h = curl_easy_init();
  if (!h) return finish(s, OUTCOME_RETRY, NULL, "out of memory");
  const char *url = s->acct.smtp_url;
  curl_easy_setopt(h, CURLOPT_URL, url);
  if (strncmp(url, "smtp://", 7) == 0 && s->acct.starttls)
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
  if (s->acct.ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, s->acct.ca_file);
  if (s->acct.insecure) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(h, CURLOPT_USERNAME, s->acct.user);
  if (bearer) {
    curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, bearer);
    curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
  } else {
    curl_easy_setopt(h, CURLOPT_PASSWORD, password);
  }
  snprintf(s->from, sizeof s->from, "<%s>", s->acct.address);
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, s->from);
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, s->rcpt);
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(h, CURLOPT_READDATA, s);
  curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->msg.raw_len);
  http_easy_opts o = {.raw_headers = 1, .timeout_ms = 120000};
  perr e;
  if (http_client_start_easy(s->c->rt->http, h, &o, on_sent, s, &s->http, &e))
    finish(s, OUTCOME_RETRY, NULL, e.msg);
}

static int send_start(action_call *c, perr *e) {
  send_call *s = calloc(1, sizeof *s);
  if (!s) return perr_set(e, "out of memory");
  s->c = c;
  c->priv = s;
  if (mail_account_get(c->rt->cfg, str(c->input, "account"), &s->acct, e) ||
      (!s->acct.smtp_url &&
       perr_set(e, "mail account \"%s\" has no smtp: server", s->acct.name)) ||
      email_build(c, &s->acct, 1, &s->msg, e))
    goto fail;
  if (!s->msg.to) {
    perr_set(e, "the message has no address to answer");
    goto fail;
  }
  char rcpt[600];
  snprintf(rcpt, sizeof rcpt, "<%s>", s->msg.to);
  if (!(s->rcpt = curl_slist_append(NULL, rcpt))) {
    perr_set(e, "out of memory");
    goto fail;
  }
  if (!(s->login = email_login_start(c, &s->acct, on_login, s, e))) goto fail;
  return 0;
fail:
  call_free(s);
  return -1;
}

static void send_cancel(action_call *c) {
  send_call *s = c->priv;
  if (!s) return;
  s->cancelled = 1;
  if (s->http) http_call_cancel(s->http); /* on_sent reports CANCELLED */
}

const action_kind action_email_send = {
    .name = "email_send",
    .summary = "sends the reply to the triggering mail over SMTP at once (Auto-Submitted: "
               "auto-replied); opt-in with auto_send: true",
    .guarantee = "at-least-once: a crash after the server took the message sends it again "
                 "(same Message-ID)",
    .fields = send_fields,
    .flags = ACTION_ACCOUNT,
    .validate = send_validate,
    .prepare = email_prepare_input,
    .start = send_start,
    .cancel = send_cancel,
};
