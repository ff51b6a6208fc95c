/*
 * action `sheets_append`: one row appended to a Google Sheet.
 *
 *   - id: sheet
 *     sheets_append:
 *       spreadsheet_id: 1AbCdEf...
 *       range: "Leads!A:F"                  # where the table is
 *       credentials: file:/etc/promptd/sa.json   # service account or authorized_user JSON
 *       row: ["{{event.fields.Name}}", "{{steps.qualify.score}}"]
 *       # or columns: { Name: "{{event.fields.Name}}", Score: "{{steps.qualify.score}}" }
 *       value_input: raw                    # raw (default) or user_entered
 *       id_column: 7                        # optional: 1-based column for the step's key
 *       base_url: https://sheets.googleapis.com   # tests and proxies
 *       token_uri: https://oauth2.googleapis.com/token   # likewise
 *
 * Exactly once with id_column.  The row carries "promptd-<run>-<step>" in
 * that column.  A first attempt appends at once.  Any later attempt (a
 * retry after a timeout, or the step found running after a crash) first
 * reads that column (values.get) and, when the key is there, reports the
 * earlier append instead of adding a second row.  Without id_column the
 * guarantee is at-least-once: Sheets has no idempotency key.
 *
 * With `columns:` the cells go under the named headers: the step reads
 * the table's header row first (one values.get) and lays the row out in
 * the sheet's order; a name that is not a header fails the step.
 *
 * Access tokens come from google_auth, one per credentials and shared by
 * every step of the kind (the kind's state).  A 401 drops the token and
 * retries; 429 and 5xx retry honouring Retry-After; other 4xx fail with
 * Google's error JSON verbatim.  Output: {updated_range, updated_rows,
 * already_there}.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/connector.h"
#include "core/log.h"
#include "core/runtime.h"
#include "gpt/errors.h"
#include "net/google_auth.h"
#include "net/google_config.h"
#include "net/http_client.h"

#define SHEETS_SCOPE "https://www.googleapis.com/auth/spreadsheets"
#define DEFAULT_BASE "https://sheets.googleapis.com"

static const char *const value_inputs[] = {"raw", "user_entered", NULL};

static const field_spec sheets_fields[] = {
    {.name = "spreadsheet_id", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "the spreadsheet's id (from its URL)"},
    {.name = "range", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "the table's range in A1 notation, e.g. Leads!A:F"},
    {.name = "credentials", .type = FT_SECRET,
     .help = "service-account or authorized_user JSON (a secret reference, e.g. file:/etc/promptd/sa.json); default: google.credentials in the configuration"},
    {.name = "row", .type = FT_TEMPLATE_LIST, .help = "the row's cells, each a template"},
    {.name = "columns", .type = FT_TEMPLATE_MAP,
     .help = "or: cells by header name (templates), laid out in the sheet's column order"},
    {.name = "value_input", .type = FT_STRING, .choices = value_inputs,
     .help = "raw (default: cells as text) or user_entered (parsed as if typed)"},
    {.name = "id_column", .type = FT_INT, .min = 1, .max = 18278,
     .help = "1-based column that gets the step's key: makes the append exactly-once"},
    {.name = "base_url", .type = FT_STRING, .help = "Sheets API base URL (default " DEFAULT_BASE ")"},
    {.name = "token_uri", .type = FT_STRING,
     .help = "token endpoint override (default: the credentials' own)"},
    {.name = NULL},
};

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int sheets_validate(const cJSON *cfg, perr *e) {
  int row = cJSON_GetObjectItemCaseSensitive(cfg, "row") != NULL;
  int cols = cJSON_GetObjectItemCaseSensitive(cfg, "columns") != NULL;
  if (row == cols) return perr_set(e, "give row (a list of cells) or columns (cells by header name), one of them");
  return 0;
}

static int sheets_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env,
                          cJSON **input, perr *e) {
  *input = NULL;
  tpl_opts o = {.escape = TPL_ESCAPE_NONE, .partial = env ? env->partial : NULL,
                .partial_ud = env ? env->partial_ud : NULL};
  cJSON *in = cJSON_Duplicate(cfg, 1), *cells = cJSON_CreateArray();
  if (!in || !cells) {
    cJSON_Delete(in);
    cJSON_Delete(cells);
    return perr_set(e, "out of memory");
  }
  const cJSON *t;
  int i = 0;
  cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cfg, "row")) {
    char *v = tpl_render_str(t->valuestring, ctx, &o, e);
    if (!v) {
      cJSON_Delete(in);
      cJSON_Delete(cells);
      return perr_prefix(e, "row[%d]", i);
    }
    cJSON_AddItemToArray(cells, cJSON_CreateString(v));
    free(v);
    i++;
  }
  if (cJSON_GetObjectItemCaseSensitive(cfg, "row")) {
    cJSON_ReplaceItemInObjectCaseSensitive(in, "row", cells);
  } else {
    cJSON_Delete(cells);
    cJSON *cols = cJSON_CreateObject();
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(cfg, "columns")) {
      char *v = tpl_render_str(t->valuestring, ctx, &o, e);
      if (!v) {
        cJSON_Delete(in);
        cJSON_Delete(cols);
        return perr_prefix(e, "columns.%s", t->string);
      }
      cJSON_AddStringToObject(cols, t->string, v);
      free(v);
    }
    cJSON_ReplaceItemInObjectCaseSensitive(in, "columns", cols);
  }
  *input = in;
  return 0;
}

/* ---- shared tokens ---- */

typedef struct auth_entry {
  char *key; /* credentials reference + token_uri */
  google_auth *auth;
  struct auth_entry *next;
} auth_entry;

typedef struct sheets_state {
  runtime *rt;
  auth_entry *auths;
  int closing; /* shutdown: token callbacks must not touch their calls */
} sheets_state;

static int sheets_init(runtime *rt, void **state, perr *e) {
  sheets_state *st = calloc(1, sizeof *st);
  if (!st) return perr_set(e, "out of memory");
  st->rt = rt;
  *state = st;
  return 0;
}

static void sheets_shutdown(void *state) {
  sheets_state *st = state;
  /* The engine has dropped its runs by now: a call still waiting for a
   * token hears "cancelled" from google_auth_free and must only go. */
  st->closing = 1;
  while (st->auths) {
    auth_entry *a = st->auths;
    st->auths = a->next;
    google_auth_free(a->auth);
    free(a->key);
    free(a);
  }
  free(st);
}

static google_auth *auth_for(sheets_state *st, const cJSON *in, perr *e) {
  const char *cred = google_credentials(st->rt->cfg, in, e);
  if (!cred) return NULL;
  char key[1200];
  const char *tok = google_endpoint(st->rt->cfg, in, "token_uri", "token_uri", NULL);
  snprintf(key, sizeof key, "%s\n%s", cred, tok ? tok : "");
  for (auth_entry *a = st->auths; a; a = a->next)
    if (strcmp(a->key, key) == 0) return a->auth;
  auth_entry *a = calloc(1, sizeof *a);
  if (!a || !(a->key = strdup(key))) {
    free(a);
    perr_set(e, "out of memory");
    return NULL;
  }
  a->auth = google_auth_new(st->rt->http, st->rt->loop, cred, SHEETS_SCOPE,
                            google_endpoint(st->rt->cfg, in, "token_uri", "token_uri", NULL),
                            NULL, e);
  if (!a->auth) {
    free(a->key);
    free(a);
    return NULL;
  }
  a->next = st->auths;
  st->auths = a;
  return a->auth;
}

/* ---- one call ---- */

typedef struct sheets_call {
  action_call *c;
  sheets_state *st;
  google_auth *auth;
  char *token;
  cJSON *headers; /* the header row, for columns: */
  char idkey[96];
  http_call *http;
  int checked;  /* the id column was read this attempt */
  int cancelled;
} sheets_call;

static void call_free(sheets_call *s) {
  s->c->priv = NULL;
  cJSON_Delete(s->headers);
  free(s->token);
  free(s);
}

static void finish(sheets_call *s, outcome_class cls, cJSON *out, const char *detail,
                   long retry_after) {
  action_call *c = s->c;
  call_free(s);
  action_done(c, cls, out, detail, retry_after);
}

/* Percent-encodes a path segment (a range like "Leads!A:F" keeps ! and :). */
static int add_segment(buf *b, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int plain = isalnum(*p) || strchr("-._~!:$&'()*+,;=@", *p);
    if (plain ? buf_addc(b, (char)*p) : buf_printf(b, "%%%02X", *p)) return -1;
  }
  return 0;
}

static char *column_letters(long n, char *out, size_t len) {
  char tmp[8];
  size_t k = 0;
  for (; n > 0 && k < sizeof tmp; n = (n - 1) / 26) tmp[k++] = (char)('A' + (n - 1) % 26);
  size_t i = 0;
  while (k > 0 && i + 1 < len) out[i++] = tmp[--k];
  out[i] = '\0';
  return out;
}

static const char *header_of(void *ud, const char *name) { return http_response_header(ud, name); }

/* Retry-After as milliseconds, capped at an hour; 0 when absent. */
static long retry_after(const http_response *r) {
  long ms = gpt_retry_after_ms(header_of, (void *)r, (long long)(clock_now_ms() / 1000));
  return ms < 0 ? 0 : ms > 3600000 ? 3600000 : ms;
}

/* The failure classes every Sheets call shares. 1 when it finished s. */
static int classify_failure(sheets_call *s, const http_response *r, const char *what) {
  char msg[900];
  if (r->transport_error == HTTP_CANCELLED) {
    finish(s, OUTCOME_CANCELLED, NULL, "cancelled", 0);
    return 1;
  }
  if (r->transport_error) {
    snprintf(msg, sizeof msg, "%s: %s", what, r->error);
    finish(s, OUTCOME_RETRY, NULL, msg, 0);
    return 1;
  }
  if (r->status >= 200 && r->status < 300) return 0;
  snprintf(msg, sizeof msg, "%s: HTTP %ld: %.600s", what, r->status, r->body ? r->body : "");
  if (r->status == 401) {
    google_auth_invalidate(s->auth); /* the next attempt gets a fresh token */
    finish(s, OUTCOME_RETRY, NULL, msg, 0);
  } else if (r->status == 429 || r->status >= 500 || r->status == 408) {
    finish(s, OUTCOME_RETRY, NULL, msg, retry_after(r));
  } else {
    finish(s, OUTCOME_FAIL, NULL, msg, 0);
  }
  return 1;
}

static void on_appended(void *ud, const http_response *r) {
  sheets_call *s = ud;
  s->http = NULL;
  if (classify_failure(s, r, "values.append")) return;
  cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
  const cJSON *upd = cJSON_GetObjectItemCaseSensitive(j, "updates");
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "updated_range", str(upd, "updatedRange") ? str(upd, "updatedRange") : "");
  const cJSON *rows = cJSON_GetObjectItemCaseSensitive(upd, "updatedRows");
  cJSON_AddNumberToObject(out, "updated_rows", cJSON_IsNumber(rows) ? rows->valuedouble : 0);
  cJSON_AddBoolToObject(out, "already_there", 0);
  cJSON_Delete(j);
  finish(s, OUTCOME_OK, out, NULL, 0);
}

static void append(sheets_call *s);

/* The row laid out under the sheet's headers (columns:), or the row as
 * given.  NULL with why set when a name is not a header. */
static cJSON *row_cells(const sheets_call *s, char *why, size_t why_len) {
  const cJSON *in = s->c->input;
  const cJSON *cols = cJSON_GetObjectItemCaseSensitive(in, "columns");
  if (!cols) return cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(in, "row"), 1);
  cJSON *row = cJSON_CreateArray();
  int n = cJSON_GetArraySize(s->headers);
  for (int i = 0; i < n; i++) {
    const cJSON *h = cJSON_GetArrayItem(s->headers, i);
    const char *v = cJSON_IsString(h) ? str(cols, h->valuestring) : NULL;
    cJSON_AddItemToArray(row, cJSON_CreateString(v ? v : ""));
  }
  const cJSON *c;
  cJSON_ArrayForEach(c, cols) {
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
      const cJSON *h = cJSON_GetArrayItem(s->headers, i);
      found = cJSON_IsString(h) && strcmp(h->valuestring, c->string) == 0;
    }
    if (!found) {
      snprintf(why, why_len, "columns: \"%.100s\" is not a header of %.200s (its header row has "
               "%d columns)", c->string, str(in, "range"), n);
      cJSON_Delete(row);
      return NULL;
    }
  }
  /* Trailing empty cells are not sent (Sheets drops them anyway). */
  while (cJSON_GetArraySize(row) > 0 &&
         !*cJSON_GetArrayItem(row, cJSON_GetArraySize(row) - 1)->valuestring)
    cJSON_DeleteItemFromArray(row, cJSON_GetArraySize(row) - 1);
  return row;
}

static void on_headers(void *ud, const http_response *r) {
  sheets_call *s = ud;
  s->http = NULL;
  if (classify_failure(s, r, "values.get (header row)")) return;
  cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
  s->headers = cJSON_DetachItemFromArray(cJSON_GetObjectItemCaseSensitive(j, "values"), 0);
  cJSON_Delete(j);
  if (!s->headers) s->headers = cJSON_CreateArray();
  append(s);
}

/* GET of an A1 range built from the table's sheet and `cells`. */
static void get_range(sheets_call *s, const char *cells, http_done_fn done) {
  const cJSON *in = s->c->input;
  const char *range = str(in, "range");
  const char *bang = strrchr(range, '!');
  char sheet[512] = "";
  if (bang) snprintf(sheet, sizeof sheet, "%.*s!", (int)(bang - range), range);
  else if (!strchr(range, ':')) snprintf(sheet, sizeof sheet, "%s!", range);
  char a1[600];
  snprintf(a1, sizeof a1, "%s%s", sheet, cells);
  buf url;
  buf_init(&url, 8192);
  const char *base =
      google_endpoint(s->c->rt->cfg, in, "base_url", "sheets_url", DEFAULT_BASE);
  int bad = buf_printf(&url, "%s/v4/spreadsheets/", base) ||
            add_segment(&url, str(in, "spreadsheet_id")) || buf_adds(&url, "/values/") ||
            add_segment(&url, a1) || buf_adds(&url, "?majorDimension=ROWS");
  char auth[2200];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
  const char *const headers[] = {auth, NULL};
  http_request rq = {.method = "GET", .url = url.data, .headers = headers,
                     .max_response = 64u << 20};
  perr e;
  int rc = bad ? perr_set(&e, "out of memory")
               : http_client_start(s->c->rt->http, &rq, done, s, &s->http, &e);
  memset(auth, 0, sizeof auth);
  buf_release(&url);
  if (rc) finish(s, OUTCOME_RETRY, NULL, e.msg, 0);
}

static void append(sheets_call *s) {
  const cJSON *in = s->c->input;
  if (cJSON_GetObjectItemCaseSensitive(in, "columns") && !s->headers)
    return get_range(s, "1:1", on_headers);
  char why[400];
  cJSON *laid = row_cells(s, why, sizeof why);
  if (!laid) return finish(s, OUTCOME_FAIL, NULL, why, 0);
  buf url;
  buf_init(&url, 8192);
  const char *base =
      google_endpoint(s->c->rt->cfg, in, "base_url", "sheets_url", DEFAULT_BASE);
  const char *vi = str(in, "value_input");
  int bad = buf_printf(&url, "%s/v4/spreadsheets/", base) ||
            add_segment(&url, str(in, "spreadsheet_id")) || buf_adds(&url, "/values/") ||
            add_segment(&url, str(in, "range")) ||
            buf_printf(&url, ":append?valueInputOption=%s&insertDataOption=INSERT_ROWS",
                       vi && strcmp(vi, "user_entered") == 0 ? "USER_ENTERED" : "RAW");
  cJSON *body = cJSON_CreateObject(), *values = cJSON_AddArrayToObject(body, "values");
  cJSON *row = laid;
  const cJSON *idc = cJSON_GetObjectItemCaseSensitive(in, "id_column");
  if (row && cJSON_IsNumber(idc)) {
    /* Pad to the id column, then the key there (cells after it stay). */
    int col = (int)idc->valuedouble;
    while (cJSON_GetArraySize(row) < col - 1) cJSON_AddItemToArray(row, cJSON_CreateString(""));
    if (cJSON_GetArraySize(row) >= col)
      cJSON_ReplaceItemInArray(row, col - 1, cJSON_CreateString(s->idkey));
    else
      cJSON_AddItemToArray(row, cJSON_CreateString(s->idkey));
  }
  if (row) cJSON_AddItemToArray(values, row);
  char *text = row ? cJSON_PrintUnformatted(body) : NULL;
  cJSON_Delete(body);
  char auth[2200];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
  const char *const headers[] = {auth, "Content-Type: application/json", NULL};
  http_request rq = {.method = "POST", .url = url.data, .headers = headers, .body = text,
                     .body_len = text ? strlen(text) : 0};
  perr e;
  if (bad || !text) {
    free(text);
    buf_release(&url);
    return finish(s, OUTCOME_RETRY, NULL, "out of memory", 0);
  }
  int rc = http_client_start(s->c->rt->http, &rq, on_appended, s, &s->http, &e);
  memset(auth, 0, sizeof auth);
  free(text);
  buf_release(&url);
  if (rc) finish(s, OUTCOME_RETRY, NULL, e.msg, 0);
}

static void on_checked(void *ud, const http_response *r) {
  sheets_call *s = ud;
  s->http = NULL;
  if (classify_failure(s, r, "values.get (id column)")) return;
  cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
  const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "values"), *row;
  int found = 0;
  cJSON_ArrayForEach(row, rows) {
    const cJSON *cell = cJSON_GetArrayItem(row, 0);
    if (cJSON_IsString(cell) && strcmp(cell->valuestring, s->idkey) == 0) found = 1;
  }
  cJSON_Delete(j);
  if (!found) return append(s);
  log_info("sheet row already there", "run=%lld step=%s key=%s", (long long)s->c->run_id,
           s->c->step_id, s->idkey);
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "updated_range", "");
  cJSON_AddNumberToObject(out, "updated_rows", 0);
  cJSON_AddBoolToObject(out, "already_there", 1);
  finish(s, OUTCOME_OK, out, NULL, 0);
}

/* Reads the id column of the table's sheet. */
static void check_id_column(sheets_call *s) {
  char col[8], cells[20];
  column_letters((long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s->c->input, "id_column")),
                 col, sizeof col);
  snprintf(cells, sizeof cells, "%s:%s", col, col);
  get_range(s, cells, on_checked);
}

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  sheets_call *s = ud;
  if (s->st->closing) { /* its action_call is gone with the engine's runs */
    free(s->token);
    free(s);
    return;
  }
  if (s->cancelled) return finish(s, OUTCOME_CANCELLED, NULL, "cancelled", 0);
  if (!token) return finish(s, permanent ? OUTCOME_FAIL : OUTCOME_RETRY, NULL, error, 0);
  if (!(s->token = strdup(token))) return finish(s, OUTCOME_RETRY, NULL, "out of memory", 0);
  /* Only a repeated attempt can find its own earlier row. */
  if (s->c->attempt > 1 && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s->c->input, "id_column")))
    return check_id_column(s);
  append(s);
}

static int sheets_start(action_call *c, perr *e) {
  sheets_call *s = calloc(1, sizeof *s);
  if (!s) return perr_set(e, "out of memory");
  s->c = c;
  s->st = c->kind_state;
  c->priv = s;
  snprintf(s->idkey, sizeof s->idkey, "promptd-%lld-%s", (long long)c->run_id, c->step_id);
  if (!(s->auth = auth_for(c->kind_state, c->input, e)) ||
      google_auth_token(s->auth, on_token, s, e)) {
    call_free(s);
    return -1;
  }
  return 0;
}

static void sheets_cancel(action_call *c) {
  sheets_call *s = c->priv;
  if (!s) return;
  s->cancelled = 1;
  if (s->http) http_call_cancel(s->http); /* its callback reports CANCELLED */
}

const action_kind action_sheets_append = {
    .name = "sheets_append",
    .summary = "appends one row to a Google Sheet (service account or OAuth user credentials)",
    .guarantee = "exactly-once with id_column (a repeated attempt looks for its key before "
                 "appending); at-least-once without",
    .fields = sheets_fields,
    .flags = ACTION_ACCOUNT,
    .validate = sheets_validate,
    .prepare = sheets_prepare,
    .start = sheets_start,
    .cancel = sheets_cancel,
    .init = sheets_init,
    .shutdown = sheets_shutdown,
};
