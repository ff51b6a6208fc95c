/*
 * slack_classify: the verdict on one finished exchange with Slack (the
 * table is in slack.h).  Pure: no I/O, no clock.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/slack.h"

/* Web API errors that say "later", not "never".  ratelimited is what
 * chat.postMessage sends with its 429; rate_limited is the older spelling
 * some methods still use.  fatal_error is missing on purpose: Slack says
 * part of the operation may have happened, and posting again would more
 * likely duplicate than repair. */
static const char *const api_transient[] = {
    "ratelimited",       "rate_limited", "internal_error", "service_unavailable", "request_timeout",
    "team_added_to_org", NULL,
};

long slack_retry_after_ms(const char *value) {
  if (!value) return -1;
  while (*value == ' ' || *value == '\t') value++;
  if (!isdigit((unsigned char)*value)) return -1;
  char *end;
  double s = strtod(value, &end);
  while (*end == ' ' || *end == '\t') end++;
  if (*end || !isfinite(s) || s < 0) return -1;
  double ms = ceil(s * 1000.0);
  return ms > (double)SLACK_MAX_RETRY_AFTER_MS ? SLACK_MAX_RETRY_AFTER_MS : (long)ms;
}

/* The body as one of Slack's error strings (lower-case words joined by
 * '_'), into out; 0 when it is something else, such as an HTML page. */
static int error_word(const char *body, size_t len, char *out, size_t size) {
  while (len && isspace((unsigned char)*body)) body++, len--;
  while (len && isspace((unsigned char)body[len - 1])) len--;
  if (!len || len >= size || len > 100) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = body[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
  }
  memcpy(out, body, len);
  out[len] = '\0';
  return 1;
}

static int transient_status(long status) { return status == 408 || status == 429 || status >= 500; }

static void verdict_init(slack_verdict *v, const char *retry_after) {
  memset(v, 0, sizeof *v);
  v->retry_after_ms = slack_retry_after_ms(retry_after);
}

void slack_classify_webhook(long status, const char *retry_after, const char *body, size_t len,
                            slack_verdict *v) {
  verdict_init(v, retry_after);
  if (status >= 200 && status < 300) {
    v->cls = OUTCOME_OK;
    v->retry_after_ms = -1;
    return;
  }
  v->cls = transient_status(status) ? OUTCOME_RETRY : OUTCOME_FAIL;
  char word[128];
  if (error_word(body, len, word, sizeof word))
    snprintf(v->detail, sizeof v->detail, "%s (HTTP %ld)", word, status);
  else if (status == 429)
    snprintf(v->detail, sizeof v->detail, "rate limited (HTTP 429)");
  else
    snprintf(v->detail, sizeof v->detail, "HTTP %ld", status);
  if (v->cls != OUTCOME_RETRY) v->retry_after_ms = -1;
}

static const char *str_item(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Slack's own explanation when it gives one: response_metadata.messages
 * for invalid_blocks and friends, needed/provided for missing_scope. */
static void add_context(char *detail, size_t size, const cJSON *root) {
  size_t used = strlen(detail);
  const char *needed = str_item(root, "needed");
  if (needed) {
    snprintf(detail + used, size - used, " (needed: %s)", needed);
    return;
  }
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(root, "response_metadata"), "messages");
  const cJSON *first = cJSON_GetArrayItem(msgs, 0);
  if (cJSON_IsString(first)) snprintf(detail + used, size - used, ": %s", first->valuestring);
}

void slack_classify_api(long status, const char *retry_after, const char *body, size_t len,
                        slack_verdict *v) {
  verdict_init(v, retry_after);
  cJSON *root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
  const cJSON *ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
  const char *err = str_item(root, "error");
  if (status >= 200 && status < 300) {
    if (cJSON_IsTrue(ok)) {
      v->cls = OUTCOME_OK;
      v->retry_after_ms = -1;
      snprintf(v->ts, sizeof v->ts, "%s", str_item(root, "ts") ? str_item(root, "ts") : "");
      snprintf(v->channel, sizeof v->channel, "%s",
               str_item(root, "channel") ? str_item(root, "channel") : "");
    } else if (cJSON_IsFalse(ok) && err) {
      v->cls = OUTCOME_FAIL;
      for (size_t i = 0; api_transient[i]; i++)
        if (strcmp(err, api_transient[i]) == 0) v->cls = OUTCOME_RETRY;
      snprintf(v->detail, sizeof v->detail, "%s", err);
      add_context(v->detail, sizeof v->detail, root);
    } else {
      /* Not the API speaking (a captive portal, a proxy): worth another try. */
      v->cls = OUTCOME_RETRY;
      snprintf(v->detail, sizeof v->detail, "malformed response (HTTP %ld, no \"ok\" field)",
               status);
    }
  } else {
    v->cls = transient_status(status) ? OUTCOME_RETRY : OUTCOME_FAIL;
    if (err)
      snprintf(v->detail, sizeof v->detail, "%s (HTTP %ld)", err, status);
    else if (status == 429)
      snprintf(v->detail, sizeof v->detail, "ratelimited (HTTP 429)");
    else
      snprintf(v->detail, sizeof v->detail, "HTTP %ld", status);
  }
  if (v->cls != OUTCOME_RETRY) v->retry_after_ms = -1;
  cJSON_Delete(root);
}
