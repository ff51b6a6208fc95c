#include "core/jpath.h"

#include <stdlib.h>
#include <string.h>

static int segment_index(const char *s, size_t n, int *out) {
  if (n == 0 || n > 9) return 0;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

const cJSON *jpath_get(const cJSON *root, const char *path) {
  const cJSON *cur = root;
  const char *p = path;
  if (!cur) return NULL;
  if (p[0] == '\0' || (p[0] == '.' && p[1] == '\0')) return cur;
  while (cur && *p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    int idx;
    if (cJSON_IsArray(cur) && segment_index(p, n, &idx)) {
      cur = cJSON_GetArrayItem(cur, idx);
    } else if (cJSON_IsObject(cur)) {
      const cJSON *child = NULL;
      cJSON_ArrayForEach(child, cur) {
        if (child->string && strlen(child->string) == n && memcmp(child->string, p, n) == 0) break;
      }
      cur = child;
    } else {
      return NULL;
    }
    if (!dot) break;
    p = dot + 1;
  }
  return cur;
}
