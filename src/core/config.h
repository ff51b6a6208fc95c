/*
 * config: the YAML file given with --config.  Sections, each checked
 * against a field table like recipes are (unknown keys are errors):
 *
 *   engine:
 *     concurrency: 16            # runs in flight at once
 *     max_event_bytes: 1048576   # larger events are refused
 *     shutdown_timeout_s: 30     # how long in-flight steps get at SIGTERM
 *     retry: { max_attempts: 5, base_ms: 1000, cap_ms: 300000 }
 *   log:
 *     level: info                # debug | info | warn | error
 *     format: logfmt             # logfmt | json
 *   recipes_dir: /etc/promptd/recipes   # imported by `serve` at start
 *
 * Later connector sections (providers, http, ...) join this table.
 */
#ifndef PROMPTD_CONFIG_H
#define PROMPTD_CONFIG_H

#include "core/engine.h"
#include "core/err.h"

typedef struct config {
  engine_config engine;
  char *recipes_dir;   /* or NULL */
  char *log_level;     /* or NULL */
  char *log_format;    /* or NULL */
} config;

void config_init(config *c);
void config_release(config *c);
/* path NULL: defaults only. Applies log settings as it loads them. */
int config_load(config *c, const char *path, perr *e);

#endif
