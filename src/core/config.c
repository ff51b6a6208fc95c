#include "core/config.h"

#include <stdlib.h>
#include <string.h>

#include "core/fields.h"
#include "core/log.h"
#include "core/retention.h"
#include "core/yaml_doc.h"

static const field_spec retry_fields[] = {
    {"max_attempts", FT_INT, 0, "tries of one step before the run fails (default 5)", 1, 100, NULL, NULL},
    {"base_ms", FT_INT, 0, "first backoff ceiling in ms, doubled each try (default 1000)", 1, 3600000, NULL, NULL},
    {"cap_ms", FT_INT, 0, "largest backoff in ms (default 300000)", 1, 86400000, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

static const field_spec engine_fields[] = {
    {"concurrency", FT_INT, 0, "runs in flight at once (default 16)", 1, 10000, NULL, NULL},
    {"max_event_bytes", FT_INT, 0, "largest event accepted, in bytes (default 1 MiB)", 64, 268435456, NULL, NULL},
    {"shutdown_timeout_s", FT_NUMBER, 0, "seconds in-flight steps get at shutdown (default 30)", 0, 3600, NULL, NULL},
    {"retry", FT_OBJECT, 0, "retry policy for transient step errors", 0, 0, NULL, retry_fields},
    {"commit_each", FT_BOOL, 0, "commit every intake on its own instead of once per loop "
     "iteration (default false; slower, for comparison)", 0, 0, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"logfmt", "json", NULL};

static const field_spec log_fields[] = {
    {"level", FT_STRING, 0, "least severe level logged (default info)", 0, 0, log_levels, NULL},
    {"format", FT_STRING, 0, "line format (default logfmt)", 0, 0, log_formats, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

static const field_spec core_fields[] = {
    {"engine", FT_OBJECT, 0, "scheduler limits and retry policy", 0, 0, NULL, engine_fields},
    {"log", FT_OBJECT, 0, "log level and format", 0, 0, NULL, log_fields},
    {"recipes_dir", FT_STRING, 0, "directory of recipes imported when serve starts", 0, 0, NULL, NULL},
    {"retention", FT_OBJECT, 0, "how long finished runs and their events are kept (core/retention.h)",
     0, 0, NULL, retention_fields},
};
#define CORE_FIELDS (sizeof core_fields / sizeof core_fields[0])
#define MAX_SECTIONS 16

/* The whole top-level table: the core's fields, then each connector's
 * section as a nested mapping. */
static void build_table(field_spec *tbl) {
  size_t n = 0;
  for (size_t i = 0; i < CORE_FIELDS; i++) tbl[n++] = core_fields[i];
  for (size_t i = 0; connectors_config_sections[i].name && n < CORE_FIELDS + MAX_SECTIONS; i++) {
    const config_section *cs = &connectors_config_sections[i];
    tbl[n++] = (field_spec){cs->name, cs->type, 0, cs->help, 0, 0, NULL, cs->fields};
  }
  tbl[n] = (field_spec){NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL};
}

const cJSON *config_get_section(const config *c, const char *name) {
  return c->sections ? cJSON_GetObjectItemCaseSensitive(c->sections, name) : NULL;
}

void config_init(config *c) {
  memset(c, 0, sizeof *c);
  engine_config_defaults(&c->engine);
}

void config_release(config *c) {
  cJSON_Delete(c->sections);
  cJSON_Delete(c->doc);
  free(c->recipes_dir);
  free(c->log_level);
  free(c->log_format);
  config_init(c);
}

static char *dup_string(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static void take_int(const cJSON *obj, const char *key, long *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (cJSON_IsNumber(v)) *out = (long)v->valuedouble;
}

void config_apply_log(const config *c) {
  log_level lvl;
  if (c->log_level && !log_level_parse(c->log_level, &lvl)) log_set_level(lvl);
  if (c->log_format) log_set_json(strcmp(c->log_format, "json") == 0);
}

int config_load(config *c, const char *path, perr *e) {
  if (config_parse(c, path, e)) return -1;
  config_apply_log(c);
  return 0;
}

int config_parse(config *c, const char *path, perr *e) {
  if (!c->sections && !(c->sections = cJSON_CreateObject())) return perr_set(e, "out of memory");
  if (!path) return 0;
  ynode *root = NULL;
  if (ydoc_load_file(path, &root, e)) return -1;
  fields_ctx cx = {path, NULL, NULL};
  cJSON *j = NULL;
  int rc = -1;
  if (root->kind != YN_MAP) {
    perr_set(e, "%s:%d:%d: the configuration must be a mapping", path, root->line, root->col);
    goto out;
  }
  field_spec tbl[CORE_FIELDS + MAX_SECTIONS + 1];
  build_table(tbl);
  if (fields_check(tbl, root, &cx, "config", &j, e)) goto out;
  for (size_t i = 0; connectors_config_sections[i].name; i++) {
    const char *name = connectors_config_sections[i].name;
    cJSON *sec = cJSON_DetachItemFromObjectCaseSensitive(j, name);
    if (sec) cJSON_AddItemToObject(c->sections, name, sec);
  }
  /* Kept with the sections for the engine's pruning driver; durations are
   * checked here so a bad one fails at load, like any other field. */
  cJSON *ret = cJSON_DetachItemFromObjectCaseSensitive(j, "retention");
  if (ret) cJSON_AddItemToObject(c->sections, "retention", ret);
  retention_config ret_cfg;
  if (retention_config_parse(ret, &ret_cfg, e)) {
    perr_prefix(e, "%s", path);
    goto out;
  }
  const cJSON *eng = cJSON_GetObjectItemCaseSensitive(j, "engine");
  long v;
  v = c->engine.concurrency, take_int(eng, "concurrency", &v), c->engine.concurrency = (int)v;
  v = (long)c->engine.max_event_bytes, take_int(eng, "max_event_bytes", &v),
  c->engine.max_event_bytes = (size_t)v;
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(eng, "shutdown_timeout_s");
  if (cJSON_IsNumber(st)) c->engine.shutdown_timeout = st->valuedouble;
  c->engine.commit_each = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(eng, "commit_each"));
  const cJSON *retry = cJSON_GetObjectItemCaseSensitive(eng, "retry");
  v = c->engine.retry.max_attempts, take_int(retry, "max_attempts", &v),
  c->engine.retry.max_attempts = (int)v;
  take_int(retry, "base_ms", &c->engine.retry.base_ms);
  take_int(retry, "cap_ms", &c->engine.retry.cap_ms);
  if (c->engine.retry.cap_ms < c->engine.retry.base_ms) {
    perr_set(e, "%s: engine.retry.cap_ms (%ld) is smaller than base_ms (%ld)", path,
             c->engine.retry.cap_ms, c->engine.retry.base_ms);
    goto out;
  }
  const cJSON *lg = cJSON_GetObjectItemCaseSensitive(j, "log");
  c->log_level = dup_string(lg, "level");
  c->log_format = dup_string(lg, "format");
  c->recipes_dir = dup_string(j, "recipes_dir");
  cJSON_Delete(c->doc);
  c->doc = j;
  j = NULL;
  rc = 0;
out:
  cJSON_Delete(j);
  ynode_free(root);
  return rc;
}
