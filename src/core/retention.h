/*
 * retention: how long finished runs and their events are kept, and the
 * engine's pruning driver (engine_retention.c; the rules themselves are in
 * store_prune.c).
 *
 *   retention:
 *     succeeded: 7d    # succeeded runs, their steps and events; also events
 *                      # no recipe matched.  Also the deduplication window:
 *                      # a pruned event's key is accepted again.
 *     failed: 30d      # failed runs (and their events)
 *     interval: 60s    # time between pruning passes
 *     batch: 500       # rows per short write transaction
 *
 * Durations are a whole number and a unit s, m, h or d; `off` (or 0) keeps
 * those rows forever.  Queued, running, retrying and budget runs are never
 * pruned.  Both ages off: no pruning at all.
 */
#ifndef PROMPTD_RETENTION_H
#define PROMPTD_RETENTION_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/err.h"
#include "core/fields.h"

typedef struct retention_config {
  int64_t succeeded_ms;  /* 0: kept forever */
  int64_t failed_ms;     /* 0: kept forever */
  int64_t interval_ms;
  int batch;
} retention_config;

/* The `retention:` section's fields, for config.c's table. */
extern const field_spec retention_fields[];

void retention_config_defaults(retention_config *c);
/* Reads the checked section (NULL: defaults) into c; e names the field
 * whose value is not a duration. */
int retention_config_parse(const cJSON *section, retention_config *c, perr *e);
/* "90s", "15m", "12h", "7d" -> ms; "off" and "0" -> 0; -1 when malformed. */
int64_t retention_parse_duration(const char *s);

struct engine;
/* Arms the pruning timer when retention is on (the first pass a few
 * seconds after start). */
int engine_retention_start(struct engine *en, perr *e);
void engine_retention_stop(struct engine *en);
void engine_retention_free(struct engine *en);

#endif
