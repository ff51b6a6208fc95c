/*
 * gpt/reply: parsing a chat.completions response (see reply.h).
 *
 * What counts as a reply: a JSON object with choices[0].message.  A body
 * carrying "error" instead (some compatible servers answer 200 with one) is
 * refused with the server's words.  message.content is normally a string;
 * a list of {"type": "text", "text": ...} parts (sent by a few compatible
 * servers) is joined.  Usage is optional: streaming-style and some local
 * servers omit it, and a missing count must not fail a paid-for answer.
 */
#include "gpt/reply.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

void gpt_reply_release(gpt_reply *r) {
  if (!r) return;
  free(r->id);
  free(r->model);
  free(r->finish_reason);
  free(r->content);
  free(r->refusal);
  free(r->system_fingerprint);
  memset(r, 0, sizeof *r);
}

/* Copies a string member; 0 when absent or null, -1 when out of memory. */
static int take_str(const cJSON *o, const char *key, char **dst) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsString(v)) return 0;
  *dst = mem_dup_str(v->valuestring, strlen(v->valuestring));
  return *dst ? 0 : -1;
}

static long long count(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  /* Bounds keep the double-to-integer conversion defined. */
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e15) return 0;
  return (long long)v->valuedouble;
}

static int take_content(const cJSON *msg, char **dst, perr *e) {
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(msg, "content");
  if (cJSON_IsString(c)) {
    *dst = mem_dup_str(c->valuestring, strlen(c->valuestring));
    return *dst ? 0 : perr_set(e, "out of memory");
  }
  if (!cJSON_IsArray(c)) return 0; /* null or absent: a refusal or a tool call */
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  const cJSON *part;
  cJSON_ArrayForEach(part, c) {
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
    if (cJSON_IsString(text) && buf_adds(&b, text->valuestring) != 0)
      return perr_set(e, "out of memory");
  }
  *dst = buf_detach(&b, NULL);
  return *dst ? 0 : perr_set(e, "out of memory");
}

static int parse_into(const cJSON *root, gpt_reply *out, perr *e) {
  if (!cJSON_IsObject(root)) return perr_set(e, "response is not a JSON object");
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (err && !cJSON_IsNull(err)) {
    const cJSON *m = cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "message") : err;
    return perr_set(e, "response is an error: %s",
                    cJSON_IsString(m) ? m->valuestring : "(no message)");
  }
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) == 0)
    return perr_set(e, "response has no choices");
  const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
  if (!cJSON_IsObject(msg)) return perr_set(e, "response has no choices[0].message");

  if (take_str(root, "id", &out->id) || take_str(root, "model", &out->model) ||
      take_str(root, "system_fingerprint", &out->system_fingerprint) ||
      take_str(c0, "finish_reason", &out->finish_reason) ||
      take_str(msg, "refusal", &out->refusal))
    return perr_set(e, "out of memory");
  if (take_content(msg, &out->content, e)) return -1;

  const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
  if (cJSON_IsObject(usage)) {
    out->has_usage = 1;
    out->prompt_tokens = count(usage, "prompt_tokens");
    out->completion_tokens = count(usage, "completion_tokens");
    out->cached_tokens =
        count(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details"), "cached_tokens");
  }
  return 0;
}

/* Does the document stop with a string or a container still open?  That is
 * what a cut connection or a capped buffer leaves, and saying "truncated"
 * points at the transport rather than at the server's JSON. */
static int looks_truncated(const char *s, size_t len) {
  int depth = 0, in_str = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return in_str || depth > 0;
}

int gpt_reply_parse(const char *body, size_t len, gpt_reply *out, perr *e) {
  memset(out, 0, sizeof *out);
  if (!body || len == 0) return perr_set(e, "empty response body");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
  if (!root) {
    size_t at = end && end >= body ? (size_t)(end - body) : 0;
    if (at >= len || looks_truncated(body, len))
      return perr_set(e, "response JSON is truncated: it ends after %zu bytes mid-document", len);
    return perr_set(e, "response is not valid JSON (error at byte %zu of %zu)", at, len);
  }
  int rc = parse_into(root, out, e);
  cJSON_Delete(root);
  if (rc) gpt_reply_release(out);
  return rc;
}
