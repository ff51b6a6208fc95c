/*
 * intake: payload checks, dedupe, and recipe matching for one event, inside
 * a savepoint of the caller's transaction so an event is stored with all
 * its runs or not at all.  The caller's commit is the acknowledgement.
 */
#include "core/intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

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

/* A key no other event can have: 128 random bits. */
static int fresh_key(char out[40], perr *e) {
  unsigned char r[16];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
    return perr_set(e, "cannot read random bytes for an event key");
  for (size_t i = 0; i < sizeof r; i++) snprintf(out + 2 * i, 3, "%02x", r[i]);
  return 0;
}

static cJSON *parse_object(const char *payload, size_t len, perr *e) {
  const char *end = NULL;
  cJSON *obj = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
  if (!obj) {
    size_t at = end && end >= payload ? (size_t)(end - payload) : 0;
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

int intake_event(store *s, const recipe_set *rs, const char *source, const char *dedupe_key,
                 const char *payload, size_t len, size_t max_bytes, int64_t now,
                 intake_result *r, perr *e) {
  memset(r, 0, sizeof *r);
  if (!source || !*source) return perr_set(e, "event source is empty");
  if (intake_check_payload(payload, len, max_bytes, e)) return -1;
  cJSON *event = parse_object(payload, len, e);
  if (!event) return -1;
  char key[40];
  if (!dedupe_key) {
    if (fresh_key(key, e)) goto fail_nosp;
    dedupe_key = key;
  }
  /* Filters see the same shape as templates: { event: ... }. */
  cJSON *ctx = cJSON_CreateObject();
  if (!ctx) {
    perr_set(e, "out of memory");
    goto fail_nosp;
  }
  cJSON_AddItemReferenceToObject(ctx, "event", event);
  if (store_savepoint(s, e)) goto fail_ctx;
  if (store_event_insert(s, source, dedupe_key, payload, len, now, &r->event_id, &r->created, e))
    goto fail;
  if (r->created) {
    for (size_t i = 0; i < recipe_set_count(rs); i++) {
      const recipe *rc = recipe_set_at(rs, i);
      if (strcmp(rc->source, source) != 0) continue;
      if (rc->when && !cond_eval(rc->when, ctx)) continue;
      int64_t run_id;
      if (store_run_insert(s, r->event_id, rc->name, rc->version, now, &run_id, e)) goto fail;
      r->runs++;
    }
  }
  if (store_savepoint_release(s, e)) goto fail;
  cJSON_Delete(ctx);
  cJSON_Delete(event);
  return 0;
fail:
  store_savepoint_rollback(s);
fail_ctx:
  cJSON_Delete(ctx);
fail_nosp:
  cJSON_Delete(event);
  memset(r, 0, sizeof *r);
  return -1;
}
