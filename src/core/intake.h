/*
 * intake: the one way an event enters promptd, for every trigger kind and
 * for `promptd emit`.
 *
 * intake_event() checks the payload (a JSON object, valid UTF-8, within
 * the size cap), stores the event under (source, dedupe_key) and one run
 * per enabled recipe whose trigger source and `when:` filter match, inside
 * a savepoint of the caller's open transaction: all of it or none.  A
 * dedupe key already stored for the source creates nothing and returns
 * the existing event id.  The caller commits (the daemon groups all intake
 * of one loop iteration into one commit) and acknowledges only then.
 */
#ifndef PROMPTD_INTAKE_H
#define PROMPTD_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/recipe_set.h"
#include "core/store.h"

#define INTAKE_DEFAULT_MAX_EVENT_BYTES (1024 * 1024)

typedef struct intake_result {
  int64_t event_id;
  int created;   /* 0: the dedupe key was already stored; nothing was added */
  int runs;      /* runs created */
} intake_result;

/* dedupe_key NULL: a fresh unique key (every call is a new event).
 * max_bytes 0: INTAKE_DEFAULT_MAX_EVENT_BYTES.  Requires an open
 * transaction on s. */
int intake_event(store *s, const recipe_set *rs, const char *source, const char *dedupe_key,
                 const char *payload, size_t len, size_t max_bytes, int64_t now,
                 intake_result *r, perr *e);

/* Payload checks alone (size, UTF-8, JSON object), for callers that want to
 * refuse early. */
int intake_check_payload(const char *payload, size_t len, size_t max_bytes, perr *e);

#endif
