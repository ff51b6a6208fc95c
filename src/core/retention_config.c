/* retention_config: the `retention:` section (see retention.h). */
#include <stdlib.h>
#include <string.h>

#include "core/retention.h"

#define DAY_MS (86400LL * 1000)
#define MAX_AGE_MS (3660 * DAY_MS) /* ten years: beyond, say off */

const field_spec retention_fields[] = {
    {"succeeded", FT_STRING, 0,
     "keep succeeded runs, their events and events no recipe matched this long; also the "
     "deduplication window (default 7d; a number and s, m, h or d; off: forever)",
     0, 0, NULL, NULL},
    {"failed", FT_STRING, 0, "keep failed runs and their events this long (default 30d; off: forever)",
     0, 0, NULL, NULL},
    {"interval", FT_STRING, 0, "time between pruning passes (default 60s)", 0, 0, NULL, NULL},
    {"batch", FT_INT, 0, "rows deleted per short write transaction (default 500)", 1, 100000, NULL,
     NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

void retention_config_defaults(retention_config *c) {
  c->succeeded_ms = 7 * DAY_MS;
  c->failed_ms = 30 * DAY_MS;
  c->interval_ms = 60 * 1000;
  c->batch = 500;
}

int64_t retention_parse_duration(const char *s) {
  if (!s) return -1;
  if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) return 0;
  char *end;
  long long n = strtoll(s, &end, 10);
  /* strtoll would take a sign or leading blanks. */
  if (s[0] < '0' || s[0] > '9' || n <= 0 || end[0] == '\0' || end[1] != '\0')
    return -1;
  long long unit = end[0] == 's' ? 1000LL : end[0] == 'm' ? 60000LL : end[0] == 'h' ? 3600000LL
                   : end[0] == 'd' ? DAY_MS : 0;
  if (!unit || n > MAX_AGE_MS / unit) return -1;
  return n * unit;
}

static int take(const cJSON *sec, const char *name, int64_t *out, int zero_ok, perr *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, name);
  if (!cJSON_IsString(v)) return 0;
  int64_t ms = retention_parse_duration(v->valuestring);
  if (ms < 0 || (ms == 0 && !zero_ok))
    return perr_set(e, "retention.%s: expected a number and a unit s, m, h or d (e.g. 7d)%s, got "
                       "\"%.40s\"",
                    name, zero_ok ? " or off" : "", v->valuestring);
  *out = ms;
  return 0;
}

int retention_config_parse(const cJSON *sec, retention_config *c, perr *e) {
  retention_config_defaults(c);
  if (!sec) return 0;
  if (take(sec, "succeeded", &c->succeeded_ms, 1, e) || take(sec, "failed", &c->failed_ms, 1, e) ||
      take(sec, "interval", &c->interval_ms, 0, e))
    return -1;
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(sec, "batch");
  if (cJSON_IsNumber(b)) c->batch = (int)b->valuedouble;
  return 0;
}
