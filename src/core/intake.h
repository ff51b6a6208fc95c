/*
 * intake: the one way an event enters promptd, for every trigger kind and
 * for `promptd emit`.
 *
 * intake_event() checks the payload (a JSON object, valid UTF-8, within
 * the size cap), then stores the event under (source, dedupe_key) and one
 * run per enabled recipe whose trigger source and `when:` filter match, in
 * the caller's open transaction.  A dedupe key already stored for the
 * source creates nothing and returns the existing event id.  The caller
 * commits (the daemon groups all intake of one loop iteration into one
 * commit) and acknowledges only then.
 *
 * All or nothing without a savepoint per event: every check that can
 * refuse an event runs before the first write, so the only failures after
 * it are the store's own (disk full, I/O error), after which SQLite advises
 * rolling back the whole transaction anyway.  intake_event says which kind
 * of failure it was (INTAKE_REFUSED: nothing written, the transaction is
 * intact; INTAKE_STORE_FAILED: roll back).  A savepoint per event cost a
 * quarter of intake throughput in tests/bench/intake_bench.
 */
#ifndef PROMPTD_INTAKE_H
#define PROMPTD_INTAKE_H

#include <cjson/cJSON.h>
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

enum { INTAKE_REFUSED = -1, INTAKE_STORE_FAILED = -2 };

/* dedupe_key NULL: no key, every call is a new event (stored as NULL: a
 * random key would land each insert on a random page of the unique index).
 * max_bytes 0: INTAKE_DEFAULT_MAX_EVENT_BYTES.  Requires an open
 * transaction on s.  Returns 0, INTAKE_REFUSED or INTAKE_STORE_FAILED. */
int intake_event(store *s, const recipe_set *rs, const char *source, const char *dedupe_key,
                 const char *payload, size_t len, size_t max_bytes, int64_t now,
                 intake_result *r, perr *e);

/* The same for a caller that built the event itself: `event` is the parse
 * of payload (a JSON object whose text promptd printed, so valid UTF-8
 * without NUL), which spares the second parse.  Only the size is checked. */
int intake_event_parsed(store *s, const recipe_set *rs, const char *source,
                        const char *dedupe_key, const cJSON *event, const char *payload,
                        size_t len, size_t max_bytes, int64_t now, intake_result *r, perr *e);
/* Payload checks alone (size, UTF-8, JSON object), for callers that want to
 * refuse early. */
int intake_check_payload(const char *payload, size_t len, size_t max_bytes, perr *e);

#endif
