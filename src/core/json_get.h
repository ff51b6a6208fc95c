/* json_get: reading a checked configuration object (fields.h already
 * vouched for the types, so an absent key is the only surprise left). */
#ifndef PROMPTD_JSON_GET_H
#define PROMPTD_JSON_GET_H

#include <cjson/cJSON.h>

/* The string at key, or NULL. */
static inline const char *json_str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The number at key as a long, or dflt. */
static inline long json_long(const cJSON *o, const char *key, long dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? (long)v->valuedouble : dflt;
}

#endif
