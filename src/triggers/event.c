/*
 * trigger `event`: the generic, passive trigger.
 *
 *   trigger: { event: { source: crash } }
 *
 * It opens no socket and polls nothing: events reach it through intake,
 * from `promptd emit --source NAME` or any local program using the same
 * path.  The recipe matches every event ingested under that source name.
 * The name is restricted to a small alphabet so it can be typed on a
 * command line, shown in logs unquoted and used as a metric label.
 */
#include <stdlib.h>
#include <string.h>

#include "core/connector.h"

#define SOURCE_MAX 64

static const field_spec event_fields[] = {
    {.name = "source",
     .type = FT_STRING,
     .flags = FIELD_REQUIRED,
     .help = "event source to match, as given to `promptd emit --source NAME` "
             "(1-64 chars of A-Z a-z 0-9 . _ : / -)"},
    {.name = NULL},
};

static int source_char_ok(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
}

static int event_validate(const cJSON *cfg, perr *e) {
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, "source");
  if (!cJSON_IsString(s)) return perr_set(e, "source: expected a string");
  size_t n = strlen(s->valuestring);
  if (n == 0 || n > SOURCE_MAX)
    return perr_set(e, "source: expected 1 to %d characters, got %zu", SOURCE_MAX, n);
  for (size_t i = 0; i < n; i++)
    if (!source_char_ok(s->valuestring[i]))
      return perr_set(e, "source: character %zu is not one of A-Z a-z 0-9 . _ : / -", i + 1);
  return 0;
}

static char *event_source(const cJSON *cfg) {
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, "source");
  return cJSON_IsString(s) ? strdup(s->valuestring) : NULL;
}

const trigger_kind trigger_event = {
    .name = "event",
    .summary = "events injected with `promptd emit --source NAME` or by a local program",
    .fields = event_fields,
    .flags = TRIGGER_PASSIVE,
    .validate = event_validate,
    .source = event_source,
};
