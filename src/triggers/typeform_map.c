/*
 * typeform_map: answers of a Typeform `form_response` keyed by question.
 * The key and value rules are in typeform_map.h.
 *
 * Design notes
 * - Keys come in two passes (primary keys, then refs) so the result does
 *   not depend on answer order beyond the stated first-wins rule, and a
 *   title can never be shadowed by a ref that happens to read the same.
 * - The map is built from the body alone and never fails on what it does
 *   not know (extra members, new answer types): Typeform adds to its
 *   payload over time, and a lead must not be dropped for that.  It fails
 *   only where a known shape is broken, because then a value would be
 *   silently wrong.
 * - Every string in the result is a copy: the result outlives the body.
 */
#include "triggers/typeform_map.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWERS "form_response.answers"

static const cJSON *member(const cJSON *o, const char *name) {
  return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* Keys differ by case ("Email" and "email" are two questions);
 * cJSON_HasObjectItem would fold them. */
static int has(const cJSON *o, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}

static const char *nonempty_string(const cJSON *v) {
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int is_string_type(const char *type) {
  static const char *const names[] = {"text", "email",    "url", "phone_number",
                                      "date", "file_url", NULL};
  for (size_t i = 0; names[i]; i++)
    if (!strcmp(type, names[i])) return 1;
  return 0;
}

static cJSON *oom(perr *e) {
  perr_set(e, "typeform: out of memory");
  return NULL;
}

static cJSON *bad(perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cJSON *bad(perr *e, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  perr_set(e, "%s", msg);
  return NULL;
}

static cJSON *choices_value(const cJSON *c, size_t i, perr *e) {
  const cJSON *labels = member(c, "labels"), *other = member(c, "other");
  if (!cJSON_IsObject(c) || (!labels && !other) || (labels && !cJSON_IsArray(labels)) ||
      (other && !cJSON_IsString(other))) {
    return bad(e, ANSWERS "[%zu].choices: expected a mapping with a labels list or other text", i);
  }
  cJSON *out = cJSON_CreateArray();
  if (!out) return oom(e);
  const cJSON *l;
  cJSON_ArrayForEach(l, labels) {
    if (!cJSON_IsString(l)) {
      cJSON_Delete(out);
      return bad(e, ANSWERS "[%zu].choices.labels: expected strings only", i);
    }
    cJSON *s = cJSON_CreateString(l->valuestring);
    if (!s || !cJSON_AddItemToArray(out, s)) {
      cJSON_Delete(s);
      cJSON_Delete(out);
      return oom(e);
    }
  }
  if (other) {
    cJSON *s = cJSON_CreateString(other->valuestring);
    if (!s || !cJSON_AddItemToArray(out, s)) {
      cJSON_Delete(s);
      cJSON_Delete(out);
      return oom(e);
    }
  }
  return out;
}

/* The value of answer i of the given type (see the table in the header). */
static cJSON *answer_value(const cJSON *a, const char *type, size_t i, perr *e) {
  const cJSON *v = member(a, type);
  cJSON *out = NULL;
  if (is_string_type(type)) {
    if (!cJSON_IsString(v)) return bad(e, ANSWERS "[%zu].%.40s: expected a string", i, type);
    out = cJSON_CreateString(v->valuestring);
  } else if (!strcmp(type, "number")) {
    if (!cJSON_IsNumber(v)) return bad(e, ANSWERS "[%zu].number: expected a number", i);
    out = cJSON_CreateNumber(v->valuedouble);
  } else if (!strcmp(type, "boolean")) {
    if (!cJSON_IsBool(v)) return bad(e, ANSWERS "[%zu].boolean: expected true or false", i);
    out = cJSON_CreateBool(cJSON_IsTrue(v));
  } else if (!strcmp(type, "choice")) {
    const cJSON *label = member(v, "label"), *other = member(v, "other");
    const cJSON *pick = cJSON_IsString(label) ? label : cJSON_IsString(other) ? other : NULL;
    if (!cJSON_IsObject(v) || !pick)
      return bad(e, ANSWERS "[%zu].choice: expected a mapping with a label or other text", i);
    out = cJSON_CreateString(pick->valuestring);
  } else if (!strcmp(type, "choices")) {
    return choices_value(v, i, e);
  } else if (!strcmp(type, "payment")) {
    if (!cJSON_IsObject(v)) return bad(e, ANSWERS "[%zu].payment: expected a mapping", i);
    out = cJSON_Duplicate(v, 1);
  } else {
    out = cJSON_Duplicate(v ? v : a, 1);
  }
  return out ? out : oom(e);
}

/* The question answered by a: its title and ref (either may be NULL). */
static void question_of(const cJSON *def_fields, const cJSON *field, const char **title,
                        const char **ref) {
  const char *id = member(field, "id")->valuestring;
  const cJSON *d, *found = NULL;
  cJSON_ArrayForEach(d, def_fields) {
    const cJSON *did = member(d, "id");
    if (cJSON_IsString(did) && !strcmp(did->valuestring, id)) {
      found = d;
      break;
    }
  }
  *title = nonempty_string(member(found, "title"));
  *ref = nonempty_string(member(field, "ref"));
  if (!*ref) *ref = nonempty_string(member(found, "ref"));
}

cJSON *typeform_fields(const cJSON *body, perr *e) {
  const cJSON *fr = member(body, "form_response");
  if (!cJSON_IsObject(body) || !cJSON_IsObject(fr)) {
    perr_set(e, "typeform: expected a JSON object with a form_response mapping");
    return NULL;
  }
  const cJSON *answers = member(fr, "answers");
  const cJSON *def = member(fr, "definition");
  const cJSON *def_fields = member(def, "fields");
  if (answers && !cJSON_IsArray(answers)) {
    perr_set(e, ANSWERS ": expected a list");
    return NULL;
  }
  if ((def && !cJSON_IsObject(def)) || (def_fields && !cJSON_IsArray(def_fields))) {
    perr_set(e, "form_response.definition: expected a mapping with a fields list");
    return NULL;
  }
  size_t n = (size_t)cJSON_GetArraySize(answers);
  const char **primary = calloc(n ? n : 1, sizeof *primary);
  cJSON *out = cJSON_CreateObject();
  if (!primary || !out) goto oom;

  /* Pass 1: every answer under its first free key of title, ref, id. */
  size_t i = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, answers) {
    const cJSON *field = member(a, "field"), *type = member(a, "type");
    if (!cJSON_IsObject(a) || !cJSON_IsObject(field) || !nonempty_string(member(field, "id")) ||
        !nonempty_string(type)) {
      perr_set(e, ANSWERS "[%zu]: expected a mapping with type and field.id", i);
      goto fail;
    }
    const char *title, *ref, *id = member(field, "id")->valuestring;
    question_of(def_fields, field, &title, &ref);
    const char *cands[] = {title, ref, id};
    const char *key = NULL;
    for (size_t c = 0; c < 3 && !key; c++)
      if (cands[c] && !has(out, cands[c])) key = cands[c];
    if (!key) {
      perr_set(e, ANSWERS "[%zu]: field id '%.80s' is answered twice", i, id);
      goto fail;
    }
    cJSON *v = answer_value(a, type->valuestring, i, e);
    if (!v) goto fail;
    if (!cJSON_AddItemToObject(out, key, v)) {
      cJSON_Delete(v);
      goto oom;
    }
    primary[i++] = key;
  }

  /* Pass 2: refs, where still free, as copies of the primary's value. */
  i = 0;
  cJSON_ArrayForEach(a, answers) {
    const char *title, *ref;
    question_of(def_fields, member(a, "field"), &title, &ref);
    const char *key = primary[i++];
    if (!ref || !strcmp(ref, key) || has(out, ref)) continue;
    cJSON *v = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(out, key), 1);
    if (!v || !cJSON_AddItemToObject(out, ref, v)) {
      cJSON_Delete(v);
      goto oom;
    }
  }
  free(primary);
  return out;
oom:
  perr_set(e, "typeform: out of memory");
fail:
  free(primary);
  cJSON_Delete(out);
  return NULL;
}
