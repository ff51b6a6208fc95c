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
 * Connectors add their own sections (e.g. `providers:`) through the table
 * connectors_config_sections in connectors.c; a kind reads its section with
 * config_get_section().
 */
#ifndef PROMPTD_CONFIG_H
#define PROMPTD_CONFIG_H

#include <cjson/cJSON.h>

#include "core/engine.h"
#include "core/err.h"
#include "core/fields.h"

/* A top-level configuration section owned by a connector. */
struct runtime;
struct probe_ctx;
typedef struct config_section {
  const char *name;
  field_type type;            /* FT_OBJECT, or FT_OBJECT_MAP for named entries */
  const field_spec *fields;
  const char *help;
  /* Optional, for `promptd doctor --network` (core/probe.h): reaches what
   * the section (NULL when the file has none) configures, reporting to p.
   * -1: could not start (e set), holding nothing. */
  int (*probe)(struct runtime *rt, const cJSON *section, struct probe_ctx *p, perr *e);
} config_section;
extern const config_section connectors_config_sections[]; /* {NULL} ends it */

typedef struct config {
  engine_config engine;
  cJSON *sections;     /* connector sections by name, as checked; never NULL after load */
  char *recipes_dir;   /* or NULL */
  char *log_level;     /* or NULL */
  char *log_format;    /* or NULL */
  cJSON *doc;          /* the checked top level without the connector sections
                        * (engine, log, recipes_dir, ...): what a reload compares */
} config;

void config_init(config *c);
void config_release(config *c);
/* path NULL: defaults only. Applies log settings as it loads them. */
int config_load(config *c, const char *path, perr *e);
/* config_load without touching the log settings (a reload checks the whole
 * file before anything of it applies); config_apply_log applies them. */
int config_parse(config *c, const char *path, perr *e);
void config_apply_log(const config *c);
/* config_load without touching the log settings (a reload checks the whole
 * file before anything of it applies); config_apply_log applies them. */
int config_parse(config *c, const char *path, perr *e);
void config_apply_log(const config *c);
/* A connector's section (checked JSON), or NULL when the file has none. */
const cJSON *config_get_section(const config *c, const char *name);

#endif
