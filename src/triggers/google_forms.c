/*
 * trigger `google_forms`: new responses to a Google Form become events.
 *
 *   trigger:
 *     google_forms:
 *       form_id: 1FAIpQLS...
 *       credentials: file:/etc/promptd/sa.json   # service account or authorized_user JSON
 *       poll_s: 60                               # default 60
 *       since: 2026-11-01T00:00:00Z              # first start only: older responses too
 *       base_url: https://forms.googleapis.com   # tests and proxies
 *       token_uri: https://oauth2.googleapis.com/token
 *
 * Source "google_forms:<form_id>".  The event has the shape of the other
 * form sources (webhook typeform mapping, csv_export): `fields` keyed by
 * question title and by question id, plus response_id, submitted_at,
 * created_at, respondent_email (when collected) and the raw answers.
 *
 * A poll: token -> forms.get (question titles) -> responses.list with
 * `filter=timestamp >= T`, every page -> sorted by lastSubmittedTime ->
 * every response not yet seen becomes an event -> the cursor, all in one
 * loop iteration, so they commit together.  The cursor is T (the newest
 * lastSubmittedTime taken) and the ids taken at exactly T: the filter is
 * `>=` so a response submitted in the same instant as the last one taken,
 * but listed only later, is still found, and the ids keep the ones already
 * taken from repeating.  The dedupe key (response id + lastSubmittedTime)
 * guards the rest.  An edited response (new lastSubmittedTime) is a new
 * event.  First start without `since`: only responses from then on.
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/connector.h"
#include "core/engine.h"
#include "core/json_get.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/google_auth.h"
#include "net/google_config.h"
#include "net/http_client.h"
#include "triggers/poll_timer.h"

#define FORMS_SCOPE                                                  \
  "https://www.googleapis.com/auth/forms.responses.readonly "        \
  "https://www.googleapis.com/auth/forms.body.readonly"
#define DEFAULT_BASE "https://forms.googleapis.com"
#define MAX_PER_POLL 20000

static const field_spec forms_fields[] = {
    {.name = "form_id", .type = FT_STRING, .flags = FIELD_REQUIRED, .help = "the form's id"},
    {.name = "credentials", .type = FT_SECRET,
     .help = "service-account or authorized_user JSON (a secret reference); default: google.credentials in the configuration"},
    {.name = "poll_s", .type = FT_INT, .min = 1, .max = 86400,
     .help = "seconds between polls (default 60)"},
    {.name = "since", .type = FT_STRING,
     .help = "first start only: also responses since this time (RFC 3339, e.g. 2026-11-01T00:00:00Z)"},
    {.name = "page_size", .type = FT_INT, .min = 1, .max = 5000,
     .help = "responses per page asked for (default 500)"},
    {.name = "base_url", .type = FT_STRING, .help = "Forms API base URL (default " DEFAULT_BASE ")"},
    {.name = "token_uri", .type = FT_STRING, .help = "token endpoint override"},
    {.name = NULL},
};

static const char *str_or(const cJSON *o, const char *k) {
  const char *v = json_str(o, k);
  return v ? v : "";
}

/* RFC 3339 UTC ("2021-03-17T17:08:23.514Z") as nanoseconds since the
 * epoch; -1 when malformed.  String order is not time order when the
 * fraction's length varies, so times are compared as numbers. */
static int64_t rfc3339_ns(const char *s) {
  struct tm tm = {0};
  int n = 0;
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ns = 0, scale = 100000000;
  const char *p = s + n;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) ns += (*p - '0') * scale;
  if (*p != 'Z' || p[1]) return -1;
  time_t t = timegm(&tm);
  return t < 0 ? -1 : (int64_t)t * 1000000000 + ns;
}

static int forms_validate(const cJSON *cfg, perr *e) {
  const char *since = json_str(cfg, "since");
  if (since && rfc3339_ns(since) < 0)
    return perr_set(e, "since: expected an RFC 3339 UTC time like 2026-11-01T00:00:00Z, got "
                       "\"%.40s\"", since);
  const char *id = json_str(cfg, "form_id");
  for (const char *p = id; p && *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_'))
      return perr_set(e, "form_id: expected the id from the form's URL (A-Z a-z 0-9 - _)");
  return 0;
}

static char *forms_source(const cJSON *cfg) {
  char name[300];
  snprintf(name, sizeof name, "google_forms:%s", json_str(cfg, "form_id"));
  return strdup(name);
}

struct trigger_inst {
  engine *en;
  const cJSON *cfg;
  const char *source;
  google_auth *auth;
  http_call *http;
  char *token;
  cJSON *titles;     /* questionId -> title */
  cJSON *collected;  /* responses of this poll, all pages */
  char *cursor_t;    /* RFC 3339 of the newest response taken, or NULL */
  cJSON *cursor_ids; /* ids taken at exactly cursor_t */
  poll_timer poll;
  int waiting_token;
};

static void poll_end(trigger_inst *t, const char *error) {
  cJSON_Delete(t->collected);
  t->collected = NULL;
  engine_trigger_report(t->en, t->source, error);
  poll_timer_ended(&t->poll, error != NULL, 0);
}

static int api_get(trigger_inst *t, const char *path_and_query, http_done_fn done) {
  const char *base = google_endpoint(engine_runtime(t->en)->cfg, t->cfg, "base_url", "forms_url",
                                     DEFAULT_BASE);
  char url[4096], auth[2200];
  snprintf(url, sizeof url, "%s%s", base, path_and_query);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", t->token);
  const char *const headers[] = {auth, NULL};
  http_request rq = {.method = "GET", .url = url, .headers = headers,
                     .max_response = 64u << 20};
  perr e;
  int rc = http_client_start(engine_runtime(t->en)->http, &rq, done, t, &t->http, &e);
  memset(auth, 0, sizeof auth);
  if (rc) poll_end(t, e.msg);
  return rc;
}

/* 0 when the answer is a 2xx; else the poll ended with the reason. */
static int failed(trigger_inst *t, const http_response *r, const char *what) {
  if (r->transport_error == HTTP_CANCELLED || t->poll.stopping) {
    cJSON_Delete(t->collected);
    t->collected = NULL;
    poll_timer_finish_stop(&t->poll);
    return 1;
  }
  if (!r->transport_error && r->status >= 200 && r->status < 300) return 0;
  char msg[800];
  if (r->transport_error)
    snprintf(msg, sizeof msg, "%s: %s", what, r->error);
  else
    snprintf(msg, sizeof msg, "%s: HTTP %ld: %.500s", what, r->status, r->body ? r->body : "");
  if (r->status == 401) google_auth_invalidate(t->auth);
  poll_end(t, msg);
  return 1;
}

/* {title: value, questionId: value} from a response's answers. */
static cJSON *fields_of(const trigger_inst *t, const cJSON *answers) {
  cJSON *f = cJSON_CreateObject();
  const cJSON *a;
  cJSON_ArrayForEach(a, answers) {
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(a, "textAnswers"), "answers");
    cJSON *v;
    if (cJSON_GetArraySize(texts) == 1) {
      v = cJSON_CreateString(str_or(cJSON_GetArrayItem(texts, 0), "value"));
    } else if (texts) {
      v = cJSON_CreateArray();
      const cJSON *x;
      cJSON_ArrayForEach(x, texts) cJSON_AddItemToArray(v, cJSON_CreateString(str_or(x, "value")));
    } else {
      v = cJSON_Duplicate(a, 1); /* files, grades: as the API gives them */
    }
    const char *title = json_str(t->titles, a->string);
    if (title && !cJSON_GetObjectItemCaseSensitive(f, title))
      cJSON_AddItemToObject(f, title, cJSON_Duplicate(v, 1));
    if (!cJSON_GetObjectItemCaseSensitive(f, a->string)) cJSON_AddItemToObject(f, a->string, v);
    else cJSON_Delete(v);
  }
  return f;
}

static int seen(const trigger_inst *t, const char *time, const char *id) {
  if (!t->cursor_t || rfc3339_ns(time) != rfc3339_ns(t->cursor_t)) return 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, t->cursor_ids) if (cJSON_IsString(x) && strcmp(x->valuestring, id) == 0)
      return 1;
  return 0;
}

static int by_time(const void *a, const void *b) {
  int64_t x = rfc3339_ns(json_str(*(const cJSON *const *)a, "lastSubmittedTime"));
  int64_t y = rfc3339_ns(json_str(*(const cJSON *const *)b, "lastSubmittedTime"));
  return x < y ? -1 : x > y;
}

static int save_cursor(trigger_inst *t, perr *e) {
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "t", t->cursor_t ? t->cursor_t : "");
  cJSON_AddItemToObject(c, "ids", cJSON_Duplicate(t->cursor_ids, 1));
  char *text = cJSON_PrintUnformatted(c);
  cJSON_Delete(c);
  int rc = text ? engine_cursor_set(t->en, t->source, text, e) : perr_set(e, "out of memory");
  free(text);
  return rc;
}

/* Every page is in: events and cursor, in this iteration. */
static void take_all(trigger_inst *t) {
  int n = cJSON_GetArraySize(t->collected);
  const cJSON **v = n ? calloc((size_t)n, sizeof *v) : NULL;
  int k = 0;
  const cJSON *r;
  cJSON_ArrayForEach(r, t->collected) if (v && rfc3339_ns(json_str(r, "lastSubmittedTime")) >= 0)
      v[k++] = r;
  if (k) qsort(v, (size_t)k, sizeof *v, by_time);
  perr e;
  for (int i = 0; i < k; i++) {
    const char *id = json_str(v[i], "responseId"), *when = json_str(v[i], "lastSubmittedTime");
    if (!id || seen(t, when, id)) continue;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddItemToObject(ev, "fields",
                          fields_of(t, cJSON_GetObjectItemCaseSensitive(v[i], "answers")));
    cJSON_AddStringToObject(ev, "response_id", id);
    cJSON_AddStringToObject(ev, "submitted_at", when);
    if (json_str(v[i], "createTime")) cJSON_AddStringToObject(ev, "created_at", json_str(v[i], "createTime"));
    if (json_str(v[i], "respondentEmail"))
      cJSON_AddStringToObject(ev, "respondent_email", json_str(v[i], "respondentEmail"));
    cJSON_AddStringToObject(ev, "form_id", json_str(t->cfg, "form_id"));
    cJSON_AddItemToObject(ev, "answers",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(v[i], "answers"), 1));
    char *payload = cJSON_PrintUnformatted(ev), key[600];
    cJSON_Delete(ev);
    snprintf(key, sizeof key, "%s@%s", id, when);
    int rc = payload ? engine_ingest(t->en, t->source, key, payload, strlen(payload), NULL, NULL,
                                     &e)
                     : perr_set(&e, "out of memory");
    free(payload);
    if (rc) { /* the cursor stays where the last stored event left it */
      free(v);
      save_cursor(t, &e);
      return poll_end(t, e.msg);
    }
    /* Advance: a newer instant starts a new id list. */
    if (!t->cursor_t || rfc3339_ns(when) != rfc3339_ns(t->cursor_t)) {
      free(t->cursor_t);
      t->cursor_t = strdup(when);
      cJSON_Delete(t->cursor_ids);
      t->cursor_ids = cJSON_CreateArray();
    }
    cJSON_AddItemToArray(t->cursor_ids, cJSON_CreateString(id));
  }
  free(v);
  if (save_cursor(t, &e)) return poll_end(t, e.msg);
  poll_end(t, NULL);
}

static void list_page(trigger_inst *t, const char *page_token);

static void on_page(void *ud, const http_response *r) {
  trigger_inst *t = ud;
  t->http = NULL;
  if (failed(t, r, "forms.responses.list")) return;
  cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
  const cJSON *resp;
  cJSON_ArrayForEach(resp, cJSON_GetObjectItemCaseSensitive(j, "responses"))
      if (cJSON_GetArraySize(t->collected) < MAX_PER_POLL)
          cJSON_AddItemToArray(t->collected, cJSON_Duplicate(resp, 1));
  const char *next = json_str(j, "nextPageToken");
  if (next && *next && cJSON_GetArraySize(t->collected) < MAX_PER_POLL) {
    char *tok = strdup(next);
    cJSON_Delete(j);
    if (!tok) return poll_end(t, "out of memory");
    list_page(t, tok);
    free(tok);
    return;
  }
  cJSON_Delete(j);
  take_all(t);
}

static void add_escaped(buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '.' || *p == '_' || *p == '~';
    if (plain) buf_addc(b, (char)*p);
    else buf_printf(b, "%%%02X", *p);
  }
}

static void list_page(trigger_inst *t, const char *page_token) {
  buf q;
  buf_init(&q, 8192);
  buf_adds(&q, "/v1/forms/");
  add_escaped(&q, json_str(t->cfg, "form_id"));
  buf_printf(&q, "/responses?pageSize=%ld", json_long(t->cfg, "page_size", 500));
  if (t->cursor_t && *t->cursor_t) {
    char flt[120];
    snprintf(flt, sizeof flt, "timestamp >= %s", t->cursor_t);
    buf_adds(&q, "&filter=");
    add_escaped(&q, flt);
  }
  if (page_token) {
    buf_adds(&q, "&pageToken=");
    add_escaped(&q, page_token);
  }
  api_get(t, q.data ? q.data : "", on_page);
  buf_release(&q);
}

static void on_form(void *ud, const http_response *r) {
  trigger_inst *t = ud;
  t->http = NULL;
  if (failed(t, r, "forms.get")) return;
  cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
  cJSON_Delete(t->titles);
  t->titles = cJSON_CreateObject();
  const cJSON *item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(j, "items")) {
    const char *qid = json_str(cJSON_GetObjectItemCaseSensitive(
                              cJSON_GetObjectItemCaseSensitive(item, "questionItem"), "question"),
                          "questionId");
    if (qid && json_str(item, "title") && !cJSON_GetObjectItemCaseSensitive(t->titles, qid))
      cJSON_AddStringToObject(t->titles, qid, json_str(item, "title"));
  }
  cJSON_Delete(j);
  t->collected = cJSON_CreateArray();
  list_page(t, NULL);
}

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  trigger_inst *t = ud;
  (void)permanent;
  t->waiting_token = 0;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  if (!token) return poll_end(t, error);
  free(t->token);
  t->token = strdup(token);
  if (!t->token) return poll_end(t, "out of memory");
  char path[400];
  snprintf(path, sizeof path, "/v1/forms/%s", json_str(t->cfg, "form_id"));
  api_get(t, path, on_form);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  trigger_inst *t = w->data;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  perr e;
  t->waiting_token = 1;
  if (google_auth_token(t->auth, on_token, t, &e)) {
    t->waiting_token = 0;
    poll_end(t, e.msg);
  }
}

static int forms_create(trigger_inst **out, const cJSON *cfg, const char *source, engine *en,
                        perr *e) {
  trigger_inst *t = calloc(1, sizeof *t);
  if (!t) return perr_set(e, "out of memory");
  t->en = en;
  t->cfg = cfg;
  t->source = source;
  poll_timer_init(&t->poll, engine_loop(en), json_long(cfg, "poll_s", 60), on_timer, t);
  *out = t;
  return 0;
}

static int forms_start(trigger_inst *t, perr *e) {
  const runtime *rt = engine_runtime(t->en);
  const char *cred = google_credentials(rt->cfg, t->cfg, e);
  if (!cred) return -1;
  t->auth = google_auth_new(rt->http, engine_loop(t->en), cred, FORMS_SCOPE,
                            google_endpoint(rt->cfg, t->cfg, "token_uri", "token_uri", NULL),
                            NULL, e);
  if (!t->auth) return -1;
  char *cursor = NULL;
  int rc = engine_cursor_get(t->en, t->source, &cursor, e);
  if (rc < 0) return -1;
  cJSON *c = rc == 0 ? cJSON_Parse(cursor) : NULL;
  free(cursor);
  if (c && json_str(c, "t")) {
    t->cursor_t = strdup(json_str(c, "t"));
    t->cursor_ids = cJSON_DetachItemFromObjectCaseSensitive(c, "ids");
  } else {
    /* First start: from now on, or from `since`. */
    char now[40];
    clock_format_ms(clock_now_ms(), now, sizeof now);
    t->cursor_t = strdup(json_str(t->cfg, "since") ? json_str(t->cfg, "since") : now);
    if (save_cursor(t, e)) {
      cJSON_Delete(c);
      return -1;
    }
  }
  cJSON_Delete(c);
  if (!t->cursor_ids) t->cursor_ids = cJSON_CreateArray();
  poll_timer_at(&t->poll, 0.);
  return 0;
}

static void forms_stop(trigger_inst *t, void (*done)(void *ud), void *ud) {
  /* A call in flight or a token asked for ends the stop from its callback. */
  poll_timer_stop(&t->poll, done, ud, t->http || t->waiting_token);
  if (t->http) http_call_cancel(t->http);
}

static void forms_destroy(trigger_inst *t) {
  if (!t) return;
  poll_timer_release(&t->poll);
  google_auth_free(t->auth);
  cJSON_Delete(t->titles);
  cJSON_Delete(t->collected);
  cJSON_Delete(t->cursor_ids);
  free(t->cursor_t);
  free(t->token);
  free(t);
}

static long forms_stale_after_s(const cJSON *cfg) { return 3 * json_long(cfg, "poll_s", 60) + 900; }

const trigger_kind trigger_google_forms = {
    .name = "google_forms",
    .summary = "new responses to a Google Form (forms.responses.list), fields keyed by question "
               "title; the cursor commits with the events",
    .fields = forms_fields,
    .flags = TRIGGER_ACCOUNT,
    .validate = forms_validate,
    .source = forms_source,
    .create = forms_create,
    .start = forms_start,
    .stop = forms_stop,
    .destroy = forms_destroy,
    .stale_after_s = forms_stale_after_s,
};
