/*
 * recipe: a stored definition compiled for the engine, and what the store
 * needs to know about one (digest, enabled flag).  Loading and validating
 * YAML lives in recipe_load.c.
 *
 * Design notes
 * - recipe_compile trusts nothing: a definition may have been stored by an
 *   older or newer promptd, so every member is checked again and kinds are
 *   looked up by name; a kind this binary does not know is an error naming
 *   the recipe, not a crash later.  Each config goes through its kind's
 *   validate() again for the same reason.
 * - The compiled recipe owns the definition; every pointer in it (names,
 *   configs, conditions, partials) points into that JSON, so freeing is one
 *   cJSON_Delete plus the steps array and the source string.
 * - The digest is SHA-256 of the compact JSON.  Definitions are normalised
 *   at load (fixed key order), so the same file gives the same digest, and
 *   `recipe import` uses it to tell an unchanged file from a new version.
 */
#include "core/recipe.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static int read_retry(const cJSON *obj, retry_policy *p) {
  if (!obj) return 0;
  if (!cJSON_IsObject(obj)) return -1;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "max_attempts");
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, "base_ms");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "cap_ms");
  if ((m && !cJSON_IsNumber(m)) || (b && !cJSON_IsNumber(b)) || (c && !cJSON_IsNumber(c)))
    return -1;
  /* Per-field override: a step that sets only max_attempts keeps the
   * recipe's backoff. */
  if (m) p->max_attempts = (int)m->valuedouble;
  if (b) p->base_ms = (long)b->valuedouble;
  if (c) p->cap_ms = (long)c->valuedouble;
  return 0;
}

static int is_step_field(const char *k) {
  return !strcmp(k, "id") || !strcmp(k, "if") || !strcmp(k, "retry");
}

static int compile_step(recipe *r, const cJSON *st, int i, perr *e) {
  recipe_step *s = &r->steps[i];
  if (!cJSON_IsObject(st)) return perr_set(e, "recipe '%s': step %d is not an object", r->name, i);
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(st, "id");
  if (!cJSON_IsString(id) || !*id->valuestring)
    return perr_set(e, "recipe '%s': step %d has no id", r->name, i);
  s->id = id->valuestring;
  if (recipe_step_index(r, s->id) < i)
    return perr_set(e, "recipe '%s': step id '%s' is used twice", r->name, s->id);
  const cJSON *cond = cJSON_GetObjectItemCaseSensitive(st, "if");
  if (cond && !cJSON_IsObject(cond))
    return perr_set(e, "recipe '%s' step '%s': `if` is not a condition", r->name, s->id);
  s->cond = cond;
  s->retry = r->retry;
  if (read_retry(cJSON_GetObjectItemCaseSensitive(st, "retry"), &s->retry))
    return perr_set(e, "recipe '%s' step '%s': malformed retry", r->name, s->id);
  for (const cJSON *k = st->child; k; k = k->next) {
    if (!k->string || is_step_field(k->string)) continue;
    if (s->kind)
      return perr_set(e, "recipe '%s' step '%s': more than one action ('%s', '%s')", r->name, s->id,
                      s->kind->name, k->string);
    s->kind = connectors_action(k->string);
    if (!s->kind)
      return perr_set(e,
                      "recipe '%s' step '%s': unknown action kind '%s' (stored by a different "
                      "promptd version?)",
                      r->name, s->id, k->string);
    s->cfg = k;
  }
  if (!s->kind) return perr_set(e, "recipe '%s' step '%s': no action", r->name, s->id);
  if (!cJSON_IsObject(s->cfg))
    return perr_set(e, "recipe '%s' step '%s': %s config is not an object", r->name, s->id,
                    s->kind->name);
  if (s->kind->validate && s->kind->validate(s->cfg, e))
    return perr_prefix(e, "recipe '%s' step '%s' (%s)", r->name, s->id, s->kind->name);
  return 0;
}

static int compile(recipe *r, perr *e) {
  const cJSON *def = r->def;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(def, "name");
  if (!cJSON_IsObject(def) || !cJSON_IsString(name) || !*name->valuestring)
    return perr_set(e, "stored recipe definition has no name");
  r->name = name->valuestring;

  const cJSON *trig = cJSON_GetObjectItemCaseSensitive(def, "trigger");
  if (!cJSON_IsObject(trig) || !trig->child || trig->child->next || !trig->child->string)
    return perr_set(e, "recipe '%s': the trigger must name exactly one trigger kind", r->name);
  r->trigger = connectors_trigger(trig->child->string);
  if (!r->trigger)
    return perr_set(e,
                    "recipe '%s': unknown trigger kind '%s' (stored by a different promptd "
                    "version?)",
                    r->name, trig->child->string);
  r->trigger_cfg = trig->child;
  if (!cJSON_IsObject(r->trigger_cfg))
    return perr_set(e, "recipe '%s': trigger config is not an object", r->name);
  if (r->trigger->validate && r->trigger->validate(r->trigger_cfg, e))
    return perr_prefix(e, "recipe '%s' trigger '%s'", r->name, r->trigger->name);
  if (!r->trigger->source || !(r->source = r->trigger->source(r->trigger_cfg)))
    return perr_set(e, "recipe '%s': trigger '%s' gives no event source", r->name,
                    r->trigger->name);

  const cJSON *when = cJSON_GetObjectItemCaseSensitive(def, "when");
  if (when && !cJSON_IsObject(when))
    return perr_set(e, "recipe '%s': `when` is not a condition", r->name);
  r->when = when;

  const cJSON *conc = cJSON_GetObjectItemCaseSensitive(def, "concurrency");
  if (conc) {
    if (!cJSON_IsNumber(conc) || conc->valuedouble < 1 || conc->valuedouble > 1000)
      return perr_set(e, "recipe '%s': concurrency must be 1 to 1000", r->name);
    r->concurrency = (int)conc->valuedouble;
  }
  if (read_retry(cJSON_GetObjectItemCaseSensitive(def, "retry"), &r->retry))
    return perr_set(e, "recipe '%s': malformed retry", r->name);

  const cJSON *partials = cJSON_GetObjectItemCaseSensitive(def, "partials");
  if (partials && !cJSON_IsObject(partials))
    return perr_set(e, "recipe '%s': partials is not an object", r->name);
  r->partials = partials;

  const cJSON *steps = cJSON_GetObjectItemCaseSensitive(def, "steps");
  int n = cJSON_GetArraySize(steps);
  if (!cJSON_IsArray(steps) || n < 1) return perr_set(e, "recipe '%s': no steps", r->name);
  r->steps = calloc((size_t)n, sizeof *r->steps);
  if (!r->steps) return perr_set(e, "recipe '%s': out of memory", r->name);
  const cJSON *st;
  int i = 0;
  cJSON_ArrayForEach(st, steps) {
    r->nsteps = i + 1; /* recipe_step_index sees the steps compiled so far */
    if (compile_step(r, st, i, e)) return -1;
    i++;
  }
  return 0;
}

int recipe_compile(cJSON *def, int version, int enabled, recipe **out, perr *e) {
  *out = NULL;
  recipe *r = calloc(1, sizeof *r);
  if (!r) {
    cJSON_Delete(def);
    return perr_set(e, "out of memory compiling a recipe");
  }
  r->def = def;
  r->version = version;
  r->enabled = enabled;
  if (compile(r, e)) {
    recipe_free(r);
    return -1;
  }
  *out = r;
  return 0;
}

void recipe_free(recipe *r) {
  if (!r) return;
  cJSON_Delete(r->def);
  free(r->source);
  free(r->steps);
  free(r);
}

const char *recipe_partial(void *ud, const char *name, size_t *len) {
  const recipe *r = ud;
  if (!r || !r->partials || !name) return NULL;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(r->partials, name);
  if (!cJSON_IsString(p) || !p->valuestring) return NULL;
  if (len) *len = strlen(p->valuestring);
  return p->valuestring;
}

int recipe_step_index(const recipe *r, const char *id) {
  if (!r || !id) return -1;
  for (int i = 0; i < r->nsteps; i++)
    if (r->steps[i].id && !strcmp(r->steps[i].id, id)) return i;
  return -1;
}

int recipe_def_enabled(const cJSON *def) {
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(def, "enabled");
  return cJSON_IsBool(en) ? cJSON_IsTrue(en) : 1;
}

char *recipe_digest(const cJSON *def) {
  char *json = cJSON_PrintUnformatted(def);
  if (!json) return NULL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int ok = EVP_Digest(json, strlen(json), md, &mdlen, EVP_sha256(), NULL);
  cJSON_free(json);
  if (!ok) return NULL;
  char *hex = malloc(mdlen * 2 + 1);
  if (!hex) return NULL;
  static const char digits[] = "0123456789abcdef";
  for (unsigned int i = 0; i < mdlen; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[2 * mdlen] = '\0';
  return hex;
}
