/*
 * fields_secrets: finding the secret references in a checked value, by
 * its field table, so nothing that merely looks like "env:X" in a prompt
 * is taken for a secret.
 */
#include <stdio.h>

#include "core/fields.h"

static void join(char *out, size_t size, const char *where, const char *name) {
  if (where && *where)
    snprintf(out, size, "%s.%s", where, name);
  else
    snprintf(out, size, "%s", name);
}

static void each_in(const field_spec *f, const cJSON *v, const char *path, fields_secret_fn fn,
                    void *ud) {
  char sub[512];
  switch (f->type) {
    case FT_SECRET:
      if (cJSON_IsString(v)) fn(ud, path, v->valuestring);
      break;
    case FT_OBJECT:
      if (f->sub) fields_each_secret(f->sub, v, path, fn, ud);
      break;
    case FT_OBJECT_MAP:
      if (!f->sub || !cJSON_IsObject(v)) break;
      for (const cJSON *it = v->child; it; it = it->next) {
        join(sub, sizeof sub, path, it->string);
        fields_each_secret(f->sub, it, sub, fn, ud);
      }
      break;
    case FT_OBJECT_LIST: {
      if (!f->sub || !cJSON_IsArray(v)) break;
      int i = 0;
      for (const cJSON *it = v->child; it; it = it->next, i++) {
        snprintf(sub, sizeof sub, "%s[%d]", path, i);
        fields_each_secret(f->sub, it, sub, fn, ud);
      }
      break;
    }
    default: break;
  }
}

void fields_each_secret(const field_spec *tbl, const cJSON *obj, const char *where,
                        fields_secret_fn fn, void *ud) {
  if (!tbl || !cJSON_IsObject(obj)) return;
  char path[512];
  for (const field_spec *f = tbl; f->name; f++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
    if (!v) continue;
    join(path, sizeof path, where, f->name);
    each_in(f, v, path, fn, ud);
  }
}
