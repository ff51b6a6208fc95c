/*
 * intake: payload checks, dedupe, and recipe matching for one event.  The
 * caller's commit is the acknowledgement (see intake.h for why there is no
 * savepoint per event).
 */
#include "core/intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cond.h"
#include "core/utf8.h"

int intake_check_payload(const char *payload, size_t len, size_t max_bytes, perr *e) {
  if (!max_bytes) max_bytes = INTAKE_DEFAULT_MAX_EVENT_BYTES;
  if (len > max_bytes)
    return perr_set(e, "event is %zu bytes, over the limit of %zu bytes", len, max_bytes);
  size_t bad;
  if (!utf8_valid(payload, len, &bad))
    return perr_set(e, "event is not valid UTF-8 (first bad byte at offset %zu)", bad);
  if (memchr(payload, '\0', len))
    return perr_set(e, "event holds a NUL byte");
  return 0;
}

static cJSON *parse_object(const char *payload, size_t len, perr *e) {
  const char *end = NULL;
  cJSON *obj = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
  if (!obj) {
    size_t at = end && end >= payload ? (size_t)(end - payload) : 0;
    /* cJSON stops at CJSON_NESTING_LIMIT levels; say so rather than
     * calling well-formed but deep JSON invalid. */
    size_t depth = 0, deepest = 0;
    for (size_t i = 0; i < at && i < len; i++) {
      if (payload[i] == '[' || payload[i] == '{') deepest = ++depth > deepest ? depth : deepest;
      if (payload[i] == ']' || payload[i] == '}') depth -= depth > 0;
    }
    if (deepest >= CJSON_NESTING_LIMIT)
      perr_set(e, "event is nested more than %d levels deep", CJSON_NESTING_LIMIT);
    else
      perr_set(e, "event is not valid JSON (near byte %zu)", at);
    return NULL;
  }
  while (end && (size_t)(end - payload) < len && strchr(" \t\r\n", *end)) end++;
  if (end && (size_t)(end - payload) < len) {
    cJSON_Delete(obj);
    perr_set(e, "event has text after its JSON value (at byte %zu)", (size_t)(end - payload));
    return NULL;
  }
  if (!cJSON_IsObject(obj)) {
    cJSON_Delete(obj);
    perr_set(e, "event must be a JSON object");
    return NULL;
  }
  return obj;
}

static int intake_store(store *s, const recipe_set *rs, const char *source,
                        const char *dedupe_key, const cJSON *event, const char *payload,
                        size_t len, int64_t now, intake_result *r, perr *e);

int intake_event(store *s, const recipe_set *rs, const char *source, const char *dedupe_key,
                 const char *payload, size_t len, size_t max_bytes, int64_t now,
                 intake_result *r, perr *e) {
  memset(r, 0, sizeof *r);
  if (!source || !*source) return perr_set(e, "event source is empty");
  if (intake_check_payload(payload, len, max_bytes, e)) return INTAKE_REFUSED;
  cJSON *event = parse_object(payload, len, e);
  if (!event) return INTAKE_REFUSED;
  int rc = intake_store(s, rs, source, dedupe_key, event, payload, len, now, r, e);
  cJSON_Delete(event);
  return rc;
}

int intake_event_parsed(store *s, const recipe_set *rs, const char *source,
                        const char *dedupe_key, const cJSON *event, const char *payload,
                        size_t len, size_t max_bytes, int64_t now, intake_result *r, perr *e) {
  memset(r, 0, sizeof *r);
  if (!source || !*source) return perr_set(e, "event source is empty");
  if (!max_bytes) max_bytes = INTAKE_DEFAULT_MAX_EVENT_BYTES;
  if (len > max_bytes)
    return perr_set(e, "event is %zu bytes, over the limit of %zu bytes", len, max_bytes);
  if (!cJSON_IsObject(event)) return perr_set(e, "event must be a JSON object");
  return intake_store(s, rs, source, dedupe_key, event, payload, len, now, r, e);
}

static int intake_store(store *s, const recipe_set *rs, const char *source,
                        const char *dedupe_key, const cJSON *event, const char *payload,
                        size_t len, int64_t now, intake_result *r, perr *e) {
  int rc = INTAKE_REFUSED;
  /* Filters see the same shape as templates: { event: ... }. */
  cJSON *ctx = cJSON_CreateObject();
  if (!ctx) {
    perr_set(e, "out of memory");
    goto out;
  }
  /* Match before writing, so nothing after the first write can refuse. */
  cJSON_AddItemReferenceToObject(ctx, "event", (cJSON *)event);
  size_t n = recipe_set_count(rs), nmatch = 0;
  const recipe **match = n ? malloc(n * sizeof *match) : NULL;
  if (n && !match) {
    perr_set(e, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    const recipe *rc_i = recipe_set_at(rs, i);
    if (strcmp(rc_i->source, source) == 0 && (!rc_i->when || cond_eval(rc_i->when, ctx)))
      match[nmatch++] = rc_i;
  }
  rc = INTAKE_STORE_FAILED;
  if (store_event_insert(s, source, dedupe_key, payload, len, now, &r->event_id, &r->created, e))
    goto out_match;
  for (size_t i = 0; r->created && i < nmatch; i++) {
    int64_t run_id;
    if (store_run_insert(s, r->event_id, match[i]->name, match[i]->version, now, &run_id, e))
      goto out_match;
    r->runs++;
  }
  rc = 0;
out_match:
  free(match);
out:
  cJSON_Delete(ctx);
  if (rc) memset(r, 0, sizeof *r);
  return rc;
}
