/*
 * trigger `sheet_rows`: new rows of a Google Sheet become events.
 *
 *   trigger:
 *     sheet_rows:
 *       spreadsheet_id: 1AbC...
 *       range: "Form Responses 1"        # a sheet name or an A1 range; row 1 is the header
 *       key: "Submission ID"             # optional key column (else a hash of the row)
 *       credentials: file:/etc/promptd/sa.json
 *       poll_s: 60
 *
 * Source "sheet_rows:<spreadsheet_id>/<range>".  Event: {fields: {header:
 * cell}, row: [cells], row_number, key} -- the shape of the other form
 * sources.  Repeated headers get " 2", " 3"...; empty ones "Column N".
 *
 * Which rows are new: every poll reads the range (values.get) and
 * ingests each data row under its key as the dedupe key, so a row is
 * stored once whatever happens to the sheet:
 *   - rows appended below: new keys, new events;
 *   - rows inserted above earlier ones: their keys are new, so they
 *     trigger; the rows that moved down keep their keys and do not;
 *   - rows deleted: nothing happens (their events stay);
 *   - a row edited in place: with a key column, nothing (same key);
 *     without one, its content hash changes and it triggers again.
 * So that a large sheet is not ingested whole at every poll, the cursor
 * keeps the row count and the key of the last row seen: when the sheet
 * has only grown below that row, only the rows after it are looked at.
 * First start: the rows already there count as seen (no events), unless
 * `from_start: true`; their keys are kept in the cursor (the first 16 hex
 * digits of each, sorted), so a later rescan does not take them for new.
 */
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define SCOPE "https://www.googleapis.com/auth/spreadsheets.readonly"
#define DEFAULT_BASE "https://sheets.googleapis.com"

static const field_spec rows_fields[] = {
    {.name = "spreadsheet_id", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "the spreadsheet's id (from its URL)"},
    {.name = "range", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "a sheet name or A1 range whose first row is the header"},
    {.name = "key", .type = FT_STRING,
     .help = "header of the column that identifies a row (default: a hash of the row)"},
    {.name = "credentials", .type = FT_SECRET,
     .help = "service-account or authorized_user JSON (a secret reference); default: google.credentials in the configuration"},
    {.name = "poll_s", .type = FT_INT, .min = 1, .max = 86400,
     .help = "seconds between polls (default 60)"},
    {.name = "from_start", .type = FT_BOOL,
     .help = "first start: the rows already there trigger too (default false)"},
    {.name = "base_url", .type = FT_STRING, .help = "Sheets API base URL"},
    {.name = "token_uri", .type = FT_STRING, .help = "token endpoint override"},
    {.name = NULL},
};

static char *rows_source(const cJSON *cfg) {
  char name[600];
  snprintf(name, sizeof name, "sheet_rows:%s/%s", json_str(cfg, "spreadsheet_id"), json_str(cfg, "range"));
  return strdup(name);
}

struct trigger_inst {
  engine *en;
  const cJSON *cfg;
  const char *source;
  google_auth *auth;
  http_call *http;
  long seen_rows;   /* data rows seen, -1: none yet (first start) */
  char *last_key;   /* key of the last data row seen */
  cJSON *baseline;  /* short keys of the rows there at the first start */
  poll_timer poll;
  int waiting_token;
};

static void poll_end(trigger_inst *t, const char *error) {
  engine_trigger_report(t->en, t->source, error);
  poll_timer_ended(&t->poll, error != NULL, 0);
}

/* Header names made unique and non-empty. */
static cJSON *headers_of(const cJSON *row) {
  cJSON *h = cJSON_CreateArray();
  const cJSON *c;
  int i = 0;
  cJSON_ArrayForEach(c, row) {
    char name[300];
    i++;
    if (cJSON_IsString(c) && *c->valuestring)
      snprintf(name, sizeof name, "%s", c->valuestring);
    else
      snprintf(name, sizeof name, "Column %d", i);
    char unique[320];
    snprintf(unique, sizeof unique, "%s", name);
    for (int n = 2;; n++) {
      int taken = 0;
      const cJSON *x;
      cJSON_ArrayForEach(x, h) taken |= strcmp(x->valuestring, unique) == 0;
      if (!taken) break;
      snprintf(unique, sizeof unique, "%s %d", name, n);
    }
    cJSON_AddItemToArray(h, cJSON_CreateString(unique));
  }
  return h;
}

static const char *cell(const cJSON *row, int i) {
  const cJSON *c = cJSON_GetArrayItem(row, i);
  return cJSON_IsString(c) ? c->valuestring : "";
}

/* The key column's cell, else SHA-256 of the cells (trailing empty ones
 * left out, so a new last column does not change old rows' keys). */
static void row_key(const cJSON *row, int key_col, char *out, size_t len) {
  if (key_col >= 0 && *cell(row, key_col)) {
    snprintf(out, len, "k:%s", cell(row, key_col));
    return;
  }
  int n = cJSON_GetArraySize(row);
  while (n > 0 && !*cell(row, n - 1)) n--;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned int hl = 0;
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  for (int i = 0; i < n; i++) {
    const char *s = cell(row, i);
    EVP_DigestUpdate(md, s, strlen(s) + 1); /* the NUL separates cells */
  }
  EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  size_t at = (size_t)snprintf(out, len, "h:");
  for (unsigned i = 0; i < 16 && at + 3 <= len; i++, at += 2) snprintf(out + at, len - at, "%02x", h[i]);
}

/* The first 16 hex digits of a key's SHA-256: enough to tell rows apart. */
static void short_key(const char *key, char out[17]) {
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned int hl = 0;
  EVP_Digest(key, strlen(key), h, &hl, EVP_sha256(), NULL);
  for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int in_baseline(const trigger_inst *t, const char *key) {
  if (!t->baseline) return 0;
  char k[17];
  short_key(key, k);
  const cJSON *x;
  cJSON_ArrayForEach(x, t->baseline) if (strcmp(x->valuestring, k) == 0) return 1;
  return 0;
}

static int save_cursor(trigger_inst *t, perr *e) {
  cJSON *c = cJSON_CreateObject();
  cJSON_AddNumberToObject(c, "rows", (double)t->seen_rows);
  cJSON_AddStringToObject(c, "last_key", t->last_key ? t->last_key : "");
  if (t->baseline) cJSON_AddItemToObject(c, "baseline", cJSON_Duplicate(t->baseline, 1));
  char *text = cJSON_PrintUnformatted(c);
  cJSON_Delete(c);
  int rc = text ? engine_cursor_set(t->en, t->source, text, e) : perr_set(e, "out of memory");
  free(text);
  return rc;
}

static void on_values(void *ud, const http_response *r) {
  trigger_inst *t = ud;
  t->http = NULL;
  if (r->transport_error == HTTP_CANCELLED || t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  char msg[800];
  if (r->transport_error || r->status < 200 || r->status >= 300) {
    if (r->transport_error)
      snprintf(msg, sizeof msg, "values.get: %s", r->error);
    else
      snprintf(msg, sizeof msg, "values.get: HTTP %ld: %.500s", r->status, r->body ? r->body : "");
    if (r->status == 401) google_auth_invalidate(t->auth);
    return poll_end(t, msg);
  }
  cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
  const cJSON *values = cJSON_GetObjectItemCaseSensitive(j, "values");
  int n = cJSON_GetArraySize(values);
  cJSON *headers = headers_of(cJSON_GetArrayItem(values, 0));
  int key_col = -1;
  const char *key_name = json_str(t->cfg, "key");
  for (int i = 0; key_name && i < cJSON_GetArraySize(headers); i++)
    if (strcmp(cJSON_GetArrayItem(headers, i)->valuestring, key_name) == 0) key_col = i;
  if (key_name && key_col < 0 && n > 0) {
    snprintf(msg, sizeof msg, "key column \"%.200s\" is not in the header row", key_name);
    cJSON_Delete(headers);
    cJSON_Delete(j);
    return poll_end(t, msg);
  }
  long data_rows = n > 0 ? n - 1 : 0;
  /* Where to look from: past the rows seen, when the sheet only grew. */
  int from = 1;
  char key[200];
  if (t->seen_rows >= 0 && t->seen_rows <= data_rows && t->seen_rows > 0) {
    row_key(cJSON_GetArrayItem(values, (int)t->seen_rows), key_col, key, sizeof key);
    if (t->last_key && strcmp(key, t->last_key) == 0) from = (int)t->seen_rows + 1;
  }
  int first = t->seen_rows < 0 && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t->cfg, "from_start"));
  long before_rows = t->seen_rows;
  char *before_key = t->last_key ? strdup(t->last_key) : NULL;
  if (first) {
    cJSON_Delete(t->baseline);
    t->baseline = cJSON_CreateArray();
    for (int i = 1; i < n; i++) {
      char k[17];
      row_key(cJSON_GetArrayItem(values, i), key_col, key, sizeof key);
      short_key(key, k);
      cJSON_AddItemToArray(t->baseline, cJSON_CreateString(k));
    }
  }
  perr e;
  for (int i = first ? n : from; i < n; i++) {
    const cJSON *row = cJSON_GetArrayItem(values, i);
    if (!cJSON_GetArraySize(row)) continue; /* a blank row */
    row_key(row, key_col, key, sizeof key);
    if (in_baseline(t, key)) continue;
    cJSON *ev = cJSON_CreateObject(), *fields = cJSON_AddObjectToObject(ev, "fields");
    for (int c = 0; c < cJSON_GetArraySize(headers); c++)
      cJSON_AddStringToObject(fields, cJSON_GetArrayItem(headers, c)->valuestring, cell(row, c));
    cJSON_AddItemToObject(ev, "row", cJSON_Duplicate(row, 1));
    cJSON_AddNumberToObject(ev, "row_number", i + 1);
    cJSON_AddStringToObject(ev, "key", key);
    char *payload = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    int rc = payload ? engine_ingest(t->en, t->source, key, payload, strlen(payload), NULL, NULL,
                                     &e)
                     : perr_set(&e, "out of memory");
    free(payload);
    if (rc) { /* nothing of this poll is taken as seen: the next one looks again */
      free(before_key);
      cJSON_Delete(headers);
      cJSON_Delete(j);
      return poll_end(t, e.msg);
    }
  }
  t->seen_rows = data_rows;
  free(t->last_key);
  t->last_key = NULL;
  if (data_rows > 0) {
    row_key(cJSON_GetArrayItem(values, (int)data_rows), key_col, key, sizeof key);
    t->last_key = strdup(key);
  }
  cJSON_Delete(headers);
  cJSON_Delete(j);
  /* Written when it moved: a baseline can be long. */
  int moved = first || before_rows != t->seen_rows || !before_key != !t->last_key ||
              (before_key && strcmp(before_key, t->last_key) != 0);
  free(before_key);
  if (moved && save_cursor(t, &e)) return poll_end(t, e.msg);
  poll_end(t, NULL);
}

static void add_escaped(buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                strchr("-._~!:", *p);
    if (plain) buf_addc(b, (char)*p);
    else buf_printf(b, "%%%02X", *p);
  }
}

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  trigger_inst *t = ud;
  (void)permanent;
  t->waiting_token = 0;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  if (!token) return poll_end(t, error);
  buf url;
  buf_init(&url, 8192);
  buf_adds(&url, google_endpoint(engine_runtime(t->en)->cfg, t->cfg, "base_url", "sheets_url",
                                 DEFAULT_BASE));
  buf_adds(&url, "/v4/spreadsheets/");
  add_escaped(&url, json_str(t->cfg, "spreadsheet_id"));
  buf_adds(&url, "/values/");
  add_escaped(&url, json_str(t->cfg, "range"));
  buf_adds(&url, "?majorDimension=ROWS");
  char auth[2200];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
  const char *const headers[] = {auth, NULL};
  http_request rq = {.method = "GET", .url = url.data ? url.data : "", .headers = headers,
                     .max_response = 64u << 20};
  perr e;
  int rc = http_client_start(engine_runtime(t->en)->http, &rq, on_values, t, &t->http, &e);
  memset(auth, 0, sizeof auth);
  buf_release(&url);
  if (rc) poll_end(t, e.msg);
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

static int rows_create(trigger_inst **out, const cJSON *cfg, const char *source, engine *en,
                       perr *e) {
  trigger_inst *t = calloc(1, sizeof *t);
  if (!t) return perr_set(e, "out of memory");
  t->en = en;
  t->cfg = cfg;
  t->source = source;
  t->seen_rows = -1;
  poll_timer_init(&t->poll, engine_loop(en), json_long(cfg, "poll_s", 60), on_timer, t);
  *out = t;
  return 0;
}

static int rows_start(trigger_inst *t, perr *e) {
  const runtime *rt = engine_runtime(t->en);
  const char *cred = google_credentials(rt->cfg, t->cfg, e);
  if (!cred) return -1;
  t->auth = google_auth_new(rt->http, engine_loop(t->en), cred, SCOPE,
                            google_endpoint(rt->cfg, t->cfg, "token_uri", "token_uri", NULL),
                            NULL, e);
  if (!t->auth) return -1;
  char *cursor = NULL;
  int rc = engine_cursor_get(t->en, t->source, &cursor, e);
  if (rc < 0) return -1;
  cJSON *c = rc == 0 ? cJSON_Parse(cursor) : NULL;
  free(cursor);
  if (c) {
    t->seen_rows = json_long(c, "rows", -1);
    if (json_str(c, "last_key") && *json_str(c, "last_key")) t->last_key = strdup(json_str(c, "last_key"));
    t->baseline = cJSON_DetachItemFromObjectCaseSensitive(c, "baseline");
  }
  cJSON_Delete(c);
  poll_timer_at(&t->poll, 0.);
  return 0;
}

static void rows_stop(trigger_inst *t, void (*done)(void *ud), void *ud) {
  /* A call in flight or a token asked for ends the stop from its callback. */
  poll_timer_stop(&t->poll, done, ud, t->http || t->waiting_token);
  if (t->http) http_call_cancel(t->http);
}

static void rows_destroy(trigger_inst *t) {
  if (!t) return;
  poll_timer_release(&t->poll);
  google_auth_free(t->auth);
  cJSON_Delete(t->baseline);
  free(t->last_key);
  free(t);
}

static long rows_stale_after_s(const cJSON *cfg) { return 3 * json_long(cfg, "poll_s", 60) + 900; }

const trigger_kind trigger_sheet_rows = {
    .name = "sheet_rows",
    .summary = "new rows of a Google Sheet (values.get), header row -> event.fields; each row "
               "once, by key column or row hash",
    .fields = rows_fields,
    .flags = TRIGGER_ACCOUNT,
    .source = rows_source,
    .create = rows_create,
    .start = rows_start,
    .stop = rows_stop,
    .destroy = rows_destroy,
    .stale_after_s = rows_stale_after_s,
};
